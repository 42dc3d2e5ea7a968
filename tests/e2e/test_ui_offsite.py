"""The storage page's off-site copies card in a real browser: enter the bucket, test it (the bucket's own error,
then success), see the copies' status, copy the clips stored before; the secret key is never shown again. An SFTP
server instead: the key to add on the server, the first test trusting the server's host key, the copies on. A
WebDAV folder (Nextcloud): URL, user and app password, tested, the password never shown again."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import AUDIT_JS, OWNER, Site, login, opened_page, owner_api, watch  # noqa: E402

from tests.agekeys import age_key  # type: ignore[import-not-found]  # noqa: E402, F401
from tests.sftpserver import SshServer, sshd  # type: ignore[import-not-found]  # noqa: E402, F401
from tests.webdavserver import PASSWORD, USER, DavServer, webdav  # type: ignore[import-not-found]  # noqa: E402, F401

pytestmark = pytest.mark.browser
SECRET = "ui-secret-access-key-4711"


def test_set_up_test_and_watch_the_copies(chromium: Any, site: Site) -> None:
    from alarmcloud.models import Account, Outbox, utcnow
    from sqlmodel import select

    from tests.s3server import ACCESS_KEY, MotoS3  # type: ignore[import-not-found]

    s3 = MotoS3()  # the owner's bucket
    bucket = s3.new_bucket()
    core: Any = site.core
    core.settings.offsite.allow_http = True  # the stand-in bucket speaks plain http on loopback
    try:
        with opened_page(chromium, 1280, 1400) as page:
            outside, errors = watch(page, site.url)
            login(page, site.url, OWNER)
            page.goto(site.url + "/storage")
            card = page.locator("#offsite")
            card.get_by_text("does not delete its copy").wait_for()  # the copies are the owner's
            card.get_by_label("Copy new clips to my storage").check()
            assert card.get_by_label("What to copy").input_value() == "alarms"  # the default
            card.get_by_label("Endpoint").fill(s3.endpoint)
            card.get_by_label("Region").fill("us-east-1")
            card.locator("input[name=bucket]").fill("not-there-bucket")
            card.locator("input[name=prefix]").fill("home")
            card.get_by_label("Access key id").fill(ACCESS_KEY)
            card.get_by_label("Secret access key").fill(SECRET)
            card.get_by_role("button", name="Test the connection").click()
            result = card.get_by_role("status")
            result.filter(has_text="'not-there-bucket' does not exist").wait_for()
            assert card.get_by_label("Secret access key").input_value() == ""  # saved, never shown again

            card.locator("input[name=bucket]").fill(bucket)
            card.get_by_role("button", name="Test the connection").click()
            result.filter(has_text="The bucket works").wait_for()
            card.get_by_role("button", name="Apply", exact=True).click()
            result.filter(has_text="new clips are copied").wait_for()

            with core.db.session() as s:  # a clip of the owner's was judged an alarm: its copy is queued
                owner = s.exec(select(Account).where(Account.email == OWNER)).one()
                s.add(Outbox(account_id=owner.id, kind="offsite", target=f"offsite:{owner.id}",
                             payload={"clip_id": site.event_id}))
                s.commit()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any(k.endswith(".json") for k in s3.keys(bucket)):
                time.sleep(0.1)
            keys = s3.keys(bucket)
            assert len(keys) == 2 and all(k.startswith("home/") and site.event_id in k for k in keys), keys

            page.reload()
            card = page.locator("#offsite")
            card.locator("[data-offsite-status]").filter(has_text="Last copy:").wait_for()
            assert not card.get_by_role("alert").is_visible()
            assert card.get_by_label("Copy new clips to my storage").is_checked()
            assert card.locator("input[name=bucket]").input_value() == bucket
            card.get_by_label("What to copy").select_option("all")
            card.get_by_role("button", name="Apply", exact=True).click()
            result.filter(has_text="new clips are copied").wait_for()
            assert "a key is saved" in (card.get_by_label("Secret access key").get_attribute("placeholder") or "")
            assert SECRET not in page.content()
            assert not card.get_by_role("button", name="Retry given-up copies").is_visible()

            with core.db.session() as s:  # a copy given up after a long outage
                s.add(Outbox(account_id=owner.id, kind="offsite", target=f"offsite:{owner.id}", state="dead",
                             attempts=24, last_error="cannot connect to the bucket", last_attempt_at=utcnow(),
                             payload={"clip_id": site.event_id}))
                s.commit()
            page.reload()
            card = page.locator("#offsite")
            card.get_by_role("alert").filter(has_text="cannot connect to the bucket").wait_for()
            card.locator("[data-offsite-status]").filter(has_text="1 copy was given up").wait_for()
            card.get_by_role("button", name="Retry given-up copies").click()
            result.filter(has_text="queued again").wait_for()
            assert not card.get_by_role("button", name="Retry given-up copies").is_visible()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and owner_api(site).get("/api/v1/me/offsite").json()["last_error"]:
                time.sleep(0.1)
            assert owner_api(site).get("/api/v1/me/offsite").json()["copies"][0]["state"] == "sent"

            def copy_rows() -> int:
                with core.db.session() as s:
                    return len(s.exec(select(Outbox).where(Outbox.account_id == owner.id,
                                                           Outbox.kind == "offsite")).all())

            before = copy_rows()  # the clips stored before the copies were switched on
            card.get_by_role("button", name="Copy existing clips").click()
            queued = result.filter(has_text="queued for copying")
            queued.wait_for()
            n = copy_rows() - before
            assert n > 0 and queued.inner_text().startswith(f"{n} stored clip"), (n, queued.inner_text())
            card.locator("[data-offsite-status]").filter(has_text="waiting").wait_for()  # the count to watch
            card.get_by_role("button", name="Copy existing clips").click()
            result.filter(has_text="nothing new to copy").wait_for()
            assert copy_rows() - before == n
            assert page.evaluate(AUDIT_JS) == []  # labels, contrast, sizes (tests/e2e/audit.js)
            assert outside == [] and errors == []
        state = owner_api(site).get("/api/v1/me/offsite").json()
        assert state["enabled"] is True and state["bucket"] == bucket and state["prefix"] == "home"
        assert state["scope"] == "all"
        assert state["has_secret_key"] is True and SECRET not in str(state)
    finally:
        core.settings.offsite.allow_http = False
        s3.stop()


@contextmanager
def _storage_card(chromium: Any, site: Site) -> Iterator[tuple[Any, Any, list[str], list[str]]]:
    """The owner's storage page in a tall window: the page, the off-site card, requests that left the site and
    script errors (``watch``)."""
    with opened_page(chromium, 1280, 1600) as page:
        outside, errors = watch(page, site.url)
        login(page, site.url, OWNER)
        page.goto(site.url + "/storage")
        yield page, page.locator("#offsite"), outside, errors


def _reset_offsite(site: Site) -> None:
    """The copies back to off (to a bucket, every copy kept, none encrypted) and plain http refused again, for the
    tests that follow on the same site."""
    owner_api(site).patch("/api/v1/me/offsite", json={"enabled": False, "kind": "s3", "keep_days": None,
                                                      "encrypt_to": None})
    site.core.settings.offsite.allow_http = False  # type: ignore[attr-defined]


def test_an_sftp_server_with_this_servers_key(chromium: Any, site: Site, sshd: SshServer) -> None:  # noqa: F811
    from alarmcloud.models import Account, Outbox
    from sqlmodel import select

    core: Any = site.core
    owner_api(site).patch("/api/v1/me/offsite", json={"enabled": False, "kind": "s3"})
    try:
        with _storage_card(chromium, site) as (page, card, outside, errors):
            assert not card.locator("input[name=sftp_host]").is_visible()  # the bucket's fields first
            card.get_by_label("SFTP server (a NAS, a storage box)").check()
            assert not card.get_by_label("Endpoint").is_visible()
            card.locator("input[name=sftp_host]").fill("127.0.0.1")
            card.get_by_label("Port").fill(str(sshd.port))
            card.locator("input[name=sftp_user]").fill(sshd.user)
            card.locator("input[name=prefix]").fill("nas/cams")
            card.get_by_label("Copy new clips to my storage").check()
            card.get_by_role("button", name="Apply", exact=True).click()
            result = card.get_by_role("status")
            result.filter(has_text="test the connection first").wait_for()  # the host key is not trusted yet

            card.get_by_role("button", name="Test the connection").click()
            result.filter(has_text="refused this server's key").wait_for()  # not on the server yet
            key = card.get_by_label("This server's key").input_value()
            assert key.startswith("ssh-ed25519 ") and key == owner_api(site).get(
                "/api/v1/me/offsite").json()["sftp_public_key"]
            sshd.authorize(key)  # what the owner does on their server

            card.get_by_role("button", name="Test the connection").click()
            result.filter(has_text="New clips are copied").wait_for()
            fingerprint = next(w for w in sshd.fingerprint().split() if w.startswith("SHA256:"))
            assert fingerprint in result.inner_text()  # to compare with the server's own
            assert card.get_by_label("Trusted host key").input_value() == f"ssh-ed25519 {fingerprint}"
            assert card.get_by_label("Copy new clips to my storage").is_checked()
            state = owner_api(site).get("/api/v1/me/offsite").json()
            assert state["enabled"] is True and state["kind"] == "sftp"
            assert state["sftp_host_key"] == f"ssh-ed25519 {fingerprint}"

            with core.db.session() as s:  # a clip of the owner's was judged an alarm: its copy is queued
                owner = s.exec(select(Account).where(Account.email == OWNER)).one()
                s.add(Outbox(account_id=owner.id, kind="offsite", target=f"offsite:{owner.id}",
                             payload={"clip_id": site.event_id}))
                s.commit()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any(f.endswith(f"{site.event_id}.json") for f in sshd.files()):
                time.sleep(0.1)
            files = sshd.files()  # (copies of stored clips queued before, if any, go to the server now too)
            mine = [f for f in files if site.event_id in f]
            assert len(mine) == 2 and all(f.startswith("nas/cams/") for f in files), files

            page.reload()
            card = page.locator("#offsite")
            card.locator("[data-offsite-status]").filter(has_text="Last copy:").wait_for()
            assert card.get_by_label("SFTP server (a NAS, a storage box)").is_checked()
            assert card.get_by_label("This server's key").input_value() == key
            page.once("dialog", lambda d: d.accept())
            card.get_by_role("button", name="Make a new key").click()
            result.filter(has_text="A new key is made").wait_for()
            assert card.get_by_label("This server's key").input_value() not in ("", key)
            assert page.evaluate(AUDIT_JS) == []
            assert outside == [] and errors == []
    finally:
        owner_api(site).patch("/api/v1/me/offsite", json={"enabled": False, "kind": "s3"})


def test_a_webdav_folder_with_an_app_password(chromium: Any, site: Site, webdav: DavServer) -> None:  # noqa: F811
    core: Any = site.core
    owner_api(site).patch("/api/v1/me/offsite", json={"enabled": False, "kind": "s3"})
    core.settings.offsite.allow_http = True  # the stand-in server speaks plain http on loopback
    try:
        with _storage_card(chromium, site) as (page, card, outside, errors):
            card.get_by_label("WebDAV folder (Nextcloud, ownCloud)").check()
            assert not card.get_by_label("Endpoint").is_visible()
            card.get_by_label("WebDAV URL").fill(webdav.url)
            card.get_by_label("WebDAV user name").fill(USER)
            card.get_by_label("WebDAV password").fill("a-wrong-one")
            card.locator("input[name=prefix]").fill("cams")
            card.get_by_label("Copy new clips to my storage").check()
            card.get_by_role("button", name="Test the connection").click()
            result = card.get_by_role("status")
            result.filter(has_text="refused the user name or password").wait_for()
            assert card.get_by_label("WebDAV password").input_value() == ""  # saved, never shown again
            card.get_by_label("WebDAV password").fill(PASSWORD)
            card.get_by_role("button", name="Test the connection").click()
            result.filter(has_text="The WebDAV folder works").wait_for()
            assert "a password is saved" in (card.get_by_label("WebDAV password").get_attribute("placeholder") or "")
            assert (webdav.root / "cams").is_dir() and webdav.files() == []
            state = owner_api(site).get("/api/v1/me/offsite").json()
            assert state["kind"] == "webdav" and state["enabled"] is True and state["webdav_user"] == USER
            assert PASSWORD not in page.content()
            page.reload()
            card = page.locator("#offsite")
            assert card.get_by_label("WebDAV folder (Nextcloud, ownCloud)").is_checked()
            assert card.get_by_label("WebDAV URL").input_value() == webdav.url
            assert page.evaluate(AUDIT_JS) == []
            assert outside == [] and errors == []
    finally:
        _reset_offsite(site)


def _webdav_on(site: Site, dav: DavServer, folder: str) -> Any:
    """The owner's copies on, into ``folder`` of the stand-in WebDAV server (plain http on loopback); the core."""
    core: Any = site.core
    core.settings.offsite.allow_http = True
    r = owner_api(site).patch("/api/v1/me/offsite", json={
        "kind": "webdav", "webdav_url": dav.url, "webdav_user": USER, "webdav_password": PASSWORD,
        "prefix": folder, "enabled": True, "keep_days": None, "encrypt_to": None})
    assert r.status_code == 200, r.text
    return core


