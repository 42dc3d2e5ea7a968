"""Erasure (Art. 17): every row and blob of the account goes, another account stays; inactive accounts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from alarmcloud import crypto, events, oauth
from alarmcloud.models import Account, Clip, UsageHour, utcnow
from alarmcloud.privacy import run_retention
from alarmcloud.testing import LiveServer, settings_on
from sqlmodel import select

BOTH_DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BOTH_DATABASES)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Every test here runs on SQLite and on a fresh database of a real PostgreSQL server."""
    with settings_on(request.param, tmp_path / "data", camera_networks=["127.0.0.0/8"]) as st:
        yield st


def test_delete_me_removes_every_row_and_blob(api: Any, server: LiveServer, privacy: Any, tmp_path: Path) -> None:
    core: Any = server.core
    seen: list[str] = []

    async def _hook(event: events.Event) -> None:
        # plugins hear account.deleted while the rows still exist (to revoke platform links)
        if event.type == events.ACCOUNT_DELETED:
            with core.db.session() as s:
                seen.append(event.account_id if s.get(Account, event.account_id) else "gone")

    orig_emit = core.emit

    async def _emit(event: events.Event) -> None:
        await _hook(event)
        await orig_emit(event)

    core.emit = _emit
    a = privacy.populate(api, tmp_path, "gone@example.com", subuser="sub-gone@example.com")
    b = privacy.populate(api, tmp_path, "stays@example.com")
    acc = a["api"]
    r = acc.post("/api/v1/me/exports")
    assert r.status_code == 202
    privacy.link_ifttt(core, acc.id)  # OAuth grant, tokens, pseudonym, consent ledger entry
    anyio.run(lambda: core.services.set_state("ifttt", acc.id, "trigger:abc", {"fields": {"camera": "Garage"}}))
    privacy.link_ifttt(core, b["api"].id)
    clip_ids = [a["event_id"]]
    with core.db.session() as s:
        b_clip = s.get(Clip, b["event_id"])
        assert b_clip is not None
    training = list((Path(core.settings.data_dir) / "training").rglob("*.mp4"))
    assert {p.stem for p in training} == {a["event_id"], b["event_id"]}
    with core.db.session() as s:
        pseudonym = oauth.pseudonym_for(s, "ifttt", acc.id)
        s.commit()
    needles = [acc.id, a["subuser_id"], a["camera"]["id"], *clip_ids, "gone@example.com", pseudonym,
               crypto.token_hash(a["token"])]
    assert privacy.scan(core, needles)  # the scan finds the account before erasure

    # re-authentication is required
    assert acc.delete("/api/v1/me", json={"password": "wrong password 123"}).status_code == 401
    assert acc.delete("/api/v1/me", json={}).status_code == 400
    r = acc.delete("/api/v1/me", json={"password": "correct horse battery staple"})
    assert r.status_code == 200, r.text
    assert seen == [acc.id, a["subuser_id"]]
    # the DELETE request itself is counted for the erased account after the erasure: no row comes back,
    # and the other account's usage in the same batch is still written
    b["api"].get("/api/v1/me")
    core.usage.flush()
    hits = privacy.scan(core, needles)
    assert hits == [], hits
    # and no file whose name does not say whose it is (temporary export files, ...) is left but the other account's
    root = Path(core.settings.data_dir)
    left = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
            and not p.name.startswith(("alarmcloud.db", "secret.key", "erasures.jsonl"))
            and not any(n in str(p) for n in (b["api"].id, b["event_id"]))]
    assert left == [], left
    # the erasure register (a restore of an older backup erases them again) holds their ids and times, nothing else
    register = (root / "erasures.jsonl").read_text()
    assert sorted((x["kind"], x["id"]) for x in map(json.loads, register.splitlines())) == sorted(
        [("account", acc.id), ("account", a["subuser_id"])])
    assert "@" not in register and "Garage" not in register and pseudonym not in register
    # tokens and sessions are gone
    assert httpx.get(server.url + "/api/v1/me", headers={"Authorization": f"Bearer {a['token']}"}).status_code == 401
    assert acc.get("/api/v1/me").status_code == 401
    # the other account is untouched
    bb = b["api"]
    assert bb.get("/api/v1/me").json()["email"] == "stays@example.com"
    assert [li["integration"] for li in bb.get("/api/v1/me/links").json()["items"]] == ["ifttt"]
    assert bb.get(f"/api/v1/events/{b['event_id']}/video").status_code == 200
    assert sorted(c["kind"] for c in bb.get("/api/v1/me/consents").json()["items"]) == ["clip_release",
                                                                                        "integration_grant"]
    assert (Path(core.settings.data_dir) / "training" / "rain" / "rain" / f"{b['event_id']}.mp4").exists()
    assert privacy.scan(core, [bb.id, b["camera"]["id"], b["event_id"]])
    with core.db.session() as s:
        assert s.exec(select(UsageHour).where(UsageHour.subject == f"account:{bb.id}")).first() is not None


