"""The renderers the CLI prints through (verify, calibrate, sweep, listings): pure functions of data."""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import pytest

from hybrid.calibrate import CrossCheck, GoldenRun, LawsRun
from hybrid.hardware import database, default_efficiency
from hybrid.measure import Calibration
from hybrid.presets import PRESETS
from hybrid.render import calibrate, listings, sweep, verify
from hybrid.sweep import Grid
from hybrid.sweep import sweep as run_sweep
from hybrid.verify import Check, Summary
from hybrid.workload import Workload

PATH = Path("out/x.json")


def test_exact_verification_lists_only_failed_cases_unless_verbose() -> None:
    s = Summary("exact", [Check("a", True, {"exact": True}), Check("b", False, {"exact": False})], 1.25)
    assert verify.to_text(s, PATH) == "FAIL exact: 1/2 passed, 1 exact (1.2 s) -> out/x.json\n  FAIL b\n"
    assert verify.to_text(s, PATH, verbose=True).splitlines()[1:] == ["  ok   a", "  FAIL b"]


def test_timed_verification_shows_every_error() -> None:
    s = Summary("timed", [Check("t1", True, {"measured_s": 1.0, "relative_error": 0.123}),
                          Check("t2", True, {"measured_s": 2.0, "relative_error": -0.5})], 2.0)  # fmt: skip
    assert verify.to_text(s, PATH) == (
        "PASS timed: 2/2 passed, max |error| 50.0% (2.0 s) -> out/x.json\n  ok   t1: +12.3%\n  ok   t2: -50.0%\n"
    )


def test_published_verification_reports_seconds_and_memory_errors() -> None:
    common = {"dit_calls": 80, "published_dit_calls": 100}
    s = Summary(
        "published",
        [
            Check("p1", True, {"published_s": 534.7, "predicted_s": 604.2, "relative_error": 0.129,
                               "published_peak_gib": 22.9, "predicted_peak_gib": 21.91,
                               "memory_relative_error": -0.043, **common}),
            Check("p2", False, {"published_s": 1234.0, "predicted_s": 1000.0, "relative_error": -0.19,
                                "published_peak_gib": None, "predicted_peak_gib": 40.0,
                                "memory_relative_error": None, **common}),
        ],
    )  # fmt: skip
    assert verify.to_text(s, PATH).splitlines() == [
        "FAIL published: 1/2 passed, seconds mean |error| 16.0%, max 19.0%; peak memory mean |error| 4.3%, "
        "max 4.3% (0.0 s) -> out/x.json",
        "  ok   p1: 604 s vs 534.7 s (+12.9%), peak 21.9 vs 22.9 GiB (-4.3%)",
        "  FAIL p2: 1,000 s vs 1,234.0 s (-19.0%); DiT calls 80, the source's 100",
    ]


def test_laws_run_lines() -> None:
    w = Workload.of(model="wan2.1-t2v-1.3b")
    checks = [CrossCheck("text_encoder", w, 10, 10, 10), CrossCheck("vae_decode", w, 11, 10, None)]
    laws = {"text_encoder": {"attention": {"B*L": Fraction(3)}}}
    run = LawsRun("m", laws, ["text_encoder/attention: B*L committed 2, re-fit 3"], checks, Path("laws/m.json"))
    assert not run.passed
    assert calibrate.laws_run(run, verbose=True).splitlines() == [
        "MISMATCH m text_encoder/attention: B*L committed 2, re-fit 3",
        "ok   m 832x480x81 b1 text_encoder    law 10 analytic 10 traced 10 rel.err 0.0e+00",
        "FAIL m 832x480x81 b1 vae_decode      law 11 analytic 10 traced None rel.err 1.0e-01",
        "  text_encoder/attention = 3*B*L",
        "wrote laws/m.json",
    ]


def test_golden_run_lines() -> None:
    assert calibrate.step(GoldenRun("g", [], Path("golden/g.json"))) == "wrote golden/g.json\n"
    changed = GoldenRun("g", ["added: vae_decode decoder conv3d"], None)
    assert calibrate.step(changed) == (
        "GOLDEN g added: vae_decode decoder conv3d\nFAIL golden table g: 1 ops changed\n"
    )
    assert calibrate.golden_run(GoldenRun("g", [], None)) == "ok   golden table g: 0 ops changed\n"
    assert (calibrate.verdict(True), calibrate.verdict(False)) == ("PASS\n", "FAIL\n")


