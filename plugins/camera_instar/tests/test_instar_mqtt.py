"""WQHD controls that exist only as MQTT topics: preset goto and (fallback) alarm e-mail, against the fake camera's
built-in broker on loopback; plus the MQTT 3.1.1 packet encoding checked against the standard's examples."""

from __future__ import annotations

import socket
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alarmcloud.contracts import CameraError
from alarmcloud_camera_instar import mqtt
from alarmcloud_camera_instar.adapter import InstarAdapter
from alarmcloud_camera_instar.config import InstarConfig
from alarmcloud_camera_instar.testing import FakeInstarCamera
from alarmcloud_camera_instar.testing_mqtt import FakeMqttBroker
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

pytestmark = pytest.mark.anyio

PASSWORD = "Wq#hd-Pass1"


async def test_wqhd_preset_is_published_to_the_cameras_broker(adapter: InstarAdapter) -> None:
    with FakeInstarCamera("wqhd", password=PASSWORD, mqtt=True) as cam:
        await adapter.control(cam.access(), "go_to_preset", 3)
        # the topic prefix and client ID are read from the camera first
        assert [r.params for r in cam.cgi_requests()] == [[("cmd", "getmqttattr")]]
        (message,) = cam.mqtt_messages
        assert message.topic == "cameras/115/features/ptz/preset/goto"
        assert message.payload == b'{"val":"3"}'  # web-UI position 3: WQHD presets are numbered 1-8
        assert message.qos == 1
        assert cam.state["ptz"]["preset"] == 3
        assert cam.broker is not None
        (connect,) = cam.broker.connects
        assert connect[1:] == ("admin", 4, True)  # the camera login, MQTT 3.1.1, accepted
        assert connect[0].startswith("alarmcloud-") and len(connect[0]) <= 23


async def test_topic_follows_the_cameras_prefix_and_client_id(adapter: InstarAdapter) -> None:
    with FakeInstarCamera("wqhd", mqtt=True) as cam:
        cam.state["mqtt"].update(mq_prefix="home/cams/", mq_clientid="garage/")
        await adapter.control(cam.access(), "go_to_preset", 8)
        assert cam.mqtt_messages[-1].topic == "home/cams/garage/features/ptz/preset/goto"
        assert cam.state["ptz"]["preset"] == 8


async def test_preset_with_mqtt_switched_off_says_how_to_fix_it(adapter: InstarAdapter) -> None:
    with FakeInstarCamera("wqhd") as cam:
        with pytest.raises(CameraError) as err:
            await adapter.control(cam.access(), "go_to_preset", 1)
        assert err.value.code == "unsupported"
        assert "Smarthome → MQTT" in err.value.message
        assert cam.broker is not None and cam.broker.connects == []
        assert cam.state["ptz"]["preset"] is None


async def test_fixed_wqhd_camera_has_no_presets(adapter: InstarAdapter) -> None:
    with FakeInstarCamera("wqhd", ptz=False, mqtt=True) as cam:
        with pytest.raises(CameraError) as err:
            await adapter.control(cam.access("IN-9408 2K+"), "go_to_preset", 1)
        assert err.value.code == "unsupported"
        assert cam.requests == [] and cam.mqtt_messages == []


async def test_wqhd_alarm_email_uses_the_cgi_when_the_firmware_has_it(adapter: InstarAdapter) -> None:
    with FakeInstarCamera("wqhd", mqtt=True) as cam:
        await adapter.control(cam.access(), "alarm_email", True)
        assert [r.params for r in cam.cgi_requests()] == [[("cmd", "setmaaction"), ("enable", "1")]]
        assert cam.mqtt_messages == []
        assert cam.state["maaction"]["enable"] == "1"


async def test_wqhd_alarm_email_falls_back_to_the_documented_mqtt_topic(adapter: InstarAdapter) -> None:
    with FakeInstarCamera("wqhd", password=PASSWORD, mqtt=True) as cam:
        cam.unknown_commands.add("setmaaction")  # firmware without the web UI's mail-action setter
        await adapter.control(cam.access(), "alarm_email", "on")
        assert [r.params[0] for r in cam.cgi_requests()] == [("cmd", "setmaaction"), ("cmd", "getmqttattr")]
        (message,) = cam.mqtt_messages
        assert message.topic == "cameras/115/alarm/actions/email/enable"
        assert message.payload == b'{"val":"1"}'
        assert cam.state["maaction"]["enable"] == "1"
        await adapter.control(cam.access(), "alarm_email", False)
        assert cam.mqtt_messages[-1].payload == b'{"val":"0"}'
        assert cam.state["maaction"]["enable"] == "0"


async def test_wqhd_alarm_email_without_cgi_or_mqtt_is_unsupported(adapter: InstarAdapter) -> None:
    with FakeInstarCamera("wqhd") as cam:
        cam.unknown_commands.add("setmaaction")
        with pytest.raises(CameraError) as err:
            await adapter.control(cam.access(), "alarm_email", True)
        assert err.value.code == "unsupported"
        assert "MQTT" in err.value.message
        assert cam.state["maaction"]["enable"] == "0"


async def test_broker_refusing_the_login_is_refused(adapter: InstarAdapter) -> None:
    with FakeInstarCamera("wqhd", password=PASSWORD, mqtt=True) as cam:
        cam.state["mqtt"]["mq_pass"] = "Other#Broker1"  # the broker login was changed on the camera
        with pytest.raises(CameraError) as err:
            await adapter.control(cam.access(), "go_to_preset", 2)
        assert err.value.code == "refused"
        assert "MQTT broker" in err.value.message
        assert PASSWORD not in err.value.message
        assert cam.broker is not None and cam.broker.connects[-1][3] is False
        assert cam.state["ptz"]["preset"] is None


