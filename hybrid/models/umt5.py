"""UMT5-XXL text encoder (transformers ``UMT5EncoderModel``), the ``text_encoder`` stage.

Architecture (encoder only, as Wan2.1 uses it; module paths as in transformers):

* ``shared``: token embedding ``vocab_size x d_model`` (``encoder.embed_tokens`` is tied to it).
* ``encoder.block.{i}`` for ``i < num_layers``, each
  - ``layer.0``: ``layer_norm`` (T5 RMS norm) -> ``SelfAttention`` with bias-free linears
    ``q``/``k``/``v`` (``d_model -> num_heads*d_kv``) and ``o`` (back), plus its *own*
    ``relative_attention_bias`` (``num_buckets x num_heads``; UMT5 has one per layer, T5 only in
    block 0) added to the scores;
  - ``layer.1``: ``layer_norm`` -> ``DenseReluDense``: gated-GELU ``wi_0``, ``wi_1``
    (``d_model -> d_ff``) and ``wo`` (``d_ff -> d_model``), all bias-free.
* ``encoder.final_layer_norm``.

The pipeline pads every prompt to ``max_sequence_length`` tokens, so the cost depends only on the
padded length (an all-ones attention mask costs the same as none).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, ClassVar

from hybrid import ops
from hybrid.dtypes import BF16, BOOL, F32, I64
from hybrid.memo import on_clear
from hybrid.rows import SDPA_OP as SDPA
from hybrid.rows import OpGroup
from hybrid.sinks import Components, Peak, Rows, Sink, TermSink
from hybrid.timing import Dims, Term, attention_dims, gemm_dims


@dataclass(frozen=True)
class UMT5Config:
    """The fields of transformers' ``UMT5Config`` that shape the encoder (same names).

    Values of the preset come from ``google/umt5-xxl`` ``config.json`` (the checkpoint Wan2.1 uses,
    shipped as ``Wan-AI/Wan2.1-T2V-*-Diffusers/text_encoder/config.json``).
    """

    vocab_size: int = 256384
    d_model: int = 4096
    d_kv: int = 64
    d_ff: int = 10240
    num_layers: int = 24
    num_heads: int = 64
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    layer_norm_epsilon: float = 1e-6
    feed_forward_proj: str = "gated-gelu"

    COST_FREE_KEYS: ClassVar[frozenset[str]] = frozenset(
        [
            "dense_act_fn",
            "dropout_rate",
            "initializer_factor",
            "initializer_range",
            "is_encoder_decoder",
            "num_decoder_layers",
            "pad_token_id",
            "eos_token_id",
            "bos_token_id",
            "decoder_start_token_id",
            "tie_word_embeddings",
            "tokenizer_class",
            "use_cache",
            "output_past",
            "scalable_attention",
            "is_gated_act",
            "classifier_dropout",
            "gradient_checkpointing",
        ]
    )
    """Keys of a published ``config.json`` that change no cost: training-only settings, the
    decoder (not run), and the activation (0 FLOPs) or values derived from ``feed_forward_proj``."""

    def __post_init__(self) -> None:
        valid = ("gated-gelu", "gated-silu", "gelu", "relu")
        if self.feed_forward_proj not in valid:
            raise ValueError(
                f"feed_forward_proj: {self.feed_forward_proj!r} is not modelled; valid: {', '.join(valid)}"
            )

    @property
    def inner_dim(self) -> int:
        """``num_heads * d_kv``: width of q/k/v."""
        return self.num_heads * self.d_kv

    @property
    def is_gated_act(self) -> bool:
        """True for ``gated-*`` feed-forward (two input projections ``wi_0``, ``wi_1``)."""
        return self.feed_forward_proj.startswith("gated-")

    def num_parameters(self) -> int:
        """Parameters of ``UMT5EncoderModel``:
        ``V*D + L*(4*D*H*dk + B*H + 2*D + (3 if gated else 2)*D*F) + D``."""
        return self.vocab_size * self.d_model + self.num_layers * self.layer_parameters() + self.d_model

    def layer_parameters(self) -> int:
        """One ``UMT5Block``: ``4*D*H*dk + B*H + 2*D + (3 if gated else 2)*D*F``."""
        d, f = self.d_model, self.d_ff
        n_ff = 3 if self.is_gated_act else 2
        return 4 * d * self.inner_dim + self.relative_attention_num_buckets * self.num_heads + 2 * d + n_ff * d * f

    def fsdp_units(self) -> tuple[int, int, int]:
        """``(root, per block, blocks)`` parameters as FSDP wraps the encoder one unit per block
        (the original Wan ``shard_model``): the root holds the embeddings and the final norm."""
        return (
            self.num_parameters() - self.num_layers * self.layer_parameters(),
            self.layer_parameters(),
            self.num_layers,
        )

    def to_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``transformers.UMT5Config``."""
        return asdict(self)


