"""Benchmark: what the search finds on its own, strategy against strategy, over many search
seeds. Each cell (mode, strategy, seed) is the README's main job in a fresh folder with the
mode's and the strategy's flags, then a cheap final evaluation: the selection and the default
configuration as one net each (`--ensemble 1 --no-ablation`) over `--rounds` rounds. Every
cell of a seed evaluates on the same rounds (the final evaluation's `--seed` is the search's),
so the default's nets are the same nets in every cell of a seed, and two strategies'
selections are paired round by round as well.

    python benchmarks/search_quality.py [--modes cold warm budget] [--strategies tpe explore]
        [--seeds 0 1 2 3 4] [--trials 200] [--rounds 5] [--out DIR]

Modes: cold (`--cold-start`: no default queued or raced), warm (every option at its
default), budget (`--max-params 70000`, against the default shrunk to fit). Strategies are
named sets of search.run flags (STRATEGIES below). A cell's figures are kept in
DIR/MODE/STRATEGY/seedS/cell.json and a cell already there is not run again, so a table can be
built over several sessions with the same --out. Prints, per mode, each cell's selection,
complete search trials, one-net test accuracy and gain over the default with its 95% interval
(paired over the rounds), each strategy's gain pooled over every round of every seed, and each
strategy against the first one, paired over the same rounds. Training's float results depend on
the CPU's vector instructions (AVX-512 or AVX2 kernels train slightly different nets), so cells
built on different machines may hold different default nets for one seed: the table names such
a seed and leaves it out of the comparisons between strategies.

Fidelity: one net and 5 rounds instead of the README's 3 nets, 10 rounds and the ablation. The
final evaluation costs about a tenth of the README's (a cell is mostly its search), and a
seed's interval is about 1.4x wider than with 10 rounds; pooling over seeds narrows it again.
One net against one net is the search's own share of the gain (docs/results.md: the ensemble
adds about the same to the selection and the default).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from search.evaluation.ablation import DEFAULT, OLD_NAMES, SELECTION
from search.evaluation.stats import Summary, paired, summarize

MODES = {"cold": ["--cold-start"], "warm": [], "budget": ["--max-params", "70000"]}
# Each strategy spells out its flags, so that a cell means the same search whatever the
# defaults are when it runs.
NO_SHARE = ["--random-share", "0"]
PRUNED = ["--no-spare-random-draws"]  # draws at random pruned like any other trial
STRUCTURE_DRAWS = ["--random-share", "0.2", "--random-draws", "structure"]
WHOLE_DRAWS = ["--random-share", "0.2", "--random-draws", "whole", *PRUNED]
STRATEGIES = {
    # TPE (multivariate) with Optuna's 10 random start-up trials, percentile pruner keeping
    # the top 25% after 3 epochs: the design of a warm study
    "tpe": NO_SHARE,
    # a fifth of the trials at random: the first 40 of 200, then one in five (SMAC's 0.2)
    "explore": WHOLE_DRAWS,
    # as many draws at random, of the structure only: the training settings from TPE after
    # the first 10 trials
    "explore-structure": [*STRUCTURE_DRAWS, *PRUNED],
    # the same, the draws at random never pruned: they train in full (a cold start's default)
    "explore-structure-spared": [*STRUCTURE_DRAWS, "--spare-random-draws"],
    # the same draws with the median pruner, which keeps half the trials at each epoch
    "explore-structure-median": [*STRUCTURE_DRAWS, *PRUNED, "--pruner", "median"],
    "median": ["--pruner", "median", *NO_SHARE],  # keeps the top half after the warm-up
    "explore-median": [*WHOLE_DRAWS, "--pruner", "median"],
    "hyperband": ["--pruner", "hyperband", *NO_SHARE],
    # the finalists raced on 10 seeds instead of 5: the race's pick is its noisiest step
    "race-10": ["--race-seeds", "10", *NO_SHARE],
    # the search trained in bf16 autocast (its final evaluation in fp32 as every cell's)
    "bf16": ["--precision", "bf16", *NO_SHARE],
    "qmc": ["--sampler", "qmc"],  # a scrambled Sobol sequence, no model
    "random": ["--sampler", "random"],
}


def pct(s: Summary) -> str:
    return f"{100 * s.mean:+.2f} [{100 * s.low:+.2f}, {100 * s.high:+.2f}]"


def run_cell(cwd: Path, *, seed: int, flags: list[str], trials: int, rounds: int) -> dict:
    """One search and its cheap final evaluation in `cwd`; the figures the tables need."""
    cwd.mkdir(parents=True, exist_ok=True)
    quiet = {"cwd": cwd, "check": True, "stdout": subprocess.DEVNULL}
    start = time.perf_counter()
    search = [sys.executable, "-m", "search.run", "--trials", str(trials), "--seed", str(seed)]
    subprocess.run([*search, *flags], **quiet)
    searched = time.perf_counter()
    # fp32 whatever the search trained in: the default's nets are the same in every cell
    final = [sys.executable, "-m", "search.final_eval", "--seed", str(seed), "--precision", "fp32"]
    subprocess.run([*final, "--rounds", str(rounds), "--ensemble", "1", "--no-ablation"], **quiet)
    result = json.loads((cwd / "studies/digit-pairs/final_eval.json").read_text())
    by_variant: dict[str, list[float]] = {}
    for r in sorted(result["rounds"], key=lambda r: r["round"]):
        by_variant.setdefault(OLD_NAMES.get(r["variant"], r["variant"]), []).append(
            r["test_accuracy"]
        )
    config = result["variants"][SELECTION]
    cell = {
        "seed": seed,
        "flags": flags,
        "trial": result["trial"],
        "selection": describe(config, result["model"]["parameters"]),
        "selection_test": by_variant[SELECTION],
        # The selection is the default configuration itself: the default was not trained apart.
        "default": by_variant.get(DEFAULT, by_variant[SELECTION]),
        "complete": len(result["tradeoff"]["points"]),
        "over_budget": len(result["tradeoff"]["over_budget"]),
        # Training's float results depend on the CPU's vector instructions: cells run on
        # machines of different capability train different default nets (see unpaired below)
        "cpu": result["versions"]["cpu"],
        "search_seconds": searched - start,
        "final_seconds": time.perf_counter() - searched,
    }
    (cwd / "cell.json").write_text(json.dumps(cell, indent=1))
    return cell


def describe(config: dict, params: int) -> str:
    parts = [config["family"]]
    if config["family"] == "siamese":
        parts.append(f"{config['head']} head")
    if config["family"] != "mlp":
        parts.append(f"{config['nb_filters']} filters x{config['conv_layers']}")
    parts += [f"bn {'on' if config['batch_norm'] else 'off'}", f"{params:,} params"]
    return ", ".join(parts)


def unpaired(cells: dict[tuple[str, int], dict]) -> dict[int, list[str]]:
    """The seeds whose cells did not train the same default nets (run on machines whose
    float results differ), each with the CPU capabilities its cells recorded."""
    defaults: dict[int, set[tuple[float, ...]]] = {}
    cpus: dict[int, set[str]] = {}
    for (_, seed), c in cells.items():
        defaults.setdefault(seed, set()).add(tuple(c["default"]))
        cpus.setdefault(seed, set()).add(c.get("cpu", "not recorded"))
    return {seed: sorted(cpus[seed]) for seed, d in defaults.items() if len(d) > 1}


def table(mode: str, cells: dict[tuple[str, int], dict], strategies: list[str]) -> None:
    print(f"\n{mode}: one net against one net, test accuracy %, gains in points [95% CI]")
    print("strategy | seed | selection | complete | selected | gain over default | minutes")
    pooled: dict[str, list[float]] = {s: [] for s in strategies}
    selected: dict[str, dict[int, list[float]]] = {s: {} for s in strategies}
    for (strategy, seed), c in sorted(cells.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        diffs = [a - b for a, b in zip(c["selection_test"], c["default"], strict=True)]
        pooled[strategy] += diffs
        selected[strategy][seed] = c["selection_test"]
        minutes = (c["search_seconds"] + c["final_seconds"]) / 60
        mean = 100 * sum(c["selection_test"]) / len(c["selection_test"])
        print(
            f"{strategy} | {seed} | #{c['trial']}: {c['selection_test']} | {c['complete']} | "
            f"{mean:.2f} | {pct(paired(c['selection_test'], c['default']))} | {minutes:.1f}"
        )
    for strategy in strategies:
        if len(pooled[strategy]) > 1:
            seeds = sorted(selected[strategy])
            print(
                f"{strategy} pooled over {len(pooled[strategy])} rounds ({len(seeds)} seeds "
                f"{seeds}): gain {pct(summarize(pooled[strategy]))}"
            )
    broken = unpaired(cells)
    for seed, cpus in broken.items():
        print(
            f"seed {seed}: the default's rounds differ between its cells (CPU {', '.join(cpus)}), "
            "so its strategies are not paired and are left out of the comparisons below"
        )
    first = strategies[0]
    for other in strategies[1:]:
        common = sorted((set(selected[first]) & set(selected[other])) - set(broken))
        a = [x for s in common for x in selected[other][s]]
        b = [x for s in common for x in selected[first][s]]
        if len(a) > 1:
            print(f"{other} - {first} over seeds {common}: {pct(paired(a, b))}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--modes", nargs="+", choices=MODES, default=["cold"], help="(default: cold)")
    p.add_argument(
        "--strategies",
        nargs="+",
        choices=STRATEGIES,
        default=["tpe", "explore"],
        help="the first is the one the others are compared with (default: tpe explore)",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--trials", type=int, default=200, help="(default: 200, the README's)")
    p.add_argument("--rounds", type=int, default=5, help="(default: 5)")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("search-quality"),
        help="cells are kept here and not run again (default: ./search-quality)",
    )
    args = p.parse_args()
    for mode in args.modes:
        cells: dict[tuple[str, int], dict] = {}
        for seed in args.seeds:  # seed by seed, so that a partial table is paired
            for strategy in args.strategies:
                cwd = args.out / mode / strategy / f"seed{seed}"
                done = cwd / "cell.json"
                if done.exists():
                    cell = json.loads(done.read_text())
                    if "selected" in cell:  # a cell of an earlier version
                        cell["selection_test"] = cell.pop("selected")
                    cells[strategy, seed] = cell
                    continue
                flags = [*MODES[mode], *STRATEGIES[strategy]]
                cells[strategy, seed] = run_cell(
                    cwd, seed=seed, flags=flags, trials=args.trials, rounds=args.rounds
                )
                c = cells[strategy, seed]
                print(
                    f"{mode} {strategy} seed {seed}: #{c['trial']} {c['selection_test']}, "
                    f"{c['complete']} complete ({cwd})",
                    flush=True,
                )
        table(mode, cells, args.strategies)


if __name__ == "__main__":
    main()
