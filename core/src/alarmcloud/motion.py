"""Built-in motion/persistence analysis (no model): is a real mover present, or only weather and noise?

Rain, snow and sensor noise change many scattered pixels for one frame; a person or car changes a compact
region that persists over consecutive frames and moves across keyframes along a path.

Frames are 320 px wide, changes are counted in 4x4-pixel cells (1.25 % of the frame width): a person of 6 % of the
frame height is about 11 x 3 pixels there, two or three cells. Measured limits: ``bench/motion/RESULTS.md``.
"""

from __future__ import annotations

import itertools

import numpy as np

from alarmcloud.contracts import ClipFrames, FrameRequest

REQUEST = FrameRequest(keyframes=True, max_keyframes=10, window_at=(0.25, 0.55, 0.85), window_length=5,
                       width=320, color="gray")
CELL = 4
#: a cell changed where at least this share of its pixels did
CELL_FILL = 0.35
#: a walker covers at most this many of its own heights per second (2 m/s for 1.75 m), plus a few cells of slack
HEIGHTS_PER_SECOND = 1.2
SLACK_CELLS = 2
MIN_HEIGHT_CELLS = 3  # a blob of one or two cells may still be a person's head and shoulders: allow a person's steps
#: an object of this many cells (2 cells of 8x8 pixels at 160 px) needs no path: a car crossing in 4 s at 20 km/h is
#: in two keyframes far apart
BIG_CELLS = 8

Blob = tuple[int, int, int, int, int]  # size, top, bottom, left, right (cells, inclusive)


def _mask(a: np.ndarray, b: np.ndarray, thresh: int = 25) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)) > thresh


#: a camera's gain (AGC, auto exposure) that differs from the reference's by less than this share is left alone
LEVEL_TOLERANCE = 0.03


