"""The range around each time of ``sweep --gpu`` and ``plan``: the error band of the published runs of
the row's kind (:func:`hybrid.accuracy.band`, as ``report --gpu`` uses it) applied to the row's own
seconds, in table, CSV and JSON, with the evidence it rests on; a kind with no evidence says why."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hybrid import accuracy, ranges
from hybrid.cli import main
from hybrid.hardware import get_gpu
from hybrid.memo import clear_memos
from hybrid.schemas import problem

SWEEP = ["sweep", "--model", "wan2.1-t2v-1.3b", "--size", "256x128", "--frames", "17,33", "--steps", "4,8",
         "--gpu", "h100-sxm"]  # fmt: skip
PLAN = ["plan", "--model", "wan2.1-t2v-1.3b", "--size", "256x128", "--frames", "17", "--steps", "4",
        "--gpu", "h100-sxm", "--gpus", "2"]  # fmt: skip
ONE_GPU = accuracy.kind_of(get_gpu("h100-sxm"), "diffusers", 1)
MULTI_GPU = accuracy.kind_of(get_gpu("h100-sxm"), "diffusers", 2)


def _out(argv: list[str], folder: Path, fmt: str) -> str:
    out = folder / f"out.{fmt}"
    assert main([*argv, "--format", fmt, "-o", str(out)]) == 0
    return out.read_text()


@pytest.fixture(scope="module")
def bands() -> dict[tuple[str, str, str], accuracy.Band]:
    """The band of each kind over the whole public set, every run sized (not the report's lazy
    :func:`~hybrid.accuracy.public_band`)."""
    runs = accuracy.outcomes()
    out = {}
    for kind in (ONE_GPU, MULTI_GPU):
        b = accuracy.band(runs, kind)
        assert b is not None and b.runs >= accuracy.MIN_EVIDENCE
        out[kind] = b
    return out


@pytest.fixture(scope="module")
def sweep_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("sweep")
    return {fmt: _out(SWEEP, folder, fmt) for fmt in ("json", "csv", "table")}


@pytest.fixture(scope="module")
def plan_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("plan")
    return {fmt: _out(PLAN, folder, fmt) for fmt in ("json", "csv", "table")}


def test_a_sweep_row_carries_its_kinds_band_applied_to_its_seconds(
    sweep_outputs: dict[str, str], bands: dict[tuple[str, str, str], accuracy.Band]
) -> None:
    b = bands[ONE_GPU]
    doc = json.loads(sweep_outputs["json"])
    assert problem(doc) is None
    rows = doc["rows"]
    assert len(rows) == 4
    for row in rows:
        seconds = row["total_seconds"]
        # published = predicted / (1 + error): the 95th percentile error gives the low end, the 5th the high
        assert row["total_seconds_low"] == seconds / (1 + b.hi)
        assert row["total_seconds_high"] == seconds / (1 + b.lo)
        # the kind's own runs where there are enough of them (diffusers on one data-centre GPU), else a coarser tier
        assert (
            row["range_evidence"]
            == b.basis
            == f"{b.runs} published runs (data-centre GPUs, diffusers runtime, one GPU)"
        )
        assert isinstance(row["total_flops"], int) and isinstance(row["peak_memory_bytes"], int)
    # the CSV carries the same floats, exactly
    for row, rec in zip(rows, csv.DictReader(io.StringIO(sweep_outputs["csv"])), strict=True):
        assert float(rec["total_seconds_low"]) == row["total_seconds_low"]
        assert float(rec["total_seconds_high"]) == row["total_seconds_high"]
        assert rec["range_evidence"] == b.basis and int(rec["total_flops"]) == row["total_flops"]
    # the table writes each time as report does, and says what the ranges rest on
    first = rows[0]
    cell = f"{first['total_seconds']:,.1f} ({first['total_seconds_low']:,.1f}-{first['total_seconds_high']:,.1f})"
    assert cell in sweep_outputs["table"]
    assert sweep_outputs["table"].endswith(f"from its error on {b.basis}\n")


def test_a_sweep_rows_range_is_the_one_report_gives_the_same_job(
    sweep_outputs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    row = json.loads(sweep_outputs["json"])["rows"][-1]  # 33 frames, 8 steps
    argv = ["report", "--model", "wan2.1-t2v-1.3b", "--size", "256x128", "--frames", "33", "--steps", "8"]
    assert main([*argv, "--gpu", "h100-sxm", "--format", "json"]) == 0
    total = json.loads(capsys.readouterr().out)["total"]
    assert (total["seconds"], total["seconds_range"]["low"], total["seconds_range"]["high"]) == (
        row["total_seconds"], row["total_seconds_low"], row["total_seconds_high"],
    )  # fmt: skip
    assert total["seconds_range"]["basis"] == row["range_evidence"]


def test_a_plan_layout_carries_the_band_of_its_gpu_count(
    plan_outputs: dict[str, str], bands: dict[tuple[str, str, str], accuracy.Band]
) -> None:
    doc = json.loads(plan_outputs["json"])
    assert problem(doc) is None
    layouts = {c["layout"]: c for c in doc["layouts"]}
    assert set(layouts) == {"--gpus 1", "--gpus 2 --ulysses 2", "--gpus 2 --ring 2"}
    for name, c in layouts.items():
        b = bands[ONE_GPU if name == "--gpus 1" else MULTI_GPU]
        assert c["seconds_range"] == {
            "low": c["seconds"] / (1 + b.hi), "high": c["seconds"] / (1 + b.lo),
            "error_low": b.lo, "error_high": b.hi, "runs": b.runs, "basis": b.basis,
        }  # fmt: skip
        assert c["gpu_seconds_range"] == {"low": c["gpu_seconds"] / (1 + b.hi), "high": c["gpu_seconds"] / (1 + b.lo)}
        assert c["range_evidence"] == b.basis
    assert bands[MULTI_GPU].basis.endswith("(data-centre GPUs, multi-GPU)")  # no diffusers multi-GPU runs: coarser
    for rec in csv.DictReader(io.StringIO(plan_outputs["csv"])):
        c = layouts[next(n for n, c in layouts.items() if c["seconds"] == float(rec["seconds"]))]
        assert float(rec["seconds_low"]) == c["seconds_range"]["low"]
        assert float(rec["gpu_seconds_high"]) == c["gpu_seconds_range"]["high"]
        assert rec["range_evidence"] == c["range_evidence"]
    table = plan_outputs["table"]
    one = layouts["--gpus 1"]
    assert f"{one['seconds']:,.1f} ({one['seconds_range']['low']:,.1f}-{one['seconds_range']['high']:,.1f})" in table
    assert f"seconds (low-high) on 2 GPUs: the range published runs fall in around the model's time, from its " \
        f"error on {bands[MULTI_GPU].basis}\n" in table  # fmt: skip
    assert f"seconds (low-high) on 1 GPU: the range published runs fall in around the model's time, from its " \
        f"error on {bands[ONE_GPU].basis}\n" in table  # fmt: skip


def test_the_schemas_hold_the_ranges_to_their_types(
    sweep_outputs: dict[str, str], plan_outputs: dict[str, str]
) -> None:
    sweep_doc = json.loads(sweep_outputs["json"])
    sweep_doc["rows"][0]["total_seconds_low"] = -1.0
    assert problem(sweep_doc) == "$.rows[0].total_seconds_low: -1.0 is less than the minimum of 0"
    plan_doc = json.loads(plan_outputs["json"])
    del plan_doc["layouts"][0]["seconds_range"]["basis"]
    assert problem(plan_doc) is not None and "seconds_range" in str(problem(plan_doc))


def test_the_band_is_looked_up_once_per_kind_not_per_row(monkeypatch: pytest.MonkeyPatch) -> None:
    from hybrid.plan import plan
    from hybrid.sweep import Grid, sweep
    from hybrid.workload import Workload

    calls: list[tuple[str, str, str]] = []
    real = accuracy.public_band

    def counted(kind: tuple[str, str, str]) -> accuracy.Band | None:
        calls.append(kind)
        return real(kind)

    monkeypatch.setattr(accuracy, "public_band", counted)
    clear_memos()
    reports = sweep(Grid(models=("wan2.1-t2v-1.3b",), sizes=((256, 128),), steps=tuple(range(1, 41))), gpu="h100-sxm")
    assert len(reports) == 40 and all(r.gpu is not None and r.gpu.seconds_range for r in reports)
    assert calls == [ONE_GPU]
    p = plan(Workload.of("wan2.1-t2v-1.3b", 256, 128, frames=17, steps=4), "h100-sxm", 8)
    assert len(p.ranked) > 8 and calls == [ONE_GPU, MULTI_GPU]  # one GPU: memoised; several: once


@pytest.fixture
def no_evidence(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No kind has enough published runs (the memoised evidence forgotten before and after)."""
    monkeypatch.setattr(accuracy, "MIN_EVIDENCE", 10**6)
    clear_memos()
    yield
    clear_memos()


