"""Restore of a backup made by ``alarmcloud backup`` (``backup.py``) into a new data directory.

A restore checks every member (regular files under the known folders only, sizes and SHA-256 as the manifest says)
into a temporary folder beside the target, migrates the database there when the backup's schema is older, and
renames the folder into place only when all of it checked out.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import click

from alarmcloud.backup import (
    CHUNK,
    DB_NAME,
    FOLDERS,
    FORMAT,
    FORMAT_VERSION,
    KEY_NAME,
    MANIFEST,
    MANIFEST_MAX_BYTES,
    BackupError,
    Progress,
    _inside,
    _kid,
    _version,
)
from alarmcloud.cli_common import config_option, console, progress, settings_from, setup_logging
from alarmcloud.erasures import FILE_NAME as REGISTER_NAME
from alarmcloud.erasures import Register, RegisterError, ReplayReport
from alarmcloud.units import human_bytes


@dataclass
class RestoreResult:
    path: Path
    manifest: dict[str, Any]
    seconds: float
    files: int = 0
    bytes: int = 0
    migrated_from: str | None = None
    key: str = "none"  # archive | key-file | none
    erased: list[str] = field(default_factory=list)  # account ids erased again (--erase)
    dropped: list[str] = field(default_factory=list)  # clips whose video was deleted while the backup ran
    not_found: list[str] = field(default_factory=list)  # --erase values no account of the backup has
    warnings: list[str] = field(default_factory=list)
    register: Register | None = None  # the erasure register(s) replayed
    replayed: ReplayReport | None = None  # what the replay deleted again
    #: camera id -> (clips stored without the camera's current privacy masks, whether a mask job is queued for them)
    unmasked: dict[str, tuple[int, bool]] = field(default_factory=dict)


# ---------------------------------------------------------------- restore


def check_member_name(name: str) -> None:
    """Refuse absolute paths, ``..``, empty or ``.`` parts and anything outside the folders a backup holds."""
    parts = PurePosixPath(name).parts
    if (not name or name.startswith("/") or "\\" in name or "\x00" in name or any(p in ("", ".", "..") for p in
                                                                                  name.split("/"))):
        raise BackupError(f"archive member {name!r} has an unsafe path (absolute, '..' or empty parts): refused; "
                          "this archive is not an alarmcloud backup or was tampered with")
    if not (name in (DB_NAME, KEY_NAME) or (len(parts) > 1 and parts[0] in FOLDERS)):
        raise BackupError(f"archive member {name!r} is not part of an alarmcloud backup: refused")


def check_target(target: Path) -> None:
    if target.exists() or target.is_symlink():
        if not target.is_dir() or target.is_symlink():
            raise BackupError(f"{target} exists and is not a folder; restore into a new or empty folder")
        entries = sorted(p.name for p in target.iterdir())
        if entries:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise BackupError(f"{target} is not empty ({len(entries)} entries: {shown}); restore only into a new or "
                              "empty folder (move the current data away first); nothing was written")


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while (m := tar.next()) is not None:
        yield m


def _kind(m: tarfile.TarInfo) -> str:
    if m.issym():
        return "a symbolic link"
    if m.islnk():
        return "a hard link"
    if m.isdev():
        return "a device or FIFO"
    if m.isdir():
        return "a folder"
    return "not a regular file"


def _read_manifest(tar: tarfile.TarFile) -> dict[str, Any]:
    first = tar.next()
    if first is None or first.name != MANIFEST or not first.isreg():
        raise BackupError("this file is not an alarmcloud backup (its first member is not manifest.json)")
    if first.size > MANIFEST_MAX_BYTES:
        raise BackupError("manifest.json is implausibly large: refused")
    fh = tar.extractfile(first)
    assert fh is not None
    try:
        manifest = json.loads(fh.read())
    except ValueError:
        raise BackupError("manifest.json is not valid JSON (an interrupted or damaged backup)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("manifest.json is not an alarmcloud backup manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"backup format version {manifest.get('format_version')} is not supported by this "
                          f"alarmcloud ({_version()}, format {FORMAT_VERSION}); restore with the version that wrote "
                          f"it ({manifest.get('alarmcloud_version')}) or newer")
    return manifest


def _head_revisions() -> tuple[set[str], str | None]:
    from alembic.script import ScriptDirectory

    from alarmcloud import db

    script = ScriptDirectory.from_config(db.alembic_config("sqlite://"))
    return {r.revision for r in script.walk_revisions()}, script.get_current_head()


def _check_key(db_file: Path, key: bytes) -> bool | None:
    """Whether ``key`` opens a secret of the database (None: it stores no secret to try it on)."""
    from cryptography.exceptions import InvalidTag

    from alarmcloud import crypto, db

    database = db.Database(f"sqlite:///{db_file}")
    try:
        with database.session() as s:
            items = crypto._stored_secrets(s)
            tried = set()
            for row, attr, context in items:
                stored = getattr(row, attr)
                kid = _kid(stored)
                if kid is None or kid in tried:
                    continue
                tried.add(kid)
                try:
                    crypto.SecretBox(kid, {kid: key}).decrypt(stored, context)
                    return True
                except (InvalidTag, ValueError):
                    continue
            return False if tried else None
    finally:
        database.dispose()


def restore_backup(src: Path, target: Path, *, key_file: Path | None = None, erase: list[str] | None = None,
                   erasures: list[Path] | None = None, register_out: Path | None = None,
                   on_progress: Progress | None = None) -> RestoreResult:
    """Check and unpack ``src`` into the new or empty folder ``target``; nothing appears there unless all is well.

    ``erasures``: erasure registers (``erasures.py``) replayed onto the restored data: the accounts, clips and
    cameras deleted after the backup was made are deleted again, the consents withdrawn since are withdrawn again
    and the privacy masks saved since are set again (their clips queued for masking). Their lines, and lines for
    the accounts of ``erase``, are written to ``target/erasures.jsonl`` (the register of a server started on it), or
    appended to ``register_out`` when the deployment keeps its register elsewhere (``privacy.erasure_register``)."""
    from alarmcloud import erasures as register_mod

    started = time.monotonic()
    register: Register | None = None
    if erasures:
        try:
            register = register_mod.read(erasures)
        except RegisterError as exc:
            raise BackupError(f"{exc}; nothing was written") from None
    target = Path(target).absolute()
    check_target(target)
    if not Path(src).is_file():
        raise BackupError(f"no backup file at {src}")
    key_bytes: bytes | None = None
    if key_file is not None:
        from alarmcloud import crypto

        try:
            key_bytes = crypto.decode_key(Path(key_file).read_text())
        except (OSError, ValueError) as exc:
            raise BackupError(f"{key_file}: not a key file ({exc})") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.restore-", dir=target.parent))
    ok = False
    added: list[dict[str, Any]] = []
    try:
        result = _unpack(Path(src), tmp, on_progress)
        manifest = result.manifest
        db_file = tmp / DB_NAME
        if manifest.get("database"):
            result.migrated_from = _migrate(db_file, manifest.get("schema_revision"))
        if manifest.get("database") and manifest.get("missing"):
            result.dropped = drop_clips_without_video(db_file, manifest["missing"])
        if erase:
            if not manifest.get("database"):
                raise BackupError("--erase needs the database, and this backup has none (--blobs-only)")
            result.erased, result.not_found = erase_accounts(tmp, erase)
        if register is not None:
            result.register = register
            result.warnings += register.warnings
            if manifest.get("database"):
                result.replayed = replay_register(tmp, register)
            else:
                result.warnings.append("this backup has no database (--blobs-only): the erasure register is "
                                       "replayed onto the database with `alarmcloud privacy erasures replay` after "
                                       "it is restored (docs/backup.md)")
            last, made = register.last_at, manifest.get("created_at")
            if last and made and last < made:
                result.warnings.append(f"the erasure register's last line is from {last}, before this backup "
                                       f"({made}): if anything was erased since, this is not the current register")
        if manifest.get("database"):
            result.unmasked = unmasked_clips(tmp)
        added = [register_mod.new_line("account", i) for i in result.erased]
        if register_out is None:
            lines = [e.line.encode() + b"\n" for e in register.entries] if register is not None else []
            lines += [json.dumps(a, separators=(",", ":")).encode() + b"\n" for a in added]
            if lines:
                fd = os.open(tmp / REGISTER_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(b"".join(lines))
        if (tmp / KEY_NAME).exists():
            result.key = "archive"
            if key_bytes is not None:
                result.warnings.append("the backup holds its key file; --key-file was not used")
        elif key_bytes is not None:
            if manifest.get("database") and _check_key(db_file, key_bytes) is False:
                raise BackupError(f"{key_file} does not decrypt the secrets of this backup (key ids "
                                  f"{', '.join(manifest.get('key_ids') or [])}): wrong key file; nothing was written")
            fd = os.open(tmp / KEY_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(Path(key_file).read_text().strip())
            result.key = "key-file"
        elif manifest.get("key_ids"):
            result.warnings.append(
                f"the backup holds no key file and its camera passwords, webhook secrets and two-step secrets are "
                f"encrypted (key ids {', '.join(manifest['key_ids'])}): copy your saved secret.key to "
                f"{target / KEY_NAME} (or set secret_key) BEFORE the first start, else a new key is generated and "
                "those secrets cannot be read")
        os.sync()
        if target.exists():
            target.rmdir()  # empty (checked above); rename cannot replace it on every platform
        os.rename(tmp, target)
        ok = True
    finally:
        if not ok:
            shutil.rmtree(tmp, ignore_errors=True)
    if register_out is not None and added:
        try:
            register_mod.append_lines(register_out, added)
        except RegisterError as exc:
            result.warnings.append(f"{exc}: add the accounts erased with --erase to it by hand")
    result.path = target
    result.seconds = time.monotonic() - started
    return result


def _unpack(src: Path, tmp: Path, on_progress: Progress | None) -> RestoreResult:
    try:
        with tarfile.open(src, mode="r|*") as tar:
            manifest = _read_manifest(tar)
            expected: dict[str, dict[str, Any]] = {}
            entries = manifest.get("members")
            for e in entries if isinstance(entries, list) else [None]:
                if not (isinstance(e, dict) and isinstance(e.get("name"), str) and isinstance(e.get("size"), int)
                        and isinstance(e.get("sha256"), str)):
                    raise BackupError("manifest.json lists a member without name, size and sha256: refused")
                check_member_name(e["name"])
                expected[e["name"]] = e
            total_files = len(expected)
            done = 0
            done_bytes = 0
            for m in _members(tar):
                if not m.isreg():
                    raise BackupError(f"archive member {m.name!r} is {_kind(m)}: refused (a backup holds regular "
                                      "files only)")
                check_member_name(m.name)
                e = expected.pop(m.name, None)
                if e is None:
                    raise BackupError(f"archive member {m.name!r} is not in the manifest (added or repeated): "
                                      "refused")
                if m.size != e["size"]:
                    raise BackupError(f"archive member {m.name!r} has {m.size} bytes, the manifest says {e['size']}")
                _extract(tar, m, tmp, e)
                done += 1
                done_bytes += m.size
                if on_progress:
                    on_progress(done, total_files, done_bytes)
    except (tarfile.TarError, EOFError) as exc:
        raise BackupError(f"{src} is not a readable tar archive or is truncated ({exc}); nothing was written") from None
    if expected:
        names = sorted(expected)
        raise BackupError(f"the archive lacks {len(names)} member(s) its manifest lists (e.g. {names[0]}): "
                          "truncated backup; nothing was written")
    return RestoreResult(path=tmp, manifest=manifest, seconds=0.0, files=done, bytes=done_bytes)


def _extract(tar: tarfile.TarFile, m: tarfile.TarInfo, root: Path, e: dict[str, Any]) -> None:
    dst = root / m.name
    if root.resolve() not in dst.resolve().parents:  # defence in depth; names were checked above
        raise BackupError(f"archive member {m.name!r} escapes the target: refused")
    for parent in reversed(dst.relative_to(root).parents[:-1]):
        (root / parent).mkdir(mode=0o700, exist_ok=True)
    src = tar.extractfile(m)
    assert src is not None
    sha = hashlib.sha256()
    n = 0
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := src.read(CHUNK):
            sha.update(chunk)
            n += len(chunk)
            out.write(chunk)
    if n != e["size"] or sha.hexdigest() != e["sha256"]:
        raise BackupError(f"archive member {m.name!r} is damaged: its SHA-256 differs from the manifest's; "
                          "nothing was written")
    os.utime(dst, (m.mtime, m.mtime))


def _migrate(db_file: Path, revision: str | None) -> str | None:
    """Bring a restored database to this version's schema; the revision it came from, or None if current."""
    known, head = _head_revisions()
    if revision is not None and revision not in known:
        raise BackupError(f"the backup's database schema ({revision}) is newer than this alarmcloud ({_version()}, "
                          f"schema {head}) knows: install the version that wrote the backup or a newer one; "
                          "nothing was written")
    con = sqlite3.connect(str(db_file))
    try:
        check = con.execute("PRAGMA quick_check").fetchone()[0]
    finally:
        con.close()
    if check != "ok":
        raise BackupError(f"the restored database fails SQLite's check ({check}); nothing was written")
    if revision == head:
        return None
    from alarmcloud import db

    db.migrate(f"sqlite:///{db_file}")
    return revision or "empty"


