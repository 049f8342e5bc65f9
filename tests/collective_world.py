"""A real multi-process gloo world on the CPU that counts the bytes each rank's collectives bring in
from other ranks: the independent anchor of :func:`hybrid.ops.collective_bytes` and of the
closed form's collective rows (``tests/test_collective_bytes.py``).

:func:`run_world` forks ``P`` processes (fork: the parent's imports of torch and diffusers are
reused, which a spawn would redo in every child), joins them in a gloo process group and runs, on
every rank:

* each DiT case: diffusers' ``WanTransformer3DModel`` at a tiny config under its own context
  parallelism (:func:`hybrid.trace.parallel.enable_sequence_parallel`, the tracer's set-up) on
  random CPU tensors, every ``c10d`` / ``_c10d_functional`` op seen by :class:`ArrivalCounter`;
* the direct cases: ``all_to_all_single`` (equal splits), ``all_gather_into_tensor``,
  ``reduce_scatter_tensor`` and ``all_reduce`` on tensors whose elements encode their source rank.

Bytes are counted from what arrives, never from ``hybrid.ops``: a collective is issued a second
time on a tensor like its input filled with the sender's rank (exact in bfloat16 for ranks < 256),
and every element of the result whose value is not the rank's own came from another rank. For a
sum, the input holds ``2**rank``, so each element of the result has one bit per rank that added
into it."""

from __future__ import annotations

import os
import pickle
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from torch.utils._python_dispatch import TorchDispatchMode

COUNTED = ("all_to_all_single", "all_gather_into_tensor", "reduce_scatter_tensor", "all_reduce")
NO_TRAFFIC = ("wait_tensor", "_wrap_tensor_autograd")
"""``_c10d_functional`` ops that move nothing: waiting for a result, marking it for autograd."""


@dataclass(frozen=True)
class DitCase:
    """One context-parallel forward: the tiny spec, its workload and the degrees."""

    name: str
    spec: Any  # hybrid.presets.ModelSpec
    shape: tuple[tuple[str, int], ...]
    ulysses: int
    ring: int


def _group_rank(group_name: str) -> tuple[int, int]:
    """This process's rank in the group a functional collective names, and the group's size."""
    from torch.distributed.distributed_c10d import _resolve_process_group

    group = _resolve_process_group(group_name)
    return group.rank(), group.size()


def _wait(t: torch.Tensor) -> torch.Tensor:
    return torch.ops._c10d_functional.wait_tensor(t)  # type: ignore[no-any-return]


