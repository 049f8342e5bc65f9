"""Sweeps: the analytic report over a grid of workloads, as one table (one row per workload)."""

from __future__ import annotations

import gc
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from hybrid.errors import InputError
from hybrid.pipelines import STAGE_NAMES
from hybrid.presets import PRESETS, get_preset
from hybrid.report import PipelineReport, estimate
from hybrid.runtime import Runtime
from hybrid.workload import TEXT_LEN, Workload

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from hybrid.optimisations import Optimisation

MAX_ROWS = 10_000
"""The most rows (workloads) a sweep makes unless told more (``max_rows``, ``--max-rows``): 10,000
reports take about 0.33 s, sized on a GPU about 1.9 s (README); a million took 42 s and 3.9 GB."""
KNOBS: tuple[str, ...] = ("model", "size", "frames", "steps", "batch", "text_len", "cfg", "audio_seconds")
WORKLOAD_COLUMNS: tuple[str, ...] = ("model", "width", "height", "frames", "steps", "batch", "text_len", "cfg")
RANGE_COLUMNS: tuple[str, ...] = ("total_seconds_low", "total_seconds_high", "range_evidence")
"""A sized row's range of ``total_seconds`` (a report's ``total.seconds_range`` ``low`` and ``high``;
empty where there is none) and its evidence (the range's ``basis``, or why there is no range)."""


def sweep_stages(reports: Sequence[PipelineReport]) -> tuple[str, ...]:
    """The stages of the reports' pipelines, in execution order (a stage a pipeline lacks costs 0)."""
    present = {s for r in reports for s in r.stages}
    return tuple(s for s in STAGE_NAMES if s in present)


def has_audio(reports: Sequence[PipelineReport]) -> bool:
    """Whether a report is of a speech-to-video job: the sweep's rows and table then carry the audio's length (the
    others' cell empty)."""
    return any(r.workload.audio_seconds is not None for r in reports)


def sweep_columns(reports: Sequence[PipelineReport]) -> list[str]:
    """Columns of :func:`sweep_records`: the workload, FLOPs per stage and in total; with ``--gpu``
    also seconds per stage and in total, the total's range (:mod:`hybrid.ranges`) and what it rests
    on, peak resident bytes and whether it fits."""
    stages = sweep_stages(reports)
    audio = ("audio_seconds",) if has_audio(reports) else ()
    columns = [*WORKLOAD_COLUMNS, *audio, *(f"{s}_flops" for s in stages), "total_flops"]
    if reports and reports[0].gpu is not None:
        columns += [*(f"{s}_seconds" for s in stages), "total_seconds", *RANGE_COLUMNS, "peak_memory_bytes", "fits"]
    return columns


@dataclass(frozen=True)
class Grid:
    """Values per knob; ``sizes`` empty means each model's native size."""

    models: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...] = ()
    frames: tuple[int | None, ...] = (None,)
    """``None``: each model's default frames."""
    steps: tuple[int | None, ...] = (None,)
    """``None``: each model's recommended steps."""
    batch: tuple[int, ...] = (1,)
    text_len: tuple[int, ...] = (TEXT_LEN,)
    cfg: tuple[bool | None, ...] = (None,)
    """``None``: each model's default (CFG on; Wan-Animate's guidance 1.0: off)."""
    audio_seconds: tuple[float | None, ...] = (None,)
    """Speech-to-video models' audio lengths (``None``: their default); the other models take none, and make one
    row each where this axis has several values."""
    runtime: Runtime | None = None
    """How every workload of the grid runs (:mod:`hybrid.runtime`); ``None``: each model's default runtime
    (:func:`hybrid.workload.default_runtime`: diffusers, the original repository's for Wan2.2-S2V)."""

    def _audio(self, model: str) -> tuple[float | None, ...]:
        """The audio lengths ``model`` is swept over: the axis for a speech-to-video model, else none."""
        return self.audio_seconds if get_preset(model).pipeline_def.audio else (None,)

    def rows(self) -> int:
        """How many workloads :meth:`workloads` makes (counted, not made); one line where an audio length is
        given and no model takes audio."""
        if self.audio_seconds != (None,) and not any(get_preset(m).pipeline_def.audio for m in self.models):
            speech = ", ".join(m for m, p in sorted(PRESETS.items()) if p.pipeline_def.audio)
            raise InputError(
                f"audio-seconds: none of the models takes audio; valid with speech-to-video presets ({speech})"
            )
        axes = (self.sizes or ((0, 0),), self.frames, self.steps, self.batch, self.text_len, self.cfg)
        return math.prod(len(axis) for axis in axes) * sum(len(self._audio(m)) for m in self.models)

    def workloads(self) -> list[Workload]:
        """Every combination, models outermost, validated."""
        self.rows()  # an audio axis no model takes is refused
        out = []
        for model in self.models:
            preset = get_preset(model)
            sizes = self.sizes or ((preset.default_width, preset.default_height),)
            for (w, h), f, s, b, t, c, a in itertools.product(
                sizes, self.frames, self.steps, self.batch, self.text_len, self.cfg, self._audio(model)
            ):
                out.append(Workload.of(preset, w, h, f, s, batch=b, text_len=t, cfg=c, runtime=self.runtime,
                                       audio_seconds=a))  # None: the preset's  # fmt: skip
        return out

    def varying(self) -> list[str]:
        """Knobs with more than one value (the axes of the scaling plots)."""
        counts = {
            "model": len(self.models), "size": len(self.sizes), "frames": len(self.frames),
            "steps": len(self.steps), "batch": len(self.batch), "text_len": len(self.text_len), "cfg": len(self.cfg),
            "audio_seconds": len(self.audio_seconds),
        }  # fmt: skip
        return [k for k in KNOBS if counts[k] > 1]


