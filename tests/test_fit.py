"""The exact fitter: recovers known polynomials, refuses what the grid cannot determine."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybrid.fit import FitError, evaluate, fit_exact, law_to_text, monomial_value, parse_monomial

BASIS = ("B", "B*N", "B*L", "B*N^2", "B*N*L")
GRID = [
    {"B": 1, "N": 1, "L": 1},
    {"B": 1, "N": 2, "L": 3},
    {"B": 2, "N": 1, "L": 2},
    {"B": 1, "N": 4, "L": 5},
    {"B": 3, "N": 2, "L": 1},
    {"B": 2, "N": 3, "L": 7},
]


def test_parse_and_evaluate_monomials() -> None:
    assert parse_monomial("B*N^2") == {"B": 1, "N": 2}
    assert parse_monomial("1") == {}
    # 2 * 5^2 * 3 = 150
    assert monomial_value("B*N^2*L", {"B": 2, "N": 5, "L": 3}) == 150
    with pytest.raises(ValueError, match="variable 'L' not given"):
        monomial_value("B*L", {"B": 1})


def test_recovers_a_known_polynomial() -> None:
    truth = {"B": Fraction(7), "B*N": Fraction(0), "B*L": Fraction(3), "B*N^2": Fraction(819200), "B*N*L": Fraction(5)}
    values = [int(evaluate(truth, p)) for p in GRID]
    assert fit_exact(BASIS, GRID, values) == truth
    assert law_to_text(truth) == "7*B + 3*B*L + 819200*B*N^2 + 5*B*N*L"


def test_recovers_rational_coefficients() -> None:
    truth = {"B*L": Fraction(1, 2), "B*L^2": Fraction(-3, 7)}
    grid = [{"B": b, "L": n} for b, n in ((1, 1), (2, 7), (3, 14), (1, 28))]
    # 1/2*B*L - 3/7*B*L^2: at (1, 1) 1/2 - 3/7 = 1/14; at (2, 7) 7 - 42 = -35; integers after that
    values = [evaluate(truth, p) for p in grid]
    assert values[:2] == [Fraction(1, 14), Fraction(-35)]
    assert fit_exact(("B*L", "B*L^2"), grid, values) == truth  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-(10**12), 10**12), min_size=5, max_size=5))
def test_recovers_any_integer_law(coefficients: list[int]) -> None:
    truth = {m: Fraction(c) for m, c in zip(BASIS, coefficients, strict=True)}
    assert fit_exact(BASIS, GRID, [int(evaluate(truth, p)) for p in GRID]) == truth


def test_refuses_too_few_points() -> None:
    with pytest.raises(FitError, match="underdetermined: 3 grid points for 5 terms"):
        fit_exact(BASIS, GRID[:3], [1, 2, 3])


def test_refuses_a_grid_that_cannot_separate_terms() -> None:
    # batch always 1 and L always equal to N: B*N and B*L (and B*N^2, B*N*L) cannot be told apart
    grid = [{"B": 1, "N": n, "L": n} for n in range(1, 9)]
    with pytest.raises(FitError, match="underdetermined"):
        fit_exact(BASIS, grid, [n for n in range(1, 9)])


def test_refuses_data_the_basis_cannot_fit() -> None:
    # a cubic term the basis does not have
    values = [p["B"] * p["N"] ** 3 for p in GRID]
    with pytest.raises(FitError, match="no exact fit"):
        fit_exact(BASIS, GRID, values)
