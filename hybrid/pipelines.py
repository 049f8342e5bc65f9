"""Pipelines as data: each Wan pipeline is an ordered list of stages.

A :class:`StageDef` says everything the rest of wanmeter needs to know about one stage: the model
component it calls (a :class:`~hybrid.presets.ModelSpec` field, named as in diffusers:
``text_encoder``, ``image_encoder``, ``transformer``, ``vae``), the call (forward, encode,
decode), its per-call analytic groups and report components (from its model family), how many
calls a job makes, the basis and variables of its fitted law, and the tracer's registry key
(:data:`hybrid.trace.build.TRACE_CALLS`). Report, verify, calibrate, sweep, memory, timing and
the CLI loop over ``pipeline.stages``; stage names are literals only here and in the families.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from hybrid.errors import InputError
from hybrid.geometry import CallShape
from hybrid.models import clip, umt5, wan_animate2, wan_dit, wan_s2v, wan_vae, wav2vec2
from hybrid.rows import CostRow, OpGroup
from hybrid.timing import Dims, Term, merge_terms, roofline_terms

Groups = Callable[[Any, CallShape], list[OpGroup]]
ComponentOf = Callable[[str, str], str]

VARIABLES: dict[str, str] = {
    "B": "batch",
    "L": "text_len (padded prompt tokens)",
    "N": "DiT tokens per sample: (latent_frames/p_t)(latent_h/p_h)(latent_w/p_w)",
    "T": "latent frames: (frames-1)/{t}+1",
    "P": "latent pixels per frame: (height/{s})(width/{s})",
    "R": "VACE reference images",
    "Q": "packed FlexAttention queries: (latent frames + 1) x tokens per frame, rounded up to 128",
    "K": "packed FlexAttention keys: Q plus the reference tokens (latent frames x tokens per frame) rounded up to 128",
    "S": "audio samples at 16 kHz",
}
"""The natural variables of the fitted laws (each stage uses some of them); ``{t}`` and ``{s}`` stand
for the VAE's temporal and spatial scale factors of the spec a law is fitted for."""


CALLS: tuple[str, ...] = (
    "guidance", "guidance_plus_one", "steps", "high_noise_steps", "low_noise_steps", "once", "twice", "image",
    "videos", "segments", "segment_steps", "cond_segment_steps", "uncond_segment_steps", "later_segments",
    "later_segment_steps", "segments_plus_one", "last_segment", "last_segment_cond_steps",
    "last_segment_uncond_steps", "every_segment", "segments_twice", "segments_guidance_plus_one",
)  # fmt: skip
"""How many calls of a stage a job makes, by kind (:func:`hybrid.schedule.stage_calls` counts them):
once per prompt (and once more for the negative prompt under CFG; plus one more prompt, Wan-Animate-2's
reference prompt), once per denoising step and pass (video-to-video: the ``int(steps x strength)`` steps
it runs), the steps of either expert, once, twice, once with ``--image``, once per video of the batch,
once per segment of a pipeline that makes its video in segments (Wan-Animate), once per step and pass of
every segment, or once per step of every segment for the conditional pass and, under CFG, for the
unconditional one (Wan-Animate-2's passes differ: the unconditional one skips a block); once per segment
after the first, and once per step and pass of every segment after the first (Wan2.2-S2V's clips after the
first carry motion tokens and decode the motion latents with their own); once per segment and once more (LightX2V's
Wan-Animate-2 CLIP: the reference image, then each segment's first driving frame); once, or once per step of the
conditional or unconditional pass, for a last segment a runtime makes shorter than the others (its calls'
:attr:`~hybrid.geometry.CallShape.last_segment`; where it makes none, no call), the others' per-segment kinds then
counting the segments before it; once or twice per segment, the shorter last one too, or per segment for each prompt
(the original Wan-Animate-2 pipeline's reference-image encode, its two CLIP calls and its text encodes, made again in
every segment whatever its length)."""


@dataclass(frozen=True)
class StageDef:
    """One stage of a pipeline (see the module docstring)."""

    name: str
    component: str
    call: str
    groups: Groups
    component_of: ComponentOf
    calls: str
    """How many calls a job makes (:data:`CALLS`)."""
    basis: tuple[str, ...]
    variables: Callable[[CallShape], dict[str, int]]
    trace_key: str
    """The tracer's registry key (:data:`hybrid.trace.build.TRACE_CALLS`); ``""`` where no diffusers or
    transformers module builds the stage (its cost is closed form only, and the tracer refuses it)."""
    modeled: str
    color: str
    assumption: str = ""
    components: Callable[[Any, CallShape], dict[str, int]] | None = None
    """A faster exact twin of summing :attr:`groups` by :attr:`component_of` (optional)."""
    row_component: Callable[[CostRow], str] | None = None
    """The component of a traced row where its (module, op) is not enough (default: :attr:`component_of`)."""
    rows: Groups | None = None
    """Every op one call costs, FLOPs and bytes read and written, in closed form (the family's full
    row walk; :attr:`groups` are its FLOP rows); ``None`` where only the tracer has the bytes yet."""
    terms: Callable[[Any, CallShape], tuple[Term, ...]] | None = None
    """A faster exact twin of :func:`hybrid.timing.roofline_terms` of :attr:`rows` (optional): the
    same walk reduced as it goes, without a group per zero-FLOP op."""
    peak: Callable[[Any, CallShape, bool], int] | None = None
    """The activation peak of one call in closed form, with fused attention or (``True``) with
    PyTorch's math attention; ``None`` where only the tracer has it yet."""
    fused_terms: Callable[[Any, CallShape], tuple[Term, ...]] | None = None
    """The terms of the same walk as ``torch.compile`` fuses it (:class:`hybrid.sinks.FusedTermSink`);
    ``None`` where the stage is never compiled."""
    keeps: Callable[[Any, CallShape], int] | None = None
    """Bytes a call leaves on the GPU after it returns, for later calls (Wan-Animate-2's reference pass: the K/V
    cache its segment's steps attend to; Wan2.2-S2V's transformer: the rotary table it keeps on itself): in the
    memory of the stages that run :attr:`beside` it, not in its call's activation peak."""
    beside: tuple[str, ...] = ()
    """Stages whose calls' :attr:`keeps` are on the GPU while this one runs (the most of those the job runs)."""
    block_mask: Callable[[Any, CallShape], tuple[Dims, Fraction]] | None = None
    """The kernel dims of an attention a block mask thins and the share of its blocks the kernel computes
    (FlexAttention): sizing times that share of its FLOPs, which the rows count dense as FlopCounterMode does."""
    moved_each_segment: bool = False
    """Whether a runtime that moves the stage's component (``--offload``) moves it in at the start of each segment
    or clip the stage runs and out at its end, whatever else is on the GPU (the original Wan2.2-S2V's DiT:
    ``noise_model.to(device)`` before a clip's steps, ``noise_model.cpu()`` after them, speech2video.py:613-647),
    rather than once for all its calls (:meth:`hybrid.runtime.Runtime.moves`)."""
    at: Callable[[CallShape], CallShape] | None = None
    """The shape the stage's calls run at, from the job's (a shorter last segment's, :func:`_last_segment`: its cost
    functions take the job's shape and the tracer runs it at this one); ``None``: the job's."""
    vae_split: Callable[[CallShape], tuple[int, int]] | None = None
    """The grid a parallel VAE splits this stage's calls over where it is not :attr:`CallShape.vae_grid` (LightX2V's
    image-to-video condition encode: :func:`_condition_grid`)."""
    parallel_vae: bool = False
    """Whether the stage's VAE calls go through a runtime's parallel VAE (LightX2V's wrapper: its decode, its
    ``encode``), which splits them over the ranks by :attr:`~hybrid.geometry.CallShape.vae_grid`; its cost functions
    take that grid. ``False``: they run whole on every rank (VACE's encodes; TI2V's and every Wan2.2 VAE's grid is
    ``(1, 1)`` anyway)."""

    def closed_rows(self, spec: Any, shape: CallShape) -> list[OpGroup] | None:
        """:attr:`rows` of one call under this stage's name, or ``None`` where the family has not
        written its bytes for ``spec``'s config yet (only the tracer has them)."""
        if self.rows is None:
            return None
        try:
            groups = self.rows(self.config(spec), shape)
        except NotImplementedError:
            return None
        return self.named(groups)

    def named(self, groups: list[OpGroup]) -> list[OpGroup]:
        """``groups`` under this stage's name: a family writes its stage's usual name, and a pipeline
        may run it under another (``diffusion_core_2``)."""
        return [g if g.stage == self.name else g._replace(stage=self.name) for g in groups]

    def closed_terms(self, spec: Any, shape: CallShape) -> tuple[Term, ...] | None:
        """The roofline terms of :meth:`closed_rows` (what sizing times), or ``None`` like it."""
        if self.terms is None:
            groups = self.closed_rows(spec, shape)
            return None if groups is None else roofline_terms(groups)
        try:
            return self.terms(self.config(spec), shape)
        except NotImplementedError:
            return None

    def closed_fused_terms(self, spec: Any, shape: CallShape) -> tuple[Term, ...] | None:
        """:attr:`fused_terms` of one call, or ``None`` where the family has not written them."""
        if self.fused_terms is None:
            return None
        try:
            return self.fused_terms(self.config(spec), shape)
        except NotImplementedError:
            return None

    def closed_peak(self, spec: Any, shape: CallShape, materialized: bool = False) -> int | None:
        """:attr:`peak` of one call, or ``None`` where the family has not written it for ``spec``'s
        config yet."""
        if self.peak is None:
            return None
        try:
            return self.peak(self.config(spec), shape, materialized)
        except NotImplementedError:
            return None

    def component_of_row(self, row: CostRow) -> str:
        """The report component of a traced row of this stage."""
        if self.row_component is not None:
            return self.row_component(row)
        return self.component_of(row.module, row.op)

    def config(self, spec: Any) -> Any:
        """The stage's model config in ``spec``."""
        return getattr(spec, self.component)


