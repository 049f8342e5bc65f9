"""Human units for FLOPs, bytes and counts (rendering only)."""

from __future__ import annotations

from decimal import Decimal

_FLOP_UNITS = (
    (10**18, "EFLOP"),
    (10**15, "PFLOP"),
    (10**12, "TFLOP"),
    (10**9, "GFLOP"),
    (10**6, "MFLOP"),
    (10**3, "KFLOP"),
)
_BYTE_UNITS = ((2**50, "PiB"), (2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))
_COUNT_UNITS = ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K"))


GROUPED_DIGITS = 6
"""Up to this many digits in the largest unit a value is written out (``123,456 EFLOP``); beyond,
as a mantissa and a power of ten (``1.23e+300 EFLOP``, by :class:`~decimal.Decimal`): any size of
int renders, none goes through a float that could overflow."""


def _scaled(value: int, units: tuple[tuple[int, str], ...], base: str, digits: int = 3) -> str:
    sign = "-" if value < 0 else ""
    for scale, name in units:
        if abs(value) >= scale:
            whole, rest = divmod(abs(value), scale)
            if whole >= 10**GROUPED_DIGITS:  # Decimal: exact for any int, correctly rounded
                return f"{sign}{Decimal(abs(value)) / scale:.{digits - 1}e} {name}"
            x = whole + rest / scale  # whole < 10**6: the float is exact enough and cannot overflow
            return f"{sign}{x:.{digits}g} {name}" if x < 10**digits else f"{sign}{x:,.0f} {name}"
    return f"{value} {base}".strip()


def flops(value: int) -> str:
    """``6523436592005120 -> '6.52 PFLOP'``."""
    return _scaled(value, _FLOP_UNITS, "FLOP")


def nbytes(value: int) -> str:
    """``2**31 -> '2 GiB'``."""
    return _scaled(value, _BYTE_UNITS, "B")


def count(value: int) -> str:
    """``14288491584 -> '14.3 B'`` (parameters)."""
    return _scaled(value, _COUNT_UNITS, "")


def share(part: int, whole: int) -> str:
    """``part / whole`` as a percentage with one decimal."""
    if whole == 0:
        return "-"
    pct = 100 * part / whole
    return "<0.1%" if 0 < pct < 0.05 else f"{pct:.1f}%"


def usd(value: float) -> str:
    """US dollars with three significant figures below $100 (``$0.0123``, ``$1.23``), whole dollars above."""
    if value >= 100:
        return f"${value:,.0f}"
    return f"${value:.3g}" if value >= 0.001 else f"${value:.2e}"


def usd_with_range(value: float, rng: dict[str, float] | None) -> str:
    """Dollars and, where there is one, their ``{"low", "high"}`` range in brackets."""
    return usd(value) if rng is None else f"{usd(value)} ({usd(rng['low'])}-{usd(rng['high'])})"
