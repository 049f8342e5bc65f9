"""Benchmark: tracing all three stages of the default 14B workload vs bare FlopCounterMode.

Prints the wall time of a cold ``trace()`` (module construction included), the median time of
warm traces and of FlopCounterMode over the same forwards on the same modules (measured in this
run, alternating), their ratio, and the peak RSS of the process. Targets (issue 2): ratio <= 1.5,
peak RSS <= 1 GB. Figures only; nothing here fails on a slow machine.

    python bench/trace_speed.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    t0 = time.perf_counter()
    import torch  # noqa: F401

    from hybrid.presets import get_preset
    from hybrid.trace import trace
    from hybrid.trace.build import stage_call
    from hybrid.trace.reference import flop_counter_total
    from hybrid.workload import Workload

    import_s = time.perf_counter() - t0
    rss_import = rss_mib()
    workload = Workload.of()
    spec = get_preset(workload.model)

    t0 = time.perf_counter()
    cold = trace(workload)
    cold_s = time.perf_counter() - t0

    calls = [stage_call(s, workload) for s in spec.pipeline_def.stage_names]  # same cached meta modules
    ours: list[float] = []
    ref: list[float] = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        result = trace(workload)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref_flops = [flop_counter_total(c) for c in calls]
        ref.append(time.perf_counter() - t0)
    assert [st.flops for st in result.stages.values()] == ref_flops == [st.flops for st in cold.stages.values()]

    ratio = statistics.median(ours) / statistics.median(ref)
    peak = rss_mib()
    print(f"workload: {workload.model} {workload.width}x{workload.height}, {workload.frames} frames, three stages")
    print(f"import torch + hybrid:                     {import_s:.2f} s, RSS {rss_import:.0f} MiB")
    print(f"cold trace (imports diffusers+transformers, builds on meta): {cold_s:.2f} s")
    print(
        f"warm trace, median of {args.repeats}:                 {statistics.median(ours):.2f} s "
        f"(min {min(ours):.2f}, max {max(ours):.2f})"
    )
    print(
        f"bare FlopCounterMode, median of {args.repeats}:       {statistics.median(ref):.2f} s "
        f"(min {min(ref):.2f}, max {max(ref):.2f})"
    )
    verdict = "met" if ratio <= 1.5 else "MISSED"
    print(f"ratio tracer / FlopCounterMode:            {ratio:.2f}  (target <= 1.5: {verdict})")
    print(
        f"peak RSS:                                  {peak:.0f} MiB  (target <= 1024 MiB: "
        f"{'met' if peak <= 1024 else 'MISSED'})"
    )
    print(
        f"rows: {sum(len(st.rows) for st in result.stages.values())}, "
        f"FLOPs/call: " + ", ".join(f"{s} {st.flops}" for s, st in result.stages.items())
    )


if __name__ == "__main__":
    main()
