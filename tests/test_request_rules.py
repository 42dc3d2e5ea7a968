"""Request rules every JSON endpoint of the core shares (docs/api.md): a JSON body must be labelled
``application/json`` (or ``application/*+json``), and a camera's brand cannot be changed.

A body that is not labelled JSON is refused with 415 before anything is done: a cross-site form or ``fetch`` with a
"simple" content type (``text/plain``, a form) needs no CORS preflight, so accepting it would let another web site
post JSON to the API; and a script that forgot the header learns what to send.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from alarmcloud.testing import LiveServer, test_settings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PASSWORD = "correct horse battery staple"

# ---------------------------------------------------------------- the body reader on its own

JSON_TYPES = ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON",
              "Application/Json ; Charset=UTF-8", "application/merge-patch+json", "application/vnd.example+json",
              "application/json;charset=UTF-8"]
NOT_JSON_TYPES = [None, "", "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
                  "multipart/form-data; boundary=x", "text/json", "application/jsonp", "application/json-seq",
                  "application/+json", "application/xjson", "json", "text/html", "application/octet-stream",
                  "application/json, text/plain", "application /json"]


def _reader_app() -> Starlette:
    """A route that answers what ``json_body`` read (the product's error handlers turn its errors into answers)."""
    from alarmcloud.errors import ApiError, api_error_handler, json_body

    async def required(request: Request) -> Response:
        return JSONResponse({"read": await json_body(request)})

    async def optional(request: Request) -> Response:
        return JSONResponse({"read": await json_body(request, optional=True)})

    return Starlette(routes=[Route("/required", required, methods=["POST", "PATCH", "PUT"]),
                             Route("/optional", optional, methods=["POST"])],
                     exception_handlers={ApiError: api_error_handler})


async def _post(path: str, content: bytes, ctype: str | None, method: str = "POST") -> httpx.Response:
    headers = {} if ctype is None else {"Content-Type": ctype}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_reader_app()), base_url="http://t") as client:
        return await client.request(method, path, content=content, headers=headers)


@pytest.mark.anyio
@pytest.mark.parametrize("ctype", JSON_TYPES)
async def test_a_body_labelled_json_is_read(ctype: str) -> None:
    r = await _post("/required", b'{"name": "Porch"}', ctype)
    assert r.status_code == 200, r.text
    assert r.json() == {"read": {"name": "Porch"}}


@pytest.mark.anyio
@pytest.mark.parametrize("ctype", NOT_JSON_TYPES)
async def test_a_body_not_labelled_json_is_refused_with_415(ctype: str | None) -> None:
    r = await _post("/required", b'{"name": "Porch"}', ctype)
    assert r.status_code == 415, r.text
    error = r.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert "Content-Type: application/json" in error["message"]  # says what to send


@pytest.mark.anyio
@pytest.mark.parametrize(("method", "header"), [("POST", "accept-post"), ("PATCH", "accept-patch")])
async def test_the_415_names_the_media_type_to_send(method: str, header: str) -> None:
    r = await _post("/required", b'{"name": "Porch"}', "text/plain", method)
    assert r.status_code == 415
    assert r.headers.get(header) == "application/json"  # RFC 5789 (PATCH), W3C LDP (POST)


@pytest.mark.anyio
async def test_a_refused_label_is_refused_whatever_the_body() -> None:
    """The label is refused, not the content: a form body answers like a JSON one (a client learns the header)."""
    r = await _post("/required", b"name=Porch&brand=instar", "application/x-www-form-urlencoded")
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.anyio
@pytest.mark.parametrize("ctype", [None, "application/json", "text/plain"])
async def test_no_body_is_no_body_whatever_its_label(ctype: str | None) -> None:
    """An empty body has nothing to mislabel: where the body is optional it reads as ``{}``, where it is required
    it is the 400 that says a body is required."""
    r = await _post("/optional", b"", ctype)
    assert r.status_code == 200, r.text
    assert r.json() == {"read": {}}
    r = await _post("/required", b"", ctype)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_json"
    assert "required" in r.json()["error"]["message"]


@pytest.mark.anyio
async def test_an_optional_body_that_is_sent_is_checked_like_any_other() -> None:
    assert (await _post("/optional", b'{"token": "x"}', "application/json")).json() == {"read": {"token": "x"}}
    r = await _post("/optional", b'{"token": "x"}', "text/plain")
    assert r.status_code == 415, r.text
    r = await _post("/optional", b"[1]", "application/json")
    assert r.status_code == 400, r.text


@pytest.mark.anyio
async def test_a_body_over_the_limit_is_413_whatever_its_label() -> None:
    r = await _post("/required", b'{"a": "' + b"x" * (2 * 1024 * 1024) + b'"}', "text/plain")
    assert r.status_code == 413, r.text


# ---------------------------------------------------------------- the product's endpoints


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Any:
    settings: Any = test_settings(tmp_path_factory.mktemp("rules") / "data")
    with LiveServer(settings) as srv:
        yield srv


