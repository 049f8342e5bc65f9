"""Presets: the component configs of each published Wan pipeline, its defaults and provenance.

A :class:`ModelSpec` bundles the component configs of one Wan pipeline (fields named as the
diffusers pipeline's components), the pipeline it runs (:mod:`hybrid.pipelines`), its defaults and
where its values came from. Presets are written from the published ``config.json`` files; a local
Diffusers folder can override them (:mod:`hybrid.checkpoint`). This module sits above the model
families and the pipelines and below the workload: a :class:`~hybrid.workload.Workload` holds its
spec, and nothing below the API looks a preset up by name again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any

from hybrid.errors import InputError, echo
from hybrid.memo import on_clear
from hybrid.models.clip import CLIP_VIT_H_14, CLIPVisionConfig
from hybrid.models.umt5 import UMT5_XXL, UMT5Config
from hybrid.models.wan_animate2 import WAN_ANIMATE_2_14B, WanAnimate2Transformer3DConfig
from hybrid.models.wan_dit import (
    WAN21_FLF2V_14B,
    WAN21_I2V_14B,
    WAN21_T2V_1_3B,
    WAN21_T2V_14B,
    WAN21_VACE_1_3B,
    WAN21_VACE_14B,
    WAN22_ANIMATE_14B,
    WAN22_I2V_A14B,
    WAN22_T2V_A14B,
    WAN22_TI2V_5B,
    WanTransformer3DConfig,
)
from hybrid.models.wan_s2v import WAN22_S2V_14B
from hybrid.models.wan_vae import WAN21_VAE, WAN22_VAE, AutoencoderKLWanConfig
from hybrid.models.wav2vec2 import WAV2VEC2_XLSR_53, Wav2Vec2Config
from hybrid.pipelines import Pipeline, get_pipeline

__all__ = ["COMPONENT_FIELDS", "DEFAULT_MODEL", "PRESETS", "ModelSpec", "get_preset"]


COMPONENT_FIELDS: tuple[str, ...] = (
    "text_encoder", "image_encoder", "audio_encoder", "transformer", "transformer_2", "vae"
)  # fmt: skip
"""The :class:`ModelSpec` fields that hold a model component's config, in pipeline order (each the
name of the diffusers pipeline's component and of its sub-folder in a Diffusers checkpoint)."""


