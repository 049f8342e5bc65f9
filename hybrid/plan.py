"""Which multi-GPU layout runs a job best: every valid layout on up to ``N`` GPUs, sized in closed
form (:func:`hybrid.sizing.size_on_gpu`) and ranked.

A layout is a :class:`~hybrid.deployment.Deployment`: a GPU count ``g <= N``, Ulysses and ring
degrees with ``ulysses * ring = g`` (CFG parallel runs on no modelled runtime), and where the runtime
has FSDP (the original Wan code) each choice of sharded components. The objective is ``latency``
(seconds per video), ``gpu-seconds`` (seconds x GPUs: what a video costs when the other GPUs
run other videos) or ``cost`` (dollars per video: GPU-seconds at a price per GPU-hour). Layouts a
runtime cannot run are listed with the reason; layouts whose per-rank peak does not fit the GPU are
ranked after every one that does. Each layout's seconds and
GPU-seconds carry the range ``report --gpu`` gives such a run (:mod:`hybrid.ranges`: the error band
of published runs on one GPU for the one-GPU layout, on several for the others).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from itertools import chain, combinations
from typing import TYPE_CHECKING, Any

from hybrid.deployment import FSDP_COMPONENTS, MAX_GPUS, NO_CFG_PARALLEL, Deployment
from hybrid.errors import InputError
from hybrid.hardware import GPU, get_gpu
from hybrid.optimisations import Optimisation, plan_of
from hybrid.presets import ModelSpec
from hybrid.prices import Price
from hybrid.ranges import range_evidence, range_of, with_cost, with_range
from hybrid.runtime import Runtime
from hybrid.sizing import GpuSizing, size_on_gpu
from hybrid.workload import Workload

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.optimise import Transform

OBJECTIVES: tuple[str, ...] = ("latency", "gpu-seconds", "cost")
"""What ``wanmeter plan`` ranks by (the first is the default)."""
PLAN_SCHEMA = "wanmeter.plan/1"


@dataclass(frozen=True)
class Candidate:
    """One layout: its sizing, or why it cannot run."""

    deployment: Deployment
    sizing: GpuSizing | None = None
    rejected: str = ""
    optimisations: tuple[Optimisation, ...] = ()
    """The optimisations its job runs (``--optimise``, or a set ``--try-optimisations`` tries): none has a
    range, the ranges rest on baselines."""
    changes: str = ""
    """What it changes of the job as asked to fit the GPU (another runtime, offload), where it does."""

    @property
    def optimised(self) -> bool:
        return bool(self.optimisations)

    @property
    def label(self) -> str:
        """The optimisations as typed, ``baseline`` for none."""
        return ",".join(o.text() for o in self.optimisations) or "baseline"

    @property
    def range_evidence(self) -> str:
        """What the seconds' range rests on, or why there is none."""
        assert self.sizing is not None
        return range_evidence(self.sizing, self.optimised)

    @property
    def fits(self) -> bool:
        return self.sizing is not None and self.sizing.fits

    @property
    def gpu_seconds_range(self) -> dict[str, float] | None:
        """``{"low", "high"}`` of the GPU-seconds, under the same band as the seconds' range."""
        s = self.sizing
        return None if s is None or s.seconds_range is None else range_of(s, s.gpu_seconds)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"layout": self.deployment.describe(), "deployment": self.deployment.to_dict()}
        if self.changes:
            out["changes"] = self.changes
        if self.optimisations:
            out["optimisations"] = [o.text() for o in self.optimisations]
        if self.sizing is None:
            return {**out, "rejected": self.rejected}
        s = self.sizing
        return {
            **out,
            "seconds": s.seconds,
            "gpu_seconds": s.gpu_seconds,
            "comm_seconds": s.comm_seconds,
            "seconds_range": s.seconds_range,
            "gpu_seconds_range": self.gpu_seconds_range,
            "range_evidence": self.range_evidence,
            "peak_memory_bytes": s.peak_memory_bytes,
            "fits": self.fits,
            **(
                {"usd_per_video": s.cost.usd_per_video, "usd_per_video_range": s.cost.usd_per_video_range}
                if s.cost
                else {}
            ),
            "stages": {name: {"seconds": st.seconds, "comm_seconds": st.comm_seconds} for name, st in s.stages.items()},
        }


