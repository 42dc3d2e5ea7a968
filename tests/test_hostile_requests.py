"""Hostile requests against every operation of the OpenAPI document: a precise 4xx with a JSON error, nothing
half-written, another tenant's ids answered exactly like ids that do not exist, and the server keeps serving.

The operations are read from the OpenAPI document the app builds (the same document ``/openapi.json`` serves; a
test checks that). One server serves the whole module: an owner with a camera, an analysed clip and the other
things the path ids name, and a second account with its own. Each hostile request is one named test case
(``<variant>-<METHOD path>``). The last test compares the owner's data with the snapshot taken before the barrage.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from alarmcloud.testing import LiveServer, make_clip, openapi_document, test_settings

PASSWORD = "correct horse battery staple"
CAMERA_MODEL = "IN-9008 Full HD"
MAX_JSON = 1024 * 1024  # errors.json_body's cap


# ---------------------------------------------------------------- the operations (from the app's OpenAPI document)


DOC: dict[str, Any] = openapi_document()  # the app's own, as /openapi.json serves it
OPS: list[tuple[str, str]] = [(m.upper(), p) for p, ops in DOC["paths"].items() for m in ops]


def key(op: tuple[str, str]) -> str:
    return f"{op[0]} {op[1]}"


#: operations not exercised here at all, with the reason
SKIP: dict[str, str] = {}

#: POST/PUT/PATCH operations that read no JSON body (a body is ignored; sending one runs the operation)
NO_JSON_BODY: dict[str, str] = {
    "POST /api/v1/auth/logout": "ends the session",
    "POST /api/v1/cameras/{camera_id}/upload-credentials": "rotates the camera's upload password",
    "POST /api/v1/cameras/{camera_id}/setup": "configures the camera over the network",
    "POST /api/v1/cameras/{camera_id}/view/dismiss": "resets the view check",
    "POST /api/v1/me/exports": "starts a data export",
    "POST /api/v1/webhooks/{webhook_id}/test": "sends a delivery to the receiver",
    "POST /api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver": "queues a delivery again",
    "POST /api/v1/me/push/test": "sends to the push service (external)",
    "POST /api/v1/me/telegram/test": "sends to Telegram (external)",
    "POST /api/v1/me/telegram/chats": "asks Telegram (external)",
    "POST /api/v1/me/offsite/test": "writes to the owner's bucket (external)",
    "POST /api/v1/me/offsite/retry": "queues the off-site copies again",
    "POST /api/v1/me/offsite/sftp-key": "makes a new SSH key for the SFTP copies",
    "POST /api/v1/me/2fa": "starts two-step enrolment",
    "POST /api/v1/cameras/{camera_id}/privacy-masks/apply": "starts a privacy-mask job",
    "POST /oauth/authorize": "an HTML form post (form fields, not JSON)",
    "POST /oauth/token": "a form post (RFC 6749)",
    "POST /oauth/revoke": "a form post (RFC 7009)",
    "POST /api/v1/ingest/clips": "a video upload (see the upload cases)",
    "POST /plugins/instar/alarm": "a camera call-back (query or form, camera credentials)",
}

#: operations anyone may call without signing in (the rest must answer 401/403 without credentials)
PUBLIC = {
    "POST /api/v1/auth/register", "POST /api/v1/auth/login", "POST /api/v1/auth/login/second-factor",
    "POST /api/v1/me/email/confirm", "GET /api/v1/camera-models", "GET /-/health", "GET /-/plugins", "GET /metrics",
    "GET /openapi.json", "GET /.well-known/oauth-authorization-server", "GET /api/v1/privacy/processing",
    "GET /privacy", "GET /login", "GET /signup", "GET /plugins/ifttt/ifttt/v1/status", "GET /api-docs",
    "POST /api/v1/auth/logout",  # without a session there is nothing to end: 204
    "GET /api/v1/shared-cases/{token}", "GET /shared/{token}",  # a case's link: the token is the key
}

#: web pages (HTML): without a session they send the browser to the sign-in page
PAGES = {key(op) for op in OPS if op[0] == "GET" and not op[1].startswith(("/api/", "/-/", "/plugins/", "/oauth/"))
         and op[1] not in ("/metrics", "/openapi.json", "/.well-known/oauth-authorization-server")}
PAGES |= {"GET /oauth/authorize", "POST /oauth/authorize"}  # the consent page a browser is sent to

#: answers in the OAuth 2.0 error shape (RFC 6749 5.2: {"error": "...", "error_description": "..."})
OAUTH_SHAPE = {"POST /oauth/token", "POST /oauth/revoke"}
#: plugin endpoints answer in the shape their platform expects (Alexa, Google, IFTTT), not the core's
PLATFORM_SHAPE = {key(op) for op in OPS if op[1].startswith("/plugins/")}


# ---------------------------------------------------------------- the live server and the two accounts


class Client:
    """One signed-in person; hostile requests go through ``send``, which never keeps the cookies answers set."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=60, limits=httpx.Limits(keepalive_expiry=2.0))
        # a fresh connection per hostile request: one answer that ends its connection cannot fail the next case
        self.raw = httpx.Client(base_url=base, timeout=60, limits=httpx.Limits(max_keepalive_connections=0))
        self.csrf = ""
        self.id = ""
        self.email = ""

    def register(self, email: str) -> Client:
        r = self.http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        r = self.http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        self.csrf, self.id, self.email = r.json()["csrf_token"], r.json()["id"], email
        return self

    def call(self, method: str, path: str, expect: int, **kw: Any) -> Any:
        r = self.http.request(method, path, headers={"X-CSRF-Token": self.csrf}, **kw)
        assert r.status_code == expect, (method, path, r.status_code, r.text)
        return r.json() if r.content and r.headers.get("content-type", "").startswith("application/json") else r

    def send(self, method: str, path: str, *, session: bool = True, csrf: bool = True,
             headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        """A request as this person (``session=False``: as nobody) that leaves this person's session as it was."""
        hdrs: dict[str, str] = {}
        if session:
            hdrs["Cookie"] = f"ac_session={self.http.cookies.get('ac_session')}"
            if csrf:
                hdrs["X-CSRF-Token"] = self.csrf
        hdrs.update(headers or {})
        self.raw.cookies.clear()
        return self.raw.request(method, path, headers=hdrs, **kw)


@dataclass
class World:
    server: LiveServer
    owner: Client
    other: Client
    own: dict[str, str] = field(default_factory=dict)  # path parameter -> the owner's real id
    theirs: dict[str, str] = field(default_factory=dict)  # path parameter -> the other account's real id
    creds: dict[str, Any] = field(default_factory=dict)  # the owner's camera upload credentials
    operator: Client | None = None  # an operator of the deployment (for the operator-only bodies)
    before: dict[str, Any] = field(default_factory=dict)


def _outbox_row(core: Any, account_id: str, webhook_id: str) -> str:
    """A finished webhook delivery of the account (what the redeliver path names)."""
    from alarmcloud.models import Outbox

    with core.db.session() as s:
        row = Outbox(account_id=account_id, kind="webhook", target=webhook_id, state="sent",
                     payload={"type": "webhook.test", "event_id": None})
        s.add(row)
        s.commit()
        s.refresh(row)
        return str(row.id)


def _populate(world: World, who: Client, ids: dict[str, str], clip: Path, n: int) -> None:
    """A camera with an analysed clip, a token, a sub-user, a plate, a webhook with a delivery, a consent, a
    download link, an export and an integration link; their ids go into ``ids`` by path parameter name."""
    from alarmcloud import oauth

    core: Any = world.server.core
    cam = who.call("POST", "/api/v1/cameras", 201, json={"name": "Garage", "brand": "instar", "model": CAMERA_MODEL})
    ids["camera_id"] = cam["id"]
    ids["detector"] = "rain"  # a detector name in a path (its threshold's score levels)
    creds = who.call("POST", f"/api/v1/cameras/{cam['id']}/upload-credentials", 201)
    auth = base64.b64encode(f"{creds['username']}:{creds['password']}".encode()).decode()
    r = httpx.post(who.base + "/api/v1/ingest/clips", content=clip.read_bytes(), timeout=60,
                   headers={"Authorization": f"Basic {auth}", "Content-Type": "video/mp4"})
    assert r.status_code == 201, r.text
    ids["event_id"] = ids["clip_id"] = r.json()["event_id"]
    ids["token_id"] = who.call("POST", "/api/v1/tokens", 201, json={"name": "script"})["id"]
    ids["session_id"] = who.call("GET", "/api/v1/me/sessions", 200)["items"][0]["id"]  # its signed-in session
    ids["subuser_id"] = who.call("POST", "/api/v1/subusers", 201, json={
        "email": f"helper{n}@example.com", "password": PASSWORD, "rights": {cam["id"]: "view"}})["id"]
    ids["plate_id"] = str(who.call("POST", "/api/v1/plates", 201, json={"text": "M-AB 12" + str(n),
                                                                         "name": "Mine"})["id"])
    ids["case_id"] = who.call("POST", "/api/v1/cases", 201, json={"name": "Break-in"})["id"]  # no clip: kept none
    ids["webhook_id"] = who.call("POST", "/api/v1/webhooks", 201, json={"url": f"http://127.0.0.1:9/hook{n}"})["id"]
    ids["delivery_id"] = _outbox_row(core, who.id, ids["webhook_id"])
    ids["export_id"] = who.call("POST", "/api/v1/me/exports", 202)["id"]
    with core.db.session() as s:
        client, _ = oauth.add_client(s, f"Hub {n}", f"hub{n}", ["https://hub.example/cb"], ["alarms:read"])
        oauth.issue_tokens(s, who.id, client.id, ["alarms:read"])
        ids["client_id"] = client.id
    deadline = 60
    import time

    t0 = time.monotonic()
    while who.call("GET", f"/api/v1/events/{ids['event_id']}", 200)["status"] not in ("done", "failed", "skipped"):
        assert time.monotonic() - t0 < deadline, "the clip was not analysed in time"
        time.sleep(0.1)
    ids["series_id"] = who.call("GET", f"/api/v1/events/{ids['event_id']}", 200)["series_id"]
    who.call("POST", f"/api/v1/events/{ids['event_id']}/feedback", 201,
             json={"detector": "rain", "label": "not_rain", "release": True})
    ids["consent_id"] = str(who.call("GET", "/api/v1/me/consents", 200)["items"][0]["id"])
    link = who.call("POST", "/api/v1/events/download", 201, json={"ids": [ids["event_id"]], "link": True})
    ids["link_id"] = link["url"].rstrip("/").rsplit("/", 1)[-1]
    if n == 0:
        world.creds = creds


#: what the owner's data looks like: the listings a customer sees (volatile fields left out)
SNAPSHOT = ["/api/v1/me", "/api/v1/cameras", "/api/v1/events", "/api/v1/series", "/api/v1/plates",
            "/api/v1/tokens", "/api/v1/subusers", "/api/v1/webhooks", "/api/v1/me/consents", "/api/v1/me/links",
            "/api/v1/me/2fa", "/api/v1/me/push", "/api/v1/me/telegram", "/api/v1/me/offsite"]
#: ``rejected_uploads`` counts the hostile uploads below: a rejected upload is recorded so the owner sees why
VOLATILE = {"last_used_at", "last_seen_at", "csrf_token", "view", "used_bytes", "waiting", "last_copy_at",
            "rejected_uploads"}
#: listings that may gain items: a valid body labelled JSON with parameters (``charset``) is understood (a token)
GROWS = {"/api/v1/tokens"}


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def snapshot(world: World) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in [*SNAPSHOT, f"/api/v1/cameras/{world.own['camera_id']}/detectors"]:
        r = world.owner.send("GET", path)
        out[path] = (r.status_code, _clean(r.json()))
    core: Any = world.server.core
    from alarmcloud.models import Camera, Clip, FindingRow, Series
    from sqlmodel import func, select

    with core.db.session() as s:
        for name, model in (("clips", Clip), ("cameras", Camera), ("findings", FindingRow), ("series", Series)):
            out[f"rows:{name}"] = int(s.exec(select(func.count()).select_from(model)).one())
    root = Path(core.blobs.root)
    out["blobs"] = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
                          and p.suffix in (".mp4", ".jpg"))
    return out


