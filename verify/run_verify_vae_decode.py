"""Verification: vae_decode (see hybrid.verify). Writes tmp/verify/vae_decode.json; exit 1 on failure.

python verify/run_verify_vae_decode.py
"""

import sys

from hybrid.cli import main

if __name__ == "__main__":
    sys.exit(main(["verify", "--only", "vae_decode"]))
