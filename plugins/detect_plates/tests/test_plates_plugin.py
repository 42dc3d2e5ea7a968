"""The plugin's hook, entry point, config model and offline models."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from alarmcloud.specs import DetectorSpec
from alarmcloud_detect_plates import plugin
from alarmcloud_detect_plates.detector import PlateDetector, PlatesConfig
from alarmcloud_detect_plates.ocr import DET_MODEL, REC_MODEL, model_dir
from pydantic import ValidationError


def test_hook_register_detectors_returns_the_plates_spec() -> None:
    specs = plugin.register_detectors()
    assert [s.name for s in specs] == ["plates"]
    spec = specs[0]
    assert isinstance(spec, DetectorSpec)
    assert spec.labels == ("plate",)
    assert spec.config_model is PlatesConfig
    assert spec.privacy is not None and "plate" in " ".join(spec.privacy.data)
    assert "export" in spec.privacy.retention and "deleted" in spec.privacy.retention


def test_factory_builds_a_detector_from_operator_settings() -> None:
    det = plugin.register_detectors()[0].factory({"threshold": 0.9, "countries": ["de", "at"]})
    assert isinstance(det, PlateDetector)
    assert det.threshold == 0.9
    assert det.name == "plates" and det.frame_request().keyframes
    with pytest.raises(ValidationError):
        plugin.register_detectors()[0].factory({"threshold": 2})


def test_entry_point_is_declared() -> None:
    eps = entry_points(group="alarmcloud.detectors")
    assert any(ep.name == "plates" and ep.value == "alarmcloud_detect_plates.plugin" for ep in eps)


def test_models_come_from_the_installed_wheel() -> None:
    folder = model_dir()
    assert (folder / DET_MODEL).stat().st_size > 1_000_000
    assert (folder / REC_MODEL).stat().st_size > 1_000_000


def test_config_fields_are_documented() -> None:
    for name, field in PlatesConfig.model_fields.items():
        assert field.description, name
