"""Privacy masks: the rectangles a camera owner blacks out are never stored (video, thumbnail), on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from alarmcloud.testing import LiveServer, make_clip, postgres_database, settings_on, write_frames

BOTH_DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
W, H = 320, 176
#: top-right quarter and a strip at the bottom left (fractions of the frame)
MASKS = [[0.5, 0.0, 1.0, 0.5], [0.0, 0.75, 0.25, 1.0]]


@pytest.fixture(params=BOTH_DATABASES)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Every test here runs on SQLite and on a fresh database of a real PostgreSQL server."""
    with settings_on(request.param, tmp_path / "data", camera_networks=["127.0.0.0/8"]) as st:
        yield st


def bright_scene(i: int, t: float, w: int, h: int) -> np.ndarray:
    """A bright, textured picture with a box moving across the whole frame (through the masked areas too)."""
    x = np.linspace(150, 235, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 20, h, dtype=np.float32)[:, None]
    img = np.repeat((x + y)[..., None], 3, axis=2)
    img[..., 2] -= 40  # some colour, so the chroma planes have to be painted too
    bx = int((i * 7) % max(1, w - 40))
    img[h // 3: h // 3 + 40, bx: bx + 40] = (255, 250, 120)
    return img.clip(0, 255).astype(np.uint8)


def bright_clip(path: Path, audio: bool = False) -> Path:
    return make_clip(path, seconds=3, width=W, height=H, fps=10, scene=bright_scene, audio=audio)


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24").astype(np.int16) for f in c.decode(video=0)]


def audio_packets(path: Path) -> list[tuple[int | None, bytes]]:
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return []
        return [(p.pts, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size]


def regions(width: int, height: int, inset: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Boolean maps of the masked pixels (``inset`` inside the rectangles) and of those well outside them."""
    inside = np.zeros((height, width), bool)
    near = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in MASKS:
        inside[int(y0 * height) + inset:int(y1 * height) - inset, int(x0 * width) + inset:int(x1 * width) - inset] = 1
        near[max(0, int(y0 * height) - 8):int(y1 * height) + 8, max(0, int(x0 * width) - 8):int(x1 * width) + 8] = 1
    return inside, ~near


def stored_clip(core: Any, clip_id: str) -> tuple[Path, Any]:
    from alarmcloud.models import Clip

    with core.db.session() as s:
        clip = s.get(Clip, clip_id)
        assert clip is not None
        return core.blobs.path(clip.blob_key), clip


def setup_camera(api: Any, email: str, masks: list[list[float]] | None = MASKS) -> tuple[Any, dict[str, Any],
                                                                                        dict[str, Any]]:
    a = api().register(email)
    cam = a.camera("Street side")
    if masks is not None:
        r = a.patch(f"/api/v1/cameras/{cam['id']}", json={"privacy_masks": masks})
        assert r.status_code == 200, r.text
        assert r.json()["privacy_masks"] == masks
    return a, cam, a.upload_credentials(cam["id"])


def test_masked_areas_are_black_in_the_stored_video_and_thumbnail_audio_kept(
        api: Any, server: LiveServer, kit: Any, tmp_path: Path) -> None:
    core: Any = server.core
    a, cam, creds = setup_camera(api, "masks@example.com")
    assert a.get(f"/api/v1/cameras/{cam['id']}").json()["privacy_masks"] == MASKS
    upload = bright_clip(tmp_path / "bright.mp4", audio=True)
    ev = a.upload_analysed(creds, upload)  # detectors ran on what was stored
    path, clip = stored_clip(core, ev["id"])

    original, masked = decoded(upload), decoded(path)
    assert len(masked) == len(original) == 30
    inside, outside = regions(W, H)
    assert min(float(f[inside].mean()) for f in original) > 140  # the upload really shows something there
    assert max(float(f[inside].max()) for f in masked) <= 12  # black in every frame, every channel
    diffs = [float(np.abs(m - o)[outside].mean()) for m, o in zip(masked, original, strict=True)]
    assert max(diffs) < 4.0, diffs  # the rest of the picture is unchanged (up to H.264 re-encoding)
    # frame times, size and audio are kept: the audio packets are copied, not re-encoded
    with av.open(str(upload)) as u, av.open(str(path)) as m:
        uv, mv = u.streams.video[0], m.streams.video[0]
        assert (mv.codec_context.width, mv.codec_context.height) == (W, H)
        times = [[float(p.pts * s.time_base) for p in c.demux(s) if p.pts is not None] for c, s in ((u, uv), (m, mv))]
        assert times[0] == times[1]
    assert audio_packets(path) == audio_packets(upload) != []
    # the thumbnail comes from the masked video
    thumb = a.get(f"/api/v1/events/{ev['id']}/thumbnail")
    assert thumb.status_code == 200
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(thumb.content)).convert("RGB")).astype(np.int16)
    t_inside, t_outside = regions(img.shape[1], img.shape[0], inset=4)
    assert img[t_inside].max() <= 25 and img[t_outside].mean() > 140
    # the stored (masked) file is what counts against the quota; nothing unmasked is left anywhere
    assert clip.size_bytes == path.stat().st_size == ev["size_bytes"]
    upload_bytes = upload.read_bytes()
    files = kit.stored_files(core)
    assert not [f for f in files if f.startswith(".tmp")], files
    root = Path(core.blobs.root)
    assert all((root / f).read_bytes() != upload_bytes for f in files)
    assert a.get("/api/v1/storage").json()["used_bytes"] == path.stat().st_size


def g711_clip(path: Path, seconds: int = 3, fps: int = 10) -> Path:
    """A camera-like H.264 clip with G.711 A-law audio, in a QuickTime file (MP4 cannot hold G.711)."""
    from fractions import Fraction

    with av.open(str(path), "w", format="mov") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.codec_context.gop_size = 2 * fps
        vs.codec_context.options = {"preset": "ultrafast", "bf": "0", "sc_threshold": "0"}
        aus = out.add_stream("pcm_alaw", rate=8000)
        for i in range(seconds * fps):
            frame = av.VideoFrame.from_ndarray(bright_scene(i, i / fps, W, H), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        tone = (np.sin(np.arange(8000 * seconds) / 8000 * 2 * np.pi * 440) * 8000).astype(np.int16)[None, :]
        af = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
        af.sample_rate, af.pts = 8000, 0
        out.mux(aus.encode(af))
        out.mux(aus.encode(None))
    return path


def test_g711_audio_of_a_camera_is_kept_unchanged_when_masking(api: Any, server: LiveServer, tmp_path: Path) -> None:
    a, cam, creds = setup_camera(api, "g711@example.com")
    upload = g711_clip(tmp_path / "g711.mp4")
    _, path, clip = upload_stored(server, a, creds, upload)
    with av.open(str(path)) as c:
        assert c.streams.audio[0].codec_context.name == "pcm_alaw"
    assert audio_packets(path) == audio_packets(upload) != []
    inside, _ = regions(W, H)
    assert max(float(f[inside].max()) for f in decoded(path)) <= 12
    assert clip.codec == "h264"


def turned_clip(path: Path, seconds: int = 3, fps: int = 10) -> Path:
    """A phone's portrait video: the pictures as shown are H wide and W high; stored turned a quarter
    counter-clockwise (W x H) with a display matrix that turns them a quarter clockwise, as phones store them."""
    frames = (np.ascontiguousarray(np.rot90(bright_scene(i, i / fps, H, W), 1)) for i in range(seconds * fps))
    return write_frames(path, frames, fps=fps, gop=2 * fps, rotation=(-90, False, False),
                        options={"preset": "ultrafast", "bf": "0", "sc_threshold": "0"})


def upload_stored(server: LiveServer, a: Any, creds: dict[str, Any], upload: Path) -> tuple[dict[str, Any], Path, Any]:
    """Upload a clip as the camera; the answer, the stored file and its clip row."""
    r = a.upload(creds, upload)
    assert r.status_code == 201, r.text
    return r.json(), *stored_clip(server.core, r.json()["clip_id"])


def test_a_portrait_phone_video_is_masked_where_the_owner_sees_the_areas(api: Any, server: LiveServer,
                                                                          tmp_path: Path) -> None:
    """The masks are drawn on the picture as shown; a clip whose container turns its pictures for showing is
    masked there (not where the same fractions of the coded picture lie), and the stored copy is shown the same way."""
    from PIL import Image

    a, cam, creds = setup_camera(api, "portrait@example.com")
    upload = turned_clip(tmp_path / "portrait.mp4")
    answer, path, _ = upload_stored(server, a, creds, upload)
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    assert frames and all(f.rotation == -90 for f in frames)  # still shown turned clockwise
    shown = [np.rot90(f.to_ndarray(format="rgb24").astype(np.int16), -1) for f in frames]
    original = [np.rot90(f.astype(np.int16), -1) for f in decoded(upload)]
    inside, outside = regions(H, W)  # the picture as shown: H wide, W high
    assert shown[0].shape[:2] == inside.shape
    assert min(float(f[inside].mean()) for f in original) > 140
    assert max(float(f[inside].max()) for f in shown) <= 12
    assert max(float(np.abs(m - o)[outside].mean()) for m, o in zip(shown, original, strict=True)) < 4.0
    thumb = a.get(f"/api/v1/events/{answer['event_id']}/thumbnail")  # upright, as the owner sees the clip
    img = np.asarray(Image.open(io.BytesIO(thumb.content)).convert("RGB")).astype(np.int16)
    assert img.shape[0] > img.shape[1]
    t_inside, t_outside = regions(img.shape[1], img.shape[0], inset=4)
    assert img[t_inside].max() <= 25 and img[t_outside].mean() > 140


def test_camera_snapshot_is_not_used_as_thumbnail_of_a_masked_camera(api: Any, server: LiveServer,
                                                                     tmp_path: Path) -> None:
    """A camera-sent JPEG shows the masked area: the thumbnail is made from the masked video instead."""
    from PIL import Image

    a, cam, creds = setup_camera(api, "snap@example.com")
    buf = io.BytesIO()
    Image.new("RGB", (W, H), (255, 255, 255)).save(buf, format="JPEG")
    auth = base64.b64encode(f"{creds['username']}:{creds['password']}".encode()).decode()
    r = httpx.post(server.url + "/api/v1/ingest/clips", headers={"Authorization": f"Basic {auth}"}, timeout=60,
                   files={"file": ("clip.mp4", bright_clip(tmp_path / "b.mp4").read_bytes(), "video/mp4"),
                          "snapshot": ("snap.jpg", buf.getvalue(), "image/jpeg")})
    assert r.status_code == 201, r.text
    thumb = a.get(f"/api/v1/events/{r.json()['event_id']}/thumbnail")
    img = np.asarray(Image.open(io.BytesIO(thumb.content)).convert("RGB")).astype(np.int16)
    t_inside, _ = regions(img.shape[1], img.shape[0], inset=4)
    assert img[t_inside].max() <= 25


def test_without_masks_the_upload_is_stored_byte_for_byte(api: Any, server: LiveServer, tmp_path: Path) -> None:
    core: Any = server.core
    a, cam, creds = setup_camera(api, "plain@example.com", masks=None)
    assert a.get(f"/api/v1/cameras/{cam['id']}").json()["privacy_masks"] == []
    upload = bright_clip(tmp_path / "plain.mp4", audio=True)
    r = a.upload(creds, upload)
    assert r.status_code == 201, r.text
    assert stored_clip(core, r.json()["clip_id"])[0].read_bytes() == upload.read_bytes()
    # masks set and removed again: back to storing the upload as it came
    assert a.patch(f"/api/v1/cameras/{cam['id']}", json={"privacy_masks": MASKS}).status_code == 200
    r = a.patch(f"/api/v1/cameras/{cam['id']}", json={"privacy_masks": []})
    assert r.status_code == 200 and r.json()["privacy_masks"] == []
    r = a.upload(creds, upload)
    assert stored_clip(core, r.json()["clip_id"])[0].read_bytes() == upload.read_bytes()


@pytest.mark.parametrize(("masks", "needle"), [
    ("top half", "must be a list of rectangles"),
    ([[0, 0, 0.5, 0.5]] * 9, "at most 8"),
    ([[0, 0, 0.5]], "four numbers"),
    ([[0, 0, "1", 1]], "four numbers"),
    ([[0, 0, True, 1]], "four numbers"),
    ([{"x0": 0}], "four numbers"),
    ([[0, 0, 1.2, 1]], "0..1"),
    ([[-0.1, 0, 0.5, 1]], "0..1"),
    ([[0.5, 0, 0.2, 1]], "x0 must be less than x1"),
    ([[0, 0.5, 1, 0.5]], "x0 must be less than x1 and y0 less than y1"),
    ([[0, 0, 0.005, 1]], "smaller than 1 %"),
    ([[0.1, 0.1, 0.9, 0.1], [0, 0, 0.5, 0.5]], "privacy_masks[0]"),
    ([[0, 0, 0.5, 0.5], [0, 0, 1, 0.004]], "privacy_masks[1] is smaller than 1 %"),
])
def test_invalid_masks_are_refused_with_422_and_nothing_changes(api: Any, server: LiveServer, masks: Any,
                                                                needle: str) -> None:
    a, cam, _ = setup_camera(api, "invalid@example.com")
    r = a.patch(f"/api/v1/cameras/{cam['id']}", json={"name": "Renamed", "privacy_masks": masks})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_privacy_masks" and needle in err["message"], err
    after = a.get(f"/api/v1/cameras/{cam['id']}").json()
    assert after["privacy_masks"] == MASKS and after["name"] == "Street side"


def test_masks_belong_to_the_tenant_and_need_the_admin_right(api: Any, server: LiveServer) -> None:
    a, cam, _ = setup_camera(api, "owner@example.com")
    url = f"/api/v1/cameras/{cam['id']}"
    other = api().register("other@example.com")
    assert other.get(url).status_code == 404
    r = other.patch(url, json={"privacy_masks": []})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = a.post("/api/v1/subusers", json={"email": "family@example.com", "password": "correct horse battery staple",
                                         "rights": {cam["id"]: "control"}})
    assert r.status_code == 201, r.text
    sub_id = r.json()["id"]
    sub = api().login("family@example.com")
    assert sub.get(url).json()["privacy_masks"] == MASKS  # may see them ...
    r = sub.patch(url, json={"privacy_masks": []})
    assert r.status_code == 403, r.text  # ... but not change them
    assert a.get(url).json()["privacy_masks"] == MASKS
    assert a.put(f"/api/v1/subusers/{sub_id}", json={"rights": {cam["id"]: "admin"}}).status_code == 200
    r = sub.patch(url, json={"privacy_masks": [[0, 0, 0.1, 0.1]]})
    assert r.status_code == 200, r.text
    assert a.get(url).json()["privacy_masks"] == [[0, 0, 0.1, 0.1]]


def test_hostile_or_corrupt_uploads_are_rejected_as_without_masks(api: Any, server: LiveServer, kit: Any,
                                                                  tmp_path: Path) -> None:
    core: Any = server.core
    a, masked_cam, masked_creds = setup_camera(api, "hostile@example.com")
    plain_cam = a.camera("Plain")
    plain_creds = a.upload_credentials(plain_cam["id"])
    good = bright_clip(tmp_path / "good.mp4").read_bytes()
    bad = {"random": np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes(),
           "truncated": good[: len(good) // 3], "text": b"<html>not a video</html>" * 100,
           "empty": b""}
    for name, body in bad.items():
        f = tmp_path / f"{name}.mp4"
        f.write_bytes(body)
        with_masks, without = a.upload(masked_creds, f), a.upload(plain_creds, f)
        assert with_masks.status_code == without.status_code and 400 <= without.status_code < 500, name
        assert with_masks.json() == without.json(), name
    assert kit.row_counts(core)["clips"] == 0
    assert kit.stored_files(core) == []  # nothing stored, nothing staged left behind
    codes = [x["code"] for x in a.get(f"/api/v1/cameras/{masked_cam['id']}/rejections").json()["items"]]
    assert len(codes) == len(bad)


def test_a_clip_the_limited_mask_process_cannot_handle_is_rejected_and_nothing_is_stored(
        api: Any, server: LiveServer, kit: Any, tmp_path: Path) -> None:
    """Decoding runs under an address-space limit; over it, the upload is rejected, never stored unmasked."""
    core: Any = server.core
    a, cam, creds = setup_camera(api, "limited@example.com")
    core.settings.ingest.mask_memory_mb = 120  # below what decoding and encoding need
    r = a.upload(creds, bright_clip(tmp_path / "c.mp4"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "mask_failed", r.text
    assert kit.row_counts(core)["clips"] == 0 and kit.stored_files(core) == []
    items = a.get(f"/api/v1/cameras/{cam['id']}/rejections").json()["items"]
    assert [x["code"] for x in items] == ["mask_failed"]


def test_the_export_holds_the_masks(api: Any, server: LiveServer) -> None:
    a, cam, _ = setup_camera(api, "export.masks@example.com")
    with a.http.stream("GET", "/api/v1/me/export") as r:
        assert r.status_code == 200
        body = b"".join(r.iter_bytes())
    data = json.loads(zipfile.ZipFile(io.BytesIO(body)).read("account.json"))
    assert [(c["id"], c["privacy_masks"]) for c in data["cameras"]] == [(cam["id"], MASKS)]


@pytest.fixture(params=BOTH_DATABASES)
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    with postgres_database("ac_masks_") as url:
        yield url


def test_migration_0006_adds_a_nullable_column_that_keeps_existing_cameras_unmasked(empty_db: str) -> None:
    from alarmcloud import db

    db.migrate(empty_db, "0005")
    engine = sa.create_engine(empty_db)
    try:
        with engine.begin() as c:
            c.execute(sa.text("INSERT INTO accounts (id, email, password_hash, role, created_at, last_active_at, "
                              "restricted, notify_email, notify_only_real, notify_cooldown_seconds) VALUES "
                              "('a1', 'm@example.com', 'x', 'user', :t, :t, false, false, true, 300)"),
                      {"t": "2026-01-01 00:00:00"})
            c.execute(sa.text("INSERT INTO cameras (id, account_id, name, brand, model, port, "
                              "integrations_may_use_credentials, detectors, detector_options, created_at, "
                              "rejected_count, fair_use_state) VALUES ('c1', 'a1', 'Old', 'instar', 'IN-9008 Full HD',"
                              " 80, false, '{}', '{}', :t, 0, 'normal')"), {"t": "2026-01-01 00:00:00"})
        db.migrate(empty_db, "0006")
        cols = {c["name"]: c for c in sa.inspect(engine).get_columns("cameras")}
        assert cols["privacy_masks"]["nullable"]
        with engine.connect() as c:
            assert c.execute(sa.text("SELECT privacy_masks FROM cameras WHERE id = 'c1'")).scalar() is None
        db.migrate(empty_db)  # the models below are those of the newest schema (later migrations add columns)
        from alarmcloud.cameras import camera_json
        from alarmcloud.models import Camera
        from sqlmodel import Session

        with Session(engine) as s:
            cam = s.get(Camera, "c1")
            assert cam is not None and camera_json(cam)["privacy_masks"] == []
            cam.privacy_masks = MASKS
            s.add(cam)
            s.commit()
        with Session(engine) as s:
            cam = s.get(Camera, "c1")
            assert cam is not None and cam.privacy_masks == MASKS
        from alembic import command

        command.downgrade(db.alembic_config(empty_db), "0005")
        assert "privacy_masks" not in {c["name"] for c in sa.inspect(engine).get_columns("cameras")}
    finally:
        engine.dispose()


def test_ftp_uploads_of_a_masked_camera_are_masked_and_its_snapshots_never_stored(api: Any, server: LiveServer,
                                                                                   kit: Any, tmp_path: Path) -> None:
    """FTP cameras send a JPEG snapshot before or after the clip; for a masked camera neither becomes the thumbnail."""
    import ftplib
    import time

    from alarmcloud.ftp import start_ftp_server
    from PIL import Image

    core: Any = server.core
    core.settings.ftp.passive_ports = ""
    srv = start_ftp_server(core, port=0, host="127.0.0.1")
    try:
        a, cam, creds = setup_camera(api, "ftp.masks@example.com")
        buf = io.BytesIO()
        Image.new("RGB", (W, H), (255, 255, 255)).save(buf, format="JPEG")
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", srv.port, timeout=30)
        ftp.login(creds["username"], creds["password"])
        clip = bright_clip(tmp_path / "ftp.mp4").read_bytes()
        for i, order in enumerate((("snap", "clip"), ("clip", "snap"))):
            for what in order:
                if what == "snap":
                    ftp.storbinary(f"STOR s{i}.jpg", io.BytesIO(buf.getvalue()))
                else:
                    ftp.storbinary(f"STOR c{i}.mp4", io.BytesIO(clip))
            time.sleep(0.5)  # a late snapshot is paired with the clip in the background
        ftp.quit()
        deadline = time.monotonic() + 20
        while len(items := a.get("/api/v1/events").json()["items"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(items) == 2
        for ev in items:
            path, _ = stored_clip(core, ev["id"])
            inside, _ = regions(W, H)
            assert max(float(f[inside].max()) for f in decoded(path)) <= 12
            thumb = a.get(f"/api/v1/events/{ev['id']}/thumbnail")
            img = np.asarray(Image.open(io.BytesIO(thumb.content)).convert("RGB")).astype(np.int16)
            t_inside, _ = regions(img.shape[1], img.shape[0], inset=4)
            assert img[t_inside].max() <= 25
        assert not [f for f in kit.stored_files(core) if f.startswith(".tmp")]  # no staged file left
    finally:
        srv.stop()


def test_openapi_documents_the_masks_and_the_422(api: Any, server: LiveServer) -> None:
    import jsonschema

    a, cam, _ = setup_camera(api, "schema.masks@example.com")
    op = httpx.get(server.url + "/openapi.json").json()["paths"]["/api/v1/cameras/{camera_id}"]["patch"]
    body = {"privacy_masks": [[0.25, 0.25, 0.75, 0.5]]}
    jsonschema.validate(body, op["requestBody"]["content"]["application/json"]["schema"])
    r = a.patch(f"/api/v1/cameras/{cam['id']}", json=body)
    jsonschema.validate(r.json(), op["responses"]["200"]["content"]["application/json"]["schema"])
    assert r.json()["privacy_masks"] == body["privacy_masks"]
    r = a.patch(f"/api/v1/cameras/{cam['id']}", json={"privacy_masks": [[0, 0, 2, 1]]})
    assert r.status_code == 422 and "422" in op["responses"]
    jsonschema.validate(r.json(), op["responses"]["422"]["content"]["application/json"]["schema"])
