"""The kernel-aware rates read from the H200's own measurements (source wanmeter-h200): the GEMM ceiling,
the convolution curve by k, the memory-bound categories' shares of the streaming rate, and how timing uses them."""

from __future__ import annotations

import pytest

from hybrid import kernels
from hybrid.hardware import gpus
from hybrid.timing import Machine, terms_time

EFFICIENCY = {"matmul": 0.8, "attention": 0.5, "convolution": 0.8, "memory": 0.5}


def test_the_h200_gemm_ceiling_is_its_4096_cube_over_its_shape_factor() -> None:
    # 4096^3 bf16 at 719.5 TFLOP/s of 989.4; 32 x 16 = 512 tiles of 128x256 in 4 waves of 132 SMs (512 / 528),
    # times k / (k + 256) = 4096 / 4352
    value, evidence = kernels.gemm_ceiling("h200", "bfloat16") or (0.0, None)
    assert value == pytest.approx(719.5 / 989.4 / (512 / 528 * 4096 / 4352), rel=1e-12)
    assert evidence is not None and evidence.kind == "measured" and evidence.url == "calibration/device/h200/README.md"


def test_a_ceiling_above_the_datasheet_peak_stands_as_measured() -> None:
    # GeForce cards run above the clock their datasheet peak assumes: the RTX 5090's 8192^3 bf16 at 234.89 TFLOP/s
    # of 209.5; 64 x 64 = 4,096 tiles of 128x128 (no warp-group MMA on the GeForce chip) in 25 waves of 170 SMs
    # (4096 / 4250), times 8192 / 8448: 1.20 of peak. Capped at 1.0 (as until 2026-12-05, while its attention curve
    # was not), the model ran its own 10240^3 measurement 16% slow: 209.5 x 0.967 = 202.6 TFLOP/s against 240.05
    value, evidence = kernels.gemm_ceiling("rtx5090", "bfloat16") or (0.0, None)
    assert value == pytest.approx(234.89 / 209.5 / (4096 / 4250 * 8192 / 8448), rel=1e-12)
    assert value == pytest.approx(1.1997, abs=1e-4)
    assert evidence is not None and evidence.kind == "measured"
    gpu = gpus()["rtx5090"]
    rate = value * kernels.shape_factor(gpu, (1, 10240, 10240, 10240), "bfloat16") * 209.5
    assert rate == pytest.approx(240.05, rel=0.015)  # the 10240^3 measurement, 243.0 TFLOP/s


def test_the_h200_convolution_curve_is_each_k_over_its_wave_factor_and_the_h100_derives_it() -> None:
    curve = kernels.conv_curve("h200", "tfloat32")
    assert curve is not None and curve.evidence.kind == "measured"
    # k = 96 x 27: 96 channels at 480x832 (m = 4 x 480 x 832 / 2 = 798,720 output positions) at 121.4 TFLOP/s of
    # 494.7 (989.4 x TF32's 0.5); 6,240 tiles of 128 x 128 (a 96-wide product takes 128) in 48 waves, 96 / 128 full
    points = dict(curve.points)
    assert points[2592] == pytest.approx(121.4 / 494.7 / (6240 / 6336 * 96 / 128), rel=1e-12)
    # not 64.0 TFLOP/s at 96 channels of 60x104 (6,240 positions): 49 tiles, less than a wave of 132 SMs, whose
    # 64.0 / 494.7 / (49 / 132 x 6240 x 96 / (49 x 128 x 128)) = 0.467 would rank it first; so for 1,024 channels
    # from 48 at 44x80 (k = 1296; 28 x 4 = 112 tiles of 128 x 256): k = 1296 is LightVAE's 48 channels at 240x416
    assert points[1296] == pytest.approx(57.7 / 494.7 / (1560 / 1584 * 48 / 64), rel=1e-12)
    # k = 24 x 27 below the decoders': LightVAE's 24 channels at 480x832 (46.5 TFLOP/s, 24 / 64 of each tile)
    # and its conv_out to 3 channels (8.0, 3 / 64), the second the higher over its factor
    assert points[648] == pytest.approx(8.0 / 494.7 / (6240 / 6336 * 3 / 64), rel=1e-12)
    assert points[648] > 46.5 / 494.7 / (6240 / 6336 * 24 / 64)
    # and conv_in from 3 pixel channels (k = 81) at 21.3; from 16 latent channels (k = 432, 6,240 x 384: 49 x 2 =
    # 98 tiles) left out
    assert points[81] == pytest.approx(21.3 / 494.7 / (6240 / 6336 * 96 / 128), rel=1e-12)
    assert list(points) == [81, 648, 1296, 2592, 5184, 6912, 10368, 13824, 27648]
    h100 = kernels.conv_curve("h100-sxm", "tfloat32")  # the same chip: the H200's curve, said to be derived
    assert h100 is not None and h100.points == curve.points and h100.evidence.kind == "derived"
    rates = kernels.shape_rates(gpus()["h200"], "tf32", "cudnn", frozenset({"convolution"}))
    dims = (1, 798720, 96, 2592)
    assert rates.efficiency("convolution", dims, 0.803) == pytest.approx(121.4 / 494.7, rel=1e-12)


