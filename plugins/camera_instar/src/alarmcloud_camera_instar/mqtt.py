"""A minimal MQTT 3.1.1 publisher for the WQHD cameras' built-in broker (no third-party MQTT library).

For WQHD (2K+) cameras some controls are known only as MQTT topics (``reference/instar_cameras.md`` §3.2): going
to a PTZ preset (``features/ptz/preset/goto``) and the alarm e-mail switch (``alarm/actions/email/enable``).
The adapter needs one thing from MQTT: publish one message with QoS 1 and wait for the broker's PUBACK. That is
four packets (CONNECT/CONNACK, PUBLISH/PUBACK, DISCONNECT), written here against the MQTT 3.1.1 standard
(OASIS, 2014) rather than pulling in a client library with its own threads and event loop.
"""

from __future__ import annotations

import json
import logging
import secrets
import ssl
from dataclasses import dataclass

import anyio
from alarmcloud.contracts import CameraError
from anyio.abc import ByteStream
from anyio.streams.buffered import BufferedByteReceiveStream

from alarmcloud_camera_instar.config import InstarConfig

log = logging.getLogger(__name__)

PROTOCOL_LEVEL = 4  # MQTT 3.1.1
KEEPALIVE_S = 30
CONNECT, CONNACK, PUBLISH, PUBACK, DISCONNECT = 1, 2, 3, 4, 14

#: CONNACK return codes (MQTT 3.1.1 §3.2.2.3) → adapter error code and meaning
_CONNACK: dict[int, tuple[str, str]] = {
    1: ("unsupported", "the broker does not accept MQTT 3.1.1"),
    2: ("refused", "the broker rejected the client identifier"),
    3: ("unreachable", "the MQTT service is unavailable"),
    4: ("refused", "the broker refused the camera login (wrong user name or password?)"),
    5: ("refused", "the broker does not authorise this login"),
}


class MqttError(Exception):
    """The broker answered something a 3.1.1 broker never sends."""


@dataclass(frozen=True)
class Broker:
    """Where and how to reach a broker; ``password`` is the camera's, decrypted for this one call."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False


def encode_length(n: int) -> bytes:
    """The variable-length "remaining length" of a fixed header (1-4 bytes, 7 bits each)."""
    if not 0 <= n <= 268_435_455:
        raise ValueError("MQTT packets are at most 256 MiB")
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def encode_string(text: str | bytes) -> bytes:
    """A UTF-8 string (or binary data) prefixed with its two-byte length."""
    data = text.encode() if isinstance(text, str) else text
    if len(data) > 65535:
        raise ValueError("MQTT strings are at most 65535 bytes")
    return len(data).to_bytes(2, "big") + data


def packet(kind: int, flags: int, body: bytes) -> bytes:
    """One control packet: type and flags, remaining length, body."""
    return bytes([kind << 4 | flags]) + encode_length(len(body)) + body


def connect_packet(client_id: str, username: str | None, password: str | None) -> bytes:
    """CONNECT with a clean session; user name and password only when given."""
    flags = 0x02  # clean session: nothing is kept for this throw-away client
    payload = encode_string(client_id)
    if username is not None:
        flags |= 0x80
        payload += encode_string(username)
        if password is not None:
            flags |= 0x40
            payload += encode_string(password)
    header = encode_string("MQTT") + bytes([PROTOCOL_LEVEL, flags]) + KEEPALIVE_S.to_bytes(2, "big")
    return packet(CONNECT, 0, header + payload)


def publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    """PUBLISH with QoS 1 (the broker confirms with PUBACK), not retained."""
    return packet(PUBLISH, 0x02, encode_string(topic) + packet_id.to_bytes(2, "big") + payload)


def json_value(value: str) -> bytes:
    """The INSTAR payload form ``{"val":"1"}`` (values are always strings)."""
    return json.dumps({"val": value}, separators=(",", ":")).encode()


async def read_packet(reader: BufferedByteReceiveStream) -> tuple[int, int, bytes]:
    """(type, flags, body) of the next packet."""
    first = (await reader.receive_exactly(1))[0]
    length, shift = 0, 0
    for _ in range(4):
        byte = (await reader.receive_exactly(1))[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    else:
        raise MqttError("malformed remaining length")
    body = await reader.receive_exactly(length) if length else b""
    return first >> 4, first & 0x0F, body


async def _open(broker: Broker, config: InstarConfig) -> ByteStream:
    context: ssl.SSLContext | None = None
    if broker.tls:
        context = ssl.create_default_context()
        if not config.verify_tls:  # same rule as the CGI client: LAN cameras present their DDNS certificate
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    return await anyio.connect_tcp(broker.host, broker.port, tls=broker.tls, ssl_context=context,
                                   tls_standard_compatible=False)  # fmt: skip


async def _publish_once(broker: Broker, topic: str, payload: bytes, config: InstarConfig) -> None:
    client_id = "alarmcloud-" + secrets.token_hex(4)  # at most 23 characters, as 3.1.1 brokers must accept
    stream = await _open(broker, config)
    async with stream:
        reader = BufferedByteReceiveStream(stream)
        await stream.send(connect_packet(client_id, broker.username, broker.password))
        kind, _, body = await read_packet(reader)
        if kind != CONNACK or len(body) != 2:
            raise MqttError(f"expected CONNACK, got packet type {kind}")
        if body[1]:
            code, meaning = _CONNACK.get(body[1], ("refused", f"connection refused with code {body[1]}"))
            raise CameraError(code, f"the camera's MQTT broker: {meaning}")
        packet_id = secrets.randbelow(65535) + 1
        await stream.send(publish_packet(topic, payload, packet_id))
        while True:
            kind, _, body = await read_packet(reader)
            if kind == PUBACK and body[:2] == packet_id.to_bytes(2, "big"):
                break
            # a broker may interleave other packets (e.g. retained messages); only our PUBACK ends the wait
        await stream.send(packet(DISCONNECT, 0, b""))


async def publish(broker: Broker, topic: str, payload: bytes, config: InstarConfig | None = None) -> None:
    """Publish one QoS 1 message and return when the broker has acknowledged it.

    Network failures and timeouts are retried like CGI requests and end as ``unreachable``; a refused login is
    ``refused`` at once.
    """
    config = config or InstarConfig()
    attempts = config.retries + 1
    last = ""
    for attempt in range(attempts):
        if attempt:
            await anyio.sleep(config.retry_backoff_s * 2 ** (attempt - 1))
        try:
            with anyio.fail_after(config.timeout_s):
                await _publish_once(broker, topic, payload, config)
            return
        except TimeoutError:
            last = "timed out"
        except (OSError, anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError, ssl.SSLError) as exc:
            last = f"connection failed ({exc.__class__.__name__})"
        except MqttError as exc:
            last = f"protocol error ({exc})"
    log.info("MQTT publish to port %s failed after %d attempts: %s", broker.port, attempts, last)
    raise CameraError(
        "unreachable", f"the camera's MQTT broker (port {broker.port}) did not answer: {last} ({attempts} attempts)"
    )


def topic(prefix: str, client_id: str, path: str) -> str:
    """``<prefix><client id><path>`` as the WQHD MQTT API builds it (``cameras/`` + ``115/`` + ``alarm/...``)."""
    return "/".join(part.strip("/") for part in (prefix, client_id, path) if part.strip("/"))
