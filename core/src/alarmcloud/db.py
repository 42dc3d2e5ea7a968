"""Engine, sessions and migrations. SQLite (WAL) by default; the same code runs on PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from alarmcloud import models  # noqa: F401 - registers the tables on SQLModel.metadata

log = logging.getLogger(__name__)
T = TypeVar("T")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn) -> None:  # type: ignore[no-untyped-def]
            # take the write lock at BEGIN so read-then-write transactions (job claims) never deadlock
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        _disable_pysqlite_autobegin(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _disable_pysqlite_autobegin(engine: Engine) -> None:
    """Let SQLAlchemy's BEGIN IMMEDIATE (above) start transactions instead of pysqlite's implicit BEGIN."""

    @event.listens_for(engine, "connect")
    def _no_autobegin(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (Alembic)."""
    if url.startswith("sqlite:///"):
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


class Database:
    """Session factory; ``run`` executes blocking DB work in a thread so the event loop never blocks."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = url.startswith("sqlite")
        #: the SQLite connections the engine opened and has not closed (``close`` closes those still checked out)
        self._open: dict[int, Any] = {}
        if self.is_sqlite:
            event.listen(self.engine, "connect", lambda conn, _rec: self._open.__setitem__(id(conn), conn))
            for closed in ("close", "close_detached"):
                event.listen(self.engine, closed, lambda conn, *_: self._open.pop(id(conn), None))

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as s:
            yield s

    async def run(self, fn: Callable[[Session], T]) -> T:
        def _call() -> T:
            with self.session() as s:
                return fn(s)

        return await anyio.to_thread.run_sync(_call)

    def dispose(self) -> None:
        self.engine.dispose()

    def close(self) -> None:
        """Close every connection of this database, also those still checked out (a server that stops: a thread
        that outlived it, or a session it left open, must not keep the SQLite file open, for a copy or restore of
        the stopped deployment locks it). The engine opens new connections if it is used again."""
        self.engine.dispose()
        left = list(self._open.values())
        self._open.clear()
        for conn in left:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing at shutdown: nothing left to do with it
                pass
        if left:
            log.warning("closed %d database connection(s) still in use at shutdown", len(left))
