"""``alarmcloud backup`` / ``restore`` on real files, real SQLite and real servers over loopback HTTP."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import sqlite3
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alarmcloud import backup, crypto, restore
from alarmcloud.cli import main
from alarmcloud.models import Camera
from alarmcloud.testing import LiveServer, test_settings
from click.testing import CliRunner

OWNER = "owner@example.com"
OTHER = "other@example.com"
CAMERA_PASSWORD = "cam-secret-1234"


def _settings(data_dir: Path) -> Any:
    # the embedded SQLite default, also when the suite runs against PostgreSQL
    return test_settings(data_dir, camera_networks=["127.0.0.0/8"], database_url=None)


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    return _settings(tmp_path / "data")


def _cli(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), prog_name="alarmcloud", env=env)


def _manifest(archive: Path) -> dict[str, Any]:
    with tarfile.open(archive) as tar:
        first = tar.next()
        assert first is not None and first.name == "manifest.json"
        fh = tar.extractfile(first)
        assert fh is not None
        return json.loads(fh.read())


def _clip_ids(manifest: dict[str, Any]) -> set[str]:
    return {Path(m["name"]).stem for m in manifest["members"]
            if m["name"].startswith("blobs/") and m["name"].endswith(".mp4") and m["name"].count("/") == 3}


def _siblings(path: Path) -> list[str]:
    """What lies beside ``path`` (a failed restore must leave no temporary folder there)."""
    return sorted(p.name for p in path.parent.iterdir())


def _populate(api: Any, kit: Any, tmp_path: Path, clips: int) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    a = api().register(OWNER)
    cam = a.camera("Garage", username="admin", password=CAMERA_PASSWORD)
    creds = a.upload_credentials(cam["id"])
    for i in range(clips):
        a.upload_analysed(creds, kit.small_clip(tmp_path / f"c{i}.mp4", seconds=2 + i))
    return a, cam, creds


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A stopped deployment with two clips and a camera password, and a default backup of it (no key file)."""
    from tests.conftest import Api, small_clip  # type: ignore[import-not-found]

    root = tmp_path_factory.mktemp("stored")
    st = _settings(root / "data")
    with LiveServer(st) as srv:
        kit = type("Kit", (), {"small_clip": staticmethod(small_clip)})
        a, cam, _ = _populate(lambda: Api(srv.url), kit, root, clips=2)
        b = Api(srv.url).register(OTHER)
        b.upload_analysed(b.upload_credentials(b.camera("Porch")["id"]), small_clip(root / "other.mp4"))
        videos = {e["id"]: u.get(f"/api/v1/events/{e['id']}/video").content
                  for u in (a, b) for e in u.get("/api/v1/events").json()["items"]}
    archive = root / "backup.tar"
    result = backup.create_backup(st, archive)
    yield {"data_dir": st.data_dir, "archive": archive, "manifest": result.manifest, "camera": cam,
           "videos": videos, "owner": a.id, "other": b.id}


# ---------------------------------------------------------------- the round trip


def test_backup_while_serving_then_restore_serves_the_same_accounts_events_and_clips(
        server: Any, api: Any, kit: Any, settings: Any, tmp_path: Path) -> None:
    a, cam, creds = _populate(api, kit, tmp_path, clips=2)
    more = [kit.small_clip(tmp_path / f"more{i}.mp4", seconds=2 + i) for i in range(2)]
    uploaded: list[int] = []

    def keep_uploading() -> None:  # the server keeps taking clips while the backup runs
        for path in more:
            uploaded.append(a.upload(creds, path).status_code)

    uploader = threading.Thread(target=keep_uploading)
    uploader.start()
    dest = tmp_path / "out" / "backup.tar"
    res = _cli("backup", str(dest), "--data-dir", str(settings.data_dir), "--include-keys")
    uploader.join()
    assert res.exit_code == 0, res.output
    assert uploaded == [201, 201]
    assert "backup" in res.output and "clips" in res.output and " s" in res.output
    assert dest.exists() and not dest.with_name("backup.tar.partial").exists()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["backup.tar"]  # no temporary snapshot left
    assert oct(dest.stat().st_mode & 0o777) == "0o600"

    manifest = _manifest(dest)
    assert manifest["format"] == "alarmcloud-backup" and manifest["keys_included"] is True
    assert manifest["counts"]["missing"] == 0 and manifest["missing"] == []
    with sqlite3.connect(settings.data_dir / "alarmcloud.db") as con:
        head = con.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    assert manifest["schema_revision"] == head
    in_backup = _clip_ids(manifest)
    assert 2 <= len(in_backup) <= 4 and manifest["counts"]["clips"] == len(in_backup)
    # every member is listed with its true size and hash
    with tarfile.open(dest) as tar:
        members = {m.name: m for m in tar.getmembers()[1:]}
        assert set(members) == {m["name"] for m in manifest["members"]}
        for entry in manifest["members"]:
            fh = tar.extractfile(members[entry["name"]])
            assert fh is not None
            data = fh.read()
            assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["size"], entry["sha256"])
    live = {eid: a.get(f"/api/v1/events/{eid}/video").content for eid in in_backup}
    assert all(live.values())

    target = tmp_path / "restored"
    res = _cli("restore", str(dest), "--data-dir", str(target))
    assert res.exit_code == 0, res.output
    assert "restored" in res.output and f"{len(in_backup)} clips" in res.output

    with LiveServer(_settings(target)) as srv2:
        from tests.conftest import Api  # type: ignore[import-not-found]

        owner = Api(srv2.url).login(OWNER)
        events = owner.get("/api/v1/events").json()["items"]
        assert {e["id"] for e in events} == in_backup
        for eid in in_backup:
            r = owner.get(f"/api/v1/events/{eid}/video")
            assert r.status_code == 200 and r.content == live[eid]
        # the key file came along: the camera password decrypts on the restored deployment
        core: Any = srv2.core
        with core.db.session() as s:
            row = s.get(Camera, cam["id"])
            assert core.secret_box.decrypt(row.password_enc, f"camera:{row.id}:password") == CAMERA_PASSWORD


