"""wanmeter diff: semantics, tolerance edges, added/removed ops, exit codes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from hybrid.cli import main
from hybrid.diff import Delta, DiffInputError, diff_documents, diff_files, module_group
from hybrid.report import estimate
from hybrid.trace import trace
from hybrid.verify import TINY_SPEC
from hybrid.workload import Workload


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def reports(tmp_path: Path) -> tuple[Path, Path]:
    a = _write(tmp_path / "r50.json", estimate(Workload.of(steps=50)).to_dict())
    b = _write(tmp_path / "r40.json", estimate(Workload.of(steps=40)).to_dict())
    return a, b


def test_reports_50_vs_40_steps_exit_1_and_name_the_stage(
    reports: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diff", str(reports[0]), str(reports[1])]) == 1
    out = capsys.readouterr().out
    assert "moved: diffusion_core, total flops" in out
    assert "workload steps: 50 -> 40" in out
    result = diff_files(*reports)
    moved = {d.name for s, d in result.beyond if s == "stages"}
    assert moved == {"diffusion_core"}
    dc = next(d for d in result.sections["stages"] if d.name == "diffusion_core")
    # 100 -> 80 DiT runs of 6_523_436_592_005_120 FLOPs: -20 runs' worth, exactly -20%
    assert dc.change == -20 * 6_523_436_592_005_120
    assert dc.relative == -0.2


def test_identical_reports_exit_0(reports: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(reports[0]), str(reports[0])]) == 0
    assert "within tolerance (rtol 0)" in capsys.readouterr().out


def test_tolerance_edges() -> None:
    d = Delta("x", 1000, 1010)  # +1%
    assert not d.beyond(0.01)  # |change| == rtol * |old| is within
    assert d.beyond(0.0099)
    assert Delta("x", 0, 0).beyond(0.0) is False
    assert Delta("x", 0, 1).beyond(1e9)  # from zero: any change
    assert Delta("x", None, 5).beyond(1.0) and Delta("x", 5, None).beyond(1.0)  # added / removed


def test_rtol_option(reports: tuple[Path, Path]) -> None:
    assert main(["diff", str(reports[0]), str(reports[1]), "--rtol", "0.25"]) == 0
    assert main(["diff", str(reports[0]), str(reports[1]), "--rtol", "0.19"]) == 1


def test_trace_diff_added_and_removed_ops(tmp_path: Path) -> None:
    w = Workload.of(TINY_SPEC, width=64, height=48, frames=1, text_len=7)
    old = trace(w, stages=["diffusion_core"]).to_dict()
    new = copy.deepcopy(old)
    rows = new["stages"]["diffusion_core"]["rows"]
    removed = next(r for r in rows if r["op"] == "aten.convolution")
    rows.remove(removed)
    rows.append({**rows[0], "op": "aten.mystery", "flops": 0})
    new["stages"]["diffusion_core"]["flops"] -= removed["flops"]
    result = diff_documents(("trace", old), ("trace", new))
    ops = {d.name: d for d in result.sections["ops"]}
    assert ops["diffusion_core aten.convolution"].new is None
    assert ops["diffusion_core aten.mystery"].old is None
    assert not result.within_tolerance
    groups = {d.name for d in result.sections["module groups"] if d.beyond(0)}
    assert "diffusion_core patch_embedding aten.convolution" in groups
    same = diff_documents(("trace", old), ("trace", copy.deepcopy(old)))
    assert same.within_tolerance


def test_trace_versions_stated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = Workload.of(TINY_SPEC, width=64, height=48, frames=1, text_len=7)
    old = trace(w, stages=["text_encoder"]).to_dict()
    new = copy.deepcopy(old)
    new["versions"]["diffusers"] = "9.9.9"
    a, b = _write(tmp_path / "a.json", old), _write(tmp_path / "b.json", new)
    assert main(["diff", str(a), str(b), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("### ✅ wanmeter diff (trace): within tolerance")
    assert f"- version diffusers: {old['versions']['diffusers']} -> 9.9.9" in out


def test_module_groups_fold_layer_indices() -> None:
    assert module_group("blocks.12.attn1.to_q") == "blocks.*.attn1.to_q"
    assert module_group("decoder.up_blocks.0.resnets.2.conv1") == "decoder.up_blocks.*.resnets.*.conv1"
    assert module_group("") == "(root)"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("{", "malformed JSON"),
        ('{"schema": "other/1"}', "unknown schema 'other/1'"),
        ('{"schema": "wanmeter.report/1", "stages": 3}', "not a valid wanmeter.report/1 document"),
    ],
)
def test_bad_input_exit_2(
    tmp_path: Path, reports: tuple[Path, Path], content: str | None, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    assert main(["diff", str(reports[0]), str(bad)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err


def test_report_vs_trace_is_bad_input(
    tmp_path: Path, reports: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    w = Workload.of(TINY_SPEC, width=64, height=48, frames=1, text_len=7)
    t = _write(tmp_path / "t.json", trace(w, stages=["vae_decode"]).to_dict())
    assert main(["diff", str(reports[0]), str(t)]) == 2
    assert "cannot compare a report" in capsys.readouterr().err
    with pytest.raises(DiffInputError, match=r"rtol: -1\.0 is invalid"):
        diff_files(reports[0], reports[0], rtol=-1.0)


def test_json_output(reports: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "d.json"
    assert main(["diff", str(reports[0]), str(reports[1]), "--format", "json", "-o", str(out)]) == 1
    doc = json.loads(out.read_text())
    assert doc["schema"] == "wanmeter.diff/1" and doc["within_tolerance"] is False
    total = doc["sections"]["total"][0]
    assert total["old"] - total["new"] == 20 * 6_523_436_592_005_120
