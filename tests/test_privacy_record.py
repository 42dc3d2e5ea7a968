"""Record of processing (Art. 30), the privacy policy page, the CLI and the retention schedules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from alarmcloud.cli import main
from alarmcloud.models import Clip, FindingRow, PluginState, utcnow
from alarmcloud.privacy import run_retention
from alarmcloud.testing import LiveServer
from click.testing import CliRunner
from sqlmodel import select


def test_processing_record_lists_core_and_every_enabled_plugin(server: LiveServer) -> None:
    core: Any = server.core
    r = httpx.get(server.url + "/api/v1/privacy/processing")
    assert r.status_code == 200
    acts = r.json()["activities"]
    names = {a["name"] for a in acts}
    assert "core: access log" in names and "core: accounts and login" in names
    plugins = [*core.plugins.detector_specs, *core.plugins.camera_specs, *core.plugins.integration_specs]
    assert plugins, "the test deployment enables plugins"
    by_name = {a["name"]: a for a in acts}
    declared = 0
    for kind, specs in (("detector", core.plugins.detector_specs), ("camera", core.plugins.camera_specs),
                        ("integration", core.plugins.integration_specs)):
        for name, spec in specs.items():
            act = by_name[f"{kind}: {name}"]
            rec = getattr(spec, "privacy", None)
            if rec is not None:  # the plugin's own declaration, word for word
                declared += 1
                assert (act["data"], act["purpose"], act["recipients"], act["retention"], act["declared"]) == \
                    (list(rec.data), rec.purpose, list(rec.recipients), rec.retention, True), name
    assert declared, "the plugins of this deployment declare what they process"
    for a in acts:
        assert {"data", "purpose", "recipients", "retention", "legal_basis"} <= set(a)
    page = httpx.get(server.url + "/privacy")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for a in acts:
        assert a["purpose"].replace("'", "&#x27;") in page.text
    assert "http://" not in page.text.replace(core.settings.public_url, "") and "https://" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_cli_record_and_retention_dry_run(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(main, ["privacy", "record", "--json", "--data-dir", str(tmp_path / "d")])
    assert r.exit_code == 0, r.output
    names = {a["name"] for a in json.loads(r.stdout)["activities"]}
    assert {"core: access log", "integration: alexa", "integration: ifttt"} <= names
    # only what this deployment enables: a disabled plugin is not in the record
    r = runner.invoke(main, ["privacy", "record", "--json", "--data-dir", str(tmp_path / "d")],
                      env={"ALARMCLOUD_PLUGINS__DISABLE": "integrations:alexa"})
    assert r.exit_code == 0, r.output
    names = {a["name"] for a in json.loads(r.stdout)["activities"]}
    assert "integration: alexa" not in names and "integration: ifttt" in names
    r = runner.invoke(main, ["privacy", "retention", "--dry-run", "--data-dir", str(tmp_path / "d")])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["dry_run"] is True
    r = runner.invoke(main, ["privacy", "erase-inactive", "--dry-run", "--data-dir", str(tmp_path / "d")])
    assert r.exit_code == 0 and json.loads(r.stdout)["erased"] == []


def test_retention_of_clips_plates_and_exports(api: Any, server: LiveServer, privacy: Any, tmp_path: Path) -> None:
    core: Any = server.core
    a = privacy.populate(api, tmp_path, "old-clips@example.com")
    b = privacy.populate(api, tmp_path, "new-clips@example.com")
    acc = a["api"]
    assert acc.post("/api/v1/me/exports").status_code == 202
    core.settings.privacy.plates_days = 3
    with core.db.session() as s:
        clip = s.get(Clip, a["event_id"])
        clip.started_at = utcnow() - timedelta(days=core.settings.storage.retention_days + 1)
        s.add(clip)
        bclip = s.get(Clip, b["event_id"])
        bclip.started_at = utcnow() - timedelta(days=5)  # older than plates_days, younger than clip retention
        s.add(bclip)
        for cid, acc_id in ((a["event_id"], acc.id), (b["event_id"], b["api"].id)):
            s.add(FindingRow(clip_id=cid, account_id=acc_id, detector="plates", label="plate", score=0.9,
                             text="MAB123"))
        s.commit()
    import time

    time.sleep(1.0)  # let the export job finish
    with core.db.session() as s:
        for row in s.exec(select(PluginState).where(PluginState.plugin == "privacy")).all():
            row.updated_at = utcnow() - timedelta(days=core.settings.privacy.export_days + 1)
            s.add(row)
        s.commit()
    dry = run_retention(core, dry_run=True)
    assert (dry["clips"], dry["plates"], dry["exports"]) == (1, 2, 1)
    assert core.blobs.exists(f"{acc.id}/{a['camera']['id']}/{a['event_id']}.mp4")
    report = run_retention(core)
    assert (report["clips"], report["exports"]) == (1, 1)
    assert acc.get(f"/api/v1/events/{a['event_id']}").status_code == 404
    assert not core.blobs.exists(f"{acc.id}/{a['camera']['id']}/{a['event_id']}.mp4")
    assert list(core.blobs.keys("exports")) == []
    with core.db.session() as s:
        assert s.exec(select(FindingRow).where(FindingRow.label == "plate")).all() == []
        assert s.exec(select(PluginState).where(PluginState.plugin == "privacy")).all() == []  # the job row too
        assert s.get(Clip, b["event_id"]) is not None  # within its retention


def _upload_recorded(a: Any, creds: dict[str, Any], clip: Path, recorded: str) -> tuple[str, datetime]:
    """Upload ``clip`` with the camera's ``X-Recorded-At``; its event id and the start time the server stored."""
    r = a.upload(creds, clip, **{"X-Recorded-At": recorded})
    assert r.status_code == 201, r.text
    event_id = r.json()["event_id"]
    return event_id, datetime.fromisoformat(a.get(f"/api/v1/events/{event_id}").json()["started_at"])


