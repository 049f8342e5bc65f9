"""Self-contained HTML pages of a report and of a sweep: one file, styles and charts inline (charts
as SVG), nothing fetched from the network; it reads well printed and on a phone-width screen.

The report page holds the workload, the stage table with shares and the exact FLOP integers, the
components, a chart of the stages' shares and, with ``--gpu``, each stage's seconds, bound and
peak memory against the GPU's capacity (charted), then the warnings and assumptions. The sweep page
holds the sweep's table and its plots (:func:`hybrid.render.plots.plot_sweep`, drawn as SVG).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from hybrid.render import units
from hybrid.render.report import gpu_headers, gpu_numeric

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.report import PipelineReport
    from hybrid.sizing import GpuSizing
    from hybrid.sweep import Grid

STYLE = """
:root { --ink: #1d2330; --muted: #5b6474; --rule: #d9dde5; --warn: #8a5a00; --warn-bg: #fff6e0; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: var(--ink);
       margin: 0 auto; padding: 1rem; max-width: 72rem; line-height: 1.45; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; } h2 { font-size: 1.1rem; margin: 1.6rem 0 .5rem; }
.sub { color: var(--muted); margin: 0 0 1rem; }
dl.workload { display: grid; grid-template-columns: repeat(auto-fill, minmax(9rem, 1fr)); gap: .25rem 1rem; margin: 0; }
dl.workload dt { color: var(--muted); font-size: .8rem; } dl.workload dd { margin: 0; font-weight: 600; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { padding: .35rem .5rem; border-bottom: 1px solid var(--rule); text-align: left; vertical-align: top; }
th { font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code.exact { font-size: .75rem; color: var(--muted); word-break: break-all; }
svg { max-width: 100%; height: auto; display: block; }
figure { margin: 1rem 0; } figure.chart svg { max-width: 44rem; } figcaption { font-size: .9rem; margin-bottom: .3rem; }
.legend span { display: inline-block; margin-right: 1rem; font-size: .85rem; }
.legend i { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; vertical-align: -.1rem; }
ul.warnings li { background: var(--warn-bg); color: var(--warn); padding: .3rem .5rem; margin: .25rem 0;
                 list-style: none; }
ul.warnings { padding: 0; } ul.assumptions { padding-left: 1.2rem; font-size: .9rem; color: var(--muted); }
footer { margin-top: 2rem; font-size: .8rem; color: var(--muted); }
@media (max-width: 40rem) { body { padding: .6rem; } table { font-size: .8rem; } th, td { padding: .3rem; } }
@media print { body { max-width: none; padding: 0; } .scroll { overflow: visible; } h2 { break-after: avoid; }
               table, svg { break-inside: avoid; } }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _page(title: str, subtitle: str, body: Iterable[str]) -> str:
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body>",
            f"<h1>{_e(title)}</h1>",
            f'<p class="sub">{_e(subtitle)}</p>',
            *body,
            "</body>",
            "</html>",
        ]
    )


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = (), raw: bool = False
) -> str:
    """A table in a horizontally scrolling wrapper; cells are escaped unless ``raw``."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, c in enumerate(row):
            cls = ' class="num"' if i in numeric else ""
            cells.append(f"<td{cls}>{c if raw else _e(c)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _share_bar(parts: Sequence[tuple[str, int, str]], total: int, label: str) -> str:
    """A horizontal stacked bar of ``(name, value, colour)`` parts of ``total``, with a legend."""
    width, height = 600, 28
    x = 0.0
    rects = []
    for name, value, color in parts:
        w = width * value / total if total else 0.0
        rects.append(
            f'<rect x="{x:.2f}" y="0" width="{w:.2f}" height="{height}" fill="{color}">'
            f"<title>{_e(name)}: {_e(units.share(value, total))}</title></rect>"
        )
        x += w
    legend = "".join(
        f'<span><i style="background:{color}"></i>{_e(name)} {_e(units.share(value, total))}</span>'
        for name, value, color in parts
    )
    svg = (
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{_e(label)}" preserveAspectRatio="none" '
        f'style="width:100%;height:{height}px">{"".join(rects)}</svg>'
    )
    return f'<figure><figcaption>{_e(label)}</figcaption>{svg}<div class="legend">{legend}</div></figure>'


def _bars(rows: Sequence[tuple[str, float, str]], label: str, limit: float | None = None, unit: str = "") -> str:
    """Horizontal bars of ``(name, value, text)`` rows; ``limit`` draws a capacity line."""
    top = max([v for _, v, _ in rows] + [limit or 0.0]) or 1.0
    row_h, name_w, width = 26, 150, 600
    parts = []
    for i, (name, value, text) in enumerate(rows):
        y = i * row_h
        w = (width - name_w - 90) * value / top
        parts.append(
            f'<text x="0" y="{y + 17}" font-size="12">{_e(name)}</text>'
            f'<rect x="{name_w}" y="{y + 5}" width="{w:.2f}" height="16" fill="#4C72B0">'
            f"<title>{_e(text)}</title></rect>"
            f'<text x="{name_w + w + 6:.2f}" y="{y + 17}" font-size="12">{_e(text)}</text>'
        )
    total_h = row_h * len(rows) + 6
    if limit is not None:
        lx = name_w + (width - name_w - 90) * limit / top
        parts.append(
            f'<line x1="{lx:.2f}" y1="0" x2="{lx:.2f}" y2="{total_h}" stroke="#C44E52" stroke-width="2" '
            f'stroke-dasharray="4 3"><title>capacity {_e(unit)}</title></line>'
        )
    return (
        f'<figure class="chart"><figcaption>{_e(label)}</figcaption><svg viewBox="0 0 {width} {total_h}" role="img" '
        f'aria-label="{_e(label)}">{"".join(parts)}</svg></figure>'
    )


def _headline(r: PipelineReport) -> str:
    w = r.workload
    return f"{r.model}: {w.describe()}"


def _workload_list(r: PipelineReport) -> str:
    w = r.workload
    items = [("model", r.model), ("size", f"{w.width}x{w.height}"), ("frames", w.frames), ("steps", w.steps),
             ("batch", w.batch), ("text tokens", w.text_len), ("CFG", "on" if w.cfg else "off"),
             ("runtime", w.runtime.describe())]  # fmt: skip
    if w.ref_images:
        items.append(("reference images", w.ref_images))
    if w.strength is not None:
        items.append(("strength", f"{w.strength:g} ({w.denoising_steps} steps denoised)"))
    if w.spec.pipeline_def.segment_frames is not None:
        whole, tail = w.spec.pipeline_def.segment_frames, w.last_segment_frames
        segments = f"{w.segments}: {w.segments - 1} of {whole} frames, one of {tail}" if tail else f"{w.segments} of"
        items.append(("segments", segments if tail else f"{segments} {whole} frames"))
    if w.mode is not None:
        items.append(("mode", w.mode))
    if w.spec.pipeline_def.relighting_lora_rank is not None:
        lora = w.spec.pipeline_def.relighting_lora_rank
        items.append(("relighting LoRA", f"rank {lora}" if w.relighting_lora else "none"))
    if w.audio_seconds is not None:
        clips = f"{w.segments} clip{'s' if w.segments > 1 else ''}"
        items.append(("audio", f"{w.audio_seconds:g} s: {clips} of {w.frames} frames"))
        items.append(("pose video", "yes: each clip's frames encoded" if w.pose_video else "none"))
    return '<dl class="workload">' + "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in items) + "</dl>"


def _gpu_section(g: GpuSizing) -> list[str]:
    layout = f", per rank of {g.deployment.describe()}" if g.deployment.parallel else ""
    parallel = g.deployment.parallel
    rows = []
    for name, s in g.stages.items():
        comm = [f"{s.comm_seconds:,.2f}"] if parallel else []
        rows.append([_e(name), f"{s.seconds:,.2f}", _e(s.bound), *comm, _e(units.nbytes(s.peak_memory_bytes)),
                     _e(units.nbytes(s.peak_memory_bytes_materialized))])  # fmt: skip
    comm_total = [f"{g.comm_seconds:,.2f}"] if parallel else []
    rows.append(["<strong>total</strong>", f"<strong>{g.seconds:,.2f}</strong>", "", *comm_total,
                 f"<strong>{_e(units.nbytes(g.peak_memory_bytes))}</strong>", ""])  # fmt: skip
    capacity = g.gpu.memory_bytes
    fits = "fits" if g.fits else "does not fit"
    memory = [(n, s.peak_memory_bytes / 2**30, units.nbytes(s.peak_memory_bytes)) for n, s in g.stages.items()]
    seconds = [(n, s.seconds, f"{s.seconds:,.2f} s") for n, s in g.stages.items()]
    return [
        f"<h2>On {_e(g.gpu.product)}{_e(layout)}</h2>",
        f'<p class="sub">{_e(g.runtime.describe())}; timing calibration: {_e(g.calibration)}; the job {fits} in '
        f"{_e(units.nbytes(capacity))}</p>",
        _table(gpu_headers(g), rows, gpu_numeric(g), raw=True),
        _bars(seconds, "Seconds per stage"),
        _bars(
            memory,
            f"Peak memory per stage against the {units.nbytes(capacity)} of the GPU (dashed)",
            capacity / 2**30,
            units.nbytes(capacity),
        ),
    ]


def report_html(r: PipelineReport) -> str:
    """The report as one self-contained HTML page."""
    total = r.total_flops
    stage_rows = [
        [_e(name), str(s.calls), _e(units.flops(s.flops_per_call)),
         f'{_e(units.flops(s.flops))}<br><code class="exact">{s.flops}</code>', _e(units.share(s.flops, total))]
        for name, s in r.stages.items()
    ]  # fmt: skip
    exact_total = f'<strong>{_e(units.flops(total))}</strong><br><code class="exact">{total}</code>'
    stage_rows.append(["<strong>total</strong>", "", "", exact_total, "100%"])
    from hybrid.render.plots import STAGE_COLORS

    parts = [(name, s.flops, STAGE_COLORS.get(name, "#888888")) for name, s in r.stages.items()]
    comp_rows = [
        [name, comp, units.flops(flops * s.calls), units.share(flops * s.calls, s.flops)]
        for name, s in r.stages.items()
        for comp, flops in s.components_per_call.items()
    ]
    body = [
        "<h2>Workload</h2>",
        _workload_list(r),
        "<h2>Stages</h2>",
        _table(["stage", "runs", "FLOPs per run", "FLOPs (exact below)", "share"], stage_rows, (1, 2, 3, 4), raw=True),
        _share_bar(parts, total, "Share of the job's FLOPs by stage"),
        "<h2>Components</h2>",
        _table(["stage", "component", "FLOPs", "of stage"], comp_rows, (2, 3)),
    ]
    if r.gpu is not None:
        body += _gpu_section(r.gpu)
    warnings = [*r.warnings, *(r.gpu.warnings if r.gpu else ())]
    assumptions = [*r.assumptions, *(r.gpu.assumptions if r.gpu else ())]
    if warnings:
        body += ["<h2>Warnings</h2>", '<ul class="warnings">', *(f"<li>{_e(w)}</li>" for w in warnings), "</ul>"]
    body += ["<h2>Assumptions</h2>", '<ul class="assumptions">', *(f"<li>{_e(a)}</li>" for a in assumptions), "</ul>"]
    versions = ", ".join(f"{k} {v}" for k, v in r.to_dict()["versions"].items())
    body.append(f"<footer>wanmeter report; FLOPs as torch's FlopCounterMode counts them; {_e(versions)}</footer>")
    return _page(f"wanmeter report: {r.model}", _headline(r), body) + "\n"


def sweep_html(reports: Sequence[PipelineReport], grid: Grid) -> str:
    """A sweep as one self-contained HTML page: its table and its plots as inline SVG."""
    from hybrid.render import sweep
    from hybrid.render.plots import plot_sweep_svg

    table_headers = sweep.headers(reports)

    models = sorted({r.model for r in reports})
    body = [
        "<h2>Plots</h2>",
        plot_sweep_svg(reports, grid),
        f"<h2>{len(reports):,} workloads</h2>",
        _table(table_headers, sweep.cells(reports), tuple(range(2, len(table_headers)))),
        *(f"<p>{_e(note)}</p>" for note in sweep.range_notes(reports)),
        "<footer>wanmeter sweep; FLOPs as torch's FlopCounterMode counts them</footer>",
    ]
    return _page(f"wanmeter sweep: {', '.join(models)}", f"{len(reports):,} workloads", body) + "\n"
