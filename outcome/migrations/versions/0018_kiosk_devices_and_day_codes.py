"""The waiting-room kiosk: enrolled devices and one-day codes (issue 17).

``kiosk_devices``: a clinic's kiosk tablets, each with the SHA-256 of its secret (kept
by the device in a cookie), revocable. ``kiosk_codes``: short codes a therapist makes for
a client's appointment today, stored as keyed hashes, single use, expiring at the end of
the clinic's day; each opens that appointment's questionnaire link.

Downgrade drops both tables (enrolled devices must be set up again).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import outcome.models.base

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('kiosk_devices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('enrolled_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.Column('last_used_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.Column('revoked_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_kiosk_devices_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_kiosk_devices_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kiosk_devices')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_kiosk_devices_token_hash'))
    )
    with op.batch_alter_table('kiosk_devices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kiosk_devices_clinic_id'), ['clinic_id'], unique=False)

    op.create_table('kiosk_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('appointment_id', sa.Integer(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('expires_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('used_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.Column('used_by_device_id', sa.Integer(), nullable=True),
    sa.Column('revoked_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.CheckConstraint('expires_dt > created_dt', name=op.f('ck_kiosk_codes_expires_after_created')),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointments.id'], name=op.f('fk_kiosk_codes_appointment_id_appointments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_kiosk_codes_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_kiosk_codes_created_by_id_users')),
    sa.ForeignKeyConstraint(['link_id'], ['questionnaire_links.id'], name=op.f('fk_kiosk_codes_link_id_questionnaire_links'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['used_by_device_id'], ['kiosk_devices.id'], name=op.f('fk_kiosk_codes_used_by_device_id_kiosk_devices'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kiosk_codes')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_kiosk_codes_code_hash'))
    )
    with op.batch_alter_table('kiosk_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kiosk_codes_appointment_id'), ['appointment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_kiosk_codes_clinic_id'), ['clinic_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('kiosk_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kiosk_codes_clinic_id'))
        batch_op.drop_index(batch_op.f('ix_kiosk_codes_appointment_id'))

    op.drop_table('kiosk_codes')
    with op.batch_alter_table('kiosk_devices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kiosk_devices_clinic_id'))

    op.drop_table('kiosk_devices')
