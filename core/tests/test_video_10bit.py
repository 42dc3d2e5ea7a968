"""10-bit video (an HDR phone's HEVC, newer cameras' Main 10 profiles) is served as 8-bit pictures like any other.

The core reads an 8-bit frame's luma plane directly; a 10-bit frame's samples take two bytes each, so its pictures
are converted instead, at every size and for the repeated-picture check.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from alarmcloud.contracts import FrameRequest
from alarmcloud.testing import write_frames
from alarmcloud.video import decode

W, H = 96, 64


def _picture() -> np.ndarray:
    """Bright left half, dark right half, a grey band at the top."""
    img = np.zeros((H, W, 3), np.uint8)
    img[:, : W // 2] = 200
    img[:16] = 100
    return img


def _clip(path: Path, codec: str) -> Path:
    options = {"x265-params": "log-level=error"} if codec == "libx265" else {"bf": "0"}
    return write_frames(path, [_picture()] * 20, codec=codec, pix_fmt="yuv420p10le", options=options)


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
def test_grey_frames_of_10_bit_video_show_the_picture_at_every_size(tmp_path: Path, codec: str) -> None:
    path = _clip(tmp_path / "clip.mp4", codec)
    with av.open(str(path)) as c:
        first = next(c.decode(video=0))
        assert first.format.name == "yuv420p10le"
        reference = first.to_ndarray(format="gray").astype(np.int16)  # FFmpeg's own conversion to 8-bit grey
    native, half = decode(path, [
        FrameRequest(keyframes=True, color="gray", window_at=(0.3,), window_length=4, distinct=True),
        FrameRequest(keyframes=True, color="gray", width=W // 2),
    ])
    assert len(native.windows[0]) == 4
    for frame in [*native.keyframes, *native.windows[0]]:
        img = frame.image.astype(np.int16)
        assert img.shape == (H, W)
        assert np.abs(img - reference).max() <= 3
        assert img[32:, :40].mean() > 180 and img[32:, 60:].mean() < 20 and 80 < img[:12].mean() < 120
    small = half.keyframes[0].image.astype(np.int16)
    assert small.shape == (H // 2, W // 2)
    assert small[16:, :20].mean() > 180 and small[16:, 30:].mean() < 20
