"""CPU cost of opening a clip, with and without FFmpeg's stream-info decode (``alarmcloud.clipprobe.open_input``).

Also checks that probe, decode and thumbnail give identical results both ways.

    .venv/bin/python bench/pipeline/open_cost.py --clip-dir /tmp/acb      # clips of bench/pipeline/run.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from alarmcloud import clipprobe, video
from alarmcloud.contracts import FrameRequest
from alarmcloud.testing import make_clip

REQUESTS = [
    FrameRequest(keyframes=True, width=640),
    FrameRequest(keyframes=False, window_at=(0.25, 0.55, 0.8), window_length=6, width=640, color="gray"),
]


def plain_open(path: str | Path) -> av.container.InputContainer:
    return av.open(str(path), metadata_errors="ignore")


def open_cpu(opener, path: Path, repeat: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        with opener(path) as c:
            c.streams.video[0].codec_context.width  # noqa: B018 - what probe reads first
        best = min(best, time.process_time() - t)
    return best


def results(opener, path: Path):  # type: ignore[no-untyped-def]
    video.open_input = clipprobe.open_input = opener  # decode opens through video's name, probe through its own
    try:
        p = video.probe(path)
        frames = video.decode(path, REQUESTS, p)
        images = [f.image for c in frames for f in c.keyframes] + [
            f.image for c in frames for w in c.windows for f in w
        ]
        return p, images, video.thumbnail_jpeg(path)
    finally:
        video.open_input = clipprobe.open_input = fast_open


fast_open = clipprobe.open_input


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip-dir", type=Path, default=None, help="also measure the *.mp4 clips in this folder")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="open-cost-"))
    clips = [
        make_clip(tmp / f"test_{codec}.{fmt}", seconds=4, width=1920, height=1080, fps=15, codec=codec,
                  container_format=fmt, pix_fmt=pix)
        for codec, fmt, pix in (("libx264", "mp4", "yuv420p"), ("libx265", "mp4", "yuv420p"),
                                ("mpeg4", "avi", "yuv420p"), ("mjpeg", "avi", "yuvj420p"))
    ]
    if args.clip_dir:
        clips += sorted(args.clip_dir.glob("*.mp4"))
    print("| clip | open, ms CPU (stream-info decode) | open, ms CPU (open_input) | same probe, frames, thumbnail |")
    print("|---|---|---|---|")
    for path in clips:
        (pa, ia, ta), (pb, ib, tb) = results(plain_open, path), results(fast_open, path)
        same = pa == pb and ta == tb and len(ia) == len(ib)
        same = same and all(np.array_equal(a, b) for a, b in zip(ia, ib, strict=True))
        slow, fast = open_cpu(plain_open, path, args.repeat), open_cpu(fast_open, path, args.repeat)
        print(f"| {path.name} | {slow * 1000:.1f} | {fast * 1000:.1f} | {'yes' if same else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
