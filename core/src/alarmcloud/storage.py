"""Stored clips: quota and retention accounting, eviction of the oldest clips, deletion, storage status."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, case, delete, func, or_
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from alarmcloud import erasures
from alarmcloud.auth import core, require_user, visible_camera_ids
from alarmcloud.events import STORAGE_ALMOST_FULL, Event
from alarmcloud.models import Account, Camera, Clip, Feedback, FindingRow, Job, Series, iso, utcnow

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud
    from alarmcloud.config import Settings

log = logging.getLogger(__name__)


def delete_clip_rows(s: Session, clip: Clip) -> list[str]:
    """Delete a clip's rows (findings, feedback, jobs, the clip; its series when empty); returns blob keys (none when
    another transaction deleted the clip first)."""
    # the clip row is locked first, as the detection write-back and the mask swap do (PostgreSQL: no deadlock), and
    # read again under the lock: a mask swap that committed meanwhile gave the clip new files
    locked = s.get(Clip, clip.id, with_for_update=True, populate_existing=True)
    if locked is None:
        return []
    clip = locked
    s.exec(delete(FindingRow).where(FindingRow.clip_id == clip.id))  # type: ignore[arg-type]
    s.exec(delete(Feedback).where(Feedback.clip_id == clip.id))  # type: ignore[arg-type]
    s.exec(delete(Job).where(Job.clip_id == clip.id))  # type: ignore[arg-type]
    keys = [clip.blob_key] + ([clip.thumb_key] if clip.thumb_key else [])
    series = s.get(Series, clip.series_id, with_for_update=True, populate_existing=True)  # its count: one at a time
    s.delete(clip)
    s.flush()
    if series is not None:
        series.clip_count = max(0, series.clip_count - 1)
        if series.clip_count == 0:
            s.delete(series)
        else:
            s.add(series)
    return keys


def delete_camera_rows(s: Session, camera_id: str) -> list[str]:
    """Delete a camera's rows with its clips' (the caller commits); returns the clips' blob keys."""
    from alarmcloud.models import CameraRight, Rejection

    keys: list[str] = []
    for clip in s.exec(select(Clip).where(Clip.camera_id == camera_id)).all():
        keys += delete_clip_rows(s, clip)
    # then the camera row (PostgreSQL; clips before the camera, the order of the detection write-back): an upload
    # storing a clip of it holds a key-share lock, so this waits for that clip and the second pass deletes it
    # too; an upload that comes later waits for this deletion and then finds the camera gone
    s.exec(select(Camera.id).where(Camera.id == camera_id).with_for_update()).first()
    for clip in s.exec(select(Clip).where(Clip.camera_id == camera_id)).all():
        keys += delete_clip_rows(s, clip)
    s.exec(delete(Rejection).where(Rejection.camera_id == camera_id))  # type: ignore[arg-type]
    s.exec(delete(CameraRight).where(CameraRight.camera_id == camera_id))  # type: ignore[arg-type]
    s.exec(delete(Series).where(Series.camera_id == camera_id))  # type: ignore[arg-type]
    cam = s.get(Camera, camera_id)
    if cam is not None:
        s.delete(cam)
    return keys


def used_bytes(s: Session, account_id: str) -> int:
    total = s.exec(select(func.coalesce(func.sum(Clip.size_bytes), 0)).where(Clip.account_id == account_id)).one()
    return int(total)


def quota_bytes(settings: Settings, account: Account | None) -> int:
    """The account's own quota, else the deployment's."""
    return (account.quota_bytes if account is not None else None) or settings.storage.quota_bytes


def retention_days(settings: Settings, account: Account | None) -> int:
    """How many days the account keeps its clips: its own setting, else the deployment's."""
    return (account.retention_days if account is not None else None) or settings.storage.retention_days


def almost_full_event(settings: Settings, account_id: str, used_before: int, used_after: int,
                      quota: int) -> Event | None:
    """``storage.almost_full`` when a change of the stored bytes crosses the threshold (once per crossing, not for
    every clip while the store stays full)."""
    limit = settings.storage.almost_full_ratio * quota
    if not used_before < limit <= used_after:
        return None
    return Event(STORAGE_ALMOST_FULL, account_id, None, {
        "used_ratio": round(used_after / quota, 4), "used_bytes": used_after, "quota_bytes": quota})


def kept_bytes(s: Session, account_id: str) -> int:
    """Bytes of the clips the account keeps (``Clip.kept_at``)."""
    total = s.exec(select(func.coalesce(func.sum(Clip.size_bytes), 0)).where(
        Clip.account_id == account_id, col(Clip.kept_at).is_not(None))).one()
    return int(total)


def kept_limit_bytes(settings: Settings, account: Account | None) -> int:
    """How many bytes of kept clips the account may have: ``storage.kept_max_ratio`` of its quota."""
    return int(settings.storage.kept_max_ratio * quota_bytes(settings, account))


