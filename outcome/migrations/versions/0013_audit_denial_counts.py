"""Refused anonymous requests are counted per minute, address and action (issue 16).

An unknown link, API token or account, or a signed-out request for a staff page, adds one
to ``audit_denial_counts`` instead of a permanent ``audit_events`` row each, so one
client can no longer grow the trail without bound. The counts are pruned by age.

Downgrade drops the table (its counts are lost; the audit events are untouched).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import outcome.models.base

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_denial_counts',
    sa.Column('minute', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('address', sa.String(length=45), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.CheckConstraint('count > 0', name=op.f('ck_audit_denial_counts_count_positive')),
    sa.PrimaryKeyConstraint('minute', 'address', 'action', name=op.f('pk_audit_denial_counts'))
    )


def downgrade() -> None:
    op.drop_table('audit_denial_counts')
