"""Helpers for tests of the core and of plugins: real H.264 MP4 clips made with PyAV."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np

if TYPE_CHECKING:
    from sqlmodel import Session

    from alarmcloud.db import Database
    from alarmcloud.models import Account, Camera

Scene = Callable[[int, float, int, int], np.ndarray]


@functools.lru_cache(maxsize=16)
def _background(width: int, height: int) -> np.ndarray:
    """The textured still background of the scenes below (computed once per size, read-only)."""
    rng = np.random.default_rng(7)
    base = rng.integers(40, 200, size=(height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    img = np.repeat(np.repeat(base, 8, axis=0), 8, axis=1)[:height, :width].copy()
    img.flags.writeable = False
    return img


def moving_box_scene(index: int, t: float, width: int, height: int) -> np.ndarray:
    """A textured still background with one box walking across it (a 'real mover')."""
    img = _background(width, height).copy()
    bw, bh = max(8, width // 10), max(16, height // 4)
    x = int((t * width / 6) % max(1, width - bw))
    y = height // 2 - bh // 2
    img[y : y + bh, x : x + bw] = (230, 60, 40)
    return img


def static_scene(index: int, t: float, width: int, height: int) -> np.ndarray:
    """A textured background where nothing moves (only faint sensor noise)."""
    img = _background(width, height)
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
    pix_fmt: str = "yuv420p",
) -> Path:
    """Write a camera-like clip: H.264 Main, no B-frames, one slice per frame, fixed GOP.

    ``pix_fmt="yuvj420p"``: full-range video, as many cameras (INSTAR among them) send it.
    """
    path = Path(path)
    key = _clip_key(seconds, width, height, fps, gop_seconds, scene, audio, codec, container_format, pix_fmt)
    if key is None:
        return _render_clip(path, seconds, width, height, fps, gop_seconds, scene, audio, codec, container_format,
                            pix_fmt)
    cached = _clip_cache_dir() / f"{key}{path.suffix}"
    if cached.is_file():
        shutil.copyfile(cached, path)
        return path
    _render_clip(path, seconds, width, height, fps, gop_seconds, scene, audio, codec, container_format, pix_fmt)
    part = cached.with_name(f"{cached.name}.{os.getpid()}.part")
    shutil.copyfile(path, part)
    os.replace(part, cached)  # atomic: another process reading the cache sees the whole clip or none
    return path


def _clip_key(*params: object) -> str | None:
    """The cache key of a clip of the built-in scenes (deterministic); ``None`` for other scenes."""
    scene = params[5]
    if scene is not moving_box_scene and scene is not static_scene:
        return None
    named = [getattr(p, "__name__", p) for p in params]
    return hashlib.sha256(repr((av.__version__, *named)).encode()).hexdigest()[:24]


@functools.lru_cache(maxsize=1)
def _clip_cache_dir() -> Path:
    """Where rendered clips are kept: ``$ALARMCLOUD_CLIP_CACHE`` (shared by processes), else a private temp dir."""
    import atexit
    import tempfile

    env = os.environ.get("ALARMCLOUD_CLIP_CACHE")
    if env:
        Path(env).mkdir(parents=True, exist_ok=True)
        return Path(env)
    d = tempfile.mkdtemp(prefix="alarmcloud-clips-")
    atexit.register(shutil.rmtree, d, True)
    return Path(d)


def _render_clip(path: Path, seconds: float, width: int, height: int, fps: int, gop_seconds: float, scene: Scene,
                 audio: bool, codec: str, container_format: str | None, pix_fmt: str) -> Path:
    """Encode the clip of ``make_clip`` (no cache)."""
    n = max(1, round(seconds * fps))
    with av.open(str(path), mode="w", format=container_format) as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height = width, height
        vs.pix_fmt = pix_fmt
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


def write_frames(path: str | Path, frames: Iterable[np.ndarray], fps: int = 10, codec: str = "libx264",
                 pix_fmt: str = "yuv420p", gop: int = 10, options: dict[str, str] | None = None,
                 rotation: tuple[int, bool, bool] | None = None) -> Path:
    """Encode RGB ``frames`` (all of one size) into ``path`` as they come: for tests that need pictures of their own
    (woven fields, 10-bit video). ``rotation``: a display matrix, as ``VideoStream.set_display_rotation``'s
    (counter-clockwise degrees, mirrored left to right, upside down) arguments (a phone's portrait video)."""
    path = Path(path)
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=fps)
        vs.pix_fmt = pix_fmt
        vs.codec_context.gop_size = gop
        vs.codec_context.options = dict(options or {})
        if rotation is not None:
            vs.set_display_rotation(rotation[0], hflip=rotation[1], vflip=rotation[2])
        for i, arr in enumerate(frames):
            if i == 0:
                vs.height, vs.width = arr.shape[:2]
            for packet in vs.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
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

        from alarmcloud.app import KEEP_ALIVE_S, create_app

        app = create_app(self.settings, **self.create_kwargs)  # type: ignore[arg-type]
        self.app = app
        self.core = app.state.alarmcloud
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                                timeout_graceful_shutdown=2, timeout_keep_alive=KEEP_ALIVE_S)
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


