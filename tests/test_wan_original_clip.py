"""``--runtime wan``'s image encoder (:func:`hybrid.models.clip._wan_clip_walk`) against the original
``CLIPModel.visual`` (Wan2.1's ``wan/modules/clip.py``, vendored in ``tests/data/wan_original/wan21/clip.py``), run on a
CPU with float16 weights under ``autocast(float16)`` as ``image2video.py`` runs it (``clip_dtype``), and traced: every
(module, op)'s calls, FLOPs and bytes, and both activation peaks. Its preprocessing runs too (the bicubic resize, the
join, ``mul_(0.5).add_(0.5)``, torchvision's ``Normalize``: :class:`tests.wan_original.Normalize`). Left out, as the
other original-code tests do: views and the attention's ``cu_seqlens`` bookkeeping. ``CudaAutocastLists`` casts the
float16 ``LayerNorm`` weights to float32 as CUDA's autocast does.
"""

from __future__ import annotations

import gc
import types
from collections import defaultdict
from dataclasses import replace

import pytest
import torch

from hybrid import ops
from hybrid.geometry import CallShape
from hybrid.models.clip import CLIP_VIT_H_14, CLIPVisionConfig, clip_peak_bytes, clip_rows
from hybrid.rows import CostRow
from tests.wan_original import CudaAutocastLists, _bookkeeping, _by_module_op, clip_visual

TINY = CLIPVisionConfig(hidden_size=64, intermediate_size=256, projection_dim=32, num_hidden_layers=4,
                        num_attention_heads=4, image_size=28, patch_size=14)  # fmt: skip
CASES = {  # config, images, height, width
    "5 tokens: the preprocessing peaks": (TINY, 1, 64, 96),
    "197 tokens: the blocks peak": (replace(TINY, patch_size=2), 1, 64, 96),
    "one block run (two built)": (replace(TINY, patch_size=2, num_hidden_layers=2), 1, 40, 56),
    "two images (first and last frame)": (TINY, 2, 40, 56),
}


def _shape(images: int, height: int, width: int) -> CallShape:
    return CallShape(batch=1, frames=1, height=height, width=width, latent_frames=1, latent_height=height // 8,
                     latent_width=width // 8, dit_latent_frames=1, dit_tokens=1, text_len=1, images=images,
                     image_encoder_ops="wan")  # fmt: skip


@pytest.fixture(scope="module")
def traced() -> dict[str, tuple[list[CostRow], int, int, dict[str, int]]]:
    from hybrid.trace.mode import CanonicalFunctionMode, CostMode, ModuleStack

    out = {}
    for name, (cfg, images, height, width) in CASES.items():
        tower, model = clip_visual(cfg)
        pictures = [torch.randn(3, height, width)[:, None] for _ in range(images)]  # img[:, None, :, :] as generate
        with ModuleStack(tower) as modules:
            cost = CostMode("image_encoder", modules)
            with torch.no_grad(), cost, CanonicalFunctionMode(cost), CudaAutocastLists():
                assert model.visual(pictures).dtype == torch.float16
            gc.collect()
        out[name] = (cost.rows(), cost.peak_live_bytes, cost.peak_live_bytes_materialized, dict(cost.unsupported))
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_the_walk_equals_the_original_clip_op_for_op_with_both_peaks(
    traced: dict[str, tuple[list[CostRow], int, int, dict[str, int]]], name: str
) -> None:
    cfg, images, height, width = CASES[name]
    rows, peak, peak_materialized, unsupported = traced[name]
    assert set(unsupported) <= {"aten.cumsum"}  # cu_seqlens; the resize and the (std == 0).any() are rows
    kept = [r for r in rows if r.category != "view" and not _bookkeeping(r, images)]
    shape = _shape(images, height, width)
    walked = [row for g in clip_rows(cfg, shape) for row in g.expand()]
    assert _by_module_op(walked) == _by_module_op(kept)
    assert (clip_peak_bytes(cfg, shape), clip_peak_bytes(cfg, shape, True)) == (peak, peak_materialized)
    # 31 of 32 blocks: the last one built is never run
    assert not any(r.module.startswith(f"transformer.{cfg.num_hidden_layers - 1}.") for r in kept)
    assert any(r.module.startswith(f"transformer.{cfg.num_hidden_layers - 2}.") for r in kept)


