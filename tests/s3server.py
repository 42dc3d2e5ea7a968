"""A real S3 server on loopback for tests: moto's threaded server (in memory, random port), one bucket per test.

Import the fixtures into a test module: ``from tests.s3server import s3, s3_bucket  # noqa: F401``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

ACCESS_KEY = "alarmcloud-test"
SECRET_KEY = "alarmcloud-test-secret"
REGION = "us-east-1"


class MotoS3:
    """``moto.server.ThreadedMotoServer`` on 127.0.0.1 and a boto3 client to look into its buckets."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        import boto3

        self.client = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                                   aws_secret_access_key=SECRET_KEY, region_name=REGION)

    def new_bucket(self) -> str:
        name = f"ac-{uuid.uuid4().hex[:16]}"
        self.client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key in the bucket (the bucket's own listing, not the store's)."""
        out: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return sorted(out)

    def read(self, bucket: str, key: str) -> bytes:
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()

    def stop(self) -> None:
        self.server.stop()


def s3_storage(endpoint: str, bucket: str, **extra: Any) -> dict[str, Any]:
    """The ``storage`` settings of a server using ``bucket`` (staging in <data_dir>/staging)."""
    return {"backend": "s3", "s3": {"bucket": bucket, "endpoint_url": endpoint, "region": REGION,
                                    "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY,
                                    "allow_http": True, **extra}}


@pytest.fixture(scope="session")
def s3() -> Iterator[MotoS3]:
    srv = MotoS3()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def s3_bucket(s3: MotoS3) -> str:
    return s3.new_bucket()


class CuttingProxy:
    """A TCP proxy in front of the S3 server that, once ``cut_after(n)`` is called, drops every connection that
    has sent ``n`` bytes towards the server: the store going away in the middle of an upload."""

    def __init__(self, upstream: str) -> None:
        import socket
        import threading
        from urllib.parse import urlparse

        url = urlparse(upstream)
        self.upstream = (url.hostname or "127.0.0.1", url.port or 80)
        self.limit: int | None = None
        self.cuts = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut_after(self, n: int) -> None:
        self.limit = n

    def _accept(self) -> None:
        import socket
        import threading

        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            conn = self.new_connection()
            threading.Thread(target=self._pipe, args=(client, server, True, conn), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False, conn), daemon=True).start()

    def _pipe(self, src: Any, dst: Any, upward: bool, conn: Any) -> None:
        import socket

        sent = 0
        try:
            while data := src.recv(65536):
                if upward:
                    self.on_upward(data, conn)
                if upward and self.limit is not None and sent + len(data) > self.limit:
                    dst.sendall(data[:max(0, self.limit - sent)])
                    self.cuts += 1
                    break
                dst.sendall(data)
                sent += len(data)
                if not upward:
                    self.on_downward(data, conn)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def new_connection(self) -> Any:
        """State of one proxied connection, handed to the hooks of both its directions (a subclass may keep some)."""
        return None

    def on_upward(self, data: bytes, conn: Any) -> None:
        """Called before each piece sent towards the server is passed on (a subclass may hold it there)."""

    def on_downward(self, data: bytes, conn: Any) -> None:
        """Called after each piece of the server's answer has been passed back."""

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


def bucket_on_loopback(st: Any) -> Any:
    """Settings that let off-site copies reach the stand-in bucket: on loopback, plain http, quick retries."""
    st.notify.webhook_networks = ["127.0.0.0/8"]  # the stand-in bucket is on loopback
    st.offsite.allow_http = True  # and speaks plain http
    st.offsite.timeout_seconds = 5.0
    st.offsite.retry_max_seconds = 0.6
    st.notify.retry_base_seconds = 0.3
    return st
