"""Turn a stored clip into findings, a verdict and events: decode once, run the enabled detectors."""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Histogram
from sqlalchemy import case, delete, func
from sqlmodel import select

from alarmcloud import jobs, leases, motion, notify, offsite, viewcheck
from alarmcloud.contracts import ClipProbe, Detector, Finding
from alarmcloud.events import CAMERA_FAIR_USE_CHANGED, DETECTIONS_READY, PLATE_RECOGNISED, Event
from alarmcloud.models import Account, Camera, Clip, FindingRow, iso, utcnow
from alarmcloud.video import decode, probe

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud
    from alarmcloud.plugins import PluginHost

log = logging.getLogger(__name__)
JOBS = Counter("alarmcloud_jobs_total", "Detection jobs by outcome", ["outcome"])
JOB_SECONDS = Histogram("alarmcloud_job_seconds", "Seconds per detection job")
MOVER_THRESHOLD = 0.5


@dataclass
class Analysis:
    probe: ClipProbe
    findings: list[Finding] = field(default_factory=list)
    mover: bool = False
    mover_score: float = 0.0
    verdict: str = "alarm"
    errors: dict[str, str] = field(default_factory=dict)
    view: viewcheck.Measures | None = None
    #: per detector that reports one (``ClipFrames.score``): the score it compared with its threshold
    scores: dict[str, float] = field(default_factory=dict)


def verdict_for(findings: list[Finding], mover: bool, detectors: list[Detector]) -> str:
    """The clip's verdict: ``alarm`` or the false-alarm cause.

    A real mover always makes an alarm (rain does not hide a burglar). A mover is not real when a detector explains
    it (a ``mover_explaining_labels`` finding: moths at the IR lamp) and no detector found an object (a plate): the
    cause it names is the verdict. Without a mover, weather wins over object findings: a parked car's plate read in
    every rainy clip of a driveway must not turn rain into alarms. Without a mover and without weather, an object
    finding still counts (a mover the motion analysis missed).
    """
    weather = {lbl for d in detectors for lbl in d.false_alarm_labels}
    explaining = {lbl for d in detectors for lbl in getattr(d, "mover_explaining_labels", ())}
    if mover:
        explained = sorted({f.label for f in findings if f.label in explaining})
        objects = [f for f in findings if f.label not in weather and f.label not in explaining]
        if explained and not objects:
            return f"false_alarm:{explained[0]}"
        return "alarm"
    # without a mover, weather names the cause before a mover-explaining label (rain with a moth: rain)
    causes = sorted({f.label for f in findings if f.label in weather | explaining}, key=lambda c: (c in explaining, c))
    if causes:
        return f"false_alarm:{causes[0]}"
    if any(f.label not in weather for f in findings):
        return "alarm"
    return "false_alarm:no_motion"


def analyze_file(host: PluginHost, path: Path, names: list[str], options: dict[str, Any] | None = None,
                 clip: ClipProbe | None = None) -> Analysis:
    """Decode ``path`` once and run the named detectors plus the built-in motion analysis."""
    clip = clip or probe(path)
    result = Analysis(probe=clip)
    detectors: list[Detector] = []
    floors: list[float] = []
    for name in names:
        try:
            det = host.detector(name)
        except Exception as exc:  # e.g. a model file that does not load: the other detectors still run
            log.exception("detector %s could not be created", name)
            result.errors[name] = f"{type(exc).__name__}: {exc}"
            continue
        if det is None:
            raise KeyError(f"detector {name!r} is not enabled")
        detectors.append(det)
        floors.append(_threshold(host, name, det, dict((options or {}).get(name, {}))))
    frames = decode(path, [motion.REQUEST, viewcheck.REQUEST, *[d.frame_request() for d in detectors]], clip)
    result.probe = frames[0].probe  # the size as the frames are shown (a turned clip's the other way round)
    result.mover_score = motion.mover_score(frames[0])
    result.mover = result.mover_score >= MOVER_THRESHOLD
    try:
        result.view = viewcheck.measure(frames[1])
    except Exception:  # the view check must never cost a clip its analysis
        log.exception("view measures failed")
    for det, floor, cf in zip(detectors, floors, frames[2:], strict=True):
        cf.options = dict((options or {}).get(det.name, {}))
        cf.score = None
        try:
            result.findings += [_plain(f) for f in det.analyze(cf) if f.score >= floor]
        except Exception as exc:  # one broken detector must not hide the others' findings
            log.exception("detector %s failed", det.name)
            result.errors[det.name] = f"{type(exc).__name__}: {exc}"
            continue
        score = _reported_score(cf.score)
        if score is not None:
            result.scores[det.name] = score
    result.verdict = verdict_for(result.findings, result.mover, detectors)
    return result


