"""A real WebDAV server on loopback for the WebDAV off-site copies: WsgiDAV (a WebDAV server in Python, class 1 and
2) serving a temp folder under ``/remote.php/dav/files/anna/`` (where Nextcloud serves a user's files), with a user
name and password, on cheroot; like Nextcloud it refuses files named ``*.part``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port  # type: ignore[import-not-found]

USER, PASSWORD = "anna", "app-password-4711"
PREFIX = "/remote.php/dav/files/anna"


class DavServer:
    """``url`` is the folder the owner enters; ``root`` is where its files land."""

    def __init__(self, base: Path) -> None:
        from cheroot import wsgi
        from wsgidav.wsgidav_app import WsgiDAVApp

        self.root = base / "files"
        self.root.mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{PREFIX}/"
        app = WsgiDAVApp({
            "provider_mapping": {PREFIX: str(self.root)},
            "http_authenticator": {"domain_controller": None, "accept_basic": True, "accept_digest": False,
                                   "default_to_digest": False},
            "simple_dc": {"user_mapping": {"*": {USER: {"password": PASSWORD}}}},
            "verbose": 1, "logging": {"enable_loggers": []}, "lock_storage": True,
        })
        self._server = wsgi.Server(("127.0.0.1", self.port), _like_nextcloud(app))
        self._server.prepare()
        self._thread = threading.Thread(target=self._server.serve, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.stop()
        self._thread.join(10)

    def files(self) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())

    def read(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()


#: file name endings Nextcloud and ownCloud refuse to take (``isValidFileName``: their own uploads use them)
REFUSED_ENDINGS = (".part", ".filepart")


def _like_nextcloud(app: Any) -> Any:
    """Refuse what Nextcloud refuses: a PUT or MOVE to a name ending in ``.part`` or ``.filepart`` (400)."""

    def refusing(environ: dict[str, Any], start_response: Any) -> Any:
        names = [environ.get("PATH_INFO", "")] if environ["REQUEST_METHOD"] == "PUT" else \
            [environ.get("HTTP_DESTINATION", "")] if environ["REQUEST_METHOD"] == "MOVE" else []
        if any(n.rstrip("/").endswith(REFUSED_ENDINGS) for n in names):
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"File name is a reserved word"]
        return app(environ, start_response)

    return refusing


@pytest.fixture
def webdav(tmp_path: Path) -> Iterator[DavServer]:
    server = DavServer(tmp_path / "webdav")
    try:
        yield server
    finally:
        server.stop()
