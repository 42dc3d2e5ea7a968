"""Evaluate the plates detector on real labelled car photos turned into camera-like clips.

Usage (from the repository root):
    nice .venv/bin/python plugins/detect_plates/eval/evaluate.py [--data ../shared/data/plates] [--stride 1]

Every clip is analysed twice: with the default configuration (all countries) and with the camera set to the
photo's region, as an owner would: a country code (``us`` -> US, ``br`` -> BR, ``de`` -> DE) or a group of the
detector (``eu`` -> every European format); a region the detector does not know falls back to all countries.
Photos are split by a hash of the file name into a development part (two thirds; looked at while building the
detector) and a held-out part (one third; only measured), and both are reported. ``--grey`` makes every clip
monochrome, as a camera in night mode records. Three labels that differ from what their photo shows are
corrected (``clips.LABEL_ERRATA``); ``--labels-as-given`` compares with ``labels.csv`` as it is.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from alarmcloud.testing import moving_box_scene, static_scene
from alarmcloud_detect_plates.detector import PlateDetector
from clips import (
    LABEL_ERRATA,
    MODES,
    MOTIONS,
    CachedEngine,
    Scene,
    analyse,
    box_of,
    camera_clip,
    changed_config,
    char_accuracy,
    decode,
    default_data,
    load_rows,
    outcome,
    photo_scene,
    split_of,
)
from PIL import Image


def negative_crop(img: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    """The largest band of the photo above or below the plate (no plate in it)."""
    x, y, w, h = box
    top = img.crop((0, 0, img.width, max(1, int(y) - 2)))
    bottom = img.crop((0, min(img.height - 1, int(y + h) + 2), img.width, img.height))
    return top if top.height >= bottom.height else bottom


def grey_scene(scene: Scene) -> Scene:
    """``scene`` without its colour (ITU-R 601 luma in all three channels, as PIL's "L")."""

    def grey(i: int, t: float, w: int, h: int) -> np.ndarray:
        rgb = scene(i, t, w, h).astype(np.float32)
        luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.repeat(np.clip(luma + 0.5, 0, 255).astype(np.uint8)[..., None], 3, axis=2)

    return grey


def main() -> None:
    """Run the evaluation and print the results tables."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--stride", type=int, default=1, help="use every n-th photo")
    ap.add_argument("--split", choices=("all", "dev", "holdout"), default="all")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--negatives", type=int, default=60)
    ap.add_argument(
        "--long-negatives", type=int, default=3, help="costliest plate-free views re-rendered as 18 s 1080p clips"
    )
    ap.add_argument(
        "--grey", action="store_true", help="monochrome clips, as a camera in night mode records (plate-free too)"
    )
    ap.add_argument(
        "--labels-as-given",
        action="store_true",
        help="compare with labels.csv as it is, without the corrections of clips.LABEL_ERRATA (three labels that "
        "differ from what their photo shows)",
    )
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a changed PlatesConfig field")
    ap.add_argument(
        "--cache",
        type=Path,
        help="folder keeping the rendered clips and the models' outputs: a re-run after a change to fitting or "
        "voting gives the results of an uncached run in a fraction of the time (its CPU-s are no measurement)",
    )
    args = ap.parse_args()
    cache = args.cache

    def cached(name: str, w: int, h: int, seconds: float) -> Path | None:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name) + ("-grey" if args.grey else "")
        return cache / "clips" / f"{safe}-{w}x{h}-{seconds:g}s.mp4" if cache else None

    def photo(file: str) -> Image.Image:
        """A labelled photo, monochrome with ``--grey``."""
        return Image.open(args.data / file).convert("L" if args.grey else "RGB").convert("RGB")

    rows = load_rows(args.data, args.stride, errata=not args.labels_as_given)
    corrected = [f"{r['file']} {LABEL_ERRATA[r['file']][0]} -> {r['plate']}" for r in rows
                 if r["file"] in LABEL_ERRATA and r["plate"] == LABEL_ERRATA[r["file"]][1]]
    rows = [r for r in rows if args.split in ("all", split_of(r["file"]))]
    config = changed_config(args.set)
    det = PlateDetector(config, engine=CachedEngine.of(cache / "ocr", config) if cache else None)
    motions = MOTIONS
    # results[mode][(split, region)] -> outcomes; chars[mode] -> character accuracy per clip
    results: dict[str, dict[tuple[str, str], list[str]]] = {m: {} for m in MODES}
    chars: dict[str, list[float]] = {m: [] for m in MODES}
    cpu: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, row in enumerate(rows):
            img = photo(row["file"])
            box = box_of(row)
            motion = motions[n % len(motions)]
            clip = camera_clip(
                Path(tmp) / "c.mp4",
                photo_scene(img, motion, args.seconds, box),
                args.seconds,
                args.width,
                args.height,
                cache=cached(f"{row['file']}-{motion}", args.width, args.height, args.seconds),
            )
            frames = decode(det, clip)
            truth, key = row["plate"], (split_of(row["file"]), row["region"])
            line = []
            for mode, countries in zip(MODES, (None, [row["region"].upper()]), strict=True):
                findings, used = analyse(det, frames, countries)
                cpu.append(used)
                texts = [f.text or "" for f in findings]
                got = outcome(truth, texts)
                results[mode].setdefault(key, []).append(got)
                chars[mode].append(char_accuracy(truth, texts))
                line.append(f"{got}={[(f.text, round(f.score, 2)) for f in findings]}")
            if args.verbose or any(not x.startswith("exact") for x in line):
                print(f"{row['file']:<46} {key[0]:<7} {motion:<5} truth={truth:<9} " + " | ".join(line), flush=True)
        negs: list[tuple[str, Scene]] = [
            ("procedural-moving", moving_box_scene),
            ("procedural-static", static_scene),
        ]
        for row in rows[:: max(1, len(rows) // max(1, args.negatives - 2))][: args.negatives - 2]:
            img = photo(row["file"])
            crop = negative_crop(img, box_of(row))
            negs.append((f"crop:{row['file']}", photo_scene(crop, "zoom", args.seconds)))
        false_reads = []
        neg_cpu: list[tuple[float, str, Scene]] = []
        for name, scene in negs:
            if args.grey and name.startswith("procedural"):
                scene = grey_scene(scene)
            clip = camera_clip(
                Path(tmp) / "n.mp4",
                scene,
                args.seconds,
                args.width,
                args.height,
                cache=cached(name, args.width, args.height, args.seconds),
            )
            findings, used = analyse(det, decode(det, clip), None)
            neg_cpu.append((used, name, scene))
            if findings:
                false_reads.append((name, [f.text for f in findings]))
                print(f"READ IN PLATE-FREE CLIP {name}: {[(f.text, f.score) for f in findings]}", flush=True)
        # an 18 s 1080p clip (the product's alarm clip), slow zoom on the first photo
        img = photo(rows[0]["file"])
        clip = camera_clip(
            Path(tmp) / "l.mp4",
            photo_scene(img, "zoom", 18, box_of(rows[0])),
            18,
            1920,
            1080,
            gop=2.0,
            cache=cached(f"{rows[0]['file']}-zoom", 1920, 1080, 18),
        )
        long_frames = decode(det, clip)
        cpu18 = min(analyse(det, long_frames, None)[1] for _ in range(2))
        # worst case: the plate-free views that cost the most above (no plate, so the zoom pass runs), 18 s 1080p
        cpu18_free: list[float] = []
        for _, name, scene in sorted(neg_cpu, key=lambda x: -x[0])[: args.long_negatives]:
            clip = camera_clip(Path(tmp) / "ln.mp4", scene, 18, 1920, 1080, gop=2.0, cache=cached(name, 1920, 1080, 18))
            lf = decode(det, clip)
            cpu18_free.append(min(analyse(det, lf, None)[1] for _ in range(2)))
            print(f"plate-free 18 s 1080p {name}: {cpu18_free[-1]:.3f} CPU-s", flush=True)

    print()
    grey = ", monochrome" if args.grey else ""
    print(f"photos: {len(rows)} ({args.width}x{args.height}{grey}, {args.seconds:g} s, 15 fps, still/zoom/pan)")
    if corrected:
        print(f"labels corrected (clips.LABEL_ERRATA; see --labels-as-given): {', '.join(corrected)}")
    print()
    print(f"| exact plate reads | {' | '.join(MODES)} |")
    print("|---|" + "---|" * len(MODES))
    groups = sorted({k for m in MODES for k in results[m]})
    for label, keys in [
        *[(f"{s} {r}", [(s, r)]) for s, r in groups],
        *[(f"{s} (us+br)", [k for k in groups if k[0] == s]) for s in ("dev", "holdout")],
        ("all", groups),
    ]:
        cells = []
        for m in MODES:
            got = [o for k in keys for o in results[m].get(k, [])]
            if got:
                ok = got.count("exact")
                cells.append(f"{100 * ok / len(got):.1f} % ({ok}/{len(got)})")
        if cells:
            print(f"| {label} | {' | '.join(cells)} |")
    print()
    print(f"| outcome (all photos) | {' | '.join(MODES)} |")
    print("|---|" + "---|" * len(MODES))
    counts = {m: Counter(o for v in results[m].values() for o in v) for m in MODES}
    for kind in ("exact", "miss", "characters", "length", "other text"):
        print(f"| {kind} | {' | '.join(str(counts[m][kind]) for m in MODES)} |")
    print(f"| character accuracy | {' | '.join(f'{100 * np.mean(chars[m]):.1f} %' for m in MODES)} |")
    print()
    print(
        f"plate-free clips with no read: {100 * (1 - len(false_reads) / len(negs)):.1f} % "
        f"({len(negs) - len(false_reads)}/{len(negs)})"
    )
    if isinstance(det.engine, CachedEngine):
        print(f"model calls from the cache: {det.engine.hits}, run: {det.engine.misses} (CPU-s below count only these)")
    print(f"detector CPU-s per 4 s 720p clip (median): {np.median(cpu):.3f}")
    print(f"detector CPU-s per 18 s 1080p clip ({len(long_frames.keyframes)} keyframes): {cpu18:.3f}")
    if cpu18_free:
        print(
            f"detector CPU-s per 18 s 1080p plate-free clip (the {len(cpu18_free)} costliest views): "
            f"max {max(cpu18_free):.3f}, median {np.median(cpu18_free):.3f}"
        )


if __name__ == "__main__":
    main()
