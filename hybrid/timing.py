"""Time model: a per-op roofline over cost rows with efficiencies per op class.

Each row is compute-bound or memory-bound from its FLOPs and bytes::

    t_compute = flops / (peak_flops * efficiency[op_class])
    t_memory  = (bytes_read + bytes_written) / (peak_bandwidth * efficiency["memory"])
    t_row     = max(t_compute, t_memory) + calls * launch_overhead_s

Op classes: ``matmul`` (mm/addmm/bmm rows), ``attention`` (SDPA rows), ``convolution`` and
``memory`` (every zero-FLOP row that moves bytes; views cost nothing). Peaks and efficiencies are
data: peaks from a datasheet (:mod:`hybrid.hardware`) or measured, efficiencies from a calibration
run (:mod:`hybrid.measure`) recorded with its device, versions and date.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hybrid.rows import CostRow, OpGroup

OP_CLASSES: tuple[str, ...] = ("matmul", "attention", "convolution", "memory")
_CLASS_OF_CATEGORY = {"matmul": "matmul", "attention": "attention", "conv": "convolution"}


def op_class(row: CostRow) -> str | None:
    """The op class of a row; ``None`` for views (no time)."""
    if row.category == "view":
        return None
    return _CLASS_OF_CATEGORY.get(row.category, "memory")


@dataclass(frozen=True)
class Machine:
    """What the roofline divides by: compute peak (FLOP/s) for the stage's dtype, DRAM bytes/s,
    efficiencies per op class and a fixed cost per kernel launch."""

    peak_flops: float
    peak_bytes_per_s: float
    efficiency: Mapping[str, float]
    launch_overhead_s: float = 0.0

    def __post_init__(self) -> None:
        missing = [c for c in OP_CLASSES if c not in self.efficiency]
        if missing:
            raise ValueError(f"efficiency: missing op classes {missing}; need {', '.join(OP_CLASSES)}")
        bad = {c: e for c, e in self.efficiency.items() if not 0 < e <= 2}
        if bad:
            raise ValueError(f"efficiency: values must be in (0, 2], got {bad}")


@dataclass
class StageTime:
    """Predicted seconds of one stage call, by op class, and what bounds it."""

    seconds: float = 0.0
    compute_bound_seconds: float = 0.0
    memory_bound_seconds: float = 0.0
    by_class: dict[str, float] = field(default_factory=dict)

    @property
    def bound(self) -> str:
        """``compute`` or ``memory``: whichever kind of row takes most of the time."""
        return "compute" if self.compute_bound_seconds >= self.memory_bound_seconds else "memory"

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "bound": self.bound, "by_class": dict(self.by_class)}


def _seconds(cls: str, flops: int, moved: int, calls: int, machine: Machine) -> tuple[float, str]:
    t_mem = moved / (machine.peak_bytes_per_s * machine.efficiency["memory"])
    t_launch = calls * machine.launch_overhead_s
    if cls == "memory" or flops == 0:
        return t_mem + t_launch, "memory"
    t_comp = flops / (machine.peak_flops * machine.efficiency[cls])
    return max(t_comp, t_mem) + t_launch, "compute" if t_comp >= t_mem else "memory"


def row_seconds(row: CostRow, machine: Machine) -> tuple[float, str]:
    """``(seconds, "compute" | "memory")`` of one row (all its calls)."""
    cls = op_class(row)
    if cls is None:
        return 0.0, "memory"
    return _seconds(cls, row.flops, row.bytes_read + row.bytes_written, row.calls, machine)


def _add(out: StageTime, cls: str, t: float, bound: str) -> None:
    out.seconds += t
    out.by_class[cls] = out.by_class.get(cls, 0.0) + t
    if bound == "compute":
        out.compute_bound_seconds += t
    else:
        out.memory_bound_seconds += t


def stage_time(rows: Iterable[CostRow], machine: Machine) -> StageTime:
    """Sum of :func:`row_seconds` over one stage call's rows."""
    out = StageTime()
    for r in rows:
        cls = op_class(r)
        if cls is not None:
            _add(out, cls, *row_seconds(r, machine))
    return out


def groups_time(groups: Iterable[OpGroup], machine: Machine) -> StageTime:
    """:func:`stage_time` of the rows the closed-form ``groups`` expand to, without expanding them:
    each of a group's ``repeat`` modules is one row of ``calls`` calls."""
    out = StageTime()
    for g in groups:
        cls = None if g.category == "view" else _CLASS_OF_CATEGORY.get(g.category, "memory")
        if cls is None:
            continue
        c = g.calls
        moved = (g.bytes_read_per_call + g.bytes_written_per_call) * c
        t, bound = _seconds(cls, g.flops_per_call * c, moved, c, machine)
        _add(out, cls, t * g.repeat, bound)
    return out
