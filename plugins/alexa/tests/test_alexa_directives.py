"""Alexa protocol layer against a CoreServices test double; every message validated with Amazon's schema."""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alarmcloud import CameraSummary, Event, LiveStream, ServiceError
from alarmcloud.testing import FakeServices
from alarmcloud_alexa import messages as m
from alarmcloud_alexa.config import AlexaConfig
from alarmcloud_alexa.gateway import GRANT_KEY, EventGateway
from alarmcloud_alexa.plugin import AlexaIntegration

jsonschema = pytest.importorskip("jsonschema")

SHARED = Path(os.environ.get("ALARMCLOUD_SHARED") or Path(__file__).resolve().parents[3].parent / "shared")
SCHEMA_FILE = SHARED / "schemas" / "alexa" / "alexa_smart_home_message_schema.json"
SAMPLES = SHARED / "schemas" / "alexa" / "sample_messages"
pytestmark = [pytest.mark.anyio,
              pytest.mark.skipif(not SCHEMA_FILE.exists(), reason=f"Alexa schema not found under {SHARED}")]

PASSWORD = "s3cret-cam-pw"
TOKEN = "good-token"
ALL = frozenset({m.SCOPE_STREAM, m.SCOPE_CONTROL, m.SCOPE_ALARMS})
# DeleteReport is not in Amazon's schema: a local mini-schema (§2.8 of the reference)
DELETE_REPORT = {"type": "object", "required": ["event"], "properties": {"event": {
    "type": "object", "required": ["header", "payload"], "properties": {
        "header": {"type": "object", "required": ["namespace", "name", "payloadVersion", "messageId"],
                   "properties": {"namespace": {"enum": ["Alexa.Discovery"]}, "name": {"enum": ["DeleteReport"]},
                                  "payloadVersion": {"enum": ["3"]},
                                  "messageId": {"type": "string", "pattern": "^[a-zA-Z0-9\\-]{1,127}$"}}},
        "payload": {"type": "object", "required": ["endpoints", "scope"], "additionalProperties": False,
                    "properties": {"endpoints": {"type": "array", "minItems": 1, "items": {
                        "type": "object", "required": ["endpointId"], "additionalProperties": False,
                        "properties": {"endpointId": {"type": "string",
                                                      "pattern": "^[a-zA-Z0-9_\\-=#;:?@&]{1,256}$"}}}},
                        "scope": {"type": "object", "required": ["type", "token"],
                                  "properties": {"type": {"enum": ["BearerToken"]}}}}}}}}}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def validator() -> Any:
    schema = json.loads(SCHEMA_FILE.read_text())
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())


def check(validator: Any, message: dict[str, Any]) -> dict[str, Any]:
    """Validate against Amazon's schema (or the DeleteReport mini-schema) with a useful error."""
    if message["event"]["header"]["name"] == "DeleteReport":
        jsonschema.validate(message, DELETE_REPORT)
        return message
    err = jsonschema.exceptions.best_match(validator.iter_errors(message))
    assert err is None, f"{err.message} at {list(err.absolute_path)}\n{json.dumps(message, indent=1)}"
    return message


CONTROL = ("control", "stream")  # what the core lists for the owner or a control / admin right
VIEW_ONLY = ("stream",)  # a sub-user's view right: live view, no camera actions


def services(scopes: frozenset[str] = ALL) -> FakeServices:
    """Account acc-1 linked with ``scopes``: an online camera with motion detection on, an offline one."""
    svc = FakeServices("alexa", {"acc-1": [
        CameraSummary("cam-1", "Front door", "instar", "IN-9408", motion_detection=True, capabilities=CONTROL),
        CameraSummary("cam-2", "Garden", "instar", "IN-8015", motion_detection=False, online=False,
                      capabilities=CONTROL)]})
    svc.link(TOKEN, "acc-1", scopes, "pseudo-1")
    svc.link("expired-token", "acc-1", scopes, "pseudo-1", expired=True)
    svc.streams["cam-1"] = LiveStream("rtsp://192.168.1.5/11", "rtsp://192.168.1.5/12", None,
                                      "http://192.168.1.5/snap.cgi",
                                      {"rtsp_main": f"rtsp://admin:{PASSWORD}@192.168.1.5/11",
                                       "snapshot": f"http://192.168.1.5/snap.cgi?usr=admin&pwd={PASSWORD}"})
    return svc


