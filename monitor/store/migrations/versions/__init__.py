"""One module per schema revision (Alembic scripts, applied in ``down_revision`` order)."""
