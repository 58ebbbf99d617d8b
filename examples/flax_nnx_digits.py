"""A Flax NNX MLP on scikit-learn's 8x8 digits, trained with jaxgd.fit.

The ``nnx.Module`` itself goes where parameters go: jaxgd.fit trains its
``nnx.Param`` arrays, keeps everything else (the module graph, and state
such as batch statistics or RNG keys, held fixed) as it is, and hands back a trained module of the
same class. The loss takes the module, as in any Flax code. One hidden layer
of 64 tanh units, Adam on minibatches of 32, a validation split steering
early stopping. The stated result is the test accuracy (>= 0.95); the trusted
reference is scikit-learn's ``MLPClassifier`` with the same hidden layer
(L-BFGS) on the same examples: within two points of it.

Needs flax (``pip install 'jaxgd[flax]'``); without it the example says so
and exits cleanly.

    python examples/flax_nnx_digits.py [--quick] [--out DIR]
"""

from __future__ import annotations

import os
import time
import warnings

import jax
import numpy as np
from _common import classifier, fit, main, report
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

import jaxgd
import jaxgd.plot

try:
    from flax import nnx
except ImportError:  # optional
    nnx = None

HIDDEN = 64


def make_mlp(seed: int):
    """A 64 -> HIDDEN -> 10 MLP with tanh, as an ``nnx.Module``."""

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.hidden = nnx.Linear(64, HIDDEN, rngs=rngs)
            self.out = nnx.Linear(HIDDEN, 10, rngs=rngs)

        def __call__(self, x):
            return self.out(nnx.tanh(self.hidden(x)))

    return MLP(nnx.Rngs(seed))


loss, accuracy = classifier(lambda model, x: model(x))


def run(quick: bool = False, out: str = "out") -> dict:
    if nnx is None:
        print("flax is not installed (pip install 'jaxgd[flax]'): skipping this example")
        return {"skipped": True}
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=0.2, random_state=0, stratify=y_rest)

    model = make_mlp(0)
    start = time.perf_counter()
    res = fit(loss, model, (x_train, y_train), batch_size=32, epochs=20 if quick else 60, key=jax.random.key(1),
              method="adam", lr=3e-3, eval_data=(x_val, y_val), metric=accuracy, patience=8, progress=not quick)
    jax.block_until_ready(res)
    seconds = time.perf_counter() - start
    trained = res.params  # an MLP module again, with the best parameters
    assert type(trained) is type(model)
    test_acc = float(np.mean(np.argmax(np.asarray(trained(x_test)), axis=1) == y_test))

    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="tanh", solver="lbfgs", max_iter=200,
                           random_state=0)
        sk.fit(x_rest, y_rest)

    out_dict = {
        "test_accuracy": test_acc,
        "test_accuracy_sklearn": float(sk.score(x_test, y_test)),
        "best_epoch": int(res.best_epoch),
        "epochs": int(res.epochs),
        "status": res.status_enum.name,
        "seconds": seconds,
    }
    report("digits MLP (nnx.Module, 64-64-10): jaxgd.fit vs sklearn MLPClassifier", list(out_dict.items()))

    fig, ax = jaxgd.plot.subplots()
    jaxgd.plot.loss_curve(res, ax, label="cross-entropy")
    out_dict["plot"] = str(jaxgd.plot.save(fig, os.path.join(out, "flax_nnx_digits.png")))
    return out_dict


if __name__ == "__main__":
    main(run, __doc__)
