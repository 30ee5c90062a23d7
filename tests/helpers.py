"""Helpers shared by the test modules: running the real commands, making data, reading studies."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import torch

from data.idx import write_idx

# A few seconds a trial; no race, so a study ends at exactly --trials finished trials.
TINY = ["--epochs", "2", "--train-pairs", "100", "--val-pairs", "50", "--finalists", "0"]


def run_cli(
    module: str, *args: str, cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


# One process, many command lines: each `main(argv)` of the command's module in turn, its exit
# status and its stdout and stderr kept apart (a SystemExit is a command's exit).
MANY = """
import contextlib, io, json, sys
from importlib import import_module
main = import_module(sys.argv[1]).main
out = []
for argv in json.loads(sys.stdin.read()):
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    out.append([code, stdout.getvalue(), stderr.getvalue()])
print(json.dumps(out))
"""


def run_cli_many(
    module: str, argvs: list[list[str]], *, cwd: Path, timeout: float = 300
) -> list[subprocess.CompletedProcess[str]]:
    """The real command's `main` run on each command line in one fresh process, for the
    mistakes a command refuses before it reads or writes anything (its flags, a storage URL):
    a process each would spend its time importing torch. One CompletedProcess per line."""
    r = subprocess.run(
        [sys.executable, "-c", MANY, module], input=json.dumps(argvs), cwd=cwd,
        capture_output=True, text=True, timeout=timeout, check=True,
    )  # fmt: skip
    return [
        subprocess.CompletedProcess([module, *argv], code, out, err)
        for argv, (code, out, err) in zip(argvs, json.loads(r.stdout), strict=True)
    ]


def run_tool(
    name: str, *args: str, cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """A console script installed beside this Python (optuna, optuna-dashboard)."""
    return subprocess.run(
        [str(Path(sys.executable).parent / name), *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def load_study(url: str, name: str) -> optuna.Study:
    """A study by its storage URL or journal file, read with Optuna alone (as a user would)."""
    if url.endswith(".journal"):
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url))
        return optuna.load_study(study_name=name, storage=storage)
    return optuna.load_study(study_name=name, storage=url)


def assert_one_line_error(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def write_mnist(folder: Path, *, gz: bool, n_train: int = 60, n_test: int = 40) -> None:
    """Four small IDX files in MNIST's format and names, with random images."""
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
        labels = torch.arange(n, dtype=torch.uint8) % 10
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels)


def accuracy_line(stdout: str) -> tuple[int, int]:
    """search.predict's "comparison accuracy" line: right answers, pairs."""
    found = re.search(r"comparison accuracy: [\d.]+ % \((\d+) of (\d+)\)", stdout)
    assert found, stdout
    return int(found[1]), int(found[2])
