"""API tokens and the API reference in a real browser: a person makes a token on the account page, a script uses it,
the person revokes it there and the script is refused; the reference page documents every call of the server.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import AUDIT_JS, PASSWORD, browser, login, opened_page, require_chromium, watch  # noqa: E402

pytestmark = pytest.mark.browser

EMAIL = "scripts@example.org"


def test_make_a_token_use_it_from_a_script_and_revoke_it(tmp_path: Path) -> None:
    require_chromium()
    from alarmcloud.testing import LiveServer, test_settings

    with LiveServer(test_settings(tmp_path / "data")) as srv, browser() as b, \
            opened_page(b, 1280, 800) as page:
        assert httpx.post(srv.url + "/api/v1/auth/register",
                          json={"email": EMAIL, "password": PASSWORD}).status_code == 201
        outside, errors = watch(page, srv.url)
        page.on("dialog", lambda d: d.accept())  # "Revoke the token …?"
        login(page, srv.url, EMAIL)
        page.goto(srv.url + "/account")
        card = page.locator("#api-tokens")
        assert card.get_by_text("No API tokens.").is_visible()
        card.get_by_label("Name of the new token").fill("Home Assistant")
        card.get_by_role("button", name="Create a token").click()
        shown = card.locator("[data-token-new]")
        shown.wait_for(state="visible")
        token = card.locator("[data-token-value]").inner_text()
        assert token.startswith("act_")
        assert token in card.locator("[data-token-example]").inner_text()  # a curl line to try it with
        assert card.get_by_role("row", name="Home Assistant").is_visible()
        found = page.evaluate(AUDIT_JS)
        assert not found, found

        # read only unless switched off: a script sees the account's events and changes nothing
        assert card.get_by_role("row", name="Home Assistant").get_by_role("cell", name="read", exact=True).is_visible()
        r = httpx.get(srv.url + "/api/v1/events", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["items"] == []
        r = httpx.post(srv.url + "/api/v1/cameras", headers={"Authorization": f"Bearer {token}"},
                       json={"name": "Gate", "brand": "instar", "model": "IN-9008 Full HD"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "read_only_token"
        # one with "Read only" switched off may change things
        card.get_by_label("Name of the new token").fill("Backup script")
        card.get_by_label("Read only").uncheck()
        card.get_by_role("button", name="Create a token").click()
        card.get_by_role("row", name="Backup script").get_by_role("cell", name="read and change").wait_for()
        full = card.locator("[data-token-value]").inner_text()
        assert full != token
        r = httpx.post(srv.url + "/api/v1/cameras", headers={"Authorization": f"Bearer {full}"},
                       json={"name": "Gate", "brand": "instar", "model": "IN-9008 Full HD"})
        assert r.status_code == 201, r.text
        page.reload()
        row = page.locator("#api-tokens").get_by_role("row", name="Home Assistant")
        assert "never" not in row.inner_text()
        assert page.locator("#api-tokens [data-token-value]").inner_text() == ""  # shown once, not on a reload

        # revoked on the page: the script is refused at once, and the token is gone from the list
        row.get_by_role("button", name="Revoke the token Home Assistant").click()
        page.locator("#api-tokens").get_by_role("row", name="Home Assistant").wait_for(state="detached")
        r = httpx.get(srv.url + "/api/v1/events", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
        page.reload()
        rows = page.locator("#api-tokens tbody tr")
        assert rows.count() == 1 and "Backup script" in rows.inner_text()
        assert not outside and not errors, (outside, errors)


def test_the_api_reference_documents_every_call_without_a_login(tmp_path: Path) -> None:
    require_chromium()
    from alarmcloud.testing import LiveServer, test_settings

    with LiveServer(test_settings(tmp_path / "data")) as srv, browser() as b, \
            opened_page(b, 375, 740) as page:
        doc = httpx.get(srv.url + "/openapi.json").json()
        outside, errors = watch(page, srv.url)
        page.goto(srv.url + "/api-docs")
        assert page.get_by_role("heading", name="API reference", level=1).is_visible()
        api_ops = [(m.upper(), p, op["operationId"]) for p, ops in doc["paths"].items() for m, op in ops.items()
                   if op["tags"] != ["web-ui"]]
        ids = set(page.eval_on_selector_all("article.api-op", "els => els.map((e) => e.id)"))
        assert ids == {op_id for _, _, op_id in api_ops}
        # the events list with its filters, and what it answers
        events = page.locator("article#get_list_events")
        text = events.inner_text()
        for name in ("camera_id", "since", "until", "label", "verdict", "plate", "plates", "series_id", "cursor",
                     "limit", "next_cursor"):
            assert name in text, name
        assert "1 to 200, default 50" in text
        # the contents link to each group
        page.get_by_role("link", name="Uploads from cameras").click()
        assert page.url.endswith("#tag-ingest")
        assert "X-Recorded-At" in page.locator("#tag-ingest").inner_text()
        found = page.evaluate(AUDIT_JS)
        assert not found, found
        assert not outside and not errors, (outside, errors)


def test_the_reference_page_lists_a_plugin_route_and_needs_no_script(tmp_path: Path) -> None:
    """Without a browser: the page is plain HTML (it works with scripts off) and a plugin's route is on it."""
    from alarmcloud.testing import LiveServer, test_settings

    with LiveServer(test_settings(tmp_path / "data")) as srv:
        r = httpx.get(srv.url + "/api-docs")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "/plugins/instar/alarm" in r.text
        assert '<a href="/openapi.json">' in r.text
