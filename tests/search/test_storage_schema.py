"""Processes that open a new storage at the same moment (workers starting together, or the
dashboard opened as a run starts) all get it: none dies on the schema the other is creating."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import optuna
import pytest

from tests.search.postgres import fresh_databases
from tests.search.workers import open_in_rounds

PROCESSES = 3


def open_together(urls: list[str]) -> list[str]:
    """Each process opens every URL, all processes in step; the failures, if any."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [ctx.Process(target=open_in_rounds, args=(urls, barrier, results))
             for _ in range(PROCESSES)]  # fmt: skip
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in range(PROCESSES * len(urls))]
    for p in procs:
        p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    return [f"{url}: {outcome}" for url, outcome in outcomes if outcome != "ok"]


def check_usable(url: str) -> None:
    study = optuna.create_study(study_name="s", storage=url)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 2


def test_new_sqlite_files_opened_at_once(tmp_path: Path) -> None:
    urls = [f"sqlite:///{tmp_path}/s{i}.db" for i in range(12)]
    assert open_together(urls) == []
    check_usable(urls[0])


@pytest.mark.postgres
def test_new_postgresql_databases_opened_at_once() -> None:
    with fresh_databases(4) as urls:
        assert open_together(urls) == []
        check_usable(urls[0])
