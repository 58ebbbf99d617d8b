"""A progress bar fed from inside the compiled loop through ``jax.debug.callback``.

The loop calls :func:`update` every few steps and :func:`close` once at the
end. The bar lives on the host and is created lazily on the first update, so
a cached compiled loop drives a fresh bar on every call. When progress is off
nothing is traced at all.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

_BAR: Optional[Any] = None


def _first(x: Any) -> Any:
    """Under ``vmap`` a callback may see a batch: report its least advanced run."""
    arr = np.asarray(x)
    return arr.min() if arr.ndim else arr[()]


def update(count: Any, loss: Any, total: Any) -> None:
    """Advance the bar to ``count`` of ``total`` and show the loss (host side)."""
    global _BAR
    from tqdm.auto import tqdm

    n, t = int(_first(count)), int(_first(total))
    if _BAR is None:
        _BAR = tqdm(total=t, desc="jaxgd", unit="step", leave=True, dynamic_ncols=True)
    _BAR.set_postfix(loss=f"{float(_first(loss)):.6g}", refresh=False)
    _BAR.update(max(0, min(n, t) - _BAR.n))  # tqdm throttles redraws (mininterval)


def close(count: Any, loss: Any, total: Any) -> None:
    """Final update, then close the bar so the next run starts a new one."""
    global _BAR
    update(count, loss, total)
    if _BAR is not None:
        _BAR.close()
        _BAR = None
