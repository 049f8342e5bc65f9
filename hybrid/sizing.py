"""Sizing a job on a named GPU: seconds and peak memory per stage (``wanmeter report --gpu``).

Seconds come from the time model (:mod:`hybrid.timing`) over the rows traced on the meta device
(exact bytes per op), with the efficiencies and per-call overhead of a timing calibration run on
that GPU (``calibration/efficiency/<gpu>.json``, written by ``wanmeter calibrate-time``) or, where
none exists, the GPU's default efficiencies from cited public measurements
(:func:`hybrid.hardware.default_efficiency`), which the report flags. Peak memory is the stage's
resident weights plus its traced activation peak (:mod:`hybrid.memory`), with a fused attention
kernel; the peak with materialised attention scores is reported beside it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybrid.hardware import GPU, default_efficiency, get_gpu
from hybrid.memory import pipeline_memory
from hybrid.models import ModelSpec
from hybrid.timing import OP_CLASSES, Machine, stage_time
from hybrid.workload import Workload

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.trace import TraceResult

EFFICIENCY_DIR = Path(__file__).resolve().parent.parent / "calibration" / "efficiency"
CALIBRATE_COMMAND = (
    "wanmeter calibrate-time --device cuda --gpu {gpu} --dtype bfloat16 --scale 4 --model wan2.1-t2v-1.3b"
)
"""How to make a timing calibration of a GPU (full-size 1.3B modules fit every GPU of the database)."""
FP32_TENSOR_RATIO = 0.5
"""Dense TF32 tensor throughput is half the dense BF16 one on all ten GPUs of the database
(datasheets); float32 stages (the VAE) are timed at that rate, as PyTorch runs float32 convolutions
on TF32 tensor cores by default (``torch.backends.cudnn.allow_tf32``)."""


def load_calibration(gpu: str, path: Path | None = None) -> dict[str, Any]:
    """The timing calibration of ``gpu``: ``path`` if given (``ValueError`` if it is missing), else
    ``calibration/efficiency/<gpu>.json`` if it exists, else the GPU's cited default efficiencies
    (a document marked ``defaults``)."""
    if path is None:
        path = EFFICIENCY_DIR / f"{gpu}.json"
        if not path.exists():
            return default_efficiency(gpu).to_calibration()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(
            f"efficiency: no timing calibration at {path}; run `{CALIBRATE_COMMAND.format(gpu=gpu)}` on one, "
            f"or leave --efficiency out to use {gpu}'s cited defaults"
        ) from None
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read timing calibration ({e})") from None
    if doc.get("schema") != "wanmeter.efficiency/1":
        raise ValueError(f"{path}: not a wanmeter.efficiency/1 document")
    return dict(doc)


@dataclass(frozen=True)
class StageSizing:
    """One stage on one GPU, over the whole job."""

    seconds: float
    bound: str
    peak_memory_bytes: int
    """Resident weights plus the activation peak with a fused attention kernel."""
    weights_bytes: int = 0
    """Weights resident while the stage runs (all models, or only its own with offload)."""
    activation_bytes: int = 0
    """Activation peak with a fused attention kernel (flash, cuDNN, memory-efficient)."""
    activation_bytes_materialized: int = 0
    """Activation peak when attention materialises its scores (PyTorch's math backend)."""

    @property
    def peak_memory_bytes_materialized(self) -> int:
        return self.weights_bytes + self.activation_bytes_materialized

    def memory_dict(self) -> dict[str, int]:
        return {
            "weights_bytes": self.weights_bytes,
            "activation_peak_bytes": self.activation_bytes,
            "activation_peak_bytes_materialized": self.activation_bytes_materialized,
            "peak_memory_bytes_materialized": self.peak_memory_bytes_materialized,
        }


@dataclass(frozen=True)
class GpuSizing:
    """A job on one GPU: per stage and in total."""

    gpu: GPU
    stages: dict[str, StageSizing]
    peak_memory_bytes: int
    offload: bool
    calibration: str
    warnings: tuple[str, ...] = field(default=())
    efficiency: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per op class: ``value`` and where it comes from (``kind``: calibrated, measured, borrowed,
    derived; ``evidence``; ``source_url``)."""
    assumptions: tuple[str, ...] = field(default=())

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages.values())

    def to_dict(self) -> dict[str, Any]:
        """The sizing's part of a ``wanmeter.report/1`` document: ``gpu``, per stage ``seconds``,
        ``bound``, ``peak_memory_bytes`` and ``memory``, ``total`` seconds and peak, and its own
        warnings and assumptions (merged into the FLOP report by :mod:`hybrid.render.report`)."""
        return {
            "gpu": {
                "name": self.gpu.name,
                "product": self.gpu.product,
                "offload": self.offload,
                "calibration": self.calibration,
                "efficiency": self.efficiency,
            },
            "stages": {
                name: {
                    "seconds": s.seconds,
                    "bound": s.bound,
                    "peak_memory_bytes": s.peak_memory_bytes,
                    "memory": s.memory_dict(),
                }
                for name, s in self.stages.items()
            },
            "total": {"seconds": self.seconds, "peak_memory_bytes": self.peak_memory_bytes},
            "warnings": list(self.warnings),
            "assumptions": list(self.assumptions),
        }


class CallTraces:
    """Meta traces keyed by what one call of each stage looks like: steps and CFG only change how
    many calls a stage makes (:func:`size_on_gpu` takes that from the workload), so workloads that
    differ only in them share one trace."""

    def __init__(self, progress: Callable[[str], None] | None = None) -> None:
        self._traces: dict[Workload, TraceResult] = {}
        self._progress = progress

    def __call__(self, workload: Workload) -> TraceResult:
        from hybrid.trace import trace

        key = replace(workload, steps=1, cfg=False)
        if key not in self._traces:
            if self._progress:
                w, n = workload, len(self._traces) + 1
                self._progress(f"[{n}] tracing {w.model} {w.width}x{w.height}x{w.frames} b{w.batch} on meta ...")
            self._traces[key] = trace(workload)
        return self._traces[key]


def apply_overrides(cal: dict[str, Any], overrides: Mapping[str, float]) -> dict[str, Any]:
    """``cal`` with some op classes' efficiencies replaced (what-if: another attention kernel)."""
    bad = [c for c in overrides if c not in OP_CLASSES]
    if bad:
        raise ValueError(f"efficiency-override: unknown op class {bad[0]!r}; valid: {', '.join(OP_CLASSES)}")
    out_of_range = {c: v for c, v in overrides.items() if not 0 < v <= 1}
    if out_of_range:
        c, v = next(iter(out_of_range.items()))
        raise ValueError(f"efficiency-override: {c}={v:g} is out of range; valid: 0 < value <= 1")
    provenance = _provenance(cal)
    for c, v in overrides.items():
        provenance[c] = {
            "value": v,
            "kind": "override",
            "evidence": f"set on the command line (was {provenance[c]['value']:g})",
        }
    return {
        **cal,
        "efficiency": {**cal["efficiency"], **overrides},
        "provenance": provenance,
        "overridden": sorted(overrides),
    }


def size_on_gpu(
    workload: Workload,
    spec: ModelSpec,
    gpu: str,
    offload: bool = False,
    calibration: dict[str, Any] | None = None,
    overrides: Mapping[str, float] | None = None,
    traced: TraceResult | None = None,
) -> GpuSizing:
    """Trace ``workload`` on meta and size every stage on ``gpu``; ``overrides`` replace some op
    classes' efficiencies. ``traced`` reuses a trace of the same per-call shapes (steps and CFG
    only change how many calls each stage makes, which comes from ``workload``)."""
    from hybrid.trace import trace

    g = get_gpu(gpu)
    cal = calibration or load_calibration(g.name)
    if overrides:
        cal = apply_overrides(cal, overrides)
    result = traced or trace(workload, spec=spec)
    memory = pipeline_memory(spec, {s: st.peak_activation_bytes for s, st in result.stages.items()}, offload=offload)
    stages: dict[str, StageSizing] = {}
    for sd in spec.pipeline_def.stages:
        name = sd.name
        st = result.stages[name]
        ratio = FP32_TENSOR_RATIO if st.dtype == "float32" else 1.0
        machine = Machine(
            peak_flops=g.peak_flops("bf16") * ratio,
            peak_bytes_per_s=g.memory_bandwidth_bytes_per_s,
            efficiency=cal["efficiency"],
            launch_overhead_s=float(cal.get("launch_overhead_s", 0.0)),
        )
        t = stage_time(st.rows, machine)
        stages[name] = StageSizing(
            seconds=t.seconds * sd.calls(workload),
            bound=t.bound,
            peak_memory_bytes=memory.stage_peak_bytes(name),
            weights_bytes=memory.resident_weights_bytes(name),
            activation_bytes=st.peak_activation_bytes,
            activation_bytes_materialized=st.peak_activation_bytes_materialized,
        )
    return GpuSizing(
        g,
        stages,
        memory.peak_bytes,
        offload,
        _describe(cal),
        tuple(_warnings(g, cal, stages, memory.peak_bytes, offload)),
        _provenance(cal),
        _assumptions(g, spec, offload),
    )


COMPONENT_NAMES: dict[str, str] = {
    "text_encoder": "the text encoder",
    "image_encoder": "the image encoder",
    "transformer": "the DiT",
    "transformer_2": "the low-noise DiT",
    "vae": "the whole VAE",
}
"""How the report's assumptions name each model component."""
DTYPE_SHORT: dict[str, str] = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "float8": "fp8"}
"""The short form the report's text writes each dtype in."""


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _assumptions(g: GPU, spec: ModelSpec, offload: bool) -> tuple[str, ...]:
    resident = (
        "model offload: only the running stage's model is on the GPU (moving weights between stages is not timed)"
        if offload
        else f"no offload: {_and([COMPONENT_NAMES[c] for c in spec.parameter_counts()])} stay resident for the "
        "whole job"
    )
    stages = spec.pipeline_def.stages
    dtypes = ", ".join(f"{s.name} {DTYPE_SHORT[s.dtype]}" for s in stages)
    vae = [s.name for s in stages if s.component == "vae"]
    once = ", once for both" if len(vae) > 1 else ""
    keep = "keeps" if len(vae) == 1 else "keep"
    return (
        f"weights: {dtypes}, as diffusers' Wan2.1 example loads them; {_and(vae)} {keep} the whole "
        f"AutoencoderKLWan (encoder and decoder) resident{once}",
        resident,
        "activation peak: the largest sum of live storages of one stage call run eagerly (traced on meta), with "
        "a fused attention kernel; 'materialized' is the same with PyTorch's math attention; allocator caching, "
        "fragmentation, the CUDA context and kernel workspaces are not included",
        "seconds: per-op roofline over the traced rows, max(FLOPs / (peak x efficiency), bytes / (bandwidth x "
        "efficiency)) plus a cost per op call, summed; no overlap between ops, no torch.compile, no CUDA graphs",
        f"peaks: {g.product} datasheet, dense bf16 {g.bf16_tflops:g} TFLOP/s for bf16 stages and half that "
        f"(TF32) for the fp32 VAE, {g.memory_bandwidth_gbs:g} GB/s",
        "host work, data loading, the scheduler step and video encoding are not timed",
    )


