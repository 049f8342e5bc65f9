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

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from hybrid import ops
from hybrid.rows import SDPA_OP as SDPA
from hybrid.rows import OpGroup
from hybrid.timing import Term, Terms


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


BF16, F32, I64, BOOL = 2, 4, 8, 1
"""Bytes per element: weights and activations (bfloat16), the float32 residual stream, norms and
``wo``, the integer relative positions and their boolean masks."""


def umt5_rows(cfg: UMT5Config, batch: int, text_len: int) -> list[OpGroup]:
    """Every op one ``UMT5EncoderModel`` pass costs (FLOPs and bytes read and written), keyed like
    the tracer's rows (see :func:`_umt5_walk`)."""
    out: list[OpGroup] = []

    def row(module: str, op: str, category: str, read: int, written: int, flops: int = 0, calls: int = 1,
            repeat: int = 1) -> None:  # fmt: skip
        first = 1 if "{i}" in module else 0  # layers 1.. of the repeated group
        out.append(OpGroup(STAGE, module, f"aten.{op}", category, flops, calls, repeat, "", read, written, first))

    _umt5_walk(cfg, batch, text_len, row)
    return out


def umt5_terms(cfg: UMT5Config, batch: int, text_len: int) -> tuple[Term, ...]:
    """:func:`hybrid.timing.roofline_terms` of :func:`umt5_rows`, from the same walk."""
    terms = Terms()
    _umt5_walk(cfg, batch, text_len, terms.row)
    return terms.freeze()


def _umt5_walk(cfg: UMT5Config, batch: int, text_len: int, row: Callable[..., None]) -> None:
    """The ops of one pass, each handed to ``row(module, op, category, read, written, flops=0,
    calls=1, repeat=1)``. The residual stream turns float32 at layer 0's ``wo``
    (``_keep_in_fp32_modules``), so layer 0 casts and adds in bf16 where the later layers do not;
    every layer recomputes its relative position buckets (``(L, L)`` integer arithmetic) and bias."""
    t, d, inner, f, h = batch * text_len, cfg.d_model, cfg.inner_dim, cfg.d_ff, cfg.num_heads
    sq = text_len * text_len

    def rms_norm(module: str, src: int, repeat: int = 1) -> None:
        """T5LayerNorm: the float32 variance, a bf16 weight; a bf16 input is cast first."""
        if src == BF16:
            row(module, "_to_copy", "movement", t * d * BF16, t * d * F32, repeat=repeat)
        row(module, "pow", "elementwise", t * d * F32, t * d * F32, repeat=repeat)
        row(module, "mean", "reduction", t * d * F32, t * F32, repeat=repeat)
        row(module, "add", "elementwise", t * F32, t * F32, repeat=repeat)
        row(module, "rsqrt", "elementwise", t * F32, t * F32, repeat=repeat)
        row(module, "mul", "elementwise", t * d * src + t * F32, t * d * F32, repeat=repeat)
        row(module, "_to_copy", "movement", t * d * F32, t * d * BF16, repeat=repeat)
        row(module, "mul", "elementwise", d * BF16 + t * d * BF16, t * d * BF16, repeat=repeat)

    def mm(module: str, rows: int, d_in: int, d_out: int, itemsize: int = BF16, repeat: int = 1) -> None:
        read = (rows * d_in + d_in * d_out) * itemsize
        row(module, "mm", "matmul", read, rows * d_out * itemsize, ops.linear(rows, d_in, d_out), repeat=repeat)

    row("encoder.embed_tokens", "embedding", "embedding", cfg.vocab_size * d * BF16 + t * I64, t * d * BF16)
    later = cfg.num_layers - 1  # layers 1.. are alike: one group each, repeated
    for layer, repeat, prefix in ((0, 1, "encoder.block.0"), (1, later, "encoder.block.{i}")):
        if repeat == 0:
            continue
        stream = BF16 if layer == 0 else F32  # the residual stream before this layer's wo
        a = f"{prefix}.layer.0.SelfAttention"
        rms_norm(f"{prefix}.layer.0.layer_norm", stream, repeat)
        for proj in ("q", "k", "v"):
            mm(f"{a}.{proj}", t, d, inner, repeat=repeat)
        # relative position buckets of (L, L) query/key offsets, recomputed in every layer
        ints = [("gt", I64, BOOL), ("mul", I64, I64), ("abs", I64, I64), ("lt", I64, BOOL), ("log", F32, F32)]
        row(a, "arange", "factory", 0, text_len * I64, calls=2, repeat=repeat)
        row(a, "sub", "elementwise", 2 * text_len * I64, sq * I64, repeat=repeat)
        for op, src, dst in ints:
            row(a, op, "elementwise", sq * src, sq * dst, repeat=repeat)
        row(a, "add", "elementwise", text_len * I64, text_len * I64, repeat=repeat)
        row(a, "add", "elementwise", sq * I64, sq * I64, calls=2, repeat=repeat)
        for src, dst in ((BOOL, I64), (I64, F32), (F32, I64)):
            row(a, "_to_copy", "movement", sq * src, sq * dst, repeat=repeat)
        row(a, "div", "elementwise", sq * F32, sq * F32, calls=2, repeat=repeat)
        row(a, "mul", "elementwise", sq * F32, sq * F32, repeat=repeat)
        row(a, "full_like", "factory", sq * I64, sq * I64, repeat=repeat)
        row(a, "minimum", "elementwise", 2 * sq * I64, sq * I64, repeat=repeat)
        row(a, "where", "elementwise", sq * (BOOL + 2 * I64), sq * I64, repeat=repeat)
        row(a, "add_", "elementwise", 2 * sq * I64, sq * I64, repeat=repeat)
        bias = cfg.relative_attention_num_buckets * h * BF16
        row(f"{a}.relative_attention_bias", "embedding", "embedding", bias + sq * I64, sq * h * BF16, repeat=repeat)
        row(a, "clone", "movement", h * sq * BF16, h * sq * BF16, repeat=repeat)
        row(a, "scaled_dot_product_attention", "attention", (3 * t * inner + h * sq) * BF16, t * inner * BF16,
            ops.sdpa(batch, h, text_len, text_len, cfg.d_kv), repeat=repeat)  # fmt: skip
        mm(f"{a}.o", t, inner, d, repeat=repeat)
        row(f"{prefix}.layer.0", "add", "elementwise", t * d * (stream + BF16), t * d * stream, repeat=repeat)
        ff = f"{prefix}.layer.1.DenseReluDense"
        rms_norm(f"{prefix}.layer.1.layer_norm", stream, repeat)
        gated = ("wi_0", "wi_1") if cfg.is_gated_act else ("wi",)
        for proj in gated:
            mm(f"{ff}.{proj}", t, d, f, repeat=repeat)
        tf = t * f * BF16  # gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), op by op
        row(f"{ff}.act", "mul", "elementwise", tf, tf, calls=3, repeat=repeat)  # by constants
        row(f"{ff}.act", "mul", "elementwise", 2 * tf, tf, repeat=repeat)
        row(f"{ff}.act", "pow", "elementwise", tf, tf, repeat=repeat)
        row(f"{ff}.act", "add", "elementwise", 2 * tf, tf, repeat=repeat)
        row(f"{ff}.act", "add", "elementwise", tf, tf, repeat=repeat)
        row(f"{ff}.act", "tanh", "elementwise", tf, tf, repeat=repeat)
        if cfg.is_gated_act:
            row(ff, "mul", "elementwise", 2 * tf, tf, repeat=repeat)
        row(ff, "_to_copy", "movement", tf, t * f * F32, repeat=repeat)  # into the float32 wo
        mm(f"{ff}.wo", t, f, d, F32, repeat=repeat)
        row(f"{prefix}.layer.1", "add", "elementwise", t * d * (stream + F32), t * d * F32, repeat=repeat)
    rms_norm("encoder.final_layer_norm", F32)


