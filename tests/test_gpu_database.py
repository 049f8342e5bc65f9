"""The GPU database row by row: every field present, positive and cited; the derived rows follow from the
rows they are derived from by the stated arithmetic; a broken row is one line naming the GPU and the field;
every GPU sizes a job; and the dtype table's byte sizes are torch's."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from hybrid.errors import InputError
from hybrid.hardware import GPU_FIELDS, database, default_efficiency, get_gpu, gpu_from_row, gpus

ROWS: list[dict[str, Any]] = json.loads((Path(__file__).parent.parent / "hybrid/data/gpus.json").read_text())["gpus"]
NEW = ["a800-80gb", "h800", "l20", "l40", "rtx3090", "rtx4090d", "rtx-a6000", "rtx6000-ada", "v100-sxm2-32gb", "gb200",
       "b300", "mi325x"]  # fmt: skip
NUMBERS = [f for f, kind in GPU_FIELDS.items() if kind in ("number", "integer")]


def test_every_gpu_row_has_every_field_positive_and_cited() -> None:
    assert len(ROWS) == 23 and [r["name"] for r in ROWS][-12:] == NEW
    for row in ROWS:
        assert list(row) == list(GPU_FIELDS), row["name"]  # every field, in the schema's order, no other
        for field in NUMBERS:
            assert row[field] > 0 and not isinstance(row[field], bool), (row["name"], field)
        assert isinstance(row["sm_count"], int) and isinstance(row["boost_clock_mhz"], int)
        assert row["fp8_tflops"] is None or row["fp8_tflops"] > 0
        for field in ("source", "host_link", "gpu_link", "sm_clock_l2_source"):
            assert len(row[field]) > 30, (row["name"], field)  # a sentence that says where, not a placeholder
        assert row["source_url"].startswith("https://")
        g = get_gpu(row["name"])
        assert (g.sm_count, g.boost_clock_mhz, g.l2_cache_mib) == (row["sm_count"], row["boost_clock_mhz"],
                                                                   row["l2_cache_mib"])  # fmt: skip
        assert g.to_dict() == row  # the listing writes back exactly what the file says


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("sm_count", 0, "gpus.json: h800: field sm_count is 0; valid: a integer > 0"),
        ("sm_count", 132.0, "gpus.json: h800: field sm_count is 132.0; valid: a integer > 0"),
        ("boost_clock_mhz", -1980, "gpus.json: h800: field boost_clock_mhz is -1980; valid: a integer > 0"),
        ("l2_cache_mib", True, "gpus.json: h800: field l2_cache_mib is True; valid: a number > 0"),
        ("bf16_tflops", float("nan"), "gpus.json: h800: field bf16_tflops is nan; valid: a number > 0"),
        ("sm_clock_l2_source", " ", "gpus.json: h800: field sm_clock_l2_source is ' '; valid: non-empty text"),
        ("source_url", "http://x", "gpus.json: h800: field source_url is 'http://x'; valid: an https:// address"),
    ],
)
def test_a_bad_field_is_one_line_naming_the_gpu_and_the_field(field: str, value: object, said: str) -> None:
    row = copy.deepcopy(next(r for r in ROWS if r["name"] == "h800"))
    row[field] = value
    with pytest.raises(InputError) as e:
        gpu_from_row(row, 12)
    assert str(e.value) == said and "\n" not in said


def test_a_missing_or_unknown_field_is_named_too() -> None:
    row = copy.deepcopy(ROWS[0])
    del row["l2_cache_mib"]
    with pytest.raises(InputError, match=r"^gpus.json: rtx4090: field l2_cache_mib is missing; valid: a number$"):
        gpu_from_row(row, 0)
    with pytest.raises(InputError, match=r"^gpus.json: gpus\[3\]: field name is missing; valid: a text$"):
        gpu_from_row({"product": "x"}, 3)
    with pytest.raises(InputError, match=r"^gpus.json: rtx4090: unknown field sm_per_gpc; valid: name, product"):
        gpu_from_row({**ROWS[0], "sm_per_gpc": 6}, 0)


def test_peaks_are_sms_times_rate_per_sm_times_clock_where_the_vendor_quotes_them_at_boost() -> None:
    # dense BF16 FLOP per clock per SM (CU): GeForce Ada/Blackwell and the L40 512 (FP32 accumulate at half rate),
    # A100 2048, CDNA 3 2048; each product rounds to the datasheet's figure
    for name, per_sm, tflops in [
        ("rtx4090", 512, 165.2),  # 128 x 512 x 2520 MHz
        ("rtx5090", 512, 209.5),  # 170 x 512 x 2407 MHz
        ("a100-80gb", 2048, 311.9),  # 108 x 2048 x 1410 MHz: the datasheet's 312
        ("l40", 512, 181.0),  # 142 x 512 x 2490 MHz: the datasheet's 181.05
        ("mi300x", 2048, 1307.4),  # 304 x 2048 x 2100 MHz
        ("mi325x", 2048, 1307.4),
    ]:
        g = get_gpu(name)
        assert round(g.sm_count * per_sm * g.boost_clock_mhz * 1e6 / 1e12, 1) == tflops, name


def test_derived_rows_follow_from_their_parents() -> None:
    a100, h100, rtx4090, l40s = (get_gpu(n) for n in ("a100-80gb", "h100-sxm", "rtx4090", "l40s"))
    # A800 = A100 80GB SXM with NVLink 3 cut from 600 to 400 GB/s both ways: 200 per direction
    a800 = get_gpu("a800-80gb")
    assert (a800.bf16_tflops, a800.memory_bandwidth_gbs, a800.memory_gib, a800.sm_count) == (
        a100.bf16_tflops, a100.memory_bandwidth_gbs, a100.memory_gib, a100.sm_count)  # fmt: skip
    assert (a100.gpu_link_gbs, a800.gpu_link_gbs) == (300, 400 / 2)
    # H800 = H100 SXM with NVLink cut from 900 to 400 GB/s both ways; FA3 still applies (Hopper)
    h800 = get_gpu("h800")
    assert (h800.bf16_tflops, h800.fp8_tflops, h800.memory_bandwidth_gbs, h800.architecture) == (
        h100.bf16_tflops, h100.fp8_tflops, h100.memory_bandwidth_gbs, "Hopper")  # fmt: skip
    assert (h100.gpu_link_gbs, h800.gpu_link_gbs) == (450, 200)
    # RTX 4090 D: 114 of the 4090's 128 SMs at the same clock: 165.2 x 114/128 = 147.1, 330.3 x 114/128 = 294.2
    d = get_gpu("rtx4090d")
    assert (d.sm_count, d.boost_clock_mhz) == (114, rtx4090.boost_clock_mhz)
    assert (d.bf16_tflops, d.fp8_tflops) == (round(165.2 * 114 / 128, 1), round(330.3 * 114 / 128, 1)) == (147.1, 294.2)
    # L20: 92 SMs x 512 x 2520 MHz = 118.7 TFLOPS (the L40's per-SM rate), about 32% of an L40S
    l20 = get_gpu("l20")
    assert l20.bf16_tflops == round(92 * 512 * 2520e6 / 1e12, 1) == 118.7 and l20.fp8_tflops == 2 * 118.7
    assert round(l20.bf16_tflops / l40s.bf16_tflops, 2) == 0.33
    # RTX 6000 Ada: 142 SMs x 1024 (the L40S's 362.05 = 142 x 1024 x 2490 MHz) x 2505 MHz = 364.2
    assert abs(142 * 1024 * 2490e6 / 1e12 - l40s.bf16_tflops) < 0.05  # 362.07
    assert get_gpu("rtx6000-ada").bf16_tflops == round(142 * 1024 * 2505e6 / 1e12, 1) == 364.2
    # RTX 3090: 82 SMs x 4 tensor cores x 128 FMA x 2 x 1695 MHz / 2 (FP32 accumulate on GeForce) = 71.2
    assert get_gpu("rtx3090").bf16_tflops == round(82 * 4 * 128 * 2 * 1695e6 / 2 / 1e12, 1) == 71.2
    # V100: 80 SMs x 8 tensor cores x 64 FMA x 2 x 1530 MHz = 125.3; float32 on 64 FP32 cores per SM: 1/8 of that
    v100 = get_gpu("v100-sxm2-32gb")
    assert v100.bf16_tflops == round(80 * 8 * 64 * 2 * 1530e6 / 1e12, 1) == 125.3 and v100.tf32_ratio == 64 / 512
    assert v100.fp8_tflops is None and "no BF16 tensor path" in v100.source
    # GB200: a rack's 13.4 TB over 72 GPUs; NVLink-C2C's 900 GB/s both ways shared by two GPUs
    gb200 = get_gpu("gb200")
    assert gb200.memory_gib == round(13.4e3 / 72) == 186 and gb200.host_link_gbs == 225
    assert gb200.boost_clock_mhz == round(get_gpu("b200").boost_clock_mhz * 2500 / 2250)


def test_every_new_gpu_has_cited_default_efficiencies_of_a_known_kind() -> None:
    for name in NEW:
        d = default_efficiency(name)
        for op_class, e in d.classes.items():
            assert e.kind in ("measured", "borrowed", "derived"), (name, op_class)
            assert 0 < e.value <= 1 and e.evidence and e.source_url.startswith("https://")
    assert default_efficiency("gb200").classes["matmul"].kind == "measured"  # the MAMF table's GB200 SXM row
    assert default_efficiency("gb200").efficiency["matmul"] == round(1822.0 / 2500, 3) == 0.729
    assert default_efficiency("a800-80gb").efficiency["matmul"] == default_efficiency("a100-80gb").efficiency["matmul"]
    # the H20 has no measurement of its own: every class but the derived convolution is borrowed
    h20 = default_efficiency("h20")
    assert h20.borrowed() == ["matmul", "attention", "memory"] and h20.classes["convolution"].kind == "derived"


@pytest.fixture(scope="module")
def workload() -> Any:
    import hybrid

    return hybrid.Workload.of("wan2.1-t2v-14b")


@pytest.mark.parametrize("name", NEW)
def test_every_new_gpu_sizes_the_default_job(name: str, workload: Any) -> None:
    import hybrid

    sized = hybrid.size_on_gpu(workload, name)
    assert sized.gpu is database()[1][name] and sized.seconds > 0 and sized.peak_memory_bytes > 0


def test_the_dtype_table_matches_torch_itemsize() -> None:
    torch = pytest.importorskip("torch")
    from hybrid.dtypes import DTYPES

    spelled = {"float8": "float8_e4m3fn"}  # wanmeter's fp8 is the e4m3 storage dtype of the FP8 tensor path
    for d in DTYPES.values():
        t = getattr(torch, spelled.get(d.name, d.name))
        assert torch.empty(0, dtype=t).element_size() == d.bytes, d.name
    assert len(gpus()) == len(ROWS)


def test_int8_and_fp4_peaks_are_dense_cited_and_on_the_parts_that_have_them() -> None:
    for row in ROWS:
        assert len(row["int8_source"]) > 30 and len(row["fp4_source"]) > 30, row["name"]
        g = get_gpu(row["name"])
        assert g.has_path("fp4") == g.architecture.startswith("Blackwell"), g.name  # FP4 tensor cores: Blackwell only
        assert g.has_path("int8") == (g.name != "v100-sxm2-32gb"), g.name  # Volta has no INT8 tensor path
    # Ada whitepaper, Appendix A: 'Peak INT8 Tensor TOPS 660.6/1321.2' (dense/sparse), twice FP8 with FP32 accumulate
    ada = get_gpu("rtx4090")
    assert ada.peak_flops("int8") == 660.6e12 and round(2 * ada.fp8_tflops, 1) == ada.int8_tops  # type: ignore[operator]
    # A100: 'INT8 Tensor Core 624 TOPS | 1248 TOPS*' (* with sparsity): twice its bf16
    assert get_gpu("a100-80gb").peak_flops("int8") == 2 * get_gpu("a100-80gb").peak_flops("bf16") == 624e12
    # B200: FP4 at 9 PFLOPS dense, twice its FP8 (4.5); the RTX 5090's 1676 is four times its FP8 with FP32
    # accumulate (419): GeForce halves FP8 with FP32 accumulate but not FP4
    assert get_gpu("b200").fp4_tflops == 2 * get_gpu("b200").fp8_tflops == 9000  # type: ignore[operator]
    assert get_gpu("rtx5090").fp4_tflops == 4 * 419.0
    with pytest.raises(InputError, match="h100-sxm has no fp4 tensor path"):
        get_gpu("h100-sxm").peak_flops("fp4")
