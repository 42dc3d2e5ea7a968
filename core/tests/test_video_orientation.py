"""Clips whose container says to show them turned or mirrored are served as players show them.

A phone stores video filmed upright as landscape pictures and a display matrix that turns them back (a camera
mounted on its side may do the same); players, browsers among them, follow the matrix. The core serves the frames of
such a clip, and its thumbnail, as shown: a detector sees rain fall down and a plate the right way round.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from alarmcloud.contracts import FrameRequest
from alarmcloud.testing import write_frames
from alarmcloud.video import decode, probe, probe_and_first_frame, thumbnail_jpeg
from PIL import Image

#: the picture as shown: 96 wide, 160 high (portrait, as a phone filmed it)
SW, SH = 96, 160

#: (counter-clockwise degrees, mirrored left to right, upside down) as ``VideoStream.set_display_rotation`` takes
#: them: every orientation a display matrix can give in quarter turns
CASES = [(0, False, False), (90, False, False), (180, False, False), (-90, False, False),
         (0, True, False), (0, False, True), (90, True, False), (90, False, True)]


def _shown() -> np.ndarray:
    """A dark picture with a white block at the top left and a grey one at the top right: whether it is turned or
    mirrored shows in where the two blocks are."""
    img = np.full((SH, SW, 3), 20, np.uint8)
    img[:24, :32] = 235
    img[:24, -32:] = 128
    return img


def _coded(degrees: int, hflip: bool, vflip: bool) -> np.ndarray:
    """The picture to store so that a player shows ``_shown()``: the display matrix turns the coded picture
    ``degrees`` counter-clockwise and then mirrors it, so the coded picture is the shown one mirrored back and
    turned back."""
    img = _shown()
    if vflip:
        img = img[::-1]
    if hflip:
        img = img[:, ::-1]
    return np.ascontiguousarray(np.rot90(img, -degrees // 90))


def _clip(path: Path, degrees: int, hflip: bool, vflip: bool) -> Path:
    coded = _coded(degrees, hflip, vflip)
    return write_frames(path, [coded] * 20, options={"preset": "veryfast", "crf": "12"},
                        rotation=(degrees, hflip, vflip) if degrees or hflip or vflip else None)


def _assert_as_shown(img: np.ndarray) -> None:
    """``img`` (grey or RGB, any size) shows the white block top left, the grey one top right, dark below."""
    g = img.astype(np.float32) if img.ndim == 2 else img.astype(np.float32).mean(axis=2)
    h, w = g.shape
    top_left = g[: h * 24 // SH, : w * 32 // SW]
    top_right = g[: h * 24 // SH, w - w * 32 // SW:]
    assert top_left.mean() > 200, "the white block is not at the top left"
    assert 100 < top_right.mean() < 160, "the grey block is not at the top right"
    assert g[h // 2:].mean() < 40, "the bottom half is not dark"


@pytest.mark.parametrize("degrees,hflip,vflip", CASES)
def test_frames_are_served_as_a_player_shows_them(tmp_path: Path, degrees: int, hflip: bool, vflip: bool) -> None:
    path = _clip(tmp_path / "clip.mp4", degrees, hflip, vflip)
    full, gray, small = decode(path, [
        FrameRequest(keyframes=True, color="rgb", window_at=(0.5,), window_length=3),
        FrameRequest(keyframes=True, color="gray"),
        FrameRequest(keyframes=True, color="gray", width=48),
    ])
    assert full.windows and len(full.windows[0]) == 3
    assert (full.probe.width, full.probe.height) == (SW, SH)  # what detectors are told: the size as shown
    for frame in [*full.keyframes, *full.windows[0], *gray.keyframes]:
        assert frame.image.shape[:2] == (SH, SW)
        _assert_as_shown(frame.image)
    for frame in small.keyframes:  # the requested width is the width as shown
        assert frame.image.shape == (80, 48)
        _assert_as_shown(frame.image)
    thumb = np.asarray(Image.open(io.BytesIO(thumbnail_jpeg(path, width=48))).convert("L"))
    assert thumb.shape == (80, 48)
    _assert_as_shown(thumb)


@pytest.mark.parametrize("degrees,hflip,vflip", CASES)
def test_the_probe_gives_the_coded_size_and_whether_it_is_shown_turned(tmp_path: Path, degrees: int, hflip: bool,
                                                                       vflip: bool) -> None:
    """The probe of an upload gives the coded picture's width and height (what a camera model's resolutions list)
    and ``turned``; ``as_shown`` (stored with the clip, told to detectors) the size as players show it, also when
    the probe is handed to ``decode`` (as ``alarmcloud detect`` and the pipeline do)."""
    path = _clip(tmp_path / "clip.mp4", degrees, hflip, vflip)
    p = probe(path)
    across = degrees in (90, -90)
    assert p.turned == across
    assert (p.width, p.height) == ((SH, SW) if across else (SW, SH))
    assert (p.as_shown().width, p.as_shown().height, p.as_shown().turned) == (SW, SH, False)
    (given,) = decode(path, [FrameRequest(keyframes=True, color="gray")], p)
    assert (given.probe.width, given.probe.height) == (SW, SH)
    assert given.keyframes[0].image.shape == (SH, SW)
    # a stored clip's probe already says the size as shown: it is not turned a second time
    (stored,) = decode(path, [FrameRequest(keyframes=True, color="gray")], p.as_shown())
    assert (stored.probe.width, stored.probe.height) == (SW, SH)
    # one that says the coded size without ``turned`` (a clip stored before the probe said it) is told as shown too
    (older,) = decode(path, [FrameRequest(keyframes=True, color="gray")], replace(p, turned=False))
    assert (older.probe.width, older.probe.height) == (SW, SH)


@pytest.mark.parametrize("degrees,hflip,vflip", [(0, False, False), (-90, False, False), (90, True, False)])
def test_the_upload_thumbnail_from_the_probes_frame_is_the_first_keyframes(tmp_path: Path, degrees: int, hflip: bool,
                                                                           vflip: bool) -> None:
    """The probe child makes the thumbnail from the frame the probe decoded (B-frames here): the same JPEG, byte for
    byte, as decoding the first keyframe again."""
    path = _clip(tmp_path / "clip.mp4", degrees, hflip, vflip)
    p, first = probe_and_first_frame(path)
    assert first is not None and first.key_frame and p == probe(path)
    assert thumbnail_jpeg(path, width=48, first=first) == thumbnail_jpeg(path, width=48)
