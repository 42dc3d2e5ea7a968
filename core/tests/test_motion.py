"""The built-in mover analysis: weather flashes are not a mover, a compact persistent object is."""

from __future__ import annotations

import numpy as np
from alarmcloud.contracts import ClipFrames, ClipProbe, Frame
from alarmcloud.motion import mover_score, through_rain
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


def test_a_walker_seen_only_in_part_on_a_steady_course_is_a_mover() -> None:
    """Of someone in a coat as dark as the scene behind only the legs show: an object two cells high, 12 cells further
    on in each of three keyframes. That is faster than a walker two cells high can go (``_linked``), so it was no
    mover (0.00); three keyframes on one straight course at a steady speed make one."""
    bg = _background()

    def key(t: float, i: int) -> np.ndarray:
        img = bg.copy()
        k = round(t / 2)
        if k in (1, 2, 3):
            img[60:68, 48 * k - 40:48 * k - 32] = 20
        return img

    assert mover_score(_clip(lambda t, i: bg, key)) >= MOVER_THRESHOLD

    def scattered(t: float, i: int) -> np.ndarray:  # the same objects off course: back and forth
        img = bg.copy()
        k = round(t / 2)
        if k in (1, 2, 3):
            x = (8, 56, 20)[k - 1]
            img[60:68, x:x + 8] = 20
        return img

    assert mover_score(_clip(lambda t, i: bg, scattered)) < MOVER_THRESHOLD


def test_a_small_dark_figure_on_a_plain_wall_is_no_light_change() -> None:
    """A figure of four cells, evenly darker than the plain wall it passes: each of its cells is the wall's cell made
    darker, as a shadow would be. Too small to tell; it stays an object and its steps make a mover (0.00 when such
    small objects were taken for light)."""
    rng = np.random.default_rng(19)
    wall = np.full((H, W), 110.0)

    def frame(t: float, i: int) -> np.ndarray:
        img = wall.copy()
        x = 40 + 4 * round(t / 2)
        img[60:68, x:x + 8] = 60
        return _noisy(img, rng)

    assert mover_score(_clip(frame, frame)) >= MOVER_THRESHOLD


def test_one_keyframe_flash_is_no_mover() -> None:
    bg = _background()

    def key(t: float, i: int) -> np.ndarray:
        return bg if round(t / 2) != 4 else _lit_rain(bg, np.random.default_rng(5), 30)

    assert mover_score(_clip(lambda t, i: bg, key)) < MOVER_THRESHOLD


def test_a_car_seen_in_one_keyframe_is_a_mover() -> None:
    """A car passing between two keyframes at speed is in one keyframe only (GOP 2 s) and in none of the short
    windows: a big object whose cells all changed to the last pixel is a mover on its own (0.17 before). Near rain
    streaks over the same box fill their cells by half, and stay no mover."""
    bg = _background()

    def car(t: float, i: int) -> np.ndarray:
        img = bg.copy()
        if round(t / 2) == 4:
            img[50:62, 60:100] = 215
        return img

    def streaks(t: float, i: int) -> np.ndarray:
        img = bg.copy()
        if round(t / 2) == 4:
            img[50:62, 60:100:2] = 215  # streaks a pixel wide, a pixel apart
        return img

    assert mover_score(_clip(lambda t, i: bg, car)) >= MOVER_THRESHOLD
    assert mover_score(_clip(lambda t, i: bg, streaks)) < MOVER_THRESHOLD


# --- frames as the analysis requests them (320 px wide): small movers and heavy weather ----------------------------

H2, W2 = 180, 320


def _night(seed: int = 0) -> np.ndarray:
    """A dark infrared scene: a faint texture around grey 30."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(30, 8, (H2 // 6 + 1, W2 // 6 + 1))
    return np.kron(coarse, np.ones((6, 6)))[:H2, :W2].clip(0, 255)


def _noisy(img: np.ndarray, rng: np.random.Generator, sigma: float = 3.0) -> np.ndarray:
    return (img + rng.normal(0, sigma, img.shape)).clip(0, 255).astype(np.uint8)


def _person(img: np.ndarray, t: float, height: float, speed: float, grey: float) -> np.ndarray:
    """A person ``height`` of the frame height walking across at ``speed`` m/s (1.75 m tall), lit by the IR lamp."""
    h = round(height * H2)
    w = max(2, round(h * 0.27))
    x = round(40 + speed / 1.75 * h * t)
    y = 120 - h
    out = img.copy()
    out[y:y + h, x:x + w] = grey
    out[y:y + h // 7, x:x + w] = grey * 0.9  # the head
    return out


def _rain(img: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """Heavy rain in the IR beam: ``n`` bright slanted streaks, 2 px wide and up to 30 px long, new in every frame."""
    out = img.copy()
    for _ in range(n):
        length = int(rng.integers(8, 30))
        y, x = int(rng.integers(0, H2 - length)), int(rng.integers(0, W2 - 12))
        for k in range(length):
            out[y + k, x + k // 6:x + k // 6 + 2] = 220
    return out


def test_small_walking_person_at_night_is_a_mover() -> None:
    """A person of 6 % of the frame height (65 px in 1080p), walking at 1.4 m/s in the IR lamp's light, at night."""
    bg = _night()
    rng = np.random.default_rng(4)
    score = mover_score(_clip(lambda t, i: _noisy(_person(bg, t + i / 15, 0.06, 1.4, 150), rng)))
    assert score >= MOVER_THRESHOLD


