"""Renderers of the calibration runs (:mod:`hybrid.calibrate`): laws, golden tables, the time model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hybrid.fit import law_to_text

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.calibrate import GoldenRun, LawsRun
    from hybrid.measure import Calibration


def _mark(passed: bool) -> str:
    return "ok  " if passed else "FAIL"


def step(run: LawsRun | GoldenRun, verbose: bool = False) -> str:
    """The lines of one step of ``wanmeter calibrate``: :func:`laws_run` or :func:`golden_run`."""
    from hybrid.calibrate import LawsRun

    return laws_run(run, verbose) if isinstance(run, LawsRun) else golden_run(run)


def laws_run(run: LawsRun, verbose: bool = False) -> str:
    """``MISMATCH`` per law that changed, a line per cross-check, every law (``verbose``), where written."""
    lines = [f"MISMATCH {run.model} {line}" for line in run.mismatches]
    for c in run.checks:
        w = c.workload
        lines.append(
            f"{_mark(c.passed)} {run.model} {w.width}x{w.height}x{w.frames} b{w.batch} "
            f"{c.stage:15} law {c.law} analytic {c.analytic} traced {c.traced} rel.err {c.relative_error:.1e}"
        )
    if verbose:
        lines += [
            f"  {stage}/{name} = {law_to_text(law)}" for stage, comps in run.laws.items() for name, law in comps.items()
        ]
    if run.written is not None:
        lines.append(f"wrote {run.written}")
    return "".join(f"{line}\n" for line in lines)


def golden_run(run: GoldenRun) -> str:
    """Where a golden table was rewritten, or ``GOLDEN`` per changed op and the table's verdict."""
    if run.written is not None:
        return f"wrote {run.written}\n"
    lines = [f"GOLDEN {run.name} {line}" for line in run.changed]
    lines.append(f"{_mark(run.passed)} golden table {run.name}: {len(run.changed)} ops changed")
    return "".join(f"{line}\n" for line in lines)


def verdict(passed: bool) -> str:
    return "PASS\n" if passed else "FAIL\n"


def time_model(cal: Calibration, path: Path) -> str:
    """Peaks, fitted efficiencies, predicted vs measured seconds per held-out stage call, errors."""
    efficiency = ", ".join(f"{k} {v:.3f}" for k, v in cal.efficiency.items())
    lines = [
        f"device {cal.device_name}; peaks: {cal.peak_flops / 1e12:.3f} TFLOP/s, "
        f"{cal.peak_bytes_per_s / 1e9:.1f} GB/s ({cal.peak_source})",
        f"efficiency: {efficiency}; launch overhead {cal.launch_overhead_s * 1e6:.1f} us per op call",
        "held-out shapes, predicted vs measured seconds per stage call:",
    ]
    for h in cal.held_out:
        w = h["workload"]
        lines.append(
            f"  {h['stage']:15} {w['width']}x{w['height']}x{w['frames']} L{w['text_len']}: predicted "
            f"{h['predicted_s'] * 1e3:9.2f} ms, measured {h['measured_s'] * 1e3:9.2f} ms, "
            f"error {100 * h['relative_error']:+.1f}%"
        )
    errors = [abs(h["relative_error"]) for h in cal.held_out]
    lines.append(f"mean |error| {100 * sum(errors) / len(errors):.1f}%, max |error| {100 * max(errors):.1f}%")
    lines.append(f"wrote {path}")
    return "".join(f"{line}\n" for line in lines)
