"""The e-mail outbox.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import outcome.models.base

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbound_emails',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('dedupe_key', sa.String(length=128), nullable=False),
    sa.Column('to_address', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sent_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.Column('created_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.CheckConstraint("status <> 'sent' OR sent_dt IS NOT NULL", name=op.f('ck_outbound_emails_sent_dated')),
    sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name=op.f('ck_outbound_emails_status_known')),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_outbound_emails_attempts_non_negative')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_outbound_emails_clinic_id_clinics')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_emails')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_outbound_emails_dedupe_key'))
    )
    with op.batch_alter_table('outbound_emails', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbound_emails_clinic_id'), ['clinic_id'], unique=False)
        batch_op.create_index('ix_outbound_emails_due', ['status', 'next_attempt_dt'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outbound_emails', schema=None) as batch_op:
        batch_op.drop_index('ix_outbound_emails_due')
        batch_op.drop_index(batch_op.f('ix_outbound_emails_clinic_id'))

    op.drop_table('outbound_emails')
