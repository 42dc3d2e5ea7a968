"""Blob stores: the contract every store keeps (run on local disk and on a real S3 server over loopback), the local
store's staging clean-up and cheap listing, and what the S3 store adds (key prefix, range reads, clear failures)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alarmcloud.blobstore import BlobStore, BlobStoreUnavailable, LocalBlobStore, S3BlobStore

from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, MotoS3, s3  # type: ignore[import-not-found]  # noqa: F401


def _s3_store(srv: MotoS3, bucket: str, staging: Path, **kw: Any) -> S3BlobStore:
    return S3BlobStore(bucket, staging, endpoint_url=srv.endpoint, region=REGION, access_key_id=ACCESS_KEY,
                       secret_access_key=SECRET_KEY, allow_http=True, **kw)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "blobs")
    else:
        srv: MotoS3 = request.getfixturevalue("s3")
        yield _s3_store(srv, srv.new_bucket(), tmp_path / "staging", key_prefix="deploy-1")


def _staged(store: BlobStore, name: str, data: bytes) -> Path:
    path = store.tmp_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- the contract (both stores)


def test_put_get_size_delete(store: BlobStore) -> None:
    staged = _staged(store, "upload-1", b"clip bytes")
    assert store.put_file("acc/cam/c1.mp4", staged) == 10
    assert not staged.exists()  # consumed: moved or uploaded, never left behind
    assert store.put_bytes("acc/cam/c1.jpg", b"jpeg") == 4
    assert store.size("acc/cam/c1.mp4") == 10
    assert store.exists("acc/cam/c1.jpg") and not store.exists("acc/cam/none.jpg")
    with store.open("acc/cam/c1.mp4") as fh:
        assert fh.read() == b"clip bytes"
    with pytest.raises(FileNotFoundError):
        store.size("acc/cam/none.mp4")
    with pytest.raises(FileNotFoundError):
        store.open("acc/cam/none.mp4")
    assert store.sizes(["acc/cam/c1.mp4", "acc/cam/none.mp4", "acc/cam/c1.jpg"]) == {
        "acc/cam/c1.mp4": 10, "acc/cam/none.mp4": None, "acc/cam/c1.jpg": 4}
    store.delete("acc/cam/c1.mp4")
    store.delete("acc/cam/c1.mp4")  # a missing key is no error
    assert sorted(store.keys()) == ["acc/cam/c1.jpg"]


def test_open_is_seekable(store: BlobStore) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    store.put_bytes("a/b/c.mp4", data)
    with store.open("a/b/c.mp4") as fh:
        assert fh.seek(0, os.SEEK_END) == len(data)
        fh.seek(1000)
        assert fh.read(24) == data[1000:1024]
        assert fh.tell() == 1024
        fh.seek(-10, os.SEEK_END)
        assert fh.read() == data[-10:]
        assert fh.read(5) == b""
        fh.seek(500_000)
        got = b"".join(iter(lambda: fh.read(64 * 1024), b""))
        assert got == data[500_000:]


def test_copy_leaves_the_source(store: BlobStore) -> None:
    store.put_bytes("a/b/c.mp4", b"video")
    assert store.copy("a/b/c.mp4", "training/rain/rain/c.mp4") == 5
    with store.open("training/rain/rain/c.mp4") as fh:
        assert fh.read() == b"video"
    assert store.exists("a/b/c.mp4")
    with pytest.raises(FileNotFoundError):
        store.copy("a/b/none.mp4", "x/y.mp4")
    assert not store.exists("x/y.mp4")


def test_keys_and_delete_prefix_stop_at_folder_boundaries(store: BlobStore) -> None:
    for key in ("acc1/cam/1.mp4", "acc1/cam/1.jpg", "acc10/cam/2.mp4", "exports/acc1/e.zip", "exports/acc10/f.zip"):
        store.put_bytes(key, b"x")
    assert sorted(store.keys("acc1")) == ["acc1/cam/1.jpg", "acc1/cam/1.mp4"]
    store.delete_prefix("acc1")
    store.delete_prefix("exports/acc1")
    assert sorted(store.keys()) == ["acc10/cam/2.mp4", "exports/acc10/f.zip"]
    store.delete_prefix("nobody")  # nothing there: no error


def test_keys_cannot_escape_the_store(store: BlobStore) -> None:
    for bad in ("../outside.mp4", "acc/../../outside.mp4", "/etc/passwd"):
        with pytest.raises(ValueError):
            store.put_bytes(bad, b"x")
    with pytest.raises(ValueError):
        store.delete_prefix("..")


def test_local_file_yields_the_blob_as_a_file(store: BlobStore) -> None:
    store.put_bytes("a/b/c.mp4", b"video")
    with store.local_file("a/b/c.mp4") as path:
        assert path.read_bytes() == b"video"
    assert store.exists("a/b/c.mp4")  # the stored blob stays
    with pytest.raises(FileNotFoundError), store.local_file("a/b/none.mp4"):
        pass


def test_clean_tmp_removes_staged_uploads_only(store: BlobStore) -> None:
    _staged(store, "half-upload", b"partial")
    ftp = store.tmp_path("ftp")
    (ftp / "session-1").mkdir(parents=True)
    (ftp / "session-1" / "clip.mp4").write_bytes(b"x")
    store.put_bytes("acc/cam/kept.mp4", b"kept")
    assert store.clean_tmp() == 2
    assert not store.tmp_path("half-upload").exists()
    assert ftp.is_dir() and not any(ftp.iterdir())  # the FTP staging root stays
    assert list(store.keys()) == ["acc/cam/kept.mp4"]


# ---------------------------------------------------------------- the local store


def test_put_file_is_a_move_and_keys_skip_staging(tmp_path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    staged = store.tmp_path("upload-1")
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_bytes(b"clip")
    assert store.put_file("acc/cam/c1.mp4", staged) == 4
    assert not staged.exists()
    store.tmp_path("half-upload").write_bytes(b"partial")
    assert list(store.keys()) == ["acc/cam/c1.mp4"]
    assert store.clean_tmp() == 1
    assert not store.tmp_path("half-upload").exists()


def test_local_file_of_the_local_store_is_the_blob_itself(tmp_path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    store.put_bytes("a/b/c.mp4", b"video")
    with store.local_file("a/b/c.mp4") as path:
        assert path == store.path("a/b/c.mp4")  # no copy
    assert path.exists()


def test_keys_changed_since_lists_only_touched_directories(tmp_path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    for key in ("a/old/1.mp4", "a/old/2.mp4", "a/new/3.mp4", "b/old/4.jpg"):
        store.put_bytes(key, b"x")
    past = time.time() - 7200
    for d in ("a/old", "b/old", "a/new"):
        os.utime(store.root / d, (past, past))
    cutoff = time.time() - 60
    store.put_bytes("a/new/5.mp4", b"y")  # a write renames into a/new: its mtime moves on
    assert sorted(store.keys_changed_since(cutoff)) == ["a/new/3.mp4", "a/new/5.mp4"]
    assert sorted(store.keys_changed_since(None)) == sorted(store.keys())


# ---------------------------------------------------------------- the S3 store


def test_s3_keys_live_under_the_key_prefix_and_never_outside(s3: MotoS3, tmp_path: Path) -> None:  # noqa: F811
    bucket = s3.new_bucket()
    s3.client.put_object(Bucket=bucket, Key="other-app/keep.bin", Body=b"not ours")
    s3.client.put_object(Bucket=bucket, Key="deploy-10/acc/x.mp4", Body=b"not ours either")
    store = _s3_store(s3, bucket, tmp_path / "staging", key_prefix="deploy-1")
    store.put_bytes("acc/cam/1.mp4", b"ours")
    assert s3.keys(bucket) == ["deploy-1/acc/cam/1.mp4", "deploy-10/acc/x.mp4", "other-app/keep.bin"]
    assert list(store.keys()) == ["acc/cam/1.mp4"]
    store.delete_prefix("acc")
    assert s3.keys(bucket) == ["deploy-10/acc/x.mp4", "other-app/keep.bin"]
    assert "other-app/keep.bin" not in set(store.keys_changed_since(None))


def test_s3_range_read_fetches_only_what_is_asked(s3: MotoS3, tmp_path: Path) -> None:  # noqa: F811
    """Serving 1 KiB of a clip costs one request for 1 KiB; streaming the rest takes few requests."""
    store = _s3_store(s3, s3.new_bucket(), tmp_path / "staging")
    data = os.urandom(5 * 1024 * 1024)
    store.put_bytes("a/b/c.mp4", data)
    with store.open("a/b/c.mp4") as fh:
        fh.seek(3_000_000)
        assert fh.read(1024) == data[3_000_000:3_001_024]
        assert fh.requests == 1 and fh.fetched == 1024  # type: ignore[attr-defined]
        fh.seek(0)
        got = b"".join(iter(lambda: fh.read(256 * 1024), b""))
        assert got == data
        assert fh.requests <= 8  # type: ignore[attr-defined]  # read-ahead grows to 8 MiB a request


def test_s3_big_file_goes_up_in_parts(s3: MotoS3, tmp_path: Path) -> None:  # noqa: F811
    bucket = s3.new_bucket()
    store = _s3_store(s3, bucket, tmp_path / "staging")
    data = os.urandom(17 * 1024 * 1024)
    staged = _staged(store, "big", data)
    assert store.put_file("a/b/big.mp4", staged) == len(data)
    assert not staged.exists()
    head = s3.client.head_object(Bucket=bucket, Key="a/b/big.mp4")
    assert head["ETag"].strip('"').endswith("-3")  # a multipart upload of three parts
    assert s3.read(bucket, "a/b/big.mp4") == data


def test_s3_changed_since_uses_last_modified(s3: MotoS3, tmp_path: Path) -> None:  # noqa: F811
    store = _s3_store(s3, s3.new_bucket(), tmp_path / "staging")
    store.put_bytes("a/b/1.mp4", b"x")
    store.put_bytes("a/b/2.jpg", b"y")
    assert sorted(store.keys_changed_since(None)) == ["a/b/1.mp4", "a/b/2.jpg"]
    assert list(store.keys_changed_since(time.time() + 3600)) == []
    assert sorted(store.keys_changed_since(time.time() - 3600)) == ["a/b/1.mp4", "a/b/2.jpg"]
    assert list(store.keys_changed_since(None, before=time.time() - 3600)) == []  # too new to be an orphan


def test_s3_missing_bucket_and_unreachable_server_fail_clearly(s3: MotoS3, tmp_path: Path) -> None:  # noqa: F811
    missing = _s3_store(s3, "no-such-bucket-here", tmp_path / "staging", max_retries=0)
    with pytest.raises(BlobStoreUnavailable, match="no-such-bucket-here"):
        missing.check()
    dead = S3BlobStore("bucket", tmp_path / "staging", endpoint_url="http://127.0.0.1:9", region=REGION,
                       access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, allow_http=True, max_retries=0,
                       timeout_seconds=5)
    with pytest.raises(BlobStoreUnavailable, match="storage.s3"):
        dead.check()
    with pytest.raises(BlobStoreUnavailable):
        dead.put_bytes("a/b/c.jpg", b"x")
    assert SECRET_KEY not in dead.describe()
