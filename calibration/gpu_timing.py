"""Calibrate the time model on this machine's device (CPU or CUDA); see hybrid/measure.py.

    python calibration/gpu_timing.py --device cuda --gpu h100-sxm --dtype bfloat16 --scale 4 \
        --model wan2.1-t2v-1.3b                          # a GPU: the full 1.3B pipeline's modules
    python calibration/gpu_timing.py                      # CPU, float32, measured peaks, small modules

Times op classes (matmul, attention, convolution, elementwise) and the three stages of real
modules (small widths, or a full preset with --model) with the device's own timers, fits
efficiencies and per-call overhead, prints predicted vs measured seconds on held-out shapes and
writes calibration/efficiency/<gpu or device>.json.
"""

import sys

from hybrid.cli import main

if __name__ == "__main__":
    sys.exit(main(["calibrate-time", *sys.argv[1:]]))
