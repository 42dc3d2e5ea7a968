"""Off-site copies encrypted to the owner's age public key (accounts.offsite_age_recipient)

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-26 21:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('offsite_age_recipient', sqlmodel.sql.sqltypes.AutoString(length=100),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('offsite_age_recipient')
