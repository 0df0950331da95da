"""Initial schema: clinics, staff, clients and their care, administrations, alerts, audit, reports.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import outcome.models.base

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('clinics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('settings', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.CheckConstraint("slug <> ''", name=op.f('ck_clinics_slug_not_empty')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clinics')),
    sa.UniqueConstraint('slug', name=op.f('uq_clinics_slug'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('is_admin', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('is_supervisor', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('is_therapist', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('session_version', sa.Integer(), nullable=False),
    sa.Column('created_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('password_changed_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.Column('last_login_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.CheckConstraint("email LIKE '%_@_%'", name=op.f('ck_users_email_shape')),
    sa.CheckConstraint('is_admin OR is_supervisor OR is_therapist', name=op.f('ck_users_has_role')),
    sa.CheckConstraint('session_version >= 1', name=op.f('ck_users_session_version_positive')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_users_clinic_id_clinics'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('clinic_id', 'id', name=op.f('uq_users_clinic_id_id'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_clinic_id'), ['clinic_id'], unique=False)
    # E-mail is the login name, unique regardless of case.
    op.create_index('uq_users_email_lower', 'users', [sa.text('lower(email)')], unique=True)

    op.create_table('clients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('locale', sa.String(length=16), nullable=False),
    sa.Column('therapist_id', sa.Integer(), nullable=True),
    sa.Column('is_progress_shared', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.CheckConstraint("code LIKE 'C-%'", name=op.f('ck_clients_code_shape')),
    sa.CheckConstraint("name <> ''", name=op.f('ck_clients_name_not_empty')),
    sa.ForeignKeyConstraint(['clinic_id', 'therapist_id'], ['users.clinic_id', 'users.id'], name='fk_clients_therapist_users'),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_clients_clinic_id_clinics')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clients')),
    sa.UniqueConstraint('clinic_id', 'id', name=op.f('uq_clients_clinic_id_id')),
    sa.UniqueConstraint('code', name=op.f('uq_clients_code'))
    )
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_clients_clinic_id'), ['clinic_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_clients_therapist_id'), ['therapist_id'], unique=False)

    op.create_table('report_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('period', sa.String(length=20), nullable=False),
    sa.Column('recipient_user_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('started_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.Column('finished_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('content_sha256', sa.String(length=64), nullable=True),
    sa.CheckConstraint("status <> 'succeeded' OR content_sha256 IS NOT NULL", name=op.f('ck_report_runs_success_has_hash')),
    sa.CheckConstraint("status IN ('pending', 'running', 'succeeded', 'failed')", name=op.f('ck_report_runs_status_known')),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_report_runs_attempts_non_negative')),
    sa.ForeignKeyConstraint(['recipient_user_id'], ['users.id'], name=op.f('fk_report_runs_recipient_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_runs')),
    sa.UniqueConstraint('kind', 'period', 'recipient_user_id', name=op.f('uq_report_runs_kind_period_recipient_user_id'))
    )
    with op.batch_alter_table('report_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_runs_recipient_user_id'), ['recipient_user_id'], unique=False)

    op.create_table('supervisor_assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('supervisor_id', sa.Integer(), nullable=False),
    sa.Column('therapist_id', sa.Integer(), nullable=False),
    sa.Column('created_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.CheckConstraint('supervisor_id <> therapist_id', name=op.f('ck_supervisor_assignments_not_self')),
    sa.ForeignKeyConstraint(['clinic_id', 'supervisor_id'], ['users.clinic_id', 'users.id'], name='fk_supervisor_assignments_supervisor_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['clinic_id', 'therapist_id'], ['users.clinic_id', 'users.id'], name='fk_supervisor_assignments_therapist_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_supervisor_assignments_clinic_id_clinics')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_supervisor_assignments')),
    sa.UniqueConstraint('supervisor_id', 'therapist_id', name=op.f('uq_supervisor_assignments_supervisor_id_therapist_id'))
    )
    with op.batch_alter_table('supervisor_assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_supervisor_assignments_clinic_id'), ['clinic_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_supervisor_assignments_supervisor_id'), ['supervisor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_supervisor_assignments_therapist_id'), ['therapist_id'], unique=False)

    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('occurred_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=True),
    sa.Column('actor_kind', sa.String(length=16), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('actor_label', sa.String(length=100), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=True),
    sa.Column('object_type', sa.String(length=40), nullable=True),
    sa.Column('object_id', sa.String(length=64), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('ip_address', sa.String(length=45), nullable=True),
    sa.Column('request_id', sa.String(length=36), nullable=True),
    sa.CheckConstraint("actor_kind IN ('user', 'client', 'api_token', 'system', 'anonymous')", name=op.f('ck_audit_events_actor_kind_known')),
    sa.CheckConstraint("outcome IN ('allowed', 'denied', 'error')", name=op.f('ck_audit_events_outcome_known')),
    sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], name=op.f('fk_audit_events_actor_user_id_users')),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_audit_events_client_id_clients')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_audit_events_clinic_id_clinics')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_actor_user_id'), ['actor_user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_clinic_id'), ['clinic_id'], unique=False)
        batch_op.create_index('ix_audit_events_clinic_occurred', ['clinic_id', 'occurred_dt'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_occurred_dt'), ['occurred_dt'], unique=False)
    _make_audit_append_only()

    op.create_table('episodes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('therapist_id', sa.Integer(), nullable=False),
    sa.Column('opened_on', sa.Date(), nullable=False),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('end_reason', sa.String(length=32), nullable=True),
    sa.Column('created_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.CheckConstraint("end_reason IS NULL OR end_reason IN ('completed', 'dropped_out', 'referred', 'other')", name=op.f('ck_episodes_end_reason_known')),
    sa.CheckConstraint('(closed_on IS NULL) = (end_reason IS NULL)', name=op.f('ck_episodes_end_reason_iff_closed')),
    sa.CheckConstraint('closed_on IS NULL OR closed_on >= opened_on', name=op.f('ck_episodes_closed_after_open')),
    sa.ForeignKeyConstraint(['clinic_id', 'client_id'], ['clients.clinic_id', 'clients.id'], name='fk_episodes_client_clients', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['clinic_id', 'therapist_id'], ['users.clinic_id', 'users.id'], name='fk_episodes_therapist_users'),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_episodes_clinic_id_clinics')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_episodes'))
    )
    with op.batch_alter_table('episodes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_episodes_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_episodes_clinic_id'), ['clinic_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_episodes_therapist_id'), ['therapist_id'], unique=False)
        batch_op.create_index('uq_episodes_open_per_client', ['client_id'], unique=True, sqlite_where=sa.text('closed_on IS NULL'), postgresql_where=sa.text('closed_on IS NULL'))

    op.create_table('appointments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('episode_id', sa.Integer(), nullable=False),
    sa.Column('starts_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.CheckConstraint("status IN ('scheduled', 'attended', 'cancelled', 'no_show')", name=op.f('ck_appointments_status_known')),
    sa.CheckConstraint('duration_minutes BETWEEN 1 AND 600', name=op.f('ck_appointments_duration_range')),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.id'], name=op.f('fk_appointments_episode_id_episodes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appointments'))
    )
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.create_index('ix_appointments_episode_starts', ['episode_id', 'starts_dt'], unique=False)

    op.create_table('goals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('episode_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('created_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('closed_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.CheckConstraint("description <> ''", name=op.f('ck_goals_description_not_empty')),
    sa.CheckConstraint('position BETWEEN 1 AND 3', name=op.f('ck_goals_position_range')),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.id'], name=op.f('fk_goals_episode_id_episodes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_goals')),
    sa.UniqueConstraint('episode_id', 'position', name=op.f('uq_goals_episode_id_position'))
    )
    with op.batch_alter_table('goals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_goals_episode_id'), ['episode_id'], unique=False)

    op.create_table('questionnaire_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('episode_id', sa.Integer(), nullable=False),
    sa.Column('appointment_id', sa.Integer(), nullable=True),
    sa.Column('purpose', sa.String(length=8), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('valid_from_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('valid_until_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('used_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.Column('revoked_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.Column('created_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.CheckConstraint("purpose IN ('pre', 'post')", name=op.f('ck_questionnaire_links_purpose_known')),
    sa.CheckConstraint('length(token_hash) = 64', name=op.f('ck_questionnaire_links_token_hash_sha256')),
    sa.CheckConstraint('valid_until_dt > valid_from_dt', name=op.f('ck_questionnaire_links_window_positive')),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointments.id'], name=op.f('fk_questionnaire_links_appointment_id_appointments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.id'], name=op.f('fk_questionnaire_links_episode_id_episodes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_questionnaire_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_questionnaire_links_token_hash'))
    )
    with op.batch_alter_table('questionnaire_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_questionnaire_links_appointment_id'), ['appointment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_questionnaire_links_episode_id'), ['episode_id'], unique=False)

    op.create_table('administrations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('episode_id', sa.Integer(), nullable=False),
    sa.Column('appointment_id', sa.Integer(), nullable=True),
    sa.Column('link_id', sa.Integer(), nullable=True),
    sa.Column('instrument_id', sa.String(length=64), nullable=False),
    sa.Column('instrument_version', sa.String(length=32), nullable=False),
    sa.Column('respondent', sa.String(length=16), nullable=False),
    sa.Column('respondent_user_id', sa.Integer(), nullable=True),
    sa.Column('answers', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('scores', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('total', sa.Float(), nullable=True),
    sa.Column('is_valid', sa.Boolean(), nullable=False),
    sa.Column('is_prorated', sa.Boolean(), nullable=False),
    sa.Column('completed_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('supersedes_id', sa.Integer(), nullable=True),
    sa.Column('created_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.CheckConstraint("respondent <> 'therapist' OR respondent_user_id IS NOT NULL", name=op.f('ck_administrations_therapist_named')),
    sa.CheckConstraint("respondent IN ('client', 'therapist')", name=op.f('ck_administrations_respondent_known')),
    sa.CheckConstraint('is_valid OR total IS NULL', name=op.f('ck_administrations_invalid_has_no_total')),
    sa.CheckConstraint('supersedes_id IS NULL OR supersedes_id <> id', name=op.f('ck_administrations_not_self')),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointments.id'], name=op.f('fk_administrations_appointment_id_appointments'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.id'], name=op.f('fk_administrations_episode_id_episodes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['link_id'], ['questionnaire_links.id'], name=op.f('fk_administrations_link_id_questionnaire_links'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['respondent_user_id'], ['users.id'], name=op.f('fk_administrations_respondent_user_id_users')),
    sa.ForeignKeyConstraint(['supersedes_id'], ['administrations.id'], name=op.f('fk_administrations_supersedes_id_administrations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_administrations')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_administrations_idempotency_key')),
    sa.UniqueConstraint('supersedes_id', name=op.f('uq_administrations_supersedes_id'))
    )
    with op.batch_alter_table('administrations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_administrations_appointment_id'), ['appointment_id'], unique=False)
        batch_op.create_index('ix_administrations_episode_instrument', ['episode_id', 'instrument_id', 'completed_dt'], unique=False)
        batch_op.create_index(batch_op.f('ix_administrations_link_id'), ['link_id'], unique=False)

    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('episode_id', sa.Integer(), nullable=False),
    sa.Column('administration_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('raised_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('acknowledged_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.Column('acknowledged_by_id', sa.Integer(), nullable=True),
    sa.Column('acknowledgement_note', sa.Text(), nullable=True),
    sa.Column('resolved_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.CheckConstraint("status <> 'acknowledged' OR (acknowledged_dt IS NOT NULL AND acknowledged_by_id IS NOT NULL AND acknowledgement_note IS NOT NULL AND acknowledgement_note <> '')", name=op.f('ck_alerts_acknowledgement_complete')),
    sa.CheckConstraint("status <> 'resolved' OR resolved_dt IS NOT NULL", name=op.f('ck_alerts_resolution_dated')),
    sa.CheckConstraint("status IN ('open', 'acknowledged', 'resolved')", name=op.f('ck_alerts_status_known')),
    sa.ForeignKeyConstraint(['acknowledged_by_id'], ['users.id'], name=op.f('fk_alerts_acknowledged_by_id_users')),
    sa.ForeignKeyConstraint(['administration_id'], ['administrations.id'], name=op.f('fk_alerts_administration_id_administrations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.id'], name=op.f('fk_alerts_episode_id_episodes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alerts_episode_id'), ['episode_id'], unique=False)
        batch_op.create_index('uq_alerts_open_per_kind', ['episode_id', 'kind'], unique=True, sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))



def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('uq_alerts_open_per_kind', sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))
        batch_op.drop_index(batch_op.f('ix_alerts_episode_id'))

    op.drop_table('alerts')
    with op.batch_alter_table('administrations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_administrations_link_id'))
        batch_op.drop_index('ix_administrations_episode_instrument')
        batch_op.drop_index(batch_op.f('ix_administrations_appointment_id'))

    op.drop_table('administrations')
    with op.batch_alter_table('questionnaire_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_questionnaire_links_episode_id'))
        batch_op.drop_index(batch_op.f('ix_questionnaire_links_appointment_id'))

    op.drop_table('questionnaire_links')
    with op.batch_alter_table('goals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_goals_episode_id'))

    op.drop_table('goals')
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.drop_index('ix_appointments_episode_starts')

    op.drop_table('appointments')
    with op.batch_alter_table('episodes', schema=None) as batch_op:
        batch_op.drop_index('uq_episodes_open_per_client', sqlite_where=sa.text('closed_on IS NULL'), postgresql_where=sa.text('closed_on IS NULL'))
        batch_op.drop_index(batch_op.f('ix_episodes_therapist_id'))
        batch_op.drop_index(batch_op.f('ix_episodes_clinic_id'))
        batch_op.drop_index(batch_op.f('ix_episodes_client_id'))

    op.drop_table('episodes')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_occurred_dt'))
        batch_op.drop_index('ix_audit_events_clinic_occurred')
        batch_op.drop_index(batch_op.f('ix_audit_events_clinic_id'))
        batch_op.drop_index(batch_op.f('ix_audit_events_client_id'))
        batch_op.drop_index(batch_op.f('ix_audit_events_actor_user_id'))

    _drop_audit_append_only()
    op.drop_table('audit_events')
    with op.batch_alter_table('supervisor_assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_supervisor_assignments_therapist_id'))
        batch_op.drop_index(batch_op.f('ix_supervisor_assignments_supervisor_id'))
        batch_op.drop_index(batch_op.f('ix_supervisor_assignments_clinic_id'))

    op.drop_table('supervisor_assignments')
    with op.batch_alter_table('report_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_runs_recipient_user_id'))

    op.drop_table('report_runs')
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_clients_therapist_id'))
        batch_op.drop_index(batch_op.f('ix_clients_clinic_id'))

    op.drop_table('clients')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_clinic_id'))
    op.drop_index('uq_users_email_lower', table_name='users')

    op.drop_table('users')
    op.drop_table('clinics')


APPEND_ONLY_MESSAGE = "audit_events is append-only"


def _make_audit_append_only() -> None:
    """Refuse UPDATE and DELETE on the audit trail in the database itself, not only in the app."""
    if op.get_bind().dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{action.lower()} BEFORE {action} ON audit_events "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )


def _drop_audit_append_only() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER audit_events_no_update")
        op.execute("DROP TRIGGER audit_events_no_delete")
    else:
        op.execute("DROP TRIGGER audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER audit_events_no_change ON audit_events")
        op.execute("DROP FUNCTION audit_events_append_only()")
