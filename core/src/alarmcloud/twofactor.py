"""Two-step verification: TOTP (RFC 6238, SHA-1, 30 s, 6 digits) with one-time recovery codes.

The secret is stored AES-GCM encrypted (context ``totp:<account_id>``, rotated by ``alarmcloud keys rotate``);
recovery codes are stored as SHA-256 hashes. A code is accepted for the current time step and one step either
side, and never twice: the last accepted step is stored and only later steps pass.

Login with the second factor on: ``POST /api/v1/auth/login`` answers 401 ``second_factor_required`` with a
``pending_token`` (sealed, valid ``PENDING_SECONDS``) instead of a session; ``POST /api/v1/auth/login/second-factor``
with that token and a code (or a recovery code) starts the session. Wrong codes count against the login rate limit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import secrets
import struct
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import update
from sqlmodel import Session, col, delete, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from alarmcloud import auth, crypto
from alarmcloud.errors import ApiError, field, json_body, only_fields
from alarmcloud.models import Account, Outbox, RecoveryCode, SessionRow, TwoFactor, utcnow

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

STEP = 30
DIGITS = 6
WINDOW = 1  # steps accepted either side of the current one (clock drift)
RECOVERY_CODES = 10
PENDING_SECONDS = 300
ISSUER = "alarmcloud"
_PENDING_CONTEXT = "login-pending"


# ---------------------------------------------------------------- TOTP (RFC 4226 / 6238)


def new_secret() -> str:
    """A random 160-bit secret, base32 without padding (what authenticator apps expect)."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    s = secret.strip().replace(" ", "").upper()
    return base64.b32decode(s + "=" * (-len(s) % 8))


