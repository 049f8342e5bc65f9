"""``--runtime wan``'s Wan-Animate transformer against the original ``WanAnimateModel`` (Wan2.2's
``wan/modules/animate/``, vendored in ``tests/data/wan_original/wan22/animate``), run on a CPU in bfloat16 under
``autocast(bfloat16)`` as ``WanAnimate.generate`` runs it and traced.

wanmeter times the original's forward by diffusers' ``WanAnimateTransformer3DModel`` ops (its float32 norms and
residual stream, float64 rotary embedding and the original motion encoder's own kernels are not walked yet). What
holds, and is checked here: the two have the same modules, so the same parameters and, family by family, the same
FLOPs (every matmul, convolution and attention of the motion encoder, the face encoder and adapters, the blocks and
the embeddings); their bytes and activations differ, and the tiny trace says by how much.
"""

from __future__ import annotations

import warnings
from collections import defaultdict

import pytest
import torch

from hybrid.geometry import CallShape
from hybrid.models.wan_dit import WanAnimateTransformer3DConfig, dit_rows
from hybrid.presets import get_preset
from tests.wan_original import Traced, load_animate, trace

HEADS, HEAD_DIM, FFN, LAYERS, TEXT_DIM, FREQ = 2, 128, 64, 5, 32, 16
FRAMES, HEIGHT, WIDTH, FACE_FRAMES = 2, 4, 6, 1  # the reference latent frame and one more; one face frame
TOKENS = FRAMES * (HEIGHT // 2) * (WIDTH // 2)

FAMILIES = {
    "time_embedding": "condition_embedder", "time_projection": "condition_embedder",
    "text_embedding": "condition_embedder", "img_emb": "condition_embedder", "head": "head", "norm_out": "head",
    "proj_out": "head",
}  # fmt: skip
"""The original's top-level modules by diffusers' (``head.head`` is ``proj_out``; ``img_emb`` and the time and text
embedders sit in ``condition_embedder``)."""


@pytest.fixture(scope="module")
def traced() -> Traced:
    module = load_animate()
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # diffusers' note on casting a model with `to()`
        model = module.WanAnimateModel(in_dim=36, dim=HEADS * HEAD_DIM, ffn_dim=FFN, text_dim=TEXT_DIM,
                                       num_heads=HEADS, num_layers=LAYERS, freq_dim=FREQ)  # fmt: skip
        model = model.eval().requires_grad_(False).to(torch.bfloat16)  # from_pretrained(torch_dtype=bfloat16)
    bf16 = torch.bfloat16
    x = [torch.randn(16, FRAMES, HEIGHT, WIDTH)]  # the float32 noise
    y = [torch.randn(20, FRAMES, HEIGHT, WIDTH, dtype=bf16)]
    pose = [torch.randn(16, FRAMES - 1, HEIGHT, WIDTH, dtype=bf16)]
    face = torch.randn(1, 3, FACE_FRAMES, 512, 512, dtype=bf16)
    context = [torch.randn(512, TEXT_DIM, dtype=bf16)]
    clip = torch.randn(1, 257, 1280, dtype=torch.float16)  # CLIP's visual features under autocast(float16)
    t = torch.tensor([999.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trace(model, lambda: model(x, t=t, clip_fea=clip, context=context, seq_len=TOKENS, y=y,
                                          pose_latents=pose, face_pixel_values=face))  # fmt: skip


def _by_family(rows: list[tuple[str, int, int]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for module, flops, moved in rows:
        top = module.split(".")[0]
        family = FAMILIES.get(top, top)
        out[family][0] += flops
        out[family][1] += moved
    return dict(out)


def test_the_original_model_has_the_same_flops_as_the_walk_family_by_family(traced: Traced) -> None:
    cfg = WanAnimateTransformer3DConfig(num_attention_heads=HEADS, attention_head_dim=HEAD_DIM, ffn_dim=FFN,
                                        num_layers=LAYERS, text_dim=TEXT_DIM, freq_dim=FREQ,
                                        added_kv_proj_dim=HEADS * HEAD_DIM)  # fmt: skip
    shape = CallShape(batch=1, frames=FACE_FRAMES, height=8 * HEIGHT, width=8 * WIDTH, latent_frames=FRAMES,
                      latent_height=HEIGHT, latent_width=WIDTH, dit_latent_frames=FRAMES, dit_tokens=TOKENS,
                      text_len=512, images=1, image_tokens=257)  # fmt: skip
    assert set(traced.unsupported) <= {"aten.cumsum"}  # the attentions' cu_seqlens
    original = _by_family([(r.module, r.flops, r.bytes_read + r.bytes_written) for r in traced.rows])
    walked = _by_family([(r.module, r.flops, r.bytes_read + r.bytes_written) for g in dit_rows(cfg, shape)
                         for r in g.expand()])  # fmt: skip
    flops = {k: v[0] for k, v in original.items() if v[0]}
    assert flops == {k: v[0] for k, v in walked.items() if v[0]}
    # one 512x512 face frame through the motion encoder: 39,280,216,064 FLOPs in both (its convolutions)
    assert flops["motion_encoder"] == 39_280_216_064
    # the bytes differ (the original's float32 regions and its own blur kernels): more in the original here
    assert sum(v[1] for v in original.values()) > sum(v[1] for v in walked.values())


def test_the_original_model_at_the_published_config_has_the_presets_parameters() -> None:
    module = load_animate()
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = module.WanAnimateModel()  # wan/configs/wan_animate_14B.py's sizes are the class defaults
    count = sum(p.numel() for p in model.parameters())
    assert count == get_preset("wan2.2-animate-14b").transformer.num_parameters() == 17_274_816_884
