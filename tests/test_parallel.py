"""Multi-GPU deployments: layouts and their validation, one rank's closed-form rows against diffusers'
context parallelism traced in a fake process group, collective volumes."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from hybrid import ops
from hybrid.deployment import Deployment
from hybrid.presets import get_preset
from hybrid.rows import aggregate_costs, expand
from hybrid.runtime import Runtime
from hybrid.timing import collective_dims
from hybrid.verify import check_parallel, reference_workload
from hybrid.workload import Workload


def test_permute_copies_is_torchs_contiguity() -> None:
    import torch

    rng = random.Random(0)
    for _ in range(2000):
        shape = [rng.choice((1, 1, 2, 3, 4)) for _ in range(rng.randint(1, 5))]
        perm = list(range(len(shape)))
        rng.shuffle(perm)
        copies = not torch.empty(shape, device="meta").permute(perm).is_contiguous()
        assert ops.permute_copies(shape, perm) == copies, (shape, perm)


def test_collective_volumes() -> None:
    # all-to-all keeps 1/P: 7/8 of 96,768,000 bytes each way; all-gather sends its x to 7 others
    assert ops.collective_bytes("all_to_all_single", 8, 96_768_000) == (84_672_000, 84_672_000)
    assert ops.collective_bytes("all_gather_into_tensor", 8, 1000) == (7000, 7000)
    assert ops.collective_bytes("reduce_scatter_tensor", 4, 1000) == (750, 750)
    assert ops.collective_bytes("all_reduce", 4, 1000) == (1500, 1500)
    assert ops.collective_bytes("all_gather_into_tensor", 1, 1000) == (0, 0)
    with pytest.raises(ValueError, match="collective: unknown 'broadcast'"):
        ops.collective_bytes("broadcast", 2, 1)


@pytest.mark.parametrize(
    ("deployment", "runtime", "message"),
    [
        (Deployment(gpus=7, ulysses=7), Runtime(), r"ulysses: 7 does not divide the 40 attention heads .* 1, 2, 4, 5"),
        (Deployment(gpus=8, ulysses=4), Runtime(), r"gpus: ulysses x ring x cfg-parallel = 4 x 1 x 1 = 4, not the 8"),
        (Deployment(gpus=2, cfg_parallel=2), Runtime(), r"cfg-parallel: no runtime modelled here runs it .*LightX2V"),
        (Deployment(gpus=2, ulysses=2, fsdp=("dit",)), Runtime(), r"fsdp: the diffusers runtime has no FSDP"),
        (Deployment(gpus=2, ulysses=2, fsdp=("vae",)), Runtime("wan"), r"fsdp: unknown component 'vae'"),
        (Deployment(gpus=0), Runtime(), r"gpus: must be a whole number >= 1, got 0"),
        (Deployment(gpus=2, cfg_parallel=3), Runtime(), r"cfg-parallel: degree must be 1 or 2, got 3"),
    ],
)
def test_bad_layouts_one_line(deployment: Deployment, runtime: Runtime, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        deployment.check(get_preset("wan2.1-t2v-14b"), runtime)
    assert "\n" not in str(err.value)


def test_ring_is_refused_where_the_wan22_repository_has_none() -> None:
    spec = get_preset("wan2.2-t2v-a14b")
    Deployment(gpus=4, ulysses=2, ring=2).check(spec, Runtime())  # diffusers runs it
    with pytest.raises(ValueError, match=r"ring: the Wan2.2 repository runs Ulysses alone"):
        Deployment(gpus=4, ulysses=2, ring=2).check(spec, Runtime("wan"))


def test_diffusers_needs_the_degree_to_divide_the_tokens() -> None:
    d = Deployment(gpus=8, ulysses=8)
    d.check_tokens(75_600, Runtime())  # 14B 720p: 21 x 45 x 80 tokens
    d.check_tokens(32_761, Runtime("wan"))  # the Wan repositories pad
    with pytest.raises(ValueError, match=r"diffusers splits the 32,761 video tokens evenly and 8 does not divide"):
        d.check_tokens(32_761, Runtime())


def test_ulysses_traffic_of_the_14b_at_720p_by_hand() -> None:
    # N = 21 x 45 x 80 = 75,600 tokens, 9,450 per rank at P = 8; q, k, v and the output are each
    # 9,450 x 5,120 bf16 = 96,768,000 bytes, of which an all-to-all sends 7/8: 84,672,000; four per
    # layer: 338,688,000 bytes per rank per layer (facts: "about 339 MB")
    spec, d = get_preset("wan2.1-t2v-14b"), Deployment(gpus=8, ulysses=8)
    call = Workload.of(spec).shape(d)
    assert call.local_tokens == 9_450
    table = aggregate_costs(expand(spec.pipeline_def.stage("diffusion_core").closed_rows(spec, call) or []))
    a2a = table[("diffusion_core", "blocks.0.attn1", "_c10d_functional.all_to_all_single")]
    assert a2a == ("collective", 0, 338_688_000, 338_688_000, 4)
    # the head's output (9,450 x 64 bf16) to the 7 other ranks once per forward
    gather = table[("diffusion_core", "proj_out", "_c10d_functional.all_gather_into_tensor")]
    assert gather == ("collective", 0, 8_467_200, 8_467_200, 1)  # 7 x 9,450 x 64 x 2


@pytest.mark.parametrize(
    ("model", "shape", "ulysses", "ring"),
    [
        ("wan2.1-t2v-1.3b", {"width": 256, "height": 128, "frames": 17, "text_len": 16}, 4, 1),
        ("wan2.1-t2v-1.3b", {"width": 256, "height": 128, "frames": 17, "text_len": 16, "batch": 2}, 2, 1),
        ("wan2.1-t2v-1.3b", {"width": 256, "height": 128, "frames": 17, "text_len": 16, "batch": 2}, 1, 4),
        ("wan2.1-t2v-1.3b", {"width": 256, "height": 128, "frames": 17, "text_len": 16, "batch": 3}, 2, 2),
        ("wan2.1-i2v-14b-480p", {"width": 256, "height": 128, "frames": 17, "batch": 2}, 2, 2),
        ("wan2.2-ti2v-5b", {"width": 256, "height": 128, "frames": 17, "batch": 2}, 2, 1),
        ("wan2.2-ti2v-5b", {"width": 256, "height": 128, "frames": 17, "batch": 2}, 1, 2),
        ("wan2.1-t2v-14b", {}, 8, 1),
    ],
)
def test_one_rank_rows_equal_diffusers_context_parallelism_traced(
    model: str, shape: dict[str, int], ulysses: int, ring: int
) -> None:
    # compute rows (FLOPs, bytes) and collectives (op, bytes sent and received, calls) per (module, op)
    w = reference_workload(model, shape) if shape else Workload.of(model=model)
    check = check_parallel("diffusion_core", w, Deployment(gpus=ulysses * ring, ulysses=ulysses, ring=ring))
    assert check.passed, check.detail["mismatches"]
    a2a = {"_c10d_functional.all_to_all_single"} if ulysses > 1 else set()
    assert set(check.detail["collectives"]) == {"_c10d_functional.all_gather_into_tensor", *a2a}


def test_ulysses_peak_of_the_14b_at_720p_by_hand() -> None:
    # at attn1 under Ulysses 8: the float32 modulation (6 x 5,120 x 4 = 122,880), its bf16 copy
    # (61,440) and temb (10,240); the float32 rotary tables of all 75,600 tokens (2 x 75,600 x 128 x 4
    # = 77,414,400); the rest of the patch-embedded video the rank's view keeps alive
    # ((75,600 - 9,450) x 5,120 x 2 = 677,376,000); the text (512 x 5,120 x 2 = 5,242,880); the block
    # input, its norm, q, k, v (5 x 96,768,000) and the three laid-out and three exchanged q, k, v
    # (6 x 96,768,000): 1,824,675,840
    spec, d = get_preset("wan2.1-t2v-14b"), Deployment(gpus=8, ulysses=8)
    call = Workload.of(spec).shape(d)
    expected = 122_880 + 61_440 + 10_240 + 77_414_400 + 677_376_000 + 5_242_880 + 11 * 96_768_000
    assert spec.pipeline_def.stage("diffusion_core").closed_peak(spec, call) == expected == 1_824_675_840


def test_ulysses_comm_seconds_of_the_14b_at_720p_by_hand() -> None:
    # per forward a rank sends 40 layers x 338,688,000 (all-to-alls) + 8,467,200 (the head's gather)
    # = 13,555,987,200 bytes in 161 calls, each kind at its measured bus bandwidth (kernels.collective_fraction):
    # all-to-all 334.9 GB/s (4 x H100 SXM, 500 MiB, flat beyond), the gather at its ring kin's on the H200
    # (same NVLink 4 family, 8 ranks) 365.6/450 of the H100's 450 GB/s; plus 20 us per call; 100 forwards
    from hybrid.sizing import size_on_gpu

    spec = get_preset("wan2.1-t2v-14b")
    sized = size_on_gpu(Workload.of(spec), "h100-sxm", deployment=Deployment(gpus=8, ulysses=8))
    dc = sized.stages["diffusion_core"]
    assert dc.comm_bytes_per_rank == 100 * 13_555_987_200
    per_forward = 40 * 338_688_000 / 334.9e9 + 8_467_200 / (365.6 / 450 * 450e9) + 161 * 20e-6
    assert dc.comm_seconds == pytest.approx(100 * per_forward, rel=1e-12)
    assert sized.stages["vae_decode"].comm_seconds == 0.0 and sized.gpu_seconds == pytest.approx(8 * sized.seconds)
    doc = sized.to_dict()
    assert doc["deployment"] == {"gpus": 8, "ulysses": 8, "ring": 1, "cfg_parallel": 1, "fsdp": []}
    assert doc["stages"]["diffusion_core"]["comm_bytes_per_rank"] == 1_355_598_720_000
    assert doc["gpu"]["gpu_link"]["bytes_per_s"] == 360e9


def test_fsdp_shards_the_dit_and_gathers_it_every_forward() -> None:
    # 14B on 8 GPUs with --fsdp dit under the Wan runtime: a rank stores 1/8 of the float32 DiT
    # (14,288,491,584 x 4 / 8 = 7,144,245,792 bytes) plus the bf16 root unit and one block
    # ((232,719,424 + 351,394,304) x 2 = 1,168,227,456); each forward all-gathers every unit:
    # it sends 7/8 of the bf16 weights, ceil(232,719,424 x 2 / 8) x 7 + 40 x ceil(351,394,304 x 2 / 8) x 7
    from hybrid.deployment import fsdp_shardings
    from hybrid.sizing import size_on_gpu

    spec, rt = get_preset("wan2.1-t2v-14b"), Runtime("wan")
    d = Deployment(gpus=8, ulysses=8, fsdp=("dit",))
    sharding = fsdp_shardings(spec, d, {"transformer": 14_288_491_584 * 4})["transformer"]
    assert (sharding.shard_bytes, sharding.gathered_bytes) == (7_144_245_792, 1_168_227_456)
    sent = 58_179_856 * 7 + 40 * 87_848_576 * 7
    gather = collective_dims("all_gather_into_tensor")  # the root unit's, then the 40 blocks' alike
    assert [(t[0], t[3], t[4]) for t in sharding.terms] == [("collective", 1, gather), ("collective", 40, gather)]
    assert sum(t[2] for t in sharding.terms) == 2 * sent
    sized = size_on_gpu(Workload.of(spec, runtime=rt), "h100-sxm", deployment=d)
    assert sized.stages["diffusion_core"].weights_bytes - 7_144_245_792 - 1_168_227_456 == (
        sized.stages["vae_decode"].weights_bytes - 7_144_245_792 - 1_168_227_456
    )
    assert sized.stages["diffusion_core"].weight_cast_bytes == 0  # FSDP gathers bf16: no autocast re-casts


def test_plan_ranks_every_valid_layout_within_a_second() -> None:
    import time

    from hybrid.plan import plan

    spec = get_preset("wan2.1-t2v-14b")
    t0 = time.perf_counter()
    p = plan(Workload.of(spec), "h100-sxm", 8)
    assert time.perf_counter() - t0 < 1.0
    # 1..8 GPUs, Ulysses x ring = the count, Ulysses dividing the 40 heads: 16 layouts; 3, 6 (x2)
    # and 7 refused for Ulysses
    assert len(p.ranked) == 16 and len(p.rejected) == 4
    assert p.best is not None and p.best.deployment == Deployment(gpus=8, ulysses=8)
    seconds = [c.sizing.seconds for c in p.ranked if c.sizing]
    assert seconds == sorted(seconds)
    by_cost = plan(Workload.of(spec), "h100-sxm", 8, "gpu-seconds")
    costs = [c.sizing.gpu_seconds for c in by_cost.ranked if c.sizing]
    assert costs == sorted(costs)


def test_cli_layouts_and_plan(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from hybrid.cli import main

    assert main(["report", "--gpu", "h100-sxm", "--gpus", "8", "--ulysses", "8", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["deployment"]["ulysses"] == 8 and doc["stages"]["diffusion_core"]["comm_seconds"] > 0
    assert doc["total"]["gpu_seconds"] == pytest.approx(8 * doc["total"]["seconds"])
    bad = [
        ["report", "--gpu", "h100-sxm", "--gpus", "8", "--ulysses", "7"],
        ["report", "--gpu", "h100-sxm", "--gpus", "8", "--ulysses", "4"],
        ["report", "--gpu", "h100-sxm", "--gpus", "2", "--ulysses", "2", "--cfg-parallel"],
        ["report", "--gpu", "h100-sxm", "--gpus", "0"],
        ["report", "--gpus", "8", "--ulysses", "8"],
        ["plan", "--gpu", "h100-sxm", "--gpus", "0"],
    ]
    for argv in bad:
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's own errors
            code = e.code
        assert code == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "Traceback" not in err, (argv, err)
    assert main(["plan", "--model", "wan2.1-t2v-14b", "--gpu", "h100-sxm", "--gpus", "8", "--format", "json"]) == 0
    plan_doc = json.loads(capsys.readouterr().out)
    assert plan_doc["schema"] == "wanmeter.plan/1" and plan_doc["best"] == "--gpus 8 --ulysses 8"


def test_trace_one_rank_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from hybrid.cli import main
    from hybrid.schemas import problem

    out = tmp_path / "rank.json"
    argv = ["trace", "--model", "wan2.1-t2v-1.3b", "--size", "256x128", "--frames", "17", "--stage", "diffusion_core"]
    assert main([*argv, "--gpus", "4", "--ulysses", "4", "--format", "json", "-q", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert problem(doc) is None and doc["deployment"]["ulysses"] == 4
    rows = doc["stages"]["diffusion_core"]["rows"]
    a2a = [r for r in rows if r["op"] == "_c10d_functional.all_to_all_single"]
    # 30 layers x 4 all-to-alls of q, k, v and the output, each in its layer's attn1
    assert sum(r["calls"] for r in a2a) == 120 and {r["category"] for r in a2a} == {"collective"}
    assert main([*argv, "--gpus", "4", "--ulysses", "4", "-q"]) == 0
    assert "the rank sends" in capsys.readouterr().out
    assert main([*argv, "--gpus", "4", "--ulysses", "3", "--ring", "1"]) == 2  # 3 x 1 is not 4


def test_fsdp_gathers_hide_behind_the_previous_blocks_compute() -> None:
    # FSDP1 as wan/distributed/fsdp.py sets it up: the root's and the first block's gathers waited on whole, a later
    # block's only where it outlasts the previous block's compute (compute / 40 per block)
    from hybrid.deployment import fsdp_shardings
    from hybrid.sizing import fsdp_exposed
    from hybrid.timing import Machine, terms_time

    spec = get_preset("wan2.1-t2v-14b")
    sharding = fsdp_shardings(spec, Deployment(gpus=8, ulysses=8, fsdp=("dit",)), {"transformer": 1})["transformer"]
    machine = Machine(1e15, 3e12, {"matmul": 0.8, "attention": 0.5, "convolution": 0.8, "memory": 0.8},
                      link_bytes_per_s=100e9, collective_latency_s=20e-6)  # fmt: skip
    root, blocks = sharding.terms
    g_root, g_all = terms_time((root,), machine).seconds, terms_time((blocks,), machine).seconds
    g = g_all / 40  # one block's gather: 87,848,576 x 7 bytes at 100 GB/s + 20 us
    assert g == pytest.approx(87_848_576 * 7 / 100e9 + 20e-6, rel=1e-12)
    hidden = fsdp_exposed(sharding, machine, compute_seconds=40 * 2 * g)  # each block computes for 2 gathers
    assert hidden.seconds == pytest.approx(g_root + g, rel=1e-12) and hidden.comm_seconds == hidden.seconds
    short = fsdp_exposed(sharding, machine, compute_seconds=40 * g / 4)  # a block computes for a quarter of one
    assert short.seconds == pytest.approx(g_root + g + 39 * (g - g / 4), rel=1e-12)
    assert short.seconds < g_root + g_all  # never more than waiting on every gather
