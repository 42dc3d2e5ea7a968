"""Off-site copies to the owner's WebDAV folder (Nextcloud, ownCloud, a NAS): a real WebDAV server (WsgiDAV) on
loopback stands in for the owner's cloud. Clips go through the real upload API and the detectors; copies leave
through the durable outbox."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from alarmcloud.models import Account
from alarmcloud.openapi import SHAPES
from alarmcloud.testing import test_settings

from tests.conftest import forget_offsite_copy, outbox_rows, set_account, wait_outbox_state  # type: ignore[import-not-found]
from tests.s3server import bucket_on_loopback  # type: ignore[import-not-found]
from tests.webdavserver import PASSWORD, USER, DavServer, webdav  # type: ignore[import-not-found]  # noqa: F401

FOLDER = "alarmcloud/home"


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    return bucket_on_loopback(test_settings(tmp_path / "data", camera_networks=["127.0.0.0/8"]))


def _folder_on(a: Any, dav: DavServer, **extra: Any) -> dict[str, Any]:
    r = a.patch("/api/v1/me/offsite", json={"kind": "webdav", "webdav_url": dav.url, "webdav_user": USER,
                                            "webdav_password": PASSWORD, "prefix": FOLDER, "enabled": True, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def _expected_path(event: dict[str, Any], camera: str) -> str:
    t = event["started_at"]
    stamp = t[:19].replace("-", "").replace(":", "") + "Z"
    return f"{FOLDER}/{camera}/{t[:10].replace('-', '/')}/{stamp}-{event['id']}.mp4"


def test_an_alarm_clip_lands_in_the_owners_webdav_folder(api: Any, server: Any, webdav: DavServer,  # noqa: F811
                                                         clip: Path) -> None:
    a = api().register("dav1@example.com")
    state = _folder_on(a, webdav)
    assert state["kind"] == "webdav" and state["enabled"] is True and state["has_webdav_password"] is True
    assert state["webdav_url"] == webdav.url and state["webdav_user"] == USER and "webdav_password" not in state
    jsonschema.validate(state, SHAPES[("PATCH", "/api/v1/me/offsite")]["response"])
    r = a.post("/api/v1/me/offsite/test")
    assert r.status_code == 200 and r.json()["deleted"] is True, r.text
    jsonschema.validate(r.json(), SHAPES[("POST", "/api/v1/me/offsite/test")]["response"])
    assert webdav.files() == [] and (webdav.root / FOLDER).is_dir()  # MKCOL made the folders; the test file went

    creds = a.upload_credentials(a.camera("Front door / porch")["id"])
    ev = a.upload_analysed(creds, clip)
    assert ev["verdict"] == "alarm"
    wait_outbox_state(server.core, a.id, "offsite", "sent")
    video = _expected_path(ev, "Front door _ porch")
    assert webdav.files() == sorted([video, video[:-4] + ".json"])  # moved into place: no part file left
    assert webdav.read(video) == clip.read_bytes()
    side = json.loads(webdav.read(video[:-4] + ".json"))
    assert side["clip_id"] == ev["id"] and side["verdict"] == "alarm" and side["size_bytes"] == len(clip.read_bytes())

    # copied again (a backfill after the folder was copied elsewhere): the older file is replaced by the MOVE
    (webdav.root / video).write_bytes(b"an older copy")
    forget_offsite_copy(server.core, ev["id"])
    assert a.post("/api/v1/me/offsite/backfill").json()["queued"] == 1
    wait_outbox_state(server.core, a.id, "offsite", "sent")
    assert webdav.read(video) == clip.read_bytes() and len(webdav.files()) == 2
    assert a.post("/api/v1/me/offsite/backfill").json()["queued"] == 0
    op = api().register("dav1-operator@example.com")  # the operator sees where the copies go, not the address
    set_account(server.core, op.id, role="operator")
    users = op.get("/operator").text.split("<h2>Users</h2>", 1)[1]
    row = next(r for r in users.split("<tr>") if "dav1@example.com" in r)
    assert row.split("<td data-offsite>", 1)[1].startswith("WebDAV folder") and webdav.url not in row


def test_a_wrong_password_and_a_wrong_folder_are_told(api: Any, server: Any, webdav: DavServer) -> None:  # noqa: F811
    a = api().register("dav2@example.com")
    _folder_on(a, webdav, webdav_password="not-the-password", enabled=False)
    r = a.post("/api/v1/me/offsite/test")
    assert r.status_code == 400 and r.json()["error"]["code"] == "access_denied", r.text
    assert "app password" in r.json()["error"]["message"]
    base = webdav.url.rsplit("/anna/", 1)[0]
    _folder_on(a, webdav, webdav_url=base + "/nobody/", enabled=False)  # a new URL on the same server
    r = a.post("/api/v1/me/offsite/test")
    assert r.status_code == 400 and r.json()["error"]["code"] == "no_such_folder", r.text
    assert webdav.files() == []
    webdav.stop()
    _folder_on(a, webdav, enabled=False)
    r = a.post("/api/v1/me/offsite/test")
    assert r.status_code == 400 and r.json()["error"]["code"] == "cannot_connect", r.text


def test_bad_webdav_settings_get_a_precise_400_and_store_nothing(api: Any, server: Any) -> None:
    a = api().register("dav3@example.com")
    before = a.get("/api/v1/me/offsite").json()
    for body, code, says in [
        ({"kind": "webdav", "webdav_url": "ftp://cloud.example.net/dav/"}, "invalid_url", "http"),
        ({"kind": "webdav", "webdav_url": "https://anna:pw@127.0.0.1/dav/"}, "invalid_url", "user names"),
        ({"kind": "webdav", "webdav_url": "https://127.0.0.1/dav/?x=1"}, "invalid_url", "query"),
        ({"kind": "webdav", "webdav_url": "https://10.1.2.3/dav/"}, "invalid_url", "not a public address"),
        ({"kind": "webdav", "webdav_user": "two words"}, "invalid_field", "user name"),
        ({"kind": "webdav", "webdav_password": "with space"}, "invalid_field", "password"),
    ]:
        r = a.patch("/api/v1/me/offsite", json=body)
        assert r.status_code == 400 and r.json()["error"]["code"] == code, (body, r.text)
        assert says in r.json()["error"]["message"], (body, r.text)
    assert a.get("/api/v1/me/offsite").json() == before
    r = a.patch("/api/v1/me/offsite", json={"kind": "webdav", "enabled": True})
    assert r.status_code == 400 and r.json()["error"]["code"] == "missing_field"
    assert "'webdav_url', 'webdav_user', 'webdav_password'" in r.json()["error"]["message"]


def test_plain_http_needs_the_operators_leave(api: Any, server: Any, webdav: DavServer) -> None:  # noqa: F811
    a = api().register("dav4@example.com")
    server.core.settings.offsite.allow_http = False
    try:
        r = a.patch("/api/v1/me/offsite", json={"kind": "webdav", "webdav_url": webdav.url})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_url"
        assert "https://" in r.json()["error"]["message"]
    finally:
        server.core.settings.offsite.allow_http = True


def test_the_password_is_never_shown_exported_or_logged(api: Any, server: Any, webdav: DavServer,  # noqa: F811
                                                        clip: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    a = api().register("dav5@example.com")
    _folder_on(a, webdav)
    a.upload_analysed(a.upload_credentials(a.camera("Gate")["id"]), clip)
    wait_outbox_state(server.core, a.id, "offsite", "sent")
    for r in (a.get("/api/v1/me/offsite"), a.get("/api/v1/me"), a.get("/storage"), a.post("/api/v1/me/offsite/test")):
        assert r.status_code == 200 and PASSWORD not in r.text, r.text
    with server.core.db.session() as s:
        acc = s.get(Account, a.id)
        assert acc is not None and acc.offsite_webdav_password_enc
        assert PASSWORD not in acc.offsite_webdav_password_enc
    archive = zipfile.ZipFile(io.BytesIO(a.get("/api/v1/me/export").content))
    profile = json.loads(archive.read("account.json"))["profile"][0]
    assert profile["offsite_webdav_url"] == webdav.url and "offsite_webdav_password_enc" not in profile
    for name in archive.namelist():
        data = archive.read(name)
        assert PASSWORD.encode() not in data and acc.offsite_webdav_password_enc.encode() not in data, name
    assert "copied off-site" in caplog.text and PASSWORD not in caplog.text
    # another server: the password is dropped (it goes only where it was given for) and the copies stop
    r = a.patch("/api/v1/me/offsite", json={"webdav_url": "http://127.0.0.2:9/remote.php/dav/files/anna/"})
    assert r.status_code == 200 and r.json()["has_webdav_password"] is False and r.json()["enabled"] is False
    assert [row.state for row in outbox_rows(server.core, a.id, "offsite")] == ["sent"]
