"""The one row type for costs, and pure aggregation helpers over rows.

A :class:`CostRow` is the cost of one (stage, module path, aten op, input shapes) group of a single
call of a stage: ``calls`` says how many times that op ran with those shapes inside the call, and
``flops``/``bytes_read``/``bytes_written`` are totals over those ``calls``. The tracer and the
analytic models both produce these rows, keyed by the real module paths, so their tables join row
for row. Rendering (tables, JSON, plots) lives elsewhere; nothing here formats numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

Shape = tuple[int, ...]

SDPA_OP = "aten.scaled_dot_product_attention"
"""The canonical op name of one attention call, however the device dispatches it."""


@dataclass(frozen=True)
class CostRow:
    """Cost of one op group within one call of a stage (see module docstring)."""

    stage: str
    module: str
    op: str
    category: str
    """The op's class: ``matmul``, ``conv`` or ``attention`` (the only ones with FLOPs), or
    ``elementwise``, ``norm``, ``reduction``, ``embedding``, ``movement``, ``factory``, ``view`` (zero
    cost) or ``collective``, whose byte columns are the bytes its rank sends and receives over the
    interconnect (:func:`hybrid.ops.collective_bytes`), timed by the interconnect, not by memory bandwidth."""
    flops: int
    bytes_read: int
    bytes_written: int
    calls: int = 1
    input_shapes: tuple[Shape, ...] = ()
    output_shape: tuple[Shape, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form: shapes become nested lists, integers stay exact."""
        d = asdict(self)
        d["input_shapes"] = [list(s) for s in self.input_shapes]
        d["output_shape"] = [list(s) for s in self.output_shape]
        return d

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> CostRow:
        """Inverse of :meth:`to_dict`."""
        return CostRow(
            stage=str(d["stage"]),
            module=str(d["module"]),
            op=str(d["op"]),
            category=str(d["category"]),
            flops=int(d["flops"]),
            bytes_read=int(d["bytes_read"]),
            bytes_written=int(d["bytes_written"]),
            calls=int(d["calls"]),
            input_shapes=tuple(tuple(int(x) for x in s) for s in d.get("input_shapes", ())),
            output_shape=tuple(tuple(int(x) for x in s) for s in d.get("output_shape", ())),
        )


ROW_COLUMNS: tuple[str, ...] = (
    "stage",
    "module",
    "op",
    "category",
    "flops",
    "bytes_read",
    "bytes_written",
    "calls",
    "input_shapes",
    "output_shape",
)


def total_flops(rows: Iterable[CostRow]) -> int:
    """Sum of ``flops`` over rows (exact integer)."""
    return sum(r.flops for r in rows)


def group_flops(rows: Iterable[CostRow], key: str) -> dict[str, int]:
    """FLOPs summed by a row attribute (``"op"``, ``"module"``, ``"category"``, ``"stage"``)."""
    out: dict[str, int] = {}
    for r in rows:
        k = str(getattr(r, key))
        out[k] = out.get(k, 0) + r.flops
    return out


def join_key(row: CostRow) -> tuple[str, str, str]:
    """Key on which analytic and traced rows join: ``(stage, module, op)``."""
    return (row.stage, row.module, row.op)


def to_frame(rows: Iterable[CostRow]) -> pd.DataFrame:
    """Rows as a pandas DataFrame (one column per field; FLOPs kept as Python ints)."""
    import pandas as pd

    records = [r.to_dict() for r in rows]
    frame = pd.DataFrame.from_records(records, columns=list(ROW_COLUMNS))
    for col in ("flops", "bytes_read", "bytes_written"):
        # object dtype keeps arbitrary-precision ints (int64 would overflow at extreme workloads)
        frame[col] = frame[col].astype(object)
    return frame


class OpGroup(NamedTuple):
    """Compact analytic cost: ``repeat`` modules, each running ``op`` ``calls`` times per stage call
    at ``flops_per_call`` FLOPs.

    ``module`` is a module path, or a pattern with ``{i}`` for ``repeat`` identical layers
    (``blocks.{i}.attn1.to_q``). Totals come straight from groups (microseconds); :meth:`expand`
    gives the per-module :class:`CostRow` table that joins the tracer's. ``bytes_read_per_call`` and
    ``bytes_written_per_call`` are the op's input and output bytes where the family writes them
    (its full row walk, e.g. :func:`hybrid.models.wan_dit.dit_rows`); 0 in FLOP-only groups.
    ``component`` names the report component where the (module, op) cannot (two attentions in one
    module); empty otherwise. A named tuple: a stage call makes about a thousand of them, and
    building one costs a fifth of a frozen dataclass's ``__init__`` (sizing is microseconds).
    """

    stage: str
    module: str
    op: str
    category: str
    flops_per_call: int
    calls: int = 1
    repeat: int = 1
    component: str = ""
    bytes_read_per_call: int = 0
    bytes_written_per_call: int = 0
    start: int = 0
    """The first ``{i}`` of the pattern (``repeat`` modules from ``start``)."""
    dims: tuple[int, ...] = ()
    """The op's kernel shape (:data:`hybrid.timing.Dims`): what its achieved rate depends on."""

    @property
    def flops(self) -> int:
        """FLOPs of the whole group in one stage call."""
        return self.flops_per_call * self.calls * self.repeat

    def expand(self) -> list[CostRow]:
        """One :class:`CostRow` per module of the group."""
        span = range(self.start, self.start + self.repeat)
        names = [self.module.format(i=i) for i in span] if "{i}" in self.module else [self.module]
        return [
            CostRow(
                stage=self.stage,
                module=name,
                op=self.op,
                category=self.category,
                flops=self.flops_per_call * self.calls,
                bytes_read=self.bytes_read_per_call * self.calls,
                bytes_written=self.bytes_written_per_call * self.calls,
                calls=self.calls,
            )
            for name in names
        ]


def expand(groups: Iterable[OpGroup]) -> list[CostRow]:
    """All rows of ``groups``."""
    return [r for g in groups for r in g.expand()]


def aggregate_costs(rows: Iterable[CostRow]) -> dict[tuple[str, str, str], tuple[str, int, int, int, int]]:
    """``(stage, module, op) -> (category, flops, bytes_read, bytes_written, calls)`` summed over
    every row that costs time (views left out): the table a full analytic row walk and the tracer
    must agree on exactly."""
    out: dict[tuple[str, str, str], tuple[str, int, int, int, int]] = {}
    for r in rows:
        if r.category == "view":
            continue
        k = join_key(r)
        _, f, br, bw, c = out.get(k, (r.category, 0, 0, 0, 0))
        out[k] = (r.category, f + r.flops, br + r.bytes_read, bw + r.bytes_written, c + r.calls)
    return out


def aggregate(rows: Iterable[CostRow], flops_only: bool = True) -> dict[tuple[str, str, str], tuple[int, int]]:
    """``(stage, module, op) -> (flops, calls)`` summed over rows (shapes folded together).

    With ``flops_only`` the zero-FLOP rows (elementwise, views, ...) are left out: that is the
    table the analytic model and the tracer must agree on exactly.
    """
    out: dict[tuple[str, str, str], tuple[int, int]] = {}
    for r in rows:
        if flops_only and r.flops == 0:
            continue
        k = join_key(r)
        f, c = out.get(k, (0, 0))
        out[k] = (f + r.flops, c + r.calls)
    return out
