"""IFTTT offers camera actions only on cameras the linked person may control (a sub-user's view right: none)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from alarmcloud import CameraSummary
from alarmcloud.testing import FakeServices
from alarmcloud_ifttt.api import ACTIONS, routes
from starlette.applications import Starlette
from starlette.routing import Mount

pytestmark = pytest.mark.anyio
BASE = "/plugins/ifttt/ifttt/v1"
TOKEN = "good-token"
CONTROL = ("control", "stream")  # what the core lists for the owner or a control / admin right
VIEW_ONLY = ("stream",)  # a sub-user's view right: live view and alarms, no camera actions


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def svc() -> FakeServices:
    """acc-1 linked with every scope IFTTT uses: cam-1 it may control, cam-2 it may only view."""
    services = FakeServices("ifttt", {"acc-1": [
        CameraSummary("cam-1", "Front door", "instar", "IN-9408", capabilities=CONTROL),
        CameraSummary("cam-2", "Driveway", "instar", "IN-9020", capabilities=VIEW_ONLY)]})
    services.link(TOKEN, "acc-1", {"alarms:read", "cameras:control", "storage:read"})
    return services


@pytest.fixture
async def client(svc: FakeServices) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=[Mount("/plugins/ifttt", routes=routes())])
    app.state.alarmcloud = SimpleNamespace(services=svc)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


async def options(client: httpx.AsyncClient, path: str) -> list[Any]:
    r = await client.post(f"{BASE}/{path}/fields/camera/options", json={})
    assert r.status_code == 200, r.text
    return [o["value"] for o in r.json()["data"]]


async def test_action_camera_options_list_only_cameras_the_user_may_control(client: httpx.AsyncClient) -> None:
    for slug in ACTIONS:
        assert await options(client, f"actions/{slug}") == ["cam-1"], slug
    # alarms and their history are what a view right allows: triggers and queries keep every camera
    assert await options(client, "triggers/new_alarm") == ["cam-1", "cam-2"]
    assert await options(client, "queries/list_alarms") == ["cam-1", "cam-2"]


async def test_an_action_on_a_view_only_camera_is_skipped(client: httpx.AsyncClient, svc: FakeServices) -> None:
    fields = {"camera": "cam-2", "on": "off"}
    r = await client.post(f"{BASE}/actions/motion_detection", json={"actionFields": fields})
    assert r.status_code == 400 and r.json()["errors"][0]["status"] == "SKIP"
    assert svc.actions == []
    r = await client.post(f"{BASE}/actions/motion_detection", json={"actionFields": {**fields, "camera": "cam-1"}})
    assert r.status_code == 200, r.text
    assert svc.actions == [("acc-1", "cam-1", "motion_detection", False)]
