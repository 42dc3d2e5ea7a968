"""Physically motivated rain/snow features of one window of consecutive grey frames (numpy only).

Cues (see README): a falling drop brightens a pixel for one frame only (Garg & Nayar), streaks share a
direction and are elongated, rain is spread over the whole image and is temporally uncorrelated, snow flakes are
blobs that stay bright for two or three frames while drifting slowly.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

FEATURE_VERSION = "3"
#: frames per window the features expect (at least 5; the detector asks for this many)
WINDOW_LENGTH = 6
#: analysis width in pixels (1080p/3): thin streaks survive, cost stays in budget
WIDTH = 640

FEATURE_NAMES: tuple[str, ...] = (
    "log_spike_4",
    "log_spike_8",
    "log_spike_16",
    "log_spike_3sigma",
    "log_spike_6sigma",
    "log_dark_spike_8",
    "log_persist_16",
    "log_spike_vs_persist",
    "log_spike2_8",
    "log_spike2_vs_spike",
    "log_noise",
    "brightness",
    "contrast",
    "cells_hit",
    "cells_entropy",
    "cells_top10_share",
    "cells_time_corr",
    "pixel_repeat_adjacent",
    "pixel_repeat_skip",
    "cooc_vertical",
    "cooc_horizontal",
    "cooc_diag",
    "cooc_antidiag",
    "elongation",
    "cooc_far_best",
    "tensor_coherence",
    "tensor_verticality",
    "spike_amp_mean",
    "frame_flicker",
    "global_motion",
    "cells_median_density",
    "cells_q25_density",
    "static_cell_spike_share",
    "frame_count_cv",
    "orientation_agreement",
    "shake_px",
    "log_flat_spike_8",
    "flat_spike_share",
    # matched filter: the signed one-frame brightening summed along 8-pixel lines (see _line_filter_features)
    "mf_log_best_3.5",
    "mf_log_best_5",
    "mf_log_best_2.5",
    "mf_log_horizontal_3.5",
    "mf_cells_median_3.5",
    "mf_cells_q25_3.5",
    "mf_cells_median_horizontal_3.5",
    "mf_cells_median_2.5",
)

_EPS = 1e-5
_GRID = (6, 8)  # rows, cols of the spatial-spread grid
_MAX_SHIFT = 5  # pixels of camera shake undone at analysis width
_MAX_PAN = 64  # pixels a panning camera's frames may move against the middle one (10 % of the width)
_PAN_GAIN = 0.8  # a wider shift counts as a pan when it leaves at most this share of the frames' difference
_BAR_LEVEL = 24.0  # grey levels a black bar may show (black is 0; coding noise and a dark grey bar stay below)
_BAR_RANGE = 2.0  # grey levels a bar's pixel may vary by over a window (compression)
_MIN_BAR = 4  # rows or columns: a thinner dark band is not taken for a bar
_BAR_KEEP = 0.5  # the bars must leave at least this share of the picture's height and width
_OVERLAY_TOLERANCE = 8  # grey levels a burnt-in text pixel may vary by over a window (compression)
_OVERLAY_WHITE, _OVERLAY_DARK = 180, 60  # grey levels of an overlay's text and outline after compression
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # RGB input: the luma the analysis uses


def _logd(mask_sum: float, total: float) -> float:
    return float(np.log10(mask_sum / total + _EPS))


def _cooc(mask: np.ndarray, dy: int, dx: int) -> float:
    """Share of set pixels whose neighbour at (dy, dx) is also set (streak direction / blob size)."""
    h, w = mask.shape[-2:]
    a = mask[..., max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
    b = mask[..., max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)]
    n = np.count_nonzero(a)
    return float(np.count_nonzero(a & b) / n) if n else 0.0


def _median(a: np.ndarray) -> np.ndarray:
    """``np.median(a, axis=-1)``, bit for bit, at a tenth of the cost.

    numpy's median partitions around both middle elements at once, and a partition with two pivots skips
    numpy's fast selection; one pivot plus the maximum of the lower part gives the same two elements.
    """
    n = a.shape[-1]
    k = n // 2
    part = np.partition(a, k, axis=-1)
    hi = part[..., k]
    if n % 2:
        return hi
    return (part[..., :k].max(axis=-1) + hi) / 2  # the mean of the two middle elements, in a's dtype


def _cancel_offset_gain(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Give every frame of ``x`` (in place) mean 0 and the window's mean spread; returns the frames' means and
    spreads (standard deviations) before."""
    means = x.mean(axis=(1, 2))
    x -= means[:, None, None]
    # x.std(axis=(1, 2)) step by step, reusing the centred frames (numpy's own sequence of operations)
    var = np.add.reduce(np.square(x), axis=(1, 2))
    np.true_divide(var, np.intp(x.shape[1] * x.shape[2]), out=var, casting="unsafe")
    stds = np.sqrt(var) + 1e-3
    x *= (stds.mean() / stds)[:, None, None]
    return means, stds


