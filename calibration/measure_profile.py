"""Where a stage call's time goes on this machine's GPU: its CUDA kernels by name, and the host's gaps.

    python calibration/measure_profile.py --gpu h200 --out calibration/device/h200/profile.json [--budget-s 300]

Parts, each written to the document as it ends (atomically):

* ``profiles``: one call of each case (after a warm-up), under ``torch.profiler``: the wall time
  (CUDA events, outside the profiler), the CUDA kernels' summed time, their count, and the 40 kernels
  that took longest in all (name, calls, microseconds). Wall time minus kernel time is what the GPU
  waited for the host (launch and dispatch cost) plus the gaps between kernels.
* ``original``: the original Wan2.1 and Wan2.2 ``WanModel`` (``tests/data/wan_original``, vendored,
  run unchanged but for ``flash_attn``, which this machine lacks: its varlen call runs PyTorch's own
  FlashAttention-2 kernel through SDPA on the same tensors) at full size with float32 weights under
  bfloat16 autocast, as ``generate.py`` runs it: seconds per forward.
* ``original`` with ``--part original22`` (its own document): Wan2.2's ``WanModel`` as above, an A14B expert
  and TI2V-5B (its timestep per token).
* ``original`` with ``--part s2v`` (its own document): Wan2.2-S2V's ``WanModel_S2V``
  (``tests/data/wan_original/wan22/s2v``, vendored, run unchanged but for ``flash_attn`` as above) at the
  published size with bfloat16 weights under bfloat16 autocast, as ``WanS2V.generate`` runs it: seconds per
  forward of the first clip (its motion tokens dropped) and of a later one (kept), each with its stage.
* ``host_link``: host-to-device and device-to-host copies of 1 GiB, pinned and pageable.
* ``flex``: FlexAttention (compiled) at Wan-Animate-2's reference-pass shape, dense and with a
  block mask, against SDPA's own choice on the same tensors.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from measure_stages import CASES, event_seconds, header, timed_call, write  # noqa: E402  (beside this script)

from hybrid.trace.build import stage_call  # noqa: E402
from hybrid.workload import Workload  # noqa: E402
from tests.wan_original import S2V_FIXED, S2V_PUBLISHED, load, load_s2v  # noqa: E402

SCHEMA = "wanmeter.kernel-profile/1"


def profiled(fn: Callable[[], Any]) -> dict[str, Any]:
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad():
        fn()
        torch.cuda.synchronize()
        wall = event_seconds(fn)
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
    kernels: dict[str, list[float]] = {}
    for e in prof.events():
        if e.device_type.name == "CUDA":
            k = kernels.setdefault(e.name, [0, 0.0])
            k[0] += 1
            k[1] += e.device_time
    total_us = sum(v[1] for v in kernels.values())
    top = sorted(kernels.items(), key=lambda kv: -kv[1][1])[:40]
    return {
        "wall_s": wall,
        "kernel_s": total_us / 1e6,
        "kernel_calls": int(sum(v[0] for v in kernels.values())),
        "distinct_kernels": len(kernels),
        "top": [{"name": n[:200], "calls": int(c), "us": us} for n, (c, us) in top],
    }


def each_case(doc: dict[str, Any], out: Path, deadline: float, part: str,
              cases: Iterable[tuple[str, Callable[[], dict[str, Any]]]]) -> None:  # fmt: skip
    """``doc[part]`` gets each case's result (``(name, measure)``) in turn until ``deadline``; an error is recorded
    and the next case runs; the document is written after each."""
    for name, measure in cases:
        if time.monotonic() > deadline:
            return
        try:
            doc[part].append(measure())
        except Exception as e:
            doc["errors"].append({"part": f"{part} {name}", "error": f"{type(e).__name__}: {e}"[:400]})
        gc.collect()
        torch.cuda.empty_cache()
        write(out, doc)
        print(f"{part} {name}: done", flush=True)


def profile(model: str, stage: str, size: dict[str, Any]) -> dict[str, Any]:
    w = Workload.of(model, **size)
    call = stage_call(stage, w, device="cuda")
    return {"model": model, "stage": stage, "workload": w.to_dict(), **profiled(call.run)}


def profiles(doc: dict[str, Any], out: Path, deadline: float) -> None:
    cases = [(f"{m} {st} {sz}", partial(profile, m, st, sz)) for m, st, sz in CASES]  # measure_stages.py's calls
    each_case(doc, out, deadline, "profiles", cases)


ORIGINAL_CASES: tuple[tuple[str, str, dict[str, Any], tuple[int, int, int]], ...] = (
    # version, name, config, latent (frames, height, width)
    ("wan21", "wan2.1-t2v-1.3b 832x480x81", dict(dim=1536, ffn_dim=8960, num_heads=12, num_layers=30), (21, 60, 104)),
    ("wan21", "wan2.1-t2v-14b 832x480x81", dict(dim=5120, ffn_dim=13824, num_heads=40, num_layers=40), (21, 60, 104)),
    ("wan21", "wan2.1-t2v-14b 1280x720x81", dict(dim=5120, ffn_dim=13824, num_heads=40, num_layers=40), (21, 90, 160)),
)
TI2V_5B = dict(dim=3072, ffn_dim=14336, num_heads=24, num_layers=30, in_dim=48, out_dim=48, model_type="ti2v")
ORIGINAL22_CASES: tuple[tuple[str, str, dict[str, Any], tuple[int, int, int]], ...] = (
    # Wan2.2's WanModel (``--part original22``): an A14B expert (wan_t2v_A14B.py) and TI2V-5B (wan_ti2v_5B.py,
    # 48 latent channels, a timestep per token as textimage2video.py passes it)
    ("wan22", "wan2.2-t2v-a14b 1280x720x81", dict(dim=5120, ffn_dim=13824, num_heads=40, num_layers=40), (21, 90, 160)),
    ("wan22", "wan2.2-ti2v-5b 1280x704x121", TI2V_5B, (31, 44, 80)),
    ("wan22", "wan2.2-t2v-a14b 832x480x81", dict(dim=5120, ffn_dim=13824, num_heads=40, num_layers=40), (21, 60, 104)),
)


def time_original(version: str, cfg: dict[str, Any], f: int, h: int, w: int) -> dict[str, Any]:
    cfg = {"model_type": "t2v", "in_dim": 16, "out_dim": 16, **cfg}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = load(version, on_cuda=True)
        torch.manual_seed(0)
        with torch.device("cuda"):
            model = module.WanModel(text_len=512, freq_dim=256, text_dim=4096, **cfg).eval().requires_grad_(False)
        seq_len = f * (h // 2) * (w // 2)
        x = [torch.randn(cfg["in_dim"], f, h, w, device="cuda")]
        per_token = cfg["model_type"] == "ti2v"  # textimage2video.py: the timestep expanded over the tokens
        t = torch.full((1, seq_len) if per_token else (1,), 999, device="cuda")
        context = [torch.randn(512, 4096, device="cuda")]

        def run() -> Any:
            with torch.amp.autocast("cuda", dtype=torch.bfloat16):
                return model(x, t=t, context=context, seq_len=seq_len)

        timed = timed_call(run)
    return {
        "code": f"tests/data/wan_original/{version}/model.py", "config": cfg, "latent": [f, h, w], "seq_len": seq_len,
        "weights": "float32 under torch.amp.autocast('cuda', bfloat16), as generate.py",
        "attention": "flash_attn_varlen_func as PyTorch's FlashAttention-2 (SDPBackend.FLASH_ATTENTION)",
        "seconds": timed["seconds"], "runs": timed["runs"], "weights_bytes": timed["allocated_after_warm_up"],
        "activation_peak_bytes": timed["peak_allocated_bytes"] - timed["allocated_after_warm_up"],
    }  # fmt: skip


def original(doc: dict[str, Any], out: Path, deadline: float, cases: tuple[Any, ...] = ORIGINAL_CASES) -> None:
    def case(version: str, name: str, cfg: dict[str, Any], latent: tuple[int, int, int]) -> dict[str, Any]:
        return {"case": name, **time_original(version, cfg, *latent)}

    each_case(doc, out, deadline, "original", [(c[1], partial(case, *c)) for c in cases])


S2V_CASES: tuple[tuple[str, bool], ...] = (
    # size (the default 80-frame clip), motion tokens kept (a later clip: stage diffusion_core_motion)
    ("1280x704x80", False),
    ("1280x704x80", True),
    ("832x448x80", False),
    ("832x448x80", True),
)
S2V_AUDIO_SECONDS = 10.0
"""Audio the S2V cases are predicted for: two clips, so that a later clip's stage has calls."""


