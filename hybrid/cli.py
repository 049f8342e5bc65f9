"""``wanmeter`` command line: parse, call the library, render. Nothing else.

Bad input prints one line on stderr and exits with code 2 (no traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from hybrid import options
from hybrid.errors import MAX_LINE_CHARS, InputError, one_line
from hybrid.files import CALIBRATION_DIR, check_writable, write_atomic

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 128 + 2
"""Ctrl-C (SIGINT, 2): the shell's code for a process the signal ended."""
EXIT_BROKEN_PIPE = 128 + 13
"""The reader of standard output went away (``| head -1``): the code the shell gives a writer
SIGPIPE (13) ends, as ``yes | head -1`` does; nothing is printed."""
ERROR_PREFIX = "wanmeter: error: "
DESCRIPTION = (
    "Stage-by-stage cost of Wan2.1 and Wan2.2 video jobs: exact FLOPs, bytes, memory per GPU and seconds on named GPUs."
)

USER_ERRORS: tuple[type[Exception], ...] = (InputError, OSError)
"""What ``main`` reports as bad input (one line, exit 2): :class:`~hybrid.errors.InputError`, which
the library raises for every input the user can fix, and ``OSError`` (a file that cannot be read or
written). Any other exception, a ``ValueError`` from a bug included, ends in a traceback."""


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


def output_path(text: str) -> Path:
    """An argparse type: a file to write (``-o``, ``--plot``, ``--html``). A trailing ``/`` names a
    folder, never a file: ``Path("newdir/")`` would drop it and write a file called ``newdir``."""
    if text.endswith(("/", os.sep)):
        raise argparse.ArgumentTypeError(f"{text!r} ends with '/', a folder; give a file name")
    return Path(text)


def _write_stdout(text: str) -> None:
    """``text`` on standard output, all of it or an error: a closed stdout, a full disk and a
    file-size limit (``ulimit -f``; Python ignores SIGXFSZ, so the write fails with EFBIG) are one
    line naming standard output. A buffered write cut short reports fewer bytes rather than
    failing, so the bytes are written until every one is taken or the write fails."""
    stream = sys.stdout
    if stream is None:
        raise InputError("output: standard output is closed; give -o FILE")
    buffer = getattr(stream, "buffer", None)
    try:
        if buffer is None:  # a text stream with no bytes underneath (a test's capture)
            stream.write(text)
            stream.flush()
            return
        stream.flush()
        view = memoryview(text.encode(stream.encoding or "utf-8", stream.errors or "strict"))
        while view:
            view = view[buffer.write(view) :]
        buffer.flush()
    except BrokenPipeError:
        raise  # main's: quiet, EXIT_BROKEN_PIPE
    except OSError as e:
        raise InputError(f"output: cannot write standard output ({e.strerror or e}); give -o FILE") from None


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        _write_stdout(text)
    else:
        write_atomic(output, text, "output")


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cmd_trace(args: argparse.Namespace) -> int:
    from hybrid.deployment import Deployment
    from hybrid.render import trace as render
    from hybrid.trace import trace

    workload = options.workload(args)
    stages = None if args.stage == "all" else (args.stage,)
    deployment = Deployment(gpus=args.gpus, ulysses=args.ulysses, ring=args.ring)
    deployment.check(workload.spec, workload.runtime)
    deployment.check_tokens(workload.shape().dit_tokens, workload.runtime)
    result = trace(workload, stages=stages, progress=None if args.quiet else _progress, deployment=deployment)
    text = {"table": render.to_table, "csv": render.to_csv, "json": render.to_json}[args.format](result)
    _emit(text, args.output)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from hybrid.accuracy import with_range
    from hybrid.deployment import SINGLE
    from hybrid.ranges import with_cost
    from hybrid.render import report as render
    from hybrid.render.html import report_html
    from hybrid.report import estimate, sized_report

    workload = options.workload(args)
    if args.gpu is None:
        result = estimate(workload)
        if options.deployment(args) != SINGLE:
            raise InputError(
                "gpus: --gpus, --ulysses, --ring, --cfg-parallel and --fsdp lay the job out on GPUs; give --gpu NAME"
            )
    else:
        result = with_range(
            sized_report(
                workload,
                args.gpu,
                deployment=options.deployment(args),
                efficiency=args.efficiency,
                overrides=options.efficiency_overrides(args.efficiency_override),
                host_flops=options.host_flops(args),
                traced=args.traced,
                progress=_progress,
                optimise=options.optimisations(args),
            )
        )
        assert result.gpu is not None
        price = options.price(args, args.gpu)
        sized = with_cost(result.gpu, price, workload.batch)
        if price is None:
            unpriced = (
                f"no on-demand US dollar price for {sized.gpu.name} in hybrid/data/prices.json (wanmeter prices): give "
                "--price USD_PER_GPU_HOUR to cost a video"
            )
            sized = replace(sized, warnings=(*sized.warnings, unpriced))
        result = replace(result, gpu=sized)
    formats = {"table": render.to_table, "json": render.to_json, "markdown": render.to_markdown, "csv": render.to_csv}
    _emit({**formats, "html": report_html}[args.format](result), args.output)
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from hybrid.plan import plan
    from hybrid.render import plan as render

    if args.traced:
        raise InputError("traced: plan sizes every layout in closed form; check one with report --gpu ... --traced")
    workload = options.workload(args)
    result = plan(
        workload,
        args.gpu,
        args.gpus,
        args.objective,
        options.optimisations(args),
        options.try_optimisations(args),
        options.price(args, args.gpu),
        host_flops=options.host_flops(args),
    )
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


