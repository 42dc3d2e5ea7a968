"""The per-camera ``threshold`` option the plugin declares: its range, and that it reaches the detector."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from alarmcloud.specs import DetectorOption
from alarmcloud_detect_rain import plugin
from alarmcloud_detect_rain.detector import RainDetector


def threshold_option() -> DetectorOption:
    spec = next(s for s in plugin.register_detectors() if s.name == "rain")
    opt = spec.option("threshold")
    assert opt is not None and [o.key for o in spec.options] == ["threshold"]
    return opt


def test_the_threshold_option_is_a_sane_number_range(detector: RainDetector) -> None:
    opt = threshold_option()
    assert (opt.kind, opt.minimum, opt.maximum, opt.step) == ("number", 0.05, 0.99, 0.05)
    assert opt.label and opt.help and not opt.choices
    # the deployment default (the shipped model's) lies in the range, on the UI's step grid
    default = detector.threshold
    assert opt.minimum <= default <= opt.maximum
    assert math.isclose(round(default / opt.step) * opt.step, default)
    assert opt.validate(0.8) == 0.8
    for bad in (0.0, 1.0, "0.8", True, float("nan")):
        with pytest.raises(ValueError, match="threshold must be"):
            opt.validate(bad)


def test_a_threshold_the_option_accepts_decides_the_finding(detector: RainDetector, clips: dict[str, Path],
                                                            frames_for) -> None:  # type: ignore[no-untyped-def]
    opt = threshold_option()
    frames = frames_for(detector, clips["vegetation"])  # swaying plants: some weather probability, not much
    weather = 1 - detector.scores(frames)["clear"]
    assert opt.minimum < weather < opt.maximum  # the option's range reaches real scores on both sides
    below = opt.validate(math.floor(weather / opt.step) * opt.step or opt.minimum)
    above = opt.validate(math.ceil(weather / opt.step) * opt.step)
    frames.options = {opt.key: below}
    assert [f.label for f in detector.analyze(frames)] in (["rain"], ["snow"])
    frames.options = {opt.key: above}
    assert detector.analyze(frames) == []
    # no finding, but the score it compared is reported for the event (an owner's "rain" mark can then lower it)
    assert frames.score is not None and math.isclose(frames.score, weather, abs_tol=1e-6)


def test_the_pipeline_lets_a_camera_threshold_below_the_deployments_flag(clips: dict[str, Path]) -> None:
    """A camera's threshold below the deployment's (``[plugins.rain] threshold``) counts in the server's pipeline,
    and the clip's score is reported either way."""
    from alarmcloud.pipeline import analyze_file
    from alarmcloud.plugins import PluginHost

    host = PluginHost({"cameras": [], "detectors": ["rain"], "integrations": []},
                      plugin_settings=lambda name: {"threshold": 0.95} if name == "rain" else {}).load()
    plain = analyze_file(host, clips["vegetation"], ["rain"])
    weather = plain.scores["rain"]
    assert plain.findings == [] and 0.05 < weather < 0.95
    lowered = analyze_file(host, clips["vegetation"], ["rain"], {"rain": {"threshold": 0.05}})
    assert [(f.label, f.score) for f in lowered.findings] in ([("rain", weather)], [("snow", weather)])
    assert lowered.scores == {"rain": weather}
