"""The same code on a real PostgreSQL server: migrations, the API, the job queue with SKIP LOCKED."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alarmcloud.testing import LiveServer, postgres_database, test_settings

PG = os.environ.get("ALARMCLOUD_TEST_POSTGRES_URL")
pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not PG, reason="set ALARMCLOUD_TEST_POSTGRES_URL (scripts/test starts a server)")]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database per test on the server."""
    with postgres_database() as url:
        yield url


def test_api_flow_on_postgres(pg_url: str, tmp_path: Path, clip: Path) -> None:
    from tests.conftest import Api  # type: ignore[import-not-found]

    st = test_settings(tmp_path / "data", database_url=pg_url)
    with LiveServer(st) as srv:
        a = Api(srv.url).register("pg@example.com")
        b = Api(srv.url).register("pg2@example.com")
        cam = a.camera()
        assert b.get(f"/api/v1/cameras/{cam['id']}").status_code == 404
        r = a.upload(a.upload_credentials(cam["id"]), clip)
        assert r.status_code == 201, r.text
        ev = a.wait_event(r.json()["event_id"])
        assert ev["verdict"] == "alarm"
        assert a.get("/api/v1/events").json()["items"][0]["id"] == ev["id"]
        assert a.get("/api/v1/storage").json()["clip_count"] == 1


def test_fair_queue_on_postgres(pg_url: str, tmp_path: Path) -> None:
    from alarmcloud import db
    from alarmcloud.app import AlarmCloud

    from tests.test_pipeline import fair_order  # type: ignore[import-not-found]

    st: Any = test_settings(tmp_path / "data", database_url=pg_url)
    db.migrate(st.db_url)
    fair_order(AlarmCloud(st))
