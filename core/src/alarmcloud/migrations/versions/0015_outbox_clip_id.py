"""Off-site copies: the outbox row of a copy names its clip in a column of its own (indexed), so "is a copy of
this clip waiting" is an index lookup instead of a scan of the payloads; and an index for the copy loop's looks
(the next copy due, the copies due now). Existing copy rows get the column from their payload.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-22 08:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('clip_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
    outbox = sa.table('outbox', sa.column('kind', sa.String), sa.column('payload', sa.JSON),
                      sa.column('clip_id', sa.String))
    # the payload's clip id as text: json_extract on SQLite, ->> on PostgreSQL
    op.execute(outbox.update().where(outbox.c.kind == 'offsite')
               .values(clip_id=outbox.c.payload['clip_id'].as_string()))
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_clip', ['clip_id', 'kind', 'state'], unique=False)
        batch_op.create_index('ix_outbox_kind_state_due', ['kind', 'state', 'available_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_kind_state_due')
        batch_op.drop_index('ix_outbox_clip')
        batch_op.drop_column('clip_id')
