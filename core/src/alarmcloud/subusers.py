"""Sub-users: people an account owner lets use some of its cameras, with a right per camera."""

from __future__ import annotations

import logging
import weakref
from typing import Any

import anyio
from sqlmodel import Session, select
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from alarmcloud import crypto
from alarmcloud.auth import RIGHTS, User, core, processing_blocked, require_user, validate_credentials
from alarmcloud.errors import ApiError, field, json_body, only_fields
from alarmcloud.events import CAMERA_CHANGED, CAMERA_DELETED, Event
from alarmcloud.models import Account, Camera, CameraRight

log = logging.getLogger(__name__)
#: per deployment (the AlarmCloud object): a lock per sub-user whose new rights are being announced, and how many
#: announcements hold or wait for it, so that one sub-user's changes reach its platforms one after another
_announcing: weakref.WeakKeyDictionary[Any, dict[str, tuple[anyio.Lock, int]]] = weakref.WeakKeyDictionary()


async def create_subuser(request: Request) -> Response:
    """An account owner adds a sub-user with per-camera rights (view / control / admin).

    No integration hears of the rights: a new account has no links yet (it links its own once it logs in, and
    the first SYNC or Discovery then lists what it may see).
    """
    user = await require_user(request)
    if user.account.owner_id is not None:
        raise ApiError(403, "forbidden", "sub-users cannot create users")
    data = await json_body(request)
    only_fields(data, {"email", "password", "rights"})
    email, password = validate_credentials(data)
    rights = field(data, "rights", dict, required=False, default={})
    for right in rights.values():
        if not isinstance(right, str) or right not in RIGHTS:  # a list or object is not a right
            raise ApiError(400, "invalid_field", "rights must be view, control or admin")
    pw_hash = await crypto.hash_password_async(password)

    def _create(s: Session) -> Account:
        for cam_id in rights:
            cam = s.get(Camera, cam_id)
            if cam is None or cam.account_id != user.id:
                raise ApiError(404, "not_found", "camera not found")
        if s.exec(select(Account).where(Account.email == email)).first() is not None:
            raise ApiError(409, "email_taken", "an account with this e-mail address exists")
        acc = Account(email=email, password_hash=pw_hash, owner_id=user.id)
        s.add(acc)
        s.flush()
        for cam_id, right in rights.items():
            s.add(CameraRight(account_id=acc.id, camera_id=cam_id, right=right))
        s.commit()
        return acc

    acc = await core(request).db.run(_create)
    return JSONResponse({"id": acc.id, "email": acc.email, "rights": rights}, status_code=201)


async def list_subusers(request: Request) -> Response:
    """The owner's sub-users and their rights (403 for sub-users, who manage no users)."""
    user = await require_user(request)
    if user.account.owner_id is not None:
        raise ApiError(403, "forbidden", "sub-users cannot manage users")

    def _list(s: Session) -> list[dict[str, Any]]:
        out = []
        for acc in s.exec(select(Account).where(Account.owner_id == user.id)).all():
            rights = {r.camera_id: r.right for r in
                      s.exec(select(CameraRight).where(CameraRight.account_id == acc.id)).all()}
            out.append({"id": acc.id, "email": acc.email, "rights": rights})
        return out

    return JSONResponse({"items": await core(request).db.run(_list)})


def _own_subuser(s: Session, user: User, subuser_id: str) -> Account:
    """The owner's sub-user; 404 for anyone else's account (never reveal existence)."""
    if user.account.owner_id is not None:
        raise ApiError(403, "forbidden", "sub-users cannot manage users")
    acc = s.get(Account, subuser_id)
    if acc is None or acc.owner_id != user.id:
        raise ApiError(404, "not_found", "user not found")
    return acc


