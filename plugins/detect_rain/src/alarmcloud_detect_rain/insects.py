"""Insects at the IR lamp: are the only movers of a night clip moths close to the lens?

A moth flying at the camera's infrared lamp is lit from a few centimetres away and far out of focus: it shows
as a big, bright, soft-edged glow that jumps from place to place between keyframes. The core's motion analysis
sees that glow against the clip's background in two keyframes and calls it a mover. A person or a car is in
focus: the outline against the background changes within a pixel or two, whatever the light.

This analysis looks at the keyframes the motion analysis looks at (the same 10, at twice its 160 px width, in
colour) and finds every change region against the keyframes' background the motion analysis could count (two or more
of its 8x8 cells). The clip is explained by insects only when it is a grey infrared picture, there is at least
one such region, and **every** region is brighter than the background and soft: the change rises over several
pixels (``edge_width``, the region's change peak over its steepest gradient) instead of at an outline. One sharp
or dark region anywhere (a person, a car's outline) and nothing is reported, so the core keeps the alarm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from alarmcloud.contracts import ClipFrames, Detector, Finding, FrameRequest

#: the motion analysis's 10 keyframes; 320 px so an outline is still within about a pixel, in colour to tell
#: infrared (grey) pictures from day pictures; the first, middle and last are shared with the core's view check
REQUEST = FrameRequest(keyframes=True, max_keyframes=10, width=320, color="rgb")
#: the core motion analysis's grid (``alarmcloud.motion``): 8x8 cells at 160 px, a cell counts at 35 % changed
CELL = 16  # 8 px at 160 = 16 px at 320
FILL = 0.3  # a bit below the motion analysis's 0.35: see every region it could count
CHANGE = 25  # grey levels (motion: > 30 against the keyframe median)
GREY_CHROMA = 3.0  # mean |R-G| + |B-G| of an infrared picture (no colour at all, apart from coding noise)
#: a glow's change rises over several pixels: its peak over its steepest gradient; an outline's over one or two
MIN_EDGE_WIDTH = 3.0
#: a rim pixel is steep when the change grows faster than this per pixel (grey levels, 320 px): an outline of
#: 30 grey levels or more against the background does, a glow's rim where it crosses ``CHANGE`` does not
STEEP = 12.0
#: at most this share of a glow's rim may be steep (noise, a crisper moth's edge); a person's or a car's is 0.5+
MAX_SHARP = 0.25
MIN_PEAK = 35.0  # grey levels brighter than the background: a moth lit by the lamp a few centimetres away
BACKGROUND_PERCENTILE = 25  # of the keyframes, per pixel (see ``regions``)
MIN_BRIGHT = 0.85  # share of the changed pixels that got brighter


@dataclass(frozen=True)
class Region:
    """One change region of one keyframe against the background of the keyframes."""

    time: float
    cells: int
    peak: float  # 98th percentile of the change (grey levels, signed: > 0 brighter than the background)
    bright_share: float  # share of the changed pixels that got brighter
    edge_width: float  # change peak / steepest gradient (pixels at 320 px): ~1-2 at an outline, more for a glow
    sharp_share: float  # share of the region's rim where the change rises steeply (an outline)
    box: tuple[float, float, float, float]  # fractions of the frame

    def insect_like(self, min_edge_width: float = MIN_EDGE_WIDTH, max_sharp: float = MAX_SHARP) -> bool:
        """Bright and soft: an out-of-focus glow, not an outline."""
        return (self.peak >= MIN_PEAK and self.bright_share >= MIN_BRIGHT and self.edge_width >= min_edge_width
                and self.sharp_share <= max_sharp)


def _grey(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32).mean(axis=2) if img.ndim == 3 else img.astype(np.float32)


def is_infrared(frames: ClipFrames) -> bool:
    """Every keyframe is grey (the camera's IR night mode)."""
    for f in frames.keyframes:
        im = f.image
        if im.ndim != 3:
            return False
        sub = im[::4, ::4].astype(np.int16)
        chroma = np.abs(sub[..., 0] - sub[..., 1]).mean() + np.abs(sub[..., 2] - sub[..., 1]).mean()
        if chroma > GREY_CHROMA:
            return False
    return bool(frames.keyframes)


def _components(cells: np.ndarray) -> list[np.ndarray]:
    """4-connected components of a small boolean grid, each as a boolean mask."""
    labels = np.zeros(cells.shape, np.int32)
    out = []
    h, w = cells.shape
    for y, x in zip(*np.nonzero(cells), strict=False):
        if labels[y, x]:
            continue
        n = len(out) + 1
        stack = [(y, x)]
        labels[y, x] = n
        while stack:
            cy, cx = stack.pop()
            for ny, nx in ((cy + 1, cx), (cy - 1, cx), (cy, cx + 1), (cy, cx - 1)):
                if 0 <= ny < h and 0 <= nx < w and cells[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = n
                    stack.append((ny, nx))
        out.append(labels == n)
    return out


def regions(frames: ClipFrames) -> list[Region]:
    """Every change region of two or more cells in every keyframe (none with fewer than 3 keyframes)."""
    keys = [(f.time, _grey(f.image)) for f in frames.keyframes]
    if len(keys) < 3:
        return []
    # the background is a low percentile, not the median: a moth adds light, and one circling the lamp is at the
    # same place in several keyframes, which would leave a dark "ghost" of it against a median; a person darker
    # than the background is darker than this too, and one who stands still shows as a sharp ghost instead
    bg = np.percentile(np.stack([k for _, k in keys]), BACKGROUND_PERCENTILE, axis=0)
    h, w = bg.shape
    h2, w2 = h // CELL * CELL, w // CELL * CELL
    out: list[Region] = []
    for t, im in keys:
        d = im - bg
        changed = np.abs(d) > CHANGE
        fill = changed[:h2, :w2].reshape(h2 // CELL, CELL, w2 // CELL, CELL).mean(axis=(1, 3))
        cells = fill >= FILL
        if cells.sum() < 2:
            continue
        for comp in _components(cells):
            n = int(comp.sum())
            if n < 2 or n / comp.size >= 0.6:  # the motion analysis ignores whole-picture changes too
                continue
            ys, xs = np.nonzero(comp)
            # the region's cells plus one cell around them: the whole glow or outline, not only its core
            y0, y1 = max(0, (ys.min() - 1) * CELL), min(h, (ys.max() + 2) * CELL)
            x0, x1 = max(0, (xs.min() - 1) * CELL), min(w, (xs.max() + 2) * CELL)
            patch = d[y0:y1, x0:x1]
            mask = np.abs(patch) > CHANGE
            vals = patch[mask]
            peak = float(np.percentile(np.abs(vals), 98)) if vals.size else 0.0
            signed = float(np.percentile(vals, 98)) if vals.size else 0.0
            bright = float((vals > 0).mean()) if vals.size else 0.0
            gy, gx = np.gradient(patch)
            grad = np.hypot(gx, gy)
            steep = float(np.percentile(grad[mask], 98)) if vals.size else 0.0
            inner = mask.copy()  # the changed pixels whose four neighbours all changed too
            inner[1:] &= mask[:-1]
            inner[:-1] &= mask[1:]
            inner[:, 1:] &= mask[:, :-1]
            inner[:, :-1] &= mask[:, 1:]
            rim = mask & ~inner
            sharp = float((grad[rim] > STEEP).mean()) if rim.any() else 1.0
            out.append(Region(
                time=float(t), cells=n, peak=signed if bright >= 0.5 else -peak, bright_share=bright,
                edge_width=peak / max(steep, 1e-3), sharp_share=sharp, box=(x0 / w, y0 / h, x1 / w, y1 / h),
            ))
    return out


def insect_score(frames: ClipFrames) -> tuple[float, list[Region]]:
    """0.5..1 when every change region of a grey clip is an insect-like glow (and there is one), else 0.0.

    Above 0.5 the score says how far the least glow-like region stays from an outline (its steep rim share).
    """
    if not is_infrared(frames):
        return 0.0, []
    found = regions(frames)
    if not found or not all(r.insect_like() for r in found):
        return 0.0, found
    worst = max(r.sharp_share for r in found)
    return 0.5 + 0.5 * (1.0 - worst / MAX_SHARP), found


class InsectDetector(Detector):
    """Reports ``insect`` when a grey night clip's only movers are out-of-focus glows (moths at the IR lamp).

    The finding explains the core's "mover" away (``mover_explaining_labels``): it is only reported when no change
    region of the clip looks like anything else, so a person or a car walking among the moths keeps the alarm.
    """

    name = "insects"
    labels = ("insect",)
    false_alarm_labels = frozenset({"insect"})
    mover_explaining_labels = frozenset({"insect"})

    def frame_request(self) -> FrameRequest:
        """The motion analysis's keyframes at 320 px, in colour; no frame windows."""
        return REQUEST

    def analyze(self, frames: ClipFrames) -> list[Finding]:
        """One ``insect`` finding when every change region is an insect-like glow; else nothing."""
        score, found = insect_score(frames)
        if score < self.threshold:
            return []
        best = max(found, key=lambda r: r.cells)
        return [Finding(detector=self.name, label="insect", score=score, time=best.time, box=best.box,
                        extra={"regions": len(found)})]
