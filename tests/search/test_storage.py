"""Which storage a command takes, from --study, --storage and the number of workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from search.errors import UsageError
from search.storage import StorageSpec, choose_storage, find_storage
from search.storage.spec import parse_storage


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # studies/ is relative to where a command runs
    return tmp_path


def test_a_new_study_gets_sqlite_for_one_worker_and_a_journal_for_several(cwd: Path) -> None:
    one = choose_storage("s", None, workers=1, workers_given=False)
    assert one.spec == StorageSpec("sqlite", "sqlite:///studies/s.db")
    assert (one.workers, one.default, one.note) == (1, True, None)
    two = choose_storage("s", None, workers=2, workers_given=False)
    assert two.spec == StorageSpec("journal", "studies/s.journal") and two.workers == 2


def test_the_studys_existing_file_wins(cwd: Path) -> None:
    (cwd / "studies").mkdir()
    (cwd / "studies" / "s.db").touch()
    choice = choose_storage("s", None, workers=2, workers_given=False)
    assert choice.spec.kind == "sqlite" and choice.workers == 1
    assert choice.note is not None and "one process only" in choice.note
    assert find_storage("s", None) == choice.spec
    (cwd / "studies" / "s.journal").touch()
    with pytest.raises(UsageError, match="both"):
        choose_storage("s", None, workers=1, workers_given=False)


def test_sqlite_named_with_several_workers(cwd: Path) -> None:
    choice = choose_storage("s", "sqlite:///x.db", workers=2, workers_given=False)
    assert choice.workers == 1 and not choice.default and choice.note
    with pytest.raises(UsageError, match="one process only"):
        choose_storage("s", "sqlite:///x.db", workers=2, workers_given=True)
    shared = choose_storage("s", "x.journal", workers=3, workers_given=True)
    assert shared.spec == StorageSpec("journal", "x.journal") and shared.workers == 3


def test_a_home_folder_in_a_path_is_expanded() -> None:
    assert parse_storage("~/s.journal") == StorageSpec("journal", str(Path.home() / "s.journal"))


def test_find_storage_needs_an_existing_study(cwd: Path) -> None:
    with pytest.raises(UsageError, match="no study 's' under studies/"):
        find_storage("s", None)


@pytest.mark.parametrize(
    ("text", "kind", "url"),
    [
        ("sqlite:///a.db", "sqlite", "sqlite:///a.db"),
        ("a.db", "sqlite", "sqlite:///a.db"),
        ("a.journal", "journal", "a.journal"),
        ("postgres://u@h/db", "postgresql", "postgresql+psycopg://u@h/db"),
    ],
)
def test_parse_storage(text: str, kind: str, url: str) -> None:
    assert parse_storage(text) == StorageSpec(kind, url)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mysql://r@h/x", "unknown scheme"),
        ("results.txt", "not a storage"),
        ("postgresql://h", "name the database"),
        ("sqlite://a.db", "sqlite:///relative.db"),
    ],
)
def test_parse_storage_refuses(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_storage(text)
