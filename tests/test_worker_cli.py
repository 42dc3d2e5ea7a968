"""Worker robustness: numpy numbers from detectors, a detector that cannot load, and stopping worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alarmcloud import ClipFrames, Detector, DetectorSpec, Finding, FrameRequest, hookimpl
from alarmcloud.models import Clip, Job
from alarmcloud.plugins import PluginHost
from alarmcloud.scaleout import locked_source
from alarmcloud.testing import LiveServer, test_settings
from sqlmodel import select


class NumpyDetector(Detector):
    """Returns numpy scalars, as detectors built on numpy/onnxruntime naturally do."""

    name = "npdet"
    labels = ("thing",)
    threshold = 0.1

    def frame_request(self) -> FrameRequest:
        return FrameRequest(max_keyframes=1, width=64, color="gray")

    def analyze(self, frames: ClipFrames) -> list[Finding]:
        box = np.array([0.1, 0.2, 0.5, 0.6], dtype=np.float32)
        return [Finding("npdet", "thing", np.float32(0.9), time=np.float64(frames.keyframes[0].time),
                        box=tuple(box))]


class BrokenModel(Detector):
    name = "broken"
    labels = ("never",)

    def __init__(self) -> None:
        raise RuntimeError("model file is damaged")

    def frame_request(self) -> FrameRequest:
        return FrameRequest(max_keyframes=1)

    def analyze(self, frames: ClipFrames) -> list[Finding]:
        return []


class Plugin:
    @hookimpl
    def register_detectors(self) -> list[DetectorSpec]:
        return [DetectorSpec("npdet", lambda cfg: NumpyDetector(), ("thing",), "numpy numbers"),
                DetectorSpec("broken", lambda cfg: BrokenModel(), ("never",), "cannot load")]


def test_numpy_findings_stored_and_a_broken_detector_does_not_block_the_others(tmp_path: Path,
                                                                                make_test_clip: Any) -> None:
    from tests.conftest import Api  # type: ignore[import-not-found]

    host = PluginHost({"cameras": None, "detectors": [], "integrations": []})
    host.register(Plugin(), "test:np", "np")
    with LiveServer(test_settings(tmp_path / "data"), plugins=host.load()) as srv:
        a = Api(srv.url).register("numpy@example.com")
        cam = a.camera("Drive")
        assert a.put(f"/api/v1/cameras/{cam['id']}/detectors", json={"npdet": True, "broken": True}).status_code == 200
        r = a.upload(a.upload_credentials(cam["id"]), make_test_clip("np", seconds=4))
        assert r.status_code == 201, r.text
        ev = a.wait_event(r.json()["event_id"])
        page = a.http.get(f"/events/{ev['id']}").text  # the owner's clip page says which detector failed
    assert 'data-flag="detector_failed:broken"' in page and "The Broken detector could not look" in page
    assert ev["status"] == "done", ev
    assert [f["label"] for f in ev["findings"]] == ["thing"]
    assert ev["findings"][0]["score"] == pytest.approx(0.9)
    assert ev["findings"][0]["box"] == pytest.approx([0.1, 0.2, 0.5, 0.6])
    assert "detector_failed:broken" in ev["flags"]
    assert ev["verdict"] == "alarm"


class SlowDetector(Detector):
    """Takes 1.5 s a clip and says when it has begun."""

    name = "slow"
    labels = ("thing",)

    def __init__(self, started: threading.Event) -> None:
        self.started = started

    def frame_request(self) -> FrameRequest:
        return FrameRequest(max_keyframes=1, width=64, color="gray")

    def analyze(self, frames: ClipFrames) -> list[Finding]:
        self.started.set()
        time.sleep(1.5)
        return [Finding("slow", "thing", 0.9, time=frames.keyframes[0].time)]


class SlowPlugin:
    def __init__(self) -> None:
        self.started = threading.Event()

    @hookimpl
    def register_detectors(self) -> list[DetectorSpec]:
        return [DetectorSpec("slow", lambda cfg: SlowDetector(self.started), ("thing",), "takes its time")]


def test_stopping_the_server_lets_the_running_analysis_finish_and_leaves_no_connection_open(
        tmp_path: Path, make_test_clip: Any) -> None:
    """Stopped while a detector runs, ``serve`` finishes that job before it ends (the verdict is there, not left to
    the job's lease), and keeps no database connection: a stopped deployment can be copied or restored at once."""
    from tests.conftest import Api  # type: ignore[import-not-found]

    plugin = SlowPlugin()
    host = PluginHost({"cameras": None, "detectors": [], "integrations": []})
    host.register(plugin, "test:slow", "slow")
    st = test_settings(tmp_path / "data", database_url=None)
    with LiveServer(st, plugins=host.load()) as srv:
        a = Api(srv.url).register("stop@example.com")
        cam = a.camera("Drive")
        assert a.put(f"/api/v1/cameras/{cam['id']}/detectors", json={"slow": True}).status_code == 200
        r = a.upload(a.upload_credentials(cam["id"]), make_test_clip("slow", seconds=4))
        assert r.status_code == 201, r.text
        assert plugin.started.wait(60), "the detector never ran"
    with locked_source(st.data_dir / "alarmcloud.db"):  # fails if a connection of the stopped server is still open
        pass
    with srv.core.db.session() as s:  # type: ignore[attr-defined]
        clip = s.get(Clip, r.json()["event_id"])
        job = s.exec(select(Job).where(Job.clip_id == r.json()["event_id"])).one()
    assert job.state == "done" and clip is not None and clip.status == "done" and clip.verdict == "alarm"



def test_a_stopped_server_keeps_no_connection_and_no_thread_of_its_own(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A connection something still holds when the server stops (a session left open, a thread that outlived it) is
    closed all the same, and the access log's writer thread ends with the server: nothing of a stopped server opens
    its SQLite file again."""
    from tests.conftest import Api  # type: ignore[import-not-found]

    st = test_settings(tmp_path / "data", database_url=None)
    with LiveServer(st) as srv:
        Api(srv.url).register("left@example.com")  # a request: the access log's writer starts
        held = srv.core.db.engine.raw_connection()  # type: ignore[attr-defined]  # checked out, never returned
        held.cursor().execute("SELECT count(*) FROM accounts").fetchone()  # no transaction stays open
        writer = srv.core.extra["privacy.access_log"]  # type: ignore[attr-defined]
        assert writer._thread.is_alive()
    with locked_source(st.data_dir / "alarmcloud.db"):
        pass
    assert not writer._thread.is_alive()
    assert "closed 1 database connection(s) still in use at shutdown" in caplog.text
    with pytest.raises(Exception, match="closed"):
        held.cursor().execute("SELECT 1")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(x) for x in text]
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def _start_workers(tmp_path: Path, n: int) -> subprocess.Popen[bytes]:
    """``alarmcloud worker -n N`` on a data directory of its own (SQLite)."""
    env = {**os.environ, "ALARMCLOUD_DATA_DIR": str(tmp_path / "data"), "ALARMCLOUD_TEST_DATABASE_URL": ""}
    env.pop("ALARMCLOUD_DATABASE_URL", None)
    return subprocess.Popen([sys.executable, "-m", "alarmcloud.cli", "worker", "-n", str(n)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _assert_none_outlives(proc: subprocess.Popen[bytes], kids: Iterable[int]) -> None:
    """The parent ends, and every one of ``kids`` ends within 30 s after it."""
    assert proc.wait(timeout=60) is not None
    deadline = time.monotonic() + 30
    while any(_alive(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [k for k in kids if _alive(k)], "worker processes outlived their parent"


def test_worker_processes_stop_with_the_parent(tmp_path: Path) -> None:
    """SIGTERM to ``alarmcloud worker -n 2`` (systemd, docker stop) stops every worker process it started."""
    proc = _start_workers(tmp_path, 2)
    try:
        deadline = time.monotonic() + 60
        while len(kids := _children(proc.pid)) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "the worker processes did not start"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _assert_none_outlives(proc, kids)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_stop_while_the_workers_start_leaves_none_behind(tmp_path: Path) -> None:
    """SIGTERM while the workers are still being started (a service stopped right after its start): as soon as
    the parent has three children (multiprocessing's resource tracker, the first worker, which has its start data,
    and the second) of the four it starts. The parent stops every worker it started, none is left orphaned."""
    proc = _start_workers(tmp_path, 4)
    kids: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while len(kids) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, "the worker processes did not start"
            kids.update(_children(proc.pid))
        proc.send_signal(signal.SIGTERM)
        while proc.poll() is None and time.monotonic() < deadline:  # every child it starts meanwhile counts
            try:
                kids.update(_children(proc.pid))
            except (FileNotFoundError, ProcessLookupError):
                break
        _assert_none_outlives(proc, kids)
    finally:
        if proc.poll() is None:
            proc.kill()
        for k in kids:
            if _alive(k):
                os.kill(k, signal.SIGKILL)
