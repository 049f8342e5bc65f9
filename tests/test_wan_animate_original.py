"""``--runtime wan``'s Wan-Animate transformer (:func:`hybrid.models.wan_dit._wan_dit_walk` of a
:class:`~hybrid.models.wan_dit.WanAnimateTransformer3DConfig`) against the original ``WanAnimateModel`` (Wan2.2's
``wan/modules/animate/``, vendored in ``tests/data/wan_original/wan22/animate``), run on a CPU with bf16 weights
(``from_pretrained(torch_dtype=bfloat16)``) under ``autocast(bfloat16)`` as ``WanAnimate.generate`` runs it, and
traced: every (module, op)'s calls, FLOPs and bytes, and both activation peaks, as ``tests/test_wan_original.py``
does for the other models. On one GPU: one face frame over a 96x128 latent grid (the blocks' attention peaks), and
nine face frames (two motion-encoder batches, the face encoder's strided convolutions) with two face blocks. Under
Ulysses (``sp_attn_forward`` patched in and ``use_context_parallel`` set, as ``wan/animate.py`` does; rank 0 of
torch's fake process group, as ``tests/test_wan_original_sp.py``): 2 ranks, and 4 with the tokens padded.
The same two things are left out (the host's bookkeeping, no weight casts to leave out with bf16 weights), and
``CudaAutocastLists`` makes the CPU run do what CUDA's autocast does (the motion basis's float32 ``matmul``, the face
encoder's replication padding in the input's dtype).
"""

from __future__ import annotations

import types
import warnings
from dataclasses import replace

import pytest
import torch

from hybrid.geometry import CallShape
from hybrid.models.wan_dit import WanAnimateTransformer3DConfig, dit_peak_bytes, dit_rows
from hybrid.presets import get_preset
from hybrid.trace.parallel import fake_world
from hybrid.workload import Workload
from tests.wan_original import Traced, load_animate, load_animate_utils, load_sequence_parallel, trace, walk_and_trace

WIDTH, FFN, TEXT_DIM, FREQ = 256, 64, 32, 16
CASES = {  # layers, face frames, latent grid (frames: the reference and face_frames // 4 + 1; height, width), heads,
    # Ulysses ranks, the relighting LoRA's rank (0: none)
    "one-face-frame-wide-grid": (5, 1, (2, 96, 128), 2, 1, 0),
    "nine-face-frames-two-adapters": (10, 9, (4, 4, 6), 2, 1, 0),
    "ulysses-2": (5, 1, (2, 4, 8), 2, 2, 0),  # 16 tokens, 8 a rank
    "ulysses-4-padded": (5, 5, (3, 2, 6), 4, 4, 0),  # 9 tokens padded to 12: 4 a latent frame in the face adapter
    "relighting-lora-8": (5, 1, (2, 4, 8), 2, 1, 8),  # --use_relighting_lora, at rank 8 (the published: 128)
    "relighting-lora-8-ulysses-2": (5, 1, (2, 4, 8), 2, 2, 8),
}


