"""Plots of runs: a loss curve, several runs on one axes, a schedule's step sizes.

matplotlib is an optional dependency (``pip install jaxgd[plot]``), imported
only when a plot is drawn. Figures are built with the object-oriented API
(``matplotlib.figure.Figure`` on an Agg canvas), never through ``pyplot``:
nothing global changes, no window opens, and the functions work in scripts,
tests and on headless machines alike. Pass ``ax=`` to draw into your own
axes (a notebook's, say) instead.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from ..minibatch.fit import FitResult
from ..core.status import Result, recorded_rows
from .._types import Schedule

MISSING = "jaxgd.plot needs matplotlib: pip install jaxgd[plot] (or pip install matplotlib)"
BAD_RESULT = "result must be a jaxgd.Result, a jaxgd.FitResult or a 1-D array of losses, got a {kind}"


def _matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(MISSING) from err
    return Figure, FigureCanvasAgg


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: Optional[tuple[float, float]] = None) -> tuple[Any, Any]:
    """A new figure on the non-interactive Agg canvas and its axes (no ``pyplot``).

    Args:
      nrows: rows in the grid of axes.
      ncols: columns in the grid of axes.
      figsize: inches; default 6 x 4 per axes.

    Returns:
      ``(fig, ax)``: a ``matplotlib.figure.Figure`` and one ``Axes`` (or an
      array of them for a grid).

    Raises:
      ImportError: matplotlib is not installed.
    """
    Figure, FigureCanvasAgg = _matplotlib()
    fig = Figure(figsize=figsize or (6.0 * ncols, 4.0 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols)


def _axes(ax: Any) -> Any:
    """``ax``, or a new figure's axes for None (matplotlib's ``Axes`` draws with ``plot``)."""
    if ax is None:
        return subplots()[1]
    if not callable(getattr(ax, "plot", None)):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    return ax


def _check_every(every: Any) -> None:
    if every is None:
        return
    message = f"every must be a positive integer (steps between history entries), got every={every!r}"
    if isinstance(every, (bool, np.bool_)) or not isinstance(every, (int, np.integer)):
        raise TypeError(message)
    if every < 1:
        raise ValueError(message)


def _auto_log(series: list[np.ndarray]) -> bool:
    """The default loss axis: log where every finite loss is >= 0 and one is > 0 (a run that reaches an exact
    0, as float32 runs do at their answer, keeps its log axis: the zeros clip to its foot)."""
    values = np.concatenate(series) if series else np.array([])
    finite = values[np.isfinite(values)]
    return bool(finite.size > 0 and (finite >= 0).all() and (finite > 0).any())


def _logy(logy: Any) -> Any:
    """``logy`` checked: a bool, or None (:func:`_auto_log`'s choice)."""
    if logy is None or isinstance(logy, (bool, np.bool_)):
        return logy
    raise TypeError(f"logy must be a bool or None, got logy={logy!r}")


def _series(result: Any, every: int) -> tuple[str, list[tuple[str, np.ndarray, np.ndarray]]]:
    """``(x label, [(suffix, x, y), ...])`` for a result or a plain array of losses."""
    if isinstance(result, FitResult):
        h = result.history
        train = np.asarray(h.train_loss, dtype=float)
        _one_run(train)
        x = np.arange(1, len(train) + 1)
        out = [("train", x, train)]
        ev = np.asarray(h.eval_loss, dtype=float)
        if np.isfinite(ev).any():
            out.append(("eval", x, ev))
        return "epoch", out
    if isinstance(result, Result):
        y = _one_run(np.asarray(result.history.loss, dtype=float))
        every = _period(result, every)
    else:
        try:
            y = np.asarray(result, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(BAD_RESULT.format(kind=type(result).__name__)) from None
        _one_run(y)
    return "step", [("", np.arange(1, len(y) + 1) * (every or 1), y)]


def _one_run(y: np.ndarray) -> np.ndarray:
    if y.ndim != 1:
        raise ValueError(f"a loss curve needs one run's 1-D history, got shape {y.shape}")
    return y


PERIOD = (
    "every={every} does not match this Result's history: {rows} rows over {steps} steps (history=k records "
    "steps // k rows)"
)
PERIOD_UNKNOWN = (
    "this Result's history has {rows} rows over {steps} steps, which history={low} to history={high} would each "
    "record (steps // k rows): drawn at every={high}; pass every= (the run's history=k) to label the steps"
)


def _period(result: Result, every: Optional[int]) -> Optional[int]:
    """The history period of ``result``: a run of ``steps`` steps at ``history=k`` recorded ``steps // k``
    rows (a buffer's tail NaN). ``every`` given is checked against the rows; None is the one ``k`` the
    rows allow (1 where there are no rows: nothing to label)."""
    rows, steps = recorded_rows(result), int(np.asarray(result.steps))
    if rows == 0 or (every is None and rows == steps):
        return every or 1
    if every is not None:
        if steps // every != rows:
            raise ValueError(PERIOD.format(every=every, rows=rows, steps=steps))
        return every
    allowed = range(steps // (rows + 1) + 1, steps // rows + 1)
    if not allowed:  # (a Result put together by hand, or rows mixed from two periods)
        raise ValueError(f"no history=k records {rows} rows over {steps} steps: plot the rows as an array, "
                         "loss_curve(result.history.loss)")
    if len(allowed) > 1:  # (a coarse history=k: drawn at the largest period, the run's own where it ran to a
        # multiple of k, with a warning; raising made the default call fail for every coarse history)
        warnings.warn(PERIOD_UNKNOWN.format(rows=rows, steps=steps, low=allowed.start, high=allowed.stop - 1),
                      stacklevel=4)
    return allowed[-1]


def loss_curve(
    result: Any, ax: Any = None, *, label: Optional[str] = None, every: Optional[int] = None,
    logy: Optional[bool] = None,
) -> Any:
    """Plot a run's loss against steps (a :class:`jaxgd.Result`) or epochs (a :class:`jaxgd.FitResult`).

    A ``FitResult`` gives its training loss (solid) and, when recorded, its
    eval loss (dashed, same colour); a ``Result`` its per-step loss; a 1-D
    array is plotted as it is.

    Args:
      result: a ``Result``, a ``FitResult`` or a 1-D array of losses.
      ax: the matplotlib axes to draw into (default: a new figure's).
      label: the legend label (default none).
      every: steps between history entries (``history=k`` in ``minimize``); None (the default): read
        from a ``Result``'s rows (``steps // k`` of them; where several periods fit, the largest, with a
        warning), 1 for an array.
      logy: logarithmic loss axis; None (the default): log where every finite plotted loss is >= 0 and
        one is > 0 (exact zeros, common at a float32 answer, clip to the axis's foot).

    Returns:
      The ``Axes`` drawn into (``ax.figure`` is its figure).

    Raises:
      ImportError: matplotlib is not installed.
      TypeError: ``result`` is not a result or an array of numbers; ``ax`` is not an
        ``Axes``; ``logy`` is not a bool or None.
      ValueError: the history is not one-dimensional (a vmapped result);
        ``every`` is below 1, or not the period of a ``Result``'s rows (a TypeError: not an integer).
    """
    _check_every(every)
    logy = _logy(logy)
    xlabel, series = _series(result, every)
    ax = _axes(ax)
    color = None
    for suffix, x, y in series:
        if len(series) == 1:
            name = label
        else:
            name = f"{label} ({suffix})" if label else suffix
        (line,) = ax.plot(x, y, label=name, color=color, linestyle="--" if suffix == "eval" else "-")
        color = line.get_color()
    if logy is None:
        logy = _auto_log([y for _, _, y in series])
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss")
    if label or len(series) > 1:
        ax.legend()
    return ax


def compare(
    results: Mapping[str, Any], ax: Any = None, *, title: Optional[str] = None, logy: Optional[bool] = None,
    every: Optional[int] = None,
) -> Any:
    """Several runs' loss curves on one axes, one legend entry each (log-scale loss where every loss is >= 0).

    The x-axis is steps for ``Result`` histories and epochs for ``FitResult`` ones; mixed, it says so
    ("epoch or step").

    Args:
      results: ``{label: Result | FitResult | 1-D array}``.
      ax: the axes to draw into (default: a new figure's).
      title: the axes title.
      logy: logarithmic loss axis (None, the default: when every finite plotted loss of every run is
        >= 0 and one is > 0; exact zeros clip to the axis's foot, and a log axis you ask for drops
        negative losses).
      every: steps between history entries, for ``Result`` histories (None: each ``Result``'s own,
        read from its rows as in :func:`loss_curve`).

    Returns:
      The ``Axes``.

    Raises:
      ImportError: matplotlib is not installed.
      TypeError: ``results`` is not a mapping; ``ax`` is not an ``Axes``; ``logy`` is not a bool or None.
      ValueError: ``results`` is empty; ``every`` as in :func:`loss_curve`.
    """
    if not isinstance(results, Mapping):
        raise TypeError(f"results must be a mapping {{label: result}}, got {type(results).__name__}")
    if not results:
        raise ValueError("compare needs at least one result, got results={}")
    _check_every(every)
    logy = _logy(logy)
    labels, values = set(), []
    for result in results.values():  # every result checked before a figure is made
        xlabel, series = _series(result, every)
        labels.add(xlabel)
        values += [y for _, _, y in series]
    if logy is None:  # one scale for all: the runs' losses together (loss_curve's rule)
        logy = _auto_log(values)
    ax = _axes(ax)
    with warnings.catch_warnings():  # (the period's warning was given above, at the caller's line: not twice)
        warnings.filterwarnings("ignore", message=r"this Result's history has \d+ rows over")
        for name, result in results.items():
            loss_curve(result, ax, label=name, every=every, logy=logy)
    if len(labels) > 1:
        ax.set_xlabel(" or ".join(sorted(labels)))
    if title:
        ax.set_title(title)
    return ax


def schedule(sched: Schedule | float, steps: int, ax: Any = None, *, label: Optional[str] = None) -> Any:
    """Plot a step-size schedule's learning rate over ``steps`` optimizer steps.

    Args:
      sched: a schedule ``count -> lr`` (optax's, ``jaxgd.schedules``') or a float.
      steps: how many steps to show (``count = 0 .. steps - 1``).
      ax: the axes to draw into (default: a new figure's).
      label: the legend label.

    Returns:
      The ``Axes``.

    Raises:
      ImportError: matplotlib is not installed.
      TypeError: ``sched`` is neither callable nor a number; ``ax`` is not an ``Axes``.
      ValueError: ``steps`` < 1.
    """
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps=}")
    if not callable(sched) and (isinstance(sched, (bool, np.bool_)) or not isinstance(sched, (int, float, np.number))):
        raise TypeError(f"sched must be a schedule (count -> lr) or a number, got sched={sched!r}")
    ax = _axes(ax)
    counts = np.arange(steps)
    if callable(sched):
        import jax
        import jax.numpy as jnp

        lrs = np.asarray(jax.jit(jax.vmap(sched))(jnp.arange(steps)), dtype=float)
    else:
        lrs = np.full(steps, float(sched))
    ax.plot(counts, lrs, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    if label:
        ax.legend()
    return ax


def save(fig: Any, path: str | os.PathLike, *, dpi: int = 120) -> Path:
    """Write a figure (or the figure of an ``Axes``) to ``path``, creating its folder.

    Args:
      fig: a ``Figure`` or an ``Axes``.
      path: the file to write; the extension picks the format (``.png``, ``.pdf``, ``.svg``; none:
        ``.png`` is added, as matplotlib does).
      dpi: resolution for raster formats.

    Returns:
      The path written, as a ``pathlib.Path`` (with the ``.png`` added where ``path`` had no extension).

    Raises:
      ImportError: matplotlib is not installed.
      TypeError: ``fig`` is neither a ``Figure`` nor an ``Axes``; ``path`` is not a str or path.
      ValueError: ``dpi`` is not a positive number; ``path`` is an existing folder, or its extension is
        not a format matplotlib writes.
    """
    figure = getattr(fig, "figure", None) if not hasattr(fig, "savefig") else fig
    if not hasattr(figure, "savefig"):
        raise TypeError(f"fig must be a matplotlib Figure or Axes, got {type(fig).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    if isinstance(dpi, (bool, np.bool_)) or not isinstance(dpi, (int, float, np.integer, np.floating)) or not dpi > 0:
        raise ValueError(f"dpi must be a positive number, got dpi={dpi!r}")
    _matplotlib()
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"path must name a file to write, got the folder {str(path)!r}")
    if not path.suffix:
        path = path.with_name(path.name + ".png")
    formats = figure.canvas.get_supported_filetypes()
    if path.suffix[1:].lower() not in formats:
        shown = ", ".join(sorted(formats))
        raise ValueError(f"path's extension {path.suffix!r} is not a format matplotlib writes ({shown})")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    return path