def drop_clips_without_video(db_file: Path, missing: list[dict[str, Any]]) -> list[str]:
    """Delete the events whose video was deleted between the snapshot and its copy (retention, erasure, a masks
    swap), as retention would have; a clip that lost only its thumbnail keeps its event without one."""

    from alarmcloud import db
    from alarmcloud.models import Clip
    from alarmcloud.storage import delete_clip_rows

    gone = {str(m.get("name", "")).removeprefix("blobs/") for m in missing}
    ids = sorted({str(m["clip_id"]) for m in missing if m.get("clip_id")})
    dropped: list[str] = []
    database = db.Database(f"sqlite:///{db_file}")
    try:
        with database.session() as s:
            for clip_id in ids:
                clip = s.get(Clip, clip_id)
                if clip is None:
                    continue
                if clip.blob_key in gone:
                    delete_clip_rows(s, clip)
                    dropped.append(clip_id)
                elif clip.thumb_key in gone:
                    clip.thumb_key = None
                    s.add(clip)
            s.commit()
    finally:
        database.dispose()
    return dropped


def _stores(root: Path) -> tuple[Any, Any, Any]:
    """The database, blob store and training area of a restored data folder."""
    from alarmcloud import db
    from alarmcloud.app import TrainingArea
    from alarmcloud.blobstore import LocalBlobStore

    blobs = LocalBlobStore(root / "blobs")
    return db.Database(f"sqlite:///{root / DB_NAME}"), blobs, TrainingArea(root / "training", blobs)


