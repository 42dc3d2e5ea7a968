"""Privacy center: GDPR rights, consent ledger, operator clip guard, record of processing, retention loop."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from alarmcloud import crypto, erasures, twofactor
from alarmcloud.auth import EMAIL_RE, check_login, core, require_operator, require_user
from alarmcloud.blobhttp import blob_response
from alarmcloud.errors import ApiError, field, int_id, json_body, only_fields
from alarmcloud.models import Account, Clip, Consent, Outbox, SessionRow, iso, utcnow
from alarmcloud.privacy_erase import erase_account, erase_account_async, process_inactive, run_retention
from alarmcloud.privacy_export import get_export, start_export, zip_chunks
from alarmcloud.privacy_log import AccessLogMiddleware, configure_logging
from alarmcloud.privacy_record import policy_html, processing_record

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

__all__ = ["MIDDLEWARE", "erase_account", "process_inactive", "processing_record", "routes", "run_retention"]

log = logging.getLogger(__name__)
MIDDLEWARE: list[Any] = [AccessLogMiddleware]
#: seconds between runs of the retention task while the server runs
RETENTION_INTERVAL = 3600.0


# ---------------------------------------------------------------- export (Art. 15, 20)


async def export_now(request: Request) -> Response:
    """Stream a ZIP of everything stored about the caller's account (never built in memory)."""
    user = await require_user(request)
    app = core(request)
    name = f"alarmcloud-export-{utcnow():%Y%m%d}.zip"
    return StreamingResponse(zip_chunks(app, user.id),
                             media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def create_export(request: Request) -> Response:
    """Start a background export; poll ``GET /api/v1/me/exports/{id}`` for progress and the download."""
    user = await require_user(request)
    app = core(request)

    export_id = await anyio.to_thread.run_sync(start_export, app, user.id)
    return JSONResponse({"id": export_id, "state": "running",
                         "url": f"/api/v1/me/exports/{export_id}"}, status_code=202)


async def get_export_ep(request: Request) -> Response:
    """Progress of an export as JSON, or the ZIP itself when done (``?download=1`` or Accept: application/zip)."""
    user = await require_user(request)
    app = core(request)
    export_id = request.path_params["export_id"]
    info = await app.db.run(lambda s: get_export(app, user.id, export_id))
    if info is None:
        raise ApiError(404, "not_found", "export not found")
    wants_zip = request.query_params.get("download") == "1" or "application/zip" in request.headers.get("accept", "")
    if wants_zip:
        if info.get("state") != "done":
            raise ApiError(409, "not_ready", "the export is not finished yet")
        return await blob_response(request, app.blobs, info["blob_key"], "application/zip",
                                   f"alarmcloud-export-{export_id}.zip")
    body = {k: v for k, v in info.items() if k != "blob_key"}
    body["id"] = export_id
    if info.get("state") == "done":
        body["download_url"] = f"/api/v1/me/exports/{export_id}?download=1"
    return JSONResponse(body)


# ---------------------------------------------------------------- rectification, restriction (Art. 16, 18)


async def patch_me(request: Request) -> Response:
    """Change profile, notification settings, ``restricted``; password and e-mail need ``current_password`` (and
    ``code`` with two-step verification on)."""
    user = await require_user(request)
    app = core(request)
    data = await json_body(request)
    only_fields(data, {"email", "password", "current_password", "code", "notify_email", "notify_only_real",
                       "notify_email_picture", "restricted", "notify_cooldown_seconds"})
    new_email = field(data, "email", str, required=False, max_len=320)
    new_password = field(data, "password", str, required=False, max_len=1024)
    if new_email is not None:
        new_email = new_email.strip().lower()
        if not EMAIL_RE.match(new_email):
            raise ApiError(400, "invalid_email", "that is not a valid e-mail address")
        if new_email == user.account.email:
            new_email = None
    if new_password is not None and len(new_password) < 10:
        raise ApiError(400, "weak_password", "passwords need at least 10 characters")
    if new_email is not None or new_password is not None:
        current = field(data, "current_password", str, required=False, max_len=1024)
        if not current:
            raise ApiError(403, "reauthentication_required", "send current_password to change e-mail or password")
        await check_login(app, request, user.account.email, current)
        await twofactor.require_code_if_enabled(request, user, data)
    settings: dict[str, Any] = {}
    for name, kind in (("notify_email", bool), ("notify_only_real", bool), ("notify_email_picture", bool),
                       ("restricted", bool), ("notify_cooldown_seconds", int)):
        value = field(data, name, kind, required=False)
        if value is not None:
            settings[name] = value
    if "notify_cooldown_seconds" in settings and not 0 <= settings["notify_cooldown_seconds"] <= 86400:
        raise ApiError(400, "invalid_field", "notify_cooldown_seconds must be between 0 and 86400")
    if "restricted" in settings and user.account.owner_id is not None:
        raise ApiError(403, "forbidden", "only the account owner can restrict processing")
    token = crypto.new_token(24) if new_email else None
    pw_hash = await crypto.hash_password_async(new_password) if new_password else None
    cookie = request.cookies.get("ac_session")

    def _update(s: Session) -> Account:
        acc = s.get(Account, user.id)
        assert acc is not None
        for k, v in settings.items():
            setattr(acc, k, v)
        if pw_hash:
            acc.password_hash = pw_hash
            keep = crypto.token_hash(cookie) if cookie and user.via == "session" else None
            for row in s.exec(select(SessionRow).where(SessionRow.account_id == acc.id)).all():
                if row.id_hash != keep:
                    s.delete(row)
        if new_email and token:
            if s.exec(select(Account).where(Account.email == new_email)).first() is not None:
                raise ApiError(409, "email_taken", "an account with this e-mail address exists")
            acc.pending_email = new_email
            acc.pending_email_token_hash = crypto.token_hash(token)
            link = app.settings.public_url.rstrip("/") + "/api/v1/me/email/confirm"
            s.add(Outbox(account_id=acc.id, kind="email", target=new_email, payload={
                "subject": "Confirm your new e-mail address",
                "text": f"Confirm this address for your alarmcloud account with the code\n\n{token}\n\n"
                        f"(POST it as {{\"token\": ...}} to {link}, or enter it in the web UI).\n"}))
        s.add(acc)
        s.commit()
        return acc

    acc = await app.db.run(_update)
    return JSONResponse(_profile(acc))


def _profile(a: Account) -> dict[str, Any]:
    return {"id": a.id, "email": a.email, "role": a.role, "owner_id": a.owner_id, "restricted": a.restricted,
            "created_at": iso(a.created_at), "notify_email": a.notify_email, "notify_only_real": a.notify_only_real,
            "notify_email_picture": a.notify_email_picture, "notify_cooldown_seconds": a.notify_cooldown_seconds,
            "pending_email": a.pending_email}


async def confirm_email(request: Request) -> Response:
    """Confirm a pending e-mail change with the mailed token."""
    app = core(request)
    data = await json_body(request)
    only_fields(data, {"token"})
    token = field(data, "token", str, max_len=200).strip()
    h = crypto.token_hash(token)

    def _confirm(s: Session) -> Account:
        acc = s.exec(select(Account).where(Account.pending_email_token_hash == h)).first()
        if acc is None or not acc.pending_email:
            raise ApiError(400, "invalid_token", "the confirmation code is invalid or used")
        if s.exec(select(Account).where(Account.email == acc.pending_email)).first() is not None:
            raise ApiError(409, "email_taken", "an account with this e-mail address exists")
        acc.email, acc.pending_email, acc.pending_email_token_hash = acc.pending_email, None, None
        s.add(acc)
        s.commit()
        return acc

    return JSONResponse(_profile(await app.db.run(_confirm)))


# ---------------------------------------------------------------- erasure (Art. 17)


async def delete_me(request: Request) -> Response:
    """Delete the account with every row and blob; needs ``{"password"}`` (and ``"code"`` with two-step
    verification on)."""
    user = await require_user(request)
    app = core(request)
    data = await json_body(request)
    only_fields(data, {"password", "code"})
    password = field(data, "password", str, max_len=1024)
    await check_login(app, request, user.account.email, password)
    await twofactor.require_code_if_enabled(request, user, data)
    report = await erase_account_async(app, user.id)
    response = JSONResponse({"deleted": True, "accounts": report["accounts"]})
    response.delete_cookie("ac_session", path="/")
    response.delete_cookie("ac_csrf", path="/")
    return response


# ---------------------------------------------------------------- consent ledger


def _consent(c: Consent) -> dict[str, Any]:
    return {"id": c.id, "kind": c.kind, "subject": c.subject, "purpose": c.purpose, "created_at": iso(c.created_at),
            "withdrawn_at": iso(c.withdrawn_at) if c.withdrawn_at else None}


async def list_consents(request: Request) -> Response:
    """The caller's consent ledger (releases of recordings, integration grants), newest first: each person's own
    (a sub-user sees its own integration grants, never the owner's releases or grants)."""
    user = await require_user(request)
    rows = await core(request).db.run(lambda s: s.exec(
        select(Consent).where(Consent.account_id == user.id).order_by(col(Consent.id).desc())).all())
    return JSONResponse({"items": [_consent(c) for c in rows]})


async def withdraw_consent(request: Request) -> Response:
    """Withdraw a consent (the row stays, marked withdrawn); a clip release also leaves the training area."""
    user = await require_user(request)
    app = core(request)
    cid = int_id(request.path_params["consent_id"])
    if cid is None:
        raise ApiError(404, "not_found", "consent not found")

    def _withdraw(s: Session) -> Consent:
        c = s.get(Consent, cid)
        if c is None or c.account_id != user.id:  # the caller's own: a sub-user cannot withdraw the owner's
            raise ApiError(404, "not_found", "consent not found")
        if c.withdrawn_at is None:
            # in the erasure register before the commit: a restore of an older backup withdraws it again
            with erasures.recorded_lines(app.settings, [erasures.consent_line(c)]):
                c.withdrawn_at = utcnow()
                s.add(c)
                s.commit()
        return c

    c = await app.db.run(_withdraw)
    removed = 0
    if c.kind == "clip_release":
        still = await app.db.run(lambda s: _released(s, c.subject))
        if not still:
            removed = app.training.withdraw(c.subject)
    return JSONResponse({**_consent(c), "training_copies_removed": removed})


def _released(s: Session, clip_id: str) -> bool:
    clip = s.get(Clip, clip_id)
    if clip is None:
        return False
    return s.exec(select(Consent).where(Consent.kind == "clip_release", Consent.subject == clip_id,
                                        Consent.account_id == clip.account_id,
                                        Consent.withdrawn_at == None)).first() is not None  # noqa: E711


def operator_may_read(s: Session, clip_id: str) -> Clip:
    """The clip if its owner released it (a non-withdrawn release in the ledger); 403 otherwise."""
    clip = s.get(Clip, clip_id)
    if clip is None:
        raise ApiError(404, "not_found", "clip not found")
    if not _released(s, clip_id):
        raise ApiError(403, "not_released", "the customer has not released this recording")
    return clip


async def admin_clip_video(request: Request) -> Response:
    """Operators read a customer's clip only when the customer released it."""
    await require_operator(request)
    app = core(request)
    clip_id = request.path_params["clip_id"]
    clip = await app.db.run(lambda s: operator_may_read(s, clip_id))
    return await blob_response(request, app.blobs, clip.blob_key, "video/mp4")


# ---------------------------------------------------------------- record of processing (Art. 30)


async def processing(request: Request) -> Response:
    """The deployment's processing activities: the core's own and every enabled plugin's declaration."""
    return JSONResponse({"activities": processing_record(core(request))})


async def policy_page(request: Request) -> Response:
    """The privacy policy page, rendered from the record of processing."""
    return HTMLResponse(policy_html(core(request)),
                        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})


