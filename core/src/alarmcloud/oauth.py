"""OAuth 2 authorization server for account linking (authlib grants on Starlette), links and pseudonyms."""

from __future__ import annotations

import contextlib
import html
import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
    grants,
)
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from sqlalchemy import or_, update
from sqlmodel import Session, select
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from alarmcloud import crypto, erasures
from alarmcloud.auth import SESSION_COOKIE, User, _session_user, require_user
from alarmcloud.bodies import read_body
from alarmcloud.errors import ApiError
from alarmcloud.events import LINK_REVOKED, Event
from alarmcloud.models import Consent, aware, iso, new_id, utcnow
from alarmcloud.oauth_models import OAuthClient, OAuthCode, OAuthGrant, OAuthToken, Pseudonym
from alarmcloud.services import Principal

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud
    from alarmcloud.config import Settings

log = logging.getLogger(__name__)

#: scopes a client may be granted, with the words the consent page shows
SCOPES: dict[str, str] = {
    "alarms:read": "See your alarm events (time, camera, detections)",
    "cameras:control": "Control your cameras (motion detection, alarm e-mail, presets, alarm areas); "
                       "uses the camera login you stored",
    "cameras:stream": "Show your cameras' live video; uses the camera login you stored",
    "storage:read": "See how much of your storage is used",
}
CODE_SECONDS = 600  # one-time codes live at most 10 minutes (RFC 9700, ASVS 10.4.3)
ACCESS_SECONDS = 3600  # opaque access tokens live one hour
REFRESH_DAYS = 365  # sliding: each rotation extends; IFTTT wants refresh tokens that do not expire by time
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


# ---------------------------------------------------------------- authlib adapters


