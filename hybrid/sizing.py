"""Sizing a job on a named GPU: seconds and peak memory per stage (``wanmeter report --gpu``).

Seconds come from the time model (:mod:`hybrid.timing`) over the rows traced on the meta device
(exact bytes per op), with the efficiencies and per-call overhead of a timing calibration run on
that GPU (``calibration/efficiency/<gpu>.json``, written by ``wanmeter calibrate-time``). Peak
memory is the stage's resident weights plus its traced activation peak (:mod:`hybrid.memory`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybrid.hardware import GPU, get_gpu
from hybrid.memory import pipeline_memory
from hybrid.models import ModelSpec
from hybrid.rows import STAGES
from hybrid.workload import Workload

EFFICIENCY_DIR = Path(__file__).resolve().parent.parent / "calibration" / "efficiency"
FP32_TENSOR_RATIO = 0.5
"""Dense TF32 tensor throughput is half the dense BF16 one on all ten GPUs of the database
(datasheets); float32 stages (the VAE) are timed at that rate, as PyTorch runs float32 convolutions
on TF32 tensor cores by default (``torch.backends.cudnn.allow_tf32``)."""


def load_calibration(gpu: str, path: Path | None = None) -> dict[str, Any]:
    """The timing calibration of ``gpu``; ``ValueError`` with the command to make one if absent."""
    path = path or EFFICIENCY_DIR / f"{gpu}.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(
            f"gpu: no timing calibration for {gpu} ({path}); run `wanmeter calibrate-time --device cuda "
            f"--gpu {gpu} --dtype bfloat16` on one, or pass --efficiency FILE"
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


@dataclass(frozen=True)
class GpuSizing:
    """A job on one GPU: per stage and in total."""

    gpu: GPU
    stages: dict[str, StageSizing]
    peak_memory_bytes: int
    offload: bool
    calibration: str
    warnings: tuple[str, ...] = field(default=())

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages.values())


def size_on_gpu(
    workload: Workload,
    spec: ModelSpec,
    gpu: str,
    offload: bool = False,
    calibration: dict[str, Any] | None = None,
) -> GpuSizing:
    """Trace ``workload`` on meta and size every stage on ``gpu``."""
    from hybrid.timing import Machine, stage_time
    from hybrid.trace import trace

    g = get_gpu(gpu)
    cal = calibration or load_calibration(g.name)
    result = trace(workload, spec=spec)
    memory = pipeline_memory(spec, {s: st.peak_activation_bytes for s, st in result.stages.items()}, offload=offload)
    stages: dict[str, StageSizing] = {}
    for name in STAGES:
        st = result.stages[name]
        ratio = FP32_TENSOR_RATIO if st.dtype == "float32" else 1.0
        machine = Machine(
            peak_flops=g.peak_flops("bf16") * ratio,
            peak_bytes_per_s=g.memory_bandwidth_bytes_per_s,
            efficiency=cal["efficiency"],
            launch_overhead_s=float(cal.get("launch_overhead_s", 0.0)),
        )
        t = stage_time(st.rows, machine)
        stages[name] = StageSizing(t.seconds * st.calls, t.bound, memory.stage_peak_bytes(name))
    warnings = []
    if cal.get("name") != g.name:
        warnings.append(
            f"the timing calibration was measured on {cal.get('device_name', '?')} (name {cal.get('name')!r}), "
            f"not on a {g.name}: its efficiencies may not hold here"
        )
    if memory.peak_bytes > g.memory_bytes:
        how = "even with model offload" if offload else "without offload (try --offload)"
        warnings.append(
            f"the job needs {memory.peak_bytes / 2**30:.1f} GiB at its peak, more than the "
            f"{g.memory_gib:g} GiB of one {g.name} {how}"
        )
    source = f"{cal.get('device_name', '?')} on {cal.get('date', '?')} ({cal.get('versions', {}).get('torch', '?')})"
    return GpuSizing(g, stages, memory.peak_bytes, offload, source, tuple(warnings))
