"""Tracing one rank of a multi-GPU forward in one process, through the real collectives.

:func:`fake_world` starts torch's fake process group (``torch.testing._internal.distributed.fake_pg``):
a world of ``P`` ranks of which this process is rank 0, whose collectives return outputs of the
right shapes without sending anything. Under it diffusers' own context parallelism
(:func:`enable_sequence_parallel`: ``enable_parallelism`` with a ``ContextParallelConfig``) runs
on the meta device, and every collective reaches the dispatch mode as a ``_c10d_functional`` op.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from unittest import mock

import torch

from hybrid.trace.build import _quiet_libraries

RING_BACKEND = "_native_cudnn"
"""The attention backend a ring trace runs: the ring merges partial results by their log-sum-exp,
which diffusers' ``native`` backend does not return (its ``flash`` backends and cuDNN do; cuDNN's
kernel has a meta implementation)."""


@contextlib.contextmanager
def quiet_parallel() -> Iterator[None]:
    """Silence what a context-parallel forward says every call: diffusers' notes (a 1-d timestep is
    not split), torch's deprecation of the ``all_gather_tensor`` diffusers calls."""
    import diffusers  # noqa: F401  # configures its loggers on import: before their levels are set

    with _quiet_libraries(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


@contextlib.contextmanager
def fake_world(size: int) -> Iterator[None]:
    """A fake process group of ``size`` ranks, this process rank 0, for the duration."""
    import torch.distributed as dist
    from torch.testing._internal.distributed.fake_pg import FakeStore

    if dist.is_initialized():
        raise RuntimeError("trace: a process group is already initialised; trace a deployment in its own process")
    dist.init_process_group("fake", store=FakeStore(), rank=0, world_size=size)
    try:
        yield
    finally:
        dist.destroy_process_group()


def enable_sequence_parallel(module: torch.nn.Module, ulysses: int, ring: int) -> None:
    """diffusers' context parallelism on ``module`` (a ``WanTransformer3DModel``) inside
    :func:`fake_world`. diffusers asks ``torch.accelerator.device_count()`` for a device index,
    which is 0 without a GPU: it is patched to 1 then."""
    from diffusers.models._modeling_parallel import ContextParallelConfig

    if ring > 1:  # set on every attention processor; diffusers also makes it the process-wide default
        from diffusers.models.attention_dispatch import _AttentionBackendRegistry

        active = _AttentionBackendRegistry._active_backend
        with _quiet_libraries():
            module.set_attention_backend(RING_BACKEND)  # type: ignore[operator]
        _AttentionBackendRegistry.set_active_backend(active)
    config = ContextParallelConfig(ulysses_degree=ulysses, ring_degree=ring)
    count = max(torch.accelerator.device_count(), 1)
    with _quiet_libraries(), mock.patch("torch.accelerator.device_count", return_value=count):
        module.enable_parallelism(config=config)  # type: ignore[operator]
