"""Verdict badges: the server's words for every verdict, the core's and those the detectors name, and the
live-updating script reads the same words from the page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from alarmcloud.plugins import PluginHost
from alarmcloud.specs import DetectorSpec
from alarmcloud.web.pages import CORE_VERDICTS, verdict_badge, verdict_names

JS = Path(__file__).resolve().parents[2] / "core" / "src" / "alarmcloud" / "web" / "static" / "app.js"
BASE = Path(__file__).resolve().parents[2] / "core" / "src" / "alarmcloud" / "web" / "templates" / "base.html"


@pytest.fixture(scope="module")
def names() -> dict[str, tuple[str, str]]:
    return verdict_names(PluginHost({"cameras": [], "detectors": None, "integrations": []}).load().detector_specs)


def test_weather_and_night_causes_read_in_the_detectors_words(names: dict[str, tuple[str, str]]) -> None:
    assert verdict_badge("false_alarm:rain", names=names) == {"text": "Rain", "cls": "rain"}
    assert verdict_badge("false_alarm:snow", names=names) == {"text": "Snow", "cls": "rain"}
    assert verdict_badge("false_alarm:insect", names=names) == {"text": "Insects", "cls": "rain"}
    assert verdict_badge("false_alarm:web", names=names) == {"text": "Spider web", "cls": "rain"}
    assert verdict_badge("false_alarm:fog", names=names)["text"] == "False alarm: fog"  # no detector names it
    assert verdict_badge("false_alarm:rain")["text"] == "False alarm: rain"  # without the rain plugin
    assert verdict_badge(None, "pending")["text"] == "Analysing…"
    assert verdict_badge(None, "skipped")["text"] == "Skipped"
    # the timeline's verdict filter: a real alarm first, the core's own causes last
    assert list(names)[0] == "alarm" and list(names)[-2:] == ["false_alarm:no_motion", "analysis_failed"]
    assert {v: names[v] for v in CORE_VERDICTS} == CORE_VERDICTS


def test_a_detector_may_name_only_its_own_labels() -> None:
    with pytest.raises(ValueError, match="verdict_titles name labels it does not have"):
        DetectorSpec(name="fog", factory=lambda c: None, labels=("fog",), description="",  # type: ignore[arg-type,return-value]
                     verdict_titles={"mist": "Mist"})
    spec = DetectorSpec(name="fog", factory=lambda c: None, labels=("fog",), description="",  # type: ignore[arg-type,return-value]
                        verdict_titles={"fog": "Fog"})
    assert verdict_names({"fog": spec})["false_alarm:fog"] == ("Fog", "rain")


def test_the_script_reads_the_servers_words_from_the_page() -> None:
    """No verdict wording of its own: the script reads the page's ``verdict-names`` block (the same map as the
    server's badges), so a plugin's cause reads the same after a live update as after a reload."""
    js = JS.read_text()
    assert not re.findall(r'"false_alarm:[a-z_]+": \[', js)
    assert 'getElementById("verdict-names")' in js
    assert '<script type="application/json" id="verdict-names">{{ verdicts|tojson }}</script>' in BASE.read_text()
