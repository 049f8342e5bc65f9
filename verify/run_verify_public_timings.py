"""Verification: the time and memory model against published whole-job runs on 1 to 8 GPUs (see
hybrid.verify and calibration/public_timings.json). Writes tmp/verify/public_timings.json; exit 1 on
failure.

python verify/run_verify_public_timings.py
"""

import sys

from hybrid.cli import main

if __name__ == "__main__":
    sys.exit(main(["verify", "--only", "public_timings"]))
