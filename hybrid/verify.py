"""Verification: the analytic model against the tracer, pipeline invariants, device agreement.

Every check writes a JSON summary (shapes, analytic, traced, relative error, pass) and reports
pass/fail; the ``verify/run_verify_*.py`` scripts and ``wanmeter verify`` are thin wrappers.

* ``check_stage``: analytic vs traced FLOPs for one stage, per (module, op) and in total, on the
  small reference shapes and the full default workloads of both models (meta device). Bar:
  relative error <= 1e-6; expectation (and what we get): exact equality.
* ``check_flop_counter``: the tracer equals ``FlopCounterMode`` on the same forwards.
* ``check_invariants``: total == sum of stages == sum of per-call rows x runs; every stage
  non-decreasing in width, height, frames, steps, batch and text_len.
* ``check_device``: tiny configs of the real classes run with random weights on a real device
  (cpu or cuda) give exactly the rows traced on meta, attention included.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybrid.accuracy import ACCEPTANCE, PUBLIC_TIMINGS, Bounds, assess, band, outcomes
from hybrid.analytic import stage_groups
from hybrid.deployment import Deployment
from hybrid.errors import InputError
from hybrid.files import write_atomic
from hybrid.measured import MeasuredBounds
from hybrid.models.clip import CLIPVisionConfig
from hybrid.models.umt5 import UMT5Config
from hybrid.models.wan_animate2 import WanAnimate2Transformer3DConfig
from hybrid.models.wan_dit import WanAnimateTransformer3DConfig, WanTransformer3DConfig, WanVACETransformer3DConfig
from hybrid.models.wan_s2v import WanS2VConfig
from hybrid.models.wan_vae import AutoencoderKLWanConfig
from hybrid.models.wav2vec2 import Wav2Vec2Config
from hybrid.pipelines import STAGE_NAMES
from hybrid.presets import PRESETS, ModelSpec, get_preset
from hybrid.report import estimate
from hybrid.rows import aggregate, aggregate_costs, expand
from hybrid.runtime import DIFFUSERS, Runtime
from hybrid.workload import Workload

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.sizing import GpuSizing
    from hybrid.speedups import Bounds as SpeedUpBounds
    from hybrid.trace import StageTrace

RTOL = 1e-6
"""Verification bar on relative error (the expectation is exact equality)."""

REFERENCE_SHAPES: tuple[dict[str, Any], ...] = (
    {"width": 64, "height": 48, "frames": 1, "text_len": 7},
    {"width": 128, "height": 64, "frames": 5, "text_len": 16, "batch": 2},
    {"width": 256, "height": 128, "frames": 17, "text_len": 77, "cfg": False},
)
"""Small workloads every stage is verified at (besides each model's full default workload)."""

_TINY_DIT = WanTransformer3DConfig(
    num_attention_heads=2, attention_head_dim=12, ffn_dim=32, num_layers=2, text_dim=16, freq_dim=8
)

TINY_SPEC = ModelSpec(
    name="tiny",
    text_encoder=UMT5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=2, num_heads=4),
    transformer=_TINY_DIT,
    vae=AutoencoderKLWanConfig(base_dim=8, z_dim=16),
    default_width=64,
    default_height=48,
    trained_max_pixels=64 * 48,
)
"""Tiny configs of the real classes: small enough to run with real tensors on any device."""

_TINY_CLIP = CLIPVisionConfig(
    hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=28, patch_size=14
)
_TINY_I2V_DIT = replace(_TINY_DIT, in_channels=36, image_dim=16, added_kv_proj_dim=24)

