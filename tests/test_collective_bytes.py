"""Collective bytes anchored outside the library: real 2- and 4-process gloo worlds on the CPU
(``tests/collective_world.py``) count what arrives at each rank from the others, and the closed
form's collective rows and :func:`hybrid.ops.collective_bytes` must equal those counts exactly.

The tracer records a collective's bytes with the same formula the closed form uses, so the two
agreeing says nothing about the formula. Here nothing is computed by it: a rank's received bytes
are the elements of a collective's output that another rank wrote (the collective issued again on
the input filled with the rank's number), and, separately, the output's split sizes or chunks.

Can it fail? The tracer-vs-closed-form check (``tests/test_parallel.py``) cannot see a wrong
factor: with all_to_all_single's ``(P-1)/P * x`` written as ``x`` (the whole input taken as
exchanged) its Ulysses 4 case still passes. Here that change fails four tests, e.g. ``ulysses 2,
rank 0: blocks.0.attn1 _c10d_functional.all_to_all_single: closed form (3456, 4), the world
(1728, 4)`` (received bytes, calls: ``P/(P-1)`` times what arrived, 2x at P=2, 4/3x at P=4) and
``assert 8 == 4`` for the formula on an 8-byte input. An all-gather counted as ``x`` instead of
``(P-1) x`` fails both P=4 tests (``assert 8 == 24``); at P=2 the two are the same number."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import torch

from hybrid import ops
from hybrid.deployment import Deployment
from hybrid.rows import aggregate_costs, expand
from hybrid.verify import TINY_SPEC
from hybrid.workload import Workload
from tests.collective_world import COUNTED, DitCase, run_world

TINY_4_HEADS = replace(
    TINY_SPEC, name="tiny-4-heads", transformer=replace(TINY_SPEC.transformer, num_attention_heads=4)
)
"""The tiny DiT with 4 heads of 12 (Ulysses 4 splits the heads): inner dimension 48."""

# 64x48, 9 frames: 3 latent frames of 6x8, 36 tokens after the 1x2x2 patch; 7 text tokens
SHAPE = (("width", 64), ("height", 48), ("frames", 9), ("text_len", 7))
BATCH_2 = (*SHAPE, ("batch", 2))

CASES: dict[int, tuple[DitCase, ...]] = {
    2: (
        DitCase("ulysses 2", TINY_SPEC, SHAPE, 2, 1),
        DitCase("ring 2 batch 2", TINY_SPEC, BATCH_2, 1, 2),
    ),
    4: (
        DitCase("ulysses 4", TINY_4_HEADS, SHAPE, 4, 1),
        DitCase("ring 4", TINY_4_HEADS, SHAPE, 1, 4),
        DitCase("ulysses 2 ring 2 batch 2", TINY_4_HEADS, BATCH_2, 2, 2),
    ),
}
NUMELS = (4, 48, 1_200)
"""Direct cases' input elements (each divisible by 4, the equal splits)."""
DTYPES = (torch.bfloat16, torch.float32)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[dict[str, Any]]]:
    """One forked gloo world of ``P`` ranks per ``P``, each running every case of its ``P``: each
    rank's counts."""
    return {p: run_world(p, tmp_path_factory.mktemp(f"world{p}"), CASES[p], NUMELS, DTYPES) for p in sorted(CASES)}


def closed_form_collectives(case: DitCase) -> dict[tuple[str, str], tuple[int, int, int]]:
    """One rank's closed-form collective rows of one forward: (module, op) -> (sent, received,
    calls); every rank's are the same (equal splits)."""
    workload = Workload.of(case.spec, **dict(case.shape))
    deployment = Deployment(gpus=case.ulysses * case.ring, ulysses=case.ulysses, ring=case.ring)
    sd = case.spec.pipeline_def.stage("diffusion_core")
    table = aggregate_costs(expand(sd.closed_rows(case.spec, workload.shape(deployment)) or []))
    return {(k[1], k[2]): (v[2], v[3], v[4]) for k, v in table.items() if v[0] == "collective"}


