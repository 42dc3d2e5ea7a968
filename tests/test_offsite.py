"""Off-site copies into the owner's own S3-compatible bucket: a real S3 server on loopback (moto) stands in for the
owner's bucket. Clips go through the real upload API and the detectors; copies leave through the durable outbox."""

from __future__ import annotations

import http.server
import io
import json
import logging
import time
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from alarmcloud import crypto, offsite
from alarmcloud.models import Account, Clip, Outbox, utcnow
from alarmcloud.openapi import SHAPES
from alarmcloud.testing import static_scene, test_settings
from sqlmodel import select

from tests.conftest import outbox_rows, wait_outbox_state  # type: ignore[import-not-found]
from tests.s3server import ACCESS_KEY, REGION, CuttingProxy, MotoS3, bucket_on_loopback, s3  # type: ignore[import-not-found]  # noqa: F401

SECRET = "alarmcloud-test-secret"  # moto takes any key; this one must never show up anywhere
PW = "another good pw"


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    return bucket_on_loopback(test_settings(tmp_path / "data", camera_networks=["127.0.0.0/8"]))


def _bucket_on(a: Any, endpoint: str, bucket: str, **extra: Any) -> dict[str, Any]:
    body = {"enabled": True, "endpoint": endpoint, "region": REGION, "bucket": bucket, "prefix": "cams/home",
            "access_key_id": ACCESS_KEY, "secret_key": SECRET, **extra}
    r = a.patch("/api/v1/me/offsite", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def _rows(core: Any, account_id: str) -> list[Outbox]:
    return outbox_rows(core, account_id, "offsite")


def _clip(core: Any, clip_id: str) -> Clip:
    with core.db.session() as s:
        clip = s.get(Clip, clip_id)
        assert clip is not None
        return clip


def _expected_key(event: dict[str, Any], camera: str, prefix: str = "cams/home") -> str:
    t = event["started_at"]  # 2026-11-22T05:42:31.123Z
    day = t[:10].replace("-", "/")
    stamp = t[:19].replace("-", "").replace(":", "") + "Z"
    return f"{prefix}/{camera}/{day}/{stamp}-{event['id']}.mp4"


# ---------------------------------------------------------------- copies


def test_an_alarm_clip_lands_in_the_bucket_with_its_sidecar(api: Any, server: Any, s3: MotoS3,  # noqa: F811
                                                            clip: Path) -> None:
    bucket = s3.new_bucket()
    a = api().register("offsite1@example.com")
    state = _bucket_on(a, s3.endpoint, bucket)
    assert state["enabled"] is True and state["has_secret_key"] is True and state["scope"] == "alarms"
    assert state["bucket"] == bucket and state["prefix"] == "cams/home" and state["access_key_id"] == ACCESS_KEY
    assert state["last_copy_at"] is None and state["waiting"] == 0 and "secret_key" not in state

    r = a.post("/api/v1/me/offsite/test")
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    assert s3.keys(bucket) == []  # the test object is deleted again

    creds = a.upload_credentials(a.camera("Front door / porch")["id"])
    ev = a.upload_analysed(creds, clip)
    assert ev["verdict"] == "alarm"
    row = wait_outbox_state(server.core, a.id, "offsite", "sent")
    assert row.attempts == 1 and row.payload == {"clip_id": ev["id"]}
    video = _expected_key(ev, "Front door _ porch")
    assert s3.keys(bucket) == sorted([video, video[:-4] + ".json"])
    stored = a.get(f"/api/v1/events/{ev['id']}/video").content
    assert s3.read(bucket, video) == stored == clip.read_bytes()  # the stored clip, byte for byte
    side = json.loads(s3.read(bucket, video[:-4] + ".json"))
    assert side["clip_id"] == ev["id"] and side["camera_name"] == "Front door / porch"
    assert side["verdict"] == "alarm" and side["started_at"] == ev["started_at"]
    assert side["size_bytes"] == len(stored) and side["video"] == video.rsplit("/", 1)[1]
    assert [(f["detector"], f["label"]) for f in side["findings"]] == [(f["detector"], f["label"])
                                                                      for f in ev["findings"]]

    shown = a.get("/api/v1/me/offsite").json()
    assert shown["last_copy_at"] is not None and shown["last_error"] is None and shown["waiting"] == 0
    jsonschema.validate(shown, SHAPES[("GET", "/api/v1/me/offsite")]["response"])  # as the API documents it
    jsonschema.validate(state, SHAPES[("PATCH", "/api/v1/me/offsite")]["response"])
    jsonschema.validate(r.json(), SHAPES[("POST", "/api/v1/me/offsite/test")]["response"])
    assert [(c["clip_id"], c["state"]) for c in shown["copies"]] == [(ev["id"], "sent")]

    # deleting the clip here leaves the owner's copy where it is (it is theirs)
    assert a.delete(f"/api/v1/events/{ev['id']}").status_code == 204
    assert s3.read(bucket, video) == stored


def test_alarms_only_leaves_false_alarms_out_and_all_copies_them(api: Any, server: Any, s3: MotoS3,  # noqa: F811
                                                                 clip: Path, make_test_clip: Any) -> None:
    bucket = s3.new_bucket()
    a = api().register("offsite2@example.com")
    _bucket_on(a, s3.endpoint, bucket, prefix="")
    creds = a.upload_credentials(a.camera("Garden")["id"])
    still = make_test_clip("still", seconds=18, fps=15, scene=static_scene)
    quiet = a.upload_analysed(creds, still)
    assert quiet["verdict"] == "false_alarm:no_motion"
    real = a.upload_analysed(creds, clip)
    wait_outbox_state(server.core, a.id, "offsite", "sent")
    time.sleep(1.0)  # a few delivery rounds: the false alarm is not copied late either
    assert [r.payload["clip_id"] for r in _rows(server.core, a.id)] == [real["id"]]
    assert [k for k in s3.keys(bucket) if k.endswith(".mp4")] == [_expected_key(real, "Garden", "")[1:]]

    assert a.patch("/api/v1/me/offsite", json={"scope": "all"}).json()["scope"] == "all"
    quiet2 = a.upload_analysed(creds, still)
    row = wait_outbox_state(server.core, a.id, "offsite", "sent")
    assert row.payload["clip_id"] == quiet2["id"]
    side = json.loads(s3.read(bucket, _expected_key(quiet2, "Garden", "")[1:-4] + ".json"))
    assert side["verdict"] == "false_alarm:no_motion"

    assert a.patch("/api/v1/me/offsite", json={"enabled": False}).json()["enabled"] is False
    a.upload_analysed(creds, clip)
    time.sleep(0.5)
    assert len(_rows(server.core, a.id)) == 2 and len(s3.keys(bucket)) == 4  # switched off: nothing more


def test_a_bucket_outage_is_retried_and_the_copy_arrives_once(api: Any, server: Any, s3: MotoS3,  # noqa: F811
                                                              clip: Path) -> None:
    proxy = CuttingProxy(s3.endpoint)  # the owner's bucket behind a line that drops every connection for now
    proxy.cut_after(0)
    try:
        bucket = s3.new_bucket()
        a = api().register("offsite3@example.com")
        _bucket_on(a, proxy.endpoint, bucket)
        ev = a.upload_analysed(a.upload_credentials(a.camera("Yard")["id"]), clip)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (_rows(server.core, a.id) and
                                                   _rows(server.core, a.id)[0].attempts >= 2):
            time.sleep(0.05)
        (row,) = _rows(server.core, a.id)
        assert row.state == "queued" and row.attempts >= 2 and row.last_error, row
        shown = a.get("/api/v1/me/offsite").json()
        assert shown["waiting"] == 1 and shown["last_error"] == row.last_error and shown["last_copy_at"] is None
        assert s3.keys(bucket) == []

        proxy.limit = None  # the bucket is back
        row = wait_outbox_state(server.core, a.id, "offsite", "sent")
        time.sleep(1.0)  # more delivery rounds: nothing is copied twice
        assert len(_rows(server.core, a.id)) == 1 and row.attempts >= 3
        video = _expected_key(ev, "Yard")
        assert s3.keys(bucket) == sorted([video, video[:-4] + ".json"])
        assert s3.read(bucket, video) == clip.read_bytes()
        shown = a.get("/api/v1/me/offsite").json()
        assert shown["waiting"] == 0 and shown["last_error"] is None and shown["last_copy_at"] is not None
    finally:
        proxy.close()


def test_a_stalled_upload_does_not_hold_up_the_alarm_notifications(api: Any, server: Any, clip: Path,
                                                                    receiver: Any) -> None:
    """Copies run apart from notifications: a bucket that takes the upload but never answers (until the time
    limit) must not delay the webhook of the same alarm."""
    import socket
    import threading

    stall = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = stall.accept()
            except OSError:
                return
            held.append(conn)  # read nothing, answer nothing

    threading.Thread(target=accept, daemon=True).start()
    server.core.settings.offsite.timeout_seconds = 20.0
    try:
        a = api().register("offsite16@example.com")
        _bucket_on(a, f"http://127.0.0.1:{stall.getsockname()[1]}", "slow-bucket")
        assert a.post("/api/v1/webhooks", json={"url": receiver.url + "/hook"}).status_code == 201
        assert a.patch("/api/v1/me", json={"notify_cooldown_seconds": 0}).status_code == 200
        ev = a.upload_analysed(a.upload_credentials(a.camera("Porch")["id"]), clip)
        deadline = time.monotonic() + 30  # returns as soon as it happens; room for a loaded CI machine
        while time.monotonic() < deadline and not held:
            time.sleep(0.05)
        assert held, "the copy started"
        ev2 = a.upload_analysed(a.upload_credentials(a.camera("Gate")["id"]), clip)  # the next alarm
        hooks = receiver.wait(2, "/hook", timeout=10)
        assert sorted(json.loads(h["body"])["event_id"] for h in hooks) == sorted([ev["id"], ev2["id"]])
        first = _rows(server.core, a.id)[0]
        assert first.attempts == 0 and first.state == "queued"  # its upload still hangs: the alarms went out
    finally:
        stall.close()
        for conn in held:
            conn.close()


def test_a_copy_is_never_shown_sent_without_its_attempt(api: Any, server: Any, s3: MotoS3,  # noqa: F811
                                                        clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The copy loop writes "sent" in the transaction that records the copy on the clip, before the sender writes
    down the attempt: the same transaction counts the attempt, so the owner's list never shows a sent copy with
    none (the state and the count as the status API reads them, at the moment between the two writes)."""
    real = offsite.attempt
    between: list[tuple[str, int]] = []

    def look_after_the_copy(app: Any, row: Any) -> tuple[str, str | None]:
        outcome = real(app, row)
        between.extend((r.state, r.attempts) for r in _rows(app, row.account_id))
        return outcome

    monkeypatch.setattr(offsite, "attempt", look_after_the_copy)
    bucket = s3.new_bucket()
    a = api().register("offsite-attempts@example.com")
    _bucket_on(a, s3.endpoint, bucket)
    a.upload_analysed(a.upload_credentials(a.camera("Barn")["id"]), clip)
    row = wait_outbox_state(server.core, a.id, "offsite", "sent")
    # the sender thread looks right after the copy; the row may read "sent" a moment before it has looked
    deadline = time.monotonic() + 30  # returns as soon as it happens; room for a loaded CI machine
    while not between and time.monotonic() < deadline:
        time.sleep(0.02)
    assert between == [("sent", 1)] and row.attempts == 1


def test_copies_given_up_after_a_long_outage_can_be_retried(api: Any, server: Any, s3: MotoS3,  # noqa: F811
                                                             clip: Path) -> None:
    server.core.settings.offsite.max_attempts = 2
    proxy = CuttingProxy(s3.endpoint)
    proxy.cut_after(0)
    try:
        bucket = s3.new_bucket()
        a = api().register("offsite17@example.com")
        _bucket_on(a, proxy.endpoint, bucket)
        assert a.post("/api/v1/me/offsite/retry").json()["given_up"] == 0  # nothing to retry: nothing changes
        ev = a.upload_analysed(a.upload_credentials(a.camera("Barn")["id"]), clip)
        row = wait_outbox_state(server.core, a.id, "offsite", "dead")
        assert row.attempts == 2
        shown = a.get("/api/v1/me/offsite").json()
        assert shown["given_up"] == 1 and shown["waiting"] == 0 and shown["last_error"] == row.last_error

        proxy.limit = None  # the bucket is back, long after the retries ended
        r = a.post("/api/v1/me/offsite/retry")
        assert r.status_code == 200 and r.json()["given_up"] == 0, r.text
        jsonschema.validate(r.json(), SHAPES[("POST", "/api/v1/me/offsite/retry")]["response"])
        row = wait_outbox_state(server.core, a.id, "offsite", "sent")
        assert row.attempts == 1 and len(_rows(server.core, a.id)) == 1
        assert _expected_key(ev, "Barn") in s3.keys(bucket)
        assert a.patch("/api/v1/me/offsite", json={"enabled": False}).status_code == 200
        assert a.post("/api/v1/me/offsite/retry").json()["error"]["code"] == "not_enabled"
    finally:
        proxy.close()


def test_a_copy_survives_a_restart(tmp_path: Path, s3: MotoS3, clip: Path) -> None:  # noqa: F811
    """Queued while the bucket was away and the server stopped: the next server copies it."""
    from alarmcloud.testing import LiveServer

    from tests.conftest import Api  # type: ignore[import-not-found]

    def settings() -> Any:
        st = test_settings(tmp_path / "data", camera_networks=["127.0.0.0/8"])
        st.notify.webhook_networks = ["127.0.0.0/8"]
        st.offsite.allow_http, st.notify.retry_base_seconds = True, 0.2
        return st

    bucket = s3.new_bucket()
    proxy = CuttingProxy(s3.endpoint)
    proxy.cut_after(0)
    try:
        with LiveServer(settings()) as srv:
            a = Api(srv.url).register("offsite4@example.com")
            _bucket_on(a, proxy.endpoint, bucket)
            ev = a.upload_analysed(a.upload_credentials(a.camera("Shed")["id"]), clip)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (_rows(srv.core, a.id) and _rows(srv.core, a.id)[0].attempts):
                time.sleep(0.05)
            assert [r.state for r in _rows(srv.core, a.id)] == ["queued"]
        proxy.limit = None
        with LiveServer(settings()) as srv:
            wait_outbox_state(srv.core, a.id, "offsite", "sent")
        assert _expected_key(ev, "Shed") in s3.keys(bucket)
    finally:
        proxy.close()


def test_a_large_clip_goes_up_in_parts(server: Any, api: Any, s3: MotoS3, tmp_path: Path) -> None:  # noqa: F811
    core = server.core
    bucket = s3.new_bucket()
    a = api().register("offsite5@example.com")
    _bucket_on(a, s3.endpoint, bucket)
    cam = a.camera("Drive")
    data = bytes(range(256)) * (offsite.PART_SIZE * 2 // 256 + 4000)  # two full parts and a short one
    core.blobs.put_bytes(f"{a.id}/{cam['id']}/big.mp4", data)
    with core.db.session() as s:
        acc = s.get(Account, a.id)
        assert acc is not None
        big = Clip(account_id=a.id, camera_id=cam["id"], series_id="", blob_key=f"{a.id}/{cam['id']}/big.mp4",
                   verdict="alarm", size_bytes=len(data))
        key = offsite.copy_clip(core, acc, SECRET, big, None, [])
    head = s3.client.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == len(data) and head["ETag"].strip('"').endswith("-3")  # a three-part upload
    assert s3.read(bucket, key) == data


# ---------------------------------------------------------------- the bucket test and its errors


def test_no_proxy_from_the_environment_and_not_the_servers_own_credentials(
        server: Any, api: Any, s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """A proxy would connect to the owner's host past the address check; the server's own AWS credentials (a
    session token) must never be added to the owner's requests."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    hits: list[bytes] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            hits.append(conn.recv(200))
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    proxy = f"http://127.0.0.1:{listener.getsockname()[1]}"
    bucket = s3.new_bucket()
    a = api().register("offsite15@example.com")
    _bucket_on(a, s3.endpoint, bucket)
    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(var, proxy)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "the-servers-own-session-token")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "the-servers-own-key")
    with server.core.db.session() as s:
        acc = s.get(Account, a.id)
        assert acc is not None
        offsite.test_bucket(server.core, acc, SECRET)  # straight to the bucket
    listener.close()
    assert hits == []
    seen: list[dict[str, str]] = []  # what reaches a bucket server, headers and all

    class Peek(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:  # noqa: N802
            seen.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    peek = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Peek)
    threading.Thread(target=peek.serve_forever, daemon=True).start()
    try:
        with server.core.db.session() as s:
            acc = s.get(Account, a.id)
            assert acc is not None
            acc.offsite_endpoint = f"http://127.0.0.1:{peek.server_address[1]}"
            with pytest.raises(offsite.BucketError):
                offsite.test_bucket(server.core, acc, SECRET)
    finally:
        peek.shutdown()
        peek.server_close()
    assert seen and all("x-amz-security-token" not in h for h in seen), seen
    assert all(f"Credential={ACCESS_KEY}/" in h["authorization"] for h in seen)


