"""Unmodified scripts whose metrics come from what they already print (capture presets), run
with `assay run` as a real subprocess."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from assay.config import dump_yaml, load_yaml

# The shape of scikit-learn's "Recognizing hand-written digits" gallery example: a fitted
# estimator's repr, an accuracy line, and a classification report.
GALLERY = """
from sklearn import datasets, metrics, svm
from sklearn.model_selection import train_test_split

digits = datasets.load_digits()
X = digits.images.reshape((len(digits.images), -1))
X_train, X_test, y_train, y_test = train_test_split(X, digits.target, test_size=0.5, shuffle=False)
clf = svm.SVC(C=10, gamma=0.001)
print(clf)
clf.fit(X_train, y_train)
predicted = clf.predict(X_test)
print(f"Accuracy: {metrics.accuracy_score(y_test, predicted):.3f}")
print(f"Classification report for classifier {clf}:\\n{metrics.classification_report(y_test, predicted)}\\n")
"""


def _record(lab, desc: str) -> dict:
    (run_dir,) = [p for p in (lab.experiment_dir("exp") / "runs").iterdir() if desc in p.name]
    return json.loads((run_dir / "run.json").read_text())


def test_sklearn_gallery_script_run_with_entry_ends_ok_with_accuracy_and_no_hyperparameters(lab, make_experiment, cli):
    pytest.importorskip("sklearn")
    make_experiment("print('placeholder')\n", metric="accuracy", goal="max")
    (lab.experiment_dir("exp") / "plot_digits.py").write_text(GALLERY)
    out = cli("run", "exp", "gallery", "--entry", "plot_digits.py")
    assert out.returncode == 0, out.stdout + out.stderr
    metrics = _record(lab, "gallery")["metrics"]
    assert 0.9 < metrics["accuracy"]["last"] <= 1.0
    assert {"macro_avg_f1", "weighted_avg_precision", "Accuracy"} <= set(metrics)
    assert not {"C", "gamma"} & set(metrics)


def test_a_missing_primary_metric_names_what_was_seen_and_the_capture_line_that_takes_it(lab, make_experiment, cli):
    make_experiment("print('Accuracy=0.97')\nprint('done')\n", metric="accuracy", goal="max")
    out = cli("run", "exp", "first")
    assert out.returncode == 1
    reason = _record(lab, "first")["reason"]
    assert "saw Accuracy=0.97" in reason and "did you mean Accuracy?" in reason, reason
    line = re.search(r"`(capture: .*)`", reason).group(1)
    # the suggested line, pasted into experiment.yaml as it is, makes the next run ok
    file = lab.experiment_dir("exp") / "experiment.yaml"
    data = load_yaml(file)
    data.update(yaml.safe_load(line))
    file.write_text(dump_yaml(data))
    out = cli("run", "exp", "second")
    assert out.returncode == 0, out.stdout + out.stderr
    assert _record(lab, "second")["metrics"]["accuracy"]["last"] == 0.97
