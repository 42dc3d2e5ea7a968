"""Built-in motion/persistence analysis (no model): is a real mover present, or only weather and noise?

Rain, snow and sensor noise change many scattered pixels for one frame; a person or car changes a compact
region that persists over consecutive frames and moves across keyframes.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from alarmcloud.contracts import ClipFrames, FrameRequest

REQUEST = FrameRequest(keyframes=True, max_keyframes=10, window_at=(0.25, 0.55, 0.85), window_length=5,
                       width=160, color="gray")
CELL = 8


def _mask(a: np.ndarray, b: np.ndarray, thresh: int = 25) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)) > thresh


def _cells(mask: np.ndarray, fill: float = 0.35) -> np.ndarray:
    h, w = mask.shape
    h2, w2 = h // CELL * CELL, w // CELL * CELL
    m = mask[:h2, :w2].reshape(h2 // CELL, CELL, w2 // CELL, CELL).mean(axis=(1, 3))
    return m >= fill


def _largest_blob(cells: np.ndarray) -> int:
    seen = np.zeros_like(cells, dtype=bool)
    best = 0
    h, w = cells.shape
    for y, x in zip(*np.nonzero(cells), strict=False):
        if seen[y, x]:
            continue
        size, q = 0, deque([(y, x)])
        seen[y, x] = True
        while q:
            cy, cx = q.popleft()
            size += 1
            for ny, nx in ((cy + 1, cx), (cy - 1, cx), (cy, cx + 1), (cy, cx - 1)):
                if 0 <= ny < h and 0 <= nx < w and cells[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    q.append((ny, nx))
        best = max(best, size)
    return best


def mover_score(frames: ClipFrames) -> float:
    """0..1: how strongly the clip shows a compact, persistent mover."""
    scores: list[float] = []
    for window in frames.windows:
        if len(window) < 3:
            continue
        imgs = [f.image for f in window]
        # persistent change: pixels that differ from both of the window's first two frames in most later frames
        # (one reference alone would turn a rain streak that happens to be in it into lasting change)
        persist = np.mean([_mask(imgs[0], im) & _mask(imgs[1], im) for im in imgs[2:]], axis=0) >= 0.6
        # a one-frame flash (rain streak) is not persistent; a mover leaves a compact persistent region
        cells = _cells(persist)
        total = cells.size
        blob = _largest_blob(cells)
        scattered = cells.sum() - blob
        if blob >= 2 and blob >= scattered * 0.5 and blob / total < 0.6:
            scores.append(min(1.0, blob / 6.0))
        else:
            scores.append(0.0)
    keys = [f.image for f in frames.keyframes]
    key_score = 0.0
    if len(keys) >= 3:
        bg = np.median(np.stack(keys), axis=0).astype(np.uint8)
        hits = 0
        for im in keys:
            cells = _cells(_mask(bg, im, 30))
            blob = _largest_blob(cells)
            if blob >= 2 and blob / cells.size < 0.6:
                hits += 1
        scores.append(min(1.0, hits / max(2, len(keys) // 3)))
        # a compact object against the clip's background in two or more keyframes is a mover on its own (someone
        # crossing in 4 s shows up in two keyframes and may miss every short window); one keyframe is not (a
        # burst of rain or a flash can do that)
        if hits >= 2:
            key_score = scores[-1]
    if not scores:
        return 0.0
    return float(np.clip(max(np.mean(sorted(scores)[-2:]), key_score), 0.0, 1.0))
