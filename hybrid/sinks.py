"""Sinks of a model family's walk: what each output makes of one pass through a forward.

A family writes its forward once, as a walk (``walk(cfg, shape, sink)``) that goes through it op by
op and tells a :class:`Sink` what happens:

* :meth:`Sink.op`: an op ran, ``calls`` times, in the module ``module`` (a path relative to the
  sink's scope), with its FLOPs and the bytes it read and wrote per call; ``component`` names its
  report component where the module path cannot (two attentions in one module);
* :meth:`Sink.alloc` / :meth:`Sink.free`: activation bytes that start or stop being live (the
  storages the tracer's ``LiveStorages`` counts), and :meth:`Sink.transient`: bytes a kernel
  allocates and frees inside one op on top of what lives (PyTorch's math attention);
* :meth:`Sink.repeat`: ``times`` alike modules (``blocks.{i}``), walked once: ``body`` tells the
  events of one of them to a scoped sink, which each sink scales as its output needs.

A sink whose :attr:`Sink.memory` is false ignores the allocation events, and a walk may skip
working out their bytes; one whose :attr:`Sink.ops` is false ignores ops. A walk may also replay a
block it has met before instead of walking it again (the VAE's): the block's events go to a fresh
sink of the same kind (:meth:`Sink.record`), added (:meth:`Sink.replay`) each time the block recurs;
a sink that is not :attr:`Sink.ordered` only sums, so such a walk may fold alike runs into one.

The sinks know nothing of any model: :class:`Rows` (the
:class:`~hybrid.rows.OpGroup` table that joins the tracer's rows), :class:`TermSink` (the roofline
terms, :class:`hybrid.timing.Terms`; :class:`FusedTermSink` those of a compiled forward),
:class:`Components` (FLOPs by a family's component function)
and :class:`Peak` (the live-byte peak, with fused attention and with materialised scores).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, TypeVar

from hybrid.rows import OpGroup
from hybrid.timing import Dims, Term, Terms

_S = TypeVar("_S", bound="Sink")
Body = Callable[["Sink"], None]
"""The walk of one of a :meth:`Sink.repeat` group's alike modules, told to the scoped sink it is given."""


class Sink:
    """What a walk tells. This base ignores every event: a sink overrides those it reads."""

    __slots__ = ()

    memory: ClassVar[bool] = False
    """Whether the sink reads :meth:`alloc`, :meth:`free` and :meth:`transient` (a walk may skip
    working out their bytes where it does not)."""
    ops: ClassVar[bool] = True
    """Whether the sink reads :meth:`op` (a walk need not tell one that does not)."""
    ordered: ClassVar[bool] = False
    """Whether the sink needs the events in program order (live bytes); otherwise it only sums them,
    and a walk may fold runs that cost alike into one walk with more calls."""

    def op(
        self, module: str, op: str, category: str, read: int, written: int, flops: int = 0, calls: int = 1,
        component: str = "", dims: Dims = (),
    ) -> None:  # fmt: skip
        """``op`` (an aten name, ``aten.addmm``) ran ``calls`` times in ``module``: ``flops``,
        ``read`` and ``written`` bytes per call (a collective's: sent and received); ``dims`` its
        kernel shape (:data:`hybrid.timing.Dims`) where its rate depends on it."""

    def alloc(self, nbytes: int) -> None:
        """``nbytes`` of activations became live."""

    def free(self, nbytes: int) -> None:
        """``nbytes`` of activations were freed."""

    def transient(self, nbytes: int) -> None:
        """A kernel allocated ``nbytes`` and freed them before it returned (on top of what lives)."""

    def record(self: _S, path: str) -> _S:
        """An empty sink of the same kind, to record the events of one block met at ``path`` (the
        module paths of its events start with it)."""
        raise NotImplementedError

    def replay(self: _S, recorded: _S, path: str) -> None:
        """Add what ``recorded`` kept, as if its events came again here from the block at ``path``."""
        raise NotImplementedError

    def repeat(self, times: int, prefix: str, body: Body, start: int = 0) -> None:
        """``times`` alike modules ``prefix`` (a pattern with ``{i}`` from ``start``, or one path
        when ``times`` is 1): ``body`` walks one of them (here once, unscaled: a sink that counts
        scales it)."""
        body(self)