def test_the_bucket_test_names_the_precise_error(api: Any, server: Any, s3: MotoS3) -> None:  # noqa: F811
    a = api().register("offsite6@example.com")
    assert a.post("/api/v1/me/offsite/test").json()["error"]["code"] == "not_configured"
    _bucket_on(a, s3.endpoint, "no-such-bucket-here")
    r = a.post("/api/v1/me/offsite/test")
    assert r.status_code == 400 and r.json()["error"]["code"] == "no_such_bucket", r.text
    assert "'no-such-bucket-here' does not exist" in r.json()["error"]["message"]

    import socket

    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    _bucket_on(a, closed, s3.new_bucket())
    r = a.post("/api/v1/me/offsite/test")
    assert r.status_code == 400 and r.json()["error"] == {"code": "cannot_connect",
                                                          "message": f"cannot connect to {closed}"}, r.text


def test_a_key_that_may_only_write_passes_the_test_and_is_told_so(api: Any, server: Any, s3: MotoS3,  # noqa: F811
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import obstore
    from obstore.exceptions import PermissionDeniedError

    def refuse(*args: Any, **kwargs: Any) -> None:  # what obstore raises for a 403 (its text, abridged)
        raise PermissionDeniedError("The operation lacked the necessary privileges to complete for path k: Error "
                                    "performing DELETE - Server returned non-2xx status code: 403 Forbidden: <?xml "
                                    "version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Access Denied"
                                    "</Message></Error>")

    bucket = s3.new_bucket()
    a = api().register("offsite18@example.com")
    _bucket_on(a, s3.endpoint, bucket)
    monkeypatch.setattr(obstore, "delete", refuse)  # the bucket's policy allows PutObject only
    r = a.post("/api/v1/me/offsite/test")
    assert r.status_code == 200 and r.json()["ok"] is True and r.json()["deleted"] is False, r.text
    assert "may not delete" in r.json()["message"]
    (left,) = s3.keys(bucket)
    assert left.startswith("cams/home/.alarmcloud-test-") and left in r.json()["message"]


def test_access_denied_is_told_as_such(api: Any, server: Any) -> None:
    """A bucket server that refuses the key (403 with S3's error document, as AWS answers a wrong key id)."""
    import threading

    body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access '
            b'Key Id you provided does not exist in our records.</Message></Error>')

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(403)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    refuse = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=refuse.serve_forever, daemon=True).start()
    try:
        a = api().register("offsite19@example.com")
        _bucket_on(a, f"http://127.0.0.1:{refuse.server_address[1]}", "bucket")
        r = a.post("/api/v1/me/offsite/test")
        assert r.status_code == 400 and r.json()["error"]["code"] == "access_denied", r.text
        message = r.json()["error"]["message"]
        assert "InvalidAccessKeyId: The AWS Access Key Id you provided does not exist" in message
        assert message.startswith("access denied by the bucket") and SECRET not in message
    finally:
        refuse.shutdown()
        refuse.server_close()


