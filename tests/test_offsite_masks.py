"""Off-site copies follow privacy masks applied later: the copy in the owner's bucket (a real S3 server on loopback,
moto) is replaced by the masked clip, never left unmasked, also when the masks are applied while a copy is on its
way; clips never copied are not copied by masking. On SQLite and PostgreSQL (the swap and the copy's check lock
the clip row)."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from alarmcloud.testing import settings_on, static_scene

from tests.conftest import outbox_rows, wait_outbox_state  # type: ignore[import-not-found]
from tests.s3server import ACCESS_KEY, REGION, CuttingProxy, MotoS3, bucket_on_loopback, s3  # type: ignore[import-not-found]  # noqa: F401
from tests.test_privacy_masks import MASKS, H, W, bright_clip, stored_clip  # type: ignore[import-not-found]
from tests.test_privacy_masks_apply import apply_url, wait_job  # type: ignore[import-not-found]

SECRET = "alarmcloud-test-secret"
#: masks changed again later: a third area added
MORE_MASKS = [*MASKS, [0.0, 0.0, 0.2, 0.3]]
EVEN_MORE_MASKS = [*MORE_MASKS, [0.3, 0.6, 0.45, 0.9]]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    with settings_on(request.param, tmp_path / "data", camera_networks=["127.0.0.0/8"]) as st:
        yield bucket_on_loopback(st)


@pytest.fixture(scope="module")
def garden_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s, bright everywhere (the masked areas show something), a box moving across: an alarm."""
    return bright_clip(tmp_path_factory.mktemp("offsite-masks") / "garden.mp4")


def _bucket_on(a: Any, endpoint: str, bucket: str, **extra: Any) -> None:
    body = {"enabled": True, "endpoint": endpoint, "region": REGION, "bucket": bucket, "prefix": "cams",
            "access_key_id": ACCESS_KEY, "secret_key": SECRET, **extra}
    r = a.patch("/api/v1/me/offsite", json=body)
    assert r.status_code == 200, r.text


def _key(event: dict[str, Any], camera: str) -> str:
    t = event["started_at"]
    return f"cams/{camera}/{t[:10].replace('-', '/')}/{t[:19].replace('-', '').replace(':', '')}Z-{event['id']}.mp4"


def _set_masks(a: Any, cam: dict[str, Any], masks: list[list[float]]) -> dict[str, Any]:
    """Set the camera's masks and apply them to its stored clips (the mask job, to its end)."""
    assert a.patch(f"/api/v1/cameras/{cam['id']}", json={"privacy_masks": masks}).status_code == 200
    r = a.post(apply_url(cam))
    assert r.status_code == 202, r.text
    info = wait_job(a, cam)
    assert info["state"] == "done" and info["failed"] == 0, info
    return info


def _masked_areas(video: bytes, masks: list[list[float]]) -> tuple[float, float]:
    """The brightest pixel inside the masks over every frame, and the mean brightness well outside them."""
    with av.open(io.BytesIO(video)) as c:
        frames = [f.to_ndarray(format="rgb24").astype(np.int16) for f in c.decode(video=0)]
    assert frames and frames[0].shape[:2] == (H, W)
    inside = np.zeros((H, W), bool)
    near = np.zeros((H, W), bool)
    for x0, y0, x1, y1 in masks:
        inside[int(y0 * H) + 2:int(y1 * H) - 2, int(x0 * W) + 2:int(x1 * W) - 2] = True
        near[max(0, int(y0 * H) - 8):int(y1 * H) + 8, max(0, int(x0 * W) - 8):int(x1 * W) + 8] = True
    return max(float(f[inside].max()) for f in frames), min(float(f[~near].mean()) for f in frames)


def _queued(core: Any, account_id: str) -> list[Any]:
    return [r for r in outbox_rows(core, account_id, "offsite") if r.state == "queued"]


