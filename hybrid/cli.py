"""``wanmeter`` command line: parse, call the library, render. Nothing else.

Bad input prints one line on stderr and exits with code 2 (no traceback).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from hybrid.errors import InputError
from hybrid.files import check_writable, write_atomic

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.deployment import Deployment
    from hybrid.runtime import Runtime
    from hybrid.workload import Workload

EXIT_BAD_INPUT = 2

USER_ERRORS: tuple[type[Exception], ...] = (InputError, OSError, ValueError)
"""What ``main`` reports as bad input (one line, exit 2): :class:`~hybrid.errors.InputError`,
and ``OSError`` (a file that cannot be read or written). ``ValueError`` is here only until the
library raises ``InputError`` for all input the user can fix; then it leaves this tuple, and a
``ValueError`` from a bug ends in a traceback."""


class UsageError(InputError):
    """Bad command-line input (argparse's own messages)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)

    def _parse_optional(self, arg_string: str) -> Any:
        # a value that starts with one dash ("--size -16x720", "--rtol -inf") is a value, not an
        # unknown option: its option then says what is wrong with it
        if arg_string[:1] == "-" and arg_string[:2] != "--" and arg_string[:2] not in self._option_string_actions:
            return None
        return super()._parse_optional(arg_string)


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) <= MAX_DIGITS and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 1280x720, got {_cut(text)}")
    return int(parts[0]), int(parts[1])


MAX_DIGITS = 4000
"""The longest whole number the CLI reads (Python refuses to convert more than 4,300 digits)."""


def _whole_number(text: str) -> int | None:
    """``text`` as an int if it is ASCII digits (a leading ``-`` allowed, for the field's own range
    message), at most :data:`MAX_DIGITS` of them; else ``None`` (full-width and other Unicode
    digits are refused)."""
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > MAX_DIGITS:
        return None
    return int(text)


def _whole(name: str) -> Any:
    """An argparse type: a whole number in ASCII digits; the bad text is cut in the message."""

    def parse(text: str) -> int:
        value = _whole_number(text)
        if value is None:
            raise argparse.ArgumentTypeError(f"expected a whole number in ASCII digits, got {_cut(text)}")
        return value

    parse.__name__ = name
    return parse


