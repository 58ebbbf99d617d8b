"""L2-regularised logistic regression on scikit-learn's breast-cancer data.

jaxgd.fit minimises the mean logistic loss plus ``l2/2 ||beta||^2`` over
minibatches; scikit-learn's ``LogisticRegression`` (lbfgs) minimises
``C * sum(logistic loss) + 1/2 ||beta||^2``. Dividing the latter by ``n C``
gives the former, so the objectives match when

    l2 = 1 / (n * C).

Both penalise the intercept here (a column of ones, ``fit_intercept=False``
in scikit-learn), so the two problems are the same and their coefficients
must agree. Features are standardised.

    python examples/logistic_breast_cancer.py [--quick] [--out DIR]
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import fit, main, report
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import jaxgd
import jaxgd.plot

C = 0.1


def loss(beta, batch):
    """Mean logistic loss ``log(1 + exp(z)) - y z`` with ``z = a . beta``."""
    a, y = batch
    z = a @ beta
    return jnp.mean(jax.nn.softplus(z) - y * z)


def run(quick: bool = False, out: str = "out") -> dict:
    x, y = load_breast_cancer(return_X_y=True)
    x = (x - x.mean(0)) / x.std(0)
    a = np.c_[x, np.ones(len(x))]
    n, d = a.shape
    l2 = 1.0 / (n * C)

    start = time.perf_counter()
    sk = LogisticRegression(C=C, fit_intercept=False, tol=1e-12, max_iter=10_000).fit(a, y)
    sk_seconds = time.perf_counter() - start
    reference = sk.coef_.ravel()

    epochs, batch_size = (50 if quick else 150), 32
    lr = jaxgd.schedules.per_epoch(optax.cosine_decay_schedule(0.1, epochs), n // batch_size)
    start = time.perf_counter()
    res = fit(loss, jnp.zeros(d, jnp.float32), (a.astype(np.float32), y.astype(np.float32)),
              batch_size=batch_size, epochs=epochs, key=jax.random.key(0), method="momentum", lr=lr, l2=l2,
              progress=not quick)
    jax.block_until_ready(res)
    seconds = time.perf_counter() - start

    beta = np.asarray(res.params, np.float64)

    def objective(b):  # the common objective, in float64
        z = a @ b
        return float(np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * b @ b)

    out_dict = {
        "coef_rel_err": float(np.linalg.norm(beta - reference) / np.linalg.norm(reference)),
        "objective_rel_gap": objective(beta) / objective(reference) - 1.0,
        "accuracy": float(np.mean((a @ beta > 0) == y)),
        "accuracy_sklearn": float(sk.score(a, y)),
        "l2": l2,
        "seconds": seconds,
        "seconds_sklearn": sk_seconds,
    }
    report(f"breast-cancer logistic regression (C={C} <-> l2=1/(nC)): jaxgd.fit vs sklearn", list(out_dict.items()))

    fig, (ax0, ax1) = jaxgd.plot.subplots(1, 2, figsize=(11, 4))
    jaxgd.plot.loss_curve(res, ax0, label="jaxgd.fit (train loss, no penalty)")
    order = np.argsort(reference)
    ax1.plot(reference[order], "o", label="scikit-learn", markersize=6, fillstyle="none")
    ax1.plot(beta[order], ".", label="jaxgd.fit")
    ax1.set_xlabel("coefficient (sorted)")
    ax1.legend()
    out_dict["plot"] = str(jaxgd.plot.save(fig, os.path.join(out, "logistic_breast_cancer.png")))
    return out_dict


if __name__ == "__main__":
    main(run, __doc__)
