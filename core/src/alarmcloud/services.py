"""The core services plugins may call (the only way a plugin reaches accounts, cameras and events).

Plugins receive the running ``AlarmCloud`` object in their hooks and use ``app.services``. Every method takes the
account id it acts for and enforces that account's rights, so a plugin cannot reach another tenant's data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from alarmcloud.contracts import LiveStream


class ServiceError(Exception):
    """A service call failed; ``status`` and ``code`` map to the API error shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Principal:
    """Who called: an account, through an OAuth client with these scopes; ``pseudonym`` is per-client."""

    account_id: str
    client_id: str | None
    scopes: frozenset[str]
    pseudonym: str
    token_id: str | None = None


#: what a client's link must include before the core uses the customer's stored camera login on its behalf
CAMERA_SCOPES = {"control": "cameras:control", "stream": "cameras:stream"}


def require_camera_scope(principal: Principal | None, account_id: str, use: str) -> None:
    """Check a caller's link before a camera is used for it (``use``: control or stream); no principal: no check.

    Raises ``ServiceError(404)`` when the principal stands for another account and ``ServiceError(403,
    "insufficient_scope")`` when its link lacks ``cameras:control`` / ``cameras:stream``.
    """
    if principal is None:
        return
    if principal.account_id != account_id:
        raise ServiceError(404, "not_found", "camera not found")
    scope = CAMERA_SCOPES[use]
    if scope not in principal.scopes:
        raise ServiceError(403, "insufficient_scope", f"the customer did not allow {scope} for this link")


@dataclass(frozen=True)
class CameraSummary:
    """A camera as an integration may see it (never its credentials)."""

    id: str
    name: str
    brand: str
    model: str
    motion_detection: bool | None = None
    online: bool = True
    capabilities: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def may_control(self, scopes: frozenset[str]) -> bool:
        """Whether a link with ``scopes`` may switch the camera: ``cameras:control`` granted and the ``control``
        capability (a sub-user with a view right on the camera lacks it; the core would refuse the action)."""
        return CAMERA_SCOPES["control"] in scopes and "control" in self.capabilities

    def may_stream(self, scopes: frozenset[str]) -> bool:
        """Whether a link with ``scopes`` may start a live view of the camera: ``cameras:stream`` granted and the
        ``stream`` capability (a camera whose brand has no adapter enabled lacks it; the core could not stream it)."""
        return CAMERA_SCOPES["stream"] in scopes and "stream" in self.capabilities


@dataclass(frozen=True)
class EndpointTestAccount:
    """A platform's endpoint-test user: its account, its camera and a fresh access token of the integration."""

    account_id: str
    camera_id: str
    access_token: str


class CoreServices(ABC):
    """What the core offers plugins. All ids are strings; all methods are tenant-scoped."""

    async def authenticate(self, request: Request, integration: str, scopes: tuple[str, ...] = ()) -> Principal:
        """Validate the request's OAuth bearer token for ``integration`` and required scopes.

        Raises ``ServiceError(401, "invalid_token", ...)`` (unknown, revoked or unlinked),
        ``ServiceError(401, "expired_token", ...)`` (expired, a refresh helps) or
        ``ServiceError(403, "insufficient_scope", ...)``.
        """
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            raise ServiceError(401, "invalid_token", "a bearer token is required")
        principal = await self.principal_for_token(auth[7:].strip(), integration)
        missing = [s for s in scopes if s not in principal.scopes]
        if missing:
            raise ServiceError(403, "insufficient_scope", f"the token lacks scope {missing[0]}")
        return principal

    @abstractmethod
    async def principal_for_token(self, token: str, integration: str) -> Principal:
        """Like ``authenticate`` for a token taken from a message body (Alexa directives carry it there)."""

    @abstractmethod
    async def account_for_pseudonym(self, integration: str, pseudonym: str) -> str | None:
        """The account id behind a pseudonymous user id of ``integration``, or None."""

    @abstractmethod
    async def pseudonyms(self, integration: str) -> dict[str, str]:
        """All pseudonym → account id pairs of ``integration`` that are linked now (for proactive reports)."""

    @abstractmethod
    async def list_cameras(self, account_id: str) -> list[CameraSummary]:
        """The cameras the account may see: an owner's all, a sub-user's those it has a right on (``capabilities``:
        ``control`` only from the control right up); see docs/oauth.md "Sub-users' links"."""

    @abstractmethod
    async def camera_action(
        self, account_id: str, camera_id: str, action: str, value: Any, area: int | None = None, *,
        principal: Principal | None = None,
    ) -> None:
        """Run a camera action (see ``contracts.CAMERA_ACTIONS``); 404 for a camera of another account.

        Integrations pass the caller's ``principal``: the core then refuses (403 ``insufficient_scope``) unless the
        customer granted that link ``cameras:control`` (``require_camera_scope``).
        """

    @abstractmethod
    async def live_stream(self, account_id: str, camera_id: str, with_credentials: bool = False, *,
                          principal: Principal | None = None) -> LiveStream:
        """Stream URLs; credentials only when the customer allowed it for the camera (and, with a ``principal``,
        only for a link with ``cameras:stream``: 403 without it)."""

    @abstractmethod
    async def list_events(
        self,
        account_id: str,
        *,
        camera_id: str | None = None,
        label: str | None = None,
        real_alarms_only: bool = False,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Newest events first, in the public API shape."""

    async def silenced_plates(self, account_id: str, texts: Collection[str]) -> frozenset[str]:
        """Which of ``texts`` (plates as read, in any spelling: ``"M-AB 1234"``) are known plates of the account
        whose reads the owner asked not to be announced (``notify`` off): plate triggers leave them out, as the
        ``plate.recognised`` webhook event does."""
        return frozenset()

    @abstractmethod
    async def storage(self, account_id: str) -> dict[str, Any]:
        """The account's storage status (quota, used bytes, per camera)."""

    @abstractmethod
    async def get_state(self, plugin: str, account_id: str | None, key: str) -> Any | None:
        """Read a JSON value a plugin stored (per account, or global with ``account_id=None``)."""

    @abstractmethod
    async def set_state(self, plugin: str, account_id: str | None, key: str, value: Any) -> None:
        """Store a JSON value for a plugin; account-scoped values are deleted and exported with the account."""

    @abstractmethod
    async def delete_state(self, plugin: str, account_id: str | None, key: str | None = None) -> None:
        """Delete one key, or every key of the plugin for that account with ``key=None``."""

    @abstractmethod
    async def authenticate_camera(self, username: str, password: str) -> str | None:
        """The camera id whose upload credentials these are, or None (constant-time check)."""

    @abstractmethod
    async def record_camera_trigger(self, camera_id: str, trigger: dict[str, Any]) -> None:
        """Remember what triggered a camera's alarm; the next clip it uploads carries it as metadata."""

    async def endpoint_test_account(self, integration: str, scopes: tuple[str, ...]) -> EndpointTestAccount:
        """The account a platform's endpoint tests use (IFTTT ``test/setup``), made once with a camera and three
        alarms stored as ingest and the pipeline store them (videos, thumbnails, rain and plate findings); each call
        links it to the integration with ``scopes`` and returns a fresh access token."""
        raise ServiceError(501, "not_supported", "this deployment has no endpoint-test accounts")

    @abstractmethod
    async def unlink(self, account_id: str, integration: str) -> None:
        """Revoke every OAuth grant and token of ``integration`` for the account (platform-side unlink)."""
