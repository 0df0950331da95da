"""Episode end reasons for the browser (issue 17): "mutual" joins the list.

An episode ends for one of: ``completed`` (completed as planned), ``mutual`` (ended by
mutual agreement before the plan was completed), ``dropped_out`` (the client ended without
agreement), ``referred`` (referred on), ``other``. The list is defined once, in
``outcome.models.care.END_REASONS``; the CHECK ``end_reason_known`` is rewritten from it.

Old data is validated first: every stored reason must be one of the old list (the old
CHECK kept it so); a row that is not stops the upgrade with its episode ids rather than
being silently rewritten. Downgrade turns ``mutual`` into ``other`` (the old list has no
such reason) and restores the old CHECK.

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0013'
branch_labels = None
depends_on = None

OLD = ('completed', 'dropped_out', 'referred', 'other')
NEW = ('completed', 'mutual', 'dropped_out', 'referred', 'other')


def _check(values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"end_reason IS NULL OR end_reason IN ({quoted})"


def upgrade() -> None:
    bind = op.get_bind()
    episodes = sa.table('episodes', sa.column('id', sa.Integer),
                        sa.column('end_reason', sa.String))
    unknown = bind.execute(sa.select(episodes.c.id).where(
        episodes.c.end_reason.is_not(None), episodes.c.end_reason.not_in(NEW))
        .order_by(episodes.c.id).limit(20)).scalars().all()
    if unknown:
        raise RuntimeError(f"episodes with an unknown end reason (ids {list(unknown)}); "
                           f"set each to one of {', '.join(NEW)} and upgrade again")
    with op.batch_alter_table('episodes', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_episodes_end_reason_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_episodes_end_reason_known'), _check(NEW))


def downgrade() -> None:
    episodes = sa.table('episodes', sa.column('end_reason', sa.String))
    op.get_bind().execute(episodes.update().where(episodes.c.end_reason == 'mutual')
                          .values(end_reason='other'))
    with op.batch_alter_table('episodes', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_episodes_end_reason_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_episodes_end_reason_known'), _check(OLD))
