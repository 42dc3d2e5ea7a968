"""Required two-step verification: its enrolment confirmed with a code e-mailed to the account
(two_factor.email_code_hash)

Revision ID: 0031
Revises: 0030
Create Date: 2026-11-26 22:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('two_factor', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_code_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('two_factor', schema=None) as batch_op:
        batch_op.drop_column('email_code_hash')
