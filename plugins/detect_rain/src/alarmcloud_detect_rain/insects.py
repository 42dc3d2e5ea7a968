"""Insects and spider webs at the IR lamp: are the only movers of a night clip moths close to the lens, or silk?

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

**Spider silk** swaying in front of the lens glows in the lamp's light too, but as a thin line, not a glow: the
motion analysis sees each place the strand swings to as a change against the background, mostly a mover. A change
region also counts as explained when it lies on a **strand** (``strand_cells``): a thin line of brightening (at
most ``STRAND_WIDTH`` px across, holes of a pixel closed; its 4x4 cells at most two across), long
(``STRAND_LENGTH`` px and ``STRAND_ELONGATION`` times its width), with the thin pieces that continue it
(``_continues``); and only where a strand of a keyframe at least ``ANCHOR_SECONDS`` away hangs too
(``_anchored``): silk sways about one place for the whole clip, a walker's thin sliver moves on. Small fine-grid
regions where the clip's silk hangs are bits of it (``_in_zone``). A person, however fragmented against the night,
is about a quarter as wide as tall; a far one is too short. The clip is then reported as ``web`` (and ``insect``
when glows were found as well).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from alarmcloud import motion
from alarmcloud.contracts import ClipFrames, Detector, Finding, FrameRequest

from alarmcloud_detect_rain.features import grow

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
#: a strand of spider silk (pixels at 320 px): changed pixels at most this wide (holes of a pixel closed) ...
STRAND_WIDTH = 6.0
#: ... its 4x4 cells at most two across ...
STRAND_CELLS_ACROSS = 2.2
#: ... at least this long and this many times as long as wide
STRAND_LENGTH = 20.0
STRAND_ELONGATION = 7.0
#: a change region lies on a strand when this share of its changed pixels does (a cell's reach around it)
STRAND_SHARE = 0.6
#: a thin fragment that reaches within this many fine cells of a strand belongs to it (a faint strand breaks up)
#: when it continues the strand: longer than wide, in its direction, on its line (``_continues``)
STRAND_REACH = 2
STRAND_FRAGMENT_ELONGATION = 2.0
STRAND_ANGLE = 25.0
STRAND_OFFSET = 1.5
#: a strand counts where silk hangs for the whole clip: at least this share of its cells within this many fine cells
#: of a strand of a keyframe at least this many seconds away (``_anchored``)
ANCHOR_SHARE = 0.3
ANCHOR_REACH = 3
ANCHOR_SECONDS = 1.0
#: a small fine-grid region (at most this many cells) within this many cells of a keyframe's anchored strand is a bit
#: of silk (``_in_zone``)
ZONE_CELLS = 4
ZONE_REACH = 2
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
    center: tuple[float, float] = (0.0, 0.0)  # change-weighted centre (on a strand: plain), pixels at 320 px
    cell: int = CELL  # the grid it was found on (pixels at 320 px)
    span: tuple[int, int, int, int] = (0, 0, 0, 0)  # its cells: left, top, right, bottom (pixels at 320 px)
    strand: bool = False  # it lies on a strand of spider silk (``strand_cells``)

    @property
    def area(self) -> int:
        """Its cells' pixels at 320 px."""
        return self.cells * self.cell * self.cell

    @property
    def explained(self) -> bool:
        """An insect's glow or a part of a strand of spider silk."""
        return self.strand or self.insect_like()

    def insect_like(self, min_edge_width: float = MIN_EDGE_WIDTH, max_sharp: float = MAX_SHARP) -> bool:
        """Bright and soft: an out-of-focus glow, not an outline."""
        return (self.peak >= MIN_PEAK and self.bright_share >= MIN_BRIGHT and self.edge_width >= min_edge_width
                and self.sharp_share <= max_sharp and self.outline <= MAX_OUTLINE)


def _grey(img: np.ndarray) -> np.ndarray:
    """The mean of the channels, as float32 (the same numbers as ``mean(axis=2)``, ten times faster: sums of three
    bytes are exact)."""
    if img.ndim != 3:
        return img.astype(np.float32)
    return (img[..., 0].astype(np.float32) + img[..., 1] + img[..., 2]) / 3


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


_FOUR = ((1, 0), (-1, 0), (0, 1), (0, -1))
_EIGHT = (*_FOUR, (1, 1), (1, -1), (-1, 1), (-1, -1))


