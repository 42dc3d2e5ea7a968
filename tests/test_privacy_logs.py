"""Server logs without persons: truncated IPs, scrubbed paths, no e-mail addresses, usage per subject and hour."""

from __future__ import annotations

import ftplib
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alarmcloud.config import PrivacyConfig
from alarmcloud.ftp import start_ftp_server
from alarmcloud.models import AccessLog, UsageHour, utcnow
from alarmcloud.privacy import run_retention
from alarmcloud.privacy_log import scrub_path, scrub_text, writer_for
from alarmcloud.testing import LiveServer
from sqlmodel import select


def test_access_log_has_no_ip_email_or_token(api: Any, server: LiveServer, caplog: pytest.LogCaptureFixture,
                                             tmp_path: Path) -> None:
    core: Any = server.core
    caplog.set_level(logging.DEBUG)
    a = api().register("logged.person@example.com")
    tok = a.post("/api/v1/tokens", json={"name": "t"}).json()
    secret = tok["token"]
    bearer = {"Authorization": f"Bearer {secret}"}
    httpx.get(server.url + "/api/v1/me", headers=bearer)
    httpx.get(server.url + f"/api/v1/me?token={secret}&email=logged.person@example.com", headers=bearer)
    httpx.get(server.url + f"/api/v1/users/logged.person@example.com/{secret}")
    httpx.post(server.url + "/api/v1/auth/login", json={"email": "logged.person@example.com", "password": "nope nope"})
    # the FTP ingest logs failed logins with the peer address (and pyftpdlib logs its sessions): scrubbed too
    core.settings.ftp.passive_ports = ""
    ftp_srv = start_ftp_server(core, port=0, host="127.0.0.1")
    ftp_srv.handler.auth_failed_timeout = 0.01
    try:
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", ftp_srv.port, timeout=30)
        with pytest.raises(ftplib.error_perm):
            ftp.login("logged.person@example.com", secret)
        ftp.close()
    finally:
        ftp_srv.stop()
    logging.getLogger("alarmcloud.privacy.probe").warning("request %s from %s failed", f"/x?token={secret}",
                                                           "2001:db8:4:5::9")
    writer_for(core).flush()
    with core.db.session() as s:
        rows = s.exec(select(AccessLog)).all()
        usage = s.exec(select(UsageHour).where(UsageHour.subject == f"token:{tok['id']}")).all()
    assert len(rows) >= 5
    dump = "\n".join(repr(r.model_dump()) for r in rows)
    assert {r.ip_prefix for r in rows} == {"127.0.0.0/24"}
    for bad in ("127.0.0.1", "logged.person", "example.com", secret, "?"):
        assert bad not in dump, bad
    assert any(r.path == "/api/v1/users/{email}/{id}" and r.status == 404 for r in rows)
    assert any(r.path == "/api/v1/auth/login" and r.status == 401 for r in rows)
    assert all(r.duration_ms >= 0 and r.method for r in rows)
    # usage per API token and hour: counts and bytes, no IP
    assert usage and usage[0].requests == 2 and usage[0].bytes_out > 0 and usage[0].account_id == a.id
    # the test run's log output holds no full address and no e-mail address
    text = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "FTP login failed" in text and "127.0.0.0/24" in text and "2001:db8:4::/48" in text  # lines were logged
    for bad in ("127.0.0.1", "logged.person@example.com", secret, "2001:db8:4:5::9"):
        assert bad not in text, bad
    assert logging.getLogger("uvicorn.access").disabled
    for f in Path(core.settings.data_dir).rglob("*.log"):
        content = f.read_text(errors="replace")
        assert "127.0.0.1" not in content and "@example.com" not in content


