"""Off-site copies: delete copies older than a number of days (accounts.offsite_keep_days and the last run's
result)

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-26 21:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('offsite_keep_days', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('offsite_pruned_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                      nullable=True))
        batch_op.add_column(sa.Column('offsite_prune_deleted', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('offsite_prune_error', sqlmodel.sql.sqltypes.AutoString(length=500),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('offsite_prune_error')
        batch_op.drop_column('offsite_prune_deleted')
        batch_op.drop_column('offsite_pruned_at')
        batch_op.drop_column('offsite_keep_days')
