"""Usage aggregated per account, camera or token and hour (counts and bytes, never IPs)."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import col, select

from alarmcloud.models import Account, UsageHour, utcnow

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud


class UsageRecorder:
    def __init__(self, app: AlarmCloud) -> None:
        self.app = app
        self._lock = threading.Lock()
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
        with self._lock:
            pending, self._pending = self._pending, defaultdict(lambda: [0, 0, 0])
        if not pending:
            return
        with self.app.db.session() as s:
            ids = {a for (_, _, a) in pending if a}
            # an account erased meanwhile (its own DELETE request is counted after the erasure) leaves no row; the
            # key-share lock (PostgreSQL) waits for an erasure in flight (it locks the account first) and keeps the
            # account until this commits, so no row is written for an account that is going
            live = set(s.exec(select(Account.id).where(col(Account.id).in_(ids))
                              .with_for_update(read=True, key_share=True)).all()) if ids else set()
            for (hour, subject, account_id), (n, bi, bo) in pending.items():
                if account_id and account_id not in live:
                    continue
                row = s.exec(select(UsageHour).where(UsageHour.hour == hour, UsageHour.subject == subject)).first()
                if row is None:
                    row = UsageHour(hour=hour, subject=subject, account_id=account_id)
                row.requests += n
                row.bytes_in += bi
                row.bytes_out += bo
                s.add(row)
            s.commit()
