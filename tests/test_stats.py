"""Student's t (:mod:`hybrid.stats`) against the printed tables, and the range of a time as the
prediction interval it is stated to be (:func:`hybrid.accuracy.prediction_interval`)."""

from __future__ import annotations

import math

import pytest

from hybrid.accuracy import Band, Outcome, band, prediction_interval
from hybrid.stats import t_quantile, t_two_sided

# Student's t quantiles as printed (Abramowitz and Stegun, table 26.10), three decimals
T95 = {1: 6.314, 2: 2.920, 3: 2.353, 4: 2.132, 5: 2.015, 10: 1.812, 20: 1.725, 30: 1.697, 120: 1.658}
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 5: 2.571, 10: 2.228, 15: 2.131, 30: 2.042, 120: 1.980}


@pytest.mark.parametrize(("p", "table"), [(0.95, T95), (0.975, T975)])
def test_t_quantile_equals_the_printed_table(p: float, table: dict[int, float]) -> None:
    for nu, t in table.items():
        assert round(t_quantile(p, nu), 3) == t


def test_t_two_sided_closed_forms() -> None:
    # nu = 1 is the Cauchy: P(|T| <= 1) = 2/pi * atan(1) = 1/2; nu = 2: t / sqrt(2 + t^2), 1/sqrt(3) at t = 1
    assert t_two_sided(1.0, 1) == pytest.approx(0.5, abs=1e-15)
    assert t_two_sided(1.0, 2) == pytest.approx(1 / math.sqrt(3), abs=1e-15)
    # large nu tends to the normal: P(|Z| <= 1.959964) = 0.95
    assert t_two_sided(1.959964, 100_000) == pytest.approx(0.95, abs=1e-5)


@pytest.mark.parametrize(("p", "nu"), [(0.4, 3), (1.0, 3), (0.95, 0)])
def test_t_quantile_refuses_what_it_cannot_give(p: float, nu: int) -> None:
    with pytest.raises(ValueError, match="t_quantile"):
        t_quantile(p, nu)


def test_prediction_interval_is_t_on_log_errors() -> None:
    # errors e with log(1 + e) = -0.1, 0, 0.1, 0.2: mean 0.05, stdev sqrt(0.05 / 3) = 0.129099,
    # half-width t(0.95, 3) * 0.129099 * sqrt(1 + 1/4) = 2.353363 * 0.129099 * 1.118034 = 0.339679
    errors = [math.expm1(x) for x in (-0.1, 0.0, 0.1, 0.2)]
    lo, hi = prediction_interval(errors)
    assert math.log1p(lo) == pytest.approx(0.05 - 0.339679, abs=1e-6)
    assert math.log1p(hi) == pytest.approx(0.05 + 0.339679, abs=1e-6)


def test_fewer_runs_give_a_wider_range() -> None:
    # the same spread from 6 runs and from 60: t(0.95, 5) * sqrt(7/6) = 2.177 against t(0.95, 59) * sqrt(61/60) = 1.687
    six = [math.expm1(x) for x in (-0.1, -0.05, 0.0, 0.0, 0.05, 0.1)]
    lo6, hi6 = prediction_interval(six)
    lo60, hi60 = prediction_interval(six * 10)
    assert hi6 - lo6 > 1.2 * (hi60 - lo60)


def test_band_takes_the_prediction_interval_of_its_kinds_runs() -> None:
    def run(error: float, source: str) -> Outcome:
        return Outcome(source, source, "h100-sxm", "diffusers", 1, 100.0 * (1 + error), 100.0, 0.0, None, "", {})

    runs = [run(e, f"s{i}") for i, e in enumerate((-0.08, -0.03, 0.0, 0.02, 0.05, 0.11))]
    b = band(runs, runs[0].kind)
    assert isinstance(b, Band) and b.runs == 6
    assert (b.lo, b.hi) == pytest.approx(prediction_interval([r.error for r in runs]), rel=1e-12)
    assert band(runs[:5], runs[0].kind) is None  # five runs: below MIN_EVIDENCE at every tier
