"""An episode's primary outcome measure and problem descriptor; an imported fit's source.

Issue 15 (clinical truth): an episode's change category is that of its declared primary
measure, or of the NHS Talking Therapies pair whose anxiety half depends on the problem
descriptor; and a clinic may import a published or exported expected-response fit, whose
source is kept beside it. All three columns are nullable: an existing episode takes the
clinic's default primary measure, and an existing fit is the clinic's own.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('episodes', sa.Column('primary_instrument_id', sa.String(length=64),
                                        nullable=True))
    op.add_column('episodes', sa.Column('problem_descriptor', sa.String(length=32),
                                        nullable=True))
    op.add_column('trajectory_fits', sa.Column('source', sa.String(length=500), nullable=True))


def downgrade() -> None:
    # Not batch mode: on SQLite it copies a table and drops the old one, and dropping
    # `episodes` with foreign keys on would cascade to every row that refers to it.
    # SQLite has dropped columns in place since 3.35.
    for table, column in (('trajectory_fits', 'source'), ('episodes', 'problem_descriptor'),
                          ('episodes', 'primary_instrument_id')):
        if op.get_bind().dialect.name == 'sqlite':
            op.execute(f'ALTER TABLE {table} DROP COLUMN {column}')
        else:
            op.drop_column(table, column)
