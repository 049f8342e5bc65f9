"""Execution schedule: how many calls of each stage one job makes (data, apart from cost).

A stage names its kind of call count (:data:`hybrid.pipelines.CALLS`); :func:`stage_calls` counts it
for a workload: the prompt (and the negative prompt under CFG), every step (twice under CFG, as
diffusers runs the conditional and unconditional passes as separate calls; video-to-video's
``int(steps x strength)`` of them), the steps of either expert of a two-expert pipeline (the sampler's
split, :mod:`hybrid.sampler`), once, once with ``--image``, once per video of the batch, or once per
segment (and per step of every segment) of a pipeline that makes its video in segments, or of every segment
after the first (speech-to-video's clips that carry motion).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from hybrid.pipelines import StageDef
from hybrid.sampler import high_noise_steps
from hybrid.workload import Workload

EVERY_SEGMENT: dict[str, Callable[[int], tuple[int, int]]] = {
    "segments_plus_one": lambda guidance: (1, 1),  # LightX2V's Wan-Animate-2 CLIP: each segment's frame, the reference
    "every_segment": lambda guidance: (1, 0),
    "segments_twice": lambda guidance: (2, 0),
    "segments_guidance_plus_one": lambda guidance: (guidance + 1, 0),
}
"""Kinds of call count made again in every segment, a shorter last one too: ``(calls per segment, calls once
more)`` under ``guidance`` passes (2 under CFG, else 1)."""


def expert_steps(workload: Workload) -> tuple[int, int]:
    """``(steps of transformer, steps of transformer_2)`` of a two-expert pipeline's job: the
    scheduler's timesteps at or above the boundary go to the high-noise expert
    (:func:`hybrid.sampler.high_noise_steps`; the runtime's own sampler, e.g. the original
    repository's)."""
    boundary = workload.spec.pipeline_def.boundary_ratio
    assert boundary is not None and workload.flow_shift is not None
    original = workload.runtime.sampler == "wan"
    high = high_noise_steps(workload.steps, workload.flow_shift, boundary, original=original)
    return high, workload.steps - high


def call_kind(sd: StageDef, workload: Workload) -> str:
    """Stage ``sd``'s kind of call count in ``workload``: the pipeline's, or the runtime's where its code counts
    otherwise (:attr:`hybrid.runtime.RuntimeDef.stage_calls`: the original Wan-Animate encodes the reference
    image once per segment)."""
    return workload.runtime.record.stage_calls.get(sd.name, sd.calls)


def stage_steps(sd: StageDef, workload: Workload) -> tuple[int, int] | None:
    """``(first, count)``: the denoising steps stage ``sd`` runs, by index from the first step (a
    two-expert pipeline's high-noise expert runs the first ones, the low-noise expert the rest);
    ``None`` for a stage not called per step."""
    kind = call_kind(sd, workload)
    if kind in ("steps", "segment_steps", "cond_segment_steps", "uncond_segment_steps", "later_segment_steps",
                "last_segment_cond_steps", "last_segment_uncond_steps"):  # fmt: skip
        return 0, workload.denoising_steps
    if kind == "high_noise_steps":
        return 0, expert_steps(workload)[0]
    if kind == "low_noise_steps":
        high, low = expert_steps(workload)
        return high, low
    return None


def stage_calls(sd: StageDef, workload: Workload) -> int:
    """Calls of stage ``sd`` in one job of ``workload``."""
    guidance = 2 if workload.cfg else 1
    kind = call_kind(sd, workload)
    if kind == "guidance":
        return guidance
    if kind == "guidance_plus_one":
        return guidance + 1
    steps = stage_steps(sd, workload)
    if steps is not None:  # both passes of CFG, or one: the conditional, and the unconditional under CFG
        passes = {"cond_segment_steps": 1, "uncond_segment_steps": guidance - 1, "last_segment_cond_steps": 1,
                  "last_segment_uncond_steps": guidance - 1}.get(kind, guidance)  # fmt: skip
        return steps[1] * passes * stage_segments(sd, workload)
    if kind == "once":
        return 1
    if kind == "twice":
        return 2
    if kind == "image":
        return 1 if workload.image else 0
    if kind == "videos":
        return workload.batch
    if kind in ("segments", "later_segments", "last_segment"):
        return stage_segments(sd, workload)
    if kind in EVERY_SEGMENT:
        per_segment, more = EVERY_SEGMENT[kind](guidance)
        return per_segment * workload.segments + more
    raise AssertionError(f"stage {sd.name}: unknown kind of calls {kind!r}")


def stage_segments(sd: StageDef, workload: Workload) -> int:
    """The segments (or clips) whose calls stage ``sd`` makes: every segment for a per-segment stage (but a shorter
    last one, :attr:`~hybrid.workload.Workload.last_segment_frames`, which a last-segment stage makes alone), all but
    the first for a later-segment one, else 1 (the job's, or its first clip's)."""
    kind = call_kind(sd, workload)
    short = 1 if workload.last_segment_frames else 0
    if kind.startswith("later_segment"):
        return workload.segments - 1
    if kind.startswith("last_segment"):
        return short
    if kind in EVERY_SEGMENT:
        return workload.segments
    return workload.segments - short if "segment" in kind else 1


@dataclass(frozen=True)
class Schedule(Mapping[str, int]):
    """Calls per stage for one job of ``batch`` videos, in pipeline order (:func:`stage_calls`)."""

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


def schedule(workload: Workload) -> Schedule:
    """The :class:`Schedule` of ``workload`` under its spec's pipeline."""
    return Schedule(tuple((s.name, stage_calls(s, workload)) for s in workload.spec.pipeline_def.stages))
