"""FTP/FTPS ingest server (pyftpdlib): cameras log in with their upload credentials and STOR clips and snapshots."""

from __future__ import annotations

import errno
import logging
import os
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
from sqlalchemy.exc import InterfaceError, OperationalError

from alarmcloud.blobstore import BlobStoreUnavailable, first_line
from alarmcloud.ingest import Rejected, ingest_file

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

log = logging.getLogger(__name__)

#: a camera snapshot this close (seconds) to a clip becomes the clip's thumbnail
SNAPSHOT_WINDOW_S = 60.0
MAX_SNAPSHOT_BYTES = 2 * 1024 * 1024
#: STOR, CWD, LIST/NLST/SIZE/MDTM, MKD, DELE/RMD, RNFR/RNTO: never RETR or APPE
ALLOWED_PERMS = frozenset("elwmdf")
#: the spool's name of an upload whose first try is under way (the spool's retries leave it alone)
INFLIGHT = ".inflight-"
#: failures that pass (the object store or the database unreachable, a full disk): the clip waits in the spool
PASSING = (BlobStoreUnavailable, OperationalError, InterfaceError, OSError)


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
        # the camera was told "226 transfer complete" before the clip is stored: what cannot be stored then waits
        # here, per camera, as <time_ns>-<file name>, and is stored when the database and the store are back
        self.spool_root = Path(app.settings.data_dir) / "ftp-spool"
        self.spool_root.mkdir(parents=True, exist_ok=True)
        for p in self.spool_root.glob(f"*/{INFLIGHT}*"):  # a crash cut their first try short: they wait too
            p.rename(p.with_name(p.name.removeprefix(INFLIGHT)))
        self.spool_cap = cfg.spool_max_mb * 1024 * 1024
        self.spool_retry_seconds = cfg.spool_retry_seconds
        self._spool_lock = threading.Lock()
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
        # pyftpdlib keeps the "stop the session threads" flag on the class: one server stopping would end the other
        # servers' sessions until their next loop turn cleared it again; each server gets a flag of its own
        self.server._exit = threading.Event()
        self.server.max_cons = 512
        self.server.max_cons_per_ip = 64
        self.port: int = self.server.address[1]
        self.tls = tls
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="alarmcloud-ftp", daemon=True)
        self._thread.start()
        self._spool_thread = threading.Thread(target=self._spool_loop, name="alarmcloud-ftp-spool", daemon=True)
        self._spool_thread.start()
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
        self._spool_thread.join(timeout=15)

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
        kept = self._keep(camera_id, path, name)  # until the clip is stored or refused for good
        try:
            result = ingest_file(self.app, camera_id, path, {"original_name": name[:255]}, thumbnail=snap,
                                 channel="ftp")
        except Rejected as exc:
            log.info("FTP clip %r of camera %s rejected: %s", name[:100], camera_id, exc.code)
            _drop(kept)
            return
        except PASSING as exc:
            if kept is None:
                raise  # no spool (switched off or full): logged by the caller, the clip is lost
            kept.rename(kept.with_name(kept.name.removeprefix(INFLIGHT)))  # now the retries take it
            log.warning("FTP clip %r of camera %s could not be stored (%s): kept in %s, stored when that passes",
                        name[:100], camera_id, first_line(exc), self.spool_root)
            return
        except BaseException:
            _drop(kept)
            raise
        _drop(kept)
        with recent.lock:
            recent.clip_id, recent.clip_at, recent.clip_has_snapshot = result.clip_id, time.monotonic(), bool(snap)

    # ------------------------------------------------------------ spool

    def _spool_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.spool_root.glob("*/*") if p.is_file())

    def _keep(self, camera_id: str, path: Path, name: str) -> Path | None:
        """A second name for the upload in the spool (a hard link: no copy), so a failed store loses nothing; None
        when the spool is off or full."""
        if self.spool_cap <= 0:
            return None
        try:
            if self._spool_bytes() + path.stat().st_size > self.spool_cap:
                log.error("FTP spool %s is full (ftp.spool_max_mb): clip %r of camera %s is not kept for a retry",
                          self.spool_root, name[:100], camera_id)
                return None
            folder = self.spool_root / camera_id
            folder.mkdir(exist_ok=True)
            dst = folder / f"{INFLIGHT}{time.time_ns()}-{name[:200]}"
            _link_or_copy(path, dst)
            return dst
        except OSError:
            log.exception("cannot keep FTP clip %r of camera %s in the spool", name[:100], camera_id)
            return None

    def _spool_loop(self) -> None:
        wait = 1.0  # after a restart the clips kept before it go first
        while not self._stop.wait(wait):
            wait = self.spool_retry_seconds
            try:
                self.retry_spool()
            except Exception:
                log.exception("FTP spool retry failed")

    def retry_spool(self) -> int:
        """Store the spooled clips in upload order; stops at the first that still cannot be stored. Clips of
        cameras deleted meanwhile (an erased account's too) are deleted. Returns how many left the spool."""
        from alarmcloud.models import Camera

        done = 0
        with self._spool_lock:
            for folder in [d for d in self.spool_root.iterdir() if d.is_dir()]:
                try:
                    with self.app.db.session() as s:
                        gone = s.get(Camera, folder.name) is None
                except PASSING:
                    return done
                if gone:
                    done += sum(1 for _ in folder.iterdir())
                    shutil.rmtree(folder, ignore_errors=True)
                    log.info("FTP spool: camera %s was deleted: its waiting clips are deleted too", folder.name)
            waiting = [p for p in self.spool_root.glob("*/*") if not p.name.startswith(INFLIGHT)]
            for kept in sorted(waiting, key=lambda p: p.name.partition("-")[0].zfill(20)):
                camera_id, name = kept.parent.name, kept.name.partition("-")[2]
                staged = self.staging_root / f"spool-{kept.name[:40]}.mp4"
                try:
                    if self._already_stored(camera_id, name, kept.stat().st_mtime):
                        kept.unlink()  # stored before a crash cut the first try short
                        done += 1
                        continue
                    _link_or_copy(kept, staged)
                    ingest_file(self.app, camera_id, staged, {"original_name": name}, channel="ftp")
                    log.info("FTP clip %r of camera %s stored from the spool", name[:100], camera_id)
                except Rejected as exc:
                    log.info("FTP clip %r of camera %s rejected: %s", name[:100], camera_id, exc.code)
                except PASSING as exc:
                    log.info("FTP spool: still cannot store (%s); next try in %.0f s", first_line(exc),
                             self.spool_retry_seconds)
                    return done
                except Exception:
                    log.exception("FTP clip %r of camera %s from the spool failed", name[:100], camera_id)
                finally:
                    staged.unlink(missing_ok=True)
                kept.unlink(missing_ok=True)
                done += 1
        return done

    def _already_stored(self, camera_id: str, name: str, since: float) -> bool:
        from datetime import UTC, datetime

        from sqlmodel import select

        from alarmcloud.models import Clip

        with self.app.db.session() as s:
            return s.exec(select(Clip.id).where(
                Clip.camera_id == camera_id, Clip.original_name == name[:255],
                Clip.received_at >= datetime.fromtimestamp(since - 2, UTC))).first() is not None

    # ------------------------------------------------------------ snapshots

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


def _drop(kept: Path | None) -> None:
    if kept is not None:
        kept.unlink(missing_ok=True)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem, or links not allowed
        shutil.copyfile(src, dst)


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
