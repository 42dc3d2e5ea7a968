"""A sub-user links its own Alexa, Google Home or IFTTT: the link acts with the sub-user's rights, nothing more.

The owner has cameras Door, Gate and Shed (fake INSTAR cameras on loopback) with one alarm clip each, and a sub-user
with ``view`` on Door and ``control`` on Gate. The sub-user links through the real consent page and token endpoint;
the tests call the services the integrations call (``app.services``) with the principal of that token, and Google's
fulfillment over HTTP as Google does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import anyio
import httpx
import pytest
from alarmcloud import oauth
from alarmcloud.services import Principal, ServiceError
from alarmcloud.testing import LiveServer
from alarmcloud_camera_instar.testing import FakeInstarCamera

REDIRECT = "https://layla.amazon.com/api/skill/link/M2SUBUSER"
GOOGLE_REDIRECT = "https://oauth-redirect.googleusercontent.com/r/alarmcloud-subuser"
SCOPES = "alarms:read cameras:control cameras:stream storage:read"
GOOGLE_SCOPES = "cameras:control cameras:stream"
CAM_PASSWORD = "Cam-Pw-Sub7x"
SUB_EMAIL = "family@example.com"
PASSWORD = "correct horse battery staple"


def link(srv: LiveServer, user: Any, client: tuple[str, str], redirect: str, scope: str) -> dict[str, Any]:
    """Link as Alexa does: consent page (the person's own session), Allow, code with PKCE → tokens."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    url = "/oauth/authorize?" + urlencode({"response_type": "code", "client_id": client[0], "redirect_uri": redirect,
                                           "state": "st", "scope": scope, "code_challenge": challenge,
                                           "code_challenge_method": "S256"})
    page = user.http.get(url)
    assert page.status_code == 200, page.text
    csrf = re.search(r'name=csrf_token value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = user.http.post(url, data={"csrf_token": csrf, "decision": "approve"})
    assert r.status_code == 303, r.text
    code = parse_qs(urlparse(r.headers["location"]).query)["code"][0]
    r = httpx.post(srv.url + "/oauth/token", auth=client, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect, "code_verifier": verifier})
    assert r.status_code == 200, r.text
    return dict(r.json())


@dataclass
class Family:
    srv: LiveServer
    owner: Any
    sub: Any
    cams: dict[str, str]  # name → camera id
    fakes: dict[str, FakeInstarCamera]
    events: dict[str, str]  # camera name → event id
    alexa: tuple[str, str]
    google: tuple[str, str]

    @property
    def services(self) -> Any:
        return self.srv.core.services  # type: ignore[attr-defined]

    def name_of(self, camera_id: str) -> str:
        return next(n for n, i in self.cams.items() if i == camera_id)

    def set_rights(self, **rights: str) -> None:
        r = self.owner.put(f"/api/v1/subusers/{self.sub.id}",
                           json={"rights": {self.cams[n]: right for n, right in rights.items()}})
        assert r.status_code == 200, r.text

    async def principal(self, who: Any, client: tuple[str, str] | None = None, scope: str = SCOPES,
                        integration: str = "alexa") -> tuple[Principal, str]:
        tok = link(self.srv, who, client or self.alexa, REDIRECT if integration == "alexa" else GOOGLE_REDIRECT,
                   scope)
        return await self.services.principal_for_token(tok["access_token"], integration), tok["access_token"]

    async def seen(self, p: Principal) -> set[str]:
        return {self.name_of(c.id) for c in await self.services.list_cameras(p.account_id)}

    async def event_cameras(self, p: Principal, **kw: Any) -> set[str]:
        return {self.name_of(e["camera_id"]) for e in await self.services.list_events(p.account_id, **kw)}

    def motion_requests(self) -> dict[str, int]:
        return {n: len(f.requests) for n, f in self.fakes.items()}


