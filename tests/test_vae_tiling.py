"""The tiled VAE (``--vae-tiling``: diffusers' ``AutoencoderKLWan.enable_tiling()``, LightX2V's ``use_tiling_vae``):
the walk's rows, roofline terms and both activation peaks equal the tracer's of the real module with tiling on, for
the decoder and the encoder of both VAEs, at tiny sizes and through the stage machinery at the full configs."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hybrid.errors import InputError
from hybrid.models import wan_vae
from hybrid.models.wan_vae import WAN21_VAE, WAN22_VAE, AutoencoderKLWanConfig
from hybrid.rows import aggregate_costs, expand
from hybrid.runtime import Runtime
from hybrid.workload import Workload
from tests.vae_walks import decode_walk_is_traced, encode_walk_is_traced


def _tiled(cfg: AutoencoderKLWanConfig, tile: int, stride: int) -> AutoencoderKLWanConfig:
    """``cfg`` tiled: square tiles of ``tile`` (patched) pixels every ``stride``."""
    return replace(cfg, use_tiling=True, tile_sample_min_height=tile, tile_sample_min_width=tile,
                   tile_sample_stride_height=stride, tile_sample_stride_width=stride)  # fmt: skip


# tiles of 32 pixels every 24 (4 latents every 3 at /8): a tiny video is cut into several, edges smaller
TINY = _tiled(AutoencoderKLWanConfig(base_dim=8, z_dim=4, dim_mult=(1, 2, 2, 2)), 32, 24)
# Wan2.2's VAE (residual blocks, 2x2 patches, /16) at tiny widths; tiles of 64 (patched) pixels every 48
TINY22 = _tiled(replace(WAN22_VAE, base_dim=8, decoder_base_dim=16, z_dim=4, dim_mult=(1, 2, 2, 2)), 64, 48)


@pytest.mark.parametrize(
    ("cfg", "batch", "frames", "h", "w"),
    [
        (TINY, 1, 3, 7, 9),  # 3 x 3 tiles: heights 4, 4, 1; widths 4, 4, 3
        (TINY, 2, 6, 5, 4),  # one column of 2 tiles, a batch of two (the peak's walk skips alike frames)
        (replace(TINY, compute_dtype="bfloat16"), 1, 2, 3, 7),
        (TINY22, 1, 2, 5, 3),
    ],
)
def test_tiled_decode_equals_the_trace(cfg: AutoencoderKLWanConfig, batch: int, frames: int, h: int, w: int) -> None:
    decode_walk_is_traced(cfg, batch, frames, h, w)


@pytest.mark.parametrize(
    ("cfg", "batch", "frames", "h", "w", "calls"),
    [
        (TINY, 1, 3, 56, 72, 2),  # 3 x 3 tiles of 32 pixels every 24 (heights 32, 32, 8; widths 32, 32, 24), twice
        (replace(TINY, compute_dtype="bfloat16"), 2, 2, 40, 32, 1),
        (TINY22, 1, 1, 112, 144, 1),  # TI2V's one image, patched to 56 x 72
    ],
)
def test_tiled_encode_equals_the_trace(
    cfg: AutoencoderKLWanConfig, batch: int, frames: int, h: int, w: int, calls: int
) -> None:
    encode_walk_is_traced(cfg, batch, frames, h, w, calls)


def test_the_stages_trace_the_tiled_module_at_the_full_config() -> None:
    """``--vae-tiling`` reaches the real module (``build_vae`` turns tiling on) and the stage rows: the Wan2.1 VAE
    at 480x320 (60 x 40 latents: 2 x 2 tiles of 32 latents every 24), 5 frames."""
    from hybrid.trace import trace_stage

    w = Workload.of(model="wan2.1-i2v-14b-480p", width=480, height=320, frames=5, runtime=Runtime(vae_tiling=True))
    assert w.spec.vae.use_tiling
    for stage in ("vae_encode", "vae_decode"):
        sd, call = w.spec.pipeline_def.stage(stage), w.shape()
        traced = trace_stage(stage, w)
        groups = sd.closed_rows(w.spec, call)
        assert groups is not None and aggregate_costs(expand(groups)) == aggregate_costs(traced.rows), stage
        assert sd.closed_peak(w.spec, call) == traced.peak_activation_bytes, stage


def test_tiling_costs_more_flops_and_a_lower_peak() -> None:
    """At 832x480 the decoder runs 3 x 5 tiles of up to 32 x 32 latents: heights 32, 32, 12 and widths 32, 32,
    32, 32, 8 cover (32 + 32 + 12) * (4 * 32 + 8) = 10,336 latent pixels of 60 * 104 = 6,240 (x1.66). Its convs
    are linear in the pixels, so the FLOPs are the sum of the tiles' own decodes exactly; the peak is far lower."""
    plain = wan_vae.vae_decode_groups(WAN21_VAE, 1, 21, 60, 104)
    tiled_cfg = replace(WAN21_VAE, use_tiling=True)
    tiled = wan_vae.vae_decode_groups(tiled_cfg, 1, 21, 60, 104)

    def flops(groups: list[Any]) -> int:
        return sum(g.flops for g in groups)

    tiles = [(th, tw) for th in (32, 32, 12) for tw in (32, 32, 32, 32, 8)]
    assert flops(tiled) == sum(flops(wan_vae.vae_decode_groups(WAN21_VAE, 1, 21, th, tw)) for th, tw in tiles)
    assert 1.6 < flops(tiled) / flops(plain) < 1.7
    assert wan_vae.vae_decode_peak_bytes(tiled_cfg, 1, 21, 60, 104) < wan_vae.vae_decode_peak_bytes(
        WAN21_VAE, 1, 21, 60, 104
    )