# ---------------------------------------------------------------- where the server may connect


def test_internal_endpoints_and_plain_http_are_refused(tmp_path: Path, s3: MotoS3, clip: Path) -> None:  # noqa: F811
    from alarmcloud.testing import LiveServer

    from tests.conftest import Api  # type: ignore[import-not-found]

    st = test_settings(tmp_path / "data", camera_networks=["127.0.0.0/8"])  # the operator's defaults
    with LiveServer(st) as srv:
        a = Api(srv.url).register("offsite7@example.com")
        for url, words in (("https://127.0.0.1:9000", "not a public address"),
                           ("https://169.254.169.254", "not a public address"),  # cloud metadata
                           ("https://[::1]:9000", "not a public address"),
                           ("https://10.1.2.3", "not a public address"),
                           ("https://localhost:9000", "not a public address"),
                           ("http://8.8.8.8", "https://"),
                           ("https://user:pw@s3.example.com", "user names"),
                           ("https://8.8.8.8/bucket", "no path"),
                           ("ftp://8.8.8.8", "http")):
            r = a.patch("/api/v1/me/offsite", json={"endpoint": url})
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_url", (url, r.text)
            assert words in r.json()["error"]["message"], (url, r.text)
        assert a.get("/api/v1/me/offsite").json()["endpoint"] is None  # nothing stored

        # an endpoint saved while the operator allowed it is checked again before every request
        srv.core.settings.notify.webhook_networks = ["127.0.0.0/8"]
        srv.core.settings.offsite.allow_http = True
        bucket = s3.new_bucket()
        _bucket_on(a, s3.endpoint, bucket)
        srv.core.settings.notify.webhook_networks = []
        r = a.post("/api/v1/me/offsite/test")
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_url"
        a.upload_analysed(a.upload_credentials(a.camera("Hall")["id"]), clip)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (_rows(srv.core, a.id) and _rows(srv.core, a.id)[0].attempts):
            time.sleep(0.05)
        (row,) = _rows(srv.core, a.id)
        assert row.state == "queued" and "not a public address" in (row.last_error or ""), row
        assert s3.keys(bucket) == []  # nothing reached the internal address


