"""``GET /api/v1/events`` filters and cursor pagination against a reference computed in Python.

The label and plate filters have two query plans (few matching findings: read those clips; many: scan clips
newest first), so each filter is checked with both; pages are walked with the cursor across timestamp ties.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alarmcloud import db, eventsapi
from alarmcloud.auth import User
from alarmcloud.models import Clip, FindingRow, Series
from alarmcloud.notify import normalize_plate
from alarmcloud.testing import migrated_database, two_tenants

PLATES = ["M AB 1234", "M AB 1235", "B XY 77", "HH Q 9", "K LM 400"]
VERDICTS = ["alarm", "false_alarm:rain", "false_alarm:no_motion", None]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[db.Database]:
    with migrated_database(request.param, tmp_path_factory.mktemp("events") / "events.db", "ac_events_") as database:
        yield database


@pytest.fixture(scope="module")
def world(database: db.Database) -> World:
    return World(database)


class World:
    def __init__(self, database: db.Database) -> None:
        rng = random.Random(7)
        with database.session() as s:
            owner, other, sub, cams, other_cam = two_tenants(s, cameras=3)  # the sub-user sees cams[2]
            self.clips: list[dict[str, Any]] = []
            t0 = datetime(2025, 3, 1, tzinfo=UTC)
            for i in range(140):
                acc, cam = (other, other_cam) if i % 10 == 9 else (owner, cams[i % 3])
                ser = Series(account_id=acc.id, camera_id=cam.id, started_at=t0, ended_at=t0)
                s.add(ser)
                s.flush()
                started = t0 + timedelta(minutes=(i // 4) * 7)  # four clips share each timestamp: cursor ties
                verdict = rng.choice(VERDICTS)
                clip = Clip(account_id=acc.id, camera_id=cam.id, series_id=ser.id, blob_key=f"k{i}",
                            started_at=started, verdict=verdict, status="done" if verdict else "pending")
                s.add(clip)
                s.flush()
                labels, plates = set(), set()
                for _ in range(rng.choice([0, 0, 1, 2, 3])):
                    label = rng.choice(["person", "plate", "rain"])
                    text = rng.choice(PLATES) if label == "plate" else None
                    s.add(FindingRow(clip_id=clip.id, account_id=acc.id, detector="d", label=label, score=0.9,
                                     text=text))
                    labels.add(label)
                    if text:
                        plates.add(normalize_plate(text))
                self.clips.append({"id": clip.id, "account": acc.id, "camera": cam.id, "started": started,
                                   "verdict": verdict, "labels": labels, "plates": plates})
            s.commit()
            self.owner, self.sub, self.other = User(owner, "token"), User(sub, "token"), User(other, "token")
            self.cams = [c.id for c in cams]

    def expected(self, user: User, keep: Any) -> list[str]:
        cams = None if user is not self.sub else {self.cams[2]}
        rows = [c for c in self.clips if c["account"] == user.tenant_id and (cams is None or c["camera"] in cams)
                and keep(c)]
        return [c["id"] for c in sorted(rows, key=lambda c: (c["started"], c["id"]), reverse=True)]


def walk(database: db.Database, user: User, params: dict[str, str], limit: int = 7) -> list[str]:
    """All pages, following next_cursor."""
    out: list[str] = []
    cursor = None
    for _ in range(100):
        with database.session() as s:
            items, cursor = eventsapi.query_events(s, user, {**params, **({"cursor": cursor} if cursor else {})},
                                                   limit)
        out += [i["id"] for i in items]
        if cursor is None:
            return out
    raise AssertionError("pagination does not end")


def _one_off(plate: str) -> str:
    return plate[:-1] + ("0" if plate[-1] != "0" else "1")


# (name, query parameters with CAMn for the n-th camera, reference predicate on (clip, camera ids))
CASES: list[tuple[str, dict[str, str], Any]] = [
    ("all", {}, lambda c, cam: True),
    ("camera", {"camera_id": "CAM1"}, lambda c, cam: c["camera"] == cam[1]),
    ("alarm", {"verdict": "alarm"}, lambda c, cam: c["verdict"] == "alarm"),
    ("false alarm", {"verdict": "false_alarm"}, lambda c, cam: (c["verdict"] or "").startswith("false_alarm:")),
    ("person", {"label": "person"}, lambda c, cam: "person" in c["labels"]),
    ("plate label", {"label": "plate"}, lambda c, cam: "plate" in c["labels"]),
    ("no such label", {"label": "animal"}, lambda c, cam: False),
    ("plate fuzzy", {"plate": "b-xy 78"}, lambda c, cam: "BXY77" in c["plates"]),
    ("plate fuzzy, two texts", {"plate": "MAB123"}, lambda c, cam: bool(c["plates"] & {"MAB1234", "MAB1235"})),
    ("plate unknown", {"plate": "ZZ 1"}, lambda c, cam: False),
    ("rain at camera 0, alarm", {"label": "rain", "camera_id": "CAM0", "verdict": "alarm"},
     lambda c, cam: "rain" in c["labels"] and c["camera"] == cam[0] and c["verdict"] == "alarm"),
    ("time range and label", {"since": "2025-03-01T00:21:00Z", "until": "2025-03-01T01:24:00Z", "label": "person"},
     lambda c, cam: "person" in c["labels"]
     and datetime(2025, 3, 1, 0, 21, tzinfo=UTC) <= c["started"] < datetime(2025, 3, 1, 1, 24, tzinfo=UTC)),
]


@pytest.mark.parametrize("drive_max", [0, 10_000], ids=["scan-clips", "read-matching-clips"])
@pytest.mark.parametrize(("name", "params", "keep"), CASES, ids=[c[0] for c in CASES])
def test_filters_and_pages_match_reference(database: db.Database, world: World, monkeypatch: pytest.MonkeyPatch,
                                           drive_max: int, name: str, params: dict[str, str], keep: Any) -> None:
    monkeypatch.setattr(eventsapi, "DRIVE_FROM_FINDINGS_MAX", drive_max)
    w = world
    params = {k: w.cams[int(v[3:])] if v.startswith("CAM") else v for k, v in params.items()}
    for user in (w.owner, w.sub):
        want = w.expected(user, lambda c: keep(c, w.cams))
        assert len(want) < 200
        assert walk(database, user, params) == want, (name, user.account.email)
    full = w.expected(w.owner, lambda c: keep(c, w.cams))
    assert walk(database, w.owner, params, limit=200) == full
    if name != "no such label" and name != "plate unknown":
        assert full, "the case should match some clips"


def test_other_tenants_never_appear(database: db.Database, world: World) -> None:
    w = world
    other_ids = {c["id"] for c in w.clips if c["account"] == w.other.tenant_id}
    assert other_ids
    for params in ({}, {"label": "plate"}, {"plate": "M AB 1234"}, {"verdict": "alarm"}):
        got = set(walk(database, w.owner, params, limit=50))
        assert got and not got & other_ids
