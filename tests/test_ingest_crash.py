"""kill -9 of the real server during an upload: after restart no partial file or row, accepted clips intact."""

from __future__ import annotations

import base64
import ftplib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import free_port  # type: ignore[import-not-found]

ALARMCLOUD = Path(sys.executable).with_name("alarmcloud")


class Serve:
    """``alarmcloud serve`` as a child process."""

    def __init__(self, data: Path, port: int) -> None:
        self.data, self.port, self.proc = data, port, None
        self.url = f"http://127.0.0.1:{port}"
        self.ftp_port = 0

    def start(self) -> Serve:
        env = {**os.environ, "ALARMCLOUD_TEST_DATABASE_URL": "", "ALARMCLOUD_FTP__HOST": "127.0.0.1",
               "ALARMCLOUD_FTP__PASSIVE_PORTS": ""}
        self.proc = subprocess.Popen(  # type: ignore[assignment]
            [str(ALARMCLOUD), "serve", "--data-dir", str(self.data), "--host", "127.0.0.1", "--port",
             str(self.port), "--ftp-port", str(self.ftp_port), "--workers", "0", "--log-level", "WARNING"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/-/health", timeout=2).status_code < 500:
                    return self
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, "server exited"  # type: ignore[attr-defined]
            time.sleep(0.2)
        raise RuntimeError("server did not start")

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)  # type: ignore[attr-defined]
        self.proc.wait(timeout=10)  # type: ignore[attr-defined]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    srv = Serve(tmp_path / "data", free_port())
    yield srv
    if srv.proc is not None and srv.proc.poll() is None:  # type: ignore[attr-defined]
        srv.kill9()


def _slow_upload(url: str, auth: str, data: bytes, sent_before_kill: int) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    head = (f"POST /api/v1/ingest/clips HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n"
            f"Content-Type: video/mp4\r\nContent-Length: {len(data)}\r\n\r\n").encode()
    sock.sendall(head)
    for i in range(0, sent_before_kill, 16384):
        sock.sendall(data[i:min(i + 16384, sent_before_kill)])
        time.sleep(0.01)
    return sock


def _noise(i: int, t: float, w: int, h: int) -> np.ndarray:
    return np.random.default_rng(i).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_kill_9_mid_upload(serve: Serve, api_at: Any, kit: Any, tmp_path: Path) -> None:
    serve.start()
    client = api_at(serve.url).register("crash@example.com")
    cam = client.camera("Gate")
    creds = client.upload_credentials(cam["id"])
    first = kit.small_clip(tmp_path / "A_first.mp4", seconds=3)
    r = client.upload(creds, first)
    assert r.status_code == 201, r.text
    first_id = r.json()["event_id"]
    big = kit.small_clip(tmp_path / "A_big.mp4", seconds=4, width=640, height=352, fps=15, scene=_noise)
    data = big.read_bytes()
    assert len(data) > 1_000_000
    auth = base64.b64encode(f"{creds['username']}:{creds['password']}".encode()).decode()
    staging = serve.data / "blobs" / ".tmp"
    sock = _slow_upload(serve.url, auth, data, len(data) // 2)
    deadline = time.monotonic() + 30  # returns as soon as it happens; room for a loaded CI machine
    staged: list[Path] = []
    while time.monotonic() < deadline and not (staged := [p for p in staging.rglob("*") if p.is_file()]):
        time.sleep(0.05)
    assert staged and staged[0].stat().st_size > 0  # the partial upload is on disk
    # also leave an orphan blob as if the process died between the move and the commit
    orphan = serve.data / "blobs" / client.id / cam["id"] / "orphanclip000.mp4"
    orphan.write_bytes(data[:1000])
    serve.kill9()
    sock.close()
    serve.start()
    assert not [p for p in staging.rglob("*") if p.is_file()]
    assert not orphan.exists()
    items = client.get("/api/v1/events").json()["items"]
    assert [e["id"] for e in items] == [first_id]
    assert client.get(f"/api/v1/events/{first_id}/video").content == first.read_bytes()
    mp4s = sorted(p.name for p in (serve.data / "blobs").rglob("*.mp4"))
    assert mp4s == [f"{first_id}.mp4"]
    assert not list((serve.data / "blobs").rglob("*.part"))
    # the camera's retry after the restart is accepted
    assert client.upload(creds, big).status_code == 201


def test_serve_ftp_kill_9_mid_upload(serve: Serve, api_at: Any, kit: Any, tmp_path: Path) -> None:
    """``serve`` runs the FTP server; a camera's FTP upload cut by kill -9 leaves nothing, the retry lands."""
    serve.ftp_port = free_port()
    serve.start()
    client = api_at(serve.url).register("ftpcrash@example.com")
    cam = client.camera("Drive")
    creds = client.upload_credentials(cam["id"])
    big = kit.small_clip(tmp_path / "A_ftp.mp4", seconds=4, width=640, height=352, fps=15, scene=_noise)
    data = big.read_bytes()
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", serve.ftp_port, timeout=30)
    ftp.login(creds["username"], creds["password"])
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("STOR A_ftp.mp4")
    conn.sendall(data[: len(data) // 2])
    staging = serve.data / "blobs" / ".tmp"
    deadline = time.monotonic() + 30  # returns as soon as it happens; room for a loaded CI machine
    while time.monotonic() < deadline and not [p for p in staging.rglob("*") if p.is_file()]:
        time.sleep(0.05)
    assert [p for p in staging.rglob("*") if p.is_file()], "the half upload should be staged on disk"
    serve.kill9()
    conn.close()
    ftp.close()
    serve.start()
    assert not [p for p in staging.rglob("*") if p.is_file()]
    assert client.get("/api/v1/events").json()["items"] == []
    assert not list((serve.data / "blobs").rglob("*.mp4"))
    # the camera uploads again after the restart: accepted through the restarted FTP server
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", serve.ftp_port, timeout=30)
    ftp.login(creds["username"], creds["password"])
    with big.open("rb") as fh:
        ftp.storbinary("STOR A_ftp.mp4", fh)
    ftp.quit()
    deadline = time.monotonic() + 20
    while not (items := client.get("/api/v1/events").json()["items"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [e["original_name"] for e in items] == ["A_ftp.mp4"]
    assert client.get(items[0]["video_url"]).content == data