def test_masks_applied_later_replace_the_copy_in_the_bucket(api: Any, server: Any, s3: MotoS3,  # noqa: F811
                                                            garden_clip: Path) -> None:
    core = server.core
    core.settings.offsite.max_attempts = 1000  # the copy waiting while the bucket is away is not given up
    bucket = s3.new_bucket()
    proxy = CuttingProxy(s3.endpoint)  # passes everything until cut
    try:
        a = api().register("offsite-masks1@example.com")
        _bucket_on(a, proxy.endpoint, bucket)
        cam = a.camera("Street side")
        ev = a.upload_analysed(a.upload_credentials(cam["id"]), garden_clip)
        assert ev["verdict"] == "alarm", ev
        wait_outbox_state(core, a.id, "offsite", "sent")
        video = _key(ev, "Street side")
        assert s3.read(bucket, video) == garden_clip.read_bytes()  # copied before there were masks
        inside, _ = _masked_areas(s3.read(bucket, video), MASKS)
        assert inside > 140  # the neighbour's garden is in the copy

        # the neighbour complains: masks set and applied to the stored clips; the copy follows
        info = _set_masks(a, cam, MASKS)
        assert info["done"] == 1
        row = _wait_sent(core, a.id)
        assert row.payload == {"clip_id": ev["id"], "masked": True} and row.attempts == 1
        path, stored = stored_clip(core, ev["id"])
        copy = s3.read(bucket, video)
        assert copy == path.read_bytes() != garden_clip.read_bytes()  # the masked clip, under the same key
        inside, outside = _masked_areas(copy, MASKS)
        assert inside <= 12 and outside > 140  # black where masked, the rest as before
        side = json.loads(s3.read(bucket, video[:-4] + ".json"))  # its sidecar, rewritten beside it
        assert side["clip_id"] == ev["id"] and side["size_bytes"] == len(copy) == stored.size_bytes
        assert s3.keys(bucket) == sorted([video, video[:-4] + ".json"])  # replaced, nothing beside it
        assert [(r.payload["clip_id"], r.state) for r in outbox_rows(core, a.id, "offsite")] == [
            (ev["id"], "sent"), (ev["id"], "sent")]

        # asked again: nothing to mask, nothing copied again
        r = a.post(apply_url(cam))
        assert r.status_code == 200 and r.json()["total"] == 0, r.text
        time.sleep(0.5)  # a few delivery rounds
        assert len(outbox_rows(core, a.id, "offsite")) == 2

        # the bucket is away; masks change twice while the new copy waits: one copy waits, not two
        proxy.cut_after(0)
        _set_masks(a, cam, MORE_MASKS)
        assert len(_queued(core, a.id)) == 1
        _set_masks(a, cam, EVEN_MORE_MASKS)
        assert len(_queued(core, a.id)) == 1 and len(outbox_rows(core, a.id, "offsite")) == 3
        proxy.limit = None  # back: the waiting copy takes the clip as stored now
        wait_outbox_state(core, a.id, "offsite", "sent")
        path, _ = stored_clip(core, ev["id"])
        assert s3.read(bucket, video) == path.read_bytes()
        inside, outside = _masked_areas(s3.read(bucket, video), EVEN_MORE_MASKS)
        assert inside <= 12 and outside > 140
        assert len(outbox_rows(core, a.id, "offsite")) == 3
    finally:
        proxy.close()


def test_masking_copies_no_clip_that_was_never_copied(api: Any, server: Any, s3: MotoS3,  # noqa: F811
                                                      garden_clip: Path, make_test_clip: Any) -> None:
    """A false alarm with "Alarms only" was never copied: masking it copies nothing. Copies switched off: a clip
    copied before is not copied again either (the owner decides what goes to the bucket)."""
    core = server.core
    bucket = s3.new_bucket()
    a = api().register("offsite-masks2@example.com")
    _bucket_on(a, s3.endpoint, bucket)
    cam = a.camera("Hedge")
    creds = a.upload_credentials(cam["id"])
    still = make_test_clip("offsite-masks-still", seconds=4, fps=10, width=W, height=H, scene=static_scene)
    quiet = a.upload_analysed(creds, still)
    assert quiet["verdict"].startswith("false_alarm"), quiet
    assert _set_masks(a, cam, MASKS)["done"] == 1
    time.sleep(0.5)
    assert outbox_rows(core, a.id, "offsite") == [] and s3.keys(bucket) == []

    ev = a.upload_analysed(creds, garden_clip)
    wait_outbox_state(core, a.id, "offsite", "sent")  # copied with the masks of the time
    assert a.patch("/api/v1/me/offsite", json={"enabled": False}).status_code == 200
    assert _set_masks(a, cam, MORE_MASKS)["done"] == 2
    time.sleep(0.5)
    assert [r.payload for r in outbox_rows(core, a.id, "offsite")] == [{"clip_id": ev["id"]}]



