"""Errors that name the user's argument where JAX's own message would not.

Users arrive from optax, scipy.optimize, PyTorch and scikit-learn and write
those libraries' spellings, or call jaxgd's functions the way those libraries
call theirs. This module holds what jaxgd says back, in one place:

- :func:`suggest_keyword` / :func:`suggest_method`: another library's
  spelling of a keyword (``learning_rate``, ``tol``, ``maxiter``) or a method
  (``sgd``, ``L-BFGS-B``) mapped to jaxgd's; :func:`keyword_note`: what to do
  instead of a keyword jaxgd has no counterpart for (scipy's ``jac``,
  ``options``, ``constraints``; optimistix's ``rtol``/``atol``, ``throw``,
  ``tags``; torch.optim's LBFGS ``history_size``, ``line_search_fn`` and
  tolerances, ``amsgrad``, ``dampening``, a ``scheduler``, ``clip_grad_norm_``'s
  ``max_norm``); :func:`suggest_adjoint`: optimistix's adjoint objects as
  ``minimize``'s ``adjoint=`` strings;
- :func:`check_signature`: a loss that cannot be called the way jaxgd calls
  it (``fit`` calls ``fun(params, batch)``), found from its signature before
  anything is traced;
- :func:`call_failed`: the error raised when tracing ``fun`` for the shape
  check (``jax.eval_shape``) failed, re-raised with the arguments' names and
  shapes and the original chained;
- :data:`LOSS_LOOP`: JAX's refusal to reverse-differentiate a
  ``lax.while_loop`` in the loss (:data:`REVERSE_LOOP`), said again naming
  ``fun`` and what to write instead (``jaxgd.core.loss_check``).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Optional, Sequence

import jax
import numpy as np

# Other libraries' keyword spellings -> jaxgd's (optax, scipy.optimize, torch.optim, sklearn, optimistix).
KEYWORD_ALIASES: dict[str, str] = {
    "learning_rate": "lr", "step_size": "lr", "stepsize": "lr", "eta": "lr", "alpha": "lr",
    "tol": "gtol", "gtolerance": "gtol", "pgtol": "gtol", "norm": "gtol_norm",
    "maxiter": "max_steps", "max_iter": "max_steps", "max_iters": "max_steps", "num_steps": "max_steps",
    "n_iter": "max_steps", "steps": "max_steps", "max_epochs": "epochs", "num_epochs": "epochs",
    "weight_decay": "l2", "alpha_l1": "l1", "verbose": "progress", "disp": "progress",
    "x_init": "x0", "init_params": "x0",
    "optimizer": "method", "solver": "method", "seed": "key", "rng": "key", "batchsize": "batch_size",
}

_EARLY_STOPPING = (
    "fit's early stopping is patience=: it minimises eval_fun on eval_data (else the training loss), an "
    "improvement being any finite decrease (min_delta=0), and returns the best parameters (restore_best_weights); "
    "for a higher-is-better score pass eval_fun=lambda p, d: -score(p, d)"
)

# optimistix's rtol and atol (its solvers' first arguments) are not ftol and gtol: its one Cauchy test
# |change| <= atol + rtol * |value| on both y and f is no jaxgd test, and sending them to ftol stopped lbfgs
# on 10-D Rosenbrock at |g| = 1e-2 (ftol=1e-6) where gtol alone reaches 4e-17 (a review, session 59).
_OPTIMISTIX_TOLERANCES = (
    "optimistix's rtol and atol (one Cauchy test, |change| <= atol + rtol * |value|, on both y and f) have no "
    "jaxgd counterpart: set gtol= (stop when the gradient norm is <= gtol; default 1e-6), the test that certifies "
    "a stationary point. jaxgd's ftol= is scipy's (stop when one step changes f by <= ftol * max(|f|, 1): it can "
    "stop on one slow step far from the minimum) and xtol= stops when one step moves the parameters by <= xtol "
    "(absolute); both are off (0) by default"
)

# fit has none of minimize's tolerances (gtol, ftol, xtol) nor max_steps or history=: its notes for the keywords
# whose minimize note names those (keyword_note picks them for fit's keywords).
_FIT_TOLERANCES = (
    "optimistix's rtol and atol (a Cauchy test on the iterates and the loss) have no counterpart in fit, which has "
    "no tolerances: it runs epochs= epochs, or stops early with patience= (once the monitored loss, eval_fun on "
    "eval_data, else the training loss, has not improved for that many epochs; the best parameters are returned)"
)
# PyTorch's LBFGS(history_size=, line_search_fn=, tolerance_grad=, tolerance_change=) in fit, which takes no line
# search (a minibatch step evaluates one batch) and has no tolerances; its schedulers as fit's lr.
_LBFGS_MEMORY = ("torch's LBFGS(history_size=m) is the L-BFGS memory: method=jaxgd.directions.lbfgs(memory_size=m) "
                 "(method='lbfgs' keeps 10 pairs, torch 100)")
_FIT_TORCH_TOLERANCES = (
    "fit has no tolerances: it runs epochs= epochs, or stops early with patience=; torch's LBFGS on the full batch "
    "is jaxgd.minimize(fun, x0, method='lbfgs', gtol=tolerance_grad, gtol_norm=math.inf, "
    "ftol=tolerance_change), whose ftol tests the loss's change relative to max(|f|, 1)"
)
_FIT_SCHEDULER = (
    "lr is the schedule: an optax or jaxgd.schedules schedule of optimizer steps, or "
    "jaxgd.schedules.per_epoch(epoch_schedule, steps_per_epoch) for a scheduler.step() once an epoch; for torch's "
    "ReduceLROnPlateau, run some epochs, read r.history, then go on with a lower rate: "
    "fit(fun, r.params, data, ..., lr=lower, resume=r) keeps the optimizer state (momentum, Adam's moments)"
)
# Flax's rngs= / dropout_rng= (a train step's dropout key): fit's loss_key.
_FIT_LOSS_KEY = (
    "a per-step PRNG key for the loss (dropout masks, augmentation) is fit(..., loss_key=True): fun(params, batch, "
    "key) gets jax.random.fold_in(jax.random.fold_in(key, 0xFFFFFFFF), step), a new key every optimizer step"
)
FIT_KEYWORD_NOTES: dict[str, str] = {
    "rngs": _FIT_LOSS_KEY,
    "dropout_rng": _FIT_LOSS_KEY,
    "dropout_key": _FIT_LOSS_KEY,
    "rtol": _FIT_TOLERANCES,
    "atol": _FIT_TOLERANCES,
    "history_size": _LBFGS_MEMORY + (", with a float or schedule lr: fit takes no line search; full-batch L-BFGS "
                                      "is jaxgd.minimize"),
    "line_search_fn": ("fit takes no line search (each step sees another minibatch): pass a float or a schedule as "
                       "lr; torch's LBFGS(line_search_fn='strong_wolfe') on the full batch is "
                       "jaxgd.minimize(fun, x0, method='lbfgs', lr=jaxgd.linesearch.StrongWolfe())"),
    "tolerance_grad": _FIT_TORCH_TOLERANCES,
    "tolerance_change": _FIT_TORCH_TOLERANCES,
    "scheduler": _FIT_SCHEDULER,
    "lr_scheduler": _FIT_SCHEDULER,
    "options": "pass its entries as keywords: maxiter as epochs, disp as progress",
    "callback": ("no per-step callback in the compiled loop: res.history records the training (and eval) loss of "
                 "every epoch, progress=True draws a progress bar"),
}

# torch.optim's keywords (LBFGS's, SGD's, Adam's) and its schedulers (checked in tests/test_user_messages.py).
_CLIP = (
    "torch.nn.utils.clip_grad_norm_(params, max_norm) is clip=max_norm (the gradient's global 2-norm). jaxgd clips "
    "the gradient of the loss with l2's penalty included; torch clips before SGD's or Adam's weight_decay adds it: "
    "that order is method=optax.chain(optax.clip_by_global_norm(max_norm), optax.add_decayed_weights(wd), "
    "optax.sgd(lr))"
)
_SCHEDULER = (
    "lr is the schedule: lr=optax.cosine_decay_schedule(...) or a jaxgd.schedules one (count -> lr, evaluated "
    "every step); torch's ReduceLROnPlateau is lr=jaxgd.linesearch.ReduceOnPlateau(initial, factor, patience), "
    "its patience counted in steps"
)
_TORCH_NOTES: dict[str, str] = {
    "history_size": _LBFGS_MEMORY,
    "line_search_fn": ("torch's LBFGS(line_search_fn='strong_wolfe') is lr=jaxgd.linesearch.StrongWolfe(); "
                       "method='lbfgs' without lr already takes a strong-Wolfe search (L-BFGS-B's Moré-Thuente); "
                       "torch's LBFGS without a line search (a fixed step) is lr=1.0"),
    "tolerance_grad": ("torch's LBFGS stops when the largest gradient entry is <= tolerance_grad (default 1e-7): "
                       "gtol=tolerance_grad, gtol_norm=math.inf (jaxgd's gtol, 1e-6 by default, tests the 2-norm)"),
    "tolerance_change": ("torch's LBFGS stops when one step changes the loss by less than tolerance_change "
                         "(absolute; default 1e-9) or moves no parameter by more than it. ftol=tolerance_change is "
                         "the loss test while |f| <= 1 (ftol is relative: |f_k - f_{k+1}| <= ftol * max(|f_k|, "
                         "|f_{k+1}|, 1)); xtol=tolerance_change tests the step's 2-norm, not its largest entry, so "
                         "it stops later than torch's; both are off (0) by default"),
    "max_norm": _CLIP,
    "clip_grad_norm": _CLIP,
    "clip_grad_norm_": _CLIP,
    "amsgrad": ("torch's Adam(amsgrad=True) is method=optax.amsgrad(lr) (with lr inside it); optax keeps the "
                "running maximum of the bias-corrected second moment, torch of the raw one, so early steps differ"),
    "dampening": ("jaxgd's 'momentum' is torch's SGD(momentum=0.9, dampening=0); torch's dampening d weighs each "
                  "new gradient by 1 - d in the buffer, which method=optax.sgd(lr * (1 - d), momentum=m) matches "
                  "except for the first gradient, which torch puts in the buffer undamped"),
    "scheduler": _SCHEDULER,
    "lr_scheduler": _SCHEDULER,
}

# Other libraries' keywords with no jaxgd keyword of their own -> what to do instead (scipy.optimize's,
# optimistix's, torch.optim's).
KEYWORD_NOTES: dict[str, str] = {
    "jac": "nothing to pass: jaxgd differentiates fun with jax.grad",
    "hess": "nothing to pass: bfgs and lbfgs build their curvature from gradients",
    "hessp": "nothing to pass: bfgs and lbfgs build their curvature from gradients",
    "options": ("pass its entries as keywords: maxiter as max_steps, gtol as gtol with gtol_norm=math.inf (scipy's "
                "BFGS, CG and L-BFGS-B test the gradient's largest entry; jaxgd's the 2-norm, but with bounds the largest), ftol as it "
                "is (L-BFGS-B's; off by default, scipy's 2.2e-9), disp as progress"),
    "xrtol": ("scipy's BFGS xrtol is a relative step test; jaxgd's xtol stops when one step's 2-norm "
              "||x_{k+1} - x_k|| <= xtol (absolute; off, 0, by default)"),
    "maxcor": ("method=jaxgd.directions.lbfgs(memory_size=m) for scipy's maxcor=m (10 in both by default), with "
               "bounds= for L-BFGS-B"),
    "factr": "ftol=factr * numpy.finfo(float).eps (scipy's L-BFGS-B factr=1e7 is ftol=2.2e-9; jaxgd's ftol is off by default)",
    "maxfun": "no evaluation limit: max_steps limits the steps (res.nfev counts their evaluations)",
    "maxls": "the line search's max_iter: lr=jaxgd.linesearch.MoreThuente(max_iter=...) (30 by default)",
    "c1": "the line search's: lr=jaxgd.linesearch.MoreThuente(c1=..., c2=...)",
    "c2": "the line search's: lr=jaxgd.linesearch.MoreThuente(c1=..., c2=...)",
    "return_all": ("history=True records the loss, step size and gradient norm of every step (res.history); "
                   "jaxgd keeps no iterates"),
    "constraints": ("jaxgd has box constraints only: bounds=(lower, upper); for others reparameterise (a softmax "
                    "for a simplex, exp for positivity), add a penalty to the loss, or use scipy's SLSQP or "
                    "trust-constr, its gradient from jax.jit(jax.grad(f))"),
    "momentum": ("jaxgd's 'momentum' and 'nesterov' methods decay by a fixed 0.9; for another, pass an optax "
                 "transformation: method=optax.sgd(lr, momentum=0.95, nesterov=True)"),
    "nesterov": "method='nesterov' (decay 0.9), or method=optax.sgd(lr, momentum=..., nesterov=True)",
    "betas": ("method='adam' uses b1=0.9, b2=0.999, eps=1e-8 (optax's defaults); for others pass "
              "method=optax.adam(lr, b1=..., b2=..., eps=...)"),
    "eps": ("scipy's eps (a finite-difference step): nothing to pass, jaxgd differentiates fun with jax.grad; "
            "adam's eps is fixed at 1e-8: method=optax.adam(lr, eps=...)"),
    "drop_last": ("fit's remainder=jaxgd.Remainder.DROP (the default: drop_last=True) or Remainder.MASK (every "
                  "example every epoch, a weighted last batch)"),
    "shuffle": "fit shuffles every epoch with a permutation drawn from key",
    "mode": _EARLY_STOPPING,
    "monitor": _EARLY_STOPPING,
    "min_delta": _EARLY_STOPPING,
    "restore_best_weights": _EARLY_STOPPING,
    "rtol": _OPTIMISTIX_TOLERANCES,
    "atol": _OPTIMISTIX_TOLERANCES,
    "throw": ("nothing to pass: jaxgd never raises on a failed run, as optimistix's throw=False; check "
              "res.success and res.message on the host, res.status (a code; res.status_enum names it) inside jit"),
    "tags": ("optimistix's tags (lineax structure tags) have no counterpart: nothing to pass, bfgs and lbfgs build "
             "their curvature from gradients"),
    "callback": ("no per-step callback in the compiled loop: history= records the loss, step size and gradient "
                 "norm of every step (res.history), progress=True draws a progress bar, and jaxgd.Solver runs one "
                 "step at a time for code of your own between steps"),
    **_TORCH_NOTES,
}

# Other libraries' method names (case-insensitive) -> jaxgd's ``method=`` (and what else to pass).
METHOD_ALIASES: dict[str, str] = {
    "sgd": "gd", "gradient_descent": "gd", "gradientdescent": "gd", "steepest_descent": "gd",
    "heavy_ball": "momentum", "nag": "nesterov",
    "l-bfgs-b": "lbfgs' with bounds=(lower, upper) for the box, '", "lbfgsb": "lbfgs' with bounds=(lower, upper), '",
    "l-bfgs": "lbfgs", "l_bfgs": "lbfgs", "bfgs": "bfgs", "cg": "cg",
    "newton-cg": "lbfgs' or 'bfgs' (quasi-Newton: jaxgd has no Hessian-vector Newton-CG; 'cg' is nonlinear CG), '",
    "trust-ncg": "lbfgs' or 'bfgs' (quasi-Newton: jaxgd has no trust-region Newton), '",
    "trust-krylov": "lbfgs' or 'bfgs' (quasi-Newton: jaxgd has no trust-region Newton), '",
    "trust-exact": "lbfgs' or 'bfgs' (quasi-Newton: jaxgd has no trust-region Newton), '",
    "dogleg": "lbfgs' or 'bfgs' (quasi-Newton: jaxgd has no trust-region Newton), '",
    "tnc": "lbfgs' with bounds=(lower, upper) (L-BFGS-B for TNC's box), '",
    "conjugate_gradient": "cg", "nonlinear_cg": "cg", "adam_w": "adamw", "rms_prop": "rmsprop", "ada_grad": "adagrad",
}

# Other libraries' methods with no jaxgd counterpart (case-insensitive) -> what to do instead.
_DERIVATIVE_FREE = (
    "jaxgd's methods follow the gradient (jax.grad of fun): write the loss in jax.numpy and use method='lbfgs' "
    "or 'bfgs'; for a loss JAX cannot differentiate keep scipy's derivative-free methods"
)
_CONSTRAINED = (
    "jaxgd has box constraints only (bounds=(lower, upper) with 'lbfgs': L-BFGS-B); for others reparameterise, add "
    "a penalty, or keep scipy's {name}, its gradient from jax.jit(jax.grad(f))"
)
METHOD_NOTES: dict[str, str] = {
    **{name: _DERIVATIVE_FREE for name in ("nelder-mead", "powell", "cobyla", "cobyqa")},
    **{name: _CONSTRAINED.format(name=name.upper() if name == "slsqp" else name) for name in ("slsqp", "trust-constr")},
}

# optimistix's adjoint objects (by class name: optimistix need not be installed) -> minimize's adjoint= string.
ADJOINT_ALIASES: dict[str, str] = {"ImplicitAdjoint": "implicit", "RecursiveCheckpointAdjoint": "unroll"}
ADJOINT_HINT = "optimistix's {name}() is adjoint={alias!r}"

CALL_FAILED = (
    "{call} failed when jaxgd traced it to check its output (jax.eval_shape: shapes only, nothing "
    "computed) with {shapes}: {error}{hint}"
)
STATIC_HINT = (
    ". args are traced (arrays, as under jax.jit): a Python number, string, bool or function that fun uses "
    "as a static value (a slice bound, a shape, an if) goes in fun's closure instead: "
    "functools.partial(fun, value) or a lambda"
)
NUMPY_HINT = (
    ". fun calls NumPy (np.*, np.asarray, float()) on a traced value: jaxgd differentiates fun with jax.grad, "
    "which traces it, so write it with jax.numpy (jnp.* for np.*, jnp.linalg for np.linalg, jax.scipy.special "
    "for scipy.special), a Python if on a value as jnp.where or lax.cond"
)
IF_HINT = (
    ". fun takes a Python if (or while, bool(), and/or) on a traced value: write it as jnp.where(cond, a, b) or "
    "lax.cond, which jax.grad can differentiate through"
)
IF_STATIC_HINT = (
    ". fun takes a Python if (or while, bool(), and/or) on a traced value: on the parameters, write it as "
    "jnp.where(cond, a, b) or lax.cond; on a Python number in args (traced, as under jax.jit), put that number in "
    "fun's closure instead: functools.partial(fun, value) or a lambda"
)
LIST_HINT = (
    ". {name} is a Python {kind} of {n} numbers, which JAX treats as a pytree of {n} separate scalars, "
    "not a vector: pass jnp.asarray({name})"
)
SIGNATURE = (
    "{where} calls {call}, but fun{sig} cannot be called that way ({error}){hint}"
)
FIT_HINT = (
    "; take the batch apart inside the loss, e.g. fun=lambda params, batch: loss(params, *batch) "
    "for data=(X, y), or lambda params, batch: loss(params, batch['x'], batch['y']) for a dict"
)
FIT_MASK_HINT = (
    "; or, for a loss of (params, batch, weights), fit's form for a weighted last batch, pass "
    "remainder=jaxgd.Remainder.MASK; for a loss of (params, batch, key) that draws random numbers (dropout "
    "masks, augmentation), pass loss_key=True (a new key every optimizer step)"
)


# A jaxgd keyword a function lacks -> its counterpart there (fit counts epochs, minimize steps).
_COUNTERPARTS: dict[str, str] = {"max_steps": "epochs", "epochs": "max_steps"}


def suggest_keyword(name: str, valid: tuple[str, ...]) -> Optional[str]:
    """The keyword among ``valid`` (a function's keywords) for another library's spelling ``name``
    (None when unknown or when that function has no counterpart: ``seed`` suggests ``key`` to fit
    only, ``maxiter`` suggests ``max_steps`` to minimize and ``epochs`` to fit)."""
    alias = KEYWORD_ALIASES.get(name) or KEYWORD_ALIASES.get(name.lower())
    if alias is not None and alias not in valid:
        alias = _COUNTERPARTS.get(alias)
    return alias if alias in valid else None


# as_optax's: one optax transformation, with no loop and no stopping test, so the notes that point at minimize's
# tolerances, history and progress point at the user's own loop instead (checked in tests/test_user_messages.py).
_OPTAX_NO_LOOP = (
    "as_optax(...) is one optax transformation: it runs no loop and has no stopping test or history; your loop "
    "decides when to stop (on the loss, or on the gradient's norm, optax.tree.norm(grads)), or "
    "jaxgd.minimize(fun, x0, method, gtol=1e-6, ftol=0.0, max_steps=1000, history=True) runs the loop with them"
)
AS_OPTAX_KEYWORD_NOTES: dict[str, str] = {name: _OPTAX_NO_LOOP for name in (
    "rtol", "atol", "tol", "tolerance_grad", "tolerance_change", "callback", "options", "maxiter", "max_iter",
    "max_steps", "epochs", "gtol", "ftol", "xtol", "history", "progress")}


def keyword_note(name: str, valid: Optional[Sequence[str]] = None) -> Optional[str]:
    """What to do instead of another library's keyword ``name`` that has no jaxgd counterpart (None when
    unknown): scipy's ``jac``, ``hess``, ``options``, ``constraints``. ``valid``: the called function's
    keywords; fit's (``epochs``, no ``gtol``) and as_optax's (``method``, neither) get the notes that
    name only keywords they have."""
    name = {"b1": "betas", "b2": "betas", "beta1": "betas", "beta2": "betas"}.get(name, name)
    own: dict[str, str] = {}  # the called function's own notes, over the common ones
    if valid is not None and "gtol" not in valid:
        own = FIT_KEYWORD_NOTES if "epochs" in valid else AS_OPTAX_KEYWORD_NOTES if "method" in valid else {}
    for n in (name, name.lower()):
        note = own.get(n) or KEYWORD_NOTES.get(n)
        if note:
            return note
    return None


def suggest_method(name: str) -> Optional[str]:
    """``method='lbfgs'`` (and what else to pass) for another library's method name (case-insensitive)."""
    alias = METHOD_ALIASES.get(name.lower().replace(" ", "_")) or METHOD_ALIASES.get(name.lower())
    return None if alias is None else f"method='{alias}'".replace(", ''", "")


