"""Episode signals and fitted expected-response models.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import outcome.models.base

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('trajectory_fits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('instrument_id', sa.String(length=64), nullable=False),
    sa.Column('fitted_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.Column('n_episodes', sa.Integer(), nullable=False),
    sa.Column('n_observations', sa.Integer(), nullable=False),
    sa.Column('parameters', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.CheckConstraint('n_episodes >= 0 AND n_observations >= 0', name=op.f('ck_trajectory_fits_counts_non_negative')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_trajectory_fits_clinic_id_clinics')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trajectory_fits'))
    )
    with op.batch_alter_table('trajectory_fits', schema=None) as batch_op:
        batch_op.create_index('ix_trajectory_fits_latest', ['clinic_id', 'instrument_id', 'fitted_dt'], unique=False)

    op.create_table('episode_signals',
    sa.Column('episode_id', sa.Integer(), nullable=False),
    sa.Column('colour', sa.String(length=8), nullable=False),
    sa.Column('urgency', sa.Integer(), nullable=False),
    sa.Column('change_category', sa.String(length=16), nullable=True),
    sa.Column('ruptures', sa.Integer(), nullable=False),
    sa.Column('ruptures_repaired', sa.Integer(), nullable=False),
    sa.Column('ruptures_unrepaired', sa.Integer(), nullable=False),
    sa.Column('state', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('computed_dt', outcome.models.base.UTCDateTime(), nullable=False),
    sa.CheckConstraint("colour IN ('grey', 'white', 'green', 'yellow', 'red')", name=op.f('ck_episode_signals_colour_known')),
    sa.CheckConstraint('urgency BETWEEN 0 AND 7', name=op.f('ck_episode_signals_urgency_range')),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.id'], name=op.f('fk_episode_signals_episode_id_episodes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('episode_id', name=op.f('pk_episode_signals'))
    )
    with op.batch_alter_table('episode_signals', schema=None) as batch_op:
        batch_op.create_index('ix_episode_signals_urgency', ['urgency'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('episode_signals', schema=None) as batch_op:
        batch_op.drop_index('ix_episode_signals_urgency')

    op.drop_table('episode_signals')
    with op.batch_alter_table('trajectory_fits', schema=None) as batch_op:
        batch_op.drop_index('ix_trajectory_fits_latest')

    op.drop_table('trajectory_fits')
