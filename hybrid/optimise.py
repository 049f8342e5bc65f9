"""Optimisations as transforms between the walks and the sizing that reads them.

A :class:`Transform` changes what a job's walks report before sizing times it, through three hooks:

* :meth:`~Transform.calls`: how many calls a stage makes (step caching skips a share of them);
* :meth:`~Transform.terms`: one stage call's roofline terms, ``(category, flops, bytes moved, calls, dims)``
  (sparse attention keeps a share of the attention FLOPs; FP8 weights halve a matmul's weight bytes);
* :meth:`~Transform.rates`: the efficiency each op class runs at on a GPU, with its provenance (another
  attention kernel; an override on the command line).

Each transform is one entry with its source. Sizing applies, in order, the runtime's attention kernel
(:class:`AttentionKernel`), the user's what-ifs, then ``--efficiency-override`` (:class:`EfficiencyOverride`,
so what the user states last wins). The FLOP report is never transformed: it counts what the model's
modules run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hybrid.errors import InputError
from hybrid.hardware import GPU, kernel_efficiency
from hybrid.kernels import memory_fraction
from hybrid.pipelines import StageDef
from hybrid.timing import OP_CLASSES, Term, merge_terms

Calibration = dict[str, Any]
"""A timing calibration document: ``efficiency`` per op class, and where each value comes from."""


@dataclass(frozen=True)
class Transform:
    """The identity: every hook returns what it is given. A transform overrides the hooks it needs."""

    name: str
    source: str = ""
    """Where the transform's numbers come from (a paper, a benchmark, the runtime's code)."""

    def calls(self, stage: StageDef, calls: int) -> int:
        """Calls ``stage`` makes in one job, given ``calls`` before this transform."""
        return calls

    def terms(self, stage: StageDef, terms: tuple[Term, ...]) -> tuple[Term, ...]:
        """The roofline terms of one call of ``stage``."""
        return terms

    def rates(self, cal: Calibration, gpu: GPU) -> Calibration:
        """The calibration the op classes are timed with on ``gpu``."""
        return cal

    def launch(self, stage: StageDef, seconds: float) -> float:
        """The host seconds per launched kernel in ``stage``, given ``seconds`` before this transform."""
        return seconds

    def matmul_path(self, stage: StageDef, path: str) -> str:
        """The tensor path (``bf16``, ``fp8``, ...) ``stage``'s matrix products run on, given ``path``."""
        return path

    def weights(self, component: str, nbytes: int, config: Any) -> int:
        """The bytes ``component``'s stored weights take (``config``: its config), given ``nbytes``."""
        return nbytes


def describe(cal: Calibration) -> str:
    """Where a calibration's efficiencies come from, in words."""
    if cal.get("defaults"):
        return f"none; default efficiencies from cited public measurements (retrieved {cal.get('date', '?')})"
    return f"{cal.get('device_name', '?')} on {cal.get('date', '?')} ({cal.get('versions', {}).get('torch', '?')})"


def provenance(cal: Calibration) -> dict[str, dict[str, Any]]:
    """Per op class, the efficiency's value and where it comes from."""
    if "provenance" in cal:
        return {c: dict(p) for c, p in cal["provenance"].items()}
    source = f"timing calibration: {describe(cal)}"
    return {c: {"value": v, "kind": "calibrated", "evidence": source} for c, v in cal["efficiency"].items()}


@dataclass(frozen=True)
class AttentionKernel(Transform):
    """Attention runs ``kernel``: its cited efficiency on the GPU's architecture where one is
    measured (``kernels`` in ``hybrid/data/efficiency_defaults.json``), else the GPU's own."""

    kernel: str = "sdpa-flash"

    def rates(self, cal: Calibration, gpu: GPU) -> Calibration:
        e = kernel_efficiency(self.kernel, gpu)
        if e is None:
            return cal
        p = provenance(cal)
        p["attention"] = e.to_dict()
        return {**cal, "efficiency": {**cal["efficiency"], "attention": e.value}, "provenance": p}


@dataclass(frozen=True)
class MeasuredMemory(Transform):
    """Without a timing calibration, memory-bound ops run at the GPU's own measured streaming rate
    where one is published (:func:`hybrid.kernels.memory_fraction`), else at the cited default."""

    def rates(self, cal: Calibration, gpu: GPU) -> Calibration:
        measured = memory_fraction(gpu.name) if cal.get("defaults") else None
        if measured is None:
            return cal
        value, evidence = measured
        p = provenance(cal)
        p["memory"] = {"value": value, **evidence.to_dict()}
        return {**cal, "efficiency": {**cal["efficiency"], "memory": value}, "provenance": p}


@dataclass(frozen=True)
class EfficiencyOverride(Transform):
    """Some op classes' efficiencies replaced (``--efficiency-override CLASS=VALUE``)."""

    overrides: tuple[tuple[str, float], ...] = ()

    @staticmethod
    def of(overrides: Mapping[str, float]) -> EfficiencyOverride:
        """The override of ``overrides``; ``ValueError`` naming a bad class or value."""
        bad = [c for c in overrides if c not in OP_CLASSES]
        if bad:
            raise InputError(f"efficiency-override: unknown op class {bad[0]!r}; valid: {', '.join(OP_CLASSES)}")
        out_of_range = {c: v for c, v in overrides.items() if not 0 < v <= 1}
        if out_of_range:
            c, v = next(iter(out_of_range.items()))
            raise InputError(f"efficiency-override: {c}={v:g} is out of range; valid: 0 < value <= 1")
        return EfficiencyOverride("efficiency override", "set on the command line", tuple(overrides.items()))

    def rates(self, cal: Calibration, gpu: GPU) -> Calibration:
        return self.apply(cal)

    def apply(self, cal: Calibration) -> Calibration:
        """``cal`` with the overridden efficiencies, each marked as an override of what it was."""
        overrides = dict(self.overrides)
        p = provenance(cal)
        for c, v in overrides.items():
            p[c] = {"value": v, "kind": "override", "evidence": f"set on the command line (was {p[c]['value']:g})"}
        return {
            **cal,
            "efficiency": {**cal["efficiency"], **overrides},
            "provenance": p,
            "overridden": sorted(overrides),
        }