_S2V_MODELS: dict[tuple[str, str], torch.nn.Module] = {}
S2V_HELD = ("pre_compute_freqs", "audio_emb_global", "merged_audio_emb")
"""What ``WanModel_S2V.forward`` stores on the module (``self.<name> = ...``) and keeps to the next call."""


def s2v_model(sizes: dict[str, Any], device: str) -> torch.nn.Module:
    """``WanModel_S2V`` at ``sizes`` on ``device`` with bfloat16 weights (``from_pretrained(torch_dtype=bfloat16)``),
    the parameters its constructor leaves at zero (``zero_init``) filled with noise, so that no product runs on
    zeros; built once per size and device."""
    key = (json.dumps(sizes, sort_keys=True), device)
    if key not in _S2V_MODELS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = load_s2v(on_cuda=device == "cuda")
            torch.manual_seed(0)
            with torch.device(device):
                model = module.WanModel_S2V(**S2V_FIXED, **sizes).eval().requires_grad_(False)
            model.to(torch.bfloat16)
        for p in model.parameters():
            if not p.any():
                p.normal_(0.0, 0.02)
        _S2V_MODELS[key] = model
    return _S2V_MODELS[key]


def s2v_forward(
    size: str, motion: bool, sizes: dict[str, Any] = S2V_PUBLISHED, device: str = "cuda"
) -> tuple[Callable[[], Any], tuple[int, int, int]]:
    """One ``WanModel_S2V`` forward as ``WanS2V.generate`` calls it (``speech2video.py``), ready to run, and its
    latent shape: noise and the pose condition in bfloat16, the reference and 19 motion latents in float32, the
    25 wav2vec2 layers' features of the clip's frames, a 512-token context (:func:`s2v_model`'s weights)."""
    width, height, frames = (int(x) for x in size.split("x"))
    shape = Workload.of("wan2.2-s2v-14b", width=width, height=height, frames=frames).shape()
    f, h, w = shape.dit_latent_frames, shape.latent_height, shape.latent_width
    bf16 = torch.bfloat16
    model = s2v_model(sizes, device)
    for name in S2V_HELD:  # the last case's, so that what is allocated before this one's first call is its own
        model.__dict__.pop(name, None)
    gc.collect()
    x = [torch.randn(16, f, h, w, device=device).to(bf16)]
    ref = [torch.randn(16, 1, h, w, device=device)]
    motion_latents = [torch.randn(16, 19, h, w, device=device)]
    cond = [torch.randn(16, f, h, w, device=device).to(bf16)]
    audio = torch.randn(1, 25, sizes["audio_dim"], 4 * f, device=device).to(bf16)
    t = torch.tensor([999], device=device)
    context = [torch.randn(512, sizes["text_dim"], device=device).to(bf16)]

    def run() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.amp.autocast(device, dtype=bf16):
                return model(x, t=t, context=context, seq_len=0, ref_latents=ref, motion_latents=motion_latents,
                             cond_states=cond, audio_input=audio, motion_frames=[73, 19],
                             drop_motion_frames=not motion)  # fmt: skip

    return run, (f, h, w)


