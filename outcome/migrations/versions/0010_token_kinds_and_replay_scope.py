"""API token kinds (personal, integration); the client of an idempotency record.

Issue 16, findings 1 and 8. A token now always acts for the person who created it
(``user_id = created_by_id``): a ``personal`` token is made by the staff member it acts
for; an ``integration`` token is an admin's and sees client codes only, read-only.

Existing tokens: one an admin made acting for themselves becomes ``personal``; one an
admin made acting for somebody else becomes an ``integration`` token of that admin
(acting for them, scope ``read`` only), so its holder, who the admin was, reads client
codes from now on, never names, answers or notes. (A token whose creator belongs to
another clinic cannot be kept: none can be made that way, and such a row is deleted.)

Idempotency records gain ``client_id``, so that a replay re-checks that the token may
still reach the client. The stored records (a 24-hour cache of responses) are deleted:
their client is unknown. A retry that spans the upgrade is carried out again; a
submission's own key still keeps it from being stored twice.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    bind = op.get_bind()
    op.execute('DELETE FROM api_idempotency_records')
    op.add_column('api_tokens', sa.Column('kind', sa.String(length=16), nullable=True))
    tokens = sa.table('api_tokens', sa.column('id', sa.Integer), sa.column('clinic_id', sa.Integer),
                      sa.column('user_id', sa.Integer), sa.column('created_by_id', sa.Integer),
                      sa.column('kind', sa.String), sa.column('scopes', JSON))
    users = sa.table('users', sa.column('id', sa.Integer), sa.column('clinic_id', sa.Integer))
    rows = bind.execute(sa.select(tokens.c.id, tokens.c.clinic_id, tokens.c.user_id,
                                  tokens.c.created_by_id, users.c.clinic_id.label('creator_clinic'))
                        .join(users, users.c.id == tokens.c.created_by_id)).all()
    for token_id, clinic_id, user_id, creator_id, creator_clinic in rows:
        where = tokens.c.id == token_id
        if user_id == creator_id:
            bind.execute(tokens.update().where(where).values(kind='personal'))
        elif creator_clinic == clinic_id:
            bind.execute(tokens.update().where(where).values(
                kind='integration', user_id=creator_id, scopes=['read']))
        else:
            bind.execute(tokens.delete().where(where))
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.alter_column('kind', existing_type=sa.String(length=16), nullable=False)
        batch_op.create_check_constraint(op.f('ck_api_tokens_kind_known'),
                                         "kind IN ('personal', 'integration')")
        batch_op.create_check_constraint(op.f('ck_api_tokens_acts_for_its_creator'),
                                         'user_id = created_by_id')
    with op.batch_alter_table('api_idempotency_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_api_idempotency_records_client_id_clients'),
                                    'clients', ['client_id'], ['id'], ondelete='CASCADE')


def downgrade() -> None:
    with op.batch_alter_table('api_idempotency_records', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_api_idempotency_records_client_id_clients'),
                                 type_='foreignkey')
        batch_op.drop_column('client_id')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_api_tokens_acts_for_its_creator'), type_='check')
        batch_op.drop_constraint(op.f('ck_api_tokens_kind_known'), type_='check')
        batch_op.drop_column('kind')
