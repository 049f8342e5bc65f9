"""wav2vec 2.0 with a CTC head (transformers ``Wav2Vec2ForCTC``), the audio encoder of Wan2.2-S2V.

Architecture of one forward over ``S`` audio samples (module paths as in transformers), in the
``feat_extract_norm="layer"``, ``do_stable_layer_norm=True`` layout of the XLSR-53 checkpoints:

* ``wav2vec2.feature_extractor.conv_layers.{i}``: ``Conv1d(conv_dim[i-1] -> conv_dim[i], conv_kernel[i],
  conv_stride[i])`` (one input channel first), a LayerNorm over the channels, GELU; ``L_i = (L_{i-1} -
  k_i) // s_i + 1`` frames (XLSR-53: 20 ms a frame, 50 a second at 16 kHz).
* ``wav2vec2.feature_projection``: LayerNorm, ``Linear(conv_dim[-1] -> hidden_size)``.
* ``wav2vec2.encoder.pos_conv_embed``: a grouped ``Conv1d(hidden_size, num_conv_pos_embeddings, groups)``
  whose weight norm is recomputed every call (``_weight_norm_interface``), one frame cut, GELU, added in.
* ``wav2vec2.encoder.layers.{i}``: pre-LayerNorm attention (``q/k/v/out_proj``, SDPA) and pre-LayerNorm
  FFN (``intermediate_dense``, GELU, ``output_dense``), each with its residual; then
  ``wav2vec2.encoder.layer_norm`` and ``lm_head`` (``hidden_size -> vocab_size``).

Everything in float32, as Wan2.2-S2V runs it (on the host CPU); ``output_hidden_states=True`` keeps every
layer's output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from hybrid import ops
from hybrid.dtypes import F32
from hybrid.models.encoder_layer import LayerNames, layer_norm, linear, pre_norm_layer
from hybrid.rows import SDPA_OP as SDPA
from hybrid.rows import OpGroup
from hybrid.sinks import Peak, Rows, Sink, TermSink
from hybrid.timing import Term, conv_dims


@dataclass(frozen=True)
class Wav2Vec2Config:
    """The fields of transformers' ``Wav2Vec2Config`` that shape the model (same names); the defaults are
    ``jonatasgrosman/wav2vec2-large-xlsr-53-english``'s (the checkpoint Wan2.2-S2V bundles)."""

    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_attention_heads: int = 16
    num_hidden_layers: int = 24
    conv_dim: tuple[int, ...] = (512, 512, 512, 512, 512, 512, 512)
    conv_kernel: tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)
    conv_stride: tuple[int, ...] = (5, 2, 2, 2, 2, 2, 2)
    conv_bias: bool = True
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    vocab_size: int = 33
    feat_extract_norm: str = "layer"
    do_stable_layer_norm: bool = True
    layer_norm_eps: float = 1e-5

    COST_FREE_KEYS: ClassVar[frozenset[str]] = frozenset({"layer_norm_eps"})
    """Keys of a published ``config.json`` that change no cost (besides ``_``-prefixed metadata)."""

    def __post_init__(self) -> None:
        if not (len(self.conv_dim) == len(self.conv_kernel) == len(self.conv_stride) >= 1):
            raise ValueError(
                f"conv_dim, conv_kernel, conv_stride: must have one entry per conv layer, got {len(self.conv_dim)}, "
                f"{len(self.conv_kernel)}, {len(self.conv_stride)}"
            )
        if self.feat_extract_norm != "layer" or not self.do_stable_layer_norm:
            raise ValueError(
                "feat_extract_norm, do_stable_layer_norm: only the 'layer', stable-layer-norm layout (XLSR-53, "
                f"large-lv60) is modelled, got {self.feat_extract_norm!r}, {self.do_stable_layer_norm}"
            )
        if self.hidden_size % self.num_attention_heads or self.hidden_size % self.num_conv_pos_embedding_groups:
            raise ValueError(
                f"hidden_size: {self.hidden_size} must divide by num_attention_heads {self.num_attention_heads} "
                f"and num_conv_pos_embedding_groups {self.num_conv_pos_embedding_groups}"
            )

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def frames(self, samples: int) -> list[int]:
        """Frames after each conv layer of ``samples`` audio samples (``(L - k) // s + 1`` each)."""
        out, length = [], samples
        for k, s in zip(self.conv_kernel, self.conv_stride, strict=True):
            length = (length - k) // s + 1
            out.append(length)
        return out

    def receptive_field(self) -> int:
        """The fewest samples the conv layers make one frame of: ``k_0 + sum_i (k_i - 1) x`` the strides before
        layer ``i`` (XLSR-53: 400, 25 ms at 16 kHz)."""
        field, stride = self.conv_kernel[0], self.conv_stride[0]
        for k, s in zip(self.conv_kernel[1:], self.conv_stride[1:], strict=True):
            field += (k - 1) * stride
            stride *= s
        return field

    def num_parameters(self) -> int:
        """Parameters of ``Wav2Vec2ForCTC``: per conv layer ``C_in*C*k + C`` (bias) ``+ 2C`` (its LayerNorm);
        the projection's LayerNorm ``2C`` and ``(C+1)*D``; the positional conv ``D*(D/g)*K + D`` plus its
        weight norm's ``K`` magnitudes; per layer ``4*(D*D + D) + 2*(D*F) + F + D + 4D`` (two LayerNorms); the
        final LayerNorm ``2D``; ``lm_head`` ``(D+1)*V``; the unused ``masked_spec_embed`` ``D``."""
        d, f = self.hidden_size, self.intermediate_size
        convs, c_in = 0, 1
        for c, k in zip(self.conv_dim, self.conv_kernel, strict=True):
            convs += c_in * c * k + (c if self.conv_bias else 0) + 2 * c
            c_in = c
        projection = 2 * c_in + (c_in + 1) * d
        k = self.num_conv_pos_embeddings
        pos = d * (d // self.num_conv_pos_embedding_groups) * k + d + k
        layer = 4 * (d * d + d) + 2 * d * f + f + d + 4 * d
        return convs + projection + pos + self.num_hidden_layers * layer + 2 * d + (d + 1) * self.vocab_size + d

    def to_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``transformers.Wav2Vec2Config``."""
        return asdict(self)


def _walk(cfg: Wav2Vec2Config, batch: int, samples: int, sink: Sink) -> None:
    """Every op of one ``Wav2Vec2ForCTC(input_values, output_hidden_states=True)`` over ``batch`` clips of
    ``samples`` samples, told to ``sink`` (float32 throughout), each output allocated after its op and freed
    where eager PyTorch drops it; every hidden state is kept to the end."""
    d, f, b = cfg.hidden_size, cfg.intermediate_size, batch

    def op(module: str, name: str, category: str, read: int, written: int, flops: int = 0, dims: Any = (),
           out: int | None = None) -> None:  # fmt: skip
        sink.op(module, "aten." + name, category, read, written, flops, 1, "", dims)
        if sink.memory:
            sink.alloc(written if out is None else out)

    fe = "wav2vec2.feature_extractor.conv_layers"
    c_in, length = 1, samples
    for i, (c, k, out_len) in enumerate(zip(cfg.conv_dim, cfg.conv_kernel, cfg.frames(samples), strict=True)):
        x_in, x = b * c_in * length * F32, b * c * out_len * F32
        weights = (c_in * c * k + (c if cfg.conv_bias else 0)) * F32
        op(f"{fe}.{i}.conv", "convolution", "conv", x_in + weights, x, ops.conv(b, c_in, c, (k,), (out_len,)),
           conv_dims(b, c_in, c, (k,), (out_len,)))  # fmt: skip
        layer_norm(sink, f"{fe}.{i}.layer_norm", b * out_len, c)
        sink.free(x)  # the convolution's output
        op(f"{fe}.{i}.activation", "gelu", "elementwise", x, x)
        sink.free(x + (x_in if i else 0))  # the norm's output; the layer's input, the caller's to its return
        c_in, length = c, out_len
    n = b * length  # frames
    features, h = n * c_in * F32, n * d * F32
    layer_norm(sink, "wav2vec2.feature_projection.layer_norm", n, c_in)  # extract_features, kept
    linear(sink, "wav2vec2.feature_projection.projection", n, c_in, d)  # held by the model's forward to its end
    sink.free(features)  # the last conv layer's output, the projection's argument
    pc, kp, g = "wav2vec2.encoder.pos_conv_embed", cfg.num_conv_pos_embeddings, cfg.num_conv_pos_embedding_groups
    weight = d * (d // g) * kp * F32
    # the parametrization recomputes g * v / ||v|| on every call (its own module)
    op(f"{pc}.conv.parametrizations.weight.0", "_weight_norm_interface", "norm", weight + kp * F32, weight + kp * F32)
    sink.free(kp * F32)  # the norms, not returned
    padded = b * d * (length + 1) * F32  # padding k // 2 each side: one frame more, cut before the GELU
    op(f"{pc}.conv", "convolution", "conv", h + weight + d * F32, padded,
       ops.conv(b, d // g, d, (kp,), (length + 1,)), conv_dims(b, d // g, d, (kp,), (length + 1,)))  # fmt: skip
    sink.free(weight)  # the normed weight
    op(f"{pc}.activation", "gelu", "elementwise", h, h)  # the position embeddings, held to the encoder's return
    sink.free(padded)
    op("wav2vec2.encoder", "add", "elementwise", 2 * h, h)  # + the position embeddings: the first hidden state

    names = LayerNames("layer_norm", "attention", "final_layer_norm", "feed_forward.intermediate_dense",
                       "feed_forward.intermediate_act_fn", "feed_forward.output_dense")  # fmt: skip

    def layer(layer_sink: Sink) -> None:
        pre_norm_layer(layer_sink, names, b, length, d, f, cfg.num_attention_heads)

    sink.repeat(cfg.num_hidden_layers, "wav2vec2.encoder.layers.{i}", layer)
    layer_norm(sink, "wav2vec2.encoder.layer_norm", n, d)
    sink.free(2 * h)  # the position embeddings and the projection, as the encoder and the model return
    linear(sink, "lm_head", n, d, cfg.vocab_size)


def wav2vec2_rows(cfg: Wav2Vec2Config, batch: int, samples: int, stage: str = "audio_encoder") -> list[OpGroup]:
    """Every op of one forward (see :func:`_walk`), as ``stage``'s rows."""
    sink = Rows(stage)
    _walk(cfg, batch, samples, sink)
    return sink.out


def wav2vec2_terms(cfg: Wav2Vec2Config, batch: int, samples: int) -> tuple[Term, ...]:
    """:func:`hybrid.timing.roofline_terms` of :func:`wav2vec2_rows`, from the same walk."""
    sink = TermSink()
    _walk(cfg, batch, samples, sink)
    return sink.freeze()


def wav2vec2_peak_bytes(cfg: Wav2Vec2Config, batch: int, samples: int, materialized: bool = False) -> int:
    """The activation peak of one forward, fused or (``materialized``) with PyTorch's math attention."""
    sink = Peak()
    _walk(cfg, batch, samples, sink)
    return sink.materialized if materialized else sink.fused


def component(module: str, op: str) -> str:
    """The report component of an audio-encoder row."""
    if ".attention" in module:
        return "attention_core" if op == SDPA else "attention_projections"
    if ".feed_forward." in module:
        return "ffn"
    if ".feature_extractor." in module:
        return "feature_convs"
    if module.startswith("lm_head"):
        return "output_head"
    return "embedders"


WAV2VEC2_XLSR_53 = Wav2Vec2Config()
"""``jonatasgrosman/wav2vec2-large-xlsr-53-english`` (Wan2.2-S2V's ``wav2vec2-large-xlsr-53-english``)."""
