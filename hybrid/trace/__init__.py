"""Meta-device tracer: per-op cost tables of the real Wan modules at any shape.

``trace(workload)`` builds each stage's real module (``UMT5EncoderModel``,
``WanTransformer3DModel``, ``AutoencoderKLWan``, ...: the pipeline's components, through the
registry :data:`hybrid.trace.build.TRACE_CALLS`) on the meta device, runs one call of it under
:class:`~hybrid.trace.mode.CostMode` and returns its rows. FLOPs follow FlopCounterMode's
convention (:mod:`hybrid.ops`) and equal its totals on meta, where attention decomposes to ``bmm``;
unlike it, attention is also counted when a fused CPU/CUDA kernel runs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hybrid.deployment import SINGLE, Deployment
from hybrid.errors import InputError
from hybrid.rows import CostRow, to_frame, total_flops
from hybrid.schedule import stage_calls
from hybrid.versions import library_versions
from hybrid.workload import Workload

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from hybrid.pipelines import StageDef

TRACE_SCHEMA = "wanmeter.trace/1"


@dataclass(frozen=True)
class StageTrace:
    """One call of one stage: its rows, and how many calls the job makes."""

    stage: str
    module_class: str
    dtype: str
    device: str
    rows: tuple[CostRow, ...]
    calls: int
    unsupported_ops: dict[str, dict[str, Any]] = field(default_factory=dict)
    peak_activation_bytes: int = 0
    """Largest sum of live tensors the call allocates (inputs and weights excluded), as executed
    eagerly with fused attention (no score matrix); allocator caching and kernel workspaces are
    not included."""
    peak_module: str = ""
    """Innermost module running when that peak was reached."""
    peak_activation_bytes_materialized: int = 0
    """The same peak when attention materialises its scores (PyTorch's math backend: float32
    copies of q/k/v, the score matrix and its softmax live during each attention call)."""
    peak_module_materialized: str = ""

    @property
    def flops(self) -> int:
        """FLOPs of one call."""
        return total_flops(self.rows)


@dataclass(frozen=True)
class TraceResult:
    """Traced stages of one workload."""

    workload: Workload
    stages: dict[str, StageTrace]
    warnings: tuple[str, ...] = ()
    deployment: Deployment = SINGLE
    """With several GPUs, the transformer stages are one rank's."""

    @property
    def model(self) -> str:
        """The workload's spec's name."""
        return self.workload.spec.name

    @property
    def unsupported_ops(self) -> dict[str, dict[str, Any]]:
        """Ops that ran but have no handler: ``{op: {"calls", "stage", "module"}}`` (empty when
        everything was costed)."""
        out: dict[str, dict[str, Any]] = {}
        for st in self.stages.values():
            for op, info in st.unsupported_ops.items():
                if op in out:
                    out[op]["calls"] += info["calls"]
                else:
                    out[op] = dict(info)
        return out

    @property
    def rows(self) -> list[CostRow]:
        """All rows of all traced stages."""
        return [r for st in self.stages.values() for r in st.rows]

    def to_frame(self) -> pd.DataFrame:
        """All rows as a pandas DataFrame."""
        return to_frame(self.rows)

    def to_dict(self) -> dict[str, Any]:
        """The ``wanmeter.trace/1`` JSON document (FLOPs and bytes as exact integers)."""
        return {
            "schema": TRACE_SCHEMA,
            "model": self.model,
            "workload": self.workload.to_dict(),
            "versions": library_versions(),
            "stages": {
                name: {
                    "flops": st.flops,
                    "calls": st.calls,
                    "module_class": st.module_class,
                    "dtype": st.dtype,
                    "device": st.device,
                    "peak_activation_bytes": st.peak_activation_bytes,
                    "peak_module": st.peak_module,
                    "peak_activation_bytes_materialized": st.peak_activation_bytes_materialized,
                    "peak_module_materialized": st.peak_module_materialized,
                    "rows": [r.to_dict() for r in st.rows],
                }
                for name, st in self.stages.items()
            },
            "unsupported_ops": self.unsupported_ops,
            "warnings": list(self.warnings),
            **({"deployment": self.deployment.to_dict()} if self.deployment.parallel else {}),
        }


def check_traceable(workload: Workload, stages: Sequence[str] | None = None) -> None:
    """One-line ``ValueError`` where the real modules cannot run ``workload``: a tensor beyond
    torch's int64 sizes, or (for the transformer stages) a latent grid longer than its rotary table
    (:meth:`hybrid.workload.Workload.rotary_overflow`; the analytic report only warns)."""
    spec = workload.spec
    too_big = workload.torch_size_overflow()
    if too_big is not None:
        raise InputError(too_big)
    names = spec.pipeline_def.stage_names
    asked = [s for s in (names if stages is None else stages) if s in names]
    rotary = workload.rotary_overflow()
    if rotary is not None and any(spec.pipeline_def.stage(s).component.startswith("transformer") for s in asked):
        raise InputError(rotary)
    for name in asked:
        sd = spec.pipeline_def.stage(name)
        if not sd.trace_key:
            raise InputError(
                f"stage: {name} of {spec.name} has no module diffusers or transformers builds (the original "
                "repository's class): its cost is closed form only; valid: leave out --traced, or trace other stages"
            )
        if sd.component == "vae":
            _check_vae_calls(name, sd, workload)


TRACE_VAE_BLOCK_CALLS = 384
"""The most VAE work a trace takes on, in encoder or decoder calls times residual blocks per level
(plus one): 128 calls at the published 2 blocks. The tracer runs the real modules, a call per
latent frame, about 60 ms each on meta (a 4,093-frame decode, 1,024 calls, took over 60 s)."""