def scoped(prefix: str, module: str) -> str:
    """``module`` under the scope ``prefix`` (either may be empty)."""
    return f"{prefix}.{module}" if prefix and module else (prefix or module)


class Rows(Sink):
    """Every op as an :class:`~hybrid.rows.OpGroup` of ``stage``, keyed by its module path (a
    pattern with ``{i}`` inside a repeat): the table that joins the tracer's rows."""

    __slots__ = ("out", "prefix", "stage", "start", "times")

    def __init__(self, stage: str, out: list[OpGroup] | None = None, times: int = 1, prefix: str = "",
                 start: int = 0) -> None:  # fmt: skip
        self.stage, self.times, self.prefix, self.start = stage, times, prefix, start
        self.out: list[OpGroup] = [] if out is None else out

    def op(
        self, module: str, op: str, category: str, read: int, written: int, flops: int = 0, calls: int = 1,
        component: str = "", dims: Dims = (),
    ) -> None:  # fmt: skip
        name = scoped(self.prefix, module)
        self.out.append(OpGroup(self.stage, name, op, category, flops, calls, self.times, component, read, written,
                                self.start, dims))  # fmt: skip

    def repeat(self, times: int, prefix: str, body: Body, start: int = 0) -> None:
        if times:
            body(Rows(self.stage, self.out, self.times * times, scoped(self.prefix, prefix), start or self.start))


class TermSink(Sink):
    """The roofline terms of the walk (:class:`hybrid.timing.Terms`, reduced by :meth:`freeze`):
    what sizing times, without a group per op or a module name."""

    __slots__ = ("terms", "times")

    def __init__(self, terms: Terms | None = None, times: int = 1) -> None:
        self.terms = Terms() if terms is None else terms
        self.times = times

    def op(
        self, module: str, op: str, category: str, read: int, written: int, flops: int = 0, calls: int = 1,
        component: str = "", dims: Dims = (),
    ) -> None:  # fmt: skip
        n = calls * self.times
        self.terms.append((category, flops * n, (read + written) * n, n, dims))

    def repeat(self, times: int, prefix: str, body: Body, start: int = 0) -> None:
        if times:
            body(TermSink(self.terms, self.times * times))

    def freeze(self) -> tuple[Term, ...]:
        """:meth:`hybrid.timing.Terms.freeze`."""
        return self.terms.freeze()


class FusedTermSink(TermSink):
    """:class:`TermSink` of a compiled forward (``torch.compile``'s Inductor): each run of consecutive
    memory-bound ops (no FLOPs, not a view, not a collective) of equal ``calls`` is one ``fused``
    kernel, cut at every FLOP op, collective and :meth:`repeat` boundary. The kernel reads what the
    run's first op reads, plus what each later op reads beyond the bytes its predecessor wrote (an
    intermediate stays on chip), and writes what the last op writes: an estimate from the ops'
    order and sizes, not Inductor's own fusion (outputs also read after the run are not counted)."""

    __slots__ = ("run",)
    ordered: ClassVar[bool] = True

    def __init__(self, terms: Terms | None = None, times: int = 1) -> None:
        super().__init__(terms, times)
        self.run: list[int] | None = None
        """``[bytes read, bytes the last op writes, calls]`` of the run being fused."""

    def op(
        self, module: str, op: str, category: str, read: int, written: int, flops: int = 0, calls: int = 1,
        component: str = "", dims: Dims = (),
    ) -> None:  # fmt: skip
        if category == "view":
            return
        if flops or dims or category == "collective":
            self.flush()
            super().op(module, op, category, read, written, flops, calls, component, dims)
            return
        run = self.run
        if run is not None and run[2] == calls:
            run[0] += max(0, read - run[1])
            run[1] = written
            return
        self.flush()
        self.run = [read, written, calls]

    def flush(self) -> None:
        """End the run being fused: one ``fused`` term."""
        run = self.run
        if run is not None:
            n = run[2] * self.times
            self.terms.append(("fused", 0, (run[0] + run[1]) * n, n, ()))
            self.run = None

    def repeat(self, times: int, prefix: str, body: Body, start: int = 0) -> None:
        self.flush()
        if times:
            inner = FusedTermSink(self.terms, self.times * times)
            body(inner)
            inner.flush()

    def freeze(self) -> tuple[Term, ...]:
        self.flush()
        return super().freeze()


