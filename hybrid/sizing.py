"""Sizing a job on a named GPU: seconds and peak memory per stage (``wanmeter report --gpu``).

Seconds come from the time model (:mod:`hybrid.timing`) over the rows traced on the meta device
(exact bytes per op), with the efficiencies and per-call overhead of a timing calibration run on
that GPU (``calibration/efficiency/<gpu>.json``, written by ``wanmeter calibrate-time``) or, where
none exists, the GPU's default efficiencies from cited public measurements
(:func:`hybrid.hardware.default_efficiency`), which the report flags. The workload's runtime
(:mod:`hybrid.runtime`) decides the weight dtypes, which components stay on the GPU and which are
moved in over the host link for their stage (seconds at the link's achieved bandwidth), a text
encoder run on the host CPU, the attention kernel and the weight casts of float32 weights under
autocast. Peak memory is the weights on the GPU while a stage runs plus its traced activation peak
(:mod:`hybrid.memory`), with a fused attention kernel; the peak with materialised attention scores
is reported beside it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from hybrid.deployment import SINGLE, Deployment, Sharding, fsdp_shardings
from hybrid.dtypes import dtype
from hybrid.errors import InputError
from hybrid.files import CALIBRATION_DIR, read_json
from hybrid.geometry import CallShape
from hybrid.hardware import (
    GPU,
    collective_latency,
    default_efficiency,
    get_gpu,
    gpu_link_efficiency,
    host_cpu_flops,
    host_link_efficiency,
)
from hybrid.kernels import CollectiveRates, collective_evidence, launch_seconds, memory_ratios, shape_rates
from hybrid.kernels import evidence as rate_evidence
from hybrid.memo import memoised
from hybrid.memory import pipeline_memory
from hybrid.models.wan_animate2 import STRUCTURES, WanAnimate2Transformer3DConfig
from hybrid.models.wan_dit import WAN_OPS, wan_ops_written
from hybrid.optimise import (
    AttentionKernel,
    EfficiencyOverride,
    MeasuredMemory,
    Transform,
    apply_calls,
    apply_fuses,
    apply_launch,
    apply_matmul_path,
    apply_peaks,
    apply_rates,
    apply_tensor_path,
    apply_terms,
    apply_weights,
    describe,
    provenance,
)
from hybrid.presets import ModelSpec
from hybrid.prices import Cost
from hybrid.runtime import Runtime, Streaming
from hybrid.schedule import stage_calls, stage_segments, stage_steps
from hybrid.timing import OP_CLASSES, Machine, StageTime, Term, row_terms, terms_time
from hybrid.workload import Workload

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.pipelines import Pipeline, StageDef
    from hybrid.trace import TraceResult

EFFICIENCY_DIR = CALIBRATION_DIR / "efficiency"
CALIBRATE_COMMAND = (
    "wanmeter calibrate-time --device cuda --gpu {gpu} --dtype bfloat16 --scale 4 --model wan2.1-t2v-1.3b"
)
"""How to make a timing calibration of a GPU (full-size 1.3B modules fit every GPU of the database)."""
TENSOR_PATH: dict[str, str] = {"bfloat16": "bf16", "float16": "bf16", "float32": "tf32"}
"""The tensor-core path (:meth:`hybrid.hardware.GPU.peak_flops`) each compute dtype is timed on:
half precision at the dense BF16 peak, float32 at TF32's (``tf32_ratio`` in the GPU database)."""
MATMUL_PATH: dict[str, str] = {"float32": "fp32"}
"""Where a compute dtype's matrix products run on another path than its convolutions: torch's defaults
send float32 products to the CUDA cores (``torch.backends.cuda.matmul.allow_tf32`` False) and float32
convolutions to TF32 (``torch.backends.cudnn.allow_tf32`` True), as the H200's profile of CLIP's and the
VAE's calls shows (calibration/device/h200/profile.json: sm80_xmma_gemm_f32f32 ffma kernels, sm90 TF32
implicit-GEMM convolutions)."""
TOO_LONG = (
    "workload: its seconds on a GPU are beyond a float's range (over 1e308 s); the FLOP report without --gpu "
    "still holds, exactly"
)


def load_calibration(gpu: str, path: Path | None = None) -> dict[str, Any]:
    """The timing calibration of ``gpu``: ``path`` if given (``ValueError`` if it is missing), else
    ``calibration/efficiency/<gpu>.json`` if it exists, else the GPU's cited default efficiencies
    (a document marked ``defaults``)."""
    if path is None:
        path = EFFICIENCY_DIR / f"{gpu}.json"
        if not path.exists():
            return default_efficiency(gpu).to_calibration()
    if not path.exists():
        raise InputError(
            f"efficiency: no timing calibration at {path}; run `{CALIBRATE_COMMAND.format(gpu=gpu)}` on one, "
            f"or leave --efficiency out to use {gpu}'s cited defaults"
        )
    return validate_calibration(read_json(path, "timing calibration"), path)


EXPERTS_RESIDENT = (
    "Wan-Video/Wan2.2 wan/text2video.py: `if t5_fsdp or dit_fsdp or use_sp: self.init_on_cpu = False`, "
    "_configure_model puts each expert on the device (`model = shard_fn(model)` with dit_fsdp), and "
    "_prepare_model_for_timestep moves experts only `if offload_model or self.init_on_cpu`; generate.py: "
    "`offload_model = False if world_size > 1 else True`"
)
"""Why the original Wan2.2 code keeps both A14B experts on every rank of a multi-GPU job (unless
``--offload_model True``): the experts' weights count in the text encoder's and the VAE's stages."""
MAX_LAUNCH_OVERHEAD_S = 1.0
"""The largest per-op launch overhead a timing calibration may give: a measured one is about 1.3e-05 s
(``calibration/efficiency/cpu.json``); a second per op is beyond any device."""


def _finite(value: Any) -> bool:
    """A JSON number a float holds: an int beyond a float (``10**400``) or inf (``1e400``) is not."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _value(v: Any) -> str:
    return str(v)[:40]


def _check_number(path: Path, name: str, v: Any, lo: float, hi: float, low_open: bool, valid: str) -> None:
    if not (_finite(v) and (lo < v if low_open else lo <= v) and v <= hi):
        raise InputError(f"{path}: {name} = {_value(v)} is out of range; valid: {valid}")


def _check_strings(path: Path, doc: dict[str, Any]) -> None:
    """The calibration's descriptive fields, where present: strings, an object of strings, arrays."""
    for key in ("name", "device", "device_name", "dtype", "model", "date", "peak_source"):
        if key in doc and not isinstance(doc[key], str):
            raise InputError(f"{path}: {key}: must be a string, got {type(doc[key]).__name__}")
    versions = doc.get("versions", {})
    if not isinstance(versions, dict):
        raise InputError(f"{path}: versions must be an object, got {type(versions).__name__}")
    for k, v in versions.items():
        if not isinstance(v, str):
            raise InputError(f"{path}: versions.{_value(k)}: must be a string, got {type(v).__name__}")
    for key in ("measurements", "held_out"):
        if key in doc and not isinstance(doc[key], list):
            raise InputError(f"{path}: {key}: must be an array, got {type(doc[key]).__name__}")
    if "method" in doc and not isinstance(doc["method"], (dict, str)):
        raise InputError(f"{path}: method: must be an object or a string, got {type(doc['method']).__name__}")
    if "defaults" in doc and not isinstance(doc["defaults"], bool):
        raise InputError(f"{path}: defaults: must be true or false, got {_value(doc['defaults'])}")
    overridden = doc.get("overridden", [])
    if not (isinstance(overridden, list) and all(isinstance(c, str) for c in overridden)):
        raise InputError(f"{path}: overridden: must be an array of strings")