def test_old_copies_are_deleted_after_the_days_kept(chromium: Any, site: Site, webdav: DavServer) -> None:  # noqa: F811
    _webdav_on(site, webdav, "cams")
    old = webdav.root / "cams" / "Porch" / "2020" / "03" / "01"
    old.mkdir(parents=True)
    for name in ("20200301T080000Z-0123456789abcdef0123456789abcdef.mp4",
                 "20200301T080000Z-0123456789abcdef0123456789abcdef.json"):
        (old / name).write_bytes(b"x" * 2000)
    (old / "notes.txt").write_text("the owner's own file")
    try:
        with _storage_card(chromium, site) as (page, card, outside, errors):
            assert not card.get_by_role("button", name="Delete old copies now").is_visible()  # no days set yet
            card.locator("input[name=keep_days]").fill("30")
            card.get_by_role("button", name="Apply", exact=True).click()
            result = card.get_by_role("status")
            result.filter(has_text="new clips are copied").wait_for()
            card.locator("[data-offsite-prune-status]").filter(
                has_text="older than 30 days are deleted once a day").wait_for()
            asked: list[str] = []
            page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
            card.get_by_role("button", name="Delete old copies now").click()
            result.filter(has_text="Nothing was deleted").wait_for()
            assert "the copies of 1 clip (2 files, 3.9 KB) from before" in asked[0]
            assert len(list(old.iterdir())) == 3
            page.once("dialog", lambda d: d.accept())
            card.get_by_role("button", name="Delete old copies now").click()
            result.filter(has_text="Deleted the copies of 1 clip from before").wait_for()
            assert [p.name for p in old.iterdir()] == ["notes.txt"]  # the owner's own file stays
            card.locator("[data-offsite-prune-status]").filter(has_text="2 files deleted").wait_for()
            page.reload()
            card = page.locator("#offsite")
            assert card.locator("input[name=keep_days]").input_value() == "30"
            card.locator("[data-offsite-prune-status]").filter(has_text="2 files deleted").wait_for()
            assert page.evaluate(AUDIT_JS) == []
            assert outside == [] and errors == []
    finally:
        _reset_offsite(site)