def test_time_model_lines() -> None:
    cal = Calibration(
        name="cpu", device="cpu", device_name="cpu", dtype="float32", model="small", peak_flops=1.234e12,
        peak_bytes_per_s=5.67e10, peak_source="measured", launch_overhead_s=3.2e-6,
        efficiency={"matmul": 0.5, "attention": 0.25, "convolution": 0.125, "memory": 0.75},
        held_out=[{"stage": "text_encoder", "workload": {"width": 64, "height": 48, "frames": 5, "text_len": 7},
                   "predicted_s": 0.01234, "measured_s": 0.01, "relative_error": 0.234},
                  {"stage": "diffusion_core", "workload": {"width": 640, "height": 480, "frames": 17, "text_len": 512},
                   "predicted_s": 1.5, "measured_s": 2.0, "relative_error": -0.25}],
    )  # fmt: skip
    assert calibrate.time_model(cal, Path("e/cpu.json")).splitlines() == [
        "device cpu; peaks: 1.234 TFLOP/s, 56.7 GB/s (measured)",
        "efficiency: matmul 0.500, attention 0.250, convolution 0.125, memory 0.750; "
        "launch overhead 3.2 us per op call",
        "held-out shapes, predicted vs measured seconds per stage call:",
        "  text_encoder    64x48x5 L7: predicted     12.34 ms, measured     10.00 ms, error +23.4%",
        "  diffusion_core  640x480x17 L512: predicted   1500.00 ms, measured   2000.00 ms, error -25.0%",
        "mean |error| 24.2%, max |error| 25.0%",
        "wrote e/cpu.json",
    ]


def test_sweep_table_has_a_column_per_stage_and_sized_columns_on_a_gpu() -> None:
    grid = Grid(models=("wan2.1-t2v-1.3b", "wan2.2-ti2v-5b"), frames=(17,), steps=(2,))
    analytic = run_sweep(grid)
    assert sweep.headers(analytic) == [
        "model", "size", "frames", "steps", "batch", "cfg", "text_encoder", "vae_encode", "diffusion_core",
        "vae_decode", "total",
    ]  # fmt: skip
    assert sweep.cells(analytic)[0][:7] == ["wan2.1-t2v-1.3b", "832x480", "17", "2", "1", "on", "9.69 TFLOP"]
    assert sweep.cells(analytic)[0][7] == "-"  # text-to-video: no encode
    sized = run_sweep(grid, gpu="h100-sxm")
    assert sweep.headers(sized)[-3:] == ["seconds", "peak memory", "fits"]
    assert [row[-1] for row in sweep.cells(sized)] == ["yes", "yes"]
    table = sweep.to_table(sized).splitlines()  # header, rule, 2 rows; a blank line and the range's evidence
    assert len(table) == 6 and table[0].startswith("model") and table[0].endswith("fits") and table[4] == ""
    assert re.search(r" \d+\.\d \(\d+\.\d-\d+\.\d\) ", table[2])  # seconds (low-high)
    assert table[5].startswith("seconds (low-high): the range published runs")
    doc = json.loads(sweep.to_json(sized))
    assert doc["schema"] == "wanmeter.sweep/1"
    assert doc["rows"][0]["total_flops"] == analytic[0].total_flops


def test_sweep_parquet_keeps_flops_exact() -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    import io

    reports = run_sweep(Grid(models=("wan2.1-t2v-14b",), frames=(161,)))
    frame = pd.read_parquet(io.BytesIO(sweep.to_parquet(reports)))
    assert int(frame["total_flops"][0]) == reports[0].total_flops


def test_models_table_lists_every_preset() -> None:
    described = {name: spec.describe() for name, spec in PRESETS.items()}
    lines = listings.models_to_table(described).splitlines()
    assert len(lines) == 2 + len(PRESETS)
    assert json.loads(listings.models_to_json(described)) == json.loads(json.dumps(described))


def test_gpus_table_marks_each_default_efficiency_by_its_evidence() -> None:
    header, gpus = database()
    defaults = {name: default_efficiency(name) for name in gpus}
    lines = listings.gpus_to_table(header, gpus, defaults).splitlines()
    assert len(lines) == 2 + len(gpus) + 1
    assert lines[-1].startswith("dense peaks; sources:")
    doc = json.loads(listings.gpus_to_json(header, gpus, defaults))
    assert [g["name"] for g in doc["gpus"]] == list(gpus)
    assert set(doc["gpus"][0]["default_efficiency"]) == {"matmul", "attention", "convolution", "memory"}
