"""Off-site copies: per owner an S3-compatible bucket (endpoint, region, bucket, prefix, access key id, encrypted
secret key), what to copy, on/off and the time of the latest copy

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22 05:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('offsite_enabled', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('offsite_endpoint', text(length=500), nullable=True))
        batch_op.add_column(sa.Column('offsite_region', text(length=64), nullable=True))
        batch_op.add_column(sa.Column('offsite_bucket', text(length=63), nullable=True))
        batch_op.add_column(sa.Column('offsite_prefix', text(length=200), nullable=True))
        batch_op.add_column(sa.Column('offsite_access_key_id', text(length=128), nullable=True))
        batch_op.add_column(sa.Column('offsite_secret_key_enc', text(length=500), nullable=True))
        batch_op.add_column(sa.Column('offsite_scope', text(length=16), nullable=False, server_default='alarms'))
        batch_op.add_column(sa.Column('offsite_last_copy_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        for name in ('offsite_last_copy_at', 'offsite_scope', 'offsite_secret_key_enc', 'offsite_access_key_id',
                     'offsite_prefix', 'offsite_bucket', 'offsite_region', 'offsite_endpoint', 'offsite_enabled'):
            batch_op.drop_column(name)
