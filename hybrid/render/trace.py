"""Renderers of a :class:`~hybrid.trace.TraceResult`: table, CSV, JSON."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

from hybrid.render import units
from hybrid.render.table import format_table
from hybrid.rows import ROW_COLUMNS, group_flops

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.trace import TraceResult


def to_json(result: TraceResult) -> str:
    """``wanmeter.trace/1`` document, FLOPs as exact JSON integers."""
    return json.dumps(result.to_dict(), indent=2) + "\n"


def to_csv(result: TraceResult) -> str:
    """One line per row, all stages; shapes as ``1x16x21x90x160`` joined with ``;``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(ROW_COLUMNS)
    for r in result.rows:
        d = r.to_dict()
        d["input_shapes"] = ";".join("x".join(map(str, s)) for s in r.input_shapes)
        d["output_shape"] = ";".join("x".join(map(str, s)) for s in r.output_shape)
        writer.writerow([d[c] for c in ROW_COLUMNS])
    return buf.getvalue()


def to_table(result: TraceResult, top: int = 8) -> str:
    """Per-stage summary (one call and the whole job), then each stage's costliest ops."""
    w = result.workload
    head = (
        f"wanmeter trace: {result.model}  {w.width}x{w.height}, {w.frames} frames, {w.steps} steps, "
        f"batch {w.batch}, text_len {w.text_len}, cfg {'on' if w.cfg else 'off'}"
        + (f", {w.ref_images} reference image{'s' if w.ref_images > 1 else ''}" if w.ref_images else "")
        + (f"; the transformer as one rank of {result.deployment.describe()}" if result.deployment.parallel else "")
    )
    job_total = sum(st.flops * st.calls for st in result.stages.values())
    summary = []
    sent: dict[str, int] = {}  # collectives: bytes the rank sends per call (its byte columns: sent, received)
    for name, st in result.stages.items():
        read = sum(r.bytes_read for r in st.rows if r.category != "collective")
        written = sum(r.bytes_written for r in st.rows if r.category != "collective")
        comm = [r for r in st.rows if r.category == "collective"]
        if comm:
            sent[name] = sum(r.bytes_read for r in comm)
        summary.append(
            [
                name,
                st.module_class,
                st.dtype,
                units.flops(st.flops),
                str(st.calls),
                units.flops(st.flops * st.calls),
                units.share(st.flops * st.calls, job_total),
                units.nbytes(read),
                units.nbytes(written),
                units.nbytes(st.peak_activation_bytes),
                units.nbytes(st.peak_activation_bytes_materialized),
            ]
        )
    parts = [
        head,
        "",
        format_table(
            [
                "stage",
                "module",
                "dtype",
                "FLOPs/call",
                "calls",
                "FLOPs/job",
                "share",
                "read/call",
                "written/call",
                "peak act.",
                "materialised",
            ],
            summary,
            right=(3, 4, 5, 6, 7, 8, 9, 10),
        ),
    ]
    if len(result.stages) > 1:
        parts.append(f"\ntotal (job): {units.flops(job_total)} ({job_total} FLOPs)")
    for name, n in sent.items():
        parts.append(
            f"{name}: the rank sends {units.nbytes(n)} to the others per call in collectives (and receives as much)"
        )
    parts.append(
        "peak act.: largest sum of live storages one call allocates (eager, fused attention; weights excluded); "
        "materialised: the same with attention scores materialised (PyTorch's math backend)"
    )
    for name, st in result.stages.items():
        by_op = group_flops(st.rows, "op")
        calls: dict[str, int] = {}
        for r in st.rows:
            calls[r.op] = calls.get(r.op, 0) + r.calls
        ranked = sorted((op for op, f in by_op.items() if f), key=lambda op: -by_op[op])[:top]
        body = [[op, str(calls[op]), units.flops(by_op[op]), units.share(by_op[op], st.flops)] for op in ranked]
        parts.append(f"\n{name}: FLOPs by op (one call)")
        parts.append(format_table(["op", "calls", "FLOPs", "share"], body, right=(1, 2, 3)))
    if result.unsupported_ops:
        parts.append("\nunsupported ops (ran, not costed):")
        for op, info in sorted(result.unsupported_ops.items()):
            parts.append(f"  {op}: {info['calls']} calls ({info['stage']}, e.g. {info['module'] or '(root)'})")
    else:
        parts.append("\nunsupported ops: none")
    for msg in result.warnings:
        parts.append(f"warning: {msg}")
    return "\n".join(parts) + "\n"
