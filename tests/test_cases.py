"""Cases: the owner collects the clips of one incident from any camera, with notes; they are kept while they are in
the case, and the case downloads as one ZIP with a checksum file whoever receives it can verify."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import threading
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alarmcloud import cases
from alarmcloud.models import Account, Case, Clip, Outbox
from alarmcloud.privacy import run_retention
from alarmcloud.storage import expired_clips, make_room
from alarmcloud.testing import LiveServer
from sqlmodel import select

from tests.conftest import (  # type: ignore[import-not-found]
    BOTH_DATABASES,
    PASSWORD,
    age_clip,
    recorded_alarms,
    set_account,
    settings_on_both_databases,
    stored_files,
)

#: every test here runs on SQLite and on a fresh database of a real PostgreSQL server
settings = pytest.fixture(params=BOTH_DATABASES, name="settings")(settings_on_both_databases)


def _error(r: Any, status: int, code: str) -> str:
    assert r.status_code == status and r.json()["error"]["code"] == code, r.text
    return str(r.json()["error"]["message"])


def test_a_case_keeps_its_clips_and_downloads_with_checksums(server: LiveServer, api: Any, clip: Path,
                                                             tmp_path: Path) -> None:
    core: Any = server.core
    owner = api().register("victim@example.com")
    gate_old, gate_new = recorded_alarms(owner, clip, [3, 1], "Gate")
    (door,) = recorded_alarms(owner, clip, [2], "Door")

    r = owner.post("/api/v1/cases", json={"name": "  Break-in 3 November ", "notes": "Police ref. 2026/1234\r\nBack door",
                                          "event_ids": [gate_new, door, gate_new]})
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["name"] == "Break-in 3 November" and case["notes"] == "Police ref. 2026/1234\nBack door"
    assert case["event_count"] == 2 and [e["id"] for e in case["events"]] == [door, gate_new]  # oldest first
    assert case["exported_at"] is None and len(case["camera_ids"]) == 2
    assert case["size_bytes"] == sum(e["size_bytes"] for e in case["events"])
    # its clips are kept while they are in it, and the events say which case
    for eid in (gate_new, door):
        ev = owner.get(f"/api/v1/events/{eid}").json()
        assert ev["kept"] is True and ev["case_id"] == case["id"]
    assert owner.get(f"/api/v1/events/{gate_old}").json()["case_id"] is None
    assert [e["id"] for e in owner.get(f"/api/v1/events?case_id={case['id']}").json()["items"]] == [gate_new, door]
    assert [c["id"] for c in owner.get("/api/v1/cases").json()["items"]] == [case["id"]]
    r = owner.post("/api/v1/events/download", json={"case_id": case["id"], "link": True})  # resumable, as a filter
    assert r.status_code == 201 and r.json()["count"] == 2

    # retention and the quota's eviction pass them by; the clip outside the case goes
    for eid, days in ((gate_old, 90.3), (door, 90.2), (gate_new, 90.1)):  # in the order they were recorded
        age_clip(core, eid, days)
    with core.db.session() as s:
        assert [c.id for c in expired_clips(s, owner.id, 30)] == [gate_old]
        make_room(s, s.get(Account, owner.id), 10**12, 1)  # room for more than there is: only what may go goes
        s.commit()
    assert owner.get(f"/api/v1/events/{gate_old}").status_code == 404
    assert owner.get(f"/api/v1/events/{door}").status_code == 200
    run_retention(core)
    assert owner.get(f"/api/v1/events/{gate_new}").status_code == 200

    # a clip in a case cannot be let go on its own: it is taken out of the case first
    message = _error(owner.patch(f"/api/v1/events/{door}", json={"kept": False}), 409, "in_case")
    assert "Break-in 3 November" in message
    assert owner.get(f"/api/v1/events/{door}").json()["kept"] is True

    # the download: case.json, SHA256SUMS and the videos, whose checksums match what is stored
    r = owner.get(f"/api/v1/cases/{case['id']}/download")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert int(r.headers["content-length"]) == len(r.content)
    assert r.headers["content-disposition"].startswith('attachment; filename="case-Break-in-3-November-')
    z = zipfile.ZipFile(io.BytesIO(r.content))
    assert z.testzip() is None
    # the videos first, each read once as it is sent; the files that name their checksums after them
    assert z.namelist()[-2:] == ["case.json", "SHA256SUMS"] and len(z.namelist()) == 4
    manifest = json.loads(z.read("case.json"))
    assert manifest["format"] == "alarmcloud-case/1"
    assert manifest["case"]["name"] == "Break-in 3 November" and manifest["case"]["notes"].startswith("Police")
    assert [c["id"] for c in manifest["clips"]] == [door, gate_new]
    assert {c["camera_name"] for c in manifest["clips"]} == {"Door", "Gate"}
    sums = dict(line.split("  ", 1)[::-1] for line in z.read("SHA256SUMS").decode().splitlines())
    assert set(sums) == {c["file"] for c in manifest["clips"]} and len(sums) == 2
    with core.db.session() as s:
        for c in manifest["clips"]:
            stored = s.get(Clip, c["id"])
            with core.blobs.open(stored.blob_key) as fh:
                digest = hashlib.sha256(fh.read()).hexdigest()
            assert c["sha256"] == sums[c["file"]] == digest == hashlib.sha256(z.read(c["file"])).hexdigest()
    assert owner.get(f"/api/v1/cases/{case['id']}").json()["exported_at"] is not None  # handed over once
    # whoever receives it checks it with the usual tool, as docs/api.md shows
    z.extractall(tmp_path / "case")
    checked = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path / "case", capture_output=True, text=True)
    assert checked.returncode == 0 and checked.stdout.count(": OK") == 2, checked.stdout + checked.stderr

    # taking a clip out keeps it (then it may be let go); deleting the case keeps the rest
    r = owner.delete(f"/api/v1/cases/{case['id']}/events/{door}")
    assert r.status_code == 200 and [e["id"] for e in r.json()["events"]] == [gate_new]
    assert owner.get(f"/api/v1/events/{door}").json()["case_id"] is None
    assert owner.get(f"/api/v1/events/{door}").json()["kept"] is True
    assert owner.patch(f"/api/v1/events/{door}", json={"kept": False}).json()["kept"] is False
    _error(owner.delete(f"/api/v1/cases/{case['id']}/events/{door}"), 404, "not_found")  # not in it now
    assert owner.delete(f"/api/v1/cases/{case['id']}").status_code == 204
    _error(owner.get(f"/api/v1/cases/{case['id']}"), 404, "not_found")
    ev = owner.get(f"/api/v1/events/{gate_new}").json()
    assert ev["case_id"] is None and ev["kept"] is True


def test_adding_is_all_or_nothing_within_the_limits(server: LiveServer, api: Any, clip: Path) -> None:
    core: Any = server.core
    owner = api().register("collector@example.com")
    a, b, c = recorded_alarms(owner, clip, [3, 2, 1], "Yard")
    first = owner.post("/api/v1/cases", json={"name": "Fence"}).json()
    assert first["event_count"] == 0 and first["events"] == [] and first["first_at"] is None
    second = owner.post("/api/v1/cases", json={"name": "Car"}, ).json()
    assert owner.post(f"/api/v1/cases/{first['id']}/events", json={"event_ids": [a]}).status_code == 200
    # a clip is in one case at a time; nothing of the request is done
    message = _error(owner.post(f"/api/v1/cases/{second['id']}/events", json={"event_ids": [b, a]}), 409,
                     "in_another_case")
    assert "Fence" in message
    assert owner.get(f"/api/v1/events/{b}").json()["kept"] is False
    # an id that is no clip of the account
    _error(owner.post(f"/api/v1/cases/{second['id']}/events", json={"event_ids": [b, "f" * 32]}), 404, "not_found")
    assert owner.get(f"/api/v1/events/{b}").json()["case_id"] is None
    # adding again what is in it changes nothing
    again = owner.post(f"/api/v1/cases/{first['id']}/events", json={"event_ids": [a]}).json()
    assert again["event_count"] == 1
    listed = owner.get("/api/v1/cases").json()["items"]  # newest first, each with its own sums
    assert [(c["name"], c["event_count"], c["size_bytes"] > 0) for c in listed] == [("Car", 0, False),
                                                                                    ("Fence", 1, True)]
    # the kept share of the quota holds for clips in cases too
    size = owner.get(f"/api/v1/events/{a}").json()["size_bytes"]
    set_account(core, owner.id, quota_bytes=int(2.5 * size))  # kept clips may fill 1.25 clips: a is kept already
    message = _error(owner.post(f"/api/v1/cases/{second['id']}/events", json={"event_ids": [b, c]}), 409,
                     "keep_limit")
    assert "stop keeping or delete some" in message
    assert owner.get(f"/api/v1/cases/{second['id']}").json()["event_count"] == 0
    assert [owner.get(f"/api/v1/events/{e}").json()["kept"] for e in (b, c)] == [False, False]
    # a case holds one download's clips
    core.settings.storage.download_max_clips = 1
    try:
        _error(owner.post(f"/api/v1/cases/{first['id']}/events", json={"event_ids": [b]}), 409, "case_full")
    finally:
        core.settings.storage.download_max_clips = 500
    # and an account has at most so many cases
    old, cases.MAX_CASES = cases.MAX_CASES, 2
    try:
        _error(owner.post("/api/v1/cases", json={"name": "Third"}), 409, "case_limit")
    finally:
        cases.MAX_CASES = old
    # an empty case has nothing to download
    _error(owner.get(f"/api/v1/cases/{second['id']}/download"), 409, "empty_case")


def test_bodies_other_accounts_and_sub_users_are_refused(server: LiveServer, api: Any, clip: Path) -> None:
    owner = api().register("careful@example.com")
    (eid,) = recorded_alarms(owner, clip, [1], "Porch")
    case = owner.post("/api/v1/cases", json={"name": "Parcel", "event_ids": [eid]}).json()
    for body, code in [({}, "missing_field"), ({"name": " "}, "invalid_field"), ({"name": "a\tb"}, "invalid_field"),
                       ({"name": "x" * 101}, "invalid_field"), ({"name": "N", "notes": "a\x1bb"}, "invalid_field"),
                       ({"name": "N", "notes": "x" * 5001}, "invalid_field"), ({"name": "N", "event_ids": eid},
                                                                                "invalid_field"),
                       ({"name": "N", "colour": "red"}, "unknown_field")]:
        _error(owner.post("/api/v1/cases", json=body), 400, code)
    _error(owner.post(f"/api/v1/cases/{case['id']}/events", json={"event_ids": []}), 400, "invalid_field")
    _error(owner.patch(f"/api/v1/cases/{case['id']}", json={"name": ""}), 400, "invalid_field")
    r = owner.patch(f"/api/v1/cases/{case['id']}", json={"notes": "Stolen from the porch"})
    assert r.status_code == 200 and r.json()["notes"] == "Stolen from the porch" and r.json()["name"] == "Parcel"
    assert len(owner.get("/api/v1/cases").json()["items"]) == 1  # the refused bodies made no case

    # another account: its ids answer like missing ones, its clips cannot be added
    stranger = api().register("stranger-cases@example.com")
    (theirs,) = recorded_alarms(stranger, clip, [1], "Shed")
    for method, path, body in [("GET", "", None), ("PATCH", "", {"notes": "mine"}), ("DELETE", "", None),
                               ("POST", "/events", {"event_ids": [theirs]}), ("GET", "/download", None),
                               ("DELETE", f"/events/{eid}", None), ("POST", "/share", {"days": 7}),
                               ("DELETE", "/share", None)]:
        r = stranger.req(method, f"/api/v1/cases/{case['id']}{path}", json=body)
        _error(r, 404, "not_found")
    assert stranger.get("/api/v1/cases").json()["items"] == []
    _error(owner.post(f"/api/v1/cases/{case['id']}/events", json={"event_ids": [theirs]}), 404, "not_found")
    assert stranger.get(f"/api/v1/events/{theirs}").json()["case_id"] is None

    # a sub-user, even with every right on the camera, does not manage cases (they span the account)
    cam_id = owner.get(f"/api/v1/events/{eid}").json()["camera_id"]
    r = owner.post("/api/v1/subusers", json={"email": "helper-cases@example.com", "password": PASSWORD,
                                             "rights": {cam_id: "admin"}})
    assert r.status_code == 201, r.text
    helper = api().login("helper-cases@example.com")
    _error(helper.get("/api/v1/cases"), 403, "forbidden")
    _error(helper.post("/api/v1/cases", json={"name": "Mine"}), 403, "forbidden")
    message = _error(helper.patch(f"/api/v1/events/{eid}", json={"kept": False}), 409, "in_case")  # it stays
    assert "one of the account owner's cases" in message and "Parcel" not in message  # the owner's words stay theirs
    # nor delete it: the owner decides about the evidence; the clip page offers neither, and names no case
    message = _error(helper.delete(f"/api/v1/events/{eid}"), 409, "in_case")
    assert "only the owner can delete it" in message
    page = helper.get(f"/events/{eid}").text
    assert "In one of the account owner's cases" in page and "Parcel" not in page
    assert "Delete this clip" not in page and "Stop keeping" not in page
    assert "Delete this clip" in owner.get(f"/events/{eid}").text  # the owner may
    assert helper.get("/cases").status_code == 403


def test_deleting_clips_cameras_and_the_account_with_cases(server: LiveServer, api: Any, clip: Path) -> None:
    core: Any = server.core
    owner = api().register("moving-out@example.com")
    a, b = recorded_alarms(owner, clip, [2, 1], "Drive")
    (c,) = recorded_alarms(owner, clip, [1], "Side")
    case = owner.post("/api/v1/cases", json={"name": "Scratched car", "event_ids": [a, b, c]}).json()
    # a clip in a case can still be deleted (the owner decides); the case shows the rest
    assert owner.delete(f"/api/v1/events/{a}").status_code == 204
    assert owner.get(f"/api/v1/cases/{case['id']}").json()["event_count"] == 2
    side = owner.get(f"/api/v1/events/{c}").json()["camera_id"]
    assert owner.delete(f"/api/v1/cameras/{side}").status_code == 204
    assert [e["id"] for e in owner.get(f"/api/v1/cases/{case['id']}").json()["events"]] == [b]
    # the data export holds the case; erasing the account erases it with its clips
    r = owner.get("/api/v1/me/export")
    assert r.status_code == 200
    account = json.loads(zipfile.ZipFile(io.BytesIO(r.content)).read("account.json"))
    assert [x["name"] for x in account["cases"]] == ["Scratched car"]
    assert owner.delete("/api/v1/me", json={"password": PASSWORD}).status_code == 200
    with core.db.session() as s:
        assert s.get(Case, case["id"]) is None and s.get(Clip, b) is None
    assert not any(b in f for f in stored_files(core))


def test_adds_at_once_never_pass_the_kept_share_together(server: LiveServer, api: Any, clip: Path) -> None:
    """Two requests putting different clips into two cases at the same moment: the account's row lock makes one wait
    for the other, so the second sees the first's kept clip (PostgreSQL runs them truly at once)."""
    core: Any = server.core
    owner = api().register("twice@example.com")
    a, b = recorded_alarms(owner, clip, [2, 1], "Gate")
    first = owner.post("/api/v1/cases", json={"name": "Front"}).json()
    second = owner.post("/api/v1/cases", json={"name": "Back"}).json()  # two cases: no shared case row to wait on
    size = owner.get(f"/api/v1/events/{a}").json()["size_bytes"]
    set_account(core, owner.id, quota_bytes=int(3 * size))  # kept clips may fill 1.5 clips: one of the two
    statuses = owner.posts_at_once([(f"/api/v1/cases/{first['id']}/events", {"event_ids": [a]}),
                                    (f"/api/v1/cases/{second['id']}/events", {"event_ids": [b]})])
    assert sorted(statuses) == [200, 409]
    assert sum(owner.get(f"/api/v1/cases/{c['id']}").json()["event_count"] for c in (first, second)) == 1
    assert sum(owner.get(f"/api/v1/events/{e}").json()["kept"] for e in (a, b)) == 1