def _shift_errors(p: np.ndarray, ref: np.ndarray, m: int) -> np.ndarray:
    """Per profile (row of ``p``) and shift ``d`` (-m..m) the mean absolute difference of ``p[i + d]`` and
    ``ref[i]``."""
    n = len(ref)
    shifted = np.lib.stride_tricks.sliding_window_view(p, n - 2 * m, axis=-1)  # (frames, 2m + 1, n - 2m)
    return np.abs(shifted - ref[m : n - m]).mean(axis=-1)


def _best_shifts(p: np.ndarray, ref: np.ndarray, m: int) -> list[int]:
    """Per profile (row of ``p``) the integer shift ``d`` (|d| <= m) with ``p[i + d] ~ ref[i]``: how far the
    frame's content moved (the first of equally good shifts)."""
    return (_shift_errors(p, ref, m).argmin(axis=-1) - m).tolist()


def _fine_shifts(errs: np.ndarray) -> np.ndarray:
    """The shifts of ``_shift_errors``' ``errs`` to a fraction of a pixel: the minimum of the parabola through the
    best shift's error and its neighbours' (a pan moves the picture by fractions of a pixel)."""
    m = errs.shape[-1] // 2
    k = errs.argmin(axis=-1)
    inner = np.clip(k, 1, 2 * m - 1)
    rows = np.arange(len(k))
    e0, e1, e2 = errs[rows, inner - 1], errs[rows, inner], errs[rows, inner + 1]
    curve = e0 - 2 * e1 + e2
    frac = np.where((k == inner) & (curve > 0), 0.5 * (e0 - e2) / np.maximum(curve, 1e-9), 0.0)
    return k - m + np.clip(frac, -0.5, 0.5)


def _moved(f: np.ndarray, margin: tuple[int, int], dy: float, dx: float) -> np.ndarray:
    """``f`` inside ``margin``, moved by ``dy`` / ``dx`` pixels (bilinear between whole pixels)."""
    (h, w), (my, mx) = f.shape, margin
    iy, ix = int(np.floor(dy)), int(np.floor(dx))
    fy, fx = dy - iy, dx - ix
    out = np.zeros((h - 2 * my, w - 2 * mx), np.float32)
    for oy, wy in ((0, 1 - fy), (1, fy)):
        for ox, wx in ((0, 1 - fx), (1, fx)):
            if wy * wx:
                y0, x0 = my + iy + oy, mx + ix + ox
                out += np.float32(wy * wx) * f[y0 : y0 + h - 2 * my, x0 : x0 + w - 2 * mx]
    return out


def grow(a: np.ndarray, diagonal: bool = True, steps: int = 1) -> np.ndarray:
    """The boolean ``a`` grown by ``steps`` pixels in all eight directions (``diagonal=False``: the four beside it,
    step by step); nothing grows in from outside the array."""
    out = a
    for _ in range(steps):
        a = out
        g = a.copy()
        g[1:] |= a[:-1]
        g[:-1] |= a[1:]
        out = g.copy() if diagonal else g
        src = g if diagonal else a
        out[:, 1:] |= src[:, :-1]
        out[:, :-1] |= src[:, 1:]
    return out


