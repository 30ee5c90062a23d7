"""A final evaluation's result as text: the tables printed by the command and the study note."""

from __future__ import annotations

from pathlib import Path

from search.columns import table
from search.evaluation.ablation import SELECTION
from search.evaluation.result import EvalResult
from search.evaluation.stats import Summary
from search.study import Tradeoff


def pct(s: Summary) -> str:
    return f"{100 * s.mean:6.2f} +- {100 * s.std:4.2f}"


def interval(s: Summary) -> str:
    return f"[{100 * s.low:.2f}, {100 * s.high:.2f}]"


def points(s: Summary) -> str:
    return f"{100 * s.mean:+.2f} points, 95% CI [{100 * s.low:+.2f}, {100 * s.high:+.2f}]"


def gain(result: EvalResult) -> str:
    """The search's gain over the default configuration, like for like, in one sentence, and
    what the ensemble adds on its own."""
    rounds, nets = len(result.round_seeds), result.config.ensemble
    alike = f"both as {nets} nets" if nets > 1 else "both as one net"
    target = default_name(result)
    if result.default_variant == SELECTION:
        text = f"the selection is {target} (gain 0 over {rounds} rounds)"
    else:
        text = (
            f"gain of the selection over {target}, {alike}: "
            f"{points(result.gain)}, paired over {rounds} rounds"
        )
    if result.one_net_gain is not None:
        text += f"; both as one net: {points(result.one_net_gain)}"
    if result.ensemble_gain is not None:
        text += f"; {nets} nets instead of one add {points(result.ensemble_gain)} to the selection"
    return text


def default_name(result: EvalResult) -> str:
    return result.default_is


def budget_line(result: EvalResult) -> str | None:
    """Under a budget: the budget and the smallest search trial close to the best."""
    if result.max_params is None:
        return None
    line = (
        f"parameter budget {result.max_params:,}: the selection has {result.model.parameters:,} "
        f"per net; {len(result.over_budget)} search trial(s) were over it and never trained"
    )
    small = result.smallest_near_best
    if small is not None:
        line += (
            f"; the smallest trial within {100 * Tradeoff.NEAR_BEST:.1f} point of the best "
            f"validation value is #{small.trial} ({small.params:,} parameters, "
            f"{100 * small.value:.2f} %)"
        )
    return line


def text_report(result: EvalResult) -> str:
    """The gain, one row per variant, then one row per round of the selection."""
    rows = [
        (
            name,
            pct(s.train),
            pct(s.test),
            interval(s.test),
            "" if s.diff is None else f"{100 * s.diff.mean:+.2f} {interval(s.diff)}",
            s.versus or "",
            str(s.test.n),
            f"{s.seconds:.0f}",
        )
        for name, s in result.summary.items()
    ]
    header = ("variant", "train acc %", "test acc %", "test 95% CI", "paired diff", "vs",
              "rounds", "seconds")  # fmt: skip
    per_round = [
        (str(r.round), str(r.seed), f"{100 * r.train_accuracy:.2f}",
         f"{100 * r.test_accuracy:.2f}", f"{r.seconds:.1f}")
        for r in result.runs(SELECTION)
    ]  # fmt: skip
    return "\n\n".join(
        [
            gain(result),
            table(rows, header=header),
            table(per_round, header=("round", "seed", "train acc %", "test acc %", "seconds")),
            model_line(result),
            *filter(None, [budget_line(result)]),
        ]
    )


def model_line(result: EvalResult) -> str:
    m = result.model
    nets = f"{m.nets} nets" if m.nets > 1 else "one net"
    return (
        f"model: {m.path} (the selection as trained in round {m.round}: {nets} of "
        f"{m.parameters:,} parameters, test accuracy {100 * m.test_accuracy:.2f} %); "
        f"python -m search.predict --model {m.path} --help"
    )


def note(result: EvalResult, *, html_path: Path, json_path: Path) -> str:
    """The study note (markdown) that optuna-dashboard shows on the study page."""
    title = f"trial #{result.trial}, {len(result.round_seeds)} rounds, seed {result.seed}"
    lines = [
        f"## Final evaluation: {title}",
        "",
        f"Selection: {result.selection}.",
        "",
        f"**{gain(result)}**",
        "",
        "| variant | test accuracy % (mean +- std) | 95% CI | train % |",
        "|---|---|---|---|",
    ]
    for name, s in result.summary.items():
        lines.append(f"| {name} | {pct(s.test)} | {interval(s.test)} | {100 * s.train.mean:.2f} |")
    lines.append("")
    lines.append(f"Report and JSON: {html_path}, {json_path} (also in this study's artifacts).")
    lines.append("")
    lines.append(model_line(result).replace("model: ", "Model file: ", 1) + ".")
    if budget_line(result):
        lines += ["", f"{budget_line(result)}."]
    return "\n".join(lines)
