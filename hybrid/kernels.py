"""Kernel-aware achieved rates: what fraction of a GPU's peak an op reaches, by its kernel and shape.

The data are kernel measurements (``hybrid/data/kernel_rates.json``: papers' and vendors' benchmark
tables and plots, microbenchmark repositories, and this project's own on a lent H200, each with its
source and how it was read);
none is fitted to a timed Wan run. These models read them:

* **GEMMs** (and convolutions as implicit GEMMs, on a curve of their own where one is measured)
  reach ``e_max * waves(m, n) * k / (k + K_HALF)`` of the tensor path's peak: ``waves`` the share
  of the last wave of output tiles that keeps every SM busy (wave quantisation:
  ``tiles / (ceil(tiles / sm_count) * sm_count)``, with ``TILE`` tiles),
  ``k / (k + K_HALF)`` the fixed cost of a tile's prologue and epilogue against its ``k`` loop.
  ``e_max`` is each GPU's measured ceiling: of its square-GEMM measurements divided by their own
  wave and ``k`` factors, the largest (the best shape a tuned library reaches), or the class
  efficiency of the cited defaults where the GPU has none. Convolutions, where cuDNN's implicit-GEMM
  kernels are measured on the stage's tensor path (TF32 for float32 tensors, torch's default), run
  at the measured fraction of peak over the wave factor as a curve over ``k`` (:func:`conv_curve`:
  an H200 from 0.33 at 96 channels to 0.65-0.73 at 256 and more), times their own wave factor; a GPU
  of the same vendor without one runs that curve scaled by its own GEMM ceiling over the measured GPU's.
* **Attention** runs at the measured throughput of the kernel on the GPU at the key length (the
  kernel's inner loop; curves are log-linear between measured sequence lengths, flat beyond them),
  as a fraction of the GPU's peak; a GPU without its own curve for the kernel takes the curve of a
  GPU of the same architecture, as a fraction of that GPU's peak (``derived``), else the kernel's
  cited class efficiency stands.
* **Memory-bound ops** run at the GPU's measured streaming rate times their category's share of it
  (:func:`memory_ratios`: norms, dtype casts and copies, broadcast products measured below a plain add).
* **Launch**: eager PyTorch spends about ``seconds_per_kernel`` of host time per launched kernel
  (measured on an A100; the GPU's own figure where there is one).

Where a timing calibration of the GPU exists (``calibrate-time``), or the user overrides an op
class, that class's one efficiency stands for every shape instead.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from itertools import pairwise
from typing import Any

from hybrid.hardware import GPU, default_efficiency, gpus
from hybrid.memo import on_clear
from hybrid.ops import COLLECTIVES, collective_input_bytes

TILE: Mapping[str, tuple[int, int]] = {"Hopper": (128, 256), "Blackwell": (128, 256)}
"""Output tile ``(m, n)`` assumed of the GEMM kernels a library picks for large bf16 products, by
architecture (Hopper's and Blackwell's warp-group MMA kernels: 128x256; ``DEFAULT_TILE`` elsewhere).
An assumption, not a measurement: checked against the square-GEMM measurements in
``tests/test_kernels.py``."""
DEFAULT_TILE = (128, 128)
K_HALF = 256
"""The ``k`` at which a tile's fixed prologue and epilogue cost as much as its loop: fits the
square-GEMM measurements of the data to a few percent (H100 SXM bf16: 1024^3 at 0.18 of peak,
2048^3 at 0.68, 4096^3 at 0.80; see ``tests/test_kernels.py``)."""

SAME_CHIP = 0.05
"""A GPU without GEMM measurements takes the ceiling of one of its architecture whose peak is within
this fraction of its own (the same chip in another form); others keep the class default (a GeForce
card's measured ceiling, above its datasheet clocks, says nothing of a data-centre part's)."""

LARGE = 0.9
"""Shapes whose wave and ``k`` factors are at least this set a GPU's GEMM ceiling."""

TENSOR_DTYPES: Mapping[str, str] = {
    "bf16": "bfloat16", "fp16": "bfloat16", "tf32": "tfloat32", "fp8": "float8_e4m3fn", "int8": "int8", "fp4": "nvfp4",
    "fp32": "float32",
}  # fmt: skip
"""The data's GEMM dtype of each tensor path (fp16 and bf16 run at one rate)."""