TINY_SPECS: dict[str, ModelSpec] = {
    "t2v": TINY_SPEC,
    "i2v": replace(TINY_SPEC, name="tiny-i2v", pipeline="i2v", image_encoder=_TINY_CLIP, transformer=_TINY_I2V_DIT),
    "flf2v": replace(
        TINY_SPEC,
        name="tiny-flf2v",
        pipeline="flf2v",
        image_encoder=_TINY_CLIP,
        transformer=replace(_TINY_I2V_DIT, pos_embed_seq_len=2 * _TINY_CLIP.num_tokens),
    ),
    "vace": replace(
        TINY_SPEC,
        name="tiny-vace",
        pipeline="vace",
        transformer=WanVACETransformer3DConfig(
            num_attention_heads=2, attention_head_dim=12, ffn_dim=32, num_layers=2, text_dim=16, freq_dim=8,
            vace_layers=(0,), vace_in_channels=96,
        ),
    ),
    "t2v-a14b": replace(
        TINY_SPEC, name="tiny-t2v-a14b", pipeline="t2v-a14b", transformer_2=_TINY_DIT, flow_shift=12.0
    ),
    "i2v-a14b": replace(
        TINY_SPEC,
        name="tiny-i2v-a14b",
        pipeline="i2v-a14b",
        transformer=replace(_TINY_DIT, in_channels=36),
        transformer_2=replace(_TINY_DIT, in_channels=36),
        flow_shift=5.0,
    ),
    "ti2v": replace(
        TINY_SPEC,
        name="tiny-ti2v",
        pipeline="ti2v",
        vae=AutoencoderKLWanConfig(
            base_dim=8, decoder_base_dim=16, z_dim=16, in_channels=12, out_channels=12, is_residual=True,
            patch_size=2, scale_factor_spatial=16,
        ),
    ),
    "v2v": replace(TINY_SPEC, name="tiny-v2v", pipeline="v2v"),
    "animate": replace(
        TINY_SPEC,
        name="tiny-animate",
        pipeline="animate",
        image_encoder=_TINY_CLIP,
        transformer=WanAnimateTransformer3DConfig(
            num_attention_heads=2, attention_head_dim=12, ffn_dim=32, num_layers=2, text_dim=16, freq_dim=8,
            image_dim=16, added_kv_proj_dim=24, motion_encoder_size=16,
            motion_encoder_channel_sizes=((4, 8), (8, 8), (16, 8)),
            motion_style_dim=8, motion_dim=4, motion_encoder_dim=8, face_encoder_hidden_dim=8, face_encoder_num_heads=2,
            inject_face_latents_blocks=1,
        ),
        default_frames=77,
        default_steps=20,
    ),
    "animate2": replace(
        TINY_SPEC,
        name="tiny-animate2",
        pipeline="animate2",
        image_encoder=CLIPVisionConfig(  # MLPProj(1280, dim): the CLIP width is fixed
            hidden_size=1280, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=28,
            patch_size=14,
        ),
        transformer=WanAnimate2Transformer3DConfig(dim=24, ffn_dim=32, num_heads=2, num_layers=2, text_dim=16,
                                                   freq_dim=8),
        default_steps=40,
    ),
}  # fmt: skip
TINY_SPECS["animate2-distilled"] = replace(TINY_SPECS["animate2"], name="tiny-animate2-distilled",
                                           pipeline="animate2-distilled", default_steps=10)  # fmt: skip
TINY_SPECS["s2v"] = replace(  # its transformer no module builds: the device check runs the other stages
    TINY_SPEC,
    name="tiny-s2v",
    pipeline="s2v",
    audio_encoder=Wav2Vec2Config(hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=2,
                                 conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2),
    transformer=WanS2VConfig(num_attention_heads=2, attention_head_dim=12, ffn_dim=32, num_layers=2, text_dim=16,
                             freq_dim=8, audio_dim=16, audio_inject_layers=(0,)),
    default_width=64,
    default_height=64,
    default_frames=8,
    default_steps=40,
)  # fmt: skip
"""A tiny spec of every pipeline (the same real classes as its presets)."""


DEFAULT_OUT_DIR = Path("tmp/verify")


@dataclass
class Check:
    """One verified case."""

    name: str
    passed: bool
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Summary:
    """All cases of one verification, written as ``<out_dir>/<name>.json``."""

    name: str
    checks: list[Check]
    seconds: float = 0.0
    verdict: dict[str, Any] = field(default_factory=dict)
    """A judgement of the cases as a whole (``pass`` in it: whether it holds), where there is one."""

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks) and bool(self.verdict.get("pass", True))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pass": self.passed,
            "cases": len(self.checks),
            "failed": sum(not c.passed for c in self.checks),
            "seconds": round(self.seconds, 3),
            **({"verdict": self.verdict} if self.verdict else {}),
            "checks": [{"name": c.name, "pass": c.passed, **c.detail} for c in self.checks],
        }

    def write(self, out_dir: Path = DEFAULT_OUT_DIR) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{self.name}.json"
        write_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n", "out-dir")
        return path


def _rel(a: int, b: int) -> float:
    return abs(a - b) / max(abs(b), 1)


def reference_workload(model: str, shape: dict[str, Any], ref_images: int = 0) -> Workload:
    """A reference shape as a workload of ``model``, within its pipeline's constraints (a pipeline
    that accepts one text length or batch 1 only gets that; VACE gets ``ref_images``; a preset whose runtime
    runs CFG always keeps it on)."""
    kw = get_preset(model).constrain(shape, ref_images)
    if Workload.of(model=model).runtime.cfg_always:
        kw.pop("cfg", None)
    return Workload.of(model=model, **kw)


