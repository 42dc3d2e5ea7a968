"""Rectification (Art. 16) and restriction (Art. 18) through ``PATCH /api/v1/me``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anyio
from alarmcloud import events
from alarmcloud.models import Outbox
from alarmcloud.testing import LiveServer
from sqlmodel import select

PASSWORD = "correct horse battery staple"


def test_email_and_password_change_need_reauthentication_and_confirmation(api: Any, server: LiveServer) -> None:
    core: Any = server.core
    a = api().register("old@example.com")
    assert a.patch("/api/v1/me", json={"email": "new@example.com"}).status_code == 403
    r = a.patch("/api/v1/me", json={"email": "new@example.com", "current_password": "wrong password!!"})
    assert r.status_code == 401
    r = a.patch("/api/v1/me", json={"email": "new@example.com", "current_password": PASSWORD,
                                    "notify_email": True, "notify_cooldown_seconds": 60})
    assert r.status_code == 200, r.text
    me = a.get("/api/v1/me").json()
    assert me["email"] == "old@example.com" and me["pending_email"] == "new@example.com"
    assert me["notify_email"] is True and me["notify_cooldown_seconds"] == 60
    with core.db.session() as s:
        mail = s.exec(select(Outbox).where(Outbox.target == "new@example.com")).one()
    token = re.search(r"\n\n(\S+)\n\n", mail.payload["text"]).group(1)  # type: ignore[union-attr]
    assert a.post("/api/v1/me/email/confirm", json={"token": "nope"}).status_code == 400
    assert a.post("/api/v1/me/email/confirm", json={"token": token}).json()["email"] == "new@example.com"
    assert a.post("/api/v1/me/email/confirm", json={"token": token}).status_code == 400  # used once
    # password change: re-authentication, then the new password works and the old one does not
    r = a.patch("/api/v1/me", json={"password": "a brand new password", "current_password": PASSWORD})
    assert r.status_code == 200
    api().login("new@example.com", "a brand new password")
    assert a.http.post("/api/v1/auth/login", json={"email": "new@example.com", "password": PASSWORD}).status_code == 401


def test_restriction_stops_integrations_and_is_visible(api: Any, server: LiveServer, tmp_path: Path) -> None:
    core: Any = server.core
    a = api().register("restrict@example.com")
    received: list[str] = []

    core.plugins.call_each = _recorder(core.plugins.call_each, received)
    r = a.patch("/api/v1/me", json={"restricted": True})
    assert r.status_code == 200 and r.json()["restricted"] is True
    assert a.get("/api/v1/me").json()["restricted"] is True
    anyio.run(core.emit, events.Event(events.CLIP_STORED, a.id))
    assert received == []
    anyio.run(core.emit, events.Event(events.ACCOUNT_DELETED, a.id))  # deletion hooks still run
    assert received == [events.ACCOUNT_DELETED]
    a.patch("/api/v1/me", json={"restricted": False})
    anyio.run(core.emit, events.Event(events.CLIP_STORED, a.id))
    assert received[-1] == events.CLIP_STORED


def _recorder(orig: Any, received: list[str]) -> Any:
    async def call_each(name: str, **kw: Any) -> Any:
        if name == "handle_event":
            received.append(kw["event"].type)
        return await orig(name, **kw)

    return call_each


def test_restricted_account_clips_are_kept_but_not_analysed_or_shared(api: Any, server: LiveServer,
                                                                       privacy: Any, tmp_path: Path,
                                                                       monkeypatch: Any) -> None:
    """Art. 18: an upload of a restricted account is stored, but no detector, webhook or integration sees it."""
    import time

    from alarmcloud import jobs, pipeline
    from alarmcloud.models import Clip, FindingRow, Job

    core: Any = server.core
    analysed: list[str] = []
    real = pipeline.analyze_file

    def spy(host: Any, path: Path, *args: Any, **kw: Any) -> Any:
        analysed.append(path.stem)
        return real(host, path, *args, **kw)

    monkeypatch.setattr(pipeline, "analyze_file", spy)
    a = privacy.populate(api, tmp_path, "blocked@example.com")
    acc, cam = a["api"], a["camera"]
    assert acc.put(f"/api/v1/cameras/{cam['id']}/detectors", json={"rain": True}).status_code == 200
    core.settings.notify.webhook_networks = ["127.0.0.0/8"]
    r = acc.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["clip.stored",
                                                                                   "detections.ready"]})
    assert r.status_code == 201, r.text
    assert anyio.run(lambda: core.services.list_events(acc.id))  # integrations (IFTTT polling) see events
    assert acc.patch("/api/v1/me", json={"restricted": True}).json()["restricted"] is True

    r = acc.upload(acc.upload_credentials(cam["id"]), tmp_path / f"{acc.id}.mp4")
    assert r.status_code in (200, 201), r.text
    clip_id = r.json()["event_id"]
    ev = acc.wait_event(clip_id)
    assert ev["status"] == "skipped"
    assert acc.get(f"/api/v1/events/{clip_id}/video").status_code == 200  # the data is kept
    with core.db.session() as s:
        assert s.exec(select(Job).where(Job.clip_id == clip_id)).all() == []
        assert s.exec(select(FindingRow).where(FindingRow.clip_id == clip_id)).all() == []
        assert s.exec(select(Outbox).where(Outbox.account_id == acc.id, Outbox.kind == "webhook")).all() == []
    assert anyio.run(lambda: core.services.list_events(acc.id)) == []  # nothing for IFTTT polling either
    # a job queued before the switch: the worker finishes it without running any detector
    with core.db.session() as s:
        queued = jobs.enqueue(s, s.get(Clip, clip_id), jobs.NORMAL)
        s.commit()
        job_id = queued.id
    assert job_id is not None
    core.wake_workers()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with core.db.session() as s:
            if s.get(Job, job_id).state in ("done", "dead"):
                break
        time.sleep(0.1)
    with core.db.session() as s:
        assert s.get(Job, job_id).state == "done"
        assert s.exec(select(FindingRow).where(FindingRow.clip_id == clip_id)).all() == []
    assert clip_id not in analysed and acc.get(f"/api/v1/events/{clip_id}").json()["status"] == "skipped"
    acc.patch("/api/v1/me", json={"restricted": False})
    assert anyio.run(lambda: core.services.list_events(acc.id))
