"""resumable bulk downloads: a link per chosen set of clips, laid out when made, fetched with HTTP Range

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'download_links',
        sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('files', sa.JSON(), nullable=True),
        sa.Column('index_size', sa.Integer(), nullable=False),
        sa.Column('index_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('download_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_download_links_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_download_links_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_download_links_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_table('download_links')
