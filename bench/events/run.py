"""Events API benchmark: ``query_events`` latency on a database with millions of clips.

Builds a fresh database with the real migrations, bulk-loads one large account (default 1 000 000 clips over
8 cameras and 3 years, realistic verdict mix, ~10 % of clips with findings) and a second account (100 000 clips),
then times every filter of ``GET /api/v1/events`` (median and p95), prints ``EXPLAIN QUERY PLAN`` of each SQL
statement, and times the first page through the real HTTP server (``LiveServer``).

SQLite always; PostgreSQL as well when ``--database-url`` or ``ALARMCLOUD_TEST_POSTGRES_URL`` names a server
(a throw-away database is created on it and dropped afterwards). ``--clips 20000`` for a quick check.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import sqlalchemy as sa
from alarmcloud import crypto, db, eventsapi
from alarmcloud.auth import User
from alarmcloud.eventsapi import _cursor, query_events
from alarmcloud.models import Account, ApiToken, Camera, CameraRight, Clip
from alarmcloud.testing import LiveServer, test_settings
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from sqlmodel import col, select

console = Console(highlight=False, width=200)
CLIP_COLS = ("id", "account_id", "camera_id", "series_id", "blob_key", "thumb_key", "size_bytes", "started_at",
             "received_at", "duration", "width", "height", "fps", "codec", "original_name", "trigger", "flags",
             "status", "verdict", "mover", "labels")
SERIES_COLS = ("id", "account_id", "camera_id", "started_at", "ended_at", "clip_count")
FINDING_COLS = ("clip_id", "account_id", "detector", "label", "score", "time", "box", "text")
# verdict mix: (verdict, status, probability)
VERDICTS = (("false_alarm:rain", "done", 0.55), ("alarm", "done", 0.25), ("false_alarm:snow", "done", 0.06),
            ("false_alarm:no_motion", "done", 0.04), (None, "pending", 0.07), (None, "failed", 0.03))
CAMERA_WEIGHTS = (0.30, 0.20, 0.15, 0.10, 0.10, 0.07, 0.05, 0.03)  # the smallest camera gets 3 % of the clips
CHUNK = 20_000
PAGE = 50


# ------------------------------------------------------------------------------------------------ data


def plate_pool(rng: np.random.Generator, n: int = 300) -> list[str]:
    cities = ["M", "B", "HH", "K", "S", "F", "D", "N", "FFB", "STA", "WM", "GAP"]
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    return [f"{cities[rng.integers(len(cities))]} {''.join(rng.choice(list(letters), rng.integers(1, 3)))} "
            f"{rng.integers(1, 9999)}" for _ in range(n)]


@dataclass
class Dataset:
    """One account's clips as arrays (sorted by start time) plus its series."""

    account_id: str
    cameras: list[str]
    series_ids: list[str]
    series_cam: np.ndarray
    series_start: np.ndarray
    series_len: np.ndarray
    clip_time: np.ndarray  # Unix seconds, ascending
    clip_series: np.ndarray
    verdict: np.ndarray  # index into VERDICTS
    plates: list[str]
    plate_weights: np.ndarray
    n_findings: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.clip_time)


def make_dataset(account_id: str, cameras: list[str], n_clips: int, years: float, end: float,
                 seed: int) -> Dataset:
    """Alarm series (1-8 clips, 15 s apart) at random times; cameras weighted; newest clip at ``end``."""
    rng = np.random.default_rng(seed)
    weights = np.array(CAMERA_WEIGHTS[:len(cameras)] or [1.0])
    weights = weights / weights.sum()
    lens = np.minimum(rng.geometric(0.4, size=int(n_clips / 2.2) + 1000), 8)
    cut = int(np.searchsorted(np.cumsum(lens), n_clips)) + 1
    lens = lens[:cut]
    lens[-1] -= int(lens.sum() - n_clips)
    lens = lens[lens > 0]
    span = years * 365.25 * 86400
    starts = np.sort(rng.uniform(end - span, end - 200, size=len(lens)))
    cams = rng.choice(len(cameras), p=weights, size=len(lens))
    series_idx = np.repeat(np.arange(len(lens)), lens)
    first = np.repeat(np.cumsum(lens) - lens, lens)
    j = np.arange(len(series_idx)) - first
    times = starts[series_idx] + 15.0 * j + rng.uniform(0, 1, size=len(series_idx))
    order = np.argsort(times, kind="stable")
    p = np.array([v[2] for v in VERDICTS])
    verdict = rng.choice(len(VERDICTS), p=p / p.sum(), size=len(order))
    plates = plate_pool(rng)
    pw = 1.0 / np.arange(1, len(plates) + 1) ** 1.1  # a few residents' cars, many rare visitors
    return Dataset(account_id, cameras, [rng.bytes(16).hex() for _ in range(len(lens))], cams, starts, lens,
                   times[order], series_idx[order], verdict, plates, pw / pw.sum())


