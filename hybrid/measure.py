"""Timing calibration: measure op classes and stages on a real device, fit the time model, and
report predicted vs measured seconds on held-out shapes.

The same code runs on CPU (tests use it on small shapes) and on CUDA, with the device's own timers
(``torch.cuda.Event`` on CUDA, ``time.perf_counter`` on CPU). Efficiencies are achieved / peak per
op class; peaks come from the hardware database when ``gpu`` names the device, otherwise they are
measured here (best large-matmul FLOP/s, best large-copy bytes/s) and recorded as such. Matmul,
attention and memory efficiencies come from microbenchmarks at their largest shape; the per-op-call
overhead from the fit workloads' text encoder and DiT calls; the convolution efficiency from the fit
workloads' VAE decode calls (see :data:`EFFICIENCY_METHOD`).
"""

from __future__ import annotations

import datetime as _dt
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from hybrid import ops
from hybrid.models.umt5 import UMT5Config
from hybrid.models.wan_dit import WanTransformer3DConfig
from hybrid.models.wan_vae import AutoencoderKLWanConfig
from hybrid.presets import ModelSpec
from hybrid.rows import CostRow
from hybrid.timing import OP_CLASSES, Machine, stage_time
from hybrid.trace.build import DTYPES
from hybrid.versions import library_versions
from hybrid.workload import Workload

EFFICIENCY_SCHEMA = "wanmeter.efficiency/1"
EFFICIENCY_METHOD: dict[str, str] = {
    "matmul": "microbenchmark: F.linear at its largest shape",
    "attention": "microbenchmark: F.scaled_dot_product_attention (head dim 128) at its largest shape",
    "convolution": "fitted on the fit workloads' convolution-bound calls (the VAE's): predicted convolution "
    "seconds = measured seconds minus every other class's prediction",
    "memory": "microbenchmark: torch.add at its largest size",
    "launch_overhead_s": "fitted on the fit workloads' calls of the stages that are not convolution-bound (text "
    "encoder, DiT): measured minus roofline seconds, per non-view op call",
}
"""How :func:`calibrate_time` obtains each fitted number (recorded in the calibration file)."""

SMALL_SPEC = ModelSpec(
    name="small",
    text_encoder=UMT5Config(vocab_size=512, d_model=128, d_kv=32, d_ff=256, num_layers=2, num_heads=4),
    transformer=WanTransformer3DConfig(
        num_attention_heads=4, attention_head_dim=32, ffn_dim=256, num_layers=2, text_dim=128, freq_dim=32
    ),
    vae=AutoencoderKLWanConfig(base_dim=16, z_dim=16),
    default_width=128,
    default_height=128,
    trained_max_pixels=128 * 128,
)
"""Real classes small enough to time on a CPU in seconds (the full configs on a GPU)."""


def timer(device: str, repeats: int = 5, warmup: int = 2) -> Callable[[Callable[[], Any]], float]:
    """A function timing ``fn`` on ``device``: median seconds over ``repeats`` after ``warmup``."""

    def run(fn: Callable[[], Any]) -> float:
        with torch.no_grad():
            for _ in range(warmup):
                fn()
            times = []
            for _ in range(repeats):
                if device.startswith("cuda"):
                    start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
                    end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
                    start.record()
                    fn()
                    end.record()
                    torch.cuda.synchronize()
                    times.append(float(start.elapsed_time(end)) / 1e3)
                else:
                    t0 = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - t0)
        return statistics.median(times)

    return run


@dataclass(frozen=True)
class Measurement:
    """One timed microbenchmark."""

    op_class: str
    label: str
    flops: int
    bytes_moved: int
    seconds: float

    @property
    def flops_per_s(self) -> float:
        return self.flops / self.seconds

    @property
    def bytes_per_s(self) -> float:
        return self.bytes_moved / self.seconds


def _nbytes(*ts: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in ts)


def _bind(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Any]:
    return lambda: fn(*args, **kwargs)


