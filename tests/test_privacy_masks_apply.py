"""Privacy masks applied to clips stored before the masks were set, and full-range (yuvj420p) camera video masked.

A durable job re-encodes each clip with the camera's current masks, swaps it in with one transaction and survives a
kill -9 of the server; clips already masked are left alone, a clip that cannot be re-encoded stays as it was.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from alarmcloud import ClipFrames, Detector, DetectorSpec, Finding, FrameRequest, hookimpl
from alarmcloud.testing import LiveServer, make_clip, settings_on, wait_for_lock_wait

from tests.test_privacy_masks import (  # type: ignore[import-not-found]
    MASKS,
    H,
    W,
    bright_clip,
    bright_scene,
    decoded,
    regions,
    setup_camera,
    stored_clip,
)

BOTH_DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BOTH_DATABASES)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    with settings_on(request.param, tmp_path / "data", camera_networks=["127.0.0.0/8"]) as st:
        yield st


def apply_url(cam: dict[str, Any]) -> str:
    return f"/api/v1/cameras/{cam['id']}/privacy-masks/apply"


def wait_job(a: Any, cam: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
    """Poll the progress route until the job is no longer queued or running."""
    deadline = time.monotonic() + timeout
    while True:
        r = a.get(apply_url(cam))
        assert r.status_code == 200, r.text
        info = r.json()
        if info["state"] not in ("queued", "running") or time.monotonic() > deadline:
            return info
        time.sleep(0.1)


def thumbnail_pixels(a: Any, event_id: str) -> np.ndarray:
    from PIL import Image

    r = a.get(f"/api/v1/events/{event_id}/thumbnail")
    assert r.status_code == 200, r.text
    return np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")).astype(np.int16)


def assert_masked(path: Path, original: Path) -> None:
    """The stored video: black inside the masks in every frame, the rest as before, same frames and size."""
    before, after = decoded(original), decoded(path)
    assert len(after) == len(before)
    inside, outside = regions(W, H)
    assert min(float(f[inside].mean()) for f in before) > 140  # the original really shows something there
    assert max(float(f[inside].max()) for f in after) <= 12
    diffs = [float(np.abs(m - o)[outside].mean()) for m, o in zip(after, before, strict=True)]
    assert max(diffs) < 4.0, diffs
    with av.open(str(path)) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.width, cc.height) == (W, H)


def test_apply_masks_paints_old_clips_and_their_thumbnails(api: Any, server: LiveServer, kit: Any,
                                                           tmp_path: Path) -> None:
    core: Any = server.core
    a, cam, creds = setup_camera(api, "apply@example.com", masks=None)
    upload = bright_clip(tmp_path / "old.mp4", audio=True)
    ids = []
    for _ in range(2):
        r = a.upload(creds, upload)
        assert r.status_code == 201, r.text
        ids.append(r.json()["event_id"])
    old_keys = {i: (stored_clip(core, i)[1].blob_key, stored_clip(core, i)[1].thumb_key) for i in ids}
    img = thumbnail_pixels(a, ids[0])
    assert img[regions(img.shape[1], img.shape[0], inset=4)[0]].mean() > 140  # the garden is in the thumbnail
    from alarmcloud.models import FindingRow

    assert a.wait_event(ids[0])["status"] == "done"  # the clip's own analysis will not replace these findings
    with core.db.session() as s:  # what a detector had read there: the neighbour's plate, and a car in the drive
        s.add(FindingRow(clip_id=ids[0], account_id=a.id, detector="plates", label="plate", score=0.9,
                         text="B AB 123", box=[0.7, 0.1, 0.8, 0.2]))
        s.add(FindingRow(clip_id=ids[0], account_id=a.id, detector="plates", label="car", score=0.8,
                         box=[0.1, 0.3, 0.4, 0.6]))
        s.commit()
    # the neighbour complains: masks are set; the stored clips still show the garden until the masks are applied
    assert a.patch(f"/api/v1/cameras/{cam['id']}", json={"privacy_masks": MASKS}).status_code == 200
    info = a.get(apply_url(cam)).json()
    assert info["state"] == "none" and info["pending_clips"] == 2
    r = a.post(apply_url(cam))
    assert r.status_code == 202, r.text
    assert r.json()["job_id"] and r.json()["total"] == 2
    info = wait_job(a, cam)
    assert (info["state"], info["total"], info["done"], info["failed"]) == ("done", 2, 2, 0), info
    assert info["pending_clips"] == 0 and info["job_id"] == r.json()["job_id"]
    root = Path(core.blobs.root)
    for i in ids:
        path, clip = stored_clip(core, i)
        old_video, old_thumb = old_keys[i]
        assert clip.blob_key != old_video and not (root / old_video).exists()  # the unmasked files are gone
        assert old_thumb and clip.thumb_key != old_thumb and not (root / old_thumb).exists()
        assert_masked(path, upload)
        assert a.get(f"/api/v1/events/{i}/video").content == path.read_bytes()
        img = thumbnail_pixels(a, i)
        t_inside, t_outside = regions(img.shape[1], img.shape[0], inset=4)
        assert img[t_inside].max() <= 25 and img[t_outside].mean() > 140
        assert clip.size_bytes == path.stat().st_size
    # the plate read in the masked area went with it; the finding outside stays
    assert [(f["label"], f.get("text")) for f in a.get(f"/api/v1/events/{ids[0]}").json()["findings"]] == [
        ("car", None)]
    assert stored_clip(core, ids[0])[1].labels == ["car"]
    # storage accounting follows the new files; nothing unmasked or staged is left in the blob store
    files = kit.stored_files(core)
    assert not [f for f in files if f.startswith(".tmp")], files
    assert sorted(f for f in files if f.endswith(".mp4")) == sorted(stored_clip(core, i)[1].blob_key for i in ids)
    assert all((root / f).read_bytes() != upload.read_bytes() for f in files)
    assert a.get("/api/v1/storage").json()["used_bytes"] == sum(stored_clip(core, i)[0].stat().st_size for i in ids)
    # asked again: nothing left to do
    r = a.post(apply_url(cam))
    assert r.status_code == 200 and r.json()["state"] == "done" and r.json()["total"] == 0, r.text


def test_clips_with_the_current_masks_are_left_alone_and_nothing_is_unmasked(api: Any, server: LiveServer,
                                                                              tmp_path: Path) -> None:
    core: Any = server.core
    a, cam, creds = setup_camera(api, "keep@example.com")
    upload = bright_clip(tmp_path / "k.mp4")
    masked_id = a.upload(creds, upload).json()["event_id"]  # masked at ingest
    masked_bytes = stored_clip(core, masked_id)[0].read_bytes()
    # masks cleared: a new clip is stored as it came, and asking to apply refuses (clips are never un-masked)
    assert a.patch(f"/api/v1/cameras/{cam['id']}", json={"privacy_masks": []}).status_code == 200
    plain_id = a.upload(creds, upload).json()["event_id"]
    r = a.post(apply_url(cam))
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "no_privacy_masks" and "no privacy masks" in r.json()["error"]["message"]
    assert stored_clip(core, masked_id)[0].read_bytes() == masked_bytes
    assert stored_clip(core, plain_id)[0].read_bytes() == upload.read_bytes()
    assert a.get(apply_url(cam)).json()["pending_clips"] == 0
    # the same masks again: only the clip stored without them is re-encoded
    assert a.patch(f"/api/v1/cameras/{cam['id']}", json={"privacy_masks": MASKS}).status_code == 200
    r = a.post(apply_url(cam))
    assert r.status_code == 202 and r.json()["total"] == 1, r.text
    info = wait_job(a, cam)
    assert (info["state"], info["done"], info["failed"]) == ("done", 1, 0), info
    assert stored_clip(core, masked_id)[0].read_bytes() == masked_bytes
    assert_masked(stored_clip(core, plain_id)[0], upload)


def test_a_clip_that_cannot_be_reencoded_stays_intact_and_is_reported(api: Any, server: LiveServer, kit: Any,
                                                                      tmp_path: Path) -> None:
    core: Any = server.core
    a, cam, creds = setup_camera(api, "broken@example.com", masks=None)
    upload = bright_clip(tmp_path / "b.mp4")
    good_id, bad_id = (a.upload(creds, upload).json()["event_id"] for _ in range(2))
    bad_path, bad_before = stored_clip(core, bad_id)
    garbage = np.random.default_rng(3).integers(0, 256, 40_000, dtype=np.uint8).tobytes()
    bad_path.write_bytes(garbage)  # the stored file was damaged on disk
    assert a.patch(f"/api/v1/cameras/{cam['id']}", json={"privacy_masks": MASKS}).status_code == 200
    assert a.post(apply_url(cam)).status_code == 202
    info = wait_job(a, cam)
    assert (info["state"], info["total"], info["done"], info["failed"]) == ("done", 2, 1, 1), info
    assert [f["clip_id"] for f in info["failures"]] == [bad_id] and info["failures"][0]["code"], info
    assert info["pending_clips"] == 1  # it still lacks the masks, and says so
    path, after = stored_clip(core, bad_id)
    assert path.read_bytes() == garbage
    assert (after.blob_key, after.thumb_key, after.size_bytes, after.privacy_masks_hash) == (
        bad_before.blob_key, bad_before.thumb_key, bad_before.size_bytes, None)
    assert_masked(stored_clip(core, good_id)[0], upload)
    assert not [f for f in kit.stored_files(core) if f.startswith(".tmp")]


def test_apply_needs_the_admin_right_on_a_camera_of_the_tenant(api: Any, server: LiveServer, tmp_path: Path) -> None:
    a, cam, creds = setup_camera(api, "owner.apply@example.com")
    other = api().register("other.apply@example.com")
    for r in (other.post(apply_url(cam)), other.get(apply_url(cam)),
              other.post("/api/v1/cameras/doesnotexist/privacy-masks/apply")):
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
    r = a.post("/api/v1/subusers", json={"email": "family.apply@example.com",
                                         "password": "correct horse battery staple", "rights": {cam["id"]: "control"}})
    assert r.status_code == 201, r.text
    sub = api().login("family.apply@example.com")
    assert sub.get(apply_url(cam)).status_code == 200  # may watch the progress ...
    r = sub.post(apply_url(cam))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"  # ... but not start a job
    assert a.get(apply_url(cam)).json()["state"] == "none"


def test_openapi_documents_the_apply_route_and_its_answers(api: Any, server: LiveServer, tmp_path: Path) -> None:
    import httpx
    import jsonschema

    op = httpx.get(server.url + "/openapi.json").json()["paths"]["/api/v1/cameras/{camera_id}/privacy-masks/apply"]
    schema = op["post"]["responses"]["202"]["content"]["application/json"]["schema"]
    a, cam, creds = setup_camera(api, "schema.apply@example.com", masks=None)
    r = a.post(apply_url(cam))
    assert r.status_code == 409
    jsonschema.validate(r.json(), op["post"]["responses"]["409"]["content"]["application/json"]["schema"])
    jsonschema.validate(a.get(apply_url(cam)).json(), op["get"]["responses"]["200"]["content"]["application/json"][
        "schema"])
    assert a.upload(creds, bright_clip(tmp_path / "s.mp4")).status_code == 201
    assert a.patch(f"/api/v1/cameras/{cam['id']}", json={"privacy_masks": MASKS}).status_code == 200
    r = a.post(apply_url(cam))
    assert r.status_code == 202
    jsonschema.validate(r.json(), schema)
    jsonschema.validate(wait_job(a, cam), schema)


def test_full_range_yuvj420p_camera_video_is_stored_masked(api: Any, server: LiveServer, tmp_path: Path) -> None:
    """INSTAR and many other cameras send full-range H.264 (yuvj420p): masked, the rest of the picture unchanged."""
    upload = make_clip(tmp_path / "yuvj.mp4", seconds=3, width=W, height=H, fps=10, scene=bright_scene,
                       pix_fmt="yuvj420p")
    with av.open(str(upload)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuvj420p"
    a, cam, creds = setup_camera(api, "yuvj@example.com")
    r = a.upload(creds, upload)
    assert r.status_code == 201, r.text
    path, clip = stored_clip(server.core, r.json()["clip_id"])
    assert_masked(path, upload)  # black inside, everything else within H.264 noise of the camera's picture
    with av.open(str(upload)) as u, av.open(str(path)) as m:
        us, ms = u.streams.video[0], m.streams.video[0]
        times = [[float(p.pts * s.time_base) for p in c.demux(s) if p.pts is not None] for c, s in ((u, us), (m, ms))]
        assert times[0] == times[1]
    img = thumbnail_pixels(a, r.json()["event_id"])
    t_inside, t_outside = regions(img.shape[1], img.shape[0], inset=4)
    assert img[t_inside].max() <= 25 and img[t_outside].mean() > 140


# ---------------------------------------------------------------- kill -9 of the server in the middle of a job


def test_a_job_cut_by_kill_9_resumes_after_restart_and_loses_nothing(api_at: Any, tmp_path: Path) -> None:
    from tests.conftest import free_port  # type: ignore[import-not-found]
    from tests.test_ingest_crash import Serve  # type: ignore[import-not-found]

    srv = Serve(tmp_path / "data", free_port())
    try:
        _kill_scenario(srv, api_at, tmp_path)
    finally:
        if srv.proc is not None and srv.proc.poll() is None:  # type: ignore[attr-defined]
            srv.kill9()


def _kill_scenario(srv: Any, api_at: Any, tmp_path: Path) -> None:
    srv.start()
    a = api_at(srv.url).register("crash.apply@example.com")
    cam = a.camera("Hedge")
    creds = a.upload_credentials(cam["id"])
    upload = bright_clip(tmp_path / "c.mp4")
    n = 6
    ids = [a.upload(creds, upload).json()["event_id"] for _ in range(n)]
    assert a.patch(f"/api/v1/cameras/{cam['id']}", json={"privacy_masks": MASKS}).status_code == 200
    r = a.post(apply_url(cam))
    assert r.status_code == 202 and r.json()["total"] == n, r.text
    deadline = time.monotonic() + 120
    while (info := a.get(apply_url(cam)).json())["done"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    srv.kill9()
    assert 1 <= info["done"] < n and info["state"] == "running", info  # really cut in the middle
    srv.start()
    info = wait_job(a, cam)
    assert (info["state"], info["total"], info["done"], info["failed"]) == ("done", n, n, 0), info
    blobs = srv.data / "blobs"
    videos = sorted(p for p in blobs.rglob("*.mp4") if ".tmp" not in p.parts)
    assert len(videos) == n  # no old (unmasked) file and no half-written new one left behind
    assert not [p for p in (blobs / ".tmp").rglob("*") if p.is_file()]
    for i in ids:
        video = a.get(f"/api/v1/events/{i}/video")
        assert video.status_code == 200
        f = tmp_path / f"{i}.mp4"
        f.write_bytes(video.content)
        assert_masked(f, upload)


def test_operators_apply_masks_from_the_cli(api: Any, server: LiveServer, settings: Any, tmp_path: Path) -> None:
    import json

    from alarmcloud.cli import main
    from click.testing import CliRunner

    core: Any = server.core
    a, cam, creds = setup_camera(api, "cli.apply@example.com", masks=None)
    upload = bright_clip(tmp_path / "cli.mp4")
    clip_id = a.upload(creds, upload).json()["event_id"]
    env = {"ALARMCLOUD_DATABASE_URL": settings.database_url} if settings.database_url else {}
    args = ["privacy", "apply-masks", cam["id"], "--data-dir", str(settings.data_dir)]
    result = CliRunner().invoke(main, args, env=env, prog_name="alarmcloud")
    assert result.exit_code != 0 and "no privacy masks" in result.output, result.output
    assert a.patch(f"/api/v1/cameras/{cam['id']}", json={"privacy_masks": MASKS}).status_code == 200
    result = CliRunner().invoke(main, args, env=env, prog_name="alarmcloud")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output[result.output.index("{"):])
    assert (out["state"], out["total"], out["done"], out["failed"], out["pending_clips"]) == ("done", 1, 1, 0, 0)
    # the account's use after the swap, as the API's job report shows it
    assert out["storage"]["used_bytes"] == stored_clip(core, clip_id)[0].stat().st_size  # its only clip
    assert out["storage"]["over_quota_bytes"] == 0
    assert_masked(stored_clip(core, clip_id)[0], upload)


# ---------------------------------------------------------------- detection running while the masks swap the video


class GardenReader(Detector):
    """Reads a plate wherever the masked top-right quarter shows something: a plate reader in the neighbour's garden."""

    name = "garden"
    labels = ("plate",)
    threshold = 0.1

    def frame_request(self) -> FrameRequest:
        return FrameRequest(max_keyframes=1, width=64, color="gray")

    def analyze(self, frames: ClipFrames) -> list[Finding]:
        img = frames.keyframes[0].image
        h, w = img.shape[:2]
        if float(img[: h // 2, w // 2:].mean()) < 60:  # MASKS[0]: black once masked
            return []
        return [Finding("garden", "plate", 0.9, time=frames.keyframes[0].time, box=(0.7, 0.1, 0.8, 0.2),
                        text="B AB 123")]


class GardenPlugin:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    @hookimpl
    def register_detectors(self) -> list[DetectorSpec]:
        return [DetectorSpec("garden", lambda cfg: GardenReader(), ("plate",), "reads plates in the masked area")]

    @hookimpl
    async def handle_event(self, app: Any, event: Any) -> None:
        self.events.append((event.type, dict(event.payload)))


@pytest.mark.parametrize("swap", ["after_analysis", "before_decoding"])
def test_detection_of_the_unmasked_video_is_not_written_back_after_the_masks_swap(
        settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swap: str) -> None:
    """The mask job swaps the clip while a detection job analyses the old video: the old findings (a plate in the
    masked area) are discarded and the clip is analysed again on the masked video, with no attempt counted."""
    from alarmcloud import masks_apply, pipeline
    from alarmcloud.models import Job
    from alarmcloud.plugins import PluginHost
    from sqlmodel import select

    from tests.conftest import Api  # type: ignore[import-not-found]

    plugin = GardenPlugin()
    host = PluginHost({"cameras": ["instar"], "detectors": [], "integrations": []})
    host.register(plugin, "test:garden", "garden")
    with LiveServer(settings, plugins=host.load(), workers=0) as srv:  # the test runs both jobs itself
        core: Any = srv.core
        masks_apply.on_shutdown(core)
        a, cam, creds = setup_camera(lambda: Api(srv.url), f"race.{swap}@example.com", masks=None)
        assert a.put(f"/api/v1/cameras/{cam['id']}/detectors", json={"garden": True}).status_code == 200
        upload = bright_clip(tmp_path / "race.mp4")
        r = a.upload(creds, upload)
        assert r.status_code == 201, r.text
        clip_id = r.json()["event_id"]
        assert a.patch(f"/api/v1/cameras/{cam['id']}", json={"privacy_masks": MASKS}).status_code == 200
        assert a.post(apply_url(cam)).status_code == 202  # queued: no runner in this server takes it

        def apply_masks_now() -> None:
            job = masks_apply.claim(core, "mask-worker")
            assert job is not None
            assert masks_apply.run_job(core, job, "mask-worker", threading.Event()) == "done"

        real = pipeline.analyze_file
        seen: list[list[str | None]] = []

        def analyse(host: Any, path: Path, *args: Any, **kw: Any) -> Any:
            if swap == "before_decoding" and not seen:
                apply_masks_now()  # the old file is deleted before the decoder opens it
                seen.append(["(no video)"])
                return real(host, path, *args, **kw)
            result = real(host, path, *args, **kw)
            seen.append([f.text for f in result.findings])
            if len(seen) == 1:
                apply_masks_now()  # between the analysis of the old video and the write-back of its findings
            return result

        monkeypatch.setattr(pipeline, "analyze_file", analyse)
        worker = pipeline.Worker(core, "detect")
        assert worker.run_once()
        if swap == "after_analysis":
            assert seen == [["B AB 123"]]  # the analysis really saw the garden in the old video
        ev = a.get(f"/api/v1/events/{clip_id}").json()
        assert (ev["status"], ev["findings"]) == ("pending", []), ev
        path, stored = stored_clip(core, clip_id)
        assert stored.privacy_masks_hash is not None and stored.labels == []
        assert_masked(path, upload)
        with core.db.session() as s:
            job = s.exec(select(Job).where(Job.clip_id == clip_id)).one()
            assert (job.state, job.attempts, job.worker) == ("queued", 0, None)  # back in the queue, not a failure
        assert worker.run_once()  # the masked video: nothing in the garden
        assert seen[-1] == []
        ev = a.get(f"/api/v1/events/{clip_id}").json()
        assert (ev["status"], ev["findings"]) == ("done", []), ev
        assert not worker.run_once()  # nothing lost, nothing left
        deadline = time.monotonic() + 30  # returns as soon as it happens; room for a loaded CI machine
        while not any(t == "detections.ready" for t, _ in plugin.events) and time.monotonic() < deadline:
            time.sleep(0.05)
    ready = [p for t, p in plugin.events if t == "detections.ready"]
    assert [p["findings"] for p in ready] == [[]]  # announced once, from the masked video
    assert not [p for t, p in plugin.events if t == "plate.recognised"]


# ---------------------------------------------------------------- storage: a masked clip can be larger


def low_quality_clip(path: Path) -> Path:
    """The bright scene at x264's lowest quality: the masked re-encode (normal quality) is several times larger."""
    with av.open(str(path), mode="w") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.codec_context.gop_size = 20
        vs.codec_context.options = {"crf": "51", "preset": "ultrafast", "tune": "zerolatency", "bf": "0",
                                    "sc_threshold": "0", "keyint_min": "20", "x264-params": "sliced-threads=0"}
        for i in range(30):
            frame = av.VideoFrame.from_ndarray(bright_scene(i, i / 10, W, H), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 10)
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
    return path


def test_masks_larger_than_the_original_are_counted_and_applied_over_the_quota(
        api: Any, server: LiveServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Masks are a privacy duty: applied even when the re-encoded clips take the account over its quota, which the
    job and the storage status report; the next clip stored evicts the oldest ones until the account fits again."""
    from alarmcloud.models import Account

    core: Any = server.core
    emitted: list[Any] = []
    real_emit = core.emit_sync
    monkeypatch.setattr(core, "emit_sync", lambda ev: (emitted.append(ev), real_emit(ev))[1])
    a, cam, creds = setup_camera(api, "quota.apply@example.com", masks=None)
    upload = low_quality_clip(tmp_path / "low.mp4")
    ids = []
    for _ in range(2):
        r = a.upload(creds, upload)
        assert r.status_code == 201, r.text
        ids.append(r.json()["event_id"])
    used = a.get("/api/v1/storage").json()["used_bytes"]
    assert used == 2 * upload.stat().st_size
    quota = used + used // 4  # 80 % full: below the almost-full mark (90 %), and room for a quarter more
    with core.db.session() as s:
        acc = s.get(Account, a.id)
        acc.quota_bytes = quota
        s.add(acc)
        s.commit()
    assert a.patch(f"/api/v1/cameras/{cam['id']}", json={"privacy_masks": MASKS}).status_code == 200
    r = a.post(apply_url(cam))
    assert r.status_code == 202, r.text
    assert r.json()["storage"] == {"used_bytes": used, "quota_bytes": quota, "over_quota_bytes": 0}
    info = wait_job(a, cam)
    assert (info["state"], info["done"], info["failed"]) == ("done", 2, 0), info
    sizes = [stored_clip(core, i)[0].stat().st_size for i in ids]
    assert min(sizes) > upload.stat().st_size  # the masked clips are larger than what the camera sent
    inside, _ = regions(W, H)
    for i in ids:  # masked: black inside the masks in every frame
        frames = decoded(stored_clip(core, i)[0])
        assert len(frames) == 30 and max(float(f[inside].max()) for f in frames) <= 12
    status = a.get("/api/v1/storage").json()
    assert (status["used_bytes"], status["quota_bytes"], status["free_bytes"]) == (sum(sizes), quota, 0)
    assert sum(sizes) > quota
    assert info["storage"] == {"used_bytes": sum(sizes), "quota_bytes": quota, "over_quota_bytes": sum(sizes) - quota}
    full = [ev for ev in emitted if ev.type == "storage.almost_full"]
    assert [(ev.account_id, ev.payload["quota_bytes"]) for ev in full] == [(a.id, quota)]  # once, at the crossing
    done = [ev.payload for ev in emitted if ev.payload.get("change") == "privacy_masks_applied"]
    assert [p["over_quota_bytes"] for p in done] == [sum(sizes) - quota]
    # the next clip stored makes room as every upload does: the oldest clips go until the account fits again
    r = a.upload(creds, upload)
    assert r.status_code == 201, r.text
    status = a.get("/api/v1/storage").json()
    assert status["used_bytes"] <= quota and status["clip_count"] < 3
    assert a.get(f"/api/v1/events/{ids[0]}").status_code == 404


# ---------------------------------------------------------------- browsers must not keep the unmasked picture


def test_browsers_revalidate_clip_media_and_get_the_masked_files_after_the_swap(api: Any, server: LiveServer,
                                                                               tmp_path: Path) -> None:
    core: Any = server.core
    a, cam, creds = setup_camera(api, "cache.apply@example.com", masks=None)
    upload = bright_clip(tmp_path / "cache.mp4")
    eid = a.upload(creds, upload).json()["event_id"]
    video_url, thumb_url = f"/api/v1/events/{eid}/video", f"/api/v1/events/{eid}/thumbnail"
    old = {url: a.get(url) for url in (video_url, thumb_url)}
    for r in old.values():
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "private, no-cache"  # kept, but asked for again every time
        assert r.headers["etag"].startswith('"') and r.headers["etag"].endswith('"')  # strong: good for If-Range
    assert old[video_url].content == upload.read_bytes()
    size = len(old[video_url].content)
    # unchanged media: the browser's copy stays good (304, no body) and seeking works as before
    for url, r in old.items():
        again = a.get(url, headers={"If-None-Match": f'W/"x", {r.headers["etag"]}'})
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", r.headers["etag"])
        assert again.headers["cache-control"] == "private, no-cache"
    part = a.get(video_url, headers={"Range": "bytes=100-199", "If-Range": old[video_url].headers["etag"]})
    assert part.status_code == 206 and part.content == upload.read_bytes()[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{size}"
    assert part.headers["etag"] == old[video_url].headers["etag"]
    # the masks are applied: the same cached copies are now refused and the masked files come back
    assert a.patch(f"/api/v1/cameras/{cam['id']}", json={"privacy_masks": MASKS}).status_code == 200
    assert a.post(apply_url(cam)).status_code == 202
    assert wait_job(a, cam)["done"] == 1
    path, clip = stored_clip(core, eid)
    current = {video_url: path.read_bytes(), thumb_url: core.blobs.path(clip.thumb_key).read_bytes()}
    for url, r in old.items():
        new = a.get(url, headers={"If-None-Match": r.headers["etag"]})
        assert new.status_code == 200 and new.content == current[url] != r.content
        assert new.headers["etag"] != r.headers["etag"]
        assert a.get(url, headers={"If-None-Match": new.headers["etag"]}).status_code == 304
    img = thumbnail_pixels(a, eid)
    assert img[regions(img.shape[1], img.shape[0], inset=4)[0]].max() <= 25
    # a player resuming the old video (If-Range: its old ETag) gets the whole new one, never a mix of the two
    resumed = a.get(video_url, headers={"Range": "bytes=100-", "If-Range": old[video_url].headers["etag"]})
    assert resumed.status_code == 200 and resumed.content == current[video_url]
    tail = a.get(video_url, headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == current[video_url][-50:]
    head = a.req("HEAD", video_url)
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(current[video_url])


def test_the_swap_waits_for_a_detection_write_back_in_flight_and_drops_its_masked_findings(
        settings: Any, tmp_path: Path) -> None:
    """PostgreSQL: a detection job is writing its findings (the clip row locked) when the mask job comes to swap the
    clip: the swap waits for that commit and then removes the plate read in the masked area."""
    if not settings.database_url:
        pytest.skip("row locks: SQLite runs one write transaction at a time")
    from alarmcloud import masks_apply
    from alarmcloud.models import Clip, FindingRow

    from tests.conftest import Api  # type: ignore[import-not-found]

    with LiveServer(settings, workers=0) as srv:
        core: Any = srv.core
        masks_apply.on_shutdown(core)  # the test runs the mask job itself
        a, cam, creds = setup_camera(lambda: Api(srv.url), "inflight@example.com", masks=None)
        upload = bright_clip(tmp_path / "inflight.mp4")
        clip_id = a.upload(creds, upload).json()["event_id"]
        assert a.patch(f"/api/v1/cameras/{cam['id']}", json={"privacy_masks": MASKS}).status_code == 200
        assert a.post(apply_url(cam)).status_code == 202
        job = masks_apply.claim(core, "mask-worker")
        assert job is not None
        outcome: list[str] = []
        swap = threading.Thread(target=lambda: outcome.append(
            masks_apply.run_job(core, job, "mask-worker", threading.Event())))
        with core.db.session() as s:  # the detection write-back, as pipeline.process_job does it
            clip = s.get(Clip, clip_id, with_for_update=True)
            assert clip is not None
            s.add(FindingRow(clip_id=clip_id, account_id=a.id, detector="plates", label="plate", score=0.9,
                             text="B AB 123", box=[0.7, 0.1, 0.8, 0.2]))
            s.add(FindingRow(clip_id=clip_id, account_id=a.id, detector="plates", label="car", score=0.8,
                             box=[0.1, 0.3, 0.4, 0.6]))
            clip.labels, clip.status = ["car", "plate"], "done"
            s.add(clip)
            s.flush()
            swap.start()
            # until the mask job waits for this transaction's row lock
            wait_for_lock_wait(core.db, 120, outcome, swap.is_alive)
            s.commit()
        swap.join(120)
        assert outcome == ["done"]
        ev = a.get(f"/api/v1/events/{clip_id}").json()
        assert [(f["label"], f.get("text")) for f in ev["findings"]] == [("car", None)]
        path, stored = stored_clip(core, clip_id)
        assert stored.labels == ["car"] and stored.privacy_masks_hash is not None
        assert_masked(path, upload)
