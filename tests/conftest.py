"""Shared fixtures for the cross-package tests: a real server on loopback, an API client, real MP4 clips.

Other test modules append fixtures below; keep this file append-only.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alarmcloud.testing import LiveServer, make_clip, test_settings

SHARED = Path(os.environ.get("ALARMCLOUD_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
CAMERA_MODEL = "IN-9008 Full HD"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def clip(clip_dir: Path) -> Path:
    """An 18 s camera-like clip (640x352, 15 fps, H.264, a mover walking) the INSTAR adapter accepts."""
    return make_clip(clip_dir / "A-alarm.mp4", seconds=18, width=640, height=352, fps=15)


@pytest.fixture(scope="session")
def make_test_clip(clip_dir: Path) -> Callable[..., Path]:
    """Make (and cache) a clip with the given ``make_clip`` arguments."""
    cache: dict[str, Path] = {}

    def _make(name: str, **kwargs: Any) -> Path:
        if name not in cache:
            kwargs.setdefault("width", 640)
            kwargs.setdefault("height", 352)
            cache[name] = make_clip(clip_dir / f"{name}.mp4", **kwargs)
        return cache[name]

    return _make


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    return test_settings(tmp_path / "data", camera_networks=["127.0.0.0/8"])


@pytest.fixture
def server(settings: Any) -> Iterator[LiveServer]:
    with LiveServer(settings) as srv:
        yield srv


#: a camera's upload is a request of its own (no customer's cookies, no kept connection); the TLS context httpx would
#: build for each one (reading the CA bundle, ~20 ms of CPU) is built once, though these requests are plain HTTP
_TLS = ssl.create_default_context()


class Api:
    """A customer using the JSON API over real HTTP (session cookie + CSRF header)."""

    def __init__(self, base: str) -> None:
        self.base = base
        # idle connections are dropped before uvicorn's 5 s keep-alive ends: reusing one the server is closing
        # at that moment fails with "connection reset" (a test that renders clips between requests idles that long)
        self.http = httpx.Client(base_url=base, timeout=60, limits=httpx.Limits(keepalive_expiry=2.0))
        self.csrf = ""
        self.id = ""
        self.email = ""

    def register(self, email: str, password: str = PASSWORD) -> Api:
        r = self.http.post("/api/v1/auth/register", json={"email": email, "password": password})
        assert r.status_code == 201, r.text
        return self.login(email, password)

    def login(self, email: str, password: str = PASSWORD) -> Api:
        r = self.http.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        self.csrf, self.id, self.email = r.json()["csrf_token"], r.json()["id"], email
        return self

    def req(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf, **kw.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.req("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.req("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.req("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> httpx.Response:
        return self.req("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.req("DELETE", path, **kw)

    def post_at_once(self, path: str, bodies: list[dict[str, Any]]) -> list[int]:
        """POST every body to ``path`` at the same moment, one thread each (httpx opens a connection per
        concurrent request); the status codes, sorted."""
        return self.posts_at_once([(path, body) for body in bodies])

    def posts_at_once(self, requests: list[tuple[str, dict[str, Any]]]) -> list[int]:
        """POST each (path, body) at the same moment, one thread each; the status codes, sorted."""
        codes: list[int] = []
        start = threading.Barrier(len(requests))

        def post(path: str, body: dict[str, Any]) -> None:
            start.wait()
            codes.append(self.post(path, json=body).status_code)

        threads = [threading.Thread(target=post, args=req) for req in requests]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sorted(codes)

    def camera(self, name: str = "Garage", model: str = CAMERA_MODEL, **extra: Any) -> dict[str, Any]:
        r = self.post("/api/v1/cameras", json={"name": name, "brand": "instar", "model": model, **extra})
        assert r.status_code == 201, r.text
        return r.json()

    def upload_credentials(self, camera_id: str) -> dict[str, Any]:
        r = self.post(f"/api/v1/cameras/{camera_id}/upload-credentials")
        assert r.status_code == 201, r.text
        return r.json()

    def upload(self, creds: dict[str, Any], path: Path, **headers: str) -> httpx.Response:
        auth = base64.b64encode(f"{creds['username']}:{creds['password']}".encode()).decode()
        return httpx.post(self.base + "/api/v1/ingest/clips", content=path.read_bytes(), timeout=60, verify=_TLS,
                          headers={"Authorization": f"Basic {auth}", "Content-Type": "video/mp4", **headers})

    def upload_analysed(self, creds: dict[str, Any], path: Path) -> dict[str, Any]:
        """Upload a clip (201 expected) and return its event once the pipeline has analysed it (status done)."""
        r = self.upload(creds, path)
        assert r.status_code == 201, r.text
        ev = self.wait_event(r.json()["event_id"])
        assert ev["status"] == "done", ev
        return ev

    def wait_event(self, event_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the pipeline has analysed the event."""
        deadline = time.monotonic() + timeout
        while True:
            ev = self.get(f"/api/v1/events/{event_id}").json()
            if ev.get("status") in ("done", "failed", "skipped") or time.monotonic() > deadline:
                return ev
            time.sleep(0.1)