@dataclass(frozen=True)
class ModelSpec:
    """The component configs of one pipeline plus its defaults, sizing facts and provenance."""

    name: str
    text_encoder: UMT5Config
    transformer: WanTransformer3DConfig | WanAnimate2Transformer3DConfig
    vae: AutoencoderKLWanConfig
    default_width: int
    default_height: int
    trained_max_pixels: int
    """Largest ``width * height`` the checkpoint was trained for (beyond: extrapolation)."""
    trained_max_frames: int = 81
    trained_max_text_len: int = 512
    source: str = ""
    checkpoint_parameters: tuple[tuple[str, int], ...] = field(default=(), compare=False)
    """``(component, parameters)`` read from local ``*.safetensors`` headers, if any."""
    warnings: tuple[str, ...] = field(default=(), compare=False)
    pipeline: str = "t2v"
    """The pipeline (:data:`hybrid.pipelines.PIPELINES`) the components run in."""
    image_encoder: CLIPVisionConfig | None = None
    """The image encoder's config, for pipelines that encode images (``None`` otherwise)."""
    default_steps: int = 50
    """Denoising steps the model's authors recommend (the default of a workload)."""
    default_frames: int = 81
    """Frames of a workload by default: what the model was trained for (Wan2.1: 5 s at 16 fps)."""
    transformer_2: WanTransformer3DConfig | None = None
    """The low-noise expert of a two-expert (Wan2.2 A14B) pipeline (``None`` otherwise)."""
    flow_shift: float | None = None
    """The scheduler's flow shift a two-expert pipeline splits its steps with (the published default;
    ``--flow-shift`` changes it)."""
    audio_encoder: Wav2Vec2Config | None = None
    """The audio encoder's config, for pipelines that encode audio (Wan2.2-S2V; ``None`` otherwise)."""

    def __hash__(self) -> int:
        # a workload holds its spec and memos key on workloads: hash the nested configs once per spec
        try:
            return self.__dict__["_hash"]  # type: ignore[no-any-return]
        except KeyError:
            h = hash(tuple(getattr(self, f) for f in _HASHED))
            self.__dict__["_hash"] = h
            return h

    @cached_property
    def pipeline_def(self) -> Pipeline:
        """The :class:`~hybrid.pipelines.Pipeline` this spec runs (looked up once per spec)."""
        return get_pipeline(self.pipeline)

    def size_multiple(self) -> tuple[int, int]:
        """``(height, width)`` multiples: the VAE's spatial scale factor times the patch, or the pipeline's
        own step where it needs more (:attr:`~hybrid.pipelines.Pipeline.size_step`)."""
        s = self.vae.scale_factor_spatial
        _, p_h, p_w = self.transformer.patch_size
        step = self.pipeline_def.size_step
        return max(s * p_h, step), max(s * p_w, step)

    def constrain(self, shape: dict[str, Any], ref_images: int = 0) -> dict[str, Any]:
        """``shape`` (workload keyword arguments) within this spec's pipeline constraints
        (:meth:`~hybrid.pipelines.Pipeline.constrain`), its width and height rounded up to the
        size multiple (32 for the /16 Wan2.2 VAE), a speech-to-video clip's frames up to a multiple of the
        VAE's temporal scale."""
        kw = self.pipeline_def.constrain(shape, ref_images)
        t = self.vae.scale_factor_temporal
        if self.pipeline_def.audio and "frames" in kw:
            kw["frames"] = max(t, -(-kw["frames"] // t) * t)
        m_h, m_w = self.size_multiple()
        for name, m in (("height", m_h), ("width", m_w)):
            if name in kw:
                kw[name] = -(-kw[name] // m) * m
        return kw

    def check_components(self) -> None:
        """``ValueError`` where this spec's components do not fit together in its pipeline (a custom
        checkpoint's configs): image input exactly where the pipeline encodes images, the image
        encoder's width and token count as the transformer's image embedder expects them."""
        p, dit, clip_cfg = self.pipeline_def, self.transformer, self.image_encoder
        if (dit.image_dim is not None) != bool(p.images):
            want = "image_dim and added_kv_proj_dim" if p.images else "no image_dim"
            raise InputError(f"transformer: {p.diffusers_class} ({p.name}) needs {want}; got image_dim={dit.image_dim}")
        if p.images:
            if clip_cfg is None or clip_cfg.hidden_size != dit.image_dim:
                width = None if clip_cfg is None else clip_cfg.hidden_size
                raise InputError(
                    f"image_encoder: hidden_size {width} is not the transformer's image_dim {dit.image_dim}"
                )
            if dit.pos_embed_seq_len is not None and dit.pos_embed_seq_len != p.images * clip_cfg.num_tokens:
                raise InputError(
                    f"transformer: pos_embed_seq_len {dit.pos_embed_seq_len} is not {p.images} images x "
                    f"{clip_cfg.num_tokens} image tokens"
                )

    def components(self) -> dict[str, Any]:
        """``{component: config}`` of the components this spec has, in pipeline order."""
        return {name: getattr(self, name) for name in COMPONENT_FIELDS if getattr(self, name) is not None}

    def describe(self) -> dict[str, Any]:
        """What ``wanmeter models`` lists: pipeline, stages, defaults, parameters, source."""
        pipeline = self.pipeline_def
        return {
            "pipeline": pipeline.diffusers_class,
            "stages": list(pipeline.stage_names),
            "default_size": f"{self.default_width}x{self.default_height}",
            "default_frames": self.default_frames,
            "default_steps": self.default_steps,
            **({"flow_shift": self.flow_shift} if self.flow_shift is not None else {}),
            "parameters": self.parameter_counts(),
            "source": self.source,
        }

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per component from the configs (closed form, equal to the built modules)."""
        return dict(self._parameter_counts)

    @cached_property
    def _parameter_counts(self) -> tuple[tuple[str, int], ...]:
        # the same for every workload: counted once per spec (sizing asks for every job)
        return tuple((name, cfg.num_parameters()) for name, cfg in self.components().items())


_HASHED: tuple[str, ...] = tuple(f.name for f in fields(ModelSpec) if f.compare)
"""The fields a spec's equality (and so its hash) is over."""

PRESETS: dict[str, ModelSpec] = {
    "wan2.1-t2v-1.3b": ModelSpec(
        name="wan2.1-t2v-1.3b",
        text_encoder=UMT5_XXL,
        transformer=WAN21_T2V_1_3B,
        vae=WAN21_VAE,
        default_width=832,
        default_height=480,
        trained_max_pixels=832 * 480,
        source="Wan-AI/Wan2.1-T2V-1.3B-Diffusers (published config.json files)",
    ),
    "wan2.1-t2v-14b": ModelSpec(
        name="wan2.1-t2v-14b",
        text_encoder=UMT5_XXL,
        transformer=WAN21_T2V_14B,
        vae=WAN21_VAE,
        default_width=1280,
        default_height=720,
        trained_max_pixels=1280 * 720,
        source="Wan-AI/Wan2.1-T2V-14B-Diffusers (published config.json files)",
    ),
    "wan2.1-i2v-14b-480p": ModelSpec(
        name="wan2.1-i2v-14b-480p",
        text_encoder=UMT5_XXL,
        image_encoder=CLIP_VIT_H_14,
        transformer=WAN21_I2V_14B,
        vae=WAN21_VAE,
        default_width=832,
        default_height=480,
        trained_max_pixels=832 * 480,
        default_steps=40,
        pipeline="i2v",
        source="Wan-AI/Wan2.1-I2V-14B-480P-Diffusers (published config.json files); 40 steps as the "
        "original Wan2.1 generate.py samples image-to-video",
    ),
    "wan2.1-i2v-14b-720p": ModelSpec(
        name="wan2.1-i2v-14b-720p",
        text_encoder=UMT5_XXL,
        image_encoder=CLIP_VIT_H_14,
        transformer=WAN21_I2V_14B,
        vae=WAN21_VAE,
        default_width=1280,
        default_height=720,
        trained_max_pixels=1280 * 720,
        default_steps=40,
        pipeline="i2v",
        source="Wan-AI/Wan2.1-I2V-14B-720P-Diffusers (published config.json files); 40 steps as the "
        "original Wan2.1 generate.py samples image-to-video",
    ),
    "wan2.1-flf2v-14b-720p": ModelSpec(
        name="wan2.1-flf2v-14b-720p",
        text_encoder=UMT5_XXL,
        image_encoder=CLIP_VIT_H_14,
        transformer=WAN21_FLF2V_14B,
        vae=WAN21_VAE,
        default_width=1280,
        default_height=720,
        trained_max_pixels=1280 * 720,
        default_steps=50,
        pipeline="flf2v",
        source="Wan-AI/Wan2.1-FLF2V-14B-720P-Diffusers (published config.json files); 50 steps as the "
        "original Wan2.1 generate.py samples first-last-frame-to-video",
    ),
    "wan2.1-vace-1.3b": ModelSpec(
        name="wan2.1-vace-1.3b",
        text_encoder=UMT5_XXL,
        transformer=WAN21_VACE_1_3B,
        vae=WAN21_VAE,
        default_width=832,
        default_height=480,
        trained_max_pixels=832 * 480,
        pipeline="vace",
        source="Wan-AI/Wan2.1-VACE-1.3B-diffusers (published config.json files)",
    ),
    "wan2.1-vace-14b": ModelSpec(
        name="wan2.1-vace-14b",
        text_encoder=UMT5_XXL,
        transformer=WAN21_VACE_14B,
        vae=WAN21_VAE,
        default_width=1280,
        default_height=720,
        trained_max_pixels=1280 * 720,
        pipeline="vace",
        source="Wan-AI/Wan2.1-VACE-14B-diffusers (published config.json files)",
    ),
    "wan2.2-ti2v-5b": ModelSpec(
        name="wan2.2-ti2v-5b",
        text_encoder=UMT5_XXL,
        transformer=WAN22_TI2V_5B,
        vae=WAN22_VAE,
        default_width=1280,
        default_height=704,
        trained_max_pixels=1280 * 704,
        default_frames=121,
        trained_max_frames=121,
        pipeline="ti2v",
        source="Wan-AI/Wan2.2-TI2V-5B-Diffusers (published config.json files); 1280x704, 121 frames (24 fps), "
        "50 steps as the original Wan2.2 generate.py samples ti2v-5B",
    ),
    "wan2.2-t2v-a14b": ModelSpec(
        name="wan2.2-t2v-a14b",
        text_encoder=UMT5_XXL,
        transformer=WAN22_T2V_A14B,
        transformer_2=WAN22_T2V_A14B,
        vae=WAN21_VAE,
        default_width=1280,
        default_height=720,
        trained_max_pixels=1280 * 720,
        default_steps=40,
        flow_shift=12.0,
        pipeline="t2v-a14b",
        source="Wan-AI/Wan2.2-T2V-A14B-Diffusers (published config.json files); 40 steps and flow shift 12.0 "
        "as the original Wan2.2 generate.py samples t2v-A14B",
    ),
    "wan2.2-i2v-a14b": ModelSpec(
        name="wan2.2-i2v-a14b",
        text_encoder=UMT5_XXL,
        transformer=WAN22_I2V_A14B,
        transformer_2=WAN22_I2V_A14B,
        vae=WAN21_VAE,
        default_width=1280,
        default_height=720,
        trained_max_pixels=1280 * 720,
        default_steps=40,
        flow_shift=5.0,
        pipeline="i2v-a14b",
        source="Wan-AI/Wan2.2-I2V-A14B-Diffusers (published config.json files); 40 steps and flow shift 5.0 "
        "as the original Wan2.2 generate.py samples i2v-A14B",
    ),
}

_V2V_SOURCE = (
    " in diffusers' WanVideoToVideoPipeline, as its example loads it; 50 steps and strength 0.8 (its __call__ defaults)"
)
for _size in ("1.3b", "14b"):  # video-to-video runs the text-to-video checkpoints (one spec each, renamed)
    _t2v = PRESETS[f"wan2.1-t2v-{_size}"]
    PRESETS[f"wan2.1-v2v-{_size}"] = replace(
        _t2v, name=f"wan2.1-v2v-{_size}", pipeline="v2v", source=_t2v.source + _V2V_SOURCE
    )

PRESETS["wan2.2-animate-14b"] = replace(  # the image-to-video 14B's text and image encoders, VAE and size
    PRESETS["wan2.1-i2v-14b-720p"],
    name="wan2.2-animate-14b",
    transformer=WAN22_ANIMATE_14B,
    default_steps=20,
    default_frames=77,
    pipeline="animate",
    source="Wan-AI/Wan2.2-Animate-14B-Diffusers (the transformer config as diffusers' convert_wan_to_diffusers.py "
    "writes it; the umT5-XXL, CLIP ViT-H/14 and Wan2.1 VAE of the image-to-video 14B); WanAnimatePipeline's "
    "__call__ defaults: 1280x720, 77-frame segments, 20 steps, guidance 1.0 (no CFG), mode 'animate'",
)

_ANIMATE2_SOURCE = (
    "diffusers 0.42.1: WanAnimate2Transformer3DModel's defaults (a 14B transformer of the image-to-video 14B's "
    "widths), the umT5-XXL, CLIP ViT-H/14 and Wan2.1 VAE its modular blocks load; the blocks' defaults: an "
    "800x640 target area, 81-frame segments carried over by one frame"
)
PRESETS["wan-animate-2-14b"] = replace(
    PRESETS["wan2.1-i2v-14b-720p"],
    name="wan-animate-2-14b",
    transformer=WAN_ANIMATE_2_14B,
    default_width=640,
    default_height=800,
    default_steps=40,
    pipeline="animate2",
    source=_ANIMATE2_SOURCE + ", 40 steps and guidance 3.0 (WanAnimate2Blocks)",
)
PRESETS["wan-animate-2-14b-distilled"] = replace(
    PRESETS["wan-animate-2-14b"],
    name="wan-animate-2-14b-distilled",
    default_steps=10,
    pipeline="animate2-distilled",
    source=_ANIMATE2_SOURCE + ", 10 steps and guidance 1.0, no CFG (WanAnimate2DistilledBlocks)",
)

PRESETS["wan2.2-s2v-14b"] = ModelSpec(
    name="wan2.2-s2v-14b",
    text_encoder=UMT5_XXL,
    audio_encoder=WAV2VEC2_XLSR_53,
    transformer=WAN22_S2V_14B,
    vae=WAN21_VAE,
    default_width=1280,
    default_height=704,
    trained_max_pixels=1280 * 720,
    default_steps=40,
    default_frames=80,
    trained_max_frames=80,
    pipeline="s2v",
    source="Wan-Video/Wan2.2 (42bf4cf) wan/configs/wan_s2v_14B.py: the 14B trunk, audio injection after 12 blocks, "
    "a 1-2-16 frame pack, umT5-XXL, the Wan2.1 VAE and wav2vec2-large-xlsr-53-english; generate.py's defaults: 40 "
    "steps, guidance 4.5, 80-frame clips (--infer_frames) at 16 fps, and --size 1280*720 as an area: a 16:9 image "
    "makes 1280x704 (get_size_less_than_area rounds to multiples of 64)",
)

DEFAULT_MODEL = "wan2.1-t2v-14b"


@on_clear
def _forget_lookups() -> None:
    """Each preset's pipeline lookup, parameter counts and hash, looked up again on use."""
    for spec in PRESETS.values():
        for memo in ("pipeline_def", "_parameter_counts", "_hash"):
            spec.__dict__.pop(memo, None)


def get_preset(name: str) -> ModelSpec:
    """The preset called ``name``; ``ValueError`` naming the valid ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        valid = ", ".join(sorted(PRESETS))
        raise InputError(f"model: unknown model {echo(name)}; valid: {valid}") from None
