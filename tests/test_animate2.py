"""Wan-Animate-2: the transformer's config and parameters against the built module, its three calls' walks
against meta traces of ``WanAnimate2Transformer3DModel`` (rows and peaks), the block mask's kept blocks
against torch's own ``create_block_mask``, and the segment loop's calls as the modular blocks make them."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from fractions import Fraction

import pytest
import torch

from hybrid.cli import main
from hybrid.geometry import CallShape
from hybrid.models.wan_animate2 import (
    COND,
    REFERENCE,
    UNCOND,
    WAN_ANIMATE_2_14B,
    WanAnimate2Transformer3DConfig,
    animate2_peak_bytes,
    animate2_rows,
    animate2_terms,
    block_mask_share,
    kv_cache_bytes,
    packed_lengths,
)
from hybrid.models.wan_dit import WAN21_I2V_14B
from hybrid.rows import aggregate_costs, expand
from hybrid.schedule import schedule
from hybrid.schemas import problem
from hybrid.timing import roofline_terms
from hybrid.trace.build import _animate2_pass, build_animate2_transformer
from hybrid.trace.mode import CanonicalFunctionMode, CostMode, ModuleStack, flex_attention_rows
from hybrid.verify import TINY_SPECS, check_stage
from hybrid.workload import Workload

TINY = WanAnimate2Transformer3DConfig(dim=64, ffn_dim=128, num_heads=4, num_layers=2, text_dim=32, freq_dim=16,
                                      text_len=16)  # fmt: skip


def _built(cfg: WanAnimate2Transformer3DConfig) -> torch.nn.Module:
    from diffusers.models.transformers.transformer_wan_animate_2 import WanAnimate2Transformer3DModel

    logging.disable(logging.WARNING)
    try:
        with torch.device("meta"):
            return WanAnimate2Transformer3DModel(**cfg.to_kwargs())
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.parametrize(
    "cfg",
    [WAN_ANIMATE_2_14B, TINY, replace(TINY, use_img_emb=False, cross_attn_norm=False, patch_size=(1, 2, 2))],
    ids=["published", "tiny", "no-image"],
)
def test_parameters_equal_the_built_module(cfg: WanAnimate2Transformer3DConfig) -> None:
    assert cfg.num_parameters() == sum(p.numel() for p in _built(cfg).parameters())


def test_the_published_transformer_has_the_image_to_video_14b_s_parameters() -> None:
    # the same layers and widths as Wan2.1's image-to-video 14B (its K/V cache is a mode, not a module)
    assert WAN_ANIMATE_2_14B.num_parameters() == WAN21_I2V_14B.num_parameters() == 16_394_878_784


def _shape(lh: int, lw: int, frames: int = 81, text_len: int = 16) -> CallShape:
    """One segment of ``frames`` frames: its latent frames for the reference pass, one more (the reference
    image's slot) for a denoising pass; one CLIP image (257 tokens)."""
    lf = (frames - 1) // 4 + 1
    return CallShape(
        batch=1, frames=frames, height=lh * 8, width=lw * 8, latent_frames=lf, latent_height=lh, latent_width=lw,
        dit_latent_frames=lf + 1, dit_tokens=(lf + 1) * (lh // 2) * (lw // 2), text_len=text_len, images=1,
        image_tokens=257,
    )  # fmt: skip


def _traced(cfg: WanAnimate2Transformer3DConfig, shape: CallShape, mode: str) -> CostMode:
    module = build_animate2_transformer(cfg, "meta", torch.bfloat16)
    run = _animate2_pass(mode)(module, cfg, shape, "meta", torch.bfloat16, None)
    with ModuleStack(module) as modules:
        cost = CostMode("x", modules)
        with torch.no_grad(), cost, CanonicalFunctionMode(cost), flex_attention_rows(cost):
            run()
    return cost


@pytest.mark.parametrize(
    ("cfg", "lh", "lw", "text_len", "mode"),
    [
        (TINY, 8, 6, 16, REFERENCE),  # the image embedder's activations peak
        (TINY, 16, 16, 16, REFERENCE),  # the cache grows block by block: the last block's self-attention peaks
        (TINY, 16, 16, 10, COND),  # a shorter prompt, padded to the config's text_len in the forward
        (replace(TINY, num_layers=12), 16, 16, 16, UNCOND),  # block 9 skipped
        (replace(TINY, use_img_emb=False), 16, 16, 16, COND),
        (WAN_ANIMATE_2_14B, 100, 80, 512, REFERENCE),  # the published model at the blocks' 800x640 default
        (WAN_ANIMATE_2_14B, 100, 80, 512, COND),
    ],
    ids=["tiny-reference", "tiny-reference-large", "tiny-cond-short-prompt", "uncond-12-layers", "no-image",
         "published-reference", "published-cond"],
)  # fmt: skip
def test_the_walk_equals_a_meta_trace_row_for_row_and_in_its_peaks(
    cfg: WanAnimate2Transformer3DConfig, lh: int, lw: int, text_len: int, mode: str
) -> None:
    shape = _shape(lh, lw, text_len=text_len)
    cost = _traced(cfg, shape, mode)
    assert cost.unsupported == {}
    rows = animate2_rows(cfg, shape, mode, "x")
    assert aggregate_costs(expand(rows)) == aggregate_costs(cost.rows())
    assert animate2_peak_bytes(cfg, shape, mode, False) == cost.peak_live_bytes
    assert animate2_peak_bytes(cfg, shape, mode, True) == cost.peak_live_bytes_materialized
    assert animate2_terms(cfg, shape, mode) == roofline_terms(rows)


def test_the_published_segment_in_numbers() -> None:
    shape = _shape(100, 80, text_len=512)
    # 81 frames: 21 latent frames of 50 x 40 = 2,000 tokens; a denoising pass sees 22 of them (44,000 tokens)
    assert packed_lengths(21, 2_000) == (44_032, 42_112)  # 44,000 and 42,000 rounded up to 128
    # the cache: 40 layers x K and V x 42,000 tokens x 5,120 x 2 B
    assert kv_cache_bytes(WAN_ANIMATE_2_14B, shape) == 40 * 2 * 42_000 * 5_120 * 2 == 34_406_400_000
    # the reference pass's peak: the whole cache but the last block's V, plus block 39's working set
    assert animate2_peak_bytes(WAN_ANIMATE_2_14B, shape, REFERENCE, False) == 40_048_588_826
    sdpa = [g for g in animate2_rows(WAN_ANIMATE_2_14B, shape, COND, "x") if g.module.endswith("self_attn")]
    flex = [g for g in sdpa if g.category == "attention"]
    # FlexAttention counted dense over the packed buffers, as FlopCounterMode counts it: 4 x 40 heads x 44,032
    # queries x 86,144 keys x 128
    assert len(flex) == 1 and flex[0].flops_per_call == 4 * 40 * 44_032 * 86_144 * 128
    dims, share = block_mask_share(WAN_ANIMATE_2_14B, shape)
    # 344 query blocks against the 344 generation blocks (118,336), plus per query block the reference blocks of
    # its frames (5,715 in all): 124,051 of the 344 x 673 dense blocks, 53.6%
    assert dims == (40, 44_032, 86_144, 128) and share == Fraction(124_051, 344 * 673)


def _torch_blocks(frames: int, hw: int) -> tuple[int, int]:
    """``(kept blocks, query blocks)`` of the model's own ``create_mask``, built eagerly on the CPU."""
    import diffusers.models.transformers.transformer_wan_animate_2 as module
    from torch.nn.attention.flex_attention import create_block_mask

    made = []

    def eager(fn, **kw):  # type: ignore[no-untyped-def]
        made.append(create_block_mask(fn, kw["B"], kw["H"], kw["Q_LEN"], kw["KV_LEN"], device="cpu", _compile=False))
        return made[-1]

    real = module.create_block_mask
    module.create_block_mask = eager  # type: ignore[assignment]
    try:
        module.WanAnimate2Transformer3DModel.create_mask(None, frames, hw, "cpu")  # type: ignore[arg-type]
    finally:
        module.create_block_mask = real
    mask = made[0]
    full = 0 if mask.full_kv_num_blocks is None else int(mask.full_kv_num_blocks.sum())
    return int(mask.kv_num_blocks.sum()) + full, mask.kv_num_blocks.shape[-1]


@pytest.mark.parametrize(("frames", "lh", "lw"), [(3, 8, 6), (5, 16, 16), (21, 20, 16), (4, 30, 22), (2, 46, 46)])
def test_the_kept_blocks_are_the_block_masks(frames: int, lh: int, lw: int) -> None:
    shape = replace(_shape(lh, lw, (frames - 1) * 4 + 1), latent_frames=frames)
    dims, share = block_mask_share(TINY, shape)
    kept, query_blocks = _torch_blocks(frames, (lh // 2) * (lw // 2))
    assert query_blocks == dims[1] // 128
    assert share == Fraction(kept, (dims[1] // 128) * (dims[2] // 128))


def test_a_241_frame_job_runs_three_segments_of_every_per_segment_stage() -> None:
    w = Workload.of("wan-animate-2-14b", frames=241)
    # guidance 3.0: CFG; the prompt, the reference prompt and the negative prompt; two CLIP images; the reference
    # image's encode once; per segment (80 new frames each: 1 + 3 x 80 = 241) the two video encodes, one reference
    # pass, 40 conditional and 40 unconditional passes and one decode
    assert dict(schedule(w)) == {
        "text_encoder": 3, "image_encoder": 2, "reference_encode": 1, "vae_encode": 3, "reference_pass": 3,
        "diffusion_core": 120, "diffusion_core_uncond": 120, "vae_decode": 3,
        "vae_encode_last": 0, "reference_pass_last": 0, "diffusion_core_last": 0, "diffusion_core_uncond_last": 0,
        "vae_decode_last": 0,
    }  # fmt: skip
    distilled = Workload.of("wan-animate-2-14b-distilled", frames=241)
    # 10 steps, guidance 1.0: no unconditional pass, no negative prompt
    assert dict(schedule(distilled)) == {
        "text_encoder": 2, "image_encoder": 2, "reference_encode": 1, "vae_encode": 3, "reference_pass": 3,
        "diffusion_core": 30, "diffusion_core_uncond": 0, "vae_decode": 3,
        # diffusers pads the video to whole segments: no shorter last one (LightX2V's, tests/test_animate2_lightx2v.py)
        "vae_encode_last": 0, "reference_pass_last": 0, "diffusion_core_last": 0, "diffusion_core_uncond_last": 0,
        "vae_decode_last": 0,
    }  # fmt: skip
    s = w.shape()
    assert (s.frames, s.latent_frames, s.dit_latent_frames, s.dit_tokens) == (81, 21, 22, 22 * 50 * 40)
    assert (w.width, w.height) == (640, 800)


@pytest.mark.parametrize("pipeline", ["animate2", "animate2-distilled"])
def test_every_stage_of_a_tiny_job_equals_its_trace(pipeline: str) -> None:
    spec = TINY_SPECS[pipeline]
    w = Workload.of(spec, frames=200)  # three segments
    # a shorter last segment's stages are these at diffusers' whole segments: checked at a short one with the runtimes
    # that make it (tests/test_animate2_lightx2v.py, tests/test_animate2_original.py)
    for sd in spec.pipeline_def.stages:
        if sd.name.endswith("_last"):
            continue
        check = check_stage(sd.name, w)
        assert check.passed and check.detail["exact"] and check.detail["bytes_checked"], (sd.name, check.detail)


def test_the_report_holds_the_cache_in_the_denoising_passes_memory(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["report", "--model", "wan-animate-2-14b", "--gpu", "h100-sxm", "--format", "json"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert problem(doc) is None
    stages = doc["stages"]
    cache = 34_406_400_000
    core, reference = stages["diffusion_core"]["memory"], stages["reference_pass"]["memory"]
    # the cache is the reference pass's output, held by every denoising pass on top of its own activations
    assert core["activation_peak_bytes"] == 6_811_596_824 and core["held_bytes"] == cache
    assert stages["diffusion_core"]["peak_memory_bytes"] == core["weights_bytes"] + cache + 6_811_596_824
    assert reference["activation_peak_bytes"] == 40_048_588_826
    # weights (the bf16 DiT, the fp32 VAE and CLIP, the bf16 umT5) and the cache do not fit 80 GB
    assert doc["total"]["fits"] is False and doc["total"]["peak_memory_bytes"] > 80 * 2**30


def test_the_block_mask_thins_the_flex_attentions_seconds_not_its_flops() -> None:
    from hybrid.sizing import masked_terms

    w = Workload.of("wan-animate-2-14b")
    spec = w.spec
    sd = spec.pipeline_def.stage("diffusion_core")
    terms = sd.closed_terms(spec, w.shape())
    assert terms is not None
    masked = masked_terms(sd, spec, w.shape(), terms)
    assert masked_terms(spec.pipeline_def.stage("reference_pass"), spec, w.shape(), terms) is terms  # dense there
    dims, share = block_mask_share(WAN_ANIMATE_2_14B, w.shape())
    (before,) = [t for t in terms if t[4] == dims]
    (after,) = [t for t in masked if t[4] == dims]
    assert after[1] == before[1] * share.numerator // share.denominator and after[2:] == before[2:]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpus", "2", "--ulysses", "2", "--gpu", "h100-sxm"], "gpus: wan-animate-2-14b runs on one GPU per job"),
        (["--runtime", "fastvideo", "--gpu", "h100-sxm"], "runtime: wan-animate-2-14b runs on diffusers, wan only"),
        (["--batch", "2"], "batch: 2 is invalid for wan-animate-2-14b; valid: 1 to 1"),
    ],
)
def test_what_the_pipeline_does_not_run_is_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--model", "wan-animate-2-14b", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
