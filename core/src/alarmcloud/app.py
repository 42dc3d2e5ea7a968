"""The application object and ``create_app``: explicit Starlette routes and lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import importlib.util
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlmodel import col, select
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from alarmcloud import (
    auth,
    cameras,
    cases,
    crypto,
    db,
    download,
    eventsapi,
    ingest,
    notify,
    openapi,
    storage,
    subusers,
    tuning,
)
from alarmcloud.auth import TwoFactorFirst
from alarmcloud.blobstore import BlobStore, BlobStoreUnavailable, make_blob_store
from alarmcloud.config import Settings
from alarmcloud.errors import (
    ApiError,
    RefuseNul,
    api_error_handler,
    error_response,
    http_error_handler,
    server_error_handler,
)
from alarmcloud.events import (
    ACCOUNT_DELETED,
    CAMERA_CHANGED,
    CAMERA_DELETED,
    DETECTIONS_READY,
    LINK_REVOKED,
    PLATE_RECOGNISED,
    Event,
)
from alarmcloud.models import Account, CameraRight, Clip, PluginState, iso, utcnow
from alarmcloud.plugins import PluginHost
from alarmcloud.usage import UsageRecorder

log = logging.getLogger(__name__)
#: plugin_state key (plugin "core") holding when the last orphan sweep started
SWEEP_KEY = "orphan_sweep"
#: in a shared store, a blob without a clip row is an orphan only when it is older than this
ORPHAN_GRACE_SECONDS = 600.0
#: on shutdown, how long the server's workers get to finish the jobs they hold (a detector run takes about a second;
#: container runtimes kill after 10 s)
WORKER_STOP_S = 8.0


def _sweep_marker(s: Any) -> PluginState | None:
    return s.exec(select(PluginState).where(PluginState.plugin == "core", PluginState.key == SWEEP_KEY)).first()


#: events that reach plugins even for restricted accounts (they remove data or links)
_ALWAYS_DELIVERED = frozenset({ACCOUNT_DELETED, LINK_REVOKED})
#: events on one camera that integrations turn into reports to a platform (Alexa, Google Home, IFTTT Realtime): the
#: integrations also get a copy for each sub-user with a right on the camera, addressed to the sub-user's account
_FOR_SUBUSERS = frozenset({DETECTIONS_READY, CAMERA_CHANGED, CAMERA_DELETED, PLATE_RECOGNISED})
#: what a ``plate.recognised`` event tells of the owner's known plates (the owner's list): the sub-users' copies
#: leave it out, as the API and the pages show sub-users plates without the owner's names for them ("known" and
#: "notify" stay: a silenced plate stays silent on every link)
_OWNER_ONLY_PLATE_KEYS = ("known_plate_id", "known_text")


def _copy_for_subuser(event: Event, sub_id: str) -> Event:
    payload = event.payload
    if event.type == PLATE_RECOGNISED:
        payload = {k: v for k, v in payload.items() if k not in _OWNER_ONLY_PLATE_KEYS} | {"name": None}
    return dataclasses.replace(event, account_id=sub_id, payload=payload)


#: sub-users' copies delivered at the same time (each integration call has its own time limit)
_SUBUSER_CONCURRENCY = 4


class TrainingArea:
    """Clips released by their owners for improving a detector: ``<data_dir>/training/<detector>/<label>/``, or
    with a shared store (S3) the keys ``training/<detector>/<label>/<clip>.mp4`` in it, so that every node
    withdraws the same copies (retraining commands read them through ``folder``)."""

    def __init__(self, root: Path, blobs: BlobStore) -> None:
        self.root = root
        self.blobs = blobs

    def release(self, clip: Clip, detector: str, label: str) -> Path | str:
        """Copy the clip into the training area: the local file, or the key in the shared store."""
        if self.blobs.shared:
            key = f"training/{detector}/{label}/{clip.id}.mp4"
            self.blobs.copy(clip.blob_key, key)
            return key
        dst = self.root / detector / label / f"{clip.id}.mp4"
        dst.parent.mkdir(parents=True, exist_ok=True)
        with self.blobs.open(clip.blob_key) as src, open(dst, "wb") as out:
            shutil.copyfileobj(src, out)
        return dst

    @contextlib.contextmanager
    def folder(self, detector: str) -> Iterator[Path]:
        """The detector's released clips as a local folder ``<label>/<clip>.mp4`` for the length of the ``with``
        (what retraining commands read): the training area itself on local disk; with a shared store (S3) a
        download into the staging folder, removed afterwards, so no copy outlives a withdrawal."""
        if not self.blobs.shared:
            yield self.root / detector
            return
        self.blobs.staging.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"training-{detector}-", dir=self.blobs.staging) as tmp:
            for key in self.blobs.keys(f"training/{detector}"):
                label, name = key.split("/")[-2:]
                dst = Path(tmp) / label / name
                dst.parent.mkdir(parents=True, exist_ok=True)
                with self.blobs.open(key) as src, open(dst, "wb") as out:
                    shutil.copyfileobj(src, out, 1024 * 1024)
            yield Path(tmp)

    def withdraw(self, clip_id: str) -> int:
        return self.withdraw_many([clip_id])

    def withdraw_many(self, clip_ids: Iterable[str]) -> int:
        """Delete every training copy of these clips; returns how many (one listing of a shared store)."""
        names = {f"{cid}.mp4" for cid in clip_ids}
        if not names:
            return 0
        n = 0
        if self.root.exists():
            for p in self.root.rglob("*.mp4"):
                if p.name in names:
                    p.unlink()
                    n += 1
        if self.blobs.shared:
            for key in [k for k in self.blobs.keys("training") if k.rsplit("/", 1)[-1] in names]:
                self.blobs.delete(key)
                n += 1
        return n


class AlarmCloud:
    """Everything a running deployment holds; plugins receive it in their hooks (``app.services``)."""

    def __init__(self, settings: Settings, plugins: PluginHost | None = None) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = db.Database(settings.db_url)
        self.blobs: BlobStore = make_blob_store(settings)
        self.secret_box = crypto.secret_box(settings)
        self.plugins = plugins or PluginHost(
            {"cameras": settings.plugins.cameras, "detectors": settings.plugins.detectors,
             "integrations": settings.plugins.integrations},
            disable=settings.plugins.disable, strict=settings.plugins.strict,
            plugin_settings=settings.plugin_settings,
        ).load()
        self.storage = storage.StorageService(self)
        self.upload_logins = ingest.UploadLogins(self)
        self.login_limiter = auth.LoginLimiter(settings.login_attempts, settings.login_window_seconds)
        self.training = TrainingArea(settings.data_dir / "training", self.blobs)
        self.usage = UsageRecorder(self)
        from alarmcloud.facade import Services

        self.services = Services(self)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._workers: list[Any] = []
        self._worker_threads: list[threading.Thread] = []
        self.extra: dict[str, Any] = {}  # plugins may keep per-deployment objects here

    # ---------------------------------------------------------------- events

    async def emit(self, event: Event) -> None:
        """Fan an event out to every plugin's ``handle_event`` and every integration; each one isolated.

        An event on a camera of the types in ``_FOR_SUBUSERS`` then goes to the integrations once more for each
        sub-user with a right on that camera (``account_id`` the sub-user's), so that the sub-user's own links get
        their reports too; an integration ignores an account it has no link of.
        """
        if event.type not in _ALWAYS_DELIVERED and await self._restricted(event.account_id):
            return  # GDPR Art. 18: a restricted account's data goes to no plugin and no integration
        await notify.queue_event(self, event)  # the account's webhooks that subscribed to this event
        await self.plugins.call_each("handle_event", app=self, event=event)
        await self._integrations_handle(event)
        if event.camera_id is None or event.type not in _FOR_SUBUSERS:
            return
        try:
            subs = await self._subusers_on(event.account_id, event.camera_id)
        except Exception:  # the owner's delivery is done; the sub-users' copies must not turn it into a failure
            log.exception("sub-users of a camera not found for %s", event.type)
            return
        limit = anyio.CapacityLimiter(_SUBUSER_CONCURRENCY)

        async def one(sub_id: str) -> None:
            async with limit:
                await self.tell_integrations(_copy_for_subuser(event, sub_id))

        async with anyio.create_task_group() as tg:
            for sub_id in subs:
                tg.start_soon(one, sub_id)

    async def tell_integrations(self, event: Event) -> None:
        """Deliver an event to the integrations only: the ``handle_event`` hooks of the plugins that register an
        integration, then each integration's ``handle_event``; each call isolated and limited to 30 s.

        For events addressed to a sub-user (``emit`` copies, a right taken away): the owner's webhooks and the
        other plugins have had the owner's event, or have nothing to do with the sub-user's view.
        """
        linking = {i.plugin_name for i in self.plugins.pm.hook.register_integrations.get_hookimpls()}
        await self.plugins.call_each("handle_event", app=self, event=event, only=linking)
        await self._integrations_handle(event)

    async def _integrations_handle(self, event: Event) -> None:
        """Each integration's ``handle_event``, isolated and limited to 30 s."""
        for name in self.plugins.integration_specs:
            integ = self.plugins.integration(name)
            if integ is None:
                continue
            try:
                with anyio.fail_after(30):
                    await integ.handle_event(event)
            except Exception:
                log.exception("integration %s failed on %s", name, event.type)

    async def _subusers_on(self, owner_id: str, camera_id: str) -> list[str]:
        """The owner's sub-users with a right on the camera whose own processing is not restricted."""
        def _q(s: Any) -> list[str]:
            rows = s.exec(select(Account.id).join(CameraRight, col(CameraRight.account_id) == col(Account.id))
                          .where(CameraRight.camera_id == camera_id, Account.owner_id == owner_id,
                                 col(Account.restricted).is_(False))).all()
            return sorted(rows)

        return await self.db.run(_q)

    async def _restricted(self, account_id: str | None) -> bool:
        if not account_id:
            return False
        acc = await self.db.run(lambda s: s.get(Account, account_id))
        return bool(acc is not None and acc.restricted)

    def emit_sync(self, event: Event) -> None:
        """Emit from a worker thread: hand over to the server's loop, or run a loop of our own."""
        loop = self.loop
        if loop is not None and loop.is_running():
            try:
                if asyncio.get_running_loop() is loop:
                    loop.create_task(self.emit(event))
                    return
            except RuntimeError:
                pass
            asyncio.run_coroutine_threadsafe(self.emit(event), loop)
        else:
            asyncio.run(self.emit(event))

    def wake_workers(self) -> None:
        for w in self._workers:
            w.wake.set()

    def forget_upload_login(self, username: str) -> None:
        self.upload_logins.forget(username)

    def upload_endpoints(self) -> dict[str, Any]:
        from urllib.parse import urlparse

        host = self.settings.ftp.public_host or urlparse(self.settings.public_url).hostname or "localhost"
        return {"http_url": self.settings.public_url.rstrip("/") + "/api/v1/ingest/clips",
                "ftp_host": host, "ftp_port": self.settings.ftp.port,
                "ftps": self.settings.ftp.tls_cert is not None}

    # ---------------------------------------------------------------- start-up housekeeping

    def sweep_orphans(self) -> int:
        """After a crash: drop staged uploads (``clean_staging``) and blobs whose clip row was never committed
        (``sweep_blobs``); the number of files removed."""
        return self.clean_staging() + self.sweep_blobs()

    def clean_staging(self) -> int:
        """Drop the staged uploads an interrupted upload left in the local staging folder: at start-up, before
        uploads are accepted."""
        n = self.blobs.clean_tmp()
        if n:
            log.warning("removed %d partial files left by an interrupted upload", n)
        return n

    def sweep_blobs(self, stop: threading.Event | None = None) -> int:
        """Delete the blobs whose clip row was never committed (a crash between storing and committing).

        Only blobs written since the previous sweep (less an hour for clock steps) are looked up, in batches, so
        start-up stays fast with millions of clips on a local store. In a shared store (S3) only blobs older than
        ORPHAN_GRACE_SECONDS count. When ``stop`` is set (shutdown) the sweep ends at the next key and the sweep
        marker keeps its old time, so the next start looks at the same blobs again.
        """
        stop = stop or threading.Event()  # none given: never set
        n = 0
        started = time.time()
        with self.db.session() as s:
            marker = _sweep_marker(s)
        since = float((marker.value or {}).get("at", 0)) - 3600 if marker and marker.value else None
        # a shared store (S3) may hold a clip another node stored a moment ago and is about to commit: only blobs
        # older than ORPHAN_GRACE_SECONDS count as orphans there
        before = started - ORPHAN_GRACE_SECONDS if self.blobs.shared else None
        candidates: list[str] = []
        for key in self.blobs.keys_changed_since(since, before):
            if stop.is_set():
                return n
            if key.endswith((".mp4", ".jpg")) and key.count("/") == 2:
                candidates.append(key)
        for i in range(0, len(candidates), 500):
            batch = candidates[i:i + 500]
            with self.db.session() as s:
                known = set(s.exec(select(Clip.blob_key).where(col(Clip.blob_key).in_(batch))).all())
                known |= set(s.exec(select(Clip.thumb_key).where(col(Clip.thumb_key).in_(batch))).all())
            for key in batch:
                if stop.is_set():
                    return n
                if key not in known:
                    self.blobs.delete(key)
                    n += 1
        if stop.is_set():
            return n
        with self.db.session() as s:
            marker = _sweep_marker(s) or PluginState(plugin="core", account_id=None, key=SWEEP_KEY)
            marker.value = {"at": started}
            marker.updated_at = utcnow()
            s.add(marker)
            s.commit()
        if n:
            log.warning("removed %d orphaned files whose clip was never stored (interrupted upload)", n)
        return n

    def start_workers(self, count: int) -> threading.Event:
        from alarmcloud.pipeline import Worker

        stop = threading.Event()
        for i in range(count):
            w = Worker(self, name=f"serve-{i}")
            self._workers.append(w)
            t = threading.Thread(target=w.run_forever, args=(stop,), name=f"alarmcloud-worker-{i}", daemon=True)
            t.start()
            self._worker_threads.append(t)
        return stop

    def stop_workers(self, stop: threading.Event, timeout: float = WORKER_STOP_S) -> None:
        """Stop the workers of ``start_workers``: each finishes the job it holds (``timeout`` seconds for all).

        A job still running after that is left to its lease: the next worker to start takes it up again."""
        stop.set()
        self.wake_workers()
        deadline = time.monotonic() + timeout
        for t in self._worker_threads:
            t.join(max(0.0, deadline - time.monotonic()))
        busy = [t.name for t in self._worker_threads if t.is_alive()]
        if busy:
            log.warning("stopping with %s still at a job after %.0f s: it runs again once its lease ends",
                        ", ".join(busy), timeout)
        self._worker_threads = [t for t in self._worker_threads if t.is_alive()]


# -------------------------------------------------------------------- core endpoints


async def health(request: Request) -> Response:
    """Readiness: database, object storage (S3) and plugin health checks."""
    app: AlarmCloud = request.app.state.alarmcloud
    checks: dict[str, bool] = {}
    try:
        await app.db.run(lambda s: s.exec(select(1)).one())
        checks["database"] = True
    except Exception:
        checks["database"] = False
    if app.blobs.shared:  # an object store (S3): one listing request; local disk has nothing to check
        try:
            await anyio.to_thread.run_sync(app.blobs.check)
            checks["storage"] = True
        except Exception:
            checks["storage"] = False
    for batch in await app.plugins.call_each("health_checks", app=app):
        for hc in batch or ():
            try:
                ok = hc.check()
                if asyncio.iscoroutine(ok):
                    ok = await ok
                checks[hc.name] = bool(ok)
            except Exception:
                checks[hc.name] = False
    ok = all(checks.values())
    return JSONResponse({"status": "ok" if ok else "degraded", "checks": checks}, status_code=200 if ok else 503)


async def plugins_status(request: Request) -> Response:
    """The plugin status table: installed / enabled / loaded / failed with the error."""
    app: AlarmCloud = request.app.state.alarmcloud
    return JSONResponse({"plugins": app.plugins.status_table()})


async def metrics(request: Request) -> Response:
    """Prometheus metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def me(request: Request) -> Response:
    """The caller's profile."""
    user = await auth.require_user(request)
    a = user.account
    return JSONResponse({"id": a.id, "email": a.email, "role": a.role, "owner_id": a.owner_id,
                         "restricted": a.restricted, "created_at": iso(a.created_at),
                         "notify_email": a.notify_email, "notify_only_real": a.notify_only_real,
                         "notify_email_picture": a.notify_email_picture,
                         "notify_cooldown_seconds": a.notify_cooldown_seconds,
                         "pending_email": a.pending_email, "csrf_token": user.csrf_token})


def api_routes() -> list[BaseRoute]:
    R = Route  # noqa: N806
    return [
        R("/api/v1/auth/register", auth.register, methods=["POST"]),
        R("/api/v1/auth/login", auth.login, methods=["POST"]),
        R("/api/v1/auth/logout", auth.logout, methods=["POST"]),
        R("/api/v1/me", me, methods=["GET"]),
        R("/api/v1/tokens", auth.list_tokens, methods=["GET"]),
        R("/api/v1/tokens", auth.create_token, methods=["POST"]),
        R("/api/v1/tokens/{token_id}", auth.revoke_token, methods=["DELETE"]),
        R("/api/v1/subusers", subusers.list_subusers, methods=["GET"]),
        R("/api/v1/subusers", subusers.create_subuser, methods=["POST"]),
        R("/api/v1/subusers/{subuser_id}", subusers.set_subuser_rights, methods=["PUT"]),
        R("/api/v1/subusers/{subuser_id}", subusers.delete_subuser, methods=["DELETE"]),
        R("/api/v1/camera-models", cameras.camera_models, methods=["GET"]),
        R("/api/v1/cameras", cameras.list_cameras, methods=["GET"]),
        R("/api/v1/cameras", cameras.create_camera, methods=["POST"]),
        R("/api/v1/cameras/{camera_id}", cameras.get_camera, methods=["GET"]),
        R("/api/v1/cameras/{camera_id}", cameras.update_camera, methods=["PATCH"]),
        R("/api/v1/cameras/{camera_id}", cameras.delete_camera, methods=["DELETE"]),
        R("/api/v1/cameras/{camera_id}/upload-credentials", cameras.upload_credentials, methods=["POST"]),
        R("/api/v1/cameras/{camera_id}/detectors", cameras.get_detectors, methods=["GET"]),
        R("/api/v1/cameras/{camera_id}/detectors", cameras.put_detectors, methods=["PUT"]),
        R("/api/v1/cameras/{camera_id}/detectors/{detector}/scores", tuning.threshold_scores, methods=["GET"]),
        R("/api/v1/cameras/{camera_id}/actions", cameras.camera_action, methods=["POST"]),
        R("/api/v1/cameras/{camera_id}/live", cameras.live, methods=["GET"]),
        R("/api/v1/cameras/{camera_id}/snapshot", cameras.snapshot, methods=["GET"]),
        R("/api/v1/cameras/{camera_id}/setup", cameras.setup_upload, methods=["POST"]),
        R("/api/v1/cameras/{camera_id}/rejections", cameras.rejections, methods=["GET"]),
        R("/api/v1/cameras/{camera_id}/view/dismiss", cameras.dismiss_view, methods=["POST"]),
        R("/api/v1/events", eventsapi.list_events, methods=["GET"]),
        R("/api/v1/events/download", download.download_events, methods=["POST"]),
        R("/api/v1/downloads/{link_id}", download.fetch_link, methods=["GET", "HEAD"]),
        R("/api/v1/events/{event_id}", eventsapi.get_event, methods=["GET"]),
        R("/api/v1/events/{event_id}", eventsapi.update_event, methods=["PATCH"]),
        R("/api/v1/events/{event_id}", eventsapi.delete_event, methods=["DELETE"]),
        R("/api/v1/events/{event_id}/video", eventsapi.video, methods=["GET", "HEAD"]),
        R("/api/v1/events/{event_id}/thumbnail", eventsapi.thumbnail, methods=["GET"]),
        R("/api/v1/events/{event_id}/feedback", eventsapi.feedback, methods=["POST"]),
        R("/api/v1/series", eventsapi.list_series, methods=["GET"]),
        R("/api/v1/cases", cases.cases, methods=["GET", "POST"]),
        R("/api/v1/cases/{case_id}", cases.one_case, methods=["GET", "PATCH", "DELETE"]),
        R("/api/v1/cases/{case_id}/events", cases.case_events, methods=["POST"]),
        R("/api/v1/cases/{case_id}/events/{event_id}", cases.case_event, methods=["DELETE"]),
        R("/api/v1/cases/{case_id}/download", cases.download_case, methods=["GET"]),
        R("/api/v1/cases/{case_id}/share", cases.case_share, methods=["POST", "DELETE"]),
        R("/api/v1/shared-cases/{token}", cases.download_shared, methods=["GET"]),
        R("/api/v1/plates", eventsapi.known_plates, methods=["GET", "POST"]),
        R("/api/v1/plates/{plate_id}", eventsapi.known_plate, methods=["PATCH", "DELETE"]),
        R("/api/v1/storage", storage.storage_status, methods=["GET"]),
        R("/api/v1/ingest/clips", ingest.ingest_http, methods=["POST"]),
        R("/-/health", health, methods=["GET"]),
        R("/-/plugins", plugins_status, methods=["GET"]),
        R("/metrics", metrics, methods=["GET"]),
    ]


#: seconds an idle keep-alive connection stays open (uvicorn's default is 5). Longer than the idle timeout of a
#: reverse proxy's upstream pool (nginx and most load balancers: 60 s) and than a client's pause between two requests,
#: so the server never closes a connection just as a request goes out on it (the client sees "connection reset").
KEEP_ALIVE_S = 75

#: core feature modules; each may define ``routes(core) -> list[BaseRoute]`` and ``MIDDLEWARE`` (a list)
FEATURE_MODULES = ["alarmcloud.oauth", "alarmcloud.privacy", "alarmcloud.webhooksapi", "alarmcloud.pushapi",
                   "alarmcloud.snooze", "alarmcloud.sessionsapi", "alarmcloud.offsiteapi", "alarmcloud.twofactor",
                   "alarmcloud.masks_apply", "alarmcloud.silence", "alarmcloud.clipaccess", "alarmcloud.web"]

#: extra route factories the core's own feature modules add (privacy, oauth, web UI): fn(app) -> routes
ROUTE_FACTORIES: list[Any] = []


def create_app(settings: Settings, plugins: PluginHost | None = None, run_migrations: bool = True,
               workers: int | None = None, extra_routes: Iterable[BaseRoute] = (), ftp: bool = False) -> Starlette:
    """Build the Starlette app for ``settings``; the lifespan migrates, starts workers and plugin hooks.

    With ``ftp`` the lifespan also starts the FTP(S) ingest server (``settings.ftp.port``), after the start-up
    sweep of interrupted uploads so the sweep can never remove a file an FTP upload is writing.
    """
    if run_migrations:
        db.migrate(settings.db_url)
    core = AlarmCloud(settings, plugins)
    routes: list[BaseRoute] = [*api_routes(), *extra_routes]
    feature_modules = [importlib.import_module(m) for m in FEATURE_MODULES if importlib.util.find_spec(m)]
    for mod in feature_modules:
        if hasattr(mod, "routes"):
            routes += mod.routes(core)
    for factory in ROUTE_FACTORIES:
        routes += factory(core)
    for owner, fn in core.plugins.impls("register_routes"):
        try:
            plugin_routes = fn(app=core) or []
        except Exception:
            log.exception("plugin %s failed to register routes", owner)
            continue
        routes.append(Mount(f"/plugins/{owner}", routes=list(plugin_routes)))
    routes.append(Route("/openapi.json", openapi.endpoint, methods=["GET"]))
    n_workers = settings.workers.count if workers is None else workers

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        core.loop = asyncio.get_running_loop()
        # staged uploads go before uploads are accepted; the blob sweep of a shared store lists the whole bucket
        # (minutes with millions of clips) and runs in the background below: its grace period spares new uploads
        sweep_later = core.blobs.shared
        await anyio.to_thread.run_sync(core.clean_staging if sweep_later else core.sweep_orphans)
        for mod in feature_modules:
            if hasattr(mod, "on_startup"):
                await anyio.to_thread.run_sync(mod.on_startup, core)
        ftp_server = None
        if ftp and settings.ftp.port:
            from alarmcloud.ftp import start_ftp_server

            ftp_server = await anyio.to_thread.run_sync(start_ftp_server, core)
        await core.plugins.call_each("startup", app=core)
        stop = core.start_workers(n_workers)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_background, core)
            tg.start_soon(_offsite_copies, core)
            if sweep_later:
                tg.start_soon(_sweep_shared_store, core)
            for mod in feature_modules:
                if hasattr(mod, "background"):
                    tg.start_soon(mod.background, core)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
        await anyio.to_thread.run_sync(core.stop_workers, stop)
        if ftp_server is not None:
            await anyio.to_thread.run_sync(ftp_server.stop)
        for mod in feature_modules:
            if hasattr(mod, "on_shutdown"):
                await anyio.to_thread.run_sync(mod.on_shutdown, core)
        await anyio.to_thread.run_sync(core.usage.flush)
        await core.plugins.call_each("shutdown", app=core)
        core.loop = None
        core.db.close()  # no connection of this server stays open (a stopped deployment can be copied at once)

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={
        ApiError: api_error_handler, HTTPException: http_error_handler, BlobStoreUnavailable: storage_error_handler,
        TwoFactorFirst: two_factor_first_handler, Exception: server_error_handler})
    app.state.alarmcloud = core
    for mw in MIDDLEWARE:
        app.add_middleware(mw)
    for mod in feature_modules:
        for mw in getattr(mod, "MIDDLEWARE", ()):
            app.add_middleware(mw)
    return app