def reference_workloads(model: str) -> list[Workload]:
    """:data:`REFERENCE_SHAPES` as workloads of ``model`` (the i-th with i VACE reference images)."""
    return [reference_workload(model, kw, i) for i, kw in enumerate(REFERENCE_SHAPES)]


def _workloads(model: str, stage: str = "") -> list[Workload]:
    """The workloads a stage is verified at for ``model``: its default, the reference shapes, and for a VAE stage
    :data:`TILED_SHAPE` with the VAE tiled (``--vae-tiling``) where the model's runtime tiles it."""
    out = [Workload.of(model=model), *reference_workloads(model)]
    if stage and get_preset(model).pipeline_def.stage(stage).component == "vae":
        w = reference_workload(model, TILED_SHAPE)
        if w.runtime.record.vae_tiling:
            out.append(replace(w, runtime=replace(w.runtime, vae_tiling=True)))
    return out


TILED_SHAPE: dict[str, Any] = {"width": 320, "height": 192, "frames": 5, "text_len": 7}
"""A shape wider than one 256-pixel tile, where a VAE stage is also verified tiled: 2 x 1 tiles for either VAE."""


def presets_of(pipeline: str) -> tuple[str, ...]:
    """The presets that run ``pipeline``."""
    return tuple(m for m in sorted(PRESETS) if get_preset(m).pipeline == pipeline)


def presets_with(stage: str) -> tuple[str, ...]:
    """The presets whose pipeline has ``stage`` built by a diffusers or transformers module (Wan2.2-S2V's
    transformer is not: ``tests/test_wan_s2v.py`` checks it against the original code)."""
    return tuple(
        m
        for m in sorted(PRESETS)
        if stage in get_preset(m).pipeline_def.stage_names and get_preset(m).pipeline_def.stage(stage).trace_key
    )


@functools.lru_cache(maxsize=64)
def _meta_trace(stage: str, workload: Workload) -> StageTrace:
    """One meta trace per (stage, model, workload) per run: the analytic and FlopCounterMode checks
    look at the same forwards."""
    from hybrid.trace import trace_stage

    return trace_stage(stage, workload)


def _mismatches(analytic: Mapping[Any, Any], traced: Mapping[Any, Any]) -> list[dict[str, Any]]:
    """The ``(stage, module, op)`` keys where two aggregated tables differ, with both sides."""
    return [
        {"module": k[1], "op": k[2], "analytic": analytic.get(k), "traced": traced.get(k)}
        for k in sorted(set(analytic) | set(traced))
        if analytic.get(k) != traced.get(k)
    ]


def check_stage(stage: str, workload: Workload) -> Check:
    """Analytic vs traced FLOPs and calls of one call of ``stage``, per (module, op) and total: it
    passes when the FLOPs agree within :data:`RTOL` (per op and in total), every (module, op) makes
    the same number of calls and no op is unsupported, and, where the stage's family writes them in
    closed form, every op's bytes and both activation peaks are the traced ones."""
    analytic = aggregate(expand(stage_groups(stage, workload)))
    spec = workload.spec
    traced_stage = _meta_trace(stage, workload)
    traced = aggregate(traced_stage.rows)
    mismatches = _mismatches(analytic, traced)
    a_total = sum(f for f, _ in analytic.values())
    t_total = sum(f for f, _ in traced.values())
    rel = _rel(a_total, t_total)
    max_op_rel = max(
        (_rel(analytic.get(k, (0, 0))[0], traced.get(k, (0, 0))[0]) for k in set(analytic) | set(traced)), default=0.0
    )
    call_mismatches = [m for m in mismatches if (m["analytic"] or (0, 0))[1] != (m["traced"] or (0, 0))[1]]
    sd, call = spec.pipeline_def.stage(stage), workload.shape()
    groups = sd.closed_rows(spec, call)  # None: only the tracer has this family's bytes
    byte_mismatches = (
        None if groups is None else _mismatches(aggregate_costs(expand(groups)), aggregate_costs(traced_stage.rows))
    )
    # the same FLOPs from a different number of calls is a different model: it fails too
    passed = rel <= RTOL and max_op_rel <= RTOL and not call_mismatches and not traced_stage.unsupported_ops
    peak, peak_mat = sd.closed_peak(spec, call), sd.closed_peak(spec, call, materialized=True)
    passed = passed and not byte_mismatches and peak in (None, traced_stage.peak_activation_bytes)
    passed = passed and peak_mat in (None, traced_stage.peak_activation_bytes_materialized)
    w = workload
    return Check(
        name=f"{spec.name} {w.width}x{w.height}x{w.frames} b{w.batch} L{w.text_len} {stage}",
        passed=passed,
        detail={
            "model": spec.name,
            "stage": stage,
            "workload": w.to_dict(),
            "analytic_flops": a_total,
            "traced_flops": t_total,
            "relative_error": rel,
            "max_op_relative_error": max_op_rel,
            "exact": a_total == t_total and not mismatches,
            "ops_compared": len(set(analytic) | set(traced)),
            "mismatches": mismatches[:20],
            "call_mismatches": len(call_mismatches),
            "bytes_checked": byte_mismatches is not None,
            "byte_mismatches": (byte_mismatches or [])[:20],
            "peak_activation_bytes": {"analytic": peak, "traced": traced_stage.peak_activation_bytes},
            "peak_activation_bytes_materialized": {
                "analytic": peak_mat,
                "traced": traced_stage.peak_activation_bytes_materialized,
            },
            "unsupported_ops": traced_stage.unsupported_ops,
        },
    )


