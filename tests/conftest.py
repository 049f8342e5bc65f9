"""Shared fixtures: tiny configs of the real classes (fast on a real CPU) and helpers."""

from __future__ import annotations

import pytest

from hybrid.models import ModelSpec
from hybrid.models.umt5 import UMT5Config
from hybrid.models.wan_dit import WanTransformer3DConfig
from hybrid.models.wan_vae import AutoencoderKLWanConfig
from hybrid.workload import Workload

TINY_SPEC = ModelSpec(
    name="tiny",
    text_encoder=UMT5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=2, num_heads=4),
    transformer=WanTransformer3DConfig(
        num_attention_heads=2, attention_head_dim=12, ffn_dim=32, num_layers=2, text_dim=16, freq_dim=8
    ),
    vae=AutoencoderKLWanConfig(base_dim=8, z_dim=16),
    default_width=64,
    default_height=48,
    trained_max_pixels=64 * 48,
)

# 64x48, 9 frames -> 3 latent frames of 6x8, 3*3*4 = 36 DiT tokens; 7 text tokens.
TINY_WORKLOAD = Workload(model="wan2.1-t2v-1.3b", width=64, height=48, frames=9, text_len=7)


@pytest.fixture
def tiny_spec() -> ModelSpec:
    return TINY_SPEC


@pytest.fixture
def tiny_workload() -> Workload:
    return TINY_WORKLOAD
