"""Fixtures of the browser tests: one seeded deployment per test module and a Debian chromium.

The seeding (an account, two cameras, five clips through the real pipeline) is done once per test process; each
module's ``site`` runs its own server on a copy of that data folder, so modules still cannot see each other's
changes.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import OPERATOR, OWNER, PASSWORD, REDIRECT, Site, browser, opened_page, require_chromium  # noqa: E402


@pytest.fixture(scope="session")
def seeded_data(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """The data folder of a deployment after ``screenshots.seed`` (uploads analysed), made once per test process;
    ``None`` with ``ALARMCLOUD_TEST_DATABASE_URL`` (the database is not in the folder: each module seeds its own)."""
    require_chromium()
    if os.environ.get("ALARMCLOUD_TEST_DATABASE_URL"):
        return None
    from alarmcloud.models import Job
    from alarmcloud.testing import LiveServer, test_settings
    from screenshots import seed
    from sqlmodel import select

    tmp = tmp_path_factory.mktemp("seeded-site")
    with LiveServer(test_settings(tmp / "data", camera_networks=["127.0.0.0/8"])) as srv:
        seed(srv.url, tmp)
        core: Any = srv.core
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # no job left half done in the copies (a clip is done before its job)
            with core.db.session() as s:
                if not s.exec(select(Job).where(Job.state.in_(("queued", "running")))).all():  # type: ignore[attr-defined]
                    break
            time.sleep(0.05)
    srv.core.db.dispose()  # type: ignore[attr-defined]  # the SQLite file whole, its write-ahead log folded in
    return tmp / "data"


@pytest.fixture(scope="module")
def site(seeded_data: Path | None) -> Iterator[Site]:
    from alarmcloud import oauth
    from alarmcloud.models import Account, Camera
    from alarmcloud.testing import LiveServer, test_settings
    from screenshots import demo_history, seed
    from sqlmodel import select

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if seeded_data is not None:
            shutil.copytree(seeded_data, tmp / "data")
        settings: Any = test_settings(tmp / "data", camera_networks=["127.0.0.0/8"])
        settings.notify.webhook_networks = ["127.0.0.0/8"]  # webhooks to a receiver on loopback
        with LiveServer(settings) as srv:
            import httpx

            if seeded_data is None:
                seed(srv.url, tmp)
            demo_history(srv.core)
            client = httpx.Client(base_url=srv.url, timeout=60)
            assert client.post("/api/v1/auth/login", json={"email": OWNER, "password": PASSWORD}).status_code == 200
            event_id = client.get("/api/v1/events").json()["items"][0]["id"]
            cam_id = next(c["id"] for c in client.get("/api/v1/cameras").json()["items"] if c["name"] == "Garden")
            client.close()
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
    # per module, not per process: the sync API keeps its event loop marked as running in this thread while the
    # browser is open, and the anyio tests of other modules of the process could not start theirs
    with browser() as b:
        yield b


@pytest.fixture
def desktop(chromium: Any, site: Site) -> Iterator[Any]:
    """A fresh page of a desktop browser window (1280 x 800) on the module's site."""
    with opened_page(chromium, 1280, 800) as pg:
        yield pg
