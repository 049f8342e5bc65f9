"""Instances of the real model classes, on the meta device or a real one, and their inputs.

Nothing here downloads or loads weights: modules are constructed from our frozen configs under
``torch.device("meta")`` (shapes only) or, for tiny configs on ``cpu``/``cuda``, with their random
initialisation. Parameters are cast like ``from_pretrained(torch_dtype=...)`` would, keeping each
class's ``_keep_in_fp32_modules`` in float32.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from hybrid.errors import InputError
from hybrid.geometry import CallShape
from hybrid.models.clip import CLIPVisionConfig
from hybrid.models.umt5 import UMT5Config
from hybrid.models.wan_animate2 import WanAnimate2Transformer3DConfig
from hybrid.models.wan_dit import WanAnimateTransformer3DConfig, WanTransformer3DConfig, WanVACETransformer3DConfig
from hybrid.models.wan_vae import AutoencoderKLWanConfig
from hybrid.models.wav2vec2 import Wav2Vec2Config
from hybrid.runtime import COMPONENT_DTYPES
from hybrid.trace.videos import DECODED, ENCODED, Videos
from hybrid.workload import Workload

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
"""Compute dtypes by name (the spelling of :data:`hybrid.runtime.COMPONENT_DTYPES`)."""


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    names = ("diffusers", "transformers")
    saved = [logging.getLogger(n).level for n in names]
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for n, level in zip(names, saved, strict=True):
            logging.getLogger(n).setLevel(level)


def _cast(module: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    # Buffers (rope tables) keep the precision the class chose, as from_pretrained leaves them. A parameter
    # stays float32 where an entry of _keep_in_fp32_modules is a part of its full name, module or parameter
    # (diffusers' load_model_dict_into_meta: `module_to_keep_in_fp32 in param_name.split(".")`): the blocks'
    # and the head's scale_shift_table, Wan-Animate's motion_synthesis_weight.
    keep = tuple(getattr(module, "_keep_in_fp32_modules", None) or ())
    for name, p in module.named_parameters():
        target = torch.float32 if any(k in name.split(".") for k in keep) else dtype
        if p.is_floating_point() and p.dtype != target:
            p.data = p.data.to(target)
    return module.eval()


def _construct(cls: Any, kwargs: dict[str, Any], device: str, dtype: torch.dtype) -> torch.nn.Module:
    with _quiet_libraries(), torch.device(device):
        model = cls(**kwargs)
    assert isinstance(model, torch.nn.Module)
    return _cast(model, dtype)


def build_text_encoder(cfg: UMT5Config, device: str, dtype: torch.dtype) -> torch.nn.Module:
    """``transformers.UMT5EncoderModel`` for ``cfg``."""
    from transformers import UMT5Config as HFUMT5Config
    from transformers import UMT5EncoderModel

    return _construct(UMT5EncoderModel, {"config": HFUMT5Config(**cfg.to_kwargs())}, device, dtype)


def build_transformer(cfg: WanTransformer3DConfig, device: str, dtype: torch.dtype) -> torch.nn.Module:
    """``diffusers.WanTransformer3DModel`` for ``cfg``."""
    from diffusers import WanTransformer3DModel

    return _construct(WanTransformer3DModel, cfg.to_kwargs(), device, dtype)


def build_image_encoder(cfg: CLIPVisionConfig, device: str, dtype: torch.dtype) -> torch.nn.Module:
    """``transformers.CLIPVisionModel`` for ``cfg``."""
    from transformers import CLIPVisionConfig as HFCLIPVisionConfig
    from transformers import CLIPVisionModel

    return _construct(CLIPVisionModel, {"config": HFCLIPVisionConfig(**cfg.to_kwargs())}, device, dtype)


def build_vace_transformer(cfg: WanVACETransformer3DConfig, device: str, dtype: torch.dtype) -> torch.nn.Module:
    """``diffusers.WanVACETransformer3DModel`` for ``cfg``."""
    from diffusers import WanVACETransformer3DModel

    return _construct(WanVACETransformer3DModel, cfg.to_kwargs(), device, dtype)


def build_animate_transformer(cfg: WanAnimateTransformer3DConfig, device: str, dtype: torch.dtype) -> torch.nn.Module:
    """``diffusers.WanAnimateTransformer3DModel`` for ``cfg``."""
    from diffusers.models.transformers.transformer_wan_animate import WanAnimateTransformer3DModel

    return _construct(WanAnimateTransformer3DModel, cfg.to_kwargs(), device, dtype)


def build_animate2_transformer(cfg: WanAnimate2Transformer3DConfig, device: str, dtype: torch.dtype) -> torch.nn.Module:
    """``diffusers.WanAnimate2Transformer3DModel`` for ``cfg``."""
    from diffusers.models.transformers.transformer_wan_animate_2 import WanAnimate2Transformer3DModel

    return _construct(WanAnimate2Transformer3DModel, cfg.to_kwargs(), device, dtype)


def build_vae(cfg: AutoencoderKLWanConfig, device: str, dtype: torch.dtype) -> torch.nn.Module:
    """``diffusers.AutoencoderKLWan`` for ``cfg``, tiled (``enable_tiling``) where ``cfg.use_tiling``."""
    from diffusers import AutoencoderKLWan

    vae: Any = _construct(AutoencoderKLWan, cfg.to_kwargs(), device, dtype)
    if cfg.use_tiling:
        vae.enable_tiling(cfg.tile_sample_min_height, cfg.tile_sample_min_width, cfg.tile_sample_stride_height,
                          cfg.tile_sample_stride_width)  # fmt: skip
    module: torch.nn.Module = vae
    return module


@dataclass
class StageCall:
    """A built module and the closure that runs one call of its stage."""

    module: torch.nn.Module
    run: Callable[[], Any]
    dtype: torch.dtype
    class_name: str


_CACHE: dict[tuple[Any, ...], torch.nn.Module] = {}


def _cached(key: tuple[Any, ...], make: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    # Only meta modules are cached: they hold no data and are not mutated by a forward.
    if key[1] != "meta":
        return make()
    module = _CACHE.get(key)
    if module is None:
        module = _CACHE[key] = make()
    return module


def _empty(shape: tuple[int, ...], device: str, dtype: torch.dtype, gen: torch.Generator | None) -> torch.Tensor:
    if device == "meta":
        return torch.empty(shape, device=device, dtype=dtype)
    return torch.randn(shape, generator=gen, dtype=torch.float32).to(device=device, dtype=dtype)


InputAdapter = Callable[
    [torch.nn.Module, Any, CallShape, str, torch.dtype, "torch.Generator | None"], Callable[[], Any]
]


def _umt5_forward(
    te: torch.nn.Module, cfg: UMT5Config, s: CallShape, device: str, dtype: torch.dtype, gen: torch.Generator | None
) -> Callable[[], Any]:
    # no mask: an all-ones mask costs the same and calls .item(), which meta tensors cannot
    if device == "meta":
        ids = torch.zeros((s.batch, s.text_len), dtype=torch.long, device=device)
    else:
        ids = torch.randint(0, cfg.vocab_size, (s.batch, s.text_len), generator=gen).to(device)
    return lambda: te(input_ids=ids)


def _wan_dit_forward(
    dit: torch.nn.Module,
    cfg: WanTransformer3DConfig,
    s: CallShape,
    device: str,
    dtype: torch.dtype,
    gen: torch.Generator | None,
) -> Callable[[], Any]:
    shape = (s.batch, cfg.in_channels, s.dit_latent_frames, s.latent_height, s.latent_width)
    latents = _empty(shape, device, dtype, gen)
    # Wan2.2 TI2V (expand_timesteps): a timestep per token, (batch, tokens)
    timestep_shape = (s.batch, s.dit_tokens) if s.per_token_timestep else (s.batch,)
    timestep = torch.full(timestep_shape, 999, dtype=torch.long, device=device)
    text = _empty((s.batch, s.text_len, cfg.text_dim), device, dtype, gen)
    kwargs: dict[str, Any] = {}
    if cfg.image_dim is not None:
        # the image encoder's hidden states, repeated over the batch: (batch * images, tokens, image_dim)
        per_image = s.image_tokens // s.images
        kwargs["encoder_hidden_states_image"] = _empty(
            (s.batch * s.images, per_image, cfg.image_dim), device, dtype, gen
        )
    if isinstance(cfg, WanVACETransformer3DConfig):
        control = (s.batch, cfg.vace_in_channels, s.dit_latent_frames, s.latent_height, s.latent_width)
        kwargs["control_hidden_states"] = _empty(control, device, dtype, gen)
    if isinstance(cfg, WanAnimateTransformer3DConfig):  # the pose latents (one frame fewer) and the face frames
        pose = (s.batch, cfg.latent_channels, s.dit_latent_frames - 1, s.latent_height, s.latent_width)
        kwargs["pose_hidden_states"] = _empty(pose, device, dtype, gen)
        face = (s.batch, 3, s.frames, cfg.motion_encoder_size, cfg.motion_encoder_size)
        kwargs["face_pixel_values"] = _empty(face, device, dtype, gen)
    return lambda: dit(
        hidden_states=latents, timestep=timestep, encoder_hidden_states=text, return_dict=False, **kwargs
    )


def _animate2_pass(mode: str) -> InputAdapter:
    """The input adapter of one Wan-Animate-2 transformer call as the modular pipeline makes it
    (``modular_pipelines/wan_animate_2/denoise.py``): ``"reference"``, the reference pass over the
    segment's driving-video latents joined with their condition (``kv_cache_mode="extract"``), which
    fills a fresh K/V cache; ``"cond"`` and ``"uncond"``, a denoising pass over the reference slot plus
    the segment's latents against the cache (``"cached"``), the unconditional one skipping block 9. For
    these the cache is filled first, outside the traced call (once per segment)."""

    def adapter(
        dit: torch.nn.Module,
        cfg: WanAnimate2Transformer3DConfig,
        s: CallShape,
        device: str,
        dtype: torch.dtype,
        gen: torch.Generator | None,
    ) -> Callable[[], Any]:
        from diffusers.models.transformers.transformer_wan_animate_2 import WanAnimate2KVCache

        p_t, p_h, p_w = cfg.patch_size
        lh, lw, f = s.latent_height, s.latent_width, s.latent_frames
        grid_ref = torch.tensor([[f // p_t, lh // p_h, lw // p_w]], dtype=torch.long)
        text = [_empty((s.text_len, cfg.text_dim), device, dtype, gen)]
        image = _empty((1, s.image_tokens, 1280), device, dtype, gen)
        # the reference pass's timestep is the transformer's dtype (``t_ref``), a step's the scheduler's int64
        t_ref = torch.full((1,), 999, dtype=dtype, device=device)
        timestep = torch.full((1,), 999, dtype=torch.long, device=device)
        cond_channels = cfg.in_dim - cfg.out_dim
        driving = [_empty((cfg.out_dim, f, lh, lw), device, dtype, gen)]
        driving_cond = [_empty((cond_channels, f, lh, lw), device, dtype, gen)]
        ref_tokens = (f // p_t) * (lh // p_h) * (lw // p_w)
        cache = WanAnimate2KVCache(cfg.num_layers)
        model: Any = dit  # its own methods and caches
        rope: Callable[[tuple[int, ...], Any], Any] = model._rope_freqs
        offsets = (cfg.refer_offset_t, cfg.refer_offset_h, cfg.refer_offset_w)
        rope(tuple(o if o >= 0 else int(grid_ref[0][i]) for i, o in enumerate(offsets)), device)  # kept per offsets
        rope((0, 0, 0), device)

        def reference() -> Any:
            return dit(driving, timestep=t_ref, encoder_hidden_states=text, condition_latents=driving_cond,
                       kv_cache=cache, kv_cache_mode="extract", seq_len=ref_tokens, encoder_hidden_states_image=image,
                       offset_grid_sizes=grid_ref)  # fmt: skip

        if mode == "reference":
            return reference
        reference()
        frames = s.dit_latent_frames
        latents = [_empty((cfg.out_dim, frames, lh, lw), device, dtype, gen)]
        cond = [_empty((cond_channels, frames, lh, lw), device, dtype, gen)]
        origin_len, area = s.frames, [s.height, s.width]
        # the block mask is built once per job and size (create_block_mask, compiled), outside the call; the
        # tracer stands in for the FlexAttention kernel (trace.mode.flex_attention_rows), which needs no mask
        model.block_masks[(origin_len // 4 + 1, area[0] * area[1] // 256)] = None
        tokens = (frames // p_t) * (lh // p_h) * (lw // p_w)
        return lambda: dit(latents, timestep=timestep, encoder_hidden_states=text, condition_latents=cond,
                           kv_cache=cache, kv_cache_mode="cached", seq_len=tokens, encoder_hidden_states_image=image,
                           reference_grid_sizes=grid_ref, origin_len=origin_len, origin_area=area,
                           is_uncondtion=mode == "uncond")  # fmt: skip

    return adapter


def _clip_forward(
    clip: torch.nn.Module,
    cfg: CLIPVisionConfig,
    s: CallShape,
    device: str,
    dtype: torch.dtype,
    gen: torch.Generator | None,
) -> Callable[[], Any]:
    pixels = _empty((s.images, cfg.num_channels, cfg.image_size, cfg.image_size), device, dtype, gen)
    return lambda: clip(pixel_values=pixels, output_hidden_states=True)


def _wan_vae_encodes(videos_of: Callable[[CallShape], Videos]) -> InputAdapter:
    """The input adapter of a ``vae_encode`` stage whose call encodes ``videos_of(shape)``."""

    def adapter(
        vae: torch.nn.Module, cfg: Any, s: CallShape, device: str, dtype: torch.dtype, gen: torch.Generator | None
    ) -> Callable[[], Any]:
        encode: Callable[..., Any] = vae.encode  # type: ignore[assignment]
        inputs = [(_empty(shape, device, dtype, gen), calls) for shape, calls in videos_of(s)]

        def run() -> None:
            for x, calls in inputs:
                for _ in range(calls):
                    encode(x, return_dict=False)

        return run

    return adapter


def _wan_vae_decodes(latent_frames: Callable[[AutoencoderKLWanConfig, CallShape], int]) -> InputAdapter:
    """The input adapter of a decode stage whose call decodes ``latent_frames(cfg, shape)`` latent frames."""

    def adapter(
        vae: torch.nn.Module, cfg: Any, s: CallShape, device: str, dtype: torch.dtype, gen: torch.Generator | None
    ) -> Callable[[], Any]:
        z = _empty((s.batch, cfg.z_dim, latent_frames(cfg, s), s.latent_height, s.latent_width), device, dtype, gen)
        decode: Callable[..., Any] = vae.decode  # type: ignore[assignment]
        return lambda: decode(z, return_dict=False)

    return adapter


def build_audio_encoder(cfg: Wav2Vec2Config, device: str, dtype: torch.dtype) -> torch.nn.Module:
    """``transformers.Wav2Vec2ForCTC`` for ``cfg``."""
    from transformers import Wav2Vec2Config as HFWav2Vec2Config
    from transformers import Wav2Vec2ForCTC

    return _construct(Wav2Vec2ForCTC, {"config": HFWav2Vec2Config(**cfg.to_kwargs())}, device, dtype)


def _wav2vec2_forward(
    model: torch.nn.Module, cfg: Wav2Vec2Config, s: CallShape, device: str, dtype: torch.dtype,
    gen: torch.Generator | None,
) -> Callable[[], Any]:  # fmt: skip
    audio = _empty((1, s.audio_samples), device, dtype, gen)
    return lambda: model(audio, output_hidden_states=True)


TRACE_CALLS: dict[str, tuple[Callable[[Any, str, torch.dtype], torch.nn.Module], InputAdapter]] = {
    "umt5.forward": (build_text_encoder, _umt5_forward),
    "clip.forward": (build_image_encoder, _clip_forward),
    "wan_dit.forward": (build_transformer, _wan_dit_forward),
    "wan_vace.forward": (build_vace_transformer, _wan_dit_forward),
    "wan_animate.forward": (build_animate_transformer, _wan_dit_forward),
    "wan_animate2.reference": (build_animate2_transformer, _animate2_pass("reference")),
    "wan_animate2.forward": (build_animate2_transformer, _animate2_pass("cond")),
    "wan_animate2.forward_uncond": (build_animate2_transformer, _animate2_pass("uncond")),
    "wav2vec2.forward": (build_audio_encoder, _wav2vec2_forward),
    **{key: (build_vae, _wan_vae_decodes(latents)) for key, latents in DECODED.items()},
    **{key: (build_vae, _wan_vae_encodes(videos)) for key, videos in ENCODED.items()},
}
"""The tracer's registry, keyed like :attr:`hybrid.pipelines.StageDef.trace_key`: the builder of
the real module and the input adapter that makes one call of the stage from a :class:`CallShape`."""


def stage_call(
    stage: str,
    workload: Workload,
    device: str = "meta",
    dtype: str | None = None,
    prepare: Callable[[torch.nn.Module], None] | None = None,
) -> StageCall:
    """Build ``stage``'s real module for the workload's spec and the inputs of one call of it
    (``dtype`` overrides the stage component's compute dtype: diffusers' examples', or the one its config
    names for the runtime, the VAE's ``compute_dtype``).

    * ``text_encoder``: ``UMT5EncoderModel(input_ids[batch, text_len])``;
    * ``diffusion_core``: one ``WanTransformer3DModel`` forward on latents
      ``[batch, in_channels, latent_frames, latent_h, latent_w]``, a timestep per sample and text
      embeddings ``[batch, text_len, text_dim]``;
    * ``vae_decode``: ``AutoencoderKLWan.decode`` of latents ``[batch, z_dim, latent_frames,
      latent_h, latent_w]`` through its frame-by-frame feature-cache loop;
    * ``image_encoder``: ``CLIPVisionModel(pixel_values[images, 3, 224, 224], output_hidden_states=True)``;
    * ``vae_encode``: ``AutoencoderKLWan.encode`` of the condition video ``[1, 3, frames, height,
      width]`` (VACE: twice, then once per reference image ``[1, 3, 1, height, width]``);
    * image-to-video transformers also get the image hidden states ``[batch * images, 257, 1280]``,
      VACE's its control latents ``[batch, 96, latent_frames + ref_images, latent_h, latent_w]``.

    ``prepare`` changes a freshly built module before the call (e.g. enables context parallelism).
    """
    spec = workload.spec
    sd = spec.pipeline_def.stage(stage)
    cfg = sd.config(spec)
    dtype_name = dtype or getattr(cfg, "compute_dtype", None) or COMPONENT_DTYPES[sd.component]
    if dtype_name not in DTYPES:
        raise InputError(f"dtype: unknown dtype {dtype_name!r}; valid: {', '.join(DTYPES)}")
    tdtype = DTYPES[dtype_name]
    gen = torch.Generator().manual_seed(0) if device != "meta" else None
    build, adapter = TRACE_CALLS[sd.trace_key]
    if prepare is None:
        module = _cached((sd.component, device, tdtype, cfg), lambda: build(cfg, device, tdtype))
    else:  # changed by prepare (hooks, processors): a fresh one, never cached
        module = build(cfg, device, tdtype)
        prepare(module)
    shape = workload.shape()
    run = adapter(module, cfg, sd.at(shape) if sd.at else shape, device, tdtype, gen)
    return StageCall(module, run, tdtype, type(module).__name__)
