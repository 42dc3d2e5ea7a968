"""One-click setup: FTP(S) upload, alarm server and "only alarm recordings" per generation."""

from __future__ import annotations

import pytest
from alarmcloud.contracts import CameraError, UploadTarget
from alarmcloud_camera_instar.adapter import InstarAdapter
from alarmcloud_camera_instar.testing import FakeInstarCamera

pytestmark = pytest.mark.anyio

TARGET = UploadTarget(
    ftp_host="cloud.example.org",
    ftp_port=2121,
    username="cam-7f3a",
    password="UpL0ad#secret",
    http_url="https://cloud.example.org/api/v1/ingest/clips",
    alarm_server_url="http://cloud.example.org:8080/plugins/instar/alarm",
    ftps=True,
)


async def test_setup_configures_ftp_alarm_server_and_alarm_videos_only(
    adapter: InstarAdapter, camera: FakeInstarCamera
) -> None:
    done = await adapter.setup_upload(camera.access(), TARGET)
    gen = camera.generation.key
    state = camera.state
    dash = "" if gen == "wqhd" else "-"
    ftp = state["ftp"]
    assert ftp[f"{dash}ft_server"] == "cloud.example.org"
    assert ftp[f"{dash}ft_port"] == "2121"
    assert ftp[f"{dash}ft_username"] == "cam-7f3a"
    assert ftp[f"{dash}ft_password"] == "UpL0ad#secret"
    assert ftp[f"{dash}ft_mode"] == "1"  # passive
    if gen == "wqhd":
        assert ftp["ft_ssl"] == "1"
        assert state["ftpaction"]["rec"]["enable"] == "1"
        assert state["ftpaction"]["snap"]["enable"] == "0"
        server = state["as"][1]
        assert state["asaction"]["enable"] == "1"
        assert server["as_server"] == "cloud.example.org"
        assert server["as_port"] == "8080"
        assert server["as_path"] == "/plugins/instar/alarm"
        assert server["as_auth"] == "1"
        assert server["as_username"] == "cam-7f3a"
        assert server["as_password"] == "UpL0ad#secret"
    else:
        assert ftp["-ft_ssl"] == ("1" if gen == "fullhd" else "0")
        assert state["mdalarm"]["ftprec"] == "on"
        assert state["mdalarm"]["ftpsnap"] == "off"
        assert state["mdalarm"]["server2"] == "on"
        server = state["alarmserver"]
        assert server["-as_index"] == "3"
        assert server["-as_path"] == "/plugins/instar/alarm"
        assert server["-as_port"] == "8080"
        assert server["-as_auth"] == "1"
        assert server["-as_username"] == "cam-7f3a"
        assert server["-as_activequery"] == "1"
    assert any("alarm server" in line for line in done)
    assert all("UpL0ad#secret" not in line for line in done)
    if gen == "hd":
        assert any("720p" in line and "plain FTP" in line for line in done)


async def test_wqhd_alarm_server_request_matches_the_documented_string(adapter: InstarAdapter) -> None:
    with FakeInstarCamera("wqhd") as cam:
        await adapter.setup_upload(cam.access(), TARGET)
        last = cam.cgi_requests()[-1].params
    assert last[:9] == [
        ("cmd", "setasaction"), ("-server", "1"), ("enable", "1"), ("-interval", "1"),
        ("cmd", "setasattr"), ("-as_index", "1"), ("-as_server", "cloud.example.org"),
        ("-as_port", "8080"), ("-as_path", "/plugins/instar/alarm"),
    ]  # fmt: skip
    assert ("-as_mode", "0") in last and ("-as_activequery", "1") in last


async def test_https_alarm_server_is_skipped_on_hi3510_with_a_note(adapter: InstarAdapter) -> None:
    target = UploadTarget(**{**TARGET.__dict__, "alarm_server_url": "https://cloud.example.org/plugins/instar/alarm"})
    with FakeInstarCamera("fullhd") as cam:
        done = await adapter.setup_upload(cam.access(), target)
        assert cam.state["alarmserver"] == {}
        assert cam.state["mdalarm"]["ftprec"] == "on"
    assert any("HTTPS" in line and "not set" in line for line in done)


async def test_setup_with_wrong_password_is_refused(adapter: InstarAdapter) -> None:
    with FakeInstarCamera("hd") as cam:
        with pytest.raises(CameraError) as err:
            await adapter.setup_upload(cam.access(password="bad"), TARGET)
        assert err.value.code == "refused"
        assert cam.state["ftp"]["-ft_server"] == ""
