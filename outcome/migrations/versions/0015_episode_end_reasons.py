"""Episode end reasons for the browser (issue 17): "mutual" joins the list.

An episode ends for one of: ``completed`` (completed as planned), ``mutual`` (ended by
mutual agreement before the plan was completed), ``dropped_out`` (the client ended without
agreement), ``referred`` (referred on), ``other``. The list is defined once, in
``outcome.models.care.END_REASONS``; the CHECK ``end_reason_known`` is rewritten from it.

Old data is validated first: every stored reason must be one of the old list (the old
CHECK kept it so); a row that is not stops the upgrade with its episode ids rather than
being silently rewritten.

On SQLite the table is not rebuilt (a rebuild drops the old table, and with foreign keys
on that deletes every row that cascades from an episode: signals, links, answers): the
CHECK's list is rewritten in the stored schema instead, the procedure SQLite documents for
loosening a CHECK that existing rows already satisfy ("Making Other Kinds Of Table
Schema Changes", with the schema version bumped). Downgrade turns ``mutual`` into ``other`` (the old list has no
such reason) and restores the old CHECK.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
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
    _rewrite_check(NEW)


def downgrade() -> None:
    episodes = sa.table('episodes', sa.column('end_reason', sa.String))
    op.get_bind().execute(episodes.update().where(episodes.c.end_reason == 'mutual')
                          .values(end_reason='other'))
    _rewrite_check(OLD)


_SQLITE_CHECK = re.compile(r"(CONSTRAINT\s+\"?ck_episodes_end_reason_known\"?\s+CHECK\s*\(\s*"
                           r"end_reason IS NULL OR end_reason IN \()[^)]*(\))")


def _rewrite_check(values: tuple[str, ...]) -> None:
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        with op.batch_alter_table('episodes', schema=None) as batch_op:
            batch_op.drop_constraint(op.f('ck_episodes_end_reason_known'), type_='check')
            batch_op.create_check_constraint(op.f('ck_episodes_end_reason_known'),
                                             _check(values))
        return
    sql = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' "
                               "AND name = 'episodes'").scalar_one()
    quoted = ", ".join(f"'{v}'" for v in values)
    new_sql, found = _SQLITE_CHECK.subn(lambda m: f"{m.group(1)}{quoted}{m.group(2)}", sql)
    if found != 1:
        raise RuntimeError("episodes: the CHECK ck_episodes_end_reason_known was not found "
                           "in the stored schema; nothing was changed")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        bind.execute(sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' "
                             "AND name = 'episodes'"), {"sql": new_sql})
        bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema = OFF")
