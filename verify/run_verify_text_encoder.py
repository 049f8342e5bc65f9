"""Verification: text_encoder (see hybrid.verify). Writes tmp/verify/text_encoder.json; exit 1 on failure.

python verify/run_verify_text_encoder.py
"""

import sys

from hybrid.cli import main

if __name__ == "__main__":
    sys.exit(main(["verify", "--only", "text_encoder"]))
