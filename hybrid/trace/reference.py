"""The reference counter: ``torch.utils.flop_counter.FlopCounterMode`` on the same forward.

Used by tests, verification and benchmarks to check that our FLOPs column equals it. Remember its
gap: fused CPU attention (``_scaled_dot_product_flash_attention_for_cpu``) counts 0 in torch 2.13.
Under ``torch.inference_mode`` it was reported to count nothing (pytorch/pytorch#126268); the
installed torch counts the same there as under ``no_grad`` (``tests/test_trace.py``,
``test_inference_mode_changes_nothing``). We run it under ``no_grad``, as the tracer does.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from hybrid.trace.build import StageCall
from hybrid.trace.mode import flex_attention_replaced, flex_output


def _flex_attention_counted(counter: FlopCounterMode) -> contextlib.AbstractContextManager[None]:
    """FlexAttention refuses meta tensors before it dispatches its higher-order op, where FlopCounterMode
    counts it (``flex_attention_forward_flop``: the dense ``sdpa`` count). On meta the op is counted with
    FlopCounterMode's own registered formula, as its dispatch would on a real device, and an empty output
    returned (:func:`~hybrid.trace.mode.flex_output`)."""
    from torch._higher_order_ops.flex_attention import flex_attention as hop

    formula = counter.flop_registry[hop]

    def counted(real: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *args: Any,
                **kwargs: Any) -> Any:  # fmt: skip
        if query.device.type != "meta":
            return real(query, key, value, *args, **kwargs)
        out = flex_output(query, value)
        counter.flop_counts["Global"][hop] += formula(query, key, value, out_val=out)
        return out

    return flex_attention_replaced(counted)


def flop_counter_total(call: StageCall) -> int:
    """Total FLOPs FlopCounterMode counts for one run of ``call``."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter, _flex_attention_counted(counter):
        call.run()
    return int(counter.get_total_flops())
