"""Leases on durable job rows (detection ``Job``, privacy-mask ``MaskJob``): one copy of the crash-safety mechanics.

A job row has ``state`` (``queued`` | ``running`` | ...), ``worker``, ``attempts`` and ``lease_until``. A worker takes
a queued row with a conditional UPDATE (``claim``: of several processes only one changes the row), renews the lease
while it works (``Heartbeat``), and gives the row back without counting an attempt when it must stop (``release``).
Every write that needs the lease says so in its WHERE clause (``held``), so a worker whose lease was taken away
changes nothing. A row whose worker is gone is found by ``lost``: its lease ended, or (``local``) the process that
held it ran on this host and no longer exists; each job kind decides what then happens to it (queued again or given
up), as in ``jobs.reap`` and ``masks_apply.reap``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import update
from sqlmodel import Session, col, select

from alarmcloud.models import aware, utcnow

if TYPE_CHECKING:
    from alarmcloud.db import Database

log = logging.getLogger(__name__)
_TOKEN = uuid.uuid4().hex[:8]  # tells this process from an earlier one that had the same pid (containers)


class LeasedRow(Protocol):
    id: Any
    state: str
    worker: str | None
    attempts: int
    lease_until: datetime | None


R = TypeVar("R", bound=LeasedRow)


def worker_name() -> str:
    """This process as a lease holder: ``host:pid:token`` (a thread may append ``:name``)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_TOKEN}"


def local_process_gone(host: str, pid: str) -> bool:
    """True when process ``pid`` ran on this host and no longer exists (other hosts: unknown, so False)."""
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def worker_gone(worker: str | None) -> bool:
    """True when the process named ``worker`` (``worker_name``) ran on this host and no longer exists."""
    host, pid, token = ((worker or "").split(":") + ["", "", ""])[:3]
    if host == socket.gethostname() and pid == str(os.getpid()):
        return token != _TOKEN  # an earlier process with our pid
    return local_process_gone(host, pid)


def held(model: type[LeasedRow], row_id: Any, worker: str) -> Any:
    """The WHERE clause of a write only the lease holder may make: row ``row_id``, running, held by ``worker``."""
    return (col(model.id) == row_id) & (col(model.worker) == worker) & (col(model.state) == "running")


def claim(s: Session, model: type[R], candidates: Iterable[Any], worker: str, lease_seconds: float,
          now: datetime | None = None) -> R | None:
    """Lease the first of ``candidates`` (row ids) still queued, or None; commits.

    A conditional UPDATE (``state = 'queued'`` in its WHERE clause): when processes race for a row, one changes it
    and the others see no row changed and try the next candidate. The row comes back as it is after the claim.
    """
    now = now or utcnow()
    for row_id in candidates:
        res = s.exec(update(model).where(col(model.id) == row_id, col(model.state) == "queued")  # type: ignore[call-overload]
                     .values(state="running", worker=worker, attempts=model.attempts + 1,
                             lease_until=now + timedelta(seconds=lease_seconds)))
        if res.rowcount:
            row = s.get(model, row_id, populate_existing=True)
            s.commit()
            return row
        s.commit()
    s.rollback()
    return None


def renew(s: Session, model: type[LeasedRow], row_id: Any, worker: str, lease_seconds: float) -> bool:
    """Extend the lease; False when the row is no longer ``worker``'s (lease taken away, job cancelled). Commits."""
    res = s.exec(update(model).where(held(model, row_id, worker))  # type: ignore[call-overload]
                 .values(lease_until=utcnow() + timedelta(seconds=lease_seconds)))
    s.commit()
    return bool(res.rowcount)


def release(s: Session, model: type[LeasedRow], row_id: Any, worker: str, **values: Any) -> bool:
    """Hand a running row back to the queue at once, its attempt not counted (only by the lease holder); ``values``:
    more columns to set. The caller commits."""
    res = s.exec(update(model).where(held(model, row_id, worker))  # type: ignore[call-overload]
                 .values(state="queued", worker=None, lease_until=None, attempts=model.attempts - 1, **values))
    return bool(res.rowcount)


def lost(row: LeasedRow, now: datetime, local: bool) -> bool:
    """A running row whose worker is gone: its lease ended, or (``local``) its process on this host died."""
    if row.state != "running":
        return False
    if row.lease_until is not None and aware(row.lease_until) < now:
        return True
    return local and worker_gone(row.worker)


def reap(s: Session, model: type[R], max_attempts: int, give_up: Callable[[Session, R], None], local: bool,
         kind: str = "job", **requeued: Any) -> list[R]:
    """Rows whose worker is gone (``lost``) go back to the queue (with the ``requeued`` columns), or, after
    ``max_attempts`` claims, are given up: state ``dead`` and whatever ``give_up`` adds. Commits."""
    now = utcnow()
    q = select(model).where(col(model.state) == "running")
    if not local:
        q = q.where(col(model.lease_until) < now)
    rows = [row for row in s.exec(q).all() if lost(row, now, local)]
    for row in rows:
        if row.attempts >= max_attempts:
            row.state = "dead"
            give_up(s, row)
        else:
            row.state = "queued"
            for name, value in requeued.items():
                setattr(row, name, value)
        log.warning("%s %s lost its worker %s; %s", kind, row.id, row.worker, row.state)
        row.worker, row.lease_until = None, None
        s.add(row)
    s.commit()
    return rows


class Heartbeat:
    """Renews a lease every third of its length in a thread while the ``with`` block runs; stops renewing when the
    lease was taken away (the worker's own writes, conditioned on the lease, then change nothing)."""

    def __init__(self, db: Database, model: type[LeasedRow], row_id: Any, worker: str, lease_seconds: float,
                 name: str = "alarmcloud-lease") -> None:
        self.db, self.model, self.row_id, self.worker, self.lease = db, model, row_id, worker, lease_seconds
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name=name)

    def _beat(self) -> None:
        while not self.stop.wait(self.lease / 3):
            with self.db.session() as s:
                if not renew(s, self.model, self.row_id, self.worker, self.lease):
                    return

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop.set()
