"""Telegram notifications: per person on/off, chat id, encrypted bot token, picture opt-in

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22 03:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notify_telegram', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('notify_telegram_chat_id', sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))
        batch_op.add_column(sa.Column('notify_telegram_token_enc', sqlmodel.sql.sqltypes.AutoString(length=500),
                                      nullable=True))
        batch_op.add_column(sa.Column('notify_telegram_picture', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('notify_telegram_picture')
        batch_op.drop_column('notify_telegram_token_enc')
        batch_op.drop_column('notify_telegram_chat_id')
        batch_op.drop_column('notify_telegram')