def umt5_peak_bytes(cfg: UMT5Config, batch: int, text_len: int, materialized: bool = False) -> int:
    """The activation peak of one pass (the tracer's ``peak_activation_bytes``), in closed form: in
    layer 1 (layer 0's float32 ``wo`` made the residual float32), the larger of

    * the attention: the relative position bias ``(L, L, H)`` and its ``(1, H, L, L)`` copy (bf16),
      q, k, v and one more ``(B, H, L, d_kv)``, the float32 layer input, the embeddings and the norm;
    * the gated FFN before ``wo``: its float32 input and three bf16 ``d_ff``-wide tensors, two
      float32 residuals, the embeddings and the norm.

    Gated UMT5 encoders of two or more layers (``NotImplementedError`` otherwise). ``materialized``:
    with PyTorch's math attention (the bias as its mask) at layer 1."""
    if cfg.num_layers < 2 or not cfg.is_gated_act:
        raise NotImplementedError("umt5_peak_bytes: written for gated encoders of two or more layers")
    t, d, inner = batch * text_len, cfg.d_model, cfg.inner_dim
    attention = 2 * text_len * text_len * cfg.num_heads * BF16 + t * d * (F32 + 2 * BF16) + 4 * t * inner * BF16
    ffn = t * cfg.d_ff * (F32 + 3 * BF16) + t * d * (2 * F32 + 2 * BF16)
    if materialized:  # layer 1's attention starts with all of the above but its output
        before = attention - t * inner * BF16
        return max(
            attention, ffn, before + ops.math_attention_bytes(batch * cfg.num_heads, text_len, text_len, cfg.d_kv)
        )
    return max(attention, ffn)


def umt5_components(cfg: UMT5Config, batch: int, text_len: int) -> dict[str, int]:
    """FLOPs of one pass by report component: the sum of :func:`umt5_groups` by :func:`component`,
    in closed form (a test checks the two agree)."""
    t, d, inner, layers = batch * text_len, cfg.d_model, cfg.inner_dim, cfg.num_layers
    projections = 3 * ops.linear(t, d, inner) + ops.linear(t, inner, d)
    core = ops.sdpa(batch, cfg.num_heads, text_len, text_len, cfg.d_kv)
    ffn = (2 if cfg.is_gated_act else 1) * ops.linear(t, d, cfg.d_ff) + ops.linear(t, cfg.d_ff, d)
    return {"attention_projections": layers * projections, "attention_core": layers * core, "ffn": layers * ffn}


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
