"""The stage calls timed on a lent H200 (``calibration/device/h200``) against the time model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hybrid.measured import DEVICE_DIR, MeasuredBounds, assess, measured_calls
from hybrid.verify import verify_measured_stages


@pytest.fixture(scope="module")
def calls() -> list:  # type: ignore[type-arg]
    return measured_calls()


def test_every_measured_call_is_read_with_its_runtime(calls: list) -> None:  # type: ignore[type-arg]
    # stages.json: 10 diffusers calls; profile.json: the original WanModel at 3 sizes
    assert [c.runtime for c in calls] == ["diffusers"] * 10 + ["wan"] * 3
    assert {c.gpu for c in calls} == {"h200"} and {c.torch for c in calls} == {"2.11.0"}
    by_name = {c.name: c for c in calls}
    big = by_name["h200 diffusers wan2.1-t2v-14b diffusion_core 1280x720x81"]
    assert big.measured_s == pytest.approx(12.4187, abs=1e-4)


def test_the_transformers_activation_peak_is_the_cuda_allocators(calls: list) -> None:  # type: ignore[type-arg]
    # the closed-form peak of one DiT call against torch.cuda.max_memory_allocated less the weights on the H200:
    # the 14B at 720p to the byte (8,598,435,840 B); every other DiT call within 35 MB (cuBLAS's 32 MiB workspace,
    # made at the first product of the 1.3B, the first module the script built)
    dit = [c for c in calls if c.stage == "diffusion_core"]
    assert len(dit) == 8  # 5 in diffusers, 3 in the original code
    exact = [c for c in dit if c.measured_activation_bytes == c.predicted_activation_bytes]
    assert [c.name for c in exact] == ["h200 diffusers wan2.1-t2v-14b diffusion_core 1280x720x81"]
    assert exact[0].predicted_activation_bytes == 8_598_435_840
    assert all(0 <= c.measured_activation_bytes - c.predicted_activation_bytes <= 35_000_000 for c in dit)


def test_the_check_states_its_bounds_and_fails_beyond_them(calls: list) -> None:  # type: ignore[type-arg]
    mean = sum(abs(c.error) for c in calls) / len(calls)
    worst = max(abs(c.error) for c in calls)
    assert assess(calls, MeasuredBounds(seconds_mean=mean, seconds_max=worst))["pass"] is True
    assert assess(calls, MeasuredBounds(seconds_mean=mean * 0.99, seconds_max=worst))["pass"] is False
    assert assess(calls, MeasuredBounds(seconds_mean=mean, seconds_max=worst * 0.99))["pass"] is False
    assert assess([])["pass"] is False


def test_the_verification_fails_when_the_measurements_disagree(tmp_path: Path) -> None:
    # the committed calls with every measured second doubled: the model is then about 50% fast on each
    shutil.copytree(DEVICE_DIR, tmp_path / "device")
    stages = tmp_path / "device" / "h200" / "stages.json"
    doc = json.loads(stages.read_text())
    for case in doc["cases"]:
        case["seconds"] *= 2
    stages.write_text(json.dumps(doc))
    (tmp_path / "device" / "h200" / "profile.json").unlink()
    summary = verify_measured_stages(tmp_path / "device", MeasuredBounds(seconds_mean=0.3, seconds_max=0.7))
    assert not summary.passed
    assert summary.verdict["calls"] == 10 and summary.verdict["seconds_signed_mean_error"] < -0.4
    loose = verify_measured_stages(tmp_path / "device", MeasuredBounds(seconds_mean=1.0, seconds_max=1.0))
    assert loose.passed


def test_without_measurements_the_verification_fails_and_says_why(tmp_path: Path) -> None:
    summary = verify_measured_stages(tmp_path / "absent")
    assert not summary.passed and summary.checks == [] and summary.verdict["reason"] == "no measured calls"


def test_the_cli_prints_the_verdict_and_every_call(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hybrid.cli import main

    summary = verify_measured_stages()
    assert main(["verify", "--only", "measured_stages", "--out-dir", str(tmp_path)]) == (0 if summary.passed else 1)
    out = capsys.readouterr().out.splitlines()
    v = summary.verdict
    assert out[0].startswith(f"{'PASS' if summary.passed else 'FAIL'} measured_stages: 13/13 passed, over 13 calls: ")
    assert f"max {100 * v['seconds_max_abs_error']:.1f}% (" in out[0] and len(out) == 1 + 13
    assert out[4].startswith("  ok   h200 diffusers wan2.1-t2v-14b diffusion_core 1280x720x81: ")
    assert out[4].endswith(
        " s measured (" + f"{100 * summary.checks[3].detail['relative_error']:+.1f}%), activation peak +0.0%"
    )
