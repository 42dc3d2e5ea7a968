"""Push notifications through ntfy: a real HTTP server on loopback stands in for the ntfy server (ntfy.sh is on
the internet). Clips go through the real upload API; pushes leave through the durable outbox."""

from __future__ import annotations

import base64
import io
import json
import re
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from alarmcloud.models import Account, Outbox
from alarmcloud.testing import static_scene, test_settings
from sqlmodel import select

from tests.conftest import Receiver as Ntfy  # type: ignore[import-not-found]
from tests.conftest import outbox_rows, wait_outbox_state  # type: ignore[import-not-found]

TOKEN = "tk_0123456789abcdefghijklmnopqr"
PW = "another good pw"


@pytest.fixture
def ntfy(receiver: Ntfy) -> Ntfy:
    """The stand-in ntfy server: the webhook receiver, which also takes PUT and answers ntfy's JSON errors."""
    return receiver


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    st = test_settings(tmp_path / "data", camera_networks=["127.0.0.0/8"])
    st.notify.webhook_networks = ["127.0.0.0/8"]  # the stand-in ntfy server runs on loopback
    st.notify.retry_base_seconds = 0.3
    st.notify.max_attempts = 3
    st.notify.timeout_seconds = 5.0
    return st


def _push_on(a: Any, url: str, cooldown: int = 0, **extra: Any) -> dict[str, Any]:
    assert a.patch("/api/v1/me", json={"notify_cooldown_seconds": cooldown}).status_code == 200
    r = a.patch("/api/v1/me/push", json={"enabled": True, "url": url, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def _rows(core: Any, account_id: str) -> list[Outbox]:
    return outbox_rows(core, account_id, "push")


def _wait_state(core: Any, account_id: str, state: str, timeout: float = 30.0) -> Outbox:
    return wait_outbox_state(core, account_id, "push", state, timeout)


def _decode(value: str) -> str:
    """RFC 2047 as ntfy reads it (base64 form, the one the server sends)."""
    m = re.fullmatch(r"=\?UTF-8\?B\?(.*)\?=", value)
    return base64.b64decode(m.group(1)).decode() if m else value


# ---------------------------------------------------------------- end to end through the upload API


def test_an_alarm_pushes_once_with_headers_and_the_picture_only_when_switched_on(api: Any, server: Any, ntfy: Ntfy,
                                                                                  clip: Path) -> None:
    a = api().register("push1@example.com")
    state = _push_on(a, ntfy.url + "/alarms-x7q", token=TOKEN)
    assert state["picture"] is False and state["has_token"] is True  # the picture is off by default
    cam = a.camera("Garage")
    creds = a.upload_credentials(cam["id"])
    ev = a.upload_analysed(creds, clip)
    assert ev["verdict"] == "alarm"
    (req,) = ntfy.wait(1)
    public = server.core.settings.public_url.rstrip("/")
    h = req["headers"]
    assert req["method"] == "POST" and req["path"] == "/alarms-x7q"
    assert h["Title"] == "Alarm: Garage" and h["Priority"] == "high" and h["Tags"] == "rotating_light"
    assert h["Click"] == f"{public}/events/{ev['id']}"
    assert h["Authorization"] == f"Bearer {TOKEN}"
    assert "Filename" not in h
    text = req["body"].decode()
    assert text.startswith("Garage recorded an alarm at ") and text.endswith(" UTC.")
    assert ev["started_at"][:10] in text  # the time of the clip

    assert a.patch("/api/v1/me/push", json={"picture": True}).json()["picture"] is True
    ev2 = a.upload_analysed(creds, clip)
    req2 = ntfy.wait(2)[1]
    thumb = a.get(f"/api/v1/events/{ev2['id']}/thumbnail")
    assert thumb.status_code == 200
    assert req2["method"] == "PUT" and req2["body"] == thumb.content and req2["body"][:2] == b"\xff\xd8"
    h2 = req2["headers"]
    assert h2["Filename"] == "alarm.jpg" and h2["Title"] == "Alarm: Garage"
    assert h2["Message"].startswith("Garage recorded an alarm at ") and h2["Click"].endswith(ev2["id"])
    assert h2["Authorization"] == f"Bearer {TOKEN}"
    time.sleep(1.0)  # a few delivery rounds: nothing is sent twice
    assert len(ntfy.received()) == 2
    assert [r.state for r in _rows(server.core, a.id)] == ["sent", "sent"]


def test_false_alarms_send_nothing_with_only_real_alarms(api: Any, server: Any, ntfy: Ntfy, clip: Path,
                                                         make_test_clip: Any) -> None:
    a = api().register("push2@example.com")
    _push_on(a, ntfy.url + "/garden")  # "only real alarms" is on by default, shared with the e-mail
    creds = a.upload_credentials(a.camera("Garden")["id"])
    still = make_test_clip("still", seconds=18, fps=15, scene=static_scene)
    assert a.upload_analysed(creds, still)["verdict"] == "false_alarm:no_motion"
    assert _rows(server.core, a.id) == []
    assert a.upload_analysed(creds, clip)["verdict"] == "alarm"
    assert len(ntfy.wait(1)) == 1

    assert a.patch("/api/v1/me", json={"notify_only_real": False}).status_code == 200
    a.upload_analysed(creds, still)
    req = ntfy.wait(2)[1]
    assert req["headers"]["Title"] == "False alarm (no motion): Garden" and req["headers"]["Priority"] == "low"


def test_the_cooldown_holds_per_camera_and_channel(api: Any, server: Any, ntfy: Ntfy, clip: Path) -> None:
    a = api().register("push3@example.com")
    _push_on(a, ntfy.url + "/quiet", cooldown=3600)
    assert a.patch("/api/v1/me", json={"notify_email": True}).status_code == 200  # no SMTP here: rows only
    front, back = a.camera("Front"), a.camera("Back")
    front_creds = a.upload_credentials(front["id"])
    for _ in range(2):
        assert a.upload_analysed(front_creds, clip)["verdict"] == "alarm"
    a.upload_analysed(a.upload_credentials(back["id"]), clip)
    reqs = ntfy.wait(2)
    time.sleep(1.0)
    assert sorted(r["headers"]["Title"] for r in ntfy.received()) == ["Alarm: Back", "Alarm: Front"]
    with server.core.db.session() as s:  # the e-mail has its own quiet time: also once per camera
        kinds = [r.kind for r in s.exec(select(Outbox).where(Outbox.account_id == a.id)).all()]
    assert sorted(kinds) == ["email", "email", "push", "push"] and len(reqs) == 2


def test_sub_users_get_pushes_only_for_cameras_they_have_a_right_on(api: Any, server: Any, ntfy: Ntfy,
                                                                    clip: Path) -> None:
    owner = api().register("pfamily@example.com")  # the owner has push off
    garage, garden = owner.camera("Garage"), owner.camera("Garden")
    for email_, cam, topic in (("pkid@example.com", garage, "/kid"), ("pneighbour@example.com", garden, "/nb")):
        r = owner.post("/api/v1/subusers", json={"email": email_, "password": PW, "rights": {cam["id"]: "view"}})
        assert r.status_code == 201, r.text
        _push_on(api().login(email_, PW), ntfy.url + topic)
    owner.upload_analysed(owner.upload_credentials(garage["id"]), clip)
    (req,) = ntfy.wait(1)
    assert req["path"] == "/kid" and req["headers"]["Title"] == "Alarm: Garage"
    time.sleep(1.0)  # the neighbour has no right on the garage camera; the owner asked for none
    assert len(ntfy.received()) == 1


# ---------------------------------------------------------------- failures, test push, validation, secrecy


def test_a_server_error_is_retried_and_a_refusal_dead_letters_with_the_error_shown(api: Any, server: Any,
                                                                                   ntfy: Ntfy, clip: Path) -> None:
    a = api().register("push4@example.com")
    _push_on(a, ntfy.url + "/flaky")
    creds = a.upload_credentials(a.camera("Porch")["id"])
    ntfy.script["/flaky"] = [(500, "internal server error")]
    a.upload_analysed(creds, clip)
    row = _wait_state(server.core, a.id, "sent")
    assert row.attempts == 2 and row.last_error == "HTTP 500: internal server error"
    assert [r["status"] for r in ntfy.wait(2)] == [500, 200]

    ntfy.script["/flaky"] = [(403, "forbidden"), (403, "forbidden")]
    a.upload_analysed(creds, clip)
    row = _wait_state(server.core, a.id, "dead")
    assert row.attempts == 1 and row.last_error == "HTTP 403: forbidden"  # a refusal is not retried
    time.sleep(1.0)
    assert len(ntfy.received()) == 3
    shown = a.get("/api/v1/me/push").json()["deliveries"][0]
    assert shown["state"] == "dead" and shown["last_error"] == "HTTP 403: forbidden" and shown["attempts"] == 1

    # the test push shows the outcome at once
    ntfy.script["/flaky"] = [(401, "unauthorized")]
    r = a.post("/api/v1/me/push/test")
    assert r.status_code == 201
    assert r.json()["state"] == "dead" and r.json()["last_error"] == "HTTP 401: unauthorized"
    r = a.post("/api/v1/me/push/test")
    assert r.status_code == 201 and r.json()["state"] == "sent" and r.json()["last_error"] is None
    req = ntfy.received()[-1]
    assert req["method"] == "POST" and req["headers"]["Title"] == "alarmcloud test"
    assert "Test push from alarmcloud" in req["body"].decode()


def test_topic_urls_follow_the_webhook_address_rules(api: Any, server: Any, ntfy: Ntfy) -> None:
    a = api().register("push5@example.com")
    assert a.post("/api/v1/me/push/test").json()["error"]["code"] == "no_push_topic"
    r = a.patch("/api/v1/me/push", json={"enabled": True})
    assert r.status_code == 400 and "topic URL" in r.json()["error"]["message"]
    for url in ("ftp://ntfy.example/x", "https://user:pw@ntfy.sh/x", "not a url"):
        r = a.patch("/api/v1/me/push", json={"url": url})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_url", url
    _push_on(a, ntfy.url + "/mine")  # loopback allowed by this deployment's settings
    server.core.settings.notify.webhook_networks = []  # the default: public addresses only
    for url in ("http://127.0.0.1:9/x", "http://localhost/x", "http://10.1.2.3/x", "http://169.254.169.254/x",
                "http://[::1]/x", "http://[::ffff:127.0.0.1]/x"):
        r = a.patch("/api/v1/me/push", json={"url": url})
        assert r.status_code == 400, url
        assert r.json()["error"]["code"] == "invalid_url" and "not a public address" in r.json()["error"]["message"]
    # checked again when sending: the topic saved while loopback was allowed is not contacted now
    r = a.post("/api/v1/me/push/test")
    assert r.status_code == 201 and r.json()["state"] == "queued"
    assert "not a public address" in r.json()["last_error"]
    assert ntfy.received() == []
    assert a.patch("/api/v1/me/push", json={"url": "https://93.184.215.14/topic"}).status_code == 200  # public


def test_the_token_is_stored_encrypted_and_never_returned(api: Any, server: Any, ntfy: Ntfy) -> None:
    a = api().register("push6@example.com")
    answers = [a.patch("/api/v1/me/push", json={"url": ntfy.url + "/t", "token": TOKEN, "enabled": True}),
               a.get("/api/v1/me/push"), a.get("/api/v1/me"), a.get("/notifications")]
    for r in answers:
        assert r.status_code == 200 and TOKEN not in r.text
    assert answers[1].json()["has_token"] is True
    with server.core.db.session() as s:
        acc = s.get(Account, a.id)
        assert acc is not None and acc.notify_push_token_enc and TOKEN not in acc.notify_push_token_enc
    assert a.post("/api/v1/me/push/test").json()["state"] == "sent"
    assert ntfy.received()[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"
    export = a.get("/api/v1/me/export")  # the person's data: the topic yes, the token in no form
    assert export.status_code == 200
    profile = json.loads(zipfile.ZipFile(io.BytesIO(export.content)).read("account.json"))["profile"][0]
    assert profile["notify_push_url"] == ntfy.url + "/t" and profile["notify_push"] is True
    assert not any("token" in k for k in profile) and acc.notify_push_token_enc not in export.text
    # another server never gets the token: moving the topic elsewhere drops it
    with Ntfy() as other:
        r = a.patch("/api/v1/me/push", json={"url": other.url + "/t"})
        assert r.status_code == 200 and r.json()["has_token"] is False
        assert a.post("/api/v1/me/push/test").json()["state"] == "sent"
        assert "Authorization" not in other.received()[0]["headers"]
    # another topic on the same server keeps it; null removes it
    a.patch("/api/v1/me/push", json={"url": ntfy.url + "/t", "token": TOKEN})
    assert a.patch("/api/v1/me/push", json={"url": ntfy.url + "/u"}).json()["has_token"] is True
    assert a.patch("/api/v1/me/push", json={"token": None}).json()["has_token"] is False


def test_camera_names_outside_ascii_reach_the_server_intact(api: Any, server: Any, ntfy: Ntfy, clip: Path) -> None:
    a = api().register("push7@example.com")
    _push_on(a, ntfy.url + "/k", picture=True)
    ev = a.upload_analysed(a.upload_credentials(a.camera("Küche 🐈")["id"]), clip)
    (req,) = ntfy.wait(1)
    assert req["headers"]["Title"].isascii()
    assert _decode(req["headers"]["Title"]) == "Alarm: Küche 🐈"
    assert _decode(req["headers"]["Message"]).startswith("Küche 🐈 recorded an alarm at ")
    assert ev["id"] in req["headers"]["Click"]


def test_the_record_of_processing_names_the_push_server_as_a_recipient(server: Any) -> None:
    import httpx

    acts = httpx.get(server.url + "/api/v1/privacy/processing").json()["activities"]
    (act,) = [a for a in acts if a["name"] == "core: notifications"]
    assert any("push server" in r for r in act["recipients"])
    assert any("picture only where the person switched it on" in d for d in act["data"])
    assert "core: notifications" in httpx.get(server.url + "/privacy").text
