"""Verification: one rank's closed-form transformer rows, collectives and activation peaks against
diffusers' context parallelism traced in a fake process group (Ulysses, ring, both; P = 2, 4, 8).
Writes tmp/verify/sequence_parallel.json; exit 1 on failure.

python verify/run_verify_sequence_parallel.py
"""

import sys

from hybrid.cli import main

if __name__ == "__main__":
    sys.exit(main(["verify", "--only", "sequence_parallel"]))
