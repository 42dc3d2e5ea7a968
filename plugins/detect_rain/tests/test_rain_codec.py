"""H.265 cameras (and AV1 footage): the model learnt from H.264 clips, and x265 gives rain and clear clips alike lower
weather scores.

The detector moves an H.265 clip's score by the shift in the model's metadata (``score_shift``, measured by
``train/codec_calibration.py``), so that one threshold lets through as many clear clips of either codec, and a rain
clip from an H.265 camera is found as its H.264 twin is.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from alarmcloud.contracts import ClipFrames
from alarmcloud.video import decode
from alarmcloud_detect_rain.detector import RainConfig, RainDetector, fuse, parse_shifts
from alarmcloud_detect_rain.features import FEATURE_NAMES
from alarmcloud_detect_rain.onnx_io import read_metadata, read_mlp
from alarmcloud_detect_rain.recalibrate import FeedbackClip, clip_score

TRAIN = Path(__file__).resolve().parents[1] / "train"
sys.path.insert(0, str(TRAIN))

from dataset import specs_for  # noqa: E402
from synth import encode, preset_of, render_frames, site_encode  # noqa: E402


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Medium daytime rain over a drawn scene (a clip of the renderer's seed 101 without photos, so it is the same
    wherever the tests run; 48 frames at 30 fps, 640x360) encoded by a camera as H.264 and as H.265 (x265 with a
    camera's settings at the quality x265 calls equal: CRF + 5) and as AV1 (SVT-AV1 as a video site encodes)."""
    spec = replace(specs_for(101, 315, [], 3)[314], windows=8)
    assert (spec.kind, spec.intensity, spec.night, spec.bitrate) == ("rain", "medium", False, 0)
    frames = render_frames(spec)
    folder = tmp_path_factory.mktemp("codec-twins")
    return {
        "h264": encode(frames, folder / "h264.mp4", spec.fps, spec.window_length, spec.crf, preset_of(spec)),
        "hevc": encode(frames, folder / "hevc.mp4", spec.fps, spec.window_length, spec.crf + 5, "veryfast",
                       codec="libx265"),
        "av1": site_encode(frames, folder / "av1.mp4", spec.fps, spec.window_length, spec.crf, 0, "av1"),
    }


def _frames(detector: RainDetector, path: Path, **options: float) -> ClipFrames:
    (cf,) = decode(path, [detector.frame_request()])
    cf.options.update(options)
    return cf


def test_the_shipped_models_carry_a_measured_h265_shift(detector: RainDetector) -> None:
    """codec_calibration.py measured the shift per score the detector thresholds: +0.75 for the fused score (in
    the CNN's metadata), +1.05 for the MLP alone (in the MLP's); the CNN smooths less with x265 than the features."""
    shift = detector.score_shift
    assert set(shift) == {"hevc", "av1"} and 0.5 < shift["hevc"] < 2.0 and 0.2 < shift["av1"] < 2.0
    assert read_metadata(detector.cnn_path)["score_shift"] == f"av1:{shift['av1']:.2f},hevc:{shift['hevc']:.2f}"
    alone = RainDetector(RainConfig(cnn_weight=0)).score_shift
    assert set(alone) == {"hevc"} and read_mlp(detector.model_path).metadata["score_shift"] == f"hevc:{alone['hevc']:.2f}"
    assert alone["hevc"] > shift["hevc"]


def test_an_h265_rain_clip_below_the_threshold_is_found_like_its_h264_twin(
    detector: RainDetector, twins: dict[str, Path]
) -> None:
    h264 = _frames(detector, twins["h264"])
    (found,) = detector.analyze(h264)
    assert found.label == "rain" and found.score >= detector.threshold
    assert h264.probe.video_codec == "h264" and h264.score == pytest.approx(1 - detector.scores(h264)["clear"])

    # without the shift (as before it was measured) the H.265 twin scores below the threshold: a missed rain alarm;
    # turned off the way an operator would, in the config file (``[plugins.rain] score_shift = {hevc = 0.0}``)
    unshifted = RainDetector(RainConfig.model_validate({"score_shift": {"hevc": 0.0}}))
    hevc = _frames(unshifted, twins["hevc"])
    assert hevc.probe.video_codec == "hevc"
    assert unshifted.analyze(hevc) == [] and hevc.score is not None and hevc.score < detector.threshold
    raw = hevc.score

    hevc = _frames(detector, twins["hevc"])
    (found,) = detector.analyze(hevc)
    assert found.label == "rain" and found.score >= detector.threshold
    assert found.score == pytest.approx(1 / (1 + np.exp(-(np.log(raw / (1 - raw)) + detector.score_shift["hevc"]))))
    assert hevc.score == found.score  # the score stored with the event (and tuned by owners) is the shifted one

    # a camera's own threshold is compared with the shifted score as well
    strict = _frames(detector, twins["hevc"], threshold=0.95)
    assert detector.analyze(strict) == [] and strict.score == pytest.approx(found.score)


