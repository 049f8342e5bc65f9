"""The command line's options: their value types and the options that describe a job.

A value type turns one option's text into a value or fails with a one-line message (argparse
prints it as ``argument --size: ...``); the job options (workload, runtime, multi-GPU layout) are
defined once here for every command that takes them, and read back into a
:class:`~hybrid.workload.Workload` and a :class:`~hybrid.deployment.Deployment`, refusing
combinations that would do nothing.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybrid.errors import InputError, echo
from hybrid.runtime import FLASH_ATTENTION, VAE_DTYPES

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.deployment import Deployment
    from hybrid.optimisations import Optimisation
    from hybrid.presets import ModelSpec
    from hybrid.prices import Price
    from hybrid.runtime import Runtime
    from hybrid.workload import Workload


# -- value types ---------------------------------------------------------------------------------


MAX_DIGITS = 4000
"""The longest whole number the CLI reads (Python refuses to convert more than 4,300 digits)."""


def size(text: str) -> tuple[int, int]:
    """An argparse type: ``WIDTHxHEIGHT``, both whole numbers > 0 (multiples of 16 are the workload's to check)."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) <= MAX_DIGITS and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 1280x720, got {echo(text)}")
    return int(parts[0]), int(parts[1])


def _whole_number(text: str) -> int | None:
    """``text`` as an int if it is ASCII digits (a leading ``-`` allowed, for the field's own range
    message), at most :data:`MAX_DIGITS` of them; else ``None`` (full-width and other Unicode
    digits are refused)."""
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > MAX_DIGITS:
        return None
    return int(text)


def whole(name: str) -> Any:
    """An argparse type: a whole number in ASCII digits; the bad text is cut in the message."""

    def parse(text: str) -> int:
        value = _whole_number(text)
        if value is None:
            raise argparse.ArgumentTypeError(f"expected a whole number in ASCII digits, got {echo(text)}")
        return value

    parse.__name__ = name
    return parse


def number(name: str, positive: bool = False) -> Any:
    """An argparse type: a finite number (``positive``: > 0); the bad text is cut in the message."""
    kind = "a positive number" if positive else "a number"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or (positive and value <= 0):
            raise argparse.ArgumentTypeError(f"expected {kind} like 5.0, got {echo(text)}")
        return value

    parse.__name__ = name
    return parse


def number_list(name: str) -> Any:
    """An argparse type: comma-separated positive numbers (:func:`number` each)."""
    one = number(name, positive=True)

    def parse(text: str) -> tuple[float, ...]:
        return tuple(one(v) for v in text.split(","))

    parse.__name__ = name
    return parse


def count(name: str) -> Callable[[str], int]:
    """An argparse type: a whole number >= 1 in ASCII digits; the bad text is cut in the message."""

    def parse(text: str) -> int:
        value = _whole_number(text)
        if value is None or value < 1:
            raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {echo(text)}")
        return value

    parse.__name__ = name
    return parse


def fsdp(text: str) -> tuple[str, ...]:
    """An argparse type: comma-separated components of :data:`~hybrid.deployment.FSDP_COMPONENTS`."""
    from hybrid.deployment import FSDP_COMPONENTS

    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in parts if p not in FSDP_COMPONENTS]
    if bad or not parts:
        raise argparse.ArgumentTypeError(
            f"unknown component {(bad or [text])[0][:40]!r}; valid: {', '.join(FSDP_COMPONENTS)}"
        )
    return parts


def byte_sizes(text: str) -> tuple[int, ...]:
    """An argparse type: two or more comma-separated byte counts > 0, sorted, each once."""
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isascii() and p.isdigit() and int(p) > 0 for p in parts) or len(parts) < 2:
        raise argparse.ArgumentTypeError(f"expected two or more byte counts > 0, comma-separated, got {text[:40]!r}")
    return tuple(sorted({int(p) for p in parts}))


def efficiency_overrides(texts: Sequence[str]) -> dict[str, float]:
    """``CLASS=VALUE`` texts of --efficiency-override as ``{class: value}`` (the classes and the
    values' range are :meth:`hybrid.optimise.EfficiencyOverride.of`'s to check)."""
    out = {}
    for text in texts:
        name, sep, value = text.partition("=")
        try:
            out[name.strip()] = float(value if sep else "-")
        except ValueError:
            raise InputError(f"efficiency-override: expected CLASS=VALUE (e.g. attention=0.75), got {text!r}") from None
    return out


