"""Push notifications through ntfy, per person: topic URL, access token (never shown again), picture, test push."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio.to_thread
import httpx
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from alarmcloud import notify
from alarmcloud.auth import core, require_user
from alarmcloud.errors import ApiError, field, json_body
from alarmcloud.models import Account, Outbox, iso

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

FIELDS = {"enabled", "url", "token", "picture"}
RECENT = 10


def delivery_json(row: Outbox) -> dict[str, Any]:
    payload = row.payload or {}
    return {"id": row.id, "test": bool(payload.get("test")), "event_id": payload.get("event_id"),
            "title": payload.get("title"), "state": row.state, "attempts": row.attempts,
            "last_error": row.last_error, "created_at": iso(row.created_at) if row.created_at else None,
            "last_attempt_at": iso(row.last_attempt_at) if row.last_attempt_at else None,
            "next_attempt_at": iso(row.available_at) if row.state == "queued" else None}


def push_json(a: Account, rows: list[Outbox]) -> dict[str, Any]:
    """The person's push settings; the access token only as ``has_token``."""
    return {"enabled": a.notify_push, "url": a.notify_push_url, "has_token": bool(a.notify_push_token_enc),
            "picture": a.notify_push_picture, "only_real": a.notify_only_real,
            "cooldown_seconds": a.notify_cooldown_seconds, "deliveries": [delivery_json(r) for r in rows]}


def _recent(s: Session, account_id: str) -> list[Outbox]:
    return list(s.exec(select(Outbox).where(Outbox.account_id == account_id, Outbox.kind == "push")
                       .order_by(col(Outbox.id).desc()).limit(RECENT)).all())


async def get_push(request: Request) -> Response:
    """The caller's push settings and latest push deliveries (state, attempts, the server's error)."""
    user = await require_user(request)

    def _get(s: Session) -> dict[str, Any]:
        acc = s.get(Account, user.id)
        assert acc is not None
        return push_json(acc, _recent(s, acc.id))

    return JSONResponse(await core(request).db.run(_get))


async def _checked_url(app: AlarmCloud, raw: str) -> str:
    url = raw.strip()
    try:
        await anyio.to_thread.run_sync(notify.check_webhook_url, app, url, "push topic")  # resolving the host blocks
    except notify.TargetNotAllowed as exc:
        raise ApiError(400, "invalid_url", str(exc)) from None
    return url


def _origin(url: str | None) -> tuple[str, str, int | None] | None:
    if not url:
        return None
    u = httpx.URL(url)
    return u.scheme, u.host.lower(), u.port


async def update_push(request: Request) -> Response:
    """Change ``enabled``, ``url`` (an ntfy topic URL; empty or null removes it and switches push off),
    ``token`` (an access token, stored encrypted and never returned; empty or null removes it) or ``picture``."""
    user = await require_user(request)
    app = core(request)
    data = await json_body(request)
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown field {unknown[0]!r}; allowed: {', '.join(sorted(FIELDS))}")
    changes: dict[str, Any] = {}
    if "url" in data:
        raw = field(data, "url", str, required=False, max_len=500)
        changes["notify_push_url"] = await _checked_url(app, raw) if raw and raw.strip() else None
        if changes["notify_push_url"] is None:
            changes["notify_push"] = False
    if "token" in data:
        token = field(data, "token", str, required=False, max_len=300)
        changes["notify_push_token_enc"] = notify.seal_push_token(app, user.id, token.strip()) if token else None
    enabled = field(data, "enabled", bool, required=False)
    if enabled is not None:
        changes["notify_push"] = enabled and changes.get("notify_push", True)
    picture = field(data, "picture", bool, required=False)
    if picture is not None:
        changes["notify_push_picture"] = picture

    def _update(s: Session) -> dict[str, Any]:
        acc = s.get(Account, user.id)
        assert acc is not None
        if ("notify_push_url" in changes and "notify_push_token_enc" not in changes
                and _origin(changes["notify_push_url"]) != _origin(acc.notify_push_url)):
            changes["notify_push_token_enc"] = None  # a token is never sent to a server it was not given for
        for k, v in changes.items():
            setattr(acc, k, v)
        if acc.notify_push and not acc.notify_push_url:
            raise ApiError(400, "missing_field", "set the topic URL (field 'url') to switch push on")
        s.add(acc)
        s.commit()
        return push_json(acc, _recent(s, acc.id))

    return JSONResponse(await app.db.run(_update))


async def send_test_push(request: Request) -> Response:
    """Publish a test push to the saved topic now; answers with the delivery (it retries if the server failed)."""
    user = await require_user(request)
    app = core(request)
    acc = await app.db.run(lambda s: s.get(Account, user.id))
    if acc is None or not acc.notify_push_url:
        raise ApiError(409, "no_push_topic", "save a topic URL first")
    row = await anyio.to_thread.run_sync(notify.send_test_push, app, user.id)
    if row is None:
        raise ApiError(404, "not_found", "the test push was removed")
    return JSONResponse(delivery_json(row), status_code=201)


def routes(app: AlarmCloud) -> list[BaseRoute]:
    """Mounted by ``create_app`` (a core feature module)."""
    return [
        Route("/api/v1/me/push", get_push, methods=["GET"]),
        Route("/api/v1/me/push", update_push, methods=["PATCH"]),
        Route("/api/v1/me/push/test", send_test_push, methods=["POST"]),
    ]
