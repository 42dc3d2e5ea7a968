"""The detector on real H.264 clips decoded by the core pipeline, and its contract."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from alarmcloud import motion
from alarmcloud.contracts import ClipFrames, Detector, Frame
from alarmcloud.testing import make_clip
from alarmcloud.video import decode
from alarmcloud_detect_rain.detector import RainConfig, RainDetector
from alarmcloud_detect_rain.features import FEATURE_NAMES, WINDOW_LENGTH


def test_contract(detector: RainDetector) -> None:
    assert isinstance(detector, Detector)
    assert detector.name == "rain"
    assert detector.labels == ("rain", "snow")
    assert detector.false_alarm_labels == frozenset({"rain", "snow"})
    req = detector.frame_request()
    assert req.color == "gray" and not req.keyframes
    assert req.window_length == WINDOW_LENGTH >= 5 and len(req.window_at) == 3
    # a streak lasts one field: interlaced frames are served as their top field (measured in the README)
    assert req.distinct and req.one_field


def test_windows_are_decoded_once_with_the_motion_analysis(tmp_path: Path) -> None:
    """In an 18 s alarm clip (2 s GOP) the rain windows start at the keyframes of the core's motion windows, so the
    pipeline's single decode serves both and the rain detector adds one frame per window, not three windows."""
    path = make_clip(tmp_path / "alarm.mp4", seconds=18, width=320, height=180, fps=15, gop_seconds=2.0)
    motion_frames, rain_frames = decode(path, [motion.REQUEST, RainDetector().frame_request()])
    assert [w[0].time for w in rain_frames.windows] == [w[0].time for w in motion_frames.windows]
    assert [len(w) for w in rain_frames.windows] == [WINDOW_LENGTH] * 3


@pytest.mark.parametrize("name", ["rain", "night_rain"])
def test_rain_is_detected(detector: RainDetector, clips: dict[str, Path], name: str, frames_for) -> None:
    findings = detector.analyze(frames_for(detector, clips[name]))
    assert len(findings) == 1
    f = findings[0]
    assert f.detector == "rain" and f.label in detector.labels
    assert f.score >= detector.threshold
    assert f.time is not None and f.time >= 0
    out = f.to_dict()
    assert set(out) == {"detector", "label", "score", "time"}


@pytest.mark.parametrize("night", [False, True])
def test_rain_from_a_camera_that_sends_every_picture_twice(detector: RainDetector, clip_dir: Path, night: bool,
                                                           frames_for, make_rain_scene) -> None:
    """A camera that keeps 30 fps while its sensor delivers 15 pictures (and footage re-encoded to a higher rate)
    sends every picture twice: a drop then lasts two frames. The detector asks the core for distinct pictures."""
    rain = make_rain_scene(1500 if night else 900, night=night)

    def twice(i: int, t: float, w: int, h: int) -> np.ndarray:
        return rain(i // 2, t, w, h)

    path = clip_dir / f"rain_twice_{night}.mp4"
    make_clip(path, seconds=5, width=640, height=360, fps=30, gop_seconds=1.0, scene=twice)
    frames = frames_for(detector, path)
    findings = detector.analyze(frames)
    assert [f.label for f in findings] == ["rain"]
    assert all(np.isclose(b.time - a.time, 1 / 15, atol=1e-3) for w in frames.windows for a, b in pairwise(w))
    # the frames as sent hold each picture twice: drops last two frames and look less like rain (at night, where
    # the encoder spreads each picture over both copies, not like rain at all)
    (as_sent,) = decode(path, [replace(detector.frame_request(), distinct=False)])
    assert detector.scores(as_sent)["clear"] > detector.scores(frames)["clear"]
    if night:
        assert detector.analyze(as_sent) == []


@pytest.mark.parametrize("name", ["person", "vegetation", "static", "night_clear"])
def test_clear_clips_are_not_rain(detector: RainDetector, clips: dict[str, Path], name: str, frames_for) -> None:
    frames = frames_for(detector, clips[name])
    assert detector.analyze(frames) == []
    assert detector.scores(frames)["clear"] > 0.5


def test_threshold_decides(clips: dict[str, Path], frames_for) -> None:
    strict = RainDetector(RainConfig(threshold=1.0))
    lenient = RainDetector(RainConfig(threshold=0.0))
    frames = frames_for(strict, clips["rain"])
    assert strict.analyze(frames) == []
    assert len(lenient.analyze(frames)) == 1
    # a per-camera option overrides the configured threshold
    frames.options = {"threshold": 1.0}
    assert lenient.analyze(frames) == []


def test_rain_scores_higher_than_distractors(detector: RainDetector, clips: dict[str, Path], frames_for) -> None:
    def weather(name: str) -> float:
        return 1 - detector.scores(frames_for(detector, clips[name]))["clear"]

    assert weather("rain") > max(weather("person"), weather("vegetation")) + 0.3


def test_no_usable_windows_gives_no_finding(detector: RainDetector, clips: dict[str, Path], frames_for) -> None:
    frames = frames_for(detector, clips["rain"])
    short = ClipFrames(probe=frames.probe, windows=[w[:3] for w in frames.windows])
    assert detector.analyze(short) == []
    assert detector.analyze(ClipFrames(probe=frames.probe)) == []


def test_features_are_finite_one_row_per_window(detector: RainDetector, clips: dict[str, Path], frames_for) -> None:
    """(What a clip costs is measured in the README's Cost section, not asserted here.)"""
    frames = frames_for(detector, clips["rain"])
    x, times = detector.features(frames)
    assert x.shape == (3, len(FEATURE_NAMES)) and np.isfinite(x).all()
    assert times == sorted(times)


@pytest.mark.parametrize("size", [(640, 480), (480, 640)])
def test_pictures_of_other_shapes(detector: RainDetector, clip_dir: Path, size: tuple[int, int], frames_for,
                                  make_rain_scene) -> None:
    """4:3 cameras (and their 640 x 480 sub-streams) and portrait pictures (door bells, a corridor view): the core
    serves them 640 px wide at their own height, and the features and the CNN take any shape."""
    from alarmcloud.testing import static_scene

    w, h = size
    paths = {}
    for name, scene in (("rain", make_rain_scene(int(900 * w * h / (640 * 360)))), ("static", static_scene)):
        paths[name] = clip_dir / f"{name}_{w}x{h}.mp4"
        make_clip(paths[name], seconds=5, width=w, height=h, fps=15, gop_seconds=1.0, scene=scene)
    rain = frames_for(detector, paths["rain"])
    assert {f.image.shape for win in rain.windows for f in win} == {(round(h * 640 / w / 2) * 2, 640)}
    assert [f.label for f in detector.analyze(rain)] == ["rain"]
    assert detector.analyze(frames_for(detector, paths["static"])) == []


def test_flat_frames_are_not_rain(detector: RainDetector, clips: dict[str, Path], frames_for) -> None:
    probe = frames_for(detector, clips["static"]).probe
    flat = [Frame(i / 15, np.full((360, 640), 90, np.uint8)) for i in range(WINDOW_LENGTH)]
    assert detector.analyze(ClipFrames(probe=probe, windows=[flat, flat])) == []
