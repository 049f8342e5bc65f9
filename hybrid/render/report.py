"""Renderers of a :class:`~hybrid.report.PipelineReport`: table, markdown, CSV, JSON."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

from hybrid.render import units
from hybrid.render.table import format_table

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.report import PipelineReport
    from hybrid.sizing import GpuSizing


def _headline(r: PipelineReport) -> str:
    w = r.workload
    return f"{r.model}: {w.describe()}, text_len {w.text_len}, CFG {'on' if w.cfg else 'off'}" + (
        f", {w.ref_images} reference image{'s' if w.ref_images > 1 else ''}" if w.ref_images else ""
    )


def _stage_cells(r: PipelineReport) -> list[list[str]]:
    total = r.total_flops
    cells = [
        [name, str(s.calls), units.flops(s.flops_per_call), units.flops(s.flops), units.share(s.flops, total)]
        for name, s in r.stages.items()
    ]
    cells.append(["total", "", "", units.flops(total), units.share(total, total)])
    return cells


def _component_cells(r: PipelineReport) -> list[list[str]]:
    total = r.total_flops
    return [
        [name, comp, units.flops(f), units.share(f, s.flops), units.share(f, total)]
        for name, s in r.stages.items()
        for comp, f in sorted(s.components.items(), key=lambda kv: -kv[1])
    ]


STAGE_HEADERS = ["stage", "runs", "FLOPs/run", "FLOPs", "share"]
COMPONENT_HEADERS = ["stage", "component", "FLOPs", "of stage", "of total"]


def to_table(r: PipelineReport) -> str:
    """Readable plain-text report with human units and shares."""
    parts = [
        f"wanmeter report  {_headline(r)}",
        "",
        format_table(STAGE_HEADERS, _stage_cells(r), right=(1, 2, 3, 4)),
        "",
        f"total: {r.total_flops} FLOPs",
        "",
        format_table(COMPONENT_HEADERS, _component_cells(r), right=(2, 3, 4)),
    ]
    if r.gpu is not None:
        parts += ["", *_gpu_lines(r.gpu), format_table(gpu_headers(r.gpu), _gpu_cells(r.gpu), right=gpu_numeric(r.gpu))]
    if r.baseline is not None and r.gpu is not None:
        parts += ["", *_optimised_lines(r), format_table(OPTIMISED_HEADERS, _optimised_cells(r), right=(1, 2, 3, 4, 5))]
    warnings, assumptions = _notes(r)
    if warnings:
        parts += ["", *(f"warning: {m}" for m in warnings)]
    parts += ["", "assumptions:", *(f"  - {a}" for a in assumptions)]
    return "\n".join(parts) + "\n"


OPTIMISED_HEADERS = ["stage", "baseline seconds", "optimised seconds", "speed-up", "baseline peak", "optimised peak"]


def _speed_up(baseline: float, optimised: float) -> str:
    return f"x{baseline / optimised:,.2f}" if optimised > 0 else ("-" if baseline == 0 else "skipped")


def _optimised_lines(r: PipelineReport) -> list[str]:
    """What the optimisations are and the whole job's speed-up over the baseline."""
    assert r.optimised is not None and r.baseline is not None and r.gpu is not None
    names = ",".join(o.text() for o in r.optimised.optimisations)
    lines = [
        f"--optimise {names}: {r.gpu.seconds:,.1f} s against the baseline's {r.baseline.seconds:,.1f} s "
        f"({_speed_up(r.baseline.seconds, r.gpu.seconds)}); the seconds above are the optimised job's, with no "
        "range (the published runs the ranges rest on are baselines)"
    ]
    for o in r.optimised.optimisations:
        d = o.definition
        lines.append(f"  {o.text()}: {d.summary}" + (f"; quality: {d.caveat}" if d.caveat else ""))
    return lines


