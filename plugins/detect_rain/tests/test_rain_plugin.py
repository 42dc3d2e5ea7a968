"""The plugin's hooks: entry point, detector spec, privacy record, CLI command."""

from __future__ import annotations

from importlib.metadata import entry_points

import click
import pytest
from alarmcloud_detect_rain import plugin
from alarmcloud_detect_rain.detector import RainConfig, RainDetector
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