async def two_factor_first_handler(request: Request, exc: Exception) -> Response:
    """A page asked for by someone who must set up two-step verification first: to the account page, where it is
    set up (``two_factor_required``)."""
    return RedirectResponse("/account?setup=two-factor#two-factor", status_code=303)


async def storage_error_handler(request: Request, exc: Exception) -> Response:
    """The object store is unreachable or refused: 503 (retry later); an upload was not stored."""
    log.error("%s %s: %s", request.method, request.url.path, exc)
    return error_response(503, "storage_unavailable", "clip storage is unavailable, try again later",
                          {"Retry-After": "30"})


#: middleware classes of the core (NUL characters) and those its feature modules add (access log)
MIDDLEWARE: list[Any] = [RefuseNul]


async def _background(core: AlarmCloud) -> None:
    """Outbox delivery and usage flushing while the server runs."""
    last_flush = 0.0
    while True:
        try:
            await anyio.to_thread.run_sync(notify.deliver_once, core)
            now = anyio.current_time()
            if now - last_flush > 30:
                await anyio.to_thread.run_sync(core.usage.flush)
                last_flush = now
        except Exception:
            log.exception("background task failed")
        await anyio.sleep(1.0)


async def _sweep_shared_store(core: AlarmCloud) -> None:
    """The orphan sweep of a shared store (S3) while the server serves, in a worker thread. A failure is logged
    (the next start sweeps again). At shutdown the task ends at once, leaving the thread to its listing request:
    the thread stops at the next key and writes no sweep marker."""
    stop = threading.Event()
    try:
        await anyio.to_thread.run_sync(core.sweep_blobs, stop, abandon_on_cancel=True)
    except Exception:
        log.exception("orphan sweep of the object store failed; the next start tries again")
    finally:
        stop.set()