def _levelled(img: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``img`` brought to ``ref``'s brightness where the camera's gain changed between them: the median over the lit
    pixels of one per cell of their ratio, which a mover covering less than half of the lit picture leaves alone."""
    a = img[::CELL, ::CELL].astype(np.float32)
    r = ref[::CELL, ::CELL].astype(np.float32)
    lit = r > 40
    if lit.sum() < 100:  # a dark picture: too few pixels to tell a gain from the noise
        return img
    gain = float(np.median(a[lit] / r[lit]))
    if abs(gain - 1) < LEVEL_TOLERANCE:
        return img
    return np.clip(img / gain, 0, 255).astype(np.uint8)


#: an object in one keyframe only is a mover (``LONE_SCORE``, just one) where it is big and this solid: the mean share
#: of changed pixels in its cells (a car: 0.8-0.9; rain's streaks fill theirs by 0.5-0.6)
SOLID_FILL = 0.7
LONE_SCORE = 0.5


def _solid(fill: np.ndarray, blob: Blob) -> bool:
    """Whether the object ``blob`` of the cell fills ``fill`` (share of changed pixels per cell) is solid."""
    _, y0, y1, x0, x1 = blob
    box = fill[y0 : y1 + 1, x0 : x1 + 1]
    return bool(box[box >= CELL_FILL].mean() >= SOLID_FILL)


#: a keyframe's object whose changed pixels all but this share of are the background's own, each cell of it made
#: brighter or darker, is light that changed (a cloud's shadow), not an object
LIGHT_SHARE = 0.02


def _light_change(img: np.ndarray, ref: np.ndarray, blob: Blob) -> bool:
    """Whether the object ``blob`` of ``img`` against ``ref`` is the same scene in other light: each cell of the
    reference scaled to that cell's mean in ``img`` gives back its changed pixels (to 15 grey levels). Light keeps the
    scene's edges and texture; an object in front of it brings its own outline, which no cell's scale explains."""
    size, y0, y1, x0, x1 = blob
    if size < BIG_CELLS:  # a few cells of a dark coat on a dark wall are a cell's scale too: too small to tell
        return False
    box = (slice(y0 * CELL, (y1 + 1) * CELL), slice(x0 * CELL, (x1 + 1) * CELL))
    a, r = img[box].astype(np.float32), ref[box].astype(np.float32)
    scale = (_cell_means(a) + 1) / (_cell_means(r) + 1)
    changed = np.abs(a - r) > 30
    unexplained = np.abs(a - r * np.repeat(np.repeat(scale, CELL, axis=0), CELL, axis=1)) > 15
    # too few changed pixels (a faint figure seen in the cells' means) tell nothing: an object
    return bool(changed.sum() >= CELL * CELL and (changed & unexplained).sum() <= LIGHT_SHARE * changed.sum())


def _cell_means(a: np.ndarray) -> np.ndarray:
    """The mean of ``a`` over each ``CELL`` x ``CELL`` cell (a partial cell at the edge left out)."""
    h, w = a.shape
    h2, w2 = h // CELL * CELL, w // CELL * CELL
    return a[:h2, :w2].reshape(h2 // CELL, CELL, w2 // CELL, CELL).mean(axis=(1, 3))


def _cells(mask: np.ndarray) -> np.ndarray:
    """The cells where at least ``CELL_FILL`` of the pixels changed."""
    return _cell_means(mask) >= CELL_FILL


def _blobs(cells: np.ndarray) -> list[Blob]:
    """The 4-connected regions of active cells with their bounding boxes."""
    todo = set(zip(*(a.tolist() for a in np.nonzero(cells)), strict=True))
    out: list[Blob] = []
    while todo:
        first = todo.pop()
        stack = [first]
        y0 = y1 = first[0]
        x0 = x1 = first[1]
        size = 0
        while stack:
            y, x = stack.pop()
            size += 1
            y0, y1, x0, x1 = min(y0, y), max(y1, y), min(x0, x), max(x1, x)
            for n in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if n in todo:
                    todo.remove(n)
                    stack.append(n)
        out.append((size, y0, y1, x0, x1))
    return out


def _largest_blob(cells: np.ndarray) -> int:
    return max((b[0] for b in _blobs(cells)), default=0)


def _linked(a: Blob, b: Blob, dt: float) -> bool:
    """Could one walker have made both blobs, ``dt`` seconds apart? (rain and snow put them anywhere)"""
    h = max(a[2] - a[1] + 1, b[2] - b[1] + 1, MIN_HEIGHT_CELLS)
    gap_y = max(0, max(a[1], b[1]) - min(a[2], b[2]))
    gap_x = max(0, max(a[3], b[3]) - min(a[4], b[4]))
    return gap_y <= h and gap_x <= SLACK_CELLS + HEIGHTS_PER_SECOND * h * abs(dt)


def _on_course(blobs: list[Blob], times: list[float]) -> bool:
    """Whether three objects of consecutive keyframes lie on one straight course at a steady speed: at one height
    (their rows overlap), each step the same way and within a third (plus ``SLACK_CELLS``) as long as the other. A
    walker of whom only a part shows (the legs of someone in a coat as dark as the scene behind) is faster than
    ``_linked`` allows for an object that high; rain and snow do not keep a course over three keyframes."""
    a, b, c = blobs
    if max(a[1], b[1], c[1]) > min(a[2], b[2], c[2]):
        return False
    xa, xb, xc = ((blob[3] + blob[4]) / 2 for blob in blobs)
    v1, v2 = (xb - xa) / (times[1] - times[0]), (xc - xb) / (times[2] - times[1])
    half = (times[2] - times[0]) / 2  # a step's time, on average
    return v1 * v2 > 0 and abs(v1 - v2) * half <= SLACK_CELLS + max(abs(v1), abs(v2)) / 3 * half


def _dominant(cells: np.ndarray) -> Blob | None:
    """The picture's dominant compact object: none where it is smaller than half of all other changes together
    (rain and snow change many places at once; a car's two headlights are two objects) or covers most of it."""
    best = max(_blobs(cells), default=None)
    if best is None or best[0] < 2 or best[0] < (cells.sum() - best[0]) * 0.5 or best[0] / cells.size >= 0.6:
        return None
    return best


#: a cell of a window's median picture whose mean differs from the background by more than this (grey levels)
#: changed: noise averages out over the cell's 16 pixels, so a figure far fainter than ``_mask``'s 30 levels shows
STILL_CELL_LEVELS = 10


def _apart(a: Blob, b: Blob) -> bool:
    """Whether two objects' boxes do not overlap: it moved on."""
    return a[4] < b[3] or b[4] < a[3] or a[2] < b[1] or b[2] < a[1]


def through_rain(frames: ClipFrames, background: np.ndarray) -> float:
    """1.0 where a mover shows through rain or snow, else 0.0.

    Heavy rain changes so many places in every picture that a person is never the dominant change of a keyframe or
    of a window's lasting change. Each window's per-pixel median of its pictures is the scene without the rain (a
    streak or a flake crosses a pixel in one picture of five) and without most of the sensor noise; against the
    keyframes' ``background`` (their median), less the difference all over (a picture with more rain in it is
    brighter everywhere), a person is again the dominant object. One in two consecutive windows, on one walking path
    and in another place each time, is a mover: swaying plants and a camera's gain changes stay where they are.

    Changes are looked for twice: pixels more than 30 grey levels off (as everywhere in this analysis), and cells
    whose mean is more than ``STILL_CELL_LEVELS`` off, which finds a figure of low contrast (dark clothes at night, a
    person behind the rain's veil) in the picture the median has cleared of noise; the cell test alone would lose
    people in heavy IR-lit rain, whose median pictures keep a little of it everywhere. An object that is the scene
    in other light (``_light_change``: a cloud's shadow moving on) is none. Measured on ``bench/motion`` (people in
    the rain, dark figures on dark nights, light that changes)."""
    found: list[tuple[float, Blob | None, Blob | None]] = []
    for window in frames.windows:
        if len(window) < 3:
            continue
        stack = np.stack([f.image for f in window])
        # the per-pixel median (the middle of the sorted values; of an even count the lower one)
        median = np.partition(stack, (len(window) - 1) // 2, axis=0)[(len(window) - 1) // 2]
        still = median - background
        still -= np.percentile(still, 50, method="lower")
        objects = (_dominant(_cells(np.abs(still) > 30)), _dominant(np.abs(_cell_means(still)) > STILL_CELL_LEVELS))
        found.append((window[0].time, *(None if b is None or _light_change(median, background, b) else b
                                        for b in objects)))
    for test in (1, 2):
        for fa, fb in itertools.pairwise(found):
            a, b = fa[test], fb[test]
            if a is not None and b is not None and _linked(a, b, fb[0] - fa[0]) and _apart(a, b):
                return 1.0
    return 0.0


def mover_score(frames: ClipFrames) -> float:
    """0..1: how strongly the clip shows a compact, persistent mover."""
    scores: list[float] = []
    for window in frames.windows:
        if len(window) < 3:
            continue
        imgs = [f.image for f in window]
        imgs = imgs[:1] + [_levelled(im, imgs[0]) for im in imgs[1:]]
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
    keys = frames.keyframes
    key_score = 0.0
    median: np.ndarray | None = None  # the keyframes' background
    if len(keys) >= 3:
        median = np.median(np.stack([k.image for k in keys]), axis=0)
        bg = median.astype(np.uint8)
        # each keyframe's dominant compact object against the clip's background, and how solid it is
        found: list[Blob | None] = []
        solid: list[bool] = []
        for k in keys:
            img = _levelled(k.image, bg)
            fill = _cell_means(_mask(bg, img, 30))
            blob = _dominant(fill >= CELL_FILL)
            if blob is not None and _light_change(img, bg, blob):
                blob = None
            found.append(blob)
            solid.append(blob is not None and _solid(fill, blob))
        # a small object counts where it lies on one path with the object of the next or previous keyframe (a
        # person's steps); a burst of rain in two keyframes does not; a big object counts on its own. ``longest``:
        # the most keyframes in a row whose objects lie on one path
        big = {i for i, b in enumerate(found) if b is not None and b[0] >= BIG_CELLS}
        linked = set(big)
        run = longest = 1
        for i in range(len(keys) - 1):
            a, b = found[i], found[i + 1]
            if a is not None and b is not None and _linked(a, b, keys[i + 1].time - keys[i].time):
                linked |= {i, i + 1}
                run += 1
                longest = max(longest, run)
            else:
                run = 1
        for i in range(len(keys) - 2):  # a walker only partly seen, on a steady course through three keyframes
            three = [b for b in found[i : i + 3] if b is not None]
            if len(three) == 3 and _on_course(three, [k.time for k in keys[i : i + 3]]):
                linked |= {i, i + 1, i + 2}
                longest = max(longest, 3)
        scores.append(min(1.0, len(linked) / max(2, len(keys) // 3)))
        # a compact object in two or more keyframes is a mover on its own where one is big (someone crossing in 4 s
        # shows up in two keyframes and may miss every short window) or small ones lie on one path in three
        # keyframes in a row (a walker that small takes longer than 4 s to cross; the brightest streaks near an IR
        # lamp are often a few cells apart in two keyframes); in one keyframe only it is where it is big and solid
        # (a car that passed between two keyframes), not a lone near rain streak or a burst of rain (the streaks fill
        # their cells by half or so) nor a flash (light, ``_light_change``)
        if len(linked) >= 2 and (big or longest >= 3):
            key_score = scores[-1]
        elif len(linked) == 1 and solid[next(iter(linked))]:
            key_score = LONE_SCORE
    if not scores:
        return 0.0
    score = max(float(np.mean(sorted(scores)[-2:])), key_score)
    if score < 1.0 and median is not None:  # a person walking in heavy rain, seen in the windows without the rain
        score = max(score, through_rain(frames, median))
    return float(np.clip(score, 0.0, 1.0))
