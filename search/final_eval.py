"""python -m search.final_eval: retrain the best (or a named) trial's config over random rounds
and report mean +- std test accuracy, with an ablation of weight sharing x auxiliary loss.

The test pairs are read here and only here.
"""

from __future__ import annotations

import json
import multiprocessing
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from data import DataError, load_source
from models import DEVICES, Config, resolve_device
from search.cli import CORES, Parser, check_workers, fail, non_negative_int, positive_int, table
from search.errors import UsageError
from search.rounds import TEST_PAIRS, Job, init_pool, round_seed, run_job
from search.space import suggest_config
from search.stats import Summary, paired, summarize
from search.storage import STUDIES_DIR, find_storage, open_storage
from search.summary import ARTIFACT_DIR

PROG = "search.final_eval"
SELECTED = "selected"


def build_parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__)
    p.add_argument("--study", default="digit-pairs", help="study name (default: digit-pairs)")
    p.add_argument(
        "--storage",
        default=None,
        help="the study's storage URL (default: studies/STUDY.db or .journal)",
    )
    p.add_argument(
        "--trial",
        type=non_negative_int,
        default=None,
        help="trial number to evaluate (default: the best trial)",
    )
    p.add_argument(
        "--rounds",
        type=positive_int,
        default=10,
        help="rounds, each with new data and a new initialization (default: 10)",
    )
    p.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="seed from which every round's seed is derived (default: 0)",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=CORES,
        help=f"parallel processes, one thread each (default: {CORES}, the cores)",
    )
    p.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="auto picks CUDA when present (default: auto)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder of the MNIST IDX files (default: the one the study used)",
    )
    p.add_argument(
        "--no-ablation",
        action="store_true",
        help="evaluate the selected configuration only (default: with ablation)",
    )
    return p


def pick_trial(study: optuna.Study, number: int | None) -> FrozenTrial:
    trials = study.get_trials(deepcopy=False)
    if number is not None:
        if number >= len(trials):
            raise UsageError(
                f"trial {number} does not exist in study {study.study_name!r} "
                f"(trials 0-{len(trials) - 1}); pick one with optuna trials or the dashboard"
            )
        trial = trials[number]
        if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED):
            raise UsageError(f"trial {number} is {trial.state.name}; choose a finished trial")
        return trial
    if not any(t.state == TrialState.COMPLETE for t in trials):
        raise UsageError(
            f"study {study.study_name!r} has no completed trial yet; run python -m search.run"
        )
    return study.best_trial


def replay(study: optuna.Study, trial: FrozenTrial) -> Config:
    """The trial's config, rebuilt by the search space itself."""
    epochs = study.user_attrs.get("epochs")
    if not isinstance(epochs, int):
        raise UsageError(
            f"study {study.study_name!r} has no epoch budget: was it made by search.run?"
        )
    try:
        return suggest_config(trial, epochs=epochs)
    except (ValueError, KeyError) as e:
        raise UsageError(
            f"trial {trial.number} does not fit this search space ({e}); "
            "was the study made by search.run?"
        ) from None


def variants(config: Config, ablation: bool) -> dict[str, Config]:
    """The selected config, and with ablation: weight sharing on/off x auxiliary loss on/off
    (alpha = 1 is off) and the mlp baseline, all with the selected hyper-parameters."""
    out = {SELECTED: config}
    if not ablation:
        return out
    aux_alpha = config.alpha if config.alpha < 1.0 else 0.5
    sharing = [True, False] if config.family == "siamese" else [False]
    for ws in sharing:
        for aux in (True, False):
            v = replace(config, weight_sharing=ws, alpha=aux_alpha if aux else 1.0)
            if v != config:
                name = f"{config.family}" + (
                    f" ws={'on' if ws else 'off'}" if config.family == "siamese" else ""
                )
                out[f"{name} aux={'on' if aux else 'off'}"] = v
    if config.family != "mlp":
        out["mlp baseline"] = replace(config, family="mlp", weight_sharing=False)
    return out


def pct(s: Summary) -> str:
    return f"{100 * s.mean:6.2f} +- {100 * s.std:4.2f}"


def interval(s: Summary) -> str:
    return f"[{100 * s.low:.2f}, {100 * s.high:.2f}]"


def print_tables(result: dict[str, Any]) -> None:
    rows = []
    for name, s in result["summary"].items():
        train_s, test_s = Summary(**s["train"]), Summary(**s["test"])
        diff = s.get("diff")
        rows.append(
            (
                name,
                pct(train_s),
                pct(test_s),
                interval(test_s),
                "" if diff is None else f"{100 * diff['mean']:+.2f} {interval(Summary(**diff))}",
                str(test_s.n),
                f"{s['seconds']:.0f}",
            )
        )
    header = (
        "variant",
        "train acc %",
        "test acc %",
        "test 95% CI",
        "paired diff vs selected",
        "rounds",
        "seconds",
    )
    print(table(rows, header=header))
    print()
    per_round = [
        (
            str(r["round"]),
            str(r["seed"]),
            f"{100 * r['train_accuracy']:.2f}",
            f"{100 * r['test_accuracy']:.2f}",
            f"{r['seconds']:.1f}",
        )
        for r in sorted(result["rounds"], key=lambda r: r["round"])
        if r["variant"] == SELECTED
    ]
    print(table(per_round, header=("round", "seed", "train acc %", "test acc %", "seconds")))


