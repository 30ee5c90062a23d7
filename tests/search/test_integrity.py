"""A study is never lost: torn journals, resumed searches, interrupted trials, passwords."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.execution.trials import retry
from search.stopping import children_start_deaf, held
from search.storage import mask_argv, study_folder
from search.storage.spec import mask_password, parse_storage
from search.study.states import FINISHED
from tests.helpers import TINY, assert_one_line_error, files, load_study, run_cli
from tests.search.workers import start, wait_for

JOURNAL = ["--workers", "1", "--storage", "studies/j.journal", "--study", "j", *TINY]


@pytest.mark.parametrize(
    "tail",
    [b'{"op_code": 5, "worker_id"', b"garbage\n", b"\x00\x00\x00"],
    ids=["torn line", "unreadable line", "zeros"],
)
def test_a_journal_with_a_bad_last_line_is_cut_back_and_goes_on(
    tmp_path: Path, tail: bytes
) -> None:
    r = run_cli("search.run", "--trials", "2", *JOURNAL, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    path = tmp_path / "studies" / "j.journal"
    good = path.read_bytes()
    path.write_bytes(good + tail)  # a crash or a full disk in the middle of a write
    r = run_cli("search.run", "--trials", "4", *JOURNAL, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    said = [line for line in r.stderr.splitlines() if "incomplete line" in line]
    assert len(said) == 1 and f"{len(tail)} bytes" in said[0]
    backups = list((tmp_path / "studies").glob("j.journal.torn-*"))
    assert [b.read_bytes() for b in backups] == [tail]
    assert path.read_bytes().startswith(good)  # nothing before the bad line was touched
    trials = load_study(str(path), "j").get_trials()
    assert sum(t.state in FINISHED for t in trials) == 4  # the 2 before, 2 more, none lost
    r = run_cli("search.final_eval", "--study", "j", "--storage", "studies/j.journal",
                "--rounds", "1", "--no-ablation", "--ensemble", "1", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert len(load_study(str(path), "j").get_trials()) == len(trials)  # still readable


@pytest.mark.parametrize(
    "command",
    [
        ["search.run", "--trials", "3", *JOURNAL],
        ["search.final_eval", "--study", "j", "--storage", "studies/j.journal", "--rounds", "1"],
        ["search.dashboard", "--study", "j", "--port", "1"],
    ],
    ids=["run", "final_eval", "dashboard"],
)
def test_a_journal_damaged_inside_is_refused_in_one_line_and_left_as_it_is(
    tmp_path: Path, command: list[str]
) -> None:
    r = run_cli("search.run", "--trials", "2", *JOURNAL, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    path = tmp_path / "studies" / "j.journal"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[5] = b'{"op_code": 4, "worker_id": "x", "trial_id": 0, "par\n'  # line 6 of N
    damaged = b"".join(lines)
    path.write_bytes(damaged)
    before = files(tmp_path)
    r = run_cli(*command, cwd=tmp_path)
    assert r.returncode == 1, (r.returncode, r.stderr)
    [line] = r.stderr.strip().splitlines()
    assert f"damaged at line 6 of {len(lines)}" in line and "Traceback" not in r.stderr
    assert path.read_bytes() == damaged and files(tmp_path) == before
    # The command it gives keeps a study Optuna reads.
    repair = line.split("before it: ", 1)[1]
    subprocess.run(repair, shell=True, cwd=tmp_path, check=True)
    kept = tmp_path / "studies" / "j-to-line-5.journal"
    assert kept.read_bytes() == b"".join(lines[:5])
    assert load_study(str(kept), "j").study_name == "j"


def test_a_resumed_search_continues_instead_of_replaying(tmp_path: Path) -> None:
    args = ["--workers", "1", "--study", "r", "--no-queued-defaults", *TINY]
    for total in ("2", "4"):
        r = run_cli("search.run", "--trials", total, *args, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    trials = load_study(f"sqlite:///{tmp_path}/studies/r.db", "r").get_trials()
    assert len(trials) == 4
    assert trials[2].params != trials[0].params and trials[3].params != trials[1].params
    # ...while a search from scratch with one worker and one seed is still reproducible.
    r = run_cli("search.run", "--trials", "2", *args[:2], "--study", "again", *args[4:],
                cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    again = load_study(f"sqlite:///{tmp_path}/studies/again.db", "again").get_trials()
    assert [t.params for t in again] == [t.params for t in trials[:2]]


def test_an_interrupted_configuration_is_queued_again_however_often() -> None:
    study = optuna.create_study()
    study.enqueue_trial({"x": 0.5})
    for _ in range(6):  # each time: taken, interrupted (failed), queued again
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        study.tell(trial, state=TrialState.FAIL)
        retry(study, study.trials[-1], max_retry=None)
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 6 + [TrialState.WAITING]
    assert study.trials[-1].params == {"x": 0.5}
    # A run that died (not interrupted) is retried at most 3 times, as before.
    frozen = study.trials[-2]
    retry(study, frozen)
    assert len(study.trials) == 7


def test_passwords_are_masked() -> None:
    url = "postgresql+psycopg://optuna:s3cret@db:5432/optuna"
    assert mask_password(url) == "postgresql+psycopg://optuna:***@db:5432/optuna"
    assert mask_password("studies/x.journal") == "studies/x.journal"
    assert mask_argv(["--storage", url, f"--storage={url}"]) == [
        "--storage",
        mask_password(url),
        f"--storage={mask_password(url)}",
    ]


@pytest.mark.postgres
def test_no_command_prints_or_stores_a_password(pg_url: str, tmp_path: Path) -> None:
    url = pg_url.replace("postgres@", "postgres:s3cret@")  # trust auth takes any password
    args = ["--study", "p", "--storage", url, "--workers", "1", *TINY]
    outputs = []
    for extra in (["--create-only"], []):
        r = run_cli("search.run", "--trials", "2", *args, *extra, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        outputs.append(r.stdout + r.stderr)
    r = run_cli("search.final_eval", "--study", "p", "--storage", url, "--rounds", "1",
                "--no-ablation", "--ensemble", "1", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    outputs.append(r.stdout + r.stderr)
    folder = study_folder("p", parse_storage(url))  # studies/p@postgresql-KEY, no password
    assert "s3cret" not in str(folder)
    stored = (tmp_path / folder / "final_eval.json").read_text()
    assert "***" in "".join(outputs) and "***" in json.loads(stored)["command"]
    assert all("s3cret" not in text for text in [*outputs, stored])


def test_another_programs_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    (tmp_path / "studies").mkdir()
    other = tmp_path / "studies" / "notes.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    text = tmp_path / "studies" / "text.db"
    text.write_text("not a database\n")
    before = {p: p.read_bytes() for p in (other, text)}
    for path, needle in ((other, "another program's SQLite database (tables: notes)"),
                         (text, "is not an SQLite database")):  # fmt: skip
        r = run_cli("search.run", "--storage", f"sqlite:///studies/{path.name}", *TINY,
                    cwd=tmp_path)  # fmt: skip
        assert_one_line_error(r, needle)
    assert {p: p.read_bytes() for p in (other, text)} == before


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda url: optuna.create_study(study_name="s", storage=url,
                                         directions=["maximize", "minimize"]),
         "not a digit-pair study (directions: maximize, minimize)"),
        (lambda url: optuna.create_study(study_name="s", storage=url, direction="minimize"),
         "not a digit-pair study (directions: minimize)"),
        (lambda url: optuna.create_study(study_name="s", storage=url, direction="maximize")
         .optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2),
         "was not made by search.run"),
    ],
    ids=["two objectives", "minimized", "other parameters"],
)  # fmt: skip
def test_a_same_named_study_of_another_shape_is_refused(tmp_path: Path, make, needle) -> None:
    (tmp_path / "studies").mkdir()
    url = f"sqlite:///{tmp_path}/studies/s.db"
    make(url)
    before = len(load_study(url, "s").get_trials())
    r = run_cli("search.run", "--study", "s", "--trials", "2", *TINY, cwd=tmp_path)
    assert_one_line_error(r, needle)
    assert len(load_study(url, "s").get_trials()) == before


@pytest.mark.postgres
def test_two_first_runs_at_once_create_the_study_once(pg_url: str, tmp_path: Path) -> None:
    base = ["--study", "twice", "--storage", pg_url, "--trials", "4", "--workers", "1",
            "--create-only", "--train-pairs", "100", "--val-pairs", "50"]  # fmt: skip
    procs = [start([*base, "--epochs", epochs], tmp_path) for epochs in ("2", "3")]
    results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    ready = [r for r in results if r[2] == 0]
    refused = [r for r in results if r[2] == 2]
    assert len(ready) == 1 and len(refused) == 1, results
    assert "was created with --epochs" in refused[0][1]
    study = load_study(pg_url, "twice")
    assert [t.state for t in study.get_trials()] == [TrialState.WAITING] * 3  # baselines once
    epochs = str(study.user_attrs["epochs"])
    same = [start([*base, "--epochs", epochs], tmp_path) for _ in range(2)]
    assert all(p.wait(timeout=120) == 0 for p in same)
    assert len(load_study(pg_url, "twice").get_trials()) == 3


def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    args = ["--trials", "40", "--workers", "2", "--study", "k", "--epochs", "40",
            "--train-pairs", "300", "--val-pairs", "100", "--finalists", "0"]  # fmt: skip
    parent = start(args, tmp_path)
    url = str(tmp_path / "studies" / "k.journal")

    def training() -> bool:
        trials = load_study(url, "k").get_trials()
        return any(t.state == TrialState.RUNNING and t.intermediate_values for t in trials)

    wait_for(training, timeout=120)
    found = subprocess.run(["pgrep", "-P", str(parent.pid), "-f", "spawn_main"],
                           capture_output=True, text=True, check=False)  # fmt: skip
    workers = found.stdout.split()
    assert len(workers) >= 2
    parent.kill()
    parent.wait()
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), timeout=10)
    running = [t.number for t in load_study(url, "k").get_trials()
               if t.state == TrialState.RUNNING]  # fmt: skip
    assert running  # their trials were left RUNNING, for the next run to take back
    finished = sum(t.state in FINISHED for t in load_study(url, "k").get_trials())
    r = run_cli("search.run", *args[:1], str(finished + 2), *args[2:], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "left RUNNING by an interrupted run" in r.stderr
    trials = load_study(url, "k").get_trials()
    assert sum(t.state in FINISHED for t in trials) == finished + 2
    assert not [t for t in trials if t.state == TrialState.RUNNING]


@pytest.mark.postgres
def test_workers_started_together_on_postgresql_do_not_propose_the_same(
    pg_url: str, tmp_path: Path
) -> None:
    args = ["--study", "two", "--storage", pg_url, "--trials", "6", "--workers", "1",
            "--no-queued-defaults", *TINY]  # fmt: skip
    r = run_cli("search.run", *args, "--create-only", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    procs = [start(args, tmp_path) for _ in range(2)]  # as two compose workers
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    trials = load_study(pg_url, "two").get_trials()
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    params = [json.dumps(t.params, sort_keys=True) for t in trials]
    assert len(set(params)) == len(params)


def ctrl_c_when(
    moment: Callable[[], bool], command: list[str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """The command in its own process group, sent SIGINT as a terminal's Ctrl-C is (to the
    whole group, workers included) as soon as `moment()` holds."""
    proc = subprocess.Popen(
        [sys.executable, "-m", *command], cwd=cwd, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while proc.poll() is None and not moment() and time.monotonic() < deadline:
        time.sleep(0.02)
    ended = proc.poll() is not None
    if not ended:
        os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert not ended, f"{command[0]} ended (status {proc.returncode}) before the moment: {err}"
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def seconds_after_start(delay: float) -> Callable[[], bool]:
    start = time.monotonic()
    return lambda: time.monotonic() - start >= delay


def running_trials(journal: Path, study: str) -> int:
    """Trials of `study` RUNNING in a journal file as another process writes it (Optuna's
    reader skips a torn last line)."""
    if not journal.exists():
        return 0
    try:
        study_now = load_study(str(journal), study)
    except KeyError:
        return 0
    return len(study_now.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


# Every moment of a run: the imports (0.3 s in), the study just created, a trial in training.
@pytest.mark.parametrize("moment", ["starting", "study created", "trial running"])
def test_ctrl_c_at_any_moment_of_a_run_exits_130_and_the_study_resumes(
    moment: str, tmp_path: Path
) -> None:
    run = ["search.run", "--trials", "3", "--workers", "2", "--study", "c", "--epochs", "20",
           "--train-pairs", "100", "--val-pairs", "50", "--finalists", "0"]  # fmt: skip
    journal = tmp_path / "studies" / "c.journal"
    moments = {
        "starting": seconds_after_start(0.3),
        "study created": lambda: journal.exists() and journal.stat().st_size > 0,
        "trial running": lambda: running_trials(journal, "c") > 0,
    }
    r = ctrl_c_when(moments[moment], run, tmp_path)
    assert r.returncode == 130, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    said = [line for line in r.stderr.splitlines() if "interrupted" in line]
    assert len(said) == 1 and "re-run" in said[0], r.stderr  # the command's, not the workers'
    if journal.exists():
        study = load_study(str(journal), "c")
        assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    again = run_cli(*run, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    trials = load_study(str(journal), "c").trials
    assert len([t for t in trials if t.state in FINISHED]) == 3
    assert not [t for t in trials if t.state == TrialState.RUNNING]


@pytest.mark.parametrize("delay", [0.2, 1.5])
def test_ctrl_c_while_final_eval_starts_exits_130_and_writes_nothing(
    delay: float, tmp_path: Path
) -> None:
    r = run_cli("search.run", "--trials", "2", "--workers", "1", "--study", "f", *TINY,
                cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    before = sorted(p.name for p in (tmp_path / "studies").iterdir())
    r = ctrl_c_when(
        seconds_after_start(delay), ["search.final_eval", "--study", "f", "--rounds", "2"], tmp_path
    )
    assert r.returncode == 130, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert sorted(p.name for p in (tmp_path / "studies").iterdir()) == before


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_ends_in_one_line_and_the_study_resumes_once_there_is_room(
    tmp_path: Path,
) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], check=True)
    try:
        run = ["search.run", "--workers", "1", "--storage", str(disk / "s.journal"), "--study",
               "s", *TINY]  # fmt: skip
        r = run_cli(*run, "--trials", "60", cwd=tmp_path)  # ~7 KB a trial: full before 60
        assert r.returncode == 1, r.stderr
        assert "Traceback" not in r.stderr
        errors = [line for line in r.stderr.splitlines() if "error" in line or "failed" in line]
        assert errors == [r.stderr.strip().splitlines()[-1]], errors
        assert errors[0].startswith("search.run: error: the disk is full (No space left")
        study = load_study(str(disk / "s.journal"), "s")  # loads, torn last line and all
        finished = sum(t.state in FINISHED for t in study.trials)
        assert finished >= 3
        subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True)
        again = run_cli(*run, "--trials", str(finished + 2), cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert "incomplete line" in again.stderr or "left RUNNING" in again.stderr
        trials = load_study(str(disk / "s.journal"), "s").trials
        assert sum(t.state in FINISHED for t in trials) == finished + 2
        assert not [t for t in trials if t.state == TrialState.RUNNING]
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_stop_waits_for_a_held_block_whichever_thread_the_signal_reaches() -> None:
    # The kernel hands a process's Ctrl-C to any of its threads (torch starts some); the block
    # that sets up a study must finish all the same, and the stop act after it.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    other = threading.Thread(target=time.sleep, args=(1.0,))
    other.start()
    done = []
    try:
        with pytest.raises(KeyboardInterrupt), held():
            assert other.ident is not None
            signal.pthread_kill(other.ident, signal.SIGINT)
            time.sleep(0.3)  # an unheld stop would raise here, in the main thread
            done.append("the block")
        assert done == ["the block"]
    finally:
        other.join()
        signal.signal(signal.SIGINT, previous)


def test_a_stop_that_reaches_a_child_while_it_starts_arrives_once_it_listens() -> None:
    # A terminal's Ctrl-C reaches a worker however young; sent before its interpreter is up,
    # Python would die with a fatal error and a traceback instead of stopping cleanly.
    child = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *a: (print('stopped'), sys.exit(130)))\n"
        "from search.stopping import let_stops_through\n"
        "let_stops_through()\n"
        "time.sleep(30)\n"
    )
    with children_start_deaf():
        proc = subprocess.Popen(
            [sys.executable, "-c", child], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        proc.send_signal(signal.SIGINT)  # at once: the interpreter is still starting
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out, err) == (130, "stopped\n", "")


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_sqlite_on_a_full_disk_is_one_line_and_leaves_no_file_behind(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=192k", "tmpfs", str(disk)], check=True)
    try:
        run = ["search.run", "--workers", "1", "--storage", f"sqlite:///{disk}/s.db", "--study",
               "s", *TINY]  # fmt: skip
        # Mid-run: the file fills up after some trials; one line, no retries for a minute.
        start = time.monotonic()
        r = run_cli(*run, "--trials", "300", cwd=tmp_path)
        assert r.returncode == 1, r.stderr
        said = [line for line in r.stderr.splitlines() if line.strip() and "%|" not in line]
        assert len(said) == 1 and "the disk is full" in said[0], r.stderr
        assert "retrying" not in r.stderr and time.monotonic() - start < 240
        finished = sum(
            t.state in FINISHED for t in load_study(f"sqlite:///{disk}/s.db", "s").trials
        )
        assert finished >= 3
        # At creation: a new file on the full disk is not left behind half made.
        r = run_cli(*run, "--study", "t", "--storage", f"sqlite:///{disk}/t.db", "--trials", "1",
                    cwd=tmp_path)  # fmt: skip
        assert r.returncode == 1, r.stderr
        assert r.stderr.strip().startswith("search.run: error:") and "disk is full" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not (disk / "t.db").exists()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_torn_journal_on_a_full_disk_is_a_fault_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    made = run_cli("search.run", "--trials", "1", "--workers", "1", "--storage", "s.journal",
                   "--study", "s", *TINY, cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    torn = (tmp_path / "s.journal").read_bytes() + b'{"op_code": 5, "worker_id": "ab'
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], check=True)
    try:
        (disk / "s.journal").write_bytes(torn)
        with open(disk / "filler", "wb", buffering=0) as f, contextlib.suppress(OSError):
            while True:  # every block taken
                f.write(b"\0" * 4096)
                f.flush()
        before = sorted(p.name for p in disk.iterdir())
        r = run_cli("search.run", "--trials", "2", "--workers", "1", "--storage",
                    str(disk / "s.journal"), "--study", "s", cwd=tmp_path)  # fmt: skip
        assert r.returncode == 1, r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "the disk is full" in r.stderr
        assert (disk / "s.journal").read_bytes() == torn
        ours = ("s.journal.owner", "s.journal.appender")  # the run's pid note and lock file
        assert sorted(p.name for p in disk.iterdir() if p.name not in ours) == before
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
