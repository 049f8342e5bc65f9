"""The workload: one video job on one model spec, validated against its geometry and pipeline, with
its derived latent and token shapes (:class:`hybrid.geometry.CallShape`).

A :class:`Workload` holds the :class:`~hybrid.presets.ModelSpec` it runs (a preset, or a local
checkpoint's configs), so nothing below the API looks a preset up by name again. Build one with
:meth:`Workload.of`, which fills the spec's defaults (size, frames, steps, flow shift); the fields
of a constructed workload are always the concrete values.

Geometry (diffusers derives it the same way from the component configs): ``frames`` frames of
``height x width`` pixels become ``(frames - 1) // t + 1`` latent frames of ``height/s x width/s``
(``t``, ``s`` the VAE's temporal and spatial scale factors); the transformer patchifies them into
``(T/p_t)(H/p_h)(W/p_w)`` tokens; sizes must be multiples of ``s * p`` and frames of the form
``t*k + 1``. Image tokens come from the image encoder (``(image_size/patch)^2 + 1`` per image);
VACE reference images add one latent frame each to what the transformer sees.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from hybrid.errors import InputError, echo
from hybrid.geometry import INT64_MAX, CallShape, nearest_frames, nearest_multiples
from hybrid.memo import memoised
from hybrid.models.wan_dit import WanAnimateTransformer3DConfig
from hybrid.models.wan_s2v import SAMPLE_RATE, audio_samples, clips
from hybrid.models.wan_vae import parallel_vae_grid
from hybrid.presets import DEFAULT_MODEL, PRESETS, ModelSpec, get_preset
from hybrid.runtime import DIFFUSERS, Runtime, runtimes_with
from hybrid.sampler import MIN_FLOW_SHIFT

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.deployment import Deployment

DEFAULT_AUDIO_SECONDS = 5.0
"""Speech-to-video's audio length by default: about the 5.016 s of the example the original generate.py reads
(``examples/talk.wav``), which makes one clip at exactly 5 s."""
MAX_AUDIO_SECONDS = 3600.0
"""The longest audio a speech-to-video workload takes (an hour: 721 clips at 80 frames; its audio encoder's walk
grows with it)."""
TEXT_LEN = 512
"""Padded prompt tokens by default: every Wan pipeline's ``max_sequence_length``."""
MAX_VAE_RES_BLOCKS = 64
"""The most residual blocks per VAE level a workload's spec may have: the published Wan2.1 and Wan2.2
VAEs have 2, and the VAE's walk (report and sizing) goes through each of them (10**7 took 19 s)."""
_SHAPE_FIELDS = ("width", "height", "frames", "steps", "batch", "text_len", "ref_images")


