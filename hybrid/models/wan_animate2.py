"""Wan-Animate-2 diffusion transformer (diffusers ``WanAnimate2Transformer3DModel``): the reference pass
that fills the K/V cache (``reference_pass``) and the denoising pass against it (``diffusion_core``).

Architecture (module paths as in diffusers 0.42, ``transformer_wan_animate_2.py``), ``D = dim``:

* ``patch_embedding``: ``Conv3d(in_dim -> D, kernel = stride = patch_size)`` over the latents joined with
  their condition (``in_dim = 16 + 20``).
* ``timesteps_proj`` (sinusoid) -> ``time_embedding`` (``freq_dim -> D -> D``, float32) ->
  ``time_projection`` (``D -> 6D``, float32); ``text_embedding`` (``text_dim -> D -> D``) over the padded
  ``text_len`` tokens; ``img_emb`` (``MLPProj``: LayerNorm, ``1280 -> 1280``, GELU, ``1280 -> D``,
  LayerNorm) over the CLIP features.
* ``blocks.{i}``: ``norm1`` (float32 LayerNorm) and the block's float32 ``modulation`` plus the time
  projection -> ``self_attn`` (``to_q/to_k/to_v/to_out.0``, RMS ``norm_q/norm_k`` over ``D``, the rotary
  embedding in float64 complex as the original ``rope_apply``) -> ``norm3`` (affine float32 LayerNorm) ->
  ``cross_attn`` over the text, plus an added K/V attention over the image tokens -> ``norm2`` +
  modulation -> ``ffn`` (``D -> ffn_dim``, tanh-GELU, ``ffn_dim -> D``).
* ``head``: float32 LayerNorm, its ``modulation`` plus the time embedding, ``head.head``
  (``D -> out_dim * prod(patch_size)``).

The reference pass (``kv_cache_mode="extract"``) runs this over the driving video's latents and stores every
layer's pre-rotary K and V. The denoising pass (``"cached"``) rotates the cached keys on the reference grid,
packs ``[generation | reference]`` tokens into 128-aligned buffers sized for the whole segment and runs
FlexAttention with a block mask: every generation token attends to all generation tokens plus the reference
tokens of its own frame. The unconditional pass of CFG skips block 9.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from functools import lru_cache
from math import prod
from typing import TYPE_CHECKING, Any, ClassVar

from hybrid import ops
from hybrid.dtypes import BF16, F32, I64
from hybrid.memo import on_clear
from hybrid.models.wan_dit import (
    IMAGE_CONTEXT_TEXT_LEN,
    IMAGE_CORE,
    WAN_OPS,
    _all_to_all,
    _gather_forward,
    _Walk,
    _wan_rope,
    float32_norm,
    gated_residual,
    modulate,
)
from hybrid.rows import SDPA_OP as SDPA
from hybrid.rows import CostRow, OpGroup
from hybrid.sinks import Peak, Rows, Sink, TermSink
from hybrid.timing import Dims, Term, attention_dims, conv_dims

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.geometry import CallShape

CLIP_DIM = 1280
"""``MLPProj(1280, dim)``: the CLIP ViT-H/14 hidden width ``img_emb`` takes (fixed in the class)."""

ROPE_POSITIONS = 512
"""``_rope_freqs`` builds each axis's table with ``rope_params(512, ...)``: no axis runs past 512 positions."""

MASK_BLOCK = 128
"""FlexAttention's default block size: the packed buffers are padded to a multiple of it."""


