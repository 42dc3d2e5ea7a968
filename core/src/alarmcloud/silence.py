"""Silent cameras: a camera whose power, network or upload settings went away sends nothing, which looks just like a
quiet day. With a camera's ``silent_after_days`` set, its people are told once when it has sent no clip for that
long (by e-mail, push and Telegram as each chose, like the view check's notices; webhooks get ``camera.silent``);
its next clip ends the silence."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
from sqlmodel import col, select

from alarmcloud.events import CAMERA_SILENT, Event
from alarmcloud.models import Camera, Rejection, aware, iso, utcnow
from alarmcloud.notify import queue_view_notice

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

log = logging.getLogger(__name__)

#: seconds between two looks at the cameras (a silence of days is told within minutes)
CHECK_INTERVAL = 600.0
#: the longest silence a camera may be watched for
MAX_DAYS = 30


def _notice(app: AlarmCloud, cam: Camera, last: datetime | None, days: int,
            refused: Rejection | None) -> tuple[str, str]:
    base = app.settings.public_url.rstrip("/")
    since = f"since {last:%Y-%m-%d %H:%M} UTC" if last else "since it was added"
    subject = f"Camera {cam.name} has sent no clip for {days} day{'s' if days != 1 else ''}"
    if refused is not None:  # it does send, but what it sends is refused: the reason is what to fix
        subject = f"Camera {cam.name} has sent no clip that could be stored for {days} day{'s' if days != 1 else ''}"
        cause = (f"It does upload, but its uploads are refused; the latest, at {aware(refused.at):%Y-%m-%d %H:%M} "
                 f"UTC: {refused.message} ({refused.code}). The camera's page lists its refused uploads.")
    else:
        cause = ("Check that it has power and network, and that its alarm upload settings still point to this "
                 "cloud (a reset camera forgets them).")
    text = (f"Camera {cam.name} has sent no alarm clip that could be stored {since}.\n\n{cause} You asked to be "
            f"told after {cam.silent_after_days} day{'s' if cam.silent_after_days != 1 else ''} without a clip; "
            f"change that on the camera's page: {base}/cameras/{cam.id}\n")
    return subject, text


def check(app: AlarmCloud, now: datetime | None = None) -> list[str]:
    """Tell the people of every watched camera that fell silent and was not told about it yet; the ids told."""
    now = now or utcnow()
    with app.db.session() as s:  # one read of the cameras table; only those due are locked and looked at
        rows = s.exec(select(Camera.id, Camera.silent_after_days, Camera.last_clip_at, Camera.created_at).where(
            col(Camera.silent_after_days).is_not(None), col(Camera.silent_notified_at).is_(None))).all()
    due = [cid for cid, days, last, created in rows if now - aware(last or created) >= timedelta(days=days)]
    told: list[str] = []
    for cid in due:
        with app.db.session() as s:
            # locked: two servers looking at once tell the camera's people once
            cam = s.get(Camera, cid, with_for_update=True, populate_existing=True)
            if cam is None or not cam.silent_after_days or cam.silent_notified_at is not None:
                continue
            last = aware(cam.last_clip_at) if cam.last_clip_at else None
            quiet = now - (last or aware(cam.created_at))
            if quiet < timedelta(days=cam.silent_after_days):
                continue
            cam.silent_notified_at = now
            refused = s.exec(select(Rejection).where(Rejection.camera_id == cam.id,
                                                     Rejection.at >= (last or aware(cam.created_at)))
                             .order_by(col(Rejection.at).desc()).limit(1)).first()
            subject, text = _notice(app, cam, last, quiet.days, refused)
            queue_view_notice(app, s, cam, subject, text, what="silent")
            s.add(cam)
            s.commit()
            event = Event(CAMERA_SILENT, cam.account_id, cam.id,
                          {"last_clip_at": iso(last) if last else None, "days": quiet.days,
                           "silent_after_days": cam.silent_after_days,
                           "last_refused": {"at": iso(refused.at), "code": refused.code, "message": refused.message}
                           if refused is not None else None})
        told.append(cid)
        app.emit_sync(event)
    return told


async def background(app: AlarmCloud) -> None:
    """Look at the cameras every ``CHECK_INTERVAL`` seconds while the server runs."""
    while True:
        await anyio.sleep(CHECK_INTERVAL)
        try:
            told = await anyio.to_thread.run_sync(check, app)
            if told:
                log.info("silent cameras told: %d", len(told))
        except Exception:
            log.exception("silent-camera check failed")
