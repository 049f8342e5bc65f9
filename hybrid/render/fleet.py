"""Renderers of a :class:`~hybrid.fleet.Fleet`: table, JSON, CSV, the cost-latency frontier as PNG or in HTML."""

from __future__ import annotations

import csv
import html
import io
import json
from typing import TYPE_CHECKING, Any

from hybrid.render import units
from hybrid.render.table import format_table

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.fleet import Fleet, Pool

HEADERS = ["gpu", "GPUs", "per job", "$/hour", "$ per video", "p50 s", "p95 s", "p99 s", "target s (95% CI)",
           "utilisation", "videos/h", "meets"]  # fmt: skip
CSV_HEADERS = ["gpu", "gpus", "gpus_per_job", "groups", "usd_per_hour", "usd_per_video", "p50_s", "p95_s", "p99_s",
               "target_s", "target_half_width_s", "utilisation", "throughput_per_hour", "meets", "layouts"]  # fmt: skip


def _usd(v: float | None) -> str:
    return "-" if v is None else units.usd(v)


def _cells(p: Pool) -> list[str]:
    return [p.gpu, str(p.gpus), str(p.gpus_per_job), _usd(p.usd_per_hour), _usd(p.usd_per_video), f"{p.p50:,.0f}",
            f"{p.p95:,.0f}", f"{p.p99:,.0f}",
            f"{p.target:,.0f}" + ("" if p.target_half_width is None else f" +- {p.target_half_width:,.0f}"),
            f"{p.utilisation:.0%}", f"{p.throughput_per_hour:,.0f}", "yes" if p.meets else "no"]  # fmt: skip


def _headline(f: Fleet) -> str:
    mix = "; ".join(f"{k.share:.0%} {k.name}" for k in f.kinds)
    runs = (
        f"a trace of {f.trace[0]:,} requests over {f.trace[1]:,.0f} s replayed"
        if f.trace
        else f"{f.replications} seeded replications of {f.jobs:,} requests (seed {f.seed})"
    )
    optimised = f", --optimise {','.join(o.text() for o in f.optimisations)}" if f.optimisations else ""
    return (
        f"fleet for {f.rate * 3600:,.4g} requests/h ({mix}){optimised}, target {f.slo.text()}, on "
        f"{', '.join(f.gpus)}, at most {f.max_gpus} GPUs, {f.discipline.upper()}; {runs}"
    )


def _summary(f: Fleet) -> list[str]:
    best = f.best()
    lines = []
    if best is None:
        tried = min(f.pools, key=lambda p: p.target, default=None)
        found = f"; the best {f.slo.text().split('<=')[0]} found: {tried.target:,.0f} s" if tried else ""
        lines.append(f"best: none of at most {f.max_gpus} GPUs meets {f.slo.text()}{found}")
    else:
        lines.append(
            f"best: {best.groups} x {best.gpus_per_job} {best.gpu} ({best.gpus} GPUs), {_usd(best.usd_per_hour)} per "
            f"hour, {_usd(best.usd_per_video)} per video, {f.slo.text().split('<=')[0]} {best.target:,.0f} s; layouts: "
            + ", ".join(f"{k.name}: {lay}" for k, lay in zip(f.kinds, best.layouts, strict=True))
        )
    lines += [f"skipped {gpu}: {why}" for gpu, why in f.skipped]
    lines.append(
        "a pool costs its GPUs whether busy or idle (the GPU's median on-demand price; wanmeter prices); latency is "
        "waiting plus the model's seconds on the layout; the target's quantile is the mean over replications"
    )
    return lines


def to_table(f: Fleet) -> str:
    per_gpu = [_cells(b) for g in f.gpus if (b := f.best(g)) is not None]
    frontier = [_cells(p) for p in f.frontier()]
    parts = [_headline(f), "", "cheapest per GPU type that meets the target:",
             format_table(HEADERS, per_gpu, right=tuple(range(1, 11))) if per_gpu else "(none)",
             "", "frontier (no pool both cheaper and faster):",
             format_table(HEADERS, frontier, right=tuple(range(1, 11))) if frontier else "(no priced pool)",
             "", *_summary(f)]  # fmt: skip
    return "\n".join(parts) + "\n"


def to_json(f: Fleet) -> str:
    return json.dumps(f.to_dict(), indent=2) + "\n"


def to_csv(f: Fleet) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_HEADERS)
    for p in f.pools:
        w.writerow([p.gpu, p.gpus, p.gpus_per_job, p.groups, p.usd_per_hour, p.usd_per_video, p.p50, p.p95, p.p99,
                    p.target, p.target_half_width, p.utilisation, p.throughput_per_hour, p.meets,
                    "; ".join(p.layouts)])  # fmt: skip
    return buf.getvalue()


def figure(f: Fleet) -> Any:
    """Dollars per hour against the target's quantile, every priced pool, the frontier joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for gpu in f.gpus:
        pts = [p for p in f.pools if p.gpu == gpu and p.usd_per_hour is not None]
        if pts:
            ax.scatter([p.usd_per_hour or 0.0 for p in pts], [p.target for p in pts], label=gpu, s=18)
    front = f.frontier()
    if front:
        xs = [p.usd_per_hour or 0.0 for p in front]
        ax.plot(xs, [p.target for p in front], color="black", lw=1, label="frontier")
    ax.axhline(f.slo.seconds, color="grey", ls="--", lw=1, label=f.slo.text())
    ax.set_xlabel("fleet $ per hour")
    ax.set_ylabel(f"{f.slo.text().split('<=')[0]} latency, s")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def to_png(f: Fleet) -> bytes:
    from hybrid.render.plots import figure_bytes

    return figure_bytes(figure(f), "png")


def to_html(f: Fleet) -> str:
    from hybrid.render.plots import inline_svg

    svg = inline_svg(figure(f))
    table = html.escape(to_table(f))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>wanmeter fleet</title></head><body>"
        f"<h1>wanmeter fleet</h1><figure>{svg}</figure><pre>{table}</pre></body></html>\n"
    )
