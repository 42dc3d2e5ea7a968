"""Customer webhooks: create (the signing secret is shown once), change, delete, test, recent deliveries, redeliver."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio.to_thread
from sqlmodel import Session, col, delete, func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from alarmcloud import notify
from alarmcloud.auth import User, core, require_owner
from alarmcloud.errors import ApiError, field, int_id, json_body, only_fields
from alarmcloud.models import Outbox, Webhook, iso, lock_account

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

MAX_WEBHOOKS = 10
MAX_DELIVERIES = 100
FIELDS = {"url", "events", "only_real_alarms", "rotate_secret"}


def webhook_json(h: Webhook) -> dict[str, Any]:
    return {"id": h.id, "url": h.url, "events": notify.subscribed(h), "only_real_alarms": h.only_real_alarms,
            "created_at": iso(h.created_at)}


def delivery_json(row: Outbox) -> dict[str, Any]:
    payload = row.payload or {}
    return {"id": row.id, "event_type": payload.get("type"), "event_id": payload.get("event_id"),
            "state": row.state, "attempts": row.attempts, "last_error": row.last_error,
            "created_at": iso(row.created_at) if row.created_at else None,
            "last_attempt_at": iso(row.last_attempt_at) if row.last_attempt_at else None,
            "next_attempt_at": iso(row.available_at) if row.state == "queued" else None}


async def _owner(request: Request) -> User:
    return await require_owner(request, "webhooks")  # a webhook gets every camera's events


def _hook_for(s: Session, user: User, hook_id: str) -> Webhook:
    hook = s.get(Webhook, hook_id)
    if hook is None or hook.account_id != user.tenant_id:
        raise ApiError(404, "not_found", "webhook not found")
    return hook


async def _url(app: AlarmCloud, data: dict[str, Any]) -> str:
    url = field(data, "url", str, max_len=500).strip()
    try:
        await anyio.to_thread.run_sync(notify.check_webhook_url, app, url)  # resolving the host blocks
    except notify.TargetNotAllowed as exc:
        raise ApiError(400, "invalid_url", str(exc)) from None
    return url


def _events(data: dict[str, Any]) -> list[str] | None:
    events = field(data, "events", list, required=False)
    if events is None:
        return None
    if not events:
        raise ApiError(400, "invalid_field", "field 'events' must list at least one event type")
    for ev in events:
        if ev not in notify.WEBHOOK_EVENTS:
            raise ApiError(400, "invalid_field", f"unknown event type {ev!r}; use one of "
                                                 + ", ".join(notify.WEBHOOK_EVENTS))
    return sorted(set(events), key=notify.WEBHOOK_EVENTS.index)


async def list_webhooks(request: Request) -> Response:
    """The account's webhooks (never their secrets)."""
    user = await _owner(request)
    rows = await core(request).db.run(lambda s: s.exec(select(Webhook).where(
        Webhook.account_id == user.tenant_id).order_by(col(Webhook.created_at))).all())
    return JSONResponse({"items": [webhook_json(h) for h in rows]})


async def create_webhook(request: Request) -> Response:
    """Add a webhook ``{"url", "events"?, "only_real_alarms"?}``; the signing ``secret`` is returned only here.

    ``events`` defaults to ``["detections.ready"]``; ``only_real_alarms`` (default true) drops false alarms.
    The URL must be http(s) and, unless the operator allows more (``notify.webhook_networks``), public.
    """
    user = await _owner(request)
    app = core(request)
    data = await json_body(request)
    only_fields(data, FIELDS - {"rotate_secret"})
    url = await _url(app, data)
    events = _events(data)
    only_real = field(data, "only_real_alarms", bool, required=False, default=True)
    secret = notify.new_secret()

    def _create(s: Session) -> Webhook:
        lock_account(s, user.tenant_id)  # webhooks added at once never pass the limit together
        n = s.exec(select(func.count()).select_from(Webhook).where(Webhook.account_id == user.tenant_id)).one()
        if n >= MAX_WEBHOOKS:
            raise ApiError(409, "limit_reached", f"an account can have at most {MAX_WEBHOOKS} webhooks")
        hook = Webhook(account_id=user.tenant_id, url=url, secret="", only_real_alarms=only_real, events=events)
        hook.secret = notify.seal_secret(app, hook.id, secret)
        s.add(hook)
        s.commit()
        return hook

    hook = await app.db.run(_create)
    return JSONResponse({**webhook_json(hook), "secret": secret}, status_code=201)


async def get_webhook(request: Request) -> Response:
    """One webhook."""
    user = await _owner(request)
    hid = request.path_params["webhook_id"]
    return JSONResponse(webhook_json(await core(request).db.run(lambda s: _hook_for(s, user, hid))))


