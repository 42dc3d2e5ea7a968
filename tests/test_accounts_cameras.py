"""Accounts, sessions, tokens and cameras over real HTTP: tenancy, errors, secrets at rest."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alarmcloud.testing import LiveServer, settings_on
from sqlalchemy import text

BOTH_DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BOTH_DATABASES)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Every test here runs on SQLite and on a fresh database of a real PostgreSQL server."""
    with settings_on(request.param, tmp_path / "data", camera_networks=["127.0.0.0/8"]) as st:
        yield st


def test_register_login_camera_flow(api: Any) -> None:
    a = api().register("owner@example.com")
    me = a.get("/api/v1/me").json()
    assert me["email"] == "owner@example.com"
    cam = a.camera("Driveway", model="IN-9008", host="192.168.1.20", username="admin", password="cam-secret-9")
    assert cam["model"] == "IN-9008 Full HD"
    assert cam["has_credentials"] is True
    assert "password" not in cam and "cam-secret-9" not in str(cam)
    assert [c["id"] for c in a.get("/api/v1/cameras").json()["items"]] == [cam["id"]]
    creds = a.upload_credentials(cam["id"])
    assert set(creds) >= {"username", "password", "http_url", "ftp_host", "ftp_port"}
    assert creds["http_url"].endswith("/api/v1/ingest/clips")
    # the upload password is shown once: later reads never contain it
    assert creds["password"] not in a.get(f"/api/v1/cameras/{cam['id']}").text


def test_other_tenant_gets_404_and_no_data(api: Any) -> None:
    a = api().register("a@example.com")
    b = api().register("b@example.com")
    cam = a.camera("Secret garden")
    for method, path, body in [
        ("GET", f"/api/v1/cameras/{cam['id']}", None),
        ("PATCH", f"/api/v1/cameras/{cam['id']}", {"name": "pwned"}),
        ("DELETE", f"/api/v1/cameras/{cam['id']}", None),
        ("POST", f"/api/v1/cameras/{cam['id']}/upload-credentials", None),
        ("PUT", f"/api/v1/cameras/{cam['id']}/detectors", {"rain": True}),
        ("POST", f"/api/v1/cameras/{cam['id']}/actions", {"action": "motion_detection", "value": False}),
        ("GET", f"/api/v1/cameras/{cam['id']}/live", None),
    ]:
        r = b.req(method, path, json=body)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"]["code"] == "not_found"
        assert "Secret garden" not in r.text
    assert b.get("/api/v1/cameras").json()["items"] == []
    assert a.get(f"/api/v1/cameras/{cam['id']}").json()["name"] == "Secret garden"


