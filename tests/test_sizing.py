"""wanmeter report --gpu: seconds, bound and peak memory per stage and in total."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hybrid.cli import main
from hybrid.memory import weights_bytes
from hybrid.models import get_preset

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
    all_weights = sum(weights_bytes(spec, s) for s in ("text_encoder", "diffusion_core", "vae_decode"))
    assert doc["total"]["peak_memory_bytes"] > all_weights  # all models resident, plus activations
    assert doc["gpu"]["name"] == "h100-sxm" and doc["gpu"]["calibration"].startswith("test fixture")
    assert any("not on a h100-sxm" in w for w in doc["warnings"])  # the fixture names no GPU
    assert doc["total"]["flops"] == sum(s["flops"] for s in doc["stages"].values())


def test_report_gpu_offload_and_fit_warning(calibration: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", *SMALL, "--gpu", "rtx4090", "--efficiency", str(calibration)]) == 0
    out = capsys.readouterr().out
    assert "on NVIDIA GeForce RTX 4090 (all models resident" in out
    assert "more than the 24 GiB of one rtx4090 without offload (try --offload)" in out
    assert main(["report", *SMALL, "--gpu", "rtx4090", "--efficiency", str(calibration), "--offload"]) == 0
    out = capsys.readouterr().out
    # the 14B DiT alone is 28.6 GB in bf16: it does not fit a 24 GiB card even offloaded
    assert "even with model offload" in out


def test_report_gpu_without_calibration_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--gpu", "h200", "--efficiency", str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err
    assert "gpu: no timing calibration for h200" in err and len(err.strip().splitlines()) == 1
    assert main(["report", "--gpu", "v100"]) == 2
    assert "gpu: unknown GPU 'v100'" in capsys.readouterr().err
