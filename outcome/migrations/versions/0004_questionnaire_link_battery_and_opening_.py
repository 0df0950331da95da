"""Questionnaire links remember their battery and when they were first opened.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import outcome.models.base

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Adding columns needs no table rebuild, on SQLite either. Links issued before this
    # revision keep an empty battery (they are served the clinic's current one).
    op.add_column('questionnaire_links', sa.Column('battery', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False, server_default=sa.text("'[]'")))
    op.add_column('questionnaire_links', sa.Column('opened_dt', outcome.models.base.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('questionnaire_links', schema=None) as batch_op:
        batch_op.drop_column('opened_dt')
        batch_op.drop_column('battery')

