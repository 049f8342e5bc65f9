"""Measured interconnect: ``wanmeter calibrate-comm`` times the collectives multi-GPU runtimes send
and fits what the time model needs of them.

Launched by ``torchrun`` (one process per GPU: NCCL on CUDA, gloo on CPU), every rank times each
collective over a ladder of message sizes, with a barrier before each timed call and the median of
several calls after a warm-up:

* ``all_to_all_single`` (Ulysses' exchange of q, k, v and the output);
* ``all_gather_into_tensor`` (ring attention's K and V, FSDP's parameters, the head's output);
* ``send``/``recv`` between rank pairs (ring attention's point-to-point form).

Each measurement records the bytes one rank sends (:func:`hybrid.ops.collective_bytes`; a pair's
message for send/recv) and the seconds; a least-squares line ``seconds = latency + sent / bandwidth``
over the sizes gives each collective's achieved bandwidth and fixed cost. Rank 0 writes the document
(``calibration/interconnect/<name>.json``: device, world size, backend, versions, date);
``report --gpu <name>`` then uses its all-to-all and all-gather fits in place of the cited defaults.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from hybrid import ops
from hybrid.errors import InputError
from hybrid.files import CALIBRATION_DIR, read_json, write_atomic
from hybrid.versions import library_versions

INTERCONNECT_SCHEMA = "wanmeter.interconnect/1"
INTERCONNECT_DIR = CALIBRATION_DIR / "interconnect"
COLLECTIVES: tuple[str, ...] = ("all_to_all_single", "all_gather_into_tensor", "send_recv")
SIZES: tuple[int, ...] = tuple(2**k for k in range(16, 29, 2))
"""Bytes per rank's input: 64 KiB to 256 MiB (a 14B Ulysses all-to-all at 720p is about 97 MB)."""


@dataclass(frozen=True)
class Fit:
    """``seconds = latency_s + sent / bytes_per_s`` of one collective."""

    bytes_per_s: float
    latency_s: float
    how: str = "least squares over the sizes"

    def to_dict(self) -> dict[str, float | str]:
        return {"bytes_per_s": self.bytes_per_s, "latency_s": self.latency_s, "how": self.how}


def fit_line(points: list[tuple[int, float]]) -> Fit:
    """Least squares of ``seconds`` on ``sent`` bytes, the intercept floored at 0. Where noise leaves
    no positive slope (a busy host), the largest message alone: ``bytes_per_s = sent / seconds``, no
    latency, and the fit says so."""
    n = len(points)
    if n < 2 or any(x <= 0 or y <= 0 for x, y in points):
        raise InputError("calibrate-comm: need two or more message sizes with positive bytes and seconds")
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    if slope <= 0:
        x, y = max(points)
        return Fit(x / y, 0.0, "the largest message alone: the timings did not grow with the size (noise)")
    return Fit(1.0 / slope, max(my - slope * mx, 0.0))


