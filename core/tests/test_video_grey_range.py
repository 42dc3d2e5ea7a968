"""A grey picture has the same levels whatever size a detector asks for it at: black 0, white 255.

Most cameras code video range (black 16, white 235 in the luma plane); some code full range (``yuvj`` formats, or the
JPEG range flag). FFmpeg's scaler makes a full-range grey picture of either. A grey picture at the clip's own size is
read from the luma plane without scaling, so it is stretched as the scaler would: otherwise a 640-wide camera's
pictures would reach a detector asking for 640 px with 219/255 of the contrast of a 1080p camera's scaled to 640.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from alarmcloud.contracts import FrameRequest
from alarmcloud.testing import write_frames
from alarmcloud.video import _grey, decode

W, H = 192, 108
#: the grey levels of the picture's four bands, left to right
LEVELS = (0, 60, 180, 255)


def _bands() -> np.ndarray:
    img = np.zeros((H, W, 3), np.uint8)
    for i, level in enumerate(LEVELS):
        img[:, i * W // 4 : (i + 1) * W // 4] = level
    return img


def _band_means(img: np.ndarray) -> list[float]:
    """The mean level of each band, away from its edges (scaling blurs them)."""
    w = img.shape[1] // 4
    return [float(img[4:-4, i * w + w // 4 : (i + 1) * w - w // 4].mean()) for i in range(4)]


@pytest.mark.parametrize("pix_fmt,raw_black", [("yuv420p", 16), ("yuvj420p", 0)], ids=["video-range", "full-range"])
def test_grey_levels_are_the_same_at_every_size(tmp_path: Path, pix_fmt: str, raw_black: int) -> None:
    path = write_frames(tmp_path / "bands.mp4", [_bands()] * 10, pix_fmt=pix_fmt, options={"crf": "0"})
    with av.open(str(path)) as c:
        first = next(c.decode(video=0))
        plane = np.frombuffer(first.planes[0], np.uint8).reshape(-1, first.planes[0].line_size)
        assert abs(int(plane[H // 2, 2]) - raw_black) <= 1  # the clip codes the range the case is about
    own, half, wider = decode(path, [FrameRequest(keyframes=True, color="gray"),
                                     FrameRequest(keyframes=True, color="gray", width=W // 2),
                                     FrameRequest(keyframes=True, color="gray", width=W * 2)])
    at_own = _band_means(own.keyframes[0].image)
    assert at_own[0] <= 1.5 and at_own[3] >= 253.5, at_own  # black is 0 and white 255, not 16 and 235
    for scaled in (half, wider):
        assert np.allclose(_band_means(scaled.keyframes[0].image), at_own, atol=1.5)
    assert np.allclose(at_own, LEVELS, atol=2.5)  # and each level is what the camera saw


def test_one_field_of_a_video_range_clip_is_stretched_too(tmp_path: Path) -> None:
    path = write_frames(tmp_path / "fields.mp4", [_bands()] * 10, options={
        "crf": "0", "x264-params": "interlaced=1:tff=1"})
    (field,) = decode(path, [FrameRequest(keyframes=True, color="gray", one_field=True)])
    assert np.allclose(_band_means(field.keyframes[0].image), LEVELS, atol=2.5)


@pytest.mark.parametrize("pix_fmt,color_range", [("yuv420p", 0), ("yuv420p", 1), ("yuv420p", 2), ("yuvj420p", 0),
                                                 ("yuv422p", 1), ("yuv444p", 0)])
def test_the_stretch_is_the_scalers_to_the_level(pix_fmt: str, color_range: int) -> None:
    """Every luma value of every kind of 8-bit YUV frame becomes the grey level FFmpeg's scaler gives it."""
    frame = av.VideoFrame(256, 4, pix_fmt)
    for i, plane in enumerate(frame.planes):
        np.frombuffer(plane, np.uint8)[:] = 128
        if i == 0:
            np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:4, :256] = np.arange(256, dtype=np.uint8)
    frame.color_range = color_range
    assert np.array_equal(_grey(frame), frame.reformat(format="gray").to_ndarray())
