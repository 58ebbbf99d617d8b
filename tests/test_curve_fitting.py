"""docs/api/curve_fitting.md: a curve_fit user's recipes run, and give curve_fit's and least_squares' answers.

References: ``scipy.optimize.curve_fit`` (parameters and ``pcov``, both ``absolute_sigma`` settings) and
``scipy.optimize.least_squares(loss="soft_l1")`` on the page's own data.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import run_doc_page

scipy_optimize = pytest.importorskip("scipy.optimize")


@pytest.mark.slow  # ~3 s: two fits, a Jacobian
def test_the_curve_fitting_page_matches_curve_fit_and_least_squares() -> None:
    ns = run_doc_page("curve_fitting.md", 3)
    t, y, sigma = ns["t"], ns["y"], ns["sigma"]

    def f(t, a, b, c):
        return a * np.exp(-b * t) + c

    popt, pcov = scipy_optimize.curve_fit(f, t, y, p0=[1.0, 1.0, 0.0], sigma=sigma)
    _, pcov_abs = scipy_optimize.curve_fit(f, t, y, p0=[1.0, 1.0, 0.0], sigma=sigma, absolute_sigma=True)
    np.testing.assert_allclose(ns["popt"], popt, rtol=1e-6)
    np.testing.assert_allclose(ns["pcov"], pcov, rtol=1e-4)
    np.testing.assert_allclose(ns["pcov_absolute"], pcov_abs, rtol=1e-4)
    np.testing.assert_allclose(ns["perr"], np.sqrt(np.diag(pcov)), rtol=1e-4)

    robust = scipy_optimize.least_squares(lambda p: (f(t, *p) - y) / sigma, [1.0, 1.0, 0.0], loss="soft_l1",
                                          f_scale=1.0, xtol=1e-12, ftol=1e-12, gtol=1e-12)
    np.testing.assert_allclose(np.asarray(ns["robust"].params), robust.x, rtol=1e-5)
    np.testing.assert_allclose(float(ns["robust"].loss), robust.cost, rtol=1e-8)