async def test_broker_without_authentication_gets_no_login(adapter: InstarAdapter) -> None:
    with FakeInstarCamera("wqhd", mqtt=True) as cam:
        cam.state["mqtt"]["mq_auth"] = "0"
        await adapter.control(cam.access(), "go_to_preset", 5)
        assert cam.broker is not None and cam.broker.connects[-1][1] is None
        assert cam.state["ptz"]["preset"] == 5


async def test_broker_port_nobody_listens_on_is_unreachable(adapter: InstarAdapter) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    with FakeInstarCamera("wqhd", mqtt=True) as cam:
        cam.state["mqtt"]["mq_port"] = str(closed)
        with pytest.raises(CameraError) as err:
            await adapter.control(cam.access(), "go_to_preset", 2)
        assert err.value.code == "unreachable"
        assert f"port {closed}" in err.value.message
        assert "2 attempts" in err.value.message  # one retry (fixture config)


async def test_camera_without_mqtt_settings_command_is_unsupported(adapter: InstarAdapter) -> None:
    with FakeInstarCamera("wqhd", mqtt=True) as cam:
        cam.unknown_commands.add("getmqttattr")
        with pytest.raises(CameraError) as err:
            await adapter.control(cam.access(), "go_to_preset", 2)
        assert err.value.code == "unsupported"
        assert cam.mqtt_messages == []


@pytest.mark.parametrize(
    ("length", "encoded"),
    [
        # MQTT 3.1.1 §2.2.3: the boundaries of 1, 2, 3 and 4 byte remaining lengths
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16383, b"\xff\x7f"),
        (16384, b"\x80\x80\x01"),
        (2097151, b"\xff\xff\x7f"),
        (2097152, b"\x80\x80\x80\x01"),
        (268435455, b"\xff\xff\xff\x7f"),
    ],
)
def test_remaining_length_encoding(length: int, encoded: bytes) -> None:
    assert mqtt.encode_length(length) == encoded


def test_connect_and_publish_packets_byte_for_byte() -> None:
    connect = mqtt.connect_packet("c1", "admin", "pw")
    # fixed header, protocol name "MQTT", level 4, flags (user, password, clean session), keep alive 30 s,
    # then client id, user name, password as length-prefixed strings
    assert connect == (
        b"\x10\x19" + b"\x00\x04MQTT" + b"\x04" + b"\xc2" + b"\x00\x1e"
        + b"\x00\x02c1" + b"\x00\x05admin" + b"\x00\x02pw"
    )  # fmt: skip
    assert mqtt.connect_packet("c1", None, None) == b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x1e\x00\x02c1"
    publish = mqtt.publish_packet("a/b", b'{"val":"1"}', 258)
    assert publish == b"\x32\x12" + b"\x00\x03a/b" + b"\x01\x02" + b'{"val":"1"}'  # QoS 1, packet id 258


def test_topic_joins_prefix_client_id_and_path() -> None:
    assert mqtt.topic("cameras/", "115/", "alarm/actions/email/enable") == "cameras/115/alarm/actions/email/enable"
    assert mqtt.topic("cameras", "115", "features/ptz/preset/goto") == "cameras/115/features/ptz/preset/goto"


def _self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for a DDNS-style name, as cameras present."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "abcd12.ddns3-instar.de")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("abcd12.ddns3-instar.de")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


async def test_publish_over_tls_to_a_broker_with_the_cameras_own_certificate(tmp_path: Path) -> None:
    """MQTT over TLS (the camera's ``mq_portssl``): the message arrives encrypted by default (LAN cameras present a
    certificate for their DDNS name); with certificate checks on, the unverifiable broker is refused clearly and
    nothing is published; a plain connection to the TLS port gets no broker answer."""
    logins: list[tuple[str | None, str | None]] = []

    def check(user: str | None, password: str | None) -> bool:
        logins.append((user, password))
        return (user, password) == ("admin", PASSWORD)

    broker = FakeMqttBroker(check, lambda m: None, lambda: True, ssl_context=_self_signed(tmp_path)).start()
    try:
        target = mqtt.Broker("127.0.0.1", broker.port, "admin", PASSWORD, tls=True)
        await mqtt.publish(target, "cameras/115/features/ptz/preset/goto", b'{"val":"4"}', InstarConfig(retries=0))
        (message,) = broker.messages
        assert (message.topic, message.payload, message.qos) == ("cameras/115/features/ptz/preset/goto",
                                                                 b'{"val":"4"}', 1)  # fmt: skip
        assert logins == [("admin", PASSWORD)]

        with pytest.raises(CameraError) as err:
            await mqtt.publish(target, "cameras/115/x", b"{}", InstarConfig(retries=0, verify_tls=True))
        assert err.value.code == "unreachable" and "SSLCertVerificationError" in err.value.message
        plain = mqtt.Broker("127.0.0.1", broker.port, "admin", PASSWORD, tls=False)
        with pytest.raises(CameraError) as err:
            await mqtt.publish(plain, "cameras/115/x", b"{}", InstarConfig(retries=0, timeout_s=2))
        assert err.value.code == "unreachable"
        assert len(broker.messages) == 1 and len(logins) == 1  # neither reached the broker's login
        assert PASSWORD not in err.value.message
    finally:
        broker.stop()