def test_a_camera_whose_clock_runs_ahead_cannot_keep_its_clips_past_retention(api: Any, server: LiveServer,
                                                                             clip: Path) -> None:
    """A camera whose clock runs years ahead (never set, a wrong time zone) says its clips were recorded in 2099:
    believed, they would top the timeline and outlive the retention period. Such a clip is placed at its arrival; a
    clock a minute fast is believed. A clip stored with a time ahead (before this check) is deleted by retention once
    the server has held it for the retention period, and its plate reads once held for the plate period."""
    core: Any = server.core
    a = api().register("clock-ahead@example.com")
    creds = a.upload_credentials(a.camera("Gate")["id"])
    before = utcnow()
    ahead, started = _upload_recorded(a, creds, clip, "2099-01-01T00:00:00Z")
    assert before - timedelta(seconds=30) <= started <= utcnow()  # the arrival less the clip's 18 s
    fast = (utcnow() + timedelta(minutes=1)).replace(microsecond=0)
    believed, started = _upload_recorded(a, creds, clip, fast.isoformat())
    assert started == fast

    days = core.settings.storage.retention_days
    core.settings.privacy.plates_days = 3
    with core.db.session() as s:  # as stored before the check, and held by the server past both periods
        row = s.get(Clip, ahead)
        row.started_at = datetime(2099, 1, 1, tzinfo=UTC)
        row.received_at = utcnow() - timedelta(days=days + 1)
        s.add(row)
        kept = s.get(Clip, believed)  # within the clip retention, past the plate period, its time still ahead
        kept.started_at = datetime(2099, 1, 1, tzinfo=UTC)
        kept.received_at = utcnow() - timedelta(days=5)
        s.add(kept)
        s.add(FindingRow(clip_id=believed, account_id=a.id, detector="plates", label="plate", score=0.9, text="K1"))
        s.commit()
    report = run_retention(core)
    assert (report["clips"], report["plates"]) == (1, 1)
    assert a.get(f"/api/v1/events/{ahead}").status_code == 404
    assert a.get(f"/api/v1/events/{believed}").status_code == 200
    with core.db.session() as s:
        assert s.exec(select(FindingRow).where(FindingRow.label == "plate")).all() == []


def test_a_camera_whose_clock_was_reset_does_not_lose_its_new_clips_to_retention(api: Any, server: LiveServer,
                                                                                clip: Path) -> None:
    """A camera that lost power and has no time server starts at 1970: believed, its new alarm would be deleted by
    the next retention run and never show on the timeline's first page. A recording time older than the account
    keeps clips is taken for such a clock (the arrival is used); a clip the camera held back for days is believed."""
    core: Any = server.core
    a = api().register("clock-reset@example.com")
    creds = a.upload_credentials(a.camera("Gate")["id"])
    before = utcnow()
    reset, started = _upload_recorded(a, creds, clip, "1970-01-01T00:00:00Z")
    assert before - timedelta(seconds=30) <= started <= utcnow()
    held = (utcnow() - timedelta(days=core.settings.storage.retention_days - 2)).replace(microsecond=0)
    backlog, started = _upload_recorded(a, creds, clip, held.isoformat())
    assert started == held
    assert [e["id"] for e in a.get("/api/v1/events").json()["items"]] == [reset, backlog]  # the new one first
    assert run_retention(core)["clips"] == 0
    assert a.get(f"/api/v1/events/{reset}").status_code == 200 and a.get(f"/api/v1/events/{backlog}").status_code == 200
