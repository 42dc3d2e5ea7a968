"""Known plates: whether a read one character off counts as the plate (on by default; off for a plate whose
neighbours, such as a fleet's next number, are other cars)

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-23 04:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('known_plates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('close_reads', sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table('known_plates', schema=None) as batch_op:
        batch_op.drop_column('close_reads')
