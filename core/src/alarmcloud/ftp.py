"""FTP/FTPS ingest server (pyftpdlib): cameras log in with their upload credentials and STOR clips and snapshots."""

from __future__ import annotations

import errno
import logging
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyftpdlib.authorizers import AuthenticationFailed
from pyftpdlib.filesystems import AbstractedFS
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import ThreadedFTPServer

from alarmcloud.ingest import Rejected, ingest_file

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

log = logging.getLogger(__name__)

#: a camera snapshot this close (seconds) to a clip becomes the clip's thumbnail
SNAPSHOT_WINDOW_S = 60.0
MAX_SNAPSHOT_BYTES = 2 * 1024 * 1024
#: STOR, CWD, LIST/NLST/SIZE/MDTM, MKD, DELE/RMD, RNFR/RNTO: never RETR or APPE
ALLOWED_PERMS = frozenset("elwmdf")


@dataclass
class _Recent:
    """Per camera: the latest snapshot and the latest clip, to pair them whichever arrives first."""

    snapshot: bytes | None = None
    snapshot_at: float = 0.0
    clip_id: str | None = None
    clip_at: float = 0.0
    clip_has_snapshot: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class _CappedFile:
    """A write-only file that fails the transfer once it grows past ``cap`` bytes."""

    def __init__(self, fh: Any, cap: int) -> None:
        self._fh = fh
        self._cap = cap
        self._n = 0
        self.name = fh.name

    @property
    def closed(self) -> bool:
        return bool(self._fh.closed)

    def write(self, data: bytes) -> int:
        self._n += len(data)
        if self._n > self._cap:
            raise OSError(errno.EFBIG, f"file too large (at most {self._cap} bytes)")
        return int(self._fh.write(data))

    def close(self) -> None:
        self._fh.close()

    def fileno(self) -> int:
        return int(self._fh.fileno())


class _StagingFS(AbstractedFS):
    """The session's private staging directory; writes are capped at the upload limit."""

    cap = 200 * 1024 * 1024

    def open(self, filename: str, mode: str) -> Any:
        if "r" in mode and "+" not in mode:
            raise OSError(errno.EACCES, "downloads are not allowed")
        return _CappedFile(open(filename, mode), self.cap)  # noqa: SIM115


class _Authorizer:
    """Upload credentials of cameras; every login gets a fresh empty home (set on the handler)."""

    def __init__(self, server: FtpIngestServer) -> None:
        self.server = server

    def validate_authentication(self, username: str, password: str, handler: Any) -> None:
        camera_id = self.server.app.upload_logins.check(username, password)
        if camera_id is None:
            log.info("FTP login failed for user %r from %s", username[:64], handler.remote_ip)
            raise AuthenticationFailed("Authentication failed.")
        handler.ac_camera_id = camera_id
        self.server.staging_root.mkdir(parents=True, exist_ok=True)
        handler.ac_home = tempfile.mkdtemp(prefix="ftp-", dir=self.server.staging_root)

    def get_home_dir(self, username: str) -> str:
        return str(self.server.staging_root)  # replaced by the session's own dir in handle_auth_success

    def has_user(self, username: str) -> bool:
        return True

    def has_perm(self, username: str, perm: str, path: str | None = None) -> bool:
        return perm in ALLOWED_PERMS

    def get_perms(self, username: str) -> str:
        return "".join(sorted(ALLOWED_PERMS))

    def get_msg_login(self, username: str) -> str:
        return "Login successful."

    def get_msg_quit(self, username: str) -> str:
        return "Goodbye."

    def impersonate_user(self, username: str, password: str) -> None:
        pass

    def terminate_impersonation(self, username: str) -> None:
        pass


