"""The plugin's hooks: entry point, detector spec, privacy record, CLI command."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import click
import pytest
from alarmcloud_detect_rain import plugin
from alarmcloud_detect_rain.detector import RainConfig, RainDetector, default_model_path
from alarmcloud_detect_rain.onnx_io import read_mlp, write_mlp
from pydantic import ValidationError


def test_entry_point_targets_plugin_module() -> None:
    eps = {ep.name: ep for ep in entry_points(group="alarmcloud.detectors")}
    assert eps["rain"].value == "alarmcloud_detect_rain.plugin"
    assert eps["rain"].load() is plugin


def test_hook_register_detectors() -> None:
    specs = {s.name: s for s in plugin.register_detectors()}
    assert set(specs) == {"rain", "insects"}
    spec = specs["rain"]
    assert spec.labels == ("rain", "snow")
    assert spec.config_model is RainConfig
    det = spec.factory({"threshold": 0.8})
    assert isinstance(det, RainDetector) and det.threshold == 0.8
    assert isinstance(spec.factory(None), RainDetector)
    assert spec.privacy is not None
    assert any("video frames" in d for d in spec.privacy.data)
    assert "none beyond the finding" in spec.privacy.retention


def test_config_is_documented_and_validated() -> None:
    for name, field in RainConfig.model_fields.items():
        assert field.description, name
    with pytest.raises(ValidationError):
        RainConfig(threshold=1.5)


def test_hook_register_commands() -> None:
    cli = click.Group("alarmcloud")
    plugin.register_commands(cli)
    assert "rain" in cli.commands
    assert "recalibrate" in cli.commands["rain"].commands  # type: ignore[attr-defined]


def test_bad_model_path_fails_loudly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(Exception):  # noqa: B017 - onnxruntime raises its own error types
        RainDetector(RainConfig(model_path=bad))


def _model_with(tmp_path: Path, metadata: dict[str, str]) -> Path:
    w = read_mlp(default_model_path())
    w.metadata.update(metadata)
    return write_mlp(tmp_path / "model.onnx", w)


def test_a_model_brings_its_own_threshold(tmp_path: Path) -> None:
    """train.py writes the threshold it chose into the model: an operator who points model_path at such a model
    gets that threshold unless the config names another one."""
    assert RainDetector(RainConfig(cnn_weight=0)).threshold == 0.75  # the shipped MLP's metadata, used alone
    path = _model_with(tmp_path, {"threshold": "0.60"})
    assert RainDetector(RainConfig(model_path=path)).threshold == 0.6
    assert RainDetector(RainConfig(model_path=path, threshold=0.9)).threshold == 0.9
    unnamed = read_mlp(default_model_path())
    del unnamed.metadata["threshold"]
    assert RainDetector(RainConfig(model_path=write_mlp(tmp_path / "old.onnx", unnamed))).threshold == 0.75
    broken = _model_with(tmp_path, {"threshold": "high"})
    with pytest.raises(ValueError, match="threshold 'high' in its metadata is not a number from 0 to 1"):
        RainDetector(RainConfig(model_path=broken))
