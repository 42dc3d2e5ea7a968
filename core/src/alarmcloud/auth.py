"""Accounts and authentication: server-side sessions, CSRF, API tokens, login rate limiting, rights."""

from __future__ import annotations

import re
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from alarmcloud import crypto
from alarmcloud.errors import ApiError, field, json_body, only_fields
from alarmcloud.models import (
    Account,
    ApiToken,
    Camera,
    CameraRight,
    SessionRow,
    TwoFactor,
    aware,
    iso,
    lock_account,
    utcnow,
)
from alarmcloud.netutil import client_prefix

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud
    from alarmcloud.config import Settings

SESSION_COOKIE = "ac_session"
CSRF_COOKIE = "ac_csrf"
CSRF_HEADER = "x-csrf-token"
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
RIGHTS = {"view": 1, "control": 2, "admin": 3}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def core(request: Request) -> AlarmCloud:
    return request.app.state.alarmcloud


@dataclass
class User:
    """The authenticated caller of a core API request."""

    account: Account
    via: str  # session | token
    token_id: str | None = None
    csrf_token: str | None = None
    #: a read-only API token: unsafe methods answer 403 ``read_only_token``
    read_only: bool = False
    #: the session's row key (``SessionRow.id_hash``) when the caller came with a session cookie
    session_id: str | None = None
    #: the server requires two-step verification of this person (``two_factor_required``) and it is not on yet:
    #: only setting it up is allowed (``check_two_factor``)
    needs_two_factor: bool = False

    @property
    def id(self) -> str:
        return self.account.id

    @property
    def tenant_id(self) -> str:
        """The account that owns the data this user works on (a sub-user works on its owner's cameras)."""
        return self.account.owner_id or self.account.id

    @property
    def is_operator(self) -> bool:
        return self.account.role == "operator"


#: a network may fail this many times the per-account limit, summed over all e-mail addresses, per window
NETWORK_FACTOR = 4


class LoginLimiter:
    """Failed logins per (e-mail, network prefix) in a sliding window; in-memory per API node."""

    def __init__(self, attempts: int, window: float) -> None:
        self.attempts = attempts
        self.window = window
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        q = self._failures[key]
        now = time.monotonic()
        while q and q[0] < now - self.window:
            q.popleft()
        return q

    def blocked(self, key: tuple[str, str], attempts: int | None = None) -> float:
        q = self._recent(key)
        if len(q) >= (attempts or self.attempts):
            return max(1.0, q[0] + self.window - time.monotonic())
        return 0.0

    def fail(self, key: tuple[str, str]) -> None:
        self._recent(key).append(time.monotonic())

    def reset(self, key: tuple[str, str]) -> None:
        self._failures.pop(key, None)


def check_same_origin(request: Request) -> None:
    """Refuse browser posts from other sites to login and register (login CSRF: a text/plain form can carry JSON).

    Browsers send ``Origin`` on every cross-site POST; scripts and apps send none and are not affected.
    """
    origin = request.headers.get("origin")
    if not origin:
        return
    from urllib.parse import urlparse

    host = urlparse(origin).netloc.lower()
    allowed = {request.headers.get("host", "").lower(), urlparse(core(request).settings.public_url).netloc.lower()}
    if host not in allowed:
        raise ApiError(403, "cross_site_request", "this request came from another web site")


def validate_credentials(data: dict[str, Any]) -> tuple[str, str]:
    email = field(data, "email", str, max_len=320).strip().lower()
    password = field(data, "password", str, max_len=1024)
    if not EMAIL_RE.match(email):
        raise ApiError(400, "invalid_email", "that is not a valid e-mail address")
    if len(password) < 10:
        raise ApiError(400, "weak_password", "passwords need at least 10 characters")
    return email, password


# ---------------------------------------------------------------- resolving the caller


def session_expired(row: SessionRow, st: Settings, now: datetime) -> bool:
    """Whether a session has run out: ``session_absolute_days`` after login, ``session_idle_minutes`` unused."""
    return (now - aware(row.created_at) > timedelta(days=st.session_absolute_days)
            or now - aware(row.last_seen_at) > timedelta(minutes=st.session_idle_minutes))


