"""Bulk download of alarm clips: a streamed ZIP of playable MP4s and events.json, by id or by the timeline filters."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import av
import httpx
import pytest
from alarmcloud.testing import LiveServer, settings_on

URL = "/api/v1/events/download"
PASSWORD = "correct horse battery staple"
BOTH_DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BOTH_DATABASES)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Every test here runs on SQLite and on a fresh database of a real PostgreSQL server."""
    with settings_on(request.param, tmp_path / "data", camera_networks=["127.0.0.0/8"]) as st:
        yield st


def _upload(acc: Any, kit: Any, tmp_path: Path, camera: dict[str, Any], n: int) -> list[str]:
    creds = acc.upload_credentials(camera["id"])
    ids = []
    for i in range(n):
        path = kit.small_clip(tmp_path / f"{camera['id']}-{i}.mp4", seconds=2.0 + i)
        r = acc.upload(creds, path)
        assert r.status_code in (200, 201), r.text
        ids.append(r.json()["event_id"])
    for eid in ids:
        assert acc.wait_event(eid)["status"] in ("done", "failed", "skipped")
    return ids


def _set_times(core: Any, times: dict[str, datetime]) -> None:
    from alarmcloud.models import Clip

    with core.db.session() as s:
        for eid, when in times.items():
            clip = s.get(Clip, eid)
            clip.started_at = when
            s.add(clip)
        s.commit()


def _zip(r: httpx.Response) -> zipfile.ZipFile:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert "attachment" in r.headers["content-disposition"]
    return zipfile.ZipFile(io.BytesIO(r.content))


