"""Real-data rows for ``jaxgd demo``: minibatch fits on data that ship with scikit-learn.

:func:`real_data_rows` trains four models, three with :func:`jaxgd.fit` and
one with nested :func:`jaxgd.minimize` calls, and checks each against a
trusted reference (``jaxgd demo`` prints each check under its table):

- diabetes: linear least squares (SGD + momentum) vs ``numpy.linalg.lstsq``;
- breast cancer: L2 logistic regression vs scikit-learn's
  ``LogisticRegression`` with the same objective (``l2 = 1 / (n C)``);
- digits: a 64-64-10 tanh MLP (Adam), its held-out test accuracy;
- breast cancer, the L2 strength chosen by the hypergradient of the
  validation loss (an outer ``minimize`` over ``log l2`` around the inner
  one, ``adjoint="implicit"``) vs scikit-learn's ``LogisticRegressionCV`` grid
  (``examples/hyperparameter_gradient.py`` is the long form).

scikit-learn is an optional dependency here (the ``test`` extra): without it
every row says "skipped" and nothing is trained. The examples in
``examples/`` are the long-form versions.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import schedules
from ..core.minimize import minimize
from ..minibatch.fit import fit

PROBLEMS = ("diabetes", "breast_cancer", "digits_mlp", "breast_cancer_l2")
_C = 0.1  # breast cancer: scikit-learn's inverse regularisation strength


def _linear_loss(params: Any, batch: Any) -> jax.Array:
    x, y = batch
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


def _logistic_loss(beta: jax.Array, batch: Any) -> jax.Array:
    a, y = batch
    z = a @ beta
    return jnp.mean(jax.nn.softplus(z) - y * z)


def _mlp_logits(params: Any, x: jax.Array) -> jax.Array:
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return h @ params["w2"] + params["b2"]


def _mlp_loss(params: Any, batch: Any) -> jax.Array:
    x, y = batch
    logp = jax.nn.log_softmax(_mlp_logits(params, x))
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def _timed_fit(fun: Callable, params: Any, data: Any, **kw: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    res = fit(fun, params, data, **kw)
    jax.block_until_ready(res)
    return res, time.perf_counter() - start


def _row(problem: str, method: str, schedule: str, res: Any, seconds: float, **extra: Any) -> dict:
    curve = np.asarray(res.history.train_loss, dtype=float)
    row = {
        "problem": problem,
        "method": method,
        "schedule": schedule,
        "steps": int(res.steps),
        "epochs": int(res.epochs),
        "loss": float(curve[-1]),
        "grad_norm": None,
        "accuracy": None,
        "reference": "",
        "time": seconds,
        "status": res.status_enum.name,
        "curve": curve,
    }
    row.update(extra)
    return row


def _cosine(lr: float, epochs: int, steps_per_epoch: int) -> Any:
    return schedules.per_epoch(optax.cosine_decay_schedule(lr, epochs), steps_per_epoch)


def _diabetes(progress: bool, quick: bool) -> dict:
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    y = ((y - y.mean()) / y.std()).astype(np.float32)
    n, d = x.shape
    epochs, batch = (50 if quick else 100), 32
    params = {"w": np.zeros(d, np.float32), "b": np.zeros((), np.float32)}
    res, seconds = _timed_fit(_linear_loss, params, (x, y), batch_size=batch, epochs=epochs, key=jax.random.key(0),
                              method="momentum", lr=_cosine(0.1, epochs, n // batch), progress=progress)
    design = np.c_[x, np.ones(n)].astype(np.float64)
    ref = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)[0]
    coef = np.r_[np.asarray(res.params["w"], np.float64), float(res.params["b"])]
    resid = design @ coef - y
    err = np.linalg.norm(coef - ref) / np.linalg.norm(ref)
    return _row("diabetes (linear)", "momentum", "cosine/epoch", res, seconds,
                loss=float(np.mean(resid**2)), grad_norm=float(np.linalg.norm(2 * design.T @ resid / n)),
                reference=f"coef rel err {err:.1e} vs numpy lstsq")


def _breast_cancer_design() -> tuple[np.ndarray, np.ndarray]:
    """Breast cancer's features standardised, with a column of ones (the intercept), and its labels."""
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    return np.c_[(x - x.mean(0)) / x.std(0), np.ones(len(x))], y


def _breast_cancer(progress: bool, quick: bool) -> dict:
    from sklearn.linear_model import LogisticRegression

    a, y = _breast_cancer_design()
    n, d = a.shape
    l2 = 1.0 / (n * _C)
    epochs, batch = (50 if quick else 100), 32
    res, seconds = _timed_fit(_logistic_loss, np.zeros(d, np.float32), (a.astype(np.float32), y.astype(np.float32)),
                              batch_size=batch, epochs=epochs, key=jax.random.key(0), method="momentum",
                              lr=_cosine(0.1, epochs, n // batch), l2=l2, progress=progress)
    ref = LogisticRegression(C=_C, fit_intercept=False, tol=1e-12, max_iter=10_000).fit(a, y).coef_.ravel()
    beta = np.asarray(res.params, np.float64)
    z = a @ beta
    grad = a.T @ (1.0 / (1.0 + np.exp(-z)) - y) / n + l2 * beta
    err = np.linalg.norm(beta - ref) / np.linalg.norm(ref)
    return _row("breast cancer (logistic, L2)", "momentum", "cosine/epoch", res, seconds,
                loss=float(np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * beta @ beta),
                grad_norm=float(np.linalg.norm(grad)), accuracy=float(np.mean((z > 0) == y)),
                reference=f"coef rel err {err:.1e} vs sklearn (C={_C})")


def _digits_mlp(progress: bool, quick: bool) -> dict:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        (x / 16.0).astype(np.float32), y, test_size=0.25, random_state=0, stratify=y
    )
    rng = np.random.default_rng(0)
    lim1, lim2 = np.sqrt(6.0 / (64 + 64)), np.sqrt(6.0 / (64 + 10))
    params = {
        "w1": rng.uniform(-lim1, lim1, (64, 64)).astype(np.float32), "b1": np.zeros(64, np.float32),
        "w2": rng.uniform(-lim2, lim2, (64, 10)).astype(np.float32), "b2": np.zeros(10, np.float32),
    }
    res, seconds = _timed_fit(_mlp_loss, params, (x_train, y_train), batch_size=32, epochs=15 if quick else 30,
                              key=jax.random.key(1), method="adam", lr=3e-3, progress=progress)
    p = {k: np.asarray(v, np.float64) for k, v in res.params.items()}

    def logits(x: np.ndarray) -> np.ndarray:
        return np.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]

    z = logits(x_train)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    acc = float(np.mean(np.argmax(logits(x_test), axis=1) == y_test))
    return _row("digits (MLP 64-64-10)", "adam", "constant", res, seconds,
                loss=float(-np.mean(logp[np.arange(len(y_train)), y_train])), accuracy=acc,
                reference=f"test accuracy {acc:.3f} (bar: 0.95)")


