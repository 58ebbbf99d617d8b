"""Termination reasons and the pytree results that carry them.

``Status`` is an enum on the host and an ``int32`` inside the compiled loop;
``Result`` is a NamedTuple (hence a pytree that ``jit``/``vmap`` can return)
with host-side ``success`` and ``message`` properties.
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._types import Params, PyTree


class Status(enum.IntEnum):
    """Why a run of :func:`jaxgd.minimize` (or a :class:`jaxgd.Solver`) stopped.

    ``GTOL``, ``FTOL``, ``XTOL`` and ``PRECISION`` are convergence
    (``success`` is True); the others are not. One family of codes serves
    every loop: a code means the same thing in :class:`Status` and
    :class:`FitStatus` (``RUNNING`` 0, ``NONFINITE`` 5 in both; ``EPOCHS`` 7
    and ``PATIENCE`` 8 are fit's own; ``PRECISION`` 9 and ``STALLED`` 10
    come from the stall and precision tests).
    """

    RUNNING = 0
    GTOL = 1
    FTOL = 2
    XTOL = 3
    MAX_STEPS = 4
    NONFINITE = 5
    LINESEARCH_FAILED = 6
    PRECISION = 9  # issue 13 (jaxgd/core/stall.py): converged to the precision f can be evaluated at
    STALLED = 10  # issue 13 (jaxgd/core/stall.py): f stopped decreasing away from a stationary point
    INVALID_ARGUMENT = 11  # a traced argument out of range (Prox.traced_valid, Solver.traced_valid): no step

    @property
    def message(self) -> str:
        """The status's sentence, for a run of unnamed dtype (``Result.message`` names the run's)."""
        return message_text(self)

    @property
    def success(self) -> bool:
        return self in (Status.GTOL, Status.FTOL, Status.XTOL, Status.PRECISION)

    def __str__(self) -> str:  # ``Status.GTOL``, as README.md shows (Python 3.11's IntEnum prints ``1``)
        return f"{type(self).__name__}.{self.name}"

    def __format__(self, spec: str) -> str:
        return _format_code(self, spec)


def _format_code(code: enum.IntEnum, spec: str) -> str:
    """A status in an f-string: its name (``Status.GTOL``) with no spec or a string spec, the integer with a
    numeric one (``f"{s:3d}"``, as a plain IntEnum: formatting the name raised "Unknown format code 'd'")."""
    if spec and spec[-1] in "bcdoxXneEfFgG%":
        return int.__format__(int(code), spec)
    return format(str(code), spec)


# (float32 and narrower) the precision tests scale the gradient's rounding by the loss; a loss whose terms are
# far larger than it (residuals of targets of 1e3: |g| rounding 13x the test's bound at the answer) ends so
_ROUNDING_HINT = (
    "In float32 this can also be a point at the answer whose gradient is rounding from terms much larger than "
    "the loss (residuals of large targets): centre and scale the data, or compare with a float64 run."
)
# The statuses whose sentence ends with the hint, and the dtypes it is for (message_text).
_HINTED = ("LINESEARCH_FAILED", "STALLED")
_HINT_DTYPES = ("float32", "bfloat16", "float16")
# (float32) PRECISION at an ill-conditioned problem's answer: steps of a few roundings each, below the
# searches' tie tolerance (an LQR by single shooting, 200 controls: 8e-5 above J*, tests/test_stall.py; cg on a
# perturbed LJ38 cluster: 4-5 roundings of f above its minimum with the largest force 0.045 where gtol was 0.01)
_PRECISION_HINT = (
    "In float32 an ill-conditioned problem's loss can still be about a relative 1e-4 above its minimum, falling "
    "by a few roundings a step, with its gradient several times gtol (read grad_norm where gtol matters, as a "
    "force tolerance does): a float64 run resolves more."
)

MESSAGES: dict[Status, str] = {
    Status.RUNNING: "Still running: the step limit has not been reached and no test has fired.",
    Status.GTOL: "Converged: gradient norm <= gtol.",
    Status.FTOL: "Converged: relative change in loss <= ftol.",
    Status.XTOL: "Converged: step length <= xtol.",
    Status.MAX_STEPS: (
        "Stopped: max_steps reached before any tolerance was met; raise max_steps, or continue from here "
        "with jaxgd.minimize(..., resume=result)."
    ),
    Status.NONFINITE: (
        "Stopped: a loss, gradient or update became NaN or Inf; params are the last ones whose loss and "
        "gradient were finite. A step size too large for the loss is the usual cause: try a smaller lr, "
        "clip=, or a line search (jaxgd.linesearch); an lr schedule that returned NaN or Inf stops here too."
    ),
    Status.LINESEARCH_FAILED: (
        "Stopped: the line search could not find an acceptable step; params are "
        "the last accepted iterate. Where the gradient is not small, the loss may not be smooth there "
        "(an L1 term written into the loss is not: pass it as l1= with method='gd' instead), may be unbounded "
        "below along the step (a loss far below its start), or its gradient may be wrong (see jaxgd.check_grad). "
        "A loss that is NaN or Inf at the trial steps fails the search too (a Cholesky factor of a matrix no "
        "longer positive definite, a log reaching 0): keep the parameters where it is finite (bounds=, a jitter "
        "or floor in the loss), or run in float64."
    ),
    Status.PRECISION: (
        "Converged to the precision of {dtype}, or of the loss's own evaluation where its arithmetic "
        "loses digits (a difference of large terms): no step resolves a further decrease of the loss, "
        "though the gradient is above gtol. (scipy reports such a stop as a failure: "
        "\"Desired error not necessarily achieved due to precision loss.\")"
    ),
    Status.STALLED: (
        "Stalled: the loss did not decrease by more than its rounding over the stall window at a point that is "
        "not stationary; the loss may not be smooth here (an L1 term written into the loss is not: pass it as l1= "
        "with method='gd' instead), the step-size rule cut its rate too far to move the parameters "
        "(ReduceOnPlateau: see min_lr), or each step gains less than the loss's rounding (an ill-conditioned "
        "problem in float32: a float64 run, or a longer stall_window of the line search)."
    ),
    Status.INVALID_ARGUMENT: (
        "Stopped before the first step: an argument passed as a traced value (under jit or vmap, where it "
        "cannot be checked before the run) is out of range: bounds with lower > upper or NaN somewhere, a "
        "negative l1 or l2, an lr or clip that is not positive (or an lr not finite), or a negative or NaN "
        "gtol, ftol or xtol; params are the starting ones (not projected into the bounds), unchanged."
    ),
}


class FitStatus(enum.IntEnum):
    """Why :func:`jaxgd.fit` stopped (an ``int32`` inside the compiled run).

    Its codes are :class:`Status`'s family: ``RUNNING``, ``NONFINITE`` and
    ``INVALID_ARGUMENT`` are the same codes with the same meaning; ``EPOCHS``
    (7) and ``PATIENCE`` (8; both successes) are codes no :class:`Status` has.
    """

    RUNNING = Status.RUNNING.value
    NONFINITE = Status.NONFINITE.value
    INVALID_ARGUMENT = Status.INVALID_ARGUMENT.value
    EPOCHS = 7
    PATIENCE = 8

    @property
    def message(self) -> str:
        return FIT_MESSAGES[self]

    @property
    def success(self) -> bool:
        return self in (FitStatus.EPOCHS, FitStatus.PATIENCE)

    __str__ = Status.__str__
    __format__ = Status.__format__


def tolerance_status(status: Any, ftol: Any, xtol: Any, f_old: Any, f_new: Any, step_norm: Any, alpha: Any,
                     first_step: Any, xp: Any = jnp) -> Any:
    """``status`` (RUNNING, or a stop already decided) with ``ftol``'s and ``xtol``'s stops after a step: FTOL where
    ``|f_old - f_new| <= ftol max(|f_old|, |f_new|, 1)``, XTOL where ``step_norm() <= xtol`` (called only with
    ``xtol`` on). A tolerance of None or 0 (a traced 0 too: a lane of a ``vmap``) is off; a step of size
    ``alpha`` 0 (a schedule's warmup from 0), or a first step (``first_step``) that changed nothing, is no
    convergence (both stopped runs at ``x0``). The compiled step's and the host tier's (``xp``: NumPy's, on
    host scalars) one test; L-BFGS-B keeps scipy's own (``jaxgd.directions.lbfgsb.termination``)."""
    later = xp.logical_not(first_step)
    if ftol is not None:
        scale = xp.maximum(xp.maximum(xp.abs(f_old), xp.abs(f_new)), 1.0)
        small = (xp.abs(f_old - f_new) <= ftol * scale) & (ftol > 0) & (alpha > 0) & (later | (f_old != f_new))
        status = xp.where((status == Status.RUNNING) & small, Status.FTOL, status)
    if xtol is not None:
        moved = step_norm()
        small = (moved <= xtol) & (xtol > 0) & (alpha > 0) & (later | (moved > 0))
        status = xp.where((status == Status.RUNNING) & small, Status.XTOL, status)
    return status


NONFINITE_AT_START = (
    "Stopped before the first step: the loss or gradient at the starting params is already NaN or Inf "
    "(look at the data/args, or the loss at x0); params are the starting ones, unchanged."
)
NONFINITE_GRADIENT_AT_START = (
    "Stopped before the first step: the gradient at the starting params is NaN or Inf, the loss there is "
    "finite. The usual causes: a function whose derivative is infinite or undefined where the start puts it "
    "(sqrt, a power below 1 or jnp.linalg.norm at 0: x0 of zeros), or a NaN masked out of the loss with "
    "jnp.where (missing data), which still reaches the gradient through the branch not taken (replace the NaN "
    "in the inputs first, jnp.where(mask, x, 0.0), then mask the terms); params are the starting ones, unchanged."
)


def message_at(status: Any, steps: Any, dtype: str = "float32", start_finite: bool = False,
               loss_finite: bool = False) -> str:
    """``status.message``, made true for a run that stopped at step 0 because the loss or gradient
    at the start was not finite (``start_finite`` False; a finite start whose first step was
    not finite keeps the general text; ``loss_finite``: the gradient alone was not), with
    ``PRECISION``'s ``{dtype}`` filled in."""
    if status == Status.NONFINITE and int(np.asarray(steps)) == 0 and not start_finite:
        return NONFINITE_GRADIENT_AT_START if loss_finite else NONFINITE_AT_START
    return message_text(status, dtype)


def message_text(status: Status, dtype: str | None = None) -> str:
    """``status``'s sentence for a run whose loss has ``dtype``: ``PRECISION``'s ``{dtype}`` filled in
    (None: "the loss's dtype"), the float32 rounding hint on a failed search or a stall in 16- and
    32-bit runs (and where the dtype is not known), and ``PRECISION``'s float32 hint."""
    text = MESSAGES[status].format(dtype=dtype or "the loss's dtype")
    if status.name in _HINTED and (dtype is None or dtype in _HINT_DTYPES):
        text += " " + _ROUNDING_HINT
    if status == Status.PRECISION and dtype == "float32":
        text += " " + _PRECISION_HINT
    return text


FIT_NONFINITE_FIRST = (
    "Stopped before any step was kept: a minibatch loss or gradient was NaN or Inf at the starting params, "
    "or at the point the first step reached (that step was rolled back); params are the starting ones, unchanged."
)


def fit_message_at(status: Any, steps: Any, first_loss: Any) -> str:
    """``status.message`` for :func:`jaxgd.fit`, made true for a run that kept no step: ``fit``'s
    ``steps`` counts the steps kept (one rolled back after a non-finite minibatch loss is not),
    so ``steps == 0`` with ``NONFINITE`` is a bad start, or a first step whose point was rolled
    back. ``first_loss``, the first epoch's training loss (the mean of its minibatch losses, the
    start's among them), tells them apart where it is finite (then the start was, and the
    general text holds); where it is not, the text names both."""
    if status == FitStatus.NONFINITE and int(np.asarray(steps)) == 0 and not np.isfinite(first_loss):
        return FIT_NONFINITE_FIRST
    return status.message


# fit's own sentences (a FitStatus equals the Status of its code as a dict key: a dict of its own)
FIT_MESSAGES: dict[FitStatus, str] = {
    FitStatus.RUNNING: MESSAGES[Status.RUNNING],
    FitStatus.NONFINITE: (
        "Stopped: a minibatch's loss or gradient, an update, or the eval loss after an epoch became NaN or Inf "
        "(that step or epoch is rolled back); params are the last ones whose loss and gradient were finite "
        "(the best ones with patience). A step size too large for the loss is the usual cause: try a smaller "
        "lr, or clip=; an lr schedule that returned NaN or Inf stops here too."
    ),
    FitStatus.INVALID_ARGUMENT: MESSAGES[Status.INVALID_ARGUMENT],
    FitStatus.EPOCHS: "Completed: all epochs ran.",
    FitStatus.PATIENCE: (
        "Stopped early: the monitored loss did not improve for `patience` epochs; params are the best ones."
    ),
}


class History(NamedTuple):
    """Per-step records, written into preallocated buffers inside the loop.

    Entry ``i`` describes step ``(i + 1) * every``: the loss and gradient norm
    at the new iterate and the step size that produced it. On the host,
    ``minimize`` trims the buffers to the steps taken; under ``jit``/``vmap``
    the untaken tail holds NaN.
    """

    loss: jax.Array
    lr: jax.Array
    grad_norm: jax.Array


def status_of(status: Any, kind: type = Status) -> Any:
    """``status`` as a ``kind`` (:class:`Status` or :class:`FitStatus`) member, or an object
    array of them for a batched result (``jax.vmap``)."""
    arr = np.asarray(status)
    if arr.ndim == 0:
        return kind(int(arr))
    return np.vectorize(lambda s: kind(int(s)), otypes=[object])(arr)


def per_run(fn: Any, status: Any, *args: Any, otype: type = object) -> Any:
    """``fn(status, *args)`` for one run's :func:`status_of`, elementwise (an array of ``otype``) for a batch's."""
    if isinstance(status, enum.Enum):
        return fn(status, *args)
    return np.vectorize(fn, otypes=[otype])(status, *args)


def recorded_rows(result: Any) -> int:
    """The history rows one run recorded: a run of ``steps`` steps at ``history=k`` records ``steps // k``,
    the buffer's tail (NaN) aside."""
    return int(np.sum(~np.isnan(np.asarray(result.history.loss))))


def summary_message(result: Any) -> str:
    """``", message='...'"`` for one run's repr; nothing for a batch (a message per run)."""
    return f", message={result.message!r}" if np.ndim(np.asarray(result.status)) == 0 else ""


def success_of(status: Any) -> Any:
    """``status.success``, elementwise for an object array from :func:`status_of`."""
    return per_run(lambda x: x.success, status, otype=bool)


class Result(NamedTuple):
    """What :func:`jaxgd.minimize` and :meth:`jaxgd.Solver.run` return (a pytree).

    Attributes:
      params: the final parameters (same structure and dtypes as ``x0``).
      loss: the objective at ``params`` (penalties included).
      grad_norm: the stationarity measure at ``params`` that ``gtol`` tests: the gradient's
        global 2-norm, or with a proximal term the norm of ``x - prox(x - grad)``; the largest
        magnitude (the inf-norm) instead with ``gtol_norm=math.inf``, the default of ``lbfgs``
        with ``bounds`` (L-BFGS-B's projected gradient, scipy's ``pgtol`` test).
      steps: the number of steps taken (``int32``).
      status: a :class:`Status` code (``int32``; use ``status_enum`` on the host).
      history: a :class:`History`.
      state: the final :class:`SolverState`, to resume from. It holds the method's whole state
        (``lbfgs`` with its default 10 pairs: about 25 copies of ``params``; ``adam``: its two
        moments), alive as long as the ``Result`` is: to keep many results of a large model,
        keep ``r.params``, or ``r._replace(state=None)`` (which cannot be resumed).
      nfev: number of loss evaluations (not those an optax transformation given as ``method``
        makes inside its own update, as ``optax.lbfgs``'s line search).
      ngev: number of gradient evaluations the steps and line searches asked for. The trials of a
        precision check before a ``PRECISION`` stop count in ``nfev`` only, although some evaluate
        the gradient with the loss (in float32, and on the host tier of ``tier="auto"``), so ``ngev``
        can be below the gradients computed (scipy's ``njev`` counts every ``jac`` call).
      aux: the auxiliary output at ``params`` when ``has_aux=True``, else None.

    From an eager :func:`jaxgd.minimize` call without checkpoints the scalar fields (``loss``,
    ``grad_norm``, ``steps``, ``status``, ``nfev``, ``ngev`` and the state's
    scalars) are NumPy scalars and ``history`` holds NumPy arrays (handed
    back from the compiled run in a few buffers: fewer outputs, a cheaper
    call); ``params`` and the state's arrays are ``jax.Array``. Under
    ``jit``/``vmap`` every field is a traced array.
    """

    params: Params
    loss: jax.Array
    grad_norm: jax.Array
    steps: jax.Array
    status: jax.Array
    history: History
    state: PyTree
    nfev: jax.Array
    ngev: jax.Array
    aux: Any = None

    @property
    def status_enum(self) -> Any:
        """``status`` as a :class:`Status` (an object array of them when batched)."""
        return status_of(self.status)

    @property
    def success(self) -> Any:
        """True when a convergence test stopped the run (host only)."""
        return success_of(self.status_enum)

    @property
    def message(self) -> Any:
        """A human sentence saying why the run stopped (host only)."""
        s = self.status_enum
        dtype = np.asarray(self.loss).dtype.name  # for PRECISION's "{dtype}" (issue 13)
        # at step 0 the loss and gradient norm are x0's: finite there, the first step was not
        loss_finite = np.isfinite(np.asarray(self.loss))
        start_finite = loss_finite & np.isfinite(np.asarray(self.grad_norm))
        return per_run(lambda x, k, ok, f: message_at(x, k, dtype, bool(ok), bool(f)), s, np.asarray(self.steps),
                       start_finite, loss_finite)

    def __repr__(self) -> str:  # a short summary, scipy's OptimizeResult's fields; the full tree is still available
        try:
            return (
                f"Result(status={self.status_enum!r}, success={self.success}, steps={np.asarray(self.steps)}, "
                f"loss={np.asarray(self.loss)!s}, grad_norm={np.asarray(self.grad_norm)!s}, "
                f"nfev={np.asarray(self.nfev)}{summary_message(self)})"
            )
        except Exception:  # traced: fall back to the field dump
            return f"Result(params={self.params!r}, loss={self.loss!r}, status={self.status!r})"