def _plays(data: bytes) -> float:
    """Decode every video frame (PyAV); the clip's duration in seconds."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert frames > 0
        return float(frames / stream.average_rate)


@pytest.fixture
def owner(api: Any, server: LiveServer, kit: Any, tmp_path: Path) -> dict[str, Any]:
    """An account with two cameras (one with a name that tries to leave its folder) and three clips."""
    acc = api().register("owner@example.com")
    hof = acc.camera("../Hof: Nord/..")
    yard = acc.camera("Yard")
    hof_ids = _upload(acc, kit, tmp_path, hof, 2)
    yard_ids = _upload(acc, kit, tmp_path, yard, 1)
    day = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    times = {hof_ids[0]: day, hof_ids[1]: day + timedelta(days=1), yard_ids[0]: day + timedelta(days=1, hours=1)}
    _set_times(server.core, times)
    from alarmcloud.models import FindingRow

    with server.core.db.session() as s:  # type: ignore[attr-defined]
        s.add(FindingRow(clip_id=hof_ids[0], account_id=acc.id, detector="plates", label="plate", score=0.9,
                         text="MAB123"))
        s.add(FindingRow(clip_id=hof_ids[0], account_id=acc.id, detector="motion", label="person", score=0.8))
        s.commit()
    return {"api": acc, "hof": hof, "yard": yard, "hof_ids": hof_ids, "yard_ids": yard_ids, "times": times}


def test_download_by_ids_streams_playable_clips_and_an_index(owner: dict[str, Any], server: LiveServer) -> None:
    acc = owner["api"]
    chosen = [owner["yard_ids"][0], owner["hof_ids"][0]]
    server.core.usage.flush()  # type: ignore[attr-defined]
    with acc.http.stream("POST", URL, json={"ids": chosen}, headers={"X-CSRF-Token": acc.csrf}) as r:
        assert r.status_code == 200, r.read()
        body = b"".join(r.iter_bytes())
        assert int(r.headers["content-length"]) == len(body)  # known before the first byte: a browser shows progress
    zf = zipfile.ZipFile(io.BytesIO(body))
    index = json.loads(zf.read("events.json"))["events"]
    assert zf.namelist()[0] == "events.json"
    # oldest first; the camera name cannot climb out of its folder
    assert [e["id"] for e in index] == [owner["hof_ids"][0], owner["yard_ids"][0]]
    hof, yard = index
    assert hof["file"] == "Hof Nord/2026-05-01T12-00-00Z_" + (hof["verdict"] or "pending").replace(":", "-") + ".mp4"
    assert yard["file"].startswith("Yard/2026-05-02T13-00-00Z_")
    assert hof["camera"] == "../Hof: Nord/.." and hof["camera_id"] == owner["hof"]["id"]
    assert hof["time"].startswith("2026-05-01T12:00:00")
    assert hof["plates"] == ["MAB123"] and "person" in hof["labels"] and "plate" in hof["labels"]
    assert yard["plates"] == []
    assert sorted(zf.namelist()) == sorted(["events.json", hof["file"], yard["file"]])
    for e in index:
        data = zf.read(e["file"])
        assert data == acc.get(f"/api/v1/events/{e['id']}/video").content  # the stored clip, byte for byte
        event = acc.get(f"/api/v1/events/{e['id']}").json()
        assert e["verdict"] == event["verdict"]
        assert abs(_plays(data) - event["duration"]) < 0.5
    # counted like other downloads: the ZIP's bytes go to the account's usage
    from alarmcloud.models import UsageHour
    from sqlmodel import select

    core: Any = server.core
    core.usage.flush()
    with core.db.session() as s:
        out = sum(u.bytes_out for u in s.exec(select(UsageHour).where(UsageHour.subject == f"account:{acc.id}")))
    assert out >= len(body)


def test_download_by_filters(owner: dict[str, Any], server: LiveServer) -> None:
    acc = owner["api"]
    hof_ids, yard_ids = owner["hof_ids"], owner["yard_ids"]

    def ids(body: dict[str, Any]) -> list[str]:
        zf = _zip(acc.post(URL, json=body))
        index = json.loads(zf.read("events.json"))["events"]
        assert len(zf.namelist()) == len(index) + 1
        return [e["id"] for e in index]

    assert ids({"all": True}) == [hof_ids[0], hof_ids[1], yard_ids[0]]
    assert ids({"camera_id": owner["hof"]["id"]}) == hof_ids
    assert ids({"since": "2026-05-02T00:00:00Z", "until": "2026-05-03T00:00:00Z"}) == [hof_ids[1], yard_ids[0]]
    assert ids({"plate": "MAB 12E"}) == [hof_ids[0]]  # the same fuzzy plate match as the timeline
    assert ids({"label": "person", "all": True}) == [hof_ids[0]]
    verdict = acc.get(f"/api/v1/events/{yard_ids[0]}").json()["verdict"]
    if verdict:
        assert yard_ids[0] in ids({"verdict": verdict})
    r = acc.post(URL, json={"camera_id": owner["yard"]["id"], "count_only": True})
    assert r.status_code == 200 and r.json() == {"count": 1, "max_clips": 500}
    r = acc.post(URL, json={"since": "2030-01-01"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_events"


def test_more_clips_than_the_limit_are_refused_before_anything_is_sent(owner: dict[str, Any],
                                                                       server: LiveServer) -> None:
    acc = owner["api"]
    server.core.settings.storage.download_max_clips = 2  # type: ignore[attr-defined]
    r = acc.post(URL, json={"all": True})
    assert r.status_code == 413 and r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == "too_many_clips" and "export" in r.json()["error"]["message"]
    r = acc.post(URL, json={"ids": owner["hof_ids"] + owner["yard_ids"]})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_many_clips"
    assert acc.post(URL, json={"camera_id": owner["hof"]["id"]}).status_code == 200  # two are fine


def test_bad_requests_get_clear_errors(owner: dict[str, Any], server: LiveServer) -> None:
    acc = owner["api"]
    eid = owner["hof_ids"][0]
    cases: list[tuple[Any, int, str]] = [
        ({}, 400, "no_selection"),
        ({"ids": []}, 400, "no_selection"),
        ({"ids": [eid], "colour": "red"}, 400, "unknown_field"),
        ({"ids": eid}, 400, "invalid_field"),
        ({"ids": [eid], "camera_id": owner["hof"]["id"]}, 400, "ambiguous_selection"),
        ({"since": "yesterday"}, 400, "invalid_time"),
        ({"all": "yes"}, 400, "invalid_field"),
        ({"ids": [f"x{i}" for i in range(501)]}, 413, "too_many_clips"),
        ([eid], 400, "invalid_json"),
    ]
    for body, status, code in cases:
        r = acc.post(URL, json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (body, r.text)
        assert r.json()["error"]["message"]
    r = httpx.post(server.url + URL, json={"ids": [eid]})
    assert r.status_code == 401
    r = acc.http.post(URL, json={"ids": [eid]})  # a session without the CSRF token
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    tok = acc.post("/api/v1/tokens", json={"name": "script"}).json()["token"]
    r = httpx.post(server.url + URL, json={"ids": [eid]}, headers={"Authorization": f"Bearer {tok}"})
    assert _zip(r).namelist()[0] == "events.json"


def test_form_post_of_the_web_ui_needs_the_csrf_field(owner: dict[str, Any]) -> None:
    acc = owner["api"]
    ids = owner["hof_ids"]

    def post(fields: list[tuple[str, str]]) -> httpx.Response:
        return acc.http.post(URL, content=urlencode(fields),  # type: ignore[no-any-return]
                             headers={"Content-Type": "application/x-www-form-urlencoded"})

    form = [("ids", ids[0]), ("ids", ids[1])]
    assert post(form).status_code == 403
    assert post([*form, ("csrf_token", "wrong")]).status_code == 403
    zf = _zip(post([*form, ("csrf_token", acc.csrf)]))
    assert [e["id"] for e in json.loads(zf.read("events.json"))["events"]] == ids
    zf = _zip(post([("all", "1"), ("camera_id", owner["yard"]["id"]), ("csrf_token", acc.csrf)]))
    assert [e["id"] for e in json.loads(zf.read("events.json"))["events"]] == owner["yard_ids"]
    r = post([("all", "1"), ("evil", "1"), ("csrf_token", acc.csrf)])
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_field"


def test_other_accounts_ids_are_not_found_for_the_whole_request(owner: dict[str, Any], api: Any, kit: Any,
                                                                tmp_path: Path) -> None:
    other = api().register("other@example.com")
    cam = other.camera("Theirs")
    theirs = _upload(other, kit, tmp_path, cam, 1)[0]
    acc = owner["api"]
    with acc.http.stream("POST", URL, json={"ids": [owner["hof_ids"][0], theirs]},
                         headers={"X-CSRF-Token": acc.csrf}) as r:
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/json")  # no ZIP was started
        assert json.loads(r.read())["error"]["code"] == "not_found"
    assert acc.post(URL, json={"ids": ["does-not-exist"]}).status_code == 404
    # their filters see only their own clips, and the owner's camera is not theirs to filter by
    zf = _zip(other.post(URL, json={"all": True}))
    assert [e["id"] for e in json.loads(zf.read("events.json"))["events"]] == [theirs]
    r = other.post(URL, json={"camera_id": owner["hof"]["id"]})
    assert r.status_code == 404


def test_sub_user_gets_only_the_cameras_it_has_a_right_on(owner: dict[str, Any], api: Any) -> None:
    acc = owner["api"]
    r = acc.post("/api/v1/subusers", json={"email": "family@example.com", "password": PASSWORD,
                                            "rights": {owner["yard"]["id"]: "view"}})
    assert r.status_code == 201, r.text
    sub = api().login("family@example.com")
    zf = _zip(sub.post(URL, json={"all": True}))
    index = json.loads(zf.read("events.json"))["events"]
    assert [e["id"] for e in index] == owner["yard_ids"]
    assert sorted(zf.namelist()) == sorted(["events.json", index[0]["file"]])
    assert sub.post(URL, json={"ids": [owner["yard_ids"][0], owner["hof_ids"][0]]}).status_code == 404
    assert sub.post(URL, json={"camera_id": owner["hof"]["id"]}).status_code == 404
    assert _zip(sub.post(URL, json={"ids": owner["yard_ids"]})).namelist()[0] == "events.json"


def _link(acc: Any, body: dict[str, Any]) -> dict[str, Any]:
    r = acc.post(URL, json={**body, "link": True})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_download_link_serves_the_zip_with_range_so_a_broken_download_resumes(owner: dict[str, Any],
                                                                                server: LiveServer) -> None:
    acc = owner["api"]
    chosen = [owner["hof_ids"][0], owner["yard_ids"][0]]
    link = _link(acc, {"ids": chosen})
    assert link["url"] == f"/api/v1/downloads/{link['id']}" and link["count"] == 2
    head = acc.http.head(link["url"])
    assert head.status_code == 200 and int(head.headers["content-length"]) == link["size"]
    assert head.headers["accept-ranges"] == "bytes"
    full = acc.get(link["url"])
    assert full.status_code == 200 and len(full.content) == link["size"]
    etag = full.headers["etag"]
    zf = _zip(full)
    assert zf.testzip() is None  # every CRC right
    index = json.loads(zf.read("events.json"))["events"]
    assert [e["id"] for e in index] == [owner["hof_ids"][0], owner["yard_ids"][0]]
    for e in index:
        assert zf.read(e["file"]) == acc.get(f"/api/v1/events/{e['id']}/video").content
    # the connection broke off inside the first clip: the rest, asked for with Range and If-Range, completes it
    clip_at = full.content.index(zf.read(index[0]["file"])[:64])
    for cut in (100, clip_at + 1000, len(full.content) - 10):
        first = acc.get(link["url"], headers={"Range": f"bytes=0-{cut - 1}"})
        assert first.status_code == 206 and first.content == full.content[:cut]
        rest = acc.get(link["url"], headers={"Range": f"bytes={cut}-", "If-Range": etag})
        assert rest.status_code == 206, rest.text
        assert rest.headers["content-range"] == f"bytes {cut}-{link['size'] - 1}/{link['size']}"
        assert first.content + rest.content == full.content
    # a client holding a part of something else gets the whole ZIP; a range past the end is refused
    other = acc.get(link["url"], headers={"Range": "bytes=500-", "If-Range": '"something-else"'})
    assert other.status_code == 200 and other.content == full.content
    assert acc.get(link["url"], headers={"Range": f"bytes={link['size']}-"}).status_code == 416
    # the same files as the direct download
    direct = _zip(acc.post(URL, json={"ids": chosen}))
    assert sorted(direct.namelist()) == sorted(zf.namelist())
    assert all(direct.read(n) == zf.read(n) for n in zf.namelist() if n != "events.json")


def test_a_download_link_is_its_makers_only_and_ends_when_it_expires_or_the_clips_change(
        owner: dict[str, Any], api: Any, server: LiveServer) -> None:
    from alarmcloud.models import DownloadLink, FindingRow
    from sqlmodel import select

    acc = owner["api"]
    link = _link(acc, {"camera_id": owner["hof"]["id"]})
    assert link["count"] == 2
    other = api().register("other@example.com")
    r = other.get(link["url"])
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert httpx.get(server.url + link["url"]).status_code == 401
    r = acc.post(URL, json={"ids": owner["hof_ids"], "link": "yes"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_field"
    # a plate read corrected after the link was made: the ZIP would say otherwise, so the link is outdated
    core: Any = server.core
    assert acc.get(link["url"]).status_code == 200
    with core.db.session() as s:
        row = s.exec(select(FindingRow).where(FindingRow.clip_id == owner["hof_ids"][0],
                                              FindingRow.label == "plate")).one()
        row.text = "MAB124"
        s.add(row)
        s.commit()
    r = acc.get(link["url"])
    assert r.status_code == 410 and r.json()["error"]["code"] == "link_outdated"
    # a deleted clip too
    link = _link(acc, {"camera_id": owner["hof"]["id"]})
    assert acc.delete(f"/api/v1/events/{owner['hof_ids'][1]}").status_code == 204
    r = acc.get(link["url"])
    assert r.status_code == 410 and r.json()["error"]["code"] == "link_outdated"
    # an expired link answers 410, and links that ran out are deleted when new ones are made
    link = _link(acc, {"camera_id": owner["hof"]["id"]})
    with core.db.session() as s:
        for row in s.exec(select(DownloadLink)).all():
            row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
            s.add(row)
        s.commit()
    r = acc.get(link["url"])
    assert r.status_code == 410 and r.json()["error"]["code"] == "link_expired"
    fresh = _link(acc, {"camera_id": owner["yard"]["id"]})
    with core.db.session() as s:
        assert [row.id for row in s.exec(select(DownloadLink)).all()] == [fresh["id"]]
    # the daily retention run deletes them too
    from alarmcloud.privacy_erase import run_retention

    with core.db.session() as s:
        row = s.get(DownloadLink, fresh["id"])
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        s.add(row)
        s.commit()
    assert run_retention(core, dry_run=True)["download_links"] == 1
    assert run_retention(core)["download_links"] == 1
    with core.db.session() as s:
        assert s.exec(select(DownloadLink)).all() == []