class ArrivalCounter(TorchDispatchMode):
    """Per (module, collective): bytes that arrived from other ranks, counted twice and
    independently (by a rank-tagged second issue of the collective, and from the output's
    split sizes / chunks), and calls. Any other collective is listed in :attr:`unhandled`."""

    def __init__(self, rank: int, current_module: Callable[[], str]) -> None:
        super().__init__()
        self.rank = rank
        self.current_module = current_module
        self.counts: dict[tuple[str, str], list[int]] = {}
        self.unhandled: list[str] = []

    def __torch_dispatch__(
        self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        namespace, name = func.namespace, func._overloadpacket.__name__
        if namespace not in ("_c10d_functional", "c10d") or name in NO_TRAFFIC:
            return out
        if namespace != "_c10d_functional" or name not in ("all_to_all_single", "all_gather_into_tensor"):
            self.unhandled.append(f"{namespace}.{name}")
            return out
        x = args[0]
        tagged = _wait(func(torch.full_like(x, self.rank), *args[1:], **kwargs))
        by_tag = int((tagged != self.rank).sum()) * x.element_size()
        result = _wait(out)
        if name == "all_to_all_single":  # rows of the output by source: output_split_sizes
            me, size = _group_rank(args[3])
            splits = list(args[1]) or [result.shape[0] // size] * size
            row = result[0].numel() * result.element_size() if result.shape[0] else 0
            by_split = sum(n for i, n in enumerate(splits) if i != me) * row
        else:  # the output is the group's inputs end to end: all but one chunk are the others'
            by_split = (result.numel() - x.numel()) * result.element_size()
        slot = self.counts.setdefault((self.current_module(), f"_c10d_functional.{name}"), [0, 0, 0])
        slot[0] += by_tag
        slot[1] += by_split
        slot[2] += 1
        return result


def _lse_attention_on_cpu(
    ctx: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
    return_lse: bool = False,
    _save_ctx: bool = True,
    _parallel_config: Any = None,
) -> Any:
    """The ring's attention (diffusers' cuDNN forward op, which has no CPU kernel) in plain torch:
    the output and its log-sum-exp in the model layout ``(B, S, H, D)`` / ``(B, S, H)``. It moves
    nothing between ranks, so the ring's traffic is diffusers' own."""
    q, k, v = (t.transpose(1, 2).float() for t in (query, key, value))
    scores = q @ k.transpose(-1, -2) * (scale if scale is not None else q.shape[-1] ** -0.5)
    lse = torch.logsumexp(scores, dim=-1)
    out = (torch.softmax(scores, dim=-1) @ v).to(query.dtype).transpose(1, 2).contiguous()
    return (out, lse.transpose(1, 2).contiguous()) if return_lse else out


def _dit_case(case: DitCase, rank: int) -> dict[str, Any]:
    from diffusers.models import attention_dispatch

    from hybrid.trace.build import stage_call
    from hybrid.trace.mode import ModuleStack
    from hybrid.trace.parallel import enable_sequence_parallel, quiet_parallel
    from hybrid.workload import Workload

    workload = Workload.of(case.spec, **dict(case.shape))
    with ExitStack() as stack:
        stack.enter_context(quiet_parallel())
        stack.enter_context(mock.patch.object(attention_dispatch, "_cudnn_attention_forward_op", _lse_attention_on_cpu))
        # the cross-attention outside the ring asks SDPA for cuDNN alone: any CPU kernel will do
        stack.enter_context(mock.patch("torch.nn.attention.sdpa_kernel", lambda *a, **k: nullcontext()))
        call = stage_call(
            "diffusion_core",
            workload,
            device="cpu",
            prepare=lambda m: enable_sequence_parallel(m, case.ulysses, case.ring),
        )
        modules = stack.enter_context(ModuleStack(call.module))
        counter = ArrivalCounter(rank, lambda: modules.current)
        stack.enter_context(torch.no_grad())
        stack.enter_context(counter)
        call.run()
    return {"counts": counter.counts, "unhandled": counter.unhandled, "dtype": str(call.dtype)}


def _bits(t: torch.Tensor) -> int:
    """Over the elements of a sum of ``2**rank`` terms: how many terms were added, in total."""
    values = t.to(torch.int64)
    return sum(int(((values >> b) & 1).sum()) for b in range(8))


def _direct_cases(rank: int, size: int, numels: Sequence[int], dtypes: Sequence[torch.dtype]) -> list[dict[str, Any]]:
    """Each collective of :data:`COUNTED` on the world group, ``numel`` elements in, per dtype:
    the input bytes and the bytes that arrived from other ranks."""
    import torch.distributed as dist

    out: list[dict[str, Any]] = []
    for dtype in dtypes:
        for numel in numels:
            esize = torch.empty((), dtype=dtype).element_size()
            mine = torch.full((numel,), rank, dtype=dtype)
            arrived = torch.empty(numel, dtype=dtype)
            dist.all_to_all_single(arrived, mine)  # equal splits
            a2a = int((arrived != rank).sum()) * esize
            gathered = torch.empty(numel * size, dtype=dtype)
            dist.all_gather_into_tensor(gathered, mine)
            gather = int((gathered != rank).sum()) * esize
            # a sum: each rank adds 2**rank; an element of the result has a bit per rank in it
            bit = torch.full((numel,), 2**rank, dtype=dtype)
            chunk = torch.empty(numel // size, dtype=dtype)
            dist.reduce_scatter_tensor(chunk, bit)
            scatter = (_bits(chunk) - chunk.numel()) * esize  # all but the rank's own term
            # all-reduce as the ring runs it: reduce-scatter, then all-gather of the reduced chunk
            again = torch.empty(numel, dtype=dtype)
            dist.all_gather_into_tensor(again, chunk)
            tag = torch.empty(numel, dtype=dtype)
            dist.all_gather_into_tensor(tag, torch.full_like(chunk, rank))
            reduced = bit.clone()
            dist.all_reduce(reduced)
            ring = scatter + int((tag != rank).sum()) * esize
            out.append(
                {
                    "dtype": str(dtype).removeprefix("torch."),
                    "input_bytes": numel * esize,
                    "received": {
                        "all_to_all_single": a2a,
                        "all_gather_into_tensor": gather,
                        "reduce_scatter_tensor": scatter,
                        "all_reduce": ring,
                    },
                    "all_reduce_is_scatter_then_gather": bool(torch.equal(again, reduced)),
                }
            )
    return out


def _worker(
    rank: int,
    size: int,
    store: str,
    out_dir: str,
    cases: Sequence[DitCase],
    numels: Sequence[int],
    dtypes: Sequence[torch.dtype],
) -> None:
    import torch.distributed as dist

    warnings.simplefilter("ignore", FutureWarning)  # torch deprecates the *_tensor names of the c10d calls
    torch.set_num_threads(1)  # a forked child must not enter the parent's OpenMP pool; 2 shared cores
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=size)
    try:
        result = {
            "dit": {c.name: _dit_case(c, rank) for c in cases},
            "direct": _direct_cases(rank, size, numels, dtypes),
        }
    finally:
        dist.destroy_process_group()
    with open(os.path.join(out_dir, f"rank{rank}.pkl"), "wb") as f:
        pickle.dump(result, f)


def _import_in_parent() -> None:
    """What the ranks would otherwise each import (diffusers' model and context parallelism pull in
    torch._dynamo and the device mesh: seconds per process): once, before the fork."""
    import diffusers.models._modeling_parallel  # noqa: F401
    import torch.distributed._functional_collectives
    import torch.distributed.device_mesh  # noqa: F401
    from diffusers import WanTransformer3DModel  # noqa: F401
    from diffusers.models import attention_dispatch  # noqa: F401

    import hybrid.trace.build
    import hybrid.trace.mode
    import hybrid.trace.parallel  # noqa: F401


def run_world(
    size: int,
    work_dir: Path,
    cases: Sequence[DitCase],
    numels: Sequence[int],
    dtypes: Sequence[torch.dtype],
    timeout_s: float = 120.0,
) -> list[dict[str, Any]]:
    """Every case on ``size`` forked gloo ranks; each rank's results, by rank (a world that hangs
    is killed after ``timeout_s``)."""
    import torch.multiprocessing as mp

    _import_in_parent()
    work_dir.mkdir(parents=True, exist_ok=True)
    store = work_dir / "store"  # a file store: no port to pick; a stale one would join an old world
    store.unlink(missing_ok=True)
    args = (size, str(store), str(work_dir), tuple(cases), tuple(numels), tuple(dtypes))
    context = mp.start_processes(_worker, args=args, nprocs=size, join=False, start_method="fork")
    deadline = time.monotonic() + timeout_s
    while not context.join(timeout=1):  # a rank's error is raised here, naming the rank
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            raise TimeoutError(f"the {size}-process gloo world did not finish in {timeout_s} s")
    results = []
    for r in range(size):
        with open(work_dir / f"rank{r}.pkl", "rb") as f:
            results.append(pickle.load(f))
    return results
