"""Deleting a clip, the detection write-back and the privacy-mask swap running at the same time on the same clips.

All three lock the clip row first (PostgreSQL; SQLite runs one write transaction at a time). Each forced
interleaving below holds one of them inside its transaction, after the lock, while another has done its reads and
goes for the lock; then it lets go. Afterwards nothing hangs, a masked clip shows no finding from its unmasked
video, a deleted clip leaves no file, row or finding behind, and the account's stored bytes are the sizes of the
files of its clips. The last test runs all three many times over with no forcing.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alarmcloud.testing import LiveServer, make_clip, settings_on, wait_for_lock_wait

from tests.test_privacy_masks import MASKS, H, W, bright_clip, bright_scene  # type: ignore[import-not-found]
from tests.test_privacy_masks_apply import GardenPlugin  # type: ignore[import-not-found]

BOTH_DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
MASK_WORKER = "mask-worker"
#: the longest any one step may take before the test calls it a hang
HANG = 60.0


@pytest.fixture(params=BOTH_DATABASES)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    with settings_on(request.param, tmp_path / "data", camera_networks=["127.0.0.0/8"]) as st:
        yield st


class Rig:
    """A server with the garden plate reader, no background workers or mask runner: the test runs the jobs."""

    def __init__(self, srv: LiveServer, tmp_path: Path) -> None:
        from alarmcloud import masks_apply, pipeline
        from alarmcloud.masks import masks_hash
        from alarmcloud.models import MaskJob

        from tests.conftest import Api  # type: ignore[import-not-found]

        self.srv = srv
        self.core: Any = srv.core
        masks_apply.on_shutdown(self.core)
        self.a = Api(srv.url).register(f"order{random.randrange(10**9)}@example.com")
        self.cam = self.a.camera("Street side")
        assert self.a.put(f"/api/v1/cameras/{self.cam['id']}/detectors", json={"garden": True}).status_code == 200
        self.creds = self.a.upload_credentials(self.cam["id"])
        self.upload = bright_clip(tmp_path / "garden.mp4")
        self.short = make_clip(tmp_path / "short.mp4", seconds=1, width=W, height=H, fps=10, scene=bright_scene)
        self.worker = pipeline.Worker(self.core, "detect")
        # the camera keeps no masks (its clips are stored unmasked); this job paints MASKS into them
        with self.core.db.session() as s:
            job = MaskJob(account_id=self.a.id, camera_id=self.cam["id"], masks=MASKS, masks_hash=masks_hash(MASKS),
                          total=0, state="running", worker=MASK_WORKER)
            s.add(job)
            s.commit()
            self.job = job

    @property
    def is_pg(self) -> bool:
        return not self.core.db.is_sqlite

    def new_clip(self, short: bool = False) -> str:
        r = self.a.upload(self.creds, self.short if short else self.upload)
        assert r.status_code == 201, r.text
        return str(r.json()["event_id"])

    def clip(self, clip_id: str) -> Any:
        from alarmcloud.models import Clip

        with self.core.db.session() as s:
            return s.get(Clip, clip_id)

    def swap(self, clip_id: str) -> bool | None:
        from alarmcloud import masks_apply

        clip = self.clip(clip_id)
        if clip is None:
            return None  # deleted before the swap began
        return masks_apply.mask_stored_clip(self.core, self.job, clip, MASK_WORKER)

    def delete(self, clip_id: str) -> int:
        return int(self.a.delete(f"/api/v1/events/{clip_id}").status_code)

    def detect(self) -> bool:
        return bool(self.worker.run_once())

    def wait_blocked(self) -> None:
        """Until a transaction waits for a row lock (PostgreSQL); SQLite: a moment (its writers queue at BEGIN)."""
        if not self.is_pg:
            time.sleep(0.3)
            return
        wait_for_lock_wait(self.core.db, HANG, "the second transaction never waited for the first")


@pytest.fixture
def rig(settings: Any, tmp_path: Path) -> Iterator[Rig]:
    plugin = GardenPlugin()
    from alarmcloud.plugins import PluginHost

    host = PluginHost({"cameras": ["instar"], "detectors": [], "integrations": []})
    host.register(plugin, "test:garden", "garden")
    with LiveServer(settings, plugins=host.load(), workers=0) as srv:
        yield Rig(srv, tmp_path)


class Op:
    """One of the three, run in a thread, with a point to park it before its locking transaction (``parked``) and a
    point to hold it inside that transaction, after the clip row lock (``holding``)."""

    #: the deletes in the order they were started: each one takes its hooks in that order (they run in the
    #: server's threads, so the hook cannot tell them apart by thread)
    deletes: list[Op] = []

    def __init__(self, name: str, fn: Callable[[], Any]) -> None:
        self.name, self.fn = name, fn
        self.kind = name.rstrip("0123456789")
        self.park, self.hold = False, False
        self.parked, self.go = threading.Event(), threading.Event()
        self.holding, self.let_go = threading.Event(), threading.Event()
        self.result: list[Any] = []
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"lock-order-{name}")

    def start(self) -> None:
        if self.kind == "delete":
            Op.deletes.append(self)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result.append(self.fn())
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.result.append(exc)

    def at_park(self) -> None:
        if self.park:
            self.park = False
            self.parked.set()
            assert self.go.wait(HANG), f"{self.name}: never let go on"

    def at_hold(self) -> None:
        if self.hold:
            self.hold = False
            self.holding.set()
            assert self.let_go.wait(HANG), f"{self.name}: never let go of the lock"

    def join(self) -> Any:
        self.thread.join(HANG)
        assert not self.thread.is_alive(), f"{self.name} hangs"
        assert len(self.result) == 1
        if isinstance(self.result[0], BaseException):
            raise self.result[0]
        return self.result[0]


def hook(monkeypatch: pytest.MonkeyPatch, rig: Rig, ops: dict[str, Op]) -> None:
    """Park and hold points of the three operations, each where its code really is."""
    from alarmcloud import jobs, masks_apply, pipeline, storage

    real_mask, real_drop = masks_apply.safe_mask, masks_apply._drop_masked_findings
    real_rows, real_analyse, real_complete = storage.delete_clip_rows, pipeline.analyze_file, jobs.complete

    def safe_mask(*args: Any, **kw: Any) -> Any:
        out = real_mask(*args, **kw)
        ops["swap"].at_park()  # re-encoded, the swap transaction next
        return out

    def drop(s: Any, clip: Any, masks: Any) -> None:
        real_drop(s, clip, masks)
        ops["swap"].at_hold()  # the clip row locked and about to point at the masked video

    def rows(s: Any, clip: Any) -> list[str]:
        op = Op.deletes.pop(0) if Op.deletes else Op("delete", lambda: None)  # (a clip evicted by an upload)
        if rig.is_pg:
            op.at_park()  # the clip read, its row lock next (SQLite: the write lock is already ours)
        keys = real_rows(s, clip)
        op.at_hold()
        return keys

    def analyse(*args: Any, **kw: Any) -> Any:
        out = real_analyse(*args, **kw)
        ops["detect"].at_park()  # the old video analysed, the write-back next
        return out

    def complete(s: Any, job_id: int, worker: str) -> bool:
        done = real_complete(s, job_id, worker)
        ops["detect"].at_hold()  # findings written, the clip row locked
        return done

    monkeypatch.setattr(masks_apply, "safe_mask", safe_mask)
    monkeypatch.setattr(masks_apply, "_drop_masked_findings", drop)
    monkeypatch.setattr(storage, "delete_clip_rows", rows)
    monkeypatch.setattr(pipeline, "analyze_file", analyse)
    monkeypatch.setattr(jobs, "complete", complete)


def interleave(rig: Rig, monkeypatch: pytest.MonkeyPatch, ops: dict[str, Op], first: str, second: str) -> None:
    """``second`` does its reads and parks; ``first`` takes the clip row and holds it; ``second`` goes for the lock
    and waits; ``first`` commits; both finish."""
    hook(monkeypatch, rig, ops)
    one, two = ops[first], ops[second]
    parks = two.park = two.kind != "delete" or rig.is_pg
    one.hold = True
    Op.deletes.clear()
    if parks:
        two.start()
        assert two.parked.wait(HANG), f"{second} did not get to its write"
    one.start()
    assert one.holding.wait(HANG), f"{first} did not get the clip"
    if parks:
        two.go.set()
    else:
        two.start()
    rig.wait_blocked()
    assert two.thread.is_alive(), f"{second} did not wait for {first}"
    one.let_go.set()
    one.join()
    two.join()


def make_ops(rig: Rig, clip_id: str, other: str | None = None) -> dict[str, Op]:
    """The three on ``clip_id``, and a second delete (of ``other``, else of the same clip)."""
    return {"swap": Op("swap", lambda: rig.swap(clip_id)), "delete": Op("delete", lambda: rig.delete(clip_id)),
            "detect": Op("detect", rig.detect), "delete2": Op("delete2", lambda: rig.delete(other or clip_id))}


def check(rig: Rig) -> None:
    """What must hold whatever ran in whichever order."""
    from alarmcloud.masks import masks_hash
    from alarmcloud.models import Clip, FindingRow, Job, Series
    from alarmcloud.storage import used_bytes
    from sqlmodel import select

    core = rig.core
    root = Path(core.blobs.root)
    with core.db.session() as s:
        clips = {c.id: c for c in s.exec(select(Clip).where(Clip.account_id == rig.a.id)).all()}
        findings = s.exec(select(FindingRow).where(FindingRow.account_id == rig.a.id)).all()
        job_clips = {j.clip_id for j in s.exec(select(Job).where(Job.account_id == rig.a.id)).all()}
        used = used_bytes(s, rig.a.id)
        series = {x.id: x.clip_count for x in s.exec(select(Series).where(Series.account_id == rig.a.id)).all()}
    # a deleted clip leaves no row that points at it, and no file
    assert {f.clip_id for f in findings} <= set(clips), "findings of a deleted clip"
    assert job_clips <= set(clips), "detection jobs of a deleted clip"
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".tmp" not in p.parts}
    keys = {k for c in clips.values() for k in (c.blob_key, c.thumb_key) if k}
    assert files == keys, f"files without a clip: {sorted(files - keys)}, clips without a file: {sorted(keys - files)}"
    assert not [p for p in root.glob(".tmp/**/*") if p.is_file()], "staged files left behind"
    # a series counts its clips, and goes with its last one
    assert series == {sid: sum(c.series_id == sid for c in clips.values()) for sid in series}
    assert all(series.values()) and {c.series_id for c in clips.values()} <= set(series)
    # a masked clip shows nothing the unmasked video showed in the masked area (the garden reader's plate)
    masked = {cid for cid, c in clips.items() if c.privacy_masks_hash == masks_hash(MASKS)}
    assert not [f for f in findings if f.clip_id in masked], "a finding from the unmasked video on a masked clip"
    assert all(not clips[cid].labels for cid in masked)
    # the account's stored bytes are the files of its clips
    sizes = {cid: (root / c.blob_key).stat().st_size for cid, c in clips.items()}
    assert all(clips[cid].size_bytes == n for cid, n in sizes.items())
    assert used == sum(sizes.values())
    assert rig.a.get("/api/v1/storage").json()["used_bytes"] == used


def findings_of(rig: Rig, clip_id: str) -> list[tuple[str, str | None]]:
    from alarmcloud.models import FindingRow
    from sqlmodel import select

    with rig.core.db.session() as s:
        return [(f.label, f.text) for f in s.exec(select(FindingRow).where(FindingRow.clip_id == clip_id)).all()]


def job_of(rig: Rig, clip_id: str) -> Any:
    from alarmcloud.models import Job
    from sqlmodel import select

    with rig.core.db.session() as s:
        return s.exec(select(Job).where(Job.clip_id == clip_id)).first()


@pytest.mark.parametrize("first", ["swap", "delete"])
def test_delete_and_mask_swap_on_the_same_clip(rig: Rig, monkeypatch: pytest.MonkeyPatch, first: str) -> None:
    clip_id = rig.new_clip()
    assert rig.detect()  # analysed unmasked: the plate in the masked area is among its findings
    assert ("plate", "B AB 123") in findings_of(rig, clip_id)
    old = rig.clip(clip_id)
    ops = make_ops(rig, clip_id)
    interleave(rig, monkeypatch, ops, first, "delete" if first == "swap" else "swap")
    assert ops["delete"].join() == 204
    assert ops["swap"].join() is True  # the job is still the worker's either way
    assert rig.clip(clip_id) is None and findings_of(rig, clip_id) == []
    assert not rig.core.blobs.path(old.blob_key).exists()
    check(rig)


@pytest.mark.parametrize("first", ["detect", "delete"])
def test_delete_and_detection_write_back_on_the_same_clip(rig: Rig, monkeypatch: pytest.MonkeyPatch,
                                                         first: str) -> None:
    clip_id = rig.new_clip()
    ops = make_ops(rig, clip_id)
    interleave(rig, monkeypatch, ops, first, "delete" if first == "detect" else "detect")
    assert ops["delete"].join() == 204
    assert ops["detect"].join() is True
    assert rig.clip(clip_id) is None and findings_of(rig, clip_id) == [] and job_of(rig, clip_id) is None
    assert not rig.detect()  # nothing left in the queue
    check(rig)


@pytest.mark.parametrize("first", ["swap", "detect"])
def test_mask_swap_and_detection_write_back_on_the_same_clip(rig: Rig, monkeypatch: pytest.MonkeyPatch,
                                                            first: str) -> None:
    clip_id = rig.new_clip()
    ops = make_ops(rig, clip_id)
    interleave(rig, monkeypatch, ops, first, "detect" if first == "swap" else "swap")
    assert ops["swap"].join() is True and ops["detect"].join() is True
    clip = rig.clip(clip_id)
    assert clip.privacy_masks_hash is not None and findings_of(rig, clip_id) == []
    job = job_of(rig, clip_id)
    if first == "swap":  # the write-back saw the new video: the clip is analysed again, no attempt counted
        assert (job.state, job.attempts, clip.status) == ("queued", 0, "pending")
        assert rig.detect()
        assert job_of(rig, clip_id).state == "done" and findings_of(rig, clip_id) == []
    else:  # written back first: the swap dropped the plate read in the masked area
        assert (job.state, clip.status, clip.labels) == ("done", "done", [])
    assert not rig.detect()
    check(rig)


def test_two_deletes_of_the_same_clip(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """A double click: the second delete finds the clip gone and changes nothing (its series keeps the other clip)."""
    clip_id, other = rig.new_clip(), rig.new_clip()
    ops = make_ops(rig, clip_id)
    interleave(rig, monkeypatch, ops, "delete", "delete2")
    assert ops["delete"].join() == 204
    assert ops["delete2"].join() in (204, 404)
    assert rig.clip(clip_id) is None and rig.clip(other) is not None
    check(rig)


def test_deletes_of_two_clips_of_one_series(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both clips of a series deleted at once: the series goes with the last one, whichever that is."""
    one, two = rig.new_clip(), rig.new_clip()
    assert rig.clip(one).series_id == rig.clip(two).series_id
    ops = make_ops(rig, one, other=two)
    interleave(rig, monkeypatch, ops, "delete", "delete2")
    assert ops["delete"].join() == ops["delete2"].join() == 204
    assert rig.clip(one) is None and rig.clip(two) is None
    check(rig)