def test_a_clip_page_says_where_its_copy_stands(chromium: Any, site: Site) -> None:
    from tests.s3server import ACCESS_KEY, MotoS3  # type: ignore[import-not-found]

    s3 = MotoS3()
    bucket = s3.new_bucket()
    core: Any = site.core
    core.settings.offsite.allow_http = True
    r = owner_api(site).patch("/api/v1/me/offsite", json={
        "kind": "s3", "endpoint": s3.endpoint, "region": "us-east-1", "bucket": bucket, "prefix": "clips",
        "access_key_id": ACCESS_KEY, "secret_key": SECRET, "enabled": True})
    assert r.status_code == 200, r.text
    try:
        with opened_page(chromium, 1280, 1400) as page:
            outside, errors = watch(page, site.url)
            login(page, site.url, OWNER)
            page.goto(f"{site.url}/events/{site.event_id}")
            card = page.locator("#offsite-copy")
            card.locator("[data-offsite-state=none]").wait_for()  # not copied (stored before, or not an alarm)
            assert "Not copied to your bucket" in card.inner_text()
            card.get_by_role("button", name="Copy this clip").click()
            deadline = time.monotonic() + 30
            while not page.locator("#offsite-copy [data-offsite-state=copied]").count():
                assert time.monotonic() < deadline, page.locator("#offsite-copy").inner_text()
                time.sleep(0.3)
                page.reload()
            assert f"Copied to your bucket {bucket}" in page.locator("#offsite-copy").inner_text()
            assert not page.locator("#offsite-copy").get_by_role("button").count()
            assert any(site.event_id in k for k in s3.keys(bucket))
            assert page.evaluate(AUDIT_JS) == []
            assert outside == [] and errors == []
    finally:
        _reset_offsite(site)
        s3.stop()


