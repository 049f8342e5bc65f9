"""Optimisations users apply to Wan jobs, as what-ifs (``--optimise fp8,sage2,teacache:0.2,distill:4``).

One entry per method (:data:`OPTIMISATIONS`), named as users call it, with its family, what its parameter
is, the GPUs it runs on, its sources and the quality caveat its source states. :func:`parse` reads the
command line's list; :func:`plan_of` checks it against the job and the GPU (one line and exit 2 for an
unknown name, a missing or bad parameter, two of one family, a kernel off its architecture) and turns it
into what sizing applies, in a stated order (:data:`FAMILIES`):

1. ``distillation``: the workload itself changes (``distill:N``: ``N`` steps, guidance distilled away, so
   no CFG; a two-expert model's scheduler splits the ``N`` steps between the experts as it does any count);
2. ``caching``: a share of the transformer's calls skip the block stack (:class:`hybrid.optimise.SkipCalls`);
   a threshold maps to that share by the published table of the method and model
   (``hybrid/data/optimisations.json``: the figures that set a parameter, never its test);
3. ``attention``: the attention kernel, the same choice as ``--attention`` (one set of names);
4. ``sparse``: ``svg``, ``svg2``, ``radial``, ``sta``, ``vsa``: a kept share of the transformer's self-attention after
   the method's dense warm-up steps and blocks (``hybrid/data/optimisations.json``), with the method's own
   ops (:class:`hybrid.optimise.SparseAttention`);
5. ``quantisation``: ``fp8``, ``int8``, ``nvfp4``: the transformer's Linear layers quantised
   (:class:`hybrid.optimise.QuantisedLinear`);
6. ``compile``: no launch cost per kernel in the compiled transformer, its memory-bound runs fused
   (:class:`hybrid.optimise.Compiled`, :class:`hybrid.sinks.FusedTermSink`).

7. ``vae``: ``lightvae``, the job's spec with LightX2V's pruned Wan2.1 VAE (the same class: every stage that
   calls the VAE walks it).

   ``tae``: the decode stage runs TAEHV's decoder (:class:`hybrid.optimise.TinyDecoder`).

A method whose mechanism is not modelled yet (``modelled=False``; none today) is listed with its sources and
refused in one line when asked for, never priced as zero.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from hybrid.errors import InputError, echo

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.hardware import GPU
    from hybrid.optimise import Transform
    from hybrid.workload import Workload

FAMILIES: tuple[str, ...] = ("distillation", "caching", "attention", "sparse", "quantisation", "compile", "vae")
"""The order optimisations apply in; at most one of each family in a job."""


@dataclass(frozen=True)
class OptimisationDef:
    """One method users apply, as they name it."""

    name: str
    family: str
    summary: str
    param: str = ""
    """What follows ``name:``: ``threshold`` (the method's own knob), ``share`` (of calls skipped, in
    [0, 1)), ``steps`` (a whole number >= 1), ``kept`` (the share of the self-attention's score matrix a
    sparse step computes, in (0, 1], optionally ``/WARMUP``: the share of steps run dense first), or ``""``
    (none taken)."""
    modelled: bool = True
    """Whether its mechanism is in the walks' rows and the time model (else refused when asked for)."""
    architectures: tuple[str, ...] = ()
    """GPU architectures it runs on (``()``: every one the runtime runs on)."""
    sources: tuple[str, ...] = ()
    caveat: str = ""
    """The quality cost its source states (or that none is stated)."""
    ops: str = ""
    """A sparse method's own work per call, as the time model counts it (:func:`hybrid.optimise.sparse_overhead`)."""


def _def(name: str, family: str, summary: str, **kw: Any) -> OptimisationDef:
    if family == "attention":  # where a kernel runs is the runtime table's fact (one for --attention and --optimise)
        from hybrid.runtime import KERNEL_ARCHITECTURES

        kw.setdefault("architectures", KERNEL_ARCHITECTURES.get(name, ()))
        kw.setdefault("sources", ("kernel-rates",))
    return OptimisationDef(name, family, summary, **kw)


