"""Cameras: silent_after_days, silent_notified_at and last_clip_at, a notice when a camera sends no clip for a while

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-26 14:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.add_column(sa.Column('silent_after_days', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('silent_notified_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('last_clip_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    # the cameras that have clips already: when the latest arrived
    op.execute("UPDATE cameras SET last_clip_at = (SELECT max(clips.received_at) FROM clips "
               "WHERE clips.camera_id = cameras.id)")


def downgrade() -> None:
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.drop_column('last_clip_at')
        batch_op.drop_column('silent_notified_at')
        batch_op.drop_column('silent_after_days')
