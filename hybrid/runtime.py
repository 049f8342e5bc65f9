"""Runtimes: the code base that runs a pipeline and the flags its users pass, as data.

Two code bases publish Wan timings, and they load and run the same models differently:

``diffusers`` (default): the diffusers pipelines as their examples load them (text encoder and DiT
in bfloat16, image encoder and VAE in float32, :data:`COMPONENT_DTYPES`), every
component resident on the GPU; with ``--offload`` (``enable_model_cpu_offload``) only the running
component is, each moved in when it is called and out when the next one is.

``wan``: the original repositories' ``generate.py`` (``Wan-Video/Wan2.1``, ``Wan-Video/Wan2.2``),
every claim below cited to its code in :data:`SOURCES`:

* the DiT keeps float32 weights and runs under ``torch.amp.autocast(bfloat16)``, so each of its
  Linear and Conv3d layers casts its weight on every call (autocast caches casts only of weights
  that require grad; the models are ``requires_grad_(False)``); ``--convert-model-dtype`` (Wan2.2
  only) stores them in bfloat16. The text encoder is bfloat16, CLIP float16, the VAE float32.
* the VAE lives on the GPU for the whole job; with ``--offload`` (``--offload_model True``, the
  default on one GPU) the text encoder, CLIP and the DiT are moved in for their stage and out after
  it; the two A14B experts are swapped at the boundary on one GPU with or without it.
* ``--t5-cpu`` runs the text encoder on the host CPU: it takes no GPU memory and its seconds come
  from a stated host throughput (``hybrid/data/efficiency_defaults.json``, ``host_cpu``).
* attention runs FlashAttention-3 where ``flash_attn_interface`` imports (Hopper), else
  FlashAttention-2 (``--flash-attention`` picks one).
* every step runs the conditional and the unconditional pass, whatever the guide scale (CFG on).
* Wan2.2's model embeds the timestep per token for every model (``t.expand(B, seq_len)``), so the
  A14B experts carry TI2V's per-token time embedding and float32 (B, N, 6, D) modulation.

Moving weights is timed over the GPU's host link (``hybrid/data/gpus.json``, ``host_link_gbs``)
at a stated achieved fraction; a component that stays resident is loaded once per process, which a
job's seconds do not include (the published runs average several samples after a warm-up).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.models import ModelSpec
    from hybrid.pipelines import StageDef

RUNTIMES: tuple[str, ...] = ("diffusers", "wan")
"""Code bases a job can run on (``--runtime``); the first is the default."""
FLASH_ATTENTION: tuple[int, ...] = (2, 3)
"""FlashAttention versions the original Wan repositories call (``--flash-attention``)."""
FA3_ARCHITECTURES: tuple[str, ...] = ("Hopper",)
"""Where FlashAttention-3 runs (its repository: H100/H800, sm90)."""

COMPONENT_DTYPES: dict[str, str] = {
    "text_encoder": "bfloat16",
    "image_encoder": "float32",
    "transformer": "bfloat16",
    "transformer_2": "bfloat16",
    "vae": "float32",
}
"""Weight and compute dtype of each model component (torch's spelling), as diffusers' Wan examples
load them: text encoder and transformer in bfloat16, the image encoder and the VAE in float32."""

WAN_WEIGHT_DTYPES: dict[str, str] = {
    "text_encoder": "bfloat16",
    "image_encoder": "float16",
    "transformer": "float32",
    "transformer_2": "float32",
    "vae": "float32",
}
"""Weight dtype of each component as the original repositories load it (``t5_dtype``,
``clip_dtype``, ``WanModel.from_pretrained`` in float32, ``Wan2_1_VAE(dtype=torch.float)``)."""
WAN_COMPUTE_DTYPES: dict[str, str] = {**WAN_WEIGHT_DTYPES, "transformer": "bfloat16", "transformer_2": "bfloat16"}
"""Compute dtype: the DiT runs under bfloat16 autocast whatever its weights are stored in."""

SOURCES: dict[str, str] = {
    "dit-fp32": "Wan-Video/Wan2.2 wan/text2video.py _configure_model: `if convert_model_dtype: "
    "model.to(self.param_dtype)`, else the float32 weights WanModel.from_pretrained loads; Wan2.1's "
    "generate.py has no --convert_model_dtype",
    "autocast": "Wan-Video/Wan2.1 and Wan2.2 generate(): sampling runs under `torch.amp.autocast('cuda', "
    "dtype=self.param_dtype)` (bfloat16); autocast re-casts weights that do not require grad on every call "
    "(tests/test_runtime.py measures it)",
    "offload": "Wan-Video/Wan2.2 generate.py: `offload_model = False if world_size > 1 else True`; "
    "wan/text2video.py: `self.text_encoder.model.cpu()` after encoding and the DiTs `.cpu()` after "
    "denoising when offload_model; Wan2.1 wan/image2video.py likewise moves CLIP in and out",
    "experts": "Wan-Video/Wan2.2 wan/text2video.py _prepare_model_for_timestep: `if offload_model or "
    "self.init_on_cpu` the expert not needed goes `.to('cpu')` and the needed one `.to(self.device)`; "
    "init_on_cpu is True on one GPU (False only with FSDP or sequence parallel)",
    "vae": "Wan-Video/Wan2.2 wan/text2video.py: `Wan2_1_VAE(vae_pth=..., device=self.device)`, float32, never moved",
    "t5-cpu": "Wan-Video/Wan2.2 wan/text2video.py: with t5_cpu the encoder runs on torch.device('cpu') and "
    "only the context moves to the GPU",
    "flash-attention": "Wan-Video/Wan2.2 wan/modules/attention.py: flash_attn_interface (FlashAttention-3) "
    "when importable, else flash_attn (FlashAttention-2)",
    "cfg": "Wan-Video/Wan2.1 and Wan2.2 generate(): `noise_pred_uncond = model(..., **arg_null)` runs every step "
    "whatever guide_scale is",
    "per-token": "Wan-Video/Wan2.2 wan/modules/model.py WanModel.forward: `t = t.expand(t.size(0), seq_len)`, "
    "then time_embedding and time_projection per token under autocast(float32)",
}
"""The original repositories' code behind each claim (``Wan-Video`` snapshots, 2026-11-25)."""


@dataclass(frozen=True)
class Runtime:
    """How a job is run: the code base (``name``) and its users' flags."""

    name: str = "diffusers"
    offload: bool = False
    t5_cpu: bool = False
    convert_model_dtype: bool = False
    flash_attention: int | None = None
    """``wan``: 3 or 2; ``None``: 3 on Hopper, else 2."""

    def __post_init__(self) -> None:
        if self.name not in RUNTIMES:
            raise ValueError(f"runtime: unknown runtime {self.name!r}; valid: {', '.join(RUNTIMES)}")
        for flag, value in (("t5-cpu", self.t5_cpu), ("convert-model-dtype", self.convert_model_dtype)):
            if not isinstance(value, bool):
                raise ValueError(f"{flag}: must be true or false, got {value!r}")
            if value and self.name != "wan":
                raise ValueError(f"{flag}: a flag of the original Wan repository; valid only with --runtime wan")
        if not isinstance(self.offload, bool):
            raise ValueError(f"offload: must be true or false, got {self.offload!r}")
        if self.flash_attention is not None:
            if self.name != "wan":
                raise ValueError("flash-attention: valid only with --runtime wan (diffusers runs PyTorch SDPA)")
            if self.flash_attention not in FLASH_ATTENTION:
                raise ValueError(f"flash-attention: {self.flash_attention!r} is invalid; valid: 2, 3")

    def check(self, spec: ModelSpec, architecture: str | None = None) -> None:
        """``ValueError`` where a flag does not exist for ``spec``'s repository or ``architecture``."""
        if self.convert_model_dtype and spec.pipeline_def.wan_repo != "Wan2.2":
            raise ValueError(
                f"convert-model-dtype: {spec.name} runs on the Wan2.1 repository, whose generate.py has no "
                "--convert_model_dtype; valid only for Wan2.2 models"
            )
        if self.flash_attention == 3 and architecture is not None and architecture not in FA3_ARCHITECTURES:
            raise ValueError(
                f"flash-attention: FlashAttention-3 runs on {', '.join(FA3_ARCHITECTURES)} only, not {architecture}; "
                "valid: 2"
            )

    # -- what the runtime changes -------------------------------------------------------------

    def per_token_timestep(self, spec: ModelSpec) -> bool:
        """Whether the DiT embeds one timestep per token: the pipeline's ``expand_timesteps``, or
        every Wan2.2 model on the original repository."""
        p = spec.pipeline_def
        return p.expand_timesteps or (self.name == "wan" and p.wan_repo == "Wan2.2")

    def weight_dtype(self, component: str) -> str:
        """The dtype ``component``'s weights are stored in."""
        if self.name == "diffusers":
            return COMPONENT_DTYPES[component]
        if self.convert_model_dtype and component.startswith("transformer"):
            return "bfloat16"
        return WAN_WEIGHT_DTYPES[component]

    def compute_dtype(self, component: str) -> str:
        """The dtype ``component``'s matmuls run in."""
        return COMPONENT_DTYPES[component] if self.name == "diffusers" else WAN_COMPUTE_DTYPES[component]

    def casts_weights(self, component: str) -> bool:
        """Whether ``component`` casts float32 weights to bfloat16 on every call (autocast)."""
        return self.weight_dtype(component) == "float32" and self.compute_dtype(component) != "float32"

    def attention_kernel(self, architecture: str) -> str:
        """``sdpa`` (diffusers: PyTorch's scaled_dot_product_attention), ``fa3`` or ``fa2``."""
        if self.name == "diffusers":
            return "sdpa"
        version = self.flash_attention or (3 if architecture in FA3_ARCHITECTURES else 2)
        return f"fa{version}"

    def on_host(self, component: str) -> bool:
        """Whether ``component`` runs on the host CPU (``--t5-cpu``)."""
        return self.t5_cpu and component == "text_encoder"

    def swapped(self, spec: ModelSpec, component: str, gpus: int = 1) -> bool:
        """Whether ``component`` is moved onto the GPU for its stage and off it after, every job
        (else it stays resident, loaded once per process); the A14B experts swap on one GPU only
        (``init_on_cpu`` is off with several)."""
        if self.on_host(component):
            return False
        if self.name == "diffusers":
            return self.offload
        if component == "vae":
            return False
        experts = spec.pipeline_def.boundary_ratio is not None and component.startswith("transformer")
        return self.offload or (experts and gpus == 1)

    def moves(self, spec: ModelSpec, stages: Iterable[StageDef], gpus: int = 1) -> list[tuple[str, str, str]]:
        """Weight copies of one job, in order: ``(stage, component, "in" | "out")``. A swapped
        component moves in before the first stage that needs it, while the swapped components on the
        GPU move out; whatever is still on the GPU moves out at the end of the job. A move in is
        charged to the stage it serves, a move out to the last stage that used the component."""
        out: list[tuple[str, str, str]] = []
        on_gpu: list[str] = []
        last_user: dict[str, str] = {}
        for sd in stages:
            c = sd.component
            if not self.swapped(spec, c, gpus):
                continue
            if c not in on_gpu:
                out += [(last_user[old], old, "out") for old in on_gpu]
                on_gpu = [c]
                out.append((sd.name, c, "in"))
            last_user[c] = sd.name
        out += [(last_user[c], c, "out") for c in on_gpu]
        return out

    def describe(self) -> str:
        """The runtime and its flags, as a user would type them."""
        flags = [f"--runtime {self.name}"]
        flags += [f for f, on in (("--offload", self.offload), ("--t5-cpu", self.t5_cpu)) if on]
        if self.convert_model_dtype:
            flags.append("--convert-model-dtype")
        if self.flash_attention is not None:
            flags.append(f"--flash-attention {self.flash_attention}")
        return " ".join(flags)


DIFFUSERS = Runtime()
"""The default runtime: diffusers pipelines, every component resident."""
