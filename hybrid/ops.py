"""One pure formula per op family: the single FLOP convention of wanmeter.

Convention (declared here, once): that of ``torch.utils.flop_counter.FlopCounterMode``.

* A multiply-add counts as ``FLOPS_PER_MAC = 2`` FLOPs.
* Matrix products (``mm``/``addmm``/``bmm``/``baddbmm``), convolutions and attention are counted;
  bias adds, elementwise ops, norms, softmax, embeddings and data movement count 0 FLOPs.
* Convolutions are counted over the output positions (input positions for transposed
  convolutions), ignoring padding, exactly as FlopCounterMode does.
* Attention is ``QK^T`` plus ``PV`` with no causal or mask discount.

Every function takes plain integers (shapes), returns a Python ``int`` (no overflow at any size)
and imports nothing heavy: the analytic models and the tracer's handlers both call these.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

FLOPS_PER_MAC = 2
"""FLOPs counted per multiply-accumulate (FlopCounterMode: ``m * n * 2 * k``)."""


def mm(m: int, k: int, n: int) -> int:
    """``[m, k] @ [k, n]``: ``flops = 2 * m * k * n``."""
    return FLOPS_PER_MAC * m * k * n


def bmm(batch: int, m: int, k: int, n: int) -> int:
    """``[b, m, k] @ [b, k, n]``: ``flops = 2 * b * m * k * n`` (``baddbmm`` is the same)."""
    return FLOPS_PER_MAC * batch * m * k * n


def linear(tokens: int, in_features: int, out_features: int) -> int:
    """``nn.Linear`` on ``tokens`` rows: ``flops = 2 * tokens * in_features * out_features``.

    The bias add counts 0 (FlopCounterMode counts ``addmm`` as ``mm``).
    """
    return mm(tokens, in_features, out_features)


def conv(
    batch: int,
    in_channels_per_group: int,
    out_channels: int,
    kernel: Sequence[int],
    positions: Sequence[int],
) -> int:
    """N-d convolution: ``flops = 2 * batch * out_channels * in_channels_per_group * prod(kernel)
    * prod(positions)``.

    ``positions`` is the output spatial shape for an ordinary convolution and the *input* spatial
    shape for a transposed one (FlopCounterMode's ``conv_flop_count``). Padding, stride and
    dilation only enter through ``positions``; the bias counts 0.
    """
    return FLOPS_PER_MAC * batch * out_channels * in_channels_per_group * prod(kernel) * prod(positions)


def conv3d(
    batch: int,
    in_channels: int,
    out_channels: int,
    kernel: tuple[int, int, int],
    out_thw: tuple[int, int, int],
) -> int:
    """``nn.Conv3d`` (groups 1): ``flops = 2 * B * C_out * C_in * kT*kH*kW * T_out*H_out*W_out``."""
    return conv(batch, in_channels, out_channels, kernel, out_thw)


def conv2d(
    batch: int,
    in_channels: int,
    out_channels: int,
    kernel: tuple[int, int],
    out_hw: tuple[int, int],
) -> int:
    """``nn.Conv2d`` (groups 1): ``flops = 2 * B * C_out * C_in * kH*kW * H_out*W_out``."""
    return conv(batch, in_channels, out_channels, kernel, out_hw)


def sdpa(batch: int, heads: int, q_len: int, kv_len: int, qk_dim: int, v_dim: int | None = None) -> int:
    """Scaled dot-product attention, one forward:
    ``flops = 2*B*H*Lq*Lk*Dqk (scores) + 2*B*H*Lq*Lk*Dv (weights @ V)``.

    ``heads`` are the query heads (grouped KV heads are broadcast). Softmax, scaling and masks
    count 0; causal masks are not discounted (FlopCounterMode's ``sdpa_flop_count``).
    """
    if v_dim is None:
        v_dim = qk_dim
    return bmm(batch * heads, q_len, qk_dim, kv_len) + bmm(batch * heads, q_len, kv_len, v_dim)


def math_attention_bytes(
    batch_heads: int, q_len: int, kv_len: int, qk_dim: int, v_dim: int | None = None, itemsize: int = 2
) -> int:
    """Peak bytes PyTorch's math attention (``_scaled_dot_product_attention_math``) allocates for one
    call, its output included (a mask, if any, costs nothing more: its sum replaces the scores).
    With ``Q, K, V, S, O`` the element counts of q, k, v, the ``(Lq, Lk)`` scores and the output:
    half-precision inputs are upcast to float32 (``4Q + 4K + 4V``) and keep living, then the peak
    is the largest of the scaled q and k with the scores (``4Q + 4K + 4S``), the scores with their
    softmax (``4Q + 8S``), or the softmax with its half-precision copy, the float32 output and its
    copy (``4Q + (4 + e)S + (4 + e)O``); float32 inputs skip the upcasts and the copies."""
    v_dim = qk_dim if v_dim is None else v_dim
    q, k = batch_heads * q_len * qk_dim, batch_heads * kv_len * qk_dim
    v, s, o = batch_heads * kv_len * v_dim, batch_heads * q_len * kv_len, batch_heads * q_len * v_dim
    upcast, copies = (4 * (q + k + v), itemsize) if itemsize < 4 else (0, 0)
    scaled_q = 4 * q
    return upcast + scaled_q + max(4 * k + 4 * s, 8 * s, (4 + copies) * s + (4 + copies) * o)


COLLECTIVES: tuple[str, ...] = ("all_to_all_single", "all_gather_into_tensor", "reduce_scatter_tensor", "all_reduce")
"""The ``_c10d_functional`` collectives a rank's rows can carry (what the runtimes send)."""

LIST_COLLECTIVES: dict[str, str] = {"alltoall_": "all_to_all_single", "allgather_": "all_gather_into_tensor"}
"""The ``c10d`` collectives of ``torch.distributed``'s list API (``all_to_all(outputs, inputs)``,
``all_gather(outputs, x)``: what the Wan repositories' sequence parallelism calls), each with the
functional collective that moves the same bytes for equal splits (its :func:`collective_bytes`)."""


def collective_kind(op: str) -> str | None:
    """The :data:`COLLECTIVES` name a collective row's ``op`` moves bytes as (``_c10d_functional.x``
    or ``c10d.x``); ``None`` for another op."""
    namespace, _, name = op.rpartition(".")
    if namespace.endswith("_c10d_functional"):
        return name if name in COLLECTIVES else None
    if namespace.endswith("c10d"):
        return LIST_COLLECTIVES.get(name)
    return None


def collective_bytes(collective: str, group_size: int, input_bytes: int) -> tuple[int, int]:
    """``(sent, received)``: bytes one rank puts on and takes off the interconnect for one call
    of ``collective`` on its ``input_bytes`` in a group of ``group_size`` ranks (equal splits):

    * ``all_to_all_single``: keeps its own ``1/P`` and exchanges the rest, ``(P-1)/P * x`` each way;
    * ``all_gather_into_tensor``: its ``x`` to each of the ``P-1`` others, theirs back: ``(P-1) * x``;
    * ``reduce_scatter_tensor``: ``(P-1)/P * x`` each way (the ring algorithm's volume);
    * ``all_reduce``: reduce-scatter then all-gather, ``2 (P-1)/P * x`` each way.

    The byte columns of a collective row hold these (sent as read, received as written); a group of
    one sends nothing."""
    num, den = _sent_per_input(collective, group_size)
    moved = num * input_bytes // den
    return moved, moved


def collective_input_bytes(collective: str, group_size: int, sent: int) -> int:
    """A rank's input bytes of one call of ``collective`` that sends ``sent`` bytes: the inverse of
    :func:`collective_bytes` (its ratio, :func:`_sent_per_input`), rounded down; a group of two or more."""
    num, den = _sent_per_input(collective, group_size)
    return sent * den // num


def _sent_per_input(collective: str, group_size: int) -> tuple[int, int]:
    """``(numerator, denominator)``: bytes one rank sends per byte of its input (:func:`collective_bytes`
    lists them)."""
    p = group_size
    if collective == "all_to_all_single" or collective == "reduce_scatter_tensor":
        return p - 1, p
    if collective == "all_gather_into_tensor":
        return p - 1, 1
    if collective == "all_reduce":
        return 2 * (p - 1), p
    raise ValueError(f"collective: unknown {collective!r}; valid: {', '.join(COLLECTIVES)}")


def permute_copies(shape: Sequence[int], perm: Sequence[int]) -> bool:
    """Whether ``x.reshape(shape).permute(perm).contiguous()`` of a contiguous ``x`` copies: torch
    copies unless the permuted strides are already contiguous, dimensions of size 1 ignored
    (``TensorImpl::is_contiguous``); an empty tensor never copies."""
    if 0 in shape:
        return False
    strides = [0] * len(shape)
    step = 1
    for i in range(len(shape) - 1, -1, -1):
        strides[i], step = step, step * shape[i]
    expected = 1
    for i in reversed(perm):
        if shape[i] == 1:
            continue
        if strides[i] != expected:
            return True
        expected *= shape[i]
    return False
