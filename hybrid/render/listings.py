"""Renderers of the listings: the GPUs of the hardware database, the model presets, the optimisations, the
prices."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hybrid.render import units
from hybrid.render.table import format_table

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.hardware import GPU, DefaultEfficiency

GPU_HEADERS = [
    "name", "product", "bf16 TFLOP/s", "fp16 TFLOP/s", "fp8 TFLOP/s", "int8 TOPS", "fp4 TFLOP/s", "fp32 TFLOP/s",
    "GB/s", "GiB",
]  # fmt: skip
EFFICIENCY_HEADERS = ["eff matmul", "eff attn", "eff conv", "eff memory"]
EFFICIENCY_MARKS = {"measured": "", "derived": "~", "borrowed": "*"}


def gpus_to_json(header: Mapping[str, Any], gpus: Mapping[str, GPU], defaults: Mapping[str, DefaultEfficiency]) -> str:
    """The database's document, each GPU with its default efficiencies and their evidence."""
    rows = [
        {**g.to_dict(), "default_efficiency": {c: e.to_dict() for c, e in defaults[g.name].classes.items()}}
        for g in gpus.values()
    ]
    return json.dumps({**header, "gpus": rows}, indent=2) + "\n"


def gpus_to_table(header: Mapping[str, Any], gpus: Mapping[str, GPU], defaults: Mapping[str, DefaultEfficiency]) -> str:
    """One line per GPU: dense peaks (tensor cores; fp32 on the CUDA or vector cores), bandwidth, memory and default
    efficiencies, marked by kind."""
    from hybrid.timing import OP_CLASSES

    def eff(name: str, op_class: str) -> str:
        e = defaults[name].classes[op_class]
        return f"{e.value:g}" + EFFICIENCY_MARKS[e.kind]

    rows = [
        [
            g.name,
            g.product,
            f"{g.bf16_tflops:g}",
            f"{g.fp16_tflops:g}",
            *("-" if v is None else f"{v:g}" for v in (g.fp8_tflops, g.int8_tops, g.fp4_tflops)),
            f"{g.fp32_tflops:g}",
            f"{g.memory_bandwidth_gbs:g}",
            f"{g.memory_gib:g}",
            *(eff(g.name, c) for c in OP_CLASSES),
        ]
        for g in gpus.values()
    ]
    headers = [*GPU_HEADERS, *EFFICIENCY_HEADERS]
    note = (
        f"dense peaks; sources: wanmeter gpus --format json (retrieved {header['retrieved']}). bf16, fp16, fp8, "
        "int8 and fp4 are the tensor cores' peaks, fp32 the CUDA (AMD: vector) cores' (a float32 matmul with TF32 "
        "off). "
        "Default efficiencies (used by report --gpu without a timing calibration): measured on that GPU, ~ derived "
        "from its matmul figure, * borrowed from another GPU's measurement"
    )
    return format_table(headers, rows, right=tuple(range(2, len(headers)))) + "\n" + note + "\n"


def models_to_json(described: Mapping[str, Mapping[str, Any]]) -> str:
    """``{preset: ModelSpec.describe()}``."""
    return json.dumps(described, indent=2) + "\n"


def models_to_table(described: Mapping[str, Mapping[str, Any]]) -> str:
    """One line per preset: pipeline, stages, defaults and parameters per component and in total."""
    from hybrid.presets import COMPONENT_FIELDS

    rows = [
        [
            name,
            d["pipeline"],
            ", ".join(d["stages"]),
            f"{d['default_size']}x{d['default_frames']}",
            str(d["default_steps"]),
            *(units.count(d["parameters"][c]) if c in d["parameters"] else "-" for c in COMPONENT_FIELDS),
            units.count(sum(d["parameters"].values())),
        ]
        for name, d in described.items()
    ]
    headers = ["model", "pipeline", "stages", "default size", "steps", *COMPONENT_FIELDS, "total"]
    return format_table(headers, rows, right=tuple(range(4, len(headers)))) + "\n"


OPTIMISATION_HEADERS = ["name", "family", "takes", "modelled", "runs on", "what", "sources"]


def optimisations_to_table() -> str:
    """``wanmeter optimisations``: every name ``--optimise`` takes, its family, parameter, whether
    its mechanism is modelled, where it runs and its sources."""
    from hybrid.optimisations import FAMILIES, OPTIMISATIONS, SOURCES

    rows = [
        [d.name, d.family, d.param.upper() or "-", "yes" if d.modelled else "not yet",
         ", ".join(d.architectures) or "any", d.summary, "; ".join(SOURCES.get(s, s) for s in d.sources) or "-"]
        for d in sorted(OPTIMISATIONS.values(), key=lambda d: FAMILIES.index(d.family))
    ]  # fmt: skip
    note = (
        "applied in this order: " + ", ".join(FAMILIES) + "; one of each family; a name not modelled yet is refused, "
        "never priced as free"
    )
    return format_table(OPTIMISATION_HEADERS, rows) + "\n" + note + "\n"


def optimisations_to_json() -> str:
    """The same as JSON (``wanmeter.optimisations/1``)."""
    from hybrid.optimisations import FAMILIES, OPTIMISATIONS, SOURCES

    doc = {
        "schema": "wanmeter.optimisations/1",
        "order": list(FAMILIES),
        "optimisations": [
            {"name": d.name, "family": d.family, "param": d.param or None, "modelled": d.modelled,
             "architectures": list(d.architectures), "summary": d.summary,
             "sources": [SOURCES.get(s, s) for s in d.sources], "caveat": d.caveat}
            for d in OPTIMISATIONS.values()
        ],
    }  # fmt: skip
    return json.dumps(doc, indent=2) + "\n"


def prices_to_table(doc: dict[str, Any]) -> str:
    """Per GPU with a price: the median on-demand price and its spread, then every row, then hosted APIs."""
    from hybrid.prices import price_of

    names = sorted({r["gpu"] for r in doc["gpu_prices"]})
    summary = []
    for name in names:
        p = price_of(name, doc)
        if p is not None:
            summary.append([name, units.usd(p.usd_per_gpu_hour), units.usd(p.low), units.usd(p.high), str(p.rows)])
    rows = [
        [r["gpu"], r["provider"], units.usd(r["usd_per_gpu_hour"]), "on demand" if r["on_demand"] else "spot",
         r.get("region", "") or "-", r["date"]]
        for r in sorted(doc["gpu_prices"], key=lambda r: (r["gpu"], r["usd_per_gpu_hour"]))
    ]  # fmt: skip
    parts = [
        format_table(["gpu", "median $/GPU-hour", "lowest", "highest", "on-demand rows"], summary, right=(1, 2, 3, 4)),
        "",
        format_table(["gpu", "provider", "$/GPU-hour", "kind", "region", "read"], rows, right=(2,)),
    ]
    api = doc.get("api_prices") or []
    if api:
        api_rows = [[str(r.get("provider", "")), str(r.get("model", "")), str(r.get("resolution", "") or "-"),
                     "-" if r.get("price") is None else f"{r['price']:g} {r.get('unit', '?')}",
                     str(r.get("date", ""))] for r in api]  # fmt: skip
        parts += ["", "hosted APIs (for comparison: not what a GPU-hour costs)",
                  format_table(["provider", "model", "resolution", "price", "read"], api_rows)]  # fmt: skip
    note = (
        f"prices per GPU-hour (an instance's price over its GPUs), retrieved {doc.get('retrieved', '?')}; sources in "
        "wanmeter prices --format json. report --gpu and plan cost a video at the median on-demand price"
    )
    return "\n".join([*parts, "", note]) + "\n"


def prices_to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
