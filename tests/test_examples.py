"""Every example runs in quick mode and meets its stated comparison.

Each example's ``run(quick, out)`` returns its numbers; the trusted reference
is named per test (numpy.linalg.lstsq, scikit-learn, scipy, statsmodels).
Examples are user code, so they run with JAX's default rank promotion
("allow") rather than the suite's strict setting, which guards jaxgd itself.
"""

from __future__ import annotations

import importlib
import os
import sys

import jax
import pytest

# The examples' own dependencies (the test extra plus the plot extra).
for _name in ("matplotlib", "sklearn", "scipy", "statsmodels"):
    pytest.importorskip(_name)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
NAMES = ["linear_regression_diabetes", "logistic_breast_cancer", "mlp_digits", "cnn_digits", "ar_sunspots",
         "equinox_model", "hyperparameter_gradient", "flax_nnx_digits"]


def run_example(name, out):
    if EXAMPLES not in sys.path:
        sys.path.insert(0, EXAMPLES)
    module = importlib.import_module(name)
    with jax.numpy_rank_promotion("allow"):
        result = module.run(quick=True, out=str(out))
    if not result.get("skipped"):
        assert os.path.getsize(result["plot"]) > 1000
    return result


def test_linear_regression_diabetes(tmp_path):
    """Reference: numpy.linalg.lstsq on the same standardised design matrix."""
    r = run_example("linear_regression_diabetes", tmp_path)
    assert r["objective_rel_gap"] < 1e-3
    assert r["coef_rel_err"] < 0.05  # SGD noise along nearly collinear features (s1..s5)


def test_logistic_breast_cancer(tmp_path):
    """Reference: sklearn LogisticRegression with C <-> l2 = 1/(nC), the same objective."""
    r = run_example("logistic_breast_cancer", tmp_path)
    assert r["objective_rel_gap"] < 1e-3
    assert r["coef_rel_err"] < 0.03
    assert r["accuracy"] >= r["accuracy_sklearn"] - 0.005


@pytest.mark.slow
def test_mlp_digits(tmp_path):
    """Reference: the stated bar (test accuracy >= 0.95) and sklearn's MLPClassifier."""
    r = run_example("mlp_digits", tmp_path)
    assert r["test_accuracy"] >= 0.95
    assert r["test_accuracy"] >= r["test_accuracy_sklearn"] - 0.02


@pytest.mark.slow  # the CNN example trains for ~7 s; make slow, run by CI
def test_cnn_digits(tmp_path):
    """Reference: scipy.signal.correlate2d for the convolution; test accuracy >= 0.95."""
    r = run_example("cnn_digits", tmp_path)
    assert r["conv_max_abs_err_vs_scipy"] < 1e-5
    assert r["test_accuracy"] >= 0.95


@pytest.mark.slow
def test_ar_sunspots(tmp_path):
    """Reference: statsmodels AutoReg (OLS) coefficients and its one-step forecasts."""
    r = run_example("ar_sunspots", tmp_path)
    assert r["phi_rel_err"] < 0.03
    assert r["forecast_rmse"] <= 1.02 * r["forecast_rmse_statsmodels"]


@pytest.mark.slow  # ~8 s; test_models.py covers Equinox in make test
def test_equinox_model(tmp_path):
    """Reference: sklearn LogisticRegression's test accuracy on the same split."""
    pytest.importorskip("equinox")
    r = run_example("equinox_model", tmp_path)
    assert r["test_accuracy"] >= r["test_accuracy_logreg"] - 0.02


@pytest.mark.slow  # 40-85 s: the example's full hypergradient sweep (make slow, run by CI)
def test_hyperparameter_gradient(tmp_path):
    """Reference: scikit-learn's LogisticRegressionCV grid (same split, objective and score)."""
    r = run_example("hyperparameter_gradient", tmp_path)
    assert r["val_loss"] <= r["val_loss_grid_best"] + 1e-12
    assert r["outer_status"] == "GTOL" and abs(r["hypergradient_at_lam"]) < 1e-6
    # the plotted path (the same solver stepped from Python: other compiled code, other rounding in
    # the inner solves) ends where minimize ended, to well within the flat bottom of the curve
    assert r["path_final_gap"] < 1e-3


