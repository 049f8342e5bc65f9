"""The sampler: which expert runs each denoising step of a two-expert (Wan2.2 A14B) pipeline, without torch.

diffusers' ``WanPipeline`` / ``WanImageToVideoPipeline`` with ``boundary_ratio`` run ``transformer``
(the high-noise expert) at every timestep ``t >= boundary_ratio * num_train_timesteps`` and
``transformer_2`` at the others. The timesteps are those of ``UniPCMultistepScheduler`` with
``use_flow_sigmas`` (``set_timesteps``): ``sigmas = linspace(1, 1/N, steps + 1)[:-1]``, shifted
``shift * s / (1 + (shift - 1) * s)``, the first nudged below 1 by 1e-6, ``timesteps = int64(sigmas
* N)``. The same float64 arithmetic in Python gives the same integers (tested against the
scheduler itself), so the split is exact.
"""

from __future__ import annotations

import struct

from hybrid.memo import memoised

NUM_TRAIN_TIMESTEPS = 1000
"""``num_train_timesteps`` of every Wan scheduler config."""


def _float32(x: float) -> float:
    return float(struct.unpack("f", struct.pack("f", x))[0])


def flow_timesteps(steps: int, shift: float, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> list[int]:
    """The ``steps`` timesteps of ``UniPCMultistepScheduler(use_flow_sigmas=True, flow_shift=shift)``."""
    start, stop = 1.0, 1.0 / num_train_timesteps
    step = (stop - start) / steps  # numpy.linspace(start, stop, steps + 1): i * step + start
    sigmas = [i * step + start for i in range(steps)]  # [:-1] drops the endpoint
    sigmas = [shift * s / (1 + (shift - 1) * s) for s in sigmas]
    if abs(sigmas[0] - 1) < 1e-6:
        sigmas[0] -= 1e-6
    return [int(s * num_train_timesteps) for s in sigmas]


def wan_flow_timesteps(steps: int, shift: float, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> list[int]:
    """The ``steps`` timesteps of the original Wan repositories' ``FlowUniPCMultistepScheduler``
    (``wan/utils/fm_solvers_unipc.py``, ``set_timesteps(steps, shift=shift)``): its sigmas start at
    ``sigma_max = float32(1 - 1/N)`` (the init's ``1 - alphas`` in float32), not at 1, so
    ``linspace(sigma_max, 0, steps + 1)[:-1]``, shifted, ``int64(sigmas * N)``; the expert split
    can differ from diffusers' by a step (40 steps at shift 3: 10 high-noise steps here, 11 there)."""
    start = _float32(1.0 - 1.0 / num_train_timesteps)
    step = (0.0 - start) / steps
    sigmas = [i * step + start for i in range(steps)]
    sigmas = [shift * s / (1 + (shift - 1) * s) for s in sigmas]
    return [int(s * num_train_timesteps) for s in sigmas]


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
    original Wan repositories' scheduler (:func:`wan_flow_timesteps`), else diffusers'."""
    boundary = boundary_ratio * num_train_timesteps
    timesteps = (wan_flow_timesteps if original else flow_timesteps)(steps, shift, num_train_timesteps)
    return sum(t >= boundary for t in timesteps)
