"""`alarmcloud scale-out copy`: an embedded deployment (SQLite + local blobs) made through the API is copied into
PostgreSQL and an S3 bucket (moto), and a server on the copy works for its customers as the old one did: the same
login with its second step, the camera's upload credentials, old clips with Range, thumbnails, exports, encrypted
secrets, new rows with fresh ids. A running source, an unmigrated or non-empty target and a target with another key
are refused with nothing written."""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alarmcloud import crypto, db, twofactor
from alarmcloud.cli import main
from alarmcloud.testing import LiveServer, postgres_database, test_settings
from click.testing import CliRunner

from tests.s3server import MotoS3, s3, s3_storage  # type: ignore[import-not-found]  # noqa: F401

PG = os.environ.get("ALARMCLOUD_TEST_POSTGRES_URL")
pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not PG, reason="set ALARMCLOUD_TEST_POSTGRES_URL (scripts/test starts a server)")]
PASSWORD = "correct horse battery staple"
PREFIX = "ac"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database per test on the server."""
    with postgres_database() as url:
        yield url


def _source_settings(data_dir: Path) -> Any:
    st: Any = test_settings(data_dir, camera_networks=["127.0.0.0/8"])
    st.notify.webhook_networks = ["127.0.0.0/8"]
    return st


def _previous_code(secret: str) -> str:
    left = twofactor.STEP - time.time() % twofactor.STEP
    if left < 5:
        time.sleep(left + 0.1)
    return twofactor.totp(secret, time.time() - twofactor.STEP)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An embedded deployment with real data made through the API, stopped."""
    from tests.conftest import Api, small_clip  # type: ignore[import-not-found]

    base = tmp_path_factory.mktemp("old")
    data = base / "data"
    st = _source_settings(data)
    clips = [small_clip(base / f"c{i}.mp4", seconds=2.0) for i in range(3)]
    with LiveServer(st) as srv:
        a = Api(srv.url).register("owner@example.com")
        r = a.post("/api/v1/me/2fa")
        assert r.status_code == 201, r.text
        totp = r.json()["secret"]
        r = a.post("/api/v1/me/2fa/confirm", json={"code": _previous_code(totp), "password": PASSWORD})
        assert r.status_code == 200, r.text
        r = a.patch("/api/v1/me/push", json={"enabled": True, "url": "http://127.0.0.1:9/topic", "token": "tk-push"})
        assert r.status_code == 200, r.text
        cam = a.camera("Garage", host="192.168.1.20", username="admin", password="cam-secret")
        creds = a.upload_credentials(cam["id"])
        events = [a.upload_analysed(creds, c) for c in clips]
        r = a.post(f"/api/v1/events/{events[0]['id']}/feedback",
                   json={"detector": "rain", "label": "not_rain", "release": True})  # a consent + a training copy
        assert r.status_code == 201, r.text
        assert a.delete(f"/api/v1/events/{events[2]['id']}").status_code == 204  # a line in the erasure register
        hook = a.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"})
        assert hook.status_code == 201, hook.text
        r = a.post("/api/v1/subusers", json={"email": "kid@example.com", "password": PASSWORD,
                                              "rights": {cam["id"]: "view"}})
        assert r.status_code == 201, r.text  # an account whose owner_id refers to another account row
        token = a.post("/api/v1/tokens", json={"name": "home"}).json()["token"]
        r = a.post("/api/v1/me/exports")
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 30
        while (info := a.get(r.json()["url"]).json())["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert info["state"] == "done", info
        export = a.get(info["download_url"]).content
        assert "account.json" in zipfile.ZipFile(io.BytesIO(export)).namelist()
        thumb = a.get(f"/api/v1/events/{events[0]['id']}/thumbnail").content
    assert (data / "erasures.jsonl").is_file() and (data / "training").is_dir()
    return {"settings": st, "data": data, "totp": totp, "camera": cam, "creds": creds, "events": events[:2],
            "clips": clips, "hook_secret": hook.json()["secret"], "webhook_id": hook.json()["id"], "token": token,
            "export_url": info["download_url"], "export": export, "thumb": thumb}


def _target(tmp_path: Path, s3: MotoS3, pg_url: str, **extra: str) -> tuple[Any, Path, str]:  # noqa: F811
    """Settings of the new deployment, the same as a TOML file for the command, and its bucket."""
    bucket = s3.new_bucket()
    data = tmp_path / "new"
    lines = [f'data_dir = "{data}"', f'database_url = "{pg_url}"', 'camera_networks = ["127.0.0.0/8"]',
             *(f'{k} = "{v}"' for k, v in extra.items()),
             "[storage]", 'backend = "s3"', "[storage.s3]", f'bucket = "{bucket}"', f'endpoint_url = "{s3.endpoint}"',
             f'region = "{s3_storage(s3.endpoint, bucket)["s3"]["region"]}"',
             f'access_key_id = "{s3_storage(s3.endpoint, bucket)["s3"]["access_key_id"]}"',
             f'secret_access_key = "{s3_storage(s3.endpoint, bucket)["s3"]["secret_access_key"]}"',
             "allow_http = true", f'key_prefix = "{PREFIX}"']
    tmp_path.mkdir(parents=True, exist_ok=True)
    toml = tmp_path / "new.toml"
    toml.write_text("\n".join(lines) + "\n")
    st = test_settings(data, database_url=pg_url, camera_networks=["127.0.0.0/8"],
                       storage=s3_storage(s3.endpoint, bucket, key_prefix=PREFIX), **extra)
    return st, toml, bucket


def _copy(src: Path, toml: Path, *more: str) -> Any:
    return CliRunner().invoke(main, ["scale-out", "copy", "--data-dir", str(src), "--to-config", str(toml), *more])


def _sqlite_counts(db_file: Path) -> dict[str, int]:
    from sqlmodel import SQLModel

    con = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        return {t.name: con.execute(f"SELECT count(*) FROM {t.name}").fetchone()[0]
                for t in SQLModel.metadata.sorted_tables}
    finally:
        con.close()


def _pg_counts(url: str) -> dict[str, int]:
    from sqlmodel import SQLModel

    engine = db.make_engine(url)
    try:
        with engine.connect() as c:
            return {t.name: c.execute(sa.text(f"SELECT count(*) FROM {t.name}")).scalar_one()
                    for t in SQLModel.metadata.sorted_tables}
    finally:
        engine.dispose()


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith("alarmcloud.db")}


