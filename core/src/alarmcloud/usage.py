"""Usage aggregated per account, camera or token and hour (counts and bytes, never IPs)."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from alarmcloud.models import Account, UsageHour, utcnow

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud


class UsageRecorder:
    def __init__(self, app: AlarmCloud) -> None:
        self.app = app
        self._lock = threading.Lock()  # the counts
        self._flushing = threading.Lock()  # one flush at a time
        self._pending: dict[tuple[datetime, str, str | None], list[int]] = defaultdict(lambda: [0, 0, 0])

    def add(self, account_id: str | None, subject: str, requests: int = 1, bytes_in: int = 0,
            bytes_out: int = 0) -> None:
        hour = utcnow().replace(minute=0, second=0, microsecond=0)
        with self._lock:
            row = self._pending[(hour, subject, account_id)]
            row[0] += requests
            row[1] += bytes_in
            row[2] += bytes_out

    def flush(self) -> None:
        """Store the counts recorded so far. Flushes of one recorder run one at a time, so when this returns every
        count added before the call is stored (a background flush that took them first has committed). Each count is
        added to its hour's row in one statement (an upsert), so flushes of several processes neither lose an
        update nor collide on a new row; counts a failed write could not store are kept for the next flush."""
        with self._flushing:
            with self._lock:
                pending, self._pending = self._pending, defaultdict(lambda: [0, 0, 0])
            if not pending:
                return
            try:
                self._write(pending)
            except BaseException:
                with self._lock:  # back into the counts, for the next flush
                    for key, counts in pending.items():
                        row = self._pending[key]
                        for i, v in enumerate(counts):
                            row[i] += v
                raise

    def _write(self, pending: dict[tuple[datetime, str, str | None], list[int]]) -> None:
        with self.app.db.session() as s:
            ids = {a for (_, _, a) in pending if a}
            # an account erased meanwhile (its own DELETE request is counted after the erasure) leaves no row; the
            # key-share lock (PostgreSQL) waits for an erasure in flight (it locks the account first) and keeps the
            # account until this commits, so no row is written for an account that is going
            live = set(s.exec(select(Account.id).where(col(Account.id).in_(ids))
                              .with_for_update(read=True, key_share=True)).all()) if ids else set()
            dialect = s.get_bind().dialect.name
            table = UsageHour.__table__
            for (hour, subject, account_id), (n, bi, bo) in pending.items():
                if account_id and account_id not in live:
                    continue
                insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table).values(
                    hour=hour, subject=subject, account_id=account_id, requests=n, bytes_in=bi, bytes_out=bo)
                s.exec(insert.on_conflict_do_update(
                    index_elements=["hour", "subject"],
                    set_={c: table.c[c] + insert.excluded[c] for c in ("requests", "bytes_in", "bytes_out")}))
            s.commit()
