"""Tests for jaxgd.plot. The reference for each drawn line is the data it was
drawn from (the history arrays, a schedule computed by hand); results are
built by hand so that no solver has to compile here."""

from __future__ import annotations

import importlib.util
import sys

import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
import jaxgd.plot
from jaxgd.minibatch.fit import FitHistory, FitResult
from jaxgd.core.status import History, Result


def _result(losses, steps=None):
    """A Result of ``steps`` steps (default one a row) with these history rows."""
    losses = jnp.asarray(losses)
    h = History(losses, jnp.full_like(losses, 0.1), losses / 2)
    z = jnp.asarray(0)
    steps = len(losses) if steps is None else steps
    return Result(jnp.zeros(2), losses[-1], losses[-1], jnp.asarray(steps), z, h, None, z, z)


def _fit_result(train, ev):
    train, ev = jnp.asarray(train), jnp.asarray(ev)
    h = FitHistory(train, ev, jnp.full_like(train, jnp.nan), jnp.full_like(train, 0.01))
    z = jnp.asarray(0)
    return FitResult(jnp.zeros(2), jnp.zeros(2), z, ev.min(), jnp.asarray(len(train)), z, z, h, None)


needs_matplotlib = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None, reason="matplotlib is not installed (pip install jaxgd[plot])"
)


@needs_matplotlib
def test_loss_curve_of_a_result_and_of_a_fit_result():
    """Reference: the history arrays the lines were drawn from."""
    ax = jaxgd.plot.loss_curve(_result([4.0, 2.0, 1.0, 0.5], steps=43), label="gd", every=10)
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [10, 20, 30, 40])
    np.testing.assert_array_equal(line.get_ydata(), [4.0, 2.0, 1.0, 0.5])
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "step"

    ax = jaxgd.plot.loss_curve(_fit_result([3.0, 2.0, 1.5], [3.5, 2.5, 2.6]), label="mlp")
    train, ev = ax.get_lines()
    np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(ev.get_ydata(), [3.5, 2.5, 2.6])
    assert ev.get_linestyle() == "--" and ev.get_color() == train.get_color()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["mlp (train)", "mlp (eval)"]
    assert ax.get_xlabel() == "epoch"


@needs_matplotlib
def test_linear_axis_when_a_loss_is_not_positive():
    ax = jaxgd.plot.loss_curve(np.array([1.0, 0.0, -1.0]))
    assert ax.get_yscale() == "linear"


@needs_matplotlib
def test_a_run_reaching_an_exact_zero_keeps_its_log_axis():
    """A float32 run that reaches 0.0 exactly (lbfgs on Rosenbrock) drew a linear axis, every step but the
    first flattened onto 0 (a user review in session 57). Reference: the losses drawn, unchanged."""
    ax = jaxgd.plot.loss_curve(np.array([24.2, 4.1, 1e-3, 1e-9, 0.0]))
    assert ax.get_yscale() == "log"
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), [24.2, 4.1, 1e-3, 1e-9, 0.0])
    assert jaxgd.plot.compare({"a": np.array([1.0, 0.0]), "b": np.array([2.0, 0.5])}).get_yscale() == "log"
    assert jaxgd.plot.loss_curve(np.zeros(3)).get_yscale() == "linear"


@needs_matplotlib
def test_the_history_period_is_read_from_a_results_rows():
    """history=7 over 50 steps records steps // 7 = 7 rows, drawn at steps 7, 14, ... (the default every=1 drew
    them at 1, 2, ...: a user review in session 57). Reference: the steps the rows record, by hand."""
    ax = jaxgd.plot.loss_curve(_result(np.linspace(7.0, 1.0, 7), steps=50))
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [7, 14, 21, 28, 35, 42, 49])
    with pytest.raises(ValueError, match="every=5 does not match this Result's history: 7 rows over 50 steps"):
        jaxgd.plot.loss_curve(_result(np.linspace(7.0, 1.0, 7), steps=50), every=5)
    with pytest.warns(UserWarning, match="history=5 to history=6 would each record") as caught:  # 12 // 5 == 12 // 6
        ax = jaxgd.plot.compare({"a": _result([2.0, 1.0], steps=12)})
    # once, at this file's line (compare warned twice, the second time inside jaxgd: a user review, session 58)
    assert [w.filename for w in caught] == [__file__]
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [6, 12])  # (the largest period: drawn, not refused)
    ax = jaxgd.plot.compare({"a": _result(np.linspace(7.0, 1.0, 7), steps=50), "b": _result([3.0, 2.0, 1.0])})
    assert [list(line.get_xdata()) for line in ax.get_lines()] == [[7, 14, 21, 28, 35, 42, 49], [1, 2, 3]]
    with pytest.raises(ValueError, match="does not match"):  # one every for all: b's 3 rows are not period 5
        jaxgd.plot.compare({"a": _result([2.0, 1.0], steps=12), "b": _result([3.0, 2.0, 1.0])}, every=5)