def test_clear_errors_for_bad_input(api: Any, server: LiveServer) -> None:
    a = api().register("c@example.com")
    r = httpx.post(server.url + "/api/v1/auth/login", json={"email": "c@example.com", "password": "wrong password!"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_credentials"
    r = httpx.post(server.url + "/api/v1/auth/register", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = httpx.post(server.url + "/api/v1/auth/register", json={"email": "x@example.com", "password": "short"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "weak_password"
    r = httpx.post(server.url + "/api/v1/auth/register", json={"email": "c@example.com", "password": "long enough pw"})
    assert r.status_code == 409
    r = a.post("/api/v1/cameras", json={"name": "x", "brand": "nope", "model": "y"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_brand"
    r = a.post("/api/v1/cameras", json={"name": 5, "brand": "instar", "model": "IN-9008"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_field"
    r = a.post("/api/v1/cameras", json={"name": "x", "brand": "instar", "model": "IN-0000"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_model"
    r = httpx.get(server.url + "/api/v1/cameras")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert httpx.get(server.url + "/-/health").status_code == 200  # still serving


@pytest.mark.parametrize("bad", ["http://192.168.1.20/", "192.168.1.20:80", "cam/path", "not a host!!", "-cam.lan",
                                 "1.2.3"])
def test_camera_address_is_an_ip_or_host_name_only(api: Any, bad: str) -> None:
    """What owners type into "Local address" (a URL from the browser bar, an address with a port) is refused with a
    precise message when saved, not at the first camera call; nothing is created or changed."""
    a = api().register(f"host-{abs(hash(bad))}@example.com")
    r = a.post("/api/v1/cameras", json={"name": "Yard", "brand": "instar", "model": "IN-9008", "host": bad})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_field" and "IP address or host name only" in r.json()["error"]["message"]
    assert a.get("/api/v1/cameras").json()["items"] == []
    cam = a.camera("Yard", host="camera.fritz.box")
    assert a.patch(f"/api/v1/cameras/{cam['id']}", json={"host": bad, "name": "Renamed"}).status_code == 400
    after = a.get(f"/api/v1/cameras/{cam['id']}").json()
    assert after["name"] == "Yard" and after["has_address"] is True
    for good in ("192.168.1.20", " 10.0.0.7 ", "fe80::1", "cam-1.local", "CAMERA.fritz.box."):
        assert a.patch(f"/api/v1/cameras/{cam['id']}", json={"host": good}).status_code == 200, good


def test_login_rate_limit(api: Any, server: LiveServer) -> None:
    api().register("d@example.com")
    codes = [httpx.post(server.url + "/api/v1/auth/login",
                        json={"email": "d@example.com", "password": "nope nope nope"}).status_code for _ in range(6)]
    assert codes[:5] == [401] * 5 and codes[5] == 429
    r = httpx.post(server.url + "/api/v1/auth/login", json={"email": "d@example.com",
                                                             "password": "correct horse battery staple"})
    assert r.status_code == 429  # even the right password waits out the window


def test_password_spraying_from_one_network_is_limited(api: Any, server: LiveServer) -> None:
    """Few tries per address but many addresses from one network: the network is slowed down too."""
    api().register("sprayed@example.com")
    limit = server.core.settings.login_attempts * 4  # type: ignore[attr-defined]
    codes = [httpx.post(server.url + "/api/v1/auth/login",
                        json={"email": f"guess{i}@example.com", "password": "Winter2026!!"}).status_code
             for i in range(limit)]
    assert set(codes) == {401}
    r = httpx.post(server.url + "/api/v1/auth/login",
                   json={"email": "sprayed@example.com", "password": "Winter2026!!"})
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert int(r.headers["Retry-After"]) > 0


def test_session_cookie_and_csrf(api: Any, server: LiveServer) -> None:
    a = api().register("e@example.com")
    cookie = a.http.cookies.get("ac_session")
    assert cookie and len(cookie) >= 32 and "e@example.com" not in cookie
    r = httpx.post(server.url + "/api/v1/auth/login", json={"email": "e@example.com",
                                                             "password": "correct horse battery staple"})
    set_cookie = [v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("ac_session")][0]
    assert "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie and "Max-Age" in set_cookie
    r = a.http.post("/api/v1/cameras", json={"name": "x", "brand": "instar", "model": "IN-9008"})  # no CSRF header
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    assert a.post("/api/v1/auth/logout").status_code == 204
    assert a.get("/api/v1/me").status_code == 401


def test_api_tokens_shown_once_and_revocable(api: Any, server: LiveServer) -> None:
    a = api().register("f@example.com")
    r = a.post("/api/v1/tokens", json={"name": "script"})
    assert r.status_code == 201
    token, tid = r.json()["token"], r.json()["id"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(server.url + "/api/v1/me", headers=bearer).json()["email"] == "f@example.com"
    # bearer requests need no CSRF token
    r = httpx.post(server.url + "/api/v1/cameras", headers=bearer,
                   json={"name": "x", "brand": "instar", "model": "IN-9008"})
    assert r.status_code == 201
    assert token not in a.get("/api/v1/tokens").text
    assert a.delete(f"/api/v1/tokens/{tid}").status_code == 204
    r = httpx.get(server.url + "/api/v1/me", headers=bearer)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"


def test_api_tokens_are_listed_newest_first_and_capped_at_twenty_live_ones(api: Any, server: LiveServer) -> None:
    from alarmcloud.auth import MAX_TOKENS

    a = api().register("many-tokens@example.com")
    made = [a.post("/api/v1/tokens", json={"name": f"script {i}"}).json() for i in range(MAX_TOKENS)]
    assert all("token" in m for m in made)
    r = a.post("/api/v1/tokens", json={"name": "one too many"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "limit_reached"
    assert len(a.get("/api/v1/tokens").json()["items"]) == MAX_TOKENS  # nothing half-made
    # revoking one makes room; revoked tokens stay in the list (marked), after the live ones' newer ones
    first = a.get("/api/v1/tokens").json()["items"][-1]
    assert first["name"] == "script 0"
    assert a.delete(f"/api/v1/tokens/{first['id']}").status_code == 204
    r = a.post("/api/v1/tokens", json={"name": "room again"})
    assert r.status_code == 201
    items = a.get("/api/v1/tokens").json()["items"]
    assert items[0]["name"] == "room again" and len(items) == MAX_TOKENS + 1
    assert [i["revoked"] for i in items].count(True) == 1
    # the account page lists the live ones only, newest first, and never a token itself
    page = a.get("/account").text
    assert "room again" in page and "script 1<" in page and "script 0<" not in page
    assert page.index("room again") < page.index("script 19<") < page.index("script 1<")
    assert not any(m["token"] in page for m in made)
    # another person's limit is their own
    b = api().register("few-tokens@example.com")
    assert b.post("/api/v1/tokens", json={"name": "mine"}).status_code == 201


def test_api_tokens_created_at_once_stop_at_the_limit(api: Any, server: LiveServer) -> None:
    """Scripts creating tokens at once, two short of the limit, get two and the rest refused, never more live tokens
    than the limit (PostgreSQL runs the requests truly at once)."""
    from alarmcloud.auth import MAX_TOKENS

    a = api().register("tokens-at-once@example.com")
    for i in range(MAX_TOKENS - 2):
        assert a.post("/api/v1/tokens", json={"name": f"script {i}"}).status_code == 201
    codes = a.post_at_once("/api/v1/tokens", [{"name": f"at once {i}"} for i in range(6)])
    assert codes == [201] * 2 + [409] * 4, codes
    assert len(a.get("/api/v1/tokens").json()["items"]) == MAX_TOKENS


def test_revoking_a_token_again_keeps_when_it_was_revoked(api: Any, server: LiveServer) -> None:
    from alarmcloud.models import ApiToken

    a = api().register("twice@example.com")
    tid = a.post("/api/v1/tokens", json={"name": "x"}).json()["id"]
    assert a.delete(f"/api/v1/tokens/{tid}").status_code == 204
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        first = s.get(ApiToken, tid).revoked_at  # type: ignore[union-attr]
    time.sleep(0.01)
    assert a.delete(f"/api/v1/tokens/{tid}").status_code == 204
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        assert s.get(ApiToken, tid).revoked_at == first  # type: ignore[union-attr]


def test_subuser_rights(api: Any) -> None:
    owner = api().register("owner2@example.com")
    cam1 = owner.camera("Front")
    cam2 = owner.camera("Back")
    r = owner.post("/api/v1/subusers", json={"email": "kid@example.com", "password": "another good pw",
                                             "rights": {cam1["id"]: "view"}})
    assert r.status_code == 201, r.text
    kid = api().login("kid@example.com", "another good pw")
    assert [c["id"] for c in kid.get("/api/v1/cameras").json()["items"]] == [cam1["id"]]
    assert kid.get(f"/api/v1/cameras/{cam2['id']}").status_code == 404
    r = kid.post(f"/api/v1/cameras/{cam1['id']}/actions", json={"action": "motion_detection", "value": False})
    assert r.status_code == 403
    assert kid.put(f"/api/v1/cameras/{cam1['id']}/detectors", json={"rain": True}).status_code == 403


def test_secrets_never_stored_in_clear(api: Any, server: LiveServer) -> None:
    a = api().register("g@example.com")
    cam = a.camera("Cellar", host="192.168.7.7", username="camuser", password="Sup3r-Secret-Pw", p2p_id="INSTAR-P2P-4711")
    creds = a.upload_credentials(cam["id"])
    tok = a.post("/api/v1/tokens", json={"name": "t"}).json()["token"]
    dump = []
    with server.core.db.engine.connect() as conn:  # type: ignore[union-attr]
        for table in ("accounts", "cameras", "api_tokens", "sessions"):
            dump += [str(tuple(row)) for row in conn.execute(text(f"SELECT * FROM {table}"))]
    blob = "\n".join(dump)
    for secret in ("correct horse battery staple", "Sup3r-Secret-Pw", "camuser", "192.168.7.7", "INSTAR-P2P-4711",
                   creds["password"], tok, a.http.cookies.get("ac_session")):
        assert secret not in blob, secret
    assert "$argon2id$" in blob


def test_subuser_rights_control_admin_and_removal(api: Any, server: LiveServer) -> None:
    from alarmcloud.models import Account, ApiToken, CameraRight, SessionRow
    from sqlmodel import select

    owner = api().register("owner3@example.com")
    cam = owner.camera("Front")
    other = api().register("stranger@example.com")
    other_cam = other.camera("Not yours")
    sub = owner.post("/api/v1/subusers", json={"email": "helper@example.com", "password": "another good pw",
                                               "rights": {cam["id"]: "view"}}).json()
    helper = api().login("helper@example.com", "another good pw")
    action = {"action": "motion_detection", "value": False}
    assert helper.post(f"/api/v1/cameras/{cam['id']}/actions", json=action).status_code == 403
    # control: actions pass the rights check (this camera has no address: 409), settings do not
    r = owner.put(f"/api/v1/subusers/{sub['id']}", json={"rights": {cam["id"]: "control"}})
    assert r.status_code == 200 and r.json()["rights"] == {cam["id"]: "control"}
    r = helper.post(f"/api/v1/cameras/{cam['id']}/actions", json=action)
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_address"
    assert helper.put(f"/api/v1/cameras/{cam['id']}/detectors", json={"rain": True}).status_code == 403
    assert helper.post(f"/api/v1/cameras/{cam['id']}/upload-credentials").status_code == 403
    # admin: camera settings and upload credentials, but never deleting the owner's camera or adding cameras
    assert owner.put(f"/api/v1/subusers/{sub['id']}", json={"rights": {cam["id"]: "admin"}}).status_code == 200
    assert helper.put(f"/api/v1/cameras/{cam['id']}/detectors", json={"rain": True}).status_code == 200
    assert helper.patch(f"/api/v1/cameras/{cam['id']}", json={"name": "Front door"}).status_code == 200
    assert helper.post(f"/api/v1/cameras/{cam['id']}/upload-credentials").status_code == 201
    assert helper.delete(f"/api/v1/cameras/{cam['id']}").status_code == 403
    assert helper.post("/api/v1/cameras", json={"name": "x", "brand": "instar", "model": "IN-9008"}).status_code == 403
    # nobody else's cameras or users can be granted or touched
    r = owner.put(f"/api/v1/subusers/{sub['id']}", json={"rights": {other_cam["id"]: "view"}})
    assert r.status_code == 404
    assert other.put(f"/api/v1/subusers/{sub['id']}", json={"rights": {}}).status_code == 404
    assert other.delete(f"/api/v1/subusers/{sub['id']}").status_code == 404
    assert owner.delete(f"/api/v1/subusers/{other.id}").status_code == 404
    assert helper.delete(f"/api/v1/subusers/{sub['id']}").status_code == 403
    r = owner.put(f"/api/v1/subusers/{sub['id']}", json={"rights": {cam["id"]: "root"}})
    assert r.status_code == 400
    # rights revoked: the camera disappears for the sub-user
    assert owner.put(f"/api/v1/subusers/{sub['id']}", json={"rights": {}}).status_code == 200
    assert helper.get(f"/api/v1/cameras/{cam['id']}").status_code == 404
    assert helper.get("/api/v1/cameras").json()["items"] == []
    helper.post("/api/v1/tokens", json={"name": "t"})
    # removal: the sub-user's login, sessions, tokens and rights are gone; the owner keeps the camera
    assert owner.delete(f"/api/v1/subusers/{sub['id']}").status_code == 204
    assert helper.get("/api/v1/me").status_code == 401
    assert owner.get("/api/v1/subusers").json()["items"] == []
    assert owner.get(f"/api/v1/cameras/{cam['id']}").json()["name"] == "Front door"
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        assert s.get(Account, sub["id"]) is None
        for model in (SessionRow, ApiToken, CameraRight):
            assert s.exec(select(model).where(model.account_id == sub["id"])).all() == []
    r = httpx.post(server.url + "/api/v1/auth/login", json={"email": "helper@example.com",
                                                             "password": "another good pw"})
    assert r.status_code == 401


def test_sessions_expire_when_idle_and_after_the_absolute_limit(api: Any, server: LiveServer) -> None:
    from alarmcloud.crypto import token_hash
    from alarmcloud.models import SessionRow, utcnow

    st = server.core.settings  # type: ignore[attr-defined]
    idle, absolute = api().register("idle@example.com"), api().register("absolute@example.com")
    fresh = api().register("fresh@example.com")
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        row = s.get(SessionRow, token_hash(idle.http.cookies["ac_session"]))
        row.last_seen_at = utcnow() - timedelta(minutes=st.session_idle_minutes + 1)
        s.add(row)
        row = s.get(SessionRow, token_hash(absolute.http.cookies["ac_session"]))
        row.created_at = utcnow() - timedelta(days=st.session_absolute_days, minutes=1)
        row.last_seen_at = utcnow()  # in use all along: still ends
        s.add(row)
        row = s.get(SessionRow, token_hash(fresh.http.cookies["ac_session"]))
        row.created_at = row.last_seen_at = utcnow() - timedelta(minutes=st.session_idle_minutes - 5)
        s.add(row)
        s.commit()
    for gone in (idle, absolute):
        r = gone.get("/api/v1/me")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        with server.core.db.session() as s:  # type: ignore[attr-defined]
            assert s.get(SessionRow, token_hash(gone.http.cookies["ac_session"])) is None  # removed, not kept
        r = gone.post("/api/v1/auth/logout")  # logging out of an expired session still clears the cookies
        assert r.status_code == 204 and 'ac_session=""' in r.headers["set-cookie"]
    assert fresh.get("/api/v1/me").status_code == 200
    assert fresh.http.post("/api/v1/auth/logout").status_code == 403  # a live session: CSRF token needed
    assert fresh.get("/api/v1/me").status_code == 200


@pytest.mark.anyio
async def test_session_cookie_secure_when_served_over_tls(settings: Any) -> None:
    from alarmcloud.app import create_app

    app = create_app(settings)
    body = {"email": "tls@example.com", "password": "correct horse battery staple"}
    for base, secure in (("https://cloud.example", True), ("http://cloud.example", False)):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base) as client:
            await client.post("/api/v1/auth/register", json=body)
            r = await client.post("/api/v1/auth/login", json=body)
            assert r.status_code == 200
            cookies = [v for k, v in r.headers.multi_items() if k == "set-cookie"]
            assert len(cookies) == 2
            assert all(("; Secure" in c) is secure for c in cookies), cookies
            assert "HttpOnly" in next(c for c in cookies if c.startswith("ac_session="))


def _serve(data: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exe = Path(sys.executable).with_name("alarmcloud")
    proc = subprocess.Popen([str(exe), "serve", "--data-dir", str(data), "--port", str(port), "--ftp-port", "0",
                             "--workers", "0", "--log-level", "WARNING"],
                            env={**os.environ, "ALARMCLOUD_TEST_DATABASE_URL": "", **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/-/health", timeout=2).status_code < 500:
                return proc, url
        except httpx.TransportError:
            assert proc.poll() is None, "alarmcloud serve exited"
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("alarmcloud serve did not start")


def test_serve_trusts_forwarded_https_only_from_configured_proxies(tmp_path: Path) -> None:
    body = {"email": "proxy@example.com", "password": "correct horse battery staple"}
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    for name, env, secure in (("trusted", {"ALARMCLOUD_FORWARDED_ALLOW_IPS": "127.0.0.1"}, True),
                              ("default", {}, False)):
        proc, url = _serve(tmp_path / name, env)
        try:
            httpx.post(url + "/api/v1/auth/register", json=body)
            r = httpx.post(url + "/api/v1/auth/login", json=body, headers=forwarded)
            assert r.status_code == 200
            cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("ac_session="))
            assert ("; Secure" in cookie) is secure, (name, cookie)
            # the upload URL the cameras get points at the port actually served (no public_url configured)
            # (a client only returns a Secure cookie over https, which the proxy would terminate: send it by hand)
            h = {"X-CSRF-Token": r.json()["csrf_token"], "Cookie": f"ac_session={r.cookies['ac_session']}"}
            with httpx.Client(base_url=url, headers=h) as c:
                cam = c.post("/api/v1/cameras", json={"name": "x", "brand": "instar", "model": "IN-9008"}).json()
                creds = c.post(f"/api/v1/cameras/{cam['id']}/upload-credentials").json()
            assert creds["http_url"] == url + "/api/v1/ingest/clips"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_serve_keeps_an_idle_connection_open_past_uvicorns_five_seconds(tmp_path: Path) -> None:
    """A client (or a proxy's upstream pool) that pauses between two requests reuses its connection safely.

    With uvicorn's 5 s the server closed idle connections while clients still held them; a request sent just then
    failed with "connection reset by peer".
    """
    proc, url = _serve(tmp_path / "keepalive", {})
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
    try:
        conn.request("GET", "/-/health")
        assert conn.getresponse().read() and conn.sock is not None
        first = conn.sock
        time.sleep(6.5)  # past uvicorn's default of 5 s
        conn.request("GET", "/-/health")  # a closed connection: RemoteDisconnected here, or a new socket
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["status"] == "ok"
        assert conn.sock is first
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_openapi_covers_every_route_and_the_fixed_shapes_match_real_answers(api: Any, server: LiveServer,
                                                                             kit: Any, tmp_path: Path) -> None:
    import jsonschema
    from alarmcloud.openapi import SHAPES
    from starlette.routing import Mount, Route

    doc = httpx.get(server.url + "/openapi.json").json()
    paths = doc["paths"]

    def routes(rs: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
        for r in rs:
            if isinstance(r, Mount):
                yield from routes(list(r.routes), prefix + r.path)
            elif isinstance(r, Route):
                yield from ((m, prefix + r.path) for m in (r.methods or set()) - {"HEAD"})

    served = set(routes(list(server.app.routes)))  # type: ignore[attr-defined]
    assert {(m.upper(), p) for p, ops in paths.items() for m in ops} == served
    assert set(SHAPES) <= served, set(SHAPES) - served  # no shape documents a route that does not exist

    def check(method: str, path: str, r: httpx.Response) -> None:
        op = paths[path][method.lower()]
        assert str(r.status_code) in op["responses"], (method, path, r.status_code, r.text)
        schema = op["responses"][str(r.status_code)].get("content", {}).get("application/json", {}).get("schema")
        if schema is not None:
            jsonschema.validate(r.json(), schema)
        request_schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if request_schema is not None and r.request.content:
            jsonschema.validate(json.loads(r.request.content), request_schema)

    body = {"email": "shapes@example.com", "password": "correct horse battery staple"}
    check("POST", "/api/v1/auth/register", httpx.post(server.url + "/api/v1/auth/register", json=body))
    a = api().login(body["email"])
    check("POST", "/api/v1/auth/login", httpx.post(server.url + "/api/v1/auth/login", json=body))
    r = a.post("/api/v1/cameras", json={"name": "Yard", "brand": "instar", "model": "IN-9008", "host": "10.0.0.5",
                                        "username": "admin", "password": "camera pw 1"})
    check("POST", "/api/v1/cameras", r)
    cid = r.json()["id"]
    check("GET", "/api/v1/cameras", a.get("/api/v1/cameras"))
    check("GET", "/api/v1/cameras/{camera_id}", a.get(f"/api/v1/cameras/{cid}"))
    check("PATCH", "/api/v1/cameras/{camera_id}", a.patch(f"/api/v1/cameras/{cid}", json={"name": "Back yard"}))
    check("PUT", "/api/v1/cameras/{camera_id}/detectors", a.put(f"/api/v1/cameras/{cid}/detectors",
                                                                json={"rain": True}))
    r = a.post(f"/api/v1/cameras/{cid}/upload-credentials")
    check("POST", "/api/v1/cameras/{camera_id}/upload-credentials", r)
    up = a.upload(r.json(), kit.small_clip(tmp_path / "shape.mp4"))
    check("POST", "/api/v1/ingest/clips", up)
    a.wait_event(up.json()["event_id"])
    check("GET", "/api/v1/events", a.get("/api/v1/events"))
    check("GET", "/api/v1/events/{event_id}", a.get(f"/api/v1/events/{up.json()['event_id']}"))
    check("POST", "/api/v1/events/{event_id}/feedback", a.post(f"/api/v1/events/{up.json()['event_id']}/feedback",
                                                              json={"detector": "rain", "label": "not_rain"}))
    r = a.post("/api/v1/tokens", json={"name": "cli"})
    check("POST", "/api/v1/tokens", r)
    check("GET", "/api/v1/tokens", a.get("/api/v1/tokens"))
    check("DELETE", "/api/v1/tokens/{token_id}", a.delete(f"/api/v1/tokens/{r.json()['id']}"))
    r = a.post("/api/v1/subusers", json={"email": "sub@example.com", "password": "another good pw",
                                         "rights": {cid: "view"}})
    check("POST", "/api/v1/subusers", r)
    check("GET", "/api/v1/subusers", a.get("/api/v1/subusers"))
    check("PUT", "/api/v1/subusers/{subuser_id}", a.put(f"/api/v1/subusers/{r.json()['id']}",
                                                        json={"rights": {cid: "control"}}))
    check("DELETE", "/api/v1/subusers/{subuser_id}", a.delete(f"/api/v1/subusers/{r.json()['id']}"))
    check("DELETE", "/api/v1/cameras/{camera_id}", a.delete(f"/api/v1/cameras/{cid}"))
    check("POST", "/api/v1/auth/logout", a.post("/api/v1/auth/logout"))
    assert paths["/api/v1/ingest/clips"]["post"]["security"] == [{"cameraUpload": []}]


def test_camera_secrets_never_logged(api: Any, server: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    """Create, change, control, snapshot and set up a camera with every log level on: no secret in any record."""
    import logging
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class FakeCamera(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = b"\xff\xd8\xff\xe0 jpeg" if "snap" in self.path else b'var error="ok";\r\n'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    cam_server = ThreadingHTTPServer(("127.0.0.1", 0), FakeCamera)
    threading.Thread(target=cam_server.serve_forever, daemon=True).start()
    caplog.set_level(logging.DEBUG)
    secrets = ["Cam-Login-Name", "Cam-Pa55word!", "P2P-SECRET-0815"]
    try:
        a = api().register("logs@example.com")
        cam = a.camera("Porch", host="127.0.0.1", port=cam_server.server_address[1], username=secrets[0],
                       password=secrets[1], p2p_id=secrets[2])
        a.patch(f"/api/v1/cameras/{cam['id']}", json={"password": secrets[1] + "2"})
        a.post(f"/api/v1/cameras/{cam['id']}/actions", json={"action": "motion_detection", "value": True})
        a.get(f"/api/v1/cameras/{cam['id']}/snapshot")
        a.get(f"/api/v1/cameras/{cam['id']}/live")
        creds = a.upload_credentials(cam["id"])
        a.post(f"/api/v1/cameras/{cam['id']}/setup")
    finally:
        cam_server.shutdown()
        cam_server.server_close()
    assert any("127.0.0.1" in r.getMessage() or r.name.startswith("httpx") for r in caplog.records)  # logs were on
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    for secret in [*secrets, creds["password"], "correct horse battery staple"]:
        assert secret not in text, secret


def test_login_and_register_refuse_other_web_sites(api: Any, server: LiveServer) -> None:
    """Login CSRF: a page elsewhere can post JSON as text/plain; browsers always say where it came from."""
    body = {"email": "origin@example.com", "password": "correct horse battery staple"}
    evil = {"Origin": "https://evil.example", "Content-Type": "text/plain"}
    r = httpx.post(server.url + "/api/v1/auth/register", content=json.dumps(body), headers=evil)
    assert r.status_code == 403 and r.json()["error"]["code"] == "cross_site_request"
    own = {"Origin": server.url}
    assert httpx.post(server.url + "/api/v1/auth/register", json=body, headers=own).status_code == 201
    r = httpx.post(server.url + "/api/v1/auth/login", content=json.dumps(body), headers=evil)
    assert r.status_code == 403 and "set-cookie" not in r.headers
    assert httpx.post(server.url + "/api/v1/auth/login", json=body, headers=own).status_code == 200
    assert httpx.post(server.url + "/api/v1/auth/login", json=body).status_code == 200  # scripts send no Origin


def test_upload_credentials_rotate_and_the_old_password_stops_working(api: Any, kit: Any, tmp_path: Path) -> None:
    a = api().register("rotate@example.com")
    cam = a.camera("Gate")
    clip = kit.small_clip(tmp_path / "gate.mp4", seconds=2.0)
    first = a.upload_credentials(cam["id"])
    assert a.upload(first, clip).status_code == 201  # the login is now cached by the ingest side
    second = a.upload_credentials(cam["id"])
    assert second["username"] == first["username"] and second["password"] != first["password"]
    r = a.upload(first, clip)
    assert r.status_code == 401 and r.json()["error"]["code"] in ("invalid_credentials", "unauthorized")
    assert a.upload(second, clip).status_code == 201
    assert a.get(f"/api/v1/cameras/{cam['id']}").json()["upload_username"] == first["username"]