TEXT_ENCODER = StageDef(
    name="text_encoder",
    component="text_encoder",
    call="forward",
    groups=lambda cfg, s: umt5.umt5_groups(cfg, s.batch, s.text_len),
    component_of=umt5.component,
    calls="guidance",
    basis=("B*L", "B*L^2"),
    variables=lambda s: {"B": s.batch, "L": s.text_len},
    trace_key="umt5.forward",
    modeled="text_encoder: UMT5-XXL encoder forward over text_len padded tokens (q/k/v/o projections, "
    "attention, gated FFN); once for the prompt, once more for the negative prompt under CFG",
    color="#4C72B0",
    components=lambda cfg, s: umt5.umt5_components(cfg, s.batch, s.text_len),
    rows=lambda cfg, s: umt5.umt5_rows(cfg, s.batch, s.text_len),
    terms=lambda cfg, s: umt5.umt5_terms(cfg, s.batch, s.text_len),
    peak=lambda cfg, s, mat: umt5.umt5_peak_bytes(cfg, s.batch, s.text_len, mat),
)

DIFFUSION_CORE = StageDef(
    name="diffusion_core",
    component="transformer",
    call="forward",
    groups=wan_dit.dit_groups,
    component_of=wan_dit.component,
    calls="steps",
    basis=("B", "B*N", "B*L", "B*N^2", "B*N*L"),
    variables=lambda s: {"B": s.batch, "N": s.dit_tokens, "L": s.text_len},
    trace_key="wan_dit.forward",
    modeled="diffusion_core: every WanTransformer3DModel forward (patch embedding, timestep and text "
    "embedders, self-attention, cross-attention over text_len keys, FFN, output head); steps x "
    "(2 under CFG)",
    color="#DD8452",
    components=wan_dit.dit_components,
    rows=wan_dit.dit_rows,
    terms=wan_dit.dit_terms,
    peak=wan_dit.dit_peak_bytes,
    fused_terms=wan_dit.dit_fused_terms,
)

_Latents = Callable[[wan_vae.AutoencoderKLWanConfig, CallShape], tuple[int, int, int, int]]
_Video = Callable[[wan_vae.AutoencoderKLWanConfig, CallShape], tuple[tuple[int, int, int], dict[str, Any]]]


def _decode_walks(latents: _Latents) -> dict[str, Any]:
    """The closed-form fields of an ``AutoencoderKLWan.decode`` of ``latents(cfg, shape)`` (batch, latent frames,
    latent height and width; a parallel VAE's rank its share of :attr:`~hybrid.geometry.CallShape.vae_grid`), the
    arguments stated once for every sink of the one walk."""

    def walk(fn: Callable[..., Any]) -> Callable[[Any, CallShape], Any]:
        return lambda cfg, s: fn(cfg, *latents(cfg, s), s.vae_grid)

    return {
        "groups": walk(wan_vae.vae_decode_groups),
        "rows": walk(wan_vae.vae_decode_rows),
        "terms": walk(wan_vae.vae_decode_terms),
        "components": walk(wan_vae.vae_decode_components),
        "peak": lambda cfg, s, mat: wan_vae.vae_decode_peak_bytes(cfg, *latents(cfg, s), mat, s.vae_grid),
    }


def _encode_walks(video: _Video) -> dict[str, Any]:
    """The closed-form fields of ``AutoencoderKLWan.encode`` calls of one video, ``video(cfg, shape)``: its latent
    frames, height and width, and the walk's keywords (``calls``: alike encodes; ``grid``, ``sliced``: a parallel
    VAE's share), the arguments stated once for every sink of the one walk; the peak is one encode's."""

    def walk(fn: Callable[..., Any]) -> Callable[[Any, CallShape], Any]:
        def call(cfg: Any, s: CallShape) -> Any:
            (t, h, w), kw = video(cfg, s)
            return fn(cfg, 1, t, h, w, **kw)

        return call

    def peak(cfg: Any, s: CallShape, mat: bool) -> int:
        (t, h, w), kw = video(cfg, s)
        return wan_vae.vae_encode_peak_bytes(cfg, 1, t, h, w, mat, **{k: v for k, v in kw.items() if k != "calls"})

    return {
        "groups": walk(wan_vae.vae_encode_groups),
        "rows": walk(wan_vae.vae_encode_rows),
        "terms": walk(wan_vae.vae_encode_terms),
        "peak": peak,
    }


VAE_DECODE = StageDef(
    name="vae_decode",
    component="vae",
    call="decode",
    **_decode_walks(lambda cfg, s: (s.batch, s.latent_frames, s.latent_height, s.latent_width)),
    component_of=wan_vae.component,
    calls="once",
    basis=("B*P", "B*T*P", "B*P^2", "B*T*P^2"),
    variables=lambda s: {"B": s.batch, "T": s.latent_frames, "P": s.latent_pixels},
    trace_key="wan_vae.decode",
    parallel_vae=True,
    modeled="vae_decode: AutoencoderKLWan.decode (post_quant_conv, the decoder's per-latent-frame causal "
    "chunk loop with its time-conv cache, resample/upsample convs, mid-block attention, head); once",
    color="#55A868",
    assumption="vae_decode runs once per job over the whole batch, one latent frame per decoder call, tiled only "
    "with --vae-tiling",
)


