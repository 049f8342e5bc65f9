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

from hybrid.models import ModelSpec
from hybrid.models.umt5 import UMT5Config
from hybrid.models.wan_dit import WanTransformer3DConfig
from hybrid.models.wan_vae import AutoencoderKLWanConfig
from hybrid.workload import Workload

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}

STAGE_DTYPES: dict[str, str] = {
    "text_encoder": "bfloat16",
    "diffusion_core": "bfloat16",
    "vae_decode": "float32",
}
"""Default compute dtype per stage, as in diffusers' Wan2.1 example (text encoder and transformer
in bf16; the VAE loaded in float32)."""


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
    # Buffers (rope tables) keep the precision the class chose, as from_pretrained leaves them.
    keep = tuple(getattr(module, "_keep_in_fp32_modules", None) or ())
    for name, sub in module.named_modules():
        parts = name.split(".")
        target = torch.float32 if any(k in parts for k in keep) else dtype
        for p in sub.parameters(recurse=False):
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


def build_vae(cfg: AutoencoderKLWanConfig, device: str, dtype: torch.dtype) -> torch.nn.Module:
    """``diffusers.AutoencoderKLWan`` for ``cfg``."""
    from diffusers import AutoencoderKLWan

    return _construct(AutoencoderKLWan, cfg.to_kwargs(), device, dtype)


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


def stage_call(
    stage: str, spec: ModelSpec, workload: Workload, device: str = "meta", dtype: str | None = None
) -> StageCall:
    """Build ``stage``'s real module for ``spec`` and the inputs of one call for ``workload``.

    * ``text_encoder``: ``UMT5EncoderModel(input_ids[batch, text_len])`` (no mask: an all-ones mask
      costs the same and calls ``.item()``, which meta tensors cannot);
    * ``diffusion_core``: one ``WanTransformer3DModel`` forward on latents
      ``[batch, in_channels, latent_frames, latent_h, latent_w]``, a timestep per sample and text
      embeddings ``[batch, text_len, text_dim]``;
    * ``vae_decode``: ``AutoencoderKLWan.decode`` of latents ``[batch, z_dim, latent_frames,
      latent_h, latent_w]`` through its frame-by-frame feature-cache loop.
    """
    dtype_name = dtype or STAGE_DTYPES[stage]
    if dtype_name not in DTYPES:
        raise ValueError(f"dtype: unknown dtype {dtype_name!r}; valid: {', '.join(DTYPES)}")
    tdtype = DTYPES[dtype_name]
    gen = torch.Generator().manual_seed(0) if device != "meta" else None
    b = workload.batch
    if stage == "text_encoder":
        te_cfg = spec.text_encoder
        te = _cached((stage, device, tdtype, te_cfg), lambda: build_text_encoder(te_cfg, device, tdtype))
        if device == "meta":
            ids = torch.zeros((b, workload.text_len), dtype=torch.long, device=device)
        else:
            ids = torch.randint(0, te_cfg.vocab_size, (b, workload.text_len), generator=gen).to(device)
        return StageCall(te, lambda: te(input_ids=ids), tdtype, type(te).__name__)
    if stage == "diffusion_core":
        dit_cfg = spec.transformer
        dit = _cached((stage, device, tdtype, dit_cfg), lambda: build_transformer(dit_cfg, device, tdtype))
        shape = (b, dit_cfg.in_channels, workload.latent_frames, workload.latent_height, workload.latent_width)
        latents = _empty(shape, device, tdtype, gen)
        timestep = torch.full((b,), 999, dtype=torch.long, device=device)
        text = _empty((b, workload.text_len, dit_cfg.text_dim), device, tdtype, gen)
        return StageCall(
            dit,
            lambda: dit(hidden_states=latents, timestep=timestep, encoder_hidden_states=text, return_dict=False),
            tdtype,
            type(dit).__name__,
        )
    if stage == "vae_decode":
        vae_cfg = spec.vae
        vae = _cached((stage, device, tdtype, vae_cfg), lambda: build_vae(vae_cfg, device, tdtype))
        shape = (b, vae_cfg.z_dim, workload.latent_frames, workload.latent_height, workload.latent_width)
        z = _empty(shape, device, tdtype, gen)
        decode: Callable[..., Any] = vae.decode  # type: ignore[assignment]
        return StageCall(vae, lambda: decode(z, return_dict=False), tdtype, type(vae).__name__)
    raise ValueError(f"stage: unknown stage {stage!r}; valid: text_encoder, diffusion_core, vae_decode")