@dataclass(frozen=True)
class WanAnimate2Transformer3DConfig:
    """``WanAnimate2Transformer3DModel`` constructor arguments (diffusers names); the defaults are the
    class's, the published Wan-Animate-2 14B."""

    patch_size: tuple[int, int, int] = (1, 2, 2)
    text_len: int = 512
    in_dim: int = 36
    dim: int = 5120
    ffn_dim: int = 13824
    freq_dim: int = 256
    text_dim: int = 4096
    out_dim: int = 16
    num_heads: int = 40
    num_layers: int = 40
    cross_attn_norm: bool = True
    eps: float = 1e-6
    use_img_emb: bool = True
    refer_offset_t: int = 1
    refer_offset_h: int = 0
    refer_offset_w: int = -1
    refer_stride: int = 1

    COST_FREE_KEYS: ClassVar[frozenset[str]] = frozenset({"eps", "refer_offset_t", "refer_offset_h", "refer_offset_w"})
    """Keys of a published ``config.json`` that change no cost (besides ``_``-prefixed metadata)."""

    def __post_init__(self) -> None:
        if self.dim % self.num_heads or (self.dim // self.num_heads) % 2:
            raise ValueError(f"dim: {self.dim} must split into an even head size across num_heads {self.num_heads}")
        if len(self.patch_size) != 3 or min(self.patch_size) < 1:
            raise ValueError(f"patch_size: must be three positive ints, got {self.patch_size}")
        if self.num_layers < 1 or self.refer_stride < 1:
            raise ValueError(f"num_layers, refer_stride: must be >= 1, got {self.num_layers}, {self.refer_stride}")

    @property
    def inner_dim(self) -> int:
        """``D = dim`` (the name the other transformers' configs use)."""
        return self.dim

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    # the other Wan transformers' names of the same facts (what workloads and specs read of any of them)
    @property
    def num_attention_heads(self) -> int:
        return self.num_heads

    @property
    def attention_head_dim(self) -> int:
        return self.head_dim

    @property
    def in_channels(self) -> int:
        return self.in_dim

    @property
    def out_channels(self) -> int:
        return self.out_dim

    @property
    def image_dim(self) -> int | None:
        """The CLIP width ``img_emb`` takes, or ``None`` without it (``use_img_emb``)."""
        return CLIP_DIM if self.use_img_emb else None

    @property
    def added_kv_proj_dim(self) -> int | None:
        return self.dim if self.use_img_emb else None

    @property
    def pos_embed_seq_len(self) -> None:
        return None

    @property
    def rope_max_seq_len(self) -> int:
        """Positions per axis of the rotary tables (``rope_params(512, ...)`` in ``_rope_freqs``)."""
        return ROPE_POSITIONS

    def _block_parameters(self) -> int:
        """One block: four Linear layers and two RMS norms in each attention, ``add_k/add_v_proj`` and
        ``norm_added_k`` with image embeddings, the affine ``norm3``, the FFN and the ``6D`` modulation."""
        d, f = self.dim, self.ffn_dim
        attention = 4 * (d * d + d) + 2 * d
        added = 2 * (d * d + d) + d if self.use_img_emb else 0
        norm3 = 2 * d if self.cross_attn_norm else 0
        return 2 * attention + added + norm3 + 2 * d * f + f + d + 6 * d

    def fsdp_units(self) -> tuple[int, int, int]:
        """``(root, per block, blocks)`` parameters: the embedders and head, one block, the blocks (as
        :meth:`hybrid.models.wan_dit.WanTransformer3DConfig.fsdp_units`)."""
        block = self._block_parameters()
        return self.num_parameters() - self.num_layers * block, block, self.num_layers

    def num_parameters(self) -> int:
        """Parameters of ``WanAnimate2Transformer3DModel`` (``C = in_dim``, ``F = freq_dim``, ``T = text_dim``):

        ``patch: C*D*prod(p) + D``; ``text: (T+1)*D + (D+1)*D``; ``time: (F+1)*D + (D+1)*D + (D+1)*6D``;
        per block ``2*(4*(D*D + D) + 2D)`` (two attentions with their q/k norms) ``+ 2*(D*D + D) + D``
        (the image K/V and its norm) ``+ 2D`` (``norm3``) ``+ 2*D*ffn + ffn + D`` (FFN) ``+ 6D``; head
        ``(D+1)*out*prod(p) + 2D``; ``img_emb`` ``2*1280 + 1281*1280 + 1281*D + 2D``."""
        d, p = self.dim, prod(self.patch_size)
        patch = self.in_dim * d * p + d
        text = (self.text_dim + 1) * d + (d + 1) * d
        time = (self.freq_dim + 1) * d + (d + 1) * d + (d + 1) * 6 * d
        head = (d + 1) * self.out_dim * p + 2 * d
        image = 2 * CLIP_DIM + (CLIP_DIM + 1) * CLIP_DIM + (CLIP_DIM + 1) * d + 2 * d if self.use_img_emb else 0
        return patch + text + time + self.num_layers * self._block_parameters() + head + image

    def to_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``diffusers.WanAnimate2Transformer3DModel``."""
        return asdict(self)


WAN_ANIMATE_2_14B = WanAnimate2Transformer3DConfig()
"""Wan-Animate-2 14B: ``WanAnimate2Transformer3DModel``'s defaults in diffusers 0.42.1."""


# --------------------------------------------------------------------------------------------------
# The walk: every op of one call, keyed like the tracer's rows (module paths as diffusers names them),
# each output allocated after its op and freed where eager PyTorch drops it.

REFERENCE, COND, UNCOND = "reference", "cond", "uncond"
"""The three calls: the reference pass that fills the K/V cache, and a denoising step's conditional and
unconditional passes (the latter skips block :data:`UNCOND_SKIPPED_BLOCK`)."""

TRACE_KEYS = {
    REFERENCE: "wan_animate2.reference",
    COND: "wan_animate2.forward",
    UNCOND: "wan_animate2.forward_uncond",
}
"""The tracer's registry keys (:data:`hybrid.trace.build.TRACE_CALLS`) of the three calls."""

UNCOND_SKIPPED_BLOCK = 9
"""``WanAnimate2Transformer3DModel.forward``: ``if is_uncondtion and idx == 9: continue``."""


def packed_lengths(frames: int, hw: int) -> tuple[int, int]:
    """``(query, reference)`` lengths of the packed buffers of a denoising pass over a segment of ``frames``
    latent frames of ``hw`` tokens each: the reference slot plus the frames, and the frames' reference
    tokens, each padded to a multiple of :data:`MASK_BLOCK` (``packed_length``, ``packed_ref_length``)."""
    return -(-(frames + 1) * hw // MASK_BLOCK) * MASK_BLOCK, -(-frames * hw // MASK_BLOCK) * MASK_BLOCK


LIGHTX2V_OPS = "lightx2v"
""":attr:`hybrid.geometry.CallShape.dit_ops` of LightX2V's Wan-Animate-2 (``wan22_animate2_distilled``): diffusers'
ops in its own structure (:func:`_walk`)."""


@dataclass(frozen=True)
class _Structure:
    """Where a code base's Wan-Animate-2 forward departs from diffusers' (diffusers' ops in each: :func:`_walk`)."""

    owner: str
    """Whose structure it is, as a report names it; ``""``: diffusers', the structure the tracer builds."""
    reference_head: bool = True
    """The reference pass runs the head (diffusers'); LightX2V's ``infer_reference`` and the original's ``forward_ref``
    return after the blocks."""
    kv_pool: bool = False
    """LightX2V's cache: two buffers allocated before the reference pass (``StaticKVCachePool``), each layer's rotated K
    and its V copied in (``store_kv``); a denoising pass rotates no cached key and packs the reference K and V through
    zeroed buffers of their own (``_pack_stream``)."""
    joined_exchange: bool = False
    """The original's ``use_context_parallel`` over Ulysses ranks: q, k and v joined and exchanged by one all-to-all,
    the cache holding views of that exchange (its q too), the attention's float32 output exchanged back, a denoising
    pass's float32 head output all-gathered; else LightX2V's Ulysses (``_to_head_shard``)."""

    @property
    def traced(self) -> bool:
        """Whether the tracer builds this structure (diffusers' own): else sizing takes the stage from its walk."""
        return not self.owner

    def cached_views(self, ranks: int) -> bool:
        """Whether the cache holds views of the joined exchange (so each layer's q stays live with its K and V)."""
        return ranks > 1 and self.joined_exchange


STRUCTURES = {
    "diffusers": _Structure(""),
    LIGHTX2V_OPS: _Structure("LightX2V's", reference_head=False, kv_pool=True),
    WAN_OPS: _Structure("the original code's", reference_head=False, joined_exchange=True),
}
"""Each :attr:`~hybrid.geometry.CallShape.dit_ops` that runs Wan-Animate-2, by the structure its code walks."""


def packed_variables(shape: CallShape) -> dict[str, int]:
    """The fitted laws' ``Q`` and ``K`` of a denoising pass: its packed query and key lengths (patch 1x2x2)."""
    frames = shape.packed_latent_frames or shape.latent_frames
    lq, lr = packed_lengths(frames, (shape.latent_height // 2) * (shape.latent_width // 2))
    return {"Q": lq, "K": lq + lr}


def _geometry(cfg: WanAnimate2Transformer3DConfig, shape: CallShape) -> tuple[int, int]:
    """``(frames, hw)``: a segment's latent frames (the reference pass's) and its tokens per frame."""
    p_t, p_h, p_w = cfg.patch_size
    return shape.latent_frames // p_t, (shape.latent_height // p_h) * (shape.latent_width // p_w)


def _packed_frames(cfg: WanAnimate2Transformer3DConfig, shape: CallShape) -> int:
    """The latent frames the packed self-attention is sized for: the call's, or those the runtime fixes
    (:attr:`~hybrid.geometry.CallShape.packed_latent_frames`)."""
    return shape.packed_latent_frames // cfg.patch_size[0] or _geometry(cfg, shape)[0]


def _walk(cfg: WanAnimate2Transformer3DConfig, shape: CallShape, mode: str, sink: Sink) -> None:
    """Every op of one ``WanAnimate2Transformer3DModel`` call of ``mode`` (:data:`REFERENCE`, :data:`COND`,
    :data:`UNCOND`) on one sample, told to ``sink``. The reference pass runs over the segment's ``F`` latent
    frames, a denoising pass over ``F + 1`` (the reference image's slot first); the rotary tables come from
    the model's per-offset cache, the block mask from its per-size one (both built by the first call).

    LightX2V's (``shape.dit_ops`` :data:`LIGHTX2V_OPS`, read from ``lightx2v/models/networks/wan/infer/animate2/``,
    not traced): diffusers' ops (its own bf16 norms, modulation and rotary kernels are not modelled, as for its other
    models) in its structure: the reference pass fills a K/V cache allocated before it (``StaticKVCachePool``, two
    ``torch.empty`` buffers) with every layer's rotated K and its V, and runs no head (``infer_reference`` stops after
    the blocks); a denoising pass rotates no cached key and packs the reference K and V through buffers of their own
    (``_pack_stream``), its buffers sized by the config's segment length (:func:`_packed_frames`).

    The original Wan-Animate-2 code's (``shape.dit_ops`` :data:`~hybrid.models.wan_dit.WAN_OPS`, read from
    ``wanxiang/models/wan_animate_2_model.py`` as ``BrightenU/Wan-Animate-2-NPU`` copies it, not traced): diffusers'
    ops (the port's; the original's float32 residual stream, its float32 q and k out of the float64 rotary and its
    float32 packed buffers are not modelled) in its structure: the reference pass runs no head (``forward_ref``
    returns after the blocks), the cache holds each layer's normed K and its V as diffusers' does; over Ulysses ranks
    (``use_context_parallel``) q, k and v joined and exchanged by one ``diff_all_to_all`` (``ops.all_to_all``: the
    head chunks made contiguous, ``empty_like`` outputs, ``dist.all_to_all``, joined along the sequence), the
    attention's float32 output (it takes q's dtype) exchanged back, the cache holding views of the joined exchange
    (its q too), a denoising pass's float32 head output all-gathered (``gather_forward_split_backward``)."""
    rows = _Walk(sink, 1)
    code = STRUCTURES[shape.dit_ops]
    p_t, p_h, p_w = cfg.patch_size
    frames, hw = _geometry(cfg, shape)
    f = frames + (0 if mode == REFERENCE else 1)
    ranks, d, t = shape.ulysses, cfg.dim, cfg.text_len
    valid = f * hw  # the sequence's tokens
    n = -(-valid // ranks)  # this rank's through the blocks: the sequence padded to a multiple of the ranks
    i = shape.image_tokens if cfg.use_img_emb else 0
    x, xf = n * d * BF16, n * d * F32
    full = n * ranks * d * BF16  # every rank's tokens, padded: the tensor block 0's input is a chunk of
    pixels = f * p_t * hw * p_h * p_w
    joined = cfg.in_dim * pixels * BF16
    rows("", "cat", "movement", joined, joined)  # the latents joined with their condition
    video, grid = d * valid * BF16, (f, shape.latent_height // p_h, shape.latent_width // p_w)
    rows("patch_embedding", "convolution", "conv", joined + (d * cfg.in_dim * prod(cfg.patch_size) + d) * BF16,
         video, ops.conv3d(1, cfg.in_dim, d, cfg.patch_size, grid),
         dims=conv_dims(1, cfg.in_dim, d, cfg.patch_size, grid))  # fmt: skip
    rows.free(joined)
    rows("", "stack", "movement", 3 * I64, 3 * I64)  # grid_sizes, a host tensor kept to the end
    rows("", "cat", "movement", video, video)  # torch.cat of the one sample's flattened tokens
    rows.free(video)
    if full > video:  # LightX2V's _patchify, the original's seq_len: zeros joined to the tokens to the ranks' multiple
        rows("", "new_zeros", "factory", video, full - video)
        rows("", "cat", "movement", full, full)
        rows.free(full)  # the tokens and the zeros
    src = I64  # the timestep's: the scheduler's int64 in a step, t_ref * 0 + 1 in the transformer's dtype
    if mode == REFERENCE:
        src = BF16
        rows("", "mul", "elementwise", BF16, BF16)
        rows("", "add", "elementwise", BF16, BF16)
        rows.free(BF16)
    half = cfg.freq_dim // 2
    ts, sinusoid = "timesteps_proj", half * F32
    rows(ts, "arange", "factory", 0, half * F32)
    for op in ("mul", "div", "exp"):  # the exponent; the division's kept to the return
        rows(ts, op, "elementwise", half * F32, half * F32)
        if op != "exp":
            rows.free(half * F32)
    rows.cast(ts, 1, src, F32)
    rows(ts, "mul", "elementwise", (1 + half) * F32, sinusoid)
    rows.free(half * F32 + F32)
    rows(ts, "mul", "elementwise", sinusoid, sinusoid)  # scale
    rows.free(sinusoid)
    for op in ("sin", "cos"):
        rows(ts, op, "elementwise", sinusoid, sinusoid)
    rows(ts, "cat", "movement", 2 * sinusoid, 2 * sinusoid)
    rows.free(3 * sinusoid)
    rows(ts, "cat", "movement", 2 * sinusoid, 2 * sinusoid)  # flip_sin_to_cos
    rows.free(2 * sinusoid + half * F32)
    rows.linear("time_embedding.0", 1, cfg.freq_dim, d, F32)
    rows("time_embedding.1", "silu", "elementwise", d * F32, d * F32)
    rows.free(d * F32)
    rows.linear("time_embedding.2", 1, d, d, F32)  # temb, kept
    rows.free(d * F32 + 2 * sinusoid)  # the SiLU's output, the sinusoid
    rows("time_projection.0", "silu", "elementwise", d * F32, d * F32)
    rows.linear("time_projection.1", 1, d, 6 * d, F32)  # timestep_proj, kept
    rows.free(d * F32)
    given, text = shape.text_len * cfg.text_dim * BF16, t * cfg.text_dim * BF16
    rows("", "new_zeros", "factory", given, text - given)  # the prompt padded to the config's text_len
    rows("", "cat", "movement", text, text)
    rows("", "stack", "movement", text, text)
    rows.free(2 * text - given)  # the padding, the padded prompt
    rows.linear("text_embedding.0", t, cfg.text_dim, d)
    rows("text_embedding.1", "gelu", "elementwise", t * d * BF16, t * d * BF16)
    rows.free(t * d * BF16)
    rows.linear("text_embedding.2", t, d, d)  # the text, kept
    rows.free(t * d * BF16 + text)
    if cfg.use_img_emb:  # MLPProj on the CLIP features, LayerNorms in bf16
        k = CLIP_DIM

        def layer_norm(name: str, width: int) -> None:
            rows(name, "native_layer_norm", "norm", (i * width + 2 * width) * BF16, i * width * BF16 + 2 * i * F32)
            rows.free(2 * i * F32)

        layer_norm("img_emb.proj.0", k)
        rows.linear("img_emb.proj.1", i, k, k)
        rows.free(i * k * BF16)
        rows("img_emb.proj.2", "gelu", "elementwise", i * k * BF16, i * k * BF16)
        rows.free(i * k * BF16)
        rows.linear("img_emb.proj.3", i, k, d)
        rows.free(i * k * BF16)
        layer_norm("img_emb.proj.4", d)  # the image embeddings, kept
        rows.free(i * d * BF16)
    cached = frames * hw if mode != REFERENCE else 0  # the reference tokens in the cache
    if code.kv_pool and mode == REFERENCE:  # the cache's two buffers, [layers, tokens, heads, head_dim] each, kept
        rows("", "empty", "factory", 0, 0, calls=2, out=kv_cache_bytes(cfg, shape))
    packed = _packed_frames(cfg, shape)

    def block(b: _Walk) -> None:
        _block(cfg, b, n, t, i, mode, cached, packed, hw, code, ranks, valid)

    if mode == UNCOND and cfg.num_layers > UNCOND_SKIPPED_BLOCK:
        rows.repeat(UNCOND_SKIPPED_BLOCK, "blocks.{i}", block)
        rows.repeat(cfg.num_layers - UNCOND_SKIPPED_BLOCK - 1, "blocks.{i}", block, UNCOND_SKIPPED_BLOCK + 1)
    else:
        rows.repeat(cfg.num_layers, "blocks.{i}", block)
    # split over ranks, block 0's input is a chunk of every rank's tokens, all freed as it returns: the rest told
    # here, after the blocks (block 0, which holds them, peaks highest)
    rows.free(full - x)
    if not code.reference_head and mode == REFERENCE:  # no head: the hidden states dropped as it returns
        return
    o = cfg.out_dim * prod(cfg.patch_size)
    rows("head", "add", "elementwise", 3 * d * F32, 2 * d * F32)  # the head's modulation + temb
    rows.cast("head", n * d, BF16, F32)
    rows.layer_norm("head.norm", n, d)
    rows.free(xf)
    rows("head", "add", "elementwise", d * F32, d * F32)  # 1 + scale
    rows("head", "mul", "elementwise", xf + d * F32, xf)
    rows.free(xf + d * F32)
    rows("head", "add", "elementwise", xf + d * F32, xf)
    rows.free(xf)
    rows.cast("head", n * d, F32, BF16)
    rows.free(xf)
    rows.linear("head.head", n, d, o)
    rows.free(x + 2 * d * F32 + x)  # its input, the modulation; the last block's output
    out = n * o * BF16
    if ranks > 1 and code.joined_exchange:  # gather_forward_split_backward: the head's float32 output (autocast)
        rows.cast("head", n * o, BF16, F32)
        _gather_forward(rows, n * o * F32, ranks)
        rows.free(out + n * o * F32)  # this rank's output, in bf16 and float32; the joined one is unpatchify's input
    elif ranks > 1:  # _seq_parallel_post_process: every rank's head output all-gathered into a list, joined
        rows("", "empty_like", "factory", 0, 0, calls=ranks, out=ranks * out)
        rows.list_collective("", "allgather_", ranks, out)
        rows("", "cat", "movement", ranks * out, ranks * out)
        rows.free(ranks * out + out)  # the list, this rank's
    rows("", "clone", "movement", valid * o * BF16, valid * o * BF16)  # unpatchify (the true tokens)
    rows.cast("", valid * o, BF16, F32)  # u.float()


def _block(
    cfg: WanAnimate2Transformer3DConfig, rows: _Walk, n: int, t: int, i: int, mode: str, cached: int, frames: int,
    hw: int, code: _Structure, ranks: int = 1, valid: int = 0,
) -> None:  # fmt: skip
    """One ``WanAnimate2TransformerBlock`` on ``n`` tokens (``t`` text, ``i`` image tokens): a bf16 stream with
    float32 norms, modulation and gates; self-attention of ``mode`` against ``cached`` reference tokens in buffers
    packed for ``frames`` latent frames of ``hw`` tokens; the block's input is the caller's, freed as it returns.
    ``code``: the structure of the code that runs it (:data:`STRUCTURES`). Over ``ranks`` (LightX2V's Ulysses,
    ``_to_head_shard``, unless ``code`` joins the exchange): q, k and v
    laid out per rank (a copy each) and all-to-all'd to every token of ``heads / ranks`` heads, the attention over all
    ``n * ranks`` (``valid`` of them true: the keys of the reference pass, the packed tokens of a denoising one) with
    those heads and the cache's share of them, its output sent back the same way and laid back (two copies)."""
    d, f, hd = cfg.dim, cfg.ffn_dim, cfg.head_dim
    heads, w = cfg.num_heads // ranks, d // ranks  # the attention's heads and width on this rank
    tokens, valid = n * ranks, valid or n  # the attention's queries (the padded sequence) and true keys
    nd = n * d
    x, xf, td, idd = nd * BF16, nd * F32, t * d * BF16, i * d * BF16
    rows("", "add", "elementwise", 12 * d * F32, 6 * d * F32)  # modulation + temb, kept

    def norm(name: str, affine: bool) -> None:
        float32_norm(rows, name, n, d, affine)

    def scale_shift() -> None:  # the modulation is one row: (1, 6, D)
        modulate(rows, n, d, d)

    def gate(src: int) -> None:
        gated_residual(rows, n, d, d, src)

    def rope(
        module: str, tokens: int, width: int = d
    ) -> None:  # rope_apply(...).type_as(value): float64, float32, bf16
        _wan_rope(rows, 1, tokens, width, hd, BF16, module=module)
        rows.cast(module, tokens * width, F32, BF16)
        rows.free(tokens * width * F32)

    def all_to_all(tensors: int) -> None:  # all2all_seq2head / all2all_head2seq: a layout copy, the exchange
        for _ in range(tensors):
            rows(sa, "clone", "movement", x, x)
            rows.collective(sa, "all_to_all_single", ranks, x)
            rows.free(x)  # the copy

    sa = "self_attn"
    norm("norm1", False)
    scale_shift()
    for proj in ("to_q", "to_k", "to_v"):
        rows.linear(f"{sa}.{proj}", n, d, d)
    for qk in ("norm_q", "norm_k"):
        rows(f"{sa}.{qk}", "rms_norm", "norm", x + d * BF16, x)
        rows.free(x)

    if ranks > 1 and code.joined_exchange:  # qkv = torch.cat([q, k, v], dim=0), exchanged; q, k, v its chunks (views)
        rows(sa, "cat", "movement", 3 * x, 3 * x)
        rows.free(3 * x)
        _all_to_all(rows, sa, 3 * x, ranks, contiguous=False)  # its head chunks
        rows.free(3 * x)  # the joined input
    elif ranks > 1:  # q, k and v to every token of this rank's heads (the same bytes), the local ones dropped
        all_to_all(3)
        rows.free(3 * x)

    def sequence_shard() -> None:  # the attention's output back to this rank's tokens of every head
        if ranks > 1 and code.joined_exchange:  # the float32 output (q's dtype) exchanged, cast for to_out
            rows.cast(sa, nd, BF16, F32)
            rows.free(x)
            _all_to_all(rows, sa, nd * F32, ranks, contiguous=True)
            rows.free(nd * F32)
            rows.cast(sa, nd, F32, BF16)
            rows.free(nd * F32)
        elif ranks > 1:
            all_to_all(1)
            rows(sa, "clone", "movement", x, x)  # transposed back, contiguous
            rows.free(2 * x)  # the output, the exchanged one

    # extract: the normed k and v stay in the cache; cached: the reference keys rotated on their grid
    views = code.cached_views(ranks)  # q, k and v views of one exchanged tensor: it lives while any of them does
    rope(sa, tokens, w)
    if not views:
        rows.free(x)  # the normed q
    rope(sa, tokens, w)
    if mode == REFERENCE:
        kv = valid * w * BF16  # the true keys and values (k[:valid_len], v[:valid_len])
        if code.kv_pool:  # store_kv: the rotated k and v copied into this layer's slots of the cache
            rows(sa, "copy_", "movement", 2 * x, x, calls=2, out=0)
        rows.math_attention(heads, tokens, valid, hd)
        rows(sa, "scaled_dot_product_attention", "attention", x + 2 * kv, x, ops.sdpa(1, heads, tokens, valid, hd),
             dims=attention_dims(heads, tokens, valid, hd))  # fmt: skip
        sequence_shard()
        rows.linear(f"{sa}.to_out.0", n, d, d)
        # the attention's output; q and k rotated (the cache holds k, v; LightX2V's copies of them, the normed k and v
        # dropped)
        rows.free(x + 2 * x + (2 * x if code.kv_pool else 0))
    else:
        if not views:
            rows.free(x)  # the normed k
        r = cached * w * BF16
        if not code.kv_pool:  # LightX2V cached its keys rotated
            rope(sa, cached)
        lq, lr = packed_lengths(frames, hw)
        q, kv = lq * w * BF16, (lq + lr) * w * BF16
        rows(sa, "new_zeros", "factory", x, q)
        rows(sa, "new_zeros", "factory", x, kv, calls=2, out=2 * kv)
        xv = valid * w * BF16  # the true tokens of q, k or v
        rows(sa, "copy_", "movement", 2 * xv, xv, calls=3, out=0)  # q, k, v into their slots
        if code.kv_pool:  # the cached keys and values into zeroed buffers of their own, then those into theirs
            ref = lr * w * BF16
            rows(sa, "new_zeros", "factory", r, ref, calls=2, out=2 * ref)
            rows(sa, "copy_", "movement", 2 * r, r, calls=2, out=0)
            rows(sa, "copy_", "movement", 2 * ref, ref, calls=2, out=0)
            rows.free(2 * ref)
            r = 0  # nothing rotated to drop
        else:
            rows(sa, "copy_", "movement", 2 * r, r, calls=2, out=0)  # the reference keys and values
        lse = heads * lq * F32
        if rows.memory:
            rows.sink.transient(lse)
        rows(sa, "scaled_dot_product_attention", "attention", q + 2 * kv, q + lse, ops.sdpa(1, heads, lq, lq + lr, hd),
             dims=attention_dims(heads, lq, lq + lr, hd), out=q)  # fmt: skip
        pad = x - xv
        if pad:  # q_padding = q[valid_len:].clone(): the queries past the true tokens
            rows(sa, "clone", "movement", pad, pad)
        rows(sa, "cat", "movement", x, x)  # the generation rows cut out, joined with the padded queries
        rows.free(q + pad)  # the packed output, the padding's clone
        sequence_shard()
        rows.linear(f"{sa}.to_out.0", n, d, d)
        # the cut output; q, k, v (and the normed q and k, views of v's storage); the reference keys; the packed buffers
        rows.free(x + 3 * x + (2 * x if views else 0) + r + q + 2 * kv)
    gate(BF16)
    norm("norm3", cfg.cross_attn_norm)
    rows.cast("", nd, F32, BF16)
    rows.free(xf)
    ca = "cross_attn"
    rows.linear(f"{ca}.to_q", n, d, d)
    rows.linear(f"{ca}.to_k", t, d, d)
    rows.linear(f"{ca}.to_v", t, d, d)
    rows(f"{ca}.norm_q", "rms_norm", "norm", x + d * BF16, x)
    rows.free(x)
    rows(f"{ca}.norm_k", "rms_norm", "norm", td + d * BF16, td)
    rows.free(td)
    rows.math_attention(heads, n, t, hd)
    rows(ca, "scaled_dot_product_attention", "attention", x + 2 * td, x, ops.sdpa(1, heads, n, t, hd),
         dims=attention_dims(heads, n, t, hd))  # fmt: skip
    kept = x + 2 * td  # q; k, v
    if i:
        rows.linear(f"{ca}.add_k_proj", i, d, d)
        rows.linear(f"{ca}.add_v_proj", i, d, d)
        rows(f"{ca}.norm_added_k", "rms_norm", "norm", idd + d * BF16, idd)
        rows.free(idd)
        rows.math_attention(heads, n, i, hd)
        rows(ca, "scaled_dot_product_attention", "attention", x + 2 * idd, x, ops.sdpa(1, heads, n, i, hd),
             component=IMAGE_CORE, dims=attention_dims(heads, n, i, hd))  # fmt: skip
        rows(ca, "add", "elementwise", 2 * x, x)
        rows.free(x)  # the text attention's output; the image's is a local to the return
        kept += 2 * idd + x
    rows.linear(f"{ca}.to_out.0", n, d, d)
    rows.free(x + kept)  # the attention's output; q, k, v (and the image's)
    rows("", "add", "elementwise", 2 * x, x)  # x + cross_attn(norm3(x))
    rows.free(2 * x + x)  # the cross-attention's output, its normed input; the gated stream
    norm("norm2", False)
    scale_shift()
    rows.free(x)  # norm1's modulated output
    rows.linear("ffn.0", n, d, f)
    rows("ffn.1", "gelu", "elementwise", n * f * BF16, n * f * BF16)
    rows.free(n * f * BF16)
    rows.linear("ffn.2", n, f, d)
    rows.free(n * f * BF16)
    gate(F32)
    rows.free(x)  # the cross-attention residual it replaces
    # the FFN's output, norm2's modulated output, the self-attention's output, the modulation; the block's input
    rows.free(x + x + x + 6 * d * F32 + x)


def animate2_rows(cfg: WanAnimate2Transformer3DConfig, shape: CallShape, mode: str, stage: str) -> list[OpGroup]:
    """Every op of one call of ``mode`` (see :func:`_walk`), as ``stage``'s rows."""
    sink = Rows(stage)
    _walk(cfg, shape, mode, sink)
    return sink.out


def animate2_terms(cfg: WanAnimate2Transformer3DConfig, shape: CallShape, mode: str) -> tuple[Term, ...]:
    """:func:`hybrid.timing.roofline_terms` of :func:`animate2_rows`, from the same walk."""
    sink = TermSink()
    _walk(cfg, shape, mode, sink)
    return sink.freeze()


def animate2_peak_bytes(cfg: WanAnimate2Transformer3DConfig, shape: CallShape, mode: str, materialized: bool) -> int:
    """The activation peak of one call of ``mode``, fused or (``materialized``) with PyTorch's math
    attention: :func:`_walk` into a :class:`~hybrid.sinks.Peak`. The denoising passes' K/V cache is the
    reference pass's output, not theirs."""
    return _peaks(cfg, shape, mode)[materialized]


@lru_cache(maxsize=1024)
def _peaks(cfg: WanAnimate2Transformer3DConfig, shape: CallShape, mode: str) -> tuple[int, int]:
    """``(fused, materialized)`` of one walk into a :class:`~hybrid.sinks.Peak` (sizing asks for both)."""
    sink = Peak()
    _walk(cfg, shape, mode, sink)
    return sink.fused, sink.materialized


@on_clear
def clear_memos() -> None:
    """Forget the peak walks (see :func:`hybrid.analytic.clear_memos`)."""
    _peaks.cache_clear()


def animate2_groups(cfg: WanAnimate2Transformer3DConfig, shape: CallShape, mode: str, stage: str) -> list[OpGroup]:
    """The FLOP rows of one call of ``mode``: per block ``4 * 2ND^2`` (self-attention's projections) ``+
    2 * 2ND^2 + 2 * 2LD^2`` (cross-attention's q, out and text k, v) ``+ 2 * 2ID^2`` (the image's k, v) ``+
    2 * 2N*D*ffn``, the attentions ``4HNNd`` (reference pass) or ``4H * Lq * (Lq + Lr) * d`` over the packed
    buffers (a denoising pass: dense, as FlopCounterMode counts FlexAttention), ``4HNLd`` and ``4HNId``; plus
    the patch embedding, the time, text and image embedders and the head."""
    return [g for g in animate2_rows(cfg, shape, mode, stage) if g.flops_per_call]


def component(module: str, op: str) -> str:
    """The report component of a Wan-Animate-2 row (analytic or traced): as the other DiTs' (the image
    attention in ``cross_attn`` is ``image_cross_attention_core``: its analytic row names it, and
    :func:`row_component` tells it apart in traced rows)."""
    if ".self_attn" in module:
        return "self_attention_core" if op == SDPA else "self_attention_projections"
    if ".cross_attn.add_" in module or ".cross_attn.norm_added" in module:
        return "image_cross_attention_projections"
    if ".cross_attn" in module:
        return "cross_attention_core" if op == SDPA else "cross_attention_projections"
    if ".ffn." in module:
        return "ffn"
    if module.startswith("img_emb"):
        return "image_embedder"
    if module.startswith("head"):
        return "output_head"
    return "embedders"


def row_component(row: CostRow) -> str:
    """:func:`component` of a traced row: ``cross_attn`` runs two attentions, over the 512 text keys the
    pipeline pads the prompt to and over the image's; the other one is ``image_cross_attention_core``."""
    if row.op == SDPA and row.module.endswith(".cross_attn") and row.input_shapes[1][-2] != IMAGE_CONTEXT_TEXT_LEN:
        return IMAGE_CORE
    return component(row.module, row.op)


def kv_cache_bytes(cfg: WanAnimate2Transformer3DConfig, shape: CallShape) -> int:
    """What a denoising pass finds live from its segment's reference pass: every layer's K and V over the
    reference tokens, ``2 * layers * F*hw * D`` bf16 values (``WanAnimate2KVCache``; LightX2V's two buffers, on a
    rank of Ulysses ``P`` its ``D / P`` of every token, the tokens padded to a multiple of ``P``: ``cache_size``).
    The original code over Ulysses ranks caches views of each layer's exchanged q, k and v (``qkv_ref.chunk(3)``):
    the q stays live with them, ``3 * layers`` such values."""
    frames, hw = _geometry(cfg, shape)
    ranks = shape.ulysses
    kept = 3 if STRUCTURES[shape.dit_ops].cached_views(ranks) else 2
    return kept * cfg.num_layers * -(-frames * hw // ranks) * ranks * (cfg.dim // ranks) * BF16


def block_mask_share(cfg: WanAnimate2Transformer3DConfig, shape: CallShape) -> tuple[Dims, Fraction]:
    """The packed self-attention's kernel dims and the share of its ``128 x 128`` blocks the in-context
    block mask keeps (``create_mask``): every query block against every generation block (the packed
    length is the queries' rounded up, so each holds a valid key), plus the reference blocks holding a
    token of a frame the query block holds (reference frame ``j`` is generation frame ``j + 1``).
    FlexAttention computes the kept blocks only; FlopCounterMode counts the dense product."""
    frames, hw = _packed_frames(cfg, shape), _geometry(cfg, shape)[1]
    lq, lr = packed_lengths(frames, hw)
    q_len, k_len = (frames + 1) * hw, frames * hw
    qb, rb = lq // MASK_BLOCK, lr // MASK_BLOCK
    kept = qb * qb
    for b in range(qb):
        first, last = b * MASK_BLOCK // hw, (min(b * MASK_BLOCK + MASK_BLOCK, q_len) - 1) // hw  # its frames
        lo, hi = max((max(first, 1) - 1) * hw, 0), min(last * hw, k_len) - 1  # reference tokens of those frames
        if lo <= hi:
            kept += hi // MASK_BLOCK - lo // MASK_BLOCK + 1
    return attention_dims(cfg.num_heads // shape.ulysses, lq, lq + lr, cfg.head_dim), Fraction(kept, qb * (qb + rb))
