"""Cases: how many downloads a case's link allows (cases.share_max_fetches)

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-26 19:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('share_max_fetches', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('share_max_fetches')
