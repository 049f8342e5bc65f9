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
from hybrid.dtypes import BOOL, F16, F32, I64
from hybrid.models.encoder_layer import LayerNames, layer_norm, linear, pre_norm_layer
from hybrid.rows import SDPA_OP as SDPA
from hybrid.rows import OpGroup
from hybrid.sinks import Peak, Rows, Sink, TermSink
from hybrid.timing import Term, attention_dims, conv_dims

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
    """The ops of one call of the image encoder as the workload's code runs it: transformers' ``CLIPVisionModel``
    (:func:`_transformers_walk`), or the original Wan code's ``CLIPModel.visual`` (``shape.image_encoder_ops``:
    :func:`_wan_clip_walk`)."""
    from hybrid.models.wan_dit import WAN_OPS

    if shape.image_encoder_ops == WAN_OPS:
        _wan_clip_walk(cfg, shape, sink)
    else:
        _transformers_walk(cfg, shape, sink)


def _transformers_walk(cfg: CLIPVisionConfig, shape: CallShape, sink: Sink) -> None:
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


WAN_CLIP_BLOCKS_LEFT_OUT = 1
"""Blocks of the tower the original ``CLIPModel.visual`` leaves out: ``self.model.visual(videos, use_31_block=True)``
runs ``self.transformer[:-1]`` (wan/modules/clip.py of Wan-Video/Wan2.1 9737cba, and Wan2.2's
wan/modules/animate/clip.py), 31 of ViT-H/14's 32, and returns their output (no post-norm, no head)."""