def test_slow_small_person_is_a_mover_from_the_keyframes() -> None:
    """At 0.5 m/s a 6 % person hardly moves within a short window; the keyframes show it on its path."""
    bg = _night(1)
    rng = np.random.default_rng(5)
    score = mover_score(_clip(lambda t, i: _noisy(_person(bg, t, 0.06, 0.5, 150), rng)))
    assert score >= MOVER_THRESHOLD


def test_heavy_rain_in_every_frame_at_320_px_is_no_mover() -> None:
    bg = _night(2)
    rng = np.random.default_rng(6)
    assert mover_score(_clip(lambda t, i: _noisy(_rain(bg, rng, 150), rng))) < MOVER_THRESHOLD


def test_person_in_heavy_rain_is_a_mover() -> None:
    """The rain of the test above with a person of 12 % of the height walking through it: so many places change in
    every picture that the person is never the dominant change of a keyframe or of a window's lasting change (the
    score was 0.00). Each window's median of its pictures takes the rain out, and the person is there, in another
    place in each window."""
    for seed in range(3):
        bg = _night(seed)
        rng = np.random.default_rng(10 + seed)
        clip = _clip(lambda t, i, bg=bg, rng=rng: _noisy(_rain(_person(bg, t + i / 15, 0.12, 1.4, 150), rng, 150),
                                                          rng))
        assert mover_score(clip) >= MOVER_THRESHOLD, seed
        background = np.median(np.stack([k.image for k in clip.keyframes]), axis=0)
        assert through_rain(clip, background) == 1.0


def test_a_light_that_comes_on_in_heavy_rain_is_no_mover() -> None:
    """A window lit from 4 to 11 s, in heavy rain: the first two windows' medians show it, against the keyframes'
    background, in the same place both times; it did not move, so it is no mover (without the check that the
    object moved on, it was one)."""
    bg = _night(4)
    rng = np.random.default_rng(14)

    def frame(t: float, i: int) -> np.ndarray:
        img = bg.copy()
        if 4 <= t + i / 15 < 11:
            img[40:70, 200:230] = 160
        return _noisy(_rain(img, rng, 150), rng)

    clip = _clip(frame)
    assert mover_score(clip) < MOVER_THRESHOLD
    assert through_rain(clip, np.median(np.stack([k.image for k in clip.keyframes]), axis=0)) == 0.0


def test_a_dark_figure_on_a_dark_night_is_a_mover() -> None:
    """A figure 18 grey levels darker than the scene, with sensor noise of 6: under the 30 levels of the pixel tests
    (0.00 before), but each window's median picture, whose cells average the noise away, shows it."""
    for seed in range(2):
        bg = _night(seed)
        rng = np.random.default_rng(40 + seed)
        clip = _clip(lambda t, i, bg=bg, rng=rng: _noisy(_person(bg, t + i / 15, 0.12, 1.4, 12), rng, 6.0))
        assert mover_score(clip) >= MOVER_THRESHOLD, seed


def test_dusk_is_no_mover() -> None:
    """Dusk, the light falling by a third over the clip and the sky twice as fast as the ground, is no mover, also
    for the median pictures' cell test, which sees changes of a third of the pixel tests' size."""
    bg = _night(5) + 60  # a grey day
    rng = np.random.default_rng(15)
    sky = 1 + (np.arange(H2)[:, None] < 50)

    def frame(t: float, i: int) -> np.ndarray:
        return _noisy(bg * (1 - 0.35 * sky / 2 * (t + i / 15) / 18), rng)

    clip = _clip(frame)
    assert mover_score(clip) < MOVER_THRESHOLD
    assert through_rain(clip, np.median(np.stack([k.image for k in clip.keyframes]), axis=0)) == 0.0


