"""The analytic model: exact equality with the tracer, pinned figures, schedule, invariants."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hybrid
from hybrid.analytic import analytic_rows, stage_groups
from hybrid.presets import PRESETS, ModelSpec, get_preset
from hybrid.render import report as render
from hybrid.report import diffusion_core_cost, estimate
from hybrid.rows import OpGroup, aggregate, aggregate_costs, expand
from hybrid.runtime import Runtime
from hybrid.trace import trace_stage
from hybrid.verify import REFERENCE_SHAPES
from hybrid.workload import Workload
from tests.conftest import FULL_AND_SMALL, STAGES, TINY_SPEC, constrained, stage_params, traced_preset, workload_id


@pytest.mark.parametrize(("workload", "stage"), stage_params(FULL_AND_SMALL))
def test_analytic_equals_traced_full_configs(workload: Workload, stage: str) -> None:
    analytic = aggregate(expand(stage_groups(stage, workload)))
    traced = aggregate(traced_preset(stage, workload).rows)
    assert analytic == traced  # per (module, op): FLOPs and calls, exactly


def _has_rows(workload: Workload, stage: str) -> bool:
    spec = get_preset(workload.model)
    return spec.pipeline_def.stage(stage).closed_rows(spec, workload.shape()) is not None


WITH_BYTES = [p for p in stage_params(FULL_AND_SMALL) if _has_rows(*p.values)]
"""The (workload, stage) cases whose family writes its bytes in closed form."""


@pytest.mark.parametrize(("workload", "stage"), WITH_BYTES)
def test_closed_form_bytes_equal_traced(workload: Workload, stage: str) -> None:
    # where a family writes its full row walk (every DiT variant today), every op that costs time
    # carries the traced FLOPs, bytes read, bytes written and calls, per (module, op), exactly

    from hybrid.rows import aggregate_costs

    spec = get_preset(workload.model)
    groups = spec.pipeline_def.stage(stage).closed_rows(spec, workload.shape())
    assert groups is not None
    assert aggregate_costs(expand(groups)) == aggregate_costs(traced_preset(stage, workload).rows)


@pytest.mark.parametrize("stage", [s for s in STAGES if TINY_SPEC.pipeline_def.stage(s).rows is not None])
@pytest.mark.parametrize("shape", REFERENCE_SHAPES)
def test_closed_form_bytes_equal_traced_tiny_configs(
    tiny_spec: ModelSpec, stage: str, shape: dict[str, object]
) -> None:

    from hybrid.rows import aggregate_costs

    workload = Workload.of(tiny_spec, **shape)  # type: ignore[arg-type]
    groups = tiny_spec.pipeline_def.stage(stage).closed_rows(tiny_spec, workload.shape())
    assert groups is not None
    assert aggregate_costs(expand(groups)) == aggregate_costs(trace_stage(stage, workload).rows)


PEAK_SHAPES = [
    (1, 1, 1, 1, 7, False), (2, 1, 5, 1, 512, False), (4, 2, 5, 2, 64, True), (8, 4, 5, 1, 16, False),
    (5, 7, 1, 2, 1, True), (2, 3, 9, 1, 777, False), (4, 4, 1, 1, 64, True), (3, 1, 1, 3, 2, True),
]  # fmt: skip
"""(width, height in size multiples, frames, batch, text_len, original runtime): each of the four
candidate points of :func:`hybrid.models.wan_dit.dit_peak_bytes` leads in at least one of them."""


@pytest.mark.parametrize(
    "model",
    ["wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "wan2.2-ti2v-5b", "wan2.2-i2v-a14b", "wan2.1-i2v-14b-480p",
     "wan2.1-flf2v-14b-720p", "wan2.1-vace-1.3b"],
)  # fmt: skip
def test_closed_form_dit_peak_equals_traced(model: str) -> None:
    from hybrid.runtime import Runtime

    spec = get_preset(model)
    m_h, m_w = spec.vae.scale_factor_spatial * 2, spec.vae.scale_factor_spatial * 2
    sd = spec.pipeline_def.stage("diffusion_core")
    for a, b, frames, batch, text_len, wan in PEAK_SHAPES:
        kw = {"width": m_w * a, "height": m_h * b, "frames": frames, "batch": batch, "text_len": text_len}
        w = Workload.of(
            model=model, **spec.constrain(kw, ref_images=a % 2), runtime=Runtime("wan") if wan else Runtime()
        )
        traced = trace_stage("diffusion_core", w)
        # the tracer runs diffusers' module: under --runtime wan, its ops (a timestep per token for Wan2.2);
        # the original WanModel's own ops are tests/test_wan_original.py's
        call = replace(w.shape(), dit_ops="diffusers")
        assert sd.closed_peak(spec, call) == traced.peak_activation_bytes, (model, kw, wan)
        assert sd.closed_peak(spec, call, True) == traced.peak_activation_bytes_materialized, (model, kw, wan)


def test_closed_form_text_encoder_peak_equals_traced() -> None:
    # short prompts: the FFN leads (10 T d_ff + 12 T D bytes); 512 tokens: the attention's (L, L, H) bias

    spec = get_preset("wan2.1-t2v-1.3b")
    sd = spec.pipeline_def.stage("text_encoder")
    for text_len, batch in ((1, 1), (7, 2), (100, 3), (512, 1), (700, 2)):
        w = Workload.of(spec, width=64, height=32, frames=1, text_len=text_len, batch=batch)
        traced = trace_stage("text_encoder", w)
        call = w.shape()
        assert sd.closed_peak(spec, call) == traced.peak_activation_bytes, (text_len, batch)
        assert sd.closed_peak(spec, call, True) == traced.peak_activation_bytes_materialized, (text_len, batch)
    w = Workload.of(spec, width=64, height=32, frames=1)
    # 512 tokens: two (512, 512, 64) bf16 biases, 8 bytes x T x D of layer input, embeddings and norm,
    # q, k, v and one more (T, 4096) bf16
    expected = 2 * 512 * 512 * 64 * 2 + 512 * 4096 * 8 + 4 * 512 * 4096 * 2
    assert sd.closed_peak(spec, w.shape()) == expected == 100_663_296


def test_walked_encoder_peaks_equal_traced_where_no_closed_form_was_written() -> None:
    # the walks' peaks hold beyond the configs the closed forms were written for: an FFN narrower
    # than the model (its wo leads), an ungated one, a one-layer encoder, a CLIP MLP narrower than
    # twice the width
    import dataclasses

    spec = get_preset("wan2.1-t2v-1.3b")
    sd = spec.pipeline_def.stage("text_encoder")
    te = spec.text_encoder
    for cfg in (dataclasses.replace(te, d_ff=2048, num_heads=8), dataclasses.replace(te, d_ff=2048, num_heads=8,
                feed_forward_proj="gelu"), dataclasses.replace(te, num_layers=1)):  # fmt: skip
        narrow = dataclasses.replace(spec, text_encoder=cfg)
        for text_len, batch in ((7, 2), (77, 1)):
            w = Workload.of(narrow, width=64, height=32, frames=1, text_len=text_len, batch=batch)
            traced = trace_stage("text_encoder", w)
            call = w.shape()
            assert sd.closed_peak(narrow, call) == traced.peak_activation_bytes, (cfg, text_len, batch)
            assert sd.closed_peak(narrow, call, True) == traced.peak_activation_bytes_materialized, (cfg, text_len)
    i2v = get_preset("wan2.1-i2v-14b-480p")
    ie = dataclasses.replace(i2v.image_encoder, intermediate_size=1280, num_hidden_layers=3)
    narrow = dataclasses.replace(i2v, image_encoder=ie)
    sd = narrow.pipeline_def.stage("image_encoder")
    w = Workload.of(narrow, width=64, height=32, frames=1)
    traced = trace_stage("image_encoder", w)
    call = w.shape()
    assert sd.closed_peak(narrow, call) == traced.peak_activation_bytes
    assert sd.closed_peak(narrow, call, True) == traced.peak_activation_bytes_materialized


@pytest.mark.parametrize(
    ("model", "shapes"),
    [
        ("wan2.1-t2v-1.3b", [(64, 32, 1, 1), (128, 64, 13, 1), (64, 48, 9, 2), (32, 32, 21, 1), (16, 16, 9, 3)]),
        ("wan2.2-ti2v-5b", [(64, 32, 1, 1), (128, 64, 13, 1), (64, 64, 9, 2), (96, 64, 5, 3)]),
    ],
)
@pytest.mark.parametrize("bf16", [False, True])
def test_closed_form_vae_decode_peak_equals_traced(
    model: str, shapes: list[tuple[int, int, int, int]], bf16: bool
) -> None:
    # the replay of _decode's allocations: caches, the growing video and the last chunk (out_), each
    # caller's input, the norms' temporaries; in bfloat16 (diffusers' module loaded so, --vae-dtype) also the
    # float32 copies WanRMS_norm normalises and WanUpsample interpolates, and the casts back (LightX2V's own
    # norms: tests/test_vae_ops.py)
    runtime = Runtime(name="diffusers", vae_dtype="bfloat16" if bf16 else None)
    for width, height, frames, batch in shapes:
        w = Workload.of(model=model, width=width, height=height, frames=frames, batch=batch, runtime=runtime)
        assert w.spec.vae.compute_dtype == ("bfloat16" if bf16 else "float32")
        _closed_equals_traced("vae_decode", w, rows=bf16)


@pytest.mark.parametrize(
    ("model", "shapes"),
    [
        ("wan2.1-i2v-14b-480p", [(64, 32, 1, 0), (128, 64, 13, 0), (96, 48, 9, 0)]),
        ("wan2.1-vace-1.3b", [(64, 32, 5, 2), (96, 48, 9, 1)]),
        ("wan2.2-ti2v-5b", [(64, 32, 1, 0), (128, 64, 5, 0)]),
    ],
)
@pytest.mark.parametrize("bf16", [False, True])
def test_closed_form_vae_encode_peak_equals_traced(
    model: str, shapes: list[tuple[int, int, int, int]], bf16: bool
) -> None:

    spec = get_preset(model)
    runtime = Runtime(name="diffusers", vae_dtype="bfloat16" if bf16 else None)
    for width, height, frames, refs in shapes:
        kw = {"width": width, "height": height, "frames": frames}
        w = Workload.of(model=model, **spec.constrain(kw, ref_images=refs), image=spec.pipeline_def.image_input,
                        runtime=runtime)  # fmt: skip
        _closed_equals_traced("vae_encode", w, rows=bf16)


def _closed_equals_traced(stage: str, w: Workload, rows: bool) -> None:
    """Both closed-form peaks of one call equal the trace's, and (``rows``) its rows, per (module, op)."""
    sd, call = w.spec.pipeline_def.stage(stage), w.shape()
    traced = trace_stage(stage, w)
    assert sd.closed_peak(w.spec, call) == traced.peak_activation_bytes, w.describe()
    assert sd.closed_peak(w.spec, call, True) == traced.peak_activation_bytes_materialized, w.describe()
    if rows:
        groups = sd.closed_rows(w.spec, call)
        assert groups is not None and aggregate_costs(expand(groups)) == aggregate_costs(traced.rows), w.describe()


