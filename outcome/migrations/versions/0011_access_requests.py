"""Access requests: an admin's own client access waits for a second admin's approval.

Issue 16 (separation of duties): adding the therapist or supervisor role to one's own
account, taking a client, or making oneself a therapist's supervisor is stored as a
request that another active admin of the clinic approves or declines.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import outcome.models.base

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('access_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('requester_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('roles_before', sa.String(length=64), nullable=True),
    sa.Column('roles_after', sa.String(length=64), nullable=True),
    sa.Column('client_id', sa.Integer(), nullable=True),
    sa.Column('therapist_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('expires_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('decided_dt', outcome.models.base.UTCDateTime(), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("kind IN ('roles', 'transfer', 'supervision')", name=op.f('ck_access_requests_kind_known')),
    sa.CheckConstraint("status IN ('pending', 'approved', 'declined', 'cancelled')", name=op.f('ck_access_requests_status_known')),
    sa.CheckConstraint("kind <> 'roles' OR roles_after IS NOT NULL", name=op.f('ck_access_requests_roles_named')),
    sa.CheckConstraint("kind <> 'transfer' OR client_id IS NOT NULL", name=op.f('ck_access_requests_client_named')),
    sa.CheckConstraint("kind <> 'supervision' OR therapist_id IS NOT NULL", name=op.f('ck_access_requests_therapist_named')),
    sa.CheckConstraint("(status = 'pending') = (decided_dt IS NULL)", name=op.f('ck_access_requests_decided_dated')),
    sa.CheckConstraint("status NOT IN ('approved', 'declined') OR decided_by_id <> requester_id", name=op.f('ck_access_requests_not_self_approved')),
    sa.CheckConstraint('expires_dt > created_dt', name=op.f('ck_access_requests_expires_after_created')),
    sa.ForeignKeyConstraint(['clinic_id', 'requester_id'], ['users.clinic_id', 'users.id'], name='fk_access_requests_requester_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['clinic_id', 'client_id'], ['clients.clinic_id', 'clients.id'], name='fk_access_requests_client_clients', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['clinic_id', 'therapist_id'], ['users.clinic_id', 'users.id'], name='fk_access_requests_therapist_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_access_requests_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_access_requests_decided_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_requests'))
    )
    with op.batch_alter_table('access_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_access_requests_clinic_id'), ['clinic_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_requests_requester_id'), ['requester_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('access_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_access_requests_requester_id'))
        batch_op.drop_index(batch_op.f('ix_access_requests_clinic_id'))

    op.drop_table('access_requests')
