"""The migrations build exactly the schema the models declare (tables, columns, types, indexes, constraints).

A model change without a migration (or a migration that differs from the model) would make a deployed database
differ from the one the tests run against; Alembic's autogenerate comparison finds every such difference.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alarmcloud import db
from alarmcloud.testing import postgres_database
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel


def _differences(url: str) -> list[object]:
    db.migrate(url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
            return list(compare_metadata(ctx, SQLModel.metadata))
    finally:
        engine.dispose()


def test_migrations_match_models_on_sqlite(tmp_path: Path) -> None:
    diffs = _differences(f"sqlite:///{tmp_path / 'schema.db'}")
    assert diffs == [], f"the migrations and the models differ; add a migration: {diffs}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_database("ac_schema_") as url:
        yield url


@pytest.mark.postgres
def test_migrations_match_models_on_postgres(pg_url: str) -> None:
    diffs = _differences(pg_url)
    assert diffs == [], f"the migrations and the models differ; add a migration: {diffs}"


def test_revisions_form_one_chain() -> None:
    """Every revision has one parent and there is a single head (parallel migrations must be chained)."""
    script = ScriptDirectory.from_config(db.alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, f"several migration heads: {script.get_heads()}"
    revisions = list(script.walk_revisions())
    assert [r for r in revisions if r.down_revision is None] == [revisions[-1]]
