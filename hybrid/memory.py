"""Memory per stage: resident weights by component and dtype, and the pipeline's peak under a
runtime (:mod:`hybrid.runtime`: which components stay on the GPU, which are moved in for their
stage, which run on the host).

Weights are exact (closed-form parameter counts x bytes per parameter in the runtime's weight
dtype), keyed by model component (``text_encoder``, ``image_encoder``, ``transformer``, ``vae``):
a VAE that both encodes and decodes is resident once. Activation peaks come from the tracer
(``StageTrace.peak_activation_bytes``: the largest sum of live tensors one call allocates when run
eagerly with fused attention). What earlier calls leave on the GPU through a stage (a K/V cache a
reference pass filled, the tensors a module keeps on itself to its next call) is the stage's held
bytes, beside its activations (:func:`hybrid.sizing.held_bytes`). Every component loads whole (the VAE
with encoder and decoder). Allocator caching, fragmentation, CUDA context and kernel workspaces are not
included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from hybrid.dtypes import nbytes
from hybrid.errors import InputError
from hybrid.presets import ModelSpec
from hybrid.runtime import COMPONENT_DTYPES, DIFFUSERS, Runtime


def weights_bytes(spec: ModelSpec, component: str, dtype: str | None = None) -> int:
    """``parameters x bytes per parameter`` of ``component`` in ``dtype`` (default: the
    component's dtype)."""
    counts = spec.parameter_counts()
    if component not in counts:
        raise InputError(f"component: {spec.name} has no {component!r}; valid: {', '.join(counts)}")
    return counts[component] * nbytes(dtype or COMPONENT_DTYPES[component])


@dataclass(frozen=True)
class PipelineMemory:
    """Peak resident bytes of a job, per stage and overall."""

    weights_bytes: dict[str, int]
    """Per component, in the runtime's weight dtypes."""
    stage_components: dict[str, str]
    """The component each stage runs."""
    activation_bytes: dict[str, int]
    """Per stage, on the GPU (0 for a stage the runtime runs on the host)."""
    resident: tuple[str, ...]
    """Components on the GPU for the whole job."""
    on_host: tuple[str, ...] = ()
    """Components that run on the host CPU (``--t5-cpu``)."""
    held_bytes: Mapping[str, int] = field(default_factory=dict)
    """Per stage, bytes earlier calls left on the GPU that live through it (:func:`hybrid.sizing.held_bytes`)."""
    running_bytes: Mapping[str, int] = field(default_factory=dict)
    """Per component a runtime streams block by block (:meth:`hybrid.runtime.Runtime.streams`), its weights on the
    GPU while its stage runs (the blocks it keeps, its embedders and head); a moved component's are all of them."""
    kept_bytes: Mapping[str, int] = field(default_factory=dict)
    """Of those, what stays on the GPU for the whole job (FastVideo's embedders and head: it streams blocks only)."""

    def resident_weights_bytes(self, stage: str) -> int:
        """Weights on the GPU while ``stage`` runs: the resident components' (and what a streamed one keeps), plus
        its own where it is moved in for the stage (or streamed: :attr:`running_bytes`)."""
        own = self.stage_components[stage]
        extra = own not in self.resident and own not in self.on_host
        own_bytes = self.running_bytes.get(own, self.weights_bytes[own]) - self.kept_bytes.get(own, 0)
        return self._resident_bytes + (own_bytes if extra else 0)

    @cached_property
    def _resident_bytes(self) -> int:
        return sum(self.weights_bytes[c] for c in self.resident) + sum(self.kept_bytes.values())

    def stage_peak_bytes(self, stage: str) -> int:
        """On the GPU while ``stage`` runs: its activations, the weights loaded then and what earlier calls left."""
        return self.resident_weights_bytes(stage) + self.held_bytes.get(stage, 0) + self.activation_bytes[stage]

    @cached_property
    def peak_bytes(self) -> int:
        """The largest stage peak."""
        return max(self.stage_peak_bytes(s) for s in self.activation_bytes)


def pipeline_memory(
    spec: ModelSpec,
    activation_bytes: Mapping[str, int],
    runtime: Runtime = DIFFUSERS,
    gpus: int = 1,
    held_bytes: Mapping[str, int] | None = None,
) -> PipelineMemory:
    """Combine exact weights (per component, in ``runtime``'s dtypes) with per-stage activation
    peaks (e.g. from a trace) and what earlier calls leave (``held_bytes``) under ``runtime``'s placement of
    each component."""
    counts = spec.parameter_counts()
    weights = {c: n * nbytes(runtime.weight_dtype(c, spec)) for c, n in counts.items()}
    stages = {s.name: s.component for s in spec.pipeline_def.stages}
    host = tuple(c for c in counts if runtime.on_host(c))
    activations = {s: 0 if stages[s] in host else int(b) for s, b in activation_bytes.items()}
    resident = tuple(c for c in counts if c not in host and not runtime.swapped(spec, c, gpus))
    held = {s: 0 if stages[s] in host else int(b) for s, b in (held_bytes or {}).items()}
    return PipelineMemory(weights, stages, activations, resident, host, held)