@dataclass(frozen=True)
class Plan:
    """Every layout of a job on up to ``gpus`` GPUs, best first."""

    workload: Workload
    gpu: str
    gpus: int
    objective: str
    ranked: tuple[Candidate, ...]
    """Layouts that run, by the objective, the ones that fit the GPU's memory first."""
    rejected: tuple[Candidate, ...]
    optimisations: tuple[Optimisation, ...] = ()
    """``--optimise``: applied to every layout (:mod:`hybrid.optimisations`)."""
    tried: tuple[tuple[Optimisation, ...], ...] = ()
    """``--try-optimisations``: the sets ranked with the layouts, the baseline (``()``) first."""
    refused: tuple[tuple[str, str], ...] = ()
    """Sets tried that do not run the job on the GPU: ``(set as typed, why)``."""
    price: Price | None = None
    """What a GPU-hour costs: every layout's dollars per video (``None``: no price known or given)."""
    alternatives: tuple[Candidate, ...] = ()
    """Where no layout fits as asked: the layouts that fit with a change a user can make (offload, the
    original Wan runtime with its FSDP and bf16 weights), best first."""

    @property
    def best(self) -> Candidate | None:
        return self.ranked[0] if self.ranked and self.ranked[0].fits else None

    def caveats(self) -> list[str]:
        """The quality caveat of each optimisation the ranked layouts run, once each, as its source states it."""
        seen: dict[str, str] = {}
        for c in self.ranked:
            for o in c.optimisations:
                if o.definition.caveat:
                    seen.setdefault(o.name, o.definition.caveat)
        return [f"{name}: {caveat}" for name, caveat in seen.items()]

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "schema": PLAN_SCHEMA,
            "workload": self.workload.to_dict(),
            "gpu": self.gpu,
            "gpus": self.gpus,
            "objective": self.objective,
            "best": best.deployment.describe() if best else None,
            "layouts": [c.to_dict() for c in self.ranked],
            "rejected": [c.to_dict() for c in self.rejected],
            "notes": [f"cfg-parallel: {NO_CFG_PARALLEL}"],
            **({"price": self.price.to_dict()} if self.price else {}),
            **({"alternatives": [c.to_dict() for c in self.alternatives]} if self.alternatives else {}),
            **({"optimisations": [o.to_dict() for o in self.optimisations]} if self.optimisations else {}),
            **(
                {
                    "tried": [[o.text() for o in t] for t in self.tried],
                    "tried_optimisations": [o.to_dict() for o in {o.text(): o for t in self.tried for o in t}.values()],
                    "refused": [{"optimisations": text, "why": why} for text, why in self.refused],
                }
                if self.tried
                else {}
            ),
        }


