"""Pipeline benchmark: CPU-seconds per clip of the decode-once pipeline versus a naive one, and worker scaling.

1. Decode once: ``alarmcloud.pipeline.analyze_file`` (what a worker runs) per clip and detector set, measured as
   process CPU time (``time.process_time``: every thread of this process, robust to other load on the machine).
2. Naive, in the same run with the same detector objects: decode every frame, convert each to full-size RGB,
   give every detector (and the motion analysis) every frame in the size and colour it asks for.
3. Throughput: real ``alarmcloud worker --processes N`` against a SQLite database with queued jobs; clips/s
   with 1 and 2 processes, load average next to each number.

``--clips 3 --rounds 1`` for a quick check; clips are rendered once and cached in ``--clip-dir``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import clips as cliplib  # noqa: E402
from alarmcloud import motion  # noqa: E402
from alarmcloud.contracts import ClipFrames, ClipProbe, Detector, Frame, FrameRequest  # noqa: E402
from alarmcloud.pipeline import analyze_file  # noqa: E402
from alarmcloud.plugins import PluginHost  # noqa: E402
from alarmcloud.video import probe  # noqa: E402

DETECTORS = ("rain", "insects", "plates")
#: frames the naive pipeline hands to the detectors at once (2 GOPs: memory stays bounded at 1080p)
NAIVE_CHUNK = 30


def cpu(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.process_time()
    out = fn()
    return time.process_time() - t, out


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


# ---------------------------------------------------------------- decode once (the real pipeline)


def decode_once(host: PluginHost, path: Path, clip: ClipProbe, sets: dict[str, list[str]], repeat: int
                ) -> dict[str, tuple[float, float, str]]:
    """Per detector set: CPU-seconds (best of ``repeat``), the main thread's share of them, and the verdict."""
    out = {}
    for label, names in sets.items():
        best, share, verdict = float("inf"), 0.0, ""
        for _ in range(repeat):
            t0 = time.thread_time()
            dt, res = cpu(lambda names=names: analyze_file(host, path, names, None, clip))
            if dt < best:
                best, share = dt, (time.thread_time() - t0) / max(dt, 1e-9)
            labels = ",".join(sorted({f.label for f in res.findings}))
            verdict = f"{res.verdict} [{labels}]" if labels else res.verdict
        out[label] = (best, share, verdict)
    return out


# ---------------------------------------------------------------- naive


def _as_requested(rgb: np.ndarray, req: FrameRequest) -> np.ndarray:
    """The full-size RGB frame in the size and colour a detector asked for (what the naive path must do)."""
    h, w = rgb.shape[:2]
    tw, th = req.width, req.height
    if tw and not th:
        th = max(2, round(h * tw / w / 2) * 2)
    elif th and not tw:
        tw = max(2, round(w * th / h / 2) * 2)
    img = rgb if not tw or (tw, th) == (w, h) else cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if req.color == "gray" else img


def _naive_frames(req: FrameRequest, chunk: list[Frame], clip: ClipProbe) -> ClipFrames:
    """Every frame of the chunk: all as keyframes if the detector takes keyframes, and as back-to-back windows."""
    frames = [Frame(f.time, _as_requested(f.image, req), f.keyframe) for f in chunk]
    cf = ClipFrames(probe=clip)
    if req.keyframes:
        cf.keyframes = frames
    if req.window_at and req.window_length:
        n = req.window_length
        cf.windows = [frames[i : i + n] for i in range(0, len(frames) - n + 1, n)]
    return cf


