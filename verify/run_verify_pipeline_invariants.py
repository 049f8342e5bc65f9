"""Verification: pipeline_invariants (see hybrid.verify). Writes tmp/verify/pipeline_invariants.json; exit 1 on failure.

python verify/run_verify_pipeline_invariants.py
"""

import sys

from hybrid.cli import main

if __name__ == "__main__":
    sys.exit(main(["verify", "--only", "pipeline_invariants"]))
