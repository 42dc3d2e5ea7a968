"""Usage counts (statistics and billing) are never lost: not to a flush running in another thread, not to several
processes adding to the same hour's row at once, not to a failed write. On SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alarmcloud.models import UsageHour
from alarmcloud.testing import LiveServer, settings_on
from alarmcloud.usage import UsageRecorder
from sqlmodel import select

BOTH_DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BOTH_DATABASES)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    with settings_on(request.param, tmp_path / "data") as st:
        yield st


def _stored(core: Any, subject: str) -> tuple[int, int, int] | None:
    with core.db.session() as s:
        rows = s.exec(select(UsageHour).where(UsageHour.subject == subject)).all()
    assert len(rows) <= 1
    return (rows[0].requests, rows[0].bytes_in, rows[0].bytes_out) if rows else None


class _HeldRecorder(UsageRecorder):
    """A recorder whose first write waits until the test lets it go (a background flush caught mid-write)."""

    def __init__(self, core: Any) -> None:
        super().__init__(core)
        self.writing, self.go = threading.Event(), threading.Event()

    def _write(self, pending: Any) -> None:
        if not self.writing.is_set():
            self.writing.set()
            assert self.go.wait(30)
        super()._write(pending)


def test_a_flush_returns_only_when_the_counts_before_it_are_stored(server: LiveServer) -> None:
    """The access-log thread, the server's background loop and shutdown all flush one recorder: a flush that finds
    the counts taken by one still writing waits for it, so what was counted before the call is stored on return."""
    core: Any = server.core
    subject = f"camera:{uuid.uuid4().hex}"
    usage = _HeldRecorder(core)
    usage.add(None, subject, bytes_in=100)
    background = threading.Thread(target=usage.flush)
    background.start()
    assert usage.writing.wait(30)  # the background flush has taken the counts and not written them yet
    done = threading.Event()
    caller = threading.Thread(target=lambda: (usage.flush(), done.set()))
    caller.start()
    assert not done.wait(0.5)  # it waits for the background flush
    usage.go.set()
    caller.join(30)
    background.join(30)
    assert done.is_set() and _stored(core, subject) == (1, 100, 0)


def test_recorders_of_several_processes_adding_to_one_hour_lose_no_count(server: LiveServer) -> None:
    """Each process (web servers, workers) keeps its own counts and adds them to the hour's row: at once, for a row
    that does not exist yet and for one that does, every count arrives exactly once."""
    core: Any = server.core
    subject = f"token:{uuid.uuid4().hex}"
    recorders = [UsageRecorder(core) for _ in range(6)]
    for rounds in range(2):  # the first round creates the row, the second adds to it
        for r in recorders:
            for _ in range(25):
                r.add(None, subject, bytes_out=10)
        assert _flush_at_once(recorders) == []
        n = 6 * 25 * (rounds + 1)
        assert _stored(core, subject) == (n, 0, 10 * n)


def _flush_at_once(recorders: list[UsageRecorder]) -> list[BaseException]:
    """Flush every recorder in a thread of its own, all released at the same moment; the exceptions raised."""
    start = threading.Barrier(len(recorders))
    errors: list[BaseException] = []

    def flush(r: UsageRecorder) -> None:
        start.wait()
        try:
            r.flush()
        except BaseException as exc:  # noqa: BLE001 - returned to the test
            errors.append(exc)

    threads = [threading.Thread(target=flush, args=(r,)) for r in recorders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def test_counts_a_failed_write_could_not_store_are_kept_for_the_next_flush(server: LiveServer) -> None:
    core: Any = server.core
    subject = f"account-less:{uuid.uuid4().hex}"
    usage = UsageRecorder(core)
    usage.add(None, subject, requests=3, bytes_in=7)
    real_write = usage._write
    calls = []

    def failing_write(pending: Any) -> None:
        calls.append(1)
        raise ConnectionError("the database went away")

    usage._write = failing_write  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        usage.flush()
    usage.add(None, subject, requests=1)  # counted while the database was away
    usage._write = real_write  # type: ignore[method-assign]
    usage.flush()
    assert calls == [1] and _stored(core, subject) == (4, 7, 0)
