"""Clips, thumbnails and exports in an S3 bucket (a real S3 server over loopback: moto), end to end over HTTP:
upload, analysis, Range playback, thumbnail, bulk download, deletion, account erasure (checked in the bucket's own
listing), an unreachable store, start-up checks and settings; and scale-out: two API nodes and a worker sharing
PostgreSQL and the bucket."""

from __future__ import annotations

import base64
import io
import os
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from alarmcloud.testing import LiveServer, test_settings
from click.testing import CliRunner

from tests.s3server import MotoS3, s3, s3_storage  # type: ignore[import-not-found]  # noqa: F401

PASSWORD = "correct horse battery staple"


def _settings(data_dir: Path, srv: MotoS3, bucket: str, **overrides: Any) -> Any:
    storage = s3_storage(srv.endpoint, bucket, key_prefix="alarmcloud", **overrides.pop("s3", {}))
    return test_settings(data_dir, camera_networks=["127.0.0.0/8"], storage=storage, **overrides)


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def _clip_keys(core: Any, event_id: str) -> tuple[str, str]:
    from alarmcloud.models import Clip

    with core.db.session() as s:
        clip = s.get(Clip, event_id)
        return clip.blob_key, clip.thumb_key


def test_clips_live_in_the_bucket_end_to_end(s3: MotoS3, tmp_path: Path, kit: Any) -> None:  # noqa: F811
    from tests.conftest import Api  # type: ignore[import-not-found]

    bucket = s3.new_bucket()
    st = _settings(tmp_path / "data", s3, bucket)
    first = kit.small_clip(tmp_path / "first.mp4", seconds=2.0)
    second = kit.small_clip(tmp_path / "second.mp4", seconds=3.0)
    with LiveServer(st) as srv:
        core: Any = srv.core
        acc = Api(srv.url).register("bucket@example.com")
        other = Api(srv.url).register("neighbour@example.com")
        creds = acc.upload_credentials(acc.camera()["id"])
        ev = acc.upload_analysed(creds, first)  # the worker read the clip back from the bucket to analyse it
        other_ev = other.upload_analysed(other.upload_credentials(other.camera()["id"]), second)
        blob_key, thumb_key = _clip_keys(core, ev["id"])
        assert {f"alarmcloud/{blob_key}", f"alarmcloud/{thumb_key}"} <= set(s3.keys(bucket))
        assert blob_key.startswith(f"{acc.id}/")
        assert _files(Path(st.data_dir) / "blobs") == []  # nothing stored on the local disk
        assert _files(Path(st.data_dir) / "staging") == []  # the staged upload and the worker's copy are gone

        data = first.read_bytes()
        video = f"/api/v1/events/{ev['id']}/video"
        r = acc.get(video, headers={"Range": "bytes=100-1123"})
        assert r.status_code == 206, r.text
        assert r.headers["content-range"] == f"bytes 100-1123/{len(data)}"
        assert r.content == data[100:1124]
        r = acc.get(video, headers={"Range": "bytes=-500"})
        assert r.status_code == 206 and r.content == data[-500:]
        assert acc.get(video).content == data
        thumb = acc.get(f"/api/v1/events/{ev['id']}/thumbnail")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert thumb.content == s3.read(bucket, f"alarmcloud/{thumb_key}")

        zf = zipfile.ZipFile(io.BytesIO(acc.post("/api/v1/events/download", json={"ids": [ev["id"]]}).content))
        videos = [n for n in zf.namelist() if n.endswith(".mp4")]
        assert len(videos) == 1 and zf.read(videos[0]) == data
        link = acc.post("/api/v1/events/download", json={"ids": [ev["id"]], "link": True}).json()
        whole = acc.get(link["url"]).content
        part = acc.get(link["url"], headers={"Range": "bytes=1000-2999"})  # a resumed download reads a slice
        assert part.status_code == 206 and part.content == whole[1000:3000]

        assert acc.delete(f"/api/v1/events/{ev['id']}").status_code == 204
        keys = s3.keys(bucket)
        assert f"alarmcloud/{blob_key}" not in keys and f"alarmcloud/{thumb_key}" not in keys

        released = acc.upload_analysed(creds, second)
        r = acc.post(f"/api/v1/events/{released['id']}/feedback",
                     json={"detector": "rain", "label": "not_rain", "release": True})
        assert r.status_code == 201, r.text
        assert s3.keys(bucket, "alarmcloud/training/") == [f"alarmcloud/training/rain/not_rain/{released['id']}.mp4"]
        r = acc.post("/api/v1/me/exports")
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 30
        while (info := acc.get(r.json()["url"]).json())["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert info["state"] == "done", info
        assert s3.keys(bucket, f"alarmcloud/exports/{acc.id}/")
        export = acc.get(info["download_url"])
        assert export.status_code == 200 and "account.json" in zipfile.ZipFile(io.BytesIO(export.content)).namelist()
        head = acc.get(info["download_url"], headers={"Range": "bytes=0-99"})
        assert head.status_code == 206 and head.content == export.content[:100]

        assert acc.delete("/api/v1/me", json={"password": PASSWORD}).status_code == 200
        left = s3.keys(bucket)
        assert [k for k in left if acc.id in k] == []  # no clip, thumbnail or export of the account is left
        assert [k for k in left if "/training/" in k] == []  # nor the copy released for training
        other_keys = _clip_keys(core, other_ev["id"])
        assert {f"alarmcloud/{k}" for k in other_keys} <= set(left)  # the neighbour's stay
        assert other.get(f"/api/v1/events/{other_ev['id']}/video").content == second.read_bytes()


def test_upload_while_the_store_is_down_answers_503_and_stores_nothing(tmp_path: Path, kit: Any) -> None:
    from tests.conftest import Api  # type: ignore[import-not-found]

    own = MotoS3()  # a server of this test's own, stopped in the middle
    try:
        st = _settings(tmp_path / "data", own, own.new_bucket(), s3={"max_retries": 0, "timeout_seconds": 2})
        clip = kit.small_clip(tmp_path / "c.mp4", seconds=2.0)
        with LiveServer(st) as srv:
            acc = Api(srv.url).register("down@example.com")
            creds = acc.upload_credentials(acc.camera()["id"])
            own.stop()
            r = acc.upload(creds, clip)
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "storage_unavailable"
            assert r.headers["retry-after"]
            assert kit.row_counts(srv.core) == {"clips": 0, "jobs": 0, "series": 0}
            assert _files(Path(st.data_dir) / "staging") == []  # the staged upload was removed
            assert acc.get("/api/v1/events").json()["items"] == []
    finally:
        own.stop()


def test_serve_and_worker_refuse_to_start_without_the_bucket(s3: MotoS3, tmp_path: Path) -> None:  # noqa: F811
    from alarmcloud.cli import main

    env = {"ALARMCLOUD_STORAGE__BACKEND": "s3", "ALARMCLOUD_STORAGE__S3__BUCKET": "never-created",
           "ALARMCLOUD_STORAGE__S3__ENDPOINT_URL": s3.endpoint, "ALARMCLOUD_STORAGE__S3__ALLOW_HTTP": "true",
           "ALARMCLOUD_STORAGE__S3__REGION": "us-east-1", "ALARMCLOUD_STORAGE__S3__MAX_RETRIES": "0",
           "AWS_ACCESS_KEY_ID": "id-from-env", "AWS_SECRET_ACCESS_KEY": "secret-from-env-123"}
    runner = CliRunner(env=env)
    for args in (["worker"], ["serve", "--port", "0", "--ftp-port", "0", "--workers", "0"]):
        result = runner.invoke(main, [*args, "--data-dir", str(tmp_path / "data")])
        assert result.exit_code == 1, result.output
        assert "bucket never-created does not exist" in result.output
        assert "secret-from-env-123" not in result.output


def test_s3_settings_are_checked_with_the_setting_named(tmp_path: Path) -> None:
    from alarmcloud.config import ConfigError, load_settings
    from pydantic import ValidationError

    def load(text: str) -> Any:
        path = tmp_path / "alarmcloud.toml"
        path.write_text(text)
        return load_settings(path)

    with pytest.raises(ValidationError, match=r"storage\.s3\.bucket"):
        load('[storage]\nbackend = "s3"\n')
    with pytest.raises(ValidationError, match=r"allow_http"):
        load('[storage]\nbackend = "s3"\n[storage.s3]\nbucket = "clips"\nendpoint_url = "http://10.0.0.5:9000"\n')
    with pytest.raises(ValidationError, match=r"key_prefix"):
        load('[storage]\nbackend = "s3"\n[storage.s3]\nbucket = "clips"\nkey_prefix = "../other"\n')
    with pytest.raises(ValidationError, match=r"backend"):
        load('[storage]\nbackend = "ftp"\n')
    with pytest.raises(ConfigError, match=r"storage\.s3\.buckt"):
        load('[storage.s3]\nbuckt = "clips"\n')
    os.environ["ALARMCLOUD_TEST_S3_SECRET"] = "from-the-environment"
    try:
        st = load('[storage]\nbackend = "s3"\n[storage.s3]\nbucket = "clips"\n'
                  'secret_access_key = {"$env" = "ALARMCLOUD_TEST_S3_SECRET"}\n')
    finally:
        del os.environ["ALARMCLOUD_TEST_S3_SECRET"]
    assert st.storage.s3.secret_access_key.get_secret_value() == "from-the-environment"
    assert "from-the-environment" not in repr(st)
    assert load("").storage.backend == "local"  # the default stays local disk


def test_backup_and_restore_refuse_s3_storage_and_say_what_to_do(s3: MotoS3, tmp_path: Path) -> None:  # noqa: F811
    from alarmcloud.backup import BackupError, create_backup

    st = _settings(tmp_path / "data", s3, "clips")
    with pytest.raises(BackupError, match="versioning") as exc:
        create_backup(st, tmp_path / "b.tar")
    assert "pg_dump" in str(exc.value)
    assert not (tmp_path / "b.tar").exists()

    from alarmcloud.cli import main

    (tmp_path / "old.tar").write_bytes(b"")
    env = {"ALARMCLOUD_STORAGE__BACKEND": "s3", "ALARMCLOUD_STORAGE__S3__BUCKET": "clips"}
    result = CliRunner(env=env).invoke(main, ["restore", str(tmp_path / "old.tar"), "--data-dir",
                                              str(tmp_path / "restored")])
    assert result.exit_code == 1, result.output
    assert "storage.backend = 's3'" in result.output and "versions" in result.output
    assert not (tmp_path / "restored").exists()


@pytest.mark.postgres
def test_two_api_nodes_and_a_worker_share_postgres_and_the_bucket(s3: MotoS3, tmp_path: Path,  # noqa: F811
                                                                   kit: Any) -> None:
    """A clip uploaded through node A is analysed by a separate worker and served by node B."""
    from alarmcloud.app import AlarmCloud
    from alarmcloud.testing import postgres_database

    from tests.conftest import Api  # type: ignore[import-not-found]

    bucket = s3.new_bucket()
    key = base64.b64encode(os.urandom(32)).decode()
    clip = kit.small_clip(tmp_path / "c.mp4", seconds=2.0)
    with postgres_database() as url:
        def node(name: str) -> Any:
            return _settings(tmp_path / name, s3, bucket, database_url=url, secret_key=key)

        with LiveServer(node("a"), workers=0) as a, LiveServer(node("b"), workers=0) as b:
            worker = AlarmCloud(node("worker"))
            stop: threading.Event = worker.start_workers(1)
            try:
                on_a = Api(a.url).register("scale@example.com")
                r = on_a.upload(on_a.upload_credentials(on_a.camera()["id"]), clip)
                assert r.status_code == 201, r.text
                on_b = Api(b.url).login("scale@example.com")
                ev = on_b.wait_event(r.json()["event_id"])
                assert ev["status"] == "done", ev
                data = clip.read_bytes()
                part = on_b.get(f"/api/v1/events/{ev['id']}/video", headers={"Range": "bytes=10-2057"})
                assert part.status_code == 206 and part.content == data[10:2058]
                assert on_b.get(f"/api/v1/events/{ev['id']}/thumbnail").status_code == 200
                for name in ("a", "b", "worker"):  # no node kept a copy on its own disk
                    assert _files(tmp_path / name / "blobs") == [] and _files(tmp_path / name / "staging") == []
            finally:
                stop.set()


def test_ftp_upload_with_snapshot_goes_to_the_bucket(s3: MotoS3, tmp_path: Path, kit: Any) -> None:  # noqa: F811
    import ftplib

    from alarmcloud.ftp import start_ftp_server
    from alarmcloud.video import thumbnail_jpeg

    from tests.conftest import Api  # type: ignore[import-not-found]

    bucket = s3.new_bucket()
    st = _settings(tmp_path / "data", s3, bucket)
    st.ftp.passive_ports = ""
    clip = kit.small_clip(tmp_path / "A_20240501-101500.mp4", seconds=2.0)
    snap = thumbnail_jpeg(kit.small_clip(tmp_path / "other.mp4", seconds=1, fps=5), width=160)
    with LiveServer(st) as srv:
        ftp_srv = start_ftp_server(srv.core, port=0, host="127.0.0.1")
        try:
            acc = Api(srv.url).register("ftp-s3@example.com")
            creds = acc.upload_credentials(acc.camera()["id"])
            ftp = ftplib.FTP()
            ftp.connect("127.0.0.1", ftp_srv.port, timeout=30)
            ftp.login(creds["username"], creds["password"])
            with clip.open("rb") as fh:
                ftp.storbinary(f"STOR {clip.name}", fh)
            ftp.storbinary("STOR A_20240501-101500.jpg", io.BytesIO(snap))  # the snapshot after its clip
            ftp.quit()
            deadline = time.monotonic() + 20
            while not (items := acc.get("/api/v1/events").json()["items"]) and time.monotonic() < deadline:
                time.sleep(0.1)
            ev = acc.wait_event(items[0]["id"])
            assert ev["status"] == "done", ev
            blob_key, thumb_key = _clip_keys(srv.core, ev["id"])
            deadline = time.monotonic() + 30  # returns as soon as it happens; room for a loaded CI machine
            while s3.read(bucket, f"alarmcloud/{thumb_key}") != snap and time.monotonic() < deadline:
                time.sleep(0.1)
            assert s3.read(bucket, f"alarmcloud/{thumb_key}") == snap  # the camera's snapshot replaced it
            assert s3.read(bucket, f"alarmcloud/{blob_key}") == clip.read_bytes()
            assert acc.get(f"/api/v1/events/{ev['id']}/thumbnail").content == snap
        finally:
            ftp_srv.stop()
        assert _files(Path(st.data_dir) / "staging") == []  # the FTP session's files and the worker's copy


def test_crash_sweep_removes_old_orphans_but_not_another_nodes_fresh_upload(s3: MotoS3, tmp_path: Path,  # noqa: F811
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from alarmcloud import app as app_module
    from alarmcloud import db
    from alarmcloud.app import AlarmCloud

    bucket = s3.new_bucket()
    st = _settings(tmp_path / "data", s3, bucket)
    db.migrate(st.db_url)
    core = AlarmCloud(st)
    core.blobs.put_bytes("acc/cam/orphan.mp4", b"never committed")  # another node may be about to commit it
    s3.client.put_object(Bucket=bucket, Key="alarmcloud/exports/acc/e.zip", Body=b"not a clip")
    core.blobs.tmp_path("http-left-by-a-crash").write_bytes(b"staged")
    assert core.sweep_orphans() == 1  # only the staged file
    assert "alarmcloud/acc/cam/orphan.mp4" in s3.keys(bucket)
    monkeypatch.setattr(app_module, "ORPHAN_GRACE_SECONDS", -60.0)  # as if it were old
    assert core.sweep_orphans() == 1
    assert s3.keys(bucket) == ["alarmcloud/exports/acc/e.zip"]


def test_health_reports_the_object_store(tmp_path: Path) -> None:
    import httpx

    own = MotoS3()
    try:
        st = _settings(tmp_path / "data", own, own.new_bucket(), s3={"max_retries": 0, "timeout_seconds": 2})
        with LiveServer(st) as srv:
            r = httpx.get(srv.url + "/-/health")
            assert r.status_code == 200 and r.json()["checks"]["storage"] is True
            own.stop()
            r = httpx.get(srv.url + "/-/health")
            assert r.status_code == 503 and r.json()["checks"]["storage"] is False
    finally:
        own.stop()


def test_applying_privacy_masks_replaces_the_objects_in_the_bucket(s3: MotoS3, tmp_path: Path) -> None:  # noqa: F811
    from tests.conftest import Api  # type: ignore[import-not-found]
    from tests.test_privacy_masks import MASKS, bright_clip, decoded, regions  # type: ignore[import-not-found]

    bucket = s3.new_bucket()
    upload = bright_clip(tmp_path / "garden.mp4")
    with LiveServer(_settings(tmp_path / "data", s3, bucket)) as srv:
        acc = Api(srv.url).register("masks-s3@example.com")
        cam = acc.camera("Street side")
        ev = acc.upload_analysed(acc.upload_credentials(cam["id"]), upload)
        old = _clip_keys(srv.core, ev["id"])
        assert acc.patch(f"/api/v1/cameras/{cam['id']}", json={"privacy_masks": MASKS}).status_code == 200
        url = f"/api/v1/cameras/{cam['id']}/privacy-masks/apply"
        assert acc.post(url).status_code == 202
        deadline = time.monotonic() + 120
        while (info := acc.get(url).json())["state"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (info["state"], info["done"], info["failed"]) == ("done", 1, 0), info
        new = _clip_keys(srv.core, ev["id"])
        keys = s3.keys(bucket)
        assert {f"alarmcloud/{k}" for k in old}.isdisjoint(keys)  # the unmasked video and thumbnail are gone
        assert {f"alarmcloud/{k}" for k in new} <= set(keys)
        masked = tmp_path / "masked.mp4"
        masked.write_bytes(acc.get(f"/api/v1/events/{ev['id']}/video").content)
        assert masked.read_bytes() == s3.read(bucket, f"alarmcloud/{new[0]}")
        frames = decoded(masked)
        inside, _ = regions(frames[0].shape[1], frames[0].shape[0])
        assert max(float(f[inside].max()) for f in frames) <= 12  # black where the masks are
        assert _files(Path(srv.core.settings.data_dir) / "staging") == []


def test_store_failing_between_video_and_thumbnail_leaves_nothing(s3: MotoS3, tmp_path: Path,  # noqa: F811
                                                                  kit: Any) -> None:
    from alarmcloud.blobstore import BlobStoreUnavailable

    from tests.conftest import Api  # type: ignore[import-not-found]

    bucket = s3.new_bucket()
    with LiveServer(_settings(tmp_path / "data", s3, bucket)) as srv:
        acc = Api(srv.url).register("half@example.com")
        creds = acc.upload_credentials(acc.camera()["id"])
        core: Any = srv.core

        def refuse(key: str, data: bytes) -> int:
            raise BlobStoreUnavailable("object storage failed: connection reset")

        core.blobs.put_bytes = refuse  # the video went up; the thumbnail's request fails
        r = acc.upload(creds, kit.small_clip(tmp_path / "c.mp4", seconds=2.0))
        assert r.status_code == 503, r.text
        assert s3.keys(bucket) == []  # the video sent before was deleted again
        assert kit.row_counts(core) == {"clips": 0, "jobs": 0, "series": 0}


def test_store_dropping_the_connection_mid_upload_answers_503(s3: MotoS3, tmp_path: Path,  # noqa: F811
                                                              kit: Any) -> None:
    from tests.conftest import Api  # type: ignore[import-not-found]
    from tests.s3server import CuttingProxy  # type: ignore[import-not-found]

    bucket = s3.new_bucket()
    proxy = CuttingProxy(s3.endpoint)
    clip = kit.small_clip(tmp_path / "c.mp4", seconds=3.0)
    try:
        st = _settings(tmp_path / "data", s3, bucket, s3={"max_retries": 0, "timeout_seconds": 2})
        st.storage.s3.endpoint_url = proxy.endpoint
        with LiveServer(st) as srv:
            acc = Api(srv.url).register("cut@example.com")
            creds = acc.upload_credentials(acc.camera()["id"])
            proxy.cut_after(clip.stat().st_size // 2)  # half of the video's PUT body reaches the server
            r = acc.upload(creds, clip)
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "storage_unavailable"
            assert proxy.cuts >= 1
            assert s3.keys(bucket) == []  # no half object
            assert kit.row_counts(srv.core) == {"clips": 0, "jobs": 0, "series": 0}
            assert _files(Path(st.data_dir) / "staging") == []
            proxy.limit = None  # the store is back: the camera's next try is stored
            r = acc.upload(creds, clip)
            assert r.status_code == 201, r.text
            assert acc.wait_event(r.json()["event_id"])["status"] == "done"
            assert len(s3.keys(bucket)) == 2  # video and thumbnail
    finally:
        proxy.close()


def test_alarm_mail_goes_out_without_its_picture_while_the_store_is_down(s3: MotoS3, tmp_path: Path,  # noqa: F811
                                                                          kit: Any) -> None:
    from alarmcloud.notify import _email_picture

    from tests.conftest import Api  # type: ignore[import-not-found]

    own = MotoS3()
    try:
        st = _settings(tmp_path / "data", own, own.new_bucket(), s3={"max_retries": 0, "timeout_seconds": 2})
        with LiveServer(st) as srv:
            acc = Api(srv.url).register("mail@example.com")
            ev = acc.upload_analysed(acc.upload_credentials(acc.camera()["id"]), kit.small_clip(tmp_path / "c.mp4"))
            assert _email_picture(srv.core, {"event_id": ev["id"]})  # the thumbnail, read from the bucket
            own.stop()
            assert _email_picture(srv.core, {"event_id": ev["id"]}) is None  # not an error that holds the alarm
    finally:
        own.stop()


def test_ftp_clips_sent_while_the_store_is_down_are_kept_and_stored_when_it_is_back(
        s3: MotoS3, tmp_path: Path, kit: Any) -> None:  # noqa: F811
    """An FTP camera counts a clip as delivered at "226": one that cannot be stored then waits in the spool, survives
    a restart, and is stored when the store is back; a deleted camera's waiting clips are deleted, not stored."""
    import ftplib

    from alarmcloud.ftp import start_ftp_server

    from tests.conftest import Api  # type: ignore[import-not-found]
    from tests.s3server import CuttingProxy  # type: ignore[import-not-found]

    bucket = s3.new_bucket()
    proxy = CuttingProxy(s3.endpoint)
    st = _settings(tmp_path / "data", s3, bucket, s3={"max_retries": 0, "timeout_seconds": 2})
    st.storage.s3.endpoint_url = proxy.endpoint
    st.ftp.passive_ports = ""
    spool = Path(st.data_dir) / "ftp-spool"
    clip = kit.small_clip(tmp_path / "A_20240501-101500.mp4", seconds=2.0)

    def send(srv: Any, creds: dict[str, Any]) -> None:
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", srv.port, timeout=30)
        ftp.login(creds["username"], creds["password"])
        with clip.open("rb") as fh:
            assert ftp.storbinary(f"STOR {clip.name}", fh).startswith("226")  # delivered, as the camera sees it
        ftp.quit()

    try:
        with LiveServer(st) as srv:
            acc = Api(srv.url).register("ftp-spool@example.com")
            garage = acc.camera("Garage")
            porch = acc.camera("Porch")
            ftp_srv = start_ftp_server(srv.core, port=0, host="127.0.0.1")
            try:
                proxy.cut_after(0)  # the object store is unreachable
                send(ftp_srv, acc.upload_credentials(garage["id"]))
                send(ftp_srv, acc.upload_credentials(porch["id"]))
                assert sorted(p.parent.name for p in _files(spool)) == sorted([garage["id"], porch["id"]])
                assert ftp_srv.retry_spool() == 0  # still down: both wait
                assert kit.row_counts(srv.core) == {"clips": 0, "jobs": 0, "series": 0}
                assert acc.delete(f"/api/v1/cameras/{porch['id']}").status_code == 204
            finally:
                ftp_srv.stop()
        proxy.limit = None  # the store is back; the server restarts
        with LiveServer(st) as srv:
            ftp_srv = start_ftp_server(srv.core, port=0, host="127.0.0.1")
            acc = Api(srv.url).login("ftp-spool@example.com")
            try:
                deadline = time.monotonic() + 30  # the first spool pass runs a second after the start
                while not (items := acc.get("/api/v1/events").json()["items"]) and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert [e["camera_id"] for e in items] == [garage["id"]], items
                ev = acc.wait_event(items[0]["id"])
                assert ev["status"] == "done", ev
                blob_key, _ = _clip_keys(srv.core, ev["id"])
                assert s3.read(bucket, f"alarmcloud/{blob_key}") == clip.read_bytes()
                assert _files(spool) == []  # stored, and the deleted camera's clip deleted
                # a crash after the commit but before the spool's copy of the first try was removed: after the
                # restart that copy waits like the others, and it is not stored twice
                ftp_srv.stop()
                again = spool / garage["id"] / f".inflight-{time.time_ns()}-{clip.name}"
                again.parent.mkdir(parents=True, exist_ok=True)
                again.write_bytes(clip.read_bytes())
                os.utime(again, (time.time() - 60, time.time() - 60))  # written before the clip was stored
                ftp_srv = start_ftp_server(srv.core, port=0, host="127.0.0.1")
                deadline = time.monotonic() + 20
                while _files(spool) and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert _files(spool) == [] and len(acc.get("/api/v1/events").json()["items"]) == 1
            finally:
                ftp_srv.stop()
    finally:
        proxy.close()


def test_rain_recalibration_reads_the_released_clips_from_the_bucket(s3: MotoS3, tmp_path: Path,  # noqa: F811
                                                                     kit: Any) -> None:
    """With S3 storage the training copies live in the bucket; `alarmcloud rain recalibrate` without --samples
    reads them from there and leaves no copy behind."""
    pytest.importorskip("alarmcloud_detect_rain")
    from alarmcloud.cli import main

    from tests.conftest import Api  # type: ignore[import-not-found]

    bucket = s3.new_bucket()
    st = _settings(tmp_path / "data", s3, bucket)
    with LiveServer(st) as srv:
        acc = Api(srv.url).register("recal-s3@example.com")
        cam = acc.camera()
        assert acc.put(f"/api/v1/cameras/{cam['id']}/detectors", json={"rain": True}).status_code == 200
        creds = acc.upload_credentials(cam["id"])
        for i, label in enumerate(("rain", "rain", "not_rain", "not_rain")):
            ev = acc.upload_analysed(creds, kit.small_clip(tmp_path / f"c{i}.mp4", seconds=4.0 + i / 4, fps=25))
            r = acc.post(f"/api/v1/events/{ev['id']}/feedback", json={"detector": "rain", "label": label,
                                                                      "release": True})
            assert r.status_code == 201 and r.json()["released"] is True, r.text
    assert len(s3.keys(bucket, "alarmcloud/training/rain/")) == 4
    config = tmp_path / "alarmcloud.toml"
    s3cfg = st.storage.s3
    config.write_text(f'data_dir = "{st.data_dir.as_posix()}"\n[storage]\nbackend = "s3"\n[storage.s3]\n'
                      f'bucket = "{bucket}"\nendpoint_url = "{s3cfg.endpoint_url}"\nregion = "{s3cfg.region}"\n'
                      f'key_prefix = "alarmcloud"\naccess_key_id = "{s3cfg.access_key_id}"\n'
                      f'secret_access_key = "{s3cfg.secret_access_key.get_secret_value()}"\nallow_http = true\n')
    model = tmp_path / "rain.onnx"
    res = CliRunner().invoke(main, ["rain", "recalibrate", "--config", str(config), "--out", str(model)],
                             env={"ALARMCLOUD_CONFIG": "", "ALARMCLOUD_DATABASE_URL": ""})
    assert res.exit_code == 0, res.output
    assert "released feedback clips of the deployment: 4" in res.output
    assert "recalibrated on 4 clips (rain 2, not_rain 2" in res.output and model.exists()
    assert not list((Path(st.data_dir) / "staging").glob("training-*"))  # the download is gone
