from edgegate.store.db import SCHEMA_VERSION, StoreError, open_db, transaction
from edgegate.store.store import AsyncStore

__all__ = ["SCHEMA_VERSION", "AsyncStore", "StoreError", "open_db", "transaction"]