@dataclass(frozen=True)
class Pipeline:
    """An ordered list of stages plus the constraints and knobs of the diffusers pipeline class."""

    name: str
    diffusers_class: str
    stages: tuple[StageDef, ...]
    unmodeled: tuple[str, ...]
    images: int = 0
    """Images the pipeline encodes per job with its image encoder."""
    ref_images: bool = False
    """Whether the pipeline takes VACE reference images (``--ref-images``)."""
    fixed_text_len: int | None = None
    """The only text length the pipeline's transformer accepts, where it splits its context."""
    fixed_text_len_reason: str = ""
    max_batch: int | None = None
    max_batch_reason: str = ""
    boundary_ratio: float | None = None
    """Two experts: ``transformer`` runs the steps at or above ``boundary_ratio * 1000``."""
    expand_timesteps: bool = False
    """Wan2.2 TI2V: the timestep is per token (``WanPipeline(expand_timesteps=True)``)."""
    image_input: bool = False
    """Takes ``--image`` (TI2V's image-to-video mode)."""
    wan_repo: str = "Wan2.1"
    """The original repository (``Wan-Video/<wan_repo>``) whose ``generate.py`` runs this pipeline
    under ``--runtime wan``."""
    default_strength: float | None = None
    """Video-to-video: the pipeline's default ``strength`` (``None``: the pipeline takes none); the job
    denoises the last ``int(steps x strength)`` of its ``steps`` steps, from the input video's latents."""
    runtimes: tuple[str, ...] | None = None
    """The runtimes that run this pipeline (``None``: every one), with :attr:`runtimes_reason`."""
    runtimes_reason: str = ""
    default_steps: int = 50
    """``num_inference_steps`` of the diffusers pipeline's ``__call__`` (or its modular blocks)."""
    default_guidance_scale: float = 5.0
    """The pipeline's default ``guidance_scale``: CFG runs where it is above 1 (Wan-Animate's 1.0: off)."""
    segment_frames: int | None = None
    """Frames of each segment a pipeline makes its video in (Wan-Animate's ``segment_frame_length``, 77);
    ``None``: one clip of ``frames``. ``--frames`` is then the whole video's length, any count."""
    segment_overlap: int = 0
    """Frames of the previous segment each later one is conditioned on (``prev_segment_conditioning_frames``)."""
    segment_overlaps: tuple[int, ...] = ()
    """The overlaps a user may choose (``prev_segment_conditioning_frames``), the default :attr:`segment_overlap`
    among them; ``()``: the overlap is fixed."""
    modes: tuple[str, ...] = ()
    """The pipeline's ``mode`` values (``--mode``), the first its default; ``()``: it takes none."""
    relighting_lora_rank: int | None = None
    """The rank of the relighting LoRA a job may load (``--relighting-lora``: Wan2.2-Animate's
    ``relighting_lora.ckpt``, ``generate.py --use_relighting_lora``); ``None``: the pipeline has none."""
    no_layouts_reason: str = ""
    """Why the pipeline runs on one GPU only (its transformer has no context-parallel plan); ``""``: it has one."""
    layouts_runtimes: tuple[str, ...] = ()
    """Runtimes whose own code splits the pipeline over GPUs all the same (:attr:`no_layouts_reason` is diffusers')."""
    no_ring_reason: str = ""
    """Why the pipeline's tokens split by Ulysses only (no ring attention, on any runtime); ``""``: ring too."""
    audio: bool = False
    """Speech-to-video: the job's length follows its audio (``--audio-seconds``), made in clips of ``frames``
    frames (generate.py's ``--infer_frames``, a multiple of 4), :func:`hybrid.models.wan_s2v.clips` of them."""
    size_step: int = 0
    """The multiple width and height must be of where the pipeline needs more than the VAE and patch do
    (Wan2.2-S2V: 64); 0: what they need."""
    no_laws_reason: str = ""
    """Why no scaling laws are fitted for the pipeline's presets (``wanmeter calibrate`` skips them); ``""``:
    they are."""
    transformer_dtype: str = ""
    """The dtype the pipeline's own code loads its transformer in whatever the runtime's default (Wan2.2-S2V:
    ``WanModel_S2V.from_pretrained(torch_dtype=bfloat16)``); ``""``: the runtime's."""

    def segments(self, frames: int, overlap: int | None = None, tail: int = 0) -> int:
        """Segments a ``frames``-frame video is made in (1 without :attr:`segment_frames`):
        ``WanAnimatePipeline.__call__`` pads the driving video to ``overlap + k x (length - overlap)``
        frames and makes ``k`` segments of ``length``, each after the first starting ``overlap`` frames
        before the previous one's end (``overlap``: :attr:`segment_overlap` where not given). With a ``tail``
        (:attr:`hybrid.runtime.RuntimeDef.segment_tail`) the last one is shorter (:meth:`last_segment_frames`) and
        comes after every whole one the video fills: ``(frames - overlap) // (length - overlap) + 1``."""
        if self.segment_frames is None:
            return 1
        overlap = self.segment_overlap if overlap is None else overlap
        if tail:
            return (frames - overlap) // (self.segment_frames - overlap) + 1
        return -(-(frames - overlap) // (self.segment_frames - overlap))

    def last_segment_frames(self, frames: int, overlap: int | None = None, tail: int = 0) -> int:
        """Frames of the last segment of a ``frames``-frame video a runtime pads to a short last segment (``tail``: 0
        for none, then 0): LightX2V's ``WanAnimate2Runner._padding_length`` pads the ``r = (frames - overlap) %
        (length - overlap)`` frames past the whole segments to ``tail`` (28) where fewer, else up to the next
        multiple of 4 above ``r`` (``r + 4`` where ``r`` is one), and ``_plan_segments`` makes them, with the overlap,
        the last segment: 29 to 81 frames, always ``4k + 1``."""
        if not tail or self.segment_frames is None:
            return 0
        overlap = self.segment_overlap if overlap is None else overlap
        r = (frames - overlap) % (self.segment_frames - overlap)
        return (tail if r < tail else r + 4 - r % 4) + overlap

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)

    def stage(self, name: str) -> StageDef:
        """The stage called ``name``; ``ValueError`` naming the valid ones otherwise."""
        for s in self.stages:
            if s.name == name:
                return s
        raise InputError(f"stage: unknown stage {name!r} for {self.name}; valid: {', '.join(self.stage_names)}")

    def constrain(self, shape: Mapping[str, Any], ref_images: int = 0) -> dict[str, Any]:
        """``shape`` (workload keyword arguments) within this pipeline's constraints: its fixed text
        length, its largest batch, ``ref_images`` reference images where it takes them, for
        video-to-video at least the steps that denoise one (``int(steps x strength) >= 1``), and for a
        pipeline that makes its video in segments more frames than the overlap."""
        kw = dict(shape)
        if self.segment_frames is not None and "frames" in kw:  # the segments need a frame after the overlap
            kw["frames"] = max(kw["frames"], self.segment_overlap + 1)
        if self.default_strength is not None and "steps" in kw:
            strength = kw.get("strength") or self.default_strength
            kw["steps"] = max(kw["steps"], math.ceil(1 / strength))
        if self.fixed_text_len is not None:
            kw["text_len"] = self.fixed_text_len
        if self.max_batch is not None:
            kw["batch"] = min(kw.get("batch", 1), self.max_batch)
        if self.ref_images:
            kw.setdefault("ref_images", ref_images)
        else:
            kw.pop("ref_images", None)
        return kw


T2V_UNMODELED: tuple[str, ...] = (
    "tokenizer, prompt handling and scheduler arithmetic (elementwise: 0 FLOPs by the convention)",
    "elementwise ops, norms, softmax, RoPE and embeddings in the FLOPs column (0 by the convention; "
    "their bytes are in the tracer's byte columns)",
    "VAE encode (not run for text-to-video), VAE slicing (enable_slicing; tiling is modelled with --vae-tiling)",
    "image-conditioned variants (I2V/FLF2V image embedder and added K/V), Wan2.2 models",
    "bytes, memory and seconds in this report (the tracer has bytes; time and memory come later)",
)

T2V = Pipeline(
    name="t2v",
    diffusers_class="WanPipeline",
    stages=(TEXT_ENCODER, DIFFUSION_CORE, VAE_DECODE),
    unmodeled=T2V_UNMODELED,
)

IMAGE_ENCODER = StageDef(
    name="image_encoder",
    component="image_encoder",
    call="forward",
    groups=clip.clip_groups,
    rows=clip.clip_rows,
    terms=clip.clip_terms,
    peak=clip.clip_peak_bytes,
    component_of=clip.component,
    calls="once",
    basis=("1",),
    variables=lambda s: {},
    trace_key="clip.forward",
    modeled="image_encoder: CLIPVisionModel (ViT-H/14) forward over the conditioning image(s) at 224x224 "
    "(every layer runs, the pipeline reads hidden_states[-2]); once per job, batch 1 (FLF2V: the first "
    "and last frame, batch 2)",
    color="#8172B3",
    assumption="image_encoder and vae_encode run once per job on one conditioning image (FLF2V: two), "
    "their outputs repeated over the batch, as diffusers' pipeline does with one image",
)


