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
    # stages.json: 10 diffusers calls; stages_s2v.json: Wan2.2-S2V's 4 VAE calls in the original loop;
    # stages_lightvae.json: LightX2V's bfloat16 decode at 2 sizes, without and with LightVAE; profile.json: the
    # original Wan2.1 WanModel at 3 sizes; profile_original22.json: Wan2.2's at 3; profile_s2v.json: WanModel_S2V,
    # first and later clips at 2 sizes
    assert [c.runtime for c in calls] == ["diffusers"] * 10 + ["wan"] * 4 + ["lightx2v"] * 4 + ["wan"] * 10
    assert {c.gpu for c in calls} == {"h200"} and {c.torch for c in calls} == {"2.11.0"}
    assert [c.optimise for c in calls if c.runtime == "lightx2v"] == ["", "lightvae"] * 2
    by_name = {c.name: c for c in calls}
    big = by_name["h200 diffusers wan2.1-t2v-14b diffusion_core 1280x720x81"]
    assert big.measured_s == pytest.approx(12.4187, abs=1e-4)
    light = by_name["h200 lightx2v wan2.1-t2v-14b vae_decode 832x480x81 --optimise lightvae"]
    assert light.measured_s == pytest.approx(0.5328, abs=1e-4)
    later = by_name["h200 wan wan2.2-s2v-14b diffusion_core_motion 1280x704x80"]
    assert later.measured_s == pytest.approx(19.3376, abs=1e-4)


CUBLAS_WORKSPACE = 32 * 2**20
"""cuBLAS's workspace, made at a process's first matrix product (the 1.3B's in ``measure_stages.py``, the first S2V
forward's in ``measure_profile.py --part s2v``, which counts its warm-up call's peak)."""


def test_the_transformers_activation_peak_is_the_cuda_allocators(calls: list) -> None:  # type: ignore[type-arg]
    # the closed-form peak of one DiT call against torch.cuda.max_memory_allocated less the weights and inputs on
    # the H200: the 14B at 720p to the byte (8,598,435,840 B); every other DiT call within 4.5 MB, and the first
    # call of a process within 4.5 MB of cuBLAS's workspace above it
    dit = [c for c in calls if c.stage.startswith("diffusion_core")]
    assert len(dit) == 15  # 5 in diffusers, 6 in the original WanModel (3 of Wan2.1, 3 of Wan2.2), 4 of S2V
    exact = [c for c in dit if c.measured_activation_bytes == c.predicted_activation_bytes]
    assert [c.name for c in exact] == ["h200 diffusers wan2.1-t2v-14b diffusion_core 1280x720x81"]
    assert exact[0].predicted_activation_bytes == 8_598_435_840
    over = {c.name: c.measured_activation_bytes - c.predicted_activation_bytes for c in dit}
    first = {
        "h200 diffusers wan2.1-t2v-1.3b diffusion_core 832x480x81",
        "h200 wan wan2.2-s2v-14b diffusion_core 1280x704x80",
    }
    assert all(0 <= over[n] - (CUBLAS_WORKSPACE if n in first else 0) <= 4_500_000 for n in over), over


def test_what_s2v_keeps_after_a_call_is_what_the_cuda_allocator_kept() -> None:
    # allocated after the first call less before it: the module's rotary table and audio tensors (s2v_held_bytes),
    # within the allocator's rounding (2 MiB blocks), and in the process's first call cuBLAS's workspace
    from hybrid.models.wan_s2v import s2v_held_bytes
    from hybrid.pipelines import S2V_DIFFUSION_CORE
    from hybrid.workload import Workload

    doc = json.loads((DEVICE_DIR / "h200" / "profile_s2v.json").read_text())["original"]
    assert len(doc) == 4
    for i, case in enumerate(doc):
        width, height, frames = (int(x) for x in case["case"].split()[1].split("x"))
        w = Workload.of("wan2.2-s2v-14b", width=width, height=height, frames=frames)
        held = s2v_held_bytes(S2V_DIFFUSION_CORE.config(w.spec), w.shape(), case["stage"] == "diffusion_core_motion")
        assert 0 <= case["held_bytes"] - held - (CUBLAS_WORKSPACE if i == 0 else 0) <= 2 * 2**20, case["case"]


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
    for other in ("profile.json", "profile_original22.json", "profile_s2v.json", "stages_s2v.json",
                  "stages_lightvae.json"):  # fmt: skip
        (tmp_path / "device" / "h200" / other).unlink()
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
    assert out[0].startswith(f"{'PASS' if summary.passed else 'FAIL'} measured_stages: 28/28 passed, over 28 calls: ")
    assert f"max {100 * v['seconds_max_abs_error']:.1f}% (" in out[0] and len(out) == 1 + 28
    assert out[4].startswith("  ok   h200 diffusers wan2.1-t2v-14b diffusion_core 1280x720x81: ")
    assert out[4].endswith(
        " s measured (" + f"{100 * summary.checks[3].detail['relative_error']:+.1f}%), activation peak +0.0%"
    )
