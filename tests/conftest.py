"""Shared fixtures: tiny configs of the real classes (fast on a real CPU) and helpers."""

from __future__ import annotations

from functools import lru_cache

import pytest

from hybrid.models import ModelSpec, get_preset
from hybrid.pipelines import T2V
from hybrid.trace import StageTrace, trace_stage
from hybrid.verify import TINY_SPEC
from hybrid.workload import Workload

STAGES = T2V.stage_names
"""The text-to-video pipeline's stages (the presets most tests run)."""

# 64x48, 9 frames -> 3 latent frames of 6x8, 3*3*4 = 36 DiT tokens; 7 text tokens.
TINY_WORKLOAD = Workload(model="wan2.1-t2v-1.3b", width=64, height=48, frames=9, text_len=7)


@pytest.fixture
def tiny_spec() -> ModelSpec:
    return TINY_SPEC


@pytest.fixture
def tiny_workload() -> Workload:
    return TINY_WORKLOAD


@lru_cache(maxsize=64)
def traced_preset(stage: str, workload: Workload) -> StageTrace:
    """Meta trace of a preset stage, shared by the test modules (full-size traces take seconds)."""
    return trace_stage(stage, workload, get_preset(workload.model))