def verify_stage(stage: str, models: Iterable[str] | None = None) -> Summary:
    """:func:`check_stage` at the reference shapes and full default workloads of ``models``
    (default: every preset whose pipeline has ``stage``)."""
    t0 = time.perf_counter()
    models = presets_with(stage) if models is None else models
    checks = [check_stage(stage, w) for m in models for w in _workloads(m, stage)]
    return Summary(stage, checks, time.perf_counter() - t0)


KNOBS: dict[str, tuple[int, ...]] = {
    "width": (256, 512, 832, 1280),
    "height": (128, 256, 480, 720),
    "frames": (1, 5, 17, 33, 81),
    "steps": (1, 10, 50),
    "batch": (1, 2, 4),
    "text_len": (1, 64, 512),
    "ref_images": (0, 1, 2),
}


def _knobs(workload: Workload) -> dict[str, tuple[int, ...]]:
    """:data:`KNOBS` that ``workload``'s pipeline lets vary."""
    pipeline = workload.spec.pipeline_def
    fixed = {
        "text_len": pipeline.fixed_text_len is not None,
        "batch": pipeline.max_batch == 1,
        "ref_images": not pipeline.ref_images,
    }
    knobs = {k: v for k, v in KNOBS.items() if not fixed.get(k, False)}
    if workload.strength is not None:  # video-to-video denoises int(steps x strength) >= 1 steps
        knobs["steps"] = tuple(v for v in knobs["steps"] if int(v * workload.strength) >= 1)
    return knobs


def check_invariants(workload: Workload) -> list[Check]:
    """Totals add up, and each stage is non-decreasing along every knob from ``workload``."""
    checks: list[Check] = []
    report = estimate(workload)
    stage_sum = sum(s.flops for s in report.stages.values())
    rows_sum = sum(r.flops * report.stages[r.stage].calls for r in report.rows())
    checks.append(
        Check(
            f"{workload.model} sums",
            report.total_flops == stage_sum == rows_sum,
            {"total": report.total_flops, "sum_of_stages": stage_sum, "sum_of_rows_x_runs": rows_sum},
        )
    )
    for knob, values in _knobs(workload).items():
        changes: list[dict[str, Any]] = [{knob: v} for v in values]
        spec = workload.spec  # sizes rounded to its multiple (32 for the /16 Wan2.2 VAE)
        series = [estimate(Workload.of(**spec.constrain({**workload.to_dict(), **c}))) for c in changes]
        # a speech-to-video clip's frames: longer clips, fewer of them for the same audio; each call costs more
        per_call = knob == "frames" and workload.spec.pipeline_def.audio
        for stage in report.stages:
            flops = [r.stages[stage].flops_per_call if per_call else r.stages[stage].flops for r in series]
            ok = all(a <= b for a, b in pairwise(flops))
            what = "per call " if per_call else ""
            checks.append(
                Check(
                    f"{workload.model} {stage} non-decreasing {what}in {knob}",
                    ok,
                    {"values": list(values), "flops": flops},
                )
            )
    return checks


def verify_invariants() -> Summary:
    """:func:`check_invariants` from both models' default workloads, CFG on and off."""
    t0 = time.perf_counter()
    checks = [
        c
        for m in sorted(PRESETS)
        for cfg in (True, False)
        if cfg or not Workload.of(model=m).runtime.cfg_always  # the original repository runs CFG always
        for c in check_invariants(Workload.of(model=m, cfg=cfg))
    ]
    return Summary("pipeline_invariants", checks, time.perf_counter() - t0)


