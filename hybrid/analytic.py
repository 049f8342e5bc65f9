"""Closed-form cost of each stage: the analytic twin of the tracer (no torch imported).

Each model family module writes its stage as :class:`~hybrid.rows.OpGroup` s keyed by the real
module paths and aten ops, so ``expand(stage_groups(...))`` joins the traced table row for row
(:func:`hybrid.rows.aggregate`); totals come straight from the groups in microseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from hybrid.models import STAGE_CONFIG, ModelSpec, get_preset, umt5, wan_dit, wan_vae
from hybrid.rows import STAGES, CostRow, OpGroup, expand
from hybrid.workload import Workload


@lru_cache(maxsize=65536)
def component_of(stage: str, module: str, op: str) -> str:
    """The report component of a (module, op) row of ``stage`` (analytic or traced)."""
    if stage == "text_encoder":
        return umt5.component(module, op)
    if stage == "diffusion_core":
        return wan_dit.component(module, op)
    return wan_vae.component(module, op)


def call_groups(
    stage: str, cfg: Any, batch: int, latent_frames: int, latent_height: int, latent_width: int, text_len: int
) -> list[OpGroup]:
    """FLOP groups of one call of ``stage`` with config ``cfg`` at the given latent/text shape."""
    if stage == "text_encoder":
        return umt5.umt5_groups(cfg, batch, text_len)
    if stage == "diffusion_core":
        return wan_dit.dit_groups(cfg, batch, latent_frames, latent_height, latent_width, text_len)
    if stage == "vae_decode":
        return wan_vae.vae_decode_groups(cfg, batch, latent_frames, latent_height, latent_width)
    raise ValueError(f"stage: unknown stage {stage!r}; valid: {', '.join(STAGES)}")


def _shape(workload: Workload) -> tuple[int, int, int, int, int]:
    w = workload
    return (w.batch, w.latent_frames, w.latent_height, w.latent_width, w.text_len)


def stage_groups(stage: str, spec: ModelSpec, workload: Workload) -> list[OpGroup]:
    """FLOP groups of **one call** of ``stage`` for ``workload``."""
    if stage not in STAGE_CONFIG:
        raise ValueError(f"stage: unknown stage {stage!r}; valid: {', '.join(STAGES)}")
    return call_groups(stage, getattr(spec, STAGE_CONFIG[stage]), *_shape(workload))


@lru_cache(maxsize=8192)
def _components(stage: str, cfg: Any, shape: tuple[int, int, int, int, int]) -> tuple[tuple[str, int], ...]:
    if stage == "vae_decode":  # same sum, from per-pixel coefficients (no groups built)
        return tuple(wan_vae.vae_decode_components(cfg, *shape[:4]).items())
    components: dict[str, int] = {}
    for g in call_groups(stage, cfg, *shape):
        name = component_of(stage, g.module, g.op)
        components[name] = components.get(name, 0) + g.flops_per_call * g.calls * g.repeat
    return tuple(components.items())


def components_per_call(stage: str, spec: ModelSpec, workload: Workload) -> dict[str, int]:
    """FLOPs of one call of ``stage`` by report component.

    Per-call cost depends only on the stage's config and shapes, never on steps or CFG, so it is
    memoised: sweeps over schedules pay once per distinct shape.
    """
    if stage not in STAGE_CONFIG:
        raise ValueError(f"stage: unknown stage {stage!r}; valid: {', '.join(STAGES)}")
    return dict(_components(stage, getattr(spec, STAGE_CONFIG[stage]), _shape(workload)))


def analytic_rows(workload: Workload, spec: ModelSpec | None = None, stages: Sequence[str] = STAGES) -> list[CostRow]:
    """Per-module FLOP rows of one call of each stage (the table that joins the tracer's)."""
    spec = spec or get_preset(workload.model)
    return [r for s in stages for r in expand(stage_groups(s, spec, workload))]