def test_runtime_vae_flags() -> None:
    lx = Runtime("lightx2v", vae_tiling=True, vae_dtype="float32")
    assert lx.compute_dtype("vae") == "float32" and Runtime("lightx2v").compute_dtype("vae") == "bfloat16"
    assert lx.describe() == "--runtime lightx2v --vae-tiling --vae-dtype float32"
    w = Workload.of(model="wan2.1-t2v-1.3b", runtime=lx)
    assert (w.spec.vae.compute_dtype, w.spec.vae.use_tiling) == ("float32", True)
    with pytest.raises(InputError, match=r"^vae-tiling: wan has no tiled VAE; valid only with --runtime diffusers or"):
        Runtime("wan", vae_tiling=True)
    with pytest.raises(InputError, match=r"^vae-dtype: 'float64' is invalid; valid: float32, bfloat16, float16$"):
        Runtime(vae_dtype="float64")
    with pytest.raises(InputError, match=r"^vae-dtype: wan runs its VAE in float32 only"):
        Runtime("wan", vae_dtype="bfloat16")


def test_a_measured_tiled_call_is_predicted_tiled(tmp_path: Path) -> None:
    """A stage measurement of a tiled call (``measure_stages.py --cases tiling``: its workload's runtime names the VAE
    settings) is predicted with them: the same seconds as ``report --gpu`` of that runtime, not the plain one's."""
    import json

    from hybrid.measured import measured_calls
    from hybrid.sizing import size_on_gpu

    sys.path.insert(0, str(Path(__file__).parents[1] / "calibration"))
    from measure_stages import RUNTIME_KEYS, TILING_CASES

    model, stage, size = TILING_CASES[0]
    rt = Runtime(size["runtime"], **{k: size[k] for k in RUNTIME_KEYS[1:]})
    w = Workload.of(model, width=size["width"], height=size["height"], frames=size["frames"], runtime=rt)
    case = {"model": model, "stage": stage, "workload": w.to_dict(), "seconds": 1.0, "activation_peak_bytes": 1}
    doc = {"gpu": "h200", "versions": {"torch": "2.11.0+cu130"}, "cases": [case]}
    (tmp_path / "h200").mkdir()
    (tmp_path / "h200" / "stages_tiling.json").write_text(json.dumps(doc))
    [call] = measured_calls(tmp_path)
    assert call.runtime == "lightx2v --vae-tiling --vae-dtype float32"
    one = Workload.of(model, width=832, height=480, frames=81, steps=1, cfg=False, runtime=rt)
    assert call.predicted_s == size_on_gpu(one, "h200").stages[stage].seconds
    plain = replace(one, runtime=Runtime("lightx2v", vae_dtype="float32"))
    assert call.predicted_s > 1.65 * size_on_gpu(plain, "h200").stages[stage].seconds  # x1.65 the FLOPs, smaller


def test_a_job_whose_vae_decode_sets_the_peak_is_told_to_tile_and_plan_offers_it() -> None:
    """The 1.3B at 1920x1088 on an RTX 4090 with offload peaks in its decode (40.2 GiB): the warning names
    --vae-tiling, which brings the job under the card's 24 GiB, and plan's changes include it."""
    from hybrid.plan import runtime_changes
    from hybrid.sizing import size_on_gpu

    w = Workload.of("wan2.1-t2v-1.3b", width=1920, height=1088, runtime=Runtime(offload=True))
    plain = size_on_gpu(w, "rtx4090")
    assert plain.peak_memory_bytes > 24 * 2**30
    assert any("its peak is vae_decode's, which --vae-tiling lowers" in line for line in plain.warnings)
    tiled = size_on_gpu(replace(w, runtime=Runtime(offload=True, vae_tiling=True)), "rtx4090")
    assert tiled.peak_memory_bytes < 12 * 2**30
    assert not any("--vae-tiling" in line for line in tiled.warnings)
    assert Runtime(offload=True, vae_tiling=True) in runtime_changes(w)
    assert not any(r.vae_tiling for r in runtime_changes(w) if r.name == "wan")  # its code has no tiled VAE


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["--runtime", "wan", "--vae-tiling"], ("vae-tiling: wan has no tiled VAE", "--runtime diffusers")),
        (["--runtime", "wan", "--vae-dtype", "bfloat16"], ("vae-dtype: wan runs its VAE in float32 only",)),
        (["--vae-dtype", "float64"], ("--vae-dtype", "float64")),
    ],
)
def test_the_vae_flags_refuse_in_one_line(argv: list[str], needles: tuple[str, ...], capsys: Any) -> None:
    from tests.conftest import one_line_error

    one_line_error(["report", *argv], capsys, *needles)


def test_verify_checks_each_vae_stage_tiled_too() -> None:
    """``wanmeter verify`` checks a VAE stage at the tiled shape as well, where the model's runtime tiles its VAE
    (320x192: two tiles across), and not for the original code's S2V, whose VAE is untiled."""
    from hybrid.verify import TILED_SHAPE, _workloads, check_stage

    tiled = [w for w in _workloads("wan2.1-t2v-1.3b", "vae_decode") if w.runtime.vae_tiling]
    assert [(w.width, w.height, w.frames) for w in tiled] == [(320, 192, 5)] == [tuple(TILED_SHAPE.values())[:3]]
    assert check_stage("vae_decode", tiled[0]).passed
    assert not any(w.runtime.vae_tiling for w in _workloads("wan2.1-t2v-1.3b", "diffusion_core"))
    assert not any(w.runtime.vae_tiling for w in _workloads("wan2.2-s2v-14b", "vae_decode"))
