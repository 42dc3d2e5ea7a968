"""Blob storage for clips, thumbnails and exports: an interface with a local-disk and an S3 implementation."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from alarmcloud.config import Settings


class BlobStoreUnavailable(OSError):
    """The object store could not be reached or refused the request (not a missing key): answered 503. An
    ``OSError``, like a failing disk: code that carries on without a file (an e-mail without its picture) does so."""


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


def _clean_staging(root: Path) -> int:
    """Remove what ``root`` holds (staged uploads left by a crash); folders in it (FTP staging) are emptied, kept."""
    n = 0
    if not root.is_dir():
        return 0
    for p in root.iterdir():
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
    return n


class BlobStore(ABC):
    """Keys are relative paths like ``<account>/<camera>/<clip>.mp4``.

    Uploads are staged as local files first (``tmp_path``, on a local disk under ``staging``) and handed over with
    ``put_file``; code that needs a stored blob as a local file (decoders) uses ``local_file``.
    """

    #: a local folder for staged uploads (cleaned at start-up by ``clean_tmp``)
    staging: Path
    #: several servers share the store (a blob may be written by another node at any time)
    shared: bool = False

    def tmp_path(self, name: str) -> Path:
        """A local path for staging an upload (for the local store on its filesystem, so the final move is a
        rename)."""
        return self.staging / name

    def clean_tmp(self) -> int:
        """Remove staged uploads left by a crash; returns how many."""
        return _clean_staging(self.staging)

    @contextlib.contextmanager
    def local_file(self, key: str) -> Iterator[Path]:
        """The blob as a local file for the duration of the ``with`` (a download for a remote store, removed
        after; FileNotFoundError when missing)."""
        tmp = self.tmp_path(f"read-{uuid.uuid4().hex}-{Path(key).name}")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.open(key) as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, 1024 * 1024)
            yield tmp
        finally:
            tmp.unlink(missing_ok=True)

    def copy(self, src: str, dst: str) -> int:
        """Store a copy of blob ``src`` as ``dst``; returns its size."""
        staged = self.tmp_path(f"copy-{uuid.uuid4().hex}")
        staged.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.local_file(src) as path:
                shutil.copyfile(path, staged)
            return self.put_file(dst, staged)
        finally:
            staged.unlink(missing_ok=True)

    def check(self) -> None:
        """Raise ``BlobStoreUnavailable`` (with what to fix) when the store cannot be used."""
        return None

    def describe(self) -> str:
        """Where blobs are stored, for start-up output (never a secret)."""
        return type(self).__name__

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

    def keys_changed_since(self, since: float | None, before: float | None = None) -> Iterator[str]:
        """Keys that may have been written after ``since`` (Unix time; None: every key). May yield more. A store
        that knows when each key was written leaves out those written after ``before``."""
        return self.keys()

    def sizes(self, keys: Iterable[str]) -> dict[str, int | None]:
        """The size of each key (None: missing)."""
        out: dict[str, int | None] = {}
        for key in keys:
            try:
                out[key] = self.size(key)
            except FileNotFoundError:
                out[key] = None
        return out

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
        self.staging = self.root / ".tmp"
        self.staging.mkdir(exist_ok=True)

    def _path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if self.root not in p.parents:
            raise ValueError("blob key escapes the store")
        return p

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

    @contextlib.contextmanager
    def local_file(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        yield path

    def describe(self) -> str:
        return f"local disk {self.root}"

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

    def keys_changed_since(self, since: float | None, before: float | None = None) -> Iterator[str]:
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
        n = _clean_staging(self.staging)
        for p in self.root.rglob("*.part"):
            p.unlink(missing_ok=True)
            n += 1
        return n


# -------------------------------------------------------------------- S3-compatible object storage

#: the first read after a seek fetches what was asked for; reads that go on from there fetch more at a time
_READ_AHEAD_MAX = 8 * 1024 * 1024
#: files larger than this are uploaded in parts of this size
_PART_SIZE = 8 * 1024 * 1024


def check_key(key: str) -> str:
    """A key (or prefix) must stay inside the store: relative, no empty, ``.`` or ``..`` segments."""
    if not key or key.startswith("/") or "\\" in key or any(p in ("", ".", "..") for p in key.split("/")):
        raise ValueError("blob key escapes the store")
    return key


class _RangeReader(io.RawIOBase):
    """A seekable reader of one object by HTTP range requests: nothing is fetched before the first read, a read
    after a seek fetches only what it asks for (a 1 KiB range costs 1 KiB), and reads that continue sequentially
    fetch growing blocks (up to 8 MiB) so streaming a whole clip takes few requests."""

    def __init__(self, blobs: S3BlobStore, key: str, size: int) -> None:
        super().__init__()
        self._blobs = blobs
        self._key = key
        self._size = size
        self._pos = 0
        self._buf = memoryview(b"")
        self._buf_start = 0
        self._next = -1  # where the previous fetch ended (a read from there continues sequentially)
        self._ahead = 0
        self.requests = 0  # range requests made and bytes they fetched (for tests and benchmarks)
        self.fetched = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            pos = offset
        elif whence == os.SEEK_CUR:
            pos = self._pos + offset
        elif whence == os.SEEK_END:
            pos = self._size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("read of a closed file")
        left = self._size - self._pos
        n = left if size is None or size < 0 else min(size, left)
        if n <= 0:
            return b""
        off = self._pos - self._buf_start
        if 0 <= off < len(self._buf):
            out = bytes(self._buf[off:off + n])
            self._pos += len(out)
            if len(out) == n:
                return out
            return out + self.read(n - len(out))
        if self._pos == self._next:
            self._ahead = min(max(self._ahead * 2, 256 * 1024), _READ_AHEAD_MAX)
        else:
            self._ahead = 0
        fetch = min(max(n, self._ahead), left)
        data = self._blobs._call(self._blobs._obstore.get_range, self._blobs.store, self._key, start=self._pos,
                                 length=fetch)
        self._buf = memoryview(data)
        self.requests += 1
        self.fetched += len(self._buf)
        self._buf_start = self._pos
        self._next = self._pos + len(self._buf)
        if len(self._buf) == 0:
            return b""
        out = bytes(self._buf[:n])
        self._pos += len(out)
        return out

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self.read(-1)

    def close(self) -> None:
        self._buf = memoryview(b"")
        super().close()


class S3BlobStore(BlobStore):
    """Objects in an S3-compatible bucket (AWS S3, Ceph RGW, Garage, SeaweedFS, ...), through obstore.

    Keys live under ``key_prefix`` in the bucket; a key can never reach outside it. Uploads are staged in the local
    folder ``staging`` and then sent (in parts for big files); an object appears only once complete, so a reader
    never sees a half file.
    """

    shared = True

    def __init__(self, bucket: str, staging: Path, *, endpoint_url: str | None = None, region: str | None = None,
                 key_prefix: str = "", access_key_id: str | None = None, secret_access_key: str | None = None,
                 session_token: str | None = None, allow_http: bool = False, virtual_hosted_style: bool = False,
                 timeout_seconds: float = 60.0, connect_timeout_seconds: float = 5.0, max_retries: int = 3) -> None:
        import obstore
        from obstore.store import S3Store

        self._obstore = obstore
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.key_prefix = key_prefix.strip("/")
        if self.key_prefix:
            check_key(self.key_prefix)
        config: dict[str, Any] = {"virtual_hosted_style_request": virtual_hosted_style}
        if endpoint_url:
            config["endpoint"] = endpoint_url
        if region:
            config["region"] = region
        if access_key_id:
            config["access_key_id"] = access_key_id
        if secret_access_key:
            config["secret_access_key"] = secret_access_key
        if session_token:
            config["session_token"] = session_token
        # values not given here come from the environment (AWS_ACCESS_KEY_ID, AWS_REGION, ...) or instance roles
        self.store = S3Store(
            bucket, prefix=self.key_prefix or None, config=config,  # type: ignore[arg-type]
            client_options={"allow_http": allow_http, "timeout": timedelta(seconds=timeout_seconds),
                            "connect_timeout": timedelta(seconds=connect_timeout_seconds)},
            retry_config={"max_retries": max_retries, "retry_timeout": timedelta(seconds=timeout_seconds),
                          "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=5),
                                      "base": 2}},
        )
        self.staging = Path(staging).resolve()
        self.staging.mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        where = self.endpoint_url or "AWS S3"
        prefix = f", key prefix {self.key_prefix}/" if self.key_prefix else ""
        return f"S3 bucket {self.bucket} at {where}{prefix}"

    def _call(self, fn: Any, *args: Any, _writing: bool = False, **kwargs: Any) -> Any:
        """Run one obstore call; a missing object stays FileNotFoundError, any other failure of the store (a
        missing bucket included) becomes ``BlobStoreUnavailable``."""
        from obstore.exceptions import BaseError, InvalidPathError

        try:
            return fn(*args, **kwargs)
        except FileNotFoundError as exc:
            if "NoSuchBucket" in str(exc) or _writing:  # a write never misses its key: the bucket is gone
                raise BlobStoreUnavailable(self._no_bucket()) from exc
            raise
        except InvalidPathError as exc:
            raise ValueError(f"invalid blob key: {exc}") from None
        except (BaseError, OSError) as exc:
            if "NoSuchBucket" in str(exc):
                raise BlobStoreUnavailable(self._no_bucket()) from exc
            raise BlobStoreUnavailable(f"object storage ({self.describe()}) failed: {first_line(exc)}") from exc

    def _no_bucket(self) -> str:
        return (f"bucket {self.bucket} does not exist at {self.endpoint_url or 'AWS S3'} (storage.s3.bucket; "
                "create it first)")

    def check(self) -> None:
        """One listing request: fails when the endpoint is unreachable, the bucket missing or access denied."""
        try:
            self._call(lambda: next(iter(self._obstore.list(self.store, None, chunk_size=1)), None))
        except BlobStoreUnavailable as exc:
            if "does not exist" in str(exc):
                raise
            raise BlobStoreUnavailable(f"{exc} (check storage.s3: endpoint_url, region, the credentials and that "
                                       "the bucket exists)") from exc.__cause__

    def put_file(self, key: str, src: Path) -> int:
        check_key(key)
        size = Path(src).stat().st_size
        self._call(self._obstore.put, self.store, key, Path(src), use_multipart=size > _PART_SIZE,
                   chunk_size=_PART_SIZE, max_concurrency=4, _writing=True)
        Path(src).unlink(missing_ok=True)
        return size

    def put_bytes(self, key: str, data: bytes) -> int:
        check_key(key)
        self._call(self._obstore.put, self.store, key, data, use_multipart=False, _writing=True)
        return len(data)

    def open(self, key: str) -> BinaryIO:
        return _RangeReader(self, key, self.size(key))  # type: ignore[return-value]

    def size(self, key: str) -> int:
        check_key(key)
        return int(self._call(self._obstore.head, self.store, key)["size"])

    def copy(self, src: str, dst: str) -> int:
        """A copy made by the server (nothing is downloaded)."""
        check_key(src)
        check_key(dst)
        self._call(self._obstore.copy, self.store, src, dst)
        return self.size(dst)

    def sizes(self, keys: Iterable[str]) -> dict[str, int | None]:
        """One HEAD request per key, 16 at a time (a bulk download of 500 clips does not wait for 500 in a row)."""
        from concurrent.futures import ThreadPoolExecutor

        todo = list(dict.fromkeys(keys))
        if len(todo) < 2:
            return super().sizes(todo)
        with ThreadPoolExecutor(max_workers=min(16, len(todo))) as pool:
            return dict(zip(todo, pool.map(lambda k: super(S3BlobStore, self).sizes([k])[k], todo), strict=True))

    def delete(self, key: str) -> None:
        check_key(key)
        try:
            self._call(self._obstore.delete, self.store, key)
        except FileNotFoundError:
            pass

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        stream = self._call(self._obstore.list, self.store, check_key(prefix.rstrip("/")) if prefix else None,
                            chunk_size=1000)
        while True:
            try:
                batch = self._call(next, stream)
            except StopIteration:
                return
            yield from batch

    def delete_prefix(self, prefix: str) -> None:
        check_key(prefix.rstrip("/"))
        keys = [m["path"] for m in self._list(prefix)]
        for i in range(0, len(keys), 1000):  # one DeleteObjects request per 1000 keys
            self._call(self._obstore.delete, self.store, keys[i:i + 1000])

    def keys(self, prefix: str = "") -> Iterator[str]:
        for meta in self._list(prefix):
            yield meta["path"]

    def keys_changed_since(self, since: float | None, before: float | None = None) -> Iterator[str]:
        """One listing of the bucket (1000 keys a request), filtered by each object's last-modified time."""
        for meta in self._list(""):
            t = meta["last_modified"].timestamp()
            if (since is None or t >= since) and (before is None or t < before):
                yield meta["path"]


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def make_blob_store(settings: Settings) -> BlobStore:
    """The store ``settings.storage`` configures: local disk under the data dir (default) or an S3 bucket."""
    cfg = settings.storage
    if cfg.backend == "local":
        return LocalBlobStore(settings.blob_dir)
    s3 = cfg.s3
    assert s3.bucket, "validated by the settings"
    return S3BlobStore(
        s3.bucket, s3.staging_dir or settings.data_dir / "staging", endpoint_url=s3.endpoint_url, region=s3.region,
        key_prefix=s3.key_prefix, access_key_id=s3.access_key_id,
        secret_access_key=s3.secret_access_key.get_secret_value() if s3.secret_access_key else None,
        session_token=s3.session_token.get_secret_value() if s3.session_token else None,
        allow_http=s3.allow_http, virtual_hosted_style=s3.virtual_hosted_style,
        timeout_seconds=s3.timeout_seconds, connect_timeout_seconds=s3.connect_timeout_seconds,
        max_retries=s3.max_retries,
    )
