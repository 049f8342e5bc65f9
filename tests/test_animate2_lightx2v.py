"""Wan-Animate-2 (distilled) on LightX2V (``--runtime lightx2v``): its ``wan22_animate2_distilled`` runner's segment
plan against a copy of its own loop, the calls a job makes, and its transformer's structure against diffusers' walk
(read from ``lightx2v/models/networks/wan/infer/animate2/``, not traced: LightX2V's kernels do not run here)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hybrid.deployment import Deployment
from hybrid.errors import InputError
from hybrid.models.wan_animate2 import (
    COND,
    LIGHTX2V_OPS,
    REFERENCE,
    WAN_ANIMATE_2_14B,
    animate2_peak_bytes,
    animate2_rows,
    block_mask_share,
    kv_cache_bytes,
    packed_lengths,
)
from hybrid.runtime import Runtime
from hybrid.schedule import schedule
from hybrid.sizing import size_on_gpu
from hybrid.workload import Workload
from tests.conftest import rows_by_op

MODEL = "wan-animate-2-14b-distilled"


def _lightx2v_plan(frames: int, clip_len: int = 81, overlap: int = 1) -> list[int]:
    """The segment lengths LightX2V makes of ``frames`` driving frames: ``WanAnimate2Runner._padding_length`` then
    ``_plan_segments`` (lightx2v/models/runners/wan/wan_animate2_runner.py at f8aee98), copied as written."""
    remaining = (frames - overlap) % (clip_len - overlap)
    total = frames + (28 - remaining if remaining < 28 else 4 - remaining % 4)
    segments, start = [], 0
    while start + overlap < total:
        end = min(start + clip_len, total)
        segments.append(end - start)
        start += (end - start) - overlap
    return segments


def _job(frames: int) -> Workload:
    return Workload.of(MODEL, frames=frames, runtime=Runtime("lightx2v"))


def test_the_segments_are_the_runners_own_plan_for_every_length() -> None:
    seen = set()
    for frames in range(2, 500):
        plan, w = _lightx2v_plan(frames), _job(frames)
        assert w.segments == len(plan) and w.last_segment_frames == plan[-1], frames
        assert set(plan[:-1]) <= {81} and plan[-1] % 4 == 1 and 29 <= plan[-1] <= 81
        seen.add(plan[-1])
    assert min(seen) == 29 and max(seen) == 81
    # 81 frames fill one segment: diffusers makes one, LightX2V pads to 109 and adds a 29-frame one
    assert (_lightx2v_plan(81), Workload.of(MODEL, frames=81).segments) == ([81, 29], 1)
    assert _lightx2v_plan(121) == [81, 45] and _lightx2v_plan(200) == [81, 81, 41] and _lightx2v_plan(17) == [29]


def test_a_job_makes_the_runners_calls() -> None:
    w = _job(241)  # 240 // 80 + 1 = 4 segments: 81, 81, 81 and a last one of 29
    assert (w.segments, w.last_segment_frames) == (4, 29)
    assert dict(schedule(w)) == {
        # the prompt and the reference prompt (enable_cfg false: no negative one); CLIP on the reference image and on
        # each segment's first driving frame (run_image_encoder(driving[:, :, 0])); the reference image's encode
        "text_encoder": 2, "image_encoder": 5, "reference_encode": 1,
        # three whole segments: two encodes, a reference pass, 10 steps of one pass and a decode each
        "vae_encode": 3, "reference_pass": 3, "diffusion_core": 30, "diffusion_core_uncond": 0, "vae_decode": 3,
        # and the last one, at its own 29 frames
        "vae_encode_last": 1, "reference_pass_last": 1, "diffusion_core_last": 10, "diffusion_core_uncond_last": 0,
        "vae_decode_last": 1,
    }  # fmt: skip
    s = w.shape()
    last = s.last_segment
    assert last is not None and s.dit_ops == last.dit_ops == LIGHTX2V_OPS
    # 29 frames: 8 latent frames (a denoising pass sees 9 with the reference slot) of 50 x 40 tokens at 640x800
    assert (last.frames, last.latent_frames, last.dit_latent_frames, last.dit_tokens) == (29, 8, 9, 18_000)
    # the packed self-attention still sized for the config's 81 frames (mask_layout(origin_len=81, ...))
    assert (s.packed_latent_frames, last.packed_latent_frames) == (0, 21)
    assert block_mask_share(WAN_ANIMATE_2_14B, last) == block_mask_share(WAN_ANIMATE_2_14B, s)
    # diffusers makes the same video in 3 whole segments
    assert Workload.of(MODEL, frames=241).segments == 3 and Workload.of(MODEL, frames=241).shape().last_segment is None


def test_the_transformer_runs_its_structure_around_diffusers_ops() -> None:
    w = _job(81)
    lx = w.shape()
    diffusers = replace(lx, dit_ops="diffusers", last_segment=None)
    cfg, d = WAN_ANIMATE_2_14B, 5_120

    ref_lx, ref_d = rows_by_op(lx, REFERENCE), rows_by_op(diffusers, REFERENCE)
    # the reference pass runs no head (infer_reference stops after the blocks): head.head's 2 x 42,000 tokens x
    # 5,120 x 64 FLOPs fewer; it copies each layer's rotated k and v into the cache the runner allocated before it
    assert ref_d[("head.head", "aten.addmm")][1] == 2 * 42_000 * d * 64
    assert not [k for k in ref_lx if k[0].startswith("head")]
    assert sum(v[1] for v in ref_d.values()) - sum(v[1] for v in ref_lx.values()) == 2 * 42_000 * d * 64
    assert ref_lx[("", "aten.empty")][0] == 2 and ref_lx[("blocks.{i}.self_attn", "aten.copy_")][0] == 80
    # the cache is live through the whole pass: in its peak from the start, not grown block by block
    cache = kv_cache_bytes(cfg, lx)
    assert cache == 2 * 40 * 42_000 * d * 2
    assert animate2_peak_bytes(cfg, lx, REFERENCE, False) > cache
    cond_lx, cond_d = rows_by_op(lx, COND), rows_by_op(diffusers, COND)
    # a whole segment's denoising pass: the same FLOPs; the cached keys not rotated again (diffusers' rope_apply over
    # the 42,000 reference tokens), the reference K and V packed through buffers of their own: two more zeroed
    # buffers and two more copies per layer
    assert sum(v[1] for v in cond_lx.values()) == sum(v[1] for v in cond_d.values())
    zeros = ("blocks.{i}.self_attn", "aten.new_zeros")
    copies = ("blocks.{i}.self_attn", "aten.copy_")
    assert (cond_lx[zeros][0], cond_d[zeros][0]) == (40 * 5, 40 * 3)
    assert (cond_lx[copies][0], cond_d[copies][0]) == (40 * 7, 40 * 5)
    muls = ("blocks.{i}.self_attn", "aten.mul")
    assert cond_lx[muls][0] < cond_d[muls][0]  # the reference keys' rotation gone
    # the last segment (29 frames, 18,000 tokens a pass): its projections on its own tokens, its FlexAttention on
    # the whole segment's packed buffers: 4 x 40 heads x 44,032 x 86,144 x 128, as a whole segment's
    last = lx.last_segment
    assert last is not None
    flex = [
        g for g in animate2_rows(cfg, last, COND, "x") if g.category == "attention" and g.module.endswith("self_attn")
    ]
    assert [g.flops_per_call for g in flex] == [4 * 40 * 44_032 * 86_144 * 128]
    assert packed_lengths(21, 2_000) == (44_032, 42_112)
    q = [g for g in animate2_rows(cfg, last, COND, "x") if g.module == "blocks.{i}.self_attn.to_q"]
    assert q[0].flops_per_call == 2 * 18_000 * d * d  # 9 latent frames x 2,000 tokens


def test_the_report_sizes_every_segment_and_says_how_it_was_read() -> None:
    sized = size_on_gpu(_job(81), "h100-sxm")
    stages = sized.stages
    assert stages["diffusion_core_last"].seconds > 0.5 * stages["diffusion_core"].seconds  # the attention: fixed
    assert stages["reference_pass_last"].seconds < stages["reference_pass"].seconds
    assert stages["diffusion_core"].held_bytes == kv_cache_bytes(WAN_ANIMATE_2_14B, _job(81).shape())
    text = " ".join(sized.assumptions)
    assert "diffusers' ops in LightX2V's structure, read from its code" in text
    # diffusers' tail stages make no call: not named where the report says how each stage was sized
    assert "reference_pass_last" not in " ".join(size_on_gpu(Workload.of(MODEL), "h100-sxm").assumptions)


def test_ulysses_splits_the_tokens_and_the_cache_by_heads_as_its_8gpu_config() -> None:
    """wan_animate2_distill_8gpu.json (seq_p_size 8, ulysses): per rank and block 4 all-to-alls (q, k, v out, the
    attention's output back), each with a layout copy; the cache and FlexAttention on 5 of the 40 heads; the head's
    output all-gathered after a denoising pass; the VAE, T5 and CLIP whole on every rank."""
    w = Workload.of(MODEL, frames=81, width=848, height=480, runtime=Runtime("lightx2v"))
    one, eight = w.shape(), w.shape(Deployment(gpus=8, ulysses=8))
    # 848x480: 53 x 30 = 1,590 tokens a latent frame; a denoising pass sees 22 of them: 34,980, padded to 34,984,
    # 4,373 a rank; the reference pass 21: 33,390, padded to 33,392, 4,174 a rank
    assert (eight.dit_tokens, eight.vae_grid) == (34_980, (1, 1))
    cfg, d = WAN_ANIMATE_2_14B, 5_120
    for mode, local, valid in ((COND, 4_373, 34_980), (REFERENCE, 4_174, 33_390)):
        rows = animate2_rows(cfg, eight, mode, "x")
        exchanged = [g for g in rows if g.op == "_c10d_functional.all_to_all_single"]
        # 4 a block, each this rank's 4,373 (4,174) tokens x 5,120 x 2 B each way, less its own eighth
        assert sum(g.calls * g.repeat for g in exchanged) == 4 * 40
        assert {g.bytes_read_per_call for g in exchanged} == {local * d * 2 * 7 // 8}
        q = [g for g in rows if g.module == "blocks.{i}.self_attn.to_q"]
        assert q[0].flops_per_call == 2 * local * d * d  # the projections on this rank's tokens
        attention = [g for g in rows if g.module == "blocks.{i}.self_attn" and g.category == "attention"]
        if mode == REFERENCE:  # every padded query against the true keys, 5 heads
            assert attention[0].flops_per_call == 4 * 5 * (local * 8) * valid * 128
        else:  # the packed buffers, 5 heads: an eighth of one GPU's
            full = [g for g in animate2_rows(cfg, one, mode, "x") if g.module == "blocks.{i}.self_attn"
                    and g.category == "attention"]  # fmt: skip
            assert attention[0].flops_per_call * 8 == full[0].flops_per_call
        gathers = [g for g in rows if g.op == "c10d.allgather_"]
        assert len(gathers) == (1 if mode == COND else 0)  # the reference pass runs no head
    # the cache: 33,392 tokens (padded) x 640 (5 heads) x K and V x 40 layers x 2 B a rank: an eighth, padded
    assert (
        kv_cache_bytes(cfg, eight) == 2 * 40 * 33_392 * 640 * 2 and kv_cache_bytes(cfg, one) == 2 * 40 * 33_390 * d * 2
    )
    assert block_mask_share(cfg, eight)[0][0] == 5 and block_mask_share(cfg, eight)[1] == block_mask_share(cfg, one)[1]
    sized_one = size_on_gpu(w, "h100-sxm")
    sized = size_on_gpu(w, "h100-sxm", deployment=Deployment(gpus=8, ulysses=8))
    assert sized.stages["diffusion_core"].seconds < sized_one.stages["diffusion_core"].seconds / 6
    assert (
        sized.stages["diffusion_core"].comm_bytes_per_rank > 0 and sized.stages["vae_decode"].comm_bytes_per_rank == 0
    )
    assert sized.stages["vae_decode"].seconds == sized_one.stages["vae_decode"].seconds  # whole on every rank


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"model": "wan-animate-2-14b"},
            "runtime: wan-animate-2-14b runs on diffusers, wan only .*; valid: --runtime diffusers or --runtime wan$",
        ),
        (
            {"model": MODEL, "deployment": Deployment(gpus=2, ring=2)},
            "ring: Wan-Animate-2 splits its tokens by Ulysses",
        ),
        (  # LightX2V's _build_reference_cache raises where the heads do not split over the ranks
            {"model": MODEL, "deployment": Deployment(gpus=3, ulysses=3)},
            "ulysses: 3 does not divide the 40 attention heads of wan-animate-2-14b-distilled; valid: 1, 2, 4, 5, 8",
        ),
    ],
)
def test_what_it_does_not_run_is_one_line(kw: dict[str, object], message: str) -> None:
    deployment = kw.pop("deployment", None)
    with pytest.raises(InputError, match=message):
        w = Workload.of(runtime=Runtime("lightx2v"), **kw)  # type: ignore[arg-type]
        size_on_gpu(w, "h100-sxm", deployment=deployment)  # type: ignore[arg-type]


def test_the_last_segments_vae_calls_equal_their_trace_at_its_frames() -> None:
    from hybrid.verify import TINY_SPECS, check_stage

    # its VAE in float32, where LightX2V's ops are diffusers' (in bfloat16 its norms are its own: tests/test_vae_ops.py)
    w = Workload.of(TINY_SPECS["animate2-distilled"], frames=83, runtime=Runtime("lightx2v", vae_dtype="float32"))
    assert (w.segments, w.last_segment_frames) == (2, 29)  # 82 % 80 = 2 frames past one segment: padded to 28
    flops = {}
    for stage in ("vae_decode", "vae_decode_last", "vae_encode", "vae_encode_last"):  # the last: at its 29 frames
        check = check_stage(stage, w)
        assert check.passed and check.detail["exact"] and check.detail["bytes_checked"], (stage, check.detail)
        flops[stage] = check.detail["analytic_flops"]
    assert flops["vae_decode_last"] < flops["vae_decode"] and flops["vae_encode_last"] < flops["vae_encode"]