def _cut(text: str, limit: int = 40) -> str:
    """``text`` quoted, cut to ``limit`` characters (a 5,000-digit value stays a short line)."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text):,} characters)"


def _number(name: str, positive: bool = False) -> Any:
    """An argparse type: a finite number (``positive``: > 0); the bad text is cut in the message."""
    kind = "a positive number" if positive else "a number"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or (positive and value <= 0):
            raise argparse.ArgumentTypeError(f"expected {kind} like 5.0, got {_cut(text)}")
        return value

    parse.__name__ = name
    return parse


def _add_workload_options(p: argparse.ArgumentParser) -> None:
    from hybrid.models import DEFAULT_MODEL, PRESETS

    p.add_argument("--model", default=DEFAULT_MODEL, help=f"{', '.join(sorted(PRESETS))} (default %(default)s)")
    p.add_argument("--size", type=_size, help="WIDTHxHEIGHT, multiples of 16 (default: the model's native size)")
    p.add_argument(
        "--frames", type=_whole("frames"), help="video frames, 4k+1 (default: the model's, 81; Wan2.2 TI2V 121)"
    )
    p.add_argument("--steps", type=_whole("steps"), help="denoising steps (default: the model's recommended steps)")
    p.add_argument("--batch", type=_whole("batch"), default=1, help="videos per job (default %(default)s)")
    p.add_argument(
        "--text-len", type=_whole("text_len"), default=512, help="padded prompt tokens (default %(default)s)"
    )
    p.add_argument("--no-cfg", action="store_true", help="disable classifier-free guidance")
    p.add_argument(
        "--ref-images", type=_whole("ref_images"), default=0, help="VACE reference images (default %(default)s)"
    )
    p.add_argument("--image", action="store_true", help="Wan2.2 TI2V: image-to-video mode (the image is VAE-encoded)")
    p.add_argument(
        "--guidance-scale",
        type=_number("guidance-scale"),
        help="diffusers runs CFG when it is > 1 (default 5.0; 1 or less: off, like --no-cfg)",
    )
    p.add_argument(
        "--guidance-scale-2",
        type=_number("guidance-scale-2"),
        help="two-expert presets: the low-noise expert's guidance (diffusers: no change in cost)",
    )
    p.add_argument(
        "--flow-shift",
        type=_number("flow-shift", positive=True),
        help="two-expert (Wan2.2 A14B) presets: the scheduler's flow shift, which decides each expert's steps "
        "(default: the preset's published one)",
    )
    p.add_argument("--model-dir", type=Path, help="local Diffusers-format Wan2.1 folder (configs, safetensors headers)")
    _add_runtime_options(p)


def _add_runtime_options(p: argparse.ArgumentParser) -> None:
    from hybrid.runtime import RUNTIMES

    p.add_argument(
        "--runtime",
        default=RUNTIMES[0],
        choices=RUNTIMES,
        help="the code that runs the job: diffusers pipelines, or the original Wan repository's generate.py "
        "(float32 DiT weights under bf16 autocast, per-token timesteps in Wan2.2, FlashAttention) "
        "(default %(default)s)",
    )
    p.add_argument(
        "--offload",
        action="store_true",
        help="with --gpu: models leave the GPU between stages (diffusers enable_model_cpu_offload; wan "
        "--offload_model True), the copies timed over the host link",
    )
    p.add_argument("--t5-cpu", action="store_true", help="--runtime wan: the text encoder runs on the host CPU")
    p.add_argument(
        "--convert-model-dtype",
        action="store_true",
        help="--runtime wan, Wan2.2: the DiT weights are stored in bf16 (else float32, cast on every call)",
    )
    p.add_argument(
        "--flash-attention",
        type=_whole("flash_attention"),
        choices=(2, 3),
        help="--runtime wan: FlashAttention version (default: 3 on Hopper, else 2)",
    )
    p.add_argument(
        "--traced",
        action="store_true",
        help="with --gpu: bytes and activation peaks from a meta trace of the real modules instead of the "
        "closed form (the same seconds and peaks, seconds slower)",
    )
    p.add_argument(
        "--host-tflops",
        type=_number("host-tflops", positive=True),
        help="with --gpu and --t5-cpu: the host CPU's bf16 TFLOP/s (default: the stated figure in "
        "hybrid/data/efficiency_defaults.json)",
    )


def _add_layout_options(p: argparse.ArgumentParser) -> None:
    """The layout of a multi-GPU job (``report --gpu``)."""
    p.add_argument(
        "--gpus",
        type=_count("gpus"),
        default=1,
        help="with --gpu: GPUs of one server the job runs on; give the layout with --ulysses, --ring, --fsdp "
        "(default %(default)s)",
    )
    p.add_argument("--ulysses", type=_count("ulysses"), default=1, help="Ulysses sequence-parallel degree")
    p.add_argument("--ring", type=_count("ring"), default=1, help="ring-attention sequence-parallel degree")
    p.add_argument(
        "--cfg-parallel",
        action="store_true",
        help="the conditional and unconditional passes on two GPU groups (no modelled runtime runs it)",
    )
    p.add_argument(
        "--fsdp",
        type=_fsdp,
        default=(),
        help="--runtime wan: shard these over every GPU, comma-separated: dit, text_encoder (--dit_fsdp, --t5_fsdp)",
    )


def _count(name: str) -> Callable[[str], int]:
    """An argparse type: a whole number >= 1 in ASCII digits; the bad text is cut in the message."""

    def parse(text: str) -> int:
        if not (text.isascii() and text.isdigit()) or int(text) < 1:
            raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {_cut(text)}")
        return int(text)

    parse.__name__ = name
    return parse


def _fsdp(text: str) -> tuple[str, ...]:
    from hybrid.deployment import FSDP_COMPONENTS

    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in parts if p not in FSDP_COMPONENTS]
    if bad or not parts:
        raise argparse.ArgumentTypeError(
            f"unknown component {(bad or [text])[0][:40]!r}; valid: {', '.join(FSDP_COMPONENTS)}"
        )
    return parts


def _deployment(args: argparse.Namespace) -> Deployment:
    from hybrid.deployment import Deployment

    return Deployment(
        gpus=args.gpus,
        ulysses=args.ulysses,
        ring=args.ring,
        cfg_parallel=2 if args.cfg_parallel else 1,
        fsdp=args.fsdp,
    )


def _runtime(args: argparse.Namespace) -> Runtime:
    from hybrid.runtime import Runtime

    return Runtime(
        name=args.runtime,
        offload=args.offload,
        t5_cpu=args.t5_cpu,
        convert_model_dtype=args.convert_model_dtype,
        flash_attention=args.flash_attention,
    )


SIZING_FLAGS: tuple[tuple[str, str], ...] = (
    ("offload", "--offload"),
    ("t5_cpu", "--t5-cpu"),
    ("convert_model_dtype", "--convert-model-dtype"),
    ("flash_attention", "--flash-attention"),
    ("traced", "--traced"),
    ("host_tflops", "--host-tflops"),
    ("efficiency", "--efficiency"),
    ("efficiency_override", "--efficiency-override"),
)
"""Options that change only the sizing on a GPU (placement, dtypes of stored weights, kernels,
efficiencies): without ``--gpu`` they would do nothing, so they are refused."""


def _require_gpu_for_sizing_flags(args: argparse.Namespace) -> None:
    if getattr(args, "gpu", None) is not None:
        return
    given = [flag for dest, flag in SIZING_FLAGS if getattr(args, dest, None) not in (None, False, [], ())]
    if given:
        raise InputError(
            f"{given[0].lstrip('-')}: {given[0]} changes only the sizing on a GPU (memory and seconds); "
            "give --gpu NAME, or leave it out"
        )


def _workload(args: argparse.Namespace) -> Workload:
    from hybrid.models import get_preset
    from hybrid.pipelines import guided
    from hybrid.workload import Workload

    _require_gpu_for_sizing_flags(args)
    cfg = guided(get_preset(args.model), args.guidance_scale, args.guidance_scale_2)
    if args.no_cfg and args.guidance_scale is not None and cfg:
        raise InputError(f"guidance_scale: {args.guidance_scale:g} turns CFG on, --no-cfg off; give one of them")
    width, height = args.size if args.size else (0, 0)
    return Workload(
        model=args.model,
        width=width,
        height=height,
        frames=args.frames,
        steps=args.steps,
        batch=args.batch,
        text_len=args.text_len,
        cfg=cfg and not args.no_cfg,
        ref_images=args.ref_images,
        flow_shift=args.flow_shift,
        image=args.image,
        runtime=_runtime(args),
    )


def _host_flops(args: argparse.Namespace) -> float | None:
    """--host-tflops in FLOP/s."""
    return None if args.host_tflops is None else float(args.host_tflops * 1e12)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        write_atomic(output, text, "output")


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cmd_trace(args: argparse.Namespace) -> int:
    from hybrid.checkpoint import resolve_model
    from hybrid.deployment import Deployment
    from hybrid.geometry import CallShape
    from hybrid.render import trace as render
    from hybrid.trace import trace

    workload = _workload(args)
    spec = resolve_model(args.model, args.model_dir)
    stages = None if args.stage == "all" else (args.stage,)
    deployment = Deployment(gpus=args.gpus, ulysses=args.ulysses, ring=args.ring)
    deployment.check(spec, workload.runtime)
    deployment.check_tokens(CallShape.of(spec, workload).dit_tokens, workload.runtime)
    result = trace(
        workload, stages=stages, spec=spec, progress=None if args.quiet else _progress, deployment=deployment
    )
    text = {"table": render.to_table, "csv": render.to_csv, "json": render.to_json}[args.format](result)
    _emit(text, args.output)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from hybrid.checkpoint import resolve_model
    from hybrid.deployment import SINGLE
    from hybrid.render import report as render
    from hybrid.render.html import report_html
    from hybrid.report import estimate, sized_report

    workload = _workload(args)
    spec = resolve_model(args.model, args.model_dir)
    if args.gpu is None:
        result = estimate(workload, spec)
        if _deployment(args) != SINGLE:
            raise InputError(
                "gpus: --gpus, --ulysses, --ring, --cfg-parallel and --fsdp lay the job out on GPUs; give --gpu NAME"
            )
    else:
        overrides = dict(_override(o) for o in args.efficiency_override)
        result = sized_report(
            workload, spec, args.gpu, _deployment(args), args.efficiency, overrides, _host_flops(args), args.traced,
            _progress,
        )  # fmt: skip
    formats = {"table": render.to_table, "json": render.to_json, "markdown": render.to_markdown, "csv": render.to_csv}
    _emit({**formats, "html": report_html}[args.format](result), args.output)
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from hybrid.checkpoint import resolve_model
    from hybrid.plan import plan
    from hybrid.render import plan as render

    if args.traced:
        raise InputError("traced: plan sizes every layout in closed form; check one with report --gpu ... --traced")
    workload = _workload(args)
    spec = resolve_model(args.model, args.model_dir)
    result = plan(workload, spec, args.gpu, args.gpus, args.objective, host_flops=_host_flops(args))
    formats = {"table": render.to_table, "json": render.to_json, "markdown": render.to_markdown, "csv": render.to_csv}
    _emit(formats[args.format](result), args.output)
    return 0


def cmd_calibrate_comm(args: argparse.Namespace) -> int:
    import re

    from hybrid.comm import SIZES, calibrate_comm

    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", args.gpu):
        raise InputError(f"gpu: {args.gpu[:40]!r} cannot name a file; use lowercase letters, digits, '.', '_', '-'")
    path = calibrate_comm(args.gpu, args.output, args.sizes or SIZES, args.iters)
    if path is not None:
        _progress(f"wrote {path}")
    return 0


def _sizes(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isascii() and p.isdigit() and int(p) > 0 for p in parts) or len(parts) < 2:
        raise argparse.ArgumentTypeError(f"expected two or more byte counts > 0, comma-separated, got {text[:40]!r}")
    return tuple(sorted({int(p) for p in parts}))


def _override(text: str) -> tuple[str, float]:
    """``CLASS=VALUE`` of --efficiency-override."""
    name, sep, value = text.partition("=")
    try:
        return name.strip(), float(value if sep else "-")
    except ValueError:
        raise InputError(f"efficiency-override: expected CLASS=VALUE (e.g. attention=0.75), got {text!r}") from None


def cmd_verify(args: argparse.Namespace) -> int:
    from hybrid.render import verify as render
    from hybrid.verify import selected

    ok = True
    for run in selected(args.only, args.device):
        summary = run()
        sys.stdout.write(render.to_text(summary, summary.write(args.out_dir), args.verbose))
        ok &= summary.passed
    return 0 if ok else 1


def cmd_calibrate(args: argparse.Namespace) -> int:
    from hybrid.calibrate import calibrate
    from hybrid.render import calibrate as render

    ok = True
    for step in calibrate(args.model, args.laws_dir, args.golden_dir, args.check, args.golden, _progress):
        sys.stdout.write(render.step(step, args.verbose))
        ok &= step.passed
    sys.stdout.write(render.verdict(ok))
    return 0 if ok else 1


def cmd_diff(args: argparse.Namespace) -> int:
    from hybrid.diff import diff_files
    from hybrid.render import diff as render

    result = diff_files(args.old, args.new, args.rtol)
    formats = {"table": render.to_table, "markdown": render.to_markdown, "json": render.to_json}
    _emit(formats[args.format](result), args.output)
    return 0 if result.within_tolerance else 1


def _tolerance(text: str) -> float:
    """An argparse type: a finite number >= 0 (``nan``, ``inf`` and negatives are refused)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0 like 0.01, got {_cut(text)}")
    return value


