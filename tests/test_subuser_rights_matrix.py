"""Sub-users' rights against every operation of the OpenAPI document.

One server serves the whole module: an owner with two cameras A and B (each with an analysed clip, a series and a
plate read), the owner's token, known plate, webhook with a delivery, export, consent, download link and
integration link, and three sub-users with ``view``, ``control`` and ``admin`` on camera A only.

For every operation (read from the app's OpenAPI document; a test fails when an operation is not classified here):

- camera B's ids (camera, event, clip) answer a sub-user exactly like ids that do not exist;
- camera A's ids answer 403 when the operation needs more than the sub-user's right, and are served otherwise;
- owner-only operations are refused to every sub-user, and the owner's own ids (token, export, link, ...) answer
  like missing ones;
- listings, search, statistics, storage, downloads and exports never show a sub-user anything of camera B.

Each case is named ``<sub-user>-<camera or target>-<METHOD path>``. The last test compares the owner's data with
the snapshot taken before the matrix, allowing only what the permitted calls are meant to change.
"""

from __future__ import annotations

import base64
import io
import json
import re
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from alarmcloud.testing import LiveServer, make_clip, openapi_document, test_settings

PASSWORD = "correct horse battery staple"
CAMERA_MODEL = "IN-9008 Full HD"
RIGHTS = ["view", "control", "admin"]
LEVEL = {"view": 0, "control": 1, "admin": 2, "owner": 3}
PLATE_A, PLATE_B = "MAA111", "MBB222"


# ---------------------------------------------------------------- the operations (from the app's OpenAPI document)


DOC: dict[str, Any] = openapi_document()  # the app's own, as /openapi.json serves it
OPS: list[str] = [f"{m.upper()} {p}" for p, ops in DOC["paths"].items() for m in ops]

#: path parameters that name something of camera A or B
CAMERA_IDS = {"camera_id", "event_id", "clip_id"}

#: operations on one camera (or one of its events): the right they need ("owner": no sub-user at all)
CAMERA_OPS: dict[str, str] = {
    "GET /api/v1/cameras/{camera_id}": "view",
    "PATCH /api/v1/cameras/{camera_id}": "admin",
    "DELETE /api/v1/cameras/{camera_id}": "owner",
    "POST /api/v1/cameras/{camera_id}/upload-credentials": "admin",
    "GET /api/v1/cameras/{camera_id}/detectors": "view",
    "GET /api/v1/cameras/{camera_id}/detectors/{detector}/scores": "view",
    "PUT /api/v1/cameras/{camera_id}/detectors": "admin",
    "POST /api/v1/cameras/{camera_id}/actions": "control",
    "GET /api/v1/cameras/{camera_id}/live": "view",
    "GET /api/v1/cameras/{camera_id}/snapshot": "view",
    "POST /api/v1/cameras/{camera_id}/setup": "admin",
    "GET /api/v1/cameras/{camera_id}/rejections": "view",
    "POST /api/v1/cameras/{camera_id}/view/dismiss": "admin",
    "POST /api/v1/cameras/{camera_id}/privacy-masks/apply": "admin",
    "GET /api/v1/cameras/{camera_id}/privacy-masks/apply": "view",
    "GET /api/v1/events/{event_id}": "view",
    # deleting a clip changes what the camera recorded: "view reads the camera, its events and videos"
    "DELETE /api/v1/events/{event_id}": "admin",
    # keeping a clip decides what stays stored (and fills the account's storage): as deleting it
    "PATCH /api/v1/events/{event_id}": "admin",
    "GET /api/v1/events/{event_id}/video": "view",
    "GET /api/v1/events/{event_id}/thumbnail": "view",
    "POST /api/v1/events/{event_id}/feedback": "view",
    "GET /api/v1/admin/clips/{clip_id}/video": "owner",  # operators only
    "PUT /api/v1/operator/cameras/{camera_id}/fair-use": "owner",  # operators only
    "GET /events/{event_id}": "view",
    "GET /cameras/{camera_id}": "view",
}