def _condition_grid(s: CallShape) -> tuple[int, int]:
    """The grid an image-to-video job's condition encode splits over (LightX2V's parallel VAE:
    :func:`hybrid.models.wan_vae.condition_encode_grid`, not always its decode's :attr:`CallShape.vae_grid`)."""
    if s.vae_grid == (1, 1):
        return s.vae_grid
    return wan_vae.condition_encode_grid(s.latent_height, s.latent_width, s.vae_grid[0] * s.vae_grid[1])


VAE_ENCODE = StageDef(
    name="vae_encode",
    component="vae",
    call="encode",
    **_encode_walks(lambda cfg, s: ((s.latent_frames, s.height, s.width), {"grid": _condition_grid(s)})),
    component_of=wan_vae.encode_component,
    calls="once",
    basis=("P", "T*P", "P^2", "T*P^2"),
    variables=lambda s: {"T": s.latent_frames, "P": s.latent_pixels},
    trace_key="wan_vae.encode",
    parallel_vae=True,
    vae_split=_condition_grid,
    modeled="vae_encode: AutoencoderKLWan.encode of the condition video the pipeline builds at full "
    "resolution (the image, then zeros for the other frames; FLF2V: first, zeros, last): the encoder's "
    "chunk loop (1 frame, then 4) with its cache, stride-2 resample and time convs, mid-block "
    "attention, quant_conv; once",
    color="#C44E52",
)

_IMAGE_TEXT = (
    f"{wan_dit.IMAGE_CONTEXT_TEXT_LEN}: diffusers' WanAttnProcessor splits the context into image and text "
    f"tokens at {wan_dit.IMAGE_CONTEXT_TEXT_LEN} text tokens"
)

I2V_DIFFUSION_CORE = replace(
    DIFFUSION_CORE,
    row_component=wan_dit.image_row_component,
    basis=("B", "B*N", "B*N^2"),  # text_len is fixed at 512: its terms fold into these
    modeled="diffusion_core: every WanTransformer3DModel forward of image-to-video (patch embedding over "
    "36 channels: noise, mask and condition latents; timestep, text and image embedders; self-attention; "
    "cross-attention over the 512 text tokens plus the image tokens through add_k_proj/add_v_proj and a "
    "second attention; FFN; output head); steps x (2 under CFG), both passes with the image",
)

I2V_TEXT_ENCODER = replace(TEXT_ENCODER, basis=("B",))  # text_len is fixed at 512

I2V_UNMODELED: tuple[str, ...] = (
    "tokenizer, image preprocessing, prompt handling, mask building and scheduler arithmetic "
    "(elementwise: 0 FLOPs by the convention)",
    "elementwise ops, norms, softmax, RoPE and embeddings in the FLOPs column (0 by the convention; "
    "their bytes are in the tracer's byte columns)",
    "CLIPVisionModelWithProjection's visual_projection (2.6 MFLOP on the pooled token; the pipeline "
    "reads hidden_states[-2]), VAE slicing (enable_slicing; tiling is modelled with --vae-tiling)",
    "Wan2.2 models",
)

I2V = Pipeline(
    name="i2v",
    diffusers_class="WanImageToVideoPipeline",
    stages=(I2V_TEXT_ENCODER, IMAGE_ENCODER, VAE_ENCODE, I2V_DIFFUSION_CORE, VAE_DECODE),
    unmodeled=I2V_UNMODELED,
    images=1,
    fixed_text_len=wan_dit.IMAGE_CONTEXT_TEXT_LEN,
    fixed_text_len_reason=_IMAGE_TEXT,
)

FLF2V = replace(I2V, name="flf2v", images=2)
"""First-last-frame-to-video: ``WanImageToVideoPipeline`` with ``last_image``."""

V2V_VAE_ENCODE = replace(
    VAE_ENCODE,
    calls="videos",
    modeled="vae_encode: AutoencoderKLWan.encode of the input video at the output's size, one video at a time "
    "(WanVideoToVideoPipeline.prepare_latents: [vae.encode(vid.unsqueeze(0)) for vid in video]): the encoder's "
    "chunk loop (1 frame, then 4) with its cache, stride-2 resample and time convs, mid-block attention, "
    "quant_conv; once per video",
)

V2V_DIFFUSION_CORE = replace(
    DIFFUSION_CORE,
    modeled="diffusion_core: every WanTransformer3DModel forward (patch embedding, timestep and text embedders, "
    "self-attention, cross-attention over text_len keys, FFN, output head) of the int(steps x strength) steps "
    "video-to-video runs (WanVideoToVideoPipeline.get_timesteps); x2 under CFG",
)

V2V = Pipeline(
    name="v2v",
    diffusers_class="WanVideoToVideoPipeline",
    stages=(TEXT_ENCODER, V2V_VAE_ENCODE, V2V_DIFFUSION_CORE, VAE_DECODE),
    unmodeled=(
        *T2V_UNMODELED[:2],
        "video preprocessing and resizing, the noise added to the encoded latents (elementwise), VAE slicing "
        "(enable_slicing; tiling is modelled with --vae-tiling)",
    ),
    default_strength=0.8,
    runtimes=("diffusers",),
    runtimes_reason="diffusers' WanVideoToVideoPipeline; the original Wan repositories have no video-to-video "
    "generate task, and no other runtime record states one",
)

VACE_VAE_ENCODE = StageDef(
    name="vae_encode",
    component="vae",
    call="encode",
    groups=lambda cfg, s: [
        *wan_vae.vae_encode_groups(cfg, 1, s.latent_frames, s.height, s.width, calls=2),
        *(wan_vae.vae_encode_groups(cfg, 1, 1, s.height, s.width, calls=s.ref_images) if s.ref_images else []),
    ],
    rows=lambda cfg, s: [
        *wan_vae.vae_encode_rows(cfg, 1, s.latent_frames, s.height, s.width, calls=2),
        *wan_vae.vae_encode_rows(cfg, 1, 1, s.height, s.width, calls=s.ref_images),
    ],
    terms=lambda cfg, s: merge_terms(
        wan_vae.vae_encode_terms(cfg, 1, s.latent_frames, s.height, s.width, calls=2),
        wan_vae.vae_encode_terms(cfg, 1, 1, s.height, s.width, calls=s.ref_images),
    ),
    # the encodes run one after the other, each freeing all it made: the full videos' peak leads
    peak=lambda cfg, s, mat: wan_vae.vae_encode_peak_bytes(cfg, 1, s.latent_frames, s.height, s.width, mat),
    component_of=wan_vae.encode_component,
    calls="once",
    basis=("P", "T*P", "P^2", "T*P^2", "R*P", "R*P^2"),
    variables=lambda s: {"T": s.latent_frames, "P": s.latent_pixels, "R": s.ref_images},
    trace_key="wan_vae.encode_vace",
    modeled="vae_encode: WanVACEPipeline.prepare_video_latents: two full-video AutoencoderKLWan.encode calls "
    "(the inactive and the reactive video) and one one-frame encode per reference image; once",
    color="#C44E52",
)

VACE_DIFFUSION_CORE = replace(
    DIFFUSION_CORE,
    trace_key="wan_vace.forward",
    modeled="diffusion_core: every WanVACETransformer3DModel forward (the T2V transformer over the video "
    "latents plus one per reference image, vace_patch_embedding of the 96 control channels, the VACE "
    "blocks on the control tokens with proj_in/proj_out, hints added after the blocks in vace_layers); "
    "steps x (2 under CFG)",
)

VACE_UNMODELED: tuple[str, ...] = (
    *T2V_UNMODELED[:2],
    "the control video and mask preprocessing outside the modules (elementwise), VAE slicing (tiling is modelled "
    "with --vae-tiling)",
    "Wan2.2 models",
)

VACE = Pipeline(
    name="vace",
    diffusers_class="WanVACEPipeline",
    stages=(TEXT_ENCODER, VACE_VAE_ENCODE, VACE_DIFFUSION_CORE, VAE_DECODE),
    unmodeled=VACE_UNMODELED,
    ref_images=True,
    max_batch=1,
    max_batch_reason="WanVACEPipeline.prepare_video_latents: 'Generating with more than one video is not "
    "yet supported'",
)


