"""From the embedded default to scale-out: ``alarmcloud scale-out copy`` moves a stopped deployment's SQLite database
and local blobs (``data_dir``) into PostgreSQL and the blob store of the new settings (an S3-compatible bucket).

The source database is opened with an exclusive lock for the whole run: a server or worker still using it makes the
command refuse, and none can start while it copies. The blobs go first (a key already in the target with the same
size is not sent again, so an interrupted run resumes), the rows last, all tables in one PostgreSQL transaction
(all or nothing); the target database must be migrated to the same schema revision and empty. Ciphertexts are copied
as they are, so the target must hold the same keys; the key file and the erasure register are carried over where
the new settings look for them, and the summary says what every other node needs. The source is only read.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import JSON, Text, TypeDecorator

from alarmcloud.blobstore import BlobStore, LocalBlobStore, make_blob_store
from alarmcloud.cli_common import config_option, console, settings_from, setup_logging
from alarmcloud.units import human_bytes

#: rows per INSERT batch
BATCH = 1000
KEY_FILE = "secret.key"
_KID = re.compile(r"^([A-Za-z0-9_-]+)\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$")


class ScaleOutError(Exception):
    """The copy cannot start or go on; the message says why and what to do (nothing is left half-written)."""


@dataclass
class BlobItem:
    key: str  # the key in the target store
    size: int
    source_key: str | None = None  # a key of the source store, or
    source_path: Path | None = None  # a file of the source's training area


@dataclass
class Plan:
    """What a copy will do, found before anything is written (``--dry-run`` prints it)."""

    revision: str
    rows: dict[str, int]
    blobs: list[BlobItem]
    present: int = 0  # of ``blobs``, already in the target with the same size (an earlier, interrupted run)
    present_sizes: dict[str, int] = field(default_factory=dict)  # what the target holds: key -> size
    same_store: bool = False  # the target uses the source's blob folder: nothing to copy
    missing_keys: list[str] = field(default_factory=list)  # referenced by clips but not in the source store
    key_ids: list[str] = field(default_factory=list)  # key ids of the stored ciphertexts
    install_key: tuple[Path, bytes] | None = None  # the key file to write for the target
    register: tuple[Path, Path] | None = None  # erasure register to copy: (source, target)
    notes: list[str] = field(default_factory=list)  # what the operator must still do

    @property
    def bytes(self) -> int:
        return sum(b.size for b in self.blobs)


@dataclass
class Result:
    plan: Plan
    files: int = 0
    bytes: int = 0
    skipped: int = 0
    seconds: float = 0.0


# ---------------------------------------------------------------- source and target


def _sqlite_file(settings: Any) -> Path:
    u = make_url(settings.db_url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        raise ScaleOutError(f"the source uses {u.render_as_string(hide_password=True)}: this command copies the "
                            "embedded default (SQLite in --data-dir). Point --data-dir or --config at the old "
                            "deployment's settings.")
    path = Path(u.database)
    if not path.is_file():
        raise ScaleOutError(f"no database at {path}: is --data-dir (or data_dir in --config) the old server's?")
    return path


@contextmanager
def locked_source(db_file: Path) -> Iterator[Engine]:
    """The source database under an exclusive lock held to the end (an engine on that one connection).

    In WAL mode every open connection holds a shared lock on the file, so a running server, worker or backup makes
    this fail at once; and while it is held, no server can start on the database (its first read waits, then
    fails)."""
    con = sqlite3.connect(str(db_file), timeout=0, isolation_level=None, check_same_thread=False)
    try:
        con.execute("PRAGMA locking_mode=EXCLUSIVE")
        con.execute("BEGIN EXCLUSIVE")
        con.execute("ROLLBACK")  # nothing is written; the lock stays (exclusive locking mode keeps it)
    except sqlite3.OperationalError as exc:
        con.close()
        if "locked" in str(exc) or "busy" in str(exc):
            raise ScaleOutError(
                f"the database {db_file} is in use: stop the server (`alarmcloud serve`), its `alarmcloud worker` "
                "processes and any command using it (a backup) first; the copy reads a stopped deployment only"
            ) from None
        raise ScaleOutError(f"cannot open {db_file}: {exc}") from None
    engine = sa.create_engine("sqlite://", creator=lambda: con, poolclass=StaticPool)
    try:
        yield engine
    finally:
        engine.dispose()
        con.close()


def _head() -> str:
    from alembic.script import ScriptDirectory

    from alarmcloud import db

    head = ScriptDirectory.from_config(db.alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def _revision(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _tables() -> list[sa.Table]:
    from sqlmodel import SQLModel

    from alarmcloud import models  # noqa: F401 - registers every table

    return list(SQLModel.metadata.sorted_tables)


class _RawJSON(TypeDecorator[str]):
    """A JSON column read and written as its text: the stored document is copied as it is (key order, spacing, SQL
    NULL apart from JSON null), cast to JSON on the way into PostgreSQL."""

    impl = Text
    cache_ok = True

    def bind_expression(self, bindvalue: Any) -> Any:
        return sa.cast(bindvalue, JSON)


def _copy_table(table: sa.Table) -> sa.Table:
    """``table`` with its JSON columns as text (same names, primary key; no constraints: only for the copy)."""
    cols = [sa.Column(c.name, _RawJSON() if isinstance(c.type, JSON) else c.type, primary_key=c.primary_key,
                      autoincrement=False) for c in table.columns]
    return sa.Table(table.name, sa.MetaData(), *cols)


def _order(table: sa.Table, copy: sa.Table) -> list[Any]:
    """Rows of a table that refers to itself (a sub-user's owner) come after the rows they refer to."""
    first = [copy.c[fk.parent.name].is_not(None) for fk in table.foreign_keys if fk.column.table is table]
    return [*first, *(copy.c[c.name] for c in table.primary_key.columns)]


def _count(conn: sa.Connection, name: str) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar() or 0)


