"""Per-camera threshold suggestions from the owner's marks on events.

When an owner marks an event ``not_<label>`` that a detector with a per-camera number option ``threshold`` flagged
(the rain detector's weather probability), the answer to the mark suggests the camera's threshold that would have
left this event an alarm: the next UI step above the finding's score. It comes with what that threshold would have
done to the other events of the camera the owner marked for this detector, from the scores stored with their
findings: how many events marked ``not_*`` it turns back into alarms, and how many events the owner confirmed (marked
with one of the detector's labels) it would no longer flag. Nothing changes until the owner applies it
(``PUT /api/v1/cameras/{id}/detectors``).

Why only from wrong findings: owners mark mostly the detector's mistakes, so their marks do not give the camera's
rates; but a finding marked wrong has a stored score, and the threshold just above it is exactly what keeps such
an event an alarm. An event the detector missed has no finding and so no score to go by.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from alarmcloud.auth import User, camera_for
from alarmcloud.cameras import deployment_default
from alarmcloud.errors import ApiError
from alarmcloud.models import Clip, Feedback, FindingRow

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


def threshold_suggestion(app: AlarmCloud, s: Session, user: User, clip: Clip, detector: str,
                         label: str) -> dict[str, Any] | None:
    """The suggestion for a mark just stored (see the module), or None when there is none to make: the mark is not
    ``not_*``, the detector declares no number ``threshold`` or did not flag the event, the event's score is below
    the camera's threshold already, or the caller may not change the camera's detectors (``admin`` right).

    ``value`` is None when no allowed threshold lies above the score (the detector was sure): then ``reason`` says so.
    """
    spec = app.plugins.detector_specs.get(detector)
    opt = spec.option(OPTION) if spec is not None else None
    if spec is None or opt is None or opt.kind != "number" or not label.startswith("not_"):
        return None
    flagged = _scores(s, [clip.id], detector).get(clip.id)
    if flagged is None:
        return None
    try:
        cam = camera_for(s, user, clip.camera_id, "admin")
    except ApiError:
        return None
    current = ((cam.detector_options or {}).get(detector) or {}).get(OPTION)
    if current is None:
        current = deployment_default(app, spec, opt)
    if current is None or flagged < float(current):
        return None
    step = opt.step or 0.01
    value: float | None = _step_above(flagged, step, opt.minimum or 0.0)
    reason = None
    if opt.maximum is not None and value is not None and value > opt.maximum:
        value = None
        reason = (f"the detector was sure of this event (score {flagged:.2f}): no threshold up to {opt.maximum:g} "
                  "would have left it an alarm; releasing the clip helps improve the detector")
    marks = _latest_marks(s, user.tenant_id, cam.id, detector)
    scores = _scores(s, list(marks), detector)
    wrong = [scores.get(cid) for cid, lbl in marks.items() if lbl.startswith("not_")]
    confirmed = [scores.get(cid) for cid, lbl in marks.items() if lbl in spec.labels]
    return {
        "detector": detector,
        "camera_id": cam.id,
        "option": OPTION,
        "score": round(flagged, 4),
        "current": float(current),
        "value": value,
        "reason": reason,
        # of the camera's events the account marked wrong / confirmed for this detector (latest mark per event)
        "marked_wrong": len(wrong),
        "would_clear": None if value is None else sum(1 for v in wrong if v is not None and v < value),
        "marked_right": len(confirmed),
        "would_miss": None if value is None else sum(1 for v in confirmed if v is not None and v < value),
    }
