"""Optimisations as transforms between the walks and the sizing that reads them.

A :class:`Transform` changes what a job's walks report before sizing times it, through three hooks:

* :meth:`~Transform.calls`: how many calls a stage makes (step caching skips a share of them);
* :meth:`~Transform.terms`: one stage call's roofline terms, ``(category, flops, bytes moved, calls, dims)``
  (sparse attention keeps a share of the attention FLOPs; FP8 weights halve a matmul's weight bytes);
* :meth:`~Transform.rates`: the efficiency each op class runs at on a GPU, with its provenance (another
  attention kernel; an override on the command line).

Each transform is one entry with its source. Sizing applies, in order, the runtime's attention kernel
(:class:`AttentionKernel`), the user's what-ifs, then ``--efficiency-override`` (:class:`EfficiencyOverride`,
so what the user states last wins). The FLOP report is never transformed: it counts what the model's
modules run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from hybrid.errors import InputError
from hybrid.hardware import GPU, kernel_efficiency
from hybrid.kernels import memory_fraction
from hybrid.pipelines import StageDef
from hybrid.timing import OP_CLASSES, Term, merge_terms

Calibration = dict[str, Any]
"""A timing calibration document: ``efficiency`` per op class, and where each value comes from."""


@dataclass(frozen=True)
class Transform:
    """The identity: every hook returns what it is given. A transform overrides the hooks it needs."""

    name: str
    source: str = ""
    """Where the transform's numbers come from (a paper, a benchmark, the runtime's code)."""

    def calls(self, stage: StageDef, calls: int) -> int:
        """Calls ``stage`` makes in one job, given ``calls`` before this transform."""
        return calls

    def terms(self, stage: StageDef, terms: tuple[Term, ...]) -> tuple[Term, ...]:
        """The roofline terms of one call of ``stage``."""
        return terms

    def rates(self, cal: Calibration, gpu: GPU) -> Calibration:
        """The calibration the op classes are timed with on ``gpu``."""
        return cal

    def launch(self, stage: StageDef, seconds: float) -> float:
        """The host seconds per launched kernel in ``stage``, given ``seconds`` before this transform."""
        return seconds

    def matmul_path(self, stage: StageDef, path: str) -> str:
        """The tensor path (``bf16``, ``fp8``, ...) ``stage``'s matrix products run on, given ``path``."""
        return path

    def weights(self, component: str, nbytes: int, config: Any) -> int:
        """The bytes ``component``'s stored weights take (``config``: its config), given ``nbytes``."""
        return nbytes

    def peaks(self, stage: StageDef, peaks: tuple[int, int]) -> tuple[int, int]:
        """One call of ``stage``'s activation peaks (fused attention, materialised scores), given ``peaks``."""
        return peaks

    def tensor_path(self, stage: StageDef, path: str) -> str:
        """The tensor path (``bf16``, ``tf32``, ...) ``stage`` computes on, given ``path``."""
        return path

    def fuses(self, stage: StageDef) -> bool:
        """Whether ``stage`` runs compiled: its memory-bound ops fused (:class:`hybrid.sinks.FusedTermSink`)."""
        return False


def describe(cal: Calibration) -> str:
    """Where a calibration's efficiencies come from, in words."""
    if cal.get("defaults"):
        return f"none; default efficiencies from cited public measurements (retrieved {cal.get('date', '?')})"
    return f"{cal.get('device_name', '?')} on {cal.get('date', '?')} ({cal.get('versions', {}).get('torch', '?')})"


def provenance(cal: Calibration) -> dict[str, dict[str, Any]]:
    """Per op class, the efficiency's value and where it comes from."""
    if "provenance" in cal:
        return {c: dict(p) for c, p in cal["provenance"].items()}
    source = f"timing calibration: {describe(cal)}"
    return {c: {"value": v, "kind": "calibrated", "evidence": source} for c, v in cal["efficiency"].items()}