@lru_cache(maxsize=1)
def data() -> dict[str, Any]:
    """The packaged ``kernel_rates.json``."""
    text = resources.files("hybrid").joinpath("data/kernel_rates.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def _peak_tflops(gpu: GPU, dtype: str) -> float:
    if dtype == "tfloat32":
        return gpu.bf16_tflops * gpu.tf32_ratio
    if dtype == "float8_e4m3fn":
        return gpu.fp8_tflops or gpu.bf16_tflops
    if dtype == "int8":
        return gpu.int8_tops or gpu.bf16_tflops
    if dtype == "nvfp4":
        return gpu.fp4_tflops or gpu.bf16_tflops
    if dtype == "float32":  # the CUDA cores
        return gpu.fp32_tflops
    return gpu.bf16_tflops


@dataclass(frozen=True)
class Evidence:
    """Where a rate comes from: ``measured`` on this GPU, ``derived`` from another GPU's measurement
    (``how``), or ``default`` (the op class's cited efficiency)."""

    kind: str
    how: str
    url: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "evidence": self.how, "source_url": self.url}


@dataclass(frozen=True)
class Curve:
    """Fractions of peak at measured sequence lengths, ascending."""

    points: tuple[tuple[int, float], ...]
    evidence: Evidence

    def at(self, length: int) -> float:
        """Log-linear between the measured lengths, flat beyond them."""
        pts = self.points
        if length <= pts[0][0]:
            return pts[0][1]
        for (x0, y0), (x1, y1) in pairwise(pts):
            if length <= x1:
                w = (math.log(length) - math.log(x0)) / (math.log(x1) - math.log(x0))
                return y0 + w * (y1 - y0)
        return pts[-1][1]


def _url(key: str) -> str:
    return str(data()["sources"].get(key, {}).get("url", ""))


def _source(key: str) -> str:
    s = data()["sources"].get(key, {})
    return f"{s.get('title', key)} ({s.get('url', '')}; {s.get('read', '')})"


KERNEL_KIN: Mapping[str, tuple[str, ...]] = {
    "sdpa": ("sdpa-flash",),
    "fa2": ("sdpa-flash",),
    "sdpa-flash": ("fa2",),
}
"""Kernels measured under another name: PyTorch's SDPA picks its built-in FlashAttention-2 kernels
first on CUDA (``sdpa-flash``; the ``sdpa-priority`` source of the efficiency defaults), which are
the ``flash_attn`` package's FlashAttention-2 (``fa2``) compiled into PyTorch."""


@cache
def attention_curve(kernel: str, gpu_name: str) -> Curve | None:
    """The measured curve of ``kernel`` on ``gpu_name`` (head dim 128, non-causal, as fractions of
    its bf16 peak): in order, its own, its kin's (:data:`KERNEL_KIN`) on this GPU, its own or its
    kin's on a GPU of the same architecture (the first entry of the data each time); ``None``
    where none exists. A measurement ``set_aside`` (its reason recorded with it: the GPU it names is
    in doubt) stays in the data but is never used."""
    table = gpus()
    gpu = table[gpu_name]
    names = (kernel, *KERNEL_KIN.get(kernel, ()))
    entries = [
        e
        for e in data()["attention"]
        if e["head_dim"] == 128 and not e["causal"] and e["gpu"] in table and not e.get("set_aside")
    ]
    for same_gpu in (True, False):
        for name in names:
            for e in entries:
                if e["kernel"] != name:
                    continue
                other = table[e["gpu"]]
                here = e["gpu"] == gpu_name
                if here != same_gpu or (not here and other.architecture != gpu.architecture):
                    continue
                peak = _peak_tflops(other, "bfloat16")
                alias = "" if name == kernel else f" ({kernel} measured as {name})"
                if e["gpu"] == gpu_name:
                    kind, how = "measured", f"{name} on {gpu_name}{alias}: {e.get('setup', '')}"
                else:
                    kind = "derived"
                    how = (
                        f"no measurement of {kernel} on {gpu_name}: {name} on {e['gpu']} ({other.architecture})"
                        f"{alias}, as a fraction of its peak ({peak:g} TFLOP/s)"
                    )
                points = tuple((int(s), float(t) / peak) for s, t in e["points"])
                return Curve(points, Evidence(kind, f"{how}; {_source(e['source'])}", _url(e["source"])))
    return None


CUDA_CORE_TILE = (64, 64)
"""Output tile assumed of float32 products on the CUDA cores (torch's default, ``matmul.allow_tf32``
False): cuBLAS's SIMT kernels, 32x32 to 128x128 by size (an H200's profile of CLIP's float32 products:
sm80_xmma_gemm_f32f32 128x128x8, 64x32x8, 32x32x8); with it the H200's measured float32 products at
CLIP's and UMT5's shapes fall within 11% of their wave and ``k`` factors times its ceiling."""


def tile(gpu: GPU, dtype: str = "bfloat16") -> tuple[int, int]:
    return CUDA_CORE_TILE if dtype == "float32" else TILE.get(gpu.architecture, DEFAULT_TILE)


