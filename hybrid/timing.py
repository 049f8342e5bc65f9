"""Time model: a per-op roofline over cost rows with efficiencies per op class.

Each row is compute-bound or memory-bound from its FLOPs and bytes::

    t_compute = flops / (peak_flops * efficiency[op_class])
    t_memory  = (bytes_read + bytes_written) / (peak_bandwidth * efficiency["memory"])
    t_row     = max(t_compute, t_memory) + calls * launch_overhead_s

Op classes: ``matmul`` (mm/addmm/bmm rows), ``attention`` (SDPA rows), ``convolution`` and
``memory`` (every zero-FLOP row that moves bytes; views cost nothing). Collective rows (one rank of
a multi-GPU job) are timed by the GPU-to-GPU link instead: ``t = sent / link + calls * latency``.
Peaks and efficiencies are data: peaks from a datasheet (:mod:`hybrid.hardware`) or measured,
efficiencies from a calibration run (:mod:`hybrid.measure`) recorded with its device, versions
and date.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from math import prod
from typing import Any, Protocol

from hybrid.ops import COLLECTIVES, collective_kind
from hybrid.rows import CostRow, OpGroup

Dims = tuple[int, ...]
"""A FLOP op's kernel shape, what its achieved rate depends on (:mod:`hybrid.kernels`): ``(batch, m, n, k)``
of a matrix product (a convolution as its implicit GEMM: ``m`` output positions, ``n`` output channels,
``k`` input channels times the kernel's volume), ``(batch * heads, q_len, kv_len, head_dim)`` of an
attention; ``()`` where unknown (the op class's efficiency then stands for every shape)."""


class ShapeRates(Protocol):
    """Per-shape efficiencies of FLOP terms (implemented by :class:`hybrid.kernels.ShapeRates`)."""

    def efficiency(self, cls: str, dims: Dims, base: float) -> float:
        """The efficiency of a ``cls`` op of kernel shape ``dims``; ``base``: the class's own."""
        ...

    def key(self) -> tuple[Any, ...]:
        """What the rates depend on (memo keys of timed calls)."""
        ...


class CollectiveRates(Protocol):
    """Achieved bytes/s of collectives by kind and message size (implemented by
    :class:`hybrid.kernels.CollectiveRates`)."""

    def bytes_per_s(self, kind: int, sent_per_call: int) -> float:
        """What one rank sends per second in a collective of ``kind`` (its index in
        :data:`hybrid.ops.COLLECTIVES`) that sends ``sent_per_call`` bytes."""
        ...

    def key(self) -> tuple[Any, ...]:
        """What the rates depend on (memo keys of timed calls)."""
        ...


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
    link_bytes_per_s: float = 0.0
    """What one rank sends (and receives) per second in a collective: the achieved GPU-to-GPU bandwidth."""
    collective_latency_s: float = 0.0
    """The fixed cost of one collective call."""
    shape_rates: ShapeRates | None = None
    """Per-shape efficiencies (:mod:`hybrid.kernels`) of the FLOP terms that carry kernel dims,
    for the classes they cover; ``None``: each op class's one efficiency for every shape."""
    matmul_peak_flops: float = 0.0
    """The matrix products' peak where they run on another tensor path than the stage (FP8 linear
    layers in a bf16 stage); 0: :attr:`peak_flops`."""
    collective_rates: CollectiveRates | None = None
    """Achieved bandwidth of each collective term by its kind and message size (:mod:`hybrid.kernels`);
    ``None``: :attr:`link_bytes_per_s` for every collective."""
    memory_ratio: tuple[tuple[str, float], ...] = ()
    """Per memory-bound category (``norm``, ``movement``, ...), the share of the memory rate its ops reach
    (:func:`hybrid.kernels.memory_ratios`); a category not named: 1."""

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
    comm_seconds: float = 0.0
    """Collectives: bytes sent over the achieved link bandwidth plus a fixed cost per call, not
    overlapped with compute (diffusers waits on each before using its result)."""

    @property
    def bound(self) -> str:
        """``compute``, ``memory`` or ``comm``: whichever kind of row takes most of the time."""
        if self.comm_seconds > max(self.compute_bound_seconds, self.memory_bound_seconds):
            return "comm"
        return "compute" if self.compute_bound_seconds >= self.memory_bound_seconds else "memory"

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "bound": self.bound,
            "by_class": dict(self.by_class),
            "comm_seconds": self.comm_seconds,
        }


def row_seconds(row: CostRow, machine: Machine) -> tuple[float, str]:
    """``(seconds, "compute" | "memory")`` of one row (all its calls)."""
    if row.category == "view":
        return 0.0, "memory"
    t = terms_time(row_terms((row,)), machine)
    return t.seconds, t.bound


Term = tuple[str, int, int, int, Dims]
"""``(category, flops, bytes moved, calls, dims)``: what the roofline needs of a row (all its calls)."""


class Terms:
    """Roofline terms of one stage call, machine-independent: each FLOP row its own term (a
    roofline of its own; ``k`` alike rows, of the same FLOPs, bytes and calls, one term ``k`` times
    as large: a row's seconds scale with it), the zero-FLOP rows summed per category (their seconds
    are linear in bytes and calls, so the sum is exact); views left out.

    Rows are buffered as they come (:attr:`append` takes one :data:`Term`; a walk that meets a
    block again extends by its rows) and reduced once, by :meth:`freeze`: the FLOP terms in the
    order first added, then the categories in the order first added."""

    __slots__ = ("append", "extend", "rows")

    def __init__(self) -> None:
        self.rows: list[Term] = []
        self.append = self.rows.append
        self.extend = self.rows.extend

    def add(self, category: str, flops: int, moved: int, calls: int, dims: Dims = ()) -> None:
        self.append((category, flops, moved, calls, dims))

    def row(
        self, module: str, op: str, category: str, read: int, written: int, flops: int = 0, calls: int = 1,
        repeat: int = 1, dims: Dims = (),
    ) -> None:  # fmt: skip
        """A walk's row (``read``/``written``: bytes per call; ``calls`` per module, ``repeat``
        modules) as a term: the sink of a walk that is reduced as it goes."""
        n = calls * repeat
        self.append((category, flops * n, (read + written) * n, n, dims))

    def freeze(self) -> tuple[Term, ...]:
        flop_terms: dict[Term, int] = {}
        moved: dict[str, int] = {}
        calls: dict[str, int] = {}
        for term in self.rows:
            if term[1] or term[4]:  # a FLOP op, or a collective (its kind in its dims)
                flop_terms[term] = flop_terms.get(term, 0) + 1
            else:
                category = term[0]
                if category != "view":
                    moved[category] = moved.get(category, 0) + term[2]
                    calls[category] = calls.get(category, 0) + term[3]
        alike = ((c, f * k, m * k, n * k, d) for (c, f, m, n, d), k in flop_terms.items())
        return (*alike, *((c, 0, m, calls[c], ()) for c, m in moved.items()))


def gemm_dims(batch: int, m: int, n: int, k: int) -> Dims:
    """The :data:`Dims` of ``batch`` products ``[m, k] @ [k, n]``."""
    return (batch, m, n, k)


def conv_dims(batch: int, in_channels_per_group: int, out_channels: int, kernel: Sequence[int],
              out_positions: Sequence[int]) -> Dims:  # fmt: skip
    """A convolution as its implicit GEMM: ``m = batch * output positions``, ``n = out_channels``,
    ``k = in_channels_per_group * kernel volume``."""
    return (1, batch * prod(out_positions), out_channels, in_channels_per_group * prod(kernel))


def attention_dims(batch_heads: int, q_len: int, kv_len: int, head_dim: int) -> Dims:
    """The :data:`Dims` of an attention over ``batch_heads`` heads."""
    return (batch_heads, q_len, kv_len, head_dim)


def collective_dims(collective: str) -> Dims:
    """A collective's kind (its index in :data:`hybrid.ops.COLLECTIVES`): its achieved bandwidth
    depends on it."""
    return (COLLECTIVES.index(collective),)


def kernel_dims(row: CostRow) -> Dims:
    """The :data:`Dims` of a traced row, from the shapes the tracer recorded (``()`` where they do
    not say: a row without shapes, an op of another layout)."""
    shapes, op = row.input_shapes, row.op
    if row.category == "collective":
        kind = collective_kind(op)
        return collective_dims(kind) if kind else ()
    try:
        if op in ("aten.mm", "aten.addmm", "aten.bmm", "aten.baddbmm"):
            a, b = shapes[-2], shapes[-1]
            if len(a) == 2:
                return gemm_dims(1, a[0], b[1], a[1])
            return gemm_dims(a[0], a[1], b[2], a[2])
        if row.category == "conv":
            x, w, out = shapes[0], shapes[1], row.output_shape[0]
            return conv_dims(x[0], w[1], w[0], w[2:], out[2:])
        if row.category == "attention":
            q, k = shapes[0], shapes[1]
            return attention_dims(prod(q[:-2]), q[-2], k[-2], q[-1])
    except IndexError:
        return ()
    return ()


def roofline_terms(groups: Iterable[OpGroup]) -> tuple[Term, ...]:
    """The :class:`Terms` of closed-form ``groups``: each of a group's ``repeat`` modules is one row
    of ``calls`` calls (seconds are linear in ``repeat``)."""
    terms = Terms()
    for g in groups:
        terms.row(g.module, g.op, g.category, g.bytes_read_per_call, g.bytes_written_per_call, g.flops_per_call,
                  g.calls, g.repeat, g.dims)  # fmt: skip
    return terms.freeze()


def merge_terms(*parts: Iterable[Term]) -> tuple[Term, ...]:
    """The :class:`Terms` of several parts of one stage call, as if their rows were walked in turn."""
    terms = Terms()
    for part in parts:
        terms.extend(part)
    return terms.freeze()


def row_terms(rows: Iterable[CostRow]) -> tuple[Term, ...]:
    """The :class:`Terms` of traced rows."""
    terms = Terms()
    terms.extend(  # a collective's kind is its dims: its achieved bandwidth depends on it (as the walks say)
        (r.category, r.flops, r.bytes_read + r.bytes_written, r.calls,
         kernel_dims(r) if r.flops or r.category == "collective" else ())
        for r in rows
    )  # fmt: skip
    return terms.freeze()


def terms_time(terms: Iterable[Term], machine: Machine) -> StageTime:
    """The sum of :func:`row_seconds` over the rows ``terms`` stand for."""
    out = StageTime()
    peaks = {c: machine.peak_flops for c in _CLASS_OF_CATEGORY.values()}
    if machine.matmul_peak_flops:
        peaks["matmul"] = machine.matmul_peak_flops
    flops_per_s = {c: peaks[c] * machine.efficiency[c] for c in _CLASS_OF_CATEGORY.values()}
    bytes_per_s = machine.peak_bytes_per_s * machine.efficiency["memory"]
    category_bytes_per_s = {c: bytes_per_s * r for c, r in machine.memory_ratio}
    launch, by_class = machine.launch_overhead_s, out.by_class
    compute_s = memory_s = 0.0
    comm_moved = comm_calls = 0
    comm_by_size = 0.0
    rates, collective_rates = machine.shape_rates, machine.collective_rates
    for category, flops, moved, calls, dims in terms:
        if category == "view":
            continue
        if category == "collective":  # moved: sent + received, as much each way
            if collective_rates is not None and dims and calls:
                sent = moved // 2
                comm_by_size += sent / collective_rates.bytes_per_s(dims[0], sent // calls)
            else:
                comm_moved += moved
            comm_calls += calls
            continue
        cls = _CLASS_OF_CATEGORY.get(category, "memory")
        t_mem = moved / category_bytes_per_s.get(category, bytes_per_s)
        if cls == "memory":
            t_comp = 0.0
        elif rates is not None and dims:
            t_comp = flops / (peaks[cls] * rates.efficiency(cls, dims, machine.efficiency[cls]))
        else:
            t_comp = flops / flops_per_s[cls]
        t = (t_comp if t_comp > t_mem else t_mem) + calls * launch
        by_class[cls] = by_class.get(cls, 0.0) + t
        if flops and cls != "memory" and t_comp >= t_mem:
            compute_s += t
        else:
            memory_s += t
    comm_s = 0.0
    if comm_calls:
        if machine.link_bytes_per_s <= 0:
            raise ValueError("collective rows need the GPU-to-GPU link's bandwidth (Machine.link_bytes_per_s)")
        comm_s = comm_moved / 2 / machine.link_bytes_per_s + comm_by_size + comm_calls * machine.collective_latency_s
    out.compute_bound_seconds, out.memory_bound_seconds, out.comm_seconds = compute_s, memory_s, comm_s
    out.seconds = compute_s + memory_s + comm_s
    if comm_s:
        by_class["comm"] = comm_s
    return out


def stage_time(rows: Iterable[CostRow], machine: Machine) -> StageTime:
    """Sum of :func:`row_seconds` over one stage call's rows."""
    return terms_time(row_terms(rows), machine)
