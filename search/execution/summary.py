"""The end-of-run summary: the best search trial, the race and its selection, counts, and what
to run next."""

from __future__ import annotations

import shlex

import optuna
from optuna.trial import TrialState

from search.columns import table
from search.paths import ARTIFACT_DIR
from search.storage import StorageSpec
from search.study import (
    Race,
    StudySettings,
    Tradeoff,
    best_search_trial,
    default_in_budget,
    race_of,
)


def dashboard_command(spec: StorageSpec) -> str:
    return f"optuna-dashboard {shlex.quote(spec.shown)} --artifact-dir {ARTIFACT_DIR}"


def final_eval_command(study: str, spec: StorageSpec, default: bool) -> str:
    command = f"python -m search.final_eval --study {shlex.quote(study)}"
    if not default:
        command += f" --storage {shlex.quote(spec.shown)}"
    return command


def format_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def run_summary(
    study: optuna.Study, spec: StorageSpec, *, elapsed: float, default_storage: bool
) -> str:
    trials = study.get_trials(deepcopy=False)
    settings = StudySettings.from_user_attrs(study.user_attrs, study=study.study_name)
    counts = {s: sum(t.state == s for t in trials) for s in TrialState}
    lines = [f"study {study.study_name!r} in {spec.shown}"]
    rows = [
        ("complete", str(counts[TrialState.COMPLETE])),
        ("pruned", str(counts[TrialState.PRUNED])),
        ("failed", str(counts[TrialState.FAIL])),
        ("running", str(counts[TrialState.RUNNING])),
        ("elapsed", f"{elapsed:.0f} s"),
    ]
    if settings.max_params is not None:
        over = len(Tradeoff.of(trials, settings.max_params).over_budget)
        rows.insert(
            2, ("parameter budget", f"{settings.max_params:,} ({over} over it, never trained)")
        )
    best = best_search_trial(trials)
    if best is None:
        lines.append(table(rows))
        lines.append("no complete trial yet")
    else:
        rows.insert(0, ("best validation accuracy", f"{100 * (best.value or 0):.2f} %"))
        rows.insert(1, ("best search trial", f"#{best.number}"))
        race = race_of(study, trials)
        chosen = best
        if race is not None:
            rows.insert(2, ("race", race_state(race)))
            if race.complete and race.selection is not None:
                chosen = next(t for t in trials if t.number == race.selection.trial)
        lines.append(table(rows))
        if race is not None:
            lines.append("")
            lines.append(race_table(race))
            found = default_in_budget(settings.max_params)
            if found is not None and settings.max_params is not None:
                lines.append(f"the default is {found.why}")
        small = Tradeoff.of(trials, settings.max_params).smallest_near_best
        if small is not None and small.trial != best.number:
            lines.append(
                f"smallest within {100 * Tradeoff.NEAR_BEST:.1f} point of the best: trial "
                f"#{small.trial}, {small.params:,} parameters, {100 * small.value:.2f} % "
                f"(the best has {best.user_attrs.get('n_params', 0):,})"
            )
        if settings.cold_start:
            lines.append(
                "cold study: the default configuration was neither queued nor raced "
                "(search.final_eval still measures the selection against it)"
            )
        lines.append("")
        params = [(k, format_value(v)) for k, v in chosen.params.items()]
        lines.append(table(params, header=(f"trial #{chosen.number}", "value")))
    lines += [
        "",
        "open the dashboard:   " + dashboard_command(spec),
        "final evaluation:     " + final_eval_command(study.study_name, spec, default_storage),
    ]
    return "\n".join(lines)


def race_state(race: Race) -> str:
    if not race.complete:
        return "not finished (run the same command again to finish it)"
    if race.selection is None:
        return "every raced run failed"
    return f"selects trial #{race.selection.trial}"


def race_table(race: Race) -> str:
    """The finalists, best mean first, with their mean validation over the race seeds."""
    rows = [
        (
            f"#{s.trial}" + (" (default)" if s.is_default else ""),
            f"{100 * s.mean:.2f}" if s.values else "-",
            str(len(s.values)),
            "selection" if s is race.selection else "",
        )
        for s in race.ranked()
    ]
    return table(rows, header=("finalist", "mean validation %", "race seeds", ""))
