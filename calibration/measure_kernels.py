"""Measure achieved kernel rates on this machine's GPU, in the shapes of ``hybrid/data/kernel_rates.json``.

    python calibration/measure_kernels.py --gpu h200 --out calibration/device/h200/kernels.json [--budget-s 85]

What it times, each with CUDA events after a warm-up (the median of three batches, each batch long
enough to leave launch cost out), on random data:

* ``gemm``: ``F.linear`` in bfloat16 at square sizes (the ceiling, as MAMF tables state it) and at
  the products Wan's transformers run (tokens x width x width, the FFN's, the text projection's; a
  Ulysses-8 rank's 9,450 tokens); ``torch._scaled_mm`` in float8_e4m3fn at some of them;
* ``attention``: ``F.scaled_dot_product_attention`` under each backend SDPA has (flash, cuDNN,
  memory-efficient, math up to 8,192 tokens) and under SDPA's own choice, head dim 128, at Wan's
  head counts and sequence lengths, self- and cross-attention; the kernel SDPA's own choice runs
  (its CUDA kernel's name, read with the profiler);
* ``convolution``: the VAE decoder's 3x3x3 convolutions at its widths and resolutions, float32
  (TF32 where cuDNN allows it, torch's default) and bfloat16;
* ``memory``: ``torch.add`` and a copy by size (bytes read plus written);
* ``launch``: host seconds per eager PyTorch op (a tiny add, many in a row).

``--part memory-ops`` times instead the memory-bound op families the rows name (``memory_ops``:
elementwise, norm, reduction, movement, at Wan's sizes) and float32 GEMMs at the encoders' shapes;
``--part wide-convolutions`` Wan2.2's decoder convolutions, ``--part narrow-convolutions`` those below the
decoders' reduction lengths (the ``conv_in`` layers, LightX2V's LightVAE), ``--part tae-convolutions`` TAEHV's
2D ones, one frame a call (later, shorter calls of a lease).

FLOPs are counted as ``hybrid.ops`` counts them (FlopCounterMode's convention). The document is
written after every measurement (atomically), so a run stopped at its budget keeps what it measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from measure_stages import header  # beside this script

from hybrid import ops
from hybrid.files import write_atomic

SCHEMA = "wanmeter.kernel-measurements/1"


def bench(fn: Callable[[], Any], target_s: float = 0.03) -> float:
    """Median seconds per call of ``fn`` over three batches of CUDA-event-timed calls."""
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    one = max(time.perf_counter() - t0, 1e-6)
    n = max(2, min(200, int(target_s / one)))
    per_call = []
    for _ in range(3):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(n):
            fn()
        end.record()
        torch.cuda.synchronize()
        per_call.append(start.elapsed_time(end) / 1e3 / n)
    return statistics.median(per_call)


class Doc:
    """The measurement document, written atomically after each addition."""

    def __init__(self, path: Path, gpu: str) -> None:
        self.path = path
        props = torch.cuda.get_device_properties(0)
        self.doc: dict[str, Any] = {
            **header(SCHEMA, gpu),
            "sm_count": props.multi_processor_count,
            "total_memory_bytes": props.total_memory,
            "settings": {
                "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                "cudnn_benchmark": torch.backends.cudnn.benchmark,
            },
            "timing": "CUDA events; per shape the median of 3 batches of n back-to-back calls (n so a batch lasts "
            "about 30 ms, 2 to 200), after a warm-up call; random normal data",
            "gemm": [],
            "attention": [],
            "sdpa_choice": [],
            "convolution": [],
            "memory": [],
            "memory_ops": [],
            "launch": [],
            "errors": [],
        }
        self.save()

    def add(self, key: str, entry: dict[str, Any]) -> None:
        self.doc[key].append(entry)
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(self.doc, indent=1) + "\n", "out")


@contextlib.contextmanager
def recorded(doc: Doc, what: str) -> Iterator[None]:
    """Record an exception as an error of the document and go on (an unsupported backend or dtype)."""
    try:
        yield
    except Exception as e:
        doc.add("errors", {"what": what, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"})
        torch.cuda.empty_cache()


def gemms(doc: Doc, deadline: float) -> None:
    square = [(s, s, s) for s in (1024, 2048, 4096, 8192, 16384)]
    wan = []
    for m in (512, 9450, 32760, 75600):
        for k, n in ((1536, 1536), (1536, 8960), (8960, 1536), (5120, 5120), (5120, 13824), (13824, 5120)):
            wan.append((m, n, k))
    wan += [(512, 5120, 4096), (512, 1536, 4096)]  # the text projection: 512 tokens of UMT5's 4096
    linears(doc, deadline, torch.bfloat16, "F.linear", square + wan)
    for m, n, k in [*square[1:], (32760, 5120, 5120), (75600, 13824, 5120), (75600, 5120, 13824), (32760, 8960, 1536)]:
        if time.monotonic() > deadline:
            return
        with recorded(doc, f"gemm fp8 {m}x{n}x{k}"):
            a = torch.randn(m, k, device="cuda").to(torch.float8_e4m3fn)
            b = torch.randn(n, k, device="cuda").to(torch.float8_e4m3fn).t()  # column-major, as _scaled_mm needs
            one = torch.ones((), device="cuda")
            s = bench(
                lambda a=a, b=b, one=one: torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
            )
            flops = ops.linear(m, k, n)
            doc.add("gemm", {"dtype": "float8_e4m3fn", "op": "torch._scaled_mm (per-tensor scales, bf16 out)", "m": m,
                             "n": n, "k": k, "seconds": s, "flops": flops, "tflops": flops / s / 1e12})  # fmt: skip
            del a, b


def sdpa_kernel_name(q: torch.Tensor, k: torch.Tensor) -> list[str]:
    """The CUDA kernels one SDPA call under its own choice launches (names as the profiler gives them)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        F.scaled_dot_product_attention(q, k, k)
        torch.cuda.synchronize()
    return sorted({e.name for e in prof.events() if e.device_type.name == "CUDA"})[:6]