@pytest.mark.parametrize("size", sorted(CASES))
def test_every_rank_receives_what_the_closed_form_rows_say(worlds: dict[int, list[dict[str, Any]]], size: int) -> None:
    ranks = worlds[size]
    for case in CASES[size]:
        closed = closed_form_collectives(case)
        expected = {k: v[1:] for k, v in closed.items()}
        assert expected, case.name  # Ulysses: the all-to-alls and the head's gather; ring: the K/V gathers
        for rank, result in enumerate(ranks):
            run = result["dit"][case.name]
            assert run["dtype"] == "torch.bfloat16" and run["unhandled"] == [], (case.name, rank)
            counted = run["counts"]
            for key, (by_tag, by_split, _) in counted.items():
                assert by_tag == by_split, (case.name, rank, key)  # two counts of the same arrivals
            measured = {k: (v[0], v[2]) for k, v in counted.items()}
            wrong = [
                f"{module} {op}: closed form {expected.get((module, op))}, the world {measured.get((module, op))}"
                for module, op in sorted(set(expected) | set(measured))
                if expected.get((module, op)) != measured.get((module, op))
            ]  # (received bytes, calls)
            assert wrong == [], f"{case.name}, rank {rank}"
        for key, (sent, _, _) in closed.items():  # what the ranks send is what the ranks receive
            assert size * sent == sum(r["dit"][case.name]["counts"][key][0] for r in ranks), (case.name, key)


def test_ulysses_2_and_ring_4_by_hand(worlds: dict[int, list[dict[str, Any]]]) -> None:
    # Ulysses 2: 36 tokens, 18 a rank; q, k, v and the attention output are each 18 x 24 (2 heads
    # of 12) bf16 = 864 bytes on a rank, and the all-to-all brings in the other rank's half: 432,
    # four per block: 1,728; the head's output, 18 tokens x 64 (16 channels x the 1x2x2 patch) x 2
    # bytes = 2,304, arrives once from the other rank
    for result in worlds[2]:
        counts = result["dit"]["ulysses 2"]["counts"]
        assert counts[("blocks.0.attn1", "_c10d_functional.all_to_all_single")] == [1_728, 1_728, 4]
        assert counts[("proj_out", "_c10d_functional.all_gather_into_tensor")] == [2_304, 2_304, 1]
    # ring 4: 9 tokens a rank; its k and v side by side, 2 x 9 x 48 (4 heads of 12) x 2 = 1,728
    # bytes, gathered from the 3 others once per block: 5,184; the head's 9 x 64 x 2 = 1,152 x 3
    for result in worlds[4]:
        counts = result["dit"]["ring 4"]["counts"]
        assert counts[("blocks.0.attn1", "_c10d_functional.all_gather_into_tensor")] == [5_184, 5_184, 1]
        assert counts[("proj_out", "_c10d_functional.all_gather_into_tensor")] == [3_456, 3_456, 1]


@pytest.mark.parametrize("size", sorted(CASES))
def test_collective_bytes_formula_equals_what_arrives(worlds: dict[int, list[dict[str, Any]]], size: int) -> None:
    ranks = worlds[size]
    for rank, result in enumerate(ranks):
        assert len(result["direct"]) == len(NUMELS) * len(DTYPES)
        for case in result["direct"]:
            assert case["all_reduce_is_scatter_then_gather"], (rank, case)
            for collective in COUNTED:
                _, received = ops.collective_bytes(collective, size, case["input_bytes"])
                assert received == case["received"][collective], (rank, collective, case)
    for i, case in enumerate(ranks[0]["direct"]):
        for collective in COUNTED:  # what the ranks send is what the ranks receive
            sent, _ = ops.collective_bytes(collective, size, case["input_bytes"])
            assert size * sent == sum(r["direct"][i]["received"][collective] for r in ranks), (collective, case)
