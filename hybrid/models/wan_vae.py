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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Any, ClassVar, TypeVar

from hybrid import ops
from hybrid.rows import SDPA_OP as SDPA
from hybrid.rows import OpGroup
from hybrid.timing import Term, Terms


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

    COST_FREE_KEYS: ClassVar[frozenset[str]] = frozenset({"latents_mean", "latents_std", "clip_output"})
    """Keys of a published ``config.json`` that change no cost: the latents' normalisation constants."""

    def __post_init__(self) -> None:
        if len(self.temperal_downsample) != len(self.dim_mult) - 1:
            raise ValueError(
                "temperal_downsample: needs len(dim_mult) - 1 = "
                f"{len(self.dim_mult) - 1} entries, got {len(self.temperal_downsample)}"
            )
        if self.attn_scales:
            raise ValueError(f"attn_scales: only [] (Wan2.1) is modelled, got {list(self.attn_scales)}")
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
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


STAGE = "vae_decode"
CONV = "aten.convolution"
K3 = (3, 3, 3)
K1 = (1, 1, 1)


@dataclass(frozen=True)
class DecodeChunks:
    """The causal chunk schedule of ``AutoencoderKLWan._decode``: the decoder runs once per latent
    frame. The first chunk keeps 1 frame throughout; every later chunk doubles its frames at each
    ``upsample3d`` (its ``time_conv`` runs from the second chunk on, the feature cache holding the
    previous frames), giving 1 + 4 * (latent_frames - 1) video frames."""

    latent_frames: int

    def classes(self) -> list[tuple[bool, int]]:
        """``(is_first_chunk, number_of_such_chunks)``; chunks of one class cost the same."""
        out = [(True, 1)]
        if self.latent_frames > 1:
            out.append((False, self.latent_frames - 1))
        return out


class _ChunkWalk:
    """Walks one decoder or encoder chunk, tracking its frame count and spatial size, emitting groups."""

    def __init__(self, batch: int, height: int, width: int, calls: int, out: list[OpGroup], stage: str = STAGE) -> None:
        self.batch, self.t, self.h, self.w, self.calls, self.out = batch, 1, height, width, calls, out
        self.stage = stage

    def conv3d(self, module: str, c_in: int, c_out: int, kernel: tuple[int, int, int]) -> None:
        flops = ops.conv3d(self.batch, c_in, c_out, kernel, (self.t, self.h, self.w))
        self.out.append(OpGroup(self.stage, module, CONV, "conv", flops, self.calls))

    def conv2d_per_frame(self, module: str, c_in: int, c_out: int, kernel: tuple[int, int]) -> None:
        flops = ops.conv2d(self.batch * self.t, c_in, c_out, kernel, (self.h, self.w))
        self.out.append(OpGroup(self.stage, module, CONV, "conv", flops, self.calls))

    def resblock(self, module: str, c_in: int, c_out: int) -> None:
        if c_in != c_out:
            self.conv3d(f"{module}.conv_shortcut", c_in, c_out, K1)
        self.conv3d(f"{module}.conv1", c_in, c_out, K3)
        self.conv3d(f"{module}.conv2", c_out, c_out, K3)

    def attention(self, module: str, c: int) -> None:
        self.conv2d_per_frame(f"{module}.to_qkv", c, 3 * c, (1, 1))
        pixels = self.h * self.w
        flops = ops.sdpa(self.batch * self.t, 1, pixels, pixels, c)
        self.out.append(OpGroup(self.stage, module, SDPA, "attention", flops, self.calls))
        self.conv2d_per_frame(f"{module}.proj", c, c, (1, 1))


