"""What ``Solver`` says about the inputs it is given by mistake (a user review, session 58).

- An integer ``x0`` written as a Python list or number was told to call ``x0.astype(float)``.

References: the advice run as written (``eval`` of the suggested cast, then a run that converges
to the closed-form answer).
The refusals are also rows of tests/test_bad_inputs.py.
"""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd


@pytest.mark.parametrize("x0, advice", [
    pytest.param([0, 0, 0], "jnp.asarray(x0, dtype=float)", id="list"),
    pytest.param(3, "jnp.asarray(x0, dtype=float)", id="int"),
    pytest.param((0, 0, 0), "jnp.asarray(x0, dtype=float)", id="tuple"),
    pytest.param(np.arange(3) * 0, "x0.astype(float)", id="numpy-int64"),
    pytest.param(jnp.zeros(3, jnp.int32), "x0.astype(float)", id="jax-int32"),
    pytest.param({"w": [0, 0, 0]}, "jax.tree.map(lambda v: jnp.asarray(v, dtype=float), x0)", id="dict"),
])
def test_an_integer_x0_is_told_a_cast_that_runs(x0: Any, advice: str) -> None:
    """Reference: the advice run as written, then minimize from the cast x0 reaches the closed-form
    minimum of sum((x - 2)^2) (x = 2 everywhere); a list or a Python int has no .astype."""
    fun = lambda x: sum(jnp.sum((v - 2.0) ** 2) for v in jax.tree.leaves(x))  # noqa: E731
    with pytest.raises(TypeError, match=re.escape(f"x0 must hold real floating-point arrays (cast it, e.g. {advice})")):
        jaxgd.minimize(fun, x0)
    cast = eval(advice, {"jnp": jnp, "jax": jax, "x0": x0})  # noqa: S307 (the message's own code)
    res = jaxgd.minimize(fun, cast, method="gd", lr=0.5)
    assert res.success and all(np.allclose(v, 2.0) for v in jax.tree.leaves(res.params))