def _timed(run: Any, sync: Any, iters: int) -> float:
    import torch.distributed as dist

    run()  # warm-up (connections, buffers)
    times = []
    for _ in range(iters):
        dist.barrier()
        sync()
        t0 = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(sizes: tuple[int, ...] = SIZES, iters: int = 5) -> dict[str, Any]:
    """Time every collective at every size on this rank of the initialised process group; returns
    the measurements and fits (the same on every rank up to timing noise)."""
    import torch
    import torch.distributed as dist

    rank, world = dist.get_rank(), dist.get_world_size()
    if world < 2:
        raise InputError(
            "calibrate-comm: needs a world of two or more ranks; launch it with torchrun --nproc-per-node N"
        )
    cuda = dist.get_backend() == "nccl"
    device = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    all_gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor  # the newer name first
    rows: list[dict[str, Any]] = []
    for size in sizes:
        numel = -(-size // 4 // world) * world  # float32, divisible by the world for equal splits
        x = torch.ones(numel, device=device)
        runs = _runs(x, rank, world, all_gather)
        for name, (run, sent) in runs.items():
            seconds = _timed(run, sync, iters)
            rows.append({"collective": name, "input_bytes": numel * 4, "sent_bytes": sent, "seconds": seconds})
    fits = {c: fit_line([(r["sent_bytes"], r["seconds"]) for r in rows if r["collective"] == c]) for c in COLLECTIVES}
    return {"world_size": world, "backend": dist.get_backend(), "device": str(device.type), "measurements": rows,
            "fits": {c: f.to_dict() for c, f in fits.items()}}  # fmt: skip


def _runs(x: Any, rank: int, world: int, all_gather: Any) -> dict[str, tuple[Any, int]]:
    """Each collective on ``x`` as a closure, with the bytes this rank sends in one call."""
    import torch
    import torch.distributed as dist

    nbytes = x.numel() * x.element_size()
    gathered = torch.empty(world * x.numel(), device=x.device)
    exchanged = torch.empty_like(x)
    peer = rank ^ 1  # pairs (0, 1), (2, 3), ...; an odd world leaves the last rank out of send/recv

    def send_recv() -> None:
        if peer >= world:
            return
        if rank % 2 == 0:
            dist.send(x, peer)
            dist.recv(exchanged, peer)
        else:
            dist.recv(exchanged, peer)
            dist.send(x, peer)

    return {
        "all_to_all_single": (lambda: dist.all_to_all_single(exchanged, x),
                              ops.collective_bytes("all_to_all_single", world, nbytes)[0]),
        "all_gather_into_tensor": (lambda: all_gather(gathered, x),
                                   ops.collective_bytes("all_gather_into_tensor", world, nbytes)[0]),
        "send_recv": (send_recv, 2 * nbytes),  # one message each way in turn
    }  # fmt: skip


def device_name() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def calibrate_comm(
    name: str, output: Path | None = None, sizes: tuple[int, ...] = SIZES, iters: int = 5
) -> Path | None:
    """Initialise the process group torchrun describes (NCCL where CUDA is available, else gloo),
    measure, and write the document from rank 0 (atomically); returns its path on rank 0."""
    import torch
    import torch.distributed as dist

    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise InputError(
            "calibrate-comm: launch it with torchrun, e.g. torchrun --nproc-per-node 8 -m hybrid calibrate-comm"
        )
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)
    try:
        result = measure(sizes, iters)
        rank = dist.get_rank()
    finally:
        dist.destroy_process_group()
    if rank != 0:
        return None
    doc = {
        "schema": INTERCONNECT_SCHEMA,
        "name": name,
        "device_name": device_name(),
        "date": date.today().isoformat(),
        "versions": library_versions(),
        **result,
        "link": {
            "bytes_per_s": min(
                result["fits"][c]["bytes_per_s"] for c in ("all_to_all_single", "all_gather_into_tensor")
            ),
            "latency_s": max(result["fits"][c]["latency_s"] for c in ("all_to_all_single", "all_gather_into_tensor")),
            "how": "the slower of the all-to-all and all-gather fits: what sizing times collectives at",
        },
    }
    path = output or INTERCONNECT_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(doc, indent=2) + "\n", "output")
    return path


def load_interconnect(name: str, directory: Path | None = None) -> dict[str, Any] | None:
    """``calibration/interconnect/<name>.json`` if a calibrate-comm run wrote it, else ``None``."""
    where = os.path.join(directory or INTERCONNECT_DIR, f"{name}.json")  # every sizing asks: no Path until found
    if not os.path.exists(where):
        return None
    path = Path(where)
    doc = read_json(path, "interconnect calibration")
    link = doc.get("link") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or doc.get("schema") != INTERCONNECT_SCHEMA or not isinstance(link, dict):
        raise InputError(f"{path}: not a {INTERCONNECT_SCHEMA} document")
    bw, lat = link.get("bytes_per_s"), link.get("latency_s")
    if not (isinstance(bw, (int, float)) and bw > 0 and isinstance(lat, (int, float)) and lat >= 0):
        raise InputError(f"{path}: link.bytes_per_s must be > 0 and link.latency_s >= 0")
    return dict(doc)
