"""Build feature sets from synthetic clips: render, encode, decode through the core pipeline, extract features.

Rendering dominates the cost, so the decoded grey windows can be kept in a cache folder (``--frames``): a
feature change then needs no new rendering, and the same seed always gives the same clips.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from alarmcloud.contracts import FrameRequest
from alarmcloud.video import _target_size, decode
from alarmcloud_detect_rain.detector import RainDetector
from alarmcloud_detect_rain.features import WIDTH, WINDOW_LENGTH, window_features
from synth import ClipSpec, random_spec, render_clip

CLASSES = ("clear", "rain", "snow")
#: the seeds of the evaluation sets, never a training seed: 2 held-out, 3 stress, 5 drawn scenes (and, in the stress
#: domain, the set of recalibration_eval.py's measurements)
EVAL_SEEDS = (2, 3, 5)
#: why train.py and train_cnn.py refuse them
EVAL_SEEDS_ERROR = "seeds 2, 3 and 5 are evaluation sets (held-out, stress, drawn scenes / recalibration)"
#: the picture shape the renderer draws unless ``specs_for(aspect=...)`` says otherwise (16:9)
ASPECT = (16, 9)
#: the sensor a 640 x 360 sub-stream is scaled down from (``specs_for(substream=True)``)
SUBSTREAM_SENSOR = (1920, 1080)
#: how far cameras mounted on a wall or under the eaves look down (degrees; ``specs_for(tilt=1)``)
TILT_RANGE = (15.0, 45.0)
#: the half-diagonal fields of view of wide-angle to fisheye lenses (degrees; ``specs_for(lens=True)``): 100-140
#: degrees across the diagonal
LENS_RANGE = (50.0, 70.0)


def clip_request(spec: ClipSpec, as_sent: bool = False) -> FrameRequest:
    """The detector's own request, with windows placed at this short clip's keyframes; ``as_sent``: every decoded
    frame, without the core's check for pictures sent more than once (``distinct``)."""
    base = RainDetector.default_request()
    # half a GOP before each keyframe: a window starts at the first keyframe after its position
    at = tuple(max(0.0, (i - 0.5) / spec.windows) for i in range(spec.windows))
    return replace(base, window_at=at, distinct=base.distinct and not as_sent)


def clip_windows(spec: ClipSpec, as_sent: bool = False) -> np.ndarray:
    """The decoded grey windows (windows x frames x H x W, uint8) the detector would see for one clip (``as_sent``:
    see ``clip_request``)."""
    with tempfile.TemporaryDirectory(prefix="rain-train-") as tmp:
        path = render_clip(spec, Path(tmp) / "clip.mp4")
        (cf,) = decode(path, [clip_request(spec, as_sent)])
    if len(cf.windows) != spec.windows or any(len(w) < WINDOW_LENGTH for w in cf.windows):
        raise ValueError(f"clip {spec.seed}: expected {spec.windows} windows of {WINDOW_LENGTH} frames")
    return np.stack([np.stack([f.image for f in w[:WINDOW_LENGTH]]) for w in cf.windows])


def analysis_height(spec: ClipSpec) -> int:
    """The height of the detector's pictures of this clip: what the core serves ``WIDTH`` px wide."""
    return _target_size(*spec.size, WIDTH, None)[1]


def with_aspect(spec: ClipSpec, aspect: tuple[int, int]) -> ClipSpec:
    """``spec`` with its picture reshaped to ``aspect`` (width : height) at the same width, the bitrate cap scaled
    with the area (the same bits per pixel); every other drawn parameter stays. A sub-stream's sensor is reshaped
    alike."""
    target = _target_size(*aspect, WIDTH, None)[1]

    def shaped(size: tuple[int, int]) -> tuple[int, int]:
        # the even height nearest the aspect at which the core's scaling gives every width the same analysis
        # height (a frame cache holds pictures of one shape; 1280 x 1706 would be served 640 x 852, not 854)
        w = size[0]
        h = max(2, round(w * aspect[1] / aspect[0] / 2) * 2)
        return w, min(range(h - 8, h + 10, 2), key=lambda v: (_target_size(w, v, WIDTH, None)[1] != target,
                                                               abs(v - h)))

    size = shaped(spec.size)
    bitrate = round(spec.bitrate * size[1] / spec.size[1]) if spec.bitrate else 0
    return replace(spec, size=size, bitrate=bitrate, sensor=shaped(spec.sensor) if spec.sensor != (0, 0) else (0, 0))


