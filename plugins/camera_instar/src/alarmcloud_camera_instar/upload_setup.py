"""One-click setup: the CGI requests that point a camera's FTP(S) upload and alarm server at this deployment.

Sources: ``reference/instar_cameras.md`` §2.3 (FTP) and §2.5 (alarm server). Each step is one request and a
line for the customer that says what was set (never a password).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from alarmcloud.contracts import CameraError, UploadTarget

from alarmcloud_camera_instar.catalog import HD, Generation

Params = list[tuple[str, str]]


@dataclass(frozen=True)
class SetupStep:
    """One request of the one-click setup and what it means for the customer."""

    params: Params
    summary: str


def setup_steps(gen: Generation, target: UploadTarget) -> tuple[list[SetupStep], list[str]]:
    """The requests to send, and notes about what could not be set on this generation."""
    if gen.api == "wqhd":
        steps, notes = _wqhd_ftp(target), []
    else:
        steps, notes = _hi3510_ftp(gen, target)
    if not target.alarm_server_url:
        notes.append("alarm server: not set (this deployment has no public alarm-server URL)")
        return steps, notes
    server = _alarm_server(target.alarm_server_url)
    if gen.api == "wqhd":
        steps.append(_wqhd_alarm_server(server, target))
    elif server.ssl:
        notes.append("alarm server: not set (720p/Full HD cameras have no documented HTTPS option)")
    else:
        steps.append(_hi3510_alarm_server(server, target))
    return steps, notes


def _hi3510_ftp(gen: Generation, target: UploadTarget) -> tuple[list[SetupStep], list[str]]:
    notes: list[str] = []
    params: Params = [
        ("cmd", "setftpattr"),
        ("-ft_server", target.ftp_host),
        ("-ft_port", str(target.ftp_port)),
        ("-ft_username", target.username),
        ("-ft_password", target.password),
        ("-ft_mode", "1"),
        ("-ft_dirname", "./"),
    ]
    tls = "plain FTP"
    if gen.key == HD:
        if target.ftps:
            notes.append("FTPS: 720p cameras only upload over plain FTP")
    else:
        params.append(("-ft_ssl", "1" if target.ftps else "0"))
        tls = "FTPS" if target.ftps else "plain FTP"
    ftp = SetupStep(params, f"FTP upload: {target.ftp_host}:{target.ftp_port} as {target.username} ({tls}, passive)")
    actions = SetupStep(
        [
            ("cmd", "setmdalarm"),
            ("-aname", "ftprec"),
            ("-switch", "on"),
            ("cmd", "setmdalarm"),
            ("-aname", "ftpsnap"),
            ("-switch", "off"),
        ],
        "upload only alarm recordings: alarm videos to FTP on, alarm snapshots to FTP off",
    )
    return [ftp, actions], notes


def _wqhd_ftp(target: UploadTarget) -> list[SetupStep]:
    ftp = SetupStep(
        [
            ("cmd", "setftpattr"),
            ("ft_server", target.ftp_host),
            ("ft_port", str(target.ftp_port)),
            ("ft_username", target.username),
            ("ft_password", target.password),
            ("ft_mode", "1"),
            ("ft_dirname", "./"),
            ("ft_autocreatedir", "1"),
            ("ft_dirmode", "0"),
            ("ft_ssl", "1" if target.ftps else "0"),
            ("ft_insecure", "0"),
        ],
        f"FTP upload: {target.ftp_host}:{target.ftp_port} as {target.username} "
        f"({'FTPS' if target.ftps else 'plain FTP'}, passive)",
    )
    video = SetupStep([("cmd", "setftpaction"), ("type", "rec"), ("enable", "1")], "alarm videos to FTP: on")
    snap = SetupStep(
        [("cmd", "setftpaction"), ("type", "snap"), ("enable", "0")],
        "alarm snapshots to FTP: off (only alarm recordings are uploaded)",
    )
    return [ftp, video, snap]


@dataclass(frozen=True)
class _Server:
    host: str
    port: int
    path: str
    ssl: bool


def _alarm_server(url: str) -> _Server:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CameraError("invalid", "the alarm-server URL must be an http(s) URL")
    ssl = parts.scheme == "https"
    return _Server(parts.hostname, parts.port or (443 if ssl else 80), parts.path or "/", ssl)


def _hi3510_alarm_server(server: _Server, target: UploadTarget) -> SetupStep:
    params: Params = [
        ("cmd", "setmdalarm"),
        ("-aname", "server2"),
        ("-switch", "on"),
        ("-interval", "1"),
        ("cmd", "setalarmserverattr"),
        ("-as_index", "3"),
        ("-as_server", server.host),
        ("-as_port", str(server.port)),
        ("-as_path", server.path),
        ("-as_auth", "1"),
        ("-as_username", target.username),
        ("-as_password", target.password),
        ("-as_area", "1"),
        ("-as_io", "1"),
        ("-as_audio", "1"),
        ("-as_areaio", "1"),
        ("-as_activequery", "1"),
        ("-as_query1", "0"),
        ("-as_query2", "0"),
        ("-as_query3", "0"),
    ]
    return SetupStep(params, f"alarm server: http://{server.host}:{server.port}{server.path} (Basic auth)")


def _wqhd_alarm_server(server: _Server, target: UploadTarget) -> SetupStep:
    # openHAB sends WQHD cameras this mixed dash/no-dash string as is; keep it exactly
    params: Params = [
        ("cmd", "setasaction"),
        ("-server", "1"),
        ("enable", "1"),
        ("-interval", "1"),
        ("cmd", "setasattr"),
        ("-as_index", "1"),
        ("-as_server", server.host),
        ("-as_port", str(server.port)),
        ("-as_path", server.path),
        ("-as_ssl", "1" if server.ssl else "0"),
        ("-as_insecure", "0"),
        ("-as_mode", "0"),
        ("-as_activequery", "1"),
        ("-as_auth", "1"),
        ("-as_username", target.username),
        ("-as_password", target.password),
    ]
    params += [(f"-as_query{i}", "0") for i in range(1, 6)]
    scheme = "https" if server.ssl else "http"
    return SetupStep(params, f"alarm server: {scheme}://{server.host}:{server.port}{server.path} (Basic auth)")