class _IngestMixin:
    """Handler behaviour shared by FTP and FTPS: private home, ingest on complete STOR, cleanup."""

    ac_server: FtpIngestServer
    ac_camera_id: str | None = None
    ac_home: str | None = None

    def handle_auth_success(self, home: str, password: str, msg_login: str) -> None:
        super().handle_auth_success(self.ac_home or home, password, msg_login)  # type: ignore[misc]

    def on_file_received(self, file: str) -> None:
        if self.ac_camera_id:
            self.ac_server.received(self.ac_camera_id, Path(file))

    def on_incomplete_file_received(self, file: str) -> None:
        Path(file).unlink(missing_ok=True)

    def ftp_RNTO(self, path: str) -> Any:  # noqa: N802 - pyftpdlib command name
        """Cameras that upload under a temporary name and rename: ingest after the rename."""
        result = super().ftp_RNTO(path)  # type: ignore[misc]
        target = Path(self.fs.ftp2fs(path))  # type: ignore[attr-defined]
        if self.ac_camera_id and target.is_file():
            self.ac_server.received(self.ac_camera_id, target)
        return result

    def on_disconnect(self) -> None:
        if self.ac_home:
            shutil.rmtree(self.ac_home, ignore_errors=True)
            self.ac_home = None

    def log_cmd(self, cmd: str, arg: str, respcode: int, respstr: str) -> None:
        if cmd != "PASS":  # never log passwords
            super().log_cmd(cmd, arg, respcode, respstr)  # type: ignore[misc]