def _check_provenance(path: Path, provenance: Any) -> None:
    """Per op class, the value (as an efficiency) and where it comes from, in words."""
    if not isinstance(provenance, dict):
        raise InputError(f"{path}: provenance must be an object, got {type(provenance).__name__}")
    for c, p in provenance.items():
        if c not in OP_CLASSES:
            raise InputError(f"{path}: provenance: unknown op class {_value(c)!r}; valid: {', '.join(OP_CLASSES)}")
        if not isinstance(p, dict):
            raise InputError(f"{path}: provenance.{c}: must be an object of value, kind and evidence")
        _check_number(path, f"provenance.{c}.value", p.get("value"), 0, 1, True, "0 < value <= 1")
        for key in ("kind", "evidence", "source_url"):
            if key in p and not isinstance(p[key], (str, type(None))):
                raise InputError(f"{path}: provenance.{c}.{key}: must be a string, got {type(p[key]).__name__}")


def validate_calibration(doc: Any, path: Path) -> dict[str, Any]:
    """``doc`` if it is a usable ``wanmeter.efficiency/1`` document, else a one-line ``InputError``
    naming the file and the field: an efficiency for each of :data:`~hybrid.timing.OP_CLASSES` and
    no other, each in ``(0, 1]`` (the range of ``--efficiency-override``), ``launch_overhead_s``
    from 0 to :data:`MAX_LAUNCH_OVERHEAD_S`, the measured peaks finite and positive, and every
    other field the report or the warnings read of the type ``calibrate-time`` writes (a number
    beyond a float, ``10**400`` or ``1e400``, is out of range wherever it stands)."""
    if not isinstance(doc, dict):
        raise InputError(f"{path}: a timing calibration is a JSON object, got {type(doc).__name__}")
    if doc.get("schema") != "wanmeter.efficiency/1":
        raise InputError(f"{path}: not a wanmeter.efficiency/1 document (schema {_value(doc.get('schema'))!r})")
    eff = doc.get("efficiency")
    if not isinstance(eff, dict):
        raise InputError(
            f"{path}: efficiency must be an object of op class -> value; valid classes: {', '.join(OP_CLASSES)}"
        )
    unknown = [c for c in eff if c not in OP_CLASSES]
    missing = [c for c in OP_CLASSES if c not in eff]
    if unknown or missing:
        what = f"unknown op class {_value(unknown[0])!r}" if unknown else f"missing op class {missing[0]!r}"
        raise InputError(f"{path}: efficiency: {what}; valid: {', '.join(OP_CLASSES)}")
    for c, v in eff.items():
        _check_number(path, f"efficiency.{c}", v, 0, 1, True, "0 < value <= 1")
    _check_number(
        path, "launch_overhead_s", doc.get("launch_overhead_s", 0.0), 0, MAX_LAUNCH_OVERHEAD_S, False,
        f"a number from 0 to {MAX_LAUNCH_OVERHEAD_S:g} s (a measured launch costs about 1.3e-05 s)",
    )  # fmt: skip
    for key in ("peak_flops", "peak_bytes_per_s"):
        if key in doc:
            _check_number(path, key, doc[key], 0, sys.float_info.max, True, "a finite number > 0")
    _check_strings(path, doc)
    if "provenance" in doc:
        _check_provenance(path, doc["provenance"])
    return dict(doc)


@dataclass(frozen=True)
class StageSizing:
    """One stage on one GPU, over the whole job."""

    seconds: float
    """Compute (every call) plus the host-link copies made for the stage."""
    bound: str
    """``compute`` or ``memory`` (what bounds its rows), or ``host`` (run on the host CPU)."""
    peak_memory_bytes: int
    """Weights on the GPU, what earlier calls left there, and the activation peak with a fused attention kernel."""
    weights_bytes: int = 0
    """Weights on the GPU while the stage runs (the resident components and its own)."""
    activation_bytes: int = 0
    """Activation peak of one call with a fused attention kernel (flash, cuDNN, memory-efficient)."""
    activation_bytes_materialized: int = 0
    """Activation peak when attention materialises its scores (PyTorch's math backend)."""
    held_bytes: int = 0
    """Bytes earlier calls left on the GPU that live through the stage (Wan-Animate-2's K/V cache; the rotary
    table Wan2.2-S2V's transformer keeps on itself while the VAE decodes): :func:`held_bytes`."""
    host_copy_bytes: int = 0
    """Weights moved between host and GPU for this stage over the job (in and out)."""
    host_copy_seconds: float = 0.0
    """Seconds of those copies over the host link (part of :attr:`seconds`)."""
    weight_cast_bytes: int = 0
    """Bytes of float32 weights cast to bfloat16 under autocast over the job (read 4 + write 2
    per parameter per call), timed as memory traffic (part of :attr:`seconds`)."""
    comm_seconds: float = 0.0
    """Seconds of collectives over the job on one rank (part of :attr:`seconds`: what compute does not hide)."""
    comm_bytes_per_rank: int = 0
    """Bytes one rank sends to the others over the job (it receives as many)."""

    @property
    def peak_memory_bytes_materialized(self) -> int:
        return self.weights_bytes + self.held_bytes + self.activation_bytes_materialized

    def memory_dict(self) -> dict[str, int]:
        return {
            "weights_bytes": self.weights_bytes,
            "held_bytes": self.held_bytes,
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
    runtime: Runtime
    calibration: str
    warnings: tuple[str, ...] = field(default=())
    efficiency: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per op class: ``value`` and where it comes from (``kind``: calibrated, measured, borrowed,
    derived, kernel, override; ``evidence``; ``source_url``)."""
    assumptions: tuple[str, ...] = field(default=())
    attention_kernel: str = "sdpa-flash"
    host_link: dict[str, Any] = field(default_factory=dict)
    """The host link's achieved ``bytes_per_s`` for weight copies: ``link`` (its datasheet text),
    ``value`` (the achieved fraction of its peak) and where that comes from."""
    host_cpu: dict[str, Any] = field(default_factory=dict)
    """The host CPU's ``flops_per_s`` for a text encoder run there, and its ``evidence``."""
    deployment: Deployment = SINGLE
    gpu_link: dict[str, Any] = field(default_factory=dict)
    """With several GPUs: the GPU-to-GPU link's achieved ``bytes_per_s`` for collectives, its
    datasheet text, the achieved fraction and its evidence, the ``latency_s`` per collective."""
    seconds_range: dict[str, Any] | None = None
    """Where the published seconds of such a job are expected (:mod:`hybrid.accuracy`): ``low``,
    ``high`` and the error quantiles and runs they rest on; ``None`` where none is set."""
    cost: Cost | None = None
    """Dollars per video at a price per GPU-hour (:func:`hybrid.prices.cost_of`); ``None`` where no
    price is known or set."""

    @property
    def comm_seconds(self) -> float:
        """Seconds of collectives over the job on one rank (part of :attr:`seconds`)."""
        return sum(s.comm_seconds for s in self.stages.values())

    @property
    def fits(self) -> bool:
        """Whether the job's peak memory per rank fits the GPU's capacity."""
        return self.peak_memory_bytes <= self.gpu.memory_bytes

    @property
    def gpu_seconds(self) -> float:
        """Seconds times GPUs: what the job costs in GPU time."""
        return self.seconds * self.deployment.gpus

    @property
    def offload(self) -> bool:
        return self.runtime.offloading

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages.values())

    def to_dict(self) -> dict[str, Any]:
        """The sizing's part of a ``wanmeter.report/1`` document: ``gpu`` (with the runtime),
        per stage ``seconds``, ``bound``, ``peak_memory_bytes``, ``memory`` and ``host_copy``,
        ``total`` seconds, peak and whether it ``fits`` the GPU, and its own warnings and assumptions
        (merged into the FLOP report by :mod:`hybrid.render.report`)."""
        return {
            "gpu": {
                "name": self.gpu.name,
                "product": self.gpu.product,
                **({"price": self.cost.price.to_dict()} if self.cost else {}),
                "offload": self.offload,
                "runtime": {**self.runtime.to_dict(), "attention_kernel": self.attention_kernel},
                "calibration": self.calibration,
                "efficiency": self.efficiency,
                "host_link": self.host_link,
                "host_cpu": self.host_cpu,
                **({"gpu_link": self.gpu_link} if self.deployment.parallel else {}),
            },
            **({"deployment": self.deployment.to_dict()} if self.deployment.parallel else {}),
            "stages": {
                name: {
                    "seconds": s.seconds,
                    "bound": s.bound,
                    "peak_memory_bytes": s.peak_memory_bytes,
                    "memory": s.memory_dict(),
                    "host_copy": {"bytes": s.host_copy_bytes, "seconds": s.host_copy_seconds},
                    "weight_cast_bytes": s.weight_cast_bytes,
                    "comm_seconds": s.comm_seconds,
                    "comm_bytes_per_rank": s.comm_bytes_per_rank,
                }
                for name, s in self.stages.items()
            },
            "total": {
                "seconds": self.seconds,
                **({"seconds_range": self.seconds_range} if self.seconds_range else {}),
                "peak_memory_bytes": self.peak_memory_bytes,
                "fits": self.fits,
                **(
                    {"gpu_seconds": self.gpu_seconds, "comm_seconds": self.comm_seconds}
                    if self.deployment.parallel
                    else {}
                ),
                **(
                    {"usd_per_video": self.cost.usd_per_video}
                    | ({"usd_per_video_range": self.cost.usd_per_video_range} if self.cost.usd_per_video_range else {})
                    if self.cost
                    else {}
                ),
            },
            "warnings": list(self.warnings),
            "assumptions": list(self.assumptions),
        }


