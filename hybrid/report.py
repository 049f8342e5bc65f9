"""End-to-end estimate: per-call analytic cost x schedule -> :class:`PipelineReport`."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybrid.analytic import analytic_rows, components_per_call
from hybrid.geometry import CallShape
from hybrid.models.wan_dit import WAN_OPS, WanAnimateTransformer3DConfig, WanTransformer3DConfig, wan_ops_written
from hybrid.pipelines import DIFFUSION_CORE, T2V
from hybrid.presets import ModelSpec
from hybrid.rows import CostRow
from hybrid.sampler import NUM_TRAIN_TIMESTEPS
from hybrid.schedule import call_kind, expert_steps, stage_calls
from hybrid.versions import library_versions
from hybrid.workload import Workload

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from hybrid.deployment import Deployment
    from hybrid.optimisations import Optimisation, Plan
    from hybrid.optimise import Transform
    from hybrid.sizing import GpuSizing

REPORT_SCHEMA = "wanmeter.report/1"

MODELED: tuple[str, ...] = tuple(s.modeled for s in T2V.stages)
"""What a text-to-video report covers (each pipeline's report lists its own stages')."""
UNMODELED: tuple[str, ...] = T2V.unmodeled


@dataclass(frozen=True)
class StageCost:
    """Cost of one stage over a whole job: ``calls`` calls of ``flops_per_call`` FLOPs each (the
    ``wanmeter.report/1`` document names them ``runs`` and ``flops_per_run``)."""

    stage: str
    calls: int
    flops_per_call: int
    components_per_call: dict[str, int]

    @property
    def flops(self) -> int:
        """FLOPs of all calls: ``calls * flops_per_call``."""
        return self.calls * self.flops_per_call

    @property
    def components(self) -> dict[str, int]:
        """FLOPs of all calls by component (sums to :attr:`flops`)."""
        return {k: v * self.calls for k, v in self.components_per_call.items()}


def _steps_assumption(spec: ModelSpec, workload: Workload) -> tuple[str, ...]:
    pipeline_steps = spec.pipeline_def.default_steps
    if spec.default_steps == pipeline_steps or workload.steps != spec.default_steps:
        return ()
    return (
        f"steps: {workload.steps}, {spec.name}'s recommended default (the original Wan generate.py; "
        f"diffusers' pipeline defaults to {pipeline_steps}: pass --steps to change it)",
    )


def _experts_assumption(spec: ModelSpec, workload: Workload) -> tuple[str, ...]:
    boundary = spec.pipeline_def.boundary_ratio
    if boundary is None:
        return ()
    high, low = expert_steps(workload)
    scheduler, passes = workload.runtime.record.sampler_text, workload.runtime.record.cfg_passes_text
    return (
        f"experts: transformer (high noise) runs the {high} of {workload.steps} steps whose timestep is at or above "
        f"{boundary:g} x {NUM_TRAIN_TIMESTEPS} ({scheduler}, flow_shift {workload.flow_shift:g}), transformer_2 "
        f"(low noise) the other {low}; {passes}",
    )


def _assumptions(spec: ModelSpec, workload: Workload, shape: CallShape) -> tuple[str, ...]:
    pipeline = spec.pipeline_def
    runner = workload.runtime.text("runner", spec)
    cfg = (
        "classifier-free guidance on: the text encoder runs for the prompt and the negative prompt, "
        f"the DiT runs twice per step as two separate calls ({runner})"
        if workload.cfg
        else "classifier-free guidance off: one DiT forward per step; the text encoder still runs for the prompt and "
        "the negative prompt (the pipeline's code encodes both)"
        if any(st.component == "text_encoder" and call_kind(st, workload) == "twice" for st in pipeline.stages)
        else "classifier-free guidance off: one DiT forward per step; the text encoder runs for the prompt and the "
        "reference prompt in every segment"
        if any(
            st.component == "text_encoder" and call_kind(st, workload) == "segments_guidance_plus_one"
            for st in pipeline.stages
        )
        else "classifier-free guidance off: one text-encoder call, one DiT forward per step"
    )
    runtime: tuple[str, ...] = ()
    if workload.runtime.record.note:
        per_token = (
            "; its model embeds the timestep per token (time embedder and projection over batch x tokens rows)"
            if shape.per_token_timestep and not pipeline.expand_timesteps
            else ""
        )
        dit_ops = (
            "the transformer as the original WanModel_S2V runs it (the original WanModel's blocks over the noisy, "
            "reference and motion tokens, an audio injection after 12 of them; bf16 weights as from_pretrained loads "
            "them)"
            if pipeline.audio
            else "the transformer as the original WanModel runs it (float32 norms, modulation and residual stream, "
            "the rotary embedding in float64 complex, q and k cast to bf16 for FlashAttention and back): the "
            "same FLOPs as diffusers' classes, its own bytes and activations"
            if isinstance(spec.transformer, WanTransformer3DConfig) and wan_ops_written(spec.transformer, shape)
            else "the same modules as diffusers' classes"
        )
        if shape.image_encoder_ops == WAN_OPS and any(st.component == "image_encoder" for st in pipeline.stages):
            dit_ops += (
                "; the image encoder as the original CLIPModel.visual runs it (each image resized by a bicubic "
                "interpolation from the job's size and normalised on the GPU in float32, then 31 of ViT-H/14's 32 "
                "blocks in float16 with float32 LayerNorms and no post-norm)"
            )
        runtime = (workload.runtime.text("note", spec, per_token=per_token, dit_ops=dit_ops),)
    if workload.relighting_lora and isinstance(spec.transformer, WanAnimateTransformer3DConfig):
        lora = spec.transformer.lora_parameters()
        runtime += (f"relighting LoRA ({lora:,} parameters): {workload.runtime.record.relighting_lora}",)
    t, s = spec.vae.scale_factor_temporal, spec.vae.scale_factor_spatial
    p_t, p_h, p_w = spec.transformer.patch_size
    return (
        "FLOPs follow torch.utils.flop_counter.FlopCounterMode: 2 per multiply-add in matmuls, "
        "convolutions and attention; bias adds, elementwise ops, norms and softmax count 0",
        "attention is QK^T + PV with no discount for masks (FlopCounterMode's sdpa formula)",
        f"prompts are padded to text_len = {workload.text_len} tokens (max_sequence_length); "
        "the DiT's cross-attention attends to all of them",
        cfg,
        *runtime,
        *_steps_assumption(spec, workload),
        *_experts_assumption(spec, workload),
        *dict.fromkeys(st.assumption for st in pipeline.stages if st.assumption),  # stages may share one
        f"latents: {shape.latent_frames} frames of {shape.latent_height}x{shape.latent_width} "
        f"(VAE stride {t}x{s}x{s}); DiT tokens per sample: {shape.dit_tokens} (patch {p_t}x{p_h}x{p_w})",
    )


@dataclass(frozen=True)
class PipelineReport:
    """End-to-end cost of one job: stages, total, warnings, assumptions."""

    workload: Workload
    stages: dict[str, StageCost]
    warnings: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()
    modeled: tuple[str, ...] = MODELED
    unmodeled: tuple[str, ...] = UNMODELED
    gpu: GpuSizing | None = field(default=None, compare=False)
    """Seconds and peak memory on a named GPU (``wanmeter report --gpu``), when asked for; its own
    document (:meth:`~hybrid.sizing.GpuSizing.to_dict`) is merged with this one by
    :func:`hybrid.render.report.document`."""
    optimised: Plan | None = field(default=None, compare=False)
    """With ``--optimise``: what was applied (:mod:`hybrid.optimisations`); :attr:`gpu` is then the
    optimised job's sizing and :attr:`baseline` the job's without them."""
    baseline: GpuSizing | None = field(default=None, compare=False)

    @property
    def spec(self) -> ModelSpec:
        """The workload's spec."""
        return self.workload.spec

    @property
    def model(self) -> str:
        """The spec's name."""
        return self.workload.spec.name

    @property
    def total_flops(self) -> int:
        """Sum of the stages' FLOPs."""
        return sum(s.flops for s in self.stages.values())

    def share(self, stage: str) -> float:
        """Fraction of the total spent in ``stage``."""
        total = self.total_flops
        return self.stages[stage].flops / total if total else 0.0

    def rows(self) -> list[CostRow]:
        """Per-module analytic rows of one call of each stage."""
        return analytic_rows(self.workload, stages=list(self.stages))

    def to_dict(self) -> dict[str, Any]:
        """The ``wanmeter.report/1`` document of the FLOPs (exact integers), without GPU sizing."""
        w = self.workload
        doc: dict[str, Any] = {
            "schema": REPORT_SCHEMA,
            "model": self.model,
            "workload": {
                **{k: v for k, v in w.to_dict(every_knob=True).items() if k != "model"},
                **({"segments": w.segments} if self.spec.pipeline_def.segment_frames or w.audio_seconds else {}),
            },
            "stages": {
                name: {
                    "flops": s.flops,
                    "runs": s.calls,
                    "flops_per_run": s.flops_per_call,
                    "share": self.share(name),
                    "components": s.components,
                }
                for name, s in self.stages.items()
            },
            "total": {"flops": self.total_flops},
            "versions": {"wanmeter": library_versions()["wanmeter"]},
            "warnings": list(self.warnings),
            "assumptions": list(self.assumptions),
            "modeled": list(self.modeled),
            "unmodeled": list(self.unmodeled),
        }
        return doc

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_frame(self) -> pd.DataFrame:
        """One row per (stage, component): runs, FLOPs per run, FLOPs, share of the total."""
        import pandas as pd

        total = self.total_flops
        records = [
            {
                "stage": s.stage,
                "component": comp,
                "runs": s.calls,
                "flops_per_run": per_run,
                "flops": per_run * s.calls,
                "share": per_run * s.calls / total if total else 0.0,
            }
            for s in self.stages.values()
            for comp, per_run in s.components_per_call.items()
        ]
        frame = pd.DataFrame.from_records(records)
        for col in ("flops_per_run", "flops"):
            frame[col] = frame[col].astype(object)  # exact Python ints at any size
        return frame


