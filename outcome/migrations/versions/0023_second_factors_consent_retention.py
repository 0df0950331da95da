"""Procurement-grade trust (issue 20): second factors, consent, erasure and retention.

New tables (:mod:`outcome.models.trust`): ``totp_secrets``, ``recovery_codes`` and
``passkeys`` (staff second factors); ``consent_texts`` and ``consent_decisions``;
``retention_runs`` (one per clinic, kind and day). ``clients`` gains ``erased_dt`` and
``erasure_reason``, set together on a tombstone. Existing rows are unchanged: nobody has a
second factor, no client has decided about consent (they are asked at their next
questionnaire), and no client is erased.

Downgrade drops the columns and the tables; a tombstone's fields are lost with them
(its personal data was erased already and stays erased).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import outcome.models.base

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('retention_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('run_on', sa.Date(), nullable=False),
    sa.Column('codes', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('started_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('finished_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.CheckConstraint("kind IN ('dry_run', 'erase')", name=op.f('ck_retention_runs_kind_known')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_retention_runs_clinic_id_clinics'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retention_runs')),
    sa.UniqueConstraint('clinic_id', 'kind', 'run_on', name=op.f('uq_retention_runs_clinic_id_kind_run_on'))
    )
    with op.batch_alter_table('retention_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retention_runs_clinic_id'), ['clinic_id'], unique=False)

    op.create_table('consent_texts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_by_user_id', sa.Integer(), nullable=True),
    sa.Column('created_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.CheckConstraint("body <> ''", name=op.f('ck_consent_texts_body_not_empty')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_consent_texts_version_positive')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_consent_texts_clinic_id_clinics'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_consent_texts_created_by_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_texts')),
    sa.UniqueConstraint('clinic_id', 'language', 'version', name=op.f('uq_consent_texts_clinic_id_language_version'))
    )
    with op.batch_alter_table('consent_texts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_texts_clinic_id'), ['clinic_id'], unique=False)

    op.create_table('passkeys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('credential_id', sa.String(length=1400), nullable=False),
    sa.Column('public_key', sa.Text(), nullable=False),
    sa.Column('sign_count', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('transports', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('created_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('last_used_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.CheckConstraint("name <> ''", name=op.f('ck_passkeys_name_not_empty')),
    sa.CheckConstraint('sign_count >= 0', name=op.f('ck_passkeys_sign_count_not_negative')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_passkeys_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_passkeys')),
    sa.UniqueConstraint('credential_id', name=op.f('uq_passkeys_credential_id'))
    )
    with op.batch_alter_table('passkeys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_passkeys_user_id'), ['user_id'], unique=False)

    op.create_table('recovery_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=255), nullable=False),
    sa.Column('used_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.Column('created_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_recovery_codes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_codes'))
    )
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recovery_codes_user_id'), ['user_id'], unique=False)

    op.create_table('totp_secrets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('confirmed_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.Column('last_step', sa.Integer(), nullable=True),
    sa.Column('created_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_totp_secrets_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_totp_secrets')),
    sa.UniqueConstraint('user_id', name=op.f('uq_totp_secrets_user_id'))
    )
    op.create_table('consent_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('text_id', sa.Integer(), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=True),
    sa.Column('recorded_by_user_id', sa.Integer(), nullable=True),
    sa.Column('decided_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.CheckConstraint("channel IN ('link', 'kiosk', 'staff')", name=op.f('ck_consent_decisions_channel_known')),
    sa.CheckConstraint("decision IN ('agreed', 'refused', 'withdrawn')", name=op.f('ck_consent_decisions_decision_known')),
    sa.ForeignKeyConstraint(['clinic_id', 'client_id'], ['clients.clinic_id', 'clients.id'], name='fk_consent_decisions_client_clients', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_consent_decisions_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['link_id'], ['questionnaire_links.id'], name=op.f('fk_consent_decisions_link_id_questionnaire_links'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['recorded_by_user_id'], ['users.id'], name=op.f('fk_consent_decisions_recorded_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['text_id'], ['consent_texts.id'], name=op.f('fk_consent_decisions_text_id_consent_texts'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_decisions'))
    )
    with op.batch_alter_table('consent_decisions', schema=None) as batch_op:
        batch_op.create_index('ix_consent_decisions_client_decided', ['client_id', 'decided_dt'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_decisions_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_decisions_clinic_id'), ['clinic_id'], unique=False)

    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erased_dt', outcome.models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('erasure_reason', sa.String(length=16), nullable=True))
        batch_op.create_check_constraint(op.f('ck_clients_erasure_reason_iff_erased'),
                                         '(erased_dt IS NULL) = (erasure_reason IS NULL)')
        batch_op.create_check_constraint(
            op.f('ck_clients_erasure_reason_known'),
            "erasure_reason IS NULL OR erasure_reason IN ('request', 'retention')")



def downgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_clients_erasure_reason_known'), type_='check')
        batch_op.drop_constraint(op.f('ck_clients_erasure_reason_iff_erased'), type_='check')
        batch_op.drop_column('erasure_reason')
        batch_op.drop_column('erased_dt')

    with op.batch_alter_table('consent_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_decisions_clinic_id'))
        batch_op.drop_index(batch_op.f('ix_consent_decisions_client_id'))
        batch_op.drop_index('ix_consent_decisions_client_decided')

    op.drop_table('consent_decisions')
    op.drop_table('totp_secrets')
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recovery_codes_user_id'))

    op.drop_table('recovery_codes')
    with op.batch_alter_table('passkeys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_passkeys_user_id'))

    op.drop_table('passkeys')
    with op.batch_alter_table('consent_texts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_texts_clinic_id'))

    op.drop_table('consent_texts')
    with op.batch_alter_table('retention_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retention_runs_clinic_id'))

    op.drop_table('retention_runs')
