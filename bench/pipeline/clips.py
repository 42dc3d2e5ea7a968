"""Camera-like benchmark clips: a real photo as the scene, a walking mover, optional rain, sensor noise.

H.264 Main, no B-frames, one slice per frame, fixed 2 s GOP, libx264 ``veryfast`` at CRF 23 (a 1080p camera stream
of a few Mbit/s). With ``codec="h265"``: x265 ``veryfast``, no B-frames, the same GOP, CRF 28 (x265's quality equal
to x264's 23) and 60 % of the bit-rate cap, as cameras of the 2K+/4K class send by default.
Rain streaks come from the rain plugin's training renderer (``plugins/detect_rain/train/synth.py``).
Clips are cached by name in the clip folder, so repeated runs measure the same files.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = (ROOT / ".." / "shared" / "data" / "plates").resolve()
sys.path.insert(0, str(ROOT / "plugins" / "detect_rain" / "train"))
from synth import ClipSpec, rain_alpha  # noqa: E402

SIZES = {"1080p": (1920, 1080), "720p": (1280, 720)}
#: what each clip shows, cycled over the clip index: mover, mover in rain, rain alone
KINDS = ("mover", "mover+rain", "rain")
RAIN_POOL = 16
#: camera bit-rate caps (VBV, kbit/s) by frame height
MAXRATE = {1080: 4000, 720: 2000}
CODECS = ("h264", "h265")


@dataclass(frozen=True)
class ClipPlan:
    name: str
    size: tuple[int, int]
    kind: str
    photo: Path
    seed: int
    seconds: float = 18.0
    fps: int = 15
    gop_seconds: float = 2.0
    codec: str = "h264"


def photos() -> list[Path]:
    files = sorted(PHOTOS.glob("*/*.jpg"))
    if not files:
        raise SystemExit(f"no photos under {PHOTOS} (the bench uses ../shared/data/plates as scenes)")
    return files


def plan(n: int, resolution: str, codec: str = "h264") -> list[ClipPlan]:
    """``n`` clips of one resolution, each with another photo and the kinds cycled (H.265 clips show the same)."""
    files = photos()
    suffix = "" if codec == "h264" else f"_{codec}"
    return [ClipPlan(f"{resolution}_{i:02d}_{KINDS[i % len(KINDS)].replace('+', '_')}{suffix}.mp4", SIZES[resolution],
                     KINDS[i % len(KINDS)], files[(i * 37 + 11) % len(files)], seed=1000 + i, codec=codec)
            for i in range(n)]


def _background(photo: Path, w: int, h: int) -> np.ndarray:
    """The photo centre-cropped to the clip's aspect ratio and scaled to the clip size (RGB float32)."""
    im = Image.open(photo).convert("RGB")
    ch = min(im.height, round(im.width * h / w))
    cw = round(ch * w / h)
    x, y = (im.width - cw) // 2, (im.height - ch) // 2
    return np.asarray(im.crop((x, y, x + cw, y + ch)).resize((w, h), Image.BILINEAR), dtype=np.float32)


def _frames(p: ClipPlan):  # noqa: ANN202 - a generator of RGB uint8 frames
    rng = np.random.default_rng(p.seed)
    w, h = p.size
    bg = _background(p.photo, w, h)
    # a person-sized textured mover walking across the lower half (about 1.5 m/s at 10 m)
    mw, mh = w // 14, h // 3
    tex = (rng.random((mh // 8 + 1, mw // 8 + 1)) * 60 + 40).astype(np.float32)
    tex = np.repeat(np.repeat(tex, 8, 0), 8, 1)[:mh, :mw, None] * np.array([0.6, 0.7, 1.0], np.float32)
    spec = ClipSpec(seed=p.seed, kind="rain", intensity="medium", size=(w, h), fps=p.fps)
    spec.extra["speed"] = 1.0
    angle = math.pi / 2 + 0.15
    # rain is independent from frame to frame: draw each frame's streaks from a pool, shifted at random
    # (rendering 270 fresh 1080p streak maps would take minutes per clip)
    pool = [rain_alpha(rng, h, w, spec, angle) for _ in range(RAIN_POOL)] if "rain" in p.kind else []
    n = round(p.seconds * p.fps)
    noise = [rng.standard_normal((h, w), dtype=np.float32)[..., None] * 2.0 for _ in range(4)]
    for i in range(n):
        img = bg.copy()
        if "mover" in p.kind:
            x = int((i / n) * (w + mw)) - mw
            y = h // 2 + int(6 * math.sin(i * 0.8))
            x0, x1 = max(0, x), min(w, x + mw)
            if x1 > x0:
                img[y : y + mh, x0:x1] = tex[:, x0 - x : x1 - x]
        if pool:
            a = np.roll(pool[int(rng.integers(len(pool)))], (int(rng.integers(h)), int(rng.integers(w))), (0, 1))
            img -= (img - 200.0) * a[..., None]
        # sensor noise, also drawn from a small pool with a random shift
        img += np.roll(noise[i % len(noise)], (int(rng.integers(h)), int(rng.integers(w))), (0, 1))
        yield np.clip(img, 0, 255, out=img).astype(np.uint8)


def render(p: ClipPlan, path: Path) -> Path:
    """Encode the planned clip like a camera does."""
    w, h = p.size
    tmp = path.with_suffix(".part")
    with av.open(str(tmp), mode="w", format="mp4") as out:
        gop = round(p.gop_seconds * p.fps)
        rate = MAXRATE.get(h, 4000)
        if p.codec == "h265":
            vs = out.add_stream("libx265", rate=p.fps)
            rate = rate * 6 // 10
            vs.codec_context.options = {"preset": "veryfast", "x265-params": (
                f"bframes=0:keyint={gop}:min-keyint={gop}:scenecut=0:crf=28:vbv-maxrate={rate}:vbv-bufsize={rate}"
                ":log-level=error")}
        else:
            vs = out.add_stream("libx264", rate=p.fps)
            vs.codec_context.gop_size = gop
            vs.codec_context.options = {"preset": "veryfast", "profile": "main", "tune": "zerolatency", "bf": "0",
                                        "crf": "23", "sc_threshold": "0", "keyint_min": str(gop), "x264-params":
                                        f"sliced-threads=0:slices=1:vbv-maxrate={rate}:vbv-bufsize={rate}"}
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        for i, arr in enumerate(_frames(p)):
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, p.fps)
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
    tmp.replace(path)
    return path


def ensure(folder: Path, n: int, resolutions: list[str], codec: str = "h264") -> dict[str, list[Path]]:
    """The clips of every resolution, rendered once into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[Path]] = {}
    for res in resolutions:
        out[res] = []
        for p in plan(n, res, codec):
            path = folder / p.name
            if not path.exists():
                print(f"  rendering {p.name} ({p.photo.name}) ...", flush=True)
                render(p, path)
            out[res].append(path)
    return out
