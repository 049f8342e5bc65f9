"""wanmeter: stage-by-stage cost of Wan video jobs.

Public API (importing this package does not import torch; :func:`trace` does on first use):

* :class:`Workload` - one job (model, size, frames, steps, batch, text_len, cfg), validated;
* :data:`PRESETS`, :func:`get_preset`, :class:`ModelSpec` - model configs and parameter counts;
* :data:`PIPELINES`, :class:`Pipeline` - each pipeline's ordered stages (``spec.pipeline_def``);
* :func:`resolve_model` - a preset or a local Diffusers folder's configs;
* :func:`schedule` - calls per stage;
* :func:`estimate` - end-to-end analytic cost (:class:`PipelineReport`), in microseconds;
* :func:`diffusion_core_cost` - the DiT's cost alone (stable API);
* :func:`trace` - per-op rows of the real modules traced on the meta device;
* :func:`size_on_gpu` - seconds, bound and peak memory per stage on a named GPU (traces on meta);
  :func:`get_gpu`, :func:`gpus` - the hardware database; :func:`default_efficiency` - its cited
  default efficiencies;
* :class:`CostRow` - the one row type; :data:`FLOPS_PER_MAC` - the FLOP convention.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hybrid.checkpoint import CheckpointError, resolve_model
from hybrid.hardware import default_efficiency, get_gpu, gpus
from hybrid.ops import FLOPS_PER_MAC
from hybrid.pipelines import PIPELINES, Pipeline
from hybrid.presets import PRESETS, ModelSpec, get_preset
from hybrid.report import PipelineReport, StageCost, diffusion_core_cost, estimate
from hybrid.rows import CostRow
from hybrid.schedule import Schedule, schedule
from hybrid.sizing import GpuSizing, size_on_gpu
from hybrid.workload import Workload

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.trace import TraceResult

__all__ = [
    "FLOPS_PER_MAC",
    "PIPELINES",
    "PRESETS",
    "CheckpointError",
    "CostRow",
    "GpuSizing",
    "ModelSpec",
    "Pipeline",
    "PipelineReport",
    "Schedule",
    "StageCost",
    "Workload",
    "default_efficiency",
    "diffusion_core_cost",
    "estimate",
    "get_gpu",
    "get_preset",
    "gpus",
    "resolve_model",
    "schedule",
    "size_on_gpu",
    "trace",
]

__version__ = "0.1.0"


def trace(workload: Workload, **kwargs: Any) -> TraceResult:
    """See :func:`hybrid.trace.trace` (imported lazily: torch is heavy)."""
    from hybrid.trace import trace as _trace

    return _trace(workload, **kwargs)
