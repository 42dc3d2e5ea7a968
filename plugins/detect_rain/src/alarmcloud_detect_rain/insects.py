"""Insects at the IR lamp: are the only movers of a night clip moths close to the lens?

A moth flying at the camera's infrared lamp is lit from a few centimetres away and far out of focus: it shows
as a big, bright, soft-edged glow that jumps from place to place. The core's motion analysis sees that glow
against the clip's background in two keyframes and calls it a mover. A person or a car is in focus: the outline
against the background changes within a pixel or two, whatever the light.

This analysis looks at the frames the motion analysis looks at (its 10 keyframes and its three windows of 5
consecutive frames, at its 320 px width, in colour) and finds, in each frame, the change regions against the
keyframes' background: those of two or more 16x16 cells, and those of two or more of the motion analysis's own
4x4 cells outside them (a small person far away). The clip is explained by insects only when

- it is a grey infrared picture (``is_infrared``);
- there is at least one glow, and **every** coarse region of every frame is a glow: brighter than the background,
  and soft: the change rises over several pixels (``edge_width``), hardly any of its rim is steep
  (``sharp_share``) and it has no outline of steep change (``outline``); a small region that is no glow keeps the
  alarm where a walker could have made it (``unexplained``);
- no two glows of one frame look like a pair of headlights (``headlight_pair``), and no glow moves steadily
  through a window like a vehicle's light (``steady_mover``);
- a window shows the glows, so their flight was seen and not only guessed from keyframes seconds apart.

One region that is anything else (a person, a car's outline) and nothing is reported, so the core keeps the alarm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from alarmcloud import motion
from alarmcloud.contracts import ClipFrames, Detector, Finding, FrameRequest

#: the motion analysis's 10 keyframes and its three windows of 5 consecutive frames (decoded for it anyway); 320 px
#: so an outline is still within about a pixel, in colour to tell infrared (grey) pictures from day pictures; the
#: first, middle and last keyframes are shared with the core's view check
REQUEST = FrameRequest(keyframes=True, max_keyframes=10, window_at=(0.25, 0.55, 0.85), window_length=5, width=320,
                       color="rgb")
#: the grid the glows are judged on: 16x16 cells at 320 px (the motion analysis's grid until it went to 4x4)
CELL = 16
#: the motion analysis's own grid (4x4 pixels at 320 px), followed if it changes: a change it could count that lies
#: outside every region of the coarse grid (a person of 6 % of the frame height among the moths) is a region too
FINE_CELL = max(1, motion.CELL * REQUEST.width // motion.REQUEST.width)
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
BACKGROUND_PERCENTILE = 10  # of the keyframes, per pixel (see ``regions``)
MIN_BRIGHT = 0.6  # share of the changed pixels that got brighter (a moth hovering at one place leaves a ghost)
STEADY_FRAMES = 4  # frames of a window (of 5) in which a glow must keep its predicted course to count as a vehicle
STEADY_TOLERANCE = (2.0, 0.15)  # pixels + share of the last step the glow may miss its predicted place by
STEADY_MIN_STEP = 1.5  # pixels a frame (320 px): slower glows hover, whatever they are
#: an outline (person, car, a headlight's saturated core) has steep change all along its edge: at least one steep
#: pixel per pixel of perimeter; a moth's glow has a few (noise)
OUTLINE_STEEP = 20.0
MAX_OUTLINE = 0.5
ALIKE = (1.4, 1.2)  # two glows are alike within these ratios of size (cells) and brightness
PAIR = (0.25, 4.0)  # a headlight pair: alike, height apart at most / side by side at most, in glow diameters


@dataclass(frozen=True)
class Region:
    """One change region of one keyframe against the background of the keyframes."""

    time: float
    cells: int
    peak: float  # 98th percentile of the change (grey levels, signed: > 0 brighter than the background)
    bright_share: float  # share of the changed pixels that got brighter
    edge_width: float  # change peak / steepest gradient (pixels at 320 px): ~1-2 at an outline, more for a glow
    sharp_share: float  # share of the region's rim where the change rises steeply (an outline)
    outline: float  # pixels of steep change (> ``OUTLINE_STEEP``) per pixel of the perimeter of a disc as large
    box: tuple[float, float, float, float]  # fractions of the frame
    center: tuple[float, float] = (0.0, 0.0)  # change-weighted centre, pixels at 320 px
    cell: int = CELL  # the grid it was found on (pixels at 320 px)
    span: tuple[int, int, int, int] = (0, 0, 0, 0)  # its cells: left, top, right, bottom (pixels at 320 px)

    @property
    def area(self) -> int:
        """Its cells' pixels at 320 px."""
        return self.cells * self.cell * self.cell

    def insect_like(self, min_edge_width: float = MIN_EDGE_WIDTH, max_sharp: float = MAX_SHARP) -> bool:
        """Bright and soft: an out-of-focus glow, not an outline."""
        return (self.peak >= MIN_PEAK and self.bright_share >= MIN_BRIGHT and self.edge_width >= min_edge_width
                and self.sharp_share <= max_sharp and self.outline <= MAX_OUTLINE)


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