def evaluate_rounds(
    jobs: list[Job], dataset: str, data_dir: str | None, workers: int
) -> list[dict[str, Any]]:
    threads = max(1, CORES // workers)
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(
        min(workers, len(jobs)), initializer=init_pool, initargs=(dataset, data_dir, threads)
    )
    try:
        rows = []
        with tqdm(total=len(jobs), unit="run", desc="rounds") as bar:
            for row in pool.imap_unordered(run_job, jobs):
                rows.append(row)
                bar.update()
        pool.close()
        return rows
    finally:
        pool.terminate()
        pool.join()


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_workers(PROG, args.workers)
    try:
        resolve_device(args.device)
        spec = find_storage(args.study, args.storage)
        storage = open_storage(spec, create=False)
        try:
            study = optuna.load_study(study_name=args.study, storage=storage)
        except KeyError:
            names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
            raise UsageError(
                f"no study {args.study!r} in {spec.url} (it has: {', '.join(names) or 'none'})"
            ) from None
        trial = pick_trial(study, args.trial)
        config = replay(study, trial)
        dataset = str(study.user_attrs.get("dataset", "mnist5k"))
        data_dir = str(args.data_dir) if args.data_dir else study.user_attrs.get("data_dir")
        train_pairs = int(study.user_attrs.get("train_pairs", 1000))
        configs = variants(config, not args.no_ablation)
        seeds = [round_seed(args.seed, r) for r in range(args.rounds)]
        jobs = [
            Job(name, c, r, seeds[r], train_pairs, args.device)
            for r in range(args.rounds)
            for name, c in configs.items()
        ]
        # Check the data once here: a bad --data-dir ends in one line before any work starts.
        load_source(dataset, Path(data_dir) if data_dir else None)
        val = 100 * (trial.value or 0)
        print(
            f"study {args.study!r}, trial #{trial.number} (validation {val:.2f} %): "
            f"{len(configs)} variant(s) x {args.rounds} rounds, {args.workers} worker(s)"
        )
        start = time.time()
        rows = evaluate_rounds(jobs, dataset, data_dir, args.workers)
    except (UsageError, DataError, ValueError) as e:
        fail(PROG, e)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing was written", file=sys.stderr)
        return 130

    by = {
        name: sorted((r for r in rows if r["variant"] == name), key=lambda r: r["round"])
        for name in configs
    }
    selected_test = [r["test_accuracy"] for r in by[SELECTED]]
    summary: dict[str, Any] = {}
    for name, runs in by.items():
        test = [r["test_accuracy"] for r in runs]
        summary[name] = {
            "train": vars(summarize([r["train_accuracy"] for r in runs])),
            "test": vars(summarize(test)),
            "diff": None if name == SELECTED else vars(paired(test, selected_test)),
            "seconds": sum(r["seconds"] for r in runs),
        }
    result = {
        "study": args.study,
        "trial": trial.number,
        "validation_accuracy": trial.value,
        "config": config.to_dict(),
        "variants": {n: c.to_dict() for n, c in configs.items()},
        "seed": args.seed,
        "round_seeds": seeds,
        "rounds_requested": args.rounds,
        "dataset": dataset,
        "train_pairs": train_pairs,
        "test_pairs": TEST_PAIRS,
        "summary": summary,
        "rounds": rows,
        "wall_seconds": time.time() - start,
        "command": " ".join([PROG, *(argv if argv is not None else sys.argv[1:])]),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "optuna": optuna.__version__,
        },
    }
    print_tables(result)
    save(study, result)
    return 0


def save(study: optuna.Study, result: dict[str, Any]) -> None:
    """The JSON and HTML under studies/<study>/, attached to the study for the dashboard."""
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact
    from optuna_dashboard import save_note

    from search.report import render

    out = STUDIES_DIR / result["study"]
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "final_eval.json", out / "final_eval.html"
    write_atomically(json_path, json.dumps(result, indent=1))
    write_atomically(html_path, render(result))
    ARTIFACT_DIR.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(ARTIFACT_DIR))
    for path, mimetype in ((json_path, "application/json"), (html_path, "text/html")):
        upload_artifact(
            artifact_store=store, file_path=str(path), study_or_trial=study, mimetype=mimetype
        )
    s = result["summary"]
    study.set_user_attr(
        "final_eval",
        {
            name: {
                "test_mean": v["test"]["mean"],
                "test_std": v["test"]["std"],
                "rounds": v["test"]["n"],
            }
            for name, v in s.items()
        }
        | {"trial": result["trial"], "seed": result["seed"]},
    )
    title = f"trial #{result['trial']}, {result['rounds_requested']} rounds, seed {result['seed']}"
    lines = [
        f"## Final evaluation: {title}",
        "",
        "| variant | test accuracy % (mean +- std) | 95% CI | train % |",
        "|---|---|---|---|",
    ]
    for name, v in s.items():
        t = Summary(**v["test"])
        lines.append(f"| {name} | {pct(t)} | {interval(t)} | {100 * v['train']['mean']:.2f} |")
    lines.append("")
    lines.append(f"Report and JSON: {html_path}, {json_path} (also in this study's artifacts).")
    save_note(study, "\n".join(lines))
    print(f"\nsaved {json_path} and {html_path}; attached to study {result['study']!r}")


if __name__ == "__main__":
    sys.exit(main())
