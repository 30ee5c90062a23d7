"""A study together with the storage this process opened it on.

`optuna.Study` offers no public way to a trial's storage id or to heartbeats; the storage the
project opened itself does, through `BaseStorage`'s public methods, so the trial loop holds
both instead of reaching into the study.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from optuna.storages import BaseStorage, RDBStorage


@dataclass(frozen=True)
class StudyHandle:
    study: optuna.Study
    storage: BaseStorage  # the storage `study` was loaded or created on
    study_id: int

    @classmethod
    def of(cls, study: optuna.Study, storage: BaseStorage) -> StudyHandle:
        return cls(study, storage, storage.get_study_id_from_name(study.study_name))

    def trial_id(self, number: int) -> int:
        """The storage's id of trial `number`."""
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    @property
    def heartbeat(self) -> int | None:
        """Seconds between a running trial's heartbeats, where the storage keeps them (an RDB
        storage opened with a heartbeat); None elsewhere."""
        if isinstance(self.storage, RDBStorage):
            return self.storage.get_heartbeat_interval()
        return None

    def record_heartbeat(self, trial_id: int) -> None:
        assert isinstance(self.storage, RDBStorage), "only RDB storages keep heartbeats"
        self.storage.record_heartbeat(trial_id)
