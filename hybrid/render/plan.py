"""Renderers of a :class:`~hybrid.plan.Plan`: table, markdown, CSV, JSON."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

from hybrid.render import units
from hybrid.render.table import format_table

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.plan import Plan

HEADERS = ["rank", "layout", "seconds", "GPU-seconds", "comm seconds", "peak memory per rank", "fits"]
RIGHT = (0, 2, 3, 4, 5)


def _cells(p: Plan) -> list[list[str]]:
    rows = []
    for i, c in enumerate(p.ranked, 1):
        s = c.sizing
        assert s is not None
        fits = "yes" if c.fits else "no"
        rows.append([str(i), c.deployment.describe(), f"{s.seconds:,.1f}", f"{s.gpu_seconds:,.1f}",
                     f"{s.comm_seconds:,.1f}", units.nbytes(s.peak_memory_bytes), fits])  # fmt: skip
    return rows


def _headline(p: Plan) -> str:
    w = p.workload
    return (
        f"{w.model}: {w.width}x{w.height}, {w.frames} frames, {w.steps} steps, batch {w.batch}, on up to "
        f"{p.gpus} x {p.gpu} ({w.runtime.describe()}), ranked by {p.objective}"
    )


def _summary(p: Plan) -> list[str]:
    best = p.best
    lines = [f"best: {best.deployment.describe()}" if best else "best: none fits the GPU's memory"]
    reasons: dict[str, int] = {}
    for c in p.rejected:
        reasons[c.rejected] = reasons.get(c.rejected, 0) + 1
    lines += [f"rejected ({n} layout{'s' if n > 1 else ''}): {why}" for why, n in reasons.items()]
    lines.append("cfg-parallel: not ranked (no modelled runtime runs it)")
    return lines


def to_table(p: Plan) -> str:
    return "\n".join([_headline(p), "", format_table(HEADERS, _cells(p), right=RIGHT), "", *_summary(p)]) + "\n"


def to_markdown(p: Plan) -> str:
    align = ["---:" if i in RIGHT else "---" for i in range(len(HEADERS))]
    lines = [
        f"### wanmeter plan: {_headline(p)}",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "| " + " | ".join(align) + " |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in _cells(p)]
    return "\n".join([*lines, "", *(f"- {s}" for s in _summary(p))]) + "\n"


def to_csv(p: Plan) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["rank", "gpus", "ulysses", "ring", "fsdp", "seconds", "gpu_seconds", "comm_seconds",
                     "peak_memory_bytes", "fits"])  # fmt: skip
    for i, c in enumerate(p.ranked, 1):
        s, d = c.sizing, c.deployment
        assert s is not None
        writer.writerow([i, d.gpus, d.ulysses, d.ring, ",".join(d.fsdp), s.seconds, s.gpu_seconds, s.comm_seconds,
                         s.peak_memory_bytes, c.fits])  # fmt: skip
    return buf.getvalue()


def to_json(p: Plan) -> str:
    return json.dumps(p.to_dict(), indent=2) + "\n"
