"""Cameras: CRUD, encrypted credentials, upload credentials, detector switches, actions, live view."""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from alarmcloud import crypto, erasures, silence, viewcheck
from alarmcloud.auth import User, camera_for, core, require_user, visible_cameras
from alarmcloud.contracts import CAMERA_ACTIONS, CameraAccess, CameraAdapter, CameraError, UploadTarget
from alarmcloud.errors import ApiError, field, json_body, only_fields
from alarmcloud.events import CAMERA_CHANGED, CAMERA_DELETED, Event
from alarmcloud.masks import validate_masks
from alarmcloud.models import Camera, CameraRight, Clip, Rejection, iso
from alarmcloud.netutil import AddressNotAllowed, check_camera_address
from alarmcloud.specs import DetectorOption, DetectorSpec, title_of

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

log = logging.getLogger(__name__)


def camera_json(cam: Camera) -> dict[str, Any]:
    """The public shape of a camera: never its credentials."""
    return {
        "id": cam.id,
        "name": cam.name,
        "site": cam.site,
        "silent_after_days": cam.silent_after_days,
        "silent_notified_at": iso(cam.silent_notified_at) if cam.silent_notified_at else None,
        "last_clip_at": iso(cam.last_clip_at) if cam.last_clip_at else None,
        "brand": cam.brand,
        "model": cam.model,
        "port": cam.port,
        "has_address": cam.host_enc is not None,
        "has_p2p_id": cam.p2p_id_enc is not None,
        "has_credentials": cam.password_enc is not None,
        "integrations_may_use_credentials": cam.integrations_may_use_credentials,
        "upload_username": cam.upload_username,
        "detectors": cam.detectors or {},
        "detector_options": cam.detector_options or {},
        "motion_detection": cam.motion_detection,
        "rejected_uploads": cam.rejected_count,
        "false_alarm_rate": cam.false_alarm_rate,
        "fair_use": {"state": cam.fair_use_override or cam.fair_use_state, "reason": cam.fair_use_reason,
                     "since": iso(cam.fair_use_since) if cam.fair_use_since else None,
                     "override": cam.fair_use_override},
        "last_trigger": cam.last_trigger,
        "privacy_masks": cam.privacy_masks or [],
        "view": viewcheck.view_json(cam),
        "created_at": iso(cam.created_at),
    }


