"""Shared fixtures of the plates tests: one detector per session, clips made from real photos."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from alarmcloud import video
from alarmcloud.contracts import Finding
from alarmcloud.testing import make_clip
from alarmcloud_detect_plates.detector import PlateDetector, PlatesConfig
from PIL import Image


def shared_dir() -> Path:
    """The shared folder next to the repository (or ``$ALARMCLOUD_SHARED``)."""
    env = os.environ.get("ALARMCLOUD_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[3] / ".." / "shared"


@pytest.fixture(scope="session")
def plates_data() -> Path:
    """The labelled plate photos; tests that need them are skipped when they are absent."""
    root = (shared_dir() / "data" / "plates").resolve()
    if not (root / "labels.csv").is_file():
        pytest.skip(f"plate photos not found at {root} (set ALARMCLOUD_SHARED to the shared folder)")
    return root


@pytest.fixture(scope="session")
def labels(plates_data: Path) -> dict[str, dict[str, str]]:
    """labels.csv rows by file name."""
    with open(plates_data / "labels.csv", encoding="utf-8") as fh:
        return {row["file"]: row for row in csv.DictReader(fh)}


@pytest.fixture(scope="session")
def detector() -> PlateDetector:
    """One detector (onnxruntime sessions are built once, as in the worker)."""
    return PlateDetector(PlatesConfig())


def photo_view(
    photo: Image.Image, box: tuple[float, float, float, float], width: int, height: int, zoom: float = 1.0
) -> np.ndarray:
    """The camera's view of a photo: cover-scaled to the frame (times ``zoom``), centred on the plate as far as
    possible."""
    s = max(width / photo.width, height / photo.height) * zoom
    big = np.asarray(photo.resize((round(photo.width * s), round(photo.height * s)), Image.BILINEAR))
    x, y, w, h = (v * s for v in box)
    x0 = int(np.clip(x + w / 2 - width / 2, 0, big.shape[1] - width))
    y0 = int(np.clip(y + h / 2 - height / 2, 0, big.shape[0] - height))
    return np.ascontiguousarray(big[y0 : y0 + height, x0 : x0 + width])


@pytest.fixture
def run_clip(detector: PlateDetector) -> Callable[..., list[Finding]]:
    """Run the real pipeline (probe, decode once, analyse) on a clip file, with the shared detector or ``det``."""

    def run(path: Path, options: dict | None = None, det: PlateDetector | None = None) -> list[Finding]:
        det = det or detector
        probe = video.probe(path)
        frames = video.decode(path, [det.frame_request()], probe)[0]
        frames.options = options or {}
        return det.analyze(frames)

    return run


@pytest.fixture
def photo_clip(tmp_path: Path, plates_data: Path, labels: dict[str, dict[str, str]]) -> Callable[..., Path]:
    """A 3 s 1280x720 H.264 clip of a labelled photo with sensor noise of +-``grain`` (a parked car), the photo
    cover-scaled times ``zoom``."""

    def make(name: str, seconds: float = 3.0, zoom: float = 1.0, grain: int = 3) -> Path:
        row = labels[name]
        photo = Image.open(plates_data / name).convert("RGB")
        view = photo_view(photo, tuple(float(row[k]) for k in "xywh"), 1280, 720, zoom).astype(np.int16)

        def scene(i: int, t: float, w: int, h: int) -> np.ndarray:
            noise = np.random.default_rng(i).integers(-grain, grain + 1, size=view.shape)
            return np.clip(view + noise, 0, 255).astype(np.uint8)

        return make_clip(tmp_path / "photo.mp4", seconds=seconds, width=1280, height=720, gop_seconds=1.0, scene=scene)

    return make
