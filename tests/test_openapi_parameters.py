"""The OpenAPI document tells a client everything it may send and what comes back: every query parameter an API
operation reads is declared (a client generated from ``/openapi.json`` can filter, page and tag uploads), every
success status an operation answers with is documented, and files and web pages are described as such.

The query parameters an operation reads are found in its code: ``request.query_params.get("x")`` /
``request.query_params["x"]`` in the endpoint and in the module's functions it calls (``_limit(request)``,
``query_events(..., params, ...)``: ``params.get("x")``), so a new filter that is not declared fails here.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import httpx
import jsonschema
import pytest
from alarmcloud import openapi
from alarmcloud.testing import LiveServer, app_routes, test_settings
from starlette.routing import Mount, Route


def _endpoints(rs: list[Any], prefix: str = "") -> Iterator[tuple[str, str, Callable[..., Any]]]:
    """(method, path, endpoint function) of every route, mounted ones with their prefix."""
    for r in rs:
        if isinstance(r, Mount):
            yield from _endpoints(list(r.routes), prefix + r.path)
        elif isinstance(r, Route):
            for m in sorted((r.methods or set()) - {"HEAD"}):
                yield m, prefix + r.path, r.endpoint


TABLE = app_routes()
ROUTES = list(_endpoints(TABLE))
DOC = openapi.build(TABLE)  # the app's own document, as /openapi.json serves it
API = [(m, p, fn) for m, p, fn in ROUTES if p.startswith("/api/")]


def _holds_query(node: ast.expr, names: set[str]) -> bool:
    """``<x>.query_params``, or a name that holds the query as a dict (``params``)."""
    return (isinstance(node, ast.Attribute) and node.attr == "query_params") or (
        isinstance(node, ast.Name) and node.id in names)


def _is_query_read(node: ast.Call, names: set[str]) -> bool:
    """``<query>.get(...)``."""
    f = node.func
    return isinstance(f, ast.Attribute) and f.attr == "get" and _holds_query(f.value, names)


def _literals(arg: ast.expr, loops: dict[str, list[str]]) -> list[str]:
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return [arg.value]
    if isinstance(arg, ast.Name) and arg.id in loops:  # for k in ("a", "b"): query_params.get(k)
        return loops[arg.id]
    return []


def query_reads(fn: Callable[..., Any], module: ModuleType | None = None, depth: int = 3) -> set[str]:
    """The query parameter names ``fn`` reads, and the functions of its module it calls with the request or the
    query (followed ``depth`` calls deep)."""
    module = module or inspect.getmodule(fn)
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    found: set[str] = set()
    held = {"params"}  # names that hold the query as a dict: params = dict(request.query_params)
    loops: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.comprehension | ast.For) and isinstance(node.target, ast.Name) and isinstance(
                node.iter, ast.Tuple):
            loops[node.target.id] = [e.value for e in node.iter.elts if isinstance(e, ast.Constant)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _is_query_read(node, held) and node.args:
            found.update(_literals(node.args[0], loops))
        elif isinstance(node, ast.Subscript) and _holds_query(node.value, held):
            found.update(_literals(node.slice, loops))
        if depth and isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and module is not None:
            callee = getattr(module, node.func.id, None)
            passes = any(isinstance(a, ast.Name) and a.id in {"request", *held} for a in node.args)
            if passes and inspect.isfunction(callee) and inspect.getmodule(callee) is module:
                found |= query_reads(callee, module, depth - 1)
    return found


def declared(method: str, path: str, where: str = "query") -> set[str]:
    op = DOC["paths"][path][method.lower()]
    return {p["name"] for p in op.get("parameters", []) if p["in"] == where}


@pytest.mark.parametrize(("method", "path", "fn"), [pytest.param(*r, id=f"{r[0]} {r[1]}") for r in API])
def test_every_query_parameter_an_operation_reads_is_declared(method: str, path: str,
                                                              fn: Callable[..., Any]) -> None:
    missing = query_reads(fn) - declared(method, path)
    assert not missing, f"{method} {path} reads {sorted(missing)} but /openapi.json does not declare them"


def test_the_code_reading_finds_the_event_filters_and_the_upload_tags() -> None:
    """The reader above finds what it must (else the test above could pass on an operation it cannot read)."""
    by_key = {f"{m} {p}": fn for m, p, fn in API}
    assert query_reads(by_key["GET /api/v1/events"]) == {
        "camera_id", "site", "series_id", "since", "until", "verdict", "label", "plate", "plates", "kept", "case_id",
        "cursor", "limit"}
    assert query_reads(by_key["POST /api/v1/ingest/clips"]) == {"recorded_at", "trigger", "original_name"}
    assert query_reads(by_key["GET /api/v1/webhooks/{webhook_id}/deliveries"]) == {"limit"}
    assert query_reads(by_key["GET /api/v1/me/exports/{export_id}"]) == {"download"}


def test_the_document_is_valid_openapi_3_1() -> None:
    """What client generators and API tools check first (openapi-spec-validator)."""
    from openapi_spec_validator import OpenAPIV31SpecValidator

    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in
              OpenAPIV31SpecValidator(DOC).iter_errors()]
    assert not errors, errors[:10]


def test_the_upload_metadata_headers_and_ranges_are_declared() -> None:
    assert {"X-Recorded-At", "X-Trigger", "X-File-Name"} <= declared("POST", "/api/v1/ingest/clips", "header")
    for path in ("/api/v1/events/{event_id}/video", "/api/v1/downloads/{link_id}"):
        assert "Range" in declared("GET", path, "header")
        assert "206" in DOC["paths"][path]["get"]["responses"]


def test_pages_are_html_and_files_carry_their_media_type() -> None:
    paths = DOC["paths"]
    assert list(paths["/login"]["get"]["responses"]["200"]["content"]) == ["text/html"]
    assert paths["/login"]["get"]["tags"] == ["web-ui"]
    assert list(paths["/api/v1/events/{event_id}/video"]["get"]["responses"]["200"]["content"]) == ["video/mp4"]
    assert list(paths["/api/v1/events/{event_id}/thumbnail"]["get"]["responses"]["200"]["content"]) == [
        "image/jpeg"]
    assert "text/html" not in str(paths["/api/v1/events"]["get"]["responses"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, httpx.Client, dict[str, str]]]:
    settings: Any = test_settings(tmp_path_factory.mktemp("openapi") / "data")
    settings.notify.webhook_networks = ["127.0.0.0/8"]  # the webhook below points at loopback
    with LiveServer(settings) as srv, httpx.Client(
            base_url=srv.url, timeout=60) as c:
        yield from _world(srv, c, tmp_path_factory)


def _world(srv: LiveServer, c: httpx.Client, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[LiveServer, httpx.Client, dict[str, str]]]:
    from alarmcloud.testing import make_clip

    pw = "correct horse battery staple"
    c.post("/api/v1/auth/register", json={"email": "doc@example.com", "password": pw}).raise_for_status()
    r = c.post("/api/v1/auth/login", json={"email": "doc@example.com", "password": pw})
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    cam = c.post("/api/v1/cameras", json={"name": "Yard", "brand": "instar", "model": "IN-9008 Full HD",
                                          "host": "10.0.0.5"}).json()
    creds = c.post(f"/api/v1/cameras/{cam['id']}/upload-credentials").json()
    clip = make_clip(tmp_path_factory.mktemp("clip") / "a.mp4", seconds=2.0, width=640, height=352)
    up = httpx.post(srv.url + "/api/v1/ingest/clips", content=clip.read_bytes(), timeout=60,
                    auth=(creds["username"], creds["password"]), headers={"Content-Type": "video/mp4"},
                    params={"trigger": "pir", "original_name": "A-20260501.mp4",
                            "recorded_at": str(int(time.time()) - 60)})
    assert up.status_code == 201, up.text
    yield srv, c, {"camera_id": cam["id"], "event_id": up.json()["event_id"]}


def _check(doc: dict[str, Any], method: str, path: str, r: httpx.Response) -> None:
    """The answer's status is documented, and a JSON answer matches its schema."""
    op = doc["paths"][path][method.lower()]
    code = str(r.status_code) if str(r.status_code) in op["responses"] or r.status_code < 400 else \
        f"{r.status_code // 100}XX"
    assert code in op["responses"], (method, path, r.status_code, r.text[:300])
    content = op["responses"][code].get("content", {})
    if "application/json" in content:
        jsonschema.validate(r.json(), content["application/json"]["schema"])
    elif content:
        assert r.headers["content-type"].split(";")[0] in content, (method, path, r.headers["content-type"])
    else:
        assert not r.content, (method, path, r.status_code)


