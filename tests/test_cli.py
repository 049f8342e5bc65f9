"""The ``wanmeter`` CLI: outputs, exit codes, one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hybrid.cli import main
from hybrid.workload import Workload
from tests.conftest import STAGES, traced_preset


@pytest.mark.usefixtures("shared_meta_traces")
def test_trace_json_default_workload_equals_flop_counter(capsys: pytest.CaptureFixture[str]) -> None:
    # the CLI's traces are traced_preset's (shared_meta_traces): FlopCounterMode on the same three
    # forwards equals them exactly in tests/test_trace.py::test_full_configs_on_meta_equal_flop_counter
    # [wan2.1-t2v-14b-default-*]; here the JSON must carry exactly those traces' FLOPs
    assert main(["trace", "--format", "json", "--quiet"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "wanmeter.trace/1"
    assert doc["model"] == "wan2.1-t2v-14b"
    assert doc["workload"] == {
        "model": "wan2.1-t2v-14b",
        "width": 1280,
        "height": 720,
        "frames": 81,
        "steps": 50,
        "batch": 1,
        "text_len": 512,
        "cfg": True,
    }
    assert doc["unsupported_ops"] == {}
    workload = Workload.of()
    for stage in STAGES:
        st = doc["stages"][stage]
        assert isinstance(st["flops"], int)
        assert st["flops"] == sum(r["flops"] for r in st["rows"])
        assert st["flops"] == traced_preset(stage, workload).flops
    assert [doc["stages"][s]["calls"] for s in STAGES] == [2, 100, 1]


def test_trace_table_and_progress(capsys: pytest.CaptureFixture[str]) -> None:
    # 64x48 (8x6 latent pixels, 4x3 DiT patches): the table and the progress lines are the same
    # code at any size, and 5 frames still decode in two causal chunks
    args = ["trace", "--model", "wan2.1-t2v-1.3b", "--size", "64x48", "--frames", "5", "--no-cfg", "--steps", "4"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "wan2.1-t2v-1.3b  64x48, 5 frames, 4 steps" in out
    assert "diffusion_core  WanTransformer3DModel" in out
    assert "unsupported ops: none" in out
    assert "[3/3] vae_decode:" in err


def test_trace_single_stage_csv_to_file(tmp_path: Path) -> None:
    out = tmp_path / "rows.csv"
    assert (
        main(
            [
                "trace",
                "--stage",
                "vae_decode",
                "--size",
                "64x64",
                "--frames",
                "1",
                "--format",
                "csv",
                "-o",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    lines = out.read_text().splitlines()
    assert lines[0] == "stage,module,op,category,flops,bytes_read,bytes_written,calls,input_shapes,output_shape"
    assert all(line.startswith("vae_decode,") for line in lines[1:])


def test_trace_model_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "transformer").mkdir()
    (tmp_path / "transformer" / "config.json").write_text(json.dumps({"num_attention_heads": 2, "num_layers": 1}))
    code = main(
        [
            "trace",
            "--model-dir",
            str(tmp_path),
            "--stage",
            "diffusion_core",
            "--size",
            "64x64",
            "--frames",
            "1",
            "--format",
            "json",
            "-q",
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"] == f"local:{tmp_path.name}"
    assert any("vae/config.json not found" in w for w in doc["warnings"])
    # 1 block of D = 2*128 = 256 on 1*4*4 = 16 tokens; to_q: 2*16*256*256 = 2_097_152
    to_q = [r for r in doc["stages"]["diffusion_core"]["rows"] if r["module"] == "blocks.0.attn1.to_q" and r["flops"]]
    assert [r["flops"] for r in to_q] == [2_097_152]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trace", "--frames", "80"], "wanmeter: error: frames: 80 is not of the form 4k+1 >= 1; use 77 or 81"),
        (
            ["trace", "--size", "1000x720"],
            "wanmeter: error: width: 1000 is not a positive multiple of 16; use 992 or 1008",
        ),
        (["trace", "--steps", "0"], "wanmeter: error: steps: 0 is invalid; must be >= 1 (use 1)"),
        (
            ["trace", "--size", "big"],
            "wanmeter: error: argument --size: expected WIDTHxHEIGHT like 1280x720, got 'big'",
        ),
        (
            ["trace", "--model", "wan9"],
            "wanmeter: error: model: unknown model 'wan9'; valid: wan-animate-2-14b, wan-animate-2-14b-distilled, "
            "wan2.1-flf2v-14b-720p, wan2.1-i2v-14b-480p, "
            "wan2.1-i2v-14b-720p, wan2.1-t2v-1.3b, wan2.1-t2v-14b, wan2.1-v2v-1.3b, wan2.1-v2v-14b, wan2.1-vace-1.3b, "
            "wan2.1-vace-14b, wan2.2-animate-14b, wan2.2-i2v-a14b, wan2.2-s2v-14b, wan2.2-t2v-a14b, wan2.2-ti2v-5b",
        ),
        (["trace", "--stage", "decoder"], None),
        (["nope"], None),
        (
            ["report", "--gpu", "h100-sxm", "--gpus", "2", "--ulysses", "3", "--traced"],  # no "tracing ..." first
            "wanmeter: error: ulysses: 3 does not divide the 40 attention heads of wan2.1-t2v-14b; "
            "valid: 1, 2, 4, 5, 8, 10, 20, 40",
        ),
    ],
)
def test_bad_input_one_line_exit_2(args: list[str], message: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("wanmeter: error: ")
    if message is not None:
        assert err.strip() == message


def test_malformed_model_dir_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "config.json").write_text("{")
    assert main(["trace", "--model-dir", str(tmp_path), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"wanmeter: error: {tmp_path / 'vae' / 'config.json'}: malformed JSON")


def test_subprocess_no_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hybrid", "trace", "--frames", "3"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "wanmeter: error: frames: 3 is not of the form 4k+1 >= 1; use 1 or 5"


def test_models_lists_parameter_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["wan2.1-t2v-14b"]["parameters"] == {
        "text_encoder": 5_680_910_336,
        "transformer": 14_288_491_584,
        "vae": 126_892_531,
    }
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\nwan2\.1-t2v-1\.3b +WanPipeline +text_encoder, diffusion_core, vae_decode +832x480x81", out)
    assert "832x480x81" in out


def test_report_default_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report"]) == 0
    out = capsys.readouterr().out
    assert "wan2.1-t2v-14b: 1280x720, 81 frames, 50 steps, batch 1, text_len 512, CFG on" in out
    for line in (
        "text_encoder       2  4.84 TFLOP  9.69 TFLOP",
        "diffusion_core   100  6.52 PFLOP   652 PFLOP   99.9%",
        "vae_decode         1   639 TFLOP   639 TFLOP    0.1%",
        "total: 652992567022616576 FLOPs",
    ):
        assert line in out


def test_report_json_matches_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--format", "json", "--model", "wan2.1-t2v-1.3b", "--steps", "30", "--no-cfg"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "wanmeter.report/1"
    assert doc["workload"] == {
        "width": 832,
        "height": 480,
        "frames": 81,
        "steps": 30,
        "batch": 1,
        "text_len": 512,
        "cfg": False,
    }
    assert [doc["stages"][s]["runs"] for s in STAGES] == [1, 30, 1]
    assert doc["total"]["flops"] == sum(doc["stages"][s]["flops"] for s in STAGES)
    assert isinstance(doc["total"]["flops"], int)


def test_report_markdown_and_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("### wanmeter report: wan2.1-t2v-14b")
    assert "| diffusion_core | 100 | 6.52 PFLOP | 652 PFLOP | 99.9% |" in md
    out = tmp_path / "r.csv"
    assert main(["report", "--format", "csv", "-o", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "stage,component,runs,flops_per_run,flops,share"
    assert "diffusion_core,self_attention_core,100,4682022912000000,468202291200000000," in "\n".join(lines)


def test_report_extrapolation_warning(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--model", "wan2.1-t2v-1.3b", "--size", "1280x720", "--frames", "121"]) == 0
    out = capsys.readouterr().out
    assert "warning: 1280x720 is above the 832x480 wan2.1-t2v-1.3b was trained for" in out
    assert "warning: frames 121 is above the 81 frames" in out


def test_report_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--batch", "0"]) == 2
    assert capsys.readouterr().err.strip() == "wanmeter: error: batch: 0 is invalid; must be >= 1 (use 1)"


@pytest.mark.usefixtures("one_torch_thread")  # the same 56 forwards and rows, without a thread pool's joins
def test_verify_invariants_and_cpu_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import hybrid.verify as verify

    # the shape with frames and a batch (the single-frame one adds no class; the third takes a minute on CPU)
    monkeypatch.setattr(verify, "REFERENCE_SHAPES", verify.REFERENCE_SHAPES[1:2])
    # S2V's 73-frame encodes and 20-clip decodes take minutes with real tensors on a CPU: its one class no other
    # pipeline runs, wav2vec2, has its own device check (tests/test_wan_s2v.py)
    monkeypatch.setattr(verify, "TINY_SPECS", {k: v for k, v in verify.TINY_SPECS.items() if k != "s2v"})
    code = main(["verify", "--only", "pipeline_invariants", "--device", "cpu", "--out-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "PASS pipeline_invariants" in out and "PASS device_cpu" in out
    summary = json.loads((tmp_path / "device_cpu.json").read_text())
    assert summary["pass"] is True
    # one reference shape (128x64, 5 frames, a batch of 2) x 52 stages of the 10 tiny pipelines (t2v 3, i2v 5,
    # flf2v 5, vace 4, t2v-a14b 4, i2v-a14b 5, ti2v 4, animate 6, animate2 8, animate2-distilled 8) = 52, less the 15
    # calls equal to one already checked (same class, config and shape: the A14B experts are the tiny T2V
    # transformer, the text encoder and VAE are shared, the distilled Animate-2 runs the same modules)
    assert summary["cases"] == 37
    stages = {(c["device"], c["stage"]) for c in summary["checks"]}
    assert {s for _, s in stages} == {
        "text_encoder", "image_encoder", "reference_encode", "vae_encode", "reference_pass", "diffusion_core",
        "diffusion_core_uncond", "vae_decode",
    }  # fmt: skip
    assert all(c["rows_identical"] and c["attention_flops"] > 0 for c in summary["checks"])


def test_verify_fails_on_a_wrong_formula(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import hybrid.verify as verify

    real = verify.stage_groups

    def dropped_one(stage: str, workload: Workload) -> object:
        return real(stage, workload)[1:]

    monkeypatch.setattr(verify, "stage_groups", dropped_one)
    monkeypatch.setattr(verify, "REFERENCE_SHAPES", verify.REFERENCE_SHAPES[:1])
    monkeypatch.setattr(
        verify, "_workloads", lambda m, stage="": [verify.reference_workload(m, verify.REFERENCE_SHAPES[0])]
    )
    # one preset: every preset runs the same UMT5 text encoder, and a dropped group fails each alike
    monkeypatch.setattr(verify, "presets_with", lambda stage: ("wan2.1-t2v-1.3b",))
    assert main(["verify", "--only", "text_encoder", "--out-dir", str(tmp_path)]) == 1
    assert "FAIL text_encoder" in capsys.readouterr().out
    summary = json.loads((tmp_path / "text_encoder.json").read_text())
    assert summary["pass"] is False and summary["checks"][0]["mismatches"]
    assert [c["model"] for c in summary["checks"]] == ["wan2.1-t2v-1.3b"]


def test_verify_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--only", "nope"]) == 2
    assert "only: unknown verification 'nope'" in capsys.readouterr().err


def test_a_bug_is_not_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    import hybrid.report

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(hybrid.report, "estimate", broken)
    with pytest.raises(RuntimeError, match="a bug"):  # a traceback, not "wanmeter: error: ..." and exit 2
        main(["report"])


def test_input_error_is_one_line_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import hybrid.report
    from hybrid.errors import InputError

    def refuse(*args: object, **kwargs: object) -> None:
        raise InputError("size: too big\nsecond line")

    monkeypatch.setattr(hybrid.report, "estimate", refuse)
    assert main(["report"]) == 2
    # one line: the newline escaped as the control character it is (a file name may hold one)
    assert capsys.readouterr().err == "wanmeter: error: size: too big\\nsecond line\n"


def test_efficiency_overrides_are_class_value_pairs() -> None:
    from hybrid.errors import InputError
    from hybrid.options import efficiency_overrides

    assert efficiency_overrides(["attention=0.75", " memory =0.5"]) == {"attention": 0.75, "memory": 0.5}
    with pytest.raises(InputError, match=r"expected CLASS=VALUE \(e.g. attention=0.75\), got 'attention'"):
        efficiency_overrides(["attention"])


def test_report_gpu_is_the_library_sized_report(capsys: pytest.CaptureFixture[str]) -> None:
    from dataclasses import replace

    from hybrid.accuracy import with_range
    from hybrid.prices import price_of
    from hybrid.ranges import with_cost
    from hybrid.render.report import to_json
    from hybrid.report import sized_report

    args = ["--model", "wan2.1-t2v-1.3b", "--size", "480x320", "--frames", "17", "--gpu", "h100-sxm"]
    assert main(["report", *args, "--efficiency-override", "memory=0.5", "--format", "json"]) == 0
    w = Workload.of(model="wan2.1-t2v-1.3b", width=480, height=320, frames=17)
    report = with_range(sized_report(w, "h100-sxm", overrides={"memory": 0.5}))  # the CLI adds the range
    assert report.gpu is not None and report.gpu.seconds_range is not None
    # and the cost at the GPU's median on-demand price
    report = replace(report, gpu=with_cost(report.gpu, price_of("h100-sxm"), w.batch))
    assert capsys.readouterr().out == to_json(report)


def test_a_ctrl_c_a_finalizer_swallowed_still_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a KeyboardInterrupt raised inside a __del__ is printed as "Exception ignored" and lost; the SIGINT handler
    # noted it, so the command still ends as interrupted (issue 22, item 6: found by the fuzz suite)
    import contextlib
    import os
    import signal

    from hybrid import cli

    def swallowing(args: object) -> int:
        with contextlib.suppress(KeyboardInterrupt):  # as a finalizer would
            os.kill(os.getpid(), signal.SIGINT)
        return 0

    monkeypatch.setattr(cli, "cmd_models", swallowing)
    before = signal.getsignal(signal.SIGINT)
    assert cli.main(["models"]) == 130
    assert capsys.readouterr().err.strip() == "wanmeter: interrupted"
    assert signal.getsignal(signal.SIGINT) is before  # restored


def test_a_ctrl_c_inside_a_finalizer_prints_no_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the SIGINT handler raises inside a __del__: Python reports it to sys.unraisablehook ("Exception ignored in
    # ... Traceback") and goes on; the CLI's hook keeps quiet about a Ctrl-C and the command ends as interrupted
    # (the fuzz suite's Ctrl-C during a trace met this when the signal landed in a weakref finalizer)
    import os
    import signal
    import sys

    from hybrid import cli

    class Interrupted:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)

    def finalizing(args: object) -> int:
        Interrupted()  # dropped at once: its __del__ runs here
        return 0

    reports: list[object] = []  # what would be printed as "Exception ignored in ..."
    monkeypatch.setattr(sys, "unraisablehook", reports.append)
    monkeypatch.setattr(cli, "cmd_models", finalizing)
    assert cli.main(["models"]) == 130
    assert capsys.readouterr().err.strip() == "wanmeter: interrupted"
    assert reports == [] and sys.unraisablehook == reports.append  # quiet, then restored


def test_verify_only_device_runs_the_device_check_alone() -> None:
    import functools

    from hybrid.errors import InputError
    from hybrid.verify import selected, verify_device

    runs = selected("device", "cpu")
    assert len(runs) == 1 and isinstance(runs[0], functools.partial)
    assert runs[0].func is verify_device and runs[0].args == ("cpu",)
    with pytest.raises(InputError, match=r"^only: device needs --device \(cpu or cuda\)$"):
        selected("device", None)
    assert len(selected(None, "cpu")) == len(selected(None)) + 1  # every verification, then the device's
