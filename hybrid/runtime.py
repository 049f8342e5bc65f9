"""Runtimes as data: each code base that runs a pipeline is a :class:`RuntimeDef` record (per
component weight and compute dtype, the attention kernel per GPU architecture, what offload moves,
where the text encoder may run, the parallel layouts it supports, the sampler it uses, each with its
source); a :class:`Runtime` is a user's choice of one and its flags. Nothing branches on a
runtime's name: a new runtime is a new record.

The code bases that publish Wan timings load and run the same models differently:

``diffusers`` (default): the diffusers pipelines as their examples load them (text encoder and DiT
in bfloat16, image encoder and VAE in float32, :data:`COMPONENT_DTYPES`), every
component resident on the GPU; with ``--offload`` (``enable_model_cpu_offload``) only the running
component is, each moved in when it is called and out when the next one is. Attention is PyTorch's
``scaled_dot_product_attention``, whose backend the installed torch picks by GPU architecture
(:data:`SDPA_CUDNN_FIRST`): under torch 2.13 cuDNN attention on Hopper and Blackwell (sm90, sm100),
its FlashAttention-2 kernels elsewhere.

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
* attention runs FlashAttention-2 by default: the README's install (``pip install -r
  requirements.txt``) installs ``flash_attn``, FlashAttention-2; ``wan/modules/attention.py`` calls
  FlashAttention-3 only where ``flash_attn_interface`` imports, a separate build from source of
  flash-attention's ``hopper/`` folder (Hopper only) that neither README asks for.
  ``--flash-attention 3`` says it is installed (the Wan2.2 README's timing table ran it on Hopper).
* every step runs the conditional and the unconditional pass, whatever the guide scale (CFG on).
* Wan2.2's model embeds the timestep per token for every model (``t.expand(B, seq_len)``), so the
  A14B experts carry TI2V's per-token time embedding and float32 (B, N, 6, D) modulation.

``lightx2v``, ``fastvideo``, ``xdit``, ``vllm-omni``, ``sglang``, ``diffsynth``: LightX2V, FastVideo, xDiT,
vLLM-Omni, SGLang diffusion (``sglang.multimodal_gen``) and DiffSynth-Studio as their own configs and defaults
run them, each claim cited in :data:`SOURCES` (weight dtypes, attention per GPU architecture, offload
granularity, compilation, layouts, sampler). Their DiT ops are modelled by
diffusers' (the same matmuls and attention; their own elementwise kernels are not modelled), and each
record's ``note`` says what else is not.

Moving weights is timed over the GPU's host link (``hybrid/data/gpus.json``, ``host_link_gbs``)
at a stated achieved fraction; a component that stays resident is loaded once per process, which a
job's seconds do not include (the published runs average several samples after a warm-up).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any

from hybrid.errors import InputError
from hybrid.memo import memoised, on_clear
from hybrid.pipelines import StageDef
from hybrid.presets import ModelSpec

ATTENTION_KERNELS: tuple[str, ...] = (
    "sdpa-math",
    "sdpa-flash",
    "sdpa-efficient",
    "cudnn",
    "fa2",
    "fa3",
    "xformers",
    "sage2",
    "sage3",
    "flex",
    "fp8-attention",
)
"""Attention kernels by the names the records use: PyTorch SDPA's math, FlashAttention-2 (its own
build of FA2's kernels; AOTriton's on ROCm) and memory-efficient backends, cuDNN attention (SDPA's
cuDNN backend), the flash-attn package's FlashAttention-2 (``flash_attn``) and -3
(``flash_attn_interface``), xFormers, SageAttention 2 and 3, FlexAttention, FP8 attention."""

VAE_DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")
"""The dtypes ``--vae-dtype`` takes."""

KERNEL_ARCHITECTURES: dict[str, tuple[str, ...]] = {"fa3": ("Hopper",), "sage3": ("Blackwell",)}
"""Where an attention kernel runs, by architecture family (:func:`family`), for kernels that do not run
everywhere (FlashAttention-3's repository: H100/H800, sm90; SageAttention 3's FP4 microscaling kernels:
Blackwell's FP4 tensor cores, thu-ml/SageAttention's sageattention3_blackwell, measured on the RTX 5090)."""


def family(architecture: str) -> str:
    """An architecture's family, as a kernel's build targets it: ``gpus.json``'s architecture without
    its chip in brackets or its refresh (``Blackwell (GB202)``, ``Blackwell Ultra`` -> ``Blackwell``)."""
    return architecture.split(" (")[0].removesuffix(" Ultra")


def supports(where: tuple[str, ...], architecture: str) -> bool:
    """Whether a GPU of ``architecture`` is of one of the families ``where`` (``()``: every one)."""
    return not where or family(architecture) in where


def runs_on(kernel: str, architecture: str) -> bool:
    """Whether attention ``kernel`` runs on a GPU of ``architecture`` (:data:`KERNEL_ARCHITECTURES`)."""
    return supports(KERNEL_ARCHITECTURES.get(kernel, ()), architecture)


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
    "flash-attention": "Wan-Video/Wan2.1 (9737cba) and Wan2.2 (42bf4cf) README 'Install dependencies': `# Ensure "
    "torch >= 2.4.0` / `pip install -r requirements.txt`, whose requirements.txt lists `flash_attn` "
    "(FlashAttention-2); wan/modules/attention.py: `try: import flash_attn_interface; FLASH_ATTN_3_AVAILABLE = True "
    "except ModuleNotFoundError: FLASH_ATTN_3_AVAILABLE = False` and `if (version is None or version == 3) and "
    "FLASH_ATTN_3_AVAILABLE:` FlashAttention-3, else `assert FLASH_ATTN_2_AVAILABLE` and "
    "flash_attn.flash_attn_varlen_func; flash_attn_interface comes from Dao-AILab/flash-attention README "
    "'FlashAttention-3 beta release': 'Requirements: H100 / H800 GPU, CUDA >= 12.3. To install: cd hopper; "
    "python setup.py install'. Wan2.2 README, its timing table's note (2): 'with FlashAttention3 deployed on "
    "Hopper architecture GPUs'",
    "cfg": "Wan-Video/Wan2.1 and Wan2.2 generate(): `noise_pred_uncond = model(..., **arg_null)` runs every step "
    "whatever guide_scale is",
    "per-token": "Wan-Video/Wan2.2 wan/modules/model.py WanModel.forward: `t = t.expand(t.size(0), seq_len)`, "
    "then time_embedding and time_projection per token under autocast(float32)",
    "dit-ops": "Wan-Video/Wan2.1 and Wan2.2 wan/modules/model.py: WanModel's own forward (not diffusers' "
    "WanTransformer3DModel): float32 WanLayerNorm/WanRMSNorm outputs, modulation and residual adds under "
    "`amp.autocast(dtype=torch.float32)`, rope_apply in float64 complex per sample, flash_attention casting q and "
    "k to bfloat16 and its output back (wan/modules/attention.py), the head in float32",
    "diffusers-dtypes": "diffusers 0.42 pipelines/wan/pipeline_wan.py and pipeline_wan_i2v.py EXAMPLE_DOC_STRING: "
    "`AutoencoderKLWan.from_pretrained(..., torch_dtype=torch.float32)`, `CLIPVisionModel.from_pretrained(..., "
    "torch_dtype=torch.float32)`, the pipeline `from_pretrained(..., torch_dtype=torch.bfloat16)`",
    "diffusers-offload": "diffusers 0.42 pipelines/pipeline_utils.py enable_model_cpu_offload: 'moves one whole "
    "model at a time to the accelerator when its forward method is called, and the model remains in accelerator "
    "until the next model runs'",
    "diffusers-sdpa": "diffusers 0.42 models/transformers/transformer_wan.py WanAttnProcessor: dispatch_attention_fn, "
    "PyTorch scaled_dot_product_attention by default; its backend is torch's choice (SDPA_CUDNN_FIRST)",
    "lightx2v-config": "ModelTC/LightX2V (f8aee98, 2026-08-21) configs/wan/wan_t2v.json and "
    'configs/platforms/nvidia/wan_t2v.json: `"infer_steps": 50`, `"self_attn_1_type": "flash_attn3"`, '
    '`"cross_attn_1_type": "flash_attn3"`, `"cpu_offload": false` (wan_i2v.json: 40 steps); '
    'configs/wan/wan_t2v_compile.json alone adds `"use_compile": true`; configs/platforms/amd_rocm/wan_t2v.json: '
    "`\"aiter_attn\"`; docs/EN/source/getting_started/quickstart.md 'Install Attention Operators': 'Option A: "
    "Flash Attention 2', 'Option B: Flash Attention 3 (for Hopper architecture GPUs)', 'Option C: SageAttention 2 "
    "(Recommended)'; dockerfiles/Dockerfile builds flash-attention, its hopper/ folder and SageAttention",
    "lightx2v-dtypes": 'ModelTC/LightX2V lightx2v/utils/envs.py GET_DTYPE: `os.getenv("DTYPE", "BF16")`; '
    "lightx2v/models/runners/wan/wan_runner.py: `T5EncoderModel(... dtype=torch.bfloat16`, `CLIPModel("
    'dtype=torch.float16`, the VAE `"dtype": self._resolve_vae_dtype(self.config.get("vae_dtype"), '
    "GET_DTYPE())`",
    "vae-ops": "diffusers 0.42.1 (installed) models/autoencoders/autoencoder_kl_wan.py WanRMS_norm.forward: "
    "`needs_fp32_normalize = x.dtype in (torch.float16, torch.bfloat16) ...`, `F.normalize(x.float() if "
    "needs_fp32_normalize else x, ...).to(x.dtype)`; WanUpsample.forward: `super().forward(x.float()).type_as(x)`. "
    "ModelTC/LightX2V (13a492e5) lightx2v/models/video_encoders/hf/wan/vae.py RMS_norm.forward: `return "
    "F.normalize(x, dim=(1 if self.channel_first else -1)) * self.scale * self.gamma + self.bias`; Upsample.forward: "
    "`return super().forward(x)` (whose decomposition traces the same float32 casts as diffusers'). Not modelled: its "
    "Wan2.2 VAE (vae_2_2.py, 16bdc579) normalises by `(x.pow(2).mean(dims, keepdim=True) + 1e-6).sqrt()` in the "
    "input's dtype, other ops than either, so diffusers' stand in; DiffSynth-Studio's VAE "
    "(diffsynth/models/wan_video_vae.py, 03ea2789) keeps the original RMS_norm and moves latents and frames through "
    "the host, not read further",
    "lightx2v-vae": "ModelTC/LightX2V lightx2v/models/runners/wan/wan_runner.py load_vae_encoder/decoder: "
    '`"use_tiling": self.config.get("use_tiling_vae", False)` and the VAE `"dtype": self._resolve_vae_dtype('
    'self.config.get("vae_dtype"), GET_DTYPE())`; lightx2v/models/video_encoders/hf/wan/vae.py: '
    "`tile_sample_min_height = 256`, `tile_sample_stride_height = 192`, tiled_encode/tiled_decode as diffusers'. "
    "Before 84e756e9 ('[Feat] Support vae bf16', 2025-08-28) the VAE ran in float32 only (`WanVAE(... "
    "dtype=torch.float`, e.g. at 1202fcd0, 2025-07-20)",
    "wan-animate": "Wan-Video/Wan2.2 (42bf4cf; its Animate code unchanged since 29d4a35d, 2025-09-19) wan/animate.py "
    "WanAnimate.generate: `context = self.text_encoder([input_prompt], ...)` and `context_null = "
    "self.text_encoder([n_prompt], ...)` once per video at any guide scale (368-378), inside the segment loop "
    "`ref_latents = self.vae.encode(refer_pixel_values)` (512-514) and `clip_context = "
    "self.clip.visual([refer_pixel_values[0, :, None]])` (519-520), `if guide_scale > 1:` the unconditional "
    "call (613-621); `offload_model` only at 372-373 (`self.text_encoder.model.cpu()`); "
    "`WanAnimateModel.from_pretrained(..., torch_dtype=self.param_dtype, device_map=self.device)` (115-119); "
    "wan/configs/wan_animate_14B.py: 20 steps, shift 5.0, guide scale 1.0, clip_len 77; "
    "wan/modules/animate/model_animate.py: the timestep embedded per sample (406-411)",
    "wan-animate2": "Wan-Video/Wan-Animate-2 as BrightenU/Wan-Animate-2-NPU copies it (its CHANGELOG.md at 4d95e25 "
    "lists what it changed: flex_attention replaced by split FlashAttention, the rotary embedding in float32, the "
    "device and the yamls' sp_size/sharding_size, from the official 8): pipelines/wan_animate_2_pipeline.py (4d95e25) "
    "WanAnimate2MPIPipeline.__call__ (step=10, sample_guide_scale=1.0, clip_len=81, width=720, height=1280; "
    "get_padding_len pads the video as LightX2V's _padding_length does) and inference_core, per segment: "
    "`ref_latents = vae.encode(ref_pixel_values...)`, `clip_context = clip.visual(...)` on the reference image, "
    "vae.encode of the conditioning video y_reft and of the driving clip (condition_latents), "
    "`condition_clip_context = clip.visual(...)` on its first frame, `condition_y = vae.encode(...)` of the same clip "
    "again, `context = t5(prompt)`, `context_ref = t5(prompt_ref)` (and `context_null = t5(neg_prompt)` when "
    "sample_guide_scale > 1), `model(condition_latents, ..., method='forward_ref')`, the steps' "
    "`method='forward_gen'` calls (the unconditional one when sample_guide_scale > 1), `vae.decode` on every rank; "
    "the DiT from a bf16 safetensors, every model on the GPU (no offload; FSDP's offload_policy=None); "
    "wanxiang/models/wan_animate_2_model.py (11cc2a3): forward_ref returns after the blocks (no head), "
    "Incontext_AttentionBlock.forward_ref caches `k_cache[index] = k_ref` (normed, before the rotary) and v_ref, over "
    "sp ranks the views of one `ops.diff_all_to_all` of `torch.cat([q, k, v])`; forward_gen's head output gathered by "
    "`gather_forward_split_backward`; wanxiang/ops/distributed.py: all_to_all's contiguous chunks, `dist.all_to_all`, "
    "`torch.cat`",
    "lightx2v-animate2": "ModelTC/LightX2V (f8aee98, 2026-08-21; added by a0e56cb5, 'add LTX-2.5 and Wan-Animate-2 "
    "inference support (#1378)') lightx2v/models/runners/wan/wan_animate2_runner.py: `_padding_length` (the frames "
    "past the whole 80-frame strides padded to 28, else up to the next multiple of 4) and `_plan_segments` (81-frame "
    "segments, one frame of overlap, the last one 29 to 81 frames); `_build_segment_inputs`: per segment two VAE "
    "encodes of its frames (the driving slice, the reft video), `run_image_encoder(driving[:, :, 0])`, a K/V cache "
    '`create_self_attn_kv_cache(..., kv_cache_scheme="static")` and `"origin_len": '
    'int(self.config["target_video_length"])`; networks/wan/infer/animate2/transformer_infer.py: '
    "`_reference_self_attention` stores the rotated k and v (`store_kv`), `infer_reference` runs no head, "
    "`_generation_self_attention` rotates only the generation q and k and packs the cached K and V through "
    "`_pack_stream` buffers of their own into `k_packed[q_total:]`; configs/wan22/wan_animate2_distill.json: "
    '`"infer_steps": 10`, `"enable_cfg": false`, `"target_video_length": 81`, `"self_attn_1_type": '
    '"sage_attn2"`, `"use_31_block": true`, `"vae_dtype": "torch.bfloat16"`',
    "lightx2v-animate": "ModelTC/LightX2V (f8aee98, 2026-08-21; added by 210d0804, 2025-09-27, '[Feat] Add wan2.2 "
    'animate model (#339)\') lightx2v/models/runners/wan/wan_animate_runner.py `@RUNNER_REGISTER("wan2.2_animate")`: '
    "segments of target_video_length with refert_num carried over (get_valid_len and inputs_padding as the "
    "original's), per segment `run_image_encoder(self.refer_pixel_values)` and three VAE encodes (pose, reference, "
    "conditioning video) and one decode; wan_runner.py run_text_encoder encodes the negative prompt only `if "
    'self.config.get("enable_cfg", False)`; configs/wan22/wan_animate.json: `"infer_steps": 20`, '
    '`"sample_shift": 5.0`, `"enable_cfg": false`, `"refert_num": 1`, `"target_video_length": 77`, '
    '`"self_attn_1_type": "flash_attn3"`; no vae_dtype (bf16, GET_DTYPE()) nor use_tiling_vae; '
    "networks/wan/infer/animate/pre_infer.py runs the motion and face encoders in every call; wan_animate_8gpu.json's "
    "seq_p_size 8 runs the face adapter's norm, attention and linear2 over every token on every rank "
    "(infer/animate/transformer_infer.py) with a parallel VAE",
    "lightx2v-s2v": "ModelTC/LightX2V (f8aee98, 2026-08-21; added by 92b2f1b8, 2026-06-02, '[feat]: support wan2.2 "
    "s2v, support dist infer, pose-audio (#1113)') lightx2v/models/runners/wan/wan_s2v_runner.py "
    '`@RUNNER_REGISTER("wan2.2_s2v")` (lightx2v.infer --model_cls wan2.2_s2v --task s2v; scripts/wan22/'
    "run_wan22_s2v.sh: 'aligned with Wan2.2/run_s2v_full.sh'); configs/wan22/wan_s2v.json: `\"infer_steps\": 40`, "
    '`"sample_guide_scale": 4.5`, `"enable_cfg": true`, `"infer_frames": 80`, `"motion_frames": 73`, '
    '`"max_area": 720896`, `"cpu_offload": false`, `"vae_dtype": "torch.float32"` (no use_tiling_vae: '
    "untiled); the runner encodes the negative prompt when CFG is off too (`if context_null is None: ... "
    "context_null = text_encoder.infer([neg_prompt])`); input_encoders/hf/wan/s2v/audio_encoder.py: "
    '`AudioEncoder(device="cpu")`, `extract_audio_feat(..., dtype=torch.float32)`; networks/wan/infer/s2v/wan_ops.py '
    "calls `flash_attn_interface.flash_attn_varlen_func` and raises 'flash_attn3 is required for Wan S2V alignment' "
    "without it, whatever the attention types its config names; its WanS2VModel mirrors the original ('Mirror of "
    "WanS2VSelfAttention.forward (model_s2v.py + model.py)'); configs/dist_infer/wan22_s2v_dist_ulysses.json: "
    '`"seq_p_size": 8, "seq_p_attn_type": "ulysses"`, the tokens split by torch.chunk '
    "(infer/s2v/transformer_infer.py _chunk_along_seq)",
    "diffusers-vae": "diffusers 0.42 models/autoencoders/autoencoder_kl_wan.py AutoencoderKLWan.enable_tiling: "
    "`self.use_tiling = True`, tiles of `tile_sample_min_height = 256` pixels every `tile_sample_stride_height = "
    "192`, tiled_encode/tiled_decode; its dtype is the one it is loaded in "
    "(`AutoencoderKLWan.from_pretrained(..., torch_dtype=...)`)",
    "lightx2v-offload": "ModelTC/LightX2V lightx2v/models/networks/base_model.py: `self.cpu_offload = "
    'self.config.get("cpu_offload", False)`, `self.offload_granularity = '
    'self.config.get("offload_granularity", "block")`',
    "lightx2v-parallel": "ModelTC/LightX2V docs/EN/source/method_tutorials/parallel.md: 'The DiT component "
    "supports two parallel attention mechanisms: Ulysses and Ring, while also supporting Cfg parallel "
    "inference'; lightx2v/utils/set_config.py: `tensor_p_size * cfg_p_size * seq_p_size`",
    "lightx2v-sampler": "ModelTC/LightX2V lightx2v/models/schedulers/wan/scheduler.py WanScheduler: `self.shift = "
    "1`, `alphas = np.linspace(1, 1 / self.num_train_timesteps, ...)[::-1]`, `sigmas = np.linspace("
    "self.sigma_max, self.sigma_min, infer_steps + 1).copy()[:-1]`, solver_order 2: the original's arithmetic",
    "fastvideo-dtypes": "hao-ai-lab/FastVideo (2f3d407, 2026-08-21) fastvideo/configs/pipelines/wan.py "
    'WanT2V480PConfig: `precision: str = "bf16"`, `vae_precision: str = "fp32"`, `vae_decode_precision: str = '
    '"bf16"`, `text_encoder_precisions ... ("fp32", )`; WanI2V480PConfig `image_encoder_precision: str = '
    '"fp32"`',
    "fastvideo-attention": "hao-ai-lab/FastVideo fastvideo/platforms/cuda.py get_attn_backend_cls: FLASH_ATTN "
    "when `import flash_attn` succeeds, else 'Using Torch SDPA backend.'; fastvideo/attention/utils/"
    "flash_attn_default.py: flash_attn_interface (FA3) if it imports, else flash_attn (FA2); pyproject.toml: "
    "`\"torch==2.12.0\"` and '# flash-attn: uv pip install flash-attn==2.8.1'; docs/getting_started/"
    "quick_start.md: 'Also optionally install flash-attn'",
    "fastvideo-args": "hao-ai-lab/FastVideo fastvideo/fastvideo_args.py: `dit_cpu_offload: bool = True`, "
    "`dit_layerwise_offload: bool = True` ('dit_layerwise_offload is enabled, automatically disabling "
    "dit_cpu_offload'), `text_encoder_cpu_offload`, `image_encoder_cpu_offload`, `vae_cpu_offload: bool = True`, "
    "`enable_torch_compile: bool = False`, `if self.sp_size == -1: self.sp_size = self.num_gpus`",
    "fastvideo-sampler": "hao-ai-lab/FastVideo fastvideo/pipelines/basic/wan/wan_pipeline.py: '# We use "
    "UniPCMScheduler from Wan2.1 official repo, not the one in diffusers.' `FlowUniPCMultistepScheduler("
    "shift=fastvideo_args.pipeline_config.flow_shift)` (the original builds it with `shift=1`); "
    "fastvideo/models/schedulers/scheduling_flow_unipc_multistep.py __init__: `sigmas = shift * sigmas / (1 + "
    "(shift - 1) * sigmas)`, `self.sigma_max = self.sigmas[0].item()`; set_timesteps: `np.linspace("
    "self.sigma_max, self.sigma_min, num_inference_steps + 1).copy()[:-1]`, `if shift is None: shift = "
    "self.config.shift`, shifted again; pipelines/stages/timestep_preparation.py calls "
    "`scheduler.set_timesteps(num_inference_steps, device=device, ...)` with no shift; presets.py: 50 steps "
    "(T2V), 40 (I2V)",
    "xdit-dtypes": "xdit-project/xDiT (175e0bf, 2026-07-14) xfuser/model_executor/models/runner_models/wan.py "
    "_load_model: `xFuserWanTransformer3DWrapper.from_pretrained(..., torch_dtype=torch.bfloat16` and "
    "`WanPipeline.from_pretrained(..., torch_dtype=torch.bfloat16, transformer=transformer)`; "
    "transformers/transformer_wan.py subclasses diffusers' WanAttnProcessor ('we can fuse the entire QKV "
    "projection into a single linear')",
    "xdit-attention": "xdit-project/xDiT xfuser/core/distributed/runtime_state.py _select_attention_backend: "
    '`elif env_info["has_flash_attn_4"]: FLASH_4`, `elif env_info["has_flash_attn_3"]: FLASH_3`, '
    "`elif torch.backends.cudnn.is_available(): CUDNN`; on ROCm `AITER` if has_aiter, `FLASH` if has_flash_attn, "
    "else `SDPA`; setup.py: flash-attn an extra ('necessary if ring_degree > 1')",
    "xdit-args": "xdit-project/xDiT xfuser/config/args.py: `use_torch_compile: bool = False`, "
    "`enable_model_cpu_offload: bool = False`; runner_models/wan.py DefaultInputValues: 1280x720, 81 frames, "
    "num_inference_steps=40, guidance_scale=3.5, flow_shift=5",
    "xdit-layouts": "xdit-project/xDiT runner_models/wan.py ModelCapabilities: `ulysses_degree=True, "
    "ring_degree=True, fully_shard_degree=True, ... use_cfg_parallel=True`; COMMON_FSDP_STRATEGY: transformer "
    '`"wrap_attrs": ["blocks"], "dtype": torch.bfloat16`, text_encoder `"offload_policy": "cpu"`; '
    "README's model table marks Wan2.1 and Wan2.2 without CFG parallel, with SP",
    "vllm-omni-pipeline": "vllm-project/vllm-omni (6ef3ced) vllm_omni/diffusion/models/wan2_2/pipeline_wan2_2.py "
    'Wan22Pipeline: `dtype = getattr(od_config, "dtype", torch.bfloat16)`, `UMT5EncoderModel.from_pretrained(..., '
    "torch_dtype=dtype`, `AutoencoderKLWan.from_pretrained(..., torch_dtype=torch.float32`, "
    "`FlowUniPCMultistepScheduler(num_train_timesteps=1000, shift=flow_shift, ...)` then "
    "`self.scheduler.set_timesteps(num_steps, device=device)`; its scheduler (vllm_omni/diffusion/models/"
    "schedulers) shifts the init sigmas by `shift` and set_timesteps again by `self.config.shift`, as FastVideo's",
    "vllm-omni-attention": "vllm-project/vllm-omni docs/user_guide/diffusion/attention_backends.md (a611038): "
    "'FLASH_ATTN | Wraps FlashAttention 2. Default on Hopper / Ada / Ampere when flash-attn is installed'; "
    "Blackwell: 'TRTLLM_ATTN — on datacenter Blackwell (sm_100 / sm_103) when flashinfer is installed, the "
    "model's head_dim is 128, and the model is mask-free', then 'CUDNN_ATTN — when cuDNN >= 9.5 is available'; "
    "'dense, the two are comparable'; vllm_omni/diffusion/attention/backends/utils/fa.py: 'Candidate 2: vLLM's "
    "maintained FA2/FA3/FA4 dispatcher' `from vllm.vllm_flash_attn import flash_attn_varlen_func` ('vLLM ships "
    "its maintained FlashAttention dispatcher with CUDA builds'); vLLM's flash_attn_interface: "
    "`DEFAULT_FA_VERSION = 2`",
    "vllm-omni-compile": "vllm-project/vllm-omni docs/user_guide/diffusion/regional_compilation.md: 'Regional "
    "compilation applies torch.compile to the repeated transformer blocks declared by a diffusion model. It is "
    "the default compilation scope when diffusion inference runs without --enforce-eager.'",
    "vllm-omni-parallel": "vllm-project/vllm-omni docs/user_guide/diffusion/parallelism/overview.md: Tensor "
    "Parallelism, 'Sequence Parallelism: Splits sequence dimension across GPUs (Ulysses-SP, Ring-Attention, or "
    "hybrid)', 'CFG-Parallel', Pipeline Parallelism, VAE Parallel, 'HSDP: Shards full model weights via PyTorch "
    "FSDP2'",
    "sglang-attention": "sgl-project/sglang (the stored versions the code index holds; the 1.2 GB snapshot "
    "exceeds the fetch limit) python/sglang/multimodal_gen/runtime/platforms/cuda.py (026456e): "
    "`torch.backends.cuda.enable_cudnn_sdp(False)` ('pytorch 2.5 uses cudnn sdpa by default, which will cause crash on "
    "some models'); _resolve_default_attn_backend: `if cls.is_sm120(): ... return AttentionBackendEnum.TORCH_SDPA` "
    "else `return AttentionBackendEnum.FA`; get_attn_backend_cls_str: `if target_backend == AttentionBackendEnum.FA "
    "and cls.is_blackwell():` ('cuDNN SDPA is 1.25-1.5x faster than the FA4 CuTe kernels on sm_100 for dense diffusion "
    "attention') `return _DYNAMIC_CUDNN_SDPA_BACKEND_CLS_STR`; 'Cannot use FlashAttention backend for Volta and Turing "
    "GPUs.'; platforms/interface.py: `is_blackwell`: `torch.cuda.get_device_capability()[0] == 10`, `is_sm120`: "
    "`[0] == 12`; runtime/layers/attention/backends/flash_attn.py (0017ffd): `fa_ver = 3`, `from "
    "sgl_kernel.flash_attn import flash_attn_varlen_func`, on Hopper `from flash_attn_interface import "
    "flash_attn_varlen_func as flash_attn_varlen_func_upstream`; sgl-kernel/python/sgl_kernel/flash_attn.py "
    "is_fa3_supported (a later version than 01d2a3d, which said sm90 only): 'for sgl-kernel right now, we can build "
    "fa3 on sm80/sm86/sm89/sm90a. That means if you use A100/A*0/L20/L40/L40s/4090 you can use fa3.'; "
    "another stored version's tests of cuda.py: `test_blackwell_sets_fa_ver4_when_supported` "
    "(FlashAttention-4 on sm100 before the cuDNN default) and `test_sm120_prefers_sage_attention_when_available`; "
    "docs/diffusion/performance/attention_backends.md (11387e7): selected via the CLI flag `--attention-backend`, "
    "'CUDA: prefers FlashAttention (FA3/FA4) when supported; otherwise falls back to PyTorch SDPA.', 'ROCm: uses "
    "FlashAttention when available; otherwise falls back to PyTorch SDPA.'",
    "sglang-dtypes": "sgl-project/sglang python/sglang/multimodal_gen/configs/pipeline_configs/wan.py (055e950) "
    'WanT2V480PConfig: `precision: str = "bf16"`, `vae_precision: str = "fp32"`, `vae_decode_precision: str = '
    '"bf16"`, `text_encoder_precisions: tuple[str, ...] = field(default_factory=lambda: ("fp32",))`; WanI2V480PConfig '
    '`image_encoder_precision: str = "fp32"`; Wan2_2_T2V_A14B_Config and Wan2_2_I2V_A14B_Config `vae_decode_precision: '
    'str = "fp32"`; Wan2_2_TI2V_5B_Config `expand_timesteps: bool = True`',
    "sglang-args": "sgl-project/sglang python/sglang/multimodal_gen/runtime/server_args.py (011b8ca) ServerArgs: "
    "`enable_torch_compile: bool = False`, `tp_size`, `sp_degree`, `ulysses_degree`, `ring_degree`, "
    "`enable_cfg_parallel: bool = False`, `use_fsdp_inference: bool = False`, `dit_cpu_offload`, "
    "`dit_layerwise_offload`, `text_encoder_cpu_offload`, `image_encoder_cpu_offload`, `vae_cpu_offload`; "
    "_adjust_offload on a GPU of 30 GB or more, for a video model: `if self.dit_cpu_offload is None: "
    "self.dit_cpu_offload = True`, and likewise True for the text encoder, image encoder and VAE; "
    "_adjust_attention_backend: 'Ring Attention is only supported for flash attention or sage attention backend "
    "for now'; docs/diffusion/api/cli.md (031ba4d): '--tp-size {N}: tensor parallelism size, mainly for encoders', "
    "'--ulysses-degree {N} and --ring-degree {N}: USP parallelism controls', '--enable-cfg-parallel {true|false}', "
    "'--performance-mode {manual|auto|speed|memory} / --mode: preset for latency/throughput and memory defaults. "
    "`auto` is the default' (not in server_args.py at 011b8ca)",
    "sglang-sampler": "sgl-project/sglang python/sglang/multimodal_gen/runtime/pipelines/wan_pipeline.py (181f294): "
    "'# We use UniPCMScheduler from Wan2.1 official repo, not the one in diffusers.' `FlowUniPCMultistepScheduler("
    "shift=server_args.pipeline_config.flow_shift)`, as FastVideo's (its files say 'Copied and adapted from: "
    "https://github.com/hao-ai-lab/FastVideo')",
    "diffsynth-dtypes": "modelscope/DiffSynth-Studio (fed7b18, 2026-08-20) diffsynth/pipelines/wan_video.py "
    "WanVideoPipeline.from_pretrained: `torch_dtype: torch.dtype = torch.bfloat16`; diffsynth/diffusion/"
    'base_pipeline.py download_and_load_models: `vram_config["computation_dtype"] = vram_config["computation_dtype"] '
    "or self.torch_dtype`; diffsynth/models/model_loader.py load_model_file: `load_model(model_class, path, "
    'model_config, vram_config["computation_dtype"], ...)`; diffsynth/core/loader/model.py: `model = '
    "model.to(dtype=torch_dtype, device=device)`: the text encoder, CLIP, DiT and VAE alike",
    "diffsynth-attention": "modelscope/DiffSynth-Studio diffsynth/models/wan_video_dit.py flash_attention(): "
    "`elif FLASH_ATTN_3_AVAILABLE:` flash_attn_interface.flash_attn_func, `elif FLASH_ATTN_2_AVAILABLE:` "
    "flash_attn.flash_attn_func, `elif SAGE_ATTN_AVAILABLE:` sageattn, `else:` `F.scaled_dot_product_attention(q, k, "
    'v)`; pyproject.toml dependencies: `"torch>=2.0.0"` and no flash-attn, sageattention or xformers; '
    "docs/en/Model_Details/Wan.md 'Installation': `pip install -e .`; 'Multi-GPU Parallel Acceleration': 'To enable "
    "multi-GPU parallel acceleration, please install `flash_attn` and `xfuser`'; diffsynth/core/attention/attention.py "
    "(other models): `os.environ.get('DIFFSYNTH_ATTENTION_IMPLEMENTATION')` chooses",
    "diffsynth-offload": "modelscope/DiffSynth-Studio docs/en/Pipeline_Usage/VRAM_management.md 'CPU Offload': 'we "
    'can move some components to memory when they are not needed for computation\' with `"offload_device": '
    '"cpu"` in each ModelConfig; diffsynth/models/model_loader.py: `return vram_config["offload_dtype"] is not None '
    'and vram_config["offload_device"] is not None` (else no VRAM management); wan_video.py __call__: '
    "`self.load_models_to_device(self.in_iteration_models)` and at the boundary "
    "`self.load_models_to_device(self.in_iteration_models_2)`, `self.load_models_to_device(['vae'])`; "
    "docs/en/Model_Details/Wan.md: `vram_limit=...` 'the framework will automatically control model parameter loading "
    "based on remaining VRAM'; no torch.compile in wan_video.py or wan_video_dit.py",
    "diffsynth-usp": "modelscope/DiffSynth-Studio diffsynth/utils/xfuser/xdit_context_parallel.py initialize_usp: "
    "`initialize_model_parallel(sequence_parallel_degree=dist.get_world_size(), ring_degree=1, "
    "ulysses_degree=dist.get_world_size())`; usp_dit_forward: `chunks = torch.chunk(x, "
    "get_sequence_parallel_world_size(), dim=1)`, each padded to the first (`torch.nn.functional.pad`), `x = "
    "get_sp_group().all_gather(x, dim=1)` after the blocks; wan_video.py `use_usp: bool = False`, `if use_usp: "
    "pipe.enable_usp()`; `if cfg_scale != 1.0:` `if cfg_merge:` one batched call, else a second model_fn call",
    "diffsynth-sampler": "modelscope/DiffSynth-Studio diffsynth/diffusion/flow_match.py set_timesteps_wan: "
    "`sigma_max = 1.0`, `sigmas = torch.linspace(sigma_start, sigma_min, num_inference_steps + 1)[:-1]`, `sigmas = "
    "shift * sigmas / (1 + (shift - 1) * sigmas)`, `timesteps = sigmas * num_train_timesteps` (float, Euler steps); "
    "wan_video.py: `if timestep.item() < switch_DiT_boundary * 1000 and self.dit2 is not None` switches to dit2",
    "sdpa-2.4": "pytorch/pytorch#128539 (2024-06-12), 'Revert \"[cuDNN][SDPA] Remove TORCH_CUDNN_SDPA_ENABLED=1, "
    "enable cuDNN SDPA by default on H100 and 2nd on other archs >= sm80 (#125343)\"': 'Cherry pick of revert', "
    "so 2.4 ships cuDNN last; pytorch/pytorch#138907 quotes sdp_utils' default_order (flash attention first)",
    "sdpa-2.5.0": "pytorch/pytorch#138522 (2024-10-21, 'Make CuDNN Attention Opt in'): 'Currently we have a "
    "cudnn_order that says on H100 w/ new enough CuDNN backend (we ship a 9.1 version in OSS) try to run CuDNN "
    "attention first. We have already encountered a few bugs with the release of 2.5'; pytorch/pytorch#142132 "
    "quotes the 2.5 release blog: 'CUDNN backend for SDPA will be automatically enabled on eligible hardware'",
    "sdpa-2.5.1": "pytorch/pytorch#138522: 'This PR puts the CuDNN backend as the lowest precedence in the backend "
    "list', then '@pytorchbot cherry-pick --onto release/2.5 -c critical' (so 2.5.1 onwards); "
    "pytorch/torchtitan#1209 (2025-05-20, drisspg): 'The plan for the next release is to make this the default "
    "priority list for H100 and B200'",
    "sdpa-2.9": "pytorch/pytorch#162073 (2025-09-03, merged), '[cuDNN][SDPA] Enable cuDNN SDPA by default for SM "
    "9.0, SM 10.0': 'for 2.9' (the cuDNN-version gate of later releases was not read for 2.9)",
    "sdpa-2.10": "huggingface/transformers#48163 (2026-08-31, closed): 'check_prefer_cudnn_attention() in "
    "sdp_utils.cpp sets the same backend order this PR sets, gated on cudnn_version > 91500 and sm90/sm100, and "
    "that code is already in 2.10. What changes at 2.11 is the bundled cuDNN crossing the threshold'; "
    "sdp_utils.cpp: '// cuDNN 9.15.1 required for seq_len not divisible by 128 fix, CUDA <= 12.9 wheels ship with "
    "older cuDNN see #169849'",
    "sdpa-2.11": "pytorch/pytorch sdp_utils.cpp check_prefer_cudnn_attention(): `return cudnn_version > 91500 && "
    "(major == 9 || major == 10)` and priority_order() then sets `cudnn_order = {cudnn_attention, "
    "flash_attention, efficient_attention, math}`; huggingface/transformers#48163: 'on recent torch the default "
    "is already cuDNN'; pytorch/pytorch#193893 (2026-08-18) runs 2.11.0+cu128 with cuDNN 9.19.0.56 and 2.13.0+cu130 "
    "with cuDNN 9.20.0.48, 'unpinned sdpa (default)' matching CUDNN_ATTENTION on B200",
}
"""The code behind each claim of the records (``Wan-Video`` snapshots, 2026-11-25 and 2026-12-03; diffusers
0.42; PyTorch's pull requests and issues, read 2026-12-03; SGLang's files at the commits the code index stores, and
DiffSynth-Studio's snapshot, read 2026-12-03)."""

SDPA_CUDNN_FIRST: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("2.4.0", "2.4.1", (), "sdpa-2.4"),
    ("2.5.0", "2.5.0", ("Hopper",), "sdpa-2.5.0"),
    ("2.5.1", "2.8.0", (), "sdpa-2.5.1"),
    ("2.9.0", "2.9.1", ("Hopper", "Blackwell"), "sdpa-2.9"),
    ("2.10.0", "2.10.0", (), "sdpa-2.10"),
    ("2.11.0", "2.13.0", ("Hopper", "Blackwell"), "sdpa-2.11"),
)
"""Which GPU architectures PyTorch's ``scaled_dot_product_attention`` sends to cuDNN attention by
default, per torch release: ``(first, last, architectures, source)``. Everywhere else its priority
order runs FlashAttention-2 first (``sdp_utils.cpp``: flash, efficient, math, cudnn), and a
Wan-shaped call (bf16, head dim 128, no mask) takes it. ``Blackwell`` is sm100 (B200), not the sm120
GeForce parts; the source key names the pull request or issue quoted in :data:`SOURCES`."""
TORCH_AS_INSTALLED = "2.13.0"
"""The torch a fresh install gets where a runtime pins none: the release this project installs and
tests against (README: ``pip install torch==2.13.0``)."""


