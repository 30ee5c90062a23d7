"""Every user mistake: one clear line on stderr, a non-zero exit, nothing created or changed."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from harness.ports import free_port
from search.execution.handle import StudyHandle
from search.execution.trials import fail_and_retry
from tests.helpers import (
    TINY,
    assert_one_line_error,
    files,
    run_cli,
    run_cli_many,
    write_idx,
    write_mnist,
)

CLOSED = "postgresql+psycopg://postgres@127.0.0.1:1/test"
RUN_CASES = {
    "trials zero": (["--trials", "0"], "--trials"),
    "trials negative": (["--trials", "-3"], "expected 1 to 100,000, got -3"),
    "trials not a number": (["--trials", "many"], "'many'"),
    "epochs zero": (["--epochs", "0"], "--epochs"),
    "workers zero": (["--workers", "0"], "--workers"),
    "workers too many": (["--workers", "1000"], "ask fewer"),
    "unknown sampler": (["--sampler", "grid"], "--sampler"),
    "unknown pruner": (["--pruner", "asha"], "--pruner"),
    "sparing draws with hyperband": (
        ["--spare-random-draws", "--pruner", "hyperband"],
        "--spare-random-draws needs --pruner percentile or median, not hyperband",
    ),
    "a share drawn at random without a model": (
        ["--sampler", "qmc", "--random-share", "0.3"],
        "--random-share needs --sampler tpe or gp: qmc draws every trial without a model",
    ),
    "unknown dataset": (["--dataset", "cifar"], "--dataset"),
    "unknown device": (["--device", "tpu"], "--device"),
    "malformed url": (["--storage", "postgresql://"], "name the database"),
    "unknown scheme": (["--storage", "mysql://root@localhost/x"], "unknown scheme"),
    "not a storage": (["--storage", "results.txt"], "not a storage"),
    "postgres closed port": (["--storage", CLOSED], "Connection refused"),
    "postgres wrong database": (
        ["--storage", "postgresql+psycopg://postgres@127.0.0.1:5432/no_such_db"],
        'database "no_such_db" does not exist',
    ),
    "postgres wrong user": (
        ["--storage", "postgresql+psycopg://nobody@127.0.0.1:5432/test"],
        'role "nobody" does not exist',
    ),
    "sqlite dir cannot be created": (["--storage", "sqlite:////proc/none/x.db"], "cannot create"),
    "sqlite on several processes": (
        ["--workers", "2", "--storage", "sqlite:///studies/x.db"],
        "one process only",
    ),
    "mnist offline": (["--dataset", "mnist"], "cannot fetch train-images-idx3-ubyte.gz"),
    "mnist offline into a new dir": (
        ["--dataset", "mnist", "--data-dir", "new/mnist"],
        "offline, put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, ",
    ),
    "too many pairs": (["--train-pairs", "1500"], "ask for fewer"),
    "one training pair": (["--train-pairs", "1"], "expected 2 to 30,000 pairs, got 1"),
    "seed too large": (["--seed", str(2**32)], "from 0 to 4294967295"),
    "heartbeat too long": (["--heartbeat", "100000"], "--heartbeat"),
    "threads too many": (["--threads", "1000"], "--threads 1000 is more than 4 per core"),
    "study in a folder": (["--study", "../x"], "not a study name"),
    "study name too long": (["--study", "x" * 300], "not a study name"),
    "sqlite in memory": (["--storage", "sqlite:///:memory:"], "in-memory"),
    "sqlite shared memory": (["--storage", "sqlite:///:memory:?cache=shared"], "in-memory"),
    "sqlite memory mode": (["--storage", "sqlite:///x.db?mode=memory&cache=shared"], "in-memory"),
    "sqlite memory uri": (
        ["--storage", "sqlite:///file::memory:?cache=shared&uri=true"],
        "in-memory",
    ),
    "sqlite uri": (["--storage", "sqlite:///file:x.db?uri=true"], "URI filenames"),
    "raw @ in a password": (["--storage", "postgresql://u:p@ss@127.0.0.1/x"], "percent-encode"),
    "port not a number": (["--storage", "postgresql://u:pw@127.0.0.1:54x2/x"], "port as a number"),
    "data dir is a file": (["--dataset", "mnist", "--data-dir", "/etc/hostname"], "is a file"),
    # Every count has an upper bound, said in --help: none queues or allocates without end.
    "trials without bound": (["--trials", "1000000000"], "expected 1 to 100,000"),
    "finalists without bound": (["--finalists", "1000000000"], "expected 0 to 50"),
    "race seeds without bound": (["--race-seeds", "1000000000"], "expected 1 to 100"),
    "epochs without bound": (["--epochs", "1000000"], "expected 1 to 1,000"),
    "pairs without bound": (["--val-pairs", "1000000"], "expected 1 to 30,000 pairs"),
}


# Refused from the command line alone, before anything is read or written: checked in one
# process (run_cli_many); the others each in a process of their own.
BEFORE_ANY_IO = [
    c for c in RUN_CASES
    if not c.startswith(("postgres", "mnist", "data dir", "sqlite dir"))
]  # fmt: skip


def check_refused(r: subprocess.CompletedProcess[str], needle: str, cwd: Path) -> None:
    assert_one_line_error(r, needle)
    assert "ss@" not in r.stderr and ":pw@" not in r.stderr  # no part of a password
    assert files(cwd) == []


def test_search_run_bad_flags(tmp_path: Path) -> None:
    argvs = [["--trials", "2", *RUN_CASES[c][0]] for c in BEFORE_ANY_IO]
    for case, r in zip(BEFORE_ANY_IO, run_cli_many("search.run", argvs, cwd=tmp_path),
                       strict=True):  # fmt: skip
        try:
            check_refused(r, RUN_CASES[case][1], tmp_path)
        except AssertionError as e:
            raise AssertionError(f"case {case!r}: {e}") from None


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, marks=pytest.mark.postgres) if c.startswith("postgres wrong") else c
        for c in RUN_CASES
        if c not in BEFORE_ANY_IO
    ],
)
def test_search_run_bad_input(case: str, tmp_path: Path) -> None:
    args, needle = RUN_CASES[case]
    check_refused(run_cli("search.run", "--trials", "2", *args, cwd=tmp_path), needle, tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu(tmp_path: Path) -> None:
    r = run_cli("search.run", "--device", "cuda", cwd=tmp_path)
    assert_one_line_error(r, "no CUDA device")
    assert files(tmp_path) == []


def corrupt_wrong_magic(d: Path) -> None:
    p = d / "train-images-idx3-ubyte"
    p.write_bytes(b"\x00\x00\x08\x02" + p.read_bytes()[4:])


def corrupt_truncate(d: Path) -> None:
    p = d / "t10k-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-7])


def corrupt_counts(d: Path) -> None:
    write_idx(d / "t10k-labels-idx1-ubyte", torch.zeros(3, dtype=torch.uint8))


def corrupt_missing(d: Path) -> None:
    (d / "train-labels-idx1-ubyte").unlink()


def corrupt_empty(d: Path) -> None:
    write_idx(d / "train-images-idx3-ubyte", torch.zeros(0, 28, 28, dtype=torch.uint8))
    write_idx(d / "train-labels-idx1-ubyte", torch.zeros(0, dtype=torch.uint8))


def corrupt_gzip(d: Path) -> None:
    plain = d / "train-images-idx3-ubyte"
    packed = gzip.compress(plain.read_bytes())
    middle = len(packed) // 2
    broken = packed[:middle] + bytes(b ^ 0xFF for b in packed[middle : middle + 64])
    (d / "train-images-idx3-ubyte.gz").write_bytes(broken + packed[middle + 64 :])
    plain.unlink()


DATA_CASES = {
    "wrong magic": (corrupt_wrong_magic, "wrong magic"),
    "truncated": (corrupt_truncate, "truncated"),
    "count mismatch": (corrupt_counts, "40 images but 3 labels"),
    "missing file, offline": (corrupt_missing, "cannot fetch train-labels-idx1-ubyte.gz"),
    "no images": (corrupt_empty, "has 0 images, too few"),
    "corrupt gzip": (corrupt_gzip, "cannot be read"),
}


def corrupt_overflow(d: Path) -> None:
    # An images header whose sizes multiply past 2**64: the expected size is said exactly.
    header = (0x803).to_bytes(4, "big") + b"\xff\xff\xff\xff" * 3
    (d / "train-images-idx3-ubyte").write_bytes(header + bytes(100))


def corrupt_inflating(d: Path) -> None:
    # A small gzip file whose data inflates far past the size its header claims (a zip bomb):
    # refused having read one byte past the claim, whatever it would inflate to.
    plain = d / "train-images-idx3-ubyte"
    header = plain.read_bytes()[:16]
    with gzip.open(d / "train-images-idx3-ubyte.gz", "wb", compresslevel=1) as f:
        f.write(header)
        for _ in range(64):
            f.write(bytes(1 << 20))
    plain.unlink()


DATA_CASES["sizes that overflow"] = (corrupt_overflow, "larger than any MNIST file")
DATA_CASES["a gzip inflating past its header"] = (corrupt_inflating, "padded (more than")


@pytest.mark.parametrize("case", DATA_CASES, ids=list(DATA_CASES))
def test_bad_mnist_files(case: str, tmp_path: Path) -> None:
    data = tmp_path / "mnist"
    write_mnist(data, gz=False)
    corrupt, needle = DATA_CASES[case]
    corrupt(data)
    before = files(tmp_path)
    r = run_cli("search.run", "--dataset", "mnist", "--data-dir", str(data), cwd=tmp_path)
    assert_one_line_error(r, needle)
    assert files(tmp_path) == before


FINAL_EVAL_FLAGS = [
    (["--rounds", "0"], "--rounds"), (["--workers", "0"], "--workers"),
    (["--trial", "x"], "--trial"), (["--seed", str(2**32)], "--seed"),
    (["--study", "a/b"], "not a study name"), (["--ensemble", "0"], "--ensemble"),
    (["--ensemble", "11"], "at most 10 nets"),
    (["--rounds", "1000000000"], "expected 1 to 1,000"),
]  # fmt: skip


def test_final_eval_bad_flags(tmp_path: Path) -> None:
    argvs = [args for args, _ in FINAL_EVAL_FLAGS]
    for (args, needle), r in zip(FINAL_EVAL_FLAGS,
                                 run_cli_many("search.final_eval", argvs, cwd=tmp_path),
                                 strict=True):  # fmt: skip
        try:
            check_refused(r, needle, tmp_path)
        except AssertionError as e:
            raise AssertionError(f"{args}: {e}") from None


def test_the_cache_variable_is_named_when_it_points_at_a_file(tmp_path: Path) -> None:
    env = {**os.environ, "DIGIT_PAIRS_DATA": "/dev/null"}
    r = subprocess.run([sys.executable, "-m", "search.run", "--dataset", "mnist"], cwd=tmp_path,
                       capture_output=True, text=True, env=env, check=False)  # fmt: skip
    assert_one_line_error(r, "DIGIT_PAIRS_DATA=/dev/null is a file")
    assert "--data-dir" not in r.stderr


def dashboard_with_study(tmp_path: Path) -> None:
    r = run_cli("search.run", "--trials", "1", "--workers", "1", "--study", "d", *TINY,
                cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr


def test_dashboard_on_a_foreign_address_or_a_busy_port(tmp_path: Path) -> None:
    dashboard_with_study(tmp_path)
    r = run_cli("search.dashboard", "--study", "d", "--host", "192.0.2.1", cwd=tmp_path)
    assert_one_line_error(r, "--host 192.0.2.1 is not an address of this machine")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run_cli("search.dashboard", "--study", "d", "--port", str(port), cwd=tmp_path)
    assert_one_line_error(r, f"port {port} is in use on 127.0.0.1; try another --port")
    assert "Listening on" not in r.stdout + r.stderr


def test_a_healthy_journal_on_a_read_only_mount_is_read(tmp_path: Path) -> None:
    r = run_cli("search.run", "--trials", "1", "--workers", "1", "--study", "j", *TINY,
                "--storage", "studies/j.journal", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    journal = (tmp_path / "studies/j.journal").read_bytes()
    shelf = tmp_path / "shelf"
    with read_only_mount(shelf):
        subprocess.run(["mount", "-o", "remount,rw", str(shelf)], check=True)
        (shelf / "j.journal").write_bytes(journal)
        subprocess.run(["mount", "-o", "remount,ro", str(shelf)], check=True)
        port = free_port()
        p = subprocess.Popen([sys.executable, "-m", "search.dashboard", "--study", "j",
                              "--storage", str(shelf / "j.journal"), "--port", str(port)],
                             cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)  # fmt: skip
        try:
            body = wait_for_json(f"http://127.0.0.1:{port}/api/studies", p)
        finally:
            p.terminate()
            p.communicate(timeout=30)
        assert [s["study_name"] for s in body["study_summaries"]] == ["j"]
        r = run_cli("search.final_eval", "--study", "j", "--storage", str(shelf / "j.journal"),
                    cwd=tmp_path)  # fmt: skip
        assert_one_line_error(r, "cannot write to", "Read-only file system", "records the study")
        assert "variant(s)" not in r.stdout


def wait_for_json(url: str, p: subprocess.Popen[str]) -> dict:
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return json.loads(answer.read())
        except OSError:
            assert p.poll() is None, p.communicate()[1]
            time.sleep(0.3)
    raise AssertionError(f"{url} never answered")


def test_an_immutable_journal_is_refused_in_one_line(tmp_path: Path) -> None:
    r = run_cli("search.run", "--trials", "1", "--workers", "1", "--study", "j", *TINY,
                "--storage", "studies/j.journal", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    journal = tmp_path / "studies/j.journal"
    before = journal.read_bytes()
    made = subprocess.run(["chattr", "+i", str(journal)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"chattr +i is not allowed here: {made.stderr.strip()}")
    try:
        r = run_cli("search.run", "--trials", "2", "--workers", "1", "--study", "j",
                    "--storage", "studies/j.journal", cwd=tmp_path)  # fmt: skip
        assert_one_line_error(r, "cannot write to", "Operation not permitted", "chattr -i")
    finally:
        subprocess.run(["chattr", "-i", str(journal)], check=True)
    assert journal.read_bytes() == before


def test_a_retry_does_not_inherit_the_failed_attempts_reason(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/r.db"
    study = optuna.create_study(study_name="r", storage=url, direction="maximize")
    trial = study.ask()
    trial.suggest_float("lr", 1e-4, 1e-2)
    trial.set_user_attr("seed", 7)
    storage = optuna.storages.RDBStorage(url)
    handle = StudyHandle.of(study, storage)
    assert fail_and_retry(handle, trial.number, "lost its database mid-trial") is not None
    failed, waiting = optuna.load_study(study_name="r", storage=url).trials
    assert failed.user_attrs["fail_reason"] == "lost its database mid-trial"
    assert "fail_reason" not in waiting.user_attrs and waiting.user_attrs["seed"] == 7
    assert waiting.user_attrs["retry_of_reason"] == "lost its database mid-trial"
    assert waiting.system_attrs["failed_trial"] == failed.number


def test_dashboard_port_out_of_range(tmp_path: Path) -> None:
    r = run_cli("search.dashboard", "--port", "70000", cwd=tmp_path)
    assert_one_line_error(r, "a port from 1 to 65535")
    assert files(tmp_path) == []


def test_a_nan_trial_is_pruned_with_its_reason_and_the_search_goes_on(tmp_path: Path) -> None:
    r = run_cli("search.run", "--trials", "1", "--workers", "1", "--study", "nan",
                "--no-queued-defaults", *TINY, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    url = f"sqlite:///{tmp_path}/studies/nan.db"
    study = optuna.load_study(study_name="nan", storage=url)
    params = dict(study.trials[0].params, lr=1e12, batch_norm=False, head="learned")
    study.enqueue_trial(params)
    r = run_cli("search.run", "--trials", "3", "--workers", "1", "--study", "nan", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    trials = optuna.load_study(study_name="nan", storage=url).trials
    bad = trials[1]
    assert bad.params["lr"] == 1e12
    assert bad.state == TrialState.PRUNED and "loss became" in bad.user_attrs["diverged"]
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 3


def interrupt(args: list[str], cwd: Path, ready: str) -> subprocess.CompletedProcess[str]:
    """Start a command, wait until its output says `ready`, then press Ctrl-C (SIGINT)."""
    # As in a terminal: SIGINT at its default even where this run inherited it ignored (a job
    # started in the background by a non-interactive shell), so Python raises KeyboardInterrupt.
    default_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    p = subprocess.Popen([sys.executable, "-m", *args], cwd=cwd, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)  # fmt: skip
    assert p.stdout is not None
    seen = ""
    while ready not in seen:
        line = p.stdout.readline()
        assert line, f"ended before {ready!r}: {p.stderr.read() if p.stderr else ''}"
        seen += line
    time.sleep(2.0)  # into the first trial or round
    start = time.time()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert time.time() - start < 30, "did not stop promptly"
    return subprocess.CompletedProcess(p.args, p.returncode, seen + out, err)


def test_ctrl_c_during_search_leaves_no_trial_running(tmp_path: Path) -> None:
    r = interrupt(["search.run", "--trials", "50", "--workers", "1", "--study", "c",
                   "--epochs", "50"], tmp_path, "trials finished")  # fmt: skip
    assert r.returncode == 130, r.stderr
    assert "re-run the same command to resume" in r.stderr and "Traceback" not in r.stderr
    study = optuna.load_study(study_name="c", storage=f"sqlite:///{tmp_path}/studies/c.db")
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]


def test_a_signal_to_the_parent_alone_stops_its_workers(tmp_path: Path) -> None:
    # As `kill -INT PID` or a supervisor does: only the parent gets the signal.
    r = interrupt(["search.run", "--trials", "50", "--workers", "2", "--study", "w",
                   "--epochs", "50"], tmp_path, "trials finished")  # fmt: skip
    assert r.returncode == 130, r.stderr
    assert "re-run the same command to resume" in r.stderr and "Traceback" not in r.stderr
    journal = optuna.storages.journal.JournalFileBackend(str(tmp_path / "studies/w.journal"))
    study = optuna.load_study(study_name="w", storage=optuna.storages.JournalStorage(journal))
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]


def test_ctrl_c_during_final_eval_writes_nothing(tmp_path: Path) -> None:
    r = run_cli("search.run", "--trials", "1", "--workers", "1", "--study", "f", *TINY,
                cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    before = files(tmp_path)
    r = interrupt(["search.final_eval", "--study", "f", "--rounds", "50"], tmp_path, "variant(s)")
    assert r.returncode == 130, r.stderr
    assert "nothing was written" in r.stderr and "Traceback" not in r.stderr
    assert files(tmp_path) == before


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *descendants(int(child))]
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_sigterm_during_final_eval_ends_its_pool_and_writes_nothing(tmp_path: Path) -> None:
    r = run_cli("search.run", "--trials", "1", "--workers", "1", "--study", "t", *TINY,
                cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    before = files(tmp_path)
    p = subprocess.Popen([sys.executable, "-m", "search.final_eval", "--study", "t", "--rounds",
                          "50", "--workers", "2"], cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert p.stdout is not None
    while "variant(s)" not in (line := p.stdout.readline()):
        assert line, p.stderr.read() if p.stderr else ""
    time.sleep(2.0)  # the pool is training
    children = descendants(p.pid)
    assert len(children) >= 2, children  # the pool's processes (and the resource tracker)
    p.send_signal(signal.SIGTERM)  # as `kill PID` or a supervisor sends it: the parent alone
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert err.splitlines()[-1] == "search.final_eval: interrupted; nothing was written"
    assert "Traceback" not in err
    deadline = time.time() + 10
    while any(alive(c) for c in children) and time.time() < deadline:
        time.sleep(0.2)
    assert not [c for c in children if alive(c)]
    assert files(tmp_path) == before


@contextmanager
def read_only_mount(folder: Path) -> Iterator[None]:
    """A read-only tmpfs over `folder` (root only: root writes through file modes)."""
    folder.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                       capture_output=True, text=True, check=False)  # fmt: skip
    if r.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {r.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("where", ["studies/t", "studies/artifacts"])
def test_final_eval_that_could_not_publish_refuses_before_training(
    where: str, tmp_path: Path
) -> None:
    r = run_cli("search.run", "--trials", "1", "--workers", "1", "--study", "t", *TINY,
                cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    with read_only_mount(tmp_path / where):
        r = run_cli("search.final_eval", "--study", "t", "--rounds", "1", cwd=tmp_path)
        assert_one_line_error(r, f"cannot write the results to {where}", "Read-only file system")
        assert "variant(s)" not in r.stdout  # nothing was trained
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path}/studies/t.db")
    assert "final_eval" not in study.user_attrs
    assert not optuna.artifacts.get_all_artifact_meta(study)


def test_a_timeout_before_any_trial_says_so(tmp_path: Path) -> None:
    r = run_cli("search.run", "--trials", "2", "--workers", "1", "--timeout", "1e-9", *TINY,
                cwd=tmp_path)  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "none was started before --timeout" in r.stderr
    assert "pruned or failed" not in r.stderr
