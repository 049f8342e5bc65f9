"""Wan-Animate-2 on the original code (``--runtime wan``): ``WanAnimate2MPIPipeline`` as BrightenU/Wan-Animate-2-NPU
copies it (``pipelines/wan_animate_2_pipeline.py``, ``wanxiang/models/wan_animate_2_model.py``,
``wanxiang/ops/distributed.py``; read, not traced: the upstream repository is not stored here and its flex wrapper
is not in the copy). Its segment plan against a copy of its own loop, the calls a job makes, the encodes against the
VAE's trace, and its transformer's structure and exchanges against diffusers' walk."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hybrid.deployment import Deployment
from hybrid.errors import InputError
from hybrid.models.wan_animate2 import (
    COND,
    REFERENCE,
    WAN_ANIMATE_2_14B,
    kv_cache_bytes,
)
from hybrid.models.wan_dit import WAN_OPS
from hybrid.runtime import Runtime
from hybrid.schedule import schedule
from hybrid.sizing import size_on_gpu
from hybrid.workload import Workload
from tests.conftest import rows_by_op

MODEL = "wan-animate-2-14b-distilled"
LAYOUT = Deployment(gpus=8, ulysses=8, fsdp=("dit", "text_encoder"))
"""The upstream yamls' sp_size and sharding_size (8: 'tuned for 8x A800 GPUs')."""


def _original_plan(frames: int, clip_len: int = 81, first_num: int = 1) -> list[int]:
    """The segment lengths the original pipeline makes of ``frames`` driving frames: ``get_padding_len`` (as two
    copies of it give it) then ``inference_core``'s ``while True`` loop, copied as written."""
    remaining = (frames - 1) % (clip_len - 1)  # get_padding_len(input_len, m, n, refert_num=1)
    target = frames + (28 - remaining if remaining < 28 else 4 - remaining % 4)
    segments, start, end = [], 0, clip_len
    while True:
        if start + first_num >= target:
            break
        if target - start < clip_len:
            clip_len = target - start
        segments.append(len(range(target)[start:end]))
        start += clip_len - first_num
        end += clip_len - first_num
    return segments


def _job(frames: int, model: str = MODEL) -> Workload:
    return Workload.of(model, frames=frames, runtime=Runtime("wan"))


def test_the_segments_are_the_pipelines_own_loop_for_every_length() -> None:
    for frames in range(2, 500):
        plan, w = _original_plan(frames), _job(frames)
        assert w.segments == len(plan) and w.last_segment_frames == plan[-1], frames
        assert set(plan[:-1]) <= {81} and plan[-1] % 4 == 1 and 29 <= plan[-1] <= 81
    # the fork's smoke run: clip_len 49, 70 frames: 69 % 48 = 21 past one segment, padded by 7 to 77: 49 and 29
    assert _original_plan(70, clip_len=49) == [49, 29]
    # 81 frames fill one segment: the original pads to 109 and adds a 29-frame one, as LightX2V does
    assert _original_plan(81) == [81, 29] and (_job(81).segments, _job(81).last_segment_frames) == (2, 29)


def test_a_job_makes_the_pipelines_calls() -> None:
    w = _job(241)  # 240 // 80 + 1 = 4 segments: 81, 81, 81 and a last one of 29
    assert (w.segments, w.last_segment_frames) == (4, 29)
    assert dict(schedule(w)) == {
        # per segment, the last one too: t5(prompt) and t5(prompt_ref) (guide 1.0: no context_null); clip.visual on
        # the reference image and on the segment's first driving frame; vae.encode of the reference image
        "text_encoder": 4 * 2, "image_encoder": 4 * 2, "reference_encode": 4,
        # three whole segments: one stage call of three encodes, a reference pass, 10 steps of one pass, a decode
        "vae_encode": 3, "reference_pass": 3, "diffusion_core": 30, "diffusion_core_uncond": 0, "vae_decode": 3,
        # and the last one at its 29 frames
        "vae_encode_last": 1, "reference_pass_last": 1, "diffusion_core_last": 10, "diffusion_core_uncond_last": 0,
        "vae_decode_last": 1,
    }  # fmt: skip
    cfg = Workload.of("wan-animate-2-14b", frames=241, runtime=Runtime("wan"))  # guidance 3.0: context_null too
    calls = dict(schedule(cfg))
    assert (calls["text_encoder"], calls["diffusion_core"], calls["diffusion_core_uncond"]) == (4 * 3, 120, 120)
    assert calls["diffusion_core_uncond_last"] == 40
    assert w.shape().segment_encodes == 3 and Workload.of(MODEL, frames=241).shape().segment_encodes == 2


def test_a_segments_three_encodes_equal_their_trace() -> None:
    from hybrid.verify import TINY_SPECS, check_stage

    spec = TINY_SPECS["animate2-distilled"]
    w = Workload.of(spec, frames=83, runtime=Runtime("wan"))
    assert (w.segments, w.last_segment_frames) == (2, 29)
    flops = {}
    for stage in ("vae_encode", "vae_encode_last"):
        check = check_stage(stage, w)
        assert check.passed and check.detail["exact"] and check.detail["bytes_checked"], (stage, check.detail)
        flops[stage] = check.detail["analytic_flops"]
    sd, shape = spec.pipeline_def.stage("vae_encode"), Workload.of(spec, frames=83).shape()
    two = sum(g.flops for g in sd.groups(sd.config(spec), shape))  # diffusers' two encodes
    assert 2 * flops["vae_encode"] == 3 * two  # y_reft, condition_latents and condition_y: three encodes of 81 frames