def _operator(srv: LiveServer) -> Client:
    from alarmcloud.models import Account
    from sqlmodel import select

    op = Client(srv.url).register("operator@example.com")
    core: Any = srv.core
    with core.db.session() as s:
        acc = s.exec(select(Account).where(Account.email == op.email)).one()
        acc.role = "operator"
        s.add(acc)
        s.commit()
    return op


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("hostile")
    settings: Any = test_settings(tmp / "data", camera_networks=["127.0.0.0/8"])
    settings.notify.webhook_networks = ["127.0.0.0/8"]
    clip = make_clip(tmp / "clip.mp4", seconds=3, width=320, height=176, fps=10)
    with LiveServer(settings) as srv:
        w = World(srv, Client(srv.url).register("owner@example.com"), Client(srv.url).register("other@example.com"))
        _populate(w, w.owner, w.own, clip, 0)
        _populate(w, w.other, w.theirs, clip, 1)
        w.operator = _operator(srv)
        w.before = snapshot(w)
        yield w


# ---------------------------------------------------------------- what every error answer must look like


def assert_error(op: str, r: httpx.Response, allowed: set[int] | None = None) -> None:
    """A 4xx (one of ``allowed`` when given) whose body is the operation's JSON error shape."""
    if op == "POST /plugins/alexa/directive" and r.status_code == 200:  # Alexa's errors are events (HTTP 200)
        assert r.json()["event"]["header"]["name"] == "ErrorResponse", r.text[:300]
        return
    assert 400 <= r.status_code < 500, f"{op}: {r.status_code} {r.text[:300]}"
    if allowed is not None:
        assert r.status_code in allowed, f"{op}: {r.status_code} not in {sorted(allowed)}: {r.text[:300]}"
    if op in PAGES and "text/html" in r.headers.get("content-type", ""):
        return  # a page's error is a page
    assert r.headers.get("content-type", "").startswith("application/json"), f"{op}: not JSON: {r.text[:300]}"
    body = r.json()
    if op in OAUTH_SHAPE:
        assert isinstance(body.get("error"), str), body
        return
    if op in PLATFORM_SHAPE and not isinstance(body.get("error"), dict):
        return  # e.g. IFTTT's {"errors": [{"message"}]}
    err = body.get("error")
    assert isinstance(err, dict) and isinstance(err.get("code"), str) and err["code"], f"{op}: {body}"
    assert isinstance(err.get("message"), str) and err["message"], f"{op}: {body}"


