"""The whole IFTTT link as IFTTT performs it: OAuth with PKCE, then triggers, actions (fake INSTAR), queries."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import uvicorn
from alarmcloud import oauth
from alarmcloud.events import DETECTIONS_READY, Event
from alarmcloud.testing import LiveServer, test_settings
from alarmcloud_camera_instar.testing import FakeInstarCamera
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

KEY = "ifttt-service-key-e2e-0123456789"
REDIRECT = "https://ifttt.com/channels/alarmcloud/authorize"
BASE = "/plugins/ifttt/ifttt/v1"


def _fake_realtime(calls: list[Any]) -> tuple[str, uvicorn.Server]:
    async def notifications(request: Request) -> JSONResponse:
        calls.append(await request.json())
        return JSONResponse({})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/v1/notifications", notifications,
                                                                   methods=["POST"])]), log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{sock.getsockname()[1]}/v1/notifications", server


def test_ifttt_link_end_to_end(tmp_path: Path, api: Any) -> None:
    calls: list[Any] = []
    rt_url, rt_server = _fake_realtime(calls)
    st = test_settings(tmp_path / "d", camera_networks=["127.0.0.0/8"],
                       plugin={"ifttt": {"service_key": KEY, "realtime_url": rt_url}})
    with LiveServer(st) as srv, FakeInstarCamera("fullhd", password="S3cret!pass") as fake:
        core: Any = srv.core
        with core.db.session() as s:
            client, secret = oauth.add_client(s, "IFTTT", "ifttt", [REDIRECT],
                                              ["alarms:read", "cameras:control", "storage:read"])
            client_id = client.id
        user = type(api())(srv.url).register("ifttt-user@example.com")
        cam = user.camera("Gate", model="IN-9020 Full HD", host="127.0.0.1", port=fake.port, username="admin",
                          password="S3cret!pass")
        other = type(api())(srv.url).register("other@example.com")
        foreign = other.camera("Not yours", host="127.0.0.1", port=fake.port, username="admin",
                               password="S3cret!pass")

        # OAuth: authorize with PKCE → consent → code → token → refresh
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        url = "/oauth/authorize?" + urlencode({"response_type": "code", "client_id": client_id, "scope": "ifttt",
                                               "redirect_uri": REDIRECT, "state": "s1", "code_challenge": challenge,
                                               "code_challenge_method": "S256"})
        page = user.http.get(url)
        csrf = re.search(r'name=csrf_token value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        r = user.http.post(url, data={"csrf_token": csrf, "decision": "approve"})
        code = parse_qs(urlparse(r.headers["location"]).query)["code"][0]
        r = httpx.post(srv.url + "/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                                        "redirect_uri": REDIRECT, "code_verifier": verifier,
                                                        "client_id": client_id, "client_secret": secret})
        assert r.status_code == 200, r.text
        r = httpx.post(srv.url + "/oauth/token", data={"grant_type": "refresh_token",
                                                        "refresh_token": r.json()["refresh_token"]},
                       auth=(client_id, secret or ""))
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        h = {"Authorization": f"Bearer {token}"}

        def post(path: str, body: dict[str, Any]) -> httpx.Response:
            return httpx.post(srv.url + BASE + path, json=body, headers=h, timeout=30)

        assert httpx.get(srv.url + BASE + "/user/info", headers=h).json()["data"]["id"]
        for slug, fields in [("new_alarm", {"camera": cam["id"]}), ("alarm_with_detection", {"label": "rain"}),
                             ("plate_recognised", {}), ("storage_almost_full", {})]:
            r = post(f"/triggers/{slug}", {"trigger_identity": f"ti-{slug}", "triggerFields": fields})
            assert r.status_code == 200 and r.json() == {"data": []}, r.text
        opts = post("/actions/motion_detection/fields/camera/options", {}).json()["data"]
        assert [o["value"] for o in opts] == [cam["id"]]

        # actions reach the fake camera
        before = len(fake.cgi_requests())
        for slug, fields in [("motion_detection", {"on": "off"}), ("alarm_email", {"on": "on"}),
                             ("go_to_preset", {"preset": "2"}), ("alarm_area", {"area": "2", "on": "on"}),
                             ("area_sensitivity", {"area": "1", "sensitivity": "70"}),
                             ("change_alarm_settings", {"motion_detection": "on", "alarm_email": "off"})]:
            r = post(f"/actions/{slug}", {"actionFields": {"camera": cam["id"], **fields}, "user": {}})
            assert r.status_code == 200, (slug, r.text)
        assert len(fake.cgi_requests()) > before
        # another user's camera: SKIP, and the camera sees nothing
        before = len(fake.requests)
        r = post("/actions/motion_detection", {"actionFields": {"camera": foreign["id"], "on": "off"}})
        assert r.status_code == 400 and r.json()["errors"][0]["status"] == "SKIP"
        assert len(fake.requests) == before

        for slug in ("list_alarms", "storage_status"):
            assert post(f"/queries/{slug}", {"queryFields": {}}).status_code == 200

        # a new alarm → realtime notification for the camera's trigger identity
        core.emit_sync(Event(DETECTIONS_READY, user.id, cam["id"], {"verdict": "alarm", "findings": []}))
        deadline = time.monotonic() + 10
        while not calls and time.monotonic() < deadline:
            time.sleep(0.05)
        assert calls and {"trigger_identity": "ti-new_alarm"} in calls[0]["data"]

        # revoked token → 401
        httpx.post(srv.url + "/oauth/revoke", data={"token": token}, auth=(client_id, secret or ""))
        r = post("/triggers/new_alarm", {"triggerFields": {}})
        assert r.status_code == 401 and r.json()["errors"]
    rt_server.should_exit = True
