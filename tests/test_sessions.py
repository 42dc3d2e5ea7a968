"""Signed-in devices: a person sees their sessions (a coarse browser and system, never the User-Agent itself) and
signs one, or every other one, out; the next request of a signed-out session answers 401."""

from __future__ import annotations

from typing import Any

import pytest
from alarmcloud.auth import device_label
from alarmcloud.models import SessionRow
from sqlmodel import select

from tests.conftest import PASSWORD  # type: ignore[import-not-found]

FIREFOX_ANDROID = "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0"
CHROME_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/131.0.0.0 Safari/537.36")
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Version/18.1 Mobile/15E148 Safari/604.1")


@pytest.mark.parametrize(("ua", "label"), [
    (FIREFOX_ANDROID, "Firefox on Android"), (CHROME_WINDOWS, "Chrome on Windows"),
    (SAFARI_IPHONE, "Safari on iPhone"),
    (CHROME_WINDOWS.replace("Safari/537.36", "Safari/537.36 Edg/131.0.2903.86"), "Edge on Windows"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Linux"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
     "Safari/605.1.15", "Safari on macOS"),
    ("curl/8.5.0", None), ("", None), ("python-httpx/0.28.1", None),
])
def test_device_labels_are_coarse(ua: str, label: str | None) -> None:
    assert device_label(ua) == label


def _login(api: Any, email: str, ua: str) -> Any:
    person = api()
    person.http.headers["User-Agent"] = ua
    return person.login(email)


def test_see_sessions_and_sign_them_out(server: Any, api: Any) -> None:
    core: Any = server.core
    api().register("devices@example.com")
    phone = _login(api, "devices@example.com", FIREFOX_ANDROID)
    laptop = _login(api, "devices@example.com", CHROME_WINDOWS)
    items = phone.get("/api/v1/me/sessions").json()["items"]
    assert [(i["device"], i["current"]) for i in items][:1] == [("Firefox on Android", True)]  # this one first
    assert {i["device"] for i in items} == {"Firefox on Android", "Chrome on Windows", None}  # + the registering one
    assert all(len(i["id"]) == 16 and i["created_at"] and i["last_seen_at"] for i in items)
    # only the coarse label is stored: no version, no raw User-Agent
    with core.db.session() as s:
        stored = [r.device for r in s.exec(select(SessionRow)).all()]
    assert "Firefox on Android" in stored and not any("133" in (d or "") for d in stored)

    # the phone signs the laptop out: its next request is refused, the phone goes on
    lap = next(i for i in items if i["device"] == "Chrome on Windows")
    assert phone.delete(f"/api/v1/me/sessions/{lap['id']}").status_code == 204
    r = laptop.get("/api/v1/me")
    assert r.status_code == 401
    assert phone.get("/api/v1/me").status_code == 200
    assert phone.delete(f"/api/v1/me/sessions/{lap['id']}").status_code == 404  # gone

    # every other one at once (a lost phone, a shared computer): the caller stays signed in
    tablet = _login(api, "devices@example.com", SAFARI_IPHONE)
    r = phone.delete("/api/v1/me/sessions")
    assert r.status_code == 200 and r.json() == {"ended": 2}  # the tablet and the registering one
    assert tablet.get("/api/v1/me").status_code == 401
    assert [i["current"] for i in phone.get("/api/v1/me/sessions").json()["items"]] == [True]

    # another person's session, or an id of the wrong form, is not found; a sub-user sees only their own
    other = _login(api, api().register("someone@example.com").email, CHROME_WINDOWS)
    theirs = other.get("/api/v1/me/sessions").json()["items"][0]["id"]
    for sid in (theirs, "0" * 16, "x", theirs.upper(), theirs + "0"):
        r = phone.delete(f"/api/v1/me/sessions/{sid}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", sid
    assert other.get("/api/v1/me").status_code == 200
    assert phone.post("/api/v1/subusers", json={"email": "kid@example.com", "password": PASSWORD,
                                                "rights": {}}).status_code == 201
    kid = _login(api, "kid@example.com", SAFARI_IPHONE)
    assert [i["device"] for i in kid.get("/api/v1/me/sessions").json()["items"]] == ["Safari on iPhone"]

    # a script with a token sees the sessions (none is its own) and may end them all
    token = phone.post("/api/v1/tokens", json={"name": "admin script"}).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    items = phone.http.get("/api/v1/me/sessions", headers=bearer).json()["items"]
    assert len(items) == 1 and items[0]["current"] is False
    r = phone.http.delete("/api/v1/me/sessions", headers=bearer)
    assert r.status_code == 200 and r.json() == {"ended": 1}
    assert phone.get("/api/v1/me").status_code == 401

    # signing out one's own session is logging out: the cookies are cleared too
    again = _login(api, "devices@example.com", FIREFOX_ANDROID)
    mine = again.get("/api/v1/me/sessions").json()["items"][0]
    r = again.delete(f"/api/v1/me/sessions/{mine['id']}")
    assert r.status_code == 204 and 'ac_session=""' in r.headers.get("set-cookie", "")
    assert again.get("/api/v1/me").status_code == 401
