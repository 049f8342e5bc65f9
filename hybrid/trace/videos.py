"""What the tracer's VAE stages encode and decode, without torch: checked before any module is built
(:func:`hybrid.trace.check_traceable`) and made into inputs by :mod:`hybrid.trace.build`."""

from __future__ import annotations

from collections.abc import Callable

from hybrid.geometry import CallShape
from hybrid.models.wan_s2v import MOTION_FRAMES, decoded_latents, vae_encodes
from hybrid.models.wan_vae import AutoencoderKLWanConfig

RGB = 3
"""Channels of the pixel videos the pipelines encode (a patchifying VAE folds them itself)."""

Videos = list[tuple[tuple[int, ...], int]]
"""``[(shape of an RGB video, encodes of it)]``: what one ``vae_encode`` stage call encodes."""


def _condition_video(s: CallShape) -> Videos:
    # image-to-video: one encode of the condition video (image, zeros; FLF2V: first, zeros, last)
    return [((1, RGB, s.frames, s.height, s.width), 1)]


def _single_image(s: CallShape) -> Videos:
    # Wan2.2 TI2V image-to-video: WanImageToVideoPipeline(expand_timesteps=True) encodes the image alone
    return [((1, RGB, 1, s.height, s.width), 1)]


def _vace_videos(s: CallShape) -> Videos:
    # WanVACEPipeline.prepare_video_latents: the inactive and the reactive video, then each reference image
    refs: Videos = [((1, RGB, 1, s.height, s.width), s.ref_images)] if s.ref_images else []
    return [((1, RGB, s.frames, s.height, s.width), 2), *refs]


def _animate_videos(s: CallShape) -> Videos:
    # WanAnimatePipeline, per segment: prepare_pose_latents, then prepare_prev_segment_cond_latents (a runtime's own
    # count: CallShape.segment_encodes)
    return [((1, RGB, s.frames, s.height, s.width), s.segment_encodes)]


def _s2v_videos(s: CallShape) -> Videos:
    # WanS2V.generate, once per video: the reference image, the zero motion buffer, the condition video
    encodes = vae_encodes(s.frames, s.condition_encodes, s.pose_video)
    return [((1, RGB, n, s.height, s.width), calls) for n, calls, _ in encodes]


def _s2v_motion_frames(s: CallShape) -> Videos:
    # WanS2V.generate, per clip: the last motion frames made, encoded for the next clip
    return [((1, RGB, MOTION_FRAMES, s.height, s.width), 1)]


ENCODED: dict[str, Callable[[CallShape], Videos]] = {
    "wan_vae.encode": _condition_video,
    "wan_vae.encode_animate": _animate_videos,
    "wan_vae.encode_vace": _vace_videos,
    "wan_vae.encode_image": _single_image,
    "wan_vae.encode_s2v": _s2v_videos,
    "wan_vae.encode_s2v_motion": _s2v_motion_frames,
}
"""What one call of each ``vae_encode`` stage encodes, by :attr:`hybrid.pipelines.StageDef.trace_key`."""

DECODED: dict[str, Callable[[AutoencoderKLWanConfig, CallShape], int]] = {
    "wan_vae.decode": lambda cfg, s: s.latent_frames,
    "wan_vae.decode_s2v": lambda cfg, s: decoded_latents(s.latent_frames, cfg.scale_factor_temporal, False),
    "wan_vae.decode_s2v_motion": lambda cfg, s: decoded_latents(s.latent_frames, cfg.scale_factor_temporal, True),
}
"""The latent frames one call of each decode stage decodes, by :attr:`hybrid.pipelines.StageDef.trace_key`."""


def vae_calls(trace_key: str, cfg: AutoencoderKLWanConfig, s: CallShape) -> int:
    """How many times one traced call of a VAE stage runs the encoder or the decoder: once per
    latent frame of every video it decodes or encodes (``_decode``'s and ``_encode``'s chunk
    loops); 0 for a stage that is not the VAE's."""
    if trace_key in DECODED:
        return DECODED[trace_key](cfg, s)
    if trace_key not in ENCODED:
        return 0
    t = cfg.scale_factor_temporal
    return sum(calls * ((shape[2] - 1) // t + 1) for shape, calls in ENCODED[trace_key](s))
