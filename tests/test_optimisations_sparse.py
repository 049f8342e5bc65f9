"""Sparse attention, INT8 and NVFP4 linear layers as what-ifs, and ``plan --try-optimisations``: exact where
the effect is arithmetic (the kept share per stage, the bytes per weight), checked against the sizing where
it is not."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from hybrid.errors import InputError
from hybrid.hardware import get_gpu
from hybrid.optimisations import OPTIMISATIONS, data, parse, plan_of, warmup_of
from hybrid.optimise import (
    QuantisedLinear,
    SparseAttention,
    self_attention,
    sparse_overhead,
    svg2_overhead,
    weight_elements,
)
from hybrid.pipelines import DIFFUSION_CORE, PIPELINES, TEXT_ENCODER
from hybrid.plan import plan
from hybrid.presets import get_preset
from hybrid.runtime import Runtime
from hybrid.schemas import problem
from hybrid.sizing import size_on_gpu
from hybrid.workload import Workload
from tests.conftest import run_cli

SPARSE = [name for name, d in OPTIMISATIONS.items() if d.family == "sparse" and d.modelled]


def _kept(text: str, workload: Workload, gpu: str = "h100-sxm") -> dict[str, Fraction]:
    (t,) = [t for t in plan_of(parse(text), workload, get_gpu(gpu)).transforms if isinstance(t, SparseAttention)]
    return dict(t.kept)


def test_every_modelled_sparse_method_states_its_dense_warm_up_for_every_pipeline() -> None:
    assert sorted(SPARSE) == ["radial", "sta", "svg", "svg2", "vsa"]
    for name in SPARSE:
        assert OPTIMISATIONS[name].ops  # what the method does per call, as the time model counts it
        for pipeline in PIPELINES:
            w = warmup_of(name, pipeline)
            assert w["source"] in data()["sources"] and w["as"]
            assert ("dense_steps_share" in w) != ("dense_steps" in w)
            assert ("dense_layers_share" in w) != ("dense_layers" in w)


def test_svg_keeps_its_share_after_the_scripts_dense_steps_and_layers() -> None:
    w = Workload.of("wan2.1-t2v-14b")  # 50 steps, CFG: 100 calls; 40 blocks
    # wan_t2v_720p_svg.sh: floor(0.2 x 50) = 10 dense steps (20 calls), floor(0.03 x 40) = 1 dense block;
    # a sparse call keeps (1 + 39 x 1/4) / 40 = 43/160; the mean call (20 + 80 x 43/160) / 100 = 83/200
    assert _kept("svg:0.25", w) == {"diffusion_core": Fraction(83, 200)}
    # /0.3: floor(0.3 x 50) = 15 dense steps: (30 + 70 x 43/160) / 100 = 1561/3200
    assert _kept("svg:0.25/0.3", w) == {"diffusion_core": Fraction(30 * 160 + 70 * 43, 160 * 100)}
    # image-to-video: wan_i2v_720p_svg.sh's floor(0.35 x 40) = 14 dense steps of 40 (28 of 80 calls)
    i2v = Workload.of("wan2.1-i2v-14b-720p")
    assert _kept("svg:0.25", i2v) == {"diffusion_core": (28 + 52 * Fraction(43, 160)) / 80}
    # the 1.3B's 30 blocks: floor(0.03 x 30) = 0 dense blocks, so a sparse call keeps 1/4
    assert _kept("svg:0.25", Workload.of("wan2.1-t2v-1.3b")) == {"diffusion_core": (20 + 80 * Fraction(1, 4)) / 100}


def test_the_warm_up_falls_on_the_high_noise_expert_first() -> None:
    w = Workload.of("wan2.2-t2v-a14b")  # 40 steps: 26 on transformer, 14 on transformer_2 (published shift)
    kept = _kept("radial:0.5", w)  # wan_22_t2v_inference.sh: 11 dense steps, 1 dense block of 40
    per = (1 + 39 * Fraction(1, 2)) / 40
    assert kept == {"diffusion_core": (22 + 30 * per) / 52, "diffusion_core_2": per}
    # 30 dense steps: all 26 of the first expert's, 4 of the second's
    kept = _kept("radial:0.5/0.75", w)
    assert kept == {"diffusion_core": Fraction(1), "diffusion_core_2": (8 + 20 * per) / 28}


def test_a_step_cache_skips_sparse_calls_and_vsa_has_no_warm_up() -> None:
    w = Workload.of("wan2.1-t2v-14b")
    # skip:0.5 leaves 50 of 100 calls; the 20 dense ones are kept: (20 + 30 x 43/160) / 50
    assert _kept("skip:0.5,svg:0.25", w) == {"diffusion_core": (20 + 30 * Fraction(43, 160)) / 50}
    assert _kept("vsa:0.1", w) == {"diffusion_core": Fraction(1, 10)}
    # distill:3 runs 3 steps without CFG: VSA keeps 0.1 of every call
    assert _kept("distill:3,vsa:0.1", w) == {"diffusion_core": Fraction(1, 10)}


def test_only_self_attention_is_thinned_and_svg_pays_its_permutation() -> None:
    self_dims, cross_dims = (40, 75600, 75600, 128), (40, 75600, 512, 128)
    assert self_attention(self_dims) and not self_attention(cross_dims)
    assert self_attention((5, 9456, 9450, 128))  # the original code's Ulysses pads the queries, not k and v
    core = "diffusion_core"
    t = SparseAttention("svg:0.25", "", "svg", ((core, Fraction(1, 4)),), ((core, Fraction(1)),))
    f = 4 * 40 * 75600 * 75600 * 128
    out = t.terms(DIFFUSION_CORE, (("attention", 2 * f, 999, 2, self_dims), ("attention", f, 7, 1, cross_dims)))
    q = 40 * 75600 * 128  # elements of q (k, v and the output alike)
    # profiling, per call: 64 sampled rows per head, their scores once and three P @ V: 8 x 64 x n x d FLOPs a head;
    # k read once and v three times in bf16, five passes over the (40, 64, n) bf16 scores
    profile = ("attention", 2 * 8 * 40 * 64 * 75600 * 128, 2 * (2 * 4 * q + 5 * 2 * 40 * 64 * 75600), 2,
               (40, 64, 75600, 128))  # fmt: skip
    # the layout transformation, per call: 4 buffers zero-filled, q, k, v copied in, the output copied out: 12 passes
    assert out == (("attention", 2 * f // 4, 999, 2, self_dims), profile, ("attention", f, 7, 1, cross_dims),
                   ("elementwise", 0, 2 * 12 * 2 * q, 2, ()))  # fmt: skip
    assert t.terms(TEXT_ENCODER, (("attention", f, 7, 1, self_dims),)) == (("attention", f, 7, 1, self_dims),)
    assert sparse_overhead("radial", self_dims, 2, Fraction(1)) == []


def _sparse(text: str, workload: Workload) -> SparseAttention:
    (t,) = [t for t in plan_of(parse(text), workload, get_gpu("h100-sxm")).transforms if isinstance(t, SparseAttention)]
    return t


def test_svg2_runs_its_scripts_warm_up_and_initialises_each_blocks_centroids_once() -> None:
    w = Workload.of("wan2.1-t2v-14b")  # 50 steps, CFG: 100 calls; 40 blocks
    t = _sparse("svg2:0.25", w)
    # wan_t2v_720p_sap.sh: the SVG script's warm-up, floor(0.2 x 50) = 10 dense steps, 1 dense block of 40
    assert dict(t.kept) == {"diffusion_core": Fraction(83, 200)}
    # 80 sparse calls in each of the 39 sparse blocks: 80 x 39 of 100 x 40 self-attentions run sparse
    assert dict(t.sparse_calls) == {"diffusion_core": Fraction(80 * 39, 100 * 40)}
    # k-means: 50 iterations on a block's first sparse call, 2 on each of the 79 later ones: (50 + 79 x 2) / 80
    assert dict(t.iterations) == {"diffusion_core": Fraction(208, 80)}
    # image-to-video: wan_i2v_720p_sap.sh's floor(0.35 x 40) = 14 dense steps of 40: 52 sparse calls
    assert dict(_sparse("svg2:0.25", Workload.of("wan2.1-i2v-14b-720p")).iterations) == {
        "diffusion_core": Fraction(50 + 51 * 2, 52)
    }
    assert _sparse("svg:0.25", w).iterations == ()  # only svg2 clusters


def test_svg2_pays_its_k_means_map_and_permutation() -> None:
    bh, n, d, calls = 2, 1000, 64, 3
    q, tokens = bh * n * d, bh * n  # 128,000 elements of q (k, v and the output alike); 2,000 tokens
    runs, it = Fraction(3), Fraction(5, 2)
    out = svg2_overhead(bh, n, d, calls, runs, it)
    # per clustering (q into 300, k into 1000): x_sq once, 6 bytes an element and 2 a token: 3 x 772,000
    x_sq = ("elementwise", 0, 3 * (6 * q + 2 * tokens), calls, ())
    # per iteration: x @ centroids^T, 2 n c d FLOPs a head (x read once, an int64 label a token written),
    # then the sorted update (2 bytes an element, 64 a token): 3 runs x 2.5 iterations
    assign = [("matmul", int(runs * it * 2 * tokens * c * d), int(runs * it * (2 * q + 8 * tokens)), calls,
               (bh, n, c, d)) for c in (300, 1000)]  # fmt: skip
    update = ("elementwise", 0, int(runs * it * (2 * q + 64 * tokens)), calls, ())
    # the map: a (300, 1000, 64) GEMM a head (2 x 2 x 300,000 x 64 FLOPs), 96 bytes a centroid pair; the
    # permutation: q, k, v and the output read and written (16 bytes an element), three int64 argsorts
    pairs = bh * 300 * 1000
    centroid_scores = ("matmul", 3 * 2 * pairs * d, 3 * 2 * bh * 1300 * d, calls, (bh, 300, 1000, d))
    rest = ("elementwise", 0, 3 * (96 * pairs + 16 * q + 96 * tokens), calls, ())
    assert out == [x_sq, assign[0], update, x_sq, assign[1], update, centroid_scores, rest]
    assert assign[0][1] == 3 * 5 * 2_000 * 300 * 64 and assign[1][1] == 3 * 5 * 2_000 * 1000 * 64
    # routed through SparseAttention with its iterations; other methods ignore them
    assert sparse_overhead("svg2", (bh, n, n, d), calls, runs / calls, it) == out
    assert sparse_overhead("radial", (bh, n, n, d), calls, runs / calls, it) == []


def test_svg2_costs_more_than_svg_at_the_same_kept_share_and_less_than_dense() -> None:
    w = Workload.of("wan2.1-t2v-14b", width=1280, height=720)
    base = size_on_gpu(w, "h100-sxm").stages["diffusion_core"].seconds
    seconds = {}
    for text in ("svg:0.25", "svg2:0.25"):
        planned = plan_of(parse(text), w, get_gpu("h100-sxm"))
        seconds[text] = (
            size_on_gpu(planned.workload, "h100-sxm", optimisations=planned.transforms).stages["diffusion_core"].seconds
        )
    assert seconds["svg:0.25"] < seconds["svg2:0.25"] < 0.7 * base


def test_sparse_attention_shortens_the_denoising_loop_only() -> None:
    w = Workload.of("wan2.1-t2v-14b", width=1280, height=720)
    base = size_on_gpu(w, "h100-sxm")
    planned = plan_of(parse("svg:0.25"), w, get_gpu("h100-sxm"))
    sparse = size_on_gpu(planned.workload, "h100-sxm", optimisations=planned.transforms)
    assert sparse.stages["vae_decode"].seconds == base.stages["vae_decode"].seconds
    assert sparse.stages["diffusion_core"].seconds < base.stages["diffusion_core"].seconds
    full = plan_of(parse("svg:1/0"), w, get_gpu("h100-sxm"))  # everything kept: only the permutation is added
    dense = size_on_gpu(full.workload, "h100-sxm", optimisations=full.transforms)
    assert base.stages["diffusion_core"].seconds < dense.stages["diffusion_core"].seconds
    assert dense.stages["diffusion_core"].seconds < 1.02 * base.stages["diffusion_core"].seconds


@pytest.mark.parametrize(("text", "path", "element_bytes"), [("int8", "int8", 1), ("nvfp4", "fp4", Fraction(9, 16))])
def test_int8_and_nvfp4_store_and_run_the_blocks_linear_layers_quantised(
    text: str, path: str, element_bytes: Fraction
) -> None:
    w = Workload.of("wan2.1-t2v-1.3b")
    (t,) = plan_of(parse(text), w, get_gpu("rtx5090")).transforms
    assert isinstance(t, QuantisedLinear) and (t.path, t.element_bytes) == (path, element_bytes)
    cfg = get_preset("wan2.1-t2v-1.3b").transformer
    bf16 = cfg.num_parameters() * 2
    # 30 blocks x (8 x 1536^2 + 2 x 1536 x 8960) = 30 x (18,874,368 + 27,525,120) = 1,391,984,640
    assert weight_elements(cfg) == 1_391_984_640
    saved = 1_391_984_640 * (2 - element_bytes)  # nvfp4: 4 bits and an 8-bit scale per 16: 9/16 byte
    assert t.weights("transformer", bf16, cfg) == bf16 - int(saved)
    m, n, k = 32760, 1536, 1536
    out = t.terms(DIFFUSION_CORE, (("matmul", 2 * m * n * k, 1, 1, (1, m, n, k)),))
    operands = int((m * k + k * n) * element_bytes)
    assert out == (("matmul", 2 * m * n * k, operands + 2 * m * n + 2 * n, 1, (1, m, n, k)),
                   ("elementwise", 0, 4 * m * k + int(m * k * element_bytes) + 4 * m, 1, ()))  # fmt: skip
    assert t.matmul_path(DIFFUSION_CORE, "bf16") == path and t.matmul_path(TEXT_ENCODER, "bf16") == "bf16"


def test_quantised_paths_run_where_the_gpu_has_them() -> None:
    w = Workload.of("wan2.1-t2v-1.3b")
    with pytest.raises(InputError, match="nvfp4 needs an FP4 tensor path; h100-sxm has none"):
        plan_of(parse("nvfp4"), w, get_gpu("h100-sxm"))
    with pytest.raises(InputError, match="int8 needs an INT8 tensor path; v100-sxm2-32gb has none"):
        plan_of(parse("int8"), w, get_gpu("v100-sxm2-32gb"))
    g = get_gpu("rtx5090")  # RTX Blackwell: FP4 at 1676 TFLOP/s dense, 4 x its FP8 with FP32 accumulate (419)
    assert g.peak_flops("fp4") == 1676e12 == 4 * g.peak_flops("fp8") and g.peak_flops("int8") == 838e12
    base = size_on_gpu(w, "rtx5090")
    for text in ("int8", "nvfp4"):
        planned = plan_of(parse(text), w, g)
        sized = size_on_gpu(planned.workload, "rtx5090", optimisations=planned.transforms)
        assert sized.stages["diffusion_core"].seconds < base.stages["diffusion_core"].seconds
        assert sized.stages["vae_decode"].seconds == base.stages["vae_decode"].seconds


def test_plan_ranks_optimisation_sets_beside_the_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    w = Workload.of("wan2.1-i2v-14b-480p", runtime=Runtime("lightx2v"))
    p = plan(w, "h200", 2, try_optimisations=(parse("fp8"), parse("sage2,fp8"), parse("sage3"), parse("fp8")))
    assert [[o.text() for o in t] for t in p.tried] == [[], ["fp8"], ["sage2", "fp8"], ["sage3"]]
    assert p.refused == (("sage3", "optimise: sage3 runs on Blackwell GPUs only, not h200 (Hopper)"),)
    labels = {(c.label, c.deployment.describe()) for c in p.ranked}
    assert len(labels) == len(p.ranked) == 3 * 3  # 3 sets that run x 3 layouts (1 GPU, ulysses 2, ring 2)
    assert p.best is not None and p.best.label == "sage2,fp8"
    assert all(c.sizing is not None and (c.sizing.seconds_range is None) == c.optimised for c in p.ranked)
    with pytest.raises(InputError, match="give it or --optimise, not both"):
        plan(w, "h200", 2, optimise=parse("fp8"), try_optimisations=(parse("sage2"),))
    argv = ["plan", "--model", "wan2.1-i2v-14b-480p", "--runtime", "lightx2v", "--gpu", "h200", "--gpus", "2",
            "--try-optimisations", "fp8;sage2,fp8", "--try-optimisations", "sage3", "--format", "json"]  # fmt: skip
    code, out, _ = run_cli(argv, capsys)
    doc = json.loads(out)
    assert code == 0 and problem(doc) is None and doc["tried"] == [[], ["fp8"], ["sage2", "fp8"], ["sage3"]]
    assert [o["name"] for o in doc["tried_optimisations"]] == ["fp8", "sage2", "sage3"]
    assert doc["layouts"][0]["optimisations"] == ["sage2", "fp8"] and "optimisations" not in doc["layouts"][-1]
    code, out, err = run_cli([*argv[:-2], "--try-optimisations", "fp8;"], capsys)
    assert code == 2
    assert err.strip().endswith("try-optimisations: an empty set; give sets like 'fp8;sage2,fp8;distill:4,fp8'")


def test_lightvae_is_the_wan21_vae_at_a_quarter_width_walked_and_traced_alike() -> None:
    from hybrid.verify import check_stage

    w = Workload.of("wan2.1-i2v-14b-480p", width=256, height=128, frames=9)
    planned = plan_of(parse("lightvae"), w, get_gpu("h100-sxm"))
    light = planned.workload.spec.vae
    # LightX2V's pruning_rate 0.75 on dim 96: AutoencoderKLWan(base_dim=24); its helper counted LightX2V's own
    # module on meta: 8,035,003 parameters against the official VAE's 126,892,531
    assert light.base_dim == 24 and light.num_parameters() == 8_035_003
    assert w.spec.vae.num_parameters() == 126_892_531 and planned.workload.spec.name == w.spec.name
    for stage in ("vae_encode", "vae_decode"):  # the closed form equals a trace of the real module: FLOPs,
        check = check_stage(stage, planned.workload)  # bytes and both activation peaks
        assert check.passed, check.detail
    base = size_on_gpu(w, "h100-sxm")
    sized = size_on_gpu(planned.workload, "h100-sxm", optimisations=planned.transforms)
    assert sized.stages["vae_decode"].seconds < base.stages["vae_decode"].seconds / 2  # launch-bound this small
    assert sized.stages["diffusion_core"].seconds == base.stages["diffusion_core"].seconds
    with pytest.raises(InputError, match=r"lightvae prunes the Wan2\.1 VAE .* wan2\.2-ti2v-5b runs the Wan2\.2 VAE"):
        plan_of(parse("lightvae"), Workload.of("wan2.2-ti2v-5b"), get_gpu("h100-sxm"))