def check_device(stage: str, workload: Workload, device: str) -> Check:
    """Rows traced with real random tensors on ``device`` equal the rows traced on meta (``workload``
    on a tiny spec: real tensors)."""
    from hybrid.trace import trace_stage

    def key(rows: Iterable[Any]) -> list[Any]:
        return sorted(rows, key=lambda r: (r.module, r.op, r.input_shapes, r.output_shape))

    meta = trace_stage(stage, workload, device="meta", dtype="float32")
    real = trace_stage(stage, workload, device=device, dtype="float32")
    analytic = sum(g.flops for g in stage_groups(stage, workload))
    same = key(meta.rows) == key(real.rows)
    w = workload
    return Check(
        name=f"{w.spec.name} {w.width}x{w.height}x{w.frames} b{w.batch} {stage} on {device}",
        passed=same and meta.flops == real.flops == analytic,
        detail={
            "stage": stage,
            "device": device,
            "workload": w.to_dict(),
            "meta_flops": meta.flops,
            "device_flops": real.flops,
            "analytic_flops": analytic,
            "rows_identical": same,
            "attention_flops": sum(r.flops for r in real.rows if r.category == "attention"),
        },
    )


def verify_device(device: str) -> Summary:
    """:func:`check_device` for every stage at every reference shape."""
    t0 = time.perf_counter()
    seen: set[tuple[Any, ...]] = set()
    checks = []
    for spec in TINY_SPECS.values():
        for preset_w in reference_workloads(presets_of(spec.pipeline)[0]):
            w = replace(preset_w, spec=spec)
            for sd in spec.pipeline_def.stages:
                call = (sd.trace_key, sd.config(spec), w.shape())
                if sd.trace_key and call not in seen:  # the same call in another pipeline (a VAE decode) runs once
                    seen.add(call)
                    checks.append(check_device(sd.name, w, device))
    return Summary(f"device_{device}", checks, time.perf_counter() - t0)


def check_flop_counter(stage: str, workload: Workload) -> Check:
    """Traced FLOPs of one call equal ``FlopCounterMode``'s on the same forward (meta device)."""
    from hybrid.trace.build import stage_call
    from hybrid.trace.reference import flop_counter_total

    spec = workload.spec
    traced = _meta_trace(stage, workload)
    reference = flop_counter_total(stage_call(stage, workload))
    w = workload
    return Check(
        name=f"{spec.name} {w.width}x{w.height}x{w.frames} b{w.batch} L{w.text_len} {stage}",
        passed=traced.flops == reference and not traced.unsupported_ops,
        detail={
            "model": spec.name,
            "stage": stage,
            "workload": w.to_dict(),
            "traced_flops": traced.flops,
            "flop_counter_flops": reference,
            "relative_error": _rel(traced.flops, reference),
            "exact": traced.flops == reference,
            "unsupported_ops": traced.unsupported_ops,
        },
    )


def verify_flop_counter(models: Iterable[str] = tuple(sorted(PRESETS))) -> Summary:
    """:func:`check_flop_counter` for every stage a module builds (Wan2.2-S2V's transformer: none) at the reference
    shapes and full default workloads."""
    t0 = time.perf_counter()
    checks = [
        check_flop_counter(sd.name, w)
        for m in models
        for w in _workloads(m)
        for sd in get_preset(m).pipeline_def.stages
        if sd.trace_key
    ]
    return Summary("flop_counter", checks, time.perf_counter() - t0)


def verify_public_timings(path: Path = PUBLIC_TIMINGS, bounds: Bounds = ACCEPTANCE) -> Summary:
    """The time and memory model (``report --gpu``) against published whole-job runs: predicted vs
    published seconds and peak memory per entry of ``calibration/public_timings.json``, with the
    runtime and flags each source states (:func:`hybrid.accuracy.outcomes`). An entry passes when the
    modelled job makes exactly the source's number of DiT calls; the whole passes when the errors
    are within ``bounds`` (:func:`hybrid.accuracy.assess`: mean, max, the 4- and 8-GPU runs' signed
    mean, peak memory, and how often the published figure falls in its leave-one-source-out range)."""
    t0 = time.perf_counter()
    runs = outcomes(path)
    checks = []
    for o in runs:
        b = band(runs, o.kind, exclude_source=o.source)
        lo, hi = b.seconds(o.predicted_s) if b else (None, None)
        checks.append(
            Check(
                name=o.name,
                passed=o.detail["dit_calls"] == o.detail["published_dit_calls"],
                detail={
                    "gpu": o.gpu,
                    **o.detail,
                    "published_s": o.published_s,
                    "predicted_s": o.predicted_s,
                    "predicted_range_s": None if b is None else [lo, hi],
                    "range_basis": None if b is None else b.basis,
                    "inside_range": None if lo is None or hi is None else lo <= o.published_s <= hi,
                    "relative_error": o.error,
                    "published_peak_gib": o.published_gib,
                    "predicted_peak_gib": o.predicted_gib,
                    "memory_relative_error": o.memory_error,
                    "gpus": o.gpus,
                    "set_aside": o.set_aside,
                },
            )
        )
    return Summary("public_timings", checks, time.perf_counter() - t0, assess(runs, bounds))


