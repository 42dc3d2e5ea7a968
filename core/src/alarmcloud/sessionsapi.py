"""Signed-in devices: a person's sessions (the browser and system each was started from, when, last active) and
signing one, or every other one, out: a lost phone, a shared computer, a password that may have leaked."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from alarmcloud.auth import CSRF_COOKIE, SESSION_COOKIE, User, core, require_user, session_expired
from alarmcloud.errors import ApiError
from alarmcloud.models import SessionRow, aware, iso, utcnow

#: a session's id in the API: the start of its row key (the SHA-256 of the cookie; the cookie itself never leaves
#: the browser it was set in), 64 bits: unique among one person's sessions
ID_LEN = 16
_ID = re.compile(f"[0-9a-f]{{{ID_LEN}}}")


def _live(s: Session, request: Request, user: User) -> list[SessionRow]:
    """The person's sessions that have not run out, the current one first, then the last active first."""
    st, now = core(request).settings, utcnow()
    rows = [r for r in s.exec(select(SessionRow).where(SessionRow.account_id == user.id)).all()
            if not session_expired(r, st, now)]
    return sorted(rows, key=lambda r: (r.id_hash != user.session_id, -aware(r.last_seen_at).timestamp()))


def session_json(row: SessionRow, user: User) -> dict[str, Any]:
    return {"id": row.id_hash[:ID_LEN], "device": row.device, "created_at": iso(row.created_at),
            "last_seen_at": iso(row.last_seen_at), "current": row.id_hash == user.session_id}


def session_list(s: Session, request: Request, user: User) -> list[dict[str, Any]]:
    return [session_json(r, user) for r in _live(s, request, user)]


async def list_sessions(request: Request) -> Response:
    """The caller's signed-in sessions: the browser and system (coarse, e.g. "Firefox on Android"), when signed in,
    last active (to the minute), and which is this one (``current``); the current one first. API tokens are not
    sessions (see ``/api/v1/tokens``)."""
    user = await require_user(request)
    return JSONResponse({"items": await core(request).db.run(lambda s: session_list(s, request, user))})


async def end_session(request: Request) -> Response:
    """Sign one of the caller's sessions out at once (its next request answers 401); the current one too, which is
    logging out here."""
    user = await require_user(request)
    sid = request.path_params["session_id"]

    def _end(s: Session) -> bool:
        row = next((r for r in _live(s, request, user) if r.id_hash[:ID_LEN] == sid), None) if _ID.fullmatch(
            sid) else None
        if row is None:
            raise ApiError(404, "not_found", "session not found")
        s.delete(row)
        s.commit()
        return row.id_hash == user.session_id

    current = await core(request).db.run(_end)
    response = Response(status_code=204)
    if current:
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(CSRF_COOKIE, path="/")
    return response


async def end_other_sessions(request: Request) -> Response:
    """Sign out every session of the caller but the current one (with an API token: every session); answers how
    many ended."""
    user = await require_user(request)

    def _end(s: Session) -> int:
        q = select(SessionRow).where(SessionRow.account_id == user.id)
        if user.session_id:
            q = q.where(col(SessionRow.id_hash) != user.session_id)
        rows = s.exec(q).all()
        for r in rows:
            s.delete(r)
        s.commit()
        return len(rows)

    return JSONResponse({"ended": await core(request).db.run(_end)})


def routes(app: object) -> list[BaseRoute]:
    """Mounted by ``create_app`` (a core feature module)."""
    return [
        Route("/api/v1/me/sessions", list_sessions, methods=["GET"]),
        Route("/api/v1/me/sessions", end_other_sessions, methods=["DELETE"]),
        Route("/api/v1/me/sessions/{session_id}", end_session, methods=["DELETE"]),
    ]