def method_note(name: str) -> Optional[str]:
    """What to do instead of another library's method ``name`` that jaxgd has no counterpart for (None: unknown)."""
    return METHOD_NOTES.get(name.lower())


def suggest_adjoint(value: Any) -> Optional[str]:
    """"optimistix's ImplicitAdjoint() is adjoint='implicit'" (``'unroll'`` for its
    ``RecursiveCheckpointAdjoint()``) for an instance or the class; None for anything else."""
    name = (value if isinstance(value, type) else type(value)).__name__
    alias = ADJOINT_ALIASES.get(name)
    return None if alias is None else ADJOINT_HINT.format(name=name, alias=alias)


def _shape(x: Any) -> str:
    if isinstance(x, jax.ShapeDtypeStruct) or hasattr(x, "dtype"):
        return f"{np.dtype(x.dtype).name}{list(np.shape(x))}"
    return type(x).__name__


def describe(tree: Any) -> str:
    """``float64[3]``, or ``{'w': float64[3], 'b': float64[]}`` for a pytree (shapes and dtypes only)."""
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    if len(leaves) == 1 and not leaves[0][0]:
        return _shape(leaves[0][1])
    inner = ", ".join(f"{jax.tree_util.keystr(p)}: {_shape(x)}" for p, x in leaves)
    return "{" + inner + "}"


