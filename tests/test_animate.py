"""Wan2.2-Animate: the transformer's config, its parameters against the built module, and (as they land)
its walk against a meta trace."""

from __future__ import annotations

import logging

import pytest
import torch

from hybrid.models.wan_dit import WanAnimateTransformer3DConfig

TINY = WanAnimateTransformer3DConfig(
    num_attention_heads=2, attention_head_dim=32, text_dim=64, freq_dim=32, ffn_dim=128, num_layers=5, image_dim=48,
    added_kv_proj_dim=64, motion_encoder_size=32, motion_style_dim=32, motion_dim=8, motion_encoder_dim=32,
    face_encoder_hidden_dim=16, face_encoder_num_heads=4,
    motion_encoder_channel_sizes=((4, 32), (8, 32), (16, 32), (32, 16)),
)  # fmt: skip


def _built(cfg: WanAnimateTransformer3DConfig) -> torch.nn.Module:
    from diffusers.models.transformers.transformer_wan_animate import WanAnimateTransformer3DModel

    logging.disable(logging.WARNING)
    try:
        with torch.device("meta"):
            return WanAnimateTransformer3DModel(**cfg.to_kwargs())
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.parametrize("cfg", [WanAnimateTransformer3DConfig(), TINY], ids=["published", "tiny"])
def test_parameters_equal_the_built_module(cfg: WanAnimateTransformer3DConfig) -> None:
    assert cfg.num_parameters() == sum(p.numel() for p in _built(cfg).parameters())


def test_published_parameters_by_part() -> None:
    cfg = (
        WanAnimateTransformer3DConfig()
    )  # huggingface/diffusers scripts/convert_wan_to_diffusers.py, Wan2.2-Animate-14B
    # the image-to-video 14B's 16,394,878,784 plus the pose patch 16*5120*4 + 5120 =
    # 332,800, the motion encoder 22,736,436, the face encoder 17,842,176 and 8 face adapters of
    # 4 x (5120^2 + 5120) + 2 x 128 = 104,878,336 each
    assert cfg.num_parameters() == 17_274_816_884
    assert cfg.animate_parameters() == 332_800 + 22_736_436 + 17_842_176 + 8 * 104_878_336
    assert cfg.num_parameters() - cfg.animate_parameters() == 16_394_878_784
    assert cfg.motion_channels() == [32, 64, 128, 256, 512, 512, 512, 512]  # 512 px down to 4


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"in_channels": 40}, "in_channels: 40 is not 2 * latent_channels + 4 = 36"),
        ({"inject_face_latents_blocks": 3}, "inject_face_latents_blocks: 3 must divide num_layers 40"),
        ({"motion_encoder_size": 48}, "motion_encoder_size: 48 must be a power of two >= 8"),
        ({"motion_encoder_size": 2048}, "motion_encoder_size: 2048 must be a power of two >= 8 with a channel count"),
    ],
)
def test_configs_the_module_cannot_run_are_refused(kw: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("*", r"\*").replace("+", r"\+")):
        WanAnimateTransformer3DConfig(**kw)  # type: ignore[arg-type]