class CallTraces:
    """Meta traces keyed by what one call of each stage looks like: steps and CFG only change how
    many calls a stage makes (:func:`size_on_gpu` takes that from the workload) and a runtime's
    flags only where its weights live, so workloads that differ only in them share one trace."""

    def __init__(self, progress: Callable[[str], None] | None = None) -> None:
        self._traces: dict[Workload, TraceResult] = {}
        self._progress = progress

    def __call__(self, workload: Workload) -> TraceResult:
        from hybrid.trace import trace

        # video-to-video's strength only sets how many of the steps run (one at strength 1)
        strength = None if workload.strength is None else 1.0
        rt = workload.runtime  # of its flags, only the VAE's change a call
        runtime = Runtime(rt.name, vae_tiling=rt.vae_tiling, vae_dtype=rt.vae_dtype)
        key = replace(workload, steps=1, cfg=True, strength=strength, runtime=runtime)
        if key not in self._traces:
            if self._progress:
                w, n = workload, len(self._traces) + 1
                self._progress(f"[{n}] tracing {w.model} {w.width}x{w.height}x{w.frames} b{w.batch} on meta ...")
            self._traces[key] = trace(workload, traced_stages(key))
        return self._traces[key]


@dataclass(frozen=True)
class CallCost:
    """What sizing needs of one stage call: its FLOPs, its roofline terms (time on any machine),
    its activation peaks; from the closed form or from a trace."""

    flops: int
    peak_activation_bytes: int
    peak_activation_bytes_materialized: int
    terms: tuple[Term, ...]
    _times: dict[tuple[Any, ...], StageTime] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def sent_bytes(self) -> int:
        """Bytes one rank sends in one call in collectives (:func:`_sent`)."""
        return _sent(self.terms)

    def time(self, machine: Machine) -> StageTime:
        """Seconds of one call on ``machine``, memoised per machine (a sweep's steps and CFG reuse it)."""
        key = (machine.peak_flops, machine.matmul_peak_flops, machine.peak_bytes_per_s,
               tuple(sorted(machine.efficiency.items())),
               machine.launch_overhead_s, machine.link_bytes_per_s, machine.collective_latency_s,
               machine.shape_rates.key() if machine.shape_rates else None,
               machine.collective_rates.key() if machine.collective_rates else None, machine.memory_ratio)  # fmt: skip
        if key not in self._times:
            self._times[key] = terms_time(self.terms, machine)
        return self._times[key]


NOT_RUN = CallCost(0, 0, 0, ())
"""The cost of a stage the job does not run: nothing, and nothing walked to find it out."""


class _CostKey:
    """A stage call as its cost depends on it: the family's row, term and peak functions, the
    stage's config and the per-call shape; not the stage's name (the two A14B experts, alike in
    config, cost the same)."""

    __slots__ = ("key", "sd", "shape", "spec")

    def __init__(self, sd: StageDef, spec: ModelSpec, shape: CallShape) -> None:
        self.sd, self.spec, self.shape = sd, spec, shape
        self.key = (sd.rows, sd.terms, sd.peak, sd.config(spec), shape)

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _CostKey) and self.key == other.key


@memoised(maxsize=4096)
def cost_memo(k: _CostKey) -> CallCost | None:
    """The memo behind :func:`closed_call_cost` (``cost_memo.cache_clear()`` forgets it)."""
    sd, spec, shape = k.sd, k.spec, k.shape
    terms = sd.closed_terms(spec, shape)
    peak, peak_mat = sd.closed_peak(spec, shape), sd.closed_peak(spec, shape, True)
    if terms is None or peak is None or peak_mat is None:
        return None
    return CallCost(sum(t[1] for t in terms), peak, peak_mat, terms)


@memoised(maxsize=512)
def fused_memo(k: _CostKey) -> tuple[Term, ...] | None:
    """The memo behind :func:`fused_call_terms`."""
    return k.sd.closed_fused_terms(k.spec, k.shape)


def fused_call_terms(sd: StageDef, spec: ModelSpec, shape: CallShape) -> tuple[Term, ...] | None:
    """One compiled stage call's roofline terms (:attr:`StageDef.fused_terms`), memoised like
    :func:`closed_call_cost`; ``None`` where the family has not written them (the stage is then timed
    unfused: an upper bound)."""
    return fused_memo(_CostKey(sd, spec, shape))


def closed_call_cost(sd: StageDef, spec: ModelSpec, shape: CallShape) -> CallCost | None:
    """One stage call's :class:`CallCost` in closed form, memoised per what it depends on
    (:class:`_CostKey`: a sweep's steps and CFG reuse it, and equal experts share it); ``None``
    where the family has not written it for ``spec``'s config."""
    return cost_memo(_CostKey(sd, spec, shape))