def tolerance(text: str) -> float:
    """An argparse type: a finite number >= 0 (``nan``, ``inf`` and negatives are refused)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0 like 0.01, got {echo(text)}")
    return value


def int_list(name: str) -> Any:
    def parse(text: str) -> tuple[int, ...]:
        values = [_whole_number(v) for v in text.split(",")]
        if any(v is None for v in values):
            raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers like 17,33,81, got {echo(text)}")
        return tuple(v for v in values if v is not None)

    parse.__name__ = name
    return parse


def size_list(text: str) -> tuple[tuple[int, int], ...]:
    return tuple(size(v) for v in text.split(","))


def cfg_list(text: str) -> tuple[bool, ...]:
    values = {"on": True, "off": False, "true": True, "false": False}
    try:
        return tuple(values[v.strip().lower()] for v in text.split(","))
    except KeyError:
        raise argparse.ArgumentTypeError(f"expected on,off (or one of them), got {text!r}") from None


# -- the options of a job -------------------------------------------------------------------------


def add_workload_options(p: argparse.ArgumentParser) -> None:
    from hybrid.presets import DEFAULT_MODEL, PRESETS

    p.add_argument("--model", default=DEFAULT_MODEL, help=f"{', '.join(sorted(PRESETS))} (default %(default)s)")
    p.add_argument("--size", type=size, help="WIDTHxHEIGHT, multiples of 16 (default: the model's native size)")
    p.add_argument(
        "--frames", type=whole("frames"), help="video frames, 4k+1 (default: the model's, 81; Wan2.2 TI2V 121)"
    )
    p.add_argument("--steps", type=whole("steps"), help="denoising steps (default: the model's recommended steps)")
    p.add_argument("--batch", type=whole("batch"), default=1, help="videos per job (default %(default)s)")
    p.add_argument("--text-len", type=whole("text_len"), default=512, help="padded prompt tokens (default %(default)s)")
    p.add_argument("--no-cfg", action="store_true", help="disable classifier-free guidance")
    p.add_argument(
        "--ref-images", type=whole("ref_images"), default=0, help="VACE reference images (default %(default)s)"
    )
    p.add_argument("--image", action="store_true", help="Wan2.2 TI2V: image-to-video mode (the image is VAE-encoded)")
    p.add_argument(
        "--guidance-scale",
        type=number("guidance-scale"),
        help="diffusers runs CFG when it is > 1 (default 5.0; 1 or less: off, like --no-cfg)",
    )
    p.add_argument(
        "--guidance-scale-2",
        type=number("guidance-scale-2"),
        help="two-expert presets: the low-noise expert's guidance (diffusers: no change in cost)",
    )
    p.add_argument(
        "--flow-shift",
        type=number("flow-shift", positive=True),
        help="two-expert (Wan2.2 A14B) presets: the scheduler's flow shift, which decides each expert's steps "
        "(default: the preset's published one)",
    )
    p.add_argument(
        "--strength",
        type=number("strength", positive=True),
        help="video-to-video presets: how far the input video is noised, in (0, 1]; the job denoises "
        "int(steps x strength) steps (default 0.8, diffusers' WanVideoToVideoPipeline)",
    )
    p.add_argument(
        "--mode",
        choices=("animate", "replace"),
        help="Wan-Animate presets: animate the reference character with the driving video's motion, or replace "
        "the character in the background video (default animate, diffusers' WanAnimatePipeline); --frames is "
        "then the whole video, made in 77-frame segments",
    )
    p.add_argument(
        "--prev-segment-conditioning-frames",
        type=int,
        choices=(1, 5),
        help="Wan-Animate presets: the previous segment's last frames each later segment is conditioned on "
        "(diffusers' prev_segment_conditioning_frames, the original's --refert_num; default 1): 5 makes more "
        "segments of the same 77 frames",
    )
    p.add_argument(
        "--audio-seconds",
        type=number("audio-seconds", positive=True),
        help="speech-to-video presets: the audio's length in seconds, which decides how many clips of --frames "
        "frames (default 80) the job makes (default 5)",
    )
    p.add_argument(
        "--pose-video",
        action="store_true",
        help="speech-to-video presets: a pose video drives the job (generate.py --pose_video): each clip's pose "
        "frames are VAE-encoded as its condition (default: none, the -1 frames encoded once)",
    )
    p.add_argument(
        "--relighting-lora",
        action="store_true",
        help="Wan-Animate presets: load the relighting LoRA (generate.py --use_relighting_lora, as the original "
        "README's replacement commands do): rank-128 layers beside every Linear of the DiT's blocks, unmerged "
        "(--runtime wan)",
    )
    p.add_argument("--model-dir", type=Path, help="local Diffusers-format Wan2.1 folder (configs, safetensors headers)")
    add_runtime_options(p)


def add_runtime_options(p: argparse.ArgumentParser) -> None:
    from hybrid.runtime import RUNTIMES

    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        help="the code that runs the job: diffusers pipelines, the original Wan repository's generate.py "
        "(float32 DiT weights under bf16 autocast, per-token timesteps in Wan2.2, FlashAttention), or LightX2V, "
        "FastVideo, xDiT, vLLM-Omni, SGLang diffusion or DiffSynth-Studio as their own configs run them "
        f"(hybrid.runtime.RUNTIME_DEFS) (default {RUNTIMES[0]}; wan for a pipeline only the original repository runs: "
        "wan2.2-s2v-14b)",
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
        type=whole("flash_attention"),
        choices=FLASH_ATTENTION,
        help="--runtime wan: FlashAttention version (default: 2, the flash_attn its requirements.txt installs; 3 "
        "where flash_attn_interface is built from flash-attention's hopper/ folder, Hopper only)",
    )
    p.add_argument(
        "--attention",
        metavar="KERNEL",
        help="with --gpu: the attention kernel that runs, whatever the runtime would pick (sdpa-math, sdpa-flash, "
        "sdpa-efficient, cudnn, fa2, fa3, xformers, sage2, sage3, flex, fp8-attention); timed by its measured "
        "curve on the GPU (hybrid/data/kernel_rates.json)",
    )
    p.add_argument(
        "--torch",
        metavar="VERSION",
        help="with --gpu: the torch release the job runs (e.g. 2.7.1), for runtimes whose attention is PyTorch "
        "SDPA's choice (diffusers, fastvideo, diffsynth): its backend order picks the kernel (cuDNN on Hopper and "
        "Blackwell only from 2.11; default: the release the runtime installs)",
    )
    p.add_argument(
        "--vae-tiling",
        action="store_true",
        help="the VAE encodes and decodes in overlapping 256-pixel tiles every 192 (diffusers' vae.enable_tiling(), "
        "LightX2V's use_tiling_vae): more FLOPs, a lower peak",
    )
    p.add_argument(
        "--vae-dtype",
        choices=VAE_DTYPES,
        help="the dtype the VAE is loaded and run in (diffusers' torch_dtype, LightX2V's vae_dtype; default: the "
        "runtime's, float32 in diffusers, bfloat16 in LightX2V)",
    )
    p.add_argument(
        "--traced",
        action="store_true",
        help="with --gpu: bytes and activation peaks from a meta trace of the real modules instead of the "
        "closed form (the same seconds and peaks, seconds slower)",
    )
    p.add_argument(
        "--host-tflops",
        type=number("host-tflops", positive=True),
        help="with --gpu and --t5-cpu: the host CPU's bf16 TFLOP/s (default: the stated figure in "
        "hybrid/data/efficiency_defaults.json)",
    )


def add_layout_options(p: argparse.ArgumentParser) -> None:
    """The layout of a multi-GPU job (``report --gpu``)."""
    p.add_argument(
        "--gpus",
        type=count("gpus"),
        default=1,
        help="with --gpu: GPUs of one server the job runs on; give the layout with --ulysses, --ring, --fsdp "
        "(default %(default)s)",
    )
    p.add_argument("--ulysses", type=count("ulysses"), default=1, help="Ulysses sequence-parallel degree")
    p.add_argument("--ring", type=count("ring"), default=1, help="ring-attention sequence-parallel degree")
    p.add_argument(
        "--cfg-parallel",
        action="store_true",
        help="the conditional and unconditional passes on two GPU groups (no modelled runtime runs it)",
    )
    p.add_argument(
        "--fsdp",
        type=fsdp,
        default=(),
        help="--runtime wan: shard these over every GPU, comma-separated: dit, text_encoder (--dit_fsdp, --t5_fsdp)",
    )


def deployment(args: argparse.Namespace) -> Deployment:
    from hybrid.deployment import Deployment

    return Deployment(
        gpus=args.gpus,
        ulysses=args.ulysses,
        ring=args.ring,
        cfg_parallel=2 if args.cfg_parallel else 1,
        fsdp=args.fsdp,
    )


def runtime(args: argparse.Namespace, spec: ModelSpec | None = None) -> Runtime:
    """The runtime the options name: ``--runtime``, else ``spec``'s pipeline's default
    (:func:`hybrid.workload.default_runtime`; diffusers without a spec), with its flags."""
    from hybrid.runtime import RUNTIMES, Runtime
    from hybrid.workload import default_runtime

    return Runtime(
        name=args.runtime or (default_runtime(spec) if spec is not None else RUNTIMES[0]),
        offload=args.offload,
        t5_cpu=args.t5_cpu,
        convert_model_dtype=args.convert_model_dtype,
        flash_attention=args.flash_attention,
        attention=args.attention,
        torch=args.torch,
        vae_tiling=args.vae_tiling,
        vae_dtype=args.vae_dtype,
    )


def grid_runtime(args: argparse.Namespace) -> Runtime | None:
    """A sweep's runtime: :func:`runtime`, or ``None`` (each model's default) where no runtime option is given."""
    from hybrid.runtime import Runtime

    given = runtime(args)
    return None if args.runtime is None and given == Runtime() else given


def add_price_options(p: argparse.ArgumentParser) -> None:
    """``--price`` and ``--prices``: what a GPU-hour costs (dollars per video in the output)."""
    p.add_argument(
        "--price",
        type=number("price", positive=True),
        metavar="USD_PER_GPU_HOUR",
        help="with --gpu: what one GPU-hour costs, in US dollars (default: the median on-demand price in "
        "hybrid/data/prices.json; see wanmeter prices)",
    )
    p.add_argument(
        "--prices", type=Path, metavar="FILE", help="with --gpu: prices per GPU-hour from FILE (prices.json's schema)"
    )


def price(args: argparse.Namespace, gpu: str) -> Price | None:
    """The price ``gpu``'s sizing is costed at: ``--price``, else ``--prices FILE``'s (one line where the file
    has none for the GPU), else the packaged data's (``None`` where it has none)."""
    from hybrid.hardware import get_gpu
    from hybrid.prices import price_of, read_prices, stated_price

    name = get_gpu(gpu).name
    if args.price is not None and args.prices is not None:
        raise InputError("price: --price and --prices both set the price; give one")
    if args.price is not None:
        return stated_price(name, args.price)
    if args.prices is not None:
        found = price_of(name, read_prices(args.prices))
        if found is None:
            raise InputError(f"prices: {args.prices} has no on-demand price for {name}; add one or give --price")
        return found
    return price_of(name)