def test_copy_to_postgres_and_s3_serves_the_same_customers(source: dict[str, Any], tmp_path: Path, s3: MotoS3,  # noqa: F811
                                                         pg_url: str) -> None:
    from alarmcloud.models import Account, Camera, FindingRow, Job, Webhook
    from alarmcloud.notify import open_account_secret

    from tests.conftest import Api  # type: ignore[import-not-found]

    old = source["data"]
    dst, toml, bucket = _target(tmp_path, s3, pg_url)
    r = _copy(old, toml)
    assert r.exit_code != 0 and "alarmcloud migrate" in r.output, r.output  # not migrated yet: refused
    db.migrate(pg_url)
    before_files, before_rows = _files(old), _sqlite_counts(old / "alarmcloud.db")
    blob_keys = sorted(str(p.relative_to(old / "blobs")) for p in (old / "blobs").rglob("*")
                       if p.is_file() and ".tmp" not in p.parts)
    r = _copy(old, toml)
    assert r.exit_code == 0, r.output
    assert f"{len(blob_keys) + 1} files" in r.output  # the clips, thumbnails and export, and the training copy

    assert _pg_counts(pg_url) == before_rows  # every table, row for row
    assert before_rows["accounts"] == 2 and before_rows["clips"] == 2 and before_rows["consents"] == 1
    keys = s3.keys(bucket)
    assert sorted(k.removeprefix(f"{PREFIX}/") for k in keys if "/training/" not in f"/{k}") == blob_keys
    training = [k for k in keys if k.startswith(f"{PREFIX}/training/")]
    assert training == [f"{PREFIX}/training/rain/not_rain/{source['events'][0]['id']}.mp4"]
    assert s3.read(bucket, training[0]) == source["clips"][0].read_bytes()
    assert (dst.data_dir / "secret.key").read_text() == (old / "secret.key").read_text()  # the key came along
    assert (dst.data_dir / "erasures.jsonl").read_bytes() == (old / "erasures.jsonl").read_bytes()
    assert _files(old) == before_files and _sqlite_counts(old / "alarmcloud.db") == before_rows  # source untouched

    again = _copy(old, toml)  # a finished copy is not made twice
    assert again.exit_code != 0 and "not empty" in again.output, again.output
    assert _pg_counts(pg_url) == before_rows and s3.keys(bucket) == keys

    engine = db.make_engine(pg_url)
    with engine.connect() as c:
        old_max_job = c.execute(sa.text("SELECT max(id) FROM jobs")).scalar_one()
        old_max_finding = c.execute(sa.text("SELECT max(id) FROM findings")).scalar_one()
    engine.dispose()

    with LiveServer(dst) as srv:
        core: Any = srv.core
        # the same login, and its second step: the TOTP secret decrypts with the carried key
        r = httpx.post(srv.url + "/api/v1/auth/login", json={"email": "owner@example.com", "password": PASSWORD})
        assert r.status_code == 401 and r.json()["error"]["code"] == "second_factor_required", r.text
        r = httpx.post(srv.url + "/api/v1/auth/login/second-factor",
                       json={"pending_token": r.json()["pending_token"], "code": twofactor.totp(source["totp"])})
        assert r.status_code == 200, r.text
        a = Api(srv.url)
        a.http.cookies.update(r.cookies)
        a.csrf = r.json()["csrf_token"]
        assert Api(srv.url).login("kid@example.com").get("/api/v1/events").status_code == 200
        bearer = httpx.get(srv.url + "/api/v1/events", headers={"Authorization": f"Bearer {source['token']}"})
        assert bearer.status_code == 200

        items = a.get("/api/v1/events").json()["items"]
        assert sorted(e["id"] for e in items) == sorted(e["id"] for e in source["events"])
        ev = source["events"][0]
        data = source["clips"][0].read_bytes()
        r = a.get(f"/api/v1/events/{ev['id']}/video", headers={"Range": "bytes=100-1123"})
        assert r.status_code == 206 and r.content == data[100:1124]
        assert a.get(f"/api/v1/events/{ev['id']}/thumbnail").content == source["thumb"]
        assert a.get(source["export_url"]).content == source["export"]

        with core.db.session() as s:
            cam = s.get(Camera, source["camera"]["id"])
            hook = s.get(Webhook, source["webhook_id"])
            owner = s.exec(sa.select(Account).where(Account.email == "owner@example.com")).scalar_one()
            assert core.secret_box.decrypt(cam.password_enc, f"camera:{cam.id}:password") == "cam-secret"
            assert core.secret_box.decrypt(hook.secret, f"webhook:{hook.id}") == source["hook_secret"]
            assert open_account_secret(core, owner, "push") == "tk-push"

        new = a.upload_analysed(source["creds"], source["clips"][1])  # the camera's upload credentials still work
        with core.db.session() as s:
            job = s.exec(sa.select(Job).where(Job.clip_id == new["id"])).scalar_one()
            findings = s.exec(sa.select(FindingRow.id).where(FindingRow.clip_id == new["id"])).scalars().all()
        assert job.id > old_max_job  # the sequences were moved past the copied ids
        assert all(f > old_max_finding for f in findings)
        r = a.post(f"/api/v1/events/{new['id']}/feedback", json={"detector": "rain", "label": "rain"})
        assert r.status_code == 201, r.text
        assert len(a.get("/api/v1/events").json()["items"]) == 3


