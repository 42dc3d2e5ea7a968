"""Fixtures of the browser tests: one seeded deployment per test module and a Debian chromium."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import OPERATOR, OWNER, PASSWORD, REDIRECT, Site, browser, require_chromium  # noqa: E402


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    require_chromium()
    from alarmcloud import oauth
    from alarmcloud.models import Account, Camera
    from alarmcloud.testing import LiveServer, test_settings
    from screenshots import demo_history, seed
    from sqlmodel import select

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        settings: Any = test_settings(tmp / "data", camera_networks=["127.0.0.0/8"])
        settings.notify.webhook_networks = ["127.0.0.0/8"]  # webhooks to a receiver on loopback
        with LiveServer(settings) as srv:
            client, _ = seed(srv.url, tmp)
            demo_history(srv.core)
            event_id = client.get("/api/v1/events").json()["items"][0]["id"]
            cam_id = next(c["id"] for c in client.get("/api/v1/cameras").json()["items"] if c["name"] == "Garden")
            import httpx

            httpx.post(srv.url + "/api/v1/auth/register", json={"email": OPERATOR, "password": PASSWORD})
            core: Any = srv.core
            with core.db.session() as s:
                op = s.exec(select(Account).where(Account.email == OPERATOR)).one()
                op.role = "operator"
                owner = s.exec(select(Account).where(Account.email == OWNER)).one()
                cam = s.get(Camera, cam_id)
                cam.fair_use_state = "low_priority"
                cam.fair_use_reason = "more than 300 alarm clips in the last 24 hours"
                s.add_all([op, cam])
                s.commit()
                row, _secret = oauth.add_client(s, "Home Automation", "ifttt", [REDIRECT],
                                                ["alarms:read", "cameras:control"])
                oauth.issue_tokens(s, owner.id, row.id, ["alarms:read", "cameras:control"])
                client_id = row.id
            yield Site(srv.url, srv.core, event_id, cam_id, client_id)


@pytest.fixture(scope="module")
def chromium(site: Site) -> Iterator[Any]:
    with browser() as b:
        yield b
