"""``--runtime wan``'s transformer rows under Ulysses sequence parallelism (:func:`hybrid.models.wan_dit._wan_dit_walk`
with ``ulysses`` > 1) against the original code: Wan2.2's ``WanModel`` with ``sp_dit_forward`` and
``sp_attn_forward`` (``tests/data/wan_original/wan22/distributed``, vendored) patched in as ``generate.py
--ulysses_size`` does, run on a CPU as rank 0 of torch's fake process group (its ``dist.all_to_all`` and
``dist.all_gather`` return without sending: the tracer records them as ``c10d`` collectives) and traced: every
(module, op)'s calls, FLOPs and bytes, the collectives' bytes, and both activation peaks. The same two things as
``tests/test_wan_original.py`` are left out (the weights' bf16 casts, the host-side bookkeeping).
"""

from __future__ import annotations

import types
import warnings
from typing import Any

import pytest
import torch

from hybrid.geometry import CallShape
from hybrid.models.wan_dit import WanTransformer3DConfig, dit_peak_bytes
from hybrid.trace.parallel import fake_world
from tests.wan_original import Traced, load, load_sequence_parallel, trace, walk_and_trace

HEADS, HEAD_DIM, FFN, LAYERS, FREQ, TEXT_DIM, TEXT_LEN = 4, 12, 40, 2, 16, 20, 7

CASES = {  # model_type, in_dim, ranks, latent grid (frames, height, width), weights
    "t2v-u2": ("t2v", 4, 2, (2, 8, 12), "float32"),  # 48 tokens, 24 per rank
    "t2v-u4": ("t2v", 4, 4, (2, 8, 12), "float32"),  # 12 per rank
    "t2v-u4-padded": ("t2v", 4, 4, (1, 6, 10), "float32"),  # 15 tokens padded to 16: 4 per rank
    "ti2v-u2-bf16": ("ti2v", 4, 2, (2, 8, 12), "bfloat16"),  # --convert-model-dtype
    "i2v-u2": ("i2v", 9, 2, (2, 8, 12), "float32"),  # A14B image-to-video: y joined to the latents
}


def _trace(model_type: str, in_dim: int, ranks: int, grid: tuple[int, int, int], weights: str) -> Traced:
    frames, height, width = grid
    tokens = frames * (height // 2) * (width // 2)
    seq_len = -(-tokens // ranks) * ranks  # generate.py: math.ceil(tokens / sp_size) * sp_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.cpu.amp's deprecation
        sp = load_sequence_parallel()
        module = load("wan22")
    kwargs: dict[str, Any] = dict(model_type=model_type, text_len=TEXT_LEN, in_dim=in_dim, dim=HEADS * HEAD_DIM,
                                  ffn_dim=FFN, freq_dim=FREQ, text_dim=TEXT_DIM, out_dim=4, num_heads=HEADS,
                                  num_layers=LAYERS)  # fmt: skip
    torch.manual_seed(0)
    with warnings.catch_warnings(), fake_world(ranks):
        warnings.simplefilter("ignore")
        model = module.WanModel(**kwargs).eval().requires_grad_(False)
        model.to(getattr(torch, weights))
        for block in model.blocks:  # as wan/text2video.py does with use_sp
            block.self_attn.forward = types.MethodType(sp.sp_attn_forward, block.self_attn)
        model.forward = types.MethodType(sp.sp_dit_forward, model)
        x = [torch.randn(4, frames, height, width)]
        extra = {"y": [torch.randn(in_dim - 4, frames, height, width)]} if in_dim > 4 else {}
        t = torch.full((1,), 999, dtype=torch.long)
        context = [torch.randn(TEXT_LEN, TEXT_DIM).to(torch.bfloat16)]
        return trace(model, lambda: model(x, t=t, context=context, seq_len=seq_len, **extra))


@pytest.fixture(scope="module")
def traced() -> dict[str, Traced]:
    return {name: _trace(*case) for name, case in CASES.items()}


def _walk_shape(name: str) -> tuple[WanTransformer3DConfig, CallShape]:
    _, in_dim, ranks, (frames, height, width), weights = CASES[name]
    cfg = WanTransformer3DConfig(num_attention_heads=HEADS, attention_head_dim=HEAD_DIM, in_channels=in_dim,
                                 out_channels=4, text_dim=TEXT_DIM, freq_dim=FREQ, ffn_dim=FFN,
                                 num_layers=LAYERS)  # fmt: skip
    shape = CallShape(batch=1, frames=4 * frames - 3, height=8 * height, width=8 * width, latent_frames=frames,
                      latent_height=height, latent_width=width, dit_latent_frames=frames,
                      dit_tokens=frames * (height // 2) * (width // 2), text_len=TEXT_LEN, per_token_timestep=True,
                      dit_ops="wan", dit_weight_dtype=weights, ulysses=ranks)  # fmt: skip
    return cfg, shape


@pytest.mark.parametrize("name", list(CASES))
def test_the_walk_equals_the_original_sequence_parallel_code_op_for_op(traced: dict[str, Traced], name: str) -> None:
    walked, kept = walk_and_trace(traced[name], *_walk_shape(name), batch=1)
    assert walked == kept


@pytest.mark.parametrize("name", list(CASES))
def test_the_walks_peaks_are_the_original_sequence_parallel_codes(traced: dict[str, Traced], name: str) -> None:
    run = traced[name]
    grid_sizes = 3 * 8  # torch.stack of the (f, h, w) int64 sizes, on the host, to the forward's end
    cfg, shape = _walk_shape(name)
    assert dit_peak_bytes(cfg, shape) + grid_sizes == run.peak
    assert dit_peak_bytes(cfg, shape, materialized=True) + grid_sizes == run.peak_materialized
