"""Student's t, the one place it is stated: its quantiles for intervals over few values (a fleet's
replications, the published runs a time's range rests on).

For an integer number of degrees of freedom ``nu`` the probability ``A(t | nu) = P(|T| <= t)`` has a
closed form (Abramowitz and Stegun, *Handbook of Mathematical Functions*, 26.7.3 and 26.7.4), with
``theta = arctan(t / sqrt(nu))``:

* ``nu`` odd: ``2 / pi * (theta + sin(theta) * (cos(theta) + 2/3 cos^3(theta) + ... + (2 * 4 ... (nu - 3)) /
  (1 * 3 ... (nu - 2)) cos^(nu - 2)(theta)))`` (the bracket empty for ``nu = 1``);
* ``nu`` even: ``sin(theta) * (1 + 1/2 cos^2(theta) + 1 * 3 / (2 * 4) cos^4(theta) + ... + (1 * 3 ... (nu - 3)) /
  (2 * 4 ... (nu - 2)) cos^(nu - 2)(theta))``.

:func:`t_quantile` inverts it by bisection to far below the printed tables' rounding (12.706 at 0.975
for one degree of freedom, 2.015 at 0.95 for five: ``tests/test_stats.py``).
"""

from __future__ import annotations

import math


def t_two_sided(t: float, nu: int) -> float:
    """``P(|T| <= t)`` for Student's t with ``nu`` degrees of freedom (``t >= 0``, ``nu >= 1``)."""
    theta = math.atan(t / math.sqrt(nu))
    s, c = math.sin(theta), math.cos(theta)
    if nu % 2:
        if nu == 1:
            return 2 / math.pi * theta
        term = total = c
        for k in range(3, nu - 1, 2):  # the factor (k - 1) / k takes cos^(k - 2) to cos^k
            term *= (k - 1) / k * c * c
            total += term
        return 2 / math.pi * (theta + s * total)
    term = total = 1.0
    for k in range(2, nu - 1, 2):  # the factor (k - 1) / k takes cos^(k - 2) to cos^k
        term *= (k - 1) / k * c * c
        total += term
    return s * total


def t_quantile(p: float, nu: int) -> float:
    """The ``p`` quantile of Student's t with ``nu`` degrees of freedom (``0.5 <= p < 1``, ``nu >= 1``)."""
    if not (0.5 <= p < 1) or nu < 1:
        raise ValueError(f"t_quantile: p in [0.5, 1) and nu >= 1, got p={p}, nu={nu}")
    target = 2 * p - 1
    lo, hi = 0.0, 1.0
    while t_two_sided(hi, nu) < target:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_two_sided(mid, nu) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return (lo + hi) / 2
