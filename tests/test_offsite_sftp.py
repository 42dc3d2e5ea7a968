"""Off-site copies to the owner's SFTP server: a real OpenSSH server (``sshd``) on loopback stands in for the owner's
NAS. Clips go through the real upload API and the detectors; copies leave through the durable outbox."""

from __future__ import annotations

import io
import json
import logging
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from alarmcloud import crypto, offsite_sftp
from alarmcloud.models import Account
from alarmcloud.openapi import SHAPES
from alarmcloud.testing import test_settings

from tests.conftest import forget_offsite_copy, outbox_rows, set_account, wait_outbox_state  # type: ignore[import-not-found]
from tests.s3server import bucket_on_loopback  # type: ignore[import-not-found]
from tests.sftpserver import SshServer, sshd  # type: ignore[import-not-found]  # noqa: F401
from tests.test_offsite_masks import _masked_areas, _set_masks, garden_clip  # type: ignore[import-not-found]  # noqa: F401
from tests.test_privacy_masks import MASKS, stored_clip  # type: ignore[import-not-found]

FOLDER = "cams/home"


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    return bucket_on_loopback(test_settings(tmp_path / "data", camera_networks=["127.0.0.0/8"]))


def _server_on(a: Any, srv: SshServer, **extra: Any) -> dict[str, Any]:
    """The SFTP settings saved (not yet switched on): the account's key is made now."""
    r = a.patch("/api/v1/me/offsite", json={"kind": "sftp", "sftp_host": "127.0.0.1", "sftp_port": srv.port,
                                            "sftp_user": srv.user, "prefix": FOLDER, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def _ready(a: Any, srv: SshServer) -> dict[str, Any]:
    """Saved, the key authorized on the server, tested (the host key trusted) and switched on."""
    srv.authorize(_server_on(a, srv)["sftp_public_key"])
    r = a.post("/api/v1/me/offsite/test")
    assert r.status_code == 200, r.text
    r = a.patch("/api/v1/me/offsite", json={"enabled": True})
    assert r.status_code == 200, r.text
    return r.json()


def _expected_path(event: dict[str, Any], camera: str) -> str:
    t = event["started_at"]  # 2026-11-22T05:42:31.123Z
    stamp = t[:19].replace("-", "").replace(":", "") + "Z"
    return f"{FOLDER}/{camera}/{t[:10].replace('-', '/')}/{stamp}-{event['id']}.mp4"


def _wait(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _metric(server: Any, sample: str) -> float:
    """One sample of the server's Prometheus metrics (0 when it has none yet)."""
    import httpx

    for line in httpx.get(server.url + "/metrics").text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _sha256_part(lf_line: str) -> str:
    return next(w for w in lf_line.split() if w.startswith("SHA256:"))


def test_an_alarm_clip_lands_on_the_owners_sftp_server(api: Any, server: Any, sshd: SshServer,  # noqa: F811
                                                       clip: Path) -> None:
    a = api().register("sftp1@example.com")
    saved = _server_on(a, sshd)
    public = saved["sftp_public_key"]
    assert public.startswith("ssh-ed25519 AAAA") and saved["kind"] == "sftp" and saved["enabled"] is False
    assert saved["sftp_host"] == "127.0.0.1" and saved["sftp_port"] == sshd.port and saved["sftp_host_key"] is None
    jsonschema.validate(saved, SHAPES[("PATCH", "/api/v1/me/offsite")]["response"])

    # switching on before the server's host key is known: told to test first
    r = a.patch("/api/v1/me/offsite", json={"enabled": True})
    assert r.status_code == 400 and r.json()["error"]["code"] == "missing_field" and "test" in r.json()["error"]["message"]
    # the key is not on the server yet: refused, and the host key is not trusted from a failed test
    r = a.post("/api/v1/me/offsite/test")
    assert r.status_code == 400 and r.json()["error"]["code"] == "access_denied", r.text
    assert "authorized_keys" in r.json()["error"]["message"]
    assert a.get("/api/v1/me/offsite").json()["sftp_host_key"] is None

    sshd.authorize(public)
    r = a.post("/api/v1/me/offsite/test")
    assert r.status_code == 200, r.text
    body = r.json()
    jsonschema.validate(body, SHAPES[("POST", "/api/v1/me/offsite/test")]["response"])
    # the key the owner reads on the server with ssh-keygen -lf is the one trusted now
    assert body["host_key_new"] is True and body["deleted"] is True
    assert body["host_key"] == f"ssh-ed25519 {_sha256_part(sshd.fingerprint())}"
    assert _sha256_part(sshd.fingerprint()) in body["message"]
    assert sshd.files() == []  # the test file is deleted again (the folder stays)
    assert (sshd.root / FOLDER).is_dir()
    assert a.get("/api/v1/me/offsite").json()["sftp_host_key"] == body["host_key"]
    again = a.post("/api/v1/me/offsite/test").json()
    assert again["host_key_new"] is False and again["host_key"] == body["host_key"]

    state = a.patch("/api/v1/me/offsite", json={"enabled": True}).json()
    assert state["enabled"] is True
    sent_before = _metric(server, 'alarmcloud_deliveries_total{kind="offsite",outcome="sent"}')
    creds = a.upload_credentials(a.camera("Front door / porch")["id"])
    ev = a.upload_analysed(creds, clip)
    assert ev["verdict"] == "alarm"
    row = wait_outbox_state(server.core, a.id, "offsite", "sent")
    assert row.attempts == 1
    # the operator's monitoring counts it
    _wait(lambda: _metric(server, 'alarmcloud_deliveries_total{kind="offsite",outcome="sent"}') == sent_before + 1,
          "the copy was not counted")
    assert _metric(server, 'alarmcloud_delivery_seconds_count{kind="offsite"}') >= 1
    video = _expected_path(ev, "Front door _ porch")
    assert sshd.files() == sorted([video, video[:-4] + ".json"])  # no part files left behind
    stored = a.get(f"/api/v1/events/{ev['id']}/video").content
    assert sshd.read(video) == stored == clip.read_bytes()
    side = json.loads(sshd.read(video[:-4] + ".json"))
    assert side["clip_id"] == ev["id"] and side["camera_name"] == "Front door / porch"
    assert side["verdict"] == "alarm" and side["size_bytes"] == len(stored)
    shown = a.get("/api/v1/me/offsite").json()
    assert shown["last_copy_at"] is not None and shown["last_error"] is None
    jsonschema.validate(shown, SHAPES[("GET", "/api/v1/me/offsite")]["response"])

    # deleting the clip here leaves the owner's copy where it is
    assert a.delete(f"/api/v1/events/{ev['id']}").status_code == 204
    assert sshd.read(video) == stored


def test_a_server_with_another_host_key_gets_nothing(api: Any, server: Any, sshd: SshServer,  # noqa: F811
                                                     clip: Path) -> None:
    a = api().register("sftp2@example.com")
    assert a.patch("/api/v1/me", json={"notify_email": True}).status_code == 200
    _ready(a, sshd)
    trusted = a.get("/api/v1/me/offsite").json()["sftp_host_key"]
    creds = a.upload_credentials(a.camera("Gate")["id"])
    a.upload_analysed(creds, clip)
    wait_outbox_state(server.core, a.id, "offsite", "sent")
    before = sshd.files()

    sshd.new_host_key()  # another machine answers at that address now (or the NAS was set up again)
    ev = a.upload_analysed(creds, clip)
    _wait(lambda: bool(outbox_rows(server.core, a.id, "offsite")[-1].last_error), "the copy was not tried")
    rows = outbox_rows(server.core, a.id, "offsite")
    assert rows[-1].payload["clip_id"] == ev["id"] and rows[-1].state == "queued"
    assert "another host key" in (rows[-1].last_error or "") and trusted in (rows[-1].last_error or "")
    assert sshd.files() == before  # not a byte went there
    # the owner is told at once (someone may be in between), not after an hour of failures; once
    def notices() -> list[Any]:
        return [m for m in outbox_rows(server.core, a.id, "email") if "Off-site" in m.payload["subject"]]

    _wait(lambda: bool(notices()), "the owner was not told")
    (mail,) = notices()
    assert mail.payload["subject"] == "Off-site copies stopped: the server showed another host key"
    assert "another host key" in mail.payload["text"] and "/storage#offsite" in mail.payload["text"]
    _wait(lambda: outbox_rows(server.core, a.id, "offsite")[-1].attempts >= 3, "the copy was not retried")
    assert len(notices()) == 1
    r = a.post("/api/v1/me/offsite/test")
    assert r.status_code == 400 and r.json()["error"]["code"] == "host_key_changed", r.text
    assert sshd.files() == before and a.get("/api/v1/me/offsite").json()["sftp_host_key"] == trusted

    # the owner compares the new key on the server and trusts it: the waiting copy arrives
    r = a.patch("/api/v1/me/offsite", json={"sftp_host_key": sshd.fingerprint()})
    assert r.status_code == 200 and r.json()["sftp_host_key"] == f"ssh-ed25519 {_sha256_part(sshd.fingerprint())}"
    assert r.json()["enabled"] is True
    wait_outbox_state(server.core, a.id, "offsite", "sent")
    assert _expected_path(ev, "Gate") in sshd.files()


def test_a_host_key_entered_beforehand_needs_no_test_and_a_wrong_one_is_refused(
        api: Any, server: Any, sshd: SshServer, clip: Path) -> None:  # noqa: F811
    a = api().register("sftp3@example.com")
    sshd.authorize(_server_on(a, sshd)["sftp_public_key"])
    other = "SHA256:" + "A" * 43
    r = a.patch("/api/v1/me/offsite", json={"sftp_host_key": other, "enabled": True})
    assert r.status_code == 200 and r.json()["sftp_host_key"] == other and r.json()["enabled"] is True
    r = a.post("/api/v1/me/offsite/test")
    assert r.status_code == 400 and r.json()["error"]["code"] == "host_key_changed" and sshd.files() == []

    # the right fingerprint said to be of a key type the server does not hold: asked for that type only, refused
    fp = _sha256_part(sshd.fingerprint())
    r = a.patch("/api/v1/me/offsite", json={"sftp_host_key": f"256 {fp} root@nas (ECDSA)"})
    assert r.status_code == 200 and r.json()["sftp_host_key"] == f"ecdsa-sha2-nistp256 {fp}"
    r = a.post("/api/v1/me/offsite/test")
    assert r.status_code == 400 and r.json()["error"]["code"] == "host_key_changed", r.text
    assert "no longer offers" in r.json()["error"]["message"]

    r = a.patch("/api/v1/me/offsite", json={"sftp_host_key": sshd.fingerprint()})  # ssh-keygen -lf's whole line
    assert r.status_code == 200, r.text
    ev = a.upload_analysed(a.upload_credentials(a.camera("Yard")["id"]), clip)
    wait_outbox_state(server.core, a.id, "offsite", "sent")
    assert _expected_path(ev, "Yard") in sshd.files()


@pytest.mark.parametrize(("entered", "stored"), [
    ("256 SHA256:" + "x" * 43 + " root@nas (ED25519)", "ssh-ed25519 SHA256:" + "x" * 43),
    ("3072 SHA256:" + "x" * 43 + " root@nas (RSA)", "ssh-rsa SHA256:" + "x" * 43),
    ("384 SHA256:" + "x" * 43 + " root@nas (ECDSA)", "ecdsa-sha2-nistp384 SHA256:" + "x" * 43),
    ("ssh-ed25519 SHA256:" + "x" * 43, "ssh-ed25519 SHA256:" + "x" * 43),
    ("  SHA256:" + "x" * 43 + "=  ", "SHA256:" + "x" * 43),
])
def test_a_host_key_is_read_as_ssh_keygen_prints_it(entered: str, stored: str) -> None:
    assert offsite_sftp.check_host_key(entered) == stored


def test_a_new_key_replaces_the_old_one(api: Any, server: Any, sshd: SshServer) -> None:  # noqa: F811
    a = api().register("sftp4@example.com")
    old = _ready(a, sshd)["sftp_public_key"]
    r = a.post("/api/v1/me/offsite/sftp-key")
    assert r.status_code == 200, r.text
    jsonschema.validate(r.json(), SHAPES[("POST", "/api/v1/me/offsite/sftp-key")]["response"])
    new = r.json()["sftp_public_key"]
    assert new != old and new.startswith("ssh-ed25519 ")
    r = a.post("/api/v1/me/offsite/test")  # the server still lists the old key only
    assert r.status_code == 400 and r.json()["error"]["code"] == "access_denied"
    sshd.keys.write_text(new + "\n")
    assert a.post("/api/v1/me/offsite/test").status_code == 200


def test_another_server_forgets_the_trusted_host_key(api: Any, server: Any, sshd: SshServer) -> None:  # noqa: F811
    a = api().register("sftp5@example.com")
    assert _ready(a, sshd)["enabled"] is True
    key = a.get("/api/v1/me/offsite").json()["sftp_public_key"]
    r = a.patch("/api/v1/me/offsite", json={"sftp_port": sshd.port + 1})
    assert r.status_code == 200 and r.json()["sftp_host_key"] is None and r.json()["enabled"] is False
    assert r.json()["sftp_public_key"] == key  # the account's own key stays
    r = a.patch("/api/v1/me/offsite", json={"sftp_port": sshd.port, "enabled": True})
    assert r.status_code == 400 and r.json()["error"]["code"] == "missing_field"  # back, but not trusted again
    assert a.patch("/api/v1/me/offsite", json={"sftp_port": sshd.port}).json()["sftp_host_key"] is None
    assert a.post("/api/v1/me/offsite/test").json()["host_key_new"] is True
    # switching the kind back to the bucket switches the copies off until the bucket is switched on
    assert a.patch("/api/v1/me/offsite", json={"enabled": True}).json()["enabled"] is True
    r = a.patch("/api/v1/me/offsite", json={"kind": "s3"})
    assert r.status_code == 200 and r.json()["enabled"] is False and r.json()["kind"] == "s3"


def test_bad_sftp_settings_get_a_precise_400_and_store_nothing(api: Any, server: Any,
                                                               sshd: SshServer) -> None:  # noqa: F811
    a = api().register("sftp6@example.com")
    before = a.get("/api/v1/me/offsite").json()
    for body, code, says in [
        ({"kind": "ftp"}, "invalid_field", "'kind'"),
        ({"kind": "sftp", "sftp_host": "sftp://nas.example.net"}, "invalid_field", "host name"),
        ({"kind": "sftp", "sftp_host": "me@nas.example.net"}, "invalid_field", "host name"),
        ({"kind": "sftp", "sftp_host": "nas.example.net:22"}, "invalid_field", "port"),
        ({"kind": "sftp", "sftp_host": "10.1.2.3"}, "invalid_host", "not a public address"),
        ({"kind": "sftp", "sftp_host": "127.0.0.1", "sftp_port": 0}, "invalid_field", "65535"),
        ({"kind": "sftp", "sftp_host": "127.0.0.1", "sftp_port": "22"}, "invalid_field", "sftp_port"),
        ({"kind": "sftp", "sftp_user": "two words"}, "invalid_field", "user name"),
        ({"kind": "sftp", "sftp_user": "-oProxyCommand=x"}, "invalid_field", "user name"),
        ({"kind": "sftp", "sftp_host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"}, "invalid_field", "fingerprint"),
        ({"kind": "sftp", "prefix": "../etc"}, "invalid_field", "prefix"),
    ]:
        r = a.patch("/api/v1/me/offsite", json=body)
        assert r.status_code == 400 and r.json()["error"]["code"] == code and says in r.json()["error"]["message"], (body, r.text)
    after = a.get("/api/v1/me/offsite").json()
    assert after == before and after["kind"] == "s3" and after["sftp_public_key"] is None  # no key made either
    assert a.post("/api/v1/me/offsite/test").status_code == 409  # nothing configured: nothing to test


def test_a_folder_the_user_may_not_write_is_told(api: Any, server: Any, sshd: SshServer) -> None:  # noqa: F811
    a = api().register("sftp7@example.com")
    sshd.authorize(_server_on(a, sshd)["sftp_public_key"])
    (sshd.root / "cams").write_text("a file where the folder goes")
    r = a.post("/api/v1/me/offsite/test")
    assert r.status_code == 400 and r.json()["error"]["code"] == "bucket_error", r.text
    assert "a file where the folder cams goes" in r.json()["error"]["message"]
    sshd.stop()  # nothing listens there any more
    r = a.post("/api/v1/me/offsite/test")
    assert r.status_code == 400 and r.json()["error"]["code"] == "cannot_connect", r.text


def test_the_private_key_is_never_shown_exported_or_logged(api: Any, server: Any, sshd: SshServer,  # noqa: F811
                                                           clip: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    a = api().register("sftp8@example.com")
    _ready(a, sshd)
    with server.core.db.session() as s:
        acc = s.get(Account, a.id)
        assert acc is not None and acc.offsite_sftp_key_enc
        private = offsite_sftp.notify.open_account_secret(server.core, acc, "sftp")
    assert "OPENSSH PRIVATE KEY" in private and private not in acc.offsite_sftp_key_enc
    body = private.split("\n")[2]  # a line of the key itself
    a.upload_analysed(a.upload_credentials(a.camera("Gate")["id"]), clip)
    wait_outbox_state(server.core, a.id, "offsite", "sent")
    for r in (a.get("/api/v1/me/offsite"), a.get("/api/v1/me"), a.get("/storage"), a.post("/api/v1/me/offsite/test")):
        assert r.status_code == 200 and body not in r.text and "PRIVATE KEY" not in r.text, r.text
    export = a.get("/api/v1/me/export")
    archive = zipfile.ZipFile(io.BytesIO(export.content))
    profile = json.loads(archive.read("account.json"))["profile"][0]
    assert profile["offsite_sftp_host"] == "127.0.0.1" and profile["offsite_sftp_public_key"]
    assert "offsite_sftp_key_enc" not in profile
    for name in archive.namelist():
        data = archive.read(name)
        assert body.encode() not in data and acc.offsite_sftp_key_enc.encode() not in data, name
    assert "copied off-site" in caplog.text and body not in caplog.text

    # key rotation re-encrypts it and the copies go on
    old = server.core.secret_box
    new_key = crypto.decode_key(crypto.generate_key())
    rotating = crypto.SecretBox("k9", {"k9": new_key})
    rotating._keys.update(old._keys)
    crypto.rotate_stored_secrets(server.core.db, rotating)
    server.core.secret_box = crypto.SecretBox("k9", {"k9": new_key})
    try:
        with server.core.db.session() as s:
            acc = s.get(Account, a.id)
            assert acc is not None and acc.offsite_sftp_key_enc.startswith("k9$")
        assert a.post("/api/v1/me/offsite/test").status_code == 200
    finally:
        server.core.secret_box = old


def test_clips_stored_before_are_copied_once(api: Any, server: Any, sshd: SshServer, clip: Path,  # noqa: F811
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server.core.settings.offsite, "backfill_spacing_seconds", 0.05)
    a = api().register("sftp9@example.com")
    creds = a.upload_credentials(a.camera("Porch")["id"])
    old = [a.upload_analysed(creds, clip) for _ in range(2)]  # before the copies were on
    _ready(a, sshd)
    # what an interrupted earlier copy of the first clip left: half a part file, and a video cut short (a copy
    # made by hand, say) without its sidecar: neither counts as a copy
    first = sshd.root / _expected_path(old[0], "Porch")
    first.parent.mkdir(parents=True)
    first.with_name(f".{first.name}.part").write_bytes(clip.read_bytes()[:1000])
    first.write_bytes(clip.read_bytes()[:5000])
    r = a.post("/api/v1/me/offsite/backfill")
    assert r.status_code == 200 and r.json()["queued"] == 2, r.text
    _wait(lambda: all(row.state == "sent" for row in outbox_rows(server.core, a.id, "offsite")),
          "the copies did not arrive")
    assert [row.state for row in outbox_rows(server.core, a.id, "offsite")] == ["sent", "sent"]
    expected = sorted(p for ev in old for p in (_expected_path(ev, "Porch"),
                                                _expected_path(ev, "Porch")[:-4] + ".json"))
    assert sshd.files() == expected  # the part file became the copy
    assert first.read_bytes() == clip.read_bytes()
    assert a.post("/api/v1/me/offsite/backfill").json()["queued"] == 0


def test_masks_applied_later_replace_the_copy_on_the_server(api: Any, server: Any, sshd: SshServer,  # noqa: F811
                                                            garden_clip: Path) -> None:  # noqa: F811
    a = api().register("sftp10@example.com")
    _ready(a, sshd)
    cam = a.camera("Street side")
    ev = a.upload_analysed(a.upload_credentials(cam["id"]), garden_clip)
    assert ev["verdict"] == "alarm", ev
    wait_outbox_state(server.core, a.id, "offsite", "sent")
    video = _expected_path(ev, "Street side")
    inside, _ = _masked_areas(sshd.read(video), MASKS)
    assert inside > 140  # the neighbour's garden is in the copy

    _set_masks(a, cam, MASKS)  # the neighbour complains: masks set and applied to the stored clips
    _wait(lambda: [(r.payload.get("masked"), r.state) for r in outbox_rows(server.core, a.id, "offsite")][-1]
          == (True, "sent"), "the masked copy did not arrive")
    path, _ = stored_clip(server.core, ev["id"])
    copy = sshd.read(video)
    assert copy == path.read_bytes() != garden_clip.read_bytes()  # the masked clip, in the same place
    inside, outside = _masked_areas(copy, MASKS)
    assert inside <= 12 and outside > 140
    assert sshd.files() == sorted([video, video[:-4] + ".json"])  # replaced, no part file left


def test_the_owner_is_told_once_when_the_copies_do_not_arrive(api: Any, server: Any, sshd: SshServer,  # noqa: F811
                                                              clip: Path) -> None:
    from datetime import timedelta

    from alarmcloud import offsite
    from alarmcloud.models import Outbox, utcnow

    core = server.core
    a = api().register("sftp11@example.com")
    assert a.patch("/api/v1/me", json={"notify_email": True}).status_code == 200
    hook = a.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["offsite.failing"]})
    assert hook.status_code == 201, hook.text  # a home automation that wants to know too
    _ready(a, sshd)
    creds = a.upload_credentials(a.camera("Gate")["id"])
    a.upload_analysed(creds, clip)
    wait_outbox_state(core, a.id, "offsite", "sent")
    sshd.stop()  # the NAS is switched off
    a.upload_analysed(creds, clip)
    _wait(lambda: outbox_rows(core, a.id, "offsite")[-1].attempts >= offsite.FAILING_ATTEMPTS,
          "the copy was not tried three times")
    assert offsite.check_failing(core) == []  # a fresh failure is retried without a word

    def an_hour_ago() -> None:  # the copy failing since, and the last copy before that
        with core.db.session() as s:
            row = s.get(Outbox, outbox_rows(core, a.id, "offsite")[-1].id)
            acc = s.get(Account, a.id)
            assert row is not None and acc is not None
            row.created_at = utcnow() - timedelta(hours=2)
            acc.offsite_last_copy_at = utcnow() - timedelta(hours=3)
            s.add_all([row, acc])
            s.commit()

    an_hour_ago()
    mails = len(outbox_rows(core, a.id, "email"))
    assert offsite.check_failing(core) == [a.id]
    mail = outbox_rows(core, a.id, "email")[-1]
    assert len(outbox_rows(core, a.id, "email")) == mails + 1
    assert mail.payload["subject"] == "Off-site copies are not arriving"
    assert f"cannot connect to 127.0.0.1:{sshd.port}" in mail.payload["text"]
    assert "/storage#offsite" in mail.payload["text"] and "waiting" in mail.payload["text"]
    _wait(lambda: bool(outbox_rows(core, a.id, "webhook")), "no webhook delivery was queued")
    (delivery,) = outbox_rows(core, a.id, "webhook")
    assert delivery.payload["type"] == "offsite.failing" and delivery.payload["kind"] == "sftp"
    assert f"cannot connect to 127.0.0.1:{sshd.port}" in delivery.payload["last_error"]
    assert delivery.payload["waiting"] + delivery.payload["given_up"] == 1 and delivery.payload["last_copy_at"]
    assert offsite.check_failing(core) == []  # once per outage
    # the operator sees whose copies do not arrive (where to, not the address)
    operator = api().register("op-sftp@example.com")
    set_account(core, operator.id, role="operator")
    users = operator.get("/operator").text.split("<h2>Users</h2>", 1)[1]
    row = next(r for r in users.split("<tr>") if "sftp11@example.com" in r)
    cell = row.split("<td data-offsite>", 1)[1].split("</td>", 1)[0]
    assert cell.startswith("SFTP server: ") and ("1 waiting" in cell or "1 given up" in cell), cell
    assert "last copy" in cell and "127.0.0.1" not in row
    assert offsite.check_failing(core, utcnow() + timedelta(days=3)) == []  # also when it lasts (no copy came)

    # a copy arrives again, then the next outage: told again, but not within a day of the last notice
    with core.db.session() as s:
        acc = s.get(Account, a.id)
        assert acc is not None
        acc.offsite_last_copy_at = utcnow()
        s.add(acc)
        s.commit()
    an_hour_ago()
    with core.db.session() as s:
        acc = s.get(Account, a.id)
        assert acc is not None
        acc.offsite_last_copy_at = utcnow() - timedelta(hours=1, minutes=30)  # after the notice, before now - 1 h
        acc.offsite_failing_notified_at = utcnow() - timedelta(hours=2)
        s.add(acc)
        s.commit()
    assert offsite.check_failing(core) == []  # the last notice is less than a day old
    assert offsite.check_failing(core, utcnow() + timedelta(days=1)) == [a.id]
    # switched off: nothing to tell
    assert a.patch("/api/v1/me/offsite", json={"enabled": False}).status_code == 200
    assert offsite.check_failing(core, utcnow() + timedelta(days=5)) == []


def test_a_user_that_may_not_delete_is_the_safer_one_and_copies_still_replace(
        api: Any, server: Any, sshd: SshServer, clip: Path) -> None:  # noqa: F811
    sshd.stop()
    sshd.deny = "remove"  # the server refuses every delete of this user (a thief with the key cannot either)
    sshd.start()
    a = api().register("sftp12@example.com")
    sshd.authorize(_server_on(a, sshd)["sftp_public_key"])
    r = a.post("/api/v1/me/offsite/test")
    assert r.status_code == 200 and r.json()["deleted"] is False, r.text
    assert "may not delete it" in r.json()["message"]
    (left,) = sshd.files()  # the test file stays, named in the message
    assert left.startswith(f"{FOLDER}/.alarmcloud-test-") and left in r.json()["message"]
    assert a.patch("/api/v1/me/offsite", json={"enabled": True}).json()["enabled"] is True
    ev = a.upload_analysed(a.upload_credentials(a.camera("Gate")["id"]), clip)
    wait_outbox_state(server.core, a.id, "offsite", "sent")
    video = _expected_path(ev, "Gate")
    assert sshd.read(video) == clip.read_bytes()
    # a copy made again (a backfill after a change of folder and back, masks applied) replaces the file by renaming
    # its part file over it: no delete needed
    (sshd.root / video).write_bytes(b"an older copy")
    forget_offsite_copy(server.core, ev["id"])
    assert a.post("/api/v1/me/offsite/backfill").json()["queued"] == 1
    _wait(lambda: outbox_rows(server.core, a.id, "offsite")[-1].state == "sent", "the copy was not made again")
    assert sshd.read(video) == clip.read_bytes()
    assert not [f for f in sshd.files() if f.endswith(".part")]
