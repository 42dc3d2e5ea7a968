"""HomeGraph client: a service-account JWT (RS256) for an access token, then Report State and Request Sync."""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from alarmcloud_google_home.config import GoogleHomeConfig

log = logging.getLogger(__name__)
SCOPE = "https://www.googleapis.com/auth/homegraph"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def service_account_jwt(key: dict[str, Any], audience: str, now: float | None = None) -> str:
    """An RS256-signed assertion for the service account's token endpoint."""
    now = int(now or time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": key.get("private_key_id", "")}
    claims = {"iss": key["client_email"], "scope": SCOPE, "aud": audience, "iat": now, "exp": now + 3600}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}".encode()
    private = serialization.load_pem_private_key(key["private_key"].encode(), password=None)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ValueError("the service-account key is not an RSA key")
    signature = private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode()}.{_b64(signature)}"


class HomeGraph:
    """Report State and Request Sync with a cached service-account access token."""

    def __init__(self, config: GoogleHomeConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.transport = transport
        self._token: tuple[str, float] | None = None

    def key(self) -> dict[str, Any] | None:
        """The service-account key, or None when the operator configured none."""
        cfg = self.config
        if cfg.service_account_json is not None:
            return json.loads(cfg.service_account_json.get_secret_value())
        if cfg.service_account_file:
            return json.loads(Path(cfg.service_account_file).read_text())
        return None

    async def _access_token(self, client: httpx.AsyncClient, key: dict[str, Any]) -> str:
        if self._token and self._token[1] > time.time() + 60:
            return self._token[0]
        url = self.config.token_url or key.get("token_uri") or "https://oauth2.googleapis.com/token"
        resp = await client.post(url, data={"grant_type": JWT_BEARER, "assertion": service_account_jwt(key, url)})
        resp.raise_for_status()
        data = resp.json()
        self._token = (data["access_token"], time.time() + int(data.get("expires_in", 3600)))
        return self._token[0]

    async def _post(self, path: str, body: dict[str, Any] | None, method: str = "POST",
                    params: dict[str, str] | None = None) -> bool:
        key = self.key()
        if key is None:
            return False
        url = self.config.homegraph_url.rstrip("/") + path
        for attempt in range(1, self.config.http_retries + 1):
            try:
                async with httpx.AsyncClient(timeout=self.config.http_timeout, transport=self.transport) as client:
                    token = await self._access_token(client, key)
                    resp = await client.request(method, url, json=body, params=params,
                                                headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError as exc:
                log.warning("google_home: %s failed: %s", path, type(exc).__name__)
            else:
                if resp.status_code == 200:
                    return True
                if resp.status_code == 401:
                    self._token = None
                elif resp.status_code < 500 and resp.status_code != 429:
                    log.warning("google_home: %s rejected with %s", path, resp.status_code)
                    return False
            if attempt < self.config.http_retries:
                await anyio.sleep(0.2 * 2 ** attempt)
        return False

    async def report_state(self, agent_user_id: str, states: dict[str, dict[str, Any]],
                           event_id: str | None = None) -> bool:
        """``devices:reportStateAndNotification`` for one user (``event_id``: what caused it, for Google's logs)."""
        body: dict[str, Any] = {"requestId": str(uuid.uuid4()), "agentUserId": agent_user_id,
                                "payload": {"devices": {"states": states}}}
        if event_id:
            body["eventId"] = event_id
        return await self._post("/v1/devices:reportStateAndNotification", body)

    async def delete_agent_user(self, agent_user_id: str) -> bool:
        """``agentUsers.delete``: Google unlinks the user from the Action and forgets its devices."""
        return await self._post(f"/v1/agentUsers/{quote(agent_user_id, safe='')}", None, method="DELETE",
                                params={"requestId": str(uuid.uuid4())})

    async def request_sync(self, agent_user_id: str) -> bool:
        """``devices:requestSync``: Google calls SYNC again."""
        return await self._post("/v1/devices:requestSync", {"agentUserId": agent_user_id, "async": True})