def features_of(windows: np.ndarray) -> np.ndarray:
    """Feature rows (windows x F) of one clip's decoded windows."""
    return np.stack([window_features(list(w)) for w in windows])


def _picked(spec: ClipSpec, stream: int, share: float) -> bool:
    """Whether the clip is among ``share`` of a set, drawn from its own seed and ``stream`` (the same clips every
    time, every other draw of every clip as it was)."""
    return bool(share) and np.random.default_rng([spec.seed, stream]).random() < share


def _per_clip(spec: ClipSpec, stream: int, bounds: tuple[float, float]) -> float:
    """A value in ``bounds`` (to 0.1) drawn from the clip's own seed and ``stream``, so that adding it to a set
    leaves every other draw of every clip as it was."""
    return round(float(np.random.default_rng([spec.seed, stream]).uniform(*bounds)), 1)


def specs_for(
    seed: int, n: int, photos: list[Path], windows: int, domain: str = "train", drawn: float = 0.0,
    substream: bool = False, aspect: tuple[int, int] = ASPECT, tilt: float = 0.0, lens: bool = False,
    av1: float = 0.0, cbr: float = 0.0,
) -> list[ClipSpec]:
    """The ``n`` clip specs drawn from ``seed`` (the same seed always gives the same specs).

    ``drawn``: the share of clips whose background is a drawn garden / drive / street view (``scenes.py``). Which
    clips is decided from each clip's own seed, so every other part of every clip stays as without it.
    ``substream``: the 640 x 360 clips become a camera's sub-stream of a 1920 x 1080 sensor (rendered at that size,
    scaled down in the camera before encoding); every other clip and every drawn parameter stays the same.
    ``aspect``: the pictures' shape (width : height, e.g. 4:3 cameras and their 640 x 480 sub-streams), see
    ``with_aspect``; the default is the renderer's 16:9.
    ``tilt``: the share of cameras that look down by 15-45 degrees (1: every camera; which clips and how far, both
    drawn from each clip's own seed), so the rain and snow of such a clip converge on the vanishing point of the
    vertical below the picture; everything else stays.
    ``lens``: every camera has a wide-angle to fisheye lens (``synth.FisheyeWarp``, 100-140 degrees across the
    diagonal, drawn from each clip's own seed); everything else stays.
    ``av1``: the share of clips sent as AV1 (``ClipSpec.codec``: re-encoded as footage downloaded from a video site
    is; 1: every clip; which clips drawn from each clip's own seed); the pictures stay the same.
    ``cbr``: the share of the camera-coded (H.264) clips coded with a camera encoder's rate control
    (``synth.RATE_CONTROL["cbr"]``: one quantiser per frame whatever it shows; which clips drawn from each clip's own
    seed); the pictures stay the same."""
    rng = np.random.default_rng(seed)
    specs = [random_spec(rng, seed * 1_000_003 + i, photos, windows, domain) for i in range(n)]
    specs = [replace(s, scene="drawn") if _picked(s, 7, drawn) else s for s in specs]
    specs = [replace(s, sensor=SUBSTREAM_SENSOR) if substream and s.size == (640, 360) else s for s in specs]
    specs = [replace(s, tilt=_per_clip(s, 11, TILT_RANGE)) if _picked(s, 17, tilt) else s for s in specs]
    if lens:
        specs = [replace(s, lens=_per_clip(s, 13, LENS_RANGE)) for s in specs]
    specs = [replace(s, codec="av1") if _picked(s, 19, av1) else s for s in specs]
    specs = [replace(s, rate_control="cbr") if not s.codec and _picked(s, 23, cbr) else s for s in specs]
    return specs if aspect == ASPECT else [with_aspect(s, aspect) for s in specs]


