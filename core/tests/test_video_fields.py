"""Interlaced streams: with ``FrameRequest.one_field`` each frame is served as its top field alone.

An interlaced camera (or an analogue camera's recorder) takes two fields half a frame apart and weaves them line by
line. A bar that moved between the two fields shows on alternate lines at two places (combing), and scaled down the
two moments mix. With ``one_field`` the core serves the top field, scaled to the frame's size: one moment, no comb.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from alarmcloud.contracts import FrameRequest
from alarmcloud.testing import write_frames
from alarmcloud.video import decode

W, H = 320, 180
#: the bar's left edge in the top field; the bottom field, taken half a frame later, shows it this much further
STEP = 24


def _woven(i: int) -> np.ndarray:
    """Frame ``i``: a bright bar on grey, at ``x`` on the even lines and ``x + STEP`` on the odd lines."""
    img = np.full((H, W, 3), 60, np.uint8)
    x = 20 + 8 * i
    img[0::2, x : x + 30] = 220
    img[1::2, x + STEP : x + STEP + 30] = 220
    return img


def _clip(path: Path, interlaced: bool) -> Path:
    return write_frames(path, (_woven(i) for i in range(20)), options={
        "preset": "veryfast", "crf": "12", "x264-params": "interlaced=1:tff=1" if interlaced else "interlaced=0"})


def _comb(img: np.ndarray) -> float:
    """How differently even and odd lines look: mean absolute difference of each even line and the next odd one."""
    g = img.astype(np.float32) if img.ndim == 2 else img.astype(np.float32).mean(axis=2)
    return float(np.abs(g[0:-1:2] - g[1::2]).mean())


@pytest.mark.parametrize("color", ["gray", "rgb"])
def test_an_interlaced_frame_is_served_as_its_top_field(tmp_path: Path, color: str) -> None:
    path = _clip(tmp_path / "fields.mp4", interlaced=True)
    req = FrameRequest(keyframes=False, window_at=(0.2,), window_length=4, color=color)  # type: ignore[arg-type]
    (woven,) = decode(path, [req])
    (field,) = decode(path, [FrameRequest(**{**req.__dict__, "one_field": True})])
    for a, b in zip(woven.windows[0], field.windows[0], strict=True):
        assert b.image.shape == a.image.shape  # the frame's size, not the field's
        assert _comb(a.image) > 20  # the two fields' bars side by side on alternate lines
        assert _comb(b.image) < 4  # one moment: even and odd lines agree
        # the bar where the top field has it, on every line
        row = b.image[H // 2] if b.image.ndim == 2 else b.image[H // 2].mean(axis=1)
        bright = np.flatnonzero(row > 140)
        x = 20 + 8 * round(a.time * 10)
        assert abs(int(bright.min()) - x) <= 2 and abs(int(bright.max()) - (x + 29)) <= 2


def test_scaled_down_the_field_keeps_the_picture_shape(tmp_path: Path) -> None:
    path = _clip(tmp_path / "fields.mp4", interlaced=True)
    req = FrameRequest(keyframes=True, max_keyframes=2, window_at=(0.5,), window_length=3, width=160, color="gray",
                       one_field=True)
    (cf,) = decode(path, [req])
    for frame in [*cf.keyframes, *cf.windows[0]]:
        assert frame.image.shape == (90, 160)
        assert _comb(frame.image) < 4


def test_a_progressive_stream_is_served_as_it_is(tmp_path: Path) -> None:
    """``one_field`` changes nothing for a stream that is not interlaced (its comb here is the picture's own)."""
    path = _clip(tmp_path / "progressive.mp4", interlaced=False)
    req = FrameRequest(keyframes=False, window_at=(0.2,), window_length=4, width=W, color="gray")
    (plain,) = decode(path, [req])
    (asked,) = decode(path, [FrameRequest(**{**req.__dict__, "one_field": True})])
    for a, b in zip(plain.windows[0], asked.windows[0], strict=True):
        assert np.array_equal(a.image, b.image)
