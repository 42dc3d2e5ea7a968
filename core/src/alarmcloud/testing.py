"""Helpers for tests of the core and of plugins: real H.264 MP4 clips made with PyAV."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

Scene = Callable[[int, float, int, int], np.ndarray]


def moving_box_scene(index: int, t: float, width: int, height: int) -> np.ndarray:
    """A textured still background with one box walking across it (a 'real mover')."""
    rng = np.random.default_rng(7)
    base = rng.integers(40, 200, size=(height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    img = np.repeat(np.repeat(base, 8, axis=0), 8, axis=1)[:height, :width].copy()
    bw, bh = max(8, width // 10), max(16, height // 4)
    x = int((t * width / 6) % max(1, width - bw))
    y = height // 2 - bh // 2
    img[y : y + bh, x : x + bw] = (230, 60, 40)
    return img


def static_scene(index: int, t: float, width: int, height: int) -> np.ndarray:
    """A textured background where nothing moves (only faint sensor noise)."""
    rng = np.random.default_rng(7)
    base = rng.integers(40, 200, size=(height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    img = np.repeat(np.repeat(base, 8, axis=0), 8, axis=1)[:height, :width]
    noise = np.random.default_rng(index).integers(-3, 4, size=img.shape)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def make_clip(
    path: str | Path,
    seconds: float = 18.0,
    width: int = 640,
    height: int = 360,
    fps: int = 15,
    gop_seconds: float = 2.0,
    scene: Scene = moving_box_scene,
    audio: bool = False,
    codec: str = "libx264",
    container_format: str | None = None,
) -> Path:
    """Write a camera-like clip: H.264 Main, no B-frames, one slice per frame, fixed GOP."""
    path = Path(path)
    n = max(1, round(seconds * fps))
    with av.open(str(path), mode="w", format=container_format) as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height = width, height
        vs.pix_fmt = "yuv420p"
        vs.codec_context.gop_size = max(1, round(gop_seconds * fps))
        if codec == "libx264":
            vs.codec_context.options = {
                "preset": "ultrafast",
                "tune": "zerolatency",
                "bf": "0",
                "sc_threshold": "0",
                "keyint_min": str(vs.codec_context.gop_size),
                "x264-params": "sliced-threads=0:slices=1",
            }
            vs.codec_context.thread_count = 1
        aus = None
        if audio:
            aus = out.add_stream("aac", rate=8000)
        for i in range(n):
            t = i / fps
            frame = av.VideoFrame.from_ndarray(scene(i, t, width, height), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
        if aus is not None:
            samples = np.zeros((1, int(8000 * seconds)), dtype=np.float32)
            layout = "mono"
            af = av.AudioFrame.from_ndarray(samples, format="fltp", layout=layout)
            af.sample_rate = 8000
            af.pts = 0
            for packet in aus.encode(af):
                out.mux(packet)
            for packet in aus.encode(None):
                out.mux(packet)
    return path


class LiveServer:
    """Run the real app with uvicorn on a free loopback port in a thread (tests, benchmarks).

    ``with LiveServer(settings) as srv: httpx.get(srv.url + "/-/health")``; ``srv.core`` is the AlarmCloud object.
    """

    def __init__(self, settings: object, **create_kwargs: object) -> None:
        self.settings = settings
        self.create_kwargs = create_kwargs
        self.url = ""
        self.core: object = None

    def __enter__(self) -> LiveServer:
        import socket
        import threading
        import time

        import uvicorn

        from alarmcloud.app import create_app

        app = create_app(self.settings, **self.create_kwargs)  # type: ignore[arg-type]
        self.app = app
        self.core = app.state.alarmcloud
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def test_settings(data_dir: Path, **overrides: object) -> object:
    """Settings for tests: a temp data dir, FTP off, fast workers; ``ALARMCLOUD_TEST_DATABASE_URL`` if set."""
    import os

    from alarmcloud.config import Settings

    kwargs: dict[str, object] = {"database_url": os.environ.get("ALARMCLOUD_TEST_DATABASE_URL") or None, **overrides}
    st = Settings(data_dir=data_dir, **kwargs)  # type: ignore[arg-type]
    st.ftp.port = 0
    st.workers.poll_seconds = 0.1
    return st


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test
