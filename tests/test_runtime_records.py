"""Runtimes as installed: the attention kernel each record runs per GPU architecture and torch release."""

from __future__ import annotations

from itertools import pairwise

import pytest

from hybrid.errors import InputError
from hybrid.hardware import get_gpu
from hybrid.runtime import ATTENTION_KERNELS, RUNTIME_DEFS, SDPA_CUDNN_FIRST, SOURCES, Runtime, sdpa_kernels


@pytest.mark.parametrize(
    ("torch", "cudnn_first"),
    [
        ("2.4.0", ()),  # cuDNN last (#125343 reverted for 2.4 by #128539)
        ("2.5.0", ("Hopper",)),  # cuDNN first on H100 (#138522: "bugs with the release of 2.5")
        ("2.5.1", ()),  # #138522 cherry-picked onto release/2.5: cuDNN opt-in
        ("2.8.0", ()),
        ("2.9.0", ("Blackwell", "Hopper")),  # #162073: "Enable cuDNN SDPA by default for SM 9.0, SM 10.0"
        ("2.10.0", ()),  # gated on cuDNN > 9.15.0, which 2.10's wheels do not bundle
        ("2.11.0", ("Blackwell", "Hopper")),
        ("2.13.0", ("Blackwell", "Hopper")),
    ],
)
def test_sdpa_runs_cudnn_first_where_that_torch_release_does(torch: str, cudnn_first: tuple[str, ...]) -> None:
    kernels = sdpa_kernels(torch)
    assert tuple(sorted(kernels)) == cudnn_first and set(kernels.values()) <= {"cudnn"}


def test_sdpa_table_covers_2_4_to_2_13_without_gaps_and_cites_each_row() -> None:
    rows = [(tuple(map(int, a.split("."))), tuple(map(int, b.split("."))), key) for a, b, _, key in SDPA_CUDNN_FIRST]
    assert rows[0][0] == (2, 4, 0) and rows[-1][1] == (2, 13, 0)
    for (_, last, _), (first, _, _) in pairwise(rows):
        assert first > last and (first[1] == last[1] + 1 or first[:2] == last[:2])  # the next release
    assert all(key in SOURCES for _, _, key in rows)
    with pytest.raises(InputError, match=r"torch: SDPA's backend order is recorded for torch 2.4.0 to 2.13.0"):
        sdpa_kernels("2.3.1")


@pytest.mark.parametrize(
    ("gpu", "kernel"),
    [
        ("h100-sxm", "cudnn"),  # sm90
        ("h20", "cudnn"),  # sm90
        ("b200", "cudnn"),  # sm100
        ("a100-80gb", "sdpa-flash"),
        ("rtx4090", "sdpa-flash"),  # sm89: not in check_prefer_cudnn_attention
        ("rtx5090", "sdpa-flash"),  # sm120: not in check_prefer_cudnn_attention
        ("mi300x", "sdpa-flash"),  # ROCm: AOTriton's flash backend first
    ],
)
def test_diffusers_attention_is_what_torch_2_13_picks(gpu: str, kernel: str) -> None:
    assert Runtime().attention_kernel(get_gpu(gpu).architecture) == kernel


def test_original_wan_runs_flash_attention_2_unless_told_3_is_installed() -> None:
    hopper, ampere = get_gpu("h100-sxm").architecture, get_gpu("a100-80gb").architecture
    assert Runtime("wan").attention_kernel(hopper) == "fa2" == Runtime("wan").attention_kernel(ampere)
    assert Runtime("wan", flash_attention=3).attention_kernel(hopper) == "fa3"
    assert Runtime("wan", flash_attention=2).attention_kernel(hopper) == "fa2"


def test_every_record_names_known_kernels_and_cites_its_sources() -> None:
    for r in RUNTIME_DEFS.values():
        kernels = {*r.attention.values(), r.attention_fallback, *r.attention_by_architecture.values()}
        assert kernels <= set(ATTENTION_KERNELS), r.name
        assert r.sources and all(k in SOURCES for k in r.sources), r.name
