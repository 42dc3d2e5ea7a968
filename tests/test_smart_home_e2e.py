"""Alexa and Google Home against the real server: accounts linked through the OAuth consent page and token
endpoint, two fake INSTAR cameras, Amazon and Google faked on loopback; every message checked against the schemas.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
import uvicorn
from alarmcloud import crypto, oauth
from alarmcloud.models import utcnow
from alarmcloud.oauth_models import OAuthToken
from alarmcloud.testing import LiveServer, static_scene, test_settings
from alarmcloud_camera_instar.testing import FakeInstarCamera
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlmodel import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

jsonschema = pytest.importorskip("jsonschema")

SHARED = Path(os.environ.get("ALARMCLOUD_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
ALEXA_SCHEMA = SHARED / "schemas" / "alexa" / "alexa_smart_home_message_schema.json"
SAMPLES = SHARED / "schemas" / "alexa" / "sample_messages"
GOOGLE = SHARED / "schemas" / "google"
pytestmark = pytest.mark.skipif(not ALEXA_SCHEMA.exists() or not (GOOGLE / "intents").exists(),
                                reason=f"the Alexa and Google schemas are not under {SHARED}")

CAM_PASSWORD = "Cam-Pw-7f3Kx9q"
ALEXA_REDIRECT = "https://layla.amazon.com/api/skill/link/M2TESTVENDOR"
GOOGLE_REDIRECT = "https://oauth-redirect.googleusercontent.com/r/alarmcloud-test"
ALEXA_SCOPES = "cameras:stream cameras:control alarms:read"
GOOGLE_SCOPES = "cameras:stream cameras:control"
ONOFF = "action.devices.commands.OnOff"
STREAM = "action.devices.commands.GetCameraStream"
# the docs use deviceOffline, the 2021 schema enum lacks it (reference §0); not expected here anyway
GOOGLE_CODES = set(json.loads((GOOGLE / "platform" / "errors.schema.json").read_text())["enum"]) \
    if (GOOGLE / "platform" / "errors.schema.json").exists() else set()


# ---------------------------------------------------------------- Amazon and Google on loopback


class FakePlatforms:
    """Login with Amazon, the Alexa event gateway, Google's token endpoint and HomeGraph on one loopback server."""

    def __init__(self, google_key: rsa.RSAPublicKey) -> None:
        self.google_key = google_key
        self.lwa: list[dict[str, str]] = []
        self.alexa_events: list[dict[str, Any]] = []
        self.gateway_replies: list[tuple[int, dict[str, Any]]] = []
        self.homegraph: list[tuple[str, dict[str, Any]]] = []
        self.bodies: list[str] = []  # everything Amazon and Google received, for the password check
        self.url = ""

    async def _lwa(self, request: Request) -> Response:
        form = dict(parse_qs((await request.body()).decode()))
        self.lwa.append({k: v[0] for k, v in form.items()})
        n = len(self.lwa)
        return JSONResponse({"access_token": f"Atza|e2e-{n}", "refresh_token": f"Atzr|e2e-{n}",
                             "token_type": "bearer", "expires_in": 3600})

    async def _gateway(self, request: Request) -> Response:
        body = (await request.body()).decode()
        self.bodies.append(body)
        self.alexa_events.append(json.loads(body))
        assert request.headers["authorization"].startswith("Bearer Atza|e2e-")
        if self.gateway_replies:
            status, reply = self.gateway_replies.pop(0)
            return JSONResponse(reply, status_code=status)
        return Response(status_code=202)

    async def _google_token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        head, claims, sig = form["assertion"].split(".")

        def pad(s: str) -> bytes:
            return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

        self.google_key.verify(pad(sig), f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return JSONResponse({"access_token": "ya29.e2e", "expires_in": 3600})

    async def _homegraph(self, request: Request) -> Response:
        assert request.headers["authorization"] == "Bearer ya29.e2e"
        body = (await request.body()).decode()
        self.bodies.append(body)
        self.homegraph.append((request.url.path, json.loads(body)))
        return JSONResponse({})

    def start(self) -> FakePlatforms:
        app = Starlette(routes=[Route("/auth/o2/token", self._lwa, methods=["POST"]),
                                Route("/v3/events", self._gateway, methods=["POST"]),
                                Route("/google/token", self._google_token, methods=["POST"]),
                                Route("/v1/devices:reportStateAndNotification", self._homegraph, methods=["POST"]),
                                Route("/v1/devices:requestSync", self._homegraph, methods=["POST"])])
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True).start()
        while not self.server.started:
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True

    def reports(self) -> list[dict[str, Any]]:
        return [b for p, b in self.homegraph if p.endswith("reportStateAndNotification")]


