"""Choose the L2 strength of a logistic regression by gradient descent on the validation loss.

The inner problem fits breast-cancer logistic regression on a training split
for a given ``lam``:

    beta*(lam) = argmin_beta  mean(softplus(a beta) - y a beta) + lam/2 ||beta||^2

and the outer problem minimises the validation loss ``V(beta*(lam))`` over
``log lam`` with a second, outer ``jaxgd.minimize``. The outer gradient
``dV/dlog lam`` goes through the inner solve by implicit differentiation
(``adjoint="implicit"``, the default): one Hessian-vector-product linear
solve at ``beta*``, never a pass back through the inner iterations.

The reference is scikit-learn's ``LogisticRegressionCV`` on the same split
(``PredefinedSplit``), the same objective (``C = 1 / (n_train lam)``, no
separate intercept: a column of ones, penalised like the rest) and the same
validation score (mean log loss) over a grid of 30 values of ``C``: the
hypergradient's validation loss must be no worse than the grid's best.

    python examples/hyperparameter_gradient.py [--quick] [--out DIR]
"""

from __future__ import annotations

import os
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from _common import main, report
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import PredefinedSplit

import jaxgd
import jaxgd.plot

jax.config.update("jax_enable_x64", True)


def logistic(beta, a, y):
    """Mean logistic loss ``softplus(z) - y z`` with ``z = a beta``."""
    z = a @ beta
    return jnp.mean(jax.nn.softplus(z) - y * z)


def data(seed: int = 0) -> tuple:
    """Standardised features plus a column of ones; a 60/40 train/validation split."""
    x, y = load_breast_cancer(return_X_y=True)
    a = np.c_[(x - x.mean(0)) / x.std(0), np.ones(len(x))]
    order = np.random.default_rng(seed).permutation(len(y))
    n_train = int(0.6 * len(y))
    tr, va = order[:n_train], order[n_train:]
    return a[tr], y[tr].astype(float), a[va], y[va].astype(float)


def make_outer(a, y, av, yv):
    """``log lam -> validation loss`` at the inner solution (differentiable)."""

    def inner(lam):
        return jaxgd.minimize(logistic, jnp.zeros(a.shape[1]), (a, y), method="lbfgs", l2=lam,
                              gtol=1e-10, max_steps=500).params

    def outer(log_lam):
        return logistic(inner(jnp.exp(log_lam)), av, yv)

    return inner, outer


def run(quick: bool = False, out: str = "out") -> dict:
    a, y, av, yv = data()
    n_train = len(y)
    inner, outer = make_outer(a, y, av, yv)

    # The reference: scikit-learn's grid search on the same split and score.
    cs = np.logspace(-4, 2, 30)
    start = time.perf_counter()
    split = PredefinedSplit(np.r_[np.full(n_train, -1), np.zeros(len(yv), int)])
    with warnings.catch_warnings():  # scikit-learn 1.8's notices about its 1.10 defaults
        warnings.simplefilter("ignore", FutureWarning)
        cv = LogisticRegressionCV(Cs=cs, cv=split, scoring="neg_log_loss", fit_intercept=False, tol=1e-10,
                                  max_iter=10_000).fit(np.r_[a, av], np.r_[y, yv])
        grid_val = -np.asarray(cv.scores_[1.0]).reshape(len(cs))  # mean validation log loss at each C
    grid_seconds = time.perf_counter() - start
    best = int(np.argmin(grid_val))
    lam_grid = 1.0 / (n_train * cs[best])

    # The hypergradient: an outer jaxgd.minimize over log lam around the inner one.
    x0 = jnp.asarray(np.log(1e-1))
    options = dict(method="lbfgs", gtol=1e-8, max_steps=30)
    start = time.perf_counter()
    res = jaxgd.minimize(outer, x0, **options)
    jax.block_until_ready(res)
    seconds = time.perf_counter() - start

    # The path the outer method took: the same solver, one step at a time (compiled apart from
    # minimize's loop, so rounding differs slightly: it ends within ~1e-4 of res.params in log lam).
    # Each state holds the validation loss at its point: no other compiled evaluation of the path.
    solver = jaxgd.Solver(outer, **options)
    step = jax.jit(solver.step)
    state = solver.init(x0)
    path, path_val = [float(x0)], [float(state.value)]
    while int(state.status) == int(jaxgd.Status.RUNNING) and int(state.count) < solver.max_steps:
        state = step(state)
        path.append(float(state.params))
        path_val.append(float(state.value))
    lam = float(np.exp(res.params))
    hyper = float(jax.grad(outer)(res.params))  # jax.grad through the inner solve (implicit adjoint)

    out_dict = {
        "lam": lam,
        "val_loss": float(res.loss),
        "lam_grid_best": lam_grid,
        "val_loss_grid_best": float(grid_val[best]),
        "hypergradient_at_lam": hyper,
        "outer_steps": int(res.steps),
        "outer_status": res.status_enum.name,
        "path_final_gap": abs(path[-1] - float(res.params)),
        "seconds": seconds,
        "seconds_sklearn_grid": grid_seconds,
    }
    report("L2 strength of breast-cancer logistic regression: hypergradient vs LogisticRegressionCV grid",
           list(out_dict.items()))

    # Validation loss against lam: the sweep (vmapped inner solves), the grid, the path.
    lams = np.logspace(-5, 1, 25 if quick else 60)
    sweep = jax.jit(jax.vmap(lambda lam: outer(jnp.log(lam))))(jnp.asarray(lams))
    fig, ax = jaxgd.plot.subplots(1, 1, figsize=(7, 4.5))
    ax.plot(lams, np.asarray(sweep), "-", color="0.6", label="validation loss (jaxgd, vmapped solves)")
    ax.plot(1.0 / (n_train * cs), grid_val, "s", fillstyle="none", label="LogisticRegressionCV grid")
    path_lam = np.exp(np.asarray(path))
    ax.plot(path_lam, np.asarray(path_val), "o-", color="C3", label="hypergradient path (outer L-BFGS)")
    ax.plot([lam], [float(res.loss)], "*", color="C3", markersize=14)
    ax.set_xscale("log")
    ax.set_xlabel("lam (L2 strength)")
    ax.set_ylabel("validation log loss")
    ax.legend()
    out_dict["plot"] = str(jaxgd.plot.save(fig, os.path.join(out, "hyperparameter_gradient.png")))
    return out_dict


if __name__ == "__main__":
    main(run, __doc__)
