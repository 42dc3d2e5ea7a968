"""The start-up sweep of orphaned objects in an S3 bucket runs while the server serves (a real S3 server on loopback,
moto, behind a proxy that holds the bucket listing for as long as the test likes): the server answers at once, the
sweep then removes an old orphan and keeps the clips, and a shutdown in the middle of the listing is prompt and
leaves the sweep to the next start."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from alarmcloud.testing import LiveServer, test_settings

from tests.s3server import CuttingProxy, MotoS3, s3, s3_storage  # type: ignore[import-not-found]  # noqa: F401

ORPHAN = "alarmcloud/acc/cam/orphanclip.mp4"


class ListingGate(CuttingProxy):
    """A TCP proxy in front of the S3 server that holds each request listing the whole store (ListObjectsV2 of the
    key prefix itself; the health check sends the same) until ``gate`` is set; other requests pass. ``held`` is
    set when one is held, ``answered`` when the answer to a released one has been passed back."""

    def __init__(self, upstream: str, whole: str) -> None:
        self.whole = whole
        self.gate, self.held, self.answered = threading.Event(), threading.Event(), threading.Event()
        super().__init__(upstream)

    def new_connection(self) -> threading.Event:
        return threading.Event()  # this connection carries a held listing whose answer is awaited

    def on_upward(self, data: bytes, conn: threading.Event) -> None:
        if self._lists_whole_store(data):
            if not self.gate.is_set():
                self.held.set()
                self.gate.wait(60)
            conn.set()

    def on_downward(self, data: bytes, conn: threading.Event) -> None:
        if conn.is_set():
            self.answered.set()

    def _lists_whole_store(self, data: bytes) -> bool:
        method, _, rest = data.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
        query = parse_qs(urlsplit(rest.partition(" ")[0]).query)
        return method == "GET" and query.get("list-type") == ["2"] and query.get("prefix", [""]) == [self.whole]

    def close(self) -> None:
        self.gate.set()
        super().close()


@pytest.fixture
def bucket_behind_gate(s3: MotoS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:  # noqa: F811
    """Settings of a server whose bucket (key prefix ``alarmcloud``) is reached through a ``ListingGate``, with
    an orphan in it (an object under a clip's key without a clip row) old enough to be swept."""
    from alarmcloud import app as app_module

    monkeypatch.setattr(app_module, "ORPHAN_GRACE_SECONDS", -60.0)  # the orphan put below counts as old
    bucket = s3.new_bucket()
    gate = ListingGate(s3.endpoint, "alarmcloud/")
    storage = s3_storage(gate.endpoint, bucket, key_prefix="alarmcloud", timeout_seconds=60.0)
    st = test_settings(tmp_path / "data", camera_networks=["127.0.0.0/8"], storage=storage)
    s3.client.put_object(Bucket=bucket, Key=ORPHAN, Body=b"never committed")
    try:
        yield st, bucket, gate
    finally:
        gate.close()


def _sweep_marker(core: Any) -> Any:
    from alarmcloud.models import PluginState
    from sqlmodel import select

    with core.db.session() as s:
        row = s.exec(select(PluginState).where(PluginState.plugin == "core", PluginState.key == "orphan_sweep")).first()
        return row.value if row else None


def _wait(cond: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_server_answers_while_the_bucket_is_swept_and_the_sweep_then_removes_orphans(
    bucket_behind_gate: Any,
    s3: MotoS3,  # noqa: F811
    tmp_path: Path,
    kit: Any,
) -> None:
    from tests.conftest import Api  # type: ignore[import-not-found]

    st, bucket, gate = bucket_behind_gate
    clip = kit.small_clip(tmp_path / "clip.mp4", seconds=2.0)
    with LiveServer(st, workers=0) as srv:  # start-up is over while the listing is still held
        core: Any = srv.core
        assert gate.held.wait(10), "the sweep lists the bucket"
        acc = Api(srv.url).register("sweep@example.com")
        r = acc.upload(acc.upload_credentials(acc.camera()["id"]), clip)
        assert r.status_code == 201, r.text  # a clip stored in the bucket while the sweep waits
        from alarmcloud.models import Clip

        with core.db.session() as s:
            stored = s.get(Clip, r.json()["event_id"])
            video = f"alarmcloud/{stored.blob_key}"
        assert video in s3.keys(bucket)
        assert ORPHAN in s3.keys(bucket) and _sweep_marker(core) is None
        gate.gate.set()
        assert _wait(lambda: ORPHAN not in s3.keys(bucket)), "the old orphan is removed"
        assert _wait(lambda: _sweep_marker(core) is not None), "the finished sweep is written down"
        assert video in s3.keys(bucket)  # the clip's video is kept (it is as old as the orphan here)
        assert httpx.get(srv.url + "/-/health", timeout=10).status_code == 200


def test_shutdown_during_the_sweep_is_prompt_and_the_next_start_sweeps_again(
    bucket_behind_gate: Any,
    s3: MotoS3,  # noqa: F811
) -> None:
    from tests.conftest import Api  # type: ignore[import-not-found]

    st, bucket, gate = bucket_behind_gate
    srv = LiveServer(st, workers=0).__enter__()
    core: Any = srv.core
    try:
        assert gate.held.wait(10), "the sweep lists the bucket"
        Api(srv.url).register("stop@example.com")  # answered while the sweep waits
    finally:
        t0 = time.monotonic()
        srv.__exit__(None, None, None)
    assert not srv.thread.is_alive() and time.monotonic() - t0 < 5, "the server stopped without waiting for it"
    gate.gate.set()  # the listing the stopped server sent is answered now
    assert gate.answered.wait(10)
    time.sleep(0.5)
    assert _sweep_marker(core) is None, "an interrupted sweep is not written down as done"
    assert ORPHAN in s3.keys(bucket)  # and it deleted nothing after the shutdown

    with LiveServer(st, workers=0) as again:
        assert _wait(lambda: ORPHAN not in s3.keys(bucket)), "the next start sweeps the bucket"
        assert _wait(lambda: _sweep_marker(again.core) is not None)