def add_share_options(ap: argparse.ArgumentParser) -> None:
    """train.py's and train_cnn.py's ``--drawn-scenes``, ``--tilt`` and ``--av1``: shares of the training set drawn
    otherwise (``specs_for``); ``shares`` reads them back."""
    ap.add_argument("--drawn-scenes", type=float, default=0.0, metavar="SHARE",
                    help="share of training clips on drawn garden / drive / street views (scenes.py); 0: none")
    ap.add_argument("--tilt", type=float, default=0.0, metavar="SHARE",
                    help=f"share of training cameras that look down by {TILT_RANGE[0]:g}-{TILT_RANGE[1]:g} degrees "
                    "(rain and snow converge on the vanishing point below the picture); 0: none")
    ap.add_argument("--av1", type=float, default=0.0, metavar="SHARE",
                    help="share of training clips sent as AV1, re-encoded as a video site does (SVT-AV1, its loop "
                    "filters smooth faint streaks); 0: none")
    ap.add_argument("--cbr", type=float, default=0.0, metavar="SHARE",
                    help="share of training clips coded with a camera encoder's rate control (one quantiser per "
                    "frame whatever it shows: busy rainy frames coarser); 0: none")


def shares(args: argparse.Namespace) -> dict[str, float]:
    """The ``add_share_options`` values as ``specs_for`` / ``build`` keywords."""
    return {"drawn": args.drawn_scenes, "tilt": args.tilt, "av1": args.av1, "cbr": args.cbr}


def shares_note(args: argparse.Namespace) -> str:
    """What a model's ``trained_on`` metadata records of them (the tilt and AV1 shares, where given)."""
    return ((f" tilt={args.tilt:g}" if args.tilt else "") + (f" av1={args.av1:g}" if args.av1 else "")
            + (f" cbr={args.cbr:g}" if args.cbr else ""))


def _map(fn, items: list, workers: int) -> list:  # type: ignore[no-untyped-def]
    workers = max(1, min(workers, os.cpu_count() or 1))
    if workers == 1:
        return [fn(s) for s in items]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(fn, items, chunksize=4))


def _height(specs: list[ClipSpec]) -> int:
    """The one analysis height of a cached set (a cache holds pictures of one shape)."""
    heights = {analysis_height(s) for s in specs}
    if len(heights) != 1:
        raise ValueError(f"a frame cache holds pictures of one shape, these clips give heights {sorted(heights)}")
    return heights.pop()


def render_frames(specs: list[ClipSpec], folder: Path, workers: int = 2, as_sent: bool = False) -> np.memmap:
    """Render every spec and keep the decoded windows in ``folder/frames.u8`` (resumable, a memmap)."""
    folder.mkdir(parents=True, exist_ok=True)
    w = specs[0].windows
    shape = (len(specs), w, WINDOW_LENGTH, _height(specs), WIDTH)
    path = folder / "frames.u8"
    done_file = folder / "done.json"
    done = json.loads(done_file.read_text())["done"] if done_file.exists() else 0
    size = int(np.prod(shape))
    if path.exists() and path.stat().st_size < size:
        with open(path, "r+b") as fh:  # more clips of the same seed: the first ones stay valid
            fh.truncate(size)
    mm = np.memmap(path, dtype=np.uint8, mode="r+" if path.exists() else "w+", shape=shape)
    (folder / "specs.json").write_text(json.dumps([asdict(s) for s in specs]))
    step = 40
    for start in range(done, len(specs), step):
        chunk = specs[start : start + step]
        for i, arr in enumerate(_map(functools.partial(clip_windows, as_sent=as_sent), chunk, workers)):
            mm[start + i] = arr
        mm.flush()
        done_file.write_text(json.dumps({"done": start + len(chunk), "as_sent": as_sent}))
    return mm