STAGE = "text_encoder"


def umt5_groups(cfg: UMT5Config, batch: int, text_len: int) -> list[OpGroup]:
    """FLOP groups of one ``UMT5EncoderModel`` pass over ``batch x text_len`` tokens.

    Per layer: bias-free ``q, k, v, o`` (``4 * 2TD*H*dk`` with ``T = batch*text_len``), attention
    ``4*B*H*L^2*dk``, and the gated FFN ``wi_0, wi_1, wo`` (``3 * 2TD*d_ff``). Embedding lookups and
    the relative position bias cost 0 FLOPs.
    """
    return [g for g in umt5_rows(cfg, batch, text_len) if g.flops_per_call]


# bytes per element (hybrid.dtypes): weights and activations (bfloat16), the float32 residual
# stream, norms and ``wo``, the integer relative positions and their boolean masks


def umt5_rows(cfg: UMT5Config, batch: int, text_len: int) -> list[OpGroup]:
    """Every op one ``UMT5EncoderModel`` pass costs (FLOPs and bytes read and written), keyed like
    the tracer's rows (see :func:`_umt5_walk`)."""
    sink = Rows(STAGE)
    _umt5_walk(cfg, batch, text_len, sink)
    return sink.out


def umt5_terms(cfg: UMT5Config, batch: int, text_len: int) -> tuple[Term, ...]:
    """:func:`hybrid.timing.roofline_terms` of :func:`umt5_rows`, from the same walk."""
    sink = TermSink()
    _umt5_walk(cfg, batch, text_len, sink)
    return sink.freeze()


