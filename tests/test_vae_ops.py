"""A VAE whose code keeps its norms in half precision (LightX2V's Wan2.1 VAE in bfloat16: ``RMS_norm`` normalises
the input as it comes; diffusers' ``WanRMS_norm`` works on a float32 copy): the walk's rows, roofline terms and both
activation peaks with ``upcast_norm`` off equal the tracer's of diffusers' module with its norm's and its upsampling's
forwards replaced by LightX2V's (the upsampling interpolates the bfloat16 input as it comes, and its decomposition
traces the same float32 casts as diffusers' explicit ones), for the decoder and the encoder, whole and tiled; and a
workload takes the flag from its runtime."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hybrid.geometry import CallShape
from hybrid.models import wan_vae
from hybrid.models.wan_vae import AutoencoderKLWanConfig
from hybrid.rows import aggregate_costs, expand
from hybrid.runtime import Runtime
from hybrid.sizing import untraced_ops
from hybrid.workload import Workload
from tests.vae_walks import decode_walk_is_traced, encode_walk_is_traced, trace_vae

TINY = AutoencoderKLWanConfig(base_dim=8, z_dim=4, dim_mult=(1, 2, 2, 2), compute_dtype="bfloat16")
LIGHTX2V = replace(TINY, upcast_norm=False)
TILED = replace(LIGHTX2V, use_tiling=True, tile_sample_min_height=32, tile_sample_min_width=32,
                tile_sample_stride_height=24, tile_sample_stride_width=24)  # fmt: skip


def _rms_norm(self: Any, x: torch.Tensor) -> torch.Tensor:
    """LightX2V's ``RMS_norm.forward`` (lightx2v/models/video_encoders/hf/wan/vae.py, 13a492e5), verbatim."""
    return F.normalize(x, dim=(1 if self.channel_first else -1)) * self.scale * self.gamma + self.bias


def _upsample(self: Any, x: torch.Tensor) -> torch.Tensor:
    """LightX2V's ``Upsample.forward``: ``return super().forward(x)``."""
    return nn.Upsample.forward(self, x)


@pytest.fixture
def lightx2v_forwards(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from diffusers.models.autoencoders import autoencoder_kl_wan as kl

    monkeypatch.setattr(kl.WanRMS_norm, "forward", _rms_norm)
    monkeypatch.setattr(kl.WanUpsample, "forward", _upsample)
    yield


@pytest.mark.parametrize(("cfg", "batch", "frames", "h", "w"), [(LIGHTX2V, 1, 3, 4, 6), (LIGHTX2V, 2, 2, 3, 5),
                                                                (TILED, 1, 2, 7, 9)])  # fmt: skip
def test_the_decode_walk_is_lightx2v_s_code_traced(
    lightx2v_forwards: None, cfg: AutoencoderKLWanConfig, batch: int, frames: int, h: int, w: int
) -> None:
    rows = decode_walk_is_traced(cfg, batch, frames, h, w)
    # no float32 copy in a norm: they run in bfloat16
    assert not any(r.op == "aten._to_copy" and "norm" in r.module for r in rows)
    assert any(r.op == "aten._to_copy" and "norm" in r.module for r in wan_vae.vae_decode_rows(TINY, 1, 2, 3, 5))


@pytest.mark.parametrize(("cfg", "frames", "h", "w"), [(LIGHTX2V, 2, 16, 24), (TILED, 2, 56, 40)])
def test_the_encode_walk_is_lightx2v_s_code_traced(
    lightx2v_forwards: None, cfg: AutoencoderKLWanConfig, frames: int, h: int, w: int
) -> None:
    encode_walk_is_traced(cfg, 1, frames, h, w)


def test_diffusers_forwards_differ_from_lightx2v_s_walk() -> None:
    """The comparison can fail: diffusers' own forwards (float32 copies) do not give LightX2V's walk."""
    z = torch.empty(1, LIGHTX2V.z_dim, 2, 4, 6, device="meta", dtype=torch.bfloat16)
    traced = trace_vae(LIGHTX2V, "vae_decode", lambda vae: vae.decode(z, return_dict=False))
    assert aggregate_costs(expand(wan_vae.vae_decode_rows(LIGHTX2V, 1, 2, 4, 6))) != aggregate_costs(traced.rows())
    assert aggregate_costs(expand(wan_vae.vae_decode_rows(TINY, 1, 2, 4, 6))) == aggregate_costs(traced.rows())


def test_a_workload_takes_its_vae_code_from_its_runtime() -> None:
    t2v = Workload.of(model="wan2.1-t2v-1.3b", runtime=Runtime("lightx2v"))
    vae = t2v.spec.vae
    assert (vae.compute_dtype, vae.upcast_norm, vae.diffusers_ops) == ("bfloat16", False, False)
    # diffusers' own, LightX2V's in float32 (the same ops), and the Wan2.2 VAE (diffusers' ops stand in)
    assert Workload.of(model="wan2.1-t2v-1.3b").spec.vae.diffusers_ops
    assert Workload.of(model="wan2.1-t2v-1.3b", runtime=Runtime("lightx2v", vae_dtype="float32")).spec.vae.diffusers_ops
    ti2v = Workload.of(model="wan2.2-ti2v-5b", runtime=Runtime("lightx2v")).spec.vae
    assert (ti2v.compute_dtype, ti2v.upcast_norm, ti2v.diffusers_ops) == ("bfloat16", True, True)
    # sizing takes LightX2V's bfloat16 decode from its walk even with a trace: the tracer builds diffusers' module
    decode = t2v.spec.pipeline_def.stage("vae_decode")
    shape: CallShape = t2v.shape()
    assert untraced_ops(decode, t2v.spec, shape)
    assert not untraced_ops(decode, Workload.of(model="wan2.1-t2v-1.3b").spec, shape)
