"""Probe an alarm clip, tell how players show its pictures, and make its thumbnail: without numpy.

Every upload is probed in a new, limited Python process (``alarmcloud.safeprobe``); this module imports PyAV only
(Pillow only to turn the thumbnail of a turned video), which starts in a fraction of the time numpy and Pillow take
to import: on camera clips those imports were most of the child's CPU (``bench/ingest/RESULTS.md``).
``alarmcloud.video`` decodes and re-exports these names; ``decode`` reads the packets through ``_scan_packets`` here.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av

from alarmcloud.contracts import ClipProbe


def open_input(path: str | Path) -> av.container.InputContainer:
    """Open a clip for reading without decoding a frame to find its stream facts.

    FFmpeg's stream-info search decodes the first frame of every stream to fill in facts the container already
    holds for camera clips (up to about 20 ms of CPU per open of 1080p H.264); ``skip_frame=all`` lets the search parse
    without decoding. PyAV decodes with a codec context of its own, so frames are unaffected. Should a stream's
    frame size be missing without that decode, the clip is opened again the usual way.
    """
    container = av.open(str(path), metadata_errors="ignore", stream_options=[{"skip_frame": "all"}])
    vs = container.streams.video[0] if container.streams.video else None
    if vs is None or (vs.codec_context.width and vs.codec_context.height):
        return container
    container.close()
    return av.open(str(path), metadata_errors="ignore")


class ProbeError(Exception):
    """The file is not a video the core can read; ``code`` names why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def probe(path: str | Path) -> ClipProbe:
    """Read container and stream facts, and whether players show the pictures turned (``ClipProbe.turned``: the
    ``orientation`` of the first frame, the one frame decoded); raises ``ProbeError`` for anything that is not a
    readable video."""
    return probe_and_first_frame(path)[0]


def probe_and_first_frame(path: str | Path) -> tuple[ClipProbe, av.VideoFrame | None]:
    """``probe`` and the frame it decoded (None when none decoded), for a thumbnail (``thumbnail_jpeg``) without
    decoding it again."""
    clip, _, first = _probe(Path(path), turned=True)
    return clip, first


def _probe(path: Path, turned: bool = False) -> tuple[ClipProbe, list[float], av.VideoFrame | None]:
    """``probe``, the keyframe times its packet scan read (sorted), for ``decode`` not to scan again, and the first
    frame; ``turned`` is left False and no frame decoded unless asked for."""
    size = path.stat().st_size
    if size == 0:
        raise ProbeError("empty_file", "the file is empty")
    try:
        container = open_input(path)
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise ProbeError("not_a_video", f"not a readable video container: {exc.__class__.__name__}") from None
    with container:
        fmt = container.format.name or ""
        if not container.streams.video:
            raise ProbeError("no_video_stream", "the file has no video stream")
        vs = container.streams.video[0]
        cc = vs.codec_context
        width, height = int(cc.width or 0), int(cc.height or 0)
        if width <= 0 or height <= 0:
            raise ProbeError("bad_video_stream", "the video stream has no frame size")
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        fps = float(rate) if rate else 0.0
        duration = _duration(container, vs)
        try:
            keys, packets, first = _scan_packets(container, vs, first_frame=turned)
        except av.error.FFmpegError as exc:
            raise ProbeError("corrupt_video", f"the video data is corrupt: {exc.__class__.__name__}") from None
        if packets == 0:
            raise ProbeError("no_video_frames", "the video stream holds no frames")
        if not keys:
            raise ProbeError("no_keyframes", "the video stream has no keyframe")
        gop = None
        if len(keys) > 1:
            gop = (keys[-1] - keys[0]) / (len(keys) - 1)
        audio = container.streams.audio[0] if container.streams.audio else None
        return ClipProbe(
            container=fmt,
            # the codec's name, not the decoder's: an AV1 stream decoded by dav1d is "av1", not "libdav1d"
            video_codec=cc.codec.canonical_name,
            width=width,
            height=height,
            fps=round(fps, 3),
            duration=round(duration, 3),
            has_audio=audio is not None,
            audio_codec=audio.codec_context.codec.canonical_name if audio is not None else None,
            size_bytes=size,
            bit_rate=int(container.bit_rate) if container.bit_rate else None,
            keyframe_interval=round(gop, 3) if gop else None,
            turned=first is not None and orientation(first)[0],
        ), sorted(keys), first