HIGH_NOISE_EXPERT = replace(
    DIFFUSION_CORE,
    calls="high_noise_steps",
    modeled="diffusion_core: every forward of the high-noise expert transformer (WanTransformer3DModel with the "
    "Wan2.1-14B architecture), at the steps whose timestep is at or above boundary_ratio x 1000; x2 under CFG",
)

LOW_NOISE_EXPERT = replace(
    DIFFUSION_CORE,
    name="diffusion_core_2",
    component="transformer_2",
    calls="low_noise_steps",
    modeled="diffusion_core_2: every forward of the low-noise expert transformer_2 (same architecture), at the "
    "other steps; x2 under CFG",
    color="#937860",
)

A14B_UNMODELED: tuple[str, ...] = (
    *T2V_UNMODELED[:2],
    "VAE slicing (enable_slicing; tiling is modelled with --vae-tiling); guidance_scale_2 (it scales the "
    "low-noise expert's guidance, "
    "not its cost: diffusers decides CFG for both experts from guidance_scale > 1)",
    "Wan2.2 TI2V-5B and its VAE",
)

T2V_A14B = Pipeline(
    name="t2v-a14b",
    diffusers_class="WanPipeline",
    stages=(TEXT_ENCODER, HIGH_NOISE_EXPERT, LOW_NOISE_EXPERT, VAE_DECODE),
    unmodeled=A14B_UNMODELED,
    boundary_ratio=0.875,
    wan_repo="Wan2.2",
)

I2V_A14B = Pipeline(
    name="i2v-a14b",
    diffusers_class="WanImageToVideoPipeline",
    stages=(TEXT_ENCODER, VAE_ENCODE, HIGH_NOISE_EXPERT, LOW_NOISE_EXPERT, VAE_DECODE),
    unmodeled=A14B_UNMODELED,
    boundary_ratio=0.9,
    wan_repo="Wan2.2",
)


def _wrapper_split(s: CallShape) -> dict[str, Any]:
    """An encode through LightX2V's VAE wrapper's ``encode`` (Animate's and S2V's): split over the ranks by its
    parallel VAE (:attr:`~hybrid.geometry.CallShape.vae_grid`), each rank's chunk cut from the whole video
    (``encode_dist_2d``); nothing to add where it runs whole."""
    return {"grid": s.vae_grid, "sliced": True} if s.vae_grid != (1, 1) else {}


TI2V_VAE_ENCODE = StageDef(
    name="vae_encode",
    component="vae",
    call="encode",
    **_encode_walks(lambda cfg, s: ((1, s.height, s.width), _wrapper_split(s))),
    component_of=wan_vae.encode_component,
    calls="image",
    basis=("P", "P^2"),
    variables=lambda s: {"P": s.latent_pixels},
    trace_key="wan_vae.encode_image",
    parallel_vae=True,
    modeled="vae_encode: with --image, AutoencoderKLWan.encode of the single image (one frame, the Wan2.2 VAE "
    "with its 2x2 patches and residual blocks), as WanImageToVideoPipeline(expand_timesteps=True) runs it; "
    "the blend (1 - mask) * condition + mask * latents is elementwise; not run without --image",
    color="#C44E52",
)

TI2V_DIFFUSION_CORE = replace(
    DIFFUSION_CORE,
    modeled="diffusion_core: every WanTransformer3DModel forward of Wan2.2 TI2V-5B with a timestep per token "
    "(expand_timesteps: the time embedder and time_proj run over batch x tokens rows, each block adds a float32 "
    "(batch, tokens, 6, dim) modulation), self-attention, cross-attention over text_len keys, FFN, output "
    "head; steps x (2 under CFG)",
)

TI2V = Pipeline(
    name="ti2v",
    diffusers_class="WanPipeline",
    stages=(TEXT_ENCODER, TI2V_VAE_ENCODE, TI2V_DIFFUSION_CORE, VAE_DECODE),
    unmodeled=(
        *T2V_UNMODELED[:2],
        "VAE slicing (enable_slicing; tiling is modelled with --vae-tiling); the image-to-video blend (elementwise)",
    ),
    expand_timesteps=True,
    image_input=True,
    wan_repo="Wan2.2",
)

ANIMATE_REFERENCE_ENCODE = replace(
    TI2V_VAE_ENCODE,
    name="reference_encode",
    calls="once",
    modeled="reference_encode: AutoencoderKLWan.encode of the reference (character) image, one frame "
    "(WanAnimatePipeline.prepare_reference_image_latents); once per job",
)

ANIMATE_IMAGE_ENCODER = replace(
    IMAGE_ENCODER,
    modeled="image_encoder: CLIPVisionModel (ViT-H/14) forward over the reference image at 224x224 (every layer "
    "runs, the pipeline reads hidden_states[-2]); once per job (the original WanAnimate.generate: once per segment)",
    assumption="image_encoder runs on the one reference image, batch 1",
)

ANIMATE_VAE_ENCODE = replace(
    VAE_ENCODE,  # its peak: the two encodes run one after the other, each freeing all it made
    **_encode_walks(
        lambda cfg, s: ((s.latent_frames, s.height, s.width), {"calls": s.segment_encodes, **_wrapper_split(s)})
    ),
    calls="segments",
    basis=("P", "P^2"),  # a segment's frames are fixed: its T terms fold into these
    variables=lambda s: {"P": s.latent_pixels},
    trace_key="wan_vae.encode_animate",
    modeled="vae_encode: per segment, AutoencoderKLWan.encode of the segment's pose video and of its "
    "conditioning video (the previous segment's last frame, then zeros in animate mode or the background video "
    "in replace mode: prepare_prev_segment_cond_latents encodes it in both modes), each at full resolution",
)

ANIMATE_DIFFUSION_CORE = replace(
    I2V_DIFFUSION_CORE,
    calls="segment_steps",
    trace_key="wan_animate.forward",
    modeled="diffusion_core: every WanAnimateTransformer3DModel forward: the image-to-video transformer over a "
    "segment's latents plus the reference frame, its pose patch embedding added in, the motion encoder over the "
    "segment's face frames at 512x512 (in batches of motion_encoder_batch_size) and the face encoder inside every "
    "call, a face adapter after every fifth block; steps x segments (x2 under CFG)",
)

ANIMATE_VAE_DECODE = replace(
    VAE_DECODE,
    calls="segments",
    assumption="vae_decode runs once per segment, over the segment's latent frames after the reference frame, one "
    "latent frame per decoder call, tiled only with --vae-tiling",
    basis=("B*P", "B*P^2"),  # a segment's latent frames are fixed: its T terms fold into these
    variables=lambda s: {"B": s.batch, "P": s.latent_pixels},
    modeled="vae_decode: per segment, AutoencoderKLWan.decode of its latent frames after the reference frame "
    "(latents[:, :, 1:]), a segment's frames; the overlap frames are cut from every segment after the first",
)

ANIMATE = Pipeline(
    name="animate",
    diffusers_class="WanAnimatePipeline",
    stages=(
        I2V_TEXT_ENCODER,
        ANIMATE_IMAGE_ENCODER,
        replace(
            ANIMATE_REFERENCE_ENCODE,
            modeled=ANIMATE_REFERENCE_ENCODE.modeled + " (the original WanAnimate.generate: once per segment)",
        ),
        ANIMATE_VAE_ENCODE,
        ANIMATE_DIFFUSION_CORE,
        ANIMATE_VAE_DECODE,
    ),
    unmodeled=(
        *T2V_UNMODELED[:2],
        "pose, face, background and mask video preprocessing and resizing, the mask's interpolation to the latent "
        "size in replace mode, the scheduler's reset per segment (elementwise or host work), VAE slicing (tiling is "
        "modelled with --vae-tiling)",
    ),
    images=1,
    fixed_text_len=wan_dit.IMAGE_CONTEXT_TEXT_LEN,
    fixed_text_len_reason=_IMAGE_TEXT,
    max_batch=1,
    max_batch_reason="wanmeter models Wan-Animate one video per job (the pipeline expands one pose and face "
    "video over the prompts)",
    wan_repo="Wan2.2",
    runtimes=("diffusers", "wan", "lightx2v"),
    runtimes_reason="diffusers' WanAnimatePipeline, the original Wan2.2 repository's WanAnimate (generate.py "
    "--task animate-14B) and LightX2V's wan2.2_animate runner",
    transformer_dtype="bfloat16",
    default_steps=20,
    default_guidance_scale=1.0,
    segment_frames=77,
    segment_overlap=1,
    segment_overlaps=(1, 5),
    modes=("animate", "replace"),
    relighting_lora_rank=128,  # Wan2.2 wan/animate.py: get_loraconfig(transformer=model, rank=128, alpha=128)
    no_layouts_reason="diffusers' WanAnimateTransformer3DModel has no context-parallel plan (_cp_plan); the original "
    "code splits it by Ulysses (--runtime wan), LightX2V by its sequence parallelism (--runtime lightx2v)",
    layouts_runtimes=("wan", "lightx2v"),
)
"""Wan2.2-Animate (``WanAnimatePipeline``): the video made in 77-frame segments (``segment_frame_length``), each
after the first conditioned on one frame of the previous (``prev_segment_conditioning_frames``), 20 steps and
guidance 1.0 (no CFG) by default."""