def _optimised_cells(r: PipelineReport) -> list[list[str]]:
    assert r.baseline is not None and r.gpu is not None
    cells = []
    for name, b in r.baseline.stages.items():
        o = r.gpu.stages.get(name)
        seconds = o.seconds if o is not None else 0.0
        peak = o.peak_memory_bytes if o is not None else 0
        cells.append([name, f"{b.seconds:,.2f}", f"{seconds:,.2f}", _speed_up(b.seconds, seconds),
                      units.nbytes(b.peak_memory_bytes), units.nbytes(peak)])  # fmt: skip
    cells.append(["total", f"{r.baseline.seconds:,.2f}", f"{r.gpu.seconds:,.2f}",
                  _speed_up(r.baseline.seconds, r.gpu.seconds), units.nbytes(r.baseline.peak_memory_bytes),
                  units.nbytes(r.gpu.peak_memory_bytes)])  # fmt: skip
    return cells


GPU_HEADERS = ["stage", "seconds", "bound", "peak memory", "peak, scores materialised"]
PARALLEL_HEADERS = ["stage", "seconds", "bound", "comm seconds", "peak memory per rank", "peak, scores materialised"]


def gpu_headers(g: GpuSizing) -> list[str]:
    """The sizing table's columns (a comm-seconds column and per-rank memory on several GPUs)."""
    return PARALLEL_HEADERS if g.deployment.parallel else GPU_HEADERS


def gpu_numeric(g: GpuSizing) -> tuple[int, ...]:
    """The sizing table's numeric (right-aligned) columns."""
    return (1, 3, 4, 5) if g.deployment.parallel else (1, 3, 4)


def _gpu_lines(g: GpuSizing) -> list[str]:
    from hybrid.sizing import describe_rates  # loaded already: g was sized

    effs = describe_rates(g.efficiency)
    lines = [
        f"on {g.gpu.product} ({g.runtime.describe()}; attention: {g.attention_kernel}; timing calibration: "
        f"{g.calibration})",
        f"efficiencies: {effs}",
    ]
    r = g.seconds_range
    if r is not None:
        lines.append(
            f"seconds: {g.seconds:,.0f} s ({r['low']:,.0f}-{r['high']:,.0f}): the range published runs fall in around "
            f"the model's time, from its error on {r['basis']}"
        )
    per = " per GPU" if g.deployment.parallel else ""
    lines.append(
        f"memory: {units.nbytes(g.peak_memory_bytes)} at its peak{per}, of the "
        f"{units.nbytes(g.gpu.memory_bytes)} of one {g.gpu.name}: {'fits' if g.fits else 'does not fit'}"
    )
    if g.cost is not None:
        c = g.cost
        lines.append(
            f"cost: {units.usd_with_range(c.usd_per_video, c.usd_per_video_range)} per video at "
            f"{units.usd(c.price.usd_per_gpu_hour)} per GPU-hour ({c.price.basis})"
        )
    if g.deployment.parallel:
        link = g.gpu_link
        source = "calibrate-comm" if link.get("kind") == "calibrated" else f"{link['value']:g} of {link['link']}"
        lines.append(
            f"per rank of {g.deployment.describe()}: collectives at {link['bytes_per_s'] / 1e9:g} GB/s "
            f"({source}), {link['latency_s'] * 1e6:g} us per call; {g.gpu_seconds:,.2f} GPU-seconds"
        )
    return lines


def _gpu_cells(g: GpuSizing) -> list[list[str]]:
    parallel = g.deployment.parallel
    cells = []
    for name, s in g.stages.items():
        comm = [f"{s.comm_seconds:,.2f}"] if parallel else []
        cells.append([name, f"{s.seconds:,.2f}", s.bound, *comm, units.nbytes(s.peak_memory_bytes),
                      units.nbytes(s.peak_memory_bytes_materialized)])  # fmt: skip
    comm_total = [f"{g.comm_seconds:,.2f}"] if parallel else []
    cells.append(["total", f"{g.seconds:,.2f}", "", *comm_total, units.nbytes(g.peak_memory_bytes), ""])
    return cells


def _notes(r: PipelineReport) -> tuple[list[str], list[str]]:
    """Warnings and assumptions of the report and, with ``--gpu``, of the sizing."""
    if r.gpu is None:
        return list(r.warnings), list(r.assumptions)
    return [*r.warnings, *r.gpu.warnings], [*r.assumptions, *r.gpu.assumptions]


