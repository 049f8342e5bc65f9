"""The cheapest fleet for a request mix (``wanmeter fleet``): which GPUs, how many, each job on how many.

A mix (:func:`read_mix`: CSV, JSON Lines or Parquet, one row per kind of job with its share of the
requests) arrives as a Poisson stream at ``rate`` requests per second. For each GPU type and each number
of GPUs ``g`` a job runs on (1, 2, 4, 8: every kind of job on its fastest layout of ``g`` GPUs that fits,
sized by :func:`hybrid.sizing.size_on_gpu`), a pool of ``c`` groups of ``g`` GPUs serves the stream;
:func:`simulate` runs it in SimPy (FIFO or shortest-job-first, each job on the first free group), seeded,
over replications, and measures the latency quantiles (waiting plus service), utilisation and cost. The
search over ``c`` starts where the pool is stable (``c > rate x mean service``) and stops at the first pool
whose mean p-quantile over replications meets the target; Erlang C (the M/M/c queue, whose exponential
service waits longer than these jobs' fixed ones) gives a pool that surely meets it, so the search never
goes past that (:func:`erlang_c`). A pool costs its GPUs at the GPU's price per GPU-hour
(:mod:`hybrid.prices`) whether busy or idle; dollars per video are that over the videos it serves.
"""

from __future__ import annotations

import math
import random
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybrid.errors import InputError, echo
from hybrid.stats import t_quantile

SCHEMA = "wanmeter.fleet/1"
GROUP_SIZES: tuple[int, ...] = (1, 2, 4, 8)
"""GPUs one job may run on (one server's layouts)."""
DISCIPLINES: tuple[str, ...] = ("fifo", "sjf")
RATE_UNITS: dict[str, float] = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def parse_rate(text: str) -> float:
    """``120/h`` (also ``/s``, ``/min``, ``/d``) as requests per second; one line otherwise."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*/\s*(s|min|h|d)\s*", text)
    value = float(m.group(1)) if m else math.nan
    if m is None or not (math.isfinite(value) and value > 0):
        raise InputError(f"rate: {echo(text, 40)} is invalid; valid: a number > 0 per s, min, h or d, e.g. 200/h")
    return value / RATE_UNITS[m.group(2)]


@dataclass(frozen=True)
class Slo:
    """A latency target: the ``quantile`` of a request's latency (waiting plus service) at most ``seconds``."""

    quantile: float
    seconds: float

    def text(self) -> str:
        return f"p{self.quantile * 100:g}<={self.seconds:g}s"


def parse_slo(text: str) -> Slo:
    """``p95<=300s`` (``p50``..``p99.9``, seconds with ``s``, ``min`` or ``h``); one line otherwise."""
    m = re.fullmatch(r"\s*p([0-9]{1,2}(?:\.[0-9]+)?)\s*<=\s*([0-9]*\.?[0-9]+)\s*(s|min|h)?\s*", text)
    if m is None:
        raise InputError(f"slo: {echo(text, 40)} is invalid; valid: pQ<=SECONDS, e.g. p95<=300s (Q in 50..99.9)")
    q, seconds = float(m.group(1)) / 100, float(m.group(2)) * RATE_UNITS[m.group(3) or "s"]
    if not (0.5 <= q < 1 and seconds > 0):
        raise InputError(f"slo: {echo(text, 40)} is invalid; valid: a quantile from p50 to p99.9 and seconds > 0")
    return Slo(q, seconds)


@dataclass(frozen=True)
class JobKind:
    """One row of a mix: a workload and its share of the requests."""

    name: str
    workload: Any
    share: float


_MIX_COLUMNS = ("model", "size", "width", "height", "frames", "steps", "batch", "image", "ref_images", "share",
                "rate", "name", "runtime", "no_cfg")  # fmt: skip


