"""Instrument licence attestations by clinic admins.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import outcome.models.base

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('instrument_attestations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('instrument_id', sa.String(length=64), nullable=False),
    sa.Column('licence_name', sa.String(length=200), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('attested_by_id', sa.Integer(), nullable=False),
    sa.Column('attested_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('revoked_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.Column('revoked_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['attested_by_id'], ['users.id'], name=op.f('fk_instrument_attestations_attested_by_id_users')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_instrument_attestations_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['revoked_by_id'], ['users.id'], name=op.f('fk_instrument_attestations_revoked_by_id_users')),
    sa.CheckConstraint('(revoked_dt IS NULL) = (revoked_by_id IS NULL)', name=op.f('ck_instrument_attestations_revocation_complete')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_instrument_attestations'))
    )
    with op.batch_alter_table('instrument_attestations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_instrument_attestations_clinic_id'), ['clinic_id'], unique=False)
        batch_op.create_index('uq_instrument_attestations_active', ['clinic_id', 'instrument_id'], unique=True, sqlite_where=sa.text('revoked_dt IS NULL'), postgresql_where=sa.text('revoked_dt IS NULL'))



def downgrade() -> None:
    with op.batch_alter_table('instrument_attestations', schema=None) as batch_op:
        batch_op.drop_index('uq_instrument_attestations_active', sqlite_where=sa.text('revoked_dt IS NULL'), postgresql_where=sa.text('revoked_dt IS NULL'))
        batch_op.drop_index(batch_op.f('ix_instrument_attestations_clinic_id'))

    op.drop_table('instrument_attestations')
