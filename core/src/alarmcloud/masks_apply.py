"""Paint a camera's current privacy masks into the clips it stored before (or with other masks): a durable job.

``POST /api/v1/cameras/{id}/privacy-masks/apply`` writes a ``MaskJob`` row; a runner thread in every server process
claims queued jobs with a lease it renews (like the detection jobs), so a job whose process died goes back to the
queue: at once when that process ran on this host, else when its lease ends. Each clip is re-encoded in the
limited mask child (``masks.safe_mask``), the result is written under a new blob key, and one transaction points
the clip at it and counts it on the job; only then is the old blob deleted. A crash at any point leaves either the
old clip or the new one, never half of one (the start-up sweep removes a new blob whose row was never committed).

The swap locks the clip row first: a detection job that analysed the old video writes its findings back only while
the clip still has that video (``pipeline.process_job``), else it analyses the clip again. The account's stored
bytes change with the swap (a masked clip can be larger); masks are applied even when that goes over the quota,
which the job's ``storage`` reports, and the next clip stored evicts the oldest ones as always. Video and thumbnail
responses carry an ETag of the blob key, so a browser's cached copy is replaced by the masked one.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, or_
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from alarmcloud import leases, offsite
from alarmcloud.auth import camera_for, core, require_user
from alarmcloud.errors import ApiError
from alarmcloud.events import CAMERA_CHANGED, Event
from alarmcloud.leases import worker_name
from alarmcloud.masks import masks_hash, safe_mask
from alarmcloud.models import Account, Camera, Clip, FindingRow, MaskJob, iso, new_id, utcnow
from alarmcloud.storage import almost_full_event, quota_bytes, used_bytes
from alarmcloud.video import ProbeError

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

log = logging.getLogger(__name__)
ACTIVE = ("queued", "running")
#: failed clips listed on a job (the count goes on beyond)
MAX_FAILURES_LISTED = 200


def _outdated(camera_id: str, wanted: str) -> Any:
    """Clips of the camera stored without exactly the ``wanted`` masks."""
    return (Clip.camera_id == camera_id) & or_(col(Clip.privacy_masks_hash).is_(None),
                                                Clip.privacy_masks_hash != wanted)


def job_json(job: MaskJob | None, pending: int, storage: dict[str, int] | None = None) -> dict[str, Any]:
    """The progress of a camera's latest apply job; ``pending_clips``: clips stored without the current masks;
    ``storage``: the account's use and quota now (``storage_report``)."""
    extra = {"storage": storage} if storage is not None else {}
    if job is None:
        return {"job_id": None, "state": "none", "total": 0, "done": 0, "failed": 0, "failures": [],
                "pending_clips": pending, **extra}
    return {"job_id": job.id, "camera_id": job.camera_id, "state": job.state, "total": job.total, "done": job.done,
            "failed": job.failed, "failures": list(job.failures or []), "masks": job.masks,
            "created_at": iso(job.created_at), "finished_at": iso(job.finished_at) if job.finished_at else None,
            "error": job.last_error if job.state in ("cancelled", "dead") else None, "pending_clips": pending,
            **extra}


def storage_report(app: AlarmCloud, s: Session, account_id: str) -> dict[str, int]:
    """The account's stored bytes, quota and how far it is over it: a masked clip can be larger than the original,
    and masks are applied even when that goes over the quota (the next clip stored evicts the oldest ones)."""
    used, quota = used_bytes(s, account_id), quota_bytes(app.settings, s.get(Account, account_id))
    return {"used_bytes": used, "quota_bytes": quota, "over_quota_bytes": max(0, used - quota)}


def _latest(s: Session, camera_id: str) -> MaskJob | None:
    return s.exec(select(MaskJob).where(MaskJob.camera_id == camera_id)
                  .order_by(col(MaskJob.created_at).desc(), col(MaskJob.id).desc()).limit(1)).first()


def pending_clips(s: Session, cam: Camera) -> int:
    wanted = masks_hash(list(cam.privacy_masks or []))
    if wanted is None:
        return 0
    return int(s.exec(select(func.count()).select_from(Clip).where(_outdated(cam.id, wanted))).one())


def start_job(s: Session, cam: Camera) -> tuple[MaskJob, bool]:
    """The camera's apply job for its current masks: an active one, or a new one (``True``); 409 without masks."""
    masks = list(cam.privacy_masks or [])
    wanted = masks_hash(masks)
    if wanted is None:
        raise ApiError(409, "no_privacy_masks", "this camera has no privacy masks to apply; set them first "
                       "(PATCH /api/v1/cameras/{id} with privacy_masks); clips are never un-masked")
    for job in s.exec(select(MaskJob).where(MaskJob.camera_id == cam.id, col(MaskJob.state).in_(ACTIVE))).all():
        if job.masks_hash == wanted:
            return job, False
        job.state, job.finished_at = "cancelled", utcnow()  # older masks: superseded by this job
        job.last_error = "superseded: the camera's privacy masks changed"
        s.add(job)
    total = int(s.exec(select(func.count()).select_from(Clip).where(_outdated(cam.id, wanted))).one())
    job = MaskJob(account_id=cam.account_id, camera_id=cam.id, masks=masks, masks_hash=wanted, total=total)
    if total == 0:
        job.state, job.finished_at = "done", utcnow()
    s.add(job)
    s.commit()
    return job, True


