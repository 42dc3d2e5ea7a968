"""Privacy masks: rectangles of the frame painted black before a clip is stored.

Many European camera owners may not record public ground or a neighbour's garden, so a camera may carry up to
eight rectangles (fractions of the frame). At ingest the clip is decoded, the rectangles are painted black and the
video is encoded again (H.264); the unmasked upload never reaches blob storage. The untrusted upload is decoded only
in a child process under time and memory limits, like the probe (``safeprobe``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import resource
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

from alarmcloud.errors import ApiError
from alarmcloud.video import ProbeError

MAX_MASKS = 8
MIN_SIZE = 0.01  # 1 % of the frame's width and height
#: the H.264 encoding of a masked clip (x264 CRF: 23 is its default quality; veryfast keeps the CPU cost low)
CRF = "23"
PRESET = "veryfast"
#: audio codecs the MP4 muxer takes as they are
MP4_AUDIO = frozenset({"aac", "mp3", "opus", "flac", "alac", "ac3", "eac3"})
#: FFmpeg's colour ranges (AVColorRange): MPEG = limited (Y 16..235), JPEG = full (Y 0..255)
LIMITED_RANGE, FULL_RANGE = 1, 2


def validate_masks(value: Any) -> list[list[float]]:
    """The masks of a PATCH body, checked and rounded; ApiError 422 naming the first problem."""

    def bad(message: str) -> ApiError:
        return ApiError(422, "invalid_privacy_masks", message)

    if value is None:
        return []
    if not isinstance(value, list):
        raise bad("privacy_masks must be a list of rectangles [x0, y0, x1, y1] (fractions of the frame, 0..1)")
    if len(value) > MAX_MASKS:
        raise bad(f"privacy_masks has {len(value)} rectangles; at most {MAX_MASKS} are allowed")
    out: list[list[float]] = []
    for i, rect in enumerate(value):
        name = f"privacy_masks[{i}]"
        if (not isinstance(rect, list) or len(rect) != 4
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in rect)):
            raise bad(f"{name} must be a list of four numbers [x0, y0, x1, y1]")
        if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in rect):
            raise bad(f"{name}: coordinates are fractions of the frame and must lie in 0..1")
        x0, y0, x1, y1 = (float(v) for v in rect)
        if not (x0 < x1 and y0 < y1):
            raise bad(f"{name}: x0 must be less than x1 and y0 less than y1")
        if x1 - x0 < MIN_SIZE - 1e-9 or y1 - y0 < MIN_SIZE - 1e-9:
            raise bad(f"{name} is smaller than 1 % of the frame's width or height")
        out.append([round(x0, 4), round(y0, 4), round(x1, 4), round(y1, 4)])
    return out


def masks_hash(masks: list[list[float]]) -> str | None:
    """What a stored clip records about the masks painted into it (sha256 of their JSON); None without masks."""
    if not masks:
        return None
    return hashlib.sha256(json.dumps(masks, separators=(",", ":")).encode()).hexdigest()


def pixel_rects(masks: list[list[float]], width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Each mask in pixels, widened outwards to even edges so the half-size colour planes are covered too."""
    rects = []
    for x0, y0, x1, y1 in masks:
        px0 = max(0, math.floor(x0 * width) // 2 * 2)
        py0 = max(0, math.floor(y0 * height) // 2 * 2)
        px1 = min(width, -(-math.ceil(x1 * width) // 2) * 2)
        py1 = min(height, -(-math.ceil(y1 * height) // 2) * 2)
        if px1 > px0 and py1 > py0:
            rects.append((px0, py0, px1, py1))
    return rects


def coded_masks(masks: list[list[float]], turn: tuple[bool, bool, bool]) -> list[list[float]]:
    """``masks``, drawn on the picture as players show it, on the picture as coded (``video.orientation``: a
    clip whose container says to show it turned or mirrored)."""
    transpose, flip_rows, flip_cols = turn
    out = []
    for x0, y0, x1, y1 in masks:  # undo the shown picture's steps, the last first
        if flip_cols:
            x0, x1 = 1.0 - x1, 1.0 - x0
        if flip_rows:
            y0, y1 = 1.0 - y1, 1.0 - y0
        if transpose:
            x0, y0, x1, y1 = y0, x0, y1, x1
        out.append([x0, y0, x1, y1])
    return out


def _paint(frame: Any, rects: list[tuple[int, int, int, int]]) -> None:
    """Paint the rectangles black in a yuv420p frame, in place (Y=16, U=V=128: black in limited range)."""
    import numpy as np

    for index, value, shift in ((0, 16, 0), (1, 128, 1), (2, 128, 1)):
        plane = frame.planes[index]
        arr = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        for x0, y0, x1, y1 in rects:
            arr[y0 >> shift:(y1 + shift) >> shift, x0 >> shift:(x1 + shift) >> shift] = value


def mask_clip(src: Path, dst: Path, masks: list[list[float]], threads: int = 2) -> dict[str, Any]:
    """Decode ``src``, paint the masks, encode H.264 to ``dst`` (same size, frame times); copy audio packets.

    The masks are fractions of the picture as players show it: a clip whose container says to show it turned or
    mirrored (a phone's portrait video) is masked where the owner sees the area, and ``dst`` says the same.
    """
    import av

    from alarmcloud.video import first_orientation, open_input

    try:
        turn = first_orientation(src)
    except av.error.FFmpegError as exc:
        raise ProbeError("corrupt_video", f"the video data is corrupt: {exc.__class__.__name__}") from None
    with open_input(src) as inp:
        ias = inp.streams.audio[0] if inp.streams.audio else None
        # G.711 / G.726 camera audio cannot go into MP4; QuickTime (the same ISO file family) holds it unchanged
        fmt = "mp4" if ias is None or ias.codec_context.name in MP4_AUDIO else "mov"
        with av.open(str(dst), mode="w", format=fmt) as out:
            return _mask_streams(inp, out, ias, masks, threads, turn)


def _mask_streams(inp: Any, out: Any, ias: Any, masks: list[list[float]], threads: int,
                  turn: tuple[bool, bool, bool]) -> dict[str, Any]:
    import av

    from alarmcloud.video import DISPLAY_ROTATION

    ivs = inp.streams.video[0]
    icc = ivs.codec_context
    icc.thread_count = threads
    width, height = int(icc.width), int(icc.height)
    rects = pixel_rects(coded_masks(masks, turn), width, height)
    rate = ivs.average_rate or ivs.guessed_rate or ivs.base_rate or Fraction(15)
    tb = ivs.time_base or Fraction(1, 90000)
    ovs = out.add_stream("libx264", rate=rate)
    ovs.width, ovs.height, ovs.pix_fmt = width, height, "yuv420p"
    if turn in DISPLAY_ROTATION:  # the masked copy is shown as the upload was
        degrees, hflip, vflip = DISPLAY_ROTATION[turn]
        ovs.set_display_rotation(degrees, hflip=hflip, vflip=vflip)
    ovs.time_base = tb
    occ = ovs.codec_context
    occ.time_base = tb
    occ.thread_count = threads
    # keyframes where the camera put them (forced IDR), no B-frames: the stored clip stays camera-like for the
    # keyframe-based decoding of thumbnails and detectors; at most one keyframe per 10 s otherwise
    occ.gop_size = max(1, round(float(rate) * 10))
    occ.options = {"crf": CRF, "preset": PRESET, "bf": "0", "sc_threshold": "0", "x264-params": "forced-idr=1"}
    oas = out.add_stream_from_template(ias) if ias is not None else None
    frames = 0
    step = max(1, round(1 / (float(rate) * tb)))  # one frame in time-base units, for frames without a time
    last_pts = -step
    try:
        for packet in inp.demux(*([ivs] + ([ias] if ias is not None else []))):  # ends with flushing packets
            if packet.stream.index == ivs.index:
                for frame in icc.decode(packet):
                    frames += 1
                    pts = frame.pts if frame.pts is not None and frame.pts > last_pts else last_pts + step
                    _encode(out, ovs, frame, pts, rects)
                    last_pts = pts
            elif oas is not None and packet.dts is not None:
                packet.stream = oas
                out.mux(packet)
    except av.error.FFmpegError as exc:
        raise ProbeError("corrupt_video", f"the video data is corrupt: {exc.__class__.__name__}") from None
    for packet in ovs.encode(None):
        out.mux(packet)
    if frames == 0:
        raise ProbeError("no_video_frames", "the video stream holds no frames")
    return {"frames": frames, "rects": len(rects), "format": out.format.name}


def _encode(out: Any, ovs: Any, frame: Any, pts: int, rects: list[tuple[int, int, int, int]]) -> None:
    import av

    keyframe = frame.key_frame
    # many cameras send full-range video (yuvj420p, or yuv420p flagged full range): it is scaled to the limited
    # range the stored yuv420p stream is played back as; passed through, its picture would come out too bright
    full = frame.format.name.startswith("yuvj") or int(frame.color_range) == FULL_RANGE
    if full or frame.format.name != "yuv420p" or frame.width != ovs.width or frame.height != ovs.height:
        frame = frame.reformat(width=ovs.width, height=ovs.height, format="yuv420p",
                               src_color_range=FULL_RANGE if full else None,
                               dst_color_range=LIMITED_RANGE if full else None)
    frame.pts = pts
    frame.time_base = ovs.codec_context.time_base
    frame.pict_type = av.video.frame.PictureType.I if keyframe else av.video.frame.PictureType.NONE
    _paint(frame, rects)
    for packet in ovs.encode(frame):
        out.mux(packet)


def safe_mask(src: Path, dst: Path, masks: list[list[float]], timeout: float = 180.0, memory_mb: int = 2048,
              thumbnail: Path | None = None, threads: int = 2) -> dict[str, Any]:
    """Mask ``src`` into ``dst`` (and a JPEG thumbnail of the result) in a limited child; ProbeError on failure.

    ``dst`` is removed when masking fails, so nothing unmasked or half-written is left to be stored.
    """
    from alarmcloud.safeprobe import child_args, run_limited

    args = child_args("alarmcloud.masks", str(src), str(dst), json.dumps(masks), str(threads))
    args += [str(thumbnail)] if thumbnail else []
    try:  # in the probe's slots: the time limit measures the child's own work
        return run_limited(args, timeout, memory_mb, int(timeout * threads) + 1,
                           ProbeError("mask_timeout", "masking the video took too long"),
                           ProbeError("mask_failed", "the video could not be masked safely"))
    except ProbeError:
        dst.unlink(missing_ok=True)
        raise


def _main(argv: list[str]) -> int:
    src, dst, masks, threads = Path(argv[1]), Path(argv[2]), json.loads(argv[3]), int(argv[4])
    started = time.process_time()
    try:
        result = mask_clip(src, dst, validate_masks(masks), threads)
    except ProbeError as exc:
        sys.stdout.write(json.dumps({"error": {"code": exc.code, "message": exc.message}}))
        return 2
    except Exception as exc:  # noqa: BLE001 - any decoder/encoder failure on untrusted data is a rejection
        sys.stdout.write(json.dumps({"error": {"code": "mask_failed",
                                               "message": f"the video could not be masked: {type(exc).__name__}"}}))
        return 2
    if len(argv) > 5:
        from alarmcloud.video import thumbnail_jpeg

        try:
            Path(argv[5]).write_bytes(thumbnail_jpeg(dst))  # from the masked video: it must not show the masked area
        except Exception:  # noqa: BLE001 - a clip without a thumbnail is still a clip
            pass
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 3)
    result["process_seconds"] = round(time.process_time() - started, 3)
    result["max_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    sys.stdout.write(json.dumps(result))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(_main(sys.argv))
