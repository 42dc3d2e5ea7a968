"""Detections run only where the customer switched them on for that camera."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alarmcloud import pipeline
from alarmcloud.testing import LiveServer


def test_detectors_run_only_on_cameras_that_switched_them_on(api: Any, server: LiveServer, tmp_path: Path,
                                                             monkeypatch: Any, kit: Any) -> None:
    ran: dict[str, list[str]] = {}
    real = pipeline.analyze_file

    def spy(host: Any, path: Path, names: list[str], *args: Any, **kw: Any) -> Any:
        ran[path.stem] = sorted(names)
        return real(host, path, names, *args, **kw)

    monkeypatch.setattr(pipeline, "analyze_file", spy)
    a = api().register("detections@example.com")
    on, off = a.camera("Yard"), a.camera("Hall")
    assert a.put(f"/api/v1/cameras/{on['id']}/detectors", json={"rain": True, "plates": True}).status_code == 200
    assert a.put(f"/api/v1/cameras/{off['id']}/detectors", json={"rain": False}).status_code == 200
    clip = kit.small_clip(tmp_path / "c.mp4")
    ids = {}
    for cam in (on, off):
        r = a.upload(a.upload_credentials(cam["id"]), clip)
        assert r.status_code in (200, 201), r.text
        ids[cam["id"]] = r.json()["event_id"]
        assert a.wait_event(ids[cam["id"]])["status"] == "done"
    assert ran == {ids[on["id"]]: ["plates", "rain"], ids[off["id"]]: []}
    assert a.get(f"/api/v1/events/{ids[off['id']]}").json()["findings"] == []
