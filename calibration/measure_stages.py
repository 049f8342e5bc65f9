"""Time whole stage calls of the real modules at full size on this machine's GPU (random weights).

    python calibration/measure_stages.py --gpu h200 --out calibration/device/h200/stages.json [--budget-s 140]

Each case builds the stage's real module (diffusers/transformers, as the tracer builds it:
``hybrid.trace.build.stage_call``) in the component's diffusers dtype on the GPU, runs one warm-up
call, then times three calls with CUDA events (one where the warm-up took 4 s or more); it records
every call's seconds, the median, and the peak memory the call allocated above the module's
weights (``torch.cuda.max_memory_allocated``).
These are one diffusers denoising step, one text encode, one decode: what ``wanmeter report
--gpu GPU --runtime diffusers`` predicts per call. They are measurements to test the time model with,
not parameters of it. The document is written after every case (atomically).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybrid.files import write_atomic
from hybrid.hardware import get_gpu
from hybrid.optimisations import parse, plan_of
from hybrid.runtime import Runtime
from hybrid.trace.build import stage_call
from hybrid.versions import library_versions
from hybrid.workload import Workload

SCHEMA = "wanmeter.stage-measurements/1"
CASES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("wan2.1-t2v-1.3b", "diffusion_core", {"width": 832, "height": 480, "frames": 81}),
    ("wan2.1-t2v-1.3b", "text_encoder", {"width": 832, "height": 480, "frames": 81}),
    ("wan2.1-t2v-14b", "diffusion_core", {"width": 832, "height": 480, "frames": 81}),
    ("wan2.1-t2v-14b", "diffusion_core", {"width": 1280, "height": 720, "frames": 81}),
    ("wan2.1-t2v-1.3b", "vae_decode", {"width": 832, "height": 480, "frames": 81}),
    ("wan2.2-ti2v-5b", "diffusion_core", {"width": 1280, "height": 704, "frames": 121}),
    ("wan2.1-t2v-1.3b", "diffusion_core", {"width": 832, "height": 480, "frames": 33}),
    ("wan2.1-i2v-14b-480p", "image_encoder", {"width": 832, "height": 480, "frames": 81}),
    ("wan2.1-t2v-1.3b", "vae_decode", {"width": 1280, "height": 720, "frames": 81}),
    ("wan2.2-ti2v-5b", "vae_decode", {"width": 1280, "height": 704, "frames": 121}),
)
S2V_CASES: tuple[tuple[str, str, dict[str, Any]], ...] = tuple(
    # Wan2.2-S2V's VAE calls in the original repository's loop (two clips: 10 s of audio), ``--cases s2v``
    ("wan2.2-s2v-14b", stage, {"width": 1280, "height": 704, "frames": 80, "audio_seconds": 10.0})
    for stage in ("vae_encode", "vae_decode", "motion_encode", "vae_decode_motion")
)
LIGHTVAE_CASES: tuple[tuple[str, str, dict[str, Any]], ...] = tuple(
    # the Wan2.1 VAE's decode as LightX2V runs it (bfloat16), without and with ``--optimise lightvae`` (LightVAE's
    # widths: base_dim 96 -> 24), ``--cases lightvae``
    ("wan2.1-t2v-14b", "vae_decode", {**size, "runtime": "lightx2v", "optimise": optimise, "dtype": "bfloat16"})
    for size in ({"width": 832, "height": 480, "frames": 81}, {"width": 1280, "height": 720, "frames": 81})
    for optimise in ("", "lightvae")
)
TILING_CASES: tuple[tuple[str, str, dict[str, Any]], ...] = tuple(
    # the Wan2.1 VAE tiled (256-pixel tiles every 192: --vae-tiling) as LightX2V ran it in July 2025 (float32; the
    # I2V encode of 81 frames and the decode) and in bfloat16, ``--cases tiling``
    (model, stage, {**size, "runtime": "lightx2v", "vae_tiling": True, "vae_dtype": dtype, "dtype": dtype})
    for dtype in ("float32", "bfloat16")
    for size in ({"width": 832, "height": 480, "frames": 81}, {"width": 1280, "height": 720, "frames": 81})
    for model, stage in (("wan2.1-i2v-14b-480p", "vae_decode"), ("wan2.1-i2v-14b-480p", "vae_encode"))
)
RUNTIME_KEYS = ("runtime", "vae_tiling", "vae_dtype")
"""A case's keys that make its runtime (its name and settings), not its workload's sizes."""


def write(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(doc, indent=1) + "\n", "out")


def header(schema: str, gpu: str) -> dict[str, Any]:
    """What every measurement document starts with: its schema, the GPU (database name and as CUDA names
    it), the date and the versions (the libraries', CUDA's and cuDNN's)."""
    return {
        "schema": schema, "gpu": gpu, "device_name": torch.cuda.get_device_name(0), "date": dt.date.today().isoformat(),
        "versions": {**library_versions(), "torch_cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()},
    }  # fmt: skip


def event_seconds(fn: Callable[[], Any]) -> float:
    """Seconds of one call of ``fn`` between CUDA events."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize()
    return float(start.elapsed_time(end)) / 1e3


def timed_call(run: Callable[[], Any]) -> dict[str, Any]:
    """One warm-up call of ``run`` (cuDNN and cuBLAS pick their kernels), then three timed (one where the
    warm-up took 4 s or more: its own timer's noise is far below 1%), without autograd: the warm-up's
    seconds, the bytes allocated before and after it and its peak, each timed call's seconds and their
    median, and the peak allocated over the timed calls. A module that keeps tensors from one call to the
    next (Wan2.2-S2V's rotary table) leaves more allocated after the warm-up than before it."""
    with torch.no_grad():
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        run()
        torch.cuda.synchronize()
        warm_s = time.perf_counter() - t0
        first_peak = torch.cuda.max_memory_allocated()
        allocated = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        runs = [event_seconds(run) for _ in range(3 if warm_s < 4 else 1)]
    return {"warm_up_s": warm_s, "allocated_before_warm_up": before, "warm_up_peak_allocated_bytes": first_peak,
            "allocated_after_warm_up": allocated, "runs": runs, "seconds": statistics.median(runs),
            "peak_allocated_bytes": torch.cuda.max_memory_allocated()}  # fmt: skip


def measure(model: str, stage: str, size: dict[str, Any], gpu: str) -> dict[str, Any]:
    """One case: ``size`` holds the workload's fields (``runtime`` by name), and may name the stage's ``dtype``
    and optimisations (``optimise``, as ``--optimise`` takes them, applied as ``report --gpu`` applies them)."""
    knobs = {k: v for k, v in size.items() if k not in ("dtype", "optimise", *RUNTIME_KEYS)}
    if "runtime" in size:
        knobs["runtime"] = Runtime(name=size["runtime"], **{k: size[k] for k in RUNTIME_KEYS[1:] if k in size})
    w = Workload.of(model, **knobs)
    if size.get("optimise"):
        w = plan_of(parse(size["optimise"]), w, get_gpu(gpu)).workload
    torch.manual_seed(0)
    t0 = time.perf_counter()
    call = stage_call(stage, w, device="cuda", dtype=size.get("dtype"))
    torch.cuda.synchronize()
    built_s = time.perf_counter() - t0
    weights = torch.cuda.memory_allocated()
    t = timed_call(call.run)
    peak = t["peak_allocated_bytes"]
    out = {
        "model": model, "stage": stage, "workload": w.to_dict(), "class": call.class_name,
        **({"optimise": size["optimise"]} if "optimise" in size else {}),
        "dtype": str(call.dtype).removeprefix("torch."), "seconds": t["seconds"], "runs": t["runs"],
        "weights_bytes": weights, "peak_allocated_bytes": peak, "activation_peak_bytes": peak - weights,
        "build_s": built_s, "warm_up_s": t["warm_up_s"],
    }  # fmt: skip
    del call
    gc.collect()
    torch.cuda.empty_cache()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", required=True, help="hardware-database name of this GPU")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budget-s", type=float, default=150.0, help="start no case after this")
    parser.add_argument("--cases", choices=["default", "s2v", "lightvae", "tiling"], default="default",
                        help="s2v: Wan2.2-S2V's VAE calls; lightvae: the Wan2.1 VAE's decode in bfloat16 at its "
                        "width and at LightVAE's; tiling: the Wan2.1 VAE's tiled encode and decode in float32 and "
                        "bfloat16 (each its own document)")  # fmt: skip
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("measure_stages: needs a CUDA GPU", file=sys.stderr)
        return 2
    start = time.monotonic()
    doc: dict[str, Any] = {
        **header(SCHEMA, args.gpu),
        "timing": "CUDA events around each call; one warm-up call, then three timed (one where the warm-up took 4 s or "
        "more); random weights and inputs",
        "cases": [], "errors": [],
    }  # fmt: skip
    write(args.out, doc)
    cases = {"default": CASES, "s2v": S2V_CASES, "lightvae": LIGHTVAE_CASES, "tiling": TILING_CASES}[args.cases]
    for model, stage, size in cases:
        if time.monotonic() - start > args.budget_s:
            break
        try:
            doc["cases"].append(measure(model, stage, size, args.gpu))
        except Exception as e:
            doc["errors"].append({"case": [model, stage, size], "error": f"{type(e).__name__}: {str(e)[:300]}"})
            gc.collect()
            torch.cuda.empty_cache()
        print(f"{model} {stage} {size}: done at {time.monotonic() - start:.0f} s", flush=True)
        doc["elapsed_s"] = time.monotonic() - start
        write(args.out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
