"""Push notifications through ntfy and Telegram, per person: where to (an ntfy topic URL; a Telegram chat of the
person's own bot), credentials (an ntfy access token, a bot token: never shown again), picture, test message."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from alarmcloud import notify
from alarmcloud.auth import core, require_user
from alarmcloud.errors import ApiError, field, json_body, only_fields
from alarmcloud.models import Account, Outbox, iso

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

FIELDS = {"enabled", "url", "token", "picture"}
TELEGRAM_FIELDS = {"enabled", "token", "chat_id", "picture"}
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


def _recent(s: Session, account_id: str, kind: str = "push") -> list[Outbox]:
    return list(s.exec(select(Outbox).where(Outbox.account_id == account_id, Outbox.kind == kind)
                       .order_by(col(Outbox.id).desc()).limit(RECENT)).all())


async def _settings(request: Request, kind: str, to_json: Callable[[Account, list[Outbox]], dict[str, Any]]
                    ) -> Response:
    """The caller's settings of a channel (``push``, ``telegram``) with its latest deliveries."""
    user = await require_user(request)

    def _get(s: Session) -> dict[str, Any]:
        acc = s.get(Account, user.id)
        assert acc is not None
        return to_json(acc, _recent(s, acc.id, kind))

    return JSONResponse(await core(request).db.run(_get))


def _switches(data: dict[str, Any], changes: dict[str, Any], enabled_attr: str, picture_attr: str) -> None:
    """``enabled`` (on only where no removed setting switched the channel off) and ``picture`` into ``changes``."""
    enabled = field(data, "enabled", bool, required=False)
    if enabled is not None:
        changes[enabled_attr] = enabled and changes.get(enabled_attr, True)
    picture = field(data, "picture", bool, required=False)
    if picture is not None:
        changes[picture_attr] = picture


async def _save(app: AlarmCloud, user_id: str, changes: dict[str, Any], kind: str,
                to_json: Callable[[Account, list[Outbox]], dict[str, Any]], check: Callable[[Account], None],
                before: Callable[[Account, dict[str, Any]], None] | None = None) -> Response:
    """Apply ``changes`` to the caller's account in one transaction: ``before(account, changes)`` may add to them
    from what is stored, ``check(account)`` judges the result (an ApiError stores nothing)."""

    def _update(s: Session) -> dict[str, Any]:
        acc = s.get(Account, user_id)
        assert acc is not None
        if before is not None:
            before(acc, changes)
        for k, v in changes.items():
            setattr(acc, k, v)
        check(acc)
        s.add(acc)
        s.commit()
        return to_json(acc, _recent(s, acc.id, kind))

    return JSONResponse(await app.db.run(_update))


async def get_push(request: Request) -> Response:
    """The caller's push settings and latest push deliveries (state, attempts, the server's error)."""
    return await _settings(request, "push", push_json)


async def _checked_url(app: AlarmCloud, raw: str) -> str:
    url = raw.strip()
    try:
        await anyio.to_thread.run_sync(notify.check_webhook_url, app, url, "push topic")  # resolving the host blocks
    except notify.TargetNotAllowed as exc:
        raise ApiError(400, "invalid_url", str(exc)) from None
    return url


async def update_push(request: Request) -> Response:
    """Change ``enabled``, ``url`` (an ntfy topic URL; empty or null removes it and switches push off),
    ``token`` (an access token, stored encrypted and never returned; empty or null removes it) or ``picture``."""
    user = await require_user(request)
    app = core(request)
    data = await json_body(request)
    only_fields(data, FIELDS)
    changes: dict[str, Any] = {}
    if "url" in data:
        raw = field(data, "url", str, required=False, max_len=500)
        changes["notify_push_url"] = await _checked_url(app, raw) if raw and raw.strip() else None
        if changes["notify_push_url"] is None:
            changes["notify_push"] = False
    if "token" in data:
        token = field(data, "token", str, required=False, max_len=300)
        changes["notify_push_token_enc"] = notify.seal_account_secret(app, "push", user.id, token.strip()) \
            if token else None
    _switches(data, changes, "notify_push", "notify_push_picture")

    def before(acc: Account, changes: dict[str, Any]) -> None:
        if ("notify_push_url" in changes and "notify_push_token_enc" not in changes
                and notify.url_origin(changes["notify_push_url"]) != notify.url_origin(acc.notify_push_url)):
            changes["notify_push_token_enc"] = None  # a token is never sent to a server it was not given for

    def check(acc: Account) -> None:
        if acc.notify_push and not acc.notify_push_url:
            raise ApiError(400, "missing_field", "set the topic URL (field 'url') to switch push on")

    return await _save(app, user.id, changes, "push", push_json, check, before)


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


# ---------------------------------------------------------------- Telegram


def telegram_json(a: Account, rows: list[Outbox]) -> dict[str, Any]:
    """The person's Telegram settings; the bot token only as ``has_token``; ``problem``: why the latest message
    did not arrive (Telegram's answer, e.g. the bot was blocked), until one arrives again."""
    latest = next((r for r in rows if r.state != "skipped"), None)
    problem = latest.last_error if latest is not None and latest.state in ("dead", "queued") else None
    return {"enabled": a.notify_telegram, "chat_id": a.notify_telegram_chat_id,
            "has_token": bool(a.notify_telegram_token_enc), "picture": a.notify_telegram_picture,
            "only_real": a.notify_only_real, "cooldown_seconds": a.notify_cooldown_seconds, "problem": problem,
            "deliveries": [delivery_json(r) for r in rows]}


