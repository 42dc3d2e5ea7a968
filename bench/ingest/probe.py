"""What the limited probe child costs an upload: wall seconds and the child's CPU seconds per ``safe_probe`` call.

Every accepted clip is probed (and its thumbnail made) in a new Python process with memory and CPU limits
(``alarmcloud.safeprobe``); on small camera clips starting that process is most of an upload's CPU. Clips: camera-like
H.264 (``alarmcloud.testing.make_clip``: a moving box over a textured scene) of the sizes cameras send.

    .venv/bin/python bench/ingest/probe.py              # 3 clips x 20 probes each, about a minute
    .venv/bin/python bench/ingest/probe.py --repeat 40
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

from alarmcloud.safeprobe import safe_probe
from alarmcloud.testing import make_clip

CLIPS = {"640x360, 18 s (sub-stream)": (640, 360, 18.0), "1280x720, 18 s": (1280, 720, 18.0),
         "1920x1080, 18 s (main stream)": (1920, 1080, 18.0)}


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=20, help="probes per clip (default 20)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print("| clip | size | wall s per probe (median) | child CPU-s per probe (mean) |")
        print("|---|---|---|---|")
        for name, (w, h, seconds) in CLIPS.items():
            clip = make_clip(Path(tmp) / f"{w}.mp4", seconds=seconds, width=w, height=h, fps=15)
            thumb = Path(tmp) / "thumb.jpg"
            safe_probe(clip, thumbnail=thumb)  # warm the file cache
            walls: list[float] = []
            cpu0 = _child_cpu()
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                safe_probe(clip, thumbnail=thumb)
                walls.append(time.perf_counter() - t0)
            cpu = (_child_cpu() - cpu0) / args.repeat
            print(f"| {name} | {clip.stat().st_size / 1e6:.1f} MB | {statistics.median(walls):.3f} | {cpu:.3f} |")


if __name__ == "__main__":
    main()
