"""Camera sites in a real browser: the owner puts a camera at a site on its page, finds the cameras listed by site
and the alarms filtered by it, then takes the site away again."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import AUDIT_JS, OWNER, Site, login, watch  # noqa: E402

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