def _check_vae_calls(stage: str, sd: StageDef, workload: Workload) -> None:
    from hybrid.trace.videos import vae_calls

    trace_key, cfg = sd.trace_key, sd.config(workload.spec)
    shape = workload.shape()
    shape = sd.at(shape) if sd.at else shape
    calls = vae_calls(trace_key, cfg, shape)
    blocks = cfg.num_res_blocks
    most = TRACE_VAE_BLOCK_CALLS // (blocks + 1)
    if calls > most:
        field = "ref_images" if shape.ref_images > calls - shape.ref_images else "frames"
        raise InputError(
            f"{field}: {stage} would run the VAE {calls:,} times (once per latent frame of each video); trace "
            f"runs the real modules, about 60 ms a call on meta, at most {most:,} (at {blocks} residual blocks "
            "per level); the analytic report has no such limit"
        )


def trace_stage(
    stage: str,
    workload: Workload,
    device: str = "meta",
    dtype: str | None = None,
    deployment: Deployment = SINGLE,
) -> StageTrace:
    """Trace one call of ``stage`` for ``workload`` (see :func:`trace`); with a sequence-parallel
    ``deployment``, the transformer stages run as rank 0 of it under diffusers' context parallelism
    in a fake process group (:mod:`hybrid.trace.parallel`), their collectives recorded as rows."""
    import torch

    from hybrid.trace.build import stage_call
    from hybrid.trace.mode import CanonicalFunctionMode, CostMode, ModuleStack, flex_attention_rows

    spec = workload.spec
    split = deployment.sequence_degree > 1 and spec.pipeline_def.stage(stage).component.startswith("transformer")
    with contextlib.ExitStack() as world:
        prepare = None
        if split:
            from hybrid.trace.parallel import enable_sequence_parallel, fake_world, quiet_parallel

            world.enter_context(fake_world(deployment.sequence_degree))
            world.enter_context(quiet_parallel())

            def prepare(module: torch.nn.Module) -> None:
                enable_sequence_parallel(module, deployment.ulysses, deployment.ring)

        call = stage_call(stage, workload, device=device, dtype=dtype, prepare=prepare)
        with ModuleStack(call.module) as modules:
            cost = CostMode(stage, modules)
            with torch.no_grad(), cost, CanonicalFunctionMode(cost), flex_attention_rows(cost):
                call.run()
    unsupported = {
        op: {"calls": n, "stage": stage, "module": cost.unsupported_modules[op]} for op, n in cost.unsupported.items()
    }
    return StageTrace(
        stage=stage,
        module_class=call.class_name,
        dtype=str(call.dtype).removeprefix("torch."),
        device=device,
        rows=tuple(cost.rows()),
        calls=stage_calls(spec.pipeline_def.stage(stage), workload),
        unsupported_ops=unsupported,
        peak_activation_bytes=cost.peak_live_bytes,
        peak_module=cost.peak_module,
        peak_activation_bytes_materialized=cost.peak_live_bytes_materialized,
        peak_module_materialized=cost.peak_module_materialized,
    )


def trace(
    workload: Workload,
    stages: Sequence[str] | None = None,
    device: str = "meta",
    dtype: str | None = None,
    progress: Callable[[str], None] | None = None,
    deployment: Deployment = SINGLE,
) -> TraceResult:
    """Trace one call of each of ``stages`` (default: every stage of the pipeline that a diffusers or
    transformers module builds) for ``workload``.

    The workload's spec is a preset's or a local checkpoint's configs. ``device`` is ``"meta"`` (no
    memory, any size) or a real device for small configs, where the modules run on random weights.
    ``dtype`` overrides the per-stage default compute dtype (diffusers' dtype of the stage's
    component, :data:`hybrid.runtime.COMPONENT_DTYPES`). ``progress`` receives one line per stage. With a
    sequence-parallel ``deployment`` the transformer stages are one rank's (:func:`trace_stage`).
    """
    spec = workload.spec
    names = spec.pipeline_def.stage_names
    unbuilt: tuple[str, ...] = ()
    if stages is None:  # every stage a diffusers or transformers module builds
        stages = tuple(sd.name for sd in spec.pipeline_def.stages if sd.trace_key)
        unbuilt = tuple(n for n in names if n not in stages)
    check_traceable(workload, stages)
    stages = tuple(stages)
    bad = [s for s in stages if s not in names]
    if bad:
        raise InputError(f"stage: unknown stage {bad[0]!r} for {spec.name}; valid: {', '.join(names)}, all")
    out: dict[str, StageTrace] = {}
    for i, stage in enumerate(stages, 1):
        t0 = time.perf_counter()
        if progress:
            progress(f"[{i}/{len(stages)}] tracing {stage} on {device} ...")
        out[stage] = trace_stage(stage, workload, device=device, dtype=dtype, deployment=deployment)
        if progress:
            progress(f"[{i}/{len(stages)}] {stage}: {len(out[stage].rows)} rows in {time.perf_counter() - t0:.2f} s")
    warnings = tuple(workload.extrapolation_warnings()) + spec.warnings
    if unbuilt:
        warnings += (
            f"{', '.join(unbuilt)} not traced: no diffusers or transformers module builds the original repository's "
            "class; their cost is closed form (wanmeter report)",
        )
    return TraceResult(workload=workload, stages=out, warnings=warnings, deployment=deployment)