def test_a_gpu_without_convolution_measurements_takes_the_h200_curve_against_its_own_gemm_model() -> None:
    h200 = dict(kernels.conv_curve("h200", "tfloat32").points)  # type: ignore[union-attr]
    h200_ceiling = kernels.gemm_ceiling("h200", "tfloat32")
    assert h200_ceiling is not None and h200_ceiling[0] == pytest.approx(0.8907, abs=1e-4)
    # the RTX 4090 has a TF32 GEMM ceiling of its own (1.086: above its datasheet clock): at k = 2,592 (96
    # channels) the H200 reaches 0.332 of peak over its wave factor, 0.41 of its GEMM model 0.891 x 2592 / 2848;
    # the 4090 the same share of its own, 1.086 x 2592 / 2848: 0.332 x 1.086 / 0.891
    own = kernels.gemm_ceiling("rtx4090", "tfloat32")
    assert own is not None and own[0] == pytest.approx(1.0862, abs=1e-4)
    curve = kernels.conv_curve("rtx4090", "tfloat32")
    assert curve is not None and curve.evidence.kind == "derived"
    assert dict(curve.points)[2592] == pytest.approx(h200[2592] * own[0] / h200_ceiling[0], rel=1e-12)
    assert dict(curve.points)[2592] == pytest.approx(0.4051, abs=1e-4)
    # against the GEMM model alone it is 0.41 of 1.086 x 0.910 at 96 channels, 0.82 at 1,024 (k = 27,648)
    assert dict(curve.points)[2592] / (own[0] * kernels.k_fraction(2592)) == pytest.approx(0.41, abs=0.005)
    assert dict(curve.points)[27648] / (own[0] * kernels.k_fraction(27648)) == pytest.approx(0.82, abs=0.005)
    # the A100 has no TF32 GEMM measurement: its cited convolution efficiency (0.869, from its bf16 matmuls)
    a100 = kernels.conv_curve("a100-80gb", "tfloat32")
    assert a100 is not None and dict(a100.points)[2592] == pytest.approx(h200[2592] * 0.869 / h200_ceiling[0])
    # an AMD GPU runs MIOpen, not cuDNN: no curve (its class default stands)
    assert kernels.conv_curve("mi300x", "tfloat32") is None and kernels.conv_curve("mi300x", "bfloat16") is None
    # the 4090's rate at the decoder's 96 channels at 480x832: that point times its wave factor (6,240 tiles of 128
    # x 128 on 128 SMs, 49 waves, a 96-wide product in a 128-wide tile)
    rates = kernels.shape_rates(gpus()["rtx4090"], "tf32", "fa2", frozenset({"convolution"}))
    e = rates.efficiency("convolution", (1, 798720, 96, 2592), 0.729)
    assert e == pytest.approx(dict(curve.points)[2592] * (6240 / (49 * 128)) * 96 / 128, rel=1e-12)


