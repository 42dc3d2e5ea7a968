"""IFTTT Realtime API client: tell IFTTT which trigger identities have new items (with retries)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import anyio
import httpx

log = logging.getLogger(__name__)

DEFAULT_URL = "https://realtime.ifttt.com/v1/notifications"
BATCH = 1000  # IFTTT accepts up to 1000 entries per call


async def notify(url: str, service_key: str, entries: list[dict[str, str]], attempts: int = 3,
                 backoff: float = 0.5) -> bool:
    """POST ``{"data": entries}`` in batches; retry on network errors and 5xx/429. True when all were accepted."""
    ok = True
    async with httpx.AsyncClient(timeout=10) as client:
        for start in range(0, len(entries), BATCH):
            body: dict[str, Any] = {"data": entries[start:start + BATCH]}
            headers = {"IFTTT-Service-Key": service_key, "Accept": "application/json",
                       "Accept-Charset": "utf-8", "Content-Type": "application/json",
                       "X-Request-ID": uuid.uuid4().hex}
            for attempt in range(attempts):
                try:
                    r = await client.post(url, json=body, headers=headers)
                    if r.status_code < 300:
                        break
                    if r.status_code < 500 and r.status_code != 429:
                        log.warning("IFTTT realtime rejected a notification: HTTP %s", r.status_code)
                        ok = False
                        break
                except httpx.HTTPError as exc:
                    log.info("IFTTT realtime call failed (%s); attempt %d", type(exc).__name__, attempt + 1)
                if attempt + 1 == attempts:
                    ok = False
                    log.warning("IFTTT realtime notification gave up after %d attempts", attempts)
                else:
                    await anyio.sleep(backoff * 2 ** attempt)
    return ok
