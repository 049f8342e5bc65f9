"""Benchmark: the analytic ``estimate()`` vs tracing the same workload, and a 10,000-workload sweep.

Prints the median time of one ``estimate()`` of the default 14B workload cold (every memo of the
analytic path cleared before each call: :func:`hybrid.analytic.clear_memos`, which a test checks
leaves none) and warm, the median time of tracing the same workload's stages in this run, their
ratio, and the wall time of estimating 10,000 distinct workloads (2 models x 5 sizes x 5 frame
counts x 50 step counts x 2 CFG settings x 2 batch sizes) from a cold memo, and with every memo
cleared before each estimate. Targets: cold estimate <= 50 us (issue 11); ratio >= 10,000; sweep
<= 1 s, also with every memo cleared between estimates (issue 11). Figures only.

    python bench/analytic_speed.py
"""

from __future__ import annotations

import itertools
import statistics
import time


def median_time(fn: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    from hybrid.analytic import _components, clear_memos
    from hybrid.report import estimate
    from hybrid.trace import trace
    from hybrid.workload import Workload

    w = Workload.of()

    def cold() -> None:
        clear_memos()
        estimate(w)

    t_cold = median_time(cold, 2001)
    t_warm = median_time(lambda: estimate(w), 2001)
    trace(w)  # warm imports and the meta modules
    t_trace = median_time(lambda: trace(w), 3)
    assert sum(st.flops * st.calls for st in trace(w).stages.values()) == estimate(w).total_flops

    grid = list(
        itertools.product(
            ("wan2.1-t2v-1.3b", "wan2.1-t2v-14b"),
            ((832, 480), (1280, 720), (960, 544), (640, 368), (1920, 1088)),
            (17, 33, 49, 65, 81),
            range(1, 51),
            (True, False),
            (1, 2),
        )
    )
    _components.cache_clear()
    t0 = time.perf_counter()
    totals = [
        estimate(Workload.of(model=m, width=sz[0], height=sz[1], frames=f, steps=s, cfg=c, batch=b)).total_flops
        for m, sz, f, s, c, b in grid
    ]
    t_sweep = time.perf_counter() - t0
    assert len(totals) == 10_000
    distinct = _components.cache_info().currsize
    t0 = time.perf_counter()
    for m, sz, f, s, c, b in grid[::10]:
        clear_memos()
        estimate(Workload.of(model=m, width=sz[0], height=sz[1], frames=f, steps=s, cfg=c, batch=b))
    t_nomemo = (time.perf_counter() - t0) * 10

    verdict_cold = "met" if t_cold <= 50e-6 else "MISSED"
    print(
        f"estimate(), default 14B workload, every memo cleared: median {t_cold * 1e6:8.1f} us  "
        f"(target <= 50 us: {verdict_cold})"
    )
    print(f"estimate(), default 14B workload, warm memo: median {t_warm * 1e6:8.1f} us")
    print(f"trace() of the same workload (3 stages, meta): median {t_trace:.2f} s")
    ratio = t_trace / t_cold
    verdict = "met" if ratio >= 10_000 else "MISSED"
    print(f"ratio trace / estimate (cold memo): {ratio:,.0f}  (target >= 10,000: {verdict})")
    print(
        f"sweep of {len(totals):,} workloads (cold memo): {t_sweep:.3f} s  (target <= 1 s: "
        f"{'met' if t_sweep <= 1 else 'MISSED'}); distinct per-call shapes: {distinct}"
    )
    print(
        f"the same sweep with every memo cleared before each estimate (timed on 1,000, x10): {t_nomemo:.2f} s  "
        f"(target <= 1 s: {'met' if t_nomemo <= 1 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
