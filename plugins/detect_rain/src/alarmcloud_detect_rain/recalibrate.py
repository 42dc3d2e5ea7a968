"""Recalibrate the rain model from clips that owners released with a rain/snow or not_rain/not_snow label."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from alarmcloud.video import ProbeError, decode

from alarmcloud_detect_rain.detector import WINDOW_AT, RainDetector, default_model_path
from alarmcloud_detect_rain.features import window_features
from alarmcloud_detect_rain.mlp import refit_head
from alarmcloud_detect_rain.onnx_io import read_mlp, write_mlp

log = logging.getLogger(__name__)

#: training-area folders (``<data_dir>/training/rain/<label>/``) and whether they count as weather
LABELS = {"rain": True, "snow": True, "not_rain": False, "not_snow": False}


@dataclass(frozen=True)
class RecalibrationReport:
    """What a recalibration run used and how well the old and new model fit the feedback."""

    clips: int
    rain_clips: int
    not_rain_clips: int
    skipped: int
    accuracy_before: float
    accuracy_after: float
    out: Path


def feedback_clips(samples_dir: str | Path) -> list[tuple[Path, bool]]:
    """``(clip, is_weather)`` for every ``<samples_dir>/{rain,snow,not_rain,not_snow}/*.mp4``, sorted."""
    root = Path(samples_dir)
    return [(p, is_rain) for label, is_rain in LABELS.items() for p in sorted((root / label).glob("*.mp4"))]


def recalibrate(
    samples_dir: str | Path,
    out_model_path: str | Path,
    base_model_path: str | Path | None = None,
    window_at: tuple[float, ...] = WINDOW_AT,
    min_per_class: int = 2,
    strength: float = 1.0,
    on_clip: Callable[[Path], None] | None = None,
) -> RecalibrationReport:
    """Refit the model's output layer on released clips and write a new ONNX model to ``out_model_path``.

    Clips are decoded through the core pipeline with the detector's own frame request, so the features are
    exactly those seen in production. ``strength`` scales how strongly the new weights are held near the base.
    """
    base_path = Path(base_model_path or default_model_path())
    base = read_mlp(base_path)
    request = RainDetector.default_request(window_at)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    clip_rows: list[tuple[int, int, bool]] = []
    skipped = 0
    counts = {True: 0, False: 0}
    for path, is_rain in feedback_clips(samples_dir):
        try:
            (frames,) = decode(path, [request])
            rows = [window_features([f.image for f in w]) for w in frames.windows if len(w) >= 5]
        except (ProbeError, OSError, ValueError) as exc:
            log.warning("skipping feedback clip %s: %s", path.name, exc)
            rows = []
        if rows:
            clip_rows.append((sum(len(x) for x in xs), len(rows), is_rain))
            xs.append(np.stack(rows))
            ys.append(np.full(len(rows), is_rain))
            counts[is_rain] += 1
        else:
            skipped += 1
        if on_clip is not None:
            on_clip(path)
    if counts[True] < min_per_class or counts[False] < min_per_class:
        raise ValueError(
            f"need at least {min_per_class} usable clips per label, got rain={counts[True]} "
            f"not_rain={counts[False]} in {samples_dir}"
        )
    x = np.concatenate(xs).astype(np.float64)
    y = np.concatenate(ys)
    new = refit_head(base, x, y, l2_to_base=strength)

    def clip_accuracy(w: object) -> float:
        probs = w.predict(x)  # type: ignore[attr-defined]
        hits = [((1 - probs[s : s + n, 0].mean()) >= 0.5) == lab for s, n, lab in clip_rows]
        return float(np.mean(hits))

    before, after = clip_accuracy(base), clip_accuracy(new)
    new.metadata["recalibrated_from"] = f"{base_path.name} + {len(clip_rows)} feedback clips"
    out = write_mlp(out_model_path, new)
    log.info("recalibrated on %d clips: accuracy %.3f -> %.3f, wrote %s", len(clip_rows), before, after, out)
    return RecalibrationReport(len(clip_rows), counts[True], counts[False], skipped, before, after, out)