@dataclass(frozen=True)
class AttentionKernel(Transform):
    """Attention runs ``kernel``: its cited efficiency on the GPU's architecture where one is
    measured (``kernels`` in ``hybrid/data/efficiency_defaults.json``), else the GPU's own."""

    kernel: str = "sdpa-flash"

    def rates(self, cal: Calibration, gpu: GPU) -> Calibration:
        e = kernel_efficiency(self.kernel, gpu)
        if e is None:
            return cal
        p = provenance(cal)
        p["attention"] = e.to_dict()
        return {**cal, "efficiency": {**cal["efficiency"], "attention": e.value}, "provenance": p}


@dataclass(frozen=True)
class MeasuredMemory(Transform):
    """Without a timing calibration, memory-bound ops run at the GPU's own measured streaming rate
    where one is published (:func:`hybrid.kernels.memory_fraction`), else at the cited default."""

    def rates(self, cal: Calibration, gpu: GPU) -> Calibration:
        measured = memory_fraction(gpu.name) if cal.get("defaults") else None
        if measured is None:
            return cal
        value, evidence = measured
        p = provenance(cal)
        p["memory"] = {"value": value, **evidence.to_dict()}
        return {**cal, "efficiency": {**cal["efficiency"], "memory": value}, "provenance": p}


@dataclass(frozen=True)
class EfficiencyOverride(Transform):
    """Some op classes' efficiencies replaced (``--efficiency-override CLASS=VALUE``)."""

    overrides: tuple[tuple[str, float], ...] = ()

    @staticmethod
    def of(overrides: Mapping[str, float]) -> EfficiencyOverride:
        """The override of ``overrides``; ``ValueError`` naming a bad class or value."""
        bad = [c for c in overrides if c not in OP_CLASSES]
        if bad:
            raise InputError(f"efficiency-override: unknown op class {bad[0]!r}; valid: {', '.join(OP_CLASSES)}")
        out_of_range = {c: v for c, v in overrides.items() if not 0 < v <= 1}
        if out_of_range:
            c, v = next(iter(out_of_range.items()))
            raise InputError(f"efficiency-override: {c}={v:g} is out of range; valid: 0 < value <= 1")
        return EfficiencyOverride("efficiency override", "set on the command line", tuple(overrides.items()))

    def rates(self, cal: Calibration, gpu: GPU) -> Calibration:
        return self.apply(cal)

    def apply(self, cal: Calibration) -> Calibration:
        """``cal`` with the overridden efficiencies, each marked as an override of what it was."""
        overrides = dict(self.overrides)
        p = provenance(cal)
        for c, v in overrides.items():
            p[c] = {"value": v, "kind": "override", "evidence": f"set on the command line (was {p[c]['value']:g})"}
        return {
            **cal,
            "efficiency": {**cal["efficiency"], **overrides},
            "provenance": p,
            "overridden": sorted(overrides),
        }


def _dit(component: str) -> bool:
    """Whether ``component`` is a DiT (``transformer``, A14B's ``transformer_2``), as the pipelines name
    them: what step caches skip, ``torch.compile`` compiles and FP8 checkpoints quantise."""
    return component.startswith("transformer")


@dataclass(frozen=True)
class SkipCalls(Transform):
    """A step cache: ``share`` of the transformer's calls skip the block stack and reuse a cached
    residual (``floor(share * calls)`` of each DiT stage's calls are left out)."""

    share: float = 0.0

    def calls(self, stage: StageDef, calls: int) -> int:
        if not _dit(stage.component):
            return calls
        return calls - math.floor(self.share * calls)


@dataclass(frozen=True)
class Compiled(Transform):
    """The transformer compiled with CUDA graphs: no host launch cost per kernel in its stages, and
    each run of memory-bound ops between two matrix products, attentions or collectives one fused
    kernel (:class:`hybrid.sinks.FusedTermSink`)."""

    def launch(self, stage: StageDef, seconds: float) -> float:
        return 0.0 if _dit(stage.component) else seconds

    def fuses(self, stage: StageDef) -> bool:
        return _dit(stage.component)


