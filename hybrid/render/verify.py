"""Renderer of a verification's :class:`~hybrid.verify.Summary`: its verdict line and its cases."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.verify import Check, Summary


def to_text(summary: Summary, path: Path, verbose: bool = False) -> str:
    """``PASS name: n/m passed, quality (seconds) -> path``, then a line per failed case (per case
    with ``verbose``; always for timed and published checks, whose errors are the point).

    The quality is how exact (analytic == traced), how close (predicted vs measured seconds) or,
    for published figures, the mean and max error of seconds and peak memory: reported, not judged."""
    checks = summary.checks
    timed = bool(checks) and all("measured_s" in c.detail for c in checks)
    published = bool(checks) and all("published_s" in c.detail for c in checks)
    speed_ups = bool(checks) and all("published_speed_up" in c.detail for c in checks)
    if speed_ups:
        quality = _speed_up_quality(summary.verdict)
    elif published:
        quality = _published_quality(checks, summary.verdict)
    elif timed and "seconds_mean_abs_error" in summary.verdict:
        quality = _measured_quality(summary.verdict)
    elif timed:
        quality = f"max |error| {100 * max(abs(c.detail['relative_error']) for c in checks):.1f}%"
    elif "reason" in summary.verdict:
        quality = str(summary.verdict["reason"])
    else:
        quality = f"{sum(bool(c.detail.get('exact', c.passed)) for c in checks)} exact"
    passed = len(checks) - sum(not c.passed for c in checks)
    lines = [
        f"{'PASS' if summary.passed else 'FAIL'} {summary.name}: {passed}/{len(checks)} passed, {quality} "
        f"({summary.seconds:.1f} s) -> {path}"
    ]
    if published:  # the kinds the ranges pool, the most biased first (hybrid.accuracy.assess)
        lines += [
            f"  kind {k['kind']}: {k['runs']} run{'s' * (k['runs'] != 1)}, signed mean {100 * k['signed_mean']:+.1f}%, "
            f"mean |error| {100 * k['mean']:.1f}%, max {100 * k['max']:.1f}%"
            for k in summary.verdict.get("by_kind", ())
        ]
    for c in checks:
        if timed and "measured_activation_bytes" in c.detail:
            d = c.detail
            lines.append(
                f"  ok   {c.name}: {d['predicted_s']:,.4g} s vs {d['measured_s']:,.4g} s measured "
                f"({100 * d['relative_error']:+.1f}%), activation peak {100 * d['memory_relative_error']:+.1f}%"
            )
            continue
        if speed_ups:
            d = c.detail
            loop = "" if d["scope"] == "whole job" else f" {d['scope']}"
            lines.append(
                f"  ok   {c.name}: x{d['predicted_speed_up']:,.2f} vs x{d['published_speed_up']:,.2f} published "
                f"({100 * d['relative_error']:+.1f}%; {d['published_baseline_s']:,.1f} -> "
                f"{d['published_optimised_s']:,.2f} s{loop}; {d['baseline_optimise'] or 'baseline'} -> "
                f"{d['optimised_optimise']})"
            )
            continue
        if verbose or not c.passed or timed or published:
            error = _published_error(c) if published else f": {100 * c.detail['relative_error']:+.1f}%" if timed else ""
            lines.append(f"  {'ok  ' if c.passed else 'FAIL'} {c.name}{error}")
    return "\n".join(lines) + "\n"


def _measured_quality(v: dict[str, Any]) -> str:
    """The measured stage calls' seconds against their bounds, the time-weighted error and the peaks beside."""
    b = v["bounds"]

    def judged(value: float, bound: float) -> str:
        return f"{100 * value:.1f}% ({'within' if value <= bound else 'BEYOND'} <= {100 * bound:g}%)"

    return (
        f"over {v['calls']} calls: seconds mean |error| {judged(v['seconds_mean_abs_error'], b['seconds_mean'])}, "
        f"max {judged(v['seconds_max_abs_error'], b['seconds_max'])}, signed mean "
        f"{100 * v['seconds_signed_mean_error']:+.1f}%, time-weighted {100 * v['seconds_time_weighted_error']:.1f}%; "
        f"activation peaks mean |error| {100 * v['activation_mean_abs_error']:.1f}%"
    )


