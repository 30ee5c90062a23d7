"""Benchmark: the README's main job on several seeds, one pipeline at a time, each in a fresh
folder, every option at its default unless given after `--`; prints per seed the selection,
the default configuration trained alike, both gains (ensemble against ensemble, one net
against one net) with their 95% intervals, what the ensemble adds, and the job's wall time;
then the gains pooled over every round of every seed.

    python benchmarks/main_job.py [--seeds 0 1 2] [--trials 200] [--rounds 10] [--out DIR]
        [-- EXTRA search.run FLAGS]

With `--out`, a seed whose folder already holds a finished job is read, not run again, so the
pooled figure can grow over several sessions (the same flags each time). For example
`-- --cold-start` measures what the search finds from nothing, and
`-- --max-params 70000` what it finds under a parameter budget (the final evaluation then
trains one net, so both gains are one net against one net).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from search.evaluation.ablation import DEFAULT, DEFAULT_ONE_NET, OLD_NAMES, ONE_NET, SELECTION
from search.evaluation.stats import Summary, paired, summarize


def run(*args: str, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def pct(s: Summary) -> str:
    return f"{100 * s.mean:+.2f} [{100 * s.low:+.2f}, {100 * s.high:+.2f}]"


def minutes(seconds: float) -> str:
    whole, rest = divmod(round(seconds), 60)
    return f"{whole}:{rest:02d}"


def job_time(seconds: tuple[float, float] | None) -> str:
    if seconds is None:
        return "not recorded"
    search, final = seconds
    return f"{minutes(search + final)} ({minutes(search)}, {minutes(final)})"


# Where a variant was not trained on its own: the selection is the default configuration, or
# its ensemble is one net (one net is then the selection itself).
STANDS_IN = {DEFAULT: SELECTION, ONE_NET: SELECTION, DEFAULT_ONE_NET: DEFAULT}


def accuracies(result: dict, variant: str) -> list[float]:
    """A variant's test accuracy round by round, or that of the variant it is the same as."""
    rounds = by_variant_rows(result)
    while variant not in rounds:
        variant = STANDS_IN[variant]
    return rounds[variant]


def by_variant_rows(result: dict) -> dict[str, list[float]]:
    rows = sorted(result["rounds"], key=lambda r: r["round"])
    out: dict[str, list[float]] = {}
    for r in rows:  # a file of an earlier version names the variants by their old names
        out.setdefault(OLD_NAMES.get(r["variant"], r["variant"]), []).append(r["test_accuracy"])
    return out


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="(default: 0 1 2)")
    p.add_argument("--trials", type=int, default=200, help="(default: 200, the README's)")
    p.add_argument("--rounds", type=int, default=10, help="(default: 10, the README's)")
    p.add_argument("--out", type=Path, default=None, help="keep the folders here (default: tmp)")
    args = p.parse_args(argv)
    base = args.out or Path(tempfile.mkdtemp(prefix="main-job-"))
    results: dict[int, dict] = {}
    times: dict[int, tuple[float, float] | None] = {}
    for seed in args.seeds:
        cwd = base / f"seed{seed}"
        cwd.mkdir(parents=True, exist_ok=True)
        report, timing = cwd / "studies/digit-pairs/final_eval.json", cwd / "job_seconds.json"
        if report.exists() and args.out is not None:  # a finished job of an earlier run
            results[seed] = json.loads(report.read_text())
            times[seed] = tuple(json.loads(timing.read_text())) if timing.exists() else None
            print(f"seed {seed}: read from {cwd}", flush=True)
            continue
        trials, rounds = str(args.trials), str(args.rounds)
        search = run("search.run", "--trials", trials, "--seed", str(seed), *extra, cwd=cwd)
        final = run("search.final_eval", "--seed", str(seed), "--rounds", rounds, cwd=cwd)
        results[seed] = json.loads(report.read_text())
        times[seed] = (search, final)
        timing.write_text(json.dumps(times[seed]))
        print(f"seed {seed} done in {minutes(search + final)} ({cwd})", flush=True)
    print(f"\nmain job{' with ' + ' '.join(extra) if extra else ''}; test accuracy %, "
          "gains in points with 95% intervals, paired over the rounds")  # fmt: skip
    header = ("seed", "trial", "selection", "default alike", "gain alike", "gain one net",
              "ensemble adds", "job (search, final)")  # fmt: skip
    print(" | ".join(header))
    pooled: dict[str, list[float]] = {"alike": [], "one": []}
    for seed, result in results.items():
        sel, dft = accuracies(result, SELECTION), accuracies(result, DEFAULT)
        one, dft_one = accuracies(result, ONE_NET), accuracies(result, DEFAULT_ONE_NET)
        pooled["alike"] += [a - b for a, b in zip(sel, dft, strict=True)]
        pooled["one"] += [a - b for a, b in zip(one, dft_one, strict=True)]
        mean = lambda xs: 100 * sum(xs) / len(xs)  # noqa: E731
        print(" | ".join((
            str(seed), f"#{result['trial']}", f"{mean(sel):.2f}", f"{mean(dft):.2f}",
            pct(paired(sel, dft)), pct(paired(one, dft_one)), pct(paired(sel, one)),
            job_time(times[seed]),
        )))  # fmt: skip
    alike, one = summarize(pooled["alike"]), summarize(pooled["one"])
    print(f"pooled over {alike.n} rounds: gain alike {pct(alike)}, one net {pct(one)}")


if __name__ == "__main__":
    main()
