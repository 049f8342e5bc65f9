"""Bad and extreme input, second round (issue 22): the numeric and workload items (1, 2, 4, 7, 9, 10,
11, 18, 19), each with a test that failed before its fix. One line on stderr, exit 2, never a
traceback, never minutes or gigabytes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from hybrid.cli import main


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    code, _, err = _run(argv, capsys)
    assert code == 2, (argv, err)
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line and line.startswith("wanmeter: error: "), line
    assert len(line) <= 300, line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


# --- 1, 7: the two-expert split, in arithmetic --------------------------------------------------


@pytest.mark.parametrize("shift", ["1e-17", "1e-300", "5e-324"])
def test_1_a_flow_shift_the_scheduler_cannot_divide_by_is_one_line(
    shift: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _one_line_error(["report", "--model", "wan2.2-t2v-a14b", "--flow-shift", shift], capsys, "flow_shift", "1e-06")


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
    code, out, _ = _run(["report", "--model", "wan2.2-t2v-a14b", "--steps", str(10**30), "--format", "json"], capsys)
    assert code == 0 and f'"steps": {10**30}' in out
    assert time.perf_counter() - start < 2


def test_7_steps_beyond_a_float_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(["report", "--model", "wan2.2-t2v-a14b", "--steps", str(10**400)], capsys, "steps", "float")