SIZING_FLAGS: tuple[tuple[str, str], ...] = (
    ("offload", "--offload"),
    ("t5_cpu", "--t5-cpu"),
    ("convert_model_dtype", "--convert-model-dtype"),
    ("flash_attention", "--flash-attention"),
    ("attention", "--attention"),
    ("torch", "--torch"),
    ("traced", "--traced"),
    ("host_tflops", "--host-tflops"),
    ("efficiency", "--efficiency"),
    ("efficiency_override", "--efficiency-override"),
    ("optimise", "--optimise"),
    ("price", "--price"),
    ("prices", "--prices"),
)
"""Options that change only the sizing on a GPU (placement, dtypes of stored weights, kernels,
efficiencies): without ``--gpu`` they would do nothing, so they are refused."""


def _require_gpu_for_sizing_flags(args: argparse.Namespace, flags: tuple[tuple[str, str], ...] = SIZING_FLAGS) -> None:
    if getattr(args, "gpu", None) is not None:
        return
    given = [flag for dest, flag in flags if getattr(args, dest, None) not in (None, False, [], ())]
    if given:
        raise InputError(
            f"{given[0].lstrip('-')}: {given[0]} changes only the sizing on a GPU (memory and seconds); "
            "give --gpu NAME, or leave it out"
        )