def test_math_attention_bytes_equal_the_measured_kernel() -> None:
    # PyTorch's math attention run on meta (what the tracer measures) against the closed form, with
    # and without a mask, bf16 and float32
    import random

    import torch

    from hybrid.ops import math_attention_bytes
    from hybrid.trace.mode import math_attention_peak_bytes

    rng = random.Random(7)
    for _ in range(60):
        b, h, lq, lk, d = (
            rng.randint(1, 3),
            rng.randint(1, 5),
            rng.randint(1, 30),
            rng.randint(1, 30),
            rng.randint(1, 9),
        )
        dtype = rng.choice([torch.bfloat16, torch.float32])
        q, k, v = (torch.empty(b, h, n, d, dtype=dtype, device="meta") for n in (lq, lk, lk))
        mask = {"attn_mask": torch.empty(1, h, lq, lk, dtype=dtype, device="meta")} if rng.random() < 0.3 else {}
        itemsize = 2 if dtype == torch.bfloat16 else 4
        assert math_attention_peak_bytes((q, k, v), mask) == math_attention_bytes(b * h, lq, lk, d, itemsize=itemsize)
    # 1.3B self-attention at 832x480x81: 12 heads x 32,760^2 float32 scores and their softmax beside
    # the float32 upcasts of q, k, v and the scaled q: 103.8 GB
    n, hd = 32_760, 128
    q = 12 * n * hd
    s = 12 * n * n
    assert math_attention_bytes(12, n, n, hd) == 4 * 3 * q + 4 * q + 8 * s == 103_833_999_360


