"""Run identity: a configuration is (entry point, code version, params); views never pool two code versions."""

from __future__ import annotations

import json

from tests.conftest import git

SCRIPT = """\
import os
SHIFT = 0.0
seed = int(os.environ["ASSAY_SEED"])
print("acc:", 0.80 + SHIFT + 0.01 * seed)
"""


def _setup(lab, make_experiment):
    exp = make_experiment(SCRIPT, config={"seed": 0, "lr": 0.1}, metric="acc", goal="max",
                          success="acc >= 0.5")
    git(lab.root, "init", "-q", "-b", "main")
    git(lab.root, "add", "-A")
    git(lab.root, "commit", "-qm", "v1")
    return exp


def test_two_code_versions_with_the_same_params_and_seeds_are_two_configurations(lab, make_experiment, cli):
    from assay.report.verdict import verdict
    from assay.store.query import compare

    exp = _setup(lab, make_experiment)
    assert cli("run", "exp", "v1", "--repeat", "2").returncode == 0
    # A hand edit between runs, not committed: a dirty tree is another code version.
    (exp.path / "train.py").write_text(SCRIPT.replace("SHIFT = 0.0", "SHIFT = 0.1"))
    assert cli("run", "exp", "v2", "--repeat", "2").returncode == 0
    # A note is not code: writing the journal does not make a third version.
    assert cli("note", "exp", "a note between runs").returncode == 0
    assert cli("run", "exp", "v2-again", "seed=5").returncode == 0

    records = [json.loads(p.read_text()) for p in sorted((exp.path / "runs").glob("*/run.json"))]
    prints = {r["desc"]: r["code"]["fingerprint"] for r in records}
    assert prints["v1-seed0"] == prints["v1-seed1"] != prints["v2-seed0"] == prints["v2-again"]
    assert not records[0]["code"]["dirty"] and records[-1]["code"]["dirty"]

    cmp = compare(lab, "exp")
    assert [(r["n"], round(r["mean"], 3)) for r in cmp["rows"]] in ([(2, 0.805), (3, 0.92)], [(3, 0.92), (2, 0.805)])
    assert len({r["code"] for r in cmp["rows"]}) == 2 and all("*" in r["code"] or len(r["code"]) == 7 for r in cmp["rows"])
    table = cli("compare", "exp").stdout
    assert "code" in table.splitlines()[1] and "*" in table
    pooled = compare(lab, "exp", pool_code=True)
    assert len(pooled["rows"]) == 1 and pooled["rows"][0]["n"] == 5

    v = verdict(lab, "exp")
    assert len(v.configurations) == 2 and sorted(len(c.runs) for c in v.configurations) == [2, 3]
    assert all(c.label.startswith("code=") for c in v.configurations)

    assert cli("report", "exp").returncode == 0
    report = (exp.path / "REPORT.md").read_text()
    for c in v.configurations:
        assert c.label in report

    from assay.web import data

    detail = data.experiment_detail(lab, "exp")
    assert detail["configurations"]["rows"] == json.loads(json.dumps(cmp["rows"]))
    row = next(e for e in data.experiments(lab) if e["name"] == "exp")
    best = cmp["rows"][cmp["best"]]
    assert row["best"] == best["mean"] and row["best_n"] == 3 and row["value"] == "last"


def test_a_repeated_seed_counts_once_in_compare_and_verdict(lab, make_experiment, cli):
    from assay.report.verdict import verdict
    from assay.store.query import compare

    _setup(lab, make_experiment)
    for _ in range(2):
        assert cli("run", "exp", "base", "--repeat", "3").returncode == 0
    cmp = compare(lab, "exp", ["lr"])
    assert cmp["rows"][0]["n"] == 3
    v = verdict(lab, "exp")
    assert len(v.configurations[0].runs) == 3
    stats = v.configurations[0].judged[0].stats
    assert stats["n"] == 3 and abs(stats["mean"] - cmp["rows"][0]["mean"]) < 1e-12


def test_another_entry_point_is_another_configuration_and_the_hint_reruns_it(lab, make_experiment, cli):
    from assay.report.verdict import verdict

    exp = _setup(lab, make_experiment)
    (exp.path / "other.py").write_text(SCRIPT.replace("SHIFT = 0.0", "SHIFT = -0.5"))
    git(lab.root, "add", "-A")
    git(lab.root, "commit", "-qm", "other")
    assert cli("run", "exp", "other", "--entry", "other.py", "lr=0.5").returncode == 0
    assert cli("run", "exp", "main", "lr=0.5").returncode == 0
    v = verdict(lab, "exp")
    assert {c.label for c in v.configurations} == {"entry=train.py", "entry=other.py"}
    # Each configuration has one run and no repeats anywhere: the hint must extend the one it names,
    # with its entry point and its override, not the experiment's default script.
    assert v.verdict == "inconclusive" and v.hint is not None
    assert v.hint.endswith("assay run exp repeats --entry other.py lr=0.5 seed=1 --repeat 3"), v.hint


def test_the_hint_says_when_the_code_changed_since_the_runs(lab, make_experiment, cli):
    from assay.report.verdict import verdict

    exp = _setup(lab, make_experiment)
    assert cli("run", "exp", "one").returncode == 0
    (exp.path / "train.py").write_text(SCRIPT.replace("SHIFT = 0.0", "SHIFT = 0.05"))
    v = verdict(lab, "exp")
    assert v.hint is not None and "the code has changed since" in v.hint and "assay rerun exp/" in v.hint
    git(lab.root, "checkout", "--", ".")
    v = verdict(lab, "exp")
    assert "the code has changed" not in (v.hint or "")