def _umt5_walk(cfg: UMT5Config, batch: int, text_len: int, sink: Sink) -> None:
    """The ops of one pass in the order eager PyTorch runs them, told to ``sink``: each op's output
    allocated after it, freed where the last reference drops. The residual stream turns float32 at
    layer 0's ``wo`` (``_keep_in_fp32_modules``), so layer 0 casts and adds in bf16 where the later
    layers do not; every layer recomputes its relative position buckets (``(L, L)`` integer
    arithmetic) and bias. The embeddings stay live (``inputs_embeds``), and with them layer 0's input."""
    t, d, inner, f, h = batch * text_len, cfg.d_model, cfg.inner_dim, cfg.d_ff, cfg.num_heads
    sq = text_len * text_len

    def rms_norm(sink: Sink, module: str, src: int) -> None:
        """T5LayerNorm: the float32 variance, a bf16 weight; a bf16 input is cast first."""

        def row(op: str, category: str, read: int, written: int) -> None:
            sink.op(module, "aten." + op, category, read, written)
            if sink.memory:
                sink.alloc(written)

        if src == BF16:
            row("_to_copy", "movement", t * d * BF16, t * d * F32)
        row("pow", "elementwise", t * d * F32, t * d * F32)
        if src == BF16:
            sink.free(t * d * F32)  # the float32 copy
        row("mean", "reduction", t * d * F32, t * F32)  # the variance
        sink.free(t * d * F32)  # the square
        row("add", "elementwise", t * F32, t * F32)
        row("rsqrt", "elementwise", t * F32, t * F32)
        sink.free(t * F32)
        row("mul", "elementwise", t * d * src + t * F32, t * d * F32)
        sink.free(t * F32)
        row("_to_copy", "movement", t * d * F32, t * d * BF16)
        sink.free(t * d * F32)
        row("mul", "elementwise", d * BF16 + t * d * BF16, t * d * BF16)
        sink.free(t * F32 + t * d * BF16)  # the variance, the bf16 copy

    def layer(sink: Sink, stream: int) -> None:
        """One ``UMT5Block`` whose input (the residual stream) is ``stream`` bytes per element: bf16,
        the embeddings themselves, in layer 0; float32, the previous block's output, freed at the end."""

        def row(module: str, op: str, category: str, read: int, written: int, flops: int = 0, dims: Dims = ()) -> None:
            sink.op(module, "aten." + op, category, read, written, flops, dims=dims)
            if sink.memory:
                sink.alloc(written)

        def mm(module: str, rows: int, d_in: int, d_out: int, itemsize: int = BF16) -> None:
            read = (rows * d_in + d_in * d_out) * itemsize
            row(module, "mm", "matmul", read, rows * d_out * itemsize, ops.linear(rows, d_in, d_out),
                gemm_dims(1, rows, d_out, d_in))  # fmt: skip

        a, x = "layer.0.SelfAttention", t * inner * BF16  # one of q, k, v and the attention's output
        rms_norm(sink, "layer.0.layer_norm", stream)
        for proj in ("q", "k", "v"):
            mm(f"{a}.{proj}", t, d, inner)
        # compute_bias: relative position buckets of (L, L) query/key offsets, recomputed in every layer
        row(a, "arange", "factory", 0, text_len * I64)
        row(a, "add", "elementwise", text_len * I64, text_len * I64)  # context_position (+ past tokens)
        sink.free(text_len * I64)
        row(a, "arange", "factory", 0, text_len * I64)  # memory_position
        row(a, "sub", "elementwise", 2 * text_len * I64, sq * I64)  # relative_position
        row(a, "gt", "elementwise", sq * I64, sq * BOOL)
        row(a, "_to_copy", "movement", sq * BOOL, sq * I64)
        sink.free(sq * BOOL)
        row(a, "mul", "elementwise", sq * I64, sq * I64)
        sink.free(sq * I64)
        row(a, "add", "elementwise", sq * I64, sq * I64)  # relative_buckets = 0 + ...
        sink.free(sq * I64)
        row(a, "abs", "elementwise", sq * I64, sq * I64)
        row(a, "lt", "elementwise", sq * I64, sq * BOOL)  # is_small
        row(a, "_to_copy", "movement", sq * I64, sq * F32)
        for op in ("div", "log", "div", "mul"):  # log_ratio, its last value kept to the return
            row(a, op, "elementwise", sq * F32, sq * F32)
            sink.free(sq * F32)
        row(a, "_to_copy", "movement", sq * F32, sq * I64)
        row(a, "add", "elementwise", sq * I64, sq * I64)  # relative_position_if_large
        sink.free(sq * I64)
        row(a, "full_like", "factory", sq * I64, sq * I64)
        row(a, "minimum", "elementwise", 2 * sq * I64, sq * I64)
        sink.free(2 * sq * I64)
        row(a, "where", "elementwise", sq * (BOOL + 2 * I64), sq * I64)
        sink.op(a, "aten.add_", "elementwise", 2 * sq * I64, sq * I64)
        sink.free(sq * I64 + sq * I64 + sq * BOOL + sq * F32 + sq * I64)  # where, abs, is_small, log_ratio, min
        bias = cfg.relative_attention_num_buckets * h * BF16
        row(f"{a}.relative_attention_bias", "embedding", "embedding", bias + sq * I64, sq * h * BF16)
        sink.free(2 * text_len * I64 + 2 * sq * I64)  # the positions, relative_position, the buckets
        row(a, "clone", "movement", h * sq * BF16, h * sq * BF16)  # position_bias
        sink.op(a, SDPA, "attention", 3 * x + h * sq * BF16, x, ops.sdpa(batch, h, text_len, text_len, cfg.d_kv),
                dims=attention_dims(batch * h, text_len, text_len, cfg.d_kv))  # fmt: skip
        if sink.memory:
            sink.transient(ops.math_attention_bytes(batch * h, text_len, text_len, cfg.d_kv))
            sink.alloc(x)
        sink.free(sq * h * BF16)  # the bias values
        mm(f"{a}.o", t, inner, d)
        sink.free(4 * x + h * sq * BF16)  # q, k, v, the attention's output, position_bias
        row("layer.0", "add", "elementwise", t * d * (stream + BF16), t * d * stream)
        sink.free(2 * t * d * BF16)  # o's output, the norm
        ff, tf = "layer.1.DenseReluDense", t * f * BF16
        rms_norm(sink, "layer.1.layer_norm", stream)
        gated = ("wi_0", "wi_1") if cfg.is_gated_act else ("wi",)
        mm(f"{ff}.{gated[0]}", t, d, f)
        # gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), op by op
        row(f"{ff}.act", "mul", "elementwise", tf, tf)  # 0.5 x, kept to the end
        row(f"{ff}.act", "pow", "elementwise", tf, tf)
        row(f"{ff}.act", "mul", "elementwise", tf, tf)
        sink.free(tf)
        row(f"{ff}.act", "add", "elementwise", 2 * tf, tf)
        sink.free(tf)
        row(f"{ff}.act", "mul", "elementwise", tf, tf)
        sink.free(tf)
        row(f"{ff}.act", "tanh", "elementwise", tf, tf)
        sink.free(tf)
        row(f"{ff}.act", "add", "elementwise", tf, tf)
        sink.free(tf)
        row(f"{ff}.act", "mul", "elementwise", 2 * tf, tf)
        sink.free(3 * tf)  # 0.5 x, the sum, the input
        if cfg.is_gated_act:
            mm(f"{ff}.wi_1", t, d, f)
            row(ff, "mul", "elementwise", 2 * tf, tf)
        row(ff, "_to_copy", "movement", tf, t * f * F32)  # into the float32 wo
        sink.free(tf)  # what it cast
        mm(f"{ff}.wo", t, f, d, F32)
        sink.free((2 * tf if cfg.is_gated_act else 0) + t * f * F32 + t * d * BF16)  # the FFN's, the norm
        row("layer.1", "add", "elementwise", t * d * (stream + F32), t * d * F32)
        # wo's output, the attention's residual and (after layer 0) the block's input
        sink.free(t * d * F32 + t * d * stream + (t * d * F32 if stream == F32 else 0))

    sink.op("encoder.embed_tokens", "aten.embedding", "embedding", cfg.vocab_size * d * BF16 + t * I64, t * d * BF16)
    sink.alloc(t * d * BF16)
    sink.repeat(1, "encoder.block.0", lambda s: layer(s, BF16))  # the residual stream still bf16
    sink.repeat(cfg.num_layers - 1, "encoder.block.{i}", lambda s: layer(s, F32), start=1)  # layers 1.., alike
    rms_norm(sink, "encoder.final_layer_norm", F32)


