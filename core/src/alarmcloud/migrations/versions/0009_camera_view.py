"""view check: each camera's view state (learning, ok, obstructed) and its baseline of per-clip measures

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21 19:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.add_column(sa.Column('view_state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                      server_default='learning'))
        batch_op.add_column(sa.Column('view_reason', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column('view_since', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('view_light', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))
        batch_op.add_column(sa.Column('view_data', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.drop_column('view_data')
        batch_op.drop_column('view_light')
        batch_op.drop_column('view_since')
        batch_op.drop_column('view_reason')
        batch_op.drop_column('view_state')