#: operations of the account owner only: 403 for every sub-user (404 for an id, like a missing one)
OWNER_ONLY: set[str] = {
    "POST /api/v1/cameras",
    "GET /api/v1/subusers", "POST /api/v1/subusers", "PUT /api/v1/subusers/{subuser_id}",
    "DELETE /api/v1/subusers/{subuser_id}",
    "GET /api/v1/webhooks", "POST /api/v1/webhooks", "GET /api/v1/webhooks/{webhook_id}",
    "PATCH /api/v1/webhooks/{webhook_id}", "DELETE /api/v1/webhooks/{webhook_id}",
    "POST /api/v1/webhooks/{webhook_id}/test", "GET /api/v1/webhooks/{webhook_id}/deliveries",
    "POST /api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    "GET /api/v1/me/offsite", "PATCH /api/v1/me/offsite", "POST /api/v1/me/offsite/test",
    "POST /api/v1/me/offsite/retry", "POST /api/v1/me/offsite/backfill", "POST /api/v1/me/offsite/sftp-key",
    "POST /api/v1/me/offsite/prune", "GET /api/v1/me/clip-access",
    # the account's known plates (names of people's cars, who is told about them): the owner's list
    "GET /api/v1/plates", "POST /api/v1/plates", "PATCH /api/v1/plates/{plate_id}", "DELETE /api/v1/plates/{plate_id}",
    # cases: the owner's collections of clips of any camera (evidence of an incident)
    "GET /api/v1/cases", "POST /api/v1/cases", "GET /api/v1/cases/{case_id}", "PATCH /api/v1/cases/{case_id}",
    "DELETE /api/v1/cases/{case_id}", "POST /api/v1/cases/{case_id}/events",
    "DELETE /api/v1/cases/{case_id}/events/{event_id}", "GET /api/v1/cases/{case_id}/download",
    "POST /api/v1/cases/{case_id}/share", "DELETE /api/v1/cases/{case_id}/share",
    "GET /cases", "GET /cases/{case_id}",
    "GET /operator",  # operators only
}

#: each person's own things: served to a sub-user for itself; the owner's ids answer like missing ones
PERSONAL: set[str] = {
    "GET /api/v1/me", "PATCH /api/v1/me", "DELETE /api/v1/me",
    "GET /api/v1/tokens", "POST /api/v1/tokens", "DELETE /api/v1/tokens/{token_id}",
    "GET /api/v1/me/links", "DELETE /api/v1/me/links/{client_id}",
    "GET /api/v1/me/export", "POST /api/v1/me/exports", "GET /api/v1/me/exports/{export_id}",
    "GET /api/v1/me/push", "PATCH /api/v1/me/push", "GET /api/v1/me/telegram", "PATCH /api/v1/me/telegram",
    "GET /api/v1/me/snooze", "PUT /api/v1/me/snooze", "DELETE /api/v1/me/snooze",
    "GET /api/v1/me/sessions", "DELETE /api/v1/me/sessions/{session_id}",
    "GET /api/v1/me/2fa", "POST /api/v1/me/2fa",
    # the consent ledger: the caller's own (releases of recordings are the owner's; integration grants each person's)
    "GET /api/v1/me/consents", "DELETE /api/v1/me/consents/{consent_id}",
    "GET /api/v1/downloads/{link_id}",
    "GET /account", "GET /notifications", "GET /links", "GET /privacy-center",
}

#: listings and bulk reads: served, but with nothing of camera B (checked by the listing tests below)
LISTINGS: set[str] = {
    "GET /api/v1/cameras", "GET /api/v1/events", "POST /api/v1/events/download", "GET /api/v1/series",
    "GET /api/v1/storage", "GET /api/v1/stats", "GET /", "GET /cameras", "GET /storage", "GET /plates",
}

#: not driven here, with the reason
SKIP: dict[str, str] = {
    "POST /api/v1/auth/register": "public", "POST /api/v1/auth/login": "public",
    "POST /api/v1/auth/login/second-factor": "public", "POST /api/v1/me/email/confirm": "public",
    "GET /api/v1/camera-models": "public", "GET /-/health": "public", "GET /-/plugins": "public",
    "GET /metrics": "public", "GET /openapi.json": "public", "GET /.well-known/oauth-authorization-server": "public",
    "GET /api/v1/privacy/processing": "public", "GET /privacy": "public", "GET /login": "public",
    "GET /signup": "public", "GET /api-docs": "public",
    "GET /api/v1/shared-cases/{token}": "public: a case's link, the token is the key (tests/test_cases.py)",
    "GET /shared/{token}": "public: a case's link, the token is the key (tests/test_cases.py)",
    "POST /api/v1/auth/logout": "ends the caller's own session",
    "DELETE /api/v1/me/sessions": "ends the caller's own other sessions",
    "POST /api/v1/ingest/clips": "camera upload credentials, not a person",
    "GET /plugins/instar/alarm": "camera credentials", "POST /plugins/instar/alarm": "camera credentials",
    "POST /api/v1/me/push/test": "external (push server)", "POST /api/v1/me/telegram/test": "external (Telegram)",
    "POST /api/v1/me/telegram/chats": "external (Telegram)",
    "POST /api/v1/me/2fa/confirm": "the caller's own enrolment (needs a code)",
    "POST /api/v1/me/2fa/disable": "the caller's own enrolment (needs a code)",
    "GET /oauth/authorize": "links the caller's own account (an integration sees that account's cameras only)",
    "POST /oauth/authorize": "links the caller's own account", "POST /oauth/token": "OAuth client credentials",
    "POST /oauth/revoke": "OAuth client credentials",
}
SKIP |= {op: "platform endpoint: OAuth tokens of a linked account, not a session" for op in OPS
         if op.split(" ", 1)[1].startswith("/plugins/") and op not in SKIP}