def _decode_all(path: Path) -> Iterator[list[Frame]]:
    with av.open(str(path)) as container:
        vs = container.streams.video[0]
        tb = vs.time_base
        chunk: list[Frame] = []
        for frame in container.decode(vs):
            chunk.append(Frame(float(frame.pts * tb), frame.to_ndarray(format="rgb24"), frame.key_frame))
            if len(chunk) == NAIVE_CHUNK:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def naive(dets: dict[str, Detector], path: Path, clip: ClipProbe) -> dict[str, float]:
    """CPU-seconds of each stage of the naive pipeline on one clip: decode+RGB, motion, each detector."""
    spent = {"decode": 0.0, "motion": 0.0, **{n: 0.0 for n in dets}}
    stages: list[tuple[str, FrameRequest, Callable[[ClipFrames], Any]]] = [
        ("motion", motion.REQUEST, motion.mover_score),
        *[(n, d.frame_request(), d.analyze) for n, d in dets.items()],
    ]
    frames = _decode_all(path)
    while True:
        dt, chunk = cpu(lambda: next(frames, None))
        spent["decode"] += dt
        if chunk is None:
            return spent
        for name, req, fn in stages:
            spent[name] += cpu(lambda req=req, fn=fn, chunk=chunk: fn(_naive_frames(req, chunk, clip)))[0]


