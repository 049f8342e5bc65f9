"""Benchmark: closed-form sizing (``report --gpu``) against the traced path, measured in this run.

Prints:

* ``size_on_gpu`` of the default workload of each of several presets, cold (every memo cleared
  before each call by :func:`hybrid.analytic.clear_memos`, the per-shape stage costs too) and warm,
  all timed before any trace runs in the process (as ``report --gpu`` runs); then each against
  tracing the same workload (``use_trace``), and that both give the same seconds and peaks;
* ``sweep --gpu`` over 10,000 distinct workloads (2 models x 5 sizes x 5 frame counts x 50 step
  counts x 2 CFG settings x 2 batch sizes: 200 distinct per-call shapes), closed form, cold memo: the
  median of three before any trace runs in the process (as ``wanmeter sweep --gpu`` runs), and once
  after the traces (their cached modules slow the garbage collector), for comparison;
* ``wanmeter plan`` of the 14B on up to 8 H100s as a whole process (issue 12: under 1 s);
* ``wanmeter report --gpu h100-sxm`` as a whole process against ``wanmeter report``, and against
  ``wanmeter report --gpu h100-sxm --traced``.

Targets (issue 11): ``size_on_gpu`` <= 1 ms per workload; the 10,000-workload sweep <= 2 s; the
``--gpu`` process no more than 1.5x the one without. Figures only.

    python bench/sizing_speed.py
"""

from __future__ import annotations

import subprocess
import sys
import time

from analytic_speed import median_time  # bench/ is the script's directory

MODELS = ("wan2.1-t2v-14b", "wan2.1-i2v-14b-480p", "wan2.1-vace-14b", "wan2.2-ti2v-5b", "wan2.2-t2v-a14b")


def process_seconds(args: list[str], repeats: int = 5) -> float:
    cmd = [sys.executable, "-m", "hybrid", *args]
    return median_time(lambda: subprocess.run(cmd, check=True, capture_output=True), repeats)


def main() -> None:
    from hybrid.analytic import clear_memos
    from hybrid.sizing import cost_memo, load_calibration, size_on_gpu
    from hybrid.sweep import Grid, sweep
    from hybrid.workload import Workload

    cal = load_calibration("h100-sxm")
    grid = Grid(
        models=("wan2.1-t2v-1.3b", "wan2.1-t2v-14b"),
        sizes=((832, 480), (1280, 720), (960, 544), (640, 368), (1920, 1088)),
        frames=(17, 33, 49, 65, 81),
        steps=tuple(range(1, 51)),
        batch=(1, 2),
        cfg=(True, False),
    )

    def cold_sweep() -> None:
        clear_memos()
        sweep(grid, gpu="h100-sxm")

    # as `wanmeter sweep --gpu` runs: in a process that has traced nothing (the traces below leave their modules
    # cached, and the garbage collector then walks them through every later allocation)
    t_sweep = median_time(cold_sweep, 3)
    print("size_on_gpu on h100-sxm, default workload of each preset:")
    timed = {}
    for model in MODELS:  # the closed form first, in a process that has traced nothing (as report --gpu runs)
        w = Workload.of(model=model)

        def cold() -> None:
            clear_memos()
            size_on_gpu(w, "h100-sxm", calibration=cal)  # noqa: B023

        t_cold = median_time(cold, 21)
        t_warm = median_time(lambda: size_on_gpu(w, "h100-sxm", calibration=cal), 21)  # noqa: B023
        timed[model] = (t_cold, t_warm)
    for model in MODELS:
        w = Workload.of(model=model)
        t_cold, t_warm = timed[model]
        t0 = time.perf_counter()
        traced = size_on_gpu(w, "h100-sxm", calibration=cal, use_trace=True)
        t_trace = time.perf_counter() - t0
        closed = size_on_gpu(w, "h100-sxm", calibration=cal)
        same = closed.peak_memory_bytes == traced.peak_memory_bytes and all(
            abs(a.seconds - b.seconds) <= 1e-9 * b.seconds
            for a, b in zip(closed.stages.values(), traced.stages.values(), strict=True)
        )
        verdict = "met" if t_cold <= 1e-3 else "MISSED"
        print(
            f"  {model:22s} cold {t_cold * 1e3:6.2f} ms (target <= 1 ms: {verdict}), warm {t_warm * 1e3:6.3f} ms, "
            f"traced {t_trace:5.2f} s (x{t_trace / t_cold:,.0f}); same seconds and peaks: {same}"
        )

    clear_memos()
    t0 = time.perf_counter()
    reports = sweep(grid, gpu="h100-sxm")
    t_after = time.perf_counter() - t0
    distinct = cost_memo.cache_info().currsize
    verdict = "met" if t_sweep <= 2 else "MISSED"
    print(
        f"sweep --gpu h100-sxm over {len(reports):,} workloads ({distinct} distinct stage calls), cold memo, median "
        f"of 3 before any trace: {t_sweep:.2f} s (target <= 2 s: {verdict}); once more after the traces: "
        f"{t_after:.2f} s"
    )

    t_plan = process_seconds(["plan", "--model", "wan2.1-t2v-14b", "--gpu", "h100-sxm", "--gpus", "8"])
    print(
        f"wanmeter plan --model wan2.1-t2v-14b --gpu h100-sxm --gpus 8 (every layout on 1-8 GPUs): {t_plan:.3f} s "
        f"(target < 1 s: {'met' if t_plan < 1 else 'MISSED'})"
    )

    t_plain = process_seconds(["report"])
    t_gpu = process_seconds(["report", "--gpu", "h100-sxm"])
    t_traced = process_seconds(["report", "--gpu", "h100-sxm", "--traced"], repeats=3)
    ratio = t_gpu / t_plain
    print(
        f"wanmeter report: {t_plain:.3f} s; --gpu h100-sxm: {t_gpu:.3f} s (x{ratio:.2f}, target <= 1.5: "
        f"{'met' if ratio <= 1.5 else 'MISSED'}); --gpu h100-sxm --traced: {t_traced:.2f} s"
    )


if __name__ == "__main__":
    main()
