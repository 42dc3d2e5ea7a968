"""Local blob store: atomic puts, staging clean-up, and the cheap listing the start-up sweep relies on."""

from __future__ import annotations

import os
import time

from alarmcloud.blobstore import LocalBlobStore


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