def two_factor_required(st: Settings, account: Account) -> bool:
    """The server requires two-step verification of this person (``two_factor_required``: operators; owners,
    operators too; everyone)."""
    rule = st.two_factor_required
    if rule == "everyone":
        return True
    if rule == "owners":
        return account.owner_id is None or account.role == "operator"
    return rule == "operators" and account.role == "operator"


def needs_two_factor(s: Session, st: Settings, account: Account) -> bool:
    """The server requires two-step verification of this person and it is not on."""
    if not two_factor_required(st, account):
        return False
    row = s.get(TwoFactor, account.id)
    return row is None or row.enabled_at is None


#: what a person whose two-step verification the server requires may do before it is on: read who they are, set
#: it up, log out
ENROL_OPERATIONS = {("GET", "/api/v1/me"), ("GET", "/api/v1/me/2fa"), ("POST", "/api/v1/me/2fa"),
                    ("POST", "/api/v1/me/2fa/confirm"), ("POST", "/api/v1/auth/logout")}


class TwoFactorFirst(Exception):
    """A page asked for by someone who must set up two-step verification first: the app sends them to it."""


def check_two_factor(request: Request, user: User) -> None:
    """403 ``two_factor_required`` for anything but ``ENROL_OPERATIONS`` while the person must set up two-step
    verification (the server requires it and it is not on)."""
    if user.needs_two_factor and (request.method, request.url.path) not in ENROL_OPERATIONS:
        raise ApiError(403, "two_factor_required", "this server requires two-step verification for your account: "
                                                   "set it up first (account page, or POST /api/v1/me/2fa and "
                                                   "POST /api/v1/me/2fa/confirm)")


def _session_user(s: Session, app: AlarmCloud, cookie: str) -> User | None:
    row = s.get(SessionRow, crypto.token_hash(cookie))
    if row is None:
        return None
    now = utcnow()
    if session_expired(row, app.settings, now):
        s.delete(row)
        s.commit()
        return None
    account = s.get(Account, row.account_id)
    if account is None:
        return None
    if (now - row.last_seen_at).total_seconds() > 60:  # write at most once a minute
        row.last_seen_at = now
        account.last_active_at = now
        s.add(row)
        s.add(account)
        s.commit()
    return User(account, "session", csrf_token=row.csrf_token, session_id=row.id_hash,
                needs_two_factor=needs_two_factor(s, app.settings, account))


