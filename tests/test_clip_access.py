"""Who opened the account's clips (``clipaccess``): every video played, ZIP of clips and case downloaded, by the owner,
a sub-user, a script's token or someone with a case's link, is shown to the owner, with the network shortened;
kept as long as the access data, exported with the account, gone with a sub-user's erasure."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
from alarmcloud.models import ClipAccess, utcnow
from alarmcloud.openapi import SHAPES
from alarmcloud.privacy import run_retention
from alarmcloud.privacy_export import account_data
from sqlmodel import select

from tests.conftest import recorded_alarms  # type: ignore[import-not-found]

PW = "another good pw"


def _access(a: Any, **params: Any) -> dict[str, Any]:
    r = a.get("/api/v1/me/clip-access", params=params)
    assert r.status_code == 200, r.text
    jsonschema.validate(r.json(), SHAPES[("GET", "/api/v1/me/clip-access")]["response"])
    return r.json()


def test_the_owner_sees_who_opened_the_clips(server: Any, api: Any, clip: Path) -> None:
    owner = api().register("watched@example.com")
    (eid,) = recorded_alarms(owner, clip, [1], "Gate")
    cam_id = owner.get(f"/api/v1/events/{eid}").json()["camera_id"]
    assert owner.post("/api/v1/subusers", json={"email": "neighbour@example.com", "password": PW,
                                                "rights": {cam_id: "view"}}).status_code == 201
    kid = api().login("neighbour@example.com", PW)
    assert _access(owner)["items"] == []

    # the owner plays the clip: a player's many ranges and a reload are one viewing
    for rng in ("bytes=0-999", "bytes=1000-", "bytes=0-"):
        assert owner.get(f"/api/v1/events/{eid}/video", headers={"Range": rng}).status_code == 206
    assert owner.get(f"/api/v1/events/{eid}/thumbnail").status_code == 200  # thumbnails are not counted
    kid_video = kid.get(f"/api/v1/events/{eid}/video")
    assert kid_video.status_code == 200
    # a script with the owner's token downloads it in a ZIP; a download link is fetched once, then resumed
    token = owner.post("/api/v1/tokens", json={"name": "backup", "read_only": True}).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    r = httpx.post(server.url + "/api/v1/events/download", json={"ids": [eid]}, headers=bearer, timeout=60)
    assert r.status_code == 200
    link = owner.post("/api/v1/events/download", json={"ids": [eid], "link": True}).json()
    assert owner.get(link["url"]).status_code == 200
    assert owner.get(link["url"], headers={"Range": "bytes=10-"}).status_code == 206  # the same download
    # a case: downloaded by the owner, and by someone with its link
    case = owner.post("/api/v1/cases", json={"name": "Fence", "event_ids": [eid]}).json()
    assert owner.get(f"/api/v1/cases/{case['id']}/download").status_code == 200
    shared = owner.post(f"/api/v1/cases/{case['id']}/share", json={"days": 1}).json()
    assert httpx.get(server.url + "/api/v1/shared-cases/" + shared["url"].rsplit("/", 1)[-1]).status_code == 200

    items = _access(owner)["items"]  # newest first
    seen = [(i["who"], i["via"], i["what"], i["clips"]) for i in items]
    assert seen == [("link", "link", "case", 1), ("owner", "session", "case", 1),
                    ("owner", "session", "clips", 1), ("owner", "token", "clips", 1),
                    ("sub_user", "session", "video", 1), ("owner", "session", "video", 1)]
    assert items[4]["email"] == "neighbour@example.com" and items[5]["object_id"] == eid
    assert items[0]["case_name"] == items[1]["case_name"] == "Fence"
    assert items[3]["object_id"] == eid and items[2]["object_id"] == link["id"]
    assert {i["network"] for i in items} == {"127.0.0.0/24"}  # the address shortened
    page = _access(owner, limit=4)
    assert [i["id"] for i in page["items"]] == [i["id"] for i in items[:4]]
    assert [i["id"] for i in _access(owner, limit=4, before=page["next_before"])["items"]] == \
        [i["id"] for i in items[4:]]
    for params in ({"limit": 0}, {"limit": 201}, {"limit": "x"}, {"before": "x"}):
        assert owner.get("/api/v1/me/clip-access", params=params).status_code == 400

    # the privacy center shows it to the owner; a sub-user and another tenant see nothing of it
    text = owner.get("/privacy-center").text
    assert "Who opened your clips" in text and "neighbour@example.com" in text
    assert "Someone with the case's link" in text and "(API token)" in text
    assert kid.get("/api/v1/me/clip-access").status_code == 403 and "Who opened" not in kid.get("/privacy-center").text
    other = api().register("other-watcher@example.com")
    assert _access(other)["items"] == []

    # exported with the account; a sub-user's erasure takes their rows along
    with server.core.db.session() as s:
        data = account_data(s, owner.id)
    assert len(data["clip_access"]) == 6 and json.dumps(data["clip_access"]).count("neighbour") == 0
    r = kid.req("DELETE", "/api/v1/me", json={"password": PW})
    assert r.status_code in (200, 202, 204), r.text
    assert [i["who"] for i in _access(owner)["items"]].count("sub_user") == 0

    # kept as long as the access data
    with server.core.db.session() as s:
        for row in s.exec(select(ClipAccess).where(ClipAccess.account_id == owner.id)).all():
            row.at = utcnow() - timedelta(days=91)
            s.add(row)
        s.commit()
    assert run_retention(server.core)["clip_access"] == 5
    assert _access(owner)["items"] == []