def test_bad_input_gets_a_precise_400_and_stores_nothing(api: Any, server: Any, s3: MotoS3) -> None:  # noqa: F811
    a = api().register("offsite8@example.com")
    for body, code in (({"bucket": "a"}, "invalid_field"), ({"bucket": "has space"}, "invalid_field"),
                       ({"prefix": "a/../b"}, "invalid_field"), ({"scope": "some"}, "invalid_field"),
                       ({"secret_key": "with space"}, "invalid_field"), ({"colour": "red"}, "unknown_field"),
                       ({"enabled": True}, "missing_field"),
                       ({"enabled": True, "endpoint": s3.endpoint, "bucket": "abc", "access_key_id": "k"},
                        "missing_field")):
        r = a.patch("/api/v1/me/offsite", json=body)
        assert r.status_code == 400 and r.json()["error"]["code"] == code, (body, r.text)
    state = a.get("/api/v1/me/offsite").json()
    assert state["enabled"] is False and state["endpoint"] is None and state["bucket"] is None

    _bucket_on(a, s3.endpoint, "abc")
    # removing a needed setting switches the copies off; a new endpoint host needs the secret key again
    assert a.patch("/api/v1/me/offsite", json={"secret_key": None}).status_code == 200
    state = a.get("/api/v1/me/offsite").json()
    assert state["enabled"] is False and state["has_secret_key"] is False
    _bucket_on(a, s3.endpoint, "abc")
    moved = s3.endpoint.replace("127.0.0.1", "127.0.0.2")
    r = a.patch("/api/v1/me/offsite", json={"endpoint": moved, "enabled": True})
    assert r.status_code == 400 and "secret key again" in r.json()["error"]["message"], r.text
    assert a.get("/api/v1/me/offsite").json()["has_secret_key"] is True  # nothing changed
    r = a.patch("/api/v1/me/offsite", json={"endpoint": moved})
    assert r.status_code == 200 and r.json()["has_secret_key"] is False and r.json()["enabled"] is False


# ---------------------------------------------------------------- secrets, tenants, privacy


def test_the_secret_key_is_never_shown_exported_or_logged(api: Any, server: Any, s3: MotoS3,  # noqa: F811
                                                          clip: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bucket = s3.new_bucket()
    a = api().register("offsite9@example.com")
    answers = [a.patch("/api/v1/me/offsite", json={"endpoint": s3.endpoint, "bucket": bucket, "region": REGION,
                                                   "access_key_id": ACCESS_KEY, "secret_key": SECRET,
                                                   "enabled": True}),
               a.get("/api/v1/me/offsite"), a.get("/api/v1/me"), a.get("/storage"),
               a.post("/api/v1/me/offsite/test")]
    for r in answers:
        assert r.status_code == 200 and SECRET not in r.text, r.text
    with server.core.db.session() as s:
        acc = s.get(Account, a.id)
        assert acc is not None and acc.offsite_secret_key_enc and SECRET not in acc.offsite_secret_key_enc
    a.upload_analysed(a.upload_credentials(a.camera("Gate")["id"]), clip)
    wait_outbox_state(server.core, a.id, "offsite", "sent")
    assert a.patch("/api/v1/me/offsite", json={"bucket": "gone-bucket"}).status_code == 200
    assert a.post("/api/v1/me/offsite/test").status_code == 400  # a failure is logged too

    export = a.get("/api/v1/me/export")  # the owner's data: the settings yes, the secret key in no form
    assert export.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(export.content))
    profile = json.loads(archive.read("account.json"))["profile"][0]
    assert profile["offsite_bucket"] == "gone-bucket" and profile["offsite_access_key_id"] == ACCESS_KEY
    assert profile["offsite_endpoint"] == s3.endpoint and not any("secret" in k for k in profile)
    for name in archive.namelist():
        data = archive.read(name)
        assert SECRET.encode() not in data and acc.offsite_secret_key_enc.encode() not in data, name
    assert "copied off-site" in caplog.text  # the copy was logged, so the check below looks at real lines
    assert SECRET not in caplog.text


def test_another_tenant_and_sub_users_cannot_read_or_change_the_settings(api: Any, server: Any, s3: MotoS3,  # noqa: F811
                                                                         clip: Path) -> None:
    mine, theirs = s3.new_bucket(), s3.new_bucket()
    a = api().register("offsite10@example.com")
    _bucket_on(a, s3.endpoint, mine)
    b = api().register("offsite11@example.com")
    shown = b.get("/api/v1/me/offsite").json()
    assert shown["bucket"] is None and shown["has_secret_key"] is False and shown["copies"] == []
    assert b.post("/api/v1/me/offsite/test").json()["error"]["code"] == "not_configured"
    _bucket_on(b, s3.endpoint, theirs, prefix="b")
    b.upload_analysed(b.upload_credentials(b.camera("Theirs")["id"]), clip)
    wait_outbox_state(server.core, b.id, "offsite", "sent")
    assert s3.keys(mine) == [] and len(s3.keys(theirs)) == 2  # each tenant's clips into their own bucket only
    assert a.get("/api/v1/me/offsite").json()["bucket"] == mine

    cam = a.camera("Porch")
    r = a.post("/api/v1/subusers", json={"email": "offsite-kid@example.com", "password": PW,
                                         "rights": {cam["id"]: "admin"}})
    assert r.status_code == 201, r.text
    kid = api().login("offsite-kid@example.com", PW)
    for r in (kid.get("/api/v1/me/offsite"), kid.patch("/api/v1/me/offsite", json={"bucket": "kids-bucket"}),
              kid.post("/api/v1/me/offsite/test"), kid.post("/api/v1/me/offsite/retry")):
        assert r.status_code == 403 and mine not in r.text, r.text
    assert "Off-site copies" not in kid.get("/storage").text
    assert a.get("/api/v1/me/offsite").json()["bucket"] == mine


def test_key_rotation_keeps_the_secret_key_readable(api: Any, server: Any, s3: MotoS3) -> None:  # noqa: F811
    core = server.core
    bucket = s3.new_bucket()
    a = api().register("offsite12@example.com")
    _bucket_on(a, s3.endpoint, bucket)
    old = core.secret_box
    new_key = crypto.decode_key(crypto.generate_key())
    rotating = crypto.SecretBox("k9", {"k9": new_key})
    rotating._keys.update(old._keys)  # the old key is still known while rotating
    counts = crypto.rotate_stored_secrets(core.db, rotating)
    assert counts.get(old.current_id, 0) >= 1
    core.secret_box = crypto.SecretBox("k9", {"k9": new_key})  # the old key is gone afterwards
    try:
        with core.db.session() as s:
            acc = s.get(Account, a.id)
            assert acc is not None and acc.offsite_secret_key_enc.startswith("k9$")
            assert offsite.open_secret(core, acc) == SECRET
        r = a.post("/api/v1/me/offsite/test")
        assert r.status_code == 200, r.text
    finally:
        core.secret_box = old


def test_erasure_removes_the_settings_and_waiting_copies(api: Any, server: Any, s3: MotoS3,  # noqa: F811
                                                         clip: Path) -> None:
    bucket = s3.new_bucket()
    a = api().register("offsite13@example.com")
    _bucket_on(a, "http://127.0.0.1:9", bucket)  # nothing listens: the copy waits
    a.upload_analysed(a.upload_credentials(a.camera("Back")["id"]), clip)
    assert [r.state for r in _rows(server.core, a.id)] == ["queued"]
    r = a.delete("/api/v1/me", json={"password": "correct horse battery staple"})
    assert r.status_code in (200, 202, 204), r.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with server.core.db.session() as s:
            if s.get(Account, a.id) is None:
                break
        time.sleep(0.1)
    with server.core.db.session() as s:
        assert s.get(Account, a.id) is None
    assert _rows(server.core, a.id) == []


