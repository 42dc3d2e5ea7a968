"""Known plates: the owner's list of named cars (add, rename, announce or not, forget, a bounded list), the names on
the owner's pushes and pages, and nothing of the list for sub-users or other accounts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alarmcloud import notify
from alarmcloud.eventsapi import MAX_KNOWN_PLATES
from alarmcloud.models import Camera, Clip, KnownPlate, Outbox
from alarmcloud.testing import test_settings
from sqlmodel import col, select

PW = "another good pw"


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    st = test_settings(tmp_path / "data", camera_networks=["127.0.0.0/8"])
    st.notify.webhook_networks = ["127.0.0.0/8"]  # the stand-in push server runs on loopback
    return st


def test_add_rename_silence_and_forget_a_known_plate(api: Any) -> None:
    a = api().register("kp1@example.com")
    r = a.post("/api/v1/plates", json={"text": "m-ab 1234", "name": "  Family car "})
    assert r.status_code == 201, r.text
    car = r.json()
    assert car["text"] == "MAB1234" and car["name"] == "Family car" and car["notify"] is True
    assert a.post("/api/v1/plates", json={"text": "B XY 77", "name": "anna", "notify": False}).status_code == 201
    listed = a.get("/api/v1/plates").json()["items"]
    assert [(p["name"], p["text"], p["notify"]) for p in listed] == [("anna", "BXY77", False),
                                                                     ("Family car", "MAB1234", True)]  # by name

    r = a.patch(f"/api/v1/plates/{car['id']}", json={"name": "Our car", "notify": False})
    assert r.status_code == 200 and r.json() == {**car, "name": "Our car", "notify": False}
    r = a.patch(f"/api/v1/plates/{car['id']}", json={"notify": True})  # one field: the other stays
    assert r.json()["name"] == "Our car" and r.json()["notify"] is True
    assert a.patch(f"/api/v1/plates/{car['id']}", json={}).json()["name"] == "Our car"

    for body, code in (({"name": "   "}, "invalid_field"), ({"name": "a\nb"}, "invalid_field"),
                       ({"name": None}, "invalid_field"), ({"name": "x" * 101}, "invalid_field"),
                       ({"notify": "no"}, "invalid_field"), ({"text": "XY1"}, "unknown_field")):
        r = a.patch(f"/api/v1/plates/{car['id']}", json=body)
        assert r.status_code == 400 and r.json()["error"]["code"] == code, (body, r.text)
    for body in ({"text": "MAB1234", "name": ""}, {"text": "--", "name": "x"}, {"text": "MAB1", "name": "a\x07"}):
        assert a.post("/api/v1/plates", json=body).status_code == 400, body
    assert a.get("/api/v1/plates").json()["items"][1]["name"] == "Our car"  # nothing half-written

    assert a.delete(f"/api/v1/plates/{car['id']}").status_code == 204
    assert a.delete(f"/api/v1/plates/{car['id']}").status_code == 404
    assert a.patch(f"/api/v1/plates/{car['id']}", json={"notify": False}).json()["error"]["code"] == "not_found"
    assert [p["text"] for p in a.get("/api/v1/plates").json()["items"]] == ["BXY77"]


def test_another_account_cannot_see_change_or_delete_the_list(api: Any) -> None:
    a, b = api().register("kp2@example.com"), api().register("kp3@example.com")
    pid = a.post("/api/v1/plates", json={"text": "MAB1234", "name": "Family car"}).json()["id"]
    assert b.get("/api/v1/plates").json()["items"] == []
    for r in (b.patch(f"/api/v1/plates/{pid}", json={"name": "Mine now"}), b.delete(f"/api/v1/plates/{pid}")):
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert b.post("/api/v1/plates", json={"text": "MAB1234", "name": "Theirs"}).status_code == 201  # their own row
    assert a.get("/api/v1/plates").json()["items"] == [{"id": pid, "text": "MAB1234", "name": "Family car",
                                                        "notify": True}]


def test_the_list_is_bounded_and_saving_a_known_plate_again_still_works_at_the_limit(api: Any, server: Any) -> None:
    a = api().register("kp4@example.com")
    with server.core.db.session() as s:
        s.add_all([KnownPlate(account_id=a.id, text=f"X{i:05d}", name=f"car {i}") for i in range(MAX_KNOWN_PLATES - 1)])
        s.commit()
    assert a.post("/api/v1/plates", json={"text": "MAB1234", "name": "last"}).status_code == 201
    r = a.post("/api/v1/plates", json={"text": "MAB1235", "name": "one too many"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "limit_reached"
    assert str(MAX_KNOWN_PLATES) in r.json()["error"]["message"]
    r = a.post("/api/v1/plates", json={"text": "M-AB 1234", "name": "renamed", "notify": False})  # the same plate
    assert r.status_code == 201 and r.json()["name"] == "renamed"
    assert len(a.get("/api/v1/plates").json()["items"]) == MAX_KNOWN_PLATES


def _pushes(core: Any, account_id: str) -> list[str]:
    with core.db.session() as s:
        return [r.payload["message"] for r in s.exec(select(Outbox).where(
            Outbox.account_id == account_id, Outbox.kind == "push").order_by(col(Outbox.id))).all()]


def test_the_owners_pushes_name_known_plates_and_a_sub_users_do_not(api: Any, server: Any, clip: Path,
                                                                    receiver: Any) -> None:
    owner = api().register("kp5@example.com")
    cam = owner.camera("Gate")
    assert owner.patch("/api/v1/me", json={"notify_cooldown_seconds": 0}).status_code == 200
    assert owner.patch("/api/v1/me/push", json={"enabled": True, "url": receiver.url + "/o"}).status_code == 200
    r = owner.post("/api/v1/subusers", json={"email": "kp5-kid@example.com", "password": PW,
                                             "rights": {cam["id"]: "view"}})
    kid = api().login("kp5-kid@example.com", PW)
    assert kid.patch("/api/v1/me", json={"notify_cooldown_seconds": 0}).status_code == 200
    assert kid.patch("/api/v1/me/push", json={"enabled": True, "url": receiver.url + "/k"}).status_code == 200
    assert owner.post("/api/v1/plates", json={"text": "M-AB 1234", "name": "Family car"}).status_code == 201
    ev = owner.upload_analysed(owner.upload_credentials(cam["id"]), clip)
    assert r.status_code == 201 and ev["verdict"] == "alarm"
    core: Any = server.core
    findings = [{"detector": "plates", "label": "plate", "score": 0.93, "text": "MAB1234"},
                {"detector": "plates", "label": "plate", "score": 0.91, "text": "KXY987"}]
    with core.db.session() as s:  # the clip as the plates detector would have left it
        c, camera = s.get(Clip, ev["id"]), s.get(Camera, cam["id"])
        c.labels = ["plate"]
        notify.queue_notifications(core, s, c, camera, {"findings": findings})
        s.commit()
    owner_msg, kid_msg = _pushes(core, owner.id)[-1], _pushes(core, kid.id)[-1]
    assert owner_msg.endswith("\nPlate: KXY987, MAB1234 (Family car)")
    assert kid_msg.endswith("\nPlate: KXY987, MAB1234") and "Family car" not in kid_msg


def test_pages_name_known_plates_for_the_owner_only(api: Any, server: Any, clip: Path) -> None:
    from alarmcloud.models import FindingRow

    owner = api().register("kp6@example.com")
    cam = owner.camera("Gate")
    owner.post("/api/v1/subusers", json={"email": "kp6-kid@example.com", "password": PW,
                                         "rights": {cam["id"]: "view"}})
    kid = api().login("kp6-kid@example.com", PW)
    ev = owner.upload_analysed(owner.upload_credentials(cam["id"]), clip)
    with server.core.db.session() as s:
        s.add(FindingRow(clip_id=ev["id"], account_id=owner.id, detector="plates", label="plate", score=0.9,
                         text="MAB1234", time=1.0))
        s.commit()
    assert owner.post("/api/v1/plates", json={"text": "M-AB 1234", "name": "Uncle Bob"}).status_code == 201
    assert owner.put(f"/api/v1/cameras/{cam['id']}/detectors", json={"plates": True}).status_code == 200
    for path in ("/", f"/events/{ev['id']}", "/?plate=MAB1234"):
        mine, theirs = owner.get(path), kid.get(path)
        assert mine.status_code == theirs.status_code == 200
        assert "MAB1234" in mine.text and "Uncle Bob" in mine.text, path
        assert "MAB1234" in theirs.text and "Uncle Bob" not in theirs.text, path
    page = kid.get("/plates")
    assert page.status_code == 200 and "The account owner keeps the list" in page.text
    assert "Uncle Bob" not in page.text and "Gate" in page.text  # the cameras that read plates, not the list
