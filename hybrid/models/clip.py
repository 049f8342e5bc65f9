"""CLIP ViT-H/14 vision tower (transformers ``CLIPVisionModel``), the ``image_encoder`` stage of the
Wan2.1 image-to-video pipelines.

Architecture of one forward (module paths as in transformers), ``D = hidden_size``, ``T =
(image_size/patch_size)^2 + 1`` tokens per image (the class token first):

* ``vision_model.embeddings``: ``patch_embedding`` (``Conv2d(num_channels -> D, kernel = stride =
  patch_size)``, no bias), the class embedding and ``position_embedding`` (lookups: 0 FLOPs);
* ``vision_model.pre_layrnorm``;
* ``vision_model.encoder.layers.{i}`` for ``i < num_hidden_layers``: ``layer_norm1`` ->
  ``self_attn`` (``q_proj``/``k_proj``/``v_proj``/``out_proj``, ``D -> D`` with bias; attention over
  ``T`` tokens) -> ``layer_norm2`` -> ``mlp`` (``fc1``: ``D -> intermediate_size``, activation,
  ``fc2`` back);
* ``vision_model.post_layernorm`` on the class token (the pooled output).

``WanImageToVideoPipeline.encode_image`` calls it with ``output_hidden_states=True`` and reads
``hidden_states[-2]`` (the penultimate layer's output), but every layer runs. The diffusers
conversion script saves ``CLIPVisionModelWithProjection``, whose ``visual_projection``
(``D -> projection_dim`` on the one pooled token: 2 x 1280 x 1024 = 2,621,440 FLOPs) the pipeline
never reads; it is not modelled.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from hybrid import ops
from hybrid.dtypes import F32, I64
from hybrid.models.encoder_layer import LayerNames, layer_norm, pre_norm_layer
from hybrid.rows import SDPA_OP as SDPA
from hybrid.rows import OpGroup
from hybrid.sinks import Peak, Rows, Sink, TermSink
from hybrid.timing import Term, conv_dims

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.geometry import CallShape


@dataclass(frozen=True)
class CLIPVisionConfig:
    """The fields of transformers' ``CLIPVisionConfig`` that shape the tower (same names)."""

    hidden_size: int = 1280
    intermediate_size: int = 5120
    projection_dim: int = 1024
    num_hidden_layers: int = 32
    num_attention_heads: int = 16
    num_channels: int = 3
    image_size: int = 224
    patch_size: int = 14
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-5

    COST_FREE_KEYS: ClassVar[frozenset[str]] = frozenset(
        [
            "attention_dropout",
            "dropout",
            "initializer_factor",
            "initializer_range",
        ]
    )
    """Keys of a published ``config.json`` that change no cost (training-only settings)."""

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size: {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size: {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}"
            )

    @property
    def num_tokens(self) -> int:
        """Tokens per image: ``(image_size / patch_size)^2`` patches plus the class token."""
        return (self.image_size // self.patch_size) ** 2 + 1

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def num_parameters(self) -> int:
        """Parameters of ``CLIPVisionModel``: patch ``C*D*p^2``, class ``D``, positions ``T*D``,
        pre/post layer norms ``2 * 2D``; per layer ``4(D^2 + D)`` (attention) ``+ 2 * 2D`` (norms)
        ``+ 2*D*F + F + D`` (MLP)."""
        d, f = self.hidden_size, self.intermediate_size
        embeddings = self.num_channels * d * self.patch_size**2 + d + self.num_tokens * d
        layer = 4 * (d * d + d) + 4 * d + 2 * d * f + f + d
        return embeddings + 4 * d + self.num_hidden_layers * layer

    def to_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``transformers.CLIPVisionConfig``."""
        return asdict(self)


# bytes per element (hybrid.dtypes): the image encoder runs in float32 (diffusers' example); position ids


def clip_rows(cfg: CLIPVisionConfig, shape: CallShape) -> list[OpGroup]:
    """Every op one ``CLIPVisionModel`` forward on ``shape.images`` images costs (FLOPs and bytes),
    keyed like the tracer's rows (see :func:`_clip_walk`)."""
    sink = Rows("image_encoder")
    _clip_walk(cfg, shape, sink)
    return sink.out


def clip_terms(cfg: CLIPVisionConfig, shape: CallShape) -> tuple[Term, ...]:
    """:func:`hybrid.timing.roofline_terms` of :func:`clip_rows`, from the same walk."""
    sink = TermSink()
    _clip_walk(cfg, shape, sink)
    return sink.freeze()


def _clip_walk(cfg: CLIPVisionConfig, shape: CallShape, sink: Sink) -> None:
    """The ops of one forward, told to ``sink`` (bytes per call): the bias-free patch conv, the
    class token and position embedding, pre-norm, per layer a norm, q/k/v, attention, out, the
    residual add, a norm, the GELU MLP and the second add, then the post-norm of the pooled class
    tokens. Each op's output is allocated after it, and freed where eager PyTorch drops the last
    reference; the pipeline asks for every hidden state (``output_hidden_states``), so each layer
    leaves its output live, and the last layer peaks."""
    n, t, d, f = shape.images, cfg.num_tokens, cfg.hidden_size, cfg.intermediate_size
    r, side, c, p = n * t, cfg.image_size // cfg.patch_size, cfg.num_channels, cfg.patch_size
    x = r * d * F32  # one hidden state

    names = LayerNames("layer_norm1", "self_attn", "layer_norm2", "mlp.fc1", "mlp.activation_fn", "mlp.fc2")

    def layer(sink: Sink) -> None:
        pre_norm_layer(sink, names, n, t, d, f, cfg.num_attention_heads)

    patches = n * d * side * side * F32
    conv = ops.conv2d(n, c, d, (p, p), (side, side))
    sink.op("embeddings.patch_embedding", "aten.convolution", "conv",
            (n * c * cfg.image_size**2 + d * c * p * p) * F32, patches, conv,
            dims=conv_dims(n, c, d, (p, p), (side, side)))  # fmt: skip
    sink.alloc(patches)
    sink.op("embeddings", "aten.cat", "movement", x, x)  # class token before the patches
    sink.alloc(x)
    sink.op("embeddings.position_embedding", "aten.embedding", "embedding", t * d * F32 + t * I64, t * d * F32)
    sink.alloc(t * d * F32)
    sink.op("embeddings", "aten.add", "elementwise", x + t * d * F32, x)
    sink.alloc(x)
    sink.free(patches + x + t * d * F32)
    layer_norm(sink, "pre_layrnorm", r, d)  # its output is the first hidden state, kept
    sink.free(x)  # the embeddings
    sink.repeat(cfg.num_hidden_layers, "encoder.layers.{i}", layer)
    layer_norm(sink, "post_layernorm", n, d)


def clip_peak_bytes(cfg: CLIPVisionConfig, shape: CallShape, materialized: bool = False) -> int:
    """The activation peak of one forward (the tracer's ``peak_activation_bytes``): :func:`_clip_walk`
    into a :class:`~hybrid.sinks.Peak`; ``materialized``: with PyTorch's math attention."""
    sink = Peak()
    _clip_walk(cfg, shape, sink)
    return sink.materialized if materialized else sink.fused


def clip_groups(cfg: CLIPVisionConfig, shape: CallShape) -> list[OpGroup]:
    """FLOP groups of one ``CLIPVisionModel`` forward on ``shape.images`` images (batch of images):
    the matmul, attention and conv rows of :func:`clip_rows`.

    With ``R = images * T`` token rows: the patch conv ``2 * images * D * C * p^2 * (T - 1)``; per
    layer ``4 * 2RD^2`` (q, k, v, out), attention ``4 * images * H * T^2 * d``, MLP ``2 * 2RDF``.
    """
    return [g for g in clip_rows(cfg, shape) if g.flops_per_call]


def component(module: str, op: str) -> str:
    """The report component of an image-encoder row (analytic or traced)."""
    if ".self_attn" in module:
        return "attention_core" if op == SDPA else "attention_projections"
    if ".mlp." in module:
        return "ffn"
    if module.startswith("embeddings."):
        return "embedders"
    return "other"


# Wan-AI/Wan2.1-I2V-14B-{480P,720P}-Diffusers and Wan2.1-FLF2V-14B-720P-Diffusers image_encoder/config.json:
# CLIP ViT-H/14 vision tower (open-clip xlm-roberta-large-vit-huge-14), hidden 1280, intermediate 5120,
# 16 heads, 32 layers, image 224, patch 14, gelu, projection_dim 1024.
CLIP_VIT_H_14 = CLIPVisionConfig()
