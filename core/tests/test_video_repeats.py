"""Windows of distinct pictures: a stream that sends every picture twice or three times is served picture by picture."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from alarmcloud.contracts import FrameRequest
from alarmcloud.testing import make_clip, moving_box_scene
from alarmcloud.video import decode, repeat_period

SENSOR_FPS = 10


def _noisy_picture(picture: int, width: int, height: int) -> np.ndarray:
    """One sensor picture: the walking box at the picture's time, with fresh sensor noise (rain-like flicker)."""
    img = moving_box_scene(picture, picture / SENSOR_FPS, width, height).astype(np.int16)
    noise = np.random.default_rng(picture).normal(0, 6, img.shape[:2])[..., None]
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def _repeating(k: int):  # type: ignore[no-untyped-def]
    def scene(index: int, t: float, width: int, height: int) -> np.ndarray:
        return _noisy_picture(index // k, width, height)

    return scene


def _changes(frames: list[np.ndarray]) -> np.ndarray:
    return np.array([np.abs(b.astype(np.int16) - a).mean() for a, b in zip(frames, frames[1:], strict=False)])


REQ = FrameRequest(keyframes=False, window_at=(0.3, 0.7), window_length=6, width=320, color="gray")


@pytest.mark.parametrize("k", [2, 3])
def test_a_stream_that_repeats_its_pictures_is_served_picture_by_picture(tmp_path: Path, k: int) -> None:
    clip = make_clip(tmp_path / "c.mp4", seconds=6, fps=SENSOR_FPS * k, gop_seconds=1, scene=_repeating(k))
    plain, distinct = decode(clip, [REQ, replace(REQ, distinct=True)])
    for raw, served in zip(plain.windows, distinct.windows, strict=True):
        assert len(raw) == len(served) == 6
        # as sent: a picture and its copies side by side, nothing changes between copies
        assert repeat_period([f.image.astype(np.int16) for f in raw]) is not None
        # served: one frame per picture, a picture apart, every one changed from the one before
        gaps = np.diff([f.time for f in served])
        assert np.allclose(gaps, 1 / SENSOR_FPS, atol=1e-3)
        changes = _changes([f.image for f in served])
        assert changes.min() > 0.5 * changes.max()
        assert repeat_period([f.image.astype(np.int16) for f in served]) is None
        # a request without ``distinct`` in the same decode still gets the frames as sent
        assert np.allclose(np.diff([f.time for f in raw]), 1 / (SENSOR_FPS * k), atol=1e-3)


def test_a_stream_of_distinct_pictures_is_served_as_it_is(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", seconds=6, fps=SENSOR_FPS, gop_seconds=1, scene=_repeating(1))
    plain, distinct = decode(clip, [REQ, replace(REQ, distinct=True)])
    assert [f.time for w in distinct.windows for f in w] == [f.time for w in plain.windows for f in w]
    for a, b in zip(plain.windows, distinct.windows, strict=True):
        assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b, strict=True))


def test_repeat_period_finds_the_period_and_its_phase() -> None:
    rng = np.random.default_rng(1)
    pictures = [rng.integers(0, 255, (20, 30)).astype(np.int16) for _ in range(8)]

    def copies(k: int, skip: int) -> list[np.ndarray]:  # each picture k times, lightly refined; ``skip`` dropped
        frames = [p + rng.integers(-1, 2, p.shape) * (i % k > 0) for p in pictures for i in range(k)]
        return frames[skip : skip + 6]

    assert repeat_period(copies(2, 0)) == (2, 0)
    assert repeat_period(copies(2, 1)) == (2, 1)  # the window starts on a copy: pictures begin at frames 1, 3, 5
    assert repeat_period(copies(3, 0)) == (3, 0)
    assert repeat_period(copies(3, 2)) == (3, 1)
    assert repeat_period(pictures[:6]) is None
    # a flash in one frame of a stream of distinct pictures is no repeat pattern
    flash = [p.copy() for p in pictures[:6]]
    flash[3] = np.clip(flash[3] + 120, 0, 255)
    assert repeat_period(flash) is None
    assert repeat_period(pictures[:3]) is None  # too short to tell