def replay_register(root: Path, register: Register) -> ReplayReport:
    """Delete again, in a restored data folder, the accounts, clips and cameras the register lists."""
    from alarmcloud.erasures import replay

    database, blobs, training = _stores(root)
    try:
        # a key pointing outside the store was never copied into the backup (``backup._plan``): nothing to delete
        return replay(database, blobs, training, register.entries,
                      key_ok=lambda k: _inside(root / "blobs", k) is not None)
    finally:
        database.dispose()


def unmasked_clips(root: Path) -> dict[str, tuple[int, bool]]:
    """Per camera of a restored data folder, the clips stored without its current privacy masks (masks set after
    the clips were stored, and not applied to them, in the backup or by the register's replay) and whether a mask
    job is queued or running for them (a server started on the folder masks them)."""
    from sqlmodel import col, select

    from alarmcloud.masks_apply import ACTIVE, pending_clips
    from alarmcloud.models import Camera, MaskJob

    out: dict[str, tuple[int, bool]] = {}
    database = _stores(root)[0]
    try:
        with database.session() as s:
            for cam in s.exec(select(Camera).where(col(Camera.privacy_masks).is_not(None))).all():
                n = pending_clips(s, cam)
                if n:
                    queued = s.exec(select(MaskJob.id).where(MaskJob.camera_id == cam.id,
                                                             col(MaskJob.state).in_(ACTIVE))).first() is not None
                    out[cam.id] = (n, queued)
    finally:
        database.dispose()
    return out


