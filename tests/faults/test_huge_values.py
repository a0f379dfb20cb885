"""Integers past SQLite's 64-bit range never break a run or the index, and one bad record never blocks reindex."""

from __future__ import annotations

import json
import math

import pytest

HUGE_SEED = 99999999999999999999999


def test_a_seed_past_64_bits_runs_and_is_recorded_exactly(lab, make_experiment, cli):
    make_experiment("import assay\nassay.log({'val_bpb': 0.5}, step=0)\n", config={"seed": 0})
    out = cli("run", "exp", "huge", f"seed={HUGE_SEED}")
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    folder = next((lab.experiment_dir("exp") / "runs").iterdir())
    assert json.loads((folder / "run.json").read_text())["params"]["seed"] == HUGE_SEED  # the record is exact

    listed = cli("runs", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)["runs"]
    assert row["status"] == "ok" and row["seed"] == pytest.approx(float(HUGE_SEED))  # the index holds it as REAL
    assert cli("reindex").returncode == 0
    assert cli("runs", "exp", "--limit", "0").returncode == 0


def test_steps_and_values_past_64_bits_and_past_float_range_are_indexed(lab, make_experiment, cli):
    make_experiment("""
        import assay
        assay.log({"val_bpb": 0.5}, step=10**30)
        assay.log({"val_bpb": 0.4, "huge": 10**400})
        """)
    out = cli("run", "exp", "steps")
    assert out.returncode == 0, out.stdout + out.stderr
    shown = json.loads(cli("runs", "--json").stdout)["runs"][0]
    assert shown["metrics"]["val_bpb"]["last"] == 0.4
    assert math.isinf(float(shown["metrics"]["huge"]["last"]))
    record = json.loads(next((lab.experiment_dir("exp") / "runs").iterdir()).joinpath("run.json").read_text())
    assert record["metrics"]["val_bpb"]["last_step"] == 10**30 + 1  # exact in the run's own files


def test_reindex_skips_a_record_it_cannot_store_and_indexes_the_rest(lab, make_experiment, cli):
    make_experiment("import assay\nassay.log({'val_bpb': 0.5}, step=0)\n")
    for desc in ("a", "b"):
        assert cli("run", "exp", desc).returncode == 0
    bad = sorted((lab.experiment_dir("exp") / "runs").iterdir())[0]
    record = json.loads((bad / "run.json").read_text())
    record["id"] = {"not": "a string"}  # a hand-edited record no index column can hold
    (bad / "run.json").write_text(json.dumps(record))

    out = cli("reindex", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["runs"] == 1
    assert [p["path"] for p in res["problems"]] == [str(bad)]
    assert "left out of the index" in res["problems"][0]["error"]
    assert len(json.loads(cli("runs", "--json").stdout)["runs"]) == 1


def test_a_step_that_is_not_a_whole_number_is_a_clear_error_in_the_script(tmp_path):
    from assay.tracking import Run

    run = Run(tmp_path, attached=True, params={}, lab_root=None)
    for bad in (float("nan"), float("inf"), "x"):
        with pytest.raises(ValueError, match="step must be a whole number"):
            run.log({"a": 1.0}, step=bad)
    run.log({"a": 1.0}, step=3.0)  # a float that is whole is fine
    run.finish()
    assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 3
