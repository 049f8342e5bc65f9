"""The sampler: which expert runs each denoising step of a two-expert (Wan2.2 A14B) pipeline, without torch.

diffusers' ``WanPipeline`` / ``WanImageToVideoPipeline`` with ``boundary_ratio`` run ``transformer``
(the high-noise expert) at every timestep ``t >= boundary_ratio * num_train_timesteps`` and
``transformer_2`` at the others. The timesteps are those of ``UniPCMultistepScheduler`` with
``use_flow_sigmas`` (``set_timesteps``): ``sigmas = linspace(1, 1/N, steps + 1)[:-1]``, shifted
``shift * s / (1 + (shift - 1) * s)``, the first nudged below 1 by 1e-6, ``timesteps = int64(sigmas
* N)``. The same float64 arithmetic in Python gives the same integers (tested against the
scheduler itself), so the split is exact.

Each timestep is a closed form of its index (:func:`timestep`), and the timesteps never rise
(the sigmas fall, and the shift is increasing for any shift > 0), so the high-noise steps are
counted by bisection for the first timestep below the boundary: a step count of 10**30 splits in
about a hundred evaluations, not a list of 10**30 entries (equal to the list's count for every
step count up to 2,000 at several shifts, tested).
"""

from __future__ import annotations

import struct
import sys

from hybrid.errors import InputError
from hybrid.memo import memoised

NUM_TRAIN_TIMESTEPS = 1000
"""``num_train_timesteps`` of every Wan scheduler config."""
MIN_FLOW_SHIFT = 1e-6
"""The smallest flow shift taken: below it the scheduler's ``1 + (shift - 1) * sigma`` at sigma 1
cancels to a few bits in float64 (at a shift of 1e-17 it is exactly 0, and diffusers divides by it)."""


def _float32(x: float) -> float:
    return float(struct.unpack("f", struct.pack("f", x))[0])


def _check(steps: int, shift: float) -> None:
    if not shift >= MIN_FLOW_SHIFT:
        raise InputError(f"flow_shift: {shift!r} is invalid; valid: a number >= {MIN_FLOW_SHIFT:g}")
    if steps > sys.float_info.max:
        raise InputError(
            "steps: beyond a float64, which the scheduler computes its timesteps in; valid for a two-expert "
            f"preset: at most {sys.float_info.max:.3e}"
        )


def timestep(i: int, steps: int, shift: float, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS,
             original: bool = False) -> int:  # fmt: skip
    """Timestep ``i`` of ``steps``, the same float64 operations as the scheduler's arrays
    (:func:`flow_timesteps`, or with ``original`` :func:`wan_flow_timesteps`)."""
    if original:
        start, stop = _float32(1.0 - 1.0 / num_train_timesteps), 0.0
    else:
        start, stop = 1.0, 1.0 / num_train_timesteps
    step = (stop - start) / steps  # numpy.linspace(start, stop, steps + 1): i * step + start
    s = i * step + start
    s = shift * s / (1 + (shift - 1) * s)
    if i == 0 and not original and abs(s - 1) < 1e-6:
        s -= 1e-6
    return int(s * num_train_timesteps)


def flow_timesteps(steps: int, shift: float, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> list[int]:
    """The ``steps`` timesteps of ``UniPCMultistepScheduler(use_flow_sigmas=True, flow_shift=shift)``."""
    _check(steps, shift)
    return [timestep(i, steps, shift, num_train_timesteps) for i in range(steps)]


def wan_flow_timesteps(steps: int, shift: float, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> list[int]:
    """The ``steps`` timesteps of the original Wan repositories' ``FlowUniPCMultistepScheduler``
    (``wan/utils/fm_solvers_unipc.py``, ``set_timesteps(steps, shift=shift)``): its sigmas start at
    ``sigma_max = float32(1 - 1/N)`` (the init's ``1 - alphas`` in float32), not at 1, so
    ``linspace(sigma_max, 0, steps + 1)[:-1]``, shifted, ``int64(sigmas * N)``; the expert split
    can differ from diffusers' by a step (40 steps at shift 3: 10 high-noise steps here, 11 there)."""
    _check(steps, shift)
    return [timestep(i, steps, shift, num_train_timesteps, original=True) for i in range(steps)]


@memoised(maxsize=1024)  # asked for by every count of an expert's calls
def high_noise_steps(
    steps: int,
    shift: float,
    boundary_ratio: float,
    num_train_timesteps: int = NUM_TRAIN_TIMESTEPS,
    original: bool = False,
) -> int:
    """Steps whose timestep is at or above ``boundary_ratio * num_train_timesteps``: those the
    high-noise expert (``transformer``) runs; ``transformer_2`` runs the rest. ``original``: the
    original Wan repositories' scheduler (:func:`wan_flow_timesteps`), else diffusers'. The
    timesteps never rise, so this is the index of the first one below the boundary, found by
    bisection (:func:`timestep` at about ``log2(steps)`` indices)."""
    _check(steps, shift)
    boundary = boundary_ratio * num_train_timesteps
    lo, hi = 0, steps  # timesteps before lo are >= boundary; those from hi on are below it
    while lo < hi:
        mid = (lo + hi) // 2
        if timestep(mid, steps, shift, num_train_timesteps, original) >= boundary:
            lo = mid + 1
        else:
            hi = mid
    return lo