def _ts_sqlite(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _ts_pg(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def series_rows(d: Dataset, ts: Callable[[float], Any]) -> Iterator[tuple[Any, ...]]:
    for i, sid in enumerate(d.series_ids):
        start = float(d.series_start[i])
        n = int(d.series_len[i])
        yield (sid, d.account_id, d.cameras[int(d.series_cam[i])], ts(start), ts(start + 15.0 * (n - 1) + 18.0), n)


def clip_chunks(d: Dataset, ts: Callable[[float], Any], boolean: Callable[[bool | None], Any],
                seed: int) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """(clip rows, finding rows) in chunks of CHUNK clips, oldest first."""
    rng = np.random.default_rng(seed + 1)
    for lo in range(0, d.n, CHUNK):
        hi = min(d.n, lo + CHUNK)
        u = rng.uniform(size=(hi - lo, 3))
        plate_pick = rng.choice(len(d.plates), p=d.plate_weights, size=hi - lo)
        sizes = rng.integers(1_500_000, 5_000_000, size=hi - lo)
        clips: list[tuple[Any, ...]] = []
        finds: list[tuple[Any, ...]] = []
        for k in range(hi - lo):
            i = lo + k
            cid = rng.bytes(16).hex()
            s_idx = int(d.clip_series[i])
            cam = d.cameras[int(d.series_cam[s_idx])]
            t = float(d.clip_time[i])
            verdict, status, _ = VERDICTS[int(d.verdict[i])]
            labels: list[str] = []
            if verdict == "alarm":
                if u[k, 0] < 0.22:
                    labels.append("person")
                    finds.append((cid, d.account_id, "objects", "person", 0.6 + 0.4 * u[k, 1], 3.0,
                                  "[0.31, 0.22, 0.12, 0.41]", None))
                if u[k, 1] < 0.12:
                    labels.append("plate")
                    text = d.plates[int(plate_pick[k])]
                    if u[k, 2] < 0.1:  # an OCR misread: one character off
                        text = text[:-1] + str((int(text[-1]) + 1) % 10)
                    finds.append((cid, d.account_id, "plates", "plate", 0.7 + 0.3 * u[k, 2], 4.0,
                                  "[0.52, 0.61, 0.08, 0.03]", text))
                if u[k, 2] > 0.997:  # a rare label: a few hundred in a million clips
                    labels.append("vehicle")
                    finds.append((cid, d.account_id, "objects", "vehicle", 0.6 + 0.4 * u[k, 0], 2.0,
                                  "[0.10, 0.50, 0.30, 0.20]", None))
            elif verdict in ("false_alarm:rain", "false_alarm:snow") and u[k, 0] < 0.08:
                label = verdict.split(":")[1]
                labels.append(label)
                finds.append((cid, d.account_id, label, label, 0.8 + 0.2 * u[k, 1], None, None, None))
            clips.append((cid, d.account_id, cam, d.series_ids[s_idx], f"{d.account_id}/{cam}/{cid}.mp4",
                          f"{d.account_id}/{cam}/{cid}.jpg", int(sizes[k]), ts(t), ts(t + 21.0), 18.0, 2560,
                          1440, 15.0, "h264", f"A_{datetime.fromtimestamp(t, UTC):%Y%m%d_%H%M%S}.mp4", None, "[]",
                          status, verdict, boolean(verdict == "alarm" if verdict else None), json.dumps(labels)))
        d.n_findings += len(finds)
        yield clips, finds


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console)


def load_sqlite(path: Path, datasets: list[Dataset]) -> float:
    t0 = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")  # 256 MiB while loading
    ins_s = f"INSERT INTO series ({','.join(SERIES_COLS)}) VALUES ({','.join('?' * len(SERIES_COLS))})"
    ins_c = f"INSERT INTO clips ({','.join(CLIP_COLS)}) VALUES ({','.join('?' * len(CLIP_COLS))})"
    ins_f = f"INSERT INTO findings ({','.join(FINDING_COLS)}) VALUES ({','.join('?' * len(FINDING_COLS))})"
    with _progress() as bar:
        for i, d in enumerate(datasets):
            conn.execute("BEGIN")
            conn.executemany(ins_s, series_rows(d, _ts_sqlite))
            task = bar.add_task(f"account {i + 1}: clips", total=d.n)
            for n, (clips, finds) in enumerate(clip_chunks(d, _ts_sqlite, lambda b: None if b is None else int(b),
                                                           seed=i)):
                conn.executemany(ins_c, clips)
                conn.executemany(ins_f, finds)
                bar.advance(task, len(clips))
                if n % 10 == 9:
                    conn.execute("COMMIT")
                    conn.execute("BEGIN")
            conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - t0


def load_postgres(url: str, datasets: list[Dataset]) -> float:
    import psycopg

    t0 = time.perf_counter()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn, _progress() as bar:
        for i, d in enumerate(datasets):
            with conn.cursor() as cur:
                with cur.copy(f"COPY series ({','.join(SERIES_COLS)}) FROM STDIN") as cp:
                    for row in series_rows(d, _ts_pg):
                        cp.write_row(row)
                task = bar.add_task(f"account {i + 1}: clips", total=d.n)
                for clips, finds in clip_chunks(d, _ts_pg, lambda b: b, seed=i):
                    with cur.copy(f"COPY clips ({','.join(CLIP_COLS)}) FROM STDIN") as cp:
                        for row in clips:
                            cp.write_row(row)
                    with cur.copy(f"COPY findings ({','.join(FINDING_COLS)}) FROM STDIN") as cp:
                        for row in finds:
                            cp.write_row(row)
                    bar.advance(task, len(clips))
            conn.commit()
        console.print("VACUUM ANALYZE (what autovacuum does after a bulk load) ...")
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - t0


# ------------------------------------------------------------------------------------------------ accounts


@dataclass
class Fixture:
    owner: User
    sub: User
    token: str
    cameras: list[str]
    data: list[Dataset]


def make_accounts(database: db.Database, n_clips: int, n_other: int, n_cameras: int, years: float) -> Fixture:
    with database.session() as s:
        a = Account(email="big@example.com", password_hash="x")
        b = Account(email="other@example.com", password_hash="x")
        s.add(a)
        s.add(b)
        s.flush()
        sub = Account(email="family@example.com", password_hash="x", owner_id=a.id)
        s.add(sub)
        cams_a = [Camera(account_id=a.id, name=f"Camera {i + 1}", brand="instar", model="IN-9408 2K+ WQHD")
                  for i in range(n_cameras)]
        cams_b = [Camera(account_id=b.id, name=f"Other {i + 1}", brand="instar", model="IN-9408 2K+ WQHD")
                  for i in range(3)]
        s.add_all(cams_a + cams_b)
        s.flush()
        for cam in cams_a[-2:]:  # the sub-user sees the two quietest cameras
            s.add(CameraRight(account_id=sub.id, camera_id=cam.id, right="view"))
        token = "bench-" + uuid.uuid4().hex
        s.add(ApiToken(account_id=a.id, name="bench", token_hash=crypto.token_hash(token)))
        s.commit()
        end = datetime.now(UTC).timestamp()
        data = [make_dataset(a.id, [c.id for c in cams_a], n_clips, years, end, seed=1)]
        if n_other:
            data.append(make_dataset(b.id, [c.id for c in cams_b], n_other, years, end, seed=2))
        return Fixture(User(a, "token"), User(sub, "token"), token, [c.id for c in cams_a], data)


def reload_fixture(database: db.Database) -> Fixture:
    with database.session() as s:
        a = s.exec(select(Account).where(Account.email == "big@example.com")).one()
        sub = s.exec(select(Account).where(Account.email == "family@example.com")).one()
        cams = [c.id for c in s.exec(select(Camera).where(Camera.account_id == a.id)).all()]
        cams.sort(key=lambda c: s.exec(select(sa.func.count()).select_from(Clip).where(Clip.camera_id == c)).one(),
                  reverse=True)
        token = "bench-" + uuid.uuid4().hex
        s.add(ApiToken(account_id=a.id, name="bench", token_hash=crypto.token_hash(token)))
        s.commit()
        return Fixture(User(a, "token"), User(sub, "token"), token, cams, [])


# ------------------------------------------------------------------------------------------------ timing


def pctl(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def cases(database: db.Database, fx: Fixture) -> list[tuple[str, User, dict[str, str]]]:
    with database.session() as s:
        newest = s.exec(select(Clip).where(Clip.account_id == fx.owner.tenant_id)
                        .order_by(col(Clip.started_at).desc(), col(Clip.id).desc())
                        .offset(199 * PAGE - 1).limit(1)).first()
        plates = s.exec(sa.text("SELECT text, count(*) AS n FROM findings WHERE account_id = :a AND label = 'plate' "
                                "GROUP BY text ORDER BY n DESC, text"), params={"a": fx.owner.tenant_id}).all()
        last = s.exec(select(sa.func.max(Clip.started_at)).where(Clip.account_id == fx.owner.tenant_id)).one()
    out: list[tuple[str, User, dict[str, str]]] = [("first page, newest first", fx.owner, {})]
    if newest is not None:
        out.append(("page 200 via cursor", fx.owner, {"cursor": _cursor(newest)}))
    since = (last - timedelta(days=365)).replace(microsecond=0)
    out += [
        (f"camera filter (camera with {CAMERA_WEIGHTS[0]:.0%})", fx.owner, {"camera_id": fx.cameras[0]}),
        (f"camera filter (camera with {CAMERA_WEIGHTS[-1]:.0%})", fx.owner, {"camera_id": fx.cameras[-1]}),
        ("time range (one week, a year ago)", fx.owner, {"since": since.isoformat(),
                                                         "until": (since + timedelta(days=7)).isoformat()}),
        ("verdict=alarm", fx.owner, {"verdict": "alarm"}),
        ("verdict=false_alarm", fx.owner, {"verdict": "false_alarm"}),
        ("camera 3 % + verdict=alarm", fx.owner, {"camera_id": fx.cameras[-1], "verdict": "alarm"}),
        ("label=plate", fx.owner, {"label": "plate"}),
        ("label=person", fx.owner, {"label": "person"}),
    ]
    out += [("label=vehicle (rare)", fx.owner, {"label": "vehicle"}),
            ("label=animal (no such finding)", fx.owner, {"label": "animal"})]
    if plates:
        prefix: dict[str, int] = {}
        for text, n in plates:
            prefix[text[:-1]] = prefix.get(text[:-1], 0) + n
        common = max(plates, key=lambda p: prefix[p[0][:-1]])
        rare = min(plates, key=lambda p: prefix[p[0][:-1]])
        for text, kind in ((common[0], "frequent"), (rare[0], "rare")):
            n = prefix[text[:-1]]
            fuzzy = text[:-1] + "X"  # one character off: matches every plate that shares the rest
            out.append((f"plate={fuzzy!r} (fuzzy; {kind} plate, {n} findings)", fx.owner, {"plate": fuzzy}))
    out.append(("sub-user with 2 cameras", fx.sub, {}))
    return out


class Recorder:
    """Collects the SQL statements a call runs (to EXPLAIN them afterwards)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.on = False
        self.statements: list[tuple[str, Any]] = []
        sa.event.listen(engine, "before_cursor_execute", self._hook)

    def _hook(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if self.on and statement.lstrip().upper().startswith("SELECT"):
            self.statements.append((statement, parameters))


def explain(database: db.Database, statement: str, parameters: Any) -> list[str]:
    with database.engine.connect() as conn:
        if database.is_sqlite:
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            depth: dict[int, int] = {0: 0}
            out = []
            for node, parent, _, detail in rows:
                depth[node] = depth.get(parent, 0) + 1
                out.append("  " * (depth[node] - 1) + str(detail))
            return out
        rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + statement,
                                    parameters).all()
        return [r[0] for r in rows]


def short_sql(statement: str) -> str:
    s = " ".join(statement.split())
    frm = s.upper().find(" FROM ")
    return s[:40] + " …" + s[frm:frm + 60] + " …" if frm > 0 else s[:100]


def measure(database: db.Database, fx: Fixture, repeat: int, plans: bool,
            query: Callable[..., Any] = query_events) -> list[dict[str, Any]]:
    rec = Recorder(database.engine)
    results = []
    for name, user, params in cases(database, fx):
        def call(user: User = user, params: dict[str, str] = params) -> tuple[list[dict[str, Any]], str | None]:
            with database.session() as s:
                return query(s, user, params, PAGE)  # type: ignore[no-any-return]

        rec.statements.clear()
        rec.on = True
        t0 = time.perf_counter()
        items, cursor = call()
        cold = (time.perf_counter() - t0) * 1000
        rec.on = False
        statements = list(rec.statements)
        times = []
        budget = time.perf_counter() + 60  # a slow case gets fewer repetitions
        for _ in range(repeat):
            t0 = time.perf_counter()
            call()
            times.append((time.perf_counter() - t0) * 1000)
            if time.perf_counter() > budget and len(times) >= 3:
                break
        digest = hashlib.sha256(" ".join(i["id"] for i in items).encode()).hexdigest()[:10]
        r = {"case": name, "n": len(items), "more": cursor is not None, "first_ms": cold,
             "median_ms": statistics.median(times), "p95_ms": pctl(times, 0.95), "runs": len(times),
             "digest": digest}
        results.append(r)
        console.print(f"[bold]{name}[/]: {len(items)} items, median {r['median_ms']:.2f} ms, "
                      f"p95 {r['p95_ms']:.2f} ms, first call {cold:.1f} ms ({len(times)} runs, ids {digest})")
        if plans:
            for statement, parameters in statements:
                if "clips" not in statement and "findings" not in statement:
                    continue
                console.print(f"  [dim]{short_sql(statement)}[/]")
                for line in explain(database, statement, parameters):
                    console.print(f"    {line}")
    return results


def measure_http(settings: Any, fx: Fixture, repeat: int) -> dict[str, float]:
    t0 = time.perf_counter()
    with LiveServer(settings, workers=0, run_migrations=False) as srv:
        startup = time.perf_counter() - t0
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {fx.token}"}, timeout=120) as c:
            r = c.get("/api/v1/events", params={"limit": PAGE})
            r.raise_for_status()
            assert len(r.json()["items"]) == min(PAGE, sum(d.n for d in fx.data) or PAGE)
            times: dict[str, list[float]] = {"/api/v1/events": [], "/api/v1/me": []}
            for _ in range(repeat):
                for path, xs in times.items():  # /me: the same server, client and token without the events query
                    t1 = time.perf_counter()
                    c.get(path, params={"limit": PAGE} if path.endswith("events") else None).raise_for_status()
                    xs.append((time.perf_counter() - t1) * 1000)
    ev, me = times["/api/v1/events"], times["/api/v1/me"]
    return {"startup_s": startup, "median_ms": statistics.median(ev), "p95_ms": pctl(ev, 0.95),
            "me_median_ms": statistics.median(me), "me_p95_ms": pctl(me, 0.95)}


def report(title: str, results: list[dict[str, Any]], http: dict[str, float] | None) -> None:
    console.print(f"\n### {title}\n")
    console.print("| query (limit 50) | items | median ms | p95 ms | first call ms |")
    console.print("|---|---|---|---|---|")
    for r in results:
        console.print(f"| {r['case']} | {r['n']}{'+' if r['more'] else ''} | {r['median_ms']:.2f} | "
                      f"{r['p95_ms']:.2f} | {r['first_ms']:.1f} |")
    if http:
        console.print(f"| HTTP GET /api/v1/events (LiveServer, bearer token) | 50+ | {http['median_ms']:.2f} | "
                      f"{http['p95_ms']:.2f} | server start-up {http['startup_s']:.1f} s |")
        console.print(f"| HTTP GET /api/v1/me (same server and token, for comparison) | - | "
                      f"{http['me_median_ms']:.2f} | "
                      f"{http['me_p95_ms']:.2f} | |")


# ------------------------------------------------------------------------------------------------ main


def _load_module(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("bench_before_eventsapi", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def phase(database: db.Database, fx: Fixture, url: str, data_dir: Path, args: argparse.Namespace, title: str,
          query: Callable[..., Any]) -> None:
    """Time every case with ``query`` (also behind the HTTP endpoint) and print the table."""
    original = eventsapi.query_events
    eventsapi.query_events = query  # list_events looks it up at call time
    try:
        results = measure(database, fx, args.repeat, not args.no_plans, query)
        http = None if args.no_http else measure_http(test_settings(data_dir, database_url=url), fx, args.repeat)
    finally:
        eventsapi.query_events = original
    report(title, results, http)


def run(url: str, data_dir: Path, args: argparse.Namespace, title: str, sqlite_path: Path | None) -> None:
    reuse = sqlite_path is not None and sqlite_path.exists()
    first_rev = args.before_revision if args.before_query and not reuse else "head"
    t0 = time.perf_counter()
    db.migrate(url, first_rev)
    console.print(f"migrations to {first_rev}: {time.perf_counter() - t0:.1f} s")
    database = db.Database(url)
    try:
        if reuse:
            console.print(f"reusing {sqlite_path}")
            fx = reload_fixture(database)
        else:
            t0 = time.perf_counter()
            fx = make_accounts(database, args.clips, args.other_clips, args.cameras, args.years)
            console.print(f"generated {sum(d.n for d in fx.data):,} clips in {time.perf_counter() - t0:.1f} s")
            if database.is_sqlite:
                secs = load_sqlite(Path(url.split("///", 1)[1]), fx.data)
            else:
                secs = load_postgres(url, fx.data)
            clips = sum(d.n for d in fx.data)
            console.print(f"loaded {clips:,} clips, {sum(len(d.series_ids) for d in fx.data):,} series, "
                          f"{sum(d.n_findings for d in fx.data):,} findings in {secs:.0f} s "
                          f"({clips / secs:,.0f} clips/s)")
        if database.is_sqlite and args.analyze:
            t0 = time.perf_counter()
            with database.engine.connect() as c:
                c.exec_driver_sql("ANALYZE")
            console.print(f"ANALYZE: {time.perf_counter() - t0:.1f} s")
        if first_rev != "head":
            console.rule(f"before: revision {first_rev}, query_events from {args.before_query}")
            phase(database, fx, url, data_dir, args, f"{title}, before (revision {first_rev}, "
                  f"{args.before_query.name})", _load_module(args.before_query).query_events)
            t0 = time.perf_counter()
            db.migrate(url)
            console.rule(f"after: migrations to head took {time.perf_counter() - t0:.1f} s on this data")
            database.engine.dispose()  # SQLite connections opened before the migration keep the old schema
            if not database.is_sqlite:
                with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                    c.exec_driver_sql("ANALYZE")
        phase(database, fx, url, data_dir, args, title, eventsapi.query_events)
    finally:
        database.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=1_000_000, help="clips of the large account")
    ap.add_argument("--other-clips", type=int, default=100_000, help="clips of a second account")
    ap.add_argument("--cameras", type=int, default=8)
    ap.add_argument("--years", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=30, help="timed calls per query (after one first call)")
    ap.add_argument("--database-url", default=os.environ.get("ALARMCLOUD_TEST_POSTGRES_URL"),
                    help="PostgreSQL server URL (a fresh database is created on it); default "
                         "$ALARMCLOUD_TEST_POSTGRES_URL")
    ap.add_argument("--sqlite-path", type=Path, help="keep the SQLite database here; reused (migrated to head, "
                                                     "not reloaded) when it exists")
    ap.add_argument("--before-query", type=Path, help="an older eventsapi.py: measure its query_events first, on "
                                                      "the database at --before-revision, then migrate to head "
                                                      "and measure the current one on the same data")
    ap.add_argument("--before-revision", default="0003")
    ap.add_argument("--analyze", action="store_true", help="run ANALYZE on SQLite before measuring")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--no-plans", action="store_true")
    ap.add_argument("--no-http", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ac-bench-events-"))
    try:
        if not args.no_sqlite:
            path = args.sqlite_path.resolve() if args.sqlite_path else work / "events.db"
            console.rule(f"SQLite {sqlite3.sqlite_version}")
            run(f"sqlite:///{path}", work / "data-sqlite", args, f"SQLite {sqlite3.sqlite_version}",
                args.sqlite_path)
        if args.database_url:
            name = "ac_bench_" + uuid.uuid4().hex[:10]
            admin = sa.create_engine(args.database_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.exec_driver_sql(f"CREATE DATABASE {name}")
                version = c.exec_driver_sql("SHOW server_version").scalar()
            url = args.database_url.rsplit("/", 1)[0] + "/" + name
            console.rule(f"PostgreSQL {version}")
            try:
                run(url, work / "data-pg", args, f"PostgreSQL {version}", None)
            finally:
                with admin.connect() as c:
                    c.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
                admin.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
