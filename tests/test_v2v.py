"""Video-to-video (diffusers' ``WanVideoToVideoPipeline``): the input video's VAE encode, one per video, and the
``int(steps x strength)`` steps the pipeline's own ``get_timesteps`` keeps, exact against the T2V and I2V
stages it shares modules with."""

from __future__ import annotations

import json
from fractions import Fraction
from types import SimpleNamespace

import pytest
from diffusers import UniPCMultistepScheduler
from diffusers.pipelines.wan.pipeline_wan_video2video import WanVideoToVideoPipeline

from hybrid.errors import InputError
from hybrid.hardware import get_gpu
from hybrid.optimisations import parse, plan_of
from hybrid.optimise import SparseAttention
from hybrid.report import estimate
from hybrid.runtime import Runtime
from hybrid.schemas import problem
from hybrid.workload import Workload
from tests.conftest import run_cli


@pytest.mark.parametrize(("steps", "strength"), [(50, 0.8), (50, 0.6), (30, 0.33), (7, 1.0), (50, 0.02), (40, 0.999)])
def test_denoising_steps_are_what_the_pipelines_get_timesteps_keeps(steps: int, strength: float) -> None:
    # the installed pipeline's own method, on the scheduler Wan's Diffusers checkpoints configure (UniPC, flow
    # sigmas), bound to a stub holding only that scheduler: no weights, the real slicing
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    scheduler.set_timesteps(steps)
    stub = SimpleNamespace(scheduler=scheduler)
    timesteps, n = WanVideoToVideoPipeline.get_timesteps(stub, steps, scheduler.timesteps, strength, "cpu")
    w = Workload.of("wan2.1-v2v-1.3b", steps=steps, strength=strength)
    assert w.denoising_steps == n == len(timesteps) == min(int(steps * strength), steps)


def test_v2v_is_t2v_denoising_fewer_steps_after_an_i2v_sized_encode() -> None:
    v2v = estimate(Workload.of("wan2.1-v2v-14b", batch=2))  # 1280x720x81, 50 steps at 0.8: 40 denoised
    t2v = estimate(Workload.of("wan2.1-t2v-14b", batch=2))
    i2v = estimate(Workload.of("wan2.1-i2v-14b-720p"))
    calls = {name: s.calls for name, s in v2v.stages.items()}
    # the prompt and the negative prompt; one encode per video of the batch; 40 steps x 2 passes; one decode
    assert calls == {"text_encoder": 2, "vae_encode": 2, "diffusion_core": 80, "vae_decode": 1}
    for stage in ("text_encoder", "diffusion_core", "vae_decode"):  # the same modules and shapes as T2V's
        assert v2v.stages[stage].flops_per_call == t2v.stages[stage].flops_per_call
    # the input video encoded at batch 1 and full length, as I2V encodes its condition video
    assert v2v.stages["vae_encode"].flops_per_call == i2v.stages["vae_encode"].flops_per_call
    assert v2v.stages["diffusion_core"].flops == 80 * t2v.stages["diffusion_core"].flops_per_call


def test_strength_is_checked_and_only_video_to_video_takes_it() -> None:
    with pytest.raises(InputError, match=r"strength: int\(50 x 0.01\) = 0 denoising steps .* strength >= 0.02"):
        Workload.of("wan2.1-v2v-1.3b", strength=0.01)
    with pytest.raises(InputError, match=r"strength: 1.5 is invalid; valid: a number in \(0, 1\] \(default 0.8\)"):
        Workload.of("wan2.1-v2v-1.3b", strength=1.5)
    with pytest.raises(InputError, match=r"strength: wan2\.1-t2v-1\.3b takes no strength"):
        Workload.of("wan2.1-t2v-1.3b", strength=0.5)
    with pytest.raises(InputError, match=r"runtime: wan2\.1-v2v-1\.3b runs on diffusers only"):
        Workload.of("wan2.1-v2v-1.3b", runtime=Runtime("wan"))
    assert Workload.of("wan2.1-v2v-1.3b").strength == 0.8 and Workload.of("wan2.1-t2v-1.3b").strength is None
    assert (
        Workload.of("wan2.1-v2v-1.3b").describe()
        == "832x480, 81 frames, 50 steps at strength 0.8: 40 denoised, batch 1"
    )


def test_a_sparse_warm_up_counts_the_steps_video_to_video_runs() -> None:
    w = Workload.of("wan2.1-v2v-14b", strength=0.5)  # 25 of 50 steps: SVG's floor(0.2 x 50) = 10 dense
    (t,) = [t for t in plan_of(parse("svg:0.25"), w, get_gpu("h100-sxm")).transforms if isinstance(t, SparseAttention)]
    # 50 calls, the first 20 dense; a sparse call keeps (1 + 39 x 1/4) / 40 = 43/160
    assert dict(t.kept) == {"diffusion_core": (20 + 30 * Fraction(43, 160)) / 50}


def test_report_json_carries_strength_and_sizes_on_a_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["report", "--model", "wan2.1-v2v-14b", "--strength", "0.6", "--gpu", "h100-sxm", "--format", "json"]
    code, out, _ = run_cli(argv, capsys)
    doc = json.loads(out)
    assert code == 0 and problem(doc) is None
    assert doc["workload"]["strength"] == 0.6 and doc["stages"]["diffusion_core"]["runs"] == 2 * 30
    assert doc["stages"]["vae_encode"]["seconds"] > 0 and doc["stages"]["vae_encode"]["runs"] == 1
    code, _, err = run_cli(["report", "--model", "wan2.1-t2v-14b", "--strength", "0.6"], capsys)
    assert code == 2 and "strength: wan2.1-t2v-14b takes no strength" in err