def _animate2_stage(name: str, mode: str, calls: str, modeled: str) -> StageDef:
    """A Wan-Animate-2 transformer stage: one call of ``mode`` (:mod:`hybrid.models.wan_animate2`)."""
    return StageDef(
        name=name,
        component="transformer",
        call="forward",
        groups=lambda cfg, s: wan_animate2.animate2_groups(cfg, s, mode, name),
        component_of=wan_animate2.component,
        row_component=wan_animate2.row_component,
        calls=calls,
        # a segment's frames, the 512-token prompt and the 257 image tokens are fixed: their terms fold into these
        basis=("B", "B*P", "B*P^2") if mode == wan_animate2.REFERENCE else ("B", "B*P", "B*Q*K"),
        variables=lambda s: {"B": s.batch, "P": s.latent_pixels, **wan_animate2.packed_variables(s)},
        trace_key=wan_animate2.TRACE_KEYS[mode],
        modeled=modeled,
        color="#DD8452" if mode != wan_animate2.REFERENCE else "#937860",
        rows=lambda cfg, s: wan_animate2.animate2_rows(cfg, s, mode, name),
        terms=lambda cfg, s: wan_animate2.animate2_terms(cfg, s, mode),
        peak=lambda cfg, s, mat: wan_animate2.animate2_peak_bytes(cfg, s, mode, mat),
        keeps=wan_animate2.kv_cache_bytes if mode == wan_animate2.REFERENCE else None,
        beside=() if mode == wan_animate2.REFERENCE else ("reference_pass",),
        block_mask=None if mode == wan_animate2.REFERENCE else wan_animate2.block_mask_share,
    )


ANIMATE2_REFERENCE_PASS = _animate2_stage(
    "reference_pass",
    wan_animate2.REFERENCE,
    "segments",
    "reference_pass: per segment, one WanAnimate2Transformer3DModel forward with kv_cache_mode='extract' over the "
    "segment's driving-video latents joined with their condition (patch embedding, timestep 1, the reference "
    "prompt, the driving video's CLIP features, dense self-attention): every block stores its pre-rotary K and V in "
    "the cache the segment's steps attend to",
)

ANIMATE2_DIFFUSION_CORE = replace(
    _animate2_stage(
        "diffusion_core",
        wan_animate2.COND,
        "cond_segment_steps",
        "diffusion_core: per step of every segment, the conditional WanAnimate2Transformer3DModel forward "
        "(kv_cache_mode='cached') over the reference slot plus the segment's latents: the cached reference keys "
        "rotated on their grid, generation and reference tokens packed into 128-aligned buffers and attended by "
        "FlexAttention with the in-context block mask (FLOPs dense over the buffers, as FlopCounterMode counts it); "
        "cross-attention over the 512 text tokens and the image's",
    ),
    assumption="the denoising passes' FlexAttention: FLOPs dense over the packed buffers (FlopCounterMode's count), "
    "seconds for the 128x128 blocks the in-context mask keeps, at the runtime's attention rate (the data hold no "
    "FlexAttention measurement yet); the segment's K/V cache (every layer's K and V over the reference tokens) is "
    "held through every denoising pass, in its memory",
)

ANIMATE2_DIFFUSION_CORE_UNCOND = _animate2_stage(
    "diffusion_core_uncond",
    wan_animate2.UNCOND,
    "uncond_segment_steps",
    "diffusion_core_uncond: under CFG, per step of every segment, the unconditional forward (the negative prompt; "
    "block 9 skipped, as WanAnimate2Transformer3DModel.forward does for is_uncondtion)",
)


def _last_segment(sd: StageDef, calls: str) -> StageDef:
    """``sd`` on the calls of a last segment its runtime makes shorter than the others (``{name}_last``, ``calls`` of
    it: none where every segment is whole), its costs and the tracer's call at that segment's shape
    (:attr:`~hybrid.geometry.CallShape.last_segment`, :attr:`StageDef.at`)."""

    def at(s: CallShape) -> CallShape:
        return s.last_segment or s

    rows, terms, peak, keeps, mask = sd.rows, sd.terms, sd.peak, sd.keeps, sd.block_mask
    return replace(
        sd,
        name=f"{sd.name}_last",
        calls=calls,
        groups=lambda cfg, s: sd.groups(cfg, at(s)),
        rows=None if rows is None else lambda cfg, s: rows(cfg, at(s)),
        terms=None if terms is None else lambda cfg, s: terms(cfg, at(s)),
        peak=None if peak is None else lambda cfg, s, mat: peak(cfg, at(s), mat),
        keeps=None if keeps is None else lambda cfg, s: keeps(cfg, at(s)),
        block_mask=None if mask is None else lambda cfg, s: mask(cfg, at(s)),
        variables=lambda s: sd.variables(at(s)),
        components=None,
        fused_terms=None,
        at=at,
        beside=tuple(f"{b}_last" for b in sd.beside),
        modeled=f"{sd.name}_last: {sd.name} on the last segment where the runtime makes it shorter than the others "
        "(the original Wan-Animate-2 code's and LightX2V's: 29 to 81 frames, its packed self-attention still sized "
        "for a whole segment); no call where every segment is whole",
        assumption="",
        color="#8C8C8C",
    )


