"""jaxgd: a plain JAX loss function in, a fast and trustworthy minimisation out.

One jit-compiled XLA loop runs every step; the step size comes from a
schedule or a line search; gradients are cross-checked against hand-written
NumPy gradients and finite differences.
"""

from . import directions as directions
from . import linesearch as linesearch
from . import plot as plot
from . import problems as problems
from . import schedules as schedules
from ._checkpoint import CheckpointError as CheckpointError
from ._checkpoint import TreeMismatchError as TreeMismatchError
from ._checkpoint import checkpoint_info as checkpoint_info
from ._checkpoint import load_checkpoint as load_checkpoint
from ._checkpoint import save_checkpoint as save_checkpoint
from ._directions import Direction as Direction
from ._directions import names as methods
from ._fit import FitHistory as FitHistory
from ._fit import FitResult as FitResult
from ._fit import FitStatus as FitStatus
from ._fit import Remainder as Remainder
from ._fit import fit as fit
from ._gradcheck import GradCheck as GradCheck
from ._gradcheck import check_grad as check_grad
from ._minimize import minimize as minimize
from ._solver import Solver as Solver
from ._solver import SolverState as SolverState
from ._status import History as History
from ._status import Result as Result
from ._status import Status as Status

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "TreeMismatchError",
    "checkpoint_info",
    "load_checkpoint",
    "save_checkpoint",
    "Direction",
    "GradCheck",
    "History",
    "Result",
    "Solver",
    "SolverState",
    "Status",
    "check_grad",
    "directions",
    "linesearch",
    "fit",
    "FitHistory",
    "FitResult",
    "FitStatus",
    "Remainder",
    "plot",
    "methods",
    "minimize",
    "problems",
    "schedules",
]
