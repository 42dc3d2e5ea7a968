"""Recalibration from owners' released feedback clips: function and `alarmcloud rain recalibrate`."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import pytest
from alarmcloud_detect_rain import plugin
from alarmcloud_detect_rain.detector import RainConfig, RainDetector
from alarmcloud_detect_rain.recalibrate import recalibrate
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
    assert out.exists()
    det = RainDetector(RainConfig(model_path=out))
    assert det.model_path == out
    assert det.analyze(frames_for(det, clips["rain"]))
    assert det.analyze(frames_for(det, clips["person"])) == []


def test_feedback_moves_the_model_toward_owner_labels(tmp_path: Path, clips: dict[str, Path], frames_for) -> None:
    # an owner insists the swaying-bush camera shows rain: the recalibrated model must lean that way
    samples = _samples(tmp_path / "s", [clips["vegetation"], clips["rain"]], [clips["person"], clips["static"]])
    out = tmp_path / "m.onnx"
    report = recalibrate(samples, out, strength=0.01)
    assert report.clips == 4 and report.rain_clips == 2 and report.not_rain_clips == 2
    base, new = RainDetector(), RainDetector(RainConfig(model_path=out))
    before = 1 - base.scores(frames_for(base, clips["vegetation"]))["clear"]
    after = 1 - new.scores(frames_for(new, clips["vegetation"]))["clear"]
    assert after > before + 0.1
    assert report.accuracy_after >= report.accuracy_before


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