def _list_hint(named: dict[str, Any]) -> str:
    for name, value in named.items():
        if isinstance(value, (list, tuple)) and len(value) > 1 and all(
            isinstance(v, (int, float)) or np.ndim(v) == 0 for v in value
        ):
            return LIST_HINT.format(name=name, kind=type(value).__name__, n=len(value))
    return ""


def call_failed(call: str, named: dict[str, Any], err: BaseException, original: Optional[dict] = None) -> BaseException:
    """The error to raise (``from err``) when tracing ``call`` failed: names and shapes of ``named``.

    ``original`` holds the arguments as the user gave them (a Python list
    ``x0`` gets a hint). Python's and JAX's TypeError/ValueError become a
    plain TypeError/ValueError; other exceptions (a user's own, jaxgd's) are
    returned unchanged.
    """
    from_jax = type(err).__module__.split(".")[0] in ("builtins", "jax", "jaxlib")
    if not (from_jax and isinstance(err, (TypeError, ValueError, IndexError))):
        return err
    kind = TypeError if isinstance(err, TypeError) else IndexError if isinstance(err, IndexError) else ValueError
    shapes = ", ".join(f"{name}={describe(value)}" for name, value in named.items())
    hint = _list_hint(original or {})
    if not hint and isinstance(err, jax.errors.TracerArrayConversionError):
        hint = NUMPY_HINT  # (np.* on a traced value, whatever args hold)
    elif not hint and isinstance(err, jax.errors.TracerBoolConversionError):
        hint = IF_HINT
    static = [v for k, a in named.items() if k.startswith("args[") for v in jax.tree_util.tree_leaves(a)
              if isinstance(v, (bool, int, float, str)) or (callable(v) and not hasattr(v, "shape"))]
    if static and hint == IF_HINT:  # (an if on x, or on a Python number in args: both said)
        hint = IF_STATIC_HINT
    elif static and not hint:  # (args=(2,) as a slice bound, in a dict too; a str or function)
        hint = STATIC_HINT
    error = str(err).rstrip(".") if hint else err  # (the hint begins a sentence)
    return kind(CALL_FAILED.format(call=call, shapes=shapes or "no arguments", error=error, hint=hint))


