"""Wan-VAE (diffusers ``AutoencoderKLWan``): its decoder is the ``vae_decode`` stage, its encoder
the ``vae_encode`` stage of the image-to-video and VACE pipelines.

Decoder architecture (module paths as in diffusers), ``dims = base_dim * [m[-1], m[-1], m[-2],
..., m[0]]`` = ``[384, 384, 384, 192, 96]`` for Wan2.1:

* ``post_quant_conv``: causal ``1x1x1`` conv ``z_dim -> z_dim`` over all latent frames at once.
* ``decoder``, run once per latent frame (a causal chunk loop with a feature cache of the last two
  frames for every ``3x3x3`` causal conv):
  - ``conv_in``: causal conv ``z_dim -> dims[0]``;
  - ``mid_block``: ``resnets.0`` -> ``attentions.0`` (single-head spatial attention per frame:
    RMS norm, ``to_qkv`` 1x1 conv, SDPA over ``H*W`` pixels, ``proj`` 1x1 conv) -> ``resnets.1``;
  - ``up_blocks.{i}``: ``num_res_blocks + 1`` residual blocks (RMS norm, SiLU, causal
    ``conv1``/``conv2``, 1x1x1 ``conv_shortcut`` when the width changes), then for ``i < 3`` an
    upsampler ``upsamplers.0``: ``upsample3d`` (causal ``time_conv`` ``(3,1,1)`` doubling channels
    -> frames x2 from the second chunk on, then nearest x2 + ``resample.1`` 3x3 conv halving
    channels) or ``upsample2d`` (spatial only); Wan2.1 upsamples in time in blocks 0 and 1;
  - ``norm_out`` -> SiLU -> ``conv_out``: causal conv ``dims[-1] -> 3``.

Latent frame 0 decodes to 1 video frame, every later latent frame to 4.

Encoder (``encode``), ``dims = base_dim * [1, *dim_mult]`` = ``[96, 96, 192, 384, 384]``, run once
per chunk of video frames (the first chunk 1 frame, every later one 4, with a feature cache):

* ``encoder.conv_in``: causal conv ``in_channels -> dims[0]``;
* ``encoder.down_blocks.{j}``, a flat list: per level ``num_res_blocks`` residual blocks, then for
  all but the last level a ``WanResample``: zero pad (right/bottom) + 3x3 stride-2 ``resample.1``
  per frame, and for ``downsample3d`` levels (``temperal_downsample``) from the second chunk on a
  ``time_conv`` ``(3,1,1)`` with stride 2 in time over the cached last frame and the chunk
  (4 frames -> 2 -> 1);
* ``encoder.mid_block`` (as the decoder's), ``norm_out`` -> SiLU -> ``conv_out`` to ``2 * z_dim``;
* ``quant_conv``: causal ``1x1x1`` conv ``2 z_dim -> 2 z_dim`` over all latent frames at once.

Cost model: one walk of the forward (:class:`_Walk`), building block by building block (causal
conv with its feature cache, RMS norm, residual block, attention, resample, the chunk loop), that
tells a :class:`Sink` every op (module path, op, category, FLOPs, bytes read and written, calls)
and every allocation and free. The rows that join the tracer, the FLOP groups, the roofline terms,
the report components and both activation peaks are sinks of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Any, ClassVar, TypeVar

from hybrid import ops
from hybrid.dtypes import F32, I64, nbytes
from hybrid.errors import InputError
from hybrid.memo import on_clear
from hybrid.rows import SDPA_OP as SDPA
from hybrid.rows import OpGroup
from hybrid.sinks import Peak, Sink
from hybrid.timing import Dims, Term, Terms, attention_dims, collective_dims, conv_dims

# --- Sinks: what a walk tells and what each output keeps of it (nothing here knows the VAE) -------------------------

_S = TypeVar("_S", bound="Sink")


class RowSink(Sink):
    """Every op as an :class:`~hybrid.rows.OpGroup` of one stage, bytes included: the rows that join
    the tracer's. A recorded block's rows replay under the module path the block recurs at."""

    def __init__(self, stage: str, path: str = "") -> None:
        self.stage, self.path = stage, path
        self.out: list[OpGroup] = []

    def op(
        self, module: str, op: str, category: str, read: int, written: int, flops: int = 0, calls: int = 1,
        component: str = "", dims: Dims = (),
    ) -> None:  # fmt: skip
        self.out.append(OpGroup(self.stage, module, op, category, flops, calls, 1, "", read, written, 0, dims))

    def record(self, path: str) -> RowSink:
        return type(self)(self.stage, path)

    def replay(self, recorded: RowSink, path: str) -> None:
        if path == recorded.path and self.stage == recorded.stage:
            self.out.extend(recorded.out)
        else:
            cut, stage = len(recorded.path), self.stage
            self.out.extend(g._replace(stage=stage, module=path + g.module[cut:]) for g in recorded.out)


class FlopRowSink(RowSink):
    """The ops with FLOPs, FLOPs only (no bytes): the FLOP groups."""

    def op(
        self, module: str, op: str, category: str, read: int, written: int, flops: int = 0, calls: int = 1,
        component: str = "", dims: Dims = (),
    ) -> None:  # fmt: skip
        if flops:
            self.out.append(OpGroup(self.stage, module, op, category, flops, calls))


class ComponentSink(Sink):
    """FLOPs summed by report component (``component_of(module, op)``), in order of first FLOPs."""

    def __init__(self, component_of: Callable[[str, str], str], path: str = "") -> None:
        self.component_of, self.path = component_of, path
        self.events: list[tuple[str, str, int]] = []
        """``(module, op, flops)`` of every op with FLOPs, all its calls."""

    def op(
        self, module: str, op: str, category: str, read: int, written: int, flops: int = 0, calls: int = 1,
        component: str = "", dims: Dims = (),
    ) -> None:  # fmt: skip
        if flops:
            self.events.append((module, op, flops * calls))

    @property
    def flops(self) -> dict[str, int]:
        """FLOPs by component, in order of first FLOPs."""
        out: dict[str, int] = {}
        for module, op, flops in self.events:
            name = self.component_of(module, op)
            out[name] = out.get(name, 0) + flops
        return out

    def record(self, path: str) -> ComponentSink:
        return ComponentSink(self.component_of, path)

    def replay(self, recorded: ComponentSink, path: str) -> None:
        cut = len(recorded.path)
        self.events.extend((path + module[cut:], op, flops) for module, op, flops in recorded.events)


class TermSink(Sink):
    """Roofline terms as the walk goes (:class:`hybrid.timing.Terms`): what sizing times. A recorded
    block is replayed reduced as :meth:`~hybrid.timing.Terms.freeze` would reduce it (:meth:`reduced`)."""

    def __init__(self) -> None:
        self.terms = Terms()
        self._reduced: list[Term] | None = None

    def op(
        self, module: str, op: str, category: str, read: int, written: int, flops: int = 0, calls: int = 1,
        component: str = "", dims: Dims = (),
    ) -> None:  # fmt: skip
        self.terms.append((category, flops * calls, (read + written) * calls, calls, dims))

    def reduced(self) -> list[Term]:
        """The terms so far with those of no FLOPs summed per category (in order of first): what
        :meth:`~hybrid.timing.Terms.freeze` makes of them, alone or among others."""
        if self._reduced is None:
            sums: dict[str, tuple[int, int]] = {}
            flop_terms = []
            for term in self.terms.rows:
                if term[1] or term[4]:
                    flop_terms.append(term)
                else:
                    moved, calls = sums.get(term[0], (0, 0))
                    sums[term[0]] = (moved + term[2], calls + term[3])
            self._reduced = flop_terms + [(c, 0, moved, calls, ()) for c, (moved, calls) in sums.items()]
        return self._reduced

    def record(self, path: str) -> TermSink:
        return TermSink()

    def replay(self, recorded: TermSink, path: str) -> None:
        self.terms.extend(recorded.reduced())


# --- The Wan VAE ----------------------------------------------------------------------------------------------------


def _causal_conv_params(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k + c_out


def _resblock_params(c_in: int, c_out: int) -> int:
    # norm1 gamma, conv1 3x3x3, norm2 gamma, conv2 3x3x3, optional 1x1x1 shortcut
    n = c_in + _causal_conv_params(c_in, c_out, 27) + c_out + _causal_conv_params(c_out, c_out, 27)
    if c_in != c_out:
        n += _causal_conv_params(c_in, c_out, 1)
    return n


def _attention_block_params(c: int) -> int:
    # norm gamma, to_qkv 1x1 conv2d c->3c, proj 1x1 conv2d c->c
    return c + (c * 3 * c + 3 * c) + (c * c + c)


def _mid_block_params(c: int) -> int:
    return 2 * _resblock_params(c, c) + _attention_block_params(c)


@dataclass(frozen=True)
class AutoencoderKLWanConfig:
    """``AutoencoderKLWan`` constructor arguments (diffusers names): the Wan2.1 VAE, or Wan2.2's with
    ``is_residual`` blocks, a ``decoder_base_dim`` of its own and a ``patch_size`` (2x2 pixels
    folded into channels before the encoder and unfolded after the decoder)."""

    base_dim: int = 96
    z_dim: int = 16
    dim_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attn_scales: tuple[float, ...] = ()
    temperal_downsample: tuple[bool, ...] = (False, True, True)
    dropout: float = 0.0
    in_channels: int = 3
    out_channels: int = 3
    scale_factor_temporal: int = 4
    scale_factor_spatial: int = 8
    decoder_base_dim: int | None = None
    is_residual: bool = False
    patch_size: int | None = None
    compute_dtype: str = "float32"
    """The dtype the module runs in: not a ``config.json`` field but the runtime's (``Runtime.compute_dtype``:
    diffusers' examples and the original code load the VAE in float32, LightX2V and DiffSynth in bfloat16), set
    on a workload's spec (:class:`hybrid.workload.Workload`). Its tensors are of this dtype, op for op."""
    use_tiling: bool = False
    """Whether ``encode`` and ``decode`` run tile by tile (``AutoencoderKLWan.enable_tiling()``, LightX2V's
    ``use_tiling_vae``): a runtime's choice (``Runtime.vae_tiling``), not a ``config.json`` field. A video wider
    or taller than one tile is encoded or decoded as overlapping spatial tiles, each through every frame with
    a fresh feature cache, blended at the seams (:meth:`_Walk.tiled_decode`, :meth:`_Walk.tiled_encode`)."""
    upcast_norm: bool = True
    """Whether each RMS norm normalises a float32 copy of a half-precision input and casts the result back
    (diffusers' ``WanRMS_norm``): a runtime's code, not a ``config.json`` field. The original Wan code's
    ``RMS_norm``, which LightX2V's and DiffSynth-Studio's VAEs copy, normalises in the input's dtype."""
    tile_sample_min_height: int = 256
    """Tile height in pixels (``AutoencoderKLWan.tile_sample_min_height``; in patched pixels for Wan2.2)."""
    tile_sample_min_width: int = 256
    tile_sample_stride_height: int = 192
    """Pixels from one tile to the next (``tile_sample_stride_height``): tiles overlap by the difference."""
    tile_sample_stride_width: int = 192

    COST_FREE_KEYS: ClassVar[frozenset[str]] = frozenset({"latents_mean", "latents_std", "clip_output"})
    """Keys of a published ``config.json`` that change no cost: the latents' normalisation constants."""
    RUNTIME_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {
            "compute_dtype",
            "use_tiling",
            "upcast_norm",
            "tile_sample_min_height",
            "tile_sample_min_width",
            "tile_sample_stride_height",
            "tile_sample_stride_width",
        }
    )
    """Fields a runtime sets, never a ``config.json``."""

    def __post_init__(self) -> None:
        if len(self.temperal_downsample) != len(self.dim_mult) - 1:
            raise ValueError(
                "temperal_downsample: needs len(dim_mult) - 1 = "
                f"{len(self.dim_mult) - 1} entries, got {len(self.temperal_downsample)}"
            )
        if self.attn_scales:
            raise ValueError(f"attn_scales: only [] (Wan2.1) is modelled, got {list(self.attn_scales)}")
        for axis in ("height", "width"):
            tile, stride = getattr(self, f"tile_sample_min_{axis}"), getattr(self, f"tile_sample_stride_{axis}")
            if not 1 <= stride <= tile:
                raise ValueError(
                    f"tile_sample_stride_{axis}: {stride} is invalid; valid: 1 to tile_sample_min_{axis} ({tile})"
                )
        # what the VAE does: 2 ** sum(temperal_downsample) in time, 2 ** len(temperal_downsample) in space
        # times the patch folded into channels
        t, s = 2 ** sum(self.temperal_downsample), 2 ** len(self.temperal_downsample) * (self.patch_size or 1)
        if (self.scale_factor_temporal, self.scale_factor_spatial) != (t, s):
            raise ValueError(
                f"scale_factor_temporal/scale_factor_spatial: {self.scale_factor_temporal}/{self.scale_factor_spatial} "
                f"do not match temperal_downsample {list(self.temperal_downsample)}; valid: {t}/{s}"
            )

    @property
    def temperal_upsample(self) -> tuple[bool, ...]:
        """Decoder's time-upsampling flags: ``temperal_downsample`` reversed."""
        return tuple(reversed(self.temperal_downsample))

    @property
    def decoder_dims(self) -> list[int]:
        """``b * [m[-1]] + b * reversed(m)`` (``b = decoder_base_dim or base_dim``): widths through the decoder."""
        m, b = self.dim_mult, self.decoder_base_dim or self.base_dim
        return [b * u for u in [m[-1], *reversed(m)]]

    @property
    def upsample_out(self) -> int:
        """What a decoder resample conv divides the width by: 2 (Wan2.1), 1 (residual blocks)."""
        return 1 if self.is_residual else 2

    def decoder_up_block_dims(self) -> list[tuple[int, int, str | None]]:
        """``(in_dim, out_dim, upsample_mode)`` of each ``decoder.up_blocks.{i}``."""
        dims = self.decoder_dims
        out: list[tuple[int, int, str | None]] = []
        n = len(self.dim_mult)
        for i, (c_in, c_out) in enumerate(pairwise(dims)):
            if i > 0:
                c_in //= self.upsample_out  # the previous block's resample conv halved the width (Wan2.1)
            mode: str | None = None
            if i != n - 1:
                mode = "upsample3d" if self.temperal_upsample[i] else "upsample2d"
            out.append((c_in, c_out, mode))
        return out

    def decoder_num_parameters(self) -> int:
        """Parameters of ``decoder`` plus ``post_quant_conv`` (what ``decode`` runs)."""
        dims = self.decoder_dims
        n = _causal_conv_params(self.z_dim, dims[0], 27) + _mid_block_params(dims[0])
        for c_in, c_out, mode in self.decoder_up_block_dims():
            for j in range(self.num_res_blocks + 1):
                n += _resblock_params(c_in if j == 0 else c_out, c_out)
            if mode is not None:
                c_up = c_out // self.upsample_out
                n += c_out * c_up * 9 + c_up  # resample.1: 3x3 conv2d c -> c/2 (residual: c -> c)
                if mode == "upsample3d":
                    n += _causal_conv_params(c_out, 2 * c_out, 3)  # time_conv (3,1,1)
        last = dims[-1]
        n += last + _causal_conv_params(last, self.out_channels, 27)  # norm_out, conv_out
        return n + _causal_conv_params(self.z_dim, self.z_dim, 1)  # post_quant_conv

    def encoder_num_parameters(self) -> int:
        """Parameters of ``encoder`` plus ``quant_conv`` (encode path; not run for T2V)."""
        dims = [self.base_dim * u for u in [1, *self.dim_mult]]
        n = _causal_conv_params(self.in_channels, dims[0], 27)
        n_stages = len(self.dim_mult)
        for i, (c_in, c_out) in enumerate(pairwise(dims)):
            for _ in range(self.num_res_blocks):
                n += _resblock_params(c_in, c_out)
                c_in = c_out
            if i != n_stages - 1:
                n += c_out * c_out * 9 + c_out  # resample.1: 3x3 conv2d, stride 2
                if self.temperal_downsample[i]:
                    n += _causal_conv_params(c_out, c_out, 3)
        last = dims[-1]
        n += _mid_block_params(last) + last + _causal_conv_params(last, 2 * self.z_dim, 27)
        return n + _causal_conv_params(2 * self.z_dim, 2 * self.z_dim, 1)

    def num_parameters(self) -> int:
        """Parameters of the whole ``AutoencoderKLWan`` (encoder + decoder)."""
        return self.encoder_num_parameters() + self.decoder_num_parameters()

    def to_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``diffusers.AutoencoderKLWan``."""
        # diffusers concatenates these lists (``[m[-1]] + m[::-1]``): tuples would not do
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items() if k not in self.RUNTIME_FIELDS
        }

    @property
    def itemsize(self) -> int:
        """Bytes per element of its tensors (:attr:`compute_dtype`)."""
        return nbytes(self.compute_dtype)

    @property
    def diffusers_ops(self) -> bool:
        """Whether diffusers' ``AutoencoderKLWan`` (what the tracer builds) runs this VAE's ops: in float32 every
        code's do; in half precision only with diffusers' float32 norms."""
        return self.itemsize >= F32 or self.upcast_norm


# Wan-AI/Wan2.1-T2V-{1.3B,14B}-Diffusers vae/config.json (both ship the same VAE)
WAN21_VAE = AutoencoderKLWanConfig()
# Wan-AI/Wan2.2-TI2V-5B-Diffusers vae/config.json: residual blocks, 2x2 patches, 48 latent channels, /16 x /4
WAN22_VAE = AutoencoderKLWanConfig(
    base_dim=160,
    decoder_base_dim=256,
    z_dim=48,
    in_channels=12,
    out_channels=12,
    is_residual=True,
    patch_size=2,
    scale_factor_spatial=16,
)


STAGE = "vae_decode"
ENCODE_STAGE = "vae_encode"
CONV = "aten.convolution"
K3 = (3, 3, 3)
K1 = (1, 1, 1)
# bytes per element (hybrid.dtypes): the VAE runs in float32 (diffusers' example); nearest-exact indices
CACHE_T = 2
"""Frames a causal conv keeps of its input for the next chunk (``CACHE_T`` in diffusers)."""

_Slot = tuple[int | str | None, int]
"""A feature-cache slot: the frames it holds (``None`` before the first chunk, ``"Rep"`` for an
``upsample3d`` that has run once) and their bytes."""
_State = TypeVar("_State", int, "int | str | None")
"""What an op that reads the feature cache is told it holds (:meth:`_Walk.states`): frames, or a
slot's marker."""
_R = TypeVar("_R")


