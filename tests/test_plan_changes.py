"""``plan`` where no layout fits the GPU as asked: the layouts that fit with a change a user can make (offload,
the original Wan runtime with FSDP and bf16 weights), named with what was given up."""

from __future__ import annotations

import json

import pytest

from hybrid.plan import plan
from hybrid.schemas import problem
from hybrid.workload import Workload
from tests.conftest import run_cli


def test_a_job_that_fits_nowhere_as_asked_gets_the_changes_that_fit() -> None:
    # Wan2.2 I2V-A14B on H100s under diffusers: both experts resident, 81.8 GiB a rank on every layout
    p = plan(Workload.of("wan2.2-i2v-a14b"), "h100-sxm", 8)
    assert p.best is None and p.ranked and not any(c.fits for c in p.ranked)
    assert p.alternatives and all(c.fits and c.changes for c in p.alternatives)
    seconds = [c.sizing.seconds for c in p.alternatives if c.sizing]
    assert seconds == sorted(seconds)
    assert p.alternatives[0].changes == "--runtime diffusers --offload"
    assert any(c.changes.startswith("--runtime wan") and c.deployment.fsdp for c in p.alternatives)


def test_a_job_that_fits_is_not_changed() -> None:
    p = plan(Workload.of("wan2.1-t2v-1.3b"), "h100-sxm", 2)
    assert p.best is not None and p.alternatives == ()


def test_the_table_names_the_change_and_what_it_gave_up(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "--model", "wan2.2-i2v-a14b", "--gpu", "h100-sxm", "--gpus", "8"]
    code, out, _ = run_cli(argv, capsys)
    assert code == 0 and "best: none fits the GPU's memory as asked" in out
    assert "fits with a change: --gpus 8 --ulysses 8 with --runtime diffusers --offload:" in out
    assert "gave up: --gpus 8 --ulysses 8 as asked" in out and "layouts that fit with a change" in out
    code, out, _ = run_cli([*argv, "--format", "json"], capsys)
    doc = json.loads(out)
    assert problem(doc) is None and doc["best"] is None and doc["alternatives"][0]["changes"]
