"""Step-size rules that look at the objective: line searches and adaptive steps.

Each is a pytree usable as ``lr=`` in :func:`jaxgd.minimize` and
:class:`jaxgd.Solver`, inside the jitted loop; its numbers are leaves, so a
new ``c1`` or ``factor`` re-uses the compiled loop and ``jax.vmap`` can
sweep them. Time-only schedules are in :mod:`jaxgd.schedules`.

- :class:`Backtracking`: Armijo backtracking (Nocedal & Wright, Alg. 3.1).
- :class:`MoreThuente`: Moré & Thuente's search for the strong Wolfe
  conditions (MINPACK-2 ``dcsrch``, as in scipy); the default of ``bfgs``,
  ``lbfgs``, ``cg``.
- :class:`StrongWolfe`: bracketing + zoom for the strong Wolfe conditions
  (Nocedal & Wright, Alg. 3.5/3.6).
- :class:`Exact`: bracket + Brent's method along the direction (the jit twin
  of ``scipy.optimize.minimize_scalar``).
- :class:`BarzilaiBorwein`: the BB1/BB2 spectral steps, safeguarded.
- :class:`Polyak`: Polyak's step with a known or estimated optimal value.
- :class:`ReduceOnPlateau`: cut the step when the loss stops improving.

A search that finds no acceptable step stops the run with
``Status.LINESEARCH_FAILED`` and the last accepted iterate; a NaN/Inf trial
is treated as a step that is too long.

Example:
  >>> import jax.numpy as jnp, jaxgd
  >>> from jaxgd import linesearch
  >>> res = jaxgd.minimize(lambda x: jnp.sum((x - 3.0) ** 2), jnp.zeros(2),
  ...                      lr=linesearch.Backtracking(c1=1e-4, shrink=0.5))
  >>> print(res.status_enum.name, int(res.steps), res.params)
  GTOL 1 [3. 3.]
"""

from .adaptive import BarzilaiBorwein as BarzilaiBorwein
from .adaptive import BBState as BBState
from .adaptive import PlateauState as PlateauState
from .adaptive import Polyak as Polyak
from .adaptive import PolyakState as PolyakState
from .adaptive import ReduceOnPlateau as ReduceOnPlateau
from .exact import Exact as Exact
from .exact import ExactState as ExactState
from .more_thuente import MoreThuente as MoreThuente
from .more_thuente import MoreThuenteState as MoreThuenteState
from .wolfe import Backtracking as Backtracking
from .wolfe import BacktrackingState as BacktrackingState
from .wolfe import StrongWolfe as StrongWolfe
from .wolfe import WolfeState as WolfeState
from ..core.stepsize import StepContext as StepContext
from ..core.stepsize import StepInfo as StepInfo
from ..core.stepsize import Trial as Trial

__all__ = [
    "Backtracking",
    "BacktrackingState",
    "BarzilaiBorwein",
    "BBState",
    "Exact",
    "ExactState",
    "MoreThuente",
    "MoreThuenteState",
    "PlateauState",
    "Polyak",
    "PolyakState",
    "ReduceOnPlateau",
    "StepContext",
    "StepInfo",
    "StrongWolfe",
    "Trial",
    "WolfeState",
]