ANIMATE2 = Pipeline(
    name="animate2",
    diffusers_class="WanAnimate2ModularPipeline",
    stages=(
        replace(
            I2V_TEXT_ENCODER,
            calls="guidance_plus_one",
            assumption="text_encoder also runs for the reference prompt (prompt_ref, default '人物动作的参考视频'), "
            "which conditions the reference passes",
            modeled="text_encoder: UMT5-XXL encoder forward over the 512 padded tokens of the prompt, the reference "
            "prompt (prompt_ref) and, under CFG, the negative prompt",
        ),
        replace(
            IMAGE_ENCODER,
            calls="twice",
            modeled="image_encoder: CLIPVisionModel (ViT-H/14) forward at 224x224 on the reference image and on the "
            "driving video's first frame (two calls of one image; hidden_states[-2] read); once per job",
            assumption="image_encoder runs twice per job, on the reference image (its features condition the "
            "denoising passes) and on the driving video's first frame (the reference passes'); the original code "
            "both in every segment",
        ),
        ANIMATE_REFERENCE_ENCODE,
        replace(
            ANIMATE_VAE_ENCODE,
            modeled="vae_encode: per segment, AutoencoderKLWan.encode of the segment's slice of the driving video "
            "and of its conditioning video (the previous segment's last decoded frame, then zeros), each of a "
            "segment's frames at full resolution",
        ),
        ANIMATE2_REFERENCE_PASS,
        ANIMATE2_DIFFUSION_CORE,
        ANIMATE2_DIFFUSION_CORE_UNCOND,
        ANIMATE_VAE_DECODE,
        *(
            _last_segment(stage, calls)
            for stage, calls in (
                (ANIMATE_VAE_ENCODE, "last_segment"),
                (ANIMATE2_REFERENCE_PASS, "last_segment"),
                (ANIMATE2_DIFFUSION_CORE, "last_segment_cond_steps"),
                (ANIMATE2_DIFFUSION_CORE_UNCOND, "last_segment_uncond_steps"),
                (ANIMATE_VAE_DECODE, "last_segment"),
            )
        ),
    ),
    unmodeled=(
        *T2V_UNMODELED[:2],
        "driving-video resampling, letterboxing and zigzag padding, the CLIP preprocessing, the i2v masks, the "
        "scheduler's reset per segment (elementwise or host work); the in-context block mask, built once per job "
        "and size by torch.compile; VAE slicing (tiling is modelled with --vae-tiling)",
    ),
    images=1,
    fixed_text_len=wan_dit.IMAGE_CONTEXT_TEXT_LEN,
    fixed_text_len_reason=_IMAGE_TEXT,
    max_batch=1,
    max_batch_reason="the Wan-Animate-2 modular pipeline makes one video per call (one driving video, one reference)",
    wan_repo="Wan2.2",
    runtimes=("diffusers", "wan"),
    runtimes_reason="diffusers' WanAnimate2ModularPipeline and the original Wan-Animate-2 pipeline",
    default_steps=40,
    default_guidance_scale=3.0,
    segment_frames=81,
    segment_overlap=1,
    no_layouts_reason="diffusers' WanAnimate2Transformer3DModel has no context-parallel plan (_cp_plan), and its "
    "generation self-attention runs on the flex backend only; the original code splits it by Ulysses (--runtime wan)",
    layouts_runtimes=("wan",),
    no_ring_reason="Wan-Animate-2 splits its tokens by Ulysses only (the original code's use_context_parallel "
    "all-to-alls heads; diffusers' class has no context-parallel plan)",
)
"""Wan-Animate-2 (diffusers' modular ``WanAnimate2Blocks``): the video made in 81-frame segments
(``segment_frame_length``) carried over by one frame (``prev_segment_conditioning_frames``); per segment a
reference pass fills the K/V cache, then 40 steps (guidance 3.0: two passes each) attend to it; the
distilled checkpoint (``WanAnimate2DistilledBlocks``) runs 10 steps at guidance 1.0 (no CFG). The ``_last``
stages are a last segment a runtime makes shorter than the others (the original code and LightX2V: none on
diffusers, which pads the video to whole segments)."""

ANIMATE2_DISTILLED = replace(
    ANIMATE2,
    name="animate2-distilled",
    diffusers_class="WanAnimate2ModularPipeline",
    default_steps=10,
    default_guidance_scale=1.0,
    stages=tuple(
        replace(
            st,
            assumption="image_encoder runs on the reference image (its features condition the denoising "
            "passes) and on the driving video's first frame (the reference passes'): twice per job in diffusers; "
            "LightX2V encodes each segment's first driving frame, once per segment and once more; the original "
            "code both images in every segment",
        )
        if st.name == "image_encoder"
        else st
        for st in ANIMATE2.stages
    ),
    runtimes=("diffusers", "lightx2v", "wan"),
    runtimes_reason="diffusers' WanAnimate2ModularPipeline (WanAnimate2DistilledBlocks), LightX2V's "
    "wan22_animate2_distilled runner and the original Wan-Animate-2 pipeline",
    no_layouts_reason=ANIMATE2.no_layouts_reason + ", LightX2V too (--runtime lightx2v)",
    layouts_runtimes=("lightx2v", "wan"),
    no_ring_reason="Wan-Animate-2 splits its tokens by Ulysses only (LightX2V's WanAnimate2TransformerInfer: "
    "'Wan-Animate-2 sequence parallelism currently requires Ulysses'; the original code's use_context_parallel "
    "all-to-alls heads; diffusers' class has no context-parallel plan)",
)
"""The distilled Wan-Animate-2 checkpoint's blocks: the same stages, guidance 1.0 (no CFG) by default; on LightX2V
a shorter last segment (the ``_last`` stages: none on diffusers, which pads the video to whole segments)."""

_S2V_REPO = "Wan-Video/Wan2.2 wan/speech2video.py"

S2V_AUDIO_ENCODER = StageDef(
    name="audio_encoder",
    component="audio_encoder",
    call="forward",
    groups=lambda cfg, s: [g for g in wav2vec2.wav2vec2_rows(cfg, 1, s.audio_samples) if g.flops_per_call],
    rows=lambda cfg, s: wav2vec2.wav2vec2_rows(cfg, 1, s.audio_samples),
    terms=lambda cfg, s: wav2vec2.wav2vec2_terms(cfg, 1, s.audio_samples),
    peak=lambda cfg, s, mat: wav2vec2.wav2vec2_peak_bytes(cfg, 1, s.audio_samples, mat),
    component_of=wav2vec2.component,
    calls="once",
    basis=("S", "S^2"),
    variables=lambda s: {"S": s.audio_samples},
    trace_key="wav2vec2.forward",
    modeled="audio_encoder: Wav2Vec2ForCTC (wav2vec2-large-xlsr-53-english) over the whole audio at 16 kHz with every "
    "hidden state kept, once per video, float32 on the host CPU (AudioEncoder(device='cpu'), speech2video.py:131-133)",
    color="#64B5CD",
    assumption="audio_encoder runs once over the whole audio on the host CPU (the original AudioEncoder's device); "
    "the interpolation of its 25 hidden states to 30 a second and their bucketing per video frame are host work",
)


