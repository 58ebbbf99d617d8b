"""The bad-input table: every public function, each bad input, its exception.

``ROWS`` below is the one source of truth. It parametrises
``test_bad_input`` and it generates ``docs/bad_inputs.md``;
``test_doc_is_up_to_date`` fails when the two drift. After editing ``ROWS``:

    PYTHONPATH=. python tests/test_bad_inputs.py --write

Each row must raise exactly its exception class (not a subclass), with the
fragment (which names the argument) in the message, before anything is
compiled: a compile listener must stay silent, and the loss function must not
even be traced unless the row says so (checks that need the loss's output
shape trace it with ``jax.eval_shape``, which compiles nothing).

Extension point: new public functions (``check_grad``, ``fit``, ``bounds=``
on ``minimize``, ``jaxgd.linesearch`` rules) add their rows in a new section
at the end of ``ROWS``, using ``Ctx`` for shared inputs.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import jaxgd
from jaxgd import schedules
from jaxgd.checkpoint.format import CheckpointError, TreeMismatchError, checkpoint_info, load_checkpoint, save_checkpoint

DOC = Path(__file__).resolve().parent.parent / "docs" / "bad_inputs.md"
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


class Ctx:
    """Shared inputs: a loss that counts its traces, a start point, files on disk."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.traces = 0
        self.x0 = jnp.asarray(np.zeros(3))
        self.x32, self.raw_key = jnp.asarray(np.zeros(3, np.float32)), jnp.asarray(np.zeros(2, np.uint32))
        self.fresh_functions()
        self.data = {"x": np.ones((10, 3)), "y": np.ones(10)}
        self.key = jax.random.PRNGKey(0)
        self.good = self._ckpt("good.ckpt", "gd", np.zeros(3))
        self.adam = self._ckpt("adam.ckpt", "adam", np.zeros(3))
        self.hist2 = self._ckpt("hist2.ckpt", "gd", np.zeros(3), history=2)
        self.shape4 = self._ckpt("shape4.ckpt", "gd", np.zeros(4))
        self.f32 = self._ckpt("f32.ckpt", "gd", np.zeros(3, np.float32))
        self.steps20 = self._ckpt("steps20.ckpt", "gd", np.zeros(3), steps=20)
        self.lr05 = self._ckpt("lr05.ckpt", "gd", np.zeros(3), lr=0.5, clip=None)
        data = self.good.read_bytes()
        self.truncated = self._write("truncated.ckpt", data[: len(data) // 2])
        blob = bytearray(data)
        blob[blob.index(b'"format"') + 2] ^= 1
        self.bad_header = self._write("bad_header.ckpt", bytes(blob))
        blob = bytearray(data)
        blob[blob.index(b"leaf_00001.npy") - 31] ^= 0x40  # the last data byte of leaf_00000 (.params)
        self.bad_leaf = self._write("bad_leaf.ckpt", bytes(blob))
        self.text = self._write("notes.txt", b"not a checkpoint")
        np.savez(directory / "plain.npz", a=np.zeros(2))
        self.plain = directory / "plain.npz"
        header = {"format": "jaxgd-checkpoint", "version": 99, "leaves": [], "metadata": {}}
        np.savez(directory / "v99.npz", __jaxgd_header__=np.frombuffer(json.dumps(header).encode(), np.uint8))
        self.v99 = directory / "v99.npz"
        self.missing = directory / "missing.ckpt"
        self.no_dir = directory / "no_such_dir" / "run.ckpt"
        self.result_shape4 = self._abstract("gd", np.zeros(4))
        self.result_adam = self._abstract("adam", np.zeros(3))
        self.result_gd = self._abstract("gd", np.zeros(3))
        self.fit_result = self._fit_abstract(np.zeros(3))
        self.fit_result4 = self._fit_abstract(np.zeros(4), fun=lambda p, b: jnp.sum(p * p) + jnp.mean(b["y"]))
        self.fit_good = self._fit_ckpt("fit.ckpt", self.fit_result)
        self.fit_batch4 = self._fit_ckpt("fit_batch4.ckpt", self.fit_result, batch_size=4)
        self.fit_shape4 = self._fit_ckpt("fit_shape4.ckpt", self.fit_result4)
        other_key = self.fit_result._replace(state=self.fit_result.state._replace(key=np.array([0, 1], np.uint32)))
        self.fit_other_key = self._fit_ckpt("fit_key.ckpt", other_key)
        self.fit_epoch5 = self._fit_ckpt("fit_epoch5.ckpt", self.fit_result._replace(epochs=np.int32(5)))
        self.fit_rbg = self._fit_ckpt("fit_rbg.ckpt", self.fit_result, key_impl="rbg")
        self.fit_monitor_eval = self._fit_ckpt("fit_eval.ckpt", self.fit_result, monitor="eval")
        self.fit_clip = self._fit_ckpt("fit_clip.ckpt", self.fit_result, lr=0.1, clip=1.0)
        self.fit_loss_key = self._fit_ckpt("fit_loss_key.ckpt", self.fit_result, loss_key=True)
        zeros = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), self.fit_result)
        self.fit_result_with_eval = zeros._replace(epochs=np.int32(1), state=zeros.state._replace(key=np.asarray(self.key)))
        self.models = _models()  # (built here: building a model compiles)

    def fresh_functions(self) -> None:
        """New loss function objects (``f`` for minimize, ``fl`` for fit) that count their
        traces: nothing compiled for an earlier row can be a cache hit for the next."""

        def f(x: Any) -> jax.Array:
            self.traces += 1
            return jnp.sum(x * x)

        def fl(p: Any, b: Any) -> jax.Array:
            self.traces += 1
            return jnp.mean((b["x"] @ p - b["y"]) ** 2)

        self.f, self.fl = f, fl

    def F(self, **kw: Any) -> Any:
        """``fit`` on the context's loss, start point and data, with ``kw`` changed."""
        kw = {"batch_size": 2, "epochs": 3, "key": self.key, "method": "gd", "lr": 0.1, "progress": False, **kw}
        data = {**self.data, "x": kw.pop("data_x")} if "data_x" in kw else self.data
        return jaxgd.fit(kw.pop("fun", self.fl), kw.pop("params", self.x0), data, **kw)

    def _fit_abstract(self, x0: np.ndarray, **kw: Any) -> jaxgd.FitResult:
        """fit's result for ``x0``, by ``jax.eval_shape`` (nothing compiled)."""
        traces = self.traces
        out = jax.eval_shape(lambda p: self.F(params=p, **kw), x0)
        self.traces = traces
        return out

    def _fit_ckpt(self, name: str, result: Any, **meta: Any) -> Path:
        """A fit checkpoint (all zeros unless ``result`` holds values), written without compiling."""
        res = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype) if isinstance(s, jax.ShapeDtypeStruct) else s, result)
        res = res._replace(state=res.state._replace(key=np.asarray(self.key) if name != "fit_key.ckpt" else res.state.key))
        meta = {"kind": "jaxgd.fit", "method": "gd", "batch_size": 2, "examples": 10, "remainder": "drop",
                "key_impl": "threefry2x32", "monitor": "train", **meta}
        save_checkpoint(self.dir / name, res, metadata=meta)
        return self.dir / name

    def _abstract(self, method: str, x0: np.ndarray, history: Any = True) -> jaxgd.Result:
        solver = jaxgd.Solver(lambda x: jnp.sum(x * x), method, 0.1, max_steps=5, history=history)
        return jax.eval_shape(solver.run, x0)

    def _ckpt(self, name: str, method: str, x0: np.ndarray, history: Any = True, steps: int = 0, **settings: Any) -> Path:
        """A minimize-style checkpoint (``steps`` taken; ``settings`` recorded), written without compiling anything."""
        res = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), self._abstract(method, x0, history))
        res = res._replace(steps=np.int32(steps))
        meta = {"kind": "jaxgd.minimize", "method": method, "history_every": 2 if history == 2 else 1, **settings}
        save_checkpoint(self.dir / name, res, metadata=meta)
        return self.dir / name

    def _write(self, name: str, data: bytes) -> Path:
        (self.dir / name).write_bytes(data)
        return self.dir / name


class Row(NamedTuple):
    function: str
    argument: str
    bad: str  # the bad value as the doc shows it
    exception: type
    fragment: str  # a piece of the message; it names the argument
    call: Callable[[Ctx], Any]
    traces: bool = False  # the loss may be traced (eval_shape) before the error


def _vector(x: Any) -> jax.Array:
    return x * 1.0


def _int_loss(x: Any) -> jax.Array:
    return jnp.sum(x).astype(jnp.int32)


class _Unregistered:
    """A parameter class JAX does not know (a plain dataclass would be the same)."""

    def __init__(self, w: Any) -> None:
        self.w = w


class ImplicitAdjoint:
    """optimistix's adjoint objects by name (optimistix is not a test dependency)."""


class RecursiveCheckpointAdjoint:
    """optimistix's adjoint objects by name (optimistix is not a test dependency)."""


def _complex_loss(x: Any) -> jax.Array:
    return jnp.sum(x) * 1j


def _jit_minimize_with_checkpoint(c: Ctx) -> Any:
    return jax.jit(lambda x: jaxgd.minimize(c.f, x, checkpoint_path=c.dir / "jit.ckpt"))(c.x0)


def _jit_save(c: Ctx) -> Any:
    return jax.jit(lambda x: save_checkpoint(c.dir / "jit.ckpt", {"w": x}))(c.x0)


def _resume_with_x64_off(c: Ctx) -> Any:
    with jax.enable_x64(False):
        return M(c, x0=np.zeros(3, np.float32), resume=c.good)


def _x0_past_float32(c: Ctx) -> Any:
    with jax.enable_x64(False):
        return M(c, x0=np.array([1e308, 0.0, 0.0]))


def _check_grad_drawing_without_dtype(c: Ctx) -> Any:
    with jax.enable_x64(False):
        noisy = lambda v, k: jnp.sum((v - jax.random.normal(k, v.shape)) ** 2)  # noqa: E731
        return jaxgd.check_grad(noisy, c.x32, (c.raw_key,))


def M(c: Ctx, **kw: Any) -> Any:
    """``minimize`` on the context's loss and start point, with ``kw`` changed."""
    kw.setdefault("max_steps", 5)
    return jaxgd.minimize(kw.pop("fun", c.f), kw.pop("x0", c.x0), **kw)


_AB = {"a": np.zeros(2), "b": np.zeros(2)}  # a pytree x0 for the bounds rows


@jax.custom_vjp
def _sq(v: Any) -> Any:  # v ** 2 with its own reverse rule (no forward mode: as jax.experimental.ode.odeint)
    return v * v


_sq.defvjp(lambda v: (_sq(v), v), lambda v, ct: (2.0 * v * ct,))  # (its forward pass calls it: odeint's does)


@jax.custom_vjp
def _sq2(v: Any) -> Any:  # v ** 2 with its own reverse rule, whose gradient forward mode passes
    return v * v


_sq2.defvjp(lambda v: (v * v, v), lambda v, ct: (2.0 * v * ct,))


@jax.custom_jvp
def _looped(v: Any) -> Any:  # v ** 2, its slope computed in a while_loop (a gradient reverse mode cannot pass)
    return v * v


@_looped.defjvp
def _looped_jvp(primals: tuple, tangents: tuple) -> tuple:
    (v,), (dv,) = primals, tangents
    return v * v, jax.lax.while_loop(lambda c: c[1] < 1, lambda c: (2.0 * v, c[1] + 1), (v, 0))[0] * dv


def _loop_loss(x: Any, *batch: Any) -> Any:  # ||z||^2 at the fixed point z = x / 2 + z / 2, by a lax.while_loop
    z = jax.lax.while_loop(lambda z: jnp.max(jnp.abs(z - x)) > 1e-6, lambda z: 0.5 * (x + z), jnp.zeros_like(x))
    return jnp.sum(z * z)


def _ab_loss(p: Any) -> Any:
    return jnp.sum((p["a"] - 1.0) ** 2) + jnp.sum((p["b"] + 1.0) ** 2)


def S(c: Ctx, *a: Any, **kw: Any) -> Any:
    return jaxgd.Solver(kw.pop("fun", c.f), *a, **kw)


class _PlainRule:
    """A step-size rule (init and step) whose class is not registered as a pytree."""

    def init(self, params: Any, value: Any, grad: Any) -> tuple:
        return ()

    def step(self, state: Any, ctx: Any) -> Any:  # never reached: refused when the solver is built
        raise AssertionError


R = Row
def _explicit_mesh() -> Any:
    """A one-device mesh of Explicit axes (jax.make_mesh's default)."""
    return jax.make_mesh((1,), ("data",), axis_types=(jax.sharding.AxisType.Explicit,))


def _under_explicit_jit(call: Any) -> Any:
    """``call(mesh)`` traced by jax.jit inside ``jax.set_mesh(mesh)`` (raises before anything compiles)."""
    mesh = _explicit_mesh()
    with jax.set_mesh(mesh):
        return jax.jit(lambda: call(mesh))()


def _jit_explicit_data(c: Any) -> Any:
    """fit under jax.jit on data sharded over an Explicit mesh axis."""
    from jax.sharding import NamedSharding, PartitionSpec

    data = jax.device_put(c.data, NamedSharding(_explicit_mesh(), PartitionSpec("data")))
    return jax.jit(lambda d: jaxgd.fit(c.fl, c.x0, d, batch_size=2, epochs=3, key=c.key, method="gd", lr=0.1,
                                       progress=False))(data)


def _eqx_module() -> Any:
    """An Equinox module holding a float array and a function (minimize and fit split such a model)."""
    import equinox as eqx

    class Scaled(eqx.Module):
        w: jax.Array
        act: Any

    return Scaled(np.ones(2), jnp.tanh)


