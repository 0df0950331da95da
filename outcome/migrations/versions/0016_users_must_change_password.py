"""A staff account must change its password at its first sign-in (issue 17).

``users.must_change_password`` is true for an account whose password someone else chose
(an admin on the staff page, ``outcome users create`` / ``reset-password``, ``outcome
clinic create`` and the setup page): after signing in, such a user reaches only the
change-password page (and sign-out) until they choose their own. Existing accounts are
false: their passwords were handed over before this rule and are left as they are.

``password_changed_dt IS NULL`` was not reused: it is set whenever any password is
stored (a reset by an admin included), so it cannot tell a password the user chose from
one they were given.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('users', sa.Column('must_change_password', sa.Boolean(),
                                     server_default=sa.false(), nullable=False))


def downgrade() -> None:
    # Not batch mode (it would copy and drop `users`, cascading); SQLite drops in place.
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE users DROP COLUMN must_change_password')
    else:
        op.drop_column('users', 'must_change_password')
