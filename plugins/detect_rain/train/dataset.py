"""Build feature sets from synthetic clips: render, encode, decode through the core pipeline, extract features."""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
from alarmcloud.contracts import FrameRequest
from alarmcloud.video import decode
from alarmcloud_detect_rain.detector import RainDetector
from alarmcloud_detect_rain.features import window_features
from synth import ClipSpec, random_spec, render_clip

CLASSES = ("clear", "rain", "snow")


def clip_request(spec: ClipSpec) -> FrameRequest:
    """The detector's own request, with windows placed at this short clip's keyframes."""
    base = RainDetector.default_request()
    at = tuple(i / spec.windows for i in range(spec.windows))
    return replace(base, window_at=at)


def clip_features(spec: ClipSpec) -> tuple[np.ndarray, ClipSpec]:
    """Features (windows x F) of one rendered clip."""
    with tempfile.TemporaryDirectory(prefix="rain-train-") as tmp:
        path = render_clip(spec, Path(tmp) / "clip.mp4")
        (cf,) = decode(path, [clip_request(spec)])
    feats = np.stack([window_features([f.image for f in w]) for w in cf.windows if len(w) >= 5])
    return feats, spec


def build(
    seed: int, n: int, photos: list[Path], windows: int = 2, workers: int = 2
) -> list[tuple[np.ndarray, ClipSpec]]:
    """Render ``n`` clips drawn from ``seed`` in parallel worker processes."""
    rng = np.random.default_rng(seed)
    specs = [random_spec(rng, seed * 1_000_003 + i, photos, windows) for i in range(n)]
    workers = max(1, min(workers, os.cpu_count() or 1))
    if workers == 1:
        return [clip_features(s) for s in specs]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(clip_features, specs, chunksize=8))
