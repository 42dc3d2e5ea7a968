"""Access logging without persons: truncated IPs, scrubbed paths, batched rows, usage per subject and hour."""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from alarmcloud.models import AccessLog
from alarmcloud.netutil import truncate_ip

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from alarmcloud.app import AlarmCloud

log = logging.getLogger(__name__)

EMAIL_RE = re.compile(r"[^/@\s]+(@|%40)[^/@\s]+")
#: long opaque segments: tokens, hashes, ids; they become ``{id}`` (no secret and no id reaches the log)
TOKEN_RE = re.compile(r"(?<=/)[A-Za-z0-9_\-.~%+=]{20,}(?=/|$)")
IPV4_RE = re.compile(r"\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\b")
#: IPv6 candidates, compressed forms (``2001:db8::1``) included; ``ipaddress`` decides
IPV6_RE = re.compile(r"(?<![\w:])(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}(?![\w:])")
#: query strings of URLs in log text (API keys, signatures, tokens travel there)
URL_QUERY_RE = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#'\"]*)\?[^\s'\"]*")
BEARER_RE = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9_\-.~+/=]+", re.IGNORECASE)
#: this deployment's own tokens (API keys ``act_``, OAuth access ``aco_`` and refresh ``acr_`` tokens)
SECRET_TOKEN_RE = re.compile(r"\bac[tor]_[A-Za-z0-9_\-]{16,}")
#: Telegram bot tokens (``123456:AA…``), also inside Bot API URLs (``/bot<token>/sendMessage``)
TELEGRAM_TOKEN_RE = re.compile(r"\b(bot)?\d{3,20}:[A-Za-z0-9_\-]{30,}")
BATCH = 50
FLUSH_SECONDS = 2.0


def scrub_path(path: str) -> str:
    """Path without query string; e-mail addresses, tokens and long ids replaced by placeholders."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    path = EMAIL_RE.sub("{email}", path)
    path = TOKEN_RE.sub("{id}", path)
    return path[:300]


def scrub_text(text: str) -> str:
    """Log text with addresses truncated; e-mail addresses, tokens and URL query strings removed."""
    text = URL_QUERY_RE.sub(r"\1?{query}", text)
    text = BEARER_RE.sub(r"\1 {token}", text)
    text = SECRET_TOKEN_RE.sub("{token}", text)
    text = TELEGRAM_TOKEN_RE.sub(lambda m: (m.group(1) or "") + "{token}", text)
    text = EMAIL_RE.sub("{email}", text)
    text = IPV4_RE.sub(lambda m: truncate_ip(m.group(0)) if _valid_ip(m.group(0)) else m.group(0), text)
    return IPV6_RE.sub(lambda m: truncate_ip(m.group(0)) if _valid_ip(m.group(0)) else m.group(0), text)


def _valid_ip(s: str) -> bool:
    """An address that could be a person's (the bind-all addresses ``0.0.0.0`` and ``::`` are nobody's)."""
    import ipaddress

    try:
        return not ipaddress.ip_address(s).is_unspecified
    except ValueError:
        return False


#: uvicorn's fixed start-up lines; their arguments are the listening scheme, host and port
_SERVER_ADDRESS_LINES = frozenset({"Uvicorn running on %s://%s:%d (Press CTRL+C to quit)",
                                   "Uvicorn running on %s://[%s]:%d (Press CTRL+C to quit)"})


def scrub_record(record: logging.LogRecord) -> None:
    """Scrub a log record's message and traceback in place (see ``scrub_text``)."""
    if record.name == "uvicorn.error" and record.msg in _SERVER_ADDRESS_LINES:
        return  # the address this server listens on is the operator's, not a person's; keep it readable
    try:
        msg = record.getMessage()
    except Exception:
        return
    clean = scrub_text(msg)
    if clean != msg:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        # formatted once here; handlers reuse ``exc_text`` (exception texts can quote SQL parameters)
        record.exc_text = scrub_text(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = scrub_text(record.exc_text)


class ScrubFilter(logging.Filter):
    """A logging filter that removes e-mail addresses, tokens and full IP addresses from records."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


def install_record_scrubber() -> None:
    """Scrub every record of the process when it is created, whatever logger or handler it goes to.

    A filter on the ``alarmcloud`` logger alone would miss its children (``alarmcloud.ftp``) and libraries such as
    pyftpdlib and httpx: filters of a parent logger do not apply to records that propagate to it.
    """
    current = logging.getLogRecordFactory()
    if getattr(current, "alarmcloud_scrubs", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        scrub_record(record)
        return record

    factory.alarmcloud_scrubs = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def configure_logging() -> None:
    """uvicorn's access log off (it writes full IPs and query strings); every log record scrubbed."""
    install_record_scrubber()
    access = logging.getLogger("uvicorn.access")
    access.disabled = True
    access.propagate = False
    access.handlers = []
    err = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, ScrubFilter) for f in err.filters):
        err.addFilter(ScrubFilter())
    root = logging.getLogger("alarmcloud")
    if not any(isinstance(f, ScrubFilter) for f in root.filters):
        root.addFilter(ScrubFilter())


