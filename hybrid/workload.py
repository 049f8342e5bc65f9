"""The workload: one text-to-video job, validated, with its derived latent and token shapes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from hybrid.models import DEFAULT_MODEL, PRESETS, get_preset

VAE_TEMPORAL_STRIDE = 4
VAE_SPATIAL_STRIDE = 8
SIZE_MULTIPLE = 16
"""Width and height must be multiples of 16: VAE stride 8 times DiT patch 2."""


def _nearest_multiples(value: int, step: int, minimum: int) -> str:
    lo = max(minimum, (value // step) * step)
    hi = max(minimum, lo + step if value > lo else lo)
    if value < minimum or lo == hi:
        return f"use {max(minimum, lo)}"
    return f"use {lo} or {hi}"


def _nearest_frames(value: int) -> str:
    if value < 1:
        return "use 1"
    lo = ((value - 1) // 4) * 4 + 1
    return f"use {lo} or {lo + 4}"


@dataclass(frozen=True)
class Workload:
    """One Wan2.1 text-to-video job.

    ``width``/``height`` default to the model's native size (1280x720 for 14B, 832x480 for 1.3B).
    ``text_len`` is the padded prompt length (the pipeline's ``max_sequence_length``), which the
    text encoder runs on and the DiT's cross-attention attends to. ``cfg`` turns classifier-free
    guidance (a negative prompt and a second DiT forward per step) on.
    """

    model: str = DEFAULT_MODEL
    width: int = 0
    height: int = 0
    frames: int = 81
    steps: int = 50
    batch: int = 1
    text_len: int = 512
    cfg: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or self.model not in PRESETS:
            get_preset(str(self.model))  # raises the one-line error listing valid models
        preset = PRESETS[self.model]
        if self.width == 0:
            object.__setattr__(self, "width", preset.default_width)
        if self.height == 0:
            object.__setattr__(self, "height", preset.default_height)
        for name in ("width", "height", "frames", "steps", "batch", "text_len"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"{name}: must be an integer, got {v!r}")
        for name in ("width", "height"):
            v = getattr(self, name)
            if v < SIZE_MULTIPLE or v % SIZE_MULTIPLE:
                hint = _nearest_multiples(v, SIZE_MULTIPLE, SIZE_MULTIPLE)
                raise ValueError(f"{name}: {v} is not a positive multiple of 16; {hint}")
        if self.frames < 1 or (self.frames - 1) % VAE_TEMPORAL_STRIDE:
            raise ValueError(f"frames: {self.frames} is not of the form 4k+1 >= 1; {_nearest_frames(self.frames)}")
        for name in ("steps", "batch", "text_len"):
            v = getattr(self, name)
            if v < 1:
                raise ValueError(f"{name}: {v} is invalid; must be >= 1 (use 1)")
        if not isinstance(self.cfg, bool):
            raise ValueError(f"cfg: must be true or false, got {self.cfg!r}")

    @property
    def latent_frames(self) -> int:
        """``(frames - 1) // 4 + 1``."""
        return (self.frames - 1) // VAE_TEMPORAL_STRIDE + 1

    @property
    def latent_height(self) -> int:
        """``height // 8``."""
        return self.height // VAE_SPATIAL_STRIDE

    @property
    def latent_width(self) -> int:
        """``width // 8``."""
        return self.width // VAE_SPATIAL_STRIDE

    @property
    def dit_tokens(self) -> int:
        """Video tokens per DiT forward: ``latent_frames * (latent_h/2) * (latent_w/2)``."""
        p_t, p_h, p_w = get_preset(self.model).transformer.patch_size
        return (self.latent_frames // p_t) * (self.latent_height // p_h) * (self.latent_width // p_w)

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON values."""
        return asdict(self)

    def extrapolation_warnings(self) -> list[str]:
        """Where this workload lies beyond what the checkpoint was trained for."""
        p = get_preset(self.model)
        out: list[str] = []
        if self.width * self.height > p.trained_max_pixels:
            out.append(
                f"{self.width}x{self.height} is above the {p.default_width}x{p.default_height} "
                f"{self.model} was trained for: the cost is an extrapolation"
            )
        if self.frames > p.trained_max_frames:
            out.append(
                f"frames {self.frames} is above the {p.trained_max_frames} frames "
                f"{self.model} was trained for: the cost is an extrapolation"
            )
        if self.text_len > p.trained_max_text_len:
            out.append(
                f"text_len {self.text_len} is above the {p.trained_max_text_len} tokens "
                "the text encoder pipeline pads to: the cost is an extrapolation"
            )
        return out