def time_s2v(size: str, motion: bool) -> dict[str, Any]:
    """:func:`s2v_forward` at the published size on the GPU, timed. ``weights_bytes`` is what is allocated before
    the first call (the weights and inputs), ``activation_peak_bytes`` the first call's peak above it, ``held_bytes``
    what the module keeps after a call (the rotary table and audio features it stores on itself), which the
    next call replaces as it runs."""
    run, latent = s2v_forward(size, motion)
    timed = timed_call(run)
    return {
        "case": f"wan2.2-s2v-14b {size}", "stage": "diffusion_core_motion" if motion else "diffusion_core",
        "audio_seconds": S2V_AUDIO_SECONDS, "code": "tests/data/wan_original/wan22/s2v/model_s2v.py",
        "config": S2V_PUBLISHED, "latent": list(latent),
        "weights": "bfloat16 (from_pretrained(torch_dtype=bfloat16)) under torch.amp.autocast('cuda', bfloat16)",
        "attention": "flash_attn_varlen_func as PyTorch's FlashAttention-2 (SDPBackend.FLASH_ATTENTION)",
        "seconds": timed["seconds"], "runs": timed["runs"], "warm_up_s": timed["warm_up_s"],
        "weights_bytes": timed["allocated_before_warm_up"],
        "activation_peak_bytes": timed["warm_up_peak_allocated_bytes"] - timed["allocated_before_warm_up"],
        "held_bytes": timed["allocated_after_warm_up"] - timed["allocated_before_warm_up"],
        "timed_peak_allocated_bytes": timed["peak_allocated_bytes"],
    }  # fmt: skip


