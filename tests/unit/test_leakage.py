"""assay check finds leakage between the training and evaluation splits by data flow over the code:
each rule on a small script, clean look-alikes left alone, and precision/recall on the labelled corpus."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from assay.checks.leakage import KINDS, MULTI_TEST, OVERLAP, PREPROCESSING
from assay.checks.repro import check_file
from tests.leakage_corpus import cases, expected, found, score

HEAD = """\
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split, cross_val_score, GridSearchCV, KFold
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
df = pd.read_csv("data.csv")
X, y = df.drop(columns="y"), df["y"]
"""  # 9 lines: the cases below start at line 10


def leaks(tmp_path: Path, body: str, name: str = "train.py") -> list[tuple[str, int]]:
    p = tmp_path / name
    p.write_text(HEAD + textwrap.dedent(body).lstrip())
    return [(f.code, f.line) for f in check_file(p).findings if f.code in KINDS]


def the_finding(tmp_path: Path, body: str):
    p = tmp_path / "train.py"
    p.write_text(HEAD + textwrap.dedent(body).lstrip())
    [f] = [f for f in check_file(p).findings if f.code in KINDS]
    return f


# -- preprocessing-leakage ------------------------------------------------------------------------

def test_scaler_fitted_before_the_split_is_reported_at_the_fit_with_why_and_fix(tmp_path):
    f = the_finding(tmp_path, """
        Xs = StandardScaler().fit_transform(X)
        X_train, X_test, y_train, y_test = train_test_split(Xs, y, random_state=0)
        LogisticRegression().fit(X_train, y_train).score(X_test, y_test)
        """)
    assert (f.code, f.where) == (PREPROCESSING, "train.py:10")
    assert "StandardScaler().fit_transform(X)" in f.message and "train_test_split" in f.message
    assert "Pipeline" in f.fix or "make_pipeline" in f.fix
    assert "optimistic" in f.why


def test_transform_fitted_on_all_rows_then_applied_to_the_test_split(tmp_path):
    assert leaks(tmp_path, """
        scaler = StandardScaler().fit(X)
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
        X_test = scaler.transform(X_test)
        """) == [(PREPROCESSING, 10)]


def test_scaler_fitted_on_the_training_split_is_clean(tmp_path):
    assert leaks(tmp_path, """
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
        scaler = StandardScaler().fit(X_train)
        model = LogisticRegression().fit(scaler.transform(X_train), y_train)
        print(model.score(scaler.transform(X_test), y_test))
        """) == []


def test_pandas_mean_used_to_fill_before_the_split_but_not_the_training_mean(tmp_path):
    assert leaks(tmp_path, """
        df["a"] = df["a"].fillna(df["a"].mean())
        df["b"].fillna(df["b"].median(), inplace=True)
        train, test = train_test_split(df, random_state=0)
        """) == [(PREPROCESSING, 10), (PREPROCESSING, 11)]
    assert leaks(tmp_path, """
        train, test = train_test_split(df, random_state=0)
        test = test.fillna(train.mean())
        """) == []


def test_feature_selection_before_cross_validation_but_not_inside_a_pipeline(tmp_path):
    assert leaks(tmp_path, """
        from sklearn.feature_selection import SelectKBest
        Xk = SelectKBest(k=10).fit_transform(X, y)
        print(cross_val_score(LogisticRegression(), Xk, y, cv=5).mean())
        """) == [(PREPROCESSING, 11)]
    assert leaks(tmp_path, """
        from sklearn.feature_selection import SelectKBest
        print(cross_val_score(make_pipeline(SelectKBest(k=10), LogisticRegression()), X, y, cv=5).mean())
        """) == []


def test_transform_fitted_on_the_test_split_itself(tmp_path):
    assert leaks(tmp_path, """
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
        scaler = StandardScaler()
        X_test = scaler.fit_transform(X_test)
        """) == [(PREPROCESSING, 12)]


def test_rows_updated_in_place_or_sliced_for_other_reasons_are_no_split(tmp_path):
    assert leaks(tmp_path, """
        A = np.random.default_rng(0).normal(size=(100, 3))
        A[10:20] += 5
        A = (A - A.mean(axis=0)) / A.std(axis=0)
        head = A[5:]
        pca_input = StandardScaler().fit_transform(A)
        """) == []


def test_preprocessing_inside_a_helper_function_is_followed(tmp_path):
    assert leaks(tmp_path, """
        def prepare(frame):
            return StandardScaler().fit_transform(frame)
        X_train, X_test, y_train, y_test = train_test_split(prepare(X), y, random_state=0)
        """) == [(PREPROCESSING, 11)]


# -- overlap-leakage --------------------------------------------------------------------------------

def test_model_fitted_on_all_rows_and_scored_on_the_test_split(tmp_path):
    f = the_finding(tmp_path, """
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
        model = LogisticRegression().fit(X, y)
        print(accuracy_score(y_test, model.predict(X_test)))
        """)
    assert (f.code, f.line) == (OVERLAP, 11)
    assert "LogisticRegression().fit(X, y)" in f.message and "model.predict(X_test)" in f.message
    assert "X_train" in f.fix


def test_smote_before_the_split_is_overlap_at_the_resample_and_after_the_split_is_clean(tmp_path):
    leaky = """
        from imblearn.over_sampling import SMOTE
        Xr, yr = SMOTE(random_state=0).fit_resample(X, y)
        X_train, X_test, y_train, y_test = train_test_split(Xr, yr, random_state=0)
        print(LogisticRegression().fit(X_train, y_train).score(X_test, y_test))
        """
    assert leaks(tmp_path, leaky) == [(OVERLAP, 11)]
    assert leaks(tmp_path, """
        from imblearn.over_sampling import SMOTE
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
        Xr, yr = SMOTE(random_state=0).fit_resample(X_train, y_train)
        print(LogisticRegression().fit(Xr, yr).score(X_test, y_test))
        """) == []


def test_overlapping_row_slices_but_not_adjacent_ones(tmp_path):
    body = """
        A = np.load("a.npy")
        model = LogisticRegression().fit(A[:800], y[:800])
        print(model.score(A[{start}:], y[{start}:]))
        """
    assert leaks(tmp_path, body.format(start=600)) == [(OVERLAP, 11)]
    assert leaks(tmp_path, body.format(start=800)) == []


def test_scoring_the_rows_a_model_was_fitted_on(tmp_path):
    assert leaks(tmp_path, """
        clf = LogisticRegression()
        clf.fit(X, y)
        print(clf.score(X, y))
        """) == [(OVERLAP, 12)]


def test_kfold_loop_scores_each_fold_on_rows_it_did_not_fit(tmp_path):
    assert leaks(tmp_path, """
        A = X.values
        scores = []
        for tr, te in KFold(5, shuffle=True, random_state=0).split(A):
            m = LogisticRegression().fit(A[tr], y.values[tr])
            scores.append(m.score(A[te], y.values[te]))
        print(np.mean(scores), max(scores))
        """) == []


def test_torch_model_trained_on_all_rows_then_evaluated_on_a_random_split(tmp_path):
    body = """
        import torch
        from torch.utils.data import DataLoader, TensorDataset, random_split
        ds = TensorDataset(torch.load("x.pt"), torch.load("y.pt"))
        train_ds, val_ds = random_split(ds, [800, 200])
        model = torch.nn.Linear(4, 2)
        for xb, yb in DataLoader({train}):
            torch.nn.functional.cross_entropy(model(xb), yb).backward()
        with torch.no_grad():
            for xb, yb in DataLoader(val_ds):
                print((model(xb).argmax(1) == yb).float().mean())
        """
    assert leaks(tmp_path, body.format(train="ds")) == [(OVERLAP, 16)]
    assert leaks(tmp_path, body.format(train="train_ds")) == []


# -- multi-test-leakage -----------------------------------------------------------------------------

def test_loop_over_candidates_scored_on_the_test_split_then_argmax(tmp_path):
    f = the_finding(tmp_path, """
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
        accs = []
        for c in [0.1, 1, 10]:
            m = LogisticRegression(C=c).fit(X_train, y_train)
            accs.append(accuracy_score(y_test, m.predict(X_test)))
        best = [0.1, 1, 10][int(np.argmax(accs))]
        """)
    assert (f.code, f.line) == (MULTI_TEST, 14)
    assert "line 15" in f.message and "test split" in f.fix


def test_selection_on_a_validation_split_then_one_test_score_is_clean(tmp_path):
    assert leaks(tmp_path, """
        X_rest, X_test, y_rest, y_test = train_test_split(X, y, random_state=0)
        X_train, X_val, y_train, y_val = train_test_split(X_rest, y_rest, random_state=0)
        best, best_c = -1, None
        for c in [0.1, 1, 10]:
            acc = LogisticRegression(C=c).fit(X_train, y_train).score(X_val, y_val)
            if acc > best:
                best, best_c = acc, c
        print(LogisticRegression(C=best_c).fit(X_rest, y_rest).score(X_test, y_test))
        """) == []


def test_a_table_of_test_scores_without_picking_the_best_is_clean(tmp_path):
    assert leaks(tmp_path, """
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
        for c in [0.1, 1, 10]:
            print(c, LogisticRegression(C=c).fit(X_train, y_train).score(X_test, y_test))
        """) == []


def test_grid_search_fitted_on_the_test_split_or_scored_on_its_own_data(tmp_path):
    assert leaks(tmp_path, """
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
        gs = GridSearchCV(LogisticRegression(), {"C": [0.1, 1]}).fit(X_test, y_test)
        print(LogisticRegression(**gs.best_params_).fit(X_train, y_train).score(X_test, y_test))
        """) == [(MULTI_TEST, 12)]
    assert leaks(tmp_path, """
        gs = GridSearchCV(LogisticRegression(), {"C": [0.1, 1]})
        gs.fit(X, y)
        print(gs.score(X, y))
        """) == [(MULTI_TEST, 12)]
    assert leaks(tmp_path, """
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
        gs = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression()), {"logisticregression__C": [1]})
        print(gs.fit(X_train, y_train).score(X_test, y_test))
        """) == []


def test_keras_early_stopping_on_the_test_split_that_is_then_reported(tmp_path):
    body = """
        from tensorflow import keras
        X_rest, X_test, y_rest, y_test = train_test_split(X, y, random_state=0)
        X_train, X_val, y_train, y_val = train_test_split(X_rest, y_rest, random_state=0)
        model = keras.Sequential([keras.layers.Dense(1)])
        model.fit(X_train, y_train, validation_data=({val}), callbacks=[keras.callbacks.EarlyStopping()])
        print(model.evaluate(X_test, y_test))
        """
    assert leaks(tmp_path, body.format(val="X_test, y_test")) == [(MULTI_TEST, 14)]
    assert leaks(tmp_path, body.format(val="X_val, y_val")) == []


# -- notebooks, the CLI contract, the corpus -------------------------------------------------------

def test_notebook_finding_names_its_cell_and_line(tmp_path):
    cells = [HEAD, "# notes", "Xs = StandardScaler().fit_transform(X)\n",
             "X_train, X_test, y_train, y_test = train_test_split(Xs, y)\n"]
    nb = {"cells": [{"cell_type": "markdown" if c == "# notes" else "code", "metadata": {}, "outputs": [],
                     "source": c.splitlines(keepends=True)} for c in cells], "metadata": {}, "nbformat": 4,
          "nbformat_minor": 5}
    (tmp_path / "explore.ipynb").write_text(json.dumps(nb))
    res = check_file(tmp_path / "explore.ipynb")
    assert [(f.code, f.where) for f in res.findings if f.code in KINDS] == [(PREPROCESSING, "explore.ipynb cell 3:1")]


def test_every_corpus_case_is_labelled_and_the_corpus_covers_each_kind():
    files = cases()
    labels = {p: expected(p) for p in files}
    assert len(files) >= 40
    assert sum(p.suffix == ".ipynb" for p in files) >= 4
    for kind in KINDS:
        assert sum(kind in e for e in labels.values()) >= 8, kind
    assert sum(not e for e in labels.values()) >= 18


def test_precision_and_recall_on_the_corpus_are_at_least_0_9_for_each_kind(capsys):
    results = {p: (expected(p), found(p)) for p in cases()}
    scores = score(results)
    lines = [f"leakage corpus: {len(results)} cases",
             f"{'kind':<24}{'labelled':>9}{'precision':>11}{'recall':>8}"]
    lines += [f"{s.kind:<24}{s.labelled:>9}{s.precision:>11.2f}{s.recall:>8.2f}" for s in scores]
    missed = [f"  {p.name}: expected {sorted(e) or 'clean'}, found {sorted(f) or 'nothing'}"
              for p, (e, f) in results.items() if e != f]
    with capsys.disabled():  # the figures belong in CI's log
        print("\n" + "\n".join(lines + missed))
    for s in scores:
        assert s.precision >= 0.9 and s.recall >= 0.9, (s, missed)
