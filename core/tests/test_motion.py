"""The built-in mover analysis: weather flashes are not a mover, a compact persistent object is."""

from __future__ import annotations

import numpy as np
from alarmcloud.contracts import ClipFrames, ClipProbe, Frame
from alarmcloud.motion import mover_score
from alarmcloud.pipeline import MOVER_THRESHOLD

H, W = 90, 160
PROBE = ClipProbe(container="mp4", video_codec="h264", width=1920, height=1080, fps=15.0, duration=18.0,
                  size_bytes=1)


def _background(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(110, 20, (H, W))).clip(0, 255).astype(np.uint8)


def _streaks(img: np.ndarray, rng: np.random.Generator, n: int, width: int = 1) -> np.ndarray:
    """Bright slanted rain streaks, visible in one frame only (near the lens they are wide and long)."""
    out = img.copy()
    for _ in range(n):
        y, x = int(rng.integers(0, H - 12)), int(rng.integers(0, W - 4 - width))
        for k in range(10):
            xs = min(W - width, x + k // 4)
            out[y + k, xs:xs + width] = 250
    return out


def _lit_rain(img: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """Streaks crowded in one bright area (rain under a street lamp or in an IR beam) plus a few elsewhere."""
    out = img.copy()
    for _ in range(n):
        y, x = int(rng.integers(20, 50)), int(rng.integers(40, 86))
        for k in range(10):
            out[y + k, x + k // 4:x + k // 4 + 2] = 250
    return _streaks(out, rng, 10)


def _clip(frame_at, key_at=None) -> ClipFrames:  # noqa: ANN001
    windows = [[Frame(t + i / 15, frame_at(t, i)) for i in range(5)] for t in (4.5, 9.9, 15.3)]
    keys = [Frame(2.0 * k, (key_at or frame_at)(2.0 * k, 0), keyframe=True) for k in range(9)]
    return ClipFrames(probe=PROBE, keyframes=keys, windows=windows)


def test_heavy_rain_with_streaks_in_every_frame_is_no_mover() -> None:
    bg = _background()
    rng = np.random.default_rng(1)
    assert mover_score(_clip(lambda t, i: _streaks(bg, rng, 60))) < MOVER_THRESHOLD


def test_rain_in_the_first_frame_of_a_window_is_not_lasting_change() -> None:
    """A window whose first frame caught a burst of streaks must not make every later frame look changed."""
    bg = _background()
    rng = np.random.default_rng(2)
    score = mover_score(_clip(lambda t, i: _lit_rain(bg, rng, 30) if i == 0 else bg, lambda t, i: bg))
    assert score < MOVER_THRESHOLD


def test_walking_object_is_a_mover_even_in_rain() -> None:
    bg = _background()
    rng = np.random.default_rng(3)

    def frame(t: float, i: int) -> np.ndarray:
        img = _streaks(bg, rng, 40)
        x = int(8 + (t + i / 15) * 7) % (W - 20)  # a person crossing the yard in ~18 s
        img[30:75, x:x + 14] = 30
        return img

    assert mover_score(_clip(frame)) >= MOVER_THRESHOLD


def test_static_scene_is_no_mover() -> None:
    bg = _background()
    assert mover_score(_clip(lambda t, i: bg)) == 0.0


def test_verdicts() -> None:
    from alarmcloud import Finding
    from alarmcloud.pipeline import verdict_for

    class Rain:
        false_alarm_labels = ("rain", "snow")

    rain, plate = Finding("rain", "rain", 0.9), Finding("plates", "plate", 0.9, text="B AB 123")
    dets: list = [Rain()]
    assert verdict_for([rain], mover=True, detectors=dets) == "alarm"  # a burglar in the rain
    assert verdict_for([rain], mover=False, detectors=dets) == "false_alarm:rain"
    assert verdict_for([rain, plate], mover=False, detectors=dets) == "false_alarm:rain"  # parked car in the rain
    assert verdict_for([plate], mover=False, detectors=dets) == "alarm"
    assert verdict_for([], mover=False, detectors=dets) == "false_alarm:no_motion"


def test_quick_crossing_seen_in_two_keyframes_is_a_mover() -> None:
    """Someone walking through in ~4 s appears in two keyframes (GOP 2 s) and in none of the short windows."""
    bg = _background()

    def key(t: float, i: int) -> np.ndarray:
        img = bg.copy()
        k = round(t / 2)
        if k in (3, 4):
            img[30:75, 20 + 12 * k:34 + 12 * k] = 30
        return img

    assert mover_score(_clip(lambda t, i: bg, key)) >= MOVER_THRESHOLD


def test_one_keyframe_flash_is_no_mover() -> None:
    bg = _background()

    def key(t: float, i: int) -> np.ndarray:
        return bg if round(t / 2) != 4 else _lit_rain(bg, np.random.default_rng(5), 30)

    assert mover_score(_clip(lambda t, i: bg, key)) < MOVER_THRESHOLD