def _table(path: Path, what: str, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """The rows of a ``.csv``, ``.jsonl``/``.ndjson`` or ``.parquet`` file, each without its empty cells; one line
    naming the file where it cannot be read, has no rows or a column not in ``columns``."""
    import io

    import pandas as pd

    from hybrid.files import read_bytes

    suffix = path.suffix.lower()
    raw = read_bytes(path, f"{what} file", 16 << 20)
    try:
        if suffix == ".csv":
            frame = pd.read_csv(io.BytesIO(raw))
        elif suffix in (".jsonl", ".ndjson"):
            frame = pd.read_json(io.BytesIO(raw), lines=True)
        elif suffix == ".parquet":
            frame = pd.read_parquet(io.BytesIO(raw))
        else:
            raise InputError(f"{what}: {path}: unknown kind of file; valid: .csv, .jsonl, .ndjson, .parquet")
    except InputError:
        raise
    except ImportError:
        raise InputError(f"{what}: {path}: reading Parquet needs pyarrow (pip install 'wanmeter[parquet]')") from None
    except Exception as e:  # the readers' own errors: one line naming the file
        raise InputError(f"{what}: {path}: not a readable {suffix[1:]} table ({type(e).__name__})") from None
    if frame.empty:
        raise InputError(
            f"{what}: {path} has no jobs; valid: one row per {'request' if what == 'trace' else 'kind of job'}"
        )
    unknown = [c for c in frame.columns if c not in columns]
    if unknown:
        raise InputError(f"{what}: {path}: unknown column {echo(str(unknown[0]), 40)}; valid: {', '.join(columns)}")
    if "model" not in frame.columns:
        raise InputError(f"{what}: {path}: no model column; valid: {', '.join(columns)}")
    return [
        {str(k): v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))}
        for row in frame.to_dict("records")
    ]


def _job(vals: dict[str, Any], where: str) -> Any:
    """The workload a row of a mix or a trace names (``model``; ``size`` ``WxH`` or ``width``/``height``;
    ``frames``, ``steps``, ``batch``, ``image``, ``ref_images``, ``no_cfg``, ``runtime`` where not the preset's)."""
    from hybrid.runtime import Runtime
    from hybrid.workload import Workload

    kw: dict[str, Any] = {}
    if "size" in vals:
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(vals["size"]))
        if m is None:
            raise InputError(f"{where}: size {echo(vals['size'], 40)} is invalid; valid: WIDTHxHEIGHT")
        kw["width"], kw["height"] = int(m.group(1)), int(m.group(2))
    for name in ("width", "height", "frames", "steps", "batch", "ref_images"):
        if name in vals:
            v = vals[name]
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            if isinstance(v, bool) or not isinstance(v, int):
                raise InputError(f"{where}: {name} {echo(v, 40)} is invalid; valid: a whole number")
            kw[name] = v
    flags: dict[str, bool] = {}
    for flag in ("image", "no_cfg"):
        if flag in vals:  # a table reader may give a boolean column with gaps as 1.0 and 0.0
            v = vals[flag]
            if not isinstance(v, bool) and v in (0, 1):
                v = bool(v)
            if not isinstance(v, bool):
                raise InputError(f"{where}: {flag} {echo(vals[flag], 40)} is invalid; valid: true or false")
            flags[flag] = v
    try:
        return Workload.of(str(vals["model"]), image=flags.get("image", False), cfg=not flags.get("no_cfg", False),
                           runtime=Runtime(str(vals.get("runtime", "diffusers"))), **kw)  # fmt: skip
    except InputError as e:
        raise InputError(f"{where}: {e}") from None


def _name(vals: dict[str, Any], w: Any) -> str:
    return str(vals.get("name", f"{w.model} {w.width}x{w.height}x{w.frames}"))


def read_mix(path: Path) -> list[JobKind]:
    """A mix file (``.csv``, ``.jsonl``/``.ndjson``, ``.parquet``): one row per kind of job (:func:`_job`'s
    columns, and ``share`` or ``rate`` weights, normalised). One line naming the file and row otherwise."""
    kinds: list[JobKind] = []
    for i, vals in enumerate(_table(path, "mix", _MIX_COLUMNS)):
        where = f"mix: {path}: row {i + 1}"
        weight = vals.get("share", vals.get("rate", 1.0))
        number = isinstance(weight, (int, float)) and not isinstance(weight, bool)
        if not (number and math.isfinite(weight) and weight > 0):
            raise InputError(f"{where}: share {echo(weight, 40)} is invalid; valid: a number > 0")
        w = _job(vals, where)
        kinds.append(JobKind(_name(vals, w), w, float(weight)))
    total = sum(k.share for k in kinds)
    return [JobKind(k.name, k.workload, k.share / total) for k in kinds]