def test_real_answers_match_the_documented_statuses_and_schemas(
        world: tuple[LiveServer, httpx.Client, dict[str, str]]) -> None:
    srv, c, ids = world
    doc = c.get("/openapi.json").json()
    cid, eid = ids["camera_id"], ids["event_id"]
    for _ in range(200):  # the clip's analysis (the series list and the stats count it once it is done)
        if c.get(f"/api/v1/events/{eid}").json()["verdict"] is not None:
            break
        time.sleep(0.1)
    ids = {"event_id": eid, "camera_id": cid, "detector": "rain"}
    for method, path, kw in [
        ("GET", "/api/v1/me", {}),
        ("PATCH", "/api/v1/me", {"json": {"notify_cooldown_seconds": 60}}),
        ("GET", "/api/v1/storage", {}),
        ("GET", "/api/v1/series", {"params": {"camera_id": cid, "limit": "5"}}),
        ("GET", "/api/v1/stats", {"params": {"days": "3"}}),
        ("GET", "/api/v1/events", {"params": {"camera_id": cid, "limit": "1"}}),
        ("GET", "/api/v1/events/{event_id}/video", {}),
        ("GET", "/api/v1/events/{event_id}/video", {"headers": {"Range": "bytes=0-99"}}),
        ("GET", "/api/v1/events/{event_id}/thumbnail", {}),
        ("GET", "/api/v1/cameras/{camera_id}/rejections", {}),
        ("GET", "/api/v1/cameras/{camera_id}/detectors/{detector}/scores", {"params": {"days": "7"}}),
        *[("GET", path, {}) for path in ("/api/v1/me/push", "/api/v1/me/telegram", "/api/v1/me/2fa",
                                         "/api/v1/me/consents", "/api/v1/me/links", "/api/v1/webhooks",
                                         "/api/v1/camera-models", "/-/health", "/-/plugins",
                                         "/api/v1/privacy/processing", "/metrics", "/login",
                                         "/.well-known/oauth-authorization-server")],
        ("POST", "/api/v1/me/telegram/chats", {"error": 409}),  # no bot token yet
        ("POST", "/oauth/token", {"data": {"grant_type": "authorization_code", "code": "x"}, "error": 401}),
        ("GET", "/api/v1/events/{event_id}", {"url": "/api/v1/events/nope", "error": 404}),  # the API's error
    ]:
        url, error = kw.pop("url", path.format(**ids)), kw.pop("error", None)
        r = c.request(method, url, **kw)
        assert r.status_code == error if error else r.status_code < 400, (method, url, r.status_code, r.text[:200])
        _check(doc, method, path, r)
    r = c.get(f"/api/v1/events/{eid}/thumbnail")
    _check(doc, "GET", "/api/v1/events/{event_id}/thumbnail", c.get(
        f"/api/v1/events/{eid}/thumbnail", headers={"If-None-Match": r.headers["etag"]}))
    # the series list, filtered by its declared camera_id, holds the clip
    series = c.get("/api/v1/series", params={"camera_id": cid}).json()["items"]
    assert [cl["id"] for s in series for cl in s["clips"]] == [eid]
    # exports: 202, then the progress, then the ZIP with ?download=1
    r = c.post("/api/v1/me/exports")
    _check(doc, "POST", "/api/v1/me/exports", r)
    url = r.json()["url"]
    for _ in range(300):
        r = c.get(url)
        _check(doc, "GET", "/api/v1/me/exports/{export_id}", r)
        if r.json()["state"] != "running":
            break
        time.sleep(0.1)
    assert r.json()["state"] == "done", r.json()
    z = c.get(url, params={"download": "1"})
    assert z.status_code == 200 and z.content[:2] == b"PK"
    # two-step verification: enrol answers 201 with the secret
    _check(doc, "POST", "/api/v1/me/2fa", c.post("/api/v1/me/2fa"))
    # a webhook's life: made (201 with its secret), read, changed, tested (201), its deliveries, sent again (202),
    # removed (204)
    r = c.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["clip.stored"]})
    assert r.status_code == 201, r.text
    _check(doc, "POST", "/api/v1/webhooks", r)
    hook = f"/api/v1/webhooks/{r.json()['id']}"
    _check(doc, "GET", "/api/v1/webhooks/{webhook_id}", c.get(hook))
    _check(doc, "PATCH", "/api/v1/webhooks/{webhook_id}", c.patch(hook, json={"rotate_secret": True}))
    r = c.post(hook + "/test")
    assert r.status_code == 201, r.text
    _check(doc, "POST", "/api/v1/webhooks/{webhook_id}/test", r)
    _check(doc, "GET", "/api/v1/webhooks/{webhook_id}/deliveries", c.get(hook + "/deliveries", params={"limit": 5}))
    _check(doc, "POST", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
           c.post(f"{hook}/deliveries/{r.json()['id']}/redeliver"))
    _check(doc, "DELETE", "/api/v1/webhooks/{webhook_id}", c.delete(hook))
    # tokens: made (201), listed, revoked (204)
    r = c.post("/api/v1/tokens", json={"name": "doc", "read_only": True})
    assert r.status_code == 201, r.text
    _check(doc, "POST", "/api/v1/tokens", r)
    _check(doc, "GET", "/api/v1/tokens", c.get("/api/v1/tokens"))
    _check(doc, "DELETE", "/api/v1/tokens/{token_id}", c.delete(f"/api/v1/tokens/{r.json()['id']}"))
    # deleting an event answers 204 (it used to be documented as 200)
    _check(doc, "DELETE", "/api/v1/events/{event_id}", c.delete(f"/api/v1/events/{eid}"))
