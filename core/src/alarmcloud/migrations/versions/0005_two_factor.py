"""two-step verification: TOTP secret (encrypted) and hashed one-time recovery codes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'two_factor',
        sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('secret_enc', sa.Text(), nullable=False),
        sa.Column('enabled_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('last_step', sa.Integer(), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id']),
        sa.PrimaryKeyConstraint('account_id'),
    )
    op.create_table(
        'recovery_codes',
        sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('code_hash', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column('used_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recovery_codes_account_id'), ['account_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recovery_codes_account_id'))
    op.drop_table('recovery_codes')
    op.drop_table('two_factor')