def test_a_clip_deleted_before_its_swap_is_not_counted_as_failed(rig: Rig) -> None:
    """The job picked the clip, then it was deleted before the encoder opened its file: nothing to mask, no
    failure reported to the owner, nothing stored."""
    from alarmcloud import masks_apply
    from alarmcloud.models import MaskJob

    clip_id = rig.new_clip()
    picked = rig.clip(clip_id)
    assert rig.delete(clip_id) == 204
    assert masks_apply.mask_stored_clip(rig.core, rig.job, picked, MASK_WORKER) is True
    with rig.core.db.session() as s:
        job = s.get(MaskJob, rig.job.id)
        assert (job.done, job.failed, job.failures) == (0, 0, [])
    check(rig)


def test_a_thumbnail_that_cannot_be_stored_leaves_no_masked_video_behind(rig: Rig,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from alarmcloud.models import MaskJob

    clip_id = rig.new_clip()
    before = rig.clip(clip_id)

    def full(key: str, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rig.core.blobs, "put_bytes", full)
    assert rig.swap(clip_id) is True
    after = rig.clip(clip_id)
    assert (after.blob_key, after.thumb_key, after.privacy_masks_hash) == (before.blob_key, before.thumb_key, None)
    with rig.core.db.session() as s:
        job = s.get(MaskJob, rig.job.id)
        assert (job.done, job.failed, [f["clip_id"] for f in job.failures]) == (0, 1, [clip_id])
    check(rig)


def test_delete_detection_and_masks_at_once_many_rounds(rig: Rig) -> None:
    """No forcing: two detection workers, the mask swap and deletes on the same clips at the same time, round after
    round (all start together at a barrier, then random but seeded pauses)."""
    rng = random.Random(7)
    for _ in range(4):  # the forced tests above pin each interleaving; these rounds look for others
        race_round(rig, rng, [rig.new_clip(short=True) for _ in range(3)])


def race_round(rig: Rig, rng: random.Random, ids: list[str]) -> None:
    from alarmcloud import pipeline

    doomed = rng.sample(ids, 2)
    order = rng.sample(ids, len(ids))
    start, stop = threading.Barrier(5), threading.Event()

    def after(pause: float, fn: Callable[[], Any]) -> Callable[[], Any]:
        def _run() -> Any:
            start.wait(HANG)
            time.sleep(pause)
            return fn()
        return _run

    def detect(w: pipeline.Worker) -> int:
        n = 0
        while not stop.is_set():
            if w.run_once():
                n += 1
            else:
                stop.wait(0.1)  # an idle worker polls, as Worker.run_forever does
        return n

    def swap() -> list[bool | None]:
        return [rig.swap(cid) for cid in order]

    detectors = [Op(f"detect{i}", after(rng.uniform(0, 0.5), lambda w=pipeline.Worker(rig.core, f"detect-{i}"):
                                         detect(w))) for i in range(2)]
    others = [Op("swap", after(rng.uniform(0, 0.5), swap))]
    others += [Op(f"delete{i}", after(rng.uniform(0, 1.5), lambda c=c: rig.delete(c))) for i, c in enumerate(doomed)]
    for op in detectors + others:
        op.thread.start()
    swapped = others[0].join()  # True: the job went on (swapped, or the clip deleted meanwhile); None: gone before
    assert all(r is True or (r is None and cid in doomed) for r, cid in zip(swapped, order, strict=True)), swapped
    assert [op.join() for op in others[1:]] == [204, 204]
    stop.set()
    for op in detectors:
        op.join()
    while rig.detect():  # clips the swaps sent back for another look
        pass
    for cid in set(ids) - set(doomed):
        clip = rig.clip(cid)
        assert clip.privacy_masks_hash is not None and clip.status == "done", (cid, clip.status)
    assert all(rig.clip(cid) is None for cid in doomed)
    check(rig)
