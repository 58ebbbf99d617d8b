"""jaxgd: a plain JAX loss function in, a fast and trustworthy minimisation out.

One jit-compiled XLA loop runs every step; the step size comes from a
schedule or a line search; gradients are cross-checked against hand-written
NumPy gradients and finite differences.
"""

from . import directions
from . import linesearch
from . import plot
from . import problems
from . import protocols
from . import schedules
from ._compile_cache import CacheInfo as CacheInfo
from ._compile_cache import clear_compilation_cache as clear_compilation_cache
from ._compile_cache import compilation_cache_info as compilation_cache_info
from ._compile_cache import disable_compilation_cache as disable_compilation_cache
from ._compile_cache import enable_compilation_cache as enable_compilation_cache
from .checkpoint.format import CheckpointError as CheckpointError
from .checkpoint.format import TreeMismatchError as TreeMismatchError
from .checkpoint.format import checkpoint_info as checkpoint_info
from .checkpoint.format import load_checkpoint as load_checkpoint
from .checkpoint.format import save_checkpoint as save_checkpoint
from .directions.registry import Direction as Direction
from .directions.registry import names as methods
from .minibatch.fit import FitHistory as FitHistory
from .minibatch.fit import FitResult as FitResult
from .minibatch.fit import FitStatus as FitStatus
from .minibatch.fit import Remainder as Remainder
from .minibatch.fit import fit as fit
from .gradcheck.check import GradCheck as GradCheck
from .gradcheck.check import check_grad as check_grad
from .core.minimize import minimize as minimize
from .core.solver import Solver as Solver
from .core.solver import SolverState as SolverState
from .core.status import History as History
from .core.status import Result as Result
from .core.status import Status as Status
from .interop.optax_export import as_optax as as_optax

__version__ = "0.1.0"

__all__ = [
    "CacheInfo",
    "clear_compilation_cache",
    "compilation_cache_info",
    "disable_compilation_cache",
    "enable_compilation_cache",
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
    "as_optax",
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
    "protocols",
    "schedules",
]