@pytest.mark.slow  # ~7 s; test_as_optax.py covers NNX in make test
def test_flax_nnx_digits(tmp_path):
    """Reference: the stated bar (test accuracy >= 0.95) and sklearn's MLPClassifier."""
    pytest.importorskip("flax")
    r = run_example("flax_nnx_digits", tmp_path)
    assert r["test_accuracy"] >= 0.95
    assert r["test_accuracy"] >= r["test_accuracy_sklearn"] - 0.02


def test_demo_real_rows(monkeypatch):
    """Reference: numpy.linalg.lstsq (inside the row); the row schema the demo table reads."""
    from jaxgd.cli import demo_real as _demo_real

    (row,) = _demo_real.real_data_rows(False, problems=["diabetes"], quick=True)
    assert {"problem", "method", "schedule", "steps", "epochs", "loss", "grad_norm", "accuracy", "reference",
            "time", "status", "curve"} <= set(row)
    assert row["status"] == "EPOCHS" and row["epochs"] == 50 and len(row["curve"]) == 50
    assert row["reference"].startswith("coef rel err") and float(row["reference"].split()[3]) < 0.05
    assert list(_demo_real.curves([row])) == ["diabetes (linear)"]
    # the demo prints the comparison under its table (it computed it and dropped it; a review in session 59)
    from jaxgd.cli import demo

    shown = demo.format_references([demo.real_row(row)])
    assert shown.splitlines() == ["checked against a trusted reference:", f"  diabetes (linear)  {row['reference']}"]
    with pytest.raises(ValueError, match="unknown problems"):
        _demo_real.real_data_rows(False, problems=["mnist"])
    monkeypatch.setitem(sys.modules, "sklearn", None)
    (skipped,) = _demo_real.real_data_rows(False, problems=["digits_mlp"])
    assert skipped["status"].startswith("skipped") and _demo_real.curves([skipped]) == {}


def test_command_line(tmp_path, monkeypatch, capsys):
    """--quick / --out reach run(); an --out that is a file (or under one) stops before run(), as `jaxgd demo`
    does (reference: the file made here; it trained, then raised FileExistsError); every example calls main()
    under __main__."""
    if EXAMPLES not in sys.path:
        sys.path.insert(0, EXAMPLES)
    import _common

    seen = {}
    monkeypatch.setattr(sys, "argv", ["x.py", "--quick", "--out", str(tmp_path)])
    _common.main(lambda quick, out: seen.update(quick=quick, out=out) or seen, "doc")
    assert seen == {"quick": True, "out": str(tmp_path)}
    monkeypatch.setattr(sys, "argv", ["x.py"])
    monkeypatch.setenv("JAXGD_QUICK", "1")
    _common.main(lambda quick, out: seen.update(quick=quick, out=out) or seen, "doc")
    assert seen == {"quick": True, "out": "out"}
    seen.clear()
    afile = tmp_path / "afile"
    afile.write_text("")
    for bad in (afile, afile / "plots"):  # stopped before run(), not by FileExistsError when the plot is written
        monkeypatch.setattr(sys, "argv", ["x.py", "--quick", "--out", str(bad)])
        with pytest.raises(SystemExit) as stop:
            _common.main(lambda quick, out: seen.update(quick=quick, out=out) or seen, "doc")
        assert stop.value.code == 2 and seen == {}
        assert f"argument --out: must name a folder, but {str(afile)!r}" in capsys.readouterr().err
    for name in NAMES:
        with open(os.path.join(EXAMPLES, name + ".py")) as f:
            source = f.read()
        assert 'if __name__ == "__main__":\n    main(run, __doc__)' in source, name
