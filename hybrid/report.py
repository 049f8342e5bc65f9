"""End-to-end estimate: per-call analytic cost x schedule -> :class:`PipelineReport`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hybrid.analytic import analytic_rows, components_per_call
from hybrid.models import ModelSpec, get_preset
from hybrid.rows import STAGES, CostRow
from hybrid.schedule import schedule
from hybrid.versions import library_versions
from hybrid.workload import Workload

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from hybrid.sizing import GpuSizing

REPORT_SCHEMA = "wanmeter.report/1"

MODELED: tuple[str, ...] = (
    "text_encoder: UMT5-XXL encoder forward over text_len padded tokens (q/k/v/o projections, "
    "attention, gated FFN); once for the prompt, once more for the negative prompt under CFG",
    "diffusion_core: every WanTransformer3DModel forward (patch embedding, timestep and text "
    "embedders, self-attention, cross-attention over text_len keys, FFN, output head); steps x "
    "(2 under CFG)",
    "vae_decode: AutoencoderKLWan.decode (post_quant_conv, the decoder's per-latent-frame causal "
    "chunk loop with its time-conv cache, resample/upsample convs, mid-block attention, head); once",
)
UNMODELED: tuple[str, ...] = (
    "tokenizer, prompt handling and scheduler arithmetic (elementwise: 0 FLOPs by the convention)",
    "elementwise ops, norms, softmax, RoPE and embeddings in the FLOPs column (0 by the convention; "
    "their bytes are in the tracer's byte columns)",
    "VAE encode (not run for text-to-video), VAE tiling (enable_tiling) and slicing",
    "image-conditioned variants (I2V/FLF2V image embedder and added K/V), Wan2.2 models",
    "bytes, memory and seconds in this report (the tracer has bytes; time and memory come later)",
)


@dataclass(frozen=True)
class StageCost:
    """Cost of one stage over a whole job."""

    stage: str
    runs: int
    flops_per_run: int
    components_per_run: dict[str, int]

    @property
    def flops(self) -> int:
        """FLOPs of all runs: ``runs * flops_per_run``."""
        return self.runs * self.flops_per_run

    @property
    def components(self) -> dict[str, int]:
        """FLOPs of all runs by component (sums to :attr:`flops`)."""
        return {k: v * self.runs for k, v in self.components_per_run.items()}


def _assumptions(workload: Workload) -> tuple[str, ...]:
    cfg = (
        "classifier-free guidance on: the text encoder runs for the prompt and the negative prompt, "
        "the DiT runs twice per step as two separate calls (diffusers' WanPipeline)"
        if workload.cfg
        else "classifier-free guidance off: one text-encoder call, one DiT forward per step"
    )
    return (
        "FLOPs follow torch.utils.flop_counter.FlopCounterMode: 2 per multiply-add in matmuls, "
        "convolutions and attention; bias adds, elementwise ops, norms and softmax count 0",
        "attention is QK^T + PV with no discount for masks (FlopCounterMode's sdpa formula)",
        f"prompts are padded to text_len = {workload.text_len} tokens (max_sequence_length); "
        "the DiT's cross-attention attends to all of them",
        cfg,
        "vae_decode runs once per job over the whole batch, one latent frame per decoder call, no tiling",
        f"latents: {workload.latent_frames} frames of {workload.latent_height}x{workload.latent_width} "
        f"(VAE stride 4x8x8); DiT tokens per sample: {workload.dit_tokens} (patch 1x2x2)",
    )


@dataclass(frozen=True)
class PipelineReport:
    """End-to-end cost of one job: stages, total, warnings, assumptions."""

    model: str
    workload: Workload
    stages: dict[str, StageCost]
    warnings: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()
    modeled: tuple[str, ...] = MODELED
    unmodeled: tuple[str, ...] = UNMODELED
    spec: ModelSpec | None = field(default=None, compare=False, repr=False)
    gpu: GpuSizing | None = field(default=None, compare=False)
    """Seconds and peak memory on a named GPU (``wanmeter report --gpu``), when asked for."""

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
        return analytic_rows(self.workload, self.spec, stages=list(self.stages))

    def to_dict(self) -> dict[str, Any]:
        """The ``wanmeter.report/1`` document (FLOPs as exact integers)."""
        w = self.workload
        doc: dict[str, Any] = {
            "schema": REPORT_SCHEMA,
            "model": self.model,
            "workload": {
                "width": w.width,
                "height": w.height,
                "frames": w.frames,
                "steps": w.steps,
                "batch": w.batch,
                "text_len": w.text_len,
                "cfg": w.cfg,
            },
            "stages": {
                name: {
                    "flops": s.flops,
                    "runs": s.runs,
                    "flops_per_run": s.flops_per_run,
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
        if self.gpu is not None:
            g = self.gpu
            doc["gpu"] = {"name": g.gpu.name, "product": g.gpu.product, "offload": g.offload,
                          "calibration": g.calibration, "efficiency": g.efficiency}  # fmt: skip
            for name, s in g.stages.items():
                doc["stages"][name].update(
                    {
                        "seconds": s.seconds,
                        "bound": s.bound,
                        "peak_memory_bytes": s.peak_memory_bytes,
                        "memory": s.memory_dict(),
                    }
                )
            doc["total"].update({"seconds": g.seconds, "peak_memory_bytes": g.peak_memory_bytes})
            doc["warnings"] = [*doc["warnings"], *g.warnings]
            doc["assumptions"] = [*doc["assumptions"], *g.assumptions]
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
                "runs": s.runs,
                "flops_per_run": per_run,
                "flops": per_run * s.runs,
                "share": per_run * s.runs / total if total else 0.0,
            }
            for s in self.stages.values()
            for comp, per_run in s.components_per_run.items()
        ]
        frame = pd.DataFrame.from_records(records)
        for col in ("flops_per_run", "flops"):
            frame[col] = frame[col].astype(object)  # exact Python ints at any size
        return frame


def stage_cost(stage: str, workload: Workload, spec: ModelSpec | None = None) -> StageCost:
    """Analytic :class:`StageCost` of ``stage`` for ``workload``."""
    components = components_per_call(stage, spec or get_preset(workload.model), workload)
    return StageCost(
        stage=stage,
        runs=schedule(workload).calls(stage),
        flops_per_run=sum(components.values()),
        components_per_run=components,
    )


def estimate(workload: Workload, spec: ModelSpec | None = None) -> PipelineReport:
    """End-to-end analytic cost of ``workload``: per stage, per component, total."""
    spec = spec or get_preset(workload.model)
    return PipelineReport(
        model=spec.name,
        workload=workload,
        stages={s: stage_cost(s, workload, spec) for s in STAGES},
        warnings=tuple(workload.extrapolation_warnings()) + spec.warnings,
        assumptions=_assumptions(workload),
        spec=spec,
    )


def diffusion_core_cost(workload: Workload, spec: ModelSpec | None = None) -> StageCost:
    """The DiT's cost alone: ``runs`` (steps x CFG), ``flops_per_run``, ``flops``, components.

    A stable API for callers who only need the diffusion core.
    """
    return stage_cost("diffusion_core", workload, spec)
