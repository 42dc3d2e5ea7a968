"""Ingest benchmark: concurrent HTTP uploads over loopback to a real ``alarmcloud serve`` subprocess.

Reports uploads/s, MB/s and the server's peak RSS (VmHWM) per body size; ``--quick`` for a short run.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from alarmcloud.testing import make_clip

EMAIL, PASSWORD = "bench@example.com", "benchmark password 1"


def _noise(i: int, t: float, w: int, h: int) -> np.ndarray:
    """Incompressible frames, so a short clip reaches a large size (a high-bitrate camera)."""
    return np.random.default_rng(i).integers(0, 255, (h, w, 3), dtype=np.uint8)


def clip_of_size(path: Path, target_mb: float) -> Path:
    """A valid 1280x720 H.264 clip of about ``target_mb`` MB (noise frames at ~1 MB each)."""
    probe = make_clip(path.with_suffix(".probe.mp4"), seconds=1, width=1280, height=720, fps=5, scene=_noise)
    per_frame = probe.stat().st_size / 5
    probe.unlink()
    frames = max(5, round(target_mb * 1e6 / per_frame))
    for _ in range(3):  # the per-frame size depends on the frame rate: correct the estimate until within 5 %
        fps = 25 if frames >= 50 else 5
        clip = make_clip(path, seconds=frames / fps, width=1280, height=720, fps=fps, scene=_noise)
        ratio = target_mb * 1e6 / clip.stat().st_size
        if abs(ratio - 1) < 0.05:
            break
        frames = max(5, round(frames * ratio))
    return clip


def vm(pid: int, key: str) -> int:
    """A /proc/<pid>/status memory field in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(256 * 1024):
            yield chunk


def reset_peak(pid: int) -> None:
    """Reset the server's VmHWM so each case reports its own peak (Linux: ``clear_refs`` 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def run_case(url: str, auth: str, clip: Path, n: int, concurrency: int, pid: int) -> dict[str, float]:
    size = clip.stat().st_size
    reset_peak(pid)
    headers = {"Authorization": f"Basic {auth}", "Content-Type": "video/mp4", "Content-Length": str(size)}

    def one(_: int) -> int:
        with httpx.Client(timeout=300) as c:
            r = c.post(url + "/api/v1/ingest/clips", content=file_chunks(clip), headers=headers)
            if r.status_code != 201:
                print(f"  {r.status_code}: {r.text[:160]}", flush=True)
            return r.status_code

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        codes = list(pool.map(one, range(n)))
    dt = time.perf_counter() - t0
    return {"size_mb": size / 1e6, "n": n, "ok": codes.count(201), "codes": sorted(set(codes)), "seconds": dt,
            "uploads_s": n / dt, "mb_s": n * size / 1e6 / dt, "hwm_mb": vm(pid, "VmHWM") / 1024,
            "rss_mb": vm(pid, "VmRSS") / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--small-n", type=int, default=200)
    ap.add_argument("--small-c", type=int, default=16)
    ap.add_argument("--big-n", type=int, default=8)
    ap.add_argument("--big-c", type=int, default=4)
    ap.add_argument("--big-mb", type=float, default=190.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ac-bench-"))
    port = free_port()
    exe = Path(sys.executable).with_name("alarmcloud")
    proc = subprocess.Popen([str(exe), "serve", "--data-dir", str(work / "data"), "--host", "127.0.0.1", "--port",
                             str(port), "--ftp-port", "0", "--workers", "0", "--log-level", "WARNING"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        print("making clips ...", flush=True)
        small = clip_of_size(work / "A_small.mp4", 5)
        big = clip_of_size(work / "A_big.mp4", args.big_mb)
        for _ in range(300):
            try:
                if httpx.get(url + "/-/health", timeout=2).status_code < 500:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        c = httpx.Client(base_url=url, timeout=60)
        c.post("/api/v1/auth/register", json={"email": EMAIL, "password": PASSWORD})
        csrf = c.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}).json()["csrf_token"]
        h = {"X-CSRF-Token": csrf}
        cam = c.post("/api/v1/cameras", headers=h, json={"name": "bench", "brand": "instar",
                                                          "model": "IN-9408 2K+ WQHD"}).json()
        if "id" not in cam:
            cam = c.post("/api/v1/cameras", headers=h, json={"name": "bench", "brand": "instar",
                                                              "model": "IN-9008 Full HD"}).json()
        creds = c.post(f"/api/v1/cameras/{cam['id']}/upload-credentials", headers=h).json()
        auth = base64.b64encode(f"{creds['username']}:{creds['password']}".encode()).decode()
        base_rss = vm(proc.pid, "VmRSS") / 1024
        print(f"server idle RSS {base_rss:.0f} MB", flush=True)
        rows = [("5 MB", run_case(url, auth, small, args.small_n, args.small_c, proc.pid)),
                (f"{args.big_mb:.0f} MB", run_case(url, auth, big, args.big_n, args.big_c, proc.pid))]
        print("| body | uploads | concurrency | accepted | uploads/s | MB/s | server peak RSS (VmHWM) |")
        print("|---|---|---|---|---|---|---|")
        for (label, r), conc in zip(rows, (args.small_c, args.big_c), strict=True):
            print(f"| {label} ({r['size_mb']:.1f} MB) | {r['n']} | {conc} | {r['ok']} {r['codes']} | "
                  f"{r['uploads_s']:.1f} | {r['mb_s']:.0f} | {r['hwm_mb']:.0f} MB |")
        print(f"idle RSS before uploads: {base_rss:.0f} MB")
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
