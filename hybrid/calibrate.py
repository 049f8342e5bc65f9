"""Calibration runs: scaling laws fitted on traced small shapes, cross-checked, and golden tables.

For every stage and report component, :func:`fit_laws` traces the real modules (meta device) on
:data:`GRID`, a set of small workloads, and fits a polynomial exactly (:mod:`hybrid.fit`) in the
stage's natural variables (each stage's basis is pipeline data, :attr:`hybrid.pipelines.StageDef.basis`):

* ``text_encoder``: ``B`` (batch), ``L`` (text tokens): basis ``B*L, B*L^2`` (``B`` where the
  pipeline fixes ``L``);
* ``diffusion_core``: ``B``, ``N`` (DiT tokens per sample), ``L``: basis ``B, B*N, B*L, B*N^2,
  B*N*L`` (self-attention is ``B*N^2``, cross-attention ``B*N*L``; image-to-video fixes ``L``:
  ``B, B*N, B*N^2``);
* ``vae_decode``: ``B``, ``T`` (latent frames), ``P`` (latent pixels ``h*w``): basis ``B*P,
  B*T*P, B*P^2, B*T*P^2`` (the first decoder chunk differs from later ones; attention is ``P^2``);
* ``vae_encode``: ``T``, ``P`` (one condition video, batch 1), VACE also ``R`` (reference images):
  ``P, T*P, P^2, T*P^2 [, R*P, R*P^2]``; ``image_encoder``: a constant (224x224 images).

:func:`cross_check` evaluates the laws at held-out workloads (each model's full default and a far
larger one) against the analytic model and the tracer. Laws are committed under
``calibration/laws/`` with the library versions and the date; golden per-op tables of the tracer
under ``calibration/golden/`` catch any op that an upgrade of torch/diffusers/transformers changes.

:func:`calibrate` is the run of ``wanmeter calibrate`` (every model's laws, then the golden tables);
:func:`time_model` the run of ``wanmeter calibrate-time`` (:mod:`hybrid.measure`).
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybrid.analytic import components_per_call
from hybrid.errors import InputError
from hybrid.files import CALIBRATION_DIR, read_json, write_atomic
from hybrid.fit import FitError, Monomial, evaluate, fit_exact, format_coefficient, parse_monomial
from hybrid.pipelines import VARIABLES
from hybrid.presets import PRESETS, ModelSpec, get_preset
from hybrid.rows import ROW_COLUMNS, CostRow
from hybrid.versions import library_versions
from hybrid.workload import Workload

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.measure import Calibration

LAWS_SCHEMA = "wanmeter.laws/1"
GOLDEN_SCHEMA = "wanmeter.golden/1"
LAWS_DIR = CALIBRATION_DIR / "laws"
GOLDEN_DIR = CALIBRATION_DIR / "golden"
RTOL = 1e-9

GRID: tuple[dict[str, Any], ...] = (
    {"width": 32, "height": 32, "frames": 1, "batch": 1, "text_len": 1},
    {"width": 64, "height": 32, "frames": 1, "batch": 1, "text_len": 3},
    {"width": 32, "height": 32, "frames": 5, "batch": 2, "text_len": 2},
    {"width": 48, "height": 64, "frames": 9, "batch": 1, "text_len": 5},
    {"width": 32, "height": 48, "frames": 1, "batch": 3, "text_len": 4},
    {"width": 64, "height": 64, "frames": 5, "batch": 2, "text_len": 7},
    {"width": 96, "height": 32, "frames": 13, "batch": 1, "text_len": 2},
    {"width": 48, "height": 32, "frames": 1, "batch": 2, "text_len": 9},
)
"""Small workloads the laws are fitted on (seconds to trace at full model width)."""

LAWFUL: tuple[str, ...] = tuple(m for m in sorted(PRESETS) if not get_preset(m).pipeline_def.no_laws_reason)
"""The presets whose laws are fitted (:attr:`hybrid.pipelines.Pipeline.no_laws_reason` says why the others are not)."""

LARGE: dict[str, Any] = {"width": 1920, "height": 1088, "frames": 161, "batch": 2, "text_len": 512}
"""A held-out workload far beyond the grid (and beyond what the models were trained for)."""

Laws = dict[str, dict[str, dict[Monomial, Fraction]]]
"""``{stage: {component: {monomial: coefficient}}}``."""


def variables(stage: str, spec: ModelSpec, workload: Workload) -> dict[str, int]:
    """The natural variables of ``stage`` for ``workload``."""
    return spec.pipeline_def.stage(stage).variables(workload.shape())


def bases(spec: ModelSpec) -> dict[str, tuple[Monomial, ...]]:
    """The law basis of each stage of ``spec``'s pipeline the tracer builds (a law is fitted on traced shapes), but a
    shorter last segment's (:attr:`~hybrid.pipelines.StageDef.at`): its segment's stage at another shape."""
    return {s.name: s.basis for s in spec.pipeline_def.stages if s.trace_key and s.at is None}


def used_variables(spec: ModelSpec) -> dict[str, str]:
    """:data:`~hybrid.pipelines.VARIABLES` that ``spec``'s laws use."""
    used = {v for b in bases(spec).values() for m in b for v in parse_monomial(m)}
    t, s = spec.vae.scale_factor_temporal, spec.vae.scale_factor_spatial
    return {v: doc.format(t=t, s=s) for v, doc in VARIABLES.items() if v in used}


