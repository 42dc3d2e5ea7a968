"""Known plates: the owner's list of named cars (add, rename, announce or not, forget, a bounded list), the names on
the owner's pushes and pages, and nothing of the list for sub-users or other accounts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from alarmcloud import notify
from alarmcloud.eventsapi import MAX_KNOWN_PLATES
from alarmcloud.models import Camera, Clip, FindingRow, KnownPlate, Outbox
from alarmcloud.testing import LiveServer, settings_on, test_settings
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
    assert car["close_reads"] is True
    assert a.post("/api/v1/plates", json={"text": "B XY 77", "name": "anna", "notify": False}).status_code == 201
    listed = a.get("/api/v1/plates").json()["items"]
    assert [(p["name"], p["text"], p["notify"]) for p in listed] == [("anna", "BXY77", False),
                                                                     ("Family car", "MAB1234", True)]  # by name
    r = a.patch(f"/api/v1/plates/{car['id']}", json={"close_reads": False})
    assert r.status_code == 200 and r.json()["close_reads"] is False and r.json()["name"] == "Family car"

    r = a.patch(f"/api/v1/plates/{car['id']}", json={"name": "Our car", "notify": False, "close_reads": True})
    assert r.status_code == 200 and r.json() == {**car, "name": "Our car", "notify": False}
    r = a.patch(f"/api/v1/plates/{car['id']}", json={"notify": True})  # one field: the other stays
    assert r.json()["name"] == "Our car" and r.json()["notify"] is True
    assert a.patch(f"/api/v1/plates/{car['id']}", json={}).json()["name"] == "Our car"

    for body, code in (({"name": "   "}, "invalid_field"), ({"name": "a\nb"}, "invalid_field"),
                       ({"name": None}, "invalid_field"), ({"name": "x" * 101}, "invalid_field"),
                       ({"notify": "no"}, "invalid_field"), ({"close_reads": 1}, "invalid_field"),
                       ({"text": "XY1"}, "unknown_field")):
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
                                                        "notify": True, "close_reads": True, "last_seen": None}]


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


def _book(*plates: tuple[str, str]) -> notify.PlateBook:
    return notify.PlateBook([KnownPlate(id=i, account_id="a", text=t, name=n) for i, (t, n) in enumerate(plates, 1)])


def test_a_read_one_character_off_is_the_known_plate_if_no_other_is_as_close() -> None:
    book = _book(("MAB1234", "Family car"), ("BXY77", "Anna"), ("AB12", "Short"), ("KXY9871", "Van 1"),
                 ("KXY9872", "Van 2"))
    exact_only = notify.PlateBook([KnownPlate(id=1, account_id="a", text="MAB1234", name="Car", close_reads=False)])
    assert exact_only.name("MAB1234") == "Car" and exact_only.match("MAB1Z34") == (None, False)
    assert book.match("m-ab 1234")[1] is True and book.name("M AB 1234") == "Family car"
    for read in ("MAB1Z34", "MAB234", "MAB12345", "NAB1234", "MAB123", "BXY7", "BXY771", "8XY77"):
        row, exact = book.match(read)
        assert row is not None and not exact, read
    assert book.name("MAB1Z34") == "Family car" and book.name("BXY7") == "Anna"
    # two characters off, a short plate one off, a read as close to two known plates: none of them
    for read in ("MAB1Z3X", "AB1234X", "AB13", "AB1", "KXY9873", "KXY987", "", "XXXXXXX"):
        assert book.match(read) == (None, False), read
    assert book.name("AB12") == "Short" and book.name("KXY9872") == "Van 2"  # exact beats close
    assert book.describe("MAB1Z34") == {"known": True, "name": "Family car", "notify": True, "known_plate_id": 1,
                                        "known_text": "MAB1234", "match": "close"}
    assert book.describe("KXY9873") == {"known": False, "name": None, "notify": True}


def _owner_and_sub_user(api: Any, tag: str) -> tuple[Any, dict[str, Any], Any]:
    """An owner with the camera "Gate", and a sub-user who may view it."""
    owner = api().register(f"{tag}@example.com")
    cam = owner.camera("Gate")
    r = owner.post("/api/v1/subusers", json={"email": f"{tag}-kid@example.com", "password": PW,
                                             "rights": {cam["id"]: "view"}})
    assert r.status_code == 201, r.text
    return owner, cam, api().login(f"{tag}-kid@example.com", PW)


def _read(core: Any, clip_id: str, account_id: str, text: str) -> None:
    with core.db.session() as s:
        s.add(FindingRow(clip_id=clip_id, account_id=account_id, detector="plates", label="plate", score=0.9,
                         text=text, time=1.0))
        s.commit()


def test_a_close_read_names_the_plate_for_the_owner_and_silences_it_and_the_list_says_when_each_was_last_seen(
        api: Any, server: Any, clip: Path) -> None:
    core: Any = server.core
    owner, cam, kid = _owner_and_sub_user(api, "kp7")
    car = owner.post("/api/v1/plates", json={"text": "MAB1234", "name": "Family car", "notify": False}).json()
    van = owner.post("/api/v1/plates", json={"text": "KXY987", "name": "Postal van"}).json()
    creds = owner.upload_credentials(cam["id"])
    older, newer = (owner.upload_analysed(creds, clip)["id"] for _ in range(2))
    with core.db.session() as s:  # a day apart, whatever order the uploads finished in
        a, b = s.get(Clip, older), s.get(Clip, newer)
        a.started_at = b.started_at - timedelta(days=1)
        s.add(a)
        s.commit()
    _read(core, older, owner.id, "MAB1234")
    _read(core, newer, owner.id, "MAB1Z34")  # the reader got one letter wrong

    ev = owner.get(f"/api/v1/events/{newer}").json()
    assert ev["findings"][0]["known_plate"] == {"id": car["id"], "name": "Family car", "match": "close"}
    listed = {e["id"]: e for e in owner.get("/api/v1/events").json()["items"]}
    assert listed[older]["findings"][0]["known_plate"]["match"] == "exact"
    assert "known_plate" not in kid.get(f"/api/v1/events/{newer}").json()["findings"][0]  # the owner's list
    assert all("known_plate" not in f for e in kid.get("/api/v1/events").json()["items"] for f in e["findings"])
    assert "Family car" in owner.get(f"/events/{newer}").text and "Family car" not in kid.get(f"/events/{newer}").text
    # silenced in integrations (IFTTT's plate trigger) like the exact text; the unknown plate is not
    silenced = anyio.run(core.services.silenced_plates, owner.id, ["MAB1Z34", "M-AB 1234", "KXY987", "QQ1234"])
    assert silenced == {"MAB1Z34", "M-AB 1234"}

    # a plate whose neighbours are other cars: the owner switches close reads off, and only the exact text counts
    assert owner.patch(f"/api/v1/plates/{car['id']}", json={"close_reads": False}).status_code == 200
    assert "known_plate" not in owner.get(f"/api/v1/events/{newer}").json()["findings"][0]
    assert anyio.run(core.services.silenced_plates, owner.id, ["MAB1Z34", "MAB1234"]) == {"MAB1234"}
    assert owner.get("/api/v1/plates").json()["items"][0]["last_seen"]["event_id"] == older
    assert owner.patch(f"/api/v1/plates/{car['id']}", json={"close_reads": True}).status_code == 200

    # last seen: the newest clip with a read of the plate, close reads included; nothing for a plate never read
    items = {p["text"]: p for p in owner.get("/api/v1/plates").json()["items"]}
    assert items["MAB1234"]["last_seen"] == {"at": ev["started_at"], "event_id": newer, "camera_id": cam["id"],
                                             "text": "MAB1Z34"}
    assert items["KXY987"]["last_seen"] is None and van["id"] == items["KXY987"]["id"]
    page = owner.get("/plates").text
    assert f'href="/events/{newer}"' in page and "read as MAB1Z34" in page and "Not seen in your stored alarms" in page
    # deleting a clip takes its reads along: the list falls back to the older clip, then to nothing
    assert owner.delete(f"/api/v1/events/{newer}").status_code in (200, 204)
    seen = owner.get("/api/v1/plates").json()["items"][0]["last_seen"]
    assert seen["event_id"] == older and seen["text"] == "MAB1234"
    assert owner.delete(f"/api/v1/events/{older}").status_code in (200, 204)
    assert owner.get("/api/v1/plates").json()["items"][0]["last_seen"] is None


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_saving_plates_at_once_from_many_requests_keeps_one_row_each_and_the_limit(database: str,
                                                                                    tmp_path: Path) -> None:
    """Two taps on "Add plate" (or two scripts) race on the same new text: every request is answered 201 and the
    list holds the plate once, with one of the names. Adds of different new texts at once, a few short of the
    limit, fill the list exactly up to it and refuse the rest (PostgreSQL runs them truly at once)."""
    from tests.conftest import Api  # type: ignore[import-not-found]

    with settings_on(database, tmp_path / "data") as st, LiveServer(st) as srv:
        a = Api(srv.url).register("kp8@example.com")
        for round_ in range(3):
            text = f"MAB12{round_}4"
            codes = a.post_at_once("/api/v1/plates", [{"text": text, "name": f"car {i}"} for i in range(8)])
            assert codes == [201] * 8, codes
        items = a.get("/api/v1/plates").json()["items"]
        assert sorted(p["text"] for p in items) == ["MAB1204", "MAB1214", "MAB1224"]

        with srv.core.db.session() as s:  # three places left
            s.add_all([KnownPlate(account_id=a.id, text=f"X{i:05d}", name=f"car {i}")
                       for i in range(MAX_KNOWN_PLATES - 6)])
            s.commit()
        codes = a.post_at_once("/api/v1/plates", [{"text": f"NEW{i}99", "name": f"new {i}"} for i in range(8)])
        assert codes == [201] * 3 + [409] * 5, codes
        assert len(a.get("/api/v1/plates").json()["items"]) == MAX_KNOWN_PLATES


def test_alarms_with_unknown_or_known_cars_for_the_owner(api: Any, server: Any, clip: Path) -> None:
    """``plates=unknown``: the clips a stranger's car was read in (the owner's own cars left out, close reads of
    them too); ``plates=known`` the others; the same in the alarms page's filter and the bulk download. The list
    is the owner's: a sub-user's filter is refused."""
    core: Any = server.core
    owner, cam, kid = _owner_and_sub_user(api, "kp9")
    assert owner.post("/api/v1/plates", json={"text": "MAB1234", "name": "Family car"}).status_code == 201
    creds = owner.upload_credentials(cam["id"])
    own, own_misread, stranger, both, none = (owner.upload_analysed(creds, clip)["id"] for _ in range(5))
    for clip_id, text in ((own, "MAB1234"), (own_misread, "MAB1Z34"), (stranger, "KXY987"), (both, "MAB1234"),
                          (both, "QQ77AB")):
        _read(core, clip_id, owner.id, text)

    def ids(which: str, who: Any = owner) -> set[str]:
        r = who.get("/api/v1/events", params={"plates": which})
        assert r.status_code == 200, r.text
        return {e["id"] for e in r.json()["items"]}

    assert ids("unknown") == {stranger, both}
    assert ids("known") == {own, own_misread, both}
    assert none not in ids("unknown") | ids("known")
    r = owner.get("/api/v1/events", params={"plates": "mine"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_field"
    r = kid.get("/api/v1/events", params={"plates": "unknown"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert kid.get("/api/v1/events").status_code == 200  # the sub-user's other filters work as before

    page = owner.get("/", params={"plates": "unknown"}).text
    assert 'name="plates"' in page and f'data-event-id="{stranger}"' in page and f'data-event-id="{own}"' not in page
    assert 'name="plates"' not in kid.get("/").text  # no such filter on a sub-user's page
    r = owner.post("/api/v1/events/download", json={"plates": "unknown", "count_only": True})
    assert r.status_code == 200 and r.json()["count"] == 2, r.text
    pid = owner.get("/api/v1/plates").json()["items"][0]["id"]
    assert owner.delete(f"/api/v1/plates/{pid}").status_code == 204  # no known plate left: every car is unknown
    assert ids("unknown") == {own, own_misread, stranger, both} and ids("known") == set()


def test_a_sub_users_links_hear_of_a_plate_without_the_owners_name_for_it(api: Any, server: Any,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``plate.recognised`` goes to the integrations once more for each sub-user with a right on the camera (their
    own IFTTT link): that copy says whether the plate is known and announced, never the owner's name or list."""
    from alarmcloud.events import PLATE_RECOGNISED, Event

    core: Any = server.core
    owner, cam, kid = _owner_and_sub_user(api, "kp10")
    heard: list[Event] = []

    async def record(event: Event) -> None:
        heard.append(event)

    monkeypatch.setattr(core, "tell_integrations", record)
    payload = {"clip_id": "c1", "text": "MAB1Z34", "score": 0.9,
               **_book(("MAB1234", "Family car")).describe("MAB1Z34")}
    anyio.run(core.emit, Event(PLATE_RECOGNISED, owner.id, cam["id"], payload))
    (copy,) = heard
    assert copy.account_id == kid.id and copy.payload == {"clip_id": "c1", "text": "MAB1Z34", "score": 0.9,
                                                          "known": True, "name": None, "notify": True,
                                                          "match": "close"}
