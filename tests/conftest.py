"""Shared fixtures: tiny configs of the real classes (fast on a real CPU) and helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import pytest

from hybrid.geometry import CallShape
from hybrid.models.wan_animate2 import WAN_ANIMATE_2_14B, animate2_rows
from hybrid.pipelines import T2V
from hybrid.presets import PRESETS, ModelSpec, get_preset
from hybrid.trace import StageTrace, trace_stage
from hybrid.verify import TINY_SPEC
from hybrid.workload import Workload

STAGES = T2V.stage_names
"""The text-to-video pipeline's stages (the presets most tests run)."""


def constrained(model: str, ref_images: int = 0, **shape: Any) -> Workload:
    """A workload of ``model`` at ``shape``, within its pipeline's constraints (image-to-video's
    512 text tokens, VACE's batch 1; ``ref_images`` for VACE)."""
    return Workload.of(model=model, **get_preset(model).constrain(shape, ref_images))


SMALL = {"width": 256, "height": 128, "frames": 17, "text_len": 16, "batch": 2}
"""A small workload every preset is checked at besides its default (VACE with one reference image)."""

FULL_AND_SMALL: list[Workload] = [Workload.of(model=m) for m in sorted(PRESETS)] + [
    constrained(m, 1, **SMALL) for m in sorted(PRESETS)
]


def workload_id(w: Workload) -> str:
    return f"{w.model}-{'default' if w == Workload.of(model=w.model) else 'small'}"


def stage_params(workloads: list[Workload]) -> list[Any]:
    """``(workload, stage)`` pytest params: every stage of each workload's pipeline the tracer builds (Wan2.2-S2V's
    transformer, which no diffusers module builds, is checked against the original code: tests/test_wan_s2v.py)."""
    return [
        pytest.param(w, sd.name, id=f"{workload_id(w)}-{sd.name}")
        for w in workloads
        for sd in get_preset(w.model).pipeline_def.stages
        if sd.trace_key
    ]


# 64x48, 9 frames -> 3 latent frames of 6x8, 3*3*4 = 36 DiT tokens; 7 text tokens.
TINY_WORKLOAD = Workload.of(TINY_SPEC, width=64, height=48, frames=9, text_len=7)


@pytest.fixture
def tiny_spec() -> ModelSpec:
    return TINY_SPEC


@pytest.fixture
def tiny_workload() -> Workload:
    return TINY_WORKLOAD


@cache
def traced_preset(stage: str, workload: Workload) -> StageTrace:
    """Meta trace of a preset stage, shared by the test modules (full-size traces take seconds). Unbounded:
    the suites walk 84 preset stages in turn, more than a bounded cache kept, so each pass traced them all
    again (about 90 CPU-s a pass); all of them held take about 76 MiB."""
    return trace_stage(stage, workload)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """torch's intra-op pool at one thread for the test. Tiny modules on real tensors run thousands
    of small kernels, each a fork and join of a two-thread pool, and a join waits for a time slice
    whenever the machine is busy (verify --device cpu at two shapes, on a busy 2-core machine: 65 s
    of CPU with two threads, 20 s with one). Which aten ops run, with which shapes, and so every
    row and FLOP, does not depend on it."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def shared_meta_traces(monkeypatch: pytest.MonkeyPatch) -> None:
    """The library's plain meta traces (``trace_stage(stage, workload)``: meta device, the stage's
    dtype, one GPU; what ``wanmeter trace`` and ``hybrid.trace.trace`` run) come from
    :func:`traced_preset` for the test, so a CLI run shares the traces other tests made of the same
    workload. Any other trace (a device, a dtype, a deployment) runs as usual."""
    import hybrid.trace
    from hybrid.deployment import SINGLE, Deployment

    def shared(
        stage: str, workload: Workload, device: str = "meta", dtype: str | None = None, deployment: Deployment = SINGLE
    ) -> StageTrace:
        if device == "meta" and dtype is None and deployment == SINGLE:
            return traced_preset(stage, workload)
        return trace_stage(stage, workload, device=device, dtype=dtype, deployment=deployment)

    monkeypatch.setattr(hybrid.trace, "trace_stage", shared)


@pytest.fixture(scope="session")
def golden_documents() -> Callable[[str], dict[str, Any]]:
    """``hybrid.calibrate.golden_document``, each golden workload traced once per session (the
    golden-table tests and ``calibrate --check`` compare the same fresh traces)."""
    from hybrid.calibrate import golden_document

    return cache(golden_document)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of the CLI run in-process (argparse's own exits included)."""
    from hybrid.cli import main

    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors and --help
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def is_one_line(code: int, err: str, *needles: str) -> str:
    """The error line of exit ``code``: exit 2, one line of at most MAX_LINE_CHARS characters, no
    traceback, holding every needle."""
    from hybrid.errors import MAX_LINE_CHARS

    assert code == 2, err
    line = err.removesuffix("\n")
    assert "\n" not in line and "Traceback" not in line and line.startswith("wanmeter: error: "), line
    assert len(line) <= MAX_LINE_CHARS, len(line)
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    """:func:`is_one_line` of the CLI run on ``argv``."""
    code, _, err = run_cli(argv, capsys)
    return is_one_line(code, err, *needles)


def rows_by_op(shape: CallShape, mode: str) -> dict[tuple[str, str], tuple[int, int, int]]:
    """``(calls, FLOPs, bytes moved)`` per ``(module, op)`` of the published Wan-Animate-2 config's call of ``mode``
    at ``shape`` (:func:`hybrid.models.wan_animate2.animate2_rows`)."""
    out: dict[tuple[str, str], tuple[int, int, int]] = {}
    for g in animate2_rows(WAN_ANIMATE_2_14B, shape, mode, "x"):
        calls, flops, moved = out.get((g.module, g.op), (0, 0, 0))
        n = g.calls * g.repeat
        moved += (g.bytes_read_per_call + g.bytes_written_per_call) * n
        out[(g.module, g.op)] = (calls + n, flops + g.flops, moved)
    return out