#: a body each JSON operation accepts; sent by a sub-user allowed to, it changes nothing the snapshot keeps
BODIES: dict[str, Any] = {
    "PATCH /api/v1/cameras/{camera_id}": {"name": "<camera_name>"},
    "PUT /api/v1/cameras/{camera_id}/detectors": {"options": {}},
    "POST /api/v1/cameras/{camera_id}/actions": {"action": "motion_detection", "value": True},
    "POST /api/v1/events/{event_id}/feedback": {"detector": "rain", "label": "not_rain"},
    "PATCH /api/v1/events/{event_id}": {"kept": False},
    "PUT /api/v1/operator/cameras/{camera_id}/fair-use": {"override": None},
    "POST /api/v1/cameras": {"name": "Porch", "brand": "instar", "model": CAMERA_MODEL},
    "POST /api/v1/subusers": {"email": "<new_email>", "password": PASSWORD, "rights": {"<camera_id:A>": "view"}},
    "PUT /api/v1/subusers/{subuser_id}": {"rights": {"<camera_id:A>": "admin", "<camera_id:B>": "admin"}},
    "POST /api/v1/webhooks": {"url": "http://127.0.0.1:9/sub"},
    "PATCH /api/v1/webhooks/{webhook_id}": {"only_real_alarms": False},
    "PATCH /api/v1/me/offsite": {"prefix": "taken"},
    "POST /api/v1/me/offsite/backfill": {"camera_id": "<camera_id:B>"},
    "POST /api/v1/plates": {"text": "X-YZ 1", "name": "Mine"},
    "PATCH /api/v1/plates/{plate_id}": {"name": "Theirs", "notify": False},
    "POST /api/v1/cases": {"name": "Theirs"},
    "PATCH /api/v1/cases/{case_id}": {"notes": "theirs"},
    "POST /api/v1/cases/{case_id}/events": {"event_ids": ["0" * 32]},
    "POST /api/v1/cases/{case_id}/share": {"days": 7},
    "PATCH /api/v1/me": {"notify_email": False},
    "DELETE /api/v1/me": {"password": "not the password, sorry"},
    "POST /api/v1/tokens": {"name": "mine"},
    "PUT /api/v1/me/snooze": {"minutes": 60, "camera_id": "<camera_id:A>"},
    "PATCH /api/v1/me/push": {"picture": False},
    "PATCH /api/v1/me/telegram": {"picture": False},
}


# ---------------------------------------------------------------- the live server, the owner and the sub-users


