"""How a rain model copes with camera artefacts the training renderer never draws.

Real cameras do things to their pictures that ``synth.py`` does not render. This script renders the first
``--clips`` clips of a held-out set (seed 2 by default, the evaluation photos) once as ``evaluate.py`` does and once
per artefact, scores every version with the detector, and prints what each artefact does to recall, false positives
and the scores:

- ``osd``: the date/time line and the camera name burnt into the picture (white text with a dark outline, the
  seconds ticking at the clip's frame rate), as every IP camera does by default;
- ``repeat``: every frame sent twice (a camera that keeps its stream's frame rate while its sensor delivers half,
  e.g. a longer exposure at night): rain lasts two frames instead of one;
- ``sharpen``: in-camera edge enhancement (unsharp mask), which most camera pictures get before encoding;
- ``all``: the three together;
- ``convert``: footage converted to a higher standard frame rate by repeating the nearest picture, as converters and
  NVRs do (10-20 fps to 25, 25 to 30, 30 to 50 fps): pictures are repeated irregularly (20 -> 25 fps: every fourth
  picture twice);
- ``blend``: the same conversion by blending the two nearest pictures (a drop fades over two frames).
- ``hevc``: the clip encoded as H.265 instead of H.264, as cameras of the 2K+/4K class send by default: x265 with a
  camera's settings (no B-frames, the same GOP), at the quality x265 calls equal to the render's x264 setting
  (CRF + 5) or, for the bitrate-capped renders, with 60 % of the bits (what such cameras save by switching codec).
  Scored as the detector scores it: moved by the model's score shift for the codec (``--no-shift``: without it).
- ``bframes`` / ``hevc-bframes``: encoded as desktop encoders and video sites do, with up to 3 B-frames in a row
  (x264 ``medium`` without the low-latency tuning, or x265 as for ``hevc``); cameras send no B-frames.
- ``vp9`` / ``av1``: the clip encoded as VP9 (libvpx) or AV1 (SVT-AV1) as a video site serves footage, with hidden
  reference frames and pictures coded out of order, the same GOP, at CRF + 14 on the encoder's 0-63 scale or the
  same capped bitrate (footage downloaded from a video site is one of these two).
- ``pan``: a PTZ camera turning while it records (to a preset, on patrol) or a hand-held camera: the picture pans
  by 1-12 px per frame at 640 px wide, a third of the clips with some tilt, back and forth across the scene (three
  quarters of it in view, scaled up to the clip's size with a bicubic filter, so the steps are not whole pixels);
  ``zoom`` is the same view held still, the baseline ``pan`` is to be read against.
- ``interlace``: an interlaced camera's (or an analogue camera's recorder's) pictures: each frame woven from two
  fields taken half a frame apart, the even lines from the first and the odd lines from the second (rendered at
  twice the frame rate, so each field's streaks are as long as its exposure; the other distractors then move twice
  as fast), coded as interlaced H.264 (two fields, top first), so the decoder flags the frames interlaced; a rain
  streak of one field shows on every other line only. ``interlace-weave``: the same woven frames coded as
  progressive H.264, as an editor's re-encode sends them (not flagged).
- ``shutter``: daylight rain through a short exposure (5-30 % of the frame time, as a camera's auto exposure sets
  it outdoors by day): each drop falls a shorter way while the shutter is open, so its streak is shorter and, the
  drop covering each pixel for a larger share of the exposure, more opaque (night clips, exposed for the whole frame
  time, are unchanged; so are clear clips).
- ``splash``: rain hitting the ground below a horizon (35-70 % down the picture): small bright crowns, one frame
  each (a third fading over a second), larger towards the bottom of the picture, 0.2-1 splashes per streak (clear
  and snow clips unchanged).
- ``ircut``: a day camera switching to night vision inside the first window, as at dusk (and a common cause of
  alarms): the infra-red cut filter leaves the light path and the IR lamp comes on, so from one frame to the next
  the picture turns grey, foliage bright (it reflects infra-red), the lamp's cone lit, noisier, and the auto
  exposure overshoots and settles over a few frames; the later windows are in the night look (night clips
  unchanged).
- ``rotated``: the pictures stored turned a quarter clockwise with a display matrix that turns them back, as a
  phone stores video filmed upright (and cameras mounted on their side): players show them upright.
- ``pillarbox`` / ``letterbox``: black bars burnt into the picture, as exports and edited footage carry them: the
  middle 4:3 of the scene between bars left and right (an eighth of the width each), or the scene squeezed between
  bars above and below (an eighth of the height each, as a wide picture shown in a taller frame).
- ``pulse``: a hardware encoder's rate control as many cameras have it: each keyframe coded much finer than the
  frames after it (x264 ``ipratio=3``), every frame at one quantiser whatever its content (``qcomp=0``, no adaptive
  quantisation, no macroblock tree), so the picture sharpens at every keyframe and coarsens after it (the windows
  start at keyframes). ``cbr``: the same without the keyframes' extra quality (x264's own ratio, 1.4: 3
  quantiser steps, about what camera encoders use between keyframes and the frames after them).
- ``wet``: a car driving past on a wet road at night (rain or after it): its headlights and, below them, their
  reflection on the wet surface, a column that shimmers from frame to frame as the water's surface moves.
- ``web``: strands of spider silk in front of the lens at night, lit by the IR lamp right beside them (a classic
  cause of night alarms): 1-4 bright, out-of-focus curved threads hanging from the picture's edge, their free ends
  swaying 2-12 px per frame in the wind (day clips unchanged).

Scored as the detector is configured: the MLP fused with the spike-map CNN at the CNN's threshold, or with
``--cnn-weight 0`` the MLP alone at its own (the tables of the rain README before the CNN shipped).

Usage (from the repository root):
    OMP_NUM_THREADS=1 PYTHONPATH=plugins/detect_rain/src nice .venv/bin/python plugins/detect_rain/train/artefacts.py \
        --clips 120 --save /tmp/rain-artefacts.npz
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from alarmcloud.video import decode  # noqa: E402
from alarmcloud_detect_rain.detector import RainConfig, RainDetector, fuse  # noqa: E402
from dataset import clip_request, specs_for  # noqa: E402
from evaluate import _auc, _rate  # noqa: E402
from synth import (  # noqa: E402
    DOMAINS,
    NIGHT_GREY,
    RATE_CONTROL,
    SITE_CODECS,
    ClipSpec,
    encode,
    lamp_map,
    photo_list,
    preset_of,
    render_frames,
    silk_glow,
    site_encode,
)

ARTEFACTS = ("plain", "osd", "repeat", "sharpen", "all", "convert", "blend", "hevc", "bframes", "hevc-bframes",
             "vp9", "av1", "zoom", "pan", "interlace", "interlace-weave", "shutter", "splash", "ircut",
             "web", "rotated", "pillarbox", "letterbox", "pulse",
             "cbr", "wet")
#: the part of the scene a panning camera's picture shows (``pan_frames``)
PAN_VIEW = 0.75


def burn_osd(frames: list[np.ndarray], fps: int, seed: int) -> list[np.ndarray]:
    """The camera's date/time line (top left) and name (bottom right), redrawn every frame like a camera does."""
    rng = np.random.default_rng(seed + 17)
    h, w = frames[0].shape[:2]
    font = ImageFont.load_default(size=max(10, h // 22))
    start = int(rng.integers(0, 86_400))
    name = str(rng.choice(["Garage", "Front door", "IN-9408 2K+", "Carport", "Garden"]))
    stroke = max(1, h // 240)
    out = []
    for i, f in enumerate(frames):
        t = start + i // fps
        img = Image.fromarray(f)
        draw = ImageDraw.Draw(img)
        stamp = f"2026-11-23 {t // 3600 % 24:02d}:{t // 60 % 60:02d}:{t % 60:02d}"
        draw.text((w // 40, h // 30), stamp, font=font, fill=(255, 255, 255), stroke_width=stroke,
                  stroke_fill=(0, 0, 0))
        draw.text((w - w // 40, h - h // 30), name, font=font, fill=(255, 255, 255), stroke_width=stroke,
                  stroke_fill=(0, 0, 0), anchor="rs")
        out.append(np.asarray(img))
    return out


def converted_rate(fps: int) -> int:
    """The standard frame rate footage of ``fps`` is converted to (a rate it does not divide, where there is one)."""
    return 25 if fps < 25 else 30 if fps == 25 else 50


def convert_rate(frames: list[np.ndarray], fps: int, blend: bool) -> list[np.ndarray]:
    """``frames`` at ``converted_rate(fps)``: each output frame is the nearest picture, or with ``blend`` the two
    pictures around its time mixed by their distance (ffmpeg's ``fps`` and ``framerate`` filters)."""
    out_fps = converted_rate(fps)
    n = (len(frames) - 1) * out_fps // fps + 1
    out = []
    for j in range(n):
        pos = j * fps / out_fps
        i = int(pos)
        frac = pos - i
        if not blend or frac < 1e-6 or i + 1 >= len(frames):
            out.append(frames[min(len(frames) - 1, round(pos))])
        else:
            mix = (1 - frac) * frames[i].astype(np.float32) + frac * frames[i + 1].astype(np.float32)
            out.append(np.clip(mix + 0.5, 0, 255).astype(np.uint8))
    return out


def _bounce(pos: float, span: float) -> float:
    """``pos`` folded back and forth into 0..``span`` (a camera that pans to one side, then back)."""
    pos %= 2 * span
    return pos if pos <= span else 2 * span - pos


def pan_frames(frames: list[np.ndarray], seed: int, speed: float | None = None) -> list[np.ndarray]:
    """``frames`` as a camera that pans (and sometimes tilts) while recording sends them: each frame shows
    ``PAN_VIEW`` of the scene, moved by ``speed`` px per frame at 640 px wide (drawn from 1-12 per clip when None, 0
    for the still ``zoom`` view), scaled up to the frame's size."""
    rng = np.random.default_rng(seed + 31)
    h, w = frames[0].shape[:2]
    scale = w / 640.0
    v = float(rng.uniform(1.0, 12.0)) if speed is None else speed
    v *= scale * (1 if rng.random() < 0.5 else -1)
    vy = v * float(rng.uniform(0.1, 0.5)) if rng.random() < 1 / 3 else 0.0
    cw, ch = w * PAN_VIEW, h * PAN_VIEW
    x0, y0 = float(rng.uniform(0, w - cw)), float(rng.uniform(0, h - ch))
    out = []
    for t, f in enumerate(frames):
        x, y = _bounce(x0 + v * t, w - cw), _bounce(y0 + vy * t, h - ch)
        out.append(np.asarray(Image.fromarray(f).transform((w, h), Image.Transform.EXTENT, (x, y, x + cw, y + ch),
                                                           Image.Resampling.BICUBIC)))
    return out


def interlaced_frames(spec: ClipSpec) -> list[np.ndarray]:
    """The clip's frames woven from fields: ``spec`` rendered at twice its frame rate (and twice its frames), the
    even lines of each frame from one field and the odd lines from the next."""
    fields = render_frames(dataclasses.replace(spec, fps=2 * spec.fps, window_length=2 * spec.window_length))
    out = []
    for top, bottom in zip(fields[::2], fields[1::2], strict=True):
        frame = top.copy()
        frame[1::2] = bottom[1::2]
        out.append(frame)
    return out


def with_weather_extras(spec: ClipSpec, artefact: str) -> ClipSpec:
    """``spec`` with the renderer's ``shutter`` (a day clip's exposure as a share of the frame time, log-uniform in
    0.05-0.3) or ``splash`` (splashes per rain streak, 0.2-1) for those artefacts; else ``spec`` itself."""
    rng = np.random.default_rng(spec.seed + 37)
    if artefact == "shutter" and not spec.night:
        return dataclasses.replace(spec, extra={**spec.extra, "shutter": float(np.exp(rng.uniform(np.log(0.05),
                                                                                                   np.log(0.3))))})
    if artefact == "splash":
        return dataclasses.replace(spec, extra={**spec.extra, "splash": float(rng.uniform(0.2, 1.0))})
    return spec


def ir_switch(frames: list[np.ndarray], seed: int, window_length: int) -> list[np.ndarray]:
    """A day camera's ``frames`` switching to night vision at a frame inside the first window (1 to
    ``window_length`` - 2): grey from there on, foliage bright, the IR lamp's cone lit, more sensor noise, and the
    auto exposure's overshoot (-40 % to +80 %) settling over 1-4 frames."""
    rng = np.random.default_rng(seed + 41)
    h, w = frames[0].shape[:2]
    k = int(rng.integers(1, window_length - 1))
    lamp = lamp_map(rng, h, w)
    level, overshoot, settle = rng.uniform(0.5, 1.1), rng.uniform(-0.4, 0.8), rng.uniform(1.0, 4.0)
    noise = rng.uniform(2.0, 6.0)
    out = frames[:k]
    for t, f in enumerate(frames[k:]):
        rgb = f.astype(np.float32)
        foliage = np.clip((rgb[..., 1] - np.maximum(rgb[..., 0], rgb[..., 2])) / 40, 0, 1)
        g = rgb @ NIGHT_GREY * (1 + 0.8 * foliage)
        g = g * level * (0.35 + 0.65 * lamp) * (1 + overshoot * np.exp(-t / settle))
        g = np.clip(g + rng.normal(0, noise, (h, w)), 0, 255).astype(np.uint8)
        out.append(np.repeat(g[..., None], 3, axis=2))
    return out


def spider_web(frames: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """Night ``frames`` with 1-4 glowing strands of silk in front of the lens: each a curve from a point on the
    picture's edge, 0.2-0.6 of the picture's height long, 1-3 px out of focus at 640 px wide, 60-180 grey levels
    bright at its core, its free end swaying (a damped random walk, 2-12 px per frame at 640 px wide)."""
    rng = np.random.default_rng(seed + 43)
    h, w = frames[0].shape[:2]
    s = w / 640.0
    strands = []
    for _ in range(int(rng.integers(1, 5))):
        top = rng.random() < 0.6
        anchor = np.array([rng.uniform(0, w), 0.0] if top else [rng.choice([0.0, w - 1.0]), rng.uniform(0, h / 2)])
        ang, length = rng.uniform(0.3, 2.8), rng.uniform(0.2, 0.6) * h
        strands.append(dict(anchor=anchor, end=anchor + length * np.array([np.cos(ang), np.sin(ang)]),
                            bend=rng.normal(0, 0.15 * length, 2), v=np.zeros(2), step=rng.uniform(2, 12) * s,
                            sigma=rng.uniform(1, 3) * s, amp=rng.uniform(60, 180)))
    out = []
    for f in frames:
        glow = np.zeros((h, w), np.float32)
        for st in strands:
            st["v"] = 0.6 * st["v"] + rng.normal(0, st["step"], 2)
            st["end"] = st["end"] + st["v"]
            mid = (st["anchor"] + st["end"]) / 2 + st["bend"]
            glow += silk_glow(h, w, st["anchor"], mid, st["end"], st["sigma"], st["amp"])
        out.append(np.clip(f.astype(np.float32) + glow[..., None], 0, 255).astype(np.uint8))
    return out


def wet_road(frames: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """Night ``frames`` with a car passing on a wet road: two headlights (6-14 px at 640 px wide) moving 8-30 px per
    frame along a line in the lower half, each with its reflection below it: a column 40-140 px long and as wide as
    the light, 30-70 % as bright, broken into ripples whose brightness changes every frame."""
    rng = np.random.default_rng(seed + 47)
    h, w = frames[0].shape[:2]
    s = w / 640.0
    y = rng.uniform(0.5, 0.8) * h
    v = rng.uniform(8, 30) * s * (1 if rng.random() < 0.5 else -1)
    x0 = rng.uniform(0, w)
    r, gap = rng.uniform(3, 7) * s, rng.uniform(25, 60) * s
    length, bright, share = rng.uniform(40, 140) * s, rng.uniform(120, 220), rng.uniform(0.3, 0.7)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for t, f in enumerate(frames):
        light = np.zeros((h, w), np.float32)
        for cx in (x0 + v * t, x0 + v * t + gap):
            light += bright * np.exp(-((xx - cx) ** 2 + (yy - y) ** 2) / (2 * r * r))
            below = (yy > y + 2 * r) & (yy < y + 2 * r + length) & (np.abs(xx - cx) < 2 * r)
            ripples = rng.uniform(0.2, 1.0, size=(int(length / (2 * s)) + 2, 1))  # a new ripple pattern each frame
            rows = np.clip(((yy - y - 2 * r) / (2 * s)).astype(int), 0, len(ripples) - 1)
            fade = np.clip(1 - (yy - y - 2 * r) / length, 0, 1)
            light += below * bright * share * ripples[rows, 0] * fade * np.exp(-((xx - cx) ** 2) / (2 * r * r))
        out.append(np.clip(f.astype(np.float32) + light[..., None], 0, 255).astype(np.uint8))
    return out


def bars(frames: list[np.ndarray], sides: bool) -> list[np.ndarray]:
    """``frames`` with black bars of an eighth of the picture: with ``sides`` the middle three quarters of the
    scene (4:3 of a 16:9 picture) between bars left and right, else the whole scene squeezed between bars above and
    below."""
    h, w = frames[0].shape[:2]
    out = []
    for f in frames:
        frame = np.zeros_like(f)
        if sides:
            b = w // 8 // 2 * 2
            frame[:, b:w - b] = f[:, b:w - b]
        else:
            b = h // 8 // 2 * 2
            frame[b:h - b] = np.asarray(Image.fromarray(f).resize((w, h - 2 * b), Image.Resampling.BILINEAR))
        out.append(frame)
    return out


def sharpen(frames: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """In-camera edge enhancement: an unsharp mask of radius 1-2 px and 60-150 %."""
    rng = np.random.default_rng(seed + 29)
    radius, percent = float(rng.uniform(1.0, 2.0)), int(rng.integers(60, 151))
    flt = ImageFilter.UnsharpMask(radius=radius, percent=percent, threshold=int(rng.integers(0, 4)))
    return [np.asarray(Image.fromarray(f).filter(flt)) for f in frames]


def codec_of(artefact: str) -> str:
    """The codec name the core's probe reports for clips of ``artefact`` (what a codec's score shift is keyed by)."""
    return "hevc" if artefact.startswith("hevc") else artefact if artefact in SITE_CODECS else "h264"


def analysis_with(spec: ClipSpec, artefact: str) -> tuple[np.ndarray, float]:
    """Feature rows of the detector's decoded windows of ``spec`` rendered with ``artefact`` and the spike-map CNN's
    weather score of the clip (the detector skips a window shorter than 5 frames, which only a clip that ends within
    it has)."""
    frames = (interlaced_frames(spec) if artefact.startswith("interlace")
              else render_frames(with_weather_extras(spec, artefact)))
    fps, gop = spec.fps, spec.window_length
    if artefact == "wet" and spec.night:
        frames = wet_road(frames, spec.seed)
    if artefact == "web" and spec.night:
        frames = spider_web(frames, spec.seed)
    if artefact == "ircut" and not spec.night:
        frames = ir_switch(frames, spec.seed, spec.window_length)
    if artefact in ("sharpen", "all"):
        frames = sharpen(frames, spec.seed)
    if artefact in ("repeat", "all"):
        frames = [f for f in frames for _ in range(2)]
        fps, gop = 2 * fps, 2 * gop  # the windows still start at keyframes
    if artefact in ("convert", "blend"):
        frames = convert_rate(frames, fps, blend=artefact == "blend")
        fps, gop = converted_rate(fps), round(gop * converted_rate(fps) / fps)
    if artefact in ("zoom", "pan"):
        frames = pan_frames(frames, spec.seed, 0.0 if artefact == "zoom" else None)
    if artefact in ("osd", "all"):
        frames = burn_osd(frames, fps, spec.seed)
    if artefact in ("pillarbox", "letterbox"):
        frames = bars(frames, sides=artefact == "pillarbox")
    if artefact == "rotated":
        frames = [np.ascontiguousarray(np.rot90(f, -1)) for f in frames]
    bitrate = spec.bitrate * fps // spec.fps  # the same bits per sent frame
    with tempfile.TemporaryDirectory(prefix="rain-artefact-") as tmp:
        bframes = 3 if artefact.endswith("bframes") else 0
        if artefact in SITE_CODECS:
            path = site_encode(frames, Path(tmp) / "clip.mp4", fps, gop, spec.crf, bitrate, artefact)
        elif artefact.startswith("hevc"):  # x265's equal of the x264 CRF, or the 60 % of the bits H.265 cameras save
            path = encode(frames, Path(tmp) / "clip.mp4", fps, gop, spec.crf + 5, "veryfast",
                          max(20, bitrate * 6 // 10) if bitrate else 0, codec="libx265", bframes=bframes)
        else:
            path = encode(frames, Path(tmp) / "clip.mp4", fps, gop, spec.crf, "medium" if bframes else preset_of(spec),
                          bitrate, bframes=bframes, interlaced=artefact == "interlace",
                          rotation=90 if artefact == "rotated" else 0,
                          x264_params=RATE_CONTROL.get(artefact, ""))
        (cf,) = decode(path, [clip_request(spec)])
    det = _detector()
    rows, maps, _ = det.analysis(cf, maps=True)
    if not len(rows):
        raise ValueError(f"clip {spec.seed} ({artefact}): no window of 5 frames")
    cnn = det.cnn_weather(rows, maps)
    assert cnn is not None
    return rows, cnn


@functools.cache
def _detector() -> RainDetector:
    """The shipped MLP and CNN of this process (its feature rows skip short windows as in production)."""
    return RainDetector(RainConfig(cnn_weight=0.5))  # any weight above 0: only the CNN's own scores are kept


def _job(args: tuple[ClipSpec, str]) -> tuple[np.ndarray, float]:
    return analysis_with(*args)


def artefact_features(specs: list[ClipSpec], artefacts: list[str], save: Path | None = None,
                      workers: int = 2) -> dict[str, tuple[list[np.ndarray], np.ndarray]]:
    """Per artefact, each clip's feature rows and the CNN's weather score of each clip (``analysis_with``), rendered
    in parallel; with ``save`` kept in that .npz (per artefact all rows, each clip's number of windows and CNN score)
    and read back from it for the artefacts it holds for as many clips."""
    feats: dict[str, tuple[list[np.ndarray], np.ndarray]] = {}
    if save and save.exists():
        with np.load(save) as z:
            for a in artefacts:
                if f"{a}_cnn" in z.files and len(z[f"{a}_n"]) == len(specs):
                    feats[a] = (np.split(z[a], np.cumsum(z[f"{a}_n"])[:-1]), z[f"{a}_cnn"])
    todo = [a for a in artefacts if a not in feats]
    if todo:
        jobs = [(s, a) for a in todo for s in specs]
        with ProcessPoolExecutor(max(1, workers)) as pool:
            out = list(pool.map(_job, jobs, chunksize=4))
        for k, a in enumerate(todo):
            part = out[k * len(specs):(k + 1) * len(specs)]
            feats[a] = ([r for r, _ in part], np.array([c for _, c in part]))
        if save:
            np.savez(save, **{a: np.concatenate(f) for a, (f, _) in feats.items()},
                     **{f"{a}_n": np.array([len(x) for x in f]) for a, (f, _) in feats.items()},
                     **{f"{a}_cnn": c for a, (_, c) in feats.items()})
    return feats


def clip_weather(det: RainDetector, rows: np.ndarray, cnn_weather: float) -> float:
    """The clip's weather score as ``det`` computes it before the codec's shift: the MLP's, fused with the CNN's
    when ``det`` has the CNN on."""
    mlp = det.weather(det.window_probs(rows))
    return float(fuse(mlp, cnn_weather, det.cnn_weight)) if det.cnn is not None else mlp


def main() -> None:
    """Print one row per artefact: AUC, recall and FPR at the threshold, and how the scores moved."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=120, help="the first N clips of the held-out set")
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--domain", choices=DOMAINS, default="train")
    ap.add_argument("--artefacts", nargs="+", choices=ARTEFACTS, default=list(ARTEFACTS))
    ap.add_argument("--night", action="store_true", help="only the night clips among the first N")
    ap.add_argument("--clear", action="store_true", help="only the clear clips among the first N")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--save", type=Path, default=None, help="keep the features (.npz); read back if it exists")
    ap.add_argument("--no-shift", action="store_true", help="score every codec without the model's score shifts")
    ap.add_argument("--cnn-weight", type=float, default=None,
                    help="the CNN's weight in the fused score (default: the detector's own; 0: the MLP alone)")
    args = ap.parse_args()
    det = RainDetector(RainConfig(model_path=args.model, cnn_weight=args.cnn_weight))
    thr = det.threshold if args.threshold is None else args.threshold
    specs = [s for s in specs_for(args.seed, args.clips, photo_list("eval"), 3, args.domain)
             if (s.night or not args.night) and (s.kind == "clear" or not args.clear)]
    t0 = time.time()
    feats = artefact_features(specs, args.artefacts, args.save, args.workers)
    weather = np.array([s.kind != "clear" for s in specs])
    night = np.array([s.night for s in specs])
    # scored as the detector does: a clip's weather score moved by the model's shift for its codec (if it has one)
    shifts = {} if args.no_shift else det.score_shift
    scores = {a: np.array([det.calibrated(clip_weather(det, x, c), codec_of(a), shifts)
                           for x, c in zip(*feats[a], strict=True)])
              for a in args.artefacts}
    print(f"{len(specs)} clips of seed {args.seed} ({args.domain}"
          f"{', night only' if args.night else ''}{', clear only' if args.clear else ''}): {weather.sum()} weather, "
          f"{(~weather).sum()} "
          f"clear; threshold {thr}; rendered in {time.time() - t0:.0f} s\n")
    print("| artefact | AUC | weather recall (day / night) | clear FPR (day / night) | median score change, "
          "weather / clear | decisions changed |")
    print("|---|---|---|---|---|---|")
    base = scores.get("plain")
    for a in args.artefacts:
        p = scores[a]
        rec = " / ".join(_rate(list(p[weather & (night == n)] >= thr)) for n in (False, True))
        fpr = " / ".join(_rate(list(p[~weather & (night == n)] >= thr)) for n in (False, True))
        if base is None or a == "plain":
            moved, changed = "–", "–"
        else:
            moved = " / ".join(f"{np.median(p[m] - base[m]):+.3f}" if m.any() else "–" for m in (weather, ~weather))
            lost = int(((base >= thr) & (p < thr) & weather).sum())
            gained_fp = int(((base < thr) & (p >= thr) & ~weather).sum())
            changed = f"{lost} weather clips lost, {gained_fp} clear clips now weather"
        auc = f"{_auc(p[weather], p[~weather]):.3f}" if weather.any() and (~weather).any() else "–"
        print(f"| {a} | {auc} | {_rate(list(p[weather] >= thr))} ({rec}) | "
              f"{_rate(list(p[~weather] >= thr))} ({fpr}) | {moved} | {changed} |")


if __name__ == "__main__":
    main()
