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
    is_sqlite = connection.dialect.name == "sqlite"
    raw = connection.connection.driver_connection if is_sqlite else None
    if raw is not None:
        # SQLite cannot ALTER most things in place: batch mode copies a table and drops
        # the old one. With foreign keys enforced, that DROP deletes every row that
        # refers to the table (ON DELETE CASCADE) or empties its reference (SET NULL):
        # rebuilding `appointments` lost every questionnaire link. SQLite's own recipe
        # for such changes: keys off (outside any transaction), change, check, keys on.
        assert not raw.in_transaction
        raw.execute("PRAGMA foreign_keys = OFF")
    try:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=is_sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if is_sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"the migration left rows whose references do not "
                                       f"resolve (table, row, parent): {broken[:10]}")
        connection.commit()
    finally:
        if raw is not None:
            raw.execute("PRAGMA foreign_keys = ON")
