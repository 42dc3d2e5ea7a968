"""Shared helpers: real H.264 clips with rain, a walking person, swaying vegetation, night IR."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from alarmcloud.contracts import ClipFrames
from alarmcloud.plugins import PluginHost
from alarmcloud.testing import make_clip
from alarmcloud.video import decode
from alarmcloud_detect_rain.detector import RainDetector
from alarmcloud_detect_rain.insects import REQUEST as INSECT_REQUEST

Scene = Callable[[int, float, int, int], np.ndarray]


def _background(width: int, height: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(50, 190, size=(height // 16 + 1, width // 16 + 1, 3)).astype(np.float32)
    img = np.repeat(np.repeat(small, 16, axis=0), 16, axis=1)[:height, :width]
    yy = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    return img * (0.7 + 0.3 * yy)


def _rain_alpha(rng: np.random.Generator, width: int, height: int, n: int) -> np.ndarray:
    """Independent thin, slightly tilted streaks every frame (a drop brightens a pixel for one frame)."""
    alpha = np.zeros((height, width), np.float32)
    length = rng.integers(8, 30, n)
    x0, y0 = rng.uniform(0, width, n), rng.uniform(-20, height, n)
    for k in range(30):
        on = k < length
        xs = np.round(x0[on] + 0.15 * k).astype(int)
        ys = np.round(y0[on] + k).astype(int)
        ok = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
        alpha[ys[ok], xs[ok]] = rng.uniform(0.12, 0.3, ok.sum())
    return alpha


def rain_scene(n_streaks: int = 900, night: bool = False) -> Scene:
    """Rain over a textured scene (grey and dark with strong noise when ``night``)."""

    def scene(i: int, t: float, w: int, h: int) -> np.ndarray:
        rng = np.random.default_rng(1000 + i)
        img = _background(w, h)
        if night:
            img = img.mean(axis=2, keepdims=True).repeat(3, axis=2) * 0.35 + 10
        a = _rain_alpha(rng, w, h, n_streaks)[..., None]
        img = img * (1 - a) + 230 * a
        img = img + rng.normal(0, 5 if night else 1.5, (h, w, 1))
        return np.clip(img, 0, 255).astype(np.uint8)

    return scene


def walking_person_scene(i: int, t: float, w: int, h: int) -> np.ndarray:
    """A person-sized block walking across a still scene, no rain."""
    rng = np.random.default_rng(2000 + i)
    img = _background(w, h)
    pw, ph = w // 14, h // 3
    x, y = int(20 + 6 * i) % (w - pw), h // 2
    img[y : y + ph, x : x + pw] = (60, 70, 150)
    img[y - pw // 2 : y, x + pw // 4 : x + 3 * pw // 4] = (200, 160, 140)  # head
    img = img + rng.normal(0, 1.5, (h, w, 1))
    return np.clip(img, 0, 255).astype(np.uint8)


def vegetation_scene(i: int, t: float, w: int, h: int) -> np.ndarray:
    """A bush of fine leaves swaying in the wind, no rain."""
    rng = np.random.default_rng(3000 + i)
    img = _background(w, h)
    leaves = np.random.default_rng(9).random((h // 2 + 8, w // 2 + 8)).astype(np.float32)
    dx = int(round(2.5 * np.sin(0.8 * i)))
    dy = int(round(1.0 * np.sin(0.6 * i)))
    patch = leaves[4 + dy : 4 + dy + h // 2, 4 + dx : 4 + dx + w // 2]
    img[h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2] = np.array([40, 110, 40]) * (0.5 + patch[..., None])
    img = img + rng.normal(0, 1.5, (h, w, 1))
    return np.clip(img, 0, 255).astype(np.uint8)


def night_clear_scene(i: int, t: float, w: int, h: int) -> np.ndarray:
    """Night IR: grey, dark, noisy, with the camera's gain jumping every few frames (AGC), no rain."""
    rng = np.random.default_rng(4000 + i)
    img = _background(w, h).mean(axis=2, keepdims=True).repeat(3, axis=2) * 0.35 + 10
    img = img * (1.25 if i % 7 == 3 else 1.0) + rng.normal(0, 5, (h, w, 1))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def detector() -> RainDetector:
    """The detector with the shipped model."""
    return RainDetector()


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session folder for generated clips."""
    return tmp_path_factory.mktemp("rain-clips")


def clip(folder: Path, name: str, scene: Scene, seconds: float = 5.0) -> Path:
    """A 640x360 15 fps camera-like clip (cached by name within the session)."""
    path = folder / f"{name}.mp4"
    if not path.exists():
        make_clip(path, seconds=seconds, width=640, height=360, fps=15, gop_seconds=1.0, scene=scene)
    return path


def _frames_for(detector: RainDetector, path: Path) -> ClipFrames:
    """Decode ``path`` through the core pipeline with the detector's own request."""
    (cf,) = decode(path, [detector.frame_request()])
    return cf


@pytest.fixture(scope="session")
def clips(clip_dir: Path) -> dict[str, Path]:
    """The standard set: rain, heavy night rain, walking person, swaying vegetation, static."""
    from alarmcloud.testing import static_scene

    return {
        "rain": clip(clip_dir, "rain", rain_scene()),
        "night_rain": clip(clip_dir, "night_rain", rain_scene(1500, night=True)),
        "person": clip(clip_dir, "person", walking_person_scene),
        "vegetation": clip(clip_dir, "vegetation", vegetation_scene),
        "static": clip(clip_dir, "static", static_scene),
        "night_clear": clip(clip_dir, "night_clear", night_clear_scene),
    }


@pytest.fixture(scope="session")
def make_rain_scene() -> Callable[..., Scene]:
    """``make_rain_scene(n_streaks, night)``: the rain scene of the standard clips, for tests that alter it."""
    return rain_scene


@pytest.fixture(scope="session")
def frames_for() -> Callable[[RainDetector, Path], ClipFrames]:
    """``frames_for(detector, path)``: the ClipFrames the core pipeline serves the detector for ``path``."""
    return _frames_for


@pytest.fixture(scope="session")
def host() -> PluginHost:
    """A plugin host with every installed detector (this plugin's ``rain`` and ``insects``)."""
    return PluginHost({"cameras": [], "detectors": None, "integrations": []}).load()


def _night_clips(folder: Path, scenes: dict[str, Scene]) -> dict[str, Path]:
    return {name: make_clip(folder / f"{name}.mp4", seconds=8, width=640, height=360, fps=10, gop_seconds=1.0,
                            scene=scene) for name, scene in scenes.items()}


@pytest.fixture(scope="session")
def night_clips_of() -> Callable[[Path, dict[str, Scene]], dict[str, Path]]:
    """``night_clips_of(folder, scenes)``: one 8 s 640x360 clip per scene at 10 fps with a keyframe every second (8
    keyframes), as the insects detector's tests use them."""
    return _night_clips


def _insect_frames(path: Path) -> ClipFrames:
    (cf,) = decode(path, [INSECT_REQUEST])
    return cf


@pytest.fixture(scope="session")
def insect_frames() -> Callable[[Path], ClipFrames]:
    """``insect_frames(path)``: the ClipFrames the core pipeline serves the insects detector for ``path``."""
    return _insect_frames
