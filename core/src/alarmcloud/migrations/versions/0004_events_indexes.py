"""events API indexes: verdict filter per account in time order; findings by account, label and plate text

Replaces ix_clips_verdict (verdict alone: useless with an account filter and a time order),
ix_findings_account_id (a prefix of the new account/label/text index) and ix_findings_clip_id (a prefix of the new
clip/label index).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 10:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clips', schema=None) as batch_op:
        batch_op.create_index('ix_clips_account_verdict_started', ['account_id', 'verdict', 'started_at', 'id'],
                              unique=False)
        batch_op.drop_index('ix_clips_verdict')
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.create_index('ix_findings_account_label_text', ['account_id', 'label', 'text', 'clip_id'],
                              unique=False)
        batch_op.drop_index('ix_findings_account_id')
        batch_op.create_index('ix_findings_clip_label', ['clip_id', 'label'], unique=False)
        batch_op.drop_index('ix_findings_clip_id')


def downgrade() -> None:
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.create_index('ix_findings_clip_id', ['clip_id'], unique=False)
        batch_op.drop_index('ix_findings_clip_label')
        batch_op.create_index('ix_findings_account_id', ['account_id'], unique=False)
        batch_op.drop_index('ix_findings_account_label_text')
    with op.batch_alter_table('clips', schema=None) as batch_op:
        batch_op.create_index('ix_clips_verdict', ['verdict'], unique=False)
        batch_op.drop_index('ix_clips_account_verdict_started')