def test_closed_form_dit_peak_of_the_14b_default_by_hand() -> None:
    # 14B at 1280x720x81: n = 75,600 tokens, D 5120, the FFN gate leads: 3 float32 and 5 bf16 N x D
    # tensors (22 bytes per element), the 512 text tokens, the float32 rotary tables (N x 128, two),
    # the float32 (1, 6, D) modulation, its bf16 projection and temb
    from hybrid.models.wan_dit import dit_peak_bytes

    spec = get_preset("wan2.1-t2v-14b")
    n, d = 75_600, 5120
    expected = 22 * n * d + 512 * d * 2 + 2 * n * 128 * 4 + 6 * d * 4 + 6 * d * 2 + d * 2
    assert dit_peak_bytes(spec.transformer, Workload.of(spec).shape()) == expected == 8_598_435_840


def test_closed_form_bytes_of_one_block_by_hand() -> None:
    # 1.3B (D 1536, 12 heads x 128, ffn 8960) at 256x128x5: N = 2 x 8 x 16 = 256 tokens, L = 512
    from hybrid.models.wan_dit import dit_rows
    from hybrid.rows import aggregate_costs

    spec = get_preset("wan2.1-t2v-1.3b")
    w = Workload.of(spec, width=256, height=128, frames=5)
    rows = aggregate_costs(expand(dit_rows(spec.transformer, w.shape())))
    n, d = 256, 1536
    # to_q: bias D + input N x D + weight D x D read, N x D written, bf16
    assert rows[("diffusion_core", "blocks.0.attn1.to_q", "aten.addmm")] == (
        "matmul", 2 * n * d * d, (d + n * d + d * d) * 2, n * d * 2, 1
    )  # fmt: skip
    # casts per block: the (1, 6, D) modulation bf16 -> f32, then the N x D stream 6 times bf16 -> f32
    # (into norm1, norm2, norm3, the two gates, the FFN output) and 5 times back: 6 x 2 + 5 x 4 = 32
    # bytes read and 6 x 4 + 5 x 2 = 34 written per element
    assert rows[("diffusion_core", "blocks.0", "aten._to_copy")][2:] == (
        6 * d * 2 + 32 * n * d, 6 * d * 4 + 34 * n * d, 12
    )  # fmt: skip


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("shape", REFERENCE_SHAPES)
def test_analytic_equals_traced_tiny_configs(tiny_spec: ModelSpec, stage: str, shape: dict[str, object]) -> None:
    workload = Workload.of(model="wan2.1-t2v-1.3b", **shape)  # type: ignore[arg-type]
    analytic = aggregate(expand(stage_groups(stage, workload)))
    assert analytic == aggregate(trace_stage(stage, workload).rows)


