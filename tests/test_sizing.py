"""wanmeter report --gpu: seconds, bound and peak memory per stage and in total."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hybrid.cli import main
from hybrid.memory import weights_bytes
from hybrid.presets import get_preset

SMALL = ["--size", "256x128", "--frames", "17", "--text-len", "16"]


@pytest.fixture
def calibration(tmp_path: Path) -> Path:
    # a fixture calibration (not a measurement): round efficiencies to check the arithmetic paths
    doc = {
        "schema": "wanmeter.efficiency/1", "device": "cuda", "device_name": "test fixture", "date": "2026-11-25",
        "versions": {"torch": "2.13.0"}, "dtype": "bfloat16",
        "efficiency": {"matmul": 0.7, "attention": 0.5, "convolution": 0.4, "memory": 0.8},
        "launch_overhead_s": 5e-6,
    }  # fmt: skip
    path = tmp_path / "eff.json"
    path.write_text(json.dumps(doc))
    return path


def test_report_gpu_json_keys(calibration: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["report", *SMALL, "--gpu", "h100-sxm", "--efficiency", str(calibration), "--format", "json"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    for s in doc["stages"].values():
        assert s["seconds"] > 0 and s["bound"] in ("compute", "memory") and s["peak_memory_bytes"] > 0
    assert doc["total"]["seconds"] == pytest.approx(sum(s["seconds"] for s in doc["stages"].values()))
    assert doc["total"]["peak_memory_bytes"] == max(s["peak_memory_bytes"] for s in doc["stages"].values())
    spec = get_preset("wan2.1-t2v-14b")
    all_weights = sum(weights_bytes(spec, c) for c in ("text_encoder", "transformer", "vae"))
    assert doc["total"]["peak_memory_bytes"] > all_weights  # all models resident, plus activations
    assert doc["gpu"]["name"] == "h100-sxm" and doc["gpu"]["calibration"].startswith("test fixture")
    assert any("not on a h100-sxm" in w for w in doc["warnings"])  # the fixture names no GPU
    assert doc["total"]["flops"] == sum(s["flops"] for s in doc["stages"].values())


def test_report_gpu_offload_and_fit_warning(calibration: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", *SMALL, "--gpu", "rtx4090", "--efficiency", str(calibration)]) == 0
    out = capsys.readouterr().out
    assert (
        "on NVIDIA GeForce RTX 4090 (--runtime diffusers; attention: sdpa-flash; timing calibration: test fixture"
        in out
    )
    assert "more than the 24 GiB of one rtx4090 without offload (try --offload)" in out
    assert main(["report", *SMALL, "--gpu", "rtx4090", "--efficiency", str(calibration), "--offload"]) == 0
    out = capsys.readouterr().out
    # the 14B DiT alone is 28.6 GB in bf16: it does not fit a 24 GiB card even offloaded
    assert "even with model offload" in out


def test_report_gpu_with_a_missing_efficiency_file_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--gpu", "h200", "--efficiency", str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err
    assert "efficiency: no timing calibration at" in err and len(err.strip().splitlines()) == 1
    assert main(["report", "--gpu", "v100"]) == 2
    assert "gpu: unknown GPU 'v100'" in capsys.readouterr().err


def test_report_gpu_h100_defaults_on_the_default_workload(capsys: pytest.CaptureFixture[str]) -> None:
    # the acceptance command: no calibration file for h100-sxm is committed, so the cited defaults apply
    assert main(["report", "--gpu", "h100-sxm", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    eff = doc["gpu"]["efficiency"]
    # kernel-aware (hybrid/data/kernel_rates.json): the GEMM ceiling from the 4096^3 bf16 matmul at 788.72
    # TFLOP/s, over 989.4 and its shape factor (512 tiles of 128x256 in 4 waves of 132 SMs: 512 / 528, times
    # 4096 / (4096 + 256)); diffusers' SDPA runs cuDNN attention on Hopper (torch 2.13), 595 TFLOP/s at
    # 16k keys and beyond (FlashAttention-3 paper), at the 75,600 keys of the default workload
    assert {c: (e["value"], e["kind"]) for c, e in eff.items()} == {
        "matmul": (pytest.approx(788.72 / 989.4 / (512 / 528 * 4096 / 4352), rel=1e-12), "measured"),
        "attention": (pytest.approx(595 / 989.4, rel=1e-12), "measured"),
        "convolution": (pytest.approx(344.1 / 494.7 / (1760 / 1848), rel=1e-12), "derived"),
        "memory": (0.84, "measured"),
    }  # fmt: skip
    # convolutions: the H200's TF32 curve (the same chip), its highest point 512 channels at 176x320, k = 13,824:
    # 344.1 TFLOP/s of 989.4 x 0.5 over its wave factor (880 x 2 tiles of 128x256 in 14 waves of 132 SMs)
    assert eff["matmul"]["by_shape"] and eff["attention"]["by_shape"] and eff["convolution"]["by_shape"]
    assert all(e["source_url"].startswith(("https://", "calibration/device/")) for e in eff.values())
    assert any(w.startswith("no timing calibration of h100-sxm") for w in doc["warnings"])
    dit = doc["stages"]["diffusion_core"]
    assert dit["bound"] == "compute" and dit["seconds"] > 100 * doc["stages"]["vae_decode"]["seconds"] > 0
    spec = get_preset("wan2.1-t2v-14b")
    all_weights = sum(weights_bytes(spec, c) for c in ("text_encoder", "transformer", "vae"))
    # all models resident + the DiT's traced activation peak with fused attention (8.0 GiB)
    assert dit["peak_memory_bytes"] == all_weights + 8_598_435_840 == dit["memory"]["weights_bytes"] + 8_598_435_840
    # materialised scores: float32 scores + softmax of 40 heads x 75600^2 tokens alone are 1.83 TB
    assert dit["memory"]["activation_peak_bytes_materialized"] > 2 * 4 * 40 * 75600**2
    assert any(w.startswith("diffusion_core fits only with a fused attention kernel") for w in doc["warnings"])
    assert doc["total"]["seconds"] == pytest.approx(sum(s["seconds"] for s in doc["stages"].values()))
    assert doc["total"]["peak_memory_bytes"] == max(s["peak_memory_bytes"] for s in doc["stages"].values())


def test_attention_override_scales_attention_time(capsys: pytest.CaptureFixture[str]) -> None:
    def dit_seconds(attention: float) -> float:
        args = ["report", *SMALL, "--gpu", "h100-sxm", "--efficiency-override", f"attention={attention}"]
        assert main([*args, "--format", "json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["gpu"]["efficiency"]["attention"]["kind"] == "override"
        return float(doc["stages"]["diffusion_core"]["seconds"])

    # compute-bound attention rows take A / efficiency: t(e) = A / e + rest, so halving the
    # efficiency adds A / 0.35 = twice what doubling it saves
    t_low, t_mid, t_high = dit_seconds(0.175), dit_seconds(0.35), dit_seconds(0.7)
    assert t_low - t_mid == pytest.approx(2 * (t_mid - t_high), rel=1e-9)
    assert t_mid - t_high > 0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("attn=0.5", "efficiency-override: unknown op class 'attn'; valid: matmul, attention, convolution, memory"),
        ("attention=1.5", "efficiency-override: attention=1.5 is out of range; valid: 0 < value <= 1"),
        ("attention", "efficiency-override: expected CLASS=VALUE (e.g. attention=0.75), got 'attention'"),
    ],
)
def test_bad_overrides(override: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--gpu", "h100-sxm", "--efficiency-override", override]) == 2
    assert capsys.readouterr().err.strip() == f"wanmeter: error: {message}"


def test_borrowed_efficiencies_are_flagged(capsys: pytest.CaptureFixture[str]) -> None:
    # the RTX 4090's GEMMs, attention and copies are measured on the card (kernel_rates.json); the H800 takes the
    # H100 SXM's GEMM ceiling and cuDNN attention curve (the same chip: derived) and another GPU's memory efficiency
    assert main(["report", *SMALL, "--gpu", "rtx4090", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    kinds = {c: e["kind"] for c, e in doc["gpu"]["efficiency"].items()}
    assert kinds == {"matmul": "measured", "attention": "measured", "convolution": "derived", "memory": "measured"}
    assert not any("no public measurement" in w for w in doc["warnings"])
    assert main(["report", *SMALL, "--gpu", "h800", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    kinds = {c: e["kind"] for c, e in doc["gpu"]["efficiency"].items()}
    assert kinds == {"matmul": "derived", "attention": "derived", "convolution": "derived", "memory": "borrowed"}
    assert doc["gpu"]["efficiency"]["matmul"]["evidence"].startswith("no GEMM measurement on h800: h100-sxm's")
    assert "no public measurement of memory efficiency on a h800 was found" in " ".join(doc["warnings"])


def test_gpu_sizing_in_markdown_with_its_assumptions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", *SMALL, "--gpu", "a100-80gb", "--offload", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "| stage | seconds | bound | peak memory | peak, scores materialised |" in out
    moves = "- placement: each of the text encoder, the DiT and the whole VAE moves onto the GPU for its stage"
    assert moves in out and "at 22.4 GB/s over the host link (PCIe Gen4" in out  # 32 GB/s x 0.7
    assert "dense bf16 312 TFLOP/s for bf16 stages and half that (TF32) for the fp32 VAE, 2039 GB/s" in out
    assert main(["report", *SMALL, "--gpu", "a100-80gb", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert any(a.startswith("activation peak: the largest sum of live storages") for a in doc["assumptions"])
    resident = "placement: the text encoder, the DiT and the whole VAE stay on the GPU for the whole job"
    assert any(a.startswith(resident) for a in doc["assumptions"])


def test_time_model_against_published_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hybrid.accuracy import ACCEPTANCE
    from hybrid.verify import VERIFICATIONS, verify_public_timings

    summary = verify_public_timings()
    # the Wan2.2 README: 14 one-GPU rows, 28 on 4 and 8 GPUs; 2 LightX2V H200 runs; 2 Morphic 8-H100 runs;
    # the Wan2.1 README: 7 rows x 1, 2, 4, 8 GPUs; 6 Sparse-VideoGen baselines; 5 single runs from 5 more sources;
    # PASA lab's Wan2.2 T2V-A14B at 10 and 20 steps on 1 and 8 RTX 5090s; 10 runs on the GPUs added since
    # (an H800, A800s, L20s, a V100); 7 figures of the denoising loop alone (FastWan, TurboDiffusion), compared with
    # the DiT stages' seconds; the energy-budget paper's 3 diffusers runs on an H100, the yotta benchmark's RTX 5090
    # run and H100 loop, DiffSynth-Studio's A100 loop; LightX2V's disaggregation guide's 3 single-H100 baselines;
    # a Wan2.2-S2V run on an L40S (Wan2.2 issue #115, set aside: its size is not stated); a Wan2.2-Animate segment's
    # steps on an A800 (issue #306, set aside: the original Animate code is not modelled); OpenMontage's 4 diffusers
    # runs of the 1.3B on an H200 (a text-to-video job and three video-to-video jobs); LightX2V's benchmark page's
    # LightX2V_2 rows (its runtime, SageAttention 2) at 480p and 720p on an H200; TensorRT-LLM's figure of diffusers'
    # bf16 VAE decode alone on a B200, compared with the vae_decode stage's seconds
    assert len(summary.checks) == 46 + 28 + 6 + 5 + 4 + 10 + 7 + 4 + 2 + 3 + 1 + 1 + 4 + 2 + 1
    assert all(c.passed for c in summary.checks)
    loop = by_name_of(summary)["FastWan blog, FA2 denoising, Wan2.1 T2V-14B 720P, one H200"]
    assert loop["scope"] == "denoising loop" and loop["predicted_s"] == pytest.approx(
        loop["stages_s"]["diffusion_core"], rel=1e-12
    )
    by_name = {c.name: c.detail for c in summary.checks}
    [decode] = [d for name, d in by_name.items() if name.startswith("TensorRT-LLM PR #17262")]
    assert decode["scope"] == "vae decode" and decode["predicted_s"] == decode["stages_s"]["vae_decode"]
    h100 = by_name["Wan2.2 README, T2V-A14B 480p, one H100/H800"]
    # 40 steps x 2 passes, split 26 / 14 between the experts at flow shift 12
    assert (h100["dit_calls"], h100["published_dit_calls"]) == (80, 80)
    assert h100["runtime"] == "--runtime wan --offload --convert-model-dtype --flash-attention 3"
    # each expert moves in and out once per job, the text encoder too: 2 x (2 x 28,576,983,168 +
    # 11,361,820,672) bytes at 64 GB/s x 0.7
    assert h100["host_copy_s"] == pytest.approx(2 * (2 * 28_576_983_168 + 11_361_820_672) / 44.8e9, rel=1e-12)
    # the original WanModel's own ops (float32 norms and residual stream, float64 rotary embedding) on one GPU
    assert h100["predicted_s"] == pytest.approx(341.41, rel=1e-3)  # published 326.9 s
    assert h100["predicted_peak_gib"] == pytest.approx(41.18, rel=1e-3)  # published 41.3
    assert h100["efficiency"]["attention"]["evidence"].startswith("fa3 on h100-sxm")  # the README's FA3 on Hopper
    lo, hi = h100["predicted_range_s"]
    assert lo < h100["predicted_s"] < hi and h100["inside_range"] == (lo <= 326.9 <= hi)
    # --t5-cpu: 2 x 4,844,723,109,888 FLOPs at the stated 1 TFLOP/s of the host
    ti2v = by_name["Wan2.2 README, TI2V-5B (T2V) 1280x704, one RTX 4090"]
    assert ti2v["stages_s"]["text_encoder"] == pytest.approx(2 * 4_844_723_109_888 / 1e12, rel=1e-12)
    ti2v_i2v = by_name["Wan2.2 README, TI2V-5B (I2V) 1280x704, one RTX 4090"]
    assert ti2v["stages_s"]["vae_encode"] == 0 < ti2v_i2v["stages_s"]["vae_encode"]  # --image encodes one frame
    # 8 GPUs, Ulysses 8 with both FSDP flags: one rank's peak is the VAE decode's, with 1/8 of each
    # float32 expert and of the text encoder plus their gathered root units and one block
    eight = by_name["Wan2.2 README, T2V-A14B 720p, 8 H100/H800"]
    assert eight["layout"] == "--gpus 8 --ulysses 8 --fsdp dit,text_encoder" and eight["comm_s"] > 0
    assert eight["predicted_peak_gib"] == pytest.approx(37.1, abs=0.05)  # published 37.1
    assert by_name["Morphic blog, I2V-A14B 720p, 8 H100, FlashAttention-3"]["memory_relative_error"] is None
    # 20 steps of the A14B on one RTX 5090 in 134 s: its exact FLOPs need more than that at the card's full peak
    assert (
        "below the job's exact FLOPs"
        in by_name["PASA lab, Wan2.2 T2V-A14B 480x832, 20 steps, one RTX 5090"]["set_aside"]
    )
    v = summary.verdict
    assert v["runs"] + v["set_aside"] == len(summary.checks) and v["bounds"] == ACCEPTANCE.to_dict()
    assert 0 < v["seconds_median"] <= v["seconds_mean"] <= v["seconds_max"] and v["memory_mean"] > 0
    assert summary.passed == all(v["within"].values())
    monkeypatch.setitem(VERIFICATIONS, "public_timings", lambda: summary)  # print it without sizing again
    code = main(["verify", "--only", "public_timings", "--out-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == (0 if summary.passed else 1)
    assert f"{'PASS' if summary.passed else 'FAIL'} public_timings: 124/124 passed, over {v['runs']} runs" in out
    assert f"seconds mean |error| {100 * v['seconds_mean']:.1f}% (" in out
    assert "ok   Wan2.2 README, T2V-A14B 480p, one H100/H800: 342 s (" in out
    # each kind's bias, before the runs: the consumer GPUs' multi-GPU runs (the RTX 4090s', PASA's RTX 5090s)
    [kind] = [line for line in out.splitlines() if line.startswith("  kind consumer GPUs, wan runtime, multi-GPU: ")]
    assert kind.startswith("  kind consumer GPUs, wan runtime, multi-GPU: 8 runs, signed mean ")


def by_name_of(summary: Any) -> dict[str, dict[str, Any]]:
    return {c.name: c.detail for c in summary.checks}


def _halved_fa3(doc: dict[str, Any]) -> dict[str, Any]:
    attention = [
        {**e, "points": [[s, t / 2] for s, t in e["points"]]} if e["kernel"] == "fa3" else e for e in doc["attention"]
    ]
    return {**doc, "attention": attention}


@pytest.mark.parametrize("change", ["h100 datasheet doubled", "fa3 halved"])
def test_published_runs_fail_when_the_model_is_made_wrong(change: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # bounds just around the model's own errors pass; the same bounds fail once the H100's datasheet is read
    # at twice its peak and bandwidth (the rates of its memory-bound ops and its launch-free GEMM ceiling
    # follow the peak) or FlashAttention-3's measured throughput is halved: the check can fail
    from dataclasses import replace

    from hybrid import kernels
    from hybrid.accuracy import Bounds
    from hybrid.hardware import gpus
    from hybrid.memo import clear_memos
    from hybrid.verify import verify_public_timings

    v = verify_public_timings().verdict
    tight = Bounds(
        seconds_mean=v["seconds_mean"] + 0.01, seconds_max=v["seconds_max"] + 0.01,
        multi_signed=abs(v["multi_signed"]) + 0.01, memory_mean=v["memory_mean"] + 0.01, coverage=v["coverage"] - 0.02,
    )  # fmt: skip
    assert verify_public_timings(bounds=tight).passed
    clear_memos()  # the rates and the calls' times are read again from the changed data
    if change == "h100 datasheet doubled":
        h100 = gpus()["h100-sxm"]
        doubled = replace(h100, bf16_tflops=2 * h100.bf16_tflops, memory_bandwidth_gbs=2 * h100.memory_bandwidth_gbs)
        monkeypatch.setitem(gpus(), "h100-sxm", doubled)
    else:
        monkeypatch.setitem(kernels.data(), "attention", _halved_fa3(kernels.data())["attention"])
    try:
        wrong = verify_public_timings(bounds=tight)
    finally:
        monkeypatch.undo()
        clear_memos()
    assert not wrong.passed and not all(wrong.verdict["within"].values())
    assert wrong.verdict["seconds_mean"] > v["seconds_mean"]


def test_a_wrong_call_count_fails_the_published_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hybrid.verify import PUBLIC_TIMINGS, verify_public_timings

    doc = json.loads(PUBLIC_TIMINGS.read_text())
    doc["entries"] = [e for e in doc["entries"] if e["gpu"] == "h100-sxm" and "T2V-A14B 480p" in e["name"]]
    entry = doc["entries"][0]
    entry["workload"] = {**entry["workload"], "width": 256, "height": 128, "frames": 5}  # small: a quick trace
    entry["dit_calls"] = 40  # as if CFG were off: the check must fail, whatever the seconds
    path = tmp_path / "public.json"
    path.write_text(json.dumps(doc))
    summary = verify_public_timings(path)
    assert not summary.passed and summary.checks[0].detail["dit_calls"] == 80
    path.write_text(json.dumps({**doc, "schema": "wanmeter.public-timings/1"}))
    with pytest.raises(ValueError, match=r"is not a wanmeter\.public-timings/2 document"):
        verify_public_timings(path)


def test_attention_flops_of_the_fastvideo_workload() -> None:
    from hybrid import estimate
    from hybrid.workload import Workload

    r = estimate(Workload.of(model="wan2.1-t2v-1.3b", width=1280, height=720, frames=77, steps=50, cfg=False))
    # 72,000 tokens (20 x 45 x 80), 12 heads x 128, 30 layers: 4 x 72000^2 x 128 x 12 x 30 per call
    assert r.stages["diffusion_core"].components["self_attention_core"] == 50 * 955_514_880_000_000


def test_csv_carries_stage_seconds_with_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", *SMALL, "--gpu", "b200", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[0] == "stage,component,runs,flops_per_run,flops,share,stage_seconds,stage_bound,stage_peak_memory_bytes"
    )
    dit = [line.split(",") for line in lines[1:] if line.startswith("diffusion_core,")]
    assert len({tuple(row[6:]) for row in dit}) == 1 and float(dit[0][6]) > 0  # one stage, one sizing


def test_closed_form_sizing_equals_the_traced_one(capsys: pytest.CaptureFixture[str]) -> None:
    # report --gpu sizes from the closed-form rows and peaks without tracing; --traced traces: the
    # same seconds (the same rows summed in another order) and the same peaks
    args = ["report", *SMALL, "--gpu", "h100-sxm", "--format", "json"]
    assert main(args) == 0
    closed_out = capsys.readouterr()
    assert "tracing" not in closed_out.err
    assert main([*args, "--traced"]) == 0
    traced_out = capsys.readouterr()
    assert "tracing the workload on meta" in traced_out.err
    closed, traced = json.loads(closed_out.out), json.loads(traced_out.out)
    for name, s in traced["stages"].items():
        assert closed["stages"][name]["seconds"] == pytest.approx(s["seconds"], rel=1e-12)
        assert closed["stages"][name]["memory"] == s["memory"]
    assert closed["total"]["peak_memory_bytes"] == traced["total"]["peak_memory_bytes"]
    assert any("closed form, equal to a meta trace" in a for a in closed["assumptions"])
    assert any("traced on meta (--traced)" in a for a in traced["assumptions"])


def test_verify_sizing_on_one_preset() -> None:
    from hybrid.verify import verify_sizing

    summary = verify_sizing(models=["wan2.1-t2v-1.3b"])
    # 2 runtimes x 2 GPUs, each the same seconds to <= 1e-9 and the same peaks
    assert summary.passed and len(summary.checks) == 4
    assert all(c.detail["peaks_equal"] and c.detail["relative_error"] <= 1e-9 for c in summary.checks)


def test_verify_sizing_on_the_pipelines_that_once_stopped_it() -> None:
    from hybrid.verify import verify_sizing

    # video-to-video (its trace memo once keyed a one-step job, which strength 0.8 cannot run) on diffusers only, and
    # Wan-Animate-2 (the check once asked the original runtime for it before that runtime ran it) on diffusers and the
    # original code, as their pipelines run: 2 GPUs each
    summary = verify_sizing(models=["wan2.1-v2v-1.3b", "wan-animate-2-14b-distilled"])
    assert summary.passed and len(summary.checks) == 6
    runs = sorted(tuple(c.name.split()[:2]) for c in summary.checks)
    assert runs == sorted(
        [("wan2.1-v2v-1.3b", "diffusers")] * 2
        + [("wan-animate-2-14b-distilled", r) for r in ("diffusers", "wan") for _ in range(2)]
    )


def test_sizing_walks_each_distinct_stage_cost_once() -> None:
    # the two A14B experts are alike in config and shape: one cost for both; TI2V's encode is not
    # run without --image, so it is not walked (3 costs each: text encoder, DiT, decode)
    from hybrid.sizing import NOT_RUN, cost_memo, size_on_gpu, stage_costs
    from hybrid.workload import Workload

    for model in ("wan2.2-t2v-a14b", "wan2.2-ti2v-5b"):
        cost_memo.cache_clear()
        size_on_gpu(Workload.of(model=model), "h100-sxm")
        assert cost_memo.cache_info().misses == 3, model
    costs = stage_costs(Workload.of(model="wan2.2-t2v-a14b"))
    assert costs["diffusion_core"] is costs["diffusion_core_2"]
    assert stage_costs(Workload.of(model="wan2.2-ti2v-5b"))["vae_encode"] is NOT_RUN
    with_image = stage_costs(Workload.of(model="wan2.2-ti2v-5b", image=True))
    assert with_image["vae_encode"].flops == 4_216_297_226_240  # the one image, as the report counts it


def test_an_optimisation_is_a_transform_between_walks_and_sizing() -> None:
    # hybrid.optimise: a what-if changes calls, terms or rates, and the sizing follows it exactly
    from dataclasses import dataclass, replace

    from hybrid.optimise import Transform
    from hybrid.pipelines import StageDef
    from hybrid.runtime import Runtime
    from hybrid.sizing import size_on_gpu
    from hybrid.timing import Term
    from hybrid.workload import Workload

    @dataclass(frozen=True)
    class HalfTheSteps(Transform):  # a step cache that skips every other DiT call
        def calls(self, stage: StageDef, calls: int) -> int:
            return calls // 2 if stage.component.startswith("transformer") else calls

    @dataclass(frozen=True)
    class NoAttentionFlops(Transform):  # an attention that costs only its bytes
        def terms(self, stage: StageDef, terms: tuple[Term, ...]) -> tuple[Term, ...]:
            return tuple((c, 0 if c == "attention" else f, m, n, d) for c, f, m, n, d in terms)

    w = Workload.of(model="wan2.1-t2v-1.3b", width=832, height=480, frames=17, steps=4)  # attention compute-bound
    base = size_on_gpu(w, "h100-sxm")
    half = size_on_gpu(w, "h100-sxm", optimisations=[HalfTheSteps("half the steps")])
    dit, half_dit = base.stages["diffusion_core"], half.stages["diffusion_core"]
    assert half_dit.seconds == pytest.approx(dit.seconds / 2, rel=1e-12)  # 4 of 8 calls, nothing copied
    assert half.stages["vae_decode"] == base.stages["vae_decode"]
    cheap = size_on_gpu(w, "h100-sxm", optimisations=[NoAttentionFlops("no attention FLOPs")])
    assert cheap.stages["diffusion_core"].seconds < dit.seconds
    assert cheap.stages["diffusion_core"].peak_memory_bytes == dit.peak_memory_bytes  # events, not memory
    # the user's override is applied last: it wins over the runtime's kernel (FlashAttention-3's on Hopper)
    wan = replace(w, runtime=Runtime("wan", flash_attention=3))
    kernel = size_on_gpu(wan, "h100-sxm").efficiency["attention"]
    assert kernel["kind"] == "measured" and kernel["evidence"].startswith("fa3 on h100-sxm")
    over = size_on_gpu(wan, "h100-sxm", overrides={"attention": 0.5}).efficiency["attention"]
    assert (over["value"], over["kind"]) == (0.5, "override")


def test_an_attention_override_wins_over_the_runtimes_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    # --runtime wan --flash-attention 3 on Hopper times attention at FlashAttention-3's cited figure; the
    # user's override is applied after it (it used to be replaced by the kernel's figure while "overridden"
    # still named it)
    args = ["report", "--model", "wan2.1-t2v-1.3b", "--gpu", "h100-sxm", "--runtime", "wan", "--flash-attention", "3"]
    args += ["--format", "json"]
    assert main(args) == 0
    kernel = json.loads(capsys.readouterr().out)["gpu"]["efficiency"]["attention"]
    assert kernel["kind"] == "measured" and kernel["evidence"].startswith("fa3 on h100-sxm") and kernel["value"] != 0.5
    assert main([*args, "--efficiency-override", "attention=0.5"]) == 0
    doc = json.loads(capsys.readouterr().out)["gpu"]
    assert (doc["efficiency"]["attention"]["value"], doc["efficiency"]["attention"]["kind"]) == (0.5, "override")


def test_the_h800_acceptance_command_names_its_kernel_and_evidence(capsys: pytest.CaptureFixture[str]) -> None:
    # issue 21: the original Wan2.2 code on an H800 with offload runs FlashAttention-2 (what its requirements
    # install), timed by the H100 SXM's measured curve (the H800's own bars are set aside: their part is in
    # doubt); --attention fa3 says FlashAttention-3 runs instead
    args = ["report", "--gpu", "h800", "--runtime", "wan", "--offload", "--model", "wan2.2-i2v-a14b"]
    assert main([*args, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    attention = doc["gpu"]["efficiency"]["attention"]
    assert doc["gpu"]["runtime"]["attention_kernel"] == "fa2" and attention["kind"] == "derived"
    assert attention["evidence"].startswith("no measurement of fa2 on h800: fa2 on h100-sxm (Hopper)")
    low, high = doc["total"]["seconds_range"]["low"], doc["total"]["seconds_range"]["high"]
    assert low < doc["total"]["seconds"] < high and "published runs" in doc["total"]["seconds_range"]["basis"]
    assert main([*args, "--attention", "fa3", "--format", "json"]) == 0
    fa3 = json.loads(capsys.readouterr().out)
    assert fa3["gpu"]["runtime"]["attention_kernel"] == "fa3"
    assert fa3["gpu"]["efficiency"]["attention"]["evidence"].startswith("no measurement of fa3 on h800: fa3 on h100")
    assert fa3["total"]["seconds"] < doc["total"]["seconds"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "attention: fa2;" in text and "seconds: " in text and "from its error on" in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--attention", "fa4"], "attention: unknown kernel 'fa4'; valid: sdpa-math, sdpa-flash"),
        (["--gpu", "a100-80gb", "--attention", "fa3"], "attention: fa3 runs on Hopper GPUs only, not Ampere"),
        (["--runtime", "wan", "--flash-attention", "3", "--attention", "fa3"], "give --attention or --flash-attention"),
    ],
)
def test_a_bad_attention_kernel_is_one_line(extra: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    gpu = [] if "--gpu" in extra else ["--gpu", "h100-sxm"]
    assert main(["report", *SMALL, *gpu, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
