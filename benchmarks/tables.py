"""``report_markdown``: a benchmark's JSON report as markdown tables, for the benchmarks whose
results are a few figures and tables rather than one comparison (those write their own).

Scalars at one level become a two-column table; a list of flat records, or a mapping whose
values are flat records (a grid), becomes one table with a column per field; other mappings
become subsections; long lists of numbers are shortened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SHOWN_ITEMS = 12
"""A list of numbers longer than this is shown by its first items and its length."""
SHOWN_CHARS = 100
"""A longer text (a command's output) is cut to this many characters."""


def report_markdown(title: str, report: Mapping[str, Any]) -> str:
    """The whole report under ``# title``."""
    return "\n".join([f"# {title}", "", *_section(report, 2)]).rstrip() + "\n"


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        shown = ", ".join(_cell(v) for v in value[:SHOWN_ITEMS])
        return f"[{shown}, ... ({len(value)} in all)]" if len(value) > SHOWN_ITEMS else f"[{shown}]"
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    text = " ".join(str(value).split()).replace("|", "\\|")
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def _flat(record: Any) -> bool:
    """A record: a mapping whose values print in a cell (no nested records or lists of them)."""
    return (
        isinstance(record, Mapping)
        and bool(record)
        and all(not _records(v) and not (isinstance(v, Mapping) and any(map(_is_mapping, v.values())))
                for v in record.values())
    )  # fmt: skip


def _is_mapping(value: Any) -> bool:
    return isinstance(value, Mapping)


def _table(rows: list[tuple[str, Mapping[str, Any]]], key: str | None) -> list[str]:
    columns = list(dict.fromkeys(name for _, record in rows for name in record))
    head = ([key] if key else []) + columns
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, record in rows:
        cells = ([label] if key else []) + [_cell(record.get(name)) for name in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _section(report: Mapping[str, Any], depth: int) -> list[str]:
    scalars = {k: v for k, v in report.items() if not isinstance(v, Mapping) and not _records(v)}
    scalars |= {k: v for k, v in report.items() if isinstance(v, Mapping) and not v}
    lines: list[str] = []
    if scalars:
        lines += ["| field | value |", "|---|---|"]
        lines += [f"| {name} | {_cell(value)} |" for name, value in scalars.items()] + [""]
    for name, value in report.items():
        if _records(value):
            lines += [f"{'#' * depth} {name}", "", *_table([(str(i), r) for i, r in enumerate(value)], None)]
        elif isinstance(value, Mapping) and value and all(_flat(v) for v in value.values()):
            lines += [f"{'#' * depth} {name}", "", *_table([(str(k), v) for k, v in value.items()], "key")]
        elif isinstance(value, Mapping) and value:
            lines += [f"{'#' * depth} {name}", "", *_section(value, min(depth + 1, 6))]
    return lines


def _records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_flat(v) for v in value)
