"""Runtimes: diffusers as its examples run it, the original Wan repositories as their users run them."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from hybrid.analytic import stage_groups
from hybrid.cli import main
from hybrid.presets import PRESETS, get_preset
from hybrid.rows import expand, total_flops
from hybrid.runtime import Runtime
from hybrid.sizing import size_on_gpu
from hybrid.trace import trace
from hybrid.workload import Workload

WAN = Runtime("wan")


class _Casts(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.casts = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.casts += func is torch.ops.aten._to_copy.default
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize(("requires_grad", "casts"), [(False, 6), (True, 4)])
def test_autocast_recasts_weights_that_do_not_require_grad(requires_grad: bool, casts: int) -> None:
    # The fact behind the weight-cast bytes: the original repositories call requires_grad_(False), and
    # autocast caches a weight's cast only when it requires grad. Two calls of one Linear: input,
    # weight and bias cast on each call (6), or the input twice plus weight and bias once (4).
    lin = torch.nn.Linear(8, 8).requires_grad_(requires_grad)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16), _Casts() as mode:
        lin(torch.randn(2, 8))
        lin(torch.randn(2, 8))
    assert mode.casts == casts


@pytest.mark.parametrize("model", ["wan2.1-t2v-1.3b", "wan2.1-i2v-14b-480p", "wan2.1-vace-1.3b", "wan2.2-ti2v-5b"])
def test_autocast_parameters_are_the_linear_and_conv_weights_outside_fp32_regions(model: str) -> None:
    import diffusers

    cfg = PRESETS[model].transformer
    cls = diffusers.WanVACETransformer3DModel if hasattr(cfg, "vace_layers") else diffusers.WanTransformer3DModel
    with torch.device("meta"):
        dit = cls(**cfg.to_kwargs())
    fp32_regions = ("condition_embedder.time_", "proj_out")  # time embedding, time projection, head
    cast = sum(
        p.numel()
        for name, m in dit.named_modules()
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv3d)) and not name.startswith(fp32_regions)
        for p in m.parameters(recurse=False)
    )
    assert cfg.autocast_parameters() == cast


def test_wan22_code_embeds_the_timestep_per_token() -> None:
    # the original Wan2.2 model expands t to (B, N) for every model: time_embedder (256 -> 5120 -> 5120)
    # and time_proj (5120 -> 30720) run over B x N rows instead of B
    small = {"model": "wan2.2-t2v-a14b", "width": 256, "height": 128, "frames": 5}
    wd, ww = Workload.of(**small), Workload.of(**small, runtime=WAN)
    n = ww.dit_tokens  # 2 latent frames x 8 x 16 = 256
    assert (n, ww.shape().per_token_timestep, wd.shape().per_token_timestep) == (256, True, False)
    per_row = 2 * (256 * 5120 + 5120 * 5120 + 5120 * 30720)  # 369,623,040 FLOPs per embedded timestep
    flops = {w.runtime.name: total_flops(expand(stage_groups("diffusion_core", w))) for w in (wd, ww)}
    assert flops["wan"] - flops["diffusers"] == (n - 1) * per_row == 94_253_875_200
    traced = trace(ww, stages=("diffusion_core",))
    assert traced.stages["diffusion_core"].flops == flops["wan"]  # analytic == traced under the runtime


def test_runtime_flags_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    cases = [  # with --gpu: without it these flags are refused first (they change only the sizing)
        (
            ["--t5-cpu", "--gpu", "h100-sxm"],
            "t5-cpu: a flag of the original Wan repository; valid only with --runtime wan",
        ),
        (
            ["--runtime", "wan", "--convert-model-dtype", "--gpu", "h100-sxm"],
            "convert-model-dtype: wan2.1-t2v-14b runs on the Wan2.1 repository, whose generate.py has no "
            "--convert_model_dtype; valid only for Wan2.2 models",
        ),
        (
            ["--flash-attention", "3", "--gpu", "h100-sxm"],
            "flash-attention: valid only with --runtime wan (diffusers runs PyTorch SDPA)",
        ),
        (
            ["--runtime", "wan", "--no-cfg"],
            "cfg: the original Wan generate.py runs the unconditional pass every step whatever the guide scale; "
            "valid with --runtime wan: CFG on (drop --no-cfg and any guidance scale <= 1)",
        ),
        (
            ["--runtime", "wan", "--flash-attention", "3", "--gpu", "a100-80gb"],
            "flash-attention: FlashAttention-3 runs on Hopper only, not Ampere; valid: 2",
        ),
    ]
    for flags, message in cases:
        assert main(["report", *flags]) == 2, flags
        assert capsys.readouterr().err.strip() == f"wanmeter: error: {message}"


def test_moves_follow_the_stage_order() -> None:
    spec = get_preset("wan2.1-i2v-14b-480p")
    stages = spec.pipeline_def.stages
    # diffusers' enable_model_cpu_offload: each component in when called, the previous one out; the
    # VAE comes back for the decode
    assert Runtime(offload=True).moves(spec, stages) == [
        ("text_encoder", "text_encoder", "in"),
        ("text_encoder", "text_encoder", "out"),
        ("image_encoder", "image_encoder", "in"),
        ("image_encoder", "image_encoder", "out"),
        ("vae_encode", "vae", "in"),
        ("vae_encode", "vae", "out"),
        ("diffusion_core", "transformer", "in"),
        ("diffusion_core", "transformer", "out"),
        ("vae_decode", "vae", "in"),
        ("vae_decode", "vae", "out"),
    ]
    # the original repository never moves its VAE; without --offload nothing moves (loaded once)
    assert [m for m in Runtime("wan", offload=True).moves(spec, stages) if m[1] == "vae"] == []
    assert Runtime("wan").moves(spec, stages) == [] == Runtime().moves(spec, stages)


def test_wan_runtime_sizing_weights_casts_and_host_text_encoder(capsys: pytest.CaptureFixture[str]) -> None:
    w = Workload.of(model="wan2.1-t2v-14b", width=256, height=128, frames=5, steps=2, runtime=WAN)
    sized = size_on_gpu(w, "h100-sxm")
    dit = sized.stages["diffusion_core"]
    # float32 DiT weights: 14,288,491,584 x 4 bytes, resident with the text encoder and the VAE
    assert dit.weights_bytes == 57_153_966_336 + 11_361_820_672 + 507_570_124
    # 2 steps x 2 passes, each casting 14,100,843,520 Linear/Conv3d parameters: 6 bytes each
    assert dit.weight_cast_bytes == 4 * 6 * 14_100_843_520
    # attention: FlashAttention-2, the flash_attn requirements.txt installs; FlashAttention-3 only when the
    # user says flash_attn_interface is built (Hopper only)
    assert sized.attention_kernel == "fa2" and sized.stages["text_encoder"].weight_cast_bytes == 0
    fa3 = size_on_gpu(replace(w, runtime=Runtime("wan", flash_attention=3)), "h100-sxm")
    assert fa3.attention_kernel == "fa3"
    assert fa3.stages["diffusion_core"].seconds < sized.stages["diffusion_core"].seconds
    # --t5-cpu: the encoder's 2 x 4,844,723,109,888 FLOPs at 1 TFLOP/s on the host, off the GPU
    host = size_on_gpu(replace(w, runtime=Runtime("wan", t5_cpu=True)), "h100-sxm")
    te = host.stages["text_encoder"]
    assert (te.bound, te.seconds, te.activation_bytes) == ("host", 2 * 4_844_723_109_888 / 1e12, 0)
    assert host.stages["diffusion_core"].weights_bytes == 57_153_966_336 + 507_570_124
    faster = size_on_gpu(replace(w, runtime=Runtime("wan", t5_cpu=True)), "h100-sxm", host_flops=4e12)
    assert faster.stages["text_encoder"].seconds == te.seconds / 4
    args = ["report", "--model", w.model, "--size", "256x128", "--frames", "5", "--steps", "2", "--gpu", "h100-sxm"]
    assert main([*args, "--runtime", "wan", "--offload", "--t5-cpu", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["gpu"]["runtime"] == {
        "name": "wan", "offload": True, "t5_cpu": True, "convert_model_dtype": False, "flash_attention": None,
        "attention": None, "torch": None, "vae_tiling": False, "vae_dtype": None, "attention_kernel": "fa2",
    }  # fmt: skip
    assert doc["workload"]["runtime"]["name"] == "wan"
    # the DiT moves in and out once: 2 x 57,153,966,336 bytes at 64 GB/s x 0.7
    assert doc["stages"]["diffusion_core"]["host_copy"]["bytes"] == 2 * 57_153_966_336
    assert doc["gpu"]["host_link"]["bytes_per_s"] == pytest.approx(44.8e9, rel=1e-12)
    notes = " ".join(doc["assumptions"])
    assert "runtime: --runtime wan --offload --t5-cpu, as the original Wan-Video/Wan2.1 generate.py run it" in notes
    assert "the text encoder runs on the host CPU at 1 TFLOP/s" in notes and "weight casts: the DiT" in notes
    assert main([*args, "--runtime", "wan", "--t5-cpu", "--host-tflops", "0", "--format", "json"]) == 2
    assert "host-tflops" in capsys.readouterr().err


def _original_timesteps(steps: int, shift: float, n: int = 1000) -> list[int]:
    """The original FlowUniPCMultistepScheduler's arithmetic (wan/utils/fm_solvers_unipc.py): the
    init's float32 sigmas (shift 1), then set_timesteps(steps, shift=shift) in numpy float64."""
    import numpy as np

    alphas = np.linspace(1, 1 / n, n)[::-1].copy()
    sigmas = torch.from_numpy(1.0 - alphas).to(dtype=torch.float32)
    sigma_max, sigma_min = sigmas[0].item(), sigmas[-1].item()
    s = np.linspace(sigma_max, sigma_min, steps + 1).copy()[:-1]
    s = shift * s / (1 + (shift - 1) * s)
    return torch.from_numpy(s * n).to(dtype=torch.int64).tolist()  # type: ignore[no-any-return]


