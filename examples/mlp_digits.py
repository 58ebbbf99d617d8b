"""A multilayer perceptron on scikit-learn's 8x8 digits, trained with jaxgd.fit.

One hidden layer of 64 tanh units and a softmax output, trained with Adam on
minibatches of 32; a validation split steers early stopping (``patience``)
and its accuracy is recorded every epoch (``metric``). The stated result is
the accuracy on a held-out test set (>= 0.95); the trusted reference is
scikit-learn's ``MLPClassifier`` with the same hidden layer (L-BFGS),
trained on the same training and validation examples.

    python examples/mlp_digits.py [--quick] [--out DIR]
"""

from __future__ import annotations

import os
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from _common import classifier, fit, main, report
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

import jaxgd
import jaxgd.plot

HIDDEN = 64


def init(seed, sizes):
    """Glorot-uniform weights and zero biases for each layer (NumPy's generator:
    initialising on the host costs no compilation)."""
    rng = np.random.default_rng(seed)
    params = []
    for m, n in zip(sizes[:-1], sizes[1:]):
        lim = np.sqrt(6.0 / (m + n))
        params.append({"w": rng.uniform(-lim, lim, (m, n)).astype(np.float32), "b": np.zeros(n, np.float32)})
    return params


def logits(params, x):
    for layer in params[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


loss, accuracy = classifier(logits)


def run(quick: bool = False, out: str = "out") -> dict:
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=0.2, random_state=0, stratify=y_rest)

    params = init(0, [64, HIDDEN, 10])
    start = time.perf_counter()
    res = fit(loss, params, (x_train, y_train), batch_size=32, epochs=20 if quick else 60, key=jax.random.key(1),
              method="adam", lr=3e-3, eval_data=(x_val, y_val), metric=accuracy, patience=8, progress=not quick)
    jax.block_until_ready(res)
    seconds = time.perf_counter() - start
    # test accuracy on the host, in NumPy (an eager JAX call would compile a small program)
    w = [{k: np.asarray(v) for k, v in layer.items()} for layer in res.params]
    hidden = np.tanh(x_test @ w[0]["w"] + w[0]["b"])
    test_acc = float(np.mean(np.argmax(hidden @ w[1]["w"] + w[1]["b"], axis=1) == y_test))

    start = time.perf_counter()
    # One BLAS thread: on a small shared machine an oversubscribed OpenBLAS pool
    # can make this reference many times slower without changing its result.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="tanh", solver="lbfgs", max_iter=200,
                           random_state=0)
        sk.fit(x_rest, y_rest)
    sk_seconds = time.perf_counter() - start

    out_dict = {
        "test_accuracy": test_acc,
        "test_accuracy_sklearn": float(sk.score(x_test, y_test)),
        "val_accuracy": float(res.history.metric[int(res.best_epoch) - 1]),
        "best_epoch": int(res.best_epoch),
        "epochs": int(res.epochs),
        "status": res.status_enum.name,
        "seconds": seconds,
        "seconds_sklearn": sk_seconds,
    }
    report("digits MLP (64-64-10): jaxgd.fit vs sklearn MLPClassifier", list(out_dict.items()))

    fig, (ax0, ax1) = jaxgd.plot.subplots(1, 2, figsize=(11, 4))
    jaxgd.plot.loss_curve(res, ax0, label="cross-entropy")
    ax0.axvline(int(res.best_epoch), color="k", linestyle=":", label="best epoch")
    ax0.legend()
    ax1.plot(np.arange(1, int(res.epochs) + 1), res.history.metric, label="validation accuracy")
    ax1.axhline(test_acc, color="k", linestyle=":", label=f"test accuracy {test_acc:.3f}")
    ax1.set_xlabel("epoch")
    ax1.legend()
    out_dict["plot"] = str(jaxgd.plot.save(fig, os.path.join(out, "mlp_digits.png")))
    return out_dict


if __name__ == "__main__":
    main(run, __doc__)
