"""Pipelines as data: image-to-video, first-last-frame and VACE, every stage exact."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from hybrid.cli import main
from hybrid.pipelines import PIPELINES, STAGE_NAMES
from hybrid.presets import PRESETS, get_preset
from hybrid.report import estimate
from hybrid.rows import SDPA_OP
from hybrid.runtime import Runtime
from hybrid.sweep import Grid, sweep, sweep_frame
from hybrid.workload import Workload
from tests.conftest import traced_preset

NEW_PRESETS = (
    "wan2.1-i2v-14b-480p",
    "wan2.1-i2v-14b-720p",
    "wan2.1-flf2v-14b-720p",
    "wan2.1-vace-1.3b",
    "wan2.1-vace-14b",
)


def test_every_pipeline_stage_order_and_one_name_order() -> None:
    assert PIPELINES["i2v"].stage_names == (
        "text_encoder",
        "image_encoder",
        "vae_encode",
        "diffusion_core",
        "vae_decode",
    )
    assert PIPELINES["vace"].stage_names == ("text_encoder", "vae_encode", "diffusion_core", "vae_decode")
    assert PIPELINES["animate"].stage_names == (
        "text_encoder",
        "image_encoder",
        "reference_encode",
        "vae_encode",
        "diffusion_core",
        "vae_decode",
    )
    last = ("vae_encode_last", "reference_pass_last", "diffusion_core_last", "diffusion_core_uncond_last",
            "vae_decode_last")  # fmt: skip
    assert (
        PIPELINES["animate2"].stage_names[: -len(last)]  # a shorter last segment's after them (the original, LightX2V)
        == PIPELINES["animate2-distilled"].stage_names[: -len(last)]
        == (
            "text_encoder",
            "image_encoder",
            "reference_encode",
            "vae_encode",
            "reference_pass",
            "diffusion_core",
            "diffusion_core_uncond",
            "vae_decode",
        )
    )
    assert PIPELINES["animate2"].stage_names[-len(last) :] == PIPELINES["animate2-distilled"].stage_names[-len(last) :]
    assert PIPELINES["animate2-distilled"].stage_names[-len(last) :] == last
    assert PIPELINES["s2v"].stage_names == (
        "text_encoder",
        "audio_encoder",
        "vae_encode",
        "diffusion_core",
        "vae_decode",
        "motion_encode",
        "diffusion_core_motion",
        "vae_decode_motion",
    )
    merged = (
        "text_encoder",
        "audio_encoder",
        "image_encoder",
        "reference_encode",
        "vae_encode",
        "reference_pass",
        "diffusion_core",
        "diffusion_core_uncond",
        "diffusion_core_2",
        "vae_decode",
        "motion_encode",
        "diffusion_core_motion",
        "vae_decode_motion",
        *last,
    )
    assert merged == STAGE_NAMES  # the one order every pipeline keeps
    assert {get_preset(m).pipeline for m in PRESETS} == set(PIPELINES)


@pytest.mark.parametrize("model", NEW_PRESETS)
def test_report_json_has_the_pipelines_stages_with_runs(model: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--model", model, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    spec = get_preset(model)
    assert list(doc["stages"]) == list(spec.pipeline_def.stage_names)
    assert doc["total"]["flops"] == sum(s["flops"] for s in doc["stages"].values())
    steps = spec.default_steps
    runs = {"text_encoder": 2, "image_encoder": 1, "vae_encode": 1, "diffusion_core": 2 * steps, "vae_decode": 1}
    assert {s: d["runs"] for s, d in doc["stages"].items()} == {s: runs[s] for s in doc["stages"]}
    assert all(d["flops"] == d["runs"] * d["flops_per_run"] > 0 for d in doc["stages"].values())
    assert doc["workload"]["steps"] == steps


def test_i2v_720p_acceptance_and_default_steps_stated(capsys: pytest.CaptureFixture[str]) -> None:
    r = estimate(Workload.of(model="wan2.1-i2v-14b-720p"))
    assert r.workload.steps == 40  # the original Wan2.1 generate.py's image-to-video steps
    assert any(a.startswith("steps: 40, wan2.1-i2v-14b-720p's recommended default") for a in r.assumptions)
    assert not any(a.startswith("steps:") for a in estimate(Workload.of()).assumptions)  # T2V: diffusers' 50
    assert "WanImageToVideoPipeline" in " ".join(r.assumptions)
    per_call = {s: c.flops_per_call for s, c in r.stages.items()}
    assert per_call == {
        "text_encoder": 4_844_723_109_888,
        "image_encoder": 334_587_658_240,
        "vae_encode": 381_674_137_190_400,
        "diffusion_core": 6_540_497_070_981_120,
        "vae_decode": 639_218_375_884_800,
    }


def test_image_encoder_pinned() -> None:
    # CLIP ViT-H/14, one 224x224 image: T = 16*16 + 1 = 257 tokens, D = 1280, F = 5120, 32 layers, 16 x 80:
    # patch conv 2*1280*3*14*14*256 = 385_351_680; per layer q,k,v,out 4 * 2*257*1280^2 = 3_368_550_400,
    # attention 4*16*257^2*80 = 338_170_880, MLP 2 * 2*257*1280*5120 = 6_737_100_800
    # 385_351_680 + 32 * (3_368_550_400 + 338_170_880 + 6_737_100_800) = 334_587_658_240
    w = Workload.of(model="wan2.1-i2v-14b-480p")
    assert traced_preset("image_encoder", w).flops == 334_587_658_240
    # FLF2V encodes the first and the last frame: a batch of two
    flf2v = estimate(Workload.of(model="wan2.1-flf2v-14b-720p")).stages["image_encoder"]
    assert flf2v.flops_per_call == 2 * 334_587_658_240


def test_i2v_dit_image_rows_pinned() -> None:
    w = Workload.of(model="wan2.1-i2v-14b-720p")
    rows = {(r.module, r.op): r for r in traced_preset("diffusion_core", w).rows}
    # image K/V project the 257 CLIP tokens: 2*257*5120*5120
    assert rows[("blocks.7.attn2.add_k_proj", "aten.addmm")].flops == 13_474_201_600
    # attn2 runs two attentions: 75_600 queries over 257 image keys (4*40*75600*257*128 = 397_910_016_000)
    # and over 512 text keys (4*40*75600*512*128 = 792_723_456_000)
    sdpa = sorted(
        r.flops for r in traced_preset("diffusion_core", w).rows if (r.module, r.op) == ("blocks.7.attn2", SDPA_OP)
    )
    assert sdpa == [397_910_016_000, 792_723_456_000]
    # image embedder on the 257 tokens: 2*257*1280*1280 + 2*257*1280*5120
    embed = sum(r.flops for r in rows.values() if r.module.startswith("condition_embedder.image_embedder"))
    assert embed == 842_137_600 + 3_368_550_400
    # FLF2V: 514 image tokens (pos_embed_seq_len), so twice the image attention
    flf2v = traced_preset("diffusion_core", Workload.of(model="wan2.1-flf2v-14b-720p")).rows
    assert sorted(r.flops for r in flf2v if (r.module, r.op) == ("blocks.7.attn2", SDPA_OP)) == [
        792_723_456_000,
        795_820_032_000,
    ]


def test_i2v_batch_of_two_runs_context_projections_as_mm() -> None:
    # the processor slices the (image + text) context; for batch 2 the slices are not contiguous and
    # torch's linear runs mm + add instead of addmm: the analytic rows follow (same FLOPs)
    w = Workload.of(model="wan2.1-i2v-14b-480p", width=64, height=48, frames=5, batch=2)
    ops = {(r.module, r.op) for r in traced_preset("diffusion_core", w).rows if r.flops}
    assert ("blocks.0.attn2.to_k", "aten.mm") in ops and ("blocks.0.attn2.add_v_proj", "aten.mm") in ops
    assert ("blocks.0.attn2.to_q", "aten.addmm") in ops


def test_vae_encode_rows_pinned() -> None:
    # 1280x720x81: 21 encoder chunks (1 frame, then 20 of 4): conv_in 3 -> 96, 3x3x3, over 81 frames of
    # 720x1280 positions: 2*96*3*27*921_600*81 = 1_160_950_579_200
    w = Workload.of(model="wan2.1-i2v-14b-720p")
    rows: dict[str, int] = {}
    for r in traced_preset("vae_encode", w).rows:
        rows[r.module] = rows.get(r.module, 0) + r.flops
    assert rows["encoder.conv_in"] == 1_160_950_579_200
    # down_blocks.5 is the first downsample3d (192 channels at 180x320): its time conv runs from the
    # second chunk on, 4 -> 2 frames: 2*192*192*3 * (2*180*320) * 20 chunks
    assert rows["encoder.down_blocks.5.time_conv"] == 509_607_936_000
    assert "encoder.down_blocks.2.time_conv" not in rows  # level 0 downsamples in space only


def test_vace_reference_images_add_encodes_and_latent_frames() -> None:
    base = Workload.of(model="wan2.1-vace-14b")
    refs = Workload.of(model="wan2.1-vace-14b", ref_images=2)
    assert (base.dit_tokens, refs.dit_tokens) == (21 * 45 * 80, 23 * 45 * 80)
    a, b = estimate(base), estimate(refs)
    assert a.stages["vae_decode"].flops == b.stages["vae_decode"].flops  # references are cut before decoding
    one_frame = estimate(Workload.of(model="wan2.1-vace-14b", frames=1)).stages["vae_encode"].flops_per_call
    # a reference image is a one-frame encode; the 1-frame video itself is encoded twice
    assert b.stages["vae_encode"].flops_per_call - a.stages["vae_encode"].flops_per_call == one_frame
    assert b.stages["diffusion_core"].flops_per_call > a.stages["diffusion_core"].flops_per_call
    assert '"ref_images": 2' in json.dumps(b.to_dict())
    assert "ref_images" not in estimate(Workload.of()).to_dict()["workload"]


def test_vace_blocks_component() -> None:
    r = estimate(Workload.of(model="wan2.1-vace-1.3b"))
    comps = r.stages["diffusion_core"].components_per_call
    # 15 VACE blocks on the control tokens beside 30 main blocks: about half the main blocks' FLOPs
    main = sum(v for k, v in comps.items() if k not in ("vace_blocks", "embedders", "output_head"))
    assert 0.45 < comps["vace_blocks"] / main < 0.55


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "wan2.1-i2v-14b-480p", "--text-len", "77"], "text_len: 77 is invalid for wan2.1-i2v-14b-480p"),
        (["--model", "wan2.1-t2v-14b", "--ref-images", "1"], "ref_images: wan2.1-t2v-14b takes no reference images"),
        (["--model", "wan2.1-vace-14b", "--batch", "2"], "batch: 2 is invalid for wan2.1-vace-14b; valid: 1 to 1"),
        (["--model", "wan2.1-vace-14b", "--ref-images", "-1"], "ref_images: -1 is invalid; must be >= 0"),
        (["--model", "wan2.2-t2v-a14b", "--flow-shift", "0"], "argument --flow-shift: expected a positive number"),
        (["--model", "wan2.2-t2v-a14b", "--flow-shift", "nan"], "argument --flow-shift: expected a positive number"),
        (["--model", "wan2.1-t2v-14b", "--flow-shift", "5"], "flow_shift: wan2.1-t2v-14b has one transformer"),
        (
            ["--model", "wan2.2-ti2v-5b", "--size", "1296x704"],
            "width: 1296 is not a positive multiple of 32; use 1280 or 1312",
        ),
        (["--model", "wan2.1-i2v-14b-480p", "--image"], "image: wan2.1-i2v-14b-480p takes no --image"),
        (["--model", "wan2.2-ti2v-5b", "--frames", "122"], "frames: 122 is not of the form 4k+1 >= 1; use 121 or 125"),
        (["--guidance-scale", "x"], "argument --guidance-scale: expected a number like 5.0, got 'x'"),
        (["--guidance-scale-2", "3"], "guidance_scale_2: wan2.1-t2v-14b has one transformer"),
        (["--guidance-scale", "5", "--no-cfg"], "guidance_scale: 5 turns CFG on, --no-cfg off"),
    ],
)
def test_pipeline_constraints_are_one_line_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"wanmeter: error: {message}") and err.count("\n") == 1


def test_models_lists_each_pipeline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    i2v = doc["wan2.1-i2v-14b-720p"]
    assert i2v["pipeline"] == "WanImageToVideoPipeline" and i2v["default_steps"] == 40
    assert i2v["stages"] == ["text_encoder", "image_encoder", "vae_encode", "diffusion_core", "vae_decode"]
    # CLIP ViT-H/14 vision tower: 630_766_080 parameters; the I2V transformer 16_394_878_784
    assert i2v["parameters"]["image_encoder"] == 630_766_080
    assert i2v["parameters"]["transformer"] == 16_394_878_784


def test_mixed_sweep_has_every_stage_column() -> None:
    grid = Grid(models=("wan2.1-t2v-1.3b", "wan2.1-i2v-14b-480p"), sizes=((256, 128),), frames=(17,))
    frame = sweep_frame(sweep(grid))
    stages = ("text_encoder", "image_encoder", "vae_encode", "diffusion_core", "vae_decode")
    assert [c for c in frame.columns if c.endswith("_flops")] == [f"{s}_flops" for s in stages] + ["total_flops"]
    t2v = frame[frame.model == "wan2.1-t2v-1.3b"].iloc[0]
    assert t2v.image_encoder_flops == 0 and t2v.vae_encode_flops == 0
    assert list(frame.steps) == [50, 40]  # each model's recommended steps


def test_gpu_sizing_keeps_the_vae_resident_once() -> None:
    from hybrid.memory import weights_bytes
    from hybrid.sizing import size_on_gpu

    w = Workload.of(model="wan2.1-i2v-14b-480p", width=128, height=64, frames=5)
    spec = get_preset(w.model)
    sized = size_on_gpu(w, "h100-sxm")
    all_weights = sum(weights_bytes(spec, c) for c in ("text_encoder", "image_encoder", "transformer", "vae"))
    assert all(s.weights_bytes == all_weights for s in sized.stages.values())
    offloaded = size_on_gpu(replace(w, runtime=Runtime(offload=True)), "h100-sxm")
    assert offloaded.stages["vae_encode"].weights_bytes == weights_bytes(spec, "vae") == 126_892_531 * 4
    assert offloaded.stages["image_encoder"].weights_bytes == 630_766_080 * 4  # float32, as diffusers' example
    assert list(sized.stages) == list(spec.pipeline_def.stage_names) and sized.seconds > 0


# --- Wan2.2 A14B: two experts split by the scheduler's timesteps ----------------------------------


@pytest.mark.parametrize(
    ("steps", "shift"), [(40, 12.0), (40, 5.0), (50, 3.0), (4, 12.0), (1, 5.0), (27, 8.0), (100, 0.5), (1000, 16.0)]
)
def test_flow_timesteps_equal_the_diffusers_scheduler(steps: int, shift: float) -> None:
    from diffusers import UniPCMultistepScheduler

    from hybrid.sampler import flow_timesteps

    s = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift)
    s.set_timesteps(steps)
    assert flow_timesteps(steps, shift) == s.timesteps.tolist()


def test_a14b_expert_split_at_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    from hybrid.sampler import high_noise_steps

    # 40 steps, shift 12: the first 26 timesteps are >= 875 (999, 997, ..., 875 < t(26) ...), 14 below
    assert high_noise_steps(40, 12.0, 0.875) == 26
    assert high_noise_steps(40, 5.0, 0.9) == 15  # I2V-A14B: boundary 900, shift 5
    assert main(["report", "--model", "wan2.2-t2v-a14b", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    runs = {s: d["runs"] for s, d in doc["stages"].items()}
    assert runs == {"text_encoder": 2, "diffusion_core": 52, "diffusion_core_2": 28, "vae_decode": 1}
    assert runs["diffusion_core"] + runs["diffusion_core_2"] == 40 * 2
    assert doc["workload"]["flow_shift"] == 12.0 and doc["workload"]["steps"] == 40
    assert doc["stages"]["diffusion_core"]["flops_per_run"] == doc["stages"]["diffusion_core_2"]["flops_per_run"]
    assert any(a.startswith("experts: transformer (high noise) runs the 26 of 40 steps") for a in doc["assumptions"])


def test_flow_shift_and_cfg_move_the_split() -> None:
    r = estimate(Workload.of(model="wan2.2-t2v-a14b", flow_shift=5.0, cfg=False))
    assert (r.stages["diffusion_core"].calls, r.stages["diffusion_core_2"].calls) == (17, 23)
    r = estimate(Workload.of(model="wan2.2-i2v-a14b"))
    assert list(r.stages) == ["text_encoder", "vae_encode", "diffusion_core", "diffusion_core_2", "vae_decode"]
    assert (r.stages["diffusion_core"].calls, r.stages["diffusion_core_2"].calls) == (30, 50)


def test_both_experts_resident_or_one_at_a_time() -> None:
    from hybrid.memory import weights_bytes
    from hybrid.sizing import size_on_gpu

    w = Workload.of(model="wan2.2-t2v-a14b", width=128, height=64, frames=5)
    spec = get_preset(w.model)
    # each expert 14_288_491_584 parameters x 2 bytes (bf16)
    assert weights_bytes(spec, "transformer") == weights_bytes(spec, "transformer_2") == 28_576_983_168
    resident = size_on_gpu(w, "h100-sxm")
    assert resident.stages["diffusion_core"].weights_bytes == 11_361_820_672 + 2 * 28_576_983_168 + 507_570_124
    offloaded = size_on_gpu(replace(w, runtime=Runtime(offload=True)), "h100-sxm")
    assert offloaded.stages["diffusion_core_2"].weights_bytes == 28_576_983_168
    # enable_model_cpu_offload: each expert moves in for its steps and out after, over PCIe Gen5 at
    # 64 GB/s x 0.7 achieved = 44.8 GB/s: 2 x 28,576,983,168 bytes = 1.2758 s per expert per job
    low = offloaded.stages["diffusion_core_2"]
    assert low.host_copy_bytes == 2 * 28_576_983_168
    assert low.host_copy_seconds == pytest.approx(2 * 28_576_983_168 / 44.8e9, rel=1e-12)
    assert offloaded.stages["text_encoder"].host_copy_bytes == 2 * 11_361_820_672
    assert resident.stages["diffusion_core_2"].host_copy_bytes == 0  # all resident: nothing moves
    # the original repository swaps the experts on one GPU with or without --offload (init_on_cpu);
    # without it the text encoder stays; --convert-model-dtype keeps the experts in bf16
    wan = size_on_gpu(replace(w, runtime=Runtime("wan", convert_model_dtype=True)), "h100-sxm")
    assert wan.stages["diffusion_core"].weights_bytes == 11_361_820_672 + 28_576_983_168 + 507_570_124
    assert wan.stages["diffusion_core"].host_copy_bytes == wan.stages["diffusion_core_2"].host_copy_bytes
    assert wan.stages["diffusion_core"].host_copy_bytes == 2 * 28_576_983_168
    assert wan.stages["text_encoder"].host_copy_bytes == 0 and wan.attention_kernel == "fa2"


# --- Wan2.2 TI2V-5B: the /16 VAE with residual blocks, a timestep per token ------------------------


def test_ti2v_acceptance(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--model", "wan2.2-ti2v-5b", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["workload"]["width"], doc["workload"]["height"], doc["workload"]["frames"]) == (1280, 704, 121)
    assert doc["workload"]["image"] is False and doc["stages"]["vae_encode"]["runs"] == 0
    assert doc["stages"]["vae_decode"]["runs"] == 1
    # 1280x704x121 -> 31 latent frames of 44x80 (/16) -> 31 * 22 * 40 = 27_280 tokens (patch 1x2x2)
    assert Workload.of(model="wan2.2-ti2v-5b").dit_tokens == 27_280
    assert doc["stages"]["vae_decode"]["flops_per_run"] == 2_011_137_824_030_720
    image = estimate(Workload.of(model="wan2.2-ti2v-5b", image=True))
    assert image.stages["vae_encode"].calls == 1 and image.stages["vae_encode"].flops == 4_216_297_226_240


def test_ti2v_timestep_per_token() -> None:
    rows = traced_preset("diffusion_core", Workload.of(model="wan2.2-ti2v-5b"))
    flops = {r.module: r.flops for r in rows.rows if r.module.startswith("condition_embedder.time") and r.flops}
    # expand_timesteps: the time embedder and time_proj run over 27_280 token rows, D = 3072, freq 256:
    # 2*27280*256*3072, 2*27280*3072*3072, 2*27280*3072*(6*3072)
    assert flops == {
        "condition_embedder.time_embedder.linear_1": 42_907_729_920,
        "condition_embedder.time_embedder.linear_2": 514_892_759_040,
        "condition_embedder.time_proj": 3_089_356_554_240,
    }


def test_wan22_vae_parameters() -> None:
    vae = get_preset("wan2.2-ti2v-5b").vae
    # encoder about 150 M, decoder about 555 M (the Wan2.2 README's figures), each equal to the built module
    assert (vae.encoder_num_parameters(), vae.decoder_num_parameters()) == (149_637_088, 555_051_580)
    assert get_preset("wan2.2-ti2v-5b").transformer.num_parameters() == 4_999_787_712


def test_cfg_follows_guidance_scale_as_diffusers_decides_it(capsys: pytest.CaptureFixture[str]) -> None:
    from types import SimpleNamespace

    from diffusers import WanImageToVideoPipeline, WanPipeline

    # the installed diffusers: CFG for both experts iff guidance_scale > 1; guidance_scale_2 only scales
    # the low-noise expert's guidance (the issue expected it could switch CFG off; the code says no)
    for cls in (WanPipeline, WanImageToVideoPipeline):
        decide = cls.do_classifier_free_guidance.fget
        assert decide(SimpleNamespace(_guidance_scale=1.0, _guidance_scale_2=4.0)) is False
        assert decide(SimpleNamespace(_guidance_scale=4.0, _guidance_scale_2=1.0)) is True
    assert (
        main(
            [
                "report",
                "--model",
                "wan2.2-t2v-a14b",
                "--guidance-scale",
                "1",
                "--guidance-scale-2",
                "3",
                "--format",
                "json",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["workload"]["cfg"] is False and doc["stages"]["diffusion_core"]["runs"] == 26
    assert (
        main(
            [
                "report",
                "--model",
                "wan2.2-t2v-a14b",
                "--guidance-scale",
                "4",
                "--guidance-scale-2",
                "1",
                "--format",
                "json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["stages"]["diffusion_core_2"]["runs"] == 28
