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
from alarmcloud.models import Clip, Feedback, FindingRow, utcnow

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

#: the per-camera option a suggestion is about
OPTION = "threshold"


def _step_above(score: float, step: float, minimum: float) -> float:
    """The smallest multiple of ``step`` (at least ``minimum``) strictly above ``score``."""
    k = math.floor(score / step + 1e-9) + 1
    return round(max(minimum, k * step), 6)


def _scores(s: Session, clip_ids: list[str], detector: str) -> dict[str, float]:
    """Per clip, the highest score of the detector's findings (clips without one are left out)."""
    out: dict[str, float] = {}
    if not clip_ids:
        return out
    rows = s.exec(select(FindingRow.clip_id, FindingRow.score)
                  .where(col(FindingRow.clip_id).in_(clip_ids), FindingRow.detector == detector)).all()
    for cid, score in rows:
        out[cid] = max(out.get(cid, 0.0), float(score))
    return out


#: the newest marks of a camera a suggestion counts (bounds the work of one mark on a camera marked for years)
MAX_MARKS = 1000


def _latest_marks(s: Session, account_id: str, camera_id: str, detector: str) -> dict[str, str]:
    """The account's latest mark per event of the camera for the detector, from its newest ``MAX_MARKS`` marks:
    clip id -> label."""
    rows = s.exec(select(Feedback.clip_id, Feedback.label)
                  .join(Clip, col(Clip.id) == col(Feedback.clip_id))
                  .where(Feedback.account_id == account_id, Feedback.detector == detector,
                         Clip.camera_id == camera_id)
                  .order_by(col(Feedback.id).desc()).limit(MAX_MARKS)).all()
    out: dict[str, str] = {}
    for cid, label in rows:
        out.setdefault(cid, label)  # newest first: the first mark seen of an event is its latest
    return out


def _clip_scores(s: Session, clip_ids: list[str], detector: str) -> dict[str, float]:
    """Per clip, the score the detector reported below its threshold (``Clip.scores``; clips without one left out)."""
    out: dict[str, float] = {}
    for i in range(0, len(clip_ids), 500):
        for cid, scores in s.exec(select(Clip.id, Clip.scores).where(col(Clip.id).in_(clip_ids[i:i + 500]))).all():
            value = _reported(scores, detector)
            if value is not None:
                out[cid] = value
    return out


def _reported(scores: dict[str, Any] | None, detector: str) -> float | None:
    value = (scores or {}).get(detector)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _step_at_or_below(score: float, step: float) -> float:
    """The largest multiple of ``step`` at or below ``score``."""
    return round(math.floor(score / step + 1e-9) * step, 6)


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
    spec = app.plugins.detector_specs.get(detector)
    opt = spec.option(OPTION) if spec is not None else None
    if spec is None or opt is None or opt.kind != "number":
        return None
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
    current = ((cam.detector_options or {}).get(detector) or {}).get(OPTION)
    if current is None:
        current = deployment_default(app, spec, opt)
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
    marks = _latest_marks(s, user.tenant_id, cam.id, detector)
    scores = _scores(s, list(marks), detector)  # what the threshold was compared with: a finding's score, or else
    scores |= _clip_scores(s, [cid for cid in marks if cid not in scores], detector)  # the score reported below it
    wrong = [scores.get(cid) for cid, lbl in marks.items() if lbl.startswith("not_")]
    confirmed = [scores.get(cid) for cid, lbl in marks.items() if lbl in spec.labels]
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
    return math.floor(score * 100 + 1e-6) / 100


def score_levels(app: AlarmCloud, s: Session, user: User, camera_id: str, detector: str,
                 days: int) -> dict[str, Any]:
    """How the camera's clips of the last ``days`` scored with ``detector`` (a finding's score, else the score
    reported below the threshold), by level of hundredths, with the owner's latest marks of them: the camera page
    shows what a threshold would flag before it is saved. 400 for a detector without a number ``threshold``."""
    cam = camera_for(s, user, camera_id)  # another tenant's camera: 404 whatever the detector
    spec = app.plugins.detector_specs.get(detector)
    if spec is None:
        raise ApiError(400, "unknown_detector", f"no detector {detector!r} is enabled on this deployment")
    opt = spec.option(OPTION)
    if opt is None or opt.kind != "number":
        raise ApiError(400, "invalid_field", f"detector {detector!r} has no number option {OPTION!r}")
    current = ((cam.detector_options or {}).get(detector) or {}).get(OPTION)
    if current is None:
        current = deployment_default(app, spec, opt)
    since = utcnow() - timedelta(days=days)
    rows = s.exec(select(Clip.id, Clip.scores)
                  .where(Clip.camera_id == cam.id, Clip.status == "done", col(Clip.started_at) >= since)
                  .order_by(col(Clip.started_at).desc()).limit(MAX_CLIPS)).all()
    ids = [cid for cid, _ in rows]
    found: dict[str, float] = {}
    marks: dict[str, str] = {}
    for i in range(0, len(ids), 500):
        part = ids[i:i + 500]
        found |= _scores(s, part, detector)
        for cid, label in s.exec(select(Feedback.clip_id, Feedback.label)
                                 .where(col(Feedback.clip_id).in_(part), Feedback.account_id == user.tenant_id,
                                        Feedback.detector == detector)
                                 .order_by(col(Feedback.id).desc())).all():
            marks.setdefault(cid, label)  # newest first: an event's latest mark
    levels: dict[float, list[int]] = {}
    for cid, scores in rows:
        score = found.get(cid)
        if score is None:
            score = _reported(scores, detector)
        if score is None:
            continue
        level = levels.setdefault(_level(score), [0, 0, 0])
        level[0] += 1
        label = marks.get(cid, "")
        level[1] += label in spec.labels
        level[2] += label.startswith("not_")
    return {
        "detector": detector,
        "camera_id": cam.id,
        "option": OPTION,
        "current": None if current is None else float(current),
        "days": days,
        "clips": len(rows),
        "scored": sum(v[0] for v in levels.values()),
        "levels": [{"score": k, "clips": v[0], "marked_right": v[1], "marked_wrong": v[2]}
                   for k, v in sorted(levels.items())],
    }


async def threshold_scores(request: Request) -> Response:
    """``GET /api/v1/cameras/{camera_id}/detectors/{detector}/scores?days=30``: ``score_levels``."""
    user = await require_user(request)
    app = core(request)
    raw = request.query_params.get("days", "30")
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw[:4]) <= 366 and len(raw) <= 3):
        raise ApiError(400, "invalid_field", "days must be a whole number from 1 to 366")
    cid, name, days = request.path_params["camera_id"], request.path_params["detector"], int(raw)
    return JSONResponse(await app.db.run(lambda s: score_levels(app, s, user, cid, name, days)))
