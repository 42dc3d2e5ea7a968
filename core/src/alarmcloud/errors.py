"""The one error shape: ``{"error": {"code", "message"}}`` with the right status."""

from __future__ import annotations

import logging
import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from alarmcloud.bodies import MAX_JSON_BYTES, read_body

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
               429: "rate_limited"}


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith(("/api/", "/plugins/", "/oauth/", "/-/")) or "text/html" not in request.headers.get(
        "accept", ""
    ):
        return error_response(exc.status_code, _HTTP_CODES.get(exc.status_code, "error"), exc.detail or "error",
                              dict(exc.headers) if exc.headers else None)
    from alarmcloud.web.pages import error_page  # the web UI's look, its menu and a way back

    return await error_page(request, exc.status_code, exc.detail)


async def server_error_handler(request: Request, exc: Exception) -> Response:
    race = database_race(exc)
    if race is not None:
        # the transaction was rolled back: nothing of the request was saved, and the client can tell what to do
        log.warning("%s %s: %s (%s)", request.method, request.url.path, race[1], exc.__class__.__name__)
        return error_response(*race)
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal server error")


#: what a request that lost a race with another transaction is told (its own transaction was rolled back)
CONFLICT = ("something this request refers to was changed or deleted at the same moment (for example the camera or "
            "the account); nothing was saved: reload and try again")
BUSY = "the database is busy with a conflicting change; nothing was saved: try again in a moment"


def database_race(exc: BaseException) -> tuple[int, str, str, dict[str, str] | None] | None:
    """409 ``conflict`` for a request whose rows another transaction deleted or changed first (a foreign key or
    unique key that no longer holds, a row gone under an update), 503 ``busy`` (with ``Retry-After``) for a
    deadlock, a serialization failure or a locked SQLite file; None for anything else (a bug: 500)."""
    from sqlalchemy.exc import DBAPIError, IntegrityError
    from sqlalchemy.orm.exc import StaleDataError

    if isinstance(exc, StaleDataError):
        return 409, "conflict", CONFLICT, None
    if not isinstance(exc, DBAPIError):
        return None
    state = str(getattr(exc.orig, "sqlstate", "") or "")  # PostgreSQL (psycopg)
    text = str(exc.orig).lower()
    if isinstance(exc, IntegrityError) and (state in ("23503", "23505") or text.startswith(
            ("foreign key constraint failed", "unique constraint failed"))):
        return 409, "conflict", CONFLICT, None
    if state in ("40P01", "40001") or text.startswith("database is locked"):
        return 503, "busy", BUSY, {"Retry-After": "1"}
    return None


async def json_body(request: Request, max_bytes: int = MAX_JSON_BYTES, *, optional: bool = False) -> dict[str, Any]:
    """Parse a JSON object body with a size cap and clear errors.

    The body must be labelled JSON (``Content-Type: application/json`` or ``application/*+json``, parameters such
    as ``charset`` allowed, any case), else 415 ``unsupported_media_type``: a cross-site form or ``fetch`` may send
    ``text/plain`` or a form without a CORS preflight, and a script that forgot the header learns what to send. An
    empty body is no body, whatever its label: ``{}`` where the body is ``optional``, else 400 (a body is
    required)."""
    body = await read_body(request, max_bytes)
    if body is None:
        raise ApiError(413, "payload_too_large", f"JSON body larger than {max_bytes} bytes")
    if not body:
        if optional:
            return {}
        raise ApiError(400, "invalid_json", "a JSON object body is required (Content-Type: application/json)")
    ctype = request.headers.get("content-type")
    if not is_json_type(ctype):
        sent = f"Content-Type {ctype!r}" if ctype else "no Content-Type"
        accept = {"POST": "Accept-Post", "PATCH": "Accept-Patch"}.get(request.method)
        raise ApiError(415, "unsupported_media_type",
                       f"send the body as JSON with the header Content-Type: application/json (not {sent})",
                       {accept: "application/json"} if accept else None)
    import json

    try:
        data = json.loads(body, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise ApiError(400, "invalid_json", "the body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    depth, nul = _walk(data)
    if depth > MAX_DEPTH:
        raise ApiError(400, "invalid_json", f"the body is nested deeper than {MAX_DEPTH} levels")
    if nul:  # PostgreSQL cannot store or compare one; no id, name or text needs one
        raise ApiError(400, "invalid_json", "the body holds a NUL character (\\u0000)")
    return data


def is_json_type(content_type: str | None) -> bool:
    """Whether a Content-Type header names JSON: ``application/json`` or a ``+json`` type of ``application``
    (``application/merge-patch+json``), with or without parameters, in any case."""
    if not content_type:
        return False
    return _JSON_TYPE.fullmatch(content_type.split(";", 1)[0].strip().lower()) is not None


#: ``application/json`` and ``application/<name>+json`` (the name an RFC 9110 token)
_JSON_TYPE = re.compile(r"application/(?:[!#$%&'*+.^_`|~0-9a-z-]+\+)?json")


#: how deeply a JSON body may nest: far more than any request needs, far less than what exhausts the stack
#: when a value is stored, copied or written out again
MAX_DEPTH = 32


def _walk(data: Any) -> tuple[int, bool]:
    """The nesting depth of parsed JSON, and whether a key or string holds a NUL character (iterative: a deep
    value cannot exhaust the stack here)."""
    deepest, nul, todo = 0, False, [(data, 1)]
    while todo and deepest <= MAX_DEPTH:
        value, level = todo.pop()
        deepest = max(deepest, level)
        if isinstance(value, dict):
            nul = nul or any("\x00" in k for k in value)
            todo.extend((v, level + 1) for v in value.values())
        elif isinstance(value, list):
            todo.extend((v, level + 1) for v in value)
        elif isinstance(value, str):
            nul = nul or "\x00" in value
    return deepest, nul


class RefuseNul:
    """ASGI middleware: a path or query string with a NUL character (``%00``) answers 400 before any handler
    (no id, filter or name has one, and PostgreSQL cannot compare one: a 500 there)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and ("\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b"")):
            response = error_response(400, "invalid_request", "a path or query must not hold NUL characters (%00)")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON (RFC 8259); a stored one would break every later answer that shows it."""
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is too large a number")
    return value


def int_id(raw: str) -> int | None:
    """A numeric id from a path: ASCII digits that fit a 64-bit column; ``None`` for anything else (a 404, never
    a crash on "²", " 1 " or a number the database cannot hold)."""
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None


def only_fields(data: dict[str, Any], allowed: set[str]) -> None:
    """A 400 ``unknown_field`` naming the first field of a JSON body that is not ``allowed`` (and what is)."""
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown field {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")


def field(data: dict[str, Any], name: str, kind: type | tuple[type, ...], required: bool = True,
          default: Any = None, max_len: int | None = None) -> Any:
    """Read one field of a JSON body with a typed, precise 400 on mistakes."""
    if name not in data or data[name] is None:
        if required:
            raise ApiError(400, "missing_field", f"field {name!r} is required")
        return default
    value = data[name]
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ApiError(400, "invalid_field", f"field {name!r} must be a number")
    if not isinstance(value, kind):
        tname = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ApiError(400, "invalid_field", f"field {name!r} must be of type {tname}")
    if max_len is not None and isinstance(value, str) and len(value) > max_len:
        raise ApiError(400, "invalid_field", f"field {name!r} is longer than {max_len} characters")
    if isinstance(value, str) and "\x00" in value:  # PostgreSQL cannot store it; no name or text needs one
        raise ApiError(400, "invalid_field", f"field {name!r} must not contain NUL characters")
    return value