def test_analytic_rows_use_real_module_paths() -> None:
    rows = {(r.module, r.op) for r in analytic_rows(Workload.of(), stages=["diffusion_core"])}
    assert ("blocks.3.attn1.to_q", "aten.addmm") in rows
    assert ("blocks.39.attn2", "aten.scaled_dot_product_attention") in rows
    vae = {r.module for r in analytic_rows(Workload.of(), stages=["vae_decode"])}
    assert "decoder.up_blocks.1.resnets.0.conv1" in vae
    assert "decoder.up_blocks.0.upsamplers.0.time_conv" in vae


def test_diffusion_core_cost_pinned_14b() -> None:
    c = diffusion_core_cost(Workload.of())
    # N = 21*45*80 = 75600 tokens, D = 5120, 40 layers, 40 heads x 128, ffn 13824, L = 512:
    # self-attention core 40 * 4*40*75600^2*128                      = 4_682_022_912_000_000
    # self-attention q,k,v,out 40 * 4 * 2*75600*5120^2                =   634_178_764_800_000
    # cross q,out 40 * 2 * 2*75600*5120^2 + k,v 40 * 2 * 2*512*5120^2 =   319_236_866_048_000
    # cross-attention core 40 * 4*40*75600*512*128                    =    31_708_938_240_000
    # FFN 40 * 2 * 2*75600*5120*13824                                 =   856_141_332_480_000
    # patch 2*5120*16*4*75600 + time 2*256*5120 + 2*5120^2 + 2*5120*30720
    #   + text 2*512*4096*5120 + 2*512*5120^2                         =        98_233_221_120
    # proj_out 2*75600*5120*64                                        =        49_545_216_000
    assert c.components_per_call == {
        "embedders": 98_233_221_120,
        "self_attention_projections": 634_178_764_800_000,
        "self_attention_core": 4_682_022_912_000_000,
        "cross_attention_projections": 319_236_866_048_000,
        "cross_attention_core": 31_708_938_240_000,
        "ffn": 856_141_332_480_000,
        "output_head": 49_545_216_000,
    }
    assert c.flops_per_call == 6_523_436_592_005_120
    assert c.calls == 100  # 50 steps x 2 (CFG)
    assert c.flops == 652_343_659_200_512_000