def cmd_verify(args: argparse.Namespace) -> int:
    from hybrid.render import verify as render
    from hybrid.verify import selected

    ok = True
    for run in selected(args.only, args.device):
        summary = run()
        _write_stdout(render.to_text(summary, summary.write(args.out_dir), args.verbose))
        ok &= summary.passed
    return 0 if ok else 1


def cmd_calibrate(args: argparse.Namespace) -> int:
    from hybrid.calibrate import calibrate
    from hybrid.render import calibrate as render

    ok = True
    for step in calibrate(args.model, args.laws_dir, args.golden_dir, args.check, args.golden, _progress):
        _write_stdout(render.step(step, args.verbose))
        ok &= step.passed
    _write_stdout(render.verdict(ok))
    return 0 if ok else 1


def cmd_diff(args: argparse.Namespace) -> int:
    from hybrid.diff import diff_files
    from hybrid.render import diff as render

    result = diff_files(args.old, args.new, args.rtol)
    formats = {"table": render.to_table, "markdown": render.to_markdown, "json": render.to_json}
    _emit(formats[args.format](result), args.output)
    return 0 if result.within_tolerance else 1


def cmd_sweep(args: argparse.Namespace) -> int:
    from hybrid.render import sweep as render
    from hybrid.sweep import Grid, sweep

    optimise = options.optimisations(args)  # before any work

    grid = Grid(
        models=tuple(m.strip() for m in args.model.split(",")),
        sizes=args.size or (),
        frames=args.frames,
        steps=args.steps,
        batch=args.batch,
        text_len=args.text_len,
        cfg=args.cfg,
        audio_seconds=args.audio_seconds,
        runtime=options.grid_runtime(args),
    )
    reports = sweep(
        grid,
        gpu=args.gpu,
        progress=_progress,
        host_flops=options.host_flops(args),
        traced=args.traced,
        max_rows=args.max_rows,
        optimise=optimise,
    )
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


def cmd_optimisations(args: argparse.Namespace) -> int:
    from hybrid.render import listings as render

    formats = {"table": render.optimisations_to_table, "json": render.optimisations_to_json}
    _emit(formats[args.format](), args.output)
    return 0


def cmd_prices(args: argparse.Namespace) -> int:
    from hybrid.prices import data, read_prices
    from hybrid.render import listings as render

    doc = read_prices(args.prices) if args.prices is not None else data()
    _emit({"table": render.prices_to_table, "json": render.prices_to_json}[args.format](doc), args.output)
    return 0


