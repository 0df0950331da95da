"""A rated goal can be retired and replaced; a link keeps a page left with Back (issue 17).

``goals``: the unique (episode, position) becomes unique among open goals only, so a
retired goal keeps its position and ratings while its replacement takes the position.
``questionnaire_links.draft``: answers on a page the client left with Back, unsent.

Downgrade drops the draft column and restores the plain unique constraint (it fails
while an episode has a retired goal and its replacement at one position).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('goals', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_goals_episode_id_position'), type_='unique')
        batch_op.create_index('uq_goals_open_position', ['episode_id', 'position'],
                              unique=True, sqlite_where=sa.text('closed_dt IS NULL'),
                              postgresql_where=sa.text('closed_dt IS NULL'))
    with op.batch_alter_table('questionnaire_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('draft', sa.JSON().with_variant(
            postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('questionnaire_links', schema=None) as batch_op:
        batch_op.drop_column('draft')
    with op.batch_alter_table('goals', schema=None) as batch_op:
        batch_op.drop_index('uq_goals_open_position', sqlite_where=sa.text('closed_dt IS NULL'),
                            postgresql_where=sa.text('closed_dt IS NULL'))
        batch_op.create_unique_constraint(batch_op.f('uq_goals_episode_id_position'),
                                          ['episode_id', 'position'])