def _dit(component: str) -> bool:
    """Whether ``component`` is a DiT (``transformer``, A14B's ``transformer_2``), as the pipelines name
    them: what step caches skip, ``torch.compile`` compiles and FP8 checkpoints quantise."""
    return component.startswith("transformer")


@dataclass(frozen=True)
class SkipCalls(Transform):
    """A step cache: ``share`` of the transformer's calls skip the block stack and reuse a cached
    residual (``floor(share * calls)`` of each DiT stage's calls are left out)."""

    share: float = 0.0

    def calls(self, stage: StageDef, calls: int) -> int:
        if not _dit(stage.component):
            return calls
        return calls - math.floor(self.share * calls)


@dataclass(frozen=True)
class Compiled(Transform):
    """The transformer compiled with CUDA graphs: no host launch cost per kernel in its stages."""

    def launch(self, stage: StageDef, seconds: float) -> float:
        return 0.0 if _dit(stage.component) else seconds


@dataclass(frozen=True)
class Fp8Linear(Transform):
    """The transformer's Linear layers in FP8 (W8A8, per-token dynamic activation scales), as LightX2V's
    quantised checkpoints run them: every matrix product of its stages on the GPU's FP8 tensor path,
    reading its input and weight in one byte per element and writing bf16; before each, its input
    quantised (read twice in bf16: the amax, then the scaling; written in FP8 with a float32 scale per
    row); the blocks' Linear weights stored in one byte each (``weight_elements``). The embedders' and
    head's products (under 1% of the DiT's FLOPs) are counted on the FP8 path too."""

    def matmul_path(self, stage: StageDef, path: str) -> str:
        return "fp8" if _dit(stage.component) else path

    def terms(self, stage: StageDef, terms: tuple[Term, ...]) -> tuple[Term, ...]:
        if not _dit(stage.component):
            return terms
        out: list[Term] = []
        for category, flops, moved, calls, dims in terms:
            if category == "matmul" and len(dims) == 4 and dims[0] == 1 and calls:
                _, m, n, k = dims
                out.append((category, flops, calls * (m * k + k * n + 2 * m * n + 2 * n), calls, dims))
                out.append(("elementwise", 0, calls * (5 * m * k + 4 * m), calls, ()))  # the input's quantisation
            else:
                out.append((category, flops, moved, calls, dims))
        return merge_terms(out)

    def weights(self, component: str, nbytes: int, config: Any) -> int:
        if not _dit(component) or config is None:
            return nbytes
        elements = weight_elements(config)
        per = nbytes // max(1, int(config.num_parameters()))  # the stored dtype's bytes per element
        return nbytes - elements * (per - 1)


def weight_elements(config: Any) -> int:
    """The blocks' Linear weights of a transformer config (biases left out): what FP8 checkpoints store in
    one byte each: per block ``8 D^2 + 2 D F`` (two attentions' q, k, v, o and the FFN), ``+ 2 K D`` with
    image input (``add_k_proj``, ``add_v_proj``)."""
    d, f = int(config.inner_dim), int(config.ffn_dim)
    added = 2 * int(config.added_kv_proj_dim) * d if config.added_kv_proj_dim is not None else 0
    return int(config.num_layers) * (8 * d * d + 2 * d * f + added)


def apply_matmul_path(transforms: Iterable[Transform], stage: StageDef, path: str) -> str:
    """The tensor path of ``stage``'s matrix products through every transform, in order."""
    for t in transforms:
        path = t.matmul_path(stage, path)
    return path


def apply_weights(transforms: Iterable[Transform], component: str, nbytes: int, config: Any) -> int:
    """``component``'s stored weight bytes through every transform, in order."""
    for t in transforms:
        nbytes = t.weights(component, nbytes, config)
    return nbytes


def apply_launch(transforms: Iterable[Transform], stage: StageDef, seconds: float) -> float:
    """``seconds`` per launch in ``stage`` through every transform's :meth:`~Transform.launch`, in order."""
    for t in transforms:
        seconds = t.launch(stage, seconds)
    return seconds


def apply_rates(transforms: Iterable[Transform], cal: Calibration, gpu: GPU) -> Calibration:
    """``cal`` through every transform's :meth:`~Transform.rates`, in order."""
    for t in transforms:
        cal = t.rates(cal, gpu)
    return cal


def apply_calls(transforms: Iterable[Transform], stage: StageDef, calls: int) -> int:
    """``calls`` of ``stage`` through every transform's :meth:`~Transform.calls`, in order."""
    for t in transforms:
        calls = t.calls(stage, calls)
    return calls


def apply_terms(transforms: Iterable[Transform], stage: StageDef, terms: tuple[Term, ...]) -> tuple[Term, ...]:
    """One call's ``terms`` of ``stage`` through every transform's :meth:`~Transform.terms`, in order."""
    for t in transforms:
        terms = t.terms(stage, terms)
    return terms