def fill(path: str, ids: dict[str, str], **override: str) -> str:
    """The path with its parameters filled from ``ids`` (the owner's), ``override`` taking precedence."""
    out = path
    for name in _params(path):
        value = override.get(name, ids.get(name, "x"))
        out = out.replace("{" + name + "}", quote(value, safe=""))
    return out


def _params(path: str) -> list[str]:
    import re

    return re.findall(r"{(\w+)}", path)


# ---------------------------------------------------------------- path ids


def test_the_served_document_is_the_one_tested(world: World) -> None:
    served = world.owner.send("GET", "/openapi.json").json()
    assert sorted((m.upper(), p) for p, ops in served["paths"].items() for m in ops) == sorted(OPS)
    for op in [*NO_JSON_BODY, *PUBLIC, *SKIP, *BODIES]:
        assert tuple(op.split(" ", 1)) in OPS, f"{op} is not an operation of the document"
    for op in OPS:  # every operation that takes a body is classified: a JSON body to attack, or none read
        if op[0] in ("POST", "PUT", "PATCH"):
            assert key(op) in BODIES or key(op) in NO_JSON_BODY or key(op) in SKIP, key(op)


#: path parameters that name something a tenant owns (another tenant's id must answer like a missing one)
TENANT_IDS = {"token_id", "subuser_id", "camera_id", "link_id", "event_id", "plate_id", "client_id", "export_id",
              "consent_id", "clip_id", "webhook_id", "delivery_id", "session_id", "case_id"}

BAD_IDS = {
    "missing": None,  # an id of the right form that names nothing
    "word": "abc",
    "huge": str(2**70),
    "negative": "-1",
    "zero": "0",
    "superscript": "\u00b2",
    "unicode": "kam\u00e9ra-\u2603-\U0001f4f7",
    "long": "9" * 3000,
    "spaces": " 1 ",
    "nul": "1\x00",
}

PATH_CASES = [pytest.param(op, name, variant, id=f"{variant}:{name}-{key(op)}")
              for op in OPS if key(op) not in SKIP for name in _params(op[1])
              for variant in ["other_tenant", *BAD_IDS]
              if variant != "other_tenant" or name in TENANT_IDS]


def _missing(real: str) -> str:
    return "987654321" if real.isdigit() else uuid.uuid4().hex


def _path_request(world: World, op: tuple[str, str], name: str, value: str) -> httpx.Response:
    method, path = op
    kw: dict[str, Any] = {}
    if key(op) in BODIES:
        kw["content"] = body_for(world, key(op))
        kw["headers"] = {"Content-Type": "application/json"}
    return world.owner.send(method, fill(path, world.own, **{name: value}), **kw)


def _same_answer(a: httpx.Response, b: httpx.Response, theirs: str, missing: str) -> None:
    assert a.status_code == b.status_code, (a.status_code, a.text[:200], b.status_code, b.text[:200])
    assert a.text.replace(theirs, "<id>") == b.text.replace(missing, "<id>"), (a.text[:300], b.text[:300])


