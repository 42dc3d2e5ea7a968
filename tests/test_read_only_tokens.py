"""Read-only API tokens: a dashboard's token shows events, clips and storage and can change nothing.

Every operation of the OpenAPI document that is not a read (POST, PUT, PATCH, DELETE under ``/api/``) is sent with
a read-only token, with the owner's real ids in its path: each answers 403 ``read_only_token`` and nothing changes;
the one POST that only reads (a ZIP of chosen clips) works.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from alarmcloud.testing import LiveServer, openapi_document

DOC: dict[str, Any] = openapi_document()  # the app's own, as /openapi.json serves it
#: operations that do not run as a person with a token, with the reason
NOT_A_PERSON = {
    "POST /api/v1/auth/register": "makes an account (no token involved)",
    "POST /api/v1/auth/login": "a password login (no token involved)",
    "POST /api/v1/auth/login/second-factor": "a password login (no token involved)",
    "POST /api/v1/auth/logout": "ends a browser session (a token has none)",
    "POST /api/v1/me/email/confirm": "the mailed token is the credential",
    "POST /api/v1/ingest/clips": "cameras upload with their own credentials",
}
#: a POST that only reads
READS = {"POST /api/v1/events/download"}
UNSAFE = [f"{m.upper()} {p}" for p, ops in DOC["paths"].items() for m in ops
          if p.startswith("/api/") and m in ("post", "put", "patch", "delete")]


def test_every_change_of_the_api_is_covered_here() -> None:
    assert len(UNSAFE) > 40
    assert set(NOT_A_PERSON) | READS <= set(UNSAFE)


#: what the owner sees, read before and after the refused changes
STATE = ["/api/v1/me", "/api/v1/cameras", "/api/v1/events", "/api/v1/series", "/api/v1/storage",
         "/api/v1/subusers", "/api/v1/plates", "/api/v1/webhooks", "/api/v1/me/push", "/api/v1/me/telegram",
         "/api/v1/me/offsite", "/api/v1/me/2fa", "/api/v1/me/consents", "/api/v1/me/links"]


def _state(owner: Any, camera_id: str) -> dict[str, Any]:
    seen = {path: owner.get(path).json() for path in STATE}
    seen["tokens"] = [{k: v for k, v in t.items() if k != "last_used_at"} for t in
                      owner.get("/api/v1/tokens").json()["items"]]
    seen["detectors"] = owner.get(f"/api/v1/cameras/{camera_id}/detectors").json()
    seen["csrf"] = seen["/api/v1/me"].pop("csrf_token")
    return seen


def test_a_read_only_token_reads_everything_and_changes_nothing(api: Callable[[], Any], server: LiveServer,
                                                                kit: Any, tmp_path: Path) -> None:
    owner = api().register("dashboard@example.com")
    cam = owner.camera("Drive")
    up = owner.upload(owner.upload_credentials(cam["id"]), kit.small_clip(tmp_path / "a.mp4"))
    assert up.status_code == 201, up.text
    event_id = up.json()["event_id"]
    owner.wait_event(event_id)
    made = owner.post("/api/v1/tokens", json={"name": "wall tablet", "read_only": True}).json()
    assert made["read_only"] is True
    ro = {"Authorization": f"Bearer {made['token']}"}
    token_id = made["id"]
    # it reads: events, the clip itself, storage, cameras, its own token list
    c = httpx.Client(base_url=server.url, headers=ro, timeout=60)
    assert [e["id"] for e in c.get("/api/v1/events").json()["items"]] == [event_id]
    video = c.get(f"/api/v1/events/{event_id}/video")
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    assert c.get("/api/v1/storage").json()["clip_count"] == 1
    assert c.get("/api/v1/cameras").json()["items"][0]["id"] == cam["id"]
    assert c.get("/api/v1/tokens").json()["items"][0]["read_only"] is True
    zipped = c.post("/api/v1/events/download", json={"ids": [event_id]})  # a POST that only reads
    assert zipped.status_code == 200 and zipped.content[:2] == b"PK"

    # every change is refused, with the owner's own ids in the path, and nothing changes
    ids = {"camera_id": cam["id"], "event_id": event_id, "token_id": token_id, "subuser_id": "x", "plate_id": "1",
           "webhook_id": "x", "delivery_id": "1", "consent_id": "1", "client_id": "x", "export_id": "x"}
    before = _state(owner, cam["id"])
    refused = {}
    for op in UNSAFE:
        if op in NOT_A_PERSON or op in READS:
            continue
        method, path = op.split(" ", 1)
        url = re.sub(r"{(\w+)}", lambda m: ids.get(m.group(1), "x"), path)
        r = c.request(method, url, json={})
        refused[op] = (r.status_code, r.json().get("error", {}).get("code") if r.content else None)
    assert {op: a for op, a in refused.items() if a != (403, "read_only_token")} == {}
    assert _state(owner, cam["id"]) == before
    assert owner.get(f"/api/v1/events/{event_id}").status_code == 200
    # it cannot make itself a token with more rights, nor revoke itself
    assert c.post("/api/v1/tokens", json={"name": "more", "read_only": False}).status_code == 403
    assert owner.get("/api/v1/tokens").json()["items"][0]["revoked"] is False
    # a full token of the same person changes things
    full = owner.post("/api/v1/tokens", json={"name": "script"}).json()
    assert full["read_only"] is False
    r = httpx.post(server.url + "/api/v1/cameras", headers={"Authorization": f"Bearer {full['token']}"},
                   json={"name": "Gate", "brand": "instar", "model": "IN-9008 Full HD"})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("value", ["yes", 1, [True]])
def test_read_only_must_be_a_boolean(api: Callable[[], Any], value: Any) -> None:
    a = api().register(f"bool-{abs(hash(str(value)))}@example.com")
    r = a.post("/api/v1/tokens", json={"name": "x", "read_only": value})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_field"
    assert a.get("/api/v1/tokens").json()["items"] == []
