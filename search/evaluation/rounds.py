"""The rounds of a final evaluation: each a fresh data draw and initialization, trained and
tested, run in a pool of processes, or in this one where the jobs need one process.

Each pool process loads the source once (initializer) and is single-threaded unless told
otherwise.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from data import Source, load_source, make_splits
from models import Config, Run, TrainResult, pack_size, resolve_device, train_runs
from search.machine import CORES
from search.stopping import children_start_deaf, leave_stops_to_parent, quiet_spawned_processes

TEST_PAIRS = 1000

_source: Source | None = None
_threads: int = 1


def round_seed(seed: int, round_index: int) -> int:
    """A seed for round r of an evaluation with `seed`: independent streams per (seed, r)."""
    return int(np.random.SeedSequence([seed, round_index]).generate_state(1)[0])


@dataclass(frozen=True)
class Job:
    """One variant trained on one or more rounds (round index, round seed), the rounds' nets
    packed into one network where `pack` is on."""

    variant: str
    config: Config
    rounds: tuple[tuple[int, int], ...]
    train_pairs: int
    device: str
    # The variant that is this job's ensemble's first net scored alone, if any (one net of the
    # same configuration on the same round, read off the ensemble rather than trained again).
    first_net: str | None = None
    keep: int | None = None  # the round whose trained nets are handed back (the model file)
    pack: bool = True
    precision: str = "fp32"  # models.precision, resolved


def jobs_for(
    variant: str,
    config: Config,
    seeds: Sequence[int],
    *,
    train_pairs: int,
    device: str,
    first_net: str | None,
    keep: int | None,
    pack: bool,
    precision: str,
) -> list[Job]:
    """A variant's rounds as jobs: as many rounds to a job as a pack of its nets holds on the
    device (models.pack_size), one round to a job with packing off."""
    per_job = max(1, pack_size(config, resolve_device(device)) // config.ensemble) if pack else 1
    rounds = list(enumerate(seeds))
    return [
        Job(variant, config, tuple(rounds[i : i + per_job]), train_pairs, device,
            first_net=first_net, keep=keep, pack=pack, precision=precision)
        for i in range(0, len(rounds), per_job)
    ]  # fmt: skip


@dataclass(frozen=True)
class RoundResult:
    variant: str
    round: int
    seed: int
    train_accuracy: float  # on the round's training pairs, un-augmented
    test_accuracy: float
    seconds: float
    epochs: list[dict[str, Any]]  # epoch, train_loss, test_accuracy
    torch_threads: int


@dataclass(frozen=True)
class KeptModel:
    """A job's trained nets as CPU state dicts, with what a model file needs beside them."""

    round: int
    seed: int
    test_accuracy: float
    states: list[dict[str, torch.Tensor]]
    mean: float  # the normalization the nets were trained with
    std: float


@dataclass(frozen=True)
class Rounds:
    """Rows of trained rounds (one job's, or every job's), and the nets of the one job that
    asked to keep them."""

    rows: list[RoundResult]
    kept: KeptModel | None


def init_pool(dataset: str, data_dir: str | None, threads: int) -> None:
    leave_stops_to_parent()
    prepare(dataset, data_dir, threads)


def prepare(dataset: str, data_dir: str | None, threads: int) -> None:
    """The process's source, loaded once, and the threads each job trains with."""
    global _source, _threads
    _source = load_source(dataset, Path(data_dir) if data_dir else None)
    _threads = threads


def run_job(job: Job) -> Rounds:
    """The job's rounds: its variant's row for each, its first net's where the job names one,
    and the kept round's nets where it asks to keep them."""
    assert _source is not None, "init_pool was not called"
    splits = [
        make_splits(_source, seed=seed, n_train=job.train_pairs, n_val=0, n_test=TEST_PAIRS)
        for _, seed in job.rounds
    ]
    # the final evaluation is the only reader of the test pairs
    runs = [Run(s.train, {"test": s.test}, s.mean, s.std, seed)  # type: ignore[dict-item]
            for s, (_, seed) in zip(splits, job.rounds, strict=True)]  # fmt: skip
    start = time.perf_counter()
    results = train_runs(
        job.config,
        runs,
        device=resolve_device(job.device),
        pack=job.pack,
        threads=_threads,
        first_net=job.first_net is not None,
        precision=job.precision,
    )
    seconds = (time.perf_counter() - start) / len(runs)  # a round's share of the job
    rows, kept = [], None
    for (index, seed), s, result in zip(job.rounds, splits, results, strict=True):
        own = row(job.variant, index, seed, result, seconds)
        rows.append(own)
        if job.first_net is not None and result.first_net is not None:
            first = result.first_net
            rows.append(
                row(job.first_net, index, seed, first, sum(h.seconds for h in first.history))
            )
        if job.keep == index:
            states = [{k: t.cpu() for k, t in net.state_dict().items()} for net in result.nets]
            kept = KeptModel(index, seed, own.test_accuracy, states, s.mean, s.std)
    return Rounds(rows, kept)


def row(variant: str, index: int, seed: int, result: TrainResult, seconds: float) -> RoundResult:
    return RoundResult(
        variant=variant,
        round=index,
        seed=seed,
        train_accuracy=result.train_accuracy,
        test_accuracy=result.history[-1].accuracy["test"],
        seconds=seconds,
        epochs=[
            {"epoch": h.epoch, "train_loss": h.train_loss, "test_accuracy": h.accuracy["test"]}
            for h in result.history
        ],
        torch_threads=torch.get_num_threads(),
    )


def evaluate_rounds(
    jobs: Sequence[Job], *, dataset: str, data_dir: str | None, workers: int
) -> Rounds:
    """Run every job in `workers` processes of cores / workers threads each; where one process
    would do, in this one, with the threads that process would have (the same nets, without a
    process that imports torch again)."""
    threads = max(1, CORES // workers)
    total = sum(len(j.rounds) for j in jobs)
    processes = min(workers, len(jobs))
    if processes == 1:
        prepare(dataset, data_dir, threads)
        before = torch.get_num_threads()
        try:
            return gather(map(run_job, jobs), total)
        finally:
            torch.set_num_threads(before)
    ctx = multiprocessing.get_context("spawn")
    quiet_spawned_processes()
    with children_start_deaf():
        pool = ctx.Pool(processes, initializer=init_pool, initargs=(dataset, data_dir, threads))
    try:
        rounds = gather(pool.imap_unordered(run_job, jobs), total)
        pool.close()
        pool.join()  # the processes end on their own; terminate() below only after an error
        return rounds
    finally:
        pool.terminate()
        pool.join()


def gather(outs: Iterable[Rounds], total: int) -> Rounds:
    """Every job's rows as its rounds finish, with a progress bar over the rounds."""
    rows, kept = [], None
    with tqdm(total=total, unit="run", desc="rounds") as bar:
        for out in outs:
            rows.extend(out.rows)
            kept = out.kept or kept
            bar.update(len({r.round for r in out.rows}))
    return Rounds(rows, kept)