def _key_ids(conn: sa.Connection, tables: list[sa.Table]) -> set[str]:
    """The key ids in the stored ciphertexts (``kid$nonce$ciphertext``: ``*_enc`` columns, webhook secrets)."""
    kids: set[str] = set()
    for t in tables:
        for c in t.columns:
            if c.name.endswith("_enc") or (t.name == "webhooks" and c.name == "secret"):
                q = sa.select(sa.column(c.name)).select_from(sa.table(t.name)).where(sa.column(c.name).is_not(None))
                for (value,) in conn.execute(q):
                    if isinstance(value, str) and (m := _KID.match(value)):
                        kids.add(m.group(1))
    return kids


def _keys_of(settings: Any) -> tuple[dict[str, bytes], Path | None]:
    """The keys a server with ``settings`` decrypts with (without creating a key file), and the key file it reads
    (None: ``secret_key`` is set)."""
    from alarmcloud import crypto

    keys = {k: crypto.decode_key(v.get_secret_value()) for k, v in settings.old_secret_keys.items()}
    if settings.secret_key is not None:
        keys[settings.secret_key_id] = crypto.decode_key(settings.secret_key.get_secret_value())
        return keys, None
    path = Path(settings.data_dir) / KEY_FILE
    if path.is_file():
        keys[settings.secret_key_id] = crypto.decode_key(path.read_text())
    return keys, path