class Client:
    """One signed-in person; requests go out on a fresh connection and leave the session as it was."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=60, limits=httpx.Limits(max_keepalive_connections=0))
        self.csrf = self.id = self.email = self.name = ""

    def login(self, email: str, name: str) -> Client:
        r = self.http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        self.csrf, self.id, self.email, self.name = r.json()["csrf_token"], r.json()["id"], email, name
        return self

    def send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf, **kw.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kw)

    def call(self, method: str, path: str, expect: int, **kw: Any) -> Any:
        r = self.send(method, path, **kw)
        assert r.status_code == expect, (self.name, method, path, r.status_code, r.text[:300])
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r


@dataclass
class World:
    server: LiveServer
    owner: Client
    subs: dict[str, Client] = field(default_factory=dict)  # right on camera A -> the sub-user
    a: dict[str, str] = field(default_factory=dict)  # path parameter -> camera A's id (and the owner's ids)
    b: dict[str, str] = field(default_factory=dict)  # path parameter -> camera B's id (and the owner's ids)
    names: dict[str, str] = field(default_factory=dict)  # "A"/"B" -> camera name
    spare: dict[str, str] = field(default_factory=dict)  # sub-user's right -> an event of A it may delete
    spare_ids: set[str] = field(default_factory=set)
    spare_series: set[str] = field(default_factory=set)
    before: dict[str, Any] = field(default_factory=dict)


def _upload(base: str, creds: dict[str, str], clip: Path, recorded_at: str | None = None) -> str:
    auth = base64.b64encode(f"{creds['username']}:{creds['password']}".encode()).decode()
    r = httpx.post(base + "/api/v1/ingest/clips", content=clip.read_bytes(), timeout=60,
                   params={"recorded_at": recorded_at} if recorded_at else None,
                   headers={"Authorization": f"Basic {auth}", "Content-Type": "video/mp4"})
    assert r.status_code == 201, r.text
    return str(r.json()["event_id"])


def _wait_analysed(owner: Client, event_ids: list[str]) -> None:
    import time

    t0 = time.monotonic()
    for eid in event_ids:
        while owner.call("GET", f"/api/v1/events/{eid}", 200)["status"] not in ("done", "failed", "skipped"):
            assert time.monotonic() - t0 < 90, "the clips were not analysed in time"
            time.sleep(0.1)


def _add_plate_finding(core: Any, clip_id: str, account_id: str, text: str) -> None:
    from alarmcloud.models import FindingRow

    with core.db.session() as s:
        s.add(FindingRow(clip_id=clip_id, account_id=account_id, detector="plates", label="plate", score=0.9,
                         time=0.5, text=text))
        s.commit()


def _owner_things(w: World, core: Any) -> dict[str, str]:
    """The owner's own things that path ids name (not tied to a camera)."""
    from alarmcloud import oauth
    from alarmcloud.models import Outbox

    o = w.owner
    ids: dict[str, str] = {"token_id": o.call("POST", "/api/v1/tokens", 201, json={"name": "script"})["id"]}
    ids["session_id"] = o.call("GET", "/api/v1/me/sessions", 200)["items"][0]["id"]
    ids["plate_id"] = str(o.call("POST", "/api/v1/plates", 201, json={"text": "M-OO 1", "name": "Mine"})["id"])
    ids["webhook_id"] = o.call("POST", "/api/v1/webhooks", 201, json={"url": "http://127.0.0.1:9/hook"})["id"]
    ids["case_id"] = o.call("POST", "/api/v1/cases", 201, json={"name": "Break-in"})["id"]
    with core.db.session() as s:
        row = Outbox(account_id=o.id, kind="webhook", target=ids["webhook_id"], state="sent",
                     payload={"type": "webhook.test", "event_id": None})
        s.add(row)
        s.commit()
        s.refresh(row)
        ids["delivery_id"] = str(row.id)
        client, _ = oauth.add_client(s, "Hub", "hub", ["https://hub.example/cb"], ["alarms:read"])
        oauth.issue_tokens(s, o.id, client.id, ["alarms:read"])
        ids["client_id"] = client.id
    ids["export_id"] = o.call("POST", "/api/v1/me/exports", 202)["id"]
    ids["consent_id"] = str(next(c["id"] for c in o.call("GET", "/api/v1/me/consents", 200)["items"]
                                 if c["kind"] == "clip_release" and c["subject"] == w.b["event_id"]))
    return ids


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("rights")
    settings: Any = test_settings(tmp / "data", camera_networks=["127.0.0.0/8"])
    settings.notify.webhook_networks = ["127.0.0.0/8"]
    clip = make_clip(tmp / "clip.mp4", seconds=2, width=320, height=176, fps=10)
    with LiveServer(settings) as srv:
        core: Any = srv.core
        reg = httpx.post(srv.url + "/api/v1/auth/register", json={"email": "owner@example.com", "password": PASSWORD})
        assert reg.status_code == 201, reg.text
        w = World(srv, Client(srv.url).login("owner@example.com", "owner"))
        o = w.owner
        creds: dict[str, dict[str, str]] = {}
        for cam, ids in (("A", w.a), ("B", w.b)):
            w.names[cam] = f"Camera{cam}{uuid.uuid4().hex[:6]}"
            ids["camera_id"] = o.call("POST", "/api/v1/cameras", 201, json={
                "name": w.names[cam], "brand": "instar", "model": CAMERA_MODEL})["id"]
            creds[cam] = o.call("POST", f"/api/v1/cameras/{ids['camera_id']}/upload-credentials", 201)
            ids["event_id"] = ids["clip_id"] = _upload(srv.url, creds[cam], clip)
        now = datetime.now(UTC)
        for n, right in enumerate(RIGHTS):  # events of A a sub-user allowed to may delete, far from the others
            eid = _upload(srv.url, creds["A"], clip, (now - timedelta(days=3 + n)).isoformat())
            w.spare[right] = eid
            w.spare_ids.add(eid)
        _wait_analysed(o, [w.a["event_id"], w.b["event_id"], *w.spare.values()])
        for cam, ids in (("A", w.a), ("B", w.b)):
            ids["series_id"] = o.call("GET", f"/api/v1/events/{ids['event_id']}", 200)["series_id"]
            _add_plate_finding(core, ids["event_id"], o.id, PLATE_A if cam == "A" else PLATE_B)
            o.call("POST", f"/api/v1/events/{ids['event_id']}/feedback", 201,
                   json={"detector": "rain", "label": "not_rain", "release": True})
        things = _owner_things(w, core)
        link = o.call("POST", "/api/v1/events/download", 201, json={"ids": [w.b["event_id"]], "link": True})
        things["link_id"] = link["url"].rstrip("/").rsplit("/", 1)[-1]
        for right in RIGHTS:
            email = f"{right}@example.com"
            sub = o.call("POST", "/api/v1/subusers", 201, json={"email": email, "password": PASSWORD,
                                                                "rights": {w.a["camera_id"]: right}})
            w.subs[right] = Client(srv.url).login(email, right)
            things.setdefault("subuser_id", sub["id"])  # the view sub-user (its own id is no target for others)
        things["detector"] = "rain"  # a detector name in a path (its threshold's score levels)
        w.a.update(things)
        w.b.update(things)
        w.before = snapshot(w)
        yield w


