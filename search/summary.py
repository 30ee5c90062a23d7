"""The end-of-run summary: best trial, counts, and what to run next."""

from __future__ import annotations

import shlex

import optuna
from optuna.trial import TrialState

from search.cli import table
from search.storage import STUDIES_DIR, StorageSpec

ARTIFACT_DIR = STUDIES_DIR / "artifacts"


def dashboard_command(spec: StorageSpec) -> str:
    return f"optuna-dashboard {shlex.quote(spec.url)} --artifact-dir {ARTIFACT_DIR}"


def final_eval_command(study: str, spec: StorageSpec, default: bool) -> str:
    command = f"python -m search.final_eval --study {shlex.quote(study)}"
    if not default:
        command += f" --storage {shlex.quote(spec.url)}"
    return command


def format_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def summary(
    study: optuna.Study, spec: StorageSpec, *, elapsed: float, default_storage: bool
) -> str:
    trials = study.get_trials(deepcopy=False)
    counts = {s: sum(t.state == s for t in trials) for s in TrialState}
    lines = [f"study {study.study_name!r} in {spec.url}"]
    rows = [
        ("complete", str(counts[TrialState.COMPLETE])),
        ("pruned", str(counts[TrialState.PRUNED])),
        ("failed", str(counts[TrialState.FAIL])),
        ("running", str(counts[TrialState.RUNNING])),
        ("elapsed", f"{elapsed:.0f} s"),
    ]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        rows.insert(0, ("best validation accuracy", f"{100 * (best.value or 0):.2f} %"))
        rows.insert(1, ("best trial", f"#{best.number}"))
        lines.append(table(rows))
        lines.append("")
        params = [(k, format_value(v)) for k, v in best.params.items()]
        lines.append(table(params, header=("parameter", "value")))
    else:
        lines.append(table(rows))
        lines.append("no complete trial yet")
    lines += [
        "",
        "open the dashboard:   " + dashboard_command(spec),
        "final evaluation:     " + final_eval_command(study.study_name, spec, default_storage),
    ]
    return "\n".join(lines)
