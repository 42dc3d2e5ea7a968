"""Snooze: a person silences their own alarm messages (e-mail, push, Telegram) for every camera or one camera for a
while ("I am in the garden for an hour"). Clips are still stored and analysed; webhooks, linked services and the
camera-view notices (a covered or moved camera) are not snoozed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from alarmcloud.auth import User, camera_for, core, require_user, visible_cameras
from alarmcloud.errors import ApiError, field, json_body, only_fields
from alarmcloud.models import Account, Camera, iso, utcnow

ALL = "*"
#: the longest snooze: a week (a longer silence is switching the channel off, on the notifications page)
MAX_MINUTES = 7 * 24 * 60


def _until(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def active(person: Account, now: datetime | None = None) -> dict[str, datetime]:
    """The person's snoozes that have not ended: "*" or a camera id -> until (aware UTC)."""
    now = now or utcnow()
    out = {}
    for key, value in (person.notify_snoozes or {}).items():
        until = _until(value)
        if until is not None and until > now:
            out[key] = until
    return out


def snoozed(person: Account, camera_id: str, now: datetime | None = None) -> bool:
    """Whether the person's alarm messages about this camera are snoozed now."""
    on = active(person, now)
    return ALL in on or camera_id in on


def snooze_json(s: Session, user: User, visible: list[Camera] | None = None) -> dict[str, Any]:
    """``{"all": until or null, "cameras": [{camera_id, name, until}]}``: the caller's snoozes that have not ended,
    of the cameras they may see (``visible``, by name, when the caller has read them already), by camera name."""
    person = s.get(Account, user.id)
    assert person is not None
    on = active(person)
    if visible is None:
        visible = visible_cameras(s, user, Camera.name)
    cams = [c for c in visible if c.id in on]
    return {"all": iso(on[ALL]) if ALL in on else None,
            "cameras": [{"camera_id": c.id, "name": c.name, "until": iso(on[c.id])} for c in cams]}


async def get_snooze(request: Request) -> Response:
    """The caller's snoozed alarm messages: for every camera (``all``) and per camera, until when."""
    user = await require_user(request)
    return JSONResponse(await core(request).db.run(lambda s: snooze_json(s, user)))


async def put_snooze(request: Request) -> Response:
    """Snooze the caller's alarm messages (e-mail, push, Telegram) for ``minutes`` (1 to 10080, a week), for one
    camera (``camera_id``) or every camera; snoozing again sets the new end. Webhooks and linked services still get
    the events, and the clips are stored and analysed as always."""
    user = await require_user(request)
    data = await json_body(request)
    only_fields(data, {"minutes", "camera_id"})
    minutes = field(data, "minutes", int)
    if isinstance(minutes, bool) or not 1 <= minutes <= MAX_MINUTES:
        raise ApiError(400, "invalid_field", f"minutes must be a whole number from 1 to {MAX_MINUTES} (a week)")
    camera_id = field(data, "camera_id", str, required=False, max_len=64)

    def _save(s: Session) -> dict[str, Any]:
        if camera_id:
            camera_for(s, user, camera_id)  # 404 for a camera the caller may not see
        person = s.get(Account, user.id, with_for_update=True, populate_existing=True)
        assert person is not None
        now = utcnow()
        kept = {k: iso(v) for k, v in active(person, now).items()}  # ended snoozes are dropped on the way
        kept[camera_id or ALL] = iso(now + timedelta(minutes=minutes))
        person.notify_snoozes = kept
        s.add(person)
        s.commit()
        return snooze_json(s, user)

    return JSONResponse(await core(request).db.run(_save))


async def delete_snooze(request: Request) -> Response:
    """End the caller's snoozes: all of them, or with ``?camera_id=`` that camera's only ("all" ends the one for
    every camera)."""
    user = await require_user(request)
    which = request.query_params.get("camera_id", "")
    if len(which) > 64:
        raise ApiError(400, "invalid_field", "camera_id is too long")

    def _end(s: Session) -> dict[str, Any]:
        if which and which != "all":
            camera_for(s, user, which)
        person = s.get(Account, user.id, with_for_update=True, populate_existing=True)
        assert person is not None
        left = {k: iso(v) for k, v in active(person).items()}
        if not which:
            left = {}
        else:
            left.pop(ALL if which == "all" else which, None)
        person.notify_snoozes = left or None
        s.add(person)
        s.commit()
        return snooze_json(s, user)

    return JSONResponse(await core(request).db.run(_end))


def routes(app: object) -> list[BaseRoute]:
    """Mounted by ``create_app`` (a core feature module)."""
    return [
        Route("/api/v1/me/snooze", get_snooze, methods=["GET"]),
        Route("/api/v1/me/snooze", put_snooze, methods=["PUT"]),
        Route("/api/v1/me/snooze", delete_snooze, methods=["DELETE"]),
    ]
