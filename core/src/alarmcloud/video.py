"""Probe and decode alarm clips with PyAV: one decoding pass per clip serves every detector's frame request.

Only the packets somebody asked for are decoded: keyframes (cheap, one per GOP) and short windows of consecutive
frames that start at a keyframe (camera streams: a keyframe every 1-4 s, no B-frames) or, where keyframes are far
apart, at their position, decoded from the keyframe before it. B-frames are served in display order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from itertools import groupby, pairwise
from pathlib import Path

import av
import numpy as np

# probing, orientation and thumbnails live in the numpy-free ``clipprobe`` (the probe child imports it alone); they
# are this module's names too
from alarmcloud.clipprobe import (
    DISPLAY_ROTATION,
    UPRIGHT,
    Orientation,
    ProbeError,
    _probe,
    _shown,
    _target_size,
    first_orientation,
    keyframe_times,
    open_input,
    orientation,
    probe,
    probe_and_first_frame,
    thumbnail_jpeg,
)
from alarmcloud.contracts import ClipFrames, ClipProbe, Frame, FrameRequest

__all__ = [
    "DISPLAY_ROTATION", "MAX_KEYFRAME_WAIT", "UPRIGHT", "ClipProbe", "Orientation", "ProbeError", "as_shown",
    "copy_threshold", "decode", "first_orientation", "keyframe_times", "open_input", "orientation", "picture_starts",
    "probe", "probe_and_first_frame", "thumbnail_jpeg", "window_plan",
]

log = logging.getLogger(__name__)


#: a window starts at the first keyframe after its position when that keyframe comes within this many seconds (at
#: most a quarter of the clip); camera streams (a keyframe every 1-4 s) are served so, decoding no frame before it
MAX_KEYFRAME_WAIT = 4.0


def window_plan(positions: Sequence[float], duration: float, keys: Sequence[float]) -> list[tuple[float, float]]:
    """Per window position (fraction of the clip): the keyframe to decode from and the time its frames begin.

    A window begins at the first keyframe at or after its position, so nothing before it is decoded, when that
    keyframe comes within ``MAX_KEYFRAME_WAIT`` seconds (and a quarter of the clip). In a stream with keyframes
    far apart (exported or re-encoded footage: 10 s is common) or none left near the clip's end, the window begins
    at its position instead, decoded from the keyframe before it; otherwise such windows would all fall on the same
    late keyframe, or not exist.
    """
    wait = min(MAX_KEYFRAME_WAIT, 0.25 * duration)
    plan = []
    for pos in positions:
        t = pos * duration
        after = [k for k in keys if k >= t - 1e-6]
        if after and after[0] - t <= wait:
            plan.append((after[0], after[0]))
        else:
            before = [k for k in keys if k <= t + 1e-6]
            plan.append((before[-1] if before else (keys[0] if keys else 0.0), t))
    return plan


def decode(path: str | Path, requests: Sequence[FrameRequest], clip: ClipProbe | None = None) -> list[ClipFrames]:
    """Decode one clip once and return one ``ClipFrames`` per request (same order).

    When windows are asked for, the keyframe times are read first (one pass over the packets, no decoding) to
    place them (``window_plan``); without ``clip``, the probe's own pass over the packets serves for that.
    """
    keys = None
    if clip is None:
        clip, keys, _ = _probe(Path(path))
    if not requests:
        return []
    duration = max(clip.duration, 0.001)
    want_key = any(r.keyframes for r in requests)
    # windows: union of all requested positions, each as long as the longest request needs
    positions = sorted({_position(a) for r in requests for a in r.window_at})
    win_len = max((r.window_length for r in requests if r.window_at), default=0)
    if positions and keys is None:
        keys = keyframe_times(path)
    plan = window_plan(positions, duration, keys) if positions else []
    order = sorted(range(len(plan)), key=lambda i: plan[i][0])  # windows by the keyframe they decode from
    # windows some request wants as distinct pictures: checked for repeated frames once they are full
    distinct_len = max((r.window_length for r in requests if r.distinct and r.window_at), default=0)
    distinct_at = {positions.index(_position(a)) for r in requests if r.distinct for a in r.window_at}
    # per such window, once checked: None (pictures as sent) or where its pictures begin
    repeats: dict[int, _Pictures | None] = {}

    key_frames: list[tuple[float, av.VideoFrame]] = []
    windows: dict[int, list[tuple[float, av.VideoFrame]]] = {i: [] for i in range(len(plan))}
    with open_input(path) as container:
        vs = container.streams.video[0]
        cc = vs.codec_context
        cc.thread_type = "SLICE"  # frame threading delays output and gains nothing on keyframes
        tb = vs.time_base or Fraction(1, 90000)
        active: dict[int, int] = {}  # window index -> frames it needs
        next_window = 0
        chain_ok = False  # every packet since the last keyframe was decoded, so a P-frame may be decoded

        def track_pictures(w: int, frames: list[tuple[float, av.VideoFrame]]) -> None:
            """Check a full window for repeated pictures; in one that repeats them, decode on (up to three times
            as many frames) until it holds enough distinct pictures."""
            state = repeats.get(w)
            if w not in repeats:
                if len(frames) < active[w]:
                    return
                lumas = [_luma(f) for _, f in frames]
                threshold = copy_threshold(lumas)
                repeats[w] = state = (
                    None if threshold is None else _Pictures(threshold, picture_starts(lumas, threshold), lumas[-1])
                )
                if state is not None:
                    active[w] = max(3 * distinct_len, win_len)
            elif state is not None:
                luma = _luma(frames[-1][1])
                if _changes([state.last, luma])[0] >= state.threshold:
                    state.starts.append(len(frames) - 1)
                state.last = luma
            if state is not None and len(state.starts) >= distinct_len:
                active[w] = max(len(frames), win_len)  # enough pictures: the window is full
            elif state is not None and len(frames) >= active[w]:
                repeats[w] = None  # not enough pictures in three times the frames (a step in brightness): as sent

        def take(frames: Sequence[tuple[float, av.VideoFrame]]) -> None:
            """Hand decoded frames (in presentation order) to the keyframe list and the open windows."""
            for ft, frame in frames:
                if frame.key_frame and want_key:
                    key_frames.append((ft, frame))
                for w in list(active):
                    if ft < plan[w][1] - 1e-6:  # decoded on the way from the keyframe before the window
                        continue
                    windows[w].append((ft, frame))
                    if w in distinct_at:
                        track_pictures(w, windows[w])
                    if len(windows[w]) >= active[w]:
                        del active[w]

        for packet in container.demux(vs):
            if packet.pts is None:
                continue
            t = float(packet.pts * tb)
            is_key = bool(packet.is_keyframe)
            if is_key:
                while next_window < len(order) and plan[order[next_window]][0] <= t + 1e-6:
                    active[order[next_window]] = win_len
                    next_window += 1
            decode_it = (is_key and want_key) or (bool(active) and (is_key or chain_ok))
            if not decode_it:
                chain_ok = False
                continue
            take([(float(f.pts * tb) if f.pts is not None else t, f) for f in cc.decode(packet)])
            chain_ok = True
        # camera streams have no reorder delay, but B-frames hold the last frames back: flush them
        take([(float(f.pts * tb), f) for f in cc.decode(None) if f.pts is not None])
    for w, state in repeats.items():
        if state is not None and len(state.starts) < distinct_len:
            repeats[w] = None  # the clip ended before enough pictures: the frames as sent, not a short window

    out: list[ClipFrames] = []
    cache: dict[tuple[int, int | None, int | None, str], np.ndarray] = {}
    decoded = [f for _, f in key_frames] + [f for frames in windows.values() for _, f in frames]
    first = decoded[0] if decoded else None
    if not clip.turned and first is not None and orientation(first)[0] and (clip.width, clip.height) == (
            first.width, first.height):  # a probe that read no picture (its own, a clip stored before 2026-11-25)
        clip = replace(clip, turned=True)
    clip = clip.as_shown()  # the frames are served as shown, and so is the size the detectors are told
    for req in requests:
        cf = ClipFrames(probe=clip)
        if req.keyframes and key_frames:
            for t, frame in _spread(key_frames, req.max_keyframes):
                cf.keyframes.append(Frame(t, _convert(frame, req, cache), keyframe=True))
        for pos in req.window_at:
            w = positions.index(_position(pos))
            frames = windows.get(w, [])
            state = repeats.get(w) if req.distinct else None
            if state is not None:
                frames = [frames[i] for i in state.starts]
            frames = frames[: req.window_length]
            cf.windows.append([Frame(t, _convert(f, req, cache), keyframe=f.key_frame) for t, f in frames])
        out.append(cf)
    return out


def _position(at: float) -> float:
    return round(min(max(at, 0.0), 1.0), 4)


#: a frame whose change (mean squared) from the previous one is below this share of the smallest change where a new
#: picture begins is a copy
REPEAT_RATIO = 0.5
#: a window whose only copy is one frame (25 -> 30 fps repeats one picture in six frames) is taken for repeats only
#: when that change is below this share of the smallest change into a new picture: ordinary footage often has one
#: quiet frame among busy ones.
#: Measured on the 6-frame windows of 60 synthetic rain, snow and clear camera clips (x264, 180 windows each): of
#: the clips sent with every picture twice / three times 99 % / 91 % of the windows are recognised, of the clips
#: converted to 25, 30 or 50 fps by repeating pictures 86 %, and 10 % of the windows of the clips sent normally are
#: taken for repeats (which serves one of their frames less and decodes on for the next one)
LONE_COPY_RATIO = 0.1


def _luma_plane(frame: av.VideoFrame) -> np.ndarray:
    """A view of the first plane (luma for YUV and grey frames), without the row padding; 8-bit frames only
    (``_plain_luma``)."""
    plane = frame.planes[0]
    return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: frame.height, : frame.width]


#: video-range luma (16 black .. 235 white) to a full-range grey level (0 .. 255) as FFmpeg's scaler maps it
_STRETCH: np.ndarray | None = None


def _stretch() -> np.ndarray:
    """``_STRETCH``, read from the scaler itself on first use (a grey picture at another size comes from it)."""
    global _STRETCH
    if _STRETCH is None:
        frame = av.VideoFrame(256, 2, "yuv420p")
        for i, plane in enumerate(frame.planes):
            np.frombuffer(plane, np.uint8)[:] = 128
            if i == 0:
                np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:2, :256] = np.arange(256, dtype=np.uint8)
        frame.color_range = 1  # video (MPEG) range
        _STRETCH = frame.reformat(format="gray").to_ndarray()[0].copy()
    return _STRETCH


def _grey(frame: av.VideoFrame) -> np.ndarray:
    """An 8-bit YUV frame's luma as the grey picture the scaler makes of it (0 black, 255 white; a new array):
    video-range luma (most cameras') stretched, full-range luma (``yuvj`` formats, or flagged JPEG range) as it is.
    Without the stretch, a grey picture served at the clip's own size would have 219/255 of the contrast of one
    served at any other size."""
    y = _luma_plane(frame)
    if frame.format.name.startswith("yuvj") or frame.color_range == 2:  # AVCOL_RANGE_JPEG
        return y.copy()
    return np.take(_stretch(), y)


def _plain_luma(frame: av.VideoFrame) -> bool:
    """Whether the frame's first plane is its luma in 8 bits (YUV, NV12/21 and grey frames; not 10-bit video such as
    an HDR phone's, whose samples take two bytes each)."""
    fmt = frame.format
    return fmt.name.startswith(("yuv", "nv", "gray")) and fmt.components[0].bits == 8


def _luma(frame: av.VideoFrame) -> np.ndarray:
    """The frame's brightness on a grid about 320 samples wide (no conversion for 8-bit YUV frames)."""
    step = max(1, frame.width // 320)
    y = _luma_plane(frame) if _plain_luma(frame) else frame.to_ndarray(format="gray")
    return y[::step, ::step].astype(np.int16)


def _runs(flags: Sequence[bool], value: bool) -> list[int]:
    """The lengths of the runs of ``value`` in ``flags``."""
    return [len(list(g)) for v, g in groupby(flags) if v == value]


def _changes(lumas: Sequence[np.ndarray]) -> np.ndarray:
    """The mean squared change from each frame to the next (a little more than 0, so a ratio always exists)."""
    return np.array([float(np.square(b - a, dtype=np.float32).mean()) for a, b in pairwise(lumas)]) + 1e-3


def copy_threshold(lumas: Sequence[np.ndarray]) -> float | None:
    """The change below which a frame is a copy of the one before, when the frames repeat their pictures; else None.

    The frames' changes must fall into two groups, every change between copies less than ``REPEAT_RATIO`` times
    every change into a new picture (an encoder refines a copy a little, so copies are rarely identical), and the
    copies must fall as a repeating stream has them: every picture sent 2 or 3 times, or a rate conversion that
    repeats some pictures (20 -> 25 fps: every fourth picture twice; copies one at a time, at least two of them or
    one all but identical, see ``LONE_COPY_RATIO``) or all of them 2 or 3 times (10 -> 25 fps: new pictures one at
    a time, copies at most two in a row). Of several such splits the one with the most copies counts (the copy
    after a keyframe is often exact, the later ones refined). A stream of distinct pictures changes by about the
    same amount from frame to frame (noise, rain, movers) and is left alone, and so is a flash in one frame (two
    large changes side by side, the small ones in a row).
    """
    if len(lumas) < 4:
        return None
    changes = _changes(lumas)
    ordered = np.sort(changes)
    # the most copies a valid split finds: the copy after a keyframe is often exact, and a split below it alone
    # would take the other copies (refined) for new pictures
    for split in range(len(ordered) - 1, 0, -1):
        low, high = float(ordered[split - 1]), float(ordered[split])
        if low >= REPEAT_RATIO * high:
            continue
        copy = [bool(c <= low) for c in changes]
        longest_copies, longest_new = max(_runs(copy, True)), max(_runs(copy, False))
        if (longest_copies == 1 and (sum(copy) >= 2 or low < LONE_COPY_RATIO * high)) or (
            longest_new == 1 and longest_copies <= 2
        ):
            return float(np.sqrt(low * high))
    return None


@dataclass
class _Pictures:
    """A window that repeats pictures: the change below which a frame is a copy, the frames that begin a picture
    and the luma of the window's last frame (what the next frame is compared with)."""

    threshold: float
    starts: list[int]
    last: np.ndarray


def picture_starts(lumas: Sequence[np.ndarray], threshold: float) -> list[int]:
    """The frames that begin a new picture: the first, and each whose change from the one before is ``threshold``
    or more."""
    return [0] + [i + 1 for i, c in enumerate(_changes(lumas)) if c >= threshold]


def _spread(items: list[tuple[float, av.VideoFrame]], n: int) -> list[tuple[float, av.VideoFrame]]:
    """Up to ``n`` items evenly spread over the list (first and last included)."""
    if n <= 0 or len(items) <= n:
        return items
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in sorted(set(idx.tolist()))]


def _convert(
    frame: av.VideoFrame, req: FrameRequest, cache: dict[tuple[int, int | None, int | None, str], np.ndarray]
) -> np.ndarray:
    """Scale and convert a frame once per (frame, size, colour, field), shared by every request that wants it; a
    frame its container says to show turned or mirrored (``orientation``) is served as shown, ``req``'s size too."""
    turn = orientation(frame)
    w, h = _target_size(*_shown(frame.width, frame.height, turn), req.width, req.height)
    field = req.one_field and frame.interlaced_frame
    key = (id(frame), w, h, req.color + ("/field" if field else ""))
    hit = cache.get(key)
    if hit is not None:
        return hit
    w, h = _shown(w, h, turn)  # the size to scale the coded picture to
    fmt = "gray" if req.color == "gray" else "rgb24"
    yuv = frame.format.name.startswith("yuv") and _plain_luma(frame)
    if not field and fmt == "gray" and w == frame.width and h == frame.height and yuv:
        arr = _grey(frame)
    else:
        if field:  # the top field alone (every other line), scaled to the frame's size
            rows = (_grey(frame) if fmt == "gray" and yuv else frame.to_ndarray(format=fmt))[::2]
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rows), format=fmt)
        arr = frame.reformat(width=w, height=h, format=fmt, interpolation="FAST_BILINEAR").to_ndarray()
        if fmt == "gray" and arr.ndim == 3:
            arr = arr[..., 0]
    cache[key] = arr = as_shown(arr, turn)
    return arr


def as_shown(arr: np.ndarray, turn: Orientation) -> np.ndarray:
    """``arr`` (rows x columns [x channels]) as ``turn`` shows it (a contiguous array; ``arr`` itself when upright)."""
    if turn == UPRIGHT:
        return arr
    transpose, flip_rows, flip_cols = turn
    if transpose:
        arr = arr.swapaxes(0, 1)
    if flip_rows:
        arr = arr[::-1]
    if flip_cols:
        arr = arr[:, ::-1]
    return np.ascontiguousarray(arr)


