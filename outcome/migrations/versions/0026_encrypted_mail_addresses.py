"""Encryption at rest, review (issue 20): room for the mail queue's encrypted addresses.

``outbound_emails.to_address`` holds clients' (and staff's) e-mail addresses and is now an
encrypted column (``enc:1:<key id>:<base64>``, longer than the address it hides): it
becomes TEXT. Existing values are unchanged: they are encrypted by the next write or
``outcome keys rotate``. (``alerts.detail`` and ``episode_signals.state``, also encrypted
since this review, are JSON already and need no change.)

Downgrade restores VARCHAR(254). It needs plaintext: on PostgreSQL a ciphertext longer
than 254 characters stops it, so run ``outcome keys rotate --decrypt`` first (with the
keys still configured).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbound_emails', schema=None) as batch_op:
        batch_op.alter_column('to_address', existing_type=sa.String(length=254),
                              type_=sa.Text(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('outbound_emails', schema=None) as batch_op:
        batch_op.alter_column('to_address', existing_type=sa.Text(),
                              type_=sa.String(length=254), existing_nullable=False)
