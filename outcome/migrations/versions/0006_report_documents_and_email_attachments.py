"""Archived report documents, and e-mail attachments that point at them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import outcome.models.base

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('report_documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_run_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('media_type', sa.String(length=100), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('is_encrypted', sa.Boolean(), nullable=False),
    sa.Column('created_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.CheckConstraint('length(sha256) = 64', name=op.f('ck_report_documents_sha256_length')),
    sa.CheckConstraint('size_bytes > 0', name=op.f('ck_report_documents_not_empty')),
    sa.ForeignKeyConstraint(['report_run_id'], ['report_runs.id'], name=op.f('fk_report_documents_report_run_id_report_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_documents')),
    sa.UniqueConstraint('report_run_id', name=op.f('uq_report_documents_report_run_id'))
    )
    with op.batch_alter_table('outbound_emails', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attachment_document_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_outbound_emails_attachment_document_id_report_documents'), 'report_documents', ['attachment_document_id'], ['id'], ondelete='SET NULL')



def downgrade() -> None:
    with op.batch_alter_table('outbound_emails', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbound_emails_attachment_document_id_report_documents'), type_='foreignkey')
        batch_op.drop_column('attachment_document_id')

    op.drop_table('report_documents')