def test_a_row_whose_kind_has_no_evidence_says_so(no_evidence: None, tmp_path: Path) -> None:
    why = "no range: fewer than 1000000 published runs of this kind (data-centre, diffusers, one GPU), or of any "
    doc = json.loads(_out(SWEEP, tmp_path, "json"))
    assert problem(doc) is None
    for row in doc["rows"]:
        assert row["total_seconds_low"] is None and row["total_seconds_high"] is None
        assert row["range_evidence"].startswith(why)
    rec = next(csv.DictReader(io.StringIO(_out(SWEEP, tmp_path, "csv"))))
    assert (rec["total_seconds_low"], rec["total_seconds_high"]) == ("", "") and rec["range_evidence"].startswith(why)
    table = _out(SWEEP, tmp_path, "table")
    body = table.split("\n\n")[0]
    assert f"{doc['rows'][0]['total_seconds']:,.1f}  " in body and "(" not in body  # the times alone
    assert table.splitlines()[-1].startswith(f"seconds: {why}")
    plan_doc: dict[str, Any] = json.loads(_out(PLAN, tmp_path, "json"))
    assert problem(plan_doc) is None
    for c in plan_doc["layouts"]:
        assert c["seconds_range"] is None and c["gpu_seconds_range"] is None
        assert c["range_evidence"].startswith("no range: fewer than 1000000 published runs of this kind")
    assert all(r["seconds_low"] == "" for r in csv.DictReader(io.StringIO(_out(PLAN, tmp_path, "csv"))))


