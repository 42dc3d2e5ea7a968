"""Streamed ZIP files: members are written as their bytes come and handed on at once, never built in memory.

``zipfile`` writes to a non-seekable sink with data descriptors (ZIP64 where needed), so nothing is ever seeked
back; a caller yields the pieces of :func:`zip_stream` to the client (or to a file) as they come.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
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


# ---------------------------------------------------------------- ZIPs whose every byte is known in advance

_LOCAL, _DESCRIPTOR, _CENTRAL = 0x04034B50, 0x08074B50, 0x02014B50
_END64, _LOCATOR64, _END = 0x06064B50, 0x07064B50, 0x06054B50
_FLAGS = 0x0008 | 0x0800  # sizes and CRC in a data descriptor after the data; UTF-8 names
_VERSION = 45  # ZIP64
_MAX32 = 0xFFFFFFFF


@dataclass(frozen=True)
class SizedMember:
    """A member whose size is known before it is written: a name, a size and a function opening its bytes."""

    name: str
    size: int
    open: Callable[[], BinaryIO]


def _dos_time(when: datetime) -> tuple[int, int]:
    when = max(when, datetime(1980, 1, 1, tzinfo=when.tzinfo))
    return ((when.hour << 11) | (when.minute << 5) | (when.second // 2),
            ((when.year - 1980) << 9) | (when.month << 5) | when.day)


class SizedZip:
    """A stored (not compressed) ZIP64 of members of known size, laid out before a byte is read.

    Its length is known up front (a ``Content-Length``, a browser's progress bar), and any byte range of it can be
    produced again identically (a resumed download): the layout depends only on the names, the sizes and the time
    given. CRCs need the members' bytes: each is computed as its data is streamed, or, for a member wholly before a
    requested range, read again when the central directory at the end needs it.
    """

    def __init__(self, members: list[SizedMember], when: datetime, chunk: int = CHUNK) -> None:
        self.members = members
        self.chunk = chunk
        self._time, self._date = _dos_time(when)
        self._crc: dict[int, int] = {}
        self._names = [m.name.encode() for m in members]
        #: (offset, length, kind, member index) of each part, in order; kinds: head, data, tail, central
        self.parts: list[tuple[int, int, str, int]] = []
        self.offsets: list[int] = []
        pos = 0
        for i, (m, name) in enumerate(zip(members, self._names, strict=True)):
            self.offsets.append(pos)
            for kind, length in (("head", 30 + len(name) + 20), ("data", m.size), ("tail", 24)):
                self.parts.append((pos, length, kind, i))
                pos += length
        self._central_at = pos
        self._central_size = sum(46 + len(n) + 28 for n in self._names)
        self.parts.append((pos, self._central_size + 98, "central", -1))
        self.size = pos + self._central_size + 98

    def _head(self, i: int) -> bytes:
        name = self._names[i]
        return (struct.pack("<IHHHHHIIIHH", _LOCAL, _VERSION, _FLAGS, 0, self._time, self._date, 0, _MAX32, _MAX32,
                            len(name), 20) + name + struct.pack("<HHQQ", 1, 16, 0, 0))

    def _tail(self, i: int) -> bytes:
        size = self.members[i].size
        return struct.pack("<IIQQ", _DESCRIPTOR, self._crc_of(i), size, size)

    def _crc_of(self, i: int) -> int:
        if i not in self._crc:
            crc = 0
            for piece in self._read(i, 0):
                crc = zlib.crc32(piece, crc)
            self._crc[i] = crc
        return self._crc[i]

    def _central(self) -> bytes:
        out = []
        for i, (m, name) in enumerate(zip(self.members, self._names, strict=True)):
            out.append(struct.pack("<IHHHHHHIIIHHHHHII", _CENTRAL, _VERSION | (3 << 8), _VERSION, _FLAGS, 0,
                                   self._time, self._date, self._crc_of(i), _MAX32, _MAX32, len(name), 28, 0, 0, 0,
                                   0o100644 << 16, _MAX32) + name
                       + struct.pack("<HHQQQ", 1, 24, m.size, m.size, self.offsets[i]))
        n = len(self.members)
        end64 = self._central_at + self._central_size
        out.append(struct.pack("<IQHHIIQQQQ", _END64, 44, _VERSION | (3 << 8), _VERSION, 0, 0, n, n,
                               self._central_size, self._central_at))
        out.append(struct.pack("<IIQI", _LOCATOR64, 0, end64, 1))
        out.append(struct.pack("<IHHHHIIH", _END, 0, 0, min(n, 0xFFFF), min(n, 0xFFFF),
                               min(self._central_size, _MAX32), _MAX32, 0))
        return b"".join(out)

    def _read(self, i: int, skip: int) -> Iterator[bytes]:
        """Member ``i``'s bytes from ``skip`` on, checking that it still has the size it was laid out with."""
        m = self.members[i]
        left = m.size - skip
        with m.open() as fh:
            if skip:
                fh.seek(skip)
            while left > 0:
                piece = fh.read(min(self.chunk, left))
                if not piece:
                    break
                left -= len(piece)
                yield piece
            if left != 0 or fh.read(1):
                raise ValueError(f"{m.name}: its size changed since the archive was laid out")

    def _data(self, i: int, skip: int) -> Iterator[bytes]:
        """Member ``i``'s data from ``skip`` on; its CRC is computed on the way (the skipped bytes are read too)."""
        if i in self._crc or skip == 0:
            crc = 0
            for piece in self._read(i, skip):
                crc = zlib.crc32(piece, crc)
                yield piece
            self._crc.setdefault(i, crc)
        else:
            crc = 0
            for piece in self._read(i, 0):
                crc = zlib.crc32(piece, crc)
            self._crc[i] = crc
            yield from self._read(i, skip)

    def pieces(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The archive's bytes ``start`` to ``end`` (exclusive; None: to the end), in pieces of about ``chunk``."""
        end = self.size if end is None else min(end, self.size)
        for offset, length, kind, i in self.parts:
            if offset + length <= start or offset >= end:
                continue
            lo, hi = max(start - offset, 0), min(end - offset, length)
            if kind == "data":
                pos = lo
                for piece in self._data(i, lo):
                    if pos + len(piece) > hi:
                        piece = piece[:hi - pos]
                    if piece:
                        yield piece
                    pos += len(piece)
                    if pos >= hi:
                        break
            else:
                raw = self._head(i) if kind == "head" else self._tail(i) if kind == "tail" else self._central()
                yield raw[lo:hi]