def _duration(container: av.container.InputContainer, vs: av.video.stream.VideoStream) -> float:
    if vs.duration is not None and vs.time_base is not None:
        return float(vs.duration * vs.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    if vs.frames and vs.average_rate:
        return vs.frames / float(vs.average_rate)
    return 0.0


#: ``_scan_packets`` gives up looking for the first frame after this many packets from the first keyframe on
FIRST_FRAME_PACKETS = 16


def _scan_packets(container: av.container.InputContainer, vs: av.video.stream.VideoStream,
                  first_frame: bool = False) -> tuple[list[float], int, av.VideoFrame | None]:
    """The video stream's keyframe times and its number of timed packets, read from the packets, and with
    ``first_frame`` the first frame decoded from the first keyframe on (None when none decodes within
    ``FIRST_FRAME_PACKETS`` packets; nothing else is decoded)."""
    keys: list[float] = []
    packets = 0
    first: av.VideoFrame | None = None
    tries = FIRST_FRAME_PACKETS if first_frame else 0
    cc = vs.codec_context
    for packet in container.demux(vs):
        if packet.pts is None:
            continue
        packets += 1
        if packet.is_keyframe and packet.time_base is not None:
            keys.append(float(packet.pts * packet.time_base))
        if tries and keys:  # from the first keyframe on: a stream may begin with frames that reference nothing
            tries -= 1
            try:
                first = next(iter(cc.decode(packet)), None)
            except av.error.FFmpegError:  # an undecodable picture is the decoders' business, not the probe's
                tries = 0
            if first is not None:
                tries = 0
    return keys, packets, first


def keyframe_times(path: str | Path) -> list[float]:
    """The times of the clip's keyframes, read from the packets (nothing is decoded)."""
    with open_input(path) as container:
        return sorted(_scan_packets(container, container.streams.video[0])[0])


#: how a picture is shown: transposed (rows become columns), then flipped upside down, then left to right
Orientation = tuple[bool, bool, bool]
UPRIGHT: Orientation = (False, False, False)


def orientation(frame: av.VideoFrame) -> Orientation:
    """How a player shows ``frame``: from the display matrix its container carries (a phone stores video filmed
    upright turned, with a matrix that turns it back; a camera mounted on its side may too), in quarter turns and
    mirrorings as FFmpeg's own player applies them; ``UPRIGHT`` without one, or for one that turns the picture by
    another angle."""
    matrix = frame.side_data.get("DISPLAYMATRIX")
    if matrix is None:
        return UPRIGHT
    m = struct.unpack("=9i", bytes(matrix))  # FFmpeg's 3x3 matrix of int32, in the machine's byte order
    theta = -frame.rotation % 360  # clockwise degrees, as FFmpeg's autorotate reads it
    if theta == 90:  # turned clockwise; transposed alone where the matrix mirrors too
        return (True, False, bool(m[3] <= 0))
    if theta == 270:  # turned counter-clockwise; also flipped both ways where the matrix mirrors
        return (True, True, bool(m[3] < 0))
    if theta in (0, 180):
        return (False, bool(m[4] < 0), bool(m[0] < 0))
    return UPRIGHT


#: ``VideoStream.set_display_rotation`` arguments (counter-clockwise degrees, then mirrored left to right / upside
#: down) that make a player show a coded picture as each ``Orientation`` does
DISPLAY_ROTATION: dict[Orientation, tuple[int, bool, bool]] = {
    (True, False, True): (-90, False, False),  # turned clockwise
    (True, True, False): (90, False, False),  # turned counter-clockwise
    (False, True, True): (180, False, False),
    (False, False, True): (0, True, False),
    (False, True, False): (0, False, True),
    (True, False, False): (90, False, True),  # transposed
    (True, True, True): (-90, False, True),  # transposed the other way (across the other diagonal)
}


def first_orientation(path: str | Path) -> Orientation:
    """``orientation`` of the clip's first frame (``UPRIGHT`` for a clip without a decodable one)."""
    with open_input(path) as container:
        for frame in container.decode(container.streams.video[0]):
            return orientation(frame)
    return UPRIGHT


def _shown(width: int, height: int, turn: Orientation) -> tuple[int, int]:
    """A ``width`` x ``height`` picture's size as ``turn`` shows it (the other way round when transposed)."""
    return (height, width) if turn[0] else (width, height)


def _target_size(src_w: int, src_h: int, width: int | None, height: int | None) -> tuple[int, int]:
    if width and height:
        return width, height
    if width:
        return width, max(2, round(src_h * width / src_w / 2) * 2)
    if height:
        return max(2, round(src_w * height / src_h / 2) * 2), height
    return src_w, src_h


def thumbnail_jpeg(path: str | Path, width: int = 480, first: av.VideoFrame | None = None) -> bytes:
    """A JPEG of the clip's first keyframe as players show it (``orientation``), ``width`` pixels wide; made from
    ``first`` (``probe_and_first_frame``'s) when that is a keyframe, else decoded from ``path``."""
    if first is not None and first.key_frame:
        return _jpeg(first, width)
    with open_input(path) as container:
        vs = container.streams.video[0]
        vs.codec_context.skip_frame = "NONKEY"
        for frame in container.decode(vs):
            return _jpeg(frame, width)
    raise ProbeError("no_video_frames", "no frame to make a thumbnail from")


#: FFmpeg's JPEG quantiser scale for thumbnails: about the size and the fidelity of Pillow's quality 80
JPEG_QSCALE = 4


def _jpeg(frame: av.VideoFrame, width: int) -> bytes:
    """``frame`` as players show it, ``width`` pixels wide, as a JPEG: encoded by FFmpeg (PyAV is loaded anyway;
    importing Pillow took some 0.1 CPU-s, about as much as the rest of the probe child), a turned one by Pillow."""
    turn = orientation(frame)
    w, h = _shown(*_target_size(*_shown(frame.width, frame.height, turn), width, None), turn)
    if turn != UPRIGHT:
        return _jpeg_turned(frame, w, h, turn)
    # through RGB: the full-range YUV of a JPEG whatever range the camera's video is in
    picture = frame.reformat(width=w, height=h, format="rgb24").reformat(format="yuvj420p")
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height, encoder.pix_fmt = w, h, "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    encoder.qmin = encoder.qmax = JPEG_QSCALE
    # a JFIF header (square pixels), and no comment naming the FFmpeg version the server runs
    encoder.sample_aspect_ratio = Fraction(1, 1)
    encoder.flags |= av.codec.context.Flags.bitexact
    return b"".join(bytes(packet) for packet in [*encoder.encode(picture), *encoder.encode(None)])


def _jpeg_turned(frame: av.VideoFrame, w: int, h: int, turn: Orientation) -> bytes:
    """``frame`` scaled to ``w`` x ``h`` (as coded), turned as ``turn`` shows it, as a JPEG (Pillow)."""
    import io

    from PIL import Image

    img = frame.to_image(width=w, height=h)
    transpose, flip_rows, flip_cols = turn  # as ``video.as_shown`` turns an array, one step after the other
    for step, op in ((transpose, Image.Transpose.TRANSPOSE), (flip_rows, Image.Transpose.FLIP_TOP_BOTTOM),
                     (flip_cols, Image.Transpose.FLIP_LEFT_RIGHT)):
        if step:
            img = img.transpose(op)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return buf.getvalue()