_SPARSE_CAVEAT = "lossy: keys outside the kept pattern are dropped; the source reports VBench/PSNR against dense"
_CACHE_CAVEAT = "lossy: skipped calls reuse a cached residual; the source reports VBench/PSNR against the baseline"
OPTIMISATIONS: Mapping[str, OptimisationDef] = {
    d.name: d
    for d in (
        _def("teacache", "caching", "TeaCache: skips the block stack where the timestep-modulated input has changed "
             "less than the threshold (accumulated, rescaled by a per-model polynomial)", param="threshold",
             sources=("teacache",), caveat=_CACHE_CAVEAT),
        _def("magcache", "caching", "MagCache: skips the block stack while the accumulated residual-magnitude ratio "
             "error stays under the threshold", param="threshold", sources=("magcache",), caveat=_CACHE_CAVEAT),
        _def("easycache", "caching", "EasyCache: skips the block stack while the estimated transformation rate "
             "change stays under the threshold", param="threshold", sources=("easycache",), caveat=_CACHE_CAVEAT),
        _def("fbcache", "caching", "First-block cache: runs the first block, skips the rest where its residual "
             "changed less than the threshold", param="threshold", sources=("fbcache",), caveat=_CACHE_CAVEAT),
        _def("skip", "caching", "a stated share of the transformer's calls skip the block stack (any step cache)",
             param="share", caveat=_CACHE_CAVEAT),
        _def("fa2", "attention", "FlashAttention-2 (flash_attn)"),
        _def("fa3", "attention", "FlashAttention-3 (flash_attn_interface)"),
        _def("cudnn", "attention", "PyTorch SDPA's cuDNN attention backend"),
        _def("sage2", "attention", "SageAttention 2 (INT8 QK, FP8 PV)", caveat="near-lossless per its paper"),
        _def("sage3", "attention", "SageAttention 3 (FP4 microscaling)",
             caveat="its paper reports small quality drops"),
        _def("fp8-attention", "attention", "FP8 attention (FlashAttention-3's FP8 path)"),
        _def("svg", "sparse", "Sparse VideoGen: each head's attention as a spatial or temporal band, chosen by "
             "profiling sampled queries, its tokens permuted so the band is contiguous", param="kept",
             sources=("svg",), caveat=_SPARSE_CAVEAT, ops="its profiling of 64 sampled query rows per head and its "
             "layout transformation (buffers zero-filled, q, k and v copied in, the output copied out) timed"),
        _def("svg2", "sparse", "Sparse VideoGen 2: q and k clustered by k-means per head, permuted into cluster "
             "order, and the query clusters attend to the key clusters that hold the top-p of their mass",
             param="kept", sources=("svg2",), caveat="lossy: its paper reports up to 1.89x on Wan 2.1 at a PSNR of "
             "up to 26 against dense (arXiv:2505.18875)", ops="its k-means of q (300 clusters) and k (1000) per head "
             "(50 iterations the first time a block runs sparse, 2 after), its cluster-level top-p map and its "
             "permutation of q, k and v in and the output out timed"),
        _def("radial", "sparse", "Radial Attention: a static mask whose density halves with each band of "
             "temporal distance", param="kept", sources=("radial",), caveat=_SPARSE_CAVEAT,
             ops="its static mask: no work per call beyond the kept blocks"),
        _def("sta", "sparse", "sliding-tile attention: each query tile attends to a window of key tiles",
             param="kept", sources=("sta",), caveat=_SPARSE_CAVEAT,
             ops="its tiling (q, k and v tiled and transposed in, the output untiled out) timed"),
        _def("vsa", "sparse", "video sparse attention: a coarse pass over cubes of tokens picks the key cubes "
             "each query cube attends to (trained into the model)", param="kept", sources=("vsa",),
             caveat="a model trained with it (FastWan's sparse distillation): its source compares quality",
             ops="its coarse pass (q, k and v pooled over 64-token cubes, attention between the cubes) timed"),
        _def("fp8", "quantisation", "FP8 linear layers (W8A8, per-token activation scales): the transformer's "
             "matrix products on the FP8 tensor path, their inputs quantised first, the blocks' weights in one byte",
             sources=("lightx2v-fp8",), caveat="its source reports near-baseline quality for its FP8 checkpoints"),
        _def("int8", "quantisation", "INT8 linear layers (W8A8, per-token activation scales): the transformer's "
             "matrix products on the INT8 tensor path, their inputs quantised first, the blocks' weights in one "
             "byte", sources=("lightx2v-int8",),
             caveat="its source reports near-baseline quality for its INT8 checkpoints"),
        _def("nvfp4", "quantisation", "NVFP4 linear layers (W4A4, an FP8 scale per 16 elements): the "
             "transformer's matrix products on the FP4 tensor path (Blackwell), their inputs quantised first",
             sources=("nvfp4",), caveat="4-bit: its sources train or calibrate for it (quantisation-aware "
             "distillation) and compare quality"),
        _def("distill", "distillation", "a step- and CFG-distilled model or LoRA run for N steps without CFG "
             "(LightX2V's 4-step models, CausVid, rCM)", param="steps", sources=("lightx2v-distill",),
             caveat="a distilled model: its source compares quality with the baseline"),
        _def("compile", "compile", "torch.compile with CUDA graphs on the transformer: no launch cost per kernel, "
             "and each run of memory-bound ops between two matrix products, attentions or collectives one fused "
             "kernel (an estimate from the ops' order and sizes; fusion into GEMM epilogues and across blocks "
             "not counted)", sources=("torch-compile",)),
        _def("lightvae", "vae", "LightX2V's LightVAE: the Wan2.1 VAE with every channel width cut to a quarter "
             "(encoder and decoder: AutoencoderKLWan(base_dim=24)), the same causal per-frame decode",
             sources=("lightvae",), caveat="a pruned, distilled VAE: its source reports quality close to the "
             "official VAE's"),
        _def("tae", "vae", "TAEHV, the tiny autoencoder's decoder (taew2_1, taew2_2; LightX2V's LightTAE has its "
             "layers): 2D convs a latent frame at a time with a memory of the previous frame, in bfloat16",
             sources=("tae",), caveat="a distilled preview-grade decoder: its author describes it as cheaper, lower "
             "quality than the full VAE"),
    )
}  # fmt: skip

