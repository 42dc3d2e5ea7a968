"""Login with Amazon tokens (AcceptGrant) and proactive events to the Alexa event gateway."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx
from alarmcloud import CoreServices

from alarmcloud_alexa.config import AlexaConfig

log = logging.getLogger(__name__)
PLUGIN = "alexa"
GRANT_KEY = "lwa_grant"


class GrantError(Exception):
    """The AcceptGrant code could not be exchanged at LWA."""


class EventGateway:
    """Exchanges AcceptGrant codes, keeps LWA tokens per account and posts events with retries."""

    def __init__(self, config: AlexaConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.transport = transport

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self.config.http_timeout, transport=self.transport)

    async def _lwa(self, form: dict[str, str]) -> dict[str, Any]:
        cfg = self.config
        if not cfg.lwa_client_id or cfg.lwa_client_secret is None:
            raise GrantError("the skill's LWA client id and secret are not configured")
        form = {**form, "client_id": cfg.lwa_client_id, "client_secret": cfg.lwa_client_secret.get_secret_value()}
        try:
            async with self._client() as client:
                resp = await client.post(cfg.lwa_token_url, data=form)
        except httpx.HTTPError as exc:
            raise GrantError(f"LWA is unreachable: {type(exc).__name__}") from None
        if resp.status_code != 200:
            raise GrantError(f"LWA answered {resp.status_code}")
        data = resp.json()
        if not isinstance(data, dict) or "access_token" not in data:
            raise GrantError("LWA answered without an access token")
        return data

    async def accept_grant(self, services: CoreServices, account_id: str, code: str, scopes: frozenset[str]) -> None:
        """Exchange the grant code and store the event-gateway tokens for the account."""
        data = await self._lwa({"grant_type": "authorization_code", "code": code})
        await self._store(services, account_id, data, sorted(scopes))

    async def _store(self, services: CoreServices, account_id: str, data: dict[str, Any],
                     scopes: list[str]) -> dict[str, Any]:
        grant = {"access_token": data["access_token"], "refresh_token": data.get("refresh_token"),
                 "expires_at": time.time() + int(data.get("expires_in", 3600)), "scopes": scopes}
        await services.set_state(PLUGIN, account_id, GRANT_KEY, grant)
        return grant

    async def grant(self, services: CoreServices, account_id: str) -> dict[str, Any] | None:
        """The account's stored grant (None when it never accepted one)."""
        value = await services.get_state(PLUGIN, account_id, GRANT_KEY)
        return value if isinstance(value, dict) else None

    async def _token(self, services: CoreServices, account_id: str, force: bool = False) -> str | None:
        grant = await self.grant(services, account_id)
        if grant is None:
            return None
        if force or grant["expires_at"] - 60 < time.time():
            if not grant.get("refresh_token"):
                return None
            data = await self._lwa({"grant_type": "refresh_token", "refresh_token": grant["refresh_token"]})
            data.setdefault("refresh_token", grant["refresh_token"])
            grant = await self._store(services, account_id, data, grant.get("scopes", []))
        return str(grant["access_token"])

    async def send(self, services: CoreServices, account_id: str, build: Callable[[str], dict[str, Any]]) -> bool:
        """Post ``build(lwa_token)`` to the gateway; True on 202. Refreshes once on an invalid token."""
        try:
            token = await self._token(services, account_id)
        except GrantError as exc:
            log.warning("alexa: no event-gateway token for an account: %s", exc)
            return False
        if token is None:
            return False
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            message = build(token)
            name = message["event"]["header"]["name"]
            try:
                async with self._client() as client:
                    resp = await client.post(self.config.event_gateway_url, json=message,
                                             headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError as exc:
                if attempt < self.config.http_retries:
                    await anyio.sleep(0.2 * 2 ** attempt)
                    continue
                log.warning("alexa: %s not delivered: %s", name, type(exc).__name__)
                return False
            if resp.status_code in (200, 202):
                return True
            code = _error_code(resp)
            if resp.status_code == 401 and code == "INVALID_ACCESS_TOKEN_EXCEPTION" and not refreshed:
                refreshed = True
                try:
                    token = await self._token(services, account_id, force=True)
                except GrantError:
                    token = None
                if token is None:
                    return False
                continue
            if resp.status_code == 403 and code == "SKILL_DISABLED_EXCEPTION":
                log.info("alexa: the skill was disabled for an account; unlinking it")
                await services.delete_state(PLUGIN, account_id, None)
                await services.unlink(account_id, PLUGIN)  # unlinked on Amazon's side: revoke the grant on ours
                return False
            if (resp.status_code >= 500 or resp.status_code == 429) and attempt < self.config.http_retries:
                await anyio.sleep(0.2 * 2 ** attempt)
                continue
            log.warning("alexa: %s rejected with %s %s", name, resp.status_code, code)
            return False


def _error_code(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return ""
    payload = body.get("payload") if isinstance(body, dict) else None
    return str(payload.get("code", "")) if isinstance(payload, dict) else ""
