"""Collective bandwidth curves (hybrid.kernels.collective_fraction): the measured nccl-tests busbw by
collective, message size and rank count as a fraction of the GPU's per-direction link, and its fallbacks."""

from __future__ import annotations

import math

import pytest

from hybrid import comm, kernels, ops
from hybrid.hardware import gpus
from hybrid.kernels import COLLECTIVE_NAMES, LINK_CEILING, LINK_FAMILIES, collective_fraction, nccl_size

MiB = 2**20


def test_a_measured_size_gives_its_busbw_over_the_link_exactly() -> None:
    # li-plus/playground, 8x A100 sendrecv_perf: 268435456 B at 188.60 GB/s busbw; A100 link 300 GB/s per direction
    value, evidence = collective_fraction("a100-80gb", "send_recv", 8, 268435456)
    assert value == 188.6 / 300
    assert evidence.kind == "measured" and "sendrecv busbw on 8 x a100-80gb" in evidence.how
    assert evidence.url.startswith("https://github.com/li-plus/playground")


def test_between_two_sizes_the_curve_is_log_linear_and_flat_beyond() -> None:
    # 134217728 B at 110.81 GB/s, 268435456 B at 188.60: 200 MB lies log2(200e6 / 2^27) = 0.5754 of the way
    w = (math.log(200_000_000) - math.log(134217728)) / (math.log(268435456) - math.log(134217728))
    assert w == pytest.approx(0.5754, abs=1e-4)
    value, _ = collective_fraction("a100-80gb", "send_recv", 8, 200_000_000)
    assert value == pytest.approx((110.81 + w * (188.6 - 110.81)) / 300, rel=1e-12)
    assert 110.81 / 300 < value < 188.6 / 300
    assert collective_fraction("a100-80gb", "send_recv", 8, MiB)[0] == 110.81 / 300  # type: ignore[index]
    assert collective_fraction("a100-80gb", "send_recv", 8, 2**34)[0] == 195.1 / 300  # type: ignore[index]


def test_a_missing_rank_count_takes_the_nearest_and_says_so() -> None:
    # nccl issue #2169: 4x H100 SXM alltoall_perf, 524288000 B at 334.90 GB/s; nothing at 8 ranks
    value, evidence = collective_fraction("h100-sxm", "all_to_all_single", 8, 64 * MiB)
    assert value == 334.9 / 450
    assert "no 8-rank measurement: the nearest rank count, 4" in evidence.how and evidence.kind == "measured"
    # in ratio 4 is as near 2 as 8 is: a tie goes to the larger group (MI300X all-reduce: 8 ranks, 312.912 GB/s)
    value, evidence = collective_fraction("mi300x", "all_reduce", 4, 2**32)
    assert value == 312.912 / 448 and "nearest rank count, 8" in evidence.how


def test_all_gather_and_reduce_scatter_take_the_ring_all_reduce_never_nvlink_sharp() -> None:
    # 8x H200 all-reduce at 8 GiB: NVLS 473.1 GB/s (NCCL's choice), ring 365.6 (NCCL_NVLS_ENABLE=0); an
    # all-gather moves no bytes the switch reduces, so it takes the ring
    for collective in ("all_gather_into_tensor", "reduce_scatter_tensor"):
        value, evidence = collective_fraction("h200", collective, 8, 2**33)
        assert value == 365.6 / 450
        assert "its kin all_reduce" in evidence.how and evidence.kind == "measured"
    value, evidence = collective_fraction("h200", "all_reduce", 8, 2**33)
    assert value == 473.1 / 450  # the all-reduce itself: NCCL's default algorithm, NVLS, above the link
    assert "kin" not in evidence.how and "nearest" not in evidence.how