def make_room(s: Session, account: Account, incoming: int, quota: int) -> list[str]:
    """Evict the account's oldest clips, never a kept one, until ``incoming`` bytes fit; returns blob keys to delete
    after commit."""
    keys: list[str] = []
    used = used_bytes(s, account.id)
    while used + incoming > quota:
        oldest = s.exec(select(Clip).where(Clip.account_id == account.id, col(Clip.kept_at).is_(None)).order_by(
            Clip.started_at, Clip.id).limit(1)).first()
        if oldest is None:
            break
        used -= oldest.size_bytes
        keys += delete_clip_rows(s, oldest)
    return keys


def kept_since_before(cutoff: datetime) -> ColumnElement[bool]:
    """Clips recorded, or received by the server, before ``cutoff``: what retention deletes (the server's own time
    too: a camera whose clock ran ahead cannot keep its clips, or their plate reads, past the retention period)."""
    return or_(col(Clip.started_at) < cutoff, col(Clip.received_at) < cutoff)


def expired_clips(s: Session, account_id: str, retention_days: int, now: datetime | None = None) -> list[Clip]:
    """The account's clips recorded, or received, more than ``retention_days`` ago (``kept_since_before``), but
    those the owner keeps."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    return list(s.exec(select(Clip).where(Clip.account_id == account_id, kept_since_before(cutoff),
                                          col(Clip.kept_at).is_(None))).all())


class StorageService:
    """Deletes blobs only after the rows are gone, so a crash never leaves a row pointing at nothing."""

    def __init__(self, app: AlarmCloud) -> None:
        self.app = app

    def delete_blobs(self, keys: list[str]) -> None:
        for key in keys:
            self.app.blobs.delete(key)

    async def delete_clip(self, clip_id: str) -> None:
        """The owner deletes an event: written to the erasure register (a restore deletes it again)."""

        def _del(s: Session) -> list[str]:
            clip = s.get(Clip, clip_id)
            if clip is None:
                return []
            keys = delete_clip_rows(s, clip)
            with erasures.recorded(self.app.settings, "clip", [clip_id]):
                s.commit()
            return keys

        self.delete_blobs(await self.app.db.run(_del))

    async def delete_camera(self, camera_id: str) -> None:
        """The owner deletes a camera with its clips: written to the erasure register."""

        def _del(s: Session) -> list[str]:
            keys = delete_camera_rows(s, camera_id)
            with erasures.recorded(self.app.settings, "camera", [camera_id]):
                s.commit()
            return keys

        self.delete_blobs(await self.app.db.run(_del))

    def status(self, s: Session, account_id: str, camera_ids: list[str] | None = None) -> dict[str, Any]:
        """The account's quota and use. ``camera_ids`` (a sub-user's cameras): the clip count, the oldest clip and
        the per-camera rows cover those cameras only; quota, used and free bytes stay the account's (the space is
        shared: one figure, no camera, clip or name of the others)."""
        acc = s.get(Account, account_id)
        quota = quota_bytes(self.app.settings, acc)
        days = retention_days(self.app.settings, acc)
        kept = col(Clip.kept_at).is_not(None)
        rows = s.exec(select(Clip.camera_id, func.count(), func.coalesce(func.sum(Clip.size_bytes), 0),
                             func.min(Clip.started_at), func.count(Clip.kept_at),
                             func.coalesce(func.sum(case((kept, Clip.size_bytes), else_=0)), 0))
                      .where(Clip.account_id == account_id).group_by(Clip.camera_id)).all()
        names = {c.id: c.name for c in s.exec(select(Camera).where(Camera.account_id == account_id)).all()}
        per_camera = [{"camera_id": cid, "name": names.get(cid), "clips": int(n), "bytes": int(b),
                       "oldest_clip": iso(o) if o else None, "kept_clips": int(kn), "kept_bytes": int(kb)}
                      for cid, n, b, o, kn, kb in rows]
        used = sum(p["bytes"] for p in per_camera)
        kept_used = sum(p["kept_bytes"] for p in per_camera)
        if camera_ids is not None:
            per_camera = [p for p in per_camera if p["camera_id"] in camera_ids]
        oldest = min((p["oldest_clip"] for p in per_camera if p["oldest_clip"]), default=None)
        return {"quota_bytes": quota, "used_bytes": used, "free_bytes": max(0, quota - used),
                "used_ratio": round(used / quota, 4) if quota else 0.0, "retention_days": days,
                "clip_count": sum(p["clips"] for p in per_camera), "oldest_clip": oldest,
                "kept_count": sum(p["kept_clips"] for p in per_camera), "kept_bytes": kept_used,
                "kept_limit_bytes": kept_limit_bytes(self.app.settings, acc), "per_camera": per_camera}


async def storage_status(request: Request) -> Response:
    """Quota, used bytes, clip count, oldest clip, per camera."""
    user = await require_user(request)
    app = core(request)
    return JSONResponse(await app.db.run(
        lambda s: app.storage.status(s, user.tenant_id, visible_camera_ids(s, user))))
