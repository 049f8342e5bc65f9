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
        kernels = {*r.attention.values(), r.attention_fallback, *r.architecture_kernels().values()}
        assert kernels <= set(ATTENTION_KERNELS), r.name
        assert r.sources and all(k in SOURCES for k in r.sources), r.name


# --- runtimes people compare: LightX2V, FastVideo, xDiT, as their own code and configs run them -----------

SMALL = {"model": "wan2.1-t2v-1.3b", "width": 256, "height": 128, "frames": 5, "steps": 2}


@pytest.mark.parametrize(
    ("runtime", "text_encoder", "dit", "vae", "h100", "a100"),
    [
        # UMT5-XXL 5,680,910,336 parameters, the 1.3B DiT 1,418,996,800, the VAE 126,892,531
        ("diffusers", 2, 2, 4, "cudnn", "sdpa-flash"),
        ("lightx2v", 2, 2, 2, "fa3", "fa2"),  # T5 bf16, GET_DTYPE BF16 for the DiT and the VAE; flash_attn3 configs
        ("fastvideo", 4, 2, 4, "cudnn", "sdpa-flash"),  # text_encoder_precisions fp32, vae_precision fp32; torch 2.12
        ("xdit", 2, 2, 2, "cudnn", "cudnn"),  # from_pretrained(torch_dtype=torch.bfloat16); cuDNN before FA2
        ("vllm-omni", 2, 2, 4, "fa2", "fa2"),  # UMT5 in od_config.dtype, the VAE float32; vllm_flash_attn FA2
    ],
)
def test_each_runtime_sizes_its_own_dtypes_and_kernel(
    runtime: str, text_encoder: int, dit: int, vae: int, h100: str, a100: str
) -> None:
    from dataclasses import replace

    from hybrid.sizing import size_on_gpu
    from hybrid.workload import Workload

    w = replace(Workload.of(**SMALL), runtime=Runtime(runtime))
    sized = size_on_gpu(w, "h100-sxm")
    resident = 5_680_910_336 * text_encoder + 1_418_996_800 * dit + 126_892_531 * vae
    if RUNTIME_DEFS[runtime].offload_default:  # FastVideo streams the DiT's blocks and moves the rest by default:
        # its embedders and head (25,775,680) and two of its 30 blocks (46,440,704 each) on the GPU, bf16
        resident = (25_775_680 + 2 * 46_440_704) * dit
    assert sized.stages["diffusion_core"].weights_bytes == resident
    assert sized.stages["diffusion_core"].weight_cast_bytes == 0  # bf16 DiT weights: no autocast re-casts
    assert (sized.attention_kernel, size_on_gpu(w, "a100-80gb").attention_kernel) == (h100, a100)


def test_new_runtimes_run_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from hybrid.cli import main

    args = ["report", "--model", "wan2.2-i2v-a14b", "--size", "256x128", "--frames", "5", "--gpu", "h100-sxm"]
    for name in ("lightx2v", "fastvideo", "xdit", "vllm-omni"):
        assert main([*args, "--runtime", name, "--format", "json"]) == 0, name
        doc = json.loads(capsys.readouterr().out)
        assert doc["gpu"]["runtime"]["name"] == name
        assert any(a.startswith(f"runtime: {RUNTIME_DEFS[name].code.split(' (')[0]}") for a in doc["assumptions"])
    # FastVideo has no ring attention; xDiT shards the DiT with FSDP, LightX2V does not
    layout = ["--gpus", "4", "--format", "json"]
    assert main([*args, "--runtime", "fastvideo", "--ring", "4", *layout]) == 2
    assert "ring: the Wan2.2 repository under FastVideo has no ring attention" in capsys.readouterr().err
    assert main([*args, "--runtime", "xdit", "--ulysses", "4", "--fsdp", "dit", *layout]) == 0
    capsys.readouterr()
    assert main([*args, "--runtime", "lightx2v", "--ulysses", "4", "--fsdp", "dit", *layout]) == 2
    err = capsys.readouterr().err
    assert (
        "fsdp: the lightx2v runtime has no FSDP option (runtimes that have one: --runtime wan or --runtime xdit)" in err
    )