@pytest.mark.parametrize(("op", "name", "variant"), PATH_CASES)
def test_path_ids(world: World, op: tuple[str, str], name: str, variant: str) -> None:
    k = key(op)
    if variant == "other_tenant":
        theirs = world.theirs[name]
        missing = _missing(theirs)
        r = _path_request(world, op, name, theirs)
        assert_error(k, r)
        _same_answer(r, _path_request(world, op, name, missing), theirs, missing)
        return
    value = BAD_IDS[variant] or _missing(world.own.get(name, "x"))
    r = _path_request(world, op, name, value)
    assert_error(k, r)
    if name in TENANT_IDS:
        assert r.status_code in (400, 403, 404), f"{k}: {r.status_code} {r.text[:200]}"


#: another tenant's ids inside bodies and query strings: (method, path, body or None, query or None, id kind)
IDS_ELSEWHERE: dict[str, tuple[str, str, Any, dict[str, str] | None, str]] = {
    "download_ids": ("POST", "/api/v1/events/download", {"ids": ["<ID>"], "count_only": True}, None, "event_id"),
    "download_camera": ("POST", "/api/v1/events/download", {"camera_id": "<ID>", "count_only": True}, None,
                        "camera_id"),
    "subuser_rights": ("PUT", "/api/v1/subusers/<subuser_id>", {"rights": {"<ID>": "view"}}, None, "camera_id"),
    "new_subuser_rights": ("POST", "/api/v1/subusers", {"email": "<new_email>", "password": PASSWORD,
                                                        "rights": {"<ID>": "view"}}, None, "camera_id"),
    "events_of_camera": ("GET", "/api/v1/events", None, {"camera_id": "<ID>"}, "camera_id"),
    "events_of_series": ("GET", "/api/v1/events", None, {"series_id": "<ID>"}, "series_id"),
    "series_of_camera": ("GET", "/api/v1/series", None, {"camera_id": "<ID>"}, "camera_id"),
    "backfill_camera": ("POST", "/api/v1/me/offsite/backfill", {"camera_id": "<ID>"}, None, "camera_id"),
}


@pytest.mark.parametrize("case", list(IDS_ELSEWHERE))
def test_other_tenants_ids_in_bodies_and_queries(world: World, case: str) -> None:
    """Another tenant's id in a body or a filter is answered exactly like an id that does not exist."""
    method, path, body, query, kind = IDS_ELSEWHERE[case]
    path = path.replace("<subuser_id>", world.own["subuser_id"])

    def ask(value: str) -> httpx.Response:
        kw: dict[str, Any] = {}
        if body is not None:
            text = body_for(world, "", body).decode().replace("<ID>", value)
            kw = {"content": text.encode(), "headers": {"Content-Type": "application/json"}}
        if query is not None:
            kw["params"] = {k: v.replace("<ID>", value) for k, v in query.items()}
        return world.owner.send(method, path, **kw)

    theirs = world.theirs[kind]
    missing = _missing(theirs)
    r = ask(theirs)
    assert r.status_code < 500, r.text[:300]
    if r.status_code >= 400:
        assert_error(f"{method} {path}", r)
    else:
        assert theirs not in r.text, r.text[:300]
    _same_answer(r, ask(missing), theirs, missing)


# ---------------------------------------------------------------- query parameters

BAD_QUERIES: dict[str, list[tuple[str, str]]] = {
    "limit_negative": [("limit", "-1")],
    "limit_zero": [("limit", "0")],
    "limit_huge": [("limit", str(10**12))],
    "limit_word": [("limit", "ten")],
    "limit_superscript": [("limit", "\u00b2")],
    "limit_float": [("limit", "1.5")],
    "limit_repeated": [("limit", "1"), ("limit", "abc")],
    "since_invalid": [("since", "yesterday")],
    "since_out_of_range": [("since", "2024-13-45T25:61:00")],
    "since_year_0": [("since", "0000-01-01")],
    "since_edge_of_time": [("since", "0001-01-01T00:00:00+01:00")],
    "until_huge_number": [("until", "9" * 40)],
    "cursor_garbage": [("cursor", "!!not-a-cursor!!")],
    "cursor_wrong_json": [("cursor", base64.urlsafe_b64encode(b'{"a": 1}').decode())],
    "cursor_bad_time": [("cursor", base64.urlsafe_b64encode(b'["not a time", "x"]').decode())],
    "nul_filters": [("camera_id", "\x00"), ("label", "\x00"), ("verdict", "\x00"), ("plate", "\x00")],
    "long_filters": [("camera_id", "c" * 5000), ("plate", "P" * 5000), ("series_id", "s" * 5000)],
    "days_negative": [("days", "-5")],
    "days_huge": [("days", str(10**12))],
    "days_superscript": [("days", "\u00b2")],
    "download_garbage": [("download", "\x00")],
    "next_elsewhere": [("next", "//evil.example/")],
    "tz_garbage": [("tz", "Mars/Olympus_Mons")],
}

#: operations that read these query parameters: an invalid value must be refused, never ignored
READS = {
    "GET /api/v1/events": {"limit", "since", "until", "cursor"},
    "GET /api/v1/series": {"limit"},
    "GET /api/v1/webhooks/{webhook_id}/deliveries": {"limit"},
    "GET /api/v1/stats": {"days"},
    "GET /api/v1/cameras/{camera_id}/detectors/{detector}/scores": {"days"},
}


def test_the_parameters_checked_here_are_declared_in_the_document() -> None:
    for k, names in READS.items():
        method, path = k.split(" ", 1)
        params = DOC["paths"][path][method.lower()].get("parameters", [])
        assert names <= {p["name"] for p in params if p["in"] == "query"}, k


#: values a reader may accept (clamped or a valid filter that matches nothing)
ACCEPTABLE = {"limit_huge", "limit_zero", "nul_filters", "long_filters", "since_edge_of_time"}

QUERY_CASES = [pytest.param(op, variant, id=f"{variant}-{key(op)}") for op in OPS
               if op[0] in ("GET", "DELETE") and key(op) not in SKIP for variant in BAD_QUERIES]