def _md_table(headers: list[str], rows: list[list[str]], right: tuple[int, ...]) -> str:
    align = ["---:" if i in right else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(r: PipelineReport) -> str:
    """GitHub-flavoured markdown (reads well in a pull-request comment)."""
    parts = [
        f"### wanmeter report: {_headline(r)}",
        "",
        _md_table(STAGE_HEADERS, _stage_cells(r), (1, 2, 3, 4)),
        "",
        f"Total: **{units.flops(r.total_flops)}** (`{r.total_flops}` FLOPs)",
        "",
        "<details><summary>Components</summary>",
        "",
        _md_table(COMPONENT_HEADERS, _component_cells(r), (2, 3, 4)),
        "",
        "</details>",
    ]
    if r.gpu is not None:
        parts += [
            "",
            *(f"{line}  " for line in _gpu_lines(r.gpu)),
            "",
            _md_table(gpu_headers(r.gpu), _gpu_cells(r.gpu), gpu_numeric(r.gpu)),
        ]
    if r.baseline is not None and r.gpu is not None:
        parts += ["", *(f"{line}  " for line in _optimised_lines(r)), "",
                  _md_table(OPTIMISED_HEADERS, _optimised_cells(r), (1, 2, 3, 4, 5))]  # fmt: skip
    warnings, assumptions = _notes(r)
    if warnings:
        parts += ["", *(f"> **warning:** {m}" for m in warnings)]
    parts += ["", "Assumptions:", "", *(f"- {a}" for a in assumptions)]
    return "\n".join(parts) + "\n"


def to_csv(r: PipelineReport) -> str:
    """One line per (stage, component); exact integers. With ``--gpu``, each line also carries its
    stage's seconds, bound and peak memory on that GPU."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    gpu_headers = ["stage_seconds", "stage_bound", "stage_peak_memory_bytes"] if r.gpu is not None else []
    writer.writerow(["stage", "component", "runs", "flops_per_run", "flops", "share", *gpu_headers])
    total = r.total_flops
    for s in r.stages.values():
        sized = r.gpu.stages[s.stage] if r.gpu is not None else None
        extra = [sized.seconds, sized.bound, sized.peak_memory_bytes] if sized is not None else []
        for comp, per_run in s.components_per_call.items():
            f = per_run * s.calls
            writer.writerow([s.stage, comp, s.calls, per_run, f, f"{f / total:.9g}" if total else "0", *extra])
    return buf.getvalue()


def document(r: PipelineReport) -> dict[str, Any]:
    """The ``wanmeter.report/1`` document: the FLOP report, with the GPU sizing (if any) merged in
    (``gpu``; per stage and in ``total`` its seconds, bound and memory; its warnings and
    assumptions after the report's)."""
    doc = r.to_dict()
    if r.gpu is not None:
        sized = r.gpu.to_dict()
        doc["gpu"] = sized["gpu"]
        if "deployment" in sized:
            doc["deployment"] = sized["deployment"]
        for name, stage in sized["stages"].items():
            doc["stages"][name].update(stage)
        doc["total"].update(sized["total"])
        doc["warnings"] = [*doc["warnings"], *sized["warnings"]]
        doc["assumptions"] = [*doc["assumptions"], *sized["assumptions"]]
    if r.optimised is not None and r.baseline is not None and r.gpu is not None:
        base = r.baseline
        doc["optimisations"] = [o.to_dict() for o in r.optimised.optimisations]
        doc["baseline"] = {
            "workload": r.optimised.asked.to_dict(),
            "stages": {
                n: {"seconds": s.seconds, "peak_memory_bytes": s.peak_memory_bytes} for n, s in base.stages.items()
            },
            "total": {"seconds": base.seconds, "peak_memory_bytes": base.peak_memory_bytes},
            "speed_up": base.seconds / r.gpu.seconds if r.gpu.seconds > 0 else None,
        }
    return doc


def to_json(r: PipelineReport) -> str:
    """The ``wanmeter.report/1`` document (:func:`document`) as indented JSON."""
    return json.dumps(document(r), indent=2) + "\n"
