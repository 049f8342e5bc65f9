"""Wan2.2-S2V (``wan2.2-s2v-14b``): the transformer's walk (:mod:`hybrid.models.wan_s2v`) against the original
``WanModel_S2V`` (``tests/data/wan_original/wan22/s2v``, vendored) run on a CPU at tiny configs under
``autocast(bfloat16)`` with bf16 weights, as ``WanS2V.generate`` runs it, and traced by the project's tracer; its
parameters against the built module; the clip count against the original bucketing; the pipeline's stages
against their traces and the report's command line.

What the CPU run cannot show of the GPU one is kept out by stated rules: the host's work
(:class:`tests.wan_original.HostOps`: the rotary tables' assembly from the CPU frequency tables, the grid
sizes' arithmetic) never reaches the tracer; of what does, ops of at most 24 bytes a call (grid sizes,
sequence lengths, the two timesteps, empty motion masks) and the attentions' ``cu_seqlens`` of ``batch + 1``
entries are left out of both sides.
"""

from __future__ import annotations

import json
import types
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from hybrid.geometry import CallShape
from hybrid.models.wan_s2v import (
    WAN22_S2V_14B,
    WanS2VConfig,
    audio_samples,
    clips,
    s2v_groups,
    s2v_held_bytes,
    s2v_peak_bytes,
    s2v_rows,
    tokens,
)
from hybrid.models.wan_vae import vae_encode_groups as wan_vae_groups
from hybrid.models.wav2vec2 import WAV2VEC2_XLSR_53
from hybrid.rows import CostRow, aggregate_costs, expand
from hybrid.schedule import schedule
from hybrid.workload import Workload
from tests.conftest import one_line_error, run_cli
from tests.wan_original import (
    S2V_FIXED,
    S2V_PUBLISHED,
    HostOps,
    Traced,
    _bookkeeping,
    _by_module_op,
    diffusers_path,
    load_s2v,
    trace,
)

TEXT_DIM, TEXT_LEN, FREQ, AUDIO, LAYERS, INJECT = 20, 7, 16, 8, 3, (0, 2)
CASES = {  # heads, ffn, latent frames, latent width (height 8), motion tokens kept
    "first-clip": (2, 40, 2, 16, False),
    "later-clip": (2, 40, 2, 16, True),
    "first-clip-blocks-peak": (4, 192, 6, 32, False),  # its peak in a block's FFN, not in the frame pack
    "later-clip-blocks-peak": (4, 192, 6, 32, True),
}


def _cfg(heads: int, ffn: int) -> WanS2VConfig:
    return WanS2VConfig(num_attention_heads=heads, attention_head_dim=12, ffn_dim=ffn, num_layers=LAYERS,
                        freq_dim=FREQ, text_dim=TEXT_DIM, audio_dim=AUDIO, audio_inject_layers=INJECT)  # fmt: skip