def _threshold(host: PluginHost, name: str, det: Detector, options: dict[str, Any]) -> float:
    """The score a finding of ``det`` must reach on this camera: the camera's number option ``threshold`` when the
    detector declares one (the owner may set it below the deployment's default), else the detector's own."""
    spec = host.detector_specs.get(name)
    value = options.get("threshold")
    if spec is not None and spec.threshold_option() is not None and isinstance(value, int | float) \
            and not isinstance(value, bool):
        return float(value)
    return det.threshold


def _reported_score(value: Any) -> float | None:
    """A detector's ``ClipFrames.score`` as stored, or None when it set none or not a finite number. Stored as it
    is, not rounded: a threshold offered from it must flag the clip (0.69996 rounded to 0.7 would offer 0.7, which
    misses it); the API shows it rounded to 4 places, like findings."""
    try:
        score = float(value)
    except (TypeError, ValueError):
        return None
    return score if math.isfinite(score) else None


def shown_scores(scores: dict[str, Any] | None) -> dict[str, float]:
    """A clip's reported scores as the API and ``alarmcloud detect`` show them: 4 decimals, like findings."""
    return {name: round(float(v), 4) for name, v in (scores or {}).items()}


def _plain(f: Finding) -> Finding:
    """The finding with plain Python numbers (detectors often return numpy scalars; JSON columns reject them)."""
    return replace(f, score=float(f.score), time=None if f.time is None else float(f.time),
                   box=None if f.box is None else tuple(float(v) for v in f.box))  # type: ignore[arg-type]


def process_job(app: AlarmCloud, job: jobs.Job) -> None:
    """Run one job's clip through the pipeline and store the outcome (idempotent: findings are replaced)."""
    with app.db.session() as s:
        clip = s.get(Clip, job.clip_id)
        cam = s.get(Camera, job.camera_id)
        acc = s.get(Account, job.account_id)
        if clip is None or cam is None or acc is None:
            return
        if acc.restricted:
            clip.status = "skipped"
            s.add(clip)
            jobs.complete(s, job.id or 0, job.worker or "")  # finished: not claimed again after its lease
            s.commit()
            return
        enabled = [n for n, on in (cam.detectors or {}).items() if on and n in app.plugins.detector_specs]
        options = dict(cam.detector_options or {})
        seen = clip.blob_key  # the video this run analyses; its results are written back only for this video
        clip_probe = ClipProbe(container="mp4", video_codec=clip.codec, width=clip.width, height=clip.height,
                               fps=clip.fps, duration=clip.duration, size_bytes=clip.size_bytes)
    started = time.process_time()
    try:
        with app.blobs.local_file(seen) as path:  # the stored file itself, or a download of it from S3
            analysis = analyze_file(app.plugins, path, enabled, options, clip_probe)
        if analysis.errors and len(analysis.errors) == len(enabled) and enabled:
            raise RuntimeError("every detector failed: " + "; ".join(analysis.errors.values()))
    except Exception:
        if _requeue_if_replaced(app, job, seen):  # the old file went away under the decoder: not a failure
            return
        raise
    JOB_SECONDS.observe(time.process_time() - started)
    events: list[Event] = []
    with app.db.session() as s:
        # the row lock (PostgreSQL; SQLite transactions are serial) keeps the video from being swapped until this
        # commits, and the mask job drops findings in masked areas only after it has this lock itself
        clip = s.get(Clip, job.clip_id, with_for_update=True)
        if clip is None:
            return
        if clip.blob_key != seen:
            _requeue(s, job, clip.id)
            return
        s.exec(delete(FindingRow).where(FindingRow.clip_id == clip.id))  # type: ignore[arg-type]
        for f in analysis.findings:
            s.add(FindingRow(clip_id=clip.id, account_id=clip.account_id, detector=f.detector, label=f.label,
                             score=f.score, time=f.time, box=list(f.box) if f.box else None, text=f.text))
        clip.status = "done"
        clip.verdict = analysis.verdict
        clip.mover = analysis.mover
        clip.labels = sorted({f.label for f in analysis.findings})
        clip.scores = analysis.scores or None
        # the owner sees which detector could not look at this clip (the others' findings still count)
        clip.flags = [f for f in (clip.flags or []) if not f.startswith("detector_failed:")] + [
            f"detector_failed:{name}" for name in sorted(analysis.errors)]
        s.add(clip)
        if not jobs.complete(s, job.id or 0, job.worker or ""):
            s.rollback()  # the lease was lost: another worker owns the job now
            return
        cam = s.get(Camera, clip.camera_id)
        if cam is not None:
            events += update_fair_use(app, s, cam)
            events += viewcheck.update(app, s, cam, analysis.view, clip.id)
        payload = {"clip_id": clip.id, "series_id": clip.series_id, "verdict": clip.verdict,
                   "findings": [f.to_dict() for f in analysis.findings], "started_at": iso(clip.started_at),
                   "thumbnail_url": f"/api/v1/events/{clip.id}/thumbnail",
                   "camera_name": cam.name if cam else None}
        events.insert(0, Event(DETECTIONS_READY, clip.account_id, clip.camera_id, payload))
        book = None
        for f in analysis.findings:
            if f.label == "plate" and f.text:
                book = book or notify.plate_book(s, clip.account_id)
                events.append(Event(PLATE_RECOGNISED, clip.account_id, clip.camera_id,
                                    {"clip_id": clip.id, "text": f.text, "score": f.score, **book.describe(f.text)}))
        notify.queue_notifications(app, s, clip, cam, payload)
        offsite.queue_copy(app, s, clip)  # the owner's own bucket, when they copy this kind of clip
        s.commit()
    JOBS.labels("done").inc()
    for ev in events:
        app.emit_sync(ev)