def _wan_clip_walk(cfg: CLIPVisionConfig, shape: CallShape, sink: Sink) -> None:
    """``CLIPModel.visual`` of the original Wan code (wan/modules/clip.py) on ``shape.images`` images of
    ``shape.height x shape.width`` pixels (the job's size: Wan2.1's ``image2video.py`` passes the user's image as
    read, Animate its reference image at the job's size), told to ``sink``:

    * on the GPU in float32: each image resized to ``image_size`` (``F.interpolate(..., mode='bicubic')``), the
      images joined (``torch.cat``), ``mul_(0.5).add_(0.5)`` in place, then torchvision's ``Normalize``: a clone,
      the ``(std == 0).any()`` check and ``sub_(mean).div_(std)`` in place;
    * under ``autocast(float16)`` with the tower's float16 weights (``clip_dtype``): the bias-free patch conv
      (its float32 input cast), the class token joined and the positions added; every ``LayerNorm`` as the
      original's ``super().forward(x.float()).type_as(x)`` (the float16 weight and bias cast to float32 too, as
      CUDA autocast runs ``layer_norm``); 31 blocks (:data:`WAN_CLIP_BLOCKS_LEFT_OUT`) of a fused ``to_qkv``,
      FlashAttention-2 over ``(batch, tokens)`` (``flash_attention(..., version=2)``), ``proj``, the residual add,
      then ``mlp`` (``Linear``, exact GELU, ``Linear``) and the second add.

    Module paths are the original's (``transformer.{i}.attn.to_qkv``); the resize and normalisation run outside the
    tower (path ``""``)."""
    n, t, d, f = shape.images, cfg.num_tokens, cfg.hidden_size, cfg.intermediate_size
    side, c, p = cfg.image_size // cfg.patch_size, cfg.num_channels, cfg.patch_size
    r = n * t
    pixels = n * c * cfg.image_size**2  # the resized images
    x16, x32 = r * d * F16, r * d * F32  # one hidden state in float16 and float32

    # CLIPModel.visual's preprocessing, float32 on the GPU
    resized = pixels // n * F32
    sink.op("", "aten.upsample_bicubic2d", "elementwise", c * shape.height * shape.width * F32, resized, calls=n)
    for _ in range(n):
        sink.alloc(resized)
    sink.op("", "aten.cat", "movement", pixels * F32, pixels * F32)
    sink.alloc(pixels * F32)
    sink.free(pixels * F32)  # the list of resized images
    for op in ("aten.mul_", "aten.add_"):
        sink.op("", op, "elementwise", pixels * F32, pixels * F32)
    sink.op("", "aten.clone", "movement", pixels * F32, pixels * F32)  # Normalize(inplace=False)
    sink.alloc(pixels * F32)
    sink.op("", "aten.eq", "elementwise", c * F32, c * BOOL)  # (std == 0).any()
    sink.alloc(c * BOOL)
    sink.op("", "aten.any", "reduction", c * BOOL, BOOL)
    sink.alloc(BOOL)
    sink.free(c * BOOL + BOOL)
    for op in ("aten.sub_", "aten.div_"):
        sink.op("", op, "elementwise", (pixels + c) * F32, pixels * F32)
    sink.free(pixels * F32)  # the joined images (Normalize returned the clone)

    def original_norm(k: Sink, module: str) -> None:
        """The original ``LayerNorm``: float32 copies of the float16 stream, weight and bias; the norm; the result
        cast back to float16; all but that dropped."""
        k.op(module, "aten._to_copy", "movement", x16, x32)
        k.alloc(x32)
        k.op(module, "aten._to_copy", "movement", d * F16, d * F32, calls=2)
        k.alloc(2 * d * F32)
        layer_norm(k, module, r, d)
        k.free(2 * d * F32)  # the weight casts
        k.op(module, "aten._to_copy", "movement", x32, x16)
        k.alloc(x16)
        k.free(2 * x32)  # the float32 copy and norm

    def half_linear(k: Sink, module: str, d_in: int, d_out: int) -> None:
        linear(k, module, r, d_in, d_out, itemsize=F16)

    def block(k: Sink, first: bool = False) -> None:
        """One ``AttentionBlock``; ``first``: its input (the pre-norm's output) stays live after it, held by the
        tower's ``x`` while ``self.transformer[:-1](x)`` runs."""
        h = cfg.num_attention_heads
        original_norm(k, "norm1")
        half_linear(k, "attn.to_qkv", d, 3 * d)
        k.op("attn", SDPA, "attention", 3 * x16, x16, ops.sdpa(n, h, t, t, cfg.head_dim),
             dims=attention_dims(n * h, t, t, cfg.head_dim))  # fmt: skip
        k.transient(ops.math_attention_bytes(n * h, t, t, cfg.head_dim, itemsize=F16))
        k.alloc(x16)
        half_linear(k, "attn.proj", d, d)
        k.free(5 * x16)  # as attn returns: q, k and v (to_qkv's output), the attention's output; then the norm
        k.op("", "aten.add", "elementwise", 2 * x16, x16)  # x + attn(norm1(x))
        k.alloc(x16)
        k.free(x16)  # proj's output
        original_norm(k, "norm2")
        half_linear(k, "mlp.0", d, f)
        k.op("mlp.1", "aten.gelu", "elementwise", r * f * F16, r * f * F16)
        k.alloc(r * f * F16)
        k.free(r * f * F16)  # mlp.0's output
        half_linear(k, "mlp.2", f, d)
        k.free(r * f * F16 + x16)  # the GELU's output; the norm
        k.op("", "aten.add", "elementwise", 2 * x16, x16)  # x + mlp(norm2(x)): the block's output
        k.alloc(x16)
        k.free((2 if first else 3) * x16)  # mlp.2's output, the first residual; as the block returns, its input

    # the tower under autocast(float16)
    patches, conv_in = n * d * side * side * F16, pixels * F16
    sink.op("patch_embedding", "aten._to_copy", "movement", pixels * F32, conv_in)
    sink.alloc(conv_in)
    sink.op("patch_embedding", "aten.convolution", "conv", conv_in + d * c * p * p * F16, patches,
            ops.conv2d(n, c, d, (p, p), (side, side)), dims=conv_dims(n, c, d, (p, p), (side, side)))  # fmt: skip
    sink.alloc(patches)
    sink.free(conv_in)
    sink.op("", "aten.cat", "movement", x16, x16)  # the class token before the patches
    sink.alloc(x16)
    sink.free(patches)
    sink.op("", "aten.add", "elementwise", x16 + t * d * F16, x16)  # + the position embedding
    sink.alloc(x16)
    sink.free(x16)  # the joined tokens
    original_norm(sink, "pre_norm")
    sink.free(x16)  # the embeddings
    blocks = cfg.num_hidden_layers - WAN_CLIP_BLOCKS_LEFT_OUT
    sink.repeat(1, "transformer.0", lambda k: block(k, first=True))
    sink.repeat(blocks - 1, "transformer.{i}", block, start=1)


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
    """The report component of an image-encoder row (analytic or traced): transformers' module paths
    (``encoder.layers.{i}.self_attn``), or the original's (``transformer.{i}.attn``, ``patch_embedding``)."""
    if ".self_attn" in module or ".attn" in module:
        return "attention_core" if op == SDPA else "attention_projections"
    if ".mlp." in module:
        return "ffn"
    if module.startswith("embeddings.") or module == "patch_embedding":
        return "embedders"
    return "other"


# Wan-AI/Wan2.1-I2V-14B-{480P,720P}-Diffusers and Wan2.1-FLF2V-14B-720P-Diffusers image_encoder/config.json:
# CLIP ViT-H/14 vision tower (open-clip xlm-roberta-large-vit-huge-14), hidden 1280, intermediate 5120,
# 16 heads, 32 layers, image 224, patch 14, gelu, projection_dim 1024.
CLIP_VIT_H_14 = CLIPVisionConfig()