# ---------------------------------------------------------------- HTTP


async def apply_masks(request: Request) -> Response:
    """Start painting the camera's current privacy masks into its stored clips (202: the job; 200: nothing to do)."""
    user = await require_user(request)
    app = core(request)
    cid = request.path_params["camera_id"]

    def _start(s: Session) -> tuple[dict[str, Any], bool]:
        cam = camera_for(s, user, cid, "admin")
        job, new = start_job(s, cam)
        return job_json(job, pending_clips(s, cam), storage_report(app, s, cam.account_id)), new

    body, new = await app.db.run(_start)
    if new and body["state"] == "queued":
        wake(app)
        await app.emit(Event(CAMERA_CHANGED, user.tenant_id, cid, {
            "change": "privacy_masks_apply_started", "job_id": body["job_id"], "clips": body["total"]}))
    return JSONResponse(body, status_code=200 if body["state"] == "done" else 202)


async def apply_progress(request: Request) -> Response:
    """The progress of the camera's latest apply job and how many clips lack the current masks."""
    user = await require_user(request)
    app = core(request)
    cid = request.path_params["camera_id"]

    def _get(s: Session) -> dict[str, Any]:
        cam = camera_for(s, user, cid)
        return job_json(_latest(s, cid), pending_clips(s, cam), storage_report(app, s, cam.account_id))

    return JSONResponse(await app.db.run(_get))


def routes(app: AlarmCloud) -> list[BaseRoute]:
    return [Route("/api/v1/cameras/{camera_id}/privacy-masks/apply", apply_masks, methods=["POST"]),
            Route("/api/v1/cameras/{camera_id}/privacy-masks/apply", apply_progress, methods=["GET"])]


# ---------------------------------------------------------------- the durable runner


def claim(app: AlarmCloud, worker: str, only: str | None = None) -> MaskJob | None:
    """Take the oldest queued job (or job ``only``) with a lease (a conditional UPDATE: one process wins)."""
    with app.db.session() as s:
        q = select(MaskJob.id).where(MaskJob.state == "queued")
        if only is not None:
            q = q.where(MaskJob.id == only)
        candidates = s.exec(q.order_by(col(MaskJob.created_at), col(MaskJob.id)).limit(5)).all()
        return leases.claim(s, MaskJob, candidates, worker, app.settings.workers.lease_seconds)


def _give_up(s: Session, job: MaskJob) -> None:
    job.finished_at = utcnow()
    job.last_error = f"interrupted {job.attempts} times; stopped"


def reap(app: AlarmCloud) -> int:
    """Jobs whose process died go back to the queue (or are given up after ``workers.max_attempts``): at once when
    that process ran on this host, else when its lease ends."""
    with app.db.session() as s:
        return len(leases.reap(s, MaskJob, app.settings.workers.max_attempts, _give_up, local=True, kind="mask job"))


def release(app: AlarmCloud, job_id: str, worker: str) -> None:
    """Shutting down: hand a running job back to the queue at once (the next process resumes it)."""
    with app.db.session() as s:
        leases.release(s, MaskJob, job_id, worker)
        s.commit()


def _finish(app: AlarmCloud, job_id: str, worker: str, state: str, error: str | None = None) -> MaskJob | None:
    with app.db.session() as s:
        job = s.get(MaskJob, job_id)
        if job is None or job.worker != worker or job.state != "running":
            return None
        job.state, job.finished_at, job.worker, job.lease_until = state, utcnow(), None, None
        job.last_error = error
        if state == "done":
            job.total = job.done + job.failed  # clips deleted while the job ran are no longer counted
        s.add(job)
        s.commit()
        return job


def run_job(app: AlarmCloud, job: MaskJob, worker: str, stop: threading.Event) -> str:
    """Mask the job's clips one by one from its cursor; returns the job's state afterwards."""
    with leases.Heartbeat(app.db, MaskJob, job.id, worker, app.settings.workers.lease_seconds,
                          name="alarmcloud-mask-lease"):
        return _run(app, job, worker, stop)


