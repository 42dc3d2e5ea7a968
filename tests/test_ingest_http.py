"""HTTP ingest over real loopback HTTP: upload, read API with Range, rejections, tenancy, series, quota."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from alarmcloud.testing import test_settings
from alarmcloud.video import thumbnail_jpeg

CAP = 3 * 1024 * 1024


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    st: Any = test_settings(tmp_path / "data", camera_networks=["127.0.0.0/8"])
    st.ingest.max_upload_bytes = CAP
    return st


@pytest.fixture
def cam(api: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    a = api().register("http@example.com")
    c = a.camera("Porch")
    return a, c, a.upload_credentials(c["id"])


def _auth(creds: dict[str, Any], scheme: str = "Basic") -> dict[str, str]:
    raw = f"{creds['username']}:{creds['password']}"
    return {"Authorization": f"Basic {base64.b64encode(raw.encode()).decode()}" if scheme == "Basic"
            else f"Bearer {raw}"}


def _post(a: Any, creds: dict[str, Any], body: Any, scheme: str = "Basic", **kw: Any) -> httpx.Response:
    headers = {**_auth(creds, scheme), "Content-Type": "video/mp4", **kw.pop("headers", {})}
    return httpx.post(a.base + "/api/v1/ingest/clips", content=body, headers=headers, timeout=60, **kw)


def _audio_only_mp4(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        st = out.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 8000 * 3), dtype=np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 8000, 0
        for pkt in st.encode(frame):
            out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    return path


def test_upload_list_thumbnail_range_delete(cam: Any, kit: Any, server: Any, tmp_path: Path) -> None:
    a, c, creds = cam
    clip = kit.small_clip(tmp_path / "A_one.mp4", seconds=4)
    data = clip.read_bytes()
    r = _post(a, creds, data, headers={"X-File-Name": "A_one.mp4", "X-Trigger": "area1"})
    assert r.status_code == 201, r.text
    eid = r.json()["event_id"]
    items = a.get("/api/v1/events").json()["items"]
    assert [e["id"] for e in items] == [eid]
    ev = items[0]
    assert ev["camera_id"] == c["id"] and ev["original_name"] == "A_one.mp4"
    assert ev["width"] == 320 and ev["height"] == 176 and ev["size_bytes"] == len(data)
    assert ev["trigger"] == {"trigger": "area1"}
    thumb = a.get(ev["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content.startswith(b"\xff\xd8")
    full = a.get(ev["video_url"])
    assert full.status_code == 200 and full.content == data and full.headers["accept-ranges"] == "bytes"
    size = len(data)
    for rng, start, end in [("bytes=100-199", 100, 199), ("bytes=-50", size - 50, size - 1),
                            (f"bytes={size - 10}-", size - 10, size - 1), ("bytes=0-0", 0, 0),
                            (f"bytes=10-{size + 100}", 10, size - 1)]:
        part = a.get(ev["video_url"], headers={"Range": rng})
        assert part.status_code == 206, rng
        assert part.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert part.content == data[start:end + 1]
    for bad in (f"bytes={size}-", "bytes=500-100", "bytes=abc", "bytes=-", "items=0-1"):
        part = a.get(ev["video_url"], headers={"Range": bad})
        assert part.status_code == 416, bad
        assert part.headers["content-range"] == f"bytes */{size}"
    # the stored clip really decodes and seeks
    with av.open(str(server.core.blobs.path(f"{a.id}/{c['id']}/{eid}.mp4"))) as container:
        container.seek(2_000_000, any_frame=False)
        assert next(container.decode(video=0)).width == 320
    assert a.delete(f"/api/v1/events/{eid}").status_code == 204
    assert a.get(f"/api/v1/events/{eid}").status_code == 404
    assert a.get("/api/v1/events").json()["items"] == []


def test_multipart_with_metadata_and_bearer(cam: Any, kit: Any, tmp_path: Path) -> None:
    a, _, creds = cam
    clip = kit.small_clip(tmp_path / "A_mp.mp4", seconds=3)
    snap = thumbnail_jpeg(kit.small_clip(tmp_path / "snap.mp4", seconds=1, fps=5), width=120)
    recorded = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2, hours=3)  # a clip the camera held back
    r = httpx.post(a.base + "/api/v1/ingest/clips", headers=_auth(creds, "Bearer"), timeout=60,
                   files={"file": ("A_mp.mp4", clip.read_bytes(), "video/mp4"),
                          "snapshot": ("A_mp.jpg", snap, "image/jpeg")},
                   data={"recorded_at": recorded.isoformat(), "trigger": "pir", "original_name": "A_mp.mp4"})
    assert r.status_code == 201, r.text
    ev = a.get(f"/api/v1/events/{r.json()['event_id']}").json()
    assert datetime.fromisoformat(ev["started_at"]) == recorded
    assert ev["trigger"] == {"trigger": "pir"} and ev["original_name"] == "A_mp.mp4"
    assert a.get(ev["thumbnail_url"]).content == snap


def test_rejected_uploads_leave_nothing(cam: Any, kit: Any, server: Any, tmp_path: Path) -> None:
    a, c, creds = cam
    core = server.core
    good = kit.small_clip(tmp_path / "A_good.mp4", seconds=3).read_bytes()
    long = kit.small_clip(tmp_path / "A_long.mp4", seconds=601, width=160, height=96, fps=1)
    bodies: dict[str, bytes] = {
        "jpeg renamed .mp4": thumbnail_jpeg(tmp_path / "A_good.mp4"),
        "truncated mp4": good[: len(good) // 2],
        "random bytes": os.urandom(200_000),
        "zero bytes": b"",
        "audio only": _audio_only_mp4(tmp_path / "audio.mp4").read_bytes(),
        "10 minute clip": long.read_bytes(),
    }
    for what, body in bodies.items():
        r = _post(a, creds, body, headers={"X-File-Name": "A_x.mp4"})
        assert 400 <= r.status_code < 500, (what, r.status_code, r.text)
        err = r.json()["error"]
        assert err["code"] and err["message"], what
    over = _post(a, creds, os.urandom(CAP + 1))
    assert over.status_code == 413 and over.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap is enforced while streaming
        for _ in range(CAP // 65536 + 4):
            yield os.urandom(65536)

    try:
        streamed = _post(a, creds, chunks())
        assert streamed.status_code == 413
    except httpx.TransportError:
        pass  # the server may close before the client finished sending: also a refusal
    assert kit.row_counts(core) == {"clips": 0, "jobs": 0, "series": 0}
    assert kit.stored_files(core) == []
    rej = a.get(f"/api/v1/cameras/{c['id']}/rejections").json()["items"]
    assert len(rej) == len(bodies)
    assert "clip_too_long" in {x["code"] for x in rej}
    assert all(x["message"] for x in rej)
    assert a.get(f"/api/v1/cameras/{c['id']}").json().get("rejected_count", len(bodies)) == len(bodies)


def test_upload_credentials_required(cam: Any, kit: Any, tmp_path: Path) -> None:
    a, _, creds = cam
    body = kit.small_clip(tmp_path / "A.mp4", seconds=2).read_bytes()
    assert _post(a, {**creds, "password": creds["password"] + "x"}, body).status_code == 401
    assert _post(a, {**creds, "username": "nobody"}, body).status_code == 401
    r = httpx.post(a.base + "/api/v1/ingest/clips", content=body, headers={"Content-Type": "video/mp4"})
    assert r.status_code == 401 and "basic" in r.headers["www-authenticate"].lower()
    assert a.get("/api/v1/events").json()["items"] == []


def test_other_tenant_gets_404(cam: Any, api: Any, kit: Any, tmp_path: Path) -> None:
    a, _, creds = cam
    r = _post(a, creds, kit.small_clip(tmp_path / "A.mp4", seconds=2).read_bytes())
    eid = r.json()["event_id"]
    b = api().register("intruder@example.com")
    for method, path, kw in [
        ("GET", f"/api/v1/events/{eid}", {}),
        ("GET", f"/api/v1/events/{eid}/video", {}),
        ("GET", f"/api/v1/events/{eid}/video", {"headers": {"Range": "bytes=0-10"}}),
        ("HEAD", f"/api/v1/events/{eid}/video", {}),
        ("GET", f"/api/v1/events/{eid}/thumbnail", {}),
        ("POST", f"/api/v1/events/{eid}/feedback", {"json": {"label": "false_alarm"}}),
        ("DELETE", f"/api/v1/events/{eid}", {}),
    ]:
        resp = b.req(method, path, **kw)
        assert resp.status_code == 404, (method, path, resp.status_code)
    assert b.get("/api/v1/events").json()["items"] == []
    assert a.get(f"/api/v1/events/{eid}").status_code == 200
    assert a.get(f"/api/v1/events/{eid}/video").status_code == 200


def test_series_grouping_and_quota_eviction(cam: Any, server: Any, kit: Any, tmp_path: Path) -> None:
    a, _, creds = cam
    core = server.core
    clips = [kit.small_clip(tmp_path / f"A_{i}.mp4", seconds=3, fps=10 + i) for i in range(4)]
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)  # as the camera's clock says
    # two clips 20 s apart: one series; one 30 min later: a new series
    ids = []
    for i, offset in enumerate((0, 20, 1800)):
        r = _post(a, creds, clips[i].read_bytes(),
                  headers={"X-Recorded-At": (t0 + timedelta(seconds=offset)).isoformat()})
        assert r.status_code == 201, r.text
        ids.append(r.json())
    assert ids[0]["series_id"] == ids[1]["series_id"] != ids[2]["series_id"]
    series = a.get("/api/v1/series").json()["items"]
    assert [s["clip_count"] for s in series] == [1, 2]
    assert [c["id"] for c in series[1]["clips"]] == [ids[0]["clip_id"], ids[1]["clip_id"]]
    # quota just above two clips: the next upload evicts the oldest ones, never itself
    from alarmcloud.models import Account

    sizes = [p.stat().st_size for p in clips]
    quota = sizes[2] + sizes[3] + 100
    with core.db.session() as s:
        acc = s.get(Account, a.id)
        acc.quota_bytes = quota
        s.add(acc)
        s.commit()
    r = _post(a, creds, clips[3].read_bytes(), headers={"X-Recorded-At": (t0 + timedelta(hours=1)).isoformat()})
    assert r.status_code == 201, r.text
    left = [e["id"] for e in a.get("/api/v1/events").json()["items"]]
    assert left == [r.json()["clip_id"], ids[2]["clip_id"]]
    st = a.get("/api/v1/storage").json()
    assert st["used_bytes"] <= quota and st["clip_count"] == 2 and st["quota_bytes"] == quota
    mp4s = [f for f in kit.stored_files(core) if f.endswith(".mp4")]
    assert sorted(Path(f).stem for f in mp4s) == sorted(left)
    # a clip larger than the whole quota is refused, and nothing is evicted for it
    with core.db.session() as s:
        acc = s.get(Account, a.id)
        acc.quota_bytes = 1000
        s.add(acc)
        s.commit()
    r = _post(a, creds, clips[0].read_bytes())
    assert r.status_code == 413 and r.json()["error"]["code"] == "over_quota"
    assert [e["id"] for e in a.get("/api/v1/events").json()["items"]] == left
