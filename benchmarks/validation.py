"""Benchmark: how many validation pairs a trial should score, and what the full protocol costs.

1. Noise, on real digits (the embedded images, `mnist5k`: 1000 training pairs, 500 validation
   pairs, split and seed changing, default Config, 20 epochs). Each run's value (all ordered
   pairs of the validation images) and, from the same net, the difference between the values
   of the two halves of its validation pairs, over several random halvings: with the net held
   fixed, that difference measures what scoring on few images adds. The std a trial's value
   would have with n validation pairs follows as sqrt(var_net + var_250 * 250 / n) (the
   validation part of the variance shrinks as 1 / n, the net's part stays), with 95% bootstrap
   intervals over the runs. The train pool of `mnist5k` has only 500 validation pairs left;
   larger sets are predicted from these measured parts, not drawn.
2. Cost, on files of MNIST's sizes (benchmarks/mnist_sized.py): seconds of one training epoch
   (1000 pairs) and of one scoring of n validation pairs (forward passes and all ordered pairs),
   1 thread as a worker runs, sizes alternated within each repetition, medians; a 20-epoch
   trial's cost scored every epoch or only from the pruner's warm-up on, against `mnist5k`'s
   trial; each process's peak memory with the data loaded.
3. With `--replay FOLDER`: the search trials of a finished `mnist5k` study (the folder its
   main job ran in) trained again as they ran, each configuration for the epochs it got before the
   pruner stopped it, on both datasets alternately, 1 thread: the protocol's cost on the same
   trials, apart from where a search on other data goes.
4. With `--main-job`: the README's main job (`search.run --trials 200`, then
   `search.final_eval`), every option at its default, on `mnist5k` and on `--dataset mnist`
   (the MNIST-sized files), one after the other in fresh folders, on each of `--seeds`
   (every seed's searches first, then its final evaluations): wall times and ratios.

    python benchmarks/validation.py [--runs 16] [--reps 5] [--replay FOLDER [--trials 40]]
        [--main-job [--seeds 0 1 2]] [--only: parts 3 and 4 alone]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import optuna
import torch

from data import Source, load_source, make_splits
from data.pairs import PairSet
from models import Config, EpochStats, train
from models.scoring import Tensors, evaluate, uses_channels_last
from models.training import new_member, train_epoch
from search.study import is_race
from search.study.objective import trial_seed
from search.study.space import suggest_config
from search.study.strategies import warmup_epochs

sys.path.insert(0, str(Path(__file__).parent))
from main_job import minutes, run
from mnist_sized import write_mnist_sized

SIZES = (250, 500, 1000, 2500, 5000)  # validation pairs
COST_SIZES = (500, 1000, 2500, 5000)
HALVINGS = 8
CPU = torch.device("cpu")


def subset(pairs: PairSet, rows: torch.Tensor) -> PairSet:
    return PairSet(
        pairs.input[rows], pairs.target[rows], pairs.classes[rows], pairs.image_ids[rows]
    )


def noise_run(split_seed: int) -> tuple[float, float]:
    """One run's value over its 500 validation pairs and its mean squared half-difference."""
    torch.set_num_threads(1)
    splits = make_splits(load_source("mnist5k"), seed=split_seed)
    config = Config()
    result = train(
        config, splits.train, {"val": splits.val}, mean=splits.mean, std=splits.std,
        seed=trial_seed(split_seed, 0), device=CPU, threads=1, all_pairs=True,
    )  # fmt: skip
    net, n = result.nets[0], len(splits.val)
    g = torch.Generator().manual_seed(split_seed)
    squares = []
    for _ in range(HALVINGS):
        order = torch.randperm(n, generator=g)
        halves = [subset(splits.val, rows) for rows in (order[: n // 2], order[n // 2 :])]
        a, b = (
            evaluate(net, Tensors.of(h, splits.mean, splits.std, CPU), True, all_pairs=True)
            for h in halves
        )
        assert a.all_pairs is not None and b.all_pairs is not None
        squares.append((a.all_pairs - b.all_pairs) ** 2)
    return result.history[-1].all_pairs["val"], statistics.mean(squares)


def predicted(runs: list[tuple[float, float]], n: int) -> float:
    """Std in points of a trial's value with n validation pairs, from the runs' parts."""
    var_half = statistics.mean(sq for _, sq in runs) / 2  # scoring's variance at 250 pairs
    var_net = statistics.variance(v for v, _ in runs) - var_half * 250 / 500
    return 100 * max(0.0, var_net + var_half * 250 / n) ** 0.5


def interval(runs: list[tuple[float, float]], n: int, draws: int = 2000) -> tuple[float, float]:
    rng = random.Random(0)
    values = sorted(
        predicted([runs[rng.randrange(len(runs))] for _ in runs], n) for _ in range(draws)
    )
    return values[int(0.025 * draws)], values[int(0.975 * draws) - 1]


def peak_memory(job: tuple[str, str | None]) -> float:
    """MiB of peak resident memory of a fresh process after loading a dataset and drawing a
    study's splits, as a worker does once."""
    dataset, data_dir = job
    source = load_source(dataset, Path(data_dir) if data_dir else None)
    make_splits(source, seed=0, n_train=1000, n_val=None)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def costs(sources: dict[str, Source], reps: int) -> dict[str, tuple[float, float]]:
    """Median seconds of a training epoch and of a scoring, for each named validation set."""
    torch.set_num_threads(1)
    config = Config()
    cl = uses_channels_last(config)
    sets = {"mnist5k, 500": (sources["mnist5k"], None)}
    sets |= {f"mnist, {n}": (sources["mnist"], n) for n in COST_SIZES}
    data = {}
    for name, (source, n) in sets.items():
        s = make_splits(source, seed=0, n_train=1000, n_val=n)
        data[name] = (
            Tensors.of(s.train, s.mean, s.std, CPU),
            Tensors.of(s.val, s.mean, s.std, CPU),
        )
    member = new_member(config, 0, CPU, cl)
    timings: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in sets}
    for _ in range(reps):
        for name, (tr, val) in data.items():
            start = time.perf_counter()
            train_epoch(member, config, tr, cl)
            middle = time.perf_counter()
            evaluate(member.model, val, cl, all_pairs=True)
            timings[name][0].append(middle - start)
            timings[name][1].append(time.perf_counter() - middle)
    return {n: (statistics.median(a), statistics.median(b)) for n, (a, b) in timings.items()}


def open_study(cwd: Path) -> optuna.Study:
    """The main job's study in `cwd`: a journal with several workers, else SQLite."""
    journal = cwd / "studies" / "digit-pairs.journal"
    storage: optuna.storages.BaseStorage | str = f"sqlite:///{cwd}/studies/digit-pairs.db"
    if journal.exists():
        backend = optuna.storages.journal.JournalFileBackend(str(journal))
        storage = optuna.storages.JournalStorage(backend)
    return optuna.load_study(study_name="digit-pairs", storage=storage)


class Stop(Exception):
    pass


def replay(cwd: Path, sources: dict[str, Source], n: int) -> None:
    """Seconds of `n` of the study's search trials, each trained as far as it ran, on each
    dataset (alternating which goes first)."""
    torch.set_num_threads(1)
    trials = [
        t for t in open_study(cwd).get_trials(deepcopy=False)
        if not is_race(t) and t.intermediate_values
    ]  # fmt: skip
    picked = random.Random(0).sample(trials, min(n, len(trials)))
    splits = {name: make_splits(src, seed=0, n_train=1000) for name, src in sources.items()}
    spent = dict.fromkeys(sources, 0.0)
    for i, t in enumerate(picked):
        config = suggest_config(optuna.trial.FixedTrial(t.params), epochs=Config().epochs)
        epochs = len(t.intermediate_values)

        def stop(stats: EpochStats, epochs: int = epochs) -> None:
            if stats.epoch == epochs:
                raise Stop

        names = list(sources) if i % 2 == 0 else list(reversed(sources))
        for name in names:
            s = splits[name]
            start = time.perf_counter()
            with contextlib.suppress(Stop):
                train(config, s.train, {"val": s.val}, mean=s.mean, std=s.std, seed=t.number,
                      device=CPU, threads=1, on_epoch=stop, all_pairs=True)  # fmt: skip
            spent[name] += time.perf_counter() - start
    epochs = sum(len(t.intermediate_values) for t in picked)
    print(f"\n3. {len(picked)} search trials of {cwd} ({epochs} epochs) trained again as they "
          f"ran, 1 thread: mnist5k {spent['mnist5k']:.1f} s, mnist {spent['mnist']:.1f} s: "
          f"{spent['mnist'] / spent['mnist5k']:.2f}x")  # fmt: skip


def search_spans(cwd: Path) -> float:
    """Median seconds of the study's search trials (the race's runs left out)."""
    return statistics.median(
        (t.datetime_complete - t.datetime_start).total_seconds()
        for t in open_study(cwd).get_trials(deepcopy=False)
        if t.datetime_complete and t.datetime_start and not is_race(t)
    )


def main_job(folder: Path, base: Path, seeds: list[int]) -> None:
    """Both main jobs on each seed: every seed's two searches (and races) first, then every
    seed's two final evaluations, each printed as it ends."""
    print(f"\n4. the main job, every option at its default, one after the other, seeds {seeds}")
    datasets = {"mnist5k": [], "mnist": ["--dataset", "mnist", "--data-dir", str(folder)]}
    searches: dict[tuple[int, str], float] = {}
    finals: dict[tuple[int, str], float] = {}
    for seed in seeds:
        for name, extra in datasets.items():
            cwd = base / f"seed{seed}" / name
            cwd.mkdir(parents=True)
            searches[seed, name] = run(
                "search.run", "--trials", "200", "--seed", str(seed), *extra, cwd=cwd
            )
            print(f"  seed {seed}, {name}: search + race {minutes(searches[seed, name])}, "
                  f"a search trial {search_spans(cwd):.2f} s (median)", flush=True)  # fmt: skip
        ratio = searches[seed, "mnist"] / searches[seed, "mnist5k"]
        print(f"  seed {seed}: search + race mnist / mnist5k {ratio:.2f}x", flush=True)
    for seed in seeds:
        for name in datasets:
            cwd = base / f"seed{seed}" / name
            finals[seed, name] = run("search.final_eval", "--seed", str(seed), cwd=cwd)
            print(f"  seed {seed}, {name}: final evaluation {minutes(finals[seed, name])}",
                  flush=True)  # fmt: skip
        s5, f5 = searches[seed, "mnist5k"], finals[seed, "mnist5k"]
        sm, fm = searches[seed, "mnist"], finals[seed, "mnist"]
        print(f"  seed {seed}: mnist / mnist5k: search + race {sm / s5:.2f}x, final "
              f"evaluation {fm / f5:.2f}x, the whole job {(sm + fm) / (s5 + f5):.2f}x",
              flush=True)  # fmt: skip
    total = {name: sum(searches[s, name] + finals[s, name] for s in seeds) for name in datasets}
    print(f"  seeds {seeds} together: the whole job {minutes(total['mnist'])} against "
          f"{minutes(total['mnist5k'])}: {total['mnist'] / total['mnist5k']:.2f}x")  # fmt: skip


def noise_and_cost(args: argparse.Namespace, folder: Path, sources: dict[str, Source]) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(max(1, multiprocessing.cpu_count() or 1)) as pool:
        runs = pool.map(noise_run, range(args.runs))
        memory = pool.map(peak_memory, [("mnist5k", None), ("mnist", str(folder))])
    print(f"1. noise on real digits: mnist5k, default Config, 20 epochs, {args.runs} runs, "
          "split and seed changing; std of a trial's value in points, 95% intervals")  # fmt: skip
    print(f"  measured with 500 validation pairs: {100 * statistics.stdev(v for v, _ in runs):.2f}")
    for n in SIZES:
        low, high = interval(runs, n)
        print(f"  {n:>5} validation pairs: {predicted(runs, n):.2f} [{low:.2f}, {high:.2f}]")
    timed = costs(sources, args.reps)
    epochs, warm = Config().epochs, warmup_epochs(Config().epochs)
    base_trial = epochs * sum(timed["mnist5k, 500"])
    print(f"\n2. cost, 1 thread, median of {args.reps}: seconds of a training epoch and of a "
          f"scoring; a {epochs}-epoch trial scored every epoch / from the warm-up (epoch "
          f"{warm}) on; ratio to mnist5k's trial")  # fmt: skip
    for name, (tr, sc) in timed.items():
        every = epochs * (tr + sc)
        later = epochs * tr + (epochs - warm + 1) * sc
        print(f"  {name:>13} pairs: epoch {tr:.3f} s, scoring {sc:.3f} s; trial "
              f"{every:.2f} s ({every / base_trial:.2f}x) / {later:.2f} s "
              f"({later / base_trial:.2f}x)")  # fmt: skip
    print(f"  peak memory of a process with the data loaded: mnist5k {memory[0]:.0f} MiB, "
          f"mnist {memory[1]:.0f} MiB")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=16, help="noise runs (default: 16)")
    p.add_argument("--reps", type=int, default=5, help="cost repetitions (default: 5)")
    p.add_argument("--replay", type=Path, default=None, help="a mnist5k main job's folder")
    p.add_argument("--trials", type=int, default=40, help="trials to replay (default: 40)")
    p.add_argument("--main-job", action="store_true", help="also time both main jobs (~1 h a seed)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="main-job seeds (default: 0)")
    p.add_argument("--only", action="store_true", help="skip parts 1 and 2")
    p.add_argument("--out", type=Path, default=None, help="keep the folders here (default: tmp)")
    args = p.parse_args()
    base = args.out or Path(tempfile.mkdtemp(prefix="validation-"))
    folder = write_mnist_sized(base / "mnist-files")
    sources = {"mnist5k": load_source("mnist5k"), "mnist": load_source("mnist", folder)}
    if not args.only:
        noise_and_cost(args, folder, sources)
    if args.replay:
        replay(args.replay, sources, args.trials)
    if args.main_job:
        main_job(folder, base, args.seeds)


if __name__ == "__main__":
    main()
