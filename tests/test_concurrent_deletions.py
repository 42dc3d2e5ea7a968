"""An upload or a request that meets a camera deletion or an account erasure at the same moment.

The camera's upload is checked (probed, masked) before its clip is stored, which takes seconds; the owner may delete
the camera, or the account may be erased, in that time or while the clip's rows are being written. Whichever comes
first wins cleanly: the upload gets a 404 with a JSON error and leaves no file or row, or the deletion waits for
the clip and deletes it too. A request whose rows another transaction deleted under it gets a 409 ``conflict``, not
a 500. The PostgreSQL cases hold one transaction open at the racy point (several processes write at once there;
SQLite runs one write transaction at a time).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alarmcloud import ingest, jobs
from alarmcloud.models import Account, Camera, Clip, FindingRow
from alarmcloud.privacy_erase import delete_account_data
from alarmcloud.testing import LiveServer, settings_on, wait_for_lock_wait
from sqlmodel import select

BOTH_DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BOTH_DATABASES)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    with settings_on(request.param, tmp_path / "data", camera_networks=["127.0.0.0/8"]) as st:
        yield st


@pytest.fixture
def owner(api: Any, kit: Any, tmp_path: Path) -> tuple[Any, dict[str, Any], dict[str, Any], Path]:
    a = api().register("racing@example.com")
    cam = a.camera("Porch")
    return a, cam, a.upload_credentials(cam["id"]), kit.small_clip(tmp_path / "porch.mp4")


def _postgres_only(settings: Any) -> None:
    if not settings.database_url:
        pytest.skip("row locks: SQLite runs one write transaction at a time")


def _in_thread(fn: Callable[[], httpx.Response]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def _run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            out.append(exc)

    t = threading.Thread(target=_run)
    t.start()
    return t, out


def _assert_nothing_stored(core: Any, kit: Any, camera_id: str) -> None:
    with core.db.session() as s:
        assert s.exec(select(Clip).where(Clip.camera_id == camera_id)).all() == []
    assert [f for f in kit.stored_files(core) if f.endswith((".mp4", ".jpg"))] == []


def test_camera_deleted_while_its_upload_is_checked(
    owner: Any, server: LiveServer, kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner deletes the camera after the upload was probed and before its clip is stored: 404, no file, no
    row (it used to be a 500 from a failed assertion), and the server goes on serving."""
    a, cam, creds, clip = owner
    core: Any = server.core
    real_probe = ingest.safe_probe
    deleted: list[int] = []

    def probe_then_delete(*args: Any, **kw: Any) -> Any:
        result = real_probe(*args, **kw)
        deleted.append(a.delete(f"/api/v1/cameras/{cam['id']}").status_code)  # the owner, meanwhile
        return result

    monkeypatch.setattr(ingest, "safe_probe", probe_then_delete)
    r = a.upload(creds, clip)
    assert deleted == [204]
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "unknown_camera"
    _assert_nothing_stored(core, kit, cam["id"])
    monkeypatch.setattr(ingest, "safe_probe", real_probe)
    assert a.get("/api/v1/cameras").json()["items"] == []
    other = a.camera("Garden")
    assert a.upload(a.upload_credentials(other["id"]), clip).status_code == 201


