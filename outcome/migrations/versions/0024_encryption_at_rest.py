"""Encryption at rest (issue 20): room for ciphertext, and the name-search column.

The columns that may hold ciphertext (``enc:1:<key id>:<base64>``, longer than the text
it hides) become TEXT: ``clients.name``, ``email`` and ``phone``, ``goals.description`` and
``supervision_reviews.note`` (the other encrypted columns were TEXT or JSON already; JSON
columns keep their type and hold ``{"enc": ...}`` when encrypted). ``clients`` gains
``name_search``: keyed hashes of the name's tokens, filled while encryption is on (NULL
with it off). Existing values are unchanged: encryption starts with the next write or
``outcome keys rotate``.

Downgrade restores the lengths and drops ``name_search``. It needs plaintext: on
PostgreSQL a ciphertext longer than the old limit stops it, so run ``outcome keys rotate
--decrypt`` first (with the keys still configured).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

# (table, column, its length before 0024, nullable)
WIDENED = (
    ('clients', 'name', 200, False),
    ('clients', 'email', 254, True),
    ('clients', 'phone', 40, True),
    ('goals', 'description', 500, False),
    ('supervision_reviews', 'note', 500, False),
)


def upgrade() -> None:
    for table in ('clients', 'goals', 'supervision_reviews'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, column, length, nullable in WIDENED:
                if name == table:
                    batch_op.alter_column(column, existing_type=sa.String(length=length),
                                          type_=sa.Text(), existing_nullable=nullable)
            if table == 'clients':
                batch_op.add_column(sa.Column('name_search', sa.Text(), nullable=True))


def downgrade() -> None:
    for table in ('supervision_reviews', 'goals', 'clients'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            if table == 'clients':
                batch_op.drop_column('name_search')
            for name, column, length, nullable in WIDENED:
                if name == table:
                    batch_op.alter_column(column, existing_type=sa.Text(),
                                          type_=sa.String(length=length),
                                          existing_nullable=nullable)