SOURCES: Mapping[str, str] = {
    "teacache": "ali-vilab/TeaCache, TeaCache4Wan2.1 (README and teacache_generate.py)",
    "magcache": "Zehong-Ma/MagCache, MagCache4Wan2.1 and MagCache4Wan2.2 (README)",
    "easycache": "H-EmbodVis/EasyCache (README)",
    "fbcache": "chengzeyi/ParaAttention first-block cache; diffusers FirstBlockCacheConfig",
    "lightx2v-distill": "ModelTC/LightX2V: the step- and CFG-distilled Wan models run with enable_cfg false and "
    "4 steps (its distilled configs)",
    "lightx2v-fp8": "ModelTC/LightX2V: quantised Wan checkpoints (fp8 e4m3, per-channel weights, per-token dynamic "
    "activations) run by its mm_type fp8 kernels",
    "svg": "svg-project/Sparse-VideoGen: its Wan2.1 scripts' first_times_fp and first_layers_fp (dense steps and "
    "blocks), its executed mask (the band its sparsity sets plus the first frame's keys, in 128 x 128 blocks: "
    "sparsity 0.25 keeps 0.295 at 720p), its profiling and its layout transformation",
    "svg2": "svg-project/Sparse-VideoGen (Sparse VideoGen 2, 'SAP'): its Wan2.1 scripts' first_times_fp and "
    "first_layers_fp, qc_kmeans=300, kc_kmeans=1000, kmeans_iter_init=50, kmeans_iter_step=2 "
    "(scripts/wan/wan_{t2v,i2v}_720p_sap.sh), its k-means, map and permutation (svg/models/wan/attention.py, "
    "svg/kmeans_utils.py; 5ce7b01)",
    "radial": "mit-han-lab/radial-attention: its Wan scripts' dense_timesteps and dense_layers; its mask "
    "(gen_log_mask_shrinked) keeps 0.287 at 1280x768x69 with decay_factor 0.2",
    "sta": "hao-ai-lab/FastVideo sliding-tile attention (archived branch): skip_time_steps=12, windows of 6x8x8-token "
    "tiles keeping 0.10-0.19 at 1280x768x69, its tiling",
    "vsa": "hao-ai-lab/FastVideo video sparse attention: top-k = ceil((1 - VSA_sparsity) x cubes) of 64-token cubes, "
    "no dense warm-up (FastWan blog), its coarse pass",
    "lightx2v-int8": "ModelTC/LightX2V: int8 quantised Wan checkpoints (per-channel weights, per-token dynamic "
    "activations) run by its int8 mm kernels",
    "nvfp4": "NVIDIA NVFP4 (E2M1 values, an E4M3 scale per 16 elements, an FP32 scale per tensor); LightX2V's "
    "Wan-NVFP4 and FastWan-QAD checkpoints",
    "lightvae": "ModelTC/LightX2V (f8aee98) lightx2v/models/video_encoders/hf/wan/vae.py: use_lightvae sets "
    "pruning_rate = 0.75 on dim=96 for the encoder's and decoder's widths (lines 293-294, 397-398, 911-914): "
    "diffusers' AutoencoderKLWan(base_dim=24), 8,035,003 parameters (the official 126,892,531); its README: "
    "'LightVAE: Currently only supports wan2.1, wan2.2 moe'",
    "tae": "madebyollin/taehv taehv.py (1f14a56), decode_video(parallel=False) as LightX2V's WanVAE_tiny.decode "
    "calls it (lightx2v/models/video_encoders/hf/wan/vae_tiny.py: bfloat16, then .mul_(2).sub_(1)); 'use_tae' "
    "replaces the decoder only",
    "kernel-rates": "hybrid/data/kernel_rates.json: the kernel's measured throughput curve by key length on the GPU "
    "(or one of its architecture), each curve with its source",
    "torch-compile": "PyTorch torch.compile(mode='max-autotune') captures CUDA graphs: one graph launch replays "
    "every kernel; TorchInductor fuses chains of pointwise and reduction ops into one generated kernel, each "
    "intermediate kept in registers instead of a round trip through memory",
}
"""Where each method's mechanism is read (the speed-ups that test it: ``calibration/optimisation_speedups.json``)."""


