"""Blob storage for clips, thumbnails and exports: an interface with a local-disk implementation."""

from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in folder ``path`` durable (best effort: some filesystems refuse)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class BlobStore(ABC):
    """Keys are relative paths like ``<account>/<camera>/<clip>.mp4``."""

    @abstractmethod
    def put_file(self, key: str, src: Path) -> int:
        """Move ``src`` into the store atomically (a reader never sees a half file); returns its size."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> int:
        """Store bytes atomically."""

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """Open for reading (seekable)."""

    @abstractmethod
    def size(self, key: str) -> int:
        """Size in bytes; FileNotFoundError when missing."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete; missing keys are ignored."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> None:
        """Delete every key under a prefix."""

    @abstractmethod
    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every key under a prefix."""

    def keys_changed_since(self, since: float | None) -> Iterator[str]:
        """Keys that may have been written after ``since`` (Unix time; None: every key). May yield more."""
        return self.keys()

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
            return True
        except FileNotFoundError:
            return False


class LocalBlobStore(BlobStore):
    """Files under a root directory; writes go to a temp file in the same filesystem, then ``os.replace``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / ".tmp").mkdir(exist_ok=True)

    def _path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if self.root not in p.parents:
            raise ValueError("blob key escapes the store")
        return p

    def tmp_path(self, name: str) -> Path:
        """A path on the store's filesystem for staging uploads (so the final move is a rename)."""
        return self.root / ".tmp" / name

    def put_file(self, key: str, src: Path) -> int:
        dst = self._path(key)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(src, dst)
        except OSError:  # another filesystem: copy to a temp name beside the target, then rename
            tmp = dst.with_name(dst.name + ".part")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
            os.unlink(src)
        return dst.stat().st_size

    def put_bytes(self, key: str, data: bytes) -> int:
        dst = self._path(key)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, dst)
        return len(data)

    def open(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def path(self, key: str) -> Path:
        return self._path(key)

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass

    def delete_prefix(self, prefix: str) -> None:
        p = self._path(prefix)
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)

    def keys(self, prefix: str = "") -> Iterator[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.exists():
            return
        for path in base.rglob("*"):
            if path.is_file() and ".tmp" not in path.relative_to(self.root).parts:
                yield str(path.relative_to(self.root))

    def keys_changed_since(self, since: float | None) -> Iterator[str]:
        """Only directories whose entries changed after ``since`` are listed (a rename into a directory updates its
        mtime), so a start-up check after a clean run costs one ``stat`` per directory, not one per clip."""
        if since is None:
            yield from self.keys()
            return
        stack = [self.root]
        while stack:
            d = stack.pop()
            try:
                changed = d.stat().st_mtime >= since
                entries = list(os.scandir(d))
            except FileNotFoundError:
                continue
            for e in entries:
                if e.is_dir(follow_symlinks=False):
                    if e.name != ".tmp":
                        stack.append(Path(e.path))
                elif changed and e.is_file(follow_symlinks=False):
                    yield str(Path(e.path).relative_to(self.root))

    def clean_tmp(self) -> int:
        """Remove staged uploads left by a crash; returns how many."""
        n = 0
        for p in (self.root / ".tmp").iterdir():
            if p.is_dir() and not p.is_symlink():  # e.g. FTP staging: empty the sessions' dirs, keep the root
                for sub in p.iterdir():
                    if sub.is_dir() and not sub.is_symlink():
                        shutil.rmtree(sub, ignore_errors=True)
                    else:
                        sub.unlink(missing_ok=True)
                    n += 1
            else:
                p.unlink(missing_ok=True)
                n += 1
        for p in self.root.rglob("*.part"):
            p.unlink(missing_ok=True)
            n += 1
        return n
