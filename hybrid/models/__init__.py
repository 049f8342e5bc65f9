"""Model families, one module each: a frozen config with diffusers' or transformers' field names,
its published presets, parameter counts in closed form, and the family's cost walk.

The pipelines' presets, which bundle these configs, live in :mod:`hybrid.presets`.
"""

from __future__ import annotations

from hybrid.models.clip import CLIPVisionConfig
from hybrid.models.umt5 import UMT5Config
from hybrid.models.wan_dit import WanTransformer3DConfig, WanVACETransformer3DConfig
from hybrid.models.wan_vae import AutoencoderKLWanConfig

__all__ = [
    "AutoencoderKLWanConfig",
    "CLIPVisionConfig",
    "UMT5Config",
    "WanTransformer3DConfig",
    "WanVACETransformer3DConfig",
]
