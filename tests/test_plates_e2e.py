"""Licence plates end to end: the plates detector on uploaded clips, known/unknown plate webhooks, fuzzy search,
detection only where switched on, export and deletion with the clip."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from alarmcloud.models import Outbox
from alarmcloud.testing import make_clip, test_settings
from sqlmodel import select

pytest.importorskip("alarmcloud_detect_plates")


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    st = test_settings(tmp_path / "data", camera_networks=["127.0.0.0/8"])
    st.notify.webhook_networks = ["127.0.0.0/8", "::1/128"]  # the receiver of this test runs on loopback
    return st


def _plate_scene(text: str) -> Callable[[int, float, int, int], np.ndarray]:
    """A driveway with a white plate carrying ``text`` that moves slowly to the right."""

    def scene(i: int, t: float, w: int, h: int) -> np.ndarray:
        img = np.full((h, w, 3), 90, np.uint8)
        img[h // 2 :, :] = 60
        x, y = int(w * 0.3 + t * 20), int(h * 0.6)
        cv2.rectangle(img, (x - 10, y - 45), (x + 330, y + 12), (245, 245, 245), -1)
        cv2.rectangle(img, (x - 10, y - 45), (x + 330, y + 12), (20, 20, 20), 3)
        cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (15, 15, 15), 4, cv2.LINE_AA)
        noise = np.random.default_rng(i).integers(-4, 5, size=img.shape)
        return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)

    return scene


def _plates(ev: dict[str, Any]) -> list[str]:
    return [f["text"] for f in ev["findings"] if f["label"] == "plate"]


def _exported_plates(a: Any) -> set[str]:
    r = a.get("/api/v1/me/export")
    assert r.status_code == 200, r.text
    data = json.loads(zipfile.ZipFile(io.BytesIO(r.content)).read("account.json"))
    return {f["text"] for f in data["plates_read"]}


def _search(a: Any, plate: str) -> list[str]:
    r = a.get("/api/v1/events", params={"plate": plate})
    assert r.status_code == 200, r.text
    return [e["id"] for e in r.json()["items"]]


def test_known_and_unknown_plates_notify_search_and_privacy(
    api: Any, server: Any, receiver: Any, tmp_path: Path
) -> None:
    a = api().register("plates@example.com")
    assert a.post("/api/v1/plates", json={"text": "M-AB 1234", "name": "Family car", "notify": True}).status_code == 201
    assert a.post("/api/v1/plates", json={"text": "B XY 77", "name": "Neighbour", "notify": False}).status_code == 201
    hook = a.post("/api/v1/webhooks", json={"url": receiver.url + "/plates", "events": ["plate.recognised"],
                                            "only_real_alarms": False})
    assert hook.status_code == 201, hook.text
    gate, street = a.camera("Gate"), a.camera("Street")
    r = a.put(f"/api/v1/cameras/{gate['id']}/detectors", json={"plates": True, "options": {"plates": {
        "countries": ["DE"]}}})
    assert r.status_code == 200, r.text
    clips = {text: make_clip(tmp_path / f"{i}.mp4", seconds=6, width=1280, height=720, gop_seconds=1.0,
                             scene=_plate_scene(text)) for i, text in enumerate(["M AB 1234", "K XY 987", "B XY 77"])}
    creds = a.upload_credentials(gate["id"])
    ids = {}
    for text, path in clips.items():
        r = a.upload(creds, path)
        assert r.status_code == 201, r.text
        ids[text] = r.json()["event_id"]
    events = {text: a.wait_event(i) for text, i in ids.items()}
    assert {t: _plates(ev) for t, ev in events.items()} == {
        "M AB 1234": ["MAB1234"], "K XY 987": ["KXY987"], "B XY 77": ["BXY77"]}

    # the owner is told about the known plate by name and about the unknown one; "notify: false" stays quiet
    deadline = time.monotonic() + 30
    while len(receiver.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    got = sorted((json.loads(r["body"]) for r in receiver.requests), key=lambda b: b["text"])
    assert [(b["type"], b["text"], b["known"], b["name"]) for b in got] == [
        ("plate.recognised", "KXY987", False, None),
        ("plate.recognised", "MAB1234", True, "Family car"),
    ]
    assert {b["clip_id"] for b in got} == {ids["K XY 987"], ids["M AB 1234"]}
    assert (got[1]["match"], got[1]["known_text"]) == ("exact", "MAB1234") and "match" not in got[0]

    # search by plate: the exact text in any spelling, one character off, nothing for other plates
    assert _search(a, "m-ab 1234") == [ids["M AB 1234"]]
    assert _search(a, "MAB1235") == [ids["M AB 1234"]]
    assert _search(a, "KXY98") == [ids["K XY 987"]]
    assert _search(a, "HH Q 9") == []

    # the detector runs only where the owner switched it on
    street_creds = a.upload_credentials(street["id"])
    off = a.wait_event(a.upload(street_creds, clips["M AB 1234"]).json()["event_id"])
    assert off["status"] == "done" and _plates(off) == []
    assert _search(a, "MAB1234") == [ids["M AB 1234"]]

    # plate reads are in the data export and go with their clip
    assert _exported_plates(a) == {"MAB1234", "KXY987", "BXY77"}
    assert a.delete(f"/api/v1/events/{ids['M AB 1234']}").status_code in (200, 204)
    assert _search(a, "MAB1234") == []
    assert _exported_plates(a) == {"KXY987", "BXY77"}
    # by now every event of the three clips has long been handled: still nothing about the neighbour's car
    with server.core.db.session() as s:
        queued = [o.payload for o in s.exec(select(Outbox)).all() if o.payload.get("type") == "plate.recognised"]
    assert sorted(p["text"] for p in queued) == ["KXY987", "MAB1234"]
