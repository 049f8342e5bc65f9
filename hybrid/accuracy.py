"""How far the time model is from published runs, and the range that puts around every time.

Every entry of ``calibration/public_timings.json`` is sized as its source states it
(:func:`outcomes`). Nothing in the model is fitted to these runs (its rates come from kernel
measurements, :mod:`hybrid.kernels`), so each entry's error is already out of sample; the ranges
*are* fitted to the errors, so an entry's range is computed without its own source
(leave-one-source-out, :func:`assess`).

A range is the 90% prediction interval of the relative error (``predicted / published - 1``) of a
new run, from the published runs of the same kind (:func:`kind_of`: consumer or data-centre GPU,
runtime, one GPU or several), falling back to coarser kinds where fewer than :data:`MIN_EVIDENCE`
runs (from other sources) are of that kind: ``published`` lies in ``[predicted / (1 + hi),
predicted / (1 + lo)]``. The interval is Student's t on ``log(1 + error)`` (a ratio's error, symmetric
in the log): ``mean +- t(0.95, n - 1) * stdev * sqrt(1 + 1/n)`` over the ``n`` runs, which widens as
runs get fewer (the 5th to 95th percentile of six to thirty runs, the range before 2026-12-04, held the
published figure for 78% of runs left out of it, not 90%).
An entry set aside (for a reason recorded with it before its error was seen, or below the
physical bound of :func:`below_peak_bound`) stays listed with its error but takes no part in the
statistics or the ranges. A figure of the VAE decode alone (:data:`SCOPES`) is judged with the others
but is no evidence for a range: a range is put around a job's seconds, of which the decode is a part.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybrid.errors import InputError
from hybrid.files import CALIBRATION_DIR, read_json
from hybrid.hardware import GPU, get_gpu
from hybrid.stats import t_quantile

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.deployment import Deployment
    from hybrid.report import PipelineReport
    from hybrid.sizing import GpuSizing
    from hybrid.workload import Workload

PUBLIC_TIMINGS = CALIBRATION_DIR / "public_timings.json"
MIN_EVIDENCE = 6
"""The fewest runs of a kind a range rests on before it falls back to a coarser kind."""
COVERAGE = 0.90
"""The share of new runs a range is meant to hold (its prediction interval's level)."""


@dataclass(frozen=True)
class Bounds:
    """What ``verify --only public_timings`` requires of the model over the public set."""

    seconds_mean: float = 0.12
    """Mean |error| of seconds."""
    seconds_max: float = 0.30
    """Largest |error| of seconds."""
    multi_signed: float = 0.05
    """|signed mean error| of the 4- and 8-GPU runs."""
    memory_mean: float = 0.06
    """Mean |error| of peak memory, where the source gives it."""
    coverage: float = 0.80
    """Share of runs whose published seconds fall inside their (leave-one-source-out) range."""

    def to_dict(self) -> dict[str, float]:
        return {
            "seconds_mean": self.seconds_mean,
            "seconds_max": self.seconds_max,
            "multi_signed": self.multi_signed,
            "memory_mean": self.memory_mean,
            "coverage": self.coverage,
        }


ACCEPTANCE = Bounds()
"""Issue 21's acceptance bounds."""


def kind_of(gpu: GPU, runtime: str, gpus: int) -> tuple[str, str, str]:
    """``(GPU class, runtime, one or several GPUs)``: what runs of alike error share."""
    market = "consumer" if gpu.name.startswith("rtx") else "data-centre"
    return (market, runtime, "multi-GPU" if gpus > 1 else "one GPU")


@dataclass(frozen=True)
class Outcome:
    """One published run, sized as its source states it."""

    name: str
    source: str
    gpu: str
    runtime: str
    gpus: int
    predicted_s: float
    published_s: float
    predicted_gib: float
    published_gib: float | None
    set_aside: str
    """Why the run takes no part in the statistics and ranges ("" where it does)."""
    detail: dict[str, Any]

    @property
    def error(self) -> float:
        return self.predicted_s / self.published_s - 1

    @property
    def memory_error(self) -> float | None:
        return None if self.published_gib is None else self.predicted_gib / self.published_gib - 1

    @property
    def kind(self) -> tuple[str, str, str]:
        return kind_of(get_gpu(self.gpu), self.runtime, self.gpus)

    @property
    def stage_only(self) -> bool:
        """A figure of one stage alone (the VAE decode): judged, but no evidence for a job's range."""
        return self.detail.get("scope") in STAGE_ONLY


def below_peak_bound(flops: int, gpu: GPU, gpus: int, published_s: float) -> bool:
    """Whether ``published_s`` is shorter than the job's exact FLOPs at every GPU's full dense bf16
    peak: no baseline run can be (the source's settings must differ from what it states: fewer
    steps, a distilled or quantised model)."""
    return flops / (gpu.bf16_tflops * 1e12 * gpus) > published_s


@dataclass(frozen=True)
class Band:
    """The error quantiles a range rests on, and which runs they come from."""

    lo: float
    hi: float
    runs: int
    basis: str

    def seconds(self, predicted_s: float) -> tuple[float, float]:
        """``(low, high)`` seconds the published figure is expected in."""
        return predicted_s / (1 + self.hi), predicted_s / (1 + self.lo)

    def to_dict(self) -> dict[str, Any]:
        return {"error_low": self.lo, "error_high": self.hi, "runs": self.runs, "basis": self.basis}


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated ``q`` quantile of ``values`` (non-empty)."""
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    i = int(pos)
    j = min(i + 1, len(xs) - 1)
    return xs[i] + (pos - i) * (xs[j] - xs[i])


def tiers(kind: tuple[str, str, str]) -> tuple[tuple[str, Callable[[tuple[str, str, str]], bool]], ...]:
    """The kinds a range of ``kind`` may rest on, finest first: ``kind`` itself, the same GPU class
    and GPU count, the same GPU count, every run; each with how a report names it."""
    market, runtime, count = kind
    return (
        (f"{market} GPUs, {runtime} runtime, {count}", lambda k: k == kind),
        (f"{market} GPUs, {count}", lambda k: k[0] == market and k[2] == count),
        (count, lambda k: k[2] == count),
        ("every run", lambda k: True),
    )


def band(evidence: Iterable[Outcome], kind: tuple[str, str, str], exclude_source: str = "") -> Band | None:
    """The :class:`Band` of runs of ``kind`` (not set aside, not from ``exclude_source``), falling
    back through :func:`tiers` until one has :data:`MIN_EVIDENCE` runs; ``None`` where not even
    every run has."""
    runs = [o for o in evidence if not o.set_aside and o.source != exclude_source and not o.stage_only]
    for basis, same in tiers(kind):
        errors = [o.error for o in runs if same(o.kind)]
        if len(errors) >= MIN_EVIDENCE:
            lo, hi = prediction_interval(errors)
            return Band(lo, hi, len(errors), f"{len(errors)} published runs ({basis})")
    return None


def prediction_interval(errors: Sequence[float], coverage: float = COVERAGE) -> tuple[float, float]:
    """``(lo, hi)``: the relative error a new run falls between with probability ``coverage``, from
    ``errors`` (at least two, each above -1): Student's t on ``log(1 + error)``."""
    logs = [math.log1p(e) for e in errors]
    n = len(logs)
    half = t_quantile((1 + coverage) / 2, n - 1) * statistics.stdev(logs) * math.sqrt(1 + 1 / n)
    mean = statistics.fmean(logs)
    return math.expm1(mean - half), math.expm1(mean + half)


def _kind_of_entry(e: dict[str, Any]) -> tuple[str, str, str]:
    runtime = e["workload"].get("runtime", {})
    name = runtime.get("name", "diffusers") if isinstance(runtime, dict) else str(runtime)
    return kind_of(get_gpu(e["gpu"]), name, e.get("deployment", {}).get("gpus", 1))


def job_of(e: dict[str, Any]) -> tuple[Workload, Deployment]:
    """A published entry's job: its ``workload`` and ``deployment`` (one GPU where none is given)."""
    from hybrid.deployment import Deployment
    from hybrid.workload import Workload

    d = e.get("deployment", {})
    deployment = Deployment(
        gpus=d.get("gpus", 1), ulysses=d.get("ulysses", 1), ring=d.get("ring", 1), fsdp=tuple(d.get("fsdp", ()))
    )
    return Workload.of(**e["workload"]), deployment


PUBLISHED = {"whole job": "published_seconds", "denoising loop": "published_denoise_seconds",
             "vae decode": "published_vae_decode_seconds"}  # fmt: skip
"""The field of a public-timings entry that holds its figure, by scope."""
SCOPES = tuple(PUBLISHED)
"""What a published figure's seconds cover: the whole job, the transformer stages, or the VAE's decode."""
STAGE_ONLY = frozenset({"vae decode"})
"""The scopes of one stage alone: judged with the rest, but no evidence for a job's range."""


def scope_of(e: dict[str, Any]) -> str:
    """What an entry's published figure covers (:data:`SCOPES`): the field it is given in (:data:`PUBLISHED`)."""
    return next(scope for scope, field in PUBLISHED.items() if field in e)


def scope_stages(workload: Workload, scope: str) -> tuple[str, ...] | None:
    """The stages a published figure of ``scope`` (:data:`SCOPES`) covers: ``None`` for the whole job, the
    transformer stages for ``denoising loop``, the ``vae_decode`` stage for ``vae decode``."""
    if scope not in SCOPES:
        raise InputError(f"scope: {scope!r} is not one of {', '.join(SCOPES)}")
    if scope == "vae decode":
        return ("vae_decode",)
    if scope == "denoising loop":
        return tuple(sd.name for sd in workload.spec.pipeline_def.stages if sd.component.startswith("transformer"))
    return None


def seconds_of(sizing: GpuSizing, workload: Workload, scope: str) -> float:
    """The seconds a published figure covers (:data:`SCOPES`, :func:`scope_stages`)."""
    stages = scope_stages(workload, scope)
    return sizing.seconds if stages is None else sum(sizing.stages[name].seconds for name in stages)


def _outcome(e: dict[str, Any], sources: dict[str, Any]) -> Outcome:
    """One entry sized as its source states it."""
    from hybrid.report import estimate
    from hybrid.schedule import stage_calls
    from hybrid.sizing import size_on_gpu

    w, deployment = job_of(e)
    sized = size_on_gpu(w, e["gpu"], deployment=deployment)
    scope = scope_of(e)
    predicted_s = seconds_of(sized, w, scope)
    published_s = float(e[PUBLISHED[scope]])
    spec = w.spec
    dit_calls = sum(stage_calls(sd, w) for sd in spec.pipeline_def.stages if sd.component.startswith("transformer"))
    report, stages = estimate(w), scope_stages(w, scope)
    flops = report.total_flops if stages is None else sum(report.stages[name].flops for name in stages)
    gpu = get_gpu(e["gpu"])
    reason = str(e.get("set_aside", ""))
    if not reason and below_peak_bound(flops, gpu, deployment.gpus, published_s):
        what = "the job's" if stages is None else f"the {scope}'s"
        reason = (
            f"the published {published_s:g} s is below {what} exact FLOPs ({flops:.3g}) at "
            f"{deployment.gpus} x {gpu.name}'s full dense peak: not the stated baseline"
        )
    return Outcome(
        name=e["name"],
        source=e["source"],
        gpu=e["gpu"],
        runtime=w.runtime.name,
        gpus=deployment.gpus,
        predicted_s=predicted_s,
        published_s=published_s,
        predicted_gib=sized.peak_memory_bytes / 2**30,
        published_gib=published_gib(e),
        set_aside=reason,
        detail={
            "workload": w.to_dict(),
            "runtime": w.runtime.describe(),
            "dit_calls": dit_calls,
            "published_dit_calls": e["dit_calls"],
            "layout": deployment.describe(),
            "scope": scope,
            "attention_kernel": sized.attention_kernel,
            "efficiency": sized.efficiency,
            "comm_s": sized.comm_seconds,
            "stages_s": {n: st.seconds for n, st in sized.stages.items()},
            "host_copy_s": sum(st.host_copy_seconds for st in sized.stages.values()),
            "source": sources[e["source"]]["url"],
        },
    )


def published_gib(e: dict[str, Any]) -> float | None:
    """An entry's published peak memory in GiB: the source's 'GB' read as GiB (the document's ``memory_unit``), or
    in the bytes its ``peak_memory_unit_bytes`` names (a source whose own code divides by 10^9)."""
    value = e["published_peak_memory"]
    if value is None:
        return None
    return float(value) * int(e.get("peak_memory_unit_bytes", 2**30)) / 2**30


def read_public(path: Path = PUBLIC_TIMINGS) -> dict[str, Any]:
    """The public-timings document at ``path``; one line where it is not a ``wanmeter.public-timings/2`` one."""
    doc: dict[str, Any] = read_json(path, "public timings document")
    if doc.get("schema") != "wanmeter.public-timings/2":
        raise InputError(f"public_timings: {path} is not a wanmeter.public-timings/2 document")
    return doc


def outcomes(path: Path = PUBLIC_TIMINGS) -> list[Outcome]:
    """Every entry of the public set, sized (:func:`hybrid.sizing.size_on_gpu`) as stated."""
    doc = read_public(path)
    return [_outcome(e, doc["sources"]) for e in _runs(doc)]


def _runs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries verify sizes: whole jobs, then figures of the denoising loop alone, then of the VAE decode alone."""
    return [*doc["entries"], *doc.get("denoising_loop", ()), *doc.get("vae_decode", ())]


@cache
def _public() -> tuple[tuple[dict[str, Any], ...], dict[str, Any]]:
    doc = read_public()
    return tuple(_runs(doc)), doc["sources"]


@cache
def _public_outcome(i: int) -> Outcome:
    entries, sources = _public()
    return _outcome(entries[i], sources)


def public_band(kind: tuple[str, str, str]) -> Band | None:
    """:func:`band` of ``kind`` over the packaged public set, sizing only the runs of the first tier
    that has enough of them (a report's range costs a few runs' sizing, not the whole set's), and of those
    not the ones set aside by a recorded reason (a band leaves them out)."""
    entries, _ = _public()
    for _, same in tiers(kind):
        runs = [
            _public_outcome(i)
            for i, e in enumerate(entries)
            if not e.get("set_aside") and scope_of(e) not in STAGE_ONLY and same(_kind_of_entry(e))
        ]
        b = band(runs, kind)
        if b is not None:
            return b
    return None


def kind_label(o: Outcome) -> str:
    """How a report names ``o``'s kind (the finest tier of :func:`tiers`), a figure of one stage marked so."""
    label = tiers(o.kind)[0][0]
    return f"{label}, {o.detail['scope']} alone" if o.stage_only else label


def assess(runs: Sequence[Outcome], bounds: Bounds = ACCEPTANCE) -> dict[str, Any]:
    """The statistics ``verify`` judges: over the runs not set aside, seconds mean, median and max
    |error|, the 4- and 8-GPU runs' signed mean, peak memory mean |error|, and the share inside
    their leave-one-source-out range; each against ``bounds``. Also, reported and not judged, each
    kind's runs (:func:`kind_label`) with their signed mean, mean and max |error|, the most biased
    kind first: where a maintainer looks for drift."""
    used = [o for o in runs if not o.set_aside]
    errors = sorted(abs(o.error) for o in used)
    multi = [o.error for o in used if o.gpus >= 4]
    memory = [abs(m) for o in used if (m := o.memory_error) is not None]
    inside = []
    for o in used:
        b = band(runs, o.kind, exclude_source=o.source)
        if b is not None:
            lo, hi = b.seconds(o.predicted_s)
            inside.append(lo <= o.published_s <= hi)
    by_kind: dict[str, list[float]] = {}
    for o in used:
        by_kind.setdefault(kind_label(o), []).append(o.error)
    stats: dict[str, Any] = {
        "runs": len(used),
        "set_aside": len(runs) - len(used),
        "sources": len({o.source for o in used}),
        "gpus": len({o.gpu for o in used}),
        "seconds_mean": sum(errors) / len(errors),
        "seconds_median": quantile(errors, 0.5),
        "seconds_max": errors[-1],
        "multi_runs": len(multi),
        "multi_signed": sum(multi) / len(multi) if multi else 0.0,
        "memory_runs": len(memory),
        "memory_mean": sum(memory) / len(memory) if memory else 0.0,
        "coverage": sum(inside) / len(inside) if inside else 0.0,
        "by_kind": sorted(
            (
                {
                    "kind": label,
                    "runs": len(e),
                    "signed_mean": sum(e) / len(e),
                    "mean": sum(map(abs, e)) / len(e),
                    "max": max(map(abs, e)),
                }
                for label, e in by_kind.items()
            ),
            key=lambda k: -abs(k["signed_mean"]),
        ),
    }
    judged = {
        "seconds_mean": stats["seconds_mean"] <= bounds.seconds_mean,
        "seconds_max": stats["seconds_max"] <= bounds.seconds_max,
        "multi_signed": abs(stats["multi_signed"]) <= bounds.multi_signed,
        "memory_mean": stats["memory_mean"] <= bounds.memory_mean,
        "coverage": stats["coverage"] >= bounds.coverage,
    }
    return {**stats, "bounds": bounds.to_dict(), "within": judged, "pass": all(judged.values())}


def with_range(report: PipelineReport) -> PipelineReport:
    """``report`` with its sizing's ``seconds_range``: its seconds under the error quantiles of the
    published runs of its kind (:func:`public_band`); unchanged without a sizing, for an optimised job
    (the runs are baselines: ``verify --only optimisations`` checks optimised ones), where the public
    set is not at hand or has too few runs."""
    from dataclasses import replace

    sizing = report.gpu
    if sizing is None or report.optimised is not None:  # the published runs behind the ranges are baselines
        return report
    try:
        b = public_band(kind_of(sizing.gpu, sizing.runtime.name, sizing.deployment.gpus))
    except (OSError, InputError, KeyError, ValueError):
        return report
    if b is None:
        return report
    low, high = b.seconds(sizing.seconds)
    return replace(report, gpu=replace(sizing, seconds_range={"low": low, "high": high, **b.to_dict()}))