@dataclass(frozen=True)
class QuantisedLinear(Transform):
    """The transformer's Linear layers quantised (W8A8 FP8 or INT8 with per-token dynamic activation
    scales, as LightX2V's quantised checkpoints run them; NVFP4 W4A4 with an FP8 scale per 16 elements):
    every matrix product of its stages on the GPU's ``path`` tensor path (``fp8``, ``int8``, ``fp4``),
    reading its input and weight in ``element_bytes`` per element (their block scales included) and
    writing bf16; before each, its input quantised (read twice in bf16: the amax, then the scaling;
    written quantised with a float32 scale per row); the blocks' Linear weights stored in
    ``element_bytes`` each (``weight_elements``). The embedders' and head's products (under 1% of the
    DiT's FLOPs) are counted on the quantised path too."""

    path: str = "fp8"
    element_bytes: Fraction = Fraction(1)

    def matmul_path(self, stage: StageDef, path: str) -> str:
        return self.path if _dit(stage.component) else path

    def terms(self, stage: StageDef, terms: tuple[Term, ...]) -> tuple[Term, ...]:
        if not _dit(stage.component):
            return terms
        b = self.element_bytes
        out: list[Term] = []
        for category, flops, moved, calls, dims in terms:
            if category == "matmul" and len(dims) == 4 and dims[0] == 1 and calls:
                _, m, n, k = dims
                operands = (m * k + k * n) * b.numerator // b.denominator
                out.append((category, flops, calls * (operands + 2 * m * n + 2 * n), calls, dims))
                written = m * k * b.numerator // b.denominator
                out.append(("elementwise", 0, calls * (4 * m * k + written + 4 * m), calls, ()))  # the quantisation
            else:
                out.append((category, flops, moved, calls, dims))
        return merge_terms(out)

    def weights(self, component: str, nbytes: int, config: Any) -> int:
        if not _dit(component) or config is None:
            return nbytes
        elements = weight_elements(config)
        per = nbytes // max(1, int(config.num_parameters()))  # the stored dtype's bytes per element
        saved = elements * (per - self.element_bytes)
        return nbytes - saved.numerator // saved.denominator


def self_attention(dims: tuple[int, ...]) -> bool:
    """Whether an attention term's dims ``(batch x heads, q_len, kv_len, head_dim)`` are a DiT
    self-attention: the keys are the queries' tokens (to within the padding the original code's Ulysses
    adds to the queries, under one token in 64); a cross-attention's keys are the prompt's or the image's
    tokens."""
    return len(dims) == 4 and dims[1] > 0 and abs(dims[1] - dims[2]) * 64 <= dims[1]