def app_routes() -> list[object]:
    """The route table of an app built like the live server's, core and installed plugins (no database needed)."""
    import tempfile

    from alarmcloud.app import create_app

    with tempfile.TemporaryDirectory(prefix="ac-openapi-") as tmp:
        return list(create_app(test_settings(Path(tmp) / "data"), run_migrations=False).routes)  # type: ignore[arg-type]


def openapi_document() -> dict[str, object]:
    """The OpenAPI document such an app serves at ``/openapi.json``."""
    from alarmcloud import openapi

    return openapi.build(app_routes())


def test_settings(data_dir: Path, **overrides: object) -> object:
    """Settings for tests: a temp data dir, FTP off, fast workers; ``ALARMCLOUD_TEST_DATABASE_URL`` if set.

    SQLite databases of the test process are written without fsync (``sqlite_without_fsync``); its passwords are
    hashed with argon2id at the lowest cost (``cheap_password_hashing``).
    """
    from alarmcloud.config import Settings

    sqlite_without_fsync()
    cheap_password_hashing()

    kwargs: dict[str, object] = {"database_url": os.environ.get("ALARMCLOUD_TEST_DATABASE_URL") or None, **overrides}
    st = Settings(data_dir=data_dir, **kwargs)  # type: ignore[arg-type]
    st.ftp.port = 0
    st.workers.poll_seconds = 0.1
    return st


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def loopback_settings(data_dir: Path, **overrides: object) -> object:
    """``test_settings`` whose cameras may upload from, and whose webhooks and push servers may be, on this computer
    (loopback: the tests' cameras and stand-in receivers)."""
    st: Any = test_settings(data_dir, camera_networks=["127.0.0.0/8"], **overrides)
    st.notify.webhook_networks = ["127.0.0.0/8"]
    return st


@functools.lru_cache(maxsize=1)
def sqlite_without_fsync() -> None:
    """Open every SQLite database of this process with ``PRAGMA synchronous=OFF`` (tests only).

    Alembic runs each DDL statement of a migration in its own transaction; with fsync every new test database cost
    seconds of disk waits. A test database need not survive a power cut; a killed process loses nothing either way.
    """
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _no_fsync(dbapi_conn: object, _record: object) -> None:
        if isinstance(dbapi_conn, sqlite3.Connection):
            dbapi_conn.execute("PRAGMA synchronous=OFF")


@functools.lru_cache(maxsize=1)
def cheap_password_hashing() -> None:
    """Hash the passwords of this process with argon2id at its lowest cost (tests only).

    Still argon2id hashes that only the right password verifies, but in about a millisecond instead of some 0.3 CPU
    seconds: every account a test registers costs a hash and a check (its login). Hashes made before still verify
    (a hash names its own parameters); unknown e-mails still spend one check (``crypto.burn_password_check``).
    """
    from argon2 import PasswordHasher

    from alarmcloud import crypto

    crypto._hasher = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    crypto._DUMMY_HASH = crypto._hasher.hash("timing-equaliser")


