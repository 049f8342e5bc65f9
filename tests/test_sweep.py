"""wanmeter sweep: grid rows, output formats, plots, monotonic scaling along every knob."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pandas as pd
import pytest

from hybrid.cli import main
from hybrid.sweep import Grid, sweep, sweep_frame
from tests.conftest import STAGES

ACCEPTANCE = [
    "sweep", "--model", "wan2.1-t2v-1.3b,wan2.1-t2v-14b", "--size", "832x480,1280x720",
    "--frames", "17,33,81", "--steps", "20,50",
]  # fmt: skip


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def test_acceptance_sweep_csv_and_plot(tmp_path: Path) -> None:
    csv, png = tmp_path / "s.csv", tmp_path / "s.png"
    assert main([*ACCEPTANCE, "-o", str(csv), "--plot", str(png)]) == 0
    frame = pd.read_csv(csv)
    assert len(frame) == 24  # 2 models x 2 sizes x 3 frame counts x 2 step counts
    assert list(frame.columns) == [
        *("model", "width", "height", "frames", "steps", "batch", "text_len", "cfg"),
        *("text_encoder_flops", "diffusion_core_flops", "vae_decode_flops", "total_flops"),
    ]
    row = frame[(frame.model == "wan2.1-t2v-14b") & (frame.width == 1280) & (frame.frames == 81) & (frame.steps == 50)]
    assert int(row.total_flops.iloc[0]) == 652_992_567_022_616_576
    width, height = _png_size(png)
    assert width >= 1000 and height >= 1000 and png.stat().st_size > 50_000


def test_json_and_parquet(tmp_path: Path) -> None:
    js, pq = tmp_path / "s.json", tmp_path / "s.parquet"
    assert main([*ACCEPTANCE, "-o", str(js)]) == 0
    doc = json.loads(js.read_text())
    assert doc["schema"] == "wanmeter.sweep/1" and len(doc["rows"]) == 24
    assert all(isinstance(r["total_flops"], int) for r in doc["rows"])
    assert main([*ACCEPTANCE, "-o", str(pq)]) == 0
    frame = pd.read_parquet(pq)
    assert len(frame) == 24
    # FLOPs stored as exact decimal strings (int64 would overflow at extreme workloads)
    assert sorted(int(v) for v in frame.total_flops) == sorted(r["total_flops"] for r in doc["rows"])


def test_table_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "--steps", "10,20", "--cfg", "on,off"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:6] == ["model", "size", "frames", "steps", "batch", "cfg"]
    assert len(out) == 2 + 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sweep", "--frames", "17,x"], "expected comma-separated whole numbers"),
        (["sweep", "--frames", "17,80"], "frames: 80 is not of the form 4k+1"),
        (["sweep", "--cfg", "maybe"], "expected on,off"),
        (["sweep", "--format", "parquet"], "parquet needs -o FILE"),
    ],
)
def test_bad_input(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err


GRID = Grid(
    models=("wan2.1-t2v-1.3b", "wan2.1-t2v-14b"),
    sizes=((320, 192), (832, 480), (1280, 720)),
    frames=(1, 17, 81),
    steps=(1, 20, 50),
    batch=(1, 2),
    text_len=(16, 512),
    cfg=(False, True),
)


@pytest.mark.parametrize("knob", ["size", "frames", "steps", "batch", "text_len", "cfg"])
def test_every_stage_monotonic_along_each_knob(knob: str) -> None:
    frame = sweep_frame(sweep(GRID))
    assert len(frame) == 2 * 3 * 3 * 3 * 2 * 2 * 2
    frame["size"] = frame.width * frame.height
    others = [k for k in ("model", "size", "frames", "steps", "batch", "text_len", "cfg") if k != knob]
    for _, group in frame.groupby(others):
        ordered = group.sort_values(knob)
        for s in STAGES:
            values = list(ordered[f"{s}_flops"])
            assert values == sorted(values), (knob, s, values)


def test_sweep_on_a_gpu_costs_each_shape_once_across_steps_and_cfg(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hybrid.accuracy import kind_of
    from hybrid.hardware import get_gpu
    from hybrid.ranges import evidence
    from hybrid.sizing import cost_memo

    evidence(kind_of(get_gpu("h100-sxm"), "diffusers", 1))  # the range's published runs, sized beforehand
    out = tmp_path / "s.json"
    grid = ["--model", "wan2.1-t2v-1.3b", "--size", "256x128", "--frames", "17", "--steps", "20,50", "--cfg", "on,off"]
    png = tmp_path / "s.png"
    cost_memo.cache_clear()
    assert main(["sweep", *grid, "--gpu", "h100-sxm", "-o", str(out), "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # with a seconds-and-memory panel
    assert "tracing" not in capsys.readouterr().err  # closed form: nothing is traced
    assert cost_memo.cache_info().misses == 3  # one shape: each stage costed once
    traced = tmp_path / "t.json"
    assert main(["sweep", *grid, "--gpu", "h100-sxm", "-o", str(traced), "--traced"]) == 0
    assert capsys.readouterr().err.count("tracing wan2.1-t2v-1.3b 256x128x17") == 1  # --traced: one trace
    for a, b in zip(json.loads(out.read_text())["rows"], json.loads(traced.read_text())["rows"], strict=True):
        assert a["total_seconds"] == pytest.approx(b["total_seconds"], rel=1e-12)
        assert a["peak_memory_bytes"] == b["peak_memory_bytes"]
    rows = {(r["steps"], r["cfg"]): r for r in json.loads(out.read_text())["rows"]}
    assert len(rows) == 4 and all(r["fits"] for r in rows.values())
    on50, on20, off50 = rows[(50, True)], rows[(20, True)], rows[(50, False)]
    # the DiT runs once per step per CFG branch: 100, 40 and 50 calls of the same per-call time
    assert on50["diffusion_core_seconds"] == pytest.approx(2.5 * on20["diffusion_core_seconds"], rel=1e-12)
    assert off50["diffusion_core_seconds"] == pytest.approx(on50["diffusion_core_seconds"] / 2, rel=1e-12)
    # the text encoder runs twice with CFG, once without; the VAE once either way
    assert off50["text_encoder_seconds"] == pytest.approx(on50["text_encoder_seconds"] / 2, rel=1e-12)
    assert off50["vae_decode_seconds"] == on50["vae_decode_seconds"]
    # and the same numbers as report --gpu on that workload
    assert main(["report", *grid[:4], "--frames", "17", "--gpu", "h100-sxm", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["total"]["seconds"] == pytest.approx(on50["total_seconds"], rel=1e-12)
    assert doc["total"]["peak_memory_bytes"] == on50["peak_memory_bytes"]


@pytest.mark.parametrize("enabled", [True, False])
def test_a_closed_form_sweep_pauses_the_cyclic_collector_and_restores_it(
    enabled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collector walked every report a sweep keeps (about 0.18 s of the 10,000-workload sweep's 2 s): it is off
    while the reports are made and sized, and left as it was found; a traced sweep keeps it on."""
    import gc

    import hybrid.sweep
    from hybrid.report import estimate

    seen: list[bool] = []

    def spy(w: object) -> object:
        seen.append(gc.isenabled())
        return estimate(w)  # type: ignore[arg-type]

    monkeypatch.setattr(hybrid.sweep, "estimate", spy)
    grid = Grid(models=("wan2.1-t2v-1.3b",), sizes=((256, 128),), frames=(17,), steps=(2, 3))
    (gc.enable if enabled else gc.disable)()
    try:
        assert len(sweep(grid, gpu="h100-sxm")) == 2
        assert seen == [False, False] and gc.isenabled() is enabled
    finally:
        gc.enable()