def _params(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def fill(path: str, ids: dict[str, str], **override: str) -> str:
    out = path
    for name in _params(path):
        out = out.replace("{" + name + "}", quote(override.get(name, ids.get(name, "x")), safe=""))
    return out


def _missing(real: str) -> str:
    return "987654321" if real.isdigit() else uuid.uuid4().hex


def body_for(w: World, op: str) -> dict[str, Any]:
    text = json.dumps(BODIES.get(op, {}))
    text = text.replace("<new_email>", f"n{uuid.uuid4().hex[:8]}@example.com")
    text = text.replace("<camera_id:A>", w.a["camera_id"]).replace("<camera_id:B>", w.b["camera_id"])
    return dict(json.loads(text))


def request(w: World, who: Client, op: str, ids: dict[str, str], camera: str = "A",
            **override: str) -> httpx.Response:
    method, path = op.split(" ", 1)
    kw: dict[str, Any] = {}
    if op in BODIES:
        body = body_for(w, op)
        if body.get("name") == "<camera_name>":
            body["name"] = w.names[camera]
        kw["json"] = body
    return who.send(method, fill(path, ids, **override), **kw)


def assert_json_error(case: str, r: httpx.Response, allowed: set[int]) -> None:
    assert r.status_code in allowed, f"{case}: {r.status_code} not in {sorted(allowed)}: {r.text[:300]}"
    if "text/html" in r.headers.get("content-type", ""):
        return  # a page's error is a page
    err = r.json().get("error")
    assert isinstance(err, dict) and err.get("code") and err.get("message"), f"{case}: {r.text[:300]}"


def same_answer(case: str, a: httpx.Response, b: httpx.Response, real: str, missing: str) -> None:
    """``a`` (a real id the caller may not know about) answers exactly like ``b`` (an id that names nothing)."""
    assert a.status_code == b.status_code, f"{case}: {a.status_code} {a.text[:200]} vs missing {b.status_code}"
    ta, tb = a.text.replace(real, "<id>"), b.text.replace(missing, "<id>")
    ta, tb = re.sub(r'name="csrf_token" value="[^"]*"', "", ta), re.sub(r'name="csrf_token" value="[^"]*"', "", tb)
    assert ta == tb, f"{case}: {ta[:300]!r} vs missing {tb[:300]!r}"


# ---------------------------------------------------------------- the classification is complete


def test_every_operation_is_classified() -> None:
    classes = [set(CAMERA_OPS), OWNER_ONLY, PERSONAL, LISTINGS, set(SKIP)]
    for op in OPS:
        assert sum(op in c for c in classes) == 1, f"{op}: classify it (exactly once) in this module"
    for c in classes:
        assert c <= set(OPS), sorted(c - set(OPS))
    for op in CAMERA_OPS:
        assert set(_params(op.split(" ", 1)[1])) & CAMERA_IDS, op


# ---------------------------------------------------------------- camera B: like a missing id


def _b_targets(op: str) -> list[str]:
    return [p for p in _params(op.split(" ", 1)[1]) if p in CAMERA_IDS]


B_CASES = [pytest.param(right, op, name, id=f"{right}-B:{name}-{op}") for op in CAMERA_OPS
           for name in _b_targets(op) for right in RIGHTS]


@pytest.mark.parametrize(("right", "op", "name"), B_CASES)
def test_camera_b_answers_like_a_missing_id(world: World, right: str, op: str, name: str) -> None:
    case = f"{right} on B {op}"
    who = world.subs[right]
    real = world.b[name]
    missing = _missing(real)
    r = request(world, who, op, world.b, "B")
    assert_json_error(case, r, {403, 404})
    same_answer(case, r, request(world, who, op, world.b, "B", **{name: missing}), real, missing)


# ---------------------------------------------------------------- camera A: the right decides

A_CASES = [pytest.param(right, op, id=f"{right}-A-{op}") for op in CAMERA_OPS for right in RIGHTS]


@pytest.mark.parametrize(("right", "op"), A_CASES)
def test_camera_a_needs_the_right(world: World, right: str, op: str) -> None:
    case = f"{right} on A {op}"
    need = CAMERA_OPS[op]
    who = world.subs[right]
    override = {"event_id": world.spare[right]} if op == "DELETE /api/v1/events/{event_id}" else {}
    r = request(world, who, op, world.a, "A", **override)
    if LEVEL[right] < LEVEL[need]:
        assert_json_error(case, r, {403})
        return
    # allowed: served, or refused for a reason other than rights (e.g. 409: the camera has no address)
    assert r.status_code < 500 and r.status_code not in (401, 403, 404), f"{case}: {r.status_code} {r.text[:300]}"


def test_a_sub_user_cannot_release_a_recording(world: World) -> None:
    for right, who in world.subs.items():
        r = who.send("POST", f"/api/v1/events/{world.a['event_id']}/feedback",
                     json={"detector": "rain", "label": "not_rain", "release": True})
        assert_json_error(f"{right} release", r, {403})


def test_a_sub_user_cannot_restrict_the_account(world: World) -> None:
    for right, who in world.subs.items():
        assert_json_error(f"{right} restrict", who.send("PATCH", "/api/v1/me", json={"restricted": True}), {403})


# ---------------------------------------------------------------- owner-only operations

OWNER_CASES = [pytest.param(right, op, id=f"{right}-owner-{op}") for op in sorted(OWNER_ONLY) for right in RIGHTS]


@pytest.mark.parametrize(("right", "op"), OWNER_CASES)
def test_owner_only_operations_are_refused(world: World, right: str, op: str) -> None:
    case = f"{right} {op}"
    who = world.subs[right]
    r = request(world, who, op, world.a)
    names = _params(op.split(" ", 1)[1])
    assert_json_error(case, r, {403, 404} if names else {403})
    for name in names:  # the owner's ids answer like missing ones
        real = world.a[name]
        missing = _missing(real)
        same_answer(case, r, request(world, who, op, world.a, **{name: missing}), real, missing)


# ---------------------------------------------------------------- each person's own things

PERSONAL_CASES = [pytest.param(right, op, id=f"{right}-own-{op}") for op in sorted(PERSONAL) for right in RIGHTS]


@pytest.mark.parametrize(("right", "op"), PERSONAL_CASES)
def test_personal_operations_serve_only_the_caller(world: World, right: str, op: str) -> None:
    case = f"{right} {op}"
    who = world.subs[right]
    names = _params(op.split(" ", 1)[1])
    r = request(world, who, op, world.a)
    for name in names:  # the owner's ids answer like missing ones
        real = world.a[name]
        missing = _missing(real)
        assert_json_error(case, r, {403, 404})
        same_answer(case, r, request(world, who, op, world.a, **{name: missing}), real, missing)
    if names:
        return
    if op == "DELETE /api/v1/me":  # sent with a wrong password: refused, the sub-user stays
        assert_json_error(case, r, {400, 401, 403})
        return
    assert r.status_code < 400, f"{case}: {r.status_code} {r.text[:300]}"
    if op == "POST /api/v1/me/exports":
        return
    for secret in (world.b["camera_id"], world.names["B"], world.b["event_id"], world.owner.email,
                   world.a["token_id"], world.a["client_id"]):
        assert secret not in r.text, f"{case}: the answer names {secret}"


def test_a_sub_users_export_holds_nothing_of_camera_b(world: World) -> None:
    import time

    for right, who in world.subs.items():
        r = who.send("GET", "/api/v1/me/export")
        assert r.status_code == 200, r.text[:300]
        with zipfile.ZipFile(io.BytesIO(r.content)) as z:
            text = " ".join(z.namelist()) + "".join(
                z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith(".json"))
        for secret in (world.b["camera_id"], world.names["B"], world.b["event_id"], PLATE_B):
            assert secret not in text, f"{right}: the export names {secret}"
        started = who.call("POST", "/api/v1/me/exports", 202)
        t0 = time.monotonic()
        while (info := who.call("GET", started["url"], 200))["state"] == "running":
            assert time.monotonic() - t0 < 30
            time.sleep(0.1)
        assert info["state"] == "done", info
        z2 = zipfile.ZipFile(io.BytesIO(who.send("GET", started["url"] + "?download=1").content))
        assert not any(world.b["event_id"] in n or world.names["B"] in n for n in z2.namelist())
        assert all(PLATE_B not in z2.read(n).decode("utf-8", "replace") for n in z2.namelist() if n.endswith(".json"))


# ---------------------------------------------------------------- listings, search, statistics, downloads


def _forbidden_texts(w: World) -> list[str]:
    return [w.b["camera_id"], w.names["B"], w.b["event_id"], w.b["series_id"], PLATE_B]


LISTING_QUERIES: dict[str, list[tuple[str, dict[str, str]]]] = {
    "GET /api/v1/cameras": [("all", {})],
    "GET /api/v1/events": [("all", {}), ("camera_B", {"camera_id": "<B:camera_id>"}),
                           ("series_B", {"series_id": "<B:series_id>"}), ("plate_B", {"plate": PLATE_B}),
                           ("label_plate", {"label": "plate"}), ("limit_200", {"limit": "200"})],
    "GET /api/v1/series": [("all", {}), ("camera_B", {"camera_id": "<B:camera_id>"})],
    "GET /api/v1/storage": [("all", {})],
    "GET /api/v1/stats": [("days_30", {"days": "30"})],
    "GET /": [("page", {}), ("plate_B", {"plate": PLATE_B})],
    "GET /cameras": [("page", {})],
    "GET /storage": [("page", {})],
    "GET /plates": [("page", {})],
}

LISTING_CASES = [pytest.param(right, op, q, id=f"{right}-list:{q}-{op}") for op, qs in LISTING_QUERIES.items()
                 for q, _ in qs for right in RIGHTS]


@pytest.mark.parametrize(("right", "op", "query"), LISTING_CASES)
def test_listings_show_nothing_of_camera_b(world: World, right: str, op: str, query: str) -> None:
    params = {k: v.replace("<B:camera_id>", world.b["camera_id"]).replace("<B:series_id>", world.b["series_id"])
              for k, v in dict(LISTING_QUERIES[op])[query].items()}
    r = world.subs[right].send("GET", op.split(" ", 1)[1], params=params)
    assert r.status_code == 200, f"{right} {op}: {r.status_code} {r.text[:300]}"
    for secret in _forbidden_texts(world):
        if secret not in params.values():  # a page shows the filter it was asked for
            assert secret not in r.text, f"{right} {op} {query}: the answer names {secret}"
    if op == "GET /api/v1/events" and query == "all":  # what the right allows is there
        assert world.a["event_id"] in r.text
    if op == "GET /api/v1/storage":
        assert {p["camera_id"] for p in r.json()["per_camera"]} == {world.a["camera_id"]}, r.text
        assert r.json()["clip_count"] == 1 + len(world.spare_ids) - _deleted_spares(world), r.text


def _deleted_spares(w: World) -> int:
    from alarmcloud.models import Clip

    core: Any = w.server.core
    with core.db.session() as s:
        return sum(s.get(Clip, eid) is None for eid in w.spare_ids)


def test_stats_count_only_camera_a(world: World) -> None:
    owner = sum(d["clips"] for d in world.owner.call("GET", "/api/v1/stats", 200, params={"days": "30"})["days"])
    for right, who in world.subs.items():
        mine = sum(d["clips"] for d in who.call("GET", "/api/v1/stats", 200, params={"days": "30"})["days"])
        assert mine == owner - 1, (right, mine, owner)  # camera B's clip is counted for the owner only


DOWNLOADS: dict[str, dict[str, Any]] = {
    "ids_B": {"ids": ["<B:event_id>"]},
    "ids_A_and_B": {"ids": ["<A:event_id>", "<B:event_id>"]},
    "camera_B": {"camera_id": "<B:camera_id>"},
    "plate_B": {"plate": PLATE_B},
    "all": {"all": True},
    "label_plate": {"label": "plate"},
}
DOWNLOAD_CASES = [pytest.param(right, case, mode, id=f"{right}-download:{case}:{mode}") for case in DOWNLOADS
                  for mode in ("count", "zip", "link") for right in RIGHTS]


@pytest.mark.parametrize(("right", "case", "mode"), DOWNLOAD_CASES)
def test_downloads_hold_nothing_of_camera_b(world: World, right: str, case: str, mode: str) -> None:
    text = (json.dumps(DOWNLOADS[case]).replace("<B:event_id>", world.b["event_id"])
            .replace("<A:event_id>", world.a["event_id"]).replace("<B:camera_id>", world.b["camera_id"]))
    body = json.loads(text)
    if mode == "count":
        body["count_only"] = True
    elif mode == "link":
        body["link"] = True
    who = world.subs[right]
    r = who.send("POST", "/api/v1/events/download", json=body)
    if case in ("ids_B", "ids_A_and_B", "camera_B", "plate_B"):  # like ids/filters that match nothing
        assert_json_error(f"{right} download {case}", r, {404})
        missing = uuid.uuid4().hex
        r2 = who.send("POST", "/api/v1/events/download", json=json.loads(
            text.replace(world.b["event_id"], missing).replace(world.b["camera_id"], missing)
            .replace(PLATE_B, "QQ9999")))
        assert r.status_code == r2.status_code and r.json()["error"]["code"] == r2.json()["error"]["code"]
        return
    assert r.status_code in (200, 201), f"{right} download {case}: {r.status_code} {r.text[:300]}"
    if mode == "count":
        assert 0 < r.json()["count"] <= 1 + len(world.spare_ids), r.text
        return
    if mode == "link":
        r = who.send("GET", r.json()["url"])
        assert r.status_code == 200, r.text[:300]
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        names = z.namelist()
        index = z.read("events.json").decode()
    for secret in _forbidden_texts(world):
        assert secret not in index and not any(secret in n for n in names), f"{right} {case}: names {secret}"
    assert world.a["event_id"] in index


def test_a_sub_user_erasing_itself_leaves_the_owners_data(world: World) -> None:
    """``DELETE /api/v1/me`` by a sub-user (with its password) erases that person only."""
    o = world.owner
    o.call("POST", "/api/v1/subusers", 201, json={"email": "leaving@example.com", "password": PASSWORD,
                                                  "rights": {world.a["camera_id"]: "admin"}})
    who = Client(world.server.url).login("leaving@example.com", "leaving")
    who.call("POST", "/api/v1/tokens", 201, json={"name": "mine"})
    before = [o.call("GET", p, 200) for p in ("/api/v1/cameras", "/api/v1/events", "/api/v1/tokens")]
    assert who.call("DELETE", "/api/v1/me", 200, json={"password": PASSWORD})["accounts"] == 1
    after = [o.call("GET", p, 200) for p in ("/api/v1/cameras", "/api/v1/events", "/api/v1/tokens")]
    assert _clean(after, set()) == _clean(before, set())
    assert "leaving@example.com" not in json.dumps(o.call("GET", "/api/v1/subusers", 200))


# ---------------------------------------------------------------- afterwards: the owner's data

SNAPSHOT = ["/api/v1/me", "/api/v1/cameras", "/api/v1/events", "/api/v1/series", "/api/v1/plates",
            "/api/v1/tokens", "/api/v1/subusers", "/api/v1/webhooks", "/api/v1/me/consents", "/api/v1/me/links",
            "/api/v1/me/2fa", "/api/v1/me/push", "/api/v1/me/telegram", "/api/v1/me/offsite", "/api/v1/storage"]
VOLATILE = {"last_used_at", "last_seen_at", "csrf_token", "view", "used_bytes", "free_bytes", "used_ratio",
            "waiting", "last_copy_at", "rejected_uploads", "clip_count", "oldest_clip", "bytes", "clips"}


def _clean(value: Any, spare: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v, spare) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):  # the spare events (deleted by the sub-users allowed to) are left out
        return [_clean(v, spare) for v in value if not (spare & set(re.findall(r"[0-9a-f]{32}", json.dumps(v))))]
    return value