def load_frames(folder: Path) -> tuple[np.memmap, list[ClipSpec]]:
    """The cached windows and their specs."""
    specs = [ClipSpec(**{**d, "distractors": tuple(d["distractors"]), "size": tuple(d["size"]),
                         "sensor": tuple(d.get("sensor", (0, 0)))})
             for d in json.loads((folder / "specs.json").read_text())]
    shape = (len(specs), specs[0].windows, WINDOW_LENGTH, _height(specs), WIDTH)
    return np.memmap(folder / "frames.u8", dtype=np.uint8, mode="r", shape=shape), specs


def _features_chunk(args: tuple[str, int, int, tuple[int, ...]]) -> np.ndarray:
    path, start, stop, shape = args
    mm = np.memmap(path, dtype=np.uint8, mode="r", shape=shape)
    return np.stack([features_of(mm[i]) for i in range(start, stop)])


def cached_features(folder: Path, workers: int = 2) -> tuple[np.ndarray, list[ClipSpec]]:
    """Features (clips x windows x F) of a frame cache, computed in parallel."""
    mm, specs = load_frames(folder)
    step = 50
    jobs = [(str(folder / "frames.u8"), s, min(s + step, len(specs)), mm.shape) for s in range(0, len(specs), step)]
    return np.concatenate(_map(_features_chunk, jobs, workers)), specs


def _clip_features(spec: ClipSpec, as_sent: bool = False) -> tuple[np.ndarray, ClipSpec]:
    return features_of(clip_windows(spec, as_sent)), spec


def build(
    seed: int,
    n: int,
    photos: list[Path],
    windows: int = 2,
    workers: int = 2,
    frames: Path | None = None,
    domain: str = "train",
    as_sent: bool = False,
    drawn: float = 0.0,
    substream: bool = False,
    aspect: tuple[int, int] = ASPECT,
    tilt: float = 0.0,
    lens: bool = False,
    av1: float = 0.0,
    cbr: float = 0.0,
) -> list[tuple[np.ndarray, ClipSpec]]:
    """Features of ``n`` clips drawn from ``seed``; with ``frames`` the decoded windows are cached there.

    ``as_sent`` decodes every frame as the clip holds it instead of asking the core for distinct pictures, as
    train.py does: the renderer never sends a picture twice, so there that check can only take a frame away from a
    window it mistakes for a repeat (3.6 % of the seed-1 training windows). Evaluation keeps the detector's request.
    ``drawn``, ``substream``, ``aspect``, ``tilt``, ``lens``, ``av1``, ``cbr``: see ``specs_for``.
    """
    specs = specs_for(seed, n, photos, windows, domain, drawn, substream, aspect, tilt, lens, av1, cbr)
    if frames is None:
        return _map(functools.partial(_clip_features, as_sent=as_sent), specs, workers)
    cached = cache(specs, frames, workers, as_sent)
    return list(zip(cached_features(frames, workers)[0], cached, strict=True))


def cache(specs: list[ClipSpec], frames: Path, workers: int = 2, as_sent: bool = False) -> list[ClipSpec]:
    """Make sure ``frames`` holds the decoded windows of ``specs`` (rendering what is missing, see ``build``) and
    return its specs; a folder that holds other clips, or windows decoded the other way, is refused."""
    done_file = frames / "done.json"
    state = json.loads(done_file.read_text()) if done_file.exists() else None
    # a cache that does not say how it was decoded holds the detector's windows
    if state is not None and bool(state.get("as_sent", False)) != as_sent:
        kinds = {True: "frames as sent", False: "the detector windows"}
        raise ValueError(f"{frames} holds {kinds[not as_sent]}, not {kinds[as_sent]}: use another folder")
    if state is None or state["done"] < len(specs):
        render_frames(specs, frames, workers, as_sent)
    cached = load_frames(frames)[1]
    if [asdict(s) for s in cached] != [asdict(s) for s in specs]:
        raise ValueError(f"{frames} holds another set of clips (seed / count / renderer changed)")
    return cached
