"""The FP32 (non-tensor) peak of every GPU: cited, below the tensor paths, a product of SMs, lanes and clock
where the clock is the vendor's, and a field the schema requires."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from hybrid.errors import InputError
from hybrid.hardware import DTYPES, get_gpu, gpu_from_row, gpus
from hybrid.sizing import TENSOR_PATH

ROWS: list[dict[str, Any]] = json.loads((Path(__file__).parent.parent / "hybrid/data/gpus.json").read_text())["gpus"]

FP32_FLOP_PER_CLOCK = {"a100-40gb": 128, "a100-80gb": 128, "a800-80gb": 128, "v100-sxm2-32gb": 128}
"""FP32 FLOP per clock per SM: 64 FP32 cores x 2 (an FMA) on GA100 and GV100; 128 x 2 on every other NVIDIA
part here; 256 per CU on CDNA 3 (the CDNA 3 white paper's Table 1, 'Vector FP32 256')."""


def per_clock(name: str) -> int:
    return FP32_FLOP_PER_CLOCK.get(name, 256)  # 128 lanes x 2, or CDNA 3's 256 per CU


def test_every_gpu_has_a_cited_fp32_peak_below_its_bf16_tensor_peak() -> None:
    # holds on AMD too: CDNA 3's vector FP32 is 163.4 against 1307.4 dense BF16
    assert len(gpus()) == 23
    for g in gpus().values():
        assert 0 < g.fp32_tflops < g.bf16_tflops, g.name
        assert g.peak_flops("fp32") == g.fp32_tflops * 1e12
        assert len(g.fp32_source) > 30, g.name  # a sentence that says where, not a placeholder


def test_fp32_never_beats_the_tf32_tensor_path_and_equals_it_where_accumulation_halves_the_rate() -> None:
    # TF32 on is never slower than the CUDA cores (to the datasheets' rounding, 0.1%); on GeForce and the L40/L20
    # (FP32 accumulate at half rate) dense TF32 is the FP32 rate itself, so float32 stages cost the same either way;
    # on the data-centre parts TF32 is 7.4x (H100 SXM) to 15.6x (GB200) faster than the CUDA cores
    ratio = {g.name: g.peak_flops("tf32") / g.peak_flops("fp32") for g in gpus().values()}
    assert all(r > 0.997 for r in ratio.values()), ratio
    for name in ("rtx4090", "rtx5090", "rtx3090", "rtx4090d", "l40", "l20"):
        assert abs(ratio[name] - 1) < 0.001, name
    assert round(ratio["a100-80gb"], 2) == 8.0 and round(ratio["h100-sxm"], 2) == 7.38  # 156 / 19.5, 494.7 / 67
    assert (ratio["b200"], ratio["gb200"]) == (1125 / 75, 1250 / 80)
    # the V100 has no TF32: its tf32_ratio is this very FP32 rate, 15.7 of 125.3
    v100 = get_gpu("v100-sxm2-32gb")
    assert round(v100.bf16_tflops * v100.tf32_ratio, 1) == v100.fp32_tflops == 15.7


def test_three_datasheet_figures() -> None:
    # H100 SXM: datasheet 67 TFLOPS; 132 SMs x 128 FP32 lanes x 2 x 1980 MHz = 66.9
    assert get_gpu("h100-sxm").peak_flops("fp32") == 67e12 and round(132 * 128 * 2 * 1980e6 / 1e12, 1) == 66.9
    # A100: datasheet 19.5 TFLOPS; 108 SMs x 64 FP32 cores x 2 x 1410 MHz = 19.49
    assert get_gpu("a100-80gb").fp32_tflops == 19.5 == round(108 * 64 * 2 * 1410e6 / 1e12, 1)
    # MI300X: CDNA 3 white paper, vector FP32 163.4 TFLOPS; 304 CUs x 256 FLOP/clock x 2100 MHz = 163.43
    assert get_gpu("mi300x").fp32_tflops == 163.4 == round(304 * 256 * 2100e6 / 1e12, 1)
    assert "'Vector FP32 256 ... 163.4'" in get_gpu("mi300x").fp32_source


def test_fp32_is_sms_times_lanes_times_clock_wherever_the_clock_is_known() -> None:
    # to 0.5% (the H100 PCIe's 51 is 114 x 256 x 1755 MHz = 51.2); the two exceptions say so in their source
    for g in gpus().values():
        product = g.sm_count * per_clock(g.name) * g.boost_clock_mhz * 1e6 / 1e12
        if g.name == "h20":  # 44 is NVIDIA's figure; 78 SMs at the assumed 1980 MHz give only 39.5
            assert round(product, 1) == 39.5 and "2204 MHz" in g.fp32_source
        elif g.name == "gb200":  # NVIDIA's 80 is 148 SMs at 2112 MHz; the assumed 2200 MHz would give 83.4
            assert round(product, 1) == 83.4 and round(148 * 256 * 2112e6 / 1e12, 1) == g.fp32_tflops
        else:
            assert abs(product / g.fp32_tflops - 1) < 0.005, (g.name, product, g.fp32_tflops)


def test_derived_rows_take_their_parents_fp32_peak() -> None:
    assert get_gpu("a800-80gb").fp32_tflops == get_gpu("a100-80gb").fp32_tflops == 19.5
    assert get_gpu("h800").fp32_tflops == get_gpu("h200").fp32_tflops == get_gpu("h100-sxm").fp32_tflops == 67
    assert get_gpu("mi325x").fp32_tflops == get_gpu("mi300x").fp32_tflops


def test_the_schema_requires_the_fp32_peak_and_its_source() -> None:
    row = copy.deepcopy(next(r for r in ROWS if r["name"] == "h800"))
    del row["fp32_tflops"]
    with pytest.raises(InputError, match=r"^gpus.json: h800: field fp32_tflops is missing; valid: a number$"):
        gpu_from_row(row, 12)
    for field, value, said in [
        ("fp32_tflops", 0, "gpus.json: h800: field fp32_tflops is 0; valid: a number > 0"),
        ("fp32_tflops", "67", "gpus.json: h800: field fp32_tflops is '67'; valid: a number > 0"),
        ("fp32_source", "", "gpus.json: h800: field fp32_source is ''; valid: non-empty text"),
    ]:
        bad = {**copy.deepcopy(next(r for r in ROWS if r["name"] == "h800")), field: value}
        with pytest.raises(InputError) as e:
            gpu_from_row(bad, 12)
        assert str(e.value) == said


def test_fp32_is_a_path_but_float32_stages_still_run_on_tf32() -> None:
    # peak_flops knows the CUDA-core path; the time model's float32 stages keep TF32's rate (cuDNN's default for
    # convolutions), so no timing changes with this field
    assert DTYPES[-1] == "fp32" and TENSOR_PATH["float32"] == "tf32"
    with pytest.raises(InputError, match=r"valid: bf16, fp16, fp8, int8, fp4, tf32, fp32$"):
        get_gpu("h100-sxm").peak_flops("fp64")