async def update_webhook(request: Request) -> Response:
    """Change ``url``, ``events`` or ``only_real_alarms``; ``"rotate_secret": true`` returns a new secret."""
    user = await _owner(request)
    app = core(request)
    hid = request.path_params["webhook_id"]
    await app.db.run(lambda s: _hook_for(s, user, hid))  # 404 before validating a stranger's body
    data = await json_body(request)
    only_fields(data, FIELDS)
    url = await _url(app, data) if data.get("url") is not None else None
    events = _events(data)
    only_real = field(data, "only_real_alarms", bool, required=False)
    rotate = field(data, "rotate_secret", bool, required=False, default=False)
    secret = notify.new_secret() if rotate else None

    def _update(s: Session) -> Webhook:
        hook = _hook_for(s, user, hid)
        if url is not None:
            hook.url = url
        if events is not None:
            hook.events = events
        if only_real is not None:
            hook.only_real_alarms = only_real
        if secret is not None:
            hook.secret = notify.seal_secret(app, hook.id, secret)
        s.add(hook)
        s.commit()
        return hook

    hook = await app.db.run(_update)
    return JSONResponse({**webhook_json(hook), **({"secret": secret} if secret else {})})


async def delete_webhook(request: Request) -> Response:
    """Delete a webhook and its deliveries (queued ones are not sent)."""
    user = await _owner(request)
    hid = request.path_params["webhook_id"]

    def _delete(s: Session) -> None:
        hook = _hook_for(s, user, hid)
        s.exec(delete(Outbox).where(Outbox.kind == "webhook", Outbox.target == hook.id))  # type: ignore[call-overload]
        s.delete(hook)
        s.commit()

    await core(request).db.run(_delete)
    return Response(status_code=204)


async def send_test_delivery(request: Request) -> Response:
    """Send a signed ``webhook.test`` delivery now; answers with the delivery (it retries if it failed)."""
    user = await _owner(request)
    app = core(request)
    hid = request.path_params["webhook_id"]
    hook = await app.db.run(lambda s: _hook_for(s, user, hid))
    row = await anyio.to_thread.run_sync(notify.send_test, app, hook)
    if row is None:
        raise ApiError(404, "not_found", "webhook not found")
    return JSONResponse(delivery_json(row), status_code=201)


async def list_deliveries(request: Request) -> Response:
    """Recent deliveries of a webhook, newest first: state, attempts, last error, next attempt (``limit``)."""
    user = await _owner(request)
    hid = request.path_params["webhook_id"]
    limit = int_id(request.query_params.get("limit", "20"))
    if limit is None or not 1 <= limit <= MAX_DELIVERIES:
        raise ApiError(400, "invalid_limit", f"limit must be an integer from 1 to {MAX_DELIVERIES}")

    def _list(s: Session) -> list[Outbox]:
        hook = _hook_for(s, user, hid)
        return list(s.exec(select(Outbox).where(Outbox.kind == "webhook", Outbox.target == hook.id)
                           .order_by(col(Outbox.id).desc()).limit(limit)).all())

    rows = await core(request).db.run(_list)
    return JSONResponse({"items": [delivery_json(r) for r in rows]})


async def redeliver(request: Request) -> Response:
    """Queue a finished delivery again (e.g. after the receiver was down longer than the retries lasted).

    The copy is a new delivery with the same body and a fresh attempt count; the old one stays as it was.
    A delivery that is still queued answers 409.
    """
    user = await _owner(request)
    hid = request.path_params["webhook_id"]
    raw = request.path_params["delivery_id"]

    def _again(s: Session) -> Outbox:
        hook = _hook_for(s, user, hid)
        n = int_id(raw)
        row = s.get(Outbox, n) if n is not None else None
        if row is None or row.kind != "webhook" or row.target != hook.id:
            raise ApiError(404, "not_found", "delivery not found")
        if row.state == "queued":
            raise ApiError(409, "still_queued", "this delivery is still queued; it is retried on its own")
        copy = Outbox(account_id=row.account_id, kind="webhook", target=hook.id, payload=dict(row.payload or {}))
        s.add(copy)
        s.commit()
        s.refresh(copy)
        return copy

    row = await core(request).db.run(_again)
    return JSONResponse(delivery_json(row), status_code=202)


def routes(app: AlarmCloud) -> list[BaseRoute]:
    """Mounted by ``create_app`` (a core feature module)."""
    return [
        Route("/api/v1/webhooks", list_webhooks, methods=["GET"]),
        Route("/api/v1/webhooks", create_webhook, methods=["POST"]),
        Route("/api/v1/webhooks/{webhook_id}", get_webhook, methods=["GET"]),
        Route("/api/v1/webhooks/{webhook_id}", update_webhook, methods=["PATCH"]),
        Route("/api/v1/webhooks/{webhook_id}", delete_webhook, methods=["DELETE"]),
        Route("/api/v1/webhooks/{webhook_id}/test", send_test_delivery, methods=["POST"]),
        Route("/api/v1/webhooks/{webhook_id}/deliveries", list_deliveries, methods=["GET"]),
        Route("/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", redeliver, methods=["POST"]),
    ]