def _plan_keys(src: Any, dst: Any, kids: set[str], plan: Plan) -> None:
    """Refuse target settings that could not decrypt the copied secrets; plan the key file the target needs."""
    src_keys, src_file = _keys_of(src)
    dst_keys, dst_file = _keys_of(dst)
    plan.key_ids = sorted(kids)
    where = f"the key file {src_file}" if src_file else "secret_key of the old settings"
    for kid in sorted(kids):
        if kid not in src_keys:
            plan.notes.append(f"secrets under key id {kid} cannot be decrypted by the source settings either; they "
                              f"are copied as they are (set old_secret_keys.{kid} on the new nodes if you find it)")
            continue
        if kid in dst_keys:
            if dst_keys[kid] != src_keys[kid]:
                raise ScaleOutError(
                    f"the new settings hold another key under key id {kid} than the one the stored secrets (camera "
                    f"passwords, webhook and two-step secrets) are encrypted with: use {where} there "
                    f"({'secret_key' if kid == dst.secret_key_id else f'old_secret_keys.{kid}'}); nothing was "
                    "copied")
            continue
        if kid == dst.secret_key_id and dst_file is not None and not dst_file.exists():
            plan.install_key = (dst_file, src_keys[kid])
            continue
        raise ScaleOutError(f"the new settings lack key id {kid}, which the stored secrets need: set "
                            f"old_secret_keys.{kid} (or secret_key with secret_key_id = \"{kid}\") to the contents "
                            f"of {where}; nothing was copied")
    if (plan.install_key is None and dst.secret_key is None and dst_file is not None and not dst_file.exists()
            and dst.secret_key_id in src_keys):  # no secret stored yet: the new nodes still take the old key
        plan.install_key = (dst_file, src_keys[dst.secret_key_id])
    if dst.secret_key is None and dst_file is not None:
        if dst_file.exists() or plan.install_key:
            plan.notes.append(
                f"every node (serve, worker) must decrypt with the same key: set secret_key (env "
                f"ALARMCLOUD_SECRET_KEY, secret_key_id = \"{dst.secret_key_id}\") in each node's settings to the "
                f"contents of {dst_file}, or copy that file to each node's data_dir, before the first start (a node "
                "without it generates a key of its own)")
        else:
            plan.notes.append("every node (serve, worker) must decrypt with the same key: make one with `alarmcloud "
                              "keys generate` and set it as secret_key in each node's settings before the first start "
                              "(a node without it generates a key of its own)")


def _plan_register(src: Any, dst: Any, plan: Plan) -> None:
    from alarmcloud.erasures import register_path

    a, b = register_path(src).absolute(), register_path(dst).absolute()
    if a == b or not a.is_file():
        return
    if not b.exists():
        plan.register = (a, b)
    elif b.read_bytes() != a.read_bytes():
        plan.notes.append(f"the new settings' erasure register {b} already exists and differs from the old one {a}: "
                          f"keep both, and pass both to every restore and replay (--erasures {a} --erasures {b})")
    if dst.privacy.erasure_register is None:
        plan.notes.append("with several nodes, set [privacy] erasure_register to one file on shared storage (or one "
                          "per node, all passed to restores): each node writes the deletions made through it "
                          "(docs/backup.md, 'Erasure register')")


def _source_store(src: Any) -> LocalBlobStore | None:
    """The old blob folder (None when no clip was ever stored, nothing is created in the source; or the clips are in
    a bucket the new settings share)."""
    return LocalBlobStore(src.blob_dir) if src.storage.backend == "local" and Path(src.blob_dir).is_dir() else None


def _target_sizes(target: BlobStore, training_root: Path) -> dict[str, int]:
    """Every key the target holds with its size, from listings (one request per 1000 objects for S3); a local
    target's training area counts as its ``training/`` keys."""
    from alarmcloud.blobstore import S3BlobStore

    if isinstance(target, S3BlobStore):
        out = {str(m["path"]): int(m["size"]) for m in target._list("")}
    else:
        out = {k: target.size(k) for k in list(target.keys())}
        if training_root.is_dir():
            out |= {f"training/{p.relative_to(training_root).as_posix()}": p.stat().st_size
                    for p in training_root.rglob("*") if p.is_file() and not p.is_symlink()}
    return {k: v for k, v in out.items() if not k.endswith(".part")}


