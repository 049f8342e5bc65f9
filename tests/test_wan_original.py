"""``--runtime wan``'s transformer rows (:func:`hybrid.models.wan_dit._wan_dit_walk`) against the original
Wan code (``tests/data/wan_original``: ``WanModel`` of Wan-Video/Wan2.1 and Wan2.2, vendored) run on a CPU
at a tiny config under ``autocast(bfloat16)`` with float32 weights, as ``generate.py`` runs it, and traced
by the project's tracer: every (module, op)'s calls, FLOPs and bytes, and both activation peaks.

Two things are left out of the comparison, each by a stated rule: the weights' bfloat16 casts (sizing
times them as weight traffic, ``autocast_parameters``; the walk keeps their memory) and the host-side
bookkeeping of grid sizes and sequence lengths (tensors of at most ``B + 1`` entries: ``cu_seqlens``,
``seq_lens.max()``, ``.tolist()``), whose ``grid_sizes`` (``B x 3`` int64) lives to the end of the
forward on the host and is the only difference in the peaks.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any

import pytest
import torch

from hybrid.geometry import CallShape
from hybrid.models.wan_dit import WanTransformer3DConfig, dit_peak_bytes, dit_rows
from tests.wan_original import CHANGES, ROOT, Traced, load, trace, walk_and_trace

SHA256 = {
    "wan21/model.py": "c1572ade3bf7345bd4c00d4a19535788fab62f9c08b5aeb15f6d01f4435bb47a",
    "wan21/attention.py": "23fe7c6f6e4065242d95e5e188cb2d1a16bd283f05dca7e7e878977158fcfdbc",
    "wan22/model.py": "8b39115298ca7322806c19b3165b3f435a94fe4a58f0624aec24f8e7f4997432",
    "wan22/attention.py": "23fe7c6f6e4065242d95e5e188cb2d1a16bd283f05dca7e7e878977158fcfdbc",
    "wan22/distributed/sequence_parallel.py": "4f50898eff51efbfebf8709e2d2993fc87b2442c548753cd36e4e607cdd55e0a",
    "wan22/distributed/ulysses.py": "0c9969ec8e99358fb79a224700853f89b52724c8dc2055f91972ace47f04a483",
    "wan22/distributed/util.py": "b8925fdbdc0cf4409ba5760d92c66f1e329de40b1dad7f2011a7d37caad97b56",
    "wan22/s2v/model_s2v.py": "91fb14df44edab2d01b5634420b463c5f1563aecdf6dac905da6b3acac3145cc",
    "wan22/s2v/audio_utils.py": "76931d7291f69a6b6ed3a7a1a9a106ad8b5f5d494a451db67718b4fbcc4dbcfd",
    "wan22/s2v/auxi_blocks.py": "6ff7b5560036e5f0eaaa34460a328afcdbd7bd62baf93b699d5f6d2d556f95d6",
    "wan22/s2v/motioner.py": "db348a3ca0dfb22122a78aebdcf162ba76d4d4e79b7b763c684d819279ac957a",
    "wan22/s2v/s2v_utils.py": "e45ae6c274b17e4fdddcb0439b598897a37679b8934ebd71f87255f92d5f0b2f",
    "wan22/s2v/audio_encoder.py": "7f07510f52dd829547c52f9866b18aa9a81af644d1031c079ce846947c5bb3e9",
    "wan22/animate/model_animate.py": "291292e07ea6ebd50fe3201769c1207a5a0692e5526e6e4857282c65e728b9de",
    "wan22/animate/face_blocks.py": "cd91cdffc024d416d920115ffad17cf8e20a40242e4ab4aa163b0809fc44ecbb",
    "wan22/animate/motion_encoder.py": "fc01f0a8462c959043d5277518790be6054785c379753c98b4daac742f4b8697",
    "wan22/animate/animate_utils.py": "a3e43e655c1c8a3dcee88e3d596c90b2b6fec7560dd5d1fb32501a2f93dea720",
    "wan21/clip.py": "70a589a3a77d777352fbce633838b490a6ffc7968ec8beb927e5d7a5a585eb89",
}
"""The vendored files as fetched (Wan2.1 9737cba9, Wan2.2 42bf4cfa; the two attention.py are the same;
Wan2.2's sequence parallelism: ``tests/test_wan_original_sp.py``; Wan2.2-S2V: ``tests/test_wan_s2v.py``;
Wan2.2-Animate: ``tests/test_wan_animate_original.py``; Wan2.1's CLIP: ``tests/test_wan_original_clip.py``)."""

HEADS, HEAD_DIM, FFN, LAYERS, FREQ, TEXT_DIM, TEXT_LEN = 2, 12, 40, 3, 16, 20, 7
FRAMES, HEIGHT, WIDTH = 2, 8, 12  # latent grid; patch (1, 2, 2): 2 x 4 x 6 = 48 tokens
TOKENS = FRAMES * (HEIGHT // 2) * (WIDTH // 2)


CASES = {  # version, model_type, batch, in_dim, timestep per token as the pipeline passes it, weights
    "wan2.1-t2v-b1": ("wan21", "t2v", 1, 4, False, "float32"),
    "wan2.1-t2v-b2": ("wan21", "t2v", 2, 4, False, "float32"),
    "wan2.2-ti2v-b1": ("wan22", "ti2v", 1, 4, True, "float32"),
    "wan2.2-ti2v-b2": ("wan22", "ti2v", 2, 4, True, "float32"),
    "wan2.2-a14b-t2v": ("wan22", "t2v", 1, 4, False, "float32"),  # t of shape (1,), expanded per token by the model
    "wan2.2-a14b-i2v": ("wan22", "i2v", 1, 9, False, "float32"),  # y (5 channels here) joined to the latents
    "wan2.2-ti2v-bf16": ("wan22", "ti2v", 2, 4, True, "bfloat16"),  # --convert-model-dtype: model.to(bfloat16)
    "wan2.2-a14b-t2v-bf16": ("wan22", "t2v", 1, 4, False, "bfloat16"),
}
"""The original code runs one video per call; batch 2 where its forward accepts it (a (B,) timestep
expanded per token does not for B > 1). With bf16 weights, CUDA autocast's float32 ``layer_norm`` and
``autocast(float32)`` ``linear`` are :class:`tests.wan_original.CudaAutocastLists` (CPU autocast has neither)."""


def _trace(version: str, model_type: str, batch: int, in_dim: int, per_token: bool, weights: str) -> Traced:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.cpu.amp's deprecation
        module = load(version)
    kwargs: dict[str, Any] = dict(model_type=model_type, text_len=TEXT_LEN, in_dim=in_dim, dim=HEADS * HEAD_DIM,
                                  ffn_dim=FFN, freq_dim=FREQ, text_dim=TEXT_DIM, out_dim=4, num_heads=HEADS,
                                  num_layers=LAYERS)  # fmt: skip
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.cpu.amp's deprecation, CPU autocast's float32 notice
        model = module.WanModel(**kwargs).eval().requires_grad_(False)  # float32, as generate.py loads it
        model.to(getattr(torch, weights))
        x = [torch.randn(4, FRAMES, HEIGHT, WIDTH) for _ in range(batch)]
        extra = {"y": [torch.randn(in_dim - 4, FRAMES, HEIGHT, WIDTH) for _ in range(batch)]} if in_dim > 4 else {}
        t = torch.full((batch, TOKENS) if per_token else (batch,), 999, dtype=torch.long)
        context = [torch.randn(TEXT_LEN, TEXT_DIM).to(torch.bfloat16) for _ in range(batch)]
        return trace(model, lambda: model(x, t=t, context=context, seq_len=TOKENS, **extra))


@pytest.fixture(scope="module")
def traced() -> dict[str, Traced]:
    return {name: _trace(*case) for name, case in CASES.items()}


def _walk_shape(name: str) -> tuple[WanTransformer3DConfig, CallShape]:
    version, _, batch, in_dim, _, weights = CASES[name]
    cfg = WanTransformer3DConfig(num_attention_heads=HEADS, attention_head_dim=HEAD_DIM, in_channels=in_dim,
                                 out_channels=4, text_dim=TEXT_DIM, freq_dim=FREQ, ffn_dim=FFN,
                                 num_layers=LAYERS)  # fmt: skip
    shape = CallShape(batch=batch, frames=5, height=8 * HEIGHT, width=8 * WIDTH, latent_frames=FRAMES,
                      latent_height=HEIGHT, latent_width=WIDTH, dit_latent_frames=FRAMES, dit_tokens=TOKENS,
                      text_len=TEXT_LEN, per_token_timestep=version == "wan22", dit_ops="wan",
                      dit_weight_dtype=weights)  # fmt: skip
    return cfg, shape


def test_the_vendored_files_are_the_originals_and_the_loader_changes_only_what_it_says() -> None:
    for path, digest in SHA256.items():
        assert hashlib.sha256((ROOT / path).read_bytes()).hexdigest() == digest, path
    assert set(CHANGES) == set(SHA256)
    assert (ROOT / "LICENSE.txt").read_text().lstrip().startswith("Apache License")


@pytest.mark.parametrize("name", list(CASES))
def test_the_walk_equals_the_original_code_op_for_op(traced: dict[str, Traced], name: str) -> None:
    cfg, shape = _walk_shape(name)
    walked, kept = walk_and_trace(traced[name], cfg, shape, CASES[name][2])
    assert walked == kept
    # the same FLOPs as diffusers' forward of the same config (the same matmuls, convolution and attentions)
    diffusers = dit_rows(cfg, CallShape(**{**shape.__dict__, "dit_ops": "diffusers"}))
    assert sum(v[1] for v in walked.values()) == sum(g.flops for g in diffusers)


@pytest.mark.parametrize("name", list(CASES))
def test_the_walks_peaks_are_the_original_codes(traced: dict[str, Traced], name: str) -> None:
    run, batch = traced[name], CASES[name][2]
    grid_sizes = batch * 3 * 8  # torch.stack of the (f, h, w) int64 sizes, on the host, to the forward's end
    cfg, shape = _walk_shape(name)
    assert dit_peak_bytes(cfg, shape) + grid_sizes == run.peak
    assert dit_peak_bytes(cfg, shape, materialized=True) + grid_sizes == run.peak_materialized
