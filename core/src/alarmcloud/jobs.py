"""Durable detection jobs in the database: leases, heartbeats, retries with backoff, dead letters, fair order.

Fairness: a job's ``fair_round`` is how many jobs its camera already had waiting when it was written. Workers
claim by (priority, fair_round, created_at), so a camera that floods 1 000 clips gets rounds 0..999 while another
camera's single clip gets round 0 and runs next.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, text, update
from sqlmodel import Session, select

from alarmcloud.models import Camera, Clip, Job, Series, utcnow

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

log = logging.getLogger(__name__)
NORMAL, LOW = 0, 1


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def local_process_gone(host: str, pid: str) -> bool:
    """True when process ``pid`` ran on this host and no longer exists (other hosts: unknown, so False)."""
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


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
    q = (select(Job).where(Job.state == "queued", Job.available_at <= now)
         .order_by(Job.priority, Job.fair_round, Job.created_at, Job.id).limit(1))
    if s.bind is not None and s.bind.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    job = s.exec(q).first()
    if job is None:
        s.rollback()
        return None
    job.state = "running"
    job.attempts += 1
    job.worker = worker
    job.lease_until = now + timedelta(seconds=lease_seconds)
    s.add(job)
    s.commit()
    return job


def heartbeat(s: Session, job_id: int, worker: str, lease_seconds: float) -> bool:
    """Extend the lease; False when the job was taken away (lease expired and reclaimed)."""
    res = s.exec(update(Job).where(Job.id == job_id, Job.worker == worker, Job.state == "running")  # type: ignore[call-overload]
                 .values(lease_until=utcnow() + timedelta(seconds=lease_seconds)))
    s.commit()
    return bool(res.rowcount)


def complete(s: Session, job_id: int, worker: str) -> bool:
    """Mark done (only by the lease holder, so a job is never visibly done twice)."""
    res = s.exec(update(Job).where(Job.id == job_id, Job.worker == worker, Job.state == "running")  # type: ignore[call-overload]
                 .values(state="done", finished_at=utcnow(), lease_until=None))
    return bool(res.rowcount)


def requeue(s: Session, job_id: int, worker: str) -> bool:
    """Hand a running job back to the queue at once, its attempt not counted (only by the lease holder).

    For a job whose results are stale: its clip's video was replaced while it ran (privacy masks applied), so the
    clip is analysed again on the new video. The caller commits.
    """
    res = s.exec(update(Job).where(Job.id == job_id, Job.worker == worker, Job.state == "running")  # type: ignore[call-overload]
                 .values(state="queued", worker=None, lease_until=None, available_at=utcnow(),
                         attempts=Job.attempts - 1))
    return bool(res.rowcount)


def fail(s: Session, job: Job, error: str, max_attempts: int, base: float) -> str:
    """Retry with exponential backoff, or dead-letter after ``max_attempts``; returns the new state."""
    row = s.get(Job, job.id)
    if row is None:
        return "gone"
    row.last_error = error[:500]
    row.lease_until = None
    if row.attempts >= max_attempts:
        row.state = "dead"
        row.finished_at = utcnow()
        clip = s.get(Clip, row.clip_id)
        if clip is not None:
            clip.status = "failed"  # the clip stays viewable; the owner sees "analysis failed"
            clip.verdict = "analysis_failed"
            s.add(clip)
    else:
        row.state = "queued"
        row.available_at = utcnow() + timedelta(seconds=base * 2 ** (row.attempts - 1))
    s.add(row)
    s.commit()
    return row.state


def reap(s: Session, max_attempts: int) -> int:
    """Return jobs whose lease expired (their worker died) to the queue, or dead-letter them."""
    now = utcnow()
    expired = s.exec(select(Job).where(Job.state == "running", Job.lease_until < now)).all()  # type: ignore[operator]
    for job in expired:
        log.warning("job %s lost its worker %s; %s", job.id, job.worker,
                    "dead-lettered" if job.attempts >= max_attempts else "requeued")
        if job.attempts >= max_attempts:
            job.state = "dead"
            clip = s.get(Clip, job.clip_id)
            if clip is not None:
                clip.status = "failed"
                clip.verdict = "analysis_failed"
                s.add(clip)
        else:
            job.state = "queued"
            job.available_at = now
        job.worker = None
        job.lease_until = None
        s.add(job)
    s.commit()
    return len(expired)


def counts(s: Session) -> dict[str, int]:
    rows = s.exec(select(Job.state, func.count()).group_by(Job.state)).all()
    return {state: int(n) for state, n in rows}


_ = text