def _int_list(name: str) -> Any:
    def parse(text: str) -> tuple[int, ...]:
        values = [_whole_number(v) for v in text.split(",")]
        if any(v is None for v in values):
            raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers like 17,33,81, got {_cut(text)}")
        return tuple(v for v in values if v is not None)

    parse.__name__ = name
    return parse


def _size_list(text: str) -> tuple[tuple[int, int], ...]:
    return tuple(_size(v) for v in text.split(","))


def _cfg_list(text: str) -> tuple[bool, ...]:
    values = {"on": True, "off": False, "true": True, "false": False}
    try:
        return tuple(values[v.strip().lower()] for v in text.split(","))
    except KeyError:
        raise argparse.ArgumentTypeError(f"expected on,off (or one of them), got {text!r}") from None


def cmd_sweep(args: argparse.Namespace) -> int:
    from hybrid.render import sweep as render
    from hybrid.sweep import Grid, sweep

    grid = Grid(
        models=tuple(m.strip() for m in args.model.split(",")),
        sizes=args.size or (),
        frames=args.frames,
        steps=args.steps,
        batch=args.batch,
        text_len=args.text_len,
        cfg=args.cfg,
        runtime=_runtime(args),
    )
    reports = sweep(grid, gpu=args.gpu, progress=_progress, host_flops=_host_flops(args), traced=args.traced)
    suffix = args.output.suffix.lower().lstrip(".") if args.output else ""
    fmt = args.format or (suffix if suffix in ("csv", "parquet", "json") else "table")
    if fmt == "parquet":
        if args.output is None:
            raise InputError("format: parquet needs -o FILE")
        write_atomic(args.output, render.to_parquet(reports), "output")
    else:
        formats = {"table": render.to_table, "csv": render.to_csv, "json": render.to_json}
        _emit(formats[fmt](reports), args.output)
    if args.html:
        from hybrid.render.html import sweep_html

        write_atomic(args.html, sweep_html(reports, grid), "html")
        _progress(f"wrote {args.html}")
    if args.plot:
        from hybrid.render.plots import plot_sweep

        plot_sweep(reports, grid, args.plot)
        _progress(f"wrote {args.plot}")
    if args.output is not None:
        _progress(f"wrote {len(reports)} rows to {args.output}")
    return 0