def test_copies_encrypted_to_the_owners_age_key(chromium: Any, site: Site, webdav: DavServer,  # noqa: F811
                                                age_key: Any) -> None:  # noqa: F811
    from alarmcloud.models import Account, Outbox
    from sqlmodel import select

    core = _webdav_on(site, webdav, "sealed")
    secret = next(line for line in age_key.identity.read_text().splitlines() if line.startswith("AGE-SECRET"))
    try:
        with _storage_card(chromium, site) as (page, card, outside, errors):
            field = card.locator("input[name=encrypt_to]")
            field.fill(secret)  # the wrong half: refused, never stored
            card.get_by_role("button", name="Apply", exact=True).click()
            card.get_by_role("status").filter(has_text="stays with you").wait_for()
            assert owner_api(site).get("/api/v1/me/offsite").json()["encrypt_to"] is None
            field.fill(age_key.public)
            card.get_by_role("button", name="Apply", exact=True).click()
            card.get_by_role("status").filter(has_text="new clips are copied").wait_for()
            assert owner_api(site).get("/api/v1/me/offsite").json()["encrypt_to"] == age_key.public
            with core.db.session() as s:
                owner = s.exec(select(Account).where(Account.email == OWNER)).one()
                s.add(Outbox(account_id=owner.id, kind="offsite", target=f"offsite:{owner.id}",
                             payload={"clip_id": site.event_id}))
                s.commit()
            deadline = time.monotonic() + 30
            while len(webdav.files()) < 2:
                assert time.monotonic() < deadline, webdav.files()
                time.sleep(0.1)
            video = next(f for f in webdav.files() if f.endswith(".mp4.age"))
            with core.blobs.open(_blob_key(core, site.event_id)) as stored:
                assert age_key.decrypt(webdav.read(video)) == stored.read()
            page.reload()
            assert page.locator("#offsite input[name=encrypt_to]").input_value() == age_key.public
            assert page.evaluate(AUDIT_JS) == []
            assert outside == [] and errors == []
    finally:
        _reset_offsite(site)


def _blob_key(core: Any, clip_id: str) -> str:
    from alarmcloud.models import Clip

    with core.db.session() as s:
        clip = s.get(Clip, clip_id)
        assert clip is not None
        return clip.blob_key
