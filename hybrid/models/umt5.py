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
from typing import Any, ClassVar

from hybrid import ops
from hybrid.rows import SDPA_OP as SDPA
from hybrid.rows import OpGroup


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
        d, f = self.d_model, self.d_ff
        n_ff = 3 if self.is_gated_act else 2
        per_layer = 4 * d * self.inner_dim + self.relative_attention_num_buckets * self.num_heads + 2 * d + n_ff * d * f
        return self.vocab_size * d + self.num_layers * per_layer + d

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
    t = batch * text_len
    d, inner, layers = cfg.d_model, cfg.inner_dim, cfg.num_layers
    a = "encoder.block.{i}.layer.0.SelfAttention"
    ff = "encoder.block.{i}.layer.1.DenseReluDense"
    qkv = ops.linear(t, d, inner)
    groups = [
        OpGroup(STAGE, f"{a}.q", "aten.mm", "matmul", qkv, repeat=layers),
        OpGroup(STAGE, f"{a}.k", "aten.mm", "matmul", qkv, repeat=layers),
        OpGroup(STAGE, f"{a}.v", "aten.mm", "matmul", qkv, repeat=layers),
        OpGroup(
            STAGE, a, SDPA, "attention", ops.sdpa(batch, cfg.num_heads, text_len, text_len, cfg.d_kv), repeat=layers
        ),
        OpGroup(STAGE, f"{a}.o", "aten.mm", "matmul", ops.linear(t, inner, d), repeat=layers),
    ]
    for proj in ("wi_0", "wi_1") if cfg.is_gated_act else ("wi",):
        groups.append(OpGroup(STAGE, f"{ff}.{proj}", "aten.mm", "matmul", ops.linear(t, d, cfg.d_ff), repeat=layers))
    groups.append(OpGroup(STAGE, f"{ff}.wo", "aten.mm", "matmul", ops.linear(t, cfg.d_ff, d), repeat=layers))
    return groups


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
