"""Memory per stage: resident weights by dtype, and the pipeline's peak with or without offload.

Weights are exact (closed-form parameter counts x bytes per parameter). Activation peaks come
from the tracer (``StageTrace.peak_activation_bytes``: the largest sum of live tensors one call
allocates when run eagerly with fused attention). Assumptions: the whole ``AutoencoderKLWan``
(encoder and decoder) is resident while decoding, as ``WanPipeline`` loads it; without offload all
three models stay on the GPU; with model offload only the running stage's model is resident.
Allocator caching, fragmentation, CUDA context and kernel workspaces are not included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hybrid.models import STAGE_CONFIG, ModelSpec

BYTES_PER_PARAM: dict[str, int] = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1}
"""Bytes per parameter by weight dtype."""

DEFAULT_WEIGHT_DTYPES: dict[str, str] = {"text_encoder": "bf16", "diffusion_core": "bf16", "vae_decode": "fp32"}
"""diffusers' Wan2.1 example: text encoder and transformer in bf16, the VAE in float32."""


def stage_parameters(spec: ModelSpec, stage: str) -> int:
    """Parameters resident for ``stage``: the whole text encoder, transformer or VAE."""
    key = STAGE_CONFIG.get(stage)
    if key is None:
        raise ValueError(f"stage: unknown stage {stage!r}; valid: {', '.join(STAGE_CONFIG)}")
    return spec.parameter_counts()[key]


def weights_bytes(spec: ModelSpec, stage: str, dtype: str | None = None) -> int:
    """``parameters x bytes per parameter`` of ``stage``'s model in ``dtype``."""
    dtype = dtype or DEFAULT_WEIGHT_DTYPES[stage]
    if dtype not in BYTES_PER_PARAM:
        raise ValueError(f"dtype: unknown weight dtype {dtype!r}; valid: {', '.join(BYTES_PER_PARAM)}")
    return stage_parameters(spec, stage) * BYTES_PER_PARAM[dtype]


@dataclass(frozen=True)
class PipelineMemory:
    """Peak resident bytes of a job, per stage and overall."""

    weights_bytes: dict[str, int]
    activation_bytes: dict[str, int]
    offload: bool

    def resident_weights_bytes(self, stage: str) -> int:
        """Weights on the GPU while ``stage`` runs: its own with offload, all three without."""
        return self.weights_bytes[stage] if self.offload else sum(self.weights_bytes.values())

    def stage_peak_bytes(self, stage: str) -> int:
        """Resident while ``stage`` runs: its activations plus the weights that stay loaded."""
        return self.resident_weights_bytes(stage) + self.activation_bytes[stage]

    @property
    def peak_bytes(self) -> int:
        """The largest stage peak."""
        return max(self.stage_peak_bytes(s) for s in self.weights_bytes)


def pipeline_memory(
    spec: ModelSpec,
    activation_bytes: Mapping[str, int],
    offload: bool = False,
    dtypes: Mapping[str, str] | None = None,
) -> PipelineMemory:
    """Combine exact weights with per-stage activation peaks (e.g. from a trace)."""
    dtypes = dict(dtypes or {})
    weights = {s: weights_bytes(spec, s, dtypes.get(s)) for s in activation_bytes}
    return PipelineMemory(weights, dict(activation_bytes), offload)
