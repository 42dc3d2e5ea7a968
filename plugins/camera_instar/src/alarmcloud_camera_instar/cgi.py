"""The camera's local CGI API: a tolerant reply parser and a client with Basic auth, timeouts, retries."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from types import TracebackType
from urllib.parse import quote, urlencode

import anyio
import httpx
from alarmcloud.contracts import CameraAccess, CameraError

from alarmcloud_camera_instar.catalog import Generation
from alarmcloud_camera_instar.config import InstarConfig

log = logging.getLogger(__name__)

Params = Sequence[tuple[str, str]]

#: hi3510 replies ``var m1_enable="1";``, WQHD replies ``enable[1]="1";`` and ends with ``response="200";``
_LINE = re.compile(r'(?:var\s+)?([\w\[\]]+)="([^"]*)";')

#: WQHD response codes (1440p CGI list) mapped to the adapter's error codes; 219 "unchanged" is a success
_WQHD_CODES: dict[str, tuple[str, str]] = {
    "201": ("invalid", "unknown parameter"),
    "202": ("invalid", "invalid value"),
    "203": ("unsupported", "not implemented"),
    "204": ("unsupported", "unknown command"),
    "205": ("refused", "configuration read error"),
    "206": ("refused", "configuration write error"),
    "207": ("refused", "unknown error"),
    "208": ("invalid", "missing parameter"),
    "209": ("refused", "operating system error"),
    "210": ("refused", "logic error"),
    "211": ("refused", "no permission"),
    "212": ("invalid", "invalid action"),
    "213": ("refused", "camera busy"),
    "214": ("refused", "internal error"),
    "215": ("unsupported", "function disabled"),
    "216": ("unsupported", "not available"),
    "217": ("unsupported", "not supported by this hardware"),
    "218": ("refused", "IP address blocked"),
    "301": ("invalid", "syntax error"),
    "302": ("refused", "upload failed"),
    "303": ("unreachable", "socket error"),
}
_WQHD_OK = {"200", "219"}


def response_codes(text: str) -> list[str]:
    """The ``response="NNN";`` codes of a WQHD reply, one per ``cmd=`` block."""
    return re.findall(r'response="(\d+)";', text)


#: WQHD codes meaning "this firmware does not have the command" (nothing was changed)
UNKNOWN_COMMAND = frozenset({"203", "204"})


def parse_reply(text: str) -> dict[str, str]:
    """All ``name="value";`` pairs of a reply (both generations); later duplicates win."""
    return {m.group(1): m.group(2) for m in _LINE.finditer(text)}


def check_set_reply(api: str, command: str, text: str) -> None:
    """Raise ``CameraError`` unless a SET reply reports success (``[Succeed]`` / ``response="200"``)."""
    if api == "hi3510":
        if "[Error]" in text or "[Succeed]" not in text:
            detail = text.strip().splitlines()[0] if text.strip() else "empty reply"
            raise CameraError("invalid", f"the camera rejected {command}: {detail[:80]}")
        return
    codes = response_codes(text)
    if not codes:
        raise CameraError("invalid", f"the camera sent no response code for {command}")
    for code in codes:
        if code not in _WQHD_OK:
            kind, meaning = _WQHD_CODES.get(code, ("refused", "unknown response code"))
            raise CameraError(kind, f"the camera answered {command} with {code} ({meaning})")


def base_url(camera: CameraAccess) -> str:
    """``http(s)://host[:port]`` of the camera's web server (IPv6 literals in brackets)."""
    if not camera.address:
        raise CameraError("unreachable", "the camera has no network address (P2P-only cameras cannot be controlled)")
    host = f"[{camera.address}]" if ":" in camera.address else camera.address
    scheme = "https" if camera.https else "http"
    default = 443 if camera.https else 80
    port = "" if camera.port in (None, default) else f":{camera.port}"
    return f"{scheme}://{host}{port}"


class CameraClient:
    """One camera's CGI endpoint; use ``async with`` so the connection pool is closed."""

    def __init__(
        self,
        camera: CameraAccess,
        generation: Generation,
        config: InstarConfig | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.camera = camera
        self.generation = generation
        self.config = config or InstarConfig()
        auth = httpx.BasicAuth(camera.username or "", camera.password or "")
        self._http = httpx.AsyncClient(
            base_url=base_url(camera),
            auth=auth,
            timeout=self.config.timeout_s,
            verify=self.config.verify_tls,
            transport=transport,
            follow_redirects=False,
        )

    async def __aenter__(self) -> CameraClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._http.aclose()

    async def get(self, path: str, params: Params = ()) -> httpx.Response:
        """GET with retries on network errors, timeouts and 5xx; 401/403 → refused, 404 → unsupported."""
        command = _command_name(params) or path
        attempts = self.config.retries + 1
        last = ""
        for attempt in range(attempts):
            if attempt:
                await anyio.sleep(self.config.retry_backoff_s * 2 ** (attempt - 1))
            try:
                response = await self._http.get(with_query(path, params))
            except httpx.TimeoutException:
                last = "timed out"
                continue
            except httpx.TransportError as exc:
                last = f"connection failed ({exc.__class__.__name__})"
                continue
            if response.status_code in (401, 403):
                raise CameraError("refused", "the camera refused the login (wrong user name or password?)")
            if response.status_code == 404:
                raise CameraError("unsupported", f"the camera does not know {command} (HTTP 404)")
            if response.status_code >= 500:
                last = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                raise CameraError("invalid", f"the camera answered {command} with HTTP {response.status_code}")
            return response
        log.info("camera %s: %s failed after %d attempts: %s", self.camera.id, command, attempts, last)
        raise CameraError("unreachable", f"the camera did not answer {command}: {last} ({attempts} attempts)")

    async def read(self, params: Params) -> dict[str, str]:
        """Run a GET command and parse its ``name="value";`` reply (WQHD: the response code must be 200)."""
        response = await self.get(self.generation.cgi_path, params)
        if self.generation.api == "wqhd":
            check_set_reply("wqhd", _command_name(params), response.text)
        return parse_reply(response.text)

    async def set(self, params: Params) -> None:
        """Run one SET request (possibly several ``cmd=`` blocks) and check every reply line."""
        response = await self.get(self.generation.cgi_path, params)
        check_set_reply(self.generation.api, _command_name(params), response.text)

    async def set_if_known(self, params: Params) -> bool:
        """Like ``set``, but False (instead of an error) when a WQHD camera does not know the command."""
        response = await self.get(self.generation.cgi_path, params)
        if self.generation.api == "wqhd" and UNKNOWN_COMMAND & set(response_codes(response.text)):
            return False
        check_set_reply(self.generation.api, _command_name(params), response.text)
        return True


def with_query(path: str, params: Params) -> str:
    """``path?query`` keeping the order of repeated keys (httpx's ``params=`` would group them by name)."""
    if not params:
        return path
    sep = "&" if "?" in path else "?"
    return path + sep + urlencode(list(params), quote_via=quote)


def _command_name(params: Params) -> str:
    return "+".join(v for k, v in params if k == "cmd")
