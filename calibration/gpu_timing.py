"""Calibrate the time model on this machine's device (CPU or CUDA); see hybrid/measure.py.

    python calibration/gpu_timing.py --device cuda --gpu h100-sxm --dtype bfloat16 --scale 4
    python calibration/gpu_timing.py                      # CPU, float32, measured peaks

Times op classes (matmul, attention, convolution, elementwise) and the three stages of small real
modules with the device's own timers, fits efficiencies and per-call overhead, prints predicted vs
measured seconds on held-out shapes and writes calibration/efficiency/<gpu or device>.json.
"""

import sys

from hybrid.cli import main

if __name__ == "__main__":
    sys.exit(main(["calibrate-time", *sys.argv[1:]]))