@pytest.mark.parametrize(("op", "variant"), QUERY_CASES)
def test_query_parameters(world: World, op: tuple[str, str], variant: str) -> None:
    k = key(op)
    method, path = op
    # a delete that ignored the query would delete: it names another tenant's id
    url = fill(path, world.theirs) if method == "DELETE" else fill(path, world.own)
    r = world.owner.send(method, url, params=BAD_QUERIES[variant])
    assert r.status_code < 500, f"{k}: {r.status_code} {r.text[:300]}"
    if r.status_code >= 400:
        assert_error(k, r)
    read = READS.get(k, set()) & {name for name, _ in BAD_QUERIES[variant]}
    if read and variant not in ACCEPTABLE:
        assert_error(k, r, {400, 422})


# ---------------------------------------------------------------- JSON bodies


#: a body each JSON operation accepts (or refuses only for a reason other than its shape); the hostile variants
#: are made from it. Sent as they are, they never change the owner's data. ``<camera_id>`` and the like stand
#: for the owner's ids, ``<other:camera_id>`` for the other account's, ``<email>`` for the owner's address.
BODIES: dict[str, dict[str, Any]] = {
    "POST /api/v1/auth/register": {"email": "<new_email>", "password": PASSWORD},
    "POST /api/v1/auth/login": {"email": "<email>", "password": "not the password, sorry"},
    "POST /api/v1/auth/login/second-factor": {"pending_token": "x" * 40, "code": "123456"},
    "PATCH /api/v1/me": {"notify_email": False},
    "DELETE /api/v1/me": {"password": "not the password, sorry"},
    "POST /api/v1/me/email/confirm": {"token": "x" * 32},
    "POST /api/v1/tokens": {"name": "script"},
    "POST /api/v1/subusers": {"email": "helper0@example.com", "password": PASSWORD,
                              "rights": {"<camera_id>": "view"}},
    "PUT /api/v1/subusers/{subuser_id}": {"rights": {"<camera_id>": "view"}},
    "POST /api/v1/cameras": {"name": "Porch", "brand": "nobrand", "model": CAMERA_MODEL},
    "PATCH /api/v1/cameras/{camera_id}": {"name": "Garage"},
    "PUT /api/v1/cameras/{camera_id}/detectors": {"options": {}},
    "POST /api/v1/cameras/{camera_id}/actions": {"action": "motion_detection", "value": True},
    "POST /api/v1/events/download": {"ids": ["<event_id>"], "count_only": True},
    "POST /api/v1/events/{event_id}/feedback": {"detector": "rain", "label": "not_rain"},
    "PATCH /api/v1/events/{event_id}": {"kept": False},  # as it is: the owner keeps no clip
    "POST /api/v1/plates": {"text": "M-AB 120", "name": "Mine"},
    "POST /api/v1/cases": {"name": "Break-in"},  # a new case, without clips (none is kept)
    "PATCH /api/v1/cases/{case_id}": {"notes": ""},  # as it is
    "POST /api/v1/cases/{case_id}/events": {"event_ids": ["<other:event_id>"]},  # refused: another tenant's clip
    "POST /api/v1/cases/{case_id}/share": {"days": 0},  # refused: out of range (a link made would end the last)
    "PATCH /api/v1/plates/{plate_id}": {"notify": True},  # as it is: the valid request changes nothing
    "POST /api/v1/webhooks": {"url": "ftp://127.0.0.1/hook"},
    "PATCH /api/v1/webhooks/{webhook_id}": {"only_real_alarms": True},
    "PUT /api/v1/me/snooze": {"minutes": 60, "camera_id": "<other:camera_id>"},  # refused: not the owner's camera
    "PATCH /api/v1/me/push": {"picture": False},
    "PATCH /api/v1/me/telegram": {"picture": False},
    "PATCH /api/v1/me/offsite": {"prefix": ""},
    "POST /api/v1/me/offsite/backfill": {"camera_id": "<other:camera_id>"},
    "POST /api/v1/me/offsite/prune": {"dry_run": True},  # refused: no days to keep set
    "POST /api/v1/me/2fa/confirm": {"code": "123456", "password": PASSWORD},
    "POST /api/v1/me/2fa/disable": {"code": "123456", "password": PASSWORD},
    "PUT /api/v1/operator/cameras/{camera_id}/fair-use": {"override": None},
    "POST /plugins/ifttt/ifttt/v1/test/setup": {},
    "POST /plugins/ifttt/ifttt/v1/triggers/{slug}": {"triggerFields": {}},
    "POST /plugins/ifttt/ifttt/v1/triggers/{slug}/fields/{field}/options": {},
    "POST /plugins/ifttt/ifttt/v1/triggers/{slug}/fields/{field}/validate": {"value": "x"},
    "POST /plugins/ifttt/ifttt/v1/actions/{slug}": {"actionFields": {}},
    "POST /plugins/ifttt/ifttt/v1/actions/{slug}/fields/{field}/options": {},
    "POST /plugins/ifttt/ifttt/v1/queries/{slug}": {"queryFields": {}},
    "POST /plugins/ifttt/ifttt/v1/queries/{slug}/fields/{field}/options": {},
    "POST /plugins/google_home/fulfillment": {"requestId": "1", "inputs": []},
    "POST /plugins/alexa/directive": {"directive": {}},
}


def body_for(world: World, k: str, body: dict[str, Any] | None = None) -> bytes:
    """``body`` (default: the operation's valid body) as JSON with its placeholders filled in."""
    import re

    text = json.dumps(BODIES[k] if body is None else body)
    text = text.replace("<email>", world.owner.email).replace("<new_email>", f"n{uuid.uuid4().hex[:8]}@example.com")
    text = re.sub(r"<other:(\w+)>", lambda m: world.theirs[m.group(1)], text)
    text = re.sub(r"<(\w+_id)>", lambda m: world.own[m.group(1)], text)
    return (text.replace('"__1e309__"', "1e309").replace('"__nan__"', "NaN")
            .replace('"__deep__"', "[" * 10000 + "]" * 10000)).encode()


