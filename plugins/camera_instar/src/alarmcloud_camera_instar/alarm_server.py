"""The INSTAR "alarm server": cameras call ``/plugins/instar/alarm`` on every alarm with what triggered it.

Query forms (``reference/instar_cameras.md`` §2.5): ``active=`` (v1: 1-4 area, 5 alarm input/PIR, 6 audio,
7-10 PIR and area 1-4, 99 manual), ``object=`` (bitmask 1 person, 2 vehicle, 4 animal) and on newer WQHD
firmware ``trigger=`` (v2, values not documented: recorded as the raw code). Older firmware sends
``?&active=6`` (leading ``&``). WQHD may POST instead of GET. The camera authenticates with its upload
credentials: HTTP Basic (what one-click setup configures) or ``user``/``password`` custom query attributes.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from alarmcloud import read_body
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
OBJECTS = ((1, "person"), (2, "vehicle"), (4, "animal"))
#: query attributes that carry credentials: never stored with the trigger
_SECRET_KEYS = frozenset({"user", "password", "pwd", "usr"})


class TriggerError(ValueError):
    """The query does not describe an alarm trigger."""


def parse_trigger(params: dict[str, str]) -> dict[str, Any]:
    """Turn the alarm-server query into the trigger record stored with the camera's next clip."""
    active = _code(params, "active")
    trigger = _code(params, "trigger")
    if active is None and trigger is None:
        raise TriggerError("the request has neither active= nor trigger=")
    record: dict[str, Any] = {"source": "instar_alarm_server", "api": "v1" if active is not None else "v2"}
    labels: list[str] = []
    areas: list[int] = []
    if active is not None:
        record["active"] = active
        if 1 <= active <= 4:
            record["reason"], areas = "area", [active]
        elif active == 5:
            record["reason"] = "input_or_pir"
            labels.append("PIR / alarm input")
        elif active == 6:
            record["reason"] = "audio"
            labels.append("audio")
        elif 7 <= active <= 10:
            record["reason"], areas = "pir_and_area", [active - 6]
            labels.append("PIR")
        elif active == 99:
            record["reason"] = "manual"
            labels.append("manual trigger")
        else:
            raise TriggerError(f"active={active} is not an INSTAR trigger code")
        labels[:0] = [f"area {n}" for n in areas]
    if trigger is not None:
        record["trigger"] = trigger
        if active is None:
            record["reason"] = "unknown"
            labels.append(f"trigger {trigger}")
    record["areas"] = areas
    obj = _code(params, "object")
    objects = [name for bit, name in OBJECTS if obj and obj & bit]
    if obj is not None:
        record["object"] = obj
    record["objects"] = objects
    labels += objects
    record["labels"] = labels
    record["summary"] = " + ".join(labels)
    extra = {k: v[:64] for k, v in params.items() if k not in _SECRET_KEYS | {"active", "trigger", "object"}}
    if extra:
        record["extra"] = dict(list(extra.items())[:5])
    return record


def _code(params: dict[str, str], key: str) -> int | None:
    raw = params.get(key)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise TriggerError(f"{key}={raw[:20]!r} is not a number") from None
    if value < 0:
        raise TriggerError(f"{key}={value} is negative")
    return value


def _error(status: int, code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="alarmcloud"'} if status == 401 else None
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


async def _params(request: Request) -> dict[str, str] | JSONResponse:
    # parse the raw query ourselves: blank pairs (the leading "&" of old firmware) are skipped
    params = dict(parse_qsl(request.url.query, keep_blank_values=True))
    if request.method == "POST":
        length = request.headers.get("content-length") or "0"
        raw = await read_body(request, MAX_BODY) if length.isdigit() else None  # chunked bodies are counted too
        if raw is None:
            return _error(413, "body_too_large", "the alarm-server body is too large")
        body = raw.decode("utf-8", "replace").strip()
        if body.startswith("{"):
            try:
                data = json.loads(body)
            except (json.JSONDecodeError, RecursionError):  # RecursionError: nested thousands of levels deep
                return _error(400, "invalid_body", "the body is not valid JSON")
            if isinstance(data, dict):
                params.update({str(k): str(v) for k, v in data.items() if v is not None})
        elif body:
            params.update(dict(parse_qsl(body.lstrip("?"), keep_blank_values=True)))
    return params


async def alarm(request: Request) -> JSONResponse:
    """Authenticate the camera, parse its trigger and remember it for the camera's next clip."""
    params = await _params(request)
    if isinstance(params, JSONResponse):
        return params
    creds = _basic(request) or (
        (params["user"], params["password"]) if "user" in params and "password" in params else None
    )
    if creds is None:
        return _error(401, "unauthorized", "the camera must send its upload credentials (HTTP Basic)")
    services = request.app.state.alarmcloud.services
    camera_id = await services.authenticate_camera(*creds)
    if camera_id is None:
        return _error(401, "unauthorized", "unknown upload credentials")
    try:
        trigger = parse_trigger(params)
    except TriggerError as exc:
        return _error(400, "invalid_trigger", str(exc))
    await services.record_camera_trigger(camera_id, trigger)
    log.info("camera %s: alarm trigger %s", camera_id, trigger["summary"] or "(none)")
    return JSONResponse({"recorded": True, "summary": trigger["summary"]})


def routes() -> list[BaseRoute]:
    """The plugin's routes; the core mounts them under ``/plugins/instar/``."""
    return [Route("/alarm", alarm, methods=["GET", "POST"], name="instar_alarm")]