def wave_fraction(gpu: GPU, batch: int, m: int, n: int, dtype: str = "bfloat16") -> float:
    """The share of SM-slots the output tiles of ``batch`` ``m x n`` products keep busy over their
    waves (1 for an exact multiple of the SM count; a tile cut by the matrix edge counts whole). A
    side shorter than the tile gets a tile of its length rounded up to 64 (libraries pick narrower
    tiles for narrow products: a VAE convolution's 96 output channels)."""
    tm, tn = _tile_of(gpu, m, n, dtype)
    tiles = batch * -(-m // tm) * -(-n // tn)
    if tiles == 0:
        return 1.0
    waves = -(-tiles // gpu.sm_count)
    fill = (m * n) / (-(-m // tm) * tm * -(-n // tn) * tn)
    return fill * tiles / (waves * gpu.sm_count)


def _tile_of(gpu: GPU, m: int, n: int, dtype: str) -> tuple[int, int]:
    """The tile an ``m x n`` product is cut into: :func:`tile`'s, a side shorter than it rounded up to 64."""
    tm, tn = tile(gpu, dtype)
    return min(tm, max(64, -(-m // 64) * 64)), min(tn, max(64, -(-n // 64) * 64))


def _tiles(gpu: GPU, m: int, n: int, dtype: str = "bfloat16") -> int:
    """Output tiles of one ``m x n`` product (:func:`_tile_of`)."""
    tm, tn = _tile_of(gpu, m, n, dtype)
    return -(-m // tm) * -(-n // tn)


def k_fraction(k: int) -> float:
    return k / (k + K_HALF) if k > 0 else 1.0


def shape_factor(gpu: GPU, dims: tuple[int, ...], dtype: str = "bfloat16") -> float:
    """``waves * k / (k + K_HALF)`` of a GEMM's ``(batch, m, n, k)`` on ``dtype``'s path."""
    batch, m, n, k = dims
    return wave_fraction(gpu, batch, m, n, dtype) * k_fraction(k)


def same_chip(section: str, gpu_name: str, dtype: str) -> list[str]:
    """GPUs with ``dtype`` measurements in ``section`` that are ``gpu_name``'s chip in another form: its
    architecture and a peak within :data:`SAME_CHIP` of its own, nearest peak first."""
    table = gpus()
    gpu = table[gpu_name]
    peak = _peak_tflops(gpu, dtype)
    return sorted(
        {e["gpu"] for e in data().get(section, ()) if e["gpu"] in table and e["gpu"] != gpu_name
         and table[e["gpu"]].architecture == gpu.architecture and e["dtype"] == dtype
         and abs(_peak_tflops(table[e["gpu"]], dtype) / peak - 1) <= SAME_CHIP},
        key=lambda other: (abs(_peak_tflops(table[other], dtype) - peak), other),
    )  # fmt: skip


@cache
def gemm_ceiling(gpu_name: str, dtype: str) -> tuple[float, Evidence] | None:
    """``e_max`` of the GPU's GEMMs on ``dtype``: of its measurements at shapes the wave and ``k``
    factors barely touch (:data:`LARGE`; else its largest shape), the highest divided by its
    factors (small shapes are left out: libraries run them with other tiles or split ``k``, which
    the model does not follow); ``None`` where it has none (the class efficiency then stands). Not capped
    at 1, as attention's curves are not: a GeForce card runs above the clock its datasheet peak assumes
    (an RTX 5090's 8192^3 at 234.89 TFLOP/s of 209.5: 1.20 over its factors)."""
    table = gpus()
    gpu = table[gpu_name]
    peak = _peak_tflops(gpu, dtype)
    points = [
        (m, n, k, tflops, e["source"])
        for e in data()["gemm"]
        if e["gpu"] == gpu_name and e["dtype"] == dtype and not e.get("kernel")
        for m, n, k, tflops in e["points"]
    ]
    if not points:  # the same chip in another form (H800 and H100 SXM, A800 and A100): its ceiling
        for other in same_chip("gemm", gpu_name, dtype):
            found = gemm_ceiling(other, dtype)
            if found is not None:
                how = f"no GEMM measurement on {gpu_name}: {other}'s ({gpu.architecture}) ceiling; {found[1].how}"
                return found[0], Evidence("derived", how, found[1].url)
        return None
    large = [p for p in points if shape_factor(gpu, (1, *p[:3]), dtype) >= LARGE]
    best: tuple[float, str, str] | None = None
    for m, n, k, tflops, source in large or sorted(points, key=lambda p: p[0] * p[1] * p[2])[-1:]:
        ceiling = tflops / peak / shape_factor(gpu, (1, m, n, k), dtype)
        if best is None or ceiling > best[0]:
            best = (ceiling, f"{m}x{n}x{k} at {tflops:g} TFLOP/s; {_source(source)}", _url(source))
    if best is None:
        return None
    value = best[0]
    return value, Evidence(
        "measured", f"GEMM ceiling {value:.3f} of peak on {gpu_name} ({dtype}) from {best[1]}", best[2]
    )


@cache
def conv_curve(gpu_name: str, dtype: str) -> Curve | None:
    """The GPU's convolutions on ``dtype`` as implicit GEMMs (points ``[m, n, k]``: output positions,
    output channels, input channels times the kernel's size): per measured ``k``, the fraction of
    peak reached divided by its wave factor (the best such shape at that ``k``), as a curve over
    ``k``. cuDNN's implicit-GEMM kernels gain with the reduction length far more than cuBLAS's GEMMs
    (an H200 in TF32: 0.06 at 3 channels, ``k`` = 81, 0.33 at 96, 0.73 at 512). A shape of fewer
    output tiles than the GPU has SMs is left out: cuDNN runs it with smaller tiles than the wave
    factor assumes, so its quotient overstates the rate at its ``k`` (an H200's 96 channels at 60x104,
    49 tiles: 0.47 against 0.33 at 480x832). A same-chip GPU (:data:`SAME_CHIP`) takes the curve
    (``derived``); another GPU takes the measured GPU's convolutions relative to its GEMM model
    (:func:`_conv_against_gemm`); ``None`` where no GPU has convolutions measured on ``dtype``."""
    table = gpus()
    gpu = table[gpu_name]
    entries = [e for e in data().get("convolution", ()) if e["gpu"] == gpu_name and e["dtype"] == dtype]
    if not entries:
        for other in same_chip("convolution", gpu_name, dtype):
            found = conv_curve(other, dtype)
            if found is not None:
                how = f"no convolution measurement on {gpu_name}: {other}'s ({gpu.architecture}) curve; "
                return Curve(found.points, Evidence("derived", how + found.evidence.how, found.evidence.url))
        return _conv_against_gemm(gpu_name, dtype)
    peak = _peak_tflops(gpu, dtype)
    best: dict[int, float] = {}
    for e in entries:
        for m, n, k, tflops in e["points"]:
            if _tiles(gpu, m, n) < gpu.sm_count:  # less than a wave: cuDNN picks smaller tiles (see above)
                continue
            value = tflops / peak / wave_fraction(gpu, 1, m, n)
            best[k] = max(best.get(k, 0.0), value)
    points = tuple(sorted(best.items()))
    shares = ", ".join(f"{v:.2f} at k {k:,}" for k, v in points)
    how = f"convolutions on {gpu_name} ({dtype}), fraction of peak over the wave factor by k: {shares}; "
    return Curve(points, Evidence("measured", how + _source(entries[0]["source"]), _url(entries[0]["source"])))


def _conv_against_gemm(gpu_name: str, dtype: str) -> Curve | None:
    """The convolutions of a GPU with none measured on ``dtype`` (nor on its chip): a measured GPU's curve (the
    first by name with a GEMM ceiling on ``dtype``) as a share of that GPU's GEMM model at the same ``k``, times
    this GPU's GEMM model: the curve times the ratio of the two GEMM ceilings (the models' ``k / (k + K_HALF)``
    cancel), this GPU's own measured ceiling on ``dtype`` as its matrix products run, else its cited convolution
    efficiency (:func:`hybrid.hardware.default_efficiency`). cuDNN's implicit-GEMM kernels fall short of a GEMM
    of the same ``k`` by a share that grows as ``k`` shrinks (an H200 in bfloat16: 0.41 of its GEMM model at 96
    channels, ``k`` = 2,592; 0.87-0.91 at 384 channels and more, 0.64-0.84 in TF32), which the GEMM model alone
    does not carry. Only a GPU of the measured one's vendor (its convolution library: cuDNN, MIOpen) takes it;
    ``None`` where no such GPU has them measured."""
    table = gpus()
    measured = sorted({e["gpu"] for e in data().get("convolution", ()) if e["dtype"] == dtype and e["gpu"] != gpu_name
                       and e["gpu"] in table and table[e["gpu"]].vendor == table[gpu_name].vendor})  # fmt: skip
    for other in measured:
        curve, ceiling = conv_curve(other, dtype), gemm_ceiling(other, dtype)
        if curve is None or curve.evidence.kind != "measured" or ceiling is None:
            continue
        own = gemm_ceiling(gpu_name, dtype)
        base = own[0] if own else default_efficiency(gpu_name).classes["convolution"].value
        named = f"GEMM ceiling on {dtype}" if own else f"cited convolution efficiency (no GEMM ceiling on {dtype})"
        how = (
            f"no convolution measurement on {gpu_name} or its chip: {other}'s measured curve times {gpu_name}'s "
            f"{named} {base:.3f} over {other}'s GEMM ceiling {ceiling[0]:.3f}; "
        )
        points = tuple((k, v * base / ceiling[0]) for k, v in curve.points)
        return Curve(points, Evidence("derived", how + curve.evidence.how, curve.evidence.url))
    return None


@cache
def memory_fraction(gpu_name: str) -> tuple[float, Evidence] | None:
    """The fraction of the datasheet DRAM bandwidth the GPU's largest measured memory-bound kernel
    reaches (a copy or a streaming elementwise op; bytes read plus written); ``None`` where it has
    no measurement (the class efficiency of the cited defaults stands)."""
    gpu = gpus()[gpu_name]
    points = [(int(b), float(gbs), e["source"], e.get("op", "")) for e in data()["memory"] if e["gpu"] == gpu_name
              for b, gbs in e["points"]]  # fmt: skip
    if not points:
        return None
    nbytes, gbs, source, op = max(points)
    value = min(gbs / gpu.memory_bandwidth_gbs, 1.0)
    how = f"{op} of {nbytes:,} bytes at {gbs:g} GB/s on {gpu_name}, {value:.3f} of {gpu.memory_bandwidth_gbs:g} GB/s"
    return value, Evidence("measured", f"{how}; {_source(source)}", _url(source))


MEMORY_CATEGORIES: tuple[str, ...] = ("elementwise", "norm", "reduction", "movement")
"""The rows' memory-bound categories that measured op families rate (the others run at the streaming rate)."""


@cache
def memory_ratios(gpu_name: str) -> tuple[dict[str, float], Evidence] | None:
    """Per memory-bound category of the rows, the share of the GPU's streaming rate
    (:func:`memory_fraction`) its ops reach: the median over the category's measured ops (a broadcast
    multiply, a layer norm, a dtype cast, a transpose copy run below a plain add), at most 1. A GPU
    without op measurements takes a same-architecture GPU's shares (``derived``): both are shares of
    each GPU's own streaming rate. ``None`` where neither exists (every op at the streaming rate)."""
    table = gpus()
    gpu = table[gpu_name]
    candidates = [gpu_name, *sorted(
        {e["gpu"] for e in data().get("memory_ops", ()) if e["gpu"] in table and e["gpu"] != gpu_name
         and table[e["gpu"]].architecture == gpu.architecture}
    )]  # fmt: skip
    for name in candidates:
        own = [e for e in data().get("memory_ops", ()) if e["gpu"] == name]
        stream = memory_fraction(name)
        if not own or stream is None:
            continue
        gbs = stream[0] * table[name].memory_bandwidth_gbs
        ratios = {}
        for category in MEMORY_CATEGORIES:
            rates = [float(p[1]) for e in own if e["category"] == category for p in e["points"]]
            if rates:
                ratios[category] = min(statistics.median(rates) / gbs, 1.0)
        shares = ", ".join(f"{c} {v:.3f}" for c, v in ratios.items())
        source = own[0]["source"]
        if name == gpu_name:
            how = f"medians of {len(own)} measured ops on {name} against its {gbs:,.0f} GB/s streaming rate: {shares}"
            return ratios, Evidence("measured", f"{how}; {_source(source)}", _url(source))
        how = f"no op measurements on {gpu_name}: {name}'s ({gpu.architecture}) shares of its streaming rate: {shares}"
        return ratios, Evidence("derived", f"{how}; {_source(source)}", _url(source))
    return None


@cache
def launch_seconds(gpu_name: str) -> tuple[float, Evidence]:
    """Host seconds per launched kernel in eager PyTorch: the GPU's own measurement, else the
    A100's (``derived``)."""
    entries = [e for e in data()["launch"] if e["framework"] == "pytorch-eager" and e.get("kind") == "measured"]
    own = [e for e in entries if e["gpu"] == gpu_name]
    e = own[0] if own else next(e for e in entries if e["gpu"] == "a100-80gb")
    kind = "measured" if own else "derived"
    how = f"eager PyTorch, {e['seconds_per_kernel'] * 1e6:g} us per kernel on {e['gpu']}; {_source(e['source'])}"
    return float(e["seconds_per_kernel"]), Evidence(kind, how, _url(e["source"]))


@dataclass(frozen=True)
class ShapeRates:
    """Per-shape efficiencies on one GPU and tensor path, for the classes they cover (the others
    keep their one class efficiency): what :func:`hybrid.timing.terms_time` asks per FLOP term."""

    gpu: GPU
    gemm_ceiling: float | None
    """``e_max`` of matrix products (``None``: the class efficiency is the ceiling)."""
    conv_curve: Curve | None
    """Convolutions' efficiency over the wave factor by ``k`` (``None``: the class efficiency is the ceiling)."""
    matmul_dtype: str
    """The data's dtype of the matrix products' path (``float32``: the CUDA cores, their own tile)."""
    attention: Curve | None
    classes: frozenset[str]
    ident: tuple[str, str, str, frozenset[str]] = ("", "", "", frozenset())
    """``(gpu, tensor path, kernel, classes)``: what the rates are of (the memo key of timed calls)."""
    _memo: dict[tuple[str, tuple[int, ...], float], float] = field(default_factory=dict, compare=False, repr=False)

    def efficiency(self, cls: str, dims: tuple[int, ...], base: float) -> float:
        """The efficiency of a ``cls`` op of kernel shape ``dims``; ``base`` the class's own."""
        key = (cls, dims, base)
        e = self._memo.get(key)
        if e is None:
            e = self._memo[key] = self._efficiency(cls, dims, base)
        return e

    def _efficiency(self, cls: str, dims: tuple[int, ...], base: float) -> float:
        if cls not in self.classes or len(dims) != 4:
            return base
        if cls == "attention":
            return base if self.attention is None else self.attention.at(dims[2])
        if cls == "convolution" and self.conv_curve is not None:
            return max(self.conv_curve.at(dims[3]) * wave_fraction(self.gpu, *dims[:3]), 1e-6)
        ceiling = self.gemm_ceiling if cls == "matmul" else None  # a convolution without a curve: its class's
        dtype = self.matmul_dtype if cls == "matmul" else "bfloat16"
        return max((base if ceiling is None else ceiling) * shape_factor(self.gpu, dims, dtype), 1e-6)

    def key(self) -> tuple[str, str, str, frozenset[str]]:
        """What the rates depend on (memo keys of timed calls)."""
        return self.ident


@cache
def shape_rates(gpu: GPU, path: str, kernel: str, classes: frozenset[str], matmul_path: str = "") -> ShapeRates:
    """The :class:`ShapeRates` of ``gpu`` on tensor ``path`` (``bf16``, ``tf32``, ...) with attention
    run by ``kernel``, for ``classes``; the matrix products on ``matmul_path`` where it is given (FP8
    linear layers: their GEMM ceiling is the GPU's FP8 one)."""
    dtype = TENSOR_DTYPES.get(path, "bfloat16")
    matmul_dtype = TENSOR_DTYPES.get(matmul_path or path, "bfloat16")
    ceiling = gemm_ceiling(gpu.name, matmul_dtype)
    conv = conv_curve(gpu.name, dtype)
    curve = attention_curve(kernel, gpu.name) if dtype == "bfloat16" else None
    ident = (gpu.name, f"{path}/{matmul_path}" if matmul_path else path, kernel, classes)
    return ShapeRates(gpu, ceiling[0] if ceiling else None, conv, matmul_dtype, curve, classes, ident)


@cache
def evidence(gpu: GPU, kernel: str, key_length: int) -> dict[str, dict[str, Any]]:
    """Where the bf16 kernel-aware rates of ``gpu`` come from, per op class that has them
    (``matmul``: its ceiling; ``attention``: ``kernel``'s curve, its value at ``key_length``),
    as :func:`hybrid.optimise.provenance` entries marked ``by_shape`` (memoised: copy before changing)."""
    out: dict[str, dict[str, Any]] = {}
    ceiling = gemm_ceiling(gpu.name, "bfloat16")
    tm, tn = tile(gpu)
    if ceiling:
        out["matmul"] = {
            "value": ceiling[0],
            **ceiling[1].to_dict(),
            "by_shape": f"the ceiling times waves(m, n) over {gpu.sm_count} SMs with {tm}x{tn} tiles, times "
            f"k / (k + {K_HALF})",
        }
    conv = conv_curve(gpu.name, "tfloat32")  # the VAE's float32 convolutions (cuDNN's TF32 by default)
    if conv:
        out["convolution"] = {
            "value": max(v for _, v in conv.points),
            **conv.evidence.to_dict(),
            "by_shape": "the TF32 curve by the implicit GEMM's k (float32 convolutions; bfloat16's where a stage runs "
            f"them in bfloat16), log-linear between measured k, times waves(m, n) over {gpu.sm_count} SMs",
        }
    curve = attention_curve(kernel, gpu.name)
    if curve:
        out["attention"] = {
            "value": curve.at(key_length),
            **curve.evidence.to_dict(),
            "by_shape": f"{kernel}'s measured curve by key length (the value: at {key_length:,} keys)",
        }
    return out


COLLECTIVE_NAMES: Mapping[str, str] = {
    "all_to_all_single": "all_to_all",
    "all_gather_into_tensor": "all_gather",
    "reduce_scatter_tensor": "reduce_scatter",
    "all_reduce": "all_reduce",
    "send_recv": "sendrecv",
}
"""The data's name (nccl-tests' ``alltoall_perf``, ``all_gather_perf``, ... without ``_perf``) of each
collective as the rows spell it (:data:`hybrid.ops.COLLECTIVES`; ``send_recv`` as :mod:`hybrid.comm`)."""

COLLECTIVE_KIN: Mapping[str, tuple[str, ...]] = {
    "all_gather": ("reduce_scatter", "all_reduce"),
    "reduce_scatter": ("all_gather", "all_reduce"),
    "all_reduce": ("reduce_scatter", "all_gather"),
}
"""Collectives that move the same bytes per unit of bus bandwidth, in order of preference: the ring
all-gather and reduce-scatter each send ``(P-1)/P`` of the buffer per rank, and a ring all-reduce is
one of each (nccl-tests' busbw factors ``(n-1)/n`` and ``2(n-1)/n`` put all three on one scale;
8x H200 at 16 GiB: all-gather 361.4, reduce-scatter 362.9, ring all-reduce 367.2 GB/s, ml-engineering
'SHARP'). An all-reduce that NCCL ran with NVLink SHARP (``NVLS``, reduced in the switch) is no kin
of the others. All-to-all and send/receive have none."""

LINK_FAMILIES: Mapping[str, tuple[str, ...]] = {
    "NVLink 3 + NVSwitch": ("a100-80gb", "a100-40gb", "a800-80gb"),
    "NVLink 4 + NVSwitch": ("h100-sxm", "h200", "h20", "h800"),
    "NVLink 5 + NVSwitch": ("b200", "b300", "gb200"),
    "PCIe, no peer-to-peer (GeForce)": ("rtx4090", "rtx4090d", "rtx5090"),
    "Infinity Fabric full mesh": ("mi300x", "mi325x"),
}
"""GPUs whose collectives cross the same kind of link (``gpu_link`` of ``gpus.json``), so that one's
achieved fraction of its per-direction link stands for another's: the same NVLink generation behind
NVSwitch (H800's and A800's links are fewer, not different), GeForce boards on PCIe that NVIDIA's
driver keeps from peer-to-peer (NCCL stages through host memory), the MI300X platform's mesh."""

LINK_CEILING = 1.2
"""The largest busbw a collective reaches as a fraction of the per-direction link it is normalised
by: NVLink SHARP all-reduce passes the link (480 of 450 GB/s on 8x H100/H200, ml-engineering
'SHARP': the switch reduces, so busbw counts bytes no link carried). An entry above it was measured
over a link ``gpus.json`` does not describe for its GPU (a pair of H100 PCIe joined by an NVLink
bridge against their PCIe link) and is not used."""


def nccl_size(collective: str, group_size: int, input_bytes: int) -> int:
    """nccl-tests' ``size`` of one call of ``collective`` (a :data:`COLLECTIVE_NAMES` key) on
    ``input_bytes`` per rank in a group of ``group_size``: the gathered output of a rank for
    ``all_gather_into_tensor`` (its input times the group: nccl-tests' ``AllGatherGetCollByteCount``
    sizes the receive buffer), the input of a rank for the others (``alltoall_perf`` and
    ``reduce_scatter_perf`` size the send buffer; ``all_reduce_perf`` one buffer; ``sendrecv_perf``
    the bytes sent)."""
    if collective not in COLLECTIVE_NAMES:
        raise ValueError(f"collective: unknown {collective!r}; valid: {', '.join(COLLECTIVE_NAMES)}")
    return input_bytes * group_size if collective == "all_gather_into_tensor" else input_bytes


def _link_family(gpu_name: str) -> str | None:
    return next((family for family, members in LINK_FAMILIES.items() if gpu_name in members), None)


def _nvls(entry: Mapping[str, Any]) -> bool:
    """Whether NCCL ran (or, the algorithm unstated, may have run) the all-reduce with NVLink SHARP."""
    algorithm = str(entry.get("algorithm", ""))
    return algorithm.startswith("NVLS") or (not algorithm and "NVLS" in str(entry.get("note", "")))


def _collective_entry(candidates: list[dict[str, Any]], ranks: int) -> dict[str, Any]:
    """Of entries of one GPU and collective: those of ``ranks``, else those of the rank count
    nearest in ratio (a tie to the larger); among them NCCL's own choice of algorithm before one an
    environment variable forced (``NCCL_...`` in its algorithm), then the most points, then the
    first in the data."""
    counts = {int(e["ranks"]) for e in candidates}
    best = min(counts, key=lambda r: (abs(math.log(r / ranks)), -r))
    same = [e for e in candidates if e["ranks"] == best]
    return min(same, key=lambda e: ("NCCL_" in str(e.get("algorithm", "")), -len(e["points"])))


@cache
def collective_fraction(
    gpu_name: str, collective: str, ranks: int, message_bytes: int
) -> tuple[float, Evidence] | None:
    """The bus bandwidth (nccl-tests' busbw) ``collective`` reaches among ``ranks`` ``gpu_name``s at
    ``message_bytes`` (nccl-tests' ``size``: :func:`nccl_size`), as a fraction of the GPU's
    per-direction ``gpu_link_gbs``: log-linear in size between measured sizes, flat beyond them.

    The curve, in order: this GPU's own of the collective, else of its kin (:data:`COLLECTIVE_KIN`;
    an NVLS all-reduce no kin); else the same from a GPU of its link family (:data:`LINK_FAMILIES`),
    as a fraction of that GPU's link (``derived``); ``None`` where none exists. Within one GPU and
    collective, the entry of ``ranks``, else of the nearest rank count (:func:`_collective_entry`),
    said in the evidence. Entries above :data:`LINK_CEILING` are left out."""
    name = COLLECTIVE_NAMES.get(collective)
    if name is None:
        raise ValueError(f"collective: unknown {collective!r}; valid: {', '.join(COLLECTIVE_NAMES)}")
    table = gpus()
    family = _link_family(gpu_name)
    others = sorted(g for g in LINK_FAMILIES.get(family, ()) if g != gpu_name) if family else []
    for other in (gpu_name, *others):
        if other not in table:
            continue
        link_gbs = table[other].gpu_link_gbs
        entries = [
            e for e in data()["collectives"]
            if e["gpu"] == other and max(p[1] for p in e["points"]) <= LINK_CEILING * link_gbs
        ]  # fmt: skip
        for kind in (name, *COLLECTIVE_KIN.get(name, ())):
            candidates = [e for e in entries if e["collective"] == kind and (kind == name or not _nvls(e))]
            if not candidates:
                continue
            e = _collective_entry(candidates, ranks)
            curve = Curve(tuple((int(s), float(b) / link_gbs) for s, b in e["points"]), Evidence("", ""))
            value = curve.at(message_bytes)
            parts = [f"{kind} busbw on {e['ranks']} x {other} ({e['link']})"]
            if kind != name:
                parts.append(f"no {name} measurement: its kin {kind} (the same bytes per unit of busbw)")
            if e["ranks"] != ranks:
                parts.append(f"no {ranks}-rank measurement: the nearest rank count, {e['ranks']}")
            if other != gpu_name:
                parts.append(f"no measurement on {gpu_name}: {other} of its link family ({family})")
            span = " to ".join(dict.fromkeys(f"{p[0]:,}" for p in (e["points"][0], e["points"][-1])))
            how = (
                f"{'; '.join(parts)}: {value:.3f} of {link_gbs:g} GB/s at {message_bytes:,} B "
                f"(measured {span} B, log-linear between, flat beyond); {_source(e['source'])}"
            )
            return value, Evidence("measured" if other == gpu_name else "derived", how, _url(e["source"]))
    return None


@dataclass(frozen=True)
class CollectiveRates:
    """Achieved bytes/s of the collectives among ``ranks`` GPUs by kind and message size
    (:func:`collective_fraction` of the GPU's per-direction link), ``default_bytes_per_s`` where the
    data have no curve for the kind: what :func:`hybrid.timing.terms_time` asks per collective term.
    Every collective of the job is taken to run over all ``ranks`` (a layout mixing Ulysses and ring
    runs each over a sub-group: its rank count then stands for the sub-group's)."""

    gpu: GPU
    ranks: int
    default_bytes_per_s: float
    _memo: dict[tuple[int, int], float] = field(default_factory=dict, compare=False, repr=False)

    def bytes_per_s(self, kind: int, sent_per_call: int) -> float:
        key = (kind, sent_per_call)
        rate = self._memo.get(key)
        if rate is None:
            rate = self._memo[key] = self._bytes_per_s(kind, sent_per_call)
        return rate

    def _bytes_per_s(self, kind: int, sent_per_call: int) -> float:
        name, p = COLLECTIVES[kind], self.ranks
        if p < 2 or sent_per_call <= 0:
            return self.default_bytes_per_s
        size = nccl_size(name, p, collective_input_bytes(name, p, sent_per_call))
        found = collective_fraction(self.gpu.name, name, p, size)
        return self.default_bytes_per_s if found is None else found[0] * self.gpu.gpu_link_gbs * 1e9

    def key(self) -> tuple[str, int, float]:
        return (self.gpu.name, self.ranks, self.default_bytes_per_s)


def collective_evidence(gpu: GPU, ranks: int, message_bytes: int = 1 << 26) -> dict[str, dict[str, Any]]:
    """Per collective kind the data have a curve for on ``gpu`` among ``ranks``: its fraction of the
    link at ``message_bytes`` (nccl-tests' size) and where it comes from."""
    out: dict[str, dict[str, Any]] = {}
    for name in COLLECTIVES:
        found = collective_fraction(gpu.name, name, ranks, message_bytes)
        if found is not None:
            out[name] = {"value": found[0], "at_bytes": message_bytes, **found[1].to_dict()}
    return out


@on_clear
def clear_caches() -> None:
    """Forget the rates worked out from the data (with :func:`hybrid.memo.clear_memos`: a cold start). The packaged
    file itself, like ``gpus.json`` and ``efficiency_defaults.json``, is read once per process."""
    for cached in (attention_curve, gemm_ceiling, conv_curve, memory_fraction, memory_ratios, launch_seconds,
                   shape_rates, evidence, collective_fraction):  # fmt: skip
        cached.cache_clear()