async def set_subuser_rights(request: Request) -> Response:
    """Replace a sub-user's per-camera rights: ``{"rights": {"<camera id>": "view" | "control" | "admin"}}``.

    The answer comes once the rights are committed; the sub-user's integrations are told after it has been sent
    (``tell_integrations_of_rights`` as a background task), so a slow Amazon or Google never holds the owner up.
    """
    user = await require_user(request)
    sid = request.path_params["subuser_id"]
    data = await json_body(request)
    only_fields(data, {"rights"})
    rights = field(data, "rights", dict)
    for right in rights.values():
        if not isinstance(right, str) or right not in RIGHTS:  # a list or object is not a right
            raise ApiError(400, "invalid_field", "rights must be view, control or admin")

    def _set(s: Session) -> dict[str, str]:
        acc = _own_subuser(s, user, sid)
        for cam_id in rights:
            cam = s.get(Camera, cam_id)
            if cam is None or cam.account_id != user.id:
                raise ApiError(404, "not_found", "camera not found")
        before: dict[str, str] = {}
        for row in s.exec(select(CameraRight).where(CameraRight.account_id == acc.id)).all():
            before[row.camera_id] = row.right
            s.delete(row)
        s.flush()
        for cam_id, right in rights.items():
            s.add(CameraRight(account_id=acc.id, camera_id=cam_id, right=right))
        s.commit()
        return before

    app = core(request)
    before = await app.db.run(_set)
    return JSONResponse({"id": sid, "rights": rights},
                        background=BackgroundTask(_announce_rights, app, sid, before, dict(rights)))


async def _announce_rights(app: Any, subuser_id: str, before: dict[str, str], after: dict[str, str]) -> None:
    """``tell_integrations_of_rights`` after the answer: one change of a sub-user at a time, in the order their
    answers went out (a camera taken away and given back reaches Alexa as DeleteReport, then AddOrUpdateReport); a
    failure is logged and ends nothing else."""
    turns = _announcing.setdefault(app, {})
    lock, n = turns.get(subuser_id, (anyio.Lock(), 0))
    turns[subuser_id] = (lock, n + 1)
    try:
        async with lock:
            await tell_integrations_of_rights(app, subuser_id, before, after)
    except Exception:
        log.exception("telling a sub-user's integrations of its new rights failed")
    finally:
        lock, n = turns[subuser_id]
        if n > 1:
            turns[subuser_id] = (lock, n - 1)
        else:
            del turns[subuser_id]


async def tell_integrations_of_rights(app: Any, subuser_id: str, before: dict[str, str],
                                      after: dict[str, str]) -> None:
    """The sub-user's integrations follow its new rights: a camera it lost is deleted from its platforms
    (``camera.deleted``: Alexa's DeleteReport, Google's Request Sync), a camera it gained or whose right changed is
    announced again (``camera.changed`` with ``change`` ``added`` or ``right``: Alexa's AddOrUpdateReport with what
    the new right allows, Google's Request Sync).

    Sent after the rights are committed (what the platforms then fetch no longer has the camera) and after the
    owner's answer (``set_subuser_rights`` runs it as a background task); a sub-user erased in between has no links
    left, and its ``account.deleted`` has removed its devices already. Addressed to the sub-user's account and to
    the integrations only. A lost camera is told even while the owner has blocked processing: it removes a device,
    it sends no data.
    """
    for cam_id in sorted(before.keys() - after.keys()):
        await app.tell_integrations(Event(CAMERA_DELETED, subuser_id, cam_id, {"change": "right_removed"}))
    changed = sorted(c for c in after if before.get(c) != after[c])
    if changed and not await app.db.run(lambda s: processing_blocked(s, s.get(Account, subuser_id))):
        for cam_id in changed:
            change = "added" if cam_id not in before else "right"
            await app.tell_integrations(Event(CAMERA_CHANGED, subuser_id, cam_id, {"change": change}))


async def delete_subuser(request: Request) -> Response:
    """Remove a sub-user with its sessions, tokens and rights (the owner's cameras and clips stay).

    The erasure tells the integrations ``account.deleted`` for the sub-user before its links and rights go, so they
    can still name its cameras (Alexa's DeleteReport) and unlink it (Google): no ``camera.deleted`` per camera.
    """
    from alarmcloud.privacy_erase import erase_account_async

    user = await require_user(request)
    sid = request.path_params["subuser_id"]
    await core(request).db.run(lambda s: _own_subuser(s, user, sid))
    await erase_account_async(core(request), sid)
    return Response(status_code=204)
