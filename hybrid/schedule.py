"""Execution schedule: how many calls of each stage one job makes (data, apart from cost)."""

from __future__ import annotations

from dataclasses import dataclass

from hybrid.workload import Workload


@dataclass(frozen=True)
class Schedule:
    """Calls per stage for one job of ``batch`` videos.

    * ``text_encoder``: one call for the prompt batch, one more for the negative prompt under CFG;
    * ``diffusion_core``: ``steps`` forwards, twice per step under CFG (diffusers runs the
      conditional and unconditional passes as separate calls);
    * ``vae_decode``: one ``vae.decode`` of the whole latent batch.
    """

    text_encoder: int
    diffusion_core: int
    vae_decode: int

    def calls(self, stage: str) -> int:
        """Calls of ``stage``."""
        return int(getattr(self, stage))


def schedule(workload: Workload) -> Schedule:
    """The :class:`Schedule` of ``workload``."""
    guidance = 2 if workload.cfg else 1
    return Schedule(text_encoder=guidance, diffusion_core=workload.steps * guidance, vae_decode=1)