@pytest.fixture
def family(api: Any, server: LiveServer, kit: Any, tmp_path: Path) -> Iterator[Family]:
    clip = kit.small_clip(tmp_path / "alarm.mp4")
    with FakeInstarCamera("fullhd", password=CAM_PASSWORD) as door, \
            FakeInstarCamera("fullhd", password=CAM_PASSWORD) as gate, \
            FakeInstarCamera("fullhd", password=CAM_PASSWORD) as shed:
        fakes = {"Door": door, "Gate": gate, "Shed": shed}
        owner = api().register("owner@example.com")
        cams, events = {}, {}
        for name, fake in fakes.items():
            cam = owner.camera(name, host="127.0.0.1", port=fake.port, username="admin", password=CAM_PASSWORD,
                               integrations_may_use_credentials=True)  # the owner lets integrations use the login
            cams[name] = cam["id"]
            r = owner.upload(owner.upload_credentials(cam["id"]), clip)
            assert r.status_code == 201, r.text
            events[name] = r.json()["event_id"]
        r = owner.post("/api/v1/subusers", json={"email": SUB_EMAIL, "password": PASSWORD,
                                                 "rights": {cams["Door"]: "view", cams["Gate"]: "control"}})
        assert r.status_code == 201, r.text
        sub = api().login(SUB_EMAIL)
        with server.core.db.session() as s:  # type: ignore[attr-defined]
            alexa, alexa_secret = oauth.add_client(s, "Alexa", "alexa", [REDIRECT], SCOPES.split(), require_pkce=True)
            google, google_secret = oauth.add_client(s, "Google Home", "google_home", [GOOGLE_REDIRECT],
                                                     GOOGLE_SCOPES.split(), require_pkce=True)
        for fake in fakes.values():
            fake.requests.clear()
        yield Family(server, owner, sub, cams, fakes, events, (alexa.id, alexa_secret or ""),
                     (google.id, google_secret or ""))


