"""Which expert runs each denoising step of a two-expert (Wan2.2 A14B) pipeline, without torch.

diffusers' ``WanPipeline`` / ``WanImageToVideoPipeline`` with ``boundary_ratio`` run ``transformer``
(the high-noise expert) at every timestep ``t >= boundary_ratio * num_train_timesteps`` and
``transformer_2`` at the others. The timesteps are those of ``UniPCMultistepScheduler`` with
``use_flow_sigmas`` (``set_timesteps``): ``sigmas = linspace(1, 1/N, steps + 1)[:-1]``, shifted
``shift * s / (1 + (shift - 1) * s)``, the first nudged below 1 by 1e-6, ``timesteps = int64(sigmas
* N)``. The same float64 arithmetic in Python gives the same integers (tested against the
scheduler itself), so the split is exact.
"""

from __future__ import annotations

NUM_TRAIN_TIMESTEPS = 1000
"""``num_train_timesteps`` of every Wan scheduler config."""


def flow_timesteps(steps: int, shift: float, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> list[int]:
    """The ``steps`` timesteps of ``UniPCMultistepScheduler(use_flow_sigmas=True, flow_shift=shift)``."""
    start, stop = 1.0, 1.0 / num_train_timesteps
    step = (stop - start) / steps  # numpy.linspace(start, stop, steps + 1): i * step + start
    sigmas = [i * step + start for i in range(steps)]  # [:-1] drops the endpoint
    sigmas = [shift * s / (1 + (shift - 1) * s) for s in sigmas]
    if abs(sigmas[0] - 1) < 1e-6:
        sigmas[0] -= 1e-6
    return [int(s * num_train_timesteps) for s in sigmas]


def high_noise_steps(
    steps: int, shift: float, boundary_ratio: float, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS
) -> int:
    """Steps whose timestep is at or above ``boundary_ratio * num_train_timesteps``: those the
    high-noise expert (``transformer``) runs; ``transformer_2`` runs the rest."""
    boundary = boundary_ratio * num_train_timesteps
    return sum(t >= boundary for t in flow_timesteps(steps, shift, num_train_timesteps))
