"""The five controls send exactly the documented CGI request per generation and change the camera's state."""

from __future__ import annotations

import socket

import pytest
from alarmcloud.contracts import CameraAccess, CameraError
from alarmcloud_camera_instar.adapter import InstarAdapter
from alarmcloud_camera_instar.testing import FakeInstarCamera

pytestmark = pytest.mark.anyio

CGI_PATH = {"hd": "/cgi-bin/hi3510/param.cgi", "fullhd": "/param.cgi", "wqhd": "/param.cgi"}


def _hi_all_areas(flag: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for n in (1, 2, 3, 4):
        out += [("cmd", "setmdattr"), ("-enable", flag), ("-name", str(n))]
    return out


MOTION_OFF = {
    "hd": _hi_all_areas("0"),
    "fullhd": _hi_all_areas("0"),
    "wqhd": [("cmd", "setalarmattr"), ("armed", "0")],
}
MOTION_ON = {
    "hd": _hi_all_areas("1"),
    "fullhd": _hi_all_areas("1"),
    "wqhd": [("cmd", "setalarmattr"), ("armed", "1")],
}
EMAIL_ON = {
    "hd": [
        ("cmd", "setmdalarm"), ("-aname", "email"), ("-switch", "on"),
        ("cmd", "setmdalarm"), ("-aname", "emailsnap"), ("-switch", "on"),
    ],
    "fullhd": [("cmd", "setmdalarm"), ("-aname", "emailsnap"), ("-switch", "on")],
    "wqhd": [("cmd", "setmaaction"), ("enable", "1")],
}  # fmt: skip
AREA3_ON = {
    "hd": [("cmd", "setmdattr"), ("-name", "3"), ("-enable", "1")],
    "fullhd": [("cmd", "setmdattr"), ("-name", "3"), ("-enable", "1")],
    "wqhd": [("cmd", "setmdattr"), ("area", "3"), ("enable", "1")],
}


async def test_motion_detection_off_and_on(adapter: InstarAdapter, camera: FakeInstarCamera) -> None:
    gen = camera.generation.key
    await adapter.control(camera.access(), "motion_detection", False)
    request = camera.cgi_requests()[-1]
    assert request.path == CGI_PATH[gen]
    assert request.params == MOTION_OFF[gen]
    if gen == "wqhd":
        assert camera.state["alarm"]["armed"] == "0"
    else:
        assert all(area["enable"] == "0" for area in camera.state["areas"].values())
    await adapter.control(camera.access(), "motion_detection", "on")
    assert camera.cgi_requests()[-1].params == MOTION_ON[gen]
    if gen == "wqhd":
        assert camera.state["alarm"]["armed"] == "1"
    else:
        assert all(area["enable"] == "1" for area in camera.state["areas"].values())


async def test_alarm_email_on_and_off(adapter: InstarAdapter, camera: FakeInstarCamera) -> None:
    gen = camera.generation.key
    await adapter.control(camera.access(), "alarm_email", True)
    assert camera.cgi_requests()[-1].params == EMAIL_ON[gen]
    if gen == "wqhd":
        assert camera.state["maaction"]["enable"] == "1"
    else:
        assert camera.state["mdalarm"]["emailsnap"] == "on"
        assert camera.state["mdalarm"]["email"] == ("on" if gen == "hd" else "off")
    await adapter.control(camera.access(), "alarm_email", 0)
    if gen == "wqhd":
        assert camera.state["maaction"]["enable"] == "0"
    else:
        assert camera.state["mdalarm"]["emailsnap"] == "off"


async def test_alarm_area_switch(adapter: InstarAdapter, camera: FakeInstarCamera) -> None:
    gen = camera.generation.key
    assert camera.state["areas"][3]["enable"] == "0"
    await adapter.control(camera.access(), "alarm_area", True, area=3)
    assert camera.cgi_requests()[-1].params == AREA3_ON[gen]
    assert camera.state["areas"][3]["enable"] == "1"
    await adapter.control(camera.access(), "alarm_area", "off", area=1)
    assert camera.state["areas"][1]["enable"] == "0"


async def test_area_sensitivity_keeps_the_area_switch(adapter: InstarAdapter, camera: FakeInstarCamera) -> None:
    gen = camera.generation.key
    await adapter.control(camera.access(), "area_sensitivity", 75, area=2)  # area 2 starts switched off
    sent = [r.params for r in camera.cgi_requests()]
    if gen == "wqhd":
        assert sent == [[("cmd", "setmdattr"), ("area", "2"), ("s", "75")]]
    else:
        # the documented command carries -enable: the adapter reads the area first and keeps its switch
        assert sent == [
            [("cmd", "getmdattr")],
            [("cmd", "setmdattr"), ("-name", "2"), ("-enable", "0"), ("-s", "75")],
        ]
    assert camera.state["areas"][2]["s"] == "75"
    assert camera.state["areas"][2]["enable"] == "0"


async def test_go_to_preset(adapter: InstarAdapter, camera: FakeInstarCamera) -> None:
    if camera.generation.key == "wqhd":
        # WQHD presets exist only as an MQTT topic, and MQTT is off by default (see test_instar_mqtt.py)
        with pytest.raises(CameraError) as err:
            await adapter.control(camera.access(), "go_to_preset", 3)
        assert err.value.code == "unsupported"
        assert "Smarthome → MQTT" in err.value.message
        assert [r.params for r in camera.cgi_requests()] == [[("cmd", "getmqttattr")]]
        assert camera.broker is not None and camera.broker.connects == []
        return
    await adapter.control(camera.access(), "go_to_preset", 3)
    # web-UI position 3 is CGI number 2 (hi3510 numbers presets from 0)
    assert camera.cgi_requests()[-1].params == [("cmd", "preset"), ("-act", "goto"), ("-number", "2")]
    assert camera.state["preset"] == 2


async def test_preset_on_a_fixed_camera_is_unsupported(adapter: InstarAdapter) -> None:
    with FakeInstarCamera("fullhd") as cam:
        with pytest.raises(CameraError) as err:
            await adapter.control(cam.access("IN-9008 Full HD"), "go_to_preset", 1)
        assert err.value.code == "unsupported"
        assert cam.requests == []


@pytest.mark.parametrize(
    ("action", "value", "area"),
    [
        ("motion_detection", "maybe", None),
        ("go_to_preset", 9, None),
        ("go_to_preset", 0, None),
        ("alarm_area", True, None),
        ("alarm_area", True, 5),
        ("area_sensitivity", 101, 1),
        ("area_sensitivity", "high", 1),
        ("reboot", True, None),
    ],
)
async def test_invalid_values_are_refused_before_sending(
    adapter: InstarAdapter, action: str, value: object, area: int | None
) -> None:
    with FakeInstarCamera("fullhd") as cam:
        with pytest.raises(CameraError) as err:
            await adapter.control(cam.access(), action, value, area=area)
        assert err.value.code == "invalid"
        assert cam.cgi_requests() == []


async def test_wrong_password_is_refused(adapter: InstarAdapter, camera: FakeInstarCamera) -> None:
    with pytest.raises(CameraError) as err:
        await adapter.control(camera.access(password="Wr0ng#Pass"), "motion_detection", True)
    assert err.value.code == "refused"
    assert "Wr0ng#Pass" not in err.value.message
    assert camera.requests and not camera.requests[-1].authorized


async def test_camera_in_refuse_mode(adapter: InstarAdapter) -> None:
    with FakeInstarCamera("wqhd") as cam:
        cam.mode = "refuse"
        with pytest.raises(CameraError) as err:
            await adapter.control(cam.access(), "alarm_area", True, area=1)
        assert err.value.code == "refused"


async def test_unreachable_camera(adapter: InstarAdapter) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    access = CameraAccess(id="c1", model="IN-9008 Full HD", address="127.0.0.1", port=port, username="a", password="b")
    with pytest.raises(CameraError) as err:
        await adapter.control(access, "motion_detection", True)
    assert err.value.code == "unreachable"


async def test_stalled_camera_times_out_after_retries(adapter: InstarAdapter) -> None:
    with FakeInstarCamera("hd") as cam:
        cam.mode = "stall"
        with pytest.raises(CameraError) as err:
            await adapter.control(cam.access(), "alarm_email", True)
        assert err.value.code == "unreachable"
        assert "timed out" in err.value.message
        assert len(cam.requests) == 2  # one retry (fixture config)


async def test_server_errors_are_retried_then_unreachable(adapter: InstarAdapter) -> None:
    with FakeInstarCamera("wqhd") as cam:
        cam.mode = "error"
        with pytest.raises(CameraError) as err:
            await adapter.control(cam.access(), "motion_detection", False)
        assert err.value.code == "unreachable"
        assert len(cam.requests) == 2


async def test_camera_error_codes_map_to_clear_errors(adapter: InstarAdapter) -> None:
    with FakeInstarCamera("wqhd") as cam:
        # a firmware with four areas answers 202 (invalid value) for area 8
        del cam.state["areas"][8]
        with pytest.raises(CameraError) as err:
            await adapter.control(cam.access(), "alarm_area", True, area=8)
        assert err.value.code == "invalid"
        assert "202" in err.value.message


async def test_unknown_model_is_unsupported(adapter: InstarAdapter) -> None:
    with FakeInstarCamera("fullhd") as cam:
        with pytest.raises(CameraError) as err:
            await adapter.control(cam.access("IN-1234 Mystery"), "motion_detection", True)
        assert err.value.code == "unsupported"


async def test_camera_without_address_is_unreachable(adapter: InstarAdapter) -> None:
    access = CameraAccess(id="c1", model="IN-9408 2K+", address=None, p2p_id="ABCD-123456-XYZ")
    with pytest.raises(CameraError) as err:
        await adapter.control(access, "motion_detection", True)
    assert err.value.code == "unreachable"