def _deep(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


#: raw bodies that are never a valid request body (sent with Content-Type application/json)
RAW_BODIES: dict[str, bytes] = {
    "empty": b"",
    "not_json": b"{not json",
    "truncated": b'{"name": "x"',
    "list": b'[1, 2, 3]',
    "string": b'"a string"',
    "null": b"null",
    "number": b"42",
    "invalid_utf8": b'{"name": "\xff\xfe"}',
    "nested_lists_10000": b"[" * 10000 + b"]" * 10000,
    "nested_objects_10000": _deep(10000),
    "nan": b'{"a": NaN}',
    "over_the_limit": b'{"name": "' + b"x" * (2 * MAX_JSON) + b'"}',
}

#: values of the wrong type for a field, by the type of the field's valid value
WRONG: dict[type, list[Any]] = {
    str: [123, ["x"], {"x": 1}, True],
    bool: ["yes", 1, [True]],
    int: ["1", 1.5, [1], True],
    float: ["1", [1.0]],
    dict: [["x"], "x", 1],
    list: [{"x": 1}, "x", 1],
}


def _body_ops() -> list[tuple[str, str]]:
    return [op for op in OPS if op[0] in ("POST", "PUT", "PATCH", "DELETE") and key(op) in BODIES]


def _field_variants(body: dict[str, Any]) -> list[tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]]:
    out: list[tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = []
    for name, value in body.items():
        for i, wrong in enumerate(WRONG.get(type(value), [])):
            out.append((f"{name}_wrong_type_{i}", lambda b, n=name, v=wrong: {**b, n: v}))
        if isinstance(value, dict) and value:  # the right keys, values of the wrong type
            out.append((f"{name}_inner_lists", lambda b, n=name: {**b, n: {k: [v] for k, v in b[n].items()}}))
            out.append((f"{name}_inner_objects", lambda b, n=name: {**b, n: {k: {"v": v} for k, v in b[n].items()}}))
        if isinstance(value, str):
            out.append((f"{name}_1MB", lambda b, n=name: {**b, n: "x" * (MAX_JSON - 1000)}))
            out.append((f"{name}_nul", lambda b, n=name: {**b, n: "a\x00b"}))
        out.append((f"{name}_1e309", lambda b, n=name: {**b, n: "__1e309__"}))
        out.append((f"{name}_nan", lambda b, n=name: {**b, n: "__nan__"}))
        out.append((f"{name}_deep", lambda b, n=name: {**b, n: "__deep__"}))
    return out


#: a valid body under a label that is not JSON: the core answers 415 before reading it (a cross-site form or
#: ``fetch`` sends these labels without a CORS preflight); ``None``: no Content-Type header at all
NOT_JSON_LABELS: dict[str, str | None] = {
    "wrong_content_type": "text/plain",
    "text_plain_charset": "text/plain; charset=utf-8",
    "no_content_type": None,
    "form_content_type": "application/x-www-form-urlencoded",
    "multipart_content_type": "multipart/form-data; boundary=x",
    "text_json": "text/json",
}
#: labels that are JSON: the body is read as if labelled ``application/json``
JSON_LABELS = {"json_label_with_charset": "Application/JSON; charset=UTF-8"}
#: operations that also take a form post by design (the web UI's download: the CSRF token is a form field)
FORM_POSTS = {"POST /api/v1/events/download"}

BODY_CASES = [pytest.param(op, variant, id=f"{variant}-{key(op)}") for op in _body_ops()
              for variant in [*RAW_BODIES, "unknown_field", "missing_fields", *NOT_JSON_LABELS, *JSON_LABELS,
                              "form_body", *(n for n, _ in _field_variants(BODIES[key(op)]))]]


@pytest.mark.parametrize(("op", "variant"), BODY_CASES)
def test_json_bodies(world: World, op: tuple[str, str], variant: str) -> None:
    k = key(op)
    method, path = op
    base = BODIES[k]
    ctype: str | None = "application/json"
    if variant in RAW_BODIES:
        content = RAW_BODIES[variant]
    elif variant == "unknown_field":
        content = body_for(world, k, {**base, "zz_unknown": 1})
    elif variant == "missing_fields":
        if not base:
            pytest.skip("the body has no fields")
        content = b"{}"
    elif variant in NOT_JSON_LABELS:
        content, ctype = body_for(world, k), NOT_JSON_LABELS[variant]
    elif variant in JSON_LABELS:
        content, ctype = body_for(world, k), JSON_LABELS[variant]
    elif variant == "form_body":
        content, ctype = b"name=x&email=y", "application/x-www-form-urlencoded"
    else:
        content = body_for(world, k, dict(_field_variants(base))[variant](base))
    who = world.operator if "/operator/" in path and world.operator else world.owner  # operators only
    r = who.send(method, fill(path, world.own), content=content, headers={} if ctype is None else {"Content-Type": ctype})
    core_json = k not in PLATFORM_SHAPE and not (variant in ("form_body", "form_content_type") and k in FORM_POSTS)
    if core_json and (variant in NOT_JSON_LABELS or variant == "form_body"):  # refused for its label, not read
        assert_error(k, r, {415})
        assert r.json()["error"]["code"] == "unsupported_media_type", f"{k}: {r.text[:300]}"
        return
    if variant in JSON_LABELS:  # the body is valid: answered as with plain application/json, never 415
        assert r.status_code < 500 and r.status_code != 415, f"{k}: {r.status_code} {r.text[:300]}"
        return
    if (variant == "missing_fields" or variant in NOT_JSON_LABELS) and r.status_code < 400:
        return  # every field optional / a platform's JSON understood whatever its label
    assert_error(k, r)
    if variant == "unknown_field" and k not in PLATFORM_SHAPE and r.status_code != 403:  # named, not ignored
        assert r.json()["error"]["code"] in ("unknown_field", "unknown_detector"), f"{k}: {r.text[:300]}"
    if variant == "over_the_limit" and k not in PLATFORM_SHAPE:
        assert r.status_code in (401, 403, 404, 413), f"{k}: {r.status_code} {r.text[:200]}"


# ---------------------------------------------------------------- headers: credentials, CSRF


AUTH_VARIANTS: dict[str, dict[str, str]] = {
    "no_auth": {},
    "bearer_garbage": {"Authorization": "Bearer not-a-token"},
    "bearer_empty": {"Authorization": "Bearer"},
    "basic_garbage": {"Authorization": "Basic !!!not-base64!!!"},
    "basic_wrong": {"Authorization": "Basic " + base64.b64encode(b"owner@example.com:wrong").decode()},
    "unknown_scheme": {"Authorization": "Negotiate abc"},
    "huge_header": {"Authorization": "Bearer " + "A" * 12000},
    "cookie_garbage": {"Cookie": "ac_session=forged-session-value"},
}

AUTH_CASES = [pytest.param(op, variant, id=f"{variant}-{key(op)}") for op in OPS if key(op) not in SKIP
              for variant in [*AUTH_VARIANTS, "no_csrf"]
              if variant != "no_csrf" or op[0] not in ("GET", "HEAD")]


@pytest.mark.parametrize(("op", "variant"), AUTH_CASES)
def test_credentials(world: World, op: tuple[str, str], variant: str) -> None:
    k = key(op)
    method, path = op
    kw: dict[str, Any] = {}
    headers = dict(AUTH_VARIANTS.get(variant, {}))
    if k in BODIES:
        kw["content"] = body_for(world, k)
        headers["Content-Type"] = "application/json"
    if variant == "no_csrf":
        if k in PUBLIC or k in OAUTH_SHAPE or k in PLATFORM_SHAPE or k == "POST /api/v1/ingest/clips":
            pytest.skip("no session involved")
        r = world.owner.send(method, fill(path, world.own), csrf=False, headers=headers, **kw)
        assert_error(k, r, {403})
        return
    r = world.owner.send(method, fill(path, world.own), session=False, headers=headers, **kw)
    assert r.status_code < 500, f"{k}: {r.status_code} {r.text[:300]}"
    if k in PUBLIC:
        if r.status_code >= 400:
            assert_error(k, r)
        return
    if k in PAGES and r.status_code in (302, 303, 307):
        assert "/login" in r.headers.get("location", ""), r.headers
        return
    # a plugin path that names a thing of the platform (an IFTTT trigger slug) may be unknown before any login
    assert_error(k, r, {400, 401, 403, 404} if set(_params(path)) - TENANT_IDS else {400, 401, 403})


# ---------------------------------------------------------------- uploads


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


UPLOADS: dict[str, Callable[[World], dict[str, Any]]] = {
    "no_auth": lambda w: {"content": b"\x00" * 100, "headers": {"Content-Type": "video/mp4"}},
    "wrong_password": lambda w: {"content": b"\x00" * 100, "headers": {
        "Content-Type": "video/mp4", "Authorization": _basic(w.creds["username"], "wrong password")}},
    "account_password": lambda w: {"content": b"\x00" * 100, "headers": {
        "Content-Type": "video/mp4", "Authorization": _basic(w.owner.email, PASSWORD)}},
    "garbage": lambda w: {"content": b"\x00\x01not a video" * 1000, "headers": {
        "Content-Type": "video/mp4", "Authorization": _basic(w.creds["username"], w.creds["password"])}},
    "empty": lambda w: {"content": b"", "headers": {
        "Content-Type": "video/mp4", "Authorization": _basic(w.creds["username"], w.creds["password"])}},
    "json_instead": lambda w: {"content": b'{"video": "no"}', "headers": {
        "Content-Type": "application/json", "Authorization": _basic(w.creds["username"], w.creds["password"])}},
    "bad_recorded_at": lambda w: {"content": b"\x00" * 100, "params": {"recorded_at": "\x00" + "9" * 40},
                                  "headers": {"Content-Type": "video/mp4",
                                              "Authorization": _basic(w.creds["username"], w.creds["password"])}},
}


@pytest.mark.parametrize("variant", list(UPLOADS))
def test_hostile_uploads(world: World, variant: str) -> None:
    r = httpx.post(world.server.url + "/api/v1/ingest/clips", timeout=60, **UPLOADS[variant](world))
    assert_error("POST /api/v1/ingest/clips", r)


DOWNLOAD_FILTERS = {
    "since_superscript": {"since": "\u00b2"},
    "since_5000_digits": {"since": "9" * 5000},
    "since_edge_of_time": {"since": "0001-01-01T00:00:00+01:00"},
    "until_before_since": {"since": "2030-01-01", "until": "2020-01-01"},
    "plate_nul": {"plate": "\x00"},
    "label_long": {"label": "l" * 201},
    "camera_list": {"camera_id": ["x"]},
    "ids_and_all": {"ids": ["x"], "all": True},
    "ids_empty": {"ids": []},
    "ids_huge_list": {"ids": [uuid.uuid4().hex for _ in range(5000)]},
}


@pytest.mark.parametrize("case", list(DOWNLOAD_FILTERS))
def test_download_filters(world: World, case: str) -> None:
    """The download's filters are checked like the event list's: a 4xx for nonsense, never a crash."""
    body = {**DOWNLOAD_FILTERS[case], "count_only": True}
    r = world.owner.send("POST", "/api/v1/events/download", json=body)
    if r.status_code == 200 and case in ("until_before_since", "plate_nul", "since_edge_of_time"):
        assert r.json()["count"] == 0, r.text  # a valid filter that matches nothing
        return
    assert_error("POST /api/v1/events/download", r)


HOSTILE_URLS = ["http://[::1", "http://127.0.0.1:-1/", "javascript:alert(1)", "file:///etc/passwd", "http://",
                "http://" + "a" * 490 + ".example/", "http://exa mple.com/", "http://\u2603.example/",
                "http://127.0.0.1\x00.example.com/", "http://[fe80::1%25eth0]/", "http://127.0.0.1:99999/hook"]


@pytest.mark.parametrize("where", ["/api/v1/webhooks", "/api/v1/me/push"])
@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_hostile_urls(world: World, where: str, url: str) -> None:
    """A receiver URL that is malformed or points where it may not is a 400, never a crash (sent by the other
    account: a URL wrongly accepted is saved there, not in the owner's data)."""
    method = "POST" if where == "/api/v1/webhooks" else "PATCH"
    r = world.other.send(method, where, json={"url": url})
    assert_error(f"{method} {where}", r, {400})


# ---------------------------------------------------------------- media requests: Range and validators

RANGES = ["bytes=999999999999999999999999-", "bytes=-999999999999999999999999", "bytes=5-2", "bytes=-0",
          "bytes=0-0,5-6", "bytes=\u0661-\u0662", "items=0-10", "bytes=--1", "bytes=" + "1" * 5000 + "-"]


@pytest.mark.parametrize("path", ["/api/v1/events/{event_id}/video", "/api/v1/downloads/{link_id}"])
@pytest.mark.parametrize("rng", RANGES)
def test_hostile_ranges(world: World, path: str, rng: str) -> None:
    """A range that cannot be served is a 416 (or the whole file), never a crash."""
    headers: dict[str, Any] = {"Range": rng.encode()}  # raw UTF-8 bytes, as a hostile client sends them
    if rng == "bytes=5-2":
        headers["If-Range"] = '"garbage"'
    r = world.owner.send("GET", fill(path, world.own), headers=headers)
    assert r.status_code in (200, 206, 416), f"{path} {rng[:40]}: {r.status_code} {r.text[:200]}"


def test_a_revoked_token_is_refused(world: World) -> None:
    tok = world.owner.call("POST", "/api/v1/tokens", 201, json={"name": "revoked"})
    world.owner.call("DELETE", f"/api/v1/tokens/{tok['id']}", 204)
    r = world.owner.send("GET", "/api/v1/cameras", session=False, headers={"Authorization": f"Bearer {tok['token']}"})
    assert_error("GET /api/v1/cameras", r, {401})


# ---------------------------------------------------------------- OAuth form posts

FORMS: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "application/x-www-form-urlencoded"),
    "json_instead": (b'{"grant_type": "authorization_code"}', "application/json"),
    "invalid_utf8": (b"grant_type=\xff\xfe&code=\xff", "application/x-www-form-urlencoded"),
    "nul": (b"grant_type=authorization_code%00&code=%00&client_id=%00", "application/x-www-form-urlencoded"),
    "repeated": (b"grant_type=refresh_token&grant_type=authorization_code&token=a&token=b",
                 "application/x-www-form-urlencoded"),
    "unknown_grant": (b"grant_type=password&username=owner%40example.com&password=x",
                      "application/x-www-form-urlencoded"),
    "huge_field": (b"grant_type=authorization_code&code=" + b"A" * 60000, "application/x-www-form-urlencoded"),
    "over_the_limit": (b"grant_type=authorization_code&code=" + b"A" * (2 * MAX_JSON),
                       "application/x-www-form-urlencoded"),
}