def _breast_cancer_l2(progress: bool, quick: bool) -> dict:
    """The L2 strength by hypergradient descent on the validation loss (issue 12)."""
    import warnings

    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import PredefinedSplit

    a, y = _breast_cancer_design()
    order = np.random.default_rng(0).permutation(len(y))
    tr, va = order[: int(0.6 * len(y))], order[int(0.6 * len(y)) :]
    train, val = (a[tr], y[tr].astype(float)), (a[va], y[va].astype(float))

    def val_loss(log_l2: jax.Array) -> jax.Array:
        beta = minimize(_logistic_loss, jnp.zeros(a.shape[1]), (train,), method="lbfgs", l2=jnp.exp(log_l2),
                        gtol=1e-7, max_steps=500).params
        return _logistic_loss(beta, val)

    start = time.perf_counter()
    res = minimize(val_loss, jnp.log(jnp.asarray(0.1)), method="lbfgs", gtol=1e-5, max_steps=30, progress=progress)
    jax.block_until_ready(res)
    seconds = time.perf_counter() - start
    cs = np.logspace(-4, 2, 30)
    with warnings.catch_warnings():  # scikit-learn's notices about future defaults
        warnings.simplefilter("ignore", FutureWarning)
        cv = LogisticRegressionCV(Cs=cs, cv=PredefinedSplit(np.r_[np.full(len(tr), -1), np.zeros(len(va), int)]),
                                  scoring="neg_log_loss", fit_intercept=False, tol=1e-8, max_iter=10_000)
        cv.fit(np.r_[train[0], val[0]], np.r_[train[1], val[1]])
        grid = -np.asarray(cv.scores_[1.0]).reshape(len(cs))
    return {"problem": "breast cancer (l2 by hypergradient)", "method": "lbfgs/lbfgs", "schedule": "implicit adjoint",
            "steps": int(res.steps), "epochs": int(res.steps), "budget": f"{int(res.steps)} outer steps",
            "loss": float(res.loss), "grad_norm": float(res.grad_norm), "accuracy": None,
            "reference": f"val loss {float(res.loss):.6f} vs LogisticRegressionCV grid best {grid.min():.6f}",
            "time": seconds, "status": res.status_enum.name, "curve": np.asarray(res.history.loss, float)}


_BUILDERS = {"diabetes": _diabetes, "breast_cancer": _breast_cancer, "digits_mlp": _digits_mlp,
             "breast_cancer_l2": _breast_cancer_l2}


def real_data_rows(progress: bool = False, *, problems: Optional[Sequence[str]] = None, quick: bool = False) -> list[dict]:
    """Train the real-data models and return one table row each.

    Each row is a dict with ``problem``, ``method``, ``schedule``, ``steps``,
    ``epochs``, ``loss`` (the full-data objective at the final parameters),
    ``grad_norm`` (its full-data gradient norm, convex problems only, else
    None), ``accuracy`` (classification, else None), ``reference`` (the
    comparison with the trusted reference, in words), ``time`` (seconds,
    compilation included), ``status`` (a :class:`jaxgd.FitStatus` name, the
    hypergradient row's a :class:`jaxgd.Status` name, or "skipped") and
    ``curve`` (the per-epoch training loss, for the PNG; see :func:`curves`).
    Without scikit-learn each row is ``problem``, ``status`` ("skipped (pip
    install scikit-learn)") and ``curve`` (None) only.

    Args:
      progress: show each fit's progress bar over epochs.
      problems: a subset of ``PROBLEMS`` (default all, in that order).
      quick: fewer epochs (the test suite's setting).

    Returns:
      The rows, in the order of ``problems``.

    Raises:
      ValueError: an unknown problem name.
    """
    names = PROBLEMS if problems is None else tuple(problems)
    unknown = sorted(set(names) - set(_BUILDERS))
    if unknown:
        raise ValueError(f"unknown problems {unknown}; choose from {list(PROBLEMS)}")
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return [
            {"problem": name, "status": "skipped (pip install scikit-learn)", "curve": None}
            for name in names
        ]
    return [_BUILDERS[name](progress, quick) for name in names]


def curves(rows: list[dict]) -> dict[str, np.ndarray]:
    """``{problem: per-epoch training loss}`` for the rows that ran (for ``jaxgd.plot.compare``)."""
    return {row["problem"]: row["curve"] for row in rows if row.get("curve") is not None}