def test_access_log_truncates_ipv6_to_48(server: LiveServer) -> None:
    """A client connecting over IPv6 is stored as its /48 network (requests go through the app's middleware)."""
    import anyio

    core: Any = server.core

    async def _get() -> int:
        transport = httpx.ASGITransport(app=server.app, client=("2001:db8:abcd:12:34::7", 40000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return (await c.get("/-/health?probe=ipv6")).status_code

    assert anyio.run(_get) == 200
    writer_for(core).flush()
    with core.db.session() as s:
        rows = s.exec(select(AccessLog).where(AccessLog.ip_prefix != "127.0.0.0/24")).all()
    assert [(r.ip_prefix, r.path) for r in rows] == [("2001:db8:abcd::/48", "/-/health")]


def test_scrubbers() -> None:
    assert scrub_path("/a/b@c.de/x?token=abc") == "/a/{email}/x"
    assert scrub_path("/api/v1/events/0123456789abcdef0123456789abcdef") == "/api/v1/events/{id}"
    assert scrub_text("from 192.168.17.42 by joe@x.org") == "from 192.168.17.0/24 by {email}"
    assert "2001:db8:1::/48" in scrub_text("peer 2001:db8:1:2:3:4:5:6 said hi")
    assert scrub_text("peer [2001:db8:1:2::5]:443 at 12:30:45") == "peer [2001:db8:1::/48]:443 at 12:30:45"
    assert scrub_text("listening on 0.0.0.0:21 and [::]:8000") == "listening on 0.0.0.0:21 and [::]:8000"
    tok = "act_" + "x" * 43
    assert scrub_text(f"GET https://h.example/a?key=s3cr3t {tok} Bearer abc.def") == \
        "GET https://h.example/a?{query} {token} Bearer {token}"


def test_access_log_retention_at_most_90_days(server: LiveServer) -> None:
    core: Any = server.core
    now = utcnow()
    with core.db.session() as s:
        s.add(AccessLog(at=now - timedelta(days=91), ip_prefix="10.0.0.0/24", method="GET", path="/old", status=200))
        s.add(AccessLog(at=now - timedelta(days=10), ip_prefix="10.0.0.0/24", method="GET", path="/new", status=200))
        s.commit()
    assert run_retention(core, dry_run=True)["access_log"] == 1
    with core.db.session() as s:
        assert len(s.exec(select(AccessLog).where(AccessLog.path == "/old")).all()) == 1  # dry run keeps it
    run_retention(core)
    with core.db.session() as s:
        paths = {r.path for r in s.exec(select(AccessLog).where(AccessLog.path.in_(["/old", "/new"]))).all()}  # type: ignore[attr-defined]
    assert paths == {"/new"}
    # never longer than 90 days: the configuration refuses more, and the task caps what it is given
    with pytest.raises(ValueError):
        PrivacyConfig(access_log_days=91)
    with core.db.session() as s:
        s.add(AccessLog(at=now - timedelta(days=95), ip_prefix="10.0.0.0/24", method="GET", path="/old", status=200))
        s.commit()
    core.settings.privacy.access_log_days = 365
    assert run_retention(core)["access_log"] == 1
    core.settings.privacy.access_log_days = 5
    run_retention(core)
    with core.db.session() as s:
        assert s.exec(select(AccessLog).where(AccessLog.path == "/new")).first() is None


def test_usage_per_camera_and_hour_without_addresses(api: Any, server: LiveServer, privacy: Any,
                                                     tmp_path: Path) -> None:
    """Uploads count per camera and hour (requests, bytes); the usage table has no column for an address."""
    core: Any = server.core
    a = privacy.populate(api, tmp_path, "usage@example.com")
    cam_id = a["camera"]["id"]
    size = (tmp_path / f"{a['api'].id}.mp4").stat().st_size
    core.usage.flush()
    with core.db.session() as s:
        rows = s.exec(select(UsageHour).where(UsageHour.subject == f"camera:{cam_id}")).all()
    assert [(r.account_id, r.requests, r.bytes_in) for r in rows] == [(a["api"].id, 1, size)]
    hour = rows[0].hour
    assert (hour.minute, hour.second, hour.microsecond) == (0, 0, 0)
    columns = set(UsageHour.__table__.columns.keys())  # type: ignore[attr-defined]
    assert not {c for c in columns if "ip" in c.split("_") or "addr" in c or "host" in c}, columns


def test_buffered_access_rows_written_at_shutdown(settings: Any) -> None:
    """Rows still buffered when the server stops are written, not lost (usage accounting depends on them)."""
    with LiveServer(settings) as srv:
        core: Any = srv.core
        httpx.get(srv.url + "/-/health")
        httpx.get(srv.url + "/api/v1/me")
    with core.db.session() as s:
        paths = {r.path for r in s.exec(select(AccessLog)).all()}
    assert {"/-/health", "/api/v1/me"} <= paths


def test_the_server_start_line_names_the_real_listening_address() -> None:
    """uvicorn's "running on" line carries the operator's bind address, which is nobody's: left readable."""
    from alarmcloud.privacy_log import install_record_scrubber

    install_record_scrubber()
    start = logging.getLogger("uvicorn.error").makeRecord(
        "uvicorn.error", logging.INFO, __file__, 1, "Uvicorn running on %s://%s:%d (Press CTRL+C to quit)",
        ("http", "192.168.17.42", 8000), None)
    assert start.getMessage() == "Uvicorn running on http://192.168.17.42:8000 (Press CTRL+C to quit)"
    other = logging.getLogger("uvicorn.error").makeRecord(  # any other line of the same logger is scrubbed
        "uvicorn.error", logging.INFO, __file__, 1, "peer %s closed", ("192.168.17.42",), None)
    assert other.getMessage() == "peer 192.168.17.0/24 closed"
