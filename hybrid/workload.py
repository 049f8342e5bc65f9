"""The workload: one video job, validated against its model's geometry and pipeline, with its
derived latent and token shapes (:mod:`hybrid.geometry`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from hybrid.geometry import CallShape, validate
from hybrid.models import DEFAULT_MODEL, PRESETS, get_preset
from hybrid.runtime import DIFFUSERS, Runtime


@dataclass(frozen=True)
class Workload:
    """One Wan video job.

    ``width``/``height`` default to the model's native size (1280x720 for 14B, 832x480 for 1.3B)
    and ``steps`` (``None``) to the model's recommended steps (50; 40 for image-to-video).
    ``text_len`` is the padded prompt length (the pipeline's ``max_sequence_length``), which the
    text encoder runs on and the DiT's cross-attention attends to. ``cfg`` turns classifier-free
    guidance (a negative prompt and a second DiT forward per step) on. ``ref_images`` are VACE's
    reference images. Geometry and pipeline constraints come from the preset's spec
    (:func:`hybrid.geometry.validate`; a custom spec is validated again against its own numbers).
    """

    model: str = DEFAULT_MODEL
    width: int = 0
    height: int = 0
    frames: int = None  # type: ignore[assignment]  # None: the preset's, set in __post_init__
    steps: int = None  # type: ignore[assignment]  # None: the preset's, set in __post_init__
    batch: int = 1
    text_len: int = 512
    cfg: bool = True
    ref_images: int = 0
    image: bool = False
    """Wan2.2 TI2V: image-to-video mode (``--image``), the single image VAE-encoded."""
    flow_shift: float | None = None
    """The scheduler's flow shift of a two-expert pipeline (``None``: the preset's); it decides which
    expert runs each step."""
    runtime: Runtime = DIFFUSERS
    """The code base that runs the job and its flags (:mod:`hybrid.runtime`): the original Wan2.2
    code embeds the timestep per token, which changes FLOPs; offload and dtypes change memory."""

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or self.model not in PRESETS:
            get_preset(str(self.model))  # raises the one-line error listing valid models
        preset = PRESETS[self.model]
        if self.width == 0:
            object.__setattr__(self, "width", preset.default_width)
        if self.height == 0:
            object.__setattr__(self, "height", preset.default_height)
        if self.steps is None:
            object.__setattr__(self, "steps", preset.default_steps)
        if self.frames is None:
            object.__setattr__(self, "frames", preset.default_frames)
        for name in ("width", "height", "frames", "steps", "batch", "text_len", "ref_images"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"{name}: must be an integer, got {v!r}")
        for name in ("steps", "batch", "text_len"):
            v = getattr(self, name)
            if v < 1:
                raise ValueError(f"{name}: {v} is invalid; must be >= 1 (use 1)")
        if self.ref_images < 0:
            raise ValueError(f"ref_images: {self.ref_images} is invalid; must be >= 0 (use 0)")
        for name in ("cfg", "image"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: must be true or false, got {getattr(self, name)!r}")
        if self.flow_shift is None and preset.flow_shift is not None:
            object.__setattr__(self, "flow_shift", preset.flow_shift)
        if self.flow_shift is not None:
            v = self.flow_shift
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"flow_shift: must be a positive number, got {v!r}")
            object.__setattr__(self, "flow_shift", float(v))
        if isinstance(self.runtime, Mapping):  # the JSON form of to_dict()
            bad = sorted(set(self.runtime) - {f.name for f in fields(Runtime)})
            if bad:
                raise ValueError(
                    f"runtime: unknown field {bad[0]!r}; valid: {', '.join(f.name for f in fields(Runtime))}"
                )
            object.__setattr__(self, "runtime", Runtime(**self.runtime))
        if not isinstance(self.runtime, Runtime):
            raise ValueError(f"runtime: must be a Runtime, got {self.runtime!r}")
        self.runtime.check(preset)
        if self.runtime.name == "wan" and not self.cfg:
            raise ValueError(
                "cfg: the original Wan generate.py runs the unconditional pass every step whatever the guide "
                "scale; valid with --runtime wan: CFG on (drop --no-cfg and any guidance scale <= 1)"
            )
        validate(preset, self)

    def shape(self) -> CallShape:
        """Per-call shapes under the preset's spec (:meth:`hybrid.geometry.CallShape.of`)."""
        return CallShape.of(get_preset(self.model), self)

    @property
    def latent_frames(self) -> int:
        """``(frames - 1) // t + 1`` (``t`` the VAE's temporal scale factor)."""
        return self.shape().latent_frames

    @property
    def latent_height(self) -> int:
        """``height // s`` (``s`` the VAE's spatial scale factor)."""
        return self.shape().latent_height

    @property
    def latent_width(self) -> int:
        """``width // s``."""
        return self.shape().latent_width

    @property
    def dit_tokens(self) -> int:
        """Video tokens per DiT forward: ``(latent_frames/p_t) (latent_h/p_h) (latent_w/p_w)``."""
        return self.shape().dit_tokens

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON values (``ref_images``, ``image``, ``flow_shift`` and
        ``runtime`` only where set)."""
        d = asdict(self)
        if not self.ref_images:
            del d["ref_images"]
        if self.flow_shift is None:
            del d["flow_shift"]
        if not self.image:
            del d["image"]
        if self.runtime == DIFFUSERS:
            del d["runtime"]
        return d

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
        from hybrid.geometry import rotary_overflow

        rotary = rotary_overflow(p, self)
        if rotary is not None:
            out.append(f"{rotary}; the analytic cost extrapolates the formulas (trace refuses it)")
        return out
