"""Leakage between data splits (csv or parquet, read with pandas/pyarrow, imported only here).

- exact overlap: identical rows (all shared columns but the key) in two splits;
- key overlap: the same entity id in two splits;
- temporal order: evaluation rows earlier than the latest training row;
- near-perfect single-feature predictors of the target, scored out of sample (fit on train, score on
  val): a feature that alone predicts the label is usually the label in disguise;
- drift per column between train and the other splits (KS for numbers, total variation for categories).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.checks.finding import Finding
from assay.errors import ConfigError, did_you_mean

PERFECT = 0.98  # single-feature accuracy (or R^2) on val at or above this is flagged
DRIFT_KS, DRIFT_TVD, DRIFT_P = 0.1, 0.1, 0.01
BINS = 20


@dataclass
class DataReport:
    splits: dict[str, dict[str, Any]]
    findings: list[Finding] = field(default_factory=list)
    predictors: list[dict[str, Any]] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"splits": self.splits, "findings": [f.to_dict() for f in self.findings],
                "predictors": self.predictors, "drift": self.drift}


def load_table(path: Path) -> Any:
    """A DataFrame from .csv/.tsv/.parquet, with errors naming the file and the fix."""
    import pandas as pd

    if not path.is_file():
        raise ConfigError(f"Data file {path} does not exist", "Pass existing csv or parquet files: assay check-data train.csv val.csv")
    suffix = "".join(path.suffixes[-2:]).lower()
    try:
        if suffix.endswith((".csv", ".csv.gz")):
            return pd.read_csv(path)
        if suffix.endswith((".tsv", ".tsv.gz")):
            return pd.read_csv(path, sep="\t")
        if suffix.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
    except (ValueError, OSError, ImportError) as exc:
        raise ConfigError(f"Cannot read {path}: {exc}", "Check the file is a valid csv/parquet (parquet needs pyarrow).") from None
    raise ConfigError(f"Unsupported data file {path} (known: .csv, .tsv, .parquet)", "Convert it to csv or parquet.")


def _need(df: Any, col: str | None, option: str, split: str, path: Path) -> None:
    if col is not None and col not in df.columns:
        cols = [str(c) for c in df.columns]
        raise ConfigError(f"Column '{col}' (from {option}) is not in {split} {path} (columns: {', '.join(cols[:20])})."
                          + did_you_mean(col, cols), f"Pass {option} with one of the columns above.")


def check_data(train: Path, val: Path, test: Path | None = None, key: str | None = None, time: str | None = None,
               target: str | None = None) -> DataReport:
    """Compare splits for leakage. Raises ConfigError for unreadable files or unknown columns."""
    paths = {"train": train, "val": val, **({"test": test} if test else {})}
    frames = {name: load_table(p) for name, p in paths.items()}
    for name, df in frames.items():
        for col, opt in ((key, "--key"), (time, "--time"), (target, "--target")):
            _need(df, col, opt, name, paths[name])
    rep = DataReport({n: {"path": str(p), "rows": len(frames[n]), "columns": len(frames[n].columns)} for n, p in paths.items()})
    names = list(frames)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            rep.findings += _overlap(frames[a], frames[b], a, b, paths, key)
            if time:
                rep.findings += _temporal(frames[a], frames[b], a, b, paths, time)
    if target:
        rep.predictors = _predictors(frames["train"], frames["val"], target, {key, time, target})
        for p in rep.predictors:
            if p["flagged"]:
                rep.findings.append(Finding(
                    "leaky-feature", str(paths["val"]), 0,
                    f"'{p['column']}' alone predicts '{target}' on val with {p['metric']} {p['score']:.3f} (baseline {p['baseline']:.3f})",
                    "A single feature that (almost) determines the label is usually derived from it, or unavailable at prediction time.",
                    f"Check how '{p['column']}' is computed; drop it if it uses the label or the future."))
    for other in names[1:]:
        for d in _drift(frames["train"], frames[other], {key, time}):
            d["split"] = other
            rep.drift.append(d)
            if d["drifted"]:
                rep.findings.append(Finding(
                    "drift", str(paths[other]), 0,
                    f"'{d['column']}' is distributed differently in {other} than in train ({d['test']} {d['statistic']:.3f})",
                    "The model is evaluated on data unlike what it learned from; the score will not transfer, or the split is not random.",
                    "Check how the split was made (stratify or split by time on purpose) and whether the column changed meaning."))
    return rep


def _overlap(a: Any, b: Any, an: str, bn: str, paths: dict[str, Path], key: str | None) -> list[Finding]:
    import pandas as pd

    out = []
    cols = [c for c in a.columns if c in b.columns and c != key]
    if cols:
        ha = set(pd.util.hash_pandas_object(a[cols], index=False).tolist())
        hb = pd.util.hash_pandas_object(b[cols], index=False)
        dup = [i for i, h in enumerate(hb.tolist()) if h in ha]
        if dup:
            rows = ", ".join(str(i + 2) for i in dup[:5])  # csv line numbers (header is line 1)
            out.append(Finding("exact-overlap", str(paths[bn]), dup[0] + 2,
                               f"{len(dup)} of {len(b)} {bn} rows ({len(dup) / max(1, len(b)):.1%}) also appear in {an} (lines {rows}{' ...' if len(dup) > 5 else ''})",
                               f"Rows seen in training make the {bn} score optimistic: the model is graded on answers it memorised.",
                               f"Deduplicate before splitting, then drop from {bn} every row present in {an}."))
    if key:
        shared = set(a[key].dropna().tolist()) & set(b[key].dropna().tolist())
        if shared:
            sample = ", ".join(map(str, sorted(shared, key=str)[:5]))
            out.append(Finding("key-overlap", str(paths[bn]), 0,
                               f"{len(shared)} '{key}' values are in both {an} and {bn} (e.g. {sample})",
                               f"The same entity on both sides lets the model recognise it rather than generalise; {bn} overstates.",
                               f"Split by '{key}' (e.g. sklearn GroupShuffleSplit(groups=df['{key}'])) so each entity is in one split."))
    return out


def _as_time(s: Any) -> Any:
    import pandas as pd

    if pd.api.types.is_numeric_dtype(s):
        return s
    return pd.to_datetime(s, errors="coerce", utc=True)  # csv strings and parquet timestamps compare alike


def _temporal(a: Any, b: Any, an: str, bn: str, paths: dict[str, Path], time: str) -> list[Finding]:
    ta, tb = _as_time(a[time]).dropna(), _as_time(b[time])
    if ta.empty:
        return []
    latest = ta.max()
    early = int((tb < latest).sum())
    if not early:
        return []
    return [Finding("temporal-order", str(paths[bn]), 0,
                    f"{early} of {len(b)} {bn} rows are earlier than the latest {an} row ('{time}' {an} max {latest}, {bn} min {tb.min()})",
                    f"Training on later data than some of {bn} leaks the future into the past: the score will not hold in deployment.",
                    f"Split by time: every {an} row before every {bn} row (sort by '{time}' and cut).")]


def _nearest(x_tr: Any, y_tr: Any, x_va: Any) -> Any:
    """1-nearest-neighbour on one numeric feature: the label of the closest train value."""
    import numpy as np
    import pandas as pd

    keep = x_tr.notna().to_numpy()
    xs, ys = x_tr.to_numpy(float)[keep], y_tr.to_numpy()[keep]
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    q = x_va.to_numpy(float)
    i = np.clip(np.searchsorted(xs, q), 1, len(xs) - 1)
    left_closer = np.abs(q - xs[i - 1]) <= np.abs(xs[i] - q)
    out = pd.Series(np.where(left_closer, ys[i - 1], ys[i]), index=x_va.index)
    return out.where(~np.isnan(q))


def _predict(x_tr: Any, y_tr: Any, x_va: Any, classify: bool) -> Any:
    """Out-of-sample prediction of y from one feature: 1-NN for many-valued numbers, a lookup table otherwise."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(x_tr) and x_tr.nunique() > BINS and x_tr.notna().sum() >= 2:
        return _nearest(x_tr, y_tr, x_va)
    frame = pd.DataFrame({"x": x_tr.astype(str), "y": y_tr})
    table = frame.groupby("x")["y"].agg(lambda s: s.value_counts().index[0]) if classify else frame.groupby("x")["y"].mean()
    return x_va.astype(str).map(table)


