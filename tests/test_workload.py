"""Workload defaults, validation messages and derived shapes."""

from __future__ import annotations

import dataclasses

import pytest

from hybrid.schedule import schedule
from hybrid.workload import Workload


def test_defaults_14b() -> None:
    w = Workload.of()
    assert (w.model, w.width, w.height, w.frames, w.steps, w.batch, w.text_len, w.cfg) == (
        "wan2.1-t2v-14b",
        1280,
        720,
        81,
        50,
        1,
        512,
        True,
    )
    # (81-1)//4+1 = 21 latent frames, 720/8 = 90, 1280/8 = 160, tokens 21*45*80 = 75600
    assert (w.latent_frames, w.latent_height, w.latent_width, w.dit_tokens) == (21, 90, 160, 75600)


def test_defaults_1_3b_native_size() -> None:
    w = Workload.of(model="wan2.1-t2v-1.3b")
    assert (w.width, w.height) == (832, 480)
    # 21 * (60/2) * (104/2) = 21 * 30 * 52 = 32760 tokens
    assert w.dit_tokens == 32760


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Workload.of().steps = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frames": 80}, "frames: 80 is not of the form 4k+1 >= 1; use 77 or 81"),
        ({"frames": 0}, "frames: 0 is not of the form 4k+1 >= 1; use 1"),
        ({"width": 1000}, "width: 1000 is not a positive multiple of 16; use 992 or 1008"),
        ({"height": 8}, "height: 8 is not a positive multiple of 16; use 16"),
        ({"height": -16}, "height: -16 is not a positive multiple of 16; use 16"),
        ({"steps": 0}, "steps: 0 is invalid; must be >= 1 (use 1)"),
        ({"batch": -2}, "batch: -2 is invalid; must be >= 1 (use 1)"),
        ({"text_len": 0}, "text_len: 0 is invalid; must be >= 1 (use 1)"),
        (
            {"model": "wan9"},
            "model: unknown model 'wan9'; valid: wan-animate-2-14b, wan-animate-2-14b-distilled, "
            "wan2.1-flf2v-14b-720p, wan2.1-i2v-14b-480p, wan2.1-i2v-14b-720p, "
            "wan2.1-t2v-1.3b, wan2.1-t2v-14b, wan2.1-v2v-1.3b, wan2.1-v2v-14b, wan2.1-vace-1.3b, wan2.1-vace-14b, "
            "wan2.2-animate-14b, wan2.2-i2v-a14b, wan2.2-s2v-14b, wan2.2-t2v-a14b, wan2.2-ti2v-5b",
        ),
        ({"steps": 2.5}, "steps: must be an integer, got 2.5"),
    ],
)
def test_validation_messages(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as e:
        Workload.of(**kwargs)  # type: ignore[arg-type]
    assert str(e.value) == message


def test_schedule_cfg_on_and_off() -> None:
    s = schedule(Workload.of(steps=50))
    assert dict(s) == {"text_encoder": 2, "diffusion_core": 100, "vae_decode": 1}
    s = schedule(Workload.of(steps=30, cfg=False, batch=4))
    assert dict(s) == {"text_encoder": 1, "diffusion_core": 30, "vae_decode": 1}


def test_extrapolation_warnings() -> None:
    assert Workload.of().extrapolation_warnings() == []
    msgs = Workload.of(
        model="wan2.1-t2v-1.3b", width=1280, height=720, frames=121, text_len=600
    ).extrapolation_warnings()
    assert len(msgs) == 3
    assert "1280x720 is above the 832x480" in msgs[0]


def test_the_vae_runs_in_its_runtimes_dtype() -> None:
    # every runtime record names the dtype it runs the VAE in; a workload's spec carries it (the walk and the tracer
    # read it there), and a replace() of the runtime follows it
    from dataclasses import replace

    from hybrid.runtime import RUNTIME_DEFS, Runtime

    seen = {}
    for name, record in RUNTIME_DEFS.items():
        w = Workload.of("wan2.1-t2v-14b", runtime=Runtime(name=name))
        seen[name] = w.spec.vae.compute_dtype
        assert seen[name] == record.compute_dtypes["vae"]
    assert {n for n, d in seen.items() if d == "bfloat16"} == {"lightx2v", "xdit", "diffsynth"}
    w = Workload.of("wan2.1-t2v-14b")
    assert w.spec.vae.compute_dtype == "float32" and w.spec.vae.itemsize == 4
    assert replace(w, runtime=Runtime(name="lightx2v")).spec.vae.itemsize == 2
    assert "compute_dtype" not in w.spec.vae.to_kwargs()  # not an AutoencoderKLWan argument


def test_to_dict_says_only_what_is_set_or_every_knob_the_pipeline_takes() -> None:
    """One rule for the workload's JSON: a job's own record names what is set; the report's workload block names every
    knob the pipeline takes, at its value (a VACE job's 0 reference images, an S2V job's pose video off)."""
    vace = Workload.of(model="wan2.1-vace-1.3b")
    s2v = Workload.of(model="wan2.2-s2v-14b", audio_seconds=5.0)
    assert "ref_images" not in vace.to_dict() and vace.to_dict(every_knob=True)["ref_images"] == 0
    assert "pose_video" not in s2v.to_dict() and s2v.to_dict(every_knob=True)["pose_video"] is False
    t2v = Workload.of(model="wan2.1-t2v-1.3b")
    assert t2v.to_dict(every_knob=True) == t2v.to_dict()  # it takes none of them