def _background(frames: ClipFrames) -> np.ndarray | None:
    """A low percentile of the keyframes, per pixel (None with fewer than 3 keyframes).

    Not the median: a moth adds light, and one circling the lamp is at the same place in several keyframes, which
    would leave a dark "ghost" of it against a median; a person darker than the background is darker than this
    too, and one who stands still shows as a sharp ghost instead.
    """
    keys = [_grey(f.image) for f in frames.keyframes]
    if len(keys) < 3:
        return None
    return np.percentile(np.stack(keys), BACKGROUND_PERCENTILE, axis=0)


def _frame_regions(t: float, d: np.ndarray) -> list[Region]:
    """The change regions of one frame's change ``d`` against the background: those of two or more cells of the
    coarse grid, and those of two or more cells of the fine grid whose centre is outside all of them."""
    coarse = _grid_regions(t, d, CELL)
    fine = [r for r in _grid_regions(t, d, FINE_CELL) if not any(_within(r.center, c.box, d.shape) for c in coarse)]
    return coarse + fine


def _within(p: tuple[float, float], box: tuple[float, float, float, float], shape: tuple[int, ...]) -> bool:
    h, w = shape[:2]
    return box[0] * w <= p[0] <= box[2] * w and box[1] * h <= p[1] <= box[3] * h


