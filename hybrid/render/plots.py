"""Plots of sweeps (matplotlib, Agg backend): stacked stage bars and per-knob scaling curves."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hybrid.files import write_atomic
from hybrid.pipelines import ALL_STAGES

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.report import PipelineReport
    from hybrid.sweep import Grid

STAGE_COLORS = {**{s.name: s.color for s in ALL_STAGES}, "total": "#333333"}
PFLOP = 10**15


def _label(r: PipelineReport) -> str:
    w = r.workload
    short = r.model.removeprefix("wan2.1-t2v-").removeprefix("wan2.1-")
    return (
        f"{short} {w.width}x{w.height} {w.frames}f {w.steps}st"
        + ("" if w.cfg else " nocfg")
        + (f" b{w.batch}" if w.batch > 1 else "")
        + (f" {w.audio_seconds:g}s audio" if w.audio_seconds is not None else "")
    )


def _knob_value(r: PipelineReport, knob: str) -> Any:
    w = r.workload
    if knob == "size":
        return w.width * w.height
    if knob == "model":
        return r.model
    return getattr(w, knob)


def _reference(reports: Sequence[PipelineReport], knob: str, varying: Sequence[str]) -> dict[str, Any]:
    """The other knobs' values the scaling panel holds fixed: each one's largest value (a knob only some models
    take, the audio's length, among those that take it)."""
    out: dict[str, Any] = {}
    for k in varying:
        values = [v for r in reports if (v := _knob_value(r, k)) is not None]
        if k not in (knob, "model") and values:
            out[k] = max(values)
    return out


def _pretty(r: PipelineReport, knob: str) -> str:
    w = r.workload
    if knob == "size":
        return f"{w.width}x{w.height}"
    return "on" if knob == "cfg" and w.cfg else "off" if knob == "cfg" else str(getattr(w, knob))


MODEL_STYLES: tuple[Literal["-", "--", ":", "-."], ...] = ("-", "--", ":", "-.")
KNOB_UNITS = {
    "size": "pixels per frame (width x height)",
    "frames": "video frames",
    "steps": "denoising steps",
    "batch": "videos per job",
    "text_len": "text tokens",
    "audio_seconds": "seconds of audio (speech-to-video)",
}


def _flops(r: PipelineReport, stage: str) -> int:
    """FLOPs of ``stage`` in ``r`` (0 where its pipeline lacks the stage)."""
    return r.stages[stage].flops if stage in r.stages else 0


MAX_BARS = 60
"""Workloads the per-workload panels draw at most: beyond, an even sample by total FLOPs (the
smallest and the largest included), so a sweep of any size stays a readable, bounded image
(at 90 dpi under 4,000 pixels a side)."""


def sample_for_bars(reports: Sequence[PipelineReport], most: int = MAX_BARS) -> list[PipelineReport]:
    """``reports`` if there are at most ``most``, else ``most`` of them evenly spaced in the order
    of their total FLOPs."""
    if len(reports) <= most:
        return list(reports)
    ranked = sorted(reports, key=lambda r: r.total_flops)
    step = (len(ranked) - 1) / (most - 1)
    return [ranked[round(i * step)] for i in range(most)]


def plot_sweep(reports: Sequence[PipelineReport], grid: Grid, path: Path) -> Path:
    """Write :func:`sweep_figure` as a PNG (atomically)."""
    write_atomic(path, _render(reports, grid, "png"), "plot")
    return path


def plot_sweep_svg(reports: Sequence[PipelineReport], grid: Grid) -> str:
    """:func:`sweep_figure` as an inline ``<svg>`` element (text as paths: no fonts needed)."""
    return inline_svg(sweep_figure(reports, grid))


def _render(reports: Sequence[PipelineReport], grid: Grid, fmt: str) -> bytes:
    return figure_bytes(sweep_figure(reports, grid), fmt)


def figure_bytes(fig: Any, fmt: str) -> bytes:
    """A matplotlib figure saved as ``fmt`` (``png``, ``svg``) at the plots' resolution, then closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, dpi=90, format=fmt)
    plt.close(fig)
    return buf.getvalue()


def inline_svg(fig: Any) -> str:
    """A figure as an ``<svg>`` element to put inside an HTML page (matplotlib's RDF metadata left out)."""
    text = figure_bytes(fig, "svg").decode("utf-8")
    text = text[text.index("<svg") :]
    start, end = text.find("<metadata>"), text.find("</metadata>")  # no use inline
    return text if start < 0 or end < 0 else text[:start] + text[end + len("</metadata>") :]


def sweep_figure(reports: Sequence[PipelineReport], grid: Grid) -> Any:
    """The sweep's figure: FLOPs per stage for every workload (stacked, absolute and as shares; at most
    :data:`MAX_BARS` of them, :func:`sample_for_bars`), then for each varying numeric knob the
    scaling of every stage and the total (log y), the other knobs held at their largest swept value,
    one line style per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from hybrid.sweep import sweep_stages

    stages = sweep_stages(reports)
    varying = grid.varying()
    knobs = [k for k in varying if k in KNOB_UNITS]
    knob_rows = (len(knobs) + 1) // 2
    sized = bool(reports) and all(r.gpu is not None for r in reports)
    top = 3 if sized else 2
    shown = sample_for_bars(reports)
    fig_w = max(14.0, 0.42 * len(shown) + 4)
    fig = plt.figure(figsize=(fig_w, 5.0 * (top + knob_rows)))
    spec = fig.add_gridspec(top + knob_rows, 2)

    labels = [_label(r) for r in shown]
    x = list(range(len(shown)))
    sampled = (
        ""
        if len(shown) == len(reports)
        else f" ({len(shown)} of {len(reports):,} workloads, evenly spaced by total FLOPs)"
    )
    for row, share in ((0, False), (1, True)):
        ax = fig.add_subplot(spec[row, :])
        bottom = [0.0] * len(shown)
        for s in stages:
            vals = [100 * _flops(r, s) / r.total_flops if share else _flops(r, s) / PFLOP for r in shown]
            ax.bar(x, vals, bottom=bottom, color=STAGE_COLORS[s], label=s, width=0.8)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=8)
        ax.set_xlim(-0.6, len(shown) - 0.4)
        ax.grid(axis="y", alpha=0.3)
        if share:
            ax.set_ylabel("share of the job's FLOPs (%)")
            ax.set_ylim(0, 100)
            ax.set_title("Share of each stage" + sampled)
        else:
            ax.set_ylabel("FLOPs per job (PFLOP)")
            ax.set_title("Wan job cost by stage (FlopCounterMode convention: 2 FLOPs per multiply-add)" + sampled)
            ax.legend(loc="upper left")

    if sized:
        _seconds_panel(fig.add_subplot(spec[2, :]), shown, labels, stages)
    models = sorted({r.model for r in reports})
    for i, knob in enumerate(knobs):
        ax = fig.add_subplot(spec[top + i // 2, i % 2])
        ref = _reference(reports, knob, varying)
        for m_idx, model in enumerate(models):
            members = [
                r for r in reports
                if r.model == model and all(_knob_value(r, k) in (v, None) for k, v in ref.items())
            ]  # fmt: skip
            members.sort(key=lambda r: _knob_value(r, knob))
            xs = [_knob_value(r, knob) for r in members]
            for s in (*stages, "total"):
                if s != "total" and not all(s in r.stages for r in members):
                    continue  # a stage this model's pipeline lacks (0 has no place on a log scale)
                ys = [(r.total_flops if s == "total" else _flops(r, s)) / PFLOP for r in members]
                ax.plot(
                    xs,
                    ys,
                    MODEL_STYLES[m_idx % len(MODEL_STYLES)],
                    marker="o",
                    color=STAGE_COLORS[s],
                    linewidth=2.2 if s == "total" else 1.5,
                )
        ax.set_yscale("log")
        ax.set_xlabel(KNOB_UNITS[knob])
        ax.set_ylabel("FLOPs per job (PFLOP, log scale)")
        held = ", ".join(f"{k} {_ref_text(k, v, reports)}" for k, v in ref.items())
        ax.set_title(f"Scaling with {knob}" + (f" ({held})" if held else ""), fontsize=10)
        ax.grid(alpha=0.3, which="both")
        handles = [Line2D([], [], color=STAGE_COLORS[s], marker="o", label=s) for s in (*stages, "total")]
        handles += [
            Line2D([], [], color="gray", linestyle=MODEL_STYLES[j % len(MODEL_STYLES)], label=m)
            for j, m in enumerate(models)
        ]
        ax.legend(handles=handles, fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def _ref_text(knob: str, value: Any, reports: Sequence[PipelineReport]) -> str:
    for r in reports:
        if _knob_value(r, knob) == value:
            return _pretty(r, knob)
    return str(value)


def _seconds_panel(ax: Any, reports: Sequence[PipelineReport], labels: list[str], stages: Sequence[str]) -> None:
    """Stacked seconds per stage on the sweep's GPU, and each job's peak memory against its capacity."""
    sizings = [r.gpu for r in reports if r.gpu is not None]
    g = sizings[0].gpu
    x = list(range(len(reports)))
    bottom = [0.0] * len(reports)
    for s in stages:
        vals = [z.stages[s].seconds if s in z.stages else 0.0 for z in sizings]
        ax.bar(x, vals, bottom=bottom, color=STAGE_COLORS[s], label=s, width=0.8)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=8)
    ax.set_xlim(-0.6, len(reports) - 0.4)
    ax.set_ylabel(f"seconds per job on one {g.name}")
    ax.grid(axis="y", alpha=0.3)
    mem = ax.twinx()
    mem.plot(x, [z.peak_memory_bytes / 2**30 for z in sizings], "kD", markersize=5, label="peak memory")
    mem.axhline(g.memory_gib, color="red", linestyle="--", linewidth=1, label=f"{g.memory_gib:g} GiB capacity")
    mem.set_ylabel("peak resident memory (GiB)")
    mem.set_ylim(0, max(g.memory_gib, *(z.peak_memory_bytes / 2**30 for z in sizings)) * 1.1)
    kinds = {e["kind"] for z in sizings for e in z.efficiency.values()}
    source = "timing calibration" if kinds == {"calibrated"} else "default efficiencies from public measurements"
    ax.set_title(f"Estimated seconds on {g.product} ({source}; roofline per op) and peak memory", fontsize=10)
    handles, names = ax.get_legend_handles_labels()
    more, more_names = mem.get_legend_handles_labels()
    ax.legend(handles + more, names + more_names, loc="upper left", fontsize=8)