def stage_cost(stage: str, workload: Workload, shape: CallShape | None = None) -> StageCost:
    """Analytic :class:`StageCost` of ``stage`` for ``workload``."""
    components = components_per_call(stage, workload, shape)
    return StageCost(
        stage=stage,
        calls=stage_calls(workload.spec.pipeline_def.stage(stage), workload),
        flops_per_call=sum(components.values()),
        components_per_call=components,
    )


def estimate(workload: Workload) -> PipelineReport:
    """End-to-end analytic cost of ``workload``: per stage, per component, total."""
    spec = workload.spec
    pipeline = spec.pipeline_def
    shape = workload.shape()
    return PipelineReport(
        workload=workload,
        stages={s: stage_cost(s, workload, shape) for s in pipeline.stage_names},
        warnings=tuple(workload.extrapolation_warnings()) + spec.warnings,
        assumptions=_assumptions(spec, workload, shape),
        modeled=tuple(s.modeled for s in pipeline.stages),
        unmodeled=pipeline.unmodeled,
    )


def diffusion_core_cost(workload: Workload) -> StageCost:
    """The DiT's cost alone: ``calls`` (steps x CFG), ``flops_per_call``, ``flops``, components.

    A stable API for callers who only need the diffusion core.
    """
    return stage_cost(DIFFUSION_CORE.name, workload)


