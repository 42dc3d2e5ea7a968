"""Bulk download on the timeline in a real browser: choose clips (or the filters' matches) and save one ZIP."""

from __future__ import annotations

import io
import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import OWNER, PASSWORD, Site, login, opened_page  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture
def page(chromium: Any, site: Site) -> Any:
    with opened_page(chromium, 375, 740, timezone_id="UTC") as pg:
        yield pg


def _zip_of(download: Any) -> zipfile.ZipFile:
    assert download.failure() is None
    assert download.suggested_filename.endswith(".zip")
    return zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes()))


def _api(site: Site) -> httpx.Client:
    c = httpx.Client(base_url=site.url, timeout=30)
    assert c.post("/api/v1/auth/login", json={"email": OWNER, "password": PASSWORD}).status_code == 200
    return c


def test_select_two_clips_and_download_them_as_one_zip(page: Any, site: Site) -> None:
    import av

    login(page, site.url, OWNER)
    button = page.get_by_role("button", name="Download selected (0)")
    assert button.is_disabled()
    ids = page.eval_on_selector_all(".event", "els => els.map((e) => e.dataset.eventId)")
    assert len(ids) >= 3
    boxes = page.get_by_role("checkbox", name="Select the clip of")
    boxes.nth(0).check()
    boxes.nth(2).focus()
    page.keyboard.press("Space")  # keyboard works as well as the pointer
    button = page.get_by_role("button", name="Download selected (2)")
    assert button.is_enabled()
    assert page.get_by_role("checkbox", name="Select all shown").evaluate("e => e.indeterminate")
    with page.expect_download() as info:
        button.click()
    zf = _zip_of(info.value)
    index = json.loads(zf.read("events.json"))["events"]
    assert sorted(e["id"] for e in index) == sorted([ids[0], ids[2]])
    assert [e["time"] for e in index] == sorted(e["time"] for e in index)
    api = _api(site)
    for e in index:
        event = api.get(f"/api/v1/events/{e['id']}").json()
        assert e["verdict"] == event["verdict"] and e["camera"] == event["camera_name"]
        assert e["file"].startswith(event["camera_name"] + "/")
        data = zf.read(e["file"])
        assert data == api.get(f"/api/v1/events/{e['id']}/video").content
        with av.open(io.BytesIO(data)) as container:
            assert sum(1 for _ in container.decode(video=0)) > 0
    status = page.get_by_role("status").filter(has_text="Downloading 2 clips")
    assert status.count() == 1
    # the size is said before the download ends, and the ZIP came through a resumable link
    assert "/api/v1/downloads/" in info.value.url
    assert re.search(r"as a ZIP file \(\d+(\.\d)? (KB|MB)\)", status.inner_text())
    head = api.head(info.value.url)
    assert head.headers["accept-ranges"] == "bytes"
    assert int(head.headers["content-length"]) == Path(info.value.path()).stat().st_size
    # select all shown (every loaded clip), then none
    page.get_by_role("checkbox", name="Select all shown").check()
    page.get_by_role("button", name=f"Download selected ({len(ids)})").wait_for()
    page.get_by_role("checkbox", name="Select all shown").uncheck()
    assert page.get_by_role("button", name="Download selected (0)").is_disabled()


def test_download_all_matching_the_filters(page: Any, site: Site) -> None:
    login(page, site.url, OWNER)
    page.get_by_label("Camera").select_option(label="Garden")
    page.get_by_role("button", name="Filter", exact=True).click()
    page.wait_for_url("**camera_id=*")
    api = _api(site)
    expected = api.get("/api/v1/events", params={"camera_id": site.camera_id, "limit": 200}).json()["items"]
    assert expected
    with page.expect_download() as info:
        page.get_by_role("button", name="Download all matching clips").click()
    zf = _zip_of(info.value)
    index = json.loads(zf.read("events.json"))["events"]
    assert sorted(e["id"] for e in index) == sorted(e["id"] for e in expected)
    assert {e["camera"] for e in index} == {"Garden"}
    assert sorted(zf.namelist()) == sorted(["events.json", *(e["file"] for e in index)])


def test_a_refused_download_explains_itself_on_the_page(page: Any, site: Site) -> None:
    login(page, site.url, OWNER)
    site.core.settings.storage.download_max_clips = 1  # type: ignore[attr-defined]
    try:
        page.get_by_role("button", name="Download all matching clips").click()
        status = page.get_by_role("status").filter(has_text="more than 1 events match")
        status.wait_for()
        assert "data export" in status.inner_text()
        assert page.url == site.url + "/"  # still on the timeline, nothing navigated away
    finally:
        site.core.settings.storage.download_max_clips = 500  # type: ignore[attr-defined]