@lru_cache(maxsize=64)
def _unit_chunk(cfg: AutoencoderKLWanConfig, first: bool) -> tuple[OpGroup, ...]:
    """One decoder chunk of batch 1 at a 1x1 latent: the exact per-pixel coefficients."""
    out: list[OpGroup] = []
    dims = cfg.decoder_dims
    walk = _ChunkWalk(1, 1, 1, 1, out)
    walk.conv3d("decoder.conv_in", cfg.z_dim, dims[0], K3)
    walk.resblock("decoder.mid_block.resnets.0", dims[0], dims[0])
    walk.attention("decoder.mid_block.attentions.0", dims[0])
    walk.resblock("decoder.mid_block.resnets.1", dims[0], dims[0])
    for i, (c_in, c_out, mode) in enumerate(cfg.decoder_up_block_dims()):
        for j in range(cfg.num_res_blocks + 1):
            walk.resblock(f"decoder.up_blocks.{i}.resnets.{j}", c_in if j == 0 else c_out, c_out)
        if mode is None:
            continue
        # residual up blocks (Wan2.2) hold one ``upsampler`` (the DupUp3D shortcut costs no FLOPs)
        up = f"decoder.up_blocks.{i}.upsampler" if cfg.is_residual else f"decoder.up_blocks.{i}.upsamplers.0"
        if mode == "upsample3d" and not first:
            walk.conv3d(f"{up}.time_conv", c_out, 2 * c_out, (3, 1, 1))
            walk.t *= 2
        walk.h, walk.w = 2 * walk.h, 2 * walk.w
        walk.conv2d_per_frame(f"{up}.resample.1", c_out, c_out // cfg.upsample_out, (3, 3))
    walk.conv3d("decoder.conv_out", dims[-1], cfg.out_channels, K3)
    return tuple(out)


def vae_decode_groups(
    cfg: AutoencoderKLWanConfig, batch: int, latent_frames: int, latent_height: int, latent_width: int
) -> list[OpGroup]:
    """FLOP groups of one ``AutoencoderKLWan.decode`` of ``batch`` latents, keyed like the tracer's.

    Every causal conv is counted over its output positions ``(t, h, w)`` of the chunk (the cached
    frames it reads do not add outputs); 2-D convs of the resample and attention paths run on
    ``batch * t`` frames; mid-block attention is one head over ``h * w`` pixels per frame. Every
    decoder conv is linear in ``batch * h * w`` and the attention in ``batch * (h*w)^2``, so a chunk
    is walked once per config at a 1x1 latent (:func:`_unit_chunk`) and scaled exactly.
    """
    thw = (latent_frames, latent_height, latent_width)
    out = [OpGroup(STAGE, "post_quant_conv", CONV, "conv", ops.conv3d(batch, cfg.z_dim, cfg.z_dim, K1, thw))]
    pixels = latent_height * latent_width
    for first, calls in DecodeChunks(latent_frames).classes():
        for g in _unit_chunk(cfg, first):
            scale = batch * (pixels * pixels if g.op == SDPA else pixels)
            out.append(OpGroup(STAGE, g.module, g.op, g.category, g.flops_per_call * scale, calls))
    return out


def _unit_components(cfg: AutoencoderKLWanConfig, first: bool) -> tuple[tuple[str, int, int], ...]:
    """``(component, per-pixel coefficient, per-pixel^2 coefficient)`` of one unit chunk: the groups of
    :func:`_unit_chunk` summed by :func:`component`, in closed form (no groups built, nothing memoised:
    a cold estimate pays only this arithmetic). Causal convs at ``t`` frames and ``a`` output pixels
    per latent pixel cost ``2 c_in c_out k t a``; the mid-block attention ``4 t c`` per pixel^2."""
    mac, dims = ops.FLOPS_PER_MAC, cfg.decoder_dims
    t, a = 1, 1
    convs = upsample = 0

    def resblock(c_in: int, c_out: int) -> int:
        shortcut = c_in * c_out if c_in != c_out else 0
        return mac * t * a * (shortcut + 27 * c_in * c_out + 27 * c_out * c_out)

    d0 = dims[0]
    convs += mac * 27 * cfg.z_dim * d0 + 2 * resblock(d0, d0)
    projections = mac * (3 * d0 * d0 + d0 * d0)  # to_qkv and proj, 1x1 per frame
    core = 2 * mac * d0  # one head: QK^T and PV over pixels^2
    for c_in, c_out, mode in cfg.decoder_up_block_dims():
        for j in range(cfg.num_res_blocks + 1):
            convs += resblock(c_in if j == 0 else c_out, c_out)
        if mode is None:
            continue
        if mode == "upsample3d" and not first:
            upsample += mac * t * a * c_out * 2 * c_out * 3  # time_conv (3, 1, 1)
            t *= 2
        a *= 4
        upsample += mac * t * a * c_out * (c_out // cfg.upsample_out) * 9  # resample.1, 3x3
    convs += mac * 27 * t * a * dims[-1] * cfg.out_channels
    return (
        ("causal_convs", convs, 0),
        ("attention_projections", projections, 0),
        ("attention_core", 0, core),
        ("upsample_convs", upsample, 0),
    )


def vae_decode_components(
    cfg: AutoencoderKLWanConfig, batch: int, latent_frames: int, latent_height: int, latent_width: int
) -> dict[str, int]:
    """FLOPs of one decode by report component: the sum of :func:`vae_decode_groups` by
    :func:`component`, computed from the unit-chunk coefficients without building the groups."""
    pixels = latent_height * latent_width
    post = ops.conv3d(batch, cfg.z_dim, cfg.z_dim, K1, (latent_frames, latent_height, latent_width))
    out = {component("post_quant_conv", CONV): post}
    for first, calls in DecodeChunks(latent_frames).classes():
        for name, lin, quad in _unit_components(cfg, first):
            out[name] = out.get(name, 0) + calls * batch * (lin * pixels + quad * pixels * pixels)
    return out


ENCODE_STAGE = "vae_encode"


def _encoder_chunk(cfg: AutoencoderKLWanConfig, walk: _ChunkWalk, first: bool) -> None:
    """One encoder chunk: 1 frame (the first) or 4 frames at full resolution."""
    dims = [cfg.base_dim * u for u in [1, *cfg.dim_mult]]
    walk.t = 1 if first else cfg.scale_factor_temporal
    walk.conv3d("encoder.conv_in", cfg.in_channels, dims[0], K3)
    j, levels = 0, len(cfg.dim_mult)
    for i, (c_in, c_out) in enumerate(pairwise(dims)):
        for r in range(cfg.num_res_blocks):
            # Wan2.1: a flat list of blocks; Wan2.2: one residual down block per level (its AvgDown3D
            # shortcut costs no FLOPs) holding resnets and a downsampler
            walk.resblock(
                f"encoder.down_blocks.{i}.resnets.{r}" if cfg.is_residual else f"encoder.down_blocks.{j}", c_in, c_out
            )
            c_in, j = c_out, j + 1
        if i == levels - 1:
            continue
        down = f"encoder.down_blocks.{i}.downsampler" if cfg.is_residual else f"encoder.down_blocks.{j}"
        walk.h, walk.w = (walk.h - 2) // 2 + 1, (walk.w - 2) // 2 + 1  # zero pad (0, 1, 0, 1), 3x3 stride 2
        walk.conv2d_per_frame(f"{down}.resample.1", c_out, c_out, (3, 3))
        if cfg.temperal_downsample[i] and not first:
            walk.t = (walk.t + 1 - 3) // 2 + 1  # the cached last frame, then kernel 3, stride 2
            walk.conv3d(f"{down}.time_conv", c_out, c_out, (3, 1, 1))
        j += 1
    walk.resblock("encoder.mid_block.resnets.0", dims[-1], dims[-1])
    walk.attention("encoder.mid_block.attentions.0", dims[-1])
    walk.resblock("encoder.mid_block.resnets.1", dims[-1], dims[-1])
    walk.conv3d("encoder.conv_out", dims[-1], 2 * cfg.z_dim, K3)


def vae_encode_groups(
    cfg: AutoencoderKLWanConfig, batch: int, latent_frames: int, height: int, width: int, calls: int = 1
) -> list[OpGroup]:
    """FLOP groups of ``calls`` ``AutoencoderKLWan.encode`` calls of ``batch`` videos of
    ``height x width`` pixels and ``(latent_frames - 1) * 4 + 1`` frames, keyed like the tracer's.

    The encoder runs once per latent frame (:class:`DecodeChunks`: the first chunk 1 frame, every
    later one 4); its causal convs are counted over their output positions, the stride-2 resample
    convs over the halved size, each ``downsample3d`` level's ``time_conv`` from the second chunk
    on; then ``quant_conv`` over all latent frames.
    """
    out: list[OpGroup] = []
    p = cfg.patch_size or 1  # the encoder sees height/p x width/p pixels of 3*p*p channels
    for first, chunks in DecodeChunks(latent_frames).classes():
        _encoder_chunk(cfg, _ChunkWalk(batch, height // p, width // p, calls * chunks, out, ENCODE_STAGE), first)
    s = cfg.scale_factor_spatial
    thw = (latent_frames, height // s, width // s)
    out.append(
        OpGroup(
            ENCODE_STAGE, "quant_conv", CONV, "conv", ops.conv3d(batch, 2 * cfg.z_dim, 2 * cfg.z_dim, K1, thw), calls
        )
    )
    return out


def encode_component(module: str, op: str) -> str:
    """The report component of a VAE-encode row (analytic or traced)."""
    if ".attentions." in module:
        return "attention_core" if op == SDPA else "attention_projections"
    if ".resample." in module or module.endswith(".time_conv"):
        return "downsample_convs"
    if op == CONV:
        return "causal_convs"
    return "other"


def component(module: str, op: str) -> str:
    """The report component of a VAE-decode row (analytic or traced)."""
    if ".attentions." in module:
        return "attention_core" if op == SDPA else "attention_projections"
    if ".upsamplers." in module or ".upsampler." in module:
        return "upsample_convs"
    if op == CONV:
        return "causal_convs"
    return "other"


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


def clear_memos() -> None:
    """Forget the unit-chunk memo and the peak replays (see :func:`hybrid.analytic.clear_memos`)."""
    _unit_chunk.cache_clear()
    _decode_peaks.cache_clear()
    _encode_peaks.cache_clear()


F32, I64 = 4, 8
"""Bytes per element: the VAE runs in float32 (diffusers' example); nearest-exact indices."""
CACHE_T = 2
"""Frames a causal conv keeps of its input for the next chunk (``CACHE_T`` in diffusers)."""
_State = TypeVar("_State", int, "int | str | None")
"""What an op that reads the feature cache is told it holds (:meth:`_VaeSim.states`): frames, or a
slot's marker."""


def _kept_frames(t: int, cached: bool) -> tuple[int, int]:
    """What a causal conv keeps of a ``t``-frame input for the next chunk: ``x[:, :, -CACHE_T:].clone()``
    and, while that is under ``CACHE_T`` and an earlier chunk left a cache (``cached``), one more
    frame joined in front by a ``cat`` (the cache's last frame, or zeros after a first chunk that
    left ``"Rep"``). Returns ``(frames cloned, frames kept)``."""
    cloned = t if t < CACHE_T else CACHE_T
    return cloned, cloned + 1 if cloned < CACHE_T and cached else cloned


def _rms_norm_elements(b: int, c: int, positions: int) -> tuple[int, int]:
    """Float32 elements ``WanRMS_norm``'s rows read and write (:meth:`_VaeSim.rms_norm`), summed:
    ``(reduction, elementwise)``, of 1 and 5 ops."""
    n, s = b * c * positions, b * positions
    return n + s, 9 * n + c + 2 * s


def _nearest_index_bytes(bt: int, c: int, h: int, w: int) -> tuple[int, int, int]:
    """Bytes ``nearest-exact`` 2x upsampling's rows read and write (:meth:`_VaeSim.nearest_index`),
    summed: ``(factory, elementwise, movement)``, of 2, 4 and 3 ops."""
    sides = h + w
    return (2 * sides * F32, 8 * sides * F32,
            2 * sides * (F32 + I64) + bt * c * h * w * F32 + 2 * sides * I64 + 4 * bt * c * h * w * F32)  # fmt: skip


class _VaeSim:
    """Replays ``AutoencoderKLWan._decode`` or ``_encode`` at the level of shapes: every op's bytes,
    FLOPs and the feature cache each causal conv keeps between chunks (``None`` before the first
    chunk, ``"Rep"`` for an ``upsample3d`` that has run once, else its frame count). Groups of one
    chunk are emitted per chunk; equal rows of different chunks sum in
    :func:`hybrid.rows.aggregate_costs`."""

    def __init__(self, cfg: AutoencoderKLWanConfig, batch: int, stage: str = STAGE) -> None:
        self.cfg, self.b, self.stage = cfg, batch, stage
        self.cache: list[int | str | None] = []
        self.idx = 0
        self.out: list[OpGroup] = []
        self.times = 1
        """How many times each row being walked runs: the second chunk stands for all the later ones,
        and an encode walked once for several identical encodes."""
        self.later = 0
        """Of :attr:`times`, the runs of the chunks after the second, folded into the second's walk:
        they read full caches where the second reads the first's (0 outside that walk)."""

    def row(
        self, module: str, op: str, category: str, read: int, written: int, flops: int = 0, calls: int = 1
    ) -> None:  # read, written: float32 elements per call
        self.emit(module, op, category, flops, calls, read * F32, written * F32)

    def emit(self, module: str, op: str, category: str, flops: int, calls: int, read: int, written: int) -> None:
        """The one sink of the walk: an op of ``flops`` FLOPs and ``read``/``written`` bytes per call."""
        n = calls * self.times
        self.out.append(OpGroup(self.stage, module, f"aten.{op}", category, flops, n, 1, "", read, written))

    def _slot(self) -> int | str | None:
        if self.idx == len(self.cache):
            self.cache.append(None)
        return self.cache[self.idx]

    def states(self, now: _State, full: _State) -> tuple[tuple[_State, int], ...]:
        """The cache states an op that reads the cache sees, with how many of :attr:`times` runs see
        each: ``now`` (what the cache holds) and, in the second chunk's walk, ``full`` for the later
        chunks' runs (what this chunk leaves there: every chunk from the second on leaves the same)."""
        if not self.later:
            return ((now, self.times),)
        return ((now, self.times - self.later), (full, self.later))

    def keep(self, module: str, c: int, t: int, hw: int) -> int:
        """``x[:, :, -CACHE_T:].clone()``, topped up with the previous chunk's last frame: the frames
        the next chunk's conv will read before its own."""
        cloned, kept = _kept_frames(t, self._slot() is not None)
        self.row(module, "clone", "movement", self.b * c * cloned * hw, self.b * c * cloned * hw)
        if kept > cloned:
            self.row(module, "cat", "movement", self.b * c * kept * hw, self.b * c * kept * hw)
        return kept

    def causal_conv(
        self, module: str, c_in: int, c_out: int, kernel: tuple[int, int, int], t: int, h: int, w: int,
        cached: int = 0, pad: bool = True, stride_t: int = 1, full: int | None = None,
    ) -> int:  # fmt: skip
        """``WanCausalConv3d``: the cached frames concatenated in front, zero padding (2 * p_t in
        front, p_h, p_w; none for the encoder's stride-2 time conv), the convolution; returns its
        output frames. ``full``: the frames cached for the later chunks' runs (:meth:`states`)."""
        kt, kh, kw = kernel
        pt, ph, pw = (2 * (kt // 2), kh // 2, kw // 2) if pad else (0, 0, 0)
        b = self.b
        padded = (t + pt) * (h + 2 * ph) * (w + 2 * pw)  # cached frames take the place of front padding
        times = self.times
        for frames, runs in self.states(cached, cached if full is None else full):
            self.times, n = runs, b * c_in * (t + (frames if pt else 0)) * h * w
            if frames and pt:
                self.row(module, "cat", "movement", n, n)
            self.row(module, "constant_pad_nd", "movement", n, b * c_in * padded)
        self.times = times
        t_out = (t + pt - kt) // stride_t + 1
        flops = ops.conv3d(b, c_in, c_out, kernel, (t_out, h, w))
        read = b * c_in * padded + c_out * c_in * kt * kh * kw + c_out
        self.row(module, "convolution", "conv", read, b * c_out * t_out * h * w, flops)
        return t_out

    def cached_conv(self, owner: str, module: str, c_in: int, c_out: int, t: int, h: int, w: int) -> int:
        """A 3x3x3 causal conv fed from the feature cache (the decoder's and each residual block's)."""
        kept = self.keep(owner, c_in, t, h * w)
        prev = self.cache[self.idx]
        t_out = self.causal_conv(module, c_in, c_out, K3, t, h, w, prev if isinstance(prev, int) else 0, full=kept)
        self.cache[self.idx] = kept
        self.idx += 1
        return t_out

    def rms_norm(self, module: str, c: int, positions: int) -> None:
        """``WanRMS_norm`` on float32: ``F.normalize`` over channels, then scale, gamma, bias."""
        n = self.b * c * positions
        self.row(module, "linalg_vector_norm", "reduction", n, self.b * positions)
        self.row(module, "clamp_min", "elementwise", self.b * positions, self.b * positions)
        self.row(module, "div", "elementwise", 2 * n, n)
        self.row(module, "mul", "elementwise", n, n)
        self.row(module, "mul", "elementwise", n + c, n)
        self.row(module, "add", "elementwise", n, n)

    def resblock(self, m: str, c_in: int, c_out: int, t: int, h: int, w: int) -> None:
        hw = h * w
        if c_in != c_out:
            self.causal_conv(f"{m}.conv_shortcut", c_in, c_out, K1, t, h, w)
        for norm, conv, c_a, c_b in (("norm1", "conv1", c_in, c_out), ("norm2", "conv2", c_out, c_out)):
            self.rms_norm(f"{m}.{norm}", c_a, t * hw)
            self.row(f"{m}.nonlinearity", "silu", "elementwise", self.b * c_a * t * hw, self.b * c_a * t * hw)
            self.cached_conv(m, f"{m}.{conv}", c_a, c_b, t, h, w)
        self.row(m, "add", "elementwise", 2 * self.b * c_out * t * hw, self.b * c_out * t * hw)

    def attention(self, m: str, c: int, t: int, h: int, w: int) -> None:
        bt, hw = self.b * t, h * w
        n = bt * c * hw
        self.rms_norm(f"{m}.norm", c, t * hw)
        conv = ops.conv2d(bt, c, 3 * c, (1, 1), (h, w))
        self.row(f"{m}.to_qkv", "convolution", "conv", n + 3 * c * c + 3 * c, 3 * n, conv)
        self.row(m, "clone", "movement", 3 * n, 3 * n)
        self.row(m, "scaled_dot_product_attention", "attention", 3 * n, n, ops.sdpa(bt, 1, hw, hw, c))
        self.row(f"{m}.proj", "convolution", "conv", n + c * c + c, n, ops.conv2d(bt, c, c, (1, 1), (h, w)))
        self.row(m, "add", "elementwise", 2 * n, n)

    def upsample(self, m: str, mode: str, c: int, c_up: int, t: int, h: int, w: int) -> int:
        """``WanResample`` (``upsample3d``: the time conv doubles the frames from the second chunk on),
        then nearest-exact 2x in space and a 3x3 conv; returns the output frames."""
        b, hw = self.b, h * w
        if mode == "upsample3d":
            prev = self._slot()
            if prev is None:
                self.cache[self.idx] = "Rep"
            else:
                cloned, kept = _kept_frames(t, True)
                self.row(m, "clone", "movement", b * c * cloned * hw, b * c * cloned * hw)
                if kept > cloned:
                    times = self.times
                    for state, runs in self.states(prev, kept):
                        if state == "Rep":  # the second chunk's: the first left no frames
                            self.times = runs
                            self.row(m, "zeros_like", "factory", b * c * cloned * hw, b * c * cloned * hw)
                    self.times = times
                    self.row(m, "cat", "movement", b * c * kept * hw, b * c * kept * hw)
                cached = 0 if prev == "Rep" else int(prev)
                self.causal_conv(f"{m}.time_conv", c, 2 * c, (3, 1, 1), t, h, w, cached, full=kept)
                self.cache[self.idx] = kept
                self.row(m, "stack", "movement", 2 * b * c * t * hw, 2 * b * c * t * hw)
                t *= 2
            self.idx += 1
        r = f"{m}.resample.0"
        if t > 1 and b > 1:  # folding the frames into a batch of several videos copies them
            self.row(m, "clone", "movement", b * c * t * hw, b * c * t * hw)
        bt = b * t
        self.nearest_index(r, bt, c, h, w)
        if t > 1 and b == 1:  # one video's frames fold by a view; its upsampled tensor stays strided: a copy
            self.row(r, "clone", "movement", 4 * bt * c * hw, 4 * bt * c * hw)
        conv = ops.conv2d(bt, c, c_up, (3, 3), (2 * h, 2 * w))
        self.row(f"{m}.resample.1", "convolution", "conv", 4 * bt * c * hw + c_up * c * 9 + c_up, 4 * bt * c_up * hw,
                 conv)  # fmt: skip
        return t

    def nearest_index(self, r: str, bt: int, c: int, h: int, w: int) -> None:
        """``F.interpolate(scale_factor=2, mode="nearest-exact")`` of ``bt`` frames: per axis the
        source indices (``arange``, ``+ 0.5``, ``* 0.5``, to int64), then the gather."""
        for side in (h, w):
            self.row(r, "arange", "factory", 0, 2 * side)
            self.row(r, "add", "elementwise", 2 * side, 2 * side)
            self.row(r, "mul", "elementwise", 2 * side, 2 * side)
            self.emit(r, "_to_copy", "movement", 0, 1, 2 * side * F32, 2 * side * I64)
        hw = h * w
        self.emit(r, "_unsafe_index", "movement", 0, 1, bt * c * hw * F32 + 2 * (h + w) * I64, 4 * bt * c * hw * F32)

    def downsample(self, m: str, mode: str, c: int, t: int, h: int, w: int) -> tuple[int, int, int]:
        """``WanResample`` down: zero pad (0, 1, 0, 1), a 3x3 stride-2 conv per frame; ``downsample3d``
        keeps the frames of the first chunk, then halves the frames through its stride-2 time conv
        fed with the previous chunk's last frame. Returns the output ``(t, h, w)``."""
        b = self.b
        bt, h2, w2 = b * t, (h - 2) // 2 + 1, (w - 2) // 2 + 1
        if t > 1 and b > 1:
            self.row(m, "clone", "movement", bt * c * h * w, bt * c * h * w)
        self.row(f"{m}.resample.0", "constant_pad_nd", "movement", bt * c * h * w, bt * c * (h + 1) * (w + 1))
        conv = ops.conv2d(bt, c, c, (3, 3), (h2, w2))
        self.row(f"{m}.resample.1", "convolution", "conv", bt * c * (h + 1) * (w + 1) + c * c * 9 + c,
                 bt * c * h2 * w2, conv)  # fmt: skip
        if mode == "downsample3d":
            frame = b * c * h2 * w2
            if self._slot() is None:
                self.row(m, "clone", "movement", t * frame, t * frame)
                self.cache[self.idx] = t
            else:
                self.row(m, "clone", "movement", frame, frame)
                self.row(m, "cat", "movement", (1 + t) * frame, (1 + t) * frame)
                t = self.causal_conv(f"{m}.time_conv", c, c, (3, 1, 1), 1 + t, h2, w2, pad=False, stride_t=2)
                self.cache[self.idx] = 1
            self.idx += 1
        return t, h2, w2

    def residual_down_block(
        self, m: str, level: int, c_in: int, c_out: int, t: int, h: int, w: int
    ) -> tuple[int, int, int]:
        """``WanResidualDownBlock`` (Wan2.2): ``x_copy``, residual blocks, the downsampler, plus the
        ``AvgDown3D`` shortcut (time padded to the factor, the factors folded into channels by a
        copy where they are > 1, a mean over each channel group)."""
        b, cfg = self.b, self.cfg
        down = level != len(cfg.dim_mult) - 1
        f_t = 2 if down and cfg.temperal_downsample[level] else 1
        f_s = 2 if down else 1
        self.row(m, "clone", "movement", b * c_in * t * h * w, b * c_in * t * h * w)
        c = c_in
        for r in range(cfg.num_res_blocks):
            self.resblock(f"{m}.resnets.{r}", c, c_out, t, h, w)
            c = c_out
        t_out, h_out, w_out = t, h, w
        if down:
            mode = "downsample3d" if f_t == 2 else "downsample2d"
            t_out, h_out, w_out = self.downsample(f"{m}.downsampler", mode, c_out, t, h, w)
        padded = b * c_in * (t + (f_t - t % f_t) % f_t) * h * w
        self.row(f"{m}.avg_shortcut", "constant_pad_nd", "movement", b * c_in * t * h * w, padded)
        if f_t * f_s > 1:
            self.row(f"{m}.avg_shortcut", "clone", "movement", padded, padded)
        out = b * c_out * t_out * h_out * w_out
        self.row(f"{m}.avg_shortcut", "mean", "reduction", padded, out)
        self.row(m, "add", "elementwise", 2 * out, out)
        return t_out, h_out, w_out

    def encoder_chunk(self, t: int, h: int, w: int) -> tuple[int, int, int]:
        """One ``encoder`` call on ``t`` frames; returns its output ``(t, h, w)``."""
        cfg = self.cfg
        dims = [cfg.base_dim * u for u in [1, *cfg.dim_mult]]
        self.idx = 0
        self.cached_conv("encoder", "encoder.conv_in", cfg.in_channels, dims[0], t, h, w)
        j, levels = 0, len(cfg.dim_mult)
        for i, (c_in, c_out) in enumerate(pairwise(dims)):
            if cfg.is_residual:
                t, h, w = self.residual_down_block(f"encoder.down_blocks.{i}", i, c_in, c_out, t, h, w)
                continue
            for _ in range(cfg.num_res_blocks):
                self.resblock(f"encoder.down_blocks.{j}", c_in, c_out, t, h, w)
                c_in, j = c_out, j + 1
            if i == levels - 1:
                continue
            mode = "downsample3d" if cfg.temperal_downsample[i] else "downsample2d"
            t, h, w = self.downsample(f"encoder.down_blocks.{j}", mode, c_out, t, h, w)
            j += 1
        last = dims[-1]
        self.resblock("encoder.mid_block.resnets.0", last, last, t, h, w)
        self.attention("encoder.mid_block.attentions.0", last, t, h, w)
        self.resblock("encoder.mid_block.resnets.1", last, last, t, h, w)
        self.rms_norm("encoder.norm_out", last, t * h * w)
        self.row("encoder.nonlinearity", "silu", "elementwise", self.b * last * t * h * w, self.b * last * t * h * w)
        self.cached_conv("encoder", "encoder.conv_out", last, 2 * cfg.z_dim, t, h, w)
        return t, h, w

    def chunks(self, latent_frames: int, times: int, run: Callable[[int], tuple[int, int]]) -> int:
        """The chunk loop of ``_decode`` and ``_encode``: ``run(i)`` walks chunk ``i`` and returns the
        frames it makes and the elements per frame; each chunk after the first is joined to the
        output by a ``cat``. From the second chunk on every chunk runs the same ops on the same
        shapes but for the frames its causal convs read from the cache (the second chunk reads the
        first's, the later ones full caches): the second is walked once for all of them, its rows
        that read the cache split by state (:meth:`states`). Rows run ``times`` times (identical
        encodes walked once). Returns the frames made."""
        first = made = size = 0
        for i in range(min(latent_frames, 2)):
            self.times = times * (latent_frames - 1 if i else 1)
            self.later = times * (latent_frames - 2) if i else 0
            made, size = run(i)
            self.times, self.later = times, 0
            first = first or made
        self.joins(first, made, size, latent_frames)
        return first + (latent_frames - 1) * made

    def joins(self, first: int, made: int, size: int, latent_frames: int) -> None:
        """The ``cat`` joining chunk ``i`` (``1 <= i < latent_frames``) to the output so far: the
        first chunk's ``first`` frames and ``i`` more chunks' ``made``, of ``size`` elements each."""
        for i in range(1, latent_frames):
            n = (first + i * made) * size
            self.row("", "cat", "movement", n, n)

    def chunk(self, h: int, w: int) -> int:
        """One ``decoder`` call on one latent frame; returns the video frames it makes."""
        cfg, dims = self.cfg, self.cfg.decoder_dims
        self.idx, t = 0, 1
        self.cached_conv("decoder", "decoder.conv_in", cfg.z_dim, dims[0], t, h, w)
        self.resblock("decoder.mid_block.resnets.0", dims[0], dims[0], t, h, w)
        self.attention("decoder.mid_block.attentions.0", dims[0], t, h, w)
        self.resblock("decoder.mid_block.resnets.1", dims[0], dims[0], t, h, w)
        for i, (c_in, c_out, mode) in enumerate(cfg.decoder_up_block_dims()):
            block = f"decoder.up_blocks.{i}"
            if cfg.is_residual:  # x_copy for the DupUp3D shortcut
                self.row(block, "clone", "movement", self.b * c_in * t * h * w, self.b * c_in * t * h * w)
            for j in range(cfg.num_res_blocks + 1):
                self.resblock(f"{block}.resnets.{j}", c_in if j == 0 else c_out, c_out, t, h, w)
            if mode is None:
                continue
            up = f"{block}.upsampler" if cfg.is_residual else f"{block}.upsamplers.0"
            t_in, t = t, self.upsample(up, mode, c_out, c_out // cfg.upsample_out, t, h, w)
            if cfg.is_residual:  # + DupUp3D(x_copy): channels repeated into time and space, then added
                f_t = 2 if mode == "upsample3d" else 1
                n = self.b * c_out * f_t * 4 * t_in * h * w  # repeat_interleave, then permute(...).contiguous()
                self.row(f"{block}.avg_shortcut", "clone", "movement", n, n, calls=2)
                out = self.b * c_out * t * 4 * h * w
                self.row(block, "add", "elementwise", 2 * out, out)
            h, w = 2 * h, 2 * w
        last = dims[-1]
        self.rms_norm("decoder.norm_out", last, t * h * w)
        self.row("decoder.nonlinearity", "silu", "elementwise", self.b * last * t * h * w, self.b * last * t * h * w)
        self.cached_conv("decoder", "decoder.conv_out", last, cfg.out_channels, t, h, w)
        return t


class _VaeTerms(_VaeSim):
    """The same walk reduced to roofline terms as it goes (:class:`hybrid.timing.Terms`): what sizing
    times, without a group per zero-FLOP op."""

    def __init__(self, cfg: AutoencoderKLWanConfig, batch: int, stage: str = STAGE) -> None:
        super().__init__(cfg, batch, stage)
        self.terms = Terms()
        self.blocks: dict[tuple[Any, ...], tuple[list[Term], list[int | str | None]]] = {}
        """Residual blocks already walked, by shapes, runs and the cache slots they read: their terms
        and the slots they leave (:meth:`resblock`)."""

    def resblock(self, m: str, c_in: int, c_out: int, t: int, h: int, w: int) -> None:
        """:meth:`closed_resblock`, once per shapes, runs and cache slots in a walk (the decoder
        repeats blocks within a chunk)."""
        i, cache = self.idx, self.cache
        key = (c_in, c_out, t, h, w, self.times, self.later, *cache[i : i + 2])  # a slot not made yet reads as absent
        seen = self.blocks.get(key)
        if seen is None:
            seen = self.blocks[key] = (self.closed_resblock(c_in, c_out, t, h, w), cache[i : i + 2])
        else:
            cache[i : i + 2], self.idx = seen[1], i + 2
        self.terms.extend(seen[0])

    def closed_resblock(self, c_in: int, c_out: int, t: int, h: int, w: int) -> list[Term]:
        """:meth:`_VaeSim.resblock`'s rows summed in closed form, as terms: the shortcut, per half
        the RMS norm (a reduction and 5 elementwise ops), SiLU, the kept frames (a clone, a ``cat``
        while the cache fills), the cached frames' ``cat``, the pad and the conv; the residual add.
        Moves the walk past the block's two cache slots."""
        b, hw, cache, n_times = self.b, h * w, self.cache, self.times
        p = t * hw
        out: list[Term] = []
        movement = move_calls = 0
        if c_in != c_out:  # conv_shortcut: an empty causal pad (a copy), the 1x1x1 conv
            movement, move_calls = 2 * b * c_in * p, 1
            read = b * c_in * p + c_out * c_in + c_out
            out.append(("conv", ops.conv3d(b, c_in, c_out, K1, (t, h, w)) * n_times,
                        (read + b * c_out * p) * F32 * n_times, n_times))  # fmt: skip
        padded = (t + 2) * (h + 2) * (w + 2)
        reduction = elementwise = cache_moved = cache_calls = 0  # cache_*: per run of its state (:meth:`states`)
        for c_a, c_b in ((c_in, c_out), (c_out, c_out)):
            prev = self._slot()
            cloned, kept = _kept_frames(t, prev is not None)
            movement += 2 * b * c_a * cloned * hw  # keep: clone
            if kept > cloned:
                movement, move_calls = movement + 2 * b * c_a * kept * hw, move_calls + 1  # keep: cat
            for frames, runs in self.states(prev if isinstance(prev, int) else 0, kept):
                n = b * c_a * (t + frames) * hw
                if frames:  # the cached frames' cat, then the pad
                    cache_moved, cache_calls = cache_moved + 3 * n * runs, cache_calls + 2 * runs
                else:
                    cache_moved, cache_calls = cache_moved + n * runs, cache_calls + runs
                cache_moved += b * c_a * padded * runs
            move_calls += 1
            norm_reduction, norm_elementwise = _rms_norm_elements(b, c_a, p)
            reduction += norm_reduction
            elementwise += norm_elementwise + 2 * b * c_a * p  # the norm, then SiLU
            read = b * c_a * padded + c_b * c_a * 27 + c_b
            out.append(("conv", ops.conv3d(b, c_a, c_b, K3, (t, h, w)) * n_times,
                        (read + b * c_b * p) * F32 * n_times, n_times))  # fmt: skip
            cache[self.idx] = kept
            self.idx += 1
        elementwise += 3 * b * c_out * p
        out.append(("movement", 0, (movement * n_times + cache_moved) * F32, move_calls * n_times + cache_calls))
        out.append(("reduction", 0, reduction * F32 * n_times, 2 * n_times))
        out.append(("elementwise", 0, elementwise * F32 * n_times, 13 * n_times))
        return out

    def joins(self, first: int, made: int, size: int, latent_frames: int) -> None:
        k = latent_frames - 1  # the cats' frames: k * first + made * (1 + 2 + ... + k)
        n = (k * first + made * k * (k + 1) // 2) * size
        if k:
            self.terms.append(("movement", 0, 2 * n * F32 * self.times, k * self.times))

    def rms_norm(self, module: str, c: int, positions: int) -> None:
        k = self.times
        reduction, elementwise = _rms_norm_elements(self.b, c, positions)
        self.terms.append(("reduction", 0, reduction * F32 * k, k))
        self.terms.append(("elementwise", 0, elementwise * F32 * k, 5 * k))

    def nearest_index(self, r: str, bt: int, c: int, h: int, w: int) -> None:
        k = self.times
        factory, elementwise, movement = _nearest_index_bytes(bt, c, h, w)
        self.terms.append(("factory", 0, factory * k, 2 * k))
        self.terms.append(("elementwise", 0, elementwise * k, 4 * k))
        self.terms.append(("movement", 0, movement * k, 3 * k))

    def row(
        self, module: str, op: str, category: str, read: int, written: int, flops: int = 0, calls: int = 1
    ) -> None:  # straight to Terms, fewer calls than row -> emit: sizing waits for this walk
        n = calls * self.times
        self.terms.append((category, flops * n, (read + written) * F32 * n, n))

    def emit(self, module: str, op: str, category: str, flops: int, calls: int, read: int, written: int) -> None:
        n = calls * self.times
        self.terms.append((category, flops * n, (read + written) * n, n))


def vae_decode_rows(
    cfg: AutoencoderKLWanConfig, batch: int, latent_frames: int, latent_height: int, latent_width: int
) -> list[OpGroup]:
    """Every op one ``AutoencoderKLWan.decode`` costs (FLOPs and bytes), keyed like the tracer's
    rows: ``post_quant_conv``, one decoder call per latent frame with its feature cache, the video
    grown by one ``cat`` per chunk, Wan2.2's unpatchify, the final clamp. Both decoders: Wan2.1's,
    and Wan2.2's residual up blocks with their ``DupUp3D`` shortcut (``x_copy``, channels repeated
    into time and space; the first chunk keeps its last frame)."""
    return _decode_walk(_VaeSim(cfg, batch), latent_frames, latent_height, latent_width).out


def vae_decode_terms(
    cfg: AutoencoderKLWanConfig, batch: int, latent_frames: int, latent_height: int, latent_width: int
) -> tuple[Term, ...]:
    """:func:`hybrid.timing.roofline_terms` of :func:`vae_decode_rows`, from the same walk."""
    sim = _VaeTerms(cfg, batch)
    _decode_walk(sim, latent_frames, latent_height, latent_width)
    return sim.terms.freeze()


def _decode_walk(sim: _VaeSim, latent_frames: int, latent_height: int, latent_width: int) -> _VaeSim:
    cfg, batch = sim.cfg, sim.b
    h, w = latent_height, latent_width
    sim.causal_conv("post_quant_conv", cfg.z_dim, cfg.z_dim, K1, latent_frames, h, w)
    s = 2 ** len(cfg.temperal_downsample)
    pixels = batch * cfg.out_channels * h * s * w * s
    frames = sim.chunks(latent_frames, 1, lambda i: (sim.chunk(h, w), pixels))
    if cfg.patch_size:  # unpatchify: the 2x2 patches out of the channels (permute(...).contiguous())
        sim.row("", "clone", "movement", frames * pixels, frames * pixels)
    sim.row("", "clamp", "elementwise", frames * pixels, frames * pixels)
    return sim


def vae_encode_rows(
    cfg: AutoencoderKLWanConfig, batch: int, latent_frames: int, height: int, width: int, calls: int = 1
) -> list[OpGroup]:
    """Every op of ``calls`` ``AutoencoderKLWan.encode`` calls (FLOPs and bytes), keyed like the
    tracer's rows: one encoder call per latent frame (1 frame, then 4) with its feature cache, the
    latents grown by one ``cat`` per chunk, ``quant_conv``, and the posterior's clamp and exps.
    Wan2.1's encoder at any length; Wan2.2's (patchify, residual down blocks with ``AvgDown3D``)
    on one frame, all TI2V encodes (``NotImplementedError`` beyond)."""
    return _encode_walk(_VaeSim(cfg, batch, ENCODE_STAGE), latent_frames, height, width, calls).out


def vae_encode_terms(
    cfg: AutoencoderKLWanConfig, batch: int, latent_frames: int, height: int, width: int, calls: int = 1
) -> tuple[Term, ...]:
    """:func:`hybrid.timing.roofline_terms` of :func:`vae_encode_rows`, from the same walk."""
    sim = _VaeTerms(cfg, batch, ENCODE_STAGE)
    _encode_walk(sim, latent_frames, height, width, calls)
    return sim.terms.freeze()


def _encode_walk(sim: _VaeSim, latent_frames: int, height: int, width: int, calls: int) -> _VaeSim:
    cfg, batch = sim.cfg, sim.b
    if cfg.is_residual and latent_frames > 1:
        raise NotImplementedError("vae_encode_rows: the Wan2.2 encoder is written for one frame (TI2V's image)")
    if calls == 0:
        return sim
    sim.times = calls  # every row once per encode
    t_chunk, p = cfg.scale_factor_temporal, cfg.patch_size or 1
    if cfg.patch_size:  # patchify: 2x2 pixel patches into channels (permute(...).contiguous())
        video = batch * 3 * ((latent_frames - 1) * t_chunk + 1) * height * width
        sim.row("", "clone", "movement", video, video)
    height, width = height // p, width // p
    latent_hw = [0, 0]  # the encoder's output size, the same for every chunk

    def run(i: int) -> tuple[int, int]:
        t, latent_hw[0], latent_hw[1] = sim.encoder_chunk(1 if i == 0 else t_chunk, height, width)
        return t, batch * 2 * cfg.z_dim * latent_hw[0] * latent_hw[1]

    frames = sim.chunks(latent_frames, calls, run)
    h, w = latent_hw
    sim.causal_conv("quant_conv", 2 * cfg.z_dim, 2 * cfg.z_dim, K1, frames, h, w)
    half = batch * cfg.z_dim * frames * h * w  # DiagonalGaussianDistribution: logvar clamped, std, var
    for op in ("clamp", "mul", "exp"):
        sim.row("", op, "elementwise", half, half, calls=2 if op == "exp" else 1)
    return sim


class _Live:
    """The live storages of an eager replay: allocations and frees in the order the code makes
    them, the largest total reached."""

    def __init__(self) -> None:
        self.bytes = 0
        self.peak = 0
        self.transient_peak = 0
        """The largest total with a math attention kernel's own allocations on top (:meth:`transient`)."""

    @property
    def peak_materialized(self) -> int:
        """The peak when attention runs PyTorch's math kernel: its own allocations on top."""
        return max(self.peak, self.transient_peak)

    def alloc(self, n: int) -> int:
        self.bytes += n
        if self.bytes > self.peak:
            self.peak = self.bytes
        return n

    def transient(self, n: int) -> None:
        """A math attention kernel's ``n`` bytes, allocated and freed on top of the live set."""
        self.transient_peak = max(self.transient_peak, self.bytes + n)

    def free(self, n: int) -> None:
        """Frees ``n`` bytes (the sum of the tensors dropped at once)."""
        self.bytes -= n


_Slot = tuple[int | str | None, int]
"""A feature-cache slot of the peak replays: the frames it holds (or ``"Rep"``, or ``None`` before
the first chunk) and their bytes."""


def _resblock_effect(
    b: int, c_in: int, c_out: int, t: int, h: int, w: int, slot_1: _Slot, slot_2: _Slot
) -> tuple[int, int, int, _Slot, _Slot]:
    """A residual block's allocations (:meth:`_DecodePeak._resblock`) in closed form, from the live
    bytes at each allocation that can set a new high (the norm's third full tensor, the kept frames,
    the pad beside the cached frames' ``cat``, the conv output beside the pad, the residual sum):
    how far above its start the block peaks, the bytes it adds (its output, the caches swapped), its
    output's bytes and the slots it leaves."""
    hw = h * w
    p = t * hw
    out = b * c_out * p * F32
    shortcut = out if c_in != c_out else 0
    top = b * c_in * p * F32 + out if shortcut else 0  # the shortcut's pad and conv output
    cur = shortcut  # live bytes above the block's start
    x = 0  # the block's current tensor
    slots = []
    for c, c_next, (frames, old) in ((c_in, c_out, slot_1), (c_out, c_out, slot_2)):
        n = b * c * p * F32
        if cur + 3 * n > top:  # the norm: x / denom, * scale and * gamma (its peak: n >= b * p)
            top = cur + 3 * n
        cur += n - x  # the SiLU's output; the norm's and x freed
        cloned, kept = _kept_frames(t, frames is not None)
        keep = b * c * cloned * hw * F32
        if kept > cloned:  # the clone widened by a cat with the cached frame
            wider = b * c * kept * hw * F32
            if cur + keep + wider > top:
                top = cur + keep + wider
            keep = wider
        cached = frames if isinstance(frames, int) else 0
        cat = b * c * (cached + t) * hw * F32 if cached else 0
        pad = b * c * (t + 2) * (h + 2) * (w + 2) * F32
        x = b * c_next * p * F32
        if cur + keep + pad + (cat if cat > x else x) > top:  # the pad beside the cat, then beside the conv output
            top = cur + keep + pad + (cat if cat > x else x)
        cur += keep + x - old - n  # the conv's output kept, the old cache and the SiLU's output freed
        slots.append((kept, keep))
    if cur + out > top:
        top = cur + out
    return top, cur + out - x - shortcut, out, slots[0], slots[1]


class _DecodePeak:
    """Replays the allocations of ``AutoencoderKLWan._decode`` (both decoders) to find its
    activation peak: the feature cache of every causal conv, the post-quant latents and the
    growing video persist across chunks; inside a chunk each caller holds its input while the
    callee runs, and temporaries die as Python drops them."""

    def __init__(self, cfg: AutoencoderKLWanConfig, batch: int) -> None:
        self.cfg, self.b, self.live = cfg, batch, _Live()
        self.cache: list[_Slot] = []
        self.idx = 0
        self.blocks: dict[tuple[Any, ...], tuple[int, int, int, _Slot, _Slot]] = {}
        """Residual blocks already replayed, by shapes and the cache slots they read (:meth:`resblock`)."""

    def _slot(self) -> _Slot:
        if self.idx == len(self.cache):
            self.cache.append((None, 0))
        return self.cache[self.idx]

    def joined_chunks(self, latent_frames: int, run: Callable[[int], int]) -> tuple[int, int]:
        """The allocations of the chunk loop: ``run(i)`` replays chunk ``i`` and returns its output's
        bytes, joined to the output so far by ``torch.cat([out, out_])`` (``out_`` lives until the
        next chunk returns). From the second chunk on the caches hold full-size entries and every
        chunk allocates alike, each starting with more output: of those only the last can peak, the
        others only add their output, in closed form. Returns ``(output bytes, last chunk bytes)``."""
        live, out, previous = self.live, 0, 0

        def join(made: int) -> None:
            nonlocal out, previous
            if out:
                live.free(previous)
                joined = live.alloc(out + made)
                live.free(out)
                out, previous = joined, made
            else:
                out = made

        for i in range(min(latent_frames, 2)):
            join(run(i))
        if latent_frames > 3:  # chunks 2 .. T-2 (k of them), each m bytes like the second
            k, m = latent_frames - 3, previous
            # each: its output (+m), the previous one's freed (-m), the join (+out + m), the old output
            # freed: m more live, and m more output, per chunk; the highest join the last one's
            high = out + m + 2 * (k - 1) * m
            live.alloc(high)
            live.free(high - k * m)
            out += k * m
        if latent_frames > 2:
            join(run(latent_frames - 1))
        return out, previous

    def norm(self, n: int) -> int:
        """``WanRMS_norm`` of an ``n``-byte input the caller holds; returns its output's bytes. Its
        allocations in order: the vector norm and its clamp (one value per position, ``s`` bytes
        each, the first freed by the clamp), ``x / denom`` (the clamp freed), ``* scale``,
        ``* gamma`` (``* scale`` freed), ``+ bias`` (``* gamma`` and ``x / denom`` freed): the live
        bytes above the input run ``s, 2s, s, s + n, n, 2n, 3n, 2n, 3n, n``, whose high is ``3n``
        (``n >= s``: one channel or more)."""
        self.live.alloc(3 * n)
        self.live.free(2 * n)
        return n

    def _norm(self, n: int, positions: int) -> int:
        """:meth:`norm` allocation by allocation (what :meth:`_resblock` replays)."""
        live, small = self.live, self.b * positions * F32
        n1 = live.alloc(small)  # vector norm
        n2 = live.alloc(small)  # clamp_min
        live.free(n1)
        d = live.alloc(n)  # x / denom
        live.free(n2)
        m1 = live.alloc(n)  # * scale
        m2 = live.alloc(n)  # * gamma
        live.free(m1)
        a = live.alloc(n)  # + bias
        live.free(m2 + d)
        return a

    def conv(self, c_in: int, c_out: int, kernel: tuple[int, int, int], t: int, h: int, w: int, cached: int) -> int:
        """A causal conv on an input held by the caller: cat with the cache, pad, convolve."""
        live, b = self.live, self.b
        kt, kh, kw = kernel
        pt, ph, pw = 2 * (kt // 2), kh // 2, kw // 2
        cat = 0
        if cached and pt > 0:
            cat = live.alloc(b * c_in * (cached + t) * h * w * F32)
            t, pt = t + cached, pt - cached
        pad = live.alloc(b * c_in * (t + pt) * (h + 2 * ph) * (w + 2 * pw) * F32)
        if cat:
            live.free(cat)
        out = live.alloc(b * c_out * (t + pt - kt + 1) * h * w * F32)
        live.free(pad)
        return out

    def cached_conv(self, c_in: int, c_out: int, t: int, h: int, w: int) -> int:
        """Keep the last frames for the next chunk, convolve with the previous ones, swap the cache."""
        live, b, hw = self.live, self.b, h * w
        frames, old = self._slot()
        cloned, kept = _kept_frames(t, frames is not None)
        keep = live.alloc(b * c_in * cloned * hw * F32)
        if kept > cloned:
            wider = live.alloc(b * c_in * kept * hw * F32)
            live.free(keep)
            keep = wider
        out = self.conv(c_in, c_out, K3, t, h, w, frames if isinstance(frames, int) else 0)
        live.free(old)
        self.cache[self.idx] = (kept, keep)
        self.idx += 1
        return out

    def resblock(self, c_in: int, c_out: int, t: int, h: int, w: int) -> int:
        """:meth:`_resblock` in closed form (:func:`_resblock_effect`), once per shapes and cache slots
        in a replay (the decoder repeats blocks within and across chunks). Returns the bytes of the
        block's output; its input stays with the caller."""
        i, cache, live = self.idx, self.cache, self.live
        while len(cache) < i + 2:
            cache.append((None, 0))
        key = (c_in, c_out, t, h, w, cache[i], cache[i + 1])
        effect = self.blocks.get(key)
        if effect is None:
            effect = self.blocks[key] = _resblock_effect(self.b, c_in, c_out, t, h, w, cache[i], cache[i + 1])
        top, net, out, cache[i], cache[i + 1] = effect
        self.idx = i + 2
        top += live.bytes
        if top > live.peak:
            live.peak = top
        live.bytes += net
        return out

    def _resblock(self, c_in: int, c_out: int, t: int, h: int, w: int) -> int:
        """The block allocation by allocation: what :meth:`resblock` is checked against."""
        live, b = self.live, self.b
        hw = h * w
        shortcut = self.conv(c_in, c_out, K1, t, h, w, 0) if c_in != c_out else 0
        x, c = 0, c_in  # x: the block's own current tensor (0 while it is still the input)
        for c_next in (c_out, c_out):
            a = self._norm(b * c * t * hw * F32, t * hw)
            live.free(x)
            s = live.alloc(b * c * t * hw * F32)  # silu
            live.free(a)
            x_new = self.cached_conv(c, c_next, t, h, w)
            live.free(s)
            x, c = x_new, c_next
        out = live.alloc(b * c_out * t * hw * F32)  # x + h
        live.free(x + shortcut)
        return out

    def attention(self, c: int, t: int, h: int, w: int) -> int:
        """The mid block's attention on an ``n``-byte input the caller holds; returns its output's
        bytes. Its allocations in order: the norm (its high ``3n`` above the input, its output
        ``n``), ``to_qkv`` (``3n``; the norm's output freed), q, k and v made contiguous (``3n``;
        ``to_qkv`` freed), the attention kernel (a math kernel's own allocations on top) and its
        output (``n``), ``proj`` (``n``; the kernel's output freed), ``+ identity`` (``n``; ``proj``
        and the contiguous q, k, v freed): the live bytes above the input run ``3n, n, 4n, 3n, 6n,
        3n`` (the kernel runs here), ``4n, 5n, 4n, 5n, n``, whose high is ``6n``."""
        live, n = self.live, self.b * t * c * h * w * F32
        live.alloc(6 * n)
        live.free(3 * n)
        live.transient(ops.math_attention_bytes(self.b * t, h * w, h * w, c, itemsize=F32))
        live.free(2 * n)
        return n

    def upsample(self, mode: str, c: int, c_up: int, t: int, h: int, w: int) -> tuple[int, int]:
        """Returns ``(output bytes, output frames)``; the input stays with the caller."""
        live, b, hw = self.live, self.b, h * w
        x = 0
        if mode == "upsample3d":
            frames, old = self._slot()
            if frames is None:
                self.cache[self.idx] = ("Rep", 0)
            else:
                cloned, kept = _kept_frames(t, True)
                keep = live.alloc(b * c * cloned * hw * F32)
                if kept > cloned:
                    zeros = live.alloc(b * c * cloned * hw * F32) if frames == "Rep" else 0
                    wider = live.alloc(b * c * kept * hw * F32)
                    live.free(keep + zeros)
                    keep = wider
                cached = 0 if frames == "Rep" else int(frames)
                tc = self.conv(c, 2 * c, (3, 1, 1), t, h, w, cached)
                live.free(old)
                self.cache[self.idx] = (kept, keep)
                x = live.alloc(2 * b * c * t * hw * F32)  # stack
                live.free(tc)
                t *= 2
            self.idx += 1
        bt = b * t
        if t > 1 and b > 1:
            folded = live.alloc(bt * c * hw * F32)
            live.free(x)
            x = folded
        index = 2 * (h + w) * (F32 + I64)  # nearest-exact indices (float, then int64), both axes
        live.alloc(index)
        live.free(index)
        up = live.alloc(4 * bt * c * hw * F32)
        if t > 1 and b == 1:
            strided, up = up, live.alloc(4 * bt * c * hw * F32)
            live.free(strided)
        out = live.alloc(4 * bt * c_up * hw * F32)
        live.free(up + x)
        return out, t

    def chunk(self, h: int, w: int) -> int:
        """One decoder call; returns the bytes of the frames it makes (the chunk output)."""
        cfg, dims, live = self.cfg, self.cfg.decoder_dims, self.live
        self.idx, t = 0, 1
        x = self.cached_conv(cfg.z_dim, dims[0], t, h, w)
        for step in ("resnet", "attention", "resnet"):
            y = self.resblock(dims[0], dims[0], t, h, w) if step == "resnet" else self.attention(dims[0], t, h, w)
            live.free(x)
            x = y
        for c_in, c_out, mode in cfg.decoder_up_block_dims():
            y = 0  # the up block's current tensor; its input x stays with the decoder
            copy = live.alloc(self.b * c_in * t * h * w * F32) if cfg.is_residual else 0  # x_copy
            c, t_in = c_in, t
            for _ in range(cfg.num_res_blocks + 1):
                z = self.resblock(c, c_out, t, h, w)
                live.free(y)
                y, c = z, c_out
            if mode is not None:
                z, t = self.upsample(mode, c_out, c_out // cfg.upsample_out, t, h, w)
                live.free(y)
                y, h, w = z, 2 * h, 2 * w
                if cfg.is_residual:  # + DupUp3D(x_copy): repeat_interleave, then a contiguous permute
                    f_t = 2 if mode == "upsample3d" else 1
                    n = self.b * c_out * f_t * 4 * t_in * (h // 2) * (w // 2) * F32
                    r1 = live.alloc(n)
                    r2 = live.alloc(n)
                    live.free(r1)
                    z = live.alloc(self.b * c_out * t * h * w * F32)
                    live.free(r2 + y)
                    y = z
            live.free(copy + x)
            x = y
        last, n = dims[-1], self.b * dims[-1] * t * h * w * F32
        a = self.norm(n)
        live.free(x)
        s = live.alloc(n)
        live.free(a)
        out = self.cached_conv(last, cfg.out_channels, t, h, w)
        live.free(s)
        return out


def vae_decode_peak_bytes(
    cfg: AutoencoderKLWanConfig,
    batch: int,
    latent_frames: int,
    latent_height: int,
    latent_width: int,
    materialized: bool = False,
) -> int:
    """The activation peak of one ``AutoencoderKLWan.decode`` (see :func:`_decode_peaks`)."""
    return _decode_peaks(cfg, batch, latent_frames, latent_height, latent_width)[materialized]


@lru_cache(maxsize=256)
def _decode_peaks(
    cfg: AutoencoderKLWanConfig, batch: int, latent_frames: int, latent_height: int, latent_width: int
) -> tuple[int, int]:
    """The activation peak of one ``AutoencoderKLWan.decode`` (the tracer's ``peak_activation_bytes``)
    by replaying its allocations (:class:`_DecodePeak`): both decoders (Wan2.2's residual up blocks
    hold ``x_copy`` and add the ``DupUp3D`` shortcut; its video is unpatchified). ``materialized``:
    with PyTorch's math attention in the mid block."""
    sim = _DecodePeak(cfg, batch)
    live, h, w = sim.live, latent_height, latent_width
    z = batch * cfg.z_dim * latent_frames * h * w * F32
    pad = live.alloc(z)  # post_quant_conv: the (empty) causal pad, then the conv
    x = live.alloc(z)
    live.free(pad)
    out, previous = sim.joined_chunks(latent_frames, lambda i: sim.chunk(h, w))
    if cfg.patch_size:  # unpatchify: a contiguous permute of the whole video
        video = live.alloc(out)
        live.free(out)
        out = video
    clamped = live.alloc(out)
    live.free(clamped + out + previous + x + sum(n for _, n in sim.cache))
    return live.peak, live.peak_materialized


class _EncodePeak(_DecodePeak):
    """Replays the allocations of ``AutoencoderKLWan._encode`` and the posterior ``encode`` builds."""

    def downsample(self, mode: str, c: int, t: int, h: int, w: int) -> tuple[int, int, int, int]:
        """Returns ``(output bytes, t, h, w)``; the input stays with the caller."""
        live, b = self.live, self.b
        h2, w2 = (h - 2) // 2 + 1, (w - 2) // 2 + 1
        pad = live.alloc(b * t * c * (h + 1) * (w + 1) * F32)
        x = live.alloc(b * t * c * h2 * w2 * F32)
        live.free(pad)
        if mode == "downsample3d":
            frames, old = self._slot()
            frame = b * c * h2 * w2 * F32
            if frames is None:
                self.cache[self.idx] = (t, live.alloc(t * frame))  # x.clone()
            else:
                keep = live.alloc(frame)  # x[:, :, -1:].clone()
                cat = live.alloc((1 + t) * frame)
                pad3 = live.alloc((1 + t) * frame)  # the time conv's (empty) causal pad
                t = (1 + t - 3) // 2 + 1
                y = live.alloc(t * frame)
                live.free(pad3 + cat + x + old)
                x = y
                self.cache[self.idx] = (1, keep)
            self.idx += 1
        return x, t, h2, w2

    def residual_down(self, level: int, c_in: int, c_out: int, t: int, h: int, w: int) -> tuple[int, int, int, int]:
        live, b, cfg = self.live, self.b, self.cfg
        down = level != len(cfg.dim_mult) - 1
        f_t = 2 if down and cfg.temperal_downsample[level] else 1
        f_s = 2 if down else 1
        copy = live.alloc(b * c_in * t * h * w * F32)
        y, c = 0, c_in
        for _ in range(cfg.num_res_blocks):
            z = self.resblock(c, c_out, t, h, w)
            live.free(y)
            y, c = z, c_out
        t_out, h_out, w_out = t, h, w
        if down:
            mode = "downsample3d" if f_t == 2 else "downsample2d"
            z, t_out, h_out, w_out = self.downsample(mode, c_out, t, h, w)
            live.free(y)
            y = z
        padded = b * c_in * (t + (f_t - t % f_t) % f_t) * h * w * F32
        pad = live.alloc(padded)
        if f_t * f_s > 1:
            folded = live.alloc(padded)
            live.free(pad)
            pad = folded
        out_bytes = b * c_out * t_out * h_out * w_out * F32
        mean = live.alloc(out_bytes)
        live.free(pad)
        out = live.alloc(out_bytes)
        live.free(mean + y + copy)
        return out, t_out, h_out, w_out

    def encoder_chunk(self, t: int, h: int, w: int) -> tuple[int, int, int, int]:
        """One encoder call; returns ``(output bytes, t, h, w)``."""
        cfg, live = self.cfg, self.live
        dims = [cfg.base_dim * u for u in [1, *cfg.dim_mult]]
        self.idx = 0
        x = self.cached_conv(cfg.in_channels, dims[0], t, h, w)
        levels = len(cfg.dim_mult)
        for i, (c_in, c_out) in enumerate(pairwise(dims)):
            if cfg.is_residual:
                y, t, h, w = self.residual_down(i, c_in, c_out, t, h, w)
                live.free(x)
                x = y
                continue
            for _ in range(cfg.num_res_blocks):
                y = self.resblock(c_in, c_out, t, h, w)
                live.free(x)
                x, c_in = y, c_out
            if i != levels - 1:
                mode = "downsample3d" if cfg.temperal_downsample[i] else "downsample2d"
                y, t, h, w = self.downsample(mode, c_out, t, h, w)
                live.free(x)
                x = y
        last = dims[-1]
        for step in ("resnet", "attention", "resnet"):
            y = self.resblock(last, last, t, h, w) if step == "resnet" else self.attention(last, t, h, w)
            live.free(x)
            x = y
        n = self.b * last * t * h * w * F32
        a = self.norm(n)
        live.free(x)
        s = live.alloc(n)
        live.free(a)
        out = self.cached_conv(last, 2 * cfg.z_dim, t, h, w)
        live.free(s)
        return out, t, h, w


def vae_encode_peak_bytes(
    cfg: AutoencoderKLWanConfig, batch: int, latent_frames: int, height: int, width: int, materialized: bool = False
) -> int:
    """The activation peak of one ``AutoencoderKLWan.encode`` (see :func:`_encode_peaks`)."""
    return _encode_peaks(cfg, batch, latent_frames, height, width)[materialized]


@lru_cache(maxsize=256)
def _encode_peaks(
    cfg: AutoencoderKLWanConfig, batch: int, latent_frames: int, height: int, width: int
) -> tuple[int, int]:
    """The activation peak of one ``AutoencoderKLWan.encode`` of ``(latent_frames - 1) * 4 + 1``
    frames (the tracer's ``peak_activation_bytes``), by replaying its allocations: the encoder's
    chunks with their caches, the growing latents and the last chunk, ``quant_conv``, the caches
    cleared, then the posterior's clamped log-variance, std and variance. Wan2.1's encoder at any
    length, Wan2.2's on one frame (``NotImplementedError`` beyond, as :func:`vae_encode_rows`).
    ``materialized``: with PyTorch's math attention in the mid block."""
    if cfg.is_residual and latent_frames > 1:
        raise NotImplementedError("vae_encode_peak_bytes: the Wan2.2 encoder is written for one frame")
    sim = _EncodePeak(cfg, batch)
    live, p = sim.live, cfg.patch_size or 1
    frames = (latent_frames - 1) * cfg.scale_factor_temporal + 1
    video = live.alloc(batch * 3 * frames * height * width * F32) if cfg.patch_size else 0  # patchify
    h, w = height // p, width // p
    t_chunk = cfg.scale_factor_temporal
    out, previous = sim.joined_chunks(latent_frames, lambda i: sim.encoder_chunk(1 if i == 0 else t_chunk, h, w)[0])
    pad = live.alloc(out)  # quant_conv: the (empty) causal pad, then the conv
    enc = live.alloc(out)
    live.free(pad + sum(n for _, n in sim.cache))  # clear_cache()
    live.free(out + previous + video)
    half = enc // 2
    logvar = live.alloc(half)  # clamp
    scaled = live.alloc(half)  # 0.5 * logvar
    std = live.alloc(half)
    live.free(scaled)
    var = live.alloc(half)
    live.free(enc + logvar + std + var)
    return live.peak, live.peak_materialized