def _run(app: AlarmCloud, job: MaskJob, worker: str, stop: threading.Event) -> str:
    cursor = job.cursor
    while True:
        if stop.is_set():
            release(app, job.id, worker)
            return "queued"
        with app.db.session() as s:
            cam = s.get(Camera, job.camera_id)
            row = s.get(MaskJob, job.id)
            if row is None or row.worker != worker or row.state != "running":
                return row.state if row is not None else "gone"  # cancelled, or the lease was lost
            if cam is None:
                reason = "the camera was deleted"
            elif masks_hash(list(cam.privacy_masks or [])) != job.masks_hash:
                reason = "superseded: the camera's privacy masks changed"
            else:
                reason = None
            q = select(Clip).where(_outdated(job.camera_id, job.masks_hash))
            if cursor is not None:
                q = q.where(col(Clip.id) > cursor)
            clip = None if reason else s.exec(q.order_by(col(Clip.id)).limit(1)).first()
        if reason is not None:
            _finish(app, job.id, worker, "cancelled", reason)
            return "cancelled"
        if clip is None:
            done = _finish(app, job.id, worker, "done")
            if done is not None:
                log.info("mask job %s: %d clip(s) masked, %d failed", job.id, done.done, done.failed)
                with app.db.session() as s:
                    over = storage_report(app, s, job.account_id)["over_quota_bytes"]
                app.emit_sync(Event(CAMERA_CHANGED, job.account_id, job.camera_id, {
                    "change": "privacy_masks_applied", "job_id": job.id, "done": done.done, "failed": done.failed,
                    "over_quota_bytes": over}))
            return "done"
        if not mask_stored_clip(app, job, clip, worker):
            return "lost"
        cursor = clip.id


def _delete(app: AlarmCloud, keys: list[str]) -> list[str]:
    """Delete the stored objects ``keys``; an empty list (what is left of them)."""
    for key in keys:
        app.blobs.delete(key)
    return []


def mask_stored_clip(app: AlarmCloud, job: MaskJob, clip: Clip, worker: str) -> bool:
    """Re-encode one clip with the job's masks and swap it in; a failure is counted, the clip left as it was.

    False when the job is no longer this worker's (nothing was changed then).
    """
    st = app.settings.ingest
    token = new_id()[:12]
    tmp = app.blobs.tmp_path(f"mask-{clip.id}-{token}.mp4")
    thumb = tmp.with_name(tmp.name + ".jpg")
    base = clip.blob_key.rsplit("/", 1)[0]
    new_key, new_thumb = f"{base}/{clip.id}.{token}.mp4", f"{base}/{clip.id}.{token}.jpg"
    written: list[str] = []
    error: tuple[str, str] | None = None
    size, has_thumb = 0, False
    used_before = used_after = quota = 0
    try:
        src, copied = _source(app, clip, tmp)
        try:
            safe_mask(src, tmp, list(job.masks), st.mask_timeout_seconds, st.mask_memory_mb, thumb, st.mask_threads)
        finally:
            if copied:
                src.unlink(missing_ok=True)
        size = app.blobs.put_file(new_key, tmp)
        written.append(new_key)
        has_thumb = thumb.exists() and thumb.stat().st_size > 0
        if has_thumb:
            app.blobs.put_bytes(new_thumb, thumb.read_bytes())
            written.append(new_thumb)
    except ProbeError as exc:
        error = (exc.code, exc.message)
    except Exception as exc:  # noqa: BLE001 - storage trouble: this clip counts as failed, the job goes on
        log.exception("masking clip %s failed", clip.id)
        error = ("mask_failed", f"the clip could not be masked: {type(exc).__name__}")
    finally:
        tmp.unlink(missing_ok=True)
        thumb.unlink(missing_ok=True)
    old: list[str] = []
    with app.db.session() as s:
        row = s.get(MaskJob, job.id)
        if row is None or row.worker != worker or row.state != "running":
            s.rollback()
            _delete(app, written)
            return False
        row.cursor = clip.id
        # locked first (PostgreSQL): a detection job writing findings for this clip either commits before (its
        # findings in masked areas are dropped below) or sees the new video and analyses the clip again
        current = s.get(Clip, clip.id, with_for_update=True)
        if current is None or current.blob_key != clip.blob_key:
            # deleted (or changed) meanwhile: nothing to swap, and not a failure (its file may have gone under the
            # encoder); the job no longer counts it
            written = _delete(app, written)
        elif error is not None:
            written = _delete(app, written)  # e.g. the video stored, its thumbnail not: the clip stays as it was
            row.failed += 1
            if len(row.failures or []) < MAX_FAILURES_LISTED:
                row.failures = [*(row.failures or []), {"clip_id": clip.id, "code": error[0],
                                                        "message": error[1][:200]}]
        else:
            # the re-encoded clip may be larger than the one it replaces: the account's storage use (the sum of its
            # clips, as ingest counts it) changes with the swap; masks are applied even when that goes over the quota.
            # Only growth can cross the almost-full line or the quota, so only then is the account's sum read.
            grown = size - (current.size_bytes or 0)
            if grown > 0:
                used_before = used_bytes(s, clip.account_id)
                used_after = used_before + grown
                quota = quota_bytes(app.settings, s.get(Account, clip.account_id))
            old = [current.blob_key] + ([current.thumb_key] if current.thumb_key else [])
            current.blob_key, current.size_bytes, current.codec = new_key, size, "h264"
            # the old thumbnail shows the masked area: without a new one the clip has none
            current.thumb_key = new_thumb if has_thumb else None
            current.privacy_masks_hash = job.masks_hash
            _drop_masked_findings(s, current, list(job.masks))
            s.add(current)
            # the owner's off-site copy follows: replaced by the masked video (or, waiting, it copies that one)
            offsite.queue_masked(app, s, current)
            row.done += 1
        s.add(row)
        try:
            s.commit()
        except Exception:
            _delete(app, written)
            raise
    _delete(app, old)
    if old:
        if used_after > quota >= used_before:
            log.warning("account %s: masked clip %s is larger than before; %d bytes over the quota until the next "
                        "clip stored evicts the oldest ones", clip.account_id, clip.id, used_after - quota)
        if (ev := almost_full_event(app.settings, clip.account_id, used_before, used_after, quota)) is not None:
            app.emit_sync(ev)
    return True