def test_inactive_account_notice_then_erasure(api: Any, server: LiveServer, privacy: Any, tmp_path: Path) -> None:
    core: Any = server.core
    a = privacy.populate(api, tmp_path, "sleepy@example.com")
    b = privacy.populate(api, tmp_path, "awake@example.com")
    cfg = core.settings.privacy
    old = utcnow() - timedelta(days=cfg.inactive_days + 1)
    _age(core, a["api"].id, old)
    dry = run_retention(core, dry_run=True)
    assert dry["inactive_accounts"]["noticed"] == [a["api"].id]
    report = run_retention(core)
    assert report["inactive_accounts"]["noticed"] == [a["api"].id]
    from alarmcloud.models import Outbox
    from sqlmodel import select

    with core.db.session() as s:
        mails = s.exec(select(Outbox).where(Outbox.account_id == a["api"].id, Outbox.kind == "email")).all()
        assert any("deleted" in m.payload["subject"] for m in mails)
        acc = s.get(Account, a["api"].id)
        assert acc.deletion_notice_at is not None
        # the grace period passes without a login
        acc.deletion_notice_at = utcnow() - timedelta(days=cfg.inactive_grace_days + 1)
        s.add(acc)
        s.commit()
    report = run_retention(core)
    assert report["inactive_accounts"]["erased"] == [a["api"].id]
    assert privacy.scan(core, [a["api"].id, a["camera"]["id"], a["event_id"], "sleepy@example.com"]) == []
    assert b["api"].get("/api/v1/me").status_code == 200


def _age(core: Any, account_id: str, when: Any) -> None:
    """Make the account (its last request and its logins) look inactive since ``when``."""
    from alarmcloud.models import SessionRow
    from sqlmodel import select

    with core.db.session() as s:
        acc = s.get(Account, account_id)
        acc.last_active_at = when
        s.add(acc)
        for row in s.exec(select(SessionRow).where(SessionRow.account_id == account_id)).all():
            row.created_at = row.last_seen_at = when
            s.add(row)
        s.commit()


def test_logging_in_after_the_notice_keeps_the_account(api: Any, server: LiveServer, privacy: Any,
                                                       tmp_path: Path) -> None:
    """The notice says "log in before then to keep it": a login (even a short visit) cancels the erasure."""
    core: Any = server.core
    a = privacy.populate(api, tmp_path, "back@example.com")
    cfg = core.settings.privacy
    _age(core, a["api"].id, utcnow() - timedelta(days=cfg.inactive_days + 1))
    assert run_retention(core)["inactive_accounts"]["noticed"] == [a["api"].id]
    with core.db.session() as s:
        acc = s.get(Account, a["api"].id)
        acc.deletion_notice_at = utcnow() - timedelta(days=cfg.inactive_grace_days + 1)
        s.add(acc)
        s.commit()
    back = api().login("back@example.com", "correct horse battery staple")  # the customer comes back
    report = run_retention(core)["inactive_accounts"]
    assert report["reactivated"] == [a["api"].id] and report["erased"] == []
    assert back.get(f"/api/v1/events/{a['event_id']}/video").status_code == 200
    with core.db.session() as s:
        assert s.get(Account, a["api"].id).deletion_notice_at is None


