"""Cost of ``offsite.backfill`` ("Copy existing clips") for an account with many stored clips.

    uv run python bench/offsite/run.py [--clips 100000] [--database-url postgresql+psycopg://...]

Seeds one account with ``--clips`` analysed clips (half of them alarms) straight into a fresh database (SQLite in
a temp folder unless a URL is given), then measures: the first backfill (every alarm queued), a second one
(nothing new: only the look-ups) right after it and a third after ``ANALYZE`` (as autovacuum would have run by
then), the longest single batch transaction, with ``--memory`` the peak of Python memory during each (tracemalloc;
the times are then much longer), and then what one look of the copy loop costs with that backlog waiting.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from alarmcloud import db, offsite  # noqa: E402
from alarmcloud.app import AlarmCloud  # noqa: E402
from alarmcloud.models import Account, Camera, Clip, Series, new_id  # noqa: E402
from alarmcloud.testing import test_settings  # noqa: E402
from sqlalchemy import insert  # noqa: E402


def seed(core: Any, clips: int) -> str:
    now = datetime(2026, 11, 20, tzinfo=UTC)
    with core.db.session() as s:
        acc = Account(email="bench@example.com", password_hash="x", offsite_enabled=True,
                      offsite_endpoint="https://s3.example.com", offsite_bucket="bench-bucket",
                      offsite_access_key_id="AKIA", offsite_secret_key_enc="sealed")
        s.add(acc)
        s.flush()
        cam = Camera(account_id=acc.id, name="Yard", brand="instar", model="IN-9008")
        s.add(cam)
        s.flush()
        series = Series(account_id=acc.id, camera_id=cam.id, started_at=now, ended_at=now, clip_count=clips)
        s.add(series)
        s.commit()
        account_id, camera_id, series_id = acc.id, cam.id, series.id
    rows = [{"id": new_id(), "account_id": account_id, "camera_id": camera_id, "series_id": series_id,
             "blob_key": f"{account_id}/{camera_id}/{n}.mp4", "size_bytes": 2_000_000, "status": "done",
             "verdict": "alarm" if n % 2 else "false_alarm:no_motion", "started_at": now - timedelta(minutes=n),
             "received_at": now, "flags": [], "labels": []} for n in range(clips)]
    with core.db.engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(insert(Clip), rows[i:i + 5000])
    with core.db.engine.begin() as conn:  # statistics, as a database that grew over time has them
        conn.exec_driver_sql("ANALYZE")
    return account_id


def measure(core: Any, account_id: str, memory: bool) -> tuple[int, float, float, float]:
    longest = 0.0
    orig = core.db.session

    def timed_session() -> Any:  # the longest transaction = the longest session (one batch each)
        from contextlib import contextmanager

        @contextmanager
        def cm() -> Any:
            nonlocal longest
            t = time.perf_counter()
            with orig() as s:
                yield s
            longest = max(longest, time.perf_counter() - t)
        return cm()

    core.db.session = timed_session
    if memory:
        tracemalloc.start()
    t = time.perf_counter()
    n = offsite.backfill(core, account_id)
    took = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if memory else 0.0
    tracemalloc.stop()
    core.db.session = orig
    return n, took, peak, longest


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=100_000)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--memory", action="store_true", help="trace Python memory (slows the run down a lot)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        st: Any = test_settings(Path(d) / "data", **({"database_url": args.database_url} if args.database_url else {}))
        db.migrate(st.db_url)
        core = AlarmCloud(st)
        t = time.perf_counter()
        account_id = seed(core, args.clips)
        print(f"seeded {args.clips} clips in {time.perf_counter() - t:.1f} s ({core.db.engine.dialect.name})")
        for name in ("first backfill", "second backfill", "analyse", "third backfill, after ANALYZE"):
            if name == "analyse":  # what autovacuum does within a minute or so of the first backfill's inserts
                with core.db.engine.begin() as conn:
                    conn.exec_driver_sql("ANALYZE")
                continue
            n, took, peak, longest = measure(core, account_id, args.memory)
            mem = f", peak Python memory {peak:.1f} MiB" if args.memory else ""
            print(f"{name}: queued {n} in {took:.2f} s, longest transaction {longest * 1000:.0f} ms{mem}")
        loop_looks(core)
        core.db.dispose()


def loop_looks(core: Any, rounds: int = 20) -> None:
    """What the copy loop costs per look with the backlog waiting (none of it due yet): the next due copy, and the
    claim of due copies (finds none)."""
    from alarmcloud import notify

    looks = [("claim of due copies (none due)", lambda: notify.claim(core, 4, True))]
    if hasattr(offsite, "due_in"):  # (older versions polled with the claim only)
        looks.insert(0, ("next due copy (offsite.due_in)", lambda: offsite.due_in(core)))
    for name, fn in looks:
        fn()
        t = time.perf_counter()
        for _ in range(rounds):
            fn()
        print(f"copy loop, {name}: {(time.perf_counter() - t) / rounds * 1000:.1f} ms per look")


if __name__ == "__main__":
    main()
