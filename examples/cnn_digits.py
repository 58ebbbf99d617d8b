"""A small convolutional network on scikit-learn's 8x8 digits, trained with jaxgd.fit.

Two 3x3 convolutions written with ``jax.lax.conv_general_dilated`` (NHWC
images, HWIO kernels; the second with stride 2), ReLU, and a dense softmax
layer: 8x8x1 -> 8x8x8 -> 4x4x16 -> 10. Adam on minibatches of 64.

Two trusted references: the convolution layer is checked against
``scipy.signal.correlate2d`` (deep-learning "convolution" is
cross-correlation) on real digits, and the trained network's test accuracy
must reach 0.95, next to scikit-learn's ``LogisticRegression`` baseline on
the same split.

    python examples/cnn_digits.py [--quick] [--out DIR]
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from _common import classifier, fit, main, report
from scipy.signal import correlate2d
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

import jaxgd
import jaxgd.plot

DIMS = ("NHWC", "HWIO", "NHWC")


def conv(x, kernel, stride=1):
    """``x`` (N, H, W, C_in) cross-correlated with ``kernel`` (3, 3, C_in, C_out), 'SAME' padding."""
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), "SAME", dimension_numbers=DIMS)


def init(seed):
    """He-normal kernels and zero biases (NumPy's generator: no compilation)."""
    rng = np.random.default_rng(seed)

    def he(shape, fan_in):
        return (rng.normal(size=shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    return {
        "c1": he((3, 3, 1, 8), 9), "b1": np.zeros(8, np.float32),
        "c2": he((3, 3, 8, 16), 9 * 8), "b2": np.zeros(16, np.float32),
        "w": he((4 * 4 * 16, 10), 4 * 4 * 16), "b": np.zeros(10, np.float32),
    }


def logits(p, x):
    h = jax.nn.relu(conv(x, p["c1"]) + p["b1"])
    h = jax.nn.relu(conv(h, p["c2"], stride=2) + p["b2"])
    return h.reshape(h.shape[0], -1) @ p["w"] + p["b"]


loss, accuracy = classifier(logits)


def conv_error_vs_scipy(images, kernel):
    """Largest difference between ``conv`` and scipy's 2-D cross-correlation, per output channel."""
    ours = np.asarray(conv(jnp.asarray(images), jnp.asarray(kernel)))
    err = 0.0
    for i, img in enumerate(images[..., 0]):
        for c in range(kernel.shape[-1]):
            ref = correlate2d(img, kernel[:, :, 0, c], mode="same")
            err = max(err, float(np.max(np.abs(ours[i, :, :, c] - ref))))
    return err


def run(quick: bool = False, out: str = "out") -> dict:
    x, y = load_digits(return_X_y=True)
    images = (x / 16.0).astype(np.float32).reshape(-1, 8, 8, 1)
    x_train, x_test, y_train, y_test = train_test_split(images, y, test_size=0.25, random_state=0, stratify=y)

    params = init(0)
    conv_err = conv_error_vs_scipy(x_test[:4], np.asarray(params["c1"]))

    start = time.perf_counter()
    res = fit(loss, params, (x_train, y_train), batch_size=64, epochs=8 if quick else 30, key=jax.random.key(1),
              method="adam", lr=1e-2, eval_data=(x_test, y_test), metric=accuracy, progress=not quick)
    jax.block_until_ready(res)
    seconds = time.perf_counter() - start
    test_acc = float(res.history.metric[-1])  # the metric on eval_data after the last epoch

    with threadpool_limits(limits=1):  # see mlp_digits.py
        baseline = LogisticRegression(max_iter=1000).fit(x_train.reshape(len(x_train), -1), y_train)
    out_dict = {
        "test_accuracy": test_acc,
        "test_accuracy_logreg": float(baseline.score(x_test.reshape(len(x_test), -1), y_test)),
        "conv_max_abs_err_vs_scipy": conv_err,
        "epochs": int(res.epochs),
        "seconds": seconds,
    }
    report("digits CNN (lax.conv_general_dilated): jaxgd.fit", list(out_dict.items()))

    fig, (ax0, ax1) = jaxgd.plot.subplots(1, 2, figsize=(11, 4))
    jaxgd.plot.loss_curve(res, ax0, label="cross-entropy")
    ax1.plot(np.arange(1, int(res.epochs) + 1), res.history.metric, label="test accuracy")
    ax1.axhline(out_dict["test_accuracy_logreg"], color="k", linestyle=":", label="logistic regression")
    ax1.set_xlabel("epoch")
    ax1.legend()
    out_dict["plot"] = str(jaxgd.plot.save(fig, os.path.join(out, "cnn_digits.png")))
    return out_dict


if __name__ == "__main__":
    main(run, __doc__)
