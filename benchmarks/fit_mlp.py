"""F. ``jaxgd.fit``: epochs per second on the digits MLP vs a hand-written optax + ``lax.scan`` loop.

Data: scikit-learn's ``load_digits`` (1,797 8x8 images, pixels / 16, float32).
Model: MLP 64 -> 64 (tanh) -> 10, softmax cross-entropy, Adam (lr 1e-3),
batch 64 (remainder dropped), ``--epochs`` epochs, one fixed key. The
hand-written loop is what a user would write: per epoch a permutation from
``fold_in(key, epoch)``, reshaped into batches and scanned with
``optax.adam``; epochs scanned too, all under one ``jax.jit``.
Skipped (with a line saying so) until ``jaxgd.fit`` exists.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _util as U

TITLE = "jaxgd.fit on the digits MLP vs optax + lax.scan"
BATCH = 64
LR = 1e-3


def loss(params: Any, batch: Any) -> Any:
    import jax.numpy as jnp
    import optax

    X, y = batch
    h = jnp.tanh(X @ params["W1"] + params["b1"])
    logits = h @ params["W2"] + params["b2"]
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))


def init(key: Any) -> dict:
    import jax
    import jax.numpy as jnp

    k1, k2 = jax.random.split(key)
    return {
        "W1": jax.random.normal(k1, (64, 64), jnp.float32) / 8.0,
        "b1": jnp.zeros(64, jnp.float32),
        "W2": jax.random.normal(k2, (64, 10), jnp.float32) / 8.0,
        "b2": jnp.zeros(10, jnp.float32),
    }


def run(opts: Any) -> list[U.Report]:
    import jax
    import jax.numpy as jnp
    import optax
    from jax import lax

    import jaxgd

    if not hasattr(jaxgd, "fit"):
        return [U.skipped("F", TITLE, "jaxgd.fit is not available yet (issue 5); run again after it is merged")]
    if not U.have("sklearn"):
        return [U.skipped("F", TITLE, "scikit-learn is not installed (load_digits)")]
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = jnp.asarray(digits.data / 16.0, jnp.float32)
    y = jnp.asarray(digits.target, jnp.int32)
    n = X.shape[0]
    epochs = opts.epochs
    key = jax.random.PRNGKey(0)
    p0 = init(jax.random.PRNGKey(1))
    nb = n // BATCH
    opt = optax.adam(LR)

    @jax.jit
    def hand(params: Any, X: Any, y: Any, key: Any) -> Any:
        def epoch(c: Any, e: Any) -> Any:
            params, s = c
            perm = jax.random.permutation(jax.random.fold_in(key, e), n)[: nb * BATCH].reshape(nb, BATCH)

            def step(c: Any, idx: Any) -> Any:
                p, s = c
                value, g = jax.value_and_grad(loss)(p, (X[idx], y[idx]))
                u, s = opt.update(g, s, p)
                return (optax.apply_updates(p, u), s), value

            (params, s), values = lax.scan(step, (params, s), perm)
            return (params, s), values.mean()

        (params, _), history = lax.scan(epoch, (params, opt.init(params)), jnp.arange(epochs))
        return params, history

    fns = {
        "jaxgd.fit(method='adam')": lambda: jaxgd.fit(
            loss, p0, (X, y), batch_size=BATCH, epochs=epochs, key=key, method="adam", lr=LR, progress=False
        ),
        "hand-written optax.adam + lax.scan, jitted": lambda: hand(p0, X, y, key),
    }
    t = U.measure(fns, opts.repeats)
    rows = []
    ref = t["hand-written optax.adam + lax.scan, jitted"].median
    for name, tm in t.items():
        params = tm.value.params if hasattr(tm.value, "params") else tm.value[0]
        logits = jnp.tanh(X @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]
        acc = float(np.mean(np.asarray(jnp.argmax(logits, -1)) == np.asarray(y)))
        rows.append([name, f"{epochs}", U.fmt_time(tm.median), f"{epochs / tm.median:,.1f}",
                     U.fmt_ratio(tm.median / ref), U.fmt_time(tm.compile), U.fmt_float(loss(params, (X, y)), 5),
                     f"{acc:.3f}", f"{tm.spread:.0%}"])
    report = U.Report(
        key="F",
        title=f"{TITLE}: {n} examples, batch {BATCH}, {epochs} epochs, Adam lr={LR:g}",
        columns=["contender", "epochs", "median", "epochs/s", "× hand-written", "first-call extra",
                 "final train loss", "train accuracy", "spread"],
        rows=rows,
        label="fit digits MLP",
    )
    ours = t["jaxgd.fit(method='adam')"].median / ref
    report.targets = [U.Target("issue 15: jaxgd.fit ≤ 1.05× the hand-written optax + lax.scan loop", ours <= 1.05,
                               f"{ours:.3f}×")]
    return [report]