def umt5_peak_bytes(cfg: UMT5Config, batch: int, text_len: int, materialized: bool = False) -> int:
    """The activation peak of one pass (the tracer's ``peak_activation_bytes``): :func:`_umt5_walk`
    into a :class:`~hybrid.sinks.Peak`; ``materialized``: with PyTorch's math attention (the bias
    as its mask)."""
    return _peaks(cfg, batch, text_len)[materialized]


@lru_cache(maxsize=1024)
def _peaks(cfg: UMT5Config, batch: int, text_len: int) -> tuple[int, int]:
    """``(fused, materialized)`` of one walk into a :class:`~hybrid.sinks.Peak` (sizing asks for both)."""
    sink = Peak()
    _umt5_walk(cfg, batch, text_len, sink)
    return sink.fused, sink.materialized


@on_clear
def clear_memos() -> None:
    """Forget the peak walks (see :func:`hybrid.analytic.clear_memos`)."""
    _peaks.cache_clear()


def umt5_components(cfg: UMT5Config, batch: int, text_len: int) -> dict[str, int]:
    """FLOPs of one pass by report component: :func:`_umt5_walk` into a
    :class:`~hybrid.sinks.Components` by :func:`component`."""
    sink = Components(component)
    _umt5_walk(cfg, batch, text_len, sink)
    return sink.out


def component(module: str, op: str) -> str:
    """The report component of a text-encoder row (analytic or traced)."""
    if ".SelfAttention" in module:
        return "attention_core" if op == SDPA else "attention_projections"
    if ".DenseReluDense" in module:
        return "ffn"
    return "other"


# google/umt5-xxl config.json (d_model 4096, d_ff 10240, d_kv 64, 64 heads, 24 layers,
# vocab 256384, gated-gelu, 32 buckets, max distance 128).
UMT5_XXL = UMT5Config()
