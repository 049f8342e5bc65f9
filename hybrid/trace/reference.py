"""The reference counter: ``torch.utils.flop_counter.FlopCounterMode`` on the same forward.

Used by tests, verification and benchmarks to check that our FLOPs column equals it. Remember its
gap: fused CPU attention (``_scaled_dot_product_flash_attention_for_cpu``) counts 0 in torch 2.13.
Under ``torch.inference_mode`` it was reported to count nothing (pytorch/pytorch#126268); the
installed torch counts the same there as under ``no_grad`` (``tests/test_trace.py``,
``test_inference_mode_changes_nothing``). We run it under ``no_grad``, as the tracer does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from hybrid.trace.build import StageCall


@contextlib.contextmanager
def _flex_attention_counted(counter: FlopCounterMode) -> Iterator[None]:
    """FlexAttention refuses meta tensors before it dispatches its higher-order op, where FlopCounterMode
    counts it (``flex_attention_forward_flop``: the dense ``sdpa`` count). On meta the Python wrapper is
    stood in for by one that counts the op with FlopCounterMode's own registered formula, as the op's
    dispatch would on a real device, and returns an empty output of the query's stride order."""
    import torch.nn.attention.flex_attention as flex
    from torch._higher_order_ops.flex_attention import flex_attention as hop

    formula = counter.flop_registry[hop]
    real = flex.flex_attention

    def counted(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if query.device.type != "meta":
            return real(query, key, value, *args, **kwargs)
        strides = query.stride()
        order = sorted(range(4), key=lambda i: -strides[i])
        shape = (*query.shape[:3], value.shape[-1])
        out = query.new_empty([shape[i] for i in order]).permute([order.index(i) for i in range(4)])
        counter.flop_counts["Global"][hop] += formula(query, key, value, out_val=out)
        return out

    flex.flex_attention = counted
    try:
        yield
    finally:
        flex.flex_attention = real


def flop_counter_total(call: StageCall) -> int:
    """Total FLOPs FlopCounterMode counts for one run of ``call``."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter, _flex_attention_counted(counter):
        call.run()
    return int(counter.get_total_flops())
