"""The optimisations against published speed-ups (``wanmeter verify --only optimisations``).

``calibration/optimisation_speedups.json`` holds published pairs of runs of one Wan job on one machine, a
baseline and an optimised one, each with the optimisations it ran in ``--optimise`` names (the source's own
words beside them), the runtime, GPU and layout the source states, and the scope of its seconds (the whole
job or the denoising loop). Each run is sized as ``report --gpu --optimise`` sizes it; the predicted
speed-up (baseline seconds over optimised seconds) is compared with the published one. Nothing is fitted
to these runs: a cache's share of skipped calls comes from ``hybrid/data/optimisations.json`` (read from the
method's code), kernels' rates from kernel measurements, so each error is out of sample.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybrid.accuracy import job_of, seconds_of
from hybrid.errors import InputError
from hybrid.files import CALIBRATION_DIR, read_json
from hybrid.hardware import get_gpu
from hybrid.optimisations import parse, plan_of
from hybrid.sizing import size_on_gpu
from hybrid.workload import Workload

SPEEDUPS = CALIBRATION_DIR / "optimisation_speedups.json"
SCHEMA = "wanmeter.optimisation-speedups/1"


@dataclass(frozen=True)
class Bounds:
    """What ``verify --only optimisations`` requires of the predicted speed-ups (issue 23's acceptance)."""

    mean: float = 0.15
    """Mean |error| of the speed-up (predicted over published, minus one)."""
    max: float = 0.35
    """Largest |error|."""

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "max": self.max}


ACCEPTANCE = Bounds()


@dataclass(frozen=True)
class SpeedUp:
    """One published pair, sized."""

    name: str
    source: str
    gpu: str
    scope: str
    published_baseline_s: float
    published_optimised_s: float
    predicted_baseline_s: float
    predicted_optimised_s: float
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def published(self) -> float:
        return self.published_baseline_s / self.published_optimised_s

    @property
    def predicted(self) -> float:
        return self.predicted_baseline_s / self.predicted_optimised_s

    @property
    def error(self) -> float:
        """Predicted speed-up over published, minus one."""
        return self.predicted / self.published - 1


def read_speedups(path: Path = SPEEDUPS) -> dict[str, Any]:
    """The speed-ups document at ``path``; one line where it is not a ``wanmeter.optimisation-speedups/1`` one."""
    doc: dict[str, Any] = read_json(path, "optimisation speed-ups document")
    if doc.get("schema") != SCHEMA:
        raise InputError(f"optimisations: {path} is not a {SCHEMA} document")
    return doc


def _optimised_job(e: dict[str, Any]) -> Workload:
    """The optimised run's workload: the entry's, with the runtime settings its ``optimised_runtime`` changes in the
    same step (LightX2V_3 also turns the VAE's tiling on), checked as any runtime mapping (:meth:`Workload.of`)."""
    changes = e.get("optimised_runtime", {})
    if not isinstance(changes, dict):
        raise InputError(f"optimised_runtime: {e['name']}: expected runtime settings, got {str(changes)[:40]!r}")
    workload = e["workload"]
    return job_of({**e, "workload": {**workload, "runtime": {**workload.get("runtime", {}), **changes}}})[0]


def outcome(e: dict[str, Any]) -> SpeedUp:
    """One entry's pair, each run sized on its GPU and layout with its optimisations (the optimised one with the
    runtime settings its step changes, ``optimised_runtime``)."""
    w, deployment = job_of(e)
    optimised = _optimised_job(e)
    gpu = get_gpu(e["gpu"])
    seconds: list[float] = []
    for key, job in (("baseline_optimise", w), ("optimised_optimise", optimised)):
        plan = plan_of(parse(e[key]) if e[key] else (), job, gpu)
        sized = size_on_gpu(plan.workload, gpu.name, deployment=deployment, optimisations=plan.transforms)
        seconds.append(seconds_of(sized, plan.workload, e["scope"]))
    return SpeedUp(
        e["name"], e["source"], gpu.name, e["scope"], float(e["published_baseline_seconds"]),
        float(e["published_optimised_seconds"]), seconds[0], seconds[1],
        {"baseline_optimise": e["baseline_optimise"], "optimised_optimise": e["optimised_optimise"],
         "optimise_as_published": e.get("optimise_as_published", ""), "runtime": w.runtime.describe(),
         "optimised_runtime": optimised.runtime.describe(),
         "layout": deployment.describe()},
    )  # fmt: skip


def outcomes(path: Path = SPEEDUPS) -> list[SpeedUp]:
    """Every entry, sized."""
    return [outcome(e) for e in read_speedups(path)["entries"]]


def assess(runs: list[SpeedUp], bounds: Bounds = ACCEPTANCE) -> dict[str, Any]:
    """Mean, median and max |error| of the speed-ups, each judged against ``bounds``."""
    errors = [abs(r.error) for r in runs]
    mean = statistics.fmean(errors) if errors else 0.0
    worst = max(errors, default=0.0)
    within = {"mean": mean <= bounds.mean, "max": worst <= bounds.max}
    return {
        "runs": len(runs),
        "sources": len({r.source for r in runs}),
        "gpus": len({r.gpu for r in runs}),
        "mean": mean,
        "median": statistics.median(errors) if errors else 0.0,
        "max": worst,
        "bounds": bounds.to_dict(),
        "within": within,
        "pass": bool(runs) and all(within.values()),
    }
