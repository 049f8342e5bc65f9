"""Verification: tracer == FlopCounterMode on every stage of both full models (see hybrid.verify).

Writes tmp/verify/flop_counter.json; exit 1 on failure.

    python verify/run_verify_trace.py
"""

import sys

from hybrid.cli import main

if __name__ == "__main__":
    sys.exit(main(["verify", "--only", "flop_counter"]))