class Components(Sink):
    """FLOPs summed by report component: an op's ``component``, else ``component_of(module path,
    op)``, in the order each component first has FLOPs."""

    __slots__ = ("component_of", "out", "prefix", "times")

    def __init__(
        self, component_of: Callable[[str, str], str], out: dict[str, int] | None = None, times: int = 1,
        prefix: str = "",
    ) -> None:  # fmt: skip
        self.component_of, self.times, self.prefix = component_of, times, prefix
        self.out: dict[str, int] = {} if out is None else out

    def op(
        self, module: str, op: str, category: str, read: int, written: int, flops: int = 0, calls: int = 1,
        component: str = "", dims: Dims = (),
    ) -> None:  # fmt: skip
        if flops:
            name = component or self.component_of(scoped(self.prefix, module), op)
            self.out[name] = self.out.get(name, 0) + flops * calls * self.times

    def repeat(self, times: int, prefix: str, body: Body, start: int = 0) -> None:
        if times:
            body(Components(self.component_of, self.out, self.times * times, scoped(self.prefix, prefix)))


class Peak(Sink):
    """The live activation bytes of the walk and their peak: :attr:`fused` (every attention a fused
    kernel, only its output allocated: the tracer's ``peak_activation_bytes``) and
    :attr:`materialized` (also each kernel's :meth:`transient` bytes on top of what lives then:
    PyTorch's math attention, ``peak_activation_bytes_materialized``).

    A repeat walks one module: the ``k``-th of alike modules sees what the first saw plus ``k``
    times what one leaves live (a kept hidden state), so the group peaks in its last module."""

    __slots__ = ("fused", "live", "materialized")

    memory = True
    ops = False
    ordered = True

    def __init__(self) -> None:
        self.live = self.fused = self.materialized = 0

    def alloc(self, nbytes: int) -> None:
        self.live += nbytes
        if self.live > self.fused:
            self.fused = self.live
        if self.live > self.materialized:
            self.materialized = self.live

    def free(self, nbytes: int) -> None:
        self.live -= nbytes

    def transient(self, nbytes: int) -> None:
        if self.live + nbytes > self.materialized:
            self.materialized = self.live + nbytes

    def record(self, path: str) -> Peak:
        return Peak()

    def replay(self, recorded: Peak, path: str) -> None:
        """A recorded block's highs are relative to where it started; it leaves its net change live."""
        live = self.live
        self.fused = max(self.fused, live + recorded.fused)
        self.materialized = max(self.materialized, live + recorded.materialized)
        self.live = live + recorded.live

    def repeat(self, times: int, prefix: str, body: Body, start: int = 0) -> None:
        if not times:
            return
        before, fused, materialized = self.live, self.fused, self.materialized
        self.fused = self.materialized = self.live
        body(self)
        kept = self.live - before
        more = (times - 1) * kept  # what the other modules leave before the last one runs
        self.live += more
        self.fused = max(fused, self.fused + max(more, 0))
        self.materialized = max(materialized, self.materialized + max(more, 0))
