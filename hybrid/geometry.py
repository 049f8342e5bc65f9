"""Geometry: :class:`CallShape`, what one call of every stage of a job looks like, and the rules
that name the nearest valid sizes. :meth:`hybrid.workload.Workload.shape` derives a call shape from
a workload and its spec; the model families read it. Nothing here imports another wanmeter module.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    dit_ops: str = "diffusers"
    """Whose forward of the transformer runs (:attr:`hybrid.runtime.RuntimeDef.dit_ops`): diffusers'
    ``WanTransformer3DModel``, or ``wan``, the original ``WanModel`` with its own elementwise work."""
    image_encoder_ops: str = "transformers"
    """Whose CLIP vision tower runs (:attr:`hybrid.runtime.RuntimeDef.image_encoder_ops`): transformers'
    ``CLIPVisionModel``, or ``wan``, the original ``CLIPModel.visual`` (:func:`hybrid.models.clip._wan_clip_walk`)."""
    dit_weight_dtype: str = "bfloat16"
    """The dtype the transformer's weights are stored in (:meth:`hybrid.runtime.Runtime.weight_dtype`): the
    original ``WanModel``'s ops depend on it (float32 weights under bf16 autocast, or ``--convert-model-dtype``)."""
    ulysses: int = 1
    """Ranks the transformer's video tokens are split over by Ulysses (:class:`hybrid.deployment.Deployment`)."""
    ring: int = 1
    """Ranks the transformer's video tokens are split over by ring attention."""
    audio_samples: int = 0
    """Samples of the job's audio at 16 kHz (Wan2.2-S2V's audio encoder reads them; 0 elsewhere)."""
    pose_video: bool = False
    """Whether a pose video conditions Wan2.2-S2V (its clips encoded one by one)."""
    condition_encodes: int = 1
    """How many times Wan2.2-S2V encodes its condition video (:func:`hybrid.models.wan_s2v.vae_encodes`): a pose
    video's clips, one encode each; without one, its -1 frames once (the original) or in every clip
    (:attr:`hybrid.runtime.RuntimeDef.condition_each_clip`)."""
    segment_encodes: int = 2
    """How many videos of a segment's frames Wan2.2-Animate's and Wan-Animate-2's ``vae_encode`` stage encodes per
    segment: diffusers' two (the pose or driving video, the conditioning video), or a runtime's own count
    (:attr:`hybrid.runtime.RuntimeDef.segment_encodes`: the original Wan-Animate-2 pipeline's three)."""
    vae_grid: tuple[int, int] = (1, 1)
    """The (rows, columns) of latent chunks one VAE decode, and the encode of an image-to-video job's condition video
    (the ``vae_encode`` stage), split into over the ranks of a layout, one chunk a rank (LightX2V's parallel VAE,
    :attr:`hybrid.runtime.RuntimeDef.vae_parallel`, for Wan2.1's VAE); ``(1, 1)``: every rank runs them whole."""
    packed_latent_frames: int = 0
    """The latent frames Wan-Animate-2's packed self-attention buffers and block mask are sized for where the runtime
    fixes them (LightX2V: its config's ``target_video_length``, a whole segment's, in the shorter last one too); 0:
    the call's own."""
    last_segment: CallShape | None = None
    """The calls of a video's last segment where the runtime makes it shorter than the others (LightX2V's
    Wan-Animate-2: :attr:`hybrid.runtime.RuntimeDef.segment_tail`); ``None``: every segment is this one."""

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


def nearest_multiples(value: int, step: int, minimum: int) -> str:
    lo = max(minimum, (value // step) * step)
    hi = max(minimum, lo + step if value > lo else lo)
    if value < minimum or lo == hi:
        return f"use {max(minimum, lo)}"
    return f"use {lo} or {hi}"


def nearest_frames(value: int, t: int) -> str:
    if value < 1:
        return "use 1"
    lo = ((value - 1) // t) * t + 1
    return f"use {lo} or {lo + t}"


INT64_MAX = 2**63 - 1
"""torch sizes and element counts are int64."""