@pytest.mark.parametrize("endpoint", ["/oauth/token", "/oauth/revoke"])
@pytest.mark.parametrize("variant", list(FORMS))
def test_oauth_form_posts(world: World, endpoint: str, variant: str) -> None:
    content, ctype = FORMS[variant]
    r = httpx.post(world.server.url + endpoint, content=content, headers={"Content-Type": ctype}, timeout=60)
    if endpoint == "/oauth/revoke" and r.status_code == 200 and variant != "over_the_limit":
        return  # RFC 7009 2.2: an invalid token is answered 200 (after the client authenticated) - not here
    if variant == "over_the_limit":
        assert_error(f"POST {endpoint} (too large)", r, {413})  # refused before OAuth parsing: the product's shape
        return
    assert_error(f"POST {endpoint}", r, {400, 401})


# ---------------------------------------------------------------- half-written changes


def _upload_hash(world: World) -> str | None:
    from alarmcloud.models import Camera

    core: Any = world.server.core
    with core.db.session() as s:
        cam = s.get(Camera, world.own["camera_id"])
        assert cam is not None
        return cam.upload_password_hash


def test_a_camera_without_an_address_is_not_set_up_and_keeps_its_upload_password(world: World) -> None:
    before = _upload_hash(world)
    r = world.owner.send("POST", f"/api/v1/cameras/{world.own['camera_id']}/setup")
    assert_error("POST /api/v1/cameras/{camera_id}/setup", r, {409})
    assert r.json()["error"]["code"] == "no_address"
    assert _upload_hash(world) == before  # the camera still uploads with the password it has


