"""Verification: diffusion_core (see hybrid.verify). Writes tmp/verify/diffusion_core.json; exit 1 on failure.

python verify/run_verify_diffusion_core.py
"""

import sys

from hybrid.cli import main

if __name__ == "__main__":
    sys.exit(main(["verify", "--only", "diffusion_core"]))
