"""The alarm server: trigger parsing for every form, per-camera auth, JSON errors, recorded triggers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from alarmcloud_camera_instar import plugin
from alarmcloud_camera_instar.alarm_server import TriggerError, parse_trigger
from starlette.applications import Starlette
from starlette.routing import Mount

pytestmark = pytest.mark.anyio

URL = "http://cloud.test/plugins/instar/alarm"


class CoreDouble:
    """Stands in for the core's services: the two camera methods the alarm server calls."""

    def __init__(self) -> None:
        self.cameras = {("cam-user", "cam-pass"): "cam-1"}
        self.triggers: list[tuple[str, dict[str, Any]]] = []

    async def authenticate_camera(self, username: str, password: str) -> str | None:
        return self.cameras.get((username, password))

    async def record_camera_trigger(self, camera_id: str, trigger: dict[str, Any]) -> None:
        self.triggers.append((camera_id, trigger))


@pytest.fixture
def core() -> CoreDouble:
    return CoreDouble()


@pytest.fixture
async def client(core: CoreDouble):  # type: ignore[no-untyped-def]
    app = Starlette(routes=[Mount("/plugins/instar", routes=plugin.register_routes(app=None))])
    app.state.alarmcloud = SimpleNamespace(services=core)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cloud.test") as c:
        yield c


@pytest.mark.parametrize(
    ("query", "summary", "reason", "areas"),
    [
        ("active=2", "area 2", "area", [2]),
        ("&active=6", "audio", "audio", []),  # older firmware: leading "&"
        ("active=5", "PIR / alarm input", "input_or_pir", []),
        ("active=8", "area 2 + PIR", "pir_and_area", [2]),
        ("active=99", "manual trigger", "manual", []),
        ("active=2&object=1", "area 2 + person", "area", [2]),
        ("active=7&object=7", "area 1 + PIR + person + vehicle + animal", "pir_and_area", [1]),
        ("active=3&object=6", "area 3 + vehicle + animal", "area", [3]),
        ("active=1&object=0", "area 1", "area", [1]),
        ("trigger=12&object=2", "trigger 12 + vehicle", "unknown", []),
    ],
)
def test_parse_trigger_forms(query: str, summary: str, reason: str, areas: list[int]) -> None:
    from urllib.parse import parse_qsl

    trigger = parse_trigger(dict(parse_qsl(query)))
    assert trigger["summary"] == summary
    assert trigger["reason"] == reason
    assert trigger["areas"] == areas


@pytest.mark.parametrize("query", ["", "object=1", "active=abc", "active=42", "active=-1"])
def test_parse_trigger_rejects(query: str) -> None:
    from urllib.parse import parse_qsl

    with pytest.raises(TriggerError):
        parse_trigger(dict(parse_qsl(query)))


async def test_get_with_basic_auth_records_the_trigger(client: httpx.AsyncClient, core: CoreDouble) -> None:
    response = await client.get(URL + "?&active=2&object=1", auth=("cam-user", "cam-pass"))
    assert response.status_code == 200
    assert response.json() == {"recorded": True, "summary": "area 2 + person"}
    camera_id, trigger = core.triggers[-1]
    assert camera_id == "cam-1"
    assert trigger["active"] == 2 and trigger["objects"] == ["person"] and trigger["api"] == "v1"


async def test_post_form_body_wqhd(client: httpx.AsyncClient, core: CoreDouble) -> None:
    response = await client.post(URL, content="active=9&object=4", auth=("cam-user", "cam-pass"),
                                 headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert response.status_code == 200
    assert core.triggers[-1][1]["summary"] == "area 3 + PIR + animal"


async def test_post_json_body(client: httpx.AsyncClient, core: CoreDouble) -> None:
    response = await client.post(URL, json={"trigger": 3}, auth=("cam-user", "cam-pass"))
    assert response.status_code == 200
    assert core.triggers[-1][1]["trigger"] == 3


async def test_query_credentials_are_accepted_and_not_stored(client: httpx.AsyncClient, core: CoreDouble) -> None:
    response = await client.get(URL + "?active=1&user=cam-user&password=cam-pass&site=garage")
    assert response.status_code == 200
    trigger = core.triggers[-1][1]
    assert "cam-pass" not in repr(trigger)
    assert trigger["extra"] == {"site": "garage"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"auth": ("cam-user", "wrong")},
        {"headers": {"authorization": "Basic !!notbase64"}},
    ],
)
async def test_unauthenticated_calls_get_401(
    client: httpx.AsyncClient, core: CoreDouble, kwargs: dict[str, Any]
) -> None:
    response = await client.get(URL + "?active=1", **kwargs)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert "Basic" in response.headers["www-authenticate"]
    assert core.triggers == []


async def test_bad_trigger_gets_400(client: httpx.AsyncClient, core: CoreDouble) -> None:
    response = await client.get(URL + "?active=42", auth=("cam-user", "cam-pass"))
    assert response.status_code == 400
    assert response.json()["error"] == {"code": "invalid_trigger", "message": "active=42 is not an INSTAR trigger code"}
    assert core.triggers == []


async def test_other_methods_are_not_allowed(client: httpx.AsyncClient) -> None:
    response = await client.put(URL + "?active=1", auth=("cam-user", "cam-pass"))
    assert response.status_code == 405


async def test_an_oversized_or_too_deep_body_is_refused(client: httpx.AsyncClient, core: CoreDouble) -> None:
    """A body over 16 KiB is a 413, also when it comes chunked without a declared length; JSON nested thousands of
    levels deep is a 400; neither records a trigger."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"active=1&" * 300

    response = await client.post(URL, content=chunks(), auth=("cam-user", "cam-pass"))
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"
    deep = b'{"a":' * 2500 + b"1" + b"}" * 2500  # 15,001 bytes: under the size cap
    response = await client.post(URL, content=deep, auth=("cam-user", "cam-pass"),
                                 headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_body"
    assert core.triggers == []