def stage_costs(
    workload: Workload,
    traced: TraceResult | None = None,
    use_trace: bool = False,
    deployment: Deployment = SINGLE,
    shape: CallShape | None = None,
    calls: Mapping[str, int] | None = None,
) -> dict[str, CallCost]:
    """Every stage's :class:`CallCost` on one rank of ``deployment``: closed form unless
    ``use_trace`` (or ``traced``) is given or a family has not written a stage for this config (then
    the whole workload is traced). ``shape``: ``workload.shape(deployment)``, and ``calls``: each
    stage's calls in the job (a stage of none is not walked), where the caller has them."""
    spec = workload.spec
    if calls is None:
        calls = {sd.name: stage_calls(sd, workload) for sd in spec.pipeline_def.stages}
    if traced is None and not use_trace:
        shape = shape or workload.shape(deployment)
        out: dict[str, CallCost] = {}
        for sd in spec.pipeline_def.stages:
            if calls[sd.name] == 0:  # a stage the job does not run (TI2V's encode without --image)
                out[sd.name] = NOT_RUN
                continue
            cost = closed_call_cost(sd, spec, shape)
            if cost is None:
                break
            out[sd.name] = cost
        else:
            return out
    if traced is None:
        from hybrid.trace import trace

        traced = trace(workload, traced_stages(workload, deployment), deployment=deployment)
    shape = shape or workload.shape(deployment)
    out = {}
    for sd in spec.pipeline_def.stages:
        st = traced.stages.get(sd.name)
        closed = closed_call_cost(sd, spec, shape) if st is None or untraced_ops(sd, spec, shape) else None
        if closed is not None:
            out[sd.name] = closed
        elif st is not None:
            out[sd.name] = CallCost(
                st.flops, st.peak_activation_bytes, st.peak_activation_bytes_materialized, row_terms(st.rows)
            )
        else:
            raise InputError(f"stage: {sd.name} is neither traced nor written in closed form for {spec.name}")
    return out


def traced_stages(workload: Workload, deployment: Deployment = SINGLE) -> tuple[str, ...]:
    """The stages a trace for sizing ``workload`` covers: those a diffusers or transformers module builds and the job
    calls, but for those sizing takes from their closed form with a trace too (:func:`untraced_ops`)."""
    spec, shape = workload.spec, workload.shape(deployment)
    return tuple(
        sd.name
        for sd in spec.pipeline_def.stages
        if sd.trace_key and stage_calls(sd, workload) and not untraced_ops(sd, spec, shape)
    )


def held_bytes(sd: StageDef, spec: ModelSpec, shape: CallShape, ran: set[str]) -> int:
    """Bytes earlier calls left on the GPU that live through a call of ``sd``: the most that a stage it runs
    beside (:attr:`StageDef.beside`) and the job runs (``ran``) keeps (:attr:`StageDef.keeps`)."""
    if not sd.beside:
        return 0
    kept = [
        other.keeps(other.config(spec), shape)
        for other in spec.pipeline_def.stages
        if other.name in sd.beside and other.name in ran and other.keeps is not None
    ]
    return max(kept, default=0)


def _streamed(
    spec: ModelSpec, rt: Runtime, gpus: int, weights: Mapping[str, int]
) -> dict[str, tuple[int, int, int, Streaming]]:
    """``(root bytes, bytes a block, blocks, how)`` of each component ``rt`` streams from host memory block by block
    (:meth:`hybrid.runtime.Runtime.streams`), in its stored weights (``weights``, by component)."""
    out = {}
    for c, nbytes in weights.items():
        how = rt.streams(spec, c, gpus)
        if how is not None:
            root, block, layers = getattr(spec, c).fsdp_units()
            per = nbytes // (root + layers * block)  # bytes per parameter as stored
            out[c] = (root * per, block * per, layers, how)
    return out


def untraced_ops(sd: StageDef, spec: ModelSpec, shape: CallShape) -> bool:
    """Whether the stage runs ops the tracer does not build: a transformer as the original Wan code
    runs it (:func:`hybrid.models.wan_dit.wan_ops_written`; the tracer builds diffusers' module, so a
    trace's rows are not that code's), the image encoder as the original ``CLIPModel.visual`` runs it
    (:func:`hybrid.models.clip._wan_clip_walk`; the tracer builds transformers'), Wan-Animate-2 in another code's
    structure (:data:`hybrid.models.wan_animate2.STRUCTURES`: diffusers' ops), a VAE in half precision whose code
    keeps its norms in that precision (LightX2V's Wan2.1 VAE: :attr:`~hybrid.models.wan_vae.
    AutoencoderKLWanConfig.diffusers_ops`; ``tests/test_vae_ops.py`` checks its walk against diffusers' module with
    that code's forwards traced), or one no module builds
    on any runtime (Wan2.2-S2V's, no :attr:`~hybrid.pipelines.StageDef.trace_key`). Sizing takes such a stage from its
    closed form, with a trace too; ``tests/test_wan_original.py``, ``tests/test_wan_original_clip.py`` and
    ``tests/test_wan_s2v.py`` check that form against the original code run and traced."""
    if sd.component == "vae":  # a parallel VAE's share of the ranks (StageDef.parallel_vae): the tracer runs it whole;
        # a code whose VAE keeps its half-precision norms: the tracer builds diffusers' module
        return (sd.parallel_vae and shape.vae_grid != (1, 1)) or not sd.config(spec).diffusers_ops
    if sd.component == "image_encoder":  # the original CLIPModel.visual: the tracer builds transformers' tower
        return shape.image_encoder_ops == WAN_OPS
    if not sd.component.startswith("transformer"):
        return False
    cfg = sd.config(spec)
    if isinstance(cfg, WanAnimate2Transformer3DConfig):
        return not STRUCTURES[shape.dit_ops].traced
    return not sd.trace_key or wan_ops_written(cfg, shape)