_TRACE_COLUMNS = ("time", *(c for c in _MIX_COLUMNS if c not in ("share", "rate")))


def read_trace(path: Path) -> tuple[list[JobKind], list[tuple[float, int]]]:
    """A trace of requests (``.csv``, ``.jsonl``, ``.parquet``): per row a ``time`` (seconds, or an ISO 8601
    timestamp) and the job (:func:`_job`'s columns). The distinct jobs as kinds (their shares the trace's), and
    ``(seconds after the first request, kind)`` per request in time order."""
    import pandas as pd

    rows = _table(path, "trace", _TRACE_COLUMNS)
    kinds: dict[Any, int] = {}
    named: list[JobKind] = []
    times: list[tuple[Any, int]] = []
    for i, vals in enumerate(rows):
        where = f"trace: {path}: row {i + 1}"
        if "time" not in vals:
            raise InputError(f"{where}: no time; valid: seconds or an ISO 8601 timestamp")
        w = _job(vals, where)
        if w not in kinds:
            kinds[w] = len(named)
            named.append(JobKind(_name(vals, w), w, 0.0))
        times.append((vals["time"], kinds[w]))
    try:
        stamps = pd.to_datetime([t for t, _ in times]) if isinstance(times[0][0], str) else None
    except (ValueError, TypeError):
        raise InputError(f"trace: {path}: a time is not an ISO 8601 timestamp") from None
    seconds: list[float] = []
    for j, (t, _) in enumerate(times):
        v = (stamps[j] - stamps.min()).total_seconds() if stamps is not None else t
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise InputError(f"trace: {path}: row {j + 1}: time {echo(t, 40)} is invalid; valid: seconds >= 0")
        seconds.append(float(v))
    first = min(seconds)
    arrivals = sorted((s - first, k) for s, (_, k) in zip(seconds, times, strict=True))
    counts = [sum(1 for _, k in arrivals if k == i) for i in range(len(named))]
    return [JobKind(k.name, k.workload, n / len(arrivals)) for k, n in zip(named, counts, strict=True)], arrivals


def erlang_c(servers: int, offered: float) -> float:
    """The probability that a request waits in an M/M/c queue of ``servers`` at ``offered`` Erlangs (``rate x
    mean service``; < ``servers``): Erlang's C formula, summed stably."""
    if offered >= servers:
        return 1.0
    term, total = 1.0, 1.0
    for k in range(1, servers):
        term *= offered / k
        total += term
    last = term * offered / servers / (1 - offered / servers)
    return last / (total + last)


def erlang_c_wait(servers: int, rate: float, mean_service: float) -> float:
    """The mean wait of an M/M/c queue: ``C(c, a) / (c mu - lambda)``."""
    mu = 1 / mean_service
    return erlang_c(servers, rate * mean_service) / (servers * mu - rate)


def md1_wait(rate: float, service: float) -> float:
    """The mean wait of an M/D/1 queue (Pollaczek-Khinchine with a fixed service): ``rho s / (2 (1 - rho))``."""
    rho = rate * service
    return rho * service / (2 * (1 - rho))


@dataclass(frozen=True)
class SimResult:
    """One replication: every measured request's wait and latency, and the servers' busy share."""

    waits: tuple[float, ...]
    latencies: tuple[float, ...]
    utilisation: float
    throughput: float
    """Measured requests served per second: their count over the span from the first's arrival to the last's
    departure."""