def _token_user(s: Session, app: AlarmCloud, token: str) -> User | None:
    row = s.exec(select(ApiToken).where(ApiToken.token_hash == crypto.token_hash(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    account = s.get(Account, row.account_id)
    if account is None:
        return None
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        row.last_used_at = now
        account.last_active_at = now
        s.add(row)
        s.add(account)
        s.commit()
    return User(account, "token", token_id=row.id, read_only=row.read_only,
                needs_two_factor=needs_two_factor(s, app.settings, account))


async def optional_user(request: Request) -> User | None:
    app = core(request)
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        token = auth[7:].strip()
        user = await app.db.run(lambda s: _token_user(s, app, token))
        if user is None:
            raise ApiError(401, "invalid_token", "the bearer token is invalid or revoked",
                           {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return user
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return await app.db.run(lambda s: _session_user(s, app, cookie))
    return None


async def signed_in_user(request: Request) -> User:
    """The caller, or 401 (no CSRF check yet: see ``check_csrf``; most endpoints want ``require_user``); 403
    ``two_factor_required`` while the person must set up two-step verification first (``check_two_factor``)."""
    user = await optional_user(request)
    if user is None:
        raise ApiError(401, "unauthorized", "log in or send a bearer token",
                       {"WWW-Authenticate": 'Bearer realm="alarmcloud"'})
    check_two_factor(request, user)
    return user


def check_csrf(request: Request, user: User, sent: str | None = None, reads: bool = False) -> None:
    """For cookie sessions, unsafe methods need the CSRF token: the header X-CSRF-Token or, where an endpoint
    also takes a plain form post, ``sent`` (the token from a form field). A read-only API token may use safe
    methods only, and a POST that only reads (``reads``: a ZIP of chosen clips)."""
    if user.read_only and request.method not in SAFE_METHODS and not reads:
        raise ApiError(403, "read_only_token", "this API token may only read (GET); make a token with full access "
                                               "on the account page to change anything")
    if user.via == "session" and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER) or sent
        if not sent or not user.csrf_token or not crypto.constant_eq(sent, user.csrf_token):
            raise ApiError(403, "csrf_failed", "missing or wrong CSRF token (header X-CSRF-Token)")
    request.state.user = user


async def require_user(request: Request) -> User:
    """The caller, or 401; for cookie sessions, unsafe methods need the CSRF token (header X-CSRF-Token)."""
    user = await signed_in_user(request)
    check_csrf(request, user)
    return user


async def require_owner(request: Request, manages: str) -> User:
    """The account owner, or 403 ``forbidden`` "only the account owner manages ``manages``" for a sub-user (what
    covers every camera of the account is more than a sub-user's per-camera rights)."""
    user = await require_user(request)
    if user.account.owner_id is not None:
        raise ApiError(403, "forbidden", f"only the account owner manages {manages}")
    return user


async def require_operator(request: Request) -> User:
    user = await require_user(request)
    if not user.is_operator:
        raise ApiError(403, "forbidden", "operators only")
    return user


def processing_blocked(s: Session, acc: Account | None) -> bool:
    """GDPR Art. 18: processing blocked for the account or, for a sub-user, its owner's (no camera data goes to an
    integration); True for an account that is gone."""
    if acc is None:
        return True
    owner = s.get(Account, acc.owner_id) if acc.owner_id else None
    return acc.restricted or bool(owner is not None and owner.restricted)


def camera_right(s: Session, user: User, camera_id: str) -> str | None:
    """The caller's right on a camera of its tenant: "admin" for the owner, a sub-user's granted right, or None."""
    if user.account.owner_id is None:
        return "admin"
    right = s.get(CameraRight, (user.id, camera_id))
    return right.right if right is not None else None


def camera_for(s: Session, user: User, camera_id: str, need: str = "view") -> Camera:
    """The camera if this user may use it with ``need`` rights; 404 otherwise (never reveal existence)."""
    cam = s.get(Camera, camera_id)
    if cam is None or cam.account_id != user.tenant_id:
        raise ApiError(404, "not_found", "camera not found")
    right = camera_right(s, user, camera_id)
    if right is None:
        raise ApiError(404, "not_found", "camera not found")
    if RIGHTS[right] < RIGHTS[need]:
        raise ApiError(403, "forbidden", f"you need the {need!r} right on this camera")
    return cam


def visible_camera_ids(s: Session, user: User) -> list[str] | None:
    """None: every camera of the tenant; else the sub-user's cameras."""
    if user.account.owner_id is None:
        return None
    return list(s.exec(select(CameraRight.camera_id).where(CameraRight.account_id == user.id)).all())


def visible_cameras(s: Session, user: User, order_by: Any) -> list[Camera]:
    """The cameras the caller may see (all of the tenant's, or a sub-user's granted ones), in ``order_by`` order."""
    q = select(Camera).where(Camera.account_id == user.tenant_id)
    ids = visible_camera_ids(s, user)
    if ids is not None:
        q = q.where(col(Camera.id).in_(ids))
    return list(s.exec(q.order_by(order_by)).all())


# ---------------------------------------------------------------- endpoints


async def register(request: Request) -> Response:
    """Create an account."""
    app = core(request)
    if not app.settings.registration_open:
        raise ApiError(403, "registration_closed", "registration is closed on this deployment")
    check_same_origin(request)
    data = await json_body(request)
    only_fields(data, {"email", "password"})
    email, password = validate_credentials(data)
    pw_hash = await crypto.hash_password_async(password)

    def _create(s: Session) -> Account:
        if s.exec(select(Account).where(Account.email == email)).first() is not None:
            raise ApiError(409, "email_taken", "an account with this e-mail address exists")
        acc = Account(email=email, password_hash=pw_hash)
        s.add(acc)
        s.commit()
        return acc

    acc = await app.db.run(_create)
    return JSONResponse({"id": acc.id, "email": acc.email}, status_code=201)


async def start_session(app: AlarmCloud, account_id: str, response: Response, request: Request | None = None) -> str:
    """Store a new server-side session and set its cookies; returns the CSRF token."""
    cookie = crypto.new_token(32)  # 256-bit random id; nothing personal in it
    csrf = crypto.new_token(24)

    device = device_label(request.headers.get("user-agent", "")) if request is not None else None

    def _store(s: Session) -> None:
        s.add(SessionRow(id_hash=crypto.token_hash(cookie), account_id=account_id, csrf_token=csrf, device=device))
        s.commit()

    await app.db.run(_store)
    # Secure when configured, when public_url is https, or when this request came over TLS (directly or through
    # a trusted proxy's X-Forwarded-Proto, see forwarded_allow_ips)
    secure = app.settings.cookies_secure or (request is not None and request.url.scheme == "https")
    max_age = app.settings.session_absolute_days * 86400
    response.set_cookie(SESSION_COOKIE, cookie, max_age=max_age, httponly=True, samesite="lax", secure=secure,
                        path="/")
    response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, httponly=False, samesite="lax", secure=secure,
                        path="/")
    return csrf


#: browsers by the first User-Agent token that names them (Edge and Opera say "Chrome" too, so they come first)
_BROWSERS = (("Edg/", "Edge"), ("EdgA/", "Edge"), ("OPR/", "Opera"), ("SamsungBrowser/", "Samsung Internet"),
             ("Firefox/", "Firefox"), ("FxiOS/", "Firefox"), ("CriOS/", "Chrome"), ("Chrome/", "Chrome"),
             ("Safari/", "Safari"))
_SYSTEMS = (("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("Macintosh", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def device_label(user_agent: str) -> str | None:
    """A coarse name of the browser and system a session was started from ("Firefox on Android"), so a person can
    tell their devices apart in the list of sessions; the User-Agent itself (versions and all) is not stored."""
    ua = user_agent[:512]
    browser = next((name for token, name in _BROWSERS if token in ua), None)
    system = next((name for token, name in _SYSTEMS if token in ua), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or None


def login_limit_keys(request: Request, email: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """The login limiter's keys: per account and network, and per network over all accounts (password spraying)."""
    prefix = client_prefix(request)
    return (email, prefix), ("*", prefix)


def check_login_limit(app: AlarmCloud, request: Request, email: str,
                      message: str = "too many failed logins; try again later") -> None:
    """429 with Retry-After while the account (from this network) or the network is blocked."""
    key, net_key = login_limit_keys(request, email)
    limiter = app.login_limiter
    wait = max(limiter.blocked(key), limiter.blocked(net_key, NETWORK_FACTOR * limiter.attempts))
    if wait:
        raise ApiError(429, "rate_limited", message, {"Retry-After": str(int(wait))})


def count_login_failure(app: AlarmCloud, request: Request, email: str) -> None:
    """A wrong password or code, counted for the account and for the network."""
    for key in login_limit_keys(request, email):
        app.login_limiter.fail(key)


async def check_login(app: AlarmCloud, request: Request, email: str, password: str, reset: bool = True) -> Account:
    """The account if the password is right (else 401, counted by the rate limit); ``reset`` clears its failures."""
    check_login_limit(app, request, email)
    acc = await app.db.run(lambda s: s.exec(select(Account).where(Account.email == email)).first())
    if not await crypto.verify_password_async(acc.password_hash if acc else None, password) or acc is None:
        count_login_failure(app, request, email)
        raise ApiError(401, "invalid_credentials", "wrong e-mail address or password")
    if reset:
        app.login_limiter.reset(login_limit_keys(request, email)[0])
    return acc


async def login(request: Request) -> Response:
    """Log in; sets the session cookie (HttpOnly, SameSite=Lax) and returns the CSRF token.

    With two-step verification on, the password alone starts no session: 401 ``second_factor_required`` with a
    ``pending_token`` (valid ``expires_in`` seconds) that ``POST /api/v1/auth/login/second-factor`` completes.
    """
    from alarmcloud import twofactor

    app = core(request)
    check_same_origin(request)
    data = await json_body(request)
    only_fields(data, {"email", "password"})
    email = field(data, "email", str, max_len=320).strip().lower()
    password = field(data, "password", str, max_len=1024)
    acc = await check_login(app, request, email, password, reset=False)
    if await app.db.run(lambda s: twofactor.is_enabled(s, acc.id)):
        # the failure count stays until the second step succeeds: a known password cannot reset it for code guesses
        return twofactor.pending_response(app, acc)
    app.login_limiter.reset(login_limit_keys(request, email)[0])
    return await session_response(app, acc, request)


async def session_response(app: AlarmCloud, acc: Account, request: Request) -> Response:
    """200 with the account, the CSRF token and a new session's cookies."""
    response = JSONResponse({"id": acc.id, "email": acc.email, "role": acc.role})
    csrf = await start_session(app, acc.id, response, request)
    response.body = response.render({"id": acc.id, "email": acc.email, "role": acc.role, "csrf_token": csrf})
    response.headers["content-length"] = str(len(response.body))
    return response


async def logout(request: Request) -> Response:
    """End the session (an expired or unknown session only has its cookies cleared)."""
    app = core(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and await app.db.run(lambda s: _session_user(s, app, cookie)) is not None:
        await require_user(request)  # a live session needs its CSRF token to end

        def _drop(s: Session) -> None:
            row = s.get(SessionRow, crypto.token_hash(cookie))
            if row is not None:
                s.delete(row)
                s.commit()

        await app.db.run(_drop)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


#: live (not revoked) API tokens one person may hold: enough for every script, not a table without end
MAX_TOKENS = 20


def token_json(r: ApiToken) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "read_only": r.read_only, "created_at": iso(r.created_at),
            "last_used_at": iso(r.last_used_at) if r.last_used_at else None, "revoked": r.revoked_at is not None}


def token_list(s: Session, account_id: str, revoked: bool = False) -> list[dict[str, Any]]:
    """The person's API tokens, newest first (never the token itself); the revoked ones too where ``revoked``."""
    q = select(ApiToken).where(ApiToken.account_id == account_id)
    if not revoked:
        q = q.where(col(ApiToken.revoked_at).is_(None))
    return [token_json(r) for r in s.exec(q.order_by(col(ApiToken.created_at).desc(), col(ApiToken.id))).all()]


async def create_token(request: Request) -> Response:
    """Create a personal API token (shown once); ``"read_only": true`` makes one that may only read (GET).

    409 ``limit_reached`` with 20 live tokens: revoke one first."""
    user = await require_user(request)
    data = await json_body(request)
    only_fields(data, {"name", "read_only"})
    name = field(data, "name", str, max_len=100).strip() or "token"
    read_only = field(data, "read_only", bool, required=False, default=False)
    token = "act_" + crypto.new_token(32)

    def _store(s: Session) -> ApiToken:
        lock_account(s, user.tenant_id)  # tokens created at once never pass the limit together
        live = s.exec(select(func.count()).select_from(ApiToken).where(
            ApiToken.account_id == user.id, col(ApiToken.revoked_at).is_(None))).one()
        if live >= MAX_TOKENS:
            raise ApiError(409, "limit_reached", f"you have {MAX_TOKENS} API tokens already; revoke one you no "
                                                 "longer use first")
        row = ApiToken(account_id=user.id, name=name, token_hash=crypto.token_hash(token), read_only=read_only)
        s.add(row)
        s.commit()
        return row

    row = await core(request).db.run(_store)
    return JSONResponse({"id": row.id, "name": row.name, "read_only": row.read_only, "token": token},
                        status_code=201)


async def list_tokens(request: Request) -> Response:
    """The caller's API tokens, newest first, revoked ones included (never the token itself)."""
    user = await require_user(request)
    return JSONResponse({"items": await core(request).db.run(lambda s: token_list(s, user.id, revoked=True))})


async def revoke_token(request: Request) -> Response:
    """Revoke one API token."""
    user = await require_user(request)
    token_id = request.path_params["token_id"]

    def _revoke(s: Session) -> None:
        row = s.get(ApiToken, token_id)
        if row is None or row.account_id != user.id:
            raise ApiError(404, "not_found", "token not found")
        row.revoked_at = row.revoked_at or utcnow()  # revoking again keeps the first time
        s.add(row)
        s.commit()

    await core(request).db.run(_revoke)
    return Response(status_code=204)