@dataclass(frozen=True)
class Optimisation:
    """One optimisation as asked for: its name and its parameter (``None`` where it takes none)."""

    name: str
    value: float | int | None = None
    warmup: float | None = None
    """A sparse method's share of steps run dense first, where the user gives it (``svg:0.25/0.3``)."""

    @property
    def definition(self) -> OptimisationDef:
        return OPTIMISATIONS[self.name]

    def text(self) -> str:
        """As a user types it."""
        if self.value is None:
            return self.name
        return f"{self.name}:{self.value:g}" + ("" if self.warmup is None else f"/{self.warmup:g}")

    def to_dict(self) -> dict[str, Any]:
        d = self.definition
        return {"name": self.name, "value": self.value, "family": d.family, "summary": d.summary,
                "sources": [SOURCES.get(s, s) for s in d.sources], "caveat": d.caveat,
                **({"warmup": self.warmup} if self.warmup is not None else {})}  # fmt: skip


def _valid() -> str:
    return ", ".join(f"{n}:{d.param.upper()}" if d.param else n for n, d in OPTIMISATIONS.items())


def parse(text: str) -> tuple[Optimisation, ...]:
    """``--optimise``'s comma-separated list, checked name by name (one line naming what is wrong)."""
    out: list[Optimisation] = []
    families: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        name, colon, raw = item.partition(":")
        d = OPTIMISATIONS.get(name)
        if d is None:
            raise InputError(f"optimise: unknown {echo(item, 40)}; valid: {_valid()}")
        if not d.modelled:
            raise InputError(
                f"optimise: {name} ({d.summary}) is listed but not modelled yet; see wanmeter optimisations"
            )
        if d.param and not colon:
            raise InputError(f"optimise: {name} needs its {d.param}: {name}:{d.param.upper()}")
        if not d.param and colon:
            raise InputError(f"optimise: {name} takes no parameter, got {echo(item, 40)}")
        value: float | int | None = None
        warmup: float | None = None
        if d.param == "kept":
            raw, slash, raw_warmup = raw.partition("/")
            if slash:
                warmup = _value(name, "warmup", raw_warmup)
        if d.param:
            value = _value(name, d.param, raw)
        if d.family in families:
            raise InputError(f"optimise: {families[d.family]} and {name} are both {d.family}; give one")
        families[d.family] = name
        out.append(Optimisation(name, value, warmup))
    return tuple(sorted(out, key=lambda o: FAMILIES.index(o.definition.family)))


