"""Text contrast of the stylesheet's colour pairs in both themes, including states the page audit may not meet.

Reads the custom properties of ``:root`` and of the dark ``:root`` from ``app.css`` and checks every pair the
stylesheet puts text on (WCAG 2.1 relative luminance, 4.5:1 for normal text).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parents[2] / "core" / "src" / "alarmcloud" / "web" / "static" / "app.css"

# (text colour, background) as used in app.css; "#fff" is literal white
PAIRS = [
    ("--fg", "--bg"), ("--fg", "--card"), ("--muted", "--bg"), ("--muted", "--card"), ("--accent", "--card"),
    ("--accent", "--bg"), ("--accent-fg", "--accent"), ("--danger", "--card"), ("--ok", "--card"),
    ("--bg", "--fg"),  # the flash message
    ("#fff", "--b-alarm"), ("#fff", "--b-rain"), ("#fff", "--b-quiet"), ("#fff", "--b-failed"),
    ("#fff", "--b-pending"), ("--accent-fg", "--ok"),  # badges, .flash.bad uses --b-alarm
]


def themes() -> dict[str, dict[str, str]]:
    text = CSS.read_text()
    light = dict(re.findall(r"(--[\w-]+):\s*(#[0-9a-fA-F]{3,6})", text[text.index(":root"):text.index("}")]))
    dark_block = text[text.index("prefers-color-scheme: dark"):]
    dark_block = dark_block[:dark_block.index("}")]
    dark = {**light, **dict(re.findall(r"(--[\w-]+):\s*(#[0-9a-fA-F]{3,6})", dark_block))}
    return {"light": light, "dark": dark}


def luminance(hex_colour: str) -> float:
    h = hex_colour.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    channels = [int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def ratio(a: str, b: str) -> float:
    la, lb = luminance(a), luminance(b)
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


def test_contrast_formula() -> None:
    assert ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic just-failing grey


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_text_colour_pair_reaches_4_5(theme: str) -> None:
    colours = themes()[theme]
    low = []
    for fg, bg in PAIRS:
        a = fg if fg.startswith("#") else colours[fg]
        b = bg if bg.startswith("#") else colours[bg]
        if ratio(a, b) < 4.5:
            low.append(f"{fg} on {bg}: {ratio(a, b):.2f}")
    assert not low, low
