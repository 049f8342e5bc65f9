"""Wan-VAE (diffusers ``AutoencoderKLWan``); its decoder is the ``vae_decode`` stage.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any


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
    """``AutoencoderKLWan`` constructor arguments (diffusers names) for the Wan2.1 VAE."""

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

    def __post_init__(self) -> None:
        if len(self.temperal_downsample) != len(self.dim_mult) - 1:
            raise ValueError(
                "temperal_downsample: needs len(dim_mult) - 1 = "
                f"{len(self.dim_mult) - 1} entries, got {len(self.temperal_downsample)}"
            )
        if self.attn_scales:
            raise ValueError(f"attn_scales: only [] (Wan2.1) is modelled, got {list(self.attn_scales)}")

    @property
    def temperal_upsample(self) -> tuple[bool, ...]:
        """Decoder's time-upsampling flags: ``temperal_downsample`` reversed."""
        return tuple(reversed(self.temperal_downsample))

    @property
    def decoder_dims(self) -> list[int]:
        """``base_dim * [m[-1]] + base_dim * reversed(m)``: widths through the decoder."""
        m = self.dim_mult
        return [self.base_dim * u for u in [m[-1], *reversed(m)]]

    def decoder_up_block_dims(self) -> list[tuple[int, int, str | None]]:
        """``(in_dim, out_dim, upsample_mode)`` of each ``decoder.up_blocks.{i}``."""
        dims = self.decoder_dims
        out: list[tuple[int, int, str | None]] = []
        n = len(self.dim_mult)
        for i, (c_in, c_out) in enumerate(pairwise(dims)):
            if i > 0:
                c_in //= 2  # the previous block's resample conv halved the width
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
                n += c_out * (c_out // 2) * 9 + c_out // 2  # resample.1: 3x3 conv2d c -> c/2
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
        return {
            "base_dim": self.base_dim,
            "z_dim": self.z_dim,
            "dim_mult": list(self.dim_mult),
            "num_res_blocks": self.num_res_blocks,
            "attn_scales": list(self.attn_scales),
            "temperal_downsample": list(self.temperal_downsample),
            "dropout": self.dropout,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "scale_factor_temporal": self.scale_factor_temporal,
            "scale_factor_spatial": self.scale_factor_spatial,
        }


# Wan-AI/Wan2.1-T2V-{1.3B,14B}-Diffusers vae/config.json (both ship the same VAE)
WAN21_VAE = AutoencoderKLWanConfig()