@dataclass(frozen=True)
class Workload:
    """One Wan video job on ``spec``.

    ``text_len`` is the padded prompt length (the pipeline's ``max_sequence_length``), which the
    text encoder runs on and the DiT's cross-attention attends to. ``cfg`` turns classifier-free
    guidance (a negative prompt and a second DiT forward per step) on. ``ref_images`` are VACE's
    reference images.
    """

    spec: ModelSpec
    width: int
    height: int
    frames: int
    steps: int
    batch: int = 1
    text_len: int = TEXT_LEN
    cfg: bool = True
    ref_images: int = 0
    image: bool = False
    """Wan2.2 TI2V: image-to-video mode (``--image``), the single image VAE-encoded."""
    flow_shift: float | None = None
    """The scheduler's flow shift of a two-expert pipeline (:meth:`of` fills the preset's); it
    decides which expert runs each step. ``None`` for one-transformer pipelines."""
    runtime: Runtime = DIFFUSERS
    """The code base that runs the job and its flags (:mod:`hybrid.runtime`): the original Wan2.2
    code embeds the timestep per token, which changes FLOPs; offload and dtypes change memory."""
    strength: float | None = None
    """Video-to-video: how far the input video's latents are noised, in (0, 1]; the job denoises
    ``int(steps x strength)`` steps (:meth:`of` fills the pipeline's default). ``None`` elsewhere."""
    mode: str | None = None
    """Wan-Animate's ``mode`` (``animate`` or ``replace``: :attr:`hybrid.pipelines.Pipeline.modes`; :meth:`of`
    fills the pipeline's default). ``None`` for a pipeline that takes none."""
    audio_seconds: float | None = None
    """Speech-to-video: the audio's length in seconds, which decides how many clips of ``frames`` frames the job
    makes (:attr:`segments`; :meth:`of` fills :data:`DEFAULT_AUDIO_SECONDS`). ``None`` elsewhere."""
    pose_video: bool = False
    """Speech-to-video: a pose video drives the job (``generate.py --pose_video``), its frames VAE-encoded as each
    clip's condition (``WanS2V.load_pose_cond``: one encode per clip, where without one the -1 frames are encoded
    once)."""
    prev_segment_conditioning_frames: int | None = None
    """Wan-Animate: the previous segment's last frames each later segment is conditioned on (diffusers'
    ``prev_segment_conditioning_frames``, the original's ``--refert_num``: 1 or 5,
    :attr:`hybrid.pipelines.Pipeline.segment_overlaps`; :meth:`of` fills the pipeline's 1). ``None`` elsewhere."""
    relighting_lora: bool = False
    """Wan2.2-Animate: the relighting LoRA loaded (``generate.py --use_relighting_lora``, which the original README's
    replacement commands pass): its layers of :attr:`hybrid.pipelines.Pipeline.relighting_lora_rank` beside every
    Linear of the DiT's blocks (:attr:`hybrid.models.wan_dit.WanAnimateTransformer3DConfig.lora_rank`), as the runtime
    runs it (:attr:`hybrid.runtime.RuntimeDef.relighting_lora`; refused where it is not modelled)."""

    @classmethod
    def of(
        cls,
        model: str | ModelSpec = DEFAULT_MODEL,
        width: int | None = None,
        height: int | None = None,
        frames: int | None = None,
        steps: int | None = None,
        flow_shift: float | None = None,
        runtime: Runtime | Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> Workload:
        """A workload of ``model`` (a preset's name or a spec), each size, frame count, step count
        and flow shift left out (``None``, or 0 for a size) taken from the spec's defaults; without a
        ``runtime`` the pipeline's default (:func:`default_runtime`)."""
        spec = model if isinstance(model, ModelSpec) else get_preset(str(model))
        if runtime is None:
            runtime = Runtime(default_runtime(spec))
        if isinstance(runtime, Mapping):  # the JSON form of to_dict()
            valid = [f.name for f in fields(Runtime) if f.name != "pipeline"]  # the workload's, not a flag
            bad = sorted(set(runtime) - set(valid))
            if bad:
                raise InputError(f"runtime: unknown field {bad[0]!r}; valid: {', '.join(valid)}")
            runtime = Runtime(**runtime)
        p = spec.pipeline_def
        if kw.get("strength") is None:
            kw["strength"] = p.default_strength
        if kw.get("mode") is None:
            kw["mode"] = p.modes[0] if p.modes else None
        if kw.get("prev_segment_conditioning_frames") is None and p.segment_overlaps:
            kw["prev_segment_conditioning_frames"] = p.segment_overlap
        if kw.get("cfg") is None:
            kw["cfg"] = guided(spec, None)
        if kw.get("audio_seconds") is None and p.audio:
            kw["audio_seconds"] = DEFAULT_AUDIO_SECONDS
        return cls(
            spec,
            width or spec.default_width,
            height or spec.default_height,
            spec.default_frames if frames is None else frames,
            spec.default_steps if steps is None else steps,
            flow_shift=spec.flow_shift if flow_shift is None else flow_shift,
            runtime=runtime,
            **kw,
        )

    def __post_init__(self) -> None:
        if not isinstance(self.spec, ModelSpec):
            raise InputError(f"spec: must be a ModelSpec, got {type(self.spec).__name__}")
        for name in _SHAPE_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise InputError(f"{name}: must be an integer, got {v!r}")
        for name in ("steps", "batch", "text_len"):
            v = getattr(self, name)
            if v < 1:
                raise InputError(f"{name}: {v} is invalid; must be >= 1 (use 1)")
        if self.ref_images < 0:
            raise InputError(f"ref_images: {self.ref_images} is invalid; must be >= 0 (use 0)")
        for name in ("cfg", "image", "pose_video", "relighting_lora"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name}: must be true or false, got {getattr(self, name)!r}")
        if self.flow_shift is not None:
            v = self.flow_shift
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < MIN_FLOW_SHIFT:
                raise InputError(
                    f"flow_shift: {str(v)[:40]} is invalid; valid: a finite number >= {MIN_FLOW_SHIFT:g} (below it the "
                    "scheduler's 1 + (shift - 1) * sigma cancels: at 1e-17 it is 0 and diffusers divides by it)"
                )
            object.__setattr__(self, "flow_shift", float(v))
        if not isinstance(self.runtime, Runtime):
            raise InputError(f"runtime: must be a Runtime, got {self.runtime!r}")
        self.runtime.check(self.spec)
        p = self.spec.pipeline_def
        if p.runtimes is not None and self.runtime.name not in p.runtimes:
            raise InputError(
                f"runtime: {self.spec.name} runs on {', '.join(p.runtimes)} only ({p.runtimes_reason}); valid: "
                + " or ".join(f"--runtime {r}" for r in p.runtimes)
            )
        if self.runtime.pipeline != p.name:  # the code base as it runs this pipeline (RuntimeDef.of)
            object.__setattr__(self, "runtime", self.runtime.bound(p.name))
        object.__setattr__(
            self,
            "spec",
            _with_vae(
                self.spec, self.runtime.compute_dtype("vae", self.spec), self.runtime.vae_tiling,
                self.runtime.vae_norm_upcast(self.spec),
            ),
        )  # fmt: skip
        if self.relighting_lora:
            self._load_relighting_lora()
        if self.runtime.cfg_always and not self.cfg:
            raise InputError(
                "cfg: the original Wan generate.py runs the unconditional pass every step whatever the guide "
                "scale; valid with --runtime wan: CFG on (drop --no-cfg and any guidance scale <= 1)"
            )
        self._validate()

    @property
    def model(self) -> str:
        """The spec's name (a preset's, or a local checkpoint's)."""
        return self.spec.name

    def _validate(self) -> None:
        """One-line ``ValueError`` naming the field and its valid values where this workload does not
        fit its spec's geometry or its pipeline's constraints."""
        spec, p = self.spec, self.spec.pipeline_def
        if spec.vae.num_res_blocks > MAX_VAE_RES_BLOCKS:
            raise InputError(
                f"vae num_res_blocks: {spec.vae.num_res_blocks} is beyond what wanmeter walks, at most "
                f"{MAX_VAE_RES_BLOCKS} (the published Wan VAEs have 2; the VAE's walk goes through every block "
                "of every level)"
            )
        m_h, m_w = spec.size_multiple()
        for name, step in (("width", m_w), ("height", m_h)):
            v = getattr(self, name)
            if v < step or v % step:
                raise InputError(
                    f"{name}: {v} is not a positive multiple of {step}; {nearest_multiples(v, step, step)}"
                )
        t = spec.vae.scale_factor_temporal
        if p.audio:  # frames per clip: generate.py's --infer_frames
            if self.frames < t or self.frames % t:
                raise InputError(
                    f"frames: {echo(self.frames)} is invalid for {spec.name}; valid: frames per clip, a positive "
                    f"multiple of {t} (generate.py --infer_frames, default {spec.default_frames}); the video's "
                    "length follows --audio-seconds"
                )
        elif p.segment_frames is not None:  # the whole video's length: any count the segments can cover
            overlaps, chosen = p.segment_overlaps, self.prev_segment_conditioning_frames
            if overlaps and (type(chosen) is not int or chosen not in overlaps):
                raise InputError(
                    f"prev_segment_conditioning_frames: {echo(str(chosen))} is invalid for {spec.name}; valid: "
                    f"{', '.join(map(str, overlaps))} (the frames of the previous segment each later one is "
                    "conditioned on)"
                )
            if self.frames <= self.segment_overlap:
                raise InputError(
                    f"frames: {echo(self.frames)} is invalid for {spec.name}; valid: more than {self.segment_overlap} "
                    f"(the video is made in {p.segment_frames}-frame segments)"
                )
        elif self.frames < 1 or (self.frames - 1) % t:
            raise InputError(
                f"frames: {echo(self.frames)} is not of the form {t}k+1 >= 1; {nearest_frames(self.frames, t)}"
            )
        if self.prev_segment_conditioning_frames is not None and not p.segment_overlaps:
            raise InputError(
                f"prev_segment_conditioning_frames: {spec.name} takes none; valid: Wan-Animate presets "
                "(wan2.2-animate-14b) take 1 or 5"
            )
        if p.modes and self.mode not in p.modes:
            raise InputError(f"mode: {echo(str(self.mode))} is invalid; valid: {', '.join(p.modes)}")
        if not p.modes and self.mode is not None:
            raise InputError(f"mode: {spec.name} takes no mode; valid: Wan-Animate presets take it")
        if self.ref_images and not p.ref_images:
            raise InputError(f"ref_images: {spec.name} takes no reference images; valid: 0 (VACE presets take them)")
        if p.fixed_text_len is not None and self.text_len != p.fixed_text_len:
            raise InputError(
                f"text_len: {self.text_len} is invalid for {spec.name}; valid: {p.fixed_text_len} "
                f"({p.fixed_text_len_reason})"
            )
        if self.image and not p.image_input:
            raise InputError(
                f"image: {spec.name} takes no --image (image-to-video presets always encode their image; "
                "Wan2.2 TI2V takes it)"
            )
        if p.boundary_ratio is None and self.flow_shift is not None:
            raise InputError(
                f"flow_shift: {spec.name} has one transformer, the flow shift changes nothing it runs; "
                "valid: leave it out (two-expert presets take it)"
            )
        self._validate_strength()
        self._validate_audio()
        if p.max_batch is not None and self.batch > p.max_batch:
            raise InputError(
                f"batch: {self.batch} is invalid for {spec.name}; valid: 1 to {p.max_batch} ({p.max_batch_reason})"
            )

    def _validate_strength(self) -> None:
        p, v = self.spec.pipeline_def, self.strength
        if p.default_strength is None:
            if v is not None:
                raise InputError(f"strength: {self.spec.name} takes no strength; valid: video-to-video presets take it")
            return
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and 0 < v <= 1):
            raise InputError(
                f"strength: {str(v)[:40]} is invalid; valid: a number in (0, 1] (default {p.default_strength:g})"
            )
        object.__setattr__(self, "strength", float(v))
        if self.denoising_steps < 1:
            raise InputError(
                f"strength: int({self.steps} x {v:g}) = 0 denoising steps (WanVideoToVideoPipeline.get_timesteps); "
                f"valid: strength >= {1 / self.steps:.4g} at {self.steps} steps"
            )

    def _load_relighting_lora(self) -> None:
        """The spec's transformer with the relighting LoRA beside its blocks' Linears; refused by a pipeline without
        one and by a runtime that does not run it as modelled."""
        p = self.spec.pipeline_def
        if p.relighting_lora_rank is None:
            presets = ", ".join(n for n, s in PRESETS.items() if s.pipeline_def.relighting_lora_rank is not None)
            raise InputError(
                f"relighting_lora: {self.spec.name} has no relighting LoRA; valid: Wan2.2-Animate presets ({presets})"
            )
        if not self.runtime.record.relighting_lora:
            valid = runtimes_with(lambda r: r.of(p.name).relighting_lora)
            raise InputError(
                f"relighting_lora: --runtime {self.runtime.name} does not run Wan2.2-Animate's relighting LoRA as "
                f"modelled; valid: {valid} (generate.py --use_relighting_lora)"
            )
        object.__setattr__(self, "spec", _with_lora(self.spec, p.relighting_lora_rank))

    def _validate_audio(self) -> None:
        p, v = self.spec.pipeline_def, self.audio_seconds
        if self.pose_video and not p.audio:
            raise InputError(
                f"pose_video: {self.spec.name} takes no pose video; valid: speech-to-video presets take one "
                "(Wan-Animate presets always encode their driving video)"
            )
        if not p.audio:
            if v is not None:
                raise InputError(
                    f"audio_seconds: {self.spec.name} takes no audio; valid: speech-to-video presets take it"
                )
            return
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float))
            or not (math.isfinite(v) and 0 < v <= MAX_AUDIO_SECONDS)
        ):
            raise InputError(
                f"audio_seconds: {str(v)[:40]} is invalid; valid: a number of seconds in (0, {MAX_AUDIO_SECONDS:g}] "
                f"(default {DEFAULT_AUDIO_SECONDS:g})"
            )
        object.__setattr__(self, "audio_seconds", float(v))
        field = self.spec.audio_encoder.receptive_field() if self.spec.audio_encoder is not None else 0
        if self.audio_samples < field:
            raise InputError(
                f"audio_seconds: {v:g} s is {self.audio_samples} samples at {SAMPLE_RATE // 1000} kHz, fewer than the "
                f"{field} wav2vec2's convolutions make one frame of; valid: at least {field / SAMPLE_RATE:g} s"
            )

    @property
    def audio_samples(self) -> int:
        """Samples of the audio at 16 kHz (:func:`hybrid.models.wan_s2v.audio_samples`; 0 without audio)."""
        return 0 if self.audio_seconds is None else audio_samples(self.audio_seconds)

    def describe(self) -> str:
        """``1280x720, 81 frames, 50 steps, batch 1`` (video-to-video: ``50 steps at strength 0.8: 40
        denoised``; Wan-Animate: ``241 frames in 4 segments of 77, 20 steps each, animate mode``), as the
        renderers head their output."""
        steps = f"{self.steps} steps"
        if self.strength is not None:
            steps += f" at strength {self.strength:g}: {self.denoising_steps} denoised"
        p = self.spec.pipeline_def
        frames = f"{self.frames} frames"
        if p.segment_frames is not None:
            s = self.segments
            frames += f" in {s} segment{'s' if s > 1 else ''} of {p.segment_frames}"
            if self.last_segment_frames:  # a runtime's shorter last segment, the video padded to it
                tail = self.last_segment_frames
                whole = f"{s - 1} of {p.segment_frames} and one of {tail}" if s > 1 else f"1 segment of {tail}"
                frames = f"{self.frames} frames in {f'{s} segments: {whole}' if s > 1 else whole} (padded)"
            if self.segment_overlap != p.segment_overlap:
                frames += f" carrying {self.segment_overlap} frames over"
            steps += " each"
        if p.audio:
            s = self.segments
            frames = f"{s} clip{'s' if s > 1 else ''} of {self.frames} frames for {self.audio_seconds:g} s of audio"
            frames += " and a pose video" if self.pose_video else ""
            steps += " each"
        mode = f", {self.mode} mode" if self.mode is not None else ""
        mode += ", relighting LoRA" if self.relighting_lora else ""
        return f"{self.width}x{self.height}, {frames}, {steps}, batch {self.batch}{mode}"

    @property
    def segments(self) -> int:
        """Segments the job makes its video in (:meth:`hybrid.pipelines.Pipeline.segments`; 1 for one clip), or
        the clips its audio needs (speech-to-video: :func:`hybrid.models.wan_s2v.clips`)."""
        spec = self.spec
        if spec.pipeline_def.audio and spec.audio_encoder is not None:
            return clips(spec.audio_encoder, self.audio_samples, self.frames)
        return spec.pipeline_def.segments(self.frames, self.segment_overlap, self.runtime.record.segment_tail)

    @property
    def last_segment_frames(self) -> int:
        """Frames of the last segment where the runtime makes it shorter than the others
        (:meth:`hybrid.pipelines.Pipeline.last_segment_frames`); 0 where it does not."""
        p = self.spec.pipeline_def
        return p.last_segment_frames(self.frames, self.segment_overlap, self.runtime.record.segment_tail)

    @property
    def segment_overlap(self) -> int:
        """Frames of the previous segment each later one is conditioned on (:attr:`prev_segment_conditioning_frames`,
        or the pipeline's fixed :attr:`hybrid.pipelines.Pipeline.segment_overlap`)."""
        chosen = self.prev_segment_conditioning_frames
        return self.spec.pipeline_def.segment_overlap if chosen is None else chosen

    @property
    def denoising_steps(self) -> int:
        """The steps the job denoises: ``steps``, or video-to-video's ``min(int(steps x strength), steps)``
        (diffusers' ``get_timesteps``: the last ones of the schedule)."""
        if self.strength is None:
            return self.steps
        return min(int(self.steps * self.strength), self.steps)

    def shape(self, deployment: Deployment | None = None) -> CallShape:
        """The per-call shapes of this workload, as one rank of ``deployment`` runs them (default: one GPU)."""
        return _call_shape(self, deployment)

    def _shape(self, deployment: Deployment | None, last: bool = False) -> CallShape:
        spec = self.spec
        vae, dit = spec.vae, spec.transformer
        t, s = vae.scale_factor_temporal, vae.scale_factor_spatial
        p_t, p_h, p_w = dit.patch_size
        p = spec.pipeline_def
        frames = p.segment_frames or self.frames  # a segment's frames where the video is made in segments
        if last:
            frames = self.last_segment_frames
        latent_frames = (frames - 1) // t + 1
        lh, lw = self.height // s, self.width // s
        # VACE's reference images; Wan-Animate's reference image latent in front of the segment's
        dit_frames = latent_frames + self.ref_images + (1 if p.segment_frames else 0)
        images = spec.pipeline_def.images
        per_image = spec.image_encoder.num_tokens if spec.image_encoder is not None else 0
        return CallShape(
            batch=self.batch,
            frames=frames,
            height=self.height,
            width=self.width,
            latent_frames=latent_frames,
            latent_height=lh,
            latent_width=lw,
            dit_latent_frames=dit_frames,
            dit_tokens=(dit_frames // p_t) * (lh // p_h) * (lw // p_w),
            text_len=self.text_len,
            images=images,
            image_tokens=images * per_image if dit.image_dim is not None else 0,
            ref_images=self.ref_images,
            per_token_timestep=self.runtime.per_token_timestep(spec),
            dit_ops=self.runtime.record.dit_ops,
            image_encoder_ops=self.runtime.record.image_encoder_ops,
            dit_weight_dtype=self.runtime.weight_dtype("transformer", spec),
            image=self.image,
            ulysses=deployment.ulysses if deployment else 1,
            ring=deployment.ring if deployment else 1,
            audio_samples=self.audio_samples,
            pose_video=self.pose_video,
            condition_encodes=self.segments if self.pose_video or self.runtime.record.condition_each_clip else 1,
            segment_encodes=self.runtime.record.segment_encodes,
            vae_grid=(  # LightX2V's parallel VAE, Wan2.1's (Wan2.2's runs whole)
                parallel_vae_grid(lh, lw, deployment.gpus)
                if deployment is not None
                and deployment.gpus > 1
                and self.runtime.record.vae_parallel
                and not vae.is_residual
                else (1, 1)
            ),
            packed_latent_frames=(p.segment_frames - 1) // t + 1 if last and p.segment_frames else 0,
            last_segment=self._shape(deployment, last=True) if self.last_segment_frames and not last else None,
        )

    @property
    def latent_frames(self) -> int:
        """``(frames - 1) // t + 1`` (``t`` the VAE's temporal scale factor)."""
        return self.shape().latent_frames

    @property
    def latent_height(self) -> int:
        """``height // s`` (``s`` the VAE's spatial scale factor)."""
        return self.shape().latent_height

    @property
    def latent_width(self) -> int:
        """``width // s``."""
        return self.shape().latent_width

    @property
    def dit_tokens(self) -> int:
        """Video tokens per DiT forward: ``(latent_frames/p_t) (latent_h/p_h) (latent_w/p_w)``."""
        return self.shape().dit_tokens

    def to_dict(self, every_knob: bool = False) -> dict[str, Any]:
        """The fields as plain JSON values, ``model`` the spec's name. The optional ones (``ref_images``,
        ``flow_shift``, ``image``, ``runtime``, ``strength``, ``mode``, ``audio_seconds``, ``pose_video``,
        ``prev_segment_conditioning_frames``, ``relighting_lora``) only where set; with ``every_knob``, each the
        pipeline takes whatever its value (the report's workload block: VACE's ``ref_images`` 0, ``image`` false,
        ``pose_video`` false, the default overlap, ``relighting_lora`` false)."""
        p = self.spec.pipeline_def
        d: dict[str, Any] = {"model": self.spec.name}
        d.update((name, getattr(self, name)) for name in ("width", "height", "frames", "steps", "batch", "text_len"))
        d["cfg"] = self.cfg
        if p.ref_images if every_knob else self.ref_images:
            d["ref_images"] = self.ref_images
        if self.flow_shift is not None:
            d["flow_shift"] = self.flow_shift
        if p.image_input if every_knob else self.image:
            d["image"] = self.image
        if self.runtime != DIFFUSERS:
            d["runtime"] = self.runtime.to_dict()
        if self.strength is not None:
            d["strength"] = self.strength
        if self.mode is not None:
            d["mode"] = self.mode
        if self.audio_seconds is not None:
            d["audio_seconds"] = self.audio_seconds
        if p.audio if every_knob else self.pose_video:
            d["pose_video"] = self.pose_video
        overlap = self.prev_segment_conditioning_frames
        if overlap is not None and (every_knob or overlap != p.segment_overlap):
            d["prev_segment_conditioning_frames"] = overlap
        if p.relighting_lora_rank is not None if every_knob else self.relighting_lora:
            d["relighting_lora"] = self.relighting_lora
        return d

    def rotary_overflow(self) -> str | None:
        """Where the latent grid is longer, along some axis, than the DiT's rotary table
        (``rope_max_seq_len`` positions per axis: diffusers' ``WanRotaryPosEmbed`` slices its
        precomputed frequencies and cannot run past them), the one line that says so; else ``None``."""
        dit = self.spec.transformer
        p_t, p_h, p_w = dit.patch_size
        call = self.shape()
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

    def torch_size_overflow(self) -> str | None:
        """Where a tensor one stage call builds would have more elements than int64 holds (torch's
        sizes are int64: it cannot even make such a tensor on meta), the one line that says so; else
        ``None``. Checked: the pixel video, the text tokens and their embeddings, the latents, the
        transformer's hidden states, and the ``(B, H, N, N)`` scores attention decomposes to on meta."""
        call = self.shape()
        dit, text = self.spec.transformer, self.spec.text_encoder
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

    def extrapolation_warnings(self) -> list[str]:
        """Where this workload lies beyond what the checkpoint was trained for."""
        p = self.spec
        out: list[str] = []
        if self.width * self.height > p.trained_max_pixels:
            out.append(
                f"{self.width}x{self.height} is above the {p.default_width}x{p.default_height} "
                f"{self.model} was trained for: the cost is an extrapolation"
            )
        if self.frames > p.trained_max_frames and p.pipeline_def.segment_frames is None:  # segments: their own length
            out.append(
                f"frames {self.frames} is above the {p.trained_max_frames} frames "
                f"{self.model} was trained for: the cost is an extrapolation"
            )
        if self.text_len > p.trained_max_text_len:
            out.append(
                f"text_len {self.text_len} is above the {p.trained_max_text_len} tokens "
                "the text encoder pipeline pads to: the cost is an extrapolation"
            )
        rotary = self.rotary_overflow()
        if rotary is not None:
            out.append(f"{rotary}; the analytic cost extrapolates the formulas (trace refuses it)")
        return out


def default_runtime(spec: ModelSpec) -> str:
    """The runtime a job of ``spec`` runs on unless told: diffusers, or the first runtime of a pipeline diffusers
    does not run (Wan2.2-S2V: the original repository's)."""
    runtimes = spec.pipeline_def.runtimes
    return DIFFUSERS.name if runtimes is None or DIFFUSERS.name in runtimes else runtimes[0]


def guided(spec: ModelSpec, guidance_scale: float | None, guidance_scale_2: float | None = None) -> bool:
    """Whether a job runs classifier-free guidance, as diffusers' Wan pipelines decide it:
    ``do_classifier_free_guidance = guidance_scale > 1`` (``None``: the pipeline's default, 5.0, on; Wan-Animate's
    1.0, off), for both
    experts of a two-expert pipeline; ``guidance_scale_2`` only scales the low-noise expert's
    guidance (no cost) and, as in diffusers, is refused by a pipeline without ``boundary_ratio``."""
    for name, value in (("guidance_scale", guidance_scale), ("guidance_scale_2", guidance_scale_2)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value != value):
            raise InputError(f"{name}: must be a number, got {value!r}")
    if guidance_scale_2 is not None and spec.pipeline_def.boundary_ratio is None:
        raise InputError(
            f"guidance_scale_2: {spec.name} has one transformer (diffusers: only supported with boundary_ratio); "
            "valid: leave it out"
        )
    return (spec.pipeline_def.default_guidance_scale if guidance_scale is None else guidance_scale) > 1


@memoised(1024)
def _call_shape(workload: Workload, deployment: Deployment | None) -> CallShape:
    """:meth:`Workload.shape`, made once per workload and deployment (a report and its sizing ask several times)."""
    return workload._shape(deployment)


@memoised(16)
def _with_lora(spec: ModelSpec, rank: int) -> ModelSpec:
    """``spec`` with a LoRA of ``rank`` beside its transformer's block Linears (one spec per pair, shared like
    :func:`_with_vae`'s)."""
    cfg = spec.transformer
    if not isinstance(cfg, WanAnimateTransformer3DConfig):  # pragma: no cover - relighting_lora_rank is Animate's
        raise InputError(f"relighting_lora: {spec.name}'s transformer takes no LoRA")
    return replace(spec, transformer=replace(cfg, lora_rank=rank))


@memoised(64)
def _with_vae(spec: ModelSpec, dtype: str, tiling: bool, upcast_norm: bool = True) -> ModelSpec:
    """``spec`` with its VAE run as the runtime runs it: in ``dtype`` (the VAE's ops in the dtype it runs them), tile
    by tile where ``tiling``, its norms on float32 copies or not as its code does (``upcast_norm``:
    :attr:`hybrid.runtime.RuntimeDef.vae_norm_upcast`); one spec per runtime's choices so that every workload of a
    runtime shares it (and its cached lookups)."""
    vae = spec.vae
    if (vae.compute_dtype, vae.use_tiling, vae.upcast_norm) == (dtype, tiling, upcast_norm):
        return spec
    return replace(spec, vae=replace(vae, compute_dtype=dtype, use_tiling=tiling, upcast_norm=upcast_norm))
