"""Tables that read well in a terminal and render in Markdown: padded pipe tables.

The comparison prints the same tables on stdout and into report.md. A pipe table
with padded columns is both: aligned text for the terminal, a table for any
Markdown viewer (GitHub, VS Code's preview).
"""

from __future__ import annotations

from typing import Sequence


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """A padded pipe table; `align` has one letter per column, "l" or "r" (default: first left, rest right)."""
    header = [str(h) for h in header]
    cells = [[str(c) for c in row] for row in rows]
    align = (align or "l" + "r" * (len(header) - 1)).ljust(len(header), "r")
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        padded = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2)) for w, a in zip(widths, align)) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in cells)])