def test_default_backup_leaves_the_key_out_and_restore_takes_the_saved_key_file(
        stored: dict[str, Any], tmp_path: Path) -> None:
    manifest = stored["manifest"]
    assert manifest["keys_included"] is False and "secret.key" not in {m["name"] for m in manifest["members"]}
    assert manifest["key_ids"] == ["k1"]  # the camera password is encrypted under the generated key
    archive = stored["archive"]

    wrong = tmp_path / "wrong.key"
    wrong.write_text(crypto.generate_key())
    target = tmp_path / "r1"
    res = _cli("restore", str(archive), "--data-dir", str(target), "--key-file", str(wrong))
    assert res.exit_code == 1 and "does not decrypt" in res.output
    assert not target.exists() and _siblings(target) == ["wrong.key"]

    res = _cli("restore", str(archive), "--data-dir", str(target), "--key-file", str(stored["data_dir"] / "secret.key"))
    assert res.exit_code == 0, res.output
    assert oct((target / "secret.key").stat().st_mode & 0o777) == "0o600"
    st = _settings(target)
    box = crypto.secret_box(st)
    from alarmcloud.db import Database

    database = Database(st.db_url)
    with database.session() as s:
        row = s.get(Camera, stored["camera"]["id"])
        assert box.decrypt(row.password_enc, f"camera:{row.id}:password") == CAMERA_PASSWORD
    database.dispose()

    bare = tmp_path / "r2"
    res = _cli("restore", str(archive), "--data-dir", str(bare))
    assert res.exit_code == 0, res.output
    assert not (bare / "secret.key").exists()
    assert "secret.key" in res.output and "k1" in res.output  # told what to copy before the first start


def test_restore_migrates_a_backup_of_an_older_schema(tmp_path: Path) -> None:
    from alarmcloud import db

    st = _settings(tmp_path / "old")
    db.migrate(st.db_url, "0008")
    with sqlite3.connect(st.data_dir / "alarmcloud.db") as con:
        con.execute("INSERT INTO accounts (id, email, password_hash, role, created_at, last_active_at, restricted, "
                    "notify_email, notify_only_real, notify_cooldown_seconds) VALUES ('a1', 'old@example.com', 'x', "
                    "'customer', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 0, 1, 1, 60)")
    result = backup.create_backup(st, tmp_path / "old.tar")
    assert result.manifest["schema_revision"] == "0008" and result.manifest["counts"]["accounts"] == 1
    restored = restore.restore_backup(tmp_path / "old.tar", tmp_path / "new")
    assert restored.migrated_from == "0008"
    _, head = restore._head_revisions()
    with sqlite3.connect(tmp_path / "new" / "alarmcloud.db") as con:
        assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head != "0008"
        assert con.execute("SELECT email FROM accounts").fetchall() == [("old@example.com",)]


# ---------------------------------------------------------------- files deleted during a backup, interruptions


