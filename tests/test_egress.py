"""The egress proxy of the off-site copies: the S3 client reaches the owner's bucket only at an address checked for
that very connection (no DNS rebinding), only its own endpoint, and only with the store's password."""

from __future__ import annotations

import base64
import socket
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alarmcloud import egress, offsite
from alarmcloud.testing import LiveServer, test_settings

from tests.conftest import Api  # type: ignore[import-not-found]
from tests.s3server import ACCESS_KEY, REGION, MotoS3, bucket_on_loopback, s3  # type: ignore[import-not-found]  # noqa: F401

NAME = "bucketbox"  # no dot: the stand-in S3 server reads a dotted host name's first label as a bucket


class Resolver:
    """``socket.getaddrinfo`` with one made-up host name whose address the test sets (what a DNS server that
    rebinds does); every other name resolves as usual."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, ip: str) -> None:
        self.ip = ip
        self.asked = 0
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host != NAME:
                return real(host, port, *args, **kwargs)
            self.asked += 1
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (self.ip, int(port or 0)))]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


class Listener:
    """A TCP server on ``host`` that counts the connections it gets (and closes them)."""

    def __init__(self, host: str, port: int = 0) -> None:
        self.accepted = 0
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer.accepted += 1

        self.server = socketserver.ThreadingTCPServer((host, port), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def lone(tmp_path: Path) -> Iterator[LiveServer]:
    st = bucket_on_loopback(test_settings(tmp_path / "data", camera_networks=["127.0.0.0/8"]))
    st.notify.webhook_networks = ["127.0.0.1/32"]  # the stand-in bucket's address, no other loopback address
    with LiveServer(st) as srv:
        yield srv


def test_the_client_connects_to_the_address_checked_for_each_connection(
        lone: LiveServer, s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    port = int(s3.endpoint.rsplit(":", 1)[1])
    dns = Resolver(monkeypatch, "127.0.0.1")
    bucket = s3.new_bucket()
    a = Api(lone.url).register("egress1@example.com")
    r = a.patch("/api/v1/me/offsite", json={"enabled": True, "endpoint": f"http://{NAME}:{port}", "region": REGION,
                                             "bucket": bucket, "access_key_id": ACCESS_KEY, "secret_key": "s3cr3t"})
    assert r.status_code == 200, r.text

    # the S3 client cannot resolve the made-up name itself: the test object got there through the proxy, which
    # resolved it, checked 127.0.0.1 and connected there
    asked = dns.asked
    r = a.post("/api/v1/me/offsite/test")
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    assert dns.asked > asked + 1  # the server's own check, then the proxy's for the connection

    # the name now points elsewhere just after the server's check, before the client connects (DNS rebinding):
    # the proxy resolves again, refuses 127.0.0.2 (not among the allowed networks) and never connects there
    trap = Listener("127.0.0.2", port)
    check = offsite.check_endpoint

    def check_then_rebind(app: Any, url: str) -> httpx.URL:
        u = check(app, url)
        dns.ip = "127.0.0.2"
        return u

    monkeypatch.setattr(offsite, "check_endpoint", check_then_rebind)
    try:
        r = a.post("/api/v1/me/offsite/test")
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["code"] == "cannot_connect" and "not a public address" in err["message"], err
        assert trap.accepted == 0
        assert s3.keys(bucket) == []
    finally:
        trap.close()

    # the server keeps serving, and with the name back on the allowed address copies work again
    monkeypatch.setattr(offsite, "check_endpoint", check)
    dns.ip = "127.0.0.1"
    assert a.post("/api/v1/me/offsite/test").json()["ok"] is True


def _ask(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        out = b""
        while piece := sock.recv(65536):
            out += piece
        return out


def _auth(url: str) -> bytes:
    u = httpx.URL(url)
    return b"Proxy-Authorization: Basic " + base64.b64encode(f"{u.username}:{u.password}".encode()) + b"\r\n"


def test_the_proxy_admits_only_its_endpoint_with_its_password() -> None:
    web = Listener("127.0.0.1")  # stands in for the endpoint; the proxy must never reach it in this test
    other = Listener("127.0.0.1")
    try:
        url = egress.PROXY.url_for(httpx.URL(f"http://127.0.0.1:{web.port}"), ["127.0.0.1/32"])
        port = httpx.URL(url).port
        assert port is not None and httpx.URL(url).host == "127.0.0.1"
        get = f"GET http://127.0.0.1:{web.port}/b/k HTTP/1.1\r\nHost: 127.0.0.1:{web.port}\r\n".encode()

        no_password = _ask(port, get + b"\r\n")
        assert no_password.startswith(b"HTTP/1.1 407 "), no_password
        wrong = _ask(port, get + b"Proxy-Authorization: Basic " + base64.b64encode(b"alarmcloud:guess") + b"\r\n\r\n")
        assert wrong.startswith(b"HTTP/1.1 407 "), wrong
        elsewhere = _ask(port, f"CONNECT 127.0.0.1:{other.port} HTTP/1.1\r\n".encode() + _auth(url) + b"\r\n")
        assert elsewhere.startswith(b"HTTP/1.1 403 ") and b"<Code>EndpointNotAllowed</Code>" in elsewhere
        assert web.accepted == 0 and other.accepted == 0

        # the same endpoint under rules that no longer allow its address: refused before any connection
        strict = egress.PROXY.url_for(httpx.URL(f"http://127.0.0.1:{web.port}"), [])
        refused = _ask(port, get + _auth(strict) + b"\r\n")
        assert refused.startswith(b"HTTP/1.1 403 ") and b"not a public address" in refused, refused
        assert web.accepted == 0
        for bad in (b"CONNECT [::1 HTTP/1.1\r\n", b"GET /b/k HTTP/1.1\r\n", b"GET https://127.0.0.1/ HTTP/1.1\r\n"):
            answer = _ask(port, bad + _auth(url) + b"\r\n")
            assert answer.startswith(b"HTTP/1.1 400 "), (bad, answer)
        assert _ask(port, b"\x16\x03\x01 hello\r\n\r\n").startswith(b"HTTP/1.1 400 ")  # not HTTP at all
        huge = _ask(port, get + _auth(url) + b"X-Filler: " + b"a" * (egress.HEAD_LIMIT + 10))
        assert huge.startswith(b"HTTP/1.1 431 "), huge[:80]
    finally:
        web.close()
        other.close()


def test_the_proxy_tunnels_and_forwards_to_its_endpoint() -> None:
    class Hello(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                head += self.rfile.read(1)
            seen.append(head)
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")

    seen: list[bytes] = []
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        where = f"127.0.0.1:{srv.server_address[1]}"
        url = egress.PROXY.url_for(httpx.URL(f"https://{where}"), ["127.0.0.1/32"])
        port = httpx.URL(url).port
        assert port is not None
        # https: a CONNECT tunnel, then the client's own bytes (TLS in real use) pass unchanged
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"CONNECT {where} HTTP/1.1\r\n".encode() + _auth(url) + b"\r\n")
            assert sock.recv(1024) == b"HTTP/1.1 200 Connection established\r\n\r\n"
            sock.sendall(f"GET /bucket/key HTTP/1.1\r\nHost: {where}\r\n\r\n".encode())
            out = b""
            while piece := sock.recv(65536):
                out += piece
        assert out.endswith(b"hello") and seen[-1].startswith(b"GET /bucket/key HTTP/1.1\r\n")

        # plain http: the request in origin form, without the proxy's password, one request per connection
        plain = egress.PROXY.url_for(httpx.URL(f"http://{where}"), ["127.0.0.1/32"])
        out = _ask(port, f"PUT http://{where}/bucket/key?x=1 HTTP/1.1\r\nHost: {where}\r\n".encode() + _auth(plain)
                   + b"Connection: keep-alive\r\nContent-Length: 0\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 200 OK") and out.endswith(b"hello"), out
        head = seen[-1].decode().lower()
        assert head.startswith("put /bucket/key?x=1 http/1.1\r\n")
        assert "proxy-authorization" not in head and "connection: close" in head and "keep-alive" not in head
    finally:
        srv.shutdown()
        srv.server_close()