#: one DNS label (RFC 1123): letters, digits and inner hyphens
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def check_host(value: str) -> str:
    """The camera's local address as typed: an IP address or a host name, nothing more (no scheme, port or path,
    which would otherwise be saved and fail only at the first camera call with a riddle)."""
    host = value.strip()
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if len(host) <= 253 and all(_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit():
        return host.rstrip(".")
    raise ApiError(400, "invalid_field", "host must be the camera's IP address or host name only, for example "
                   "192.168.1.20 or camera.fritz.box: no http://, no port (set that in 'port') and no path")


def _secret_fields(app: AlarmCloud, cam: Camera, data: dict[str, Any]) -> None:
    box = app.secret_box
    for name, attr, max_len in (("host", "host_enc", 255), ("p2p_id", "p2p_id_enc", 64),
                                ("username", "username_enc", 100), ("password", "password_enc", 200)):
        if name in data:
            value = field(data, name, str, required=False, max_len=max_len)
            if name == "host" and value:
                value = check_host(value)
            setattr(cam, attr, box.encrypt(value, context=f"camera:{cam.id}:{name}") if value else None)
    if "port" in data:
        port = field(data, "port", int)
        if not 1 <= port <= 65535:
            raise ApiError(400, "invalid_field", "port must be 1..65535")
        cam.port = port
    if "integrations_may_use_credentials" in data:
        cam.integrations_may_use_credentials = field(data, "integrations_may_use_credentials", bool)


def _check_brand_model(app: AlarmCloud, brand: str, model: str) -> str:
    """The catalogue's name for ``model`` ("IN-9008" -> "IN-9008 Full HD"); 400 for unknown brands/models."""
    adapter = app.plugins.camera_adapter(brand)
    if adapter is None:
        raise ApiError(400, "unknown_brand", f"no camera adapter {brand!r} is enabled on this deployment")
    names = [m.name for m in adapter.models()]
    if not names:
        return model
    wanted = model.strip().lower()
    exact = [n for n in names if n.lower() == wanted]
    prefix = [n for n in names if n.lower().startswith(wanted + " ")]
    if exact or len(prefix) == 1:
        return (exact or prefix)[0]
    raise ApiError(400, "unknown_model", f"{brand} has no model {model!r} (see /api/v1/camera-models)")


#: the fields of a camera a request may set (``privacy_masks`` only on an existing camera)
CAMERA_FIELDS = {"name", "site", "brand", "model", "host", "p2p_id", "username", "password", "port",
                 "integrations_may_use_credentials", "silent_after_days"}
#: the fields ``PATCH /cameras/{id}`` may change: all but the brand, and the privacy masks
CAMERA_PATCH_FIELDS = (CAMERA_FIELDS - {"brand"}) | {"privacy_masks"}


def _site(data: dict[str, Any]) -> str | None:
    """The ``site`` field: a name of at most 60 characters; empty or null: no site."""
    value = field(data, "site", str, required=False, max_len=60)
    if value is None:
        return None
    return " ".join(value.split()) or None  # spaces at the ends and twice in a row do not make another site


def _silent_after(data: dict[str, Any]) -> int | None:
    """The ``silent_after_days`` field: 1 to 30 days, or null (no notice)."""
    days = field(data, "silent_after_days", int, required=False)
    if days is not None and (isinstance(days, bool) or not 1 <= days <= silence.MAX_DAYS):
        raise ApiError(400, "invalid_field", f"silent_after_days must be a whole number of days from 1 to "
                                             f"{silence.MAX_DAYS}, or null")
    return days  # type: ignore[no-any-return]


async def create_camera(request: Request) -> Response:
    """Add a camera."""
    user = await require_user(request)
    if user.account.owner_id is not None:
        raise ApiError(403, "forbidden", "sub-users cannot add cameras")
    app = core(request)
    data = await json_body(request)
    only_fields(data, CAMERA_FIELDS)
    name = field(data, "name", str, max_len=100).strip()
    brand = field(data, "brand", str, max_len=50)
    model = field(data, "model", str, max_len=100)
    if not name:
        raise ApiError(400, "invalid_field", "field 'name' must not be empty")
    model = _check_brand_model(app, brand, model)
    cam = Camera(account_id=user.id, name=name, brand=brand, model=model, site=_site(data),
                 silent_after_days=_silent_after(data))
    _secret_fields(app, cam, data)

    def _store(s: Session) -> Camera:
        s.add(cam)
        s.commit()
        return cam

    await app.db.run(_store)
    await app.emit(Event(CAMERA_CHANGED, user.id, cam.id, {"change": "added"}))
    return JSONResponse(camera_json(cam), status_code=201)


async def list_cameras(request: Request) -> Response:
    """The caller's cameras."""
    user = await require_user(request)

    def _list(s: Session) -> list[dict[str, Any]]:
        return [camera_json(c) for c in visible_cameras(s, user, Camera.created_at)]

    return JSONResponse({"items": await core(request).db.run(_list)})


async def get_camera(request: Request) -> Response:
    """One camera."""
    user = await require_user(request)
    cid = request.path_params["camera_id"]
    cam = await core(request).db.run(lambda s: camera_for(s, user, cid))
    return JSONResponse(camera_json(cam))


async def update_camera(request: Request) -> Response:
    """Change name, site, model, address, credentials or privacy masks (the brand is fixed when a camera is
    added)."""
    user = await require_user(request)
    app = core(request)
    cid = request.path_params["camera_id"]
    data = await json_body(request)
    if "brand" in data:  # chosen when the camera is added (its adapter, models and stored settings follow from it)
        raise ApiError(400, "read_only_field", "field 'brand' cannot be changed after a camera is added; delete the "
                                               "camera and add it again with the other brand")
    only_fields(data, CAMERA_PATCH_FIELDS)
    masks = validate_masks(data["privacy_masks"]) if "privacy_masks" in data else None  # 422 before any change

    def _update(s: Session) -> Camera:
        cam = camera_for(s, user, cid, "admin")
        if "name" in data:
            cam.name = field(data, "name", str, max_len=100).strip() or cam.name
        if "site" in data:
            cam.site = _site(data)
        if "silent_after_days" in data:
            days = _silent_after(data)
            if days != cam.silent_after_days:
                cam.silent_after_days, cam.silent_notified_at = days, None  # a new setting: told anew
        if "model" in data:
            model = field(data, "model", str, max_len=100)
            cam.model = _check_brand_model(app, cam.brand, model)
        _secret_fields(app, cam, data)
        lines = []
        if masks is not None and masks != list(cam.privacy_masks or []):
            cam.privacy_masks = masks or None
            # in the erasure register before the commit: a restore of an older backup sets them again
            lines.append(erasures.masks_line(cam.id, masks))
        s.add(cam)
        with erasures.recorded_lines(app.settings, lines):
            s.commit()
        return cam

    cam = await app.db.run(_update)
    await app.emit(Event(CAMERA_CHANGED, user.tenant_id, cam.id, {"change": "updated"}))
    return JSONResponse(camera_json(cam))


async def dismiss_view(request: Request) -> Response:
    """Dismiss the camera's view notice: the view check forgets its baseline and learns the view anew.

    For a camera moved on purpose, or a notice the owner judges wrong. Needs the ``admin`` right; answers the
    camera's ``view`` object (``"state": "learning"``).
    """
    user = await require_user(request)
    app = core(request)
    cid = request.path_params["camera_id"]

    def _dismiss(s: Session) -> tuple[Camera, Event | None]:
        cam = camera_for(s, user, cid, "admin")
        event = viewcheck.dismiss(s, cam)
        s.commit()
        return cam, event

    cam, event = await app.db.run(_dismiss)
    if event is not None:
        await app.emit(event)
    return JSONResponse(viewcheck.view_json(cam))


async def delete_camera(request: Request) -> Response:
    """Delete a camera with all its clips."""
    user = await require_user(request)
    app = core(request)
    cid = request.path_params["camera_id"]
    if user.account.owner_id is not None:
        raise ApiError(403, "forbidden", "only the account owner can delete cameras")
    def _check(s: Session) -> list[str]:
        camera_for(s, user, cid, "admin")
        return sorted(s.exec(select(CameraRight.account_id).where(CameraRight.camera_id == cid)).all())

    # the sub-users with a right on it, read before the deletion takes their rights with the camera
    subusers = await app.db.run(_check)
    await app.storage.delete_camera(cid)
    await app.emit(Event(CAMERA_DELETED, user.id, cid, {}))
    for sub in subusers:  # the camera leaves each sub-user's own Alexa and Google Home too (it sends no data)
        await app.tell_integrations(Event(CAMERA_DELETED, sub, cid, {"change": "camera_deleted"}))
    return Response(status_code=204)


async def _rotate_upload_login(app: AlarmCloud, user: User, cid: str, pending: bool = False) -> tuple[Camera, str]:
    """Give the camera an upload user name (once) and a new password; returns the password to show once.

    ``pending``: the new password is valid beside the current one (``upload_password_pending_hash``) until the
    camera uploads with it or ``_confirm_upload_login`` makes it the only one; otherwise it replaces every other at
    once (a leaked password stops working)."""
    password = secrets.token_urlsafe(18)  # 144 random bits: a fast hash is safe, uploads stay cheap
    pw_hash = crypto.hash_generated_secret(password)

    def _rotate(s: Session) -> Camera:
        cam = camera_for(s, user, cid, "admin")
        cam.upload_username = cam.upload_username or f"cam-{secrets.token_hex(6)}"
        if pending and cam.upload_password_hash is not None:
            cam.upload_password_pending_hash = pw_hash
        else:
            cam.upload_password_hash, cam.upload_password_pending_hash = pw_hash, None
        s.add(cam)
        s.commit()
        return cam

    cam = await app.db.run(_rotate)
    app.forget_upload_login(cam.upload_username or "")
    return cam, password


async def _confirm_upload_login(app: AlarmCloud, cid: str, password: str) -> None:
    """The camera took ``password``: it becomes the camera's only upload password (unless rotated meanwhile)."""
    pw_hash = crypto.hash_generated_secret(password)

    def _confirm(s: Session) -> str | None:
        cam = s.get(Camera, cid)
        if cam is None or cam.upload_password_pending_hash != pw_hash:
            return None
        cam.upload_password_hash, cam.upload_password_pending_hash = pw_hash, None
        s.add(cam)
        s.commit()
        return cam.upload_username

    username = await app.db.run(_confirm)
    if username:
        app.forget_upload_login(username)


async def upload_credentials(request: Request) -> Response:
    """Generate (or rotate) the camera's upload login; the password is shown once."""
    user = await require_user(request)
    app = core(request)
    cid = request.path_params["camera_id"]
    cam, password = await _rotate_upload_login(app, user, cid)
    return JSONResponse(
        {"username": cam.upload_username, "password": password, **app.upload_endpoints()}, status_code=201)


def deployment_default(app: AlarmCloud, spec: DetectorSpec, opt: DetectorOption) -> Any:
    """What a detector uses when a camera leaves ``opt`` unset: the spec's default, else the operator's setting,
    else (a setting the operator left to the detector, such as a threshold that comes with its model) the value
    the built detector holds under that name."""
    if opt.default is not None:
        return opt.default
    if spec.config_model is None or opt.key not in spec.config_model.model_fields:
        return None
    try:
        config = spec.config_model(**app.settings.plugin_settings(spec.name))
        value = getattr(config, opt.key)
        if value is None:
            value = getattr(app.plugins.detector(spec.name), opt.key, None)
    except Exception:  # a broken [plugins.<name>] table or model is reported where the detector is built
        return None
    return to_jsonable_python(value)


#: how many of a camera's latest clips tell what it uploads
SOURCE_CLIPS = 5


def upload_source(s: Session, camera_id: str) -> dict[str, Any] | None:
    """The picture size the camera uploads: the widest of its last ``SOURCE_CLIPS`` clips, with how many were looked
    at; None before its first clip. The widest, so one main-stream clip among sub-stream ones counts as main stream
    (a camera that sends both is not told it sends only the small one)."""
    # the last to arrive, not the latest recording times: a camera whose clock was reset sends new clips from 2001
    rows = s.exec(select(Clip.width, Clip.height).where(Clip.camera_id == camera_id, col(Clip.width) > 0).order_by(
        col(Clip.received_at).desc()).limit(SOURCE_CLIPS)).all()
    if not rows:
        return None
    width, height = max(rows)
    return {"width": width, "height": height, "clips": len(rows)}


def source_advice(title: str, min_width: int, source: dict[str, Any]) -> str:
    """What to tell the owner of a camera whose clips are narrower than a detector's ``min_source_width``."""
    last = "last clip" if source["clips"] == 1 else f"last {source['clips']} clips"
    said = (f"{title} is measured to work well on clips at least {min_width} px wide; this camera's {last} "
            f"{'is' if source['clips'] == 1 else 'are'} {source['width']} × {source['height']}")
    if source["height"] > source["width"]:  # a corridor or door-bell view: narrow may well be its main stream
        return (f"{said}, a narrow portrait picture. If that is not the camera's main (full-resolution) stream, set "
                "the camera to record and upload its alarm videos from it; if it is, expect the detector to be "
                "less accurate on this camera.")
    return (f"{said}, probably its sub-stream. Set the camera to record and upload its alarm videos from its main "
            "(full-resolution) stream.")


def detectors_json(app: AlarmCloud, cam: Camera, source: dict[str, Any] | None = None) -> dict[str, Any]:
    """The camera's switches and options, each available detector with the options it declares, what the camera
    uploads (``source``, from ``upload_source``) and advice for each switched-on detector that needs wider clips."""
    specs = app.plugins.detector_specs
    available = {name: {"title": title_of(spec, name), "labels": list(spec.labels), "description": spec.description,
                        "options": [o.to_json(deployment_default(app, spec, o)) for o in spec.options],
                        "min_source_width": spec.min_source_width}
                 for name, spec in specs.items()}
    enabled = {name: bool((cam.detectors or {}).get(name)) for name in specs}
    advice = [spec.source_advice(source_advice(title_of(spec, name), spec.min_source_width, source))
              for name, spec in specs.items()
              if source is not None and enabled[name] and spec.too_narrow(source["width"])]
    return {"enabled": enabled, "available": available, "options": cam.detector_options or {}, "source": source,
            "advice": advice}


async def get_detectors(request: Request) -> Response:
    """Which detectors run for this camera, their options, and which detectors (and options) the deployment offers.

    ``available.<name>.options`` lists the per-camera options a detector declares: ``key``, ``label``, ``kind``
    (``choices``: a list of ``choices[].value``; ``number``: ``minimum``..``maximum``, UI ``step``), ``help`` and
    ``default`` (the deployment default that applies while the camera leaves the option unset).
    ``available.<name>.min_source_width`` is the narrowest picture the detector's measured accuracy holds for (0:
    any); ``source`` is what the camera uploads (the widest of its last 5 clips; null before the first), and
    ``advice`` has one entry (``source_too_narrow``) per switched-on detector whose clips from this camera are
    narrower than that.
    """
    user = await require_user(request)
    app = core(request)
    cid = request.path_params["camera_id"]
    cam, source = await app.db.run(lambda s: (camera_for(s, user, cid), upload_source(s, cid)))
    return JSONResponse(detectors_json(app, cam, source))


def _merged_options(specs: dict[str, DetectorSpec], stored: dict[str, Any], options: Any) -> dict[str, Any]:
    """The camera's options after applying ``options``; ApiError (nothing changed) for anything invalid."""
    if not isinstance(options, dict):
        raise ApiError(400, "invalid_field", "options must be an object per detector, e.g. "
                       '{"plates": {"countries": ["DE"]}}')
    merged = dict(stored)
    for name, given in options.items():
        spec = specs.get(name)
        if spec is None:
            raise ApiError(400, "unknown_detector", f"no detector {name!r} is enabled on this deployment")
        if given is None:  # all of this detector's options back to the deployment defaults
            merged.pop(name, None)
            continue
        if not isinstance(given, dict):
            raise ApiError(400, "invalid_field", f"options of detector {name!r} must be an object or null")
        if not spec.options:  # a detector that declares none takes any object, as it is
            merged[name] = given
            continue
        current = dict(merged.get(name) or {})
        for key, value in given.items():
            opt = spec.option(key)
            if opt is None:
                raise ApiError(400, "invalid_field", f"detector {name!r} has no option {key!r}; its options: "
                               + ", ".join(o.key for o in spec.options))
            if value is None:  # back to the deployment default
                current.pop(key, None)
                continue
            try:
                current[key] = opt.validate(value)
            except ValueError as exc:
                raise ApiError(400, "invalid_field", f"{title_of(spec, name)}: {exc}") from None
        if current:
            merged[name] = current
        else:
            merged.pop(name, None)
    return merged


async def put_detectors(request: Request) -> Response:
    """Switch detectors on or off: ``{"rain": true, "plates": false}``; optional ``options`` per detector.

    ``{"options": {"plates": {"countries": ["DE", "AT"]}, "rain": {"threshold": 0.8}}}`` sets per-camera options.
    For a detector that declares options, each value is checked against its declaration (400 ``invalid_field``),
    keys left out keep their values, ``null`` for a key (or for the whole detector) returns it to the deployment
    default. Unknown detectors answer 400 ``unknown_detector``. Nothing is stored unless everything is valid.
    """
    user = await require_user(request)
    app = core(request)
    cid = request.path_params["camera_id"]
    data = await json_body(request)
    options = data.pop("options", None)
    specs = app.plugins.detector_specs
    for name, value in data.items():
        if name not in specs:
            raise ApiError(400, "unknown_detector", f"no detector {name!r} is enabled on this deployment")
        if not isinstance(value, bool):
            raise ApiError(400, "invalid_field", f"detector {name!r} must be true or false")

    def _put(s: Session) -> tuple[Camera, dict[str, Any] | None]:
        cam = camera_for(s, user, cid, "admin")
        if options is not None:
            cam.detector_options = _merged_options(specs, cam.detector_options or {}, options)
        cam.detectors = {**(cam.detectors or {}), **data}
        s.add(cam)
        s.commit()
        return cam, upload_source(s, cid)

    cam, source = await app.db.run(_put)
    await app.emit(Event(CAMERA_CHANGED, user.tenant_id, cam.id, {"change": "detectors"}))
    return JSONResponse(detectors_json(app, cam, source))


def camera_access(app: AlarmCloud, cam: Camera) -> CameraAccess:
    """Decrypt the camera's login for one call; the address must lie in the allowed networks."""
    box = app.secret_box
    host = box.decrypt(cam.host_enc, context=f"camera:{cam.id}:host")
    address = None
    if host:
        try:
            address = check_camera_address(host, app.settings.camera_networks)
        except AddressNotAllowed as exc:
            raise ApiError(403, "address_not_allowed", str(exc)) from None
    return CameraAccess(
        id=cam.id, model=cam.model, address=address, port=cam.port,
        username=box.decrypt(cam.username_enc, context=f"camera:{cam.id}:username"),
        password=box.decrypt(cam.password_enc, context=f"camera:{cam.id}:password"),
        p2p_id=box.decrypt(cam.p2p_id_enc, context=f"camera:{cam.id}:p2p_id"),
    )


def reachable(app: AlarmCloud, cam: Camera) -> CameraAccess:
    """``camera_access`` for a call to the camera; 409 ``no_address`` while it has no local address."""
    access = camera_access(app, cam)
    if access.address is None:
        raise ApiError(409, "no_address", "the camera has no local address yet: enter its IP address or host name "
                       "(host) on the camera page first")
    return access


def adapter_for(app: AlarmCloud, cam: Camera) -> CameraAdapter:
    """The camera's brand adapter; 409 when the operator has not enabled it."""
    adapter = app.plugins.camera_adapter(cam.brand)
    if adapter is None:
        raise ApiError(409, "adapter_unavailable", f"the {cam.brand} adapter is not enabled")
    return adapter


def _camera_error(exc: CameraError) -> ApiError:
    status = {"unreachable": 504, "refused": 502, "unsupported": 400, "invalid": 400}.get(exc.code, 502)
    return ApiError(status, f"camera_{exc.code}", exc.message)


async def run_action(app: AlarmCloud, cam: Camera, action: str, value: Any, area: int | None) -> None:
    """Validate and run a camera action through its adapter; records state the API shows."""
    if action not in CAMERA_ACTIONS:
        raise ApiError(400, "unknown_action", f"action must be one of {', '.join(CAMERA_ACTIONS)}")
    adapter = adapter_for(app, cam)
    access = reachable(app, cam)
    try:
        await adapter.control(access, action, value, area)
    except CameraError as exc:
        raise _camera_error(exc) from None
    if action == "motion_detection":
        def _remember(s: Session) -> None:
            row = s.get(Camera, cam.id)
            if row is not None:
                row.motion_detection = bool(value)
                s.add(row)
                s.commit()

        await app.db.run(_remember)
    await app.emit(Event(CAMERA_CHANGED, cam.account_id, cam.id, {"change": "action", "action": action,
                                                                  "value": value, "area": area}))


async def camera_action(request: Request) -> Response:
    """Control the camera: motion detection, alarm e-mail, presets, alarm areas, sensitivity."""
    user = await require_user(request)
    app = core(request)
    cid = request.path_params["camera_id"]
    data = await json_body(request)
    only_fields(data, {"action", "value", "area"})
    action = field(data, "action", str)
    area = field(data, "area", int, required=False)
    if "value" not in data:
        raise ApiError(400, "missing_field", "field 'value' is required")
    cam = await app.db.run(lambda s: camera_for(s, user, cid, "control"))
    await run_action(app, cam, action, data["value"], area)
    return JSONResponse({"ok": True, "action": action, "value": data["value"], "area": area})


async def live(request: Request) -> Response:
    """Live-view URLs without credentials, and the snapshot proxy URL."""
    user = await require_user(request)
    app = core(request)
    cid = request.path_params["camera_id"]
    cam = await app.db.run(lambda s: camera_for(s, user, cid))
    adapter = adapter_for(app, cam)
    try:
        stream = adapter.live_stream(reachable(app, cam))
    except CameraError as exc:
        raise _camera_error(exc) from None
    return JSONResponse({"rtsp_main": stream.rtsp_main, "rtsp_sub": stream.rtsp_sub,
                         "rtsp_third": stream.rtsp_third,
                         "snapshot_url": f"/api/v1/cameras/{cam.id}/snapshot"})


async def snapshot(request: Request) -> Response:
    """A JPEG from the camera, proxied so the browser never sees the camera password."""
    user = await require_user(request)
    app = core(request)
    cid = request.path_params["camera_id"]
    cam = await app.db.run(lambda s: camera_for(s, user, cid))
    adapter = adapter_for(app, cam)
    try:
        jpeg = await adapter.snapshot(reachable(app, cam))
    except CameraError as exc:
        raise _camera_error(exc) from None
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


async def setup_upload(request: Request) -> Response:
    """One-click setup: configure the camera to push alarm clips here (rotates the upload password)."""
    user = await require_user(request)
    app = core(request)
    cid = request.path_params["camera_id"]
    cam = await app.db.run(lambda s: camera_for(s, user, cid, "admin"))
    adapter = adapter_for(app, cam)
    access = reachable(app, cam)  # before a new password is made: a camera that cannot be reached keeps uploading
    # the new password is valid beside the old one until the camera has taken it: a setup that fails part-way (the
    # camera refuses a step, reboots, times out) may or may not have written it, and the camera keeps uploading
    cam, password = await _rotate_upload_login(app, user, cid, pending=True)
    ep = app.upload_endpoints()
    target = UploadTarget(ftp_host=ep["ftp_host"], ftp_port=ep["ftp_port"], username=cam.upload_username or "",
                          password=password, http_url=ep["http_url"],
                          alarm_server_url=app.settings.public_url.rstrip("/") + f"/plugins/{cam.brand}/alarm",
                          ftps=app.settings.ftp.tls_cert is not None)
    try:
        done = await adapter.setup_upload(access, target)
    except CameraError as exc:
        raise _camera_error(exc) from None
    await _confirm_upload_login(app, cam.id, password)
    return JSONResponse({"ok": True, "configured": done})


async def rejections(request: Request) -> Response:
    """Rejected uploads of a camera: when and why (the data itself was deleted at once)."""
    user = await require_user(request)
    cid = request.path_params["camera_id"]

    def _list(s: Session) -> list[dict[str, Any]]:
        camera_for(s, user, cid)
        rows = s.exec(select(Rejection).where(Rejection.camera_id == cid).order_by(
            Rejection.at.desc()).limit(100)).all()  # type: ignore[attr-defined]
        return [{"at": iso(r.at), "code": r.code, "message": r.message} for r in rows]

    return JSONResponse({"items": await core(request).db.run(_list)})


async def camera_models(request: Request) -> Response:
    """The model catalogue of every enabled camera adapter."""
    app = core(request)
    out: dict[str, Any] = {}
    for brand in app.plugins.camera_specs:
        adapter = app.plugins.camera_adapter(brand)
        if adapter is None:
            continue
        out[brand] = [{"name": m.name, "generation": m.generation, "resolutions": [list(r) for r in m.resolutions],
                       "codecs": list(m.codecs), "frame_rates": list(m.frame_rates), "ptz": m.ptz, "pir": m.pir}
                      for m in adapter.models()]
    return JSONResponse({"brands": out})


def right_rows_for(s: Session, camera_id: str) -> list[CameraRight]:
    return list(s.exec(select(CameraRight).where(CameraRight.camera_id == camera_id)).all())

