"""Kept clips: an owner keeps an alarm clip (evidence of a break-in) past the retention period and out of the
quota's eviction, within a share of the quota so new alarms always find room; deleting it, or the account, still
deletes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alarmcloud.models import Clip
from alarmcloud.privacy import run_retention
from alarmcloud.testing import LiveServer

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


def _ids(owner: Any, query: str = "") -> list[str]:
    r = owner.get("/api/v1/events" + query)
    assert r.status_code == 200, r.text
    return [e["id"] for e in r.json()["items"]]


def test_a_kept_clip_outlives_eviction_and_retention_until_it_is_let_go(server: LiveServer, api: Any,
                                                                        clip: Path) -> None:
    core: Any = server.core
    owner = api().register("keeper@example.com")
    old, mid, new = recorded_alarms(owner, clip, [3, 2, 1])
    r = owner.patch(f"/api/v1/events/{old}", json={"kept": True})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == old and r.json()["kept"] is True and r.json()["kept_at"]
    since = r.json()["kept_at"]
    assert owner.patch(f"/api/v1/events/{old}", json={"kept": True}).json()["kept_at"] == since  # as it was
    assert owner.get(f"/api/v1/events/{mid}").json()["kept"] is False
    # the filter finds them (and the bulk download takes it too)
    assert _ids(owner, "?kept=true") == [old]
    assert _ids(owner, "?kept=false") == [new, mid]
    r = owner.get("/api/v1/events?kept=yes")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_kept"
    r = owner.post("/api/v1/events/download", json={"kept": True, "count_only": True})
    assert r.status_code == 200 and r.json()["count"] == 1
    size = owner.get(f"/api/v1/events/{old}").json()["size_bytes"]
    st = owner.get("/api/v1/storage").json()
    assert (st["kept_count"], st["kept_bytes"]) == (1, size)
    assert st["per_camera"][0]["kept_clips"] == 1 and st["per_camera"][0]["kept_bytes"] == size

    # room for three clips: the next alarm evicts the oldest clip that is not kept
    set_account(core, owner.id, quota_bytes=3 * size + 100)
    assert owner.get("/api/v1/storage").json()["kept_limit_bytes"] == (3 * size + 100) // 2
    (newest,) = recorded_alarms(owner, clip, [0.5])
    assert _ids(owner) == [newest, new, old]  # mid went, the older kept one stayed
    assert not any(mid in f for f in stored_files(core))

    # retention: clips older than the account keeps them go, but the kept one
    age_clip(core, old, 40)
    age_clip(core, new, 40)
    report = run_retention(core)
    assert report["clips"] == 1
    assert _ids(owner) == [newest, old]
    assert any(f.endswith(f"{old}.mp4") for f in stored_files(core))
    assert owner.get(f"/api/v1/events/{old}/video").status_code == 200

    # let go: the next retention run deletes it, video and all
    r = owner.patch(f"/api/v1/events/{old}", json={"kept": False})
    assert r.status_code == 200 and r.json()["kept"] is False and r.json()["kept_at"] is None
    assert run_retention(core)["clips"] == 1
    assert _ids(owner) == [newest]
    assert not any(old in f for f in stored_files(core))


def test_kept_clips_fill_at_most_their_share_of_the_quota(server: LiveServer, api: Any, clip: Path) -> None:
    core: Any = server.core
    owner = api().register("hoarder@example.com")
    a, b = recorded_alarms(owner, clip, [2, 1])
    size = owner.get(f"/api/v1/events/{a}").json()["size_bytes"]
    set_account(core, owner.id, quota_bytes=int(2.5 * size))  # kept clips may fill 1.25 clips' worth
    assert owner.patch(f"/api/v1/events/{a}", json={"kept": True}).status_code == 200
    r = owner.patch(f"/api/v1/events/{b}", json={"kept": True})
    assert r.status_code == 409 and r.json()["error"]["code"] == "keep_limit"
    assert "stop keeping or delete some" in r.json()["error"]["message"]
    assert owner.get(f"/api/v1/events/{b}").json()["kept"] is False  # nothing half-done
    # letting the first go makes room for the second
    assert owner.patch(f"/api/v1/events/{a}", json={"kept": False}).status_code == 200
    assert owner.patch(f"/api/v1/events/{b}", json={"kept": True}).status_code == 200
    # the operator can forbid keeping altogether
    core.settings.storage.kept_max_ratio = 0.0
    try:
        r = owner.patch(f"/api/v1/events/{a}", json={"kept": True})
        assert r.status_code == 409 and r.json()["error"]["code"] == "keep_limit"
    finally:
        core.settings.storage.kept_max_ratio = 0.5
    # the operator makes the storage smaller than what is kept: the storage page says so, and a new alarm is still
    # stored, in the room of the clips not kept
    assert "data-kept-over" not in owner.get("/storage").text
    set_account(core, owner.id, quota_bytes=int(1.5 * size))
    assert "Kept clips fill more than their share" in owner.get("/storage").text
    (c,) = recorded_alarms(owner, clip, [0.5])
    assert owner.get(f"/api/v1/events/{a}").status_code == 404  # the clip not kept made room
    assert owner.get(f"/api/v1/events/{b}").json()["kept"] is True
    assert owner.get(f"/api/v1/events/{c}").status_code == 200


def test_keeping_needs_the_admin_right_and_a_valid_body(server: LiveServer, api: Any, clip: Path) -> None:
    owner = api().register("keeps-own@example.com")
    (eid,) = recorded_alarms(owner, clip, [1])
    cam_id = owner.get(f"/api/v1/events/{eid}").json()["camera_id"]
    for body, code in [({}, "missing_field"), ({"kept": "yes"}, "invalid_field"), ({"kept": 1}, "invalid_field"),
                       ({"kept": True, "forever": True}, "unknown_field")]:
        r = owner.patch(f"/api/v1/events/{eid}", json=body)
        assert r.status_code == 400 and r.json()["error"]["code"] == code, (body, r.text)
    r = owner.patch(f"/api/v1/events/{eid}", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400

    for right, status in [("view", 403), ("control", 403), ("admin", 200)]:
        email = f"family-{right}@example.com"
        r = owner.post("/api/v1/subusers", json={"email": email, "password": PASSWORD, "rights": {cam_id: right}})
        assert r.status_code == 201, r.text
        sub = api().login(email)
        r = sub.patch(f"/api/v1/events/{eid}", json={"kept": True})
        assert r.status_code == status, (right, r.text)
        if status == 403:
            assert owner.get(f"/api/v1/events/{eid}").json()["kept"] is False
    stranger = api().register("stranger-keeps@example.com")
    r = stranger.patch(f"/api/v1/events/{eid}", json={"kept": False})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert owner.get(f"/api/v1/events/{eid}").json()["kept"] is True
    assert owner.patch("/api/v1/events/0123456789abcdef0123456789abcdef", json={"kept": True}).status_code == 404


def test_deleting_a_kept_clip_or_the_account_deletes_it(server: LiveServer, api: Any, clip: Path) -> None:
    core: Any = server.core
    owner = api().register("leaving@example.com")
    a, b = recorded_alarms(owner, clip, [2, 1])
    for eid in (a, b):
        assert owner.patch(f"/api/v1/events/{eid}", json={"kept": True}).status_code == 200
    assert owner.delete(f"/api/v1/events/{a}").status_code == 204
    assert not any(a in f for f in stored_files(core))
    assert owner.delete("/api/v1/me", json={"password": PASSWORD}).status_code == 200
    assert not any(b in f for f in stored_files(core))
    with core.db.session() as s:
        assert s.get(Clip, b) is None