def traced_components(stage: str, spec: ModelSpec, workload: Workload) -> dict[str, int]:
    """FLOPs of one traced call of ``stage`` by report component."""
    from hybrid.trace import trace_stage

    sd = spec.pipeline_def.stage(stage)
    out: dict[str, int] = {}
    for r in trace_stage(stage, workload).rows:
        if r.flops:
            name = sd.component_of_row(r)
            out[name] = out.get(name, 0) + r.flops
    return out


def grid_shapes(spec: ModelSpec, grid: Iterable[Mapping[str, Any]] = GRID) -> list[dict[str, Any]]:
    """The fit grid within ``spec``'s pipeline's constraints (:meth:`~hybrid.pipelines.Pipeline.constrain`:
    a fixed text length, batch 1; VACE's reference images cycle 0, 1, 2 so that their terms are determined)."""
    return [spec.constrain(dict(g), i % 3) for i, g in enumerate(grid)]


def grid_workloads(spec: ModelSpec, grid: Iterable[Mapping[str, Any]] = GRID) -> list[Workload]:
    """The fit grid as workloads of ``spec``'s pipeline."""
    return [Workload.of(spec, **g) for g in grid_shapes(spec, grid)]


def fit_laws(spec: ModelSpec, grid: Iterable[Mapping[str, Any]] = GRID) -> Laws:
    """Trace every stage on ``grid`` and fit each component's law exactly (:class:`FitError` if the
    grid does not determine it)."""
    workloads = grid_workloads(spec, grid)
    laws: Laws = {}
    for stage, basis in bases(spec).items():
        points = [variables(stage, spec, w) for w in workloads]
        traced = [traced_components(stage, spec, w) for w in workloads]
        names = sorted({c for t in traced for c in t})
        laws[stage] = {}
        for name in names:
            try:
                laws[stage][name] = fit_exact(basis, points, [t.get(name, 0) for t in traced])
            except FitError as e:
                raise FitError(f"{spec.name} {stage}/{name}: {e}") from None
    return laws


def evaluate_stage(laws: Laws, stage: str, values: Mapping[str, int]) -> dict[str, int]:
    """Per-component FLOPs of one call predicted by the laws (exact integers expected)."""
    out: dict[str, int] = {}
    for name, law in laws[stage].items():
        v = evaluate(law, values)
        out[name] = int(v) if v.denominator == 1 else round(v)  # a non-integer shows up as a mismatch
    return out