@pytest.fixture
def person(live: LiveServer, api_at: Callable[[str], Any]) -> Callable[[str], Any]:
    """A registered, signed-in customer (tests/conftest.py's ``Api``) on the module's server."""
    return lambda email: api_at(live.url).register(email)


def test_login_and_register_refuse_a_json_body_labelled_as_text(live: LiveServer) -> None:
    """The posts a cross-site page could make without a preflight: nothing is created, no session is started."""
    body = json.dumps({"email": "plain@example.com", "password": PASSWORD}).encode()
    with httpx.Client(base_url=live.url, timeout=60) as http:
        for ctype in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = {} if ctype is None else {"Content-Type": ctype}
            r = http.post("/api/v1/auth/register", content=body, headers=headers)
            assert r.status_code == 415, (ctype, r.text)
            assert r.json()["error"]["code"] == "unsupported_media_type"
        r = http.post("/api/v1/auth/login", json={"email": "plain@example.com", "password": PASSWORD})
        assert r.status_code == 401, r.text  # the account was never made
        assert http.post("/api/v1/auth/register", content=body,
                         headers={"Content-Type": "application/json; charset=utf-8"}).status_code == 201
        r = http.post("/api/v1/auth/login", content=body, headers={"Content-Type": "text/plain"})
        assert r.status_code == 415, r.text
        assert "ac_session" not in r.cookies and "set-cookie" not in r.headers


def test_a_change_labelled_as_text_changes_nothing(person: Callable[[str], Any]) -> None:
    a = person("owner@example.com")
    before = a.get("/api/v1/tokens").json()
    r = a.post("/api/v1/tokens", content=b'{"name": "script"}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415, r.text
    assert a.get("/api/v1/tokens").json() == before
    cam = a.camera("Garage")
    r = a.patch(f"/api/v1/cameras/{cam['id']}", content=b'{"name": "Shed"}',
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415, r.text
    assert r.headers.get("accept-patch") == "application/json"
    assert a.get(f"/api/v1/cameras/{cam['id']}").json()["name"] == "Garage"
    r = a.patch(f"/api/v1/cameras/{cam['id']}", content=b'{"name": "Shed"}',
                headers={"Content-Type": "Application/JSON; charset=UTF-8"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Shed"


def test_optional_bodies_still_work_without_one(person: Callable[[str], Any]) -> None:
    """``POST /me/telegram/chats`` reads an optional token: without a body (and so without a Content-Type) it
    uses the saved one, as the web UI and scripts call it; a body it reads must be labelled JSON."""
    a = person("telegram@example.com")
    r = a.post("/api/v1/me/telegram/chats")
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "no_telegram_token"  # got past the body: no token saved yet
    r = a.post("/api/v1/me/telegram/chats", content=b'{"token": "123:abc"}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415, r.text


def test_the_download_form_post_of_the_web_ui_still_works(person: Callable[[str], Any]) -> None:
    """``POST /events/download`` also takes a form post (the browser saves the ZIP as it comes): that is a form by
    design, with the CSRF token as a field; JSON sent to it must still be labelled JSON."""
    a = person("download@example.com")
    r = a.http.post("/api/v1/events/download", content=f"all=1&count_only=1&csrf_token={a.csrf}".encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "no_events"  # the form was read: the account has no clips yet
    r = a.post("/api/v1/events/download", content=b'{"all": true, "count_only": true}',
               headers={"Content-Type": "text/plain"})
    assert r.status_code == 415, r.text


# ---------------------------------------------------------------- a camera's brand


@pytest.mark.parametrize("brand", ["nobrand", "instar"])
def test_a_cameras_brand_cannot_be_changed(person: Callable[[str], Any], brand: str) -> None:
    """Sending ``brand`` to ``PATCH /cameras/{id}`` is a 400 that says so, never a silent no-op (the same brand
    too: a client that thinks it changes something learns that it cannot); nothing else in the body is stored."""
    a = person(f"brand-{brand}@example.com")
    cam = a.camera("Garage")
    r = a.patch(f"/api/v1/cameras/{cam['id']}", json={"name": "Shed", "brand": brand})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "read_only_field"
    assert "brand" in error["message"] and "cannot be changed" in error["message"]
    after = a.get(f"/api/v1/cameras/{cam['id']}").json()
    assert (after["name"], after["brand"]) == ("Garage", "instar")


def test_the_openapi_document_does_not_offer_to_change_the_brand(live: LiveServer) -> None:
    doc = httpx.get(live.url + "/openapi.json", timeout=60).json()

    def request_fields(method: str, path: str) -> set[str]:
        schema = doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
        return set(schema["properties"])

    patch = request_fields("patch", "/api/v1/cameras/{camera_id}")
    assert "brand" not in patch
    assert {"name", "model", "host", "privacy_masks"} <= patch  # what may be changed is still described
    assert "brand" in request_fields("post", "/api/v1/cameras")  # chosen when the camera is added

