"""Execution schedule: how many calls of each stage one job makes (data, apart from cost)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from hybrid.models import ModelSpec, get_preset
from hybrid.workload import Workload


@dataclass(frozen=True)
class Schedule(Mapping[str, int]):
    """Calls per stage for one job of ``batch`` videos, in pipeline order: each stage's
    :attr:`~hybrid.pipelines.StageDef.calls` of the workload (e.g. the text encoder once for the
    prompt and once more for the negative prompt under CFG; the DiT ``steps`` times, twice per step
    under CFG, as diffusers runs the conditional and unconditional passes as separate calls; one
    ``vae.decode`` of the whole latent batch)."""

    stage_calls: tuple[tuple[str, int], ...]

    def calls(self, stage: str) -> int:
        """Calls of ``stage``."""
        return dict(self.stage_calls)[stage]

    def __getitem__(self, stage: str) -> int:
        return self.calls(stage)

    def __iter__(self) -> Iterator[str]:
        return iter(name for name, _ in self.stage_calls)

    def __len__(self) -> int:
        return len(self.stage_calls)


def schedule(workload: Workload, spec: ModelSpec | None = None) -> Schedule:
    """The :class:`Schedule` of ``workload`` under ``spec``'s pipeline (default: its preset's)."""
    pipeline = (spec or get_preset(workload.model)).pipeline_def
    return Schedule(tuple((s.name, s.calls(workload)) for s in pipeline.stages))
