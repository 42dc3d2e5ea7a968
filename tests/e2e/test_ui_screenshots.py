"""Writes the docs screenshots when ``ALARMCLOUD_SCREENSHOTS=1`` (they are committed under ``docs/img/``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import require_chromium  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.mark.skipif(os.environ.get("ALARMCLOUD_SCREENSHOTS") != "1", reason="set ALARMCLOUD_SCREENSHOTS=1 to write")
def test_screenshots() -> None:
    require_chromium()
    from screenshots import PAGES, SIZES, take

    written = take()
    assert len(written) == len(PAGES) * len(SIZES)
    assert all(p.stat().st_size > 5000 for p in written)