def size_on_gpu(
    workload: Workload,
    gpu: str,
    calibration: dict[str, Any] | None = None,
    overrides: Mapping[str, float] | None = None,
    traced: TraceResult | None = None,
    host_flops: float | None = None,
    use_trace: bool = False,
    deployment: Deployment = SINGLE,
    optimisations: Sequence[Transform] = (),
) -> GpuSizing:
    """Size every stage of ``workload`` on ``gpu`` under the workload's runtime: from the closed-form
    rows (FLOPs and bytes per op) and activation peaks of every stage (no trace), or with
    ``use_trace`` from a meta trace (``traced`` reuses one of the same per-call shapes: steps and CFG
    only change how many calls each stage makes, which comes from ``workload``); both give the same
    seconds and peaks. ``overrides`` replace some op classes' efficiencies; ``host_flops`` the host
    CPU's throughput (``--t5-cpu``). ``optimisations`` are what-ifs (:mod:`hybrid.optimise`), applied
    after the runtime's attention kernel and the GPU's measured memory rate
    (:class:`~hybrid.optimise.MeasuredMemory`), and before ``overrides``.

    On several GPUs (``deployment``) every figure is one rank's: its share of the transformer's
    tokens with the collectives of sequence parallelism (timed by the GPU-to-GPU link, not overlapped
    with compute), FSDP's sharded weights and per-forward all-gathers (hidden behind the previous
    block's compute where it is longer: :func:`fsdp_exposed`); the other stages run whole on every
    rank, in step."""
    g = get_gpu(gpu)
    spec, rt = workload.spec, workload.runtime
    rt.check(spec, g.architecture)
    deployment.check(spec, rt)
    shape = workload.shape(deployment)
    deployment.check_tokens(shape.dit_tokens, rt)
    kernel = rt.attention_kernel(g.architecture)
    transforms: tuple[Transform, ...] = (
        AttentionKernel("attention kernel", rt.record.name, kernel),
        MeasuredMemory("measured memory", "hybrid/data/kernel_rates.json"),
        *optimisations,
        *((EfficiencyOverride.of(overrides),) if overrides else ()),
    )
    cal = apply_rates(transforms, calibration or load_calibration(g.name), g)
    host_cpu = host_cpu_flops()
    if host_flops is not None:
        if not (isinstance(host_flops, (int, float)) and math.isfinite(host_flops) and host_flops > 0):
            raise InputError(f"host-tflops: must be a positive number, got {host_flops!r}")
        host_cpu = (float(host_flops), "set on the command line")
    by_shape = kernel_aware_classes(cal)
    ratios = memory_ratios(g.name) if cal.get("defaults") and "memory" not in cal.get("overridden", ()) else None
    memory_ratio = tuple(sorted(ratios[0].items())) if ratios else ()
    launch_s = launch_seconds(g.name)[0] if cal.get("defaults") else float(cal.get("launch_overhead_s", 0.0))
    link = host_link_efficiency()
    link_bytes_per_s = g.host_link_bytes_per_s * link.value
    calls_of = {sd.name: apply_calls(transforms, sd, stage_calls(sd, workload)) for sd in spec.pipeline_def.stages}
    costs = stage_costs(workload, traced, use_trace, deployment, shape, calls_of)
    for sd in spec.pipeline_def.stages:  # a what-if that runs another module in a stage (a tiny VAE decoder)
        st = costs[sd.name]
        peaks = (st.peak_activation_bytes, st.peak_activation_bytes_materialized)
        changed = apply_peaks(transforms, sd, peaks)
        if changed != peaks:
            costs = {**costs, sd.name: CallCost(st.flops, *changed, st.terms)}
    running = [sd for sd in spec.pipeline_def.stages if calls_of[sd.name] > 0]
    ran = {sd.name for sd in running}  # a stage the job does not run (TI2V's encode without --image) holds nothing
    activations = {s: st.peak_activation_bytes if s in ran else 0 for s, st in costs.items()}
    held_of = {sd.name: held_bytes(sd, spec, shape, ran) for sd in running}
    memory = pipeline_memory(spec, activations, rt, deployment.gpus, held_of)
    stored = {c: apply_weights(transforms, c, b, getattr(spec, c, None)) for c, b in memory.weights_bytes.items()}
    if stored != memory.weights_bytes:  # a what-if stores weights in another dtype (FP8 linear layers)
        memory = replace(memory, weights_bytes=stored)
    shardings = fsdp_shardings(spec, deployment, memory.weights_bytes)
    if shardings:  # a rank holds its shard and, while the component runs, the units being gathered
        memory = replace(
            memory, weights_bytes={**memory.weights_bytes, **{c: s.weights_bytes for c, s in shardings.items()}}
        )
    streamed = _streamed(spec, rt, deployment.gpus, memory.weights_bytes)
    if streamed:  # on the GPU while its stage runs: the rest of it and the blocks it keeps
        memory = replace(
            memory,
            running_bytes={c: root + how.blocks * block for c, (root, block, _, how) in streamed.items()},
            kept_bytes={c: root for c, (root, _, _, how) in streamed.items() if how.root == "kept"},
        )
    link_bytes_per_s_gpus, latency, link_info = _gpu_link(g)
    collective_rates = None
    if deployment.gpus > 1 and link_info.get("kind") != "calibrated":  # a calibrate-comm fit stands for every size
        collective_rates = CollectiveRates(g, deployment.gpus, link_bytes_per_s_gpus)
        link_info["by_size"] = {
            "how": "each collective at the bus bandwidth nccl-tests measured for its kind, message size and rank "
            "count (hybrid/data/kernel_rates.json), as a fraction of the link; bytes_per_s (the cited fraction of "
            "the link) where the data have no curve for the kind",
            "collectives": collective_evidence(g, deployment.gpus),
        }
    copies: dict[str, int] = {}
    segments = {sd.name: stage_segments(sd, workload) for sd in running if sd.moved_each_segment}
    for stage, component, _ in rt.moves(spec, running, deployment.gpus, segments):
        copies[stage] = copies.get(stage, 0) + memory.weights_bytes[component]
    stages: dict[str, StageSizing] = {}
    machines: dict[tuple[str, float, str], Machine] = {}  # by tensor path, launch cost, the matmuls' path
    try:
        for sd in spec.pipeline_def.stages:
            name = sd.name
            calls = calls_of[name]
            st = costs[name]
            base_terms = st.terms
            if apply_fuses(transforms, sd):  # compiled: its memory-bound runs fused, from the closed-form walk
                base_terms = fused_call_terms(sd, spec, shape) or base_terms
            terms = apply_terms(transforms, sd, masked_terms(sd, spec, shape, base_terms))
            if terms is not st.terms:  # a what-if changed the call's events
                st = CallCost(
                    sum(t[1] for t in terms), st.peak_activation_bytes, st.peak_activation_bytes_materialized, terms
                )
            cast_bytes = 0
            comm_seconds, comm_bytes = 0.0, 0
            if rt.on_host(sd.component):
                seconds, bound = st.flops * calls / host_cpu[0], "host"
            else:
                dtype = rt.compute_dtype(sd.component, spec)
                path = apply_tensor_path(transforms, sd, TENSOR_PATH[dtype])
                stage_launch_s = apply_launch(transforms, sd, launch_s)
                mm_path = apply_matmul_path(transforms, sd, MATMUL_PATH.get(dtype, path))
                machine = machines.get((path, stage_launch_s, mm_path))
                if machine is None:
                    other = mm_path if mm_path != path else ""
                    machine = machines[(path, stage_launch_s, mm_path)] = Machine(
                        peak_flops=g.peak_flops(path),
                        matmul_peak_flops=g.peak_flops(other) if other else 0.0,
                        peak_bytes_per_s=g.memory_bandwidth_bytes_per_s,
                        efficiency=cal["efficiency"],
                        launch_overhead_s=stage_launch_s,
                        link_bytes_per_s=link_bytes_per_s_gpus,
                        collective_latency_s=latency,
                        shape_rates=shape_rates(g, path, kernel, by_shape, other) if by_shape else None,
                        collective_rates=collective_rates,
                        memory_ratio=memory_ratio,
                    )
                t = st.time(machine)
                sharded = shardings.get(sd.component)
                fsdp = fsdp_exposed(sharded, machine, t.seconds) if sharded else None
                if rt.casts_weights(sd.component, spec) and not sharded:  # FSDP gathers bfloat16 weights
                    cast_bytes = 6 * sd.config(spec).autocast_parameters() * calls  # read fp32, write bf16
                cast_seconds = cast_bytes / (machine.peak_bytes_per_s * machine.efficiency["memory"])
                comm_seconds = (t.comm_seconds + (fsdp.seconds if fsdp else 0.0)) * calls
                comm_bytes = (st.sent_bytes + (_sent(sharded.terms) if sharded else 0)) * calls
                seconds = (t.seconds + (fsdp.seconds if fsdp else 0.0)) * calls + cast_seconds
                bound = "comm" if comm_seconds > seconds / 2 else t.bound
            copy_bytes = copies.get(name, 0)
            copy_seconds = copy_bytes / link_bytes_per_s
            if sd.component in streamed and calls:  # every call copies its blocks in, behind its compute or not
                root, block, layers, how = streamed[sd.component]
                steps = stage_steps(sd, workload)  # the rest: in and out once a step (both passes), or kept
                roots = min(calls, steps[1] * stage_segments(sd, workload)) if steps else calls
                roots = roots if how.root == "step" else 0
                blocks = layers * block / link_bytes_per_s
                exposed = calls * (max(0.0, blocks - seconds / calls) if how.overlapped else blocks)
                copy_bytes = roots * root + calls * layers * block
                copy_seconds = roots * root / link_bytes_per_s + exposed
            on_gpu = name in ran and not rt.on_host(sd.component)
            stages[name] = StageSizing(
                seconds=seconds + copy_seconds,
                bound=bound,
                peak_memory_bytes=memory.stage_peak_bytes(name),
                weights_bytes=memory.resident_weights_bytes(name),
                activation_bytes=st.peak_activation_bytes if on_gpu else 0,
                activation_bytes_materialized=st.peak_activation_bytes_materialized if on_gpu else 0,
                held_bytes=memory.held_bytes.get(name, 0),
                host_copy_bytes=copy_bytes,
                host_copy_seconds=copy_seconds,
                weight_cast_bytes=cast_bytes,
                comm_seconds=comm_seconds,
                comm_bytes_per_rank=comm_bytes,
            )
    except OverflowError:  # a count of calls beyond a float
        raise InputError(TOO_LONG) from None
    if not all(math.isfinite(st.seconds) for st in stages.values()):
        raise InputError(TOO_LONG)
    rates = provenance(cal)
    if ratios and "memory" in rates:
        rates["memory"] = {**rates["memory"], "by_category": ratios[0], "by_category_evidence": ratios[1].to_dict()}
    if by_shape:
        rates.update({c: dict(e) for c, e in rate_evidence(g, kernel, shape.dit_tokens).items() if c in by_shape})
    return GpuSizing(
        g,
        stages,
        memory.peak_bytes,
        rt,
        describe(cal),
        tuple(_warnings(g, cal, stages, memory.peak_bytes, rt, rates, launch_s, spec.pipeline_def)),
        rates,
        (
            *_assumptions(
                g,
                spec,
                rt,
                Placed(
                    tuple(memory.weights_bytes),
                    memory.resident,
                    memory.on_host,
                    tuple(name for name, n in memory.held_bytes.items() if n),
                    tuple(memory.running_bytes),
                ),
                kernel,
                link_bytes_per_s,
                host_cpu[0],
                traced is not None or use_trace,
                frozenset(shardings),
                tuple(
                    sd.name
                    for sd in spec.pipeline_def.stages
                    if stage_calls(sd, workload) and untraced_ops(sd, spec, shape)
                ),
                shape.vae_grid != (1, 1),
            ),
            *_layout_assumptions(shape, workload, deployment, g, link_info),
        ),
        kernel,
        {"bytes_per_s": link_bytes_per_s, "link": g.host_link, **link.to_dict()},
        {"flops_per_s": host_cpu[0], "evidence": host_cpu[1]},
        deployment,
        link_info,
    )


