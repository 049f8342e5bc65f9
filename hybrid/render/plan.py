"""Renderers of a :class:`~hybrid.plan.Plan`: table, markdown, CSV, JSON."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

from hybrid.render import units
from hybrid.render.ranges import range_note, seconds_with_range
from hybrid.render.table import format_table

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.plan import Plan

ALTERNATIVES_SHOWN = 5
"""Layouts that fit with a change a table lists (the JSON has every one)."""
HEADERS = ["rank", "layout", "seconds", "GPU-seconds", "comm seconds", "peak memory per rank", "fits"]
RIGHT = (0, 2, 3, 4, 5)
CSV_HEADERS = ["rank", "gpus", "ulysses", "ring", "fsdp", "optimisations", "seconds", "seconds_low", "seconds_high",
               "gpu_seconds", "gpu_seconds_low", "gpu_seconds_high", "comm_seconds", "range_evidence",
               "peak_memory_bytes", "fits", "usd_per_video", "usd_per_video_low", "usd_per_video_high"]  # fmt: skip
"""The CSV's columns: a time's range as ``<figure>_low`` and ``_high`` (a report's ``seconds_range``
``low`` and ``high``), and what the ranges rest on."""


def _headers(p: Plan) -> list[str]:
    """:data:`HEADERS`, with the optimisations each row runs after the layout where sets are tried, and dollars
    per video after the GPU-seconds where there is a price."""
    headers = [*HEADERS[:2], "optimisations", *HEADERS[2:]] if p.tried else list(HEADERS)
    if p.price is not None:
        at = headers.index("GPU-seconds") + 1
        headers.insert(at, "$ per video")
    return headers


def _right(p: Plan) -> tuple[int, ...]:
    headers = _headers(p)
    return tuple(i for i, h in enumerate(headers) if h not in ("layout", "optimisations", "fits"))


def _cells(p: Plan) -> list[list[str]]:
    rows = []
    for i, c in enumerate(p.ranked, 1):
        s = c.sizing
        assert s is not None
        fits = "yes" if c.fits else "no"
        cost = [units.usd_with_range(s.cost.usd_per_video, s.cost.usd_per_video_range)] if s.cost else []
        rows.append([str(i), c.deployment.describe(), *([c.label] if p.tried else []),
                     seconds_with_range(s.seconds, s.seconds_range),
                     seconds_with_range(s.gpu_seconds, c.gpu_seconds_range), *cost, f"{s.comm_seconds:,.1f}",
                     units.nbytes(s.peak_memory_bytes), fits])  # fmt: skip
    return rows


def _range_notes(p: Plan) -> list[str]:
    """What the ranges rest on, per evidence, with the GPU counts of the layouts it covers."""

    counts: dict[str, list[int]] = {}
    for c in p.ranked:
        assert c.sizing is not None
        counts.setdefault(c.range_evidence, []).append(c.deployment.gpus)
    notes = []
    for said, gpus in counts.items():
        lo, hi = min(gpus), max(gpus)
        rows = f"{lo} GPU{'s' if lo > 1 else ''}" if lo == hi else f"{lo}-{hi} GPUs"
        notes.append(range_note(said, rows if len(counts) > 1 else ""))
    return notes


def _headline(p: Plan) -> str:
    w = p.workload
    optimised = f", --optimise {','.join(o.text() for o in p.optimisations)}" if p.optimisations else ""
    if p.tried:
        optimised = f", the baseline and {len(p.tried) - 1} optimisation set{'s' if len(p.tried) > 2 else ''}"
    return (
        f"{w.model}: {w.describe()}, on up to "
        f"{p.gpus} x {p.gpu} ({w.runtime.describe()}{optimised}), ranked by {p.objective}"
    )


def _summary(p: Plan) -> list[str]:
    best = p.best
    if best is None:
        lines = ["best: none fits the GPU's memory" + (" as asked" if p.alternatives else "")]
        if p.alternatives and p.ranked:
            a, asked = p.alternatives[0], p.ranked[0]
            assert a.sizing is not None and asked.sizing is not None
            lines.append(
                f"fits with a change: {a.deployment.describe()} with {a.changes}: {a.sizing.seconds:,.1f} s, "
                f"{units.nbytes(a.sizing.peak_memory_bytes)} per rank; gave up: {asked.deployment.describe()} as "
                f"asked, {asked.sizing.seconds:,.1f} s but {units.nbytes(asked.sizing.peak_memory_bytes)} per rank"
            )
    else:
        lines = [f"best: {best.deployment.describe()}" + (f", {best.label}" if p.tried else "")]
    if p.price is not None:
        lines.append(f"price: {units.usd(p.price.usd_per_gpu_hour)} per GPU-hour on {p.gpu} ({p.price.basis})")
    lines += [f"refused: {text}: {why}" for text, why in p.refused]
    lines += [f"caveat: {c}" for c in p.caveats()] if p.tried else []
    reasons: dict[str, int] = {}
    for c in p.rejected:
        reasons[c.rejected] = reasons.get(c.rejected, 0) + 1
    lines += _range_notes(p)
    lines += [f"rejected ({n} layout{'s' if n > 1 else ''}): {why}" for why, n in reasons.items()]
    lines.append("cfg-parallel: not ranked (no modelled runtime runs it)")
    return lines


def to_table(p: Plan) -> str:
    table = format_table(_headers(p), _cells(p), right=_right(p))
    parts = [_headline(p), "", table, "", *_summary(p)]
    if p.alternatives:
        shown = p.alternatives[:ALTERNATIVES_SHOWN]
        rows = [[str(i), c.deployment.describe(), c.changes, f"{c.sizing.seconds:,.1f}",
                 units.nbytes(c.sizing.peak_memory_bytes)] for i, c in enumerate(shown, 1) if c.sizing]  # fmt: skip
        more = len(p.alternatives) - len(shown)
        rest = f"; {more} more in the JSON" if more else ""
        parts += ["", f"layouts that fit with a change (best {len(shown)}{rest}):",
                  format_table(["rank", "layout", "changes", "seconds", "peak memory per rank"], rows,
                               right=(0, 3, 4))]  # fmt: skip
    return "\n".join(parts) + "\n"


def to_markdown(p: Plan) -> str:
    headers, right = _headers(p), _right(p)
    align = ["---:" if i in right else "---" for i in range(len(headers))]
    lines = [
        f"### wanmeter plan: {_headline(p)}",
        "",
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join(align) + " |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in _cells(p)]
    return "\n".join([*lines, "", *(f"- {s}" for s in _summary(p))]) + "\n"


def to_csv(p: Plan) -> str:
    """One row per ranked layout; a range's ends empty where it has none (``range_evidence`` says why)."""

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_HEADERS)
    for i, c in enumerate(p.ranked, 1):
        s, d = c.sizing, c.deployment
        assert s is not None
        rng, gpu_rng = s.seconds_range or {}, c.gpu_seconds_range or {}
        cost = s.cost
        usd_rng = (cost.usd_per_video_range if cost else None) or {}
        writer.writerow([i, d.gpus, d.ulysses, d.ring, ",".join(d.fsdp), ",".join(o.text() for o in c.optimisations),
                         s.seconds, rng.get("low"), rng.get("high"),
                         s.gpu_seconds, gpu_rng.get("low"), gpu_rng.get("high"), s.comm_seconds, c.range_evidence,
                         s.peak_memory_bytes, c.fits, cost.usd_per_video if cost else None, usd_rng.get("low"),
                         usd_rng.get("high")])  # fmt: skip
    return buf.getvalue()


def to_json(p: Plan) -> str:
    return json.dumps(p.to_dict(), indent=2) + "\n"