def test_diffusion_core_cost_pinned_1_3b() -> None:
    c = diffusion_core_cost(Workload.of(model="wan2.1-t2v-1.3b"))
    # N = 21*30*52 = 32760, D = 1536, 30 layers of 12 x 128, ffn 8960
    # self-attention core 30 * 4*12*32760^2*128 = 197_815_468_032_000
    assert c.components_per_call["self_attention_core"] == 197_815_468_032_000
    assert c.flops_per_call == 283_001_787_777_024
    assert c.flops == 28_300_178_777_702_400


def test_estimate_stages_and_totals() -> None:
    r = estimate(Workload.of())
    assert list(r.stages) == list(STAGES)
    assert [s.calls for s in r.stages.values()] == [2, 100, 1]
    # UMT5 per call: 24 * (4*2*512*4096^2 + 4*64*512^2*64 + 3*2*512*4096*10240) = 4_844_723_109_888
    assert r.stages["text_encoder"].flops_per_call == 4_844_723_109_888
    assert r.stages["vae_decode"].flops_per_call == 639_218_375_884_800
    assert r.total_flops == 2 * 4_844_723_109_888 + 100 * 6_523_436_592_005_120 + 639_218_375_884_800
    assert r.total_flops == sum(s.flops for s in r.stages.values())
    assert sum(row.flops * r.stages[row.stage].calls for row in r.rows()) == r.total_flops
    assert abs(sum(r.share(s) for s in STAGES) - 1.0) < 1e-12
    for s in r.stages.values():
        assert sum(s.components.values()) == s.flops


def test_schedule_scales_stages() -> None:
    on, off = estimate(Workload.of(steps=20)), estimate(Workload.of(steps=20, cfg=False))
    assert on.stages["diffusion_core"].flops == 2 * off.stages["diffusion_core"].flops
    assert on.stages["text_encoder"].flops == 2 * off.stages["text_encoder"].flops
    assert on.stages["vae_decode"].flops == off.stages["vae_decode"].flops
    assert (
        estimate(Workload.of(steps=40)).stages["diffusion_core"].flops * 5
        == estimate(Workload.of(steps=50)).stages["diffusion_core"].flops * 4
    )


def test_report_json_schema() -> None:
    d = estimate(Workload.of(model="wan2.1-t2v-1.3b")).to_dict()
    assert d["schema"] == "wanmeter.report/1"
    assert d["model"] == "wan2.1-t2v-1.3b"
    assert d["workload"] == {
        "width": 832,
        "height": 480,
        "frames": 81,
        "steps": 50,
        "batch": 1,
        "text_len": 512,
        "cfg": True,
    }
    assert set(d["stages"]) == set(STAGES)
    for s in d["stages"].values():
        assert set(s) == {"flops", "runs", "flops_per_run", "share", "components"}
        assert isinstance(s["flops"], int) and s["flops"] == s["runs"] * s["flops_per_run"]
    assert d["total"] == {"flops": sum(s["flops"] for s in d["stages"].values())}
    assert d["warnings"] == []
    assert d["assumptions"] and d["modeled"] and d["unmodeled"]


def test_report_frame() -> None:
    frame = estimate(Workload.of()).to_frame()
    assert list(frame.columns) == ["stage", "component", "runs", "flops_per_run", "flops", "share"]
    assert sum(frame["flops"]) == estimate(Workload.of()).total_flops


def test_extreme_workload_exact_and_renders() -> None:
    w = Workload.of(width=7680, height=4320, frames=1001, steps=1000, batch=16)
    r = estimate(w)
    # tokens per sample 251*270*480 = 32_529_600; self-attention core alone, per run:
    # 40 layers * 4*16*40*32_529_600^2*128 = 13_869_709_736_804_352_000_000 (> 2^63 by far)
    assert r.stages["diffusion_core"].components_per_call["self_attention_core"] == 13_869_709_736_804_352_000_000
    assert r.total_flops > 2**63
    assert len(r.warnings) == 2  # size and frames beyond what 14B was trained for
    for fmt in (render.to_table, render.to_markdown, render.to_csv, render.to_json):
        assert str(r.total_flops) in fmt(r) or fmt is render.to_csv
    assert "EFLOP" in render.to_table(r)


def test_extrapolation_warnings_in_report() -> None:
    r = estimate(Workload.of(model="wan2.1-t2v-1.3b", width=1280, height=720, text_len=1024))
    assert any("1280x720 is above the 832x480" in m for m in r.warnings)
    assert any("text_len 1024" in m for m in r.warnings)


