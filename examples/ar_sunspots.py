"""Autoregressive forecasting of yearly sunspot numbers, trained with jaxgd.fit.

An AR(p) model with a constant,

    y_t = c + phi_1 y_{t-1} + ... + phi_p y_{t-p} + e_t,

fitted by minibatch SGD (momentum, cosine learning rate per epoch) on the
standardised series, then mapped back to the original scale
(``phi`` unchanged, ``c = mu (1 - sum phi) + sigma c_std``). The data ship
with statsmodels (``statsmodels.api.datasets.sunspots``, 1700-2008); the
trusted reference is statsmodels' ``AutoReg(y, lags=p, trend="c")`` (OLS)
on the same training years. Both models then forecast each remaining year
one step ahead.

    python examples/ar_sunspots.py [--quick] [--out DIR]
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import statsmodels.api as sm
from _common import fit, main, report
from statsmodels.tsa.ar_model import AutoReg

import jaxgd
import jaxgd.plot

P = 9  # lags
N_TRAIN = 250  # years 1700-1949; the rest is forecast


def lagged(z, p):
    """Rows ``(z[t-1], ..., z[t-p])`` and targets ``z[t]`` for ``t = p .. len(z) - 1``."""
    x = np.stack([z[p - i - 1 : len(z) - i - 1] for i in range(p)], axis=1)
    return x, z[p:]


def loss(theta, batch):
    """Mean squared one-step prediction error."""
    x, y = batch
    return jnp.mean((x @ theta["phi"] + theta["c"] - y) ** 2)


def run(quick: bool = False, out: str = "out") -> dict:
    frame = sm.datasets.sunspots.load_pandas().data
    years, series = frame["YEAR"].to_numpy(), frame["SUNACTIVITY"].to_numpy(dtype=np.float64)
    train = series[:N_TRAIN]

    start = time.perf_counter()
    ar = AutoReg(train, lags=P, trend="c").fit()
    sm_seconds = time.perf_counter() - start
    reference = np.asarray(ar.params)  # [const, phi_1 .. phi_p]

    mu, sigma = train.mean(), train.std()
    x, y = lagged((train - mu) / sigma, P)
    epochs, batch_size = (100 if quick else 200), 16
    lr = jaxgd.schedules.per_epoch(optax.cosine_decay_schedule(0.05, epochs), len(y) // batch_size)
    theta = {"phi": jnp.zeros(P, jnp.float32), "c": jnp.zeros((), jnp.float32)}
    start = time.perf_counter()
    res = fit(loss, theta, (x.astype(np.float32), y.astype(np.float32)), batch_size=batch_size, epochs=epochs,
              key=jax.random.key(0), method="momentum", lr=lr, progress=not quick)
    jax.block_until_ready(res)
    seconds = time.perf_counter() - start
    phi = np.asarray(res.params["phi"], np.float64)
    const = mu * (1.0 - phi.sum()) + sigma * float(res.params["c"])
    ours = np.r_[const, phi]

    # one-step-ahead forecasts of the held-out years, from the true previous values
    x_all, y_all = lagged(series, P)
    held_out = slice(N_TRAIN - P, None)
    pred = x_all[held_out] @ phi + const
    pred_ref = x_all[held_out] @ reference[1:] + reference[0]
    rmse = float(np.sqrt(np.mean((pred - y_all[held_out]) ** 2)))
    rmse_ref = float(np.sqrt(np.mean((pred_ref - y_all[held_out]) ** 2)))

    out_dict = {
        "phi_rel_err": float(np.linalg.norm(phi - reference[1:]) / np.linalg.norm(reference[1:])),
        "const": const,
        "const_statsmodels": float(reference[0]),
        "forecast_rmse": rmse,
        "forecast_rmse_statsmodels": rmse_ref,
        "epochs": int(res.epochs),
        "seconds": seconds,
        "seconds_statsmodels": sm_seconds,
    }
    report(f"sunspots AR({P}): jaxgd.fit vs statsmodels AutoReg", list(out_dict.items()))

    fig, (ax0, ax1) = jaxgd.plot.subplots(1, 2, figsize=(12, 4))
    ax0.plot(years, series, color="0.6", label="sunspots")
    ax0.plot(years[N_TRAIN:], pred, label=f"jaxgd.fit (RMSE {rmse:.1f})")
    ax0.plot(years[N_TRAIN:], pred_ref, ":", label=f"AutoReg (RMSE {rmse_ref:.1f})")
    ax0.axvline(years[N_TRAIN], color="k", linewidth=0.8)
    ax0.set_xlabel("year")
    ax0.legend(loc="upper left")
    lags = np.arange(1, P + 1)
    ax1.plot(lags, reference[1:], "o", fillstyle="none", markersize=8, label="AutoReg")
    ax1.plot(lags, phi, ".", label="jaxgd.fit")
    ax1.set_xlabel("lag")
    ax1.set_ylabel("phi")
    ax1.legend()
    out_dict["plot"] = str(jaxgd.plot.save(fig, os.path.join(out, "ar_sunspots.png")))
    return out_dict


if __name__ == "__main__":
    main(run, __doc__)
