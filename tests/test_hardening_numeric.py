"""Bad and extreme input, second round (issue 22): the numeric and workload items (1, 2, 4, 7, 9, 10,
11, 18, 19), each with a test that failed before its fix. One line on stderr, exit 2, never a
traceback, never minutes or gigabytes."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hybrid.cli import main

from .conftest import one_line_error, run_cli

# --- 1, 7: the two-expert split, in arithmetic --------------------------------------------------


@pytest.mark.parametrize("shift", ["1e-17", "1e-300", "5e-324"])
def test_1_a_flow_shift_the_scheduler_cannot_divide_by_is_one_line(
    shift: str, capsys: pytest.CaptureFixture[str]
) -> None:
    one_line_error(["report", "--model", "wan2.2-t2v-a14b", "--flow-shift", shift], capsys, "flow_shift", "1e-06")


def test_1_the_smallest_valid_flow_shift_and_a_huge_one_split_the_steps() -> None:
    from hybrid.sampler import MIN_FLOW_SHIFT, high_noise_steps

    # shift 1e-6 squeezes every sigma but the first towards 0: only the first timestep (999) is high noise
    assert high_noise_steps(40, MIN_FLOW_SHIFT, 0.875) == 1
    assert high_noise_steps(40, 1e300, 0.875) == 40  # every shifted sigma rounds to 1: t = 1000 (the first 999)


def _numpy_timesteps(steps: int, shift: float, original: bool) -> Any:
    """The schedulers' own numpy arithmetic (diffusers' ``UniPCMultistepScheduler.set_timesteps``
    with flow sigmas; the Wan repositories' ``FlowUniPCMultistepScheduler``), vectorised."""
    import numpy as np

    start = float(np.float32(1 - 1 / 1000)) if original else 1.0
    sigmas = np.linspace(start, 0.0 if original else 1 / 1000, steps + 1)[:-1]
    sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
    if not original and abs(sigmas[0] - 1) < 1e-6:
        sigmas[0] -= 1e-6
    return (sigmas * 1000).astype(np.int64)


@pytest.mark.parametrize("original", [False, True])
def test_7_high_noise_steps_in_closed_form_equal_the_timestep_lists(original: bool) -> None:
    """Every step count up to 2,000 at the presets' shifts (12, 5) and three others, both
    boundaries: the count found by bisection is exactly the count over the scheduler's array."""
    from hybrid.sampler import flow_timesteps, high_noise_steps, wan_flow_timesteps

    listed = wan_flow_timesteps if original else flow_timesteps
    for shift in (12.0, 5.0, 3.0, 1.0, 0.5):
        assert _numpy_timesteps(997, shift, original).tolist() == listed(997, shift)
        for steps in range(1, 2001):
            ts = _numpy_timesteps(steps, shift, original)
            for boundary in (0.875, 0.9):
                expected = int((ts >= boundary * 1000).sum())
                assert high_noise_steps(steps, shift, boundary, original=original) == expected, (steps, shift)


def test_7_a_hundred_million_and_1e30_steps_split_in_no_time(capsys: pytest.CaptureFixture[str]) -> None:
    from hybrid.sampler import high_noise_steps

    start = time.perf_counter()
    assert high_noise_steps(10**8, 12.0, 0.875) == 63_221_116  # the list's count, computed once (12 s, 5.9 GB)
    code, out, _ = run_cli(["report", "--model", "wan2.2-t2v-a14b", "--steps", str(10**30), "--format", "json"], capsys)
    assert code == 0 and f'"steps": {10**30}' in out
    assert time.perf_counter() - start < 2


def test_7_steps_beyond_a_float_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    one_line_error(["report", "--model", "wan2.2-t2v-a14b", "--steps", str(10**400)], capsys, "steps", "float")


# --- 9: layouts of a model with a trillion heads -------------------------------------------------


def _model_dir(root: Any, component: str, config: dict[str, Any]) -> str:
    import json

    (root / component).mkdir(parents=True)
    (root / component / "config.json").write_text(json.dumps(config))
    return str(root)


