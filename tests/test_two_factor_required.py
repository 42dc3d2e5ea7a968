"""The operator requires two-step verification (``two_factor_required``): someone without it may only set it up
(API: 403 ``two_factor_required``; pages: sent to the account page), with their session or an API token alike;
cameras keep uploading; once it is on, everything opens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from alarmcloud import twofactor

from tests.conftest import set_account  # type: ignore[import-not-found]
from tests.test_twofactor import PASSWORD, _enable  # type: ignore[import-not-found]


@pytest.fixture(autouse=True)
def _back_to_nobody(server: Any) -> Any:
    yield
    server.core.settings.two_factor_required = "nobody"


def _refused(r: httpx.Response) -> bool:
    return r.status_code == 403 and r.json()["error"]["code"] == "two_factor_required"


def test_owners_must_set_it_up_before_anything_else(api: Any, server: Any, clip: Path) -> None:
    a = api().register("must-2fa@example.com")
    cam = a.camera("Garden")
    creds = a.upload_credentials(cam["id"])
    token = a.post("/api/v1/tokens", json={"name": "script", "read_only": True}).json()["token"]
    server.core.settings.two_factor_required = "owners"

    for r in (a.get("/api/v1/events"), a.get("/api/v1/cameras"), a.patch(f"/api/v1/cameras/{cam['id']}",
              json={"name": "x"}), a.post("/api/v1/tokens", json={"name": "another"}), a.get("/api/v1/me/offsite"),
              a.get("/api/v1/me/sessions"), a.post("/api/v1/me/exports")):
        assert _refused(r), (r.request.url, r.text)
    assert "set it up first" in a.get("/api/v1/events").json()["error"]["message"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert _refused(httpx.get(server.url + "/api/v1/events", headers=bearer))  # scripts too, until it is on
    assert a.get("/api/v1/me").json()["email"] == "must-2fa@example.com"
    assert a.get("/api/v1/me/2fa").json()["enabled"] is False
    assert a.get(f"/api/v1/cameras/{cam['id']}").status_code == 403  # nothing about the cameras either

    # pages send them to the account page, which shows only what it takes to set it up
    for path in ("/", "/cameras", f"/cameras/{cam['id']}", "/storage", "/links", "/notifications", "/plates", "/cases",
                 "/privacy-center", "/login"):
        r = a.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/account?setup=two-factor#two-factor", path
    page = a.get("/account").text
    assert "Set up two-step verification to continue" in page and "Switch on two-step verification" in page
    assert "Change password" not in page and "API tokens" not in page and "Signed-in devices" not in page
    # an account link (Alexa, Google, IFTTT) waits for it too
    r = a.get("/oauth/authorize?client_id=x&response_type=code", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/account?setup=two-factor")

    # the camera keeps uploading: its clips are stored and analysed as before
    ev = a.upload(creds, clip)
    assert ev.status_code == 201, ev.text

    _enable(a)
    assert a.get("/api/v1/events").status_code == 200 and a.get("/api/v1/cameras").status_code == 200
    assert httpx.get(server.url + "/api/v1/events", headers=bearer).status_code == 200
    assert a.get("/", follow_redirects=False).status_code == 200
    page = a.get("/account").text
    assert "Set up two-step verification to continue" not in page and "API tokens" in page
    assert "it asks you to set it up again at once" in page  # switching off starts over


def test_who_must_follows_the_setting(api: Any, server: Any) -> None:
    owner = api().register("rule-owner@example.com")
    cam = owner.camera("Porch")
    r = owner.post("/api/v1/subusers", json={"email": "rule-kid@example.com", "password": PASSWORD,
                                             "rights": {cam["id"]: "view"}})
    assert r.status_code == 201, r.text
    kid = api().login("rule-kid@example.com")
    op = api().register("rule-operator@example.com")
    set_account(server.core, op.id, role="operator")
    who = {"owner": owner, "sub-user": kid, "operator": op}
    expected = {"nobody": set(), "operators": {"operator"}, "owners": {"owner", "operator"},
                "everyone": {"owner", "sub-user", "operator"}}
    for rule, must in expected.items():
        server.core.settings.two_factor_required = rule
        refused = {name for name, person in who.items() if _refused(person.get("/api/v1/cameras"))}
        assert refused == must, rule
    server.core.settings.two_factor_required = "everyone"
    _enable(kid)
    assert kid.get("/api/v1/cameras").status_code == 200
    assert owner.post("/api/v1/auth/logout").status_code == 204  # logging out is always possible


def test_switching_it_off_asks_for_it_again_at_once(api: Any, server: Any) -> None:
    a = api().register("again-2fa@example.com")
    secret, codes = _enable(a)
    server.core.settings.two_factor_required = "everyone"
    assert a.get("/api/v1/cameras").status_code == 200
    r = a.post("/api/v1/me/2fa/disable", json={"password": PASSWORD, "code": codes[0]})
    assert r.status_code == 204, r.text
    assert _refused(a.get("/api/v1/cameras"))  # a new phone: set it up again
    r = a.post("/api/v1/me/2fa")
    assert r.status_code == 201, r.text
    code = twofactor.totp(r.json()["secret"])
    r = a.post("/api/v1/me/2fa/confirm", json={"code": code, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert a.get("/api/v1/cameras").status_code == 200
    assert secret != r.json()["recovery_codes"][0]


def test_the_operator_sees_who_has_it_on(api: Any, server: Any) -> None:
    op = api().register("op-2fa@example.com")
    set_account(server.core, op.id, role="operator")
    owner = api().register("owner-2fa@example.com")
    cam = owner.camera("Porch")
    assert owner.post("/api/v1/subusers", json={"email": "kid-2fa@example.com", "password": PASSWORD,
                                                "rights": {cam["id"]: "view"}}).status_code == 201
    _enable(op)
    server.core.settings.two_factor_required = "owners"

    def cell(email: str) -> str:
        users = op.get("/operator").text.split("<h2>Users</h2>", 1)[1]
        row = next(r for r in users.split("<tr>") if email in r)
        return row.split("<td data-two-factor>", 1)[1].split("</td>", 1)[0]

    assert cell("op-2fa@example.com") == "on"
    assert cell("owner-2fa@example.com") == "<strong>off (required)</strong>"
    assert cell("kid-2fa@example.com") == "off"  # a sub-user: not required of them under "owners"
    _enable(owner)
    assert cell("owner-2fa@example.com") == "on"
