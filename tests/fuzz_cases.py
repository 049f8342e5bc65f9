# ruff: noqa: E501  (the reproductions are kept whole, one a line, as in tests/cli_corpus.py)
"""What the out-of-process fuzz suite runs (issue 22): the shared input files, one reproduction per
item of the issue, and the hypothesis strategies of the random examples.

:func:`build` writes the inputs once per run: documents wanmeter wrote (at the defaults and at
extreme sizes, now and as recorded before the one-walk redesign), documents with one field made
hostile, broken and hostile model folders (safetensors headers and configs), efficiency files and
special files (a FIFO with no writer, a 3 GiB sparse file, a folder, links to ``/dev/zero``).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from tests.fuzz import Example, Outcome

CORPUS = Path(__file__).parent / "data" / "cli_outputs"
EFFICIENCY = Path(__file__).resolve().parent.parent / "calibration" / "efficiency" / "cpu.json"

PRESETS = (
    "wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "wan2.1-i2v-14b-480p", "wan2.1-i2v-14b-720p", "wan2.1-flf2v-14b-720p",
    "wan2.1-vace-1.3b", "wan2.1-vace-14b", "wan2.2-ti2v-5b", "wan2.2-t2v-a14b", "wan2.2-i2v-a14b",
)  # fmt: skip
TWO_EXPERT = ("wan2.2-t2v-a14b", "wan2.2-i2v-a14b")
GPUS = ("h100-sxm", "rtx4090", "a100-80gb", "h20", "b200", "mi300x")
SPARSE_BYTES = 3 * 1024**3
"""The size of the sparse "oversized" input: more than the examples' 2 GiB address space."""
BIG_CONFIG_BYTES = 200 * 1024**2
"""The 200 MB config.json of issue 22, item 11 (whitespace inside one JSON object)."""

HUGE_FRAMES = str(4 * 10**200 + 1)
HUGE = {k: "1" + "0" * k for k in (18, 30, 50, 200, 300, 400, 4000, 4300, 5000)}
"""10^k as text."""


# -- the shared inputs ---------------------------------------------------------------------------


def _wanmeter(argv: list[str]) -> str:
    """What wanmeter prints for ``argv`` (run in this process: a document wanmeter wrote)."""
    from hybrid.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(argv)
    if code != 0:
        raise RuntimeError(f"wanmeter {' '.join(argv)[:100]} exited {code}")
    return out.getvalue()


def _header(table: Any = None, raw: bytes | None = None, declared: int | None = None) -> bytes:
    """A safetensors file: 8-byte little-endian header length, the header, no weights."""
    body = raw if raw is not None else json.dumps(table).encode()
    return struct.pack("<Q", len(body) if declared is None else declared) + body


def _scaled(doc: Any, factor: int) -> Any:
    """``doc`` with every integer multiplied by ``factor`` (a report at an extreme size)."""
    if isinstance(doc, dict):
        return {k: _scaled(v, factor) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_scaled(v, factor) for v in doc]
    if isinstance(doc, int) and not isinstance(doc, bool):
        return doc * factor
    return doc


def _mkfifo(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)


def _sparse(path: Path, size: int, head: bytes = b"{") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write(head)
        f.truncate(size)


SPECIAL_KINDS = ("fifo", "fifo.link", "zero.link", "folder", "sparse", "dangling.link")
"""Special files an input may be: a FIFO nobody writes, a link to one, a link to /dev/zero, a
folder, a 3 GiB sparse file, a link to nothing."""


