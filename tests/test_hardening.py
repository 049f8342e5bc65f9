"""Bad and extreme input (issue 13): every defect found by trying wanmeter as a new user would, each
with a test that failed before its fix. One line on stderr, exit 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import one_line_error, run_cli

HUGE = str(10**311 + 7)  # a 312-digit step count


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv", "json"])
def test_1_reports_render_any_int(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    # 10^311 steps: the DiT's FLOPs have ~330 digits; tables and markdown scale them with Decimal
    code, out, err = run_cli(["report", "--steps", HUGE, "--format", fmt], capsys)
    assert code == 0, err
    if fmt in ("table", "markdown"):
        assert "e+" in out and "EFLOP" in out


def test_1_units_render_any_int() -> None:
    from hybrid.render.units import flops, nbytes

    assert flops(10**312) == "1.00e+294 EFLOP"  # 10^312 / 10^18
    assert flops(1_999_999 * 10**18) == "2.00e+6 EFLOP"  # rounded, not truncated
    assert flops(123_456 * 10**18) == "123,456 EFLOP"
    assert nbytes(-(2**200)) == "-1.43e+45 PiB"  # 2^200 / 2^50 = 2^150
    assert flops(6_523_436_592_005_120) == "6.52 PFLOP"


def test_1_sweep_tables_render_huge_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    size = f"{16 * 10**100}x16"
    code, out, err = run_cli(
        ["sweep", "--model", "wan2.1-t2v-1.3b", "--size", size, "--frames", "1", "--steps", "1"], capsys
    )
    assert code == 0, err
    assert "e+187 EFLOP" in out  # the DiT's FLOPs grow with the square of the tokens


def test_1_sizing_beyond_a_float_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    one_line_error(["report", "--steps", HUGE, "--gpu", "h100-sxm"], capsys, "beyond a float's range")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--size", "16x16", "--frames", "4097"], "frames: 1,025 latent frames"),
        (["--size", "16400x16", "--frames", "1"], "width: 1,025 latent columns"),
        (["--size", "16x16400", "--frames", "1"], "height: 1,025 latent rows"),
    ],
)
def test_2_rotary_table_one_place(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    # 1,024 positions per axis (WanRotaryPosEmbed): trace refuses, report warns, both name the axis
    base = ["--model", "wan2.1-t2v-1.3b", *argv]
    one_line_error(["trace", *base], capsys, needle, "rotary table of 1024")
    code, out, _ = run_cli(["report", *base], capsys)
    assert code == 0 and f"warning: {needle}" in out
    one_line_error(["report", *base, "--gpu", "h100-sxm", "--traced"], capsys, needle)


def test_2_the_rotary_limit_is_the_real_modules() -> None:
    # 1,024 latent frames (4,093 video frames) still run on meta: the limit is exclusive of nothing more
    from hybrid.presets import get_preset
    from hybrid.workload import Workload

    spec = get_preset("wan2.1-t2v-1.3b")
    assert Workload.of(spec, width=16, height=16, frames=4093).rotary_overflow() is None
    assert Workload.of(spec, width=16, height=16, frames=4097).rotary_overflow() is not None


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--frames", str(10**30 + 1), "--size", "16x16"], "the pixel video"),
        (["--text-len", str(10**20), "--size", "16x16", "--frames", "1"], "the text embeddings"),
        (["--batch", str(10**20), "--size", "16x16", "--frames", "1"], "the pixel video"),
    ],
)
def test_3_trace_beyond_int64_is_one_line(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    one_line_error(["trace", "--model", "wan2.1-t2v-1.3b", *argv], capsys, needle, "int64")


@pytest.mark.parametrize("rtol", ["nan", "inf", "-inf", "-1", "1e400", "abc"])
def test_5_diff_refuses_nonfinite_or_negative_tolerances(
    rtol: str, tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    doc = Path(str(tmp_path)) / "r.json"
    assert run_cli(["report", "--format", "json", "-o", str(doc)], capsys)[0] == 0
    one_line_error(["diff", str(doc), str(doc), "--rtol", rtol], capsys, "--rtol", "finite number >= 0")


def test_5_diff_files_refuses_nan_from_python() -> None:
    from pathlib import Path

    from hybrid.diff import DiffInputError, diff_files

    with pytest.raises(DiffInputError, match="rtol: nan is invalid"):
        diff_files(Path("a.json"), Path("b.json"), float("nan"))


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["report", "--size", "-16x720"], ("--size", "'-16x720'")),
        (["report", "--size", "1" * 5000 + "x16"], ("--size", "(5,003 characters)")),
        (["report", "--frames", "\uff18\uff11"], ("--frames", "ASCII digits")),  # full-width 81
        (["report", "--frames", "9" * 5000], ("--frames", "(5,000 characters)")),
        (["report", "--runtime", "wan", "--flash-attention", "\uff13"], ("--flash-attention", "ASCII digits")),
        (["sweep", "--frames", "1,x"], ("--frames", "'1,x'")),
    ],
)
def test_8_messages_name_the_option_and_cut_the_value(
    argv: list[str], needles: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    line = one_line_error(argv, capsys, *needles)
    assert len(line) < 200, line


EFFICIENCY_OK = '"efficiency": {"matmul": 0.5, "attention": 0.5, "convolution": 0.5, "memory": 0.5}'


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[1]", "a timing calibration is a JSON object, got list"),
        ("null", "got NoneType"),
        ('"x"', "got str"),
        ('{"schema": "wanmeter.efficiency/1"}', "efficiency must be an object"),
        (
            '{"schema": "wanmeter.efficiency/1", "efficiency": {"matmul": "a", "attention": 0.5, "convolution": 0.5, '
            '"memory": 0.5}}',
            "efficiency.matmul = a is out of range; valid: 0 < value <= 1",
        ),
        (
            '{"schema": "wanmeter.efficiency/1", ' + EFFICIENCY_OK + ', "launch_overhead_s": -1}',
            "launch_overhead_s = -1",
        ),
        (
            '{"schema": "wanmeter.efficiency/1", "efficiency": {"matmul": 0.5, "attention": 0.5, "convolution": 0.5, '
            '"memory": 0.5, "tensor": 1}}',
            "unknown op class 'tensor'",
        ),
        ('{"schema": "wanmeter.efficiency/1", ' + EFFICIENCY_OK + ', "versions": "x"}', "versions must be an object"),
        (
            '{"schema": "wanmeter.efficiency/1", ' + EFFICIENCY_OK + ', "provenance": [1]}',
            "provenance must be an object",
        ),
        ("[" * 10_000, "nested deeper than 64 levels"),
    ],
)
def test_6_efficiency_files_are_validated_before_any_work(
    text: str, needle: str, tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "eff.json"
    path.write_text(text)
    # --traced: a trace would take seconds; the file is refused before it starts
    one_line_error(["report", "--gpu", "h100-sxm", "--traced", "--efficiency", str(path)], capsys, str(path), needle)


def test_7_a_failed_write_leaves_the_previous_file_whole(tmp_path: pytest.TempPathFactory) -> None:
    # RLIMIT_FSIZE at 100 KiB: the trace JSON (~1 MB) cannot be written; the old file stays, no temp left
    import json
    import subprocess
    import sys
    from pathlib import Path

    out = Path(str(tmp_path)) / "t.json"
    out.write_text('{"old": true}\n')
    script = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (102400, 102400)); "
        "from hybrid.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    argv = ["trace", "--model", "wan2.1-t2v-1.3b", "--size", "64x48", "--frames", "1", "--format", "json", "-q"]
    run = subprocess.run([sys.executable, "-c", script, *argv, "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    assert "cannot write" in run.stderr and "previous file, if any, is unchanged" in run.stderr
    assert json.loads(out.read_text()) == {"old": True}
    assert sorted(p.name for p in out.parent.iterdir()) == ["t.json"]


@pytest.mark.parametrize("option", ["-o", "--plot"])
def test_7_a_missing_output_directory_fails_before_the_work(
    option: str, tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    target = str(Path(str(tmp_path)) / "nodir" / "out.png")
    if option == "-o":
        argv = ["trace", "--model", "wan2.1-t2v-1.3b", "--size", "64x48", "--frames", "1", "-o", target]
    else:
        argv = ["sweep", "--model", "wan2.1-t2v-1.3b", "--steps", "1,2", "--plot", target]
    _, _, err = run_cli(argv, capsys)
    assert "nodir does not exist" in err and "tracing" not in err


def test_8_binary_and_utf16_files_are_named(
    tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    binary, utf16 = Path(str(tmp_path)) / "b.json", Path(str(tmp_path)) / "u.json"
    binary.write_bytes(b"\x91\x00\xff")
    utf16.write_text("{}", encoding="utf-16")
    for path in (binary, utf16):
        one_line_error(["diff", str(path), str(path)], capsys, str(path), "not UTF-8 text")
        one_line_error(["report", "--gpu", "h100-sxm", "--efficiency", str(path)], capsys, str(path), "not UTF-8")


@pytest.mark.parametrize(
    "flags",
    [
        ["--offload"],
        ["--efficiency", "x.json"],
        ["--efficiency-override", "attention=0.5"],
        ["--traced"],
        ["--runtime", "wan", "--t5-cpu"],
        ["--runtime", "wan", "--flash-attention", "2"],
        ["--host-tflops", "2"],
    ],
)
def test_9_sizing_flags_without_a_gpu_are_errors(flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    one_line_error(["report", *flags], capsys, "changes only the sizing on a GPU", "give --gpu NAME")


def test_9_a_file_as_model_dir_is_an_error(
    tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "model_index.json"
    path.write_text("{}")
    one_line_error(["report", "--model-dir", str(path)], capsys, "is a file; give the Diffusers folder")


@pytest.fixture(scope="module")
def report_doc() -> dict[str, object]:
    import json

    from hybrid.render.report import to_json
    from hybrid.report import estimate
    from hybrid.workload import Workload

    return dict(json.loads(to_json(estimate(Workload.of()))))


@pytest.fixture(scope="module")
def trace_doc() -> dict[str, object]:
    from hybrid.trace import trace
    from hybrid.workload import Workload

    w = Workload.of(model="wan2.1-t2v-1.3b", width=64, height=48, frames=1)
    return dict(trace(w, stages=("text_encoder",)).to_dict())


def _broken(doc: dict[str, object], path: tuple[object, ...], value: object) -> dict[str, object]:
    import copy

    out = copy.deepcopy(doc)
    node: object = out
    for key in path[:-1]:
        node = node[key]  # type: ignore[index]
    if value is DELETE:
        del node[path[-1]]  # type: ignore[attr-defined]
    else:
        node[path[-1]] = value  # type: ignore[index]
    return out


DELETE = object()


@pytest.mark.parametrize(
    ("kind", "path", "value", "needle"),
    [
        ("report", ("total",), DELETE, "'total' is a required property"),
        ("report", ("total",), 5, "$.total: 5 is not of type 'object'"),
        ("report", ("stages", "vae_decode", "flops"), None, "$.stages.vae_decode.flops: None is not of type 'integer'"),
        ("report", ("stages", "vae_decode", "flops"), 1.5, "$.stages.vae_decode.flops: 1.5 is not of type 'integer'"),
        ("report", ("stages", "vae_decode", "components"), [1], "components: [1] is not of type 'object'"),
        ("report", ("workload",), [1], "$.workload: [1] is not of type 'object'"),
        ("report", ("versions",), "x", "$.versions: 'x' is not of type 'object'"),
        ("trace", ("stages", "text_encoder", "rows", 0, "op"), DELETE, "'op' is a required property"),
        ("trace", ("stages", "text_encoder", "rows"), [[1, 2]], "[1, 2] is not of type 'object'"),
        ("trace", ("stages", "text_encoder", "rows", 0, "module"), 5, "module: 5 is not of type 'string'"),
    ],
)
def test_4_diff_validates_documents_against_their_schema(
    kind: str,
    path: tuple[object, ...],
    value: object,
    needle: str,
    report_doc: dict[str, object],
    trace_doc: dict[str, object],
    tmp_path: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json
    from pathlib import Path

    good = report_doc if kind == "report" else trace_doc
    old, new = Path(str(tmp_path)) / "old.json", Path(str(tmp_path)) / "new.json"
    old.write_text(json.dumps(good))
    new.write_text(json.dumps(_broken(good, path, value)))
    one_line_error(["diff", str(old), str(new)], capsys, str(new), f"valid wanmeter.{kind}/1 document", needle)


def test_4_a_flops_value_beyond_a_float_is_refused(
    report_doc: dict[str, object], tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    from pathlib import Path

    new = Path(str(tmp_path)) / "new.json"
    text = json.dumps(report_doc).replace('"total": {"flops": ', '"total": {"flops": 1e400, "x": ', 1)
    new.write_text(text)
    one_line_error(["diff", str(new), str(new)], capsys, "$.total.flops: inf is not of type 'integer'")


def test_4_every_output_validates_against_its_published_schema(
    report_doc: dict[str, object], trace_doc: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from hybrid.schemas import SCHEMAS, problem

    docs = [report_doc, trace_doc]
    for argv in (
        ["report", "--gpu", "h100-sxm", "--format", "json"],
        ["report", "--gpu", "h100-sxm", "--gpus", "8", "--ulysses", "8", "--format", "json"],
        [
            "report",
            "--model",
            "wan2.2-t2v-a14b",
            "--runtime",
            "wan",
            "--offload",
            "--gpu",
            "rtx4090",
            "--format",
            "json",
        ],
        ["plan", "--gpu", "h100-sxm", "--gpus", "4", "--format", "json"],
        ["sweep", "--model", "wan2.1-t2v-1.3b", "--steps", "1,2", "--gpu", "h100-sxm", "--format", "json"],
        ["fleet", "--mix", str(Path(__file__).resolve().parent.parent / "examples" / "mix.csv"), "--rate", "200/h",
         "--slo", "p95<=300s", "--gpu", "h100-sxm", "--jobs", "500", "--replications", "2", "--format", "json"],
    ):  # fmt: skip
        code, out, err = run_cli(argv, capsys)
        assert code == 0, err
        docs.append(json.loads(out))
    assert {d["schema"] for d in docs} == set(SCHEMAS)
    for doc in docs:
        assert problem(doc) is None, (doc["schema"], problem(doc))
    assert problem({"schema": "wanmeter.report/1"}) == "$: 'model' is a required property"


def test_10_a_plot_of_3000_workloads_is_bounded(tmp_path: pytest.TempPathFactory) -> None:
    # 2 models x 150 step counts x 5 frame counts x 2 batch sizes: 3,000 workloads, drawn in a
    # separate process that reports its own peak memory (RUSAGE_CHILDREN would be every child's)
    import subprocess
    import sys
    import time
    from pathlib import Path

    png = Path(str(tmp_path)) / "sweep.png"
    steps = ",".join(str(i) for i in range(1, 151))
    argv = ["sweep", "--model", "wan2.1-t2v-1.3b,wan2.1-t2v-14b", "--steps", steps, "--frames", "17,33,49,65,81",
            "--batch", "1,2", "--plot", str(png), "-o", str(png.with_suffix(".csv"))]  # fmt: skip
    script = (  # VmHWM: this process image's own peak (ru_maxrss carries the forking parent's over exec)
        "import sys; from hybrid.cli import main; code = main(sys.argv[1:]); "
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]; "
        "print('maxrss_kb', hwm, file=sys.stderr); sys.exit(code)"
    )
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    assert run.returncode == 0, run.stderr
    assert "wrote 3000 rows" in run.stderr
    peak_mib = int(run.stderr.split("maxrss_kb")[-1].split()[0]) / 1024  # kB on Linux
    assert seconds < 10 and peak_mib < 500, (seconds, peak_mib)
    from PIL import Image

    with Image.open(png) as im:
        assert max(im.size) <= 4000, im.size


def test_10_bars_sample_evenly_by_total_flops() -> None:
    from hybrid.render.plots import MAX_BARS, sample_for_bars
    from hybrid.report import estimate
    from hybrid.workload import Workload

    reports = [estimate(Workload.of(model="wan2.1-t2v-1.3b", steps=s)) for s in range(1, 201)]
    shown = sample_for_bars(reports)
    assert len(shown) == MAX_BARS == 60
    assert shown[0].workload.steps == 1 and shown[-1].workload.steps == 200  # the smallest and largest kept
    assert sample_for_bars(reports[:10]) == reports[:10]
