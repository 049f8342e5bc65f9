"""wanmeter report --gpu: seconds, bound and peak memory per stage and in total."""

from __future__ import annotations

import json
from pathlib import Path

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
    assert "on NVIDIA GeForce RTX 4090 (--runtime diffusers; timing calibration: test fixture" in out
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
    assert {c: (e["value"], e["kind"]) for c, e in eff.items()} == {
        "matmul": (0.803, "measured"), "attention": (0.35, "measured"),
        "convolution": (0.803, "derived"), "memory": (0.84, "measured"),
    }  # fmt: skip
    assert all(e["source_url"].startswith("https://") for e in eff.values())
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
    assert main(["report", *SMALL, "--gpu", "rtx4090", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    kinds = {c: e["kind"] for c, e in doc["gpu"]["efficiency"].items()}
    assert kinds == {"matmul": "borrowed", "attention": "borrowed", "convolution": "derived", "memory": "borrowed"}
    assert "no public measurement of matmul, attention, memory efficiency on a rtx4090 was found" in " ".join(
        doc["warnings"]
    )


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
    from hybrid.verify import VERIFICATIONS, error_summary, verify_public_timings

    summary = verify_public_timings()
    # the Wan2.2 README: 14 one-GPU rows, 28 on 4 and 8 GPUs; 2 LightX2V H200 runs; 2 Morphic 8-H100 runs
    assert summary.passed and len(summary.checks) == 46
    by_name = {c.name: c.detail for c in summary.checks}
    h100 = by_name["Wan2.2 README, T2V-A14B 480p, one H100/H800"]
    # 40 steps x 2 passes, split 26 / 14 between the experts at flow shift 12
    assert (h100["dit_calls"], h100["published_dit_calls"]) == (80, 80)
    assert h100["runtime"] == "--runtime wan --offload --convert-model-dtype"
    # each expert moves in and out once per job, the text encoder too: 2 x (2 x 28,576,983,168 +
    # 11,361,820,672) bytes at 64 GB/s x 0.7
    assert h100["host_copy_s"] == pytest.approx(2 * (2 * 28_576_983_168 + 11_361_820_672) / 44.8e9, rel=1e-12)
    # the original WanModel's own ops (float32 norms and residual stream, float64 rotary embedding) on one GPU
    assert h100["predicted_s"] == pytest.approx(280.47, rel=1e-3)  # published 326.9 s
    assert h100["predicted_peak_gib"] == pytest.approx(41.18, rel=1e-3)  # published 41.3
    assert h100["efficiency"]["attention"]["kind"] == "kernel"  # FlashAttention-3 on Hopper
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
    s_mean, s_max = error_summary(summary.checks, "relative_error")
    m_mean, m_max = error_summary(summary.checks, "memory_relative_error")
    assert 0 < s_mean <= s_max and 0 < m_mean <= m_max
    monkeypatch.setitem(VERIFICATIONS, "public_timings", lambda: summary)  # print it without tracing again
    assert main(["verify", "--only", "public_timings", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"PASS public_timings: 46/46 passed, seconds mean |error| {100 * s_mean:.1f}%" in out
    assert "ok   Wan2.2 README, T2V-A14B 480p, one H100/H800: 280 s vs 326.9 s (-14.2%), peak 41.2 vs 41.3 GiB" in out


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
            return tuple((c, 0 if c == "attention" else f, m, n) for c, f, m, n in terms)

    w = Workload.of(model="wan2.1-t2v-1.3b", width=256, height=128, frames=5, steps=4)
    base = size_on_gpu(w, "h100-sxm")
    half = size_on_gpu(w, "h100-sxm", optimisations=[HalfTheSteps("half the steps")])
    dit, half_dit = base.stages["diffusion_core"], half.stages["diffusion_core"]
    assert half_dit.seconds == pytest.approx(dit.seconds / 2, rel=1e-12)  # 4 of 8 calls, nothing copied
    assert half.stages["vae_decode"] == base.stages["vae_decode"]
    cheap = size_on_gpu(w, "h100-sxm", optimisations=[NoAttentionFlops("no attention FLOPs")])
    assert cheap.stages["diffusion_core"].seconds < dit.seconds
    assert cheap.stages["diffusion_core"].peak_memory_bytes == dit.peak_memory_bytes  # events, not memory
    # the user's override is applied last: it wins over the runtime's kernel (FlashAttention-3's on Hopper)
    wan = replace(w, runtime=Runtime("wan"))
    assert size_on_gpu(wan, "h100-sxm").efficiency["attention"]["kind"] == "kernel"
    over = size_on_gpu(wan, "h100-sxm", overrides={"attention": 0.5}).efficiency["attention"]
    assert (over["value"], over["kind"]) == (0.5, "override")


def test_an_attention_override_wins_over_the_runtimes_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    # --runtime wan on Hopper times attention at FlashAttention-3's cited figure; the user's override is
    # applied after it (it used to be replaced by the kernel's figure while "overridden" still named it)
    args = ["report", "--model", "wan2.1-t2v-1.3b", "--gpu", "h100-sxm", "--runtime", "wan", "--format", "json"]
    assert main(args) == 0
    kernel = json.loads(capsys.readouterr().out)["gpu"]["efficiency"]["attention"]
    assert kernel["kind"] == "kernel" and kernel["value"] != 0.5
    assert main([*args, "--efficiency-override", "attention=0.5"]) == 0
    doc = json.loads(capsys.readouterr().out)["gpu"]
    assert (doc["efficiency"]["attention"]["value"], doc["efficiency"]["attention"]["kind"]) == (0.5, "override")
