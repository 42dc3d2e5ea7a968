"""The implementation of ``CoreServices`` that plugins call (tenant-scoped, never leaking secrets)."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from sqlmodel import Session, select

from alarmcloud.auth import (
    RIGHTS,
    User,
    camera_for,
    camera_right,
    processing_blocked,
    visible_camera_ids,
    visible_cameras,
)
from alarmcloud.contracts import LiveStream
from alarmcloud.errors import ApiError
from alarmcloud.models import Account, Camera, PluginState, utcnow
from alarmcloud.services import (
    CameraSummary,
    CoreServices,
    EndpointTestAccount,
    Principal,
    ServiceError,
    require_camera_scope,
)

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud


def _api(exc: ApiError) -> ServiceError:
    return ServiceError(exc.status, exc.code, exc.message)


def _caller(s: Session, account_id: str) -> User | None:
    """The person a service call acts for (an owner or a sub-user), as the API's rights checks see a caller."""
    acc = s.get(Account, account_id)
    return User(acc, "service") if acc is not None else None


class Services(CoreServices):
    def __init__(self, app: AlarmCloud) -> None:
        self.app = app

    # ------------------------------------------------------------ OAuth-backed identity (alarmcloud.oauth)

    async def principal_for_token(self, token: str, integration: str) -> Principal:
        from alarmcloud import oauth

        principal = await self.app.db.run(lambda s: oauth.principal_for_token(s, token, integration))
        if principal is None:
            if await self.app.db.run(lambda s: oauth.access_token_expired(s, token, integration)):
                raise ServiceError(401, "expired_token", "the access token has expired; refresh it")
            raise ServiceError(401, "invalid_token", "the access token is invalid or revoked")
        return principal

    async def account_for_pseudonym(self, integration: str, pseudonym: str) -> str | None:
        from alarmcloud import oauth

        return await self.app.db.run(lambda s: oauth.account_for_pseudonym(s, integration, pseudonym))

    async def pseudonyms(self, integration: str) -> dict[str, str]:
        from alarmcloud import oauth

        return await self.app.db.run(lambda s: oauth.linked_pseudonyms(s, integration))

    async def unlink(self, account_id: str, integration: str) -> None:
        from alarmcloud import oauth

        await self.app.db.run(lambda s: oauth.unlink(s, account_id, integration, self.app.settings))

    async def endpoint_test_account(self, integration: str, scopes: tuple[str, ...]) -> EndpointTestAccount:
        from alarmcloud import samples

        account_id, camera_id = await anyio.to_thread.run_sync(samples.ensure_sample_account, self.app, integration)
        token = await self.app.db.run(lambda s: samples.endpoint_test_token(s, integration, account_id, scopes))
        return EndpointTestAccount(account_id=account_id, camera_id=camera_id, access_token=token)

    # ------------------------------------------------------------ cameras and events

    # A link acts for the person who linked it: the owner, or a sub-user with its own rights on the owner's cameras
    # (the principal's ``account_id`` is the sub-user's own account). Rights are read on every call, so a right the
    # owner takes away, or a sub-user the owner removes, ends at once.

    def _camera(self, s: Session, account_id: str, camera_id: str, need: str) -> tuple[Camera, str]:
        """The camera and the caller's right on it; 404 unless it may see it, 403 below ``need``."""
        user = _caller(s, account_id)
        if user is None:
            raise ServiceError(404, "not_found", "camera not found")
        try:
            cam = camera_for(s, user, camera_id, need)
        except ApiError as exc:
            raise _api(exc) from None
        return cam, camera_right(s, user, camera_id) or need

    async def list_cameras(self, account_id: str) -> list[CameraSummary]:
        def _list(s: Session) -> list[tuple[Camera, str]]:
            user = _caller(s, account_id)
            if user is None:
                return []
            return [(c, camera_right(s, user, c.id) or "view")
                    for c in visible_cameras(s, user, Camera.created_at)]

        out = []
        for c, right in await self.app.db.run(_list):
            adapter = self.app.plugins.camera_adapter(c.brand)
            caps: tuple[str, ...] = ()
            if adapter is not None:
                caps = ("control", "stream") if RIGHTS[right] >= RIGHTS["control"] else ("stream",)
            out.append(CameraSummary(id=c.id, name=c.name, brand=c.brand, model=c.model,
                                     motion_detection=c.motion_detection, online=True, capabilities=caps))
        return out

    async def camera_action(self, account_id: str, camera_id: str, action: str, value: Any,
                            area: int | None = None, *, principal: Principal | None = None) -> None:
        from alarmcloud.cameras import run_action

        require_camera_scope(principal, account_id, "control")
        cam, _ = await self.app.db.run(lambda s: self._camera(s, account_id, camera_id, "control"))
        try:
            await run_action(self.app, cam, action, value, area)
        except ApiError as exc:
            raise _api(exc) from None

    async def live_stream(self, account_id: str, camera_id: str, with_credentials: bool = False, *,
                          principal: Principal | None = None) -> LiveStream:
        from alarmcloud.cameras import adapter_for, camera_access

        require_camera_scope(principal, account_id, "stream")
        cam, right = await self.app.db.run(lambda s: self._camera(s, account_id, camera_id, "view"))
        try:
            stream = adapter_for(self.app, cam).live_stream(camera_access(self.app, cam))
        except ApiError as exc:
            raise _api(exc) from None
        # the camera login opens every setting of the camera: it goes only to links of people who may change the
        # camera (the owner, admin sub-users), never with a view or control right
        if not (with_credentials and cam.integrations_may_use_credentials and right == "admin"):
            stream = LiveStream(stream.rtsp_main, stream.rtsp_sub, stream.rtsp_third, stream.snapshot, {})
        return stream

    async def list_events(self, account_id: str, *, camera_id: str | None = None, label: str | None = None,
                          real_alarms_only: bool = False, limit: int = 50) -> list[dict[str, Any]]:
        from alarmcloud.eventsapi import query_events

        def _q(s: Session) -> list[dict[str, Any]]:
            user = _caller(s, account_id)
            if user is None or processing_blocked(s, user.account):
                return []  # GDPR Art. 18: a restricted account's events go to no integration, a sub-user's neither
            params = {k: v for k, v in {"camera_id": camera_id, "label": label,
                                        "verdict": "alarm" if real_alarms_only else None}.items() if v}
            return query_events(s, user, params, max(1, min(limit, 200)))[0]

        return await self.app.db.run(_q)

    async def silenced_plates(self, account_id: str, texts: Collection[str]) -> frozenset[str]:
        from alarmcloud.notify import plate_book

        def _q(s: Session) -> frozenset[str]:
            user = _caller(s, account_id)
            if user is None or not texts:
                return frozenset()
            book = plate_book(s, user.tenant_id)  # a read one character off a silenced plate is silenced too
            return frozenset(t for t in texts if (row := book.match(t)[0]) is not None and not row.notify)

        return await self.app.db.run(_q)

    async def storage(self, account_id: str) -> dict[str, Any]:
        def _status(s: Session) -> dict[str, Any]:
            user = _caller(s, account_id)
            if user is None:
                return self.app.storage.status(s, account_id)
            return self.app.storage.status(s, user.tenant_id, visible_camera_ids(s, user))

        return await self.app.db.run(_status)
    # ------------------------------------------------------------ plugin state

    def _state_row(self, s: Session, plugin: str, account_id: str | None, key: str) -> PluginState | None:
        return s.exec(select(PluginState).where(PluginState.plugin == plugin, PluginState.account_id == account_id,
                                                PluginState.key == key)).first()

    async def get_state(self, plugin: str, account_id: str | None, key: str) -> Any | None:
        row = await self.app.db.run(lambda s: self._state_row(s, plugin, account_id, key))
        return row.value if row else None

    async def set_state(self, plugin: str, account_id: str | None, key: str, value: Any) -> None:
        def _set(s: Session) -> None:
            row = self._state_row(s, plugin, account_id, key) or PluginState(plugin=plugin,
                                                                               account_id=account_id, key=key)
            row.value = value
            row.updated_at = utcnow()
            s.add(row)
            s.commit()

        await self.app.db.run(_set)

    async def delete_state(self, plugin: str, account_id: str | None, key: str | None = None) -> None:
        def _del(s: Session) -> None:
            q = select(PluginState).where(PluginState.plugin == plugin, PluginState.account_id == account_id)
            if key is not None:
                q = q.where(PluginState.key == key)
            for row in s.exec(q).all():
                s.delete(row)
            s.commit()

        await self.app.db.run(_del)

    # ------------------------------------------------------------ cameras calling in

    async def authenticate_camera(self, username: str, password: str) -> str | None:
        return await anyio.to_thread.run_sync(self.app.upload_logins.check, username, password)

    async def record_camera_trigger(self, camera_id: str, trigger: dict[str, Any]) -> None:
        def _rec(s: Session) -> None:
            cam = s.get(Camera, camera_id)
            if cam is None:
                raise ServiceError(404, "not_found", "camera not found")
            cam.last_trigger = trigger
            cam.last_trigger_at = utcnow()
            s.add(cam)
            s.commit()

        await self.app.db.run(_rec)
