"""Snooze: each person silences their own alarm messages (e-mail, push, Telegram) for one camera or every camera
for a while; the clips are still stored and analysed, webhooks still get them, the snooze ends by itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alarmcloud.models import Account, Outbox
from alarmcloud.testing import loopback_settings
from sqlmodel import select

from tests.conftest import PASSWORD  # type: ignore[import-not-found]


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    return loopback_settings(tmp_path / "data")


def _messages(core: Any, clip_id: str) -> set[tuple[str, str]]:
    """(person, kind) of every message queued about the clip."""
    with core.db.session() as s:
        rows = s.exec(select(Outbox)).all()
        return {(r.account_id, r.kind) for r in rows if clip_id in json.dumps(r.payload)}


def _alarm(person: Any, cam: dict[str, Any], creds: dict[str, Any], clip: Path) -> str:
    r = person.upload(creds, clip)
    assert r.status_code == 201, r.text
    ev = person.wait_event(r.json()["event_id"])
    assert ev["status"] == "done" and ev["verdict"] == "alarm", ev
    return str(ev["id"])


def _until(answer: str | None) -> float:
    assert answer is not None
    return (datetime.fromisoformat(answer) - datetime.now(UTC)).total_seconds() / 60


def _owner_of_two_cameras(api: Any, email: str) -> tuple[Any, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """An owner told of every alarm by e-mail (no quiet time), cameras Gate and Yard, their upload logins by id."""
    owner = api().register(email)
    assert owner.patch("/api/v1/me", json={"notify_email": True, "notify_cooldown_seconds": 0}).status_code == 200
    gate, yard = owner.camera("Gate"), owner.camera("Yard")
    return owner, gate, yard, {c["id"]: owner.upload_credentials(c["id"]) for c in (gate, yard)}


def test_a_snooze_silences_the_persons_messages_only_and_ends_by_itself(server: Any, api: Any, clip: Path) -> None:
    core = server.core
    owner, gate, yard, creds = _owner_of_two_cameras(api, "snoozer@example.com")
    r = owner.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"})
    assert r.status_code == 201, r.text
    r = owner.post("/api/v1/subusers", json={"email": "kid@example.com", "password": PASSWORD,
                                             "rights": {gate["id"]: "view"}})
    assert r.status_code == 201, r.text
    kid = api().login("kid@example.com")
    assert kid.patch("/api/v1/me", json={"notify_email": True, "notify_cooldown_seconds": 0}).status_code == 200
    assert owner.get("/api/v1/me/snooze").json() == {"all": None, "cameras": []}

    # the owner snoozes the gate for an hour: the kid still hears about it, the webhook still gets it
    r = owner.put("/api/v1/me/snooze", json={"minutes": 60, "camera_id": gate["id"]})
    assert r.status_code == 200, r.text
    ((entry),) = r.json()["cameras"]
    assert r.json()["all"] is None and entry["camera_id"] == gate["id"] and entry["name"] == "Gate"
    assert 59 < _until(entry["until"]) <= 60
    at_gate = _alarm(owner, gate, creds[gate["id"]], clip)
    assert _messages(core, at_gate) == {(kid.id, "email"), (owner.id, "webhook")}
    at_yard = _alarm(owner, yard, creds[yard["id"]], clip)
    assert _messages(core, at_yard) == {(owner.id, "email"), (owner.id, "webhook")}

    # every camera for half an hour, on top of it
    r = owner.put("/api/v1/me/snooze", json={"minutes": 30})
    assert r.status_code == 200 and 29 < _until(r.json()["all"]) <= 30 and len(r.json()["cameras"]) == 1
    at_yard = _alarm(owner, yard, creds[yard["id"]], clip)
    assert _messages(core, at_yard) == {(owner.id, "webhook")}
    # ending the one for every camera keeps the gate's; ending all ends that too
    r = owner.delete("/api/v1/me/snooze?camera_id=all")
    assert r.status_code == 200 and r.json()["all"] is None and len(r.json()["cameras"]) == 1
    r = owner.delete("/api/v1/me/snooze")
    assert r.status_code == 200 and r.json() == {"all": None, "cameras": []}
    at_gate = _alarm(owner, gate, creds[gate["id"]], clip)
    assert (owner.id, "email") in _messages(core, at_gate)

    # a snooze that has ended is one no more
    assert owner.put("/api/v1/me/snooze", json={"minutes": 5}).status_code == 200
    with core.db.session() as s:
        acc = s.get(Account, owner.id)
        acc.notify_snoozes = {"*": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()}
        s.add(acc)
        s.commit()
    assert owner.get("/api/v1/me/snooze").json() == {"all": None, "cameras": []}
    at_yard = _alarm(owner, yard, creds[yard["id"]], clip)
    assert (owner.id, "email") in _messages(core, at_yard)


def _missed(core: Any, account_id: str) -> list[dict[str, Any]]:
    """The messages that counted the alarms of an ended snooze (payloads, oldest first)."""
    with core.db.session() as s:
        rows = s.exec(select(Outbox).where(Outbox.account_id == account_id).order_by(Outbox.id)).all()
        return [r.payload for r in rows if str(r.payload.get("subject", "")).startswith("While snoozed")]


def test_the_end_of_a_snooze_tells_the_alarms_missed(server: Any, api: Any, clip: Path) -> None:
    from alarmcloud import snooze

    core = server.core
    owner, gate, yard, creds = _owner_of_two_cameras(api, "back@example.com")
    r = owner.post("/api/v1/subusers", json={"email": "partner@example.com", "password": PASSWORD,
                                             "rights": {yard["id"]: "view"}})
    assert r.status_code == 201, r.text
    partner = api().login("partner@example.com")
    assert partner.patch("/api/v1/me", json={"notify_email": True}).status_code == 200

    # resumed by hand: one message counts what came meanwhile, per camera
    assert owner.put("/api/v1/me/snooze", json={"minutes": 60}).status_code == 200
    assert partner.put("/api/v1/me/snooze", json={"minutes": 60}).status_code == 200
    _alarm(owner, gate, creds[gate["id"]], clip)
    _alarm(owner, gate, creds[gate["id"]], clip)
    _alarm(owner, yard, creds[yard["id"]], clip)
    assert _missed(core, owner.id) == []  # nothing while it lasts
    assert owner.put("/api/v1/me/snooze", json={"minutes": 90}).status_code == 200  # longer: the count goes on
    assert owner.delete("/api/v1/me/snooze").status_code == 200
    (told,) = _missed(core, owner.id)
    assert told["subject"] == "While snoozed: 3 alarms"
    assert "about every camera" in told["text"] and "(Gate: 2, Yard: 1)" in told["text"]
    # a snooze without alarms ends without a message
    assert owner.put("/api/v1/me/snooze", json={"minutes": 5, "camera_id": yard["id"]}).status_code == 200
    assert owner.delete(f"/api/v1/me/snooze?camera_id={yard['id']}").status_code == 200
    assert len(_missed(core, owner.id)) == 1

    # ended by itself: the server's look every minute tells it, once; a sub-user hears of their cameras only
    assert snooze.check(core) == 0  # the partner's has not ended yet
    assert snooze.check(core, now=datetime.now(UTC) + timedelta(minutes=61)) == 1
    (told,) = _missed(core, partner.id)
    assert told["subject"] == "While snoozed: 1 alarm" and "(Yard: 1)" in told["text"] and "Gate" not in told["text"]
    assert partner.get("/api/v1/me/snooze").json() == {"all": None, "cameras": []}
    assert snooze.check(core, now=datetime.now(UTC) + timedelta(minutes=62)) == 0
    assert len(_missed(core, partner.id)) == 1


def test_snooze_requests_are_checked(server: Any, api: Any) -> None:
    owner = api().register("careful@example.com")
    mine, theirs = owner.camera("Porch"), api().register("other@example.com").camera("Shed")
    for body, code in [({}, "missing_field"), ({"minutes": 0}, "invalid_field"), ({"minutes": 10081}, "invalid_field"),
                       ({"minutes": "60"}, "invalid_field"), ({"minutes": True}, "invalid_field"),
                       ({"minutes": 1.5}, "invalid_field"), ({"minutes": 5, "camera_id": 7}, "invalid_field"),
                       ({"minutes": 5, "until": "tomorrow"}, "unknown_field")]:
        r = owner.put("/api/v1/me/snooze", json=body)
        assert r.status_code == 400 and r.json()["error"]["code"] == code, (body, r.text)
    assert owner.put("/api/v1/me/snooze", json={"minutes": 10080}).status_code == 200  # a week at most
    # another account's camera, or one a sub-user was not given, answers like a missing one
    r = owner.put("/api/v1/me/snooze", json={"minutes": 5, "camera_id": theirs["id"]})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert owner.delete(f"/api/v1/me/snooze?camera_id={theirs['id']}").status_code == 404
    r = owner.post("/api/v1/subusers", json={"email": "helper@example.com", "password": PASSWORD, "rights": {}})
    assert r.status_code == 201, r.text
    helper = api().login("helper@example.com")
    assert helper.put("/api/v1/me/snooze", json={"minutes": 5, "camera_id": mine["id"]}).status_code == 404
    assert helper.get("/api/v1/me/snooze").json() == {"all": None, "cameras": []}  # the owner's is the owner's
    assert len(owner.get("/api/v1/me/snooze").json()["all"] or "") > 0
    assert api().get("/api/v1/me/snooze").status_code == 401
