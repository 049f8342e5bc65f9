"""Renderers of a sweep (a list of :class:`~hybrid.report.PipelineReport`): table, CSV, JSON, Parquet."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hybrid.errors import InputError
from hybrid.render import units
from hybrid.render.ranges import range_note, seconds_with_range
from hybrid.render.table import format_table
from hybrid.sweep import has_audio, sweep_frame, sweep_records, sweep_stages

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.report import PipelineReport

SWEEP_SCHEMA = "wanmeter.sweep/1"
WORKLOAD_HEADERS = ["model", "size", "frames", "steps", "batch", "cfg"]
SIZED_HEADERS = ["seconds", "peak memory", "fits"]


def headers(reports: Sequence[PipelineReport]) -> list[str]:
    """The table's columns: the workload, FLOPs per stage and in total; sized: seconds, peak, fit."""
    sized = bool(reports) and reports[0].gpu is not None
    audio = ("audio",) if has_audio(reports) else ()
    return [*WORKLOAD_HEADERS, *audio, *sweep_stages(reports), "total", *(SIZED_HEADERS if sized else ())]


def cells(reports: Sequence[PipelineReport]) -> list[list[str]]:
    """One row of :func:`headers` per report, in human units."""
    stages = sweep_stages(reports)
    audio = has_audio(reports)
    return [
        [
            r.model,
            f"{r.workload.width}x{r.workload.height}",
            str(r.workload.frames),
            str(r.workload.steps),
            str(r.workload.batch),
            "on" if r.workload.cfg else "off",
            *((f"{r.workload.audio_seconds:g} s" if r.workload.audio_seconds is not None else "-",) if audio else ()),
            *(units.flops(r.stages[s].flops) if s in r.stages else "-" for s in stages),
            units.flops(r.total_flops),
            *(_sized_cells(r) if r.gpu is not None else ()),
        ]
        for r in reports
    ]


def _sized_cells(r: PipelineReport) -> list[str]:
    g = r.gpu
    assert g is not None
    return [seconds_with_range(g.seconds, g.seconds_range), units.nbytes(g.peak_memory_bytes),
            "yes" if g.fits else "no"]  # fmt: skip


def range_notes(reports: Sequence[PipelineReport]) -> list[str]:
    """What the seconds' ranges rest on: one line per distinct evidence (a sweep is one kind of run)."""
    from hybrid.ranges import range_evidence

    said = dict.fromkeys(range_evidence(r.gpu, r.optimised is not None) for r in reports if r.gpu is not None)
    return [range_note(s) for s in said]


def to_table(reports: Sequence[PipelineReport]) -> str:
    """One line per workload, numbers right-aligned; sized, the seconds' range and what it rests on."""
    columns = headers(reports)
    notes = range_notes(reports)
    table = format_table(columns, cells(reports), right=tuple(range(2, len(columns))))
    return "\n".join([table, *([""] if notes else []), *notes]) + "\n"


def to_csv(reports: Sequence[PipelineReport]) -> str:
    """:func:`~hybrid.sweep.sweep_records` as CSV (FLOPs as exact integers)."""
    text: str = sweep_frame(reports).to_csv(index=False)
    return text


def to_json(reports: Sequence[PipelineReport]) -> str:
    """``{"schema": "wanmeter.sweep/1", "rows": [record, ...]}``, with ``--optimise`` also the
    ``optimisations`` every row ran."""
    doc: dict[str, Any] = {"schema": SWEEP_SCHEMA, "rows": sweep_records(reports)}
    planned = next((r.optimised for r in reports if r.optimised is not None), None)
    if planned is not None:
        doc["optimisations"] = [o.to_dict() for o in planned.optimisations]
    return json.dumps(doc, indent=2) + "\n"


def to_parquet(reports: Sequence[PipelineReport]) -> bytes:
    """:func:`~hybrid.sweep.sweep_records` as a Parquet file; FLOPs as decimal strings (exact:
    Parquet's int64 overflows at extreme workloads). Needs pyarrow."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise InputError("format: parquet needs pyarrow (pip install 'wanmeter[parquet]')") from None
    frame = sweep_frame(reports)
    for col in frame.columns:
        if col.endswith("_flops"):
            frame[col] = frame[col].map(str)
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()
