"""Verdict badges: the server's and the live-updating script's wording agree for every verdict the core makes."""

from __future__ import annotations

import re
from pathlib import Path

from alarmcloud.web.pages import VERDICTS, verdict_badge

JS = Path(__file__).resolve().parents[2] / "core" / "src" / "alarmcloud" / "web" / "static" / "app.js"


def test_weather_verdicts_read_as_weather() -> None:
    assert verdict_badge("false_alarm:rain") == {"text": "Rain", "cls": "rain"}
    assert verdict_badge("false_alarm:snow") == {"text": "Snow", "cls": "rain"}
    assert verdict_badge("false_alarm:fog")["text"] == "False alarm: fog"
    assert verdict_badge(None, "pending")["text"] == "Analysing…"
    assert verdict_badge(None, "skipped")["text"] == "Skipped"


def test_the_script_knows_the_same_badges() -> None:
    known = dict(re.findall(r'"([a-z_:]+)": \["([^"]+)", "[a-z]+"\]', JS.read_text()))
    assert known == {verdict: text for verdict, (text, _cls) in VERDICTS.items()}