@pytest.fixture
def api(server: LiveServer) -> Callable[[], Api]:
    """A factory of API clients against the live server."""
    return lambda: Api(server.url)


# ---------------------------------------------------------------- ingest (HTTP, FTP, crash) helpers


#: a fixture's params: SQLite, and a fresh database of a real PostgreSQL server (marked ``postgres``)
BOTH_DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def settings_on_both_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Settings on the database ``request.param`` names (``BOTH_DATABASES``), cameras on loopback allowed; a module
    runs every test on both with ``settings = pytest.fixture(params=BOTH_DATABASES, name="settings")(this)``."""
    from alarmcloud.testing import settings_on

    with settings_on(request.param, tmp_path / "data", camera_networks=["127.0.0.0/8"]) as st:
        yield st


def recorded_alarms(owner: Api, clip: Path, hours_ago: list[float], camera: str = "Gate") -> list[str]:
    """A new camera's alarms, the clip uploaded as recorded ``hours_ago``; their event ids in that order."""
    from datetime import UTC, datetime, timedelta

    cam = owner.camera(camera)
    creds = owner.upload_credentials(cam["id"])
    now = datetime.now(UTC).replace(microsecond=0)
    ids = []
    for h in hours_ago:
        r = owner.upload(creds, clip, **{"X-Recorded-At": (now - timedelta(hours=h)).isoformat()})
        assert r.status_code == 201, r.text
        ids.append(r.json()["event_id"])
    return ids


def set_account(core: Any, account_id: str, **values: Any) -> None:
    """Set columns of an account's row (a quota, a retention the operator chose)."""
    from alarmcloud.models import Account

    with core.db.session() as s:
        acc = s.get(Account, account_id)
        for k, v in values.items():
            setattr(acc, k, v)
        s.add(acc)
        s.commit()


def age_clip(core: Any, clip_id: str, days: float) -> None:
    """Make a clip look recorded and received ``days`` ago."""
    from datetime import UTC, datetime, timedelta

    from alarmcloud.models import Clip

    with core.db.session() as s:
        clip = s.get(Clip, clip_id)
        clip.started_at = clip.received_at = datetime.now(UTC) - timedelta(days=days)
        s.add(clip)
        s.commit()


def stored_files(core: Any) -> list[str]:
    """Every file under the blob store, staging included (relative paths)."""
    root = Path(core.blobs.root)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def row_counts(core: Any) -> dict[str, int]:
    """Clip, job and series rows in the database."""
    from alarmcloud.models import Clip, Job, Series
    from sqlmodel import func, select

    with core.db.session() as s:
        return {name: int(s.exec(select(func.count()).select_from(model)).one())
                for name, model in (("clips", Clip), ("jobs", Job), ("series", Series))}


def small_clip(path: Path, seconds: float = 3.0, **kw: Any) -> Path:
    """A quick 320x176 H.264 clip the INSTAR Full HD models accept."""
    kw.setdefault("width", 320)
    kw.setdefault("height", 176)
    kw.setdefault("fps", 10)
    return make_clip(path, seconds=seconds, **kw)


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost (cert.pem, key.pem)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def kit() -> Any:
    """The ingest helpers above (test modules cannot import conftest under --import-mode=importlib)."""
    from types import SimpleNamespace

    return SimpleNamespace(stored_files=stored_files, row_counts=row_counts, small_clip=small_clip,
                           self_signed_cert=self_signed_cert)


# ---------------------------------------------------------------- privacy helpers


def privacy_populate(api: Callable[[], Api], tmp_path: Path, email: str, subuser: str | None = None) -> dict[str, Any]:
    """An account with a camera, an uploaded clip, a token, a plate, feedback with a release and a sub-user."""
    from alarmcloud.models import FindingRow

    a = api().register(email)
    cam = a.camera("Garage")
    creds = a.upload_credentials(cam["id"])
    clip_path = small_clip(tmp_path / f"{a.id}.mp4")
    r = a.upload(creds, clip_path)
    assert r.status_code in (200, 201), r.text
    event_id = r.json()["event_id"]
    a.wait_event(event_id)
    tok = a.post("/api/v1/tokens", json={"name": "ha"}).json()
    assert a.post("/api/v1/plates", json={"text": "M-AB 123", "name": "Mine"}).status_code == 201
    r = a.post(f"/api/v1/events/{event_id}/feedback", json={"detector": "rain", "label": "rain", "release": True})
    assert r.status_code == 201, r.text
    sub = None
    if subuser:
        r = a.post("/api/v1/subusers", json={"email": subuser, "password": PASSWORD, "rights": {cam["id"]: "view"}})
        assert r.status_code == 201, r.text
        sub = r.json()["id"]
    return {"api": a, "camera": cam, "event_id": event_id, "token": tok["token"], "token_id": tok["id"],
            "subuser_id": sub, "finding_cls": FindingRow}