# ---------------------------------------------------------------- schemas


ALEXA_VALIDATOR = jsonschema.Draft4Validator(json.loads(ALEXA_SCHEMA.read_text()),
                                             format_checker=jsonschema.FormatChecker()) \
    if ALEXA_SCHEMA.exists() else None


def check_alexa(message: dict[str, Any]) -> dict[str, Any]:
    err = jsonschema.exceptions.best_match(ALEXA_VALIDATOR.iter_errors(message))  # type: ignore[union-attr]
    assert err is None, f"{err.message} at {list(err.absolute_path)}\n{json.dumps(message, indent=1)}"
    return message


def check_google(rel: str, message: Any) -> Any:
    validator = jsonschema.Draft7Validator(json.loads((GOOGLE / rel).read_text()),
                                           format_checker=jsonschema.FormatChecker())
    err = jsonschema.exceptions.best_match(validator.iter_errors(message))
    assert err is None, f"{rel}: {err.message} at {list(err.absolute_path)}\n{json.dumps(message, indent=1)}"
    for code in re.findall(r'"errorCode": "([^"]*)"', json.dumps(message)):
        assert code in GOOGLE_CODES, code
    return message


def alexa_directive(sample: str, token: str, endpoint_id: str | None = None) -> dict[str, Any]:
    """One of Amazon's sample directives, addressed to our token (and endpoint)."""
    body = json.loads((SAMPLES / sample).read_text())
    d = body["directive"]
    if "endpoint" in d:
        d["endpoint"]["scope"]["token"] = token
        d["endpoint"]["endpointId"] = endpoint_id
    elif "grantee" in d["payload"]:
        d["payload"]["grantee"]["token"] = token
    else:
        d["payload"]["scope"]["token"] = token
    return body


DISCOVER = "Discovery/Discovery.request.json"
REPORT_STATE = "StateReport/ReportState.json"
TURN_OFF = "PowerController/PowerController.TurnOff.request.json"
CAMERA_STREAMS = "CameraStreamController/CameraStreamController.request.json"
ACCEPT_GRANT = "Authorization/Authorization.AcceptGrant.request.json"


def props(resp: dict[str, Any]) -> dict[tuple[str, str], Any]:
    return {(p["namespace"], p["name"]): p["value"] for p in resp["context"]["properties"]}


def execute(dev: str, command: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"commands": [{"devices": [{"id": dev}], "execution": [{"command": command, "params": params}]}]}


# ---------------------------------------------------------------- the linked account