def snapshot(w: World) -> dict[str, Any]:
    from alarmcloud.models import Camera, CameraRight, Clip, Consent, FindingRow, Series
    from sqlmodel import col, func, select

    out: dict[str, Any] = {}
    paths = [*SNAPSHOT, *(f"/api/v1/cameras/{ids['camera_id']}/detectors" for ids in (w.a, w.b))]
    for path in paths:
        r = w.owner.send("GET", path, params={"limit": "200"} if path.endswith(("/events", "/series")) else None)
        out[path] = (r.status_code, _clean(r.json(), w.spare_ids))
    core: Any = w.server.core
    with core.db.session() as s:
        out["rows:clips"] = int(s.exec(select(func.count()).select_from(Clip)
                                       .where(col(Clip.id).not_in(w.spare_ids))).one())
        out["rows:findings"] = int(s.exec(select(func.count()).select_from(FindingRow)
                                          .where(col(FindingRow.clip_id).not_in(w.spare_ids))).one())
        spare_series = set(s.exec(select(Clip.series_id).where(col(Clip.id).in_(w.spare_ids))).all()) | w.spare_series
        w.spare_series |= {x for x in spare_series if x}
        out["rows:series"] = int(s.exec(select(func.count()).select_from(Series)
                                        .where(col(Series.id).not_in(w.spare_series))).one())
        for name, model in (("cameras", Camera), ("rights", CameraRight), ("consents", Consent)):
            out[f"rows:{name}"] = int(s.exec(select(func.count()).select_from(model)).one())
        cams = {c.id: (c.name, c.upload_username, c.host_enc, c.password_enc, c.detectors, c.detector_options,
                       c.privacy_masks, c.motion_detection) for c in s.exec(select(Camera)).all()}
        out["cameras"] = {k: repr(v) for k, v in cams.items()}
        out["upload_password:B"] = s.get(Camera, w.b["camera_id"]).upload_password_hash  # type: ignore[union-attr]
    root = Path(core.blobs.root)
    out["blobs"] = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
                          and p.suffix in (".mp4", ".jpg") and not any(e in str(p) for e in w.spare_ids))
    return out


def test_zz_the_owners_data_is_unchanged(world: World) -> None:
    """Runs last (the module's tests run in file order): only the permitted calls changed anything."""
    import difflib

    after = snapshot(world)
    # permitted: the admin sub-user rotated camera A's upload login and restarted its view check ("view")
    changed = [k for k, v in world.before.items() if after[k] != v]
    diff = "\n".join(line for k in changed for line in difflib.unified_diff(
        json.dumps(world.before[k], indent=1, sort_keys=True, default=str).splitlines(),
        json.dumps(after[k], indent=1, sort_keys=True, default=str).splitlines(), k, k, lineterm="", n=1))
    assert not changed, diff
    from alarmcloud.models import Clip

    core: Any = world.server.core
    with core.db.session() as s:  # what a sub-user may delete is only what its right allows
        kept = {right for right, eid in world.spare.items() if s.get(Clip, eid) is not None}
    assert kept == {r for r in RIGHTS if LEVEL[r] < LEVEL[CAMERA_OPS["DELETE /api/v1/events/{event_id}"]]}