@pytest.mark.parametrize("shift", [0.5, 1.0, 3.0, 5.0, 8.0, 12.0, 16.0])
def test_original_scheduler_timesteps_are_exact(shift: float) -> None:
    from hybrid.sampler import wan_flow_timesteps

    for steps in (1, 2, 4, 10, 20, 27, 40, 50, 100, 1000):
        assert wan_flow_timesteps(steps, shift) == _original_timesteps(steps, shift), (steps, shift)


def test_the_expert_split_follows_the_runtimes_scheduler() -> None:
    from hybrid.sampler import flow_timesteps, wan_flow_timesteps
    from hybrid.schedule import expert_steps

    # 40 steps at shift 3, boundary 900: diffusers' sigmas start at 1, the original's at 0.999, and
    # step 11's timestep lands on either side of the boundary
    assert (flow_timesteps(40, 3.0)[10], wan_flow_timesteps(40, 3.0)[10]) == (900, 899)
    kw = {"model": "wan2.2-i2v-a14b", "width": 256, "height": 128, "frames": 5, "flow_shift": 3.0}
    assert expert_steps(Workload.of(**kw)) == (11, 29)
    assert expert_steps(Workload.of(**kw, runtime=WAN)) == (10, 30)
    # at the published shifts the two agree: T2V-A14B 26 / 14 at 12, I2V-A14B 15 / 25 at 5
    for model, split in (("wan2.2-t2v-a14b", (26, 14)), ("wan2.2-i2v-a14b", (15, 25))):
        assert expert_steps(Workload.of(model=model)) == expert_steps(Workload.of(model=model, runtime=WAN)) == split