def _source(app: AlarmCloud, clip: Clip, tmp: Path) -> tuple[Path, bool]:
    """The stored video as a local file: the blob itself on the local store, else a temp copy (``True``)."""
    path = getattr(app.blobs, "path", None)
    if path is not None:
        return Path(path(clip.blob_key)), False
    src = tmp.with_name(tmp.name + ".src")
    with app.blobs.open(clip.blob_key) as fh, open(src, "wb") as out:
        while chunk := fh.read(1024 * 1024):
            out.write(chunk)
    return src, True


def _drop_masked_findings(s: Session, clip: Clip, masks: list[list[float]]) -> None:
    """Findings centred in a masked area (e.g. a neighbour's licence plate) describe what is now black: gone."""
    gone = []
    for f in s.exec(select(FindingRow).where(FindingRow.clip_id == clip.id)).all():
        if f.box and len(f.box) == 4:
            cx, cy = (f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2
            if any(x0 <= cx <= x1 and y0 <= cy <= y1 for x0, y0, x1, y1 in masks):
                gone.append(f.id)
    if gone:
        s.exec(delete(FindingRow).where(col(FindingRow.id).in_(gone)))  # type: ignore[call-overload]
        left = s.exec(select(FindingRow.label).where(FindingRow.clip_id == clip.id)).all()
        clip.labels = sorted(set(left))


class MaskRunner:
    """One thread per server process that resumes interrupted jobs and runs queued ones, one at a time."""

    def __init__(self, app: AlarmCloud, poll_seconds: float = 2.0) -> None:
        self.app = app
        self.poll = poll_seconds
        self.name = worker_name()
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run_forever, name="alarmcloud-masks", daemon=True)

    def run_once(self) -> bool:
        reap(self.app)
        job = claim(self.app, self.name)
        if job is None:
            return False
        log.info("mask job %s for camera %s: %d clip(s), from %s", job.id, job.camera_id, job.total,
                 job.cursor or "the start")
        run_job(self.app, job, self.name, self.stop)
        return True

    def run_forever(self) -> None:
        while not self.stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("mask job runner failed")
                busy = False
            if not busy:
                self.wake.wait(self.poll)
                self.wake.clear()


def run_here(app: AlarmCloud, job_id: str, stop: threading.Event) -> None:
    """Run one job in this process (the CLI) unless a server claimed it first; returns when it is no longer active."""
    name = worker_name()
    while not stop.is_set():
        reap(app)
        job = claim(app, name, job_id)
        if job is not None:
            run_job(app, job, name, stop)
        with app.db.session() as s:
            row = s.get(MaskJob, job_id)
            if row is None or row.state not in ACTIVE:
                return
        stop.wait(1.0)


def wake(app: AlarmCloud) -> None:
    runner = app.extra.get("masks_apply.runner")
    if isinstance(runner, MaskRunner):
        runner.wake.set()


def on_startup(app: AlarmCloud) -> None:
    """Start the runner: jobs a crash or restart interrupted go on from their last clip."""
    runner = MaskRunner(app)
    app.extra["masks_apply.runner"] = runner
    runner.thread.start()


def on_shutdown(app: AlarmCloud) -> None:
    runner = app.extra.pop("masks_apply.runner", None)
    if isinstance(runner, MaskRunner):
        runner.stop.set()
        runner.wake.set()
        runner.thread.join(timeout=10)