@pytest.mark.parametrize("code", ["\u00b9\u00b2\u00b3\u2074\u2075\u2076", "\u0661\u0662\u0663\u0664\u0665\u0666",
                                  "12345\x00"])
def test_two_step_codes_of_other_digits_are_refused(world: World, code: str) -> None:
    """Superscript or Arabic-Indic digits pass ``str.isdigit`` but cannot be compared to a code: a 400."""
    who = Client(world.server.url).register(f"twostep{uuid.uuid4().hex[:6]}@example.com")
    who.call("POST", "/api/v1/me/2fa", 201)
    r = who.send("POST", "/api/v1/me/2fa/confirm", json={"code": code, "password": PASSWORD})
    assert_error("POST /api/v1/me/2fa/confirm", r, {400})


# ---------------------------------------------------------------- afterwards


def test_the_server_still_serves_and_the_owners_data_is_unchanged(world: World) -> None:
    assert world.owner.send("GET", "/-/health").json()["status"] == "ok"
    after = snapshot(world)
    import difflib

    for path in GROWS:  # the items there before are there unchanged
        status, listing = after[path]
        after[path] = (status, {"items": [i for i in listing["items"] if i in world.before[path][1]["items"]]})
    changed = [path for path, value in world.before.items() if after[path] != value]
    diff = "\n".join(line for path in changed for line in difflib.unified_diff(
        json.dumps(world.before[path], indent=1, sort_keys=True).splitlines(),
        json.dumps(after[path], indent=1, sort_keys=True).splitlines(), path, path, lineterm="", n=1))
    assert not changed, diff
