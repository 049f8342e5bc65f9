"""Closed-form cost of each stage: the analytic twin of the tracer (no torch imported).

Each model family module writes its stage as :class:`~hybrid.rows.OpGroup` s keyed by the real
module paths and aten ops, so ``expand(stage_groups(...))`` joins the traced table row for row
(:func:`hybrid.rows.aggregate`); totals come straight from the groups in microseconds. Which
family serves which stage is pipeline data (:mod:`hybrid.pipelines`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from hybrid.geometry import CallShape
from hybrid.models import ModelSpec, get_preset
from hybrid.pipelines import StageDef
from hybrid.rows import CostRow, OpGroup, expand
from hybrid.workload import Workload


def stage_groups(stage: str, spec: ModelSpec, workload: Workload) -> list[OpGroup]:
    """FLOP groups of **one call** of ``stage`` for ``workload``."""
    sd = spec.pipeline_def.stage(stage)
    return sd.named(sd.groups(sd.config(spec), CallShape.of(spec, workload)))


@lru_cache(maxsize=8192)
def _components(sd: StageDef, cfg: Any, shape: CallShape) -> tuple[tuple[str, int], ...]:
    if sd.components is not None:  # same sum, from closed-form coefficients (no groups built)
        return tuple(sd.components(cfg, shape).items())
    components: dict[str, int] = {}
    for g in sd.groups(cfg, shape):
        name = g.component or sd.component_of(g.module, g.op)
        components[name] = components.get(name, 0) + g.flops_per_call * g.calls * g.repeat
    return tuple(components.items())


def components_per_call(
    stage: str, spec: ModelSpec, workload: Workload, shape: CallShape | None = None
) -> dict[str, int]:
    """FLOPs of one call of ``stage`` by report component (``shape``: the workload's
    :class:`CallShape`, if the caller has it already).

    Per-call cost depends only on the stage's config and shapes, never on steps or CFG, so it is
    memoised: sweeps over schedules pay once per distinct shape.
    """
    sd = spec.pipeline_def.stage(stage)
    return dict(_components(sd, sd.config(spec), shape or CallShape.of(spec, workload)))


def analytic_rows(
    workload: Workload, spec: ModelSpec | None = None, stages: Sequence[str] | None = None
) -> list[CostRow]:
    """Per-module FLOP rows of one call of each stage (the table that joins the tracer's)."""
    spec = spec or get_preset(workload.model)
    names = spec.pipeline_def.stage_names if stages is None else stages
    return [r for s in names for r in expand(stage_groups(s, spec, workload))]


def clear_memos() -> None:
    """Forget every memo on the analytic path: per-call components, the DiT's and UMT5's peak walks,
    the VAE's unit chunks, the two-expert step split and each preset's pipeline lookup. What "cold" means in
    ``bench/analytic_speed.py``; a test checks that no memo of the analytic path survives it."""
    from hybrid.models import PRESETS, umt5, wan_dit, wan_vae
    from hybrid.scheduler import high_noise_steps

    _components.cache_clear()
    umt5.clear_memos()
    wan_dit.clear_memos()
    wan_vae.clear_memos()
    high_noise_steps.cache_clear()
    for spec in PRESETS.values():
        spec.__dict__.pop("pipeline_def", None)
        spec.__dict__.pop("_parameter_counts", None)
