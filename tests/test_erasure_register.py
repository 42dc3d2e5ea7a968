"""The erasure register: accounts erased and clips and cameras deleted after a backup stay deleted when that backup
is restored (docs/backup.md)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alarmcloud import backup, erasures
from alarmcloud.cli import main
from alarmcloud.db import Database
from alarmcloud.models import Account, Camera, Clip, aware
from alarmcloud.testing import LiveServer, settings_on, test_settings
from click.testing import CliRunner
from sqlmodel import select

GONE = "gone@example.com"
SUB = "sub-of-gone@example.com"
KEEPS = "keeps@example.com"
OTHER = "other@example.com"


def _settings(data_dir: Path, **overrides: Any) -> Any:
    # the embedded SQLite default (what backup and restore copy), also when the suite runs against PostgreSQL
    return test_settings(data_dir, camera_networks=["127.0.0.0/8"], database_url=None, **overrides)


def _cli(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), prog_name="alarmcloud", env=env)


def _restored(data_dir: Path) -> dict[str, set[str]]:
    """Ids of the accounts, cameras and clips of a restored folder."""
    database = Database(_settings(data_dir).db_url)
    try:
        with database.session() as s:
            return {"accounts": set(s.exec(select(Account.id)).all()), "cameras": set(s.exec(select(Camera.id)).all()),
                    "clips": set(s.exec(select(Clip.id)).all())}
    finally:
        database.dispose()


def _files(data_dir: Path, name: str) -> list[Path]:
    """The files whose path names ``name`` (a deleted camera's empty folder stays, as on the live server)."""
    return [p for p in data_dir.rglob("*") if p.is_file() and name in str(p.relative_to(data_dir))]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A deployment backed up, then: one account erased (with its sub-user), one clip deleted by its owner, one
    camera deleted with its clip. The server is stopped after."""
    from tests.conftest import PASSWORD, Api, small_clip  # type: ignore[import-not-found]

    root = tmp_path_factory.mktemp("register")
    st = _settings(root / "data")
    with LiveServer(st) as srv:
        def clip(api: Any, creds: dict[str, Any], name: str, seconds: float) -> str:
            return str(api.upload_analysed(creds, small_clip(root / f"{name}.mp4", seconds=seconds))["id"])

        gone = Api(srv.url).register(GONE)
        gone_cam = gone.camera("Garage")
        gone_clip = clip(gone, gone.upload_credentials(gone_cam["id"]), "gone", 2)
        r = gone.post("/api/v1/subusers", json={"email": SUB, "password": PASSWORD, "rights": {gone_cam["id"]: "view"}})
        assert r.status_code == 201, r.text
        sub_id = r.json()["id"]

        keeps = Api(srv.url).register(KEEPS)
        garage = keeps.camera("Garage")
        creds = keeps.upload_credentials(garage["id"])
        deleted_clip = clip(keeps, creds, "deleted", 2)
        kept_clip = clip(keeps, creds, "kept", 3)
        porch = keeps.camera("Porch")
        porch_clip = clip(keeps, keeps.upload_credentials(porch["id"]), "porch", 2)

        other = Api(srv.url).register(OTHER)
        other_clip = clip(other, other.upload_credentials(other.camera("Door")["id"]), "other", 2)

        archive = root / "backup.tar"
        backup.create_backup(st, archive)

        # after the backup: the erasure and the deletions a restore of it must not undo
        assert gone.delete("/api/v1/me", json={"password": PASSWORD}).status_code == 200
        assert keeps.delete(f"/api/v1/events/{deleted_clip}").status_code == 204
        assert keeps.delete(f"/api/v1/cameras/{porch['id']}").status_code == 204
    yield {"root": root, "data_dir": st.data_dir, "archive": archive, "register": st.data_dir / "erasures.jsonl",
           "gone": gone.id, "sub": sub_id, "gone_camera": gone_cam["id"], "gone_clip": gone_clip,
           "keeps": keeps.id, "deleted_clip": deleted_clip, "kept_clip": kept_clip, "porch": porch["id"],
           "porch_clip": porch_clip, "garage": garage["id"], "other": other.id, "other_clip": other_clip}


def _assert_deleted_again(w: dict[str, Any], target: Path) -> None:
    ids = _restored(target)
    assert ids == _restored(w["data_dir"])  # as the live deployment has them (nothing was added after the backup)
    assert w["gone"] not in ids["accounts"] and w["sub"] not in ids["accounts"]
    assert ids["accounts"] == {w["keeps"], w["other"]}
    assert w["porch"] not in ids["cameras"] and w["garage"] in ids["cameras"]
    assert ids["clips"] == {w["kept_clip"], w["other_clip"]}
    for gone in (w["gone"], w["gone_clip"], w["deleted_clip"], w["porch_clip"], w["porch"]):
        assert _files(target, gone) == [], gone  # no video, thumbnail, export or training copy left
    for kept in (w["kept_clip"], w["other_clip"]):
        assert [p.suffix for p in _files(target / "blobs", kept)].count(".mp4") == 1, kept


def test_restore_with_the_register_deletes_again_what_was_deleted_after_the_backup(
        world: dict[str, Any], tmp_path: Path) -> None:
    from tests.conftest import PASSWORD, Api  # type: ignore[import-not-found]

    target = tmp_path / "restored"
    res = _cli("restore", str(world["archive"]), "--data-dir", str(target), "--erasures", str(world["register"]))
    assert res.exit_code == 0, res.output
    assert "deleted again: 2 account(s), 1 clip(s), 1 camera(s) with 1 clip(s)" in res.output, res.output
    # what the register holds, by kind (the erased account and its sub-user have a line each)
    assert "4 lines (2 accounts erased, 1 clip deleted, 1 camera deleted)" in res.output, res.output
    _assert_deleted_again(world, target)
    # the restored folder carries the register on: a later restore of an even older backup still has every line
    assert (target / "erasures.jsonl").read_bytes() == world["register"].read_bytes()

    with LiveServer(_settings(target)) as srv:  # what the customers see on the restored server
        for email in (GONE, SUB):
            r = httpx.post(srv.url + "/api/v1/auth/login", json={"email": email, "password": PASSWORD})
            assert r.status_code == 401, email
        keeps = Api(srv.url).login(KEEPS)
        assert [e["id"] for e in keeps.get("/api/v1/events").json()["items"]] == [world["kept_clip"]]
        assert keeps.get(f"/api/v1/events/{world['kept_clip']}/video").status_code == 200
        assert [c["name"] for c in keeps.get("/api/v1/cameras").json()["items"]] == ["Garage"]
        other = Api(srv.url).login(OTHER)
        assert other.get(f"/api/v1/events/{world['other_clip']}/video").status_code == 200


def test_restore_replays_the_configured_register_by_default(world: dict[str, Any], tmp_path: Path) -> None:
    target = tmp_path / "restored"
    res = _cli("restore", str(world["archive"]), "--data-dir", str(target),
               env={"ALARMCLOUD_DATA_DIR": str(world["data_dir"])})
    assert res.exit_code == 0, res.output
    assert f"erasure register {world['register']}" in res.output
    _assert_deleted_again(world, target)
    # without it (a trial restore) everything is back, and the command says so
    trial = tmp_path / "trial"
    res = _cli("restore", str(world["archive"]), "--data-dir", str(trial), "--no-erasures",
               env={"ALARMCLOUD_DATA_DIR": str(world["data_dir"])})
    assert res.exit_code == 0 and "No erasure register was replayed" in res.output, res.output
    assert {world["gone"], world["deleted_clip"]} <= _restored(trial)["accounts"] | _restored(trial)["clips"]
    assert not (trial / "erasures.jsonl").exists()


def test_the_register_holds_ids_and_times_only(world: dict[str, Any]) -> None:
    text = world["register"].read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert {(x["kind"], x["id"]) for x in lines} == {
        ("account", world["gone"]), ("account", world["sub"]), ("clip", world["deleted_clip"]),
        ("camera", world["porch"])}
    assert all(set(x) == {"v", "at", "kind", "id", "n"} for x in lines)
    for personal in (GONE, SUB, "@", "Porch", "Garage"):
        assert personal not in text
    assert os.stat(world["register"]).st_mode & 0o077 == 0


def test_unknown_ids_are_no_ops_and_a_torn_last_line_is_skipped(world: dict[str, Any], tmp_path: Path) -> None:
    register = tmp_path / "erasures.jsonl"
    erasures.append(register, "account", ["0" * 32])  # never existed
    erasures.append(register, "clip", [world["deleted_clip"], "f" * 32])
    erasures.append(register, "account", [world["gone"]])
    with open(register, "ab") as fh:
        fh.write(b'{"v":1,"at":"2026-11-21T10:00:00Z","kind":"clip","id":"' + world["kept_clip"][:9].encode())
    target = tmp_path / "restored"
    res = _cli("restore", str(world["archive"]), "--data-dir", str(target), "--erasures", str(register))
    assert res.exit_code == 0, res.output
    assert "the last line is cut short" in res.output and "1 unreadable line(s) skipped" in res.output
    assert "deleted again: 2 account(s), 1 clip(s), 0 camera(s) with 0 clip(s); 2 already absent" in res.output
    ids = _restored(target)
    assert world["gone"] not in ids["accounts"] and world["deleted_clip"] not in ids["clips"]
    assert {world["kept_clip"], world["porch_clip"], world["other_clip"]} <= ids["clips"]  # the torn line did nothing


def test_an_append_after_a_torn_line_starts_on_a_fresh_line(tmp_path: Path) -> None:
    register = tmp_path / "erasures.jsonl"
    erasures.append(register, "clip", ["a" * 32])
    with open(register, "ab") as fh:
        fh.write(b'{"v":1,"kind":"cl')  # the server died in the middle of a write
    erasures.append(register, "clip", ["b" * 32])
    read = erasures.read([register])
    assert [e.id for e in read.entries] == ["a" * 32, "b" * 32]
    assert read.skipped == 1 and "line 2 is not a register line" in read.warnings[0]


def test_a_failed_commit_voids_its_line_and_ids_only_are_accepted(tmp_path: Path) -> None:
    st = _settings(tmp_path / "data")
    with pytest.raises(RuntimeError), erasures.recorded(st, "clip", ["c" * 32]):
        raise RuntimeError("the commit failed")
    with erasures.recorded(st, "clip", ["d" * 32]):
        pass
    assert [e.id for e in erasures.read([erasures.register_path(st)]).entries] == ["d" * 32]
    with pytest.raises(ValueError, match="ids only"):
        erasures.append(tmp_path / "x.jsonl", "account", ["someone@example.com"])


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    """A register that cannot be written (its path is a folder)."""
    (tmp_path / "register").mkdir()
    return _settings(tmp_path / "data", privacy={"erasure_register": tmp_path / "register"})


def test_a_deletion_that_cannot_be_registered_does_not_happen(api: Any, kit: Any, tmp_path: Path) -> None:
    a = api().register(KEEPS)
    cam = a.camera("Garage")
    ev = a.upload_analysed(a.upload_credentials(cam["id"]), kit.small_clip(tmp_path / "c.mp4"))
    close = {"Connection": "close"}  # the server closes the connection of a request that failed: not kept
    assert a.delete(f"/api/v1/events/{ev['id']}", headers=close).status_code == 500
    assert a.get(f"/api/v1/events/{ev['id']}/video").status_code == 200  # still there, and deletable later
    from tests.conftest import PASSWORD  # type: ignore[import-not-found]

    assert a.delete("/api/v1/me", json={"password": PASSWORD}, headers=close).status_code == 500
    assert a.get("/api/v1/me").json()["email"] == KEEPS


def test_a_backup_never_holds_the_register(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "blobs" / "acc").mkdir(parents=True)
    (data / "blobs" / "acc" / "x.mp4").write_bytes(b"video")
    register = data / "blobs" / "erasures.jsonl"  # even where --blobs-only copies every file
    erasures.append(register, "account", ["e" * 32])
    st = _settings(data, privacy={"erasure_register": register})
    result = backup.create_backup(st, tmp_path / "b.tar", blobs_only=True)
    assert [m["name"] for m in result.manifest["members"]] == ["blobs/acc/x.mp4"]


def test_prune_drops_the_lines_older_than_the_oldest_backup(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    register = data / "erasures.jsonl"
    lines = [{"v": 1, "at": at, "kind": "account", "id": i * 32, "n": i} for at, i in
             (("2026-09-01T08:00:00Z", "a"), ("2026-10-31T23:59:59Z", "b"), ("2026-11-01T00:00:00Z", "c"))]
    register.write_text("".join(json.dumps(x) + "\n" for x in lines))
    env = {"ALARMCLOUD_DATA_DIR": str(data)}
    res = _cli("privacy", "erasures", "prune", "--before", "2026-11-01", "--dry-run", env=env)
    assert res.exit_code == 0 and "would drop 2 line(s)" in res.output, res.output
    assert len(register.read_text().splitlines()) == 3
    res = _cli("privacy", "erasures", "prune", "--before", "2026-11-01", env=env)
    assert res.exit_code == 0 and "dropped 2 line(s)" in res.output and "1 kept" in res.output, res.output
    assert [e.id for e in erasures.read([register]).entries] == ["c" * 32]
    erasures.append(register, "clip", ["d" * 32])  # appends go on into the new file
    assert [e.id for e in erasures.read([register]).entries] == ["c" * 32, "d" * 32]


def test_replay_onto_a_configured_deployment(world: dict[str, Any], tmp_path: Path) -> None:
    """PostgreSQL: the database comes back with pg_restore, the files with `restore --blobs-only`; the register is
    replayed onto the configured deployment (here a SQLite one restored without it)."""
    target = tmp_path / "restored"
    assert _cli("restore", str(world["archive"]), "--data-dir", str(target), "--no-erasures").exit_code == 0
    res = _cli("privacy", "erasures", "replay", "--data-dir", str(target), "--erasures", str(world["register"]),
               env={"ALARMCLOUD_DATABASE_URL": ""})
    assert res.exit_code == 0, res.output
    assert "deleted again: 2 account(s), 1 clip(s), 1 camera(s) with 1 clip(s)" in res.output
    _assert_deleted_again(world, target)


def test_a_register_kept_apart_goes_on_and_takes_the_accounts_erase_names(
        world: dict[str, Any], tmp_path: Path) -> None:
    apart = tmp_path / "offsite" / "erasures.jsonl"
    apart.parent.mkdir()
    apart.write_bytes(world["register"].read_bytes())
    target = tmp_path / "restored"
    res = _cli("restore", str(world["archive"]), "--data-dir", str(target), "--erase", OTHER,
               env={"ALARMCLOUD_PRIVACY__ERASURE_REGISTER": str(apart)})
    assert res.exit_code == 0, res.output
    assert f"erasure register {apart}" in res.output and "erased again: 1 account(s)" in res.output
    assert _restored(target)["accounts"] == {world["keeps"]}
    assert not (target / "erasures.jsonl").exists()  # the deployment's register is the one kept apart
    assert [(e.kind, e.id) for e in erasures.read([apart]).entries][-1] == ("account", world["other"])


def test_the_record_of_processing_lists_the_register(tmp_path: Path) -> None:
    res = _cli("privacy", "record", "--json", env={"ALARMCLOUD_DATA_DIR": str(tmp_path / "data")})
    assert res.exit_code == 0, res.output
    act = {a["name"]: a for a in json.loads(res.stdout)["activities"]}["core: erasure register"]
    assert act["data"] == ["ids of erased accounts, deleted events and deleted cameras", "time of the deletion",
                           "ids and creation times of withdrawn consents (releases for training, integration links)",
                           "camera ids and privacy mask rectangles as saved"]
    assert "backup" in act["retention"] and "prune" in act["retention"]


@pytest.mark.postgres
def test_replay_onto_a_postgresql_deployment(kit: Any, tmp_path: Path) -> None:
    """After pg_restore of an older dump: `privacy erasures replay` deletes again on the PostgreSQL database (row
    locks, every table) and in the blob store of the settings."""
    from tests.conftest import PASSWORD, Api  # type: ignore[import-not-found]

    with settings_on("postgres", tmp_path / "data", camera_networks=["127.0.0.0/8"]) as st:
        with LiveServer(st) as srv:
            gone = Api(srv.url).register(GONE)
            gone_cam = gone.camera("Garage")
            gone_clip = gone.upload_analysed(gone.upload_credentials(gone_cam["id"]),
                                             kit.small_clip(tmp_path / "g.mp4"))["id"]
            r = gone.post("/api/v1/subusers", json={"email": SUB, "password": PASSWORD,
                                                    "rights": {gone_cam["id"]: "view"}})
            assert r.status_code == 201, r.text
            keeps = Api(srv.url).register(KEEPS)
            creds = keeps.upload_credentials(keeps.camera("Garage")["id"])
            deleted = keeps.upload_analysed(creds, kit.small_clip(tmp_path / "d.mp4", seconds=2))["id"]
            kept = keeps.upload_analysed(creds, kit.small_clip(tmp_path / "k.mp4", seconds=3))["id"]
            porch = keeps.camera("Porch")["id"]
            porch_clip = keeps.upload_analysed(keeps.upload_credentials(porch),
                                               kit.small_clip(tmp_path / "p.mp4", seconds=4))["id"]
        # the register of the deletions made after the dump was taken (as the live server wrote them)
        register = tmp_path / "registers" / "erasures-web1.jsonl"
        erasures.append(register, "account", [gone.id, r.json()["id"], "0" * 32])
        erasures.append(register, "clip", [deleted])
        erasures.append(tmp_path / "registers" / "erasures-web2.jsonl", "camera", [porch])
        res = _cli("privacy", "erasures", "replay", "--erasures", str(register), "--erasures",
                   str(tmp_path / "registers" / "erasures-web2.jsonl"),
                   env={"ALARMCLOUD_DATABASE_URL": st.db_url, "ALARMCLOUD_DATA_DIR": str(st.data_dir)})
        assert res.exit_code == 0, res.output
        assert "deleted again: 2 account(s), 1 clip(s), 1 camera(s) with 1 clip(s); 2 already absent" in res.output
        database = Database(st.db_url)
        try:
            with database.session() as s:
                assert set(s.exec(select(Account.id)).all()) == {keeps.id}
                assert set(s.exec(select(Clip.id)).all()) == {kept}
                assert porch not in set(s.exec(select(Camera.id)).all())
        finally:
            database.dispose()
        for gone_id in (gone.id, gone_clip, deleted, porch_clip):
            assert _files(st.data_dir, gone_id) == [], gone_id
        assert _files(st.data_dir / "blobs", kept)


def test_a_register_older_than_the_backup_is_flagged(world: dict[str, Any], tmp_path: Path) -> None:
    """An off-site copy taken before the backup lacks every deletion since: the restore says so."""
    stale = tmp_path / "erasures.jsonl"
    stale.write_text(json.dumps({"v": 1, "at": "2020-01-01T00:00:00Z", "kind": "account", "id": "0" * 32,
                                 "n": "1"}) + "\n")
    res = _cli("restore", str(world["archive"]), "--data-dir", str(tmp_path / "restored"), "--erasures", str(stale))
    assert res.exit_code == 0, res.output
    assert "last line is from 2020-01-01T00:00:00Z, before this backup" in " ".join(res.output.split())
    assert "not the current register" in " ".join(res.output.split())


# ---------------------------------------------------------------- withdrawn consents, ended links, privacy masks

MASKS = [[0.0, 0.0, 0.5, 0.5]]


def _training(data_dir: Path, clip_id: str) -> list[Path]:
    return list((data_dir / "training").rglob(f"{clip_id}.mp4"))


@pytest.fixture(scope="module")
def withdrawn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A deployment backed up, then: a release for training withdrawn (another release of the customer stays), an
    integration link ended in each of the four ways (the customer unlinks, the platform revokes its last token, the
    platform's plugin reports an unlink, the operator removes the client; a fifth link stays), privacy masks saved on
    a camera with a stored clip. Before the backup, another camera got masks its stored clip lacks."""
    import anyio
    from alarmcloud import oauth
    from alarmcloud.models import PluginState

    from tests.conftest import Api, small_clip  # type: ignore[import-not-found]

    root = tmp_path_factory.mktemp("withdrawn")
    st = _settings(root / "data")
    with LiveServer(st) as srv:
        core: Any = srv.core
        a = Api(srv.url).register(KEEPS)
        garage = a.camera("Garage")
        creds = a.upload_credentials(garage["id"])
        withdrawn_clip = a.upload_analysed(creds, small_clip(root / "w.mp4", seconds=2))["id"]
        kept_clip = a.upload_analysed(creds, small_clip(root / "k.mp4", seconds=3))["id"]
        for clip_id in (withdrawn_clip, kept_clip):
            r = a.post(f"/api/v1/events/{clip_id}/feedback", json={"detector": "rain", "label": "rain",
                                                                    "release": True})
            assert r.status_code == 201, r.text
        porch = a.camera("Porch")
        porch_clip = a.upload_analysed(a.upload_credentials(porch["id"]), small_clip(root / "p.mp4", seconds=2))["id"]
        assert a.patch(f"/api/v1/cameras/{porch['id']}", json={"privacy_masks": MASKS}).status_code == 200
        clients: dict[str, tuple[str, str | None]] = {}
        tokens: dict[str, dict[str, Any]] = {}
        with core.db.session() as s:
            for how, integration in (("customer", "ifttt"), ("revoke", "ifttt"), ("plugin", "alexa"),
                                     ("operator", "google_home"), ("stays", "ifttt")):
                row, secret = oauth.add_client(s, how, integration, ["https://example.com/cb"], ["alarms:read"])
                clients[how] = (row.id, secret)
                tokens[how] = oauth.issue_tokens(s, a.id, row.id, ["alarms:read"])
            for plugin in ("alexa", "google_home", "ifttt"):  # what each integration's plugin keeps for the account
                s.add(PluginState(plugin=plugin, account_id=a.id, key="grant", value={"platform": plugin}))
            s.commit()
        releases = {c["subject"]: c["id"] for c in a.get("/api/v1/me/consents").json()["items"]
                    if c["kind"] == "clip_release"}

        archive = root / "backup.tar"
        backup.create_backup(st, archive)

        # after the backup
        r = a.delete(f"/api/v1/me/consents/{releases[withdrawn_clip]}")
        assert r.status_code == 200 and r.json()["training_copies_removed"] == 1
        assert a.delete(f"/api/v1/me/links/{clients['customer'][0]}").status_code == 204
        r = httpx.post(srv.url + "/oauth/revoke", data={"token": tokens["revoke"]["refresh_token"]},
                       auth=clients["revoke"])  # type: ignore[arg-type]
        assert r.status_code == 200
        anyio.run(core.services.unlink, a.id, "alexa")
        res = _cli("oauth", "remove-client", clients["operator"][0], env={"ALARMCLOUD_DATA_DIR": str(st.data_dir)})
        assert res.exit_code == 0 and "1 linked account(s) unlinked" in res.output, res.output
        assert a.patch(f"/api/v1/cameras/{garage['id']}", json={"privacy_masks": MASKS}).status_code == 200
        links = {i["client_id"] for i in a.get("/api/v1/me/links").json()["items"]}
        assert links == {clients["stays"][0]}
    yield {"root": root, "data_dir": st.data_dir, "archive": archive, "register": st.data_dir / "erasures.jsonl",
           "account": a.id, "garage": garage["id"], "porch": porch["id"], "withdrawn_clip": withdrawn_clip,
           "kept_clip": kept_clip, "porch_clip": porch_clip, "releases": releases, "clients": clients,
           "tokens": tokens}


def _principal(data_dir: Path, access_token: str, integration: str) -> Any:
    from alarmcloud import oauth

    database = Database(_settings(data_dir).db_url)
    try:
        with database.session() as s:
            return oauth.principal_for_token(s, access_token, integration)
    finally:
        database.dispose()


def _plugin_state(data_dir: Path) -> set[str]:
    from alarmcloud.models import PluginState

    database = Database(_settings(data_dir).db_url)
    try:
        with database.session() as s:
            return {p.plugin for p in s.exec(select(PluginState)).all()} - {"core"}
    finally:
        database.dispose()


def _consents(data_dir: Path) -> dict[int, Any]:
    from alarmcloud.models import Consent

    database = Database(_settings(data_dir).db_url)
    try:
        with database.session() as s:
            return {c.id: (c.kind, c.subject, c.withdrawn_at) for c in s.exec(select(Consent)).all()}
    finally:
        database.dispose()


def test_withdrawn_consents_and_ended_links_stay_withdrawn_after_a_restore(withdrawn: dict[str, Any],
                                                                          tmp_path: Path) -> None:
    w = withdrawn
    integrations = {"customer": "ifttt", "revoke": "ifttt", "plugin": "alexa", "operator": "google_home",
                    "stays": "ifttt"}
    # what a restore without the register brings back: the release, its training copy and every link
    trial = tmp_path / "trial"
    assert _cli("restore", str(w["archive"]), "--data-dir", str(trial), "--no-erasures").exit_code == 0
    assert _training(trial, w["withdrawn_clip"])
    for how, integration in integrations.items():
        assert _principal(trial, w["tokens"][how]["access_token"], integration) is not None, how
    assert _plugin_state(trial) == {"alexa", "google_home", "ifttt"}

    target = tmp_path / "restored"
    res = _cli("restore", str(w["archive"]), "--data-dir", str(target), "--erasures", str(w["register"]))
    assert res.exit_code == 0, res.output
    assert ("withdrawn again: 5 consent(s), 4 integration link(s) ended, 1 training copy(ies) removed"
            in " ".join(res.output.split())), res.output
    # the release: withdrawn when the customer withdrew it, the training copy gone; the other release stays
    live, restored = _consents(w["data_dir"]), _consents(target)
    release = w["releases"][w["withdrawn_clip"]]
    assert restored[release][2] is not None
    # (the line is written just before the commit: the same second, or the one before)
    assert 0 <= (aware(live[release][2]) - aware(restored[release][2])).total_seconds() < 2
    assert _training(target, w["withdrawn_clip"]) == []
    assert restored[w["releases"][w["kept_clip"]]][2] is None and len(_training(target, w["kept_clip"])) == 1
    # the links: no token of an ended link works again, the one the customer kept does
    for how, integration in integrations.items():
        p = _principal(target, w["tokens"][how]["access_token"], integration)
        assert (p is not None) == (how == "stays"), how
    # the Alexa and Google Home plugins' grants are gone with the links: nothing goes to those platforms; IFTTT's
    # stays with the link the customer kept
    assert _plugin_state(target) == {"ifttt"}
    assert {k: (v[0], v[2] is None) for k, v in restored.items()} == {k: (v[0], v[2] is None) for k, v in live.items()}


def test_privacy_masks_saved_after_the_backup_are_set_again_and_painted_into_the_restored_clips(
        withdrawn: dict[str, Any], tmp_path: Path) -> None:
    from alarmcloud.masks import masks_hash

    from tests.conftest import Api  # type: ignore[import-not-found]

    w = withdrawn
    target = tmp_path / "restored"
    res = _cli("restore", str(w["archive"]), "--data-dir", str(target), "--erasures", str(w["register"]))
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "privacy masks set again on 1 camera(s), 2 clip(s) queued for masking" in out, res.output
    assert f"camera {w['garage']}: 2 clip(s) stored without its current privacy masks are queued for masking" in out
    # masks saved before the backup and never applied: the operator is told how to apply them
    assert (f"camera {w['porch']}: 1 clip(s) stored without its current privacy masks; paint them in with "
            f"`alarmcloud privacy apply-masks {w['porch']} --data-dir {target}`") in out, res.output
    with LiveServer(_settings(target)) as srv:  # the restored server's mask runner paints them in
        a = Api(srv.url).login(KEEPS)
        assert a.get(f"/api/v1/cameras/{w['garage']}").json()["privacy_masks"] == MASKS
        deadline = time.monotonic() + 120
        while (job := a.get(f"/api/v1/cameras/{w['garage']}/privacy-masks/apply").json())["state"] != "done":
            assert job["state"] in ("queued", "running") and time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["done"] == 2 and job["pending_clips"] == 0
    database = Database(_settings(target).db_url)
    try:
        with database.session() as s:
            hashes = {c.id: c.privacy_masks_hash for c in s.exec(select(Clip)).all()}
    finally:
        database.dispose()
    assert hashes == {w["withdrawn_clip"]: masks_hash(MASKS), w["kept_clip"]: masks_hash(MASKS),
                      w["porch_clip"]: None}


def test_a_consent_line_does_not_withdraw_a_later_consent_with_the_same_number(
        withdrawn: dict[str, Any], tmp_path: Path) -> None:
    """A restored SQLite or PostgreSQL database numbers new consents from where the backup stood: a line of a
    consent given and withdrawn after the backup names the number a later consent gets."""
    w = withdrawn
    kept = w["releases"][w["kept_clip"]]
    register = tmp_path / "erasures.jsonl"
    erasures.append_lines(register, [erasures.new_line("consent", str(kept), created="2020-01-01T00:00:00Z")])
    target = tmp_path / "restored"
    res = _cli("restore", str(w["archive"]), "--data-dir", str(target), "--erasures", str(register))
    assert res.exit_code == 0, res.output
    assert "1 already absent" in res.output and "withdrawn again" not in res.output, res.output
    assert _consents(target)[kept][2] is None and len(_training(target, w["kept_clip"])) == 1


def test_the_new_lines_hold_ids_times_and_mask_geometry_only(withdrawn: dict[str, Any]) -> None:
    text = withdrawn["register"].read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert sorted(x["kind"] for x in lines) == ["consent"] * 5 + ["masks"] * 2  # the porch's before the backup
    for x in lines:
        extra = {"created"} if x["kind"] == "consent" else {"masks"}
        assert set(x) == {"v", "at", "kind", "id", "n"} | extra, x
    assert [x["masks"] for x in lines if x["kind"] == "masks"] == [MASKS, MASKS]
    for personal in (KEEPS, "@", "Garage", "rain", "ifttt", "customer"):
        assert personal not in text


@pytest.mark.postgres
def test_replay_of_consents_and_masks_onto_a_postgresql_deployment(privacy: Any, tmp_path: Path) -> None:
    """After pg_restore of an older dump: `privacy erasures replay` withdraws the consents again (the link's tokens
    stop working, the training copy goes) and sets the masks again with a mask job for the running server."""
    from alarmcloud import oauth
    from alarmcloud.models import Consent, MaskJob

    from tests.conftest import Api  # type: ignore[import-not-found]

    with settings_on("postgres", tmp_path / "data", camera_networks=["127.0.0.0/8"]) as st:
        with LiveServer(st) as srv:
            a = privacy.populate(lambda: Api(srv.url), tmp_path, KEEPS)
            core: Any = srv.core
            with core.db.session() as s:
                client, _ = oauth.add_client(s, "IFTTT", "ifttt", ["https://example.com/cb"], ["alarms:read"])
                token = oauth.issue_tokens(s, a["api"].id, client.id, ["alarms:read"])["access_token"]
                lines = [erasures.consent_line(c) for c in s.exec(select(Consent)).all()]
        lines.append(erasures.masks_line(a["camera"]["id"], MASKS))
        register = tmp_path / "erasures.jsonl"
        erasures.append_lines(register, lines)
        copy = st.data_dir / "training" / "rain" / "rain" / f"{a['event_id']}.mp4"
        assert copy.exists()
        res = _cli("privacy", "erasures", "replay", "--erasures", str(register),
                   env={"ALARMCLOUD_DATABASE_URL": st.db_url, "ALARMCLOUD_DATA_DIR": str(st.data_dir)})
        assert res.exit_code == 0, res.output
        assert ("withdrawn again: 2 consent(s), 1 integration link(s) ended, 1 training copy(ies) removed; privacy "
                "masks set again on 1 camera(s), 1 clip(s) queued for masking") in " ".join(res.output.split())
        assert not copy.exists()
        database = Database(st.db_url)
        try:
            with database.session() as s:
                assert all(c.withdrawn_at is not None for c in s.exec(select(Consent)).all())
                assert oauth.principal_for_token(s, token, "ifttt") is None
                assert s.get(Camera, a["camera"]["id"]).privacy_masks == MASKS  # type: ignore[union-attr]
                job = s.exec(select(MaskJob)).one()
                assert (job.camera_id, job.state, job.total) == (a["camera"]["id"], "queued", 1)
        finally:
            database.dispose()
