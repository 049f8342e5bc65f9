"""Regression diff of two reports (``wanmeter.report/1``) or two traces (``wanmeter.trace/1``).

Deltas per stage, per component (reports) or per op and per module group (traces, layer indices
folded: ``blocks.*.attn1.to_q``), ops added or removed, and the workload and version differences.
A change is *beyond tolerance* when ``|new - old| > rtol * |old|`` (any change when ``old`` is 0),
or when an entry is added or removed.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from hybrid.errors import InputError
from hybrid.files import DOCUMENT_BYTES, read_json
from hybrid.schemas import problem

KINDS = {"wanmeter.report/1": "report", "wanmeter.trace/1": "trace"}
DIFF_SCHEMA = "wanmeter.diff/1"


class DiffInputError(InputError):
    """A diff input cannot be used (missing, malformed, unknown schema, mismatched kinds)."""


def load_document(path: Path) -> tuple[str, dict[str, Any]]:
    """``(kind, document)`` of a report or trace JSON file; :class:`DiffInputError` otherwise."""
    try:
        doc = read_json(path, "report or trace", DOCUMENT_BYTES)
    except InputError as e:
        raise DiffInputError(str(e)) from None
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if not isinstance(schema, str) or schema not in KINDS:
        raise DiffInputError(f"{path}: unknown schema {str(schema)[:40]!r}; expected one of {', '.join(KINDS)}")
    wrong = problem(doc)
    if wrong is not None:
        raise DiffInputError(f"{path}: not a valid {schema} document: {wrong}")
    return KINDS[schema], doc


@dataclass(frozen=True)
class Delta:
    """One compared quantity."""

    name: str
    old: int | None
    new: int | None

    @property
    def change(self) -> int:
        return (self.new or 0) - (self.old or 0)

    @property
    def ratio(self) -> Fraction | None:
        """``(new - old) / old`` exactly; ``None`` when ``old`` is 0 or absent and ``new`` differs."""
        if self.change == 0:
            return Fraction(0)
        if not self.old:
            return None
        return Fraction(self.change, self.old)

    @property
    def relative(self) -> float | None:
        """:attr:`ratio` as the nearest float; a ratio beyond a float64 (counts of any size, e.g. a
        report at 4e200 frames against one at 81) as the largest float of its sign, so that JSON
        stays JSON (the exact figures are ``old``, ``new`` and ``change``)."""
        ratio = self.ratio
        if ratio is None:
            return None
        try:
            return float(ratio)
        except OverflowError:
            return sys.float_info.max if ratio > 0 else -sys.float_info.max

    def beyond(self, rtol: float) -> bool:
        if self.old is None or self.new is None:
            return True
        return abs(self.change) > Fraction(rtol) * abs(self.old) if self.old else self.change != 0  # exact: any int

    def to_dict(self, rtol: float) -> dict[str, Any]:
        return {
            "name": self.name,
            "old": self.old,
            "new": self.new,
            "change": self.change,
            "relative": self.relative,
            "beyond_tolerance": self.beyond(rtol),
        }


@dataclass
class DiffResult:
    """All deltas between two documents of the same kind."""

    kind: str
    old: str
    new: str
    rtol: float
    context: list[str] = field(default_factory=list)
    sections: dict[str, list[Delta]] = field(default_factory=dict)

    @property
    def beyond(self) -> list[tuple[str, Delta]]:
        """``(section, delta)`` beyond tolerance."""
        return [(s, d) for s, ds in self.sections.items() for d in ds if d.beyond(self.rtol)]

    @property
    def within_tolerance(self) -> bool:
        return not self.beyond

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": DIFF_SCHEMA,
            "kind": self.kind,
            "old": self.old,
            "new": self.new,
            "rtol": self.rtol,
            "within_tolerance": self.within_tolerance,
            "context": self.context,
            "sections": {s: [d.to_dict(self.rtol) for d in ds] for s, ds in self.sections.items()},
        }


def _deltas(old: dict[str, int], new: dict[str, int]) -> list[Delta]:
    return [Delta(k, old.get(k), new.get(k)) for k in sorted(set(old) | set(new))]


def _context(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    lines = []
    if old.get("model") != new.get("model"):
        lines.append(f"model: {old.get('model')} -> {new.get('model')}")
    wo, wn = old.get("workload", {}), new.get("workload", {})
    for k in sorted(set(wo) | set(wn)):
        if wo.get(k) != wn.get(k):
            lines.append(f"workload {k}: {wo.get(k)} -> {wn.get(k)}")
    vo, vn = old.get("versions", {}), new.get("versions", {})
    for k in sorted(set(vo) | set(vn)):
        if vo.get(k) != vn.get(k):
            lines.append(f"version {k}: {vo.get(k)} -> {vn.get(k)}")
    return lines


_INDEX = re.compile(r"\.\d+(?=\.|$)")


def module_group(module: str) -> str:
    """Fold layer indices: ``blocks.12.attn1.to_q -> blocks.*.attn1.to_q``; ``""`` -> ``(root)``."""
    return _INDEX.sub(".*", module) if module else "(root)"


def _trace_tables(doc: dict[str, Any]) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    stages: dict[str, int] = {}
    ops: dict[str, int] = {}
    groups: dict[str, int] = {}
    for name, st in doc["stages"].items():
        stages[f"{name} flops/call"] = int(st["flops"])
        stages[f"{name} calls/job"] = int(st.get("calls", 1))
        read = written = 0
        for r in st.get("rows", []):
            key = f"{name} {r['op']}"
            ops[key] = ops.get(key, 0) + int(r["flops"])
            g = f"{name} {module_group(r['module'])} {r['op']}"
            groups[g] = groups.get(g, 0) + int(r["flops"])
            read += int(r.get("bytes_read", 0))
            written += int(r.get("bytes_written", 0))
        stages[f"{name} bytes_read/call"] = read
        stages[f"{name} bytes_written/call"] = written
    return stages, ops, groups


def diff_documents(
    old: tuple[str, dict[str, Any]],
    new: tuple[str, dict[str, Any]],
    rtol: float = 0.0,
    names: tuple[str, str] = ("", ""),
) -> DiffResult:
    """Compare two loaded documents of the same kind."""
    (k_old, d_old), (k_new, d_new) = old, new
    if k_old != k_new:
        raise DiffInputError(f"cannot compare a {k_old} ({names[0]}) with a {k_new} ({names[1]})")
    _check_rtol(rtol)
    result = DiffResult(k_old, names[0], names[1], rtol, _context(d_old, d_new))
    if k_old == "report":
        result.sections["total"] = [Delta("total flops", int(d_old["total"]["flops"]), int(d_new["total"]["flops"]))]
        result.sections["stages"] = _deltas(
            {n: int(s["flops"]) for n, s in d_old["stages"].items()},
            {n: int(s["flops"]) for n, s in d_new["stages"].items()},
        )

        def comps(d: dict[str, Any]) -> dict[str, int]:
            return {f"{n} {c}": int(f) for n, s in d["stages"].items() for c, f in s.get("components", {}).items()}

        result.sections["components"] = _deltas(comps(d_old), comps(d_new))
    else:
        s_old, o_old, g_old = _trace_tables(d_old)
        s_new, o_new, g_new = _trace_tables(d_new)
        result.sections["stages"] = _deltas(s_old, s_new)
        result.sections["ops"] = _deltas(o_old, o_new)
        result.sections["module groups"] = _deltas(g_old, g_new)
    return result


def _check_rtol(rtol: float) -> None:
    if not (isinstance(rtol, (int, float)) and math.isfinite(rtol) and rtol >= 0):
        raise DiffInputError(f"rtol: {rtol!r} is invalid; valid: a finite number >= 0")


def diff_files(old: Path, new: Path, rtol: float = 0.0) -> DiffResult:
    """Load and compare two files."""
    _check_rtol(rtol)
    return diff_documents(load_document(old), load_document(new), rtol, (str(old), str(new)))