def cmd_gpus(args: argparse.Namespace) -> int:
    from hybrid.hardware import database, default_efficiency
    from hybrid.render import listings as render

    header, gpus = database()
    defaults = {name: default_efficiency(name) for name in gpus}
    formats = {"table": render.gpus_to_table, "json": render.gpus_to_json}
    _emit(formats[args.format](header, gpus, defaults), args.output)
    return 0


def cmd_calibrate_time(args: argparse.Namespace) -> int:
    from hybrid.calibrate import time_model
    from hybrid.render import calibrate as render

    cal, path = time_model(args.out_dir, args.device, args.dtype, args.gpu, args.model, args.scale, _progress)
    sys.stdout.write(render.time_model(cal, path))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from hybrid.models import PRESETS
    from hybrid.render import listings as render

    described = {name: spec.describe() for name, spec in PRESETS.items()}
    _emit({"table": render.models_to_table, "json": render.models_to_json}[args.format](described), args.output)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from hybrid.models import DEFAULT_MODEL
    from hybrid.pipelines import STAGE_NAMES
    from hybrid.verify import VERIFICATIONS

    parser = _Parser(prog="wanmeter", description="Stage-by-stage cost of Wan2.1 text-to-video jobs.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("report", help="end-to-end analytic cost: per stage, per component, total (instant)")
    _add_workload_options(p)
    _add_layout_options(p)
    p.add_argument("--format", default="table", choices=["table", "json", "markdown", "csv", "html"])
    p.add_argument("-o", "--output", type=Path, help="write to FILE instead of stdout")
    p.add_argument("--gpu", help="also seconds and peak memory per stage on this GPU (see wanmeter gpus)")
    p.add_argument(
        "--efficiency",
        type=Path,
        help="with --gpu: timing calibration file (default: calibration/efficiency/GPU.json if it exists, "
        "else the GPU's default efficiencies from cited public measurements)",
    )
    p.add_argument(
        "--efficiency-override",
        action="append",
        default=[],
        metavar="CLASS=VALUE",
        help="with --gpu: replace one op class's efficiency (matmul, attention, convolution, memory), e.g. "
        "attention=0.75 for FlashAttention-3 on an H100; repeatable",
    )
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("plan", help="rank every multi-GPU layout of a job on up to N GPUs (closed form)")
    _add_workload_options(p)
    p.add_argument("--gpu", required=True, help="the GPU (see wanmeter gpus)")
    p.add_argument("--gpus", type=_count("gpus"), required=True, help="GPUs of one server available to the job")
    p.add_argument(
        "--objective",
        default="latency",
        choices=["latency", "gpu-seconds"],
        help="rank by seconds per video, or by seconds x GPUs (default %(default)s)",
    )
    p.add_argument("--format", default="table", choices=["table", "json", "markdown", "csv"])
    p.add_argument("-o", "--output", type=Path, help="write to FILE instead of stdout")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser(
        "calibrate-comm",
        help="under torchrun: time all-to-all, all-gather and send/recv between the GPUs (gloo on CPU)",
    )
    p.add_argument("--gpu", required=True, help="names calibration/interconnect/GPU.json (report --gpu GPU uses it)")
    p.add_argument("--sizes", type=_sizes, help="bytes per rank's message, comma-separated (default 64 KiB to 256 MiB)")
    p.add_argument("--iters", type=_count("iters"), default=5, help="timed calls per size (default %(default)s)")
    p.add_argument("-o", "--output", type=Path, help="write here instead of calibration/interconnect/GPU.json")
    p.set_defaults(func=cmd_calibrate_comm)

    p = sub.add_parser("trace", help="trace the real modules on the meta device: per-op FLOPs and bytes")
    _add_workload_options(p)
    p.add_argument("--stage", default="all", choices=[*STAGE_NAMES, "all"], help="a stage of the model's pipeline")
    p.add_argument(
        "--gpus", type=_count("gpus"), default=1, help="trace one rank of this many (give --ulysses, --ring)"
    )
    p.add_argument("--ulysses", type=_count("ulysses"), default=1, help="Ulysses degree of the traced rank's group")
    p.add_argument("--ring", type=_count("ring"), default=1, help="ring degree of the traced rank's group")
    p.add_argument("--format", default="table", choices=["table", "csv", "json"])
    p.add_argument("-o", "--output", type=Path, help="write to FILE instead of stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("verify", help="analytic == traced at small and full size, invariants, device agreement")
    p.add_argument("--only", help=f"one of: {', '.join(VERIFICATIONS)}")
    p.add_argument("--device", choices=["cpu", "cuda"], help="also run tiny real modules on this device vs meta")
    p.add_argument("--out-dir", type=Path, default=Path("tmp/verify"), help="summaries go here (default %(default)s)")
    p.add_argument("-v", "--verbose", action="store_true", help="print every case")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("calibrate", help="fit scaling laws on traced small shapes and cross-check them")
    p.add_argument("--model", default="all", help="a preset or 'all' (default)")
    p.add_argument(
        "--check",
        action="store_true",
        help="re-fit and compare with the committed laws and golden tables; write nothing",
    )
    p.add_argument("--golden", action="store_true", help="also rewrite the golden per-op tables")
    p.add_argument("--laws-dir", type=Path, default=Path("calibration/laws"))
    p.add_argument("--golden-dir", type=Path, default=Path("calibration/golden"))
    p.add_argument("-v", "--verbose", action="store_true", help="print every law")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("diff", help="regression diff of two reports or two traces (exit 1 beyond tolerance)")
    p.add_argument("old", type=Path, help="report or trace JSON")
    p.add_argument("new", type=Path, help="report or trace JSON of the same kind")
    p.add_argument(
        "--rtol", type=_tolerance, default=0.0, help="relative tolerance, a finite number >= 0 (default 0: any change)"
    )
    p.add_argument("--format", default="table", choices=["table", "markdown", "json"])
    p.add_argument("-o", "--output", type=Path, help="write to FILE instead of stdout")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("sweep", help="the analytic report over a grid of workloads; table/CSV/Parquet/JSON, plots")
    p.add_argument("--model", default=DEFAULT_MODEL, help="comma-separated presets")
    p.add_argument("--size", type=_size_list, help="comma-separated WIDTHxHEIGHT (default: each model's native size)")
    p.add_argument(
        "--frames",
        type=_int_list("frames"),
        default=(None,),
        help="comma-separated (default: each model's)",
    )
    p.add_argument(
        "--steps", type=_int_list("steps"), default=(None,), help="comma-separated (default: each model's recommended)"
    )
    p.add_argument("--batch", type=_int_list("batch"), default=(1,), help="comma-separated (default 1)")
    p.add_argument("--text-len", type=_int_list("text_len"), default=(512,), help="comma-separated (default 512)")
    p.add_argument("--cfg", type=_cfg_list, default=(True,), help="on, off or on,off (default on)")
    p.add_argument("--format", choices=["table", "csv", "parquet", "json"], help="default: from -o's extension")
    p.add_argument("-o", "--output", type=Path, help="write to FILE instead of stdout")
    p.add_argument("--plot", type=Path, help="also draw stacked stage bars and scaling curves to this PNG")
    p.add_argument("--html", type=Path, help="also write a self-contained HTML page of the sweep (table, plots)")
    p.add_argument(
        "--gpu", help="also seconds, peak memory and fit per workload on this GPU (traces each distinct shape on meta)"
    )
    _add_runtime_options(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("gpus", help="list the GPUs of the hardware database with their sources")
    p.add_argument("--format", default="table", choices=["table", "json"])
    p.add_argument("-o", "--output", type=Path, help="write to FILE instead of stdout")
    p.set_defaults(func=cmd_gpus)

    p = sub.add_parser("calibrate-time", help="time op classes and stages on a device; fit the time model")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--gpu", help="hardware-database name of the device: peaks from its datasheet")
    p.add_argument("--scale", type=_count("scale"), default=1, help="microbenchmark size multiplier (e.g. 4 on a GPU)")
    p.add_argument(
        "--model",
        default="small",
        help="modules to time: 'small' (real classes at small widths, seconds on a CPU) or a preset "
        "(full-size random weights at 480p-720p shapes; needs a GPU with room for them)",
    )
    p.add_argument("--out-dir", type=Path, default=Path("calibration/efficiency"))
    p.set_defaults(func=cmd_calibrate_time)

    p = sub.add_parser("models", help="list model presets with their parameter counts")
    p.add_argument("--format", default="table", choices=["table", "json"])
    p.add_argument("-o", "--output", type=Path, help="write to FILE instead of stdout")
    p.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        for name, what in (("output", "output"), ("plot", "plot"), ("html", "html")):  # before any long work
            path = getattr(args, name, None)
            if isinstance(path, Path) and args.command != "verify":
                check_writable(path, what)
        return int(args.func(args))
    except USER_ERRORS as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"wanmeter: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
