"""CPU cost of the plates detector per clip, one setting against another.

Usage (from the repository root):
    OMP_NUM_THREADS=1 nice .venv/bin/python plugins/detect_plates/eval/cost.py CLIP [CLIP ...] \\
        [--set faint=false] [--repeat 3]

Every clip is decoded once (keyframes, as the pipeline gives them to the detector); then ``analyze`` runs with the
default configuration and with the configuration changed by ``--set`` (``key=value`` of ``PlatesConfig``), both on
the same onnxruntime sessions, and the best of ``--repeat`` runs of each is printed as ``time.process_time``
seconds (this process's CPU, robust to other load), with the plates read. Decode is not counted. The plate-free
18 s 1080p clips that ``evaluate.py --cache DIR`` renders (``DIR/clips/*1920x1080-18s.mp4``) and the camera-like
clips of ``bench/pipeline/run.py --clip-dir DIR`` are the clips the plugin README quotes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from alarmcloud.contracts import ClipFrames
from alarmcloud_detect_plates.detector import PlateDetector, PlatesConfig
from clips import changed_config, decode


def best_cpu(det: PlateDetector, frames: ClipFrames, repeat: int) -> tuple[float, list[str]]:
    """The least CPU seconds of ``repeat`` runs of ``analyze`` on ``frames`` and the texts it read."""
    best, texts = float("inf"), []
    for _ in range(repeat):
        start = time.process_time()
        findings = det.analyze(frames)
        best = min(best, time.process_time() - start)
        texts = [f.text or "" for f in findings]
    return best, texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="+", type=Path)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a changed PlatesConfig field")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    base = PlateDetector(PlatesConfig())
    config = changed_config(args.set)
    same = config.text_detectors() == base.config.text_detectors()
    other = PlateDetector(config, engine=base.engine if same else None)
    print(f"{'clip':48s} {'default':>8s} {' '.join(args.set) or 'same':>14s} {'diff':>7s}  read (default)")
    for clip in args.clips:
        frames = decode(base, clip)
        a, texts = best_cpu(base, frames, args.repeat)
        b, _ = best_cpu(other, frames, args.repeat)
        print(f"{clip.name[:48]:48s} {a:8.3f} {b:14.3f} {b - a:+7.3f}  {texts}", flush=True)


if __name__ == "__main__":
    main()