def _predictors(train: Any, val: Any, target: str, skip: set[str | None]) -> list[dict[str, Any]]:
    import pandas as pd

    y_tr, y_va = train[target], val[target]
    classify = not pd.api.types.is_numeric_dtype(y_tr) or y_tr.nunique() <= BINS
    if classify:
        y_tr, y_va = y_tr.astype(str), y_va.astype(str)
    else:
        y_tr, y_va = y_tr.astype(float), y_va.astype(float)
    out: list[dict[str, Any]] = []
    for col in [c for c in train.columns if c not in skip and c in val.columns]:
        pred = _predict(train[col], y_tr, val[col], classify)
        if classify:
            fallback = y_tr.value_counts().index[0]
            score = float((pred.fillna(fallback) == y_va).mean())
            baseline, metric = float((y_va == fallback).mean()), "accuracy"
        else:
            resid = ((y_va - pred.fillna(float(y_tr.mean()))) ** 2).sum()
            total = ((y_va - y_va.mean()) ** 2).sum()
            score, baseline, metric = (float(1 - resid / total) if total else 0.0), 0.0, "R^2"
        flagged = score >= PERFECT and score > baseline + 0.05
        out.append({"column": str(col), "metric": metric, "score": score, "baseline": baseline, "flagged": bool(flagged)})
    out.sort(key=lambda p: -p["score"])
    return out


def ks(a: Any, b: Any) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and its asymptotic p-value."""
    import numpy as np

    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    n, m = len(a), len(b)
    if not n or not m:
        return 0.0, 1.0
    grid = np.concatenate([a, b])
    d = float(np.max(np.abs(np.searchsorted(a, grid, "right") / n - np.searchsorted(b, grid, "right") / m)))
    en = math.sqrt(n * m / (n + m))
    lam = (en + 0.12 + 0.11 / en) * d
    p = 2 * sum((-1) ** (j - 1) * math.exp(-2 * j * j * lam * lam) for j in range(1, 101))
    return d, float(min(1.0, max(0.0, p)))


def _drift(train: Any, other: Any, skip: set[str | None]) -> list[dict[str, Any]]:
    import pandas as pd

    out = []
    for col in [c for c in train.columns if c not in skip and c in other.columns]:
        a, b = train[col].dropna(), other[col].dropna()
        if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b) and a.nunique() > BINS:
            d, p = ks(a, b)
            out.append({"column": str(col), "test": "KS", "statistic": d, "p_value": p, "drifted": d >= DRIFT_KS and p < DRIFT_P})
        elif a.nunique() > len(a) / 2:  # ids, timestamps, free text: one value per row, no distribution to compare
            out.append({"column": str(col), "test": "skipped (unique per row)", "statistic": None, "p_value": None, "drifted": False})
        else:
            fa, fb = a.astype(str).value_counts(normalize=True), b.astype(str).value_counts(normalize=True)
            tvd = 0.5 * float(fa.subtract(fb, fill_value=0).abs().sum())
            out.append({"column": str(col), "test": "TVD", "statistic": tvd, "p_value": None, "drifted": tvd >= DRIFT_TVD})
    return out
