"""The timeline shows an alarm series (clips a camera sent one after another while motion went on) as one group
under a "Series" heading, and the alarms that are one clip each together in one grid, newest first."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


def sections(page: str) -> list[tuple[str, list[str]]]:
    """The timeline's groups in order: (aria-label, the event ids in it)."""
    found = re.findall(r'<section class="series" aria-label="([^"]*)">(.*?)</section>', page, re.S)
    assert found, page[:500]
    return [(label, re.findall(r'data-event-id="([^"]+)"', body)) for label, body in found]


def test_series_are_grouped_and_single_alarms_share_one_grid(api: Any, clip: Path) -> None:
    owner = api().register("series-page@example.com")
    cam = owner.camera("Porch")
    creds = owner.upload_credentials(cam["id"])
    now = datetime.now(UTC).replace(microsecond=0)
    ids: dict[str, str] = {}
    for name, ago in [("3h", 3 * 3600), ("2h", 2 * 3600), ("1h", 3600), ("1h-20s", 3600 - 20), ("30m", 1800)]:
        r = owner.upload(creds, clip, **{"X-Recorded-At": (now - timedelta(seconds=ago)).isoformat()})
        assert r.status_code == 201, r.text
        ids[name] = r.json()["event_id"]
    series = {owner.get(f"/api/v1/events/{i}").json()["series_id"] for i in (ids["1h"], ids["1h-20s"])}
    assert len(series) == 1  # 20 s apart: one series, as the API says

    page = owner.get("/").text
    assert sections(page) == [
        ("1 alarm", [ids["30m"]]),
        ("Alarm series, 2 clips", [ids["1h-20s"], ids["1h"]]),
        ("2 alarms", [ids["2h"], ids["3h"]]),  # two alarms of their own: one grid, not a row each
    ]
    assert page.count('class="series-head"') == 1 and "Series · 2 clips" in page
