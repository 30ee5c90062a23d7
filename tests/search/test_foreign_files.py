"""Only what is ours is touched: a file or database that is not a study storage of ours is
refused, from a read-only look, in one line naming it, and left byte for byte as it was; one
run owns a file storage whatever path reaches it."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import TINY, assert_one_line_error, run_cli

COMMANDS = [
    ["search.run", "--trials", "1", "--workers", "1", *TINY],
    ["search.final_eval"],
    ["search.dashboard"],
]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_another_programs_sqlite_file_with_a_studies_table_is_left_alone(
    command: list[str], tmp_path: Path
) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE studies (id INTEGER PRIMARY KEY, title TEXT)")
        conn.execute("INSERT INTO studies (title) VALUES ('mine')")
    before = digest(db)
    r = run_cli(*command, "--storage", f"sqlite:///{db}", cwd=tmp_path)
    assert_one_line_error(r, str(db), "another program's SQLite database", "left as it is")
    assert digest(db) == before
    with sqlite3.connect(db) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
    assert tables == ["studies"]


def test_another_programs_tables_with_optunas_names_are_left_alone(tmp_path: Path) -> None:
    # Tables named as two of Optuna's, with other columns and no `studies`: another program's
    # data, not a schema being created. Nothing is added to it.
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE trials (id INTEGER PRIMARY KEY, patient TEXT)")
        conn.execute("CREATE TABLE version_info (version TEXT)")
        conn.execute("INSERT INTO trials (patient) VALUES ('p1')")
    before = digest(db)
    r = run_cli(*COMMANDS[0], "--storage", f"sqlite:///{db}", cwd=tmp_path)
    assert_one_line_error(r, str(db), "another program's SQLite database", "not Optuna's columns")
    assert digest(db) == before


def test_a_schema_being_created_is_not_taken_for_another_programs(tmp_path: Path) -> None:
    # Some of Optuna's tables, each whole, as a process creating the schema leaves them for a
    # moment: the file is Optuna's, and a run completes the schema and uses it.
    whole = tmp_path / "whole.db"
    r = run_cli(*COMMANDS[0], "--storage", f"sqlite:///{whole}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    part = tmp_path / "part.db"
    with sqlite3.connect(whole) as src, sqlite3.connect(part) as dst:
        for (sql,) in src.execute(
            "SELECT sql FROM sqlite_master WHERE type='table' AND name IN ('studies', 'trials')"
        ):
            dst.execute(sql)
    r = run_cli(*COMMANDS[0], "--storage", f"sqlite:///{part}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_text_file_given_as_a_journal_is_not_cut(command: list[str], tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("started\nworking\nhalf a line with no end")  # no final newline
    before = digest(log)
    r = run_cli(*command, "--storage", str(log), cwd=tmp_path)
    assert_one_line_error(r, str(log), "not an Optuna journal", "left as it is")
    assert digest(log) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.log"]  # no backup, no lock


def test_a_fifo_or_a_device_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.journal"
    os.mkfifo(fifo)
    r = run_cli("search.run", "--trials", "1", "--storage", str(fifo), cwd=tmp_path, timeout=60)
    assert_one_line_error(r, str(fifo), "is a FIFO, not a study file")
    zero = tmp_path / "zero.journal"
    zero.symlink_to("/dev/zero")
    r = run_cli("search.final_eval", "--storage", str(zero), cwd=tmp_path, timeout=60)
    assert_one_line_error(r, str(zero), "is a character device, not a study file")
    folder = tmp_path / "folder.db"
    folder.mkdir()
    r = run_cli("search.run", "--storage", f"sqlite:///{folder}", cwd=tmp_path, timeout=60)
    assert_one_line_error(r, str(folder), "is a directory")


def test_a_journal_whose_lock_path_is_a_directory(tmp_path: Path) -> None:
    r = run_cli("search.run", "--trials", "1", "--workers", "1", "--storage", "s.journal",
                *TINY, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    (tmp_path / "s.journal.lock").mkdir()
    (tmp_path / "s.journal.lock" / "kept").write_text("a neighbour's")
    r = run_cli("search.run", "--trials", "2", "--workers", "1", "--storage", "s.journal",
                *TINY, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    [said] = [line for line in r.stderr.splitlines() if "moved aside" in line]
    assert "s.journal.lock: a directory where the journal's lock goes" in said
    [aside] = tmp_path.glob("s.journal.lock.set-aside-*")
    assert (aside / "kept").read_text() == "a neighbour's"
    assert not os.path.lexists(tmp_path / "s.journal.lock")


def start_run(cwd: Path, storage: str) -> subprocess.Popen[str]:
    """A run of slow trials on `storage`, returned once its first trial is training."""
    p = subprocess.Popen(
        [sys.executable, "-m", "search.run", "--trials", "50", "--workers", "1", "--epochs",
         "50", "--study", "s", "--storage", storage],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert p.stdout is not None
    seen = ""
    while "trials finished" not in seen:
        line = p.stdout.readline()
        assert line, f"ended early: {seen}"
        seen += line
    return p


def test_one_run_owns_a_journal_through_links_and_without_its_owner_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a/link.journal").symlink_to(tmp_path / "real.journal")
    (tmp_path / "b/other.journal").symlink_to("../a/link.journal")
    first = start_run(tmp_path, "a/link.journal")
    try:
        r = run_cli("search.run", "--trials", "50", "--study", "s", "--storage",
                    "b/other.journal", cwd=tmp_path, timeout=120)  # fmt: skip
        assert_one_line_error(r, "is in use by another search.run", f"pid {first.pid}")
        (tmp_path / "real.journal.owner").unlink()  # the pid note, not the lock
        r = run_cli("search.run", "--trials", "50", "--study", "s", "--storage",
                    "real.journal", cwd=tmp_path, timeout=120)  # fmt: skip
        assert_one_line_error(r, "is in use by another search.run")
        assert first.poll() is None
        assert "left RUNNING" not in r.stderr
    finally:
        first.send_signal(signal.SIGINT)
        out, _ = first.communicate(timeout=60)
    assert first.returncode == 130, out
    assert "was left RUNNING" not in out


@pytest.mark.parametrize(
    ("revision", "needle"),
    [("v3.0.0.d", "an older storage schema"), ("v99.0.0.a", "a newer storage schema")],
    ids=["older", "newer"],
)
def test_an_optuna_storage_of_another_schema_version_is_one_line(
    revision: str, needle: str, tmp_path: Path
) -> None:
    r = run_cli(*COMMANDS[0], "--storage", "sqlite:///s.db", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with sqlite3.connect(tmp_path / "s.db") as conn:  # as another Optuna version leaves it
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
        conn.execute("UPDATE version_info SET library_version = '9.9.9'")
    before = digest(tmp_path / "s.db")
    for command in COMMANDS:
        r = run_cli(*command, "--storage", "sqlite:///s.db", cwd=tmp_path)
        assert_one_line_error(r, "s.db was made by optuna 9.9.9", needle)
    assert "optuna storage upgrade --storage" in r.stderr or revision.startswith("v99")
    assert digest(tmp_path / "s.db") == before


@pytest.mark.postgres
def test_another_programs_trials_table_on_postgresql_is_left_alone(
    pg_url: str, tmp_path: Path
) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE trials (id serial PRIMARY KEY, patient text)"))
    r = run_cli(*COMMANDS[0], "--storage", pg_url, cwd=tmp_path)
    assert_one_line_error(r, "holds another program's table(s) named as Optuna's", "trials")
    with engine.connect() as conn:
        tables = conn.execute(
            sqlalchemy.text("SELECT table_name FROM information_schema.tables "
                            "WHERE table_schema = 'public'")
        ).scalars().all()  # fmt: skip
    engine.dispose()
    assert tables == ["trials"]  # none of Optuna's was created beside it


def test_a_locked_sqlite_file_is_called_locked(tmp_path: Path) -> None:
    r = run_cli(*COMMANDS[0], "--storage", "sqlite:///s.db", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    holder = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another program in a long write
    try:
        r = run_cli(*COMMANDS[0], "--storage", "sqlite:///s.db", cwd=tmp_path)
    finally:
        holder.close()
    assert_one_line_error(r, "s.db is locked by another program")
