"""Durable detection jobs in the database: leases, heartbeats, retries with backoff, dead letters, fair order.

Fairness: a job's ``fair_round`` is how many jobs its camera already had waiting when it was written. Workers
claim by (priority, fair_round, created_at), so a camera that floods 1 000 clips gets rounds 0..999 while another
camera's single clip gets round 0 and runs next.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, update
from sqlmodel import Session, select

from alarmcloud import leases
from alarmcloud.leases import local_process_gone, worker_name  # noqa: F401 - used through this module
from alarmcloud.models import Camera, Clip, Job, Series, utcnow

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

log = logging.getLogger(__name__)
NORMAL, LOW = 0, 1


def priority_for(app: AlarmCloud, cam: Camera, clip: Clip, series: Series) -> int:
    """Fair use: long clips, continuous alarms and throttled cameras run at low priority."""
    fu = app.settings.fair_use
    if cam.fair_use_override == "normal":
        return NORMAL
    if cam.fair_use_override == "low_priority" or cam.fair_use_state == "low_priority":
        return LOW
    if "long_clip" in (clip.flags or []):
        return LOW
    if (series.ended_at - series.started_at).total_seconds() > fu.continuous_alarm_minutes * 60:
        if "continuous_alarm" not in (clip.flags or []):
            clip.flags = [*(clip.flags or []), "continuous_alarm"]
        return LOW
    return NORMAL


def enqueue(s: Session, clip: Clip, priority: int = NORMAL) -> Job:
    """Write the clip's job in the caller's transaction."""
    waiting = s.exec(select(func.count()).select_from(Job).where(
        Job.camera_id == clip.camera_id, Job.state.in_(("queued", "running")))).one()  # type: ignore[attr-defined]
    job = Job(clip_id=clip.id, camera_id=clip.camera_id, account_id=clip.account_id, priority=priority,
              fair_round=int(waiting))
    s.add(job)
    return job


def claim(s: Session, worker: str, lease_seconds: float) -> Job | None:
    """Take the next job with a lease, or None. SKIP LOCKED on PostgreSQL; SQLite serialises writers."""
    now = utcnow()
    q = (select(Job.id).where(Job.state == "queued", Job.available_at <= now)
         .order_by(Job.priority, Job.fair_round, Job.created_at, Job.id).limit(1))
    if s.bind is not None and s.bind.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return leases.claim(s, Job, s.exec(q).all(), worker, lease_seconds, now)


def complete(s: Session, job_id: int, worker: str) -> bool:
    """Mark done (only by the lease holder, so a job is never visibly done twice)."""
    res = s.exec(update(Job).where(leases.held(Job, job_id, worker))  # type: ignore[call-overload]
                 .values(state="done", finished_at=utcnow(), lease_until=None))
    return bool(res.rowcount)


def requeue(s: Session, job_id: int, worker: str) -> bool:
    """Hand a running job back to the queue at once, its attempt not counted (only by the lease holder).

    For a job whose results are stale: its clip's video was replaced while it ran (privacy masks applied), so the
    clip is analysed again on the new video. The caller commits.
    """
    return leases.release(s, Job, job_id, worker, available_at=utcnow())


def fail(s: Session, job: Job, error: str, max_attempts: int, base: float, app: AlarmCloud | None = None) -> str:
    """Retry with exponential backoff, or dead-letter after ``max_attempts``; returns the new state. ``app``: the
    clip given up is queued for its owner's off-site copy (``offsite.queue_copy``)."""
    row = s.get(Job, job.id)
    if row is None:
        return "gone"
    row.last_error = error[:500]
    row.lease_until = None
    if row.attempts >= max_attempts:
        row.state = "dead"
        row.finished_at = utcnow()
        _dead_letter(s, row, app)
    else:
        row.state = "queued"
        row.available_at = utcnow() + timedelta(seconds=base * 2 ** (row.attempts - 1))
    s.add(row)
    s.commit()
    return row.state


def _dead_letter(s: Session, job: Job, app: AlarmCloud | None = None) -> None:
    clip = s.get(Clip, job.clip_id)
    if clip is not None:
        clip.status = "failed"  # the clip stays viewable; the owner sees "analysis failed"
        clip.verdict = "analysis_failed"
        s.add(clip)
        if app is not None:  # no verdict must not cost the owner the off-site copy (in this transaction)
            from alarmcloud import offsite

            offsite.queue_copy(app, s, clip)


def reap(s: Session, max_attempts: int, app: AlarmCloud | None = None) -> int:
    """Return jobs whose lease expired (their worker died) to the queue, or dead-letter them (``app``: as ``fail``).

    Only the lease counts: detection workers are threads and ``alarmcloud worker`` processes named by the operator.
    """
    return len(leases.reap(s, Job, max_attempts, lambda s, row: _dead_letter(s, row, app), local=False, kind="job",
                           available_at=utcnow()))


def counts(s: Session) -> dict[str, int]:
    rows = s.exec(select(Job.state, func.count()).group_by(Job.state)).all()
    return {state: int(n) for state, n in rows}

