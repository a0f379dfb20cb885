"""Digits (bundled with scikit-learn): a linear SGD classifier, one epoch at a time.

Params arrive through assay.params() (config.yaml + command-line overrides); per-epoch metrics
go through assay.log(); the final `val_f1: ...` line is also what any grep-based tool reads.
"""

import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, f1_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import assay

p = assay.params()
run = assay.init()

X, y = load_digits(return_X_y=True)
X_tr, X_val, y_tr, y_val = train_test_split(X, y, test_size=p["val_fraction"], random_state=0, stratify=y)
scaler = StandardScaler().fit(X_tr)
X_tr, X_val = scaler.transform(X_tr), scaler.transform(X_val)

clf = SGDClassifier(loss=p["loss"], alpha=p["alpha"], random_state=p["seed"])
classes = np.unique(y)
rng = np.random.default_rng(p["seed"])
for epoch in range(p["epochs"]):
    order = rng.permutation(len(X_tr))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.partial_fit(X_tr[order], y_tr[order], classes=classes)
    pred = clf.predict(X_val)
    metrics = {"val_f1": f1_score(y_val, pred, average="macro"), "val_acc": accuracy_score(y_val, pred)}
    if hasattr(clf, "predict_proba") and p["loss"] != "hinge":
        metrics["train_loss"] = log_loss(y_tr, clf.predict_proba(X_tr), labels=classes)
    assay.log(metrics, step=epoch)
    print(f"epoch {epoch}: val_f1={metrics['val_f1']:.4f}")

print("---")
print(f"val_f1: {metrics['val_f1']:.4f}")
