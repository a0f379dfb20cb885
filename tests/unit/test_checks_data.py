"""check-data on generated splits with known, planted leaks: each is found with its exact size, a clean split is clean."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from assay.checks.data import check_data, ks
from assay.errors import ConfigError


def splits(rng: np.random.Generator, n_tr: int = 400, n_va: int = 200) -> tuple[pd.DataFrame, pd.DataFrame]:
    def frame(n: int, start: int, t0: str) -> pd.DataFrame:
        x = rng.normal(size=n)
        y = (x + rng.normal(scale=1.0, size=n) > 0).astype(int)
        return pd.DataFrame({"id": np.arange(start, start + n), "ts": pd.date_range(t0, periods=n, freq="h"),
                             "x": x, "noise": rng.uniform(size=n), "color": rng.choice(["r", "g", "b"], size=n), "y": y})

    return frame(n_tr, 0, "2024-01-01"), frame(n_va, 10_000, "2024-03-01")


def codes(rep) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in rep.findings:
        out.setdefault(f.code, []).append(f)
    return out


def test_clean_time_ordered_split_has_no_findings(tmp_path):
    tr, va = splits(np.random.default_rng(0))
    tr.to_csv(tmp_path / "train.csv", index=False)
    va.to_parquet(tmp_path / "val.parquet")
    rep = check_data(tmp_path / "train.csv", tmp_path / "val.parquet", key="id", time="ts", target="y")
    assert rep.findings == [], [f.message for f in rep.findings]
    assert {d["column"] for d in rep.drift} == {"x", "noise", "color", "y"}
    assert rep.splits["val"]["rows"] == 200


def test_planted_leaks_are_found_with_their_sizes(tmp_path):
    rng = np.random.default_rng(1)
    tr, va = splits(rng)
    tr["label_copy"] = tr["y"] * 10 + rng.uniform(size=len(tr))  # derived from the label
    va["label_copy"] = va["y"] * 10 + rng.uniform(size=len(va))
    va["noise"] = va["noise"] + 0.5  # shifted distribution
    va.loc[:2, "id"] = tr["id"].iloc[100:103].to_numpy()  # 3 shared entities
    va.loc[10:16, "ts"] = pd.Timestamp("2024-01-02")  # 7 rows before the end of train
    va = pd.concat([va, tr.iloc[:5].assign(id=range(20_000, 20_005))], ignore_index=True)  # 5 copied rows, new ids
    tr.to_csv(tmp_path / "train.csv", index=False)
    va.to_csv(tmp_path / "val.csv", index=False)
    rep = check_data(tmp_path / "train.csv", tmp_path / "val.csv", key="id", time="ts", target="y")
    found = codes(rep)
    assert sorted(found) == ["drift", "exact-overlap", "key-overlap", "leaky-feature", "temporal-order"]
    assert found["exact-overlap"][0].message.startswith("5 of 205 val rows (2.4%) also appear in train (lines 202, ")
    assert found["key-overlap"][0].message.startswith("3 'id' values")
    assert found["temporal-order"][0].message.startswith("12 of 205 val rows")  # 7 moved + the 5 copies
    assert [f.message.split("'")[1] for f in found["leaky-feature"]] == ["label_copy"]
    assert [f.message.split("'")[1] for f in found["drift"]] == ["noise"]
    assert rep.predictors[0]["column"] == "label_copy" and rep.predictors[0]["score"] == pytest.approx(1.0)
    assert all(f.why and f.fix for f in rep.findings)


def test_exact_duplicate_rows_are_counted_with_line_numbers(tmp_path):
    tr, va = splits(np.random.default_rng(2))
    va = pd.concat([va.iloc[:50], tr.iloc[[7, 8, 9]].assign(id=[-1, -2, -3])], ignore_index=True)
    tr.to_csv(tmp_path / "train.csv", index=False)
    va.to_csv(tmp_path / "val.csv", index=False)
    (f,) = codes(check_data(tmp_path / "train.csv", tmp_path / "val.csv", key="id"))["exact-overlap"]
    assert f.message.startswith("3 of 53 val rows (5.7%) also appear in train (lines 52, 53, 54)") and f.line == 52


def test_cli_json_and_unknown_column_error(tmp_path, cli):
    tr, va = splits(np.random.default_rng(3))
    tr.to_csv(tmp_path / "train.csv", index=False)
    va.assign(id=va["id"] - 10_000).to_csv(tmp_path / "val.csv", index=False)
    out = cli("check-data", str(tmp_path / "train.csv"), str(tmp_path / "val.csv"), "--key", "id", "--json")
    assert out.returncode == 1
    assert [f["code"] for f in json.loads(out.stdout)["findings"]] == ["key-overlap"]
    with pytest.raises(ConfigError, match="Column 'colr'.*Did you mean 'color'"):
        check_data(tmp_path / "train.csv", tmp_path / "val.csv", target="colr")
    bad = cli("check-data", str(tmp_path / "train.csv"), str(tmp_path / "nope.csv"))
    assert bad.returncode == 2 and "nope.csv does not exist" in bad.stderr


def test_ks_matches_a_hand_computed_case():
    d, p = ks([1, 2, 3, 4], [3, 4, 5, 6])
    assert d == pytest.approx(0.5) and 0.3 < p < 1
    assert ks(np.zeros(500), np.ones(500))[1] < 1e-10
