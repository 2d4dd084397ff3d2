"""Plain-text tables for the terminal."""

from __future__ import annotations

import unicodedata


def format_value(value) -> str:
    if isinstance(value, float):
        digits = 4 if abs(value) < 10 else 2 if abs(value) < 1000 else 1
        return f"{value:.{digits}f}"
    return "-" if value is None else str(value)


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Rows of dicts as an aligned table; missing cells print as '-'."""
    if not rows:
        return ""
    columns = columns or list(dict.fromkeys(key for row in rows for key in row))
    cells = [[format_value(row.get(column)) for column in columns] for row in rows]
    widths = [max(display_width(c), *(display_width(line[i]) for line in cells))
              for i, c in enumerate(columns)]
    numeric = [all(_is_number(line[i]) for line in cells) for i in range(len(columns))]

    def pad(value: str, width: int, right: bool) -> str:
        space = " " * (width - display_width(value))
        return space + value if right else value + space

    def render(values):
        return "  ".join(pad(v, w, num) for v, w, num in zip(values, widths, numeric)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(columns), rule] + [render(line) for line in cells])


def display_width(text: str) -> int:
    """Columns `text` takes in a terminal: CJK characters (class names such as 日本) take two,
    combining accents none."""
    return sum(0 if unicodedata.combining(ch) else
               2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def detail_text(tables: list[tuple[str, list[dict]]]) -> str:
    """Titled tables (a task's `detail_tables`), each after a blank line; "" when none."""
    return "".join(f"\n{title}\n{table(rows)}\n" for title, rows in tables if rows)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return text == "-"