class FtpIngestServer:
    """pyftpdlib's threaded server running in a daemon thread; ``.host`` and ``.port`` are the bound address."""

    def __init__(self, app: AlarmCloud, port: int | None = None, host: str | None = None) -> None:
        self.app = app
        cfg = app.settings.ftp
        self.staging_root = app.blobs.tmp_path("ftp")
        self.staging_root.mkdir(parents=True, exist_ok=True)
        self._recent: dict[str, _Recent] = {}
        self._recent_lock = threading.Lock()
        fs = type("StagingFS", (_StagingFS,), {"cap": app.settings.ingest.max_upload_bytes})
        tls = cfg.tls_cert is not None and cfg.tls_key is not None
        base: type = FTPHandler
        attrs: dict[str, Any] = {}
        if tls:
            from pyftpdlib.handlers import TLS_FTPHandler

            base = TLS_FTPHandler
            attrs.update(certfile=str(cfg.tls_cert), keyfile=str(cfg.tls_key),
                         tls_control_required=cfg.tls_required, tls_data_required=cfg.tls_required)
        attrs.update(ac_server=self, authorizer=_Authorizer(self), abstracted_fs=fs, banner="alarmcloud FTP ready.",
                     permit_foreign_addresses=False, use_sendfile=False, timeout=120)
        if cfg.passive_ports:
            low, _, high = cfg.passive_ports.partition("-")
            attrs["passive_ports"] = list(range(int(low), int(high or low) + 1))
        if cfg.masquerade_address:
            attrs["masquerade_address"] = cfg.masquerade_address
        self.handler: type = type("IngestHandler", (_IngestMixin, base), attrs)
        # an IOLoop of its own: pyftpdlib's default is one process-wide loop, and two servers (or a stopped one
        # closing "all" channels) would then share and break each other's connections
        bind = host or app.settings.ftp_listen_host
        self.server = ThreadedFTPServer((bind, cfg.port if port is None else port), self.handler, ioloop=IOLoop())
        self.server.max_cons = 512
        self.server.max_cons_per_ip = 64
        self.port: int = self.server.address[1]
        self.tls = tls
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="alarmcloud-ftp", daemon=True)
        self._thread.start()
        self.host: str = bind
        # loopback as "localhost": the log scrubber would print any other address of it as a /24 network
        log.info("FTP%s ingest listening on %s:%d%s", "S" if tls else "", "localhost" if is_loopback(bind) else bind,
                 self.port, listen_scope(bind))

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                self.server.serve_forever(timeout=0.2, blocking=False, handle_exit=False)
        finally:
            self.server.close_all()

    def stop(self) -> None:
        """Stop accepting, close sessions and wait for the loop to end."""
        self._stop.set()
        self._thread.join(timeout=15)

    def _recent_for(self, camera_id: str) -> _Recent:
        with self._recent_lock:
            now = time.monotonic()
            for cid in [c for c, r in self._recent.items() if now - max(r.snapshot_at, r.clip_at) > 600]:
                del self._recent[cid]
            return self._recent.setdefault(camera_id, _Recent())

    def received(self, camera_id: str, path: Path) -> None:
        """A complete upload: clips are ingested, snapshots paired with a clip, anything else dropped."""
        name = path.name
        suffix = path.suffix.lower()
        try:
            if suffix == ".mp4":
                self._clip(camera_id, path, name)
            elif suffix in (".jpg", ".jpeg"):
                self._snapshot(camera_id, path)
        except Exception:
            log.exception("FTP upload %r of camera %s failed", name[:100], camera_id)
        finally:
            path.unlink(missing_ok=True)

    def _clip(self, camera_id: str, path: Path, name: str) -> None:
        recent = self._recent_for(camera_id)
        with recent.lock:
            snap = recent.snapshot if recent.snapshot and time.monotonic() - recent.snapshot_at <= \
                SNAPSHOT_WINDOW_S else None
            recent.snapshot = None
        try:
            result = ingest_file(self.app, camera_id, path, {"original_name": name[:255]}, thumbnail=snap,
                                 channel="ftp")
        except Rejected as exc:
            log.info("FTP clip %r of camera %s rejected: %s", name[:100], camera_id, exc.code)
            return
        with recent.lock:
            recent.clip_id, recent.clip_at, recent.clip_has_snapshot = result.clip_id, time.monotonic(), bool(snap)

    def _snapshot(self, camera_id: str, path: Path) -> None:
        size = path.stat().st_size
        if size > MAX_SNAPSHOT_BYTES or size < 4:
            return
        data = path.read_bytes()
        if not data.startswith(b"\xff\xd8"):
            return  # not a JPEG
        recent = self._recent_for(camera_id)
        with recent.lock:
            now = time.monotonic()
            if recent.clip_id and not recent.clip_has_snapshot and now - recent.clip_at <= SNAPSHOT_WINDOW_S:
                clip_id = recent.clip_id
                recent.clip_has_snapshot = True
            else:
                recent.snapshot, recent.snapshot_at = data, now
                return
        self._set_thumbnail(clip_id, data)

    def _set_thumbnail(self, clip_id: str, data: bytes) -> None:
        from alarmcloud.models import Camera, Clip

        with self.app.db.session() as s:
            clip = s.get(Clip, clip_id)
            if clip is None:
                return
            cam = s.get(Camera, clip.camera_id)
            if cam is None or cam.privacy_masks:
                return  # the camera's snapshot would show what its privacy masks hide; keep the masked thumbnail
            key = clip.thumb_key or clip.blob_key.rsplit(".", 1)[0] + ".jpg"
            self.app.blobs.put_bytes(key, data)
            if clip.thumb_key != key:
                clip.thumb_key = key
                s.add(clip)
                s.commit()


def is_loopback(host: str | None) -> bool:
    """True for an address only this computer can connect to."""
    return bool(host) and (host == "localhost" or str(host).startswith("127.") or host == "::1")


def listen_scope(host: str) -> str:
    """Who can connect to a server bound to ``host``, for start-up messages."""
    if host in ("", "0.0.0.0", "::"):
        return " (every network address of this computer)"
    return " (this computer only)" if is_loopback(host) else ""


def start_ftp_server(app: AlarmCloud, port: int | None = None, host: str | None = None) -> FtpIngestServer:
    """Start the FTP(S) ingest server in a daemon thread (``port``/``host`` override the settings; port 0 = any
    free port; the host defaults to ``Settings.ftp_listen_host``)."""
    return FtpIngestServer(app, port=port, host=host)