def attention(doc: Doc, deadline: float) -> None:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = {
        "sdpa-flash": SDPBackend.FLASH_ATTENTION,
        "sdpa-cudnn": SDPBackend.CUDNN_ATTENTION,
        "sdpa-efficient": SDPBackend.EFFICIENT_ATTENTION,
        "sdpa-math": SDPBackend.MATH,
    }
    # (heads, query length, key length): the 1.3B (12 heads) and 14B (40) at 480p (32,760 tokens) and 720p
    # (75,600), a Ulysses-8 rank's heads (5 of 40), the 5B's 24 heads, cross-attention over 512 text tokens
    shapes = [(12, n, n) for n in (1024, 2048, 4096, 8192, 16384, 32760)]
    shapes += [(40, 32760, 32760), (40, 75600, 75600), (5, 75600, 75600), (24, 27280, 27280)]
    shapes += [(12, 32760, 512), (40, 75600, 512)]
    for heads, lq, lk in shapes:
        q = torch.randn(1, heads, lq, 128, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(1, heads, lk, 128, device="cuda", dtype=torch.bfloat16)
        flops = ops.sdpa(1, heads, lq, lk, 128)
        for name, backend in [("sdpa-default", None), *backends.items()]:
            if time.monotonic() > deadline:
                return
            if name == "sdpa-math" and max(lq, lk) > 8192:
                continue
            with recorded(doc, f"{name} {heads}x{lq}x{lk}"):
                ctx = sdpa_kernel([backend]) if backend is not None else contextlib.nullcontext()
                with ctx:
                    s = bench(lambda q=q, k=k: F.scaled_dot_product_attention(q, k, k))
                doc.add("attention", {"kernel": name, "dtype": "bfloat16", "batch": 1, "heads": heads, "q_len": lq,
                                      "kv_len": lk, "head_dim": 128, "causal": False, "seconds": s, "flops": flops,
                                      "tflops": flops / s / 1e12})  # fmt: skip
        if lq == lk or lk == 512:
            with recorded(doc, f"sdpa choice {heads}x{lq}x{lk}"):
                doc.add("sdpa_choice", {"heads": heads, "q_len": lq, "kv_len": lk, "head_dim": 128,
                                        "cuda_kernels": sdpa_kernel_name(q, k)})  # fmt: skip
        del q, k
        torch.cuda.empty_cache()


WAN21_DECODER = ((384, 60, 104, 3), (384, 120, 208, 4), (192, 240, 416, 4), (96, 480, 832, 4))
"""Wan2.1's VAE decoder at 480p: (channels, height, width, frames in) of its 3x3x3 causal convolutions as
the per-frame feature-cache loop runs them (two cached frames plus the new ones, no temporal padding)."""
WAN22_DECODER = ((1024, 44, 80, 3), (1024, 88, 160, 4), (512, 176, 320, 4), (256, 352, 640, 4))
"""Wan2.2's (TI2V-5B) decoder at 1280x704, its widths 256 x (4, 4, 2, 1), before the 2x2 unpatchify."""


NARROW = (
    (16, 384, 60, 104, 3),
    (48, 1024, 44, 80, 3),
    (3, 96, 480, 832, 4),
    (96, 96, 60, 104, 3),
    (96, 96, 120, 208, 4),
    (48, 48, 240, 416, 4),
    (24, 24, 480, 832, 4),
    (24, 3, 480, 832, 4),
)
"""Convolutions below the reduction lengths the decoders' measured (``k`` = 27 x input channels < 2,592):
(channels in, out, height, width, frames in) of the decoders' ``conv_in`` (Wan2.1's 16 latent channels,
Wan2.2's 48), the encoder's ``conv_in`` on RGB, LightX2V's LightVAE decoder (Wan2.1's widths cut to a
quarter: 96, 96, 48, 24) and its head."""


TILE = ((384, 32, 32, 3), (384, 64, 64, 4), (192, 128, 128, 4), (96, 256, 256, 4), (16, 384, 32, 32, 3))
"""Wan2.1's decoder on one 256-pixel tile (``--vae-tiling``: 32 x 32 latents), as :data:`WAN21_DECODER` at 480p:
its 3x3x3 causal convolutions of each level and ``conv_in``, the shapes below a wave the tiled decode runs (1,024
output positions a chunk at the lowest level)."""


def tile_convolutions(doc: Doc, deadline: float) -> None:
    convolutions(doc, deadline, TILE)


TAE_DECODER = (
    (16, 256, 60, 104), (512, 256, 60, 104), (256, 256, 60, 104), (256, 128, 120, 208), (128, 128, 120, 208),
    (128, 64, 240, 416), (64, 64, 240, 416), (64, 64, 480, 832), (64, 3, 480, 832),
)  # fmt: skip
"""TAEHV's (``taew2_1``) decoder at 832x480 as ``--optimise tae`` walks it, one frame a call: ``(in, out, height,
width)`` of its 3x3 2D convolutions (``hybrid/models/taehv.py``: ``conv_in``, each stage's ``MemBlock`` convs
``2n -> n`` and ``n -> n``, the stage's ``n -> n'`` after the upsample, ``conv_out`` to RGB)."""


def tae_convolutions(doc: Doc, deadline: float) -> None:
    """2D 3x3 convolutions of one frame (:data:`TAE_DECODER`) in bfloat16, as LightX2V runs TAEHV."""
    for c_in, c_out, h, w in TAE_DECODER:
        if time.monotonic() > deadline:
            return
        with recorded(doc, f"conv2d bf16 {c_in}->{c_out}x{h}x{w}"):
            x = torch.randn(1, c_in, h, w, device="cuda", dtype=torch.bfloat16)
            wt = torch.randn(c_out, c_in, 3, 3, device="cuda", dtype=torch.bfloat16)
            s = bench(lambda x=x, wt=wt: F.conv2d(x, wt, padding=1))
            flops = ops.conv2d(1, c_in, c_out, (3, 3), (h, w))
            doc.add("convolution", {
                "op": "F.conv2d 3x3 padding 1", "dtype": "bfloat16", "in_shape": list(x.shape),
                "out_shape": [1, c_out, h, w], "seconds": s, "flops": flops, "tflops": flops / s / 1e12,
                "implicit_gemm_mnk": [h * w, c_out, c_in * 9],
            })  # fmt: skip
            del x, wt
            torch.cuda.empty_cache()


def wide_convolutions(doc: Doc, deadline: float) -> None:
    convolutions(doc, deadline, WAN22_DECODER)


def narrow_convolutions(doc: Doc, deadline: float) -> None:
    convolutions(doc, deadline, NARROW)


def convolutions(doc: Doc, deadline: float,
                 shapes: tuple[tuple[int, ...], ...] = WAN21_DECODER) -> None:  # fmt: skip
    """3x3x3 convolutions of ``(channels, height, width, frames)`` (as many out as in) or ``(in, out, height,
    width, frames)``."""
    for dtype in (torch.float32, torch.bfloat16):
        for shape in shapes:
            c_in, c_out, h, w, t = shape if len(shape) == 5 else (shape[0], *shape)
            if time.monotonic() > deadline:
                return
            with recorded(doc, f"conv3d {dtype} {c_in}->{c_out}x{t}x{h}x{w}"):
                x = torch.randn(1, c_in, t, h, w, device="cuda", dtype=dtype)
                wt = torch.randn(c_out, c_in, 3, 3, 3, device="cuda", dtype=dtype)
                y = F.conv3d(x, wt, padding=(0, 1, 1))
                s = bench(lambda x=x, wt=wt: F.conv3d(x, wt, padding=(0, 1, 1)))
                flops = ops.conv3d(1, c_in, c_out, (3, 3, 3), tuple(y.shape[2:]))  # type: ignore[arg-type]
                name = str(dtype).removeprefix("torch.")
                doc.add("convolution", {"op": "F.conv3d 3x3x3 padding (0,1,1)", "dtype": name,
                                        "in_shape": list(x.shape), "out_shape": list(y.shape), "seconds": s,
                                        "flops": flops, "tflops": flops / s / 1e12,
                                        "implicit_gemm_mnk": [int(y[0, 0].numel()), c_out, c_in * 27]})  # fmt: skip
                del x, wt, y
                torch.cuda.empty_cache()


def memory(doc: Doc, deadline: float) -> None:
    for log2 in range(16, 33, 2):  # bytes of one bf16 operand: 64 KiB to 4 GiB
        if time.monotonic() > deadline:
            return
        n = (1 << log2) // 2
        with recorded(doc, f"memory {n}"):
            a, b = (
                torch.randn(n, device="cuda", dtype=torch.bfloat16),
                torch.randn(n, device="cuda", dtype=torch.bfloat16),
            )
            out = torch.empty_like(a)
            s = bench(lambda a=a, b=b, out=out: torch.add(a, b, out=out))
            doc.add("memory", {"op": "add", "elements": n, "dtype": "bfloat16", "bytes": 3 * 2 * n, "seconds": s,
                               "gbs": 3 * 2 * n / s / 1e9})  # fmt: skip
            s = bench(lambda a=a, out=out: out.copy_(a))
            doc.add("memory", {"op": "copy", "elements": n, "dtype": "bfloat16", "bytes": 2 * 2 * n, "seconds": s,
                               "gbs": 2 * 2 * n / s / 1e9})  # fmt: skip
            del a, b, out
            torch.cuda.empty_cache()


def _moved(*ts: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in ts)


def memory_ops(doc: Doc, deadline: float) -> None:
    """The memory-bound op families the rows name (``elementwise``, ``norm``, ``reduction``, ``movement``)
    at the sizes Wan's modules run them, bytes as the rows count them (every input read whole, the
    output written; a broadcast operand at its own size)."""
    f32, bf16 = torch.float32, torch.bfloat16

    def rand(*shape: int, dtype: torch.dtype = f32) -> torch.Tensor:
        return torch.randn(*shape, device="cuda", dtype=dtype)

    cases: list[tuple[str, str, Callable[[], list[torch.Tensor]], Callable[..., torch.Tensor]]] = [
        # (category, label, inputs, op): the DiT at 480p (32,760 tokens of 1,536; the FFN's 8,960), the VAE's decoder
        (
            "elementwise",
            "mul fp32 [32760,1536] by [1536]",
            lambda: [rand(1, 32760, 1536), rand(1, 1, 1536)],
            torch.mul,
        ),
        ("elementwise", "add fp32 [32760,1536]", lambda: [rand(1, 32760, 1536), rand(1, 32760, 1536)], torch.add),
        (
            "elementwise",
            "mul bf16 [32760,1536]",
            lambda: [rand(1, 32760, 1536, dtype=bf16), rand(1, 32760, 1536, dtype=bf16)],
            torch.mul,
        ),
        (
            "elementwise",
            "gelu tanh bf16 [32760,8960]",
            lambda: [rand(32760, 8960, dtype=bf16)],
            lambda x: F.gelu(x, approximate="tanh"),
        ),
        ("elementwise", "silu fp32 [384,4,120,208]", lambda: [rand(1, 384, 4, 120, 208)], F.silu),
        (
            "norm",
            "layer_norm fp32 [32760,1536] no affine",
            lambda: [rand(32760, 1536)],
            lambda x: F.layer_norm(x, (1536,), eps=1e-6),
        ),
        (
            "norm",
            "layer_norm fp32 [75600,5120] no affine",
            lambda: [rand(75600, 5120)],
            lambda x: F.layer_norm(x, (5120,), eps=1e-6),
        ),
        (
            "norm",
            "rms_norm bf16 [32760,1536]",
            lambda: [rand(32760, 1536, dtype=bf16), rand(1536, dtype=bf16)],
            lambda x, w: F.rms_norm(x, (1536,), w, eps=1e-6),
        ),
        (
            "reduction",
            "linalg_vector_norm fp32 over channels [384,4,120,208]",
            lambda: [rand(1, 384, 4, 120, 208)],
            lambda x: torch.linalg.vector_norm(x, dim=1, keepdim=True),
        ),
        ("movement", "to fp32 from bf16 [32760,1536]", lambda: [rand(32760, 1536, dtype=bf16)], lambda x: x.float()),
        ("movement", "to bf16 from fp32 [32760,1536]", lambda: [rand(32760, 1536)], lambda x: x.to(bf16)),
        (
            "movement",
            "cat fp32 [384,2+4,120,208]",
            lambda: [rand(1, 384, 2, 120, 208), rand(1, 384, 4, 120, 208)],
            lambda a, b: torch.cat([a, b], dim=2),
        ),
        (
            "movement",
            "constant_pad fp32 [96,4,480,832] by 1",
            lambda: [rand(1, 96, 4, 480, 832)],
            lambda x: F.pad(x, (1, 1, 1, 1, 2, 0)),
        ),
        (
            "movement",
            "contiguous bf16 [32760,12,128] to heads first",
            lambda: [rand(1, 32760, 12, 128, dtype=bf16)],
            lambda x: x.transpose(1, 2).contiguous(),
        ),
    ]
    for category, label, inputs, op in cases:
        if time.monotonic() > deadline:
            return
        with recorded(doc, f"memory op {label}"):
            xs = inputs()
            y = op(*xs)
            s = bench(lambda xs=xs, op=op: op(*xs))
            moved = _moved(*xs, y)
            doc.add("memory_ops", {"category": category, "op": label, "bytes": moved, "seconds": s,
                                   "gbs": moved / s / 1e9})  # fmt: skip
            del xs, y
            torch.cuda.empty_cache()


def linears(doc: Doc, deadline: float, dtype: torch.dtype, op: str, shapes: list[tuple[int, int, int]]) -> None:
    """``F.linear`` of ``x[m, k]`` by ``W[n, k]`` in ``dtype`` at each ``(m, n, k)`` of ``shapes``, as ``op``."""
    name = str(dtype).removeprefix("torch.")
    for m, n, k in shapes:
        if time.monotonic() > deadline:
            return
        with recorded(doc, f"gemm {name} {m}x{n}x{k}"):
            x = torch.randn(m, k, device="cuda", dtype=dtype)
            w = torch.randn(n, k, device="cuda", dtype=dtype)
            s = bench(lambda x=x, w=w: F.linear(x, w))
            flops = ops.linear(m, k, n)
            doc.add("gemm", {"dtype": name, "op": op, "m": m, "n": n, "k": k, "seconds": s, "flops": flops,
                             "tflops": flops / s / 1e12})  # fmt: skip
            del x, w


def fp32_gemms(doc: Doc, deadline: float) -> None:
    """float32 products as torch runs them by default (``matmul.allow_tf32`` False: the CUDA cores), at the
    encoders' shapes: CLIP ViT-H's 257 tokens of 1,280 (MLP 5,120), UMT5's FFN output (512 x 10,240 -> 4,096)."""
    shapes = [(257, 1280, 1280), (257, 5120, 1280), (257, 1280, 5120), (512, 4096, 10240), (4096, 4096, 4096)]
    linears(doc, deadline, torch.float32, "F.linear, CUDA cores", shapes)


def launch(doc: Doc) -> None:
    a = torch.ones(8, device="cuda")
    for _ in range(100):
        a.add_(1)
    torch.cuda.synchronize()
    n = 5000
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            a.add_(1)
        torch.cuda.synchronize()
        runs.append((time.perf_counter() - t0) / n)
    doc.add("launch", {"framework": "pytorch-eager", "op": "Tensor.add_ on 8 elements, 5000 in a row, then one sync",
                       "seconds_per_kernel": statistics.median(runs), "runs": runs})  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", required=True, help="hardware-database name of this GPU")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budget-s", type=float, default=150.0, help="stop starting measurements after this")
    parser.add_argument(
        "--part",
        choices=["all", "memory-ops", "wide-convolutions", "narrow-convolutions", "tae-convolutions",
                 "tile-convolutions"],
        default="all",
        help="memory-ops: only the memory-bound op families and the float32 products; wide-convolutions: only "
        "Wan2.2's decoder convolutions; narrow-convolutions: only those below the decoders' reduction lengths "
        "(conv_in, LightVAE); tae-convolutions: only TAEHV's 2D ones (later, shorter calls); tile-convolutions: the "
        "Wan2.1 decoder's on one 256-pixel tile (--vae-tiling)",
    )  # fmt: skip
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("measure_kernels: needs a CUDA GPU", file=sys.stderr)
        return 2
    start = time.monotonic()
    deadline = start + args.budget_s
    doc = Doc(args.out, args.gpu)
    parts = {"memory-ops": (memory_ops, fp32_gemms), "wide-convolutions": (wide_convolutions,),
             "narrow-convolutions": (narrow_convolutions,), "tae-convolutions": (tae_convolutions,),
             "tile-convolutions": (tile_convolutions,)}  # fmt: skip
    if args.part in parts:
        for part in parts[args.part]:
            part(doc, deadline)
            print(f"{part.__name__}: done at {time.monotonic() - start:.0f} s", flush=True)
        return 0
    launch(doc)
    for part, share in ((gemms, 0.3), (attention, 0.75), (convolutions, 0.88), (memory, 1.0)):
        part(doc, min(deadline, start + share * args.budget_s))
        print(f"{part.__name__}: done at {time.monotonic() - start:.0f} s", flush=True)
    doc.doc["elapsed_s"] = time.monotonic() - start
    doc.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
