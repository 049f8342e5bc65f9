"""TAEHV's decoder (``--optimise tae``): the closed form in ``hybrid/models/taehv.py`` against a trace of the
vendored ``taehv.py`` (``tests/data/taehv``, madebyollin/taehv at 1f14a56) decoding on the meta device as
LightX2V's ``WanVAE_tiny.decode`` runs it: every op's FLOPs, bytes and calls, the activation peak, the
parameters; and what the what-if changes in a sizing."""

from __future__ import annotations

import importlib.util
from collections import defaultdict
from pathlib import Path
from types import ModuleType

import pytest
import torch

from hybrid.hardware import get_gpu
from hybrid.models import taehv
from hybrid.optimisations import parse, plan_of
from hybrid.optimise import TinyDecoder
from hybrid.sizing import size_on_gpu
from hybrid.workload import Workload

VENDORED = Path(__file__).parent / "data" / "taehv" / "taehv.py"


@pytest.fixture(scope="module")
def vendored() -> ModuleType:
    spec = importlib.util.spec_from_file_location("taehv_vendored", VENDORED)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _trace(vendored: ModuleType, cfg: taehv.TAEHVConfig, batch: int, frames: int, h: int, w: int) -> tuple:
    from hybrid.trace.mode import CanonicalFunctionMode, CostMode, ModuleStack

    with torch.device("meta"):  # the constructor's checkpoint name only sets these two: pass them, load nothing
        model = vendored.TAEHV(None, patch_size=cfg.patch_size, latent_channels=cfg.latent_channels)
        model = model.to(torch.bfloat16)
    latents = torch.empty(batch, cfg.latent_channels, frames, h, w, device="meta", dtype=torch.bfloat16)
    with ModuleStack(model) as modules:
        cost = CostMode("vae_decode", modules)
        with torch.no_grad(), cost, CanonicalFunctionMode(cost):
            # lightx2v/models/video_encoders/hf/wan/vae_tiny.py, WanVAE_tiny.decode
            model.decode_video(latents.transpose(1, 2).to(torch.bfloat16), parallel=False).transpose(1, 2).mul_(2).sub_(
                1
            )
    return cost, sum(p.numel() for p in model.decoder.parameters())


def _by_op(rows: list) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    out: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in rows:
        a = out[(r.module, r.op)]
        if hasattr(r, "bytes_read_per_call"):  # an analytic group: per call
            a[0] += r.flops * r.calls
            a[1] += r.bytes_read_per_call * r.calls
            a[2] += r.bytes_written_per_call * r.calls
        else:  # a traced row: all its calls
            a[0] += r.flops
            a[1] += r.bytes_read
            a[2] += r.bytes_written
        a[3] += r.calls
    return {k: tuple(v) for k, v in out.items()}  # type: ignore[misc]


@pytest.mark.parametrize("cfg", [taehv.TAEW2_1, taehv.TAEW2_2], ids=["taew2_1", "taew2_2"])
@pytest.mark.parametrize(("batch", "frames", "h", "w"), [(1, 3, 4, 6), (2, 2, 6, 4), (1, 5, 2, 2)])
def test_the_walk_is_the_vendored_decoder_op_for_op(
    vendored: ModuleType, cfg: taehv.TAEHVConfig, batch: int, frames: int, h: int, w: int
) -> None:
    cost, params = _trace(vendored, cfg, batch, frames, h, w)
    assert not cost.unsupported
    assert _by_op(taehv.decode_rows(cfg, batch, frames, h, w)) == _by_op(cost.rows())
    assert taehv.decode_peak_bytes(cfg, batch, frames, h, w) == cost.peak_live_bytes
    assert cfg.num_parameters() == params


def test_decoder_parameters_and_output_frames() -> None:
    # taew2_1: 9,844,611 decoder parameters (the helper's count of the class built with no checkpoint, equal to
    # LightX2V's copy); taew2_2: 48 latent channels in, 12 out before pixel_shuffle(2): 9,923,532
    assert (taehv.TAEW2_1.num_parameters(), taehv.TAEW2_2.num_parameters()) == (9_844_611, 9_923_532)
    rows = taehv.decode_rows(taehv.TAEW2_1, 1, 21, 90, 160)
    convs_out = sum(g.calls for g in rows if g.module == "decoder.22")
    assert convs_out == 4 * 21  # every latent frame leaves as 4 frames (the first 3 trimmed: 4T - 3 = 81)


def test_tae_replaces_the_decode_and_keeps_the_encoder_only_where_the_job_encodes() -> None:
    h200 = get_gpu("h200")
    for model, keeps in (("wan2.1-t2v-1.3b", False), ("wan2.1-i2v-14b-480p", True), ("wan2.2-ti2v-5b", False)):
        w = Workload.of(model)
        planned = plan_of(parse("tae"), w, h200)
        (t,) = planned.transforms
        assert isinstance(t, TinyDecoder) and t.keep_encoder == keeps
        assert t.config == (taehv.TAEW2_2 if model == "wan2.2-ti2v-5b" else taehv.TAEW2_1)
        base = size_on_gpu(w, "h200")
        tiny = size_on_gpu(planned.workload, "h200", optimisations=planned.transforms)
        assert tiny.stages["vae_decode"].seconds < base.stages["vae_decode"].seconds / 10
        assert tiny.stages["vae_decode"].activation_bytes == t.peak_bytes < base.stages["vae_decode"].activation_bytes
        assert tiny.stages["diffusion_core"].seconds == base.stages["diffusion_core"].seconds
        # the VAE's weights: its encoder (float32 in diffusers) where the job encodes, the tiny decoder in bf16
        vae = w.spec.vae
        expected = (vae.encoder_num_parameters() * 4 if keeps else 0) + t.config.num_parameters() * 2
        assert t.weights("vae", vae.num_parameters() * 4, vae) == expected
