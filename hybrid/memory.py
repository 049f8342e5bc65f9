"""Memory per stage: resident weights by component and dtype, and the pipeline's peak with or
without offload.

Weights are exact (closed-form parameter counts x bytes per parameter), keyed by model component
(``text_encoder``, ``image_encoder``, ``transformer``, ``vae``): a VAE that both encodes and
decodes is resident once. Activation peaks come from the tracer
(``StageTrace.peak_activation_bytes``: the largest sum of live tensors one call allocates when run
eagerly with fused attention). Assumptions: every component loads whole (the VAE with encoder and
decoder), as the diffusers pipelines load them; without offload all components stay on the GPU;
with model offload only the running stage's component is resident. Allocator caching,
fragmentation, CUDA context and kernel workspaces are not included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hybrid.models import ModelSpec
from hybrid.pipelines import COMPONENT_DTYPES

BYTES_PER_PARAM: dict[str, int] = {"float32": 4, "bfloat16": 2, "float16": 2, "float8": 1}
"""Bytes per parameter by weight dtype (torch's spelling, as :data:`~hybrid.pipelines.COMPONENT_DTYPES`)."""


def weights_bytes(spec: ModelSpec, component: str, dtype: str | None = None) -> int:
    """``parameters x bytes per parameter`` of ``component`` in ``dtype`` (default: the
    component's dtype)."""
    counts = spec.parameter_counts()
    if component not in counts:
        raise ValueError(f"component: {spec.name} has no {component!r}; valid: {', '.join(counts)}")
    dtype = dtype or COMPONENT_DTYPES[component]
    if dtype not in BYTES_PER_PARAM:
        raise ValueError(f"dtype: unknown weight dtype {dtype!r}; valid: {', '.join(BYTES_PER_PARAM)}")
    return counts[component] * BYTES_PER_PARAM[dtype]


@dataclass(frozen=True)
class PipelineMemory:
    """Peak resident bytes of a job, per stage and overall."""

    weights_bytes: dict[str, int]
    """Per component."""
    stage_components: dict[str, str]
    """The component each stage runs."""
    activation_bytes: dict[str, int]
    """Per stage."""
    offload: bool

    def resident_weights_bytes(self, stage: str) -> int:
        """Weights on the GPU while ``stage`` runs: its component's with offload, all without."""
        if self.offload:
            return self.weights_bytes[self.stage_components[stage]]
        return sum(self.weights_bytes.values())

    def stage_peak_bytes(self, stage: str) -> int:
        """Resident while ``stage`` runs: its activations plus the weights that stay loaded."""
        return self.resident_weights_bytes(stage) + self.activation_bytes[stage]

    @property
    def peak_bytes(self) -> int:
        """The largest stage peak."""
        return max(self.stage_peak_bytes(s) for s in self.activation_bytes)


def pipeline_memory(
    spec: ModelSpec,
    activation_bytes: Mapping[str, int],
    offload: bool = False,
    dtypes: Mapping[str, str] | None = None,
) -> PipelineMemory:
    """Combine exact weights (per component, ``dtypes`` overriding some components' dtypes) with
    per-stage activation peaks (e.g. from a trace)."""
    dtypes = dict(dtypes or {})
    weights = {c: weights_bytes(spec, c, dtypes.get(c)) for c in spec.parameter_counts()}
    stages = {s.name: s.component for s in spec.pipeline_def.stages}
    return PipelineMemory(weights, stages, dict(activation_bytes), offload)
