"""The session cookie: random, expiring, nothing personal in it; HttpOnly, SameSite, Secure behind TLS."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from alarmcloud import crypto
from alarmcloud.models import SessionRow, utcnow
from alarmcloud.testing import LiveServer
from sqlmodel import select

PASSWORD = "correct horse battery staple"


def _login(url: str, email: str) -> httpx.Response:
    httpx.post(url + "/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    r = httpx.post(url + "/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r


def _session_cookie(r: httpx.Response) -> str:
    return [v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("ac_session=")][0]


def test_session_cookie_is_random_and_marked_secure_behind_tls(settings: Any) -> None:
    settings.public_url = "https://alarm.example"
    with LiveServer(settings) as srv:
        core: Any = srv.core
        one, two = _login(srv.url, "cookie.person@example.com"), _login(srv.url, "cookie.person@example.com")
    header = _session_cookie(one)
    assert "Secure" in header and "HttpOnly" in header and "samesite=lax" in header.lower()
    assert "Max-Age" in header  # it expires in the browser too
    values = [_session_cookie(r).split(";", 1)[0].split("=", 1)[1] for r in (one, two)]
    assert values[0] != values[1] and min(len(v) for v in values) >= 43  # 256 random bits each
    for v in values:
        assert "cookie.person" not in v and "example" not in v
        assert one.json()["id"] not in v  # not the account id either
    with core.db.session() as s:  # the server keeps only a hash of the cookie
        stored = {r.id_hash for r in s.exec(select(SessionRow)).all()}
    assert stored == {crypto.token_hash(v) for v in values} and not set(values) & stored


def test_session_expires_on_the_server(api: Any, server: LiveServer) -> None:
    core: Any = server.core
    a = api().register("expiring@example.com")
    assert a.get("/api/v1/me").status_code == 200
    with core.db.session() as s:
        row = s.exec(select(SessionRow)).one()
        row.created_at = utcnow() - timedelta(days=core.settings.session_absolute_days, minutes=1)
        s.add(row)
        s.commit()
    assert a.get("/api/v1/me").status_code == 401
    with core.db.session() as s:
        assert s.exec(select(SessionRow)).all() == []  # the expired session is gone