def verify_optimisations(path: Path | None = None, bounds: SpeedUpBounds | None = None) -> Summary:
    """The optimisations (``report --gpu --optimise``) against published speed-ups: per entry of
    ``calibration/optimisation_speedups.json`` the predicted and published speed-up of the optimised run
    over its baseline (:mod:`hybrid.speedups`); the whole passes when their mean and max |error| are
    within ``bounds``."""
    from hybrid.speedups import ACCEPTANCE as SPEEDUP_ACCEPTANCE
    from hybrid.speedups import SPEEDUPS
    from hybrid.speedups import assess as assess_speedups
    from hybrid.speedups import outcomes as speedup_outcomes

    t0 = time.perf_counter()
    runs = speedup_outcomes(path or SPEEDUPS)
    checks = [
        Check(
            name=r.name,
            passed=True,
            detail={
                "gpu": r.gpu,
                "source": r.source,
                "scope": r.scope,
                **r.detail,
                "published_baseline_s": r.published_baseline_s,
                "published_optimised_s": r.published_optimised_s,
                "predicted_baseline_s": r.predicted_baseline_s,
                "predicted_optimised_s": r.predicted_optimised_s,
                "published_speed_up": r.published,
                "predicted_speed_up": r.predicted,
                "relative_error": r.error,
            },
        )
        for r in runs
    ]
    return Summary(
        "optimisations", checks, time.perf_counter() - t0, assess_speedups(runs, bounds or SPEEDUP_ACCEPTANCE)
    )


def verify_measured_stages(directory: Path | None = None, bounds: MeasuredBounds | None = None) -> Summary:
    """The time model against stage calls timed on lent GPUs (:mod:`hybrid.measured`): per call the
    predicted and measured seconds and activation peak; the whole passes when the seconds' mean and max
    |error| are within ``bounds`` (issue 21's, as for the public set)."""
    from hybrid.measured import DEVICE_DIR, MEASURED_ACCEPTANCE, assess, measured_calls

    t0 = time.perf_counter()
    calls = measured_calls(directory or DEVICE_DIR)
    checks = [
        Check(
            name=c.name,
            passed=True,
            detail={
                "gpu": c.gpu,
                "runtime": c.runtime,
                "model": c.model,
                "stage": c.stage,
                "optimise": c.optimise,
                "torch": c.torch,
                "measured_s": c.measured_s,
                "predicted_s": c.predicted_s,
                "relative_error": c.error,
                "measured_activation_bytes": c.measured_activation_bytes,
                "predicted_activation_bytes": c.predicted_activation_bytes,
                "memory_relative_error": c.memory_error,
                "source": c.source,
            },
        )
        for c in calls
    ]
    return Summary("measured_stages", checks, time.perf_counter() - t0, assess(calls, bounds or MEASURED_ACCEPTANCE))


SIZING_GPUS: tuple[str, ...] = ("h100-sxm", "rtx4090")
"""The GPUs :func:`verify_sizing` sizes every preset on (a Hopper part and a consumer card)."""