def test_refuses_a_running_source_and_a_target_with_another_key(source: dict[str, Any], tmp_path: Path,
                                                                s3: MotoS3, pg_url: str) -> None:  # noqa: F811
    db.migrate(pg_url)
    dst, toml, bucket = _target(tmp_path, s3, pg_url)
    with LiveServer(source["settings"]):
        r = _copy(source["data"], toml)
    assert r.exit_code != 0 and "is in use" in r.output and "stop the server" in r.output, r.output

    other, toml2, bucket2 = _target(tmp_path / "k", s3, pg_url, secret_key=crypto.generate_key())
    r = _copy(source["data"], toml2)
    assert r.exit_code != 0 and "another key under key id k1" in r.output, r.output
    assert not (other.data_dir / "secret.key").exists()

    dry = _copy(source["data"], toml, "--dry-run")
    assert dry.exit_code == 0 and "would copy" in dry.output, dry.output
    assert s3.keys(bucket) == [] and s3.keys(bucket2) == []  # nothing written anywhere
    assert set(_pg_counts(pg_url).values()) == {0}
    assert not (dst.data_dir / "secret.key").exists()

    s3.client.put_object(Bucket=bucket, Key=f"{PREFIX}/someone/else.mp4", Body=b"not ours")
    r = _copy(source["data"], toml)
    assert r.exit_code != 0 and "already holds 1 object(s)" in r.output, r.output  # another deployment's bucket
    s3.client.delete_object(Bucket=bucket, Key=f"{PREFIX}/someone/else.mp4")
    # an interrupted run left a file in the bucket: a new run resumes (the file is not sent again) and completes
    done = next(p for p in sorted((source["data"] / "blobs").rglob("*.mp4")) if ".tmp" not in p.parts)
    key = f"{PREFIX}/{done.relative_to(source['data'] / 'blobs')}"
    s3.client.put_object(Bucket=bucket, Key=key, Body=done.read_bytes())
    r = _copy(source["data"], toml)
    assert r.exit_code == 0 and "(1 of them already in the target)" in r.output, r.output
    assert _pg_counts(pg_url) == _sqlite_counts(source["data"] / "alarmcloud.db")
    assert s3.read(bucket, key) == done.read_bytes()