def hotp(secret: str, counter: int, digits: int = DIGITS) -> str:
    mac = hmac.new(_key(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def current_step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP)


def totp(secret: str, now: float | None = None) -> str:
    return hotp(secret, current_step(now))


def matching_step(secret: str, code: str, after: int = 0, now: float | None = None) -> int | None:
    """The time step (within the window, later than ``after``) whose code is ``code``; None if there is none."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not (code.isascii() and code.isdigit()):  # compare_digest: ASCII only
        return None
    step = current_step(now)
    found = None
    for s in range(step - WINDOW, step + WINDOW + 1):
        if s > after and hmac.compare_digest(hotp(secret, s), code):
            found = s  # no early exit: the same work whatever matches
    return found


def otpauth_uri(secret: str, email: str) -> str:
    label = quote(f"{ISSUER}:{email}", safe="@:")
    return (f"otpauth://totp/{label}?secret={secret}&issuer={quote(ISSUER)}&algorithm=SHA1&digits={DIGITS}"
            f"&period={STEP}")


def qr_svg(data: str) -> str:
    """The QR code of ``data`` as an inline SVG element (rendered here: no third-party request)."""
    import segno

    buf = io.BytesIO()
    segno.make(data, error="m").save(buf, kind="svg", scale=5, border=4, xmldecl=False, svgns=True,
                                     title="QR code of the authenticator key", dark="#000", light="#fff")
    return buf.getvalue().decode()


def new_recovery_code() -> str:
    """``xxxxx-xxxxx`` in lower-case base32 (50 random bits); typed with or without the dash."""
    raw = base64.b32encode(secrets.token_bytes(7)).decode().lower()[:10]
    return raw[:5] + "-" + raw[5:]


def _norm_recovery(code: str) -> str:
    return code.strip().lower().replace("-", "").replace(" ", "")


def hash_recovery_code(code: str) -> str:
    return crypto.hash_generated_secret(_norm_recovery(code))


def _context(account_id: str) -> str:
    return f"totp:{account_id}"


# ---------------------------------------------------------------- checks used by login and the endpoints


def is_enabled(s: Session, account_id: str) -> bool:
    row = s.get(TwoFactor, account_id)
    return row is not None and row.enabled_at is not None


def verify_code(s: Session, app: AlarmCloud, account_id: str, code: str, recovery: bool = True) -> str | None:
    """Check a TOTP code (or, with ``recovery``, a recovery code) and use it up; 'totp' | 'recovery' | None."""
    row = s.get(TwoFactor, account_id)
    if row is None:
        return None
    secret = app.secret_box.decrypt(row.secret_enc, _context(account_id))
    assert secret is not None
    step = matching_step(secret, code, after=row.last_step)
    if step is not None:
        # conditional update: of two requests with the same code, only one gets through
        res = s.exec(update(TwoFactor).where(col(TwoFactor.account_id) == account_id,  # type: ignore[call-overload]
                                            col(TwoFactor.last_step) < step).values(last_step=step))
        s.commit()
        return "totp" if res.rowcount == 1 else None
    if not recovery or row.enabled_at is None:
        return None
    wanted = hash_recovery_code(code)
    for rc in s.exec(select(RecoveryCode).where(RecoveryCode.account_id == account_id,
                                                col(RecoveryCode.used_at).is_(None))).all():
        if crypto.constant_eq(rc.code_hash, wanted):
            res = s.exec(update(RecoveryCode).where(col(RecoveryCode.id) == rc.id,  # type: ignore[call-overload]
                                                    col(RecoveryCode.used_at).is_(None)).values(used_at=utcnow()))
            s.commit()
            return "recovery" if res.rowcount == 1 else None
    return None


def remove(s: Session, account_id: str) -> bool:
    """Switch the second factor off (secret and recovery codes deleted); False if it was not set up."""
    row = s.get(TwoFactor, account_id)
    s.exec(delete(RecoveryCode).where(col(RecoveryCode.account_id) == account_id))  # type: ignore[call-overload]
    if row is not None:
        s.delete(row)
    s.commit()
    return row is not None


def check_limit(app: AlarmCloud, request: Request, email: str) -> None:
    """The login limiter, also for wrong second-step codes (429 with Retry-After)."""
    auth.check_login_limit(app, request, email, "too many failed attempts; try again later")


count_failure = auth.count_login_failure


async def require_code_if_enabled(request: Request, user: auth.User, data: dict[str, Any]) -> None:
    """Re-authentication for a sensitive change (password, e-mail, account deletion), after the password was checked:
    with two-step verification on, ``code`` (an app code or a recovery code) is needed as well.

    403 ``second_factor_required`` without it, 400 ``invalid_code`` for a wrong one (counted like a failed login).
    """
    app = auth.core(request)
    if not await app.db.run(lambda s: is_enabled(s, user.id)):
        return
    code = field(data, "code", str, required=False, max_len=40)
    if not code:
        raise ApiError(403, "second_factor_required",
                       "two-step verification is on: send code (from your authenticator app, or a recovery code)")
    email = user.account.email
    check_limit(app, request, email)
    if await app.db.run(lambda s: verify_code(s, app, user.id, code.replace(" ", ""))) is None:
        count_failure(app, request, email)
        raise ApiError(400, "invalid_code", "that code is wrong or was already used")


# ---------------------------------------------------------------- login


def _pw_tag(acc: Account) -> str:
    """Changes with the password: a pending login ends when the password is changed."""
    return hashlib.sha256(acc.password_hash.encode()).hexdigest()[:16]


def pending_response(app: AlarmCloud, acc: Account) -> JSONResponse:
    """401 second_factor_required with a sealed pending-login token (no server state; any API node accepts it)."""
    payload = json.dumps({"a": acc.id, "e": acc.email, "p": _pw_tag(acc), "x": int(time.time()) + PENDING_SECONDS})
    token = app.secret_box.encrypt(payload, _PENDING_CONTEXT)
    return JSONResponse({"error": {"code": "second_factor_required",
                                   "message": "enter the code from your authenticator app (or a recovery code)"},
                         "pending_token": token, "expires_in": PENDING_SECONDS}, status_code=401)


def _open_pending(app: AlarmCloud, token: str) -> dict[str, Any]:
    try:
        data = json.loads(app.secret_box.decrypt(token, _PENDING_CONTEXT) or "")
    except Exception:
        data = None
    if not isinstance(data, dict) or data.get("x", 0) < time.time():
        raise ApiError(401, "login_expired", "this login has expired or is invalid; log in again")
    return data


async def login_second_factor(request: Request) -> Response:
    """Finish a login that answered second_factor_required: ``{"pending_token", "code"}`` (a 6-digit code or a
    recovery code) → 200 and the session cookie, as a login without the second factor. Wrong codes count against
    the login rate limit (429 with Retry-After)."""
    app = auth.core(request)
    auth.check_same_origin(request)
    data = await json_body(request)
    only_fields(data, {"pending_token", "code"})
    pending = _open_pending(app, field(data, "pending_token", str, max_len=1000))
    code = field(data, "code", str, max_len=40)
    email = str(pending.get("e", ""))
    check_limit(app, request, email)

    def _check(s: Session) -> Account | None:
        acc = s.get(Account, pending.get("a"))
        if acc is None or _pw_tag(acc) != pending.get("p") or not is_enabled(s, acc.id):
            raise ApiError(401, "login_expired", "this login has expired or is invalid; log in again")
        return acc if verify_code(s, app, acc.id, code) else None

    acc = await app.db.run(_check)
    if acc is None:
        count_failure(app, request, email)
        raise ApiError(401, "invalid_code", "that code is wrong or was already used")
    app.login_limiter.reset(auth.login_limit_keys(request, email)[0])
    return await auth.session_response(app, acc, request)


# ---------------------------------------------------------------- managing the second factor


def summary(s: Session, account_id: str) -> dict[str, Any]:
    """``{"enabled", "pending", "recovery_codes_left"}`` of an account."""
    row = s.get(TwoFactor, account_id)
    on = row is not None and row.enabled_at is not None
    left = len(s.exec(select(RecoveryCode.id).where(RecoveryCode.account_id == account_id,
                                                    col(RecoveryCode.used_at).is_(None))).all()) if on else 0
    return {"enabled": on, "pending": row is not None and not on, "recovery_codes_left": left}


async def status(request: Request) -> Response:
    """Whether two-step verification is on for the caller, and how many unused recovery codes are left."""
    user = await auth.require_user(request)
    return JSONResponse(await auth.core(request).db.run(lambda s: summary(s, user.id)))


async def enrol(request: Request) -> Response:
    """Start enrolment: a new secret (shown now, stored encrypted) with its otpauth:// URI and QR code (SVG).
    Two-step verification is on only after ``POST /api/v1/me/2fa/confirm`` with a first code. 409 if it is on.

    Where the server requires it of this person (``two_factor_required``) and can send e-mail, a code also goes to
    the account's e-mail address (``email_code_sent``), which the confirmation needs too: someone who learnt the
    password before its owner set this up cannot set it up in their place."""
    user = await auth.require_user(request)
    app = auth.core(request)
    secret = new_secret()
    code = f"{secrets.randbelow(10**8):08d}"

    def _store(s: Session) -> bool:
        row = s.get(TwoFactor, user.id)
        if row is not None and row.enabled_at is not None:
            raise ApiError(409, "already_enabled", "two-step verification is already on; switch it off first")
        if row is None:
            row = TwoFactor(account_id=user.id, secret_enc="")
        row.secret_enc = app.secret_box.encrypt(secret, _context(user.id)) or ""
        row.last_step = 0
        row.created_at = utcnow()
        mail = bool(app.settings.smtp.host) and auth.two_factor_required(app.settings, user.account)
        row.email_code_hash = crypto.token_hash(code) if mail else None
        s.add(row)
        if mail:
            s.add(Outbox(account_id=user.id, kind="email", target=user.account.email, payload={
                "subject": "Your code to set up two-step verification",
                "text": f"Someone is setting up two-step verification for your alarmcloud account. If it is you, "
                        f"enter this code with the first code of your authenticator app:\n\n"
                        f"{code[:4]} {code[4:]}\n\nIf it is not you, someone knows your password: change it "
                        f"({app.settings.public_url.rstrip('/')}/account) and tell the operator.\n"}))
        s.commit()
        return mail

    mailed = await app.db.run(_store)
    uri = otpauth_uri(secret, user.account.email)
    return JSONResponse({"secret": secret, "otpauth_uri": uri, "qr_svg": qr_svg(uri), "email_code_sent": mailed},
                        status_code=201)


async def confirm(request: Request) -> Response:
    """Switch two-step verification on with a first code and the account password ``{"code", "password"}``;
    answers the 10 one-time recovery codes (shown this once, stored hashed).

    The password is asked so that someone holding only a stolen session cannot lock the owner out. Every other
    session of the account ends (opened with the password alone); the caller's stays.
    """
    user = await auth.require_user(request)
    app = auth.core(request)
    data = await json_body(request)
    only_fields(data, {"code", "password", "email_code"})
    code = field(data, "code", str, max_len=40)
    password = field(data, "password", str, max_len=1024)
    email_code = "".join(ch for ch in field(data, "email_code", str, required=False, default="", max_len=40)
                         if ch.isdigit())
    check_limit(app, request, user.account.email)
    if not await crypto.verify_password_async(user.account.password_hash, password):
        count_failure(app, request, user.account.email)
        raise ApiError(401, "invalid_credentials", "the password is wrong")
    cookie = request.cookies.get("ac_session")
    codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]

    def _confirm(s: Session) -> bool | None:
        row = s.get(TwoFactor, user.id)
        if row is None:
            raise ApiError(409, "not_enrolled", "start with POST /api/v1/me/2fa")
        if row.enabled_at is not None:
            raise ApiError(409, "already_enabled", "two-step verification is already on")
        if row.email_code_hash is not None and not crypto.constant_eq(crypto.token_hash(email_code),
                                                                      row.email_code_hash):
            return None  # the e-mailed code: missing or wrong
        if verify_code(s, app, user.id, code, recovery=False) is None:
            return False
        row = s.get(TwoFactor, user.id)
        assert row is not None
        row.email_code_hash = None
        row = s.get(TwoFactor, user.id)
        assert row is not None
        row.enabled_at = utcnow()
        s.add(row)
        s.exec(delete(RecoveryCode).where(col(RecoveryCode.account_id) == user.id))  # type: ignore[call-overload]
        for c in codes:
            s.add(RecoveryCode(account_id=user.id, code_hash=hash_recovery_code(c)))
        # sessions opened with the password alone end (someone who knew it is logged out); this one stays
        keep = crypto.token_hash(cookie) if cookie and user.via == "session" else None
        for other in s.exec(select(SessionRow).where(SessionRow.account_id == user.id)).all():
            if other.id_hash != keep:
                s.delete(other)
        s.commit()
        return True

    confirmed = await app.db.run(_confirm)
    if confirmed is None:
        count_failure(app, request, user.account.email)
        raise ApiError(400, "invalid_email_code", "the code from the e-mail is missing or wrong (field 'email_code')")
    if not confirmed:
        count_failure(app, request, user.account.email)
        raise ApiError(400, "invalid_code", "that code is wrong; check the clock of your phone and try again")
    return JSONResponse({"enabled": True, "recovery_codes": codes})


async def disable(request: Request) -> Response:
    """Switch two-step verification off: ``{"password", "code"}`` (a current code or a recovery code)."""
    user = await auth.require_user(request)
    app = auth.core(request)
    data = await json_body(request)
    only_fields(data, {"password", "code"})
    password = field(data, "password", str, max_len=1024)
    code = field(data, "code", str, max_len=40)
    email = user.account.email
    check_limit(app, request, email)
    if not await crypto.verify_password_async(user.account.password_hash, password):
        count_failure(app, request, email)
        raise ApiError(401, "invalid_credentials", "the password is wrong")

    def _off(s: Session) -> bool:
        if not is_enabled(s, user.id):
            raise ApiError(409, "not_enabled", "two-step verification is not on")
        if verify_code(s, app, user.id, code) is None:
            return False
        remove(s, user.id)
        return True

    if not await app.db.run(_off):
        count_failure(app, request, email)
        raise ApiError(400, "invalid_code", "that code is wrong or was already used")
    return Response(status_code=204)


def routes(_core: AlarmCloud) -> list[BaseRoute]:
    return [
        Route("/api/v1/auth/login/second-factor", login_second_factor, methods=["POST"]),
        Route("/api/v1/me/2fa", status, methods=["GET"]),
        Route("/api/v1/me/2fa", enrol, methods=["POST"]),
        Route("/api/v1/me/2fa/confirm", confirm, methods=["POST"]),
        Route("/api/v1/me/2fa/disable", disable, methods=["POST"]),
    ]
