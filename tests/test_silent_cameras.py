"""Silent cameras: with ``silent_after_days`` set, a camera that sends no clip for that long is told about once (to
its people as they chose, and ``camera.silent`` to webhooks); its next clip ends the silence, and a later silence is
told again."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alarmcloud import silence
from alarmcloud.models import Camera, Clip, Outbox, iso, utcnow
from alarmcloud.testing import loopback_settings, test_settings
from sqlmodel import select

from tests.conftest import PASSWORD  # type: ignore[import-not-found]


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    return loopback_settings(tmp_path / "data")


def _rows(core: Any, camera_id: str) -> list[tuple[str, str]]:
    """(person, kind) of the messages and webhook deliveries about the camera falling silent."""
    with core.db.session() as s:
        rows = s.exec(select(Outbox)).all()
    out = []
    for r in rows:
        p = r.payload or {}
        if (r.kind == "webhook" and p.get("type") == "camera.silent" and p.get("camera_id") == camera_id) or (
                r.kind != "webhook" and "sent no" in str(p.get("subject") or p.get("title") or "")):
            out.append((r.account_id, r.kind))
    return sorted(out)


def _age(core: Any, camera_id: str, days: float) -> None:
    """Make the camera's clips (and the camera) look that old."""
    with core.db.session() as s:
        then = utcnow() - timedelta(days=days)
        for clip in s.exec(select(Clip).where(Clip.camera_id == camera_id)).all():
            clip.received_at = clip.started_at = then
            s.add(clip)
        cam = s.get(Camera, camera_id)
        cam.created_at = then
        cam.last_clip_at = then if cam.last_clip_at else None
        s.add(cam)
        s.commit()


def test_a_camera_that_falls_silent_is_told_once_until_its_next_clip(server: Any, api: Any, clip: Path) -> None:
    import time

    core = server.core
    owner = api().register("watcher@example.com")
    assert owner.patch("/api/v1/me", json={"notify_email": True}).status_code == 200
    cam = owner.camera("Porch", silent_after_days=2)
    quiet = owner.camera("Attic")  # not watched
    assert cam["silent_after_days"] == 2 and cam["silent_notified_at"] is None
    r = owner.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["camera.silent"]})
    assert r.status_code == 201, r.text
    r = owner.post("/api/v1/subusers", json={"email": "family@example.com", "password": PASSWORD,
                                             "rights": {cam["id"]: "view"}})
    assert r.status_code == 201, r.text
    family = api().login("family@example.com")
    assert family.patch("/api/v1/me", json={"notify_email": True}).status_code == 200
    before = utcnow()
    owner.upload_analysed(owner.upload_credentials(cam["id"]), clip)
    # the camera says when its latest clip arrived
    arrived = datetime.fromisoformat(owner.get(f"/api/v1/cameras/{cam['id']}").json()["last_clip_at"])
    assert before <= arrived <= utcnow()
    assert owner.get(f"/api/v1/cameras/{quiet['id']}").json()["last_clip_at"] is None
    assert f'<time datetime="{iso(arrived)}">' in owner.get("/cameras").text

    assert silence.check(core) == []  # a clip just now: not silent
    _age(core, cam["id"], 1.5)
    _age(core, quiet["id"], 10)
    assert silence.check(core) == []  # 1.5 of 2 days
    _age(core, cam["id"], 3)
    assert silence.check(core) == [cam["id"]]
    deadline = time.monotonic() + 10  # the webhook row is queued by the event, on the server's loop
    while len(_rows(core, cam["id"])) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _rows(core, cam["id"]) == sorted([(owner.id, "email"), (family.id, "email"), (owner.id, "webhook")])
    with core.db.session() as s:
        (mail,) = [m for m in s.exec(select(Outbox).where(Outbox.account_id == owner.id, Outbox.kind == "email"))
                   if "sent no" in m.payload["subject"]]
    assert mail.payload["subject"] == "Camera Porch has sent no clip for 3 days"
    assert "power and network" in mail.payload["text"] and f"/cameras/{cam['id']}" in mail.payload["text"]
    shown = owner.get(f"/api/v1/cameras/{cam['id']}").json()
    assert shown["silent_notified_at"] is not None
    assert "No clip for 2+ days" in owner.get("/cameras").text
    assert silence.check(core) == []  # told once

    # its next clip ends the silence; a later one is told again
    owner.upload_analysed(owner.upload_credentials(cam["id"]), clip)
    assert owner.get(f"/api/v1/cameras/{cam['id']}").json()["silent_notified_at"] is None
    assert "No clip for" not in owner.get("/cameras").text
    _age(core, cam["id"], 5)
    assert silence.check(core, now=utcnow() + timedelta(days=1)) == [cam["id"]]  # a day on: past the quiet period


