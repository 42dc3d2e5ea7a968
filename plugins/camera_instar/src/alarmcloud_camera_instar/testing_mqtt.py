"""The fake WQHD camera's built-in MQTT broker: MQTT 3.1.1 on loopback, login check, QoS 1 acknowledgements.

Written from the MQTT 3.1.1 standard, independently of the adapter's client (``mqtt.py``), so a wrong packet
from the client fails the tests instead of being understood by the same code that produced it.
"""

from __future__ import annotations

import socketserver
import ssl
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO


@dataclass(frozen=True)
class MqttMessage:
    """One PUBLISH the broker accepted."""

    topic: str
    payload: bytes
    qos: int
    client_id: str
    username: str | None


class _Closed(Exception):
    pass


def _read(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n)
    if data is None or len(data) < n:
        raise _Closed
    return data


def _read_packet(stream: BinaryIO) -> tuple[int, int, bytes]:
    first = _read(stream, 1)[0]
    length, multiplier = 0, 1
    for _ in range(4):
        byte = _read(stream, 1)[0]
        length += (byte & 0x7F) * multiplier
        multiplier *= 128
        if byte < 0x80:
            break
    else:
        raise _Closed  # malformed remaining length: a real broker drops the connection
    return first >> 4, first & 0x0F, _read(stream, length) if length else b""


def _string(body: bytes, pos: int) -> tuple[bytes, int]:
    size = int.from_bytes(body[pos : pos + 2], "big")
    return body[pos + 2 : pos + 2 + size], pos + 2 + size


class FakeMqttBroker:
    """A broker on ``127.0.0.1:<port>``; ``enabled()`` False makes it drop every connection (MQTT off)."""

    def __init__(
        self,
        check_login: Callable[[str | None, str | None], bool],
        on_publish: Callable[[MqttMessage], None],
        enabled: Callable[[], bool],
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.check_login = check_login
        #: a server-side context makes this a TLS broker (as on the camera's ``mq_portssl``)
        self.ssl_context = ssl_context
        self.on_publish = on_publish
        self.enabled = enabled
        self.messages: list[MqttMessage] = []
        #: every CONNECT seen: (client id, user name, protocol level, accepted)
        self.connects: list[tuple[str, str | None, int, bool]] = []
        self._lock = threading.Lock()
        self._server: socketserver.ThreadingTCPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start the broker first"
        return self._server.server_address[1]

    def start(self) -> FakeMqttBroker:
        broker = self

        class Handler(socketserver.StreamRequestHandler):
            def setup(self) -> None:
                if broker.ssl_context is not None:  # the handshake runs here, in the connection's own thread
                    self.request = broker.ssl_context.wrap_socket(self.request, server_side=True)
                super().setup()

            def handle(self) -> None:
                try:
                    broker._session(self.rfile, self.wfile)
                except (_Closed, ConnectionError):
                    pass

        class Server(socketserver.ThreadingTCPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                # a client that refuses the certificate ends the handshake: expected, no traceback on stderr
                if not isinstance(sys.exc_info()[1], ssl.SSLError | ConnectionError):
                    super().handle_error(request, client_address)  # type: ignore[arg-type]

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _session(self, rfile: BinaryIO, wfile: BinaryIO) -> None:
        if not self.enabled():
            return  # the camera's MQTT service is off: nothing answers
        kind, _, body = _read_packet(rfile)
        if kind != 1:
            return  # the first packet must be CONNECT
        name, pos = _string(body, 0)
        level, flags = body[pos], body[pos + 1]
        pos += 4  # level, flags, keep alive
        client_id, pos = _string(body, pos)
        username = password = None
        if flags & 0x04:  # will topic and message
            _, pos = _string(body, pos)
            _, pos = _string(body, pos)
        if flags & 0x80:
            raw, pos = _string(body, pos)
            username = raw.decode()
        if flags & 0x40:
            raw, pos = _string(body, pos)
            password = raw.decode()
        if name != b"MQTT" or level != 4:
            self._connect(client_id, username, level, False)
            wfile.write(bytes([0x20, 2, 0, 1]))  # unacceptable protocol version
            return
        accepted = self.check_login(username, password)
        self._connect(client_id, username, level, accepted)
        wfile.write(bytes([0x20, 2, 0, 0 if accepted else 5]))  # 5: not authorised
        if not accepted:
            return
        while True:
            kind, flags, body = _read_packet(rfile)
            if kind == 3:  # PUBLISH
                qos = (flags >> 1) & 0x03
                topic, pos = _string(body, 0)
                packet_id = body[pos : pos + 2] if qos else b""
                message = MqttMessage(topic.decode(), body[pos + len(packet_id) :], qos, client_id.decode(), username)
                with self._lock:
                    self.messages.append(message)
                self.on_publish(message)
                if qos == 1:
                    wfile.write(bytes([0x40, 2]) + packet_id)
            elif kind == 12:  # PINGREQ
                wfile.write(bytes([0xD0, 0]))
            else:  # DISCONNECT, or anything this broker does not offer (SUBSCRIBE, QoS 2 flows)
                return

    def _connect(self, client_id: bytes, username: str | None, level: int, accepted: bool) -> None:
        with self._lock:
            self.connects.append((client_id.decode(errors="replace"), username, level, accepted))