def test_the_original_runs_31_blocks_in_float16_at_the_published_size() -> None:
    """ViT-H/14 at 224: 257 tokens of 1280, 16 heads of 80, MLP 5120. transformers' tower runs 32 layers and the
    pooled post-norm; the original 31 blocks and no post-norm, with the same FLOPs per block."""
    cfg, n, t, d, f = CLIP_VIT_H_14, 1, 257, 1280, 5120
    wan = _shape(1, 720, 1280)
    transformers = replace(wan, image_encoder_ops="transformers")

    def flops(shape: CallShape) -> int:
        return sum(g.flops for g in clip_rows(cfg, shape))

    conv = 2 * d * 3 * 14 * 14 * 256  # the patch conv over 16 x 16 patches: 385,351,680
    block = 2 * t * d * (3 * d + d + 2 * f) + ops.sdpa(n, 16, t, t, 80)  # to_qkv, proj, mlp; attention 4 T^2 D
    assert block == 2 * 257 * 1280 * 15360 + 4 * 257 * 257 * 1280 == 10_443_822_080
    assert flops(wan) == conv + 31 * block == 324_143_836_160
    assert flops(transformers) == conv + 32 * block == flops(wan) + block
    # the hidden states in float16: every block's input and output are 257 x 1280 x 2 bytes
    adds = [g for g in clip_rows(cfg, wan) if g.op == "aten.add" and g.module.startswith("transformer.")]
    assert {g.bytes_written_per_call for g in adds} == {t * d * 2}


def test_sizing_takes_the_original_clip_from_its_closed_form_also_when_traced() -> None:
    """The tracer builds transformers' CLIPVisionModel, whose ops are not the original's: on ``--runtime wan``
    the image encoder is sized from the closed form with or without ``--traced``, and the assumptions say so."""
    from hybrid.pipelines import IMAGE_ENCODER
    from hybrid.sizing import untraced_ops
    from hybrid.workload import Workload

    wan = Workload.of(model="wan2.1-i2v-14b-480p", runtime={"name": "wan"})
    diffusers = Workload.of(model="wan2.1-i2v-14b-480p")
    assert untraced_ops(IMAGE_ENCODER, wan.spec, wan.shape())
    assert not untraced_ops(IMAGE_ENCODER, diffusers.spec, diffusers.shape())


def test_a_namespace_stands_for_the_clip_model_as_init_leaves_it() -> None:
    """The test builds ``CLIPModel`` without its checkpoint: the attributes ``visual`` reads are the ones set."""
    tower, model = clip_visual(TINY)
    assert isinstance(model.model, types.SimpleNamespace) and model.model.visual is tower
    assert {p.dtype for p in tower.parameters()} == {torch.float16}


def test_the_original_rows_fall_in_the_same_report_components_as_transformers() -> None:
    from hybrid.models.clip import component

    def by_component(ops: str) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for g in clip_rows(CLIP_VIT_H_14, replace(_shape(1, 480, 832), image_encoder_ops=ops)):
            out[component(g.module, g.op)] += g.flops
        return dict(out)

    wan, transformers = by_component("wan"), by_component("transformers")
    # the same conv; 31 of 32 layers' projections, attention and MLP
    assert wan["embedders"] == transformers["embedders"] == 2 * 1280 * 3 * 14 * 14 * 256
    for c in ("attention_projections", "attention_core", "ffn"):
        assert wan[c] * 32 == transformers[c] * 31, c
    assert wan["other"] == transformers["other"] == 0


def test_lightx2v_runs_the_original_clip_too() -> None:
    """LightX2V's CLIPModel (lightx2v/models/input_encoders/hf/wan/xlm_roberta/model.py, f8aee98) is the original's
    code with an SDPA call for flash_attention, fp16 and use_31_block by default (wan_runner.load_image_encoder):
    the same walk, 31 blocks; diffusers and the other runtimes run transformers' tower, 32."""
    from hybrid.report import estimate
    from hybrid.workload import Workload

    flops = {
        rt: estimate(Workload.of(model="wan2.1-i2v-14b-480p", runtime={"name": rt})).stages["image_encoder"].flops
        for rt in ("wan", "lightx2v", "diffusers", "fastvideo")
    }
    assert flops["wan"] == flops["lightx2v"] == 324_143_836_160
    assert flops["diffusers"] == flops["fastvideo"] == 324_143_836_160 + 10_443_822_080  # one more block