def cmd_fleet(args: argparse.Namespace) -> int:
    from hybrid.fleet import parse_rate, parse_slo, read_mix, read_trace, search
    from hybrid.prices import read_prices
    from hybrid.render import fleet as render

    if args.format == "png" and args.output is None:
        raise InputError("output: --format png writes a file; give -o FILE.png")
    if (args.mix is None) == (args.trace is None):
        raise InputError("mix: give --mix FILE with --rate, or --trace FILE of timed requests; one of them")
    if args.trace is not None and args.rate is not None:
        raise InputError("rate: a trace's requests come at their own times; leave --rate out with --trace")
    if args.mix is not None and args.rate is None:
        raise InputError("rate: --mix needs --rate, e.g. 200/h")
    slo = parse_slo(args.slo)
    arrivals = None
    if args.trace is not None:
        kinds, arrivals = read_trace(args.trace)
        rate = 1.0  # set from the trace by the search
    else:
        rate, kinds = parse_rate(args.rate), read_mix(args.mix)
    gpus = [g.strip() for g in args.gpu.split(",") if g.strip()]
    if not gpus:
        raise InputError("gpu: give one or more GPUs, comma-separated (see wanmeter gpus)")
    prices = read_prices(args.prices) if args.prices is not None else None
    from hybrid.optimisations import parse

    optimise = parse(args.optimise) if args.optimise else ()
    result = search(kinds, rate, slo, gpus, args.max_gpus, args.discipline, args.seed, args.replications, args.jobs,
                    prices, arrivals, optimise)  # fmt: skip
    if result.best() is None:
        raise InputError(result.unmet())
    if args.format == "png":
        write_atomic(args.output, render.to_png(result), "output")
        return 0
    formats = {"table": render.to_table, "json": render.to_json, "csv": render.to_csv, "html": render.to_html}
    _emit(formats[args.format](result), args.output)
    return 0


