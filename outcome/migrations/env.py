"""Alembic environment: runs migrations on the engine handed over by outcome.schema."""

from __future__ import annotations

from alembic import context

import outcome.models  # noqa: F401  (registers every table)
from outcome.models.base import Base

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
