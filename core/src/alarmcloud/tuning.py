"""Per-camera threshold suggestions from the owner's marks on events, in both directions.

For detectors with a per-camera number option ``threshold`` (the rain detector's weather probability):

* **Raise.** When an owner marks an event ``not_<label>`` that the detector flagged, the answer to the mark suggests
  the camera's threshold that would have left this event an alarm: the next UI step above the finding's score.
* **Lower.** When an owner marks an event with one of the detector's labels (``rain``) that the detector did not
  flag, and the detector reported the clip's score below the threshold (``ClipFrames.score``, stored as
  ``Clip.scores``), the answer suggests the highest UI step at or below that score: the threshold that would have
  flagged it.

Each comes with what the threshold would have done, against the camera's current one, to the events of the camera
the owner marked for this detector (each event's score: its finding's, else the one reported below the threshold).
Raising: how many events marked ``not_*`` it turns back into alarms (``would_clear``), and how many events the owner
confirmed it would no longer flag (``would_miss``). Lowering: how many confirmed events it would flag
(``would_catch``), and how many events marked ``not_*`` it would flag wrongly (``would_flag``). Nothing changes until
the owner applies it (``PUT /api/v1/cameras/{id}/detectors``).

Before an owner saves a threshold, ``score_levels`` (``GET /api/v1/cameras/{id}/detectors/{name}/scores``) says how
the camera's recent clips scored, so the camera page can show what a value would flag.

Why only from the marked event's own score: owners mark mostly the detector's mistakes, so their marks do not give
the camera's rates; but a mistake has a stored score, and the step just past it is exactly what fixes such an event.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from alarmcloud.auth import User, camera_for, core, require_user
from alarmcloud.cameras import deployment_default
from alarmcloud.errors import ApiError
from alarmcloud.models import Camera, Clip, Feedback, FindingRow, utcnow

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud
    from alarmcloud.specs import DetectorOption, DetectorSpec

#: the per-camera option a suggestion is about
OPTION = "threshold"


def _grid(k: int, step: float) -> float:
    """``k`` steps as the threshold an owner saves (a short decimal such as 0.7, not 0.7000000000000001)."""
    return round(k * step, 6)


def _steps_at_or_below(score: float, step: float) -> int:
    """How many ``step``s the largest grid threshold at or below ``score`` is, compared as the detector compares its
    threshold: a score of 0.69999 gets 0.65, not 0.7, which would still miss it."""
    k = math.floor(score / step + 1e-9)  # 0.7 / 0.05 is 13.999999999999998
    while _grid(k, step) > score:
        k -= 1
    return k


def _step_at_or_below(score: float, step: float) -> float:
    """The largest multiple of ``step`` at or below ``score`` (see ``_steps_at_or_below``)."""
    return _grid(_steps_at_or_below(score, step), step)


def _step_above(score: float, step: float, minimum: float) -> float:
    """The smallest multiple of ``step`` (at least ``minimum``) strictly above ``score``."""
    return round(max(minimum, _grid(_steps_at_or_below(score, step) + 1, step)), 6)


#: clip ids per ``IN (...)`` query
CHUNK = 500


def _scores(s: Session, clip_ids: list[str], detector: str) -> dict[str, float]:
    """Per clip, the highest score of the detector's findings (clips without one are left out)."""
    out: dict[str, float] = {}
    for i in range(0, len(clip_ids), CHUNK):
        rows = s.exec(select(FindingRow.clip_id, FindingRow.score)
                      .where(col(FindingRow.clip_id).in_(clip_ids[i:i + CHUNK]), FindingRow.detector == detector)).all()
        for cid, score in rows:
            out[cid] = max(out.get(cid, 0.0), float(score))
    return out


def _reported(scores: dict[str, Any] | None, detector: str) -> float | None:
    """The detector's score in a clip's ``Clip.scores`` (reported also below the threshold), or None."""
    value = (scores or {}).get(detector)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _event_scores(s: Session, reported: dict[str, dict[str, Any] | None], detector: str) -> dict[str, float]:
    """Per clip of ``reported`` (clip id -> its ``Clip.scores``), the score the threshold was compared with: its
    findings' highest, else the one the detector reported below the threshold (clips with neither left out)."""
    out = _scores(s, list(reported), detector)
    for cid, scores in reported.items():
        if cid not in out and (value := _reported(scores, detector)) is not None:
            out[cid] = value
    return out