def erase_accounts(root: Path, who: list[str]) -> tuple[list[str], list[str]]:
    """Erase accounts (e-mail address or id) with their sub-users from a restored data folder, rows and files,
    as ``privacy_erase`` does on a live server, without telling plugins (their links ended at the first erasure).
    Returns the ids erased and the values no account matched."""
    from sqlmodel import or_, select

    from alarmcloud.erasures import erase_account
    from alarmcloud.models import Account

    erased: list[str] = []
    not_found: list[str] = []
    database, blobs, training = _stores(root)
    try:
        for value in who:
            with database.session() as s:
                acc = s.exec(select(Account).where(or_(Account.email == value.strip().lower(),
                                                       Account.id == value.strip()))).first()
                if acc is None:
                    not_found.append(value)
                    continue
                # a key pointing outside the store was never copied into the backup (``backup._plan``): not deleted
                erased += erase_account(s, blobs, training, acc.id,
                                        key_ok=lambda k: _inside(root / "blobs", k) is not None)
    finally:
        database.dispose()
    return erased, not_found


@click.command("restore")
@click.argument("src", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="A new or empty folder to restore into (a folder with anything in it is refused).")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The saved secret.key for a backup made without it (checked against the backup's secrets).")
@click.option("--erasures", "erasures", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              metavar="PATH",
              help="Erasure register to replay: the accounts, clips and cameras deleted after the backup was made "
                   "are deleted again, consents withdrawn since withdrawn again, privacy masks saved since set "
                   "again (repeatable, e.g. one per server). Default: the register of the settings "
                   "(privacy.erasure_register, else <data_dir>/erasures.jsonl) when it exists.")
@click.option("--no-erasures", is_flag=True, help="Replay no erasure register (a trial restore).")
@click.option("--erase", "erase", multiple=True, metavar="EMAIL_OR_ID",
              help="Erase this account (and its sub-users) from the restored data before it is put in place: "
                   "accounts erased after the backup was made that no register lists (repeatable).")
@config_option
def restore_command(src: Path, data_dir: Path, key_file: Path | None, erasures: tuple[Path, ...], no_erasures: bool,
                    erase: tuple[str, ...], config_file: Path | None) -> None:
    """Restore a backup made by `alarmcloud backup` into a new data directory.

    Every member's size and SHA-256 are checked against the manifest and unsafe members (absolute paths, '..',
    links, devices) are refused; the files go to a temporary folder beside the target that is renamed into place
    only when everything checked out, after migrating the database if the backup's schema is older and deleting
    again what the erasure register lists (accounts erased, clips and cameras deleted, consents withdrawn and
    privacy masks saved after the backup).
    """
    from alarmcloud.erasures import register_path

    setup_logging("WARNING")
    if erasures and no_erasures:
        raise click.UsageError("--erasures and --no-erasures exclude each other")
    st = settings_from(config_file)
    if st.storage.backend != "local":  # the restored folder holds local blobs a server using the bucket never reads
        raise click.ClickException(
            f"the settings use storage.backend = 's3' (bucket {st.storage.s3.bucket}): a backup restores into a "
            "local data directory, whose clips such a server would not read. Restore with settings for local "
            "storage, or recover objects from the bucket's versions or replica (docs/backup.md, 'S3 storage').")
    configured = register_path(st)
    sources = list(erasures)
    if not sources and not no_erasures and configured.is_file():
        sources = [configured]
    # a register kept apart from data_dir goes on being the deployment's; the default one is copied into the target
    register_out = configured if st.privacy.erasure_register is not None else None
    try:
        check_target(data_dir.absolute())
        with progress() as bar:
            task = bar.add_task("restoring", total=None)

            def _tick(done: int, total: int, _bytes: int) -> None:
                bar.update(task, completed=done, total=total)

            result = restore_backup(src, data_dir, key_file=key_file, erase=list(erase), erasures=sources,
                                    register_out=register_out, on_progress=_tick)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    m = result.manifest
    migrated = f", database migrated from schema {result.migrated_from}" if result.migrated_from else ""
    click.echo(f"restored {result.path}: {m['counts']['clips']} clips, {result.files} files, "
               f"{human_bytes(result.bytes)} in {result.seconds:.1f} s (backup of {m['created_at']}){migrated}")
    if result.dropped:
        click.echo(f"{len(result.dropped)} event(s) left out: their video was deleted while the backup ran "
                   "(listed under missing in the manifest)")
    if result.register is not None:
        reg = result.register
        skipped = f", {reg.skipped} unreadable line(s) skipped" if reg.skipped else ""
        click.echo(f"erasure register {', '.join(map(str, sources))}: {reg.describe()}{skipped}")
        if result.replayed is not None:
            click.echo(f"deleted again: {result.replayed.summary()}")
    if erase:
        click.echo(f"erased again: {len(result.erased)} account(s) with sub-users"
                   + (f"; not in the backup: {', '.join(result.not_found)}" if result.not_found else ""))
    for w in result.warnings:
        console.print(f"[yellow]{w}[/]")
    if result.register is None and not erase:
        where = "" if no_erasures else f" (none at {configured})"
        console.print(f"[yellow]No erasure register was replayed{where}: accounts erased and clips deleted after "
                      f"{m['created_at']} are back in this copy. Restore again with --erasures PATH (and --erase "
                      "for accounts no register lists).[/]")
    for camera_id, (n, queued) in sorted(result.unmasked.items()):
        if queued:
            click.echo(f"camera {camera_id}: {n} clip(s) stored without its current privacy masks are queued for "
                       "masking: a server started on this folder paints the masks into them")
        else:
            console.print(f"[yellow]camera {camera_id}: {n} clip(s) stored without its current privacy masks; "
                          f"paint them in with `alarmcloud privacy apply-masks {camera_id} --data-dir "
                          f"{result.path}` if its owner had applied them (the camera's page offers it too)[/]")
    console.print(f"Before serving it, run `alarmcloud privacy retention --data-dir {result.path}` "
                  "(see docs/backup.md).")
