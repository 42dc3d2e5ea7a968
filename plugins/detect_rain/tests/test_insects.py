"""Moths at the IR lamp: the insects detector and the verdicts it leads to through the core pipeline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from alarmcloud.contracts import ClipFrames
from alarmcloud.plugins import PluginHost
from alarmcloud.testing import make_clip
from alarmcloud_detect_rain import plugin
from alarmcloud_detect_rain.insects import (
    FINE_CELL,
    InsectDetector,
    Region,
    headlight_pair,
    insect_score,
    is_infrared,
    steady_mover,
    window_regions,
)

Scene = Callable[[int, float, int, int], np.ndarray]
FramesOf = Callable[[Path], ClipFrames]


def _night_background(w: int, h: int) -> np.ndarray:
    rng = np.random.default_rng(5)
    small = rng.integers(40, 170, size=(h // 16 + 1, w // 16 + 1)).astype(np.float32)
    img = np.repeat(np.repeat(small, 16, axis=0), 16, axis=1)[:h, :w]
    return img * 0.4 + 10


def night_scene(moths: int = 2, person: bool = False, colour: bool = False, seed: int = 0,
                headlight: bool = False, person_height: float = 1 / 3) -> Scene:
    """A grey IR picture; ``moths`` out-of-focus glows jumping about near the lens; a person walking across."""

    def draw(i: int, t: float, w: int, h: int) -> np.ndarray:
        rng = np.random.default_rng(seed * 1000 + i)
        img = _night_background(w, h)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        for k in range(moths):
            # erratic: a new place near the lamp every frame, a big soft rim (far out of focus)
            cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
            r = 25 + 15 * k  # moths differ in size and in how much of the lamp's light they catch
            d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
            img = img + (150 - 40 * k) / (1 + np.exp((d - r) / (0.4 * r)))
        if headlight:  # a car whose body is as dark as the night: only its headlight's soft glow drives across
            hx = 20 + 7 * i
            img = img + 170 * np.exp(-((xx - hx) ** 2 + (yy - 0.7 * h) ** 2) / 500.0)
        if person:
            ph = int(h * person_height)
            pw = max(2, w // 14 if person_height >= 1 / 3 else ph // 3)
            x, y = int(20 + 5 * i) % (w - pw), h // 2
            img[y : y + ph, x : x + pw] = 170
            img[y - pw // 2 : y, x + pw // 4 : x + 3 * pw // 4] = 190
        img = img + rng.normal(0, 4, (h, w))
        out = np.repeat(np.clip(img, 0, 255)[..., None], 3, axis=2)
        if colour:  # a day picture: the same scene with colour in it
            out = out * np.array([1.0, 0.85, 0.6])
        return np.clip(out, 0, 255).astype(np.uint8)

    return draw


@pytest.fixture(scope="module")
def night_clips(tmp_path_factory: pytest.TempPathFactory, night_clips_of: Callable[..., dict[str, Path]]
                ) -> dict[str, Path]:
    """8 s 640x360 clips at 10 fps with a keyframe every second (8 keyframes)."""
    return night_clips_of(tmp_path_factory.mktemp("insects"), {
        "moths": night_scene(2, seed=1), "moths_person": night_scene(2, person=True, seed=2),
        "person": night_scene(0, person=True, seed=3), "clear": night_scene(0, seed=4),
        "moths_day": night_scene(2, colour=True, seed=5), "moths_headlight": night_scene(2, seed=6, headlight=True)})


def test_moth_glows_are_explained(night_clips: dict[str, Path], insect_frames: FramesOf) -> None:
    score, regions = insect_score(insect_frames(night_clips["moths"]))
    assert score >= 0.5
    assert regions and all(r.insect_like() for r in regions)
    (finding,) = InsectDetector().analyze(insect_frames(night_clips["moths"]))
    assert finding.label == "insect" and finding.detector == "insects" and finding.box is not None


def test_person_among_moths_is_not_explained(night_clips: dict[str, Path], insect_frames: FramesOf) -> None:
    for name in ("moths_person", "person"):
        score, regions = insect_score(insect_frames(night_clips[name]))
        assert score == 0.0, name
        assert any(not r.insect_like() for r in regions), name  # the person's outline
        assert InsectDetector().analyze(insect_frames(night_clips[name])) == []


def test_a_small_person_among_moths_is_not_explained(host: PluginHost, tmp_path: Path, insect_frames: FramesOf) -> None:
    """A person of 5 % of the picture's height is a mover to the motion analysis (its 4 px grid at 320 px) but
    fills no cell of the coarse grid: judged on its own, their outline keeps the alarm."""
    from alarmcloud.pipeline import analyze_file

    path = make_clip(tmp_path / "small.mp4", seconds=8, width=640, height=360, fps=10, gop_seconds=1.0,
                     scene=night_scene(2, person=True, seed=7, person_height=0.05))
    score, found = insect_score(insect_frames(path))
    assert score == 0.0
    assert any(r.cell == FINE_CELL and not r.insect_like() for r in found)
    assert analyze_file(host, path, ["rain", "insects"]).verdict == "alarm"


def test_a_headlight_driving_among_moths_is_not_explained(night_clips: dict[str, Path],
                                                          insect_frames: FramesOf) -> None:
    frames = insect_frames(night_clips["moths_headlight"])
    assert any(steady_mover(w) for w in window_regions(frames))  # the glow that keeps its course
    assert InsectDetector().analyze(frames) == []


def _glow(t: float, x: float, y: float, cells: int = 6, peak: float = 120.0) -> Region:
    return Region(time=t, cells=cells, peak=peak, bright_share=1.0, edge_width=8.0, sharp_share=0.05, outline=0.1,
                  box=(0.0, 0.0, 0.1, 0.1), center=(x, y))


def test_steady_course_is_a_vehicle_erratic_flight_is_not() -> None:
    straight = [[_glow(i, 50 + 9 * i, 80 + 1 * i)] for i in range(5)]
    assert steady_mover(straight)
    zigzag = [[_glow(i, 50 + 9 * i, 80 + (12 if i % 2 else 0))] for i in range(5)]
    assert not steady_mover(zigzag)
    hovering = [[_glow(i, 50 + 0.3 * i, 80)] for i in range(5)]  # too slow to tell: no vehicle claimed
    assert not steady_mover(hovering)


def test_two_alike_glows_side_by_side_are_headlights() -> None:
    assert headlight_pair([_glow(0, 100, 80), _glow(0, 140, 81)])
    assert not headlight_pair([_glow(0, 100, 80), _glow(0, 140, 130)])  # different heights
    assert not headlight_pair([_glow(0, 100, 80), _glow(0, 140, 80, cells=20, peak=200)])  # unlike


def test_day_pictures_and_still_nights_have_no_insect_finding(night_clips: dict[str, Path],
                                                              insect_frames: FramesOf) -> None:
    assert not is_infrared(insect_frames(night_clips["moths_day"]))
    assert is_infrared(insect_frames(night_clips["moths"]))
    assert InsectDetector().analyze(insect_frames(night_clips["moths_day"])) == []
    assert InsectDetector().analyze(insect_frames(night_clips["clear"])) == []


@pytest.mark.parametrize(("name", "verdict"), [
    ("moths", "false_alarm:insect"),  # the moths are the mover
    ("moths_person", "alarm"),  # a burglar among the moths
    ("person", "alarm"),
    ("moths_day", "alarm"),  # the insect analysis is for infrared night pictures only
    ("moths_headlight", "alarm"),
    ("clear", "false_alarm:no_motion"),
])
def test_verdicts_through_the_pipeline(host: PluginHost, night_clips: dict[str, Path], name: str,
                                       verdict: str) -> None:
    from alarmcloud.pipeline import analyze_file

    res = analyze_file(host, night_clips[name], ["rain", "insects"])
    assert res.verdict == verdict, (res.mover_score, res.findings)
    if name.startswith("moths"):
        assert res.mover, "the moths must fire the core's motion analysis, else this test shows nothing"


def test_without_the_insect_detector_moths_are_alarms(host: PluginHost, night_clips: dict[str, Path]) -> None:
    from alarmcloud.pipeline import analyze_file

    assert analyze_file(host, night_clips["moths"], ["rain"]).verdict == "alarm"


def test_hook_registers_the_insect_detector() -> None:
    specs = {s.name: s for s in plugin.register_detectors()}
    spec = specs["insects"]
    assert spec.labels == ("insect", "web")
    det = spec.factory(None)
    assert isinstance(det, InsectDetector)
    assert det.mover_explaining_labels == {"insect", "web"} <= det.false_alarm_labels
    assert spec.privacy is not None and "none beyond the finding" in spec.privacy.retention