@dataclass(frozen=True)
class SparseAttention(Transform):
    """Sparse attention in the transformer's self-attention (``method``: ``svg``, ``radial``, ``sta``,
    ``vsa``): per DiT stage, the mean share of the score matrix one call computes (:attr:`kept`: the
    dense warm-up steps and dense layers at full share, the rest at the method's kept share), its FLOPs
    at the dense kernel's rate for the same shape; bytes as dense (q, k, v and the output each once);
    plus the method's own ops per sparse self-attention (:func:`sparse_overhead`)."""

    method: str = ""
    kept: tuple[tuple[str, Fraction], ...] = ()
    sparse_calls: tuple[tuple[str, Fraction], ...] = ()
    """Per DiT stage, the mean share of its self-attentions that run sparse (what pays the overhead)."""
    iterations: tuple[tuple[str, Fraction], ...] = ()
    """Per DiT stage, the mean k-means iterations of one sparse self-attention (``svg2``: its first
    sparse call in each block runs :data:`SVG2_ITER_INIT`, every later one :data:`SVG2_ITER_STEP`)."""

    def terms(self, stage: StageDef, terms: tuple[Term, ...]) -> tuple[Term, ...]:
        share = dict(self.kept).get(stage.name)
        if share is None:
            return terms
        sparse = dict(self.sparse_calls).get(stage.name, Fraction(0))
        iterations = dict(self.iterations).get(stage.name, Fraction(0))
        out: list[Term] = []
        for category, flops, moved, calls, dims in terms:
            if category == "attention" and self_attention(dims) and calls:
                out.append((category, flops * share.numerator // share.denominator, moved, calls, dims))
                out.extend(sparse_overhead(self.method, dims, calls, sparse, iterations))
            else:
                out.append((category, flops, moved, calls, dims))
        return merge_terms(out)


def sparse_overhead(
    method: str, dims: tuple[int, ...], calls: int, sparse: Fraction, iterations: Fraction = Fraction(0)
) -> list[Term]:
    """The ops ``method`` adds to ``calls`` self-attentions of ``dims`` (bf16 q, k, v), ``sparse`` of
    them sparse (``iterations``: ``svg2``'s mean k-means iterations per sparse one), as roofline terms."""
    bh, n, _, d = dims
    elements = bh * n * d  # of q (k and v alike)
    runs = calls * sparse  # sparse attentions, a mean over the stage's calls
    if method == "svg2":
        return svg2_overhead(bh, n, d, calls, runs, iterations)
    if method == "svg":
        # profiling (sample_mse): SVG_SAMPLED_QUERIES query rows per head against every key, their scores once
        # and three P @ V (full, the spatial mask's, the temporal mask's): 8 r n d FLOPs per head; k read once,
        # v three times, five passes over the sampled scores; then the layout transformation: four
        # (heads, tokens, head_dim) buffers zero-filled, q, k and v copied into them, the output copied back
        # out: 4 + 6 + 2 = 12 passes of q's size, in bf16
        r = SVG_SAMPLED_QUERIES
        sampled = (bh, r, n, d)
        return [
            ("attention", int(runs * 8 * bh * r * n * d), int(runs * (2 * 4 * elements + 5 * 2 * bh * r * n)), calls,
             sampled),
            ("elementwise", 0, int(runs * 12 * 2 * elements), calls, ()),
        ]  # fmt: skip
    if method == "sta":  # q, k and v tiled and transposed in, the output untiled out: 14 bf16 passes of q's size
        return [("elementwise", 0, int(runs * 14 * 2 * elements), calls, ())]
    if method == "vsa":  # the coarse pass: q, k and v mean-pooled per cube, attention between the cubes
        cubes = n // VSA_CUBE
        coarse = (bh, cubes, cubes, d)
        pooled = bh * cubes * d
        return [
            ("elementwise", 0, int(runs * (3 * 2 * elements + 3 * 2 * pooled)), calls, ()),
            ("attention", int(runs * 4 * bh * cubes * cubes * d), int(runs * 4 * 2 * pooled), calls, coarse),
        ]
    return []


def svg2_overhead(bh: int, n: int, d: int, calls: int, runs: Fraction, iterations: Fraction) -> list[Term]:
    """Sparse VideoGen 2's own work in ``runs`` sparse self-attentions (of ``calls``) over ``bh`` heads of
    ``n`` tokens of ``d`` (its ``WanAttn_SAPAttn_Processor.semantic_aware_permutation`` and
    ``svg/kmeans_utils.py``), ``iterations`` k-means iterations each on average. Bytes are counted as
    passes over the tensors, read from the code (its Triton kernels' inner traffic is not traced):

    * k-means of q into :data:`SVG2_Q_CENTROIDS` and of k into :data:`SVG2_K_CENTROIDS` clusters per
      head (``batch_kmeans_Euclid``): ``x_sq = (x**2).sum(-1)`` once (x read twice, its square written,
      the sums written: 6 bytes an element and 2 a token); then per iteration the Triton assignment,
      ``x @ centroids^T`` on the tensor cores (``2 n c d`` FLOPs a head: a GEMM of ``(n, c, d)``; x read
      once, an int64 label a token written) and the sorted centroid update (the labels sorted,
      values and indices, and cast to int32; x gathered once: 2 bytes an element and 64 a token);
    * the dynamic map (``identify_dynamic_map``): the centroids' scores (a ``(c_q, c_k, d)`` GEMM a
      head), their size-weighted softmax in float32, the descending sort, cumulative sum and
      scatter into a boolean map: 96 bytes a centroid pair;
    * the permutation: q, k and v gathered into cluster order and the output gathered back
      (``permute_tensor_by_labels_triton``, ``apply_inverse_permutation_triton``: 4 tensors read
      and written), after three argsorts of a token's int64 label (32 bytes a token each)."""
    elements, tokens = bh * n * d, bh * n
    out: list[Term] = []
    for c in (SVG2_Q_CENTROIDS, SVG2_K_CENTROIDS):
        out.append(("elementwise", 0, int(runs * (6 * elements + 2 * tokens)), calls, ()))  # x_sq
        out.append(("matmul", int(runs * iterations * 2 * tokens * c * d),
                    int(runs * iterations * (2 * elements + 8 * tokens)), calls, (bh, n, c, d)))  # fmt: skip
        out.append(("elementwise", 0, int(runs * iterations * (2 * elements + 64 * tokens)), calls, ()))  # update
    pairs = bh * SVG2_Q_CENTROIDS * SVG2_K_CENTROIDS
    out.append(("matmul", int(runs * 2 * pairs * d), int(runs * 2 * bh * (SVG2_Q_CENTROIDS + SVG2_K_CENTROIDS) * d),
                calls, (bh, SVG2_Q_CENTROIDS, SVG2_K_CENTROIDS, d)))  # fmt: skip
    out.append(("elementwise", 0, int(runs * (96 * pairs + 4 * 2 * 2 * elements + 3 * 32 * tokens)), calls, ()))
    return out


SVG2_Q_CENTROIDS = 300
SVG2_K_CENTROIDS = 1000
"""Sparse VideoGen 2's query and key clusters per head: its Wan scripts' ``qc_kmeans=300``,
``kc_kmeans=1000`` (scripts/wan/wan_{t2v,i2v}_720p_sap.sh, svg-project/Sparse-VideoGen 5ce7b01)."""
SVG2_ITER_INIT = 50
SVG2_ITER_STEP = 2
"""Its k-means iterations: ``kmeans_iter_init=50`` the first time a block's processor runs sparse
(``centroids_init``), ``kmeans_iter_step=2`` from its centroids every later time (the same scripts;
``batch_kmeans_Euclid`` stops earlier only where no centroid moves by 1e-4)."""

SVG_SAMPLED_QUERIES = 64
"""Query rows Sparse VideoGen samples per sparse attention to choose each head's mask (its
``sample_mse``: 64 rows drawn from the first tokens)."""

VSA_CUBE = 64
"""Tokens per cube of video sparse attention (4 x 4 x 4 latent tokens), over which its coarse pass pools."""


def weight_elements(config: Any) -> int:
    """The blocks' Linear weights of a transformer config (biases left out): what FP8 checkpoints store in
    one byte each: per block ``8 D^2 + 2 D F`` (two attentions' q, k, v, o and the FFN), ``+ 2 K D`` with
    image input (``add_k_proj``, ``add_v_proj``)."""
    d, f = int(config.inner_dim), int(config.ffn_dim)
    added = 2 * int(config.added_kv_proj_dim) * d if config.added_kv_proj_dim is not None else 0
    return int(config.num_layers) * (8 * d * d + 2 * d * f + added)


@dataclass(frozen=True)
class TinyDecoder(Transform):
    """The VAE's decoder replaced by TAEHV's (``--optimise tae``, :mod:`hybrid.models.taehv`): the decode
    stage's terms and peaks are its walk's, in bfloat16 on the bf16 tensor path, as LightX2V's
    ``WanVAE_tiny`` runs it; the VAE's stored weights are its encoder's where the job encodes (``keep_encoder``)
    and the tiny decoder's in bfloat16."""

    config: Any = None
    decode_terms: tuple[Term, ...] = ()
    peak_bytes: int = 0
    keep_encoder: bool = False

    def _decode(self, stage: StageDef) -> bool:
        return stage.component == "vae" and stage.call == "decode"

    def terms(self, stage: StageDef, terms: tuple[Term, ...]) -> tuple[Term, ...]:
        return self.decode_terms if self._decode(stage) else terms

    def peaks(self, stage: StageDef, peaks: tuple[int, int]) -> tuple[int, int]:
        return (self.peak_bytes, self.peak_bytes) if self._decode(stage) else peaks

    def tensor_path(self, stage: StageDef, path: str) -> str:
        return "bf16" if self._decode(stage) else path

    def weights(self, component: str, nbytes: int, config: Any) -> int:
        if component != "vae" or config is None:
            return nbytes
        per = nbytes // max(1, int(config.num_parameters()))  # the stored dtype's bytes per element
        encoder = int(config.encoder_num_parameters()) * per if self.keep_encoder else 0
        return encoder + int(self.config.num_parameters()) * 2


def apply_peaks(transforms: Iterable[Transform], stage: StageDef, peaks: tuple[int, int]) -> tuple[int, int]:
    """One call of ``stage``'s activation peaks through every transform, in order."""
    for t in transforms:
        peaks = t.peaks(stage, peaks)
    return peaks


def apply_tensor_path(transforms: Iterable[Transform], stage: StageDef, path: str) -> str:
    """The tensor path ``stage`` computes on through every transform, in order."""
    for t in transforms:
        path = t.tensor_path(stage, path)
    return path


def apply_matmul_path(transforms: Iterable[Transform], stage: StageDef, path: str) -> str:
    """The tensor path of ``stage``'s matrix products through every transform, in order."""
    for t in transforms:
        path = t.matmul_path(stage, path)
    return path


def apply_weights(transforms: Iterable[Transform], component: str, nbytes: int, config: Any) -> int:
    """``component``'s stored weight bytes through every transform, in order."""
    for t in transforms:
        nbytes = t.weights(component, nbytes, config)
    return nbytes


def apply_launch(transforms: Iterable[Transform], stage: StageDef, seconds: float) -> float:
    """``seconds`` per launch in ``stage`` through every transform's :meth:`~Transform.launch`, in order."""
    for t in transforms:
        seconds = t.launch(stage, seconds)
    return seconds


def apply_rates(transforms: Iterable[Transform], cal: Calibration, gpu: GPU) -> Calibration:
    """``cal`` through every transform's :meth:`~Transform.rates`, in order."""
    for t in transforms:
        cal = t.rates(cal, gpu)
    return cal


def apply_calls(transforms: Iterable[Transform], stage: StageDef, calls: int) -> int:
    """``calls`` of ``stage`` through every transform's :meth:`~Transform.calls`, in order."""
    for t in transforms:
        calls = t.calls(stage, calls)
    return calls


def apply_fuses(transforms: Iterable[Transform], stage: StageDef) -> bool:
    """Whether any transform compiles ``stage`` (:meth:`Transform.fuses`)."""
    return any(t.fuses(stage) for t in transforms)


def apply_terms(transforms: Iterable[Transform], stage: StageDef, terms: tuple[Term, ...]) -> tuple[Term, ...]:
    """One call's ``terms`` of ``stage`` through every transform's :meth:`~Transform.terms`, in order."""
    for t in transforms:
        terms = t.terms(stage, terms)
    return terms
