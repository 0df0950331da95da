"""Second-step failures in a row (issue 20 review): ``totp_secrets.failures``.

The login throttle forgets failures an hour after the first, which let a guesser who
has the password try about 500 six-digit codes a day from changing addresses. The count
kept here stops accepting the app's codes after a limit until a right factor or an
admin's reset (outcome.services.two_factor). Existing rows start at 0.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('totp_secrets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failures', sa.Integer(), server_default='0',
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('totp_secrets', schema=None) as batch_op:
        batch_op.drop_column('failures')