def microbenchmarks(device: str, dtype: torch.dtype, scale: int = 1, repeats: int = 5) -> list[Measurement]:
    """Time each op class at a few shapes (multiplied by ``scale``: 1 on CPU, larger on GPUs)."""
    t = timer(device, repeats=repeats)
    out: list[Measurement] = []

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, device=device, dtype=dtype)

    for m, k in ((256, 256), (512, 512), (1024, 1024)):
        m, k = m * scale, k * scale
        x, w = rand(m, k), rand(k, k)
        y = F.linear(x, w)
        out.append(Measurement("matmul", f"linear {m}x{k}x{k}", ops.linear(m, k, k), _nbytes(x, w, y),
                               t(_bind(F.linear, x, w))))  # fmt: skip
    for heads, length, d in ((2, 256, 128), (4, 512, 128), (4, 1024, 128)):  # Wan's head dim is 128
        length *= scale
        q = rand(1, heads, length, d)
        o = F.scaled_dot_product_attention(q, q, q)
        out.append(Measurement("attention", f"sdpa {heads}x{length}x{d}", ops.sdpa(1, heads, length, length, d),
                               _nbytes(q, q, q, o), t(_bind(F.scaled_dot_product_attention, q, q, q))))  # fmt: skip
    for c, size in ((16, 16), (32, 16), (32, 32)):
        c *= scale
        x, w = rand(1, c, 4, size, size), rand(c, c, 3, 3, 3)
        y = F.conv3d(x, w, padding=1)
        flops = ops.conv3d(1, c, c, (3, 3, 3), tuple(y.shape[2:]))  # type: ignore[arg-type]
        out.append(Measurement("convolution", f"conv3d {c}ch 4x{size}x{size}", flops, _nbytes(x, w, y),
                               t(_bind(F.conv3d, x, w, padding=1))))  # fmt: skip
    for n in (1 << 18, 1 << 20, 1 << 22):
        n *= scale
        a, b = rand(n), rand(n)
        out.append(Measurement("memory", f"add {n}", 0, 3 * _nbytes(a), t(_bind(torch.add, a, b))))
    return out


@dataclass
class Calibration:
    """A fitted time model with its evidence (written as ``calibration/efficiency/<name>.json``)."""

    name: str
    device: str
    device_name: str
    dtype: str
    model: str
    peak_flops: float
    peak_bytes_per_s: float
    peak_source: str
    efficiency: dict[str, float]
    launch_overhead_s: float
    measurements: list[Measurement] = field(default_factory=list)
    held_out: list[dict[str, Any]] = field(default_factory=list)

    def machine(self) -> Machine:
        return Machine(self.peak_flops, self.peak_bytes_per_s, self.efficiency, self.launch_overhead_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": EFFICIENCY_SCHEMA,
            "name": self.name,
            "device": self.device,
            "device_name": self.device_name,
            "dtype": self.dtype,
            "model": self.model,
            "date": _dt.date.today().isoformat(),
            "versions": library_versions(),
            "peak_flops": self.peak_flops,
            "peak_bytes_per_s": self.peak_bytes_per_s,
            "peak_source": self.peak_source,
            "efficiency": self.efficiency,
            "launch_overhead_s": self.launch_overhead_s,
            "method": EFFICIENCY_METHOD,
            "measurements": [
                {**asdict(m), "flops_per_s": m.flops_per_s, "bytes_per_s": m.bytes_per_s} for m in self.measurements
            ],
            "held_out": self.held_out,
        }


def fit_efficiency(measurements: Sequence[Measurement], peak_flops: float, peak_bytes_per_s: float) -> dict[str, float]:
    """Per op class, achieved / peak at the class's largest measured shape (smaller shapes are
    launch-bound or run from cache; the model's per-call overhead accounts for the former)."""
    eff: dict[str, float] = {}
    for cls in OP_CLASSES:
        ms = [m for m in measurements if m.op_class == cls]
        if not ms:
            raise ValueError(f"measurements: none for op class {cls!r}")
        m = max(ms, key=lambda m: m.bytes_moved + m.flops)
        eff[cls] = m.bytes_per_s / peak_bytes_per_s if cls == "memory" else m.flops_per_s / peak_flops
    return eff


def _op_calls(rows: Sequence[CostRow]) -> int:
    return sum(r.calls for r in rows if r.category != "view")


def _convolutional(rows: Sequence[CostRow]) -> bool:
    """Whether most of a stage call's FLOPs are convolutions (the VAE's calls)."""
    conv = sum(r.flops for r in rows if r.category == "conv")
    return 2 * conv > sum(r.flops for r in rows)


def _fit_convolution(vae_calls: Sequence[tuple[Sequence[CostRow], float]], machine: Machine) -> float:
    """Convolution efficiency such that the VAE calls' predicted convolution seconds equal their
    measured seconds minus every other class's prediction (summed over the calls)."""
    predicted_conv = needed_conv = 0.0
    for rows, measured in vae_calls:
        t = stage_time(rows, machine)
        conv = t.by_class.get("convolution", 0.0)
        predicted_conv += conv
        needed_conv += measured - (t.seconds - conv)
    if predicted_conv <= 0 or needed_conv <= 0:
        return float(machine.efficiency["convolution"])  # nothing to fit: keep the microbenchmark's
    return min(1.0, float(machine.efficiency["convolution"]) * predicted_conv / needed_conv)


def time_stage(stage: str, spec: ModelSpec, workload: Workload, device: str, dtype: str) -> tuple[list[CostRow], float]:
    """Traced rows of one real call of ``stage`` on ``device`` and its measured seconds."""
    from hybrid.trace import trace_stage
    from hybrid.trace.build import stage_call

    rows = list(trace_stage(stage, workload, device=device, dtype=dtype).rows)
    call = stage_call(stage, workload, device=device, dtype=dtype)
    return rows, timer(device, repeats=3, warmup=1)(call.run)


