"""The adapter inside the real core, over real HTTP: the public API drives the fake camera on loopback, the camera
calls the real alarm server, and its next upload becomes an event that shows the trigger."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alarmcloud.testing import LiveServer, make_clip, test_settings
from alarmcloud_camera_instar.testing import DEFAULT_MODELS, FakeInstarCamera

GENERATIONS = ("hd", "fullhd", "wqhd")
CAM_PASSWORD = "Cam#Secret-77"
USER_PASSWORD = "correct horse battery staple"


def _settings(tmp_path: Path, networks: list[str]) -> Any:
    settings = test_settings(tmp_path / "data", camera_networks=networks)
    settings.plugins.cameras = ["instar"]
    settings.plugins.detectors = []
    settings.plugins.integrations = []
    return settings


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # one server for the module: every test registers its own customer
    with LiveServer(_settings(tmp_path_factory.mktemp("instar-api"), ["127.0.0.0/8"])) as srv:
        srv.settings.public_url = srv.url  # type: ignore[attr-defined]  # cameras call back to this server
        yield srv


class Customer:
    """A logged-in customer (session cookie and CSRF header)."""

    def __init__(self, base: str, email: str, register: bool = True) -> None:
        self.http = httpx.Client(base_url=base, timeout=30)
        if register:
            assert self.http.post("/api/v1/auth/register", json={"email": email, "password": USER_PASSWORD}).is_success
        r = self.http.post("/api/v1/auth/login", json={"email": email, "password": USER_PASSWORD})
        assert r.status_code == 200, r.text
        self.http.headers["X-CSRF-Token"] = r.json()["csrf_token"]

    def add_camera(self, cam: FakeInstarCamera, password: str = CAM_PASSWORD, port: int | None = None) -> str:
        body = {"name": "Garden", "brand": "instar", "model": DEFAULT_MODELS[cam.generation.key],
                "host": cam.address, "port": port or cam.port, "username": "admin", "password": password}  # fmt: skip
        r = self.http.post("/api/v1/cameras", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def action(self, camera_id: str, action: str, value: Any, area: int | None = None) -> httpx.Response:
        body: dict[str, Any] = {"action": action, "value": value}
        if area is not None:
            body["area"] = area
        return self.http.post(f"/api/v1/cameras/{camera_id}/actions", json=body)


@pytest.mark.parametrize("gen", GENERATIONS)
def test_the_five_controls_through_the_api(server: LiveServer, gen: str) -> None:
    with FakeInstarCamera(gen, password=CAM_PASSWORD, mqtt=True) as cam:
        owner = Customer(server.url, f"{gen}@example.com")
        cid = owner.add_camera(cam)
        for action, value, area in [
            ("motion_detection", False, None),
            ("alarm_email", True, None),
            ("go_to_preset", 2, None),
            ("alarm_area", True, 3),
            ("area_sensitivity", 60, 2),
        ]:
            r = owner.action(cid, action, value, area)
            assert r.status_code == 200, (action, r.text)
            assert r.json()["ok"] is True
        st = cam.state
        if gen == "wqhd":
            assert st["alarm"]["armed"] == "0"
            assert st["maaction"]["enable"] == "1"
            assert st["ptz"]["preset"] == 2  # over the camera's MQTT broker
            assert cam.mqtt_messages[-1].topic == "cameras/115/features/ptz/preset/goto"
        else:
            assert all(area["enable"] == "0" for n, area in st["areas"].items() if n != 3)
            assert st["mdalarm"]["emailsnap"] == "on"
            assert st["preset"] == 1  # position 2 is hi3510 preset number 1
        assert st["areas"][3]["enable"] == "1"
        assert st["areas"][2]["s"] == "60"
        assert owner.http.get(f"/api/v1/cameras/{cid}").json()["motion_detection"] is False
        # every request carried the stored camera login as Basic auth, never in the URL
        assert cam.requests and all(r.authorized for r in cam.requests)
        assert all(k not in ("usr", "user", "pwd") for r in cam.requests for k, _ in r.params)


def test_camera_failures_become_clear_api_errors(server: LiveServer) -> None:
    owner = Customer(server.url, "errors@example.com")
    with FakeInstarCamera("fullhd", password=CAM_PASSWORD) as cam:
        wrong = owner.add_camera(cam, password="Not-The-Pass1")
        r = owner.action(wrong, "motion_detection", True)
        assert r.status_code == 502 and r.json()["error"]["code"] == "camera_refused"
        assert "Not-The-Pass1" not in r.text
    with FakeInstarCamera("wqhd", password=CAM_PASSWORD) as cam:  # MQTT off, as delivered
        cid = owner.add_camera(cam)
        r = owner.action(cid, "go_to_preset", 1)
        assert r.status_code == 400 and r.json()["error"]["code"] == "camera_unsupported"
        assert "MQTT" in r.json()["error"]["message"]
        r = owner.action(cid, "area_sensitivity", 0, area=1)  # WQHD takes 1-100
        assert r.status_code == 400 and r.json()["error"]["code"] == "camera_invalid"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    with FakeInstarCamera("hd") as cam:
        gone = owner.add_camera(cam, port=closed)
    r = owner.action(gone, "alarm_email", False)
    assert r.status_code == 504 and r.json()["error"]["code"] == "camera_unreachable"


def test_only_owner_and_control_subusers_may_control(server: LiveServer) -> None:
    owner = Customer(server.url, "owner@example.com")
    with FakeInstarCamera("fullhd", password=CAM_PASSWORD) as cam:
        cid = owner.add_camera(cam)
        for email, right in (("viewer@example.com", "view"), ("operator@example.com", "control")):
            r = owner.http.post("/api/v1/subusers", json={"email": email, "password": USER_PASSWORD,
                                                          "rights": {cid: right}})  # fmt: skip
            assert r.status_code == 201, r.text
        viewer = Customer(server.url, "viewer@example.com", register=False)
        assert viewer.action(cid, "motion_detection", False).status_code == 403
        assert cam.requests == []
        operator = Customer(server.url, "operator@example.com", register=False)
        assert operator.action(cid, "motion_detection", False).status_code == 200
        assert all(area["enable"] == "0" for area in cam.state["areas"].values())


def test_cameras_outside_the_allowed_networks_are_never_contacted(tmp_path: Path) -> None:
    # the default allow-list is the private LAN ranges: loopback is not in it
    with LiveServer(_settings(tmp_path, ["192.168.0.0/16"])) as srv, FakeInstarCamera("wqhd", mqtt=True) as cam:
        owner = Customer(srv.url, "lan@example.com")
        cid = owner.add_camera(cam, password="instar")
        for r in (owner.action(cid, "motion_detection", False), owner.http.get(f"/api/v1/cameras/{cid}/snapshot"),
                  owner.http.post(f"/api/v1/cameras/{cid}/setup")):  # fmt: skip
            assert r.status_code == 403 and r.json()["error"]["code"] == "address_not_allowed"
        assert cam.requests == [] and cam.mqtt_messages == []


@pytest.mark.parametrize("gen", GENERATIONS)
def test_live_view_and_snapshot_proxy_never_show_the_password(server: LiveServer, gen: str) -> None:
    with FakeInstarCamera(gen, password=CAM_PASSWORD) as cam:
        owner = Customer(server.url, f"live-{gen}@example.com")
        cid = owner.add_camera(cam)
        live = owner.http.get(f"/api/v1/cameras/{cid}/live")
        assert live.status_code == 200
        body = live.json()
        path = "/livestream/11" if gen == "wqhd" else "/11"
        assert body["rtsp_main"] == f"rtsp://127.0.0.1{path}"
        assert body["snapshot_url"] == f"/api/v1/cameras/{cid}/snapshot"
        assert CAM_PASSWORD not in live.text and "Cam%23Secret" not in live.text and "admin" not in live.text
        snap = owner.http.get(body["snapshot_url"])
        assert snap.status_code == 200 and snap.headers["content-type"] == "image/jpeg"
        assert snap.content == cam.snapshot_jpeg
        assert CAM_PASSWORD.encode() not in snap.content
        assert cam.requests[-1].authorized and cam.requests[-1].params in ([], [("chn", "11")])


@pytest.mark.parametrize("gen", GENERATIONS)
def test_setup_then_alarm_server_call_then_upload_shows_the_trigger(
    server: LiveServer, tmp_path: Path, gen: str
) -> None:
    with FakeInstarCamera(gen, password=CAM_PASSWORD) as cam:
        owner = Customer(server.url, f"alarm-{gen}@example.com")
        cid = owner.add_camera(cam)
        r = owner.http.post(f"/api/v1/cameras/{cid}/setup")
        assert r.status_code == 200, r.text
        assert any("alarm server" in line for line in r.json()["configured"])
        # what one-click setup wrote into the camera is all the camera needs
        ftp = cam.state["ftp"]
        dash = "" if gen == "wqhd" else "-"
        upload_login = (ftp[f"{dash}ft_username"], ftp[f"{dash}ft_password"])
        assert upload_login[0] == owner.http.get(f"/api/v1/cameras/{cid}").json()["upload_username"]
        # the camera raises an alarm: WQHD "testas" (area 2, person), 720p/Full HD manual trigger (active=99)
        camera_cgi = httpx.Client(base_url=f"http://{cam.address}:{cam.port}", auth=("admin", CAM_PASSWORD))
        if gen == "wqhd":
            reply = camera_cgi.get("/param.cgi?cmd=testas&index=1&active=2&object=1").text
            assert 'result="0";' in reply
            expected = "area 2 + person"
        else:
            path = "/cgi-bin/hi3510/param.cgi" if gen == "hd" else "/param.cgi"
            assert "[Succeed]" in camera_cgi.get(f"{path}?cmd=pushhostalarm").text
            expected = "manual trigger"
        assert cam.alarm_calls == [("GET", f"{server.url}/plugins/instar/alarm", 200)]
        assert owner.http.get(f"/api/v1/cameras/{cid}").json()["last_trigger"]["summary"] == expected
        # ...and uploads its alarm clip with the upload login it was given
        clip = make_clip(tmp_path / "A20240501-101500.mp4", seconds=3, width=640, height=352, fps=15)
        up = httpx.post(f"{server.url}/api/v1/ingest/clips", content=clip.read_bytes(), auth=upload_login,
                        headers={"Content-Type": "video/mp4"}, timeout=60)  # fmt: skip
        assert up.status_code == 201, up.text
        event = owner.http.get(f"/api/v1/events/{up.json()['event_id']}").json()
        assert event["camera_id"] == cid
        assert event["trigger"]["summary"] == expected
        assert event["trigger"]["source"] == "instar_alarm_server"
        assert "password" not in str(event["trigger"]) and upload_login[1] not in str(event)


def test_catalogue_is_served_by_the_api(server: LiveServer) -> None:
    models = httpx.get(f"{server.url}/api/v1/camera-models").json()["brands"]["instar"]
    assert len(models) == 15
    by_name = {m["name"]: m for m in models}
    assert {m["generation"] for m in models} == {"hd", "fullhd", "wqhd"}
    assert by_name["IN-9420 2K+"]["ptz"] is True and "h265" in by_name["IN-9420 2K+"]["codecs"]
    assert by_name["IN-5905 HD"]["resolutions"][0] == [1280, 720]


def test_uploads_are_judged_by_the_model_they_come_from(server: LiveServer, tmp_path: Path) -> None:
    owner = Customer(server.url, "uploads@example.com")
    r = owner.http.post("/api/v1/cameras", json={"name": "Yard", "brand": "instar", "model": "IN-9008"})
    cid = r.json()["id"]
    login = owner.http.post(f"/api/v1/cameras/{cid}/upload-credentials").json()
    auth = (login["username"], login["password"])

    def upload(path: Path) -> httpx.Response:
        return httpx.post(f"{server.url}/api/v1/ingest/clips", content=path.read_bytes(), auth=auth,
                          headers={"Content-Type": "video/mp4"}, timeout=60)  # fmt: skip

    square = upload(make_clip(tmp_path / "square.mp4", seconds=2, width=480, height=480, fps=10))
    assert square.status_code in (400, 415, 422), square.text
    reasons = owner.http.get(f"/api/v1/cameras/{cid}/rejections").json()["items"]
    assert "480x480" in reasons[0]["message"] and "IN-9008 Full HD" in reasons[0]["message"]
    # longer than the 18 s alarm clip: stored, but flagged for the fair-use rules
    long = upload(make_clip(tmp_path / "long.mp4", seconds=24, width=320, height=176, fps=5))
    assert long.status_code == 201, long.text
    assert "long_clip" in owner.http.get(f"/api/v1/events/{long.json()['event_id']}").json()["flags"]


def _upload(server: LiveServer, clip: Path, login: tuple[str, str]) -> int:
    r = httpx.post(f"{server.url}/api/v1/ingest/clips", content=clip.read_bytes(), auth=login,
                   headers={"Content-Type": "video/mp4"}, timeout=60)  # fmt: skip
    return r.status_code


def test_a_failed_setup_never_locks_the_camera_out(server: LiveServer, tmp_path: Path) -> None:
    """One-click setup that fails keeps the camera uploading: when the camera refuses it outright, its upload login
    is unchanged; when it fails part-way (the new FTP password written, a later step refused), the previous and the
    new password both work until the camera uploads with the new one, which then is the only one."""
    clip = make_clip(tmp_path / "A20240501-101500.mp4", seconds=2, width=640, height=352, fps=15)
    with FakeInstarCamera("fullhd", password=CAM_PASSWORD) as cam:
        owner = Customer(server.url, "setup-fails@example.com")
        cid = owner.add_camera(cam)
        assert owner.http.post(f"/api/v1/cameras/{cid}/setup").status_code == 200
        first = (cam.state["ftp"]["-ft_username"], cam.state["ftp"]["-ft_password"])
        assert _upload(server, clip, first) == 201

        cam.password = "changed-on-the-camera"  # the camera refuses every request
        r = owner.http.post(f"/api/v1/cameras/{cid}/setup")
        assert r.status_code >= 400 and r.json()["error"]["code"]
        assert _upload(server, clip, first) == 201

        cam.password = CAM_PASSWORD
        cam.unknown_commands = {"setalarmserverattr"}  # the FTP step lands, the alarm-server step fails
        r = owner.http.post(f"/api/v1/cameras/{cid}/setup")
        assert r.status_code >= 400 and r.json()["error"]["code"]
        second = (cam.state["ftp"]["-ft_username"], cam.state["ftp"]["-ft_password"])
        assert second[0] == first[0] and second[1] != first[1]
        assert _upload(server, clip, first) == 201  # the camera may still hold the old one...
        assert _upload(server, clip, second) == 201  # ...or the new one: it uploads with the new one
        assert _upload(server, clip, first) == 401  # from now on the new one is the only one

        cam.unknown_commands = set()
        assert owner.http.post(f"/api/v1/cameras/{cid}/setup").status_code == 200
        third = (cam.state["ftp"]["-ft_username"], cam.state["ftp"]["-ft_password"])
        assert _upload(server, clip, second) == 401  # a setup that succeeded leaves only the password it wrote
        assert _upload(server, clip, third) == 201