class _Client(ClientMixin):
    """An ``OAuthClient`` row as authlib sees it."""

    def __init__(self, row: OAuthClient) -> None:
        self.row = row

    @property
    def public(self) -> bool:
        return self.row.secret_hash is None

    def get_client_id(self) -> str:
        return self.row.id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.row.redirect_uris or []
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        allowed = list(self.row.scopes or [])
        asked = (scope or "").split()
        if not asked or self.row.integration in asked:  # IFTTT asks for scope=ifttt: everything registered
            return " ".join(allowed)
        granted = [s for s in asked if s in allowed]
        return " ".join(granted) if granted else None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in (self.row.redirect_uris or [])  # exact string match (RFC 9700 §2.1)

    def check_client_secret(self, client_secret: str) -> bool:
        return self.row.secret_hash is not None and crypto.constant_eq(crypto.token_hash(client_secret),
                                                                        self.row.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none" if self.public else method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


class _Code:
    """An ``OAuthCode`` row as authlib sees it."""

    def __init__(self, row: OAuthCode) -> None:
        self.row = row

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope


class _Token:
    """An ``OAuthToken`` row as authlib's refresh and revocation code sees it."""

    def __init__(self, row: OAuthToken) -> None:
        self.row = row

    def check_client(self, client: _Client) -> bool:
        return self.row.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.row.scope

    def get_user(self) -> str:
        return self.row.account_id


class _Payload(OAuth2Payload):
    def __init__(self, lists: dict[str, list[str]]) -> None:
        self._lists = defaultdict(list, lists)
        self._data = {k: v[0] for k, v in lists.items() if v}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._lists


class _Request(OAuth2Request):
    """An already-read Starlette request (query string and form) for authlib's sync code."""

    def __init__(self, method: str, uri: str, headers: Any, query: dict[str, list[str]],
                 form: dict[str, list[str]]) -> None:
        super().__init__(method, uri, headers=headers)
        merged: dict[str, list[str]] = {k: list(v) for k, v in query.items()}
        for k, v in form.items():
            merged.setdefault(k, []).extend(v)
        self.payload = _Payload(merged)
        self._args = {k: v[0] for k, v in query.items() if v}
        self._formdata = {k: v[0] for k, v in form.items() if v}

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._formdata


class _PKCE(CodeChallenge):
    """S256 only; a per-client flag makes PKCE mandatory (always for public clients)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        client: _Client = grant.request.client
        if (client.public or client.row.require_pkce) and not data.get("code_challenge"):
            raise InvalidRequestError("this client must use PKCE (code_challenge with S256)")
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        client: _Client = grant.request.client
        if client.row.require_pkce and not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        super().validate_code_verifier(grant, result)

    def get_authorization_code_challenge(self, authorization_code: _Code) -> str | None:
        return authorization_code.row.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: _Code) -> str | None:
        return authorization_code.row.code_challenge_method


class _CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        self.server.session.add(OAuthCode(
            code_hash=crypto.token_hash(code), client_id=request.client.get_client_id(),
            account_id=request.user, redirect_uri=data.get("redirect_uri") or "", scope=request.scope or "",
            code_challenge=data.get("code_challenge"), code_challenge_method=data.get("code_challenge_method"),
            expires_at=utcnow() + timedelta(seconds=CODE_SECONDS)))

    def query_authorization_code(self, code: str, client: _Client) -> _Code | None:
        s: Session = self.server.session
        row = s.get(OAuthCode, crypto.token_hash(code))
        if row is None or row.client_id != client.get_client_id():
            return None
        if row.used_at is not None:  # replay: the code leaked; revoke what it produced (RFC 6749 §4.1.2)
            _code_replayed(s, row.code_hash, row.client_id)
            return None
        if aware(row.expires_at) < utcnow():
            return None
        return _Code(row)

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        # one conditional UPDATE: of two concurrent exchanges of the same code only one can win (PostgreSQL too);
        # the loser's token is rolled back by the endpoint
        s: Session = self.server.session
        done = s.execute(update(OAuthCode).where(
            OAuthCode.code_hash == authorization_code.row.code_hash,  # type: ignore[arg-type]
            OAuthCode.used_at == None).values(used_at=utcnow()))  # type: ignore[arg-type]  # noqa: E711
        if done.rowcount != 1:  # type: ignore[attr-defined]
            # lost the race: drop our token; the winner has committed (the UPDATE waited for it), so this is a replay
            code_hash, client_id = authorization_code.row.code_hash, authorization_code.row.client_id
            s.rollback()
            _code_replayed(s, code_hash, client_id)
            raise InvalidGrantError("Invalid 'code' in request.")

    def authenticate_user(self, authorization_code: _Code) -> str:
        return authorization_code.row.account_id


class _RefreshGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> _Token | None:
        s: Session = self.server.session
        row = s.exec(select(OAuthToken).where(OAuthToken.refresh_hash == crypto.token_hash(refresh_token))).first()
        if row is None or row.revoked_at is not None:
            return None
        if row.refresh_expires_at is not None and aware(row.refresh_expires_at) < utcnow():
            return None
        if row.refresh_retired_at is not None:  # its successor is in use: this is reuse, kill the family
            log.warning("refresh token reuse for client %s; revoking the token family", row.client_id)
            _revoke_family(s, row.family_id)
            s.commit()
            return None
        if _live_grant(s, row.account_id, row.client_id) is None:
            return None
        return _Token(row)  # marked used in save_token, once authlib has checked the client and the scope

    def authenticate_user(self, refresh_token: _Token) -> str:
        return refresh_token.row.account_id

    def revoke_old_credential(self, refresh_token: _Token) -> None:
        """Keep the old refresh token: it stays valid until its successor is first used (Alexa, IFTTT, Google)."""


class _Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> _Token | None:
        h = crypto.token_hash(token_string)
        row = self.server.session.exec(select(OAuthToken).where(
            or_(OAuthToken.access_hash == h, OAuthToken.refresh_hash == h))).first()  # type: ignore[arg-type]
        return _Token(row) if row is not None else None

    def revoke_token(self, token: _Token, request: Any) -> None:
        """End the token's family; when it was the link's last live family, the platform unlinked: end the link."""
        s, row = self.server.session, token.row
        _revoke_family(s, row.family_id)
        s.flush()
        live = s.exec(select(OAuthToken.id).where(OAuthToken.account_id == row.account_id,
                                                  OAuthToken.client_id == row.client_id,
                                                  OAuthToken.revoked_at == None)).first()  # noqa: E711
        ending = [(row.account_id, row.client_id)] if live is None else []
        with withdrawal_recorded(self.server.settings, s, ending):
            if ending and revoke_link(s, row.account_id, row.client_id):
                client = s.get(OAuthClient, row.client_id)
                self.server.ended_links.append((row.account_id, row.client_id, client.integration if client else ""))
            s.commit()


class _Server(AuthorizationServer):
    """authlib's generic server bound to one database session (run inside ``db.run``)."""

    def __init__(self, session: Session, settings: Settings | None = None) -> None:
        super().__init__()
        self.session = session
        #: where the erasure register is (a revocation that ends a link writes it)
        self.settings = settings
        #: links that a revocation ended: (account id, client id, integration)
        self.ended_links: list[tuple[str, str, str]] = []
        self.register_token_generator("default", BearerTokenGenerator(
            lambda *a, **k: "aco_" + crypto.new_token(32), lambda *a, **k: "acr_" + crypto.new_token(32),
            lambda client, grant_type: ACCESS_SECONDS))
        self.register_grant(_CodeGrant, [_PKCE(required=True)])
        self.register_grant(_RefreshGrant)
        self.register_endpoint(_Revocation)

    def query_client(self, client_id: str) -> _Client | None:
        row = self.session.get(OAuthClient, client_id)
        return _Client(row) if row is not None else None

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        s = self.session
        parent: _Token | None = request.refresh_token
        code: _Code | None = request.authorization_code
        if parent is not None:  # a successful refresh is the first use of this refresh token
            _mark_used(s, parent.row, commit=False)
        _store_token(s, token, client_id=request.client.get_client_id(), account_id=request.user,
                     parent=parent.row if parent else None, code_hash=code.row.code_hash if code else None)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request

    def create_json_request(self, request: Any) -> Any:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, list(headers or [])

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


# ---------------------------------------------------------------- storage helpers


def _store_token(s: Session, token: dict[str, Any], client_id: str, account_id: str,
                 parent: OAuthToken | None = None, code_hash: str | None = None) -> OAuthToken:
    now = utcnow()
    row = OAuthToken(client_id=client_id, account_id=account_id,
                     family_id=parent.family_id if parent else new_id(), parent_id=parent.id if parent else None,
                     code_hash=code_hash or (parent.code_hash if parent else None), scope=token.get("scope", ""),
                     access_hash=crypto.token_hash(token["access_token"]),
                     refresh_hash=crypto.token_hash(token["refresh_token"]) if token.get("refresh_token") else None,
                     access_expires_at=now + timedelta(seconds=int(token.get("expires_in", ACCESS_SECONDS))),
                     refresh_expires_at=now + timedelta(days=REFRESH_DAYS))
    s.add(row)
    return row


def _mark_used(s: Session, row: OAuthToken, commit: bool = True) -> None:
    """The first use of a token retires its parent's refresh token (reuse after that revokes the family)."""
    if row.used_at is not None:
        return
    row.used_at = utcnow()
    s.add(row)
    if row.parent_id:
        parent = s.get(OAuthToken, row.parent_id)
        if parent is not None and parent.refresh_retired_at is None:
            parent.refresh_retired_at = row.used_at
            s.add(parent)
    if commit:
        s.commit()


def _revoke_family(s: Session, family_id: str) -> None:
    now = utcnow()
    for tok in s.exec(select(OAuthToken).where(OAuthToken.family_id == family_id,
                                               OAuthToken.revoked_at == None)).all():  # noqa: E711
        tok.revoked_at = now
        s.add(tok)


def _code_replayed(s: Session, code_hash: str, client_id: str) -> None:
    """A used code came again: revoke every token family it started, at once (committed)."""
    log.warning("authorization code replayed for client %s; revoking its tokens", client_id)
    for tok in s.exec(select(OAuthToken).where(OAuthToken.code_hash == code_hash)).all():
        _revoke_family(s, tok.family_id)
    s.commit()


def _live_grant(s: Session, account_id: str, client_id: str) -> OAuthGrant | None:
    return s.exec(select(OAuthGrant).where(OAuthGrant.account_id == account_id, OAuthGrant.client_id == client_id,
                                           OAuthGrant.revoked_at == None)).first()  # noqa: E711


def pseudonym_for(s: Session, integration: str, account_id: str) -> str:
    """The stable random user id ``integration`` sees for this account (created on first use)."""
    row = s.exec(select(Pseudonym).where(Pseudonym.integration == integration,
                                         Pseudonym.account_id == account_id)).first()
    if row is None:
        row = Pseudonym(integration=integration, account_id=account_id, pseudonym=crypto.new_token(18))
        s.add(row)
        s.flush()
    return row.pseudonym


def record_grant(s: Session, account_id: str, client: OAuthClient, scopes: Iterable[str]) -> OAuthGrant:
    """Create or update the customer's link to ``client``; a new link writes the consent ledger."""
    scope_list = sorted(set(scopes))
    grant = _live_grant(s, account_id, client.id)
    if grant is None:
        grant = OAuthGrant(account_id=account_id, client_id=client.id, integration=client.integration,
                           scopes=scope_list)
        s.add(Consent(account_id=account_id, kind="integration_grant", subject=client.id,
                      purpose=f"{client.name} ({client.integration}): {' '.join(scope_list)}"[:200]))
    elif set(grant.scopes or []) != set(scope_list):
        grant.scopes = sorted(set(grant.scopes or []) | set(scope_list))
    s.add(grant)
    pseudonym_for(s, client.integration, account_id)
    return grant


def _live_consents(s: Session, account_id: str, client_id: str) -> list[Consent]:
    return list(s.exec(select(Consent).where(Consent.account_id == account_id, Consent.kind == "integration_grant",
                                             Consent.subject == client_id,
                                             Consent.withdrawn_at == None)).all())  # noqa: E711


def withdrawal_recorded(settings: Settings | None, s: Session,
                        links: Iterable[tuple[str, str]]) -> contextlib.AbstractContextManager[None]:
    """Around the commit of ``revoke_link`` for ``links`` (account id, client id): the erasure register gets their
    live consents first (kind ``consent``), so that a restore of an older backup ends those links again; voided when
    the commit fails. ``settings`` None (a bare database session, tests) writes nothing."""
    if settings is None:
        return contextlib.nullcontext()
    return erasures.recorded_lines(settings, [erasures.consent_line(c) for account_id, client_id in links
                                              for c in _live_consents(s, account_id, client_id)])


def revoke_link(s: Session, account_id: str, client_id: str) -> bool:
    """Withdraw a link: revoke the grant and all its tokens, mark the consent withdrawn."""
    now = utcnow()
    found = False
    for grant in s.exec(select(OAuthGrant).where(OAuthGrant.account_id == account_id,
                                                 OAuthGrant.client_id == client_id,
                                                 OAuthGrant.revoked_at == None)).all():  # noqa: E711
        grant.revoked_at = now
        s.add(grant)
        found = True
    for tok in s.exec(select(OAuthToken).where(OAuthToken.account_id == account_id,
                                               OAuthToken.client_id == client_id,
                                               OAuthToken.revoked_at == None)).all():  # noqa: E711
        tok.revoked_at = now
        s.add(tok)
    for c in _live_consents(s, account_id, client_id):
        c.withdrawn_at = now
        s.add(c)
    return found


# ---------------------------------------------------------------- functions the services facade calls


def add_client(s: Session, name: str, integration: str, redirect_uris: list[str], scopes: list[str],
               public: bool = False, require_pkce: bool | None = None,
               client_id: str | None = None) -> tuple[OAuthClient, str | None]:
    """Register a client; returns it and its secret (None for public clients), shown once."""
    unknown = [x for x in scopes if x not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; known: {', '.join(SCOPES)}")
    secret = None if public else crypto.new_token(32)
    row = OAuthClient(id=client_id or "acc_" + crypto.new_token(12), name=name, integration=integration,
                      secret_hash=crypto.token_hash(secret) if secret else None, redirect_uris=list(redirect_uris),
                      scopes=list(scopes), require_pkce=public if require_pkce is None else (public or require_pkce))
    s.add(row)
    s.commit()
    return row, secret


def list_clients(s: Session) -> list[dict[str, Any]]:
    """Every registered client with its settings and the number of live links (no secrets)."""
    out = []
    for c in s.exec(select(OAuthClient).order_by(OAuthClient.created_at)).all():  # type: ignore[arg-type]
        links = s.exec(select(OAuthGrant.id).where(OAuthGrant.client_id == c.id,
                                                   OAuthGrant.revoked_at == None)).all()  # noqa: E711
        out.append({"client_id": c.id, "name": c.name, "integration": c.integration, "public": c.secret_hash is None,
                    "require_pkce": c.require_pkce, "redirect_uris": list(c.redirect_uris or []),
                    "scopes": list(c.scopes or []), "links": len(links), "created_at": iso(c.created_at)})
    return out


def remove_client(s: Session, client_id: str, settings: Settings | None = None) -> int | None:
    """Unlink every account from the client and delete it with its codes and tokens; the number of links ended.

    The consent ledger keeps the grants as withdrawn (and the erasure register of ``settings`` has them). None when
    there is no such client.
    """
    client = s.get(OAuthClient, client_id)
    if client is None:
        return None
    accounts = set(s.exec(select(OAuthGrant.account_id).where(OAuthGrant.client_id == client_id,
                                                              OAuthGrant.revoked_at == None)).all())  # noqa: E711
    with withdrawal_recorded(settings, s, [(account_id, client_id) for account_id in accounts]):
        for account_id in accounts:
            revoke_link(s, account_id, client_id)
        for model in (OAuthCode, OAuthToken, OAuthGrant):
            for row in s.exec(select(model).where(model.client_id == client_id)).all():  # type: ignore[attr-defined]
                s.delete(row)
        s.flush()
        s.delete(client)
        s.commit()
    return len(accounts)


def issue_tokens(s: Session, account_id: str, client_id: str, scopes: Iterable[str] | str) -> dict[str, Any]:
    """Link ``account_id`` to the client and issue a token pair directly (tests, IFTTT test/setup)."""
    client = s.get(OAuthClient, client_id)
    if client is None:
        raise ValueError(f"no OAuth client {client_id!r}")
    scope_list = scopes.split() if isinstance(scopes, str) else list(scopes)
    record_grant(s, account_id, client, scope_list)
    token = {"token_type": "Bearer", "access_token": "aco_" + crypto.new_token(32),
             "refresh_token": "acr_" + crypto.new_token(32), "expires_in": ACCESS_SECONDS,
             "scope": " ".join(sorted(set(scope_list)))}
    _store_token(s, token, client_id=client_id, account_id=account_id)
    s.commit()
    return token


def principal_for_token(s: Session, token: str, integration: str) -> Principal | None:
    """Who an access token stands for, if it is live and was issued to a client of ``integration``."""
    row = s.exec(select(OAuthToken).where(OAuthToken.access_hash == crypto.token_hash(token))).first()
    if row is None or row.revoked_at is not None or aware(row.access_expires_at) < utcnow():
        return None
    client = s.get(OAuthClient, row.client_id)
    if client is None or client.integration != integration:
        return None
    if _live_grant(s, row.account_id, row.client_id) is None:
        return None
    _mark_used(s, row)
    pseudonym = pseudonym_for(s, integration, row.account_id)
    s.commit()
    return Principal(account_id=row.account_id, client_id=row.client_id, scopes=frozenset(row.scope.split()),
                     pseudonym=pseudonym, token_id=row.id)


def access_token_expired(s: Session, token: str, integration: str) -> bool:
    """True when ``token`` was a valid access token of ``integration`` whose lifetime is over but whose link lives.

    ``principal_for_token`` answers None for it like for an unknown or revoked token; this tells them apart, so a
    platform can refresh (Alexa's ``EXPIRED_AUTHORIZATION_CREDENTIAL``) instead of asking the customer to relink.
    """
    row = s.exec(select(OAuthToken).where(OAuthToken.access_hash == crypto.token_hash(token))).first()
    if row is None or row.revoked_at is not None or aware(row.access_expires_at) >= utcnow():
        return False
    client = s.get(OAuthClient, row.client_id)
    return (client is not None and client.integration == integration
            and _live_grant(s, row.account_id, row.client_id) is not None)


def account_for_pseudonym(s: Session, integration: str, pseudonym: str) -> str | None:
    """The account behind an integration's pseudonymous user id."""
    row = s.exec(select(Pseudonym).where(Pseudonym.integration == integration,
                                         Pseudonym.pseudonym == pseudonym)).first()
    return row.account_id if row is not None else None


def linked_pseudonyms(s: Session, integration: str) -> dict[str, str]:
    """Pseudonym → account id for every account with a live link to a client of ``integration``."""
    accounts = set(s.exec(select(OAuthGrant.account_id).where(OAuthGrant.integration == integration,
                                                              OAuthGrant.revoked_at == None)).all())  # noqa: E711
    rows = s.exec(select(Pseudonym).where(Pseudonym.integration == integration)).all()
    return {r.pseudonym: r.account_id for r in rows if r.account_id in accounts}


def unlink(s: Session, account_id: str, integration: str, settings: Settings | None = None) -> None:
    """Drop every link of the account to clients of ``integration`` (the platform said it unlinked); the erasure
    register of ``settings`` gets the consents withdrawn."""
    ids = s.exec(select(OAuthClient.id).where(OAuthClient.integration == integration)).all()
    with withdrawal_recorded(settings, s, [(account_id, cid) for cid in ids]):
        for cid in ids:
            revoke_link(s, account_id, cid)
        s.commit()


# ---------------------------------------------------------------- HTTP endpoints


def _core(request: Request) -> AlarmCloud:
    return request.app.state.alarmcloud


def _oauth_request(core: AlarmCloud, request: Request, form: dict[str, list[str]]) -> _Request:
    uri = core.settings.public_url.rstrip("/") + request.url.path
    query = parse_qs(request.url.query, keep_blank_values=True)
    return _Request(request.method, uri, request.headers, query, form)


#: an OAuth form post is a few short fields; a larger body is refused before it is held in memory
MAX_FORM = 64 * 1024


async def _form(request: Request) -> dict[str, list[str]]:
    raw = await read_body(request, MAX_FORM)
    if raw is None:
        raise ApiError(413, "payload_too_large", f"form body larger than {MAX_FORM} bytes")
    form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    if any("\x00" in k or any("\x00" in v for v in vs) for k, vs in form.items()):
        return {}  # no valid OAuth field holds NUL (PostgreSQL cannot compare one): answered as a form without any
    return form


def _to_response(result: tuple[int, Any, list[tuple[str, str]]], see_other: bool = False,
                 issuer: str | None = None) -> Response:
    """authlib's (status, body, headers) as a response; ``issuer`` adds RFC 9207 ``iss`` to a redirect back."""
    status, body, headers = result
    hdrs = dict(headers)
    if "Location" in hdrs:
        location = hdrs["Location"]
        if issuer:  # RFC 9207: the client can tell which server answered (mix-up attacks)
            location = add_params_to_uri(location, [("iss", issuer)])
        return RedirectResponse(location, status_code=303 if see_other else 302,
                                headers={"Cache-Control": "no-store"})
    hdrs.pop("Content-Type", None)
    hdrs.setdefault("Cache-Control", "no-store")
    hdrs.setdefault("Pragma", "no-cache")
    return JSONResponse(body if body != "" else {}, status_code=status, headers=hdrs)


PAGE_HEADERS = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'; default-src 'self'",
                "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    doc = (f"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport "
           f"content='width=device-width,initial-scale=1'><title>{html.escape(title)}</title>"
           f"<link rel=stylesheet href=/static/app.css></head><body><main class=consent>"  # the web UI's look
           f"<section class='card narrow'><h1>{html.escape(title)}</h1>{body}</section></main></body></html>")
    return HTMLResponse(doc, status_code=status, headers=PAGE_HEADERS)


async def _session(request: Request) -> User | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    core = _core(request)
    return await core.db.run(lambda s: _session_user(s, core, cookie))


def _error_page(core: AlarmCloud, server: _Server, req: _Request, error: OAuth2Error) -> Response:
    if error.redirect_uri:  # validated against the client's list: safe to send the error back
        return _to_response(server.handle_error_response(req, error), see_other=True, issuer=issuer(core))
    return _page("Cannot link", f"<p>{html.escape(error.error)}: {html.escape(error.description or '')}</p>",
                 status=400)


async def authorize(request: Request) -> Response:
    """GET: the consent page; POST: the customer's approve/deny (CSRF-protected), then back to the client."""
    core = _core(request)
    user = await _session(request)
    if user is None:
        if request.method == "GET":
            nxt = request.url.path + ("?" + request.url.query if request.url.query else "")
            return RedirectResponse("/login?next=" + quote(nxt, safe=""), status_code=303)
        return _page("Not logged in", "<p>Your session ended; log in and try again.</p>", status=401)
    if user.needs_two_factor:  # no account is linked before the two-step verification the server requires
        if request.method == "GET":
            return RedirectResponse("/account?setup=two-factor#two-factor", status_code=303)
        return _page("Cannot link", "<p>This server requires two-step verification for your account: set it up "
                     "on the account page first, then link again.</p>", status=403)
    form = await _form(request) if request.method == "POST" else {}
    if request.method == "POST":
        sent = (form.get("csrf_token") or [""])[0]
        if not user.csrf_token or not crypto.constant_eq(sent, user.csrf_token):
            return _page("Cannot link", "<p>The form expired (CSRF check failed). Start again.</p>", status=403)
    req = _oauth_request(core, request, {})  # the OAuth parameters always come from the query string
    decision = (form.get("decision") or [""])[0]

    def _run(s: Session) -> Response:
        server = _Server(s)
        try:
            grant = server.get_consent_grant(req, end_user=user.id)
        except OAuth2Error as error:
            return _error_page(core, server, req, error)
        client: _Client = req.client
        scopes = (req.scope or "").split()
        if request.method == "GET":
            return _consent_page(request, client.row, scopes, user)
        if decision == "approve":
            record_grant(s, user.id, client.row, scopes)
            result = server.create_authorization_response(req, grant_user=user.id, grant=grant)
        else:
            result = server.create_authorization_response(req, grant_user=None, grant=grant)
        s.commit()
        return _to_response(result, see_other=True, issuer=issuer(core))

    return await core.db.run(_run)


def _consent_page(request: Request, client: OAuthClient, scopes: list[str], user: User) -> Response:
    items = "".join(f"<li><b>{html.escape(sc)}</b>: {html.escape(SCOPES.get(sc, sc))}</li>" for sc in scopes)
    action = html.escape(request.url.path + "?" + request.url.query, quote=True)
    csrf = html.escape(user.csrf_token or "", quote=True)
    body = (f"<p><b>{html.escape(client.name)}</b> asks to link to your alarmcloud account "
            f"({html.escape(user.account.email)}). It will be able to:</p><ul>{items}</ul>"
            f"<p>It sees a pseudonymous id, never your e-mail address. You can unlink it at any time.</p>"
            f"<form method=post action=\"{action}\"><input type=hidden name=csrf_token value=\"{csrf}\">"
            f"<div class=row><button name=decision value=approve class=primary>Allow</button> "
            f"<button name=decision value=deny>Deny</button></div></form>")
    return _page(f"Link {client.name}", body)


async def token(request: Request) -> Response:
    """The token endpoint: authorization_code (with PKCE) and refresh_token grants."""
    core = _core(request)
    req = _oauth_request(core, request, await _form(request))

    def _run(s: Session) -> tuple[int, Any, list[tuple[str, str]]]:
        result = _Server(s).create_token_response(req)
        if result[0] == 200:
            s.commit()
        else:  # nothing half-written: a token saved before a late failure is dropped (reuse revocations are
            s.rollback()  # committed where they are detected)
        return result

    return _to_response(await core.db.run(_run))


async def revoke(request: Request) -> Response:
    """RFC 7009 revocation: revoking either token ends the whole token family of that link.

    Revoking the link's last live family ends the link as an unlink by the customer does (the platform unlinked).
    """
    core = _core(request)
    req = _oauth_request(core, request, await _form(request))

    def _run(s: Session) -> tuple[tuple[int, Any, list[tuple[str, str]]], list[tuple[str, str, str]]]:
        server = _Server(s, core.settings)
        result = server.create_endpoint_response("revocation", req)
        s.commit()
        return result, server.ended_links

    result, ended = await core.db.run(_run)
    for account_id, client_id, integration in ended:
        await core.emit(Event(LINK_REVOKED, account_id, None, {"client_id": client_id, "integration": integration}))
    return _to_response(result)


async def list_links(request: Request) -> Response:
    """The services linked to the caller's account."""
    user = await require_user(request)

    def _list(s: Session) -> list[dict[str, Any]]:
        out = []
        for g in s.exec(select(OAuthGrant).where(OAuthGrant.account_id == user.id,
                                                 OAuthGrant.revoked_at == None)).all():  # noqa: E711
            client = s.get(OAuthClient, g.client_id)
            out.append({"client_id": g.client_id, "name": client.name if client else g.client_id,
                        "integration": g.integration, "scopes": g.scopes, "linked_at": iso(g.created_at)})
        return out

    return JSONResponse({"items": await _core(request).db.run(_list)})


async def delete_link(request: Request) -> Response:
    """Unlink a service: its tokens stop working at once and the consent is recorded as withdrawn."""
    user = await require_user(request)
    client_id = request.path_params["client_id"]

    def _del(s: Session) -> str | None:
        with withdrawal_recorded(_core(request).settings, s, [(user.id, client_id)]):
            found = revoke_link(s, user.id, client_id)
            s.commit()
        client = s.get(OAuthClient, client_id)
        return (client.integration if client else "") if found else None

    integration = await _core(request).db.run(_del)
    if integration is None:
        raise ApiError(404, "not_found", "no such linked service")
    # the integration stops reporting to its platform (Alexa event gateway, Google HomeGraph)
    await _core(request).emit(Event(LINK_REVOKED, user.id, None, {"client_id": client_id,
                                                                  "integration": integration}))
    return Response(status_code=204)


def issuer(core: AlarmCloud) -> str:
    """This authorization server's issuer identifier (RFC 8414): the public URL."""
    return core.settings.public_url.rstrip("/")


async def metadata(request: Request) -> Response:
    """RFC 8414 authorization server metadata, so clients can configure themselves."""
    iss = issuer(_core(request))
    return JSONResponse({
        "issuer": iss,
        "authorization_endpoint": f"{iss}/oauth/authorize",
        "token_endpoint": f"{iss}/oauth/token",
        "revocation_endpoint": f"{iss}/oauth/revoke",
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "authorization_response_iss_parameter_supported": True,
    }, headers={"Cache-Control": "public, max-age=3600"})


def routes(core: AlarmCloud) -> list[BaseRoute]:
    """The OAuth endpoints and the customer's links API."""
    return [
        Route("/.well-known/oauth-authorization-server", metadata, methods=["GET"]),
        Route("/oauth/authorize", authorize, methods=["GET", "POST"]),
        Route("/oauth/token", token, methods=["POST"]),
        Route("/oauth/revoke", revoke, methods=["POST"]),
        Route("/api/v1/me/links", list_links, methods=["GET"]),
        Route("/api/v1/me/links/{client_id}", delete_link, methods=["DELETE"]),
    ]