def component(module: str, op: str) -> str:
    """The report component of a VAE-decode row (analytic or traced)."""
    if ".attentions." in module:
        return "attention_core" if op == SDPA else "attention_projections"
    if ".upsamplers." in module or ".upsampler." in module:
        return "upsample_convs"
    if op == CONV:
        return "causal_convs"
    return "other"


def encode_component(module: str, op: str) -> str:
    """The report component of a VAE-encode row (analytic or traced)."""
    if ".attentions." in module:
        return "attention_core" if op == SDPA else "attention_projections"
    if ".resample." in module or module.endswith(".time_conv"):
        return "downsample_convs"
    if op == CONV:
        return "causal_convs"
    return "other"


def _kept_frames(t: int, cached: bool) -> tuple[int, int]:
    """What a causal conv keeps of a ``t``-frame input for the next chunk: ``x[:, :, -CACHE_T:].clone()``
    and, while that is under ``CACHE_T`` and an earlier chunk left a cache (``cached``), one more
    frame joined in front by a ``cat`` (the cache's last frame, or zeros after a first chunk that
    left ``"Rep"``). Returns ``(frames cloned, frames kept)``."""
    cloned = t if t < CACHE_T else CACHE_T
    return cloned, cloned + 1 if cloned < CACHE_T and cached else cloned