def masked_terms(sd: StageDef, spec: ModelSpec, shape: CallShape, terms: tuple[Term, ...]) -> tuple[Term, ...]:
    """``terms`` with the attention a block mask thins (:attr:`~hybrid.pipelines.StageDef.block_mask`) at the
    share of its FLOPs the kernel computes; ``terms`` itself where the stage has none."""
    if sd.block_mask is None:
        return terms
    dims, share = sd.block_mask(sd.config(spec), shape)
    return tuple(
        (c, f * share.numerator // share.denominator, m, n, d) if c == "attention" and d == dims else (c, f, m, n, d)
        for c, f, m, n, d in terms
    )


def fsdp_exposed(sharding: Sharding, machine: Machine, compute_seconds: float) -> StageTime:
    """The seconds one forward waits on FSDP's all-gathers of ``sharding``, of a forward that computes
    for ``compute_seconds``: FSDP1 (the Wan repositories' ``wan/distributed/fsdp.py``, no
    ``forward_prefetch``) issues each unit's all-gather on its own stream when the host reaches the unit
    (``_pre_forward_unshard``), while the GPU still runs the previous block (the host runs ahead of a
    GPU-bound forward), and the compute stream waits on it only at the unit's start. So the root unit's
    and the first block's gathers are waited on whole, every later block's only where it outlasts the
    previous block's compute (a block's share of ``compute_seconds``). Returned as a
    :class:`~hybrid.timing.StageTime` of its collectives' seconds."""
    *roots, blocks = sharding.terms  # the root unit's gather (one call), then the blocks' (one a block)
    exposed = sum(terms_time((root,), machine).seconds for root in roots)
    n = blocks[3]
    gather = terms_time((blocks,), machine).seconds / n
    exposed += gather + (n - 1) * max(0.0, gather - compute_seconds / n)
    return StageTime(seconds=exposed, comm_seconds=exposed)


def describe_rates(rates: Mapping[str, Mapping[str, Any]]) -> str:
    """``matmul 0.873 by shape (measured), ..., memory 0.84 by category (measured)``: each class's rate, whether
    it follows the kernel's shape or the op's category, and its kind (the report's line and its warning)."""
    return ", ".join(
        f"{c} {p['value']:.3g}{' by shape' if p.get('by_shape') else ' by category' if p.get('by_category') else ''}"
        f" ({p['kind']})"
        for c, p in rates.items()
    )


def kernel_aware_classes(cal: dict[str, Any]) -> frozenset[str]:
    """The FLOP classes timed by kernel shape (:mod:`hybrid.kernels`): with the cited defaults,
    every one the user did not override; with a timing calibration of the GPU, none (its measured
    efficiencies stand for every shape)."""
    if not cal.get("defaults"):
        return frozenset()
    return frozenset(c for c in ("matmul", "attention", "convolution") if c not in cal.get("overridden", ()))


def _gpu_link(g: GPU) -> tuple[float, float, dict[str, Any]]:
    """``(bytes/s, seconds per call, provenance)`` of collectives between ``g``s: a calibrate-comm
    run's fit where ``calibration/interconnect/<gpu>.json`` exists, else the datasheet link at the
    cited achieved fraction and the stated latency."""
    from hybrid.comm import load_interconnect

    measured = load_interconnect(g.name)
    if measured is not None:
        link = measured["link"]
        evidence = (
            f"calibrate-comm on {measured.get('world_size', '?')} x {measured.get('device_name', '?')} "
            f"({measured.get('backend', '?')}, {measured.get('date', '?')}): {link.get('how', '')}"
        )
        info: dict[str, Any] = {"bytes_per_s": float(link["bytes_per_s"]), "link": g.gpu_link, "kind": "calibrated",
                "evidence": evidence, "latency_s": float(link["latency_s"]), "latency_evidence": evidence}  # fmt: skip
        return info["bytes_per_s"], info["latency_s"], info
    e, (latency, why) = gpu_link_efficiency(), collective_latency()
    bytes_per_s = g.gpu_link_bytes_per_s * e.value
    info = {
        "bytes_per_s": bytes_per_s,
        "link": g.gpu_link,
        **e.to_dict(),
        "latency_s": latency,
        "latency_evidence": why,
    }
    return bytes_per_s, latency, info


def _sent(terms: tuple[Term, ...]) -> int:
    """Bytes one rank sends in the collectives of ``terms``: half of what they move (as much comes back)."""
    return sum(t[2] for t in terms if t[0] == "collective") // 2


ORIGINAL_CLASSES = ("CLIPModel.visual's", "WanModel's")
"""How the assumptions name the original code a stage's closed form follows: the image encoder's, a transformer's."""

COMPONENT_NAMES: dict[str, str] = {
    "text_encoder": "the text encoder",
    "image_encoder": "the image encoder",
    "audio_encoder": "the audio encoder",
    "transformer": "the DiT",
    "transformer_2": "the low-noise DiT",
    "vae": "the whole VAE",
}
"""How the report's assumptions name each model component."""


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


KERNEL_NAMES: dict[str, str] = {
    "sdpa-math": "PyTorch scaled_dot_product_attention, its math backend (scores materialised)",
    "sdpa-flash": "PyTorch scaled_dot_product_attention, its FlashAttention-2 backend",
    "sdpa-efficient": "PyTorch scaled_dot_product_attention, its memory-efficient backend",
    "cudnn": "PyTorch scaled_dot_product_attention, its cuDNN attention backend",
    "fa2": "FlashAttention-2 (flash_attn)",
    "fa3": "FlashAttention-3 (flash_attn_interface)",
    "xformers": "xFormers memory-efficient attention",
    "sage2": "SageAttention 2 (INT8 QK, FP8 PV)",
    "sage3": "SageAttention 3 (FP4 microscaling)",
    "flex": "PyTorch FlexAttention",
    "fp8-attention": "FP8 attention (FlashAttention-3's FP8 path)",
}
"""How the report's assumptions name each attention kernel."""


class Placed(NamedTuple):
    """What the assumptions say of a job's memory: its components (in the spec's order), those resident for the
    whole job, those on the host, and the stages that hold what earlier calls left."""

    components: tuple[str, ...]
    resident: tuple[str, ...]
    on_host: tuple[str, ...]
    held: tuple[str, ...]
    streamed: tuple[str, ...] = ()
    """Components streamed from host memory block by block (:attr:`PipelineMemory.running_bytes`)."""


@memoised(256)
def _assumptions(
    g: GPU,
    spec: ModelSpec,
    rt: Runtime,
    memory: Placed,
    kernel: str,
    link_bytes_per_s: float,
    host: float,
    traced: bool = False,
    sharded: frozenset[str] = frozenset(),
    untraced: tuple[str, ...] = (),
    vae_split: bool = False,
) -> tuple[str, ...]:
    source = (
        "traced on meta (--traced)"
        if traced
        else "closed form, equal to a meta trace of the real modules: wanmeter verify checks it"
    )
    walked_vae = [name for name in untraced if spec.pipeline_def.stage(name).component == "vae"]
    structured = [  # Wan-Animate-2 on LightX2V or the original code: diffusers' ops in its structure
        name
        for name in untraced
        if isinstance(spec.pipeline_def.stage(name).config(spec), WanAnimate2Transformer3DConfig)
    ]
    built = [
        n for n in untraced if spec.pipeline_def.stage(n).trace_key and n not in walked_vae and n not in structured
    ]
    unbuilt = [name for name in untraced if name not in built and name not in walked_vae and name not in structured]
    chunk = "this rank's chunk " if vae_split else ""  # LightX2V's VAE over the ranks (RuntimeDef.vae_parallel)
    if walked_vae and spec.vae.diffusers_ops:  # the tracer runs the whole video
        source += f"; {_and(walked_vae)} closed form: {chunk}as AutoencoderKLWan runs it"
    elif walked_vae:  # the tracer builds diffusers' module, whose norms upcast
        source += (
            f"; {_and(walked_vae)} closed form: {chunk}as {rt.text('code', spec)} runs its VAE, its norms in "
            f"{spec.vae.compute_dtype} (diffusers' on float32 copies), read from its code"
        )
    if structured:
        owner = STRUCTURES[rt.record.dit_ops].owner
        source += f"; {_and(structured)} closed form: diffusers' ops in {owner} structure, read from its code"
    if built:  # the original WanModel's and CLIPModel's ops: the tracer builds diffusers' and transformers' modules
        classes = [ORIGINAL_CLASSES[spec.pipeline_def.stage(n).component.startswith("transformer")] for n in built]
        source += f"; {_and(built)} closed form: the original {_and(list(dict.fromkeys(classes)))} ops, checked "
        source += "against its code"
    if unbuilt:  # no diffusers or transformers class: the original code read, not traced
        source += f"; {_and(unbuilt)} closed form: the original code's ops, equal to it run and traced at tiny sizes"
    components = list(memory.components)  # every component, in the spec's order
    code = rt.text("code", spec)
    dtypes = ", ".join(f"{COMPONENT_NAMES[c]} {dtype(rt.weight_dtype(c, spec)).short}" for c in components)
    casts = [COMPONENT_NAMES[c] for c in components if rt.casts_weights(c, spec) and c not in sharded]
    stages = spec.pipeline_def.stages
    vae = [s.name for s in stages if s.component == "vae"]
    resident = [COMPONENT_NAMES[c] for c in memory.resident]
    swapped = [
        COMPONENT_NAMES[c]
        for c in components
        if c not in memory.resident and c not in memory.on_host and c not in memory.streamed
    ]
    placement = []
    if resident:
        verb = "stays" if len(resident) == 1 else "stay"
        placement.append(f"{_and(resident)} {verb} on the GPU for the whole job (loaded once, not timed)")
    if swapped:
        each = "" if len(swapped) == 1 else "each of "
        per_segment = sorted({COMPONENT_NAMES[s.component] for s in stages if s.moved_each_segment})
        segments = f" ({_and(per_segment)} once per clip)" if per_segment and rt.offloading else ""
        placement.append(
            f"{each}{_and(swapped)} moves onto the GPU for its stage and off it after{segments}, every job, at "
            f"{link_bytes_per_s / 1e9:g} GB/s over the host link ({g.host_link}, at the achieved fraction in "
            "gpu.host_link)"
        )
    for c in memory.streamed:
        how = rt.streams(spec, c)
        assert how is not None
        rest = (
            "the rest of it (embedders, head) copied in each step (both passes of CFG)"
            if how.root == "step"
            else "the rest of it (embeddings, head or final norm) on the GPU for the whole job"
        )
        copies = (
            "each call copies every block in while the one before runs, the copy time beyond the call's compute exposed"
            if how.overlapped
            else "each call copies every block in before it runs, every copy exposed"
        )
        blocks = f"{how.blocks} block{'s' if how.blocks > 1 else ''}"
        placement.append(
            f"{COMPONENT_NAMES[c]} streams from host memory block by block ({blocks} on the GPU at a time): {copies}, "
            f"at {link_bytes_per_s / 1e9:g} GB/s, and {rest}"
        )
    experts = [c for c in components if c.startswith("transformer")] if spec.pipeline_def.boundary_ratio else []
    if experts and rt.record.experts_swap_on_one_gpu and all(c in memory.resident for c in experts):
        placement.append(
            "on several GPUs both experts stay on every rank through every stage, the text encoder's and the "
            f"VAE's too, and swap only on one GPU ({EXPERTS_RESIDENT})"
        )
    if memory.on_host:
        placement.append(
            f"{_and([COMPONENT_NAMES[c] for c in memory.on_host])} runs on the host CPU at {host / 1e12:g} TFLOP/s "
            "(gpu.host_cpu) and takes no GPU memory"
        )
    out = [
        f"runtime: {rt.describe()}, as {code} run it",
        f"weights: {dtypes}; {_and(vae)} {'keeps' if len(vae) == 1 else 'keep'} the whole AutoencoderKLWan "
        f"(encoder and decoder){', once for both' if len(vae) > 1 else ''}",
        "placement: " + "; ".join(placement),
    ]
    if casts:
        out.append(
            f"weight casts: {_and(casts)} keeps float32 weights and runs under bf16 autocast, so each call "
            "re-casts every Linear and Conv3d weight (read 4 + write 2 bytes per parameter), timed as memory "
            "traffic; --convert-model-dtype stores them in bf16 (Wan2.2)"
        )
    if rt.per_token_timestep(spec) and not spec.pipeline_def.expand_timesteps:
        out.append(
            "timestep per token: the Wan2.2 code embeds the timestep for every token (time embedder and "
            "projection over batch x tokens rows, a float32 (batch, tokens, 6, dim) modulation per block), "
            "which is in the FLOPs, bytes and activation peak; those projections run in float32 there and are "
            "timed at the bf16 rate here"
        )
    if memory.held:  # in the stage's peak, beside its own activations
        keepers = [sd.name for sd in spec.pipeline_def.stages if any(sd.name in spec.pipeline_def.stage(n).beside
                                                                     for n in memory.held)]  # fmt: skip
        out.append(
            f"held: {_and(list(memory.held))} run beside what {_and(keepers)} left on the GPU (a K/V cache for later "
            "calls, or tensors a module keeps on itself, which offload does not move); in the stage's peak (held_bytes "
            "in the JSON)"
        )
    return (
        *out,
        f"attention: {KERNEL_NAMES[kernel]}",
        "activation peak: the largest sum of live storages of one stage call run eagerly, with a fused attention "
        f"kernel ({source}); 'materialized' is the same with PyTorch's math attention; allocator caching, "
        "fragmentation, the CUDA context and kernel workspaces are not included",
        f"seconds: per-op roofline over every op of one call ({source}), max(FLOPs / (peak x efficiency), bytes / "
        "(bandwidth x efficiency)) plus a cost per op call, summed; without a timing calibration the efficiency of "
        "a matmul, convolution or attention follows its kernel shape (hybrid/data/kernel_rates.json: a GEMM's "
        "measured ceiling with wave and tile losses, the attention kernel's measured curve by key length); no "
        "overlap between ops, no torch.compile, no CUDA graphs",
        f"peaks: {g.product} datasheet, dense bf16 {g.bf16_tflops:g} TFLOP/s for bf16 stages and "
        f"{'half' if g.tf32_ratio == 0.5 else f'{g.tf32_ratio:g} x'} that (TF32) for the fp32 VAE, "
        f"{g.memory_bandwidth_gbs:g} GB/s",
        "host work, data loading, the scheduler step and video encoding are not timed",
    )


def _layout_assumptions(call: CallShape, workload: Workload, d: Deployment, g: GPU, link: dict[str, Any]) -> list[str]:
    """What a multi-GPU sizing assumed, in words (nothing on one GPU); ``call``: one rank's call shape."""
    if not d.parallel:
        return []
    out = []
    if d.sequence_degree > 1:
        rt = workload.runtime
        pad = f" (padded up: {rt.name} {rt.record.layouts['pad']})" if call.dit_tokens % d.sequence_degree else ""
        kinds = []
        if d.ulysses > 1:
            kinds.append("Ulysses all-to-alls of q, k, v and the output in every self-attention")
        if d.ring > 1:
            kinds.append(
                "the ring's all-gather of K and V in every self-attention (diffusers' rotate_method='allgather', "
                "cuDNN attention for its log-sum-exp)"
            )
        out.append(
            f"layout: {d.describe()}, figures per rank: the transformer's {call.dit_tokens:,} video tokens per "
            f"sample split {call.local_tokens:,} per rank{pad} through its blocks and head, as diffusers' context "
            "parallelism runs it (rotary tables, patch embedding and unpatchify over every token, cross-attention "
            f"over the whole text on every rank); {' and '.join(kinds)}; the head's output all-gathered per forward"
        )
        if workload.runtime.record.layout_note:
            out.append(workload.runtime.record.layout_note)
    if call.vae_grid != (1, 1):
        grids: dict[tuple[int, int], list[str]] = {}
        for sd in workload.spec.pipeline_def.stages:
            if sd.parallel_vae:  # an image-to-video condition's encode may take a grid of its own (StageDef.vae_split)
                grids.setdefault(sd.vae_split(call) if sd.vae_split else call.vae_grid, []).append(sd.name)
        split = "; ".join(f"{_and(names)} split {rows} x {cols}" for (rows, cols), names in grids.items())
        out.append(
            f"{split} over the ranks: {workload.runtime.record.vae_parallel}; any other encode runs whole on every rank"
        )
    if d.fsdp:
        out.append(
            f"FSDP ({', '.join(d.fsdp)}): each rank stores 1/{d.gpus} of the weights and all-gathers every "
            "block's bf16 parameters for its forward (one unit per block, the root unit's embedders and head "
            "gathered for the whole forward); the gathered root and one block count in its memory; FSDP1 gathers "
            "each block on its own stream while the previous block computes (no forward_prefetch: issued as the "
            "host reaches the block), so the root's and the first block's gathers are waited on whole and a later "
            "block's only where it outlasts the previous block's compute"
        )
    out.append(
        "other stages (text encoder, image encoder, VAE) run whole on every rank in step: diffusers runs the "
        "pipeline on every rank; the Wan code decodes on rank 0 while the others wait"
    )
    if link.get("kind") == "calibrated":
        rate = f"{link['bytes_per_s'] / 1e9:g} GB/s measured by calibrate-comm"
    else:
        measured = ", ".join(link.get("by_size", {}).get("collectives", {})) or "none"
        rate = (
            f"the bus bandwidth nccl-tests measured for the collective's kind, message size and rank count where the "
            f"data have it ({measured}; gpu_link.by_size), else {link['value']:g} of that peak"
        )
    out.append(
        f"collectives: bytes each rank sends over {g.gpu_link} at {rate} (gpu.gpu_link), plus "
        f"{link['latency_s'] * 1e6:g} us per call; sequence parallelism's not overlapped with compute (each result "
        "is waited on before use)"
    )
    return out


def _warnings(
    g: GPU, cal: dict[str, Any], stages: dict[str, StageSizing], peak_bytes: int, rt: Runtime,
    rates: dict[str, dict[str, Any]], launch_s: float, pipeline: Pipeline,
) -> list[str]:  # fmt: skip
    out = []
    offload = rt.offloading
    if cal.get("defaults"):
        values = describe_rates({c: p for c, p in rates.items() if p["kind"] != "override"})
        out.append(
            f"no timing calibration of {g.name}: seconds use rates from kernel measurements ({values}; "
            f"{launch_s * 1e6:g} us per kernel launch; sources in the JSON report's gpu.efficiency); "
            f"`bash calibration/device_session.sh {g.name}` on one measures its own kernels and stage calls"
        )
        borrowed = [c for c, p in rates.items() if p["kind"] == "borrowed"]
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
        stuck = all(pipeline.stage(name).component in rt.record.never_moved for name in stages)
        how = (
            "even with model offload"
            if offload
            else "and its code moves no model off the GPU (try more GPUs)"
            if stuck
            else "without offload (try --offload)"
        )
        top = max(stages, key=lambda name: stages[name].peak_memory_bytes)
        tiles = ""
        if pipeline.stage(top).component == "vae" and rt.record.vae_tiling and not rt.vae_tiling:
            tiles = f"; its peak is {top}'s, which --vae-tiling lowers ({rt.record.vae_tiling})"
        out.append(
            f"the job needs {peak_bytes / 2**30:.1f} GiB at its peak, more than the "
            f"{g.memory_gib:g} GiB of one {g.name} {how}{tiles}"
        )
    unfused = [n for n, s in stages.items() if s.peak_memory_bytes_materialized > g.memory_bytes >= s.peak_memory_bytes]
    for name in unfused:
        s = stages[name]
        out.append(
            f"{name} fits only with a fused attention kernel (flash, cuDNN or memory-efficient SDPA): with "
            f"materialised scores (PyTorch's math backend) it needs {s.peak_memory_bytes_materialized / 2**30:,.1f} GiB"
        )
    return out