def test_all_to_all_has_no_kin_and_a_gpu_borrows_only_within_its_link_family() -> None:
    # H800 (NVLink 4 behind NVSwitch, fewer links): the H100's all-to-all as a fraction of the H100's link
    value, evidence = collective_fraction("h800", "all_to_all_single", 4, 524288000)
    assert value == 334.9 / 450 and evidence.kind == "derived"
    assert "no measurement on h800: h100-sxm of its link family (NVLink 4 + NVSwitch)" in evidence.how
    # RTX 4090 (GeForce, no peer-to-peer): its own 8-GPU all-reduce stands for the all-gather, flat past the sweep's
    # 128 MiB: 14.45 GB/s of its 32 (blog.chlc.cc, stock driver)
    value, evidence = collective_fraction("rtx4090", "all_gather_into_tensor", 8, 2**30)
    assert value == 14.45 / 32 and evidence.kind == "measured" and "its kin all_reduce" in evidence.how
    assert collective_fraction("rtx4090", "all_gather_into_tensor", 8, 2**22)[0] == 12.64 / 32  # at 4 MiB
    # the RTX 4090D borrows it (the family's first), the RTX 5090 keeps its own 28 GB/s of 64 (nccl issue #1639)
    value, evidence = collective_fraction("rtx4090d", "all_gather_into_tensor", 8, 2**30)
    assert value == 14.45 / 32 and evidence.kind == "derived" and "rtx4090 of its link family" in evidence.how
    assert collective_fraction("rtx5090", "all_gather_into_tensor", 8, 2**30)[0] == 28.0 / 64
    # an all-reduce is no stand-in for an all-to-all: the GeForce boards' is its own, 4 RTX 4090s' host-staged
    # 18 GB/s of 32 (nccl issue #1603, one figure: flat at every size), the nearest rank count for 8
    value, evidence = collective_fraction("rtx4090", "all_to_all_single", 8, 2**30)
    assert value == 18.0 / 32 and evidence.kind == "measured" and "the nearest rank count, 4" in evidence.how
    assert "all_to_all busbw on 4 x rtx4090" in evidence.how and "kin" not in evidence.how
    assert collective_fraction("rtx4090", "all_to_all_single", 2, 2**20)[0] == 18.0 / 32  # type: ignore[index]
    value, evidence = collective_fraction("rtx5090", "all_to_all_single", 8, 2**30)  # 36 of its 64 GB/s
    assert value == 18.0 / 32 and evidence.kind == "derived" and "rtx4090 of its link family" in evidence.how
    # L40S: PCIe with peer-to-peer, no family member measured
    assert collective_fraction("l40s", "all_gather_into_tensor", 4, 2**30) is None


def test_a_reading_over_a_link_the_gpu_table_does_not_describe_is_not_used() -> None:
    # two H100 PCIe over an NVLink bridge: 116.26 GB/s busbw, 1.8x the 64 GB/s PCIe link gpus.json gives the GPU
    assert LINK_CEILING < 116.26 / 64
    assert collective_fraction("h100-pcie", "all_reduce", 2, 2**32) is None


def test_every_fraction_is_positive_and_at_most_the_ceiling_and_only_nvls_all_reduce_passes_the_link() -> None:
    """NVLink SHARP reduces in the switch, so an NVLS all-reduce's busbw counts bytes no link carried and
    passes the per-direction link (473.1 of 450 GB/s on 8x H200); every other collective stays under it."""
    nvls = {e["gpu"] for e in kernels.data()["collectives"] if e.get("algorithm", "").startswith("NVLS")}
    nvls |= {g for family in LINK_FAMILIES.values() if nvls & set(family) for g in family}
    above = set()
    for name in gpus():
        for collective in COLLECTIVE_NAMES:
            for ranks in (2, 4, 8):
                for size in (2**10, 2**20, 2**27, 2**30, 2**34):
                    found = collective_fraction(name, collective, ranks, size)
                    if found is None:
                        continue
                    assert 0 < found[0] <= LINK_CEILING, (name, collective, ranks, size, found)
                    if found[0] > 1:
                        above.add((collective, name))
    assert above and {c for c, _ in above} == {"all_reduce"}
    assert {name for _, name in above} <= nvls


def test_every_collective_entry_names_a_known_gpu_with_ascending_positive_points() -> None:
    table = gpus()
    names = set(COLLECTIVE_NAMES.values())
    for e in kernels.data()["collectives"]:
        assert e["gpu"] in table, e["gpu"]
        assert e["collective"] in names, e["collective"]
        sizes = [p[0] for p in e["points"]]
        assert sizes == sorted(set(sizes)) and all(isinstance(s, int) and s > 0 for s in sizes), e
        assert all(p[1] > 0 for p in e["points"]), e
        assert e["source"] in kernels.data()["sources"], e["source"]


