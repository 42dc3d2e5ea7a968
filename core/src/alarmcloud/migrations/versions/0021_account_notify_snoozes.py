"""Accounts: notify_snoozes, a person snoozes their alarm messages for every camera or one camera until a time

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-26 13:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notify_snoozes', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('notify_snoozes')