def _plan_blobs(src: Any, dst: Any, source: LocalBlobStore | None, target: BlobStore, conn: sa.Connection,
                plan: Plan) -> None:
    from alarmcloud.erasures import register_path

    if _same_bucket(src, dst):  # a single node with SQLite and a bucket: the objects stay where they are
        plan.same_store = True
        return
    if source is not None and isinstance(target, LocalBlobStore) and source.root == target.root:
        plan.same_store = True
        if Path(src.data_dir).resolve() != Path(dst.data_dir).resolve() and (Path(src.data_dir) / "training").is_dir():
            plan.notes.append(f"the new settings keep the blobs in {source.root}, but another data_dir: move "
                              f"{Path(src.data_dir) / 'training'} into it too")
        return
    register = register_path(src).resolve()
    items: list[BlobItem] = []
    for key in sorted(source.keys()) if source is not None else []:
        if key.endswith(".part") or (source.root / key).resolve() == register:  # type: ignore[union-attr]
            continue
        items.append(BlobItem(key, source.size(key), source_key=key))
    training = Path(src.data_dir) / "training"  # clips released for improving detectors: <detector>/<label>/<clip>
    if training.is_dir():
        for p in sorted(training.rglob("*")):
            if p.is_file() and not p.is_symlink() and not p.name.endswith(".part"):
                items.append(BlobItem(f"training/{p.relative_to(training).as_posix()}", p.stat().st_size,
                                      source_path=p))
    plan.blobs = items
    have = {b.key for b in items}
    referenced = conn.execute(sa.text("SELECT blob_key, thumb_key FROM clips")).all()
    plan.missing_keys = sorted({k for row in referenced for k in row if k and k not in have})
    plan.present_sizes = _target_sizes(target, Path(dst.data_dir) / "training")
    foreign = sorted(set(plan.present_sizes) - have)
    if foreign:
        raise ScaleOutError(f"the target store ({target.describe()}) already holds {len(foreign)} object(s) the "
                            f"source does not have (e.g. {foreign[0]}): another deployment's? Copy into an empty "
                            "bucket or give this deployment a key_prefix of its own; nothing was copied")
    plan.present = sum(1 for b in items if plan.present_sizes.get(b.key) == b.size)


def make_plan(src: Any, dst: Any, source_db: Engine, target_db: Engine) -> Plan:
    """Check source and target and find what to copy; raises ``ScaleOutError`` before anything is written."""
    head = _head()
    tables = _tables()
    with source_db.connect() as sc:
        rev = _revision(sc)
        if rev != head:
            raise ScaleOutError(f"the source database is at schema {rev}, this alarmcloud at {head}: run `alarmcloud "
                                "migrate` on it (or start the old server once with this version), stop it, and copy "
                                "again")
        rows = {t.name: _count(sc, t.name) for t in tables}
        unknown = sorted(set(sa.inspect(sc).get_table_names()) - set(rows) - {"alembic_version"})
        kids = _key_ids(sc, tables)
        with target_db.connect() as tc:
            trev = _revision(tc)
            if trev != head:
                now = "has no schema" if trev is None else f"is at schema {trev}"
                raise ScaleOutError(f"the target database {now}, this alarmcloud's is {head}: run `alarmcloud "
                                    "migrate --config NEW.toml` first (it creates the tables), then copy again")
            full = {t.name: n for t in tables if (n := _count(tc, t.name))}
            if full:
                shown = ", ".join(f"{k}: {v}" for k, v in sorted(full.items())[:5])
                raise ScaleOutError(f"the target database is not empty ({shown}): copy only into a database that was "
                                    "just migrated (no server started on it yet). If an earlier copy finished, it "
                                    "is done; nothing was copied")
        plan = Plan(revision=rev, rows=rows, blobs=[])
        if unknown:
            plan.notes.append(f"tables this alarmcloud's schema does not have are not copied: {', '.join(unknown)}")
        _plan_keys(src, dst, kids, plan)
        _plan_register(src, dst, plan)
        _plan_blobs(src, dst, _source_store(src), make_blob_store(dst), sc, plan)
    spool = Path(src.data_dir) / "ftp-spool"
    waiting = [p for p in spool.rglob("*") if p.is_file()] if spool.is_dir() else []
    if waiting and Path(src.data_dir).resolve() != Path(dst.data_dir).resolve():
        plan.notes.append(f"{len(waiting)} FTP upload(s) wait in {spool} to be stored: copy that folder to "
                          f"{Path(dst.data_dir) / 'ftp-spool'} on the node that takes FTP uploads before it starts "
                          "(they are stored then)")
    if plan.missing_keys:
        plan.notes.append(f"{len(plan.missing_keys)} file(s) the clips refer to were already missing in the source "
                          f"(e.g. {plan.missing_keys[0]}); those events stay without video, as before")
    return plan


