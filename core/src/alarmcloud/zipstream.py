"""Streamed ZIP files: members are written as their bytes come and handed on at once, never built in memory.

``zipfile`` writes to a non-seekable sink with data descriptors (ZIP64 where needed), so nothing is ever seeked
back; a caller yields the pieces of :func:`zip_stream` to the client (or to a file) as they come.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

#: about this many bytes are handed on at a time
CHUNK = 1024 * 1024

#: a ZIP member: its name in the archive, and a function that yields its bytes (called when it is written)
Member = tuple[str, Callable[[], Iterable[bytes]]]


class ZipSink:
    """A non-seekable file for ``zipfile`` that keeps written bytes until they are taken."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, b: bytes) -> int:
        self.parts.append(bytes(b))
        self.size += len(b)
        return len(b)

    def flush(self) -> None:
        return None

    def take(self) -> bytes:
        data, self.parts, self.size = b"".join(self.parts), [], 0
        return data


def zip_stream(members: Iterable[Member], chunk: int = CHUNK) -> Iterator[bytes]:
    """The ZIP (stored, not compressed: clips are compressed already) of ``members``, piece by piece.

    ``members`` may be a generator: the next member is asked for only once the one before is written.
    Pieces are about ``chunk`` bytes (a member's source may yield larger pieces; they are handed on as they are).
    """
    sink = ZipSink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:  # type: ignore[arg-type]
        for name, source in members:
            with zf.open(name, "w", force_zip64=True) as dst:
                for piece in source():
                    dst.write(piece)
                    if sink.size >= chunk:
                        yield sink.take()
            if sink.size:
                yield sink.take()
    yield sink.take()


def file_pieces(open_file: Callable[[], BinaryIO], chunk: int = CHUNK) -> Callable[[], Iterator[bytes]]:
    """A member source that opens a file when the member is written and reads it in ``chunk`` pieces."""

    def _read() -> Iterator[bytes]:
        with open_file() as fh:
            while piece := fh.read(chunk):
                yield piece

    return _read


def text_pieces(pieces: Iterable[str], chunk: int = CHUNK) -> Iterator[bytes]:
    """UTF-8 bytes of ``pieces`` in blocks of ``chunk`` (many small strings make few ZIP writes)."""
    buf = bytearray()
    for piece in pieces:
        buf += piece.encode()
        while len(buf) >= chunk:
            yield bytes(buf[:chunk])
            del buf[:chunk]
    if buf:
        yield bytes(buf)
