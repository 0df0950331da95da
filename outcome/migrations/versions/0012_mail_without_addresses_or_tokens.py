"""Mail without client addresses or usable tokens in the database (issue 16).

- ``outbound_emails.link_nonce``: a queued link e-mail holds a nonce from which its token
  is derived with the app's secret key at sending (outcome.services.mail), never the token.
  Messages queued before this revision are sealed by the delivery job on its next run (it
  has the key; a migration does not).
- Delivery errors already stored (``outbound_emails.last_error`` and
  ``report_runs.last_error``) get every e-mail address masked: a mail server's refusal
  quotes the recipient, and admins see these texts.
- Digests are no longer e-mailed as attachments: pending digest messages lose their
  attachment, and their body says where the digest is instead.

Downgrade drops the nonce column. A pending link message that holds a nonce cannot be
sent by the older code (its body has a slot, not a token), so it is marked failed with
that reason; masked addresses stay masked.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# The same pattern as outcome.services.mail (a migration keeps its own copy: it must
# mean what it meant when it was written).
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)*")


def _mask_column(name: str) -> None:
    bind = op.get_bind()
    rows = sa.table(name, sa.column('id'), sa.column('last_error'))
    for row_id, error in bind.execute(sa.select(rows.c.id, rows.c.last_error).where(
            rows.c.last_error.like('%@%'))).all():
        bind.execute(rows.update().where(rows.c.id == row_id).values(
            last_error=_ADDRESS.sub("[address]", error)))


def upgrade() -> None:
    op.add_column('outbound_emails', sa.Column('link_nonce', sa.String(length=64),
                                               nullable=True))
    _mask_column('outbound_emails')
    _mask_column('report_runs')
    op.get_bind().execute(sa.text(
        "UPDATE outbound_emails SET body_text = REPLACE(body_text, :attached, :kept) "
        "WHERE status = 'pending' AND attachment_document_id IS NOT NULL"),
        {"attached": " is attached.\nIt is also kept in outcome: ",
         "kept": " is ready in outcome (sign in to open it): "})
    op.execute("UPDATE outbound_emails SET attachment_document_id = NULL "
               "WHERE status = 'pending' AND attachment_document_id IS NOT NULL")


def downgrade() -> None:
    op.execute("UPDATE outbound_emails SET status = 'failed', "
               "last_error = 'not sent: the application was downgraded before delivery' "
               "WHERE status = 'pending' AND link_nonce IS NOT NULL")
    # Not batch mode (see 0009): SQLite has dropped columns in place since 3.35.
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE outbound_emails DROP COLUMN link_nonce')
    else:
        op.drop_column('outbound_emails', 'link_nonce')
