"""Backup of the embedded default: the SQLite database, the local blobs and the key file of ``data_dir``.

A backup is one uncompressed tar whose members mirror ``data_dir`` (``alarmcloud.db``, ``blobs/...``,
``training/...``, ``secret.key``) behind a first member ``manifest.json`` with the size and SHA-256 of every other
member. The database is copied with SQLite's online backup API (one read transaction: a consistent snapshot while
the server keeps writing); the blobs copied are the ones the snapshot references, so every clip of the snapshot
has its video unless retention deleted it in the meantime (then it is listed under ``missing``). ``restore`` reads
it back.

The erasure register (``erasures.py``) is never in a backup, wherever it is kept: a copy would be older than the
live register at any restore, and the restore replays the live one (``restore --erasures``) instead.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click

from alarmcloud import erasures
from alarmcloud.blobstore import fsync_dir
from alarmcloud.cli_common import config_option, console, progress, settings_from, setup_logging
from alarmcloud.models import ACCOUNT_SECRETS, iso_seconds
from alarmcloud.units import human_bytes

log = logging.getLogger(__name__)

FORMAT = "alarmcloud-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DB_NAME = "alarmcloud.db"
KEY_NAME = "secret.key"
#: top-level folders a backup may hold (everything else in an archive is refused)
FOLDERS = ("blobs", "training")
#: the manifest is read into memory: a bound against a hostile archive
MANIFEST_MAX_BYTES = 512 * 1024 * 1024
CHUNK = 1024 * 1024

#: why backup and restore refuse a deployment whose clips are in a bucket, and what to do instead
S3_BACKUP_REFUSAL = (
    "storage.backend is 's3' (bucket {bucket}): this command copies a local data directory only. Protect the "
    "clips, thumbnails and exports where they are: turn on versioning of the bucket (with a lifecycle rule that "
    "removes noncurrent versions after a few days) or replicate it to a second bucket; back up the database with "
    "its own tool (PostgreSQL: pg_dump -Fc) and keep a copy of the secret key. See docs/backup.md, 'S3 storage'.")

#: (files done, files in all, bytes done)
Progress = Callable[[int, int, int], None]


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass
class BackupResult:
    path: Path
    manifest: dict[str, Any]
    seconds: float

    @property
    def missing(self) -> list[dict[str, Any]]:
        return list(self.manifest["missing"])


# ---------------------------------------------------------------- helpers


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None for any other database)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        return None
    if not u.database or u.database == ":memory:":
        raise BackupError(f"{url} is not a database file")
    return Path(u.database)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("alarmcloud")
    except PackageNotFoundError:
        return "unknown"


def _now() -> str:
    return iso_seconds(datetime.now(UTC))


def _kid(stored: str | None) -> str | None:
    return stored.split("$", 1)[0] if stored and stored.count("$") == 2 else None


def snapshot_database(src: Path, dst: Path) -> None:
    """Copy the live database with SQLite's online backup API: one step, one read transaction, so the copy is the
    database as of one instant while the server goes on writing (WAL readers do not block writers)."""
    if not src.is_file():
        raise BackupError(f"no database at {src}: is --data-dir (or data_dir in the settings) the server's?")
    source = sqlite3.connect(str(src), timeout=30)
    try:
        target = sqlite3.connect(str(dst))
        try:
            source.backup(target)  # pages=-1: every page in one step
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            check = target.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            target.close()
    finally:
        source.close()
    if check != "ok":
        raise BackupError(f"the database copy fails SQLite's check ({check}); the live database may be damaged")


@dataclass
class _Snapshot:
    revision: str | None
    clips: list[tuple[str, str, str | None]]  # id, blob key, thumbnail key
    exports: list[str]
    accounts: int
    cameras: int
    key_ids: list[str]


def _rows(con: sqlite3.Connection, sql: str) -> list[tuple[Any, ...]]:
    try:
        return con.execute(sql).fetchall()
    except sqlite3.OperationalError:  # a table an older schema does not have yet
        return []


def read_snapshot(path: Path) -> _Snapshot:
    """What a database copy references: schema revision, clip and export blobs, key ids of its secrets."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rev = _rows(con, "SELECT version_num FROM alembic_version")
        clips = [(r[0], r[1], r[2]) for r in _rows(con, "SELECT id, blob_key, thumb_key FROM clips ORDER BY id")]
        exports = []
        for (value,) in _rows(con, "SELECT value FROM plugin_state WHERE plugin = 'privacy' AND key LIKE 'export:%'"):
            try:
                blob = (json.loads(value) or {}).get("blob_key") if isinstance(value, str) else None
            except ValueError:
                blob = None
            if blob:
                exports.append(blob)
        kids: set[str] = set()
        for sql in ("SELECT host_enc, p2p_id_enc, username_enc, password_enc FROM cameras",
                    "SELECT secret FROM webhooks", "SELECT secret_enc FROM two_factor",
                    f"SELECT {', '.join(ACCOUNT_SECRETS.values())} FROM accounts"):
            for row in _rows(con, sql):
                kids.update(k for v in row if (k := _kid(v)))
        accounts = _rows(con, "SELECT count(*) FROM accounts")
        cameras = _rows(con, "SELECT count(*) FROM cameras")
    finally:
        con.close()
    return _Snapshot(revision=rev[0][0] if rev else None, clips=clips, exports=sorted(set(exports)),
                     accounts=accounts[0][0] if accounts else 0, cameras=cameras[0][0] if cameras else 0,
                     key_ids=sorted(kids))