def test_upload_during_an_account_erasure_waits_and_stores_nothing(
    owner: Any, server: LiveServer, kit: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The account's erasure starts while an upload is being checked and has deleted the rows, not committed, when
    the upload goes to store its clip: the upload waits for it, then answers 404 and leaves no file (it used to
    insert its clip, fail the foreign key check and answer 500)."""
    _postgres_only(settings)
    a, cam, creds, clip = owner
    core: Any = server.core
    real_probe = ingest.safe_probe
    probed, erasing = threading.Event(), threading.Event()

    def probe_then_wait(*args: Any, **kw: Any) -> Any:
        result = real_probe(*args, **kw)
        probed.set()
        assert erasing.wait(60)
        return result

    monkeypatch.setattr(ingest, "safe_probe", probe_then_wait)
    t, out = _in_thread(lambda: a.upload(creds, clip))
    assert probed.wait(60)
    with core.db.session() as s:
        delete_account_data(s, a.id)  # the erasure's deletes, not committed yet
        erasing.set()
        wait_for_lock_wait(core.db)
        assert t.is_alive()
        s.commit()
    t.join(60)
    assert not t.is_alive()
    r = out[0]
    assert isinstance(r, httpx.Response) and r.status_code == 404, out
    assert r.json()["error"]["code"] == "unknown_camera"
    with core.db.session() as s:
        assert s.get(Camera, cam["id"]) is None
    _assert_nothing_stored(core, kit, cam["id"])
    assert httpx.get(server.url + "/-/health").status_code == 200


def test_camera_deleted_while_an_upload_stores_its_clip(
    owner: Any, server: LiveServer, kit: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner deletes the camera while an upload is writing its clip's rows: the deletion waits for that clip
    and deletes it too (204 and 201, then no clip, no file); it used to fail its foreign key check with a 500."""
    _postgres_only(settings)
    a, cam, creds, clip = owner
    core: Any = server.core
    inside, go = threading.Event(), threading.Event()
    real_enqueue = jobs.enqueue

    def held_enqueue(*args: Any, **kw: Any) -> Any:  # in the upload's transaction, after its clip row
        inside.set()
        assert go.wait(60)
        return real_enqueue(*args, **kw)

    monkeypatch.setattr(jobs, "enqueue", held_enqueue)
    upload, up = _in_thread(lambda: a.upload(creds, clip))
    assert inside.wait(60)
    deletion, gone = _in_thread(lambda: a.delete(f"/api/v1/cameras/{cam['id']}"))
    wait_for_lock_wait(core.db)
    assert deletion.is_alive()
    go.set()
    upload.join(60)
    deletion.join(60)
    assert isinstance(up[0], httpx.Response) and up[0].status_code == 201, up
    assert isinstance(gone[0], httpx.Response) and gone[0].status_code == 204, gone
    assert a.get(f"/api/v1/events/{up[0].json()['event_id']}").status_code == 404
    with core.db.session() as s:
        assert s.get(Camera, cam["id"]) is None
    _assert_nothing_stored(core, kit, cam["id"])


def test_a_request_whose_account_is_erased_under_it_gets_409(owner: Any, server: LiveServer,
                                                             settings: Any) -> None:
    """The owner creates an API token while the account's erasure is deleting its rows: the token's insert fails
    its foreign key check once the erasure commits. The answer is a 409 ``conflict`` in the JSON error shape, no
    token is left, and the server goes on serving."""
    _postgres_only(settings)
    a, _cam, _creds, _clip = owner
    core: Any = server.core
    with core.db.session() as s:
        delete_account_data(s, a.id)
        t, out = _in_thread(lambda: a.post("/api/v1/tokens", json={"name": "script"}))
        wait_for_lock_wait(core.db)
        s.commit()
    t.join(60)
    r = out[0]
    assert isinstance(r, httpx.Response) and r.status_code == 409, out
    assert r.json()["error"]["code"] == "conflict"
    assert "nothing was saved" in r.json()["error"]["message"]
    with core.db.engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM api_tokens")).scalar() == 0
    assert httpx.get(server.url + "/-/health").status_code == 200


def test_an_erasure_that_deadlocks_with_a_detection_write_back_starts_again(
    owner: Any, server: LiveServer, settings: Any, kit: Any
) -> None:
    """A worker writing back a clip's findings holds the clip row and needs the account's key share; the erasure
    holds the account and waits for the clip. PostgreSQL rolls back the one that waited first, the erasure: it starts
    again once the write-back has committed and deletes its rows too (it used to answer 500, then 503)."""
    _postgres_only(settings)
    a, cam, creds, clip = owner
    core: Any = server.core
    ev = a.upload_analysed(creds, clip)
    with core.db.session() as s:
        held = s.get(Clip, ev["id"], with_for_update=True)  # the write-back's first step
        assert held is not None
        mine = s.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
        t, out = _in_thread(lambda: a.delete("/api/v1/me", json={"password": "correct horse battery staple"}))
        # the erasure waits for the clip (for this transaction: a moment's wait on a background task's row would let
        # this side's deadlock check come first)
        wait_for_lock_wait(core.db, blocked_by=mine)
        s.add(FindingRow(clip_id=held.id, account_id=held.account_id, detector="rain", label="rain", score=0.9))
        s.flush()  # waits for the account until the database breaks the deadlock
        s.commit()
    t.join(60)
    r = out[0]
    assert isinstance(r, httpx.Response) and r.status_code == 200, out
    with core.db.session() as s:
        assert s.get(Account, a.id) is None
        assert s.exec(select(FindingRow).where(FindingRow.account_id == a.id)).all() == []
    _assert_nothing_stored(core, kit, cam["id"])
