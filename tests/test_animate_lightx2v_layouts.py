"""Wan2.2-Animate on several GPUs under LightX2V (``lightx2v/models/networks/wan/infer/animate/transformer_infer.py``
``infer_post_adapter`` and ``wan_animate_runner.py``, f8aee98; its configs/wan22/wan_animate_8gpu.json: Ulysses 8):
diffusers' class has no context-parallel plan, so its face adapters are walked as LightX2V runs them on a rank: this
rank's queries gathered from every rank, the attention and ``to_out`` over all the tokens, this rank's chunk added;
and the parallel VAE splits the decode and every encode through the wrapper's ``encode``."""

from __future__ import annotations

import pytest

from hybrid.deployment import Deployment
from hybrid.dtypes import BF16
from hybrid.errors import InputError
from hybrid.models.wan_dit import dit_rows
from hybrid.rows import OpGroup
from hybrid.runtime import Runtime
from hybrid.sizing import size_on_gpu, untraced_ops
from hybrid.workload import Workload
from tests.wan_original import _by_module_op

EIGHT = Deployment(gpus=8, ulysses=8)


def _by_module(groups: list[OpGroup]) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    """(calls, FLOPs, bytes read, bytes written) by (module, op), as the original-code tests sum a trace."""
    return _by_module_op([row for g in groups for row in g.expand()])


def test_a_ranks_face_adapter_gathers_the_queries_and_attends_over_every_token() -> None:
    w = Workload.of("wan2.2-animate-14b", width=832, height=480, runtime=Runtime("lightx2v"))
    one, split = w.shape(), w.shape(EIGHT)
    cfg = w.spec.transformer
    d = cfg.inner_dim  # 5120
    tokens = split.dit_tokens  # (1 + 20) latent frames x 30 x 52 = 32,760
    assert tokens == 21 * 30 * 52 and split.local_tokens == tokens // 8
    whole, rank = _by_module(dit_rows(cfg, one)), _by_module(dit_rows(cfg, split))
    fa = "face_adapter.0"
    # to_q on this rank's tokens; to_out, the attention and norm_q over all of them
    assert rank[(f"{fa}.to_q", "aten.addmm")][1] * 8 == whole[(f"{fa}.to_q", "aten.addmm")][1] > 0
    for key in (
        (f"{fa}.to_out", "aten.addmm"),
        (fa, "aten.scaled_dot_product_attention"),
        (f"{fa}.norm_q", "aten.rms_norm"),
    ):
        assert key in rank and rank[key][1:] == whole[key][1:], key
    # to_out: 2 x 32,760 tokens x 5120 x 5120 on every rank
    assert rank[(f"{fa}.to_out", "aten.addmm")][1] == 2 * tokens * d * d == 1_717_567_488_000
    # the gather: 8 empty_like outputs of this rank's queries, all_gather (7 chunks in, 7 out), one join
    q = split.local_tokens * d * BF16
    assert rank[(fa, "c10d.allgather_")][2:] == (7 * q, 7 * q)
    assert rank[(fa, "aten.cat")][2:] == (8 * q, 8 * q)
    assert (fa, "c10d.allgather_") not in whole and (fa, "aten.cat") not in whole


def test_lightx2v_runs_animate_on_several_gpus_and_splits_its_vae() -> None:
    w = Workload.of("wan2.2-animate-14b", frames=241, runtime=Runtime("lightx2v"))
    one, eight = size_on_gpu(w, "h100-sxm"), size_on_gpu(w, "h100-sxm", deployment=EIGHT)
    assert w.shape(EIGHT).vae_grid == (2, 4)
    for stage in ("reference_encode", "vae_encode", "vae_decode"):
        assert eight.stages[stage].comm_bytes_per_rank > 0, stage
        assert untraced_ops(w.spec.pipeline_def.stage(stage), w.spec, w.shape(EIGHT)), stage
    assert eight.stages["vae_encode"].seconds < one.stages["vae_encode"].seconds / 4
    assert eight.stages["diffusion_core"].seconds < one.stages["diffusion_core"].seconds / 4
    assert eight.stages["diffusion_core"].comm_seconds > 0
    with pytest.raises(InputError, match=r"gpus: wan2\.2-animate-14b runs on one GPU per job"):
        size_on_gpu(Workload.of("wan2.2-animate-14b"), "h100-sxm", deployment=EIGHT)  # diffusers: no plan


def test_an_uneven_split_is_padded_as_lightx2v_pads_it() -> None:
    """LightX2V pads the tokens to a multiple of its ranks (model.py _seq_parallel_pre_process): 848x480 makes
    21 x 30 x 53 = 33,390 tokens, 8,348 a rank on 4 (33,392 in all). The face adapter attends over the 33,390 true
    tokens and pads its output back to 33,392 before this rank's chunk."""
    w = Workload.of("wan2.2-animate-14b", width=848, height=480, runtime=Runtime("lightx2v"))
    s = w.shape(Deployment(gpus=4, ulysses=4))
    d = w.spec.transformer.inner_dim
    assert (s.dit_tokens, s.local_tokens) == (33_390, 8_348)
    rank = _by_module(dit_rows(w.spec.transformer, s))
    fa = "face_adapter.0"
    assert rank[(f"{fa}.to_q", "aten.addmm")][1] == 2 * 8_348 * d * d
    assert rank[(f"{fa}.to_out", "aten.addmm")][1] == 2 * 33_390 * d * d
    assert rank[(f"{fa}.norm_q", "aten.rms_norm")][3] == 33_390 * d * BF16
    assert rank[(fa, "aten.constant_pad_nd")][2:] == (33_390 * d * BF16, 33_392 * d * BF16)
    assert (fa, "aten.constant_pad_nd") not in _by_module(dit_rows(w.spec.transformer, w.shape()))
    sized = size_on_gpu(w, "h100-sxm", deployment=Deployment(gpus=4, ulysses=4))
    assert any("padded up: lightx2v pads the tokens" in a for a in sized.assumptions)