@dataclass
class CrossCheck:
    """Law vs analytic vs traced for one stage at one held-out workload."""

    stage: str
    workload: Workload
    law: int
    analytic: int
    traced: int | None

    @property
    def relative_error(self) -> float:
        refs = [self.analytic] + ([self.traced] if self.traced is not None else [])
        return max(abs(self.law - r) / max(abs(r), 1) for r in refs)

    @property
    def passed(self) -> bool:
        return self.relative_error <= RTOL

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "workload": self.workload.to_dict(),
            "law_flops": self.law,
            "analytic_flops": self.analytic,
            "traced_flops": self.traced,
            "relative_error": self.relative_error,
            "pass": self.passed,
        }


def held_out(model: str) -> list[Workload]:
    """The model's full default workload and :data:`LARGE` (within the pipeline's constraints, with
    two VACE reference images)."""
    return [Workload.of(model=model), Workload.of(model=model, **get_preset(model).constrain(LARGE, 2))]


def cross_check(laws: Laws, spec: ModelSpec, workloads: Iterable[Workload], trace: bool = True) -> list[CrossCheck]:
    """Each stage's law total at ``workloads`` against the analytic model and (optionally) the tracer."""
    out = []
    for w in workloads:
        for stage in bases(spec):
            law = sum(evaluate_stage(laws, stage, variables(stage, spec, w)).values())
            analytic = sum(components_per_call(stage, w).values())
            traced = sum(traced_components(stage, spec, w).values()) if trace else None
            out.append(CrossCheck(stage, w, law, analytic, traced))
    return out


def laws_document(spec: ModelSpec, laws: Laws, checks: Iterable[CrossCheck] = ()) -> dict[str, Any]:
    """The committed ``wanmeter.laws/1`` JSON document."""
    return {
        "schema": LAWS_SCHEMA,
        "model": spec.name,
        "date": _dt.date.today().isoformat(),
        "versions": library_versions(),
        "variables": used_variables(spec),
        "basis": {s: list(b) for s, b in bases(spec).items()},
        "grid": grid_shapes(spec),
        "laws": {
            stage: {c: {m: format_coefficient(v) for m, v in law.items()} for c, law in comps.items()}
            for stage, comps in laws.items()
        },
        "cross_check": [c.to_dict() for c in checks],
    }


def load_laws(path: Path) -> tuple[dict[str, Any], Laws]:
    """Read a laws file: ``(document, laws)``; :class:`~hybrid.errors.InputError` naming the file if
    missing or malformed."""
    if not path.exists():
        raise InputError(f"{path}: no committed laws (run wanmeter calibrate)")
    doc = read_json(path, "laws file")
    try:
        if doc.get("schema") != LAWS_SCHEMA:
            raise InputError(f"schema is {doc.get('schema')!r}, expected {LAWS_SCHEMA!r}")
        laws: Laws = {
            stage: {c: {m: Fraction(v) for m, v in law.items()} for c, law in comps.items()}
            for stage, comps in doc["laws"].items()
        }
    except (KeyError, TypeError, AttributeError, ValueError, ZeroDivisionError) as e:
        raise InputError(f"{path}: malformed laws file ({e})") from None
    return doc, laws


def compare_laws(committed: Laws, fitted: Laws) -> list[str]:
    """Differences between two law sets, one line each (empty when identical)."""
    diffs = []
    for stage in sorted(set(committed) | set(fitted)):
        a, b = committed.get(stage, {}), fitted.get(stage, {})
        for comp in sorted(set(a) | set(b)):
            la, lb = a.get(comp), b.get(comp)
            if la is None or lb is None:
                diffs.append(f"{stage}/{comp}: {'added' if la is None else 'removed'} by the re-fit")
                continue
            for m in sorted(set(la) | set(lb)):
                ca, cb = la.get(m, Fraction(0)), lb.get(m, Fraction(0))
                if ca != cb:
                    diffs.append(
                        f"{stage}/{comp}: {m} committed {format_coefficient(ca)}, re-fit {format_coefficient(cb)}"
                    )
    return diffs


# --- golden per-op tables ---------------------------------------------------------------------