def _value(name: str, param: str, raw: str) -> float | int:
    try:
        number = float(raw)
    except ValueError:
        number = math.nan
    if param == "steps":
        if not (number.is_integer() and 1 <= number <= 1000):
            raise InputError(f"optimise: {name} needs whole steps, 1 to 1000; got {echo(raw, 20)}")
        return int(number)
    if param == "share" and not 0 <= number < 1:
        raise InputError(f"optimise: {name} needs a share of calls skipped, 0 <= share < 1; got {echo(raw, 20)}")
    if param == "threshold" and not (math.isfinite(number) and number > 0):
        raise InputError(f"optimise: {name} needs a positive threshold; got {echo(raw, 20)}")
    if param == "kept" and not 0 < number <= 1:
        raise InputError(
            f"optimise: {name} needs the share of attention kept, 0 < kept <= 1 (and optionally /WARMUP, the "
            f"share of steps run dense); got {echo(raw, 20)}"
        )
    if param == "warmup" and not 0 <= number <= 1:
        raise InputError(
            f"optimise: {name} needs a warm-up share of dense steps, 0 <= warmup <= 1; got {echo(raw, 20)}"
        )
    return number


@lru_cache(maxsize=1)
def data() -> dict[str, Any]:
    """``hybrid/data/optimisations.json``: the published figures that set parameters (a cache threshold's
    share of skipped calls per model), with their sources."""
    text = resources.files("hybrid").joinpath("data/optimisations.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def skip_share(name: str, threshold: float, model: str) -> tuple[float, str]:
    """The share of transformer calls ``name`` at ``threshold`` skips on ``model``, and where it is
    published; one line listing what is published where this threshold is not, or where the method's
    other settings (MagCache's K) give several shares at it."""
    rows = [p for p in data()["skip_shares"] if p["optimisation"] == name and p["model"] == model]
    found = [p for p in rows if math.isclose(p["threshold"], threshold, rel_tol=1e-9)]
    if len(found) == 1:
        p = found[0]
        source = data()["sources"][p["source"]]
        return float(p["skipped_share"]), f"{p['how'].split(':')[0]} ({source['title']}, {source['url']})"
    if found:
        variants = ", ".join(f"K {p.get('magcache_K', '?')}: skip:{p['skipped_share']:g}" for p in found)
        raise InputError(
            f"optimise: {name}:{threshold:g} on {model} is published with several settings ({variants}); "
            "give the share as skip:SHARE"
        )
    known = sorted({f"{p['threshold']:g}" for p in rows})
    hint = f"published for {model}: {', '.join(known)}" if known else f"none published for {model}"
    raise InputError(
        f"optimise: {name}:{threshold:g} has no published share of skipped calls ({hint}); give skip:SHARE instead"
    )


def warmup_of(name: str, pipeline: str) -> dict[str, Any]:
    """The dense warm-up ``name``'s own scripts run for a ``pipeline`` (``hybrid/data/optimisations.json``
    ``sparse_warmups``: dense steps as a share of the steps or a count, dense layers likewise, the
    first ones in each case), with its source."""
    rows = [w for w in data()["sparse_warmups"] if w["optimisation"] == name]
    found = [w for w in rows if pipeline in w["pipelines"]] or [w for w in rows if "*" in w["pipelines"]]
    if not found:  # the data file states one for every sparse method that is modelled (a test checks it)
        raise AssertionError(f"no dense warm-up of {name} for {pipeline} in hybrid/data/optimisations.json")
    return dict(found[0])


def _sparse(o: Optimisation, workload: Workload, before: list[Transform]) -> tuple[Transform, str]:
    """The :class:`hybrid.optimise.SparseAttention` of ``o`` for ``workload`` (``before``: the transforms
    applied ahead of it; a step cache's skipped calls are taken to be sparse ones, as the caches keep their
    first steps), and its note."""
    from hybrid.optimise import SVG2_ITER_INIT, SVG2_ITER_STEP, SparseAttention, apply_calls
    from hybrid.schedule import stage_calls, stage_steps

    spec = workload.spec
    kept = Fraction(str(o.value))
    warmup = warmup_of(o.name, spec.pipeline)
    if o.warmup is not None:
        dense_steps, how = math.floor(o.warmup * workload.steps), f"{o.warmup:g} of the steps, as given"
    elif "dense_steps_share" in warmup:
        dense_steps = math.floor(warmup["dense_steps_share"] * workload.steps)
        how = f"floor({warmup['dense_steps_share']:g} x steps), as {warmup['as']}"
    else:
        dense_steps, how = min(int(warmup["dense_steps"]), workload.steps), f"as {warmup['as']}"
    shares: list[tuple[str, Fraction]] = []
    sparse_runs: list[tuple[str, Fraction]] = []
    iterations: list[tuple[str, Fraction]] = []
    layers_note = ""
    for sd in spec.pipeline_def.stages:
        span = stage_steps(sd, workload)
        if span is None or not sd.component.startswith("transformer"):
            continue
        asked = stage_calls(sd, workload)
        calls = apply_calls(before, sd, asked)
        if not calls:
            continue
        per_step = asked // max(1, span[1])
        dense_calls = min(calls, per_step * min(max(dense_steps - span[0], 0), span[1]))
        layers = int(sd.config(spec).num_layers)
        share_of_layers = warmup.get("dense_layers_share")
        dense_layers = math.floor(share_of_layers * layers) if share_of_layers is not None else warmup["dense_layers"]
        dense_layers = min(int(dense_layers), layers)
        layers_note = f"{dense_layers} of {layers} blocks dense"
        per_layer = (dense_layers + (layers - dense_layers) * kept) / layers
        sparse_calls = calls - dense_calls
        shares.append((sd.name, (dense_calls + sparse_calls * per_layer) / calls))
        sparse_runs.append((sd.name, Fraction(sparse_calls * (layers - dense_layers), calls * layers)))
        if o.name == "svg2" and sparse_calls:  # each block's processor initialises its centroids once a job
            iterations.append((sd.name, Fraction(SVG2_ITER_INIT + (sparse_calls - 1) * SVG2_ITER_STEP, sparse_calls)))
    note = (
        f"{o.text()}: {float(kept):.3g} of the self-attention's scores computed after {dense_steps} dense steps "
        f"({how}); {layers_note}; the kept blocks at the dense kernel's rate for the shape; {o.definition.ops}"
    )
    sparse = SparseAttention(o.text(), SOURCES[o.name], o.name, tuple(shares), tuple(sparse_runs), tuple(iterations))
    return sparse, note


def _tiny_decoder(o: Optimisation, workload: Workload) -> Transform:
    """The :class:`hybrid.optimise.TinyDecoder` of ``workload``: ``taew2_1`` for the Wan2.1 VAE's 16 latent
    channels, ``taew2_2`` for the Wan2.2 VAE's 48."""
    from hybrid.models import taehv
    from hybrid.optimise import TinyDecoder
    from hybrid.schedule import stage_calls

    spec, call = workload.spec, workload.shape()
    cfg = {16: taehv.TAEW2_1, 48: taehv.TAEW2_2}.get(spec.vae.z_dim)
    if cfg is None:
        raise InputError(f"optimise: tae decodes 16 (taew2_1) or 48 (taew2_2) latent channels; {spec.name} has "
                         f"{spec.vae.z_dim}")  # fmt: skip
    args = (cfg, call.batch, call.latent_frames, call.latent_height, call.latent_width)
    encodes = any(
        sd.component == "vae" and sd.call == "encode" and stage_calls(sd, workload) > 0
        for sd in spec.pipeline_def.stages
    )
    return TinyDecoder(
        o.text(), SOURCES["tae"], cfg, taehv.decode_terms(*args), taehv.decode_peak_bytes(*args), encodes
    )


LIGHTVAE_BASE_DIM = 24
"""LightVAE's base width: LightX2V's ``int(96 x (1 - 0.75))`` (:data:`SOURCES` ``lightvae``)."""

QUANTISED: Mapping[str, tuple[str, Fraction, str]] = {
    "fp8": ("fp8", Fraction(1), "lightx2v-fp8"),
    "int8": ("int8", Fraction(1), "lightx2v-int8"),
    "nvfp4": ("fp4", Fraction(1, 2) + Fraction(1, 16), "nvfp4"),  # 4 bits, and an FP8 scale per 16 elements
}
"""Each quantised-linear method: its tensor path, bytes per stored element (block scales included) and
source."""


@dataclass(frozen=True)
class Plan:
    """What sizing applies for a list of optimisations: the workload they run (distilled steps, the
    attention kernel) and the transforms of its walks, each optimisation with what it stands for."""

    optimisations: tuple[Optimisation, ...]
    asked: Workload
    """The job as asked for (the baseline)."""
    workload: Workload
    """The job the optimisations run (distilled steps, the attention kernel)."""
    transforms: tuple[Transform, ...]
    notes: tuple[str, ...]


def plan_of(optimisations: tuple[Optimisation, ...], workload: Workload, gpu: GPU) -> Plan:
    """The :class:`Plan` of ``optimisations`` for ``workload`` on ``gpu``, checked (one line naming
    what does not run: a kernel off its architecture, a threshold with no published share), its
    workload's runtime too."""
    from hybrid.optimise import Compiled, QuantisedLinear, SkipCalls
    from hybrid.runtime import supports

    transforms: list[Transform] = []
    notes: list[str] = []
    asked = workload
    for o in optimisations:
        d = o.definition
        if not supports(d.architectures, gpu.architecture):
            raise InputError(
                f"optimise: {o.name} runs on {', '.join(d.architectures)} GPUs only, not {gpu.name} "
                f"({gpu.architecture})"
            )
        if d.family == "distillation":
            steps = int(o.value or 0)
            if workload.runtime.cfg_always:  # the original generate.py runs both passes whatever the guidance
                workload = replace(workload, steps=steps)
                notes.append(
                    f"{o.text()}: {steps} steps; {workload.runtime.record.name} runs both CFG passes whatever the "
                    "guidance, so a distilled model keeps them there (LightX2V runs it without)"
                )
            else:
                workload = replace(workload, steps=steps, cfg=False)
                notes.append(f"{o.text()}: {steps} steps without CFG ({d.summary})")
        elif d.family == "caching":
            if o.name == "skip":
                share, how = float(o.value or 0.0), "the share given"
            else:
                share, how = skip_share(o.name, float(o.value or 0.0), workload.spec.name)
            transforms.append(SkipCalls(o.text(), how, share))
            notes.append(
                f"{o.text()}: {share:.0%} of the transformer's calls skip the block stack ({how}); the skipped "
                "calls' embedders, head and the cache's own decision are not timed"
            )
        elif d.family == "attention":
            if workload.runtime.flash_attention is not None:
                raise InputError(f"optimise: {o.name} and --flash-attention both name the attention kernel; give one")
            if workload.runtime.attention is not None and workload.runtime.attention != o.name:
                raise InputError(f"optimise: {o.name} and --attention {workload.runtime.attention} name two kernels")
            workload = replace(workload, runtime=replace(workload.runtime, attention=o.name))
            notes.append(f"{o.text()}: attention runs {d.summary}, timed by its measured curve on the GPU")
        elif d.family == "sparse":
            transform, note = _sparse(o, workload, transforms)
            transforms.append(transform)
            notes.append(note)
        elif d.family == "quantisation":
            path, element_bytes, source = QUANTISED[o.name]
            if not gpu.has_path(path):
                raise InputError(f"optimise: {o.name} needs an {path.upper()} tensor path; {gpu.name} has none")
            if workload.runtime.weight_dtype("transformer", workload.spec) not in ("bfloat16", "float16"):
                raise InputError(
                    f"optimise: {o.name} replaces bf16 Linear weights; --runtime {workload.runtime.name} keeps the "
                    "DiT's in float32 (give --convert-model-dtype on Wan2.2, or --runtime lightx2v)"
                )
            transforms.append(QuantisedLinear(o.text(), SOURCES[source], path, element_bytes))
            notes.append(
                f"{o.text()}: {d.summary}; the embedders' and head's products counted on {path.upper()} too (<1%)"
            )
        elif d.family == "compile":
            transforms.append(Compiled(o.text(), SOURCES["torch-compile"]))
            notes.append(f"{o.text()}: {d.summary}")
        elif d.family == "vae" and o.name == "tae":
            transforms.append(_tiny_decoder(o, workload))
            notes.append(
                f"{o.text()}: {d.summary}; the decode's ops, bytes and peak as taehv.py's sequential loop runs "
                "them (checked against a trace of it); the VAE's encoder kept where the job encodes"
            )
        elif d.family == "vae":
            spec = workload.spec
            if spec.vae.is_residual:
                raise InputError(
                    f"optimise: {o.name} prunes the Wan2.1 VAE (Wan2.1 and Wan2.2 A14B models, as LightX2V's README "
                    f"states); {spec.name} runs the Wan2.2 VAE"
                )
            light = replace(spec.vae, base_dim=LIGHTVAE_BASE_DIM)
            workload = replace(workload, spec=replace(spec, vae=light))
            notes.append(
                f"{o.text()}: {d.summary}: the VAE's stages, weights and activations as that module runs them "
                f"({spec.vae.base_dim} -> {LIGHTVAE_BASE_DIM} base channels)"
            )
    workload.runtime.check(workload.spec, gpu.architecture)  # the kernel it runs, on this GPU
    return Plan(optimisations, asked, workload, tuple(transforms), tuple(notes))
