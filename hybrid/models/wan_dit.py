"""Wan2.1 diffusion transformer (diffusers ``WanTransformer3DModel``), the ``diffusion_core`` stage.

Architecture of one forward (module paths as in diffusers), with ``D = num_attention_heads *
attention_head_dim`` and ``N = latent_frames/p_t * latent_h/p_h * latent_w/p_w`` tokens:

* ``rope``: 3-axis rotary tables (no parameters).
* ``patch_embedding``: ``Conv3d(in_channels -> D, kernel = stride = patch_size)``.
* ``condition_embedder``: ``timesteps_proj`` (sinusoid, ``freq_dim``) ->
  ``time_embedder.linear_1/2`` (``freq_dim -> D -> D``) -> ``time_proj`` (``D -> 6D``);
  ``text_embedder.linear_1/2`` (``text_dim -> D -> D``) over the ``text_len`` padded tokens.
* ``blocks.{i}`` for ``i < num_layers``: ``norm1`` (LayerNorm, no affine) + AdaLN modulation ->
  ``attn1`` self-attention (``to_q/to_k/to_v/to_out.0``, RMS ``norm_q``/``norm_k`` across heads,
  RoPE, SDPA over ``N`` keys) -> ``norm2`` (affine LayerNorm when ``cross_attn_norm``) -> ``attn2``
  cross-attention (queries from ``N`` video tokens, keys/values from the ``text_len`` text tokens)
  -> ``norm3`` + modulation -> ``ffn`` (``net.0.proj``: ``D -> ffn_dim``, tanh-GELU,
  ``net.2``: ``ffn_dim -> D``).
* ``norm_out`` + modulation -> ``proj_out`` (``D -> out_channels * prod(patch_size)``) -> unpatchify.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from itertools import pairwise
from math import prod
from typing import TYPE_CHECKING, Any, ClassVar

from hybrid import ops
from hybrid.dtypes import BF16, F16, F32, F64, I64, nbytes
from hybrid.errors import InputError
from hybrid.geometry import INT64_MAX
from hybrid.memo import on_clear
from hybrid.rows import SDPA_OP as SDPA
from hybrid.rows import CostRow, OpGroup
from hybrid.sinks import Components, FusedTermSink, Peak, Rows, Sink, TermSink
from hybrid.timing import Dims, Term, attention_dims, collective_dims, conv_dims, gemm_dims

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.geometry import CallShape


ROPE_TABLE_BYTES = 8
"""Bytes per element of diffusers' rotary table while ``WanRotaryPosEmbed`` builds it: float64
(``freqs_dtype``, float32 only on Apple's MPS), ``rope_max_seq_len`` rows of up to
``attention_head_dim`` values; torch counts a tensor's bytes in an int64."""

IMAGE_CONTEXT_TEXT_LEN = 512
"""diffusers' ``WanAttnProcessor`` takes ``image_context_length = encoder_hidden_states.shape[1] -
512``: with image tokens, the prompt must be exactly 512 tokens long."""


@dataclass(frozen=True)
class WanTransformer3DConfig:
    """``WanTransformer3DModel`` constructor arguments (diffusers names): text-to-video, or
    image-to-video with ``image_dim`` and ``added_kv_proj_dim`` (and FLF2V's ``pos_embed_seq_len``)."""

    patch_size: tuple[int, int, int] = (1, 2, 2)
    num_attention_heads: int = 40
    attention_head_dim: int = 128
    in_channels: int = 16
    out_channels: int = 16
    text_dim: int = 4096
    freq_dim: int = 256
    ffn_dim: int = 13824
    num_layers: int = 40
    cross_attn_norm: bool = True
    qk_norm: str | None = "rms_norm_across_heads"
    eps: float = 1e-6
    image_dim: int | None = None
    added_kv_proj_dim: int | None = None
    rope_max_seq_len: int = 1024
    pos_embed_seq_len: int | None = None

    COST_FREE_KEYS: ClassVar[frozenset[str]] = frozenset()
    """Keys of a published ``config.json`` that change no cost (besides ``_``-prefixed metadata)."""

    def __post_init__(self) -> None:
        if (self.image_dim is None) != (self.added_kv_proj_dim is None):
            raise ValueError(
                "image_dim/added_kv_proj_dim: both null (text-to-video) or both set (image-to-video), got "
                f"image_dim={self.image_dim}, added_kv_proj_dim={self.added_kv_proj_dim}"
            )
        if self.added_kv_proj_dim is not None and self.added_kv_proj_dim != self.inner_dim:
            raise ValueError(
                f"added_kv_proj_dim: {self.added_kv_proj_dim} is not modelled; valid: the width "
                f"num_attention_heads * attention_head_dim = {self.inner_dim} (the image embedder's output)"
            )
        if self.pos_embed_seq_len is not None and self.image_dim is None:
            raise ValueError("pos_embed_seq_len: needs image_dim (an image embedder to add it to)")
        if self.qk_norm not in (None, "rms_norm_across_heads"):
            raise ValueError(f"qk_norm: must be 'rms_norm_across_heads' or null, got {self.qk_norm!r}")
        if len(self.patch_size) != 3 or min(self.patch_size) < 1:
            raise ValueError(f"patch_size: must be three positive ints, got {self.patch_size}")
        if self.attention_head_dim % 2:
            # WanRotaryPosEmbed splits a head into t, h, w parts, h = w = 2 * (d // 6) and t = d - h - w,
            # and get_1d_rotary_pos_embed asserts each is even: t is even exactly when d is
            raise ValueError(
                f"attention_head_dim: {self.attention_head_dim} is odd; diffusers' rotary embedding needs an even one"
            )
        if self.rope_max_seq_len * self.attention_head_dim * ROPE_TABLE_BYTES > INT64_MAX:
            most = INT64_MAX // (self.attention_head_dim * ROPE_TABLE_BYTES)
            raise ValueError(
                f"rope_max_seq_len: {self.rope_max_seq_len} is too large; valid: at most {most:,} for "
                f"attention_head_dim {self.attention_head_dim} (the rotary table's bytes must fit torch's int64)"
            )

    @property
    def inner_dim(self) -> int:
        """``D = num_attention_heads * attention_head_dim``."""
        return self.num_attention_heads * self.attention_head_dim

    def block_linears(self) -> tuple[tuple[int, int], ...]:
        """``(in_features, out_features)`` of one block's Linear layers: the two attentions' q, k, v and out, the FFN's
        two, with image input ``add_k_proj`` and ``add_v_proj``."""
        d, f = self.inner_dim, self.ffn_dim
        added = ((self.added_kv_proj_dim, d),) * 2 if self.added_kv_proj_dim is not None else ()
        return ((d, d),) * 8 + ((d, f), (f, d)) + added

    def _block_linear_parameters(self) -> int:
        """One block's Linear layers (:meth:`block_linears`), weights and biases."""
        return sum(i * o + o for i, o in self.block_linears())

    def _block_parameters(self) -> int:
        d = self.inner_dim
        qk_norms = 4 * d if self.qk_norm else 0
        norm2 = 2 * d if self.cross_attn_norm else 0
        norm_added_k = d if self.added_kv_proj_dim is not None else 0
        return self._block_linear_parameters() + qk_norms + norm2 + norm_added_k + 6 * d

    def fsdp_units(self) -> tuple[int, int, int]:
        """``(root, per block, blocks)`` parameters as FSDP wraps the transformer one unit per block
        (the original Wan ``shard_model``): the root holds the embedders and the head."""
        return (
            self.num_parameters() - self.num_layers * self._block_parameters(),
            self._block_parameters(),
            self.num_layers,
        )

    def autocast_parameters(self) -> int:
        """Weights and biases the original Wan model (``wan/modules/model.py``) casts to bfloat16 on
        every call when it keeps them in float32 under ``torch.amp.autocast(bfloat16)``: every Linear
        and Conv3d but the time embedding, time projection and head, which it runs inside
        ``autocast(float32)`` regions: ``patch + text + image embedder FFN + blocks x block Linears``."""
        d = self.inner_dim
        patch = self.in_channels * d * prod(self.patch_size) + d
        text = (self.text_dim + 1) * d + (d + 1) * d
        image = 0
        if self.image_dim is not None:
            image = (self.image_dim + 1) * self.image_dim + (self.image_dim + 1) * d
        return patch + text + image + self.num_layers * self._block_linear_parameters()

    def num_parameters(self) -> int:
        """Parameters of ``WanTransformer3DModel``:

        ``patch: C_in*D*prod(p) + D``; ``time: (F+1)*D + (D+1)*D + (D+1)*6D``;
        ``text: (T+1)*D + (D+1)*D``; per block ``8*(D*D + D)`` (two attentions) ``+ 4D`` (q/k
        norms) ``+ 2D`` (affine norm2) ``+ 2*D*ffn + ffn + D`` (FFN) ``+ 6D`` (modulation table),
        with image input ``+ 2*(K*D + D) + D`` (``add_k_proj``, ``add_v_proj``, ``norm_added_k``);
        head ``(D+1)*C_out*prod(p) + 2D``; image embedder (``I = image_dim``) ``2I`` (norm1) ``+
        (I+1)*I`` (``ff.net.0.proj``, mult 1) ``+ (I+1)*D`` (``ff.net.2``) ``+ 2D`` (norm2) ``+
        pos_embed_seq_len*I``.
        """
        d = self.inner_dim
        p = prod(self.patch_size)
        patch = self.in_channels * d * p + d
        time = (self.freq_dim + 1) * d + (d + 1) * d + (d + 1) * 6 * d
        text = (self.text_dim + 1) * d + (d + 1) * d
        head = (d + 1) * self.out_channels * p + 2 * d
        image = 0
        if self.image_dim is not None:
            i = self.image_dim
            image = 2 * i + (i + 1) * i + (i + 1) * d + 2 * d + (self.pos_embed_seq_len or 0) * i
        return patch + time + text + image + self.num_layers * self._block_parameters() + head

    def to_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``diffusers.WanTransformer3DModel``."""
        return asdict(self)


@dataclass(frozen=True)
class WanVACETransformer3DConfig(WanTransformer3DConfig):
    """``WanVACETransformer3DModel`` constructor arguments: the T2V transformer plus VACE blocks at
    ``vace_layers`` over ``vace_in_channels`` control channels."""

    vace_layers: tuple[int, ...] = field(default=(0, 5, 10, 15, 20, 25, 30, 35), metadata={"min": 0})
    vace_in_channels: int = 96

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.vace_layers or 0 not in self.vace_layers or max(self.vace_layers) >= self.num_layers:
            raise ValueError(
                f"vace_layers: {list(self.vace_layers)} must include 0 and stay below num_layers {self.num_layers}"
            )

    def num_parameters(self) -> int:
        """The T2V transformer's, plus ``vace_patch_embedding`` ``C_vace*D*prod(p) + D`` and one block
        per VACE layer with ``proj_out`` ``(D+1)*D`` (block 0 also ``proj_in``)."""
        d = self.inner_dim
        vace_patch = self.vace_in_channels * d * prod(self.patch_size) + d
        blocks = len(self.vace_layers) * (self._block_parameters() + (d + 1) * d) + (d + 1) * d
        return super().num_parameters() + vace_patch + blocks

    def autocast_parameters(self) -> int:
        """The T2V transformer's, plus the VACE patch embedding and blocks (all Linear and Conv3d)."""
        d = self.inner_dim
        vace_patch = self.vace_in_channels * d * prod(self.patch_size) + d
        blocks = len(self.vace_layers) * (self._block_linear_parameters() + (d + 1) * d) + (d + 1) * d
        return super().autocast_parameters() + vace_patch + blocks

    def to_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``diffusers.WanVACETransformer3DModel``."""
        return {**asdict(self), "vace_layers": list(self.vace_layers)}


WAN_ANIMATE_MOTION_ENCODER_CHANNEL_SIZES: tuple[tuple[int, int], ...] = (
    (4, 512), (8, 512), (16, 512), (32, 512), (64, 256), (128, 128), (256, 64), (512, 32), (1024, 16),
)  # fmt: skip
"""diffusers' ``WAN_ANIMATE_MOTION_ENCODER_CHANNEL_SIZES``: the motion encoder's channels at each
feature-map size (``motion_encoder_channel_sizes`` null in the published config takes these)."""


@dataclass(frozen=True)
class WanAnimateTransformer3DConfig(WanTransformer3DConfig):
    """``WanAnimateTransformer3DModel`` constructor arguments: the image-to-video transformer plus a pose
    patch embedding over ``latent_channels``, a motion encoder (a StyleGAN-style convolution stack over
    ``motion_encoder_size``-pixel face frames, then linear layers and a QR-orthogonalised motion basis),
    a face encoder (causal 1D convolutions over the frames) and a face adapter (cross-attention to the
    face features of each latent frame) after every ``inject_face_latents_blocks``-th block."""

    in_channels: int = 36
    latent_channels: int = 16
    image_dim: int | None = 1280
    added_kv_proj_dim: int | None = 5120
    motion_encoder_channel_sizes: tuple[tuple[int, int], ...] = WAN_ANIMATE_MOTION_ENCODER_CHANNEL_SIZES
    motion_encoder_size: int = 512
    motion_style_dim: int = 512
    motion_dim: int = 20
    motion_encoder_dim: int = 512
    face_encoder_hidden_dim: int = 1024
    face_encoder_num_heads: int = 4
    inject_face_latents_blocks: int = 5
    motion_encoder_batch_size: int = 8
    lora_rank: int = field(default=0, metadata={"min": 0})
    """The rank of a peft LoRA beside every Linear of the blocks (:meth:`block_linears`; not the face adapters'),
    unmerged, as the original ``WanAnimate`` loads the relighting LoRA (``generate.py --use_relighting_lora``:
    ``get_loraconfig(transformer=model, rank=128, alpha=128)`` and ``model.add_adapter``, ``wan/animate.py``); 0:
    none. A workload sets it (:attr:`hybrid.workload.Workload.relighting_lora`), never a ``config.json``."""

    RUNTIME_FIELDS: ClassVar[frozenset[str]] = frozenset({"lora_rank"})
    """Fields a runtime sets, never a ``config.json``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lora_rank < 0:
            raise ValueError(f"lora_rank: must be 0 (no LoRA) or more, got {self.lora_rank}")
        if self.image_dim is None:
            raise ValueError("image_dim: Wan-Animate embeds the reference image (CLIP features); got null")
        if self.in_channels != 2 * self.latent_channels + 4:
            raise ValueError(
                f"in_channels: {self.in_channels} is not 2 * latent_channels + 4 = {2 * self.latent_channels + 4}"
            )
        k, size = self.inject_face_latents_blocks, self.motion_encoder_size
        if k < 1 or self.num_layers % k:
            raise ValueError(
                f"inject_face_latents_blocks: {k} must divide num_layers {self.num_layers} (a face adapter follows "
                "block 0 and every k-th block after it, and there are num_layers // k of them)"
            )
        sizes = dict(self.motion_encoder_channel_sizes)
        if size < 8 or size & (size - 1) or any(2**i not in sizes for i in range(2, size.bit_length())):
            raise ValueError(
                f"motion_encoder_size: {size} must be a power of two >= 8 with a channel count for every "
                f"feature-map size from 4 to it (motion_encoder_channel_sizes has {sorted(sizes)})"
            )

    def motion_channels(self) -> list[int]:
        """Channels of the motion encoder's feature maps, from ``motion_encoder_size`` pixels down to 4."""
        sizes = dict(self.motion_encoder_channel_sizes)
        return [sizes[2**i] for i in range(self.motion_encoder_size.bit_length() - 1, 1, -1)]

    def animate_parameters(self) -> int:
        """Wan-Animate's own parameters (``C`` the motion channels from ``S`` pixels down to 4, ``E`` the
        style width, ``M`` the motion width, ``O`` the motion encoder's output, ``F`` the face hidden
        width, ``h`` its heads, ``D`` the width): the pose patch ``latent*D*prod(p) + D``; the motion
        encoder's ``conv_in`` ``3*C_S + C_S`` (its bias in the activation), each residual block
        ``9*C_in^2 + C_in`` (conv1) ``+ 9*C_in*C_out + C_out`` (conv2) ``+ C_in*C_out`` (conv_skip, no
        bias), ``conv_out`` ``16*C_4*E``, four ``E*E + E`` and one ``E*M + M`` linears, the motion
        basis ``O*M``; the face encoder ``3*O*F*h + F*h`` (conv1_local) ``+ 2*(3*F*F + F)`` (conv2, conv3)
        ``+ F*D + D`` (out_proj) ``+ D`` (padding tokens); per face adapter ``4*(D*D + D)`` (q, k, v, out)
        ``+ 2*d`` (q and k RMS norms over a head)."""
        d, p = self.inner_dim, prod(self.patch_size)
        pose = self.latent_channels * d * p + d
        c = self.motion_channels()
        motion = 3 * c[0] + c[0]
        for c_in, c_out in pairwise(c):
            motion += 9 * c_in * c_in + c_in + 9 * c_in * c_out + c_out + c_in * c_out
        e, m = self.motion_style_dim, self.motion_dim
        motion += 16 * c[-1] * e + 4 * (e * e + e) + e * m + m + self.motion_encoder_dim * m
        f, h = self.face_encoder_hidden_dim, self.face_encoder_num_heads
        face = 3 * self.motion_encoder_dim * f * h + f * h + 2 * (3 * f * f + f) + f * d + d + d
        adapters = (self.num_layers // self.inject_face_latents_blocks) * (
            4 * (d * d + d) + 2 * self.attention_head_dim
        )
        return pose + motion + face + adapters

    def _block_lora_parameters(self) -> int:
        """One block's LoRA: ``lora_A`` and ``lora_B`` (no bias), ``lora_rank * (in + out)`` a Linear."""
        return self.lora_rank * sum(i + o for i, o in self.block_linears())

    def _block_parameters(self) -> int:
        """A block's, with its LoRA's."""
        return super()._block_parameters() + self._block_lora_parameters()

    def lora_parameters(self) -> int:
        """The LoRA's parameters, every block's."""
        return self.num_layers * self._block_lora_parameters()

    def num_parameters(self) -> int:
        """The image-to-video transformer's (:meth:`WanTransformer3DConfig.num_parameters`, its blocks' LoRA
        included) plus :meth:`animate_parameters`."""
        return super().num_parameters() + self.animate_parameters()

    def to_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``diffusers.WanAnimateTransformer3DModel``."""
        kw = {k: v for k, v in asdict(self).items() if k not in self.RUNTIME_FIELDS}
        kw["motion_encoder_channel_sizes"] = {str(k): v for k, v in self.motion_encoder_channel_sizes}
        return kw


STAGE = "diffusion_core"


def dit_groups(cfg: WanTransformer3DConfig, shape: CallShape) -> list[OpGroup]:
    """FLOP groups of one ``WanTransformer3DModel`` (or ``WanVACETransformer3DModel``) forward,
    keyed like the tracer's rows.

    With ``N = (F/p_t)(H/p_h)(W/p_w)`` video tokens, ``L = text_len`` text tokens, ``D`` the width:
    per block, self-attention ``4 * 2BND^2`` (q, k, v, out) ``+ 4BHN^2d``; cross-attention
    ``2 * 2BND^2`` (q, out) ``+ 2 * 2BLD^2`` (k, v over text) ``+ 4BHNLd``; FFN ``2 * 2BN*D*ffn``.
    Plus the patch conv, the timestep/text embedders and ``proj_out``. Image-to-video adds the image
    embedder on ``I`` image tokens (``2BI*I_dim^2 + 2BI*I_dim*D``) and per block ``2 * 2BID^2``
    (``add_k_proj``, ``add_v_proj``) ``+ 4BHNId`` (a second attention in ``attn2``). VACE adds
    ``vace_patch_embedding`` over the control latents and one block per VACE layer on the control
    tokens (block 0 with ``proj_in``, each with ``proj_out``, ``2BND^2`` each).
    """
    return [g for g in dit_rows(cfg, shape) if g.flops_per_call]


def dit_components(cfg: WanTransformer3DConfig, shape: CallShape) -> dict[str, int]:
    """FLOPs of one forward by report component: :func:`_dit_walk` into a
    :class:`~hybrid.sinks.Components` by :func:`component` (the groups' sum, in the order each
    component first has FLOPs). The whole forward's: a sequence split over ranks is walked unsplit."""
    sink = Components(component)
    _dit_walk(cfg, replace(shape, ulysses=1, ring=1) if shape.sequence_degree > 1 else shape, sink)
    return sink.out


# bytes per element (hybrid.dtypes): the DiT's activations and weights (bfloat16), its float32
# islands (the time embedder, the norms' inputs and the modulation), the integer timestep


class _Walk:
    """A sink as the DiT's walk tells it: ``walk(module, op, ...)`` with aten's short op names, and the
    DiT's composite ops (a bf16 ``linear``, a cast, a float32 layer norm, a collective)."""

    __slots__ = ("batch", "free", "memory", "op", "sink")

    def __init__(self, sink: Sink, batch: int) -> None:
        self.sink, self.batch, self.op, self.memory = sink, batch, sink.op, sink.memory
        self.free = sink.free  # free(nbytes): activations dropped

    def repeat(self, times: int, prefix: str, body: Callable[[_Walk], None], start: int = 0) -> None:
        """``times`` alike modules ``prefix`` (:meth:`hybrid.sinks.Sink.repeat`), ``body`` one of them,
        numbered from ``start``."""
        self.sink.repeat(times, prefix, lambda sink: body(_Walk(sink, self.batch)), start)

    def __call__(
        self,
        module: str,
        op: str,
        category: str,
        read: int,
        written: int,
        flops: int = 0,
        calls: int = 1,
        component: str = "",
        out: int | None = None,
        dims: Dims = (),
    ) -> None:
        """The op, then its output allocated: ``written`` (of one call), or ``out`` bytes (0: in place)."""
        self.op(module, "aten." + op, category, read, written, flops, calls, component, dims)
        if self.memory:
            self.sink.alloc(written if out is None else out)

    def math_attention(self, batch_heads: int, q_len: int, kv_len: int, head_dim: int) -> None:
        """What PyTorch's math attention allocates on top of what lives as it starts (a transient)."""
        if self.memory:
            self.sink.transient(ops.math_attention_bytes(batch_heads, q_len, kv_len, head_dim))

    def linear(self, module: str, rows: int, d_in: int, d_out: int, itemsize: int = BF16) -> None:
        """``addmm``: bias, input and weight read, output written."""
        read = (d_out + rows * d_in + d_in * d_out) * itemsize
        self(module, "addmm", "matmul", read, rows * d_out * itemsize, ops.linear(rows, d_in, d_out),
             dims=gemm_dims(1, rows, d_out, d_in))  # fmt: skip

    def context_linear(self, module: str, rows: int, d_in: int, d_out: int) -> None:
        """A projection of image-to-video's sliced context: ``addmm`` on one sample; on a batch the
        slices are not contiguous, and ``linear`` copies them (``clone``), then runs ``mm`` and a
        bias ``add``."""
        if rows == 0 or self.batch == 1:
            self.linear(module, rows, d_in, d_out)
            return
        x, y = rows * d_in * BF16, rows * d_out * BF16
        self(module, "clone", "movement", x, x)
        self(module, "mm", "matmul", x + d_in * d_out * BF16, y, ops.linear(rows, d_in, d_out),
             dims=gemm_dims(1, rows, d_out, d_in))  # fmt: skip
        self.free(x)  # the copy
        self(module, "add", "elementwise", y + d_out * BF16, y)
        self.free(y)  # the product

    def collective(self, module: str, collective: str, group: int, input_bytes: int, calls: int = 1) -> None:
        """A ``_c10d_functional`` collective of ``input_bytes`` over ``group`` ranks: its byte columns
        are what this rank sends and receives (:func:`hybrid.ops.collective_bytes`)."""
        sent, received = ops.collective_bytes(collective, group, input_bytes)
        self.op(module, f"_c10d_functional.{collective}", "collective", sent, received, 0, calls,
                dims=collective_dims(collective))  # fmt: skip
        if self.memory:  # its output: every rank's inputs gathered, or as many bytes exchanged
            self.sink.alloc(calls * input_bytes * (group if collective == "all_gather_into_tensor" else 1))

    def list_collective(self, module: str, name: str, group: int, input_bytes: int) -> None:
        """A ``c10d`` collective of ``torch.distributed``'s list API (:data:`hybrid.ops.LIST_COLLECTIVES`)
        on ``input_bytes`` over ``group`` ranks: it writes into outputs the caller allocated, so it
        allocates nothing."""
        kind = ops.LIST_COLLECTIVES[name]
        sent, received = ops.collective_bytes(kind, group, input_bytes)
        self.op(module, f"c10d.{name}", "collective", sent, received, 0, 1, dims=collective_dims(kind))

    def cast(self, module: str, numel: int, src: int, dst: int, calls: int = 1) -> None:
        """``_to_copy`` of ``numel`` elements from ``src`` to ``dst`` bytes each."""
        self(module, "_to_copy", "movement", numel * src, numel * dst, calls=calls)

    def layer_norm(self, module: str, rows: int, d: int, affine: bool = False) -> None:
        """``native_layer_norm`` in float32: mean and rstd (rows x 1) written beside the output."""
        read = rows * d * F32 + (2 * d * F32 if affine else 0)
        self(module, "native_layer_norm", "norm", read, rows * d * F32 + 2 * rows * F32)
        self.free(2 * rows * F32)  # mean and rstd, not returned


def float32_norm(rows: _Walk, name: str, n: int, d: int, affine: bool) -> None:
    """``norm(x.float())`` of a bf16 ``(n, d)`` stream: the float32 copy, the norm, the copy dropped."""
    rows.cast("", n * d, BF16, F32)
    rows.layer_norm(name, n, d, affine)
    rows.free(n * d * F32)


def modulate(rows: _Walk, n: int, d: int, md: int) -> None:
    """``(norm * (1 + scale) + shift).type_as(x)`` on a float32 ``(n, d)`` norm with ``md`` elements of
    float32 modulation (``scale``, ``shift``): the norm and each intermediate dropped, the bf16 result kept."""
    xf = n * d * F32
    rows("", "add", "elementwise", md * F32, md * F32)
    rows("", "mul", "elementwise", xf + md * F32, xf)
    rows.free(xf + md * F32)  # the norm, 1 + scale
    rows("", "add", "elementwise", xf + md * F32, xf)
    rows.free(xf)
    rows.cast("", n * d, F32, BF16)
    rows.free(xf)


def gated_residual(rows: _Walk, n: int, d: int, md: int, src: int) -> None:
    """``(x.float() + y * gate).type_as(x)`` on a bf16 ``(n, d)`` stream, ``y`` of ``src`` bytes per element
    (``y.float()`` first where it is float32), ``md`` elements of float32 gate: the bf16 result kept."""
    nd, xf = n * d, n * d * F32
    rows.cast("", nd, BF16, F32)
    if src == F32:  # y.float()
        rows.cast("", nd, BF16, F32)
    rows("", "mul", "elementwise", nd * src + md * F32, xf)
    if src == F32:
        rows.free(xf)
    rows("", "add", "elementwise", 2 * xf, xf)
    rows.free(2 * xf)  # x.float(), the product
    rows.cast("", nd, F32, BF16)
    rows.free(xf)


def _block_rows(
    cfg: WanTransformer3DConfig, rows: _Walk, shape: CallShape, text_len: int, m: int, image_tokens: int,
    hint: bool = False,
) -> None:  # fmt: skip
    """One ``WanTransformerBlock`` (``rows.prefix``) on one rank's tokens with ``m`` modulation rows
    (batch, or every token's with a timestep per token): float32 norms and modulation around bf16
    attention and FFN, rotary embedding applied to q and k through float32 products copied back into
    bf16; with image input a second attention over the image tokens in ``attn2``; ``hint``: a VACE
    block, which ends with its hint's ``proj_out``. Each tensor is
    freed where the block drops it; the block's input, when it returns."""
    batch, tokens = shape.batch, shape.local_tokens
    n, t, d, f = batch * tokens, batch * text_len, cfg.inner_dim, cfg.ffn_dim
    nd, md = n * d, m * d
    x, xf, td = nd * BF16, nd * F32, t * d * BF16  # a video-sized tensor in bf16 and in float32; the text's
    rows.cast("", 6 * md, BF16, F32)  # temb.float()
    rows("", "add", "elementwise", 6 * d * F32 + 6 * md * F32, 6 * md * F32)  # + the float32 scale_shift_table
    rows.free(6 * md * F32)

    def norm(name: str, affine: bool) -> None:
        float32_norm(rows, name, n, d, affine)

    def scale_shift() -> None:
        modulate(rows, n, d, md)

    def gate(src: int) -> None:
        gated_residual(rows, n, d, md, src)

    def rope() -> None:  # q or k: out[..., 0::2] = x1 * cos - x2 * sin; out[..., 1::2] = x1 * sin + x2 * cos
        half, table = nd // 2, tokens * cfg.attention_head_dim // 2  # x1/x2 halves; cos/sin (1, N, 1, hd/2)
        rows("attn1", "empty_like", "factory", nd * BF16, nd * BF16)
        for combine in ("sub", "add"):
            rows("attn1", "mul", "elementwise", half * BF16 + table * F32, half * F32)
            rows("attn1", "mul", "elementwise", half * BF16 + table * F32, half * F32)
            rows("attn1", combine, "elementwise", 2 * half * F32, half * F32)
            rows.free(2 * half * F32)
            rows("attn1", "copy_", "movement", half * (BF16 + F32), half * BF16, out=0)
            rows.free(half * F32)
        rows.free(x)  # the normed q or k it replaces

    norm("norm1", False)
    scale_shift()
    for proj in ("to_q", "to_k", "to_v"):
        rows.linear(f"attn1.{proj}", n, d, d)
    for qk in ("norm_q", "norm_k"):
        rows(f"attn1.{qk}", "rms_norm", "norm", nd * BF16 + d * BF16, nd * BF16)
        rows.free(x)
    rope()
    rope()
    heads, hd = cfg.num_attention_heads, cfg.attention_head_dim
    _self_attention(rows, shape, heads, hd)
    rows.linear("attn1.to_out.0", n, d, d)
    rows.free(4 * x)  # q, k, v, the attention's output
    gate(BF16)
    norm("norm2", cfg.cross_attn_norm)
    rows.cast("", nd, F32, BF16)
    rows.free(xf + x)  # the norm, norm1's modulated output
    rows.linear("attn2.to_q", n, d, d)
    image = cfg.added_kv_proj_dim is not None
    context = rows.context_linear if image else rows.linear
    context("attn2.to_k", t, d, d)
    context("attn2.to_v", t, d, d)
    rows("attn2.norm_q", "rms_norm", "norm", nd * BF16 + d * BF16, nd * BF16)
    rows.free(x)
    rows("attn2.norm_k", "rms_norm", "norm", t * d * BF16 + d * BF16, t * d * BF16)
    rows.free(td)
    kept = 2 * x + 2 * td  # q, the attention's output; k, v
    if cfg.added_kv_proj_dim is not None:
        i = batch * image_tokens
        rows.context_linear("attn2.add_k_proj", i, cfg.added_kv_proj_dim, d)
        rows.context_linear("attn2.add_v_proj", i, cfg.added_kv_proj_dim, d)
        rows("attn2.norm_added_k", "rms_norm", "norm", i * d * BF16 + d * BF16, i * d * BF16)
        rows.free(i * d * BF16)
        _cudnn_layout(rows, shape, heads, hd, image_tokens)
        rows.math_attention(batch * heads, tokens, image_tokens, hd)
        rows("attn2", "scaled_dot_product_attention", "attention", (nd + 2 * i * d) * BF16, nd * BF16,
             ops.sdpa(batch, heads, tokens, image_tokens, hd), component=IMAGE_CORE,
             dims=attention_dims(batch * heads, tokens, image_tokens, hd))  # fmt: skip
        kept += 2 * i * d * BF16 + x  # the image's k and v, its output
    _cudnn_layout(rows, shape, heads, hd, text_len)
    rows.math_attention(batch * heads, tokens, text_len, hd)
    rows("attn2", "scaled_dot_product_attention", "attention", (nd + 2 * t * d) * BF16, nd * BF16,
         ops.sdpa(batch, heads, tokens, text_len, hd),
         dims=attention_dims(batch * heads, tokens, text_len, hd))  # fmt: skip
    if cfg.added_kv_proj_dim is not None:
        rows("attn2", "add", "elementwise", 2 * nd * BF16, nd * BF16)  # text + image attention
        rows.free(x)  # the text attention's output
    rows.linear("attn2.to_out.0", n, d, d)
    rows.free(kept + x)  # and attn1's output
    rows("", "add", "elementwise", 2 * nd * BF16, nd * BF16)
    rows.free(x)  # the gated attn1 residual
    norm("norm3", False)
    scale_shift()
    rows.free(x)  # norm2's output
    rows.linear("ffn.net.0.proj", n, d, f)
    rows("ffn.net.0", "gelu", "elementwise", n * f * BF16, n * f * BF16)
    rows.free(n * f * BF16)
    rows.linear("ffn.net.2", n, f, d)
    rows.free(n * f * BF16)
    gate(F32)
    rows.free(x)  # the attn2 residual it replaces
    if hint:  # a VACE block's hint for the main blocks, kept
        rows.linear("proj_out", n, d, d)
    # norm3's output, the FFN's and attn2's outputs, the modulation, the block's input
    rows.free(3 * x + 6 * md * F32 + x)


def _self_attention(rows: _Walk, shape: CallShape, heads: int, hd: int) -> None:
    """``attn1``'s attention on one rank, as diffusers' context parallelism runs it
    (``_templated_context_parallel_attention``): over all its tokens on one GPU; under Ulysses
    (``TemplatedUlyssesAttention``) q, k and v each laid out per destination rank (a copy where the
    permute is not a view), all-to-all'd to ``(N, H/u)`` and laid back, the attention over every
    token with ``H/u`` heads, the output sent back the same way; under ring attention
    (:func:`_ring_attention`) over the ring's tokens; with both (``_templated_unified_attention``)
    the Ulysses exchange around the ring."""
    b, s, u, r = shape.batch, shape.local_tokens, shape.ulysses, shape.ring
    x = b * s * heads * hd  # elements of this rank's q (and k, v, output)
    if u == 1 and r == 1:
        rows.math_attention(b * heads, s, s, hd)
        rows("attn1", "scaled_dot_product_attention", "attention", 3 * x * BF16, x * BF16,
             ops.sdpa(b, heads, s, s, hd), dims=attention_dims(b * heads, s, s, hd))  # fmt: skip
        return
    if u == 1:
        _ring_attention(rows, b, s, heads, hd, r)
        return
    h = heads // u

    def copy(shape_: tuple[int, ...], perm: tuple[int, ...], calls: int) -> bool:
        """A permute laid out: a copy of ``calls`` tensors where it is not a view (then ``True``)."""
        if ops.permute_copies(shape_, perm):
            rows("attn1", "clone", "movement", x * BF16, x * BF16, calls=calls, out=calls * x * BF16)
            return True
        return False

    if copy((b, s, u, h, hd), (2, 1, 0, 3, 4), 3):  # (B, S/u, u, H/u, D) -> (u, S/u, B, H/u, D)
        rows.collective("attn1", "all_to_all_single", u, x * BF16, calls=3)
        rows.free(3 * x * BF16)  # the laid-out copies
    else:
        rows.collective("attn1", "all_to_all_single", u, x * BF16, calls=3)
    if copy((u * s, b, h, hd), (1, 0, 2, 3), 3):  # -> (B, S, H/u, D)
        rows.free(3 * x * BF16)  # the exchanged q, k, v
    if r == 1:
        rows.math_attention(b * h, u * s, u * s, hd)
        rows("attn1", "scaled_dot_product_attention", "attention", 3 * x * BF16, x * BF16,
             ops.sdpa(b, h, u * s, u * s, hd), dims=attention_dims(b * h, u * s, u * s, hd))  # fmt: skip
        if copy((b, u, s, h, hd), (1, 3, 0, 2, 4), 1):  # the output: (u, H/u, B, S/u, D)
            rows.free(x * BF16)
        rows.collective("attn1", "all_to_all_single", u, x * BF16)
        rows.free(x * BF16)  # what it sent
        kept = copy((heads, b, s, hd), (1, 2, 0, 3), 1)  # -> (B, S/u, H, D)
        # this rank's q, k, v as attended (the output returned is one of the four freed after to_out)
        rows.free((3 + kept) * x * BF16)
        return
    _ring_attention(rows, b, u * s, h, hd, r)
    copy((b, u, s, h, hd), (1, 3, 2, 0, 4), 1)  # SeqAllToAllDim back: (u, H/u, S/u, B, D)
    rows.collective("attn1", "all_to_all_single", u, x * BF16)
    copy((heads, s, b, hd), (2, 1, 0, 3), 1)  # -> (B, S/u, H, D)


def _cudnn_layout(rows: _Walk, shape: CallShape, heads: int, hd: int, kv_len: int) -> None:
    """Under ring attention every attention module runs the cuDNN backend
    (:data:`hybrid.trace.parallel.RING_BACKEND`), which lays a local attention's q, k and v out as
    ``(B, H, S, D)`` copies first (``_native_cudnn_attention``): ``attn2``'s over the context."""
    if shape.ring == 1:
        return
    b, s = shape.batch, shape.local_tokens
    for length, calls in ((s, 1), (kv_len, 2)):
        if ops.permute_copies((b, length, heads, hd), (0, 2, 1, 3)):
            n = b * length * heads * hd * BF16
            rows("attn2", "clone", "movement", n, n, calls=calls)


def _ring_attention(rows: _Walk, b: int, s: int, h: int, hd: int, r: int) -> None:
    """diffusers' ``TemplatedRingAttention`` on ``s`` tokens and ``h`` heads per rank of an ``r``-rank
    ring, through the cuDNN backend (:data:`hybrid.trace.parallel.RING_BACKEND`): K and V joined and
    all-gathered once, then per ring step the attention of the local queries to one rank's keys
    (inputs laid out ``(B, H, S, D)``, output and log-sum-exp laid back), each partial output
    upcast to float32 and merged into the running one by the log-sum-exp, the result cast back."""
    x, lse = b * s * h * hd, b * s * h  # elements of q (k, v, output) and of the log-sum-exp
    rows("attn1", "cat", "movement", 2 * x * BF16, 2 * x * BF16)  # cat([k.flatten(), v.flatten()])
    rows.collective("attn1", "all_gather_into_tensor", r, 2 * x * BF16)
    if ops.permute_copies((b, s, h, hd), (0, 2, 1, 3)):
        rows("attn1", "clone", "movement", x * BF16, x * BF16, calls=3 * r)  # q, k, v transposed
    written = x * BF16 + lse * F32 + 2 * I64  # output, log-sum-exp, philox seed and offset
    rows("attn1", "scaled_dot_product_attention", "attention", 3 * x * BF16, written, ops.sdpa(b, h, s, s, hd),
         dims=attention_dims(b * h, s, s, hd),
         calls=r)  # fmt: skip
    if ops.permute_copies((b, h, s, hd), (0, 2, 1, 3)):
        rows("attn1", "clone", "movement", x * BF16, x * BF16, calls=r)  # the output laid back
    if ops.permute_copies((b, h, s), (0, 2, 1)):
        rows("attn1", "clone", "movement", lse * F32, lse * F32, calls=r)  # the log-sum-exp laid back
    rows.cast("attn1", x, BF16, F32, calls=r)
    if r > 1:  # out = prev - sigmoid(lse - prev_lse) * (prev - out); lse = prev_lse - logsigmoid(prev_lse - lse)
        merges = r - 1
        rows("attn1", "sub", "elementwise", 2 * lse * F32, lse * F32, calls=3 * merges)
        rows("attn1", "sigmoid", "elementwise", lse * F32, lse * F32, calls=merges)
        rows("attn1", "sub", "elementwise", 2 * x * F32, x * F32, calls=2 * merges)
        rows("attn1", "mul", "elementwise", (lse + x) * F32, x * F32, calls=merges)
        rows("attn1", "log_sigmoid_forward", "elementwise", lse * F32, 2 * lse * F32, calls=merges)
    rows.cast("attn1", x, F32, BF16)


def _motion_conv(
    rows: _Walk, module: str, b: int, c_in: int, c_out: int, k: int, size: int,
    stride: int = 1, padding: int = 0, blur: bool = False, act: bool = True, bias: bool = True,
) -> tuple[int, int]:  # fmt: skip
    """One ``MotionConv2d`` of Wan-Animate's motion encoder on ``b`` frames of ``c_in x size x size``
    (bfloat16): with ``blur`` a depthwise 4x4 FIR filter first (its float32 kernel cast to the input's
    dtype, ``F.conv2d(groups=c_in)`` over the padding ``(len(kernel) - stride) + (k - 1)`` splits), the
    weight scaled on every call (``self.weight * self.scale``), the convolution (its ``bias`` only without an
    activation: ``FusedLeakyReLU`` adds it), and with ``act`` the bias add, ``leaky_relu`` and the gain.
    Returns ``(output bytes, output size)``; the caller holds the input."""
    x, src = b * c_in * size * size * BF16, size
    blurred = 0
    if blur:
        pad = (4 - stride) + (k - 1)
        src = size + 2 * ((pad + 1) // 2) - 3  # square frames: both splits are even here (pad 4 or 2)
        kernel = c_in * 16
        rows.cast(module, kernel, F32, BF16)
        blurred = b * c_in * src * src * BF16
        rows(module, "convolution", "conv", x + kernel * BF16, blurred, ops.conv(b, 1, c_in, (4, 4), (src, src)),
             dims=conv_dims(b, 1, c_in, (4, 4), (src, src)))  # fmt: skip
        rows.free(kernel * BF16)
    weight = c_out * c_in * k * k * BF16
    rows(module, "mul", "elementwise", weight, weight)  # self.weight * self.scale
    o = (src + 2 * padding - k) // stride + 1
    out = b * c_out * o * o * BF16
    bias_bytes = c_out * BF16 if bias and not act else 0
    rows(module, "convolution", "conv", (blurred or x) + weight + bias_bytes, out,
         ops.conv(b, c_in, c_out, (k, k), (o, o)), dims=conv_dims(b, c_in, c_out, (k, k), (o, o)))  # fmt: skip
    rows.free(weight + blurred)
    if act:  # FusedLeakyReLU: (x + bias) -> leaky_relu -> * sqrt(2)
        a = f"{module}.act_fn"
        rows(a, "add", "elementwise", out + c_out * BF16, out)
        rows(a, "leaky_relu", "elementwise", out, out)
        rows(a, "mul", "elementwise", out, out)
        rows.free(2 * out)  # the leaky output, the sum
        rows.free(out)  # the convolution's output
    return out, o


def _motion_encoder_rows(cfg: WanAnimateTransformer3DConfig, rows: _Walk, b: int) -> None:
    """``WanAnimateMotionEncoder`` on one batch of ``b`` face frames: the convolution stack from
    ``motion_encoder_size`` pixels down to 1, the linear layers (weights scaled each call), then the motion
    basis orthogonalised in float32 (``linalg_qr`` of the weight plus 1e-8) and the features expanded on
    it (``diag_embed``, a matrix product, a sum); its bfloat16 output is held to the forward's end."""
    me, size, channels = "motion_encoder", cfg.motion_encoder_size, cfg.motion_channels()
    x, s = _motion_conv(rows, f"{me}.conv_in", b, 3, channels[0], 1, size)
    for i, (c_in, c_out) in enumerate(pairwise(channels)):
        block = f"{me}.res_blocks.{i}"
        y, _ = _motion_conv(rows, f"{block}.conv1", b, c_in, c_in, 3, s, padding=1)
        z, _ = _motion_conv(rows, f"{block}.conv2", b, c_in, c_out, 3, s, stride=2, blur=True)
        rows.free(y)
        skip, s = _motion_conv(rows, f"{block}.conv_skip", b, c_in, c_out, 1, s, stride=2, blur=True, act=False,
                               bias=False)  # fmt: skip
        rows(block, "add", "elementwise", z + skip, z)
        rows(block, "div", "elementwise", z, z)
        rows.free(z + z + skip)  # the sum, conv2's output, the skip path's
        rows.free(x)  # the block's input
        x = z
    e, m, out = cfg.motion_style_dim, cfg.motion_dim, cfg.motion_encoder_dim
    feat, _ = _motion_conv(rows, f"{me}.conv_out", b, channels[-1], e, 4, s, act=False, bias=False)
    rows.free(x)
    for i in range(5):
        width = m if i == 4 else e
        weight = width * e * BF16
        rows(f"{me}.motion_network.{i}", "mul", "elementwise", weight, weight)
        rows.linear(f"{me}.motion_network.{i}", b, e, width)
        rows.free(weight + feat)
        feat = b * width * BF16
    rows(me, "add", "elementwise", out * m * F32, out * m * F32)  # the float32 motion_synthesis_weight + 1e-8
    rows.cast(me, b * m, BF16, F32)
    rows.free(feat)  # weight.to(float32): already float32, no op
    q, r = out * m * F32, m * m * F32
    rows(me, "linalg_qr", "linalg", q, q + r)
    rows.free(r)  # R, unused
    rows(me, "diag_embed", "movement", b * m * F32, b * m * m * F32)
    rows(me, "mm", "matmul", (b * m * m + m * out) * F32, b * m * out * F32, ops.linear(b * m, m, out),
         dims=gemm_dims(1, b * m, out, m))  # fmt: skip
    rows(me, "sum", "reduction", b * m * out * F32, b * out * F32)
    rows.cast(me, b * out, F32, BF16)
    rows.free(b * out * F32 + b * m * out * F32 + b * m * m * F32 + q + b * m * F32 + out * m * F32)


def _motion_batches(total: int, per: int) -> list[int]:
    """The batches both Animate codes run ``total`` face frames through the motion encoder in, ``per`` at a time
    (diffusers' ``torch.split``, the original's ``encode_bs`` loop): the last one holds the rest."""
    return [per] * (total // per) + ([total % per] if total % per else [])


def _face_rows(cfg: WanAnimateTransformer3DConfig, rows: _Walk, shape: CallShape) -> None:
    """Wan-Animate's face path in one transformer call: ``shape.frames`` face frames through the motion
    encoder in batches of ``motion_encoder_batch_size`` (``torch.split``), their features joined, the face
    encoder (causal 1D convolutions, the first split into heads, two halving the frames, layer norms and
    SiLU, ``out_proj``, a padding token per frame) and a zero frame in front: the face features the face
    adapters attend to (held to the forward's end, as are the batches' outputs)."""
    batch, frames, d = shape.batch, shape.frames, cfg.inner_dim
    per = cfg.motion_encoder_batch_size
    total = batch * frames
    for b in _motion_batches(total, per):
        _motion_encoder_rows(cfg, rows, b)
    o, f, h = cfg.motion_encoder_dim, cfg.face_encoder_hidden_dim, cfg.face_encoder_num_heads
    rows("", "cat", "movement", total * o * BF16, total * o * BF16)
    fe = "face_encoder"
    t = frames
    x = 0
    for i, (c_in, c_out, stride) in enumerate(((o, f * h, 1), (f, f, 2), (f, f, 2)), start=1):
        n = batch * (h if i > 1 else 1)  # after the first convolution the heads are split into the batch
        rows(fe, "replication_pad1d", "movement", n * c_in * t * BF16, n * c_in * (t + 2) * BF16)
        rows.free(x)
        conv = "conv1_local" if i == 1 else f"conv{i}"
        t_out = (t + 2 - 3) // stride + 1
        y = n * c_out * t_out * BF16
        rows(f"{fe}.{conv}", "convolution", "conv", (n * c_in * (t + 2) + c_out * c_in * 3 + c_out) * BF16, y,
             ops.conv(n, c_in, c_out, (3,), (t_out,)), dims=conv_dims(n, c_in, c_out, (3,), (t_out,)))  # fmt: skip
        rows.free(n * c_in * (t + 2) * BF16)  # the padded input
        t, rows_ = t_out, batch * h * t_out
        rows(f"{fe}.norm{i}", "native_layer_norm", "norm", rows_ * f * BF16, rows_ * f * BF16 + 2 * rows_ * F32)
        rows.free(2 * rows_ * F32 + y)  # mean and rstd; the convolution's output
        rows(f"{fe}.act", "silu", "elementwise", rows_ * f * BF16, rows_ * f * BF16)
        rows.free(rows_ * f * BF16)  # the norm's output
        x = rows_ * f * BF16
    rows.linear(f"{fe}.out_proj", batch * h * t, f, d)
    rows.free(x)
    rows(fe, "repeat", "movement", d * BF16, batch * t * d * BF16)  # the padding token per frame
    feats = batch * t * (h + 1) * d * BF16
    rows(fe, "cat", "movement", feats, feats)
    rows.free(batch * h * t * d * BF16 + batch * t * d * BF16)  # out_proj's output, the padding
    rows.free(total * o * BF16)  # the joined motion features, dropped as the face encoder's output replaces them
    front = batch * (h + 1) * d * BF16
    rows("", "zeros_like", "factory", front, front)
    rows("", "cat", "movement", feats + front, feats + front)
    rows.free(feats)  # the face encoder's output; the zero frame (pad_face) is held to the end


def _face_adapter_rows(cfg: WanAnimateTransformer3DConfig, rows: _Walk, shape: CallShape, j: int) -> None:
    """``face_adapter[j]`` after a block: the video tokens of each latent frame attend to that frame's
    face tokens (layer norms without affine, q, k, v, RMS norms over a head, one attention per frame),
    ``to_out``, and its output added to the hidden states; the forward's ``face_adapter_output`` holds
    that output until the next adapter's replaces it (the last to the forward's end).

    With the sequence split over ranks (LightX2V's ``WanAnimateTransformerInfer.infer_post_adapter``: diffusers'
    class has no context-parallel plan), this rank's queries are gathered from every rank (a list of ``empty_like``
    tensors, ``dist.all_gather``, joined) and cut to the true tokens; every rank normalises them, attends over all
    of them and projects them (``to_out``), pads the result to the ranks' tokens where they were padded and adds its
    own chunk (a view of the whole output, which is dropped as the adapter returns)."""
    fa = f"face_adapter.{j}"
    batch, n_tok, d, heads, hd = (
        shape.batch,
        shape.local_tokens,
        cfg.inner_dim,
        cfg.num_attention_heads,
        cfg.attention_head_dim,
    )
    frames, kv_tok, ranks = shape.dit_latent_frames, cfg.face_encoder_num_heads + 1, shape.sequence_degree
    n, kv = batch * n_tok, batch * frames * kv_tok
    m = batch * shape.dit_tokens if ranks > 1 else n  # the rows the attention and to_out run on
    padded = ranks * n > m  # the ranks' tokens padded past the true ones
    held = (ranks * n if padded else m) * d * BF16  # what face_adapter_output keeps alive
    for name, r in (("pre_norm_q", n), ("pre_norm_kv", kv)):
        rows(f"{fa}.{name}", "native_layer_norm", "norm", r * d * BF16, r * d * BF16 + 2 * r * F32)
        rows.free(2 * r * F32)
    rows.linear(f"{fa}.to_q", n, d, d)
    rows.linear(f"{fa}.to_k", kv, d, d)
    rows.linear(f"{fa}.to_v", kv, d, d)
    if ranks > 1:
        _gather_forward(rows, n * d * BF16, ranks, fa)
        rows.free(n * d * BF16)  # this rank's queries, q rebound to every rank's
    gathered = ranks * n * d * BF16 if ranks > 1 else n * d * BF16  # q: the projection, or the join it is cut from
    for name, r, source in (("norm_q", m, gathered), ("norm_k", kv, kv * d * BF16)):
        rows(f"{fa}.{name}", "rms_norm", "norm", r * d * BF16 + hd * BF16, r * d * BF16)
        rows.free(source)  # the tensor it normalises
    per_frame = m // batch // frames
    rows.math_attention(batch * frames * heads, per_frame, kv_tok, hd)
    rows(fa, "scaled_dot_product_attention", "attention", (m + 2 * kv) * d * BF16, m * d * BF16,
         ops.sdpa(batch * frames, heads, per_frame, kv_tok, hd),
         dims=attention_dims(batch * frames * heads, per_frame, kv_tok, hd))  # fmt: skip
    rows.free(m * d * BF16 + 2 * kv * d * BF16)  # q, k (normed), v
    rows.linear(f"{fa}.to_out", m, d, d)
    rows.free(m * d * BF16 + n * d * BF16 + kv * d * BF16)  # the attention's output, the two pre-norms' outputs
    if padded:  # F.pad to the ranks' tokens, then this rank's chunk (a view of the padded output)
        rows(fa, "constant_pad_nd", "movement", m * d * BF16, held)
        rows.free(m * d * BF16)
    if j and ranks == 1:  # the forward's face_adapter_output held the previous adapter's output until now
        rows.free(held)
    rows("", "add", "elementwise", 2 * n * d * BF16, n * d * BF16)
    rows.free(n * d * BF16)  # the block's output; the adapter's is held until the next adapter's replaces it
    if ranks > 1:  # LightX2V's output is infer_post_adapter's local: dropped as it returns
        rows.free(held)


def dit_rows(cfg: WanTransformer3DConfig, shape: CallShape) -> list[OpGroup]:
    """Every op one ``WanTransformer3DModel`` forward costs (see :func:`_dit_walk`)."""
    sink = Rows(STAGE)
    _dit_walk(cfg, shape, sink)
    return sink.out


def dit_terms(cfg: WanTransformer3DConfig, shape: CallShape) -> tuple[Term, ...]:
    """:func:`hybrid.timing.roofline_terms` of :func:`dit_rows`, from the same walk."""
    sink = TermSink()
    _dit_walk(cfg, shape, sink)
    return sink.freeze()


def dit_fused_terms(cfg: WanTransformer3DConfig, shape: CallShape) -> tuple[Term, ...]:
    """The roofline terms of the same walk compiled (:class:`hybrid.sinks.FusedTermSink`)."""
    sink = FusedTermSink()
    _dit_walk(cfg, shape, sink)
    return sink.freeze()


def _dit_walk(cfg: WanTransformer3DConfig, shape: CallShape, sink: Sink) -> None:
    """Every op one ``WanTransformer3DModel`` forward costs (FLOPs and bytes read and written),
    keyed like the tracer's rows, told to ``sink``; views cost nothing and are left out. Every
    variant: text- and image-to-video, FLF2V's position embedding, VACE's blocks and hints, a
    timestep per token. Each op's output is allocated after it and freed where eager PyTorch drops
    it (what the tracer's live bytes count), the rotary tables, ``temb``, ``timestep_proj`` and the
    context kept to the end.

    With the sequence split over ``P = ulysses * ring`` ranks (``shape``), one rank's rows, as
    diffusers' context parallelism runs them (``WanTransformer3DModel._cp_plan``): the rotary tables,
    patch embedding and unpatchify over every token, the timestep split with the tokens where it is
    per token, the blocks and the output head on ``N/P`` tokens, self-attention through
    :func:`_self_attention` and the head's output all-gathered (``proj_out``). The original Wan code's
    own ops (``shape.dit_ops``) are :func:`_wan_dit_walk`'s where it is written (:func:`wan_ops_written`)."""
    if wan_ops_written(cfg, shape):
        _wan_dit_walk(cfg, shape, sink)
        return
    if isinstance(cfg, WanAnimateTransformer3DConfig) and cfg.lora_rank:
        raise NotImplementedError("a LoRA is walked with the original Wan code's ops only (dit_ops 'wan')")
    rows = _Walk(sink, shape.batch)
    p_t, p_h, p_w = cfg.patch_size
    batch, text_len, d = shape.batch, shape.text_len, cfg.inner_dim
    f, h, w = shape.dit_latent_frames // p_t, shape.latent_height // p_h, shape.latent_width // p_w
    tokens, local = f * h * w, shape.local_tokens
    n_all, n, t, hd = batch * tokens, batch * local, batch * text_len, cfg.attention_head_dim
    m = n if shape.per_token_timestep else batch  # rows of the time embedding and modulation
    half = cfg.freq_dim // 2
    for _ in ("cos", "sin"):  # the float32 rotary tables, kept to the end
        rows("rope", "cat", "movement", tokens * hd * F32, tokens * hd * F32)
    pixels = f * p_t * h * p_h * w * p_w  # latent positions per sample
    video = n_all * d * BF16  # the patch-embedded video, every rank's tokens

    def patch(module: str, channels: int, frames: int = f) -> int:
        """A patch embedding of ``channels`` over ``frames`` patched frames; returns its output's bytes."""
        read = (batch * channels * frames * p_t * h * p_h * w * p_w + d * channels * prod(cfg.patch_size) + d) * BF16
        out = batch * d * frames * h * w * BF16
        rows(module, "convolution", "conv", read, out, ops.conv3d(batch, channels, d, cfg.patch_size, (frames, h, w)),
             dims=conv_dims(batch, channels, d, cfg.patch_size, (frames, h, w)))  # fmt: skip
        return out

    patch("patch_embedding", cfg.in_channels)
    vace = isinstance(cfg, WanVACETransformer3DConfig)
    layers = len(cfg.vace_layers) if isinstance(cfg, WanVACETransformer3DConfig) else 0
    if isinstance(cfg, WanVACETransformer3DConfig):
        control = batch * cfg.vace_in_channels * pixels
        rows("", "new_ones", "factory", control * BF16, layers * BF16)  # the hints' conditioning scales
        patch("vace_patch_embedding", cfg.vace_in_channels)
        rows("", "new_zeros", "factory", n * d * BF16, 0)  # control tokens padded to the video's (by none)
        rows("", "cat", "movement", n * d * BF16, n * d * BF16)
        rows.free(video)  # the control tokens before the padding
    else:
        if isinstance(cfg, WanAnimateTransformer3DConfig):  # hidden_states[:, :, 1:] += the pose embedding
            pose = patch("pose_patch_embedding", cfg.latent_channels, f - 1)  # held to the forward's end
            rows("", "add", "elementwise", 2 * pose, pose)
            rows("", "copy_", "movement", 2 * pose, pose, out=0)  # into the patch embedding's frames 1:
            rows.free(pose)  # the sum
        rows("", "clone", "movement", video, video)  # the blocks' input
        rows.free(video)  # the convolution's output
    if shape.per_token_timestep and shape.sequence_degree > 1 and batch > 1:
        rows("", "clone", "movement", m * I64, m * I64)  # the split (B, N/P) timestep is strided: flatten copies
    ts, sinusoid = "condition_embedder.timesteps_proj", m * half * F32
    rows(ts, "arange", "factory", 0, half * F32)
    for op in ("mul", "div", "exp"):  # the exponent; the division's kept to the return
        rows(ts, op, "elementwise", half * F32, half * F32)
        if op != "exp":
            rows.free(half * F32)
    rows.cast(ts, m, I64, F32)
    rows(ts, "mul", "elementwise", (m + half) * F32, sinusoid)
    rows.free(half * F32 + m * F32)
    rows(ts, "mul", "elementwise", sinusoid, sinusoid)  # scale
    rows.free(sinusoid)
    for op in ("sin", "cos"):
        rows(ts, op, "elementwise", sinusoid, sinusoid)
    rows(ts, "cat", "movement", 2 * sinusoid, 2 * sinusoid)
    rows.free(3 * sinusoid)
    rows(ts, "cat", "movement", 2 * sinusoid, 2 * sinusoid)  # flip_sin_to_cos
    rows.free(2 * sinusoid + half * F32)
    rows.linear("condition_embedder.time_embedder.linear_1", m, cfg.freq_dim, d, F32)
    rows("condition_embedder.time_embedder.act", "silu", "elementwise", m * d * F32, m * d * F32)
    rows.free(m * d * F32)
    rows.linear("condition_embedder.time_embedder.linear_2", m, d, d, F32)
    rows.free(m * d * F32)
    rows.cast("condition_embedder", m * d, F32, BF16)  # temb, kept
    rows.free(m * d * F32)
    rows("condition_embedder.act_fn", "silu", "elementwise", m * d * BF16, m * d * BF16)
    rows.linear("condition_embedder.time_proj", m, d, 6 * d)  # timestep_proj, kept
    rows.free(m * d * BF16)
    rows.linear("condition_embedder.text_embedder.linear_1", t, cfg.text_dim, d)
    rows("condition_embedder.text_embedder.act_1", "gelu", "elementwise", t * d * BF16, t * d * BF16)
    rows.free(t * d * BF16)
    rows.linear("condition_embedder.text_embedder.linear_2", t, d, d)
    rows.free(t * d * BF16)
    image_tokens = shape.image_tokens if cfg.image_dim is not None else 0
    if cfg.image_dim is None:
        rows.free(2 * sinusoid)  # the timestep's sinusoid
    else:
        ie, i, k = "condition_embedder.image_embedder", batch * image_tokens, cfg.image_dim

        def fp32_layer_norm(name: str, width: int) -> None:
            rows.cast(f"{ie}.{name}", i * width, BF16, F32)
            rows.layer_norm(f"{ie}.{name}", i, width, affine=True)
            rows.free(i * width * F32)
            rows.cast(f"{ie}.{name}", i * width, F32, BF16)
            rows.free(i * width * F32)

        if cfg.pos_embed_seq_len is not None:  # FLF2V: the two images' tokens plus a learned position
            rows(ie, "add", "elementwise", (i + image_tokens) * k * BF16, i * k * BF16)
        fp32_layer_norm("norm1", k)
        rows.linear(f"{ie}.ff.net.0.proj", i, k, k)
        rows(f"{ie}.ff.net.0", "gelu", "elementwise", i * k * BF16, i * k * BF16)
        rows.free(i * k * BF16)
        rows.linear(f"{ie}.ff.net.2", i, k, d)
        rows.free(2 * i * k * BF16)  # the GELU's output, norm1's
        fp32_layer_norm("norm2", d)  # the image embeddings, kept
        positioned = i * k * BF16 if cfg.pos_embed_seq_len is not None else 0
        rows.free(i * d * BF16 + positioned + 2 * sinusoid)  # the FFN's output, the positioned images, the sinusoid
        rows("", "cat", "movement", (i + t) * d * BF16, (i + t) * d * BF16)  # image tokens before the text
        rows.free(t * d * BF16)  # the text embeddings
    if vace:  # the VACE blocks run first on the control tokens; each emits a hint

        def first(block: _Walk) -> None:
            block.linear("proj_in", n, d, d)
            block("", "add", "elementwise", 2 * n * d * BF16, n * d * BF16)  # control + video tokens
            # proj_in's output; and the control tokens, which block 0 holds to its end where it frees
            # the sum at its first gate: dropped here, block 0 walks like the others, whose input the
            # caller holds to their end (exact from two VACE layers on: block 1 holds a hint more)
            block.free(2 * n * d * BF16)

        rows.repeat(1, "vace_blocks.0", first)
        rows.repeat(layers, "vace_blocks.{i}", lambda block: _block_rows(cfg, block, shape, text_len, m, image_tokens,
                                                                          hint=True))  # fmt: skip
    if isinstance(cfg, WanAnimateTransformer3DConfig):  # a face adapter after block 0 and every k-th block after it
        _face_rows(cfg, rows, shape)
        k = cfg.inject_face_latents_blocks

        def block(b: _Walk) -> None:
            _block_rows(cfg, b, shape, text_len, m, image_tokens)

        for j in range(cfg.num_layers // k):
            for start, times in ((j * k, 1), (j * k + 1, k - 1)):
                rows.repeat(times, "blocks.{i}", block, start)
                if times == 1:
                    _face_adapter_rows(cfg, rows, shape, j)
    else:
        rows.repeat(
            cfg.num_layers, "blocks.{i}", lambda block: _block_rows(cfg, block, shape, text_len, m, image_tokens)
        )
    # split over ranks, block 0's input is a view of every rank's patch-embedded tokens, all freed as
    # it returns: the rest told here, after the blocks (block 0, which holds them, peaks highest)
    rows.free(video - n * d * BF16)
    if vace:  # after each block in vace_layers: hidden + hint * scale (each alike: one stands for all)
        rows("", "mul", "elementwise", n * d * BF16 + BF16, n * d * BF16, calls=layers)
        rows("", "add", "elementwise", 2 * n * d * BF16, n * d * BF16, calls=layers)
        rows.free(2 * n * d * BF16)
    o = cfg.out_channels * prod(cfg.patch_size)
    x, xf = n * d * BF16, n * d * F32
    # the float32 scale_shift_table + temb: shift and scale in float32 (from_pretrained keeps the table float32)
    rows("", "add", "elementwise", 2 * d * F32 + m * d * BF16, m * 2 * d * F32)
    rows.cast("", n * d, BF16, F32)
    rows.layer_norm("norm_out", n, d)
    rows.free(xf)
    rows("", "add", "elementwise", m * d * F32, m * d * F32)  # 1 + scale
    rows("", "mul", "elementwise", n * d * F32 + m * d * F32, n * d * F32)
    rows.free(xf + m * d * F32)
    rows("", "add", "elementwise", n * d * F32 + m * d * F32, n * d * F32)
    rows.free(xf)
    rows.cast("", n * d, F32, BF16)
    rows.free(xf + x)  # the sum, the last block's output
    rows.linear("proj_out", n, d, o)
    gathered = shape.sequence_degree * n * o * BF16
    if shape.sequence_degree > 1:  # ContextParallelGatherHook: every rank's tokens
        rows.collective("proj_out", "all_gather_into_tensor", shape.sequence_degree, n * o * BF16)
        if batch > 1:  # gathered along the batch, joined along the tokens (funcol's chunk and cat)
            rows("proj_out", "cat", "movement", gathered, gathered)
            rows.free(n * o * BF16 + gathered)  # the projection, the batch-major gather
        else:
            rows.free(n * o * BF16)  # the projection
    rows.free(x)  # the head's input
    rows("", "clone", "movement", n_all * o * BF16, n_all * o * BF16)  # unpatchify


WAN_OPS = "wan"
""":attr:`hybrid.geometry.CallShape.dit_ops` of the original Wan code's forward (``WanModel`` in
``wan/modules/model.py`` of Wan-Video/Wan2.1 and Wan2.2), walked by :func:`_wan_dit_walk`."""


def wan_ops_written(cfg: WanTransformer3DConfig, shape: CallShape) -> bool:
    """Whether :func:`_wan_dit_walk` is written for ``cfg`` and ``shape``: the original's text-, image- and
    first-last-frame-to-video and A14B/TI2V blocks and Wan2.2-Animate's ``WanAnimateModel`` (one GPU), on one GPU or
    with the sequence split by Ulysses (VACE and ring attention are walked with diffusers' ops)."""
    return (
        shape.dit_ops == WAN_OPS
        and cfg.cross_attn_norm
        and not isinstance(cfg, WanVACETransformer3DConfig)
        and shape.ring == 1
    )


def _wan_linear(rows: _Walk, module: str, n: int, d_in: int, d_out: int, src: int, weights: int, lora: int = 0) -> None:
    """An ``nn.Linear`` under ``autocast(bfloat16)``: its input cast where it is float32 (``src``), float32
    weights and bias cast on every call (``weights``: their bytes per element; a transient here: sizing
    times those casts as weight traffic, :meth:`WanTransformer3DConfig.autocast_parameters`), ``addmm``.
    With a LoRA of rank ``lora`` (peft's ``LoraLayer``): the Linear is its ``base_layer``, then :func:`_peft_lora`."""
    base = f"{module}.base_layer" if lora else module
    casts = (d_in * d_out + d_out) * BF16 if weights == F32 else 0
    if rows.memory:
        rows.sink.alloc(casts)
    if src == F32:
        rows.cast(base, n * d_in, F32, BF16)
    rows.linear(base, n, d_in, d_out)
    rows.free(casts + (n * d_in * BF16 if src == F32 else 0))
    if lora:
        _peft_lora(rows, module, n, d_in, d_out, src, weights, lora)


PEFT_ADAPTER = "default"
"""The adapter name ``model.add_adapter(lora_config)`` gives (diffusers' ``PeftAdapterMixin``): the LoRA layers'
module paths end in it (``lora_A.default``)."""


def _peft_lora(rows: _Walk, module: str, n: int, d_in: int, d_out: int, src: int, weights: int, r: int) -> None:
    """peft's ``Linear.forward`` after its base layer's output (``n x d_out`` bf16, live): the input cast to the
    adapter's dtype where it differs (``_cast_input_dtype``; the bf16 adapter of a bf16 model), ``lora_A`` (``mm``,
    no bias) to rank ``r``, ``lora_B`` back, ``* scaling`` (alpha / r: a ``mul`` whatever its value), added to the
    base's output, which it replaces; the cast input dropped as the forward returns (dropout 0: ``nn.Identity``).
    The adapter's weights are bf16 (peft casts them to the base layer's); float32 ones are not written."""
    if weights != BF16:
        raise NotImplementedError("a LoRA beside float32 weights (under autocast their casts) is not written")
    x, a, y = n * d_in * BF16, n * r * BF16, n * d_out * BF16
    cast = x if src != BF16 else 0
    if cast:
        rows.cast(module, n * d_in, src, BF16)
    rows(f"{module}.lora_A.{PEFT_ADAPTER}", "mm", "matmul", x + d_in * r * BF16, a, ops.linear(n, d_in, r),
         dims=gemm_dims(1, n, r, d_in))  # fmt: skip
    rows(f"{module}.lora_B.{PEFT_ADAPTER}", "mm", "matmul", a + r * d_out * BF16, y, ops.linear(n, r, d_out),
         dims=gemm_dims(1, n, d_out, r))  # fmt: skip
    rows.free(a)
    rows(module, "mul", "elementwise", y, y)
    rows.free(y)  # lora_B's output
    rows(module, "add", "elementwise", 2 * y, y)
    rows.free(2 * y + cast)  # the scaled product, the base layer's output (rebound), the cast input


def _wan_f32_linear(rows: _Walk, module: str, n: int, d_in: int, d_out: int, weights: int) -> None:
    """An ``nn.Linear`` under ``autocast(float32)`` on float32 input: bf16 weights (``weights``) and bias
    cast up to float32 on every call (rows: sizing times only the float32 weights' casts), ``addmm``."""
    up = (d_in * d_out + d_out) * F32 if weights == BF16 else 0
    if up:
        rows.cast(module, d_out, BF16, F32)
        rows.cast(module, d_in * d_out, BF16, F32)
    rows.linear(module, n, d_in, d_out, F32)
    rows.free(up)


def _wan_rms_norm(rows: _Walk, module: str, n: int, d: int, weights: int) -> None:
    """``WanRMSNorm``: ``self._norm(x.float()).type_as(x) * self.weight``; the output has the weight's
    dtype (``weights`` bytes: float32, or bf16 with ``--convert-model-dtype``). Its bf16 input is freed
    by the caller."""
    x, xf, r = n * d * BF16, n * d * F32, n * F32
    rows.cast(module, n * d, BF16, F32)
    rows(module, "pow", "elementwise", xf, xf)
    rows(module, "mean", "reduction", xf, r)
    rows.free(xf)
    rows(module, "add", "elementwise", r, r)
    rows.free(r)
    rows(module, "rsqrt", "elementwise", r, r)
    rows.free(r)
    rows(module, "mul", "elementwise", xf + r, xf)
    rows.free(xf + r)  # x.float(), the rsqrt
    rows.cast(module, n * d, F32, BF16)
    rows.free(xf)
    rows(module, "mul", "elementwise", x + d * weights, n * d * weights)
    rows.free(x)


def _wan_rope(
    rows: _Walk, batch: int, tokens: int, d: int, hd: int, src: int, grid: int = 0, ranks: int = 1,
    module: str = "attn1",
) -> None:  # fmt: skip
    """``rope_apply`` on q or k (``src`` bytes per element, ``(B, N, H, hd)``) with autocast off: per sample, a float64
    copy viewed as complex, the frequencies of its ``(f, h, w)`` grid joined into a complex128 table, their
    product, joined with the (empty) padding; then stacked and cast back to float32. What it returns is the
    caller's to free.

    Under the Wan repositories' sequence parallelism (``ranks`` > 1: ``rope_apply`` of
    ``wan/distributed/sequence_parallel.py``, and of Wan2.1's ``xdit_context_parallel.py``) ``tokens`` are
    this rank's and the table is built over the whole grid's ``grid`` tokens on every rank, padded to
    ``tokens * ranks`` (``pad_freqs``: ``torch.ones`` and a ``cat``), and this rank's slice multiplied."""
    s, n = tokens * d, batch * tokens * d  # elements of one sample's q, of the batch's
    sp = ranks > 1
    table = (grid if sp else tokens) * hd // 2 * 2 * F64  # complex128 (N, hd/2)
    padded = tokens * ranks * hd // 2 * 2 * F64 if sp else table  # the table the product reads a slice of
    own = tokens * hd // 2 * 2 * F64  # this rank's slice
    rows(module, "_to_copy", "movement", s * src, s * F64, calls=batch, out=0)
    rows(module, "cat", "movement", table, table, calls=batch, out=0)
    if sp:
        rows(module, "ones", "factory", 0, padded - table, calls=batch, out=0)
        rows(module, "cat", "movement", padded, padded, calls=batch, out=0)
    rows(module, "mul", "elementwise", s * F64 + own, s * F64, calls=batch, out=0)
    rows(module, "cat", "movement", s * F64, s * F64, calls=batch, out=0)
    if rows.memory:  # the loop: x_i and the table rebound each sample, each x_i kept in a list
        for i in range(batch):
            rows.sink.alloc(s * F64 + table)  # the float64 copy; the new table
            if i:
                rows.free(padded)  # the previous sample's
            if sp:  # pad_freqs: the padding, the padded table; then the padding and the unpadded one dropped
                rows.sink.alloc(padded - table)
                rows.sink.alloc(padded)
                rows.free(padded)
            rows.sink.alloc(s * F64)  # the product
            rows.free(s * F64)  # the copy
            rows.sink.alloc(s * F64)  # joined with the padding, kept
            rows.free(s * F64)  # the product
    rows(module, "stack", "movement", n * F64, n * F64)
    rows.cast(module, n, F64, F32)
    rows.free(2 * n * F64 + padded)  # the samples, their stack, the last table


def _s2v_rope(rows: _Walk, tokens: int, d: int, src: int) -> None:
    """Wan2.2-S2V's ``rope_apply`` (``wan/modules/s2v/model_s2v.py:61-76``) on q or k of one sample
    (``(1, L, H, hd)``, ``src`` bytes per element) with autocast off, against the forward's precomputed
    complex128 table (``pre_compute_freqs``, ``(1, L, H, hd/2)``: as many bytes as the float64 copy): the
    copy viewed as complex, its product with the table, joined with the (empty) rest, stacked, cast to
    float32. What it returns is the caller's to free."""
    s = tokens * d
    rows("attn1", "_to_copy", "movement", s * src, s * F64)
    rows("attn1", "mul", "elementwise", 2 * s * F64, s * F64)
    rows.free(s * F64)  # the copy (x_i rebound)
    rows("attn1", "cat", "movement", s * F64, s * F64)
    rows.free(s * F64)  # the product (x_i rebound); the joined one stays in the list
    rows("attn1", "stack", "movement", s * F64, s * F64)
    rows.cast("attn1", s, F64, F32)
    rows.free(2 * s * F64)  # the list's sample, the stack


def _gather_forward(rows: _Walk, part: int, ranks: int, module: str = "") -> None:
    """``gather_forward`` (``wan/distributed/util.py``): every rank's ``part`` bytes into ``empty_like`` outputs by
    ``dist.all_gather``, joined along the sequence; leaves the join allocated."""
    rows(module, "empty_like", "factory", part, part, calls=ranks, out=ranks * part)
    rows.list_collective(module, "allgather_", ranks, part)
    rows(module, "cat", "movement", ranks * part, ranks * part)
    rows.free(ranks * part)  # the list


def _all_to_all(rows: _Walk, module: str, nbytes: int, ranks: int, contiguous: bool) -> None:
    """``all_to_all`` of the Wan repositories' sequence parallelism (Wan2.2's ``wan/distributed/util.py``, the original
    Wan-Animate-2's ``wanxiang/ops/distributed.py``) on a tensor of ``nbytes``: its ``ranks`` chunks made contiguous
    (where they are not), ``empty_like`` outputs, ``dist.all_to_all``, the outputs joined. Leaves the join
    allocated; the caller frees the input."""
    part = nbytes // ranks
    if not contiguous:
        rows(module, "clone", "movement", part, part, calls=ranks, out=nbytes)
    rows(module, "empty_like", "factory", part, part, calls=ranks, out=nbytes)
    rows.list_collective(module, "alltoall_", ranks, nbytes)
    rows(module, "cat", "movement", nbytes, nbytes)
    rows.free(nbytes + (0 if contiguous else nbytes))  # the outputs and the contiguous inputs


def _wan_ulysses_attention(rows: _Walk, batch: int, tokens: int, grid: int, heads: int, hd: int, ranks: int) -> None:
    """The self-attention core of the Wan repositories' sequence parallelism on one rank
    (``sp_attn_forward`` and ``distributed_attention`` of ``wan/distributed/``): the rotated float32 q
    and k cast to bf16; q, k and v each exchanged by ``all_to_all`` (``util.all_to_all``: the head
    chunks made contiguous, ``empty_like`` outputs, ``dist.all_to_all``, joined along the sequence);
    ``flash_attention`` with ``k_lens`` (k and v joined over the ``grid`` true tokens, the queries over
    all ``tokens * ranks``); the output exchanged back the same way, its sequence chunks contiguous for
    one sample. Returns with the output ``(B, tokens, H, hd)`` bf16 allocated; the gathered q, k, v
    dropped."""
    x = batch * tokens * heads * hd  # elements of this rank's q (and of the gathered q, of the output)
    xb = x * BF16
    h = heads // ranks
    kv = batch * grid * h * hd  # the gathered k (v) over the true tokens

    def exchange(contiguous: bool) -> None:
        _all_to_all(rows, "attn1", xb, ranks, contiguous)

    rows.cast("attn1", x, F32, BF16)  # half(q)
    rows.cast("attn1", x, F32, BF16)  # half(k)
    exchange(batch * tokens == 1)
    rows.free(xb)  # half(q), rebound
    exchange(batch * tokens == 1)
    rows.free(xb)  # half(k)
    exchange(batch * tokens == 1)
    rows("attn1", "cat", "movement", kv * BF16, kv * BF16)  # k[:k_len] per sample, joined
    rows("attn1", "cat", "movement", kv * BF16, kv * BF16)  # v
    q_len = tokens * ranks
    rows.math_attention(batch * h, q_len, grid, hd)
    rows("attn1", "scaled_dot_product_attention", "attention", xb + 2 * kv * BF16, xb,
         ops.sdpa(batch, h, q_len, grid, hd), dims=attention_dims(batch * h, q_len, grid, hd))  # fmt: skip
    rows.free(2 * kv * BF16)  # the joined k and v
    exchange(batch == 1)
    rows.free(xb + 3 * xb)  # the attention's output, rebound; the gathered q, k, v at the return


def _wan_attention(rows: _Walk, module: str, batch: int, heads: int, hd: int, q_len: int, kv_len: int,
                   qk: int, gather_kv: bool, component: str = "") -> None:  # fmt: skip
    """``flash_attention`` (``wan/modules/attention.py``) on q and k of ``qk`` bytes per element and
    bf16 v: float32 q and k cast to bf16; with ``k_lens`` (self-attention) k and v gathered per sample
    (``torch.cat``) first; the FlashAttention varlen kernel; its output cast back to q's dtype.
    Returns with that output allocated; self-attention's q and k (the rotary embedding's outputs,
    passed as temporaries) are dropped when the call rebinds them: CPython >= 3.11 hands a Python
    function its arguments' references (on 3.10 they live to the return, two float32 video-sized
    tensors more at the kernel)."""
    d = heads * hd
    q, kv = batch * q_len * d, batch * kv_len * d
    if qk == F32:
        rows.cast(module, q, F32, BF16)
    if gather_kv:  # self-attention's q and k are rope_apply's: the call owns them (Python >= 3.11), drops them
        rows.free(q * F32)
        rows(module, "cat", "movement", kv * F32, kv * F32)
        rows.cast(module, kv, F32, BF16)
        rows.free(kv * F32 + kv * F32)  # the gathered k, the rotated k
        rows(module, "cat", "movement", kv * BF16, kv * BF16)
    elif qk == F32:
        rows.cast(module, kv, F32, BF16)
    rows.math_attention(batch * heads, q_len, kv_len, hd)
    rows(module, "scaled_dot_product_attention", "attention", (q + 2 * kv) * BF16, q * BF16,
         ops.sdpa(batch, heads, q_len, kv_len, hd), component=component,
         dims=attention_dims(batch * heads, q_len, kv_len, hd))  # fmt: skip
    if qk == F32:
        rows.cast(module, q, BF16, F32)
        rows.free(2 * q * BF16 + kv * BF16 + (kv * BF16 if gather_kv else 0))  # q, k, (v,) the output in bf16


def _wan_block(
    cfg: WanTransformer3DConfig, rows: _Walk, shape: CallShape, m: int, src: int, wt: int, split: int = 0
) -> None:
    """One ``WanAttentionBlock`` (``wan/modules/model.py``) on a residual stream of ``src`` bytes per
    element (bf16 into the first block, float32 after: ``x + y * e`` in float32 promotes it), under
    ``autocast(bfloat16)`` with weights of ``wt`` bytes per element (float32, or bf16 with
    ``--convert-model-dtype``: then q and k are bf16, cross-attention casts nothing). Module paths
    are diffusers' (``self_attn`` is ``attn1``, its ``q/k/v/o`` ``to_q/to_k/to_v/to_out.0``, ``norm3``
    (the affine one) ``norm2``, ``norm2`` ``norm3``, ``ffn.0/1/2`` ``ffn.net.0.proj/net.0/net.2``). The
    modulation ``(m, 6, D)``,
    norms, rotary embedding (in float64) and residual adds are float32; the projections, attention
    and FFN bf16; the block returns a float32 stream and frees its input.

    ``split`` (Wan2.2-S2V's ``WanS2VAttentionBlock``, ``wan/modules/s2v/model_s2v.py:199-244``; one sample):
    the first ``split`` tokens (the noisy video's) are modulated and gated with the timestep's table and the
    rest (reference and motion tokens) with timestep 0's (``m`` is then 2), each part its own ops, joined by
    ``torch.cat``, which rebinds the attention's and the FFN's outputs (the joined float32 gates live to the
    block's end instead); q and k are rotated against the forward's precomputed table (:func:`_s2v_rope`)."""
    batch, tokens, text_len = shape.batch, shape.local_tokens, shape.text_len
    n, t, d, f = batch * tokens, batch * text_len, cfg.inner_dim, cfg.ffn_dim
    heads, hd = cfg.num_attention_heads, cfg.attention_head_dim
    nd, md = n * d, m * d
    x, xf = nd * BF16, nd * F32
    qk, nq, tq = wt, n * d * wt, t * d * wt  # q and k as the RMS norms return them
    parts = (split, n - split)
    lora = cfg.lora_rank if isinstance(cfg, WanAnimateTransformer3DConfig) else 0

    def linear(module: str, rows_in: int, d_in: int, d_out: int, src: int) -> None:  # a block's Linear, its LoRA
        _wan_linear(rows, module, rows_in, d_in, d_out, src, wt, lora)

    rows("", "add", "elementwise", 6 * d * wt + 6 * md * F32, 6 * md * F32)  # modulation + e, kept

    def modulated(norm: str) -> None:  # norm(x).float() * (1 + e[1]) + e[0], norm1 or (the original's) norm2
        if norm == "norm1" and src == BF16:  # WanLayerNorm: x.float(), the norm, .type_as(x); then .float()
            rows.cast(norm, nd, BF16, F32)
            rows.layer_norm(norm, n, d)
            rows.free(xf)
            rows.cast(norm, nd, F32, BF16)
            rows.free(xf)
            rows.cast("", nd, BF16, F32)
            rows.free(x)
        else:
            rows.layer_norm(norm, n, d)
        if split:  # per part: norm_x[:, part] * (1 + e[1][:, i:i + 1]) + e[0][:, i:i + 1]; torch.cat(parts)
            for k in parts:
                rows("", "add", "elementwise", d * F32, d * F32)
                rows("", "mul", "elementwise", (k + 1) * d * F32, k * d * F32)
                rows.free(d * F32)
                rows("", "add", "elementwise", (k + 1) * d * F32, k * d * F32)
                rows.free(k * d * F32)
            rows("", "cat", "movement", xf, xf)
            rows.free(xf)  # the norm (rebound); the parts and the joined input live to the block's end
            return
        rows("", "add", "elementwise", md * F32, md * F32)
        rows("", "mul", "elementwise", xf + md * F32, xf)
        rows.free(xf + md * F32)
        rows("", "add", "elementwise", xf + md * F32, xf)
        rows.free(xf)

    def gated(y: int, stream: int) -> None:  # x (``stream`` bytes) + y * e[k] in float32: the stream becomes float32
        if split:  # per part y[:, part] * e[k][:, i:i + 1]; y = torch.cat(parts) rebinds y (freed), then x + y
            for k in parts:
                rows("", "mul", "elementwise", k * d * y + d * F32, k * d * F32)
            rows("", "cat", "movement", xf, xf)
            rows.free(nd * y)  # y (the attention's or the FFN's output), rebound; the parts live to the block's end
            rows("", "add", "elementwise", stream + xf, xf)
            return
        rows("", "mul", "elementwise", nd * y + md * F32, xf)
        rows("", "add", "elementwise", stream + xf, xf)
        rows.free(xf)

    modulated("norm1")  # the self-attention's input, held to its end
    for proj in ("to_q", "to_k"):
        linear(f"attn1.{proj}", n, d, d, F32)
        _wan_rms_norm(rows, f"attn1.norm_{proj[-1]}", n, d, wt)
        rows.free(x)  # the projection
    linear("attn1.to_v", n, d, d, F32)
    ranks = shape.sequence_degree

    def rope() -> None:  # q or k rotated: against S2V's precomputed table, or the original's per-sample one
        if split:
            _s2v_rope(rows, tokens, d, qk)
        else:
            _wan_rope(rows, batch, tokens, d, hd, qk, shape.dit_tokens, ranks)

    if ranks == 1:
        rope()
        rope()
        _wan_attention(rows, "attn1", batch, heads, hd, tokens, tokens, F32, gather_kv=True)
        linear("attn1.to_out.0", n, d, d, F32)
        rows.free(xf + 2 * nq + x + (0 if split else xf))  # the output in float32; q, k (normed), v; the input
    else:  # sp_attn_forward: q = rope_apply(q, ...) rebinds q (and k), dropping the normed ones
        for _ in "qk":  # S2V's rope_apply_usp: this rank's rows of the precomputed table
            rope()
            rows.free(nq)
        _wan_ulysses_attention(rows, batch, tokens, shape.dit_tokens, heads, hd, ranks)
        linear("attn1.to_out.0", n, d, d, BF16)
        rows.free(x + 2 * xf + x + (0 if split else xf))  # the output in bf16; q, k (rotated, float32), v; the input
    gated(BF16, nd * src)  # y, the attention's output, lives to the block's end
    if wt == BF16:  # autocast runs layer_norm in float32: its bf16 weight and bias cast up
        rows.cast("norm2", d, BF16, F32)
        rows.cast("norm2", d, BF16, F32)
    rows.layer_norm("norm2", n, d, affine=cfg.cross_attn_norm)  # the original's norm3 (affine)
    rows.free(2 * d * F32 if wt == BF16 else 0)
    # image-to-video (WanI2VCrossAttention): the context is float32 (the image embeddings' float32 norm
    # joined with the text), its image tokens first; k_img/v_img are diffusers' add_k_proj/add_v_proj
    image = cfg.image_dim is not None
    ctx, i = (F32, batch * shape.image_tokens) if image else (BF16, 0)
    linear("attn2.to_q", n, d, d, F32)
    _wan_rms_norm(rows, "attn2.norm_q", n, d, wt)
    rows.free(x)
    linear("attn2.to_k", t, d, d, ctx)
    _wan_rms_norm(rows, "attn2.norm_k", t, d, wt)
    rows.free(t * d * BF16)
    linear("attn2.to_v", t, d, d, ctx)
    if image:
        linear("attn2.add_k_proj", i, d, d, F32)
        _wan_rms_norm(rows, "attn2.norm_added_k", i, d, wt)
        rows.free(i * d * BF16)
        linear("attn2.add_v_proj", i, d, d, F32)
        _wan_attention(rows, "attn2", batch, heads, hd, tokens, shape.image_tokens, qk, False, IMAGE_CORE)
    _wan_attention(rows, "attn2", batch, heads, hd, tokens, text_len, qk, gather_kv=False)
    if image:  # x = x + img_x
        rows("attn2", "add", "elementwise", 2 * n * d * qk, n * d * qk)
        rows.free(n * d * qk)  # the text attention's output, rebound
    linear("attn2.to_out.0", n, d, d, qk)  # the attention's output in q's dtype
    # the attention's output; q, k, v; the normed input; the image's k, v and attention output
    rows.free(n * d * qk + nq + tq + t * d * BF16 + xf + (i * d * wt + i * d * BF16 + n * d * qk if image else 0))
    rows("", "add", "elementwise", xf + x, xf)  # x + cross_attn(...)
    rows.free(x)
    modulated("norm3")  # the original's norm2
    linear("ffn.net.0.proj", n, d, f, F32)
    rows("ffn.net.0", "gelu", "elementwise", n * f * BF16, n * f * BF16)
    rows.free(n * f * BF16)
    linear("ffn.net.2", n, f, d, BF16)
    rows.free(n * f * BF16 + (0 if split else xf))  # the GELU's output, the FFN's input
    gated(BF16, xf)  # the FFN's output
    # the FFN's output, the stream after cross-attention and after self-attention, the attention's
    # output, the modulation, the block's input; S2V's locals instead of the two outputs: the joined gates, the
    # gates' and the modulations' parts, the joined attention and FFN inputs
    kept = 8 * xf if split else 2 * x
    rows.free(kept + xf + xf + 6 * md * F32 + nd * src)


CLIP_FEATURES = F16
"""Bytes per element of the image features the original image-to-video code passes the DiT
(``clip_fea``): ``CLIPModel.visual`` returns its 31st block's output under ``autocast(float16)``
with float16 weights (``wan/modules/clip.py``)."""


def _wan_image_embedder(cfg: WanTransformer3DConfig, rows: _Walk, shape: CallShape, t: int, wt: int) -> None:
    """``img_emb`` (``MLPProj``: LayerNorm, Linear, GELU, Linear, LayerNorm) on the float16 CLIP
    features under ``autocast(bfloat16)`` (the LayerNorms in float32), FLF2V's learned position added
    first (a float32 parameter: the sum is float32), then ``torch.concat([context_clip, context])``:
    the float32 image embeddings before the bf16 text, the whole context float32. Leaves the
    embeddings and the joined context allocated and the text context freed (the name rebound)."""
    ie, d, k = "condition_embedder.image_embedder", cfg.inner_dim, cfg.image_dim or 0
    i = shape.batch * shape.image_tokens

    def norm(name: str, width: int, src: int) -> None:  # autocast runs LayerNorm in float32: its input cast up
        if src != F32:
            rows.cast(f"{ie}.{name}", i * width, src, F32)
        weights = 2 * width * F32 if wt != F32 else 0  # and its bf16 weight and bias (Wan-Animate's bf16 model)
        if weights:
            rows.cast(f"{ie}.{name}", width, wt, F32)
            rows.cast(f"{ie}.{name}", width, wt, F32)
        rows.layer_norm(f"{ie}.{name}", i, width, affine=True)
        rows.free(weights + (i * width * F32 if src != F32 else 0))

    src = CLIP_FEATURES
    if cfg.pos_embed_seq_len is not None:
        rows(ie, "add", "elementwise", i * k * src + shape.image_tokens * k * F32, i * k * F32)
        src = F32
    norm("norm1", k, src)
    _wan_linear(rows, f"{ie}.ff.net.0.proj", i, k, k, F32, wt)
    rows.free(i * k * F32)  # norm1's output
    rows(f"{ie}.ff.net.0", "gelu", "elementwise", i * k * BF16, i * k * BF16)
    rows.free(i * k * BF16)
    _wan_linear(rows, f"{ie}.ff.net.2", i, k, d, BF16, wt)
    rows.free(i * k * BF16)  # the GELU's output
    norm("norm2", d, BF16)
    rows.free(i * d * BF16 + (i * k * F32 if cfg.pos_embed_seq_len is not None else 0))
    rows.cast("", t * d, BF16, F32)  # autocast promotes cat's inputs to the widest
    rows("", "cat", "movement", (i + t) * d * F32, (i + t) * d * F32)
    rows.free(t * d * F32 + t * d * BF16)  # the promoted text; the text context, rebound


def _wan_time_embedding(rows: _Walk, cfg: WanTransformer3DConfig, m: int, wt: int) -> None:
    """``sinusoidal_embedding_1d`` of ``m`` timesteps in float64, then under ``autocast(float32)`` the time
    embedding and projection (weights of ``wt`` bytes per element cast up where bf16): leaves ``e``
    (``m x D``) and ``e0`` (``m x 6D``) allocated, float32."""
    d, half, freq = cfg.inner_dim, cfg.freq_dim // 2, cfg.freq_dim
    md = m * d
    rows("", "_to_copy", "movement", m * I64, m * F64)  # position.type(torch.float64), kept to its return
    rows("", "arange", "factory", 0, half * I64)
    rows.cast("", half, I64, F64)
    rows.free(half * I64)
    for op in ("div", "neg", "pow"):
        rows("", op, "elementwise", half * F64, half * F64)
        rows.free(half * F64)
    rows("", "mul", "elementwise", (m + half) * F64, m * half * F64)  # torch.outer
    rows.free(half * F64)
    for op in ("cos", "sin"):
        rows("", op, "elementwise", m * half * F64, m * half * F64)
    rows("", "cat", "movement", m * freq * F64, m * freq * F64)
    rows.free(m * freq * F64 + m * half * F64 + m * F64)  # cos and sin, the outer product, the position
    rows.cast("", m * freq, F64, F32)
    rows.free(m * freq * F64)
    te = "condition_embedder.time_embedder"
    _wan_f32_linear(rows, f"{te}.linear_1", m, freq, d, wt)
    rows(f"{te}.act", "silu", "elementwise", md * F32, md * F32)
    rows.free(md * F32)
    _wan_f32_linear(rows, f"{te}.linear_2", m, d, d, wt)  # e, kept for the head
    rows.free(md * F32 + m * freq * F32)  # the SiLU's output, the float32 sinusoid
    rows("condition_embedder.act_fn", "silu", "elementwise", md * F32, md * F32)
    _wan_f32_linear(rows, "condition_embedder.time_proj", m, d, 6 * d, wt)  # e0, kept
    rows.free(md * F32)


def _wan_text_embedding(rows: _Walk, cfg: WanTransformer3DConfig, batch: int, text_len: int, wt: int) -> None:
    """The context padded to ``text_len`` (none: ``text_len`` tokens given), stacked and embedded
    (``text_embedding``) under ``autocast(bfloat16)``: leaves it allocated, bf16."""
    d, t = cfg.inner_dim, batch * text_len
    tdim, tx = cfg.text_dim, t * cfg.text_dim * BF16
    rows("", "new_zeros", "factory", text_len * tdim * BF16, 0, calls=batch)
    rows("", "cat", "movement", text_len * tdim * BF16, text_len * tdim * BF16, calls=batch, out=tx)
    rows("", "stack", "movement", tx, tx)
    rows.free(tx)
    tt = "condition_embedder.text_embedder"
    _wan_linear(rows, f"{tt}.linear_1", t, tdim, d, BF16, wt)
    rows(f"{tt}.act_1", "gelu", "elementwise", t * d * BF16, t * d * BF16)
    rows.free(t * d * BF16)
    _wan_linear(rows, f"{tt}.linear_2", t, d, d, BF16, wt)  # the context, kept
    rows.free(t * d * BF16 + tx)  # the GELU's output, the stacked context


def _wan_head(rows: _Walk, cfg: WanTransformer3DConfig, nl: int, ml: int, wt: int, stream: int) -> None:
    """``Head`` under ``autocast(float32)`` on ``nl`` float32 tokens with ``ml`` elements of ``e``: the
    modulation table plus ``e``, the norm and its modulation, ``proj_out``; frees all but ``proj_out``'s
    output, the blocks' output (``stream`` bytes: the tokens the head reads may be a prefix of it) included."""
    d = cfg.inner_dim
    xf = nl * d * F32
    rows("", "add", "elementwise", 2 * d * wt + ml * F32, 2 * ml * F32)  # modulation + e, to the head's end
    rows.layer_norm("norm_out", nl, d)
    rows("", "add", "elementwise", ml * F32, ml * F32)
    rows("", "mul", "elementwise", xf + ml * F32, xf)
    rows.free(xf + ml * F32)
    rows("", "add", "elementwise", xf + ml * F32, xf)
    rows.free(xf)
    o = cfg.out_channels * prod(cfg.patch_size)
    _wan_f32_linear(rows, "proj_out", nl, d, o, wt)
    rows.free(xf + 2 * ml * F32 + stream)  # its input, the modulation, the blocks' output


def _wan_blur(rows: _Walk, module: str, n: int, c: int, size: int, pad: tuple[int, int]) -> tuple[int, int]:
    """``Blur`` (``upfirdn2d_native`` at factor 1) of Wan-Animate's original motion encoder on ``n`` frames of
    ``c x size x size`` bf16 (``wan/modules/animate/motion_encoder.py``): the input padded by nothing (a copy), then
    by ``pad``, the bf16 4x4 kernel flipped, one single-channel ``conv2d`` over every frame's channels. Returns
    ``(output bytes, output size)``; the caller holds the input."""
    x, padded_size = n * c * size * size * BF16, size + pad[0] + pad[1]
    padded, o = n * c * padded_size * padded_size * BF16, padded_size - 3
    rows(module, "constant_pad_nd", "movement", x, x)  # F.pad by zeros to upsample by 1
    rows(module, "constant_pad_nd", "movement", x, padded)
    rows.free(x)
    rows(module, "flip", "movement", 16 * BF16, 16 * BF16)
    out = n * c * o * o * BF16
    rows(module, "convolution", "conv", padded + 16 * BF16, out, ops.conv(n * c, 1, 1, (4, 4), (o, o)),
         dims=conv_dims(n * c, 1, 1, (4, 4), (o, o)))  # fmt: skip
    rows.free(padded + 16 * BF16)
    return out, o


def _wan_conv_layer(
    rows: _Walk, module: str, n: int, c_in: int, c_out: int, k: int, size: int, down: bool = False,
    act: bool = True,
) -> tuple[int, int]:  # fmt: skip
    """``ConvLayer`` of the original motion encoder (an ``nn.Sequential``): with ``down`` a :func:`_wan_blur` and a
    stride-2 ``EqualConv2d``, else one padded to keep the size; its weight scaled on every call
    (``self.weight * self.scale``), then with ``act`` ``FusedLeakyReLU`` (``leaky_relu(x + bias) * sqrt(2)``).
    Returns ``(output bytes, output size)``; the caller holds the input."""
    i, blurred = 0, 0
    src = size
    if down:
        pad = (4 - 2) + (k - 1)
        blurred, src = _wan_blur(rows, f"{module}.0", n, c_in, size, ((pad + 1) // 2, pad // 2))
        i = 1
    stride, padding = (2, 0) if down else (1, k // 2)
    o = (src + 2 * padding - k) // stride + 1
    weight, out = c_out * c_in * k * k * BF16, n * c_out * o * o * BF16
    rows(f"{module}.{i}", "mul", "elementwise", weight, weight)
    rows(f"{module}.{i}", "convolution", "conv", (blurred or n * c_in * size * size * BF16) + weight, out,
         ops.conv(n, c_in, c_out, (k, k), (o, o)), dims=conv_dims(n, c_in, c_out, (k, k), (o, o)))  # fmt: skip
    rows.free(weight + blurred)
    if act:
        a = f"{module}.{i + 1}"
        rows(a, "add", "elementwise", out + c_out * BF16, out)
        rows(a, "leaky_relu", "elementwise", out, out)
        rows.free(out)  # the sum
        rows(a, "mul", "elementwise", out, out)
        rows.free(2 * out)  # the leaky output; the convolution's, as the Sequential moves on
    return out, o


def _wan_motion_encoder(cfg: WanAnimateTransformer3DConfig, rows: _Walk, n: int) -> None:
    """The original motion encoder's ``get_motion`` on ``n`` face frames (``Generator`` in
    ``motion_encoder.py``): ``EncoderApp``'s convolutions, every output kept in its list to the encoder's return,
    the motion network's ``EqualLinear`` layers (weight and bias scaled each call), then under ``autocast(float32)``
    the direction basis: its bf16 weight plus 1e-8 orthogonalised in float32 (``custom_qr``: Q and R cast back to
    bf16), the features' diagonal matrix and Q.T multiplied in float32 (CUDA's autocast), summed: ``n x 512``
    float32, held by the caller."""
    me, size, channels = "motion_encoder.enc", cfg.motion_encoder_size, cfg.motion_channels()
    app = f"{me}.net_app.convs"
    x, s = _wan_conv_layer(rows, f"{app}.0", n, 3, channels[0], 1, size)
    kept = x
    for i, (c_in, c_out) in enumerate(pairwise(channels), start=1):
        block = f"{app}.{i}"
        a, _ = _wan_conv_layer(rows, f"{block}.conv1", n, c_in, c_in, 3, s)
        b, _ = _wan_conv_layer(rows, f"{block}.conv2", n, c_in, c_out, 3, s, down=True)
        rows.free(a)
        skip, s = _wan_conv_layer(rows, f"{block}.skip", n, c_in, c_out, 1, s, down=True, act=False)
        rows(block, "add", "elementwise", b + skip, b)
        rows(block, "div", "elementwise", b, b)
        rows.free(2 * b + skip)  # the sum, conv2's output, the skip path's
        x = b
        kept += x
    e, m, out = cfg.motion_style_dim, cfg.motion_dim, cfg.motion_encoder_dim
    weight = e * channels[-1] * 16 * BF16
    last = f"{app}.{len(channels)}"
    rows(last, "mul", "elementwise", weight, weight)
    rows(last, "convolution", "conv", x + weight, n * e * BF16, ops.conv(n, channels[-1], e, (4, 4), (1, 1)),
         dims=conv_dims(n, channels[-1], e, (4, 4), (1, 1)))  # fmt: skip
    rows.free(weight + x)  # the weight; the last block's output, dropped from the list as it returns
    kept -= x
    feat = n * e * BF16
    for i in range(5):
        width = m if i == 4 else e
        fc = f"{me}.fc.{i}"
        rows(fc, "mul", "elementwise", width * e * BF16, width * e * BF16)
        rows(fc, "mul", "elementwise", width * BF16, width * BF16)
        rows.linear(fc, n, e, width)
        rows.free(width * e * BF16 + width * BF16 + (feat if i else 0))
        feat = n * width * BF16
    rows.free(kept + n * e * BF16)  # the encoder's kept outputs, its last one (enc_motion returns)
    d = "motion_encoder.dec.direction"
    rows(d, "add", "elementwise", out * m * BF16, out * m * BF16)
    rows.cast(d, out * m, BF16, F32)
    rows(d, "linalg_qr", "linalg", out * m * F32, (out * m + m * m) * F32)
    rows.free(out * m * F32 + out * m * BF16)  # the float32 copy, the sum
    rows.cast(d, out * m, F32, BF16)
    rows.cast(d, m * m, F32, BF16)
    rows.free((out * m + m * m) * F32 + m * m * BF16)  # the float32 Q and R; R unused
    rows(d, "diag_embed", "movement", n * m * BF16, n * m * m * BF16)
    rows.cast(d, n * m * m, BF16, F32)
    rows.cast(d, m * out, BF16, F32)
    rows(d, "mm", "matmul", (n * m * m + m * out) * F32, n * m * out * F32, ops.linear(n * m, m, out),
         dims=gemm_dims(1, n * m, out, m))  # fmt: skip
    rows(d, "sum", "reduction", n * m * out * F32, n * out * F32)
    rows.free(n * m * out * F32 + (n * m * m + m * out) * F32 + n * m * m * BF16 + out * m * BF16 + feat)


def _wan_face_path(cfg: WanAnimateTransformer3DConfig, rows: _Walk, shape: CallShape) -> int:
    """The original ``after_patch_embedding``'s face path: the face frames rearranged to a batch of frames, the
    motion encoder (:func:`_wan_motion_encoder`) in batches of 8, the float32 motion vectors joined, the
    ``FaceEncoder`` (``face_blocks.py``: causal 1D convolutions padded by replication in the input's dtype, layer
    norms in float32, SiLU, ``out_proj``, a padding token per frame, a copy), and a zero frame in front
    (``torch.zeros(...).type_as``): returns the bytes of the face features the adapters attend to (held)."""
    batch, frames, d = shape.batch, shape.frames, cfg.inner_dim
    total = batch * frames
    per = cfg.motion_encoder_batch_size  # rearrange 'b c t h w -> (b t) c h w' of one video: a view
    for b in _motion_batches(total, per):
        _wan_motion_encoder(cfg, rows, b)
    o, f, h = cfg.motion_encoder_dim, cfg.face_encoder_hidden_dim, cfg.face_encoder_num_heads
    motion = total * o * F32
    rows("", "cat", "movement", motion, motion)
    rows.free(motion)  # the batches' vectors
    fe, t, x = "face_encoder", frames, motion
    for i, (c_in, c_out, stride) in enumerate(((o, f * h, 1), (f, f, 2), (f, f, 2)), start=1):
        n = batch * (h if i > 1 else 1)
        conv = f"{fe}.conv1_local" if i == 1 else f"{fe}.conv{i}"
        # its float32 input (the joined motion vectors, then each SiLU's output) padded, cast for the conv
        rows(conv, "replication_pad1d", "movement", n * c_in * t * F32, n * c_in * (t + 2) * F32)
        rows.free(x)
        rows.cast(f"{conv}.conv", n * c_in * (t + 2), F32, BF16)
        rows.free(n * c_in * (t + 2) * F32)
        t_out = (t + 2 - 3) // stride + 1
        y = n * c_out * t_out * BF16
        rows(f"{conv}.conv", "convolution", "conv", (n * c_in * (t + 2) + c_out * c_in * 3 + c_out) * BF16, y,
             ops.conv(n, c_in, c_out, (3,), (t_out,)), dims=conv_dims(n, c_in, c_out, (3,), (t_out,)))  # fmt: skip
        rows.free(n * c_in * (t + 2) * BF16)
        t, r = t_out, batch * h * t_out
        rows.cast(f"{fe}.norm{i}", r * f, BF16, F32)  # CUDA's autocast runs layer_norm in float32
        rows.free(y)
        rows.layer_norm(f"{fe}.norm{i}", r, f)
        rows.free(r * f * F32)
        rows(f"{fe}.act", "silu", "elementwise", r * f * F32, r * f * F32)
        rows.free(r * f * F32)
        x = r * f * F32
    r = batch * h * t
    rows.cast(f"{fe}.out_proj", r * f, F32, BF16)
    rows.linear(f"{fe}.out_proj", r, f, d)
    rows.free(r * f * BF16 + x)
    rows(fe, "repeat", "movement", d * BF16, batch * t * d * BF16)
    feats = batch * t * (h + 1) * d * BF16
    rows(fe, "cat", "movement", feats, feats)
    rows.free(r * d * BF16 + batch * t * d * BF16)
    rows(fe, "clone", "movement", feats, feats)
    rows.free(feats)
    front = batch * (h + 1) * d
    rows("", "zeros", "factory", 0, front * F32)
    rows.cast("", front, F32, BF16)
    rows.free(front * F32)
    joined = feats + front * BF16
    rows("", "cat", "movement", joined, joined)
    rows.free(feats + front * BF16)
    return joined


def _wan_face_block(cfg: WanAnimateTransformer3DConfig, rows: _Walk, shape: CallShape, j: int, stream: int) -> None:
    """The original ``FaceBlock`` ``face_adapter.fuser_blocks[j]`` after a block (``face_blocks.py``) on the float32
    stream (``stream`` bytes) and the face features: layer norms in float32, ``linear1_kv`` and ``linear1_q`` in
    bf16, ``RMSNorm`` over a head in float32 (cast back), each latent frame's tokens attending to its 5 face
    tokens (``flash_attn_func``), ``linear2``; the stream plus its output in float32, the old stream freed. Under
    Ulysses (``use_context_parallel``) the queries of this rank's tokens are gathered from every rank
    (``gather_forward``), every rank attends over all of them, and ``linear2`` runs on its own chunk."""
    fa = f"face_adapter.{j}"
    batch, n_tok, d = shape.batch, shape.local_tokens, cfg.inner_dim
    heads, hd, ranks = cfg.num_attention_heads, cfg.attention_head_dim, shape.sequence_degree
    frames, kv_tok = shape.dit_latent_frames, cfg.face_encoder_num_heads + 1
    n, kv = batch * n_tok, batch * frames * kv_tok
    full = n * ranks  # every rank's tokens: the sequence padded to a multiple of the ranks
    rows.cast(f"{fa}.pre_norm_motion", kv * d, BF16, F32)
    rows.layer_norm(f"{fa}.pre_norm_motion", kv, d)
    rows.free(kv * d * F32)
    rows.layer_norm(f"{fa}.pre_norm_feat", n, d)
    rows.cast(f"{fa}.linear1_kv", kv * d, F32, BF16)
    rows.linear(f"{fa}.linear1_kv", kv, d, 2 * d)
    rows.free(kv * d * BF16)
    rows.cast(f"{fa}.linear1_q", n * d, F32, BF16)
    rows.linear(f"{fa}.linear1_q", n, d, d)
    rows.free(n * d * BF16)
    _wan_rms_norm(rows, f"{fa}.q_norm", n * heads, hd, BF16)  # face_blocks.RMSNorm: WanRMSNorm's ops, per head
    rows.free(n * d * BF16)  # linear1_q's output, q rebound
    _wan_rms_norm(rows, f"{fa}.k_norm", kv * heads, hd, BF16)  # on kv's view: kv lives on
    if ranks > 1:
        _gather_forward(rows, n * d * BF16, ranks, fa)
        rows.free(n * d * BF16)  # this rank's queries, q rebound to every rank's
    seq, tokens = full // batch, full * d * BF16
    if seq % frames:
        raise InputError(
            f"ulysses: the original pads its {shape.dit_tokens:,} tokens to {seq:,} for {ranks} ranks, which its face "
            f"adapter cannot split into {frames} latent frames (face_blocks.py); valid: a degree that divides the "
            "tokens"
        )
    per_frame = seq // frames
    rows.math_attention(batch * frames * heads, per_frame, kv_tok, hd)
    rows(fa, "scaled_dot_product_attention", "attention", tokens + 2 * kv * d * BF16, tokens,
         ops.sdpa(batch * frames, heads, per_frame, kv_tok, hd),
         dims=attention_dims(batch * frames * heads, per_frame, kv_tok, hd))  # fmt: skip
    rows.free(tokens + kv * d * BF16 + 2 * kv * d * BF16)  # q normed (every rank's), k normed; kv
    rows.linear(f"{fa}.linear2", n, d, d)  # on this rank's chunk of the attention's output
    rows.free(tokens + n * d * F32 + kv * d * F32)  # the attention's output, the two norms'
    rows("", "add", "elementwise", n * d * BF16 + stream, n * d * F32)
    rows.free(n * d * BF16 + stream)


def _wan_dit_walk(cfg: WanTransformer3DConfig, shape: CallShape, sink: Sink) -> None:
    """Every op one forward of the original ``WanModel`` costs (``wan/modules/model.py``: Wan2.1's,
    and Wan2.2's with a timestep per token), as ``generate.py`` runs it under
    ``torch.amp.autocast(bfloat16)`` with float32 weights on one GPU, keyed by diffusers' module
    paths (:func:`_wan_block`; the original's top-level ops and head modulation at ``""``,
    ``head.norm`` ``norm_out``, ``head.head`` ``proj_out``, ``time_embedding.0/1/2``
    ``condition_embedder.time_embedder.linear_1/act/linear_2``, ``time_projection.0/1``
    ``condition_embedder.act_fn/time_proj``, ``text_embedding.0/1/2``
    ``condition_embedder.text_embedder.linear_1/act_1/linear_2``). The same matmuls, convolution and
    attentions as diffusers' (the same FLOPs); around them: a patch embedding per sample on its
    float32 latents (A14B image-to-video first joins each with its condition; Wan2.1's image-to-video
    embeds the CLIP features in ``img_emb`` and attends to them in every block's cross-attention,
    :func:`_wan_image_embedder`), the timestep
    sinusoid in float64 and its embedding and projection in float32 (``autocast(float32)``), every
    block's float32 norms, modulation and residual stream, the rotary embedding in float64 complex
    per sample, float32 q and k cast for FlashAttention and its output cast back, a float32 head and
    unpatchify. Wan2.2-Animate's ``WanAnimateModel`` (``wan/modules/animate/model_animate.py``, bf16 weights): its
    bf16 condition joined to the latents, the pose patch embedding added into frames 1: in place, the face path
    (:func:`_wan_face_path`), a timestep per sample, and a ``FaceBlock`` after block 0 and every fifth
    (:func:`_wan_face_block`). Left out: the host-side bookkeeping (grid sizes, sequence lengths, ``cu_seqlens``).
    Allocations as the tracer's live bytes count them, the weights' bf16 copies included."""
    rows = _Walk(sink, shape.batch)
    batch, text_len, d = shape.batch, shape.text_len, cfg.inner_dim
    p_t, p_h, p_w = cfg.patch_size
    f, h, w = shape.dit_latent_frames // p_t, shape.latent_height // p_h, shape.latent_width // p_w
    tokens, ranks, local = f * h * w, shape.sequence_degree, shape.local_tokens
    seq_len = local * ranks  # the sequence padded to a multiple of the ranks (generate.py's seq_len)
    n, t, s = batch * seq_len, batch * text_len, tokens * d
    m = n if shape.per_token_timestep else batch  # rows of the time embedding (over the whole sequence)
    m_local = batch * local if shape.per_token_timestep else batch  # of the blocks' and head's modulation
    channels = cfg.in_channels
    pixels = f * p_t * h * p_h * w * p_w  # latent positions per sample
    x = n * d * BF16
    pad = (seq_len - tokens) * d * BF16  # per sample
    wt = nbytes(shape.dit_weight_dtype)  # float32 weights, or bf16 (--convert-model-dtype)
    joined = channels * pixels * F32
    animate = isinstance(cfg, WanAnimateTransformer3DConfig)
    y = (channels - cfg.out_channels) * pixels  # Wan-Animate's bf16 condition, promoted to join the latents
    if animate:
        rows.cast("", y, BF16, F32, calls=batch)
    if channels > cfg.out_channels:  # A14B image-to-video: torch.cat([latents, y]) per sample
        rows("", "cat", "movement", joined, joined, calls=batch, out=batch * joined)
        rows.free(batch * y * F32 if animate else 0)
    casts = (d * channels * prod(cfg.patch_size) + d) * BF16 if wt == F32 else 0
    rows("patch_embedding", "_to_copy", "movement", joined, channels * pixels * BF16, calls=batch, out=0)
    read = (channels * pixels + d * channels * prod(cfg.patch_size) + d) * BF16
    conv = ops.conv3d(1, channels, d, cfg.patch_size, (f, h, w))
    rows("patch_embedding", "convolution", "conv", read, s * BF16, conv, calls=batch, out=0,
         dims=conv_dims(1, channels, d, cfg.patch_size, (f, h, w)))  # fmt: skip
    if rows.memory:  # one sample at a time: its input and the weights cast, its output kept
        for _ in range(batch):
            rows.sink.alloc(casts + channels * pixels * BF16)
            rows.sink.alloc(s * BF16)
            rows.free(casts + channels * pixels * BF16)
    if channels > cfg.out_channels:
        rows.free(batch * joined)
    faces = 0
    if isinstance(cfg, WanAnimateTransformer3DConfig):  # after_patch_embedding: x_[:, :, 1:] += pose, the faces
        pose_pixels = (f - 1) * p_t * h * p_h * w * p_w
        pose = batch * (f - 1) * h * w * d * BF16
        read = (batch * cfg.latent_channels * pose_pixels + d * cfg.latent_channels * prod(cfg.patch_size) + d) * BF16
        rows("pose_patch_embedding", "convolution", "conv", read, pose,
             ops.conv3d(batch, cfg.latent_channels, d, cfg.patch_size, (f - 1, h, w)),
             dims=conv_dims(batch, cfg.latent_channels, d, cfg.patch_size, (f - 1, h, w)))  # fmt: skip
        rows("", "add_", "elementwise", 2 * pose, pose, out=0)
        rows("", "copy_", "movement", 2 * pose, pose, out=0)  # the augmented assignment's __setitem__
        faces = _wan_face_path(cfg, rows, shape)
        rows.free(pose)
    rows("", "new_zeros", "factory", s * BF16, pad, calls=batch, out=0)  # the padding to seq_len (none on one GPU)
    rows("", "cat", "movement", s * BF16 + pad, s * BF16 + pad, calls=batch, out=0)
    if rows.memory:  # per sample: its padding, the two joined, the padding dropped
        for _ in range(batch):
            rows.sink.alloc(pad + s * BF16 + pad)
            rows.free(pad)
    rows("", "cat", "movement", x, x)
    rows.free(batch * s * BF16 + x)  # the patch-embedded samples, each joined with its padding
    _wan_time_embedding(rows, cfg, m, wt)
    _wan_text_embedding(rows, cfg, batch, text_len, wt)
    if cfg.image_dim is not None:  # img_emb (MLPProj) on CLIP's features, joined before the text
        _wan_image_embedder(cfg, rows, shape, t, wt)
    # sequence parallelism: x, e and e0 chunked (views; the whole x held until the first block drops it)
    block0 = x - batch * local * d * BF16 if ranks > 1 else 0
    rows.repeat(1, "blocks.0", lambda block: _wan_block(cfg, block, shape, m_local, BF16, wt))
    rows.free(block0)
    if isinstance(cfg, WanAnimateTransformer3DConfig):  # a face block after block 0 and every k-th block after it
        k, stream = cfg.inject_face_latents_blocks, batch * local * d * F32
        for j in range(cfg.num_layers // k):
            if j:
                rows.repeat(1, f"blocks.{j * k}", lambda block: _wan_block(cfg, block, shape, m_local, F32, wt))
            _wan_face_block(cfg, rows, shape, j, stream)
            sink.repeat(k - 1, "blocks.{i}", lambda s_: _wan_block(cfg, _Walk(s_, batch), shape, m_local, F32, wt),
                        start=j * k + 1)  # fmt: skip
    else:
        sink.repeat(cfg.num_layers - 1, "blocks.{i}",
                    lambda s_: _wan_block(cfg, _Walk(s_, batch), shape, m_local, F32, wt), start=1)  # fmt: skip
    # Head: under autocast(float32), on this rank's tokens
    nl = batch * local
    _wan_head(rows, cfg, nl, m_local * d, wt, nl * d * F32)
    o = cfg.out_channels * prod(cfg.patch_size)
    if ranks > 1:  # every rank's head output, joined along the sequence
        _gather_forward(rows, nl * o * F32, ranks)
        rows.free(nl * o * F32)  # the head's output
    rows("", "clone", "movement", tokens * o * F32, tokens * o * F32, calls=batch, out=n * o * F32)  # unpatchify
    rows.free(n * o * F32 + faces)  # the head's (joined) output; Wan-Animate's face features


def dit_peak_bytes(cfg: WanTransformer3DConfig, shape: CallShape, materialized: bool = False) -> int:
    """The activation peak of one forward run eagerly with fused attention (the tracer's
    ``peak_activation_bytes``): :func:`_dit_walk` into a :class:`~hybrid.sinks.Peak`.
    ``materialized``: the peak when attention runs PyTorch's math kernel (each attention's
    :func:`hybrid.ops.math_attention_bytes` on top of what lives as it starts).

    Under ring attention, :func:`_ring_peak_bytes` (closed form): the walk does not yet tell the
    allocations of :func:`_ring_attention` (the first step's kept for backward, the merges)."""
    if shape.ring > 1:
        return _ring_peak_bytes(cfg, shape, materialized)
    return _peaks(cfg, shape)[materialized]


@lru_cache(maxsize=4096)
def _peaks(cfg: WanTransformer3DConfig, shape: CallShape) -> tuple[int, int]:
    """``(fused, materialized)`` of one walk into a :class:`~hybrid.sinks.Peak` (sizing asks for both)."""
    sink = Peak()
    _dit_walk(cfg, shape, sink)
    return sink.fused, sink.materialized


@on_clear
def clear_memos() -> None:
    """Forget the peak walks (see :func:`hybrid.analytic.clear_memos`)."""
    _peaks.cache_clear()


def _ring_peak_bytes(cfg: WanTransformer3DConfig, shape: CallShape, materialized: bool = False) -> int:
    """:func:`dit_peak_bytes` under ring attention (and Ulysses with it), in closed form: the
    largest of the live sets at four points of a block and at the split attentions, each a sum of
    tensors alive there (``n = B*N`` video rows, ``t = B*L`` text rows, ``m`` modulation rows:
    ``B``, or ``n`` with a timestep per token):

    * common to all: the float32 modulation ``(m, 6, D)`` and its bf16 projection, ``temb``, the
      float32 rotary cos/sin tables ``(N, head_dim)``;
    * the FFN's GELU: its input and output ``(n, ffn)`` plus 4 video-sized bf16 tensors and the text;
    * ``attn2.norm_k``: 5 video-sized bf16 tensors and 4 text-sized (context, k, v, normed k);
    * the FFN gate: 3 float32 and 5 bf16 video-sized tensors and the text;
    * the block's first add (``scale_shift_table + temb.float()``): a second float32 modulation,
      the block input and the text (it leads only with a timestep per token and few tokens).

    With image input the joined context ``(B, I + L, D)`` and the image embeddings stand for the
    text, and ``attn2`` peaks where it adds its image and text attention outputs (8 video-sized
    tensors, the normed text K and V, the image embeddings and their K and V) or, with few tokens,
    at ``norm_added_k`` (the image K before and after its norm). VACE keeps every block's hint, the
    last control state and the conditioning scales through the main blocks, where it peaks.

    ``materialized``: the peak when attention runs PyTorch's math kernel, the larger of the fused
    peak and, at each attention, what lives as it starts plus the kernel's own
    (:func:`hybrid.ops.math_attention_bytes`)."""
    p_t, p_h, p_w = cfg.patch_size
    every = (shape.dit_latent_frames // p_t) * (shape.latent_height // p_h) * (shape.latent_width // p_w)
    tokens = shape.local_tokens
    n, t, d = shape.batch * tokens, shape.batch * shape.text_len, cfg.inner_dim
    m = n if shape.per_token_timestep else shape.batch
    common = m * 6 * d * F32 + m * 6 * d * BF16 + m * d * BF16 + 2 * every * cfg.attention_head_dim * F32
    # split over P ranks the blocks' input is a view of the whole patch-embedded video: it all stays
    common += shape.batch * (every - tokens) * d * BF16
    if shape.per_token_timestep and shape.sequence_degree > 1 and shape.batch > 1:
        common += m * I64  # the split timestep is strided: flattened, it is a copy
    video, text = n * d, t * d
    if isinstance(cfg, WanVACETransformer3DConfig):  # every hint, the last control state, the scales
        layers = len(cfg.vace_layers)
        common += (layers + 1) * video * BF16 + layers * BF16
    image = shape.batch * shape.image_tokens * d if cfg.image_dim is not None else 0
    if cfg.image_dim is None:
        context, attention = text, 5 * video * BF16 + 4 * text * BF16  # attn2.norm_k
    else:  # the joined (image + text) context and the image embeddings stay; attn2 adds its two outputs
        context = 2 * image + text
        attention = (
            (image + text) * BF16
            + 2 * text * BF16
            + max(
                8 * video * BF16 + 3 * image * BF16,  # attn2 adds its image and text outputs
                5 * video * BF16 + 4 * image * BF16,  # norm_added_k: the image K before and after its norm
            )
        )
    base = common + context * BF16 + 5 * video * BF16  # at attn1: the block input, its norm, q, k, v
    x, lse = video * BF16, n * cfg.num_attention_heads * F32  # one q (k, v, output); its log-sum-exp
    cross = base + 2 * text * BF16  # as attn2's attention starts: the text K and V (and the image's)
    if image:
        cross += 2 * image * BF16
    u, r = shape.ulysses, shape.ring
    split = []  # the attention points of a split sequence (diffusers' context parallelism)
    if r > 1:  # K and V gathered from the ring, the partial outputs merged in float32 (see _ring_attention)
        merged = (3 if r == 2 else 4) * lse  # the first step's (kept for backward), the running, the new, sigmoid
        split.append(base + 2 * r * x + 9 * x + merged + 2 * I64 + (3 * x if u > 1 else 0))
        # cuDNN lays attn2's q, k, v out as copies too: they and the output on top of cross
        if image:
            split.append(cross + 2 * x + 2 * image * BF16)
            split.append(cross + x + 2 * x + 2 * text * BF16)  # the image attention's output stays
        else:
            split.append(cross + 2 * x + 2 * text * BF16)
    elif u > 1:  # the three laid-out copies and the three exchanged q, k, v
        split.append(base + 6 * x)
    if materialized:  # PyTorch's math attention on top of what lives when each attention starts
        bh, head_dim = shape.batch * cfg.num_attention_heads, cfg.attention_head_dim
        math = []
        if r == 1:  # attn1 runs it with H/u heads over every token (the ring runs cuDNN)
            math.append(
                base + (3 * x if u > 1 else 0) + ops.math_attention_bytes(bh // u, u * tokens, u * tokens, head_dim)
            )
        copies = x if r > 1 else 0  # under the ring attn2's cuDNN copy of q (and of K, V below)
        if image:
            layout = copies + (2 * image * BF16 if r > 1 else 0)
            math.append(cross + layout + ops.math_attention_bytes(bh, tokens, shape.image_tokens, head_dim))
            cross += video * BF16
        layout = copies + (2 * text * BF16 if r > 1 else 0)
        math.append(cross + layout + ops.math_attention_bytes(bh, tokens, shape.text_len, head_dim))
        return max(_ring_peak_bytes(cfg, shape), *math)
    block = common + max(
        2 * n * cfg.ffn_dim * BF16 + 4 * video * BF16 + context * BF16,  # FFN GELU
        attention,
        3 * video * F32 + 5 * video * BF16 + context * BF16,  # FFN gate
        m * 6 * d * F32 + video * BF16 + context * BF16,  # modulation add
    )
    return max([block, *split])


IMAGE_CORE = "image_cross_attention_core"


def image_row_component(row: CostRow) -> str:
    """The report component of a traced row of an image-to-video DiT: ``attn2`` runs two attentions
    in one module, over the 512 text keys and over the image keys; the one whose keys are not the
    512 text tokens (where ``WanAttnProcessor`` splits the context) is the image attention."""
    if row.op == SDPA and row.module.endswith(".attn2") and row.input_shapes[1][-2] != IMAGE_CONTEXT_TEXT_LEN:
        return IMAGE_CORE
    return component(row.module, row.op)


def component(module: str, op: str) -> str:
    """The report component of a DiT row (analytic or traced). Image-to-video's second attention in
    ``attn2`` (over the image tokens) is ``image_cross_attention_core`` (the analytic group names
    it; :func:`image_row_component` tells it apart in traced rows), its K/V projections
    ``image_cross_attention_projections``. Wan-Animate's motion and face encoders are ``face_encoders``, its
    face adapters' attention ``face_adapter_core`` and their layers ``face_adapter_projections``; a LoRA's
    matmuls (``lora_A``, ``lora_B``) ``lora``."""
    if ".lora_" in module:  # a LoRA's lora_A and lora_B (peft)
        return "lora"
    if module.startswith("vace_"):
        return "vace_blocks"
    if module.startswith(("motion_encoder", "face_encoder")):  # Wan-Animate's face path
        return "face_encoders"
    if module.startswith("face_adapter"):
        return "face_adapter_core" if op == SDPA else "face_adapter_projections"
    if ".attn1" in module:
        return "self_attention_core" if op == SDPA else "self_attention_projections"
    if ".attn2.add_" in module:
        return "image_cross_attention_projections"
    if ".attn2" in module:
        return "cross_attention_core" if op == SDPA else "cross_attention_projections"
    if ".ffn." in module:
        return "ffn"
    if module.startswith("condition_embedder.image_embedder"):
        return "image_embedder"
    if module.startswith(("patch_embedding", "pose_patch_embedding", "condition_embedder", "rope")):
        return "embedders"
    if module.startswith(("proj_out", "norm_out")):
        return "output_head"
    return "other"


# Wan-AI/Wan2.1-T2V-1.3B-Diffusers transformer/config.json
WAN21_T2V_1_3B = WanTransformer3DConfig(num_attention_heads=12, ffn_dim=8960, num_layers=30)
# Wan-AI/Wan2.1-T2V-14B-Diffusers transformer/config.json
WAN21_T2V_14B = WanTransformer3DConfig(num_attention_heads=40, ffn_dim=13824, num_layers=40)
# Wan-AI/Wan2.1-I2V-14B-{480P,720P}-Diffusers transformer/config.json (both the same architecture):
# in_channels 36 (16 noise + 4 mask + 16 condition latents), image_dim 1280, added_kv_proj_dim 5120
WAN21_I2V_14B = WanTransformer3DConfig(
    num_attention_heads=40, ffn_dim=13824, num_layers=40, in_channels=36, image_dim=1280, added_kv_proj_dim=5120
)
# Wan-AI/Wan2.1-FLF2V-14B-720P-Diffusers transformer/config.json: I2V plus pos_embed_seq_len 514
WAN21_FLF2V_14B = WanTransformer3DConfig(
    num_attention_heads=40,
    ffn_dim=13824,
    num_layers=40,
    in_channels=36,
    image_dim=1280,
    added_kv_proj_dim=5120,
    pos_embed_seq_len=514,
)
# Wan-AI/Wan2.2-T2V-A14B-Diffusers transformer/ and transformer_2/config.json: two experts with the
# Wan2.1-14B architecture (high noise, low noise)
WAN22_T2V_A14B = WanTransformer3DConfig(num_attention_heads=40, ffn_dim=13824, num_layers=40)
# Wan-AI/Wan2.2-I2V-A14B-Diffusers transformer/ and transformer_2/config.json: in_channels 36 (noise, mask and
# condition latents), no image encoder and no image cross-attention (image_dim, added_kv_proj_dim null)
WAN22_I2V_A14B = WanTransformer3DConfig(num_attention_heads=40, ffn_dim=13824, num_layers=40, in_channels=36)
# Wan-AI/Wan2.2-TI2V-5B-Diffusers transformer/config.json: 24 heads x 128 (dim 3072), ffn 14336, 30 layers,
# in/out 48 (the Wan2.2 VAE's latent channels)
WAN22_TI2V_5B = WanTransformer3DConfig(
    num_attention_heads=24, ffn_dim=14336, num_layers=30, in_channels=48, out_channels=48
)
# Wan-AI/Wan2.2-Animate-14B-Diffusers: huggingface/diffusers scripts/convert_wan_to_diffusers.py (7d56827),
# "Wan2.2-Animate-14B" diffusers_config: the I2V-14B (image_dim 1280, added_kv_proj_dim 5120, in_channels 36),
# motion encoder 512 px / style 512 / motion 20 / out 512, face encoder 1024 x 4 heads, a face adapter every 5
# blocks; latent_channels, motion_encoder_batch_size (8) and the channel sizes are the class defaults
WAN22_ANIMATE_14B = WanAnimateTransformer3DConfig()
# Wan-AI/Wan2.1-VACE-1.3B-diffusers transformer/config.json: T2V-1.3B plus 15 VACE layers
WAN21_VACE_1_3B = WanVACETransformer3DConfig(
    num_attention_heads=12, ffn_dim=8960, num_layers=30, vace_layers=tuple(range(0, 30, 2)), vace_in_channels=96
)
# Wan-AI/Wan2.1-VACE-14B-diffusers transformer/config.json: T2V-14B plus 8 VACE layers
WAN21_VACE_14B = WanVACETransformer3DConfig(
    num_attention_heads=40, ffn_dim=13824, num_layers=40, vace_layers=tuple(range(0, 40, 5)), vace_in_channels=96
)
