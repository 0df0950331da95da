"""Appointment statuses in one list, with late cancellations; weekly series recorded (issue 17).

``appointments.status`` may now also be ``late_cancelled`` (called off at short notice).
The CHECK constraint is rebuilt from the one list in ``outcome.models.care``; every row
already satisfies it (the old list is a subset), and the upgrade says which rows do not
before changing anything, should a database have been edited by hand.
``appointments.series_id`` names the first appointment of the weekly series an
appointment was booked in, so that the rest of a series can be cancelled; appointments
booked before this revision have none.

Downgrade turns late cancellations into cancellations (the old list has no such status)
and drops ``series_id``.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

NEW = ('scheduled', 'attended', 'no_show', 'cancelled', 'late_cancelled')
OLD = ('scheduled', 'attended', 'cancelled', 'no_show')


def _in(values: tuple[str, ...]) -> str:
    return "status IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    bind = op.get_bind()
    appointments = sa.table('appointments', sa.column('status', sa.String()))
    unknown = bind.execute(
        sa.select(appointments.c.status, sa.func.count())
        .where(appointments.c.status.not_in(NEW)).group_by(appointments.c.status)).all()
    if unknown:
        raise RuntimeError("appointments with an unknown status (fix them first): "
                           + ", ".join(f"{s!r} x {n}" for s, n in unknown))
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('series_id', sa.Integer(), nullable=True))
        batch_op.drop_constraint(op.f('ck_appointments_status_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_appointments_status_known'), _in(NEW))


def downgrade() -> None:
    op.execute("UPDATE appointments SET status = 'cancelled' "
               "WHERE status = 'late_cancelled'")
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_appointments_status_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_appointments_status_known'), _in(OLD))
        batch_op.drop_column('series_id')
