"""The durable store of measurements, evaluations and runs (SQLite, append-only, versioned).

`Storage` is the protocol that stages depend on; `Store` is its SQLite implementation and
`open_store()` opens the one in the cache dir.
"""

from hwnas.store.protocol import Record, Storage
from hwnas.store.sqlite import SCHEMA_VERSION, TABLES, Store, open_store

__all__ = ["SCHEMA_VERSION", "TABLES", "Record", "Storage", "Store", "open_store"]
