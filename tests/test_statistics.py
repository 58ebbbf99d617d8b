"""docs/api/statistics.md: a statsmodels / scikit-learn user's recipes run, and give their answers.

References: statsmodels' ``GLM(family=Poisson(), offset=...)`` (``params``, ``bse``), scikit-learn's
``LogisticRegression(C=...)`` and ``Lasso(alpha=...)``, on the page's own data.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import run_doc_page

sm = pytest.importorskip("statsmodels.api")


@pytest.mark.slow  # ~3 s: three fits, a Hessian
def test_the_statistics_page_matches_statsmodels_and_scikit_learn() -> None:
    from sklearn.linear_model import Lasso, LogisticRegression

    ns = run_doc_page("statistics.md", 3)

    glm = sm.GLM(ns["counts"], ns["X"], family=sm.families.Poisson(), offset=np.log(ns["exposure"])).fit(tol=1e-12)
    assert ns["fit"].success
    np.testing.assert_allclose(np.asarray(ns["fit"].params), glm.params, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(ns["bse"]), glm.bse, rtol=1e-7)

    X, y, C = ns["X"], ns["y"], ns["C"]
    sk = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X[:, 1:], y)
    np.testing.assert_allclose(np.asarray(ns["ridge"].params["w"]), sk.coef_[0], atol=1e-8)
    np.testing.assert_allclose(float(ns["ridge"].params["b"]), sk.intercept_[0], atol=1e-8)

    lasso = Lasso(alpha=0.1, tol=1e-14, max_iter=100_000).fit(ns["Xd"], ns["yd"])
    w = np.asarray(ns["lasso"].params["w"])
    np.testing.assert_allclose(w, lasso.coef_, atol=1e-6)
    np.testing.assert_array_equal(w == 0, lasso.coef_ == 0)  # the same coefficients at zero
    np.testing.assert_allclose(float(ns["lasso"].params["b"]), lasso.intercept_, rtol=1e-12)
