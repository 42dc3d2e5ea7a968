"""A camera that pans while it records: a PTZ camera turning to a preset or on patrol, a hand-held camera.

Every edge of the scene moves by several pixels per frame, further than camera shake (``_MAX_SHIFT``). Left as it
is, or moved back only as far as shake goes, the window's frames do not line up, and every edge brightens some
pixels for one frame: to the features that is rain everywhere. The detector widens its search when a frame moved
further than shake, keeps the wider shift when the whole picture agrees with it, and measures rain on the part of
the scene all frames show.
"""

from __future__ import annotations

import numpy as np
import pytest
from alarmcloud_detect_rain.features import FEATURE_NAMES, WINDOW_LENGTH, window_analysis, window_features
from PIL import Image, ImageDraw, ImageFont

H, W = 360, 640
SPIKES = FEATURE_NAMES.index("log_spike_8")
MATCHED = FEATURE_NAMES.index("mf_log_best_3.5")
SHAKE = FEATURE_NAMES.index("shake_px")


def _scene() -> np.ndarray:
    """A textured street-like picture wider than the frame (room for the pan), smoothed a little."""
    small = np.random.default_rng(5).integers(40, 200, size=(H // 12 + 8, W // 12 + 12)).astype(np.float32)
    big = np.repeat(np.repeat(small, 12, axis=0), 12, axis=1)
    return (big[:-2, :-2] + big[1:-1, 1:-1] + big[2:, 2:] + big[1:-1, :-2]) / 4


_SCENE = _scene()


def _window(step: tuple[int, int], streaks: int, mover: bool = False) -> list[np.ndarray]:
    """Six grey frames of the scene seen by a camera turning ``step`` (dy, dx) pixels per frame, with ``streaks``
    thin rain streaks at new places in each frame and sensor noise; ``mover``: a large bright van crossing the
    still scene at 12 px per frame instead."""
    rng = np.random.default_rng(7)
    frames = []
    for t in range(WINDOW_LENGTH):
        y0, x0 = 40 + step[0] * t, 64 + step[1] * t
        f = _SCENE[y0 : y0 + H, x0 : x0 + W].copy()
        if mover:
            f[120:330, 40 + 12 * t : 340 + 12 * t] = 235.0
        for _ in range(streaks):
            y, x, n = int(rng.integers(0, H - 20)), int(rng.integers(0, W - 4)), int(rng.integers(6, 18))
            f[y + np.arange(n), x + np.arange(n) // 8] += rng.uniform(25, 60)
        f += rng.normal(0, 1.5, f.shape)
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return frames


@pytest.mark.parametrize("step", [(0, 8), (0, -6), (4, 9)])
def test_a_pan_is_undone_and_adds_no_rain_evidence(step: tuple[int, int]) -> None:
    still = window_features(_window((0, 0), 0))
    panned = window_features(_window(step, 0))
    # log10 densities: within 0.3 is within a factor of two (frames left as a pan moved them spike 100 times more)
    for k in (SPIKES, MATCHED):
        assert abs(panned[k] - still[k]) < 0.3, (FEATURE_NAMES[k], still[k], panned[k])
    # the model was trained on shake of up to 5 pixels per frame: the feature stays in that range
    assert 0 < panned[SHAKE] <= 10


@pytest.mark.parametrize("step", [(0, 8), (4, 9)])
def test_rain_is_still_seen_while_the_camera_pans(step: tuple[int, int]) -> None:
    clear = window_features(_window(step, 0))
    rain = window_features(_window(step, 400))
    assert rain[SPIKES] > clear[SPIKES] + 1.0  # ten times the density of bright one-frame changes
    assert rain[MATCHED] > clear[MATCHED] + 0.5


def test_a_panned_window_has_the_maps_of_a_still_one() -> None:
    """The spike-map CNN reads every window's maps in one batch: a pan's wider crop is padded back."""
    _, still = window_analysis(_window((0, 0), 400), maps=True)
    _, panned = window_analysis(_window((3, 10), 400), maps=True)
    assert still is not None and panned is not None
    assert panned.shape == still.shape
    # frames 3 before / 2 after the middle one moved 9 / 6 rows and 30 / 20 columns: beyond the 5 pixels of shake,
    # 4 rows and 25 columns on each side are not seen by every frame (zero: no brightening there)
    for edge in (panned[:, :4], panned[:, -4:], panned[:, :, :25], panned[:, :, -25:]):
        assert not edge.any()
    assert np.count_nonzero(panned[:, 4:-4, 25:-25] > 3) > 1000  # the rain inside is there


def test_a_large_mover_on_a_still_scene_is_not_taken_for_a_pan() -> None:
    """A van filling half the picture pulls the column profiles along with it; aligning the frames to the van
    would move the whole still scene instead. The pan is only kept when the whole picture agrees."""
    with_van = window_features(_window((0, 0), 0, mover=True))
    assert with_van[SHAKE] <= 2  # not moved by the van's 12 px per frame


def _with_clock(frames: list[np.ndarray]) -> list[np.ndarray]:
    """The camera's date/time line and name burnt in: the same pixels in every frame while the scene pans."""
    font = ImageFont.load_default(size=16)
    out = []
    for f in frames:
        img = Image.fromarray(f)
        draw = ImageDraw.Draw(img)
        draw.text((16, 12), "2026-11-25 21:04:05", font=font, fill=255, stroke_width=1, stroke_fill=0)
        draw.text((W - 16, H - 12), "Carport", font=font, fill=255, stroke_width=1, stroke_fill=0, anchor="rs")
        out.append(np.asarray(img))
    return out


@pytest.mark.parametrize("step", [(0, 8), (4, 9)])
@pytest.mark.parametrize("streaks", [0, 400])
def test_burnt_in_text_on_a_panning_camera_adds_no_rain_evidence(step: tuple[int, int], streaks: int) -> None:
    """Undoing the pan moves the text, which did not pan, by up to 45 pixels; it is held still there."""
    plain = window_features(_window(step, streaks))
    with_text = window_features(_with_clock(_window(step, streaks)))
    for k in (SPIKES, MATCHED):
        assert abs(with_text[k] - plain[k]) < 0.2, (FEATURE_NAMES[k], plain[k], with_text[k])
