"""``--runtime wan``'s transformer rows for Wan2.1's image-to-video and first-last-frame models
(``WanI2VCrossAttention``, ``MLPProj``) against the original code (``tests/data/wan_original/wan21``) run on a CPU
under ``autocast(bfloat16)`` with float32 weights and traced, as ``tests/test_wan_original.py`` does for
text-to-video: every (module, op)'s calls, FLOPs and bytes, and both activation peaks, on one GPU. The context is
the original's 512 T5 tokens (``T5_CONTEXT_TOKEN_NUMBER``: the cross-attention splits the image tokens off by it);
the image features float16 (``CLIPModel.visual`` under ``autocast(float16)``). Under Ulysses the walk joins these
blocks with the sequence-parallel forward ``tests/test_wan_original_sp.py`` checks (that pair is not traced:
Wan2.2's sequence-parallel forward has no image input, Wan2.1's needs xFuser).
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch

from hybrid.geometry import CallShape
from hybrid.models.wan_dit import WanTransformer3DConfig, dit_peak_bytes, dit_rows
from tests.wan_original import Traced, load, trace, walk_and_trace

HEADS, HEAD_DIM, FFN, LAYERS, FREQ, TEXT_DIM, TEXT_LEN, CLIP_DIM = 4, 12, 40, 2, 16, 20, 512, 1280
FRAMES, HEIGHT, WIDTH = 2, 8, 12  # latent grid; 48 tokens
TOKENS = FRAMES * (HEIGHT // 2) * (WIDTH // 2)

CASES = {"i2v": ("i2v", 257), "flf2v": ("flf2v", 514)}  # model_type, image tokens


def _trace(model_type: str, image_tokens: int) -> Traced:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.cpu.amp's deprecation
        module = load("wan21")
    kwargs: dict[str, Any] = dict(model_type=model_type, text_len=TEXT_LEN, in_dim=9, dim=HEADS * HEAD_DIM,
                                  ffn_dim=FFN, freq_dim=FREQ, text_dim=TEXT_DIM, out_dim=4, num_heads=HEADS,
                                  num_layers=LAYERS)  # fmt: skip
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = module.WanModel(**kwargs).eval().requires_grad_(False)  # float32, as generate.py loads it
        x = [torch.randn(4, FRAMES, HEIGHT, WIDTH)]
        y = [torch.randn(5, FRAMES, HEIGHT, WIDTH)]
        t = torch.full((1,), 999, dtype=torch.long)
        context = [torch.randn(TEXT_LEN, TEXT_DIM).to(torch.bfloat16)]
        clip = torch.randn(1, image_tokens // (2 if model_type == "flf2v" else 1), CLIP_DIM).half()
        if model_type == "flf2v":
            clip = torch.cat([clip, clip])  # the first and last frame's features, as the pipeline passes them
        # FLF2V's emb_pos is added, not cast: its (1, 514, 1280) is also the shape of the positioned image features
        # that norm1's output, cast for the linear after it, has
        return trace(model, lambda: model(x, t=t, context=context, seq_len=TOKENS, clip_fea=clip, y=y),
                     skip_params=("img_emb.emb_pos",))  # fmt: skip


@pytest.fixture(scope="module")
def traced() -> dict[str, Traced]:
    return {name: _trace(*case) for name, case in CASES.items()}


def _walk_shape(name: str) -> tuple[WanTransformer3DConfig, CallShape]:
    model_type, image_tokens = CASES[name]
    cfg = WanTransformer3DConfig(num_attention_heads=HEADS, attention_head_dim=HEAD_DIM, in_channels=9,
                                 out_channels=4, text_dim=TEXT_DIM, freq_dim=FREQ, ffn_dim=FFN, num_layers=LAYERS,
                                 image_dim=CLIP_DIM, added_kv_proj_dim=HEADS * HEAD_DIM,
                                 pos_embed_seq_len=image_tokens if model_type == "flf2v" else None)  # fmt: skip
    shape = CallShape(batch=1, frames=5, height=8 * HEIGHT, width=8 * WIDTH, latent_frames=FRAMES,
                      latent_height=HEIGHT, latent_width=WIDTH, dit_latent_frames=FRAMES, dit_tokens=TOKENS,
                      text_len=TEXT_LEN, images=2 if model_type == "flf2v" else 1, image_tokens=image_tokens,
                      dit_ops="wan", dit_weight_dtype="float32")  # fmt: skip
    return cfg, shape


@pytest.mark.parametrize("name", list(CASES))
def test_the_walk_equals_the_original_image_to_video_code_op_for_op(traced: dict[str, Traced], name: str) -> None:
    cfg, shape = _walk_shape(name)
    walked, kept = walk_and_trace(traced[name], cfg, shape, batch=1)
    assert walked == kept
    # the same FLOPs as diffusers' forward of the same config
    diffusers = dit_rows(cfg, CallShape(**{**shape.__dict__, "dit_ops": "diffusers"}))
    assert sum(v[1] for v in walked.values()) == sum(g.flops for g in diffusers)


@pytest.mark.parametrize("name", list(CASES))
def test_the_walks_peaks_are_the_original_image_to_video_codes(traced: dict[str, Traced], name: str) -> None:
    run = traced[name]
    cfg, shape = _walk_shape(name)
    assert dit_peak_bytes(cfg, shape) + 3 * 8 == run.peak
    assert dit_peak_bytes(cfg, shape, materialized=True) + 3 * 8 == run.peak_materialized