def check_signature(fun: Callable, where: str, call: str, n_args: int,
                    hint: str | Callable[[Callable], str] = "") -> None:
    """Raise ``TypeError`` when ``fun`` cannot take ``n_args`` positional arguments (from its signature).

    ``hint`` ends the message: a string, or ``hint(fun)`` (computed only when the call cannot bind).
    Functions without an inspectable signature (builtins, some wrappers) pass.
    """
    err = _bind_error(fun, n_args)
    if err is not None:
        raise TypeError(SIGNATURE.format(where=where, call=call, sig=inspect.signature(fun), error=err,
                                         hint=hint(fun) if callable(hint) else hint)) from None


def _bind_error(fun: Callable, n_args: int) -> Optional[TypeError]:
    """Why ``fun`` cannot take ``n_args`` positional arguments (None: it can, or its signature is unknown)."""
    try:
        sig = inspect.signature(fun)
    except (TypeError, ValueError):
        return None
    try:
        sig.bind(*range(n_args))
    except TypeError as err:
        return err
    return None


def can_call(fun: Callable, n_args: int) -> bool:
    """Whether ``fun`` can take ``n_args`` positional arguments (True when its signature is unknown)."""
    return _bind_error(fun, n_args) is None


def fit_hint(fun: Callable) -> str:
    """:data:`FIT_HINT`, and :data:`FIT_MASK_HINT` too for a loss that takes three arguments (``loss(params,
    x, y)``, ``loss(params, batch, weights)``: the masked form, or ``loss(params, batch, key)``: ``loss_key``)."""
    return FIT_HINT + (FIT_MASK_HINT if _bind_error(fun, 3) is None else "")