def test_a_clip_deleted_between_snapshot_and_copy_is_reported_not_fatal(
        stored: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    shutil.copytree(stored["data_dir"], data)
    victim = sorted(stored["videos"])[0]
    real = backup.read_snapshot

    def snapshot_then_retention(path: Path) -> Any:
        snap = real(path)
        for clip_id, blob, thumb in snap.clips:  # retention deletes the clip right after the snapshot
            if clip_id == victim:
                for key in (blob, thumb):
                    if key:
                        (data / "blobs" / key).unlink()
        return snap

    monkeypatch.setattr(backup, "read_snapshot", snapshot_then_retention)
    with caplog.at_level(logging.WARNING, logger="alarmcloud"):
        result = backup.create_backup(_settings(data), tmp_path / "b.tar")
    manifest = _manifest(tmp_path / "b.tar")
    assert manifest["counts"]["missing"] == 2 and {m["clip_id"] for m in manifest["missing"]} == {victim}
    assert manifest["counts"]["clips"] == 3 and _clip_ids(manifest) == set(stored["videos"]) - {victim}
    assert result.missing == manifest["missing"]
    assert victim in caplog.text
    restored = restore.restore_backup(tmp_path / "b.tar", tmp_path / "r")
    assert restored.files == manifest["counts"]["files"] and restored.dropped == [victim]
    # the restored deployment has no event without its video: that clip is gone as retention meant it to be
    with sqlite3.connect(tmp_path / "r" / "alarmcloud.db") as con:
        ids = {r[0] for r in con.execute("SELECT id FROM clips")}
        keys = [r[0] for r in con.execute("SELECT blob_key FROM clips")]
    assert ids == set(stored["videos"]) - {victim}
    assert all((tmp_path / "r" / "blobs" / k).is_file() for k in keys)


def test_an_interrupted_backup_leaves_the_previous_one_and_no_partial_file(
        stored: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dest = tmp_path / "backup.tar"
    shutil.copy(stored["archive"], dest)
    before = dest.read_bytes()
    real = backup._add_member
    calls = []

    def crash_on_third(tar: Any, m: Any) -> Any:
        calls.append(m.name)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(tar, m)

    monkeypatch.setattr(backup, "_add_member", crash_on_third)
    with pytest.raises(OSError):
        backup.create_backup(_settings(stored["data_dir"]), dest)
    assert dest.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.tar"]


def test_postgresql_is_refused_with_what_to_do_and_blobs_only_copies_the_store(
        stored: dict[str, Any], tmp_path: Path) -> None:
    env = {"ALARMCLOUD_DATABASE_URL": "postgresql://alarm:hunter2hunter2@db.example/alarmcloud"}
    res = _cli("backup", str(tmp_path / "b.tar"), "--data-dir", str(stored["data_dir"]), env=env)
    assert res.exit_code == 1
    assert "pg_dump" in res.output and "--blobs-only" in res.output and "hunter2" not in res.output
    assert not (tmp_path / "b.tar").exists()

    res = _cli("backup", str(tmp_path / "b.tar"), "--data-dir", str(stored["data_dir"]), "--blobs-only", env=env)
    assert res.exit_code == 0, res.output
    manifest = _manifest(tmp_path / "b.tar")
    names = {m["name"] for m in manifest["members"]}
    assert manifest["database"] is None and "alarmcloud.db" not in names
    assert _clip_ids(manifest) == set(stored["videos"])
    restored = restore.restore_backup(tmp_path / "b.tar", tmp_path / "r")
    assert not (tmp_path / "r" / "alarmcloud.db").exists() and restored.files == len(names)


# ---------------------------------------------------------------- refused archives and targets


def _flip_byte_in_a_clip(archive: Path) -> None:
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".mp4"))
    with open(archive, "r+b") as fh:
        fh.seek(member.offset_data + member.size // 2)
        b = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([b[0] ^ 0x01]))


