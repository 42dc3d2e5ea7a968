"""Snooze: a person silences their own alarm messages (e-mail, push, Telegram) for every camera or one camera for a
while ("I am in the garden for an hour"). Clips are still stored and analysed; webhooks, linked services and the
camera-view notices (a covered or moved camera) are not snoozed. When a snooze ends, by itself or resumed, the
person gets one message that counts the alarms they were not told about (none when there were none).

Each snooze is stored as ``{"from": <start>, "until": <end>}`` under ``"*"`` or a camera id in
``Account.notify_snoozes`` (a plain end time, as stored before the counts, still reads: that snooze's end is
counted from nothing)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from sqlmodel import Session, col, func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from alarmcloud.auth import User, camera_for, core, require_user, visible_cameras
from alarmcloud.errors import ApiError, field, json_body, only_fields
from alarmcloud.models import Account, Camera, Clip, iso, utcnow

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

log = logging.getLogger(__name__)

ALL = "*"
#: the longest snooze: a week (a longer silence is switching the channel off, on the notifications page)
MAX_MINUTES = 7 * 24 * 60


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def _spans(person: Account | dict[str, Any] | None) -> dict[str, tuple[datetime | None, datetime]]:
    """Every stored snooze of a person (or of their ``notify_snoozes``), ended or not: "*" or a camera id ->
    (from, until), aware UTC (from None when unknown)."""
    stored = person.notify_snoozes if isinstance(person, Account) else person
    out = {}
    for key, value in (stored or {}).items():
        start, until = (_time(value.get("from")), _time(value.get("until"))) if isinstance(value, dict) else (
            None, _time(value))
        if until is not None:
            out[key] = (start, until)
    return out


def _stored(spans: dict[str, tuple[datetime | None, datetime]]) -> dict[str, Any] | None:
    return {k: {"from": iso(a) if a else None, "until": iso(b)} for k, (a, b) in spans.items()} or None


def active(person: Account, now: datetime | None = None) -> dict[str, datetime]:
    """The person's snoozes that have not ended: "*" or a camera id -> until (aware UTC)."""
    now = now or utcnow()
    return {key: until for key, (_, until) in _spans(person).items() if until > now}


def _told(app: AlarmCloud, s: Session, person: Account, key: str, start: datetime | None, end: datetime) -> bool:
    """Queue the message that counts the real alarms of the snoozed cameras (the person may see) between ``start``
    and ``end``; False when there were none (or the start is unknown)."""
    if start is None or end <= start:
        return False
    user = User(person, "session")
    cams = {c.id: c.name for c in visible_cameras(s, user, Camera.name)}
    if key != ALL:
        cams = {key: cams[key]} if key in cams else {}
    if not cams:
        return False
    counts = dict(s.exec(select(Clip.camera_id, func.count(col(Clip.id))).where(
        col(Clip.camera_id).in_(list(cams)), col(Clip.received_at) >= start, col(Clip.received_at) < end,
        col(Clip.verdict).like("alarm%")).group_by(Clip.camera_id)).all())
    total = sum(counts.values())
    if not total:
        return False
    which = "every camera" if key == ALL else f"camera {cams[key]}"
    per = ", ".join(f"{cams[c]}: {n}" for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], cams[kv[0]])))
    subject = f"While snoozed: {total} alarm{'s' if total != 1 else ''}"
    text = (f"Your alarm messages about {which} were snoozed from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} "
            f"UTC. Meanwhile {total} real alarm{'s were' if total != 1 else ' was'} recorded ({per}).\n\n"
            f"See them: {app.settings.public_url.rstrip('/')}/\n")
    from alarmcloud.notify import queue_personal_message  # notify reads the snoozes: imported when used

    return queue_personal_message(app, s, person, subject, text, "/")


def finish(app: AlarmCloud, s: Session, person: Account, keys: list[str], now: datetime) -> None:
    """End the person's snoozes ``keys`` (those that ended already, at their end; the others now), telling each
    one's missed alarms; the caller holds the person's row and commits."""
    spans = _spans(person)
    for key in keys:
        if key in spans:
            start, until = spans.pop(key)
            _told(app, s, person, key, start, min(until, now))
    person.notify_snoozes = _stored(spans)
    s.add(person)


def ended(person: Account | dict[str, Any] | None, now: datetime) -> list[str]:
    """The person's snoozes (keys) that have ended by ``now`` and are still stored."""
    return [key for key, (_, until) in _spans(person).items() if until <= now]


#: seconds between two looks for snoozes that ended by themselves
CHECK_INTERVAL = 60.0


def check(app: AlarmCloud, now: datetime | None = None) -> int:
    """Finish every snooze that has ended (its message of missed alarms); the number of people told or cleared."""
    now = now or utcnow()
    with app.db.session() as s:  # two columns of the accounts that have snoozes; only those with one ended are locked
        rows = s.exec(select(Account.id, Account.notify_snoozes).where(col(Account.notify_snoozes).is_not(None)))
        ids = [i for i, snoozes in rows.all() if ended(snoozes, now)]
    for account_id in ids:
        with app.db.session() as s:
            person = s.get(Account, account_id, with_for_update=True, populate_existing=True)  # once, also with two
            if person is None or not (keys := ended(person, now)):  # servers looking at once
                continue
            finish(app, s, person, keys, now)
            s.commit()
    return len(ids)


async def background(app: AlarmCloud) -> None:
    """Finish the snoozes that end, every ``CHECK_INTERVAL`` seconds while the server runs."""
    while True:
        await anyio.sleep(CHECK_INTERVAL)
        try:
            await anyio.to_thread.run_sync(check, app)
        except Exception:
            log.exception("snooze check failed")


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
    app = core(request)
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
        finish(app, s, person, ended(person, now), now)  # ended snoozes are told and dropped on the way
        spans = _spans(person)
        key = camera_id or ALL
        start = spans[key][0] if key in spans else now  # snoozing again moves the end; the count starts as before
        spans[key] = (start, now + timedelta(minutes=minutes))
        person.notify_snoozes = _stored(spans)
        s.add(person)
        s.commit()
        return snooze_json(s, user)

    return JSONResponse(await app.db.run(_save))


async def delete_snooze(request: Request) -> Response:
    """End the caller's snoozes: all of them, or with ``?camera_id=`` that camera's only ("all" ends the one for
    every camera)."""
    user = await require_user(request)
    which = request.query_params.get("camera_id", "")
    if len(which) > 64:
        raise ApiError(400, "invalid_field", "camera_id is too long")

    app = core(request)

    def _end(s: Session) -> dict[str, Any]:
        if which and which != "all":
            camera_for(s, user, which)
        person = s.get(Account, user.id, with_for_update=True, populate_existing=True)
        assert person is not None
        now = utcnow()
        keys = list(_spans(person)) if not which else [ALL if which == "all" else which, *ended(person, now)]
        finish(app, s, person, list(dict.fromkeys(keys)), now)  # each ended one tells its missed alarms
        s.commit()
        return snooze_json(s, user)

    return JSONResponse(await app.db.run(_end))


def routes(app: object) -> list[BaseRoute]:
    """Mounted by ``create_app`` (a core feature module)."""
    return [
        Route("/api/v1/me/snooze", get_snooze, methods=["GET"]),
        Route("/api/v1/me/snooze", put_snooze, methods=["PUT"]),
        Route("/api/v1/me/snooze", delete_snooze, methods=["DELETE"]),
    ]