def test_an_av1_clip_from_a_video_site_is_named_and_shifted_as_av1(detector: RainDetector,
                                                                    twins: dict[str, Path]) -> None:
    """Footage downloaded from a video site is VP9 or AV1. The probe names an AV1 clip ``av1`` (not the name of the
    decoder, dav1d), so the fused score's AV1 shift (measured as the H.265 one, ``codec_calibration.py --codec av1``)
    moves its score; an operator turns it off per codec in the config file."""
    av1 = twins["av1"]
    unshifted = RainDetector(RainConfig.model_validate({"score_shift": {"hevc": 0.75, "av1": 0.0}}))
    plain = _frames(unshifted, av1)
    assert plain.probe.video_codec == "av1"
    unshifted.analyze(plain)
    raw = plain.score
    assert raw is not None and 0.0 < raw < 1.0
    shifted = _frames(detector, av1)
    detector.analyze(shifted)
    assert shifted.score == pytest.approx(1 / (1 + np.exp(-(np.log(raw / (1 - raw)) + detector.score_shift["av1"]))))
    assert shifted.score > raw


def test_the_shift_moves_only_its_codec_and_never_past_certainty() -> None:
    shifts = parse_shifts(" hevc:1.05, vp9:-0.5 ")
    assert shifts == {"hevc": 1.05, "vp9": -0.5} and parse_shifts("") == {}
    with pytest.raises(ValueError, match="codec:number"):
        parse_shifts("hevc")
    calibrated = RainDetector.calibrated
    assert calibrated(0.5, "h264", shifts) == 0.5 and calibrated(0.5, None, shifts) == 0.5
    assert calibrated(0.5, "hevc", shifts) == pytest.approx(1 / (1 + np.exp(-1.05)))
    assert calibrated(0.5, "vp9", shifts) < 0.5
    assert calibrated(0.0, "hevc", shifts) == 0.0 and calibrated(1.0, "hevc", shifts) == 1.0  # quiet windows stay clear
    grid = np.linspace(0.01, 0.99, 50)
    assert np.all(np.diff([calibrated(p, "hevc", shifts) for p in grid]) > 0)  # the ranking of clips is kept


def test_recalibration_scores_released_h265_clips_as_the_detector_does(detector: RainDetector) -> None:
    base = read_mlp(detector.model_path)
    x = np.zeros((3, len(FEATURE_NAMES)))  # mean features: windows with some transient brightening
    x += base.mean
    h264, hevc = clip_score(base, FeedbackClip(x, "h264")), clip_score(base, FeedbackClip(x, "hevc"))
    alone = RainDetector(RainConfig(cnn_weight=0))  # without the CNN: the MLP's own shift
    assert 0.0 < h264 < 1.0 and hevc == pytest.approx(RainDetector.calibrated(h264, "hevc", alone.score_shift))
    assert hevc > h264
    # fused, as `alarmcloud rain recalibrate` scores them by default: the fused score moved by the fused shift
    fused = clip_score(base, FeedbackClip(x, "hevc", cnn=0.6), detector.score_shift, detector.cnn_weight)
    assert fused == pytest.approx(RainDetector.calibrated(float(fuse(h264, 0.6, 0.5)), "hevc", detector.score_shift))
    # a deployment that replaced the shift (``[plugins.rain] score_shift``) gets its own in the recalibration table
    assert clip_score(base, FeedbackClip(x, "hevc"), {"hevc": 0.0}) == h264