def _truncate(archive: Path) -> None:
    with open(archive, "r+b") as fh:
        fh.truncate(archive.stat().st_size // 2)


@pytest.mark.parametrize(("damage", "message"), [(_flip_byte_in_a_clip, "SHA-256"), (_truncate, "truncated")])
def test_a_damaged_archive_is_refused_and_nothing_is_written(
        stored: dict[str, Any], tmp_path: Path, damage: Any, message: str) -> None:
    archive = tmp_path / "b.tar"
    shutil.copy(stored["archive"], archive)
    damage(archive)
    target = tmp_path / "restored"
    res = _cli("restore", str(archive), "--data-dir", str(target))
    assert res.exit_code == 1 and message in res.output, res.output
    assert not target.exists() and _siblings(target) == ["b.tar"]


def _rebuild(src: Path, dst: Path, extra: tarfile.TarInfo, data: bytes = b"", listed: bool = True) -> None:
    """A copy of a real backup with one more member (listed in the manifest with its true hash, or not)."""
    with tarfile.open(src) as tar:
        members = tar.getmembers()
        files = {m.name: tar.extractfile(m).read() for m in members}  # type: ignore[union-attr]
    manifest = json.loads(files.pop("manifest.json"))
    if listed:
        manifest["members"].append({"name": extra.name, "size": len(data),
                                    "sha256": hashlib.sha256(data).hexdigest()})
    with tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as out:
        body = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(body)
        out.addfile(info, io.BytesIO(body))
        for m in members[1:]:
            out.addfile(m, io.BytesIO(files[m.name]))
        out.addfile(extra, io.BytesIO(data) if extra.isreg() else None)


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, size
    return info


@pytest.mark.parametrize(("extra", "message"), [
    (_member("../evil", size=5), "unsafe path"),
    (_member("blobs/../../evil", size=5), "unsafe path"),
    ("absolute", "unsafe path"),
    (_member("blobs/link.mp4", tarfile.SYMTYPE, "../../evil"), "symbolic link"),
    (_member("blobs/hard.mp4", tarfile.LNKTYPE, "alarmcloud.db"), "hard link"),
    (_member("blobs/fifo", tarfile.FIFOTYPE), "device"),
    (_member("evil.sh", size=5), "not part of an alarmcloud backup"),
    # a backup never holds an erasure register: one planted there cannot replace or hide the live one's lines
    (_member("erasures.jsonl", size=5), "not part of an alarmcloud backup"),
])
@pytest.mark.parametrize("listed", [True, False], ids=["in-manifest", "not-in-manifest"])
def test_a_hostile_member_is_refused_and_nothing_is_written(
        stored: dict[str, Any], tmp_path: Path, extra: Any, message: str, listed: bool) -> None:
    if extra == "absolute":
        extra = _member(str(tmp_path / "evil"), size=5)
    archive = tmp_path / "hostile.tar"
    _rebuild(stored["archive"], archive, extra, b"evil\n" if extra.isreg() else b"", listed)
    target = tmp_path / "work" / "restored"
    target.parent.mkdir()
    res = _cli("restore", str(archive), "--data-dir", str(target))
    assert res.exit_code == 1 and message in res.output, res.output
    assert not target.exists() and _siblings(target) == []
    assert not (tmp_path / "evil").exists() and not (tmp_path / "work" / "evil").exists()


def test_restore_into_a_non_empty_folder_is_refused(stored: dict[str, Any], tmp_path: Path) -> None:
    target = tmp_path / "data"
    target.mkdir()
    (target / "alarmcloud.db").write_text("the current deployment")
    res = _cli("restore", str(stored["archive"]), "--data-dir", str(target))
    assert res.exit_code == 1 and "is not empty" in res.output and "alarmcloud.db" in res.output
    assert sorted(p.name for p in target.iterdir()) == ["alarmcloud.db"]
    assert (target / "alarmcloud.db").read_text() == "the current deployment"
    assert _siblings(target) == ["data"]
    # an empty folder is fine (e.g. a freshly mounted volume)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _cli("restore", str(stored["archive"]), "--data-dir", str(empty)).exit_code == 0
    assert (empty / "alarmcloud.db").is_file()


def test_restore_can_erase_again_the_accounts_erased_after_the_backup(stored: dict[str, Any], tmp_path: Path) -> None:
    from tests.conftest import privacy_scan  # type: ignore[import-not-found]

    target = tmp_path / "restored"
    res = _cli("restore", str(stored["archive"]), "--data-dir", str(target), "--erase", OWNER.upper(),
               "--erase", "gone@example.com")
    assert res.exit_code == 0, res.output
    assert "erased again: 1 account(s)" in res.output and "not in the backup: gone@example.com" in res.output
    # and the restored folder's erasure register has it, so the next restore of an old backup erases it too
    lines = [json.loads(x) for x in (target / "erasures.jsonl").read_text().splitlines()]
    assert [(x["kind"], x["id"]) for x in lines] == [("account", stored["owner"])]
    from alarmcloud.db import Database

    st = _settings(target)
    database = Database(st.db_url)
    core = type("Core", (), {"db": database, "settings": st})()
    owner_clips = [c for c in stored["videos"] if c not in _other_clips(stored)]
    assert privacy_scan(core, [stored["owner"], OWNER, *owner_clips]) == []  # no row, no file of the owner
    assert privacy_scan(core, [stored["other"]])  # the other account is untouched
    database.dispose()
    for cid in _other_clips(stored):
        assert list((target / "blobs").rglob(f"{cid}.mp4"))


def _other_clips(stored: dict[str, Any]) -> set[str]:
    return {Path(m["name"]).stem for m in stored["manifest"]["members"]
            if m["name"].startswith(f"blobs/{stored['other']}/") and m["name"].endswith(".mp4")}


def test_help_says_what_the_commands_do() -> None:
    out = _cli("backup", "--help").output
    assert "Back up" in out and "consistent" in out and "--include-keys / --no-keys" in out and "--blobs-only" in out
    out = _cli("restore", "--help").output
    assert "Restore a backup" in out and "SHA-256" in out and "--key-file" in out and "--erase" in out
    assert "--erasures" in out and "erasure register" in out