def link(url: str, user: Any, client_id: str, secret: str, redirect: str, scope: str, pkce: bool) -> dict[str, Any]:
    """Link as the platforms do: consent page, Allow, code to the redirect URI, code exchange at /oauth/token.

    Alexa (``pkce``): S256 challenge, client credentials by HTTP Basic; Google: no PKCE, credentials in the body.
    """
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect, "state": "st-9",
              "scope": scope}
    verifier = secrets.token_urlsafe(48)
    if pkce:
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        params.update(code_challenge=challenge, code_challenge_method="S256")
    page = user.http.get("/oauth/authorize?" + urlencode(params))
    assert page.status_code == 200, page.text
    csrf = re.search(r'name=csrf_token value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = user.http.post("/oauth/authorize?" + urlencode(params), data={"csrf_token": csrf, "decision": "approve"})
    assert r.status_code == 303, r.text
    loc = urlparse(r.headers["location"])
    assert f"{loc.scheme}://{loc.netloc}{loc.path}" == redirect and parse_qs(loc.query)["state"] == ["st-9"]
    form = {"grant_type": "authorization_code", "code": parse_qs(loc.query)["code"][0], "redirect_uri": redirect}
    if pkce:
        r = httpx.post(url + "/oauth/token", data={**form, "code_verifier": verifier}, auth=(client_id, secret))
    else:
        r = httpx.post(url + "/oauth/token", data={**form, "client_id": client_id, "client_secret": secret})
    assert r.status_code == 200, r.text
    tok = r.json()
    assert set(tok["scope"].split()) == set(scope.split()) and tok["refresh_token"]
    return tok


@dataclass
class World:
    srv: LiveServer
    user: Any
    platforms: FakePlatforms
    front: FakeInstarCamera  # Full HD, "Front door"
    garden: FakeInstarCamera  # WQHD, "Garden"
    front_id: str
    garden_id: str
    alexa_client: tuple[str, str]
    google_client: tuple[str, str]
    alexa_token: str = ""
    google_token: str = ""
    responses: list[str] = field(default_factory=list)  # every answer the platforms got, for the password check

    def alexa(self, body: dict[str, Any]) -> dict[str, Any]:
        r = httpx.post(self.srv.url + "/plugins/alexa/directive", json=body, timeout=30)
        assert r.status_code == 200, r.text
        self.responses.append(r.text)
        return check_alexa(r.json())

    def alexa_error(self, token: str, endpoint_id: str | None = None) -> str | None:
        resp = self.alexa(alexa_directive(REPORT_STATE, token, endpoint_id or self.front_id))
        return resp["event"]["payload"].get("type")

    def google(self, intent: str, payload: dict[str, Any] | None = None, token: str | None = None) -> httpx.Response:
        name = intent.lower()
        body: dict[str, Any] = {"requestId": str(uuid.uuid4()), "inputs": [{"intent": f"action.devices.{intent}"}]}
        if payload is not None:
            body["inputs"][0]["payload"] = payload
        check_google(f"intents/{name}/{name}.request.schema.json", body)
        r = httpx.post(self.srv.url + "/plugins/google_home/fulfillment", json=body, timeout=30,
                       headers={"Authorization": f"Bearer {token or self.google_token}"})
        self.responses.append(r.text)
        check_google(f"intents/{name}/{name}.response.schema.json", r.json())
        if intent != "DISCONNECT":
            assert r.json()["requestId"] == body["requestId"]
        return r

    def google_auth(self, token: str) -> tuple[int, str | None]:
        r = self.google("SYNC", token=token)
        return r.status_code, r.json()["payload"].get("errorCode")

    def refresh(self, refresh_token: str, platform: str) -> httpx.Response:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if platform == "alexa":
            return httpx.post(self.srv.url + "/oauth/token", data=form, auth=self.alexa_client)
        cid, secret = self.google_client
        return httpx.post(self.srv.url + "/oauth/token", data={**form, "client_id": cid, "client_secret": secret})

    def expire(self, token: str) -> None:
        """Let an access token's hour run out."""
        with self.srv.core.db.session() as s:  # type: ignore[attr-defined]
            row = s.exec(select(OAuthToken).where(OAuthToken.access_hash == crypto.token_hash(token))).one()
            row.access_expires_at = utcnow() - timedelta(seconds=1)
            s.add(row)
            s.commit()

    def link_alexa(self) -> dict[str, Any]:
        tok = link(self.srv.url, self.user, *self.alexa_client, ALEXA_REDIRECT, ALEXA_SCOPES, pkce=True)
        self.alexa_token = tok["access_token"]
        return tok

    def link_google(self) -> dict[str, Any]:
        tok = link(self.srv.url, self.user, *self.google_client, GOOGLE_REDIRECT, GOOGLE_SCOPES, pkce=False)
        self.google_token = tok["access_token"]
        return tok

    def links(self) -> set[str]:
        return {i["integration"] for i in self.user.get("/api/v1/me/links").json()["items"]}

    def wait(self, what: Callable[[], Any], timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while not (found := what()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return found


@pytest.fixture
def world(tmp_path: Path, api_at: Any, caplog: pytest.LogCaptureFixture) -> Iterator[World]:
    caplog.set_level(logging.DEBUG)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    platforms = FakePlatforms(key.public_key()).start()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    service_account = {"type": "service_account", "client_email": "homegraph@alarmcloud-test.iam.gserviceaccount.com",
                       "private_key": pem, "private_key_id": "k1", "token_uri": platforms.url + "/google/token"}
    st = test_settings(tmp_path / "d", camera_networks=["127.0.0.0/8"], plugin={
        "alexa": {"lwa_client_id": "amzn1.application-oa2-client.e2e", "lwa_client_secret": "skill-secret",
                  "lwa_token_url": platforms.url + "/auth/o2/token",
                  "event_gateway_url": platforms.url + "/v3/events", "http_retries": 1},
        "google_home": {"service_account_json": json.dumps(service_account), "homegraph_url": platforms.url,
                        "stream_url_template": "https://cams.example.com/{camera_id}/index.m3u8",
                        "http_retries": 1}})
    try:
        with LiveServer(st) as srv, FakeInstarCamera("fullhd", password=CAM_PASSWORD) as front, \
                FakeInstarCamera("wqhd", password=CAM_PASSWORD) as garden:
            user = api_at(srv.url).register("smart-home@example.com")
            cams = [user.camera(name, model=model, host="127.0.0.1", port=fake.port, username="admin",
                                password=CAM_PASSWORD)
                    for name, model, fake in (("Front door", "IN-9008 Full HD", front),
                                              ("Garden", "IN-9420 2K+", garden))]
            with srv.core.db.session() as s:  # type: ignore[attr-defined]
                alexa, alexa_secret = oauth.add_client(s, "Alexa", "alexa", [ALEXA_REDIRECT], ALEXA_SCOPES.split(),
                                                       require_pkce=True)
                google, google_secret = oauth.add_client(s, "Google Home", "google_home", [GOOGLE_REDIRECT],
                                                         GOOGLE_SCOPES.split())
                clients = (alexa.id, alexa_secret or ""), (google.id, google_secret or "")
            w = World(srv, user, platforms, front, garden, cams[0]["id"], cams[1]["id"], *clients)
            w.link_alexa()
            w.link_google()
            yield w
    finally:
        platforms.stop()


def accept_grant_and_sync(w: World) -> None:
    """What Alexa does right after linking (AcceptGrant) and Google's first SYNC: proactive reports start."""
    resp = w.alexa(alexa_directive(ACCEPT_GRANT, w.alexa_token))
    assert resp["event"]["header"]["name"] == "AcceptGrant.Response"
    assert w.platforms.lwa[-1]["grant_type"] == "authorization_code"
    assert w.google("SYNC").status_code == 200


# ---------------------------------------------------------------- the tests


def test_discovery_motion_detection_and_streams(world: World, caplog: pytest.LogCaptureFixture) -> None:
    w = world
    accept_grant_and_sync(w)

    # discovery and SYNC list both cameras
    eps = w.alexa(alexa_directive(DISCOVER, w.alexa_token))["event"]["payload"]["endpoints"]
    by_category = {(e["displayCategories"][0], e["endpointId"]): e["friendlyName"] for e in eps}
    assert by_category == {("CAMERA", w.front_id): "Front door", ("CAMERA", w.garden_id): "Garden",
                           ("MOTION_SENSOR", f"{w.front_id}:motion"): "Front door alarm",
                           ("MOTION_SENSOR", f"{w.garden_id}:motion"): "Garden alarm"}
    sync = w.google("SYNC").json()["payload"]
    assert {d["id"]: d["name"]["name"] for d in sync["devices"]} == {w.front_id: "Front door", w.garden_id: "Garden"}
    assert sync["agentUserId"] not in (w.user.id, w.user.email)  # pseudonymous

    # motion detection off through Alexa reaches the Full HD camera (its alarm areas)...
    assert w.front.state["areas"][1]["enable"] == "1"
    resp = w.alexa(alexa_directive(TURN_OFF, w.alexa_token, w.front_id))
    assert props(resp)[("Alexa.PowerController", "powerState")] == "OFF"
    assert all(area["enable"] == "0" for area in w.front.state["areas"].values())
    # ... and through Google the WQHD camera (its alarm switch)
    assert w.garden.state["alarm"]["armed"] == "1"
    cmds = w.google("EXECUTE", execute(w.garden_id, ONOFF, {"on": False})).json()["payload"]["commands"]
    assert cmds == [{"ids": [w.garden_id], "status": "SUCCESS", "states": {"online": True, "on": False}}]
    assert w.garden.state["alarm"]["armed"] == "0"
    assert w.front.state["areas"][1]["enable"] == "0"  # untouched by the Google command

    # each platform sees the change the other made, on request and proactively
    state = props(w.alexa(alexa_directive(REPORT_STATE, w.alexa_token, w.garden_id)))
    assert state[("Alexa.PowerController", "powerState")] == "OFF"
    query = w.google("QUERY", {"devices": [{"id": w.front_id}]}).json()["payload"]["devices"]
    assert query == {w.front_id: {"online": True, "on": False, "status": "SUCCESS"}}
    changes = [e for e in w.platforms.alexa_events if e["event"]["header"]["name"] == "ChangeReport"]
    assert [(c["event"]["endpoint"]["endpointId"], c["event"]["payload"]["change"]["properties"][0]["value"])
            for c in changes] == [(w.front_id, "OFF"), (w.garden_id, "OFF")]
    assert [r["payload"]["devices"]["states"] for r in w.platforms.reports()] == [
        {w.front_id: {"online": True, "on": False}}, {w.garden_id: {"online": True, "on": False}}]
    for report in w.platforms.reports():
        for states in report["payload"]["devices"]["states"].values():
            check_google("traits/onoff/onoff.states.schema.json", {"on": states["on"]})

    # live view: Alexa gets the camera's RTSP URL and an image, Google the relay's HLS URL
    streams = w.alexa(alexa_directive(CAMERA_STREAMS, w.alexa_token, w.front_id))["event"]["payload"]
    assert streams["cameraStreams"][0]["uri"] == "rtsp://127.0.0.1/11"
    assert streams["imageUri"] == f"http://127.0.0.1:{w.front.port}/tmpfs/snap.jpg"
    params = {"StreamToChromecast": True, "SupportedStreamProtocols": ["hls", "dash"]}
    check_google("traits/camerastream/getcamerastream.params.schema.json", params)
    cmd = w.google("EXECUTE", execute(w.garden_id, STREAM, params)).json()["payload"]["commands"][0]
    results = {k: v for k, v in cmd["states"].items() if k != "online"}
    check_google("traits/camerastream/getcamerastream.results.schema.json", results)
    assert results == {"cameraStreamAccessUrl": f"https://cams.example.com/{w.garden_id}/index.m3u8",
                       "cameraStreamProtocol": "hls"}

    # the camera password reached no platform and no log line (the server's and plugins' logs are captured)
    assert f"alexa: stream initialised for camera {w.front_id}" in caplog.text
    for text in w.responses + w.platforms.bodies + [caplog.text]:
        assert CAM_PASSWORD not in text
    for text in w.responses + w.platforms.bodies:  # the platforms know the customer by a pseudonym only
        assert w.user.id not in text and w.user.email not in text
    for message in w.platforms.alexa_events:
        check_alexa(message)

    # only where the customer allowed integrations to use the camera login does the Alexa stream URL carry it
    r = w.user.patch(f"/api/v1/cameras/{w.front_id}", json={"integrations_may_use_credentials": True})
    assert r.status_code == 200, r.text
    r = httpx.post(w.srv.url + "/plugins/alexa/directive", timeout=30,
                   json=alexa_directive(CAMERA_STREAMS, w.alexa_token, w.front_id))
    payload = check_alexa(r.json())["event"]["payload"]
    assert payload["cameraStreams"][0]["uri"] == f"rtsp://admin:{CAM_PASSWORD}@127.0.0.1/11"
    assert CAM_PASSWORD not in caplog.text
    assert all(CAM_PASSWORD not in b for b in w.platforms.bodies)  # not in the AddOrUpdateReport either


def test_auth_errors_expiry_and_unlinking_on_both_sides(world: World) -> None:
    w = world
    assert w.alexa(alexa_directive(REPORT_STATE, w.alexa_token, w.front_id))["event"]["header"]["name"] == \
        "StateReport"
    assert w.google_auth(w.google_token) == (200, None)

    # a wrong token, and each platform's token at the other platform
    assert w.alexa_error("aco_" + "x" * 43) == "INVALID_AUTHORIZATION_CREDENTIAL"
    assert w.alexa_error(w.google_token) == "INVALID_AUTHORIZATION_CREDENTIAL"
    assert w.google_auth("aco_wrong") == (401, "authFailure")
    assert w.google_auth(w.alexa_token) == (401, "authFailure")
    assert w.alexa(alexa_directive(DISCOVER, "aco_wrong"))["event"]["payload"]["endpoints"] == []

    # an expired token: Alexa is told to refresh (not to relink), Google gets the 401 it refreshes on
    refresh_tokens = {"alexa": w.link_alexa()["refresh_token"], "google": w.link_google()["refresh_token"]}
    w.expire(w.alexa_token)
    w.expire(w.google_token)
    assert w.alexa_error(w.alexa_token) == "EXPIRED_AUTHORIZATION_CREDENTIAL"
    assert w.alexa_error(w.alexa_token, f"{w.front_id}:motion") == "EXPIRED_AUTHORIZATION_CREDENTIAL"
    assert w.google_auth(w.google_token) == (401, "authFailure")
    for platform in ("alexa", "google"):
        r = w.refresh(refresh_tokens[platform], platform)
        assert r.status_code == 200, r.text
        setattr(w, f"{platform}_token", r.json()["access_token"])
    assert w.alexa_error(w.alexa_token) is None
    assert w.google_auth(w.google_token) == (200, None)

    # the customer unlinks Alexa on our side: its devices leave Alexa (a DeleteReport), its tokens die and
    # nothing more goes to Amazon
    accept_grant_and_sync(w)
    r = w.user.delete(f"/api/v1/me/links/{w.alexa_client[0]}")
    assert r.status_code == 204
    gone = w.platforms.alexa_events[-1]["event"]
    assert gone["header"]["name"] == "DeleteReport"
    assert {e["endpointId"] for e in gone["payload"]["endpoints"]} == {
        w.front_id, f"{w.front_id}:motion", w.garden_id, f"{w.garden_id}:motion"}
    assert w.links() == {"google_home"}
    assert w.alexa_error(w.alexa_token) == "INVALID_AUTHORIZATION_CREDENTIAL"
    assert w.alexa(alexa_directive(DISCOVER, w.alexa_token))["event"]["payload"]["endpoints"] == []
    r = w.refresh(refresh_tokens["alexa"], "alexa")
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    sent, reported = len(w.platforms.alexa_events), len(w.platforms.reports())
    r = w.user.post(f"/api/v1/cameras/{w.front_id}/actions", json={"action": "motion_detection", "value": False})
    assert r.status_code == 200, r.text
    assert len(w.platforms.reports()) == reported + 1  # Google is still linked
    assert len(w.platforms.alexa_events) == sent

    # relinked, then the skill disabled on Amazon's side: our grant goes at the next event
    w.link_alexa()
    accept_grant_and_sync(w)
    assert w.links() == {"alexa", "google_home"}
    w.platforms.gateway_replies = [(403, {"header": {"namespace": "System", "name": "Exception"},
                                          "payload": {"code": "SKILL_DISABLED_EXCEPTION",
                                                      "description": "The skill is disabled"}})]
    r = w.user.post(f"/api/v1/cameras/{w.front_id}/actions", json={"action": "motion_detection", "value": True})
    assert r.status_code == 200, r.text
    assert w.links() == {"google_home"}
    assert w.alexa_error(w.alexa_token) == "INVALID_AUTHORIZATION_CREDENTIAL"

    # Google's DISCONNECT: the grant on our side goes, the token dies, no more Report State
    r = w.google("DISCONNECT")
    assert r.status_code == 200 and r.json() == {}
    assert w.links() == set()
    assert w.google_auth(w.google_token) == (401, "authFailure")
    assert w.refresh(refresh_tokens["google"], "google").status_code == 400
    reported = len(w.platforms.homegraph)
    r = w.user.post(f"/api/v1/cameras/{w.garden_id}/actions", json={"action": "motion_detection", "value": True})
    assert r.status_code == 200, r.text
    assert len(w.platforms.homegraph) == reported
    for message in w.platforms.alexa_events:
        if message["event"]["header"]["name"] != "DeleteReport":  # not in Amazon's schema (reference §2.8)
            check_alexa(message)


def test_alarm_clip_reaches_alexa_and_google(world: World, clip: Path, make_test_clip: Any) -> None:
    w = world
    accept_grant_and_sync(w)
    creds = w.user.upload_credentials(w.front_id)

    # a clip where nothing moves is a false alarm: neither platform hears of it
    r = w.user.upload(creds, make_test_clip("still", seconds=18, fps=15, scene=static_scene))
    assert r.status_code == 201, r.text
    assert w.user.wait_event(r.json()["event_id"])["verdict"].startswith("false_alarm")

    # a clip with a mover is an alarm: Alexa's motion sensor detects, Google learns the camera is online
    r = w.user.upload(creds, clip)  # 18 s, a box walking through the scene
    assert r.status_code == 201, r.text
    clip_id = r.json()["clip_id"]
    assert w.user.wait_event(r.json()["event_id"])["verdict"] == "alarm"
    sensor = f"{w.front_id}:motion"
    change = w.wait(lambda: [e for e in w.platforms.alexa_events if e["event"]["header"]["name"] == "ChangeReport"])
    assert len(change) == 1
    event = check_alexa(change[0])["event"]
    assert event["endpoint"]["endpointId"] == sensor
    assert event["payload"]["change"]["properties"][0]["value"] == "DETECTED"
    assert event["endpoint"]["scope"]["token"] == "Atza|e2e-1"  # the event-gateway token from AcceptGrant
    report = w.wait(lambda: [b for b in w.platforms.reports() if b.get("eventId") == f"alarm-{clip_id}"])
    # (no "on": nobody has switched motion detection through us yet, so its state is unknown)
    assert report and report[0]["payload"]["devices"]["states"] == {w.front_id: {"online": True}}
    assert report[0]["agentUserId"] == w.google("SYNC").json()["payload"]["agentUserId"]
    assert len(w.platforms.reports()) == 1  # the still clip reported nothing
    state = props(w.alexa(alexa_directive(REPORT_STATE, w.alexa_token, sensor)))
    assert state[("Alexa.MotionSensor", "detectionState")] == "DETECTED"
    assert state[("Alexa.MotionSensor", "detectionState")] != props(w.alexa(alexa_directive(
        REPORT_STATE, w.alexa_token, f"{w.garden_id}:motion")))[("Alexa.MotionSensor", "detectionState")]