def sized_report(
    workload: Workload,
    gpu: str,
    deployment: Deployment | None = None,
    efficiency: Path | None = None,
    overrides: Mapping[str, float] | None = None,
    host_flops: float | None = None,
    traced: bool = False,
    progress: Callable[[str], None] = lambda line: None,
    optimise: tuple[Optimisation, ...] = (),
) -> PipelineReport:
    """:func:`estimate` with the job sized on ``gpu`` (:func:`hybrid.sizing.size_on_gpu`), laid out
    as ``deployment`` (default: one GPU): timed with the calibration at ``efficiency`` (default: the
    GPU's own, :func:`~hybrid.sizing.load_calibration`) and ``overrides`` of some op classes'
    efficiencies (applied after the runtime's attention kernel: what the user states wins),
    ``host_flops`` for a text encoder on the host CPU; with ``traced``, bytes and activation peaks
    from a meta trace of the real modules (``progress`` says so first).

    Bad input (the runtime on the GPU's architecture, the calibration, the overrides, whether the
    real modules can run the workload, the layout) is reported before any trace."""
    from hybrid.deployment import SINGLE
    from hybrid.hardware import get_gpu
    from hybrid.optimisations import plan_of
    from hybrid.optimise import EfficiencyOverride
    from hybrid.sizing import load_calibration, size_on_gpu

    spec = workload.spec
    g = get_gpu(gpu)
    name = g.name
    workload.runtime.check(spec, g.architecture)
    calibration = load_calibration(name, efficiency)
    if overrides:
        EfficiencyOverride.of(overrides)  # one line naming a bad class or value, before any work
    deployment = deployment or SINGLE
    deployment.check(spec, workload.runtime)
    if traced:
        from hybrid.trace import check_traceable

        check_traceable(workload)
        progress(f"tracing the workload on meta for bytes and activation peaks, sizing on {name} ...")

    def sized(w: Workload, transforms: tuple[Transform, ...] = ()) -> GpuSizing:
        return size_on_gpu(w, name, calibration=calibration, overrides=overrides, host_flops=host_flops,
                           use_trace=traced, deployment=deployment, optimisations=transforms)  # fmt: skip

    if not optimise:
        return replace(estimate(workload), gpu=sized(workload))
    plan = plan_of(optimise, workload, g)
    baseline = sized(workload)
    optimised = sized(plan.workload, plan.transforms)
    notes = tuple(f"optimisation {n}" for n in plan.notes)
    optimised = replace(optimised, assumptions=(*notes, *optimised.assumptions))
    return replace(estimate(plan.workload), gpu=optimised, optimised=plan, baseline=baseline)