class FakeAmazon:
    """LWA token endpoint and event gateway as an httpx mock transport."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.auth: list[str] = []
        self.lwa: list[dict[str, str]] = []
        self.gateway_replies: list[tuple[int, dict[str, Any]]] = []
        self.lwa_status = 200
        self.n = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/o2/token":
            form = dict(httpx.QueryParams(request.content.decode()))
            self.lwa.append(form)
            if self.lwa_status != 200:
                return httpx.Response(self.lwa_status, json={"error": "invalid_grant"})
            self.n += 1
            return httpx.Response(200, json={"access_token": f"Atza|{self.n}", "refresh_token": f"Atzr|{self.n}",
                                             "token_type": "bearer", "expires_in": 3600})
        self.events.append(json.loads(request.content))
        self.auth.append(request.headers["authorization"])
        if self.gateway_replies:
            status, body = self.gateway_replies.pop(0)
            return httpx.Response(status, json=body)
        return httpx.Response(202)


@pytest.fixture
def amazon() -> FakeAmazon:
    return FakeAmazon()


@pytest.fixture
def integ(amazon: FakeAmazon) -> AlexaIntegration:
    cfg = AlexaConfig(lwa_client_id="skill", lwa_client_secret="skill-secret",
                      lwa_token_url="https://lwa.test/auth/o2/token", event_gateway_url="https://gw.test/v3/events")
    return AlexaIntegration(cfg, EventGateway(cfg, httpx.MockTransport(amazon)))


def directive(namespace: str, name: str, endpoint_id: str | None = "cam-1", token: str = TOKEN,
              payload: dict[str, Any] | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"header": {"namespace": namespace, "name": name, "payloadVersion": "3",
                                    "messageId": "abc-123", "correlationToken": "corr-xyz=="},
                         "payload": payload or {}}
    if endpoint_id:
        d["endpoint"] = {"scope": {"type": "BearerToken", "token": token}, "endpointId": endpoint_id, "cookie": {}}
    return {"directive": d}


async def run(integ: AlexaIntegration, svc: FakeServices, validator: Any, body: Any) -> dict[str, Any]:
    return check(validator, await integ.handler(svc).handle(body))


def props(resp: dict[str, Any]) -> dict[str, Any]:
    return {(p["namespace"], p["name"]): p["value"] for p in resp["context"]["properties"]}


async def test_discovery_from_sample_request(integ: AlexaIntegration, validator: Any) -> None:
    body = json.loads((SAMPLES / "Discovery" / "Discovery.request.json").read_text())
    body["directive"]["payload"]["scope"]["token"] = TOKEN
    resp = await run(integ, services(), validator, body)
    eps = {e["endpointId"]: e for e in resp["event"]["payload"]["endpoints"]}
    assert set(eps) == {"cam-1", "cam-2", "cam-1:motion", "cam-2:motion"}
    cam = eps["cam-1"]
    assert cam["displayCategories"] == ["CAMERA"] and cam["friendlyName"] == "Front door"
    ifaces = {c["interface"] for c in cam["capabilities"]}
    assert ifaces == {"Alexa", "Alexa.CameraStreamController", "Alexa.PowerController", "Alexa.EndpointHealth"}
    assert eps["cam-1:motion"]["displayCategories"] == ["MOTION_SENSOR"]


async def test_discovery_follows_scopes_and_bad_tokens(integ: AlexaIntegration, validator: Any) -> None:
    body = directive("Alexa.Discovery", "Discover", None, payload={"scope": {"type": "BearerToken", "token": TOKEN}})
    resp = await run(integ, services(frozenset({m.SCOPE_STREAM})), validator, body)
    eps = resp["event"]["payload"]["endpoints"]
    assert [e["endpointId"] for e in eps] == ["cam-1", "cam-2"]
    assert all("Alexa.PowerController" not in {c["interface"] for c in e["capabilities"]} for e in eps)
    body["directive"]["payload"]["scope"]["token"] = "wrong"
    assert (await run(integ, services(), validator, body))["event"]["payload"]["endpoints"] == []


async def test_power_controller_reaches_camera(integ: AlexaIntegration, validator: Any) -> None:
    svc = services()
    for sample, value in (("PowerController.TurnOff.request.json", False),
                          ("PowerController.TurnOn.request.json", True)):
        body = json.loads((SAMPLES / "PowerController" / sample).read_text())
        body["directive"]["endpoint"]["endpointId"] = "cam-1"
        body["directive"]["endpoint"]["scope"]["token"] = TOKEN
        resp = await run(integ, svc, validator, body)
        assert resp["event"]["header"]["correlationToken"] == body["directive"]["header"]["correlationToken"]
        assert props(resp)[("Alexa.PowerController", "powerState")] == ("ON" if value else "OFF")
    assert svc.actions == [("acc-1", "cam-1", "motion_detection", False), ("acc-1", "cam-1", "motion_detection", True)]


async def test_report_state(integ: AlexaIntegration, validator: Any) -> None:
    svc = services()
    resp = await run(integ, svc, validator, directive("Alexa", "ReportState", "cam-1"))
    assert resp["event"]["header"]["name"] == "StateReport"
    p = props(resp)
    assert p[("Alexa.PowerController", "powerState")] == "ON"
    assert p[("Alexa.EndpointHealth", "connectivity")] == {"value": "OK"}
    for prop in resp["context"]["properties"]:
        assert prop["timeOfSample"].endswith("Z") and len(prop["timeOfSample"].split(".")[1]) == 4
    offline = props(await run(integ, svc, validator, directive("Alexa", "ReportState", "cam-2")))
    assert offline[("Alexa.EndpointHealth", "connectivity")] == {"value": "UNREACHABLE"}
    sensor = props(await run(integ, svc, validator, directive("Alexa", "ReportState", "cam-1:motion")))
    assert sensor[("Alexa.MotionSensor", "detectionState")] == "NOT_DETECTED"


async def test_camera_streams(integ: AlexaIntegration, validator: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    body = json.loads((SAMPLES / "CameraStreamController" / "CameraStreamController.request.json").read_text())
    body["directive"]["endpoint"]["endpointId"] = "cam-1"
    body["directive"]["endpoint"]["scope"]["token"] = TOKEN
    resp = await run(integ, services(), validator, body)
    payload = resp["event"]["payload"]
    assert payload["cameraStreams"][0]["protocol"] == "RTSP"
    assert payload["cameraStreams"][0]["uri"].startswith("rtsp://admin:")
    assert payload["imageUri"]
    assert PASSWORD not in caplog.text
    integ.config.stream_url_template = "rtsps://cams.example.com:443/{camera_id}"
    integ.config.image_url_template = "https://cams.example.com/{camera_id}.jpg"
    resp = await run(integ, services(), validator, body)
    assert resp["event"]["payload"]["cameraStreams"][0]["uri"] == "rtsps://cams.example.com:443/cam-1"


@pytest.mark.parametrize(("body", "error_type"), [
    (directive("Alexa", "ReportState", "cam-1", token="wrong"), "INVALID_AUTHORIZATION_CREDENTIAL"),
    (directive("Alexa", "ReportState", "cam-1", token="expired-token"), "EXPIRED_AUTHORIZATION_CREDENTIAL"),
    (directive("Alexa", "ReportState", "cam-9"), "NO_SUCH_ENDPOINT"),
    (directive("Alexa.PowerController", "TurnOn", "cam-2"), "ENDPOINT_UNREACHABLE"),
    (directive("Alexa.CameraStreamController", "InitializeCameraStreams", "cam-2"), "ENDPOINT_UNREACHABLE"),
    (directive("Alexa.ThermostatController", "SetTargetTemperature", "cam-1"), "INVALID_DIRECTIVE"),
    (directive("Alexa.PowerController", "TurnOn", "cam-1:motion"), "INVALID_DIRECTIVE"),
    ({"not": "a directive"}, "INVALID_DIRECTIVE"),
    (directive("Alexa", "ReportState", None), "INVALID_DIRECTIVE"),
])
async def test_errors(integ: AlexaIntegration, validator: Any, body: Any, error_type: str) -> None:
    resp = await run(integ, services(), validator, body)
    assert resp["event"]["header"]["name"] == "ErrorResponse"
    assert resp["event"]["payload"]["type"] == error_type


async def test_scope_and_camera_failures(integ: AlexaIntegration, validator: Any) -> None:
    svc = services(frozenset({m.SCOPE_STREAM}))
    resp = await run(integ, svc, validator, directive("Alexa.PowerController", "TurnOff", "cam-1"))
    assert resp["event"]["payload"]["type"] == "INSUFFICIENT_PERMISSIONS" and svc.actions == []
    svc = services(frozenset({m.SCOPE_CONTROL}))
    resp = await run(integ, svc, validator, directive("Alexa.CameraStreamController", "InitializeCameraStreams"))
    assert resp["event"]["payload"]["type"] == "INSUFFICIENT_PERMISSIONS"
    svc = services()
    for exc, error_type in ((ServiceError(504, "camera_unreachable", "x"), "ENDPOINT_UNREACHABLE"),
                            (ServiceError(404, "not_found", "x"), "NO_SUCH_ENDPOINT"),
                            # the right was taken away after discovery: the core refuses the action
                            (ServiceError(403, "forbidden", "x"), "INSUFFICIENT_PERMISSIONS"),
                            (ServiceError(500, "boom", "x"), "INTERNAL_ERROR"),
                            (RuntimeError("boom"), "INTERNAL_ERROR")):
        svc.fail_action = exc
        resp = await run(integ, svc, validator, directive("Alexa.PowerController", "TurnOff", "cam-1"))
        assert resp["event"]["payload"]["type"] == error_type


def with_view_only_camera(svc: FakeServices) -> FakeServices:
    """Adds cam-3, a camera the linked person may only view (a sub-user's view right)."""
    svc.cameras["acc-1"].append(CameraSummary("cam-3", "Driveway", "instar", "IN-9020", motion_detection=True,
                                              capabilities=VIEW_ONLY))
    svc.streams["cam-3"] = LiveStream("rtsp://192.168.1.7/11", None, None, "http://192.168.1.7/snap.cgi")
    return svc


def interfaces(endpoint: dict[str, Any]) -> set[str]:
    return {c["interface"] for c in endpoint["capabilities"]}


async def test_discovery_offers_the_power_controller_only_on_cameras_the_user_may_control(
        integ: AlexaIntegration, validator: Any) -> None:
    body = directive("Alexa.Discovery", "Discover", None, payload={"scope": {"type": "BearerToken", "token": TOKEN}})
    resp = await run(integ, with_view_only_camera(services()), validator, body)
    eps = {e["endpointId"]: e for e in resp["event"]["payload"]["endpoints"]}
    assert set(eps) == {"cam-1", "cam-2", "cam-3", "cam-1:motion", "cam-2:motion", "cam-3:motion"}
    assert interfaces(eps["cam-3"]) == {"Alexa", "Alexa.CameraStreamController", "Alexa.EndpointHealth"}
    assert "Alexa.PowerController" in interfaces(eps["cam-1"])
    # a link without live view: a view-only camera has nothing left to offer but its alarm sensor
    resp = await run(integ, with_view_only_camera(services(frozenset({m.SCOPE_CONTROL, m.SCOPE_ALARMS}))),
                     validator, body)
    eps = {e["endpointId"]: e for e in resp["event"]["payload"]["endpoints"]}
    assert set(eps) == {"cam-1", "cam-2", "cam-1:motion", "cam-2:motion", "cam-3:motion"}
    assert interfaces(eps["cam-1"]) == {"Alexa", "Alexa.PowerController", "Alexa.EndpointHealth"}


async def test_a_view_only_camera_reports_no_power_state_and_refuses_power(integ: AlexaIntegration,
                                                                          validator: Any) -> None:
    svc = with_view_only_camera(services())
    p = props(await run(integ, svc, validator, directive("Alexa", "ReportState", "cam-3")))
    assert set(p) == {("Alexa.EndpointHealth", "connectivity")}
    for name in ("TurnOn", "TurnOff"):
        resp = await run(integ, svc, validator, directive("Alexa.PowerController", name, "cam-3"))
        assert resp["event"]["header"]["name"] == "ErrorResponse"
        assert resp["event"]["payload"]["type"] == "INSUFFICIENT_PERMISSIONS"
        assert resp["event"]["endpoint"]["endpointId"] == "cam-3"
    assert svc.actions == []
    resp = await run(integ, svc, validator, directive("Alexa.CameraStreamController", "InitializeCameraStreams",
                                                      "cam-3"))
    assert resp["event"]["payload"]["cameraStreams"][0]["protocol"] == "RTSP"  # viewing is what the right allows


async def test_proactive_reports_leave_power_out_for_a_view_only_camera(integ: AlexaIntegration, amazon: FakeAmazon,
                                                                        validator: Any) -> None:
    svc = with_view_only_camera(services())
    body = json.loads((SAMPLES / "Authorization" / "Authorization.AcceptGrant.request.json").read_text())
    body["directive"]["payload"]["grantee"]["token"] = TOKEN
    await run(integ, svc, validator, body)
    await integ.on_event(svc, Event("camera.changed", "acc-1", "cam-3",
                                    {"change": "action", "action": "motion_detection", "value": False}))
    await integ.on_event(svc, Event("camera.changed", "acc-1", "cam-3", {"change": "updated"}))
    await integ.on_event(svc, Event("camera.changed", "acc-1", "cam-1", {"change": "updated"}))
    assert [check(validator, e)["event"]["header"]["name"] for e in amazon.events] == ["AddOrUpdateReport"] * 2
    eps = [e["event"]["payload"]["endpoints"] for e in amazon.events]
    assert interfaces(next(e for e in eps[0] if e["endpointId"] == "cam-3")) == {
        "Alexa", "Alexa.CameraStreamController", "Alexa.EndpointHealth"}
    assert "Alexa.PowerController" in interfaces(next(e for e in eps[1] if e["endpointId"] == "cam-1"))


async def test_accept_grant_and_proactive_events(integ: AlexaIntegration, amazon: FakeAmazon, validator: Any) -> None:
    svc = services()
    body = json.loads((SAMPLES / "Authorization" / "Authorization.AcceptGrant.request.json").read_text())
    body["directive"]["payload"]["grantee"]["token"] = TOKEN
    resp = await run(integ, svc, validator, body)
    assert resp["event"]["header"]["name"] == "AcceptGrant.Response"
    assert amazon.lwa[0]["grant_type"] == "authorization_code" and amazon.lwa[0]["client_secret"] == "skill-secret"
    assert svc.state[("alexa", "acc-1", GRANT_KEY)]["access_token"] == "Atza|1"

    await integ.on_event(svc, Event("camera.changed", "acc-1", "cam-1",
                                    {"change": "action", "action": "motion_detection", "value": False}))
    await integ.on_event(svc, Event("camera.changed", "acc-1", "cam-1", {"change": "added"}))
    await integ.on_event(svc, Event("detections.ready", "acc-1", "cam-1", {"verdict": "alarm"}))
    await integ.on_event(svc, Event("detections.ready", "acc-1", "cam-1", {"verdict": "false_alarm:rain"}))
    await integ.on_event(svc, Event("camera.deleted", "acc-1", "cam-1", {}))
    await integ.on_event(svc, Event("camera.changed", "acc-other", "cam-7", {"change": "added"}))
    names = [e["event"]["header"]["name"] for e in amazon.events]
    assert names == ["ChangeReport", "AddOrUpdateReport", "ChangeReport", "DeleteReport"]
    for event in amazon.events:
        check(validator, event)
    assert set(amazon.auth) == {"Bearer Atza|1"}
    assert amazon.events[0]["event"]["payload"]["change"]["properties"][0]["value"] == "OFF"
    assert amazon.events[2]["event"]["endpoint"]["endpointId"] == "cam-1:motion"

    # invalid LWA token: refresh once and retry; skill disabled: forget the grant
    amazon.gateway_replies = [(401, {"payload": {"code": "INVALID_ACCESS_TOKEN_EXCEPTION", "description": "x"}})]
    await integ.on_event(svc, Event("camera.changed", "acc-1", "cam-2", {"change": "updated"}))
    assert amazon.lwa[-1]["grant_type"] == "refresh_token" and amazon.auth[-1] == "Bearer Atza|2"
    check(validator, amazon.events[-1])
    amazon.gateway_replies = [(500, {}), (403, {"payload": {"code": "SKILL_DISABLED_EXCEPTION", "description": "x"}})]
    await integ.on_event(svc, Event("camera.changed", "acc-1", "cam-2", {"change": "updated"}))
    assert ("alexa", "acc-1", GRANT_KEY) not in svc.state
    # the skill disabled on Amazon's side is an unlink: our grant goes too
    assert svc.unlinked == [("acc-1", "alexa")]
    resp = await run(integ, svc, validator, directive("Alexa", "ReportState", "cam-1"))
    assert resp["event"]["payload"]["type"] == "INVALID_AUTHORIZATION_CREDENTIAL"


async def test_unlink_on_our_side_stops_proactive_events(integ: AlexaIntegration, amazon: FakeAmazon,
                                                         validator: Any) -> None:
    svc = services()
    body = json.loads((SAMPLES / "Authorization" / "Authorization.AcceptGrant.request.json").read_text())
    body["directive"]["payload"]["grantee"]["token"] = TOKEN
    await run(integ, svc, validator, body)
    await integ.on_event(svc, Event("link.revoked", "acc-1", None, {"integration": "ifttt"}))  # not ours
    await integ.on_event(svc, Event("detections.ready", "acc-1", "cam-1", {"verdict": "alarm"}))
    assert len(amazon.events) == 1
    await integ.on_event(svc, Event("link.revoked", "acc-1", None, {"integration": "alexa", "client_id": "c"}))
    assert not [k for k in svc.state if k[:2] == ("alexa", "acc-1")]
    # the account's devices leave the customer's Alexa app at once
    assert len(amazon.events) == 2
    gone = check(validator, amazon.events[1])
    assert gone["event"]["header"]["name"] == "DeleteReport"
    assert {e["endpointId"] for e in gone["event"]["payload"]["endpoints"]} == {
        "cam-1", "cam-1:motion", "cam-2", "cam-2:motion"}
    await integ.on_event(svc, Event("detections.ready", "acc-1", "cam-1", {"verdict": "alarm"}))
    await integ.on_event(svc, Event("camera.changed", "acc-1", "cam-1", {"change": "updated"}))
    assert len(amazon.events) == 2


async def test_account_erasure_removes_the_devices_from_alexa(integ: AlexaIntegration, amazon: FakeAmazon,
                                                              validator: Any) -> None:
    svc = services()
    body = json.loads((SAMPLES / "Authorization" / "Authorization.AcceptGrant.request.json").read_text())
    body["directive"]["payload"]["grantee"]["token"] = TOKEN
    await run(integ, svc, validator, body)
    await integ.on_event(svc, Event("account.deleted", "acc-2", None, {}))  # another account: nothing to send
    assert amazon.events == []
    await integ.on_event(svc, Event("account.deleted", "acc-1", None, {}))
    assert [check(validator, e)["event"]["header"]["name"] for e in amazon.events] == ["DeleteReport"]
    assert {e["endpointId"] for e in amazon.events[0]["event"]["payload"]["endpoints"]} == {
        "cam-1", "cam-1:motion", "cam-2", "cam-2:motion"}
    assert amazon.auth == ["Bearer Atza|1"]
    assert not [k for k in svc.state if k[:2] == ("alexa", "acc-1")]


async def test_accept_grant_failures(integ: AlexaIntegration, amazon: FakeAmazon, validator: Any) -> None:
    svc = services()
    body = json.loads((SAMPLES / "Authorization" / "Authorization.AcceptGrant.request.json").read_text())
    body["directive"]["payload"]["grantee"]["token"] = TOKEN
    amazon.lwa_status = 400
    resp = await run(integ, svc, validator, body)
    assert resp["event"]["header"]["namespace"] == "Alexa.Authorization"
    assert resp["event"]["payload"]["type"] == "ACCEPT_GRANT_FAILED"
    amazon.lwa_status = 200
    body["directive"]["payload"]["grantee"]["token"] = "wrong"
    assert (await run(integ, svc, validator, body))["event"]["payload"]["type"] == "ACCEPT_GRANT_FAILED"


async def test_alarm_sets_motion_sensor_state(integ: AlexaIntegration, validator: Any) -> None:
    svc = services()
    svc.state[("alexa", "acc-1", "last_alarm:cam-1")] = time.time()
    resp = await run(integ, svc, validator, directive("Alexa", "ReportState", "cam-1:motion"))
    assert props(resp)[("Alexa.MotionSensor", "detectionState")] == "DETECTED"


def test_scopes_are_ones_the_core_can_grant() -> None:
    from alarmcloud.oauth import SCOPES as CORE_SCOPES
    from alarmcloud_alexa.plugin import SCOPES, register_integrations

    assert set(SCOPES) <= set(CORE_SCOPES)
    assert [set(spec.scopes) for spec in register_integrations()] == [set(SCOPES)]


def _http(integ: AlexaIntegration) -> httpx.AsyncClient:
    """The directive endpoint over HTTP (ASGI), as the forwarding Lambda reaches it."""
    from alarmcloud_alexa import plugin
    from starlette.applications import Starlette
    from starlette.routing import Mount

    app = Starlette(routes=[Mount("/plugins/alexa", routes=plugin.register_routes(None))])
    app.state.alarmcloud = type("App", (), {"services": services(),
                                            "plugins": type("P", (), {"integration": lambda self, n: integ})()})()
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.mark.parametrize("raw", [b"[" * 100_000 + b"]" * 100_000, b"{not json", b"\xff\xfe", b""])
async def test_a_malformed_directive_body_is_an_invalid_directive(integ: AlexaIntegration, validator: Any,
                                                                   raw: bytes) -> None:
    """Over HTTP: a body that is no JSON, or JSON nested 100,000 levels deep, is answered with Alexa's
    INVALID_DIRECTIVE error event, not a server error."""
    async with _http(integ) as client:
        r = await client.post("/plugins/alexa/directive", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text  # Alexa's errors are events
    assert check(validator, r.json())["event"]["payload"]["type"] == "INVALID_DIRECTIVE"


async def test_an_oversized_directive_body_is_a_413(integ: AlexaIntegration) -> None:
    """A body over 256 KiB is refused with 413, also when it comes chunked without a declared length."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"x" * 8192

    async with _http(integ) as client:
        r = await client.post("/plugins/alexa/directive", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
        r = await client.post("/plugins/alexa/directive", json=directive("Alexa", "ReportState", "cam-1"))
        assert r.status_code == 200 and r.json()["event"]["header"]["name"] != "ErrorResponse"


def with_camera_that_cannot_stream(svc: FakeServices) -> FakeServices:
    """Adds cam-4, a camera whose brand has no adapter enabled: the core lists it without any capability."""
    svc.cameras["acc-1"].append(CameraSummary("cam-4", "Shed", "acme", "X1", motion_detection=None, capabilities=()))
    return svc


async def test_no_live_view_on_a_camera_that_cannot_stream(integ: AlexaIntegration, amazon: FakeAmazon,
                                                           validator: Any) -> None:
    svc = with_camera_that_cannot_stream(services())
    body = directive("Alexa.Discovery", "Discover", None, payload={"scope": {"type": "BearerToken", "token": TOKEN}})
    eps = {e["endpointId"]: e for e in (await run(integ, svc, validator, body))["event"]["payload"]["endpoints"]}
    # nothing to view and nothing to switch: only its alarm sensor is left
    assert "cam-4" not in eps and "cam-4:motion" in eps
    assert "Alexa.CameraStreamController" in interfaces(eps["cam-1"])
    resp = await run(integ, svc, validator, directive("Alexa.CameraStreamController", "InitializeCameraStreams",
                                                      "cam-4"))
    assert resp["event"]["header"]["name"] == "ErrorResponse"
    assert resp["event"]["payload"]["type"] == "INVALID_DIRECTIVE"
    assert resp["event"]["endpoint"]["endpointId"] == "cam-4"
    # the proactive AddOrUpdateReport of a changed camera offers no live view on it either
    grant = json.loads((SAMPLES / "Authorization" / "Authorization.AcceptGrant.request.json").read_text())
    grant["directive"]["payload"]["grantee"]["token"] = TOKEN
    await run(integ, svc, validator, grant)
    await integ.on_event(svc, Event("camera.changed", "acc-1", "cam-4", {"change": "updated"}))
    assert [check(validator, e)["event"]["header"]["name"] for e in amazon.events] == ["AddOrUpdateReport"]
    assert [e["endpointId"] for e in amazon.events[0]["event"]["payload"]["endpoints"]] == ["cam-4:motion"]


async def test_switching_an_offline_camera_the_user_may_only_view_is_a_permission_error(
        integ: AlexaIntegration, validator: Any) -> None:
    svc = services()
    svc.cameras["acc-1"].append(CameraSummary("cam-6", "Back door", "instar", "IN-9020", motion_detection=True,
                                              online=False, capabilities=VIEW_ONLY))
    for name in ("TurnOn", "TurnOff"):
        resp = await run(integ, svc, validator, directive("Alexa.PowerController", name, "cam-6"))
        assert resp["event"]["payload"]["type"] == "INSUFFICIENT_PERMISSIONS"
        assert resp["event"]["endpoint"]["endpointId"] == "cam-6"
    # a camera the person may switch still answers that it is offline
    resp = await run(integ, svc, validator, directive("Alexa.PowerController", "TurnOn", "cam-2"))
    assert resp["event"]["payload"]["type"] == "ENDPOINT_UNREACHABLE"
    assert svc.actions == []
