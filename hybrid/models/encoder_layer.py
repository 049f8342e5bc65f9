"""One pre-norm transformer encoder layer in float32, as the walks of CLIP's vision tower and of wav2vec 2.0
tell it (the same ops in the same order; only the module names differ): a LayerNorm, q, k and v, attention,
the output projection and its residual; a LayerNorm, a GELU MLP and its residual. The layer's input is its
caller's (both models keep every hidden state), its output is left live.
"""

from __future__ import annotations

from dataclasses import dataclass

from hybrid import ops
from hybrid.dtypes import F32
from hybrid.rows import SDPA_OP as SDPA
from hybrid.sinks import Sink
from hybrid.timing import attention_dims, gemm_dims

ADDMM = "aten.addmm"


@dataclass(frozen=True)
class LayerNames:
    """The module paths of one layer's ops, relative to the layer."""

    norm1: str
    attention: str
    """The attention module: its q, k, v and out projections are ``{attention}.{q,k,v,out}_proj``."""
    norm2: str
    fc1: str
    act: str
    fc2: str


def layer_norm(sink: Sink, module: str, rows: int, width: int) -> None:
    """An affine ``native_layer_norm`` of ``rows`` float32 rows: mean and rstd written beside the output
    and freed (not returned); the output left live."""
    sink.op(module, "aten.native_layer_norm", "norm", (rows * width + 2 * width) * F32, (rows * width + 2 * rows) * F32)
    sink.alloc((rows * width + 2 * rows) * F32)
    sink.free(2 * rows * F32)


def linear(sink: Sink, module: str, rows: int, d_in: int, d_out: int, itemsize: int = F32) -> None:
    """An ``nn.Linear`` with bias (``addmm``) in float32 (or ``itemsize`` bytes an element), its output left live."""
    sink.op(module, ADDMM, "matmul", (d_out + rows * d_in + d_in * d_out) * itemsize, rows * d_out * itemsize,
            ops.linear(rows, d_in, d_out), dims=gemm_dims(1, rows, d_out, d_in))  # fmt: skip
    sink.alloc(rows * d_out * itemsize)


def pre_norm_layer(sink: Sink, names: LayerNames, batch: int, tokens: int, width: int, ffn: int, heads: int) -> None:
    """One layer over ``batch`` sequences of ``tokens`` (float32, ``width`` wide, ``heads`` heads, an MLP of
    ``ffn``); under PyTorch's math attention its scores are a transient on top of what lives."""
    r, d, hd = batch * tokens, width, width // heads
    x = r * d * F32  # one hidden state
    layer_norm(sink, names.norm1, r, d)
    for proj in ("q_proj", "k_proj", "v_proj"):
        linear(sink, f"{names.attention}.{proj}", r, d, d)
    sink.op(names.attention, SDPA, "attention", 3 * x, x, ops.sdpa(batch, heads, tokens, tokens, hd),
            dims=attention_dims(batch * heads, tokens, tokens, hd))  # fmt: skip
    sink.transient(ops.math_attention_bytes(batch * heads, tokens, tokens, hd, itemsize=F32))
    sink.alloc(x)
    linear(sink, f"{names.attention}.out_proj", r, d, d)
    sink.free(5 * x)  # the norm, q, k, v and the attention's output
    sink.op("", "aten.add", "elementwise", 2 * x, x)  # the attention's residual
    sink.alloc(x)
    sink.free(x)  # out_proj's output
    layer_norm(sink, names.norm2, r, d)
    linear(sink, names.fc1, r, d, ffn)
    sink.op(names.act, "aten.gelu", "elementwise", r * ffn * F32, r * ffn * F32)
    sink.alloc(r * ffn * F32)
    sink.free(r * ffn * F32)  # fc1's output
    linear(sink, names.fc2, r, ffn, d)
    sink.free(r * ffn * F32 + x)  # the GELU's output, the norm
    sink.op("", "aten.add", "elementwise", 2 * x, x)  # the MLP's residual: the layer's output
    sink.alloc(x)
    sink.free(2 * x)  # the attention's residual, fc2's output