def original_s2v(doc: dict[str, Any], out: Path, deadline: float) -> None:
    each_case(doc, out, deadline, "original", [(f"s2v {size} motion={m}", partial(time_s2v, size, m))
                                                for size, m in S2V_CASES])  # fmt: skip


def host_link(doc: dict[str, Any], out: Path) -> None:
    n = 1 << 30
    dev = torch.empty(n, dtype=torch.uint8, device="cuda")
    for pinned in (True, False):
        host = torch.empty(n, dtype=torch.uint8, pin_memory=pinned)
        host.fill_(1)
        for direction in ("h2d", "d2h"):

            def copy(host: torch.Tensor = host, direction: str = direction, pinned: bool = pinned) -> None:
                if direction == "h2d":
                    dev.copy_(host, non_blocking=pinned)
                else:
                    host.copy_(dev, non_blocking=pinned)

            copy()
            torch.cuda.synchronize()
            runs = []
            for _ in range(3):
                t0 = time.perf_counter()
                copy()
                torch.cuda.synchronize()
                runs.append(time.perf_counter() - t0)
            s = statistics.median(runs)
            doc["host_link"].append(
                {"direction": direction, "pinned": pinned, "bytes": n, "seconds": s, "gbs": n / s / 1e9}
            )
        del host
    write(out, doc)


def flex(doc: dict[str, Any], out: Path) -> None:
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    compiled = torch.compile(flex_attention)
    heads, lq, lk = 40, 43008, 86144  # Animate-2 at 640x800: a query block of 42,000 padded to 128s; twice the keys
    q = torch.randn(1, heads, lq, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(1, heads, lk, 128, device="cuda", dtype=torch.bfloat16)

    def half(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:  # every query sees the first half of the keys
        return kv_idx < lk // 2

    mask = create_block_mask(half, None, None, lq, lk, device="cuda")
    flops = 4 * heads * lq * lk * 128
    for name, fn in (
        ("flex dense", lambda: compiled(q, k, k)),
        ("flex half-mask", lambda: compiled(q, k, k, block_mask=mask)),
        ("sdpa default", lambda: F.scaled_dot_product_attention(q, k, k)),
    ):
        fn()
        fn()
        torch.cuda.synchronize()
        s = statistics.median(event_seconds(fn) for _ in range(3))
        doc["flex"].append({"case": name, "heads": heads, "q_len": lq, "kv_len": lk, "head_dim": 128, "seconds": s,
                            "dense_flops": flops, "dense_tflops": flops / s / 1e12})  # fmt: skip
        write(out, doc)


def guarded(part: Callable[[dict[str, Any], Path], None], doc: dict[str, Any], out: Path, start: float) -> None:
    try:
        part(doc, out)
    except Exception as e:
        doc["errors"].append({"part": part.__name__, "error": f"{type(e).__name__}: {e}"[:400]})
        write(out, doc)
    print(f"{part.__name__}: done at {time.monotonic() - start:.0f} s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budget-s", type=float, default=200.0)
    parser.add_argument("--part", choices=["all", "s2v", "original22"], default="all",
                        help="s2v: only Wan2.2-S2V's original transformer; original22: only Wan2.2's original "
                        "WanModel (each its own document)")  # fmt: skip
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("measure_profile: needs a CUDA GPU", file=sys.stderr)
        return 2
    start = time.monotonic()
    doc: dict[str, Any] = {
        **header(SCHEMA, args.gpu),
        "profiles": [], "original": [], "host_link": [], "flex": [], "errors": [],
    }  # fmt: skip
    write(args.out, doc)
    if args.part in ("s2v", "original22"):
        if args.part == "s2v":
            original_s2v(doc, args.out, start + args.budget_s)
        else:
            original(doc, args.out, start + args.budget_s, ORIGINAL22_CASES)
        doc["elapsed_s"] = time.monotonic() - start
        write(args.out, doc)
        return 0
    guarded(host_link, doc, args.out, start)
    original(doc, args.out, start + 0.4 * args.budget_s)
    profiles(doc, args.out, start + 0.8 * args.budget_s)
    if time.monotonic() < start + 0.8 * args.budget_s:  # compiling FlexAttention takes tens of seconds
        guarded(flex, doc, args.out, start)
    doc["elapsed_s"] = time.monotonic() - start
    write(args.out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
