"""The timeline's verdict filter offers the false-alarm causes stored on the clips someone may see, also those no
loaded detector names any more (a plugin since removed), so that such clips can still be found by their cause."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alarmcloud import db
from alarmcloud.auth import User
from alarmcloud.models import Clip, FindingRow, Series
from alarmcloud.testing import LiveServer, migrated_database, two_tenants
from alarmcloud.web.pages import CORE_VERDICTS, filter_verdicts, stored_causes, stored_labels


def options(page: str) -> dict[str, str]:
    """The verdict filter's options of a timeline page: value -> the words shown."""
    select = re.search(r'<select name="verdict" id="f-verdict">(.*?)</select>', page, re.S)
    assert select, page[:500]
    return {v: html.unescape(t) for v, t in re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>',
                                                        select.group(1))}


def set_verdict(server: LiveServer, event_id: str, verdict: str) -> None:
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        clip = s.get(Clip, event_id)
        clip.verdict = verdict
        s.add(clip)
        s.commit()


def test_a_removed_detectors_cause_stays_in_the_filter(server: LiveServer, api: Any, clip: Path) -> None:
    owner = api().register("causes@example.com")
    shed, gate = owner.camera("Shed"), owner.camera("Gate")
    fog = owner.upload_analysed(owner.upload_credentials(shed["id"]), clip)
    smoke = owner.upload_analysed(owner.upload_credentials(gate["id"]), clip)
    set_verdict(server, fog["id"], "false_alarm:fog")  # found by a fog detector that is no longer installed
    set_verdict(server, smoke["id"], "false_alarm:smoke")
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        s.add(FindingRow(clip_id=fog["id"], account_id=owner.id, detector="fog", label="fog", score=0.9))
        s.commit()
    r = owner.post("/api/v1/subusers", json={"email": "gate@example.com", "password": "another good pw",
                                             "rights": {gate["id"]: "view"}})
    assert r.status_code == 201, r.text

    seen = options(owner.get("/").text)
    assert seen["false_alarm:fog"] == "False alarm: fog" and seen["false_alarm:smoke"] == "False alarm: smoke"
    # after the causes detectors name, before the core's own (the order of verdict_names)
    order = list(seen)
    assert order[1] == "alarm" and order.index("false_alarm:fog") < order.index("false_alarm:no_motion")
    assert order[-1] == "false_alarm"  # "Any false alarm" stays last
    # choosing it finds the clip
    page = owner.get("/?verdict=false_alarm:fog").text
    assert f'data-event-id="{fog["id"]}"' in page and f'data-event-id="{smoke["id"]}"' not in page
    assert 'value="false_alarm:fog" selected' in page
    # the label filter offers the removed detector's label too, and finds its clip by it
    assert "<option>fog</option>" in owner.get("/").text
    page = owner.get("/?label=fog").text
    assert f'data-event-id="{fog["id"]}"' in page and f'data-event-id="{smoke["id"]}"' not in page

    # a sub-user is offered the causes of the cameras it may see only
    sub = api().login("gate@example.com", "another good pw")
    page = sub.get("/").text
    seen = options(page)
    assert "false_alarm:smoke" in seen and "false_alarm:fog" not in seen and "<option>fog</option>" not in page
    # another account is offered neither
    stranger = api().register("stranger@example.com")
    page = stranger.get("/").text
    seen = options(page)
    assert "<option>fog</option>" not in page and "false_alarm:fog" not in seen and "false_alarm:smoke" not in seen
    assert "alarm" in seen and "false_alarm:no_motion" in seen


def test_the_filter_keeps_the_named_causes_first_and_each_once() -> None:
    names = {"alarm": CORE_VERDICTS["alarm"], "false_alarm:rain": ("Rain", "rain"),
             **{v: t for v, t in CORE_VERDICTS.items() if v != "alarm"}}
    got = filter_verdicts(names, ["false_alarm:fog", "false_alarm:no_motion", "false_alarm:rain"])
    assert got == {"alarm": "Real alarm", "false_alarm:rain": "Rain", "false_alarm:fog": "False alarm: fog",
                   "false_alarm:no_motion": "No motion", "analysis_failed": "Analysis failed"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[db.Database]:
    with migrated_database(request.param, tmp_path / "causes.db", "ac_causes_") as database:
        yield database


def test_stored_causes_and_labels_on_both_databases(database: db.Database) -> None:
    """Every false-alarm cause and finding label once, in order, whatever else the account's clips carry; none of
    another account's; a sub-user's only from its cameras; ``known`` ones left out; ``limit`` bounds the lookups."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with database.session() as s:
        owner, other, sub, cams, other_cam = two_tenants(s, cameras=2)  # the sub-user sees cams[1]
        verdicts = [(cams[0], v) for v in ("false_alarm:web", "alarm", "false_alarm:rain", "analysis_failed",
                                           "false_alarm:rain", None, "false_alarm:fog")]
        verdicts += [(cams[1], "false_alarm:snow"), (other_cam, "false_alarm:moth")]
        for i, (cam, verdict) in enumerate(verdicts):
            ser = Series(account_id=cam.account_id, camera_id=cam.id, started_at=t0, ended_at=t0)
            s.add(ser)
            s.flush()
            clip = Clip(account_id=cam.account_id, camera_id=cam.id, series_id=ser.id, blob_key=f"k{i}",
                        started_at=t0, verdict=verdict, status="done")
            s.add(clip)
            s.flush()
            labels = {cams[0].id: ("person", "plate")[: i % 3], cams[1].id: ("deer",), other_cam.id: ("moth",)}
            for label in labels[cam.id]:
                s.add(FindingRow(clip_id=clip.id, account_id=cam.account_id, detector="d", label=label, score=0.5))
        s.commit()
        owner_user, sub_user = User(account=owner, via="session"), User(account=sub, via="session")
        other_user = User(account=other, via="session")
    with database.session() as s:
        assert stored_causes(s, owner_user) == ["false_alarm:fog", "false_alarm:rain", "false_alarm:snow",
                                                "false_alarm:web"]
        assert stored_causes(s, owner_user, limit=2) == ["false_alarm:fog", "false_alarm:rain"]
        assert stored_causes(s, sub_user) == ["false_alarm:snow"]
        assert stored_causes(s, other_user) == ["false_alarm:moth"]
        assert stored_causes(s, owner_user, known=frozenset({"false_alarm:rain"})) == [
            "false_alarm:fog", "false_alarm:snow", "false_alarm:web"]
        assert stored_labels(s, owner_user) == ["deer", "person", "plate"]
        assert stored_labels(s, owner_user, known=frozenset({"person"})) == ["deer", "plate"]
        assert stored_labels(s, sub_user) == ["deer"]
        assert stored_labels(s, other_user) == ["moth"]
