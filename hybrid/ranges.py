"""The range around each predicted time of a sweep or a plan, as ``report --gpu`` puts one around its
own: the error band of the published runs of the same kind (:func:`hybrid.accuracy.public_band`
of :func:`hybrid.accuracy.kind_of`: GPU class, runtime, one GPU or several), looked up once per kind
of run (a 10,000-row sweep is one kind; a plan two), not once per row.

A sizing takes the range in :attr:`~hybrid.sizing.GpuSizing.seconds_range` exactly as
:func:`hybrid.accuracy.with_range` writes a report's: ``low`` and ``high`` from
:meth:`~hybrid.accuracy.Band.seconds`, then the band's own fields (``error_low``, ``error_high``,
``runs``, ``basis``). A kind with no band keeps ``None`` there, and :func:`range_evidence` says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from hybrid import accuracy
from hybrid.errors import InputError
from hybrid.memo import memoised
from hybrid.prices import Price, cost_of
from hybrid.sizing import GpuSizing


@dataclass(frozen=True)
class Evidence:
    """What the ranges of one kind of run rest on."""

    band: accuracy.Band | None
    said: str
    """The band's basis (``"32 published runs (data-centre GPUs, one GPU)"``), or ``"no range: "``
    and why there is none."""


@memoised(maxsize=64)
def evidence(kind: tuple[str, str, str]) -> Evidence:
    """The :class:`Evidence` of ``kind`` (:func:`hybrid.accuracy.public_band`), memoised per kind:
    none where the public set cannot be read or not even every run together makes
    :data:`hybrid.accuracy.MIN_EVIDENCE` runs."""
    try:
        band = accuracy.public_band(kind)
    except (OSError, InputError, KeyError, ValueError) as e:  # as accuracy.with_range: no range, the sizing holds
        return Evidence(None, f"no range: the published runs could not be read ({str(e)[:120]})")
    if band is None:
        return Evidence(
            None,
            f"no range: fewer than {accuracy.MIN_EVIDENCE} published runs of this kind ({', '.join(kind)}), "
            "or of any coarser one, to rest it on",
        )
    return Evidence(band, band.basis)


def evidence_of(sizing: GpuSizing) -> Evidence:
    """The :class:`Evidence` of the kind of run ``sizing`` is."""
    return evidence(accuracy.kind_of(sizing.gpu, sizing.runtime.name, sizing.deployment.gpus))


def _applied(band: accuracy.Band | None, seconds: float) -> dict[str, float] | None:
    if band is None:
        return None
    low, high = band.seconds(seconds)
    return {"low": low, "high": high} if math.isfinite(high) else None


def range_of(sizing: GpuSizing, seconds: float) -> dict[str, float] | None:
    """``{"low", "high"}``: the band of ``sizing``'s kind applied to ``seconds``, one of its whole-job
    figures (its seconds, or its GPU-seconds); ``None`` where its kind has no band or the high end is
    beyond a float."""
    return _applied(evidence_of(sizing).band, seconds)


def with_range(sizing: GpuSizing) -> GpuSizing:
    """``sizing`` with its ``seconds_range`` as :func:`hybrid.accuracy.with_range` sets a report's
    (:func:`range_of` its seconds, then the band's fields); unchanged where there is none."""
    band = evidence_of(sizing).band
    r = _applied(band, sizing.seconds)
    if r is None or band is None:
        return sizing
    return replace(sizing, seconds_range={**r, **band.to_dict()})


def with_cost(sizing: GpuSizing, price: Price | None, videos: int) -> GpuSizing:
    """``sizing`` with its dollars per video at ``price`` (unchanged without one): its GPU-seconds, and their
    range where its seconds have one (:func:`range_of`) (:func:`hybrid.prices.cost_of`)."""
    if price is None:
        return sizing
    rng = range_of(sizing, sizing.gpu_seconds) if sizing.seconds_range is not None else None
    return replace(sizing, cost=cost_of(sizing.gpu_seconds, rng, price, videos))


OPTIMISED_NO_RANGE = "no range: an optimised job (the published runs the ranges rest on are baselines)"
"""Why an optimised job's seconds carry no range (``--optimise``: ``verify --only optimisations`` checks them)."""


def range_evidence(sizing: GpuSizing, optimised: bool = False) -> str:
    """What the range of ``sizing`` rests on, or why it has none (``optimised``: an optimised job's)."""
    if optimised:
        return OPTIMISED_NO_RANGE
    if sizing.seconds_range is not None:
        return str(sizing.seconds_range["basis"])
    said = evidence_of(sizing).said
    return said if said.startswith("no range") else "no range: its high end is beyond a float's range"