def verify_sizing(models: Iterable[str] | None = None) -> Summary:
    """Closed-form sizing (``report --gpu``) against the traced one (``--traced``) for every preset at
    its default workload, under diffusers and the original runtime (where the pipeline runs on it), on
    :data:`SIZING_GPUS`: the
    same seconds per stage (relative error <= 1e-9: the sums run in another order) and the same
    peaks (exact); over every preset also one rank of the :data:`SIZING_LAYOUTS` on an H100 SXM."""
    from hybrid.sizing import CallTraces, size_on_gpu

    t0 = time.perf_counter()
    traces = CallTraces()
    checks = []
    for model in sorted(PRESETS) if models is None else models:
        runs = get_preset(model).pipeline_def.runtimes  # None: every runtime runs the pipeline
        for runtime in (Runtime(), Runtime("wan", offload=True)):
            if runs is not None and runtime.name not in runs:
                continue
            w = Workload.of(model=model, runtime=runtime)
            for gpu in SIZING_GPUS:
                closed = size_on_gpu(w, gpu)
                traced = size_on_gpu(w, gpu, traced=traces(w))
                checks.append(_same_sizing(f"{model} {runtime.name} {gpu}", closed, traced))
    for model, runtime, d in SIZING_LAYOUTS if models is None else ():
        w = Workload.of(model=model, runtime=runtime)
        closed = size_on_gpu(w, "h100-sxm", deployment=d)
        traced = size_on_gpu(w, "h100-sxm", deployment=d, use_trace=True)
        checks.append(_same_sizing(f"{model} {runtime.name} h100-sxm {d.describe()}", closed, traced))
    return Summary("sizing", checks, time.perf_counter() - t0)


SIZING_LAYOUTS: tuple[tuple[str, Runtime, Deployment], ...] = (
    ("wan2.1-t2v-14b", DIFFUSERS, Deployment(gpus=8, ulysses=8)),
    ("wan2.1-t2v-14b", DIFFUSERS, Deployment(gpus=8, ulysses=4, ring=2)),
    ("wan2.2-t2v-a14b", Runtime("wan"), Deployment(gpus=8, ulysses=8, fsdp=("dit", "text_encoder"))),
)
"""Multi-GPU layouts :func:`verify_sizing` also sizes both ways (one rank; collectives included)."""


def _same_sizing(name: str, closed: GpuSizing, traced: GpuSizing) -> Check:
    errors = {n: _rel_float(closed.stages[n].seconds, s.seconds) for n, s in traced.stages.items()}
    peaks = all(
        (c.peak_memory_bytes, c.activation_bytes, c.activation_bytes_materialized, c.comm_bytes_per_rank)
        == (s.peak_memory_bytes, s.activation_bytes, s.activation_bytes_materialized, s.comm_bytes_per_rank)
        for c, s in zip(closed.stages.values(), traced.stages.values(), strict=True)
    )
    worst = max(errors.values())
    return Check(
        name=name,
        passed=worst <= SECONDS_RTOL and peaks,
        detail={
            "relative_error": worst,
            "exact": peaks and worst <= SECONDS_RTOL,
            "seconds_relative_error": errors,
            "peaks_equal": peaks,
        },
    )


SECONDS_RTOL = 1e-9
"""Closed-form vs traced seconds: the same rows summed in another order."""


PARALLEL_LAYOUTS: tuple[tuple[str, dict[str, Any], tuple[tuple[int, int], ...]], ...] = (
    ("wan2.1-t2v-14b", {}, ((8, 1), (4, 2), (1, 8), (2, 1))),
    ("wan2.1-t2v-14b", {"width": 256, "height": 128, "frames": 17, "batch": 2}, ((2, 1), (4, 1), (1, 2), (2, 2))),
    ("wan2.1-t2v-1.3b", {"width": 256, "height": 128, "frames": 17, "text_len": 16}, ((4, 1), (2, 2), (1, 4))),
    ("wan2.1-i2v-14b-480p", {"width": 256, "height": 128, "frames": 17, "batch": 2}, ((4, 1), (2, 2))),
    ("wan2.2-ti2v-5b", {}, ((8, 1),)),
    ("wan2.2-ti2v-5b", {"width": 256, "height": 128, "frames": 17, "batch": 2}, ((2, 1), (1, 2), (2, 2))),
    ("wan2.2-t2v-a14b", {}, ((8, 1), (4, 1))),
)
"""Sequence-parallel layouts ``(ulysses, ring)`` checked against the tracer: P in {2, 4, 8}, full
defaults and small shapes, batch 1 and 2, text, image and per-token-timestep transformers."""


@functools.lru_cache(maxsize=64)
def _parallel_trace(stage: str, workload: Workload, deployment: Deployment) -> StageTrace:
    from hybrid.trace import trace_stage

    return trace_stage(stage, workload, deployment=deployment)


