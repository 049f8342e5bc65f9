"""DiTs streamed from host memory block by block. LightX2V's ``cpu_offload`` at ``offload_granularity`` ``block``
(``--runtime lightx2v --offload``): the DiT streamed
from host memory block by block (``WanOffloadTransformerInfer``: two CUDA block buffers, the next block copied in on a
load stream while one runs; ``pre_weight`` and the non-block weights moved in and out around each step's
``WanModel.infer``, both CFG passes); its T5 streamed too (``t5_cpu_offload``: one block buffer, each block loaded
before it runs, its embedding left on the GPU); CLIP and the VAE moved whole; its S2V DiT, which has no block
offloader, moved whole per clip. FastVideo's defaults (``--runtime fastvideo``, with or without ``--offload``):
``dit_layerwise_offload`` streams the blocks only (``fastvideo/hooks/layerwise_offload.py``: two on the GPU, every block
copied in each forward and dropped after), its embedders and head resident; the encoders and VAE moved whole."""

from __future__ import annotations

from dataclasses import replace

from hybrid.models.umt5 import UMT5_XXL
from hybrid.models.wan_dit import WAN21_T2V_14B
from hybrid.runtime import Runtime, Streaming
from hybrid.sizing import size_on_gpu
from hybrid.workload import Workload


def _job(**kw: object) -> Workload:
    return Workload.of("wan2.1-t2v-14b", width=832, height=480, runtime=Runtime("lightx2v", **kw))  # type: ignore[arg-type]


def test_the_dit_streams_block_by_block_and_a_14b_job_fits_a_24_gb_card() -> None:
    root, block, layers = WAN21_T2V_14B.fsdp_units()
    # the embedders and head 232,719,424 parameters, a block 351,394,304, 40 blocks: 14,288,491,584 in all
    assert (root, block, layers) == (232_719_424, 351_394_304, 40) and root + 40 * block == 14_288_491_584
    # UMT5-XXL: its embedding and final norm 1,050,152,960, a block 192,948,224, 24 blocks
    assert UMT5_XXL.fsdp_units() == (1_050_152_960, 192_948_224, 24)
    w = _job(offload=True)
    assert w.runtime.streams(w.spec, "transformer") == Streaming(blocks=2, root="step", overlapped=True)
    assert w.runtime.streams(w.spec, "text_encoder") == Streaming(blocks=1, root="kept", overlapped=False)
    assert [c for _, c, _ in w.runtime.moves(w.spec, w.spec.pipeline_def.stages)] == ["vae", "vae"]
    sized = size_on_gpu(w, "rtx4090")
    t5, dit = sized.stages["text_encoder"], sized.stages["diffusion_core"]
    # on the GPU while the DiT runs: T5's embedding (left there by its first call), the DiT's embedders and head and
    # two of its blocks, all bf16: 1,050,152,960 x 2 + (232,719,424 + 2 x 351,394,304) x 2 B
    assert dit.weights_bytes == 1_050_152_960 * 2 + 1_871_016_064 == 3_971_321_984
    # each of the 100 forwards (50 steps x CFG) copies the 40 blocks in, each step (WanModel.infer, both passes) the
    # embedders and head: 100 x 40 x 351,394,304 x 2 B + 50 x 232,719,424 x 2 B
    assert dit.host_copy_bytes == 100 * 40 * 351_394_304 * 2 + 50 * 232_719_424 * 2 == 2_834_426_374_400
    # the blocks' copies (1.25 s a forward at 22.4 GB/s) hide behind a forward's 12.4 s of compute; the embedders' and
    # head's 465,438,848 B do not: 50 x 465,438,848 / 22.4e9 s
    link = 22.4e9
    assert abs(dit.host_copy_seconds - 50 * 465_438_848 / link) < 1e-9
    # T5's two calls load its 24 blocks into one buffer before each runs: 2 x 24 x 192,948,224 x 2 B, all exposed
    assert (
        t5.host_copy_bytes == 2 * 24 * 192_948_224 * 2 and abs(t5.host_copy_seconds - t5.host_copy_bytes / link) < 1e-9
    )
    assert sized.fits and sized.peak_memory_bytes < 8 * 2**30
    whole = size_on_gpu(_job(), "rtx4090")
    assert not whole.fits  # every component resident: the 14B DiT alone is 26.6 GiB
    text = " ".join(sized.assumptions)
    assert "the DiT streams from host memory block by block (2 blocks on the GPU at a time)" in text
    assert "the text encoder streams from host memory block by block (1 block on the GPU at a time)" in text


def test_a_copy_slower_than_the_compute_is_exposed() -> None:
    w = _job(offload=True)
    slow = size_on_gpu(w, "rtx4090")
    assert slow.stages["diffusion_core"].host_copy_seconds < slow.stages["diffusion_core"].seconds
    # one step of a tiny job: a forward's compute far below its 28.6 GB of copies, which then set its time
    tiny = replace(w, width=64, height=64, frames=5, steps=1, cfg=False)
    dit = size_on_gpu(tiny, "rtx4090").stages["diffusion_core"]
    assert dit.host_copy_seconds > 14_288_491_584 * 2 / 22.4e9 * 0.9 and dit.seconds > dit.host_copy_seconds


def test_its_speech_to_video_dit_moves_whole() -> None:
    w = Workload.of("wan2.2-s2v-14b", runtime=Runtime("lightx2v", offload=True))
    assert not w.runtime.streams(w.spec, "transformer")
    assert "transformer" in [c for _, c, _ in w.runtime.moves(w.spec, w.spec.pipeline_def.stages)]


def test_fastvideo_streams_the_blocks_by_default_and_keeps_the_rest_of_its_dit() -> None:
    root, block, layers = WAN21_T2V_14B.fsdp_units()
    w = Workload.of("wan2.1-t2v-14b", runtime=Runtime("fastvideo"))
    assert w.runtime.offloading and not w.runtime.offload  # its defaults: check_fastvideo_args
    assert w.runtime.streams(w.spec, "transformer")
    sized = size_on_gpu(w, "h100-sxm")
    told = size_on_gpu(replace(w, runtime=Runtime("fastvideo", offload=True)), "h100-sxm")
    assert sized.offload and (sized.seconds, sized.peak_memory_bytes) == (told.seconds, told.peak_memory_bytes)
    dit, decode = sized.stages["diffusion_core"], sized.stages["vae_decode"]
    # the DiT's stage: its embedders and head (kept for the whole job) and two blocks, bf16
    assert dit.weights_bytes == (root + 2 * block) * 2
    # 100 forwards copy the 40 blocks each, never the embedders and head: 100 x 40 x 351,394,304 x 2 B
    assert dit.host_copy_bytes == 100 * layers * block * 2 == 2_811_154_432_000 and dit.host_copy_seconds == 0.0
    # the VAE's stage holds the DiT's embedders and head beside the VAE it moved in (float32)
    vae = w.spec.parameter_counts()["vae"] * 4
    assert decode.weights_bytes == root * 2 + vae
