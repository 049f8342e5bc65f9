"""Exact fitting of closed-form scaling laws from traced FLOP counts.

A law is a polynomial in a stage's natural variables with rational coefficients, e.g. for the DiT
``B*N^2`` (batch x tokens^2: self-attention), ``B*N*L`` (cross-attention), ``B*N``, ``B*L``, ``B``.
Values traced on a grid of small workloads are exact integers, so the fit is an exact linear
least-squares solve over :class:`fractions.Fraction` (normal equations, Gauss-Jordan): no floating
point anywhere. A grid that does not determine every coefficient (rank-deficient design) is
refused, and a law that does not reproduce every grid value exactly is refused too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from math import prod

Monomial = str
"""A product of variable names with optional powers: ``"B*N^2"``, ``"B*T*P"``, ``"1"``."""


class FitError(ValueError):
    """The grid cannot determine the law, or the law does not fit the data exactly."""


def parse_monomial(monomial: Monomial) -> dict[str, int]:
    """``"B*N^2" -> {"B": 1, "N": 2}``; ``"1" -> {}``."""
    powers: dict[str, int] = {}
    if monomial.strip() == "1":
        return powers
    for factor in monomial.split("*"):
        name, _, power = factor.strip().partition("^")
        if not name.isidentifier():
            raise ValueError(f"monomial: bad factor {factor!r} in {monomial!r}")
        powers[name] = powers.get(name, 0) + (int(power) if power else 1)
    return powers


def monomial_value(monomial: Monomial, variables: Mapping[str, int]) -> int:
    """The monomial evaluated at integer ``variables``."""
    try:
        return prod(variables[name] ** p for name, p in parse_monomial(monomial).items())
    except KeyError as e:
        raise ValueError(f"monomial {monomial!r}: variable {e.args[0]!r} not given") from None


def evaluate(law: Mapping[Monomial, Fraction], variables: Mapping[str, int]) -> Fraction:
    """``sum(coefficient * monomial(variables))`` exactly."""
    return sum((c * monomial_value(m, variables) for m, c in law.items()), Fraction(0))


def _solve(matrix: list[list[Fraction]], rhs: list[Fraction]) -> list[Fraction]:
    n = len(matrix)
    a = [[*row, rhs[i]] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if a[r][col] != 0), None)
        if pivot is None:
            raise FitError(f"underdetermined: the grid cannot separate term {col + 1} from the others")
        a[col], a[pivot] = a[pivot], a[col]
        inv = 1 / a[col][col]
        a[col] = [x * inv for x in a[col]]
        for r in range(n):
            if r != col and a[r][col] != 0:
                f = a[r][col]
                a[r] = [x - f * y for x, y in zip(a[r], a[col], strict=True)]
    return [a[i][n] for i in range(n)]


def fit_exact(
    basis: Sequence[Monomial], points: Sequence[Mapping[str, int]], values: Sequence[int]
) -> dict[Monomial, Fraction]:
    """Coefficients of ``basis`` fitting ``values`` at ``points`` exactly.

    Raises :class:`FitError` if there are fewer points than terms, if the design matrix is rank
    deficient (the grid does not determine the law), or if the best fit leaves a residual (the
    basis is wrong for these data).
    """
    if len(points) != len(values):
        raise ValueError(f"points/values: lengths differ ({len(points)} vs {len(values)})")
    if len(points) < len(basis):
        raise FitError(f"underdetermined: {len(points)} grid points for {len(basis)} terms ({', '.join(basis)})")
    rows = [[Fraction(monomial_value(m, p)) for m in basis] for p in points]
    k = len(basis)
    normal = [[sum((r[i] * r[j] for r in rows), Fraction(0)) for j in range(k)] for i in range(k)]
    rhs = [sum((r[i] * v for r, v in zip(rows, values, strict=True)), Fraction(0)) for i in range(k)]
    try:
        coefficients = _solve(normal, rhs)
    except FitError as e:
        raise FitError(f"{e} ({', '.join(basis)}; {len(points)} grid points)") from None
    law = dict(zip(basis, coefficients, strict=True))
    for p, v in zip(points, values, strict=True):
        got = evaluate(law, p)
        if got != v:
            raise FitError(f"no exact fit: at {dict(p)} the law gives {got}, the data {v}")
    return law


def format_coefficient(c: Fraction) -> str:
    """``Fraction(3) -> "3"``, ``Fraction(1, 2) -> "1/2"`` (exact, JSON-safe)."""
    return str(c.numerator) if c.denominator == 1 else f"{c.numerator}/{c.denominator}"


def law_to_text(law: Mapping[Monomial, Fraction]) -> str:
    """Human-readable ``"4*B*N^2 + 7*B*N"`` (zero terms dropped)."""
    terms = [f"{format_coefficient(c)}*{m}" if m != "1" else format_coefficient(c) for m, c in law.items() if c]
    return " + ".join(terms) if terms else "0"