def test_the_server_runs_the_retention_task_on_schedule(settings: Any, monkeypatch: Any) -> None:
    """Retention (access log, inactive accounts, ...) runs by itself while the server runs, with no operator."""
    from alarmcloud import privacy
    from alarmcloud.models import AccessLog
    from sqlmodel import select

    monkeypatch.setattr(privacy, "RETENTION_INTERVAL", 0.2)
    with LiveServer(settings) as srv:
        core: Any = srv.core
        with core.db.session() as s:
            s.add(AccessLog(at=utcnow() - timedelta(days=91), ip_prefix="10.0.0.0/24", method="GET", path="/stale",
                            status=200))
            s.commit()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with core.db.session() as s:
                if s.exec(select(AccessLog).where(AccessLog.path == "/stale")).first() is None:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError("the retention task did not run")


def test_erasure_while_an_export_runs_leaves_no_copy(api: Any, server: LiveServer, privacy: Any, tmp_path: Path,
                                                     monkeypatch: Any) -> None:
    """An export still being written when the account is erased must not leave its ZIP (all the data) behind."""
    import threading

    from alarmcloud import privacy_export

    core: Any = server.core
    a = privacy.populate(api, tmp_path, "racing@example.com")
    acc = a["api"]
    written, erased = threading.Event(), threading.Event()
    real = privacy_export.zip_chunks

    def slow_chunks(*args: Any, **kw: Any) -> Any:
        yield from real(*args, **kw)
        written.set()
        erased.wait(30)  # the whole ZIP is written, and the account goes before it is stored

    monkeypatch.setattr(privacy_export, "zip_chunks", slow_chunks)
    r = acc.post("/api/v1/me/exports")
    assert r.status_code == 202
    assert written.wait(30)
    assert acc.delete("/api/v1/me", json={"password": "correct horse battery staple"}).status_code == 200
    erased.set()
    for t in threading.enumerate():
        if t.name == "alarmcloud-export":
            t.join(30)
    assert privacy.scan(core, [acc.id, a["camera"]["id"], a["event_id"], "racing@example.com"]) == []
    assert list(core.blobs.keys("exports")) == []


def test_usage_flushed_while_an_erasure_is_in_flight_waits_and_leaves_no_row(
    api: Any, server: LiveServer, privacy: Any, tmp_path: Path, settings: Any
) -> None:
    """PostgreSQL (several processes flush usage): an erasure has deleted the account's rows and not yet committed
    when a usage flush comes with a request of that account and one of another. The flush waits for the erasure,
    writes nothing for the erased account and the other account's usage all the same; the erasure commits."""
    if not settings.database_url:
        pytest.skip("row locks: SQLite runs one write transaction at a time")
    import threading

    from alarmcloud.privacy_erase import delete_account_data
    from alarmcloud.usage import UsageRecorder

    core: Any = server.core
    a = privacy.populate(api, tmp_path, "midway@example.com")
    b = privacy.populate(api, tmp_path, "bystander@example.com")
    core.usage.flush()
    with core.db.session() as s:
        before = s.exec(select(UsageHour).where(UsageHour.subject == f"account:{b['api'].id}")).one().requests
    # a recorder of its own, as another process has: the server's background flush (every 30 s) cannot take these
    # counts and leave the flush under test nothing to wait for
    usage = UsageRecorder(core)
    usage.add(a["api"].id, f"account:{a['api'].id}")
    usage.add(b["api"].id, f"account:{b['api'].id}")
    errors: list[BaseException] = []

    def flush() -> None:
        try:
            usage.flush()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    with core.db.session() as s:
        delete_account_data(s, a["api"].id)  # the erasure's deletes, not committed yet
        t = threading.Thread(target=flush)
        t.start()
        t.join(1.0)
        assert t.is_alive()  # the flush waits for the erasure
        s.commit()
    t.join(30)
    assert not t.is_alive() and errors == []
    with core.db.session() as s:
        assert s.get(Account, a["api"].id) is None
        assert s.exec(select(UsageHour).where(UsageHour.account_id == a["api"].id)).all() == []
        after = s.exec(select(UsageHour).where(UsageHour.subject == f"account:{b['api'].id}")).one().requests
    assert after == before + 1