FIT_WORKLOADS = (
    {"width": 64, "height": 64, "frames": 1, "text_len": 16},
    {"width": 128, "height": 64, "frames": 5, "text_len": 32},
)
HELD_OUT = (
    {"width": 96, "height": 96, "frames": 5, "text_len": 24},
    {"width": 128, "height": 128, "frames": 9, "text_len": 64},
)
PRESET_FIT_WORKLOADS = (
    {"width": 480, "height": 272, "frames": 5, "text_len": 512},
    {"width": 832, "height": 480, "frames": 9, "text_len": 512},
)
PRESET_HELD_OUT = (
    {"width": 832, "height": 480, "frames": 17, "text_len": 512},
    {"width": 1280, "height": 720, "frames": 9, "text_len": 512},
)
"""With a full preset (a GPU with room for its weights): the real models at real widths."""


def calibration_setup(model: str) -> tuple[ModelSpec, Sequence[dict[str, Any]], Sequence[dict[str, Any]]]:
    """``(spec, fit workloads, held-out workloads)`` for ``model``: ``small`` (:data:`SMALL_SPEC`,
    seconds on a CPU) or a preset name (full-size random-weight modules, for a GPU)."""
    if model == "small":
        return SMALL_SPEC, FIT_WORKLOADS, HELD_OUT
    from hybrid.presets import get_preset

    return get_preset(model), PRESET_FIT_WORKLOADS, PRESET_HELD_OUT


def calibrate_time(
    device: str = "cpu",
    dtype: str = "float32",
    gpu: str | None = None,
    spec: ModelSpec = SMALL_SPEC,
    scale: int = 1,
    fit_workloads: Sequence[dict[str, Any]] = FIT_WORKLOADS,
    held_out: Sequence[dict[str, Any]] = HELD_OUT,
) -> Calibration:
    """Measure, fit and check the time model on ``device``."""
    tdtype = DTYPES[dtype]
    torch.manual_seed(0)
    micro = microbenchmarks(device, tdtype, scale=scale)
    if gpu is not None:
        from hybrid.hardware import get_gpu

        g = get_gpu(gpu)
        key = {"float32": "bf16", "bfloat16": "bf16", "float16": "fp16"}[dtype]
        peak_flops, peak_bw = g.peak_flops(key), g.memory_bandwidth_bytes_per_s
        peak_source = f"datasheet ({g.product}): {g.source_url}"
    else:
        # the largest shapes: small elementwise ops run from cache, not DRAM
        peak_flops = max((m for m in micro if m.op_class == "matmul"), key=lambda m: m.flops).flops_per_s
        peak_bw = max((m for m in micro if m.op_class == "memory"), key=lambda m: m.bytes_moved).bytes_per_s
        peak_source = "measured in this run: the largest matmul's FLOP/s and the largest elementwise add's bytes/s"
    eff = fit_efficiency(micro, peak_flops, peak_bw)
    measured_fit = [
        (
            stage,
            *time_stage(stage, spec, Workload.of(spec, **kw), device, dtype),
        )
        for kw in fit_workloads
        for stage in spec.pipeline_def.stage_names
        if spec.pipeline_def.stage(stage).trace_key  # a module to run (not Wan2.2-S2V's transformer)
    ]
    # launch/dispatch overhead per op call: the fit workloads' total excess of measured time over
    # the roofline in the stages that are not convolution-bound, per op call
    base = Machine(peak_flops, peak_bw, eff)
    plain = [(rows, measured) for _, rows, measured in measured_fit if not _convolutional(rows)]
    excess = sum(measured - stage_time(rows, base).seconds for rows, measured in plain)
    overhead = max(0.0, excess) / max(sum(_op_calls(rows) for rows, _ in plain), 1)
    # convolution speed depends strongly on shape (channels, spatial size, kernel path), so its
    # efficiency is fitted on the VAE decode calls themselves: the one factor that makes the
    # predicted convolution time equal the measured time left after every other op class
    eff["convolution"] = _fit_convolution(
        [(rows, measured) for _, rows, measured in measured_fit if _convolutional(rows)],
        Machine(peak_flops, peak_bw, eff, overhead),
    )
    cal = Calibration(
        name=gpu or device, device=device,
        device_name=torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
        dtype=dtype, model=spec.name, peak_flops=peak_flops, peak_bytes_per_s=peak_bw, peak_source=peak_source,
        efficiency=eff, launch_overhead_s=overhead, measurements=micro,
    )  # fmt: skip
    machine = cal.machine()
    for kw in held_out:
        w = Workload.of(spec, **kw)
        for stage in spec.pipeline_def.stage_names:
            if not spec.pipeline_def.stage(stage).trace_key:
                continue
            rows, measured = time_stage(stage, spec, w, device, dtype)
            predicted = stage_time(rows, machine).seconds
            cal.held_out.append({
                "stage": stage, "workload": w.to_dict(), "predicted_s": predicted, "measured_s": measured,
                "relative_error": (predicted - measured) / measured,
            })  # fmt: skip
    return cal
