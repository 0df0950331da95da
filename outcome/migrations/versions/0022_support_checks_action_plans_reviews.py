"""After the signal (issue 19): support checks, action plans and supervision reviews.

New tables ``support_checks``, ``action_plans`` and ``supervision_reviews``
(:mod:`outcome.models.support`); ``alerts.plan_id`` names the plan that resolved an alert;
``questionnaire_links.purpose`` may now be ``support`` (a support check's link). Existing
rows are unchanged: no alert has a plan, and every link keeps its purpose.

Downgrade revokes nothing and deletes support links (their purpose is unknown to the old
list), then drops the column and the tables.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import outcome.models.base

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

NEW = ('pre', 'post', 'support')
OLD = ('pre', 'post')


def _in(values: tuple[str, ...]) -> str:
    return "purpose IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')
    op.create_table('support_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('episode_id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=24), nullable=False),
    sa.Column('started_by_id', sa.Integer(), nullable=True),
    sa.Column('started_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=True),
    sa.Column('battery', json, nullable=False),
    sa.Column('reused_alliance_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('answered_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.CheckConstraint("reason IN ('red', 'deterioration', 'unrepaired_rupture', 'therapist')", name=op.f('ck_support_checks_reason_known')),
    sa.CheckConstraint("status IN ('sent', 'answered', 'cancelled', 'expired')", name=op.f('ck_support_checks_status_known')),
    sa.CheckConstraint("status <> 'answered' OR answered_dt IS NOT NULL", name=op.f('ck_support_checks_answer_dated')),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.id'], name=op.f('fk_support_checks_episode_id_episodes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['link_id'], ['questionnaire_links.id'], name=op.f('fk_support_checks_link_id_questionnaire_links'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['reused_alliance_id'], ['administrations.id'], name=op.f('fk_support_checks_reused_alliance_id_administrations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['started_by_id'], ['users.id'], name=op.f('fk_support_checks_started_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_support_checks'))
    )
    op.create_index(op.f('ix_support_checks_episode_id'), 'support_checks', ['episode_id'], unique=False)
    op.create_table('action_plans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('episode_id', sa.Integer(), nullable=False),
    sa.Column('support_check_id', sa.Integer(), nullable=True),
    sa.Column('revised_from_id', sa.Integer(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('steps', json, nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('review_on', sa.Date(), nullable=False),
    sa.Column('baseline', json, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('closed_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.Column('closed_by_id', sa.Integer(), nullable=True),
    sa.Column('closing_note', sa.Text(), nullable=True),
    sa.Column('outcome', json, nullable=True),
    sa.CheckConstraint("status IN ('open', 'closed', 'revised')", name=op.f('ck_action_plans_status_known')),
    sa.CheckConstraint("status = 'open' OR (closed_dt IS NOT NULL AND closed_by_id IS NOT NULL)", name=op.f('ck_action_plans_closing_recorded')),
    sa.ForeignKeyConstraint(['closed_by_id'], ['users.id'], name=op.f('fk_action_plans_closed_by_id_users')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_action_plans_created_by_id_users')),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.id'], name=op.f('fk_action_plans_episode_id_episodes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['revised_from_id'], ['action_plans.id'], name=op.f('fk_action_plans_revised_from_id_action_plans'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['support_check_id'], ['support_checks.id'], name=op.f('fk_action_plans_support_check_id_support_checks'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_action_plans'))
    )
    op.create_index(op.f('ix_action_plans_episode_id'), 'action_plans', ['episode_id'], unique=False)
    op.create_table('supervision_reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('episode_id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=True),
    sa.Column('supervisor_id', sa.Integer(), nullable=False),
    sa.Column('reviewed_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('discussed', sa.Boolean(), nullable=False),
    sa.Column('plan_agreed', sa.Boolean(), nullable=False),
    sa.Column('follow_up_on', sa.Date(), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.id'], name=op.f('fk_supervision_reviews_episode_id_episodes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['plan_id'], ['action_plans.id'], name=op.f('fk_supervision_reviews_plan_id_action_plans'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['supervisor_id'], ['users.id'], name=op.f('fk_supervision_reviews_supervisor_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_supervision_reviews'))
    )
    op.create_index(op.f('ix_supervision_reviews_episode_id'), 'supervision_reviews', ['episode_id'], unique=False)
    op.create_index(op.f('ix_supervision_reviews_plan_id'), 'supervision_reviews', ['plan_id'], unique=False)
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('plan_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_alerts_plan_id_action_plans'), 'action_plans', ['plan_id'], ['id'], ondelete='SET NULL')
    with op.batch_alter_table('questionnaire_links', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_questionnaire_links_purpose_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_questionnaire_links_purpose_known'), _in(NEW))


def downgrade() -> None:
    op.execute("DELETE FROM questionnaire_links WHERE purpose = 'support'")
    with op.batch_alter_table('questionnaire_links', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_questionnaire_links_purpose_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_questionnaire_links_purpose_known'), _in(OLD))
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_alerts_plan_id_action_plans'), type_='foreignkey')
        batch_op.drop_column('plan_id')
    op.drop_index(op.f('ix_supervision_reviews_plan_id'), table_name='supervision_reviews')
    op.drop_index(op.f('ix_supervision_reviews_episode_id'), table_name='supervision_reviews')
    op.drop_table('supervision_reviews')
    op.drop_index(op.f('ix_action_plans_episode_id'), table_name='action_plans')
    op.drop_table('action_plans')
    op.drop_index(op.f('ix_support_checks_episode_id'), table_name='support_checks')
    op.drop_table('support_checks')