class AccessLogWriter:
    """Buffers access rows in memory (already anonymous) and writes them in batches from a thread."""

    def __init__(self, core: AlarmCloud) -> None:
        self.core = core
        self._lock = threading.Lock()
        self._rows: list[AccessLog] = []
        self._last = time.monotonic()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alarmcloud-accesslog", daemon=True)
        self._thread.start()

    def add(self, row: AccessLog) -> None:
        with self._lock:
            self._rows.append(row)
            if len(self._rows) >= BATCH:
                self._wake.set()

    def flush(self) -> int:
        with self._lock:
            rows, self._rows = self._rows, []
        if rows:
            with self.core.db.session() as s:
                s.add_all(rows)
                s.commit()
        self.core.usage.flush()
        return len(rows)

    def close(self) -> None:
        """Stop the thread and write what is buffered (the server stops: nothing of it may touch the database
        later)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            if self._stop.is_set():
                return  # close() writes the rest
            try:
                self.flush()
            except Exception:
                log.exception("writing the access log failed")


def writer_for(core: AlarmCloud) -> AccessLogWriter:
    w = core.extra.get("privacy.access_log")
    if w is None:
        w = core.extra.setdefault("privacy.access_log", AccessLogWriter(core))
    return w  # type: ignore[no-any-return]


class AccessLogMiddleware:
    """Pure ASGI: counts bytes out, times the request, writes an anonymous row and feeds usage."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._configured = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._configured:  # after uvicorn's dictConfig, which re-enables its access logger
            configure_logging()
            self._configured = True
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # truncate before anything else touches the address
        client = scope.get("client")
        prefix = truncate_ip(client[0] if client else None)
        start = time.perf_counter()
        state: dict[str, Any] = {"status": 500, "bytes": 0, "bytes_in": 0}

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        async def _receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["bytes_in"] += len(message.get("body", b""))
            return message

        try:
            await self.app(scope, _receive, _send)
        finally:
            self._record(scope, prefix, state, start)

    def _record(self, scope: Scope, prefix: str, state: dict[str, Any], start: float) -> None:
        app = scope.get("app")
        core = getattr(getattr(app, "state", None), "alarmcloud", None)
        if core is None:
            return
        try:
            row = AccessLog(at=datetime.now(UTC), ip_prefix=prefix, method=scope.get("method", "")[:10],
                            path=scrub_path(scope.get("path", "")), status=int(state["status"]),
                            bytes_out=int(state["bytes"]),
                            duration_ms=int((time.perf_counter() - start) * 1000))
            writer_for(core).add(row)
            user = (scope.get("state") or {}).get("user")
            if user is not None:
                subject = f"token:{user.token_id}" if user.token_id else f"account:{user.id}"
                core.usage.add(account_id=user.tenant_id, subject=subject, bytes_in=state["bytes_in"],
                               bytes_out=state["bytes"])
        except Exception:
            log.exception("access log failed")