def workload(args: argparse.Namespace) -> Workload:
    from hybrid.checkpoint import resolve_model
    from hybrid.workload import Workload, guided

    _require_gpu_for_sizing_flags(args)
    spec = resolve_model(args.model, getattr(args, "model_dir", None))
    cfg = guided(spec, args.guidance_scale, args.guidance_scale_2)
    if args.no_cfg and args.guidance_scale is not None and cfg:
        raise InputError(f"guidance_scale: {args.guidance_scale:g} turns CFG on, --no-cfg off; give one of them")
    width, height = args.size if args.size else (0, 0)
    return Workload.of(
        spec,
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
        runtime=runtime(args, spec),
        strength=args.strength,
        mode=getattr(args, "mode", None),
        audio_seconds=args.audio_seconds,
        pose_video=getattr(args, "pose_video", False),
        relighting_lora=getattr(args, "relighting_lora", False),
        prev_segment_conditioning_frames=getattr(args, "prev_segment_conditioning_frames", None),
    )


def optimisations(args: argparse.Namespace) -> tuple[Optimisation, ...]:
    """``--optimise``'s list, parsed (:func:`hybrid.optimisations.parse`); refused without ``--gpu``."""
    from hybrid.optimisations import parse

    if args.optimise is None:
        return ()
    _require_gpu_for_sizing_flags(args, (("optimise", "--optimise"),))
    return parse(args.optimise)


def try_optimisations(args: argparse.Namespace) -> tuple[tuple[Optimisation, ...], ...]:
    """``plan --try-optimisations``: the sets, ``;``-separated (the flag may repeat), each parsed as
    ``--optimise``'s list."""
    from hybrid.optimisations import parse

    sets = [text.strip() for given in args.try_optimisations or () for text in given.split(";")]
    if any(not text for text in sets):
        raise InputError("try-optimisations: an empty set; give sets like 'fp8;sage2,fp8;distill:4,fp8'")
    return tuple(parse(text) for text in sets)


def host_flops(args: argparse.Namespace) -> float | None:
    """--host-tflops in FLOP/s."""
    return None if args.host_tflops is None else float(args.host_tflops * 1e12)