def wait_until(probe: Callable[[], Any], timeout: float = 30.0) -> Any:
    """``probe()`` once it is truthy, or its last value at the deadline."""
    deadline = time.monotonic() + timeout
    while not (value := probe()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


async def _refused(call: Any) -> ServiceError:
    with pytest.raises(ServiceError) as err:
        await call
    return err.value


@pytest.mark.anyio
async def test_a_sub_users_link_sees_exactly_its_cameras(family: Family) -> None:
    p, _ = await family.principal(family.sub)
    assert p.account_id == family.sub.id  # the link is the sub-user's own, with its own pseudonym
    owner_p, _ = await family.principal(family.owner)
    assert p.pseudonym != owner_p.pseudonym
    assert await family.seen(p) == {"Door", "Gate"}
    assert await family.seen(owner_p) == {"Door", "Gate", "Shed"}  # the owner's link is unchanged
    caps = {family.name_of(c.id): set(c.capabilities) for c in await family.services.list_cameras(p.account_id)}
    assert caps == {"Door": {"stream"}, "Gate": {"stream", "control"}}  # what the sub-user may do with each
    assert await family.event_cameras(p) == {"Door", "Gate"}
    assert await family.event_cameras(p, camera_id=family.cams["Shed"]) == set()
    assert await family.event_cameras(owner_p) == {"Door", "Gate", "Shed"}
    storage = await family.services.storage(p.account_id)
    assert {family.name_of(c["camera_id"]) for c in storage["per_camera"]} == {"Door", "Gate"}
    assert storage["clip_count"] == 2


@pytest.mark.anyio
async def test_view_sees_the_stream_but_runs_no_action(family: Family) -> None:
    p, _ = await family.principal(family.sub)
    door = family.cams["Door"]
    live = await family.services.live_stream(p.account_id, door, with_credentials=True, principal=p)
    assert live.rtsp_main
    # the camera login gives every right on the camera: a view right never carries it, though the owner allowed
    # integrations to use it
    assert not live.credentials_in_url and CAM_PASSWORD not in str(live)
    err = await _refused(family.services.camera_action(p.account_id, door, "motion_detection", False, principal=p))
    assert err.status == 403
    assert family.motion_requests()["Door"] == 0  # the camera never heard of it
    assert {a["enable"] for a in family.fakes["Door"].state["areas"].values()} == {"1", "0"}


@pytest.mark.anyio
async def test_control_switches_motion_detection(family: Family) -> None:
    p, _ = await family.principal(family.sub)
    gate = family.cams["Gate"]
    await family.services.camera_action(p.account_id, gate, "motion_detection", False, principal=p)
    assert {a["enable"] for a in family.fakes["Gate"].state["areas"].values()} == {"0"}
    live = await family.services.live_stream(p.account_id, gate, with_credentials=True, principal=p)
    assert live.rtsp_main and not live.credentials_in_url  # control is not the camera login either
    # admin (which may change the camera's login and the owner's switch itself) gets it where the owner allowed it
    family.set_rights(Door="view", Gate="admin")
    live = await family.services.live_stream(p.account_id, gate, with_credentials=True, principal=p)
    assert CAM_PASSWORD in str(live.credentials_in_url)
    assert family.motion_requests()["Door"] == family.motion_requests()["Shed"] == 0


@pytest.mark.anyio
async def test_nothing_on_a_camera_without_a_right(family: Family) -> None:
    p, _ = await family.principal(family.sub)
    shed = family.cams["Shed"]
    services = family.services
    for call in (services.camera_action(p.account_id, shed, "motion_detection", False, principal=p),
                 services.live_stream(p.account_id, shed, principal=p)):
        assert (await _refused(call)).status == 404  # like a camera that does not exist
    assert family.motion_requests()["Shed"] == 0


@pytest.mark.anyio
async def test_removing_a_right_or_the_sub_user_ends_it_at_once(family: Family) -> None:
    p, token = await family.principal(family.sub)
    gate = family.cams["Gate"]
    assert await family.seen(p) == {"Door", "Gate"}
    family.set_rights(Door="view")
    assert await family.seen(p) == {"Door"}
    assert await family.event_cameras(p) == {"Door"}
    assert await family.event_cameras(p, camera_id=gate) == set()
    err = await _refused(family.services.camera_action(p.account_id, gate, "motion_detection", False, principal=p))
    assert err.status == 404
    assert family.motion_requests()["Gate"] == 0
    core: Any = family.srv.core
    at_erasure: dict[str, set[str]] = {}
    emit = core.emit

    async def record(event: Any) -> None:  # what an integration can still look up when it hears account.deleted
        if event.type == "account.deleted":
            at_erasure[event.account_id] = {family.name_of(c.id) for c in await core.services.list_cameras(
                event.account_id)}
        await emit(event)

    core.emit = record
    assert family.owner.delete(f"/api/v1/subusers/{family.sub.id}").status_code == 204
    # Alexa and Google remove exactly these devices from the sub-user's app (DeleteReport, agentUsers.delete)
    assert at_erasure == {family.sub.id: {"Door"}}
    err = await _refused(family.services.principal_for_token(token, "alexa"))
    assert (err.status, err.code) == (401, "invalid_token")
    assert await family.services.list_cameras(p.account_id) == []
    assert await family.services.list_events(p.account_id) == []


@pytest.mark.anyio
async def test_the_owner_blocking_processing_stops_the_sub_users_link_too(family: Family) -> None:
    p, _ = await family.principal(family.sub)
    assert await family.event_cameras(p) == {"Door", "Gate"}
    assert family.owner.patch("/api/v1/me", json={"restricted": True}).status_code == 200
    assert await family.services.list_events(p.account_id) == []  # GDPR Art. 18: no integration gets them


def test_google_home_of_a_sub_user(family: Family) -> None:
    """Google's SYNC and EXECUTE with the sub-user's token: its cameras only, OnOff only where it has control."""
    tok = link(family.srv, family.sub, family.google, GOOGLE_REDIRECT, GOOGLE_SCOPES)["access_token"]

    def google(intent: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        inp: dict[str, Any] = {"intent": f"action.devices.{intent}"}
        if payload is not None:
            inp["payload"] = payload
        r = httpx.post(family.srv.url + "/plugins/google_home/fulfillment", timeout=30,
                       json={"requestId": str(uuid.uuid4()), "inputs": [inp]},
                       headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 200, r.text
        return dict(r.json()["payload"])

    devices = google("SYNC")["devices"]
    assert {family.name_of(d["id"]) for d in devices} == {"Door", "Gate"}

    def off(name: str) -> dict[str, Any]:
        cmd = {"devices": [{"id": family.cams[name]}],
               "execution": [{"command": "action.devices.commands.OnOff", "params": {"on": False}}]}
        return dict(google("EXECUTE", {"commands": [cmd]})["commands"][0])

    assert off("Gate")["status"] == "SUCCESS"
    assert {a["enable"] for a in family.fakes["Gate"].state["areas"].values()} == {"0"}
    for name in ("Door", "Shed"):
        assert off(name)["status"] == "ERROR", name
    assert family.motion_requests()["Door"] == family.motion_requests()["Shed"] == 0


# ---------------------------------------------------------------- proactive reports to a sub-user's own Alexa


class FakeAmazon:
    """Login with Amazon's token endpoint and Alexa's event gateway at the HTTP edge of the real Alexa plugin.

    Each AcceptGrant gets its own LWA token (``Atza|1``, ``Atza|2`` …): the gateway call's bearer token tells which
    linked person a report went to.
    """

    def __init__(self) -> None:
        self.reports: list[tuple[str, dict[str, Any]]] = []  # (bearer token, event message)
        self.n = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/o2/token":
            self.n += 1
            return httpx.Response(200, json={"access_token": f"Atza|{self.n}", "refresh_token": f"Atzr|{self.n}",
                                             "token_type": "bearer", "expires_in": 3600})
        token = request.headers["authorization"].removeprefix("Bearer ")
        self.reports.append((token, json.loads(request.content)))
        return httpx.Response(202)

    def sent(self, token: str, name: str) -> list[dict[str, Any]]:
        """The payloads of the ``name`` events (ChangeReport, DeleteReport …) sent for the grant ``token``."""
        return [msg["event"] for t, msg in list(self.reports) if t == token
                and msg["event"]["header"]["name"] == name]

    def wait_for(self, token: str, name: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not self.sent(token, name) and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.sent(token, name)


@pytest.fixture
def amazon(family: Family, monkeypatch: pytest.MonkeyPatch) -> FakeAmazon:
    from alarmcloud_alexa.config import AlexaConfig
    from alarmcloud_alexa.gateway import EventGateway

    fake = FakeAmazon()
    cfg = AlexaConfig(lwa_client_id="skill", lwa_client_secret="skill-secret",
                      lwa_token_url="https://lwa.test/auth/o2/token", event_gateway_url="https://gw.test/v3/events")
    integ = family.srv.core.plugins.integration("alexa")  # type: ignore[attr-defined]
    monkeypatch.setattr(integ, "config", cfg)
    monkeypatch.setattr(integ, "gateway", EventGateway(cfg, httpx.MockTransport(fake)))
    return fake


def enable_skill(family: Family, amazon: FakeAmazon, who: Any) -> str:
    """Link Alexa as ``who`` and accept the grant Alexa sends after linking; returns that grant's LWA token."""
    tok = link(family.srv, who, family.alexa, REDIRECT, SCOPES)["access_token"]
    directive = {"directive": {
        "header": {"namespace": "Alexa.Authorization", "name": "AcceptGrant", "payloadVersion": "3",
                   "messageId": str(uuid.uuid4())},
        "payload": {"grant": {"type": "OAuth2.AuthorizationCode", "code": secrets.token_urlsafe(12)},
                    "grantee": {"type": "BearerToken", "token": tok}}}}
    r = httpx.post(family.srv.url + "/plugins/alexa/directive", json=directive, timeout=30)
    assert r.status_code == 200 and r.json()["event"]["header"]["name"] == "AcceptGrant.Response", r.text
    return f"Atza|{amazon.n}"


def endpoints(event: dict[str, Any]) -> set[str]:
    return {e["endpointId"] for e in event["payload"]["endpoints"]}


def test_an_alarm_reaches_the_alexa_of_each_sub_user_with_a_right_on_the_camera(
        family: Family, amazon: FakeAmazon, api: Any, kit: Any, tmp_path: Path) -> None:
    sub_grant = enable_skill(family, amazon, family.sub)  # view on Door, control on Gate
    r = family.owner.post("/api/v1/subusers", json={"email": "lodger@example.com", "password": PASSWORD,
                                                    "rights": {family.cams["Gate"]: "view"}})
    assert r.status_code == 201, r.text
    lodger_grant = enable_skill(family, amazon, api().login("lodger@example.com"))  # view on Gate only
    assert sub_grant != lodger_grant
    clip = kit.small_clip(tmp_path / "door.mp4")
    door, gate = family.cams["Door"], family.cams["Gate"]

    r = family.owner.upload(family.owner.upload_credentials(door), clip)
    assert r.status_code == 201, r.text
    assert family.owner.wait_event(r.json()["event_id"])["verdict"] == "alarm"
    reports = amazon.wait_for(sub_grant, "ChangeReport")
    # the sub-user's Door motion sensor turns to "detected" in its own Alexa app (a view right is enough)
    assert [e["endpoint"]["endpointId"] for e in reports] == [door + ":motion"]
    detection = {p["name"]: p["value"] for p in reports[0]["payload"]["change"]["properties"]}
    assert detection == {"detectionState": "DETECTED"}

    # an alarm on Gate reaches both; by then the Door alarm's reports are long sent: none went to the lodger
    r = family.owner.upload(family.owner.upload_credentials(gate), clip)
    assert r.status_code == 201, r.text
    assert [e["endpoint"]["endpointId"] for e in amazon.wait_for(lodger_grant, "ChangeReport")] == [gate + ":motion"]
    deadline = time.monotonic() + 60
    while len(amazon.sent(sub_grant, "ChangeReport")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [e["endpoint"]["endpointId"] for e in amazon.sent(sub_grant, "ChangeReport")] == [
        door + ":motion", gate + ":motion"]
    assert {t for t, _ in amazon.reports} == {sub_grant, lodger_grant}  # the owner never enabled the skill


def test_a_right_taken_away_deletes_the_camera_from_the_sub_users_alexa(family: Family, amazon: FakeAmazon) -> None:
    sub_grant = enable_skill(family, amazon, family.sub)
    door, gate = family.cams["Door"], family.cams["Gate"]
    family.set_rights(Door="view")  # Gate taken away
    deletes = amazon.wait_for(sub_grant, "DeleteReport")  # told after the answer
    assert [endpoints(e) for e in deletes] == [{gate, gate + ":motion"}]
    assert amazon.sent(sub_grant, "AddOrUpdateReport") == []  # Door's right did not change: nothing to say
    family.set_rights(Door="view", Gate="control")  # given back: Alexa lists it again, with what control allows
    adds = amazon.wait_for(sub_grant, "AddOrUpdateReport")
    assert [{e["endpointId"] for e in a["payload"]["endpoints"]} & {door, gate} for a in adds] == [{gate}]
    gate_ep = next(e for e in adds[0]["payload"]["endpoints"] if e["endpointId"] == gate)
    assert "Alexa.PowerController" in {c["interface"] for c in gate_ep["capabilities"]}
    # removing the sub-user removes every camera it still had from its Alexa, before its link goes
    assert family.owner.delete(f"/api/v1/subusers/{family.sub.id}").status_code == 204
    deletes = amazon.sent(sub_grant, "DeleteReport")
    assert len(deletes) == 2 and endpoints(deletes[1]) == {door, door + ":motion", gate, gate + ":motion"}
    assert {t for t, _ in amazon.reports} == {sub_grant}



def test_a_camera_the_owner_deletes_leaves_the_sub_users_alexa(family: Family, amazon: FakeAmazon) -> None:
    sub_grant = enable_skill(family, amazon, family.sub)  # view on Door, control on Gate
    gate = family.cams["Gate"]
    assert family.owner.delete(f"/api/v1/cameras/{gate}").status_code == 204
    # the deletion takes the sub-user's right with the camera: Alexa still hears of it, for the sub-user's app
    assert [endpoints(e) for e in amazon.sent(sub_grant, "DeleteReport")] == [{gate, gate + ":motion"}]
    assert {t for t, _ in amazon.reports} == {sub_grant}

# ---------------------------------------------------------------- Report State and Request Sync to a sub-user's Google


class FakeHomeGraph:
    """Google's token endpoint and HomeGraph at the HTTP edge of the real Google Home plugin: records each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []  # (path, body)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            return httpx.Response(200, json={"access_token": "ya29.test", "expires_in": 3600})
        self.calls.append((request.url.path, json.loads(request.content or b"{}")))
        return httpx.Response(200, json={})

    def to(self, agent: str, path: str) -> list[dict[str, Any]]:
        return [body for p, body in list(self.calls) if p == path and body.get("agentUserId") == agent]

    def states_for(self, agent: str) -> list[set[str]]:
        """The cameras of each Report State sent for the Google user ``agent``."""
        return [set(b["payload"]["devices"]["states"]) for b in self.to(agent, "/v1/devices:reportStateAndNotification")]


@pytest.fixture
def homegraph(family: Family, monkeypatch: pytest.MonkeyPatch) -> FakeHomeGraph:
    from alarmcloud_google_home.config import GoogleHomeConfig
    from alarmcloud_google_home.homegraph import HomeGraph
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    key = {"type": "service_account", "client_email": "hg@proj.iam.gserviceaccount.com", "private_key": pem,
           "private_key_id": "k1", "token_uri": "https://google.test/token"}
    cfg = GoogleHomeConfig(service_account_json=json.dumps(key), homegraph_url="https://google.test")
    fake = FakeHomeGraph()
    integ = family.srv.core.plugins.integration("google_home")  # type: ignore[attr-defined]
    monkeypatch.setattr(integ, "homegraph", HomeGraph(cfg, httpx.MockTransport(fake)))
    return fake


def google_devices(family: Family, tok: str) -> tuple[str, set[str]]:
    r = httpx.post(family.srv.url + "/plugins/google_home/fulfillment", timeout=30,
                   json={"requestId": str(uuid.uuid4()), "inputs": [{"intent": "action.devices.SYNC"}]},
                   headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200, r.text
    payload = r.json()["payload"]
    return payload["agentUserId"], {family.name_of(d["id"]) for d in payload["devices"]}


def test_an_alarm_and_a_right_taken_away_reach_the_sub_users_google_home(
        family: Family, homegraph: FakeHomeGraph, api: Any, kit: Any, tmp_path: Path) -> None:
    tok = link(family.srv, family.sub, family.google, GOOGLE_REDIRECT, GOOGLE_SCOPES)["access_token"]
    agent, devices = google_devices(family, tok)
    assert devices == {"Door", "Gate"}
    r = family.owner.post("/api/v1/subusers", json={"email": "lodger@example.com", "password": PASSWORD,
                                                    "rights": {family.cams["Gate"]: "view"}})
    assert r.status_code == 201, r.text
    lodger_tok = link(family.srv, api().login("lodger@example.com"), family.google, GOOGLE_REDIRECT,
                      GOOGLE_SCOPES)["access_token"]
    lodger, devices = google_devices(family, lodger_tok)
    assert devices == {"Gate"} and lodger != agent
    clip = kit.small_clip(tmp_path / "alarm.mp4")
    door, gate = family.cams["Door"], family.cams["Gate"]

    def alarm(cam: str) -> None:
        r = family.owner.upload(family.owner.upload_credentials(cam), clip)
        assert r.status_code == 201, r.text
        assert family.owner.wait_event(r.json()["event_id"])["verdict"] == "alarm"

    def wait(agent: str, n: int) -> list[set[str]]:
        deadline = time.monotonic() + 60
        while len(homegraph.states_for(agent)) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return homegraph.states_for(agent)

    alarm(door)
    assert wait(agent, 1) == [{door}]  # Door online in the sub-user's Google Home (a view right is enough)
    alarm(gate)
    assert wait(lodger, 1) == [{gate}]  # by then the Door alarm's reports are long sent: none to the lodger
    assert wait(agent, 2) == [{door}, {gate}]

    family.set_rights(Gate="control")  # Door taken away: Google asks for a SYNC, which no longer lists it
    assert len(wait_until(lambda: homegraph.to(agent, "/v1/devices:requestSync"))) == 1  # told after the answer
    assert google_devices(family, tok) == (agent, {"Gate"})
    assert homegraph.to(lodger, "/v1/devices:requestSync") == []


# ---------------------------------------------------------------- Realtime notifications to a sub-user's IFTTT

IFTTT_REDIRECT = "https://ifttt.com/channels/alarmcloud/authorize"
IFTTT_SCOPES = "alarms:read cameras:control storage:read"
IFTTT_KEY = "ifttt-service-key-subuser-0123456789"
REALTIME = "/v1/notifications"


def test_an_alarm_reaches_the_ifttt_of_a_sub_user_with_a_right_on_the_camera(
        family: Family, receiver: Any, monkeypatch: pytest.MonkeyPatch, kit: Any, tmp_path: Path) -> None:
    """The real IFTTT plugin with IFTTT's Realtime API faked on loopback: an alarm on Door (the sub-user's view
    right) notifies the sub-user's trigger identities and shows in its trigger timeline; one on Shed (no right)
    notifies only the owner's."""
    monkeypatch.setenv("ALARMCLOUD_IFTTT_SERVICE_KEY", IFTTT_KEY)
    monkeypatch.setenv("ALARMCLOUD_IFTTT_REALTIME_URL", receiver.url + REALTIME)
    for event_id in family.events.values():  # the fixture's alarms are done before anyone links IFTTT
        family.owner.wait_event(event_id)
    with family.srv.core.db.session() as s:  # type: ignore[attr-defined]
        client, secret = oauth.add_client(s, "IFTTT", "ifttt", [IFTTT_REDIRECT], IFTTT_SCOPES.split(),
                                          require_pkce=True)
        ifttt = (client.id, secret or "")
    sub_tok = link(family.srv, family.sub, ifttt, IFTTT_REDIRECT, IFTTT_SCOPES)["access_token"]
    owner_tok = link(family.srv, family.owner, ifttt, IFTTT_REDIRECT, IFTTT_SCOPES)["access_token"]

    def new_alarms(tok: str, identity: str, fields: dict[str, Any]) -> list[str]:
        """IFTTT polling the new_alarm trigger (which also registers the trigger identity for Realtime)."""
        r = httpx.post(family.srv.url + "/plugins/ifttt/ifttt/v1/triggers/new_alarm", timeout=30,
                       json={"trigger_identity": identity, "triggerFields": fields, "limit": 50},
                       headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 200, r.text
        return [item["meta"]["id"] for item in r.json()["data"]]

    def notified() -> list[set[str]]:
        """The trigger identities of each Realtime notification IFTTT received."""
        return [{e["trigger_identity"] for e in json.loads(r["body"])["data"]} for r in receiver.received(REALTIME)]

    def alarm(name: str) -> str:
        r = family.owner.upload(family.owner.upload_credentials(family.cams[name]), clip)
        assert r.status_code == 201, r.text
        assert family.owner.wait_event(r.json()["event_id"])["verdict"] == "alarm"
        return str(r.json()["event_id"])

    assert set(new_alarms(sub_tok, "ti-sub", {})) == {family.events["Door"], family.events["Gate"]}
    assert new_alarms(sub_tok, "ti-sub-door", {"camera": family.cams["Door"]}) == [family.events["Door"]]
    assert len(new_alarms(owner_tok, "ti-owner", {})) == 3
    clip = kit.small_clip(tmp_path / "alarm.mp4")

    shed = alarm("Shed")
    receiver.wait(1, REALTIME)
    assert notified() == [{"ti-owner"}]  # the sub-user has no right on Shed: nothing for its Applets
    door = alarm("Door")
    receiver.wait(3, REALTIME)
    # by then Shed's delivery is long over: still nothing of it reached the sub-user
    assert sorted(notified(), key=sorted) == sorted([{"ti-owner"}, {"ti-owner"}, {"ti-sub", "ti-sub-door"}],
                                                    key=sorted)
    assert {r["headers"]["IFTTT-Service-Key"] for r in receiver.received(REALTIME)} == {IFTTT_KEY}
    sub_alarms = new_alarms(sub_tok, "ti-sub", {})
    assert door in sub_alarms and shed not in sub_alarms
    assert new_alarms(sub_tok, "ti-sub-door", {"camera": family.cams["Door"]})[0] == door
    assert {door, shed} <= set(new_alarms(owner_tok, "ti-owner", {}))


# ---------------------------------------------------------------- a slow platform does not hold up the owner


class SlowPlatform:
    """A fake platform (``FakeAmazon``, ``FakeHomeGraph``) that holds every call but its token endpoint until the
    test releases it, as a slow Amazon or Google does, and then takes the calls it held newest first (a busy
    platform answers in any order); ``held`` records (path, body) of each call it held."""

    def __init__(self, fake: Callable[[httpx.Request], httpx.Response], token_path: str) -> None:
        self.fake = fake
        self.token_path = token_path
        self.held: list[tuple[str, dict[str, Any]]] = []
        self.done: set[int] = set()
        self.released = threading.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == self.token_path:
            return self.fake(request)
        n = len(self.held)
        self.held.append((request.url.path, json.loads(request.content or b"{}")))
        while not self.released.is_set() or not self.done >= set(range(n + 1, len(self.held))):
            await anyio.sleep(0.02)
        try:
            return self.fake(request)
        finally:
            self.done.add(n)

    def holding(self, match: Callable[[str, dict[str, Any]], bool], timeout: float = 30.0) -> bool:
        """Whether a call ``match`` accepts has reached the platform (and is held until the release)."""
        return bool(wait_until(lambda: [c for c in list(self.held) if match(*c)], timeout))

    def __enter__(self) -> SlowPlatform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()  # also when the test failed: the server can stop


def test_a_right_taken_away_answers_at_once_while_amazon_is_slow(
        family: Family, amazon: FakeAmazon, monkeypatch: pytest.MonkeyPatch) -> None:
    """Amazon's event gateway holds the DeleteReport: the owner's PUT answers within 5 s with the new rights, which
    hold already, and so does the next PUT that gives the camera back; once Amazon answers, the DeleteReport and
    then the AddOrUpdateReport go out, in the order of the changes."""
    sub_grant = enable_skill(family, amazon, family.sub)
    door, gate = family.cams["Door"], family.cams["Gate"]
    integ = family.srv.core.plugins.integration("alexa")  # type: ignore[attr-defined]
    with SlowPlatform(amazon, "/auth/o2/token") as slow:
        monkeypatch.setattr(integ.gateway, "transport", httpx.MockTransport(slow))
        r = family.owner.put(f"/api/v1/subusers/{family.sub.id}", json={"rights": {door: "view"}}, timeout=5)
        assert r.status_code == 200, r.text
        assert r.json() == {"id": family.sub.id, "rights": {door: "view"}}
        assert slow.holding(lambda _path, msg: msg["event"]["header"]["name"] == "DeleteReport")
        # while Amazon still holds it, the owner's next request (same connection) sees the new rights
        r = family.owner.get("/api/v1/subusers", timeout=5)
        assert r.json()["items"] == [{"id": family.sub.id, "email": SUB_EMAIL, "rights": {door: "view"}}]
        assert amazon.sent(sub_grant, "DeleteReport") == []
        r = family.owner.put(f"/api/v1/subusers/{family.sub.id}", json={"rights": {door: "view", gate: "control"}},
                             timeout=5)
        assert r.status_code == 200, r.text
        # the second change waits for the first to reach Amazon (were it sent now, Amazon took it first)
        assert not slow.holding(lambda _path, msg: msg["event"]["header"]["name"] == "AddOrUpdateReport", 1.0)
        slow.released.set()
        adds = amazon.wait_for(sub_grant, "AddOrUpdateReport")
    names = [m["event"]["header"]["name"] for t, m in amazon.reports if t == sub_grant]
    assert [n for n in names if n in ("DeleteReport", "AddOrUpdateReport")] == ["DeleteReport", "AddOrUpdateReport"]
    assert [endpoints(e) for e in amazon.sent(sub_grant, "DeleteReport")] == [{gate, gate + ":motion"}]
    assert [{e["endpointId"] for e in a["payload"]["endpoints"]} & {door, gate} for a in adds] == [{gate}]


def test_a_right_taken_away_answers_at_once_while_google_is_slow(
        family: Family, homegraph: FakeHomeGraph, monkeypatch: pytest.MonkeyPatch) -> None:
    """HomeGraph holds the Request Sync: the PUT answers within 5 s, Google's SYNC (over HTTP meanwhile) lists the
    new rights, and the Request Sync reaches Google once it answers."""
    tok = link(family.srv, family.sub, family.google, GOOGLE_REDIRECT, GOOGLE_SCOPES)["access_token"]
    agent, devices = google_devices(family, tok)
    assert devices == {"Door", "Gate"}
    integ = family.srv.core.plugins.integration("google_home")  # type: ignore[attr-defined]
    with SlowPlatform(homegraph, "/token") as slow:
        monkeypatch.setattr(integ.homegraph, "transport", httpx.MockTransport(slow))
        r = family.owner.put(f"/api/v1/subusers/{family.sub.id}", json={"rights": {family.cams["Gate"]: "control"}},
                             timeout=5)
        assert r.status_code == 200, r.text
        assert r.json() == {"id": family.sub.id, "rights": {family.cams["Gate"]: "control"}}
        assert slow.holding(lambda path, body: path == "/v1/devices:requestSync" and body["agentUserId"] == agent)
        assert google_devices(family, tok) == (agent, {"Gate"})
        assert homegraph.to(agent, "/v1/devices:requestSync") == []
        slow.released.set()
        assert len(wait_until(lambda: homegraph.to(agent, "/v1/devices:requestSync"))) == 1


def test_a_failing_announcement_is_logged_and_the_rights_stay(
        family: Family, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    core: Any = family.srv.core

    async def broken(event: Any) -> None:
        raise RuntimeError("the integrations are broken")

    monkeypatch.setattr(core, "tell_integrations", broken)
    with caplog.at_level(logging.ERROR, logger="alarmcloud.subusers"):
        family.set_rights(Door="view")  # the answer is 200: the rights are committed
        assert wait_until(lambda: [rec for rec in list(caplog.records) if rec.name == "alarmcloud.subusers"
                                   and "new rights failed" in rec.getMessage()])
    r = family.owner.get("/api/v1/subusers")
    assert r.json()["items"] == [{"id": family.sub.id, "email": SUB_EMAIL, "rights": {family.cams["Door"]: "view"}}]
    family.set_rights(Door="view", Gate="view")  # the next change goes through as well