def test_a_public_set_that_cannot_be_read_leaves_the_sizing_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from hybrid.sizing import size_on_gpu
    from hybrid.workload import Workload

    def unreadable(kind: tuple[str, str, str]) -> accuracy.Band | None:
        raise OSError("public_timings.json: no such file")

    monkeypatch.setattr(accuracy, "public_band", unreadable)
    clear_memos()
    try:
        sized = size_on_gpu(Workload.of("wan2.1-t2v-1.3b", 256, 128, frames=17, steps=4), "h100-sxm")
        assert ranges.with_range(sized) is sized
        assert ranges.range_evidence(sized) == (
            "no range: the published runs could not be read (public_timings.json: no such file)"
        )
    finally:
        clear_memos()


def test_a_range_beyond_a_float_is_left_out() -> None:
    from hybrid.sizing import size_on_gpu
    from hybrid.workload import Workload

    sized = size_on_gpu(Workload.of("wan2.1-t2v-1.3b", 256, 128, frames=17, steps=4), "h100-sxm")
    b = ranges.evidence_of(sized).band
    assert b is not None and b.lo < 0  # the high end divides by 1 + lo < 1
    assert ranges.range_of(sized, 1.7e308) is None
    assert ranges.range_of(sized, 1.0) == {"low": 1 / (1 + b.hi), "high": 1 / (1 + b.lo)}