@contextmanager
def postgres_database(prefix: str = "ac_t_") -> Iterator[str]:
    """The URL of a new database on the real PostgreSQL server of ``ALARMCLOUD_TEST_POSTGRES_URL``, dropped after.

    ``scripts/test`` starts such a server; without the variable the calling test is skipped with that reason.
    """
    import os
    import uuid

    import pytest
    import sqlalchemy as sa

    pg = os.environ.get("ALARMCLOUD_TEST_POSTGRES_URL")
    if not pg:
        pytest.skip("set ALARMCLOUD_TEST_POSTGRES_URL (scripts/test starts a server)")
    name = prefix + uuid.uuid4().hex[:12]
    admin = sa.create_engine(pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield pg.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


@contextmanager
def migrated_database(database: str, sqlite_file: Path, prefix: str = "ac_t_") -> Iterator[Database]:
    """An ``alarmcloud.db.Database`` with the schema, on ``"sqlite"`` (``sqlite_file``) or on a new PostgreSQL
    database (``postgres_database``, named with ``prefix``); disposed after. For fixtures with ``params=["sqlite",
    "postgres"]`` that work on the tables directly."""
    from alarmcloud import db

    with contextlib.ExitStack() as stack:
        url = (f"sqlite:///{sqlite_file}" if database == "sqlite"
               else stack.enter_context(postgres_database(prefix)))
        db.migrate(url)
        found = db.Database(url)
        try:
            yield found
        finally:
            found.dispose()


def two_tenants(s: Session, cameras: int) -> tuple[Account, Account, Account, list[Camera], Camera]:
    """For tests of who may see what: an owner with ``cameras`` cameras, another tenant with one, and a sub-user of
    the owner with the ``view`` right on the owner's last camera (o@, x@, s@example.com), flushed. Returns (owner,
    other, sub-user, the owner's cameras, the other's camera)."""
    from alarmcloud.models import Account, Camera, CameraRight

    owner, other = Account(email="o@example.com", password_hash="x"), Account(email="x@example.com",
                                                                              password_hash="x")
    s.add_all([owner, other])
    s.flush()
    sub = Account(email="s@example.com", password_hash="x", owner_id=owner.id)
    cams = [Camera(account_id=owner.id, name=f"c{i}", brand="b", model="m") for i in range(cameras)]
    other_cam = Camera(account_id=other.id, name="x", brand="b", model="m")
    s.add_all([sub, *cams, other_cam])
    s.flush()
    s.add(CameraRight(account_id=sub.id, camera_id=cams[-1].id, right="view"))
    s.flush()
    return owner, other, sub, cams, other_cam


@contextmanager
def settings_on(database: str, data_dir: Path, **overrides: object) -> Iterator[object]:
    """``test_settings`` on ``"sqlite"`` or on a new PostgreSQL database (``postgres_database``).

    Use it in a fixture with ``params=["sqlite", "postgres"]`` to run a module's tests on both.
    """
    if database == "sqlite":
        yield test_settings(data_dir, **overrides)
        return
    with postgres_database() as url:
        yield test_settings(data_dir, database_url=url, **overrides)


def wait_for_lock_wait(db: object, timeout: float = 60.0, message: object = "no transaction ever waited for a lock",
                       alive: Callable[[], bool] = lambda: True, blocked_by: int | None = None) -> None:
    """Until a transaction of ``db``'s PostgreSQL database (an ``alarmcloud.db.Database``) waits for a row lock: a
    test that forces an interleaving holds one transaction open until the other has come to its lock. With
    ``blocked_by`` (a backend's ``pg_backend_pid()``), a lock that backend holds: a short wait on another lock (a
    background task's row) does not count. Fails with ``message`` (shown as it is then: a list the other side
    appends to shows what it returned) after ``timeout`` seconds, or as soon as ``alive()`` is false (the other side
    ended instead)."""
    import time

    import sqlalchemy as sa

    deadline = time.monotonic() + timeout
    while True:
        with db.engine.connect() as watch:  # type: ignore[attr-defined]  # a new transaction: fresh statistics
            if watch.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                     "AND datname = current_database() AND (CAST(:by AS integer) IS NULL "
                                     "OR CAST(:by AS integer) = ANY(pg_blocking_pids(pid)))"),
                             {"by": blocked_by}).scalar():
                return
        assert alive() and time.monotonic() < deadline, message
        time.sleep(0.02)


# ---------------------------------------------------------------- a CoreServices double for integration plugins

import copy  # noqa: E402 - this section was appended
from typing import Any  # noqa: E402

from alarmcloud.contracts import LiveStream  # noqa: E402
from alarmcloud.services import (  # noqa: E402
    CameraSummary,
    CoreServices,
    Principal,
    ServiceError,
    require_camera_scope,
)