def _published_quality(checks: list[Check], verdict: dict[str, Any]) -> str:
    """The statistics of :func:`hybrid.accuracy.assess`, each with its bound and whether it holds."""
    if not verdict:
        from hybrid.verify import error_summary

        s_mean, s_max = error_summary(checks, "relative_error")
        m_mean, m_max = error_summary(checks, "memory_relative_error")
        return (
            f"seconds mean |error| {100 * s_mean:.1f}%, max {100 * s_max:.1f}%; peak memory mean |error| "
            f"{100 * m_mean:.1f}%, max {100 * m_max:.1f}%"
        )
    b, ok = verdict["bounds"], verdict["within"]

    def judged(key: str, text: str, bound: str) -> str:
        return f"{text} ({'within' if ok[key] else 'BEYOND'} {bound})"

    return (
        f"over {verdict['runs']} runs from {verdict['sources']} sources on {verdict['gpus']} GPUs "
        f"({verdict['set_aside']} set aside): "
        + judged(
            "seconds_mean",
            f"seconds mean |error| {100 * verdict['seconds_mean']:.1f}%",
            f"<= {100 * b['seconds_mean']:g}%",
        )
        + f", median {100 * verdict['seconds_median']:.1f}%, "
        + judged("seconds_max", f"max {100 * verdict['seconds_max']:.1f}%", f"<= {100 * b['seconds_max']:g}%")
        + "; "
        + judged(
            "multi_signed",
            f"4- and 8-GPU signed mean {100 * verdict['multi_signed']:+.1f}% ({verdict['multi_runs']} runs)",
            f"+-{100 * b['multi_signed']:g}%",
        )
        + "; "
        + judged(
            "memory_mean",
            f"peak memory mean |error| {100 * verdict['memory_mean']:.1f}%",
            f"<= {100 * b['memory_mean']:g}%",
        )
        + "; "
        + judged(
            "coverage",
            f"published inside the leave-one-source-out range {100 * verdict['coverage']:.0f}%",
            f">= {100 * b['coverage']:g}%",
        )
    )


def _speed_up_quality(verdict: dict[str, Any]) -> str:
    """The statistics of :func:`hybrid.speedups.assess`, each with its bound and whether it holds."""
    b, ok = verdict["bounds"], verdict["within"]
    return (
        f"over {verdict['runs']} pairs from {verdict['sources']} sources on {verdict['gpus']} GPUs: speed-up mean "
        f"|error| {100 * verdict['mean']:.1f}% ({'within' if ok['mean'] else 'BEYOND'} <= {100 * b['mean']:g}%), "
        f"median {100 * verdict['median']:.1f}%, max {100 * verdict['max']:.1f}% "
        f"({'within' if ok['max'] else 'BEYOND'} <= {100 * b['max']:g}%)"
    )


def _published_error(c: Check) -> str:
    d = c.detail
    rng = d.get("predicted_range_s")
    within = "" if rng is None else f" ({rng[0]:,.0f}-{rng[1]:,.0f}{'' if d['inside_range'] else ', outside'})"
    scope = f" ({d['scope']})" if d.get("scope", "whole job") != "whole job" else ""
    error = (
        f": {d['predicted_s']:,.0f} s{within} vs {d['published_s']:,.1f} s{scope} ({100 * d['relative_error']:+.1f}%)"
    )
    if d["published_peak_gib"] is not None:
        error += (
            f", peak {d['predicted_peak_gib']:.1f} vs {d['published_peak_gib']:.3g} GiB "
            f"({100 * d['memory_relative_error']:+.1f}%)"
        )
    if d.get("set_aside"):
        error += f" [set aside: {d['set_aside']}]"
    if not c.passed:
        error += f"; DiT calls {d['dit_calls']}, the source's {d['published_dit_calls']}"
    return error
