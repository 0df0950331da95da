"""The language of each administration, and a staff member's own language (issue 17).

``administrations.language`` records which wording a client was shown ("ru" where the
measure has a verified Russian translation, else the original "en"), so the therapist
can see it beside the answers. ``users.locale`` is a staff member's chosen language for
pages and PDFs; NULL follows the browser. Both nullable: existing rows are unknown.

Downgrade drops both columns (the recorded languages are lost).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD/DROP COLUMN (SQLite 3.35+ and PostgreSQL): a batch copy of ``users`` would
    # drop and rebuild its expression index on lower(email).
    op.add_column('administrations', sa.Column('language', sa.String(length=16), nullable=True))
    op.add_column('users', sa.Column('locale', sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column('users', 'locale')
    op.drop_column('administrations', 'language')
