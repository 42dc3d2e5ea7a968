"""Windows of distinct pictures: a stream that sends every picture twice or three times, or repeats some of them
(footage converted to a higher frame rate), is served picture by picture."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from alarmcloud.contracts import Frame, FrameRequest
from alarmcloud.testing import make_clip, moving_box_scene
from alarmcloud.video import copy_threshold, decode, picture_starts

SENSOR_FPS = 10
SIGMA = 2


def _noisy_picture(picture: int, width: int, height: int, sigma: float = 6) -> np.ndarray:
    """One sensor picture: the walking box at the picture's time, with fresh sensor noise (rain-like flicker)."""
    img = moving_box_scene(picture, picture / SENSOR_FPS, width, height).astype(np.int16)
    noise = np.random.default_rng(picture).normal(0, sigma, img.shape[:2])[..., None]
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
        assert copy_threshold([f.image.astype(np.int16) for f in raw]) is not None
        # served: one frame per picture, a picture apart, every one changed from the one before
        gaps = np.diff([f.time for f in served])
        assert np.allclose(gaps, 1 / SENSOR_FPS, atol=1e-3)
        changes = _changes([f.image for f in served])
        assert changes.min() > 0.5 * changes.max()
        assert copy_threshold([f.image.astype(np.int16) for f in served]) is None
        # a request without ``distinct`` in the same decode still gets the frames as sent
        assert np.allclose(np.diff([f.time for f in raw]), 1 / (SENSOR_FPS * k), atol=1e-3)


def test_a_stream_of_distinct_pictures_is_served_as_it_is(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", seconds=6, fps=SENSOR_FPS, gop_seconds=1, scene=_repeating(1))
    plain, distinct = decode(clip, [REQ, replace(REQ, distinct=True)])
    assert [f.time for w in distinct.windows for f in w] == [f.time for w in plain.windows for f in w]
    for a, b in zip(plain.windows, distinct.windows, strict=True):
        assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b, strict=True))


def _converted(out_fps: int):  # type: ignore[no-untyped-def]
    """Footage of the sensor rate converted to ``out_fps`` by repeating the nearest picture (ffmpeg's ``fps``)."""

    def scene(index: int, t: float, width: int, height: int) -> np.ndarray:
        return _noisy_picture(round(index * SENSOR_FPS / out_fps), width, height, sigma=SIGMA)

    return scene


@pytest.mark.parametrize("out_fps", [12, 15, 25])
def test_footage_converted_to_a_higher_rate_is_served_picture_by_picture(tmp_path: Path, out_fps: int) -> None:
    # 10 -> 12 fps: every fifth picture twice; 15: every second; 25: the pictures two and three times in turn
    clip = make_clip(tmp_path / "c.mp4", seconds=6, fps=out_fps, gop_seconds=1, scene=_converted(out_fps))
    plain, distinct = decode(clip, [REQ, replace(REQ, distinct=True)])

    def pictures(frames: list[Frame]) -> list[int]:  # the sensor picture each frame shows, as the scene drew it
        return [round(round(f.time * out_fps) * SENSOR_FPS / out_fps) for f in frames]

    for raw, served in zip(plain.windows, distinct.windows, strict=True):
        assert len(set(pictures(raw))) < len(raw)  # as sent, the window repeats a picture
        assert len(served) == 6
        assert served[0].time == raw[0].time
        first = pictures(served)[0]
        assert pictures(served) == list(range(first, first + 6))  # served: one frame per picture, none left out


def _copies(pictures: list[np.ndarray], pattern: list[int], rng: np.random.Generator) -> list[np.ndarray]:
    """Each picture as often as ``pattern`` says, the copies lightly refined as an encoder does."""
    return [
        p + rng.integers(-1, 2, p.shape) * (i > 0) for p, n in zip(pictures, pattern, strict=False) for i in range(n)
    ]