def test_pinned_figures_of_the_rtx5090_source() -> None:
    # nccl issue #1639: '8 GPU max performance: bwbus 28GB/s', '4GPU max performance: bwbus 35GB/s'
    found = {(e["ranks"], e["points"][0][1]) for e in kernels.data()["collectives"] if e["source"] == "nccl-1639"}
    assert found == {(8, 28.0), (4, 35.0)}
    value, evidence = collective_fraction("rtx5090", "all_reduce", 4, 2**30)
    assert value == 35.0 / 64 and evidence.kind == "measured"


def test_the_names_cover_the_rows_collectives_and_the_data_names() -> None:
    assert set(ops.COLLECTIVES) | set(comm.COLLECTIVES) <= set(COLLECTIVE_NAMES)
    assert {e["collective"] for e in kernels.data()["collectives"]} <= set(COLLECTIVE_NAMES.values())
    with pytest.raises(ValueError, match="collective: unknown 'broadcast'"):
        collective_fraction("h100-sxm", "broadcast", 8, MiB)


def test_link_families_hold_known_gpus_whose_link_text_agrees() -> None:
    table = gpus()
    switch, geforce = ("NVLink", "Switch"), ("PCIe", "GeForce boards do not enable peer-to-peer")
    marker = {
        "NVLink 3 + NVSwitch": switch,
        "NVLink 4 + NVSwitch": switch,
        "NVLink 5 + NVSwitch": switch,  # GB200: 'NVLink Switch across the 72-GPU rack'
        "PCIe, no peer-to-peer (GeForce)": geforce,
        "Infinity Fabric full mesh": ("Infinity Fabric",),
    }
    assert set(marker) == set(LINK_FAMILIES)
    members = [g for family in LINK_FAMILIES.values() for g in family]
    assert len(members) == len(set(members))  # a GPU is in one family at most
    for family, gpu_names in LINK_FAMILIES.items():
        for name in gpu_names:
            assert all(m in table[name].gpu_link for m in marker[family]), (family, name)


def test_nccl_size_is_the_gathered_output_for_all_gather_and_the_input_otherwise() -> None:
    assert nccl_size("all_gather_into_tensor", 4, 3 * MiB) == 12 * MiB  # all_gather_perf sizes the receive buffer
    for collective in ("all_to_all_single", "reduce_scatter_tensor", "all_reduce", "send_recv"):
        assert nccl_size(collective, 4, 3 * MiB) == 3 * MiB
    with pytest.raises(ValueError, match="collective: unknown"):
        nccl_size("gather", 4, MiB)


def test_clear_caches_forgets_the_collective_curves() -> None:
    collective_fraction("h200", "all_reduce", 8, 2**33)
    assert collective_fraction.cache_info().currsize > 0
    kernels.clear_caches()
    assert collective_fraction.cache_info().currsize == 0


def test_a_set_aside_attention_measurement_stays_in_the_data_but_is_never_used() -> None:
    # SageAttention's 'H800' bars run at 0.68-0.72 of its 'H100' bars, which contradicts the h800 row's SXM5 part
    # (the H100 SXM's chip and clocks): set aside, so the h800 takes the H100 SXM's FA3-paper FA2 curve, derived
    set_aside = [e for e in kernels.data()["attention"] if e["gpu"] == "h800" and e.get("set_aside")]
    assert {e["kernel"] for e in set_aside} == {"sdpa-flash", "sdpa-efficient", "fa3", "fp8-attention", "sage2"}
    h800, h100 = kernels.attention_curve("fa2", "h800"), kernels.attention_curve("fa2", "h100-sxm")
    assert h800 is not None and h100 is not None
    assert h800.evidence.kind == "derived" and h100.evidence.kind == "measured"
    assert h800.points == h100.points  # 370 TFLOP/s of 989.4 at 16k keys on both
    assert h800.at(16384) == pytest.approx(370 / 989.4)
    # the H800's own bars would have given sdpa-flash's 235 TOPS at 16k: 0.24 of the peak
    assert 235 / 989.4 < 0.3 < h800.at(16384)