def _grid_regions(t: float, d: np.ndarray, cell: int) -> list[Region]:
    """The change regions of two or more ``cell`` x ``cell`` cells of one frame's change ``d``."""
    h, w = d.shape
    h2, w2 = h // cell * cell, w // cell * cell
    changed = np.abs(d) > CHANGE
    fill = changed[:h2, :w2].reshape(h2 // cell, cell, w2 // cell, cell).mean(axis=(1, 3))
    cells = fill >= FILL
    if cells.sum() < 2:
        return []
    out: list[Region] = []
    for comp in _components(cells):
        n = int(comp.sum())
        if n < 2 or n / comp.size >= 0.6:  # the motion analysis ignores whole-picture changes too
            continue
        ys, xs = np.nonzero(comp)
        # the region's cells plus one cell around them: the whole glow or outline, not only its core
        y0, y1 = max(0, (ys.min() - 1) * cell), min(h, (ys.max() + 2) * cell)
        x0, x1 = max(0, (xs.min() - 1) * cell), min(w, (xs.max() + 2) * cell)
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
        outline = float((grad > OUTLINE_STEEP).sum()) / (2 * np.sqrt(np.pi * max(int(mask.sum()), 1)))
        wts = np.where(mask, np.abs(patch), 0.0)
        total = float(wts.sum()) or 1.0
        yy, xx = np.mgrid[y0:y1, x0:x1]
        out.append(Region(
            time=float(t), cells=n, peak=signed if bright >= 0.5 else -peak, bright_share=bright,
            edge_width=peak / max(steep, 1e-3), sharp_share=sharp, outline=outline,
            box=(x0 / w, y0 / h, x1 / w, y1 / h),
            center=(float((wts * xx).sum() / total), float((wts * yy).sum() / total)), cell=cell,
            span=(int(xs.min()) * cell, int(ys.min()) * cell, (int(xs.max()) + 1) * cell, (int(ys.max()) + 1) * cell),
        ))
    return out


def regions(frames: ClipFrames) -> list[Region]:
    """Every change region in every keyframe (none with fewer than 3 keyframes)."""
    return [r for rs in keyframe_regions(frames) for r in rs]


def keyframe_regions(frames: ClipFrames) -> list[list[Region]]:
    """The change regions of each keyframe (``[]`` with fewer than 3 keyframes)."""
    bg = _background(frames)
    if bg is None:
        return []
    return [_frame_regions(f.time, _grey(f.image) - bg) for f in frames.keyframes]


def window_regions(frames: ClipFrames) -> list[list[list[Region]]]:
    """The change regions of every frame of every window: ``[window][frame] -> regions``."""
    bg = _background(frames)
    if bg is None:
        return []
    return [[_frame_regions(f.time, _grey(f.image) - bg) for f in window] for window in frames.windows]


def _dist(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(np.hypot(a[0] - b[0], a[1] - b[1]))


def _walker_linked(a: Region, b: Region, dt: float) -> bool:
    """Could one walker have made both regions ``dt`` seconds apart? The motion analysis's own rule
    (``alarmcloud.motion._linked``: overlapping heights, at most its walking speed apart sideways)."""
    h = max(a.span[3] - a.span[1], b.span[3] - b.span[1], motion.MIN_HEIGHT_CELLS * FINE_CELL)
    gap_y = max(0, max(a.span[1], b.span[1]) - min(a.span[3], b.span[3]))
    gap_x = max(0, max(a.span[0], b.span[0]) - min(a.span[2], b.span[2]))
    return gap_y <= h and gap_x <= motion.SLACK_CELLS * FINE_CELL + motion.HEIGHTS_PER_SECOND * h * abs(dt)


def unexplained(keyed: list[list[Region]], windows: list[list[list[Region]]]) -> bool:
    """Is there a change the motion analysis could count as a mover that is no glow?

    Any such region of the coarse grid is. A small one found only on the fine grid is where a walker could have
    made it: on one path with a non-glow region of the next or previous keyframe, or near one place in three or
    more frames of a window. Far, small insects light up as small sharp dots too, but flit about at random.
    """
    frames = [*keyed, *(f for w in windows for f in w)]
    if any(not r.insect_like() for rs in frames for r in rs if r.cell == CELL):
        return True
    odd = [[r for r in rs if not r.insect_like()] for rs in keyed]
    for i in range(len(odd) - 1):
        for a in odd[i]:
            for b in odd[i + 1]:
                if _walker_linked(a, b, b.time - a.time):
                    return True
    for w in windows:
        wodd = [[r for r in f if not r.insect_like()] for f in w]
        for i, rs in enumerate(wodd):
            for a in rs:
                seen = 1 + sum(any(_walker_linked(a, b, b.time - a.time) for b in other)
                               for j, other in enumerate(wodd) if j != i)
                if seen >= 3:
                    return True
    return False


def steady_mover(window: list[list[Region]]) -> bool:
    """Does a glow move steadily through the window (a car's headlight), where a moth's flight is erratic?

    From every pair of regions one or two frames apart the glow's next places are predicted from its step; a glow
    found near the prediction in ``STEADY_FRAMES`` frames in all (one frame may miss it: it merged with a moth),
    moving at least ``STEADY_MIN_STEP`` pixels a frame, moves like a vehicle. A moth at the lamp turns and changes
    speed at random from one frame to the next.
    """
    n = len(window)
    for i in range(n):
        for j in (i + 1, i + 2):
            if j >= n:
                continue
            for a in window[i]:
                for b in window[j]:
                    step = ((b.center[0] - a.center[0]) / (j - i), (b.center[1] - a.center[1]) / (j - i))
                    speed = float(np.hypot(*step))
                    if speed < STEADY_MIN_STEP:
                        continue
                    hits, misses, last, at = 2, j - i - 1, b.center, j
                    for k in range(j + 1, n):
                        gap = k - at
                        guess = (last[0] + step[0] * gap, last[1] + step[1] * gap)
                        tol = STEADY_TOLERANCE[0] + STEADY_TOLERANCE[1] * speed * gap
                        near = [r for r in window[k] if _dist(r.center, guess) <= tol]
                        if near:
                            hits, last, at = hits + 1, min(near, key=lambda r: _dist(r.center, guess)).center, k
                        else:
                            misses += 1
                        if misses > 1:
                            break
                    if hits >= STEADY_FRAMES and misses <= 1:
                        return True
    return False


def headlight_pair(found: list[Region]) -> bool:
    """Two glows of one frame alike in size and brightness, side by side at one height: a car's headlights."""
    for i, a in enumerate(found):
        for b in found[i + 1 :]:
            dx, dy = abs(a.center[0] - b.center[0]), abs(a.center[1] - b.center[1])
            if _alike(a, b) and dy <= PAIR[0] * _reach(a, b) and dx <= PAIR[1] * _reach(a, b):
                return True
    return False


def _reach(a: Region, b: Region) -> float:
    return float(np.sqrt(max(a.area, b.area)))  # about the glows' diameter


def _alike(a: Region, b: Region) -> bool:
    size = max(a.area, b.area) / min(a.area, b.area)
    light = max(abs(a.peak), abs(b.peak)) / max(min(abs(a.peak), abs(b.peak)), 1.0)
    return size <= ALIKE[0] and light <= ALIKE[1]


def insect_score(frames: ClipFrames) -> tuple[float, list[Region]]:
    """0.5..1 when the clip's only movers are moths at the lamp, else 0.0; and every change region seen.

    Moths only: a grey (infrared) clip; every change region of every keyframe and window frame is a bright, soft
    glow; no two glows of one frame look like a pair of headlights; no glow moves steadily through a window; and a
    window shows the glows (the erratic flight is seen, not assumed). Above 0.5 the score says how far the least
    glow-like region stays from an outline (its steep rim share).
    """
    if not is_infrared(frames):
        return 0.0, []
    per_key = keyframe_regions(frames)
    keyed = [r for rs in per_key for r in rs]
    if unexplained(per_key, []):  # a person or a car in the keyframes: the windows cannot change that
        return 0.0, keyed
    windows = window_regions(frames)
    found = keyed + [r for w in windows for f in w for r in f]
    if not found or unexplained(per_key, windows):
        return 0.0, found
    glows = [r for r in found if r.cell == CELL and r.insect_like()]  # a moth near the lens is big: small dots are not
    if not glows:
        return 0.0, found
    by_key: dict[float, list[Region]] = {}
    for r in keyed:
        by_key.setdefault(r.time, []).append(r)
    if any(headlight_pair(rs) for rs in [*by_key.values(), *(f for w in windows for f in w)]):
        return 0.0, found
    if any(steady_mover(w) for w in windows):
        return 0.0, found
    if not any(sum(1 for f in w if f) >= 2 for w in windows):
        return 0.0, found
    worst = max(r.sharp_share for r in glows)
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