def test_no_branch_on_a_runtime_name_in_the_library() -> None:
    # a runtime is a record (hybrid.runtime.RUNTIME_DEFS): code asks it, never its name
    import pathlib
    import re

    branch = re.compile(r"""(name|runtime|rt)\s*[!=]=\s*["'](wan|diffusers)["']|["'](wan|diffusers)["']\s*[!=]=""")
    root = pathlib.Path(__file__).resolve().parents[1] / "hybrid"
    hits = [f"{p.name}:{i}" for p in root.rglob("*.py") for i, line in enumerate(p.read_text().splitlines(), 1)
            if branch.search(line)]  # fmt: skip
    assert hits == []


def test_a_new_runtime_is_one_record(monkeypatch: pytest.MonkeyPatch) -> None:
    # a copy of diffusers whose DiT keeps float32 weights under autocast and whose VAE never moves:
    # one record, and the whole sizing follows it (weights, casts, placement) with no code change
    import hybrid.runtime as runtime

    record = replace(
        runtime.RUNTIME_DEFS["diffusers"],
        name="fp32-dit",
        weight_dtypes={**runtime.RUNTIME_DEFS["diffusers"].weight_dtypes, "transformer": "float32"},
        never_moved=("vae",),
    )
    monkeypatch.setitem(runtime.RUNTIME_DEFS, "fp32-dit", record)
    w = Workload.of(model="wan2.1-t2v-1.3b", width=256, height=128, frames=5, steps=2)
    base = size_on_gpu(w, "h100-sxm")
    new = size_on_gpu(replace(w, runtime=Runtime("fp32-dit", offload=True)), "h100-sxm")
    # diffusers keeps all resident: text encoder 5,680,910,336 x 2 + DiT 1,418,996,800 x 2 + VAE 126,892,531 x 4
    assert base.stages["diffusion_core"].weights_bytes == 11_361_820_672 + 2_837_993_600 + 507_570_124
    # the record: the DiT in float32 (x 4), the text encoder swapped out, the VAE never moved
    assert new.stages["diffusion_core"].weights_bytes == 5_675_987_200 + 507_570_124
    # 2 steps x 2 passes re-cast the DiT's 1,401,421,824 Linear/Conv3d parameters: read 4 + write 2 bytes each
    assert new.stages["diffusion_core"].weight_cast_bytes == 4 * 6 * 1_401_421_824 == 33_634_123_776
    assert base.stages["diffusion_core"].weight_cast_bytes == 0
    moved = {c for _, c, _ in Runtime("fp32-dit", offload=True).moves(w.spec, w.spec.pipeline_def.stages)}
    assert moved == {"text_encoder", "transformer"}