NOT_DIFFERENTIABLE = (
    "{name} is not differentiable (jax.grad, jax.vjp, jax.jvp or jax.jacfwd reached it with respect to {what}): "
    "its compiled run is a while loop over shuffled minibatch epochs, with early stopping and rollbacks. "
    "To differentiate a fitted solution with respect to data or hyperparameters, minimise the full-batch "
    "loss with jaxgd.minimize (a solve differentiable by the implicit function theorem); to differentiate "
    "through the training steps themselves, take them in your own lax.scan with jaxgd.as_optax"
)


def not_differentiable(fn: Callable, name: str, what: str) -> Callable:
    """``fn`` unchanged, except that differentiating it raises a ``TypeError`` saying what to use instead.

    A ``jax.custom_jvp`` whose rule raises while JAX traces the derivative
    (before anything runs); an input nobody differentiates costs nothing.
    """

    @jax.custom_jvp
    def guarded(*args: Any) -> Any:
        return fn(*args)

    def _jvp(primals: tuple, tangents: tuple) -> Any:
        raise TypeError(NOT_DIFFERENTIABLE.format(name=name, what=what))

    guarded.defjvp(_jvp, symbolic_zeros=True)  # no zero tangents made (they would compile) before raising

    return guarded


# JAX's refusal to transpose a while_loop (the start of its ValueError's text)
REVERSE_LOOP = "Reverse-mode differentiation does not work for lax.while_loop"
LOSS_LOOP = (
    "fun: jax.grad cannot differentiate the loss: it runs a lax.while_loop (or a fori_loop with traced bounds), "
    "which reverse mode cannot pass. Write the loop as a lax.scan of a fixed length, give it a derivative "
    "rule (lax.custom_root for a fixed point or a root, jax.custom_vjp), or solve the inner problem with a "
    "nested jaxgd.minimize, which is differentiable"
)