def _share_mails(core: Any, account_id: str) -> list[Outbox]:
    with core.db.session() as s:
        return [m for m in s.exec(select(Outbox).where(Outbox.account_id == account_id, Outbox.kind == "email"))
                if "through its link" in m.payload["subject"]]


def test_a_link_serves_as_many_downloads_as_it_allows(server: LiveServer, api: Any, clip: Path) -> None:
    owner = api().register("capped-link@example.com")
    a, b = recorded_alarms(owner, clip, [2, 1], "Gate")
    case = owner.post("/api/v1/cases", json={"name": "Scratched car", "event_ids": [a, b]}).json()
    url = f"/api/v1/cases/{case['id']}/share"
    for body in ({"max_downloads": 0}, {"max_downloads": 101}, {"max_downloads": "3"}):
        _error(owner.post(url, json=body), 400, "invalid_field")
    assert owner.post(url, json={}).json()["max_downloads"] == cases.DEFAULT_SHARE_FETCHES  # the default: 10
    link = owner.post(url, json={"days": 3, "max_downloads": 2}).json()
    assert link["max_downloads"] == 2
    token = link["url"].rsplit("/", 1)[-1]
    with httpx.Client(base_url=server.url, timeout=60) as anyone:
        assert "for 2 more downloads" in anyone.get(f"/shared/{token}").text
        assert anyone.get(f"/api/v1/shared-cases/{token}").status_code == 200
        assert "for 1 more download;" in anyone.get(f"/shared/{token}").text
        assert anyone.get(f"/api/v1/shared-cases/{token}").status_code == 200
        message = _error(anyone.get(f"/api/v1/shared-cases/{token}"), 410, "link_used_up")
        assert "downloaded 2 times" in message
        page = anyone.get(f"/shared/{token}")
        assert page.status_code == 410 and "as often as it allows" in page.text
    share = owner.get(f"/api/v1/cases/{case['id']}").json()["share"]
    assert share["fetches"] == 2 and share["max_downloads"] == 2 and share["used_up"] is True
    assert "as often as it allows" in owner.get(f"/cases/{case['id']}").text  # the owner's page says so

    # downloads at once never pass the limit together: one of three starts
    token = owner.post(url, json={"max_downloads": 1}).json()["url"].rsplit("/", 1)[-1]
    statuses: list[int] = []
    start = threading.Barrier(3)

    def fetch() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as someone:
            start.wait()
            statuses.append(someone.get(f"/api/v1/shared-cases/{token}").status_code)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 410, 410], statuses
    assert owner.get(f"/api/v1/cases/{case['id']}").json()["share"]["fetches"] == 1


