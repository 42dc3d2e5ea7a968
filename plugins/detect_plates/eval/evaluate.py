"""Evaluate the plates detector on real labelled car photos turned into camera-like clips.

Usage (from the repository root):
    .venv/bin/python plugins/detect_plates/eval/evaluate.py [--data ../shared/data/plates] [--stride 1]
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from alarmcloud import video
from alarmcloud.testing import make_clip, moving_box_scene, static_scene
from alarmcloud_detect_plates.detector import PlateDetector, PlatesConfig
from alarmcloud_detect_plates.formats import plate_distance
from PIL import Image

Scene = Callable[[int, float, int, int], np.ndarray]


def default_data() -> Path:
    """``$ALARMCLOUD_SHARED/data/plates`` or ``../shared/data/plates`` next to the repository."""
    shared = os.environ.get("ALARMCLOUD_SHARED")
    base = Path(shared) if shared else Path(__file__).resolve().parents[3] / ".." / "shared"
    return (base / "data" / "plates").resolve()


def photo_scene(img: Image.Image, motion: str, seconds: float, box: tuple[float, ...] | None = None) -> Scene:
    """A camera view of a photo (cover-scaled, plate kept in view): still, slow zoom, or a slow pan."""
    cache: dict[tuple[int, int], np.ndarray] = {}
    px, py, pw, ph = box or (img.width / 2, img.height / 2, 0, 0)

    def scene(i: int, t: float, w: int, h: int) -> np.ndarray:
        s = max(w / img.width, h / img.height) * 1.05
        if (w, h) not in cache:
            size = (round(img.width * s), round(img.height * s))
            cache[(w, h)] = np.asarray(img.resize(size, Image.BILINEAR))
        big = cache[(w, h)]
        bh, bw = big.shape[:2]
        f = t / max(seconds, 1e-6)
        z = 1.0 + 0.08 * f if motion == "zoom" else 1.0
        cw, ch = round(w / z), round(h / z)
        # centre the view on the plate as far as the photo allows (the camera looks at the driveway)
        cx = (px + pw / 2) * s + (0.3 * (f - 0.5) * (bw - cw) if motion == "pan" else 0.0)
        x0 = int(np.clip(cx - cw / 2, 0, bw - cw))
        y0 = int(np.clip((py + ph / 2) * s - ch / 2, 0, bh - ch))
        crop = big[y0 : y0 + ch, x0 : x0 + cw]
        if (cw, ch) != (w, h):
            crop = np.asarray(Image.fromarray(crop).resize((w, h), Image.BILINEAR))
        return np.ascontiguousarray(crop)

    return scene


def negative_crop(img: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    """The largest band of the photo above or below the plate (no plate in it)."""
    x, y, w, h = box
    top = img.crop((0, 0, img.width, max(1, int(y) - 2)))
    bottom = img.crop((0, min(img.height - 1, int(y + h) + 2), img.width, img.height))
    return top if top.height >= bottom.height else bottom


def run_clip(det: PlateDetector, path: Path, countries: list[str] | None = None) -> tuple[list, float]:
    """Probe, decode once and analyse; returns findings and the detector's CPU seconds."""
    probe = video.probe(path)
    frames = video.decode(path, [det.frame_request()], probe)[0]
    if countries:
        frames.options = {"countries": countries}
    t0 = time.process_time()
    findings = det.analyze(frames)
    return findings, time.process_time() - t0


