"""The OAuth 2 authorization server over real HTTP: PKCE code flow, refresh rotation, revocation, links."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
from alarmcloud import oauth
from alarmcloud.models import Consent
from alarmcloud.oauth_models import OAuthCode, OAuthToken
from alarmcloud.testing import LiveServer
from sqlmodel import select

REDIRECT = "https://ifttt.com/channels/alarmcloud/authorize"
SCOPES = ["alarms:read", "cameras:control", "storage:read"]


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def add_client(server: LiveServer, public: bool = False, integration: str = "ifttt") -> tuple[str, str | None]:
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        row, secret = oauth.add_client(s, "IFTTT", integration, [REDIRECT], SCOPES, public=public,
                                       require_pkce=True)
        return row.id, secret


def authorize(user: Any, client_id: str, challenge: str | None, redirect: str = REDIRECT,
              decision: str = "approve", **extra: str) -> httpx.Response:
    """GET the consent page, then POST the form as the browser would; returns the POST response."""
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect, "state": "st-1",
              "scope": "ifttt"}
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(extra)
    url = "/oauth/authorize?" + urlencode(params)
    page = user.http.get(url)
    if page.status_code != 200:
        return page
    assert "IFTTT" in page.text and "cameras:control" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    csrf = re.search(r'name=csrf_token value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return user.http.post(url, data={"csrf_token": csrf, "decision": decision})


def recorded_events(server: LiveServer) -> list[Any]:
    """The events the core emits from now on (still delivered as usual)."""
    core: Any = server.core
    emitted: list[Any] = []
    emit = core.emit

    async def record(event: Any) -> None:
        emitted.append(event)
        await emit(event)

    core.emit = record
    return emitted


def code_of(resp: httpx.Response) -> str:
    assert resp.status_code == 303, resp.text
    loc = urlparse(resp.headers["location"])
    assert f"{loc.scheme}://{loc.netloc}{loc.path}" == REDIRECT
    q = parse_qs(loc.query)
    assert q["state"] == ["st-1"]
    return q["code"][0]


def token(server: LiveServer, data: dict[str, str], auth: tuple[str, str] | None = None) -> httpx.Response:
    return httpx.post(server.url + "/oauth/token", data=data, auth=auth)


def principal(server: LiveServer, access: str) -> Any:
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        return oauth.principal_for_token(s, access, "ifttt")


def test_full_code_flow_with_pkce_refresh_and_revocation(api: Any, server: LiveServer) -> None:
    user = api().register("link@example.com")
    client_id, secret = add_client(server)
    assert secret
    verifier, challenge = pkce()
    code = code_of(authorize(user, client_id, challenge))
    r = token(server, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                       "code_verifier": verifier}, auth=(client_id, secret))
    assert r.status_code == 200, r.text
    tok = r.json()
    assert tok["token_type"] == "Bearer" and tok["expires_in"] >= 3600 and tok["refresh_token"]
    assert r.headers["cache-control"] == "no-store"
    p = principal(server, tok["access_token"])
    assert p.account_id == user.id and p.scopes == frozenset(SCOPES)
    assert p.pseudonym != user.id and "@" not in p.pseudonym
    # pseudonyms are stable and per integration
    assert principal(server, tok["access_token"]).pseudonym == p.pseudonym
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        assert oauth.account_for_pseudonym(s, "ifttt", p.pseudonym) == user.id
        assert oauth.linked_pseudonyms(s, "ifttt") == {p.pseudonym: user.id}
        assert oauth.account_for_pseudonym(s, "alexa", p.pseudonym) is None
        # only hashes are stored
        row = s.exec(select(OAuthToken)).one()
        assert tok["access_token"] not in str(row.model_dump())
        assert s.exec(select(Consent).where(Consent.account_id == user.id,
                                            Consent.kind == "integration_grant")).one().subject == client_id

    # refresh with body credentials; rotation keeps the old refresh token alive until the new one is used
    r = token(server, {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
                       "client_id": client_id, "client_secret": secret})
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["access_token"] != tok["access_token"] and new["refresh_token"] != tok["refresh_token"]
    r = token(server, {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]},
              auth=(client_id, secret))
    assert r.status_code == 200, "the old refresh token must not die immediately"
    newer = r.json()
    assert principal(server, newer["access_token"]) is not None  # the successor is used: old one retires
    r = token(server, {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]},
              auth=(client_id, secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # reuse detected: the whole family is revoked
    assert principal(server, newer["access_token"]) is None

    # a fresh link, then revocation via /oauth/revoke
    verifier, challenge = pkce()
    code = code_of(authorize(user, client_id, challenge))
    tok = token(server, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                         "code_verifier": verifier}, auth=(client_id, secret)).json()
    assert principal(server, tok["access_token"]) is not None
    r = httpx.post(server.url + "/oauth/revoke", data={"token": tok["refresh_token"]}, auth=(client_id, secret))
    assert r.status_code == 200
    assert principal(server, tok["access_token"]) is None
    r = token(server, {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]},
              auth=(client_id, secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_links_list_and_unlink(api: Any, server: LiveServer) -> None:
    user = api().register("links@example.com")
    client_id, secret = add_client(server)
    verifier, challenge = pkce()
    code = code_of(authorize(user, client_id, challenge))
    tok = token(server, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                         "code_verifier": verifier}, auth=(client_id, secret)).json()
    items = user.get("/api/v1/me/links").json()["items"]
    assert [(i["client_id"], i["integration"]) for i in items] == [(client_id, "ifttt")]
    emitted = recorded_events(server)  # integrations learn of the unlink through the event
    other = api().register("other@example.com")
    assert other.delete(f"/api/v1/me/links/{client_id}").status_code == 404
    assert principal(server, tok["access_token"]) is not None
    assert emitted == []
    assert user.delete(f"/api/v1/me/links/{client_id}").status_code == 204
    assert [(e.type, e.account_id, e.payload) for e in emitted] == [
        ("link.revoked", user.id, {"client_id": client_id, "integration": "ifttt"})]
    assert user.get("/api/v1/me/links").json()["items"] == []
    assert principal(server, tok["access_token"]) is None
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        c = s.exec(select(Consent).where(Consent.account_id == user.id)).one()
        assert c.withdrawn_at is not None


def test_the_platform_revoking_its_last_token_ends_the_link(api: Any, server: LiveServer) -> None:
    """Alexa, Google and IFTTT call /oauth/revoke when the customer unlinks on their side."""
    user = api().register("platform-unlink@example.com")
    client_id, secret = add_client(server)
    toks = []
    for _ in range(2):  # linked from two devices: two token families of one link
        verifier, challenge = pkce()
        code = code_of(authorize(user, client_id, challenge))
        toks.append(token(server, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                   "code_verifier": verifier}, auth=(client_id, secret)).json())
    emitted = recorded_events(server)
    r = httpx.post(server.url + "/oauth/revoke", data={"token": toks[0]["refresh_token"]}, auth=(client_id, secret))
    assert r.status_code == 200
    # one device's tokens end; the link and the other device stay
    assert principal(server, toks[0]["access_token"]) is None
    assert principal(server, toks[1]["access_token"]) is not None
    assert [i["client_id"] for i in user.get("/api/v1/me/links").json()["items"]] == [client_id]
    assert emitted == []
    r = httpx.post(server.url + "/oauth/revoke", data={"token": toks[1]["access_token"]}, auth=(client_id, secret))
    assert r.status_code == 200
    # the last one: the link ends as if the customer had unlinked here
    assert user.get("/api/v1/me/links").json()["items"] == []
    assert [(e.type, e.account_id, e.payload) for e in emitted] == [
        ("link.revoked", user.id, {"client_id": client_id, "integration": "ifttt"})]
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        c = s.exec(select(Consent).where(Consent.account_id == user.id)).one()
        assert c.withdrawn_at is not None
    # revoking again changes nothing and tells nobody twice
    r = httpx.post(server.url + "/oauth/revoke", data={"token": toks[1]["access_token"]}, auth=(client_id, secret))
    assert r.status_code == 200 and len(emitted) == 1


def test_metadata_and_the_issuer_in_the_answer(api: Any, server: LiveServer) -> None:
    """RFC 8414 metadata; RFC 9207: the redirect back names the issuer, so a client can detect a mix-up."""
    meta = httpx.get(server.url + "/.well-known/oauth-authorization-server").json()
    iss = server.core.settings.public_url.rstrip("/")  # type: ignore[attr-defined]
    assert meta["issuer"] == iss and meta["authorization_response_iss_parameter_supported"] is True
    assert meta["token_endpoint"] == iss + "/oauth/token" and meta["code_challenge_methods_supported"] == ["S256"]
    assert set(meta["scopes_supported"]) >= set(SCOPES) and meta["response_types_supported"] == ["code"]
    user = api().register("issuer@example.com")
    client_id, _ = add_client(server)
    _, challenge = pkce()
    r = authorize(user, client_id, challenge)
    q = parse_qs(urlparse(r.headers["location"]).query)
    assert q["iss"] == [iss] and q["code"]


def test_deny_redirects_with_access_denied(api: Any, server: LiveServer) -> None:
    user = api().register("deny@example.com")
    client_id, _ = add_client(server)
    _, challenge = pkce()
    r = authorize(user, client_id, challenge, decision="deny")
    assert r.status_code == 303
    q = parse_qs(urlparse(r.headers["location"]).query)
    assert q["error"] == ["access_denied"] and q["state"] == ["st-1"]
    assert q["iss"] == [server.core.settings.public_url.rstrip("/")]  # type: ignore[attr-defined]  # RFC 9207
    assert user.get("/api/v1/me/links").json()["items"] == []


def test_login_required_and_csrf(api: Any, server: LiveServer) -> None:
    client_id, _ = add_client(server)
    _, challenge = pkce()
    url = "/oauth/authorize?" + urlencode({"response_type": "code", "client_id": client_id,
                                           "redirect_uri": REDIRECT, "code_challenge": challenge,
                                           "code_challenge_method": "S256"})
    r = httpx.get(server.url + url)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=%2Foauth%2Fauthorize")
    user = api().register("csrf@example.com")
    r = user.http.post(url, data={"csrf_token": "forged", "decision": "approve"})
    assert r.status_code == 403 and "location" not in r.headers


def test_wrong_redirect_uri_never_redirects(api: Any, server: LiveServer) -> None:
    user = api().register("redir@example.com")
    client_id, _ = add_client(server)
    _, challenge = pkce()
    for bad in (REDIRECT + "/x", "https://evil.example/cb", REDIRECT.replace("https", "http")):
        r = authorize(user, client_id, challenge, redirect=bad)
        assert r.status_code == 400 and "location" not in r.headers, bad
    r = user.http.get("/oauth/authorize?" + urlencode({"response_type": "code", "client_id": "nope",
                                                       "redirect_uri": REDIRECT}))
    assert r.status_code == 400 and "location" not in r.headers


def test_code_errors_reused_expired_pkce(api: Any, server: LiveServer) -> None:
    user = api().register("codes@example.com")
    client_id, secret = add_client(server)
    assert secret
    auth = (client_id, secret)
    # PKCE is required for this client: no challenge → error sent back to the (valid) redirect URI
    r = authorize(user, client_id, None)
    assert r.status_code == 303 and parse_qs(urlparse(r.headers["location"]).query)["error"] == ["invalid_request"]
    # plain is rejected
    r = authorize(user, client_id, "x" * 43, code_challenge_method="plain")
    assert r.status_code == 303 and parse_qs(urlparse(r.headers["location"]).query)["error"] == ["invalid_request"]
    verifier, challenge = pkce()
    base = {"grant_type": "authorization_code", "redirect_uri": REDIRECT}
    # missing and wrong verifier
    code = code_of(authorize(user, client_id, challenge))
    r = token(server, {**base, "code": code}, auth=auth)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = token(server, {**base, "code": code, "code_verifier": pkce()[0]}, auth=auth)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # wrong redirect URI at the token endpoint
    r = token(server, {**base, "code": code, "code_verifier": verifier, "redirect_uri": REDIRECT + "x"}, auth=auth)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # wrong client secret
    r = token(server, {**base, "code": code, "code_verifier": verifier}, auth=(client_id, "wrong"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    # success, then the reused code fails and revokes what it produced
    r = token(server, {**base, "code": code, "code_verifier": verifier}, auth=auth)
    assert r.status_code == 200, r.text
    access = r.json()["access_token"]
    r = token(server, {**base, "code": code, "code_verifier": verifier}, auth=auth)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert principal(server, access) is None
    # expired code
    verifier, challenge = pkce()
    code = code_of(authorize(user, client_id, challenge))
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        row = s.get(OAuthCode, hashlib.sha256(code.encode()).hexdigest())
        assert row is not None
        row.expires_at = row.expires_at - timedelta(seconds=oauth.CODE_SECONDS + 1)
        s.add(row)
        s.commit()
    r = token(server, {**base, "code": code, "code_verifier": verifier}, auth=auth)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_public_client_needs_pkce_and_no_secret(api: Any, server: LiveServer) -> None:
    user = api().register("public@example.com")
    client_id, secret = add_client(server, public=True)
    assert secret is None
    verifier, challenge = pkce()
    code = code_of(authorize(user, client_id, challenge))
    r = token(server, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                       "client_id": client_id, "code_verifier": verifier})
    assert r.status_code == 200, r.text


def test_issue_tokens_and_integration_isolation(api: Any, server: LiveServer) -> None:
    user = api().register("issue@example.com")
    client_id, _ = add_client(server, integration="alexa")
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        tok = oauth.issue_tokens(s, user.id, client_id, ["alarms:read"])
        assert oauth.principal_for_token(s, tok["access_token"], "ifttt") is None  # another integration's token
        p = oauth.principal_for_token(s, tok["access_token"], "alexa")
        assert p is not None and p.scopes == frozenset({"alarms:read"})
        oauth.unlink(s, user.id, "alexa")
        assert oauth.principal_for_token(s, tok["access_token"], "alexa") is None
        with pytest.raises(ValueError):
            oauth.add_client(s, "x", "alexa", [REDIRECT], ["everything"])


def test_expired_access_token_is_told_apart_from_unknown_and_revoked(api: Any, server: LiveServer) -> None:
    import asyncio

    from alarmcloud import ServiceError, crypto

    user = api().register("expiry@example.com")
    client_id, _ = add_client(server, integration="alexa")
    core: Any = server.core
    with core.db.session() as s:
        live = oauth.issue_tokens(s, user.id, client_id, ["alarms:read"])["access_token"]
        old = oauth.issue_tokens(s, user.id, client_id, ["alarms:read"])["access_token"]
        row = s.exec(select(OAuthToken).where(OAuthToken.access_hash == crypto.token_hash(old))).one()
        row.access_expires_at = row.access_expires_at - timedelta(seconds=oauth.ACCESS_SECONDS + 1)
        s.add(row)
        s.commit()
        assert oauth.principal_for_token(s, old, "alexa") is None
        assert oauth.access_token_expired(s, old, "alexa")
        assert not oauth.access_token_expired(s, live, "alexa")  # still valid
        assert not oauth.access_token_expired(s, "aco_never-issued", "alexa")
        assert not oauth.access_token_expired(s, old, "ifttt")  # another integration's token is just invalid

    def code_of_failure(token: str) -> str:
        try:
            asyncio.run(core.services.principal_for_token(token, "alexa"))
        except ServiceError as exc:
            assert exc.status == 401
            return exc.code
        raise AssertionError("the token was accepted")

    assert code_of_failure(old) == "expired_token"
    assert code_of_failure("aco_never-issued") == "invalid_token"
    with core.db.session() as s:
        oauth.unlink(s, user.id, "alexa")  # unlinked: refreshing cannot help, so it is invalid, not expired
        assert not oauth.access_token_expired(s, old, "alexa")
    assert code_of_failure(old) == "invalid_token"
    assert code_of_failure(live) == "invalid_token"


def count(server: LiveServer, model: Any) -> int:
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        return len(s.exec(select(model)).all())


def test_wrong_redirect_or_client_writes_nothing(api: Any, server: LiveServer) -> None:
    from alarmcloud.oauth_models import OAuthGrant

    user = api().register("nothing@example.com")
    client_id, _ = add_client(server)
    _, challenge = pkce()
    for bad in (REDIRECT + "?x=1", REDIRECT.upper(), REDIRECT + "#f", ""):
        r = authorize(user, client_id, challenge, redirect=bad)
        if bad == "":  # the one registered URI is the default when none is sent
            assert r.status_code == 303 and r.headers["location"].startswith(REDIRECT + "?code=")
            continue
        assert r.status_code == 400 and "location" not in r.headers, bad
    assert count(server, OAuthCode) == 1 and count(server, OAuthGrant) == 1


def test_client_authentication_and_token_binding(api: Any, server: LiveServer) -> None:
    user = api().register("binding@example.com")
    client_id, secret = add_client(server)
    other_id, other_secret = add_client(server)
    assert secret and other_secret
    verifier, challenge = pkce()
    code = code_of(authorize(user, client_id, challenge))
    base = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    # a confidential client must authenticate: client_id alone, a wrong secret, or another client's secret fail
    for data, auth in (({"client_id": client_id}, None), ({"client_id": client_id, "client_secret": "x"}, None),
                       ({}, (client_id, other_secret))):
        r = token(server, {**base, **data}, auth=auth)
        assert r.status_code == 401 and r.json()["error"] == "invalid_client", data
    # another client cannot redeem this client's code
    r = token(server, base, auth=(other_id, other_secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert count(server, OAuthToken) == 0
    first = token(server, base, auth=(client_id, secret)).json()
    second = token(server, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                   auth=(client_id, secret)).json()
    # another client presenting the new refresh token is refused and changes nothing: the first one stays usable
    r = token(server, {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
              auth=(other_id, other_secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = token(server, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
              auth=(client_id, secret))
    assert r.status_code == 200, "a refused presentation by another client must not count as use"
    # revocation needs the owning client
    r = httpx.post(server.url + "/oauth/revoke", data={"token": second["access_token"]}, auth=(other_id, other_secret))
    assert r.status_code == 400 and principal(server, second["access_token"]) is not None
    r = httpx.post(server.url + "/oauth/revoke", data={"token": second["access_token"]}, auth=(client_id, "nope"))
    assert r.status_code == 401 and principal(server, second["access_token"]) is not None
    r = httpx.post(server.url + "/oauth/revoke", data={"token": "acr_unknown"}, auth=(client_id, secret))
    assert r.status_code == 200  # RFC 7009: unknown tokens are not an error


def test_only_code_and_refresh_grants(api: Any, server: LiveServer) -> None:
    user = api().register("grants@example.com")
    client_id, secret = add_client(server)
    for grant in ("password", "client_credentials", "implicit", "urn:ietf:params:oauth:grant-type:device_code"):
        r = token(server, {"grant_type": grant, "username": user.email, "password": "x", "scope": "alarms:read"},
                  auth=(client_id, secret or ""))
        assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type", grant
    _, challenge = pkce()
    r = authorize(user, client_id, challenge, response_type="token")  # implicit: refused at the consent step
    assert r.status_code == 303 and "#" not in r.headers["location"]
    assert parse_qs(urlparse(r.headers["location"]).query)["error"] == ["unsupported_response_type"]
    assert count(server, OAuthToken) == 0


def test_pkce_rules(api: Any, server: LiveServer) -> None:
    user = api().register("pkce@example.com")
    strict_id, strict_secret = add_client(server)
    with server.core.db.session() as s:  # type: ignore[attr-defined]  # `add-client --no-pkce` (IFTTT, Google)
        row, lax_secret = oauth.add_client(s, "IFTTT", "ifttt", [REDIRECT], SCOPES, require_pkce=False)
        lax_id = row.id
    assert strict_secret and lax_secret
    verifier, challenge = pkce()
    # the method must be given and be S256 (a missing method would mean plain)
    r = authorize(user, strict_id, challenge, code_challenge_method="")
    assert r.status_code == 303 and parse_qs(urlparse(r.headers["location"]).query)["error"] == ["invalid_request"]
    # --no-pkce: the plain code flow works ...
    code = code_of(authorize(user, lax_id, None))
    base = {"grant_type": "authorization_code", "redirect_uri": REDIRECT}
    r = token(server, {**base, "code": code}, auth=(lax_id, lax_secret))
    assert r.status_code == 200, r.text
    # ... a verifier without a challenge is a downgrade attempt (RFC 9700 §4.8) ...
    code = code_of(authorize(user, lax_id, None))
    r = token(server, {**base, "code": code, "code_verifier": verifier}, auth=(lax_id, lax_secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    # ... and a challenge, once sent, is enforced
    code = code_of(authorize(user, lax_id, challenge))
    r = token(server, {**base, "code": code}, auth=(lax_id, lax_secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = token(server, {**base, "code": code, "code_verifier": verifier}, auth=(lax_id, lax_secret))
    assert r.status_code == 200, r.text
    # a public client always needs PKCE, even when registered otherwise
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        row, _ = oauth.add_client(s, "App", "ifttt", [REDIRECT], SCOPES, public=True, require_pkce=False)
        public_id = row.id
    r = authorize(user, public_id, None)
    assert r.status_code == 303 and parse_qs(urlparse(r.headers["location"]).query)["error"] == ["invalid_request"]


def test_concurrent_exchanges_of_one_code_issue_one_token(api: Any, server: LiveServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    user = api().register("race@example.com")
    client_id, secret = add_client(server)
    verifier, challenge = pkce()
    code = code_of(authorize(user, client_id, challenge))
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    with ThreadPoolExecutor(6) as pool:
        statuses = sorted(r.status_code for r in pool.map(lambda _: token(server, data, (client_id, secret or "")),
                                                            range(6)))
    assert statuses[0] == 200 and statuses[1:] == [400] * 5
    # the losers were replays: what the code produced is revoked (RFC 6749 §4.1.2)
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        rows = s.exec(select(OAuthToken)).all()
        assert len(rows) == 1 and rows[0].revoked_at is not None


def test_refresh_family_revoked_by_reused_code(api: Any, server: LiveServer) -> None:
    user = api().register("family@example.com")
    client_id, secret = add_client(server)
    auth = (client_id, secret or "")
    verifier, challenge = pkce()
    code = code_of(authorize(user, client_id, challenge))
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    first = token(server, data, auth).json()
    later = token(server, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, auth).json()
    assert principal(server, later["access_token"]) is not None
    assert token(server, data, auth).json()["error"] == "invalid_grant"
    assert principal(server, later["access_token"]) is None  # tokens refreshed from the code's tokens die too
    r = token(server, {"grant_type": "refresh_token", "refresh_token": later["refresh_token"]}, auth)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_cli_add_list_remove_client(api: Any, server: LiveServer, settings: Any) -> None:
    import json

    from alarmcloud.cli import main
    from click.testing import CliRunner

    runner = CliRunner()
    env = {"ALARMCLOUD_DATABASE_URL": settings.database_url} if settings.database_url else {}
    args = ["--data-dir", str(settings.data_dir)]
    r = runner.invoke(main, ["oauth", "add-client", "--name", "IFTTT", "--integration", "ifttt", "--redirect-uri",
                             REDIRECT, *sum((["--scope", s] for s in SCOPES), []), *args], env=env)
    assert r.exit_code == 0, r.output
    client_id = re.search(r"client_id: (\S+)", r.output).group(1)  # type: ignore[union-attr]
    secret = re.search(r"client_secret: (\S+)", r.output).group(1)  # type: ignore[union-attr]
    r = runner.invoke(main, ["oauth", "add-client", "--name", "x", "--integration", "ifttt", "--redirect-uri",
                             REDIRECT, "--scope", "everything", *args], env=env)
    assert r.exit_code != 0 and "unknown scope" in r.output
    help_text = runner.invoke(main, ["oauth", "add-client", "--help"]).output
    assert all(scope in help_text for scope in oauth.SCOPES)  # the help names every scope there is

    user = api().register("cli@example.com")
    verifier, challenge = pkce()
    code = code_of(authorize(user, client_id, challenge))
    tok = token(server, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                         "code_verifier": verifier}, auth=(client_id, secret)).json()
    r = runner.invoke(main, ["oauth", "list-clients", "--json", *args], env=env)
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [(c["client_id"], c["integration"], c["links"], c["require_pkce"]) for c in rows] == [
        (client_id, "ifttt", 1, True)]
    assert secret not in r.output
    r = runner.invoke(main, ["oauth", "remove-client", client_id, *args], env=env)
    assert r.exit_code == 0 and "1 linked account" in r.output, r.output
    assert principal(server, tok["access_token"]) is None
    assert user.get("/api/v1/me/links").json()["items"] == []
    r = token(server, {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}, auth=(client_id, secret))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        assert s.exec(select(Consent).where(Consent.account_id == user.id)).one().withdrawn_at is not None
    r = runner.invoke(main, ["oauth", "remove-client", client_id, *args], env=env)
    assert r.exit_code != 0 and "no OAuth client" in r.output


def test_login_page_leads_back_to_the_consent_page_only(api: Any, server: LiveServer) -> None:
    """Not logged in: authorize → login page → (after login) back to the consent page, never to another site."""
    client_id, _ = add_client(server)
    _, challenge = pkce()
    url = "/oauth/authorize?" + urlencode({"response_type": "code", "client_id": client_id, "scope": "ifttt",
                                           "redirect_uri": REDIRECT, "code_challenge": challenge,
                                           "code_challenge_method": "S256"})
    browser = httpx.Client(base_url=server.url)
    r = browser.get(url)
    assert r.status_code == 303
    login = browser.get(r.headers["location"])
    assert login.status_code == 200
    target = re.search(r'data-redirect="([^"]*)"', login.text).group(1)  # type: ignore[union-attr]
    assert html.unescape(target) == url
    for evil in ("//evil.example/x", "/\\evil.example/x", "/\t/evil.example", "https://evil.example/",
                 "/%5Cevil.example"):
        page = browser.get("/login", params={"next": evil})
        target = html.unescape(re.search(r'data-redirect="([^"]*)"', page.text).group(1))  # type: ignore[union-attr]
        assert not urlparse(target.replace("\\", "/")).netloc and "\t" not in target, evil
    api().register("browser@example.com")
    assert browser.post("/api/v1/auth/login", json={"email": "browser@example.com",
                                                    "password": "correct horse battery staple"}).status_code == 200
    page = browser.get(url)
    assert page.status_code == 200 and "Allow" in page.text


@pytest.mark.anyio
async def test_the_core_uses_camera_logins_only_for_links_with_the_scope(api: Any, server: LiveServer) -> None:
    """cameras:control / cameras:stream decide whether the core uses the stored camera login for a client."""
    from alarmcloud import Principal, ServiceError
    from alarmcloud_camera_instar.testing import FakeInstarCamera

    with FakeInstarCamera("fullhd", password="S3cret!pass") as fake:  # the settings allow loopback cameras
        core: Any = server.core
        owner = api().register("scopes@example.com")
        cam = owner.camera("Gate", model="IN-9020 Full HD", host="127.0.0.1", port=fake.port, username="admin",
                           password="S3cret!pass")
        assert owner.patch(f"/api/v1/cameras/{cam['id']}", json={"integrations_may_use_credentials": True}
                           ).status_code == 200

        def who(*scopes: str, account: str = owner.id) -> Principal:
            return Principal(account_id=account, client_id="c", scopes=frozenset(scopes), pseudonym="p")

        services = core.services
        for principal, status in ((who("alarms:read", "cameras:stream"), 403), (who("cameras:control",
                                                                                     account="someone"), 404)):
            with pytest.raises(ServiceError) as err:
                await services.camera_action(owner.id, cam["id"], "motion_detection", False, principal=principal)
            assert err.value.status == status
        assert fake.requests == []  # the camera never heard of it
        await services.camera_action(owner.id, cam["id"], "motion_detection", False,
                                     principal=who("cameras:control"))
        assert {a["enable"] for a in fake.state["areas"].values()} == {"0"}
        with pytest.raises(ServiceError) as err:
            await services.live_stream(owner.id, cam["id"], with_credentials=True, principal=who("cameras:control"))
        assert err.value.status == 403
        live = await services.live_stream(owner.id, cam["id"], with_credentials=True,
                                          principal=who("cameras:stream"))
        assert live.credentials_in_url and "S3cret" in str(live.credentials_in_url)
        assert "S3cret" not in live.rtsp_main