def test_a_link_serves_the_case_to_someone_without_an_account(server: LiveServer, api: Any, clip: Path) -> None:
    core: Any = server.core
    owner = api().register("shares@example.com")
    a, b = recorded_alarms(owner, clip, [2, 1], "Door")
    case = owner.post("/api/v1/cases", json={"name": "Parcel gone", "notes": "Police ref. 77/2026",
                                             "event_ids": [a, b]}).json()
    assert case["share"] is None
    for body in ({"days": 0}, {"days": 31}, {"days": "7"}, {"days": 7, "public": True}):
        assert owner.post(f"/api/v1/cases/{case['id']}/share", json=body).status_code == 400, body
    r = owner.post(f"/api/v1/cases/{case['id']}/share", json={"days": 7})
    assert r.status_code == 201, r.text
    link = r.json()
    token = link["url"].rsplit("/", 1)[-1]
    expires = datetime.fromisoformat(link["expires_at"])
    assert timedelta(days=6, hours=23) < expires - datetime.now(UTC) <= timedelta(days=7)
    assert link["page_url"].endswith(f"/shared/{token}")
    shown = owner.get(f"/api/v1/cases/{case['id']}").json()["share"]
    assert shown["expires_at"] == link["expires_at"] and shown["fetches"] == 0 and shown["expired"] is False
    assert token not in owner.get("/api/v1/cases").text and token not in owner.get(f"/cases/{case['id']}").text

    with httpx.Client(base_url=server.url, timeout=60) as anyone:  # no account, no cookie
        page = anyone.get(f"/shared/{token}")
        assert page.status_code == 200 and page.headers["x-robots-tag"] == "noindex"
        assert "Parcel gone" in page.text and "Police ref. 77/2026" in page.text
        assert f'href="/api/v1/shared-cases/{token}"' in page.text
        r = anyone.get(f"/api/v1/shared-cases/{token}")
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        z = zipfile.ZipFile(io.BytesIO(r.content))
        manifest = json.loads(z.read("case.json"))
        assert [c["id"] for c in manifest["clips"]] == [a, b]
        for line in z.read("SHA256SUMS").decode().splitlines():
            digest, file = line.split("  ", 1)
            assert hashlib.sha256(z.read(file)).hexdigest() == digest
        shown = owner.get(f"/api/v1/cases/{case['id']}").json()
        assert shown["share"]["fetches"] == 1 and shown["share"]["last_fetch_at"] == shown["exported_at"]
        # the owner is told by e-mail of the link's first use (not of every one)
        assert anyone.get(f"/api/v1/shared-cases/{token}").status_code == 200
        assert owner.get(f"/api/v1/cases/{case['id']}").json()["share"]["fetches"] == 2
        (mail,) = _share_mails(core, owner.id)
        assert mail.target == "shares@example.com"
        assert mail.payload["subject"] == "Your case Parcel gone was downloaded through its link"
        assert f"/cases/{case['id']}" in mail.payload["text"] and "stop sharing" in mail.payload["text"]
        # the operator sees which accounts share by link, and how much
        operator = api().register("op-links@example.com")
        set_account(core, operator.id, role="operator")
        users = operator.get("/operator").text.split("<h2>Users</h2>", 1)[1]
        row = next(r for r in users.split("<tr>") if "shares@example.com" in r)
        assert "<td data-links>1 (2 downloads)</td>" in row
        # a wrong or partial token names nothing
        for wrong in (token[:-1], "x" * 100, token + "x"):
            assert anyone.get(f"/api/v1/shared-cases/{wrong}").status_code == 404
        assert anyone.get(f"/shared/{token[:-1]}").status_code == 404

        # a new link replaces the one sent before
        again = owner.post(f"/api/v1/cases/{case['id']}/share", json={}).json()  # the default: 7 days
        new = again["url"].rsplit("/", 1)[-1]
        assert anyone.get(f"/api/v1/shared-cases/{token}").status_code == 404
        assert anyone.get(f"/api/v1/shared-cases/{new}").status_code == 200
        assert len(_share_mails(core, owner.id)) == 2  # a new link's first use is told again
        # after its time: 410, the page says so
        with core.db.session() as s:
            row = s.get(Case, case["id"])
            row.share_expires_at = datetime.now(UTC) - timedelta(minutes=1)
            s.add(row)
            s.commit()
        _error(anyone.get(f"/api/v1/shared-cases/{new}"), 410, "link_expired")
        assert anyone.get(f"/shared/{new}").status_code == 410
        assert owner.get(f"/api/v1/cases/{case['id']}").json()["share"]["expired"] is True
        # stopped: nothing is served, and the case no longer says it is shared
        third = owner.post(f"/api/v1/cases/{case['id']}/share", json={"days": 1}).json()["url"].rsplit("/", 1)[-1]
        assert owner.delete(f"/api/v1/cases/{case['id']}/share").status_code == 204
        _error(anyone.get(f"/api/v1/shared-cases/{third}"), 404, "not_found")
        assert owner.get(f"/api/v1/cases/{case['id']}").json()["share"] is None
        # the operator can switch links off: none is made, none serves
        fifth = owner.post(f"/api/v1/cases/{case['id']}/share", json={"days": 1}).json()["url"].rsplit("/", 1)[-1]
        core.settings.privacy.case_links = False
        try:
            _error(owner.post(f"/api/v1/cases/{case['id']}/share", json={}), 404, "not_available")
            assert anyone.get(f"/api/v1/shared-cases/{fifth}").status_code == 404
            assert 'id="share"' not in owner.get(f"/cases/{case['id']}").text
        finally:
            core.settings.privacy.case_links = True
        assert anyone.get(f"/api/v1/shared-cases/{fifth}").status_code == 200
        # a deleted case takes its link with it
        fourth = owner.post(f"/api/v1/cases/{case['id']}/share", json={"days": 1}).json()["url"].rsplit("/", 1)[-1]
        assert owner.delete(f"/api/v1/cases/{case['id']}").status_code == 204
        assert anyone.get(f"/api/v1/shared-cases/{fourth}").status_code == 404


