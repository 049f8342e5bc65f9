"""Stage calls this project timed on lent GPUs, against the time model's prediction of each.

``calibration/device/<gpu>/stages.json`` (``calibration/measure_stages.py``) holds whole calls of the
real diffusers/transformers modules at full size (one denoising step, one text encode, one decode)
and ``profile.json`` (``calibration/measure_profile.py``) the original Wan ``WanModel`` forward as
``generate.py`` runs it; ``stages_s2v.json`` and ``profile_s2v.json`` the same for Wan2.2-S2V (its VAE
calls, its original ``WanModel_S2V``). None of them sets a parameter of the time model (the kernel measurements of
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
    optimise: str = ""
    """The ``--optimise`` list the call ran (none: the baseline)."""

    @property
    def name(self) -> str:
        name = f"{self.gpu} {self.runtime} {self.model} {self.stage} {self.width}x{self.height}x{self.frames}"
        return name + (f" --optimise {self.optimise}" if self.optimise else "")

    @property
    def error(self) -> float:
        return (self.predicted_s - self.measured_s) / self.measured_s

    @property
    def memory_error(self) -> float:
        return (self.predicted_activation_bytes - self.measured_activation_bytes) / self.measured_activation_bytes


def _predict(
    gpu: str,
    model: str,
    stage: str,
    runtime: str,
    size: tuple[int, int, int],
    torch: str,
    audio_seconds: float | None,
    optimise: str = "",
    vae: tuple[tuple[str, Any], ...] = (),
) -> tuple[float, int]:
    """Seconds and activation peak of one call of ``stage``: one step, without CFG where the runtime allows
    it (the original code runs both passes whatever the guidance: the step's seconds over its calls), its
    module on the GPU (the seconds of offload's host copies left out: Wan2.2's expert swaps);
    ``audio_seconds`` where the pipeline takes audio (enough for a later clip's stages to have calls);
    ``optimise`` as ``report --optimise`` takes it; ``vae`` the runtime's VAE settings the call ran
    (``vae_tiling``, ``vae_dtype``)."""
    from hybrid.hardware import get_gpu
    from hybrid.optimisations import parse, plan_of
    from hybrid.runtime import RUNTIME_DEFS, Runtime
    from hybrid.schedule import stage_calls
    from hybrid.sizing import size_on_gpu
    from hybrid.workload import Workload

    rt = Runtime(name=runtime, torch=torch if RUNTIME_DEFS[runtime].sdpa_torch else None, **dict(vae))
    audio = {} if audio_seconds is None else {"audio_seconds": audio_seconds}
    w = Workload.of(model, width=size[0], height=size[1], frames=size[2], steps=1, cfg=rt.cfg_always, runtime=rt,
                    **audio)  # fmt: skip
    plan = plan_of(parse(optimise) if optimise else (), w, get_gpu(gpu))
    st = size_on_gpu(plan.workload, gpu, optimisations=plan.transforms).stages[stage]
    seconds = st.seconds - st.host_copy_seconds  # a timed call finds its module on the GPU: no offload's moves
    return seconds / stage_calls(plan.workload.spec.pipeline_def.stage(stage), plan.workload), st.activation_bytes


def _where(path: Path) -> str:
    """``path`` relative to the repository where it lies in it (``calibration/device/h200/stages.json``)."""
    return str(path.relative_to(CALIBRATION_DIR.parent)) if path.is_relative_to(CALIBRATION_DIR.parent) else str(path)


Case = tuple[str, str, str, tuple[int, int, int], float | None, str, tuple[tuple[str, Any], ...], dict[str, Any]]
VAE_SETTINGS = ("vae_tiling", "vae_dtype")
"""The runtime settings of a measured call beyond its name (those that change the VAE's calls)."""


def _cases(doc: dict[str, Any]) -> list[Case]:
    """``(model, stage, runtime, size, audio seconds, optimisations, VAE settings, measured case)`` of a stage-call
    document (``cases``: the real modules' calls, each with its workload and runtime, diffusers' where it names none,
    the ``--optimise`` list it ran and its runtime's VAE settings) or a profile
    (``original``: the original code's transformer forwards, each named ``wan2.1-t2v-14b 1280x720x81``, with
    their stage where it is not ``diffusion_core``)."""
    out: list[Case] = []
    for c in doc.get("cases", ()):
        w = c["workload"]
        rt = w["runtime"] if isinstance(w.get("runtime"), dict) else {"name": "diffusers"}
        vae = tuple((k, rt[k]) for k in VAE_SETTINGS if rt.get(k))
        size = (int(w["width"]), int(w["height"]), int(w["frames"]))
        out.append((c["model"], c["stage"], rt["name"], size, w.get("audio_seconds"), c.get("optimise", ""), vae, c))
    for c in doc.get("original", ()):
        model, dims = c["case"].split()
        width, height, frames = (int(x) for x in dims.split("x"))
        stage = c.get("stage", "diffusion_core")
        out.append((model, stage, "wan", (width, height, frames), c.get("audio_seconds"), "", (), c))
    return out


MEASUREMENT_FILES = (
    "stages.json", "stages_s2v.json", "stages_lightvae.json", "stages_tiling.json", "profile.json",
    "profile_original22.json", "profile_s2v.json",
)  # fmt: skip
"""The documents under ``calibration/device/<gpu>/`` that hold timed calls (``measure_stages.py`` and its ``--cases
s2v``, ``lightvae`` and ``tiling``, ``measure_profile.py`` and its ``--part original22`` and ``s2v``), read in this
order."""


def measured_calls(directory: Path = DEVICE_DIR) -> list[MeasuredCall]:
    """Every measured call under ``directory`` with its prediction, in file order (none where the folder
    is absent: an installed package without the repository's ``calibration/``)."""
    from hybrid.runtime import Runtime

    out: list[MeasuredCall] = []
    if not directory.is_dir():
        return out
    for gpu_dir in sorted(p for p in directory.iterdir() if p.is_dir()):
        for path in (gpu_dir / name for name in MEASUREMENT_FILES):
            if not path.exists():
                continue
            doc: dict[str, Any] = read_json(path, "measured calls")
            torch = str(doc["versions"]["torch"]).split("+")[0]
            for model, stage, runtime, size, audio, optimise, vae, c in _cases(doc):
                seconds, act = _predict(doc["gpu"], model, stage, runtime, size, torch, audio, optimise, vae)
                label = Runtime(runtime, **dict(vae)).describe().removeprefix("--runtime ")  # with its VAE flags
                out.append(MeasuredCall(doc["gpu"], model, stage, label, *size, torch, c["seconds"], seconds,
                                        c["activation_peak_bytes"], act, _where(path), optimise))  # fmt: skip
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