def _bars(x: np.ndarray) -> tuple[int, int, int, int]:
    """Rows at the top and bottom and columns at the left and right of ``x`` (frames x H x W, grey levels) that are
    black bars: no brighter than ``_BAR_LEVEL``, unchanged (within ``_BAR_RANGE``) in every frame, all along, and of
    one level all over. All four are 0 unless the bars leave at least ``_BAR_KEEP`` of the height and of the width; a
    band thinner than ``_MIN_BAR`` is not taken for one."""
    t, h, w = x.shape
    first = x[0]
    if min(first[0].max(), first[-1].max(), first[:, 0].max(), first[:, -1].max()) > _BAR_LEVEL:
        return 0, 0, 0, 0  # no edge of the picture is dark all along (most windows): no bar
    hi, lo = x.max(axis=0), x.min(axis=0)
    dead = (hi <= _BAR_LEVEL) & (hi - lo <= _BAR_RANGE)

    def run(flags: np.ndarray, from_end: bool, axis: int) -> int:
        seq = flags[::-1] if from_end else flags
        n = int(np.argmin(seq)) if not seq.all() else seq.size
        if n < _MIN_BAR:
            return 0
        band = slice(flags.size - n, None) if from_end else slice(0, n)
        brightest, darkest = (hi[band], lo[band]) if axis == 0 else (hi[:, band], lo[:, band])
        # one level all over, as a drawn bar is (a dark sky that a starved encoder froze still has texture)
        return n if float(brightest.max() - darkest.min()) <= 2 * _BAR_RANGE else 0

    rows, cols = dead.all(axis=1), dead.all(axis=0)
    out = run(rows, False, 0), run(rows, True, 0), run(cols, False, 1), run(cols, True, 1)
    if h - out[0] - out[1] < _BAR_KEEP * h or w - out[2] - out[3] < _BAR_KEEP * w:
        return 0, 0, 0, 0
    return out


