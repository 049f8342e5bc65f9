"""Verify the tracer against FlopCounterMode on the full 1.3B and 14B configs (meta device).

For each model, at its default workload and at a small one, every stage's traced FLOPs must equal
FlopCounterMode's on the same forward exactly, and no op may be left uncosted. Writes
``tmp/verify/trace.json`` and exits 1 on any failure.

    python verify/run_verify_trace.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from hybrid.models import PRESETS, get_preset
from hybrid.rows import STAGES
from hybrid.trace import trace_stage
from hybrid.trace.build import stage_call
from hybrid.trace.reference import flop_counter_total
from hybrid.workload import Workload

SMALL = {"width": 256, "height": 128, "frames": 17, "text_len": 16, "batch": 2}


def main() -> int:
    results = []
    ok = True
    for model in sorted(PRESETS):
        spec = get_preset(model)
        for workload in (Workload(model=model), Workload(model=model, **SMALL)):  # type: ignore[arg-type]
            for stage in STAGES:
                t0 = time.perf_counter()
                traced = trace_stage(stage, workload, spec)
                reference = flop_counter_total(stage_call(stage, spec, workload))
                passed = traced.flops == reference and not traced.unsupported_ops
                ok &= passed
                results.append(
                    {
                        "model": model,
                        "workload": workload.to_dict(),
                        "stage": stage,
                        "traced_flops": traced.flops,
                        "flop_counter_flops": reference,
                        "relative_error": abs(traced.flops - reference) / reference if reference else 0.0,
                        "unsupported_ops": traced.unsupported_ops,
                        "pass": passed,
                        "seconds": round(time.perf_counter() - t0, 3),
                    }
                )
                status = "ok  " if passed else "FAIL"
                print(
                    f"{status} {model:16} {workload.width}x{workload.height}x{workload.frames} b{workload.batch} "
                    f"{stage:15} traced {traced.flops} == FlopCounterMode {reference}"
                )
    out = Path("tmp/verify/trace.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"pass": ok, "results": results}, indent=2) + "\n")
    print(f"{'PASS' if ok else 'FAIL'}: {sum(r['pass'] for r in results)}/{len(results)} exact; wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
