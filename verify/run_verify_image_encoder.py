"""Verification: image_encoder (see hybrid.verify). Writes tmp/verify/image_encoder.json; exit 1 on failure.

python verify/run_verify_image_encoder.py
"""

import sys

from hybrid.cli import main

if __name__ == "__main__":
    sys.exit(main(["verify", "--only", "image_encoder"]))
