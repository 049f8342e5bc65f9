"""The hardware database: every GPU the issue names, cited, with sane units."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hybrid.cli import main
from hybrid.hardware import (
    database,
    default_efficiency,
    get_gpu,
    gpus,
    host_cpu_flops,
    host_link_efficiency,
    kernel_efficiency,
)
from hybrid.timing import OP_CLASSES

NAMES = [
    "rtx4090", "rtx5090", "a100-40gb", "a100-80gb", "h100-pcie", "h100-sxm", "h200", "h20", "b200", "l40s", "mi300x",
    "a800-80gb", "h800", "l20", "l40", "rtx3090", "rtx4090d", "rtx-a6000", "rtx6000-ada", "v100-sxm2-32gb", "gb200",
    "b300", "mi325x",
]  # fmt: skip


def test_every_named_gpu_is_there_with_a_source() -> None:
    header, table = database()
    assert list(table) == NAMES
    assert header["schema"] == "wanmeter.gpus/1" and header["retrieved"] == "2026-12-03"
    for g in table.values():
        assert g.source and g.source_url.startswith("https://")
        assert g.bf16_tflops == g.fp16_tflops > 0  # dense bf16 and fp16 tensor rates are equal on all of them
        assert g.fp8_tflops is None or g.fp8_tflops >= g.bf16_tflops
        assert 100 < g.memory_bandwidth_gbs < 10_000 and 16 <= g.memory_gib <= 288
        # PCIe x16 in one direction: Gen3 15.75 -> 16, Gen4 31.5 -> 32, Gen5 63 -> 64, Gen6 126 -> 128 GB/s (half the
        # datasheets' both-ways); the GB200's GPUs reach their Grace CPU over NVLink-C2C instead
        if g.name == "gb200":
            assert "NVLink-C2C" in g.host_link and g.host_link_gbs == 900 / 2 / 2
            continue
        generation = next(n for n in (3, 4, 5, 6) if f"Gen{n}" in g.host_link or f"{n}.0" in g.host_link)
        assert g.host_link_gbs == {3: 16, 4: 32, 5: 64, 6: 128}[generation]
        assert g.host_link_bytes_per_s == g.host_link_gbs * 1e9


def test_h100_sxm_numbers() -> None:
    g = get_gpu("H100-SXM")
    # datasheet: 1,979 TFLOPS bf16 with sparsity -> 989.4 dense; 3.35 TB/s; 80 GB
    assert g.peak_flops("bf16") == 989.4e12
    assert g.memory_bandwidth_bytes_per_s == 3.35e12
    assert g.memory_bytes == 80 * 2**30


def test_h20_numbers_and_the_hopper_attention_kernel() -> None:
    g = get_gpu("h20")
    # 148 TFLOP/s dense bf16, 4.0 TB/s, 96 GB, PCIe Gen5
    assert (g.peak_flops("bf16"), g.memory_bandwidth_bytes_per_s, g.memory_bytes) == (148e12, 4.0e12, 96 * 2**30)
    assert g.architecture == "Hopper" and g.host_link_bytes_per_s == 64e9
    fa3 = kernel_efficiency("fa3", g)
    assert fa3 is not None and (fa3.value, fa3.kind) == (0.75, "kernel") and "740 TFLOP/s" in fa3.evidence
    assert kernel_efficiency("fa3", get_gpu("a100-80gb")) is None  # Hopper only
    assert host_link_efficiency().value == 0.7 and "20-40%" in host_link_efficiency().evidence
    assert host_cpu_flops()[0] == 1e12 and host_cpu_flops()[1].startswith("assumed")


def test_no_fp8_on_a100() -> None:
    with pytest.raises(ValueError, match="dtype: a100-80gb has no fp8 tensor path"):
        get_gpu("a100-80gb").peak_flops("fp8")


def test_unknown_gpu_lists_valid_names() -> None:
    with pytest.raises(ValueError) as e:
        get_gpu("v100")
    assert str(e.value) == f"gpu: unknown GPU 'v100'; valid: {', '.join(NAMES)}"
    assert len(gpus()) == 23


def test_cli_gpus(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gpus"]) == 0
    out = capsys.readouterr().out
    assert "h100-sxm        NVIDIA H100 SXM5" in out and "v100-sxm2-32gb  NVIDIA Tesla V100 SXM2 32GB" in out
    assert main(["gpus", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [g["name"] for g in doc["gpus"]] == NAMES


def test_default_efficiencies_are_cited_and_exact() -> None:
    doc = json.loads((Path(__file__).parent.parent / "hybrid/data/efficiency_defaults.json").read_text())
    assert doc["schema"] == "wanmeter.efficiency-defaults/1" and list(doc["gpus"]) == NAMES
    for owner, table in [*doc["gpus"].items(), *doc["measurements"].items()]:
        for op_class, entry in table.items():
            if "achieved_tflops" in entry:  # the value is the cited ratio, rounded to 3 places
                assert entry["value"] == round(entry["achieved_tflops"] / entry["peak_tflops"], 3), (owner, op_class)
    for name in NAMES:
        d = default_efficiency(name)
        assert list(d.classes) == list(OP_CLASSES)
        for e in d.classes.values():
            assert 0 < e.value <= 1 and e.evidence and e.source_url.startswith("https://")
    # H100 SXM: 794.5 / 989 = 0.803 (MAMF), FlashAttention-2 35%, 2.8 / 3.35 TB/s = 0.84
    h100 = default_efficiency("h100-sxm")
    assert h100.efficiency == {"matmul": 0.803, "attention": 0.35, "convolution": 0.803, "memory": 0.84}
    assert h100.borrowed() == [] and h100.classes["convolution"].kind == "derived"
    # A100: 271.2 / 312 = 0.869; FlashAttention-2's 73%
    assert default_efficiency("a100-80gb").efficiency["matmul"] == 0.869
    assert default_efficiency("a100-80gb").efficiency["attention"] == 0.73
    # MI300X: 668.4 / 1300 = 0.514; its attention has no public figure and is borrowed
    assert default_efficiency("mi300x").borrowed() == ["attention", "memory"]


def test_cli_gpus_lists_default_efficiencies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gpus"]) == 0
    out = capsys.readouterr().out
    assert "eff matmul" in out and "0.803" in out and "0.729*" in out
    assert main(["gpus", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    h100 = next(g for g in doc["gpus"] if g["name"] == "h100-sxm")
    assert h100["default_efficiency"]["attention"]["value"] == 0.35


def test_the_dtype_table_counts_every_dtype() -> None:
    from hybrid.dtypes import DTYPES, dtype, nbytes

    assert {d.name: d.bytes for d in DTYPES.values()} == {
        "float32": 4, "bfloat16": 2, "float16": 2, "float8": 1, "float64": 8, "int64": 8, "bool": 1,
    }  # fmt: skip
    assert dtype("bf16") is dtype("bfloat16") and dtype("half").name == "float16" and nbytes("fp8") == 1
    with pytest.raises(ValueError, match="dtype: unknown dtype 'int3'; valid: float32, bfloat16"):
        dtype("int3")


def test_a_float16_component_weighs_two_bytes_a_parameter() -> None:
    # the original Wan code loads CLIP in float16: 630,766,080 parameters x 2 bytes
    from hybrid.memory import pipeline_memory
    from hybrid.presets import get_preset
    from hybrid.runtime import Runtime

    spec = get_preset("wan2.1-i2v-14b-480p")
    assert spec.parameter_counts()["image_encoder"] == 630_766_080
    memory = pipeline_memory(spec, {s: 0 for s in spec.pipeline_def.stage_names}, Runtime("wan"))
    assert memory.weights_bytes["image_encoder"] == 1_261_532_160


def test_tf32_is_a_gpu_fact() -> None:
    # float32 stages run at dense TF32: half the dense BF16 peak on the H100 SXM (989.4 -> 494.7 TFLOP/s)
    from hybrid.hardware import get_gpu

    g = get_gpu("h100-sxm")
    assert g.tf32_ratio == 0.5 and g.peak_flops("tf32") == 494.7e12 == g.peak_flops("bf16") / 2
