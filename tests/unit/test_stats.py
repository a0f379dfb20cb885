"""Student-t quantiles: exact (scipy's values), with or without scipy."""

from __future__ import annotations

import subprocess
import sys

import pytest

from assay.stats import t_quantile

PS = (1e-9, 1e-4, 0.001, 0.01, 0.025, 0.05, 0.1, 0.3, 0.49, 0.5, 0.51, 0.8, 0.9, 0.95, 0.975, 0.99, 0.995, 0.9999, 1 - 1e-9)
DFS = (0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7.3, 10, 30, 99.5, 1000, 1e5, 1e7)


def _scipy_values() -> dict[tuple[float, float], float]:
    stats = pytest.importorskip("scipy.stats")
    return {(p, df): float(stats.t.ppf(p, df)) for p in PS for df in DFS}


def test_pure_python_quantiles_match_scipy_within_1e_6(monkeypatch):
    expected = _scipy_values()
    # Forces the fallback honestly: with scipy.special unimportable, t_quantile cannot reach scipy.
    monkeypatch.setitem(sys.modules, "scipy.special", None)
    with pytest.raises(ImportError):
        import scipy.special  # noqa: F401
    for (p, df), want in expected.items():
        got = t_quantile(p, df)
        assert got == pytest.approx(want, rel=1e-6, abs=1e-6), (p, df)


def test_df_3_quantile_is_exact_not_an_expansion(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.special", None)
    # Table value t(0.975, 3) = 3.182446305; the old expansion gave 3.0973 (2.7% too narrow).
    assert t_quantile(0.975, 3) == pytest.approx(3.182446305284263, rel=1e-9)


def test_quantiles_are_scipys_when_scipy_is_loaded():
    expected = _scipy_values()
    for (p, df), want in expected.items():
        assert t_quantile(p, df) == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_ends_and_bad_arguments():
    assert t_quantile(0.5, 3) == 0
    assert t_quantile(1, 3) == float("inf") and t_quantile(0, 3) == float("-inf")
    for p, df in ((1.5, 3), (-0.1, 3), (0.9, 0), (0.9, -2)):
        with pytest.raises(ValueError, match="t_quantile"):
            t_quantile(p, df)


def test_quantiles_do_not_import_scipy():
    code = "import sys; from assay.stats import t_quantile; t_quantile(0.975, 3); print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