knob_values = st.sampled_from(["width", "height", "frames", "steps", "batch", "text_len", "ref_images"])


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(sorted(PRESETS)),
    st.integers(1, 40),
    st.integers(1, 30),
    st.integers(0, 20),
    st.integers(1, 60),
    st.integers(1, 3),
    st.integers(1, 600),
    st.integers(0, 3),
    knob_values,
)
def test_every_stage_monotonic_in_every_knob(
    model: str, w16: int, h16: int, k: int, steps: int, batch: int, text_len: int, refs: int, knob: str
) -> None:
    shape = {"width": 16 * w16, "height": 16 * h16, "frames": 4 * k + 1, "steps": steps, "batch": batch}
    base = constrained(model, refs, text_len=text_len, **shape)
    step = {"width": 16, "height": 16, "frames": 4}.get(knob, 1)
    bigger = Workload.of(**get_preset(model).constrain({**base.to_dict(), knob: getattr(base, knob) + step}, refs))
    a, b = estimate(base), estimate(bigger)
    if knob == "frames" and base.spec.pipeline_def.audio:  # a speech-to-video clip's frames: longer clips, fewer
        assert bigger.segments <= base.segments  # of them for the same audio; each call costs more
        for s in a.stages:
            assert a.stages[s].flops_per_call <= b.stages[s].flops_per_call
        return
    for s in a.stages:
        assert a.stages[s].flops <= b.stages[s].flops