def _overlay(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Pixels of a burnt-in overlay (the camera's date/time line and name): white text with a dark outline that
    is the same in every frame. Found as still white pixels next to still dark ones, grown by one pixel
    (compression blurs the outline)."""
    raw = np.stack([np.asarray(f) for f in frames])
    if raw.ndim == 4:  # RGB input: its luma, as the analysis sees it
        raw = np.clip(raw @ _LUMA, 0, 255).astype(np.uint8)
    static = (raw.max(axis=0) - raw.min(axis=0)) <= _OVERLAY_TOLERANCE
    mid = raw[raw.shape[0] // 2]
    white = static & (mid >= _OVERLAY_WHITE)
    dark = static & (mid <= _OVERLAY_DARK)
    if not (white.any() and dark.any()):
        return np.zeros(mid.shape, np.bool_)
    text = (white & grow(dark)) | (dark & grow(white))
    return grow(text) if text.any() else text


def _misfit(x: np.ndarray, dys: list[int], dxs: list[int], frames: list[int], margin: tuple[int, int]) -> float:
    """Mean absolute difference of ``frames`` shifted by ``dys`` / ``dxs`` from the middle frame, inside ``margin``
    (every 4th pixel)."""
    t, h, w = x.shape
    my, mx = margin
    mid = x[t // 2, my : h - my : 4, mx : w - mx : 4]
    return float(np.mean([np.abs(x[i, my + dys[i] : h - my + dys[i] : 4, mx + dxs[i] : w - mx + dxs[i] : 4] - mid)
                          .mean() for i in frames]))


def _stabilise(x: np.ndarray, raw: Sequence[np.ndarray]) -> tuple[np.ndarray, float]:
    """Undo whole-pixel camera shake (wind, a pole swaying) and pans against the middle frame via row/column
    profiles.

    Shake is searched within ``_MAX_SHIFT`` pixels. A frame found at that limit may have moved further, as a
    panning or tilting camera's do (a PTZ camera turning to a preset, a hand-held camera): that axis is searched
    again up to ``_MAX_PAN``, and the wider shifts are kept when the picture agrees (the frames whose shift changed
    differ from the middle frame by at most ``_PAN_GAIN`` of what they did), so a large mover that pulled the
    profiles does not move the still scene. Such frames are moved to a fraction of a pixel (bilinear), cropped to
    what all of them see and their offset and gain measured again there; the shake reported is then how far they
    stray from a steady turn, the range the model was trained on.

    A burnt-in overlay in the window's ``raw`` frames (see ``_overlay``) did not shake, so the stabilised frames
    move it instead; wherever a frame shows a text pixel after its shift, every frame is held at the middle
    frame's value (no change there, so no spike where the text went).
    """
    m = _MAX_SHIFT
    t, h, w = x.shape
    rows, cols = x.mean(axis=2), x.mean(axis=1)
    dys, dxs = _best_shifts(rows, rows[t // 2], m), _best_shifts(cols, cols[t // 2], m)
    # an axis whose search hit its limit (moved further than shake, or a mover pulled the profile) is searched wider
    reach = (min(_MAX_PAN, h // 4) if m in np.abs(dys) else m, min(_MAX_PAN, w // 4) if m in np.abs(dxs) else m)
    pan = False
    if reach != (m, m):
        errs = _shift_errors(rows, rows[t // 2], reach[0]), _shift_errors(cols, cols[t // 2], reach[1])
        wide = (errs[0].argmin(axis=-1) - reach[0]).tolist(), (errs[1].argmin(axis=-1) - reach[1]).tolist()
        changed = [i for i in range(t) if (wide[0][i], wide[1][i]) != (dys[i], dxs[i])]
        both = max(map(abs, wide[0] + dys)), max(map(abs, wide[1] + dxs))  # the part every frame sees either way
        pan = bool(changed) and _misfit(x, *wide, changed, both) < _PAN_GAIN * _misfit(x, dys, dxs, changed, both)
    if pan:  # the whole picture agrees: a pan, undone to a fraction of a pixel
        fy, fx = _fine_shifts(errs[0]), _fine_shifts(errs[1])
        my, mx = int(np.ceil(np.abs(fy).max())) + 1, int(np.ceil(np.abs(fx).max())) + 1
        my, mx = max(m, my), max(m, mx)
        out = np.stack([_moved(f, (my, mx), dy, dx) for f, dy, dx in zip(x, fy, fx, strict=True)])
        _cancel_offset_gain(out)  # each frame's were measured on a different view: again on the common one
        tt = np.arange(t) - t // 2  # the shake on top of the pan: how far the frames stray from a steady turn
        stray = np.abs(fy - np.polyval(np.polyfit(tt, fy, 1), tt)) + np.abs(fx - np.polyval(np.polyfit(tt, fx, 1), tt))
        shifts = list(zip(np.round(fy).astype(int).tolist(), np.round(fx).astype(int).tolist(), strict=True))
        shake = float(stray.mean())
    else:
        shifts = list(zip(dys, dxs, strict=True))
        if not any(dy or dx for dy, dx in shifts):
            return x, 0.0
        my, mx = m, m
        out = np.stack([f[m + dy : h - m + dy, m + dx : w - m + dx] for f, (dy, dx) in zip(x, shifts, strict=True)])
        shake = float(np.mean([abs(dy) + abs(dx) for dy, dx in shifts]))
    text = _overlay(raw)
    if text.any():
        moved = np.zeros(out.shape[1:], np.bool_)
        for dy, dx in shifts:
            moved |= text[my + dy : h - my + dy, mx + dx : w - mx + dx]
        out[:, moved] = out[t // 2][moved]
    return out, shake


#: 8-pixel line segments built by three shift-and-add steps (offsets dy, dx): vertical, about 16 and 30 degrees
#: either side of vertical (rain falls within these), and horizontal as the control that rain hardly excites
_LINES: dict[str, tuple[tuple[int, int], ...]] = {
    "v": ((1, 0), (2, 0), (4, 0)),
    "r16": ((1, 0), (2, 1), (4, 1)),
    "l16": ((1, 0), (2, -1), (4, -1)),
    "r30": ((1, 1), (2, 1), (4, 2)),
    "l30": ((1, -1), (2, -1), (4, -2)),
    "h": ((0, 1), (0, 2), (0, 4)),
}


_scratch = threading.local()


def _buffer(key: str, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
    """A per-thread scratch array: the line filter reuses its buffers (fresh multi-MB arrays cost page faults)."""
    bufs: dict[str, np.ndarray] = _scratch.__dict__.setdefault("bufs", {})
    n = int(np.prod(shape))
    b = bufs.get(key)
    if b is None or b.size < n or b.dtype != dtype:
        b = bufs[key] = np.empty(n, dtype)
    return b[:n].reshape(shape)


def _shift_sum(a: np.ndarray, off: int, key: str) -> np.ndarray:
    """``a[i] + a[i + off]`` on a flat buffer, into scratch ``key`` (the last ``off`` entries are set to 0).

    On frames of width ``w`` flattened row by row, ``off = dy * w + dx`` adds the pixel ``(dy, dx)`` away: one
    contiguous pass, several times faster than adding two cropped 2-D views. Sums that run over a row's end
    wrap into the next row; ``_line_map`` crops them away.
    """
    out = _buffer(key, a.shape)
    n = a.size - off
    np.add(a[:n], a[off:], out=out[:n])
    out[n:] = 0.0
    return out


def _line_map(flat: np.ndarray, shape: tuple[int, int, int], steps: tuple[tuple[int, int], ...]) -> np.ndarray:
    """The part of a line-filtered flat buffer whose sums stay inside the frame: ``(t, h - dy, w - |dx|)``."""
    t, h, w = shape
    dy = sum(s[0] for s in steps)
    left = sum(-s[1] for s in steps if s[1] < 0)
    right = sum(s[1] for s in steps if s[1] > 0)
    return flat.reshape(shape)[:, : h - dy, left : w - right]


def _grid_counts(mask: np.ndarray) -> np.ndarray:
    """Set pixels per frame and cell of the spread grid, ``(frames, rows, cols)`` (the image's last rows and
    columns that do not fill a cell are left out). Counted as bytes, rows of a cell first: exact integers, an
    order of magnitude faster than a boolean sum over two axes."""
    gy, gx = _GRID
    t, h, w = mask.shape
    hh, ww = h // gy * gy, w // gx * gx
    cells = mask[:, :hh, :ww].view(np.uint8).reshape(t, gy, hh // gy, gx, ww // gx)
    return np.add.reduce(cells, axis=2, dtype=np.uint16).sum(axis=3, dtype=np.int32)


def _cell_stats(mask: np.ndarray) -> tuple[float, float]:
    """log10 density of the median and the lower-quartile cell of the spread grid (rain covers every cell)."""
    gy, gx = _GRID
    t, h, w = mask.shape
    cells = _grid_counts(mask).sum(axis=0)
    dens = np.sort(cells.ravel()) / float(t * (h // gy) * (w // gx))
    return float(np.log10(dens[dens.size // 2] + _EPS)), float(np.log10(dens[dens.size // 4] + _EPS))


def _line_filter_features(spike: np.ndarray) -> list[float]:
    """Matched filter for faint streaks in sensor noise.

    A streak brightens several pixels along one direction, sensor noise is independent from pixel to pixel, so
    summing the signed one-frame brightening along an 8-pixel line raises a streak's signal-to-noise ratio by
    about sqrt(8). The threshold is relative to the noise of the filtered map itself (median and MAD of each
    filtered frame), so correlated or compressed noise stays relative too. Of the near-vertical orientations the
    one with the most exceedances counts (the wind's angle); the horizontal line is the control: noise and
    compression blocks excite it as much, rain hardly does. All one-frame brightening maps of the window are used.
    """
    s = np.ascontiguousarray(spike, dtype=np.float32)

    def noise(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sub = a[:, ::4, ::4].reshape(a.shape[0], -1)
        med = _median(sub)
        mad = _median(np.abs(sub - med[:, None])) * 1.4826 + 1e-3
        return med[:, None, None], mad[:, None, None]

    def over(a: np.ndarray, stats: tuple[np.ndarray, np.ndarray], k: float, key: str) -> np.ndarray:
        return np.greater(a, stats[0] + k * stats[1], out=_buffer(key, a.shape, np.bool_))

    flat = s.ravel()
    l1_step: tuple[int, int] | None = None
    l1 = flat
    best_count, best_key = -1, "mf_b"
    maps: dict[str, tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]] = {}
    for name, steps in _LINES.items():
        offs = [dy * s.shape[2] + dx for dy, dx in steps]
        if steps[0] != l1_step:  # the first step is shared by the vertical and the 16-degree lines
            l1, l1_step = _shift_sum(flat, offs[0], key="mf_l1"), steps[0]
        key = "mf_h" if name == "h" else ("mf_a" if best_key == "mf_b" else "mf_b")
        a = _line_map(_shift_sum(_shift_sum(l1, offs[1], key="mf_l2"), offs[2], key=key), s.shape, steps)
        stats = noise(a)
        if name == "h":
            maps[name] = (a, stats)
            continue
        c = np.count_nonzero(over(a, stats, 3.5, "mf_mask"))
        if c > best_count:  # keep the first of equals, as max() does
            best_count, best_key = c, key
            maps["best"] = (a, stats)
    a, st = maps["best"]
    n = float(s.shape[0] * (s.shape[1] - 7) * s.shape[2])  # the size of the vertical map, for every line
    n5 = np.count_nonzero(over(a, st, 5.0, "mf_mask"))
    med25, _ = _cell_stats(m25 := over(a, st, 2.5, "mf_mask"))
    n25 = np.count_nonzero(m25)
    med35, q25_35 = _cell_stats(over(a, st, 3.5, "mf_mask"))
    ah, sth = maps["h"]
    mh = over(ah, sth, 3.5, "mf_mask")
    med_h, _ = _cell_stats(mh)
    return [
        _logd(best_count, n),
        _logd(n5, n),
        _logd(n25, n),
        _logd(np.count_nonzero(mh), n),
        med35,
        q25_35,
        med_h,
        med25,
    ]


def window_features(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Feature vector (float32, ``len(FEATURE_NAMES)``) of one window of >= 5 grey uint8 frames."""
    return window_analysis(frames)[0]


def window_analysis(frames: Sequence[np.ndarray], maps: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """The feature vector of one window of >= 5 grey uint8 frames and, with ``maps``, its brightening maps.

    The maps (float16, ``MAP_FRAMES`` x H-10 x W-10) are the one-frame brightening of the window's middle frames
    (brighter than both neighbours, after the offset/gain and shake correction of the features) in units of the
    window's noise, clipped to -8..16, without the 5-pixel margin the shake correction may crop: the input of the
    spike-map CNN (``detector.RainDetector``).
    """
    if len(frames) < 5:
        raise ValueError(f"need at least 5 consecutive frames, got {len(frames)}")
    first = np.asarray(frames[0])
    x = np.empty((min(len(frames), WINDOW_LENGTH), *first.shape), np.float32)
    for i, f in enumerate(frames[:WINDOW_LENGTH]):
        x[i] = f
    if x.ndim == 4:  # tolerate RGB input: luma only
        x = x @ _LUMA
    # black bars burnt into the picture (an export's or an edit's letterbox or pillarbox) hold no evidence and would
    # dilute the spread over the picture: the analysis sees the picture between them
    bars = _bars(x)
    if any(bars):
        top, bottom, left, right = bars
        x = x[:, top : x.shape[1] - bottom, left : x.shape[2] - right].copy()
        frames = [np.asarray(f)[top : first.shape[0] - bottom, left : first.shape[1] - right] for f in frames]
    # automatic gain control and lightning change every pixel at once: cancel per-frame offset and gain
    means, stds = _cancel_offset_gain(x)
    flicker = float(np.abs(np.diff(means)).max() / (means.mean() + 1.0))
    # a shaking camera moves every edge for one frame, which looks like streaks everywhere
    uncropped = x.shape[1:]
    x, shake = _stabilise(x, frames[: len(x)])
    t, h, w = x.shape
    total_px = float(h * w)

    d = np.diff(x, axis=0)  # x[t+1] - x[t]
    absd = np.abs(d)
    sigma = float(_median(absd[:, ::4, ::4].ravel())) * 1.4826 / np.sqrt(2.0) + 0.25
    up, down = d[:-1], -d[1:]  # x[t]-x[t-1], x[t]-x[t+1] for t = 1..T-2
    spike = np.minimum(up, down)  # > 0: brighter than both neighbours (one-frame brightening)
    n_sp = spike.shape[0] * total_px
    dark_neg = np.maximum(up, down)  # -(darker than both neighbours): min(-a, -b) = -max(a, b)
    persist = np.abs(x[2:] - x[:-2])
    # two-frame brightening: bright at t and t+1, dark at t-1 and t+2 (slow flakes)
    lo2 = np.minimum(x[1:-2], x[2:-1])
    hi2 = np.maximum(x[:-3], x[3:])
    spike2 = lo2 - hi2

    m4 = spike > 4.0
    m8 = spike > 8.0
    m16 = spike > 16.0
    cnt = np.count_nonzero
    n4, n8, n16 = float(cnt(m4)), float(cnt(m8)), float(cnt(m16))
    n3s = float(cnt(spike > 3.0 * sigma))
    n6s = float(cnt(spike > 6.0 * sigma))
    nd8 = float(cnt(dark_neg < -8.0))
    p16 = persist > 16.0
    np16 = float(cnt(p16))
    n2 = float(cnt(spike2 > 8.0))

    # spatial spread over a coarse grid (rain covers the image, a mover or an insect does not)
    gy, gx = _GRID
    hh, ww = h // gy * gy, w // gx * gx
    cells = _grid_counts(m8).astype(np.float64)
    cell_tot = cells.sum(axis=0).ravel()
    cell_area = (hh // gy) * (ww // gx) * m8.shape[0]
    cells_hit = float((cell_tot / cell_area > 1e-3).mean())
    if cell_tot.sum() > 0:
        p = cell_tot / cell_tot.sum()
        nz = p[p > 0]
        entropy = float(-(nz * np.log(nz)).sum() / np.log(p.size))
        top = float(np.sort(p)[-max(1, p.size // 10) :].sum())
    else:
        entropy, top = 0.0, 1.0
    # robust spread: the typical cell, not the busiest, must show spikes (a mover or a bush is local)
    dens = np.sort(cell_tot / cell_area)
    cell_med = float(np.log10(dens[dens.size // 2] + _EPS))
    cell_q25 = float(np.log10(dens[dens.size // 4] + _EPS))
    # spikes where nothing changes persistently: rain falls on still background, a mover's edges do not count
    pcells = _grid_counts(p16).sum(axis=0)
    still = (pcells.ravel() / ((hh // gy) * (ww // gx) * persist.shape[0])) < 0.01
    static_share = float(cell_tot[still].sum() / cell_tot.sum()) if cell_tot.sum() > 0 else 0.0
    # rain keeps a steady count frame to frame; insects, flicker and headlights come in bursts
    per_frame = np.array([np.count_nonzero(m) for m in m4], dtype=np.float64)
    count_cv = float(per_frame.std() / (per_frame.mean() + 1.0))
    c0, c1 = cells[0].ravel(), cells[-1].ravel()
    time_corr = float(np.corrcoef(c0, c1)[0, 1]) if c0.std() > 0 and c1.std() > 0 else 0.0

    # the same pixels spiking again points at flickering texture or compression noise, not at rain
    def overlap(a: np.ndarray, b: np.ndarray) -> float:
        na, nb = np.count_nonzero(a), np.count_nonzero(b)
        return float(np.count_nonzero(a & b) / np.sqrt(na * nb)) if na and nb else 0.0

    rep_adj = overlap(m4[0], m4[1])
    rep_skip = overlap(m4[0], m4[2]) if m4.shape[0] > 2 else rep_adj

    # orientation and elongation of the spike blobs
    cv = _cooc(m4, 2, 0)
    ch = _cooc(m4, 0, 2)
    cd = _cooc(m4, 2, 2)
    ca = _cooc(m4, 2, -2)
    dirs = {(4, 0): cv, (0, 4): ch, (4, 4): cd, (4, -4): ca}
    best = max(dirs, key=lambda k: dirs[k])
    far = _cooc(m4, *best)
    vals = np.array([cv, ch, cd, ca])
    elong = float((vals.max() + 0.01) / (vals.min() + 0.01))

    # structure tensor of the mid spike map: coherent orientation of streaks
    s_mid = spike[spike.shape[0] // 2].clip(0, None)
    gyy, gxx = np.gradient(s_mid)
    jxx, jyy, jxy = float((gxx * gxx).sum()), float((gyy * gyy).sum()), float((gxx * gyy).sum())
    tr = jxx + jyy + 1e-6
    coherence = float(np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / tr)
    verticality = float((jxx - jyy) / tr)  # vertical streaks: intensity varies across x
    # rain falls in one direction everywhere: do the quadrants' dominant orientations agree?
    qh, qw = s_mid.shape[0] // 2, s_mid.shape[1] // 2
    vec, mag = 0j, 0.0
    for qy in (0, 1):
        for qx in (0, 1):
            a = gxx[qy * qh : (qy + 1) * qh, qx * qw : (qx + 1) * qw]
            b = gyy[qy * qh : (qy + 1) * qh, qx * qw : (qx + 1) * qw]
            z = complex(float((a * a).sum() - (b * b).sum()), 2.0 * float((a * b).sum()))
            vec += z
            mag += abs(z)
    agreement = float(abs(vec) / (mag + 1e-6))

    # spikes on flat background (middle frame): sub-pixel shake and moving edges only spike on gradients
    k = spike.shape[0] // 2
    bg = np.minimum(x[k], x[k + 2])  # the background around frame k+1 without a one-frame streak
    grad = np.zeros_like(bg)
    grad[:, 1:] = np.abs(np.diff(bg, axis=1))
    grad[1:, :] = np.maximum(grad[1:, :], np.abs(np.diff(bg, axis=0)))
    flat = grad < 4.0 + 2.0 * sigma
    mk = m8[k]
    n_mk = np.count_nonzero(mk)
    n_flat = np.count_nonzero(mk & flat)
    flat_density = _logd(n_flat, max(float(np.count_nonzero(flat)), 1.0))
    flat_share = float(n_flat / n_mk) if n_mk else 0.0
    # spike[m4].mean(): compress selects the same values in the same order, twice as fast as a boolean index
    amp = float(np.compress(m4.ravel(), spike.ravel()).mean() / 32.0) if n4 else 0.0
    # global motion (camera shake, pan) from the mean absolute frame difference
    gmotion = float(np.log10(absd.mean() + 0.1))
    feats = [
        _logd(n4, n_sp),
        _logd(n8, n_sp),
        _logd(n16, n_sp),
        _logd(n3s, n_sp),
        _logd(n6s, n_sp),
        _logd(nd8, n_sp),
        _logd(np16, persist.shape[0] * total_px),
        float(np.log10((n8 + 1.0) / (np16 * spike.shape[0] / persist.shape[0] + 1.0))),
        _logd(n2, spike2.shape[0] * total_px),
        float(np.log10((n2 + 1.0) / (n8 + 1.0))),
        float(np.log10(sigma)),
        float(means.mean() / 255.0),
        float(stds.mean() / 128.0),
        cells_hit,
        entropy,
        top,
        time_corr,
        rep_adj,
        rep_skip,
        cv,
        ch,
        cd,
        ca,
        float(np.log10(elong)),
        far,
        coherence,
        verticality,
        amp,
        float(np.log10(flicker + 1e-3)),
        gmotion,
        cell_med,
        cell_q25,
        static_share,
        count_cv,
        agreement,
        shake,
        flat_density,
        flat_share,
        *_line_filter_features(spike),
    ]
    window_maps = None
    if maps:
        window_maps = _maps(spike, absd, uncropped)
        if any(bars):  # where the bars were, no brightening: every window's maps keep one shape
            window_maps = np.pad(window_maps, ((0, 0), (bars[0], bars[1]), (bars[2], bars[3])))
    return np.asarray(feats, dtype=np.float32), window_maps


#: brightening maps per window (the 4 middle frames of a 6-frame window)
MAP_FRAMES = WINDOW_LENGTH - 2


def _maps(spike: np.ndarray, absd: np.ndarray, full: tuple[int, ...]) -> np.ndarray:
    """``spike`` without the shake correction's margin, in units of the noise of that area (see window_analysis);
    a pan's wider crop is padded back with zeros (no brightening), so every window's maps have one shape."""
    m = _MAX_SHIFT
    if spike.shape[1:] == full:  # the stabiliser crops the margin only when it shifts: crop the same for every window
        spike, absd = spike[:, m:-m, m:-m], absd[:, m:-m, m:-m]
    sigma = float(_median(absd[:, ::4, ::4].ravel())) * 1.4826 / np.sqrt(2.0) + 0.25
    out = np.clip(spike / sigma, -8.0, 16.0).astype(np.float16)
    py, px = (full[0] - 2 * m - out.shape[1]) // 2, (full[1] - 2 * m - out.shape[2]) // 2
    if py or px:
        out = np.pad(out, ((0, 0), (py, py), (px, px)))
    return out
