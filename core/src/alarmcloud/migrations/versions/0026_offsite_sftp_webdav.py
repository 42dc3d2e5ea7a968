"""Off-site copies to the owner's SFTP or WebDAV server: accounts.offsite_kind, the SFTP and WebDAV settings; when
the owner was last told that the copies do not arrive (accounts.offsite_failing_notified_at)

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-26 19:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('offsite_kind', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False,
                                      server_default='s3'))
        batch_op.add_column(sa.Column('offsite_sftp_host', sqlmodel.sql.sqltypes.AutoString(length=253),
                                      nullable=True))
        batch_op.add_column(sa.Column('offsite_sftp_port', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('offsite_sftp_user', sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))
        batch_op.add_column(sa.Column('offsite_sftp_host_key', sqlmodel.sql.sqltypes.AutoString(length=120),
                                      nullable=True))
        batch_op.add_column(sa.Column('offsite_sftp_public_key', sqlmodel.sql.sqltypes.AutoString(length=200),
                                      nullable=True))
        batch_op.add_column(sa.Column('offsite_sftp_key_enc', sqlmodel.sql.sqltypes.AutoString(length=1000),
                                      nullable=True))
        batch_op.add_column(sa.Column('offsite_failing_notified_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                      nullable=True))
        batch_op.add_column(sa.Column('offsite_webdav_url', sqlmodel.sql.sqltypes.AutoString(length=500),
                                      nullable=True))
        batch_op.add_column(sa.Column('offsite_webdav_user', sqlmodel.sql.sqltypes.AutoString(length=128),
                                      nullable=True))
        batch_op.add_column(sa.Column('offsite_webdav_password_enc', sqlmodel.sql.sqltypes.AutoString(length=500),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        for name in ('offsite_webdav_password_enc', 'offsite_webdav_user', 'offsite_webdav_url',
                     'offsite_failing_notified_at', 'offsite_sftp_key_enc', 'offsite_sftp_public_key', 'offsite_sftp_host_key',
                     'offsite_sftp_user', 'offsite_sftp_port', 'offsite_sftp_host', 'offsite_kind'):
            batch_op.drop_column(name)
