"""Alembic environment: migrations run in-process on the connection :func:`openphm.app.db.migrate` passes."""

from alembic import context

from openphm.app.db import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