def test_analytic_path_does_not_import_torch() -> None:
    code = (
        "import sys, hybrid; r = hybrid.estimate(hybrid.Workload.of()); r.rows(); hybrid.default_efficiency('h200'); "
        "assert 'torch' not in sys.modules, 'torch imported'; print(r.total_flops)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "652992567022616576"


def test_public_api() -> None:
    w = hybrid.Workload.of(model="wan2.1-t2v-1.3b", width=256, height=128, frames=17)
    sized = hybrid.size_on_gpu(w, "l40s")
    assert sized.gpu == hybrid.get_gpu("l40s") and len(hybrid.gpus()) == 23
    assert sized.efficiency["matmul"]["value"] == hybrid.default_efficiency("l40s").efficiency["matmul"] == 0.729
    assert sized.seconds > 0 and sized.peak_memory_bytes > 0
    assert hybrid.diffusion_core_cost(hybrid.Workload.of()).flops_per_call == 6_523_436_592_005_120
    assert hybrid.estimate(hybrid.Workload.of()).total_flops == 652_992_567_022_616_576


@pytest.mark.parametrize("workload", FULL_AND_SMALL, ids=workload_id)
def test_components_equal_traced_rows_by_component(workload: Workload) -> None:
    spec = get_preset(workload.model)
    report = estimate(workload)
    for stage in report.stages:
        sd = spec.pipeline_def.stage(stage)
        if not sd.trace_key:  # no module to trace (S2V's transformer): tests/test_wan_s2v.py
            continue
        traced: dict[str, int] = {}
        for r in traced_preset(stage, workload).rows:
            if r.flops:
                name = sd.component_of_row(r)
                traced[name] = traced.get(name, 0) + r.flops
        assert report.stages[stage].components_per_call == traced
        assert "other" not in traced


@pytest.mark.parametrize(
    ("batch", "frames", "h", "w"), [(1, 1, 6, 8), (2, 21, 90, 160), (3, 5, 2, 2), (1, 251, 540, 960)]
)
def test_vae_components_shortcut_equals_groups(batch: int, frames: int, h: int, w: int) -> None:
    from hybrid.models.wan_vae import component, vae_decode_components, vae_decode_groups

    cfg = get_preset("wan2.1-t2v-14b").vae
    by_groups: dict[str, int] = {}
    for g in vae_decode_groups(cfg, batch, frames, h, w):
        by_groups[component(g.module, g.op)] = by_groups.get(component(g.module, g.op), 0) + g.flops
    assert vae_decode_components(cfg, batch, frames, h, w) == by_groups


@pytest.mark.parametrize("model", sorted(PRESETS))
@pytest.mark.parametrize(
    "shape",
    [{}, {"width": 256, "height": 128, "frames": 5}, {"width": 1920, "height": 1088, "frames": 161, "batch": 3}],
    ids=["default", "small", "large-batch3"],
)
def test_closed_form_components_equal_the_groups(model: str, shape: dict[str, int]) -> None:
    # each stage's components shortcut (no groups built) against its groups summed by component,
    # order included; under both runtimes (the original Wan2.2 code embeds the timestep per token)
    from hybrid.runtime import Runtime

    spec = get_preset(model)
    runs = spec.pipeline_def.runtimes  # video-to-video: diffusers only
    for runtime in (Runtime(), Runtime("wan")) if runs is None else tuple(Runtime(r) for r in runs):
        w = Workload.of(model=model, **spec.constrain(shape), runtime=runtime)
        call = w.shape()
        for sd in spec.pipeline_def.stages:
            if sd.components is None:
                continue
            by_groups: dict[str, int] = {}
            for g in sd.groups(sd.config(spec), call):
                name = g.component or sd.component_of(g.module, g.op)
                by_groups[name] = by_groups.get(name, 0) + g.flops
            closed = sd.components(sd.config(spec), call)
            assert list(closed.items()) == list(by_groups.items()), (model, sd.name)


def test_clear_memos_leaves_no_memo_on_the_analytic_or_sizing_path() -> None:
    # "cold" in bench/: every lru_cache of the modules an estimate or a sizing runs is emptied,
    # and every preset's pipeline lookup, parameter counts and hash forgotten
    import functools
    import importlib

    from hybrid.analytic import clear_memos
    from hybrid.pipelines import get_pipeline
    from hybrid.sizing import cost_memo, size_on_gpu

    estimate(Workload.of())
    estimate(Workload.of(model="wan2.1-vace-1.3b"))
    size_on_gpu(Workload.of(model="wan2.1-i2v-14b-480p"), "h100-sxm")
    assert cost_memo.cache_info().currsize
    names = ["analytic", "report", "geometry", "pipelines", "presets", "workload", "schedule", "sampler", "runtime"]
    names += ["ops", "rows", "sizing", "memory", "deployment", "optimise", "dtypes", "timing"]
    names += [f"models.{m}" for m in ("umt5", "clip", "wan_dit", "wan_vae")]
    caches = [
        obj
        for n in names
        for obj in vars(importlib.import_module(f"hybrid.{n}")).values()
        if isinstance(obj, functools._lru_cache_wrapper)
    ]
    assert caches and any(c.cache_info().currsize for c in caches)
    clear_memos()
    assert [c for c in caches if c.cache_info().currsize] == []
    assert all(not {"pipeline_def", "_parameter_counts", "_hash"} & set(spec.__dict__) for spec in PRESETS.values())
    assert get_preset("wan2.1-t2v-14b").pipeline_def is get_pipeline("t2v")  # looked up again on use


def test_verify_fails_on_a_call_count_mismatch_with_equal_flops(monkeypatch: pytest.MonkeyPatch) -> None:
    import hybrid.verify as verify

    w = Workload.of(model="wan2.1-t2v-1.3b", width=256, height=128, frames=5)
    assert verify.check_stage("text_encoder", w).passed

    def split_first_matmul(stage: str, workload: Workload) -> list[OpGroup]:
        groups = stage_groups(stage, workload)
        g = groups[0]  # the same FLOPs in twice the calls: a different model of the same total
        assert g.flops_per_call % 2 == 0
        return [g._replace(flops_per_call=g.flops_per_call // 2, calls=2 * g.calls), *groups[1:]]

    monkeypatch.setattr(verify, "stage_groups", split_first_matmul)
    check = verify.check_stage("text_encoder", w)
    # the first group is layer 0's q projection: its (module, op) row disagrees in calls alone
    assert check.detail["relative_error"] == 0 and check.detail["call_mismatches"] == 1 and not check.passed


VAE_GRID = [(1, 1, 2, 2), (1, 3, 4, 6), (2, 4, 6, 10), (1, 21, 60, 104), (3, 9, 34, 60), (1, 41, 90, 160)]


@pytest.mark.parametrize("model", ["wan2.1-t2v-14b", "wan2.2-ti2v-5b"])
def test_vae_terms_equal_the_roofline_terms_of_the_rows(model: str) -> None:
    # the sizing walk (terms as it goes, residual blocks walked once per shape and cache state) against
    # the full row walk reduced afterwards: the same integers, term for term
    from hybrid.models.wan_vae import vae_decode_rows, vae_decode_terms, vae_encode_rows, vae_encode_terms
    from hybrid.timing import roofline_terms

    cfg = get_preset(model).vae
    for batch, frames, h, w in VAE_GRID:
        expected = roofline_terms(vae_decode_rows(cfg, batch, frames, h, w))
        assert vae_decode_terms(cfg, batch, frames, h, w) == expected, (batch, frames, h, w)
        enc_frames = 1 if cfg.is_residual else frames
        for calls in (1, 2):
            expected = roofline_terms(vae_encode_rows(cfg, batch, enc_frames, 16 * h, 16 * w, calls))
            assert vae_encode_terms(cfg, batch, enc_frames, 16 * h, 16 * w, calls) == expected, (batch, h, calls)


def test_vace_encode_terms_merge_like_their_rows() -> None:
    from hybrid.timing import roofline_terms

    spec = get_preset("wan2.1-vace-14b")
    sd = spec.pipeline_def.stage("vae_encode")
    for refs in (0, 1, 3):
        call = Workload.of(spec, **spec.constrain({"frames": 17}, ref_images=refs)).shape()
        assert sd.closed_terms(spec, call) == roofline_terms(sd.closed_rows(spec, call) or []), refs


@pytest.mark.parametrize("model", sorted(PRESETS))
def test_text_encoder_image_encoder_and_transformer_terms_equal_the_roofline_terms_of_their_rows(model: str) -> None:
    # sizing's walks reduced to terms as they go against the rows reduced afterwards: the same integers,
    # term for term, over sizes, frames, text lengths, batches and sequence-parallel layouts
    from hybrid.deployment import Deployment
    from hybrid.models import clip, umt5, wan_dit
    from hybrid.timing import roofline_terms

    spec = get_preset(model)
    layouts = [Deployment()] + ([Deployment(gpus=4, ulysses=2, ring=2)] if model != "wan2.1-vace-14b" else [])
    for width, height, frames, text_len, batch in ((64, 32, 1, 1, 1), (832, 480, 81, 512, 1), (128, 64, 13, 77, 3)):
        kw = spec.constrain({"width": width, "height": height, "frames": frames, "text_len": text_len, "batch": batch})
        w = Workload.of(model=model, **kw, image=spec.pipeline_def.image_input)
        for deployment in layouts:
            call = w.shape(deployment)
            assert wan_dit.dit_terms(spec.transformer, call) == roofline_terms(wan_dit.dit_rows(spec.transformer, call))
        rows = umt5.umt5_rows(spec.text_encoder, batch, text_len)
        assert umt5.umt5_terms(spec.text_encoder, batch, text_len) == roofline_terms(rows), (width, text_len, batch)
        if spec.image_encoder is not None:  # its own shape: the images of one job
            rows = clip.clip_rows(spec.image_encoder, call)
            assert clip.clip_terms(spec.image_encoder, call) == roofline_terms(rows), width


BLOCK_GRID = [
    (batch, frames, h, w)
    for batch in (1, 2, 3)
    for frames in (1, 2, 3, 5, 9)
    for h, w in ((1, 1), (2, 3), (5, 7), (8, 8), (13, 4), (30, 52), (60, 104))
]


@pytest.mark.parametrize("model", ["wan2.1-t2v-14b", "wan2.2-ti2v-5b"])
def test_vae_replayed_blocks_equal_the_walk_without_replays(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # sizing's terms and peaks replay the residual blocks and chunks a walk has met before (by shapes,
    # runs and cache slots) against the same walk with every block walked op by op, and the terms
    # against the rows reduced afterwards: the same integers; 105 shapes per model
    from hybrid.models import wan_vae
    from hybrid.timing import roofline_terms

    cfg = get_preset(model).vae

    def sized(batch: int, frames: int, h: int, w: int) -> tuple[object, ...]:
        enc_frames = 1 if cfg.is_residual else frames
        wan_vae.clear_memos()
        return (wan_vae.vae_decode_terms(cfg, batch, frames, h, w),
                wan_vae.vae_encode_terms(cfg, batch, enc_frames, 16 * h, 16 * w),
                wan_vae._decode_peaks(cfg, batch, frames, h, w),
                wan_vae._encode_peaks(cfg, batch, enc_frames, 16 * h, 16 * w))  # fmt: skip

    fast = []
    for batch, frames, h, w in BLOCK_GRID:
        fast.append(sized(batch, frames, h, w))
        enc_frames = 1 if cfg.is_residual else frames
        assert fast[-1][0] == roofline_terms(wan_vae.vae_decode_rows(cfg, batch, frames, h, w)), (batch, frames, h, w)
        rows = wan_vae.vae_encode_rows(cfg, batch, enc_frames, 16 * h, 16 * w)
        assert fast[-1][1] == roofline_terms(rows), (batch, frames, h, w)
    monkeypatch.setattr(wan_vae._Walk, "memo", lambda self, key, reads, path, block: block())
    for shape, got in zip(BLOCK_GRID, fast, strict=True):
        assert got == sized(*shape), shape
    wan_vae.clear_memos()
