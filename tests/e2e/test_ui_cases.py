"""Cases in a real browser: the owner selects alarm clips on the timeline and puts them into a new case, writes
the police's reference into its notes, adds one more clip from its page, downloads the case as a ZIP with a checksum
file, shares it with a link that someone without an account opens, takes a clip out and deletes the case; the clips
stay kept throughout."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import AUDIT_JS, OWNER, Site, login, owner_api, watch  # noqa: E402

pytestmark = pytest.mark.browser


def test_collect_clips_into_a_case_and_download_it(desktop: Any, site: Site, tmp_path: Path) -> None:
    page = desktop
    outside, errors = watch(page, site.url)
    api = owner_api(site)
    events = api.get("/api/v1/events").json()["items"]
    assert len(events) >= 3
    first, second, third = events[0]["id"], events[1]["id"], events[2]["id"]
    login(page, site.url, OWNER)

    # the timeline: pick two clips, name a new case, add them
    page.locator(f'[data-pick][value="{first}"]').check()
    page.locator(f'[data-pick][value="{second}"]').check()
    bulk = page.locator("[data-bulk]")
    name = bulk.get_by_label("Name of the new case")
    assert name.is_visible()  # no case yet: the picker asks for a name
    name.fill("Break-in 3 November")
    bulk.get_by_role("button", name="Add selected to case").click()
    page.wait_for_url("**/cases/*")
    case_id = page.url.rsplit("/", 1)[-1]
    assert page.locator("h1").inner_text() == "Break-in 3 November"
    assert "2 clips added to the case." in page.locator(".flash").inner_text()
    shown = [a.get_attribute("data-event-id") for a in page.locator("[data-case-clips] a.event").all()]
    assert sorted(shown) == sorted([first, second])
    found = page.evaluate(AUDIT_JS)
    assert not found, found

    # notes
    page.get_by_label("Notes").fill("Police reference 2026/1234\nThe back door was forced.")
    page.get_by_role("button", name="Save").click()
    page.locator(".flash").filter(has_text="Case saved.").wait_for()
    assert api.get(f"/api/v1/cases/{case_id}").json()["notes"].startswith("Police reference 2026/1234\n")

    # one more clip from its own page: the case is offered, the Keep card says where the clip is
    page.goto(f"{site.url}/events/{third}")
    keep = page.locator("#keep")
    assert keep.get_by_label("Case", exact=True).input_value() == case_id
    assert not keep.get_by_label("Name of the new case").is_visible()
    assert keep.locator("[data-case-series]").count() == 0  # an alarm of one clip: no series to add with it
    keep.get_by_role("button", name="Add to case").click()
    page.wait_for_url(f"**/cases/{case_id}")
    assert page.locator("[data-case-clips] a.event").count() == 3
    page.goto(f"{site.url}/events/{third}")
    assert "In the case Break-in 3 November" in keep.inner_text()
    assert keep.get_by_role("button", name="Stop keeping").count() == 0  # taken out of the case first

    # the download: the browser saves the ZIP, whose checksums match the videos
    page.goto(f"{site.url}/cases/{case_id}")
    assert "Not downloaded yet." in page.locator("[data-exported]").inner_text()
    with page.expect_download() as info:
        page.get_by_role("link", name="Download the case (ZIP)").click()
    saved = tmp_path / "case.zip"
    info.value.save_as(saved)
    z = zipfile.ZipFile(io.BytesIO(saved.read_bytes()))
    manifest = json.loads(z.read("case.json"))
    assert manifest["case"]["name"] == "Break-in 3 November" and len(manifest["clips"]) == 3
    for line in z.read("SHA256SUMS").decode().splitlines():
        digest, file = line.split("  ", 1)
        assert hashlib.sha256(z.read(file)).hexdigest() == digest
    page.reload()
    assert "Last downloaded" in page.locator("[data-exported]").inner_text()

    # share it with a link: shown once; someone without an account opens it and downloads the clips
    share = page.locator("#share")
    share.get_by_label("Downloads allowed").fill("1")  # one download: then the link is used up
    share.get_by_role("button", name="Create link").click()
    box = share.get_by_label("The link (shown once: copy it now)")
    box.wait_for()
    path = urlparse(box.input_value()).path
    assert path.startswith("/shared/")
    stranger = page.context.browser.new_context()
    try:
        other = stranger.new_page()
        other.goto(site.url + path)
        assert other.locator("h1").inner_text() == "Break-in 3 November"
        assert "Police reference 2026/1234" in other.locator("[data-notes]").inner_text()
        found = other.evaluate(AUDIT_JS)
        assert not found, found
        with other.expect_download() as shared:
            other.get_by_role("link", name="Download the clips (ZIP)").click()
        shared.value.save_as(tmp_path / "shared.zip")
        assert len(json.loads(zipfile.ZipFile(tmp_path / "shared.zip").read("case.json"))["clips"]) == 3
        other.reload()
        assert "as often as it allows" in other.locator("main").inner_text()
    finally:
        stranger.close()
    page.reload()
    assert "downloaded 1 time, as often as it allows" in page.locator("[data-share-state]").inner_text()
    page.once("dialog", lambda d: d.accept())
    share.get_by_role("button", name="Stop sharing").click()
    page.wait_for_function("() => !document.querySelector('[data-share-state]')")

    # take one out: it stays kept; the list of cases counts the rest
    page.get_by_role("button", name="Take out the clip").first.click()
    page.wait_for_function("() => document.querySelectorAll('[data-case-clips] a.event').length === 2")
    page.goto(site.url + "/cases")
    item = page.locator(f'[data-case="{case_id}"]')
    assert "2 clips" in item.inner_text() and "Downloaded" in item.inner_text()
    found = page.evaluate(AUDIT_JS)
    assert not found, found

    # delete the case: its clips stay kept, outside any case
    item.get_by_role("link").click()
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete case").click()
    page.wait_for_url(site.url + "/cases")
    assert "No cases yet." in page.locator("main").inner_text()
    for eid in (first, second, third):
        ev = api.get(f"/api/v1/events/{eid}").json()
        assert ev["kept"] is True and ev["case_id"] is None
        assert api.patch(f"/api/v1/events/{eid}", json={"kept": False}).status_code == 200
    assert not outside and not errors, (outside, errors)


def test_a_clip_goes_into_a_case_with_its_whole_alarm_series(desktop: Any, site: Site) -> None:
    page = desktop
    outside, errors = watch(page, site.url)
    api = owner_api(site)
    newest = api.get("/api/v1/events").json()["items"][0]
    series = [e["id"] for e in api.get(f"/api/v1/events?series_id={newest['series_id']}").json()["items"]]
    assert len(series) >= 2  # the demo's newest alarm is a series of clips
    login(page, site.url, OWNER)
    page.goto(f"{site.url}/events/{newest['id']}")
    keep = page.locator("#keep")
    whole = keep.get_by_label(f"With the other {len(series) - 1} clip")
    assert whole.is_checked()  # the whole series unless the owner unticks it
    keep.get_by_label("Name of the new case").fill("Series")
    keep.get_by_role("button", name="Add to case").click()
    page.wait_for_url("**/cases/*")
    case_id = page.url.rsplit("/", 1)[-1]
    shown = [a.get_attribute("data-event-id") for a in page.locator("[data-case-clips] a.event").all()]
    assert sorted(shown) == sorted(series)
    # the site is shared by this module's tests: leave no case and no kept clip behind
    assert api.delete(f"/api/v1/cases/{case_id}").status_code == 204
    for eid in series:
        assert api.patch(f"/api/v1/events/{eid}", json={"kept": False}).status_code == 200
    assert not outside and not errors, (outside, errors)