#: the newest marks of a camera a suggestion counts (bounds the work of one mark on a camera marked for years)
MAX_MARKS = 1000


def _latest_marks(s: Session, account_id: str, detector: str, *where: Any,
                  limit: int | None = None) -> dict[str, tuple[str, dict[str, Any] | None]]:
    """The account's latest mark for the detector per event matching ``where`` (of its newest ``limit`` marks):
    clip id -> (label, the clip's ``Clip.scores``)."""
    q = (select(Feedback.clip_id, Feedback.label, Clip.scores)
         .join(Clip, col(Clip.id) == col(Feedback.clip_id))
         .where(Feedback.account_id == account_id, Feedback.detector == detector, *where)
         .order_by(col(Feedback.id).desc()))
    out: dict[str, tuple[str, dict[str, Any] | None]] = {}
    for cid, label, scores in s.exec(q if limit is None else q.limit(limit)).all():
        out.setdefault(cid, (label, scores))  # newest first: the first mark seen of an event is its latest
    return out


def _threshold_option(app: AlarmCloud, detector: str) -> tuple[DetectorSpec, DetectorOption] | None:
    """The detector's spec and its number option ``threshold``, or None when it has none (or is not enabled)."""
    spec = app.plugins.detector_specs.get(detector)
    if spec is None or (opt := spec.threshold_option()) is None:
        return None
    return spec, opt


def _current(app: AlarmCloud, cam: Camera, detector: str, spec: DetectorSpec, opt: DetectorOption) -> Any:
    """The camera's threshold in use: its own, else the deployment default (None when there is neither)."""
    current = ((cam.detector_options or {}).get(detector) or {}).get(OPTION)
    return deployment_default(app, spec, opt) if current is None else current


def threshold_suggestion(app: AlarmCloud, s: Session, user: User, clip: Clip, detector: str,
                         label: str) -> dict[str, Any] | None:
    """The suggestion for a mark just stored (see the module), or None when there is none to make: the detector
    declares no number ``threshold``; a ``not_*`` mark of an event the detector did not flag, or flagged below the
    camera's threshold already; a confirming mark of an event it flagged, or of one without a reported score, or
    scored at or above the camera's threshold already; any other label; or the caller may not change the camera's
    detectors (``admin`` right).

    ``value`` is None when no allowed threshold fixes the event (the detector was sure, or saw almost nothing):
    then ``reason`` says so.
    """
    declared = _threshold_option(app, detector)
    if declared is None:
        return None
    spec, opt = declared
    raising = label.startswith("not_")
    if not raising and label not in spec.labels:
        return None
    flagged = _scores(s, [clip.id], detector).get(clip.id)
    # raising: the flagged event's finding; lowering: the score reported for an event the detector did not flag
    score = flagged if raising else None if flagged is not None else _reported(clip.scores, detector)
    if score is None:
        return None
    try:
        cam = camera_for(s, user, clip.camera_id, "admin")
    except ApiError:
        return None
    current = _current(app, cam, detector, spec, opt)
    if current is None or (score < float(current)) == raising:
        return None
    step = opt.step or 0.01
    value: float | None
    reason = None
    if raising:
        value = _step_above(score, step, opt.minimum or 0.0)
        if opt.maximum is not None and value > opt.maximum:
            value = None
            reason = (f"the detector was sure of this event (score {score:.2f}): no threshold up to "
                      f"{opt.maximum:g} would have left it an alarm; releasing the clip helps improve the detector")
    else:
        value = _step_at_or_below(score, step)
        if opt.maximum is not None:
            value = min(value, opt.maximum)
        if opt.minimum is not None and value < opt.minimum:
            value = float(opt.minimum) if score >= opt.minimum else None  # a minimum off the step grid
        if value is None:
            reason = (f"the detector saw almost none of it in this event (score {score:.2f}): no threshold down to "
                      f"{opt.minimum:g} would have flagged it; releasing the clip helps improve the detector")
    marks = _latest_marks(s, user.tenant_id, detector, Clip.camera_id == cam.id, limit=MAX_MARKS)
    scores = _event_scores(s, {cid: reported for cid, (_, reported) in marks.items()}, detector)
    wrong = [scores.get(cid) for cid, (lbl, _) in marks.items() if lbl.startswith("not_")]
    confirmed = [scores.get(cid) for cid, (lbl, _) in marks.items() if lbl in spec.labels]
    # the events whose verdict the value changes: scored from the lower to (not including) the higher threshold
    low, high = sorted((float(current), value if value is not None else 0.0))

    def count(marked: list[float | None], applies: bool) -> int | None:
        if value is None:
            return None
        return sum(1 for x in marked if x is not None and low <= x < high) if applies else 0

    return {
        "detector": detector,
        "camera_id": cam.id,
        "option": OPTION,
        "direction": "raise" if raising else "lower",
        "score": round(score, 4),
        "current": float(current),
        "value": value,
        "reason": reason,
        # of the camera's events the account marked wrong / confirmed for this detector (latest mark per event)
        "marked_wrong": len(wrong),
        "would_clear": count(wrong, raising),
        "would_flag": count(wrong, not raising),
        "marked_right": len(confirmed),
        "would_miss": count(confirmed, raising),
        "would_catch": count(confirmed, not raising),
    }


