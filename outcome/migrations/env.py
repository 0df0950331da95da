"""Alembic environment: runs migrations on the engine handed over by outcome.schema."""

from __future__ import annotations

import warnings

from alembic import context
from sqlalchemy.exc import SAWarning

from outcome.models import load_all
from outcome.models.base import Base

load_all()  # every table on Base.metadata, for migrations and comparisons

# SQLite cannot reflect the lower(email) index; batch migrations reflect tables and would
# warn about it on every rebuild. The index itself is created by the migrations.
warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based",
                        category=SAWarning)

engine = context.config.attributes.get("engine")
if engine is None:  # pragma: no cover - only when someone runs the alembic CLI by hand
    raise SystemExit("Run migrations with `outcome db upgrade`, not the alembic command.")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