# ---------------------------------------------------------------- copying

#: (files done, bytes done)
Tick = Callable[[int, int], None]


def copy_blobs(plan: Plan, source: BlobStore | None, target: BlobStore, training_root: Path, *, jobs: int = 8,
               on_progress: Tick | None = None) -> tuple[int, int, int]:
    """Copy the planned files (sizes checked on both sides); returns files copied, bytes, files already there."""
    present = plan.present_sizes
    done = skipped = nbytes = 0

    def one(item: BlobItem) -> tuple[int, bool]:
        if present.get(item.key) == item.size:
            return item.size, False
        if not target.shared and item.source_path is not None:  # a local target: its data_dir's training area
            dst = training_root / item.key.removeprefix("training/")
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex}.part")
            shutil.copyfile(item.source_path, tmp)
            tmp.replace(dst)
            got = dst.stat().st_size
        else:
            staged = target.tmp_path(f"scale-out-{uuid.uuid4().hex}")
            staged.parent.mkdir(parents=True, exist_ok=True)
            try:
                if item.source_path is not None:
                    shutil.copyfile(item.source_path, staged)
                else:
                    assert source is not None and item.source_key is not None
                    with source.open(item.source_key) as fh, open(staged, "wb") as out:
                        shutil.copyfileobj(fh, out, 1024 * 1024)
                if staged.stat().st_size != item.size:
                    raise ScaleOutError(f"{item.key}: read {staged.stat().st_size} bytes, expected {item.size} (did "
                                        "something change the source?); run the copy again")
                target.put_file(item.key, staged)
            finally:
                staged.unlink(missing_ok=True)
            got = target.size(item.key)
        if got != item.size:
            raise ScaleOutError(f"{item.key}: the target holds {got} bytes, the source {item.size}; run the copy "
                                "again (files already copied whole are not sent twice)")
        return item.size, True

    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        pending = {pool.submit(one, b) for b in plan.blobs}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                size, copied = f.result()  # the first failure ends the copy (the files not started are cancelled)
                nbytes += size
                if copied:
                    done += 1
                else:
                    skipped += 1
                if on_progress:
                    on_progress(done + skipped, nbytes)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # also on Ctrl-C: the files under way finish, no new one starts
    return done, nbytes, skipped


def copy_rows(source_db: Engine, target_db: Engine, plan: Plan, on_progress: Callable[[int], None] | None = None
              ) -> dict[str, int]:
    """Every table's rows, in foreign-key order, in one transaction of the target (all or nothing); sequences are
    moved past the copied ids. Returns the rows per table, counted again in the target before the commit."""
    tables = _tables()
    copied: dict[str, int] = {}
    with source_db.connect() as sc, target_db.begin() as tc:
        names = ", ".join(tc.dialect.identifier_preparer.quote(t.name) for t in tables)
        # no server on the target writes while the copy runs (readers wait for nothing)
        tc.execute(sa.text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))
        for t in tables:
            if _count(tc, t.name):  # a server started on the target meanwhile
                raise ScaleOutError(f"the target table {t.name} got rows while the copy ran: is a server using the "
                                    "new settings already? Stop it; nothing was copied")
        n_done = 0
        for t in tables:
            copy = _copy_table(t)
            insert = copy.insert()
            n = 0
            result = sc.execution_options(yield_per=BATCH).execute(sa.select(copy).order_by(*_order(t, copy)))
            for part in result.partitions():
                batch = [dict(r._mapping) for r in part]
                try:
                    tc.execute(insert, batch)
                except sa.exc.DBAPIError as exc:
                    first = batch[0].get(t.primary_key.columns.keys()[0])
                    raise ScaleOutError(f"table {t.name}: PostgreSQL refused rows (from id {first}): "
                                        f"{str(exc.orig).strip().splitlines()[0]}; nothing was copied") from None
                n += len(batch)
                n_done += len(batch)
                if on_progress:
                    on_progress(n_done)
            copied[t.name] = n
        for t in tables:
            pk = list(t.primary_key.columns)
            if len(pk) == 1 and isinstance(pk[0].type, sa.Integer):
                seq = tc.execute(sa.text("SELECT pg_get_serial_sequence(:t, :c)"),
                                 {"t": t.name, "c": pk[0].name}).scalar()
                if seq:  # the next id is one past the largest copied (1 for an empty table)
                    tc.execute(sa.text(f"SELECT setval(:s, COALESCE((SELECT max({pk[0].name}) FROM {t.name}), 0) + 1, "
                                       "false)"), {"s": seq})
        for t in tables:
            if (got := _count(tc, t.name)) != copied[t.name] or got != plan.rows.get(t.name, got):
                raise ScaleOutError(f"table {t.name}: {got} rows in the target, {copied[t.name]} read; nothing was "
                                    "copied")
    return copied


