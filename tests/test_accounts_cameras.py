"""Accounts, sessions, tokens and cameras over real HTTP: tenancy, errors, secrets at rest."""

from __future__ import annotations

from typing import Any

import httpx
from alarmcloud.testing import LiveServer
from sqlalchemy import text


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
