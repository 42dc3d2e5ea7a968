"""A camera's burnt-in date/time line under camera shake.

Every IP camera writes its clock and name into the picture. When the camera shakes, the detector moves each frame
back into place, and the text, which did not shake, then moves against the picture: white letters with a dark
outline jump by a few pixels from frame to frame, which looks like bright one-frame streaks. The text is held still
instead, so it adds no rain evidence, and rain elsewhere in the picture is still seen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from alarmcloud.testing import make_clip
from alarmcloud_detect_rain.detector import RainDetector
from alarmcloud_detect_rain.features import FEATURE_NAMES, WINDOW_LENGTH, window_features
from PIL import Image, ImageDraw, ImageFont

H, W = 360, 640
#: whole-pixel shake per frame (dy, dx) of the feature windows; the middle frame (index 3) is the reference
SHAKE = [(2, -1), (0, 2), (-2, 1), (0, 0), (1, -2), (-1, 0)]
SPIKES = FEATURE_NAMES.index("log_spike_8")
FLAT = FEATURE_NAMES.index("log_flat_spike_8")
MATCHED = FEATURE_NAMES.index("mf_log_best_3.5")
_FONT = ImageFont.load_default(size=16)


def _scene() -> np.ndarray:
    """A street-like picture larger than the frame: blocks of texture with edges, smoothed a little."""
    small = np.random.default_rng(5).integers(40, 200, size=(H // 12 + 3, W // 12 + 3)).astype(np.float32)
    big = np.repeat(np.repeat(small, 12, axis=0), 12, axis=1)
    return (big[:-2, :-2] + big[1:-1, 1:-1] + big[2:, 2:] + big[1:-1, :-2]) / 4


_SCENE = _scene()


def _frame(rng: np.random.Generator, shake: tuple[int, int], streaks: int, clock: str | None) -> np.ndarray:
    """One grey picture: the scene moved by ``shake``, ``streaks`` thin slightly tilted rain streaks at new places,
    sensor noise, and with a ``clock`` the camera's text written last (the same pixels whatever the shake)."""
    dy, dx = shake
    f = _SCENE[10 + dy : 10 + dy + H, 10 + dx : 10 + dx + W].copy()
    for _ in range(streaks):
        y, x, n = int(rng.integers(0, H - 20)), int(rng.integers(0, W - 4)), int(rng.integers(6, 18))
        f[y + np.arange(n), x + np.arange(n) // 8] += rng.uniform(25, 60)
    f += rng.normal(0, 1.5, f.shape)
    img = Image.fromarray(np.clip(f, 0, 255).astype(np.uint8))
    if clock is not None:
        draw = ImageDraw.Draw(img)
        draw.text((16, 12), f"2026-11-24 {clock}", font=_FONT, fill=255, stroke_width=1, stroke_fill=0)
        draw.text((W - 16, H - 12), "Carport", font=_FONT, fill=255, stroke_width=1, stroke_fill=0, anchor="rs")
    return np.asarray(img)


def _window(rain: bool, osd: bool) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    frames = [_frame(rng, s, 600 if rain else 0, "21:04:05" if osd else None) for s in SHAKE]
    assert len(frames) == WINDOW_LENGTH
    return frames


@pytest.mark.parametrize("rain", [False, True])
def test_burnt_in_text_under_camera_shake_adds_no_rain_evidence(rain: bool) -> None:
    plain = window_features(_window(rain, osd=False))
    with_text = window_features(_window(rain, osd=True))
    assert plain[FEATURE_NAMES.index("shake_px")] > 0  # the shake was found and undone
    # log10 densities: within 0.1 is within 26 % (the moving text made them 14 to 260 times the plain ones)
    for k in (SPIKES, FLAT, MATCHED):
        assert abs(with_text[k] - plain[k]) < 0.1, (FEATURE_NAMES[k], plain[k], with_text[k])


def test_rain_under_the_text_still_spikes() -> None:
    clear = window_features(_window(rain=False, osd=True))
    rain = window_features(_window(rain=True, osd=True))
    assert rain[SPIKES] > clear[SPIKES] + 1.0  # ten times the density of bright one-frame changes
    assert rain[MATCHED] > clear[MATCHED] + 0.5


@pytest.mark.parametrize("streaks", [100, 400])
def test_rain_on_a_shaking_camera_with_its_clock_in_the_picture_is_rain(
    detector: RainDetector, clip_dir: Path, frames_for, streaks: int
) -> None:
    """A real H.264 clip of a camera on a swaying pole in the rain, its clock ticking in the corner: the verdict
    and its label are those of the same clip without the text (the moving text once made it "snow")."""
    verdicts = {}
    for osd in (False, True):

        def scene(i: int, t: float, w: int, h: int, osd: bool = osd) -> np.ndarray:
            rng = np.random.default_rng(100 + i)
            shake = (int(rng.integers(-2, 3)), int(rng.integers(-2, 3)))
            grey = _frame(rng, shake, streaks, f"21:04:{int(t):02d}" if osd else None)
            return np.repeat(grey[..., None], 3, axis=2)

        path = clip_dir / f"rain_shake_osd_{streaks}_{osd}.mp4"
        make_clip(path, seconds=6, width=W, height=H, fps=15, gop_seconds=1.0, scene=scene)
        findings = detector.analyze(frames_for(detector, path))
        verdicts[osd] = [f.label for f in findings]
    assert verdicts[False] == ["rain"]
    assert verdicts[True] == verdicts[False]
