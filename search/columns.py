"""Plain aligned text tables, for the numbers a user reads."""

from __future__ import annotations


def table(rows: list[tuple[str, ...]], header: tuple[str, ...] | None = None) -> str:
    """A plain aligned text table."""
    all_rows = ([header] if header else []) + rows
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(all_rows[0]))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in all_rows
    ]
    if header:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
