"""The hardware database: every GPU the issue names, cited, with sane units."""

from __future__ import annotations

import json

import pytest

from hybrid.cli import main
from hybrid.hardware import database, get_gpu, gpus

NAMES = ["rtx4090", "rtx5090", "a100-40gb", "a100-80gb", "h100-pcie", "h100-sxm", "h200", "b200", "l40s", "mi300x"]


def test_every_named_gpu_is_there_with_a_source() -> None:
    header, table = database()
    assert list(table) == NAMES
    assert header["schema"] == "wanmeter.gpus/1" and header["retrieved"] == "2026-11-25"
    for g in table.values():
        assert g.source and g.source_url.startswith("https://")
        assert g.bf16_tflops == g.fp16_tflops > 0  # dense bf16 and fp16 tensor rates are equal on all ten
        assert g.fp8_tflops is None or g.fp8_tflops >= g.bf16_tflops
        assert 100 < g.memory_bandwidth_gbs < 10_000 and 16 <= g.memory_gib <= 256


def test_h100_sxm_numbers() -> None:
    g = get_gpu("H100-SXM")
    # datasheet: 1,979 TFLOPS bf16 with sparsity -> 989.4 dense; 3.35 TB/s; 80 GB
    assert g.peak_flops("bf16") == 989.4e12
    assert g.memory_bandwidth_bytes_per_s == 3.35e12
    assert g.memory_bytes == 80 * 2**30


def test_no_fp8_on_a100() -> None:
    with pytest.raises(ValueError, match="dtype: a100-80gb has no fp8 tensor path"):
        get_gpu("a100-80gb").peak_flops("fp8")


def test_unknown_gpu_lists_valid_names() -> None:
    with pytest.raises(ValueError) as e:
        get_gpu("v100")
    assert str(e.value) == f"gpu: unknown GPU 'v100'; valid: {', '.join(NAMES)}"
    assert len(gpus()) == 10


def test_cli_gpus(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gpus"]) == 0
    out = capsys.readouterr().out
    assert "h100-sxm   NVIDIA H100 SXM5" in out
    assert main(["gpus", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [g["name"] for g in doc["gpus"]] == NAMES
