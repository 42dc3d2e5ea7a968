"""The per-camera ``countries`` option the plugin declares: one choice per known country format."""

from __future__ import annotations

from dataclasses import replace

import pytest
from alarmcloud_detect_plates import plugin
from alarmcloud_detect_plates.detector import PlatesConfig
from alarmcloud_detect_plates.formats import COUNTRY_FORMATS


def test_the_countries_option_offers_every_known_country_with_its_name() -> None:
    (spec,) = plugin.register_detectors()
    assert [o.key for o in spec.options] == ["countries"]
    opt = spec.options[0]
    assert opt.kind == "choices" and opt.label
    assert "fewer countries mean fewer misreads" in opt.help
    assert dict(opt.choices[1:]) == {code: fmt.name for code, fmt in COUNTRY_FORMATS.items()}
    assert ("DE", "Germany") in opt.choices and ("AT", "Austria") in opt.choices
    # the group of every European format comes first
    assert opt.choices[0][0] == "EU" and "Europe" in opt.choices[0][1] and opt.groups == ("EU",)
    for code, name in opt.choices:
        assert code == code.upper() and code.isalpha() and name and name != code
    # every country the deployment accepts by default can also be chosen for a camera
    assert set(PlatesConfig().countries) <= {code for code, _ in opt.choices}


def test_the_option_checks_camera_values() -> None:
    opt = plugin.register_detectors()[0].options[0]
    assert opt.validate(["DE", "AT"]) == ["DE", "AT"]
    assert opt.validate(["EU"]) == ["EU"]
    for bad, why in ((["XX"], "unknown choice 'XX'"), ([], "at least one"), ("DE", "list of codes")):
        with pytest.raises(ValueError, match=why):
            opt.validate(bad)


def test_choices_follow_the_format_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """A country added to COUNTRY_FORMATS becomes a choice without touching the plugin."""
    monkeypatch.setitem(COUNTRY_FORMATS, "ZZ", replace(COUNTRY_FORMATS["DE"], country="ZZ", name="Testland"))
    choices = dict(plugin.register_detectors()[0].options[0].choices)
    assert choices["ZZ"] == "Testland"


def test_a_camera_set_to_europe_reads_european_formats_only() -> None:
    det = plugin.register_detectors()[0].factory(None)
    europe = det._countries({"countries": ["EU"]})
    assert "DE" in europe and "UK" in europe and "CH" in europe and "US" not in europe and "BR" not in europe
    assert det._countries({"countries": ["EU", "US"]})[-1] == "US"
    assert det._countries({}) == list(COUNTRY_FORMATS)