def main() -> None:
    """Run the evaluation and print the results table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--stride", type=int, default=1, help="use every n-th photo")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--negatives", type=int, default=60)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument(
        "--camera-countries",
        action="store_true",
        help="configure each clip's camera with its region's country (us -> US, br -> BR), as an owner would",
    )
    args = ap.parse_args()

    with open(args.data / "labels.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:: args.stride]
    det = PlateDetector(PlatesConfig())
    motions = ("still", "zoom", "pan")
    stats: dict[str, list[float]] = {"exact": [], "chars": [], "cpu": [], "miss": [], "wrong": []}
    per_region: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n, row in enumerate(rows):
            img = Image.open(args.data / row["file"]).convert("RGB")
            box = tuple(float(row[k]) for k in "xywh")
            motion = motions[n % len(motions)]
            clip = make_clip(
                Path(tmp) / "c.mp4",
                seconds=args.seconds,
                width=args.width,
                height=args.height,
                fps=15,
                gop_seconds=1.0,
                scene=photo_scene(img, motion, args.seconds, box),
            )
            region = row["region"].upper()
            findings, cpu = run_clip(det, clip, [region] if args.camera_countries else None)
            truth = row["plate"]
            texts = [f.text for f in findings]
            best = min(texts, key=lambda t: plate_distance(t, truth)) if texts else ""
            exact = truth in texts
            chars = max(0.0, 1 - plate_distance(best, truth) / len(truth)) if best else 0.0
            stats["exact"].append(exact)
            stats["chars"].append(chars)
            stats["cpu"].append(cpu)
            stats["miss"].append(not texts)
            stats["wrong"].append(bool(texts) and not exact)
            per_region.setdefault(row["region"], []).append(exact)
            if args.verbose or not exact:
                print(
                    f"{row['file']:<50} {motion:<5} truth={truth:<9} "
                    f"got={[(f.text, f.score) for f in findings]} cpu={cpu:.2f}s",
                    flush=True,
                )
        negs: list[tuple[str, Scene]] = [
            ("procedural-moving", moving_box_scene),
            ("procedural-static", static_scene),
        ]
        for row in rows[:: max(1, len(rows) // max(1, args.negatives - 2))][: args.negatives - 2]:
            img = Image.open(args.data / row["file"]).convert("RGB")
            crop = negative_crop(img, tuple(float(row[k]) for k in "xywh"))
            negs.append((f"crop:{row['file']}", photo_scene(crop, "zoom", args.seconds)))
        false_reads = []
        for name, scene in negs:
            clip = make_clip(
                Path(tmp) / "n.mp4",
                seconds=args.seconds,
                width=args.width,
                height=args.height,
                fps=15,
                gop_seconds=1.0,
                scene=scene,
            )
            findings, _ = run_clip(det, clip)
            if findings:
                false_reads.append((name, [f.text for f in findings]))
                print(f"FALSE READ {name}: {[(f.text, f.score) for f in findings]}", flush=True)
        # an 18 s 1080p clip (the product's alarm clip), slow zoom on the first photo
        img = Image.open(args.data / rows[0]["file"]).convert("RGB")
        clip = make_clip(
            Path(tmp) / "l.mp4",
            seconds=18,
            width=1920,
            height=1080,
            fps=15,
            gop_seconds=2.0,
            scene=photo_scene(img, "zoom", 18, tuple(float(rows[0][k]) for k in "xywh")),
        )
        cpu18 = min(run_clip(det, clip)[1] for _ in range(2))

    n = len(rows)
    print()
    print("| metric | value |\n|---|---|")
    print(f"| photos (clips) | {n} ({args.width}x{args.height}, {args.seconds:g} s, 15 fps, still/zoom/pan) |")
    for region, vals in sorted(per_region.items()):
        print(f"| exact reads {region} | {100 * np.mean(vals):.1f} % ({sum(vals)}/{len(vals)}) |")
    print(f"| exact reads all | {100 * np.mean(stats['exact']):.1f} % |")
    print(f"| character accuracy | {100 * np.mean(stats['chars']):.1f} % |")
    print(f"| misses (no read) | {int(sum(stats['miss']))} |")
    print(f"| wrong reads | {int(sum(stats['wrong']))} |")
    print(
        f"| plate-free clips with no read | {100 * (1 - len(false_reads) / len(negs)):.1f} % "
        f"({len(negs) - len(false_reads)}/{len(negs)}) |"
    )
    print(f"| detector CPU-s per clip (median) | {np.median(stats['cpu']):.3f} |")
    print(f"| detector CPU-s per 18 s 1080p clip | {cpu18:.3f} |")


if __name__ == "__main__":
    main()
