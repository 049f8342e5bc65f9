"""The JSON Schemas of wanmeter's documents, shipped in the package (``hybrid/data/*.schema.json``):
``wanmeter.report/1``, ``wanmeter.trace/1``, ``wanmeter.plan/1``, ``wanmeter.sweep/1``, ``wanmeter.fleet/1``.

Every document wanmeter writes validates against its schema (tests check it), and every document it
reads back (``wanmeter diff``) is validated before use: a count is a non-negative integer of any size
(a fractional or infinite value is refused, never truncated), shapes are arrays of integers, and so
on; a count written as ``1e300`` or ``4.0`` is refused too (JSON Schema would take an integral
float as an integer). A failure is one line naming the file, the place in the document and what was expected.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from hybrid.errors import InputError

SCHEMAS: dict[str, str] = {
    "wanmeter.report/1": "report",
    "wanmeter.trace/1": "trace",
    "wanmeter.plan/1": "plan",
    "wanmeter.sweep/1": "sweep",
    "wanmeter.fleet/1": "fleet",
}
"""Document schema name -> its file ``hybrid/data/<name>.schema.json``."""


@cache
def schema(name: str) -> dict[str, Any]:
    """The JSON Schema of the document kind ``name`` (``wanmeter.report/1``, ...)."""
    if name not in SCHEMAS:
        raise InputError(f"schema: unknown document schema {name[:40]!r}; valid: {', '.join(SCHEMAS)}")
    text = resources.files("hybrid").joinpath(f"data/{SCHEMAS[name]}.schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _validator() -> Any:
    """Draft 2020-12 with ``integer`` meaning a JSON number written as an integer: the standard
    also counts ``1e300`` and ``4.0`` (integral floats), which wanmeter never writes for a count and
    which would stand for a rounded figure, not an exact one."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    )
    return jsonschema.validators.extend(base, type_checker=checker)  # type: ignore[no-untyped-call]


def problem(doc: Any) -> str | None:
    """``None`` if ``doc`` is a valid wanmeter document of the schema it names, else the first
    problem in one line: where (``$.stages.vae_decode.flops``) and what."""
    import jsonschema

    if not isinstance(doc, dict):
        return f"a wanmeter document is a JSON object, got {type(doc).__name__}"
    name = doc.get("schema")
    if not isinstance(name, str) or name not in SCHEMAS:
        return f"unknown schema {str(name)[:40]!r}; expected one of {', '.join(SCHEMAS)}"
    validator = _validator()(schema(name))
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is None:
        return None
    message = error.message if len(error.message) <= 120 else error.message[:117] + "..."
    return f"{error.json_path}: {message}"
