"""The cameras list's view-check notice in a real browser: shown for an obstructed camera, dismissed with its button."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import AUDIT_JS, OWNER, PASSWORD, Site, login, opened_page, watch  # noqa: E402

pytestmark = pytest.mark.browser


def test_obstructed_camera_shows_the_notice_and_dismiss_clears_it(chromium: Any, site: Site) -> None:
    from alarmcloud.models import Camera, utcnow

    # the state the pipeline leaves after three blurred night clips (tests/test_view_check.py drives it with clips)
    with site.core.db.session() as s:  # type: ignore[attr-defined]
        cam = s.get(Camera, site.camera_id)
        cam.view_state, cam.view_reason, cam.view_light, cam.view_since = "obstructed", "blurred", "night", utcnow()
        cam.view_data = {"day": [], "night": [], "recent": {"night": ["blurred"] * 3}, "good": 0}
        s.add(cam)
        s.commit()
    with opened_page(chromium, 1280, 900) as page:
        outside, errors = watch(page, site.url)
        login(page, site.url, OWNER)
        page.goto(f"{site.url}/cameras")
        notice = page.locator(f"[data-view-notice='{site.camera_id}']")
        assert notice.is_visible()
        text = notice.inner_text()
        assert "Check the camera's view: the picture has been blurred in the last 3 night clips" in text
        assert "a spider web or dirt on the lens?" in text
        assert page.locator("[data-view-notice]").count() == 1  # only the obstructed camera has one
        assert page.evaluate(AUDIT_JS) == []  # labels, contrast, sizes (tests/e2e/audit.js)
        notice.get_by_role("button", name="Dismiss").click()
        page.wait_for_load_state("load")
        page.locator(".flash").filter(has_text="Notice dismissed").wait_for(timeout=15_000)
        assert page.locator("[data-view-notice]").count() == 0
        assert outside == [] and errors == []
    c = httpx.Client(base_url=site.url, timeout=30)
    assert c.post("/api/v1/auth/login", json={"email": OWNER, "password": PASSWORD}).status_code == 200
    assert c.get(f"/api/v1/cameras/{site.camera_id}").json()["view"]["state"] == "learning"
