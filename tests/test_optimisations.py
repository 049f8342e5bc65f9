"""``--optimise``: the names users type, their checks, and each modelled optimisation's effect on the sizing,
exact where it is arithmetic (calls skipped, launch cost removed, steps and CFG of a distilled model)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from hybrid.errors import InputError
from hybrid.hardware import get_gpu
from hybrid.optimisations import FAMILIES, OPTIMISATIONS, Optimisation, parse, plan_of
from hybrid.optimise import Compiled, SkipCalls
from hybrid.pipelines import DIFFUSION_CORE, TEXT_ENCODER
from hybrid.runtime import Runtime
from hybrid.schemas import problem
from hybrid.sizing import size_on_gpu
from hybrid.workload import Workload
from tests.conftest import run_cli

ISSUE_NAMES = ["teacache", "magcache", "easycache", "fbcache", "skip", "fa2", "fa3", "cudnn", "sage2", "sage3",
               "fp8-attention", "svg", "svg2", "radial", "sta", "vsa", "fp8", "int8", "nvfp4", "distill", "compile",
               "lightvae", "tae"]  # fmt: skip


def test_every_name_the_issue_writes_is_listed_once_in_a_known_family() -> None:
    assert sorted(OPTIMISATIONS) == sorted(ISSUE_NAMES)
    assert {d.family for d in OPTIMISATIONS.values()} <= set(FAMILIES)


def test_parse_reads_parameters_and_orders_by_family() -> None:
    opts = parse("compile,sage2,teacache:0.2,distill:4")
    assert opts == (Optimisation("distill", 4), Optimisation("teacache", 0.2), Optimisation("sage2"),
                    Optimisation("compile"))  # fmt: skip
    assert [o.text() for o in opts] == ["distill:4", "teacache:0.2", "sage2", "compile"]
    assert parse("skip:0") == (Optimisation("skip", 0.0),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("warp", "optimise: unknown 'warp'; valid: teacache:THRESHOLD"),
        ("teacache", "optimise: teacache needs its threshold: teacache:THRESHOLD"),
        ("sage2:1", "optimise: sage2 takes no parameter, got 'sage2:1'"),
        ("skip:1", "optimise: skip needs a share of calls skipped, 0 <= share < 1; got '1'"),
        ("skip:nan", "optimise: skip needs a share of calls skipped, 0 <= share < 1; got 'nan'"),
        ("distill:2.5", "optimise: distill needs whole steps, 1 to 1000; got '2.5'"),
        ("magcache:-1", "optimise: magcache needs a positive threshold; got '-1'"),
        ("sage2,fa3", "optimise: sage2 and fa3 are both attention; give one"),
        ("svg2", "optimise: svg2 needs its kept: svg2:KEPT"),
        ("svg", "optimise: svg needs its kept: svg:KEPT"),
        ("svg:0", "optimise: svg needs the share of attention kept, 0 < kept <= 1 (and optionally /WARMUP"),
        ("radial:1.5", "optimise: radial needs the share of attention kept, 0 < kept <= 1"),
        ("vsa:0.1/2", "optimise: vsa needs a warm-up share of dense steps, 0 <= warmup <= 1; got '2'"),
        ("sta:0.5/x", "optimise: sta needs a warm-up share of dense steps, 0 <= warmup <= 1; got 'x'"),
        ("svg:0.3,vsa:0.1", "optimise: svg and vsa are both sparse; give one"),
    ],
)
def test_bad_lists_are_one_line_naming_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InputError) as e:
        parse(text)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_a_listed_method_not_modelled_is_refused_never_priced_as_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from hybrid import optimisations

    unmodelled = replace(optimisations.OPTIMISATIONS["svg2"], modelled=False)
    monkeypatch.setattr(optimisations, "OPTIMISATIONS", {**optimisations.OPTIMISATIONS, "svg2": unmodelled})
    with pytest.raises(InputError, match=r"^optimise: svg2 \(Sparse VideoGen 2: .*\) is listed but not modelled yet"):
        parse("svg2:0.25")


def test_kernels_off_their_architecture_and_two_kernels_are_refused() -> None:
    w = Workload.of("wan2.1-t2v-14b")
    with pytest.raises(InputError, match="sage3 runs on Blackwell GPUs only, not h100-sxm"):
        plan_of(parse("sage3"), w, get_gpu("h100-sxm"))
    with pytest.raises(InputError, match="fa3 runs on Hopper GPUs only, not a100-80gb"):
        plan_of(parse("fa3"), w, get_gpu("a100-80gb"))
    with pytest.raises(InputError, match="name two kernels"):
        plan_of(parse("sage2"), replace(w, runtime=Runtime(attention="cudnn")), get_gpu("h100-sxm"))
    with pytest.raises(InputError, match="both name the attention kernel"):
        plan_of(parse("sage2"), replace(w, runtime=Runtime("wan", flash_attention=3)), get_gpu("h100-sxm"))
    plan = plan_of(parse("sage2"), w, get_gpu("h100-sxm"))
    assert plan.workload.runtime.attention == "sage2" and plan.asked == w


def test_a_threshold_needs_its_published_share() -> None:
    with pytest.raises(InputError, match=r"teacache:0\.123 has no published share of skipped calls .* give skip:SHARE"):
        plan_of(parse("teacache:0.123"), Workload.of("wan2.1-t2v-14b"), get_gpu("h100-sxm"))


def test_distillation_changes_steps_and_drops_cfg_where_the_runtime_lets_it() -> None:
    w = Workload.of("wan2.2-i2v-a14b")
    plan = plan_of(parse("distill:4"), w, get_gpu("h200"))
    assert (plan.workload.steps, plan.workload.cfg) == (4, False) and (w.steps, w.cfg) == (40, True)
    wan = plan_of(parse("distill:4"), replace(w, runtime=Runtime("wan")), get_gpu("h200"))
    assert (wan.workload.steps, wan.workload.cfg) == (4, True)  # generate.py runs both passes whatever the guidance
    assert "runs both CFG passes whatever the guidance" in wan.notes[0]


def test_skip_calls_leaves_out_floor_share_of_each_transformer_stage() -> None:
    skip = SkipCalls("skip:0.45", "", 0.45)
    assert skip.calls(DIFFUSION_CORE, 100) == 55  # 100 - floor(45.0)
    assert skip.calls(DIFFUSION_CORE, 81) == 45  # 81 - floor(36.45) = 81 - 36
    assert skip.calls(TEXT_ENCODER, 2) == 2
    w = Workload.of("wan2.1-t2v-1.3b")
    base = size_on_gpu(w, "h100-sxm")
    skipped = size_on_gpu(w, "h100-sxm", optimisations=(skip,))
    # seconds are linear in calls: the DiT's 100 calls become 55
    assert skipped.stages["diffusion_core"].seconds == pytest.approx(base.stages["diffusion_core"].seconds * 55 / 100)
    assert skipped.stages["vae_decode"].seconds == base.stages["vae_decode"].seconds


class _LaunchOnly(Compiled):
    def fuses(self, stage: object) -> bool:
        return False


def test_compile_takes_the_launch_cost_out_of_the_transformer_only() -> None:
    from hybrid.kernels import launch_seconds

    w = Workload.of("wan2.1-t2v-1.3b")
    base = size_on_gpu(w, "h100-sxm")
    graphs = size_on_gpu(w, "h100-sxm", optimisations=(_LaunchOnly("compile"),))  # CUDA graphs, nothing fused
    launch = launch_seconds("h100-sxm")[0]
    saved = base.stages["diffusion_core"].seconds - graphs.stages["diffusion_core"].seconds
    kernels = saved / launch / 100  # kernels per DiT call: a whole number
    assert saved > 0 and math.isclose(kernels, round(kernels), rel_tol=1e-9) and round(kernels) > 1000
    compiled = size_on_gpu(w, "h100-sxm", optimisations=(Compiled("compile"),))
    assert compiled.stages["diffusion_core"].seconds < graphs.stages["diffusion_core"].seconds  # and fused
    assert compiled.stages["vae_decode"].seconds == base.stages["vae_decode"].seconds
    assert compiled.peak_memory_bytes == base.peak_memory_bytes  # the eager peaks stand


def test_report_puts_the_baseline_beside_the_optimised_job(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["report", "--model", "wan2.1-t2v-1.3b", "--gpu", "h100-sxm", "--optimise",
                            "skip:0.5,distill:8", "--format", "json"], capsys)  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert problem(doc) is None
    assert [o["name"] for o in doc["optimisations"]] == ["distill", "skip"]
    assert doc["workload"]["steps"] == 8 and doc["workload"]["cfg"] is False  # the optimised job's own figures
    assert doc["baseline"]["workload"]["steps"] == 50 and doc["baseline"]["workload"]["cfg"] is True
    # 8 steps without CFG, half of them skipped: 4 DiT calls against the baseline's 100
    dit, base_dit = doc["stages"]["diffusion_core"]["seconds"], doc["baseline"]["stages"]["diffusion_core"]["seconds"]
    assert dit == pytest.approx(base_dit * 4 / 100)
    assert doc["baseline"]["speed_up"] == pytest.approx(doc["baseline"]["total"]["seconds"] / doc["total"]["seconds"])
    assert "seconds_range" not in doc["total"]  # the ranges rest on baselines
    code, table, _ = run_cli(
        ["report", "--model", "wan2.1-t2v-1.3b", "--gpu", "h100-sxm", "--optimise", "skip:0.5"], capsys
    )
    assert code == 0 and "--optimise skip:0.5:" in table and "baseline seconds  optimised seconds  speed-up" in table


def test_the_listing_names_every_optimisation_and_its_order(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["optimisations", "--format", "json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert [o["name"] for o in doc["optimisations"]] == list(OPTIMISATIONS)
    assert doc["order"] == list(FAMILIES)
    code, table, _ = run_cli(["optimisations"], capsys)
    assert code == 0 and all(name in table for name in ISSUE_NAMES) and "not yet" not in table  # all modelled


def test_fp8_linear_layers_store_the_blocks_weights_in_a_byte_and_run_w8a8() -> None:
    from hybrid.optimise import QuantisedLinear, weight_elements
    from hybrid.presets import get_preset

    cfg = get_preset("wan2.1-t2v-14b").transformer
    # 40 blocks x (8 x 5120^2 + 2 x 5120 x 13824) = 40 x (209,715,200 + 141,557,760) = 14,050,918,400
    assert weight_elements(cfg) == 14_050_918_400
    fp8 = QuantisedLinear("fp8")
    bf16 = cfg.num_parameters() * 2
    assert fp8.weights("transformer", bf16, cfg) == bf16 - 14_050_918_400  # a byte saved per block weight
    assert fp8.weights("text_encoder", 123, None) == 123
    # one linear's term, 3 calls of [9450 x 5120] @ [5120 x 5120]: inputs and weight in one byte, bf16 out, the
    # input quantised first (read twice in bf16, written in FP8 with a float32 scale per row)
    m, n, k = 9450, 5120, 5120
    term = ("matmul", 3 * 2 * m * n * k, 999, 3, (1, m, n, k))
    out = fp8.terms(DIFFUSION_CORE, (term,))
    assert out == (("matmul", 3 * 2 * m * n * k, 3 * (m * k + k * n + 2 * m * n + 2 * n), 3, (1, m, n, k)),
                   ("elementwise", 0, 3 * (5 * m * k + 4 * m), 3, ()))  # fmt: skip
    assert fp8.terms(TEXT_ENCODER, (term,)) == (term,)
    assert fp8.matmul_path(DIFFUSION_CORE, "bf16") == "fp8" and fp8.matmul_path(TEXT_ENCODER, "bf16") == "bf16"


def test_fp8_runs_on_the_fp8_tensor_path_where_there_is_one() -> None:
    w = Workload.of("wan2.1-i2v-14b-480p", runtime=Runtime("lightx2v"))
    with pytest.raises(InputError, match="fp8 needs an FP8 tensor path; a100-80gb has none"):
        plan_of(parse("fp8"), w, get_gpu("a100-80gb"))
    with pytest.raises(InputError, match="keeps the DiT's in float32"):
        plan_of(parse("fp8"), Workload.of("wan2.1-t2v-14b", runtime=Runtime("wan")), get_gpu("h100-sxm"))
    plan = plan_of(parse("fp8"), w, get_gpu("h200"))
    base, fp8 = size_on_gpu(w, "h200"), size_on_gpu(plan.workload, "h200", optimisations=plan.transforms)
    # the same FLOPs, the matmuls (a quarter of the DiT's FLOPs at 480p, attention the rest) at twice the peak: the
    # DiT 16% faster, the VAE untouched, the weights 1 byte lighter per block weight
    assert 0.8 * base.stages["diffusion_core"].seconds < fp8.stages["diffusion_core"].seconds
    assert fp8.stages["diffusion_core"].seconds < 0.9 * base.stages["diffusion_core"].seconds
    assert fp8.stages["vae_decode"].seconds == base.stages["vae_decode"].seconds
    cfg = w.spec.transformer
    from hybrid.optimise import weight_elements

    assert base.peak_memory_bytes - fp8.peak_memory_bytes == weight_elements(cfg)


@pytest.fixture(scope="module")
def speedups() -> object:
    from hybrid.verify import verify_optimisations

    return verify_optimisations()


def test_verify_optimisations_compares_predicted_with_published_speed_ups(speedups: object) -> None:
    from hybrid.verify import Summary

    assert isinstance(speedups, Summary)
    by_name = {c.name: c.detail for c in speedups.checks}
    # FastWan's 14B: 50 steps with CFG (100 DiT calls) against the 3-step distilled model (3 calls), the same
    # per-call DiT seconds (FlashAttention-2 both): the predicted speed-up is exactly 100/3
    d = by_name["FastWan blog Table 1, Wan2.1 14B 720P, 1 H200, FA2 (50 steps) -> FA2 + DMD (3 steps)"]
    assert d["predicted_speed_up"] == pytest.approx(100 / 3, rel=1e-12)
    assert d["published_speed_up"] == pytest.approx(1746.5 / 52.0) and d["scope"] == "denoising loop"
    assert d["relative_error"] == pytest.approx((100 / 3) / (1746.5 / 52.0) - 1)
    v = speedups.verdict
    assert v["runs"] == len(speedups.checks) >= 20 and v["sources"] >= 5
    assert v["bounds"] == {"mean": 0.15, "max": 0.35}
    assert v["max"] == max(abs(c.detail["relative_error"]) for c in speedups.checks)


def test_verify_optimisations_fails_beyond_its_bounds(tmp_path: Path) -> None:
    # every published optimised run made twice as slow: each published speed-up halves, each error about +100%
    from hybrid.speedups import SPEEDUPS
    from hybrid.verify import verify_optimisations

    doc = json.loads(SPEEDUPS.read_text())
    for e in doc["entries"]:
        e["published_optimised_seconds"] *= 2
    path = tmp_path / "speedups.json"
    path.write_text(json.dumps(doc))
    summary = verify_optimisations(path)
    assert not summary.passed and summary.verdict["within"] == {"mean": False, "max": False}
    assert summary.verdict["mean"] > 0.8


def test_the_speed_up_evidence_names_its_sources_and_parses() -> None:
    from hybrid.accuracy import SCOPES
    from hybrid.optimisations import data
    from hybrid.speedups import read_speedups

    doc = read_speedups()
    for e in doc["entries"]:
        assert e["source"] in doc["sources"] and e["quote"] and e["scope"] in SCOPES
        for key in ("baseline_optimise", "optimised_optimise"):
            parse(e[key]) if e[key] else None  # every list is one users could type
        assert e["published_baseline_seconds"] > e["published_optimised_seconds"] > 0
    assert all(u["why"] and u["source"] in doc["sources"] for u in doc["unpriced"])
    # a parameter is never also its test: the skip shares come from the caches' code, not from these tables
    for p in data()["skip_shares"]:
        assert p["source"] in data()["sources"] and "derived here by replaying the code" in p["how"]


def test_plan_runs_the_optimised_job_on_every_layout(capsys: pytest.CaptureFixture[str]) -> None:
    from hybrid.deployment import Deployment
    from hybrid.plan import plan
    from hybrid.ranges import OPTIMISED_NO_RANGE

    w = Workload.of("wan2.1-t2v-1.3b")
    opts = parse("skip:0.5")
    p = plan(w, "h100-sxm", 2, optimise=opts)
    assert p.optimisations == opts and len(p.ranked) == 3
    for c in p.ranked:
        assert c.sizing is not None and c.sizing.seconds_range is None and c.range_evidence == OPTIMISED_NO_RANGE
    two = next(c for c in p.ranked if c.deployment == Deployment(gpus=2, ulysses=2))
    direct = size_on_gpu(
        w, "h100-sxm", deployment=Deployment(gpus=2, ulysses=2), optimisations=(SkipCalls("", "", 0.5),)
    )
    assert two.sizing is not None and two.sizing.seconds == direct.seconds
    code, out, _ = run_cli(["plan", "--model", "wan2.1-t2v-1.3b", "--gpu", "h100-sxm", "--gpus", "2", "--optimise",
                            "skip:0.5", "--format", "json"], capsys)  # fmt: skip
    doc = json.loads(out)
    assert code == 0 and problem(doc) is None and [o["name"] for o in doc["optimisations"]] == ["skip"]


def test_sweep_rows_are_the_optimised_jobs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["sweep", "--model", "wan2.1-t2v-1.3b", "--gpu", "h100-sxm", "--steps", "20,50",
                            "--optimise", "skip:0.5", "--format", "json"], capsys)  # fmt: skip
    doc = json.loads(out)
    assert code == 0 and problem(doc) is None and [o["name"] for o in doc["optimisations"]] == ["skip"]
    for row in doc["rows"]:  # each row is report --gpu --optimise's figure for its workload
        w = Workload.of("wan2.1-t2v-1.3b", steps=row["steps"])
        sized = size_on_gpu(w, "h100-sxm", optimisations=(SkipCalls("", "", 0.5),))
        assert row["total_seconds"] == pytest.approx(sized.seconds, rel=1e-12)
        assert row["range_evidence"].startswith("no range: an optimised job") and row["total_seconds_low"] is None
    code, _, err = run_cli(["sweep", "--model", "wan2.1-t2v-1.3b", "--optimise", "skip:0.5"], capsys)
    assert code == 2 and "give --gpu NAME" in err


def test_where_a_kernel_runs_is_one_fact_for_attention_and_optimise(capsys: pytest.CaptureFixture[str]) -> None:
    from hybrid.runtime import KERNEL_ARCHITECTURES

    for name, d in OPTIMISATIONS.items():
        if d.family == "attention":
            assert d.architectures == KERNEL_ARCHITECTURES.get(name, ())
    code, _, err = run_cli(
        ["report", "--model", "wan2.1-t2v-1.3b", "--gpu", "h100-sxm", "--attention", "sage3"], capsys
    )
    assert code == 2 and "sage3 runs on Blackwell GPUs only, not Hopper" in err


def test_the_transforms_give_the_same_seconds_on_traced_rows() -> None:
    # FP8 rewrites each linear's term from its kernel dims, which the tracer records from the real module's shapes:
    # closed form and trace agree exactly with the optimisations applied too
    w = Workload.of("wan2.1-t2v-1.3b", width=320, height=192, frames=9, runtime=Runtime("lightx2v"))
    plan = plan_of(parse("fp8,skip:0.3,compile"), w, get_gpu("h100-sxm"))
    closed = size_on_gpu(plan.workload, "h100-sxm", optimisations=plan.transforms)
    traced = size_on_gpu(plan.workload, "h100-sxm", optimisations=plan.transforms, use_trace=True)
    for name, st in closed.stages.items():
        assert traced.stages[name].seconds == pytest.approx(st.seconds, rel=1e-9)
    assert traced.peak_memory_bytes == closed.peak_memory_bytes


def test_compiled_dit_terms_keep_every_flop_term_and_fuse_the_memory_bound_ones() -> None:
    from hybrid.sizing import closed_call_cost, fused_call_terms

    for model, runtime in (("wan2.1-t2v-1.3b", "diffusers"), ("wan2.1-t2v-14b", "wan")):
        w = Workload.of(model, runtime={"name": runtime})
        shape = w.shape()
        eager = closed_call_cost(DIFFUSION_CORE, w.spec, shape)
        fused = fused_call_terms(DIFFUSION_CORE, w.spec, shape)
        assert eager is not None and fused is not None
        flop_terms = [t for t in eager.terms if t[1] or t[4]]
        assert [t for t in fused if t[1] or t[4]] == flop_terms  # the matmuls and attentions as they were
        memory = [t for t in eager.terms if not (t[1] or t[4])]
        (kernels,) = [t for t in fused if not (t[1] or t[4])]
        assert kernels[0] == "fused"
        assert (
            kernels[2] < sum(t[2] for t in memory) / 3
        )  # 1.3B: 4.17e11 -> 1.15e11 bytes; 14B (wan): 7.09e12 -> 1.75e12
        # at most one run after each FLOP op and at each block's start and end: 1.3B 217 kernels for 367 FLOP ops
        # (1,526 memory-bound ones eager), 14B 528 for 487 (3,030)
        layers = int(w.spec.transformer.num_layers)
        assert kernels[3] <= sum(t[3] for t in flop_terms) + layers + 2 < sum(t[3] for t in memory) / 2
    assert fused_call_terms(TEXT_ENCODER, w.spec, shape) is None  # only the transformer is compiled
