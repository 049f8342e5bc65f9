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

from dataclasses import asdict, dataclass
from math import prod
from typing import TYPE_CHECKING, Any

from hybrid import ops
from hybrid.rows import SDPA_OP as SDPA
from hybrid.rows import OpGroup

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.geometry import CallShape


@dataclass(frozen=True)
class WanTransformer3DConfig:
    """``WanTransformer3DModel`` constructor arguments (diffusers names), text-to-video only."""

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

    def __post_init__(self) -> None:
        if self.image_dim is not None or self.added_kv_proj_dim is not None:
            raise ValueError(
                "image_dim/added_kv_proj_dim: only text-to-video transformers (both null) are "
                f"modelled, got image_dim={self.image_dim}, added_kv_proj_dim={self.added_kv_proj_dim}"
            )
        if self.qk_norm not in (None, "rms_norm_across_heads"):
            raise ValueError(f"qk_norm: must be 'rms_norm_across_heads' or null, got {self.qk_norm!r}")
        if len(self.patch_size) != 3 or min(self.patch_size) < 1:
            raise ValueError(f"patch_size: must be three positive ints, got {self.patch_size}")

    @property
    def inner_dim(self) -> int:
        """``D = num_attention_heads * attention_head_dim``."""
        return self.num_attention_heads * self.attention_head_dim

    def num_parameters(self) -> int:
        """Parameters of ``WanTransformer3DModel`` (T2V):

        ``patch: C_in*D*prod(p) + D``; ``time: (F+1)*D + (D+1)*D + (D+1)*6D``;
        ``text: (T+1)*D + (D+1)*D``; per block ``8*(D*D + D)`` (two attentions) ``+ 4D`` (q/k
        norms) ``+ 2D`` (affine norm2) ``+ 2*D*ffn + ffn + D`` (FFN) ``+ 6D`` (modulation table);
        head ``(D+1)*C_out*prod(p) + 2D``.
        """
        d, f = self.inner_dim, self.ffn_dim
        p = prod(self.patch_size)
        patch = self.in_channels * d * p + d
        time = (self.freq_dim + 1) * d + (d + 1) * d + (d + 1) * 6 * d
        text = (self.text_dim + 1) * d + (d + 1) * d
        qk_norms = 4 * d if self.qk_norm else 0
        norm2 = 2 * d if self.cross_attn_norm else 0
        block = 8 * (d * d + d) + qk_norms + norm2 + 2 * d * f + f + d + 6 * d
        head = (d + 1) * self.out_channels * p + 2 * d
        return patch + time + text + self.num_layers * block + head

    def to_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``diffusers.WanTransformer3DModel``."""
        return asdict(self)


STAGE = "diffusion_core"
ADDMM = "aten.addmm"


def dit_groups(cfg: WanTransformer3DConfig, shape: CallShape) -> list[OpGroup]:
    """FLOP groups of one ``WanTransformer3DModel`` forward, keyed like the tracer's rows.

    With ``N = (F/p_t)(H/p_h)(W/p_w)`` video tokens, ``L = text_len`` text tokens, ``D`` the width:
    per block, self-attention ``4 * 2BND^2`` (q, k, v, out) ``+ 4BHN^2d``; cross-attention
    ``2 * 2BND^2`` (q, out) ``+ 2 * 2BLD^2`` (k, v over text) ``+ 4BHNLd``; FFN ``2 * 2BN*D*ffn``.
    Plus the patch conv, the timestep/text embedders and ``proj_out``.
    """
    p_t, p_h, p_w = cfg.patch_size
    batch, text_len = shape.batch, shape.text_len
    f, h, w = shape.dit_latent_frames // p_t, shape.latent_height // p_h, shape.latent_width // p_w
    tokens = f * h * w
    n = batch * tokens  # video token rows
    t = batch * text_len  # text token rows
    d, heads, hd, ffn, layers = (
        cfg.inner_dim,
        cfg.num_attention_heads,
        cfg.attention_head_dim,
        cfg.ffn_dim,
        cfg.num_layers,
    )
    video_proj, text_kv = ops.linear(n, d, d), ops.linear(t, d, d)  # D x D over video / text tokens
    return [
        OpGroup(
            STAGE,
            "patch_embedding",
            "aten.convolution",
            "conv",
            ops.conv3d(batch, cfg.in_channels, d, cfg.patch_size, (f, h, w)),
        ),
        OpGroup(
            STAGE, "condition_embedder.time_embedder.linear_1", ADDMM, "matmul", ops.linear(batch, cfg.freq_dim, d)
        ),
        OpGroup(STAGE, "condition_embedder.time_embedder.linear_2", ADDMM, "matmul", ops.linear(batch, d, d)),
        OpGroup(STAGE, "condition_embedder.time_proj", ADDMM, "matmul", ops.linear(batch, d, 6 * d)),
        OpGroup(STAGE, "condition_embedder.text_embedder.linear_1", ADDMM, "matmul", ops.linear(t, cfg.text_dim, d)),
        OpGroup(STAGE, "condition_embedder.text_embedder.linear_2", ADDMM, "matmul", text_kv),
        OpGroup(STAGE, "blocks.{i}.attn1.to_q", ADDMM, "matmul", video_proj, repeat=layers),
        OpGroup(STAGE, "blocks.{i}.attn1.to_k", ADDMM, "matmul", video_proj, repeat=layers),
        OpGroup(STAGE, "blocks.{i}.attn1.to_v", ADDMM, "matmul", video_proj, repeat=layers),
        OpGroup(
            STAGE, "blocks.{i}.attn1", SDPA, "attention", ops.sdpa(batch, heads, tokens, tokens, hd), repeat=layers
        ),
        OpGroup(STAGE, "blocks.{i}.attn1.to_out.0", ADDMM, "matmul", video_proj, repeat=layers),
        OpGroup(STAGE, "blocks.{i}.attn2.to_q", ADDMM, "matmul", video_proj, repeat=layers),
        OpGroup(STAGE, "blocks.{i}.attn2.to_k", ADDMM, "matmul", text_kv, repeat=layers),
        OpGroup(STAGE, "blocks.{i}.attn2.to_v", ADDMM, "matmul", text_kv, repeat=layers),
        OpGroup(
            STAGE, "blocks.{i}.attn2", SDPA, "attention", ops.sdpa(batch, heads, tokens, text_len, hd), repeat=layers
        ),
        OpGroup(STAGE, "blocks.{i}.attn2.to_out.0", ADDMM, "matmul", video_proj, repeat=layers),
        OpGroup(STAGE, "blocks.{i}.ffn.net.0.proj", ADDMM, "matmul", ops.linear(n, d, ffn), repeat=layers),
        OpGroup(STAGE, "blocks.{i}.ffn.net.2", ADDMM, "matmul", ops.linear(n, ffn, d), repeat=layers),
        OpGroup(STAGE, "proj_out", ADDMM, "matmul", ops.linear(n, d, cfg.out_channels * prod(cfg.patch_size))),
    ]


def component(module: str, op: str) -> str:
    """The report component of a DiT row (analytic or traced)."""
    if ".attn1" in module:
        return "self_attention_core" if op == SDPA else "self_attention_projections"
    if ".attn2" in module:
        return "cross_attention_core" if op == SDPA else "cross_attention_projections"
    if ".ffn." in module:
        return "ffn"
    if module.startswith(("patch_embedding", "condition_embedder", "rope")):
        return "embedders"
    if module.startswith(("proj_out", "norm_out")):
        return "output_head"
    return "other"


# Wan-AI/Wan2.1-T2V-1.3B-Diffusers transformer/config.json
WAN21_T2V_1_3B = WanTransformer3DConfig(num_attention_heads=12, ffn_dim=8960, num_layers=30)
# Wan-AI/Wan2.1-T2V-14B-Diffusers transformer/config.json
WAN21_T2V_14B = WanTransformer3DConfig(num_attention_heads=40, ffn_dim=13824, num_layers=40)
