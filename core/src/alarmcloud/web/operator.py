"""Operator-only data for the operator page, and the fair-use override endpoint the core did not offer yet."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from alarmcloud import offsite
from alarmcloud.auth import core, require_operator, two_factor_required
from alarmcloud.cameras import camera_json
from alarmcloud.config import Settings
from alarmcloud.errors import ApiError, json_body, only_fields
from alarmcloud.models import Account, Camera, Case, Clip, Outbox, TwoFactor, iso, utcnow

OVERRIDES = (None, "normal", "low_priority")


def overview(s: Session, settings: Settings | None = None) -> dict[str, Any]:
    """Accounts with camera, clip and shared-link counts and their off-site copies' state; cameras that are not in
    the normal fair-use state first."""
    cams = {aid: n for aid, n in s.exec(select(Camera.account_id, func.count()).group_by(Camera.account_id)).all()}
    clips = {aid: n for aid, n in s.exec(select(Clip.account_id, func.count()).group_by(Clip.account_id)).all()}
    # cases shared by a link that needs no account (a link anyone holding it can download): how many, how often used
    links = {aid: (n, int(used or 0)) for aid, n, used in s.exec(
        select(Case.account_id, func.count(), func.sum(Case.share_fetches)).where(
            col(Case.share_expires_at) > utcnow()).group_by(Case.account_id)).all()}
    # off-site copies: where to (not the address), how many wait and were given up: an owner's bucket or NAS away
    copies: dict[str, dict[str, int]] = {}
    for aid, state, n in s.exec(select(Outbox.account_id, Outbox.state, func.count()).where(
            Outbox.kind == offsite.KIND, col(Outbox.state).in_(offsite.COPY_STATES))
            .group_by(Outbox.account_id, Outbox.state)).all():
        copies.setdefault(aid, {})[state] = n
    # two-step verification: who has it on (the operator may require it: ``two_factor_required``)
    on = set(s.exec(select(TwoFactor.account_id).where(col(TwoFactor.enabled_at).is_not(None))).all())
    users = [{"id": a.id, "email": a.email, "role": a.role, "sub_user": a.owner_id is not None,
              "two_factor": a.id in on,
              "two_factor_required": settings is not None and two_factor_required(settings, a),
              "restricted": a.restricted, "created_at": iso(a.created_at), "last_active_at": iso(a.last_active_at),
              "cameras": cams.get(a.id, 0), "clips": clips.get(a.id, 0), "links": links.get(a.id, (0, 0)),
              "offsite": {"kind": a.offsite_kind, "waiting": copies.get(a.id, {}).get("queued", 0),
                          "given_up": copies.get(a.id, {}).get("dead", 0),
                          "last_copy_at": iso(a.offsite_last_copy_at) if a.offsite_last_copy_at else None}
              if a.offsite_enabled else None}
             for a in s.exec(select(Account).order_by(col(Account.created_at).desc()).limit(500)).all()]
    emails = {u["id"]: u["email"] for u in users}
    rows = s.exec(select(Camera).order_by(col(Camera.created_at).desc()).limit(500)).all()
    cameras = [{**camera_json(c), "account": emails.get(c.account_id, c.account_id)} for c in rows]
    cameras.sort(key=lambda c: c["fair_use"]["state"] == "normal" and not c["fair_use"]["override"])
    return {"users": users, "cameras": cameras}


async def set_fair_use(request: Request) -> Response:
    """``PUT /api/v1/operator/cameras/{id}/fair-use {"override": null | "normal" | "low_priority"}``."""
    await require_operator(request)
    data = await json_body(request)
    only_fields(data, {"override"})
    override = data.get("override")
    if override not in OVERRIDES:
        raise ApiError(400, "invalid_field", "override must be null, 'normal' or 'low_priority'")
    cid = request.path_params["camera_id"]

    def _set(s: Session) -> dict[str, Any]:
        cam = s.get(Camera, cid)
        if cam is None:
            raise ApiError(404, "not_found", "camera not found")
        cam.fair_use_override = override
        s.add(cam)
        s.commit()
        return camera_json(cam)

    return JSONResponse(await core(request).db.run(_set))