def _telegram_token(data: dict[str, Any]) -> str | None:
    """The ``token`` field: a bot token as @BotFather gives it, or None (empty or null: remove it)."""
    token = field(data, "token", str, required=False, max_len=200)
    if not token or not token.strip():
        return None
    token = token.strip()
    if not notify.TELEGRAM_TOKEN.fullmatch(token):
        raise ApiError(400, "invalid_token", "the bot token must look like 123456789:AAH… (the token @BotFather "
                                             "gave you for your bot: its number, a colon and 30 or more letters, "
                                             "digits, '-' or '_')")
    return token


def _telegram_chat(data: dict[str, Any]) -> str | None:
    """The ``chat_id`` field: a chat number (JSON number or string) or a channel's @username; None removes it."""
    value = data.get("chat_id")
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ApiError(400, "invalid_chat_id", "field 'chat_id' must be a number or a string")
    chat = str(value).strip()
    if len(chat) > 40 or not notify.TELEGRAM_CHAT.fullmatch(chat):
        raise ApiError(400, "invalid_chat_id", "chat_id must be the chat's number (e.g. 123456789; a group's or "
                                               "channel's starts with '-') or a public channel's @name")
    return chat


async def get_telegram(request: Request) -> Response:
    """The caller's Telegram settings and latest messages (state, attempts, Telegram's error)."""
    return await _settings(request, "telegram", telegram_json)


async def update_telegram(request: Request) -> Response:
    """Change ``enabled``, ``token`` (the bot token, stored encrypted and never returned; empty or null removes it
    and switches Telegram off), ``chat_id`` (empty or null removes it and switches Telegram off) or ``picture``.
    Every field is checked before anything is stored."""
    user = await require_user(request)
    app = core(request)
    data = await json_body(request)
    only_fields(data, TELEGRAM_FIELDS)
    changes: dict[str, Any] = {}
    if "token" in data:
        token = _telegram_token(data)
        changes["notify_telegram_token_enc"] = notify.seal_account_secret(app, "telegram", user.id, token) \
            if token else None
    if "chat_id" in data:
        changes["notify_telegram_chat_id"] = _telegram_chat(data)
    if any(k in changes and changes[k] is None for k in ("notify_telegram_token_enc", "notify_telegram_chat_id")):
        changes["notify_telegram"] = False
    _switches(data, changes, "notify_telegram", "notify_telegram_picture")

    def check(acc: Account) -> None:
        if acc.notify_telegram and not (acc.notify_telegram_token_enc and acc.notify_telegram_chat_id):
            missing = "the bot token (field 'token')" if not acc.notify_telegram_token_enc else \
                "the chat (field 'chat_id')"
            raise ApiError(400, "missing_field", f"set {missing} to switch Telegram on")

    return await _save(app, user.id, changes, "telegram", telegram_json, check)


async def send_test_telegram(request: Request) -> Response:
    """Send a test message to the saved chat now; answers with the delivery (it retries if Telegram failed)."""
    user = await require_user(request)
    app = core(request)
    acc = await app.db.run(lambda s: s.get(Account, user.id))
    if acc is None or not acc.notify_telegram_token_enc or not acc.notify_telegram_chat_id:
        raise ApiError(409, "no_telegram_chat", "save the bot token and the chat first")
    row = await anyio.to_thread.run_sync(notify.send_test_telegram, app, user.id)
    if row is None:
        raise ApiError(404, "not_found", "the test message was removed")
    return JSONResponse(delivery_json(row), status_code=201)


async def find_telegram_chats(request: Request) -> Response:
    """The chats that wrote to the bot lately (Telegram's ``getUpdates``, asked once): send your bot any message,
    then pick your chat. Uses ``token`` from the body when given (not stored), else the saved one."""
    user = await require_user(request)
    app = core(request)
    data = await json_body(request, optional=True)
    only_fields(data, {"token"})
    token = _telegram_token(data)
    if token is None:
        acc = await app.db.run(lambda s: s.get(Account, user.id))
        token = notify.open_account_secret(app, acc, "telegram") if acc is not None else ""
    if not token:
        raise ApiError(409, "no_telegram_token", "enter the bot token first")
    try:
        chats = await anyio.to_thread.run_sync(notify.telegram_chats, app, token)
    except notify.TelegramError as exc:
        if exc.status in (401, 404):
            raise ApiError(400, "invalid_token", f"Telegram does not know this bot token ({exc})") from None
        raise ApiError(502, "telegram_error", f"Telegram did not list the chats: {exc}") from None
    return JSONResponse({"chats": chats})


def routes(app: AlarmCloud) -> list[BaseRoute]:
    """Mounted by ``create_app`` (a core feature module)."""
    return [
        Route("/api/v1/me/push", get_push, methods=["GET"]),
        Route("/api/v1/me/push", update_push, methods=["PATCH"]),
        Route("/api/v1/me/push/test", send_test_push, methods=["POST"]),
        Route("/api/v1/me/telegram", get_telegram, methods=["GET"]),
        Route("/api/v1/me/telegram", update_telegram, methods=["PATCH"]),
        Route("/api/v1/me/telegram/test", send_test_telegram, methods=["POST"]),
        Route("/api/v1/me/telegram/chats", find_telegram_chats, methods=["POST"]),
    ]