def _inside(root: Path, rel: str) -> Path | None:
    """``root/rel`` when it stays inside ``root`` (blob keys come from the database)."""
    p = (root / rel).resolve()
    return p if root.resolve() in p.parents else None


class _Hashing:
    """A file reader that hashes what it hands out (tarfile reads members through it)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.sha = hashlib.sha256()
        self.n = 0

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.sha.update(data)
        self.n += len(data)
        return data


# ---------------------------------------------------------------- backup


@dataclass
class _Planned:
    name: str  # archive member name (= path relative to data_dir)
    path: Path
    clip_id: str | None = None


def _plan(data_dir: Path, snap: _Snapshot | None) -> list[_Planned]:
    """The blob and training files to copy: those the snapshot references (every stored file without one)."""
    blob_root = data_dir / "blobs"
    out: list[_Planned] = []
    if snap is None:  # blobs only: every finished file of the store
        if blob_root.is_dir():
            for p in sorted(blob_root.rglob("*")):
                rel = p.relative_to(blob_root)
                if p.is_file() and not p.is_symlink() and ".tmp" not in rel.parts and p.suffix != ".part":
                    out.append(_Planned(f"blobs/{rel.as_posix()}", p))
    else:
        for clip_id, blob, thumb in snap.clips:
            for key in (blob, thumb):
                if key and (p := _inside(blob_root, key)) is not None:
                    out.append(_Planned(f"blobs/{key}", p, clip_id))
                elif key:
                    log.warning("clip %s: blob key %r points outside the blob store; not copied", clip_id, key)
        for key in snap.exports:
            if (p := _inside(blob_root, key)) is not None:
                out.append(_Planned(f"blobs/{key}", p))
    training = data_dir / "training"
    if training.is_dir():  # clips customers released for improving detectors: <detector>/<label>/<clip id>.mp4
        known = None if snap is None else {c[0] for c in snap.clips}
        for p in sorted(training.rglob("*.mp4")):
            if p.is_file() and not p.is_symlink() and (known is None or p.stem in known):
                out.append(_Planned(f"training/{p.relative_to(training).as_posix()}", p, p.stem))
    seen: set[str] = set()
    return [m for m in out if not (m.name in seen or seen.add(m.name))]  # type: ignore[func-returns-value]


def _manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, separators=(",", ":")).encode()


def check_source(settings: Any, blobs_only: bool = False) -> Path | None:
    """The database file to copy (None for --blobs-only); refuses other databases, S3 storage and a missing
    data_dir."""
    if settings.storage.backend != "local":
        raise BackupError(S3_BACKUP_REFUSAL.format(bucket=settings.storage.s3.bucket))
    db_file = sqlite_path(settings.db_url)
    if db_file is None and not blobs_only:
        from sqlalchemy.engine import make_url

        url = make_url(settings.db_url).render_as_string(hide_password=True)
        raise BackupError(
            f"database_url is {url}: this command copies the embedded SQLite database only. Back up that database "
            "with its own tool first (PostgreSQL: pg_dump -Fc -f alarmcloud.dump <database>), then run "
            "`alarmcloud backup DEST.tar --blobs-only` for the clips, thumbnails, exports and key file "
            "(in that order: every clip of the dump then has its file in the tar).")
    if not Path(settings.data_dir).is_dir():
        raise BackupError(f"no data directory at {settings.data_dir}")
    if db_file is not None and not blobs_only and not db_file.is_file():
        raise BackupError(f"no database at {db_file}: is --data-dir (or data_dir in the settings) the server's?")
    return None if blobs_only else db_file


def create_backup(settings: Any, dest: Path, *, include_keys: bool = False, blobs_only: bool = False,
                  on_progress: Progress | None = None) -> BackupResult:
    """Write a backup of ``settings.data_dir`` to ``dest`` (through ``dest.partial``, renamed when complete)."""
    started = time.monotonic()
    data_dir = Path(settings.data_dir)
    db_file = check_source(settings, blobs_only)
    dest = Path(dest)
    if dest.is_dir():
        raise BackupError(f"{dest} is a directory; name the backup file, e.g. {dest / 'alarmcloud.tar'}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")

    key_path = data_dir / KEY_NAME
    with tempfile.TemporaryDirectory(prefix=".alarmcloud-backup-", dir=dest.parent) as tmp:
        snap: _Snapshot | None = None
        members: list[_Planned] = []
        created_at = _now()
        if db_file is not None:
            snap_file = Path(tmp) / DB_NAME
            created_at = _now()  # the snapshot is the database as of this instant
            snapshot_database(db_file, snap_file)
            snap = read_snapshot(snap_file)
            members.append(_Planned(DB_NAME, snap_file))
        if include_keys:
            if settings.secret_key is not None:
                log.warning("secret_key comes from the settings, not from data_dir: keep it with the settings")
            if key_path.is_file():
                members.append(_Planned(KEY_NAME, key_path))
        members += _plan(data_dir, snap)
        register = erasures.register_path(settings).resolve()
        members = [m for m in members if m.path.resolve() != register]  # e.g. kept under blobs/ (--blobs-only)

        manifest: dict[str, Any] = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "alarmcloud_version": _version(),
            "created_at": created_at, "schema_revision": snap.revision if snap else None,
            "database": DB_NAME if snap else None, "blobs_only": blobs_only,
            "keys_included": any(m.name == KEY_NAME for m in members),
            "key_ids": snap.key_ids if snap else [],
            "counts": {"accounts": snap.accounts if snap else None, "cameras": snap.cameras if snap else None,
                       "clips": len(snap.clips) if snap else sum(1 for m in members if m.name.endswith(".mp4")
                                                                and m.name.startswith("blobs/")),
                       "files": 0, "bytes": 0, "missing": 0},
            "missing": [], "members": [],
        }
        # the manifest goes first but its hashes are known last: reserve room for the largest it can become
        # (a file missing at copy time turns a member entry into a shorter ``missing`` entry), rewrite it at the end
        placeholder = dict(manifest, counts={k: 10**15 for k in manifest["counts"]},
                           members=[{"name": m.name, "size": 10**15, "sha256": "0" * 64} for m in members])
        reserve = len(_manifest_bytes(placeholder)) * 11 // 10 + 1024

        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        ok = False
        try:
            with os.fdopen(fd, "wb") as fh:
                with tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT, copybufsize=CHUNK) as tar:
                    info = tarfile.TarInfo(MANIFEST)
                    info.size, info.mode, info.mtime = reserve, 0o600, int(time.time())
                    tar.addfile(info, io.BytesIO(b" " * reserve))
                    manifest_at = fh.tell() - (reserve + tarfile.BLOCKSIZE - 1) // tarfile.BLOCKSIZE * tarfile.BLOCKSIZE
                    done_bytes = 0
                    for i, m in enumerate(members):
                        entry = _add_member(tar, m)
                        if entry is None:
                            manifest["missing"].append({"name": m.name, "clip_id": m.clip_id})
                        else:
                            manifest["members"].append(entry)
                            done_bytes += entry["size"]
                        if on_progress:
                            on_progress(i + 1, len(members), done_bytes)
                counts = manifest["counts"]
                counts["files"] = len(manifest["members"])
                counts["bytes"] = sum(e["size"] for e in manifest["members"])
                counts["missing"] = len(manifest["missing"])
                final = _manifest_bytes(manifest)
                if len(final) > reserve:  # cannot happen (see above); never write a manifest cut short
                    raise BackupError("manifest larger than the room reserved for it")
                fh.seek(manifest_at)
                fh.write(final.ljust(reserve, b" "))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(partial, dest)
            fsync_dir(dest.parent)
            ok = True
        finally:
            if not ok:
                partial.unlink(missing_ok=True)
    if manifest["missing"]:
        ids = sorted({m["clip_id"] for m in manifest["missing"] if m["clip_id"]})
        log.warning("%d file(s) were deleted (retention, erasure or masking) between the database snapshot and "
                    "their copy; their clips are in the backup without them: clip ids %s",
                    len(manifest["missing"]), ", ".join(ids))
    return BackupResult(dest, manifest, time.monotonic() - started)


def _add_member(tar: tarfile.TarFile, m: _Planned) -> dict[str, Any] | None:
    """Append one file; None when it no longer exists (an open file stays whole: blobs are replaced by rename)."""
    try:
        with open(m.path, "rb") as fh:
            st = os.fstat(fh.fileno())
            info = tarfile.TarInfo(m.name)
            info.size, info.mode, info.mtime = st.st_size, 0o600, int(st.st_mtime)
            reader = _Hashing(fh)
            tar.addfile(info, reader)  # type: ignore[arg-type]
    except FileNotFoundError:
        return None
    return {"name": m.name, "size": reader.n, "sha256": reader.sha.hexdigest()}


# ---------------------------------------------------------------- commands


@click.command("backup")
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The server's data directory (SQLite database, local blobs, key file).")
@config_option
@click.option("--include-keys/--no-keys", default=False, show_default=True,
              help="Put data_dir/secret.key (decrypts camera passwords, webhook and two-step secrets, off-site keys) "
                   "into the backup. Default: not, so a copied backup does not also unlock those secrets; keep the key "
                   "file safe elsewhere (restore --key-file).")
@click.option("--blobs-only", is_flag=True,
              help="Only the blob store and key file, not the database (PostgreSQL: pg_dump first, then this).")
def backup_command(dest: Path, data_dir: Path | None, config_file: Path | None, include_keys: bool,
                   blobs_only: bool) -> None:
    """Back up a running or stopped server to one tar file: the database (SQLite online backup, a consistent
    snapshot), the clips, thumbnails and exports it references, optionally the key file.

    The file is written as DEST.partial and renamed to DEST when complete; an existing DEST is replaced only
    then. See docs/backup.md.
    """
    setup_logging("WARNING")
    st = settings_from(config_file, data_dir=data_dir)
    try:
        check_source(st, blobs_only)  # refusals before the progress bar
        with progress() as bar:
            task = bar.add_task("backing up", total=None)

            def _tick(done: int, total: int, _bytes: int) -> None:
                bar.update(task, completed=done, total=total)

            result = create_backup(st, dest, include_keys=include_keys, blobs_only=blobs_only, on_progress=_tick)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    m = result.manifest
    c = m["counts"]
    missing = f", {c['missing']} file(s) deleted meanwhile (listed in the manifest)" if c["missing"] else ""
    keys = "key file included" if m["keys_included"] else "without the key file"
    click.echo(f"backup {result.path}: {c['clips']} clips, {c['files']} files, {human_bytes(c['bytes'])} in "
               f"{result.seconds:.1f} s, {keys}{missing}")
    if not m["keys_included"] and m["key_ids"]:
        console.print(f"[yellow]the key file is not in the backup: keep a copy of {Path(st.data_dir) / KEY_NAME} "
                      "apart from it (restore --key-file), else the camera passwords, webhook and two-step secrets, "
                      "notification tokens and off-site keys of this backup cannot be restored[/]")
