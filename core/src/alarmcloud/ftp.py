"""FTP/FTPS ingest server (placeholder until the pyftpdlib server lands)."""

from __future__ import annotations

from typing import Any


class _NoFtp:
    def stop(self) -> None:
        pass


def start_ftp_server(app: Any) -> _NoFtp:
    return _NoFtp()
