"""The formula functions against hand arithmetic and FlopCounterMode's own formulas."""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils import flop_counter as fc

from hybrid import ops


def test_flops_per_mac_is_two() -> None:
    assert ops.FLOPS_PER_MAC == 2


def test_linear_14b_to_q_at_720p() -> None:
    # 81 frames 1280x720 -> 21 latent frames x 45 x 80 tokens = 75600; D = 5120
    # 2 * 75600 * 5120 * 5120 = 3_963_617_280_000
    assert ops.linear(75600, 5120, 5120) == 3_963_617_280_000


def test_sdpa_self_attention_14b_at_720p() -> None:
    # 2*1*40*75600*75600*128 (QK^T) + the same for PV = 4*40*75600^2*128 = 117_050_572_800_000
    assert ops.sdpa(1, 40, 75600, 75600, 128) == 117_050_572_800_000


def test_sdpa_cross_attention_has_unequal_lengths() -> None:
    # 4 * 40 * 75600 * 512 * 128 = 792_723_456_000
    assert ops.sdpa(1, 40, 75600, 512, 128) == 792_723_456_000
    # d_v != d_qk: 2*2*3*5*7 + 2*2*3*5*11 = 420 + 660 = 1080
    assert ops.sdpa(1, 2, 3, 5, 7, 11) == 1080


def test_conv3d_vae_conv_in() -> None:
    # conv_in 16 -> 384, 3x3x3, one latent frame of 90x160: 2*384*16*27*1*90*160 = 4_777_574_400
    assert ops.conv3d(1, 16, 384, (3, 3, 3), (1, 90, 160)) == 4_777_574_400


def test_python_ints_do_not_overflow() -> None:
    # 7680x4320, 1001 frames -> 251 x 270 x 480 = 32_529_600 tokens; self-attention of 40 x 128:
    # 4 * 40 * 32_529_600^2 * 128 = 21_671_421_463_756_800_000 > 2^63
    f = ops.sdpa(1, 40, 32_529_600, 32_529_600, 128)
    assert f == 4 * 40 * 32_529_600**2 * 128 == 21_671_421_463_756_800_000
    assert f > 2**63


dims = st.integers(min_value=1, max_value=4096)


@given(dims, dims, dims)
def test_mm_equals_flop_counter(m: int, k: int, n: int) -> None:
    assert ops.mm(m, k, n) == fc.mm_flop((m, k), (k, n))


@given(dims, dims, dims, dims)
def test_bmm_equals_flop_counter(b: int, m: int, k: int, n: int) -> None:
    assert ops.bmm(b, m, k, n) == fc.bmm_flop((b, m, k), (b, k, n))


@given(st.integers(1, 4), st.integers(1, 16), st.integers(1, 512), st.integers(1, 512), st.integers(1, 256))
def test_sdpa_equals_flop_counter(b: int, h: int, sq: int, sk: int, d: int) -> None:
    assert ops.sdpa(b, h, sq, sk, d) == fc.sdpa_flop_count((b, h, sq, d), (b, h, sk, d), (b, h, sk, d))


@given(st.integers(1, 3), st.integers(1, 32), st.integers(1, 32), st.integers(1, 3), st.integers(1, 9), st.booleans())
def test_conv_equals_flop_counter(b: int, cin: int, cout: int, k: int, size: int, transposed: bool) -> None:
    x = (b, cin, size + k, size + 1)
    w = (cout, cin, k, 1)
    out = (b, cout, size + 1, size + 1)
    positions = (x if transposed else out)[2:]
    assert ops.conv(b, cin, cout, (k, 1), positions) == fc.conv_flop_count(x, w, out, transposed)


def test_conv_handler_matches_real_conv_shapes() -> None:
    x = torch.empty(2, 6, 5, 7, 9, device="meta")
    w = torch.empty(4, 6, 3, 3, 3, device="meta")
    out = torch.nn.functional.conv3d(x, w)
    # 2 * 2 * 4 * 6 * 27 * (3*5*7) = 272_160
    assert ops.conv3d(2, 6, 4, (3, 3, 3), tuple(out.shape[2:])) == 272_160  # type: ignore[arg-type]


def test_collective_input_bytes_inverts_what_a_rank_sends() -> None:
    # the ratio is one fact for both directions: x -> sent -> x again for every equal split
    from hybrid.ops import COLLECTIVES, collective_bytes, collective_input_bytes

    for collective, p in ((c, p) for c in COLLECTIVES for p in (2, 4, 8)):
        for x in (p * 1024, p * 3_386_880):
            assert collective_input_bytes(collective, p, collective_bytes(collective, p, x)[0]) == x
    assert collective_input_bytes("all_to_all_single", 8, 7 * 97_000) == 8 * 97_000  # (P-1)/P of x sent
    assert collective_input_bytes("all_gather_into_tensor", 8, 7 * 97_000) == 97_000  # (P-1) x sent
