"""Black bars burnt into the picture (an export's or an edit's letterbox or pillarbox) are left out of the analysis.

Bars hold no evidence: rain cannot fall there. Left in, they count as picture where nothing happens, and rain that
covers the whole scene between them looks as local as a mover to the spread features (measured on 120 held-out
clips: a quarter of the weather clips lost with bars at the sides, README "Checked on 2026-11-25").
"""

from __future__ import annotations

import numpy as np
import pytest
from alarmcloud_detect_rain.features import WINDOW_LENGTH, _bars, window_analysis

H, W = 360, 640


def _content(h: int, w: int, seed: int = 3) -> list[np.ndarray]:
    """Six grey frames of a textured scene with thin rain streaks at new places in each frame and sensor noise."""
    rng = np.random.default_rng(seed)
    small = rng.integers(50, 190, size=(h // 10 + 1, w // 10 + 1)).astype(np.float32)
    scene = np.repeat(np.repeat(small, 10, axis=0), 10, axis=1)[:h, :w]
    frames = []
    for _ in range(WINDOW_LENGTH):
        f = scene.copy()
        for _ in range(300):
            y, x, n = int(rng.integers(0, h - 20)), int(rng.integers(0, w - 4)), int(rng.integers(6, 18))
            f[y + np.arange(n), x + np.arange(n) // 8] += rng.uniform(25, 60)
        f += rng.normal(0, 1.5, f.shape)
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return frames


def _framed(content: list[np.ndarray], top: int, bottom: int, left: int, right: int, black: int) -> list[np.ndarray]:
    out = []
    for f in content:
        frame = np.full((H, W), black, np.uint8)
        frame[top : H - bottom, left : W - right] = f
        out.append(frame)
    return out


@pytest.mark.parametrize("bars,black", [((0, 0, 80, 80), 16), ((46, 46, 0, 0), 0), ((30, 0, 0, 0), 16)])
def test_the_picture_between_black_bars_is_analysed_as_if_it_came_alone(bars: tuple[int, int, int, int],
                                                                       black: int) -> None:
    top, bottom, left, right = bars
    content = _content(H - top - bottom, W - left - right)
    alone, alone_maps = window_analysis(content, maps=True)
    framed, framed_maps = window_analysis(_framed(content, *bars, black), maps=True)
    assert np.array_equal(framed, alone)  # every feature, bit for bit
    # the maps keep every window's shape (one batch for the CNN): the bars' part is zero, the rest the picture's
    full = window_analysis(_content(H, W), maps=True)[1]
    assert framed_maps is not None and alone_maps is not None and full is not None
    assert framed_maps.shape == full.shape
    inner = framed_maps[:, top : framed_maps.shape[1] - bottom, left : framed_maps.shape[2] - right]
    assert np.array_equal(inner, alone_maps)
    assert not framed_maps[:, :top].any() and not framed_maps[:, :, :left].any()


def test_a_dark_sky_is_not_taken_for_a_bar() -> None:
    """A night sky, dark and (under a starved encoder) unchanged over the window, still has texture: it stays in."""
    rng = np.random.default_rng(4)
    sky = rng.integers(4, 20, size=(120, W)).astype(np.uint8)  # frozen: the same in every frame
    frames = _content(H, W)
    for f in frames:
        f[:120] = sky
    assert _bars(np.stack(frames).astype(np.float32)) == (0, 0, 0, 0)


def test_a_thin_dark_edge_or_bars_leaving_too_little_are_not_cut() -> None:
    frames = np.stack(_framed(_content(H - 4, W), 2, 2, 0, 0, 16)).astype(np.float32)
    assert _bars(frames) == (0, 0, 0, 0)  # 2 rows: a dark edge of the lens or the scaler, not a bar
    frames = np.stack(_framed(_content(H, W // 3), 0, 0, W // 3, W - 2 * (W // 3), 0)).astype(np.float32)
    assert _bars(frames) == (0, 0, 0, 0)  # two thirds of the width black: not a picture with bars
