"""Benchmark: nets of one configuration trained packed into one network against one at a time.

Two parts, each arm alternating with the other within every repetition, medians printed:

1. `--nets`: the training loop alone (models.train_runs, one thread), K runs of 1000 pairs of
   a few configurations, packed in one pack of K nets against the same K nets one by one;
   seconds a net and the ratio, on `--device` (the CPU by default; `cuda` on a GPU).
2. `--study DIR`: `search.final_eval` on the study in DIR (a folder where `search.run` ran)
   with `--pack on` against `--pack off`, each arm on a copy of the folder: wall time, the
   peak memory of a process, and each variant's test accuracy paired over the rounds
   (packed minus one by one, with its 95% interval: the same nets, so about 0).

    python benchmarks/packing.py --nets [--runs 2 4 12] [--epochs 2] [--reps 2] [--device cpu]
    python benchmarks/packing.py --study DIR [--reps 1] [-- EXTRA search.final_eval FLAGS]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from data import load_source, make_splits
from models import Config, Run, pack_size, resolve_device, train_runs
from search.evaluation.stats import paired

CONFIGS = {
    "default (siamese 32 filters, batch 64)": Config(),
    "siamese 16 filters, 64 hidden": Config(nb_filters=16, hidden_units=64),
    "siamese 8 filters, 32 hidden": Config(nb_filters=8, hidden_units=32),
    "default at batch 256": Config(batch_size=256),
    "mlp, 128 hidden": Config(family="mlp"),
}


def nets_part(runs: list[int], epochs: int, reps: int, device: torch.device) -> None:
    source = load_source("mnist5k")
    data = []
    for seed in range(max(runs)):
        s = make_splits(source, seed=seed, n_train=1000, n_val=0, n_test=1000)
        data.append(Run(s.train, {"test": s.test}, s.mean, s.std, seed))
    print(f"training loop on {device.type}, 1 thread, {epochs} epochs of 1000 pairs, scored on "
          f"1000 test pairs each epoch; seconds a net (median of {reps}), "
          "one by one / packed")  # fmt: skip
    print(f"{'configuration':>40}  {'pack_size':>9}  " + "  ".join(f"{f'K={k}':>16}" for k in runs))
    for name, config in CONFIGS.items():
        config = replace(config, epochs=epochs)
        cells = []
        for k in runs:
            times: dict[bool, list[float]] = {True: [], False: []}
            for _ in range(reps):
                for pack in (False, True):
                    start = time.perf_counter()
                    train_runs(config, data[:k], device=device, pack=pack, threads=1)
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    times[pack].append((time.perf_counter() - start) / k)
            alone, packed = (statistics.median(times[p]) for p in (False, True))
            cells.append(f"{alone:.2f}/{packed:.2f} {alone / packed:.2f}x")
        size = pack_size(config, device)
        print(f"{name:>40}  {size:>9}  " + "  ".join(f"{c:>16}" for c in cells), flush=True)


def child(argv: list[str]) -> None:
    """Run search.final_eval in this process, then print the peak memory of this process and
    of its largest pool process (kB)."""
    from search import final_eval

    code = final_eval.main(argv)
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pool = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"peak_kb": me, "pool_peak_kb": pool}))
    sys.exit(code)


def by_variant(result: dict) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for r in sorted(result["rounds"], key=lambda r: r["round"]):
        out.setdefault(r["variant"], []).append(r["test_accuracy"])
    return out


def study_part(folder: Path, reps: int, extra: list[str]) -> None:
    base = Path(tempfile.mkdtemp(prefix="packing-"))
    times: dict[str, list[float]] = {"on": [], "off": []}
    memory: dict[str, dict] = {}
    results: dict[str, dict] = {}
    for rep in range(reps):
        for arm in ("off", "on") if rep % 2 == 0 else ("on", "off"):
            cwd = base / f"{arm}{rep}"
            shutil.copytree(folder / "studies", cwd / "studies")
            start = time.perf_counter()
            out = subprocess.run(
                [sys.executable, __file__, "--child", "--pack", arm, *extra],
                cwd=cwd, check=True, capture_output=True, text=True,
            )  # fmt: skip
            times[arm].append(time.perf_counter() - start)
            memory[arm] = json.loads(out.stdout.strip().splitlines()[-1])
            results[arm] = json.loads((cwd / "studies/digit-pairs/final_eval.json").read_text())
            print(f"rep {rep} --pack {arm}: {times[arm][-1]:.0f} s", flush=True)
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    print(f"\nsearch.final_eval {' '.join(extra)} on {folder}: median of {reps}")
    print(f"{'arm':>10}  {'seconds':>8}  {'peak MiB (command / pool process)':>34}")
    for arm, t in (("off", off), ("on", on)):
        m = memory[arm]
        print(f"{'--pack ' + arm:>10}  {t:>8.0f}  "
              f"{m['peak_kb'] / 1024:>16.0f} / {m['pool_peak_kb'] / 1024:.0f}")  # fmt: skip
    print(f"speed-up packed against one by one: {off / on:.2f}x")
    print("\ntest accuracy %, packed minus one by one, paired over the rounds (95% interval)")
    a, b = by_variant(results["on"]), by_variant(results["off"])
    for variant in b:
        d = paired(a[variant], b[variant])
        print(f"{variant:>28}  {100 * statistics.mean(a[variant]):.2f} vs "
              f"{100 * statistics.mean(b[variant]):.2f}: {100 * d.mean:+.2f} "
              f"[{100 * d.low:+.2f}, {100 * d.high:+.2f}]")  # fmt: skip


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["--child"]:
        child(argv[1:])
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--nets", action="store_true", help="the training loop part")
    p.add_argument("--runs", type=int, nargs="+", default=[2, 4, 12], help="(default: 2 4 12)")
    p.add_argument("--epochs", type=int, default=2, help="(default: 2)")
    p.add_argument("--study", type=Path, default=None, help="the final evaluation part's folder")
    p.add_argument("--reps", type=int, default=None, help="(default: 2 for --nets, 1 for --study)")
    p.add_argument("--device", default="cpu", help="--nets on cpu, cuda or auto (default: cpu)")
    args = p.parse_args(argv)
    if args.nets:
        nets_part(args.runs, args.epochs, args.reps or 2, resolve_device(args.device))
    if args.study is not None:
        study_part(args.study, args.reps or 1, extra)
    if not args.nets and args.study is None:
        p.error("say --nets, --study DIR or both")


if __name__ == "__main__":
    main()