def test_the_reference_pass_runs_no_head() -> None:
    s = _job(81).shape()
    assert s.dit_ops == WAN_OPS
    diffusers = replace(s, dit_ops="diffusers", last_segment=None)
    mine, theirs = rows_by_op(s, REFERENCE), rows_by_op(diffusers, REFERENCE)
    d = 5_120
    # forward_ref returns after the blocks: head.head's 2 x 42,000 tokens (21 latent frames of 50 x 40) x 5,120 x 64
    assert theirs[("head.head", "aten.addmm")][1] == 2 * 42_000 * d * 64
    assert not [k for k in mine if k[0].startswith("head")]
    assert sum(v[1] for v in theirs.values()) - sum(v[1] for v in mine.values()) == 2 * 42_000 * d * 64
    # a denoising pass: diffusers' ops (the port's), its cache as diffusers' (no buffers allocated before it)
    assert rows_by_op(s, COND) == rows_by_op(replace(diffusers, dit_ops="diffusers"), COND)
    assert kv_cache_bytes(WAN_ANIMATE_2_14B, s) == 2 * 40 * 42_000 * d * 2  # every layer's normed K and V, bf16


def test_ulysses_exchanges_as_its_distributed_ops() -> None:
    s = _job(81).shape(LAYOUT)
    assert (s.ulysses, s.local_tokens) == (8, 44_000 // 8)  # a denoising pass: 22 latent frames of 2,000 tokens
    for mode, tokens in ((REFERENCE, 42_000 // 8), (COND, 44_000 // 8)):
        rows = rows_by_op(s, mode)
        # per block: qkv = torch.cat([q, k, v]) exchanged by one dist.all_to_all (its head chunks made contiguous:
        # 8 copies), and the attention's float32 output back; each rank sends 7/8 of what it holds
        calls, _, moved = rows[("blocks.{i}.self_attn", "c10d.alltoall_")]
        assert calls == 2 * 40
        sent = 3 * tokens * 5_120 * 2 + tokens * 5_120 * 4
        assert moved == 2 * 40 * sent * 7 // 8
        assert rows[("blocks.{i}.self_attn", "aten.clone")][0] == 40 * 8
    # a denoising pass's float32 head output gathered from every rank (gather_forward_split_backward)
    assert rows_by_op(s, COND)[("", "c10d.allgather_")][2] == 2 * 7 * (44_000 // 8) * 64 * 4
    # the cache holds views of the exchanged qkv: q stays with k and v, 3 x 40 layers x 42,000 tokens x 640 (5 heads)
    assert kv_cache_bytes(WAN_ANIMATE_2_14B, s) == 3 * 40 * 42_000 * 640 * 2


def test_every_model_stays_on_the_gpu() -> None:
    w = _job(81)
    sizing = size_on_gpu(w, "h100-sxm")
    placement = "placement: the text encoder, the image encoder, the DiT and the whole VAE stay on the GPU"
    assert any(line.startswith(placement) for line in sizing.assumptions)
    offloaded = size_on_gpu(replace(w, runtime=Runtime("wan", offload=True)), "h100-sxm")
    assert offloaded.peak_memory_bytes == sizing.peak_memory_bytes and offloaded.seconds == sizing.seconds
    # 640 x 800 on one H100: 16.4B bf16 DiT parameters, T5, CLIP and the VAE resident, a 34.4 GB cache: it does not
    # fit, and offload cannot help (the code has none)
    assert sizing.peak_memory_bytes > 80 * 2**30
    assert any("moves no model off the GPU" in line for line in sizing.warnings)
    eight = size_on_gpu(w, "h100-sxm", deployment=LAYOUT)
    assert eight.peak_memory_bytes < 80 * 2**30


@pytest.mark.parametrize(
    ("deployment", "message"),
    [
        (
            Deployment(gpus=8, ulysses=8),
            "fsdp: the original Wan-Video/Wan-Animate-2 pipeline (WanAnimate2MPIPipeline) shards dit, text_encoder "
            "over the ranks whatever it is told; give --fsdp dit,text_encoder",
        ),
        (Deployment(gpus=2, ring=2, fsdp=("dit", "text_encoder")), "ring: Wan-Animate-2 splits its tokens by Ulysses"),
        (
            Deployment(gpus=3, ulysses=3, fsdp=("dit", "text_encoder")),
            "ulysses: 3 does not divide the 40 attention heads",
        ),
    ],
)
def test_what_it_does_not_run_is_one_line(deployment: Deployment, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        size_on_gpu(_job(81), "h100-sxm", deployment=deployment)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        (
            "--convert-model-dtype",
            "convert-model-dtype: the original Wan-Video/Wan-Animate-2 pipeline "
            "(WanAnimate2MPIPipeline) has no --convert_model_dtype",
        ),
        ("--t5-cpu", "t5-cpu: the wan runtime's code for animate2 has no such flag"),
    ],
)
def test_the_original_wan_flags_it_has_not_are_one_line(
    flag: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from hybrid.cli import main

    assert main(["report", "--model", "wan-animate-2-14b", "--runtime", "wan", flag, "--gpu", "h100-sxm"]) == 2
    err = capsys.readouterr().err
    assert err == f"wanmeter: error: {message}\n"
