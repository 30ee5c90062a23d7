"""Where a study lives: parsing and finding a storage, opening it, a journal file's integrity, the
locks that keep one writer per file and one taker per slot, the side files beside a study's
own (never followed through a link), and retries while a database is away."""

from search.storage.locks import SlotLock, owner_lock
from search.storage.opening import HEARTBEAT_REASON, MAX_RETRY, Retry, error_detail, open_storage
from search.storage.retries import STORAGE_ERRORS, with_storage_retries
from search.storage.side_files import (
    SET_ASIDE,
    kind_of,
    open_side_file,
    read_side_file,
    replace_file,
    set_aside,
)
from search.storage.spec import (
    StorageChoice,
    StorageSpec,
    choose_storage,
    find_storage,
    mask_argv,
    study_folder,
)

__all__ = [
    "HEARTBEAT_REASON",
    "MAX_RETRY",
    "SET_ASIDE",
    "STORAGE_ERRORS",
    "Retry",
    "SlotLock",
    "StorageChoice",
    "StorageSpec",
    "choose_storage",
    "error_detail",
    "find_storage",
    "kind_of",
    "mask_argv",
    "open_side_file",
    "open_storage",
    "owner_lock",
    "read_side_file",
    "replace_file",
    "set_aside",
    "study_folder",
    "with_storage_retries",
]
