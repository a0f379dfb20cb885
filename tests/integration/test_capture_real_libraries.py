"""Capture presets on what the real libraries print: each test trains a tiny model on synthetic
data in a real subprocess, reads its output through the runner's own pipe reader (so `\\r`
progress updates, backspaces and ANSI colours arrive as in `assay run`), and checks the captured
names, values and steps against what the library itself recorded (evals_result, record_evaluation,
History.history), which the script writes to record.json.

Each test is skipped only when its library is not installed (`pip install -e '.[test]'` installs them)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from assay.capture import Capture
from assay.runner.process import run_process

DATA = """
import json
import numpy as np
rng = np.random.default_rng(0)
X = rng.normal(size=(300, 4)).astype("float32")
y = (X[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int)
def record(value):
    with open("record.json", "w") as f:
        json.dump(value, f)
"""


def run_library(tmp_path: Path, body: str, *args: str) -> tuple[list[tuple[int | None, dict]], object]:
    """Run DATA + body as a script; the metrics Capture takes from its output, and its record.json."""
    script = tmp_path / "train.py"
    script.write_text(DATA + textwrap.dedent(body))
    lines: list[str] = []
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "OMP_NUM_THREADS": "2"}
    result = run_process([sys.executable, str(script), *args], cwd=tmp_path, env=env, log_path=tmp_path / "out.log",
                         on_line=lines.append, timeout=180)
    output = (tmp_path / "out.log").read_text(errors="replace")
    assert result.returncode == 0, output
    cap = Capture()
    rows = [r for r in (cap.parse(line) for line in lines) if r[1]]
    return rows, json.loads((tmp_path / "record.json").read_text())


def near(printed: float, recorded: float, places: int) -> bool:
    """The library prints `recorded` rounded to `places` decimals (or fewer significant digits)."""
    return abs(printed - recorded) <= 0.51 * 10 ** -places


XGB_FIT = """
import xgboost as xgb
clf = xgb.XGBClassifier(n_estimators=12, max_depth=2, eval_metric=["logloss", "auc"])
clf.fit(X[:200], y[:200], eval_set=[(X[:200], y[:200]), (X[200:], y[200:])], verbose=5)
record(clf.evals_result())
"""


def test_xgboost_eval_lines_give_each_printed_round_with_evals_result_values(tmp_path):
    pytest.importorskip("xgboost")
    rows, evals = run_library(tmp_path, XGB_FIT)
    # verbose=5 prints every 5th round and the last one
    assert [step for step, _ in rows] == [0, 5, 10, 11]
    for step, metrics in rows:
        expected = {f"{data}_{name}": values[step] for data, by_name in evals.items() for name, values in by_name.items()}
        assert set(metrics) == set(expected) == {"validation_0_logloss", "validation_0_auc", "validation_1_logloss",
                                                 "validation_1_auc"}
        assert all(near(metrics[k], expected[k], 5) for k in expected), (step, metrics, expected)


def test_xgboost_cv_lines_give_the_mean_and_its_std(tmp_path):
    pytest.importorskip("xgboost")
    rows, result = run_library(tmp_path, """
        import xgboost as xgb
        params = {"objective": "binary:logistic", "eval_metric": "auc", "max_depth": 2}
        record(xgb.cv(params, xgb.DMatrix(X, label=y), num_boost_round=3, nfold=3, verbose_eval=True, as_pandas=False))
    """)
    assert [step for step, _ in rows] == [0, 1, 2]
    for step, metrics in rows:
        assert set(metrics) == {"train_auc", "train_auc_std", "test_auc", "test_auc_std"}
        assert near(metrics["test_auc"], result["test-auc-mean"][step], 5)
        assert near(metrics["test_auc_std"], result["test-auc-std"][step], 5)
        assert near(metrics["train_auc"], result["train-auc-mean"][step], 5)


def test_xgboost_script_under_assay_run_ends_ok_with_its_last_validation_logloss(lab, make_experiment, cli):
    pytest.importorskip("xgboost")
    make_experiment(DATA + XGB_FIT, metric="validation_1_logloss", goal="min")
    out = cli("run", "exp", "xgb", timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    (run_dir,) = [p for p in (lab.experiment_dir("exp") / "runs").iterdir() if "xgb" in p.name]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "ok", record
    metric = record["metrics"]["validation_1_logloss"]
    evals = json.loads((lab.experiment_dir("exp") / "record.json").read_text())  # written in the script's cwd
    assert near(metric["last"], evals["validation_1"]["logloss"][11], 5), metric
    assert near(metric["best"], min(evals["validation_1"]["logloss"][i] for i in (0, 5, 10, 11)), 5), metric


def test_lightgbm_log_evaluation_lines_match_record_evaluation_and_skip_the_best_round_repeat(tmp_path):
    pytest.importorskip("lightgbm")
    rows, (history, best) = run_library(tmp_path, """
        import lightgbm as lgb
        rec = {}
        train = lgb.Dataset(X[:200], y[:200])
        valid = lgb.Dataset(X[200:], y[200:], reference=train)
        params = {"objective": "binary", "metric": ["binary_logloss", "auc"], "num_leaves": 4, "verbose": 1}
        booster = lgb.train(params, train, 40, valid_sets=[train, valid],
                            callbacks=[lgb.log_evaluation(5), lgb.record_evaluation(rec), lgb.early_stopping(3)])
        record([rec, booster.best_iteration])
    """)
    rounds = len(history["valid_1"]["auc"])
    assert best < rounds  # early stopping printed `best iteration is:` and that round again
    assert [step for step, _ in rows] == list(range(5, rounds + 1, 5))
    for step, metrics in rows:
        expected = {f"{data}_{name}": values[step - 1] for data, by_name in history.items()
                    for name, values in by_name.items()}
        assert set(metrics) == set(expected) == {"training_binary_logloss", "training_auc", "valid_1_binary_logloss",
                                                 "valid_1_auc"}
        assert all(abs(metrics[k] - expected[k]) <= 1e-5 * max(1.0, abs(expected[k])) for k in expected)


def test_lightgbm_cv_lines_give_the_mean_and_its_std(tmp_path):
    pytest.importorskip("lightgbm")
    rows, result = run_library(tmp_path, """
        import lightgbm as lgb
        params = {"objective": "binary", "metric": "auc", "num_leaves": 4, "verbose": -1}
        res = lgb.cv(params, lgb.Dataset(X, y), 4, nfold=3, callbacks=[lgb.log_evaluation(2)])
        record({k: list(v) for k, v in res.items()})
    """)
    assert [step for step, _ in rows] == [2, 4]
    for step, metrics in rows:
        assert set(metrics) == {"valid_auc", "valid_auc_std"}
        assert abs(metrics["valid_auc"] - result["valid auc-mean"][step - 1]) <= 1e-5
        assert abs(metrics["valid_auc_std"] - result["valid auc-stdv"][step - 1]) <= 1e-5


@pytest.mark.parametrize("verbose", ["1", "2"])
def test_keras3_fit_gives_each_epochs_history_with_the_epoch_as_step(tmp_path, verbose):
    for name in ("keras", "jax"):  # not imported here: Keras would pick its default TensorFlow backend
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed")
    rows, history = run_library(tmp_path, """
        import sys
        import keras
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        history = model.fit(X, y, epochs=3, batch_size=32, validation_split=0.25, verbose=int(sys.argv[1]))
        record(history.history)
    """, verbose)
    raw = (tmp_path / "out.log").read_bytes()
    if verbose == "1":  # the real bar: redrawn with \r and backspaces, coloured with ANSI codes
        assert b"\r" in raw and b"\x1b[" in raw
    # verbose=1 draws an epoch's last bar before validation, then redraws it with the val_ metrics
    epochs: dict[int, dict] = {}
    for step, metrics in rows:
        assert not set(metrics) & set(epochs.setdefault(step, {})), (step, metrics)  # each value taken once
        epochs[step].update(metrics)
    assert list(epochs) == [1, 2, 3]
    for step, metrics in epochs.items():
        assert set(metrics) == set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert all(near(metrics[k], history[k][step - 1], 4) for k in history), (step, metrics, history)