def _requeue(s: Any, job: jobs.Job, clip_id: str) -> None:
    """The clip's video was replaced (privacy masks applied) while the job analysed the old one: its findings
    describe what may now be black, so they are dropped and the clip is analysed again on the new video."""
    s.rollback()
    if jobs.requeue(s, job.id or 0, job.worker or ""):
        log.info("clip %s: the video changed during analysis; analysing the new video", clip_id)
        JOBS.labels("requeued").inc()
    s.commit()


def _requeue_if_replaced(app: AlarmCloud, job: jobs.Job, seen: str) -> bool:
    """True (and the job queued again) when the clip's video is no longer the one the job analysed."""
    with app.db.session() as s:
        clip = s.get(Clip, job.clip_id)
        if clip is None or clip.blob_key == seen:
            return False
        _requeue(s, job, clip.id)
        return True


def update_fair_use(app: AlarmCloud, s: Any, cam: Camera) -> list[Event]:
    """Rolling false-alarm rate; notice first, lower priority only after the grace period."""
    fu = app.settings.fair_use
    now = utcnow()
    since = now - timedelta(days=1)
    is_false = case((Clip.verdict.like("false_alarm:%"), 1), else_=0)  # type: ignore[union-attr]
    total, false = s.exec(select(func.count(), func.sum(is_false))
                          .where(Clip.camera_id == cam.id, Clip.status == "done", Clip.started_at >= since)).one()
    total, false = int(total or 0), int(false or 0)
    cam.false_alarm_rate = round(false / total, 4) if total else None
    events: list[Event] = []
    high = total >= fu.min_clips and total and false / total >= fu.false_alarm_rate
    old = cam.fair_use_state
    if high and old == "normal":
        cam.fair_use_state, cam.fair_use_since = "notice", now
        cam.fair_use_reason = (f"{false} of {total} clips in the last 24 h were false alarms; processing "
                               f"priority will be lowered in {fu.grace_hours:g} h unless this improves")
        notify.queue_admin_notice(app, s, cam)
    elif high and old == "notice" and cam.fair_use_since and now - cam.fair_use_since >= timedelta(
            hours=fu.grace_hours):
        cam.fair_use_state, cam.fair_use_since = "low_priority", now
        cam.fair_use_reason = f"false-alarm rate {false / total:.0%} over 24 h after a notice: low priority"
    elif not high and old != "normal":
        cam.fair_use_state, cam.fair_use_since, cam.fair_use_reason = "normal", now, None
    if cam.fair_use_state != old:
        events.append(Event(CAMERA_FAIR_USE_CHANGED, cam.account_id, cam.id,
                            {"from": old, "to": cam.fair_use_state, "reason": cam.fair_use_reason}))
    s.add(cam)
    return events


class Worker:
    """Claims jobs and runs them; one per thread (serve) or process (``alarmcloud worker``)."""

    def __init__(self, app: AlarmCloud, name: str | None = None) -> None:
        self.app = app
        self.name = name or f"{jobs.worker_name()}:{threading.get_ident()}"
        self.wake = threading.Event()

    def run_once(self) -> bool:
        """Claim and process one job; False when the queue was empty."""
        st = self.app.settings.workers
        with self.app.db.session() as s:
            job = jobs.claim(s, self.name, st.lease_seconds)
        if job is None:
            return False
        with leases.Heartbeat(self.app.db, jobs.Job, job.id, self.name, st.lease_seconds):
            try:
                process_job(self.app, job)
            except Exception as exc:
                log.exception("job %s failed on clip %s", job.id, job.clip_id)
                JOBS.labels("failed").inc()
                with self.app.db.session() as s:
                    jobs.fail(s, job, f"{type(exc).__name__}: {exc}", st.max_attempts, st.retry_base_seconds,
                              self.app)
        return True

    def run_forever(self, stop: threading.Event) -> None:
        st = self.app.settings.workers
        last_reap = 0.0
        while not stop.is_set():
            if time.monotonic() - last_reap > max(1.0, st.lease_seconds / 4):
                try:
                    with self.app.db.session() as s:
                        jobs.reap(s, st.max_attempts, self.app)
                except Exception:
                    log.exception("reaper failed")
                last_reap = time.monotonic()
            try:
                busy = self.run_once()
            except Exception:
                log.exception("worker loop error")
                busy = False
            if not busy:
                self.wake.wait(st.poll_seconds)
                self.wake.clear()
