"""The drift history: events, signals, runs, offsets and detector state, in one database.

SQLite by default (SQLAlchemy Core, so PostgreSQL can be added behind the same queries).
"""

from monitor.store.history import Batch, HistoryFilter, HistoryStore

__all__ = ["Batch", "HistoryFilter", "HistoryStore"]
