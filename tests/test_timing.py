"""Time model (roofline over rows) and the timing calibration path on CPU."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hybrid.cli import main
from hybrid.measure import EFFICIENCY_SCHEMA, Measurement, calibrate_time, fit_efficiency
from hybrid.rows import CostRow
from hybrid.timing import Machine, row_seconds, stage_time
from hybrid.verify import TINY_SPEC

EFF = {"matmul": 0.5, "attention": 0.25, "convolution": 0.5, "memory": 0.5}
MACHINE = Machine(peak_flops=1e12, peak_bytes_per_s=1e11, efficiency=EFF)


def _row(category: str, flops: int, read: int, written: int = 0, calls: int = 1) -> CostRow:
    return CostRow("diffusion_core", "m", "aten.x", category, flops, read, written, calls)


def test_roofline_per_row() -> None:
    # 2e12 FLOPs at 1e12 * 0.5 -> 4 s; 1e9 bytes at 1e11 * 0.5 -> 0.02 s: compute-bound
    assert row_seconds(_row("matmul", 2 * 10**12, 10**9), MACHINE) == (4.0, "compute")
    # attention at efficiency 0.25: 1e12 / 2.5e11 = 4 s
    assert row_seconds(_row("attention", 10**12, 0), MACHINE) == (4.0, "compute")
    # a matmul with little work and many bytes is memory-bound: 1e6 FLOPs -> 2e-6 s; 1e10 bytes -> 0.2 s
    assert row_seconds(_row("matmul", 10**6, 5 * 10**9, 5 * 10**9), MACHINE) == (0.2, "memory")
    # elementwise: bytes only; views: nothing
    assert row_seconds(_row("elementwise", 0, 10**9), MACHINE) == (0.02, "memory")
    assert row_seconds(_row("view", 0, 0), MACHINE) == (0.0, "memory")


def test_launch_overhead_per_call_and_stage_sum() -> None:
    m = Machine(1e12, 1e11, EFF, launch_overhead_s=1e-5)
    rows = [_row("matmul", 2 * 10**12, 10**9), _row("elementwise", 0, 10**9, calls=10), _row("view", 0, 0, calls=99)]
    st = stage_time(rows, m)
    # 4 s + 1e-5 (one call) + 0.02 s + 10 * 1e-5
    assert st.seconds == pytest.approx(4.0 + 1e-5 + 0.02 + 1e-4)
    assert st.bound == "compute"
    assert set(st.by_class) == {"matmul", "memory"}


def test_machine_validation() -> None:
    with pytest.raises(ValueError, match="efficiency: missing op classes"):
        Machine(1.0, 1.0, {"matmul": 0.5})
    with pytest.raises(ValueError, match=r"efficiency: values must be in \(0, 2\]"):
        Machine(1.0, 1.0, {**EFF, "memory": 0.0})


def test_fit_efficiency_uses_the_largest_shape() -> None:
    ms = [
        Measurement("matmul", "small", 10**6, 10**3, 1e-3),  # launch-bound: ignored
        Measurement("matmul", "big", 10**12, 10**6, 2.0),  # 5e11 FLOP/s
        Measurement("attention", "a", 10**12, 10**6, 4.0),
        Measurement("convolution", "c", 10**12, 10**6, 10.0),
        Measurement("memory", "m", 0, 10**10, 0.2),  # 5e10 B/s
    ]
    eff = fit_efficiency(ms, peak_flops=1e12, peak_bytes_per_s=1e11)
    assert eff == {"matmul": 0.5, "attention": 0.25, "convolution": 0.1, "memory": 0.5}


def test_calibrate_time_on_cpu_tiny() -> None:
    shape = {"width": 64, "height": 48, "frames": 1, "text_len": 7}
    cal = calibrate_time(device="cpu", spec=TINY_SPEC, fit_workloads=[shape], held_out=[shape])
    doc = cal.to_dict()
    assert doc["schema"] == EFFICIENCY_SCHEMA and doc["device"] == "cpu" and doc["date"]
    assert set(doc["versions"]) == {"wanmeter", "torch", "diffusers", "transformers"}
    assert set(doc["efficiency"]) == {"matmul", "attention", "convolution", "memory"}
    assert doc["efficiency"]["matmul"] == 1.0  # CPU peaks are the largest measured matmul's rate
    assert len(doc["measurements"]) == 12 and all(m["seconds"] > 0 for m in doc["measurements"])
    assert [h["stage"] for h in doc["held_out"]] == ["text_encoder", "diffusion_core", "vae_decode"]
    assert all(h["predicted_s"] > 0 and h["measured_s"] > 0 for h in doc["held_out"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["calibrate-time", "--gpu", "v100"], "gpu: unknown GPU 'v100'"),
        (["calibrate-time", "--device", "cuda"], "device: cuda is not available"),
    ],
)
def test_calibrate_time_bad_input(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_committed_cpu_calibration_has_provenance() -> None:
    doc = json.loads((Path(__file__).resolve().parents[1] / "calibration" / "efficiency" / "cpu.json").read_text())
    assert doc["schema"] == EFFICIENCY_SCHEMA and doc["device"] == "cpu"
    assert doc["versions"]["torch"].startswith("2.") and doc["date"]
    assert len(doc["held_out"]) == 6 and doc["model"] == "small"


def test_calibration_setup() -> None:
    from hybrid.measure import PRESET_HELD_OUT, SMALL_SPEC, calibration_setup

    spec, fit, held_out = calibration_setup("small")
    assert spec is SMALL_SPEC and len(fit) == 2 and len(held_out) == 2
    spec, fit, held_out = calibration_setup("wan2.1-t2v-14b")
    assert spec.name == "wan2.1-t2v-14b" and held_out == PRESET_HELD_OUT
    assert all(w["text_len"] == 512 for w in (*fit, *held_out))  # the pipeline's padded prompt
    with pytest.raises(ValueError, match="model: unknown model 'wan9'"):
        calibration_setup("wan9")


def test_terms_sum_zero_flop_rows_exactly_and_time_like_rows() -> None:
    # two elementwise rows become one term of 3e9 bytes and 3 calls; views leave no term; each FLOP
    # row stays its own term (its own roofline)
    from hybrid.timing import Terms, row_terms, terms_time

    rows = [
        _row("matmul", 2 * 10**12, 10**9),
        _row("elementwise", 0, 10**9, calls=1),
        _row("matmul", 10**6, 5 * 10**9, 5 * 10**9),
        _row("elementwise", 0, 2 * 10**9, calls=2),
        _row("view", 0, 0, calls=99),
        _row("movement", 0, 7, calls=1),
    ]
    assert row_terms(rows) == (  # rows without shapes: no kernel dims
        ("matmul", 2 * 10**12, 10**9, 1, ()),
        ("matmul", 10**6, 10**10, 1, ()),
        ("elementwise", 0, 3 * 10**9, 3, ()),
        ("movement", 0, 7, 1, ()),
    )
    m = Machine(1e12, 1e11, EFF, launch_overhead_s=1e-5)
    st = terms_time(row_terms(rows), m)
    by_row = [row_seconds(r, m) for r in rows]
    assert st.seconds == pytest.approx(sum(t for t, _ in by_row), rel=1e-15)
    assert st.compute_bound_seconds == pytest.approx(sum(t for t, b in by_row if b == "compute"), rel=1e-15)
    # at 5e10 B/s: matmul 4 s + 1e-5 (compute) and 1e10 / 5e10 = 0.2 s + 1e-5 (memory-bound);
    # memory 3e9 / 5e10 = 0.06 s + 3e-5, and 7 / 5e10 = 1.4e-10 s + 1e-5
    assert st.by_class["matmul"] == pytest.approx(4.2 + 2e-5, rel=1e-15)
    assert st.by_class["memory"] == pytest.approx(0.06 + 4e-5 + 1.4e-10, rel=1e-15)
    assert Terms().freeze() == ()


def test_alike_flop_rows_merge_into_one_term_that_times_the_same() -> None:
    # three conv rows of 1e9 FLOPs, 4e8 bytes and 1 call each become one term 3x as large; a fourth
    # with other bytes stays its own; the seconds are the sum over the rows
    from hybrid.timing import row_terms, terms_time

    rows = [_row("conv", 10**9, 4 * 10**8)] * 3 + [_row("conv", 10**9, 10**8, 10**8)]
    assert row_terms(rows) == (("conv", 3 * 10**9, 12 * 10**8, 3, ()), ("conv", 10**9, 2 * 10**8, 1, ()))
    m = Machine(1e12, 1e10, EFF, launch_overhead_s=1e-5)
    # each alike row: max(1e9 / 5e11, 4e8 / 5e9) = 0.08 s + 1e-5; the other: max(2e-3, 0.04) + 1e-5
    assert terms_time(row_terms(rows), m).seconds == pytest.approx(3 * (0.08 + 1e-5) + 0.04 + 1e-5, rel=1e-15)
    assert terms_time(row_terms(rows), m).seconds == pytest.approx(sum(row_seconds(r, m)[0] for r in rows), rel=1e-15)


def _per_call(terms: Any) -> dict[tuple[Any, ...], int]:
    """Terms as ``(category, flops, bytes, dims) per call -> calls``: alike rows folded however a walk
    grouped them (the seconds are linear in the calls)."""
    out: dict[tuple[Any, ...], int] = {}
    for c, f, m, n, d in terms:
        if f or d:
            out[(c, f // n, m // n, d)] = out.get((c, f // n, m // n, d), 0) + n
        else:  # zero-FLOP terms: bytes and calls summed per category
            out[(c, "bytes")] = out.get((c, "bytes"), 0) + m
            out[(c, "calls")] = out.get((c, "calls"), 0) + n
    return out


@pytest.mark.parametrize("model", ["wan2.1-t2v-1.3b", "wan2.1-i2v-14b-480p", "wan2.2-ti2v-5b", "wan2.1-vace-1.3b"])
def test_closed_form_terms_carry_the_kernel_shapes_the_tracer_records(model: str) -> None:
    # every FLOP term of a stage call (its kernel shape included: (batch, m, n, k) of a GEMM or a
    # convolution's implicit GEMM, (batch * heads, q_len, kv_len, head_dim) of an attention) and every
    # summed zero-FLOP term equals the traced rows' (hybrid.timing.kernel_dims of their shapes)
    from hybrid.deployment import SINGLE
    from hybrid.sizing import closed_call_cost
    from hybrid.timing import row_terms

    from .conftest import SMALL, constrained, traced_preset

    w = constrained(model, 1, **SMALL)
    spec = w.spec
    for sd in spec.pipeline_def.stages:
        closed = closed_call_cost(sd, spec, w.shape(SINGLE))
        assert closed is not None, sd.name
        traced = row_terms(traced_preset(sd.name, w).rows)
        assert _per_call(closed.terms) == _per_call(traced), (model, sd.name)
        assert all(len(t[4]) == 4 for t in closed.terms if t[1]), (model, sd.name)


def test_the_original_wan_walk_tells_every_flop_ops_kernel_shape() -> None:
    # --runtime wan's DiT rows (the original WanModel's ops) are timed by kernel shape too
    from dataclasses import replace

    from hybrid.deployment import SINGLE
    from hybrid.runtime import Runtime
    from hybrid.sizing import closed_call_cost

    from .conftest import SMALL, constrained

    w = replace(constrained("wan2.1-t2v-1.3b", **SMALL), runtime=Runtime("wan"))
    sd = next(sd for sd in w.spec.pipeline_def.stages if sd.name == "diffusion_core")
    closed = closed_call_cost(sd, w.spec, w.shape(SINGLE))
    assert closed is not None
    flop_terms = [t for t in closed.terms if t[1]]
    assert flop_terms and all(len(t[4]) == 4 for t in flop_terms)
    assert {t[0] for t in flop_terms} == {"matmul", "attention", "conv"}


def test_a_traced_collective_keeps_its_kind_as_the_walks_tell_it() -> None:
    from hybrid.timing import collective_dims, row_terms

    # an all-to-all of 8 ranks as the tracer records it (no FLOPs): its kind is what its bandwidth curve is looked up
    # by; dropped, a traced job was timed at the link's default rate where the closed form used the all-to-all's curve
    row = CostRow(stage="diffusion_core", module="blocks.0.attn1", op="_c10d_functional.all_to_all_single",
                  category="collective", flops=0, bytes_read=7 * 2**20, bytes_written=7 * 2**20, calls=3,
                  input_shapes=((8, 2**20),), output_shape=((8, 2**20),))  # fmt: skip
    list_row = CostRow(stage="diffusion_core", module="blocks.0.attn1", op="c10d.alltoall_", category="collective",
                       flops=0, bytes_read=2**20, bytes_written=2**20, calls=1)  # fmt: skip
    assert row_terms([row, list_row]) == (
        ("collective", 0, 14 * 2**20, 3, collective_dims("all_to_all_single")),
        ("collective", 0, 2 * 2**20, 1, collective_dims("all_to_all_single")),
    )
