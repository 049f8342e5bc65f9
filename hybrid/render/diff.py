"""Renderers of a :class:`~hybrid.diff.DiffResult`: table, markdown, JSON."""

from __future__ import annotations

import json
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING

from hybrid.errors import escape
from hybrid.render import units
from hybrid.render.table import format_table

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.diff import Delta, DiffResult


def _value(name: str, v: int | None) -> str:
    if v is None:
        return "absent"
    return units.nbytes(v) if "bytes" in name else (str(v) if "calls" in name else units.flops(v))


def _cells(result: DiffResult, section: str, only_changed: bool) -> list[list[str]]:
    rows = []
    for d in result.sections[section]:
        if only_changed and d.change == 0 and d.old is not None and d.new is not None:
            continue
        rows.append(_delta_cells(result, d))
    return rows


def relative_text(d: Delta) -> str:
    """The relative change in percent to four digits, from the exact ratio (any size renders:
    ``+3.333e+401%``), or ``added``, ``removed``, ``new`` (from 0)."""
    if d.old is None:
        return "added"
    if d.new is None:
        return "removed"
    ratio = d.ratio
    if ratio is None:
        return "new"
    if abs(ratio) < 1e300:
        return f"{100 * float(ratio):+.4g}%"
    with localcontext() as context:  # beyond a float: the exact ratio, rounded once to four digits
        context.prec = 4
        percent = Decimal(100 * ratio.numerator) / Decimal(ratio.denominator)
    return f"{percent:+.3e}%"


def _delta_cells(result: DiffResult, d: Delta) -> list[str]:
    rel_text = relative_text(d)
    mark = "BEYOND" if d.beyond(result.rtol) else ""
    return [d.name, _value(d.name, d.old), _value(d.name, d.new), rel_text, mark]


HEADERS = ["quantity", "old", "new", "change", ""]


def _verdict(result: DiffResult) -> str:
    n = len(result.beyond)
    if not n:
        return f"within tolerance (rtol {result.rtol:g})"
    moved = sorted({d.name for s, d in result.beyond if s in ("stages", "total")})
    what = f"; moved: {', '.join(moved)}" if moved else ""
    return f"{n} change(s) beyond tolerance (rtol {result.rtol:g}){what}"


def to_table(result: DiffResult) -> str:
    parts = [escape(f"wanmeter diff ({result.kind}): {result.old} -> {result.new}"), _verdict(result)]
    parts += [f"  {escape(line)}" for line in result.context]
    for section in result.sections:
        only_changed = section not in ("total", "stages")
        cells = [[escape(c) for c in row] for row in _cells(result, section, only_changed)]
        title = f"{section} (changed only)" if only_changed else section
        parts += ["", title, format_table(HEADERS, cells, right=(1, 2, 3)) if cells else "  no changes"]
    return "\n".join(parts) + "\n"


def to_markdown(result: DiffResult) -> str:
    icon = "✅" if result.within_tolerance else "❌"
    parts = [f"### {icon} wanmeter diff ({result.kind}): {_verdict(result)}", ""]
    parts += [f"- {escape(line)}" for line in result.context] + ([""] if result.context else [])
    for section in result.sections:
        only_changed = section not in ("total", "stages")
        cells = [[escape(c) for c in row] for row in _cells(result, section, only_changed)]
        parts.append(f"**{section}**" + (" (changed only)" if only_changed else ""))
        parts.append("")
        if not cells:
            parts += ["No changes.", ""]
            continue
        parts.append("| " + " | ".join(HEADERS[:-1]) + " | |")
        parts.append("| --- | ---: | ---: | ---: | --- |")
        parts += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        parts.append("")
    return "\n".join(parts)


def to_json(result: DiffResult) -> str:
    return json.dumps(result.to_dict(), indent=2) + "\n"
