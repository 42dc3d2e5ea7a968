"""Google fulfillment and HomeGraph client against test doubles; every message validated with Google's schemas."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from alarmcloud import CameraSummary, Event, ServiceError
from alarmcloud.testing import FakeServices
from alarmcloud_google_home import plugin
from alarmcloud_google_home.config import GoogleHomeConfig
from alarmcloud_google_home.homegraph import HomeGraph
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.routing import Mount

jsonschema = pytest.importorskip("jsonschema")

SHARED = Path(os.environ.get("ALARMCLOUD_SHARED") or Path(__file__).resolve().parents[3].parent / "shared")
GOOGLE = SHARED / "schemas" / "google"
pytestmark = [pytest.mark.anyio,
              pytest.mark.skipif(not (GOOGLE / "intents").exists(), reason=f"Google schemas not found under {SHARED}")]
TOKEN = "good-token"
ALL = frozenset({"cameras:stream", "cameras:control"})
# the docs use deviceOffline, the 2021 schema enum lacks it (reference §0)
EXTRA_CODES = {"deviceOffline"}


def schema(rel: str) -> Any:
    s = json.loads((GOOGLE / rel).read_text())
    return jsonschema.Draft7Validator(s, format_checker=jsonschema.FormatChecker())


def check(rel: str, message: Any) -> Any:
    err = jsonschema.exceptions.best_match(schema(rel).iter_errors(message))
    assert err is None, f"{rel}: {err.message} at {list(err.absolute_path)}\n{json.dumps(message, indent=1)}"
    codes = json.loads((GOOGLE / "platform" / "errors.schema.json").read_text())["enum"]
    for code in _codes(message):
        assert code in codes or code in EXTRA_CODES, code
    return message


def _codes(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        return [v for k, v in obj.items() if k == "errorCode"] + [c for v in obj.values() for c in _codes(v)]
    if isinstance(obj, list):
        return [c for v in obj for c in _codes(v)]
    return []


CONTROL = ("control", "stream")  # what the core lists for the owner or a control / admin right
VIEW_ONLY = ("stream",)  # a sub-user's view right: live view, no camera actions


def services(scopes: frozenset[str] = ALL) -> FakeServices:
    """Account acc-1 linked with ``scopes``: an online camera with motion detection on, an offline one."""
    svc = FakeServices("google_home", {"acc-1": [
        CameraSummary("cam-1", "Front door", "instar", "IN-9408", motion_detection=True, capabilities=CONTROL),
        CameraSummary("cam-2", "Garden", "instar", "IN-8015", motion_detection=False, online=False,
                      capabilities=CONTROL)]})
    svc.link(TOKEN, "acc-1", scopes, "pseudo-1")
    return svc


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FakeGoogle:
    """Google's OAuth token endpoint and HomeGraph: checks the JWT signature, records calls."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.public = key.public_key()
        self.calls: list[tuple[str, dict[str, Any], str]] = []
        self.methods: list[str] = []
        self.assertions: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            form = dict(httpx.QueryParams(request.content.decode()))
            assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
            head, claims, sig = form["assertion"].split(".")
            pad = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))  # noqa: E731
            self.public.verify(pad(sig), f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
            self.assertions.append(json.loads(pad(claims)))
            return httpx.Response(200, json={"access_token": "ya29.test", "expires_in": 3600})
        self.calls.append((request.url.path, json.loads(request.content or b"{}"), request.headers["authorization"]))
        self.methods.append(request.method)
        return httpx.Response(200, json={})


@pytest.fixture
def env(rsa_key: rsa.RSAPrivateKey) -> SimpleNamespace:
    pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    key = {"type": "service_account", "client_email": "hg@proj.iam.gserviceaccount.com", "private_key": pem,
           "private_key_id": "k1", "token_uri": "https://google.test/token"}
    cfg = GoogleHomeConfig(service_account_json=json.dumps(key), homegraph_url="https://google.test",
                           stream_url_template="https://cams.example.com/{camera_id}/index.m3u8")
    google = FakeGoogle(rsa_key)
    integ = plugin.GoogleHomeIntegration(cfg, HomeGraph(cfg, httpx.MockTransport(google)))
    svc = services()
    app = Starlette(routes=[Mount("/plugins/google_home", routes=plugin.register_routes(None))])
    app.state.alarmcloud = SimpleNamespace(services=svc, plugins=SimpleNamespace(integration=lambda n: integ))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    return SimpleNamespace(svc=svc, integ=integ, google=google, client=client)


async def post(env: SimpleNamespace, intent: str, payload: dict[str, Any] | None = None,
               token: str = TOKEN) -> httpx.Response:
    body: dict[str, Any] = {"requestId": str(uuid.uuid4()), "inputs": [{"intent": intent}]}
    if payload is not None:
        body["inputs"][0]["payload"] = payload
    name = intent.split(".")[-1].lower()
    check(f"intents/{name}/{name}.request.schema.json", body)
    resp = await env.client.post("/plugins/google_home/fulfillment", json=body,
                                 headers={"Authorization": f"Bearer {token}"})
    if resp.status_code == 200 and name != "disconnect":
        assert resp.json()["requestId"] == body["requestId"]
    check(f"intents/{name}/{name}.response.schema.json", resp.json())
    return resp


def execute(dev: str, command: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"commands": [{"devices": [{"id": dev}], "execution": [{"command": command, "params": params}]}]}


STREAM = "action.devices.commands.GetCameraStream"
ONOFF = "action.devices.commands.OnOff"


async def test_sync(env: SimpleNamespace) -> None:
    payload = (await post(env, "action.devices.SYNC")).json()["payload"]
    assert payload["agentUserId"] == "pseudo-1"
    assert [d["id"] for d in payload["devices"]] == ["cam-1", "cam-2"]
    for d in payload["devices"]:
        assert d["type"] == "action.devices.types.CAMERA"
        assert set(d["traits"]) == {"action.devices.traits.CameraStream", "action.devices.traits.OnOff"}
        check("traits/camerastream/camerastream.attributes.schema.json", d["attributes"])
    env.svc.link(TOKEN, "acc-1", {"cameras:stream"}, "pseudo-1")
    payload = (await post(env, "action.devices.SYNC")).json()["payload"]
    assert all(d["traits"] == ["action.devices.traits.CameraStream"] for d in payload["devices"])


async def test_query(env: SimpleNamespace) -> None:
    devs = (await post(env, "action.devices.QUERY", {"devices": [{"id": "cam-1"}, {"id": "cam-2"}, {"id": "x"}]})
            ).json()["payload"]["devices"]
    assert devs["cam-1"] == {"online": True, "on": True, "status": "SUCCESS"}
    assert devs["cam-2"]["status"] == "OFFLINE" and devs["cam-2"]["errorCode"] == "deviceOffline"
    assert devs["x"]["errorCode"] == "deviceNotFound"
    check("traits/onoff/onoff.states.schema.json", {"on": devs["cam-1"]["on"]})


async def test_execute_onoff_and_stream(env: SimpleNamespace) -> None:
    params = {"on": False}
    check("traits/onoff/onoff.params.schema.json", params)
    cmds = (await post(env, "action.devices.EXECUTE", execute("cam-1", ONOFF, params))).json()["payload"]["commands"]
    assert cmds == [{"ids": ["cam-1"], "status": "SUCCESS", "states": {"online": True, "on": False}}]
    assert env.svc.actions == [("acc-1", "cam-1", "motion_detection", False)]
    params = {"StreamToChromecast": True, "SupportedStreamProtocols": ["progressive_mp4", "hls", "dash"]}
    check("traits/camerastream/getcamerastream.params.schema.json", params)
    cmd = (await post(env, "action.devices.EXECUTE", execute("cam-1", STREAM, params))).json()["payload"]["commands"][0]
    assert cmd["status"] == "SUCCESS"
    results = {k: v for k, v in cmd["states"].items() if k != "online"}
    check("traits/camerastream/getcamerastream.results.schema.json", results)
    assert results == {"cameraStreamAccessUrl": "https://cams.example.com/cam-1/index.m3u8",
                       "cameraStreamProtocol": "hls"}


@pytest.mark.parametrize(("dev", "command", "params", "status", "code"), [
    ("cam-1", STREAM, {"StreamToChromecast": False, "SupportedStreamProtocols": ["dash"]}, "ERROR", "streamUnplayable"),
    ("cam-2", STREAM, {"StreamToChromecast": False, "SupportedStreamProtocols": ["hls"]}, "OFFLINE", "deviceOffline"),
    ("cam-2", ONOFF, {"on": True}, "OFFLINE", "deviceOffline"),
    ("nope", ONOFF, {"on": True}, "ERROR", "deviceNotFound"),
    ("cam-1", "action.devices.commands.LockUnlock", {"lock": True}, "ERROR", "functionNotSupported"),
])
async def test_execute_errors(env: SimpleNamespace, dev: str, command: str, params: dict[str, Any], status: str,
                              code: str) -> None:
    cmd = (await post(env, "action.devices.EXECUTE", execute(dev, command, params))).json()["payload"]["commands"][0]
    assert (cmd["status"], cmd["errorCode"]) == (status, code)
    assert env.svc.actions == []


async def test_execute_camera_failures_and_scopes(env: SimpleNamespace) -> None:
    env.svc.fail_action = ServiceError(504, "camera_unreachable", "x")
    cmd = (await post(env, "action.devices.EXECUTE", execute("cam-1", ONOFF, {"on": True}))).json()
    assert cmd["payload"]["commands"][0]["errorCode"] == "deviceOffline"
    env.svc.fail_action = None
    env.svc.link(TOKEN, "acc-1", {"cameras:stream"}, "pseudo-1")
    cmd = (await post(env, "action.devices.EXECUTE", execute("cam-1", ONOFF, {"on": True}))).json()
    assert cmd["payload"]["commands"][0]["errorCode"] == "functionNotSupported" and env.svc.actions == []
    env.integ.config.stream_url_template = None
    params = {"StreamToChromecast": False, "SupportedStreamProtocols": ["hls"]}
    cmd = (await post(env, "action.devices.EXECUTE", execute("cam-1", STREAM, params))).json()
    assert cmd["payload"]["commands"][0]["errorCode"] == "streamUnavailable"


def add_view_only_camera(svc: FakeServices) -> None:
    """cam-3: a camera the linked person may only view (a sub-user's view right)."""
    svc.cameras["acc-1"].append(CameraSummary("cam-3", "Driveway", "instar", "IN-9020", motion_detection=True,
                                              capabilities=VIEW_ONLY))


async def test_onoff_only_on_cameras_the_user_may_control(env: SimpleNamespace) -> None:
    add_view_only_camera(env.svc)
    devices = {d["id"]: d for d in (await post(env, "action.devices.SYNC")).json()["payload"]["devices"]}
    assert devices["cam-3"]["traits"] == ["action.devices.traits.CameraStream"]
    assert set(devices["cam-1"]["traits"]) == {"action.devices.traits.CameraStream", "action.devices.traits.OnOff"}
    devs = (await post(env, "action.devices.QUERY", {"devices": [{"id": "cam-1"}, {"id": "cam-3"}]})
            ).json()["payload"]["devices"]
    assert devs == {"cam-1": {"online": True, "on": True, "status": "SUCCESS"},
                    "cam-3": {"online": True, "status": "SUCCESS"}}  # only states of declared traits
    cmd = (await post(env, "action.devices.EXECUTE", execute("cam-3", ONOFF, {"on": False}))).json()
    assert cmd["payload"]["commands"] == [{"ids": ["cam-3"], "status": "ERROR", "errorCode": "functionNotSupported"}]
    params = {"StreamToChromecast": False, "SupportedStreamProtocols": ["hls"]}
    cmd = (await post(env, "action.devices.EXECUTE", execute("cam-3", STREAM, params))).json()
    assert cmd["payload"]["commands"][0]["status"] == "SUCCESS"  # viewing is what the right allows
    # a right taken away after SYNC: the core refuses the action, Google hears the same code
    env.svc.fail_action = ServiceError(403, "forbidden", "you need the 'control' right on this camera")
    cmd = (await post(env, "action.devices.EXECUTE", execute("cam-1", ONOFF, {"on": False}))).json()
    assert cmd["payload"]["commands"][0]["errorCode"] == "functionNotSupported"
    assert env.svc.actions == []


async def test_report_state_leaves_on_out_for_a_view_only_camera(env: SimpleNamespace) -> None:
    add_view_only_camera(env.svc)
    await post(env, "action.devices.SYNC")
    for cam in ("cam-3", "cam-1"):
        await env.integ.on_event(env.svc, Event("camera.changed", "acc-1", cam,
                                                {"change": "action", "action": "motion_detection", "value": False}))
    states = [c[1]["payload"]["devices"]["states"] for c in env.google.calls]
    assert states == [{"cam-3": {"online": True}}, {"cam-1": {"online": True, "on": False}}]


@pytest.mark.parametrize("intent", ["action.devices.SYNC", "action.devices.QUERY", "action.devices.EXECUTE"])
async def test_auth_failure_is_401(env: SimpleNamespace, intent: str) -> None:
    payload = None if intent.endswith("SYNC") else {"devices": [{"id": "cam-1"}]} if intent.endswith("QUERY") \
        else execute("cam-1", ONOFF, {"on": True})
    resp = await post(env, intent, payload, token="wrong")
    assert resp.status_code == 401 and resp.json()["payload"]["errorCode"] == "authFailure"


async def test_report_state_request_sync_and_disconnect(env: SimpleNamespace) -> None:
    await env.integ.on_event(env.svc, Event("camera.changed", "acc-1", "cam-1", {"change": "added"}))
    assert env.google.calls == []  # not linked (no SYNC yet): nothing reported
    await post(env, "action.devices.SYNC")
    await env.integ.on_event(env.svc, Event("camera.changed", "acc-1", "cam-1",
                                            {"change": "action", "action": "motion_detection", "value": False}))
    await env.integ.on_event(env.svc, Event("detections.ready", "acc-1", "cam-2", {"verdict": "alarm",
                                                                                  "clip_id": "clip-7"}))
    await env.integ.on_event(env.svc, Event("detections.ready", "acc-1", "cam-1", {"verdict": "false_alarm:rain"}))
    await env.integ.on_event(env.svc, Event("camera.deleted", "acc-1", "cam-2", {}))
    paths = [c[0] for c in env.google.calls]
    assert paths == ["/v1/devices:reportStateAndNotification"] * 2 + ["/v1/devices:requestSync"]
    report, alarm, sync = (c[1] for c in env.google.calls)
    assert report["agentUserId"] == "pseudo-1" and report["payload"]["devices"]["states"] == {
        "cam-1": {"online": True, "on": False}}
    check("traits/onoff/onoff.states.schema.json", {"on": False})
    # an alarm clip proves the (formerly offline) camera is online; its motion detection state comes along
    assert alarm["payload"]["devices"]["states"] == {"cam-2": {"online": True, "on": False}}
    assert alarm["eventId"] == "alarm-clip-7" and "eventId" not in report
    assert sync == {"agentUserId": "pseudo-1", "async": True}
    assert {c[2] for c in env.google.calls} == {"Bearer ya29.test"}
    claims = env.google.assertions[0]
    assert claims["iss"] == "hg@proj.iam.gserviceaccount.com" and claims["aud"] == "https://google.test/token"
    assert claims["scope"] == "https://www.googleapis.com/auth/homegraph"

    resp = await post(env, "action.devices.DISCONNECT")
    assert resp.status_code == 200 and resp.json() == {}
    assert env.svc.unlinked == [("acc-1", "google_home")]
    await env.integ.on_event(env.svc, Event("camera.changed", "acc-1", "cam-1", {"change": "updated"}))
    assert len(env.google.calls) == 3  # forgotten: no more reports


async def test_report_state_carries_only_declared_traits(env: SimpleNamespace) -> None:
    env.svc.link(TOKEN, "acc-1", {"cameras:stream"}, "pseudo-1")
    await post(env, "action.devices.SYNC")  # devices without OnOff
    await env.integ.on_event(env.svc, Event("camera.changed", "acc-1", "cam-1",
                                            {"change": "action", "action": "motion_detection", "value": True}))
    await env.integ.on_event(env.svc, Event("detections.ready", "acc-1", "cam-1", {"verdict": "alarm"}))
    states = [c[1]["payload"]["devices"]["states"] for c in env.google.calls]
    assert states == [{"cam-1": {"online": True}}, {"cam-1": {"online": True}}]
    env.svc.link(TOKEN, "acc-1", {"cameras:control"}, "pseudo-1")
    await post(env, "action.devices.SYNC")  # no CAMERA device at all without cameras:stream
    await env.integ.on_event(env.svc, Event("detections.ready", "acc-1", "cam-1", {"verdict": "alarm"}))
    assert len(env.google.calls) == 2


def test_scopes_are_ones_the_core_can_grant() -> None:
    from alarmcloud.oauth import SCOPES as CORE_SCOPES

    assert set(plugin.SCOPES) <= set(CORE_SCOPES)
    assert [set(spec.scopes) for spec in plugin.register_integrations()] == [set(plugin.SCOPES)]


async def test_unlink_on_our_side_stops_reports(env: SimpleNamespace) -> None:
    await post(env, "action.devices.SYNC")
    await env.integ.on_event(env.svc, Event("link.revoked", "acc-1", None, {"integration": "alexa"}))  # not ours
    await env.integ.on_event(env.svc, Event("detections.ready", "acc-1", "cam-1", {"verdict": "alarm"}))
    assert len(env.google.calls) == 1
    await env.integ.on_event(env.svc, Event("link.revoked", "acc-1", None, {"integration": "google_home"}))
    # Google unlinks the user too (agentUsers.delete), then nothing more goes out
    assert (env.google.methods[1], env.google.calls[1][0]) == ("DELETE", "/v1/agentUsers/pseudo-1")
    await env.integ.on_event(env.svc, Event("detections.ready", "acc-1", "cam-1", {"verdict": "alarm"}))
    await env.integ.on_event(env.svc, Event("camera.changed", "acc-1", "cam-1", {"change": "added"}))
    assert len(env.google.calls) == 2


async def test_account_erasure_unlinks_the_user_at_google(env: SimpleNamespace) -> None:
    await post(env, "action.devices.SYNC")
    await env.integ.on_event(env.svc, Event("account.deleted", "acc-2", None, {}))  # never linked: no call
    assert env.google.calls == []
    await env.integ.on_event(env.svc, Event("account.deleted", "acc-1", None, {}))
    assert [(m, c[0], c[2]) for m, c in zip(env.google.methods, env.google.calls, strict=True)] == [
        ("DELETE", "/v1/agentUsers/pseudo-1", "Bearer ya29.test")]
    assert not [k for k in env.svc.state if k[:2] == ("google_home", "acc-1")]


@pytest.mark.parametrize("raw", [b"[" * 100_000 + b"]" * 100_000, b"{not json", b"[]", b""])
async def test_a_malformed_body_is_a_400(env: SimpleNamespace, raw: bytes) -> None:
    """A body that is no JSON object (JSON nested 100,000 levels deep included) is a 400 with a JSON error."""
    resp = await env.client.post("/plugins/google_home/fulfillment", content=raw,
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == "invalid_request"


async def test_an_oversized_body_is_a_413(env: SimpleNamespace) -> None:
    """A body over 1 MiB is refused with 413, also when it comes chunked without a declared length."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(160):
            yield b"x" * 8192

    resp = await env.client.post("/plugins/google_home/fulfillment", content=chunks(),
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "payload_too_large"
    assert (await post(env, "action.devices.SYNC")).status_code == 200


async def test_a_camera_that_cannot_stream_is_no_camera_device(env: SimpleNamespace) -> None:
    """cam-4's brand has no adapter enabled: the core lists it without capabilities. A CAMERA device needs
    CameraStream, so it is left out of SYNC, a GetCameraStream for it is refused, and no Report State names it."""
    env.svc.cameras["acc-1"].append(CameraSummary("cam-4", "Shed", "acme", "X1", capabilities=()))
    devices = {d["id"]: d for d in (await post(env, "action.devices.SYNC")).json()["payload"]["devices"]}
    assert set(devices) == {"cam-1", "cam-2"}
    params = {"StreamToChromecast": False, "SupportedStreamProtocols": ["hls"]}
    cmd = (await post(env, "action.devices.EXECUTE", execute("cam-4", STREAM, params))).json()
    assert cmd["payload"]["commands"] == [{"ids": ["cam-4"], "status": "ERROR", "errorCode": "functionNotSupported"}]
    cmd = (await post(env, "action.devices.EXECUTE", execute("cam-1", STREAM, params))).json()
    assert cmd["payload"]["commands"][0]["status"] == "SUCCESS"
    await env.integ.on_event(env.svc, Event("detections.ready", "acc-1", "cam-4", {"verdict": "alarm"}))
    await env.integ.on_event(env.svc, Event("detections.ready", "acc-1", "cam-1", {"verdict": "alarm"}))
    assert [set(c[1]["payload"]["devices"]["states"]) for c in env.google.calls] == [{"cam-1"}]
