"""A final evaluation's result as text: the tables printed by the command and the study note."""

from __future__ import annotations

from pathlib import Path

from search.evaluation.ablation import SELECTED
from search.evaluation.result import EvalResult
from search.evaluation.stats import Summary
from search.tables import table


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
    if result.default_variant == SELECTED:
        text = f"the selection is the default configuration (gain 0 over {rounds} rounds)"
    else:
        text = (
            f"gain of the selection over the default configuration, {alike}: "
            f"{points(result.gain)}, paired over {rounds} rounds"
        )
    if result.one_net_gain is not None:
        text += f"; both as one net: {points(result.one_net_gain)}"
    if result.ensemble_gain is not None:
        text += f"; {nets} nets instead of one add {points(result.ensemble_gain)} to the selection"
    return text


def tables(result: EvalResult) -> str:
    """The gain, one row per variant, then one row per round of the selected configuration."""
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
        for r in result.runs(SELECTED)
    ]  # fmt: skip
    return "\n\n".join(
        [
            gain(result),
            table(rows, header=header),
            table(per_round, header=("round", "seed", "train acc %", "test acc %", "seconds")),
            model_line(result),
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
    return "\n".join(lines)