def _wait_sent(core: Any, account_id: str) -> Any:
    """The newest copy once it is sent and its attempt counted: the copy writes "sent" with its check of the clip,
    and the delivery loop counts the attempt in a commit just after."""
    row = wait_outbox_state(core, account_id, "offsite", "sent")
    deadline = time.monotonic() + 30  # returns as soon as it happens; room for a loaded CI machine
    while row.attempts == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        row = outbox_rows(core, account_id, "offsite")[-1]
    return row

class HoldingProxy(CuttingProxy):
    """Passes the connections to the S3 server, but holds what is sent towards it while ``gate`` is clear: an
    upload that is on its way for as long as the test likes."""

    def __init__(self, upstream: str) -> None:
        self.gate = threading.Event()
        self.held = threading.Event()
        super().__init__(upstream)

    def on_upward(self, data: bytes, conn: Any) -> None:
        if not self.gate.is_set():
            self.held.set()
            self.gate.wait(60)


def test_masks_applied_while_the_unmasked_clip_is_uploaded_are_copied_too(
        api: Any, server: Any, s3: MotoS3, garden_clip: Path) -> None:  # noqa: F811
    """The copy has read the unmasked video and is sending it when the masks are swapped in: when its upload ends
    it finds the clip changed and sends the masked one over it."""
    core = server.core
    core.settings.offsite.timeout_seconds = 60.0  # the held upload must not time out meanwhile
    bucket = s3.new_bucket()
    proxy = HoldingProxy(s3.endpoint)
    try:
        a = api().register("offsite-masks3@example.com")
        _bucket_on(a, proxy.endpoint, bucket)
        cam = a.camera("Street side")
        ev = a.upload_analysed(a.upload_credentials(cam["id"]), garden_clip)
        assert proxy.held.wait(30), "the copy started"
        _set_masks(a, cam, MASKS)  # swapped in while the first copy is on its way
        (row,) = outbox_rows(core, a.id, "offsite")
        assert row.state == "queued"
        proxy.gate.set()
        row = _wait_sent(core, a.id)
        path, _ = stored_clip(core, ev["id"])
        video = _key(ev, "Street side")
        assert s3.read(bucket, video) == path.read_bytes() != garden_clip.read_bytes()
        assert _masked_areas(s3.read(bucket, video), MASKS)[0] <= 12
        assert len(outbox_rows(core, a.id, "offsite")) == 1 and row.attempts == 1
    finally:
        proxy.gate.set()
        proxy.close()


def test_masks_applied_just_after_a_copy_ended_are_copied_too(api: Any, server: Any, s3: MotoS3,  # noqa: F811
                                                              garden_clip: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The unmasked copy is in the bucket and the copy loop has not yet written down that it is done when the masks
    are swapped in: the copy counts as made from its check on, so the swap queues the masked one."""
    from alarmcloud import offsite

    core = server.core
    real = offsite.attempt
    ended, go_on = threading.Event(), threading.Event()

    def slow_to_finish(app: Any, row: Any) -> tuple[str, str | None]:
        outcome = real(app, row)
        if not row.payload.get("masked"):
            ended.set()
            go_on.wait(60)
        return outcome

    monkeypatch.setattr(offsite, "attempt", slow_to_finish)
    bucket = s3.new_bucket()
    a = api().register("offsite-masks4@example.com")
    _bucket_on(a, s3.endpoint, bucket)
    cam = a.camera("Street side")
    ev = a.upload_analysed(a.upload_credentials(cam["id"]), garden_clip)
    try:
        assert ended.wait(30), "the first copy was uploaded"
        video = _key(ev, "Street side")
        assert s3.read(bucket, video) == garden_clip.read_bytes()
        _set_masks(a, cam, MASKS)
    finally:
        go_on.set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and [r.state for r in outbox_rows(core, a.id, "offsite")] != ["sent", "sent"]:
        time.sleep(0.05)
    first, again = outbox_rows(core, a.id, "offsite")
    assert (first.state, again.state, again.payload) == ("sent", "sent", {"clip_id": ev["id"], "masked": True})
    path, _ = stored_clip(core, ev["id"])
    assert s3.read(bucket, video) == path.read_bytes() != garden_clip.read_bytes()