def test_9_a_trillion_heads_list_only_the_degrees_a_layout_can_have(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _model_dir(tmp_path, "transformer", {"num_attention_heads": 10**12})
    start = time.perf_counter()
    line = one_line_error(
        ["report", "--model-dir", folder, "--gpu", "h100-sxm", "--gpus", "7", "--ulysses", "7"], capsys, "ulysses"
    )
    assert line.endswith("valid (up to 72 GPUs): 1, 2, 4, 5, 8, 10, 16, 20, 25, 32, 40, 50, 64"), line
    code, out, _ = run_cli(
        ["plan", "--model-dir", folder, "--gpu", "h100-sxm", "--gpus", "8", "--format", "json"], capsys
    )
    assert code == 0 and '"best"' in out
    assert time.perf_counter() - start < 5


def test_9_a_preset_still_lists_every_divisor_of_its_heads() -> None:
    from hybrid.deployment import Deployment
    from hybrid.errors import InputError
    from hybrid.presets import get_preset
    from hybrid.runtime import DIFFUSERS

    with pytest.raises(InputError) as e:
        Deployment(gpus=3, ulysses=3).check(get_preset("wan2.1-t2v-14b"), DIFFUSERS)
    assert str(e.value).endswith("attention heads of wan2.1-t2v-14b; valid: 1, 2, 4, 5, 8, 10, 20, 40")


# --- 2, 18: diff reads back anything wanmeter writes, and integers only where integers are ------


BIG_FRAMES = str(4 * 10**200 + 1)


@pytest.fixture(scope="module")
def extreme_reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("extreme")
    small, big = str(folder / "small.json"), str(folder / "big.json")
    assert main(["report", "--format", "json", "-o", small]) == 0
    assert main(["report", "--frames", BIG_FRAMES, "--format", "json", "-o", big]) == 0
    return small, big


@pytest.mark.parametrize("fmt", ["table", "markdown", "json"])
def test_2_diff_of_a_report_at_4e200_frames_renders_every_ratio(
    fmt: str, extreme_reports: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    from fractions import Fraction

    small, big = extreme_reports
    for old, new in ((small, big), (big, small)):
        start = time.perf_counter()
        code, out, err = run_cli(["diff", old, new, "--format", fmt], capsys)
        assert code == 1 and err == "" and time.perf_counter() - start < 2
        assert "inf" not in out.lower().replace("info", "") and "nan" not in out.lower()
        if fmt != "json":
            continue

        def refuse(name: str) -> None:
            raise AssertionError(f"not JSON: {name}")

        doc = json.loads(out, parse_constant=refuse)
        deltas = [d for section in doc["sections"].values() for d in section]
        beyond_a_float = 0
        for d in deltas:
            exact = Fraction(d["new"] - d["old"], d["old"])
            if abs(exact) < Fraction(sys.float_info.max):
                assert d["relative"] == float(exact), d
            else:  # the attention scores grow with the tokens squared: over 1e400 times
                beyond_a_float += 1
                assert d["relative"] == (sys.float_info.max if exact > 0 else -sys.float_info.max), d
        assert beyond_a_float >= (2 if old == small else 0)


def test_2_a_ratio_beyond_a_float_renders_exactly_in_the_table() -> None:
    from hybrid.diff import Delta
    from hybrid.render.diff import relative_text

    d = Delta("vae_decode attention", 3, 10**400)
    assert d.relative == 1.7976931348623157e308 and relative_text(d) == "+3.333e+401%"
    assert relative_text(Delta("x", 10**400, 1)) == "-100%" and Delta("x", 10**400, 1).relative == -1.0


@pytest.mark.parametrize("value", ["1e300", "4.0", "1E+2"])
def test_18_diff_refuses_a_count_written_as_a_fraction_or_exponent(
    value: str, extreme_reports: tuple[str, str], tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    small, _ = extreme_reports
    text = json.dumps(json.loads(Path(small).read_text()))
    bad = tmp_path / "bad.json"
    bad.write_text(text.replace('"total": {"flops": ', f'"total": {{"flops": {value}, "x": ', 1))
    one_line_error(["diff", small, str(bad)], capsys, str(bad), "$.total.flops", "is not of type 'integer'")


# --- 4: every field of an efficiency file, validated ---------------------------------------------


_EFFICIENCY = (
    '{"schema": "wanmeter.efficiency/1", "name": "h100-sxm", "device_name": "NVIDIA H100", "date": "2026-11-25", '
    '"versions": {"torch": "2.13.0"}, "efficiency": {"matmul": 0.7, "attention": 0.5, "convolution": 0.4, '
    '"memory": 0.8}, "launch_overhead_s": 1e-05, "peak_flops": 9.9e14, "measurements": [], "held_out": []}'
)
HUGE_INT = "1" + "0" * 400


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ('"launch_overhead_s": 1e-05', f'"launch_overhead_s": {HUGE_INT}', "launch_overhead_s = 1000"),
        ('"launch_overhead_s": 1e-05', '"launch_overhead_s": 1e400', "launch_overhead_s = inf"),
        ('"launch_overhead_s": 1e-05', '"launch_overhead_s": 2.5', "valid: a number from 0 to 1"),
        ('"matmul": 0.7', f'"matmul": {HUGE_INT}', "efficiency.matmul = 1000"),
        ('"name": "h100-sxm"', '"name": 1e400', "name: must be a string"),
        ('"device_name": "NVIDIA H100"', '"device_name": 7', "device_name: must be a string"),
        ('"date": "2026-11-25"', '"date": [1]', "date: must be a string"),
        ('"torch": "2.13.0"', f'"torch": {HUGE_INT}', "versions.torch: must be a string"),
        ('"peak_flops": 9.9e14', f'"peak_flops": {HUGE_INT}', "peak_flops = 1000"),
        ('"peak_flops": 9.9e14', '"peak_flops": -1', "peak_flops = -1"),
        ('"measurements": []', '"measurements": 5', "measurements: must be an array"),
        ('"held_out": []', '"held_out": {}', "held_out: must be an array"),
        ('"held_out": []', '"held_out": [], "defaults": "yes"', "defaults: must be true or false"),
        ('"held_out": []', '"held_out": [], "overridden": [1e400]', "overridden: must be an array of strings"),
        ('"held_out": []', '"held_out": [], "provenance": {"matmul": 5}', "provenance.matmul: must be an object"),
        ('"held_out": []', '"held_out": [], "provenance": {"fft": {}}', "provenance: unknown op class 'fft'"),
        (
            '"held_out": []',
            '"held_out": [], "provenance": {"matmul": {"value": 1e400, "kind": "measured", "evidence": "x"}}',
            "provenance.matmul.value = inf",
        ),
    ],
    ids=lambda v: str(v)[:30],
)
def test_4_every_field_of_an_efficiency_file_is_one_line(
    old: str, new: str, needle: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert old in _EFFICIENCY
    path = tmp_path / "eff.json"
    path.write_text(_EFFICIENCY.replace(old, new, 1))
    one_line_error(["report", "--gpu", "h100-sxm", "--efficiency", str(path)], capsys, str(path), needle)


def test_4_a_valid_efficiency_file_sizes(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "eff.json"
    path.write_text(_EFFICIENCY)
    code, out, err = run_cli(["report", "--gpu", "h100-sxm", "--efficiency", str(path), "--format", "json"], capsys)
    assert code == 0 and '"calibration": "NVIDIA H100 on 2026-11-25 (2.13.0)"' in out, err


# --- 10: a sweep's size is stated and bounded ------------------------------------------------------


def test_10_a_sweep_of_a_million_rows_is_refused_before_any_work(capsys: pytest.CaptureFixture[str]) -> None:
    frames = ",".join(str(4 * k + 1) for k in range(1000))
    steps = ",".join(str(k) for k in range(1, 1001))
    start = time.perf_counter()
    line = one_line_error(["sweep", "--frames", frames, "--steps", steps], capsys, "1,000,000 rows", "--max-rows")
    assert "10,000" in line and time.perf_counter() - start < 2


def test_10_max_rows_lets_a_larger_sweep_run(capsys: pytest.CaptureFixture[str]) -> None:
    from hybrid.sweep import MAX_ROWS, Grid

    assert MAX_ROWS == 10_000 and Grid(("wan2.1-t2v-1.3b",), frames=(1, 5), steps=(1, 2, 3)).rows() == 6
    argv = ["sweep", "--model", "wan2.1-t2v-1.3b", "--frames", "1,5,9", "--steps", "1,2,3,4", "--format", "csv"]
    one_line_error([*argv, "--max-rows", "11"], capsys, "12 rows", "--max-rows 12")
    code, out, _ = run_cli([*argv, "--max-rows", "12"], capsys)
    assert code == 0 and len(out.splitlines()) == 1 + 12


# --- 11: limits on the work a workload asks for, stated --------------------------------------------


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["--frames", "4093", "--size", "64x48", "--stage", "vae_decode"], ("frames:", "1,024 times", "at most 128")),
        (
            ["--model", "wan2.1-vace-1.3b", "--ref-images", "1000", "--size", "64x48", "--stage", "vae_encode"],
            ("ref_images:", "1,042 times", "at most 128"),
        ),
        (["--model", "wan2.1-i2v-14b-480p", "--frames", "601", "--stage", "all"], ("frames:", "151 times")),
    ],
)
def test_11_trace_refuses_more_vae_calls_than_it_can_walk(
    argv: list[str], needles: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    start = time.perf_counter()
    line = one_line_error(["trace", *argv], capsys, *needles, "the analytic report has no such limit")
    assert time.perf_counter() - start < 5, line  # refused before torch is imported


def test_11_the_report_of_what_trace_refuses_is_fast(capsys: pytest.CaptureFixture[str]) -> None:
    start = time.perf_counter()
    for argv in (["--frames", "4093", "--size", "64x48"], ["--model", "wan2.1-vace-1.3b", "--ref-images", "1000"]):
        code, out, _ = run_cli(["report", *argv, "--gpu", "h100-sxm", "--format", "json"], capsys)
        assert code == 0 and '"vae_decode"' in out
    assert time.perf_counter() - start < 3


def test_11_trace_limit_scales_with_the_residual_blocks(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _model_dir(tmp_path, "vae", {"num_res_blocks": 20})
    argv = ["trace", "--model-dir", folder, "--size", "64x64", "--stage", "vae_decode"]
    one_line_error([*argv, "--frames", "81"], capsys, "frames:", "21 times", "at most 18 (at 20 residual blocks")


@pytest.mark.parametrize("blocks", [65, 10**7])
def test_11_a_vae_of_ten_million_residual_blocks_is_one_line(
    blocks: int, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _model_dir(tmp_path, "vae", {"num_res_blocks": blocks})
    start = time.perf_counter()
    one_line_error(["report", "--model-dir", folder], capsys, "num_res_blocks", "at most 64", "published")
    assert time.perf_counter() - start < 2


def test_11_a_vae_of_64_residual_blocks_reports(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _model_dir(tmp_path, "vae", {"num_res_blocks": 64})
    code, out, _ = run_cli(["report", "--model-dir", folder, "--gpu", "h100-sxm", "--format", "json"], capsys)
    assert code == 0 and '"vae_decode"' in out


# --- 19: A14B experts on several GPUs under the original code -------------------------------------


def test_19_the_report_says_why_both_experts_stay_on_every_rank() -> None:
    from hybrid.deployment import Deployment
    from hybrid.runtime import Runtime
    from hybrid.sizing import size_on_gpu
    from hybrid.workload import Workload

    w = Workload.of("wan2.2-t2v-a14b", runtime=Runtime(name="wan"))
    one = size_on_gpu(w, "h100-sxm")
    two = size_on_gpu(w, "h100-sxm", deployment=Deployment(gpus=2, ulysses=2, fsdp=("dit",)))
    note = "on several GPUs both experts stay on every rank through every stage"
    assert not any(note in a for a in one.assumptions)
    assert any(note in a and "self.init_on_cpu = False" in a and "world_size > 1" in a for a in two.assumptions)
    # the text encoder's stage holds each fp32 expert's half (and FSDP's gathered units) on top of one GPU's
    params = w.spec.parameter_counts()
    halves = 4 * (params["transformer"] + params["transformer_2"]) // 2
    more = two.stages["text_encoder"].weights_bytes - one.stages["text_encoder"].weights_bytes
    assert halves <= more < halves * 1.05, (more, halves)


# --- the report at any size: the VAE's chunk loop in closed form for every sink --------------------


@pytest.mark.parametrize("model", ["wan2.1-t2v-1.3b", "wan2.2-ti2v-5b", "wan2.1-vace-1.3b", "wan2.1-i2v-14b-480p"])
def test_the_vae_peak_skipping_alike_chunks_equals_walking_every_chunk(
    model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hybrid import analytic
    from hybrid.models import wan_vae
    from hybrid.presets import get_preset
    from hybrid.workload import Workload

    spec = get_preset(model)
    stages = [s for s in spec.pipeline_def.stages if s.component == "vae"]
    for frames in (1, 5, 13, 17, 21, 29, 45):
        if spec.vae.is_residual and frames > 1 and any(s.name == "vae_encode" for s in stages):
            stages = [s for s in stages if s.name != "vae_encode"]  # Wan2.2's encoder walks one frame
        w = Workload.of(model, width=64, height=64, frames=frames)
        call = w.shape()
        peaks = []
        for skip in (True, False):
            monkeypatch.setattr(wan_vae, "SKIP_ALIKE_CHUNKS", skip)
            analytic.clear_memos()
            peaks.append([(sd.closed_peak(spec, call), sd.closed_peak(spec, call, True)) for sd in stages])
        assert peaks[0] == peaks[1], (model, frames)


def test_the_report_on_a_gpu_at_4e200_frames_is_one_line_or_a_result(capsys: pytest.CaptureFixture[str]) -> None:
    start = time.perf_counter()
    code, _, err = run_cli(["report", "--frames", BIG_FRAMES, "--gpu", "h100-sxm", "--format", "json"], capsys)
    assert code == 2 and "beyond a float's range" in err and time.perf_counter() - start < 3
    code, out, _ = run_cli(["report", "--frames", "4000001", "--gpu", "h100-sxm", "--format", "json"], capsys)
    assert code == 0 and '"peak_memory_bytes"' in out and time.perf_counter() - start < 5