@needs_matplotlib
def test_a_vmapped_fit_result_is_refused_by_name():
    """A FitResult of jax.vmap(fit) over 3 learning rates raised "too many values to unpack" (a user review in
    session 57); a vmapped Result already said what was wrong."""
    batched = _fit_result(np.ones((3, 4)), np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"one run's 1-D history, got shape \(3, 4\)"):
        jaxgd.plot.loss_curve(batched)


@needs_matplotlib
def test_compare_draws_every_run_on_one_log_axes():
    fig, ax = jaxgd.plot.subplots()
    out = jaxgd.plot.compare({"gd": _result([4.0, 1.0]), "adam": _result([4.0, 0.5, 0.1])}, ax, title="runs")
    assert out is ax and len(ax.get_lines()) == 2 and ax.get_yscale() == "log" and ax.get_title() == "runs"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["gd", "adam"]
    with pytest.raises(ValueError, match="at least one result"):
        jaxgd.plot.compare({})


@needs_matplotlib
def test_compare_picks_a_linear_axis_for_negative_losses_and_names_mixed_x_units():
    """Reference: the losses drawn (all < 0 here: a log axis showed nothing, a user review in session 53)
    and the x units of a Result (steps) and a FitResult (epochs) together."""
    ax = jaxgd.plot.compare({"a": _result([-5.0, -4.0]), "b": _result([-4.5, -3.7])})
    assert ax.get_yscale() == "linear" and ax.get_xlabel() == "step"
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), [-5.0, -4.0])
    mixed = jaxgd.plot.compare({"steps": _result([4.0, 1.0]), "fit": _fit_result([3.0, 2.0], [3.5, 2.5])})
    assert mixed.get_yscale() == "log" and mixed.get_xlabel() == "epoch or step"


@needs_matplotlib
def test_schedule_plots_the_learning_rate():
    """Reference: step decay computed by hand, 0.1 * 0.5 ** (k // 2)."""
    ax = jaxgd.plot.schedule(jaxgd.schedules.step_decay(0.1, 2, 0.5), steps=6, label="step")
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    ax = jaxgd.plot.schedule(0.3, steps=3)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [0.3] * 3)
    with pytest.raises(ValueError, match="steps=0"):
        jaxgd.plot.schedule(0.3, steps=0)


@needs_matplotlib
def test_save_writes_a_png(tmp_path):
    ax = jaxgd.plot.loss_curve([3.0, 1.0])
    path = jaxgd.plot.save(ax, tmp_path / "sub" / "loss.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_matplotlib
def test_save_returns_the_file_it_wrote(tmp_path):
    """Without an extension matplotlib writes ``name.png``, and ``save`` returned ``name``, a path that does not
    exist; a folder as path wrote ``folder.png`` beside it (a user review in session 57). Reference: the files."""
    ax = jaxgd.plot.loss_curve([3.0, 1.0])
    path = jaxgd.plot.save(ax, tmp_path / "noext")
    assert path == tmp_path / "noext.png" and path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="must name a file to write, got the folder"):
        jaxgd.plot.save(ax, tmp_path)
    with pytest.raises(ValueError, match="'.v2' is not a format matplotlib writes"):
        jaxgd.plot.save(ax, tmp_path / "run.v2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noext.png"]


def test_missing_matplotlib_says_how_to_install(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install jaxgd\[plot\]"):
        jaxgd.plot.loss_curve([1.0])


@needs_matplotlib
def test_figures_use_the_agg_canvas_not_pyplot():
    fig, _ = jaxgd.plot.subplots()
    assert type(fig.canvas).__name__ == "FigureCanvasAgg"
