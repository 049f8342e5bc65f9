"""Geometry: the one place a workload's per-call shapes are derived from the model spec.

diffusers derives them the same way from the component configs (``vae_scale_factor_temporal`` /
``_spatial`` from the VAE, the patch from the transformer): a video of ``frames`` frames of
``height x width`` pixels becomes ``(frames - 1) // t + 1`` latent frames of ``height/s x width/s``
(``t``, ``s`` the VAE's temporal and spatial scale factors); the transformer patchifies them into
``(T/p_t)(H/p_h)(W/p_w)`` tokens; sizes must be multiples of ``s * p`` and frames of the form
``t*k + 1``. Image tokens come from the image encoder (``(image_size/patch)^2 + 1`` per image);
VACE reference images add one latent frame each to what the transformer sees.

Nothing here imports a model family: the spec's configs are read by attribute.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.deployment import Deployment
    from hybrid.models import ModelSpec
    from hybrid.workload import Workload


@dataclass(frozen=True)
class CallShape:
    """What one call of every stage of a job looks like (hashable: per-call costs are memoised on it)."""

    batch: int
    """Videos per job (prompt batch)."""
    frames: int
    height: int
    width: int
    latent_frames: int
    """Latent frames of the video (what ``vae_decode`` decodes)."""
    latent_height: int
    latent_width: int
    dit_latent_frames: int
    """Latent frames the transformer sees: the video's plus one per VACE reference image."""
    dit_tokens: int
    """Video tokens per sample per transformer forward."""
    text_len: int
    images: int = 0
    """Images the image encoder encodes per job (I2V 1, FLF2V 2)."""
    image_tokens: int = 0
    """Image tokens per sample the transformer's image embedder sees (I2V 257, FLF2V 514)."""
    ref_images: int = 0
    """VACE reference images (each one a one-frame VAE encode and one more latent frame)."""
    per_token_timestep: bool = False
    """One timestep per token, embedded per token: Wan2.2 TI2V (``expand_timesteps``), and every
    Wan2.2 model on the original repository (:meth:`hybrid.runtime.Runtime.per_token_timestep`)."""
    image: bool = False
    """TI2V in image-to-video mode: the single image is VAE-encoded."""
    ulysses: int = 1
    """Ranks the transformer's video tokens are split over by Ulysses (:class:`hybrid.deployment.Deployment`)."""
    ring: int = 1
    """Ranks the transformer's video tokens are split over by ring attention."""

    @property
    def sequence_degree(self) -> int:
        """Ranks one transformer forward's video tokens are split over."""
        return self.ulysses * self.ring

    @property
    def local_tokens(self) -> int:
        """Video tokens per sample one rank holds through the transformer blocks: ``N / P``, rounded up
        where a runtime pads them (diffusers requires ``P`` to divide ``N``)."""
        return -(-self.dit_tokens // self.sequence_degree)

    @property
    def latent_pixels(self) -> int:
        """``latent_height * latent_width``."""
        return self.latent_height * self.latent_width

    @staticmethod
    def of(spec: ModelSpec, workload: Workload, deployment: Deployment | None = None) -> CallShape:
        """The per-call shapes of ``workload`` under ``spec``'s configs, as one rank of ``deployment``
        runs them (default: one GPU)."""
        vae, dit = spec.vae, spec.transformer
        t, s = vae.scale_factor_temporal, vae.scale_factor_spatial
        p_t, p_h, p_w = dit.patch_size
        latent_frames = (workload.frames - 1) // t + 1
        lh, lw = workload.height // s, workload.width // s
        dit_frames = latent_frames + workload.ref_images
        images = spec.pipeline_def.images
        per_image = spec.image_encoder.num_tokens if spec.image_encoder is not None else 0
        return CallShape(
            batch=workload.batch,
            frames=workload.frames,
            height=workload.height,
            width=workload.width,
            latent_frames=latent_frames,
            latent_height=lh,
            latent_width=lw,
            dit_latent_frames=dit_frames,
            dit_tokens=(dit_frames // p_t) * (lh // p_h) * (lw // p_w),
            text_len=workload.text_len,
            images=images,
            image_tokens=images * per_image if spec.transformer.image_dim is not None else 0,
            ref_images=workload.ref_images,
            per_token_timestep=workload.runtime.per_token_timestep(spec),
            image=workload.image,
            ulysses=deployment.ulysses if deployment else 1,
            ring=deployment.ring if deployment else 1,
        )


def size_multiple(spec: ModelSpec) -> tuple[int, int]:
    """``(height, width)`` multiples: the VAE's spatial scale factor times the patch."""
    s = spec.vae.scale_factor_spatial
    _, p_h, p_w = spec.transformer.patch_size
    return s * p_h, s * p_w


def _nearest_multiples(value: int, step: int, minimum: int) -> str:
    lo = max(minimum, (value // step) * step)
    hi = max(minimum, lo + step if value > lo else lo)
    if value < minimum or lo == hi:
        return f"use {max(minimum, lo)}"
    return f"use {lo} or {hi}"


def _nearest_frames(value: int, t: int) -> str:
    if value < 1:
        return "use 1"
    lo = ((value - 1) // t) * t + 1
    return f"use {lo} or {lo + t}"


def validate(spec: ModelSpec, workload: Workload) -> None:
    """One-line ``ValueError`` naming the field and its valid values where ``workload`` does not fit
    ``spec``'s geometry or its pipeline's constraints."""
    m_h, m_w = size_multiple(spec)
    for name, step in (("width", m_w), ("height", m_h)):
        v = getattr(workload, name)
        if v < step or v % step:
            raise ValueError(f"{name}: {v} is not a positive multiple of {step}; {_nearest_multiples(v, step, step)}")
    t = spec.vae.scale_factor_temporal
    if workload.frames < 1 or (workload.frames - 1) % t:
        raise ValueError(
            f"frames: {workload.frames} is not of the form {t}k+1 >= 1; {_nearest_frames(workload.frames, t)}"
        )
    spec.pipeline_def.validate(spec, workload)


def rotary_overflow(spec: ModelSpec, workload: Workload) -> str | None:
    """Where the workload's latent grid is longer, along some axis, than the DiT's rotary table
    (``rope_max_seq_len`` positions per axis: diffusers' ``WanRotaryPosEmbed`` slices its
    precomputed frequencies and cannot run past them), the one line that says so; else ``None``."""
    dit = spec.transformer
    p_t, p_h, p_w = dit.patch_size
    call = CallShape.of(spec, workload)
    axes = (
        ("latent frames", call.dit_latent_frames // p_t, "frames"),
        ("latent rows", call.latent_height // p_h, "height"),
        ("latent columns", call.latent_width // p_w, "width"),
    )
    for what, n, knob in axes:
        if n > dit.rope_max_seq_len:
            return (
                f"{knob}: {n:,} {what} after patching exceed the transformer's rotary table of "
                f"{dit.rope_max_seq_len} positions per axis (WanRotaryPosEmbed): the real module cannot run it"
            )
    return None


INT64_MAX = 2**63 - 1
"""torch sizes and element counts are int64."""


def torch_size_overflow(spec: ModelSpec, workload: Workload) -> str | None:
    """Where a tensor one stage call builds would have more elements than int64 holds (torch's
    sizes are int64: it cannot even make such a tensor on meta), the one line that says so; else
    ``None``. Checked: the pixel video, the text tokens and their embeddings, the latents, the
    transformer's hidden states, and the ``(B, H, N, N)`` scores attention decomposes to on meta."""
    call = CallShape.of(spec, workload)
    dit, text = spec.transformer, spec.text_encoder
    b, n = call.batch, call.dit_tokens
    sizes = {
        "the pixel video": b * 3 * call.frames * call.height * call.width,
        "the text embeddings": b * call.text_len * text.d_model,
        "the latents": b * max(dit.in_channels, 96) * call.dit_latent_frames * call.latent_pixels,
        "the transformer's hidden states": b * n * dit.inner_dim,
        "attention's scores on meta": b * dit.num_attention_heads * n * n,
        "the text encoder's scores on meta": b * text.num_heads * call.text_len**2,
    }
    for what, numel in sizes.items():
        if numel > INT64_MAX:
            return (
                f"workload: {what} would hold {Decimal(numel):.3e} elements, beyond the int64 sizes torch has "
                f"(<= {INT64_MAX:.3e}): the tracer cannot build it; the analytic report has no such limit"
            )
    return None