def test_a_camera_whose_uploads_are_refused_is_told_why(server: Any, api: Any, clip: Path, tmp_path: Path) -> None:
    """A camera that uploads what cannot be stored is silent too, and the notice says why its uploads are refused
    (not to check power and network); webhooks get the latest refusal."""
    import time

    core = server.core
    owner = api().register("refused@example.com")
    assert owner.patch("/api/v1/me", json={"notify_email": True}).status_code == 200
    r = owner.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["camera.silent"]})
    assert r.status_code == 201, r.text
    cam = owner.camera("Shed", silent_after_days=1)
    creds = owner.upload_credentials(cam["id"])
    owner.upload_analysed(creds, clip)
    _age(core, cam["id"], 3)
    bad = tmp_path / "not-a-video.mp4"
    bad.write_bytes(b"this is no video" * 100)
    r = owner.upload(creds, bad)
    assert r.status_code >= 400, r.text  # refused, recorded with its reason
    code = r.json()["error"]["code"]
    assert silence.check(core) == [cam["id"]]
    deadline = time.monotonic() + 10  # the webhook row is queued by the event, on the server's loop
    while len(_rows(core, cam["id"])) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    with core.db.session() as s:
        rows = s.exec(select(Outbox).where(Outbox.account_id == owner.id)).all()
    (mail,) = [m for m in rows if m.kind == "email" and "sent no" in m.payload["subject"]]
    (hook,) = [m for m in rows if m.kind == "webhook" and m.payload.get("type") == "camera.silent"]
    assert mail.payload["subject"] == "Camera Shed has sent no clip that could be stored for 3 days"
    assert "its uploads are refused" in mail.payload["text"] and f"({code})" in mail.payload["text"]
    assert "power and network" not in mail.payload["text"]
    assert hook.payload["last_refused"]["code"] == code and hook.payload["last_refused"]["message"]


def test_the_setting_is_checked_and_cleared(server: Any, api: Any) -> None:
    owner = api().register("settings@example.com")
    cam = owner.camera("Gate")
    for bad in (0, 31, "3", 2.5, True):
        r = owner.patch(f"/api/v1/cameras/{cam['id']}", json={"silent_after_days": bad})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_field", bad
    assert owner.patch(f"/api/v1/cameras/{cam['id']}", json={"silent_after_days": 30}).json()["silent_after_days"] == 30
    r = owner.patch(f"/api/v1/cameras/{cam['id']}", json={"silent_after_days": None})
    assert r.status_code == 200 and r.json()["silent_after_days"] is None
    r = owner.post("/api/v1/cameras", json={"name": "Barn", "brand": "instar", "model": "IN-9008 Full HD",
                                            "silent_after_days": 0})
    assert r.status_code == 400
    # a camera never heard from counts from when it was added
    new = owner.camera("Barn", silent_after_days=1)
    assert silence.check(server.core) == []
    assert silence.check(server.core, now=utcnow() + timedelta(days=1, minutes=1)) == [new["id"]]


def test_the_upgrade_fills_in_when_each_camera_last_sent_a_clip(tmp_path: Path) -> None:
    """Cameras with clips before the upgrade that adds ``last_clip_at`` are not taken for silent ones."""
    from alarmcloud import db
    from alarmcloud.app import AlarmCloud
    from alarmcloud.models import Account, Series, aware
    from alembic import command
    from sqlalchemy import text

    st = test_settings(tmp_path / "data")
    db.migrate(st.db_url)
    core = AlarmCloud(st)
    then = utcnow() - timedelta(hours=5)
    with core.db.session() as s:
        acc = Account(email="before@example.com", password_hash="x")
        s.add(acc)
        s.flush()
        used, unused = (Camera(account_id=acc.id, name=n, brand="instar", model="IN-9008") for n in ("A", "B"))
        s.add_all([used, unused])
        s.flush()
        series = Series(account_id=acc.id, camera_id=used.id, started_at=then, ended_at=then)
        s.add(series)
        s.flush()
        s.add_all([Clip(account_id=acc.id, camera_id=used.id, series_id=series.id, blob_key=f"k{n}",
                        received_at=then + timedelta(minutes=n)) for n in range(3)])
        s.commit()
        ids = used.id, unused.id
    core.db.dispose()
    command.downgrade(db.alembic_config(st.db_url), "0023")  # as before the upgrade
    db.migrate(st.db_url)
    core = AlarmCloud(st)
    with core.db.session() as s:
        got = dict(s.execute(text("SELECT id, last_clip_at FROM cameras")).all())
        assert got[ids[1]] is None
        assert aware(s.get(Camera, ids[0]).last_clip_at) == then + timedelta(minutes=2)
    core.db.dispose()