def privacy_scan(core: Any, needles: list[str]) -> list[str]:
    """Every table row and every blob / training file that mentions one of ``needles``."""
    import alarmcloud.privacy_erase as pe
    from sqlalchemy import select as sa_select
    from sqlmodel import SQLModel

    pe._load_all_tables()
    hits: list[str] = []
    with core.db.session() as s:
        for table in SQLModel.metadata.sorted_tables:
            for row in s.execute(sa_select(table)).mappings().all():
                text = repr(dict(row))
                for n in needles:
                    if n and n in text:
                        hits.append(f"{table.name}: {text[:200]}")
    root = Path(core.settings.data_dir)
    for p in root.rglob("*"):
        rel = str(p.relative_to(root))
        if any(n and n in rel for n in needles):
            hits.append(f"file: {rel}")
    return hits


def privacy_link_ifttt(core: Any, account_id: str) -> str:
    """Link the account to an IFTTT OAuth client (a grant, tokens, a pseudonym); returns the client id."""
    from alarmcloud import oauth

    with core.db.session() as s:
        client, _ = oauth.add_client(s, "IFTTT", "ifttt", ["https://ifttt.com/channels/x/authorize"],
                                     ["alarms:read"])
        oauth.issue_tokens(s, account_id, client.id, ["alarms:read"])
        return client.id


@pytest.fixture
def privacy() -> Any:
    """Privacy test helpers (populate an account, link it to IFTTT, scan every table and file for ids)."""
    from types import SimpleNamespace

    return SimpleNamespace(populate=privacy_populate, scan=privacy_scan, link_ifttt=privacy_link_ifttt)


@pytest.fixture
def api_at() -> Callable[[str], Api]:
    """API clients against any base URL (e.g. an ``alarmcloud serve`` subprocess)."""
    return Api


# ---------------------------------------------------------------- notification helpers


class Receiver:
    """A real HTTP server on loopback that records webhook deliveries and ntfy publishes (POST and PUT).

    ``script[path]`` lists the answers in turn (then 200): a status, or (status, error) for an ntfy-style JSON error
    (``{"code", "http", "error"}``); ``gate`` (a threading.Event) holds each request until it is set.
    """

    def __init__(self) -> None:
        import threading

        self.requests: list[dict[str, Any]] = []
        self.arrivals = 0  # requests that reached the handler (also those still held by the gate)
        self.script: dict[str, list[int | tuple[int, str]]] = {}
        self.gate: Any = None
        self._lock = threading.Lock()
        self._server: Any = None

    def __enter__(self) -> Receiver:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer._lock:
                    outer.arrivals += 1
                if outer.gate is not None:
                    outer.gate.wait(30)
                with outer._lock:
                    queue = outer.script.get(self.path, [])
                    answer = queue.pop(0) if queue else 200
                    status, error = answer if isinstance(answer, tuple) else (answer, "")
                    outer.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                           "body": body, "at": time.monotonic(), "status": status})
                reply = json.dumps({"code": status * 100 + 1, "http": status, "error": error}).encode() if error else b"ok"
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/redirected")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_PUT = do_POST  # noqa: N815 - ntfy attachments are PUT

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.gate is not None:
            self.gate.set()
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def received(self, path: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if path is None or r["path"] == path]

    def wait(self, count: int, path: str | None = None, timeout: float = 30.0) -> list[dict[str, Any]]:
        """At least ``count`` requests (to ``path``), or what arrived until the timeout."""
        deadline = time.monotonic() + timeout
        while len(self.received(path)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.received(path)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback (see ``Receiver``)."""
    with Receiver() as rcv:
        yield rcv


@pytest.fixture
def mailbox() -> Iterator[Any]:
    """A real SMTP server on loopback (``tests.test_notify.Mailbox``) for the tests of e-mail notifications."""
    from aiosmtpd.controller import Controller

    from tests.test_notify import Mailbox  # type: ignore[import-not-found]

    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()



def free_port() -> int:
    """A TCP port on loopback that nothing listens on now (for a server a test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def forget_offsite_copy(core: Any, clip_id: str) -> None:
    """As if the clip's off-site copy had been made elsewhere before: a backfill queues it again."""
    from alarmcloud.models import Clip

    with core.db.session() as s:
        row = s.get(Clip, clip_id)
        assert row is not None
        row.offsite_copy = None
        s.add(row)
        s.commit()


def outbox_rows(core: Any, account_id: str, kind: str) -> list[Any]:
    """The person's outbox rows of one channel (``push``, ``telegram``, ...), oldest first."""
    from alarmcloud.models import Outbox
    from sqlmodel import select

    with core.db.session() as s:
        return list(s.exec(select(Outbox).where(Outbox.account_id == account_id, Outbox.kind == kind)
                           .order_by(Outbox.id)).all())  # type: ignore[arg-type]


def wait_outbox_state(core: Any, account_id: str, kind: str, state: str, timeout: float = 30.0) -> Any:
    """The person's newest row of the channel once it is in ``state`` (AssertionError with every row's state)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = outbox_rows(core, account_id, kind)
        if rows and rows[-1].state == state:
            return rows[-1]
        time.sleep(0.05)
    raise AssertionError(f"no {kind} row reached {state!r}: "
                         f"{[(r.state, r.last_error) for r in outbox_rows(core, account_id, kind)]}")