def _trace(layers: int, face_frames: int, grid: tuple[int, int, int], heads: int, ranks: int, lora: int) -> Traced:
    module = load_animate()
    sp = load_sequence_parallel()
    torch.manual_seed(0)
    with warnings.catch_warnings(), fake_world(ranks):
        warnings.simplefilter("ignore")  # diffusers' note on casting a model with `to()`
        model = module.WanAnimateModel(in_dim=36, dim=heads * (WIDTH // heads), ffn_dim=FFN, text_dim=TEXT_DIM,
                                       num_heads=heads, num_layers=layers, freq_dim=FREQ)  # fmt: skip
        model = model.eval().requires_grad_(False).to(torch.bfloat16)
        if ranks > 1:  # as wan/animate.py does with use_sp
            for block in model.blocks:
                block.self_attn.forward = types.MethodType(sp.sp_attn_forward, block.self_attn)
            model.use_context_parallel = True
        if lora:  # as WanAnimate._configure_model does with use_lora (after the sp patch, before the dtype)
            model.add_adapter(load_animate_utils().get_loraconfig(transformer=model, rank=lora, alpha=lora))
        return _run(model, face_frames, grid, ranks)


def _run(model: torch.nn.Module, face_frames: int, grid: tuple[int, int, int], ranks: int) -> Traced:
    frames, height, width = grid
    bf16 = torch.bfloat16
    x = [torch.randn(16, frames, height, width)]  # the float32 noise
    y = [torch.randn(20, frames, height, width, dtype=bf16)]  # mask and reference latents, bf16 (generate's y)
    pose = [torch.randn(16, frames - 1, height, width, dtype=bf16)]
    face = torch.randn(1, 3, face_frames, 512, 512, dtype=bf16)
    context = [torch.randn(512, TEXT_DIM, dtype=bf16)]
    clip = torch.randn(1, 257, 1280, dtype=torch.float16)  # CLIP's visual features under autocast(float16)
    t = torch.full((1,), 999, dtype=torch.long)
    tokens = frames * (height // 2) * (width // 2)
    seq_len = -(-tokens // ranks) * ranks  # wan/animate.py: math.ceil(tokens / sp_size) * sp_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trace(model, lambda: model(x, t=t, clip_fea=clip, context=context, seq_len=seq_len, y=y,
                                          pose_latents=pose, face_pixel_values=face))  # fmt: skip


@pytest.fixture(scope="module")
def traced() -> dict[str, Traced]:
    return {name: _trace(*case) for name, case in CASES.items()}


def _walk_shape(name: str) -> tuple[WanAnimateTransformer3DConfig, CallShape]:
    layers, face_frames, (frames, height, width), heads, ranks, lora = CASES[name]
    cfg = WanAnimateTransformer3DConfig(num_attention_heads=heads, attention_head_dim=WIDTH // heads, ffn_dim=FFN,
                                        num_layers=layers, text_dim=TEXT_DIM, freq_dim=FREQ,
                                        added_kv_proj_dim=WIDTH, lora_rank=lora)  # fmt: skip
    shape = CallShape(batch=1, frames=face_frames, height=8 * height, width=8 * width, latent_frames=frames,
                      latent_height=height, latent_width=width, dit_latent_frames=frames,
                      dit_tokens=frames * (height // 2) * (width // 2), text_len=512, images=1, image_tokens=257,
                      dit_ops="wan", dit_weight_dtype="bfloat16", ulysses=ranks)  # fmt: skip
    return cfg, shape


@pytest.mark.parametrize("name", list(CASES))
def test_the_walk_equals_the_original_animate_code_op_for_op(traced: dict[str, Traced], name: str) -> None:
    cfg, shape = _walk_shape(name)
    walked, kept = walk_and_trace(traced[name], cfg, shape, batch=1)
    assert walked == kept
    # the same FLOPs as diffusers' WanAnimateTransformer3DModel of the same config (one 512x512 face frame through
    # the motion encoder: 39,280,216,064 of them)
    # lora_A and lora_B beside each of a block's 12 Linears, 2r (in + out) FLOPs a row: a rank's 16 (or 8) tokens x
    # (6 x 2 x 256 (attn1's q, k, v, out; attn2's q, out) + 2 x (256 + 64) (the FFN's)) = 59,392 (29,696), 512 text
    # tokens x 2 x 512 (attn2's k, v) = 524,288, 257 image tokens x 2 x 512 (k_img, v_img) = 263,168: 846,848
    # (817,152) a layer; x 2 x 8 x 5 layers = 67,747,840 (65,372,160)
    lora_flops = {1: 67_747_840, 2: 65_372_160}[shape.ulysses] if cfg.lora_rank else 0
    lora = [v[1] for (module, _), v in walked.items() if ".lora_" in module]
    assert len(lora) == (2 * 12 * 5 if cfg.lora_rank else 0) and sum(lora) == lora_flops
    if shape.ulysses == 1:
        plain = replace(cfg, lora_rank=0)
        diffusers = dit_rows(plain, replace(shape, dit_ops="diffusers", dit_weight_dtype="bfloat16"))
        assert sum(v[1] for v in walked.values()) == sum(g.flops for g in diffusers) + lora_flops
    else:  # every rank gathers the face adapters' queries and attends over all of them: an all-gather each
        gathers = [v for (module, op), v in walked.items() if op == "c10d.allgather_"]
        assert len(gathers) == 2  # the face adapter's (one adapter) and the head's
    assert sum(v[1] for (module, _), v in walked.items() if module.startswith("motion_encoder")) == (
        39_280_216_064 * shape.frames
    )


@pytest.mark.parametrize("name", list(CASES))
def test_the_walks_peaks_are_the_original_animate_codes(traced: dict[str, Traced], name: str) -> None:
    run = traced[name]
    cfg, shape = _walk_shape(name)
    assert dit_peak_bytes(cfg, shape) == run.peak
    # with PyTorch's math attention the peak is a self-attention's, beside its cu_seqlens (3 x 8 bytes of
    # bookkeeping, not walked) in the wide grid; the motion encoder's with nine face frames
    bookkeeping = 3 * 8 if name.startswith("one-face") else 0
    assert dit_peak_bytes(cfg, shape, materialized=True) + bookkeeping == run.peak_materialized


def test_the_original_model_at_the_published_config_has_the_presets_parameters() -> None:
    module = load_animate()
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = module.WanAnimateModel()  # wan/configs/wan_animate_14B.py's sizes are the class defaults
    count = sum(p.numel() for p in model.parameters())
    assert count == get_preset("wan2.2-animate-14b").transformer.num_parameters() == 17_274_816_884


def test_the_relighting_lora_at_the_published_config_has_the_presets_parameters() -> None:
    # generate.py --use_relighting_lora: get_loraconfig(transformer=model, rank=128, alpha=128), model.add_adapter:
    # 40 blocks x 128 x (10 x (5120 + 5120) (q, k, v, o of both attentions; k_img, v_img) + 2 x (5120 + 13824) (the
    # FFN's)) = 718,274,560 parameters (lora_A, lora_B); 1.44 GB in bf16
    module = load_animate()
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = module.WanAnimateModel()
        model.add_adapter(load_animate_utils().get_loraconfig(transformer=model, rank=128, alpha=128))
    lora = sum(p.numel() for n, p in model.named_parameters() if ".lora_" in n)
    assert lora == 718_274_560
    cfg = replace(get_preset("wan2.2-animate-14b").transformer, lora_rank=128)
    assert sum(p.numel() for p in model.parameters()) == cfg.num_parameters() == 17_274_816_884 + 718_274_560
    assert {p.dtype for n, p in model.named_parameters() if ".lora_" in n} == {torch.float32}  # the model's own


def test_a_wan_runtime_job_walks_the_original_animate_model() -> None:
    from hybrid.models.wan_dit import wan_ops_written
    from hybrid.runtime import Runtime

    w = Workload.of("wan2.2-animate-14b", runtime=Runtime("wan"))
    shape, cfg = w.shape(), w.spec.transformer
    assert (shape.dit_ops, shape.dit_weight_dtype, shape.per_token_timestep) == ("wan", "bfloat16", False)
    assert wan_ops_written(cfg, shape)
    original = dit_rows(cfg, shape)
    diffusers = dit_rows(cfg, Workload.of("wan2.2-animate-14b").shape())
    # the same FLOPs at the published size (1280x720, 77 frames: 75,600 tokens), the original's own bytes
    assert sum(g.flops for g in original) == sum(g.flops for g in diffusers)
    moved = [sum(r.bytes_read + r.bytes_written for g in rows for r in g.expand()) for rows in (original, diffusers)]
    assert moved[0] > moved[1]
