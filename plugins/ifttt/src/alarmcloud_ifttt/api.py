"""The IFTTT service API under ``/plugins/ifttt/ifttt/v1``: status, setup, user, triggers, actions, queries."""

from __future__ import annotations

import hmac
import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from alarmcloud import Principal, ServiceError, read_body
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

log = logging.getLogger(__name__)

#: IFTTT's requests are small JSON objects; a larger body is refused before it is held in memory
MAX_BODY = 256 * 1024
PLUGIN = "ifttt"
INTEGRATION = "ifttt"
LABELS = ("rain", "plate", "person", "vehicle", "animal")
TRIGGERS = ("new_alarm", "alarm_with_detection", "plate_recognised", "storage_almost_full")
ACTIONS = ("motion_detection", "alarm_email", "go_to_preset", "alarm_area", "area_sensitivity",
           "change_alarm_settings")
QUERIES = ("list_alarms", "storage_status")
#: which core event types make which triggers fire (Realtime)
TRIGGER_SCOPE = {"storage_almost_full": "storage:read"}
#: what the endpoint-test user's token may do (everything IFTTT's tests call)
TEST_SCOPES = ("alarms:read", "cameras:control", "storage:read")


class IftttError(Exception):
    """An error answered in IFTTT's shape: ``{"errors": [{"message", "status"?}]}``."""

    def __init__(self, status: int, message: str, skip: bool = False) -> None:
        super().__init__(message)
        self.status, self.message, self.skip = status, message, skip

    def response(self) -> Response:
        err: dict[str, str] = {"message": self.message}
        if self.skip:
            err["status"] = "SKIP"
        return JSONResponse({"errors": [err]}, status_code=self.status)


def settings(app: Any) -> dict[str, Any]:
    """``[plugins.ifttt]`` with ``ALARMCLOUD_IFTTT_SERVICE_KEY`` / ``..._REALTIME_URL`` from the environment."""
    conf = dict(app.settings.plugin_settings(PLUGIN))
    conf.setdefault("service_key", os.environ.get("ALARMCLOUD_IFTTT_SERVICE_KEY", ""))
    conf.setdefault("realtime_url", os.environ.get("ALARMCLOUD_IFTTT_REALTIME_URL",
                                                   "https://realtime.ifttt.com/v1/notifications"))
    return conf


def _app(request: Request) -> Any:
    return request.app.state.alarmcloud


def _check_key(request: Request) -> None:
    key = settings(_app(request)).get("service_key") or ""
    sent = request.headers.get("ifttt-service-key") or request.headers.get("ifttt-channel-key") or ""
    if not key or not hmac.compare_digest(sent.encode(), str(key).encode()):
        raise IftttError(401, "invalid service key")


async def _principal(request: Request, scope: str | None = None) -> Principal:
    try:
        p = await _app(request).services.authenticate(request, INTEGRATION)
    except ServiceError:
        raise IftttError(401, "invalid or expired access token") from None
    if scope and scope not in p.scopes:
        raise IftttError(403, f"this link does not allow {scope}")
    return p


