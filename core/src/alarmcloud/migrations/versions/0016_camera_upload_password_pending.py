"""Cameras: the upload password one-click setup gave the camera, valid beside the previous one until the camera
uploads with it (a setup that fails part-way may have written it to the camera, or not)

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-22 09:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.add_column(sa.Column('upload_password_pending_hash', sqlmodel.sql.sqltypes.AutoString(length=200),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.drop_column('upload_password_pending_hash')
