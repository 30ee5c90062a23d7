"""search.predict's answers: one row per pair, as a table for a handful, a summary for many,
and as a CSV or JSON file a program reads, written atomically."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from models import Prediction
from search.columns import table

# The columns of a written answer, in order (docs/final-eval.md describes them).
COLUMNS = (
    "first",
    "second",
    "p_first_le_second",
    "first_le_second",
    "first_digit",
    "second_digit",
    "p_first_digit",
    "p_second_digit",
)
OUT_SUFFIXES = (".csv", ".json")
SHOWN = 20  # pairs printed as a table; more are summarized
LOW_CONFIDENCE = 0.9  # a digit read with a probability below this is counted as unsure


def answer_rows(prediction: Prediction, names: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """One row per pair: its two inputs, P(first <= second), the answer, the digits read and
    their probabilities."""
    rows = []
    for (first, second), p, yes, (a, b), (pa, pb) in zip(
        names,
        prediction.p_le.tolist(),
        prediction.decision.tolist(),
        prediction.digits.tolist(),
        prediction.digit_p.tolist(),
        strict=True,
    ):
        values = (first, second, round(p, 6), bool(yes), a, b, round(pa, 6), round(pb, 6))
        rows.append(dict(zip(COLUMNS, values, strict=True)))
    return rows


HEADER = ("pair", "P(first <= second)", "first <= second?", "digits read", "their P")


def shown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as the terminal shows a handful of them."""
    return table(
        [
            (
                f"{r['first']} vs {r['second']}",
                f"{r['p_first_le_second']:.4f}",
                "yes" if r["first_le_second"] else "no",
                f"{r['first_digit']} {'<=' if r['first_digit'] <= r['second_digit'] else '>'} "
                f"{r['second_digit']}",
                f"{r['p_first_digit']:.3f} {r['p_second_digit']:.3f}",
            )
            for r in rows
        ],
        header=HEADER,
    )


def summary(rows: Sequence[dict[str, Any]]) -> str:
    """What many answers come to: how many "yes", and how many digits were read unsure."""
    yes = sum(r["first_le_second"] for r in rows)
    unsure = sum(
        (r["p_first_digit"] < LOW_CONFIDENCE) + (r["p_second_digit"] < LOW_CONFIDENCE) for r in rows
    )
    n = len(rows)
    return (
        f"{n:,} pairs: first <= second in {yes:,} ({100 * yes / max(n, 1):.1f} %), no in "
        f"{n - yes:,}; {unsure:,} of {2 * n:,} digits read with a probability below "
        f"{LOW_CONFIDENCE}"
    )


def encoded(rows: Sequence[dict[str, Any]], suffix: str) -> str:
    if suffix == ".json":
        return json.dumps(rows, indent=1) + "\n"
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(r | {"first_le_second": str(r["first_le_second"]).lower()})
    return text.getvalue()


def write_answers(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """The rows as `path`'s format (.csv or .json), written beside it under a temporary name
    and renamed over it, so a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(encoded(rows, path.suffix.lower()))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
