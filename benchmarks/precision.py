"""Benchmark: does bf16 hold accuracy? The same final evaluation run in fp32 and in bf16.

A study is searched once (`search.run --trials T --finalists 0 --seed S`, in fp32), then its
selection is evaluated twice with the same `--seed` and rounds, `--precision fp32` and
`--precision bf16`, one net each and no ablation: the same data and initial weights every
round, so the selection's and the default's test accuracies pair round by round. Prints each
variant's mean in both precisions, the paired difference bf16 - fp32 with its 95% interval,
and each evaluation's wall time.

On a CPU without native bf16 (no avx512_bf16 or amx_bf16 flag) torch emulates it: the
accuracy is bf16's, the time is not what bf16 hardware would take.

    python benchmarks/precision.py [--trials 30] [--rounds 10] [--seed 0] [--out DIR] [--trial N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from search.evaluation.ablation import OLD_NAMES
from search.evaluation.stats import paired


def evaluate(
    cwd: Path, precision: str, rounds: int, seed: int, trial: int | None
) -> tuple[dict, float]:
    chosen = [] if trial is None else ["--trial", str(trial)]
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "search.final_eval", "--rounds", str(rounds), "--seed", str(seed),
         "--ensemble", "1", "--no-ablation", "--precision", precision, *chosen],
        cwd=cwd, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    took = time.perf_counter() - start
    result = json.loads((cwd / "studies/digit-pairs/final_eval.json").read_text())
    (cwd / f"final_eval.{precision}.json").write_text(json.dumps(result))
    return result, took


def by_variant(result: dict) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for r in sorted(result["rounds"], key=lambda r: r["round"]):
        out.setdefault(OLD_NAMES.get(r["variant"], r["variant"]), []).append(r["test_accuracy"])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--trials", type=int, default=30, help="search trials (default: 30)")
    p.add_argument("--rounds", type=int, default=10, help="evaluation rounds (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="search and evaluation seed (default: 0)")
    p.add_argument("--out", type=Path, default=None, help="keep the study here (default: temp)")
    p.add_argument("--trial", type=int, default=None,
                   help="evaluate this trial (default: the selection); with --out, a study "
                        "already there is evaluated again without a new search")  # fmt: skip
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = args.out or Path(tmp)
        cwd.mkdir(parents=True, exist_ok=True)
        if args.trial is None or not (cwd / "studies").exists():
            subprocess.run(
                [sys.executable, "-m", "search.run", "--trials", str(args.trials),
                 "--finalists", "0", "--seed", str(args.seed), "--precision", "fp32"],
                cwd=cwd, check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
        runs = {
            prec: evaluate(cwd, prec, args.rounds, args.seed, args.trial)
            for prec in ("fp32", "bf16")
        }
        fp32, bf16 = (by_variant(runs[prec][0]) for prec in ("fp32", "bf16"))
        print(f"trial #{runs['fp32'][0]['trial']}, {args.rounds} rounds, one net each; test %")
        print(f"{'variant':<12}{'fp32':>8}{'bf16':>8}  bf16 - fp32, 95% interval")
        for name in fp32:
            a, b = fp32[name], bf16[name]
            d = paired(b, a)
            print(
                f"{name:<12}{100 * sum(a) / len(a):8.2f}{100 * sum(b) / len(b):8.2f}  "
                f"{100 * d.mean:+.2f} [{100 * d.low:+.2f}, {100 * d.high:+.2f}]"
            )
        print(
            f"wall time: fp32 {runs['fp32'][1]:.0f} s, bf16 {runs['bf16'][1]:.0f} s "
            f"({runs['fp32'][1] / runs['bf16'][1]:.2f}x)"
        )


if __name__ == "__main__":
    main()
