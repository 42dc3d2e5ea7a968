"""privacy masks applied to stored clips: which masks a clip was painted with, and the durable apply jobs

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 19:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clips', schema=None) as batch_op:
        batch_op.add_column(sa.Column('privacy_masks_hash', sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))
    op.create_table(
        'mask_jobs',
        sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('camera_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('masks', sa.JSON(), nullable=True),
        sa.Column('masks_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.Column('failed', sa.Integer(), nullable=False),
        sa.Column('failures', sa.JSON(), nullable=True),
        sa.Column('cursor', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('worker', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column('lease_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('mask_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mask_jobs_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mask_jobs_camera_id'), ['camera_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('mask_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mask_jobs_camera_id'))
        batch_op.drop_index(batch_op.f('ix_mask_jobs_account_id'))
    op.drop_table('mask_jobs')
    with op.batch_alter_table('clips', schema=None) as batch_op:
        batch_op.drop_column('privacy_masks_hash')
