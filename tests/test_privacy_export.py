"""Right of access / portability: the streamed ZIP and the background export job."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from alarmcloud.testing import LiveServer, settings_on

BOTH_DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BOTH_DATABASES)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Every test here runs on SQLite and on a fresh database of a real PostgreSQL server."""
    with settings_on(request.param, tmp_path / "data", camera_networks=["127.0.0.0/8"]) as st:
        yield st


def test_export_streams_zip_with_data_and_clips(api: Any, server: LiveServer, privacy: Any, tmp_path: Path) -> None:
    core: Any = server.core
    a = privacy.populate(api, tmp_path, "export@example.com")
    other = privacy.populate(api, tmp_path, "other@example.com")
    acc = a["api"]
    link = privacy.link_ifttt(core, acc.id)
    anyio.run(lambda: core.services.set_state("ifttt", acc.id, "trigger:abc", {"fields": {"camera": "Garage"}}))
    core.usage.flush()
    with core.db.session() as s:
        s.add(a["finding_cls"](clip_id=a["event_id"], account_id=acc.id, detector="plates", label="plate",
                               score=0.9, text="MAB123"))
        s.commit()
    with acc.http.stream("GET", "/api/v1/me/export") as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/zip"
        assert "content-length" not in r.headers  # streamed, not built in memory first
        body = b"".join(r.iter_bytes())
    zf = zipfile.ZipFile(io.BytesIO(body))
    data = json.loads(zf.read("account.json"))
    assert data["profile"][0]["email"] == "export@example.com"
    assert "password_hash" not in data["profile"][0]
    cam = data["cameras"][0]
    assert cam["id"] == a["camera"]["id"] and "password_enc" not in cam and "upload_password_hash" not in cam
    assert [e["id"] for e in data["events"]] == [a["event_id"]]
    assert data["plates"][0]["text"] == "MAB123"
    assert data["feedback"][0]["label"] == "rain"
    assert data["consents"][0]["kind"] == "clip_release"
    assert [(f["clip_id"], f["text"]) for f in data["findings"]] == [(a["event_id"], "MAB123")]
    assert [f["text"] for f in data["plates_read"]] == ["MAB123"]
    assert {u["subject"] for u in data["usage"]} >= {f"camera:{a['camera']['id']}", f"account:{acc.id}"}
    assert any(x.get("client_id") == link and x.get("integration") == "ifttt" for x in data["linked_services"])
    assert any(c["kind"] == "integration_grant" for c in data["linked_services"])
    assert [(p["plugin"], p["key"]) for p in data["plugin_state"]] == [("ifttt", "trigger:abc")]
    assert any(x.get("family_id") for x in data["linked_services"])  # the OAuth tokens' rows are there...
    text = body.decode("latin-1")
    for section, rows in data.items():  # ... but no hash, ciphertext or secret, in any table
        for row in rows if isinstance(rows, list) else []:
            bad = [k for k in row if k.endswith(("_hash", "_enc", "secret")) or k in ("csrf_token", "password")]
            assert bad == [], (section, bad)
    with core.db.session() as s:
        hashes = [v for t in ("oauth_tokens", "api_tokens", "sessions") for row in
                  s.execute(sa.text(f"SELECT * FROM {t}")).mappings() for k, v in row.items() if k.endswith("hash")]
    assert hashes and not [h for h in hashes if h and h in text]
    assert a["token"] not in text
    assert all("token_hash" not in t for t in data["api_tokens"])
    assert f"clips/{a['event_id']}.mp4" in zf.namelist() and f"clips/{a['event_id']}.jpg" in zf.namelist()
    clip_bytes = zf.read(f"clips/{a['event_id']}.mp4")
    assert clip_bytes == acc.get(f"/api/v1/events/{a['event_id']}/video").content
    # nothing of the other account
    assert other["event_id"] not in body.decode("latin-1") and "other@example.com" not in body.decode("latin-1")


def test_export_is_produced_piece_by_piece(api: Any, server: LiveServer, privacy: Any, tmp_path: Path,
                                          monkeypatch: Any) -> None:
    """The ZIP leaves in pieces no bigger than one read buffer: memory stays flat however many GB an account has."""
    from alarmcloud import privacy_export

    core: Any = server.core
    a = privacy.populate(api, tmp_path, "pieces@example.com")
    clip_size = (tmp_path / f"{a['api'].id}.mp4").stat().st_size
    monkeypatch.setattr(privacy_export, "CHUNK", 1024)
    pieces = [len(p) for p in privacy_export.zip_chunks(core, a["api"].id)]
    zf = zipfile.ZipFile(io.BytesIO(b"".join(privacy_export.zip_chunks(core, a["api"].id))))
    assert zf.namelist()[0] == "account.json"
    json_size = zf.getinfo("account.json").file_size
    assert json_size > 2 * 1024  # so account.json itself had to be written in pieces
    sizes = [n for n in pieces if n > 0]
    assert len(sizes) >= (clip_size + json_size) // 1024 and max(sizes) <= 1024 + 512, (len(sizes), max(sizes))


def test_background_export_job_with_progress_and_download(api: Any, server: LiveServer, privacy: Any,
                                                          tmp_path: Path) -> None:
    core: Any = server.core
    a = privacy.populate(api, tmp_path, "job@example.com")
    acc = a["api"]
    r = acc.post("/api/v1/me/exports")
    assert r.status_code == 202, r.text
    url = r.json()["url"]
    deadline = time.monotonic() + 30
    while (info := acc.get(url).json())["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert info["state"] == "done" and info["progress"] == 1.0, info
    assert (info["clips_done"], info["clips_total"]) == (1, 1)  # progress was reported per clip
    assert any(k.startswith(f"exports/{acc.id}/") for k in core.blobs.keys("exports"))
    z = acc.get(info["download_url"])
    assert z.status_code == 200
    assert "account.json" in zipfile.ZipFile(io.BytesIO(z.content)).namelist()
    # another account cannot fetch it
    b = api().register("nosy@example.com")
    assert b.get(url).status_code == 404
    assert b.get(info["download_url"]).status_code == 404


def test_export_interrupted_by_a_crash_runs_again_on_start(api: Any, server: LiveServer, privacy: Any,
                                                           settings: Any, tmp_path: Path) -> None:
    """An export whose process died (kill -9, power loss) is started again by the next server start."""
    import socket
    import subprocess
    import sys

    from alarmcloud.models import PluginState

    core: Any = server.core
    a = privacy.populate(api, tmp_path, "crashed.export@example.com")
    acc = a["api"]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with core.db.session() as s:
        s.add(PluginState(plugin="privacy", account_id=acc.id, key="export:interrupted01",
                          value={"id": "interrupted01", "state": "running", "progress": 0.4,
                                 "runner": f"{socket.gethostname()}:{dead.pid}"}))
        s.commit()
    url = "/api/v1/me/exports/interrupted01"
    assert acc.get(url).json()["state"] == "running"
    with LiveServer(settings):  # a restarted server process on the same database
        deadline = time.monotonic() + 30
        while (info := acc.get(url).json())["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
    assert info["state"] == "done", info
    z = acc.get(info["download_url"])
    assert "account.json" in zipfile.ZipFile(io.BytesIO(z.content)).namelist()
