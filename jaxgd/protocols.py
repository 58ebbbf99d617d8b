"""The three extension points of the update, as ``typing.Protocol``\\ s.

Every method is ``theta' = prox(theta + alpha * d, alpha)`` (DESIGN.md):

- :class:`SearchDirection` gives ``d`` (:class:`jaxgd.Direction`, a NamedTuple
  of two pure functions, is the stock implementation; ``method=`` names are
  those of :func:`jaxgd.methods`);
- :class:`StepSizeRule` gives ``alpha`` (the rules in ``jaxgd.linesearch``, and
  the wrapper ``lr=`` puts around a float or a schedule);
- :class:`ProximalOperator` is the non-smooth term's step (the one ``l1=`` and
  ``bounds=`` build: L1 soft-thresholding and box projection).

The protocols are structural: a class satisfies one by having the members,
with no base class to inherit (``method=`` and ``lr=`` take such objects; a
proximal term is added to the one operator the solver builds, see
:class:`ProximalOperator`). ``isinstance`` works on all three
(``runtime_checkable``; it checks that the members exist, not their
signatures). This module imports nothing from jaxgd, so every other module
may import it without a cycle. The recipes for adding each kind are in
``docs/extending.md``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Protocol, runtime_checkable

__all__ = ["ProximalOperator", "SearchDirection", "StepSizeRule"]


@runtime_checkable
class SearchDirection(Protocol):
    """A search direction ``d_k`` (implemented by :class:`jaxgd.Direction`).

    Attributes:
      name: a short name for tables and error messages.
      init: ``init(params) -> state``; the state is a pytree with fixed
        shapes and dtypes (a loop carry).
      update: ``update(grad, state, params, *, value, value_fn) -> (d, state)``
        (``value`` and ``value_fn`` passed by keyword),
        ``d`` a descent direction shaped like ``params`` (the step is
        ``+alpha * d``).
      default_lr: the step size used when the user gives none: a float, or a
        zero-argument factory returning a :class:`StepSizeRule`.
      decoupled_l2: True when ``l2=`` is decoupled weight decay added to the
        direction (AdamW) rather than a penalty added to the loss.
      reset: None, or ``reset(state) -> (state, had_memory)`` for a direction
        with a curvature memory: the solver retries a failed line search from
        the same point with the reset state when ``had_memory`` (L-BFGS-B's restart).

    ``method=`` takes such an object as it is (read into a :class:`jaxgd.Direction`); the
    members :class:`jaxgd.Direction` has besides (``accepts``, ``keeps_nonfinite``,
    ``quasi_newton``) are read where the object has them, its defaults otherwise.
    """

    @property
    def name(self) -> str: ...

    @property
    def init(self) -> Callable[[Any], Any]: ...

    @property
    def update(self) -> Callable[..., tuple[Any, Any]]: ...

    @property
    def default_lr(self) -> Any: ...

    @property
    def decoupled_l2(self) -> bool: ...

    @property
    def reset(self) -> Optional[Callable[[Any], tuple[Any, Any]]]: ...


@runtime_checkable
class StepSizeRule(Protocol):
    """A step-size rule ``alpha_k``: a pytree whose numeric hyperparameters are leaves.

    A rule must be registered as a pytree (``jax.tree_util.register_dataclass``
    or ``register_pytree_node_class``) with its numbers as data leaves, so that
    a new value re-uses the compiled loop and ``jax.vmap`` can sweep it; its
    constructor validates concrete values on the host, naming the argument.
    Time-only schedules ``count -> lr`` need no class: ``lr=`` accepts them and
    wraps them.

    Optional: a method ``stalled(state) -> bool`` (the rule tracks its own stalls, as
    ``MoreThuente`` does: the solver then stops a stalled run, ``Status.STALLED`` or
    ``Status.PRECISION``), and a class attribute ``searches = True`` for a line search
    whose every step lowers ``f`` or ties it (``Backtracking``, ``StrongWolfe``, ``Exact``:
    in float32 and narrower, 100 steps with no new low of ``f`` or of the gradient norm
    stop the run, where under other rules it goes on), or a method ``exhausted(state) ->
    bool`` for a rule whose such 100 steps stop the run only once it has done all it does
    against a lack of progress (``ReduceOnPlateau``: two cuts of its rate with no
    improvement between them).
    """

    def init(self, params: Any, value: Any, grad: Any) -> Any:
        """The rule's state (a pytree with fixed shapes and dtypes) before step 0."""
        ...

    def step(self, state: Any, ctx: Any) -> tuple[Any, Any, Any, Any]:
        """``(alpha, trial, state, info)``: the step size, the ``Trial`` accepted at
        it (evaluated through ``ctx.evaluate``, handed back so it is not computed
        again), the new state and a ``StepInfo`` (evaluations spent, failure)."""
        ...


@runtime_checkable
class ProximalOperator(Protocol):
    """The proximal step of a non-smooth term ``h``: ``prox_{alpha h}(x)``.

    ``apply(params, alpha)`` is
    :math:`\\arg\\min_z h(z) + \\tfrac{1}{2\\alpha}\\|z - x\\|^2` (Parikh & Boyd,
    "Proximal Algorithms", 2014, section 1.1).

    These are the operations every term provides; the solver takes the one operator
    ``l1=`` and ``bounds=`` build (``jaxgd.prox.operators.Prox``) and reads more of it
    (its starting point, whether a box bends the searches' path, whether the term has a
    value the loss and the searches add, the box's and the weights' leaves), so a new
    term grows that class rather than standing beside it (``docs/extending.md``).
    """

    @property
    def active(self) -> bool:
        """False when there is no term at all (the step is the identity, statically)."""
        ...

    def check(self, params: Any) -> None:
        """Host-side check that the operator's data fit ``params`` (raises ``ValueError``)."""
        ...

    def project(self, params: Any) -> Any:
        """A feasible starting point (the identity for a term finite everywhere)."""
        ...

    def apply(self, params: Any, alpha: Any) -> Any:
        """``prox_{alpha h}(params)``."""
        ...

    def value(self, params: Any) -> Any:
        """``h(params)`` (0 for an indicator at a feasible point)."""
        ...

    def change(self, new: Any, old: Any) -> Any:
        """``h(new) - h(old)``, summed from elementwise differences."""
        ...

    def stationarity(self, params: Any, grad: Any, ord: float = 2.0) -> Any:
        """The norm (``ord`` 2 or inf: ``gtol_norm``) of the proximal-gradient map: 0 exactly at a
        minimiser of ``f + h``."""
        ...
