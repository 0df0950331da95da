"""Escalation of urgent answers left unacknowledged (issue 17).

``alerts.escalation_level`` (0 none, 1 the therapist reminded, 2 the supervisors, or the
admins when there is none, told) and ``alerts.escalated_dt`` record how far an open
urgent alert has been escalated, so that each step happens once
(outcome.services.escalation).

Downgrade drops both columns: the record of steps already taken is lost, and the older
code does not escalate.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import outcome.models.base

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('alerts', sa.Column('escalation_level', sa.Integer(), nullable=False,
                                      server_default=sa.text('0')))
    op.add_column('alerts', sa.Column('escalated_dt', outcome.models.base.UTCDateTime(),
                                      nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy would lose the partial unique index.
    op.drop_column('alerts', 'escalated_dt')
    op.drop_column('alerts', 'escalation_level')
