"""Alembic migrations of the drift history (run by ``monitor.store.schema`` at store open).

``env.py`` is Alembic's environment; ``versions/`` holds one file per revision, numbered
``0001``, ``0002``… Add a revision by hand: a new ``versions/rNNNN_what.py`` whose
``down_revision`` is the previous head, the same change in ``monitor/store/tables.py``, and
``tests/unit/test_migrations.py`` checks they agree on SQLite and PostgreSQL.
"""
