"""Where a study lives: parsing and finding a storage, opening it, a journal file's integrity, the
locks that keep one writer per file and one taker per slot, and retries while a database is
away."""

from search.storage.locks import SlotLock, owner_lock
from search.storage.opening import HEARTBEAT_REASON, MAX_RETRY, Retry, error_detail, open_storage
from search.storage.retries import STORAGE_ERRORS, with_storage_retries
from search.storage.spec import StorageChoice, StorageSpec, choose_storage, find_storage, mask_argv

__all__ = [
    "HEARTBEAT_REASON",
    "MAX_RETRY",
    "STORAGE_ERRORS",
    "Retry",
    "SlotLock",
    "StorageChoice",
    "StorageSpec",
    "choose_storage",
    "error_detail",
    "find_storage",
    "mask_argv",
    "open_storage",
    "owner_lock",
    "with_storage_retries",
]