GOLDEN_WORKLOADS: dict[str, dict[str, Any]] = {
    "wan2.1-t2v-1.3b_128x64x5": {"model": "wan2.1-t2v-1.3b", "width": 128, "height": 64, "frames": 5, "text_len": 16},
    "wan2.1-t2v-14b_64x48x1_b2": {
        "model": "wan2.1-t2v-14b",
        "width": 64,
        "height": 48,
        "frames": 1,
        "batch": 2,
        "text_len": 7,
    },
    "wan2.1-i2v-14b-480p_64x48x5_b2": {
        "model": "wan2.1-i2v-14b-480p",
        "width": 64,
        "height": 48,
        "frames": 5,
        "batch": 2,
    },
    "wan2.1-flf2v-14b-720p_64x48x5": {"model": "wan2.1-flf2v-14b-720p", "width": 64, "height": 48, "frames": 5},
    "wan2.2-ti2v-5b_64x64x5": {"model": "wan2.2-ti2v-5b", "width": 64, "height": 64, "frames": 5, "text_len": 16},
    "wan2.2-i2v-a14b_64x48x5": {"model": "wan2.2-i2v-a14b", "width": 64, "height": 48, "frames": 5, "text_len": 16},
    "wan2.1-vace-1.3b_64x48x5_r1": {
        "model": "wan2.1-vace-1.3b",
        "width": 64,
        "height": 48,
        "frames": 5,
        "text_len": 16,
        "ref_images": 1,
    },
}
"""Reference workloads whose full traced tables are committed."""

GOLDEN_COLUMNS = ROW_COLUMNS


def _row_list(r: CostRow) -> list[Any]:
    d = r.to_dict()
    return [d[c] for c in GOLDEN_COLUMNS]


def golden_document(name: str) -> dict[str, Any]:
    """Trace a golden workload: all rows of all stages, with versions and date."""
    from hybrid.trace import trace

    w = Workload.of(**GOLDEN_WORKLOADS[name])
    result = trace(w)
    rows = sorted((_row_list(r) for r in result.rows), key=lambda x: json.dumps(x))
    return {
        "schema": GOLDEN_SCHEMA,
        "name": name,
        "date": _dt.date.today().isoformat(),
        "versions": library_versions(),
        "workload": w.to_dict(),
        "columns": list(GOLDEN_COLUMNS),
        "rows": rows,
    }


def dump_golden(doc: Mapping[str, Any]) -> str:
    """JSON with one row per line, so that a changed op is a one-line diff in review."""
    head = {k: v for k, v in doc.items() if k != "rows"}
    lines = json.dumps(head, indent=2)[:-2] + ',\n  "rows": [\n'
    lines += ",\n".join("    " + json.dumps(r) for r in doc["rows"])
    return lines + "\n  ]\n}\n"


def load_golden(path: Path) -> dict[str, Any]:
    """Read a committed golden table; :class:`~hybrid.errors.InputError` naming the file if malformed."""
    doc = read_json(path, "golden table")
    if not isinstance(doc, dict) or doc.get("schema") != GOLDEN_SCHEMA:
        raise InputError(f"{path}: not a {GOLDEN_SCHEMA} document")
    return doc


def compare_golden(committed: Mapping[str, Any], fresh: Mapping[str, Any]) -> list[str]:
    """Ops whose rows changed between a committed golden table and a fresh trace, one line each."""

    def by_op(doc: Mapping[str, Any]) -> dict[tuple[str, str, str], list[str]]:
        out: dict[tuple[str, str, str], list[str]] = {}
        for row in doc["rows"]:
            out.setdefault((row[0], row[1], row[2]), []).append(json.dumps(row))
        return {k: sorted(v) for k, v in out.items()}

    a, b = by_op(committed), by_op(fresh)
    lines = []
    for key in sorted(set(a) | set(b)):
        if key not in b:
            lines.append(f"removed: {key[0]} {key[1] or '(root)'} {key[2]}")
        elif key not in a:
            lines.append(f"added: {key[0]} {key[1] or '(root)'} {key[2]}")
        elif a[key] != b[key]:
            lines.append(f"changed: {key[0]} {key[1] or '(root)'} {key[2]}")
    return lines