def test_the_original_sampler_splits_the_experts_for_the_runtimes_that_copy_it() -> None:
    from hybrid.schedule import expert_steps
    from hybrid.workload import Workload

    # 40 steps at shift 3, boundary 900: the original's sigmas start at 0.999 (10 high-noise steps),
    # diffusers' at 1 (11); LightX2V copies the original's scheduler, xDiT runs diffusers'; FastVideo
    # shifts the original's twice, which splits the steps as the original does (the test below); SGLang
    # diffusion copies FastVideo's; DiffSynth-Studio's Euler sigmas from 1 split them as diffusers' (tested below)
    kw = {"model": "wan2.2-i2v-a14b", "width": 256, "height": 128, "frames": 5, "flow_shift": 3.0}
    split = {name: expert_steps(Workload.of(**kw, runtime=Runtime(name))) for name in RUNTIME_DEFS}
    assert split == {
        "diffusers": (11, 29), "wan": (10, 30), "lightx2v": (10, 30), "fastvideo": (10, 30), "xdit": (11, 29),
        "vllm-omni": (10, 30), "sglang": (10, 30), "diffsynth": (11, 29),
    }  # fmt: skip


def _fastvideo_timesteps(steps: int, shift: float, n: int = 1000) -> list[int]:
    """FastVideo's (and vLLM-Omni's) FlowUniPCMultistepScheduler(shift=shift).set_timesteps(steps)
    arithmetic (fastvideo/models/schedulers/scheduling_flow_unipc_multistep.py): float32 torch sigmas
    shifted at init, then numpy float64 linspace from sigma_max to sigma_min, shifted again."""
    import numpy as np
    import torch

    alphas = np.linspace(1, 1 / n, n)[::-1].copy()
    sigmas = torch.from_numpy(1.0 - alphas).to(dtype=torch.float32)
    sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
    sigma_max, sigma_min = sigmas[0].item(), sigmas[-1].item()
    s = np.linspace(sigma_max, sigma_min, steps + 1).copy()[:-1]
    s = shift * s / (1 + (shift - 1) * s)
    return torch.from_numpy(s * n).to(dtype=torch.int64).tolist()  # type: ignore[no-any-return]


@pytest.mark.parametrize("shift", [1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 16.0])
def test_fastvideos_twice_shifted_timesteps_split_the_experts_as_the_originals(shift: float) -> None:
    # FastVideo builds the original scheduler with the flow shift (the original: shift=1) and set_timesteps
    # shifts again: the first sigma moves from 0.999 to the shifted 0.999 (0.99967 at shift 3), the last stays
    # 0; the timesteps differ by a few units but never across the A14B boundaries, so its record keeps the
    # original's sampler
    from hybrid.sampler import wan_flow_timesteps

    assert _fastvideo_timesteps(40, 1.0) == wan_flow_timesteps(40, 1.0)
    for boundary in (875, 900):  # T2V-A14B, I2V-A14B
        for steps in range(1, 101):
            theirs, original = _fastvideo_timesteps(steps, shift), wan_flow_timesteps(steps, shift)
            assert sum(t >= boundary for t in theirs) == sum(t >= boundary for t in original), (steps, boundary)


def test_the_torch_a_job_runs_picks_sdpas_backend(capsys: pytest.CaptureFixture[str]) -> None:
    from hybrid.cli import main

    # the diffusers record installs torch 2.13 (cuDNN first on Hopper); 2.7.1 runs SDPA's FlashAttention-2 there
    assert Runtime().attention_kernel("Hopper") == "cudnn"
    assert Runtime(torch="2.7.1").attention_kernel("Hopper") == "sdpa-flash"
    assert Runtime(torch="2.9.0").attention_kernel("Blackwell") == "cudnn"
    assert Runtime(name="diffsynth", torch="2.10.0").attention_kernel("Hopper") == "sdpa-flash"
    assert Runtime(torch="2.7.1").describe() == "--runtime diffusers --torch 2.7.1"
    for args, message in (
        (["--runtime", "wan", "--torch", "2.7.1"], "torch: valid only with --runtime diffusers or --runtime fastvideo "
         "or --runtime diffsynth, whose attention is PyTorch SDPA's choice (wan runs FlashAttention)"),
        (["--torch", "3.1"], "torch: SDPA's backend order is recorded for torch 2.4.0 to 2.13.0, not 3.1"),
        (["--torch", "2.x"], "torch: expected a release like 2.7.1, got '2.x'"),
    ):  # fmt: skip
        assert main(["report", "--model", "wan2.1-t2v-1.3b", "--gpu", "h100-sxm", *args]) == 2
        err = capsys.readouterr().err
        assert err == f"wanmeter: error: {message}\n"