def test_a_kernel_runs_on_its_architecture_family_whatever_the_chip() -> None:
    from hybrid.runtime import family, runs_on

    # gpus.json names the chip or the refresh: the RTX 5090's GB202 and the B300's Blackwell Ultra are Blackwell
    assert [family(a) for a in ("Blackwell (GB202)", "Blackwell Ultra", "Ampere (GA102)", "Ada Lovelace")] == [
        "Blackwell", "Blackwell", "Ampere", "Ada Lovelace",
    ]  # fmt: skip
    assert (
        runs_on("sage3", "Blackwell (GB202)") and runs_on("sage3", "Blackwell Ultra") and runs_on("sage3", "Blackwell")
    )
    assert not runs_on("sage3", "Hopper") and not runs_on("fa3", "Blackwell (GB202)") and runs_on("sage2", "Volta")


def test_sageattention3_runs_on_the_rtx5090_it_was_measured_on(capsys: pytest.CaptureFixture[str]) -> None:
    # its kernel rates are the SageAttention3 paper's RTX 5090 figure: --attention sage3 and --optimise sage3 run
    assert main(["report", "--model", "wan2.1-t2v-1.3b", "--gpu", "rtx5090", "--attention", "sage3"]) == 0
    assert "attention: sage3" in capsys.readouterr().out
    assert main(["report", "--model", "wan2.1-t2v-1.3b", "--gpu", "rtx5090", "--optimise", "sage3"]) == 0
    capsys.readouterr()
    assert main(["report", "--model", "wan2.1-t2v-1.3b", "--gpu", "rtx5090", "--attention", "fa3"]) == 2
    assert "attention: fa3 runs on Hopper GPUs only, not Blackwell (GB202)" in capsys.readouterr().err
