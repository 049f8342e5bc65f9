"""SGLang diffusion and DiffSynth-Studio as records: the kernel each resolves per GPU, their dtypes, the
command line, the layouts they refuse, and DiffSynth-Studio's Euler timesteps against diffusers' split."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hybrid.hardware import get_gpu
from hybrid.runtime import RUNTIME_DEFS, SOURCES, Runtime
from tests.conftest import one_line_error, run_cli


@pytest.mark.parametrize(
    ("gpu", "sglang", "diffsynth"),
    [
        # SGLang: FA (fa_ver 3) by default, cuDNN SDPA on sm100, Torch SDPA on sm12x with cuDNN SDPA off;
        # sgl-kernel's FA3 sm80/sm89 build is timed as FA2. DiffSynth: SDPA (no flash-attn), torch 2.13's order
        ("h100-sxm", "fa3", "cudnn"),
        ("a100-80gb", "fa2", "sdpa-flash"),
        ("rtx4090", "fa2", "sdpa-flash"),
        ("b200", "cudnn", "cudnn"),
        ("rtx5090", "sdpa-flash", "sdpa-flash"),  # sm120: is_sm120, not is_blackwell (major 10)
        ("b300", "cudnn", "sdpa-flash"),  # sm103: SGLang's is_blackwell; torch 2.13's cuDNN order names sm100 only
    ],
)
def test_each_record_resolves_its_kernel_as_cited(gpu: str, sglang: str, diffsynth: str) -> None:
    architecture = get_gpu(gpu).architecture
    assert Runtime("sglang").attention_kernel(architecture) == sglang
    assert Runtime("diffsynth").attention_kernel(architecture) == diffsynth
    assert Runtime("sglang", attention="sdpa-math").attention_kernel(architecture) == "sdpa-math"  # --attention wins


def test_records_cite_their_own_sources_and_say_what_they_run() -> None:
    sglang, diffsynth = RUNTIME_DEFS["sglang"], RUNTIME_DEFS["diffsynth"]
    assert all(k.startswith("sglang-") for k in sglang.sources) and all(k in SOURCES for k in sglang.sources)
    assert all(k.startswith("diffsynth-") for k in diffsynth.sources) and all(k in SOURCES for k in diffsynth.sources)
    assert "enable_cudnn_sdp(False)" in SOURCES["sglang-attention"] and "fa_ver = 3" in SOURCES["sglang-attention"]
    assert "enable_torch_compile: bool = False" in SOURCES["sglang-args"]
    assert "ring_degree=1" in SOURCES["diffsynth-usp"] and '"torch>=2.0.0"' in SOURCES["diffsynth-attention"]
    assert (sglang.compiled, diffsynth.compiled) == ("", "")  # neither compiles by default
    assert (sglang.offload_granularity, diffsynth.offload_granularity) == ("component", "component")
    assert {k for k, v in sglang.layouts.items() if v} == {"ulysses", "ring", "cfg_parallel"}
    assert {k for k, v in diffsynth.layouts.items() if v} == {"ulysses", "pad"}


SMALL = {"model": "wan2.1-t2v-1.3b", "width": 256, "height": 128, "frames": 5, "steps": 2}


@pytest.mark.parametrize(
    ("runtime", "text_encoder", "vae"),
    [
        ("sglang", 4, 4),  # text_encoder_precisions ("fp32",), vae_precision "fp32", precision "bf16"
        ("diffsynth", 2, 2),  # every model loaded in from_pretrained's torch_dtype, bfloat16
    ],
)
def test_each_sizes_its_own_dtypes(runtime: str, text_encoder: int, vae: int) -> None:
    from hybrid.sizing import size_on_gpu
    from hybrid.workload import Workload

    w = replace(Workload.of(**SMALL), runtime=Runtime(runtime))
    sized = size_on_gpu(w, "h100-sxm")
    # UMT5-XXL 5,680,910,336 parameters, the 1.3B DiT 1,418,996,800 (bf16), the VAE 126,892,531
    resident = 5_680_910_336 * text_encoder + 1_418_996_800 * 2 + 126_892_531 * vae
    assert sized.stages["diffusion_core"].weights_bytes == resident
    assert sized.stages["diffusion_core"].weight_cast_bytes == 0


@pytest.mark.parametrize("name", ["sglang", "diffsynth"])
def test_report_runs_on_an_h100(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["report", "--gpu", "h100-sxm", "--runtime", name], capsys)
    assert code == 0, err
    kernel = {"sglang": "fa3", "diffsynth": "cudnn"}[name]
    assert f"(--runtime {name}; attention: {kernel};" in out
    assert f"  - runtime: {RUNTIME_DEFS[name].code.split(' (')[0]} (--runtime {name})" in out


A14B = ["report", "--model", "wan2.2-i2v-a14b", "--size", "256x128", "--frames", "5", "--gpu", "h100-sxm"]


def test_unsupported_layouts_are_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    four = ["--gpus", "4", "--format", "json"]
    # DiffSynth-Studio's USP is Ulysses over every GPU (ring_degree=1); no FSDP at inference
    one_line_error(
        [*A14B, "--runtime", "diffsynth", "--ring", "4", *four],
        capsys,
        "ring: the Wan2.2 repository under DiffSynth-Studio has no ring attention (initialize_usp: ring_degree=1",
        "use --ulysses",
    )
    one_line_error(
        [*A14B, "--runtime", "diffsynth", "--ulysses", "4", "--fsdp", "dit", *four],
        capsys,
        "fsdp: the diffsynth runtime has no FSDP option",
    )
    # SGLang's --use-fsdp-inference is not modelled: --fsdp is refused, its ring and Ulysses run
    one_line_error([*A14B, "--runtime", "sglang", "--ulysses", "4", "--fsdp", "dit", *four], capsys, "fsdp: the sglang")
    for layout in (["--ring", "4"], ["--ulysses", "2", "--ring", "2"], ["--ulysses", "4"]):
        assert run_cli([*A14B, "--runtime", "sglang", *layout, *four], capsys)[0] == 0, layout
    assert run_cli([*A14B, "--runtime", "diffsynth", "--ulysses", "4", *four], capsys)[0] == 0


def _diffsynth_high_noise_steps(steps: int, shift: float, boundary: float) -> int:
    """DiffSynth-Studio's FlowMatchScheduler.set_timesteps_wan and its expert switch (diffsynth/diffusion/
    flow_match.py, pipelines/wan_video.py: ``timestep.item() < switch_DiT_boundary * 1000``), in float32 torch."""
    import torch

    sigmas = torch.linspace(1.0, 0.0, steps + 1)[:-1]
    sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
    return sum(1 for t in (sigmas * 1000).tolist() if not t < boundary * 1000)


def test_diffsynths_euler_timesteps_split_the_experts_as_diffusers_but_on_the_boundary() -> None:
    # DiffSynth's sigmas run from 1 to 0 (diffusers' from 1 to 1/1000, the original's from 0.999): the record
    # takes diffusers' split, which it equals in 1,386 of these 1,400 cases; in the 14 others a timestep lands
    # on the boundary (T2V-A14B's 875 at shift 3 and every multiple of 10 steps, four more at shifts 12 and 16)
    # and DiffSynth runs one high-noise step fewer: its float32 timestep there is just below (874.99994 at 40
    # steps, shift 3), diffusers' is 875
    from hybrid.sampler import high_noise_steps

    off = []
    for boundary in (0.875, 0.9):
        for shift in (1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 16.0):
            for steps in range(1, 101):
                delta = _diffsynth_high_noise_steps(steps, shift, boundary) - high_noise_steps(steps, shift, boundary)
                if delta:
                    off.append((boundary, shift, steps, delta))
    assert len(off) == 14 and all(d == -1 for *_, d in off)
    assert [o[:3] for o in off if o[1] == 3.0] == [(0.875, 3.0, n) for n in range(10, 101, 10)]
    assert RUNTIME_DEFS["diffsynth"].sampler == "diffusers"
