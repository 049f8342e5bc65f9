"""The VAE walk against the real module: ``AutoencoderKLWan`` as the tracer builds it (``build_vae``: tiled where the
config says, in its dtype) traced on meta, its rows, roofline terms and both activation peaks equal to the walk's."""

from __future__ import annotations

from typing import Any

import torch

from hybrid.models import wan_vae
from hybrid.models.wan_vae import AutoencoderKLWanConfig
from hybrid.rows import OpGroup, aggregate_costs, expand
from hybrid.timing import roofline_terms

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def trace_vae(cfg: AutoencoderKLWanConfig, stage: str, run: Any) -> Any:
    """``run(vae)`` on the real module for ``cfg``, traced (the tracer's ``CostMode``)."""
    from hybrid.trace.build import build_vae
    from hybrid.trace.mode import CanonicalFunctionMode, CostMode, ModuleStack

    vae = build_vae(cfg, "meta", DTYPES[cfg.compute_dtype])
    assert vae.use_tiling == cfg.use_tiling
    with ModuleStack(vae) as modules:
        cost = CostMode(stage, modules)
        with torch.no_grad(), cost, CanonicalFunctionMode(cost):
            run(vae)
    return cost


def decode_walk_is_traced(cfg: AutoencoderKLWanConfig, batch: int, frames: int, h: int, w: int) -> list[OpGroup]:
    """One decode of ``batch`` latents of ``frames`` x ``h`` x ``w``: the walk equals the trace; its rows."""
    z = torch.empty(batch, cfg.z_dim, frames, h, w, device="meta", dtype=DTYPES[cfg.compute_dtype])
    traced = trace_vae(cfg, "vae_decode", lambda vae: vae.decode(z, return_dict=False))
    rows = wan_vae.vae_decode_rows(cfg, batch, frames, h, w)
    assert aggregate_costs(expand(rows)) == aggregate_costs(traced.rows())
    assert wan_vae.vae_decode_terms(cfg, batch, frames, h, w) == roofline_terms(rows)
    for materialized, peak in ((False, traced.peak_live_bytes), (True, traced.peak_live_bytes_materialized)):
        assert wan_vae.vae_decode_peak_bytes(cfg, batch, frames, h, w, materialized) == peak
    return rows


def encode_walk_is_traced(cfg: AutoencoderKLWanConfig, batch: int, frames: int, h: int, w: int, calls: int = 1) -> None:
    """``calls`` encodes of ``batch`` videos of ``(frames - 1) * 4 + 1`` frames: the walk equals the trace."""
    video = (frames - 1) * cfg.scale_factor_temporal + 1
    x = torch.empty(batch, 3, video, h, w, device="meta", dtype=DTYPES[cfg.compute_dtype])

    def run(vae: Any) -> None:
        for _ in range(calls):
            vae.encode(x, return_dict=False)

    traced = trace_vae(cfg, "vae_encode", run)
    rows = wan_vae.vae_encode_rows(cfg, batch, frames, h, w, calls)
    assert aggregate_costs(expand(rows)) == aggregate_costs(traced.rows())
    assert wan_vae.vae_encode_terms(cfg, batch, frames, h, w, calls) == roofline_terms(rows)
    for materialized, peak in ((False, traced.peak_live_bytes), (True, traced.peak_live_bytes_materialized)):
        assert wan_vae.vae_encode_peak_bytes(cfg, batch, frames, h, w, materialized) == peak
