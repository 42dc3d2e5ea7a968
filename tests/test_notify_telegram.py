"""Telegram notifications through the person's own bot: a real HTTP server on loopback stands in for the Telegram
Bot API (api.telegram.org is on the internet). Clips go through the real upload API; messages leave through the
durable outbox."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import zipfile
from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from alarmcloud.models import Account, Outbox
from alarmcloud.testing import test_settings

from tests.conftest import outbox_rows, wait_outbox_state  # type: ignore[import-not-found]

TOKEN = "7123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
OTHER_TOKEN = "6000000001:BBBdqTcvCH1vGWJxfSeofSAs0K5PALDsbb"
CHAT = "987654321"
PW = "another good pw"


class FakeTelegram:
    """The Bot API on loopback: ``POST /bot<token>/<method>`` with JSON or a multipart form, answered like Telegram.

    Tokens in ``tokens`` are known bots (others get 401 Unauthorized); ``script[method]`` lists answers in turn
    (status, JSON body), then ``{"ok": true}``; ``updates`` is what ``getUpdates`` returns.
    """

    def __init__(self) -> None:
        self.tokens = {TOKEN, OTHER_TOKEN}
        self.script: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self.updates: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                _, bot, method = self.path.split("/", 2)
                token = bot.removeprefix("bot")
                req: dict[str, Any] = {"token": token, "method": method, "at": time.monotonic(), "fields": {},
                                       "files": {}, "content_type": self.headers.get("Content-Type", "")}
                if req["content_type"].startswith("multipart/form-data"):
                    msg = BytesParser(policy=policy.HTTP).parsebytes(
                        b"Content-Type: " + req["content_type"].encode() + b"\r\n\r\n" + body)
                    for part in msg.iter_parts():
                        name = part.get_param("name", header="content-disposition")
                        data = part.get_payload(decode=True)
                        if part.get_filename():
                            req["files"][name] = (part.get_filename(), part.get_content_type(), data)
                        else:
                            req["fields"][name] = data.decode()
                elif body:
                    req["fields"] = json.loads(body)
                with outer._lock:
                    if token not in outer.tokens:
                        status, answer = 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
                    elif outer.script.get(method):
                        status, answer = outer.script[method].pop(0)
                    elif method == "getUpdates":
                        status, answer = 200, {"ok": True, "result": outer.updates}
                    else:
                        status, answer = 200, {"ok": True, "result": {"message_id": len(outer.requests) + 1}}
                    req["status"] = status
                    outer.requests.append(req)
                reply = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def received(self, method: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if method is None or r["method"] == method]

    def wait(self, count: int, method: str | None = None, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.received(method)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.received(method)


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    fake = FakeTelegram()
    yield fake
    fake.close()


@pytest.fixture
def settings(tmp_path: Path, telegram: FakeTelegram) -> Any:
    st = test_settings(tmp_path / "data", camera_networks=["127.0.0.0/8"])
    st.notify.telegram_api_url = telegram.url  # the operator setting; default https://api.telegram.org
    st.notify.retry_base_seconds = 0.3
    st.notify.max_attempts = 3
    st.notify.timeout_seconds = 5.0
    return st


def _telegram_on(a: Any, cooldown: int = 0, **extra: Any) -> dict[str, Any]:
    assert a.patch("/api/v1/me", json={"notify_cooldown_seconds": cooldown}).status_code == 200
    r = a.patch("/api/v1/me/telegram", json={"enabled": True, "token": TOKEN, "chat_id": CHAT, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def _rows(core: Any, account_id: str) -> list[Outbox]:
    return outbox_rows(core, account_id, "telegram")


def _wait_state(core: Any, account_id: str, state: str, timeout: float = 30.0) -> Outbox:
    return wait_outbox_state(core, account_id, "telegram", state, timeout)


# ---------------------------------------------------------------- set up, test message, alarms


def test_setup_test_message_and_an_alarm_sends_one_photo_with_caption(api: Any, server: Any,
                                                                      telegram: FakeTelegram, clip: Path) -> None:
    a = api().register("tg1@example.com")
    state = _telegram_on(a, picture=True)
    assert state["enabled"] is True and state["chat_id"] == CHAT and state["has_token"] is True
    assert state["picture"] is True and state["only_real"] is True and state["problem"] is None

    r = a.post("/api/v1/me/telegram/test")
    assert r.status_code == 201 and r.json()["state"] == "sent" and r.json()["test"] is True, r.text
    (test,) = telegram.received()
    public = server.core.settings.public_url.rstrip("/")
    assert test["method"] == "sendMessage" and test["token"] == TOKEN
    assert test["fields"]["chat_id"] == CHAT and test["fields"]["link_preview_options"] == {"is_disabled": True}
    assert test["fields"]["text"].splitlines() == ["alarmcloud test", "Test message from alarmcloud: this chat gets "
                                                   "alarm notifications.", f"{public}/notifications"]

    creds = a.upload_credentials(a.camera("Garage")["id"])
    ev = a.upload_analysed(creds, clip)
    assert ev["verdict"] == "alarm"
    (photo,) = telegram.wait(1, "sendPhoto")
    assert photo["token"] == TOKEN and photo["fields"]["chat_id"] == CHAT
    title, text, link = photo["fields"]["caption"].splitlines()
    assert title == "Alarm: Garage" and link == f"{public}/events/{ev['id']}"
    assert text.startswith("Garage recorded an alarm at ") and text.endswith(" UTC.") and ev["started_at"][:10] in text
    filename, ctype, jpeg = photo["files"]["photo"]
    thumb = a.get(f"/api/v1/events/{ev['id']}/thumbnail")
    assert filename == "alarm.jpg" and ctype == "image/jpeg" and jpeg == thumb.content and jpeg[:2] == b"\xff\xd8"

    # a picture Telegram refuses (400, e.g. its dimensions): the message still arrives, as text
    telegram.script["sendPhoto"] = [(400, {"ok": False, "error_code": 400,
                                           "description": "Bad Request: PHOTO_INVALID_DIMENSIONS"})]
    ev1 = a.upload_analysed(creds, clip)
    (refused,) = telegram.wait(2, "sendPhoto")[1:]
    (fallback,) = telegram.wait(2, "sendMessage")[1:]
    assert refused["status"] == 400 and ev1["id"] in fallback["fields"]["text"]
    assert _wait_state(server.core, a.id, "sent").payload.get("picture") is True

    # without the picture: a text message with the same lines, the picture stays in the cloud
    assert a.patch("/api/v1/me/telegram", json={"picture": False}).json()["picture"] is False
    ev2 = a.upload_analysed(creds, clip)
    (msg,) = telegram.wait(3, "sendMessage")[2:]
    assert msg["fields"]["text"].splitlines()[0] == "Alarm: Garage" and ev2["id"] in msg["fields"]["text"]
    time.sleep(1.0)  # a few delivery rounds: nothing is sent twice
    assert [r["method"] for r in telegram.received()] == ["sendMessage", "sendPhoto", "sendPhoto", "sendMessage",
                                                          "sendMessage"]
    assert [r.state for r in _rows(server.core, a.id)] == ["sent"] * 4
    shown = a.get("/api/v1/me/telegram").json()["deliveries"]
    assert [d["state"] for d in shown] == ["sent"] * 4 and ev["id"] in [d["event_id"] for d in shown]


def test_a_rain_false_alarm_sends_nothing_with_only_real_alarms(api: Any, server: Any, telegram: FakeTelegram,
                                                                make_test_clip: Any) -> None:
    pytest.importorskip("alarmcloud_detect_rain")
    from tests.test_rain_verdict import scene  # type: ignore[import-not-found]

    a = api().register("tg2@example.com")
    _telegram_on(a)  # "only real alarms" is on by default, shared with e-mail and push
    cam = a.camera("Garden")
    assert a.put(f"/api/v1/cameras/{cam['id']}/detectors", json={"rain": True}).status_code == 200
    creds = a.upload_credentials(cam["id"])
    rain = make_test_clip("tg-rain", seconds=6, fps=15, gop_seconds=1.0, scene=scene(rain=900, seed=1))
    assert a.upload_analysed(creds, rain)["verdict"] == "false_alarm:rain"
    time.sleep(1.0)
    assert _rows(server.core, a.id) == [] and telegram.received() == []

    assert a.patch("/api/v1/me", json={"notify_only_real": False}).status_code == 200
    a.upload_analysed(creds, rain)
    (msg,) = telegram.wait(1)
    assert msg["fields"]["text"].startswith("False alarm (rain): Garden\nGarden recorded a false alarm (rain) at ")


def test_sub_users_get_messages_only_for_cameras_they_have_a_right_on(api: Any, server: Any, telegram: FakeTelegram,
                                                                      clip: Path) -> None:
    owner = api().register("tgfamily@example.com")  # the owner has Telegram off
    garage, garden = owner.camera("Garage"), owner.camera("Garden")
    for email, cam, chat in (("tgkid@example.com", garage, "111111"), ("tgnb@example.com", garden, "222222")):
        r = owner.post("/api/v1/subusers", json={"email": email, "password": PW, "rights": {cam["id"]: "view"}})
        assert r.status_code == 201, r.text
        _telegram_on(api().login(email, PW), chat_id=chat)
    owner.upload_analysed(owner.upload_credentials(garage["id"]), clip)
    (msg,) = telegram.wait(1)
    assert msg["fields"]["chat_id"] == "111111" and msg["fields"]["text"].startswith("Alarm: Garage\n")
    time.sleep(1.0)  # the neighbour has no right on the garage camera; the owner asked for none
    assert len(telegram.received()) == 1


def test_the_quiet_time_holds_per_camera_and_channel(api: Any, server: Any, telegram: FakeTelegram, clip: Path,
                                                     receiver: Any) -> None:
    server.core.settings.notify.webhook_networks = ["127.0.0.0/8"]  # the stand-in ntfy server is on loopback
    a = api().register("tgquiet@example.com")
    _telegram_on(a, cooldown=3600)
    assert a.patch("/api/v1/me/push", json={"enabled": True, "url": receiver.url + "/q"}).status_code == 200
    creds = a.upload_credentials(a.camera("Front")["id"])
    for _ in range(2):
        assert a.upload_analysed(creds, clip)["verdict"] == "alarm"
    a.upload_analysed(a.upload_credentials(a.camera("Back")["id"]), clip)
    telegram.wait(2)
    receiver.wait(2)
    time.sleep(1.0)
    # one message per camera on each channel: the push did not silence Telegram, nor the other way round
    assert sorted(r["fields"]["text"].split("\n")[0] for r in telegram.received()) == ["Alarm: Back", "Alarm: Front"]
    assert sorted(r["headers"]["Title"] for r in receiver.received()) == ["Alarm: Back", "Alarm: Front"]


# ---------------------------------------------------------------- Telegram's answers


def test_429_waits_as_long_as_telegram_asks_then_sends(api: Any, server: Any, telegram: FakeTelegram) -> None:
    a = api().register("tg3@example.com")
    _telegram_on(a)
    telegram.script["sendMessage"] = [(429, {"ok": False, "error_code": 429,
                                             "description": "Too Many Requests: retry after 2",
                                             "parameters": {"retry_after": 2}})]
    r = a.post("/api/v1/me/telegram/test").json()
    assert r["state"] == "queued" and r["last_error"] == "HTTP 429: Too Many Requests: retry after 2"
    row = _wait_state(server.core, a.id, "sent")
    assert row.attempts == 2
    first, second = telegram.wait(2)
    assert [first["status"], second["status"]] == [429, 200]
    assert second["at"] - first["at"] >= 1.9  # retry_after, not the 0.3 s backoff of this deployment
    assert a.get("/api/v1/me/telegram").json()["problem"] is None


def test_a_blocked_bot_stops_at_once_and_the_person_sees_why(api: Any, server: Any, telegram: FakeTelegram,
                                                             clip: Path) -> None:
    a = api().register("tg4@example.com")
    _telegram_on(a)
    blocked = {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
    telegram.script["sendMessage"] = [(403, blocked), (403, blocked)]
    a.upload_analysed(a.upload_credentials(a.camera("Porch")["id"]), clip)
    row = _wait_state(server.core, a.id, "dead")
    why = "HTTP 403: Forbidden: bot was blocked by the user (Telegram messages were switched off; switch them on " \
          "again once the bot may write to the chat)"
    assert row.attempts == 1 and row.last_error == why
    time.sleep(1.0)
    assert len(telegram.received()) == 1  # not retried
    shown = a.get("/api/v1/me/telegram").json()
    assert shown["problem"] == why and shown["enabled"] is False
    assert shown["deliveries"][0]["state"] == "dead" and shown["deliveries"][0]["attempts"] == 1
    # switched off: the next alarm sends nothing more to a bot its person blocked, and the reason stays shown
    a.upload_analysed(a.upload_credentials(a.camera("Gate")["id"]), clip)
    time.sleep(1.0)
    assert len(telegram.received()) == 1 and len(_rows(server.core, a.id)) == 1
    assert a.get("/api/v1/me/telegram").json()["problem"] == why
    assert a.patch("/api/v1/me/telegram", json={"enabled": True}).json()["enabled"] is True
    # a refusal of one message (not of the bot or the chat) leaves Telegram on
    telegram.script["sendMessage"] = [(400, {"ok": False, "error_code": 400,
                                             "description": "Bad Request: can't parse entities"})]
    a.upload_analysed(a.upload_credentials(a.camera("Yard")["id"]), clip)
    deadline = time.monotonic() + 30
    while sum(r.state == "dead" for r in _rows(server.core, a.id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    shown = a.get("/api/v1/me/telegram").json()
    assert shown["problem"] == "HTTP 400: Bad Request: can't parse entities" and shown["enabled"] is True

    # a wrong chat: the test message tells at once; once a message arrives again, the problem is gone
    telegram.script["sendMessage"] = [(400, {"ok": False, "error_code": 400,
                                             "description": "Bad Request: chat not found"})]
    r = a.post("/api/v1/me/telegram/test").json()
    assert r["state"] == "dead" and r["last_error"] == "HTTP 400: Bad Request: chat not found"
    assert a.get("/api/v1/me/telegram").json()["problem"] == "HTTP 400: Bad Request: chat not found"
    assert a.post("/api/v1/me/telegram/test").json()["state"] == "sent"
    assert a.get("/api/v1/me/telegram").json()["problem"] is None


def test_find_my_chat_lists_the_chats_that_wrote_to_the_bot_and_stores_nothing(api: Any, server: Any,
                                                                               telegram: FakeTelegram) -> None:
    a = api().register("tg5@example.com")
    telegram.updates = [
        {"update_id": 1, "message": {"message_id": 1, "text": "hi",
                                     "chat": {"id": 987654321, "type": "private", "first_name": "Ana", "last_name": "B"}}},
        {"update_id": 2, "message": {"message_id": 2, "text": "again",
                                     "chat": {"id": 987654321, "type": "private", "first_name": "Ana", "last_name": "B"}}},
        {"update_id": 3, "my_chat_member": {"chat": {"id": -1001234567890, "type": "supergroup", "title": "Home"}}},
    ]
    assert a.post("/api/v1/me/telegram/chats").json()["error"]["code"] == "no_telegram_token"
    r = a.post("/api/v1/me/telegram/chats", json={"token": TOKEN})
    assert r.status_code == 200, r.text
    assert r.json()["chats"] == [{"chat_id": "987654321", "type": "private", "title": "Ana B"},
                                 {"chat_id": "-1001234567890", "type": "supergroup", "title": "Home"}]
    assert telegram.received()[0]["method"] == "getUpdates" and telegram.received()[0]["token"] == TOKEN
    assert a.get("/api/v1/me/telegram").json()["has_token"] is False  # asked once, nothing stored
    # the group id found is accepted as the chat; with the saved token the body may be empty
    assert a.patch("/api/v1/me/telegram", json={"token": TOKEN, "chat_id": "-1001234567890"}).status_code == 200
    assert len(a.post("/api/v1/me/telegram/chats").json()["chats"]) == 2
    unknown = "5555555:" + "C" * 35
    r = a.post("/api/v1/me/telegram/chats", json={"token": unknown})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_token"
    assert "Telegram does not know this bot token" in r.json()["error"]["message"]


# ---------------------------------------------------------------- input checks, secrecy, tenants


def test_bad_input_gets_a_precise_400_and_stores_nothing(api: Any, server: Any, telegram: FakeTelegram) -> None:
    a = api().register("tg6@example.com")
    before = a.get("/api/v1/me/telegram").json()
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"token": "12345"}, "invalid_token", "@BotFather"),
        ({"token": "abc:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"}, "invalid_token", "@BotFather"),
        ({"token": "7123456789:short"}, "invalid_token", "@BotFather"),
        ({"token": TOKEN + "/../../x"}, "invalid_token", "@BotFather"),
        ({"token": TOKEN, "chat_id": "my chat"}, "invalid_chat_id", "chat's number"),
        ({"token": TOKEN, "chat_id": "12 34"}, "invalid_chat_id", "chat's number"),
        ({"token": TOKEN, "chat_id": "@ab"}, "invalid_chat_id", "@name"),
        ({"token": TOKEN, "chat_id": 1.5}, "invalid_chat_id", "number or a string"),
        ({"token": TOKEN, "chat_id": True}, "invalid_chat_id", "number or a string"),
        ({"token": TOKEN, "chat_id": CHAT, "enabled": "yes"}, "invalid_field", "'enabled'"),
        ({"token": TOKEN, "chat_id": CHAT, "url": "https://x"}, "unknown_field", "'url'"),
        ({"token": TOKEN, "enabled": True}, "missing_field", "'chat_id'"),
        ({"chat_id": CHAT, "enabled": True}, "missing_field", "'token'"),
    ]
    for body, code, words in cases:
        r = a.patch("/api/v1/me/telegram", json=body)
        assert r.status_code == 400 and r.json()["error"]["code"] == code, (body, r.text)
        assert words in r.json()["error"]["message"], (body, r.json())
        assert a.get("/api/v1/me/telegram").json() == before, body
    assert a.post("/api/v1/me/telegram/test").json()["error"]["code"] == "no_telegram_chat"
    assert telegram.received() == []
    # numbers are accepted as JSON numbers too, and a channel by its @name
    assert a.patch("/api/v1/me/telegram", json={"chat_id": -1001234567890}).json()["chat_id"] == "-1001234567890"
    assert a.patch("/api/v1/me/telegram", json={"chat_id": "@my_cams"}).json()["chat_id"] == "@my_cams"


def test_the_bot_token_is_never_shown_exported_or_logged(api: Any, server: Any, telegram: FakeTelegram,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    a = api().register("tg7@example.com")
    secret = TOKEN.split(":", 1)[1]
    answers = [a.patch("/api/v1/me/telegram", json={"token": TOKEN, "chat_id": CHAT, "enabled": True}),
               a.get("/api/v1/me/telegram"), a.get("/api/v1/me"), a.get("/notifications"),
               a.post("/api/v1/me/telegram/chats")]
    for r in answers:
        assert r.status_code == 200 and secret not in r.text, r.text
    with server.core.db.session() as s:
        acc = s.get(Account, a.id)
        assert acc is not None and acc.notify_telegram_token_enc and secret not in acc.notify_telegram_token_enc
    assert a.post("/api/v1/me/telegram/test").json()["state"] == "sent"
    telegram.script["sendMessage"] = [(500, {"ok": False, "error_code": 500, "description": "Internal Server Error"})]
    assert a.post("/api/v1/me/telegram/test").json()["state"] == "queued"  # a failure is logged too
    _wait_state(server.core, a.id, "sent")
    assert {r["token"] for r in telegram.received()} == {TOKEN}  # it did travel, to Telegram only

    export = a.get("/api/v1/me/export")  # the person's data: the chat yes, the token in no form
    assert export.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(export.content))
    profile = json.loads(archive.read("account.json"))["profile"][0]
    assert profile["notify_telegram_chat_id"] == CHAT and profile["notify_telegram"] is True
    assert not any("token" in k for k in profile)
    for name in archive.namelist():
        data = archive.read(name)
        assert secret.encode() not in data and acc.notify_telegram_token_enc.encode() not in data, name

    requests_logged = [rec for rec in caplog.records if "sendMessage" in rec.getMessage()]
    assert requests_logged, "httpx logs each Bot API request"  # so the check below looks at real lines
    assert secret not in caplog.text and "bot{token}/sendMessage" in caplog.text
    assert "delivery" in caplog.text and "Internal Server Error" in caplog.text


def test_another_tenant_cannot_read_or_change_the_settings(api: Any, server: Any, telegram: FakeTelegram) -> None:
    a = api().register("tg8@example.com")
    _telegram_on(a)
    b = api().register("tg9@example.com")
    theirs = b.get("/api/v1/me/telegram").json()
    assert theirs["has_token"] is False and theirs["chat_id"] is None and theirs["deliveries"] == []
    assert b.post("/api/v1/me/telegram/test").json()["error"]["code"] == "no_telegram_chat"
    assert b.post("/api/v1/me/telegram/chats").json()["error"]["code"] == "no_telegram_token"
    r = b.patch("/api/v1/me/telegram", json={"token": OTHER_TOKEN, "chat_id": "555", "enabled": True})
    assert r.status_code == 200 and r.json()["chat_id"] == "555"
    assert b.post("/api/v1/me/telegram/test").json()["state"] == "sent"
    assert a.post("/api/v1/me/telegram/test").json()["state"] == "sent"
    sent = [(r["token"], r["fields"]["chat_id"]) for r in telegram.received()]
    assert sent == [(OTHER_TOKEN, "555"), (TOKEN, CHAT)]  # each their own bot and chat
    mine = a.get("/api/v1/me/telegram").json()
    assert mine["chat_id"] == CHAT and len(mine["deliveries"]) == 1


def test_the_record_of_processing_names_telegram_as_a_recipient(server: Any) -> None:
    import httpx

    acts = httpx.get(server.url + "/api/v1/privacy/processing").json()["activities"]
    (act,) = [a for a in acts if a["name"] == "core: notifications"]
    assert any("Telegram" in r for r in act["recipients"])
    assert any("Telegram bot token (encrypted) and chat id" in d for d in act["data"])
