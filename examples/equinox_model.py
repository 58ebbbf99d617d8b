"""Training an Equinox model's parameters with jaxgd.fit.

An ``equinox.nn.MLP`` (30 -> 16 -> 16 -> 1, tanh) classifies scikit-learn's
breast-cancer data. The model itself goes where parameters go: jaxgd.fit
trains its float arrays, leaves everything else (activation functions,
sizes) alone, and hands back a trained ``eqx.nn.MLP``; the loss takes the
model. The trusted reference is scikit-learn's ``LogisticRegression`` test
accuracy on the same split; the network must match it within two points.

Needs equinox (``pip install equinox``); without it the example says so and
exits cleanly. Flax NNX models work the same way (examples/flax_nnx_digits.py).

    python examples/equinox_model.py [--quick] [--out DIR]
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from _common import fit, main, report
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

import jaxgd
import jaxgd.plot

try:
    import equinox as eqx
except ImportError:  # optional
    eqx = None


def logit(model, x):
    return jax.vmap(model)(x)[:, 0]


def loss(model, batch):
    x, y = batch
    z = logit(model, x)
    return jnp.mean(jax.nn.softplus(z) - y * z)  # logistic loss on the logit z


def accuracy(model, batch):
    x, y = batch
    return jnp.mean((logit(model, x) > 0) == (y > 0.5))


def run(quick: bool = False, out: str = "out") -> dict:
    if eqx is None:
        print("equinox is not installed (pip install equinox): skipping this example")
        return {"skipped": True}
    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    mean, std = x_train.mean(0), x_train.std(0)
    x_train, x_test = ((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)

    model = eqx.nn.MLP(30, 1, width_size=16, depth=2, activation=jnp.tanh, key=jax.random.key(0),
                       dtype=jnp.float32)
    start = time.perf_counter()
    res = fit(loss, model, (x_train, y_train.astype(np.float32)), batch_size=32, epochs=15 if quick else 40,
              key=jax.random.key(1), method="adamw", lr=3e-3, l2=1e-2,
              eval_data=(x_test, y_test.astype(np.float32)), metric=accuracy, progress=not quick)
    jax.block_until_ready(res)
    seconds = time.perf_counter() - start
    trained = res.params  # the trained eqx.nn.MLP, ready to use
    assert isinstance(trained, eqx.nn.MLP)

    reference = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    out_dict = {
        "test_accuracy": float(res.history.metric[-1]),  # computed inside the run, on eval_data
        "test_accuracy_logreg": float(reference.score(x_test, y_test)),
        "parameters": int(sum(v.size for v in jax.tree_util.tree_leaves(eqx.filter(trained, eqx.is_array)))),
        "epochs": int(res.epochs),
        "seconds": seconds,
    }
    report("breast cancer, equinox.nn.MLP trained by jaxgd.fit vs sklearn LogisticRegression",
           list(out_dict.items()))

    fig, ax = jaxgd.plot.subplots()
    jaxgd.plot.loss_curve(res, ax, label="eqx.nn.MLP")
    out_dict["plot"] = str(jaxgd.plot.save(fig, os.path.join(out, "equinox_model.png")))
    return out_dict


if __name__ == "__main__":
    main(run, __doc__)
