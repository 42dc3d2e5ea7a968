"""Only videos from supported cameras are stored; anything else is deleted at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alarmcloud.testing import LiveServer


def test_a_video_the_camera_cannot_have_recorded_is_not_stored(api: Any, server: LiveServer, kit: Any,
                                                                tmp_path: Path) -> None:
    """A well-formed MP4 that the camera's adapter does not recognise (here: a frame size no INSTAR records)."""
    core: Any = server.core
    a = api().register("uploader@example.com")
    cam = a.camera("Drive")
    creds = a.upload_credentials(cam["id"])
    odd = kit.small_clip(tmp_path / "odd.mp4", width=208, height=208)
    r = a.upload(creds, odd)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unsupported_video", r.text
    assert kit.row_counts(core) == {"clips": 0, "jobs": 0, "series": 0}
    assert kit.stored_files(core) == []  # nothing kept, not even in staging
    rejections = a.get(f"/api/v1/cameras/{cam['id']}/rejections").json()["items"]
    assert [x["code"] for x in rejections] == ["unsupported_video"] and "208x208" in rejections[0]["message"]
    # the same camera's own kind of clip is stored
    assert a.upload(creds, kit.small_clip(tmp_path / "ok.mp4")).status_code == 201