# ---------------------------------------------------------------- worker throughput


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _children_cpu(pid: int) -> float:
    """CPU-seconds (user+system) of a process and its direct children, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def _cpu_times() -> tuple[float, float]:
    """(idle, total) jiffies of the whole machine from /proc/stat."""
    vals = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return vals[3] + vals[4], sum(vals[:8])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the worker processes first, then their parent (SIGTERM to the parent alone leaves them running)."""
    kids = [k for k in _children(proc.pid) if "multiprocessing.spawn" in _cmdline(k)]
    for k in kids:
        os.kill(k, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while any(Path(f"/proc/{k}").exists() and _cmdline(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


class Queue:
    """A data directory with a SQLite database, one camera with every bundled detector on, and clip blobs."""

    def __init__(self, root: Path, clip_files: list[Path]) -> None:
        from alarmcloud import db
        from alarmcloud.app import AlarmCloud
        from alarmcloud.config import Settings
        from alarmcloud.models import Account, Camera

        self.root = root
        st = Settings(data_dir=root)
        db.migrate(st.db_url)
        self.app = AlarmCloud(st)
        with self.app.db.session() as s:
            acc = Account(email="bench@example.com", password_hash="x")
            s.add(acc)
            s.flush()
            cam = Camera(account_id=acc.id, name="bench", brand="instar", model="IN-9008 Full HD",
                         detectors={n: True for n in DETECTORS})
            s.add(cam)
            s.commit()
            self.account_id, self.camera_id = acc.id, cam.id
        self.blobs: list[tuple[str, ClipProbe]] = []
        for i, f in enumerate(clip_files):
            key = f"bench/{i}.mp4"
            self.app.blobs.put_bytes(key, f.read_bytes())
            self.blobs.append((key, probe(f)))

    def enqueue(self, n: int) -> list[str]:
        from alarmcloud import jobs
        from alarmcloud.models import Clip, Series, utcnow

        ids = []
        with self.app.db.session() as s:
            for i in range(n):
                key, p = self.blobs[i % len(self.blobs)]
                now = utcnow()
                series = Series(account_id=self.account_id, camera_id=self.camera_id, started_at=now, ended_at=now,
                                clip_count=1)
                s.add(series)
                s.flush()
                clip = Clip(account_id=self.account_id, camera_id=self.camera_id, series_id=series.id, blob_key=key,
                            size_bytes=p.size_bytes, duration=p.duration, width=p.width, height=p.height, fps=p.fps,
                            codec=p.video_codec or "h264")
                s.add(clip)
                s.flush()
                jobs.enqueue(s, clip)
                ids.append(clip.id)
            s.commit()
        return ids

    def state(self, ids: list[str]) -> tuple[int, int, set[str]]:
        """(done, dead, workers that finished one) among the jobs of ``ids``."""
        from alarmcloud.models import Job
        from sqlmodel import select

        with self.app.db.session() as s:
            rows = s.exec(select(Job.state, Job.worker).where(Job.clip_id.in_(ids))).all()  # type: ignore[attr-defined]
        done = [w for st, w in rows if st == "done"]
        return len(done), sum(st == "dead" for st, _ in rows), {w for w in done if w}

    def wait(self, ids: list[str], timeout: float) -> tuple[int, set[str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done, dead, workers = self.state(ids)
            if done + dead == len(ids):
                if dead:
                    raise SystemExit(f"{dead} benchmark jobs failed (see the worker log in {self.root})")
                return done, workers
            time.sleep(0.05)
        raise SystemExit(f"jobs not done after {timeout:.0f} s")


def throughput(queue: Queue, processes: int, n_jobs: int) -> dict[str, Any]:
    """Start ``alarmcloud worker --processes N``, warm every process up, then time a batch of ``n_jobs``."""
    env = {**os.environ, "ALARMCLOUD_WORKERS__POLL_SECONDS": "0.05"}
    exe = Path(sys.executable).with_name("alarmcloud")
    log = open(queue.root / f"worker-{processes}.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(exe), "worker", "--data-dir", str(queue.root), "--processes", str(processes)],
                            env=env, stdout=log, stderr=log)
    try:
        # warm-up: every process loads its models and runs a clip before the clock starts
        warm: set[str] = set()
        for _ in range(10):
            warm |= queue.wait(queue.enqueue(processes), 600)[1]
            if len(warm) >= processes:
                break
        load_before = load()
        cpu0, t0, (idle0, all0) = _children_cpu(proc.pid), time.perf_counter(), _cpu_times()
        ids = queue.enqueue(n_jobs)
        _, workers = queue.wait(ids, 3600)
        wall = time.perf_counter() - t0
        cpu_s = _children_cpu(proc.pid) - cpu0
        idle1, all1 = _cpu_times()
    finally:
        _stop(proc)
        log.close()
    return {"processes": processes, "jobs": n_jobs, "wall": wall, "clips_s": n_jobs / wall,
            "cpu_per_clip": cpu_s / n_jobs, "workers_used": len(workers),
            "idle": (idle1 - idle0) / max(all1 - all0, 1.0),
            "load_before": load_before, "load_after": load()}


# ---------------------------------------------------------------- report


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f}" if xs else "–"


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, PyAV {av.__version__}, "
            f"numpy {np.__version__}, opencv {cv2.__version__}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=6, help="clips per resolution (kinds cycle: mover, mover+rain, rain)")
    ap.add_argument("--resolutions", default="1080p,720p")
    ap.add_argument("--codec", choices=cliplib.CODECS, default="h264",
                    help="encode the clips as H.264 (most cameras) or H.265 (2K+/4K cameras)")
    ap.add_argument("--repeat", type=int, default=2, help="decode-once runs per clip and set (best is kept)")
    ap.add_argument("--naive-clips", type=int, default=3,
                    help="clips per resolution also run through the naive pipeline (slow: ~40 CPU-s per 1080p clip)")
    ap.add_argument("--jobs", type=int, default=12, help="jobs per throughput batch (1080p clips)")
    ap.add_argument("--rounds", type=int, default=2, help="throughput rounds, alternating 1 and 2 processes")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--skip-workers", action="store_true")
    ap.add_argument("--clip-dir", type=Path, default=Path(tempfile.gettempdir()) / "alarmcloud-bench-clips")
    args = ap.parse_args()
    resolutions = [r.strip() for r in args.resolutions.split(",") if r.strip()]

    print(f"machine: {machine()}; load {load()}", flush=True)
    print(f"clips in {args.clip_dir} ...", flush=True)
    files = cliplib.ensure(args.clip_dir, args.clips, resolutions, args.codec)

    host = PluginHost({"cameras": [], "integrations": [], "detectors": list(DETECTORS)}).load()
    dets: dict[str, Detector] = {}
    for n in DETECTORS:
        d = host.detector(n)
        if d is None:
            raise SystemExit(f"detector {n!r} is not installed")
        dets[n] = d
    sets = {"motion only": [], **{n: [n] for n in DETECTORS}, "all": list(DETECTORS)}
    first = next(iter(files.values()))[0]
    analyze_file(host, first, list(DETECTORS))  # warm-up: onnxruntime's first run allocates

    for res, paths in files.items():
        once: dict[str, list[float]] = {k: [] for k in sets}
        slow: dict[str, list[float]] = {k: [] for k in sets}
        main_share: list[float] = []
        print(f"\n## {res} ({len(paths)} clips; load {load()})\n", flush=True)
        head = " | ".join(f"{k} CPU-s" for k in sets)
        print(f"| clip | Mbit/s, GOP | {head} | verdict (all) | naive all CPU-s |")
        print("|---|---|" + "---|" * len(sets) + "---|---|")
        for i, path in enumerate(paths):
            clip = probe(path)
            got = decode_once(host, path, clip, sets, args.repeat)
            for k, (dt, _, _) in got.items():
                once[k].append(dt)
            main_share.append(got["all"][1])
            cells = " | ".join(f"{got[k][0]:.2f}" for k in sets)
            naive_all = "–"
            if not args.skip_naive and i < args.naive_clips:
                st = naive(dets, path, clip)
                base = st["decode"] + st["motion"]
                slow["motion only"].append(base)
                for n in DETECTORS:
                    slow[n].append(base + st[n])
                slow["all"].append(base + sum(st[n] for n in DETECTORS))
                naive_all = f"{slow['all'][-1]:.1f} (decode+RGB {st['decode']:.1f})"
            rate = clip.size_bytes * 8 / 1e6 / max(clip.duration, 0.001)
            gop = clip.keyframe_interval or 0
            print(f"| {path.name} | {rate:.1f}, {gop:g} s | {cells} | {got['all'][2]} | {naive_all} |", flush=True)
        print(f"\n**{res} summary** (median CPU-seconds per clip; load {load()})\n")
        print("| detectors | decode once | naive | naive / decode once |")
        print("|---|---|---|---|")
        for k in sets:
            ratio = (f"{statistics.median(slow[k]) / statistics.median(once[k]):.0f}×"
                     if slow[k] and once[k] else "–")
            print(f"| {k} | {med(once[k])} | {med(slow[k])} | {ratio} |", flush=True)
        print(f"\nshare of the decode-once CPU time spent on the calling thread (all detectors): median "
              f"{statistics.median(main_share):.0%} (a worker process keeps about one core busy)")

    if args.skip_workers:
        return
    work = Path(tempfile.mkdtemp(prefix="ac-bench-pipeline-"))
    try:
        tp_res = "1080p" if "1080p" in files else next(iter(files))
        queue = Queue(work / "data", files[tp_res])
        rows = []
        for r in range(args.rounds):
            for n in (1, 2) if r % 2 == 0 else (2, 1):
                print(f"throughput: {n} process(es), {args.jobs} jobs ...", flush=True)
                rows.append(throughput(queue, n, args.jobs))
        print(f"\n## Throughput ({args.jobs} {tp_res} jobs per batch, rain+plates, `alarmcloud worker`, SQLite)\n")
        print("| processes | clips/s | wall s | worker CPU-s per clip | processes that took jobs "
              "| machine CPU idle | load avg 1/5/15 before → after |")
        print("|---|---|---|---|---|---|---|")
        for row in rows:
            print(f"| {row['processes']} | {row['clips_s']:.2f} | {row['wall']:.1f} | {row['cpu_per_clip']:.2f} | "
                  f"{row['workers_used']} | {row['idle']:.0%} | {row['load_before']} → {row['load_after']} |")
        rate = {n: statistics.median([r["clips_s"] for r in rows if r["processes"] == n]) for n in (1, 2)}
        print(f"\nmedian clips/s: 1 process {rate[1]:.2f}, 2 processes {rate[2]:.2f}: "
              f"{rate[2] / rate[1]:.2f}× (machine has {os.cpu_count()} CPUs; load now {load()})")
    except BaseException:
        print(f"kept {work} for the worker logs", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
