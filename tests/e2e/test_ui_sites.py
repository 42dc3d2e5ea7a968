"""A camera's page in a real browser: the owner puts the camera at a site and finds the cameras listed by site and
the alarms filtered by it, then takes the site away again; and asks to be told when the camera falls silent."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import AUDIT_JS, OWNER, PASSWORD, Site, login, watch  # noqa: E402

pytestmark = pytest.mark.browser


def _save_site(page: Any, site: Site, value: str) -> None:
    page.goto(f"{site.url}/cameras/{site.camera_id}")  # the Garden camera
    form = page.locator("form", has=page.get_by_label("Site", exact=False))
    page.get_by_label("Site").fill(value)
    form.get_by_role("button", name="Save").click()
    page.get_by_text("Camera saved.").wait_for()


def test_put_a_camera_at_a_site_and_filter_by_it(desktop: Any, site: Site) -> None:
    page = desktop
    outside, errors = watch(page, site.url)
    login(page, site.url, OWNER)
    _save_site(page, site, "Holiday home")
    assert page.get_by_label("Site").input_value() == "Holiday home"

    page.goto(site.url + "/cameras")
    heads = page.locator("h2.site-head")
    assert heads.all_inner_texts() == ["Holiday home", "Other cameras"]
    assert page.locator("ul.cam-list").nth(0).locator("h3").all_inner_texts() == ["Garden"]
    found = page.evaluate(AUDIT_JS)
    assert not found, found

    page.goto(site.url + "/")
    page.get_by_label("Site").select_option("Holiday home")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**site=Holiday**")
    names = page.locator("a.event .cam").all_inner_texts()
    assert names and set(names) == {"Garden"}

    _save_site(page, site, "")  # no site any more: no headings, no filter
    page.goto(site.url + "/cameras")
    assert page.locator("h2.site-head").count() == 0
    page.goto(site.url + "/")
    assert page.get_by_label("Site").count() == 0
    assert not outside and not errors, (outside, errors)


def test_ask_to_be_told_when_a_camera_falls_silent(desktop: Any, site: Site) -> None:
    page = desktop
    login(page, site.url, OWNER)

    def setting() -> Any:
        with httpx.Client(base_url=site.url, timeout=30) as c:
            assert c.post("/api/v1/auth/login", json={"email": OWNER, "password": PASSWORD}).status_code == 200
            return c.get(f"/api/v1/cameras/{site.camera_id}").json()["silent_after_days"]

    for value, expected in (("3", 3), ("", None)):  # then empty: never
        page.goto(f"{site.url}/cameras/{site.camera_id}")
        form = page.locator("form[data-silence]")
        form.get_by_label("Tell me when it sends no clip for").fill(value)
        form.get_by_role("button", name="Save").click()
        page.get_by_text("Saved.").wait_for()
        assert setting() == expected
        assert page.locator("form[data-silence] input").input_value() == value