# -- the runs of ``wanmeter calibrate`` and ``wanmeter calibrate-time`` --------------------------


@dataclass(frozen=True)
class LawsRun:
    """One model's laws: re-fitted, compared with the committed ones (``check``), cross-checked,
    and where they were written (``None`` under ``check``)."""

    model: str
    laws: Laws
    mismatches: list[str]
    checks: list[CrossCheck]
    written: Path | None

    @property
    def passed(self) -> bool:
        return not self.mismatches and all(c.passed for c in self.checks)


@dataclass(frozen=True)
class GoldenRun:
    """One golden table: the ops a fresh trace changed (``check``), or where it was rewritten."""

    name: str
    changed: list[str]
    written: Path | None

    @property
    def passed(self) -> bool:
        return not self.changed


def calibrate(
    model: str = "all",
    laws_dir: Path = LAWS_DIR,
    golden_dir: Path = GOLDEN_DIR,
    check: bool = False,
    golden: bool = False,
    progress: Callable[[str], None] = lambda line: None,
) -> Iterator[LawsRun | GoldenRun]:
    """Fit, cross-check and write the laws of ``model`` (a preset, or ``all``), one
    :class:`LawsRun` per model as it is done; then :class:`GoldenRun` per golden table, rewritten
    with ``golden``. With ``check``, nothing is written: the re-fit is compared with the committed
    laws (read before any work: a missing file is an :class:`~hybrid.errors.InputError`), the
    committed laws are cross-checked, and the golden tables are compared with fresh traces."""
    if model != "all" and get_preset(model).pipeline_def.no_laws_reason:
        raise InputError(
            f"model: {model} has no fitted laws ({get_preset(model).pipeline_def.no_laws_reason}); valid: "
            f"{', '.join(LAWFUL)}, all"
        )
    models = LAWFUL if model == "all" else (get_preset(model).name,)
    for name in models:
        spec = get_preset(name)
        path = laws_dir / f"{name}.json"
        committed = load_laws(path)[1] if check else None
        progress(f"{name}: fitting laws on {len(GRID)} traced grid workloads ...")
        laws = fit_laws(spec)
        mismatches = compare_laws(committed, laws) if committed is not None else []
        workloads = held_out(name)
        progress(f"{name}: cross-checking at the default workload and {workloads[-1].to_dict()} ...")
        checks = cross_check(committed or laws, spec, workloads)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(laws_document(spec, laws, checks), indent=2) + "\n", "laws")
        yield LawsRun(name, laws, mismatches, checks, None if check else path)
    for table in GOLDEN_WORKLOADS:
        path = golden_dir / f"{table}.json"
        if golden:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, dump_golden(golden_document(table)), "golden")
            yield GoldenRun(table, [], path)
        elif check:
            yield GoldenRun(table, compare_golden(load_golden(path), golden_document(table)), None)


def time_model(
    out_dir: Path,
    device: str = "cpu",
    dtype: str = "float32",
    gpu: str | None = None,
    model: str = "small",
    scale: int = 1,
    progress: Callable[[str], None] = lambda line: None,
) -> tuple[Calibration, Path]:
    """Time op classes and stages on ``device`` (:func:`hybrid.measure.calibrate_time`), fit the
    time model and write it to ``out_dir/<gpu or device>.json``: ``(calibration, path)``. The
    device, the GPU's name and the model are checked before any work."""
    from hybrid import measure
    from hybrid.hardware import get_gpu
    from hybrid.verify import require_device

    require_device(device)
    if gpu is not None:
        get_gpu(gpu)
    spec, fit, held = measure.calibration_setup(model)
    progress(f"calibrating the time model on {device} ({dtype}, {spec.name} modules) ...")
    cal = measure.calibrate_time(
        device=device, dtype=dtype, gpu=gpu, spec=spec, scale=scale, fit_workloads=fit, held_out=held
    )
    path = out_dir / f"{cal.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(cal.to_dict(), indent=2) + "\n", "out-dir")
    return cal, path