def _shape(frames: int, width: int) -> CallShape:
    return CallShape(batch=1, frames=4 * frames, height=64, width=8 * width, latent_frames=frames, latent_height=8,
                     latent_width=width, dit_latent_frames=frames, dit_tokens=frames * 4 * (width // 2),
                     text_len=TEXT_LEN, dit_ops="wan")  # fmt: skip


def _original(heads: int, ffn: int, device: str = "cpu", published: bool = False) -> torch.nn.Module:
    """``WanModel_S2V`` as ``wan_s2v_14B.py`` configures it (``published``), or at the tiny sizes above."""
    sizes = (
        S2V_PUBLISHED
        if published
        else {"dim": heads * 12, "ffn_dim": ffn, "num_heads": heads, "num_layers": LAYERS, "audio_dim": AUDIO,
              "audio_inject_layers": list(INJECT), "text_dim": TEXT_DIM, "freq_dim": FREQ, "text_len": TEXT_LEN}
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.cpu.amp's deprecation
        module = load_s2v()
        with torch.device(device):
            return module.WanModel_S2V(**S2V_FIXED, **sizes).eval().requires_grad_(False)  # type: ignore[no-any-return]


def _trace(heads: int, ffn: int, frames: int, width: int, motion: bool, ranks: int = 1) -> Traced:
    if ranks > 1:  # rank 0 of torch's fake process group, as WanS2V._configure_model sets the model up with use_sp
        from hybrid.trace.parallel import fake_world

        with fake_world(ranks):
            return _trace(heads, ffn, frames, width, motion, -ranks)
    model = _original(heads, ffn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the casting notice, CPU autocast's float32 notice
        model.to(torch.bfloat16)  # WanModel_S2V.from_pretrained(torch_dtype=bfloat16)
    if ranks < -1:
        module = load_s2v()
        for block in model.blocks:
            block.self_attn.forward = types.MethodType(module.sp_attn_forward_s2v, block.self_attn)
        model.use_context_parallel = True
    torch.manual_seed(0)
    x = [torch.randn(16, frames, 8, width).to(torch.bfloat16)]  # the noise, bf16
    ref = [torch.randn(16, 1, 8, width)]  # the VAE's float32 latents
    motion_latents = [torch.randn(16, 19, 8, width)]
    cond = [torch.randn(16, frames, 8, width).to(torch.bfloat16)]  # cast by the pipeline
    audio = torch.randn(1, 25, AUDIO, 4 * frames).to(torch.bfloat16)
    t = torch.tensor([999])  # FlowUniPCMultistepScheduler's int64 timesteps
    context = [torch.randn(TEXT_LEN, TEXT_DIM).to(torch.bfloat16)]
    host = HostOps(
        [model.freqs, model.frame_packer.freqs, model.frame_packer.zip_frame_buckets],
        [*model.parameters(), *model.buffers(), *x, *ref, *motion_latents, *cond, audio, t, *context],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.cpu.amp's deprecation, CPU autocast's float32 notice
        return trace(model, lambda: model(
            x, t=t, context=context, seq_len=0, ref_latents=ref, motion_latents=motion_latents, cond_states=cond,
            audio_input=audio, motion_frames=[73, 19], drop_motion_frames=not motion,
        ), host=host)  # fmt: skip


SP_CASES = {  # as CASES, then the Ulysses degree: rank 0 of a fake process group, WanS2V's use_sp patched in
    "first-clip-u2": (2, 40, 2, 16, False, 2),
    "later-clip-blocks-peak-u2": (4, 192, 6, 32, True, 2),
    "later-clip-blocks-peak-u4": (4, 192, 6, 32, True, 4),
}
CU_SEQLENS_SLACK = 64
"""Bytes a traced peak may exceed the walk's under Ulysses, where every rank runs the injections over the whole
sequence and a peak can fall in one's attention: its ``cu_seqlens`` (a few int tensors of ``frames + 1``
entries, live in the kernel call) are not walked."""


@pytest.fixture(scope="module")
def traced() -> dict[str, Traced]:
    return {name: _trace(*case) for name, case in CASES.items()}


@pytest.mark.parametrize("name", list(SP_CASES))
def test_the_walk_equals_the_original_code_under_ulysses(name: str) -> None:
    heads, ffn, frames, width, motion, ranks = SP_CASES[name]
    run = _trace(heads, ffn, frames, width, motion, ranks)
    cfg, shape = _cfg(heads, ffn), replace(_shape(frames, width), ulysses=ranks)
    trace_rows = [replace(r, module=diffusers_path(r.module)) for r in run.rows if r.category != "view"]
    walked = [row for g in s2v_rows(cfg, shape, motion) for row in g.expand()]
    assert _by_module_op([r for r in walked if _kept(r, frames)]) == _by_module_op(
        [r for r in trace_rows if _kept(r, frames)]
    )
    assert {r.op for r in walked if r.category == "collective"} == {"c10d.alltoall_", "c10d.allgather_"}
    assert 0 <= run.peak - s2v_peak_bytes(cfg, shape, motion) <= CU_SEQLENS_SLACK
    assert 0 <= run.peak_materialized - s2v_peak_bytes(cfg, shape, motion, True) <= CU_SEQLENS_SLACK
    assert s2v_held_bytes(cfg, shape, motion) == run.held  # each rank's table chunk is a view: the whole is kept


def _kept(row: CostRow, frames: int) -> bool:
    """Not a stated exception: an op of at most 24 bytes a call, or (a traced row, with shapes) the audio
    injection's ``cu_seqlens`` over its ``frames`` samples (which the walk leaves out)."""
    if row.flops == 0 and row.bytes_written <= 24 * row.calls and row.bytes_read <= 48 * row.calls:
        return False
    traced = bool(row.input_shapes or row.output_shape)
    return not (traced and "injector" in row.module and _bookkeeping(replace(row, module="attn"), frames))


def test_the_vendored_s2v_files_load_with_only_the_stated_changes() -> None:
    module = load_s2v()
    assert module.WanModel_S2V.__module__ == "wan_original_wan22.modules.s2v.model_s2v"
    assert module.rope_apply.__module__ == module.__name__


@pytest.mark.parametrize("name", list(CASES))
def test_the_walk_equals_the_original_code_op_for_op_and_in_both_peaks(traced: dict[str, Traced], name: str) -> None:
    heads, ffn, frames, width, motion = CASES[name]
    run = traced[name]
    assert set(run.unsupported) <= {"aten.set_", "aten.cumsum"}  # deepcopy(grid_sizes), cu_seqlens: bookkeeping
    cfg, shape = _cfg(heads, ffn), _shape(frames, width)
    trace_rows = [replace(r, module=diffusers_path(r.module)) for r in run.rows if r.category != "view"]
    walked = [row for g in s2v_rows(cfg, shape, motion) for row in g.expand()]
    assert _by_module_op([r for r in walked if _kept(r, frames)]) == _by_module_op(
        [r for r in trace_rows if _kept(r, frames)]
    )
    assert s2v_peak_bytes(cfg, shape, motion) == run.peak
    assert s2v_peak_bytes(cfg, shape, motion, materialized=True) == run.peak_materialized
    # what outlives the forward: its rotary table (8 bytes a token a channel), the audio encoder's local output
    # (ceil((73 + 4 x frames) / 4) frames of 5 tokens, float32) and the global one's clone (a token a frame)
    d = heads * 12
    table = tokens(cfg, shape, motion).total * d * 8
    audio = -(-(73 + 4 * frames) // 4)
    assert s2v_held_bytes(cfg, shape, motion) == run.held == table + audio * 5 * d * 4 + frames * d * 4


@pytest.mark.parametrize(("heads", "ffn"), [(2, 40), (4, 192)])
def test_parameters_equal_the_built_original_module(heads: int, ffn: int) -> None:
    assert _cfg(heads, ffn).num_parameters() == sum(p.numel() for p in _original(heads, ffn).parameters())


def test_the_published_config_in_numbers() -> None:
    built = _original(0, 0, device="meta", published=True)
    assert WAN22_S2V_14B.num_parameters() == sum(p.numel() for p in built.parameters()) == 16_295_755_609
    # the S2V parts: the causal audio encoder 25 + (1024*5120*3 + 5120) + (1024*1280*3 + 1280) + (1280*2560*3 + 2560)
    # + (2560*5120*3 + 5120) + (5120^2 + 5120) + 5120 = 95,051,545; 12 injections of 4 * (5120^2 + 5120) + 2 * 5120
    # + (5120 * 10240 + 10240) = 157,327,360 each; the frame pack 16 * 5120 * (4 + 32 + 256) + 3 * 5120 = 23,936,000;
    # cond_encoder 16 * 5120 * 4 + 5120 = 332,800; trainable_cond_mask 3 * 5120 = 15,360
    assert WAN22_S2V_14B.s2v_parameters() == 95_051_545 + 12 * 157_327_360 + 23_936_000 + 332_800 + 15_360


def test_tokens_of_a_clip_at_1280x704() -> None:
    # 88 x 160 latents: P = 44 * 80 = 3,520 tokens a frame; 20 noisy frames and the reference frame; a later clip
    # adds the frame pack's 3,520 + 22 * 40 + 4 * 11 * 20 = 5,280 motion tokens
    s = Workload.of(model="wan2.2-s2v-14b").shape()
    first, later = tokens(WAN22_S2V_14B, s, False), tokens(WAN22_S2V_14B, s, True)
    assert (first.noisy, first.total, later.motion, later.total) == (70_400, 73_920, 5_280, 79_200)


def test_flops_of_a_forward_in_closed_form() -> None:
    # nanoGPT-style check of the walk's FLOP rows against the formula, 1280x704, a later clip (L = 79,200)
    d, f, h, hd, text, n, big_l, t = 5120, 13824, 40, 128, 512, 70_400, 79_200, 20
    blocks = 40 * (2 * big_l * 4 * d * d + 2 * big_l * 2 * d * d + 2 * text * 2 * d * d + 2 * big_l * 2 * d * f
                   + 4 * h * big_l * big_l * hd + 4 * h * big_l * text * hd)  # fmt: skip
    injections = 12 * (2 * n * 2 * d * d + 2 * (5 * t) * 2 * d * d + 2 * t * d * 2 * d + 4 * h * n * 5 * hd)
    # audio: 153 frames (73 + 80) -> 77 -> 39; local: 4 heads of 1280, global: 1 of 1280; final_linear on 39 rows
    local = 2 * 153 * 5120 * 1024 * 3 + 2 * 4 * 77 * 2560 * 1280 * 3 + 2 * 4 * 39 * 5120 * 2560 * 3
    glob = 2 * 153 * 1280 * 1024 * 3 + 2 * 77 * 2560 * 1280 * 3 + 2 * 39 * 5120 * 2560 * 3 + 2 * 39 * d * d
    p = 3_520
    convs = 2 * 2 * (t * p) * d * 16 * 4 + 2 * p * d * 16 * 4  # the patch and cond convs, the reference frame
    pack = 2 * p * d * 16 * 4 + 2 * 880 * d * 16 * 32 + 2 * 880 * d * 16 * 256  # the frame pack's three
    embedders = 2 * 2 * (256 * d + d * d + d * 6 * d) + 2 * text * (4096 * d + d * d)  # time (2 rows), text
    head = 2 * n * d * 64
    s = Workload.of(model="wan2.2-s2v-14b").shape()
    walked = sum(g.flops for g in s2v_groups(WAN22_S2V_14B, s, True))
    assert walked == blocks + injections + local + glob + convs + pack + embedders + head


def _original_clips(seconds: float, frames: int) -> int:
    """The clip count of the original code: transformers' wav2vec2 frame count of the samples, the original
    ``linear_interpolation`` to 30 a second, ``get_audio_embed_bucket_fps`` at 16 fps (``audio_encoder.py``)."""
    from transformers import Wav2Vec2Config as HFConfig
    from transformers import Wav2Vec2Model

    module = __import__("sys").modules["wan_original_wan22.modules.s2v.audio_encoder"]
    with torch.device("meta"):
        model = Wav2Vec2Model(HFConfig(**WAV2VEC2_XLSR_53.to_kwargs()))
    t50 = int(model._get_feat_extract_output_lengths(torch.tensor(audio_samples(seconds))))
    t30 = module.linear_interpolation(torch.zeros(1, t50, 1), input_fps=50, output_fps=30).shape[1]
    _, count = module.AudioEncoder.get_audio_embed_bucket_fps(
        types.SimpleNamespace(video_rate=30), torch.zeros(25, t30, 1), fps=16, batch_frames=frames, m=0
    )
    return int(count)


@pytest.mark.parametrize(
    ("seconds", "frames", "count"),
    [(5.0, 80, 1), (5.016, 80, 2), (10.0, 80, 2), (20.0, 80, 4), (60.0, 80, 12), (10.0, 48, 4), (3.0, 8, 6)],
)
def test_clips_as_the_original_buckets_the_audio(seconds: float, frames: int, count: int) -> None:
    # 5.016 s (examples/talk.wav): 250 wav2vec2 frames, 150 at 30 a second, int(150 / 150) + 1 = 2 clips
    load_s2v()
    assert clips(WAV2VEC2_XLSR_53, audio_samples(seconds), frames) == _original_clips(seconds, frames) == count


def test_the_vae_stages_run_beside_the_table_the_transformer_keeps() -> None:
    # the original loop decodes a clip and encodes its motion frames after denoising it, WanModel_S2V's last rotary
    # table still on the GPU (offload_model moves parameters and buffers, not attributes); the first clip's is
    # 73,920 tokens x 5,120 x 8 bytes, a later clip's 79,200; the audio's 39 x 5 + 20 float32 tokens beside them
    from hybrid.sizing import size_on_gpu

    audio = (39 * 5 + 20) * 5120 * 4
    first, later = 73_920 * 5120 * 8 + audio, 79_200 * 5120 * 8 + audio
    two = size_on_gpu(Workload.of(model="wan2.2-s2v-14b", audio_seconds=10), "h200").stages
    held = {name: st.held_bytes for name, st in two.items()}
    assert held == {"text_encoder": 0, "audio_encoder": 0, "vae_encode": 0, "diffusion_core": 0, "vae_decode": first,
                    "motion_encode": later, "diffusion_core_motion": 0, "vae_decode_motion": later}  # fmt: skip
    decode = two["vae_decode"]
    assert decode.peak_memory_bytes == decode.weights_bytes + first + decode.activation_bytes
    one = size_on_gpu(Workload.of(model="wan2.2-s2v-14b", audio_seconds=5), "h200").stages
    assert one["motion_encode"].held_bytes == first and one["vae_decode_motion"].held_bytes == 0


def test_a_job_of_10_s_of_audio() -> None:
    w = Workload.of(model="wan2.2-s2v-14b", audio_seconds=10)
    assert w.runtime.name == "wan" and w.segments == 2 and w.describe().startswith("1280x704, 2 clips of 80 frames")
    # prompt and negative prompt; 40 steps x 2 passes per clip; one decode and one motion encode per clip
    assert dict(schedule(w)) == {
        "text_encoder": 2, "audio_encoder": 1, "vae_encode": 1, "diffusion_core": 80, "vae_decode": 1,
        "motion_encode": 2, "diffusion_core_motion": 80, "vae_decode_motion": 1,
    }  # fmt: skip


def test_the_traceable_stages_equal_their_traces() -> None:
    from hybrid.trace import trace as trace_stages

    w = Workload.of(model="wan2.2-s2v-14b", width=256, height=128, frames=8, steps=2, audio_seconds=1.0)
    assert w.segments == 2
    names = ["text_encoder", "audio_encoder", "vae_encode", "vae_decode", "motion_encode", "vae_decode_motion"]
    traced = trace_stages(w)  # every stage a module builds, and a warning naming the others
    assert list(traced.stages) == names
    assert traced.warnings[-1].startswith("diffusion_core, diffusion_core_motion not traced: no diffusers")
    spec, shape = w.spec, w.shape()
    for name in names:
        sd, st = spec.pipeline_def.stage(name), traced.stages[name]
        assert st.unsupported_ops == {}
        assert aggregate_costs(expand(sd.closed_rows(spec, shape) or [])) == aggregate_costs(st.rows), name
        assert (sd.closed_peak(spec, shape), sd.closed_peak(spec, shape, True)) == (
            st.peak_activation_bytes,
            st.peak_activation_bytes_materialized,
        ), name


def test_a_pose_video_is_encoded_clip_by_clip_as_the_trace_encodes_it() -> None:
    # WanS2V.load_pose_cond: each clip's frames + 1 pose frames are one encode, where without a pose video the -1
    # frames are encoded once: the stage's FLOPs grow by (clips - 1) of those encodes, its peak does not
    from hybrid.trace import trace_stage

    plain = Workload.of(model="wan2.2-s2v-14b", width=256, height=128, frames=8, audio_seconds=2.0)
    posed = replace(plain, pose_video=True)
    assert plain.segments == posed.segments == 4 and posed.shape().condition_encodes == 4
    assert plain.shape().condition_encodes == 1 and not plain.shape().pose_video
    sd, spec = posed.spec.pipeline_def.stage("vae_encode"), posed.spec
    traced = trace_stage("vae_encode", posed)
    assert aggregate_costs(expand(sd.closed_rows(spec, posed.shape()) or [])) == aggregate_costs(traced.rows)
    assert sd.closed_peak(spec, posed.shape()) == traced.peak_activation_bytes == sd.closed_peak(spec, plain.shape())
    condition = sum(g.flops for g in wan_vae_groups(spec.vae, 1, 3, 128, 256))  # 9 frames: 3 latent frames
    flops = {w.pose_video: sum(g.flops for g in sd.closed_rows(spec, w.shape()) or []) for w in (plain, posed)}
    assert flops[True] - flops[False] == 3 * condition
    assert posed.describe().startswith("256x128, 4 clips of 8 frames for 2 s of audio and a pose video")
    assert posed.to_dict()["pose_video"] is True and "pose_video" not in plain.to_dict()


def test_the_report_acceptance_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        ["report", "--model", "wan2.2-s2v-14b", "--audio-seconds", "10", "--gpu", "h200", "--format", "json"], capsys
    )
    assert code == 0, err
    doc = json.loads(out)
    from hybrid.schemas import problem

    assert problem(doc) is None
    assert doc["workload"]["audio_seconds"] == 10.0 and doc["workload"]["segments"] == 2
    assert doc["stages"]["diffusion_core"]["runs"] == doc["stages"]["diffusion_core_motion"]["runs"] == 80
    assert doc["gpu"]["runtime"]["name"] == "wan" and doc["total"]["fits"] is True


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--audio-seconds", "10"], "audio_seconds: wan2.1-t2v-14b takes no audio"),
        (["--pose-video"], "pose_video: wan2.1-t2v-14b takes no pose video"),
        (["--model", "wan2.2-s2v-14b", "--frames", "81"], "frames: 81 is invalid for wan2.2-s2v-14b"),
        (["--model", "wan2.2-s2v-14b", "--size", "832x480"], "height: 480 is not a positive multiple of 64"),
        (["--model", "wan2.2-s2v-14b", "--runtime", "diffusers"], "runtime: wan2.2-s2v-14b runs on wan, lightx2v only"),
        (
            ["--model", "wan2.2-s2v-14b", "--runtime", "lightx2v", "--gpu", "a100-80gb"],
            "runtime: the lightx2v runtime runs wan2.2-s2v-14b with fa3 only (its s2v code calls fa3 whatever its "
            "config names), which runs on Hopper GPUs only, not Ampere; valid there: --runtime wan",
        ),
        (
            ["--model", "wan2.2-s2v-14b", "--runtime", "lightx2v", "--gpu", "h100-sxm", "--attention", "sage2"],
            "attention: the lightx2v runtime runs wan2.2-s2v-14b with fa3 only",
        ),
        (
            ["--model", "wan2.2-s2v-14b", "--runtime", "lightx2v", "--gpu", "h100-sxm", "--gpus", "2", "--ring", "2"],
            "ring: WanModel_S2V splits its tokens by Ulysses only",
        ),
        (["--model", "wan2.2-s2v-14b", "--traced"], "diffusion_core of wan2.2-s2v-14b has no module"),
        (["--model", "wan2.2-s2v-14b", "--audio-seconds", "0.01"], "audio_seconds: 0.01 s is 160 samples"),
        (
            ["--model", "wan2.2-s2v-14b", "--size", "832x448", "--gpu", "h100-sxm", "--gpus", "5", "--ulysses", "5"],
            "ulysses: 5 does not divide the 30,576 tokens of the first clip",
        ),
    ],
)
def test_bad_s2v_input_is_one_line(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    gpu = ["--gpu", "h200"] if "--traced" in argv else []
    one_line_error(["report", *argv, *gpu], capsys, needle)


def test_the_html_report_says_the_audio_and_its_clips(tmp_path: Path) -> None:
    from hybrid.cli import main

    page = tmp_path / "s2v.html"
    argv = ["report", "--model", "wan2.2-s2v-14b", "--audio-seconds", "10", "--format", "html", "-o", str(page)]
    assert main(argv) == 0
    assert "<dt>audio</dt><dd>10 s: 2 clips of 80 frames</dd>" in page.read_text()


def test_the_audio_encoder_on_a_real_device_gives_the_rows_traced_on_meta() -> None:
    from hybrid.verify import TINY_SPECS, check_device, presets_of, reference_workloads

    w = replace(reference_workloads(presets_of("s2v")[0])[0], spec=TINY_SPECS["s2v"])
    assert check_device("audio_encoder", w, "cpu").passed


def test_a_sweep_over_audio_lengths(capsys: pytest.CaptureFixture[str]) -> None:
    from hybrid.sweep import Grid

    # the audio axis multiplies the speech-to-video model's rows only: 3 x 2 steps for S2V, 2 for T2V
    grid = Grid(models=("wan2.2-s2v-14b", "wan2.1-t2v-1.3b"), steps=(10, 20), audio_seconds=(5.0, 10.0, 20.0))
    assert grid.rows() == len(grid.workloads()) == 8
    code, out, err = run_cli(["sweep", "--model", "wan2.2-s2v-14b", "--audio-seconds", "5,10,20", "--format", "json"],
                             capsys)  # fmt: skip
    assert code == 0, err
    rows = json.loads(out)["rows"]
    # 1, 2 and 4 clips: the first clip's calls alone, then 80 more transformer calls a clip
    assert [r["audio_seconds"] for r in rows] == [5.0, 10.0, 20.0]
    assert [r["diffusion_core_motion_flops"] > 0 for r in rows] == [False, True, True]
    assert rows[0]["total_flops"] < rows[1]["total_flops"] < rows[2]["total_flops"]
    one_line_error(["sweep", "--model", "wan2.1-t2v-1.3b", "--audio-seconds", "5"], capsys,
                   "audio-seconds: none of the models takes audio")  # fmt: skip


def test_offload_moves_the_dit_in_and_out_once_per_clip() -> None:
    """The original WanS2V.generate moves its DiT onto the GPU before each clip's steps and off it after them
    (speech2video.py:613-647): with --offload each clip copies its bf16 weights twice, 16,295,755,609 parameters x
    2 bytes = 32,591,511,218 bytes a way. 20 s of audio make 4 clips: the first clip's stage moves them in and out
    once, the later clips' stage three times."""
    from hybrid.runtime import Runtime
    from hybrid.sizing import size_on_gpu

    w = Workload.of("wan2.2-s2v-14b", audio_seconds=20.0, runtime=Runtime("wan", offload=True))
    assert w.segments == 4 and w.spec.parameter_counts()["transformer"] == 16_295_755_609
    stages = size_on_gpu(w, "h200").stages
    assert stages["diffusion_core"].host_copy_bytes == 2 * 32_591_511_218
    assert stages["diffusion_core_motion"].host_copy_bytes == 3 * 2 * 32_591_511_218
    assert stages["vae_decode"].host_copy_bytes == 0  # the VAE stays on the GPU
    moves = Runtime("wan", offload=True).moves(
        w.spec, w.spec.pipeline_def.stages, segments={"diffusion_core_motion": 3}
    )
    assert [m for m in moves if m[1] == "transformer"] == [
        ("diffusion_core", "transformer", "in"), ("diffusion_core", "transformer", "out"),
        *[("diffusion_core_motion", "transformer", way) for _ in range(3) for way in ("in", "out")],
    ]  # fmt: skip
    resident = size_on_gpu(replace(w, runtime=Runtime("wan")), "h200").stages  # without --offload nothing moves
    assert resident["diffusion_core_motion"].host_copy_bytes == 0


def test_lightx2v_runs_s2v_as_its_wan_s2v_json() -> None:
    """LightX2V's wan2.2_s2v runner (configs/wan22/wan_s2v.json, wan_s2v_runner.py): the original's steps, guidance,
    clips and walk; both prompts encoded with CFG off too; wav2vec2 on the host; the VAE in float32 where its other
    runners load it in bfloat16; FlashAttention-3 on Hopper."""
    from hybrid.runtime import Runtime
    from hybrid.sizing import size_on_gpu, stage_costs

    light = Workload.of("wan2.2-s2v-14b", audio_seconds=10.0, runtime=Runtime("lightx2v"))
    wan = Workload.of("wan2.2-s2v-14b", audio_seconds=10.0)
    assert dict(schedule(light)) == dict(schedule(wan))  # CFG on: 2 x 40 steps per clip, as test_a_job_of_10_s_of_audio
    off = dict(schedule(replace(light, cfg=False)))
    assert (off["text_encoder"], off["diffusion_core"], off["diffusion_core_motion"]) == (2, 40, 40)
    assert light.spec.vae.compute_dtype == "float32"
    assert Workload.of("wan2.2-ti2v-5b", runtime=Runtime("lightx2v")).spec.vae.compute_dtype == "bfloat16"
    sized, base = size_on_gpu(light, "h200"), size_on_gpu(wan, "h200")
    assert (sized.attention_kernel, base.attention_kernel) == ("fa3", "fa2")
    rt = light.runtime
    assert [rt.weight_dtype(c, light.spec) for c in ("vae", "transformer", "audio_encoder")] == [
        "float32", "bfloat16", "float32"
    ]  # fmt: skip
    assert Runtime("lightx2v").weight_dtype("vae") == "bfloat16"  # its other runners' VAE
    # every weight resident in both: umT5 5,680,910,336 x 2 + DiT 16,295,755,609 x 2 + VAE 126,892,531 x 4 bytes
    assert sized.stages["vae_decode"].weights_bytes == base.stages["vae_decode"].weights_bytes == 44_460_902_014
    assert sized.stages["audio_encoder"].bound == "host"
    costs, base_costs = stage_costs(light), stage_costs(wan)  # the same walks: the same FLOPs and peaks
    for name in ("diffusion_core", "diffusion_core_motion", "vae_decode_motion"):
        assert costs[name].flops == base_costs[name].flops > 0
        assert costs[name].peak_activation_bytes == base_costs[name].peak_activation_bytes
    # FlashAttention-3 against FlashAttention-2: the attention-bound transformer faster, the VAE's seconds alike
    assert sized.stages["diffusion_core"].seconds < 0.8 * base.stages["diffusion_core"].seconds
    assert sized.stages["vae_decode"].seconds == pytest.approx(base.stages["vae_decode"].seconds, rel=0.01)