def test_the_cameras_gain_changes_in_the_rain_are_no_mover() -> None:
    """Auto exposure hunting in the rain: the camera's gain jumps by up to a quarter between pictures, within windows
    and between keyframes, and scales all it sees (rain and noise too). A bright wall changes by more than the pixel
    tests' levels each time, the darker rest does not: without bringing each picture back to its reference's level
    the wall was a big object in several keyframes and in lasting change of a window (a mover, 1.00)."""
    rng = np.random.default_rng(16)
    bg = _night(6) + 40
    bg[20:100, 100:220] = 180 + rng.normal(0, 6, (80, 120))  # a lit wall
    jumps = {1: 1.25, 3: 0.8, 5: 1.2, 8: 0.8}

    def gain(t: float, i: int) -> float:
        if i == 0:
            return jumps.get(round(t / 2.0), 1.0) if t % 2.0 == 0 else 1.0
        return (1.25, 0.8, 1.2)[int(t // 5.4) % 3] if i >= 2 else 1.0

    def frame(t: float, i: int) -> np.ndarray:
        return (_noisy(_rain(bg, rng, 60), rng) * gain(t, i)).clip(0, 255).astype(np.uint8)

    clip = _clip(frame)
    assert mover_score(clip) < MOVER_THRESHOLD
    # someone walking past the wall through the same gain jumps is still a mover
    moving = _clip(lambda t, i: (_noisy(_rain(_person(bg, t + i / 15, 0.12, 1.0, 160), rng, 60), rng)
                                 * gain(t, i)).clip(0, 255).astype(np.uint8))
    assert mover_score(moving) >= MOVER_THRESHOLD


def test_lamp_lit_streaks_near_each_other_in_two_keyframes_are_no_mover() -> None:
    """At night the IR lamp lights the drops near it, so the brightest streak of one keyframe and of the next are
    often a few cells apart, where a small walker could have stepped in 2 s (0.67, a mover, before). A small object
    counts from the keyframes alone where it lies on one path in three keyframes in a row (a walker that small
    crosses slower than that); two keyframes no longer do."""
    bg = _night(9).astype(np.uint8)
    rng = np.random.default_rng(18)

    def key(t: float, i: int) -> np.ndarray:
        img = bg.copy()
        k = round(t / 2)
        if k in (4, 5):
            x = 148 if k == 4 else 156
            for j in range(16):  # a streak 2 px wide, a little slanted
                img[60 + j, x + j // 8:x + j // 8 + 2] = 200
        return _noisy(img, rng)

    assert mover_score(_clip(lambda t, i: _noisy(bg, rng), key)) < MOVER_THRESHOLD


def _cloud_shadow(t: float) -> np.ndarray:
    """A cloud's soft shadow, 40 % darker, its edge blurred over a sixth of the picture, moving at 5 % of the width
    per second: the picture dark at first, then the light coming in from the left."""
    x = np.arange(W2, dtype=np.float64)[None, :]
    return 1 - 0.4 / (1 + np.exp(-(x - 0.05 * W2 * t + 60) / (0.15 * W2 / 4)))


def test_a_cloud_shadow_crossing_the_picture_is_no_mover() -> None:
    """The shadow darkens a big part of the picture in some keyframes and of some windows' median pictures: a big
    object in several keyframes, a mover (1.00) before the check that the changed pixels are the scene's own, each
    cell of it darker. A slow person who walks through the same light (found from the keyframes) is still a mover."""
    bg = _night(7) + 80  # a textured grey day
    rng = np.random.default_rng(17)
    clip = _clip(lambda t, i: _noisy(bg * _cloud_shadow(t + i / 15), rng))
    assert mover_score(clip) < MOVER_THRESHOLD
    moving = _clip(lambda t, i: _noisy(_person(bg, t, 0.12, 0.5, 20) * _cloud_shadow(t + i / 15), rng))
    assert mover_score(moving) >= MOVER_THRESHOLD


def test_heavy_snow_is_no_mover() -> None:
    """Big flakes that drift down a few pixels per frame: every one is a small change that moves on."""
    bg = _night(3)
    rng = np.random.default_rng(7)
    n = 500
    x0, y0 = rng.uniform(0, W2, n), rng.uniform(0, H2, n)
    vx, vy = rng.normal(0, 8, n), rng.uniform(20, 60, n)  # px per second
    size = rng.integers(1, 4, n)

    def frame(t: float, i: int) -> np.ndarray:
        img = bg.copy()
        tt = t + i / 15
        xs, ys = ((x0 + vx * tt) % (W2 - 4)).astype(int), ((y0 + vy * tt) % (H2 - 4)).astype(int)
        for x, y, s in zip(xs, ys, size, strict=True):
            img[y:y + s, x:x + s] = 200
        return _noisy(img, rng)

    assert mover_score(_clip(frame)) < MOVER_THRESHOLD


def test_near_drops_far_apart_in_two_keyframes_are_no_mover() -> None:
    """Two keyframes each with one bright drop near the lens in different places: a person-sized streak, but no one
    walks that far in 2 s."""
    bg = _night(4).astype(np.uint8)

    def key(t: float, i: int) -> np.ndarray:
        k = round(t / 2)
        img = bg.copy()
        if k in (3, 4):
            x = 20 if k == 3 else 250
            img[60:76, x:x + 3] = 220
        return img

    assert mover_score(_clip(lambda t, i: bg, key)) < MOVER_THRESHOLD
