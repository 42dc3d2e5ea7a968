"""Cases: the owner's collections of the clips of one incident (clips.case_id), shared by link

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-26 16:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'cases',
        sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column('notes', sa.Text(), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('exported_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('share_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('share_created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('share_expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('share_fetches', sa.Integer(), nullable=False),
        sa.Column('share_last_fetch_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('share_hash'),
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cases_account_id'), ['account_id'], unique=False)
    with op.batch_alter_table('clips', schema=None) as batch_op:
        batch_op.add_column(sa.Column('case_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_clips_case_id'), ['case_id'], unique=False)
        batch_op.create_foreign_key('fk_clips_case_id_cases', 'cases', ['case_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('clips', schema=None) as batch_op:
        batch_op.drop_constraint('fk_clips_case_id_cases', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_clips_case_id'))
        batch_op.drop_column('case_id')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cases_account_id'))
    op.drop_table('cases')