class FakeServices(CoreServices):
    """An in-memory ``CoreServices`` for unit tests of one integration plugin (no database, no server).

    ``link(token, account_id, scopes)`` makes ``token`` an access token of ``integration`` (``expired=True``: one
    whose hour is over); other tokens, or tokens for another integration, fail like the core's do
    (``ServiceError(401, "invalid_token" | "expired_token")``). ``cameras`` maps account ids to their
    ``CameraSummary`` list and ``streams`` camera ids to ``LiveStream``s (their ``credentials_in_url`` only with
    ``with_credentials=True``). Camera actions land in ``actions`` as ``(account_id, camera_id, action, value)``, or
    raise ``fail_action`` when set; a camera whose ``capabilities`` are given but lack ``control`` (a sub-user's
    ``view`` right: ``("stream",)``) answers actions with ``ServiceError(403, "forbidden")`` as the core does (no
    capabilities at all: actions land as before); plugin state lives in ``state``; ``unlink`` drops the account's
    tokens and records ``(account_id, integration)`` in ``unlinked``. Use the real server (``LiveServer``) for
    end-to-end tests.
    """

    def __init__(self, integration: str, cameras: dict[str, list[CameraSummary]] | None = None) -> None:
        self.integration = integration
        self.cameras: dict[str, list[CameraSummary]] = cameras or {}
        self.streams: dict[str, LiveStream] = {}
        self.tokens: dict[str, Principal] = {}
        self.expired: set[str] = set()
        self.actions: list[tuple[str, str, str, Any]] = []
        self.fail_action: Exception | None = None
        self.state: dict[tuple[str, str | None, str], Any] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.unlinked: list[tuple[str, str]] = []

    def link(self, token: str, account_id: str, scopes: Iterable[str], pseudonym: str | None = None,
             client_id: str | None = None, expired: bool = False) -> Principal:
        """Make ``token`` an access token of ``account_id``; returns the ``Principal`` it stands for."""
        principal = Principal(account_id, client_id or f"{self.integration}-client", frozenset(scopes),
                              pseudonym or f"pseudo-{account_id}")
        self.tokens[token] = principal
        (self.expired.add if expired else self.expired.discard)(token)
        return principal

    def _camera(self, account_id: str, camera_id: str) -> CameraSummary:
        for cam in self.cameras.get(account_id, []):
            if cam.id == camera_id:
                return cam
        raise ServiceError(404, "not_found", "camera not found")

    async def principal_for_token(self, token: str, integration: str) -> Principal:
        if integration != self.integration or token not in self.tokens:
            raise ServiceError(401, "invalid_token", "the access token is invalid or revoked")
        if token in self.expired:
            raise ServiceError(401, "expired_token", "the access token has expired; refresh it")
        return self.tokens[token]

    async def account_for_pseudonym(self, integration: str, pseudonym: str) -> str | None:
        return (await self.pseudonyms(integration)).get(pseudonym)

    async def pseudonyms(self, integration: str) -> dict[str, str]:
        if integration != self.integration:
            return {}
        return {p.pseudonym: p.account_id for p in self.tokens.values()}

    async def list_cameras(self, account_id: str) -> list[CameraSummary]:
        return list(self.cameras.get(account_id, []))

    async def camera_action(self, account_id: str, camera_id: str, action: str, value: Any,
                            area: int | None = None, *, principal: Principal | None = None) -> None:
        require_camera_scope(principal, account_id, "control")
        cam = self._camera(account_id, camera_id)
        if cam.capabilities and "control" not in cam.capabilities:
            raise ServiceError(403, "forbidden", "you need the 'control' right on this camera")
        if self.fail_action is not None:
            raise self.fail_action
        self.actions.append((account_id, camera_id, action, value))

    async def live_stream(self, account_id: str, camera_id: str, with_credentials: bool = False, *,
                          principal: Principal | None = None) -> LiveStream:
        require_camera_scope(principal, account_id, "stream")
        self._camera(account_id, camera_id)
        s = self.streams.get(camera_id) or LiveStream(f"rtsp://camera.invalid/{camera_id}")
        return s if with_credentials else LiveStream(s.rtsp_main, s.rtsp_sub, s.rtsp_third, s.snapshot, {})

    async def list_events(self, account_id: str, *, camera_id: str | None = None, label: str | None = None,
                          real_alarms_only: bool = False, limit: int = 50) -> list[dict[str, Any]]:
        items = [e for e in self.events.get(account_id, []) if camera_id in (None, e.get("camera_id"))
                 and (not real_alarms_only or e.get("verdict") == "alarm")]
        return items[:limit]

    async def storage(self, account_id: str) -> dict[str, Any]:
        return {"quota_bytes": 0, "used_bytes": 0, "cameras": []}

    async def get_state(self, plugin: str, account_id: str | None, key: str) -> Any | None:
        return copy.deepcopy(self.state.get((plugin, account_id, key)))

    async def set_state(self, plugin: str, account_id: str | None, key: str, value: Any) -> None:
        self.state[(plugin, account_id, key)] = copy.deepcopy(value)

    async def delete_state(self, plugin: str, account_id: str | None, key: str | None = None) -> None:
        for k in [k for k in self.state if k[:2] == (plugin, account_id) and key in (None, k[2])]:
            del self.state[k]

    async def authenticate_camera(self, username: str, password: str) -> str | None:
        return None

    async def record_camera_trigger(self, camera_id: str, trigger: dict[str, Any]) -> None:
        return None

    async def unlink(self, account_id: str, integration: str) -> None:
        if integration == self.integration:
            for token in [t for t, p in self.tokens.items() if p.account_id == account_id]:
                del self.tokens[token]
        self.unlinked.append((account_id, integration))