def sweep(
    grid: Grid,
    gpu: str | None = None,
    progress: Callable[[str], None] | None = None,
    host_flops: float | None = None,
    traced: bool = False,
    max_rows: int = MAX_ROWS,
    optimise: tuple[Optimisation, ...] = (),
) -> list[PipelineReport]:
    """One analytic report per workload of ``grid``; with ``gpu``, each also sized on that GPU, in
    closed form (each distinct per-call shape costed once), or with ``traced`` from one meta trace
    per distinct per-call shape (steps and CFG reuse it), its seconds with the range of its kind of
    run as ``report --gpu`` gives it (:func:`hybrid.ranges.with_range`: one band per kind). A grid
    of more than ``max_rows`` workloads is refused before any work (one line with its row count). With
    ``optimise`` (and ``gpu``) each row is the optimised job, as ``report --gpu --optimise`` gives it
    (its FLOPs and seconds; no range: the ranges rest on baselines)."""
    rows = grid.rows()
    if rows > max_rows:
        raise InputError(
            f"sweep: the grid has {rows:,} rows, more than the {max_rows:,} a sweep makes unless told more "
            f"(10,000 take about 2 s sized on a GPU; a million took 42 s and 3.9 GB); give --max-rows {rows} to "
            "make them"
        )
    if traced:  # each trace builds modules whose reference cycles the collector must free as the sweep goes
        return _sweep(grid, gpu, progress, host_flops, traced, optimise)
    with _collector_paused():
        return _sweep(grid, gpu, progress, host_flops, traced, optimise)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a sweep runs (the state it found restored after). A sweep
    keeps every report it makes, so each automatic collection walks all of them again: on the 10,000-workload
    sweep of ``bench/sizing_speed.py`` about 0.18 s of 2 s went to collections that found almost nothing (475
    objects in seven sweeps). Reference counting still frees everything a sweep drops; a traced sweep keeps the
    collector (:func:`sweep`)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _sweep(
    grid: Grid,
    gpu: str | None,
    progress: Callable[[str], None] | None,
    host_flops: float | None,
    traced: bool,
    optimise: tuple[Optimisation, ...],
) -> list[PipelineReport]:
    reports = [estimate(w) for w in grid.workloads()]
    if gpu is None:
        return reports
    from hybrid.hardware import get_gpu
    from hybrid.ranges import with_range
    from hybrid.sizing import CallTraces, load_calibration, size_on_gpu

    g = get_gpu(gpu)
    name = g.name
    cal = load_calibration(name)
    traces = CallTraces(progress) if traced else None
    out = []
    for r in reports:
        w = r.workload
        if optimise:
            from hybrid.optimisations import plan_of

            planned = plan_of(optimise, w, g)
            trace = traces(planned.workload) if traces is not None else None
            sized = size_on_gpu(planned.workload, name, cal, traced=trace, host_flops=host_flops,
                                optimisations=planned.transforms)  # fmt: skip
            out.append(replace(estimate(planned.workload), gpu=sized, optimised=planned))
            continue
        trace = traces(w) if traces is not None else None
        out.append(replace(r, gpu=with_range(size_on_gpu(w, name, cal, traced=trace, host_flops=host_flops))))
    return out


def sweep_records(reports: Sequence[PipelineReport]) -> list[dict[str, Any]]:
    """One flat record per report (FLOPs as exact ints), columns :func:`sweep_columns`."""
    from hybrid.ranges import range_evidence

    out = []
    stages = sweep_stages(reports)
    audio = has_audio(reports)
    for r in reports:
        w = r.workload
        rec: dict[str, Any] = {
            "model": r.model, "width": w.width, "height": w.height, "frames": w.frames, "steps": w.steps,
            "batch": w.batch, "text_len": w.text_len, "cfg": w.cfg,
        }  # fmt: skip
        if audio:
            rec["audio_seconds"] = w.audio_seconds
        for s in stages:
            rec[f"{s}_flops"] = r.stages[s].flops if s in r.stages else 0
        rec["total_flops"] = r.total_flops
        if r.gpu is not None:
            for s in stages:
                rec[f"{s}_seconds"] = r.gpu.stages[s].seconds if s in r.gpu.stages else 0.0
            rec["total_seconds"] = r.gpu.seconds
            rng = r.gpu.seconds_range
            rec["total_seconds_low"] = None if rng is None else rng["low"]
            rec["total_seconds_high"] = None if rng is None else rng["high"]
            rec["range_evidence"] = range_evidence(r.gpu, r.optimised is not None)
            rec["peak_memory_bytes"] = r.gpu.peak_memory_bytes
            rec["fits"] = r.gpu.fits
        out.append(rec)
    return out


def sweep_frame(reports: Sequence[PipelineReport]) -> pd.DataFrame:
    """:func:`sweep_records` as a DataFrame (FLOP columns as Python ints: no overflow)."""
    import pandas as pd

    columns = sweep_columns(reports)
    frame = pd.DataFrame.from_records(sweep_records(reports), columns=columns)
    for col in columns:
        if col.endswith("_flops"):
            frame[col] = frame[col].astype(object)
    return frame
