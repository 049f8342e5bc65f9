"""Sweeps: the analytic report over a grid of workloads, as one table (one row per workload)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hybrid.models import get_preset
from hybrid.report import PipelineReport, estimate
from hybrid.rows import STAGES
from hybrid.workload import Workload

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

KNOBS: tuple[str, ...] = ("model", "size", "frames", "steps", "batch", "text_len", "cfg")
SWEEP_COLUMNS: tuple[str, ...] = (
    "model", "width", "height", "frames", "steps", "batch", "text_len", "cfg",
    *(f"{s}_flops" for s in STAGES), "total_flops",
)  # fmt: skip


@dataclass(frozen=True)
class Grid:
    """Values per knob; ``sizes`` empty means each model's native size."""

    models: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...] = ()
    frames: tuple[int, ...] = (81,)
    steps: tuple[int, ...] = (50,)
    batch: tuple[int, ...] = (1,)
    text_len: tuple[int, ...] = (512,)
    cfg: tuple[bool, ...] = (True,)

    def workloads(self) -> list[Workload]:
        """Every combination, models outermost, validated."""
        out = []
        for model in self.models:
            preset = get_preset(model)
            sizes = self.sizes or ((preset.default_width, preset.default_height),)
            for (w, h), f, s, b, t, c in itertools.product(
                sizes, self.frames, self.steps, self.batch, self.text_len, self.cfg
            ):
                out.append(Workload(model=model, width=w, height=h, frames=f, steps=s, batch=b, text_len=t, cfg=c))
        return out

    def varying(self) -> list[str]:
        """Knobs with more than one value (the axes of the scaling plots)."""
        counts = {
            "model": len(self.models), "size": len(self.sizes), "frames": len(self.frames),
            "steps": len(self.steps), "batch": len(self.batch), "text_len": len(self.text_len), "cfg": len(self.cfg),
        }  # fmt: skip
        return [k for k in KNOBS if counts[k] > 1]


def sweep(grid: Grid) -> list[PipelineReport]:
    """One analytic report per workload of ``grid``."""
    return [estimate(w) for w in grid.workloads()]


def sweep_records(reports: Sequence[PipelineReport]) -> list[dict[str, Any]]:
    """One flat record per report (FLOPs as exact ints), columns :data:`SWEEP_COLUMNS`."""
    out = []
    for r in reports:
        w = r.workload
        rec: dict[str, Any] = {
            "model": r.model, "width": w.width, "height": w.height, "frames": w.frames, "steps": w.steps,
            "batch": w.batch, "text_len": w.text_len, "cfg": w.cfg,
        }  # fmt: skip
        for s in STAGES:
            rec[f"{s}_flops"] = r.stages[s].flops
        rec["total_flops"] = r.total_flops
        out.append(rec)
    return out


def sweep_frame(reports: Sequence[PipelineReport]) -> pd.DataFrame:
    """:func:`sweep_records` as a DataFrame (FLOP columns as Python ints: no overflow)."""
    import pandas as pd

    frame = pd.DataFrame.from_records(sweep_records(reports), columns=list(SWEEP_COLUMNS))
    for col in SWEEP_COLUMNS:
        if col.endswith("_flops"):
            frame[col] = frame[col].astype(object)
    return frame