def _ignore(nbytes: int) -> None:
    pass


def _tile_sizes(size: int, tile: int, stride: int) -> list[int]:
    """The sizes of the tiles ``x[..., i : i + tile]`` for ``i in range(0, size, stride)`` along one axis."""
    return [min(tile, size - i) for i in range(0, size, stride)]


def _seams(cfg: AutoencoderKLWanConfig, ratio: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The blend extents (tile minus stride) and the strides, ``(height, width)``, of a tiled call whose tiles'
    output is the tiled input divided by ``ratio`` (a decode's patch, an encode's compression)."""
    extent = (cfg.tile_sample_min_height // ratio - cfg.tile_sample_stride_height // ratio,
              cfg.tile_sample_min_width // ratio - cfg.tile_sample_stride_width // ratio)  # fmt: skip
    return extent, (cfg.tile_sample_stride_height // ratio, cfg.tile_sample_stride_width // ratio)


_Blocks = dict[tuple[Any, ...], tuple[Sink, Any, list[_Slot]]]
_BLOCKS: dict[tuple[type[Sink], AutoencoderKLWanConfig, int], _Blocks] = {}
"""The blocks :meth:`_Walk.memo` has recorded, by sink kind, config and batch, then by block, shapes,
runs and the cache slots read: their events, what they returned and the slots they left."""
SKIP_ALIKE_CHUNKS = True
"""Whether the peak's walk skips the chunks between the third and the last (:meth:`_Walk.chunks`);
off, it walks every chunk (the tests compare the two)."""
_MAX_BLOCKS = 16384
"""Recorded blocks kept at most per sink kind, config and batch (a long sweep starts over past it)."""


class _Walk:
    """``AutoencoderKLWan._decode`` or ``_encode`` walked once at the level of shapes, telling
    :attr:`sink` every op and every allocation and free (float32 tensors, sizes in bytes) in the
    order the code makes them: inside a chunk each caller holds its input while the callee runs,
    and temporaries die as Python drops them; the feature cache of every causal conv (:attr:`cache`)
    persists across chunks.

    Each block returns the bytes of the tensor it makes; the caller frees it when Python would.
    Blocks met again with the same shapes, runs and cache slots are replayed (:meth:`memo`)."""

    def __init__(self, cfg: AutoencoderKLWanConfig, batch: int, sink: Sink) -> None:
        self.cfg, self.b = cfg, batch
        self.f = cfg.itemsize
        """Bytes per element of the module's tensors (its :attr:`~AutoencoderKLWanConfig.compute_dtype`)."""
        self.attach(sink)
        self.seen = _BLOCKS.setdefault((type(sink), cfg, batch), {})
        """The blocks recorded for this walk's sink kind, config and batch (:meth:`memo`)."""
        self.cache: list[_Slot] = []
        self.idx = 0
        self.times = 1
        """How many times each op being walked runs: in a folded walk the second chunk stands for
        all the later ones, and an encode walked once for several identical encodes."""
        self.later = 0
        """Of :attr:`times`, the runs of the chunks after the second, folded into the second's walk:
        they read full caches where the second reads the first's (0 outside that walk)."""

    # -- events --

    def attach(self, sink: Sink) -> None:
        """Tell ``sink`` from now on (only the events it keeps)."""
        self.sink = sink
        self.tell = sink.op if sink.ops else None
        self.made = sink.alloc if sink.memory else None
        self.free: Callable[[int], None] = sink.free if sink.memory else _ignore
        """Storages of this many bytes dropped."""

    def op(
        self, module: str, op: str, category: str, flops: int, read: int, written: int, calls: int = 1,
        alloc: bool = True, dims: Dims = (),
    ) -> int:  # fmt: skip
        """``op`` run ``calls`` times (each of :attr:`times`); with ``alloc`` its output is allocated
        (``dims``: its kernel shape, :data:`hybrid.timing.Dims`). Returns the bytes it writes per call."""
        if self.tell is not None:
            self.tell(module, op, category, read, written, flops, calls * self.times, dims=dims)
        if alloc and self.made is not None:
            self.made(written)
        return written

    def alloc(self, nbytes: int) -> int:
        if self.made is not None:
            self.made(nbytes)
        return nbytes

    def memo(self, key: tuple[Any, ...], reads: int | None, path: str, block: Callable[[], _R]) -> _R:
        """``block()`` of the block at module ``path``, its events recorded once per ``key``, runs and
        the ``reads`` cache slots from :attr:`idx` (``None``: all) and replayed after, under the path
        it is met at, in this walk and the next ones (:data:`_BLOCKS`): a replay also leaves the
        slots the block left, and returns what it returned."""
        sink = self.sink
        i, cache = self.idx, self.cache
        full = (key, self.times, self.later, *cache[i : None if reads is None else i + reads])
        seen = self.seen.get(full)
        if seen is None:
            if len(self.seen) >= _MAX_BLOCKS:
                self.seen.clear()
            self.attach(sink.record(path))
            value = block()
            seen = self.seen[full] = (self.sink, value, cache[i : self.idx])
            self.attach(sink)
        else:
            cache[i : i + len(seen[2])] = seen[2]
            self.idx = i + len(seen[2])
        sink.replay(seen[0], path)
        return seen[1]

    def slot(self) -> _Slot:
        if self.idx == len(self.cache):
            self.cache.append((None, 0))
        return self.cache[self.idx]

    def states(self, now: _State, full: _State) -> tuple[tuple[_State, int], ...]:
        """The cache states an op that reads the cache sees, with how many of :attr:`times` runs see
        each: ``now`` (what the cache holds) and, in the second chunk's folded walk, ``full`` for
        the later chunks' runs (what this chunk leaves there: every chunk from the second on leaves
        the same). Only additive sinks see a folded walk: their allocations do not matter."""
        if not self.later:
            return ((now, self.times),)
        return ((now, self.times - self.later), (full, self.later))

    # -- building blocks --

    def causal_conv(
        self, module: str, c_in: int, c_out: int, kernel: tuple[int, int, int], t: int, h: int, w: int,
        cached: int = 0, pad: bool = True, stride_t: int = 1, full: int | None = None,
    ) -> int:  # fmt: skip
        """``WanCausalConv3d`` on a ``t``-frame input the caller holds: the ``cached`` frames
        concatenated in front, zero padding (2 * p_t in front, p_h, p_w; none for the encoder's
        stride-2 time conv), the convolution. ``full``: the frames cached for the later chunks' runs
        (:meth:`states`)."""
        kt, kh, kw = kernel
        pt, ph, pw = (2 * (kt // 2), kh // 2, kw // 2) if pad else (0, 0, 0)
        b = self.b
        # cached frames take the front padding's place
        padded = b * c_in * (t + pt) * (h + 2 * ph) * (w + 2 * pw) * self.f
        times, padding = self.times, 0
        for frames, runs in self.states(cached, cached if full is None else full):
            self.times, n = runs, b * c_in * (t + (frames if pt else 0)) * h * w * self.f
            cat = self.op(module, "aten.cat", "movement", 0, n, n) if frames and pt else 0
            padding = self.op(module, "aten.constant_pad_nd", "movement", 0, n, padded)
            self.free(cat)
        self.times = times
        t_out = (t + pt - kt) // stride_t + 1
        flops = ops.conv3d(b, c_in, c_out, kernel, (t_out, h, w))
        weights = (c_out * c_in * kt * kh * kw + c_out) * self.f
        out = self.op(module, CONV, "conv", flops, padded + weights, b * c_out * t_out * h * w * self.f,
                      dims=conv_dims(b, c_in, c_out, kernel, (t_out, h, w)))  # fmt: skip
        self.free(padding)
        return out

    def cached_conv(self, owner: str, module: str, c_in: int, c_out: int, t: int, h: int, w: int) -> int:
        """A 3x3x3 causal conv fed from the feature cache (the decoder's and each residual block's):
        ``x[:, :, -CACHE_T:].clone()``, topped up with the previous chunk's last frame (the frames the
        next chunk's conv will read before its own), the conv over the cached frames and ``x``, the
        cache swapped."""
        b, hw = self.b, h * w
        frames, old = self.slot()
        cloned, kept = _kept_frames(t, frames is not None)
        frame = b * c_in * hw * self.f
        keep = self.op(owner, "aten.clone", "movement", 0, cloned * frame, cloned * frame)
        if kept > cloned:
            wider = self.op(owner, "aten.cat", "movement", 0, kept * frame, kept * frame)
            self.free(keep)
            keep = wider
        cached = frames if isinstance(frames, int) else 0
        out = self.causal_conv(module, c_in, c_out, K3, t, h, w, cached, full=kept)
        self.free(old)
        self.cache[self.idx] = (kept, keep)
        self.idx += 1
        return out

    def rms_norm(self, module: str, c: int, positions: int) -> int:
        """``WanRMS_norm`` of an input the caller holds: ``F.normalize`` over channels (the vector norm and
        its clamp, one value per position, then ``x / denom``), then scale, gamma, bias. In float32 the live
        bytes above the input run ``s, 2s, s, s + n, n, 2n, 3n, 2n, 3n, n``; a bfloat16 module normalises a
        float32 copy (``x.float()``, dropped once normalised) and casts the result back (``.to(x.dtype)``) where
        its code does (:attr:`~AutoencoderKLWanConfig.upcast_norm`)."""
        n, s = self.b * c * positions * self.f, self.b * positions * self.f
        low = self.f < F32 and self.cfg.upcast_norm
        n32, s32 = (self.b * c * positions * F32, self.b * positions * F32) if low else (n, s)
        up = self.op(module, "aten._to_copy", "movement", 0, n, n32) if low else 0
        norm = self.op(module, "aten.linalg_vector_norm", "reduction", 0, n32, s32)
        denom = self.op(module, "aten.clamp_min", "elementwise", 0, s32, s32)
        self.free(norm)
        x = self.op(module, "aten.div", "elementwise", 0, 2 * n32, n32)
        self.free(denom)
        if low:
            self.free(up)
            x32, x = x, self.op(module, "aten._to_copy", "movement", 0, n32, n)
            self.free(x32)
        scaled = self.op(module, "aten.mul", "elementwise", 0, n, n)
        gamma = self.op(module, "aten.mul", "elementwise", 0, n + c * self.f, n)
        self.free(scaled)
        out = self.op(module, "aten.add", "elementwise", 0, n, n)
        self.free(gamma + x)
        return out

    def norm_silu(self, norm: str, silu: str, c: int, positions: int, x: int) -> int:
        """RMS norm, then SiLU, of an input of ``x`` bytes this block made (0: the caller's), freed
        once normalised; returns the SiLU's output."""
        a = self.rms_norm(norm, c, positions)
        self.free(x)
        n = self.b * c * positions * self.f
        s = self.op(silu, "aten.silu", "elementwise", 0, n, n)
        self.free(a)
        return s

    def resblock(self, m: str, c_in: int, c_out: int, t: int, h: int, w: int) -> int:
        """``WanResidualBlock`` (once per shapes, runs and cache slots in a walk: :meth:`memo`)."""
        return self.memo(("resblock", c_in, c_out, t, h, w), 2, m, lambda: self._resblock(m, c_in, c_out, t, h, w))

    def _resblock(self, m: str, c_in: int, c_out: int, t: int, h: int, w: int) -> int:
        """The 1x1x1 ``conv_shortcut`` when the width changes; twice RMS norm, SiLU and a cached 3x3x3
        conv; the residual sum."""
        shortcut = self.causal_conv(f"{m}.conv_shortcut", c_in, c_out, K1, t, h, w) if c_in != c_out else 0
        x, c, p = 0, c_in, t * h * w
        for norm, conv in (("norm1", "conv1"), ("norm2", "conv2")):
            s = self.norm_silu(f"{m}.{norm}", f"{m}.nonlinearity", c, p, x)
            x, c = self.cached_conv(m, f"{m}.{conv}", c, c_out, t, h, w), c_out
            self.free(s)
        n = self.b * c_out * p * self.f
        out = self.op(m, "aten.add", "elementwise", 0, 2 * n, n)
        self.free(x + shortcut)
        return out

    def attention(self, m: str, c: int, t: int, h: int, w: int) -> int:
        """``WanAttentionBlock``: single-head attention over the ``h * w`` pixels of each frame. Its
        allocations above the input: the norm (its high ``3n``, its output ``n``), ``to_qkv``
        (``3n``; the norm's output freed), q, k and v made contiguous (``3n``; ``to_qkv`` freed),
        the kernel (a math kernel's own allocations on top) and its output, ``proj`` (the kernel's
        output freed), ``+ identity`` (``proj`` and q, k, v freed): the high is ``6n``."""
        bt, hw = self.b * t, h * w
        n = bt * c * hw * self.f
        a = self.rms_norm(f"{m}.norm", c, t * hw)
        conv = ops.conv2d(bt, c, 3 * c, (1, 1), (h, w))
        qkv = self.op(f"{m}.to_qkv", CONV, "conv", conv, n + (3 * c * c + 3 * c) * self.f, 3 * n,
                      dims=conv_dims(bt, c, 3 * c, (1, 1), (h, w)))  # fmt: skip
        q = self.op(m, "aten.clone", "movement", 0, 3 * n, 3 * n)
        self.free(qkv)
        self.sink.transient(ops.math_attention_bytes(bt, hw, hw, c, itemsize=self.f))
        o = self.op(m, SDPA, "attention", ops.sdpa(bt, 1, hw, hw, c), 3 * n, n, dims=attention_dims(bt, hw, hw, c))
        self.free(a)  # the norm's output: x held it until the attention's output replaced it
        proj = self.op(f"{m}.proj", CONV, "conv", ops.conv2d(bt, c, c, (1, 1), (h, w)), n + (c * c + c) * self.f, n,
                       dims=conv_dims(bt, c, c, (1, 1), (h, w)))  # fmt: skip
        self.free(o)
        out = self.op(m, "aten.add", "elementwise", 0, 2 * n, n)
        self.free(proj + q)
        return out

    def mid_block(self, m: str, c: int, x: int, t: int, h: int, w: int) -> int:
        """``WanMidBlock``: ``resnets.0``, ``attentions.0``, ``resnets.1``, each step's output freed once
        the next one is made; the block's input (``x`` bytes) lives until the block returns (the encoder's
        and the decoder's ``x = self.mid_block(x, ...)`` holds it)."""
        held = x
        for i, step in enumerate(("resnets.0", "attentions.0", "resnets.1")):
            y = (
                self.attention(f"{m}.{step}", c, t, h, w)
                if step[0] == "a"
                else self.resblock(f"{m}.{step}", c, c, t, h, w)
            )
            if i:
                self.free(x)
            x = y
        self.free(held)
        return x

    def head(self, prefix: str, c: int, c_out: int, x: int, t: int, h: int, w: int) -> int:
        """``norm_out`` -> SiLU -> ``conv_out`` of an ``x``-byte input (freed once normalised)."""
        s = self.norm_silu(f"{prefix}.norm_out", f"{prefix}.nonlinearity", c, t * h * w, x)
        out = self.cached_conv(prefix, f"{prefix}.conv_out", c, c_out, t, h, w)
        self.free(s)
        return out

    def upsample(self, m: str, mode: str, c: int, c_up: int, t: int, h: int, w: int) -> tuple[int, int]:
        """``WanResample`` up (``upsample3d``: from the second chunk on the time conv doubles the
        channels, then the frames by a ``stack``), nearest-exact 2x in space and a 3x3 conv per
        frame; returns the output's bytes and frames. The input stays with the caller."""
        b, hw = self.b, h * w
        x = 0
        if mode == "upsample3d":
            frames, old = self.slot()
            if frames is None:
                self.cache[self.idx] = ("Rep", 0)
            else:
                cloned, kept = _kept_frames(t, True)
                frame = b * c * hw * self.f
                keep = self.op(m, "aten.clone", "movement", 0, cloned * frame, cloned * frame)
                if kept > cloned:
                    times, zeros = self.times, 0
                    for state, runs in self.states(frames, kept):
                        if state == "Rep":  # the second chunk's: the first left no frames
                            self.times = runs
                            n = b * c * cloned * hw * self.f
                            zeros = self.op(m, "aten.zeros_like", "factory", 0, n, n)
                    self.times = times
                    wider = self.op(m, "aten.cat", "movement", 0, kept * frame, kept * frame)
                    self.free(keep + zeros)
                    keep = wider
                cached = 0 if frames == "Rep" else int(frames)
                doubled = self.causal_conv(f"{m}.time_conv", c, 2 * c, (3, 1, 1), t, h, w, cached, full=kept)
                self.free(old)
                self.cache[self.idx] = (kept, keep)
                x = self.op(m, "aten.stack", "movement", 0, 2 * b * c * t * hw * self.f, 2 * b * c * t * hw * self.f)
                self.free(doubled)
                t *= 2
            self.idx += 1
        bt = b * t
        if t > 1 and b > 1:  # folding the frames into a batch of several videos copies them
            folded = self.op(m, "aten.clone", "movement", 0, bt * c * hw * self.f, bt * c * hw * self.f)
            self.free(x)
            x = folded
        # one video's frames fold by a view: its upsampled tensor stays strided, and is copied
        up = self.nearest_exact(f"{m}.resample.0", bt, c, h, w, strided=t > 1 and b == 1)
        conv = ops.conv2d(bt, c, c_up, (3, 3), (2 * h, 2 * w))
        out = self.op(f"{m}.resample.1", CONV, "conv", conv, up + (c_up * c * 9 + c_up) * self.f,
                      4 * bt * c_up * hw * self.f, dims=conv_dims(bt, c, c_up, (3, 3), (2 * h, 2 * w)))  # fmt: skip
        self.free(up + x)
        return out, t

    def nearest_exact(self, r: str, bt: int, c: int, h: int, w: int, strided: bool) -> int:
        """``WanUpsample``: ``F.interpolate(scale_factor=2, mode="nearest-exact")`` of ``bt`` frames in float32
        (a bfloat16 module's input cast up, ``x.float()``, and the output back, ``.type_as(x)``; a code that
        interpolates the bfloat16 input as it comes, LightX2V's ``Upsample``, traces the same casts: the op's
        decomposition makes them): per axis the source indices (``arange``, ``+ 0.5``, ``* 0.5``, to int64; live
        together, float and int64, at their most), then the gather, copied where it is ``strided``; returns its
        bytes."""
        hw = h * w
        low = self.f < F32
        up = self.op(r, "aten._to_copy", "movement", 0, bt * c * hw * self.f, bt * c * hw * F32) if low else 0
        for side in (h, w):
            self.op(r, "aten.arange", "factory", 0, 0, 2 * side * F32, alloc=False)
            self.op(r, "aten.add", "elementwise", 0, 2 * side * F32, 2 * side * F32, alloc=False)
            self.op(r, "aten.mul", "elementwise", 0, 2 * side * F32, 2 * side * F32, alloc=False)
            self.op(r, "aten._to_copy", "movement", 0, 2 * side * F32, 2 * side * I64, alloc=False)
        self.free(self.alloc(2 * (h + w) * (F32 + I64)))
        index = self.alloc(2 * (h + w) * I64)  # the int64 indices, held to the interpolation's return
        n = 4 * bt * c * hw * F32
        out = self.op(r, "aten._unsafe_index", "movement", 0, bt * c * hw * F32 + index, n)
        if strided:
            copy = self.op(r, "aten.clone", "movement", 0, n, n)
            self.free(out)
            out = copy
        self.free(index)
        if not low:
            return out
        self.free(up)
        cast = self.op(r, "aten._to_copy", "movement", 0, n, 4 * bt * c * hw * self.f)
        self.free(out)
        return cast

    def downsample(self, m: str, mode: str, c: int, t: int, h: int, w: int) -> tuple[int, int, int, int]:
        """``WanResample`` down: zero pad (0, 1, 0, 1), a 3x3 stride-2 conv per frame; ``downsample3d``
        keeps the frames of the first chunk, then halves the frames through its stride-2 time conv
        fed with the previous chunk's last frame. Returns the output's bytes and ``(t, h, w)``; the
        input stays with the caller."""
        b = self.b
        bt, h2, w2 = b * t, (h - 2) // 2 + 1, (w - 2) // 2 + 1
        if t > 1 and b > 1:  # folding the frames into the batch copies them (not counted live: see the report)
            self.op(m, "aten.clone", "movement", 0, bt * c * h * w * self.f, bt * c * h * w * self.f, alloc=False)
        pad = self.op(f"{m}.resample.0", "aten.constant_pad_nd", "movement", 0, bt * c * h * w * self.f,
                      bt * c * (h + 1) * (w + 1) * self.f)  # fmt: skip
        conv = ops.conv2d(bt, c, c, (3, 3), (h2, w2))
        x = self.op(f"{m}.resample.1", CONV, "conv", conv, pad + (c * c * 9 + c) * self.f, bt * c * h2 * w2 * self.f,
                    dims=conv_dims(bt, c, c, (3, 3), (h2, w2)))  # fmt: skip
        self.free(pad)
        if mode == "downsample3d":
            frames, old = self.slot()
            frame = b * c * h2 * w2 * self.f
            if frames is None:
                self.cache[self.idx] = (t, self.op(m, "aten.clone", "movement", 0, t * frame, t * frame))
            else:
                keep = self.op(m, "aten.clone", "movement", 0, frame, frame)
                cat = self.op(m, "aten.cat", "movement", 0, (1 + t) * frame, (1 + t) * frame)
                y = self.causal_conv(f"{m}.time_conv", c, c, (3, 1, 1), 1 + t, h2, w2, pad=False, stride_t=2)
                self.free(cat + x + old)
                x, t = y, (1 + t - 3) // 2 + 1  # the cached last frame, then kernel 3, stride 2
                self.cache[self.idx] = (1, keep)
            self.idx += 1
        return x, t, h2, w2

    def residual_down_block(
        self, m: str, level: int, c_in: int, c_out: int, t: int, h: int, w: int
    ) -> tuple[int, int, int, int]:
        """``WanResidualDownBlock`` (Wan2.2): ``x_copy``, residual blocks, the downsampler, plus the
        ``AvgDown3D`` shortcut (time padded to the factor, the factors folded into channels by a
        copy where they are > 1, a mean over each channel group). Returns the output's bytes and
        ``(t, h, w)``; the input stays with the caller."""
        b, cfg = self.b, self.cfg
        down = level != len(cfg.dim_mult) - 1
        f_t = 2 if down and cfg.temperal_downsample[level] else 1
        f_s = 2 if down else 1
        n_in = b * c_in * t * h * w * self.f
        copy = self.op(m, "aten.clone", "movement", 0, n_in, n_in)
        y, c = 0, c_in
        for r in range(cfg.num_res_blocks):
            z = self.resblock(f"{m}.resnets.{r}", c, c_out, t, h, w)
            self.free(y)
            y, c = z, c_out
        t_out, h_out, w_out = t, h, w
        if down:
            mode = "downsample3d" if f_t == 2 else "downsample2d"
            z, t_out, h_out, w_out = self.downsample(f"{m}.downsampler", mode, c_out, t, h, w)
            self.free(y)
            y = z
        padded = b * c_in * (t + (f_t - t % f_t) % f_t) * h * w * self.f
        pad = self.op(f"{m}.avg_shortcut", "aten.constant_pad_nd", "movement", 0, n_in, padded)
        if f_t * f_s > 1:
            folded = self.op(f"{m}.avg_shortcut", "aten.clone", "movement", 0, padded, padded)
            self.free(pad)
            pad = folded
        out = b * c_out * t_out * h_out * w_out * self.f
        mean = self.op(f"{m}.avg_shortcut", "aten.mean", "reduction", 0, padded, out)
        self.free(pad)
        added = self.op(m, "aten.add", "elementwise", 0, 2 * out, out)
        self.free(mean + y + copy)
        return added, t_out, h_out, w_out

    # -- the chunk loop --

    def chunks(self, latent_frames: int, times: int, run: Callable[[int], int], once: bool = False) -> tuple[int, int]:
        """The chunk loop of ``_decode`` and ``_encode``: ``run(i)`` walks chunk ``i`` (its cache
        slots from the first) and returns its output's bytes, joined to the output so far by
        ``torch.cat([out, out_])`` (``out_`` lives until the next chunk returns). Ops run ``times``
        times (identical encodes walked once). Returns the output's and the last chunk's bytes.

        ``once``: the tiled loops' join instead, every chunk kept in a list and joined by one
        ``torch.cat(time, dim=2)`` after the last; returns the output's bytes and all the chunks' (they
        live until the caller drops the list).

        From the second chunk on every chunk runs the same ops on the same shapes but for the
        frames its causal convs read from the cache (the second chunk reads the first's, the later
        ones full caches). A sink in :attr:`Sink.ordered` order gets every chunk (the third and
        later from the memo); any other gets the second walked once for all of them, its ops that
        read the cache split by state (:meth:`states`), then the joins."""

        def walk(i: int) -> int:
            self.idx = 0
            return run(i)

        if not self.sink.ordered:
            folded = []
            for i in range(min(latent_frames, 2)):
                self.times = times * (latent_frames - 1 if i else 1)
                self.later = times * (latent_frames - 2) if i else 0
                folded.append(walk(i))
                self.times, self.later = times, 0
            if once:  # one join of every chunk: the first and n - 1 alike
                total = folded[0] + (latent_frames - 1) * (folded[1] if latent_frames > 1 else 0)
                self.op("", "aten.cat", "movement", 0, total, total, alloc=False)
                return total, total
            if latent_frames == 1:
                return folded[0], 0
            # the k-th join (k = 1 .. n) reads and writes the k + 1 chunks so far: first + k * later bytes;
            # summed in closed form (a sink that only sums needs no loop over the latent frames)
            first, later, n = folded[0], folded[1], latent_frames - 1
            per, extra = divmod(n * first + later * n * (n + 1) // 2, n)
            self.op("", "aten.cat", "movement", 0, per, per, calls=n - 1 if extra else n, alloc=False)
            if extra:  # n > 1: the remainder on one call
                self.op("", "aten.cat", "movement", 0, per + extra, per + extra, alloc=False)
            return first + n * later, later
        # A sink that reads only memory, in order (the peak), gets the first three chunks and the last: from
        # the third on every chunk replays the same events while the video grows by one chunk, so what lives
        # only rises from chunk to chunk and the peak is the last one's; the chunks between add their growth
        # as one allocation (a 4e200-frame decode was a loop of 1e200 chunks).
        skip = latent_frames - 4 if SKIP_ALIKE_CHUNKS and not self.sink.ops and latent_frames > 4 else 0
        out = previous = 0
        for i in [0, 1, 2, latent_frames - 1] if skip else range(latent_frames):
            if skip and i == latent_frames - 1:
                out += self.alloc(skip * previous)
            chunk = walk(i)
            if once:
                out, previous = out + chunk, chunk
                continue
            if out:
                self.free(previous)
                joined = self.op("", "aten.cat", "movement", 0, out + chunk, out + chunk)
                self.free(out)
                out, previous = joined, chunk
            else:
                out = chunk
        if once:
            return self.op("", "aten.cat", "movement", 0, out, out), out
        return out, previous

    # -- the two forwards --

    def decoder_chunk(self, h: int, w: int) -> int:
        """One ``decoder`` call on one latent frame; returns the bytes of the frames it makes."""
        return self.memo(("decoder", h, w), None, "", lambda: self._decoder_chunk(h, w))

    def _decoder_chunk(self, h: int, w: int) -> int:
        cfg, b, dims = self.cfg, self.b, self.cfg.decoder_dims
        t = 1
        x = self.cached_conv("decoder", "decoder.conv_in", cfg.z_dim, dims[0], t, h, w)
        x = self.mid_block("decoder.mid_block", dims[0], x, t, h, w)
        for i, (c_in, c_out, mode) in enumerate(cfg.decoder_up_block_dims()):
            block = f"decoder.up_blocks.{i}"
            n_in = b * c_in * t * h * w * self.f
            copy = self.op(block, "aten.clone", "movement", 0, n_in, n_in) if cfg.is_residual else 0  # x_copy
            y, c, t_in = 0, c_in, t  # y: the up block's current tensor; its input x stays with the decoder
            for j in range(cfg.num_res_blocks + 1):
                z = self.resblock(f"{block}.resnets.{j}", c, c_out, t, h, w)
                self.free(y)
                y, c = z, c_out
            if mode is not None:
                up = f"{block}.upsampler" if cfg.is_residual else f"{block}.upsamplers.0"
                z, t = self.upsample(up, mode, c_out, c_out // cfg.upsample_out, t, h, w)
                self.free(y)
                y = z
                if cfg.is_residual:  # + DupUp3D(x_copy): channels repeated into time and space, then added
                    f_t = 2 if mode == "upsample3d" else 1
                    n = b * c_out * f_t * 4 * t_in * h * w * self.f  # repeat_interleave, then permute(...).contiguous()
                    self.op(f"{block}.avg_shortcut", "aten.clone", "movement", 0, n, n, calls=2, alloc=False)
                    repeated = self.alloc(n)
                    permuted = self.alloc(n)
                    self.free(repeated)
                    out = b * c_out * t * 4 * h * w * self.f
                    z = self.op(block, "aten.add", "elementwise", 0, 2 * out, out)
                    self.free(permuted + y)
                    y = z
                h, w = 2 * h, 2 * w
            self.free(copy + x)
            x = y
        return self.head("decoder", dims[-1], cfg.out_channels, x, t, h, w)

    def decode(self, latent_frames: int, h: int, w: int) -> None:
        """``AutoencoderKLWan.decode``: ``post_quant_conv``, one decoder call per latent frame with
        its feature cache, the video grown by one ``cat`` per chunk, Wan2.2's unpatchify, the final
        clamp; tiled where :attr:`~AutoencoderKLWanConfig.use_tiling` and the latents are wider or
        taller than one tile (:meth:`tiled_decode`)."""
        cfg = self.cfg
        s = cfg.scale_factor_spatial
        if cfg.use_tiling and (w > cfg.tile_sample_min_width // s or h > cfg.tile_sample_min_height // s):
            self.tiled_decode(latent_frames, h, w)
            return
        x = self.causal_conv("post_quant_conv", cfg.z_dim, cfg.z_dim, K1, latent_frames, h, w)
        out, previous = self.chunks(latent_frames, 1, lambda i: self.decoder_chunk(h, w))
        if cfg.patch_size:  # unpatchify: the 2x2 patches out of the channels (permute(...).contiguous())
            video = self.op("", "aten.clone", "movement", 0, out, out)
            self.free(out)
            out = video
        clamped = self.op("", "aten.clamp", "elementwise", 0, out, out)
        self.free(clamped + out + previous + x)
        self.clear_cache()

    def tiles(self, heights: list[int], widths: list[int]) -> list[tuple[int, int, int]]:
        """The tiles ``(count, height, width)`` to walk: every tile in order, one each, for a sink that reads
        the order (:attr:`Sink.ordered`); else one of each size with how many there are."""
        if self.sink.ordered:
            return [(1, th, tw) for th in heights for tw in widths]
        sizes: dict[tuple[int, int], int] = {}
        for th in heights:
            for tw in widths:
                sizes[th, tw] = sizes.get((th, tw), 0) + 1
        return [(n, th, tw) for (th, tw), n in sizes.items()]

    def gather_chunks(self, made: int, chunk: int, grid: tuple[int, int]) -> None:
        """LightX2V's parallel VAE after a rank's decode or encode of its padded chunk (``made`` bytes, the walk's own
        output already freed): the padding cut off (a copy of ``chunk`` bytes), every rank's chunk all-gathered into a
        list of ``empty_like`` tensors, joined row by row, then the rows (the whole, returned); all of it dropped."""
        rows, cols = grid
        ranks = rows * cols
        self.alloc(made)
        self.op("", "aten.clone", "movement", 0, chunk, chunk)
        self.free(made)
        self.op("", "aten.empty_like", "factory", 0, 0, chunk, calls=ranks, alloc=False)
        self.alloc(ranks * chunk)
        sent, received = ops.collective_bytes("all_gather_into_tensor", ranks, chunk)
        self.op("", "c10d.allgather_", "collective", 0, sent, received, alloc=False,
                dims=collective_dims("all_gather_into_tensor"))  # fmt: skip
        self.op("", "aten.cat", "movement", 0, cols * chunk, cols * chunk, calls=rows, alloc=False)
        self.alloc(ranks * chunk)  # the rows
        self.op("", "aten.cat", "movement", 0, ranks * chunk, ranks * chunk)  # the whole
        self.free(3 * ranks * chunk + chunk)  # the list, the rows, the whole; this rank's chunk

    def clear_cache(self) -> None:
        """``clear_cache()``: every feature-cache slot dropped."""
        self.free(sum(n for _, n in self.cache))
        self.cache, self.idx = [], 0

    def blends(self, frame: int, heights: list[int], widths: list[int], extent: tuple[int, int],
               stride: tuple[int, int]) -> tuple[int, int]:  # fmt: skip
        """The seams of a tiled call: each tile (``heights`` x ``widths`` in the output's pixels; ``frame``
        the bytes of one of its pixels through every frame) blended with the tile above (``blend_v``, up to
        ``extent[0]`` rows) and the one to its left (``blend_h``), a row or column at a time
        (``a * (1 - y / e) + b * (y / e)`` copied into ``b``); then each row of tiles, cut to ``stride``,
        joined by a ``cat`` along the width, and the rows by one along the height. Returns the bytes of the
        rows and of their join, both left live."""

        def blend(line: int, e: int) -> None:
            n = line * frame
            self.op("", "aten.mul", "elementwise", 0, n, n, calls=2 * e, alloc=False)
            self.op("", "aten.add", "elementwise", 0, 2 * n, n, calls=e, alloc=False)
            self.op("", "aten.copy_", "movement", 0, 2 * n, n, calls=e, alloc=False)
            if e:  # a row's two products and their sum, dropped once copied
                self.free(self.alloc(3 * n))

        rows = 0
        for i, th in enumerate(heights):
            joined = 0
            for j, tw in enumerate(widths):
                if i:
                    blend(tw, min(heights[i - 1], th, extent[0]))
                if j:
                    blend(th, min(widths[j - 1], tw, extent[1]))
                joined += min(th, stride[0]) * min(tw, stride[1]) * frame
            rows += self.op("", "aten.cat", "movement", 0, joined, joined)
        return rows, self.op("", "aten.cat", "movement", 0, rows, rows)

    def tiled_decode(self, latent_frames: int, h: int, w: int) -> None:
        """``AutoencoderKLWan.tiled_decode``: the latents cut into tiles of ``tile_sample_min`` / the spatial
        factor latents every ``tile_sample_stride`` / it (the last of a row or column what is left), each
        decoded through every latent frame with a fresh feature cache (``post_quant_conv`` per frame, the
        frames kept in a list and joined once), then blended (:meth:`blends`), Wan2.2's unpatchify and the
        clamp. Every tile's video lives until the call returns, with the last tile's frames."""
        cfg, b = self.cfg, self.b
        s, p = cfg.scale_factor_spatial, cfg.patch_size or 1
        q = s // p  # the decoder's own upsampling: a tile of th latents makes th * q (patched) pixels
        heights = _tile_sizes(h, cfg.tile_sample_min_height // s, cfg.tile_sample_stride_height // s)
        widths = _tile_sizes(w, cfg.tile_sample_min_width // s, cfg.tile_sample_stride_width // s)
        held = chunks = pq = 0  # the tiles' videos; the last tile's frames and post_quant_conv output
        times = self.times
        for count, th, tw in self.tiles(heights, widths):
            self.clear_cache()
            self.free(chunks)  # time = []
            carried = [pq]

            def run(i: int, th: int = th, tw: int = tw, carried: list[int] = carried) -> int:
                self.free(carried[0])  # tile = z[...] drops the previous frame's post_quant_conv output
                carried[0] = self.causal_conv("post_quant_conv", cfg.z_dim, cfg.z_dim, K1, 1, th, tw)
                return self.decoder_chunk(th, tw)

            out, chunks = self.chunks(latent_frames, times * count, run, once=True)
            held, pq, self.times = held + out, carried[0], times
        self.clear_cache()
        self.free(pq)  # for j, tile in enumerate(row): the name rebound
        frame = b * cfg.out_channels * (1 + (latent_frames - 1) * cfg.scale_factor_temporal) * self.f
        extent, stride = _seams(cfg, p)
        rows, out = self.blends(frame, [t * q for t in heights], [t * q for t in widths], extent, stride)
        if cfg.patch_size:  # unpatchify: the 2x2 patches out of the channels (permute(...).contiguous())
            video = self.op("", "aten.clone", "movement", 0, out, out)
            self.free(out)
            out = video
        clamped = self.op("", "aten.clamp", "elementwise", 0, out, out)
        self.free(out)  # dec = torch.clamp(dec)
        self.free(clamped + rows + held + chunks)

    def encoder_chunk(self, t: int, h: int, w: int) -> tuple[int, int, int, int]:
        """One ``encoder`` call on ``t`` frames; returns its output's bytes and ``(t, h, w)``."""
        return self.memo(("encoder", t, h, w), None, "", lambda: self._encoder_chunk(t, h, w))

    def _encoder_chunk(self, t: int, h: int, w: int) -> tuple[int, int, int, int]:
        cfg = self.cfg
        dims = [cfg.base_dim * u for u in [1, *cfg.dim_mult]]
        x = self.cached_conv("encoder", "encoder.conv_in", cfg.in_channels, dims[0], t, h, w)
        j, levels = 0, len(cfg.dim_mult)
        for i, (c_in, c_out) in enumerate(pairwise(dims)):
            if cfg.is_residual:
                y, t, h, w = self.residual_down_block(f"encoder.down_blocks.{i}", i, c_in, c_out, t, h, w)
                self.free(x)
                x = y
                continue
            for _ in range(cfg.num_res_blocks):  # Wan2.1: a flat list of blocks
                y = self.resblock(f"encoder.down_blocks.{j}", c_in, c_out, t, h, w)
                self.free(x)
                x, c_in, j = y, c_out, j + 1
            if i == levels - 1:
                continue
            mode = "downsample3d" if cfg.temperal_downsample[i] else "downsample2d"
            y, t, h, w = self.downsample(f"encoder.down_blocks.{j}", mode, c_out, t, h, w)
            self.free(x)
            x, j = y, j + 1
        x = self.mid_block("encoder.mid_block", dims[-1], x, t, h, w)
        return self.head("encoder", dims[-1], 2 * cfg.z_dim, x, t, h, w), t, h, w

    def encode(self, latent_frames: int, height: int, width: int, calls: int) -> None:
        """``calls`` identical ``AutoencoderKLWan.encode`` calls (walked once): Wan2.2's patchify, one
        encoder call per latent frame (1 frame, then 4) with its feature cache, the latents grown
        by one ``cat`` per chunk, ``quant_conv``, the caches cleared (tiled where
        :attr:`~AutoencoderKLWanConfig.use_tiling` and the video is wider or taller than one tile:
        :meth:`tiled_encode`), then the posterior's clamped log-variance, std and variance."""
        cfg, b = self.cfg, self.b
        if calls == 0:
            return
        self.times = calls
        t_chunk, p = cfg.scale_factor_temporal, cfg.patch_size or 1
        video = 0
        if cfg.patch_size:  # patchify: 2x2 pixel patches into channels (permute(...).contiguous())
            n = b * 3 * ((latent_frames - 1) * t_chunk + 1) * height * width * self.f
            video = self.op("", "aten.clone", "movement", 0, n, n)
        tiled = cfg.use_tiling and (width > cfg.tile_sample_min_width or height > cfg.tile_sample_min_height)
        height, width = height // p, width // p
        if tiled:
            stored, enc, held = self.tiled_encode(latent_frames, height, width)
            self.free(held + video)
        else:
            latent_hw = [0, 0]  # the encoder's output size, the same for every chunk

            def run(i: int) -> int:
                out, _, latent_hw[0], latent_hw[1] = self.encoder_chunk(1 if i == 0 else t_chunk, height, width)
                return out

            out, previous = self.chunks(latent_frames, calls, run)
            h, w = latent_hw
            enc = stored = self.causal_conv("quant_conv", 2 * cfg.z_dim, 2 * cfg.z_dim, K1, latent_frames, h, w)
            self.clear_cache()
            self.free(out + previous + video)
        half = (
            enc // 2
        )  # DiagonalGaussianDistribution: the log-variance clamped, std = exp(0.5 logvar), var = exp(logvar)
        logvar = self.op("", "aten.clamp", "elementwise", 0, half, half)
        scaled = self.op("", "aten.mul", "elementwise", 0, half, half)
        self.op("", "aten.exp", "elementwise", 0, half, half, calls=2, alloc=False)
        std = self.alloc(half)
        self.free(scaled)
        var = self.alloc(half)
        self.free(stored + logvar + std + var)

    def tiled_encode(self, latent_frames: int, height: int, width: int) -> tuple[int, int, int]:
        """``AutoencoderKLWan.tiled_encode`` of a (patched) ``height x width`` video: tiles of
        ``tile_sample_min`` pixels every ``tile_sample_stride`` (the last of a row or column what is left),
        each encoded through every chunk with a fresh feature cache, ``quant_conv`` per chunk, the chunks
        kept in a list and joined once; then blended in latent space (:meth:`blends`). Returns the bytes of
        the joined latents, of their view cut to the video's latent size, and of what the call holds until it
        returns (the tiles, their rows and the last tile's chunks)."""
        cfg, b, t_chunk = self.cfg, self.b, self.cfg.scale_factor_temporal
        r = cfg.scale_factor_spatial // (cfg.patch_size or 1)  # encode_spatial_compression_ratio
        heights = _tile_sizes(height, cfg.tile_sample_min_height, cfg.tile_sample_stride_height)
        widths = _tile_sizes(width, cfg.tile_sample_min_width, cfg.tile_sample_stride_width)
        latent: dict[int, int] = {}  # the encoder's output size by a tile's size, either axis
        held = chunks = 0
        times = self.times
        for count, th, tw in self.tiles(heights, widths):
            self.clear_cache()
            self.free(chunks)  # time = []

            def run(i: int, th: int = th, tw: int = tw) -> int:
                out, _, lh, lw = self.encoder_chunk(1 if i == 0 else t_chunk, th, tw)
                latent[th], latent[tw] = lh, lw
                z = self.causal_conv("quant_conv", 2 * cfg.z_dim, 2 * cfg.z_dim, K1, 1, lh, lw)
                self.free(out)  # tile = self.quant_conv(tile)
                return z

            out, chunks = self.chunks(latent_frames, times * count, run, once=True)
            held, self.times = held + out, times
        self.clear_cache()
        frame = b * 2 * cfg.z_dim * latent_frames * self.f
        extent, stride = _seams(cfg, r)
        rows, enc = self.blends(frame, [latent[t] for t in heights], [latent[t] for t in widths], extent, stride)
        kept_h = min(sum(min(latent[t], stride[0]) for t in heights), height // r)
        kept_w = min(sum(min(latent[t], stride[1]) for t in widths), width // r)
        return enc, frame * kept_h * kept_w, rows + held + chunks


# --- What each stage asks of the walk -------------------------------------------------------------------------------


PARALLEL_PADDING = 2
"""Latents each rank's chunk reaches into its neighbours' on every side it has one (LightX2V's ``decode_dist_2d``
``padding_size``)."""


def parallel_vae_grid(latent_height: int, latent_width: int, ranks: int) -> tuple[int, int]:
    """LightX2V's ``calculate_2d_grid``: the (rows, columns) of latent chunks ``ranks`` GPUs decode, one each: the
    grid of ``ranks`` chunks dividing both sides whose chunks are closest to square (the first such, by rows);
    ``(1, ranks)`` where none divides both."""
    best, diff = (1, ranks), float("inf")
    for rows in range(1, ranks + 1):
        if ranks % rows == 0:
            cols = ranks // rows
            if latent_height % rows == 0 and latent_width % cols == 0:
                d = abs(latent_height / rows - latent_width / cols)
                if d < diff:
                    best, diff = (rows, cols), d
    return best


CONDITION_GRIDS: dict[int, tuple[tuple[int, int], ...]] = {
    8: ((2, 4), (4, 2), (1, 8), (8, 1)),
    4: ((2, 2), (1, 4), (4, 1)),
    2: ((1, 2), (2, 1)),
}
"""LightX2V's ``WanRunner._adjust_latent_for_grid_splitting``: the (rows, columns) it tries, in order, for an
image-to-video job's condition encode over 8, 4 and 2 ranks (others: every factor pair, rows up to the root)."""


def condition_encode_grid(latent_height: int, latent_width: int, ranks: int) -> tuple[int, int]:
    """The grid LightX2V encodes an image-to-video job's condition video on over ``ranks`` (``run_vae_encoder``: the
    first of :data:`CONDITION_GRIDS` whose rows and columns divide the latents; its decode takes
    :func:`parallel_vae_grid`'s, which can differ: 480x832 on 8 ranks encodes 2x4, decodes 4x2). Where none divides
    it pads the job's latents up to one, which is not modelled: one line that says so."""
    grids = CONDITION_GRIDS.get(ranks) or tuple(
        (rows, ranks // rows) for rows in range(1, int(ranks**0.5) + 1) if ranks % rows == 0
    )
    for rows, cols in grids:
        if latent_height % rows == 0 and latent_width % cols == 0:
            return rows, cols
    raise InputError(
        f"gpus: LightX2V pads an image-to-video job's {latent_height}x{latent_width} latents to a grid of its {ranks} "
        f"ranks ({', '.join(f'{r}x{c}' for r, c in grids)}: none divides them; _adjust_latent_for_grid_splitting), "
        "which is not modelled; valid: a size or GPU count one of its grids divides"
    )


def _decode(sink: _S, cfg: AutoencoderKLWanConfig, batch: int, latent_frames: int, h: int, w: int,
            grid: tuple[int, int] = (1, 1)) -> _S:  # fmt: skip
    walk = _Walk(cfg, batch, sink)
    if grid == (1, 1):
        walk.decode(latent_frames, h, w)
        return sink
    # LightX2V's decode_dist_2d: this rank's chunk of the float32 latents, padded into its neighbours' (a copy, held to
    # the return), decoded; the padding cut off (a copy) and every rank's frames all-gathered into a list of
    # empty_like outputs, joined row by row, then the rows
    (ch, cw), (th, tw) = _chunks(h, w, grid, PARALLEL_PADDING)
    f, r = walk.f, cfg.scale_factor_spatial
    t = (latent_frames - 1) * cfg.scale_factor_temporal + 1
    sliced = batch * cfg.z_dim * latent_frames * th * tw * F32
    walk.op("", "aten.clone", "movement", 0, sliced, sliced)
    walk.decode(latent_frames, th, tw)
    decoded, chunk = batch * 3 * t * th * r * tw * r * f, batch * 3 * t * ch * r * cw * r * f
    walk.gather_chunks(decoded, chunk, grid)  # the decoded chunk, clamped in place
    walk.free(sliced)
    return sink


def _chunks(h: int, w: int, grid: tuple[int, int], padding: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(chunk, padded)``: the (height, width) of one rank's chunk of an ``h x w`` grid of latents split ``grid``
    ways, and of that chunk reaching ``padding`` latents into its neighbours on every side it has one (a chunk on the
    edge takes both sides' from its one neighbour, as LightX2V's ``decode_dist_2d`` and ``encode_dist_2d`` cut them);
    an axis split once is whole."""
    (rows, cols), (ch, cw) = grid, (h // grid[0], w // grid[1])
    th, tw = (min(total, chunk + 2 * padding) if n > 1 else total for n, total, chunk in ((rows, h, ch), (cols, w, cw)))
    return (ch, cw), (th, tw)


ENCODE_PADDING = 1
"""Latents each rank's chunk of the video reaches into its neighbours' on every side it has one (LightX2V's
``encode_dist_2d`` and ``WanRunner._get_vae_encode_2d_plan`` ``padding_size``: 8 pixels)."""


def _encode(sink: _S, cfg: AutoencoderKLWanConfig, batch: int, latent_frames: int, height: int, width: int,
            calls: int, grid: tuple[int, int] = (1, 1), sliced: bool = False) -> _S:  # fmt: skip
    if cfg.is_residual and latent_frames > 1 and not isinstance(sink, FlopRowSink):
        raise NotImplementedError("the Wan2.2 encoder's bytes and peak are written for one frame (TI2V's image)")
    walk = _Walk(cfg, batch, sink)
    if grid == (1, 1):
        walk.encode(latent_frames, height, width, calls)
        return sink
    # LightX2V's parallel encode: this rank's chunk of the video, padded into its neighbours, encoded; the padding cut
    # off the latents (a copy) and every rank's all-gathered into a list of empty_like tensors, joined row by row, then
    # the rows. ``sliced``: the wrapper's encode_dist_2d cuts the chunk from the whole video (a copy, in the VAE's
    # dtype, held to the return); else the runner builds only the chunk (encode_local_2d: the image-to-video
    # condition, built as on one GPU: not in the stage)
    if calls == 0:
        return sink
    r = cfg.scale_factor_spatial
    (ch, cw), (th, tw) = _chunks(height // r, width // r, grid, ENCODE_PADDING)
    walk.times = calls
    frames = (latent_frames - 1) * cfg.scale_factor_temporal + 1
    cut = batch * 3 * frames * th * r * tw * r * walk.f if sliced else 0
    if cut:
        walk.op("", "aten.clone", "movement", 0, cut, cut)
    walk.encode(latent_frames, th * r, tw * r, calls)  # ops from here on run `calls` times (walk.times)
    encoded, chunk = (batch * cfg.z_dim * latent_frames * a * b * walk.f for a, b in ((th, tw), (ch, cw)))
    walk.gather_chunks(encoded, chunk, grid)  # the encoded chunk's latents
    walk.free(cut)
    return sink


def vae_decode_groups(
    cfg: AutoencoderKLWanConfig,
    batch: int,
    latent_frames: int,
    latent_height: int,
    latent_width: int,
    grid: tuple[int, int] = (1, 1),
) -> list[OpGroup]:
    """FLOP groups of one ``AutoencoderKLWan.decode`` of ``batch`` latents, keyed like the tracer's:
    the FLOP rows of :func:`vae_decode_rows`, without bytes. Every causal conv is counted over its
    output positions ``(t, h, w)`` of the chunk (the cached frames it reads do not add outputs);
    2-D convs of the resample and attention paths run on ``batch * t`` frames; mid-block attention
    is one head over ``h * w`` pixels per frame."""
    return _decode(FlopRowSink(STAGE), cfg, batch, latent_frames, latent_height, latent_width, grid).out


def vae_decode_components(
    cfg: AutoencoderKLWanConfig,
    batch: int,
    latent_frames: int,
    latent_height: int,
    latent_width: int,
    grid: tuple[int, int] = (1, 1),
) -> dict[str, int]:
    """FLOPs of one decode by report component: :func:`vae_decode_groups` summed by :func:`component`."""
    return _decode(ComponentSink(component), cfg, batch, latent_frames, latent_height, latent_width, grid).flops


def vae_decode_rows(
    cfg: AutoencoderKLWanConfig,
    batch: int,
    latent_frames: int,
    latent_height: int,
    latent_width: int,
    grid: tuple[int, int] = (1, 1),
) -> list[OpGroup]:
    """Every op one ``AutoencoderKLWan.decode`` costs (FLOPs and bytes), keyed like the tracer's
    rows (:meth:`_Walk.decode`). Both decoders: Wan2.1's, and Wan2.2's residual up blocks with
    their ``DupUp3D`` shortcut (``x_copy``, channels repeated into time and space; the first chunk
    keeps its last frame). Equal rows of different chunks sum in :func:`hybrid.rows.aggregate_costs`."""
    return _decode(RowSink(STAGE), cfg, batch, latent_frames, latent_height, latent_width, grid).out


def vae_decode_terms(
    cfg: AutoencoderKLWanConfig,
    batch: int,
    latent_frames: int,
    latent_height: int,
    latent_width: int,
    grid: tuple[int, int] = (1, 1),
) -> tuple[Term, ...]:
    """:func:`hybrid.timing.roofline_terms` of :func:`vae_decode_rows`, from the same walk."""
    return _decode(TermSink(), cfg, batch, latent_frames, latent_height, latent_width, grid).terms.freeze()


def vae_decode_peak_bytes(
    cfg: AutoencoderKLWanConfig,
    batch: int,
    latent_frames: int,
    latent_height: int,
    latent_width: int,
    materialized: bool = False,
    grid: tuple[int, int] = (1, 1),
) -> int:
    """The activation peak of one ``AutoencoderKLWan.decode`` (see :func:`_decode_peaks`)."""
    return _decode_peaks(cfg, batch, latent_frames, latent_height, latent_width, grid)[materialized]


@lru_cache(maxsize=256)
def _decode_peaks(
    cfg: AutoencoderKLWanConfig, batch: int, latent_frames: int, latent_height: int, latent_width: int,
    grid: tuple[int, int] = (1, 1),
) -> tuple[int, int]:  # fmt: skip
    """The activation peak of one ``AutoencoderKLWan.decode`` (the tracer's ``peak_activation_bytes``):
    the walk's live bytes at their most, with fused attention and with PyTorch's math attention in
    the mid block. The feature caches, the post-quant latents and the growing video persist across
    chunks."""
    sink = _decode(Peak(), cfg, batch, latent_frames, latent_height, latent_width, grid)
    return sink.fused, sink.materialized


def vae_encode_groups(
    cfg: AutoencoderKLWanConfig,
    batch: int,
    latent_frames: int,
    height: int,
    width: int,
    calls: int = 1,
    grid: tuple[int, int] = (1, 1),
    sliced: bool = False,
) -> list[OpGroup]:
    """FLOP groups of ``calls`` ``AutoencoderKLWan.encode`` calls of ``batch`` videos of
    ``height x width`` pixels and ``(latent_frames - 1) * 4 + 1`` frames, keyed like the tracer's:
    the FLOP rows of :func:`vae_encode_rows`, without bytes (Wan2.2's encoder at any length). Its
    causal convs are counted over their output positions, the stride-2 resample convs over the
    halved size, each ``downsample3d`` level's ``time_conv`` from the second chunk on."""
    return _encode(FlopRowSink(ENCODE_STAGE), cfg, batch, latent_frames, height, width, calls, grid, sliced).out


def vae_encode_rows(
    cfg: AutoencoderKLWanConfig,
    batch: int,
    latent_frames: int,
    height: int,
    width: int,
    calls: int = 1,
    grid: tuple[int, int] = (1, 1),
    sliced: bool = False,
) -> list[OpGroup]:
    """Every op of ``calls`` ``AutoencoderKLWan.encode`` calls (FLOPs and bytes), keyed like the
    tracer's rows (:meth:`_Walk.encode`). Wan2.1's encoder at any length; Wan2.2's (patchify,
    residual down blocks with ``AvgDown3D``) on one frame, all TI2V encodes (``NotImplementedError``
    beyond). ``grid``, ``sliced``: one rank's share of LightX2V's parallel encode (:func:`_encode`)."""
    return _encode(RowSink(ENCODE_STAGE), cfg, batch, latent_frames, height, width, calls, grid, sliced).out


def vae_encode_terms(
    cfg: AutoencoderKLWanConfig,
    batch: int,
    latent_frames: int,
    height: int,
    width: int,
    calls: int = 1,
    grid: tuple[int, int] = (1, 1),
    sliced: bool = False,
) -> tuple[Term, ...]:
    """:func:`hybrid.timing.roofline_terms` of :func:`vae_encode_rows`, from the same walk."""
    return _encode(TermSink(), cfg, batch, latent_frames, height, width, calls, grid, sliced).terms.freeze()


def vae_encode_peak_bytes(
    cfg: AutoencoderKLWanConfig, batch: int, latent_frames: int, height: int, width: int, materialized: bool = False,
    grid: tuple[int, int] = (1, 1), sliced: bool = False,
) -> int:  # fmt: skip
    """The activation peak of one ``AutoencoderKLWan.encode`` (see :func:`_encode_peaks`)."""
    return _encode_peaks(cfg, batch, latent_frames, height, width, grid, sliced)[materialized]


@lru_cache(maxsize=256)
def _encode_peaks(
    cfg: AutoencoderKLWanConfig, batch: int, latent_frames: int, height: int, width: int,
    grid: tuple[int, int] = (1, 1), sliced: bool = False,
) -> tuple[int, int]:  # fmt: skip
    """The activation peak of one ``AutoencoderKLWan.encode`` of ``(latent_frames - 1) * 4 + 1``
    frames (the tracer's ``peak_activation_bytes``): the walk's live bytes at their most, with fused
    and with math attention. Wan2.1's encoder at any length, Wan2.2's on one frame
    (``NotImplementedError`` beyond, as :func:`vae_encode_rows`)."""
    sink = _encode(Peak(), cfg, batch, latent_frames, height, width, 1, grid, sliced)
    return sink.fused, sink.materialized


@on_clear
def clear_memos() -> None:
    """Forget the recorded blocks and the peaks (see :func:`hybrid.analytic.clear_memos`)."""
    _BLOCKS.clear()
    _decode_peaks.cache_clear()
    _encode_peaks.cache_clear()
