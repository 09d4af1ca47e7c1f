"""The drift history: events, signals, runs, offsets and detector state, in one database.

A SQLite file by default, or a PostgreSQL database shared by a fleet (``history.url``);
SQLAlchemy Core, one code path for both. The schema is migrated when a store opens.
"""

from monitor.store.fencing import Fence
from monitor.store.history import Batch, HistoryFilter, HistoryStore, WindowPart

__all__ = ["Batch", "Fence", "HistoryFilter", "HistoryStore", "WindowPart"]
