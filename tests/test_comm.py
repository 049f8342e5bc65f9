"""calibrate-comm: the line fit, a real run of 2 gloo processes under torchrun, and sizing with
its result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hybrid.comm import INTERCONNECT_SCHEMA, fit_line


def test_fit_line_recovers_bandwidth_and_latency() -> None:
    # seconds = 1e-5 + sent / 1e10
    points = [(n, 1e-5 + n / 1e10) for n in (10**6, 4 * 10**6, 16 * 10**6)]
    fit = fit_line(points)
    assert fit.bytes_per_s == pytest.approx(1e10, rel=1e-9)
    assert fit.latency_s == pytest.approx(1e-5, rel=1e-6)
    # noise that leaves no positive slope: the largest message alone, 2 bytes in 1 s, and it says so
    noisy = fit_line([(1, 2.0), (2, 1.0)])
    assert (noisy.bytes_per_s, noisy.latency_s) == (2.0, 0.0) and "did not grow" in noisy.how
    with pytest.raises(ValueError, match="two or more message sizes"):
        fit_line([(1, 2.0)])


def test_calibrate_comm_runs_on_two_gloo_processes(tmp_path: Path) -> None:
    out = tmp_path / "cpu-gloo.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "hybrid", "calibrate-comm", "--gpu", "cpu-gloo", "--sizes", "65536,262144,1048576",
           "--iters", "5", "-o", str(out)]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["schema"] == INTERCONNECT_SCHEMA and doc["world_size"] == 2 and doc["backend"] == "gloo"
    assert doc["device_name"] == "cpu" and doc["date"] and {"torch", "wanmeter"} <= set(doc["versions"])
    assert {(m["collective"], m["input_bytes"]) for m in doc["measurements"]} == {
        (c, n) for c in ("all_to_all_single", "all_gather_into_tensor", "send_recv") for n in (65536, 262144, 1048576)
    }
    # two ranks: an all-to-all sends half its input, an all-gather all of it
    sent = {(m["collective"], m["input_bytes"]): m["sent_bytes"] for m in doc["measurements"]}
    assert sent[("all_to_all_single", 65536)] == 32768 and sent[("all_gather_into_tensor", 65536)] == 65536
    assert all(f["bytes_per_s"] > 0 and f["latency_s"] >= 0 for f in doc["fits"].values())


def test_calibrate_comm_needs_torchrun(capsys: pytest.CaptureFixture[str]) -> None:
    from hybrid.cli import main

    assert main(["calibrate-comm", "--gpu", "h100-sxm"]) == 2
    assert "launch it with torchrun" in capsys.readouterr().err


def test_report_times_collectives_by_a_committed_interconnect_calibration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hybrid.comm
    from hybrid.deployment import Deployment
    from hybrid.presets import get_preset
    from hybrid.sizing import size_on_gpu
    from hybrid.workload import Workload

    doc = {"schema": INTERCONNECT_SCHEMA, "world_size": 8, "device_name": "NVIDIA H100 80GB HBM3", "backend": "nccl",
           "date": "2026-11-25", "link": {"bytes_per_s": 3e11, "latency_s": 1e-5, "how": "test"}}  # fmt: skip
    (tmp_path / "h100-sxm.json").write_text(json.dumps(doc))
    monkeypatch.setattr(hybrid.comm, "INTERCONNECT_DIR", tmp_path)
    spec = get_preset("wan2.1-t2v-14b")
    sized = size_on_gpu(Workload.of(spec), "h100-sxm", deployment=Deployment(gpus=8, ulysses=8))
    # 13,555,987,200 bytes and 161 calls per forward, 100 forwards, at 300 GB/s and 10 us
    expected = 100 * (13_555_987_200 / 3e11 + 161 * 1e-5)
    assert sized.stages["diffusion_core"].comm_seconds == pytest.approx(expected, rel=1e-12)
    assert sized.gpu_link["kind"] == "calibrated" and "calibrate-comm on 8 x NVIDIA H100" in sized.gpu_link["evidence"]
    (tmp_path / "h100-sxm.json").write_text(json.dumps({**doc, "link": {"bytes_per_s": -1, "latency_s": 0}}))
    with pytest.raises(ValueError, match=r"link\.bytes_per_s must be > 0"):
        size_on_gpu(Workload.of(spec), "h100-sxm", deployment=Deployment(gpus=8, ulysses=8))