def test_a_clip_whose_analysis_failed_is_copied_once_even_when_analysed_again(
        api: Any, server: Any, s3: MotoS3, clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """No verdict (the detectors failed every attempt) cannot show a clip to be a false alarm: it is copied in the
    "alarms" scope too, with a sidecar saying so; analysing it again later (alarmcloud reprocess) copies nothing
    again."""
    from alarmcloud import jobs, pipeline

    core = server.core
    core.settings.workers.max_attempts = 1
    bucket = s3.new_bucket()
    a = api().register("offsite30@example.com")
    assert _bucket_on(a, s3.endpoint, bucket)["scope"] == "alarms"
    working = pipeline.analyze_file

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("every detector failed: the model file does not load")

    monkeypatch.setattr(pipeline, "analyze_file", broken)
    r = a.upload(a.upload_credentials(a.camera("Hall")["id"]), clip)
    assert r.status_code == 201, r.text
    ev = a.wait_event(r.json()["event_id"])
    assert ev["status"] == "failed", ev
    row = wait_outbox_state(core, a.id, "offsite", "sent")
    assert row.payload == {"clip_id": ev["id"]}
    video = _expected_key(ev, "Hall")
    assert s3.keys(bucket) == sorted([video, video[:-4] + ".json"])
    assert s3.read(bucket, video) == clip.read_bytes()
    side = json.loads(s3.read(bucket, video[:-4] + ".json"))
    assert side["verdict"] is None and side["analysis"] == "failed" and side["clip_id"] == ev["id"]

    # the detectors work again and the operator re-analyses the clip: it gets a verdict, and no second copy
    monkeypatch.setattr(pipeline, "analyze_file", working)
    with core.db.session() as s:
        jobs.enqueue(s, _clip(core, ev["id"]), jobs.LOW)
        s.commit()
    core.wake_workers()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _clip(core, ev["id"]).status != "done":
        time.sleep(0.05)
    assert _clip(core, ev["id"]).verdict == "alarm"
    time.sleep(0.5)  # a few delivery rounds
    assert [(x.payload["clip_id"], x.state) for x in _rows(core, a.id)] == [(ev["id"], "sent")]
    assert a.post("/api/v1/me/offsite/backfill", json={}).json()["queued"] == 0


def test_a_clip_given_up_after_its_worker_died_is_copied(api: Any, server: Any, s3: MotoS3) -> None:  # noqa: F811
    """The other way processing gives up: the worker died on the last attempt (its lease ran out); the server's
    reaper gives the clip up and queues its copy."""
    from datetime import timedelta

    from alarmcloud.models import Job

    core = server.core
    core.settings.workers.max_attempts = 1
    a = api().register("offsite31@example.com")
    bucket = s3.new_bucket()
    _bucket_on(a, s3.endpoint, bucket)
    cam = a.camera("Loft")
    (clip_id,) = _stored_clips(core, a.id, cam["id"], [1], verdict=None, status="pending")
    with core.db.session() as s:
        s.add(Job(clip_id=clip_id, camera_id=cam["id"], account_id=a.id, state="running", attempts=1,
                  worker="gone-host:1:dead", lease_until=utcnow() - timedelta(seconds=1)))
        s.commit()
    row = wait_outbox_state(core, a.id, "offsite", "sent")
    assert row.payload == {"clip_id": clip_id} and _clip(core, clip_id).status == "failed"
    assert len([k for k in s3.keys(bucket) if clip_id in k]) == 2


def test_the_operator_can_switch_the_feature_off(api: Any, server: Any, s3: MotoS3, clip: Path) -> None:  # noqa: F811
    bucket = s3.new_bucket()
    a = api().register("offsite14@example.com")
    _bucket_on(a, s3.endpoint, bucket)
    assert "Off-site copies" in a.get("/storage").text
    server.core.settings.offsite.enabled = False
    assert a.get("/api/v1/me/offsite").json()["error"]["code"] == "not_available"
    assert "Off-site copies" not in a.get("/storage").text
    a.upload_analysed(a.upload_credentials(a.camera("Side")["id"]), clip)
    time.sleep(0.5)
    assert _rows(server.core, a.id) == [] and s3.keys(bucket) == []


def _copy_reads(statements: list[tuple[str, Any]]) -> list[str]:
    """The statements that read the outbox for off-site copies (the notifications' own reads say kind != 'offsite')."""
    return [sql for sql, params in statements if sql.lstrip().upper().startswith("SELECT") and "FROM outbox" in sql
            and "outbox.kind = " in sql and "offsite" in str(params)]


def test_switched_off_by_the_operator_the_copy_loop_reads_nothing(settings: Any) -> None:
    """The feature off: no copy query runs while the server runs; copies waiting from before are skipped once."""
    import threading

    from alarmcloud import db
    from alarmcloud.app import AlarmCloud
    from alarmcloud.testing import LiveServer
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    settings.offsite.enabled = False
    db.migrate(settings.db_url)
    before = AlarmCloud(settings)
    with before.db.session() as s:
        acc = Account(email="offsite40@example.com", password_hash="x")
        s.add(acc)
        s.flush()
        s.add(Outbox(account_id=acc.id, kind="offsite", target=offsite.target(acc.id), payload={"clip_id": "0" * 32}))
        s.commit()
        account_id = acc.id
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if threading.current_thread() is not threading.main_thread():  # the server's, not this test's own reads
            statements.append((statement, params))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        with LiveServer(settings) as srv:
            deadline = time.monotonic() + 30  # returns as soon as it happens; room for a loaded CI machine
            while time.monotonic() < deadline and [r.state for r in _rows(srv.core, account_id)] != ["skipped"]:
                time.sleep(0.05)
            assert [r.state for r in _rows(srv.core, account_id)] == ["skipped"]
            time.sleep(2.5)  # several rounds of the other background work
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert any("FROM outbox" in sql for sql, _ in statements)  # the notifications still look
    assert _copy_reads(statements) == []


def test_a_copy_queued_here_wakes_the_idle_copy_loop(settings: Any, s3: MotoS3, clip: Path,  # noqa: F811
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """However long the idle copy loop would sleep, a copy queued in this process (a new clip, a backfill, a retry)
    goes out at once; one queued by another process (a worker on PostgreSQL) is found within the idle wait."""
    from alarmcloud.testing import LiveServer

    from tests.conftest import Api  # type: ignore[import-not-found]

    monkeypatch.setattr(offsite, "IDLE_MIN_SECONDS", 3600.0)  # idle: an hour between looks
    monkeypatch.setattr(offsite, "IDLE_MAX_SECONDS", 3600.0)
    bucket = s3.new_bucket()
    with LiveServer(settings) as srv:
        a = Api(srv.url).register("offsite41@example.com")
        _bucket_on(a, s3.endpoint, bucket)
        cam = a.camera("Lane")
        time.sleep(0.5)  # the loop has looked once and sleeps
        ev = a.upload_analysed(a.upload_credentials(cam["id"]), clip)
        wait_outbox_state(srv.core, a.id, "offsite", "sent", timeout=20)
        assert _expected_key(ev, "Lane") in s3.keys(bucket)

        (old,) = _stored_clips(srv.core, a.id, cam["id"], [3])
        assert a.post("/api/v1/me/offsite/backfill", json={}).json()["queued"] == 1
        row = wait_outbox_state(srv.core, a.id, "offsite", "sent", timeout=20)
        assert row.payload["clip_id"] == old

        with srv.core.db.session() as s:  # a copy given up earlier, queued again by the owner
            given_up = s.get(Outbox, row.id)
            assert given_up is not None
            given_up.state = "dead"
            s.add(given_up)
            s.commit()
        assert a.post("/api/v1/me/offsite/retry").status_code == 200
        assert wait_outbox_state(srv.core, a.id, "offsite", "sent", timeout=20).attempts == 1

    monkeypatch.setattr(offsite, "IDLE_MIN_SECONDS", 0.2)
    monkeypatch.setattr(offsite, "IDLE_MAX_SECONDS", 0.5)
    with LiveServer(settings) as srv:
        time.sleep(1.5)  # idle for a while
        with srv.core.db.session() as s:  # as another process queues it: nothing here wakes the loop
            s.add(Outbox(account_id=a.id, kind="offsite", target=offsite.target(a.id), clip_id=ev["id"],
                         payload={"clip_id": ev["id"]}))
            s.commit()
        wait_outbox_state(srv.core, a.id, "offsite", "sent", timeout=20)


def test_the_record_of_processing_names_the_owners_bucket_as_a_recipient(server: Any) -> None:
    import httpx

    acts = httpx.get(server.url + "/api/v1/privacy/processing").json()["activities"]
    (act,) = [a for a in acts if a["name"] == "core: off-site copies"]
    assert act["recipients"] == ["the S3-compatible storage the account owner chose (their own bucket)",
                                 "the SFTP server the account owner chose (their own, e.g. a NAS)",
                                 "the WebDAV server the account owner chose (their own, e.g. Nextcloud)"]
    assert any("secret key (encrypted)" in d for d in act["data"]) and "not deleted" in act["retention"]


# ---------------------------------------------------------------- copying the clips already stored


def _stored_clips(core: Any, account_id: str, camera_id: str, days: list[int], verdict: str | None = "alarm",
                  status: str = "done") -> list[str]:
    """Clips stored before the copies were switched on, ``days`` days before 2026-11-20 (their blobs are real)."""
    from datetime import UTC, datetime, timedelta

    from alarmcloud.models import Series

    base = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    ids = []
    with core.db.session() as s:
        series = Series(account_id=account_id, camera_id=camera_id, started_at=base, ended_at=base,
                        clip_count=len(days))
        s.add(series)
        s.flush()
        for n, day in enumerate(days):
            key = f"{account_id}/{camera_id}/old-{day}-{n}.mp4"
            data = f"old clip {day} {n}".encode() * 50
            core.blobs.put_bytes(key, data)
            c = Clip(account_id=account_id, camera_id=camera_id, series_id=series.id or "", blob_key=key,
                     size_bytes=len(data), status=status, verdict=verdict, started_at=base - timedelta(days=day))
            s.add(c)
            ids.append(c.id)
        s.commit()
    return ids


def _wait_finished(core: Any, account_id: str, timeout: float = 60.0) -> list[Outbox]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _rows(core, account_id)
        if rows and all(r.state != "queued" for r in rows):
            return rows
        time.sleep(0.05)
    raise AssertionError([(r.state, r.last_error) for r in _rows(core, account_id)])


def test_clips_stored_before_switching_on_are_copied_once(api: Any, server: Any, s3: MotoS3, clip: Path,  # noqa: F811
                                                          make_test_clip: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server.core.settings.offsite, "backfill_spacing_seconds", 0.05)
    bucket = s3.new_bucket()
    a = api().register("offsite20@example.com")
    creds = a.upload_credentials(a.camera("Porch")["id"])
    old_alarm = a.upload_analysed(creds, clip)  # before any bucket was set: nothing is copied
    old_quiet = a.upload_analysed(creds, make_test_clip("still", seconds=18, fps=15, scene=static_scene))
    assert old_alarm["verdict"] == "alarm" and old_quiet["verdict"] == "false_alarm:no_motion"
    b = api().register("offsite21@example.com")  # another tenant with a bucket of their own and an old alarm
    theirs = b.upload_analysed(b.upload_credentials(b.camera("Theirs")["id"]), clip)
    _bucket_on(b, s3.endpoint, s3.new_bucket())
    _bucket_on(a, s3.endpoint, bucket)
    assert _rows(server.core, a.id) == []

    r = a.post("/api/v1/me/offsite/backfill")  # no body: every clip of the scope ("alarms")
    assert r.status_code == 200 and r.json()["queued"] == 1, r.text
    jsonschema.validate(r.json(), SHAPES[("POST", "/api/v1/me/offsite/backfill")]["response"])
    assert r.json()["waiting"] + len([c for c in r.json()["copies"] if c["state"] == "sent"]) == 1
    (row,) = _wait_finished(server.core, a.id)
    assert row.state == "sent" and row.payload == {"clip_id": old_alarm["id"], "backfill": True}
    video = _expected_key(old_alarm, "Porch")
    assert s3.keys(bucket) == sorted([video, video[:-4] + ".json"])
    assert s3.read(bucket, video) == a.get(f"/api/v1/events/{old_alarm['id']}/video").content

    again = a.post("/api/v1/me/offsite/backfill", json={})
    assert again.status_code == 200 and again.json()["queued"] == 0 and again.json()["waiting"] == 0

    assert a.patch("/api/v1/me/offsite", json={"scope": "all"}).status_code == 200
    r = a.post("/api/v1/me/offsite/backfill", json={})
    assert r.json()["queued"] == 1  # the false alarm now; the alarm has its copy
    rows = _wait_finished(server.core, a.id)
    assert [(x.payload["clip_id"], x.state) for x in rows] == [(old_alarm["id"], "sent"), (old_quiet["id"], "sent")]
    assert _expected_key(old_quiet, "Porch") in s3.keys(bucket) and len(s3.keys(bucket)) == 4
    assert a.post("/api/v1/me/offsite/backfill", json={}).json()["queued"] == 0
    assert all(x.payload["clip_id"] != theirs["id"] for x in rows)  # the other tenant's clip is never mine
    assert _rows(server.core, b.id) == []  # and their own backfill was not started by mine

    # finished copy jobs are deleted after notify.keep_days; the clips keep the record of their copies, so a backfill
    # then queues nothing again
    from datetime import timedelta

    from alarmcloud import notify

    with server.core.db.session() as s:
        for x in s.exec(select(Outbox).where(Outbox.account_id == a.id)).all():
            x.created_at = x.available_at = utcnow() - timedelta(days=server.core.settings.notify.keep_days + 1)
            s.add(x)
        s.commit()
    assert notify.prune(server.core) >= 2 and _rows(server.core, a.id) == []
    assert a.post("/api/v1/me/offsite/backfill", json={}).json()["queued"] == 0

    # another prefix: "Copy existing clips" copies the stored clips into the new place
    assert a.patch("/api/v1/me/offsite", json={"prefix": "moved/here"}).status_code == 200
    assert a.post("/api/v1/me/offsite/backfill", json={}).json()["queued"] == 2
    assert [x.state for x in _wait_finished(server.core, a.id)] == ["sent", "sent"]
    moved = [_expected_key(e, "Porch", prefix="moved/here") for e in (old_alarm, old_quiet)]
    assert {k for k in s3.keys(bucket) if k.startswith("moved/")} == {*moved, *(k[:-4] + ".json" for k in moved)}
    assert s3.read(bucket, moved[0]) == s3.read(bucket, video)
    assert a.post("/api/v1/me/offsite/backfill", json={}).json()["queued"] == 0

    # and back to the first place: a copy the bucket still holds complete is not uploaded again, one the owner
    # deleted there is made again
    quiet_video = _expected_key(old_quiet, "Porch")
    s3.client.put_object(Bucket=bucket, Key=video[:-4] + ".json", Body=b"left as it is")
    s3.client.delete_object(Bucket=bucket, Key=quiet_video)
    assert a.patch("/api/v1/me/offsite", json={"prefix": "cams/home"}).status_code == 200
    assert a.post("/api/v1/me/offsite/backfill", json={}).json()["queued"] == 2
    assert all(x.state == "sent" for x in _wait_finished(server.core, a.id))
    assert s3.read(bucket, video[:-4] + ".json") == b"left as it is"  # complete there: not uploaded again
    assert s3.read(bucket, quiet_video) == a.get(f"/api/v1/events/{old_quiet['id']}/video").content


def test_the_operator_sets_how_fast_existing_clips_are_copied(
        api: Any, server: Any, s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """``offsite.backfill_spacing_seconds`` and ``backfill_mib_per_second`` space the backfill's copies: each is due
    the spacing plus its size at the rate after the one before (an operator with a fast uplink copies faster)."""
    core = server.core
    monkeypatch.setattr(core.settings.offsite, "backfill_spacing_seconds", 100.0)
    monkeypatch.setattr(core.settings.offsite, "backfill_mib_per_second", 0.0001)  # 104.9 bytes a second
    bucket = s3.new_bucket()
    a = api().register("offsite-pace@example.com")
    ids = _stored_clips(core, a.id, a.camera("Yard")["id"], [3, 2, 1])
    _bucket_on(a, s3.endpoint, bucket)
    r = a.post("/api/v1/me/offsite/backfill", json={})
    assert r.status_code == 200 and r.json()["queued"] == 3, r.text
    # the first is due at once (it may be under way already, due again after its lease); the others wait their turn
    rows = {x.payload["clip_id"]: x for x in _rows(core, a.id)}
    with core.db.session() as s:
        size = s.get(Clip, ids[1]).size_bytes  # type: ignore[union-attr]
    gap = (rows[ids[2]].available_at - rows[ids[1]].available_at).total_seconds()
    assert gap == pytest.approx(100.0 + size / (0.0001 * 1024 * 1024), rel=1e-3)
    assert rows[ids[1]].available_at > utcnow() + timedelta(seconds=100)  # 1,000-byte clips: over 100 s apart


def test_backfill_in_batches_by_time_and_camera_and_deleted_clips_are_skipped(
        api: Any, server: Any, s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    core = server.core
    monkeypatch.setattr(offsite, "BACKFILL_BATCH", 2)  # several transactions for a handful of clips
    monkeypatch.setattr(core.settings.offsite, "backfill_spacing_seconds", 3600.0)  # none is due during the checks
    monkeypatch.setattr(offsite, "IDLE_MAX_SECONDS", 0.5)  # the copies made due below, as time passing would
    bucket = s3.new_bucket()
    a = api().register("offsite22@example.com")
    front, back = a.camera("Front"), a.camera("Back")
    fronts = _stored_clips(core, a.id, front["id"], [30, 20, 10, 5, 3, 2, 1])
    backs = _stored_clips(core, a.id, back["id"], [9, 4])
    _stored_clips(core, a.id, front["id"], [6], verdict="false_alarm:rain")  # not in the "alarms" scope
    _stored_clips(core, a.id, front["id"], [7], verdict=None, status="pending")  # not analysed yet: not now
    # analysis failed: no verdict cannot show it to be a false alarm, so it is copied in the "alarms" scope too
    backs += _stored_clips(core, a.id, back["id"], [8], verdict="analysis_failed", status="failed")
    _bucket_on(a, s3.endpoint, bucket)

    r = a.post("/api/v1/me/offsite/backfill", json={"since": "2026-11-15", "camera_id": front["id"]})
    assert r.status_code == 200 and r.json()["queued"] == 4, r.text  # 5, 3, 2 and 1 days back
    assert r.json()["waiting"] in (3, 4)  # the first is due at once: it may have gone out already
    r = a.post("/api/v1/me/offsite/backfill", json={})
    assert r.json()["queued"] == 6 and r.json()["waiting"] in (9, 10)  # the older fronts and the backs
    rows = _rows(core, a.id)
    assert sorted(x.payload["clip_id"] for x in rows) == sorted(fronts + backs)
    assert len({x.payload["clip_id"] for x in rows}) == 10  # no clip twice
    dues = [x.available_at for x in rows]
    assert dues == sorted(dues) and len(set(dues)) == 10  # spread out, none due with another
    assert rows[0].payload["clip_id"] == fronts[3]  # the oldest of the first call is due at once, the rest later
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _rows(core, a.id)[0].state != "sent":
        time.sleep(0.05)
    time.sleep(0.5)
    assert [k for k in s3.keys(bucket) if k.endswith(".mp4")] == [
        x for x in s3.keys(bucket) if fronts[3] in x and x.endswith(".mp4")] != []  # only that one so far

    assert a.delete(f"/api/v1/events/{fronts[-1]}").status_code == 204  # deleted while its copy waits
    with core.db.session() as s:
        for x in s.exec(select(Outbox).where(Outbox.account_id == a.id)).all():
            x.available_at = utcnow()
            s.add(x)
        s.commit()
    done = {x.payload["clip_id"]: x for x in _wait_finished(core, a.id)}
    assert done[fronts[-1]].state == "skipped" and "deleted" in (done[fronts[-1]].last_error or "")
    assert sorted(k for k, x in done.items() if x.state == "sent") == sorted(fronts[:-1] + backs)
    assert done[fronts[3]].attempts == 1  # copied once
    assert len([k for k in s3.keys(bucket) if k.endswith(".mp4")]) == 9
    failed = [k for k in s3.keys(bucket) if backs[-1] in k and k.endswith(".json")]
    assert [json.loads(s3.read(bucket, k))["analysis"] for k in failed] == ["failed"]
    assert a.post("/api/v1/me/offsite/backfill", json={}).json()["queued"] == 0


def test_backfill_is_the_owners_and_needs_the_copies_on(api: Any, server: Any, s3: MotoS3) -> None:  # noqa: F811
    a = api().register("offsite23@example.com")
    cam = a.camera("Porch")
    r = a.post("/api/v1/me/offsite/backfill", json={})
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_enabled", r.text
    _bucket_on(a, s3.endpoint, s3.new_bucket())
    for body, status, code in (({"since": "last tuesday"}, 400, "invalid_time"), ({"since": 5}, 400, "invalid_field"),
                               ({"camera": cam["id"]}, 400, "unknown_field"),
                               ({"camera_id": "0" * 32}, 404, "not_found")):
        r = a.post("/api/v1/me/offsite/backfill", json=body)
        assert r.status_code == status and r.json()["error"]["code"] == code, (body, r.text)
    b = api().register("offsite24@example.com")
    _bucket_on(b, s3.endpoint, s3.new_bucket())
    r = b.post("/api/v1/me/offsite/backfill", json={"camera_id": cam["id"]})  # another tenant's camera
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"

    assert a.post("/api/v1/subusers", json={"email": "offsite-kid2@example.com", "password": PW,
                                            "rights": {cam["id"]: "admin"}}).status_code == 201
    kid = api().login("offsite-kid2@example.com", PW)
    assert kid.post("/api/v1/me/offsite/backfill", json={}).status_code == 403
    server.core.settings.offsite.enabled = False
    try:
        r = a.post("/api/v1/me/offsite/backfill", json={})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_available", r.text
    finally:
        server.core.settings.offsite.enabled = True
    assert _rows(server.core, a.id) == [] and _rows(server.core, b.id) == []


# ---------------------------------------------------------------- the outbox's clip column (migration 0015)


def _upgrade_keeps_waiting_copies(url: str, tmp_path: Path) -> None:
    from alarmcloud import db
    from alarmcloud.app import AlarmCloud
    from alarmcloud.models import Camera, Series
    from alembic import command
    from sqlalchemy import inspect

    db.migrate(url)
    core = AlarmCloud(test_settings(tmp_path / "data", database_url=url))
    try:
        with core.db.session() as s:
            acc = Account(email="offsite50@example.com", password_hash="x", offsite_enabled=True,
                          offsite_endpoint="https://s3.example.com", offsite_bucket="b", offsite_access_key_id="AKIA",
                          offsite_secret_key_enc="sealed")
            s.add(acc)
            s.flush()
            cam = Camera(account_id=acc.id, name="Yard", brand="instar", model="IN-9008")
            s.add(cam)
            s.flush()
            series = Series(account_id=acc.id, camera_id=cam.id, started_at=utcnow(), ended_at=utcnow())
            s.add(series)
            s.flush()
            clips = [Clip(account_id=acc.id, camera_id=cam.id, series_id=series.id or "", blob_key=f"k{n}.mp4",
                          status="done", verdict="alarm") for n in range(3)]
            s.add_all(clips)
            s.flush()
            # written before the column existed: the clip id in the payload only
            s.add(Outbox(account_id=acc.id, kind="offsite", target=offsite.target(acc.id), state="queued",
                         payload={"clip_id": clips[0].id}))
            s.add(Outbox(account_id=acc.id, kind="offsite", target=offsite.target(acc.id), state="dead",
                         payload={"clip_id": clips[1].id, "backfill": True}))
            s.add(Outbox(account_id=acc.id, kind="webhook", target="hook", payload={"clip_id": clips[2].id}))
            s.commit()
            account_id, ids = acc.id, [c.id for c in clips]
        core.db.dispose()
        command.downgrade(db.alembic_config(url), "0014")  # back to before the column ...
        assert "clip_id" not in [c["name"] for c in inspect(core.db.engine).get_columns("outbox")]
        core.db.dispose()
        db.migrate(url)  # ... and up again: the copies' rows get it from their payloads
        with core.db.session() as s:
            rows = {r.kind + ":" + r.state: r.clip_id for r in s.exec(select(Outbox)).all()}
        assert rows == {"offsite:queued": ids[0], "offsite:dead": ids[1], "webhook:queued": None}
        # the copies waiting or given up from before are found: only the third clip is queued
        assert offsite.backfill(core, account_id) == 1
        assert offsite.backfill(core, account_id) == 0
        with core.db.session() as s:
            assert offsite.waiting(s, ids) == set(ids)
    finally:
        core.db.dispose()


def test_copies_queued_before_the_upgrade_are_found_on_sqlite(tmp_path: Path) -> None:
    _upgrade_keeps_waiting_copies(f"sqlite:///{tmp_path / 'up.db'}", tmp_path)


@pytest.mark.postgres
def test_copies_queued_before_the_upgrade_are_found_on_postgres(tmp_path: Path) -> None:
    from alarmcloud.testing import postgres_database

    with postgres_database("ac_offsite_") as url:
        _upgrade_keeps_waiting_copies(url, tmp_path)


def test_each_clip_says_where_its_copy_stands_and_one_more_can_be_copied(api: Any, server: Any, s3: MotoS3,  # noqa: F811
                                                                          clip: Path, make_test_clip: Any) -> None:
    bucket = s3.new_bucket()
    a = api().register("offsite-clip@example.com")
    creds = a.upload_credentials(a.camera("Garden")["id"])
    before = a.upload_analysed(creds, clip)
    shown = a.get(f"/api/v1/events/{before['id']}").json()
    assert shown["offsite"] is None  # no copies set up
    jsonschema.validate(shown, SHAPES[("GET", "/api/v1/events/{event_id}")]["response"])
    _bucket_on(a, s3.endpoint, bucket)
    r = a.get(f"/api/v1/events/{before['id']}")
    assert r.json()["offsite"]["state"] == "none" and bucket in r.json()["offsite"]["where"]
    assert "stored before the copies were switched on" in a.get(f"/events/{before['id']}").text

    real = a.upload_analysed(creds, clip)
    wait_outbox_state(server.core, a.id, "offsite", "sent")
    shown = a.get(f"/api/v1/events/{real['id']}").json()
    assert shown["offsite"]["state"] == "copied" and shown["offsite"]["last_error"] is None
    jsonschema.validate(shown, SHAPES[("GET", "/api/v1/events/{event_id}")]["response"])
    page = a.get(f"/events/{real['id']}").text
    assert f"Copied to your bucket {bucket}" in page and "Copy this clip" not in page

    # a false alarm is not copied under "alarms only"; the owner copies this one anyway
    quiet = a.upload_analysed(creds, make_test_clip("still", seconds=18, fps=15, scene=static_scene))
    assert quiet["verdict"] == "false_alarm:no_motion"
    assert a.get(f"/api/v1/events/{quiet['id']}").json()["offsite"]["state"] == "none"
    page = a.get(f"/events/{quiet['id']}").text
    assert "only alarms are copied" in page and "Copy this clip" in page
    r = a.post("/api/v1/me/offsite/backfill", json={"event_id": quiet["id"]})
    assert r.status_code == 200 and r.json()["queued"] == 1, r.text
    jsonschema.validate(r.json(), SHAPES[("POST", "/api/v1/me/offsite/backfill")]["response"])
    deadline = time.monotonic() + 30
    while a.get(f"/api/v1/events/{quiet['id']}").json()["offsite"]["state"] != "copied":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert _expected_key(quiet, "Garden") in s3.keys(bucket)
    assert a.post("/api/v1/me/offsite/backfill", json={"event_id": quiet["id"]}).json()["queued"] == 0

    for body, status, code in [({"event_id": quiet["id"], "camera_id": real["camera_id"]}, 400, "invalid_field"),
                               ({"event_id": "0" * 32}, 404, "not_found"), ({"event_id": 5}, 400, "invalid_field")]:
        r = a.post("/api/v1/me/offsite/backfill", json=body)
        assert r.status_code == status and r.json()["error"]["code"] == code, (body, r.text)
    b = api().register("offsite-clip-other@example.com")
    _bucket_on(b, s3.endpoint, s3.new_bucket())
    r = b.post("/api/v1/me/offsite/backfill", json={"event_id": real["id"]})  # another tenant's clip
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text

    # the bucket goes away: the next copy waits, with the bucket's error
    assert a.patch("/api/v1/me/offsite", json={"bucket": "no-such-bucket-here"}).status_code == 200
    assert a.get(f"/api/v1/events/{real['id']}").json()["offsite"]["copied_elsewhere"] is True
    assert a.post("/api/v1/me/offsite/backfill", json={"event_id": real["id"]}).json()["queued"] == 1
    deadline = time.monotonic() + 30
    while not (a.get(f"/api/v1/events/{real['id']}").json()["offsite"]["last_error"]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    state = a.get(f"/api/v1/events/{real['id']}").json()["offsite"]
    assert state["state"] == "waiting" and state["attempts"] >= 1 and "does not exist" in state["last_error"]
    assert state["next_attempt_at"] is not None
    assert "Waiting to be copied" in a.get(f"/events/{real['id']}").text

    # a sub-user sees the clip, not the owner's copies
    r = a.post("/api/v1/subusers", json={"email": "offsite-clip-kid@example.com", "password": PW,
                                         "rights": {real["camera_id"]: "view"}})
    assert r.status_code == 201, r.text
    kid = api().login("offsite-clip-kid@example.com", PW)
    assert kid.get(f"/api/v1/events/{real['id']}").json()["offsite"] is None
    assert "Off-site copy" not in kid.get(f"/events/{real['id']}").text
    r = kid.post("/api/v1/me/offsite/backfill", json={"event_id": real["id"]})
    assert r.status_code == 403, r.text
