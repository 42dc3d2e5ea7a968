"""Who opened the account's clips (clip_access)

Revision ID: 0030
Revises: 0029
Create Date: 2026-11-26 21:55:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'clip_access',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column('via', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('what', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('object_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('clips', sa.Integer(), nullable=False),
        sa.Column('ip_prefix', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('clip_access', schema=None) as batch_op:
        batch_op.create_index('ix_clip_access_account_at', ['account_id', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('clip_access', schema=None) as batch_op:
        batch_op.drop_index('ix_clip_access_account_at')
    op.drop_table('clip_access')
