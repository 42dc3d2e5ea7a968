"""A forward proxy inside the server process: the S3 client of the off-site copies reaches the owner's bucket
endpoint only through it, and it connects only to an address it has just checked.

obstore's S3 client resolves host names by itself (in Rust, past Python's ``socket``). Checking the endpoint's
addresses first and letting the client connect afterwards would resolve the name twice, and a DNS answer that
changes in between (DNS rebinding) could reach an address the operator's rules refuse: the cloud's metadata
service, a database on the private network. So every store gets this proxy. For each connection the proxy resolves
the host once, checks every address (``notify.resolve_target``, the rules of webhooks) and connects to the
checked address itself:

- https goes through a CONNECT tunnel: TLS stays end to end, and the client checks the certificate against the
  host name as usual;
- plain http (only where the operator allows it) is forwarded one request per connection (``Connection: close``),
  so every request is checked.

Each store gets its own password for the proxy, which admits exactly its endpoint's host and port under its
server's networks; a request without a known password is refused (407), one for another host too (403). The
proxy listens on 127.0.0.1 only, on a port of its own, from the first store made in the process.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import socket
import socketserver
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from collections.abc import Iterable

log = logging.getLogger(__name__)

#: the most a request head sent to the proxy may hold
HEAD_LIMIT = 32 * 1024
#: seconds for the client to send its request head, and for the connection to the endpoint
HANDSHAKE_SECONDS = 15.0
#: seconds a tunnel may stay silent both ways before it is closed (the client's own limits are shorter)
IDLE_SECONDS = 600.0
#: headers meant for the proxy, or for one hop only: not passed on to the endpoint
_HOP = {b"proxy-authorization", b"proxy-connection", b"connection", b"keep-alive", b"te", b"trailer", b"upgrade"}


@dataclass(frozen=True)
class Rule:
    """What one password admits: this host and port, with these non-public networks allowed."""

    host: str
    port: int
    networks: tuple[str, ...]


class Refused(Exception):
    """A request the proxy answers itself: HTTP status and reason, an S3-style error code, a message."""

    def __init__(self, status: int, reason: str, message: str, code: str = "EndpointNotAllowed") -> None:
        super().__init__(message)
        self.status, self.reason, self.code = status, reason, code


class EgressProxy:
    """The process's proxy: ``url_for`` hands out a proxy URL (with the password of one endpoint's rule)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, Rule] = {}
        self._passwords: dict[Rule, str] = {}
        self._server: socketserver.ThreadingTCPServer | None = None
        self._pid = 0

    def url_for(self, endpoint: httpx.URL, networks: Iterable[str]) -> str:
        """The proxy URL for a client that may reach only ``endpoint``'s host and port."""
        rule = Rule(endpoint.host.lower(), endpoint.port or (443 if endpoint.scheme == "https" else 80),
                    tuple(networks))
        with self._lock:
            password = self._passwords.get(rule)
            if password is None:  # one per endpoint and rules: bounded by the endpoints in use
                password = secrets.token_urlsafe(24)
                self._passwords[rule], self._rules[password] = password, rule
            port = self._listening()
        return f"http://alarmcloud:{password}@127.0.0.1:{port}"

    def rule(self, password: str | None) -> Rule | None:
        return self._rules.get(password or "")

    def _listening(self) -> int:
        if self._server is None or self._pid != os.getpid():  # a forked child has the object, not the thread
            server = _Server(("127.0.0.1", 0), _Handler)
            server.proxy = self
            threading.Thread(target=server.serve_forever, name="alarmcloud-egress", daemon=True).start()
            self._server, self._pid = server, os.getpid()
            log.debug("egress proxy listening on 127.0.0.1:%d", server.server_address[1])
        return int(self._server.server_address[1])


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: EgressProxy


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """The request head (without its blank line) and whatever of the body came with it."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > HEAD_LIMIT:
            raise Refused(431, "Request Header Fields Too Large", "the request head is too large")
        piece = sock.recv(16384)
        if not piece:
            raise ConnectionError("the client closed the connection")
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _password(headers: list[bytes]) -> str | None:
    for line in headers:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"proxy-authorization":
            scheme, _, encoded = value.strip().partition(b" ")
            if scheme.lower() != b"basic":
                return None
            try:
                return base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                return None
    return None


def _host_port(authority: str, default: int) -> tuple[str, int]:
    u = httpx.URL(f"http://{authority}")  # brackets of an IPv6 address and a port number alike
    return u.host.lower(), u.port or default


class _Handler(socketserver.BaseRequestHandler):
    request: socket.socket
    server: _Server

    def handle(self) -> None:
        client = self.request
        client.settimeout(HANDSHAKE_SECONDS)
        try:
            upstream, head = self._open(client)
        except Refused as exc:
            self._answer(client, exc)
            return
        except (OSError, ValueError, httpx.InvalidURL):  # the client went away, or sent no request at all
            return
        with upstream:
            if head is None:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                upstream.sendall(head)
            _pipe(client, upstream)

    def _open(self, client: socket.socket) -> tuple[socket.socket, bytes | None]:
        """The connection to the checked address, and (plain http) the request to send on it first."""
        head, rest = _read_head(client)
        first, *headers = head.split(b"\r\n")
        try:
            method, target, version = first.decode("ascii").split(" ")
        except (UnicodeDecodeError, ValueError):
            raise Refused(400, "Bad Request", "not an HTTP request") from None
        rule = self.server.proxy.rule(_password(headers))
        if rule is None:
            raise Refused(407, "Proxy Authentication Required", "this proxy serves the server's own S3 client")
        try:
            return self._connect(rule, method, target, version, headers, rest)
        except httpx.InvalidURL:
            raise Refused(400, "Bad Request", "not a valid request target") from None

    def _connect(self, rule: Rule, method: str, target: str, version: str, headers: list[bytes],
                 rest: bytes) -> tuple[socket.socket, bytes | None]:
        from alarmcloud import notify, offsite

        if method == "CONNECT":
            host, port = _host_port(target, 443)
            forward = None
        else:
            u = httpx.URL(target)
            if u.scheme != "http" or not u.host:
                raise Refused(400, "Bad Request", "only http:// requests are forwarded; https goes by CONNECT")
            host, port = u.host.lower(), u.port or 80
            path = u.raw_path or b"/"
            kept = [h for h in headers if h.partition(b":")[0].strip().lower() not in _HOP]
            forward = b"\r\n".join([f"{method} ".encode() + path + f" {version}".encode(), *kept,
                                    b"Connection: close", b"", b""]) + rest
        if (host, port) != (rule.host, rule.port):
            raise Refused(403, "Forbidden", f"the bucket endpoint is {rule.host}:{rule.port}, not {host}:{port}")
        try:
            ip = notify.resolve_target(httpx.URL(scheme="http", host=host, port=port), list(rule.networks),
                                       offsite.WHAT)
        except notify.TargetNotAllowed as exc:
            log.warning("egress refused: %s", exc)
            raise Refused(403, "Forbidden", str(exc)) from None
        try:
            upstream = socket.create_connection((ip, port), timeout=HANDSHAKE_SECONDS)
        except TimeoutError:
            raise Refused(504, "Gateway Timeout", f"{host}:{port} did not answer", "EndpointTimeout") from None
        except OSError:
            raise Refused(502, "Bad Gateway", f"cannot connect to {host}:{port}", "EndpointUnreachable") from None
        return upstream, forward

    @staticmethod
    def _answer(client: socket.socket, exc: Refused) -> None:
        """An S3-style error document, so the owner reads the reason among the bucket's answers."""
        text = str(exc).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{exc.code}</Code>'
                f"<Message>{text}</Message></Error>").encode()
        head = (f"HTTP/1.1 {exc.status} {exc.reason}\r\nContent-Type: application/xml\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        try:
            client.sendall(head + body)
        except OSError:
            pass


def _pipe(client: socket.socket, upstream: socket.socket) -> None:
    """Copy both ways until both sides are done (or silent for ``IDLE_SECONDS``)."""
    for sock in (client, upstream):
        sock.settimeout(IDLE_SECONDS)

    def copy(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    back = threading.Thread(target=copy, args=(upstream, client), daemon=True)
    back.start()
    copy(client, upstream)
    back.join()


#: the one proxy of this process
PROXY = EgressProxy()