def test_a_case_download_resumes_where_it_broke_off(server: LiveServer, api: Any, clip: Path) -> None:
    owner = api().register("resume-case@example.com")
    gate, door = recorded_alarms(owner, clip, [2, 1], "Gate")
    assert all(owner.wait_event(e)["status"] == "done" for e in (gate, door))  # the verdicts name the files
    case = owner.post("/api/v1/cases", json={"name": "Shed", "event_ids": [gate, door]}).json()
    url = f"/api/v1/cases/{case['id']}/download"
    whole = owner.get(url)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    etag, data = whole.headers["etag"], whole.content
    exported = owner.get(f"/api/v1/cases/{case['id']}").json()["exported_at"]
    z = zipfile.ZipFile(io.BytesIO(data))
    first = z.infolist()[0]
    manifest_at = z.getinfo("case.json").header_offset
    # broke off inside a video, at the checksums, inside the central directory: the rest fits byte for byte
    for start in (1, first.header_offset + 40 + first.file_size // 2, manifest_at + 100,
                  z.getinfo("SHA256SUMS").header_offset + 70, len(data) - 30):
        r = owner.get(url, headers={"Range": f"bytes={start}-", "If-Range": etag})
        assert r.status_code == 206, start
        assert r.headers["content-range"] == f"bytes {start}-{len(data) - 1}/{len(data)}"
        assert r.content == data[start:], start
    r = owner.get(url, headers={"Range": "bytes=100-199"})  # curl -C - sends no If-Range: the same ZIP
    assert r.status_code == 206 and r.content == data[100:200]
    r = owner.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416
    assert owner.get(f"/api/v1/cases/{case['id']}").json()["exported_at"] == exported  # one download, resumed

    # the case changed since the first part: If-Range gets the whole new ZIP, not a part that would not fit
    assert owner.patch(f"/api/v1/cases/{case['id']}", json={"notes": "Police ref. 77"}).status_code == 200
    r = owner.get(url, headers={"Range": "bytes=1000-", "If-Range": etag})
    assert r.status_code == 200 and r.headers["etag"] != etag
    again = zipfile.ZipFile(io.BytesIO(r.content))
    assert again.testzip() is None and json.loads(again.read("case.json"))["case"]["notes"] == "Police ref. 77"
