"""A progress bar fed from inside the compiled loop through ``jax.debug.callback``.

The loop calls :func:`update` every few steps and :func:`close` once at the
end. The bar lives on the host and is created lazily on the first update, so
a cached compiled loop drives a fresh bar on every call. When progress is off
nothing is traced at all.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .status import FitStatus, Status

_BAR: Optional[Any] = None


def _first(x: Any) -> Any:
    """Under ``vmap`` a callback may see a batch: its least value (the step count of its least
    advanced run; the least loss of the batch, as the batched loop's bar shows)."""
    arr = np.asarray(x)
    return arr.min() if arr.ndim else arr[()]


def reset() -> None:
    """Close a bar left open by a run that did not finish (an exception or
    Ctrl-C mid-run), so that the next run starts a fresh one (host side)."""
    global _BAR
    if _BAR is not None:
        _BAR.close()
        _BAR = None


def advance(n: int, total: int, shown: dict, *, desc: str, unit: str) -> None:
    """Move the bar (created on first use) to ``n`` of ``total`` and show ``shown``."""
    global _BAR
    from tqdm.auto import tqdm

    if _BAR is None:
        _BAR = tqdm(total=total, desc=desc, unit=unit, leave=True, dynamic_ncols=True)
    _BAR.set_postfix(shown, refresh=False)
    _BAR.update(max(0, min(n, total) - _BAR.n))  # tqdm throttles redraws (mininterval)


def update(count: Any, loss: Any, total: Any) -> None:
    """minimize's bar: advance to ``count`` of ``total`` steps and show the loss (host side)."""
    advance(int(_first(count)), int(_first(total)), {"loss": f"{float(_first(loss)):.6g}"}, desc="jaxgd", unit="step")


_REASONS = {  # one family of codes (Status and FitStatus) -> what the finished bar says
    Status.GTOL: "converged: gtol", Status.FTOL: "converged: ftol", Status.XTOL: "converged: xtol",
    Status.MAX_STEPS: "stopped: max_steps", Status.NONFINITE: "stopped: non-finite loss",
    Status.LINESEARCH_FAILED: "stopped: line search failed", Status.PRECISION: "converged: at precision",
    Status.STALLED: "stopped: stalled", Status.INVALID_ARGUMENT: "stopped: invalid traced argument",
    FitStatus.EPOCHS: "completed", FitStatus.PATIENCE: "stopped early: patience",
}


def reason(status: Any, n: int, total: int, unit: str) -> str:
    """``converged: gtol at step 274``: why a run stopped, and where (host side); for a batch of
    runs (under ``vmap``), how many stopped for each reason, by the last one's step."""
    codes = np.asarray(status)
    done = Status.MAX_STEPS if unit == "step" else FitStatus.EPOCHS  # a run still RUNNING at the end: its budget ran out
    if codes.ndim:
        labels, counts = np.unique([_REASONS.get(int(c) if int(c) != Status.RUNNING else done, f"status {int(c)}")
                                    for c in codes.ravel()], return_counts=True)
        return f"{codes.size} runs, " + ", ".join(f"{k} {label}" for label, k in zip(labels, counts)) + f" by {unit} {n}"
    code = int(codes)
    if code == Status.RUNNING:  # at the end of the loop: the budget ran out (finish marks it MAX_STEPS)
        code = done
        if n < total:
            return f"paused at {unit} {n}"
    return f"{_REASONS.get(code, f'status {code}')} at {unit} {n}"


def _finish_bar(status: Any, n: int, total: int, unit: str) -> None:
    """End the bar at ``n`` (the bar reads 100 % where the run stopped; a run stopped before its first step
    reads ``0step``, not ``0%``) and say why. The caller's ``reset`` draws it once, as it closes it (a refresh
    here drew the final line twice in a log)."""
    if _BAR is None or status is None:
        return
    _BAR.total = n if n < total else total
    _BAR.set_description_str(reason(status, n, total, unit), refresh=False)


def close(count: Any, loss: Any, total: Any, status: Any = None) -> None:
    """Final update, then close the bar so the next run starts a new one; with ``status``
    the bar ends where the run stopped and says why (``converged: gtol at step 274``)."""
    update(count, loss, total)
    _finish_bar(status, int(_first(count)), int(_first(total)), "step")
    reset()


def update_epoch(epoch: Any, total: Any, train: Any, ev: Any) -> None:
    """fit's bar: advance to ``epoch`` of ``total`` and show the training (and eval) loss."""
    shown = {"loss": f"{float(train):.5g}"}
    if np.isfinite(ev):
        shown["eval"] = f"{float(ev):.5g}"
    advance(int(epoch), int(total), shown, desc="jaxgd.fit", unit="epoch")


def close_epoch(epoch: Any, total: Any, train: Any, ev: Any, status: Any = None) -> None:
    update_epoch(epoch, total, train, ev)
    _finish_bar(status, int(epoch), int(total), "epoch")
    reset()
