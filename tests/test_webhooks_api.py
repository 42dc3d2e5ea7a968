"""Webhooks API: management, validation, tenant isolation, SSRF guard, signed deliveries, retries with backoff."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alarmcloud.models import Outbox, Webhook
from alarmcloud.testing import LiveServer, settings_on, static_scene, test_settings
from alarmcloud.webhooksapi import MAX_WEBHOOKS
from sqlmodel import select

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    st = test_settings(tmp_path / "data", camera_networks=["127.0.0.0/8"])
    st.notify.webhook_networks = ["127.0.0.0/8", "::1/128"]  # the receivers of these tests run on loopback
    st.notify.retry_base_seconds = 0.5
    st.notify.max_attempts = 3
    st.notify.timeout_seconds = 5.0
    return st


@pytest.fixture(scope="module")
def verify_signature() -> Callable[[str, bytes, str], bool]:
    """The receiver recipe from docs/api.md, run as documented."""
    doc = (ROOT / "docs" / "api.md").read_text()
    section = doc.split("### Verifying webhook signatures", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "docs/api.md lacks the Python verification recipe"
    scope: dict[str, Any] = {}
    exec(compile(code.group(1), "docs/api.md", "exec"), scope)  # noqa: S102 - our own documentation
    return scope["verify_signature"]


def _hook(a: Any, url: str, **body: Any) -> dict[str, Any]:
    r = a.post("/api/v1/webhooks", json={"url": url, **body})
    assert r.status_code == 201, r.text
    return r.json()


def _deliveries(a: Any, hook_id: str) -> list[dict[str, Any]]:
    r = a.get(f"/api/v1/webhooks/{hook_id}/deliveries")
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _wait_deliveries(a: Any, hook_id: str, done: Callable[[list[dict[str, Any]]], bool],
                     timeout: float = 30.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    items = _deliveries(a, hook_id)
    while not done(items) and time.monotonic() < deadline:
        time.sleep(0.1)
        items = _deliveries(a, hook_id)
    return items


# ---------------------------------------------------------------- management


def test_create_list_update_delete_with_secret_shown_once(api: Any, server: Any, receiver: Any) -> None:
    a = api().register("wh1@example.com")
    created = _hook(a, receiver.url + "/in")
    assert created["events"] == ["detections.ready"] and created["only_real_alarms"] is True
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > 30
    listed = a.get("/api/v1/webhooks").json()["items"]
    assert [h["id"] for h in listed] == [created["id"]] and "secret" not in listed[0]
    one = a.get(f"/api/v1/webhooks/{created['id']}").json()
    assert one["url"] == receiver.url + "/in" and "secret" not in one
    with server.core.db.session() as s:
        stored = s.get(Webhook, created["id"]).secret
    assert secret not in stored  # encrypted at rest

    r = a.patch(f"/api/v1/webhooks/{created['id']}", json={"events": ["clip.stored", "detections.ready"],
                                                          "only_real_alarms": False})
    assert r.status_code == 200, r.text
    assert r.json()["events"] == ["detections.ready", "clip.stored"] and r.json()["only_real_alarms"] is False
    assert "secret" not in r.json()
    rotated = a.patch(f"/api/v1/webhooks/{created['id']}", json={"rotate_secret": True}).json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != secret

    assert a.delete(f"/api/v1/webhooks/{created['id']}").status_code == 204
    assert a.get(f"/api/v1/webhooks/{created['id']}").status_code == 404
    assert a.get("/api/v1/webhooks").json()["items"] == []


INVALID: list[tuple[dict[str, Any], str, str]] = [
    ({}, "missing_field", "'url'"),
    ({"url": 5}, "invalid_field", "'url'"),
    ({"url": "ftp://127.0.0.1/x"}, "invalid_url", "http:// or https://"),
    ({"url": "not a url"}, "invalid_url", "http:// or https://"),
    ({"url": "http:///path"}, "invalid_url", "no host"),
    ({"url": "http://user:pw@127.0.0.1/x"}, "invalid_url", "passwords"),
    ({"url": "http://127.0.0.1/" + "x" * 500}, "invalid_field", "500"),
    ({"url": "http://127.0.0.1/x", "events": []}, "invalid_field", "at least one"),
    ({"url": "http://127.0.0.1/x", "events": ["clip.exploded"]}, "invalid_field", "clip.exploded"),
    ({"url": "http://127.0.0.1/x", "events": "clip.stored"}, "invalid_field", "'events'"),
    ({"url": "http://127.0.0.1/x", "only_real_alarms": "yes"}, "invalid_field", "'only_real_alarms'"),
    ({"url": "http://127.0.0.1/x", "colour": "red"}, "unknown_field", "'colour'"),
    ({"url": "http://no-such-host.invalid/x"}, "invalid_url", "cannot resolve"),
]


def test_invalid_bodies_get_precise_errors(api: Any) -> None:
    a = api().register("wh2@example.com")
    for body, code, needle in INVALID:
        r = a.post("/api/v1/webhooks", json=body)
        assert r.status_code == 400, (body, r.text)
        err = r.json()["error"]
        assert err["code"] == code and needle in err["message"], (body, err)
    assert a.get("/api/v1/webhooks").json()["items"] == []  # nothing half-written


def test_malformed_json_and_bad_limit(api: Any, receiver: Any) -> None:
    a = api().register("wh3@example.com")
    r = a.post("/api/v1/webhooks", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    hook = _hook(a, receiver.url)
    r = a.patch(f"/api/v1/webhooks/{hook['id']}", json={"url": "gopher://127.0.0.1/"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_url"
    assert a.get(f"/api/v1/webhooks/{hook['id']}").json()["url"] == receiver.url  # unchanged
    for bad in ("0", "x", "1000"):
        r = a.get(f"/api/v1/webhooks/{hook['id']}/deliveries", params={"limit": bad})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_limit"


def test_private_and_loopback_targets_refused_unless_the_operator_allows(api: Any, server: Any,
                                                                         receiver: Any) -> None:
    a = api().register("wh4@example.com")
    allowed = _hook(a, receiver.url + "/ok")
    server.core.settings.notify.webhook_networks = []  # the default: public addresses only
    for url in ("http://127.0.0.1:9/x", "http://localhost/x", "http://10.1.2.3/x", "http://192.168.0.10/",
                "http://169.254.169.254/latest/meta-data/", "http://[::1]/x", "http://0.0.0.0/",
                "http://224.0.0.1/", "http://[::ffff:127.0.0.1]/x", "https://100.64.0.1/"):
        r = a.post("/api/v1/webhooks", json={"url": url})
        assert r.status_code == 400, url
        assert r.json()["error"]["code"] == "invalid_url" and "not a public address" in r.json()["error"]["message"]
    public = _hook(a, "https://93.184.215.14/hook")  # a public address is fine (not contacted here)
    assert public["url"] == "https://93.184.215.14/hook"
    # the check runs again at delivery time: a webhook made while loopback was allowed is not contacted now
    r = a.post(f"/api/v1/webhooks/{allowed['id']}/test")
    assert r.status_code == 201
    assert r.json()["state"] == "queued" and "not a public address" in r.json()["last_error"]
    assert receiver.received() == []


def test_other_accounts_and_subusers_cannot_touch_webhooks(api: Any, receiver: Any) -> None:
    a = api().register("wh5a@example.com")
    b = api().register("wh5b@example.com")
    hook = _hook(a, receiver.url)
    base = f"/api/v1/webhooks/{hook['id']}"
    assert b.get(base).status_code == 404
    assert b.patch(base, json={"only_real_alarms": False}).status_code == 404
    assert b.delete(base).status_code == 404
    assert b.post(base + "/test").status_code == 404
    assert b.get(base + "/deliveries").status_code == 404
    assert b.get("/api/v1/webhooks").json()["items"] == []
    assert receiver.received() == []
    assert a.get(base).json()["only_real_alarms"] is True  # untouched

    cam = a.camera()
    r = a.post("/api/v1/subusers", json={"email": "wh5sub@example.com", "password": "correct horse battery staple",
                                          "rights": {cam["id"]: "admin"}})
    assert r.status_code == 201, r.text
    sub = api().login("wh5sub@example.com")
    assert sub.get("/api/v1/webhooks").status_code == 403
    assert sub.post("/api/v1/webhooks", json={"url": receiver.url}).status_code == 403
    assert sub.delete(base).status_code == 403

    anon = api()
    assert anon.get("/api/v1/webhooks").status_code == 401
    r = a.http.post("/api/v1/webhooks", json={"url": receiver.url})  # session cookie without the CSRF header
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"


def test_webhook_limit_per_account(api: Any, receiver: Any) -> None:
    a = api().register("wh6@example.com")
    for i in range(10):
        _hook(a, f"{receiver.url}/{i}")
    r = a.post("/api/v1/webhooks", json={"url": receiver.url + "/11"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "limit_reached"


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_webhooks_added_at_once_stop_at_the_limit(database: str, tmp_path: Path) -> None:
    """Scripts adding webhooks at once, two short of the limit, get two added and the rest refused, never more
    than the limit (PostgreSQL runs the requests truly at once)."""
    from tests.conftest import Api  # type: ignore[import-not-found]

    with settings_on(database, tmp_path / "data") as st:
        st.notify.webhook_networks = ["127.0.0.0/8"]
        with LiveServer(st) as srv:
            a = Api(srv.url).register("wh10@example.com")
            for i in range(MAX_WEBHOOKS - 2):
                _hook(a, f"http://127.0.0.1:9/{i}")
            codes = a.post_at_once("/api/v1/webhooks", [{"url": f"http://127.0.0.1:9/new{i}"} for i in range(6)])
            assert codes == [201] * 2 + [409] * 4, codes
            assert len(a.get("/api/v1/webhooks").json()["items"]) == MAX_WEBHOOKS


def test_openapi_lists_the_webhook_endpoints(server: Any) -> None:
    import httpx

    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    assert set(paths["/api/v1/webhooks"]) == {"get", "post"}
    assert set(paths["/api/v1/webhooks/{webhook_id}"]) == {"get", "patch", "delete"}
    assert "post" in paths["/api/v1/webhooks/{webhook_id}/test"]
    assert "get" in paths["/api/v1/webhooks/{webhook_id}/deliveries"]
    assert "post" in paths["/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"]
    assert "secret" in paths["/api/v1/webhooks"]["post"]["description"]


# ---------------------------------------------------------------- deliveries


def test_test_delivery_is_signed_and_verifies(api: Any, receiver: Any, verify_signature: Any) -> None:
    a = api().register("wh7@example.com")
    hook = _hook(a, receiver.url.replace("127.0.0.1", "localhost") + "/test-me")
    r = a.post(f"/api/v1/webhooks/{hook['id']}/test")
    assert r.status_code == 201, r.text
    delivery = r.json()
    assert delivery["state"] == "sent" and delivery["attempts"] == 1 and delivery["event_type"] == "webhook.test"
    (req,) = receiver.received("/test-me")
    assert req["headers"]["Host"] == receiver.url.replace("http://127.0.0.1", "localhost")  # the name, not the IP
    assert req["headers"]["X-Alarmcloud-Event"] == "webhook.test"
    assert req["headers"]["X-Alarmcloud-Delivery"] == str(delivery["id"])
    sig = req["headers"]["X-Alarmcloud-Signature"]
    assert verify_signature(hook["secret"], req["body"], sig)
    assert not verify_signature(hook["secret"], req["body"] + b" ", sig)  # a changed body fails
    assert not verify_signature("whsec_wrong", req["body"], sig)
    assert json.loads(req["body"])["webhook_id"] == hook["id"]

    new_secret = a.patch(f"/api/v1/webhooks/{hook['id']}", json={"rotate_secret": True}).json()["secret"]
    a.post(f"/api/v1/webhooks/{hook['id']}/test")
    last = receiver.received("/test-me")[-1]
    assert verify_signature(new_secret, last["body"], last["headers"]["X-Alarmcloud-Signature"])
    assert not verify_signature(hook["secret"], last["body"], last["headers"]["X-Alarmcloud-Signature"])
    assert [d["state"] for d in _deliveries(a, hook["id"])] == ["sent", "sent"]


def test_alarm_clip_reaches_the_receiver_signed_after_the_verdict(api: Any, server: Any, receiver: Any,
                                                                   clip: Path, verify_signature: Any) -> None:
    a = api().register("wh8@example.com")
    hook = _hook(a, receiver.url + "/alarms")
    cam = a.camera("Driveway")
    r = a.upload(a.upload_credentials(cam["id"]), clip)
    assert r.status_code == 201, r.text
    event_id = r.json()["event_id"]
    (req,) = receiver.wait(1, "/alarms")
    body = json.loads(req["body"])
    assert verify_signature(hook["secret"], req["body"], req["headers"]["X-Alarmcloud-Signature"])
    assert body["type"] == "detections.ready" and req["headers"]["X-Alarmcloud-Event"] == "detections.ready"
    assert body["event_id"] == event_id and body["camera_id"] == cam["id"] and body["camera_name"] == "Driveway"
    assert body["verdict"] == "alarm"  # sent after the verdict, with it
    public = server.core.settings.public_url.rstrip("/")
    assert body["thumbnail_url"] == f"{public}/api/v1/events/{event_id}/thumbnail"
    thumb = a.get(body["thumbnail_url"].removeprefix(public))
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    # the receiver has the request a moment before the worker writes down its answer
    (d,) = _wait_deliveries(a, hook["id"], lambda items: items[0]["state"] != "queued")
    assert d["state"] == "sent" and d["attempts"] == 1 and d["event_id"] == event_id and d["last_error"] is None


def test_failing_receiver_is_retried_with_backoff(api: Any, server: Any, receiver: Any, clip: Path) -> None:
    a = api().register("wh9@example.com")
    flaky = _hook(a, receiver.url + "/flaky")
    broken = _hook(a, receiver.url + "/broken")
    receiver.script["/flaky"] = [500, 503]  # then 200
    receiver.script["/broken"] = [500] * 10
    cam = a.camera()
    r = a.upload(a.upload_credentials(cam["id"]), clip)
    assert r.status_code == 201, r.text

    first = _wait_deliveries(a, flaky["id"], lambda items: bool(items) and items[0]["attempts"] >= 1)
    assert first[0]["attempts"] == 1 and first[0]["state"] == "queued"
    assert first[0]["last_error"] == "HTTP 500" and first[0]["next_attempt_at"] is not None

    done = _wait_deliveries(a, flaky["id"], lambda items: items[0]["state"] == "sent")
    assert done[0]["state"] == "sent" and done[0]["attempts"] == 3 and done[0]["last_error"] == "HTTP 503"
    hits = receiver.received("/flaky")
    assert [h["status"] for h in hits] == [500, 503, 200]
    assert len({h["headers"]["X-Alarmcloud-Delivery"] for h in hits}) == 1  # one delivery, three attempts
    gaps = [b["at"] - a_["at"] for a_, b in zip(hits, hits[1:], strict=False)]
    assert gaps[0] >= 0.5 and gaps[1] >= 1.0  # base 0.5 s, doubled after the second failure

    dead = _wait_deliveries(a, broken["id"], lambda items: items[0]["state"] == "dead")
    assert dead[0]["state"] == "dead" and dead[0]["attempts"] == 3 and dead[0]["next_attempt_at"] is None
    time.sleep(1.5)
    assert len(receiver.received("/broken")) == 3  # max_attempts, then given up


def test_a_dead_delivery_can_be_sent_again_once_the_receiver_is_back(api: Any, server: Any, receiver: Any,
                                                                      clip: Path, verify_signature: Any) -> None:
    a = api().register("wh15@example.com")
    hook = _hook(a, receiver.url + "/down")
    receiver.script["/down"] = [503] * 3  # the receiver is down for all three attempts
    cam = a.camera()
    assert a.upload(a.upload_credentials(cam["id"]), clip).status_code == 201
    (dead,) = _wait_deliveries(a, hook["id"], lambda items: bool(items) and items[0]["state"] == "dead")
    url = f"/api/v1/webhooks/{hook['id']}/deliveries/{dead['id']}/redeliver"

    other = api().register("wh15b@example.com")  # another account cannot resend (or learn about) it
    assert other.post(url).status_code == 404
    assert a.post(f"/api/v1/webhooks/{hook['id']}/deliveries/999999/redeliver").status_code == 404
    assert a.post(f"/api/v1/webhooks/{hook['id']}/deliveries/abc/redeliver").json()["error"]["code"] == "not_found"

    r = a.post(url)  # the receiver answers 200 now
    assert r.status_code == 202, r.text
    again = r.json()
    assert again["id"] != dead["id"] and again["state"] == "queued" and again["event_id"] == dead["event_id"]
    items = _wait_deliveries(a, hook["id"], lambda items: items[0]["state"] == "sent")
    assert [(d["id"], d["state"]) for d in items] == [(again["id"], "sent"), (dead["id"], "dead")]
    hits = receiver.received("/down")
    assert [h["status"] for h in hits] == [503, 503, 503, 200]
    assert hits[-1]["body"] == hits[0]["body"]  # the same event, signed again with the current secret
    assert verify_signature(hook["secret"], hits[-1]["body"], hits[-1]["headers"]["X-Alarmcloud-Signature"])
    assert hits[-1]["headers"]["X-Alarmcloud-Delivery"] == str(again["id"])

    with server.core.db.session() as s:  # a delivery still waiting for its next retry is not copied
        row = s.get(Outbox, again["id"])
        row.state, row.available_at = "queued", row.available_at + timedelta(days=1)
        s.add(row)
        s.commit()
    r = a.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{again['id']}/redeliver")
    assert r.status_code == 409 and r.json()["error"]["code"] == "still_queued"
    assert len(_deliveries(a, hook["id"])) == 2


def test_false_alarm_only_real_and_event_filter(api: Any, receiver: Any, make_test_clip: Any) -> None:
    a = api().register("wh10@example.com")
    assert a.patch("/api/v1/me", json={"notify_cooldown_seconds": 0}).status_code == 200
    only_real = _hook(a, receiver.url + "/real")
    everything = _hook(a, receiver.url + "/all", only_real_alarms=False)
    stored = _hook(a, receiver.url + "/stored", events=["clip.stored"])
    cam = a.camera()
    still = make_test_clip("still", seconds=18, fps=15, scene=static_scene)
    r = a.upload(a.upload_credentials(cam["id"]), still)
    assert r.status_code == 201, r.text
    event_id = r.json()["event_id"]
    assert a.wait_event(event_id)["verdict"] == "false_alarm:no_motion"
    (req,) = receiver.wait(1, "/all")
    assert json.loads(req["body"])["verdict"] == "false_alarm:no_motion"
    (req,) = receiver.wait(1, "/stored")
    body = json.loads(req["body"])
    assert body["type"] == "clip.stored" and body["clip_id"] == event_id and body["camera_id"] == cam["id"]
    # notifications are queued with the verdict: once the event is analysed, none will come for these
    assert _deliveries(a, only_real["id"]) == []
    assert [d["event_type"] for d in _deliveries(a, stored["id"])] == ["clip.stored"]
    assert [d["event_type"] for d in _deliveries(a, everything["id"])] == ["detections.ready"]
    assert receiver.received("/real") == []


def test_camera_events_reach_subscribed_webhooks(api: Any, receiver: Any) -> None:
    a = api().register("wh11@example.com")
    _hook(a, receiver.url + "/cams", events=["camera.changed", "camera.deleted"])
    cam = a.camera("Porch")
    assert a.delete(f"/api/v1/cameras/{cam['id']}").status_code == 204
    reqs = receiver.wait(2, "/cams")
    assert [(json.loads(r["body"])["type"], json.loads(r["body"])["camera_id"]) for r in reqs] == [
        ("camera.changed", cam["id"]), ("camera.deleted", cam["id"])]


def test_deleting_a_webhook_drops_its_pending_deliveries(api: Any, server: Any, receiver: Any) -> None:
    a = api().register("wh12@example.com")
    hook = _hook(a, receiver.url + "/down")
    receiver.script["/down"] = [500] * 10
    assert a.post(f"/api/v1/webhooks/{hook['id']}/test").json()["state"] == "queued"
    assert a.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 204
    with server.core.db.session() as s:
        assert s.exec(select(Outbox).where(Outbox.target == hook["id"])).all() == []
    time.sleep(1.5)  # past the retry time
    assert len(receiver.received("/down")) == 1


# ---------------------------------------------------------------- web UI


def test_notifications_page(api: Any, receiver: Any) -> None:
    a = api().register("wh13@example.com")
    page = a.get("/notifications", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "data-add-webhook" in page.text and 'value="detections.ready"' in page.text
    assert 'name="notify_email"' in page.text and 'href="/notifications"' in page.text
    js = a.get("/static/app.js").text
    assert "/api/v1/webhooks" in js and "/deliveries" in js
    cam = a.camera()
    a.post("/api/v1/subusers", json={"email": "wh13sub@example.com", "password": "correct horse battery staple",
                                     "rights": {cam["id"]: "view"}})
    sub_page = api().login("wh13sub@example.com").get("/notifications")
    assert "data-add-webhook" not in sub_page.text and "account owner" in sub_page.text
    assert 'name="notify_email"' in sub_page.text  # their own e-mail switch, for the cameras shared with them
    anon = api().http.get("/notifications", follow_redirects=False)
    assert anon.status_code == 303 and anon.headers["location"].startswith("/login")


def test_browser_adds_tests_and_removes_a_webhook(server: Any, api: Any, receiver: Any,
                                                  verify_signature: Any) -> None:
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("Debian chromium is missing (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev group) is not installed")
    a = api().register("wh14@example.com")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(server.url + "/login")
            page.get_by_label("E-mail address").fill("wh14@example.com")
            page.get_by_label("Password").fill("correct horse battery staple")
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(server.url + "/")
            page.goto(server.url + "/notifications")
            page.get_by_label("URL").fill(receiver.url + "/ui")
            page.locator("input[value='clip.stored']").check()
            page.get_by_role("button", name="Add webhook").click()
            page.wait_for_selector("#webhook-secret:not([hidden])")
            secret = page.input_value("#webhook-secret-value")
            page.get_by_role("button", name="Test " + receiver.url + "/ui").click()
            page.locator("#webhooks table").wait_for()
            assert page.locator("#webhooks table .badge").inner_text() == "sent"
            assert "detections.ready, clip.stored · only real alarms" in page.locator("#webhooks").inner_text()
            page.locator("#webhooks table button", has_text="Send again").click()  # the test, resent
            page.locator("#webhooks table tbody tr").nth(1).wait_for()
            page.locator("#webhooks table .badge").nth(1).wait_for()
            for _ in range(100):
                if [b.inner_text() for b in page.locator("#webhooks table .badge").all()] == ["sent", "sent"]:
                    break
                page.get_by_role("button", name="Deliveries " + receiver.url + "/ui").click()
                page.get_by_role("button", name="Deliveries " + receiver.url + "/ui").click()
                page.wait_for_timeout(100)
            assert [b.inner_text() for b in page.locator("#webhooks table .badge").all()] == ["sent", "sent"]
            page.on("dialog", lambda dialog: dialog.accept())
            page.get_by_role("button", name="Remove " + receiver.url + "/ui").click()
            page.get_by_text("No webhooks yet.").wait_for()
        finally:
            browser.close()
    first, again = receiver.received("/ui")
    assert verify_signature(secret, first["body"], first["headers"]["X-Alarmcloud-Signature"])
    assert again["body"] == first["body"]
    assert a.get("/api/v1/webhooks").json()["items"] == []
