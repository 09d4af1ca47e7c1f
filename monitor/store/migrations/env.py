"""Alembic's environment for the drift history.

``monitor.store.schema`` runs it with a connection of the store's own engine in
``config.attributes["connection"]``, inside a transaction it already began: no
``alembic.ini``, no URL of its own, no logging set-up.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from monitor.store.tables import metadata


def run_migrations() -> None:
    """Apply the revisions Alembic picked, on the connection the store passed."""
    conn = context.config.attributes.get("connection")
    if not isinstance(conn, Connection):
        raise RuntimeError(
            "driftgate's migrations run when a history store opens (or `driftgate db "
            "upgrade`), on the store's connection; there is no alembic.ini"
        )
    context.configure(connection=conn, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


if hasattr(context, "config"):  # run by Alembic (pytest's doctest collection only imports it)
    run_migrations()
