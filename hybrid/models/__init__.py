"""Model families (one module each) and the pipeline presets built from them.

A :class:`ModelSpec` bundles the component configs of one Wan pipeline (fields named as the
diffusers pipeline's components), the pipeline it runs (:mod:`hybrid.pipelines`), its defaults and
where its values came from. Presets are written from the published ``config.json`` files; a local
Diffusers folder can override them (:mod:`hybrid.checkpoint`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hybrid.models.umt5 import UMT5_XXL, UMT5Config
from hybrid.models.wan_dit import WAN21_T2V_1_3B, WAN21_T2V_14B, WanTransformer3DConfig
from hybrid.models.wan_vae import WAN21_VAE, AutoencoderKLWanConfig

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.pipelines import Pipeline

__all__ = [
    "PRESETS",
    "AutoencoderKLWanConfig",
    "ModelSpec",
    "UMT5Config",
    "WanTransformer3DConfig",
    "get_preset",
]


COMPONENT_FIELDS: tuple[str, ...] = ("text_encoder", "image_encoder", "transformer", "vae")
"""The :class:`ModelSpec` fields that hold a model component's config, in pipeline order (each the
name of the diffusers pipeline's component and of its sub-folder in a Diffusers checkpoint)."""


@dataclass(frozen=True)
class ModelSpec:
    """The component configs of one pipeline plus its defaults, sizing facts and provenance."""

    name: str
    text_encoder: UMT5Config
    transformer: WanTransformer3DConfig
    vae: AutoencoderKLWanConfig
    default_width: int
    default_height: int
    trained_max_pixels: int
    """Largest ``width * height`` the checkpoint was trained for (beyond: extrapolation)."""
    trained_max_frames: int = 81
    trained_max_text_len: int = 512
    source: str = ""
    checkpoint_parameters: tuple[tuple[str, int], ...] = field(default=(), compare=False)
    """``(component, parameters)`` read from local ``*.safetensors`` headers, if any."""
    warnings: tuple[str, ...] = field(default=(), compare=False)
    pipeline: str = "t2v"
    """The pipeline (:data:`hybrid.pipelines.PIPELINES`) the components run in."""
    image_encoder: Any = None
    """The image encoder's config, for pipelines that encode images (``None`` otherwise)."""
    default_steps: int = 50
    """Denoising steps the model's authors recommend (the default of a workload)."""

    @property
    def pipeline_def(self) -> Pipeline:
        """The :class:`~hybrid.pipelines.Pipeline` this spec runs."""
        from hybrid.pipelines import get_pipeline

        return get_pipeline(self.pipeline)

    def components(self) -> dict[str, Any]:
        """``{component: config}`` of the components this spec has, in pipeline order."""
        return {name: getattr(self, name) for name in COMPONENT_FIELDS if getattr(self, name) is not None}

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per component from the configs (closed form, equal to the built modules)."""
        return {name: cfg.num_parameters() for name, cfg in self.components().items()}


PRESETS: dict[str, ModelSpec] = {
    "wan2.1-t2v-1.3b": ModelSpec(
        name="wan2.1-t2v-1.3b",
        text_encoder=UMT5_XXL,
        transformer=WAN21_T2V_1_3B,
        vae=WAN21_VAE,
        default_width=832,
        default_height=480,
        trained_max_pixels=832 * 480,
        source="Wan-AI/Wan2.1-T2V-1.3B-Diffusers (published config.json files)",
    ),
    "wan2.1-t2v-14b": ModelSpec(
        name="wan2.1-t2v-14b",
        text_encoder=UMT5_XXL,
        transformer=WAN21_T2V_14B,
        vae=WAN21_VAE,
        default_width=1280,
        default_height=720,
        trained_max_pixels=1280 * 720,
        source="Wan-AI/Wan2.1-T2V-14B-Diffusers (published config.json files)",
    ),
}

DEFAULT_MODEL = "wan2.1-t2v-14b"


def preset_name(spec: ModelSpec, fallback: str = DEFAULT_MODEL) -> str:
    """``spec``'s preset name, or ``fallback`` for a custom spec: what a :class:`Workload` built to
    trace ``spec`` names as its model (validation only; the spec itself is passed to the tracer)."""
    return spec.name if spec.name in PRESETS else fallback


def get_preset(name: str) -> ModelSpec:
    """The preset called ``name``; ``ValueError`` naming the valid ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        valid = ", ".join(sorted(PRESETS))
        raise ValueError(f"model: unknown model {name!r}; valid: {valid}") from None
