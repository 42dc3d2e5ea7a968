"""Recalibration from owners' released feedback clips: function and `alarmcloud rain recalibrate`."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import numpy as np
import pytest
from alarmcloud_detect_rain import plugin
from alarmcloud_detect_rain.detector import (
    _SPIKE2,
    _SPIKE4,
    CNN_FILE,
    CNN_NETWORK_KEY,
    RainConfig,
    RainDetector,
    default_model_path,
)
from alarmcloud_detect_rain.features import FEATURE_NAMES
from alarmcloud_detect_rain.onnx_io import MLPWeights, network_digest
from alarmcloud_detect_rain.recalibrate import FeedbackClip, choose_strength, recalibrate
from click.testing import CliRunner


def _samples(root: Path, rain: list[Path], not_rain: list[Path], **more: list[Path]) -> Path:
    for label, paths in (("rain", rain), ("not_rain", not_rain), *more.items()):
        (root / label).mkdir(parents=True)
        for i, p in enumerate(paths):
            shutil.copy(p, root / label / f"clip{i}.mp4")
    return root


def _cli() -> click.Group:
    cli = click.Group("alarmcloud")
    plugin.register_commands(cli)
    return cli


def test_command_writes_a_model_the_detector_loads(tmp_path: Path, clips: dict[str, Path], frames_for) -> None:
    samples = _samples(
        tmp_path / "training" / "rain",
        [clips["rain"], clips["night_rain"]],
        [clips["person"], clips["vegetation"], clips["night_clear"]],
    )
    out = tmp_path / "models" / "rain-custom.onnx"
    result = CliRunner().invoke(_cli(), ["rain", "recalibrate", "--samples", str(samples), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "recalibrated on 5 clips" in result.output
    assert "scored fused with the spike-map CNN (weight 0.5); refits checked at threshold 0.65" in result.output
    assert "the detector fuses it with the CNN at weight 0.5, as measured here" in result.output
    assert out.exists()
    det = RainDetector(RainConfig(model_path=out))
    assert det.model_path == out
    # pointed at by model_path alone, it runs as it was measured: fused, at the fused threshold
    assert det.cnn is not None and det.cnn_weight == 0.5 and det.threshold == 0.65
    assert det.analyze(frames_for(det, clips["rain"]))
    assert det.analyze(frames_for(det, clips["person"])) == []


def test_feedback_moves_the_model_toward_owner_labels(tmp_path: Path, clips: dict[str, Path], frames_for) -> None:
    # an owner insists the swaying-bush camera shows rain: the recalibrated model must lean that way
    samples = _samples(tmp_path / "s", [clips["vegetation"], clips["rain"]], [clips["person"], clips["static"]])
    out = tmp_path / "m.onnx"
    report = recalibrate(samples, out, strength=0.01)
    assert report.clips == 4 and report.rain_clips == 2 and report.not_rain_clips == 2
    # both fused with the shipped CNN, as the detector runs them
    base, new = RainDetector(), RainDetector(RainConfig(model_path=out))
    assert new.cnn is not None
    before = 1 - base.scores(frames_for(base, clips["vegetation"]))["clear"]
    after = 1 - new.scores(frames_for(new, clips["vegetation"]))["clear"]
    assert after > before + 0.1
    assert report.accuracy_after >= report.accuracy_before
    assert new.score_shift == base.score_shift and "hevc" in new.score_shift  # the H.265 shift goes along


def test_too_few_samples_is_an_error(tmp_path: Path, clips: dict[str, Path]) -> None:
    samples = _samples(tmp_path / "s", [clips["rain"]], [])
    (samples / "not_rain" / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="at least 2"):
        recalibrate(samples, tmp_path / "m.onnx")
    result = CliRunner().invoke(
        _cli(), ["rain", "recalibrate", "--samples", str(samples), "--out", str(tmp_path / "m.onnx")]
    )
    assert result.exit_code != 0 and "at least 2" in result.output
    assert not (tmp_path / "m.onnx").exists()


def test_snow_feedback_counts_as_weather(tmp_path: Path, clips: dict[str, Path]) -> None:
    # the feedback API also stores "snow" / "not_snow" releases in the rain detector's training area
    samples = _samples(tmp_path / "s", [clips["rain"]], [clips["person"]], snow=[clips["night_rain"]],
                       not_snow=[clips["static"]], other=[clips["vegetation"]])
    report = recalibrate(samples, tmp_path / "m.onnx")
    assert (report.clips, report.rain_clips, report.not_rain_clips) == (4, 2, 2)  # "other" is not a label


def _toy(label_from: int, clips_per_label: int = 30) -> tuple[MLPWeights, list[FeedbackClip], np.ndarray]:
    """A model whose output layer reads feature column 0 as rain, and clips labelled by column ``label_from``."""
    n_f = len(FEATURE_NAMES)
    a, b = [i for i in range(n_f) if i not in (_SPIKE2, _SPIKE4)][:2]
    w1 = np.zeros((n_f, 4))
    w1[a, 0], w1[a, 1], w1[b, 2], w1[b, 3] = 1, -1, 1, -1  # hidden: relu(+-x[a]), relu(+-x[b])
    w2 = np.zeros((4, 3))
    w2[0, 1], w2[1, 1] = 1, -1  # rain logit = x[a]; clear 0; snow far below
    base = MLPWeights(np.zeros(n_f), np.ones(n_f), w1, np.zeros(4), w2, np.array([0.0, 0.0, -5.0]),
                      {"classes": "clear,rain,snow"})
    rng = np.random.default_rng(7)
    weather = np.array([True] * clips_per_label + [False] * clips_per_label)
    col = a if label_from == 0 else b
    clips = []
    for w in weather:
        x = rng.normal(0, 1, (3, n_f))
        x[:, [_SPIKE2, _SPIKE4]] = 0.0  # every window has transient brightening (not "quiet")
        x[:, col] = np.abs(x[:, col]) + 0.3 if w else -np.abs(x[:, col]) - 0.3
        clips.append(FeedbackClip(x))
    return base, clips, weather


def test_a_refit_is_used_only_when_it_predicts_held_back_feedback_better() -> None:
    # the owners' labels follow something the output layer ignores: a refit learns it and is chosen
    base, clips, weather = _toy(label_from=1)
    choice = choose_strength(base, clips, weather, threshold=0.75)
    assert choice.strength is not None and choice.folds == 5
    assert choice.auc_base is not None and choice.auc_chosen is not None
    assert choice.auc_base < 0.7 and choice.auc_chosen > 0.95
    # the base model already ranks them right: no refit can do better, the base output layer is kept
    base, clips, weather = _toy(label_from=0)
    choice = choose_strength(base, clips, weather, threshold=0.75)
    assert choice.strength is None and choice.auc_base == 1.0 and "no refit beat" in choice.reason
    # too few clips of one label to check a refit at all
    choice = choose_strength(base, clips[:40], weather[:40], threshold=0.75)
    assert choice.strength is None and choice.folds == 0 and "fewer than 20 clips" in choice.reason


def test_by_default_a_few_feedback_clips_keep_the_model_and_show_the_thresholds(
        tmp_path: Path, clips: dict[str, Path], frames_for) -> None:
    samples = _samples(tmp_path / "s", [clips["rain"], clips["night_rain"]], [clips["person"], clips["static"]])
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(_cli(), ["rain", "recalibrate", "--samples", str(samples), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "kept the base model's output layer: fewer than 20 clips of each label (weather 2, clear 2)" in result.output
    # the feedback clips' recall and false positives per threshold, for the per-camera threshold option
    assert "threshold  weather recall  clear false positives" in result.output
    assert "       0.75          100.0 %                   0.0 %" in result.output
    # the deployment's detector before (the shipped pair) and after (model_path = the kept copy) scores alike:
    # recalibrating with too little feedback changes nothing, the CNN included
    base, new = RainDetector(), RainDetector(RainConfig(model_path=out))
    for name in ("rain", "person", "vegetation"):
        assert new.scores(frames_for(new, clips[name])) == pytest.approx(base.scores(frames_for(base, clips[name])),
                                                                          abs=1e-6)
    meta = new.session.get_modelmeta().custom_metadata_map
    assert "base output layer kept" in meta["recalibration"]
    assert meta["cnn_weight"] == "0.5" and meta["recalibrated_with_cnn"].startswith("rain_cnn.onnx sha256:")
    # the network it was measured with, which the detector checks the configured CNN against
    assert meta[CNN_NETWORK_KEY] == network_digest(default_model_path(CNN_FILE))[:16]
    assert new.threshold == base.threshold == 0.65


def test_cnn_weight_0_recalibrates_the_mlp_alone(tmp_path: Path, clips: dict[str, Path], frames_for) -> None:
    samples = _samples(tmp_path / "s", [clips["rain"], clips["night_rain"]], [clips["person"], clips["static"]])
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(_cli(), ["rain", "recalibrate", "--samples", str(samples), "--out", str(out),
                                         "--cnn-weight", "0"])
    assert result.exit_code == 0, result.output
    assert "scored with the MLP alone (the CNN is off); refits checked at threshold 0.75" in result.output
    assert "(the detector runs it alone)" in result.output
    base, new = RainDetector(RainConfig(cnn_weight=0)), RainDetector(RainConfig(model_path=out))
    assert new.cnn is None and new.threshold == 0.75
    assert CNN_NETWORK_KEY not in new.session.get_modelmeta().custom_metadata_map
    assert new.scores(frames_for(new, clips["rain"])) == pytest.approx(base.scores(frames_for(base, clips["rain"])),
                                                                       abs=1e-6)
    bad = CliRunner().invoke(_cli(), ["rain", "recalibrate", "--samples", str(samples), "--out", str(out),
                                      "--cnn-weight", "2"])
    assert bad.exit_code == 2 and "--cnn-weight" in bad.output
