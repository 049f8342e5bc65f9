"""LightX2V's parallel VAE decode (``lightx2v/models/video_encoders/hf/wan/vae.py`` ``decode_dist_2d``, f8aee98):
with a parallel config every rank decodes one chunk of a 2-D grid of the latents, padded by 2 latents into each
neighbour, cuts the padding off and all-gathers every rank's frames (:attr:`hybrid.geometry.CallShape.vae_grid`); and
its encode of an image-to-video job's condition video (``wan_runner.py`` ``get_vae_encoder_output`` through
``encode_local_2d``): this rank's chunk of the video, padded by 1 latent (8 pixels), encoded, its latents cut and
all-gathered."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hybrid.deployment import Deployment
from hybrid.dtypes import BF16, F32
from hybrid.errors import InputError
from hybrid.models.wan_vae import (
    condition_encode_grid,
    parallel_vae_grid,
    vae_decode_groups,
    vae_decode_peak_bytes,
    vae_decode_rows,
    vae_encode_groups,
    vae_encode_peak_bytes,
    vae_encode_rows,
)
from hybrid.report import estimate
from hybrid.runtime import Runtime
from hybrid.sizing import size_on_gpu, untraced_ops
from hybrid.workload import Workload


@pytest.mark.parametrize(
    ("h", "w", "ranks", "grid"),
    [
        (60, 104, 8, (2, 4)),  # 480x832: 1x8 (60 vs 13), 2x4 (30 vs 26), 4x2 (15 vs 52); 8x1 does not divide 60
        (90, 160, 8, (2, 4)),  # 720x1280: 45 vs 40
        (60, 104, 3, (3, 1)),  # 104 is no multiple of 3
        (61, 103, 4, (1, 4)),  # nothing divides both: calculate_2d_grid's default
        (60, 104, 1, (1, 1)),
    ],
)
def test_the_grid_is_lightx2vs(h: int, w: int, ranks: int, grid: tuple[int, int]) -> None:
    assert parallel_vae_grid(h, w, ranks) == grid


def test_a_rank_decodes_its_padded_chunk_and_gathers_every_ranks_frames() -> None:
    w = Workload.of("wan2.1-t2v-14b", width=832, height=480, runtime=Runtime("lightx2v"))
    shape = w.shape(Deployment(gpus=8, ulysses=8))
    cfg = w.spec.vae
    assert shape.vae_grid == (2, 4) and cfg.compute_dtype == "bfloat16"
    lf = shape.latent_frames  # 21
    split = vae_decode_groups(cfg, 1, lf, 60, 104, (2, 4))
    tile = vae_decode_groups(cfg, 1, lf, 34, 30)  # 60 / 2 + 2 x 2 by 104 / 4 + 2 x 2 latents
    assert sum(g.flops for g in split) == sum(g.flops for g in tile)
    chunk = 3 * 81 * 240 * 208 * BF16  # this rank's frames once the padding is cut: 30 x 8 by 26 x 8 pixels
    gathered = [
        r for g in vae_decode_rows(cfg, 1, lf, 60, 104, (2, 4)) for r in g.expand() if r.op == "c10d.allgather_"
    ]
    assert [(r.bytes_read, r.bytes_written) for r in gathered] == [(7 * chunk, 7 * chunk)]
    # the peak: the tile's decode beside its float32 latents, or the gather (the list, the rows and the video,
    # beside this rank's chunk and the latents), whichever is higher
    sliced = 16 * lf * 34 * 30 * F32
    decoded = 3 * 81 * 34 * 8 * 30 * 8 * BF16
    expected = max(sliced + vae_decode_peak_bytes(cfg, 1, lf, 34, 30), sliced + decoded + chunk,
                   sliced + chunk + 3 * 8 * chunk)  # fmt: skip
    assert vae_decode_peak_bytes(cfg, 1, lf, 60, 104, grid=(2, 4)) == expected


def test_only_lightx2v_splits_and_only_wan21s_vae() -> None:
    d = Deployment(gpus=8, ulysses=8)
    light = Workload.of("wan2.1-t2v-14b", width=832, height=480, runtime=Runtime("lightx2v"))
    diffusers = replace(light, runtime=Runtime())
    one, eight = size_on_gpu(light, "h100-sxm"), size_on_gpu(light, "h100-sxm", deployment=d)
    assert eight.stages["vae_decode"].seconds < one.stages["vae_decode"].seconds / 4
    assert eight.stages["vae_decode"].comm_bytes_per_rank > 0
    assert diffusers.shape(d).vae_grid == (1, 1)
    sd = light.spec.pipeline_def.stage("vae_decode")
    assert untraced_ops(sd, light.spec, light.shape(d))
    # split over the ranks: its walk stands; on one GPU its bfloat16 norms do (tests/test_vae_ops.py), which in
    # float32 are diffusers' ops, so its trace stands
    assert untraced_ops(sd, light.spec, light.shape())
    fp32 = Workload.of("wan2.1-t2v-14b", width=832, height=480, runtime=Runtime("lightx2v", vae_dtype="float32"))
    assert untraced_ops(sd, fp32.spec, fp32.shape(d)) and not untraced_ops(sd, fp32.spec, fp32.shape())
    ti2v = Workload.of("wan2.2-ti2v-5b", runtime=Runtime("lightx2v"))  # Wan2.2's VAE: decoded whole
    assert ti2v.shape(d).vae_grid == (1, 1)
    whole = ti2v.spec.pipeline_def.stage("vae_decode")
    assert not untraced_ops(whole, ti2v.spec, ti2v.shape(d))  # its trace stands
    assert size_on_gpu(ti2v, "h100-sxm", deployment=d).stages["vae_decode"].seconds == (
        size_on_gpu(ti2v, "h100-sxm").stages["vae_decode"].seconds
    )


def test_a_rank_encodes_its_padded_chunk_of_the_i2v_condition_and_gathers_every_ranks_latents() -> None:
    w = Workload.of("wan2.1-i2v-14b-480p", width=832, height=480, runtime=Runtime("lightx2v"))
    d = Deployment(gpus=8, ulysses=8)
    shape, cfg = w.shape(d), w.spec.vae
    assert shape.vae_grid == (2, 4) and cfg.compute_dtype == "bfloat16"
    lf = shape.latent_frames  # 21
    split = vae_encode_groups(cfg, 1, lf, 480, 832, grid=(2, 4))
    tile = vae_encode_groups(cfg, 1, lf, 32 * 8, 28 * 8)  # (60 / 2 + 2 x 1) by (104 / 4 + 2 x 1) latents, in pixels
    assert sum(g.flops for g in split) == sum(g.flops for g in tile)
    chunk = 16 * lf * 30 * 26 * BF16  # this rank's latents once the padding is cut
    gathered = [r for g in vae_encode_rows(cfg, 1, lf, 480, 832, grid=(2, 4)) for r in g.expand() if "c10d" in r.op]
    assert [(r.bytes_read, r.bytes_written) for r in gathered] == [(7 * chunk, 7 * chunk)]
    # the peak: the tile's encode, or the encoded tile beside its cut copy, or the gather (the list, the rows and
    # the joined latents beside this rank's chunk), whichever is higher
    encoded = 16 * lf * 32 * 28 * BF16
    expected = max(vae_encode_peak_bytes(cfg, 1, lf, 32 * 8, 28 * 8), encoded + chunk, chunk + 3 * 8 * chunk)
    assert vae_encode_peak_bytes(cfg, 1, lf, 480, 832, grid=(2, 4)) == expected
    one, eight = size_on_gpu(w, "h100-sxm"), size_on_gpu(w, "h100-sxm", deployment=d)
    assert eight.stages["vae_encode"].seconds < one.stages["vae_encode"].seconds / 4
    assert eight.stages["vae_encode"].comm_bytes_per_rank > 0 == one.stages["vae_encode"].comm_bytes_per_rank
    sd = w.spec.pipeline_def.stage("vae_encode")
    assert untraced_ops(sd, w.spec, shape) and untraced_ops(sd, w.spec, w.shape())  # one GPU: its bfloat16 norms
    fp32 = replace(w, runtime=Runtime("lightx2v", vae_dtype="float32"))
    assert untraced_ops(sd, fp32.spec, fp32.shape(d)) and not untraced_ops(sd, fp32.spec, fp32.shape())
    assert any(a.startswith("vae_encode and vae_decode split 2 x 4 over the ranks") for a in eight.assumptions)
    diffusers = replace(w, runtime=Runtime())
    assert size_on_gpu(diffusers, "h100-sxm", deployment=d).stages["vae_encode"].seconds == (
        size_on_gpu(diffusers, "h100-sxm").stages["vae_encode"].seconds
    )


@pytest.mark.parametrize(
    ("h", "w", "ranks", "grid"),
    [
        (104, 60, 8, (2, 4)),  # 832x480 portrait: the first of 2x4, 4x2, 1x8, 8x1 dividing it (its decode: 4x2)
        (60, 104, 8, (2, 4)),
        (104, 60, 2, (1, 2)),  # 1x2 before 2x1 (its decode: 2x1, the squarer chunks)
        (104, 60, 5, (1, 5)),  # another count: its factor pairs, rows up to the root
    ],
)
def test_the_condition_encode_takes_run_vae_encoders_grid(h: int, w: int, ranks: int, grid: tuple[int, int]) -> None:
    assert condition_encode_grid(h, w, ranks) == grid


def test_a_portrait_condition_encodes_on_its_own_grid_and_a_size_no_grid_divides_is_refused() -> None:
    w = Workload.of("wan2.1-i2v-14b-480p", width=480, height=832, runtime=Runtime("lightx2v"))
    d = Deployment(gpus=8, ulysses=8)
    shape, cfg, sd = w.shape(d), w.spec.vae, w.spec.pipeline_def.stage("vae_encode")
    assert (shape.latent_height, shape.latent_width, shape.vae_grid) == (104, 60, (4, 2))  # the decode's
    # get_vae_encoder_output's chunks are 2 x 4: 52 x 15 latents, padded by one a side
    lf = shape.latent_frames
    assert sd.closed_rows(w.spec, shape) == sd.named(vae_encode_rows(cfg, 1, lf, 832, 480, grid=(2, 4)))
    assert sd.closed_rows(w.spec, shape) != sd.named(vae_encode_rows(cfg, 1, lf, 832, 480, grid=(4, 2)))
    sized = size_on_gpu(w, "h100-sxm", deployment=d)
    assert any(a.startswith("vae_encode split 2 x 4; vae_decode split 4 x 2 over the ranks") for a in sized.assumptions)
    # 832x480 (60 x 104 latents) on 5 ranks: 1x5 does not divide 104, and LightX2V pads the job's latents
    landscape = replace(w, width=832, height=480)
    with pytest.raises(
        InputError, match=r"gpus: LightX2V pads an image-to-video job's 60x104 latents to a grid of its"
    ):
        size_on_gpu(landscape, "h100-sxm", deployment=Deployment(gpus=5, ulysses=5))


def test_lightx2v_splits_s2vs_decodes_and_its_wrapper_encodes_and_encodes_the_condition_every_clip() -> None:
    """LightX2V's wan2.2_s2v runner (wan_s2v_runner.py, f8aee98) builds its VAE with the parallel config too: each
    clip's decode and every encode through the wrapper's ``encode`` (the reference, the motion frames, the -1s
    condition, which it encodes in every clip: build_cond_latents) split over the ranks, each chunk cut from the whole
    video; a pose video's clips go through ``vae_encoder.model.encode``, whole."""

    d = Deployment(gpus=8, ulysses=8)
    light = Workload.of("wan2.2-s2v-14b", runtime=Runtime("lightx2v"), audio_seconds=10)
    wan = replace(light, runtime=Runtime("wan"))
    assert light.segments == 2 and light.shape(d).vae_grid == (2, 4) and wan.shape(d).vae_grid == (1, 1)
    assert (light.shape().condition_encodes, wan.shape().condition_encodes) == (2, 1)
    cfg, s = light.spec.vae, light.shape()
    # one more 81-frame condition encode than the original's (the same reference and motion encodes)
    condition = sum(g.flops for g in vae_encode_groups(cfg, 1, (s.frames + 1 - 1) // 4 + 1, s.height, s.width))
    assert estimate(light).stages["vae_encode"].flops == estimate(wan).stages["vae_encode"].flops + condition
    one, eight = size_on_gpu(light, "h200"), size_on_gpu(light, "h200", deployment=d)
    for stage in ("vae_encode", "motion_encode", "vae_decode", "vae_decode_motion"):
        assert eight.stages[stage].seconds < one.stages[stage].seconds / 4, stage
        assert eight.stages[stage].comm_bytes_per_rank > 0, stage
        assert untraced_ops(light.spec.pipeline_def.stage(stage), light.spec, light.shape(d)), stage
    # the motion frames' chunk is cut from the whole 73-frame video (a copy, held to the return): it adds to the peak
    lf = 19  # (73 - 1) // 4 + 1
    cut = 3 * 73 * (s.latent_height // 2 + 2) * 8 * (s.latent_width // 4 + 2) * 8 * F32
    assert vae_encode_peak_bytes(cfg, 1, lf, s.height, s.width, grid=(2, 4), sliced=True) == (
        cut + vae_encode_peak_bytes(cfg, 1, lf, s.height, s.width, grid=(2, 4))
    )
    # with a pose video its clips' encodes run whole on every rank; the reference and motion buffer still split
    posed = replace(light, pose_video=True)
    assert posed.shape(d).condition_encodes == 2
    whole = size_on_gpu(posed, "h200", deployment=d).stages["vae_encode"].seconds
    assert eight.stages["vae_encode"].seconds < whole < size_on_gpu(posed, "h200").stages["vae_encode"].seconds
