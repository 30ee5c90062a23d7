"""The files kept beside a journal (its lock, the pid note, the lock files) as a careless or
hostile neighbour may leave them: a live writer's lock is waited for, a dead one of ours is
broken at once, and nothing at a side file's name steers a write outside the study's folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search.study.states import FINISHED
from tests.helpers import TINY, assert_one_line_error, load_study, run_cli

RUN = ["search.run", "--workers", "1", "--storage", "studies/j.journal", "--study", "j", *TINY]

# A plain Optuna process (as optuna-dashboard saving a note is) that takes the journal's lock,
# holds it until a search.run waits for it and `hold` seconds more, writes under it, then
# releases it: it must find its lock still its own, and its write must land whole.
SLOW_HOLDER = """
import fcntl, sys, time
import optuna
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage
path, hold = sys.argv[1], float(sys.argv[2])

def run_is_waiting():  # a search.run waiting for the lock holds its appender flock
    with open(path + ".appender", "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False

class Held(JournalFileSymlinkLock):  # the lock is already ours: the write takes it as given
    def acquire(self): return True
    def release(self): pass

lock = JournalFileSymlinkLock(path)
lock.acquire()
print("holding", flush=True)
while not run_is_waiting():
    time.sleep(0.05)
time.sleep(hold)  # then as long again as a slow writer would
storage = JournalStorage(JournalFileBackend(path, lock_obj=Held(path)))
study_id = storage.get_study_id_from_name("j")
storage.set_study_user_attr(study_id, "note_of_a_slow_writer", "kept")
lock.release()  # raises if someone broke the lock meanwhile
print("released", flush=True)
"""

# A process of this project killed while it holds the journal's lock.
DIES_HOLDING = """
import os, signal, sys
from search.storage.journal_lock import JournalLock
JournalLock(sys.argv[1]).acquire()
os.kill(os.getpid(), signal.SIGKILL)
"""


def journal_lines_are_whole(path: Path) -> None:
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        assert "op_code" in json.loads(line), number


def test_a_live_writers_lock_is_waited_for_never_broken(tmp_path: Path) -> None:
    r = run_cli(*RUN, "--trials", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    journal = (tmp_path / "studies" / "j.journal").resolve()
    holder = subprocess.Popen(
        [sys.executable, "-c", SLOW_HOLDER, str(journal), "11"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
    r = run_cli(*RUN, "--trials", "2", cwd=tmp_path)
    out, err = holder.communicate(timeout=60)
    assert holder.returncode == 0 and out == "released\n", err  # its lock was never taken away
    assert r.returncode == 0, r.stderr
    assert "died holding it" not in r.stderr
    [said] = [line for line in r.stderr.splitlines() if "waiting for" in line]
    assert "j.journal.lock" in said and "not this project's" in said
    journal_lines_are_whole(journal)
    study = load_study(str(journal), "j")
    assert study.user_attrs["note_of_a_slow_writer"] == "kept"
    assert sum(t.state in FINISHED for t in study.trials) == 2


def test_a_lock_left_by_a_dead_process_of_ours_is_broken_at_once(tmp_path: Path) -> None:
    r = run_cli(*RUN, "--trials", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    journal = (tmp_path / "studies" / "j.journal").resolve()
    dead = subprocess.run([sys.executable, "-c", DIES_HOLDING, str(journal)], cwd=tmp_path,
                          check=False)  # fmt: skip
    assert dead.returncode == -9 and os.path.islink(f"{journal}.lock")
    start = time.monotonic()
    r = run_cli(*RUN, "--trials", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "died holding it: removed" in r.stderr and "waiting for" not in r.stderr
    assert time.monotonic() - start < 60
    assert not os.path.lexists(f"{journal}.lock")
    assert sum(t.state in FINISHED for t in load_study(str(journal), "j").trials) == 2


def test_side_files_that_are_not_files_are_set_aside_and_never_followed(tmp_path: Path) -> None:
    r = run_cli(*RUN, "--trials", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    studies, outside = tmp_path / "studies", tmp_path / "outside"
    outside.mkdir()
    precious = outside / "precious.txt"
    precious.write_text("not the run's to write\n")
    for name in ("j.journal.owner", "j.journal.appender", "j.journal.slots"):
        (studies / name).unlink(missing_ok=True)
    (studies / "j.journal.owner").symlink_to(precious)  # the pid note
    (studies / "j.journal.appender").symlink_to(outside / "made.txt")  # dangling
    os.mkfifo(studies / "j.journal.slots")  # would hang an open for writing
    r = run_cli(*RUN, "--trials", "2", cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert precious.read_text() == "not the run's to write\n"
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]
    aside = [line for line in r.stderr.splitlines() if "moved aside" in line]
    assert len(aside) == 2, r.stderr  # the link and the FIFO: each said once, in one line
    assert any("a FIFO" in line and "j.journal.slots" in line for line in aside)
    assert any("a symbolic link" in line and "j.journal.appender" in line for line in aside)
    assert not (studies / "j.journal.owner").is_symlink()  # replaced by a pid note of ours
    assert (studies / "j.journal.slots").is_file() and (studies / "j.journal.appender").is_file()
    # A directory where a lock file goes is set aside too, and nothing blocks the next run.
    (studies / "j.journal.slots").unlink()
    (studies / "j.journal.slots").mkdir()
    r = run_cli(*RUN, "--trials", "3", cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "a directory where the study keeps a lock file" in r.stderr
    journal = studies / "j.journal"
    assert sum(t.state in FINISHED for t in load_study(str(journal), "j").trials) == 3


def test_an_immutable_lock_file_is_named_in_one_line(tmp_path: Path) -> None:
    r = run_cli(*RUN, "--trials", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    appender = tmp_path / "studies" / "j.journal.appender"
    made = subprocess.run(["chattr", "+i", str(appender)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"chattr +i is not allowed here: {made.stderr.strip()}")
    try:
        r = run_cli(*RUN, "--trials", "2", cwd=tmp_path)
    finally:
        subprocess.run(["chattr", "-i", str(appender)], check=True)
    assert_one_line_error(r, "cannot open", "j.journal.appender", "chattr -i")