def layouts(spec: ModelSpec, runtime: Runtime, gpus: int) -> list[Deployment]:
    """Every layout on ``1..gpus`` GPUs a runtime could be asked for: Ulysses x ring = the count, and
    with FSDP where the runtime has it, every subset of :data:`FSDP_COMPONENTS` (on 2+ GPUs)."""
    fsdp_sets: list[tuple[str, ...]] = [()]
    if runtime.record.layouts["fsdp"]:
        fsdp_sets = [tuple(c) for c in chain.from_iterable(combinations(FSDP_COMPONENTS, k) for k in range(3))]
    out = []
    for g in range(1, gpus + 1):
        for ulysses in (u for u in range(1, g + 1) if g % u == 0):
            for fsdp in fsdp_sets if g > 1 else [()]:
                out.append(Deployment(gpus=g, ulysses=ulysses, ring=g // ulysses, fsdp=fsdp))
    return out


def plan(
    workload: Workload,
    gpu: str,
    gpus: int,
    objective: str = OBJECTIVES[0],
    optimise: tuple[Optimisation, ...] = (),
    try_optimisations: tuple[tuple[Optimisation, ...], ...] = (),
    price: Price | None = None,
    **sizing: Any,
) -> Plan:
    """Size every layout of :func:`layouts` on ``gpu``, each with its range
    (:func:`hybrid.ranges.with_range`), and rank them (``sizing``: more arguments of
    :func:`~hybrid.sizing.size_on_gpu`, e.g. a calibration). With ``optimise`` every layout runs the
    optimised job (:func:`hybrid.optimisations.plan_of`), without a range (the ranges rest on baselines).
    With ``try_optimisations`` every layout runs the baseline and each set, all ranked together; a set
    that does not run on the GPU (a kernel off its architecture) is listed with why. With ``price`` each
    layout carries its dollars per video (the ``cost`` objective ranks by them)."""
    if objective not in OBJECTIVES:
        raise InputError(f"objective: unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")
    if not isinstance(gpus, int) or isinstance(gpus, bool) or not 1 <= gpus <= MAX_GPUS:
        raise InputError(f"gpus: must be a whole number from 1 to {MAX_GPUS}, got {str(gpus)[:40]}")
    if objective == "cost" and price is None:
        raise InputError(f"objective: cost needs a price per GPU-hour for {gpu}; give --price USD or --prices FILE")
    if optimise and try_optimisations:
        raise InputError("try-optimisations: ranks sets against the baseline; give it or --optimise, not both")
    g = get_gpu(gpu)
    spec = workload.spec
    workload.runtime.check(spec, g.architecture)
    tried = ((), *dict.fromkeys(try_optimisations)) if try_optimisations else ()
    ok, rejected, refused = [], [], []
    transforms: tuple[Transform, ...]
    for chosen in tried or (optimise,):
        job, transforms = workload, ()
        if chosen:
            try:
                planned = plan_of(chosen, workload, g)
            except InputError as e:
                if not tried:
                    raise
                refused.append((",".join(o.text() for o in chosen), str(e)))
                continue
            job, transforms = planned.workload, planned.transforms
        for d in layouts(spec, job.runtime, gpus):
            try:
                sized = size_on_gpu(job, g.name, deployment=d, optimisations=transforms, **sizing)
                sized = with_cost(sized if chosen else with_range(sized), price, job.batch)
                ok.append(Candidate(d, sized, optimisations=chosen))
            except InputError as e:  # the layout does not fit the job (heads, tokens, runtime): listed once
                if not tried or not chosen:
                    rejected.append(Candidate(d, rejected=str(e), optimisations=chosen))

    def key(c: Candidate) -> tuple[bool, float, int]:
        s = c.sizing
        assert s is not None
        cost = {"latency": s.seconds, "gpu-seconds": s.gpu_seconds}.get(objective)
        if cost is None:
            assert s.cost is not None
            cost = s.cost.usd_per_video
        return (not c.fits, cost, c.deployment.gpus)

    ranked = tuple(sorted(ok, key=key))
    alternatives: list[Candidate] = []
    if not tried and not any(c.fits for c in ranked):  # what a user can change to fit the GPU
        for runtime in runtime_changes(workload):
            try:
                found = list(sized_layouts(replace(workload, runtime=runtime), g, gpus, optimise, **sizing))
            except InputError:  # an optimisation the changed runtime does not run
                continue
            for d, sized in found:
                if sized.fits:
                    sized = with_cost(sized if optimise else with_range(sized), price, workload.batch)
                    alternatives.append(Candidate(d, sized, optimisations=optimise, changes=runtime.describe()))
    return Plan(workload, g.name, gpus, objective, ranked, tuple(rejected), optimise, tried, tuple(refused), price,
                tuple(sorted(alternatives, key=key)))  # fmt: skip


def sized_layouts(
    workload: Workload, gpu: GPU, gpus: int, optimise: tuple[Optimisation, ...] = (), **sizing: Any
) -> Iterator[tuple[Deployment, GpuSizing]]:
    """Every layout of :func:`layouts` on up to ``gpus`` GPUs, sized for ``workload`` running ``optimise``
    (:func:`hybrid.optimisations.plan_of`: one line where a method does not run on the GPU); a layout the job
    does not fit (heads, tokens, runtime) left out."""
    planned = plan_of(optimise, workload, gpu)
    job = planned.workload
    for d in layouts(job.spec, job.runtime, gpus):
        try:
            yield d, size_on_gpu(job, gpu.name, deployment=d, optimisations=planned.transforms, **sizing)
        except InputError:
            continue


def runtime_changes(workload: Workload) -> list[Runtime]:
    """The runtimes a user could switch to for less memory: the asked one with offload, with its VAE tiled where
    it tiles one (``--vae-tiling``), and both; and the original Wan code (whose layouts include FSDP) as its README
    runs it: with offload, with bf16 DiT weights where its repository has the flag, and both; each one its records
    and the model allow."""
    asked = workload.runtime
    variants = [replace(asked, offload=True)]
    if asked.record.vae_tiling:
        variants += [replace(asked, vae_tiling=True), replace(asked, offload=True, vae_tiling=True)]
    for offload in (False, True):
        for convert in (False, True):
            variants.append(Runtime("wan", offload=offload, convert_model_dtype=convert))
    out: list[Runtime] = []
    for r in variants:
        if r == asked or r in out:
            continue
        try:
            replace(workload, runtime=r)  # the flags the runtime and the model take
        except InputError:
            continue
        out.append(r)
    return out
