"""Each user's choices about their scheduled reports (issue 18).

``report_preferences``: per user and report kind (the supervisor digest, the therapist's
pre-session brief and weekly caseload report) whether it is produced, whether a notice
is e-mailed, and the time and weekday that override the clinic's. No row keeps the
clinic's defaults, so existing users are unchanged.

Downgrade drops the table (everyone is back on the clinic's defaults).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import outcome.models.base

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('report_preferences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('is_enabled', sa.Boolean(), nullable=False),
    sa.Column('is_emailed', sa.Boolean(), nullable=False),
    sa.Column('time', sa.String(length=5), nullable=True),
    sa.Column('weekday', sa.Integer(), nullable=True),
    sa.Column('updated_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('supervisor_digest', 'therapist_brief', 'therapist_weekly')", name=op.f('ck_report_preferences_kind_known')),
    sa.CheckConstraint('time IS NULL OR length(time) = 5', name=op.f('ck_report_preferences_time_shape')),
    sa.CheckConstraint('weekday IS NULL OR (weekday BETWEEN 0 AND 6)', name=op.f('ck_report_preferences_weekday_range')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_report_preferences_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_preferences')),
    sa.UniqueConstraint('user_id', 'kind', name=op.f('uq_report_preferences_user_id_kind'))
    )


def downgrade() -> None:
    op.drop_table('report_preferences')