def check_parallel(stage: str, workload: Workload, deployment: Deployment) -> Check:
    """One rank's closed-form rows (compute and collectives: op, bytes sent and received, calls) and
    activation peaks (fused and materialised) of one call of a transformer ``stage`` against
    diffusers' context parallelism traced in a fake process group (:mod:`hybrid.trace.parallel`):
    every (module, op) and both peaks equal, exactly."""
    spec, call = workload.spec, workload.shape(deployment)
    traced = _parallel_trace(stage, workload, deployment)
    sd = spec.pipeline_def.stage(stage)
    groups = sd.closed_rows(spec, call) or []
    analytic, table = aggregate_costs(expand(groups)), aggregate_costs(traced.rows)
    mismatches = _mismatches(analytic, table)
    comm = {k: v for k, v in table.items() if v[0] == "collective"}
    peaks = {
        "peak_activation_bytes": {"analytic": sd.closed_peak(spec, call), "traced": traced.peak_activation_bytes},
        "peak_activation_bytes_materialized": {
            "analytic": sd.closed_peak(spec, call, materialized=True),
            "traced": traced.peak_activation_bytes_materialized,
        },
    }
    same_peaks = all(p["analytic"] == p["traced"] for p in peaks.values())
    w, d = workload, deployment
    return Check(
        name=f"{spec.name} {w.width}x{w.height}x{w.frames} b{w.batch} ulysses {d.ulysses} ring {d.ring} {stage}",
        passed=bool(groups) and not mismatches and same_peaks and not traced.unsupported_ops,
        detail={
            **peaks,
            "model": spec.name,
            "stage": stage,
            "workload": w.to_dict(),
            "deployment": d.to_dict(),
            "ops_compared": len(set(analytic) | set(table)),
            "collectives": sorted({k[2] for k in comm}),
            "comm_bytes_per_rank": sum(v[2] + v[3] for v in comm.values()),
            "mismatches": mismatches[:20],
            "unsupported_ops": traced.unsupported_ops,
        },
    )


def verify_parallel() -> Summary:
    """:func:`check_parallel` over :data:`PARALLEL_LAYOUTS`, every transformer stage."""
    t0 = time.perf_counter()
    checks = []
    for model, shape, layouts in PARALLEL_LAYOUTS:
        w = reference_workload(model, shape) if shape else Workload.of(model=model)
        spec = w.spec
        for ulysses, ring in layouts:
            d = Deployment(gpus=ulysses * ring, ulysses=ulysses, ring=ring)
            for sd in spec.pipeline_def.stages:
                if sd.component.startswith("transformer"):
                    checks.append(check_parallel(sd.name, w, d))
    return Summary("sequence_parallel", checks, time.perf_counter() - t0)


def _rel_float(a: float, b: float) -> float:
    return abs(a - b) / abs(b) if b else abs(a)


def error_summary(checks: Sequence[Check], key: str) -> tuple[float, float]:
    """``(mean, max)`` of ``|detail[key]|`` over the ``checks`` that have it (not ``None``)."""
    errors = [abs(c.detail[key]) for c in checks if c.detail[key] is not None]
    return sum(errors) / len(errors), max(errors)


def _stage_verification(stage: str) -> Callable[[], Summary]:
    return lambda: verify_stage(stage)


VERIFICATIONS: dict[str, Callable[[], Summary]] = {
    **{stage: _stage_verification(stage) for stage in STAGE_NAMES if presets_with(stage)},
    "pipeline_invariants": verify_invariants,
    "flop_counter": verify_flop_counter,
    "public_timings": verify_public_timings,
    "measured_stages": verify_measured_stages,
    "optimisations": verify_optimisations,
    "sizing": verify_sizing,
    "sequence_parallel": verify_parallel,
}
"""The verifications ``wanmeter verify`` runs (device checks are added with ``--device``)."""


def require_device(device: str) -> None:
    """:class:`~hybrid.errors.InputError` unless torch can run on ``device`` here."""
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InputError("device: cuda is not available on this machine; valid here: cpu")


def selected(only: str | None = None, device: str | None = None) -> list[Callable[[], Summary]]:
    """The verifications ``wanmeter verify`` runs: ``only`` (a name of :data:`VERIFICATIONS`) or
    all of them, then with ``device`` tiny real modules on it (:func:`verify_device`); ``only``
    ``device`` runs that check alone (a lent GPU's minutes go to it)."""
    if only == "device" and not device:
        raise InputError("only: device needs --device (cpu or cuda)")
    names = [] if only == "device" else [only] if only else list(VERIFICATIONS)
    unknown = [n for n in names if n not in VERIFICATIONS]
    if unknown:
        raise InputError(f"only: unknown verification {unknown[0]!r}; valid: {', '.join([*VERIFICATIONS, 'device'])}")
    runs = [VERIFICATIONS[n] for n in names]
    if device:
        require_device(device)
        runs.append(functools.partial(verify_device, device))
    return runs