def test_copy_threshold_finds_the_copies_of_every_repeat_pattern() -> None:
    rng = np.random.default_rng(1)
    pictures = [rng.integers(0, 255, (20, 30)).astype(np.int16) for _ in range(8)]
    patterns = {
        "every picture twice": [2] * 8,
        "three times": [3] * 8,
        "twice, starting on a copy": [1] + [2] * 7,
        "three times, starting on the last copy": [1] + [3] * 7,
        "20 -> 25 fps": [1, 1, 2, 1, 1, 1, 2, 1],
        "15 -> 25 fps": [2, 2, 1, 2, 2, 1, 2, 2],
        "10 -> 25 fps": [3, 2] * 4,
        "12 -> 25 fps": [2, 2, 3, 2, 2, 2, 2, 2],
    }
    for name, pattern in patterns.items():
        frames = _copies(pictures, pattern, rng)[:6]
        threshold = copy_threshold(frames)
        assert threshold is not None, name
        starts = picture_starts(frames, threshold)
        begins = np.cumsum([0] + pattern)
        assert starts == [0] + [int(b) for b in begins if 0 < b < 6], name


def test_one_lone_copy_counts_only_when_it_is_all_but_identical() -> None:
    # 25 -> 30 fps repeats one picture in six frames; ordinary footage often has one quiet frame among busy ones
    rng = np.random.default_rng(3)
    base = rng.integers(60, 200, (40, 60)).astype(np.int16)
    frames = [base + rng.normal(0, 10, base.shape).astype(np.int16) for _ in range(6)]
    quiet = [f.copy() for f in frames]
    quiet[3] = quiet[2] + rng.normal(0, 5, base.shape).astype(np.int16)  # changed by a quarter of the others
    assert copy_threshold(quiet) is None
    copied = [f.copy() for f in frames]
    copied[3] = copied[2] + rng.integers(-1, 2, base.shape)  # the encoder's refinement of a repeated picture
    threshold = copy_threshold(copied)
    assert threshold is not None
    assert picture_starts(copied, threshold) == [0, 1, 2, 4, 5]


def test_distinct_pictures_and_a_flash_are_no_repeats() -> None:
    rng = np.random.default_rng(2)
    pictures = [rng.integers(0, 255, (20, 30)).astype(np.int16) for _ in range(6)]
    assert copy_threshold(pictures) is None
    # a flash in one frame of a stream of distinct pictures is no repeat pattern, wherever it falls
    for at in range(6):
        flash = [p.copy() for p in pictures]
        flash[at] = np.clip(flash[at] + 120, 0, 255)
        assert copy_threshold(flash) is None, at
    assert copy_threshold(pictures[:3]) is None  # too short to tell


def test_a_step_in_brightness_is_served_as_sent(tmp_path: Path) -> None:
    # the light switches on in the middle of a window: small, small, large, small, small changes look like a
    # picture sent three times, but no more pictures follow in three times the frames
    def scene(index: int, t: float, width: int, height: int) -> np.ndarray:
        img = _noisy_picture(index, width, height).astype(np.int16)
        return np.clip(img + (90 if index % 20 >= 3 else 0), 0, 255).astype(np.uint8)

    clip = make_clip(tmp_path / "c.mp4", seconds=6, fps=SENSOR_FPS, gop_seconds=2, scene=scene)
    plain, distinct = decode(clip, [REQ, replace(REQ, distinct=True)])
    assert any(copy_threshold([f.image.astype(np.int16) for f in w]) is not None for w in plain.windows)
    assert [f.time for w in distinct.windows for f in w] == [f.time for w in plain.windows for f in w]


def test_a_window_the_clip_ends_in_is_served_as_sent(tmp_path: Path) -> None:
    # the last 0.3 s of a stream that sends every picture twice hold three pictures: too few for a window of six,
    # so the window keeps its frames as sent instead of shrinking to three
    clip = make_clip(tmp_path / "c.mp4", seconds=6, fps=SENSOR_FPS * 2, gop_seconds=1, scene=_repeating(2))
    late = replace(REQ, window_at=(0.95,))
    plain, distinct = decode(clip, [late, replace(late, distinct=True)])
    assert len(plain.windows[0]) == 6
    assert [f.time for f in distinct.windows[0]] == [f.time for f in plain.windows[0]]
