"""Shared bits of the browser tests: launching Debian chromium, a live server, a clip the INSTAR adapter accepts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("ALARMCLOUD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
MODEL = "IN-9008 Full HD"  # accepts 640x352 H.264 sub-stream clips
PASSWORD = "correct horse battery staple"


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian chromium (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright (dev group) is not installed")


@contextmanager
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def make_accepted_clip(path: Path, seconds: float = 6.0) -> Path:
    from alarmcloud.testing import make_clip

    return make_clip(path, seconds=seconds, width=640, height=352, fps=15)