#: the newest analysed clips of a camera that ``score_levels`` counts
MAX_CLIPS = 10_000


def _level(score: float) -> float:
    """The score rounded down to hundredths: a threshold of two decimals flags a level's clips exactly when it is
    at or below the level."""
    return _step_at_or_below(score, 0.01)


def score_levels(app: AlarmCloud, s: Session, user: User, camera_id: str, detector: str,
                 days: int) -> dict[str, Any]:
    """How the camera's clips of the last ``days`` scored with ``detector`` (a finding's score, else the score
    reported below the threshold), by level of hundredths, with the owner's latest marks of them: the camera page
    shows what a threshold would flag before it is saved. 400 for a detector without a number ``threshold``."""
    cam = camera_for(s, user, camera_id)  # another tenant's camera: 404 whatever the detector
    if detector not in app.plugins.detector_specs:
        raise ApiError(400, "unknown_detector", f"no detector {detector!r} is enabled on this deployment")
    declared = _threshold_option(app, detector)
    if declared is None:
        raise ApiError(400, "invalid_field", f"detector {detector!r} has no number option {OPTION!r}")
    spec, opt = declared
    current = _current(app, cam, detector, spec, opt)
    since = utcnow() - timedelta(days=days)
    reported = dict(s.exec(select(Clip.id, Clip.scores)
                           .where(Clip.camera_id == cam.id, Clip.status == "done", col(Clip.started_at) >= since)
                           .order_by(col(Clip.started_at).desc()).limit(MAX_CLIPS)).all())
    ids = list(reported)
    marks: dict[str, tuple[str, dict[str, Any] | None]] = {}
    for i in range(0, len(ids), CHUNK):
        marks |= _latest_marks(s, user.tenant_id, detector, col(Feedback.clip_id).in_(ids[i:i + CHUNK]))
    levels: dict[float, list[int]] = {}
    for cid, score in _event_scores(s, reported, detector).items():
        level = levels.setdefault(_level(score), [0, 0, 0])
        level[0] += 1
        label = marks.get(cid, ("", None))[0]
        level[1] += label in spec.labels
        level[2] += label.startswith("not_")
    return {
        "detector": detector,
        "camera_id": cam.id,
        "option": OPTION,
        "current": None if current is None else float(current),
        "days": days,
        "clips": len(reported),
        "scored": sum(v[0] for v in levels.values()),
        "levels": [{"score": k, "clips": v[0], "marked_right": v[1], "marked_wrong": v[2]}
                   for k, v in sorted(levels.items())],
    }


async def threshold_scores(request: Request) -> Response:
    """``GET /api/v1/cameras/{camera_id}/detectors/{detector}/scores?days=30``: ``score_levels``."""
    user = await require_user(request)
    app = core(request)
    raw = request.query_params.get("days", "30")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= 366):
        raise ApiError(400, "invalid_field", "days must be a whole number from 1 to 366")
    cid, name, days = request.path_params["camera_id"], request.path_params["detector"], int(raw)
    return JSONResponse(await app.db.run(lambda s: score_levels(app, s, user, cid, name, days)))
