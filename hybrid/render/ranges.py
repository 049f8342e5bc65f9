"""How sweep and plan tables write a time with its range (:mod:`hybrid.ranges`), as ``report --gpu``
writes its own: ``1,163.7 (897.3-1,405.9)``, and a note of the evidence under the table."""

from __future__ import annotations

from collections.abc import Mapping


def seconds_with_range(seconds: float, rng: Mapping[str, float] | None) -> str:
    """``seconds`` and, where there is one, its ``{"low", "high"}`` range in brackets."""
    text = f"{seconds:,.1f}"
    return text if rng is None else f"{text} ({rng['low']:,.1f}-{rng['high']:,.1f})"


def range_note(evidence: str, rows: str = "") -> str:
    """The line under a table that says what its ranges rest on (``evidence``: a band's basis, or
    ``"no range: ..."``), for ``rows`` (e.g. ``"one GPU"``) where a table's rows differ."""
    where = f" on {rows}" if rows else ""
    if evidence.startswith("no range"):
        return f"seconds{where}: {evidence}"
    return (
        f"seconds (low-high){where}: the range published runs fall in around the model's time, from its error "
        f"on {evidence}"
    )