ROWS: list[Row] = [
    # -- minimize: the loss ------------------------------------------------------
    R("minimize", "fun", "3 (not callable)", TypeError, "fun must be callable", lambda c: M(c, fun=3)),
    R("minimize", "fun", "returns shape (3,)", TypeError, "fun must return a real scalar loss", lambda c: M(c, fun=_vector), True),
    R("minimize", "fun", "runs a lax.while_loop (a fixed point)", ValueError, "fun: jax.grad cannot differentiate the loss: it runs a lax.while_loop", lambda c: M(c, fun=_loop_loss), True),
    R("Solver.init", "fun", "runs a lax.while_loop (a fixed point)", ValueError, "fun: jax.grad cannot differentiate the loss: it runs a lax.while_loop", lambda c: jaxgd.Solver(_loop_loss, "gd", 0.1).init(c.x0), True),
    R("check_grad", "fun", "runs a lax.while_loop (a fixed point)", ValueError, "fun: jax.grad cannot differentiate the loss: it runs a lax.while_loop", lambda c: jaxgd.check_grad(_loop_loss, c.x0), True),
    R("minimize", "fun", "a NumPy loss, np.sum(np.logaddexp(0, x)) (scipy's)", TypeError, "fun calls NumPy (np.*, np.asarray, float()) on a traced value", lambda c: M(c, fun=lambda x: np.sum(np.logaddexp(0.0, x))), True),
    R("minimize", "fun", "a Python if on a parameter's value", TypeError, "fun takes a Python if (or while, bool(), and/or) on a traced value", lambda c: M(c, fun=lambda x: jnp.sum(x ** 2) if x[0] > 0 else jnp.sum(x)), True),
    R("minimize", "fun", "a Python if on a parameter's value, args=(2,)", TypeError, "on the parameters, write it as jnp.where(cond, a, b) or lax.cond; on a Python number in args", lambda c: M(c, fun=lambda x, k: jnp.sum(x ** k) if x[0] > 0 else jnp.sum(x), args=(2,)), True),
    R("minimize", "fun", "returns an int32 scalar", TypeError, "fun must return a real scalar loss", lambda c: M(c, fun=_int_loss), True),
    R("minimize", "fun", "returns a complex scalar", TypeError, "fun must return a real scalar loss", lambda c: M(c, fun=_complex_loss), True),
    R("minimize", "has_aux", "True, fun returns a scalar", TypeError, "with has_aux=True, fun must return a pair", lambda c: M(c, has_aux=True), True),
    R("minimize", "has_aux", '"yes"', TypeError, "has_aux must be a bool", lambda c: M(c, has_aux="yes")),
    R("minimize", "max_steps", "10**9 with history=True", ValueError, "max_steps=1000000000 with history=True records up to 1,000,000,000 history rows, allocated before the run", lambda c: M(c, max_steps=10**9)),
    R("Solver", "history", "True with max_steps=2**31 - 1", ValueError, "pass history=k to record every k-th step, or history=False", lambda c: S(c, max_steps=2**31 - 1)),
    R("minimize", "args", "(2,) used as a slice bound", IndexError, "a Python number, string, bool or function that fun uses as a static value (a slice bound, a shape, an if) goes in fun's closure instead", lambda c: M(c, fun=lambda x, n: jnp.sum(x[:n] ** 2), args=(2,)), True),
    R("minimize", "args", '{"p": 2, "mode": "lp"} (a str leaf)', TypeError, "'mode'] is a str: minimize traces every leaf of args as an array",
      lambda c: M(c, fun=lambda x, a: jnp.sum(x ** a["p"]), args={"p": 2, "mode": "lp"})),
    R("minimize", "has_aux", "False, fun returns (loss, aux)", TypeError, "fun must return a real scalar loss; got a tuple of 2 (a pair (loss, aux)? pass has_aux=True; a pair (loss, gradient)", lambda c: M(c, fun=lambda x: (c.f(x), x)), True),
    R("Solver.init", "has_aux", "False, fun returns (loss, aux) (under jax.eval_shape)", TypeError, "got a tuple of 2 (a pair (loss, aux)? pass has_aux=True; a pair (loss, gradient), scipy's jac=True form? return the loss alone", lambda c: jax.eval_shape(jaxgd.Solver(lambda x: (c.f(x), x), "gd", 0.1).init, c.x0), True),
    R("minimize", "fun", "returns (loss,) (a stray trailing comma)", TypeError,
      "got a tuple of length 1 (a trailing comma, `return loss,`? drop the comma)",
      lambda c: M(c, fun=lambda x: (c.f(x),)), True),
    R("minimize", "fun", "returns (loss, a, b) without has_aux", TypeError,
      "got a tuple of length 3 (with has_aux=True fun returns a pair (loss, aux)",
      lambda c: M(c, fun=lambda x: (c.f(x), x, x)), True),
    R("Solver.init", "has_aux", "True, fun returns a scalar", TypeError, "with has_aux=True, fun must return a pair",
      lambda c: S(c, "gd", 0.1, has_aux=True).init(c.x0), True),
    R("Solver.init", "has_aux", "True, fun returns (loss, a, b)", TypeError,
      "with has_aux=True, fun must return a pair",
      lambda c: S(c, "gd", 0.1, has_aux=True, fun=lambda x: (c.f(x), x, x)).init(c.x0), True),
    R("Solver.init", "fun", "returns shape (1,)", TypeError, "fun must return a real scalar loss; got shape (1,)",
      lambda c: S(c, "gd", 0.1, fun=lambda x: c.f(x)[None]).init(c.x0), True),
    R("Solver.init", "fun", "returns an int32 scalar", TypeError,
      "fun must return a real scalar loss; got shape () and dtype int32",
      lambda c: S(c, "gd", 0.1, fun=_int_loss).init(c.x0), True),
    R("Solver.init", "fun", "returns (loss,) (a stray trailing comma)", TypeError,
      "got a tuple of length 1 (a trailing comma",
      lambda c: S(c, "gd", 0.1, fun=lambda x: (c.f(x),)).init(c.x0), True),
    R("Solver.run", "x0", "[0.0, 0.0, 0.0] (a list, fun does x * x)", TypeError,
      "x0 is a Python list of 3 numbers, which JAX treats as a pytree of 3 separate scalars, not a vector: "
      "pass jnp.asarray(x0)",
      lambda c: S(c, "gd", 0.1).run([0.0, 0.0, 0.0]), True),
    # -- minimize: x0 ----------------------------------------------------------------
    R("minimize", "x0", "a Flax Linen model's variables {'params': ..., 'batch_stats': ...}", ValueError, "x0 holds a Flax Linen model's variables with a 'batch_stats' collection", lambda c: M(c, x0={"params": {"w": c.x0}, "batch_stats": {"mean": c.x0}}, fun=lambda v: jnp.sum(v["params"]["w"] ** 2))),
    R("minimize", "x0", "Linen variables {'params': ..., 'counter': {'step': int32}}", TypeError, "x0 leaf ['counter']['step'] has dtype int32; x0 must hold real floating-point arrays. x0 has a 'params' entry beside others", lambda c: M(c, x0={"params": {"w": c.x0}, "counter": {"step": np.int32(0)}}, fun=lambda v: jnp.sum(v["params"]["w"] ** 2))),
    R("minimize", "x0", "{} (empty pytree)", ValueError, "x0 must contain at least one", lambda c: M(c, x0={})),
    R("minimize", "x0", "np.array([1e308, 0, 0]) with x64 off (finite in float64, Inf in float32)", ValueError, "x0 leaf (root) overflows float32, the dtype JAX gives it", _x0_past_float32),
    R("minimize", "x0", "None", ValueError, "x0 must contain at least one", lambda c: M(c, x0=None)),
    R("minimize", "x0", "np.zeros(0)", ValueError, "x0 must contain at least one non-empty array", lambda c: M(c, x0=np.zeros(0))),
    R("minimize", "x0", '{"w": np.zeros((2, 0))}', ValueError, "leaf ['w'] of shape (2, 0)", lambda c: M(c, x0={"w": np.zeros((2, 0))})),
    R("minimize", "x0", '{"a": np.zeros(0), "b": np.ones(2)}', ValueError, "got leaf ['a'] of shape (0,); leave it out of x0",
      lambda c: M(c, x0={"a": np.zeros(0), "b": np.ones(2)})),
    R("minimize", "x0", "np.arange(3) (int64)", TypeError, "x0 leaf (root) has dtype int64", lambda c: M(c, x0=np.arange(3))),
    R("minimize", "x0", '{"w": int32 array}', TypeError, "x0 leaf ['w'] has dtype int32", lambda c: M(c, x0={"w": np.zeros(2, np.int32)})),
    R("minimize", "x0", "3 (Python int)", TypeError,
      "x0 leaf (root) has dtype int64; x0 must hold real floating-point arrays "
      "(cast it, e.g. jnp.asarray(x0, dtype=float))",
      lambda c: M(c, x0=3)),
    R("minimize", "x0", "[0, 0, 0] (Python ints)", TypeError,
      "x0 leaf [0] has dtype int64; x0 must hold real floating-point arrays "
      "(cast it, e.g. jnp.asarray(x0, dtype=float))",
      lambda c: M(c, x0=[0, 0, 0])),
    R("minimize", "x0", '{"w": [0, 0]} (Python ints)', TypeError,
      "(cast it, e.g. jax.tree.map(lambda v: jnp.asarray(v, dtype=float), x0))", lambda c: M(c, x0={"w": [0, 0]})),
    R("minimize", "x0", "a SolverState", TypeError, "x0 is a jaxgd.SolverState, not parameters: pass state.params",
      lambda c: M(c, x0=c.result_adam.state)),
    R("minimize", "x0", "a Result", TypeError,
      "x0 is a jaxgd.Result, not parameters: pass result.params to start at its point, or continue the run with "
      "minimize(fun, result.params, resume=result)", lambda c: M(c, x0=c.result_gd)),
    R("minimize", "x0", "complex128 array", TypeError, "x0 leaf (root) has dtype complex128; x0 must hold real floating-point arrays: optimise the real and imaginary parts as two real leaves", lambda c: M(c, x0=np.zeros(2, complex))),
    R("minimize", "x0", "an unregistered dataclass", TypeError, "x0 leaf (root) is a _Unregistered, which JAX does not know as a pytree", lambda c: M(c, x0=_Unregistered(np.zeros(2)))),
    R("minimize", "x0", "bool array", TypeError, "x0 leaf (root) has dtype bool", lambda c: M(c, x0=np.array([True]))),
    R("minimize", "x0", '"abc"', TypeError, "x0 leaf (root) has dtype <U3", lambda c: M(c, x0="abc")),
    R("minimize", "x0", "[1.0, nan]", ValueError, "x0 leaf [1] contains NaN or Inf", lambda c: M(c, x0=[1.0, math.nan])),
    R("minimize", "x0", "array with inf", ValueError, "x0 leaf (root) contains NaN or Inf", lambda c: M(c, x0=np.array([0.0, np.inf]))),
    # -- minimize: method and step size ------------------------------------------------
    R("minimize", "method", '"sgd2"', ValueError, "method='sgd2' is not a known method", lambda c: M(c, method="sgd2")),
    R("minimize", "method", "optax.MultiSteps(optax.adam(0.1), 2)", TypeError, "(optax.MultiSteps: pass its .gradient_transformation())", lambda c: M(c, method=_optax().MultiSteps(_optax().adam(0.1), 2))),
    R("minimize", "method", "3", TypeError, "method must be a method name", lambda c: M(c, method=3)),
    R("minimize", "method", "None", TypeError, "method must be a method name", lambda c: M(c, method=None)),
    R("minimize", "method", "a Direction whose d is shaped (2,) for params (3,)", TypeError, "method='short': a Direction's update must return d shaped like params", lambda c: M(c, method=jaxgd.Direction("short", lambda p: (), lambda g, s, p, **k: (-g[:2], s)), lr=0.1), True),
    R("minimize", "method", "a Direction whose state grows each step", TypeError, "method='grow': its state must keep the structure, shapes and dtypes init gave it", lambda c: M(c, method=jaxgd.Direction("grow", lambda p: jnp.zeros(0), lambda g, s, p, **k: (-g, jnp.concatenate([s, g[:1]]))), lr=0.1), True),
    R("minimize", "method", "a Direction whose update takes no value/value_fn", TypeError, "it does not take value and value_fn", lambda c: M(c, method=jaxgd.Direction("nokw", lambda p: (), lambda g, s, p: (-g, s)), lr=0.1), True),
    R("minimize", "method", "a Direction with default_lr=-0.1 (no lr given)", ValueError, "no lr was given: this is method='dlr''s default_lr", lambda c: M(c, method=jaxgd.Direction("dlr", lambda p: (), lambda g, s, p, **k: (-g, s), default_lr=-0.1))),
    R("minimize", "lr", "0.0", ValueError, "lr must be > 0 and finite", lambda c: M(c, lr=0.0)),
    R("minimize", "lr", "-0.1", ValueError, "lr must be > 0 and finite", lambda c: M(c, lr=-0.1)),
    R("minimize", "lr", "nan", ValueError, "lr must be > 0 and finite", lambda c: M(c, lr=math.nan)),
    R("minimize", "lr", "inf", ValueError, "lr must be > 0 and finite", lambda c: M(c, lr=math.inf)),
    R("minimize", "lr", '"fast"', TypeError, "lr must be a float, a schedule", lambda c: M(c, lr="fast")),
    R("minimize", "lr", "True", TypeError, "lr must be a float, a schedule", lambda c: M(c, lr=True)),
    R("minimize", "lr", "np.array([0.1, 0.2])", ValueError, "a real scalar (a float or a 0-d floating array), got an array of shape (2,) and dtype float64", lambda c: M(c, lr=np.array([0.1, 0.2]))),
    R("minimize", "lr", "np.array(1) (integer array)", ValueError, "a real scalar (a float or a 0-d floating array), got an array of shape () and dtype int64", lambda c: M(c, lr=np.array(1))),
    R("minimize", "lr", "np.complex128(0.1)", ValueError, "a real scalar (a float or a 0-d floating array), got an array of shape () and dtype complex128", lambda c: M(c, lr=np.complex128(0.1))),
    R("minimize", "lr", "lambda k: [0.1, 0.1] (vector schedule)", TypeError, "lr as a schedule must map a step count to a real scalar", lambda c: M(c, lr=lambda k: jnp.ones(2) * 0.1)),
    R("minimize", "lr", "lambda k: 0.1 / jnp.sqrt(k) (lr(0) = inf)", ValueError, "lr as a schedule must give a finite step size >= 0 at the first step, count 0, got lr(0)=inf: the step count starts at 0", lambda c: M(c, lr=lambda k: 0.1 / jnp.sqrt(k))),
    R("minimize", "lr", "lambda k: -0.1 (a schedule)", ValueError, "got lr(0)=-0.1: a negative step size moves up the gradient", lambda c: M(c, lr=lambda k: -0.1)),
    R("minimize", "lr", "per_epoch(optax.exponential_decay(-0.5, 1, 0.5), 3)", ValueError, "got lr(0)=-0.5: a negative step size", lambda c: M(c, lr=schedules.per_epoch(schedules.exponential_decay(-0.5, 1, 0.5), 3))),
    R("fit", "lr", "lambda k: 0.1 / jnp.sqrt(k) (lr(0) = inf)", ValueError, "got lr(0)=inf: the step count starts at 0", lambda c: c.F(lr=lambda k: 0.1 / jnp.sqrt(k))),
    R("minimize", "lr", "lambda: 0.1 (no count argument)", TypeError, "lr as a schedule must map a step count to a real scalar", lambda c: M(c, lr=lambda: 0.1)),
    # -- minimize: loop control ---------------------------------------------------------
    R("minimize", "max_steps", "-1", ValueError, "max_steps must be a non-negative integer", lambda c: M(c, max_steps=-1)),
    R("minimize", "lr", "a rule whose class is not a registered pytree", TypeError, "lr is a step-size rule (init and step) of class _PlainRule, which is not a registered JAX pytree", lambda c: M(c, lr=_PlainRule())),
    R("minimize", "max_steps", "2**31", ValueError, "max_steps must be at most 2**31 - 1 = 2147483647 (the step counter is an int32)", lambda c: M(c, max_steps=2**31)),
    R("minimize", "method", "optax.scale_by_schedule(lambda k: lr) with lr under jax.grad", ValueError, "closes over a value traced by jax.grad or jax.jvp", lambda c: jax.grad(lambda lr: M(c, method=_optax().scale_by_schedule(lambda k: lr)).loss)(1.0), True),
    R("minimize", "max_steps", "a tracer (under jax.jit)", ValueError, "max_steps must be a non-negative integer, got max_steps=", lambda c: jax.jit(lambda k: M(c, max_steps=k))(3)),
    R("minimize", "max_steps", "10.0", ValueError, "max_steps must be a non-negative integer", lambda c: M(c, max_steps=10.0)),
    R("minimize", "max_steps", "True", ValueError, "max_steps must be a non-negative integer", lambda c: M(c, max_steps=True)),
    R("minimize", "max_steps", '"10"', ValueError, "max_steps must be a non-negative integer", lambda c: M(c, max_steps="10")),
    R("minimize", "gtol", "-1e-6", ValueError, "gtol must be a non-negative number", lambda c: M(c, gtol=-1e-6)),
    R("minimize", "gtol", "nan", ValueError, "gtol must be a non-negative number", lambda c: M(c, gtol=math.nan)),
    R("minimize", "gtol", '"small"', TypeError, "gtol must be a non-negative number", lambda c: M(c, gtol="small")),
    R("minimize", "gtol", "np.array([1e-6, 1e-6])", ValueError, "gtol must be a non-negative number", lambda c: M(c, gtol=np.array([1e-6, 1e-6]))),
    R("minimize", "gtol", "np.complex128(1e-6)", TypeError, "gtol must be a non-negative number", lambda c: M(c, gtol=np.complex128(1e-6))),
    R("minimize", "ftol", "-1.0", ValueError, "ftol must be a non-negative number", lambda c: M(c, ftol=-1.0)),
    R("minimize", "xtol", "np.array(-1.0) (0-d array)", ValueError, "xtol must be a non-negative number", lambda c: M(c, xtol=np.array(-1.0))),
    R("minimize", "l1", "-0.1", ValueError, "l1 must be a non-negative finite number", lambda c: M(c, l1=-0.1)),
    R("minimize", "l1", "inf", ValueError, "l1 must be a non-negative finite number", lambda c: M(c, l1=math.inf)),
    R("minimize", "l2", "nan", ValueError, "l2 must be a non-negative finite number", lambda c: M(c, l2=math.nan)),
    R("minimize", "l2", "None", TypeError, "l2 must be a non-negative finite number", lambda c: M(c, l2=None)),
    R("minimize", "clip", "0.0", ValueError, "clip must be None or a positive number", lambda c: M(c, clip=0.0)),
    R("minimize", "clip", "np.array(-1.0)", ValueError, "clip must be None or a positive number", lambda c: M(c, clip=np.array(-1.0))),
    R("minimize", "clip", '"big"', TypeError, "clip must be None or a positive number", lambda c: M(c, clip="big")),
    R("minimize", "history", "-1", ValueError, "history must be a bool or a positive integer", lambda c: M(c, history=-1)),
    R("minimize", "history", "0.5", TypeError, "history must be a bool or a positive integer", lambda c: M(c, history=0.5)),
    R("minimize", "history", '"yes"', TypeError, "history must be a bool or a positive integer", lambda c: M(c, history="yes")),
    R("minimize", "progress", "-2", ValueError, "progress must be a bool or a positive integer", lambda c: M(c, progress=-2)),
    R("minimize", "progress", '"on"', TypeError, "progress must be a bool or a positive integer", lambda c: M(c, progress="on")),
    R("minimize", "gtol_norm", "1", ValueError, "gtol_norm must be None, 2 or inf (math.inf or numpy.inf), got gtol_norm=1", lambda c: M(c, gtol_norm=1)),
    R("minimize", "gtol_norm", '"inf" (a string)', ValueError, "gtol_norm must be None, 2 or inf", lambda c: M(c, gtol_norm="inf")),
    R("minimize", "gtol_norm", "True", ValueError, "gtol_norm must be None, 2 or inf", lambda c: M(c, gtol_norm=True)),
    R("minimize", "gtol_norm", "-math.inf", ValueError, "gtol_norm must be None, 2 or inf", lambda c: M(c, gtol_norm=-math.inf)),
    R("minimize", "unroll", "0", ValueError, "unroll must be None (automatic) or a positive integer", lambda c: M(c, unroll=0)),
    R("minimize", "unroll", "2.0", ValueError, "unroll must be None (automatic) or a positive integer", lambda c: M(c, unroll=2.0)),
    R("minimize", "unroll", "True", ValueError, "unroll must be None (automatic) or a positive integer", lambda c: M(c, unroll=True)),
    R("minimize", "lr", "jaxgd.linesearch.MoreThuente(initial=1e308) with float32 x0", ValueError, "lr=MoreThuente's initial=1e+308 overflows float32, the dtype the step-size rule runs in", lambda c: M(c, x0=np.float32(c.x0), lr=jaxgd.linesearch.MoreThuente(initial=1e308))),
    R("minimize", "lr", "jaxgd.linesearch.Polyak(f_star=-1e308) with float32 x0", ValueError, "lr=Polyak's f_star=-1e+308 overflows float32", lambda c: M(c, x0=np.float32(c.x0), lr=jaxgd.linesearch.Polyak(f_star=-1e308))),
    R("minimize", "lr", "schedules.inverse_time_decay(1e308, 0.1) with float32 x0", ValueError, "lr=InverseTimeDecay's init_value=1e+308 overflows float32", lambda c: M(c, x0=np.float32(c.x0), lr=schedules.inverse_time_decay(1e308, 0.1))),
    R("minimize", "unroll", "10**12 (more than 64 steps a block)", ValueError, "unroll=1000000000000 is more than jaxgd takes (64)", lambda c: M(c, unroll=10**12)),
    R("minimize", "(keyword)", "maxiter=10", TypeError, "unexpected keyword argument(s) maxiter", lambda c: M(c, maxiter=10)),
    R("minimize", "(keyword)", "max_step=10 (typo)", TypeError, "(did you mean max_steps?)", lambda c: M(c, max_step=10)),
    # -- minimize: checkpoints and resume ----------------------------------------------------
    R("minimize", "checkpoint_every", "0", ValueError, "checkpoint_every must be None or a positive integer", lambda c: M(c, checkpoint_every=0, checkpoint_path=c.good)),
    R("minimize", "checkpoint_every", "2.5", TypeError, "checkpoint_every must be None or a positive integer", lambda c: M(c, checkpoint_every=2.5, checkpoint_path=c.good)),
    R("minimize", "checkpoint_every", "True", TypeError, "checkpoint_every must be None or a positive integer", lambda c: M(c, checkpoint_every=True, checkpoint_path=c.good)),
    R("minimize", "checkpoint_every", "10 without checkpoint_path", ValueError, "checkpoint_every=10 needs checkpoint_path=", lambda c: M(c, checkpoint_every=10)),
    R("minimize", "checkpoint_path", "123", TypeError, "checkpoint_path must be a str or os.PathLike", lambda c: M(c, checkpoint_path=123)),
    R("minimize", "checkpoint_path", "in a missing directory", FileNotFoundError, "checkpoint_path: directory", lambda c: M(c, checkpoint_path=c.no_dir)),
    R("minimize", "checkpoint_path", "an existing directory", IsADirectoryError, "is a directory; pass a file path", lambda c: M(c, checkpoint_path=c.dir)),
    R("minimize", "checkpoint_path", '""', ValueError, "checkpoint_path is the empty string; pass a file path", lambda c: M(c, checkpoint_path="")),
    R("minimize", "checkpoint_path", "under jax.jit", ValueError, "checkpoint_path cannot be used while minimize runs under jax.jit", _jit_minimize_with_checkpoint),
    R("minimize", "resume", "a Result, under jax.grad of args", ValueError, "resume cannot be used while minimize runs under jax.jit, jax.vmap or jax.grad (args are tracers)",
      lambda c: jax.grad(lambda s: jnp.sum(jaxgd.minimize(lambda x, s: c.f(x) * s, c.x0, (s,), resume=c.result_gd).params))(1.0)),
    R("minimize", "checkpoint_path", "under jax.grad of a value fun closes over", ValueError, "(values fun closes over are tracers)",
      lambda c: jax.grad(lambda s: jnp.sum(jaxgd.minimize(lambda x: c.f(x) * s, c.x0, checkpoint_path=c.dir / "g.ckpt").params))(1.0), True),
    R("minimize", "resume", "3", TypeError, "resume must be None, a jaxgd.Result or a checkpoint path", lambda c: M(c, resume=3)),
    R("minimize", "resume", "a SolverState", TypeError, "resume must be None, a jaxgd.Result or a checkpoint path", lambda c: M(c, resume=c.result_adam.state)),
    R("minimize", "resume", "a missing file", FileNotFoundError, "resume: no checkpoint file", lambda c: M(c, resume=c.missing)),
    R("minimize", "resume", "a truncated file", CheckpointError, "not a readable jaxgd checkpoint", lambda c: M(c, resume=c.truncated), True),
    R("minimize", "resume", "a file with a corrupted header", CheckpointError, "the checkpoint header is corrupted", lambda c: M(c, resume=c.bad_header), True),
    R("minimize", "resume", "a file with a corrupted leaf", CheckpointError, "leaf .params is corrupted", lambda c: M(c, resume=c.bad_leaf), True),
    R("minimize", "resume", "a plain .npz file", CheckpointError, "not a jaxgd checkpoint", lambda c: M(c, resume=c.plain), True),
    R("minimize", "resume", "a checkpoint of x0 with shape (4,)", TreeMismatchError, "leaf .params: expected shape (3,) dtype float64, found shape (4,) dtype float64", lambda c: M(c, resume=c.shape4), True),
    R("minimize", "resume", "a checkpoint of float32 x0", TreeMismatchError, "leaf .params: expected shape (3,) dtype float64, found shape (3,) dtype float32", lambda c: M(c, resume=c.f32), True),
    R("minimize", "resume", "a checkpoint written by method='adam'", ValueError, "was written with method='adam', but this call has method='gd'", lambda c: M(c, resume=c.adam), True),
    R("minimize", "resume", "a checkpoint written with history=2", ValueError, "was written with history=2, but this call has history=1", lambda c: M(c, resume=c.hist2), True),
    R("minimize", "resume", "a checkpoint written with lr=0.5 (call: lr=0.1, clip=2.0)", ValueError,
      "was written with lr=0.5, clip=None, but this call has lr=0.1, clip=2.0", lambda c: M(c, resume=c.lr05, lr=0.1, clip=2.0), True),
    R("minimize", "resume", "a float64 checkpoint with JAX's 64-bit mode off", TreeMismatchError,
      "the checkpoint holds 64-bit leaves (.params is float64", _resume_with_x64_off, True),
    R("minimize", "resume", "a Result of x0 with shape (4,)", TreeMismatchError, "resume.state.params: leaves differ from x0", lambda c: M(c, resume=c.result_shape4), True),
    R("minimize", "resume", "a Result of method 'adam' (call: momentum)", TreeMismatchError, "direction_state", lambda c: M(c, resume=c.result_adam, method="momentum"), True),
    R("minimize", "resume", "a Result 20 steps in (call: max_steps=5)", ValueError, "resume: the resume result has already run 20 steps, more than this call's max_steps=5", lambda c: M(c, resume=jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), c.result_gd)._replace(steps=np.int32(20)), lr=0.1), True),
    R("minimize", "resume", "a Result of 4 steps with 4 history rows (call: history=2)", ValueError, "resume: the resume result's history holds 4 recorded rows for its 4 steps, where this call's history=2 records 2", lambda c: M(c, resume=jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), c.result_gd)._replace(steps=np.int32(4), history=jaxgd.History(*[np.zeros(4)] * 3)), history=2, lr=0.1), True),
    R("minimize", "resume", "a checkpoint 20 steps in (call: max_steps=5)", ValueError, "has already run 20 steps, more than this call's max_steps=5", lambda c: M(c, resume=c.steps20, lr=0.1), True),
    R("minimize", "resume", "a Result with a 2-d history", TreeMismatchError, "resume.history.loss must be a 1-d array", lambda c: M(c, resume=c.result_adam._replace(history=jax.tree_util.tree_map(lambda h: jax.ShapeDtypeStruct((5, 1), h.dtype), c.result_adam.history)), method="adam"), True),
    # -- Solver ---------------------------------------------------------------------------------
    R("Solver", "fun", '"f" (not callable)', TypeError, "fun must be callable", lambda c: S(c, fun="f")),
    R("Solver", "method", '"bfgs2"', ValueError, "method='bfgs2' is not a known method", lambda c: S(c, "bfgs2")),
    R("Solver", "lr", "-1.0", ValueError, "lr must be > 0 and finite", lambda c: S(c, "gd", -1.0)),
    R("Solver", "unroll", "-1", ValueError, "unroll must be None (automatic) or a positive integer", lambda c: S(c, unroll=-1)),
    R("Solver", "max_steps", "-3", ValueError, "max_steps must be a non-negative integer", lambda c: S(c, max_steps=-3)),
    R("Solver", "gtol", "np.array([1.0, 2.0])", ValueError, "gtol must be a non-negative number", lambda c: S(c, gtol=np.array([1.0, 2.0]))),
    R("Solver", "gtol_norm", "np.nan", ValueError, "gtol_norm must be None, 2 or inf", lambda c: S(c, gtol_norm=np.nan)),
    R("Solver", "history", "0.5", TypeError, "history must be a bool or a positive integer", lambda c: S(c, history=0.5)),
    R("Solver", "has_aux", "1", TypeError, "has_aux must be a bool", lambda c: S(c, has_aux=1)),
    R("Solver", "(keyword)", "maxiter=10", TypeError, "Solver() got unexpected keyword argument(s) maxiter (did you mean max_steps, jaxgd's name for maxiter?)", lambda c: S(c, maxiter=10)),
    R("Solver", "(keyword)", "learning_rate=0.1", TypeError, "(did you mean lr, jaxgd's name for learning_rate?)", lambda c: S(c, learning_rate=0.1)),
    R("Solver.resume", "result", "a SolverState", TypeError, "result must be a jaxgd.Result", lambda c: S(c, "adam").resume(c.result_adam.state)),
    R("Solver.resume", "result", "a Result of method 'adam' (solver: momentum)", TreeMismatchError, "result.state (method 'momentum'): tree structure differs", lambda c: S(c, "momentum").resume(c.result_adam), True),
    R("Solver.step", "state", "a state of method 'adam' (solver: lbfgs)", TreeMismatchError,
      "state.direction_state is ScaleByAdamState, the state of method 'adam' or 'adamw' (this solver's method 'lbfgs' "
      "builds LBFGSState): to switch solvers, start this one from the old run's parameters, solver.init(state.params)",
      lambda c: S(c, "lbfgs").step(c.result_adam.state), True),
    R("Solver.step", "state", "a state of method 'adam' (solver: gd, lr=0.1)", TreeMismatchError,
      "state (method 'gd'): tree structure differs from the state this solver builds",
      lambda c: S(c, "gd", 0.1).step(c.result_adam.state), True),
    R("Solver.step", "state", "a state of gd, lr=0.1 (solver: gd, lr=Backtracking())", TreeMismatchError,
      "state comes from a solver of other options: to switch solvers, start this one from the old run's parameters",
      lambda c: S(c, "gd", jaxgd.linesearch.Backtracking()).step(c.result_gd.state), True),
    R("Solver.step", "state", "jnp.zeros(3) (parameters)", TypeError,
      "state must be a jaxgd.SolverState (from Solver.init or Solver.step), got ArrayImpl; "
      "to start from parameters x0, step from solver.init(x0)", lambda c: S(c, "gd", 0.1).step(c.x0)),
    R("Solver.step", "state", "a Result", TypeError,
      "got Result; pass result.state, or continue the run with solver.resume(result)",
      lambda c: S(c, "gd", 0.1).step(c.result_gd)),
    R("Solver.init", "x0", "[nan, 0, 0]", ValueError, "x0 leaf (root) contains NaN or Inf",
      lambda c: S(c, "lbfgs").init(np.array([np.nan, 0.0, 0.0]))),
    R("Solver.run", "x0", "[inf, 0, 0]", ValueError, "x0 leaf (root) contains NaN or Inf",
      lambda c: S(c, "lbfgs").run(np.array([np.inf, 0.0, 0.0]))),
    R("Solver.init", "x0", "a SolverState", TypeError,
      "x0 is a jaxgd.SolverState, not parameters: pass state.params to start at its point, "
      "or continue it with solver.step(state)",
      lambda c: S(c, "adam").init(c.result_adam.state)),
    R("Solver.run", "x0", "a Result", TypeError,
      "x0 is a jaxgd.Result, not parameters: pass result.params to start at its point, "
      "or continue it with solver.resume(result)",
      lambda c: S(c, "gd", 0.1).run(c.result_gd)),
    # -- jaxgd.schedules -----------------------------------------------------------------------------
    R("schedules.step_decay", "init_value", "0.0", ValueError, "init_value must be > 0", lambda c: schedules.step_decay(0.0, 10)),
    R("schedules.step_decay", "init_value", "nan", ValueError, "init_value must be > 0", lambda c: schedules.step_decay(math.nan, 10)),
    R("schedules.step_decay", "init_value", '"0.1"', TypeError, "init_value must be a real number", lambda c: schedules.step_decay("0.1", 10)),
    R("schedules.step_decay", "step_size", "0", ValueError, "step_size must be > 0", lambda c: schedules.step_decay(0.1, 0)),
    R("schedules.step_decay", "step_size", "2.5", ValueError, "step_size must be > 0 and an integer", lambda c: schedules.step_decay(0.1, 2.5)),
    R("schedules.step_decay", "gamma", "-0.5", ValueError, "gamma must be > 0", lambda c: schedules.step_decay(0.1, 10, -0.5)),
    R("schedules.multistep_decay", "milestones", "[10, 5]", ValueError, "milestones must be non-negative and increasing", lambda c: schedules.multistep_decay(0.1, [10, 5])),
    R("schedules.multistep_decay", "milestones", "[-1, 5]", ValueError, "milestones must be non-negative and increasing", lambda c: schedules.multistep_decay(0.1, [-1, 5])),
    R("schedules.multistep_decay", "milestones", '"10,20"', TypeError, "milestones must be a sequence of integers", lambda c: schedules.multistep_decay(0.1, "10,20")),
    R("schedules.multistep_decay", "milestones", "[True]", TypeError, "milestones must be a sequence of integers", lambda c: schedules.multistep_decay(0.1, [True])),
    R("schedules.multistep_decay", "milestones", "[2**40]", ValueError, "milestones must be step counts below 2**31 (int32)", lambda c: schedules.multistep_decay(0.1, [2**40])),
    R("schedules.multistep_decay", "milestones", "[2.5]", TypeError, "milestones must be a sequence of integers", lambda c: schedules.multistep_decay(0.1, [2.5])),
    R("schedules.multistep_decay", "init_value", "-0.1", ValueError, "init_value must be > 0", lambda c: schedules.multistep_decay(-0.1, [5])),
    R("schedules.inverse_time_decay", "decay_rate", "-1.0", ValueError, "decay_rate must be >= 0", lambda c: schedules.inverse_time_decay(0.1, -1.0)),
    R("schedules.inverse_time_decay", "decay_steps", "0", ValueError, "decay_steps must be > 0", lambda c: schedules.inverse_time_decay(0.1, 1.0, 0)),
    R("schedules.inverse_time_decay", "init_value", "1j", TypeError, "init_value must be a real number", lambda c: schedules.inverse_time_decay(1j, 1.0)),
    R("schedules.cyclic_triangular", "base_lr", "-0.1", ValueError, "base_lr must be >= 0", lambda c: schedules.cyclic_triangular(-0.1, 1.0, 10)),
    R("schedules.cyclic_triangular", "base_lr", "None", TypeError, "base_lr must be a real number", lambda c: schedules.cyclic_triangular(None, 1.0, 10)),
    R("schedules.cyclic_triangular", "max_lr", "0.05 (< base_lr 0.1)", ValueError, "max_lr must be >= base_lr", lambda c: schedules.cyclic_triangular(0.1, 0.05, 10)),
    R("schedules.cyclic_triangular", "step_size_up", "-4", ValueError, "step_size_up must be > 0", lambda c: schedules.cyclic_triangular(0.1, 1.0, -4)),
    # -- checkpoints -------------------------------------------------------------------------------------
    R("save_checkpoint", "path", "123", TypeError, "path must be a str or os.PathLike", lambda c: save_checkpoint(123, {"w": c.x0})),
    R("save_checkpoint", "path", "in a missing directory", FileNotFoundError, "path: directory", lambda c: save_checkpoint(c.no_dir, {"w": c.x0})),
    R("save_checkpoint", "path", "an existing directory", IsADirectoryError, "is a directory; pass a file path", lambda c: save_checkpoint(c.dir, {"w": c.x0})),
    R("load_checkpoint", "path", '""', ValueError, "path is the empty string; pass a file path", lambda c: load_checkpoint("")),
    R("save_checkpoint", "tree", "{} (empty pytree)", ValueError, "tree must contain at least one array leaf", lambda c: save_checkpoint(c.dir / "t", {})),
    R("save_checkpoint", "tree", '{"f": print}', TypeError, "tree leaf ['f'] is a builtin_function_or_method, not an array", lambda c: save_checkpoint(c.dir / "t", {"f": print})),
    R("save_checkpoint", "tree", '{"s": "text"}', TypeError, "tree leaf ['s'] is a str, not an array", lambda c: save_checkpoint(c.dir / "t", {"s": "text"})),
    R("save_checkpoint", "tree", "np.array([object()])", TypeError, "tree leaf (root) has dtype object", lambda c: save_checkpoint(c.dir / "t", np.array([object()]))),
    R("save_checkpoint", "tree", 'np.array(["a"])', TypeError, "tree leaf (root) has dtype <U1", lambda c: save_checkpoint(c.dir / "t", np.array(["a"]))),
    R("save_checkpoint", "tree", "a tracer (under jax.jit)", TypeError, "tree leaf ['w'] is a tracer", _jit_save),
    R("save_checkpoint", "metadata", '"epoch 3"', TypeError, "metadata must be a JSON-serialisable dict", lambda c: save_checkpoint(c.dir / "t", c.x0, metadata="epoch 3")),
    R("save_checkpoint", "metadata", '{"f": print}', TypeError, "metadata must be a JSON-serialisable dict", lambda c: save_checkpoint(c.dir / "t", c.x0, metadata={"f": print})),
    R("load_checkpoint", "path", "None", TypeError, "path must be a str or os.PathLike", lambda c: load_checkpoint(None)),
    R("load_checkpoint", "path", "a missing file", FileNotFoundError, "path: no checkpoint file", lambda c: load_checkpoint(c.missing)),
    R("load_checkpoint", "path", "a truncated file", CheckpointError, "not a readable jaxgd checkpoint (truncated", lambda c: load_checkpoint(c.truncated)),
    R("load_checkpoint", "path", "a file with a corrupted leaf", CheckpointError, "leaf .params is corrupted", lambda c: load_checkpoint(c.bad_leaf)),
    R("load_checkpoint", "path", "a text file", CheckpointError, "are not an .npz archive's (PK...)", lambda c: load_checkpoint(c.text)),
    R("load_checkpoint", "path", "format version 99", CheckpointError, "version 99 is not supported", lambda c: load_checkpoint(c.v99)),
    R("load_checkpoint", "like", "another tree structure", TreeMismatchError, "missing leaves ['w'] (expected by like)", lambda c: load_checkpoint(c.good, like={"w": c.x0})),
    R("load_checkpoint", "like", "another leaf shape", TreeMismatchError, "leaf .params: expected shape (4,) dtype float64, found shape (3,)", lambda c: load_checkpoint(c.good, like=c.result_shape4)),
    R("load_checkpoint", "like", "another leaf dtype", TreeMismatchError, "leaf .params: expected shape (3,) dtype float64, found shape (3,) dtype float32", lambda c: load_checkpoint(c.f32, like=c.result_gd)),
    R("load_checkpoint", "like", '{"w": "abc"}', TypeError, "like leaf ['w'] is a str", lambda c: load_checkpoint(c.good, like={"w": "abc"})),
    R("checkpoint_info", "path", "a missing file", FileNotFoundError, "path: no checkpoint file", lambda c: checkpoint_info(c.missing)),
    R("checkpoint_info", "path", "a truncated file", CheckpointError, "not a readable jaxgd checkpoint", lambda c: checkpoint_info(c.truncated)),
    # -- extension point: rows for check_grad, fit and bounds= go here ----------------------------------------
    R("minimize", "bounds", "[[0, 1], [2, 3]] for x0=[0.5, 0.5] (scipy's pairs or (lower, upper))", ValueError, "can be read two ways: here as (lower, upper), by scipy as one (min, max) pair per variable", lambda c: jaxgd.minimize(lambda p: p[0] ** 2 + p[1] ** 2, [0.5, 0.5], method="lbfgs", bounds=[[0.0, 1.0], [2.0, 3.0]]), True),
    R("minimize", "bounds", "(1.0, 0.0)", ValueError, "bounds: lower must be <= upper", lambda c: M(c, bounds=(1.0, 0.0))),
    R("minimize", "bounds", '({"a": 0.0}, None)', ValueError, "bounds: lower must be None, a number, or a pytree", lambda c: M(c, bounds=({"a": 0.0}, None))),
    R("minimize", "bounds", "0.0", ValueError, "bounds must be a pair (lower, upper)", lambda c: M(c, bounds=0.0)),
    R("minimize", "bounds", "(-0.3-0.3j, 0.3+0.3j) (complex)", ValueError, "bounds: lower holds a complex number ((-0.3-0.3j)); bounds are real", lambda c: M(c, bounds=(-0.3 - 0.3j, 0.3 + 0.3j))),
    R("minimize", "bounds", "(np.complex128(-0.3), None) with gd (complex, imaginary part 0)", ValueError, "bounds: lower holds a complex number ((-0.3+0j))", lambda c: M(c, method="gd", lr=0.1, bounds=(np.complex128(-0.3), None))),
    # -- minimize: adjoint (issue 12) ---------------------------------------------------
    R("minimize", "adjoint", '"reverse"', ValueError, "adjoint must be one of 'implicit', 'unroll'; got adjoint='reverse'", lambda c: M(c, adjoint="reverse")),
    R("minimize", "adjoint", "None", ValueError, "adjoint must be one of", lambda c: M(c, adjoint=None)),
    R("minimize", "adjoint", '"unroll" with lr=linesearch.StrongWolfe()', ValueError, "adjoint='unroll' cannot reverse-differentiate the step-size rule lr=StrongWolfe", lambda c: M(c, adjoint="unroll", lr=jaxgd.linesearch.StrongWolfe()), True),
    R("minimize", "adjoint", '"unroll" with method="lbfgs" (default lr: a line search)', ValueError, "use adjoint='implicit'", lambda c: M(c, adjoint="unroll", method="lbfgs"), True),
    R("minimize", "adjoint", '"implicit" (the default) under jax.grad, fun holding a jax.custom_vjp', ValueError, "adjoint='implicit' cannot differentiate this solve",
      lambda c: jax.grad(lambda s: M(c, fun=lambda x, t: jnp.sum(_sq(x - t)), args=(s,)).loss)(1.0), True),
    R("minimize", "has_aux", "True under jax.jvp, fun applying a jax.custom_vjp to x", ValueError, "forward mode (jax.jacfwd, jax.jvp) through minimize cannot give aux's tangent",
      lambda c: jax.jvp(lambda s: M(c, fun=lambda x, t: (jnp.sum(_sq2(x - t)), x), args=(s,), has_aux=True).loss, (1.0,), (1.0,)), True),
    R("minimize", "adjoint", '"unroll" under jax.grad, fun\'s gradient running a lax.while_loop', ValueError, "cannot reverse-differentiate the loss fun's gradient",
      lambda c: jax.grad(lambda s: M(c, fun=lambda x: s * jnp.sum(_looped(x)), lr=0.1, adjoint="unroll").loss)(1.0), True),
    R("check_grad", "fun", "3", TypeError, "fun must be callable", lambda c: jaxgd.check_grad(3, c.x0)),
    R("check_grad", "reference", "returns shape (4,) for x of shape (3,)", ValueError, "reference gradient for leaf x has shape (4,); expected (3,)", lambda c: jaxgd.check_grad(c.f, c.x0, reference=lambda x: np.zeros(4)), True),
    R("check_grad", "reference", "returns 2 x + 5j (complex)", ValueError, "reference gradient for leaf x is not a real numeric array", lambda c: jaxgd.check_grad(c.f, c.x0, reference=lambda x: 2 * np.asarray(x) + 5j), True),
    R("check_grad", "fun", "drawing jax.random.normal(key, shape) without a dtype (x float32)", ValueError, "it draws random numbers from a key in args in a dtype that JAX's float64 mode widens", _check_grad_drawing_without_dtype, True),
    R("check_grad", "x", "np.arange(3)", TypeError, "every leaf of x must be a real floating-point array", lambda c: jaxgd.check_grad(c.f, np.arange(3))),
    R("check_grad", "x", "np.ones(3, bfloat16)", TypeError, "check_grad does not take bfloat16 x", lambda c: jaxgd.check_grad(c.f, np.ones(3, jnp.bfloat16))),
    R("check_grad", "directions", "0", ValueError, "directions=0 must be None or a positive integer", lambda c: jaxgd.check_grad(c.f, c.x0, directions=0)),
    R("check_grad", "directions", "10**9 for a 3-entry x", ValueError, "directions=1000000000 is more than check_grad takes here (1024: the largest leaf's entries, at least 1024)", lambda c: jaxgd.check_grad(c.f, c.x0, directions=10**9)),
    R("check_grad", "x", "[nan, 0, 0]", ValueError, "x contains NaN or Inf: check_grad differentiates at x", lambda c: jaxgd.check_grad(c.f, np.array([np.nan, 0.0, 0.0]))),
    R("check_grad", "eps", "1e-300 (below float64's eps: x + h == x)", ValueError, "eps=1e-300 must be a relative step between float64's eps", lambda c: jaxgd.check_grad(c.f, c.x0, eps=1e-300)),
    R("check_grad", "eps", "1e308", ValueError, "eps=1e+308 must be a relative step between float64's eps", lambda c: jaxgd.check_grad(c.f, c.x0, eps=1e308)),
    R("check_grad", "seed", "-1", ValueError, "seed=-1 must be a non-negative integer (the seed of the NumPy generator drawing the directions)", lambda c: jaxgd.check_grad(c.f, c.x0, seed=-1)),
    R("check_grad", "seed", "-1 with directions=2", ValueError, "seed=-1 must be a non-negative integer (the seed of the NumPy generator drawing the directions)", lambda c: jaxgd.check_grad(c.f, c.x0, directions=2, seed=-1)),
    R("check_grad", "seed", "2.5", ValueError, "seed=2.5 must be a non-negative integer (the seed of the NumPy generator drawing the directions)", lambda c: jaxgd.check_grad(c.f, c.x0, seed=2.5)),
    R("check_grad", "seed", "np.float64(1.0) (integral, but a float)", ValueError, "seed=np.float64(1.0) must be a non-negative integer (the seed of the NumPy generator drawing the directions)", lambda c: jaxgd.check_grad(c.f, c.x0, seed=np.float64(1.0))),
    R("check_grad", "seed", "True", ValueError, "seed=True must be a non-negative integer (the seed of the NumPy generator drawing the directions)", lambda c: jaxgd.check_grad(c.f, c.x0, seed=True)),
    R("check_grad", "seed", "np.array([1, 2])", ValueError, "seed=array([1, 2]) must be a non-negative integer (the seed of the NumPy generator drawing the directions)", lambda c: jaxgd.check_grad(c.f, c.x0, seed=np.array([1, 2]))),
    R("check_grad", "seed", '"0"', ValueError, "seed='0' must be a non-negative integer (the seed of the NumPy generator drawing the directions)", lambda c: jaxgd.check_grad(c.f, c.x0, seed="0")),
    R("check_grad", "seed", "None", ValueError, "seed=None must be a non-negative integer (the seed of the NumPy generator drawing the directions)", lambda c: jaxgd.check_grad(c.f, c.x0, seed=None)),
    R("check_grad", "seed", "a tracer (check_grad inside jax.jit)", TypeError, "check_grad runs on the host and needs a concrete seed; seed is a tracer", lambda c: jax.jit(lambda s: jaxgd.check_grad(c.f, c.x0, seed=s))(3)),
    R("check_grad", "precision", '"HIGHEST"', ValueError, "precision='HIGHEST' must be None (the platform's default) or a matrix-product precision that jax.default_matmul_precision accepts", lambda c: jaxgd.check_grad(c.f, c.x0, precision="HIGHEST")),
    R("check_grad", "precision", '"fastest"', ValueError, "precision='fastest' must be None (the platform's default) or a matrix-product precision that jax.default_matmul_precision accepts", lambda c: jaxgd.check_grad(c.f, c.x0, precision="fastest")),
    R("check_grad", "precision", '"" (empty: was the platform default)', ValueError, "precision='' must be None (the platform's default) or a matrix-product precision that jax.default_matmul_precision accepts", lambda c: jaxgd.check_grad(c.f, c.x0, precision="")),
    R("check_grad", "precision", "jax.lax.Precision.HIGHEST (an enum, not a string)", TypeError, "precision=Precision.HIGHEST must be None (the platform's default) or a matrix-product precision that jax.default_matmul_precision accepts", lambda c: jaxgd.check_grad(c.f, c.x0, precision=jax.lax.Precision.HIGHEST)),
    R("check_grad", "precision", "3", TypeError, "precision=3 must be None (the platform's default) or a matrix-product precision that jax.default_matmul_precision accepts", lambda c: jaxgd.check_grad(c.f, c.x0, precision=3)),
    R("check_grad", "precision", "False (was the platform default)", TypeError, "precision=False must be None (the platform's default) or a matrix-product precision that jax.default_matmul_precision accepts", lambda c: jaxgd.check_grad(c.f, c.x0, precision=False)),
    R("fit", "batch_size", "0", ValueError, "batch_size must be a positive integer no larger than the number of examples (10)", lambda c: jaxgd.fit(c.fl, c.x0, c.data, batch_size=0, epochs=1, key=c.key)),
    R("fit", "batch_size", "11 (10 examples)", ValueError, "got batch_size=11", lambda c: jaxgd.fit(c.fl, c.x0, c.data, batch_size=11, epochs=1, key=c.key)),
    R("fit", "epochs", "10**9 (a batch an epoch)", ValueError, "epochs=1000000000 records one history row per epoch, allocated before the run", lambda c: c.F(epochs=10**9, batch_size=10)),
    R("fit", "epochs", "2**31 (5 batches an epoch)", ValueError, "epochs=2147483648 with 5 batches an epoch is 10737418240 steps, more than the step counter (an int32) holds", lambda c: c.F(epochs=2**31)),
    R("fit", "patience", "a tracer (under jax.jit)", ValueError, "(a concrete Python int: it is static, so it cannot be traced under jax.jit/jax.vmap)", lambda c: jax.jit(lambda k: c.F(patience=k))(3)),
    R("fit", "epochs", "0", ValueError, "epochs must be a positive integer", lambda c: jaxgd.fit(c.fl, c.x0, c.data, batch_size=2, epochs=0, key=c.key)),
    R("fit", "data", "np.array(['a', 'b', 'c', 'd']) (strings)", ValueError, "leaf data(root) has dtype <U1, which JAX cannot hold", lambda c: jaxgd.fit(c.fl, c.x0, np.array(["a", "b", "c", "d"]), batch_size=2, epochs=1, key=c.key)),
    R("minimize", "x0", "np.array([1.0, 2.0, 3.0], dtype=object)", TypeError, "x0 leaf (root) is a NumPy array of dtype object", lambda c: M(c, x0=np.array([1.0, 2.0, 3.0], dtype=object))),
    R("minimize", "x0", "jax.ShapeDtypeStruct((3,), float32)", TypeError, "x0 leaf (root) is a jax.ShapeDtypeStruct, a shape and dtype with no values", lambda c: M(c, x0=jax.ShapeDtypeStruct((3,), np.float32))),
    R("fit", "data", "leading axes 10 and 9", ValueError, "data leaves must share the leading (example) axis", lambda c: jaxgd.fit(c.fl, c.x0, {"x": np.ones((10, 3)), "y": np.ones(9)}, batch_size=2, epochs=1, key=c.key)),
    R("fit", "key", "3", TypeError, "key must be a PRNG key", lambda c: jaxgd.fit(c.fl, c.x0, c.data, batch_size=2, epochs=1, key=3)),
    R("fit", "lr", "jaxgd.linesearch.Backtracking()", ValueError, "is a step-size rule that reads the loss or gradient along the run (a line search needs exact loss evaluations", lambda c: jaxgd.fit(c.fl, c.x0, c.data, batch_size=2, epochs=1, key=c.key, lr=jaxgd.linesearch.Backtracking())),
    R("fit", "lr", "per_epoch(s, 3) (10 examples in batches of 4: 2 steps an epoch)", ValueError, "lr=per_epoch(schedule, steps_per_epoch=3) advances its schedule every 3 steps, but fit takes 2 steps an epoch here (n // batch_size = 10 // 4 with Remainder.DROP); pass steps_per_epoch=2", lambda c: c.F(batch_size=4, lr=schedules.per_epoch(lambda e: 0.1, 3))),
    R("fit", "fun", "returns shape (2,)", TypeError, "fun must return a real floating-point scalar", lambda c: jaxgd.fit(lambda p, b: b["x"] @ p, c.x0, c.data, batch_size=2, epochs=1, key=c.key), True),
    R("fit", "l1", "-0.1", ValueError, "l1 must be a non-negative finite number", lambda c: c.F(l1=-0.1)),
    R("fit", "l1", '{"v": 0.1} (not shaped like params)', ValueError, "l1 must be a number or a pytree with the structure of the parameters", lambda c: c.F(l1={"v": 0.1})),
    R("fit", "l2", '{"v": 0.1} (not shaped like params)', ValueError, "l2 must be a number or a pytree with the structure of the parameters", lambda c: c.F(l2={"v": 0.1})),
    R("fit", "bounds", "(1.0, 0.0)", ValueError, "bounds: lower must be <= upper", lambda c: c.F(bounds=(1.0, 0.0))),
    R("fit", "accelerated", '"yes"', TypeError, "accelerated must be a bool", lambda c: c.F(accelerated="yes")),
    R("fit", "params", "np.arange(3)", TypeError, "params leaf (root) has dtype int64; params must hold real floating-point arrays", lambda c: jaxgd.fit(c.fl, np.arange(3), c.data, batch_size=2, epochs=1, key=c.key)),
    # -- fit: checkpoints and resume ---------------------------------------------------------------
    R("fit", "checkpoint_every", "0", ValueError, "checkpoint_every must be None or a positive integer (epochs between checkpoints)", lambda c: c.F(checkpoint_every=0, checkpoint_path=c.dir / "f.ckpt")),
    R("fit", "checkpoint_every", "2 without checkpoint_path", ValueError, "checkpoint_every=2 needs checkpoint_path=", lambda c: c.F(checkpoint_every=2)),
    R("fit", "checkpoint_path", "in a missing directory", FileNotFoundError, "checkpoint_path: directory", lambda c: c.F(checkpoint_path=c.no_dir)),
    R("fit", "checkpoint_path", "an existing directory", IsADirectoryError, "is a directory; pass a file path", lambda c: c.F(checkpoint_path=c.dir)),
    R("fit", "resume", "3", TypeError, "resume must be None, a jaxgd.FitResult or a checkpoint path", lambda c: c.F(resume=3)),
    R("fit", "resume", "a jaxgd.Result (from minimize)", TypeError, "resume must be None, a jaxgd.FitResult or a checkpoint path", lambda c: c.F(resume=c.result_gd)),
    R("fit", "resume", "a missing file", FileNotFoundError, "resume: no checkpoint file", lambda c: c.F(resume=c.missing)),
    R("fit", "resume", "a minimize checkpoint", ValueError, "is a jaxgd.minimize checkpoint, not a jaxgd.fit one", lambda c: c.F(resume=c.good), True),
    R("fit", "resume", "a checkpoint written with batch_size=4", ValueError, "was written with batch_size=4, but this call has batch_size=2", lambda c: c.F(resume=c.fit_batch4), True),
    R("fit", "resume", "a checkpoint of params with shape (4,)", TreeMismatchError, "leaf .params: expected shape (3,) dtype float64, found shape (4,) dtype float64", lambda c: c.F(resume=c.fit_shape4), True),
    R("fit", "resume", "a checkpoint written with another key", ValueError, "was written with key data [0, 1], but this call's key has key data [0, 0]", lambda c: c.F(resume=c.fit_other_key), True),
    R("fit", "resume", "a checkpoint 5 epochs in (call: epochs=3)", ValueError, "has already run 5 epochs, more than this call's epochs=3", lambda c: c.F(resume=c.fit_epoch5), True),
    R("fit", "resume", "a FitResult of params with shape (4,)", TreeMismatchError, "resume: leaves differ from the state this fit call starts from", lambda c: c.F(resume=c.fit_result4), True),
    R("fit", "resume", "a checkpoint with an rbg key (call: threefry)", ValueError, "was written with key (its implementation)='rbg', but this call has key (its implementation)='threefry2x32'", lambda c: c.F(resume=c.fit_rbg), True),
    R("fit", "loss_key", "1", TypeError, "loss_key must be a bool (True: fun is called as fun(params, batch, key)", lambda c: c.F(loss_key=1)),
    R("fit", "loss_key", "True with fun(params, batch)", TypeError, "fit(loss_key=True) calls fun(params, batch, key) with key the step's PRNG key, but fun(p", lambda c: c.F(loss_key=True)),
    R("fit", "loss_key", "True with fun(params, batch, weights) and Remainder.MASK", TypeError, "fit(loss_key=True) calls fun(params, batch, weights, key)", lambda c: c.F(loss_key=True, remainder=jaxgd.Remainder.MASK, fun=lambda p, b, w: jnp.sum(w * (b["x"] @ p - b["y"]) ** 2) / jnp.sum(w))),
    R("fit", "loss_key", "left out, with fun(params, batch, weights, key) and Remainder.MASK", TypeError, "for a loss of (params, batch, weights, key) that draws random numbers (dropout masks, augmentation), pass loss_key=True", lambda c: c.F(remainder=jaxgd.Remainder.MASK, fun=lambda p, b, w, key: jnp.sum(w * (b["x"] @ p - b["y"]) ** 2) / jnp.sum(w))),
    R("fit", "loss_key", "left out, with fun(params, batch, key)", TypeError, "for a loss of (params, batch, key) that draws random numbers (dropout masks, augmentation), pass loss_key=True", lambda c: c.F(fun=lambda p, b, key: jnp.mean((b["x"] @ p - b["y"]) ** 2))),
    R("fit", "loss_key", "True, eval_data, no eval_fun, fun's key required", TypeError, "with loss_key=True and eval_data, fit's default eval_fun calls fun(params, eval_data) without a key (evaluation is deterministic)", lambda c: c.F(loss_key=True, eval_data=c.data, fun=lambda p, b, key: jnp.mean((b["x"] @ p - b["y"]) ** 2))),
    R("fit", "resume", "a checkpoint written with loss_key=True (call: False)", ValueError, "was written with loss_key=True, but this call has loss_key=False", lambda c: c.F(resume=c.fit_loss_key), True),
    R("fit", "resume", "a checkpoint written with clip=1.0 (call: none)", ValueError, "was written with clip=1.0, but this call has clip=None", lambda c: c.F(resume=c.fit_clip), True),
    R("fit", "resume", "a checkpoint of a run with eval_data (call: none)", ValueError, "was written with eval_data (monitored loss)='eval', but this call has eval_data (monitored loss)='train'", lambda c: c.F(resume=c.fit_monitor_eval), True),
    R("fit", "resume", "a FitResult of a run with eval_data (call: none)", ValueError, "ran with eval_data (its best_params, best_loss and patience count follow the eval loss), but this call has no eval_data", lambda c: c.F(resume=c.fit_result_with_eval), True),
    R("fit", "checkpoint_path", "under jax.jit with a traced lr", ValueError, "checkpoint_path cannot be used while fit runs under jax.jit, jax.vmap or jax.grad (lr, l2 or clip are tracers)", lambda c: jax.jit(lambda lr: c.F(lr=lr, checkpoint_path=c.dir / "j.ckpt"))(0.1)),
    R("minimize", "resume", "a fit checkpoint", ValueError, "is a jaxgd.fit checkpoint, not a jaxgd.minimize one", lambda c: M(c, resume=c.fit_good), True),
    # -- directions ----------------------------------------------------------------------------------
    R("directions.bfgs", "scale_init", '"no"', TypeError, "scale_init must be a bool", lambda c: jaxgd.directions.bfgs("no")),
    R("directions.lbfgs", "memory_size", "0", ValueError, "memory_size must be a positive integer", lambda c: jaxgd.directions.lbfgs(0)),
    R("directions.lbfgs", "memory_size", "2.5", ValueError, "memory_size must be a positive integer", lambda c: jaxgd.directions.lbfgs(2.5)),
    R("directions.lbfgs", "scaling", "'diag'", ValueError, "scaling must be 'auto', 'diagonal' or 'scalar'", lambda c: jaxgd.directions.lbfgs(scaling="diag")),
    R("directions.lbfgs", "scaling", "None", ValueError, "scaling must be 'auto', 'diagonal' or 'scalar'", lambda c: jaxgd.directions.lbfgs(scaling=None)),
    R("directions.cg", "variant", '"xx"', ValueError, "variant='xx' is not a conjugate-gradient variant", lambda c: jaxgd.directions.cg("xx")),
    R("directions.cg", "restart_every", "0", ValueError, "restart_every must be None or a positive integer", lambda c: jaxgd.directions.cg(restart_every=0)),
    # -- linesearch rules ------------------------------------------------------------------------------
    R("linesearch.Backtracking", "c1", "1.5", ValueError, "c1 must lie in (0, 1)", lambda c: jaxgd.linesearch.Backtracking(c1=1.5)),
    R("linesearch.Backtracking", "c1", "nan", ValueError, "c1 must lie in (0, 1)", lambda c: jaxgd.linesearch.Backtracking(c1=float("nan"))),
    R("linesearch.Backtracking", "c1", '"a"', TypeError, "c1 must be a real number or a real scalar array", lambda c: jaxgd.linesearch.Backtracking(c1="a")),
    R("linesearch.Backtracking", "shrink", "0.0", ValueError, "shrink must lie in (0, 1)", lambda c: jaxgd.linesearch.Backtracking(shrink=0.0)),
    R("linesearch.Backtracking", "initial", "-1.0", ValueError, "initial must be > 0 and finite", lambda c: jaxgd.linesearch.Backtracking(initial=-1.0)),
    R("linesearch.Backtracking", "max_iter", "2.5", ValueError, "max_iter must be an integer >= 0", lambda c: jaxgd.linesearch.Backtracking(max_iter=2.5)),
    R("linesearch.StrongWolfe", "c2", "0.1 (c1=0.5)", ValueError, "c2 must lie in (c1, 1)", lambda c: jaxgd.linesearch.StrongWolfe(c1=0.5, c2=0.1)),
    R("linesearch.StrongWolfe", "max_iter", "0", ValueError, "max_iter must be a positive integer", lambda c: jaxgd.linesearch.StrongWolfe(max_iter=0)),
    R("linesearch.StrongWolfe", "max_iter", "2**31", ValueError, "max_iter must be at most 2**31 - 1", lambda c: jaxgd.linesearch.StrongWolfe(max_iter=2**31)),
    R("linesearch.Backtracking", "max_iter", "10**12", ValueError, "max_iter must be at most 2**31 - 1", lambda c: jaxgd.linesearch.Backtracking(max_iter=10**12)),
    R("linesearch.MoreThuente", "stall_window", "2**40", ValueError, "stall_window must be at most 2**31 - 1", lambda c: jaxgd.linesearch.MoreThuente(stall_window=2**40)),
    R("linesearch.MoreThuente", "min_move", "True with start='unit'", ValueError, "min_move=True floors start='interpolate'", lambda c: jaxgd.linesearch.MoreThuente(min_move=True)),
    R("linesearch.StrongWolfe", "c3", "an unknown keyword", TypeError, "unexpected keyword argument 'c3'", lambda c: jaxgd.linesearch.StrongWolfe(c3=0.1)),
    R("linesearch.MoreThuente", "c2", "0.1 (c1=0.5)", ValueError, "c2 must lie in (c1, 1)", lambda c: jaxgd.linesearch.MoreThuente(c1=0.5, c2=0.1)),
    R("linesearch.MoreThuente", "start", "'cubic'", ValueError, "start must be 'unit' or 'interpolate'", lambda c: jaxgd.linesearch.MoreThuente(start="cubic")),
    R("linesearch.MoreThuente", "stall_window", "0", ValueError, "stall_window must be a positive integer", lambda c: jaxgd.linesearch.MoreThuente(stall_window=0)),
    R("linesearch.MoreThuente", "xtol", "-1", ValueError, "xtol must be >= 0", lambda c: jaxgd.linesearch.MoreThuente(xtol=-1.0)),
    R("linesearch.MoreThuente", "fallback", '"yes"', TypeError, "fallback must be a bool, got fallback='yes'", lambda c: jaxgd.linesearch.MoreThuente(fallback="yes")),
    R("linesearch.MoreThuente", "fallback", "1", TypeError, "fallback must be a bool, got fallback=1", lambda c: jaxgd.linesearch.MoreThuente(fallback=1)),
    R("linesearch.MoreThuente", "min_move", '"yes"', TypeError, "min_move must be a bool, got min_move='yes'", lambda c: jaxgd.linesearch.MoreThuente(min_move="yes")),
    R("minimize", "l1", "0.1 with method='lbfgs'", ValueError, "l1=0.1 cannot be combined with method='lbfgs'", lambda c: M(c, method="lbfgs", l1=0.1)),
    R("minimize", "l1", "0.1 with method='adam'", ValueError, "l1=0.1 cannot be combined with method='adam'", lambda c: M(c, method="adam", l1=0.1)),
    R("minimize", "l1", "0.1 with method='momentum'", ValueError, "l1=0.1 cannot be combined with method='momentum'", lambda c: M(c, method="momentum", l1=0.1)),
    R("Solver", "l1", "0.1 with method='nesterov'", ValueError, "l1=0.1 cannot be combined with method='nesterov'", lambda c: S(c, "nesterov", l1=0.1)),
    R("Solver", "l1", "0.1 with method='adagrad'", ValueError, "l1=0.1 cannot be combined with method='adagrad'", lambda c: S(c, "adagrad", l1=0.1)),
    R("fit", "l1", "0.1 with method='adam' (fit's default method)", ValueError, "l1=0.1 cannot be combined with method='adam'", lambda c: c.F(method="adam", l1=0.1)),
    R("fit", "l1", "0.1 with method='rmsprop'", ValueError, "l1=0.1 cannot be combined with method='rmsprop'", lambda c: c.F(method="rmsprop", l1=0.1)),
    R("fit", "l1", "{'w': 0.1} per leaf with method='adamw'", ValueError, "l1={'w': 0.1} cannot be combined with method='adamw'", lambda c: c.F(method="adamw", l1={"w": 0.1}, params={"w": c.x0}, fun=lambda p, b: jnp.mean((b["x"] @ p["w"] - b["y"]) ** 2))),
    R("linesearch.Exact", "xtol", "-1.0", ValueError, "xtol must be > 0.0", lambda c: jaxgd.linesearch.Exact(xtol=-1.0)),
    R("linesearch.Exact", "max_bracket", "0", ValueError, "max_bracket must be a positive integer", lambda c: jaxgd.linesearch.Exact(max_bracket=0)),
    R("linesearch.BarzilaiBorwein", "formula", "3", ValueError, "formula must be 1", lambda c: jaxgd.linesearch.BarzilaiBorwein(formula=3)),
    R("linesearch.BarzilaiBorwein", "min_step", "1.0 (max_step=0.1)", ValueError, "min_step must be <= max_step", lambda c: jaxgd.linesearch.BarzilaiBorwein(min_step=1.0, max_step=0.1)),
    R("linesearch.BarzilaiBorwein", "min_step", "a 0-d array 1.0 (max_step a 0-d array 0.1)", ValueError, "min_step must be <= max_step", lambda c: jaxgd.linesearch.BarzilaiBorwein(min_step=np.asarray(1.0), max_step=np.asarray(0.1))),
    R("linesearch.Polyak", "f_star", "nan", ValueError, "f_star must be None or a finite number", lambda c: jaxgd.linesearch.Polyak(f_star=float("nan"))),
    R("linesearch.Polyak", "delta", "-1.0", ValueError, "delta must be > 0 and finite", lambda c: jaxgd.linesearch.Polyak(delta=-1.0)),
    R("linesearch.ReduceOnPlateau", "factor", "2.0", ValueError, "factor must lie in (0, 1)", lambda c: jaxgd.linesearch.ReduceOnPlateau(factor=2.0)),
    R("linesearch.ReduceOnPlateau", "patience", "-1", ValueError, "patience must be an integer >= 0", lambda c: jaxgd.linesearch.ReduceOnPlateau(patience=-1)),
    # -- schedules.per_epoch -----------------------------------------------------------------------------
    R("schedules.per_epoch", "schedule", "0.1", TypeError, "schedule must be callable (epoch -> lr)", lambda c: schedules.per_epoch(0.1, 3)),
    R("schedules.per_epoch", "steps_per_epoch", "0", ValueError, "steps_per_epoch must be > 0", lambda c: schedules.per_epoch(lambda e: 0.1, 0)),
    R("schedules.per_epoch", "steps_per_epoch", "2.5", ValueError, "steps_per_epoch must be > 0 and an integer", lambda c: schedules.per_epoch(lambda e: 0.1, 2.5)),
    # -- problems -----------------------------------------------------------------------------------------
    R("problems.quadratic_norm", "d", "0", ValueError, "d=0 must be a positive integer", lambda c: jaxgd.problems.quadratic_norm(0)),
    R("problems.quadratic_norm", "c", "-1.0", ValueError, "c=-1.0 must be a non-negative number", lambda c: jaxgd.problems.quadratic_norm(2, c=-1.0)),
    R("problems.linear_regression", "X", "with a NaN entry", ValueError, "X must be finite; it holds 1 NaN or Inf entries (the first at index (1, 0))", lambda c: jaxgd.problems.linear_regression(X=np.array([[1.0, 2.0], [np.nan, 0.0], [0.5, 1.0]]), y=np.zeros(3))),
    R("problems.logistic_regression", "X", "with an Inf entry", ValueError, "X must be finite", lambda c: jaxgd.problems.logistic_regression(X=np.array([[1.0], [np.inf]]), y=np.array([0, 1]))),
    R("problems.linear_regression", "n", "0", ValueError, "n=0 must be a positive integer", lambda c: jaxgd.problems.linear_regression(n=0)),
    R("problems.linear_regression", "X", "shape (0, 2): no rows", ValueError, "X must hold at least one row and one column (n >= 1, d >= 1); got shape (0, 2)", lambda c: jaxgd.problems.linear_regression(X=np.ones((0, 2)), y=np.ones(0))),
    R("problems.mlp", "X", "shape (0, 2): no rows", ValueError, "X must hold at least one row and one column", lambda c: jaxgd.problems.mlp((2, 3, 2), X=np.ones((0, 2)), y=np.zeros(0, int))),
    R("problems.linear_regression", "dtype", "jnp.int32", ValueError, "is not a floating-point dtype", lambda c: jaxgd.problems.linear_regression(dtype=jnp.int32)),
    R("problems.linear_regression", "X", "X without y", ValueError, "pass both X and y or neither", lambda c: jaxgd.problems.linear_regression(X=np.ones((3, 2)))),
    R("problems.logistic_regression", "y", "labels {0, 1, 2}", ValueError, "y must hold binary labels in {0, 1}", lambda c: jaxgd.problems.logistic_regression(X=np.ones((3, 2)), y=np.array([0, 1, 2]))),
    R("problems.softmax_regression", "y", "label 5 with k=3", ValueError, "y must hold integer class labels in [0, k=3)", lambda c: jaxgd.problems.softmax_regression(X=np.ones((3, 2)), y=np.array([0, 1, 5]), k=3)),
    R("problems.mlp", "sizes", "(3,)", ValueError, "must list at least 3 positive layer widths", lambda c: jaxgd.problems.mlp(sizes=(3,))),
    R("problems.rosenbrock", "d", "1", ValueError, "d=1 must be an integer >= 2", lambda c: jaxgd.problems.rosenbrock(1)),
    R("problems.is_quadratic_norm_minimiser", "x", '"a"', TypeError, "x must be a real array", lambda c: jaxgd.problems.is_quadratic_norm_minimiser("a")),
    R("problems.all_problems", "dtype", "np.int32", ValueError, "is not a floating-point dtype", lambda c: jaxgd.problems.all_problems(dtype=np.int32)),
    # -- plot (validated before matplotlib is imported or a figure is made) -------------------------------
    R("plot.loss_curve", "result", '"abc"', TypeError, "result must be a jaxgd.Result, a jaxgd.FitResult or a 1-D array of losses", lambda c: jaxgd.plot.loss_curve("abc")),
    R("plot.loss_curve", "result", "an array of shape (3, 2)", ValueError, "a loss curve needs one run's 1-D history", lambda c: jaxgd.plot.loss_curve(np.ones((3, 2)))),
    R("plot.loss_curve", "every", "0", ValueError, "every must be a positive integer", lambda c: jaxgd.plot.loss_curve(np.ones(3), every=0)),
    R("plot.compare", "results", "[1, 2]", TypeError, "results must be a mapping {label: result}", lambda c: jaxgd.plot.compare([1, 2])),
    R("plot.compare", "results", "{}", ValueError, "compare needs at least one result", lambda c: jaxgd.plot.compare({})),
    R("plot.schedule", "steps", "0", ValueError, "steps must be a positive integer", lambda c: jaxgd.plot.schedule(0.1, 0)),
    R("plot.schedule", "sched", '"a"', TypeError, "sched must be a schedule (count -> lr) or a number", lambda c: jaxgd.plot.schedule("a", 5)),
    R("plot.save", "fig", "3", TypeError, "fig must be a matplotlib Figure or Axes", lambda c: jaxgd.plot.save(3, c.dir / "f.png")),
    # -- the persistent compilation cache (checked before any JAX option changes) ---------------------
    R("enable_compilation_cache", "path", "3", TypeError, "path must be None, a str or an os.PathLike naming a folder, got int", lambda c: jaxgd.enable_compilation_cache(3)),
    R("enable_compilation_cache", "path", "a file", ValueError, "path must name a folder, but", lambda c: jaxgd.enable_compilation_cache(c.text)),
    R("enable_compilation_cache", "path", "an empty string", ValueError, "path must name a folder, got an empty string", lambda c: jaxgd.enable_compilation_cache("")),
    R("enable_compilation_cache", "path", "a folder under a file", ValueError, "path must name a folder this process can create and write to", lambda c: jaxgd.enable_compilation_cache(os.path.join(c.text, "cc"))),
    R("enable_compilation_cache", "max_size", "0", ValueError, "max_size must be a positive integer number of bytes or -1", lambda c: jaxgd.enable_compilation_cache(c.dir / "cc", max_size=0)),
    R("enable_compilation_cache", "max_size", "True", ValueError, "max_size must be a positive integer number of bytes or -1", lambda c: jaxgd.enable_compilation_cache(c.dir / "cc", max_size=True)),
    R("clear_compilation_cache", "path", "a file", ValueError, "path must name a folder, but", lambda c: jaxgd.clear_compilation_cache(c.text)),
    # -- one policy for numbers (jaxgd._validate): a real scalar or a real 0-d array; arrays of another
    # shape, bools and floats where an integer is due are refused everywhere (before: accepted by some) --
    R("linesearch.Backtracking", "c1", "np.array([2.0, 3.0])", ValueError, "c1 must be a real number or a real scalar array, got c1=array([2., 3.]) (a scalar, got shape (2,))", lambda c: jaxgd.linesearch.Backtracking(c1=np.array([2.0, 3.0]))),
    R("linesearch.StrongWolfe", "max_iter", "3.0", ValueError, "max_iter must be a positive integer, got max_iter=3.0", lambda c: jaxgd.linesearch.StrongWolfe(max_iter=3.0)),
    R("linesearch.Polyak", "delta", "True", TypeError, "delta must be a real number or a real scalar array", lambda c: jaxgd.linesearch.Polyak(delta=True)),
    R("linesearch.ReduceOnPlateau", "min_lr", "np.zeros(2)", ValueError, "min_lr must be a real number or a real scalar array, got min_lr=array([0., 0.]) (a scalar, got shape (2,))", lambda c: jaxgd.linesearch.ReduceOnPlateau(min_lr=np.zeros(2))),
    R("schedules.step_decay", "init_value", "np.array([0.1, 0.2])", ValueError, "init_value must be a real number or a real scalar array, got init_value=array([0.1, 0.2]) (a scalar, got shape (2,))", lambda c: schedules.step_decay(np.array([0.1, 0.2]), 10)),
    R("schedules.step_decay", "step_size", "inf", ValueError, "step_size must be > 0", lambda c: schedules.step_decay(0.1, math.inf)),
    R("schedules.inverse_time_decay", "staircase", "1", TypeError, "staircase must be a bool, got staircase=1", lambda c: schedules.inverse_time_decay(0.1, 1.0, staircase=1)),
    R("problems.quadratic_norm", "c", "np.array([1.0, 2.0])", ValueError, "c must be a real number or a real scalar array, got c=array([1., 2.]) (a scalar, got shape (2,))", lambda c: jaxgd.problems.quadratic_norm(2, c=np.array([1.0, 2.0]))),
    R("problems.linear_regression", "noise", '"0.1"', TypeError, "noise must be a real number or a real scalar array, got noise='0.1'", lambda c: jaxgd.problems.linear_regression(noise="0.1")),
    R("problems.linear_regression", "n", "30.0", ValueError, "n=30.0 must be a positive integer", lambda c: jaxgd.problems.linear_regression(n=30.0)),
    R("check_grad", "eps", '"a"', TypeError, "eps must be a real number or a real scalar array, got eps='a'", lambda c: jaxgd.check_grad(c.f, c.x0, eps="a")),
    R("check_grad", "rtol", "np.array([1e-3, 1e-3])", ValueError, "rtol must be a real number or a real scalar array, got rtol=array([0.001, 0.001]) (a scalar, got shape (2,))", lambda c: jaxgd.check_grad(c.f, c.x0, rtol=np.array([1e-3, 1e-3]))),
    R("check_grad", "directions", "True", ValueError, "directions=True must be None or a positive integer", lambda c: jaxgd.check_grad(c.f, c.x0, directions=True)),
    # -- hyperparameters used in the parameters' dtype: a finite value past its range (float32 x0) ---------
    R("minimize", "l1", "1e39 with a float32 x0", ValueError, "l1=1e+39 overflows float32, the dtype of the parameters' leaf", lambda c: M(c, x0=np.float32(c.x0), l1=1e39)),
    R("minimize", "l2", "{'w': 1e39} with a float32 leaf w", ValueError, "l2=1e+39 overflows float32, the dtype of the parameters' leaf ['w']", lambda c: M(c, fun=lambda p: jnp.sum(p["w"] ** 2), x0={"w": np.float32(c.x0)}, l2={"w": 1e39})),
    R("minimize", "lr", "1e39 with a float32 x0", ValueError, "lr=1e+39 overflows float32", lambda c: M(c, x0=np.float32(c.x0), lr=1e39)),
    R("minimize", "clip", "1e39 with a float32 x0", ValueError, "clip=1e+39 overflows float32", lambda c: M(c, x0=np.float32(c.x0), clip=1e39)),
    R("minimize", "bounds", "(1e39, None) with a float32 x0", ValueError, "bounds: the lower bound 1e+39 leaves no float32 value", lambda c: M(c, x0=np.float32(c.x0), bounds=(1e39, None))),
    R("minimize", "bounds", "(None, -inf)", ValueError, "bounds: the upper bound -inf leaves no float64 value", lambda c: M(c, bounds=(None, -math.inf))),
    R("Solver", "x0", "an Equinox module with a function field (Solver.init)", TypeError, "with leaves that are not float arrays, which Solver would train whole", lambda c: S(c, "gd", lr=0.1).init(_eqx_module())),
    R("Solver", "l1", "1e39 with a float32 x0 (Solver.init)", ValueError, "l1=1e+39 overflows float32", lambda c: S(c, "gd", lr=0.1, l1=1e39).init(np.float32(c.x0))),
    R("fit", "l2", "1e39 with float32 params", ValueError, "l2=1e+39 overflows float32", lambda c: c.F(params=np.float32(c.x0), l2=1e39)),
    R("as_optax", "l2", "1e39 with float32 params (at init)", ValueError, "l2=1e+39 overflows float32", lambda c: jaxgd.as_optax("gd", 0.1, l2=1e39).init(np.float32(c.x0))),
    # -- as_optax (issue 16 item 1): the options' own checks, then the update's extras ----------------------
    R("as_optax", "method", '"sgd2"', ValueError, "method='sgd2' is not a known method", lambda c: jaxgd.as_optax("sgd2")),
    R("as_optax", "method", "3", TypeError, "method must be a method name", lambda c: jaxgd.as_optax(3)),
    R("as_optax", "(keyword)", "gtol=1e-6 (minimize's stopping test)", TypeError, "(gtol: as_optax(...) is one optax transformation: it runs no loop and has no stopping test", lambda c: jaxgd.as_optax("gd", 0.1, gtol=1e-6)),
    R("as_optax", "lr", "-0.1", ValueError, "lr must be > 0 and finite", lambda c: jaxgd.as_optax("gd", -0.1)),
    R("as_optax", "lr", '"fast"', TypeError, "lr must be a float, a schedule", lambda c: jaxgd.as_optax("gd", "fast")),
    R("as_optax", "lr", "0.1 with method=optax.adam(0.01)", ValueError, "lr=0.1 with an optax transformation as method", lambda c: jaxgd.as_optax(_optax().adam(0.01), 0.1)),
    R("as_optax", "l1", "-0.1", ValueError, "l1 must be a non-negative finite number", lambda c: jaxgd.as_optax(l1=-0.1)),
    R("as_optax", "l2", "nan", ValueError, "l2 must be a non-negative finite number", lambda c: jaxgd.as_optax(l2=math.nan)),
    R("as_optax", "clip", "0.0", ValueError, "clip must be None or a positive number", lambda c: jaxgd.as_optax(clip=0.0)),
    R("as_optax", "bounds", "(1.0, 0.0)", ValueError, "bounds", lambda c: jaxgd.as_optax(bounds=(1.0, 0.0))),
    R("as_optax", "bounds", "(-0.3+0j, 0.3) (complex)", ValueError, "bounds: lower holds a complex number", lambda c: jaxgd.as_optax("gd", 0.1, bounds=(-0.3 + 0j, 0.3))),
    R("as_optax", "params", "an integer array (at init)", TypeError, "params leaf (root) has dtype int64; params must hold real floating-point arrays", lambda c: jaxgd.as_optax("gd", 0.1).init(np.arange(3))),
    R("as_optax", "params", "{} (at init)", ValueError, "params must contain at least one non-empty array", lambda c: jaxgd.as_optax("gd", 0.1).init({})),
    R("as_optax", "params", "complex64 leaf (at init)", TypeError, "params leaf ['z'] has dtype complex64", lambda c: jaxgd.as_optax("gd", 0.1).init({"w": c.x0, "z": np.zeros(2, np.complex64)})),
    R("Solver", "x0", "an integer array (Solver.init)", TypeError, "x0 leaf (root) has dtype int64; x0 must hold real floating-point arrays", lambda c: S(c, "gd", lr=0.1).init(np.arange(3))),
    R("Solver", "x0", "{} (Solver.init)", ValueError, "x0 must contain at least one non-empty array", lambda c: S(c, "gd", lr=0.1).init({})),
    R("as_optax", "l1", '{"w": 0.1} for params without "w" (at init)', ValueError, "l1", lambda c: jaxgd.as_optax(l1={"w": 0.1}).init({"v": c.x0})),
    R("as_optax", "(keyword)", "learning_rate=0.1", TypeError, "did you mean lr, jaxgd's name for learning_rate?", lambda c: jaxgd.as_optax(learning_rate=0.1)),
    R("as_optax", "accelerated", "True", TypeError, "as_optax does not take accelerated=", lambda c: jaxgd.as_optax(accelerated=True)),
    R("as_optax", "value_fn", "missing with lr=Backtracking() (at update)", TypeError, "needs value and value_fn", lambda c: _tx_update(c, jaxgd.linesearch.Backtracking())),
    R("as_optax", "params", "None (at update)", ValueError, "update needs params", lambda c: _tx_update(c, 0.1, params=None)),
    R("as_optax", "value_fn", "with optax.MaskedNode params (under optax.multi_transform, at update)", ValueError, "params holds optax.MaskedNode", lambda c: _tx_masked(c)),
    R("as_optax", "lr", "Backtracking() under optax.multi_transform, no value_fn (at update)", ValueError, "cannot take its steps: its rule evaluates the loss at trial points", lambda c: _tx_masked(c, value_fn=None)),
    R("as_optax", "state", "another jaxgd method's state: lbfgs given bfgs's (at update)", TypeError, "state holds another transformation's direction state (BFGSState, where this one, method 'lbfgs' with MoreThuente, keeps LBFGSState)", lambda c: _tx_other_state(c, "lbfgs", "bfgs")),
    R("as_optax", "state", "another jaxgd method's state: adam given gd's (at update)", TypeError, "state holds another transformation's direction state (EmptyState, where this one, method 'adam' with ScheduleRule, keeps ScaleByAdamState)", lambda c: _tx_other_state(c, "adam", "gd")),
    R("as_optax", "state", "optax.adam's state (at update)", TypeError, "state must be the state this transformation's init returned (an AsOptaxState), got tuple", lambda c: _tx_update(c, 0.1, state=jax.eval_shape(_optax().adam(0.1).init, c.x0))),
    R("as_optax", "updates", "shaped (2,) for params of shape (3,) (at update)", ValueError, "updates (the gradient of the loss at params) must be shaped like params: leaf (root) has shape (2,), params' (3,)", lambda c: _tx_update(c, 0.1, updates=np.asarray(c.x0)[:2])),
    R("as_optax", "updates", "a dict missing a leaf of params (at update)", ValueError, "must be shaped like params: its structure is", lambda c: _tx_update(c, 0.1, updates={"w": c.x0}, params={"w": c.x0, "v": c.x0})),
    R("as_optax", "value", "a vector (a loss per example, at update)", TypeError, "value must be the loss at params, a real scalar; got shape (3,)", lambda c: _tx_update(c, jaxgd.linesearch.Backtracking(), value=c.x0, value_fn=lambda q: q.sum())),
    R("as_optax", "value_fn", "returning (loss, aux) (at update)", TypeError, "value_fn must return the loss alone, a real scalar; it returned a tuple of 2 (a loss returning (loss, aux)", lambda c: _tx_update(c, jaxgd.linesearch.Backtracking(), value=0.0, value_fn=lambda q: (q.sum(), q))),
    R("as_optax", "value_fn", "missing with method=optax.lbfgs() (at update)", TypeError, "the optax transformation given as method takes extra arguments (optax.lbfgs and its line search) and failed without value_fn", lambda c: _tx_optax_lbfgs(c)),
    # -- minimize: tier (issue 14 item 1) ---------------------------------------------------------------------
    R("minimize", "tier", '"fast"', ValueError, "tier must be one of 'auto', 'host', 'compiled', got tier='fast'", lambda c: M(c, tier="fast")),
    R("minimize", "tier", "1", ValueError, "tier must be one of 'auto', 'host', 'compiled', got tier=1", lambda c: M(c, tier=1)),
    R("minimize", "tier", '"host" with a float32 loss of float64 x0', ValueError, "tier='host' cannot run this call: fun returns a float32 loss from float64 x0", lambda c: jaxgd.minimize(lambda x: jnp.sum(x**2).astype(jnp.float32), np.ones(2), method="lbfgs", tier="host")),
    R("minimize", "tier", '"host" with method="gd"', ValueError, "tier='host' cannot run this call: method='gd'", lambda c: M(c, tier="host", method="gd", lr=0.1)),
    R("minimize", "tier", '"host" with lr=0.1 (no line search)', ValueError, "tier='host' cannot run this call: lr=ScheduleRule(0.1)", lambda c: M(c, tier="host", method="lbfgs", lr=0.1)),
    R("minimize", "tier", '"host" with l2', ValueError, "tier='host' cannot run this call: l2 is set", lambda c: M(c, tier="host", method="lbfgs", bounds=(0.0, None), l2=0.1)),
    R("minimize", "tier", '"host" with float16 x0', ValueError, "x0's leaves are not all float32 or all float64", lambda c: M(c, tier="host", method="bfgs", x0=np.zeros(3, np.float16))),
    R("minimize", "tier", '"host" with checkpoint_path', ValueError, "tier='host' cannot run this call: checkpoint_path or resume is set", lambda c: M(c, tier="host", method="lbfgs", checkpoint_path=c.dir / "t.ckpt")),
    R("minimize", "tier", '"host" under jax.jit', ValueError, "tier='host' cannot run this call: the call is traced", lambda c: jax.jit(lambda x: M(c, tier="host", method="lbfgs", x0=x).loss)(c.x0)),
    R("minimize", "tier", '"host" under jax.eval_shape, x0 concrete', ValueError, "tier='host' cannot run this call: the call is traced", lambda c: jax.eval_shape(lambda: M(c, tier="host", method="lbfgs"))),
    # -- what a user from another library writes (issue 16 item 5) ------------------------------------------
    R("minimize", "(keyword)", "learning_rate=0.1", TypeError, "did you mean lr, jaxgd's name for learning_rate?", lambda c: M(c, learning_rate=0.1)),
    R("minimize", "(keyword)", "tol=1e-6", TypeError, "did you mean gtol, jaxgd's name for tol?", lambda c: M(c, tol=1e-6)),
    R("minimize", "(keyword)", "maxiter=100", TypeError, "did you mean max_steps, jaxgd's name for maxiter?", lambda c: M(c, maxiter=100)),
    R("fit", "(keyword)", "learning_rate=0.1", TypeError, "did you mean lr, jaxgd's name for learning_rate?", lambda c: c.F(learning_rate=0.1)),
    R("minimize", "method", '"sgd"', ValueError, "(did you mean method='gd'?)", lambda c: M(c, method="sgd")),
    R("minimize", "method", '"L-BFGS-B"', ValueError, "(did you mean method='lbfgs' with bounds=(lower, upper) for the box?)", lambda c: M(c, method="L-BFGS-B")),
    R("minimize", "method", '"Nelder-Mead"', ValueError, "(jaxgd's methods follow the gradient (jax.grad of fun)", lambda c: M(c, method="Nelder-Mead")),
    R("minimize", "method", '"SLSQP"', ValueError, "(jaxgd has box constraints only (bounds=(lower, upper) with 'lbfgs': L-BFGS-B)", lambda c: M(c, method="SLSQP")),
    R("minimize", "method", '"Newton-CG"', ValueError, "(did you mean method='lbfgs' or 'bfgs' (quasi-Newton: jaxgd has no Hessian-vector Newton-CG", lambda c: M(c, method="Newton-CG")),
    R("minimize", "lr", "0.1 with method=optax.adam(0.01)", ValueError, "lr=0.1 with an optax transformation as method", lambda c: M(c, method=_optax().adam(0.01), lr=0.1)),
    R("Solver", "lr", "schedule with method=optax.sgd(0.1)", ValueError, "with an optax transformation as method", lambda c: S(c, _optax().sgd(0.1), lambda k: 0.1)),
    R("fit", "lr", "0.1 with method=optax.adam(0.01)", ValueError, "lr=0.1 with an optax transformation as method", lambda c: c.F(method=_optax().adam(0.01), lr=0.1)),
    R("minimize", "args", "[X, y] (a list) for fun(params, X, y)", TypeError, "args[0] is a list, passed to fun as one argument (minimize spreads a tuple only): if its items are fun's arguments, pass args=(X, y)", lambda c: M(c, fun=lambda x, a, b: jnp.sum((a @ x - b) ** 2), args=[np.ones((4, 3)), np.ones(4)]), True),
    R("minimize", "args", "an (4, 2) matrix for x0 of shape (3,)", TypeError, "x0=float64[3], args[0]=float64[4, 2]: dot_general", lambda c: M(c, fun=lambda x, a: jnp.sum(a @ x), args=(np.ones((4, 2)),)), True),
    R("minimize", "x0", "[1.0, 2.0] (a Python list) with fun using x @ A", TypeError, "x0 is a Python list of 2 numbers", lambda c: M(c, fun=lambda x: jnp.sum(x @ jnp.ones((2, 2))), x0=[1.0, 2.0]), True),
    R("minimize", "x0", "[1.0, 2.0] (a Python list) with fun using x @ np_array", TypeError, "x0 is a Python list of 2 numbers", lambda c: M(c, fun=lambda x: jnp.sum(x @ np.ones((2, 2))), x0=[1.0, 2.0]), True),
    R("fit", "fun", "runs a lax.while_loop (a fixed point)", ValueError, "fun: jax.grad cannot differentiate the loss: it runs a lax.while_loop", lambda c: c.F(fun=lambda p, b: _loop_loss(p)), True),
    R("fit", "fun", "returns (loss, aux), a Linen model's updated batch_stats", TypeError, "fit has no has_aux", lambda c: c.F(fun=lambda p, b: (c.fl(p, b), p)), True),
    R("fit", "params", "a Flax Linen model's variables {'params': ..., 'batch_stats': ...}", ValueError, "params holds a Flax Linen model's variables with a 'batch_stats' collection", lambda c: c.F(params={"params": {"w": c.x0}, "batch_stats": {"mean": c.x0}}, fun=lambda v, b: c.fl(v["params"]["w"], b))),
    R("fit", "fun", "loss(w, X, y)", TypeError, "fit calls fun(params, batch) with batch a slice of data, but fun(w, X, y)", lambda c: c.F(fun=lambda w, X, y: jnp.mean((X @ w - y) ** 2))),
    R("fit", "data", "x of shape (10, 4) for params of shape (3,)", TypeError, "fun(params, batch) failed when jaxgd traced it", lambda c: c.F(data_x=np.ones((10, 4))), True),
    R("fit", "(jax.grad)", "jax.grad(lambda p: fit(..., params=p).loss)", TypeError, "jaxgd.fit is not differentiable", lambda c: jax.grad(lambda p: c.F(params=p).loss)(c.x0), True),
    R("fit", "fun", "closing over a value jax.grad differentiates", TypeError, "jaxgd.fit is not differentiable (jax.grad, jax.vjp, jax.jvp or jax.jacfwd reached it with respect to a value the loss closes over)", lambda c: jax.grad(lambda s: c.F(fun=lambda p, b: s * c.fl(p, b)).loss)(1.0), True),
    # -- session 28: a row for every keyword (test_the_table_covers_every_keyword) ---------------------
    R("minimize", "accelerated", '"yes"', TypeError, "accelerated must be a bool", lambda c: M(c, accelerated="yes")),
    # -- session 29: FISTA's extrapolation with a method it does not accelerate ------------------------
    R("minimize", "lr", "MoreThuente() with l1=0.1", ValueError, "l1= cannot be combined with lr=MoreThuente(", lambda c: M(c, method="gd", lr=jaxgd.linesearch.MoreThuente(), l1=0.1)),
    R("minimize", "lr", "Exact() with l1=0.1", ValueError, "Exact searches along the smooth part of the loss only", lambda c: M(c, method="gd", lr=jaxgd.linesearch.Exact(), l1=0.1)),
    R("minimize", "accelerated", "True with lr=Backtracking() (c1=1e-4)", ValueError, "accelerated=True cannot be combined with lr=Backtracking(c1=0.0001", lambda c: M(c, method="gd", lr=jaxgd.linesearch.Backtracking(), accelerated=True)),
    R("minimize", "accelerated", "True with lr=BarzilaiBorwein()", ValueError, "BarzilaiBorwein takes steps that may exceed 1/L", lambda c: M(c, method="gd", lr=jaxgd.linesearch.BarzilaiBorwein(), accelerated=True)),
    R("Solver", "accelerated", "True with lr=Polyak()", ValueError, "Polyak takes steps that may exceed 1/L", lambda c: S(c, "gd", jaxgd.linesearch.Polyak(), accelerated=True)),
    R("minimize", "accelerated", "True with method='momentum'", ValueError, "accelerated=True cannot be combined with method='momentum'", lambda c: M(c, method="momentum", accelerated=True)),
    R("minimize", "accelerated", "True with method='bfgs'", ValueError, "accelerated=True cannot be combined with method='bfgs'", lambda c: M(c, method="bfgs", accelerated=True)),
    R("Solver", "accelerated", "True with method='cg'", ValueError, "accelerated=True cannot be combined with method='cg'", lambda c: S(c, "cg", accelerated=True)),
    R("minimize", "bounds", "(0.0, None) with method='bfgs'", ValueError, "bounds= cannot be combined with method='bfgs'", lambda c: M(c, method="bfgs", bounds=(0.0, None))),
    R("Solver", "bounds", "(0.0, 1.0) with method='cg'", ValueError, "bounds= cannot be combined with method='cg'", lambda c: S(c, "cg", bounds=(0.0, 1.0))),
    R("fit", "bounds", "(0.0, None) with method='bfgs'", ValueError, "bounds= cannot be combined with method='bfgs'", lambda c: c.F(method="bfgs", lr=0.1, bounds=(0.0, None))),
    R("minimize", "lr", "0.1 with method='lbfgs' and bounds", ValueError, "lr=0.1 cannot be combined with method='lbfgs' and bounds=", lambda c: M(c, method="lbfgs", lr=0.1, bounds=(0.0, None))),
    R("Solver", "lr", "Backtracking() with method='lbfgs' and bounds", ValueError, "cannot be combined with method='lbfgs' and bounds=: with bounds, lbfgs runs L-BFGS-B", lambda c: S(c, "lbfgs", lr=jaxgd.linesearch.Backtracking(), bounds=(0.0, 1.0))),
    R("fit", "lr", "0.1 with method='lbfgs' and bounds", ValueError, "lr=0.1 cannot be combined with method='lbfgs' and bounds=", lambda c: c.F(method="lbfgs", lr=0.1, bounds=(0.0, None))),
    R("minimize", "clip", "1.0 with method='lbfgs' and bounds", ValueError, "clip=1.0 cannot be combined with method='lbfgs' and bounds=", lambda c: M(c, method="lbfgs", clip=1.0, bounds=(0.0, None))),
    R("as_optax", "bounds", "(0.0, None) with method='lbfgs' (L-BFGS-B)", ValueError, "as_optax cannot run method='lbfgs' with bounds=", lambda c: jaxgd.as_optax("lbfgs", bounds=(0.0, None))),
    R("as_optax", "lr", "0.1 with method='lbfgs' and bounds", ValueError, "lr=0.1 cannot be combined with method='lbfgs' and bounds=", lambda c: jaxgd.as_optax("lbfgs", 0.1, bounds=(0.0, None))),
    R("fit", "accelerated", "True with method='adam' (fit's default method)", ValueError, "accelerated=True cannot be combined with method='adam'", lambda c: c.F(method="adam", accelerated=True)),
    R("Solver", "ftol", "-1.0", ValueError, "ftol must be", lambda c: S(c, ftol=-1.0)),
    R("Solver", "xtol", '"a"', TypeError, "xtol must be a non-negative number, got xtol='a'", lambda c: S(c, xtol="a")),
    R("Solver", "l2", "-1.0", ValueError, "l2 must be a non-negative finite number", lambda c: S(c, l2=-1.0)),
    R("Solver", "clip", "0.0", ValueError, "clip must be None or a positive number", lambda c: S(c, clip=0.0)),
    R("Solver", "progress", "-2", ValueError, "progress must be", lambda c: S(c, progress=-2)),
    R("Solver", "bounds", "(1.0, 0.0)", ValueError, "bounds: lower must be <= upper", lambda c: S(c, bounds=(1.0, 0.0))),
    R("Solver", "accelerated", '"yes"', TypeError, "accelerated must be a bool", lambda c: S(c, accelerated="yes")),
    R("Solver", "lr", "jaxgd.linesearch.Backtracking (the class, not an instance)", TypeError, "got the class Backtracking: call it, lr=Backtracking()", lambda c: S(c, "gd", jaxgd.linesearch.Backtracking)),
    R("minimize", "lr", "jaxgd.linesearch.StrongWolfe (the class)", TypeError, "got the class StrongWolfe: call it, lr=StrongWolfe()", lambda c: M(c, method="lbfgs", lr=jaxgd.linesearch.StrongWolfe)),
    R("check_grad", "args", "5 (not a tuple)", TypeError, "args", lambda c: jaxgd.check_grad(c.f, c.x0, 5)),
    R("check_grad", "atol", "-1.0", ValueError, "atol", lambda c: jaxgd.check_grad(c.f, c.x0, atol=-1.0)),
    R("linesearch.Backtracking", "increase", "0.5 (< 1)", ValueError, "increase must be a finite number >= 1.0", lambda c: jaxgd.linesearch.Backtracking(increase=0.5)),
    R("linesearch.Backtracking", "approx_rtol", "-1.0", ValueError, "approx_rtol", lambda c: jaxgd.linesearch.Backtracking(approx_rtol=-1.0)),
    R("linesearch.BarzilaiBorwein", "initial", "0.0", ValueError, "initial", lambda c: jaxgd.linesearch.BarzilaiBorwein(initial=0.0)),
    R("linesearch.BarzilaiBorwein", "max_step", "-1.0", ValueError, "max_step", lambda c: jaxgd.linesearch.BarzilaiBorwein(max_step=-1.0)),
    R("linesearch.Exact", "initial", "np.nan", ValueError, "initial", lambda c: jaxgd.linesearch.Exact(initial=np.nan)),
    R("linesearch.Exact", "max_iter", "2.5", ValueError, "max_iter", lambda c: jaxgd.linesearch.Exact(max_iter=2.5)),
    R("linesearch.MoreThuente", "c1", "0.0", ValueError, "c1", lambda c: jaxgd.linesearch.MoreThuente(c1=0.0)),
    R("linesearch.MoreThuente", "initial", "-1.0", ValueError, "initial", lambda c: jaxgd.linesearch.MoreThuente(initial=-1.0)),
    R("linesearch.MoreThuente", "max_iter", "0", ValueError, "max_iter", lambda c: jaxgd.linesearch.MoreThuente(max_iter=0)),
    R("linesearch.MoreThuente", "approx_rtol", "np.nan", ValueError, "approx_rtol", lambda c: jaxgd.linesearch.MoreThuente(approx_rtol=np.nan)),
    R("linesearch.Polyak", "scale", "-1.0", ValueError, "scale", lambda c: jaxgd.linesearch.Polyak(scale=-1.0)),
    R("linesearch.Polyak", "max_step", "0.0", ValueError, "max_step must be > 0 (inf allowed)", lambda c: jaxgd.linesearch.Polyak(max_step=0.0)),
    R("linesearch.ReduceOnPlateau", "initial", "0.0", ValueError, "initial", lambda c: jaxgd.linesearch.ReduceOnPlateau(initial=0.0)),
    R("linesearch.ReduceOnPlateau", "cooldown", "-1", ValueError, "cooldown", lambda c: jaxgd.linesearch.ReduceOnPlateau(cooldown=-1)),
    R("linesearch.ReduceOnPlateau", "rtol", "-1.0", ValueError, "rtol", lambda c: jaxgd.linesearch.ReduceOnPlateau(rtol=-1.0)),
    R("linesearch.ReduceOnPlateau", "atol", "np.nan", ValueError, "atol", lambda c: jaxgd.linesearch.ReduceOnPlateau(atol=np.nan)),
    R("linesearch.StrongWolfe", "c1", "1.0", ValueError, "c1", lambda c: jaxgd.linesearch.StrongWolfe(c1=1.0)),
    R("linesearch.StrongWolfe", "initial", "0.0", ValueError, "initial", lambda c: jaxgd.linesearch.StrongWolfe(initial=0.0)),
    R("linesearch.StrongWolfe", "expand", "1.0", ValueError, "expand", lambda c: jaxgd.linesearch.StrongWolfe(expand=1.0)),
    R("linesearch.StrongWolfe", "interpolate", '"no"', TypeError, "interpolate must be a bool, got interpolate='no'", lambda c: jaxgd.linesearch.StrongWolfe(interpolate="no")),
    R("linesearch.StrongWolfe", "approx_rtol", "-1.0", ValueError, "approx_rtol", lambda c: jaxgd.linesearch.StrongWolfe(approx_rtol=-1.0)),
    R("fit", "method", '"sgd2"', ValueError, "method='sgd2' is not a known method", lambda c: c.F(method="sgd2")),
    R("fit", "eval_data", '{"x": 4 rows, "y": 5 rows}', ValueError, "eval_data leaves must share the leading (example) axis", lambda c: c.F(eval_data={"x": np.ones((4, 3)), "y": np.ones(5)}), True),
    R("fit", "eval_fun", "3 (not callable)", TypeError, "eval_fun must be callable", lambda c: c.F(eval_data=c.data, eval_fun=3)),
    R("fit", "metric", "3 (not callable)", TypeError, "metric must be callable", lambda c: c.F(eval_data=c.data, metric=3)),
    R("fit", "patience", "0", ValueError, "patience", lambda c: c.F(eval_data=c.data, patience=0)),
    R("fit", "remainder", '"foo"', TypeError, "remainder", lambda c: c.F(remainder="foo")),
    R("fit", "mesh", '"x"', TypeError, "mesh must be a jax.sharding.Mesh", lambda c: c.F(mesh="x")),
    R("fit", "mesh", "a mesh of Explicit axes, under jax.jit inside jax.set_mesh", ValueError, "mesh= with a mesh of Explicit axes in context (jax.set_mesh) under a transformation", lambda c: _under_explicit_jit(lambda m: c.F(mesh=m)), True),
    R("fit", "data", "sharded over an Explicit mesh axis, under jax.jit", ValueError, "data sharded over a mesh's Explicit axes under a transformation", lambda c: _jit_explicit_data(c), True),
    R("fit", "data_axis", "3 (no mesh)", TypeError, "data_axis must be a mesh axis name (a str), got data_axis=3", lambda c: c.F(data_axis=3)),
    R("fit", "progress", '"on"', TypeError, "progress must be a bool", lambda c: c.F(progress="on")),
    R("fit", "clip", "-1.0", ValueError, "clip must be None or a positive number", lambda c: c.F(clip=-1.0)),
    R("plot.compare", "ax", '"x"', TypeError, "ax must be a matplotlib Axes or None, got str", lambda c: jaxgd.plot.compare({"a": np.ones(3)}, "x")),
    R("plot.compare", "logy", '"no"', TypeError, "logy must be a bool or None, got logy='no'", lambda c: jaxgd.plot.compare({"a": np.ones(3)}, logy="no")),
    R("plot.compare", "every", "0", ValueError, "every must be a positive integer", lambda c: jaxgd.plot.compare({"a": np.ones(3)}, every=0)),
    R("plot.loss_curve", "ax", "3", TypeError, "ax must be a matplotlib Axes or None, got int", lambda c: jaxgd.plot.loss_curve(np.ones(3), 3)),
    R("plot.loss_curve", "logy", '"no"', TypeError, "logy must be a bool or None, got logy='no'", lambda c: jaxgd.plot.loss_curve(np.ones(3), logy="no")),
    R("plot.save", "path", "3", TypeError, "path must be a str or os.PathLike, got int", lambda c: jaxgd.plot.save(jaxgd.plot.subplots()[0], 3)),
    R("plot.save", "dpi", '"hi"', ValueError, "dpi must be a positive number, got dpi='hi'", lambda c: jaxgd.plot.save(jaxgd.plot.subplots()[0], c.dir / "p.png", dpi="hi")),
    R("plot.schedule", "ax", "3", TypeError, "ax must be a matplotlib Axes or None, got int", lambda c: jaxgd.plot.schedule(0.1, 5, 3)),
    R("problems.all_problems", "seed", "-1", ValueError, "seed=-1 must be a non-negative integer", lambda c: jaxgd.problems.all_problems(seed=-1)),
    R("problems.is_quadratic_norm_minimiser", "c", "-1.0", ValueError, "c=-1.0 must be a non-negative number", lambda c: jaxgd.problems.is_quadratic_norm_minimiser(np.zeros(2), c=-1.0)),
    R("problems.is_quadratic_norm_minimiser", "rtol", "-1.0", ValueError, "rtol=-1.0 must be a non-negative number", lambda c: jaxgd.problems.is_quadratic_norm_minimiser(np.zeros(2), rtol=-1.0)),
    R("problems.linear_regression", "d", "0", ValueError, "d=0 must be a positive integer", lambda c: jaxgd.problems.linear_regression(10, 0)),
    R("problems.linear_regression", "y", "given without X", ValueError, "pass both X and y or neither", lambda c: jaxgd.problems.linear_regression(y=np.ones(3))),
    R("problems.linear_regression", "fit_intercept", '"no"', TypeError, "fit_intercept must be a bool, got fit_intercept='no'", lambda c: jaxgd.problems.linear_regression(fit_intercept="no")),
    R("problems.linear_regression", "seed", '"a"', ValueError, "seed='a' must be a non-negative integer", lambda c: jaxgd.problems.linear_regression(seed="a")),
    R("problems.logistic_regression", "n", "0", ValueError, "n=0 must be a positive integer", lambda c: jaxgd.problems.logistic_regression(0)),
    R("problems.logistic_regression", "d", "-1", ValueError, "d=-1 must be a positive integer", lambda c: jaxgd.problems.logistic_regression(10, -1)),
    R("problems.logistic_regression", "X", "shape (3,) (not 2-D)", ValueError, "X must be a 2-D array", lambda c: jaxgd.problems.logistic_regression(X=np.ones(3), y=np.ones(3))),
    R("problems.logistic_regression", "l2", "-1.0", ValueError, "l2=-1.0 must be a non-negative number", lambda c: jaxgd.problems.logistic_regression(l2=-1.0)),
    R("problems.logistic_regression", "seed", "2.5", ValueError, "seed=2.5 must be a non-negative integer", lambda c: jaxgd.problems.logistic_regression(seed=2.5)),
    R("problems.logistic_regression", "dtype", "np.int32", ValueError, "is not a floating-point dtype", lambda c: jaxgd.problems.logistic_regression(dtype=np.int32)),
    R("problems.mlp", "n", "0", ValueError, "n=0 must be a positive integer", lambda c: jaxgd.problems.mlp(n=0)),
    R("problems.mlp", "X", "shape (3,) (not 2-D)", ValueError, "X must be a 2-D array", lambda c: jaxgd.problems.mlp(X=np.ones(3), y=np.ones(3))),
    R("problems.mlp", "y", "given without X", ValueError, "pass both X and y or neither", lambda c: jaxgd.problems.mlp(y=np.ones(3))),
    R("problems.mlp", "l2", "-1.0", ValueError, "l2=-1.0 must be a non-negative number", lambda c: jaxgd.problems.mlp(l2=-1.0)),
    R("problems.mlp", "seed", "-1", ValueError, "seed=-1 must be a non-negative integer", lambda c: jaxgd.problems.mlp(seed=-1)),
    R("problems.mlp", "dtype", '"float16"', ValueError, "dtype='float16' is not float32 or float64", lambda c: jaxgd.problems.mlp(dtype="float16")),
    R("problems.quadratic_norm", "seed", "None", ValueError, "seed=None must be a non-negative integer", lambda c: jaxgd.problems.quadratic_norm(seed=None)),
    R("problems.quadratic_norm", "dtype", '"float16"', ValueError, "dtype='float16' is not float32 or float64", lambda c: jaxgd.problems.quadratic_norm(dtype="float16")),
    R("problems.rosenbrock", "dtype", "np.int64", ValueError, "is not a floating-point dtype", lambda c: jaxgd.problems.rosenbrock(dtype=np.int64)),
    R("problems.softmax_regression", "n", "0", ValueError, "n=0 must be a positive integer", lambda c: jaxgd.problems.softmax_regression(0)),
    R("problems.softmax_regression", "d", "0", ValueError, "d=0 must be a positive integer", lambda c: jaxgd.problems.softmax_regression(10, 0)),
    R("problems.softmax_regression", "k", "1 (one class)", ValueError, "k=1 must be an integer >= 2 (the number of classes)", lambda c: jaxgd.problems.softmax_regression(k=1)),
    R("problems.softmax_regression", "X", "shape (3,) (not 2-D)", ValueError, "X must be a 2-D array", lambda c: jaxgd.problems.softmax_regression(X=np.ones(3), y=np.zeros(3, int))),
    R("problems.softmax_regression", "l2", "-1.0", ValueError, "l2=-1.0 must be a non-negative number", lambda c: jaxgd.problems.softmax_regression(l2=-1.0)),
    R("problems.softmax_regression", "seed", '"0"', ValueError, "seed='0' must be a non-negative integer", lambda c: jaxgd.problems.softmax_regression(seed="0")),
    R("problems.softmax_regression", "dtype", '"float16"', ValueError, "dtype='float16' is not float32 or float64", lambda c: jaxgd.problems.softmax_regression(dtype="float16")),
    R("schedules.multistep_decay", "gamma", "-0.5", ValueError, "gamma must be > 0", lambda c: schedules.multistep_decay(0.1, [5], -0.5)),
    # -- bounds= with None inside a pytree side (no bound on that part of x0) ---------------------------------------
    R("minimize", "bounds", '({"a": 5.0, "b": None}, {"a": 1.0, "b": None})', ValueError, "bounds: lower must be <= upper", lambda c: M(c, fun=_ab_loss, x0=_AB, bounds=({"a": 5.0, "b": None}, {"a": 1.0, "b": None}))),
    R("minimize", "bounds", '({"a": None}, None) for x0 {"a", "b"}', ValueError, "bounds: lower must be None, a number, or a pytree", lambda c: M(c, fun=_ab_loss, x0=_AB, bounds=({"a": None}, None))),
    R("minimize", "bounds", '(None, {"a": None, "b": np.ones(3)}) for a b of shape (2,)', ValueError, "bounds: upper must be None, a number, or a pytree", lambda c: M(c, fun=_ab_loss, x0=_AB, bounds=(None, {"a": None, "b": np.ones(3)}))),
    R("minimize", "bounds", "[(0, None)] * 3 (scipy's per-variable list)", ValueError, "scipy's per-variable list [(min, max), ...] is written bounds=(lower, upper) here", lambda c: M(c, bounds=[(0, None)] * 3)),
    R("minimize", "bounds", "[(0, 1), (0, 1)] (scipy's list of two pairs) for an array x0", ValueError, "bounds: lower must be None, a number, or a pytree", lambda c: M(c, bounds=[(0, 1), (0, 1)])),
    R("minimize", "bounds", "scipy.optimize.Bounds([1, 1, 1], [0, 0, 0])", ValueError, "bounds: lower must be <= upper", lambda c: M(c, bounds=scipy.optimize.Bounds([1, 1, 1], [0, 0, 0]))),
    # -- scipy.optimize keywords jaxgd has no counterpart for: what to do instead ----------------------------------
    R("minimize", "(keyword)", 'options={"maxiter": 10} (scipy)', TypeError, "(options: pass its entries as keywords: maxiter as max_steps", lambda c: M(c, options={"maxiter": 10})),
    R("minimize", "(keyword)", "callback=print (scipy)", TypeError, "(callback: no per-step callback in the compiled loop: history= records", lambda c: M(c, callback=print)),
    R("minimize", "(keyword)", "jac=True (scipy)", TypeError, "(jac: nothing to pass: jaxgd differentiates fun with jax.grad)", lambda c: M(c, jac=True)),
    R("minimize", "(keyword)", "maxcor=5 (scipy's L-BFGS-B)", TypeError, "(maxcor: method=jaxgd.directions.lbfgs(memory_size=m) for scipy's maxcor=m", lambda c: M(c, maxcor=5)),
    R("minimize", "(keyword)", "factr=1e7 (scipy's L-BFGS-B)", TypeError, "(factr: ftol=factr * numpy.finfo(float).eps", lambda c: M(c, factr=1e7)),
    R("minimize", "(keyword)", "constraints=() (scipy)", TypeError, "(constraints: jaxgd has box constraints only: bounds=(lower, upper); for others reparameterise", lambda c: M(c, constraints=())),
    R("Solver", "(keyword)", "hess=None (scipy)", TypeError, "(hess: nothing to pass: bfgs and lbfgs build their curvature from gradients)", lambda c: S(c, hess=None)),
    # -- session 59: optimistix's keywords and adjoint objects (its rtol/atol are no ftol/gtol) ------------------------
    R("minimize", "(keyword)", "rtol=1e-6 (optimistix)", TypeError, "(rtol: optimistix's rtol and atol (one Cauchy test, |change| <= atol + rtol * |value|, on both y and f) have no jaxgd counterpart: set gtol=", lambda c: M(c, rtol=1e-6)),
    R("Solver", "(keyword)", "atol=1e-6 (optimistix)", TypeError, "(atol: optimistix's rtol and atol", lambda c: S(c, atol=1e-6)),
    R("minimize", "(keyword)", "throw=False (optimistix)", TypeError, "(throw: nothing to pass: jaxgd never raises on a failed run", lambda c: M(c, throw=False)),
    R("minimize", "(keyword)", "tags=frozenset() (optimistix)", TypeError, "(tags: optimistix's tags (lineax structure tags) have no counterpart", lambda c: M(c, tags=frozenset())),
    R("minimize", "adjoint", "optx.ImplicitAdjoint()", ValueError, "(optimistix's ImplicitAdjoint() is adjoint='implicit')", lambda c: M(c, adjoint=ImplicitAdjoint())),
    R("minimize", "adjoint", "optx.RecursiveCheckpointAdjoint()", ValueError, "(optimistix's RecursiveCheckpointAdjoint() is adjoint='unroll')", lambda c: M(c, adjoint=RecursiveCheckpointAdjoint())),
    # -- session 58: keyword spellings suggest the function's own keyword --------------------------------------------
    R("fit", "(keyword)", "maxiter=100", TypeError, "did you mean epochs, jaxgd's name for maxiter?", lambda c: c.F(maxiter=100)),
    R("minimize", "(keyword)", "momentum=0.95 (PyTorch)", TypeError, "method=optax.sgd(lr, momentum=0.95, nesterov=True)", lambda c: M(c, momentum=0.95)),
    R("Solver", "(keyword)", "eps=1e-6 (PyTorch's Adam)", TypeError, "adam's eps is fixed at 1e-8: method=optax.adam(lr, eps=...)", lambda c: S(c, eps=1e-6)),
    R("minimize", "(keyword)", "betas=(0.9, 0.99) (PyTorch's Adam)", TypeError, "method=optax.adam(lr, b1=..., b2=..., eps=...)", lambda c: M(c, betas=(0.9, 0.99))),
    R("fit", "(keyword)", "drop_last=False (PyTorch's DataLoader)", TypeError, "Remainder.MASK (every example every epoch", lambda c: c.F(drop_last=False)),
    # -- session 60: torch.optim's keywords (LBFGS, SGD, Adam, clip_grad_norm_, schedulers) and ReduceLROnPlateau ----
    R("minimize", "(keyword)", "history_size=10 (PyTorch's LBFGS)", TypeError, "(history_size: torch's LBFGS(history_size=m) is the L-BFGS memory: method=jaxgd.directions.lbfgs(memory_size=m)", lambda c: M(c, method="lbfgs", history_size=10)),
    R("minimize", "(keyword)", "line_search_fn='strong_wolfe' (PyTorch's LBFGS)", TypeError, "is lr=jaxgd.linesearch.StrongWolfe()", lambda c: M(c, method="lbfgs", line_search_fn="strong_wolfe")),
    R("Solver", "(keyword)", "tolerance_grad=1e-7 (PyTorch's LBFGS)", TypeError, "gtol=tolerance_grad, gtol_norm=math.inf", lambda c: S(c, tolerance_grad=1e-7)),
    R("minimize", "(keyword)", "tolerance_change=1e-9 (PyTorch's LBFGS)", TypeError, "ftol=tolerance_change is the loss test while |f| <= 1", lambda c: M(c, tolerance_change=1e-9)),
    R("minimize", "(keyword)", "max_norm=1.0 (PyTorch's clip_grad_norm_)", TypeError, "is clip=max_norm (the gradient's global 2-norm). jaxgd clips the gradient of the loss with l2's penalty included", lambda c: M(c, max_norm=1.0)),
    R("minimize", "(keyword)", "amsgrad=True (PyTorch's Adam)", TypeError, "torch's Adam(amsgrad=True) is method=optax.amsgrad(lr)", lambda c: M(c, method="adam", amsgrad=True)),
    R("minimize", "(keyword)", "dampening=0.1 (PyTorch's SGD)", TypeError, "method=optax.sgd(lr * (1 - d), momentum=m) matches except for the first gradient", lambda c: M(c, method="momentum", dampening=0.1)),
    R("minimize", "(keyword)", "scheduler=... (PyTorch's lr_scheduler)", TypeError, "(scheduler: lr is the schedule: lr=optax.cosine_decay_schedule(...)", lambda c: M(c, scheduler=lambda k: 0.1)),
    R("fit", "(keyword)", "lr_scheduler=... (PyTorch)", TypeError, "jaxgd.schedules.per_epoch(epoch_schedule, steps_per_epoch) for a scheduler.step() once an epoch", lambda c: c.F(lr_scheduler=lambda k: 0.1)),
    R("fit", "(keyword)", "history_size=10 (PyTorch's LBFGS)", TypeError, "with a float or schedule lr: fit takes no line search", lambda c: c.F(history_size=10)),
    R("fit", "(keyword)", "clip_grad_norm=1.0 (PyTorch)", TypeError, "is clip=max_norm", lambda c: c.F(clip_grad_norm=1.0)),
    R("fit", "lr", "jaxgd.linesearch.ReduceOnPlateau(0.1)", ValueError, "cuts the step size when the loss of each step stops improving, which fit's steps cannot tell", lambda c: c.F(lr=jaxgd.linesearch.ReduceOnPlateau(0.1))),
    R("fit", "lr", "optax.contrib.reduce_on_plateau()", TypeError, "lr must be a float or a schedule (count -> lr), got an optax transformation (GradientTransformationExtraArgs)", lambda c: c.F(lr=_optax().contrib.reduce_on_plateau())),
    R("fit", "resume", "jaxgd.load_checkpoint(path) (a flat dict)", TypeError, "resume must be None, a jaxgd.FitResult or a checkpoint path (str or os.PathLike), got a dict: jaxgd.load_checkpoint(path) returns", lambda c: c.F(resume=load_checkpoint(c.fit_good)), True),
    R("minimize", "resume", "jaxgd.load_checkpoint(path) (a flat dict)", TypeError, "got a dict: jaxgd.load_checkpoint(path) returns the file's leaves as a flat {leaf path: array} dict", lambda c: M(c, resume=load_checkpoint(c.good)), True),
    R("minimize", "resume", "a checkpoint written with lr=0.5 (call: lr=0.05)", ValueError, "then minimize(fun, r.params, ..., resume=r) with the new ones goes on from there with its solver state", lambda c: M(c, resume=c.lr05, lr=0.05), True),
    R("fit", "resume", "a checkpoint written with lr=0.1 (call: lr=0.01)", ValueError, "then fit(fun, r.params, data, ..., resume=r) with the new ones goes on from there with its optimizer state", lambda c: c.F(resume=c.fit_clip, lr=0.01, clip=1.0), True),
    # -- session 58: fit's data and loss as a PyTorch user writes them ----------------------------------------------
    R("fit", "data", "a generator of (x, y) batches", ValueError, "data must be a pytree of arrays with a leading (example) axis; data is a generator, not an array: fit takes the whole data set as arrays", lambda c: jaxgd.fit(c.fl, c.x0, ((c.data["x"][i:i + 2], c.data["y"][i:i + 2]) for i in range(0, 10, 2)), batch_size=2, epochs=1, key=c.key)),
    R("fit", "data", "{'x': [1.0, 2.0]} (a list of floats)", ValueError, "is a scalar (a Python list is a pytree of its items to JAX: pass np.asarray(the list) for one array)", lambda c: jaxgd.fit(c.fl, c.x0, {"x": [1.0, 2.0]}, batch_size=1, epochs=1, key=c.key)),
    R("fit", "fun", "fun(params, batch, w) without remainder=MASK", TypeError, "for a loss of (params, batch, weights), fit's form for a weighted last batch, pass remainder=jaxgd.Remainder.MASK", lambda c: c.F(fun=lambda p, b, w: jnp.sum(p))),
    R("fit", "batch_size", "11 > n = 10 with remainder=Remainder.DROP", ValueError, "(or any positive integer with remainder=Remainder.MASK: one padded batch), got batch_size=11", lambda c: c.F(batch_size=11)),
    R("fit", "eval_data", "{'x': 3 columns} where fun needs 3 (the default eval_fun)", TypeError, "fun(params, eval_data) (the default eval_fun) failed when jaxgd traced it", lambda c: c.F(eval_data={"x": np.ones((4, 2)), "y": np.ones(4)}), True),
    R("fit", "eval_fun", "a (params, batch, weights) loss under Remainder.MASK", TypeError, "eval_fun is called as eval_fun(params, eval_data), also under remainder=Remainder.MASK", lambda c: c.F(fun=lambda p, b, w: jnp.sum(w * (b["x"] @ p - b["y"]) ** 2) / jnp.sum(w), remainder=jaxgd.Remainder.MASK, eval_data=c.data, eval_fun=lambda p, b, w: jnp.sum(p)), True),
    R("fit", "(keyword)", "mode='max' (Keras's EarlyStopping)", TypeError, "for a higher-is-better score pass eval_fun=lambda p, d: -score(p, d)", lambda c: c.F(mode="max")),
    R("check_grad", "x", "{'a': zeros(0), 'b': ones(2)} (a leaf of size 0)", ValueError, "x leaf ['a'] has shape (0,), no entries: nothing to check", lambda c: jaxgd.check_grad(lambda x: jnp.sum(x["b"] ** 2), {"a": np.zeros(0), "b": np.ones(2)})),
    R("problems.is_quadratic_norm_minimiser", "x", "np.array([3 + 5j, 0])", TypeError, "x must be a real array, got x of dtype complex128", lambda c: jaxgd.problems.is_quadratic_norm_minimiser(np.array([3 + 5j, 0]))),
    R("minimize", "bounds", "(zeros(900), ones(900) with -1 at [5])", ValueError, "lower > upper at 1 of 900 entries, first at index 5: lower=np.float64(0.0), upper=np.float64(-1.0)", lambda c: M(c, x0=np.zeros(900), method="lbfgs", bounds=(np.zeros(900), np.where(np.arange(900) == 5, -1.0, 1.0)))),
    R("minimize", "l1", "full(900, 0.1) with -1 at [7]", ValueError, "got l1=an array of shape (900,) holding np.float64(-1.0) at index (7,)", lambda c: M(c, x0=np.zeros(900), l1=np.where(np.arange(900) == 7, -1.0, 0.1))),
    # -- session 58: l1 and accelerated with an optax transformation as method ---------------------------------------
    R("minimize", "l1", "0.05 with method=optax.sgd(0.1)", ValueError, "l1=0.05 cannot be combined with an optax transformation as method", lambda c: M(c, method=_optax().sgd(0.1), l1=0.05)),
    R("fit", "l1", "0.05 with method=optax.sgd(0.1)", ValueError, "l1=0.05 cannot be combined with an optax transformation as method", lambda c: c.F(method=_optax().sgd(0.1), lr=None, l1=0.05)),
    R("as_optax", "l1", "0.05 with optax.sgd(0.1)", ValueError, "l1=0.05 cannot be combined with an optax transformation as method", lambda c: jaxgd.as_optax(_optax().sgd(0.1), l1=0.05)),
    R("Solver", "accelerated", "True with method=optax.adam(0.1)", ValueError, "accelerated=True cannot be combined with an optax transformation as method", lambda c: S(c, _optax().adam(0.1), accelerated=True)),
    # -- session 60: a model's state passed as params (it was told to cast an RNG count or a string to float) ---------
    R("fit", "params", "nnx.state(model) of an NNX model with Dropout (its uint32 RNG count)", TypeError, "is the value (a uint32 array) of an nnx.RngCount of a Flax NNX state (nnx.State), not a parameter: jaxgd.minimize and jaxgd.fit take the model itself", lambda c: c.F(params=_model(c, "nnx_state"))),
    R("as_optax", "params", "an NNX model with BatchNorm and Dropout (at init)", TypeError, "of a Flax NNX model (Net), not a parameter", lambda c: jaxgd.as_optax("adam", 1e-3).init(_model(c, "nnx"))),
    R("fit", "params", "(model, state) from eqx.nn.make_with_state", TypeError, "params leaf [0].bn.axis_name is a str of an Equinox module (Stateful), not a parameter: jaxgd.minimize and jaxgd.fit take the module itself", lambda c: c.F(params=_model(c, "eqx_state"))),
    R("as_optax", "value_fn", "the loss of the whole Equinox model, params its partition (at update)", TypeError, "value_fn(params), called with the params given to update, failed (TypeError: 'NoneType' object is not callable); value_fn must be the loss as a function of those params, in their structure: params is an Equinox partition here", lambda c: _tx_eqx_partition(c)),
    R("as_optax", "params", "an eqx.nn.MLP (at init)", TypeError, "is a custom_jvp of an Equinox module (MLP), not a parameter", lambda c: jaxgd.as_optax("adam", 1e-3).init(_model(c, "mlp"))),
]


