"""Stage calls this project timed on lent GPUs, against the time model's prediction of each.

``calibration/device/<gpu>/stages.json`` (``calibration/measure_stages.py``) holds whole calls of the
real diffusers/transformers modules at full size (one denoising step, one text encode, one decode)
and ``profile.json`` (``calibration/measure_profile.py``) the original Wan ``WanModel`` forward as
``generate.py`` runs it. None of them sets a parameter of the time model (the kernel measurements of
the same machine do, in ``hybrid/data/kernel_rates.json``): they test it, as ``verify --only
measured_stages`` does, on runs at the shapes users run, with nothing between the model and the
measurement but the GPU (no framework loop, no host pipeline, no published rounding).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybrid.files import CALIBRATION_DIR, read_json

DEVICE_DIR = CALIBRATION_DIR / "device"


@dataclass(frozen=True)
class MeasuredCall:
    """One timed stage call and what the model predicts for it."""

    gpu: str
    model: str
    stage: str
    runtime: str
    width: int
    height: int
    frames: int
    torch: str
    measured_s: float
    predicted_s: float
    measured_activation_bytes: int
    predicted_activation_bytes: int
    source: str

    @property
    def name(self) -> str:
        return f"{self.gpu} {self.runtime} {self.model} {self.stage} {self.width}x{self.height}x{self.frames}"

    @property
    def error(self) -> float:
        return (self.predicted_s - self.measured_s) / self.measured_s

    @property
    def memory_error(self) -> float:
        return (self.predicted_activation_bytes - self.measured_activation_bytes) / self.measured_activation_bytes


def _predict(
    gpu: str, model: str, stage: str, runtime: str, size: tuple[int, int, int], torch: str
) -> tuple[float, int]:
    """Seconds and activation peak of one call of ``stage``: one step, without CFG where the runtime allows
    it (the original code runs both passes whatever the guidance: the step's seconds over its calls)."""
    from hybrid.runtime import RUNTIME_DEFS, Runtime
    from hybrid.schedule import stage_calls
    from hybrid.sizing import size_on_gpu
    from hybrid.workload import Workload

    rt = Runtime(name=runtime, torch=torch if RUNTIME_DEFS[runtime].sdpa_torch else None)
    w = Workload.of(model, width=size[0], height=size[1], frames=size[2], steps=1, cfg=rt.cfg_always, runtime=rt)
    st = size_on_gpu(w, gpu).stages[stage]
    return st.seconds / stage_calls(w.spec.pipeline_def.stage(stage), w), st.activation_bytes


def _where(path: Path) -> str:
    """``path`` relative to the repository where it lies in it (``calibration/device/h200/stages.json``)."""
    return str(path.relative_to(CALIBRATION_DIR.parent)) if path.is_relative_to(CALIBRATION_DIR.parent) else str(path)


def _cases(path: Path, doc: dict[str, Any]) -> list[tuple[str, str, str, tuple[int, int, int], dict[str, Any]]]:
    """``(model, stage, runtime, size, measured case)`` of a ``stages.json`` (diffusers' stage calls, each with its
    workload) or a ``profile.json`` (the original WanModel's forwards, each named ``wan2.1-t2v-14b 1280x720x81``)."""
    out = []
    if path.name == "stages.json":
        for c in doc["cases"]:
            w = c["workload"]
            out.append((c["model"], c["stage"], "diffusers", (int(w["width"]), int(w["height"]), int(w["frames"])), c))
        return out
    for c in doc["original"]:
        model, size = c["case"].split()
        width, height, frames = (int(x) for x in size.split("x"))
        out.append((model, "diffusion_core", "wan", (width, height, frames), c))
    return out


def measured_calls(directory: Path = DEVICE_DIR) -> list[MeasuredCall]:
    """Every measured call under ``directory`` with its prediction, in file order (none where the folder
    is absent: an installed package without the repository's ``calibration/``)."""
    out: list[MeasuredCall] = []
    if not directory.is_dir():
        return out
    for gpu_dir in sorted(p for p in directory.iterdir() if p.is_dir()):
        for path in (gpu_dir / "stages.json", gpu_dir / "profile.json"):
            if not path.exists():
                continue
            doc: dict[str, Any] = read_json(path, "measured calls")
            torch = str(doc["versions"]["torch"]).split("+")[0]
            for model, stage, runtime, size, c in _cases(path, doc):
                seconds, act = _predict(doc["gpu"], model, stage, runtime, size, torch)
                out.append(MeasuredCall(doc["gpu"], model, stage, runtime, *size, torch, c["seconds"], seconds,
                                        c["activation_peak_bytes"], act, _where(path)))  # fmt: skip
    return out


@dataclass(frozen=True)
class MeasuredBounds:
    """What ``verify --only measured_stages`` requires: issue 21's bounds on seconds (those of the
    public set, :data:`hybrid.accuracy.ACCEPTANCE`)."""

    seconds_mean: float = 0.12
    seconds_max: float = 0.30

    def to_dict(self) -> dict[str, float]:
        return {"seconds_mean": self.seconds_mean, "seconds_max": self.seconds_max}


MEASURED_ACCEPTANCE = MeasuredBounds()


def assess(calls: Iterable[MeasuredCall], bounds: MeasuredBounds = MEASURED_ACCEPTANCE) -> dict[str, Any]:
    """Mean and max |error| of seconds against ``bounds``; the time-weighted error (the sum of |errors| in
    seconds over the sum of measured seconds) and the activation peaks' errors beside them."""
    calls = list(calls)
    if not calls:
        return {"pass": False, "reason": "no measured calls"}
    errors = [abs(c.error) for c in calls]
    mean, worst = sum(errors) / len(errors), max(errors)
    weighted = sum(abs(c.predicted_s - c.measured_s) for c in calls) / sum(c.measured_s for c in calls)
    memory = [abs(c.memory_error) for c in calls]
    return {
        "pass": mean <= bounds.seconds_mean and worst <= bounds.seconds_max,
        "bounds": bounds.to_dict(),
        "calls": len(calls),
        "seconds_mean_abs_error": mean,
        "seconds_max_abs_error": worst,
        "seconds_signed_mean_error": sum(c.error for c in calls) / len(calls),
        "seconds_time_weighted_error": weighted,
        "activation_mean_abs_error": sum(memory) / len(memory),
        "activation_max_abs_error": max(memory),
    }