def _special(path: Path, kind: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "fifo.link":
        os.mkfifo(path.with_name(path.name + ".fifo"))
        os.symlink(path.name + ".fifo", path)
    elif kind == "zero.link":
        os.symlink("/dev/zero", path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "sparse":
        _sparse(path, SPARSE_BYTES)
    else:
        os.symlink("nowhere/at/all", path)


MODEL_SLOTS = ("model_index.json", "transformer/config.json", "transformer/a.safetensors", "vae/config.json")
"""The files of a Diffusers folder a special file may stand in for."""


def build(root: Path) -> None:
    """Write every shared input under ``root`` (about 200 MB on disk: the big config)."""
    docs = root / "docs"
    docs.mkdir(parents=True)
    for name, argv in {
        "report": ["report", "--model", "wan2.1-t2v-1.3b"],
        "report_small": ["report", "--model", "wan2.1-t2v-1.3b", "--size", "320x192", "--frames", "9"],
        "report_14b": ["report"],
        "report_a14b": ["report", "--model", "wan2.2-t2v-a14b"],
        "report_vace": ["report", "--model", "wan2.1-vace-1.3b", "--ref-images", "2"],
        "report_gpu": ["report", "--gpu", "h100-sxm"],
        "report_steps_1e300": ["report", "--model", "wan2.1-t2v-1.3b", "--steps", HUGE[300]],
        "report_batch_1e300": ["report", "--model", "wan2.1-t2v-1.3b", "--batch", HUGE[300]],
        "report_size_1e100": ["report", "--model", "wan2.1-t2v-1.3b", "--size", f"{16 * 10**100}x16", "--frames", "1"],
        "report_text_1e50": ["report", "--model", "wan2.1-t2v-1.3b", "--text-len", HUGE[50]],
        "report_frames_4e200": ["report", "--model", "wan2.1-t2v-1.3b", "--frames", HUGE_FRAMES],
        "a14b_wan_1gpu": ["report", "--model", "wan2.2-t2v-a14b", "--runtime", "wan", "--gpu", "h100-sxm"],
        "plan": ["plan", "--gpu", "h100-sxm", "--gpus", "2", "--model", "wan2.1-t2v-1.3b"],
    }.items():
        (docs / f"{name}.json").write_text(_wanmeter([*argv, "--format", "json"]))
    sweep = ["sweep", "--model", "wan2.1-t2v-1.3b", "--frames", "17,33", "--format", "json"]
    (docs / "sweep.json").write_text(_wanmeter(sweep))
    report = json.loads((docs / "report.json").read_text())
    # reports at extreme sizes, scaled: at --frames 4x10^200+1 the DiT's attention grows with the
    # square of the tokens, 10^400 times the default's (wanmeter writes such integers itself)
    (docs / "report_scaled_1e200.json").write_text(json.dumps(_scaled(report, 4 * 10**200), indent=2))
    (docs / "report_scaled_1e400.json").write_text(json.dumps(_scaled(report, 10**400), indent=2))
    # documents recorded before the one-walk redesign (old schemas' writers)
    for name, file in {"old_report": "000.json", "old_report_a14b": "016.json", "old_trace": "188.json.gz",
                       "old_trace_a14b": "192.json.gz"}.items():  # fmt: skip
        raw = (CORPUS / file).read_bytes()
        (docs / f"{name}.json").write_bytes(gzip.decompress(raw) if file.endswith(".gz") else raw)
    # hostile documents (issue 22, item 18 and around it)
    hostile = {
        "flops_1e300": {**report, "total": {**report["total"], "flops": 1e300}},
        "flops_1.5": {**report, "total": {**report["total"], "flops": 1.5}},
        "flops_negative": {**report, "total": {**report["total"], "flops": -1}},
        "escape_model": {**report, "model": "\x1b[31mred\x1b[0m\x07\x1b]0;title\x07"},
        "long_model": {**report, "model": "m" * 10000},
    }
    for name, doc in hostile.items():
        (docs / f"{name}.json").write_text(json.dumps(doc, indent=2))
    text = (docs / "report.json").read_text()
    flops = str(report["total"]["flops"])
    (docs / "flops_5000_digits.json").write_text(text.replace(flops, "9" * 5000, 1))
    (docs / "flops_nan.json").write_text(text.replace(flops, "NaN", 1))
    (docs / "flops_inf.json").write_text(text.replace(flops, "Infinity", 1))
    (docs / "flops_1e400.json").write_text(text.replace(flops, "1e400", 1))
    (docs / "deep.json").write_text("[" * 100_000 + "]" * 100_000)

    # model folders (issue 22, items 3, 5, 8, 9, 11)
    models = root / "models"
    tensor = {"dtype": "BF16", "data_offsets": [0, 0]}
    headers: dict[str, bytes] = {
        "shape_1e400": b'{"w": {"dtype": "BF16", "shape": [1e400], "data_offsets": [0, 0]}}',
        "shape_10e400": b'{"w": {"dtype": "BF16", "shape": [1' + b"0" * 400 + b'], "data_offsets": [0, 0]}}',
        "shape_5000_digits": b'{"w": {"dtype": "BF16", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 0]}}',
        "shape_negative": json.dumps({"w": {**tensor, "shape": [-1, 5]}}).encode(),
        "shape_float": json.dumps({"w": {**tensor, "shape": [1.5]}}).encode(),
        "shape_huge_product": json.dumps({"w": {**tensor, "shape": [2**62] * 64}}).encode(),
        "deep_header": b'{"w": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "header_list": b"[1, 2, 3]",
        "header_not_json": b"\xff\xfe not json",
    }
    for name, body in headers.items():
        path = models / name / "transformer" / "a.safetensors"
        path.parent.mkdir(parents=True)
        path.write_bytes(_header(raw=body))
    (models / "declared_huge" / "transformer").mkdir(parents=True)
    (models / "declared_huge" / "transformer" / "a.safetensors").write_bytes(_header({}, declared=2**63))
    configs: dict[str, tuple[str, bytes]] = {
        "head1": ("transformer", b'{"attention_head_dim": 1, "num_attention_heads": 1}'),
        "head2": ("transformer", b'{"attention_head_dim": 2, "num_attention_heads": 1}'),
        "rope_1e30": ("transformer", b'{"rope_max_seq_len": 1' + b"0" * 30 + b"}"),
        "heads_1e12": ("transformer", b'{"num_attention_heads": 1000000000000}'),
        "layers_1e7": ("transformer", b'{"num_layers": 10000000}'),
        "ffn_1e400": ("transformer", b'{"ffn_dim": 1' + b"0" * 400 + b"}"),
        "eps_1e400": ("transformer", b'{"eps": 1e400}'),
        "vae_res_blocks_1e7": ("vae", b'{"num_res_blocks": 10000000}'),
        "vae_base_dim_1e30": ("vae", b'{"base_dim": 1' + b"0" * 30 + b"}"),
        "t5_layers_1e7": ("text_encoder", b'{"num_layers": 10000000}'),
    }
    for name, (component, body) in configs.items():
        path = models / name / component / "config.json"
        path.parent.mkdir(parents=True)
        path.write_bytes(body)
    big = models / "config_200mb" / "transformer" / "config.json"
    big.parent.mkdir(parents=True)
    with big.open("wb") as f:
        f.write(b"{")
        chunk = b" " * (1 << 20)
        for _ in range(BIG_CONFIG_BYTES >> 20):
            f.write(chunk)
        f.write(b'"num_layers": 30}')
    for slot in MODEL_SLOTS:
        for kind in SPECIAL_KINDS:
            _special(models / f"special-{slot.replace('/', '-')}-{kind}" / slot, kind)

    # efficiency files (issue 22, item 4)
    eff = json.loads(EFFICIENCY.read_text())
    eff_dir = root / "efficiency"
    eff_dir.mkdir()
    (eff_dir / "cpu.json").write_text(json.dumps(eff))
    base = json.dumps(eff)
    for name, (key, value) in {
        "launch_1e400": ("launch_overhead_s", "1" + "0" * 400),
        "launch_float_1e400": ("launch_overhead_s", "1e400"),
        "launch_negative": ("launch_overhead_s", "-1"),
        "launch_nan": ("launch_overhead_s", "NaN"),
        "peak_1e400": ("peak_flops", "1e400"),
        "peak_tiny": ("peak_flops", "5e-324"),
        "peak_10e400": ("peak_flops", "1" + "0" * 400),
        "peak_5000_digits": ("peak_flops", "9" * 5000),
    }.items():
        old = json.dumps(eff[key])
        (eff_dir / f"{name}.json").write_text(base.replace(f'"{key}": {old}', f'"{key}": {value}', 1))
    eff_matmul = {**eff, "efficiency": {**eff["efficiency"], "matmul": 1e-300}}
    (eff_dir / "matmul_1e-300.json").write_text(json.dumps(eff_matmul))

    # special files as inputs (issue 22, item 8)
    special = root / "special"
    for kind in SPECIAL_KINDS:
        _special(special / f"{kind}.json", kind)


# -- one example per item of issue 22 -----------------------------------------------------------


def _one_of(*needles: str) -> Callable[[Outcome], list[str]]:
    """An example's own check: a refusal's line names one of ``needles``."""

    def check(o: Outcome) -> list[str]:
        if o.returncode == 2 and not any(n.lower() in o.err.lower() for n in needles):
            return [f"its error line names none of {needles}"]
        return []

    return check


def _refused(*needles: str) -> Callable[[Outcome], list[str]]:
    """An example's own check: it must be refused (exit 2), naming one of ``needles``."""

    def check(o: Outcome) -> list[str]:
        found = [] if o.returncode == 2 else [f"exit {o.returncode}: it should be refused"]
        return found + _one_of(*needles)(o)

    return check


def _refused_naming_output(o: Outcome) -> list[str]:
    """Item 14: refused before the work, naming the option, not a temporary file the user never gave."""
    found = _refused("output", "html")(o)
    return found + ([f"its error names a temporary file: {o.err.strip()[:120]}"] if ".tmp" in o.err else [])


def _no_file(name: str) -> Callable[[Outcome], list[str]]:
    def check(o: Outcome) -> list[str]:
        return [f"it wrote a file named {name}"] if (o.folder / name).is_file() else []

    return check


def _written_through_link(o: Outcome) -> list[str]:
    text = (o.folder / "file.txt").read_text()
    if o.returncode == 0 and "the previous content" in text:
        return ["exit 0, but nothing was written through link.txt to file.txt"]
    return []


def _full_says_no_space(o: Outcome) -> list[str]:
    if o.returncode != 2:
        return [f"exit {o.returncode}: writing to /dev/full must fail (ENOSPC)"]
    return [] if "space" in o.err.lower() else ["the error does not say the device is full"]


def _experts_resident(o: Outcome) -> list[str]:
    """Item 19: per-rank weights of the text encoder under FSDP on 2 GPUs rise above one GPU's only
    with a note in the report that says why (both experts resident, or staying, on every rank)."""
    if o.returncode != 0:
        return []
    doc = json.loads(o.stdout)
    one = json.loads((o.inputs / "docs" / "a14b_wan_1gpu.json").read_text())
    weights = {n: d["stages"]["text_encoder"]["memory"]["weights_bytes"] for n, d in (("2", doc), ("1", one))}
    if weights["2"] <= weights["1"]:
        return []
    notes = " ".join(doc.get("warnings", []) + doc.get("assumptions", [])).lower()
    if "expert" in notes and ("resident" in notes or "stay" in notes):
        return []
    return [
        f"text encoder weights per rank {weights['1']:,} B on 1 GPU, {weights['2']:,} B on 2 with FSDP, "
        "and no note says why"
    ]


def _sweep_values(count: int, start: int = 1, step: int = 1) -> str:
    return ",".join(str(start + step * k) for k in range(count))


R = "wan2.1-t2v-1.3b"
TINY = ("--size", "64x48", "--frames", "5", "--text-len", "7", "-q")

REPRODUCTIONS: list[tuple[str, Example]] = [
    # 1. tiny and huge flow shifts of the two-expert presets
    ("1-flow-shift-1e-17", Example(("report", "--model", "wan2.2-t2v-a14b", "--flow-shift", "1e-17"))),
    ("1-flow-shift-1e-300", Example(("report", "--model", "wan2.2-t2v-a14b", "--flow-shift", "1e-300", "--format", "json"))),
    ("1-flow-shift-5e-324", Example(("report", "--model", "wan2.2-i2v-a14b", "--flow-shift", "5e-324"))),
    ("1-flow-shift-1e308", Example(("report", "--model", "wan2.2-i2v-a14b", "--flow-shift", "1e308", "--format", "json"))),
    # 2. diff of documents wanmeter wrote at extreme sizes
    ("2-write-frames-4e200", Example(("report", "--model", R, "--frames", HUGE_FRAMES, "--format", "json", "-o", "{w}/big.json"))),
    ("2-diff-frames-4e200", Example(("diff", "{i}/docs/report.json", "{i}/docs/report_frames_4e200.json", "--format", "json"), exits=frozenset({1}))),
    ("2-diff-frames-4e200-back", Example(("diff", "{i}/docs/report_frames_4e200.json", "{i}/docs/report.json"), exits=frozenset({1}))),
    ("2-diff-scaled-1e400", Example(("diff", "{i}/docs/report.json", "{i}/docs/report_scaled_1e400.json"), exits=frozenset({1}))),
    ("2-diff-scaled-1e400-json", Example(("diff", "{i}/docs/report.json", "{i}/docs/report_scaled_1e400.json", "--format", "json"), exits=frozenset({1}))),
    ("2-diff-scaled-1e200-back", Example(("diff", "{i}/docs/report_scaled_1e200.json", "{i}/docs/report.json", "--format", "json"), exits=frozenset({1}))),
    ("2-diff-steps-1e300", Example(("diff", "{i}/docs/report.json", "{i}/docs/report_steps_1e300.json", "--format", "json"), exits=frozenset({1}))),
    ("2-diff-size-1e100", Example(("diff", "{i}/docs/report_size_1e100.json", "{i}/docs/report.json", "--format", "markdown"), exits=frozenset({1}))),
    # 3. safetensors headers: a shape of 1e400, nested 100,000 deep
    ("3-shape-1e400", Example(("report", "--model", R, "--model-dir", "{i}/models/shape_1e400"), check=_refused("shape"))),
    ("3-header-100000-deep", Example(("report", "--model", R, "--model-dir", "{i}/models/deep_header"), check=_refused("safetensors"))),
    # 4. efficiency files with numbers beyond a float
    ("4-launch-overhead-10e400", Example(("report", "--gpu", "h100-sxm", "--efficiency", "{i}/efficiency/launch_1e400.json"), check=_refused("launch_overhead_s"))),
    ("4-peak-flops-1e400", Example(("report", "--gpu", "h100-sxm", "--efficiency", "{i}/efficiency/peak_1e400.json"), check=_refused("peak_flops"))),
    # 5. what report accepts, trace accepts or refuses in one line
    ("5-report-head-dim-1", Example(("report", "--model", R, "--model-dir", "{i}/models/head1", "--format", "json"))),
    ("5-trace-head-dim-1", Example(("trace", "--model", R, "--model-dir", "{i}/models/head1", "--stage", "diffusion_core", *TINY))),
    ("5-report-rope-1e30", Example(("report", "--model", R, "--model-dir", "{i}/models/rope_1e30", "--format", "json"))),
    ("5-trace-rope-1e30", Example(("trace", "--model", R, "--model-dir", "{i}/models/rope_1e30", "--stage", "diffusion_core", *TINY))),
    # 6. stdout closed; Ctrl-C during trace
    ("6-stdout-closed", Example(("report",), stdout="closed")),
    ("6-stdout-closed-with-output-file", Example(("report", "-o", "{w}/r.txt"), stdout="closed", exits=frozenset({0}))),
    # (Ctrl-C in the DiT's stage, torch imported; diffusers may still be importing its context-parallel hooks,
    # whose dataclasses run code from strings: see test_6_ctrl_c_inside_code_run_from_a_string_still_exits_130.
    # Earlier, inside torch's import, it may abort in C++
    # (SIGABRT) or be lost, now and then: the random examples draw that window, CI's reproduction does not)
    ("6-ctrl-c-during-trace", Example(("trace", "--model", R, *TINY[:-1]), sigint=0.3, sigint_at="[2/3] tracing", exits=frozenset({130}))),
    # 7. step counts are arithmetic
    ("7-a14b-steps-1e8", Example(("report", "--model", "wan2.2-t2v-a14b", "--steps", "100000000", "--format", "json"), exits=frozenset({0}))),
    ("7-a14b-steps-1e30", Example(("report", "--model", "wan2.2-t2v-a14b", "--steps", HUGE[30], "--format", "json"), exits=frozenset({0}))),
    # 8. FIFOs and unbounded files as inputs
    ("8-fifo-safetensors", Example(("report", "--model", R, "--model-dir", "{i}/models/special-transformer-a.safetensors-fifo"), exits=frozenset({2}))),
    ("8-fifo-efficiency", Example(("report", "--gpu", "h100-sxm", "--efficiency", "{i}/special/fifo.json"), exits=frozenset({2}))),
    ("8-diff-dev-zero", Example(("diff", "{i}/docs/report.json", "/dev/zero"), exits=frozenset({2}))),
    ("8-diff-3gib-sparse", Example(("diff", "{i}/docs/report.json", "{i}/special/sparse.json"), exits=frozenset({2}))),
    # 9. a trillion heads: divisors bounded by the GPU count
    ("9-plan-heads-1e12", Example(("plan", "--model", R, "--model-dir", "{i}/models/heads_1e12", "--gpu", "h100-sxm", "--gpus", "8"))),
    ("9-ulysses-7-heads-1e12", Example(("report", "--model", R, "--model-dir", "{i}/models/heads_1e12", "--gpu", "h100-sxm", "--gpus", "7", "--ulysses", "7"))),
    # 10. sweeps of a million and a hundred million rows
    ("10-sweep-1e6-rows", Example(("sweep", "--model", R, "--frames", _sweep_values(1000, 1, 4), "--steps", _sweep_values(1000), "--format", "csv"), check=_one_of("max-rows"))),
    ("10-sweep-1e8-rows", Example(("sweep", "--model", R, "--frames", _sweep_values(10000, 1, 4), "--steps", _sweep_values(10000)), check=_refused("max-rows"))),
    # 11. work beyond reason: refused in one line
    ("11-trace-frames-4093-vae", Example(("trace", "--frames", "4093", "--size", "64x48", "--stage", "vae_decode", "-q"))),
    ("11-trace-vace-1000-ref-images", Example(("trace", "--model", "wan2.1-vace-1.3b", "--ref-images", "1000", "--size", "64x48", "--frames", "5", "--stage", "vae_encode", "-q"))),
    ("11-report-vace-1000-ref-images", Example(("report", "--model", "wan2.1-vace-14b", "--ref-images", "1000", "--format", "json"))),
    ("11-vae-res-blocks-1e7", Example(("report", "--model", R, "--model-dir", "{i}/models/vae_res_blocks_1e7"))),
    ("11-config-200mb", Example(("report", "--model", R, "--model-dir", "{i}/models/config_200mb"), check=_refused("config"))),
    # 12. outputs: devices, links and FIFOs written through or refused, never replaced
    ("12-output-dev-null", Example(("report", "-o", "{w}/null"))),
    ("12-output-dev-null-link", Example(("report", "-o", "{w}/devnull.link"))),
    ("12-output-dev-full", Example(("report", "-o", "{w}/full"), check=_full_says_no_space)),
    ("12-output-dev-full-link", Example(("report", "-o", "{w}/devfull.link"), check=_full_says_no_space)),
    ("12-output-dev-stdout", Example(("report", "--format", "json", "-o", "{w}/stdout"))),
    ("12-output-symlink", Example(("report", "-o", "{w}/link.txt"), check=_written_through_link)),
    ("12-output-fifo", Example(("report", "-o", "{w}/out.fifo"))),
    # 13. stdout under a file-size limit
    ("13-stdout-ulimit-f", Example(("report",), stdout="full", exits=frozenset({2}))),
    # 14. a read-only folder: said before the work, naming --output
    ("14-output-read-only-folder", Example(("report", "-o", "{w}/ro/x.json"), no_dac_override=True, check=_refused_naming_output)),
    ("14-html-read-only-folder", Example(("sweep", "--model", R, "--frames", "17,33", "--html", "{w}/ro/x.html"), no_dac_override=True, check=_refused_naming_output)),
    # 15. a missing folder with a trailing slash
    ("15-output-missing-folder-slash", Example(("report", "-o", "{w}/newdir/"), check=_no_file("newdir"))),
    ("15-output-file-as-folder", Example(("report", "-o", "{w}/file.txt/x.json"), exits=frozenset({2}))),
    # 16. a writer killed mid-write: its temporary file goes at the next write
    ("16-killed-writer-then-write", Example(("report", "-o", "{w}/x.json"), killed_writer_first=True, exits=frozenset({0}))),
    # 17. echoed values cut: no error line over 300 characters
    ("17-frames-1-and-400-zeros", Example(("report", "--frames", "1" + "0" * 400), exits=frozenset({0, 2}))),
    ("17-plan-gpus-5000-nines", Example(("plan", "--gpu", "h100-sxm", "--gpus", "9" * 5000), exits=frozenset({2}))),
    ("17-model-10000-x", Example(("report", "--model", "x" * 10000), exits=frozenset({2}))),
    # 18. integers that are not integers; terminal escapes echoed
    ("18-diff-flops-1e300", Example(("diff", "{i}/docs/report.json", "{i}/docs/flops_1e300.json"), check=_refused("flops"))),
    ("18-diff-escape-codes", Example(("diff", "{i}/docs/report.json", "{i}/docs/escape_model.json"))),
    ("18-model-escape-codes", Example(("report", "--model", "\x1b[31mred\x1b[0m"), exits=frozenset({2}))),
    # 19. A14B per-rank weights under --runtime wan with FSDP
    ("19-a14b-wan-fsdp-weights", Example(("report", "--model", "wan2.2-t2v-a14b", "--runtime", "wan", "--gpu", "h100-sxm", "--gpus", "2", "--ulysses", "2", "--fsdp", "dit", "--format", "json"), exits=frozenset({0}), check=_experts_resident)),
]  # fmt: skip
"""Each item of issue 22 as an example (id: item number, then what)."""


# -- the random examples (hypothesis strategies) ------------------------------------------------

INTS = st.sampled_from(
    ["0", "1", "2", "3", "5", "7", "8", "16", "17", "48", "64", "81", "512", "4093", "4097", "65536", str(2**31),
     str(2**63), str(2**64 + 1), HUGE_FRAMES, "-1", "-" + "9" * 50, *HUGE.values(), "1" + "0" * 400]
)  # fmt: skip
FLOATS = st.sampled_from(
    ["1e-300", "5e-324", "1e-17", "1e-400", "0.5", "1.5", "1e308", "1.7976931348623157e308", "1e400", "-0.0",
     "nan", "inf", "-inf", "0", "1", "5", "12", "1" + "0" * 400]
)  # fmt: skip
SIZE_PARTS = st.sampled_from(
    ["16", "48", "64", "720", "1280", "1024", "16400", str(16 * 10**30), str(16 * 10**100), "0"]
)
SIZES = st.tuples(SIZE_PARTS, SIZE_PARTS).map(lambda wh: f"{wh[0]}x{wh[1]}")

WORKLOAD_INTS = ("--frames", "--steps", "--batch", "--text-len")
LAYOUT_INTS = ("--gpus", "--ulysses", "--ring")


def _numeric_options(model: str, command: str) -> list[st.SearchStrategy[list[str]]]:
    opts: list[st.SearchStrategy[list[str]]] = [INTS.map(lambda v, o=o: [o, v]) for o in WORKLOAD_INTS]
    opts.append(SIZES.map(lambda v: ["--size", v]))
    opts.append(FLOATS.map(lambda v: ["--guidance-scale", v]))
    if model in TWO_EXPERT:
        opts += [FLOATS.map(lambda v: ["--flow-shift", v]), FLOATS.map(lambda v: ["--guidance-scale-2", v])]
    if "vace" in model:
        opts.append(INTS.map(lambda v: ["--ref-images", v]))
    if command == "report-gpu":
        opts += [INTS.map(lambda v, o=o: [o, v]) for o in LAYOUT_INTS]
        opts.append(FLOATS.map(lambda v: ["--runtime", "wan", "--t5-cpu", "--host-tflops", v]))
        opts.append(FLOATS.map(lambda v: ["--efficiency-override", f"attention={v}"]))
        opts.append(INTS.map(lambda v: ["--runtime", "wan", "--flash-attention", v]))
        opts.append(INTS.map(lambda v: ["--gpus", v, "--ulysses", v, "--runtime", "wan", "--fsdp", "dit"]))
    if command == "plan":
        opts.append(INTS.map(lambda v: ["--gpus", v]))
    if command == "trace":
        opts += [INTS.map(lambda v, o=o: [o, v]) for o in LAYOUT_INTS]
    return opts


@st.composite
def numeric_examples(draw: st.DrawFn) -> Example:
    """Tiny and huge numbers for the numeric options of every preset and command."""
    model = draw(st.sampled_from(PRESETS))
    command = draw(st.sampled_from(["report", "report", "report-gpu", "report-gpu", "plan", "sweep", "trace"]))
    if command == "sweep":
        option = draw(st.sampled_from(["--frames", "--steps", "--batch", "--text-len", "--size"]))
        values = draw(st.lists(SIZES if option == "--size" else INTS, min_size=1, max_size=3))
        return Example(("sweep", "--model", model, option, ",".join(values), "--format", "json"))
    chosen = draw(st.lists(st.one_of(*_numeric_options(model, command)), min_size=1, max_size=3))
    argv = [a for part in chosen for a in part]
    if command == "trace":
        stage = draw(st.sampled_from(["text_encoder", "diffusion_core", "vae_decode"]))
        return Example(("trace", "--model", model, "--stage", stage, *TINY, *argv, "--format", "json"))
    head = {"report": ["report"], "report-gpu": ["report", "--gpu", draw(st.sampled_from(GPUS))],
            "plan": ["plan", "--gpu", draw(st.sampled_from(GPUS)), "--gpus", "8"]}[command]  # fmt: skip
    fmt = draw(st.sampled_from(["json", "json", "table", "csv"]))
    return Example((*head, "--model", model, *argv, "--format", fmt))


DOCS = (
    "report", "report_small", "report_14b", "report_a14b", "report_vace", "report_gpu", "report_steps_1e300",
    "report_batch_1e300", "report_size_1e100", "report_text_1e50", "report_frames_4e200", "report_scaled_1e200",
    "report_scaled_1e400",
    "old_report",
    "old_report_a14b", "old_trace", "old_trace_a14b", "plan", "sweep", "flops_1e300", "flops_1.5", "flops_negative",
    "escape_model", "long_model", "flops_5000_digits", "flops_nan", "flops_inf", "flops_1e400", "deep",
)  # fmt: skip
INPUT_FILES = st.one_of(
    st.sampled_from(DOCS).map(lambda d: f"{{i}}/docs/{d}.json"),
    st.sampled_from(SPECIAL_KINDS).map(lambda k: f"{{i}}/special/{k}.json"),
    st.sampled_from(["/dev/zero", "/dev/null", "{i}/missing.json", "{i}/docs"]),
)


@st.composite
def diff_examples(draw: st.DrawFn) -> Example:
    """Old and new documents, wanmeter's own at any size, hostile ones and special files."""
    old = draw(st.sampled_from(DOCS).map(lambda d: f"{{i}}/docs/{d}.json"))
    new = draw(INPUT_FILES)
    if draw(st.booleans()):
        old, new = new, old
    extra = draw(st.sampled_from([[], ["--format", "json"], ["--format", "markdown"], ["--rtol", "1e308"],
                                  ["--rtol", "5e-324", "--format", "json"]]))  # fmt: skip
    return Example(("diff", old, new, *extra))


MODEL_DIRS = (
    "shape_1e400", "shape_10e400", "shape_5000_digits", "shape_negative", "shape_float", "shape_huge_product",
    "deep_header", "header_list", "header_not_json", "declared_huge", "head1", "head2", "rope_1e30", "heads_1e12",
    "layers_1e7", "ffn_1e400", "eps_1e400", "vae_res_blocks_1e7", "vae_base_dim_1e30", "t5_layers_1e7",
)  # fmt: skip
SPECIAL_DIRS = tuple(f"special-{s.replace('/', '-')}-{k}" for s in MODEL_SLOTS for k in SPECIAL_KINDS)


@st.composite
def model_dir_examples(draw: st.DrawFn) -> Example:
    """Broken and hostile Diffusers folders under report, report --gpu, plan and (rarely) trace."""
    folder = draw(st.one_of(st.sampled_from(MODEL_DIRS), st.sampled_from(SPECIAL_DIRS)))
    model = draw(st.sampled_from(["wan2.1-t2v-1.3b", "wan2.1-t2v-1.3b", "wan2.2-t2v-a14b", "wan2.1-vace-1.3b"]))
    head = draw(st.sampled_from([["report", "--format", "json"], ["report", "--gpu", "h100-sxm", "--format", "json"],
                                 ["plan", "--gpu", "h100-sxm", "--gpus", "8"], ["report", "--gpu", "h100-sxm",
                                 "--gpus", "4", "--ulysses", "4"]]))  # fmt: skip
    return Example((*head, "--model", model, "--model-dir", f"{{i}}/models/{folder}"))


@st.composite
def special_input_examples(draw: st.DrawFn) -> Example:
    """Special files wherever wanmeter reads one: --efficiency, a diff document, --model-dir."""
    where = draw(st.sampled_from(["efficiency", "diff", "model-dir"]))
    path = draw(st.one_of(st.sampled_from(SPECIAL_KINDS).map(lambda k: f"{{i}}/special/{k}.json"),
                          st.sampled_from(["/dev/zero", "/dev/null", "{i}/efficiency/cpu.json"])))  # fmt: skip
    if where == "efficiency":
        name = draw(st.sampled_from(["cpu", "launch_1e400", "launch_float_1e400", "launch_negative", "launch_nan",
                                     "peak_1e400", "peak_tiny", "peak_10e400", "peak_5000_digits", "matmul_1e-300"]))  # fmt: skip
        path = draw(st.sampled_from([path, f"{{i}}/efficiency/{name}.json"]))
        return Example(("report", "--gpu", draw(st.sampled_from(GPUS)), "--efficiency", path, "--format", "json"))
    if where == "diff":
        return Example(("diff", "{i}/docs/report.json", path))
    return Example(("report", "--model", "wan2.1-t2v-1.3b", "--model-dir", path))


OUTPUTS = (
    "{w}/null", "{w}/full", "{w}/zero", "{w}/link.txt", "{w}/dangling.json", "{w}/devnull.link", "{w}/devfull.link",
    "{w}/stdout", "{w}/out.fifo", "{w}/dir", "{w}/dir/", "{w}/dir.link", "{w}/dir.link/x.json", "{w}/ro/x.json",
    "{w}/ro/new.json", "{w}/missing/x.json", "{w}/newdir/", "{w}/file.txt/x.json", "{w}/x.json", "{w}/x.json/",
    "{w}/file.txt",
)  # fmt: skip
WRITERS = (
    ("report", "--format", "json"), ("report", "--format", "html"), ("report", "--format", "csv"),
    ("plan", "--gpu", "h100-sxm", "--gpus", "2", "--model", R), ("diff", "{i}/docs/report.json",
    "{i}/docs/report_small.json"), ("gpus",), ("models", "--format", "json"),
    ("sweep", "--model", R, "--frames", "17,33", "--format", "json"),
)  # fmt: skip


@st.composite
def output_examples(draw: st.DrawFn) -> Example:
    """Every writer to every kind of output path (``-o``, sweep's ``--html`` and ``--plot``)."""
    writer = draw(st.sampled_from(WRITERS))
    target = draw(st.sampled_from(OUTPUTS))
    flag = draw(st.sampled_from(["-o", "-o", "--html", "--plot"])) if writer[0] == "sweep" else "-o"
    return Example(
        (*writer, flag, target),
        no_dac_override="/ro/" in target,
        killed_writer_first=target == "{w}/x.json" and draw(st.booleans()),
    )


@st.composite
def stdout_examples(draw: st.DrawFn) -> Example:
    """Standard output closed, full or gone; Ctrl-C during a trace (rarely: a trace loads torch)."""
    writer = draw(st.sampled_from(WRITERS[:3] + WRITERS[4:]))
    mode = draw(st.sampled_from(["closed", "full", "broken", "closed", "full", "broken", "sigint"]))
    if mode == "sigint":
        after = draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]))
        at = draw(st.sampled_from(["[1/3] tracing", "[2/3] tracing", "[3/3] tracing"]))
        # exit 0 only if it finished before the signal (the check says so)
        return Example(("trace", "--model", R, *TINY[:-1]), sigint=after, sigint_at=at, exits=frozenset({0, 130}))
    exits = {0, 1, 2} if writer[0] == "diff" else {0, 2}
    return Example(writer, stdout=mode, exits=frozenset(exits | {141}) if mode == "broken" else None)


FAMILIES = (numeric_examples, diff_examples, model_dir_examples, special_input_examples, output_examples,
            stdout_examples)  # fmt: skip
"""One random example of each family per batch: every family is drawn in every run."""