def _optax() -> Any:
    import optax

    return optax


def _models() -> dict:
    """Models for the rows on model state passed as params: an Equinox MLP, an Equinox ``(model, state)``
    pair from ``eqx.nn.make_with_state`` and, where Flax is installed, an NNX model with BatchNorm and
    Dropout."""
    import equinox as eqx

    class Stateful(eqx.Module):
        lin: eqx.nn.Linear
        bn: eqx.nn.BatchNorm

        def __init__(self, key: Any) -> None:
            self.lin, self.bn = eqx.nn.Linear(3, 1, key=key), eqx.nn.BatchNorm(1, axis_name="batch", mode="batch")

        def __call__(self, x: Any, state: Any) -> Any:
            return self.bn(self.lin(x), state)

    models = {"mlp": eqx.nn.MLP(3, 1, 4, 1, key=jax.random.key(0)),
              "eqx_state": eqx.nn.make_with_state(Stateful)(jax.random.key(0))}
    try:
        from flax import nnx
    except ImportError:  # (flax is optional: its rows skip)
        return models

    class Net(nnx.Module):
        def __init__(self, rngs: Any) -> None:
            self.lin = nnx.Linear(3, 1, rngs=rngs)
            self.bn = nnx.BatchNorm(1, rngs=rngs)
            self.drop = nnx.Dropout(0.1, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            return self.drop(self.bn(self.lin(x)))[:, 0]

    models["nnx"] = Net(nnx.Rngs(0))
    models["nnx_state"] = nnx.state(models["nnx"])
    return models


def _tx_eqx_partition(c: Ctx) -> Any:
    """``as_optax``'s update given an Equinox MLP's float arrays and a ``value_fn`` of the whole model."""
    import equinox as eqx

    mlp = c.models["mlp"]
    params = eqx.filter(mlp, eqx.is_inexact_array)
    tx = jaxgd.as_optax("lbfgs")
    state = jax.eval_shape(tx.init, params)  # (nothing compiles: the update raises first)
    return tx.update(params, state, params, value=0.0, grad=params, value_fn=lambda m: jnp.sum(m(jnp.ones(3))))


def _model(c: Ctx, name: str) -> Any:
    if name not in c.models:
        pytest.skip("flax is not installed")
    return c.models[name]


def _tx_update(c: Ctx, lr: Any, params: Any = "x0", updates: Any = "x0", state: Any = None, **extra: Any) -> Any:
    """An ``as_optax`` update called without ``value``/``value_fn`` (or without ``params``), or with the
    ``updates``, ``state`` or extras given."""
    tx = jaxgd.as_optax("gd", lr)
    params = c.x0 if isinstance(params, str) else params
    # (the update raises before it reads the state: nothing compiles)
    state = jax.eval_shape(tx.init, c.x0 if params is None else params) if state is None else state
    return tx.update(c.x0 if isinstance(updates, str) else updates, state, params, **extra)


def _tx_other_state(c: Ctx, method: str, made_by: str) -> Any:
    """An ``as_optax(method)`` update given the state ``as_optax(made_by)``'s init returns (traced: nothing
    compiles)."""
    tx, other = jaxgd.as_optax(method), jaxgd.as_optax(made_by)
    loss = lambda x: jnp.sum(x * x)  # noqa: E731
    return jax.eval_shape(lambda x, s: tx.update(x, s, x, value=loss(x), value_fn=loss), c.x0,
                          jax.eval_shape(other.init, c.x0))


def _tx_masked(c: Ctx, value_fn: Any = "given") -> Any:
    """An ``as_optax`` line search under ``optax.multi_transform``, given ``value_fn`` (or not)."""
    optax = _optax()
    tx = optax.multi_transform({"ls": jaxgd.as_optax("gd", jaxgd.linesearch.Backtracking()), "sgd": optax.sgd(0.1)},
                               {"w": "ls", "v": "sgd"})
    p = {"w": c.x0, "v": c.x0}
    state = jax.eval_shape(tx.init, p)  # (nothing compiles: the update raises first)
    return tx.update(p, state, p, value=0.0, grad=p, value_fn=(lambda q: 0.0) if value_fn == "given" else value_fn)


def _tx_optax_lbfgs(c: Ctx) -> Any:
    """``as_optax(optax.lbfgs())``'s update without ``value_fn``, traced (``jax.eval_shape``: optax's own
    update runs operations before it calls ``value_fn``, which would compile eagerly)."""
    tx = jaxgd.as_optax(_optax().lbfgs())
    state = jax.eval_shape(tx.init, c.x0)
    return jax.eval_shape(lambda s: tx.update(c.x0, s, c.x0, value=0.0), state)


# -- the doc -------------------------------------------------------------------------------------
def _cell(text: str) -> str:
    """Table-safe Markdown: a pipe ends a cell, and brackets (a leaf path such as
    ['counter']['step']) read as a reference link that ``mkdocs --strict`` refuses."""
    return text.replace("|", "\\|").replace("[", "\\[").replace("]", "\\]")


def render(rows: list[Row]) -> str:
    lines = [
        "# Bad inputs and the errors they raise",
        "",
        "Every public function validates its arguments on the host, before anything",
        "is compiled, and raises a specific exception whose message names the",
        "argument. This table lists each bad input jaxgd is tested against: the",
        "message of the exception contains the fragment shown.",
        "",
        "`CheckpointError` (a file that is not a readable checkpoint) and",
        "`TreeMismatchError` (a tree whose structure, shapes or dtypes differ, with",
        "each differing leaf path named) are `ValueError` subclasses.",
        "",
        "<!-- Generated from ROWS in tests/test_bad_inputs.py, which also runs every row.",
        "     Edit ROWS there, then: PYTHONPATH=. python tests/test_bad_inputs.py --write -->",
        "",
        f"{len(rows)} bad inputs:",
        "",
        "| function | argument | bad value | exception | message contains |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| `{r.function}` | `{r.argument}` | {_cell(r.bad)} | `{r.exception.__name__}` | {_cell(r.fragment)} |"
        )
    return "\n".join(lines) + "\n"


# -- the tests -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Ctx:
    return Ctx(tmp_path_factory.mktemp("bad_inputs"))


@contextlib.contextmanager
def counting_compiles():
    """Counts backend compiles inside the block, after clearing JAX's caches, so
    that a compile counts whatever ran earlier in this process (a cache hit
    would otherwise hide it and make the check order-dependent)."""
    jax.clear_caches()
    count = {"n": 0}

    def listener(event: str, duration: float, **kw: Any) -> None:
        if event == COMPILE_EVENT:
            count["n"] += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield count
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


@pytest.fixture
def compiles(ctx: Ctx):
    """The row's compile count; the context's loss functions are new objects for each row."""
    ctx.fresh_functions()
    with counting_compiles() as count:
        yield count


def test_the_compile_counter_sees_what_an_earlier_test_compiled() -> None:
    """The premise of the "nothing compiled" check: a program compiled before the
    row (as by an earlier row in the same pytest worker) is still counted."""
    g = jax.jit(lambda x: jnp.sin(x) * 3.0)
    x = jnp.arange(3.0)
    g(x).block_until_ready()
    with counting_compiles() as count:
        g(x).block_until_ready()
    assert count["n"] >= 1


@pytest.mark.parametrize("row", ROWS, ids=[f"{i:03d}-{r.function}-{r.argument}" for i, r in enumerate(ROWS)])
def test_bad_input(row: Row, ctx: Ctx, compiles: dict) -> None:
    ctx.traces = 0
    with pytest.raises(BaseException) as info:
        row.call(ctx)
    if isinstance(info.value, pytest.skip.Exception):  # (a row on an optional library's objects)
        raise info.value
    assert type(info.value) is row.exception, f"{type(info.value).__name__}: {info.value}"
    assert row.fragment in str(info.value), str(info.value)
    assert compiles["n"] == 0, "compiled before raising"
    if not row.traces:
        assert ctx.traces == 0, "traced fun before raising"


# Public callables that take no argument a user could get wrong, or that are
# types jaxgd returns (results, states, enums, errors) rather than builds from
# user input; each with the reason it has no row.
NO_ROWS = {
    "methods": "takes no arguments",
    "plot.subplots": "matplotlib's own plt.subplots validates its arguments",
    "Result": "returned by minimize", "History": "returned by minimize", "SolverState": "returned by Solver",
    "Status": "an enum", "FitResult": "returned by fit", "FitHistory": "returned by fit", "FitStatus": "an enum",
    "Remainder": "an enum", "GradCheck": "returned by check_grad", "CheckpointError": "an exception",
    "TreeMismatchError": "an exception", "Direction": "a NamedTuple of functions; built by directions.*",
    "directions.Direction": "see Direction", "directions.BFGSState": "a state", "directions.CGState": "a state",
    "directions.CGVariant": "an enum (directions.cg validates the variant)",
    "problems.Problem": "returned by the problem factories",
    "CacheInfo": "returned by the compilation-cache functions",
    "compilation_cache_info": "takes no arguments", "disable_compilation_cache": "takes no arguments",
    "protocols.SearchDirection": "a typing.Protocol (a type to check against, never called)",
    "protocols.StepSizeRule": "a typing.Protocol (a type to check against, never called)",
    "protocols.ProximalOperator": "a typing.Protocol (a type to check against, never called)",
}


# Parameters with no row: any value is valid, or a wrong one cannot get past Python itself.
NO_KEYWORD_ROWS: dict[tuple[str, str], str] = {
    ("plot.compare", "title"): "any object: matplotlib prints its str()",
    ("plot.loss_curve", "label"): "any object: matplotlib prints its str()",
    ("plot.schedule", "label"): "any object: matplotlib prints its str()",
}


def _public_callables() -> list[str]:
    """Every public callable jaxgd defines: ``jaxgd.__all__`` and the ``__all__``
    of its public modules (optax's schedules, re-exported, are optax's to validate)."""
    import inspect

    out = []
    for name in jaxgd.__all__:
        obj = getattr(jaxgd, name)
        members = [(f"{name}.{sub}", getattr(obj, sub)) for sub in obj.__all__] if inspect.ismodule(obj) else [(name, obj)]
        out += [n for n, m in members if callable(m) and getattr(m, "__module__", "").startswith("jaxgd")]
    return out


def _exempt(name: str) -> bool:
    module, _, attr = name.rpartition(".")
    if name in NO_ROWS:
        return True
    if module == "schedules" and attr[:1].isupper():  # StepDecay, ...: built (and validated) by the factories
        return True
    # the rule protocol's types and the rules' states, which jaxgd builds
    return module == "linesearch" and attr in ("StepContext", "StepInfo", "Trial") or attr.endswith("State")


def test_the_table_covers_every_public_function() -> None:
    """Every public function and step-size rule has rows; what has none is exempt with a reason."""
    covered = {r.function.removesuffix(".resume") for r in ROWS}
    public = _public_callables()
    assert "linesearch.Backtracking" in public and "plot.save" in public and "fit" in public
    missing = [name for name in public if name not in covered and not _exempt(name)]
    assert missing == [], f"public callables without bad-input rows: {missing}"


def _keywords(name: str) -> list[str]:
    """The parameters of the public callable ``name`` (a class: its constructor's)."""
    import inspect

    module, _, attr = name.rpartition(".")
    obj = getattr(getattr(jaxgd, module) if module else jaxgd, attr)
    params = inspect.signature(obj).parameters.values()
    return [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"]


def test_the_table_covers_every_keyword() -> None:
    """Every parameter of every public callable with rows has a row of its own, or is exempt with
    a reason (NO_KEYWORD_ROWS): a keyword added without a row of bad input fails here."""
    rows = {(r.function.removesuffix(".resume"), r.argument) for r in ROWS}
    named = {f for f, _ in rows}
    missing = [f"{name}({kw}=)" for name in _public_callables() if name in named and not _exempt(name)
               for kw in _keywords(name) if (name, kw) not in rows and (name, kw) not in NO_KEYWORD_ROWS]
    assert missing == [], f"keywords without bad-input rows: {missing}"
    stale = [k for k in NO_KEYWORD_ROWS if k[0] not in named or k[1] not in _keywords(k[0])]
    assert stale == [], f"exemptions for keywords that do not exist: {stale}"


def test_doc_is_up_to_date() -> None:
    assert DOC.read_text() == render(ROWS), "docs/bad_inputs.md is stale: run PYTHONPATH=. python tests/test_bad_inputs.py --write"


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        jax.config.update("jax_enable_x64", True)
        os.makedirs(DOC.parent, exist_ok=True)
        DOC.write_text(render(ROWS))
        print(f"wrote {DOC} ({len(ROWS)} rows)")
    else:
        print(render(ROWS))
