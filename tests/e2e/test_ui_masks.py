"""The camera page's privacy-mask card in a real browser: draw by mouse, type by keyboard, save, reload, remove."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import AUDIT_JS, OWNER, PASSWORD, Site, login, opened_page, owner_api  # noqa: E402

pytestmark = pytest.mark.browser


def stored_masks(site: Site, camera_id: str) -> list[list[float]]:
    return owner_api(site).get(f"/api/v1/cameras/{camera_id}").json()["privacy_masks"]


def listed(page: Any) -> list[str]:
    return page.eval_on_selector_all("[data-mask-list] li span", "els => els.map((e) => e.textContent)")


def drag(page: Any, frm: tuple[float, float], to: tuple[float, float]) -> None:
    """Press, move and release the mouse on the picture, at fractions of its size."""
    box = page.locator("[data-mask-stage]").bounding_box()
    page.mouse.move(box["x"] + frm[0] * box["width"], box["y"] + frm[1] * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + to[0] * box["width"], box["y"] + to[1] * box["height"], steps=6)
    page.mouse.up()


def test_draw_a_mask_by_mouse_save_reload_and_remove_it(chromium: Any, site: Site) -> None:
    url = f"{site.url}/cameras/{site.camera_id}"
    with opened_page(chromium, 1280, 900) as page:
        login(page, site.url, OWNER)
        page.goto(url)
        card = page.locator("#privacy-masks")
        assert card.get_by_role("heading", name="Privacy masks").is_visible()
        assert "painted black before a clip is stored" in card.inner_text()
        assert "clips already stored are not changed" in card.inner_text()
        # the latest clip's thumbnail is the picture to draw on
        img = card.locator("[data-mask-stage] img")
        assert "/thumbnail" in (img.get_attribute("src") or "")
        page.wait_for_function("() => document.querySelector('[data-mask-stage] img').naturalWidth > 0")
        assert listed(page) == [] and card.get_by_text("No masks").is_visible()

        drag(page, (0.1, 0.2), (0.4, 0.6))
        assert listed(page) == ["Mask 1: 10–40 % across, 20–60 % down"]
        assert card.get_by_text("Not saved yet.").is_visible()
        assert stored_masks(site, site.camera_id) == []  # nothing changes before "Save masks"
        rect = card.locator(".mask-rect").bounding_box()
        stage = card.locator("[data-mask-stage]").bounding_box()
        assert abs(rect["x"] - (stage["x"] + 0.1 * stage["width"])) < 3
        assert abs(rect["width"] - 0.3 * stage["width"]) < 3

        card.get_by_role("button", name="Save masks").click()
        card.get_by_text("Saved: new clips are stored with these masks.").wait_for()
        (saved,) = stored_masks(site, site.camera_id)
        assert all(abs(a - b) < 0.006 for a, b in zip(saved, [0.1, 0.2, 0.4, 0.6], strict=True)), saved

        page.reload()
        assert listed(page) == ["Mask 1: 10–40 % across, 20–60 % down"]
        assert card.locator(".mask-rect").count() == 1
        card.get_by_role("button", name="Remove mask 1").click()
        assert listed(page) == [] and card.get_by_text("Not saved yet.").is_visible()
        card.get_by_role("button", name="Save masks").click()
        card.get_by_text("Saved: no masks.").wait_for()
        assert stored_masks(site, site.camera_id) == []
        page.reload()
        assert listed(page) == [] and card.locator(".mask-rect").count() == 0


def test_add_masks_by_keyboard_with_clear_errors(chromium: Any, site: Site) -> None:
    with opened_page(chromium, 1280, 900) as page:
        login(page, site.url, OWNER)
        page.goto(f"{site.url}/cameras/{site.camera_id}")
        card = page.locator("#privacy-masks")
        for name, value in (("Left", "50"), ("Top", "0"), ("Right", "40"), ("Bottom", "30")):
            card.get_by_label(name).fill(value)
        card.get_by_role("button", name="Add rectangle").click()
        assert card.get_by_role("alert").inner_text() == "Left must be less than Right, and Top less than Bottom."
        assert listed(page) == []
        card.get_by_label("Right").fill("100")
        card.get_by_label("Right").press("Enter")  # submits the small form; no mouse needed
        assert listed(page) == ["Mask 1: 50–100 % across, 0–30 % down"]
        assert not card.get_by_role("alert").is_visible()
        card.get_by_role("button", name="Save masks").focus()
        page.keyboard.press("Enter")
        card.get_by_text("Saved: new clips are stored with these masks.").wait_for()
        assert stored_masks(site, site.camera_id) == [[0.5, 0.0, 1.0, 0.3]]
        # a phone in dark mode: the card with a mask passes the page audit (labels, contrast, no sideways scroll)
        with opened_page(chromium, 375, 740, color_scheme="dark") as phone:
            login(phone, site.url, OWNER)
            phone.goto(f"{site.url}/cameras/{site.camera_id}")
            phone.wait_for_load_state("networkidle")
            assert phone.evaluate(AUDIT_JS) == []
            assert phone.locator("#privacy-masks .mask-rect").count() == 1
        owner_api(site).patch(f"/api/v1/cameras/{site.camera_id}", json={"privacy_masks": []})


def test_a_camera_without_clips_gets_a_placeholder_and_a_viewer_cannot_edit(chromium: Any, site: Site) -> None:
    c = owner_api(site)
    cam = c.post("/api/v1/cameras", json={"name": "New porch", "brand": "instar", "model": "IN-9008 Full HD"}).json()
    c.patch(f"/api/v1/cameras/{cam['id']}", json={"privacy_masks": [[0, 0, 0.5, 0.5]]})
    r = c.post("/api/v1/subusers", json={"email": "viewer.masks@example.org", "password": PASSWORD,
                                         "rights": {cam["id"]: "view"}})
    assert r.status_code == 201, r.text
    with opened_page(chromium, 1280, 900) as page:
        login(page, site.url, OWNER)
        page.goto(f"{site.url}/cameras/{cam['id']}")
        stage = page.locator("#privacy-masks [data-mask-stage]")
        assert stage.locator("img").count() == 0
        assert "No clip yet" in stage.inner_text()
        box = stage.bounding_box()
        assert abs(box["width"] / box["height"] - 16 / 9) < 0.05  # the frame's shape (Full HD model)
        assert listed(page) == ["Mask 1: 0–50 % across, 0–50 % down"]
    with opened_page(chromium, 1280, 900) as page:
        login(page, site.url, "viewer.masks@example.org")
        page.goto(f"{site.url}/cameras/{cam['id']}")
        card = page.locator("#privacy-masks")
        assert listed(page) == ["Mask 1: 0–50 % across, 0–50 % down"]
        assert card.get_by_role("button").count() == 0  # no Remove, no Save
        assert "admin right" in card.inner_text()