def _s2v_encodes(cfg: Any, s: CallShape, what: Callable[..., Any], counted: bool = True) -> list[Any]:
    """``what`` (a VAE encode function) of the once-per-video encodes of Wan2.2-S2V
    (:func:`hybrid.models.wan_s2v.vae_encodes`), ``calls=`` each (``counted``; a peak is one encode's); those through
    the VAE wrapper's ``encode`` split over the ranks by a parallel VAE (``grid``), each cut from the whole video."""
    t = cfg.scale_factor_temporal
    out = []
    for n, calls, wrapper in wan_s2v.vae_encodes(s.frames, s.condition_encodes, s.pose_video):
        kw = {"calls": calls} if counted else {}
        out.append(what(cfg, 1, (n - 1) // t + 1, s.height, s.width, **kw, **(_wrapper_split(s) if wrapper else {})))
    return out


S2V_VAE_ENCODE = StageDef(
    name="vae_encode",
    component="vae",
    call="encode",
    groups=lambda cfg, s: [g for part in _s2v_encodes(cfg, s, wan_vae.vae_encode_groups) for g in part],
    rows=lambda cfg, s: [g for part in _s2v_encodes(cfg, s, wan_vae.vae_encode_rows) for g in part],
    terms=lambda cfg, s: merge_terms(*_s2v_encodes(cfg, s, wan_vae.vae_encode_terms)),
    # the encodes run one after the other, each freeing all it made but its latents: the longest leads
    peak=lambda cfg, s, mat: max(
        _s2v_encodes(
            cfg,
            s,
            lambda c, b, t, h, w, **split: wan_vae.vae_encode_peak_bytes(c, b, t, h, w, mat, **split),
            counted=False,
        )
    ),
    component_of=wan_vae.encode_component,
    calls="once",
    basis=("P", "P^2"),  # a clip's frames are fixed: its T terms fold into these
    variables=lambda s: {"P": s.latent_pixels},
    trace_key="wan_vae.encode_s2v",
    parallel_vae=True,
    modeled="vae_encode: once per video, AutoencoderKLWan.encode (the original Wan2_1_VAE, float32) of the reference "
    "image, of the 73-frame zero motion buffer and of the frames + 1 condition frames (with --pose-video: each "
    "clip's, one encode per clip; without a pose video: -1s, "
    "encoded, then multiplied by 0), each at the output size",
    color="#C44E52",
)


S2V_MOTION_ENCODE = replace(
    S2V_VAE_ENCODE,
    name="motion_encode",
    # one clip's 73 motion frames at the output size
    **_encode_walks(
        lambda cfg, s: ((wan_s2v.motion_latents(cfg.scale_factor_temporal), s.height, s.width), _wrapper_split(s))
    ),
    calls="segments",
    beside=("diffusion_core", "diffusion_core_motion"),  # after each clip's denoising: the last clip's table
    trace_key="wan_vae.encode_s2v_motion",
    modeled="motion_encode: per clip, AutoencoderKLWan.encode of the last 73 frames made so far into the next clip's "
    "19 motion latents (speech2video.py:658-667; after the last clip too)",
    color="#DA8BC3",
)


def _s2v_decoded(motion: bool) -> _Latents:
    """The latents a clip decodes at the output size (:func:`hybrid.models.wan_s2v.decoded_latents`): the first
    clip's reference latent and its own, or (``motion``) a later clip's 19 motion latents and its own."""
    return lambda cfg, s: (
        1,
        wan_s2v.decoded_latents(s.latent_frames, cfg.scale_factor_temporal, motion),
        s.latent_height,
        s.latent_width,
    )


S2V_VAE_DECODE = replace(
    VAE_DECODE,
    **_decode_walks(_s2v_decoded(False)),
    basis=("P", "P^2"),
    variables=lambda s: {"P": s.latent_pixels},
    beside=("diffusion_core",),
    trace_key="wan_vae.decode_s2v",
    assumption="vae_decode runs once per clip: the first clip's reference latent and its own (speech2video.py:648-653: "
    "drop_first_motion), each later clip's 19 motion latents and its own, one latent frame per decoder call",
    modeled="vae_decode: the first clip's AutoencoderKLWan.decode of its reference latent and its frames / 4 latents "
    "(frames + 1 frames decoded, the last frames - 3 kept)",
)

S2V_VAE_DECODE_MOTION = replace(
    S2V_VAE_DECODE,
    **_decode_walks(_s2v_decoded(True)),
    name="vae_decode_motion",
    calls="later_segments",
    beside=("diffusion_core_motion",),
    trace_key="wan_vae.decode_s2v_motion",
    modeled="vae_decode_motion: per clip after the first, AutoencoderKLWan.decode of its 19 motion latents and its "
    "frames / 4 (73 + frames frames decoded, the last frames kept)",
    color="#8C8C8C",
)


def _s2v_transformer(name: str, motion: bool, calls: str, modeled: str) -> StageDef:
    """A Wan2.2-S2V transformer stage: one ``WanModel_S2V`` forward of a clip (:mod:`hybrid.models.wan_s2v`)."""
    return StageDef(
        name=name,
        component="transformer",
        call="forward",
        groups=lambda cfg, s: wan_s2v.s2v_groups(cfg, s, motion, name),
        rows=lambda cfg, s: wan_s2v.s2v_rows(cfg, s, motion, name),
        terms=lambda cfg, s: wan_s2v.s2v_terms(cfg, s, motion),
        peak=lambda cfg, s, mat: wan_s2v.s2v_peak_bytes(cfg, s, motion, mat),
        keeps=lambda cfg, s: wan_s2v.s2v_held_bytes(cfg, s, motion),
        component_of=wan_s2v.component,
        calls=calls,
        basis=("P", "P^2"),  # a clip's frames and the 512 text tokens are fixed: their terms fold into these
        variables=lambda s: {"P": s.latent_pixels},
        trace_key="",
        modeled=modeled,
        color="#DD8452" if not motion else "#937860",
        moved_each_segment=True,
        assumption="the S2V transformer (the original repository's WanModel_S2V, which no diffusers or transformers "
        "class builds) is closed form from its code, op by op, equal in rows and peaks to that code run on a CPU and "
        "traced at tiny configs (tests/test_wan_s2v.py); its blocks run over the noisy tokens plus one reference "
        "frame's, and from the second clip on 1.5 frames' of motion tokens",
    )


S2V_DIFFUSION_CORE = _s2v_transformer(
    "diffusion_core",
    False,
    "steps",
    "diffusion_core: the first clip's WanModel_S2V forwards (the causal audio encoder, the noisy, pose and reference "
    "latents patchified, the frame pack made and dropped, two timesteps embedded, 40 blocks over the noisy and "
    "reference tokens with an audio injection after 12 of them, the head on the noisy tokens); steps x 2 under CFG "
    "(the unconditional pass's audio is zeros)",
)

S2V_DIFFUSION_CORE_MOTION = _s2v_transformer(
    "diffusion_core_motion",
    True,
    "later_segment_steps",
    "diffusion_core_motion: the WanModel_S2V forwards of every clip after the first, the frame pack's 1.5 x tokens "
    "per latent frame of motion tokens kept; steps x 2 under CFG per clip",
)

S2V = Pipeline(
    name="s2v",
    diffusers_class="WanS2V",
    stages=(
        replace(
            I2V_TEXT_ENCODER,
            calls="twice",
            modeled="text_encoder: UMT5-XXL encoder forward over the 512 padded tokens of the prompt and the negative "
            "prompt, once per video, with CFG or without (the original's speech2video.py:522-532; LightX2V's "
            "wan_s2v_runner.py encodes the negative prompt when CFG is off too)",
        ),
        S2V_AUDIO_ENCODER,
        S2V_VAE_ENCODE,
        S2V_DIFFUSION_CORE,
        S2V_VAE_DECODE,
        S2V_MOTION_ENCODE,
        S2V_DIFFUSION_CORE_MOTION,
        S2V_VAE_DECODE_MOTION,
    ),
    unmodeled=(
        *T2V_UNMODELED[:2],
        "the audio's loading, resampling, feature interpolation and bucketing, the image's resize and crop, the pose "
        "video's decoding (host work); a pose video's per-clip encodes (without one, as here, one condition encode); "
        "CosyVoice text-to-speech",
    ),
    fixed_text_len=512,
    fixed_text_len_reason="WanModel_S2V pads the context to its text_len, 512 (model_s2v.py:801-806), and the T5 "
    "tokenizer pads every prompt to it",
    max_batch=1,
    max_batch_reason="WanS2V.generate makes one video from one image and one audio",
    wan_repo="Wan2.2",
    runtimes=("wan", "lightx2v"),
    runtimes_reason="the original Wan2.2 repository's WanS2V (generate.py --task s2v-14B) and LightX2V's wan2.2_s2v "
    "runner; diffusers has no speech-to-video pipeline",
    no_ring_reason="WanModel_S2V splits its tokens by Ulysses only (model_s2v.py:819-851), as LightX2V's S2V "
    "(configs/dist_infer/wan22_s2v_dist_ulysses.json)",
    default_steps=40,
    default_guidance_scale=4.5,
    audio=True,
    size_step=64,
    no_laws_reason="its audio encoder's convolutions floor-divide the audio's samples, which no polynomial law "
    "fits, and its transformer is no diffusers module to trace (its closed form is checked against the original code "
    "in tests/test_wan_s2v.py instead)",
    transformer_dtype="bfloat16",
)
"""Wan2.2-S2V (the original repository's ``WanS2V``): the video made in clips of ``frames`` frames (80), as many as
the audio needs, each after the first carrying 73 frames of motion; 40 steps, guidance 4.5."""

PIPELINES: dict[str, Pipeline] = {
    p.name: p
    for p in (T2V, I2V, FLF2V, VACE, T2V_A14B, I2V_A14B, TI2V, V2V, ANIMATE, ANIMATE2, ANIMATE2_DISTILLED, S2V)
}
"""Every pipeline, by the name a :class:`~hybrid.presets.ModelSpec` refers to it with."""


def _merged_order(orders: list[tuple[str, ...]]) -> tuple[str, ...]:
    """Stage names of all pipelines in one execution order: each name after its predecessors."""
    out: list[str] = []
    for order in orders:
        at = 0
        for name in order:
            if name in out:
                at = out.index(name) + 1
            else:
                out.insert(at, name)
                at += 1
    return tuple(out)


STAGE_NAMES: tuple[str, ...] = _merged_order([p.stage_names for p in PIPELINES.values()])
"""Every stage name of every pipeline, in execution order (the columns of a mixed sweep)."""

ALL_STAGES: tuple[StageDef, ...] = tuple(dict.fromkeys(s for p in PIPELINES.values() for s in p.stages))
"""Every stage definition of every pipeline (pipelines may define a stage of the same name differently)."""


def get_pipeline(name: str) -> Pipeline:
    """The pipeline called ``name``."""
    try:
        return PIPELINES[name]
    except KeyError:
        raise InputError(f"pipeline: unknown pipeline {name!r}; valid: {', '.join(PIPELINES)}") from None
