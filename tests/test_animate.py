"""Wan2.2-Animate: the transformer's config, its parameters against the built module, and (as they land)
its walk against a meta trace."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest
import torch

from hybrid.cli import main
from hybrid.errors import InputError
from hybrid.geometry import CallShape
from hybrid.models.wan_dit import WanAnimateTransformer3DConfig, dit_components, dit_peak_bytes, dit_rows, dit_terms
from hybrid.pipelines import get_pipeline
from hybrid.rows import aggregate_costs, expand
from hybrid.schedule import schedule
from hybrid.schemas import problem
from hybrid.trace import trace_stage
from hybrid.trace.build import _wan_dit_forward, build_animate_transformer
from hybrid.trace.mode import CanonicalFunctionMode, CostMode, ModuleStack
from hybrid.verify import TINY_SPECS, check_stage
from hybrid.workload import Workload

TINY = WanAnimateTransformer3DConfig(
    num_attention_heads=2, attention_head_dim=32, text_dim=64, freq_dim=32, ffn_dim=128, num_layers=5, image_dim=48,
    added_kv_proj_dim=64, motion_encoder_size=32, motion_style_dim=32, motion_dim=8, motion_encoder_dim=32,
    face_encoder_hidden_dim=16, face_encoder_num_heads=4,
    motion_encoder_channel_sizes=((4, 32), (8, 32), (16, 32), (32, 16)),
)  # fmt: skip


def _built(cfg: WanAnimateTransformer3DConfig) -> torch.nn.Module:
    from diffusers.models.transformers.transformer_wan_animate import WanAnimateTransformer3DModel

    logging.disable(logging.WARNING)
    try:
        with torch.device("meta"):
            return WanAnimateTransformer3DModel(**cfg.to_kwargs())
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.parametrize("cfg", [WanAnimateTransformer3DConfig(), TINY], ids=["published", "tiny"])
def test_parameters_equal_the_built_module(cfg: WanAnimateTransformer3DConfig) -> None:
    assert cfg.num_parameters() == sum(p.numel() for p in _built(cfg).parameters())


def test_published_parameters_by_part() -> None:
    cfg = (
        WanAnimateTransformer3DConfig()
    )  # huggingface/diffusers scripts/convert_wan_to_diffusers.py, Wan2.2-Animate-14B
    # the image-to-video 14B's 16,394,878,784 plus the pose patch 16*5120*4 + 5120 =
    # 332,800, the motion encoder 22,736,436, the face encoder 17,842,176 and 8 face adapters of
    # 4 x (5120^2 + 5120) + 2 x 128 = 104,878,336 each
    assert cfg.num_parameters() == 17_274_816_884
    assert cfg.animate_parameters() == 332_800 + 22_736_436 + 17_842_176 + 8 * 104_878_336
    assert cfg.num_parameters() - cfg.animate_parameters() == 16_394_878_784
    assert cfg.motion_channels() == [32, 64, 128, 256, 512, 512, 512, 512]  # 512 px down to 4


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"in_channels": 40}, "in_channels: 40 is not 2 * latent_channels + 4 = 36"),
        ({"inject_face_latents_blocks": 3}, "inject_face_latents_blocks: 3 must divide num_layers 40"),
        ({"motion_encoder_size": 48}, "motion_encoder_size: 48 must be a power of two >= 8"),
        ({"motion_encoder_size": 2048}, "motion_encoder_size: 2048 must be a power of two >= 8 with a channel count"),
    ],
)
def test_configs_the_module_cannot_run_are_refused(kw: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("*", r"\*").replace("+", r"\+")):
        WanAnimateTransformer3DConfig(**kw)  # type: ignore[arg-type]


def _shape(frames: int, latent_height: int, latent_width: int) -> CallShape:
    """One segment's transformer call: ``frames`` face frames, ``(frames - 1) / 4 + 1`` latent frames plus the
    reference frame; 512 text tokens and one CLIP image (257 tokens), as the pipeline calls it."""
    lf = (frames - 1) // 4 + 1
    return CallShape(
        batch=1, frames=frames, height=latent_height * 8, width=latent_width * 8, latent_frames=lf,
        latent_height=latent_height, latent_width=latent_width, dit_latent_frames=lf + 1,
        dit_tokens=(lf + 1) * (latent_height // 2) * (latent_width // 2), text_len=512, images=1, image_tokens=257,
    )  # fmt: skip


def _traced(cfg: WanAnimateTransformer3DConfig, shape: CallShape) -> CostMode:
    module = build_animate_transformer(cfg, "meta", torch.bfloat16)
    run = _wan_dit_forward(module, cfg, shape, "meta", torch.bfloat16, None)
    with ModuleStack(module) as modules:
        cost = CostMode("diffusion_core", modules)
        with torch.no_grad(), cost, CanonicalFunctionMode(cost):
            run()
    return cost


@pytest.mark.parametrize(
    ("cfg", "frames", "lh", "lw"),
    [
        (TINY, 13, 8, 8),  # two face batches (8 + 5 frames); the motion encoder's activations peak
        (replace(TINY, num_layers=10), 29, 16, 8),  # two face adapters: the first's output held through blocks 1-4
        (replace(TINY, motion_encoder_batch_size=4, face_encoder_num_heads=2), 21, 8, 8),
        (WanAnimateTransformer3DConfig(), 77, 90, 160),  # the published model, one 77-frame segment at 1280x720
    ],
    ids=["tiny", "two-adapters", "other-batching", "published-720p"],
)
def test_the_walk_equals_a_meta_trace_row_for_row_and_in_its_peaks(
    cfg: WanAnimateTransformer3DConfig, frames: int, lh: int, lw: int
) -> None:
    shape = _shape(frames, lh, lw)
    cost = _traced(cfg, shape)
    assert cost.unsupported == {}
    assert aggregate_costs(expand(dit_rows(cfg, shape))) == aggregate_costs(cost.rows())
    assert dit_peak_bytes(cfg, shape) == cost.peak_live_bytes
    assert dit_peak_bytes(cfg, shape, True) == cost.peak_live_bytes_materialized
    terms = dit_terms(cfg, shape)
    assert sum(t[1] for t in terms) == sum(r.flops for r in cost.rows())


def test_the_published_segment_call_in_numbers() -> None:
    cfg, shape = WanAnimateTransformer3DConfig(), _shape(77, 90, 160)
    by_component = dit_components(cfg, shape)
    # 77 face frames in ten batches (9 x 8 + 5) through the motion encoder; the face encoder over them;
    # 8 face adapters, each 21 frames x 3,600 video tokens attending to 5 face tokens: 4 x 40 heads x 128 x 3,600
    # x 5 x 21 = 7,741,440,000 FLOPs each
    assert by_component["face_adapter_core"] == 8 * 4 * 40 * 128 * 3_600 * 5 * 21
    assert shape.dit_tokens == 21 * 45 * 80 == 75_600
    peak = dit_peak_bytes(cfg, shape)
    assert peak == 10_116_328_448  # in block 1: the first face adapter's output (75,600 x 5,120 x 2 B) still held


def _diffusers_segments(frames: int, segment: int = 77, overlap: int = 1) -> int:
    """WanAnimatePipeline.__call__'s arithmetic, as its code reads (diffusers 0.42,
    pipelines/wan/pipeline_wan_animate.py): the driving video padded to a whole number of segments."""
    effective_segment_length = segment - overlap
    last_segment_frames = (frames - overlap) % effective_segment_length
    num_padding_frames = 0 if last_segment_frames == 0 else effective_segment_length - last_segment_frames
    return (frames + num_padding_frames) // effective_segment_length


def test_segments_follow_the_pipelines_arithmetic_for_every_length() -> None:
    p = get_pipeline("animate")
    assert [p.segments(f) for f in range(2, 400)] == [_diffusers_segments(f) for f in range(2, 400)]
    assert (p.segments(77), p.segments(78), p.segments(153), p.segments(241)) == (1, 2, 2, 4)


def test_a_241_frame_job_runs_four_segments_of_every_per_segment_stage() -> None:
    w = Workload.of("wan2.2-animate-14b", frames=241)
    # 20 steps, guidance 1.0: no CFG; the prompt, the CLIP image and the reference image's encode once; per segment
    # the pose and conditioning videos' encodes (one stage call), 20 transformer calls and one decode
    assert dict(schedule(w)) == {
        "text_encoder": 1, "image_encoder": 1, "reference_encode": 1, "vae_encode": 4, "diffusion_core": 80,
        "vae_decode": 4,
    }  # fmt: skip
    s = w.shape()  # one segment's call: 77 frames, 20 latent frames decoded, 21 seen by the transformer
    assert (s.frames, s.latent_frames, s.dit_latent_frames, s.dit_tokens) == (77, 20, 21, 21 * 45 * 80)
    assert not w.cfg and w.mode == "animate" and w.to_dict()["mode"] == "animate"
    assert dict(schedule(Workload.of("wan2.2-animate-14b", frames=241, cfg=True)))["diffusion_core"] == 160
    # replace mode encodes the background where animate mode encodes zeros: the same modules, the same calls
    replace_mode = Workload.of("wan2.2-animate-14b", frames=241, mode="replace")
    assert dict(schedule(replace_mode)) == dict(schedule(w)) and replace_mode.shape() == s


def test_every_stage_of_a_tiny_animate_job_equals_its_trace() -> None:
    spec = TINY_SPECS["animate"]
    w = Workload.of(spec, frames=160)  # three segments
    for sd in spec.pipeline_def.stages:
        check = check_stage(sd.name, w)
        assert check.passed and check.detail["exact"] and check.detail["bytes_checked"], (sd.name, check.detail)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpus", "2", "--ulysses", "2", "--gpu", "h100-sxm"], "gpus: wan2.2-animate-14b runs on one GPU per job"),
        (
            ["--runtime", "fastvideo", "--gpu", "h100-sxm"],
            "runtime: wan2.2-animate-14b runs on diffusers, wan, lightx2v only",
        ),
        (
            ["--runtime", "wan", "--size", "848x480", "--gpus", "4", "--ulysses", "4", "--gpu", "h100-sxm"],
            "ulysses: the original pads its 33,390 tokens to 33,392 for 4 ranks, which its face adapter cannot split "
            "into 21 latent frames",
        ),
        (["--frames", "1"], "frames: 1 is invalid for wan2.2-animate-14b; valid: more than 1"),
        (["--batch", "2"], "batch: 2 is invalid for wan2.2-animate-14b; valid: 1 to 1"),
    ],
)
def test_what_the_pipeline_does_not_run_is_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--model", "wan2.2-animate-14b", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_the_acceptance_report_gives_segments_calls_seconds_and_fit(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["report", "--model", "wan2.2-animate-14b", "--frames", "241", "--gpu", "h100-sxm"]
    assert main([*args, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["workload"]["frames"] == 241 and doc["workload"]["mode"] == "animate"
    assert problem(doc) is None
    runs = {name: s["runs"] for name, s in doc["stages"].items()}
    assert (
        runs["diffusion_core"] == 80
        and runs["vae_encode"] == runs["vae_decode"] == 4
        and doc["workload"]["segments"] == 4
    )
    assert doc["total"]["fits"] is True and doc["total"]["seconds"] > 0
    assert doc["total"]["peak_memory_bytes"] < 80 * 2**30  # every component resident (diffusers, no offload)
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "241 frames in 4 segments of 77, 20 steps each" in text and "animate mode" in text
    assert "above the 81 frames" not in text  # each segment is 77 frames: no extrapolation warning
    assert "of the 80 GiB of one h100-sxm: fits" in text
    assert main([*args, "--mode", "replace"]) == 0
    assert "replace mode" in capsys.readouterr().out


def test_a_one_frame_encode_at_720p_peaks_in_the_mid_block_attention_as_traced() -> None:
    # the reference image's encode: at 1280x720 PyTorch's math attention over the 90 x 160 latent pixels of the
    # encoder's mid block sets the materialised peak. Live then: the mid block's input (its caller holds it), the
    # attention's input, the norm's output (x holds it until the attention returns), q, k, v made contiguous and
    # the math kernel's own: 4,368,384,000 bytes, the trace's
    w = Workload.of("wan2.2-animate-14b")
    sd = w.spec.pipeline_def.stage("reference_encode")
    traced = trace_stage("reference_encode", w)
    assert traced.peak_module_materialized == "encoder.mid_block.attentions.0"
    assert sd.closed_peak(w.spec, w.shape(), True) == traced.peak_activation_bytes_materialized == 4_368_384_000
    assert sd.closed_peak(w.spec, w.shape()) == traced.peak_activation_bytes


def test_a_sweep_takes_each_models_own_guidance_unless_told() -> None:
    from hybrid.sweep import Grid

    grid = Grid(models=("wan2.2-animate-14b", "wan2.1-t2v-1.3b"))
    assert [w.cfg for w in grid.workloads()] == [False, True]  # Wan-Animate's guidance 1.0; everyone else's 5.0
    assert [w.cfg for w in replace(grid, cfg=(True,)).workloads()] == [True, True]


def test_the_original_runtime_runs_its_own_segment_loop() -> None:
    """The original WanAnimate.generate (Wan2.2 wan/animate.py) against diffusers' pipeline on the same 241 frames
    (4 segments of 77): both prompts encoded at guide scale 1, CLIP and the reference image's encode once per
    segment, the same DiT calls (no unconditional pass at guide scale 1), each call the same FLOPs (its
    WanAnimateModel's own ops around them); --offload moves the text encoder only; the timestep per sample."""
    from hybrid.runtime import Runtime
    from hybrid.sizing import size_on_gpu, stage_costs

    wan = Workload.of("wan2.2-animate-14b", frames=241, runtime=Runtime("wan"))
    diffusers = Workload.of("wan2.2-animate-14b", frames=241)
    assert wan.segments == diffusers.segments == 4 and not wan.cfg
    assert dict(schedule(wan)) == {
        "text_encoder": 2, "image_encoder": 4, "reference_encode": 4, "vae_encode": 4, "diffusion_core": 80,
        "vae_decode": 4,
    }  # fmt: skip
    assert dict(schedule(diffusers)) == {**dict(schedule(wan)), "text_encoder": 1, "image_encoder": 1,
                                         "reference_encode": 1}  # fmt: skip
    guided = dict(schedule(replace(wan, cfg=True)))  # a guide scale above 1: the unconditional pass too
    assert (guided["text_encoder"], guided["diffusion_core"]) == (2, 160)
    assert not wan.shape().per_token_timestep  # WanAnimateModel embeds one timestep per sample
    costs, base = stage_costs(wan), stage_costs(diffusers)  # the original's ops (tests/test_wan_animate_original.py)
    assert costs["diffusion_core"].flops == base["diffusion_core"].flops > 0
    # its float32 residual stream: a bigger activation peak than diffusers' bf16 one
    assert costs["diffusion_core"].peak_activation_bytes > base["diffusion_core"].peak_activation_bytes
    offload = Runtime("wan", offload=True, pipeline="animate")
    moves = offload.moves(wan.spec, wan.spec.pipeline_def.stages)
    assert moves == [("text_encoder", "text_encoder", "in"), ("text_encoder", "text_encoder", "out")]
    sized = size_on_gpu(replace(wan, runtime=replace(wan.runtime, offload=True)), "h100-sxm")
    assert sized.stages["diffusion_core"].host_copy_bytes == 0 and sized.stages["text_encoder"].host_copy_bytes > 0
    counts = wan.spec.parameter_counts()  # the DiT in bf16 (from_pretrained's torch_dtype), CLIP in float16
    assert [wan.runtime.weight_dtype(c, wan.spec) for c in ("transformer", "image_encoder", "vae")] == [
        "bfloat16", "float16", "float32"
    ]  # fmt: skip
    assert counts["transformer"] == 17_274_816_884
    assert Workload.of("wan2.2-t2v-a14b", runtime=Runtime("wan")).cfg  # its other pipelines: CFG always


def test_a_runtime_is_bound_to_its_workloads_pipeline() -> None:
    from hybrid.runtime import RUNTIME_DEFS, Runtime

    w = Workload.of("wan2.2-animate-14b", runtime=Runtime("wan"))
    assert w.runtime.pipeline == "animate" and w.runtime == Runtime("wan")  # not part of equality
    assert "pipeline" not in w.runtime.to_dict() and w.to_dict()["runtime"] == {**Runtime("wan").to_dict()}
    assert w.runtime.record.cfg_always is False and RUNTIME_DEFS["wan"].cfg_always is True
    assert RUNTIME_DEFS["wan"].of("t2v") is RUNTIME_DEFS["wan"]  # no overlay: the record itself
    with pytest.raises(InputError, match="runtime: unknown field 'pipeline'"):
        Workload.of("wan2.2-animate-14b", runtime={"name": "wan", "pipeline": "t2v"})


def test_the_original_runtime_splits_animate_by_ulysses() -> None:
    """generate.py --task animate-14B --dit_fsdp --t5_fsdp --ulysses_size 8 (the Wan2.2 README's 8-GPU command): each
    rank runs the blocks on its 9,450 of the 75,600 tokens, the motion and face encoders whole, and gathers the
    queries for each of the 8 face adapters (tests/test_wan_animate_original.py traces that code under Ulysses)."""
    from hybrid.deployment import Deployment
    from hybrid.runtime import Runtime
    from hybrid.sizing import size_on_gpu

    w = Workload.of("wan2.2-animate-14b", frames=241, runtime=Runtime("wan"))
    d = Deployment(gpus=8, ulysses=8, fsdp=("dit", "text_encoder"))
    shape = w.shape(d)
    assert (shape.dit_tokens, shape.local_tokens) == (75_600, 9_450)
    rows = dit_rows(w.spec.transformer, shape)
    gathers = [g for g in rows if g.op == "c10d.allgather_"]
    # the 8 face adapters' queries (9,450 tokens x 5,120 x 2 bytes a rank) and the head's float32 output (64 wide)
    assert sorted((g.module, g.calls * g.repeat) for g in gathers) == [("", 1)] + [(f"face_adapter.{j}", 1)
                                                                                   for j in range(8)]  # fmt: skip
    one, eight = size_on_gpu(w, "h100-sxm"), size_on_gpu(w, "h100-sxm", deployment=d)
    assert eight.stages["diffusion_core"].seconds < one.stages["diffusion_core"].seconds / 6
    assert eight.stages["diffusion_core"].comm_bytes_per_rank > 0
    with pytest.raises(InputError, match="runs on one GPU per job"):  # diffusers' class has no plan
        size_on_gpu(Workload.of("wan2.2-animate-14b"), "h100-sxm", deployment=Deployment(gpus=2, ulysses=2))


def test_the_relighting_lora_runs_beside_every_block_linear_on_the_original_runtime() -> None:
    """generate.py --task animate-14B --replace_flag --use_relighting_lora (the Wan2.2 README's replacement commands):
    rank-128 peft layers beside the 12 Linears of each of the 40 blocks, unmerged (tests/test_wan_animate_original.py
    traces that code with them); their parameters in the DiT's weights, sharded with its blocks under FSDP."""
    from hybrid.deployment import Deployment
    from hybrid.runtime import Runtime
    from hybrid.sizing import size_on_gpu

    plain = Workload.of("wan2.2-animate-14b", frames=241, mode="replace", runtime=Runtime("wan"))
    lora = replace(plain, relighting_lora=True)
    assert (plain.spec.transformer.lora_rank, lora.spec.transformer.lora_rank) == (0, 128)
    # 40 blocks x 128 x (10 x (5120 + 5120) + 2 x (5120 + 13824)) = 718,274,560 parameters, 2 bytes each in bf16
    assert lora.spec.parameter_counts()["transformer"] - plain.spec.parameter_counts()["transformer"] == 718_274_560
    groups = dit_rows(lora.spec.transformer, lora.shape())
    rows = {(g.module, g.op) for g in groups}
    for proj in ("lora_A", "lora_B"):  # the blocks walked between face adapters: 8 x (1 + 4) groups of them
        mms = [g for g in groups if g.module.endswith(f".attn1.to_q.{proj}.default") and g.op == "aten.mm"]
        # 75,600 tokens x 5,120 x 128 x 2 = 99,090,432,000 FLOPs each way, in each of the 40 blocks
        assert {g.flops_per_call for g in mms} == {99_090_432_000} and sum(g.calls * g.repeat for g in mms) == 40
    base = ("blocks.{i}.attn1.to_q.base_layer", "aten.addmm")  # the Linear itself, as peft's LoraLayer holds it
    assert base in rows and ("blocks.{i}.attn1.to_q", "aten.addmm") not in rows
    assert not any(".lora_" in m for m, _ in rows if m.startswith("face_adapter"))  # get_loraconfig skips "face"
    # the LoRA's FLOPs per DiT call: 2 x 128 x 40 x (75,600 x (6 x 2 x 5,120 + 2 x (5,120 + 13,824)) + 512 x 2 x
    # 10,240 + 257 x 2 x 10,240) = 77,055,446,220,800
    components = dit_components(lora.spec.transformer, lora.shape())
    assert components["lora"] == 77_055_446_220_800
    one, with_lora = size_on_gpu(plain, "h100-sxm"), size_on_gpu(lora, "h100-sxm")
    assert with_lora.stages["diffusion_core"].seconds > one.stages["diffusion_core"].seconds
    assert with_lora.peak_memory_bytes - one.peak_memory_bytes >= 718_274_560 * 2
    d = Deployment(gpus=8, ulysses=8, fsdp=("dit",))
    sharded = size_on_gpu(lora, "h100-sxm", deployment=d).peak_memory_bytes
    assert sharded < size_on_gpu(plain, "h100-sxm", deployment=d).peak_memory_bytes + 718_274_560 * 2 // 4
    assert "relighting LoRA" in lora.describe() and lora.to_dict()["relighting_lora"] is True
    assert "relighting_lora" not in plain.to_dict() and plain.to_dict(every_knob=True)["relighting_lora"] is False
    assert Workload.of(**{**lora.to_dict(), "runtime": lora.runtime}) == lora


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"model": "wan2.2-animate-14b"}, "relighting_lora: --runtime diffusers does not run Wan2.2-Animate's "
         r"relighting LoRA as modelled; valid: --runtime wan \(generate.py --use_relighting_lora\)"),
        ({"model": "wan2.2-animate-14b", "runtime": {"name": "lightx2v"}}, "--runtime lightx2v does not run"),
        ({"model": "wan2.1-t2v-14b"}, r"relighting_lora: wan2.1-t2v-14b has no relighting LoRA; valid: "
         r"Wan2.2-Animate presets \(wan2.2-animate-14b\)"),
        ({"model": "wan2.2-animate-14b", "relighting_lora": 1}, "relighting_lora: must be true or false, got 1"),
    ],
)  # fmt: skip
def test_a_relighting_lora_where_none_is_modelled_is_one_line(kw: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        Workload.of(**{"relighting_lora": True, **kw})  # type: ignore[arg-type]


def test_lightx2v_runs_animate_as_its_wan_animate_json() -> None:
    """LightX2V's wan2.2_animate runner (configs/wan22/wan_animate.json): the original's segments and per-segment CLIP
    and reference encodes, the negative prompt encoded only with CFG (off: enable_cfg false), its own bf16 model
    timed by diffusers' ops, its VAE in bfloat16."""
    from hybrid.runtime import Runtime
    from hybrid.sizing import stage_costs

    light = Workload.of("wan2.2-animate-14b", frames=241, runtime=Runtime("lightx2v"))
    diffusers = Workload.of("wan2.2-animate-14b", frames=241)
    assert dict(schedule(light)) == {**dict(schedule(diffusers)), "image_encoder": 4, "reference_encode": 4}
    assert dict(schedule(light))["text_encoder"] == 1 and not light.cfg
    assert (light.spec.vae.compute_dtype, diffusers.spec.vae.compute_dtype) == ("bfloat16", "float32")
    assert stage_costs(light)["diffusion_core"] == stage_costs(diffusers)["diffusion_core"]  # diffusers' ops


@pytest.mark.parametrize(
    ("frames", "overlap", "segments"), [(229, 1, 3), (229, 5, 4), (241, 5, 4), (78, 1, 2), (78, 5, 2)]
)
def test_prev_segment_conditioning_frames_decide_the_segments(frames: int, overlap: int, segments: int) -> None:
    """diffusers' prev_segment_conditioning_frames (the original's --refert_num), 1 or 5: the driving video padded to
    r + k x (77 - r) frames, k segments: 229 frames are ceil(228 / 76) = 3 segments carrying 1 frame over and
    ceil(224 / 72) = 4 carrying 5; each segment's encodes, 20 steps and decode as before."""
    w = Workload.of("wan2.2-animate-14b", frames=frames, prev_segment_conditioning_frames=overlap)
    assert (w.segments, dict(schedule(w))["diffusion_core"], dict(schedule(w))["vae_decode"]) == (
        segments, 20 * segments, segments
    )  # fmt: skip
    d = w.to_dict()
    assert d.get("prev_segment_conditioning_frames") == (5 if overlap == 5 else None)
    assert Workload.of(**{**d, "model": "wan2.2-animate-14b"}) == w


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"model": "wan2.2-animate-14b", "prev_segment_conditioning_frames": 3}, "valid: 1, 5"),
        ({"model": "wan2.2-animate-14b", "frames": 5, "prev_segment_conditioning_frames": 5}, "valid: more than 5"),
        ({"model": "wan2.1-t2v-14b", "prev_segment_conditioning_frames": 5}, "wan2.1-t2v-14b takes none"),
    ],
)
def test_bad_prev_segment_conditioning_frames_are_one_line(kw: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        Workload.of(**kw)  # type: ignore[arg-type]
