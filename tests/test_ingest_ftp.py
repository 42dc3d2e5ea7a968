"""FTP/FTPS ingest with a real FTP client: clips, snapshots as thumbnails, rejections, caps, TLS."""

from __future__ import annotations

import ftplib
import io
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alarmcloud.ftp import FtpIngestServer, start_ftp_server
from alarmcloud.testing import LiveServer
from alarmcloud.video import thumbnail_jpeg

from tests.conftest import free_port  # type: ignore[import-not-found]

K: Any = None


@pytest.fixture(autouse=True)
def _kit(kit: Any) -> None:
    global K
    K = kit


@pytest.fixture
def ftp_server(server: LiveServer) -> Iterator[FtpIngestServer]:
    core: Any = server.core
    core.settings.ftp.passive_ports = ""
    srv = start_ftp_server(core, port=0, host="127.0.0.1")
    srv.handler.auth_failed_timeout = 0.1
    yield srv
    srv.stop()


@pytest.fixture
def camera(api: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    a = api().register("ftp@example.com")
    cam = a.camera("Yard")
    return a, cam, a.upload_credentials(cam["id"])


def _login(srv: FtpIngestServer, creds: dict[str, Any]) -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", srv.port, timeout=30)
    ftp.login(creds["username"], creds["password"])
    return ftp


def _events(a: Any) -> list[dict[str, Any]]:
    return a.get("/api/v1/events").json()["items"]


def _wait_events(a: Any, n: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while len(items := _events(a)) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    return items


def test_ftp_clip_with_dated_folder_and_snapshot_before(ftp_server: FtpIngestServer, camera: Any,
                                                        tmp_path: Path) -> None:
    a, cam, creds = camera
    clip = K.small_clip(tmp_path / "A_20240501-101500.mp4", seconds=4)
    snap = thumbnail_jpeg(K.small_clip(tmp_path / "other.mp4", seconds=1, fps=5), width=200)
    ftp = _login(ftp_server, creds)
    assert ftp.pwd() == "/"
    ftp.mkd("20240501")
    ftp.cwd("20240501")
    ftp.storbinary("STOR A_20240501-101500.jpg", io.BytesIO(snap))
    with clip.open("rb") as fh:
        ftp.storbinary(f"STOR {clip.name}", fh)
    with pytest.raises(ftplib.error_perm):  # nothing can be downloaded
        ftp.retrbinary(f"RETR {clip.name}", lambda b: None)
    ftp.quit()
    items = _wait_events(a, 1)
    assert len(items) == 1
    ev = items[0]
    assert ev["camera_id"] == cam["id"] and ev["original_name"] == clip.name
    assert ev["width"] == 320 and abs(ev["duration"] - 4) < 0.5
    thumb = a.get(f"/api/v1/events/{ev['id']}/thumbnail")
    assert thumb.status_code == 200 and thumb.content == snap  # the camera's own snapshot
    video = a.get(f"/api/v1/events/{ev['id']}/video")
    assert video.content == clip.read_bytes()
    # the session's staging dir is gone once the camera logs out
    assert not [f for f in K.stored_files(ftp_server.app) if f.startswith(".tmp")]


def test_ftp_snapshot_after_clip_replaces_keyframe_thumbnail(ftp_server: FtpIngestServer, camera: Any,
                                                             tmp_path: Path) -> None:
    a, _, creds = camera
    clip = K.small_clip(tmp_path / "A_clip.mp4", seconds=3)
    snap = thumbnail_jpeg(K.small_clip(tmp_path / "other.mp4", seconds=1, fps=5), width=160)
    ftp = _login(ftp_server, creds)
    with clip.open("rb") as fh:
        ftp.storbinary("STOR A_clip.mp4", fh)
    ftp.quit()
    ev = _wait_events(a, 1)[0]
    keyframe = a.get(f"/api/v1/events/{ev['id']}/thumbnail").content
    assert keyframe.startswith(b"\xff\xd8") and keyframe != snap
    ftp = _login(ftp_server, creds)
    ftp.storbinary("STOR A_clip.jpg", io.BytesIO(snap))
    ftp.quit()
    assert a.get(f"/api/v1/events/{ev['id']}/thumbnail").content == snap


def test_ftp_rejections_leave_nothing(ftp_server: FtpIngestServer, camera: Any, tmp_path: Path) -> None:
    a, cam, creds = camera
    core = ftp_server.app
    core.settings.ingest.max_upload_bytes = 300_000
    big = FtpIngestServer(core, port=0, host="127.0.0.1")  # picks up the small cap
    try:
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", big.port, timeout=30)
        ftp.login(creds["username"], creds["password"])
        ftp.storbinary("STOR A_random.mp4", io.BytesIO(b"\x00\x01garbage" * 1000))
        ftp.storbinary("STOR A_empty.mp4", io.BytesIO(b""))
        with pytest.raises((ftplib.error_temp, ftplib.error_perm, EOFError, OSError)):
            ftp.storbinary("STOR A_huge.mp4", io.BytesIO(b"\x00" * 2_000_000))
        try:
            ftp.quit()
        except (ftplib.Error, EOFError, OSError):
            pass
        time.sleep(0.3)
    finally:
        big.stop()
    assert K.row_counts(core)["clips"] == 0 and K.row_counts(core)["jobs"] == 0
    assert K.stored_files(core) == []
    codes = [r["code"] for r in a.get(f"/api/v1/cameras/{cam['id']}/rejections").json()["items"]]
    assert len(codes) == 2  # random bytes and the empty file; the over-cap upload never completed


def test_ftp_wrong_credentials(ftp_server: FtpIngestServer, camera: Any) -> None:
    _, _, creds = camera
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", ftp_server.port, timeout=30)
    with pytest.raises(ftplib.error_perm, match="530"):
        ftp.login(creds["username"], creds["password"] + "x")
    ftp.close()
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", ftp_server.port, timeout=30)
    with pytest.raises(ftplib.error_perm, match="530"):
        ftp.login("anonymous", "guest")
    ftp.close()


def test_ftps_required_tls(server: LiveServer, camera: Any, tmp_path: Path) -> None:
    a, _, creds = camera
    core: Any = server.core
    cert, key = K.self_signed_cert(tmp_path)
    core.settings.ftp.passive_ports = ""
    core.settings.ftp.tls_cert, core.settings.ftp.tls_key, core.settings.ftp.tls_required = cert, key, True
    srv = start_ftp_server(core, port=0, host="127.0.0.1")
    try:
        assert srv.tls
        plain = ftplib.FTP()
        plain.connect("127.0.0.1", srv.port, timeout=30)
        with pytest.raises(ftplib.error_perm):
            plain.login(creds["username"], creds["password"])
        plain.close()
        ctx = ssl.create_default_context(cafile=str(cert))
        ftps = ftplib.FTP_TLS(context=ctx)
        ftps.connect("127.0.0.1", srv.port, timeout=30)
        ftps.login(creds["username"], creds["password"])  # AUTH TLS first, certificate verified
        ftps.prot_p()
        clip = K.small_clip(tmp_path / "A_tls.mp4", seconds=3)
        with clip.open("rb") as fh:
            ftps.storbinary("STOR A_tls.mp4", fh)
        ftps.quit()
    finally:
        srv.stop()
    items = _wait_events(a, 1)
    assert [e["original_name"] for e in items] == ["A_tls.mp4"]
    assert a.get(items[0]["video_url"]).content == clip.read_bytes()


def test_passive_ports_and_nat_address(server: LiveServer, camera: Any, tmp_path: Path) -> None:
    """Behind NAT the server announces the configured public address and only the forwarded passive ports."""
    a, _, creds = camera
    core: Any = server.core
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        low = probe.getsockname()[1]
    core.settings.ftp.passive_ports = f"{low}-{low + 2}"
    core.settings.ftp.masquerade_address = "203.0.113.9"
    srv = start_ftp_server(core, port=0, host="127.0.0.1")
    try:
        ftp = _login(srv, creds)
        reply = ftp.sendcmd("PASV")
        nums = [int(x) for x in reply[reply.index("(") + 1:reply.index(")")].split(",")]
        assert nums[:4] == [203, 0, 113, 9]
        assert low <= nums[4] * 256 + nums[5] <= low + 2
        ftp.close()
        # a client on the LAN side still uploads: data connections use the announced port range
        core.settings.ftp.masquerade_address = None
    finally:
        srv.stop()
    srv = start_ftp_server(core, port=0, host="127.0.0.1")
    try:
        ftp = _login(srv, creds)
        ftp.set_pasv(True)
        clip = K.small_clip(tmp_path / "A_nat.mp4", seconds=3)
        with clip.open("rb") as fh:
            ftp.storbinary("STOR A_nat.mp4", fh)
        ftp.quit()
    finally:
        srv.stop()
    assert [e["original_name"] for e in _wait_events(a, 1)] == ["A_nat.mp4"]


def test_two_ftp_servers_in_one_process_do_not_disturb_each_other(server: LiveServer, camera: Any) -> None:
    """Each FTP server has its own event loop: stopping one leaves the other serving (several test or tenant
    servers in one process shared pyftpdlib's process-wide loop before)."""
    _, _, creds = camera
    core: Any = server.core
    core.settings.ftp.passive_ports = ""
    first = start_ftp_server(core, port=0, host="127.0.0.1")
    second = start_ftp_server(core, port=0, host="127.0.0.1")
    first.stop()
    try:
        ftp = _login(second, creds)
        assert ftp.sendcmd("NOOP").startswith("200")
        ftp.quit()
    finally:
        second.stop()


def test_serve_starts_ftp_on_the_http_address_by_default(settings: Any, caplog: pytest.LogCaptureFixture,
                                                         tmp_path: Path) -> None:
    """A first start listens on loopback only, FTP included (FTP listened on every network address before)."""
    from tests.conftest import Api  # type: ignore[import-not-found]

    assert settings.host == "127.0.0.1" and settings.ftp.host is None
    settings.ftp.port = free_port()
    settings.ftp.passive_ports = ""
    caplog.set_level("INFO", logger="alarmcloud.ftp")
    with LiveServer(settings, ftp=True) as srv:
        a = Api(srv.url).register("first-start@example.com")
        cam = a.camera("Porch")
        creds = a.upload_credentials(cam["id"])
        assert creds["ftp_port"] == settings.ftp.port
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", settings.ftp.port, timeout=30)
        ftp.login(creds["username"], creds["password"])
        with K.small_clip(tmp_path / "A_first.mp4", seconds=3).open("rb") as fh:
            ftp.storbinary("STOR A_first.mp4", fh)
        ftp.quit()
        assert [e["original_name"] for e in _wait_events(a, 1)] == ["A_first.mp4"]
    lines = [r.getMessage() for r in caplog.records if r.name == "alarmcloud.ftp" and "listening" in r.getMessage()]
    assert lines == [f"FTP ingest listening on localhost:{settings.ftp.port} (this computer only)"]


def test_ftp_follows_the_http_address_unless_ftp_host_is_set(server: LiveServer) -> None:
    core: Any = server.core
    core.settings.ftp.passive_ports = ""

    def bound() -> str:
        srv = start_ftp_server(core, port=0)
        try:
            return str(srv.server.socket.getsockname()[0])
        finally:
            srv.stop()

    assert bound() == "127.0.0.1"
    core.settings.host = "0.0.0.0"  # serve --host 0.0.0.0 opens FTP to the network too
    assert bound() == "0.0.0.0"
    core.settings.ftp.host = "127.0.0.1"  # ftp.host set explicitly wins over the HTTP address
    assert bound() == "127.0.0.1"
    core.settings.host, core.settings.ftp.host = "127.0.0.1", "0.0.0.0"
    assert bound() == "0.0.0.0"