def cmd_calibrate_time(args: argparse.Namespace) -> int:
    from hybrid.calibrate import time_model
    from hybrid.render import calibrate as render

    cal, path = time_model(args.out_dir, args.device, args.dtype, args.gpu, args.model, args.scale, _progress)
    _write_stdout(render.time_model(cal, path))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from hybrid.presets import PRESETS
    from hybrid.render import listings as render

    described = {name: spec.describe() for name, spec in PRESETS.items()}
    _emit({"table": render.models_to_table, "json": render.models_to_json}[args.format](described), args.output)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from hybrid.pipelines import STAGE_NAMES
    from hybrid.presets import DEFAULT_MODEL
    from hybrid.sweep import MAX_ROWS
    from hybrid.verify import VERIFICATIONS

    parser = _Parser(prog="wanmeter", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("report", help="end-to-end analytic cost: per stage, per component, total (instant)")
    options.add_workload_options(p)
    options.add_layout_options(p)
    p.add_argument("--format", default="table", choices=["table", "json", "markdown", "csv", "html"])
    p.add_argument("-o", "--output", type=output_path, help="write to FILE instead of stdout")
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
    p.add_argument(
        "--optimise",
        metavar="LIST",
        help="with --gpu: optimisations as what-ifs, comma-separated (e.g. sage2,teacache:0.2,distill:4; see "
        "wanmeter optimisations); the report puts the baseline beside the optimised job",
    )
    options.add_price_options(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("plan", help="rank every multi-GPU layout of a job on up to N GPUs (closed form)")
    options.add_workload_options(p)
    p.add_argument("--gpu", required=True, help="the GPU (see wanmeter gpus)")
    p.add_argument("--gpus", type=options.count("gpus"), required=True, help="GPUs of one server available to the job")
    p.add_argument(
        "--objective",
        default="latency",
        choices=["latency", "gpu-seconds", "cost"],
        help="rank by seconds per video, by seconds x GPUs, or by dollars per video (GPU-seconds x the price per "
        "GPU-hour) (default %(default)s)",
    )
    options.add_price_options(p)
    p.add_argument("--format", default="table", choices=["table", "json", "markdown", "csv"])
    p.add_argument("-o", "--output", type=output_path, help="write to FILE instead of stdout")
    p.add_argument(
        "--optimise",
        metavar="LIST",
        help="optimisations as what-ifs every layout runs, comma-separated (see wanmeter optimisations)",
    )
    p.add_argument(
        "--try-optimisations",
        metavar="SETS",
        action="append",
        help="rank these optimisation sets with the layouts, beside the baseline: sets separated by ';', each a "
        "comma-separated list as --optimise takes (e.g. 'fp8;sage2,fp8;distill:4,fp8'); may repeat",
    )
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser(
        "calibrate-comm",
        help="under torchrun: time all-to-all, all-gather and send/recv between the GPUs (gloo on CPU)",
    )
    p.add_argument("--gpu", required=True, help="names calibration/interconnect/GPU.json (report --gpu GPU uses it)")
    p.add_argument(
        "--sizes", type=options.byte_sizes, help="bytes per rank's message, comma-separated (default 64 KiB to 256 MiB)"
    )
    p.add_argument("--iters", type=options.count("iters"), default=5, help="timed calls per size (default %(default)s)")
    p.add_argument("-o", "--output", type=output_path, help="write here instead of calibration/interconnect/GPU.json")
    p.set_defaults(func=cmd_calibrate_comm)

    p = sub.add_parser("trace", help="trace the real modules on the meta device: per-op FLOPs and bytes")
    options.add_workload_options(p)
    p.add_argument("--stage", default="all", choices=[*STAGE_NAMES, "all"], help="a stage of the model's pipeline")
    p.add_argument(
        "--gpus", type=options.count("gpus"), default=1, help="trace one rank of this many (give --ulysses, --ring)"
    )
    p.add_argument(
        "--ulysses", type=options.count("ulysses"), default=1, help="Ulysses degree of the traced rank's group"
    )
    p.add_argument("--ring", type=options.count("ring"), default=1, help="ring degree of the traced rank's group")
    p.add_argument("--format", default="table", choices=["table", "csv", "json"])
    p.add_argument("-o", "--output", type=output_path, help="write to FILE instead of stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("verify", help="analytic == traced at small and full size, invariants, device agreement")
    p.add_argument("--only", help=f"one of: {', '.join(VERIFICATIONS)}; or device (with --device: that check alone)")
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
    p.add_argument("--laws-dir", type=Path, default=CALIBRATION_DIR / "laws")
    p.add_argument("--golden-dir", type=Path, default=CALIBRATION_DIR / "golden")
    p.add_argument("-v", "--verbose", action="store_true", help="print every law")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("diff", help="regression diff of two reports or two traces (exit 1 beyond tolerance)")
    p.add_argument("old", type=Path, help="report or trace JSON")
    p.add_argument("new", type=Path, help="report or trace JSON of the same kind")
    p.add_argument(
        "--rtol",
        type=options.tolerance,
        default=0.0,
        help="relative tolerance, a finite number >= 0 (default 0: any change)",
    )
    p.add_argument("--format", default="table", choices=["table", "markdown", "json"])
    p.add_argument("-o", "--output", type=output_path, help="write to FILE instead of stdout")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("sweep", help="the analytic report over a grid of workloads; table/CSV/Parquet/JSON, plots")
    p.add_argument("--model", default=DEFAULT_MODEL, help="comma-separated presets")
    p.add_argument(
        "--size", type=options.size_list, help="comma-separated WIDTHxHEIGHT (default: each model's native size)"
    )
    p.add_argument(
        "--frames",
        type=options.int_list("frames"),
        default=(None,),
        help="comma-separated (default: each model's)",
    )
    p.add_argument(
        "--steps",
        type=options.int_list("steps"),
        default=(None,),
        help="comma-separated (default: each model's recommended)",
    )
    p.add_argument("--batch", type=options.int_list("batch"), default=(1,), help="comma-separated (default 1)")
    p.add_argument(
        "--text-len", type=options.int_list("text_len"), default=(512,), help="comma-separated (default 512)"
    )
    p.add_argument(
        "--cfg", type=options.cfg_list, default=(None,),
        help="on, off or on,off (default: each model's, on; Wan-Animate's guidance 1.0: off)",
    )  # fmt: skip
    p.add_argument(
        "--audio-seconds", type=options.number_list("audio-seconds"), default=(None,),
        help="comma-separated, speech-to-video presets only (default: each one's, 5)",
    )  # fmt: skip
    p.add_argument("--format", choices=["table", "csv", "parquet", "json"], help="default: from -o's extension")
    p.add_argument("-o", "--output", type=output_path, help="write to FILE instead of stdout")
    p.add_argument("--plot", type=output_path, help="also draw stacked stage bars and scaling curves to this PNG")
    p.add_argument("--html", type=output_path, help="also write a self-contained HTML page of the sweep (table, plots)")
    p.add_argument(
        "--gpu", help="also seconds, peak memory and fit per workload on this GPU (traces each distinct shape on meta)"
    )
    p.add_argument(
        "--max-rows",
        type=options.whole("max-rows"),
        default=MAX_ROWS,
        help="the most workloads (rows) a grid may have (default %(default)s; a larger one is refused before any work)",
    )
    options.add_runtime_options(p)
    p.add_argument(
        "--optimise",
        metavar="LIST",
        help="with --gpu: every row the optimised job, comma-separated (see wanmeter optimisations)",
    )
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("optimisations", help="list the optimisations --optimise names, with their sources")
    p.add_argument("--format", default="table", choices=["table", "json"])
    p.add_argument("-o", "--output", type=output_path, help="write to FILE instead of stdout")
    p.set_defaults(func=cmd_optimisations)

    p = sub.add_parser("fleet", help="the cheapest fleet of GPUs for a request mix at a latency target (SimPy)")
    p.add_argument("--mix", type=Path, help="the request mix: CSV, JSON Lines or Parquet, one row per kind of job "
                   "(model, size, frames, steps, image, ref_images, share)")  # fmt: skip
    p.add_argument("--trace", type=Path, help="instead of --mix and --rate: timed requests, one row each (time in "
                   "seconds or ISO 8601, and the job's columns), replayed")  # fmt: skip
    p.add_argument("--rate", help="with --mix: requests per s, min, h or d, e.g. 200/h (Poisson arrivals)")
    p.add_argument("--slo", required=True, help="the latency target, e.g. p95<=300s (waiting plus the job)")
    p.add_argument("--gpu", required=True, help="GPU types to consider, comma-separated (see wanmeter gpus)")
    p.add_argument("--max-gpus", type=options.count("max-gpus"), default=64, help="GPUs at most (default 64)")
    p.add_argument("--discipline", default="fifo", choices=["fifo", "sjf"], help="queue order (default fifo)")
    p.add_argument("--seed", type=int, default=0, help="the first replication's seed (default 0)")
    p.add_argument("--replications", type=options.count("replications"), default=5, help="default 5")
    p.add_argument("--jobs", type=options.count("jobs"), default=2000, help="requests per replication (default 2000)")
    p.add_argument("--prices", type=Path, metavar="FILE", help="prices per GPU-hour from FILE (prices.json's schema)")
    p.add_argument("--optimise", metavar="LIST", help="optimisations every job runs, comma-separated (see wanmeter "
                   "optimisations); a GPU a method does not run on is skipped with why")  # fmt: skip
    p.add_argument("--format", default="table", choices=["table", "json", "csv", "html", "png"])
    p.add_argument("-o", "--output", type=output_path, help="write to FILE instead of stdout")
    p.set_defaults(func=cmd_fleet)

    p = sub.add_parser("prices", help="list what a GPU-hour costs per provider, and hosted Wan API prices")
    p.add_argument("--format", default="table", choices=["table", "json"])
    p.add_argument("--prices", type=Path, metavar="FILE", help="list FILE (prices.json's schema) instead")
    p.add_argument("-o", "--output", type=output_path, help="write to FILE instead of stdout")
    p.set_defaults(func=cmd_prices)

    p = sub.add_parser("gpus", help="list the GPUs of the hardware database with their sources")
    p.add_argument("--format", default="table", choices=["table", "json"])
    p.add_argument("-o", "--output", type=output_path, help="write to FILE instead of stdout")
    p.set_defaults(func=cmd_gpus)

    p = sub.add_parser("calibrate-time", help="time op classes and stages on a device; fit the time model")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--gpu", help="hardware-database name of the device: peaks from its datasheet")
    p.add_argument(
        "--scale", type=options.count("scale"), default=1, help="microbenchmark size multiplier (e.g. 4 on a GPU)"
    )
    p.add_argument(
        "--model",
        default="small",
        help="modules to time: 'small' (real classes at small widths, seconds on a CPU) or a preset "
        "(full-size random weights at 480p-720p shapes; needs a GPU with room for them)",
    )
    p.add_argument("--out-dir", type=Path, default=CALIBRATION_DIR / "efficiency")
    p.set_defaults(func=cmd_calibrate_time)

    p = sub.add_parser("models", help="list model presets with their parameter counts")
    p.add_argument("--format", default="table", choices=["table", "json"])
    p.add_argument("-o", "--output", type=output_path, help="write to FILE instead of stdout")
    p.set_defaults(func=cmd_models)
    return parser


class _Interrupts:
    """Ctrl-C noted as it arrives, then raised as usual: one a finalizer swallowed still ends the
    command with exit 130, and Python's "Exception ignored" report of it (a traceback) is not printed
    (:meth:`unraisable`)."""

    seen = False

    @classmethod
    def handler(cls, signum: int, frame: object) -> None:
        cls.seen = True
        raise KeyboardInterrupt

    @staticmethod
    def unraisable(previous: Any) -> Any:
        """A ``sys.unraisablehook`` that keeps quiet about a Ctrl-C raised inside a finalizer (the
        handler noted it: the command ends with exit 130) and passes anything else to ``previous``."""

        def hook(report: Any) -> None:
            if isinstance(report.exc_value, KeyboardInterrupt):
                return
            previous(report)

        return hook


def _interrupted() -> int:
    print("wanmeter: interrupted", file=sys.stderr)
    _forget_escaped_interrupt()
    return EXIT_INTERRUPTED


def _forget_escaped_interrupt() -> None:
    """Keep the exit code 130 once a Ctrl-C is handled.

    CPython notes a KeyboardInterrupt that leaves code run from a string (``exec(str)``, as
    ``dataclasses`` runs while a module is imported mid-command) as unhandled, even when a caller
    catches it; the note is cleared only when the next string is run, and at exit the interpreter
    sees it and kills itself with SIGINT instead of returning our code (``run_eval_code_obj`` in
    Python/pythonrun.c, read by ``Py_RunMain``). Running one harmless string clears it."""
    exec("pass")  # a constant string: clears the note, runs nothing


def main(argv: Sequence[str] | None = None) -> int:
    import signal

    _Interrupts.seen = False
    previous = None
    try:  # only the main thread may set handlers; keep an ignored SIGINT ignored
        if signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, None):
            previous = signal.signal(signal.SIGINT, _Interrupts.handler)
    except ValueError:
        previous = None
    hook = sys.unraisablehook
    sys.unraisablehook = _Interrupts.unraisable(hook)
    try:
        return _main(argv)
    finally:
        sys.unraisablehook = hook
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        for name, what in (("output", "output"), ("plot", "plot"), ("html", "html")):  # before any long work
            path = getattr(args, name, None)
            if isinstance(path, Path) and args.command != "verify":
                check_writable(path, what)
        code = int(args.func(args))
        return _interrupted() if _Interrupts.seen else code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except USER_ERRORS as e:
        _error_line(str(e) or type(e).__name__)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return _interrupted()


def _error_line(message: str) -> None:
    """``message`` as the one line of an error: control characters escaped and every echoed value
    cut (:func:`hybrid.errors.one_line`), at most :data:`~hybrid.errors.MAX_LINE_CHARS` in all."""
    print(ERROR_PREFIX + one_line(message, MAX_LINE_CHARS - len(ERROR_PREFIX)), file=sys.stderr)


def _silence_stdout() -> None:
    """Point standard output at ``/dev/null`` once its reader has gone, so that the interpreter's
    last flush at exit finds no pipe to break (Python's documented way for SIGPIPE)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