@memoised(64)
def _torch_version(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def sdpa_kernels(torch_version: str = TORCH_AS_INSTALLED) -> dict[str, str]:
    """The architectures whose SDPA runs cuDNN attention under ``torch_version`` (``{arch: "cudnn"}``);
    every other architecture runs ``sdpa-flash``. ``InputError`` outside 2.4.0-2.13.0 (not read)."""
    v = _torch_version(torch_version)
    for first, last, architectures, _ in SDPA_CUDNN_FIRST:
        if _torch_version(first) <= v <= _torch_version(last):
            return dict.fromkeys(architectures, "cudnn")
    raise InputError(
        f"torch: SDPA's backend order is recorded for torch {SDPA_CUDNN_FIRST[0][0]} to "
        f"{SDPA_CUDNN_FIRST[-1][1]}, not {torch_version}"
    )


@dataclass(frozen=True)
class Streaming:
    """How a code base streams one component from host memory block by block under offload
    (:attr:`RuntimeDef.streamed`)."""

    blocks: int
    """Blocks on the GPU at once."""
    root: str
    """The rest of the component (embedders, head, final norm): ``step``, copied in and out around each step (both
    passes of CFG); ``kept``, on the GPU for the whole job once there (loaded once, not timed)."""
    overlapped: bool
    """Whether the next block's copy runs on its own stream while one computes (else each copy waits)."""


@dataclass(frozen=True)
class RuntimeDef:
    """One code base that runs Wan pipelines, as data (see the module docstring). Text fields are
    what the reports say of it; ``{diffusers_class}`` and ``{wan_repo}`` stand for the pipeline's."""

    name: str
    weight_dtypes: Mapping[str, str]
    """Per component, the dtype its weights are stored in (torch's spelling, :mod:`hybrid.dtypes`)."""
    compute_dtypes: Mapping[str, str]
    """Per component, the dtype its matmuls run in."""
    attention: Mapping[int | None, str]
    """The attention kernel by ``--flash-attention`` choice (``None``: none given); a kernel whose
    :data:`KERNEL_ARCHITECTURES` exclude the GPU falls back to ``attention_fallback``."""
    attention_fallback: str
    attention_by_architecture: Mapping[str, str]
    """The kernel with no ``--flash-attention`` choice on GPUs of an architecture where it is not
    ``attention[None]``, where the runtime picks by architecture; empty for a record that runs PyTorch
    SDPA (:attr:`sdpa_torch`: the torch it installs picks, :meth:`architecture_kernels`)."""
    attention_title: str
    """How an error names the attention it runs."""
    offload: str
    """What ``--offload`` does, in words (every component moved in for its stage and out after)."""
    never_moved: tuple[str, ...] = ()
    """Components that stay on the GPU for the whole job even with ``--offload``."""
    experts_swap_on_one_gpu: bool = False
    """Whether the two A14B experts are moved in and out at the boundary on one GPU without ``--offload``."""
    host_text_encoder: bool = False
    """Whether the text encoder can run on the host CPU (``--t5-cpu``)."""
    host_components: tuple[str, ...] = ()
    """Components it always runs on the host CPU (the original Wan2.2-S2V's audio encoder)."""
    convert_model_dtype_repos: tuple[str, ...] = ()
    """The repositories whose code takes ``--convert-model-dtype`` (DiT weights stored in bfloat16)."""
    cfg_always: bool = False
    """Whether every step runs both passes of CFG whatever the guide scale (``--no-cfg`` refused)."""
    per_token_timestep_repos: tuple[str, ...] = ()
    """Repositories whose model embeds the timestep per token for every pipeline."""
    dit_ops: str = "diffusers"
    """Whose transformer forward runs, op for op (:attr:`hybrid.geometry.CallShape.dit_ops`): diffusers'
    ``WanTransformer3DModel`` or the original ``WanModel`` (``wan``, :data:`hybrid.models.wan_dit.WAN_OPS`)."""
    image_encoder_ops: str = "transformers"
    """Whose CLIP vision tower runs (:attr:`hybrid.geometry.CallShape.image_encoder_ops`): transformers'
    ``CLIPVisionModel``, or ``wan``, the original ``CLIPModel.visual`` (31 blocks in float16)."""
    sampler: str = "diffusers"
    """Whose flow-UniPC timesteps split the steps between experts (:func:`hybrid.sampler.high_noise_steps`)."""
    sampler_text: str = ""
    cfg_passes_text: str = ""
    runner: str = ""
    """How the report's CFG assumption names the code that runs the passes."""
    code: str = ""
    """How the sizing's assumptions name the code base."""
    note: str = ""
    """A line of the report's assumptions about this code base (empty: none)."""
    streamed: Mapping[str, Streaming] = field(default_factory=dict)
    """Components its offload streams from host memory block by block rather than moving whole (``transformer``:
    every DiT expert), how (:class:`Streaming`, :meth:`Runtime.streams`): LightX2V's DiT
    (``WanOffloadTransformerInfer``: two CUDA buffers, the next block copied in while one runs, ``pre_weight`` and
    the non-block weights in and out around each step) and T5 (one block buffer loaded before each block runs, its
    embedding left on the GPU); FastVideo's DiT (``dit_layerwise_offload``: the blocks only)."""
    offload_default: bool = False
    """Whether the code offloads without being told (FastVideo: ``dit_layerwise_offload`` and the encoders' and VAE's
    cpu offload are on by default): its jobs size as ``--offload`` ones (:attr:`Runtime.offloading`)."""
    compiled: str = ""
    """What its defaults compile or capture (torch.compile, CUDA graphs), with the code ("" where its
    defaults run eagerly); the time model runs every op eagerly."""
    layouts: Mapping[str, str] = field(default_factory=dict)
    """What it implements of ``ulysses``, ``ring``, ``cfg_parallel``, ``fsdp``, ``pad`` (uneven token
    splits padded), with the code that does it ("" where it does not)."""
    no_ring_repos: Mapping[str, str] = field(default_factory=dict)
    """Repositories that run no ring attention, with what they run instead."""
    layout_note: str = ""
    """What the sizing's layout assumptions add about this code base's sequence parallelism."""
    sources: tuple[str, ...] = ()
    """Keys of :data:`SOURCES` behind the record."""
    vae_tiling: str = ""
    """How a user of the code base runs the VAE tile by tile (``--vae-tiling``); ``""``: it cannot."""
    vae_dtype: str = ""
    """How a user of the code base sets the VAE's dtype (``--vae-dtype``); ``""``: it cannot."""
    vae_norm_upcast: bool = True
    """Whether its code for the Wan2.1 VAE normalises a float32 copy of a half-precision input, as diffusers'
    ``WanRMS_norm`` does (:attr:`hybrid.models.wan_vae.AutoencoderKLWanConfig.upcast_norm`; ``vae-ops`` in
    :data:`SOURCES`): LightX2V's does not. A VAE run in float32 runs the same ops either way; the Wan2.2 VAE runs
    diffusers' ops on every runtime (:meth:`Runtime.vae_norm_upcast`)."""
    vae_parallel: str = ""
    """How its VAE decode, and the encode of an image-to-video job's condition video, split over the ranks of a
    layout (a grid of latent chunks, one a rank, the frames or latents all-gathered:
    :attr:`hybrid.geometry.CallShape.vae_grid`), with the code; ``""``: every rank runs them whole."""
    condition_each_clip: bool = False
    """Whether the code encodes Wan2.2-S2V's -1s condition video in every clip (LightX2V's ``build_cond_latents``,
    called in its clip loop) rather than once per video (the original's): :attr:`hybrid.geometry.CallShape.
    condition_encodes`."""
    fsdp_always: tuple[str, ...] = ()
    """What its code shards over the ranks of any layout whatever it is told (``--fsdp`` names; the original
    Wan-Animate-2 pipeline: ``fully_shard`` of every DiT block and ``shard_fn(t5.model)``): a layout of several GPUs
    without them is refused."""
    segment_encodes: int = 2
    """Videos of a segment's frames its Wan2.2-Animate or Wan-Animate-2 code encodes per segment
    (:attr:`hybrid.geometry.CallShape.segment_encodes`): diffusers' two, the original Wan-Animate-2's three."""
    segment_tail: int = 0
    """Where the code makes a video's last segment shorter than the others: the fewest frames past the overlap it pads
    that segment to (LightX2V's Wan-Animate-2: 28, :meth:`hybrid.pipelines.Pipeline.last_segment_frames`); 0: every
    segment whole (diffusers pads the video to whole segments)."""
    relighting_lora: str = ""
    """How the code runs Wan2.2-Animate's relighting LoRA (``--relighting-lora``), with the code; ``""``: not modelled
    (refused)."""
    attention_only: str = ""
    """The attention kernel the code calls whatever it is told (``""``: it takes ``--attention``): a GPU the
    kernel does not run on, and ``--attention`` naming another kernel, are refused."""
    stage_calls: Mapping[str, str] = field(default_factory=dict)
    """Stages whose calls the code counts otherwise than the pipeline's stage does (stage name: a kind of
    :data:`hybrid.pipelines.CALLS`)."""
    pipelines: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per pipeline, the fields the code base's own code for that pipeline (its runner, its ``generate``) sets
    otherwise than its other pipelines': :meth:`of` lays them over the record."""
    sdpa_torch: str = ""
    """The torch release the code base installs, where it runs PyTorch SDPA: that release's backend order
    (:func:`sdpa_kernels`) picks its kernel by architecture; ``""``: its attention is its own choice, not
    torch's. ``--torch`` replaces it."""

    @property
    def offload_granularity(self) -> str:
        """What its offload moves of the DiT at a time: ``block`` where it streams it (:attr:`streamed`), else
        ``component`` (the whole model per stage)."""
        return "block" if "transformer" in self.streamed else "component"

    def of(self, pipeline: str) -> RuntimeDef:
        """The record as the code base runs ``pipeline`` (its :attr:`pipelines` entry laid over it)."""
        return _overlaid(self.name, pipeline)

    def architecture_kernels(self, torch: str | None = None) -> Mapping[str, str]:
        """The kernel by GPU architecture where it is not ``attention[None]``: an SDPA record's from the
        backend order of ``torch`` (default: the release it installs), another's :attr:`attention_by_architecture`."""
        return sdpa_kernels(torch or self.sdpa_torch) if self.sdpa_torch else self.attention_by_architecture


_DIFFUSERS_DTYPES = {
    "text_encoder": "bfloat16",
    "image_encoder": "float32",
    "audio_encoder": "float32",
    "transformer": "bfloat16",
    "transformer_2": "bfloat16",
    "vae": "float32",
}
_WAN_WEIGHTS = {
    "text_encoder": "bfloat16",
    "image_encoder": "float16",
    "audio_encoder": "float32",
    "transformer": "float32",
    "transformer_2": "float32",
    "vae": "float32",
}

_LIGHTX2V_DTYPES = {
    "text_encoder": "bfloat16",
    "image_encoder": "float16",
    "audio_encoder": "float32",
    "transformer": "bfloat16",
    "transformer_2": "bfloat16",
    "vae": "bfloat16",
}
_FASTVIDEO_DTYPES = {
    "text_encoder": "float32",
    "image_encoder": "float32",
    "transformer": "bfloat16",
    "transformer_2": "bfloat16",
    "vae": "float32",
}
_XDIT_DTYPES = dict.fromkeys(_DIFFUSERS_DTYPES, "bfloat16")
_VLLM_OMNI_DTYPES = {**_XDIT_DTYPES, "vae": "float32"}
_SGLANG_DTYPES = _FASTVIDEO_DTYPES
"""SGLang diffusion's Wan configs name the same precisions as FastVideo's, whose code it copies (``sglang-dtypes``)."""
_DIFFSYNTH_DTYPES = dict.fromkeys(_DIFFUSERS_DTYPES, "bfloat16")
FASTVIDEO_TORCH = "2.12.0"
"""The torch FastVideo pins (pyproject.toml: ``"torch==2.12.0"``)."""

RUNTIME_DEFS: dict[str, RuntimeDef] = {
    r.name: r
    for r in (
        RuntimeDef(
            name="diffusers",
            weight_dtypes=_DIFFUSERS_DTYPES,
            compute_dtypes=_DIFFUSERS_DTYPES,
            attention={None: "sdpa-flash"},
            attention_fallback="sdpa-flash",
            attention_by_architecture={},
            sdpa_torch=TORCH_AS_INSTALLED,
            attention_title="PyTorch SDPA",
            offload="enable_model_cpu_offload: only the running component is on the GPU",
            sampler="diffusers",
            sampler_text="UniPCMultistepScheduler flow sigmas",
            cfg_passes_text="diffusers runs both passes of CFG for both experts when guidance_scale > 1 "
            "(guidance_scale_2 changes no cost)",
            runner="diffusers' {diffusers_class}",
            code="diffusers pipelines",
            layouts={
                "ulysses": "ContextParallelConfig(ulysses_degree=...) (diffusers 0.42 models/_modeling_parallel.py)",
                "ring": "ContextParallelConfig(ring_degree=...), K and V all-gathered up front "
                "(TemplatedRingAttention)",
                "cfg_parallel": "",
                "fsdp": "",
                "pad": "",
            },
            vae_tiling="pipe.vae.enable_tiling()",
            vae_dtype="AutoencoderKLWan.from_pretrained(..., torch_dtype=...)",
            sources=(
                "diffusers-dtypes",
                "diffusers-offload",
                "diffusers-sdpa",
                "diffusers-vae",
                *(row[3] for row in SDPA_CUDNN_FIRST),
            ),
        ),
        RuntimeDef(
            name="wan",
            weight_dtypes=_WAN_WEIGHTS,
            compute_dtypes={**_WAN_WEIGHTS, "transformer": "bfloat16", "transformer_2": "bfloat16"},
            attention={None: "fa2", 2: "fa2", 3: "fa3"},
            attention_fallback="fa2",
            attention_by_architecture={},
            attention_title="FlashAttention",
            offload="--offload_model True: the text encoder, CLIP and the DiT moved in for their stage and out after",
            never_moved=("vae",),
            experts_swap_on_one_gpu=True,
            host_text_encoder=True,
            host_components=("audio_encoder",),
            convert_model_dtype_repos=("Wan2.2",),
            cfg_always=True,
            per_token_timestep_repos=("Wan2.2",),
            dit_ops="wan",
            image_encoder_ops="wan",
            sampler="wan",
            sampler_text="the original FlowUniPCMultistepScheduler, sigmas from 0.999",
            cfg_passes_text="the original code runs both passes of CFG for both experts at any guide scale",
            runner="the original Wan-Video/{wan_repo} generate.py, whatever the guide scale",
            code="the original Wan-Video/{wan_repo} generate.py",
            note="runtime: the original Wan-Video/{wan_repo} code (--runtime wan), {dit_ops}{per_token}",
            layouts={
                "ulysses": "--ulysses_size (Wan2.1 wan/distributed/xdit_context_parallel.py through xFuser's USP; "
                "Wan2.2 wan/distributed/ulysses.py)",
                "ring": "--ring_size (Wan2.1 only, xFuser's USP; Wan2.2 runs Ulysses alone)",
                "cfg_parallel": "",
                "fsdp": "--dit_fsdp, --t5_fsdp (wan/distributed/fsdp.py: FSDP FULL_SHARD, one unit per block)",
                "pad": "pads the tokens to a multiple of the degree (xdit_context_parallel.py, ulysses.py)",
            },
            no_ring_repos={"Wan2.2": "runs Ulysses alone (wan/distributed/ulysses.py)"},
            layout_note="under Ulysses each rank runs the original code's own ops (Wan2.2's "
            "wan/distributed/sequence_parallel.py and ulysses.py, checked against a trace of that code: the rotary "
            "table over every token, a timestep per token embedded over the whole sequence in Wan2.2, dist.all_to_all "
            "of q, k and v, the float32 head's output all-gathered); Wan2.1's xFuser USP sends the same tensors and is "
            "modelled by Wan2.2's (its layout copies not traced; with image-to-video's blocks, the pair not "
            "traced); ring attention is modelled by diffusers' per-rank ops",
            pipelines={
                "animate": {
                    "cfg_always": False,
                    "per_token_timestep_repos": (),
                    "never_moved": ("vae", "image_encoder", "transformer"),
                    "offload": "--offload_model True: the text encoder moved back to the host after its encodes, "
                    "nothing else (WanAnimate.generate's only use of it)",
                    "stage_calls": {
                        "text_encoder": "twice",
                        "image_encoder": "segments",
                        "reference_encode": "segments",
                    },
                    "cfg_passes_text": "the original WanAnimate.generate runs the unconditional pass (the negative "
                    "prompt and a blanked face video) only above guide scale 1",
                    "relighting_lora": "generate.py --use_relighting_lora: peft's LoRA layers, rank 128 and alpha 128, "
                    "beside every Linear of the blocks but the face adapters' (wan/modules/animate/animate_utils.py "
                    "get_loraconfig, model.add_adapter in WanAnimate._configure_model), unmerged: per Linear and "
                    "call lora_A and lora_B matmuls, the input cast to bf16 where it is float32, a scale and an add; "
                    "its parameters stored in bf16 with the DiT's",
                    "runner": "the original Wan-Video/Wan2.2 generate.py --task animate-14B",
                    "code": "the original Wan-Video/Wan2.2 generate.py --task animate-14B",
                    "note": "runtime: the original Wan-Video/Wan2.2 code (--runtime wan), WanAnimate.generate: both "
                    "prompts encoded once per video whatever the guide scale; per segment CLIP (the original "
                    "CLIPModel.visual: 31 of its 32 blocks in float16) on the reference image and the reference "
                    "image's VAE encode again, then the pose and conditioning encodes, 20 steps and the decode as "
                    "diffusers; the DiT loaded in bf16 on the GPU and never moved, the VAE in float32; the "
                    "transformer as the "
                    "original WanAnimateModel runs it (float32 norms, modulation and residual stream, the rotary "
                    "embedding in float64 complex, its motion encoder's own blur kernels and float32 basis, the face "
                    "blocks' float32 norms), checked against a trace of that code: the same FLOPs as diffusers' "
                    "class, its own bytes and activations",
                },
                **{
                    pipeline: {
                        "cfg_always": False,
                        "per_token_timestep_repos": (),
                        "convert_model_dtype_repos": (),
                        "host_text_encoder": False,
                        "weight_dtypes": {**_WAN_WEIGHTS, "transformer": "bfloat16"},
                        "never_moved": ("text_encoder", "image_encoder", "vae", "transformer"),
                        "offload": "nothing: the original Wan-Animate-2 pipeline keeps every model on the GPU (no "
                        "offload option; FSDP's offload_policy=None)",
                        "segment_tail": 28,
                        "segment_encodes": 3,
                        "fsdp_always": ("dit", "text_encoder"),
                        "no_ring_repos": {},
                        "stage_calls": {
                            "text_encoder": "segments_guidance_plus_one",
                            "image_encoder": "segments_twice",
                            "reference_encode": "every_segment",
                        },
                        "cfg_passes_text": "the original pipeline runs the unconditional pass (the negative prompt, "
                        "block 9 skipped) only above guide scale 1",
                        "runner": "the original Wan-Video/Wan-Animate-2 pipeline (WanAnimate2MPIPipeline)",
                        "code": "the original Wan-Video/Wan-Animate-2 pipeline (WanAnimate2MPIPipeline)",
                        "note": "runtime: the original Wan-Video/Wan-Animate-2 code (--runtime wan), as "
                        "BrightenU/Wan-Animate-2-NPU copies it: 81-frame segments carried over by one frame, the "
                        "video padded to a last segment of 29 to 81 frames (get_padding_len, as LightX2V's); per "
                        "segment the reference image encoded again (VAE and CLIP), the conditioning video and the "
                        "driving clip encoded, the clip encoded once more (condition_y: three encodes of a segment's "
                        "frames), CLIP on its first frame, the prompt and the reference prompt encoded again (and the "
                        "negative prompt above guide scale 1), one reference pass (no head) and the steps' passes, "
                        "the decode; every model on the GPU; the DiT in bf16, timed by diffusers' "
                        "WanAnimate2Transformer3DModel ops in the original's structure (its float32 residual stream, "
                        "float32 q and k out of its float64 rotary and float32 packed buffers not modelled), its "
                        "compiled FlexAttention at the runtime's attention rate; CLIP the original's 31 blocks in "
                        "float16, the VAE in float32 (the copy's WanVAE wrapper has its float32 autocast commented "
                        "out, leaving the pipeline's bf16 one: the fork's change or upstream's, not told); its "
                        "pipeline's own defaults are 10 steps at guide scale 1.0 and "
                        "a 1280x720 target area (give --size 1280x720: the preset's default is diffusers' 640x800)",
                    }
                    for pipeline in ("animate2", "animate2-distilled")
                },
            },
            sources=(
                "dit-fp32",
                "autocast",
                "offload",
                "experts",
                "vae",
                "t5-cpu",
                "flash-attention",
                "cfg",
                "per-token",
                "dit-ops",
                "wan-animate",
                "wan-animate2",
            ),
        ),
        RuntimeDef(
            name="lightx2v",
            vae_norm_upcast=False,
            weight_dtypes=_LIGHTX2V_DTYPES,
            compute_dtypes=_LIGHTX2V_DTYPES,
            attention={None: "fa3"},
            attention_fallback="fa2",
            attention_by_architecture={},
            attention_title="FlashAttention-3 (its configs' flash_attn3)",
            offload="cpu_offload: the DiT streamed from host memory block by block (offload_granularity 'block': two "
            "blocks on the GPU, each forward copying every block in while the one before runs, the embedders and "
            "head in and out around each step); the text encoder streamed too (t5_cpu_offload: one block buffer, "
            "each block loaded before it runs, its embedding left on the GPU: t5/model.py forward_with_offload); the "
            "image encoder and VAE moved in for their stage and out after (clip_cpu_offload, vae_cpu_offload)",
            sampler="wan",
            sampler_text="LightX2V's WanScheduler, the original's flow-UniPC sigmas from 0.999",
            cfg_passes_text="LightX2V runs both passes of CFG for both experts (enable_cfg)",
            runner="LightX2V's Wan runner (lightx2v.infer --model_cls wan2.1 or wan2.2)",
            streamed={
                "transformer": Streaming(blocks=2, root="step", overlapped=True),
                "text_encoder": Streaming(blocks=1, root="kept", overlapped=False),  # t5/model.py forward_with_offload
            },
            image_encoder_ops="wan",
            code="LightX2V (ModelTC/LightX2V)",
            note="runtime: LightX2V (--runtime lightx2v), its own Wan model code (lightx2v/models/networks/wan) "
            "timed by diffusers' ops: the same matmuls and attention, its own norms, modulation and rotary "
            "kernels not modelled{per_token}; attention FlashAttention-3 as its configs name it (flash_attn3), "
            "on Hopper only: elsewhere FlashAttention-2, its quickstart's Option A (it recommends SageAttention 2, "
            "lossy INT8); on MI300X its ROCm config runs aiter_attn, timed as FlashAttention-2; no torch.compile "
            "(use_compile only in its *_compile.json configs); its CLIPModel (lightx2v/models/input_encoders/hf/wan/"
            "xlm_roberta/model.py) is the original's code with an SDPA call for flash_attention: walked as the "
            "original CLIPModel.visual (31 of 32 blocks in float16, use_31_block true by default)",
            layouts={
                "ulysses": "parallel.seq_p_size with seq_p_attn_type 'ulysses' (docs/EN/source/method_tutorials/"
                "parallel.md)",
                "ring": "parallel.seq_p_size with seq_p_attn_type 'ring'",
                "cfg_parallel": "parallel.cfg_p_size 2 (lightx2v/utils/set_config.py)",
                "fsdp": "",
                "pad": "pads the tokens to a multiple of the ranks before its chunk (lightx2v/models/networks/wan/"
                "model.py _seq_parallel_pre_process: F.pad, torch.chunk)",
            },
            layout_note="LightX2V splits the sequence for Ulysses or ring attention with its own all-to-alls "
            "(lightx2v/common/ops/attn/ulysses_attn.py, ring_attn.py); its per-rank ops are modelled by diffusers'",
            vae_tiling='its config\'s "use_tiling_vae": true',
            vae_dtype='its config\'s "vae_dtype" (float32 only before 2025-08-28)',
            host_components=("audio_encoder",),
            vae_parallel="with a parallel config (vae_parallel defaults to true) every rank decodes one chunk of a "
            "2-D grid of the latents (calculate_2d_grid: the grid dividing both sides closest to square), padded by 2 "
            "latents a side, cuts the padding off and all-gathers the frames (lightx2v/models/video_encoders/hf/wan/"
            "vae.py decode_dist_2d), and encodes an image-to-video job's condition video the same way, its chunk "
            "padded by 1 latent (8 pixels) a side and the latents all-gathered (wan_runner.py get_vae_encoder_output "
            "through encode_local_2d), and Wan2.2-S2V's reference, motion and -1s condition encodes (its wrapper's "
            "encode: encode_dist_2d, each rank's chunk cut from the whole video; a pose video's clips are encoded "
            "whole by vae_encoder.model.encode); Wan2.1's VAE only (Wan2.2's vae_2_2.py has no split: decoded whole "
            "here)",
            pipelines={
                "animate": {
                    "stage_calls": {"image_encoder": "segments", "reference_encode": "segments"},
                    "runner": "LightX2V's wan2.2_animate runner (lightx2v.infer --model_cls wan2.2_animate --task "
                    "animate)",
                    "note": "runtime: LightX2V (--runtime lightx2v), its wan2.2_animate runner (added 2025-09-27) as "
                    "its configs/wan22/wan_animate.json runs it: the original's segments (77 frames, one carried "
                    "over), 20 steps, enable_cfg false (one DiT call a step; the negative prompt encoded only with "
                    "CFG), CLIP and the reference image's VAE encode again in every segment, the motion and face "
                    "encoders inside every DiT call; its own Animate model code in bf16 timed by diffusers' "
                    "WanAnimateTransformer3DModel ops (the same modules and FLOPs); the VAE in bfloat16, untiled; "
                    "attention FlashAttention-3 as its configs name it (its 4090 configs' SageAttention 2 and FP8 are "
                    "what-ifs: --optimise); on several GPUs (its wan_animate_8gpu.json: Ulysses 8) the tokens split "
                    "as for its other models, every face adapter gathering the ranks' queries and attending and "
                    "projecting over all the tokens on every rank (infer_post_adapter), its VAE split over the ranks "
                    "(every encode through the wrapper's encode, and the decode)",
                },
                "animate2-distilled": {
                    "segment_tail": 28,
                    "stage_calls": {"image_encoder": "segments_plus_one"},
                    "dit_ops": "lightx2v",
                    "vae_parallel": "",
                    "runner": "LightX2V's wan22_animate2_distilled runner (lightx2v.infer --model_cls "
                    "wan22_animate2_distilled --task animate)",
                    "note": "runtime: LightX2V (--runtime lightx2v), its wan22_animate2_distilled runner as "
                    "configs/wan22/wan_animate2_distill.json runs it: 81-frame segments carried over by one frame, "
                    "the video padded to a last segment of 29 to 81 frames (_padding_length, _plan_segments: one "
                    "segment more than diffusers where the frames fill whole segments), 10 steps, enable_cfg false; "
                    "CLIP (the original's 31 blocks) on the reference image and on each segment's first driving "
                    "frame; its bf16 model timed by diffusers' WanAnimate2Transformer3DModel ops (its own norms, "
                    "modulation and rotary kernels not modelled) in its own structure: the reference pass fills a K/V "
                    "cache allocated before it with the rotated keys and runs no head, the denoising passes rotate no "
                    "cached key and pack the cached K and V through buffers of their own, the packed FlexAttention "
                    "sized by the config's 81 frames in every segment, the last one's too; its SageAttention 2 "
                    "(reference pass, cross-attention) and compiled FlexAttention timed at the runtime's attention "
                    "rate; the VAE in bfloat16, untiled; on several GPUs (its wan_animate2_distill_8gpu.json: "
                    "Ulysses 8) the tokens padded to the ranks and split, q, k and v all-to-all'd to every token of "
                    "the rank's heads and back (all2all_seq2head, all2all_head2seq: a layout copy each way), the K/V "
                    "cache and the packed FlexAttention split by heads, the head's output all-gathered; its VAE, T5 "
                    "and CLIP run whole on every rank (get_vae_parallel is False); its config's target area is "
                    "1280x720 (give --size 1280x720: the preset's default is diffusers' 640x800)",
                },
                "s2v": {
                    # WanS2VTransformerInfer has no block offloader: the whole DiT moves (its T5 still streams)
                    "streamed": {"text_encoder": Streaming(blocks=1, root="kept", overlapped=False)},
                    "weight_dtypes": {**_LIGHTX2V_DTYPES, "vae": "float32"},
                    "compute_dtypes": {**_LIGHTX2V_DTYPES, "vae": "float32"},
                    "attention_only": "fa3",
                    "condition_each_clip": True,
                    "runner": "LightX2V's wan2.2_s2v runner (lightx2v.infer --model_cls wan2.2_s2v --task s2v)",
                    "note": "runtime: LightX2V (--runtime lightx2v), its wan2.2_s2v runner (added 2026-06-02) and its "
                    "WanS2VModel, which mirrors the original WanModel_S2V: timed by the original's ops (WanModel_S2V's "
                    "blocks over the noisy, reference and motion tokens, an audio injection after 12 of them) in bf16; "
                    "both prompts encoded with CFG on or off; wav2vec2 in float32 on the host CPU; the VAE in float32, "
                    "untiled (its wan_s2v.json); the -1s condition video encoded again in every clip "
                    "(build_cond_latents in its clip loop; the original encodes it once); attention FlashAttention-3 "
                    "always (its S2V ops call "
                    "flash_attn_interface and raise without it); --offload as its cpu_offload moving the whole DiT in "
                    "and out per clip (its S2V blocks run without the block offloader); its config's max_area 720896 "
                    "sizes a 16:9 image smaller than the original's 1280*720 (give --width and --height)",
                },
            },
            sources=(
                "lightx2v-config",
                "lightx2v-animate",
                "lightx2v-animate2",
                "lightx2v-s2v",
                "lightx2v-dtypes",
                "lightx2v-offload",
                "lightx2v-parallel",
                "lightx2v-sampler",
                "lightx2v-vae",
                "vae-ops",
            ),
        ),
        RuntimeDef(
            name="fastvideo",
            weight_dtypes=_FASTVIDEO_DTYPES,
            compute_dtypes=_FASTVIDEO_DTYPES,
            attention={None: "sdpa-flash"},
            attention_fallback="sdpa-flash",
            attention_by_architecture={},
            sdpa_torch=FASTVIDEO_TORCH,
            attention_title="PyTorch SDPA (flash-attn not installed)",
            offload="its defaults (fastvideo_args.py, check_fastvideo_args): dit_layerwise_offload streams the DiT's "
            "blocks from pinned host memory, two on the GPU, every block copied in each forward while the one before "
            "runs and dropped after (its embedders and head stay); the text encoder (FSDP CPU offload, per block: "
            "modelled as a whole move), image encoder and VAE moved in for their call and out after",
            sampler="wan",
            sampler_text="FastVideo's copy of the original FlowUniPCMultistepScheduler, built with the flow shift "
            "and shifted again: its first sigma is the shifted 0.999, the expert split the original's",
            cfg_passes_text="FastVideo runs both passes of CFG for both experts when guidance_scale > 1",
            runner="FastVideo's WanPipeline (fastvideo/pipelines/basic/wan)",
            streamed={"transformer": Streaming(blocks=2, root="kept", overlapped=True)},
            offload_default=True,
            code="FastVideo (hao-ai-lab/FastVideo)",
            note="runtime: FastVideo (--runtime fastvideo), its own Wan model code (fastvideo/models/dits/"
            "wanvideo.py: diffusers' projections, fused float32 LayerNorm-scale-shift kernels) timed by diffusers' "
            "ops{per_token}; the text encoder in float32 (text_encoder_precisions), the VAE in float32 (its decode "
            "runs in bf16, vae_decode_precision: not modelled); attention PyTorch SDPA under its pinned torch "
            "2.12 (flash-attn is an optional install: with it FlashAttention-2, or -3 where flash_attn_interface "
            "imports); by default (fastvideo_args.py) it streams the DiT's blocks from host memory, two on the GPU "
            "(fastvideo/hooks/layerwise_offload.py), and moves the text encoder, image encoder and VAE in for "
            "their call and out after: sized so with or without --offload; no torch.compile (enable_torch_compile "
            "False)",
            layouts={
                "ulysses": "sp_size, by default the GPU count (fastvideo_args.py; fastvideo/attention/layer.py "
                "DistributedAttention all-to-alls)",
                "ring": "",
                "cfg_parallel": "",
                "fsdp": "",
                "pad": "",
            },
            no_ring_repos={
                "Wan2.1": "under FastVideo has no ring attention (its sequence parallelism is Ulysses, sp_size)",
                "Wan2.2": "under FastVideo has no ring attention (its sequence parallelism is Ulysses, sp_size)",
            },
            layout_note="FastVideo's sequence parallelism is Ulysses (DistributedAttention's all-to-alls); its "
            "per-rank ops are modelled by diffusers'",
            sources=("fastvideo-dtypes", "fastvideo-attention", "fastvideo-args", "fastvideo-sampler", "sdpa-2.11"),
        ),
        RuntimeDef(
            name="xdit",
            weight_dtypes=_XDIT_DTYPES,
            compute_dtypes=_XDIT_DTYPES,
            attention={None: "cudnn"},
            attention_fallback="cudnn",
            attention_by_architecture={"CDNA 3": "sdpa-flash"},
            attention_title="cuDNN attention (xDiT's default where flash_attn_interface does not import)",
            offload="--enable_model_cpu_offload (diffusers' enable_model_cpu_offload): only the running component "
            "is on the GPU",
            sampler="diffusers",
            sampler_text="the checkpoint's diffusers scheduler (UniPCMultistepScheduler flow sigmas)",
            cfg_passes_text="xDiT runs diffusers' pipeline: both passes of CFG for both experts when "
            "guidance_scale > 1",
            runner="xDiT's xFuser runner over diffusers' {diffusers_class}",
            code="xDiT (xdit-project/xDiT) over diffusers pipelines",
            note="runtime: xDiT (--runtime xdit), diffusers' WanTransformer3DModel and pipelines in bf16 "
            "(runner_models/wan.py: from_pretrained(torch_dtype=torch.bfloat16), the VAE too) with xFuser's "
            "attention processor (one fused QKV projection: the same FLOPs){per_token}; attention cuDNN "
            "(runtime_state.py: FlashAttention-4 or -3 where installed, else cuDNN); on MI300X AITER where installed, "
            "else flash_attn, else SDPA: timed as SDPA; no torch.compile (use_torch_compile False); its FSDP keeps "
            "the text encoder's shards on the host (offload_policy 'cpu'), not modelled",
            layouts={
                "ulysses": "--ulysses_degree (xFuser USP; runner_models/wan.py capabilities ulysses_degree=True)",
                "ring": "--ring_degree (ring_degree=True; flash-attn required for ring, setup.py)",
                "cfg_parallel": "--use_cfg_parallel (use_cfg_parallel=True; the README's model table says no)",
                "fsdp": "--fully_shard_degree (COMMON_FSDP_STRATEGY: the DiT's blocks, the text encoder's blocks)",
                "pad": "",
            },
            layout_note="xDiT splits diffusers' model with xFuser's USP (Ulysses all-to-alls, ring passes); its "
            "per-rank ops are diffusers'",
            sources=("xdit-dtypes", "xdit-attention", "xdit-args", "xdit-layouts"),
        ),
        RuntimeDef(
            name="vllm-omni",
            weight_dtypes=_VLLM_OMNI_DTYPES,
            compute_dtypes=_VLLM_OMNI_DTYPES,
            attention={None: "fa2"},
            attention_fallback="fa2",
            attention_by_architecture={"Blackwell": "cudnn", "Blackwell (GB202)": "cudnn"},
            attention_title="FlashAttention-2 (vLLM's bundled vllm_flash_attn)",
            offload="--enable-cpu-offload: components moved in for their stage and out after",
            sampler="wan",
            sampler_text="vLLM-Omni's FlowUniPCMultistepScheduler, built with the flow shift and shifted again: "
            "the expert split the original's",
            cfg_passes_text="vLLM-Omni runs both passes of CFG for both experts when guidance_scale > 1",
            runner="vLLM-Omni's Wan22Pipeline (vllm_omni/diffusion/models/wan2_2)",
            code="vLLM-Omni (vllm-project/vllm-omni)",
            note="runtime: vLLM-Omni (--runtime vllm-omni), its own WanTransformer3DModel (vllm_omni/diffusion/"
            "models/wan2_2/wan2_2_transformer.py: diffusers' blocks with vLLM's fused QKVParallelLinear and "
            "RMSNorm) timed by diffusers' ops{per_token}; the DiT in bf16 is assumed (od_config.dtype, the text "
            "encoder's, not read for the DiT); attention FlashAttention-2 through vLLM's bundled vllm_flash_attn "
            "(fa_version 2 by default) on Ampere, Ada and Hopper, cuDNN on Blackwell (its TRTLLM_ATTN, which it "
            "prefers for Wan on sm100 with flashinfer installed, has no rate here: 'dense, the two are "
            "comparable'; on MI300X its ROCm default was not read: timed as FlashAttention-2); its default regional "
            "torch.compile of the transformer blocks is not modelled",
            compiled="regional torch.compile of the repeated transformer blocks unless --enforce-eager "
            "(docs/user_guide/diffusion/regional_compilation.md)",
            layouts={
                "ulysses": "sequence parallelism, Ulysses-SP (docs/user_guide/diffusion/parallelism/overview.md)",
                "ring": "sequence parallelism, Ring-Attention or hybrid with Ulysses",
                "cfg_parallel": "CFG-Parallel: the positive and negative branches on separate GPUs",
                "fsdp": "",
                "pad": "",
            },
            layout_note="vLLM-Omni splits the sequence for Ulysses or ring attention with its own collectives; "
            "its per-rank ops are modelled by diffusers'",
            sources=("vllm-omni-pipeline", "vllm-omni-attention", "vllm-omni-compile", "vllm-omni-parallel"),
        ),
        RuntimeDef(
            name="sglang",
            weight_dtypes=_SGLANG_DTYPES,
            compute_dtypes=_SGLANG_DTYPES,
            attention={None: "fa3"},
            attention_fallback="fa2",
            attention_by_architecture={
                "Blackwell": "cudnn",
                "Blackwell Ultra": "cudnn",
                "Blackwell (GB202)": "sdpa-flash",
                "Volta": "sdpa-flash",
                "CDNA 3": "sdpa-flash",
            },
            attention_title="FlashAttention-3 (sgl-kernel's FA3; cuDNN attention on sm100)",
            offload="--dit-cpu-offload, --text-encoder-cpu-offload, --image-encoder-cpu-offload, --vae-cpu-offload: "
            "each component moved in for its stage and out after",
            sampler="wan",
            sampler_text="SGLang's FlowUniPCMultistepScheduler (FastVideo's), built with the flow shift and shifted "
            "again: the expert split the original's",
            cfg_passes_text="SGLang diffusion runs both passes of CFG for both experts when guidance_scale > 1",
            runner="SGLang diffusion's WanPipeline (sglang.multimodal_gen)",
            code="SGLang diffusion (sgl-project/sglang, sglang.multimodal_gen)",
            note="runtime: SGLang diffusion (--runtime sglang), its own Wan model code (FastVideo's, "
            "runtime/models/dits/wanvideo.py) timed by diffusers' ops{per_token}; the text encoder and image encoder "
            "in float32, the DiT in bf16, the VAE in float32 (its Wan2.1 decode in bf16: not modelled); attention "
            "FlashAttention-3 on Hopper (sgl-kernel's, or flash_attn_interface where installed), on Ampere and Ada "
            "sgl-kernel's FA3 build for sm80/sm86/sm89, timed as FlashAttention-2; cuDNN attention on sm100 "
            "(DYNAMIC_CUDNN_SDPA; earlier versions ran FlashAttention-4 there, which has no rate here), PyTorch "
            "SDPA on sm120 and Volta with cuDNN SDPA switched off (so not the installed "
            "torch's choice), on MI300X its ROCm default was not read: timed as SDPA; --attention-backend changes it "
            "(here --attention); its defaults offload every component of a video model on a GPU of 30 GB or more "
            "(server_args.py _adjust_offload), which is what --offload models: without it every component is "
            "resident; no torch.compile (enable_torch_compile False); what its --performance-mode (auto by default in "
            "the newer cli.md) and its CUDA-graph runners change was not read",
            layouts={
                "ulysses": "--ulysses-degree (USP; docs/diffusion/api/cli.md 'USP parallelism controls')",
                "ring": "--ring-degree (FlashAttention or SageAttention only: _adjust_attention_backend)",
                "cfg_parallel": "--enable-cfg-parallel (server_args.py enable_cfg_parallel)",
                "fsdp": "",
                "pad": "",
            },
            layout_note="SGLang diffusion splits the sequence with USP (Ulysses all-to-alls, ring passes); its "
            "per-rank ops are modelled by diffusers'; its --use-fsdp-inference (the DiT sharded with FSDP) and "
            "--tp-size ('mainly for encoders') are not modelled, nor whether it pads an uneven token split (not "
            "read: refused here, as for diffusers)",
            sources=("sglang-attention", "sglang-dtypes", "sglang-args", "sglang-sampler"),
        ),
        RuntimeDef(
            name="diffsynth",
            weight_dtypes=_DIFFSYNTH_DTYPES,
            compute_dtypes=_DIFFSYNTH_DTYPES,
            attention={None: "sdpa-flash"},
            attention_fallback="sdpa-flash",
            attention_by_architecture={},
            sdpa_torch=TORCH_AS_INSTALLED,
            attention_title="PyTorch SDPA (flash-attn not installed)",
            offload="ModelConfig(offload_device='cpu'): each component moved in for its stage and out after "
            "(load_models_to_device)",
            sampler="diffusers",
            sampler_text="DiffSynth-Studio's FlowMatchScheduler('Wan'), Euler steps on sigmas from 1 to 0, shifted: "
            "the expert split diffusers' (one step apart where a timestep lands on the boundary)",
            cfg_passes_text="DiffSynth-Studio runs both passes of CFG for both experts when cfg_scale != 1 "
            "(cfg_merge batches them in one call: the same FLOPs)",
            runner="DiffSynth-Studio's WanVideoPipeline (diffsynth/pipelines/wan_video.py)",
            code="DiffSynth-Studio (modelscope/DiffSynth-Studio)",
            note="runtime: DiffSynth-Studio (--runtime diffsynth), its own Wan model code (diffsynth/models/"
            "wan_video_dit.py: the original's WanModel, rope in float64) timed by diffusers' ops{per_token}; every "
            "component loaded in bf16, the VAE too (from_pretrained torch_dtype); attention PyTorch SDPA as pip "
            "install -e . leaves it (no flash-attn: its DiT calls FlashAttention-3, -2 or SageAttention only where "
            "they import), so the installed torch's backend (torch>=2.0.0, taken as 2.13: cuDNN on Hopper and "
            "Blackwell); its multi-GPU instructions install flash-attn (give --attention fa2); offload only where "
            "a ModelConfig names an offload device (vram_limit streams layers: not modelled); no torch.compile",
            layouts={
                "ulysses": "use_usp=True under torchrun: xFuser USP with ulysses_degree the world size "
                "(diffsynth/utils/xfuser/xdit_context_parallel.py initialize_usp)",
                "ring": "",
                "cfg_parallel": "",
                "fsdp": "",
                "pad": "pads the chunks of an uneven token split to the first (usp_dit_forward)",
            },
            no_ring_repos={
                "Wan2.1": "under DiffSynth-Studio has no ring attention (initialize_usp: ring_degree=1, Ulysses over "
                "every GPU)",
                "Wan2.2": "under DiffSynth-Studio has no ring attention (initialize_usp: ring_degree=1, Ulysses over "
                "every GPU)",
            },
            layout_note="DiffSynth-Studio's sequence parallelism is xFuser's Ulysses over every GPU (its own "
            "usp_attn_forward all-to-alls, the output all-gathered after the blocks); its per-rank ops are modelled "
            "by diffusers'",
            sources=(
                "diffsynth-dtypes",
                "diffsynth-attention",
                "diffsynth-offload",
                "diffsynth-usp",
                "diffsynth-sampler",
            ),
        ),
    )
}
"""Every runtime, by the name ``--runtime`` takes; the first is the default."""
RUNTIMES: tuple[str, ...] = tuple(RUNTIME_DEFS)
"""Code bases a job can run on (``--runtime``); the first is the default."""

_OVERLAID: dict[tuple[str, str], RuntimeDef] = {}


def _overlaid(name: str, pipeline: str) -> RuntimeDef:
    """:meth:`RuntimeDef.of`, made once per code base and pipeline."""
    record = _OVERLAID.get((name, pipeline))
    if record is None:
        base = RUNTIME_DEFS[name]
        over = base.pipelines.get(pipeline)
        record = _OVERLAID[(name, pipeline)] = replace(base, **over) if over else base
    return record


FLASH_ATTENTION: tuple[int, ...] = (2, 3)
"""FlashAttention versions ``--flash-attention`` names."""
COMPONENT_DTYPES: Mapping[str, str] = RUNTIME_DEFS["diffusers"].weight_dtypes
"""Weight and compute dtype of each model component (torch's spelling), as diffusers' Wan examples
load them: text encoder and transformer in bfloat16, the image encoder and the VAE in float32."""


def runtimes_with(takes: Callable[[RuntimeDef], object]) -> str:
    """``--runtime NAME`` of every runtime whose record ``takes`` a flag."""
    return " or ".join(f"--runtime {r.name}" for r in RUNTIME_DEFS.values() if takes(r))


def _takes_t5_cpu(r: RuntimeDef) -> bool:
    return r.host_text_encoder


def _takes_convert_model_dtype(r: RuntimeDef) -> bool:
    return bool(r.convert_model_dtype_repos)


def _takes_flash_attention(r: RuntimeDef) -> bool:
    return len(r.attention) > 1


@dataclass(frozen=True)
class Runtime:
    """How a job is run: the code base (``name``, a :data:`RUNTIME_DEFS` record) and its users' flags."""

    name: str = "diffusers"
    offload: bool = False
    t5_cpu: bool = False
    convert_model_dtype: bool = False
    flash_attention: int | None = None
    """3 or 2 where the runtime takes it; ``None``: the runtime's default on the GPU."""
    attention: str | None = None
    """The attention kernel the user says runs (``--attention``, one of :data:`ATTENTION_KERNELS`),
    whatever the runtime would pick; ``None``: the runtime's choice."""
    torch: str | None = None
    """The torch release the job runs (``--torch``), for a code base that runs PyTorch SDPA: its backend
    order picks the attention kernel (:data:`SDPA_CUDNN_FIRST`); ``None``: the one the code base installs."""
    vae_tiling: bool = False
    """Whether the VAE encodes and decodes tile by tile (``--vae-tiling``: diffusers' ``vae.enable_tiling()``,
    LightX2V's ``use_tiling_vae``)."""
    vae_dtype: str | None = None
    """The dtype the VAE is loaded and run in (``--vae-dtype``, one of :data:`VAE_DTYPES`); ``None``: the code
    base's default (:attr:`RuntimeDef.compute_dtypes`)."""
    pipeline: str = field(default="", compare=False)
    """The pipeline it runs, set by :class:`~hybrid.workload.Workload` (not a user's flag, nor part of equality:
    a workload's spec names it wherever a runtime keys a memo): :attr:`record` is the code base's as it runs that
    pipeline (:meth:`RuntimeDef.of`)."""

    def __post_init__(self) -> None:
        if self.name not in RUNTIME_DEFS:
            raise InputError(f"runtime: unknown runtime {self.name!r}; valid: {', '.join(RUNTIMES)}")
        r = self.record
        flags: tuple[tuple[str, bool, Callable[[RuntimeDef], object]], ...] = (
            ("t5-cpu", self.t5_cpu, _takes_t5_cpu),
            ("convert-model-dtype", self.convert_model_dtype, _takes_convert_model_dtype),
        )
        for flag, value, takes in flags:
            if not isinstance(value, bool):
                raise InputError(f"{flag}: must be true or false, got {value!r}")
            if value and not takes(r):
                if takes(RUNTIME_DEFS[self.name]):  # the code base takes it, not its code for this pipeline
                    raise InputError(f"{flag}: the {self.name} runtime's code for {self.pipeline} has no such flag")
                raise InputError(
                    f"{flag}: a flag of the original Wan repository; valid only with {runtimes_with(takes)}"
                )
        if not isinstance(self.offload, bool):
            raise InputError(f"offload: must be true or false, got {self.offload!r}")
        if not isinstance(self.vae_tiling, bool):
            raise InputError(f"vae-tiling: must be true or false, got {self.vae_tiling!r}")
        if self.vae_tiling and not r.vae_tiling:
            raise InputError(
                f"vae-tiling: {self.name} has no tiled VAE; valid only with {runtimes_with(lambda d: d.vae_tiling)}"
            )
        if self.vae_dtype is not None:
            if self.vae_dtype not in VAE_DTYPES:
                raise InputError(f"vae-dtype: {str(self.vae_dtype)[:40]!r} is invalid; valid: {', '.join(VAE_DTYPES)}")
            if not r.vae_dtype:
                raise InputError(
                    f"vae-dtype: {self.name} runs its VAE in {r.compute_dtypes['vae']} only; valid only with "
                    f"{runtimes_with(lambda d: d.vae_dtype)}"
                )
        if self.flash_attention is not None:
            if len(r.attention) == 1:
                raise InputError(
                    f"flash-attention: valid only with {runtimes_with(_takes_flash_attention)} ({self.name} runs "
                    f"{r.attention_title})"
                )
            if self.flash_attention not in r.attention:
                raise InputError(f"flash-attention: {self.flash_attention!r} is invalid; valid: 2, 3")
        if self.attention is not None:
            if self.attention not in ATTENTION_KERNELS:
                raise InputError(
                    f"attention: unknown kernel {str(self.attention)[:40]!r}; valid: {', '.join(ATTENTION_KERNELS)}"
                )
            if self.flash_attention is not None:
                raise InputError("attention: give --attention or --flash-attention, not both")
        if self.torch is not None:
            if not r.sdpa_torch:
                raise InputError(
                    f"torch: valid only with {runtimes_with(lambda d: bool(d.sdpa_torch))}, whose attention is "
                    f"PyTorch SDPA's choice ({self.name} runs {r.attention_title})"
                )
            if not isinstance(self.torch, str) or not all(p.isdigit() for p in self.torch.split(".")):
                raise InputError(f"torch: expected a release like 2.7.1, got {str(self.torch)[:40]!r}")
            sdpa_kernels(self.torch)  # a release the backend order is recorded for

    @cached_property
    def record(self) -> RuntimeDef:
        """The code base's :class:`RuntimeDef` as it runs :attr:`pipeline` (looked up once per instance: a sweep
        asks for it in every stage of every workload)."""
        return RUNTIME_DEFS[self.name].of(self.pipeline)

    @property
    def offloading(self) -> bool:
        """Whether the job offloads: ``--offload``, or the code's own default (:attr:`RuntimeDef.offload_default`)."""
        return self.offload or self.record.offload_default

    def record_for(self, spec: ModelSpec | None) -> RuntimeDef:
        """The code base's record as it runs ``spec``'s pipeline (``None``: :attr:`record`)."""
        if spec is None or spec.pipeline_def.name == self.pipeline:
            return self.record
        return RUNTIME_DEFS[self.name].of(spec.pipeline_def.name)

    def bound(self, pipeline: str) -> Runtime:
        """This runtime running ``pipeline`` (:attr:`pipeline`), one instance per runtime and pipeline."""
        if pipeline == self.pipeline:
            return self
        runtime = _BOUND.get((self, pipeline))
        if runtime is None:
            runtime = _BOUND[(self, pipeline)] = replace(self, pipeline=pipeline)
        return runtime

    @property
    def cfg_always(self) -> bool:
        return self.record.cfg_always

    @property
    def sampler(self) -> str:
        return self.record.sampler

    def check(self, spec: ModelSpec, architecture: str | None = None) -> None:
        """``ValueError`` where a flag does not exist for ``spec``'s repository or ``architecture``."""
        repo = spec.pipeline_def.wan_repo
        rec = self.record_for(spec)
        fixed = rec.attention_only
        if fixed:
            told = self.attention
            if told is None and self.flash_attention is not None:
                told = rec.attention.get(self.flash_attention)
            where = f"its {spec.pipeline_def.name} code calls {fixed} whatever its config names"
            if told is not None and told != fixed:
                raise InputError(f"attention: the {self.name} runtime runs {spec.name} with {fixed} only ({where}); "
                                 f"valid: --attention {fixed} or none")  # fmt: skip
            if architecture is not None and not runs_on(fixed, architecture):
                others = [f"--runtime {r}" for r in spec.pipeline_def.runtimes or () if r != self.name]
                raise InputError(
                    f"runtime: the {self.name} runtime runs {spec.name} with {fixed} only ({where}), which runs on "
                    f"{', '.join(KERNEL_ARCHITECTURES[fixed])} GPUs only, not {architecture}; valid there: "
                    f"{', '.join(others) or 'none'}"
                )
        if self.convert_model_dtype and not rec.convert_model_dtype_repos:
            raise InputError(f"convert-model-dtype: {self.text('code', spec)} has no --convert_model_dtype")
        if self.convert_model_dtype and repo not in rec.convert_model_dtype_repos:
            raise InputError(
                f"convert-model-dtype: {spec.name} runs on the {repo} repository, whose generate.py has no "
                f"--convert_model_dtype; valid only for {' and '.join(rec.convert_model_dtype_repos)} models"
            )
        if self.attention is not None and architecture is not None and not runs_on(self.attention, architecture):
            runs = [k for k in ATTENTION_KERNELS if runs_on(k, architecture)]
            raise InputError(
                f"attention: {self.attention} runs on {', '.join(KERNEL_ARCHITECTURES[self.attention])} GPUs only, "
                f"not {architecture}; valid there: {', '.join(runs)}"
            )
        if self.flash_attention is not None and architecture is not None:
            kernel = rec.attention[self.flash_attention]
            if not runs_on(kernel, architecture):
                raise InputError(
                    f"flash-attention: FlashAttention-{self.flash_attention} runs on "
                    f"{', '.join(KERNEL_ARCHITECTURES[kernel])} only, not {architecture}; valid: 2"
                )

    # -- what the runtime changes -------------------------------------------------------------

    def per_token_timestep(self, spec: ModelSpec) -> bool:
        """Whether the DiT embeds one timestep per token: the pipeline's ``expand_timesteps``, or
        every model of a repository whose code does so."""
        p = spec.pipeline_def
        if p.audio:  # WanModel_S2V embeds two timesteps, t and 0 (model_s2v.py:776-794)
            return False
        return p.expand_timesteps or p.wan_repo in self.record_for(spec).per_token_timestep_repos

    def weight_dtype(self, component: str, spec: ModelSpec | None = None) -> str:
        """The dtype ``component``'s weights are stored in (in ``spec``'s pipeline, whose own code may load
        its transformer in one: :attr:`~hybrid.pipelines.Pipeline.transformer_dtype`)."""
        if component.startswith("transformer"):
            if spec is not None and spec.pipeline_def.transformer_dtype:
                return spec.pipeline_def.transformer_dtype
            if self.convert_model_dtype:
                return "bfloat16"
        if component == "vae" and self.vae_dtype is not None:
            return self.vae_dtype
        return self.record_for(spec).weight_dtypes[component]

    def compute_dtype(self, component: str, spec: ModelSpec | None = None) -> str:
        """The dtype ``component``'s matmuls run in (in ``spec``'s pipeline)."""
        if component == "vae" and self.vae_dtype is not None:
            return self.vae_dtype
        return self.record_for(spec).compute_dtypes[component]

    def vae_norm_upcast(self, spec: ModelSpec) -> bool:
        """Whether ``spec``'s VAE, as this code runs it, normalises float32 copies of a half-precision input
        (:attr:`RuntimeDef.vae_norm_upcast` for the Wan2.1 VAE; diffusers' for the Wan2.2 VAE, ``is_residual``)."""
        return spec.vae.is_residual or self.record_for(spec).vae_norm_upcast

    def casts_weights(self, component: str, spec: ModelSpec | None = None) -> bool:
        """Whether ``component`` casts float32 weights to bfloat16 on every call (autocast)."""
        return self.weight_dtype(component, spec) == "float32" and self.compute_dtype(component, spec) != "float32"

    def attention_kernel(self, architecture: str) -> str:
        """The attention kernel on a GPU of ``architecture`` (one of :data:`ATTENTION_KERNELS`)."""
        if self.attention is not None:
            return self.attention
        r = self.record
        kernel = r.attention[self.flash_attention]
        if self.flash_attention is None:
            kernel = r.architecture_kernels(self.torch).get(architecture, kernel)
        return kernel if runs_on(kernel, architecture) else r.attention_fallback

    def on_host(self, component: str) -> bool:
        """Whether ``component`` runs on the host CPU (``--t5-cpu``, or always where the code base does)."""
        return component in self.record.host_components or (self.t5_cpu and component == "text_encoder")

    def swapped(self, spec: ModelSpec, component: str, gpus: int = 1) -> bool:
        """Whether ``component`` is moved onto the GPU for its stage and off it after, every job
        (else it stays resident, loaded once per process); the A14B experts swap on one GPU only
        where the code base does so (``init_on_cpu`` is off with several)."""
        r = self.record_for(spec)
        if self.on_host(component) or component in r.never_moved:
            return False
        experts = spec.pipeline_def.boundary_ratio is not None and component.startswith("transformer")
        return self.offloading or (r.experts_swap_on_one_gpu and experts and gpus == 1)

    def streams(self, spec: ModelSpec, component: str, gpus: int = 1) -> Streaming | None:
        """How the code streams ``component`` from host memory block by block under offload
        (:attr:`RuntimeDef.streamed`; :meth:`moves` leaves it out), or ``None`` where it moves it whole or not at
        all."""
        key = "transformer" if component.startswith("transformer") else component
        streaming = self.record_for(spec).streamed.get(key)
        return streaming if streaming is not None and self.swapped(spec, component, gpus) else None

    def moves(
        self, spec: ModelSpec, stages: Iterable[StageDef], gpus: int = 1, segments: Mapping[str, int] | None = None
    ) -> list[tuple[str, str, str]]:
        """Weight copies of one job, in order: ``(stage, component, "in" | "out")``. A swapped
        component moves in before the first stage that needs it, while the swapped components on the
        GPU move out; whatever is still on the GPU moves out at the end of the job. A move in is
        charged to the stage it serves, a move out to the last stage that used the component. A stage
        :attr:`~hybrid.pipelines.StageDef.moved_each_segment` moves its component in and out once per segment it
        runs (``segments``: by stage, 1 where not given)."""
        out: list[tuple[str, str, str]] = []
        on_gpu: list[str] = []
        last_user: dict[str, str] = {}
        for sd in stages:
            c = sd.component
            if not self.swapped(spec, c, gpus) or self.streams(spec, c, gpus) is not None:
                continue
            if sd.moved_each_segment:
                out += [(last_user[old], old, "out") for old in on_gpu if old != c]
                out += [(sd.name, c, "in"), (sd.name, c, "out")] * (segments or {}).get(sd.name, 1)
                on_gpu, last_user[c] = [], sd.name
                continue
            if c not in on_gpu:
                out += [(last_user[old], old, "out") for old in on_gpu]
                on_gpu = [c]
                out.append((sd.name, c, "in"))
            last_user[c] = sd.name
        out += [(last_user[c], c, "out") for c in on_gpu]
        return out

    def text(self, field_name: str, spec: ModelSpec, **extra: str) -> str:
        """The record's text ``field_name`` as the code base runs ``spec``'s pipeline."""
        p = spec.pipeline_def
        template: str = getattr(self.record_for(spec), field_name)
        return template.format(diffusers_class=p.diffusers_class, wan_repo=p.wan_repo, **extra)

    def describe(self) -> str:
        """The runtime and its flags, as a user would type them."""
        flags = [f"--runtime {self.name}"]
        flags += [f for f, on in (("--offload", self.offload), ("--t5-cpu", self.t5_cpu)) if on]
        if self.convert_model_dtype:
            flags.append("--convert-model-dtype")
        if self.flash_attention is not None:
            flags.append(f"--flash-attention {self.flash_attention}")
        if self.attention is not None:
            flags.append(f"--attention {self.attention}")
        if self.torch is not None:
            flags.append(f"--torch {self.torch}")
        if self.vae_tiling:
            flags.append("--vae-tiling")
        if self.vae_dtype is not None:
            flags.append(f"--vae-dtype {self.vae_dtype}")
        return " ".join(flags)

    def to_dict(self) -> dict[str, Any]:
        """The user's runtime and flags (the pipeline is the workload's)."""
        d = asdict(self)
        del d["pipeline"]
        return d


_BOUND: dict[tuple[Runtime, str], Runtime] = {}
on_clear(_BOUND.clear)

DIFFUSERS = Runtime()
"""The default runtime: diffusers pipelines, every component resident."""
