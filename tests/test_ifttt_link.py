"""The whole IFTTT link as IFTTT performs it: OAuth with PKCE, then triggers, actions (fake INSTAR), queries, Realtime."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
import uvicorn
from alarmcloud import oauth
from alarmcloud.testing import LiveServer, test_settings
from alarmcloud_camera_instar.testing import FakeInstarCamera
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

KEY = "ifttt-service-key-e2e-0123456789"
REDIRECT = "https://ifttt.com/channels/alarmcloud/authorize"
BASE = "/plugins/ifttt/ifttt/v1"
CAM_PASSWORD = "S3cret!pass"
ALL_SCOPES = ["alarms:read", "cameras:control", "storage:read"]


class FakeRealtime:
    """IFTTT's Realtime endpoint on loopback: records each notification body."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

        async def notifications(request: Request) -> JSONResponse:
            self.calls.append(await request.json())
            return JSONResponse({})

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1/notifications"
        self.server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/v1/notifications", notifications,
                                                                            methods=["POST"])]), log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)

    def identities(self) -> list[str]:
        return [e.get("trigger_identity", "") for c in self.calls for e in c["data"]]

    def wait_for(self, identity: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while identity not in self.identities():
            assert time.monotonic() < deadline, f"no Realtime notification for {identity}: {self.calls}"
            time.sleep(0.05)


@pytest.fixture
def realtime() -> Iterator[FakeRealtime]:
    fake = FakeRealtime()
    yield fake
    fake.server.should_exit = True
    fake.thread.join(timeout=5)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def link(srv: LiveServer, user: Any, client_id: str, secret: str) -> dict[str, Any]:
    """IFTTT's account linking: consent page with PKCE, the customer allows, code → token (body credentials)."""
    verifier, challenge = pkce()
    url = "/oauth/authorize?" + urlencode({"response_type": "code", "client_id": client_id, "scope": "ifttt",
                                           "redirect_uri": REDIRECT, "state": "s1", "code_challenge": challenge,
                                           "code_challenge_method": "S256"})
    page = user.http.get(url)
    assert page.status_code == 200, page.text
    csrf = re.search(r'name=csrf_token value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = user.http.post(url, data={"csrf_token": csrf, "decision": "approve"})
    assert r.status_code == 303
    q = parse_qs(urlparse(r.headers["location"]).query)
    assert q["state"] == ["s1"]
    r = httpx.post(srv.url + "/oauth/token", data={"grant_type": "authorization_code", "code": q["code"][0],
                                                    "redirect_uri": REDIRECT, "code_verifier": verifier,
                                                    "client_id": client_id, "client_secret": secret})
    assert r.status_code == 200, r.text
    return dict(r.json())


class Ifttt:
    """IFTTT calling the service API with one user's access token; keeps every body it received."""

    def __init__(self, srv: LiveServer, token: str) -> None:
        self.srv, self.token = srv, token
        self.seen: list[str] = []

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        r = httpx.post(self.srv.url + BASE + path, json=body, timeout=60,
                       headers={"Authorization": f"Bearer {self.token}", "X-Request-ID": secrets.token_hex(8)})
        self.seen.append(r.text)
        return r

    def get(self, path: str) -> httpx.Response:
        r = httpx.get(self.srv.url + BASE + path, headers={"Authorization": f"Bearer {self.token}"})
        self.seen.append(r.text)
        return r

    def trigger(self, slug: str, fields: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
        r = self.post(f"/triggers/{slug}", {"trigger_identity": f"ti-{slug}", "triggerFields": fields,
                                            "user": {"timezone": "Europe/Berlin"}, **extra})
        assert r.status_code == 200, (slug, r.text)
        return list(r.json()["data"])


def wait(what: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (got := what()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return got


def test_ifttt_link_end_to_end(tmp_path: Path, api: Any, clip: Path, realtime: FakeRealtime) -> None:
    quota = int(clip.stat().st_size / 0.95)  # the first alarm clip fills 95 %: storage.almost_full
    st = test_settings(tmp_path / "d", camera_networks=["127.0.0.0/8"], storage={"quota_bytes": quota},
                       plugin={"ifttt": {"service_key": KEY, "realtime_url": realtime.url}})
    with LiveServer(st) as srv, FakeInstarCamera("fullhd", password=CAM_PASSWORD) as fake:
        core: Any = srv.core
        with core.db.session() as s:  # what `alarmcloud oauth add-client … --no-pkce` does
            client, secret = oauth.add_client(s, "IFTTT", "ifttt", [REDIRECT], ALL_SCOPES, require_pkce=False)
            client_id = client.id
        assert secret
        user = type(api())(srv.url).register("ifttt-user@example.com")
        cam = user.camera("Gate", model="IN-9020 Full HD", host="127.0.0.1", port=fake.port, username="admin",
                          password=CAM_PASSWORD)
        other = type(api())(srv.url).register("other@example.com")
        foreign = other.camera("Not yours", host="127.0.0.1", port=fake.port, username="admin",
                               password=CAM_PASSWORD)

        # -- OAuth: authorize with PKCE → consent → code → token → refresh
        tok = link(srv, user, client_id, secret)
        assert tok["expires_in"] >= 3600 and tok["refresh_token"] and "." not in tok["access_token"]
        r = httpx.post(srv.url + "/oauth/token", data={"grant_type": "refresh_token",
                                                        "refresh_token": tok["refresh_token"]}, auth=(client_id, secret))
        assert r.status_code == 200, r.text
        fresh = r.json()
        # IFTTT's "older refresh token does not expire immediately"
        r = httpx.post(srv.url + "/oauth/token", data={"grant_type": "refresh_token", "client_id": client_id,
                                                        "client_secret": secret, "refresh_token": tok["refresh_token"]})
        assert r.status_code == 200, r.text
        ifttt = Ifttt(srv, fresh["access_token"])
        links = user.get("/api/v1/me/links").json()["items"]
        assert [(i["client_id"], sorted(i["scopes"])) for i in links] == [(client_id, ALL_SCOPES)]

        info = ifttt.get("/user/info").json()["data"]
        assert info["id"] and info["id"] not in (user.id, user.email)
        assert Ifttt(srv, tok["access_token"]).get("/user/info").json()["data"]["id"] == info["id"]  # stable

        # -- field options: the user's cameras only (never the other account's)
        for path in ("/triggers/new_alarm/fields/camera/options", "/actions/motion_detection/fields/camera/options",
                     "/queries/list_alarms/fields/camera/options"):
            assert ifttt.post(path, {}).json()["data"] == [{"label": "Gate", "value": cam["id"]}], path
        labels = [o["value"] for o in ifttt.post("/triggers/alarm_with_detection/fields/label/options", {})
                  .json()["data"]]
        assert "rain" in labels and "plate" in labels
        assert ifttt.post("/triggers/new_alarm/fields/camera/validate",
                          {"value": foreign["id"]}).json()["data"]["valid"] is False

        # -- every trigger before any alarm: an empty timeline (and IFTTT's trigger identities are remembered)
        fields = {"new_alarm": {"camera": cam["id"]}, "alarm_with_detection": {"label": "rain"},
                  "plate_recognised": {}, "storage_almost_full": {}}
        for slug, f in fields.items():
            assert ifttt.trigger(slug, f) == [], slug

        # -- a real alarm: upload → pipeline → detections.ready → Realtime for the camera's trigger identity
        r = user.upload(user.upload_credentials(cam["id"]), clip)
        assert r.status_code == 201, r.text
        event_id = r.json()["event_id"]
        assert user.wait_event(event_id)["verdict"] == "alarm"
        realtime.wait_for("ti-new_alarm")
        realtime.wait_for("ti-storage_almost_full")
        assert "ti-alarm_with_detection" not in realtime.identities()  # no rain finding in this alarm
        items = ifttt.trigger("new_alarm", fields["new_alarm"])
        assert [i["meta"]["id"] for i in items] == [event_id]
        item = items[0]
        assert item["camera_name"] == "Gate" and item["verdict"] == "alarm"
        assert isinstance(item["meta"]["timestamp"], int) and abs(item["meta"]["timestamp"] - time.time()) < 600
        assert item["video_url"] == f"{core.settings.public_url.rstrip('/')}/api/v1/events/{event_id}/video"
        video = user.get(urlparse(item["video_url"]).path)
        assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
        assert ifttt.trigger("new_alarm", fields["new_alarm"], limit=0) == []
        assert ifttt.trigger("alarm_with_detection", fields["alarm_with_detection"]) == []
        assert ifttt.trigger("plate_recognised", {}) == []
        storage_items = ifttt.trigger("storage_almost_full", {})
        assert len(storage_items) == 1 and int(storage_items[0]["used_percent"]) >= 90

        # -- queries
        alarms = ifttt.post("/queries/list_alarms", {"queryFields": {"camera": cam["id"]}, "user": {}}).json()["data"]
        assert [a["meta"]["id"] for a in alarms] == [event_id]
        status = ifttt.post("/queries/storage_status", {"queryFields": {}, "user": {}}).json()["data"]
        assert int(status[0]["used_bytes"]) == clip.stat().st_size and status[0]["clip_count"] == "1"

        # -- every action reaches the fake INSTAR camera (Full HD: hi3510 CGI)
        def act(slug: str, action_fields: dict[str, Any]) -> httpx.Response:
            return ifttt.post(f"/actions/{slug}", {"actionFields": {"camera": cam["id"], **action_fields},
                                                   "user": {"timezone": "UTC"}})

        def ok(r: httpx.Response) -> None:
            assert r.status_code == 200, r.text
            assert r.json()["data"][0]["id"]

        ok(act("motion_detection", {"on": "off"}))
        assert {a["enable"] for a in fake.state["areas"].values()} == {"0"}
        ok(act("alarm_email", {"on": "on"}))
        assert fake.state["mdalarm"]["emailsnap"] == "on"
        ok(act("go_to_preset", {"preset": "2"}))
        assert fake.state["preset"] == 1  # the camera counts from 0
        ok(act("alarm_area", {"area": "2", "on": "on"}))
        assert fake.state["areas"][2]["enable"] == "1"
        ok(act("area_sensitivity", {"area": "2", "sensitivity": "70"}))
        assert fake.state["areas"][2]["s"] == "70"
        ok(act("change_alarm_settings", {"motion_detection": "on", "alarm_email": "off"}))
        assert {a["enable"] for a in fake.state["areas"].values()} == {"1"}
        assert fake.state["mdalarm"]["emailsnap"] == "off"
        assert user.get(f"/api/v1/cameras/{cam['id']}").json()["motion_detection"] is True

        # -- pseudonymous: nothing IFTTT received names the account or its e-mail
        sent = "\n".join(ifttt.seen) + json.dumps(realtime.calls)
        assert user.id not in sent and user.email not in sent and "@" not in sent

        # -- unlinking: IFTTT's token gets 401 (errors[]), its refresh token invalid_grant
        assert user.delete(f"/api/v1/me/links/{client_id}").status_code == 204
        r = ifttt.post("/triggers/new_alarm", {"triggerFields": {}})
        assert r.status_code == 401 and r.json()["errors"][0]["message"]
        r = httpx.post(srv.url + "/oauth/token", data={"grant_type": "refresh_token",
                                                        "refresh_token": fresh["refresh_token"]}, auth=(client_id, secret))
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_ifttt_negative_cases(tmp_path: Path, api: Any, realtime: FakeRealtime) -> None:
    st = test_settings(tmp_path / "d", camera_networks=["127.0.0.0/8"],
                       plugin={"ifttt": {"service_key": KEY, "realtime_url": realtime.url}})
    with LiveServer(st) as srv, FakeInstarCamera("fullhd", password=CAM_PASSWORD) as fake:
        core: Any = srv.core
        with core.db.session() as s:
            full, full_secret = oauth.add_client(s, "IFTTT", "ifttt", [REDIRECT], ALL_SCOPES)
            narrow, narrow_secret = oauth.add_client(s, "IFTTT (read only)", "ifttt", [REDIRECT], ["alarms:read"])
            full_id, narrow_id = full.id, narrow.id
        assert full_secret and narrow_secret
        user = type(api())(srv.url).register("neg@example.com")
        cam = user.camera("Gate", model="IN-9020 Full HD", host="127.0.0.1", port=fake.port, username="admin",
                          password=CAM_PASSWORD)
        other = type(api())(srv.url).register("neg-other@example.com")
        foreign = other.camera("Not yours", model="IN-9020 Full HD", host="127.0.0.1", port=fake.port,
                               username="admin", password=CAM_PASSWORD)
        ifttt = Ifttt(srv, link(srv, user, full_id, full_secret)["access_token"])
        state = json.dumps(fake.state, sort_keys=True)
        requests = len(fake.requests)

        # another user's camera id in every action: 400 SKIP, the camera hears nothing
        for slug, f in [("motion_detection", {"on": "off"}), ("alarm_email", {"on": "on"}),
                        ("go_to_preset", {"preset": "2"}), ("alarm_area", {"area": "2", "on": "on"}),
                        ("area_sensitivity", {"area": "1", "sensitivity": "70"}),
                        ("change_alarm_settings", {"motion_detection": "off", "alarm_email": "off"})]:
            r = ifttt.post(f"/actions/{slug}", {"actionFields": {"camera": foreign["id"], **f}, "user": {}})
            assert r.status_code == 400 and r.json()["errors"][0]["status"] == "SKIP", (slug, r.text)
            # a value that can never work: SKIP before anything is sent
        for slug, f in [("go_to_preset", {"preset": "zero"}), ("alarm_area", {"area": "9", "on": "on"}),
                        ("area_sensitivity", {"area": "1", "sensitivity": "500"}), ("motion_detection", {"on": "x"}),
                        ("change_alarm_settings", {})]:
            r = ifttt.post(f"/actions/{slug}", {"actionFields": {"camera": cam["id"], **f}, "user": {}})
            assert r.status_code == 400 and r.json()["errors"][0]["status"] == "SKIP", (slug, r.text)
        r = ifttt.post("/actions/motion_detection", {"user": {}})  # no actionFields at all
        assert r.status_code == 400 and r.json()["errors"]
        assert len(fake.requests) == requests and json.dumps(fake.state, sort_keys=True) == state
        with core.db.session() as s:
            from alarmcloud.models import Camera

            assert s.get(Camera, foreign["id"]).motion_detection is None  # nothing recorded either

        # a link without cameras:control may read alarms but not use the camera login: SKIP, camera untouched
        reader = Ifttt(srv, link(srv, user, narrow_id, narrow_secret)["access_token"])
        assert reader.trigger("new_alarm", {}) == []
        r = reader.post("/actions/motion_detection", {"actionFields": {"camera": cam["id"], "on": "off"}, "user": {}})
        assert r.status_code == 400 and r.json()["errors"][0]["status"] == "SKIP"
        assert len(fake.requests) == requests

        # bad, revoked and other integrations' tokens: 401 with errors[]
        with core.db.session() as s:
            alexa, _ = oauth.add_client(s, "Alexa", "alexa", ["https://pitangui.amazon.com/cb"], ALL_SCOPES)
            alexa_token = oauth.issue_tokens(s, user.id, alexa.id, ALL_SCOPES)["access_token"]
        for token in ("nope", alexa_token, "aco_" + secrets.token_urlsafe(32)):
            r = Ifttt(srv, token).post("/triggers/new_alarm", {"triggerFields": {}})
            assert r.status_code == 401 and r.json()["errors"][0]["message"], token
        r = httpx.post(srv.url + "/oauth/revoke", data={"token": ifttt.token, "token_type_hint": "access_token"},
                       auth=(full_id, full_secret))
        assert r.status_code == 200
        for path in ("/triggers/new_alarm", "/actions/motion_detection", "/queries/list_alarms"):
            r = ifttt.post(path, {"triggerFields": {}, "actionFields": {"camera": cam["id"], "on": "off"}})
            assert r.status_code == 401 and r.json()["errors"][0]["message"], path
        assert ifttt.get("/user/info").status_code == 401
        assert len(fake.requests) == requests