def test_memory_bound_categories_run_at_the_median_of_their_measured_ops() -> None:
    ratios, evidence = kernels.memory_ratios("h200") or ({}, None)
    stream = 4411.2  # the largest add, 12,884,901,888 bytes: the streaming rate
    fraction = kernels.memory_fraction("h200")
    assert fraction is not None and fraction[0] == pytest.approx(stream / 4800, rel=1e-12)
    # medians of the measured ops (GB/s): elementwise of 2,732.5 3,653.6 4,047.7 4,218.4 4,288.9 (silu);
    # norm of 2,832.5 3,150.0 3,201.1; reduction one op; movement of 1,584.5 2,063.8 2,249.8 2,700.4 4,186.5
    assert ratios == {
        "elementwise": pytest.approx(4047.7 / stream, rel=1e-12),
        "norm": pytest.approx(3150.0 / stream, rel=1e-12),
        "reduction": pytest.approx(3907.5 / stream, rel=1e-12),
        "movement": pytest.approx(2249.8 / stream, rel=1e-12),
    }
    assert evidence is not None and evidence.kind == "measured"
    derived = kernels.memory_ratios("h100-sxm")  # Hopper: the H200's shares of its own streaming rate
    assert derived is not None and derived[0] == ratios and derived[1].kind == "derived"
    assert kernels.memory_ratios("a100-80gb") is None


def test_timing_divides_a_categorys_bytes_by_its_share_of_the_memory_rate() -> None:
    moved = 10**12
    plain = Machine(1e15, 1e12, EFFICIENCY)  # 0.5 x 1 TB/s
    rated = Machine(1e15, 1e12, EFFICIENCY, memory_ratio=(("norm", 0.25),))
    terms = (("norm", 0, moved, 1, ()), ("elementwise", 0, moved, 1, ()))
    assert terms_time(terms, plain).seconds == pytest.approx(2.0 + 2.0, rel=1e-12)
    assert terms_time(terms, rated).seconds == pytest.approx(8.0 + 2.0, rel=1e-12)  # a norm at 0.125 TB/s


def test_float32_products_run_on_the_cuda_cores_at_their_own_ceiling(monkeypatch: pytest.MonkeyPatch) -> None:
    # 4096^3 float32 at 50.3 TFLOP/s of the CUDA cores' 67; 64 x 64 tiles: 4,096 in 32 waves of 132 SMs (4096 / 4224),
    # times 4096 / 4352
    value, _ = kernels.gemm_ceiling("h200", "float32") or (0.0, None)
    assert value == pytest.approx(50.3 / 67 / (4096 / 4224 * 4096 / 4352), rel=1e-12)
    import hybrid.sizing as sizing
    from hybrid.workload import Workload

    w = Workload.of("wan2.1-i2v-14b-480p", steps=1)
    cuda_cores = sizing.size_on_gpu(w, "h200").stages["image_encoder"].seconds
    monkeypatch.setattr(sizing, "MATMUL_PATH", {})  # as if allow_tf32 were True: CLIP's products on TF32
    sizing.cost_memo.cache_clear()
    tf32 = sizing.size_on_gpu(w, "h200").stages["image_encoder"].seconds
    # 67 TFLOP/s against 494.7, but 257-token products fill the SMs far better with 64x64 tiles than with
    # Hopper's 128x256 (15 tiles for a 257 x 1,280 output): 15.2 ms against 12.3
    assert cuda_cores == pytest.approx(0.015213, rel=1e-3) and tf32 == pytest.approx(0.012325, rel=1e-3)


def test_flex_attention_has_the_h200s_measured_point_and_the_h100_derives_it() -> None:
    # 4 x 40 x 43,008 x 86,144 x 128 FLOPs in 0.1490 s: 509.1 TFLOP/s of 989.4
    curve = kernels.attention_curve("flex", "h200")
    assert curve is not None and curve.points == ((86144, pytest.approx(509.1 / 989.4, rel=1e-12)),)
    assert curve.evidence.kind == "measured" and curve.at(32760) == curve.at(200000) == curve.points[0][1]
    h100 = kernels.attention_curve("flex", "h100-sxm")
    assert h100 is not None and h100.evidence.kind == "derived" and h100.points == curve.points
