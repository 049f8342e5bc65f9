"""The sinks of a walk: one walk told to each gives rows, terms, components and peaks that agree."""

from __future__ import annotations

import pytest

from hybrid.rows import expand
from hybrid.sinks import Components, Peak, Rows, Sink, TermSink
from hybrid.timing import roofline_terms


def _walk(sink: Sink) -> None:
    """A toy forward: an embedding, three alike blocks that each keep a 10-byte state, a head."""
    sink.op("embed", "aten.embedding", "embedding", 8, 16)
    sink.alloc(16)

    def block(s: Sink) -> None:
        s.op("proj", "aten.addmm", "matmul", 40, 20, flops=100)
        s.alloc(20)
        s.transient(50)  # on top of the 16 + 10 k + 20 live here
        s.op("attn", "aten.scaled_dot_product_attention", "attention", 20, 10, flops=30, component="core")
        s.alloc(10)  # kept
        s.free(20)

    sink.repeat(3, "blocks.{i}", block)
    sink.op("head", "aten.mm", "matmul", 10, 4, flops=7, calls=2)
    sink.alloc(4)


def test_rows_scope_a_repeat_under_its_pattern() -> None:
    sink = Rows("stage")
    _walk(sink)
    assert [(g.module, g.repeat, g.calls, g.component) for g in sink.out] == [
        ("embed", 1, 1, ""),
        ("blocks.{i}.proj", 3, 1, ""),
        ("blocks.{i}.attn", 3, 1, "core"),
        ("head", 1, 2, ""),
    ]
    assert [r.module for r in expand(sink.out)][1:4] == ["blocks.0.proj", "blocks.1.proj", "blocks.2.proj"]


def test_a_repeat_from_a_later_index_and_a_nested_scope() -> None:
    sink = Rows("stage")
    sink.repeat(2, "layers.{i}", lambda s: s.repeat(1, "ffn", lambda t: t.op("wo", "aten.mm", "matmul", 1, 1)), start=1)
    assert [r.module for r in expand(sink.out)] == ["layers.1.ffn.wo", "layers.2.ffn.wo"]


def test_terms_of_the_walk_equal_the_roofline_terms_of_its_rows() -> None:
    rows, terms = Rows("stage"), TermSink()
    _walk(rows)
    _walk(terms)
    assert terms.freeze() == roofline_terms(rows.out)


def test_components_sum_the_flops_by_component() -> None:
    sink = Components(lambda module, op: module.split(".")[0])
    _walk(sink)
    # 3 blocks x 100 FLOPs of proj; the attention names its own component; the head runs twice
    assert sink.out == {"blocks": 300, "core": 90, "head": 14}


def test_peak_of_a_repeat_is_in_its_last_module_when_each_keeps_a_state() -> None:
    sink = Peak()
    _walk(sink)
    # the third block: 16 + 2 x 10 kept + 20 + 10
    assert sink.fused == 16 + 20 + 20 + 10
    # its transient: 16 + 20 kept + 20 + 50
    assert sink.materialized == 16 + 20 + 20 + 50
    assert sink.live == 16 + 30 + 4


@pytest.mark.parametrize("times", [0, 1, 5])
def test_peak_of_a_repeat_equals_the_unrolled_walk(times: int) -> None:
    def block(s: Sink) -> None:
        s.alloc(7)
        s.alloc(3)
        s.free(7)

    folded, unrolled = Peak(), Peak()
    folded.alloc(1)
    unrolled.alloc(1)
    folded.repeat(times, "b.{i}", block)
    for _ in range(times):
        block(unrolled)
    assert (folded.fused, folded.materialized, folded.live) == (unrolled.fused, unrolled.materialized, unrolled.live)


def test_a_compiled_walk_fuses_each_run_of_memory_bound_ops_between_flop_ops() -> None:
    from hybrid.sinks import FusedTermSink

    sink = FusedTermSink()
    # a norm and a modulation: read 100, write 50; read 60 (50 of it the norm's output), write 50
    sink.op("norm1", "aten.native_layer_norm", "norm", 100, 50)
    sink.op("", "aten.view", "view", 0, 0)  # a view neither costs nor cuts the run
    sink.op("", "aten.mul", "elementwise", 60, 50)
    sink.op("attn.to_q", "aten.mm", "matmul", 50, 50, flops=1000, dims=(1, 5, 5, 10))  # cuts the run
    sink.op("", "aten.add", "elementwise", 40, 20)  # a run of one op: unchanged
    sink.op("", "aten.clone", "movement", 20, 20, calls=2)  # other calls: a run of its own
    sink.op("", "c10d.all_to_all", "collective", 20, 20, dims=(0,))
    sink.op("", "aten.mul", "elementwise", 20, 20)

    def block(s: Sink) -> None:  # a repeated block's runs stay inside it
        s.op("", "aten.mul", "elementwise", 8, 4)
        s.op("", "aten.add", "elementwise", 12, 4)

    sink.repeat(3, "blocks", block)
    terms = sink.freeze()
    # fused, per run: 100 + (60 - 50) read + 50 written = 160; 40 + 20 = 60; 2 x 40; 40; the block's 8 + (12 - 4)
    # + 4 = 20, three times: 160 + 60 + 80 + 40 + 60 = 400 bytes over 1 + 1 + 2 + 1 + 3 = 8 kernels
    assert terms == (
        ("matmul", 1000, 100, 1, (1, 5, 5, 10)),
        ("collective", 0, 40, 1, (0,)),
        ("fused", 0, 400, 8, ()),
    )
