"""Who opened the account's clips: the owner sees every time a clip's video was played, clips or a case were
downloaded, or a case was fetched through its link, by whom (the owner, a sub-user, someone with the link), how
(the web UI or an app, an API token, the link) and from which network (the address truncated like the access log:
IPv4 /24, IPv6 /48). Rows are kept ``privacy.access_log_days`` days (at most 90, ``run_retention``), exported with
the account and erased with it; a sub-user's erasure takes their rows along.

A video is counted once per person and clip in ``REPEAT`` (a player asks for many ranges, a page is reloaded);
thumbnails are not counted (the timeline shows dozens at once)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from alarmcloud.auth import User, core, require_owner
from alarmcloud.errors import ApiError
from alarmcloud.models import Account, Case, ClipAccess, iso, utcnow
from alarmcloud.netutil import truncate_ip

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

#: the same person playing the same clip again within this time is the same viewing
REPEAT = timedelta(minutes=10)
#: rows per page of ``GET /api/v1/me/clip-access``
MAX_LIMIT = 200


def _prefix(request: Request | None) -> str:
    client = request.client if request is not None else None
    return truncate_ip(client.host if client else None)


async def record(app: AlarmCloud, request: Request | None, user: User | None, what: str, object_id: str,
                 clips: int = 1, tenant_id: str | None = None) -> None:
    """One opening of the account's clips: by ``user`` (None: through a case's link, ``tenant_id`` the owner);
    a ``video`` only when the same person did not play it within ``REPEAT``."""
    account_id = user.tenant_id if user is not None else tenant_id
    assert account_id
    now = utcnow()

    def _add(s: Session) -> None:
        if what == "video" and user is not None and s.exec(select(ClipAccess.id).where(
                ClipAccess.account_id == account_id, ClipAccess.user_id == user.id, ClipAccess.what == what,
                ClipAccess.object_id == object_id, col(ClipAccess.at) > now - REPEAT).limit(1)).first():
            return
        s.add(ClipAccess(account_id=account_id, user_id=user.id if user is not None else None,
                         via=user.via if user is not None else "link", what=what, object_id=object_id[:32],
                         clips=clips, ip_prefix=_prefix(request), at=now))
        s.commit()

    await app.db.run(_add)


def _rows(s: Session, owner: Account, limit: int, before: int | None) -> tuple[list[dict[str, Any]], int | None]:
    q = select(ClipAccess).where(ClipAccess.account_id == owner.id)
    if before is not None:
        q = q.where(col(ClipAccess.id) < before)
    rows = list(s.exec(q.order_by(col(ClipAccess.id).desc()).limit(limit + 1)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    people = {a.id: a.email for a in s.exec(select(Account).where(
        col(Account.id).in_({r.user_id for r in rows if r.user_id}))).all()}
    cases = {c.id: c.name for c in s.exec(select(Case).where(
        col(Case.id).in_({r.object_id for r in rows if r.what == "case"}), Case.account_id == owner.id)).all()}
    items = []
    for r in rows:
        who = ("owner" if r.user_id == owner.id else "sub_user" if r.user_id else "link")
        items.append({"id": r.id, "at": iso(r.at), "who": who, "email": people.get(r.user_id or "")
                      if who == "sub_user" else None, "via": r.via, "what": r.what, "object_id": r.object_id,
                      "case_name": cases.get(r.object_id) if r.what == "case" else None, "clips": r.clips,
                      "network": r.ip_prefix})
    return items, (rows[-1].id if more and rows else None)


def recent(s: Session, owner: Account, limit: int = 30) -> list[dict[str, Any]]:
    """The latest openings of the owner's clips, newest first (the privacy center)."""
    return _rows(s, owner, limit, None)[0]


async def list_access(request: Request) -> Response:
    """Who opened the account's clips, newest first: ``{"items": [{id, at, who (owner | sub_user | link), email
    (a sub-user's), via (session | token | link), what (video | clips | case), object_id, case_name, clips,
    network}], "next_before"}``; ``limit`` (1-200, default 50) and ``before`` (an id: the page after). The owner's
    only (403 for sub-users)."""
    user = await require_owner(request, "the record of who opened the clips")
    params = request.query_params
    try:
        limit = int(params.get("limit", "50"))
        before = int(params["before"]) if params.get("before") else None
    except ValueError:
        raise ApiError(400, "invalid_query", "limit and before are whole numbers") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "invalid_query", f"limit is from 1 to {MAX_LIMIT}")

    def _list(s: Session) -> dict[str, Any]:
        owner = s.get(Account, user.id)
        assert owner is not None
        items, nxt = _rows(s, owner, limit, before)
        return {"items": items, "next_before": nxt}

    return JSONResponse(await core(request).db.run(_list))


def routes(app: AlarmCloud) -> list[BaseRoute]:
    """Mounted by ``create_app`` (a core feature module)."""
    return [Route("/api/v1/me/clip-access", list_access, methods=["GET"])]
