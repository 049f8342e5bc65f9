"""Preset values and closed-form parameter counts against the built real modules."""

from __future__ import annotations

import pytest
import torch

from hybrid.models.wan_dit import WanTransformer3DConfig
from hybrid.models.wan_vae import AutoencoderKLWanConfig
from hybrid.presets import PRESETS, ModelSpec, get_preset
from hybrid.trace.build import TRACE_CALLS, build_text_encoder, build_transformer, build_vae


def _numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_published_values() -> None:
    small, big = get_preset("wan2.1-t2v-1.3b"), get_preset("wan2.1-t2v-14b")
    assert (small.transformer.num_attention_heads, small.transformer.ffn_dim, small.transformer.num_layers) == (
        12,
        8960,
        30,
    )
    assert (big.transformer.num_attention_heads, big.transformer.ffn_dim, big.transformer.num_layers) == (
        40,
        13824,
        40,
    )
    for p in (small, big):
        t = p.transformer
        assert (t.attention_head_dim, t.patch_size, t.in_channels, t.out_channels) == (128, (1, 2, 2), 16, 16)
        assert (t.text_dim, t.freq_dim, t.qk_norm, t.cross_attn_norm, t.eps) == (
            4096,
            256,
            "rms_norm_across_heads",
            True,
            1e-6,
        )
        v = p.vae
        assert (v.base_dim, v.z_dim, v.dim_mult, v.num_res_blocks, v.attn_scales, v.temperal_downsample) == (
            96,
            16,
            (1, 2, 4, 4),
            2,
            (),
            (False, True, True),
        )
        e = p.text_encoder
        assert (e.d_model, e.d_ff, e.d_kv, e.num_heads, e.num_layers, e.vocab_size) == (
            4096,
            10240,
            64,
            64,
            24,
            256384,
        )
        assert (e.feed_forward_proj, e.relative_attention_num_buckets, e.relative_attention_max_distance) == (
            "gated-gelu",
            32,
            128,
        )


def test_parameter_counts_exact() -> None:
    # UMT5-XXL: 256384*4096 + 24*(4*4096*4096 + 32*64 + 2*4096 + 3*4096*10240) + 4096 = 5_680_910_336
    assert get_preset("wan2.1-t2v-14b").text_encoder.num_parameters() == 5_680_910_336
    assert get_preset("wan2.1-t2v-14b").transformer.num_parameters() == 14_288_491_584
    assert get_preset("wan2.1-t2v-1.3b").transformer.num_parameters() == 1_418_996_800
    vae = get_preset("wan2.1-t2v-14b").vae
    assert vae.num_parameters() == 126_892_531
    # decoder 73_295_331 + post_quant_conv 16*16 + 16 = 73_295_603
    assert vae.decoder_num_parameters() == 73_295_603


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_parameter_counts_equal_built_modules(name: str) -> None:
    spec = PRESETS[name]
    counts = spec.parameter_counts()
    for sd in spec.pipeline_def.stages:  # each component as the tracer builds it (S2V's transformer: test_wan_s2v)
        if not sd.trace_key:
            continue
        build = TRACE_CALLS[sd.trace_key][0]
        assert counts[sd.component] == _numel(build(sd.config(spec), "meta", torch.bfloat16)), sd.component
    assert set(counts) == {sd.component for sd in spec.pipeline_def.stages}
    vae = build_vae(spec.vae, "meta", torch.float32)
    decoder = _numel(vae.decoder) + _numel(vae.post_quant_conv)
    assert spec.vae.decoder_num_parameters() == decoder
    assert spec.vae.encoder_num_parameters() == _numel(vae.encoder) + _numel(vae.quant_conv)


def test_parameter_counts_equal_built_tiny_modules(tiny_spec: ModelSpec) -> None:
    counts = tiny_spec.parameter_counts()
    assert counts["text_encoder"] == _numel(build_text_encoder(tiny_spec.text_encoder, "meta", torch.float32))
    assert counts["transformer"] == _numel(build_transformer(tiny_spec.transformer, "meta", torch.float32))
    assert counts["vae"] == _numel(build_vae(tiny_spec.vae, "meta", torch.float32))


def test_unmodelled_variants_are_refused() -> None:
    with pytest.raises(ValueError, match="image_dim/added_kv_proj_dim: both null"):
        WanTransformer3DConfig(image_dim=1280)
    with pytest.raises(ValueError, match="added_kv_proj_dim: 1280 is not modelled"):
        WanTransformer3DConfig(image_dim=1280, added_kv_proj_dim=1280)
    with pytest.raises(ValueError, match="temperal_downsample"):
        AutoencoderKLWanConfig(temperal_downsample=(True,))


def test_fp32_modules_kept_in_float32() -> None:
    dit = build_transformer(get_preset("wan2.1-t2v-1.3b").transformer, "meta", torch.bfloat16)
    assert dit.blocks[0].attn1.to_q.weight.dtype == torch.bfloat16
    assert dit.condition_embedder.time_embedder.linear_1.weight.dtype == torch.float32
    assert dit.blocks[0].norm2.weight.dtype == torch.float32
