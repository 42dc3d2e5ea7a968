"""Old off-site copies deleted after the days the owner keeps (``offsite_prune``), in each of the three kinds of
storage: a real S3 server (moto), a real OpenSSH ``sshd`` and a real WebDAV server (WsgiDAV) on loopback. Clips go
through the real upload API and the detectors; copies leave through the durable outbox."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from alarmcloud import offsite_prune
from alarmcloud.models import Account, Clip, utcnow
from alarmcloud.openapi import SHAPES
from alarmcloud.testing import settings_on

from tests.conftest import outbox_rows, set_account  # type: ignore[import-not-found]
from tests.s3server import ACCESS_KEY, REGION, MotoS3, bucket_on_loopback, s3  # type: ignore[import-not-found]  # noqa: F401
from tests.sftpserver import SshServer, sshd  # type: ignore[import-not-found]  # noqa: F401
from tests.webdavserver import PASSWORD, USER, DavServer, webdav  # type: ignore[import-not-found]  # noqa: F401

FOLDER = "cams/home"
OLD_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """SQLite; a test parametrized with ``settings`` "postgres" runs on PostgreSQL."""
    with settings_on(getattr(request, "param", "sqlite"), tmp_path / "data", camera_networks=["127.0.0.0/8"]) as st:
        yield bucket_on_loopback(st)


@dataclass
class Destination:
    """One kind of the owner's storage: ``settings`` for ``PATCH /me/offsite``, ``put`` a file and list ``files``
    (paths below ``FOLDER``) as the owner sees them there, ``ready`` whatever the owner does on the server."""

    kind: str
    settings: dict[str, Any]
    put: Callable[[str, bytes], None]
    files: Callable[[], list[str]]
    folders: Callable[[], list[str]]
    ready: Callable[[dict[str, Any]], None]
    read: Callable[[str], bytes]


def _on_disk(root: Path) -> tuple[Callable[[str, bytes], None], Callable[[], list[str]], Callable[[], list[str]]]:
    """put, files, folders of a server's disk below ``FOLDER``."""
    base = root / FOLDER

    def put(rel: str, data: bytes) -> None:
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_bytes(data)

    def files() -> list[str]:
        return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()) if base.exists() else []

    def folders() -> list[str]:
        return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_dir()) if base.exists() else []

    return put, files, folders


@pytest.fixture(params=["s3", "sftp", "webdav"])
def dest(request: Any) -> Destination:
    if request.param == "s3":
        moto: MotoS3 = request.getfixturevalue("s3")
        bucket = moto.new_bucket()

        def put(rel: str, data: bytes) -> None:
            moto.client.put_object(Bucket=bucket, Key=f"{FOLDER}/{rel}", Body=data)

        def files() -> list[str]:
            return [k.removeprefix(FOLDER + "/") for k in moto.keys(bucket, FOLDER + "/")]

        return Destination("s3", {"endpoint": moto.endpoint, "region": REGION, "bucket": bucket,
                                  "access_key_id": ACCESS_KEY, "secret_key": "alarmcloud-test-secret"},
                           put, files, lambda: [], lambda state: None, lambda rel: moto.read(bucket, f"{FOLDER}/{rel}"))
    if request.param == "sftp":
        srv: SshServer = request.getfixturevalue("sshd")
        return Destination("sftp", {"sftp_host": "127.0.0.1", "sftp_port": srv.port, "sftp_user": srv.user},
                           *_on_disk(srv.root), lambda state: srv.authorize(state["sftp_public_key"]),
                           lambda rel: (srv.root / FOLDER / rel).read_bytes())
    dav: DavServer = request.getfixturevalue("webdav")
    return Destination("webdav", {"webdav_url": dav.url, "webdav_user": USER, "webdav_password": PASSWORD},
                       *_on_disk(dav.root), lambda state: None, lambda rel: (dav.root / FOLDER / rel).read_bytes())