def simulate(
    rate: float, services: Sequence[float], shares: Sequence[float], servers: int, jobs: int, seed: int,
    discipline: str = "fifo", exponential: bool = False, warmup: int | None = None,
    arrivals: Sequence[tuple[float, int]] | None = None,
) -> SimResult:  # fmt: skip
    """``jobs`` Poisson arrivals at ``rate``, each of kind ``k`` with probability ``shares[k]`` and a service of
    ``services[k]`` seconds (``exponential``: drawn with that mean, the M/M/c test mode), on ``servers`` alike
    servers (SimPy), FIFO or shortest-job-first; the first ``warmup`` requests (default a tenth) are not
    measured. With ``arrivals`` (a trace: ``(seconds, kind)`` in time order) those requests instead, every one
    measured."""
    import simpy

    rng = random.Random(seed)
    env = simpy.Environment()
    sjf = discipline == "sjf"
    pool = simpy.PriorityResource(env, capacity=servers) if sjf else simpy.Resource(env, capacity=servers)
    skip = (0 if arrivals is not None else jobs // 10) if warmup is None else warmup
    waits: list[float] = []
    latencies: list[float] = []
    busy = [0.0]
    window = [math.inf, 0.0]  # the measured requests' first arrival and last departure

    def request(index: int, service: float) -> Any:
        arrived = env.now
        req = pool.request(priority=service) if sjf else pool.request()  # type: ignore[call-arg]
        with req:
            yield req
            started = env.now
            yield env.timeout(service)
        if index >= skip:
            waits.append(started - arrived)
            latencies.append(env.now - arrived)
            window[0] = min(window[0], arrived)
            window[1] = max(window[1], env.now)
            busy[0] += service

    def poisson() -> Any:
        kinds = range(len(services))
        for i in range(jobs):
            yield env.timeout(rng.expovariate(rate))
            k = rng.choices(kinds, weights=shares)[0]
            s = rng.expovariate(1 / services[k]) if exponential else services[k]
            env.process(request(i, s))

    def replay(trace: Sequence[tuple[float, int]]) -> Any:
        for i, (t, k) in enumerate(trace):
            yield env.timeout(t - env.now)
            env.process(request(i, services[k]))

    env.process(poisson() if arrivals is None else replay(arrivals))
    env.run()
    span = max(window[1] - window[0], 1e-12)
    return SimResult(tuple(waits), tuple(latencies), busy[0] / (servers * span), len(latencies) / span)


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def interval(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and the half-width of its 95% interval over replications (Student's t); ``None`` for one value."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None
    t = t_quantile(0.975, len(values) - 1)
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))


@dataclass(frozen=True)
class Pool:
    """One fleet tried: ``groups`` groups of ``gpus_per_job`` GPUs of one type, and what it measured."""

    gpu: str
    gpus_per_job: int
    groups: int
    layouts: tuple[str, ...]
    """Each kind's layout on its group."""
    services: tuple[float, ...]
    usd_per_hour: float | None
    p50: float
    p95: float
    p99: float
    target: float
    """The mean over replications of the target's quantile."""
    target_half_width: float | None
    """Its 95% interval's half-width (``None``: one replication, a trace's replay)."""
    utilisation: float
    throughput_per_hour: float
    """Requests served per hour, measured (the mean over replications)."""
    usd_per_video: float | None
    meets: bool

    @property
    def gpus(self) -> int:
        return self.gpus_per_job * self.groups

    def to_dict(self) -> dict[str, Any]:
        return {"gpu": self.gpu, "gpus": self.gpus, "gpus_per_job": self.gpus_per_job, "groups": self.groups,
                "layouts": list(self.layouts), "service_seconds": list(self.services),
                "usd_per_hour": self.usd_per_hour, "usd_per_video": self.usd_per_video,
                "latency_seconds": {"p50": self.p50, "p95": self.p95, "p99": self.p99},
                "target_seconds": self.target, "target_half_width": self.target_half_width,
                "utilisation": self.utilisation, "throughput_per_hour": self.throughput_per_hour,
                "meets": self.meets}  # fmt: skip


@dataclass(frozen=True)
class Fleet:
    """The search: every pool simulated, the cheapest that meets the target per GPU type and overall."""

    kinds: tuple[JobKind, ...]
    rate: float
    slo: Slo
    gpus: tuple[str, ...]
    max_gpus: int
    discipline: str
    seed: int
    replications: int
    jobs: int
    pools: tuple[Pool, ...]
    skipped: tuple[tuple[str, str], ...] = field(default=())
    """``(GPU type, why)`` where a GPU or a group size could not serve the mix."""
    trace: tuple[int, float] | None = None
    """Where a trace was replayed: its requests and the seconds from the first to the last."""
    optimisations: tuple[Any, ...] = ()
    """``--optimise``: what every job runs (:mod:`hybrid.optimisations`)."""
    slowest_alone: tuple[tuple[str, int, float], ...] = field(default=())
    """``(GPU type, GPUs per job, seconds)``: the slowest kind's job alone, where that alone misses the target
    (no pool of such groups can meet it: the best its quantile can be)."""

    def unmet(self) -> str:
        """Why no pool meets the target, with the best the target's quantile was found to be."""
        q = self.slo.text().split("<=")[0]
        found = [(p.target, f"{p.groups} x {p.gpus_per_job} {p.gpu}") for p in self.pools]
        found += [(sec, f"its slowest job alone on {n} x {gpu}") for gpu, n, sec in self.slowest_alone]
        if not found:
            return f"fleet: no GPU of {', '.join(self.gpus)} can run every kind of job of the mix"
        seconds, where = min(found)
        return (
            f"fleet: no fleet of at most {self.max_gpus} GPUs meets {self.slo.text()}; the best {q} found: "
            f"{seconds:,.0f} s ({where})"
        )

    def best(self, gpu: str | None = None) -> Pool | None:
        """The cheapest pool that meets the target (of ``gpu``; overall), by dollars per hour, then GPUs, then
        the faster."""
        found = [p for p in self.pools if p.meets and (gpu is None or p.gpu == gpu)]
        return min(found, key=lambda p: (p.usd_per_hour if p.usd_per_hour is not None else math.inf, p.gpus, p.target),
                   default=None)  # fmt: skip

    def frontier(self) -> list[Pool]:
        """The pools no other is both cheaper per hour and faster at the target's quantile than."""
        priced = sorted((p for p in self.pools if p.usd_per_hour is not None), key=lambda p: (p.usd_per_hour, p.target))
        out: list[Pool] = []
        for p in priced:
            if not out or p.target < out[-1].target:
                out.append(p)
        return out

    def to_dict(self) -> dict[str, Any]:
        best = self.best()
        return {
            "schema": SCHEMA,
            "mix": [{"name": k.name, "share": k.share, "workload": k.workload.to_dict()} for k in self.kinds],
            "rate_per_hour": self.rate * 3600,
            "slo": {"quantile": self.slo.quantile, "seconds": self.slo.seconds, "text": self.slo.text()},
            "gpus": list(self.gpus),
            "max_gpus": self.max_gpus,
            "discipline": self.discipline,
            "seed": self.seed,
            "replications": self.replications,
            "jobs_per_replication": self.jobs,
            "best": best.to_dict() if best else None,
            "best_per_gpu": {g: (b.to_dict() if (b := self.best(g)) else None) for g in self.gpus},
            "frontier": [p.to_dict() for p in self.frontier()],
            "pools": [p.to_dict() for p in self.pools],
            "skipped": [{"gpu": g, "why": why} for g, why in self.skipped],
            **({"trace": {"requests": self.trace[0], "span_seconds": self.trace[1]}} if self.trace else {}),
            **({"optimisations": [o.to_dict() for o in self.optimisations]} if self.optimisations else {}),
        }


def services_on(
    kinds: Sequence[JobKind], gpu: str, gpus_per_job: int, optimise: tuple[Any, ...] = ()
) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Each kind's fastest layout of exactly ``gpus_per_job`` GPUs that fits the GPU's memory, and its seconds:
    as asked where one fits, else with the changes ``plan`` tries (offload, the original Wan code with FSDP and
    bf16 weights: :func:`hybrid.plan.runtime_changes`); :class:`InputError` naming the kind where none fits."""
    from dataclasses import replace

    from hybrid.hardware import get_gpu
    from hybrid.plan import runtime_changes, sized_layouts

    chosen, seconds = [], []
    for k in kinds:
        best: tuple[float, str] | None = None
        for runtime in (k.workload.runtime, *runtime_changes(k.workload)):
            changed = "" if runtime == k.workload.runtime else f" with {runtime.describe()}"
            # one line where a method does not run on the GPU: the search skips the GPU
            for d, s in sized_layouts(replace(k.workload, runtime=runtime), get_gpu(gpu), gpus_per_job, optimise):
                if d.gpus == gpus_per_job and s.fits and (best is None or s.seconds < best[0]):
                    best = (s.seconds, d.describe() + changed)
            if best is not None:  # as asked where it fits: a change only where it must
                break
        if best is None:
            raise InputError(f"{k.name}: no layout of {gpus_per_job} x {gpu} fits its memory")
        seconds.append(best[0])
        chosen.append(best[1])
    return tuple(chosen), tuple(seconds)


def search(
    kinds: Sequence[JobKind], rate: float, slo: Slo, gpus: Sequence[str], max_gpus: int = 64, discipline: str = "fifo",
    seed: int = 0, replications: int = 5, jobs: int = 2000, prices: dict[str, Any] | None = None,
    arrivals: Sequence[tuple[float, int]] | None = None, optimise: tuple[Any, ...] = (),
) -> Fleet:  # fmt: skip
    """Every GPU type and group size, each pool size from the first stable one up to the first that meets
    ``slo`` (or ``max_gpus``), simulated ``replications`` times (:func:`simulate`, seeds ``seed`` on). With
    ``arrivals`` (a trace) those requests, once: the replay has nothing random."""
    if arrivals is not None:
        span = max(t for t, _ in arrivals) if arrivals else 0.0
        rate, replications, jobs = len(arrivals) / max(span, 1.0), 1, len(arrivals)
    from hybrid.hardware import get_gpu
    from hybrid.prices import price_of

    if not kinds:
        raise InputError("mix: no jobs; valid: one row per kind of job with a model and a share")
    if discipline not in DISCIPLINES:
        raise InputError(f"discipline: {echo(discipline, 40)} is invalid; valid: {', '.join(DISCIPLINES)}")
    if not (isinstance(max_gpus, int) and 1 <= max_gpus <= 100_000):
        raise InputError(f"max-gpus: {echo(max_gpus, 40)} is invalid; valid: a whole number from 1 to 100000")
    shares = [k.share for k in kinds]
    pools: list[Pool] = []
    skipped: list[tuple[str, str]] = []
    slowest: list[tuple[str, int, float]] = []
    for name in gpus:
        g = get_gpu(name)
        price = price_of(g.name, prices)
        for per_job in (n for n in GROUP_SIZES if n <= max_gpus):
            try:
                chosen, services = services_on(kinds, g.name, per_job, optimise)
            except InputError as e:
                skipped.append((g.name, f"{per_job} GPU{'s' if per_job > 1 else ''} per job: {e}"))
                continue
            if max(services) > slo.seconds:  # a request of that kind alone already misses the target
                slowest.append((g.name, per_job, max(services)))
                skipped.append((g.name, f"{per_job} GPU{'s' if per_job > 1 else ''} per job: a job takes up to "
                                        f"{max(services):,.0f} s, over the target's {slo.seconds:g} s"))  # fmt: skip
                continue
            mean = sum(s * p for s, p in zip(services, shares, strict=True))
            first = math.floor(rate * mean) + 1
            # Erlang C: M/M/c's waits are longer than fixed services'; its pool meeting the target bounds the search
            surely = first
            while (
                surely * per_job <= max_gpus
                and erlang_c(surely, rate * mean) * math.exp(-(surely / mean - rate) * (slo.seconds - max(services)))
                > 1 - slo.quantile
            ):  # P(wait > target - longest job) of M/M/c above the share allowed to miss
                surely += 1
            for groups in range(first, min(surely, max_gpus // per_job) + 1):
                reps = [
                    simulate(rate, services, shares, groups, jobs, seed + r, discipline, arrivals=arrivals)
                    for r in range(replications)
                ]
                target, half = interval([quantile(x.latencies, slo.quantile) for x in reps])
                lat = [v for x in reps for v in x.latencies]
                usd_h = price.usd_per_gpu_hour * groups * per_job if price else None
                pools.append(Pool(
                    g.name, per_job, groups, chosen, services, usd_h, quantile(lat, 0.5), quantile(lat, 0.95),
                    quantile(lat, 0.99), target, half, statistics.fmean(x.utilisation for x in reps),
                    statistics.fmean(x.throughput for x in reps) * 3600,
                    usd_h / (rate * 3600) if usd_h is not None else None, target <= slo.seconds,
                ))  # fmt: skip
                if target <= slo.seconds:
                    break
    trace = (len(arrivals), max(t for t, _ in arrivals)) if arrivals else None
    return Fleet(tuple(kinds), rate, slo, tuple(get_gpu(n).name for n in gpus), max_gpus, discipline, seed,
                 replications, jobs, tuple(pools), tuple(skipped), trace, optimise, tuple(slowest))  # fmt: skip