def _filled(changed: np.ndarray, cell: int) -> np.ndarray:
    """The ``cell`` x ``cell`` cells of the boolean picture ``changed`` of which at least ``FILL`` changed (a partial
    cell at the edge left out)."""
    h2, w2 = changed.shape[0] // cell * cell, changed.shape[1] // cell * cell
    return changed[:h2, :w2].reshape(h2 // cell, cell, w2 // cell, cell).mean(axis=(1, 3)) >= FILL


def _pixels(cells: np.ndarray, cell: int) -> np.ndarray:
    """Each cell of ``cells`` as its ``cell`` x ``cell`` pixels."""
    return np.repeat(np.repeat(cells, cell, axis=0), cell, axis=1)


def _components(cells: np.ndarray, diagonal: bool = False) -> list[np.ndarray]:
    """4-connected (``diagonal``: 8-connected) components of a small boolean grid, each as a boolean mask."""
    labels = np.zeros(cells.shape, np.int32)
    out = []
    h, w = cells.shape
    steps = _EIGHT if diagonal else _FOUR
    for y, x in zip(*np.nonzero(cells), strict=False):
        if labels[y, x]:
            continue
        n = len(out) + 1
        stack = [(y, x)]
        labels[y, x] = n
        while stack:
            cy, cx = stack.pop()
            for dy, dx in steps:
                ny, nx = cy + dy, cx + dx
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


def _frame_regions(t: float, d: np.ndarray, on: np.ndarray | None = None) -> list[Region]:
    """The change regions of one frame's change ``d`` against the background: those of two or more cells of the
    coarse grid, and those of two or more cells of the fine grid whose centre is outside all of them; each marked
    ``strand`` when most of its changed pixels lie on (a cell beside) the strand cells ``on`` (fine grid)."""
    if on is not None and on.any():
        near = grow(on)
        on_px = np.zeros(d.shape, bool)
        on_px[:near.shape[0] * FINE_CELL, :near.shape[1] * FINE_CELL] = _pixels(near, FINE_CELL)
    else:
        on_px = None
    coarse = _grid_regions(t, d, CELL, on_px)
    fine = [r for r in _grid_regions(t, d, FINE_CELL, on_px)
            if not any(_within(r.center, c.box, d.shape) for c in coarse)]
    return coarse + fine


def _anchored(on: np.ndarray, t: float, keyed: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """The strands of ``on`` (a frame at ``t`` s) that hang where a strand of a keyframe at least
    ``ANCHOR_SECONDS`` away hangs too: at least ``ANCHOR_SHARE`` of their cells within ``ANCHOR_REACH`` cells of it.
    Silk sways about the place it hangs from for the whole clip; a walker's thin sliver has moved on by then."""
    if not on.any():
        return on
    others = np.zeros_like(on)
    for tk, ok in keyed:
        if abs(tk - t) >= ANCHOR_SECONDS:
            others |= ok
    out = np.zeros_like(on)
    if not others.any():
        return out
    near = grow(others, steps=ANCHOR_REACH)
    for comp in _components(on, diagonal=True):
        if (comp & near).sum() >= ANCHOR_SHARE * comp.sum():
            out |= comp
    return out


def _shrink(m: np.ndarray, diagonal: bool = False) -> np.ndarray:
    """``m`` eroded by one step (the picture's border counts as set)."""
    return ~grow(~m, diagonal)


def _across(m: np.ndarray, close: bool = False) -> float:
    """How many pixels (cells) across ``m`` is (``close``: holes of one closed first): ``2 / (1 - share that
    survives an erosion)``, exact for a band of even width (2 for a line one or two across)."""
    if close:
        m = _shrink(grow(m, diagonal=False)) | m
    n = int(m.sum())
    inner = int(_shrink(m).sum()) if n else 0
    return 2.0 / max(1.0 - inner / max(n, 1), 0.05)


def strand_cells(d: np.ndarray) -> np.ndarray:
    """The fine-grid cells (``FINE_CELL`` px at 320 px) of one frame's change ``d`` that lie on strands of spider
    silk: 8-connected brightenings of two or more cells that are thin (``STRAND_WIDTH``, ``STRAND_CELLS_ACROSS``)
    and long (``STRAND_LENGTH``, ``STRAND_ELONGATION``), and thin brightenings or darkenings (where a strand of the
    background was) that reach within ``STRAND_REACH`` cells of those and continue them (``_continues``).
    Brightening and darkening are looked at apart: a strand that swung a little is a bright line beside a dark
    one, which together are no thin line."""
    c = FINE_CELL
    h, w = d.shape
    h2, w2 = h // c * c, w // c * c
    on = np.zeros((h2 // c, w2 // c), bool)
    thin: list[np.ndarray] = []
    for changed, seeds in ((d[:h2, :w2] > CHANGE, True), (d[:h2, :w2] < -CHANGE, False)):
        cells = _filled(changed, c)
        if cells.sum() < 2:
            continue
        for comp in _components(cells, diagonal=True):
            ys, xs = np.nonzero(comp)
            if len(ys) < 2:
                continue
            # measured on the component's box with a cell of margin (the same as on the whole grid, cheaper)
            y0, y1, x0, x1 = max(0, ys.min() - 1), ys.max() + 2, max(0, xs.min() - 1), xs.max() + 2
            own = comp[y0:y1, x0:x1]
            if _across(own) > STRAND_CELLS_ACROSS:
                continue
            m = changed[y0 * c:y1 * c, x0 * c:x1 * c] & _pixels(own, c)
            width = _across(m, close=True)
            if width > STRAND_WIDTH:
                continue
            length = int(m.sum()) / width
            if seeds and length >= STRAND_LENGTH and length >= STRAND_ELONGATION * width:
                on |= comp
            else:
                thin.append(comp)
    # a faint strand breaks up into pieces: thin ones that reach within STRAND_REACH cells of it and continue it
    # (or run beside it: the background's strand) belong to it, and bring the next ones within reach
    while on.any() and thin:
        near = grow(on, steps=STRAND_REACH)
        joined = [comp for comp in thin if (comp & near).any() and _continues(on, comp)]
        if not joined:
            break
        for comp in joined:
            on |= comp
        thin = [comp for comp in thin if not (comp & on).any()]
    return on


def _axis(ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Centre, unit direction of the longer axis, and how much longer than wide (the axes' spread ratio) of
    points."""
    pts = np.stack([xs, ys], axis=1).astype(np.float64)
    centre = pts.mean(axis=0)
    vals, vecs = np.linalg.eigh(np.cov((pts - centre).T) if len(pts) > 1 else np.zeros((2, 2)))
    return centre, vecs[:, 1], float(np.sqrt(max(vals[1], 0.0) / max(vals[0], 1e-3)))


def _continues(on: np.ndarray, comp: np.ndarray) -> bool:
    """Does the thin fragment ``comp`` (fine cells) lie along the strand cells ``on`` next to it: longer than wide
    (``STRAND_FRAGMENT_ELONGATION``), at most ``STRAND_ANGLE`` degrees from the strand's direction there, its centre
    within ``STRAND_OFFSET`` cells of the strand's line? A person or a lamp's glow beside a strand is not."""
    fy, fx = np.nonzero(comp)
    if len(fy) < 2:
        return False
    centre, direction, long = _axis(fy, fx)
    if long < STRAND_FRAGMENT_ELONGATION:
        return False
    sy, sx = np.nonzero(on)
    close = np.hypot(sy - centre[1], sx - centre[0]) <= STRAND_REACH + 4 + len(fy) / 2
    if close.sum() < 3:
        return False
    s_centre, s_direction, _ = _axis(sy[close], sx[close])
    if abs(float(direction @ s_direction)) < np.cos(np.radians(STRAND_ANGLE)):
        return False
    off = centre - s_centre
    return abs(float(off[0] * s_direction[1] - off[1] * s_direction[0])) <= STRAND_OFFSET


def _within(p: tuple[float, float], box: tuple[float, float, float, float], shape: tuple[int, ...]) -> bool:
    h, w = shape[:2]
    return box[0] * w <= p[0] <= box[2] * w and box[1] * h <= p[1] <= box[3] * h


def _grid_regions(t: float, d: np.ndarray, cell: int, on_strand: np.ndarray | None = None) -> list[Region]:
    """The change regions of two or more ``cell`` x ``cell`` cells of one frame's change ``d``; ``strand`` where
    most of a region's changed pixels are ``on_strand``."""
    h, w = d.shape
    changed = np.abs(d) > CHANGE
    cells = _filled(changed, cell)
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
        span = (int(xs.min()) * cell, int(ys.min()) * cell, (int(xs.max()) + 1) * cell, (int(ys.max()) + 1) * cell)
        if on_strand is not None:
            sx0, sy0, sx1, sy1 = span
            own = changed[sy0:sy1, sx0:sx1] & _pixels(comp[ys.min():ys.max() + 1, xs.min():xs.max() + 1], cell)
            if on_strand[sy0:sy1, sx0:sx1][own].mean() >= STRAND_SHARE:
                # on a strand: where it is and how bright; the glow measures are not needed
                yy, xx = np.nonzero(own)
                seen = d[sy0:sy1, sx0:sx1][own]
                out.append(Region(time=float(t), cells=n, peak=float(np.abs(seen).max()),
                                  bright_share=float((seen > 0).mean()), edge_width=0.0, sharp_share=1.0, outline=0.0,
                                  box=(x0 / w, y0 / h, x1 / w, y1 / h),
                                  center=(float(xx.mean() + sx0), float(yy.mean() + sy0)), cell=cell, span=span,
                                  strand=True))
                continue
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
            span=span,
        ))
    return out


def regions(frames: ClipFrames) -> list[Region]:
    """Every change region in every keyframe (none with fewer than 3 keyframes)."""
    return [r for rs in keyframe_regions(frames) for r in rs]


def keyframe_regions(frames: ClipFrames) -> list[list[Region]]:
    """The change regions of each keyframe (``[]`` with fewer than 3 keyframes); ``strand`` on anchored strands
    (``causes`` marks the small bits where the silk hangs as well)."""
    return _key_regions(frames)[0]


def window_regions(frames: ClipFrames) -> list[list[list[Region]]]:
    """The change regions of every frame of every window: ``[window][frame] -> regions``."""
    return _window_regions(frames, *_key_regions(frames)[1:])


_Strands = list[tuple[float, np.ndarray]]  # (time, strand cells) of each keyframe


def _key_regions(frames: ClipFrames) -> tuple[list[list[Region]], np.ndarray | None, _Strands]:
    """``keyframe_regions``, their strands anchored (``_anchored``) against each other; the background and the
    keyframes' strands, for ``_window_regions``."""
    bg = _background(frames)
    if bg is None:
        return [], None, []
    keys = [(f.time, _grey(f.image) - bg) for f in frames.keyframes]
    keyed = [(t, strand_cells(d)) for t, d in keys]
    anchored = [(t, _anchored(on, t, keyed)) for t, on in keyed]
    return ([_frame_regions(t, d, on) for (t, d), (_, on) in zip(keys, anchored, strict=True)], bg, anchored)


def _window_regions(frames: ClipFrames, bg: np.ndarray | None, keyed: _Strands) -> list[list[list[Region]]]:
    """``window_regions``, their strands anchored against the keyframes' strands."""
    if bg is None:
        return []
    out = []
    for window in frames.windows:
        rows = []
        for f in window:
            d = _grey(f.image) - bg
            rows.append(_frame_regions(f.time, d, _anchored(strand_cells(d), f.time, keyed)))
        out.append(rows)
    return out


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
    """Is there a change the motion analysis could count as a mover that is neither a glow nor on a strand?

    Any such region of the coarse grid is. A small one found only on the fine grid is where a walker could have
    made it: on one path with such a region of the next or previous keyframe, or near one place in three or
    more frames of a window. Far, small insects light up as small sharp dots too, but flit about at random.
    """
    frames = [*keyed, *(f for w in windows for f in w)]
    if any(not r.explained for rs in frames for r in rs if r.cell == CELL):
        return True
    odd = [[r for r in rs if not r.explained] for rs in keyed]
    for i in range(len(odd) - 1):
        for a in odd[i]:
            for b in odd[i + 1]:
                if _walker_linked(a, b, b.time - a.time):
                    return True
    for w in windows:
        wodd = [[r for r in f if not r.explained] for f in w]
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


def causes(frames: ClipFrames) -> tuple[dict[str, float], list[Region]]:
    """What explains every mover of the clip (``{"insect": score, "web": score}``, empty when something else may
    have moved), and every change region seen.

    Explained: a grey (infrared) clip; every change region of every keyframe and window frame is a bright, soft
    glow or lies on a strand of spider silk; no two glows of one frame look like a pair of headlights; no glow
    moves steadily through a window; and a window shows them (the erratic flight, the sway, is seen, not assumed).
    ``insect`` (0.5..1: how far the least glow-like glow stays from an outline, its steep rim share) when there are
    glows, ``web`` (0.5..1: 0.5 plus half the share of the regions that lie on strands) when there are strands.
    """
    if not is_infrared(frames):
        return {}, []
    per_key, bg, strands_of_keys = _key_regions(frames)
    zone = _web_zone(strands_of_keys)
    per_key = [_in_zone(rs, zone) for rs in per_key]
    keyed = [r for rs in per_key for r in rs]
    if unexplained(per_key, []):  # a person or a car in the keyframes: the windows cannot change that
        return {}, keyed
    windows = [[_in_zone(rs, zone) for rs in w] for w in _window_regions(frames, bg, strands_of_keys)]
    found = keyed + [r for w in windows for f in w for r in f]
    if not found or unexplained(per_key, windows):
        return {}, found
    # a moth near the lens is big: small dots are not; silk is thin and swings as a whole, so its lights are no
    # headlights and its sway is no vehicle's course
    glows = [r for r in found if r.cell == CELL and not r.strand and r.insect_like()]
    strands = [r for r in found if r.strand]
    if not glows and not strands:
        return {}, found
    by_key: dict[float, list[Region]] = {}
    for r in keyed:
        if not r.strand:
            by_key.setdefault(r.time, []).append(r)
    lights = [[r for r in f if not r.strand] for w in windows for f in w]
    if any(headlight_pair(rs) for rs in [*by_key.values(), *lights]):
        return {}, found
    if any(steady_mover([[r for r in f if not r.strand] for f in w]) for w in windows):
        return {}, found
    if not any(sum(1 for f in w if f) >= 2 for w in windows):
        return {}, found
    out: dict[str, float] = {}
    if glows:
        out["insect"] = 0.5 + 0.5 * (1.0 - max(r.sharp_share for r in glows) / MAX_SHARP)
    if strands:
        out["web"] = 0.5 + 0.5 * len(strands) / len(found)
    return out, found


def _web_zone(strands_of_keys: _Strands) -> np.ndarray | None:
    """Where the clip's silk hangs: every keyframe's anchored strand cells, ``ZONE_REACH`` cells around them."""
    zone = None
    for _, on in strands_of_keys:
        zone = on.copy() if zone is None else zone | on
    if zone is None or not zone.any():
        return None
    return grow(zone, steps=ZONE_REACH)


def _in_zone(found: list[Region], zone: np.ndarray | None) -> list[Region]:
    """``found`` with the small fine-grid regions that lie where the silk hangs (``_web_zone``) marked ``strand``:
    the bits a faint strand breaks up into. Small only: a walker there is bigger, or seen outside it too."""
    if zone is None:
        return found
    gh, gw = zone.shape
    return [dataclasses.replace(r, strand=True)
            if (r.cell == FINE_CELL and not r.strand and r.cells <= ZONE_CELLS
                and zone[min(gh - 1, int(r.center[1]) // FINE_CELL), min(gw - 1, int(r.center[0]) // FINE_CELL)])
            else r for r in found]


def insect_score(frames: ClipFrames) -> tuple[float, list[Region]]:
    """0.5..1 when the clip's only movers are moths at the lamp (or moths and spider silk), else 0.0; and every
    change region seen (``causes``)."""
    found, regions_seen = causes(frames)
    return found.get("insect", 0.0), regions_seen


class InsectDetector(Detector):
    """Reports ``insect`` when a grey night clip's only movers are out-of-focus glows (moths at the IR lamp), ``web``
    when they are strands of spider silk swaying in front of the lens (both when both).

    The findings explain the core's "mover" away (``mover_explaining_labels``): they are only reported when no change
    region of the clip looks like anything else, so a person or a car walking among the moths keeps the alarm.
    """

    name = "insects"
    labels = ("insect", "web")
    false_alarm_labels = frozenset({"insect", "web"})
    mover_explaining_labels = frozenset({"insect", "web"})

    def frame_request(self) -> FrameRequest:
        """The motion analysis's keyframes at 320 px, in colour; no frame windows."""
        return REQUEST

    def analyze(self, frames: ClipFrames) -> list[Finding]:
        """An ``insect`` finding when every change region is an insect-like glow or on a strand and some are glows;
        a ``web`` finding when some are on strands; else nothing. Box and time: the largest such region's."""
        scores, found = causes(frames)
        out = []
        for label, score in scores.items():
            if score < self.threshold:
                continue
            mine = [r for r in found if r.strand == (label == "web")]
            best = max(mine, key=lambda r: r.cells)
            out.append(Finding(detector=self.name, label=label, score=score, time=best.time, box=best.box,
                               extra={"regions": len(found)}))
        return out