# ---------------------------------------------------------------- scheduled task


async def background(app: AlarmCloud) -> None:
    """Run ``run_retention`` every ``RETENTION_INTERVAL`` seconds while the server runs (first run after one)."""
    while True:
        await anyio.sleep(RETENTION_INTERVAL)
        try:
            report = await anyio.to_thread.run_sync(run_retention, app)
            log.info("retention: %s", {k: v for k, v in report.items() if k != "inactive_accounts"})
        except Exception:
            log.exception("retention task failed")


def on_startup(app: AlarmCloud) -> None:
    """Exports interrupted by a crash or restart start again: the owner's request is not lost."""
    from alarmcloud.privacy_export import resume_exports

    n = resume_exports(app)
    if n:
        log.info("resumed %d interrupted data export(s)", n)


def on_shutdown(app: AlarmCloud) -> None:
    """Write the access-log rows still buffered in memory and stop the thread that writes them."""
    from alarmcloud.privacy_log import AccessLogWriter

    writer = app.extra.get("privacy.access_log")
    if isinstance(writer, AccessLogWriter):
        writer.close()  # it stays in place: a row of a request ending later is kept unwritten (no new thread)


def routes(app: AlarmCloud) -> list[BaseRoute]:
    """The privacy center's routes; also turns uvicorn's access log off (retention runs in ``background``)."""
    configure_logging()
    R = Route  # noqa: N806
    return [
        R("/api/v1/me", patch_me, methods=["PATCH"]),
        R("/api/v1/me", delete_me, methods=["DELETE"]),
        R("/api/v1/me/email/confirm", confirm_email, methods=["POST"]),
        R("/api/v1/me/export", export_now, methods=["GET"]),
        R("/api/v1/me/exports", create_export, methods=["POST"]),
        R("/api/v1/me/exports/{export_id}", get_export_ep, methods=["GET"]),
        R("/api/v1/me/consents", list_consents, methods=["GET"]),
        R("/api/v1/me/consents/{consent_id}", withdraw_consent, methods=["DELETE"]),
        R("/api/v1/admin/clips/{clip_id}/video", admin_clip_video, methods=["GET"]),
        R("/api/v1/privacy/processing", processing, methods=["GET"]),
        R("/privacy", policy_page, methods=["GET"]),
    ]