def _switch_on(a: Any, dest: Destination, **extra: Any) -> dict[str, Any]:
    """Saved, readied on the server, tested and switched on."""
    r = a.patch("/api/v1/me/offsite", json={"kind": dest.kind, "prefix": FOLDER, **dest.settings, **extra})
    assert r.status_code == 200, r.text
    dest.ready(r.json())
    r = a.post("/api/v1/me/offsite/test")
    assert r.status_code == 200, r.text
    r = a.patch("/api/v1/me/offsite", json={"enabled": True})
    assert r.status_code == 200, r.text
    return r.json()


def _wait_sent(core: Any, account_id: str, n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while [r.state for r in outbox_rows(core, account_id, "offsite")] != ["sent"] * n:
        assert time.monotonic() < deadline, [r.state for r in outbox_rows(core, account_id, "offsite")]
        time.sleep(0.05)


def _path(event: dict[str, Any], camera: str) -> str:
    t = event["started_at"]
    stamp = t[:19].replace("-", "").replace(":", "") + "Z"
    return f"{camera}/{t[:10].replace('-', '/')}/{stamp}-{event['id']}.mp4"


def test_old_copies_go_and_kept_clips_and_the_owners_files_stay(api: Any, server: Any, dest: Destination,
                                                                clip: Path) -> None:
    a = api().register(f"prune-{dest.kind}@example.com")
    state = _switch_on(a, dest, keep_days=30)
    assert state["keep_days"] == 30 and state["prune"] is None
    jsonschema.validate(state, SHAPES[("PATCH", "/api/v1/me/offsite")]["response"])
    creds = a.upload_credentials(a.camera("Garden shed")["id"])
    kept, other = a.upload_analysed(creds, clip), a.upload_analysed(creds, clip)
    _wait_sent(server.core, a.id, 2)
    assert a.patch(f"/api/v1/events/{kept['id']}", json={"kept": True}).status_code == 200
    new = sorted(p for ev in (kept, other)
                 for p in (_path(ev, "Garden shed"), _path(ev, "Garden shed")[:-4] + ".json"))
    assert dest.files() == new

    # what older copies look like there: a video with its sidecar, an upload that broke off, and the owner's own
    old_day = "Garden shed/2020/01/05"
    ours = [f"{old_day}/20200105T101010Z-{OLD_ID}.mp4", f"{old_day}/20200105T101010Z-{OLD_ID}.json",
            f"{old_day}/.20200105T111111Z-{OLD_ID}.mp4.part", f"Porch/2021/12/31/20211231T235959Z-{OLD_ID}.mp4"]
    theirs = ["Garden shed/2020/02/03/holiday.jpg", "Garden shed/misc/20200105T101010Z-x.mp4",
              "Garden shed/2020/01/06/20200105T101010Z-y.mp4"]  # another day's name in this day's folder: not ours
    for rel in ours + theirs:
        dest.put(rel, b"x" * 1000)

    r = a.post("/api/v1/me/offsite/prune", json={"dry_run": True})
    assert r.status_code == 200, r.text
    jsonschema.validate(r.json(), SHAPES[("POST", "/api/v1/me/offsite/prune")]["response"])
    before = (utcnow() - timedelta(days=30)).date().isoformat()
    assert r.json()["result"] == {"before": before, "dry_run": True, "deleted_clips": 2, "deleted_files": 4,
                                  "deleted_bytes": 4000, "kept_clips": 0, "folders_removed": 0}
    assert dest.files() == sorted(new + ours + theirs) and r.json()["prune"] is None  # a dry run is not recorded

    r = a.post("/api/v1/me/offsite/prune")
    assert r.status_code == 200, r.text
    assert r.json()["result"]["deleted_files"] == 4 and r.json()["result"]["dry_run"] is False
    assert dest.files() == sorted(new + theirs)
    assert r.json()["prune"]["deleted_files"] == 4 and r.json()["prune"]["error"] is None
    if dest.kind != "s3":  # emptied day, month and year folders went; those with the owner's files stay
        assert old_day not in dest.folders() and "Porch/2021" not in dest.folders() and "Porch" in dest.folders()
        assert "Garden shed/2020/02/03" in dest.folders() and "Garden shed/2020/01/06" in dest.folders()
        assert r.json()["result"]["folders_removed"] == 4  # 2020/01/05; 2021/12/31, 2021/12 and 2021 of Porch

    # the daily run, 40 days on: this month's copies are old now, but the kept clip's stays
    later = utcnow() + timedelta(days=40)
    assert offsite_prune.run_due(server.core, now=later) == [a.id]
    assert dest.files() == sorted([_path(kept, "Garden shed"), _path(kept, "Garden shed")[:-4] + ".json"] + theirs)
    assert offsite_prune.run_due(server.core, now=later + timedelta(hours=1)) == []  # once a day
    prune = a.get("/api/v1/me/offsite").json()["prune"]
    assert prune["deleted_files"] == 2 and prune["error"] is None

    # not kept any more: the next day's run deletes its copy too
    assert a.patch(f"/api/v1/events/{kept['id']}", json={"kept": False}).status_code == 200
    assert offsite_prune.run_due(server.core, now=later + timedelta(days=1, minutes=1)) == [a.id]
    assert dest.files() == sorted(theirs)


def test_a_user_that_may_not_delete_is_told_and_nothing_goes(api: Any, server: Any, sshd: SshServer) -> None:  # noqa: F811
    a = api().register("prune-deny@example.com")
    r = a.patch("/api/v1/me/offsite", json={"kind": "sftp", "sftp_host": "127.0.0.1", "sftp_port": sshd.port,
                                            "sftp_user": sshd.user, "prefix": FOLDER, "keep_days": 7})
    sshd.authorize(r.json()["sftp_public_key"])
    assert a.post("/api/v1/me/offsite/test").status_code == 200
    assert a.patch("/api/v1/me/offsite", json={"enabled": True}).status_code == 200
    sshd.stop()
    sshd.deny = "remove"  # the server refuses every delete of this user (a thief with the key cannot either)
    sshd.start()
    r = a.post("/api/v1/me/offsite/test")  # the test says so at once
    assert r.status_code == 200 and r.json()["deleted"] is False, r.text
    assert "copies older than 7 days cannot be deleted here either" in r.json()["message"]
    for left in (sshd.root / FOLDER).glob(".alarmcloud-test-*"):  # what the test wrote stays: the owner removes it
        left.unlink()
    old = f"{FOLDER}/Garden/2020/01/05/20200105T101010Z-{OLD_ID}.mp4"
    (sshd.root / old).parent.mkdir(parents=True)
    (sshd.root / old).write_bytes(b"old")
    r = a.post("/api/v1/me/offsite/prune")
    assert r.status_code == 400 and r.json()["error"]["code"] == "access_denied", r.text
    assert "delete" in r.json()["error"]["message"]
    assert sshd.files() == [old]
    prune = a.get("/api/v1/me/offsite").json()["prune"]
    assert prune["deleted_files"] is None and "delete" in prune["error"]
    # the daily run records the same and tries again a day later
    later = utcnow() + timedelta(days=2)
    assert offsite_prune.run_due(server.core, now=later) == []
    assert "delete" in a.get("/api/v1/me/offsite").json()["prune"]["error"] and sshd.files() == [old]


@pytest.mark.parametrize("settings", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_keep_days_is_checked_and_a_new_value_runs_soon(api: Any, server: Any, s3: MotoS3) -> None:  # noqa: F811
    a = api().register("prune-checks@example.com")
    before = a.get("/api/v1/me/offsite").json()
    for value in (0, -1, 3651, "30", 1.5, True):
        r = a.patch("/api/v1/me/offsite", json={"keep_days": value})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_field", (value, r.text)
        assert "keep_days" in r.json()["error"]["message"]
    assert a.get("/api/v1/me/offsite").json() == before and before["keep_days"] is None
    r = a.post("/api/v1/me/offsite/prune")
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_configured", r.text
    r = a.post("/api/v1/me/offsite/prune", json={"dry_run": "yes"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_field", r.text

    bucket = s3.new_bucket()
    r = a.patch("/api/v1/me/offsite", json={"endpoint": s3.endpoint, "region": REGION, "bucket": bucket,
                                            "access_key_id": ACCESS_KEY, "secret_key": "alarmcloud-test-secret",
                                            "enabled": True, "keep_days": 14})
    assert r.status_code == 200 and r.json()["keep_days"] == 14, r.text
    now = utcnow()
    # two server processes looking at once: one of them gets the day's run
    start, won = threading.Barrier(4), []

    def claim() -> None:
        start.wait()
        won.append(offsite_prune._claim(server.core, a.id, now - timedelta(minutes=1)))

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == [False, False, False, True]
    set_account(server.core, a.id, offsite_pruned_at=None)
    assert offsite_prune.run_due(server.core, now=now) == [a.id]
    assert offsite_prune.run_due(server.core, now=now + timedelta(minutes=10)) == []
    # another number of days: the next look (within minutes) runs again, not a day later
    assert a.patch("/api/v1/me/offsite", json={"keep_days": 7}).json()["prune"] is None
    assert offsite_prune.run_due(server.core, now=now + timedelta(minutes=20)) == [a.id]
    # a restricted account (Art. 18): nothing runs by itself; copies off: nothing either
    set_account(server.core, a.id, restricted=True)
    assert offsite_prune.run_due(server.core, now=now + timedelta(days=2)) == []
    set_account(server.core, a.id, restricted=False)
    assert a.patch("/api/v1/me/offsite", json={"enabled": False}).status_code == 200
    assert offsite_prune.run_due(server.core, now=now + timedelta(days=3)) == []
    assert a.patch("/api/v1/me/offsite", json={"keep_days": None}).json()["keep_days"] is None


def test_clips_older_than_the_kept_days_are_not_copied(api: Any, server: Any, s3: MotoS3,  # noqa: F811
                                                       clip: Path) -> None:
    a = api().register("prune-backfill@example.com")
    creds = a.upload_credentials(a.camera("Garden")["id"])
    old, new = a.upload_analysed(creds, clip), a.upload_analysed(creds, clip)
    with server.core.db.session() as s:  # recorded 40 days ago
        row = s.get(Clip, old["id"])
        assert row is not None
        row.started_at = datetime.now(UTC) - timedelta(days=40)
        s.add(row)
        s.commit()
    bucket = s3.new_bucket()
    r = a.patch("/api/v1/me/offsite", json={"endpoint": s3.endpoint, "region": REGION, "bucket": bucket,
                                            "access_key_id": ACCESS_KEY, "secret_key": "alarmcloud-test-secret",
                                            "prefix": FOLDER, "enabled": True, "keep_days": 30})
    assert r.status_code == 200, r.text
    assert a.post("/api/v1/me/offsite/backfill").json()["queued"] == 1  # the new one only
    _wait_sent(server.core, a.id, 1)
    assert [k.rsplit("-", 1)[-1] for k in s3.keys(bucket) if k.endswith(".mp4")] == [f"{new['id']}.mp4"]
    # kept: its copy is never deleted as an old one, so it is made
    assert a.patch(f"/api/v1/events/{old['id']}", json={"kept": True}).status_code == 200
    assert a.post("/api/v1/me/offsite/backfill").json()["queued"] == 1
    _wait_sent(server.core, a.id, 2)
    assert len([k for k in s3.keys(bucket) if k.endswith(".mp4")]) == 2
    with server.core.db.session() as s:
        acc = s.get(Account, a.id)
        assert acc is not None and acc.offsite_keep_days == 30