def _install_key(path: Path, key: bytes) -> None:
    from alarmcloud import crypto

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(crypto._b64(key))
    tmp.replace(path)


def _copy_register(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex}")
    shutil.copyfile(src, tmp)
    tmp.chmod(0o600)
    tmp.replace(dst)


def check_target_settings(src: Any, dst: Any) -> None:
    if make_url(dst.db_url).get_backend_name() != "postgresql":
        raise ScaleOutError(f"the new settings' database_url is {make_url(dst.db_url).render_as_string(True)}: the "
                            "scale-out setup runs on PostgreSQL (database_url = \"postgresql+psycopg://USER@HOST/DB\")")
    if src.storage.backend != "local" and not _same_bucket(src, dst):
        raise ScaleOutError(f"the old settings keep the clips in the bucket {src.storage.s3.bucket}: give the new "
                            "settings the same [storage] table (the database is copied, the objects stay where they "
                            "are), or copy the bucket first with your S3 server's tools (rclone sync)")


def _same_bucket(src: Any, dst: Any) -> bool:
    a, b = src.storage, dst.storage
    return (a.backend == b.backend == "s3" and a.s3.bucket == b.s3.bucket and a.s3.endpoint_url == b.s3.endpoint_url
            and a.s3.key_prefix.strip("/") == b.s3.key_prefix.strip("/"))


def run_copy(src: Any, dst: Any, *, jobs: int = 8, dry_run: bool = False,
             on_plan: Callable[[Plan], None] | None = None, on_blobs: Tick | None = None,
             on_rows: Callable[[int], None] | None = None) -> Result:
    """The whole copy (see the module docstring)."""
    from alarmcloud import db

    started = time.monotonic()
    check_target_settings(src, dst)
    db_file = _sqlite_file(src)
    target_db = db.make_engine(dst.db_url)
    try:
        with locked_source(db_file) as source_db:
            try:
                plan = make_plan(src, dst, source_db, target_db)
            except sa.exc.OperationalError as exc:
                raise ScaleOutError(f"cannot reach the target database: {str(exc.orig).strip().splitlines()[0]}"
                                    ) from None
            result = Result(plan)
            if on_plan:
                on_plan(plan)
            if dry_run:
                return result
            source, target = _source_store(src), make_blob_store(dst)
            target.check()
            if not plan.same_store:
                result.files, result.bytes, result.skipped = copy_blobs(
                    plan, source, target, Path(dst.data_dir) / "training", jobs=jobs, on_progress=on_blobs)
            if plan.install_key:
                _install_key(*plan.install_key)
            if plan.register:
                _copy_register(*plan.register)
            copy_rows(source_db, target_db, plan, on_rows)
    finally:
        target_db.dispose()
    result.seconds = time.monotonic() - started
    return result


# ---------------------------------------------------------------- command


@click.group("scale-out")
def scale_out() -> None:
    """Grow an embedded deployment (SQLite + local blobs) into the scale-out setup (PostgreSQL + S3 bucket)."""


