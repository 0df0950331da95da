"""Stored explanations become message ids with parameters (issue 14).

Until now every explanation (in ``episode_signals.state``: ``outcomes.*.progress``,
``outcomes.*.change``, ``alliance.*.ruptures[]``, ``critical[]``; and each
``alerts.detail``) kept an English sentence under ``text``. The engine now stores a
message id and its parameters (``message``, ``params``) that
``outcome.services.explanations`` renders in the reader's language.

Upgrade: an old sentence cannot be turned back into its parameters (the instrument's
short name and the source of its reliable-change rule were never stored), so it is kept
as it was under the message ``legacy.text`` and still shows, in English, wherever it
did. Signals are recomputable from the stored answers: run ``outcome signals recompute``
after upgrading, and every episode's explanations are rebuilt as real message ids that
render in Russian too. An open "not on track" or "rupture" alert takes its new
explanation at that recompute; other alerts (critical answers, unrepaired ruptures,
acknowledged and resolved ones) keep their old sentence, shown as it was.

Downgrade: ``text`` is put back: the kept sentence for ``legacy.text``, otherwise the
English rendering of the message; ``message`` and ``params`` are removed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

BATCH = 500
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
SIGNALS = sa.table('episode_signals', sa.column('episode_id', sa.Integer), sa.column('state', JSON))
ALERTS = sa.table('alerts', sa.column('id', sa.Integer), sa.column('detail', JSON))


def _to_message(explanation: dict[str, Any]) -> dict[str, Any]:
    if 'message' in explanation or 'text' not in explanation:
        return explanation
    out = {k: v for k, v in explanation.items() if k != 'text'}
    return {**out, 'message': 'legacy.text', 'params': {'text': explanation['text']}}


def _to_text(explanation: dict[str, Any]) -> dict[str, Any]:
    if 'message' not in explanation:
        return explanation
    from outcome.services.explanations import render_explanation

    if explanation['message'] == 'legacy.text':
        text = str((explanation.get('params') or {}).get('text', ''))
    else:
        text = render_explanation(explanation, 'en')
    out = {k: v for k, v in explanation.items() if k not in ('message', 'params')}
    return {**out, 'text': text}


def _state(state: dict[str, Any], change: Callable[[dict], dict]) -> dict[str, Any]:
    state = dict(state)
    outcomes = {}
    for instrument, data in (state.get('outcomes') or {}).items():
        data = dict(data)
        for key in ('progress', 'change'):
            if isinstance(data.get(key), dict):
                data[key] = change(data[key])
        outcomes[instrument] = data
    alliance = {}
    for instrument, data in (state.get('alliance') or {}).items():
        alliance[instrument] = {**data, 'ruptures': [change(r) for r in data.get('ruptures', [])]}
    if 'outcomes' in state:
        state['outcomes'] = outcomes
    if 'alliance' in state:
        state['alliance'] = alliance
    if 'critical' in state:
        state['critical'] = [change(c) for c in state['critical'] or []]
    return state


def _rewrite(change: Callable[[dict], dict]) -> None:
    conn = op.get_bind()
    for table, key, column, rewrite in (
            (SIGNALS, SIGNALS.c.episode_id, SIGNALS.c.state, lambda s: _state(s, change)),
            (ALERTS, ALERTS.c.id, ALERTS.c.detail, change)):
        last = None
        while True:
            query = sa.select(key, column).order_by(key).limit(BATCH)
            if last is not None:
                query = query.where(key > last)
            rows = conn.execute(query).all()
            if not rows:
                break
            for row_id, value in rows:
                if isinstance(value, dict):
                    new = rewrite(value)
                    if new != value:
                        conn.execute(sa.update(table).where(key == row_id).values(
                            {column.name: new}))
            last = rows[-1][0]


def upgrade() -> None:
    _rewrite(_to_message)


def downgrade() -> None:
    _rewrite(_to_text)