async def _offsite_copies(core: AlarmCloud) -> None:
    """Off-site copies from the outbox, apart from notifications: a long upload never holds up an alarm.

    Switched off by the operator: the copies still waiting are skipped once and the loop ends (no polling). Else it
    copies while copies are due; when none is, it sleeps until the next one is due, at most a wait that doubles
    from ``offsite.IDLE_MIN_SECONDS`` to ``offsite.IDLE_MAX_SECONDS`` (copies queued by other processes are found
    within it), and a copy queued in this process wakes it at once."""
    from alarmcloud import offsite

    if not core.settings.offsite.enabled:
        try:
            await anyio.to_thread.run_sync(offsite.skip_waiting, core)
        except Exception:
            log.exception("off-site copies: could not skip the waiting copies")
        return
    waker = offsite.waker(core)
    waker.bind()
    idle = offsite.IDLE_MIN_SECONDS
    while True:
        try:
            due = await anyio.to_thread.run_sync(offsite.due_in, core)
            if due is not None and due <= 0:
                if await anyio.to_thread.run_sync(notify.deliver_once, core, 4, True):
                    idle = offsite.IDLE_MIN_SECONDS
                    continue  # copies went out: the next ones at once
                wait = offsite.IDLE_MIN_SECONDS  # claimed but none went out (failed, skipped): not again at once
            else:
                wait = idle if due is None else min(due, idle)
                idle = min(idle * 2, offsite.IDLE_MAX_SECONDS)
        except Exception:
            log.exception("off-site copies failed")
            wait = offsite.IDLE_MIN_SECONDS
        if await waker.wait(wait):
            idle = offsite.IDLE_MIN_SECONDS


_ = utcnow