@scale_out.command("copy")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The old server's data directory (SQLite database, blobs, key file).")
@config_option
@click.option("--to-config", "to_config", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The new settings: database_url (PostgreSQL, migrated and empty) and [storage] (the bucket).")
@click.option("--jobs", type=click.IntRange(1, 64), default=8, show_default=True, help="Files copied at a time.")
@click.option("--dry-run", is_flag=True, help="Only check source and target and say what would be copied.")
def copy_command(data_dir: Path | None, config_file: Path | None, to_config: Path, jobs: int, dry_run: bool) -> None:
    """Copy a stopped embedded deployment into PostgreSQL and the new blob store.

    Refuses while a server or worker uses the old database, and unless the new database was migrated
    (`alarmcloud migrate --config NEW.toml`) and holds no rows. Every row keeps its id, times and encrypted values;
    every clip, thumbnail, export and training copy is copied and its size checked. The old deployment is only
    read: start it again if you change your mind. See docs/architecture.md, "Moving to scale-out".
    """
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    setup_logging("WARNING")
    src = settings_from(config_file, data_dir=data_dir)
    dst = settings_from(to_config)
    files_bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(binary_units=True),
                         TransferSpeedColumn(), TextColumn("{task.fields[files]}"), TimeRemainingColumn(),
                         console=console)
    rows_bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), console=console)
    state: dict[str, Any] = {}

    def _plan(plan: Plan) -> None:
        state["plan"] = plan

    def _blobs(files: int, nbytes: int) -> None:
        if "files" not in state:
            plan = state["plan"]
            files_bar.start()
            state["files"] = files_bar.add_task("files", total=plan.bytes, files=f"0/{len(plan.blobs)} files")
        files_bar.update(state["files"], completed=nbytes, files=f"{files}/{len(state['plan'].blobs)} files")

    def _rows(n: int) -> None:
        if "rows" not in state:
            files_bar.stop()
            rows_bar.start()
            state["rows"] = rows_bar.add_task("rows", total=sum(state["plan"].rows.values()))
        rows_bar.update(state["rows"], completed=n)

    try:
        result = run_copy(src, dst, jobs=jobs, dry_run=dry_run, on_plan=_plan, on_blobs=_blobs, on_rows=_rows)
    except ScaleOutError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        files_bar.stop()
        rows_bar.stop()
    plan = result.plan
    total_rows = sum(plan.rows.values())
    if dry_run:
        click.echo(f"would copy {total_rows} rows (schema {plan.revision}) and "
                   + ("no files (the new settings use the same blob store)" if plan.same_store else
                      f"{len(plan.blobs)} files, {human_bytes(plan.bytes)}"
                      + (f" ({plan.present} already in the target)" if plan.present else "")))
    else:
        skipped = f" ({result.skipped} of them already in the target)" if result.skipped else ""
        same = " (the clips stay where they are)" if plan.same_store else ""
        click.echo(f"copied {total_rows} rows and {result.files + result.skipped} files, "
                   f"{human_bytes(result.bytes)} in {result.seconds:.1f} s{skipped}{same}")
    for name, n in sorted(plan.rows.items()):
        if n:
            click.echo(f"  {name}: {n}")
    if plan.install_key:
        click.echo(f"key file: the old one {'would be ' if dry_run else ''}written to {plan.install_key[0]} "
                   "(mode 0600)")
    if plan.register:
        click.echo(f"erasure register: {plan.register[0]} {'would be ' if dry_run else ''}copied to "
                   f"{plan.register[1]}")
    for note in plan.notes:
        console.print(f"[yellow]{escape(note)}[/]", highlight=False)
    if not dry_run:
        console.print("Next: start the new nodes with the new settings (`alarmcloud serve --config NEW.toml`, "
                      "`alarmcloud worker --config NEW.toml -n N`), check a login and a video, then point the "
                      "cameras' upload address (and DNS) at them. The old data directory is unchanged: keep it "
                      "until you are sure, and do not start the old server again once cameras upload to the new "
                      "one.", highlight=False)