def _describe(cal: dict[str, Any]) -> str:
    if cal.get("defaults"):
        return f"none; default efficiencies from cited public measurements (retrieved {cal.get('date', '?')})"
    return f"{cal.get('device_name', '?')} on {cal.get('date', '?')} ({cal.get('versions', {}).get('torch', '?')})"


def _provenance(cal: dict[str, Any]) -> dict[str, dict[str, Any]]:
    if "provenance" in cal:
        return {c: dict(p) for c, p in cal["provenance"].items()}
    source = f"timing calibration: {_describe(cal)}"
    return {c: {"value": v, "kind": "calibrated", "evidence": source} for c, v in cal["efficiency"].items()}


def _warnings(g: GPU, cal: dict[str, Any], stages: dict[str, StageSizing], peak_bytes: int, offload: bool) -> list[str]:
    out = []
    if cal.get("defaults"):
        values = ", ".join(f"{c} {p['value']:g}" for c, p in _provenance(cal).items() if p["kind"] != "override")
        out.append(
            f"no timing calibration of {g.name}: seconds use default efficiencies from public measurements "
            f"({values}; sources in the JSON report's gpu.efficiency); run `{CALIBRATE_COMMAND.format(gpu=g.name)}` "
            "on one to replace them"
        )
        borrowed = [c for c, p in _provenance(cal).items() if p["kind"] == "borrowed"]
        if borrowed:
            out.append(
                f"no public measurement of {', '.join(borrowed)} efficiency on a {g.name} was found: "
                "those values are borrowed from other GPUs"
            )
    elif cal.get("name") != g.name:
        out.append(
            f"the timing calibration was measured on {cal.get('device_name', '?')} (name {cal.get('name')!r}), "
            f"not on a {g.name}: its efficiencies may not hold here"
        )
    if cal.get("overridden"):
        out.append(f"efficiencies set on the command line: {', '.join(cal['overridden'])}")
    if peak_bytes > g.memory_bytes:
        how = "even with model offload" if offload else "without offload (try --offload)"
        out.append(
            f"the job needs {peak_bytes / 2**30:.1f} GiB at its peak, more than the "
            f"{g.memory_gib:g} GiB of one {g.name} {how}"
        )
    unfused = [n for n, s in stages.items() if s.peak_memory_bytes_materialized > g.memory_bytes >= s.peak_memory_bytes]
    for name in unfused:
        s = stages[name]
        out.append(
            f"{name} fits only with a fused attention kernel (flash, cuDNN or memory-efficient SDPA): with "
            f"materialised scores (PyTorch's math backend) it needs {s.peak_memory_bytes_materialized / 2**30:,.1f} GiB"
        )
    return out
