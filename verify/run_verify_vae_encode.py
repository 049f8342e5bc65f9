"""Verification: vae_encode (see hybrid.verify). Writes tmp/verify/vae_encode.json; exit 1 on failure.

python verify/run_verify_vae_encode.py
"""

import sys

from hybrid.cli import main

if __name__ == "__main__":
    sys.exit(main(["verify", "--only", "vae_encode"]))
