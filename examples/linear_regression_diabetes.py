"""Linear regression on scikit-learn's diabetes data, trained with jaxgd.fit.

Minibatch SGD with heavy-ball momentum and a cosine learning rate stepped
once per epoch (``jaxgd.schedules.per_epoch``), on standardised features and
target. The trusted reference is the exact least-squares solution from
``numpy.linalg.lstsq`` on the same design matrix (with an intercept column).

Minibatch noise limits how close SGD gets along the nearly collinear
directions of this data (s1..s5): the objective matches lstsq to about 1e-4
relative, the coefficients to a few per cent.

    python examples/linear_regression_diabetes.py [--quick] [--out DIR]
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import fit, main, report
from sklearn.datasets import load_diabetes

import jaxgd
import jaxgd.plot


def loss(params, batch):
    """Mean squared error of the linear model on a batch ``(X, y)``."""
    x, y = batch
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


def run(quick: bool = False, out: str = "out") -> dict:
    x, y = load_diabetes(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    y = ((y - y.mean()) / y.std()).astype(np.float32)
    n, d = x.shape

    design = np.c_[x, np.ones(n)].astype(np.float64)
    reference = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)[0]

    epochs, batch_size = (50 if quick else 100), 32
    lr = jaxgd.schedules.per_epoch(optax.cosine_decay_schedule(0.1, epochs), n // batch_size)
    params = {"w": jnp.zeros(d, jnp.float32), "b": jnp.zeros((), jnp.float32)}
    start = time.perf_counter()
    res = fit(loss, params, (x, y), batch_size=batch_size, epochs=epochs, key=jax.random.key(0),
              method="momentum", lr=lr, progress=not quick)
    jax.block_until_ready(res)
    seconds = time.perf_counter() - start

    coef = np.r_[np.asarray(res.params["w"], np.float64), float(res.params["b"])]
    mse = float(np.mean((design @ coef - y) ** 2))
    mse_ref = float(np.mean((design @ reference - y) ** 2))
    out_dict = {
        "coef_rel_err": float(np.linalg.norm(coef - reference) / np.linalg.norm(reference)),
        "objective_rel_gap": mse / mse_ref - 1.0,
        "mse": mse,
        "mse_lstsq": mse_ref,
        "epochs": int(res.epochs),
        "steps": int(res.steps),
        "seconds": seconds,
    }
    report("diabetes linear regression: jaxgd.fit (SGD + momentum) vs numpy.linalg.lstsq", list(out_dict.items()))

    fig, (ax0, ax1) = jaxgd.plot.subplots(1, 2, figsize=(11, 4))
    jaxgd.plot.loss_curve(res, ax0, label="jaxgd.fit")
    ax0.axhline(mse_ref, color="k", linestyle=":", label="lstsq")
    ax0.legend()
    ax1.scatter(reference, coef, s=15)
    lim = np.abs(reference).max() * 1.1
    ax1.plot([-lim, lim], [-lim, lim], "k:", linewidth=1)
    ax1.set_xlabel("lstsq coefficient")
    ax1.set_ylabel("jaxgd.fit coefficient")
    out_dict["plot"] = str(jaxgd.plot.save(fig, os.path.join(out, "linear_regression_diabetes.png")))
    return out_dict


if __name__ == "__main__":
    main(run, __doc__)
