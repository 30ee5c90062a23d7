"""Benchmark: the commands on a study of 10,000 trials, against the same study without them.

For each storage (PostgreSQL, the journal file), the real CLI makes a small study (`search.run
--trials 4 --finalists 2 --race-seeds 2 --workers 1`: the queued defaults, two TPE trials and
a race, trained for real on mnist5k), copies it, and adds --history finished search trials to
the copy: random configurations of the real search space with a seeded synthetic learning
curve of the study's epochs (their reports, parameters and the attributes a trained trial
stores; 60% cut early, as pruned). Then, timed side by side on the small study and the big one:

  run, nothing left   `search.run` at the study's total: open, plan, progress, summary
  final_eval          `search.final_eval --trial 0 --rounds 1 --ensemble 1 --no-ablation`:
                      the same training (trial 0, the queued default) on both studies, so the
                      difference is what reading the big study costs
  dashboard ready     `search.dashboard` until its page answers
  study detail        the dashboard's request for the study and all its trials (first, again)
  importances         the dashboard's parameter importances (first request)

and on the big study only, `search.run --trials <its total>` resumed once the trials are added:
it races the new finalists (training for real, one worker), so its wall time is given with
the race runs' own time (their trial spans) taken out.

    python benchmarks/big_study.py [--history 10000] [--storages postgresql journal]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

from search.storage import open_storage
from search.storage.spec import parse_storage
from search.study.racing import race_trials

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # harness
from scale import Stores, dispose, make_history

from harness.ports import free_port

STUDY = "big"
SMALL = 4  # search trials of the study made by the CLI
EPOCHS = 20  # the default --epochs: a synthetic trial reports as many epochs as a real one


def cli(*args: str, cwd: Path) -> float:
    """Run `python -m ARGS` in `cwd`; its wall seconds (it must succeed)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:1])} failed: {done.stderr.strip()[-2000:]}")
    return time.perf_counter() - start


def load(url: str) -> tuple[optuna.Study, optuna.storages.BaseStorage]:
    storage = open_storage(parse_storage(url), create=False)
    return optuna.load_study(study_name=STUDY, storage=storage), storage


def add(url: str, trials: list[FrozenTrial]) -> None:
    study, storage = load(url)
    study.add_trials(trials)
    dispose(storage)


def get(url: str, timeout: float = 600) -> tuple[float, bytes]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
    return time.perf_counter() - start, body


def dashboard(url: str, cwd: Path) -> dict[str, float]:
    """Start `search.dashboard` on the study; time its readiness and the page's requests."""
    port = free_port()
    args = ["-m", "search.dashboard", "--study", STUDY, "--storage", url, "--port", str(port)]
    proc = subprocess.Popen([sys.executable, *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    start, times = time.perf_counter(), {}
    try:
        while True:
            try:
                get(f"{base}/dashboard", timeout=5)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError("search.dashboard exited") from None
                if time.perf_counter() - start > 300:
                    raise RuntimeError("search.dashboard did not answer in 300 s") from None
                time.sleep(0.1)
        times["dashboard ready"] = time.perf_counter() - start
        _, body = get(f"{base}/api/studies")
        study_id = json.loads(body)["study_summaries"][0]["study_id"]
        times["study detail"], body = get(f"{base}/api/studies/{study_id}?after=0")
        times["trials shown"] = len(json.loads(body)["trials"])
        times["study detail, again"], _ = get(f"{base}/api/studies/{study_id}?after=0")
        times["importances"], _ = get(f"{base}/api/studies/{study_id}/param_importances")
    finally:
        proc.terminate()
        proc.wait()
    return times


def measure(url: str, total: int, cwd: Path) -> dict[str, float]:
    """The commands that open a study at its total, timed."""
    run = ("search.run", "--study", STUDY, "--storage", url, "--trials", str(total))
    times = {"run, nothing left": cli(*run, "--workers", "1", cwd=cwd)}
    times["final_eval"] = cli("search.final_eval", "--study", STUDY, "--storage", url,
                              "--trial", "0", "--rounds", "1", "--ensemble", "1",
                              "--no-ablation", "--workers", "1", cwd=cwd)  # fmt: skip
    return times | dashboard(url, cwd)


def race_spans(url: str, after: int) -> tuple[int, float]:
    """The race runs queued after `after` search trials: how many, and their summed spans."""
    study, storage = load(url)
    runs = [
        t
        for t in race_trials(study.get_trials(deepcopy=False), after)
        if t.datetime_start is not None and t.datetime_complete is not None
    ]
    dispose(storage)
    spans = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in runs)  # type: ignore[operator]
    return len(runs), spans


def bench(kind: str, history: list[FrozenTrial], tmp: Path) -> None:
    stores = Stores(tmp, EPOCHS)
    cwd = tmp / kind
    cwd.mkdir()
    try:
        first = stores.new(kind)
        small = stores.url(kind, first)
        made = cli("search.run", "--study", STUDY, "--storage", small, "--trials", str(SMALL),
                   "--finalists", "2", "--race-seeds", "2", "--workers", "1", cwd=cwd)  # fmt: skip
        big = stores.url(kind, stores.new(kind, first))
        start = time.perf_counter()
        add(big, history)  # PostgreSQL takes them a row at a time: about 70 ms a trial here
        added = time.perf_counter() - start
        total = SMALL + len(history)
        print(f"{kind}: the small study made by search.run in {made:.0f} s; {len(history):,} "
              f"trials added to its copy in {added:.0f} s", flush=True)  # fmt: skip
        resumed = cli("search.run", "--study", STUDY, "--storage", big, "--trials", str(total),
                      "--workers", "1", cwd=cwd)  # fmt: skip
        runs, spans = race_spans(big, total)
        print(f"{kind}: search.run --trials {total} (a race of {runs} new runs): "
              f"{resumed:.1f} s, of which the runs {spans:.1f} s, the rest {resumed - spans:.1f} s",
              flush=True)  # fmt: skip
        a, b = measure(small, SMALL, cwd), measure(big, total, cwd)
        print(f"{'':>20} {SMALL:>10} {total:>10}   (trials in the study, {kind})")
        for name in a:
            unit = "" if name == "trials shown" else " s"
            print(f"{name:>20} {a[name]:>10.2f} {b[name]:>10.2f}{unit}", flush=True)
    finally:
        stores.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--history", type=int, default=10000, help="trials added (default: 10000)")
    p.add_argument("--storages", nargs="+", default=["postgresql", "journal"])
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    start = time.perf_counter()
    history = make_history(args.history, EPOCHS, stored=True)
    print(f"{args.history:,} synthetic trials made in {time.perf_counter() - start:.0f} s")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.storages:
            bench(kind, history, Path(tmp))


if __name__ == "__main__":
    main()