async def _body(request: Request) -> dict[str, Any]:
    raw = await read_body(request, MAX_BODY)
    if raw is None:
        raise IftttError(413, f"the body is larger than {MAX_BODY} bytes")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands of levels deep
        raise IftttError(400, "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise IftttError(400, "the body must be a JSON object")
    return data


def _limit(body: dict[str, Any]) -> int:
    raw = body.get("limit", 50)
    if raw is None:
        return 50
    try:
        n = int(raw)
    except (TypeError, ValueError):
        raise IftttError(400, "limit must be an integer") from None
    if n < 0:
        raise IftttError(400, "limit must not be negative")
    return n


def _wrap(handler: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except IftttError as exc:
            return exc.response()

    endpoint.__doc__ = handler.__doc__
    endpoint.__name__ = handler.__name__
    return endpoint


def _ts(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


# ---------------------------------------------------------------- service endpoints


async def status(request: Request) -> Response:
    """Health for IFTTT (service key): 503 while the database cannot be read, so IFTTT retries later."""
    _check_key(request)
    try:
        await _app(request).services.get_state(PLUGIN, None, "status")
    except Exception:
        log.exception("IFTTT status: the core cannot answer")
        raise IftttError(503, "alarmcloud is temporarily unavailable") from None
    return JSONResponse({})


async def test_setup(request: Request) -> Response:
    """The endpoint-test user (made once by the core: a camera, three alarms with videos and findings), storage
    warnings on its timeline, a fresh token, and samples for every trigger, field validation, action and query."""
    _check_key(request)
    services = _app(request).services
    try:
        acc = await services.endpoint_test_account(INTEGRATION, TEST_SCOPES)
    except ServiceError as exc:
        raise IftttError(503 if exc.status >= 500 else exc.status, exc.message) from None
    if not await services.get_state(PLUGIN, acc.account_id, "storage_events"):
        now = int(datetime.now(UTC).timestamp())
        await services.set_state(PLUGIN, acc.account_id, "storage_events", [
            {"id": f"test-storage-{i}", "timestamp": now - 3600 * (i + 1), "used_ratio": 0.9 + i / 100}
            for i in range(3)])
    await services.set_state(PLUGIN, acc.account_id, "test_account", True)  # its camera is no device: see action
    cam = acc.camera_id
    on = {"camera": cam, "on": "on"}
    samples = {
        "triggers": {"new_alarm": {"camera": cam}, "alarm_with_detection": {"label": "rain"}},
        "triggerFieldValidations": {"new_alarm": {"camera": {"valid": cam, "invalid": "no-such-camera"}}},
        "actions": {"motion_detection": on, "alarm_email": on, "go_to_preset": {"camera": cam, "preset": "1"},
                    "alarm_area": {"camera": cam, "area": "1", "on": "on"},
                    "area_sensitivity": {"camera": cam, "area": "1", "sensitivity": "50"},
                    "change_alarm_settings": {"camera": cam, "motion_detection": "on", "alarm_email": "off"}},
        "actionRecordSkipping": {a: {"camera": "no-such-camera", "on": "on", "preset": "1", "area": "1",
                                     "sensitivity": "50", "motion_detection": "on", "alarm_email": "on"}
                                 for a in ACTIONS},
        "queries": {"list_alarms": {"camera": cam}, "storage_status": {}},
    }
    return JSONResponse({"data": {"accessToken": acc.access_token, "samples": samples}})


async def user_info(request: Request) -> Response:
    """The pseudonymous, stable user id (never the e-mail or account id)."""
    p = await _principal(request)
    return JSONResponse({"data": {"name": "alarmcloud user", "id": p.pseudonym}})


async def _remember_identity(request: Request, p: Principal, trigger: str, body: dict[str, Any]) -> None:
    ti = body.get("trigger_identity")
    if not isinstance(ti, str) or not ti:
        return
    services = _app(request).services
    known = await services.get_state(PLUGIN, p.account_id, "identities") or {}
    entry = {"trigger": trigger, "fields": body.get("triggerFields") or {}}
    if known.get(ti) != entry:
        known[ti] = entry
        await services.set_state(PLUGIN, p.account_id, "identities", known)


def _fields(body: dict[str, Any], key: str = "triggerFields") -> dict[str, Any]:
    fields = body.get(key)
    if not isinstance(fields, dict):
        raise IftttError(400, f"{key} missing", skip=True)
    return fields


def _event_item(app: Any, ev: dict[str, Any], extra: dict[str, Any] | None = None,
                meta_id: str | None = None) -> dict[str, Any]:
    base = app.settings.public_url.rstrip("/")
    labels = sorted({f.get("label", "") for f in ev.get("findings", [])} - {""})
    item = {"camera_name": ev.get("camera_name") or "", "camera_id": ev.get("camera_id") or "",
            "created_at": ev["started_at"], "verdict": ev.get("verdict") or "", "labels": ", ".join(labels),
            "video_url": base + ev["video_url"], "thumbnail_url": base + ev["thumbnail_url"],
            "meta": {"id": meta_id or ev["id"], "timestamp": _ts(ev["started_at"])}}
    item.update(extra or {})
    return item


async def trigger(request: Request) -> Response:
    """Trigger timelines: newest first, ``limit`` most recent items (0 → none)."""
    slug = request.path_params["slug"]
    if slug not in TRIGGERS:
        raise IftttError(404, "no such trigger")
    p = await _principal(request, TRIGGER_SCOPE.get(slug, "alarms:read"))
    body = await _body(request)
    fields = _fields(body)
    limit = _limit(body)
    app = _app(request)
    services = app.services
    if slug == "alarm_with_detection" and not str(fields.get("label") or ""):
        raise IftttError(400, "the label field is required", skip=True)
    await _remember_identity(request, p, slug, body)
    if limit == 0:
        return JSONResponse({"data": []})
    items: list[dict[str, Any]] = []
    if slug == "new_alarm":
        cam = str(fields.get("camera") or "") or None
        evs = await services.list_events(p.account_id, camera_id=cam, real_alarms_only=True, limit=limit)
        items = [_event_item(app, ev) for ev in evs]
    elif slug == "alarm_with_detection":
        evs = await services.list_events(p.account_id, label=str(fields["label"]), limit=limit)
        items = [_event_item(app, ev, {"label": str(fields["label"])}) for ev in evs]
    elif slug == "plate_recognised":
        evs = await services.list_events(p.account_id, label="plate", limit=limit)
        reads = [(ev, n, str(f["text"])) for ev in evs for n, f in enumerate(
            x for x in ev.get("findings", []) if x.get("label") == "plate" and x.get("text"))]
        silenced = await services.silenced_plates(p.account_id, {text for _, _, text in reads})
        # known plates the owner is not told about (notify off) are left out
        items = [_event_item(app, ev, {"plate": text}, meta_id=f"{ev['id']}-{n}") for ev, n, text in reads
                 if text not in silenced]
    else:  # storage_almost_full: a timeline the plugin keeps from storage.almost_full events
        rows = await services.get_state(PLUGIN, p.account_id, "storage_events") or []
        items = [{"used_percent": str(round(float(r.get("used_ratio", 0)) * 100)),
                  "created_at": datetime.fromtimestamp(r["timestamp"], UTC).isoformat(),
                  "meta": {"id": r["id"], "timestamp": int(r["timestamp"])}} for r in rows]
    items.sort(key=lambda i: i["meta"]["timestamp"], reverse=True)
    return JSONResponse({"data": items[:limit]})


async def delete_identity(request: Request) -> Response:
    """IFTTT no longer uses this trigger identity: stop Realtime notifications for it."""
    p = await _principal(request)
    services = _app(request).services
    known = await services.get_state(PLUGIN, p.account_id, "identities") or {}
    if known.pop(request.path_params["identity"], None) is not None:
        await services.set_state(PLUGIN, p.account_id, "identities", known)
    return JSONResponse({})


async def field_options(request: Request) -> Response:
    """Dynamic options: the user's cameras (camera fields) or the detection labels."""
    return await _options(request, for_action=False)


async def action_field_options(request: Request) -> Response:
    """Dynamic options of action fields: only the cameras the user may control."""
    return await _options(request, for_action=True)


async def _options(request: Request, for_action: bool) -> Response:
    p = await _principal(request)
    field = request.path_params["field"]
    if field == "label":
        return JSONResponse({"data": [{"label": lb, "value": lb} for lb in LABELS]})
    if field != "camera":
        raise IftttError(404, "no options for this field")
    services = _app(request).services
    cams = await services.list_cameras(p.account_id)
    # a camera without the control capability (a sub-user's view right) would refuse every action: not offered;
    # the endpoint-test camera is, as its actions are answered without a device
    if for_action and not await services.get_state(PLUGIN, p.account_id, "test_account"):
        cams = [c for c in cams if "control" in c.capabilities]
    return JSONResponse({"data": [{"label": c.name, "value": c.id} for c in cams]})


async def field_validate(request: Request) -> Response:
    """Validate a camera field value against the user's cameras."""
    p = await _principal(request)
    body = await _body(request)
    value = str(body.get("value") or "")
    cams = {c.id for c in await _app(request).services.list_cameras(p.account_id)}
    ok = value in LABELS if request.path_params["field"] == "label" else value in cams
    return JSONResponse({"data": {"valid": True} if ok else {"valid": False, "message": "unknown value"}})


def _on(value: Any, name: str = "on") -> bool:
    v = str(value).strip().lower()
    if v in ("on", "true", "1", "yes", "enable", "enabled"):
        return True
    if v in ("off", "false", "0", "no", "disable", "disabled"):
        return False
    raise IftttError(400, f"{name} must be on or off", skip=True)


def _int(value: Any, name: str, lo: int, hi: int) -> int:
    try:
        n = int(str(value))
    except ValueError:
        raise IftttError(400, f"{name} must be a number", skip=True) from None
    if not lo <= n <= hi:
        raise IftttError(400, f"{name} must be between {lo} and {hi}", skip=True)
    return n


def _plan(slug: str, fields: dict[str, Any]) -> list[tuple[str, Any, int | None]]:
    """The camera actions an IFTTT action means: (action, value, area)."""
    if slug in ("motion_detection", "alarm_email"):
        return [(slug, _on(fields.get("on")), None)]
    if slug == "go_to_preset":
        return [("go_to_preset", _int(fields.get("preset"), "preset", 1, 16), None)]
    if slug == "alarm_area":
        return [("alarm_area", _on(fields.get("on")), _int(fields.get("area"), "area", 1, 4))]
    if slug == "area_sensitivity":
        return [("area_sensitivity", _int(fields.get("sensitivity"), "sensitivity", 1, 100),
                 _int(fields.get("area"), "area", 1, 4))]
    plan = []
    for name in ("motion_detection", "alarm_email"):
        raw = str(fields.get(name) or "unchanged").lower()
        if raw != "unchanged":
            plan.append((name, _on(raw, name), None))
    if not plan:
        raise IftttError(400, "nothing to change", skip=True)
    return plan


async def action(request: Request) -> Response:
    """Run a camera action; 400 SKIP when it can never succeed (unknown camera, bad value, no control right)."""
    slug = request.path_params["slug"]
    if slug not in ACTIONS:
        raise IftttError(404, "no such action")
    p = await _principal(request)
    if "cameras:control" not in p.scopes:
        raise IftttError(400, "this link does not allow camera control", skip=True)
    body = await _body(request)
    fields = _fields(body, "actionFields")
    services = _app(request).services
    cam = str(fields.get("camera") or "")
    if cam not in {c.id for c in await services.list_cameras(p.account_id)}:
        raise IftttError(400, "camera not found", skip=True)  # another user's camera: touch nothing
    plan = _plan(slug, fields)
    if await services.get_state(PLUGIN, p.account_id, "test_account"):
        return JSONResponse({"data": [{"id": f"{cam}-{slug}"}]})  # the endpoint-test camera has no device
    for name, value, area in plan:
        try:
            await services.camera_action(p.account_id, cam, name, value, area, principal=p)
        except ServiceError as exc:
            if exc.status >= 500:
                raise IftttError(503, "the camera did not answer; try again later") from None
            raise IftttError(400, exc.message, skip=True) from None
    return JSONResponse({"data": [{"id": f"{cam}-{slug}"}]})


async def query(request: Request) -> Response:
    """Queries: the alarm history and the storage status."""
    slug = request.path_params["slug"]
    if slug not in QUERIES:
        raise IftttError(404, "no such query")
    p = await _principal(request, "storage:read" if slug == "storage_status" else "alarms:read")
    body = await _body(request)
    limit = _limit(body)
    app = _app(request)
    if limit == 0:
        return JSONResponse({"data": []})
    if slug == "storage_status":
        st = await app.services.storage(p.account_id)
        return JSONResponse({"data": [{
            "used_bytes": str(st.get("used_bytes", 0)), "quota_bytes": str(st.get("quota_bytes") or 0),
            "used_percent": str(round(float(st.get("used_ratio") or 0) * 100)),
            "clip_count": str(st.get("clip_count", 0))}]})
    fields = body.get("queryFields") if isinstance(body.get("queryFields"), dict) else {}
    cam = str(fields.get("camera") or "") or None
    evs = await app.services.list_events(p.account_id, camera_id=cam, limit=limit)
    return JSONResponse({"data": [_event_item(app, ev) for ev in evs]})


def routes() -> list[BaseRoute]:
    """Routes relative to the plugin mount (``/plugins/ifttt``)."""
    v1 = "/ifttt/v1"
    return [
        Route(f"{v1}/status", _wrap(status), methods=["GET"]),
        Route(f"{v1}/test/setup", _wrap(test_setup), methods=["POST"]),
        Route(f"{v1}/user/info", _wrap(user_info), methods=["GET"]),
        Route(f"{v1}/triggers/{{slug}}", _wrap(trigger), methods=["POST"]),
        Route(f"{v1}/triggers/{{slug}}/trigger_identity/{{identity}}", _wrap(delete_identity), methods=["DELETE"]),
        Route(f"{v1}/triggers/{{slug}}/fields/{{field}}/options", _wrap(field_options), methods=["POST"]),
        Route(f"{v1}/triggers/{{slug}}/fields/{{field}}/validate", _wrap(field_validate), methods=["POST"]),
        Route(f"{v1}/actions/{{slug}}", _wrap(action), methods=["POST"]),
        Route(f"{v1}/actions/{{slug}}/fields/{{field}}/options", _wrap(action_field_options), methods=["POST"]),
        Route(f"{v1}/queries/{{slug}}", _wrap(query), methods=["POST"]),
        Route(f"{v1}/queries/{{slug}}/fields/{{field}}/options", _wrap(field_options), methods=["POST"]),
    ]
