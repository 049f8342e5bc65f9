"""The reference counter: ``torch.utils.flop_counter.FlopCounterMode`` on the same forward.

Used by tests, verification and benchmarks to check that our FLOPs column equals it. Remember its
gap: fused CPU attention (``_scaled_dot_product_flash_attention_for_cpu``) counts 0 in torch 2.13.
Under ``torch.inference_mode`` it was reported to count nothing (pytorch/pytorch#126268); the
installed torch counts the same there as under ``no_grad`` (``tests/test_trace.py``,
``test_inference_mode_changes_nothing``). We run it under ``no_grad``, as the tracer does.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from hybrid.trace.build import StageCall


def flop_counter_total(call: StageCall) -> int:
    """Total FLOPs FlopCounterMode counts for one run of ``call``."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        call.run()
    return int(counter.get_total_flops())
