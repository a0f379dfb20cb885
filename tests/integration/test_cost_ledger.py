"""The cost ledger on real runs: CPU time of the process tree, GPU-hours of the GPUs a run is given,
money at the lab's prices, a sweep's --max-cost, and the approval gate of `assay sweep`.

No GPU can run here: runs are *given* GPUs by a faked CUDA_VISIBLE_DEVICES (their scripts never
touch one), and the ledger's GPU-hours are wall time x that count, which is what is asserted.
"""

from __future__ import annotations

import json
import sqlite3

from assay.cost import Prices, Spend, mean_run, parse_limit, would_exceed
from assay.lab import find_lab
from assay.runner.launch import RunSpec, run_experiment
from assay.store.records import read_record

# Burns CPU in itself and in a child it waits for; prints the CPU time both used, as the OS counts it.
BURN = """\
import os, subprocess, sys
def burn(n):
    x = 0
    for i in range(n):
        x += i * i
    return x
burn(3_000_000)
subprocess.run([sys.executable, "-c", "x = sum(i * i for i in range(3_000_000))"], check=True)
t = os.times()
print("cpu_s:", t.user + t.system + t.children_user + t.children_system)
print("val_bpb: 1.0")
"""

SLEEP = """\
import time
import assay
X = assay.params().get("x")
time.sleep(0.6)
print("val_bpb: 1.0")
"""


def _set_lab(lab, **settings) -> object:
    """Write [lab] settings into assay.toml and read the lab again."""
    lines = [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    toml = lab.root / "assay.toml"
    toml.write_text(toml.read_text().replace("[lab]\n", "[lab]\n" + "\n".join(lines) + "\n", 1))
    return find_lab(lab.root)


def test_a_cpu_burning_run_records_its_process_trees_cpu_time(lab, make_experiment, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    make_experiment(BURN)
    [res] = run_experiment(lab, RunSpec("exp", "burn"))
    assert res.status == "ok", res.record.get("reason")
    measured = res.record["metrics"]["cpu_s"]["last"]
    cost = res.record["cost"]
    assert measured > 0.2
    # The ledger also counts the interpreter's exit after the script's last print: a little more, never less.
    assert measured * 0.95 <= cost["cpu_hours"] * 3600 <= measured + 0.5
    assert cost["gpu_hours"] == 0 and cost["gpu_count"] == 0  # no GPU given (and none on this machine)
    assert cost["money"] is None and cost["currency"] is None  # no price in assay.toml


def test_gpu_hours_are_wall_time_times_the_gpus_the_run_is_given(lab, make_experiment):
    make_experiment(SLEEP)
    [res] = run_experiment(lab, RunSpec("exp", "two-gpus", env={"CUDA_VISIBLE_DEVICES": "0,1"}))
    cost = read_record(res.path)["cost"]
    assert cost["gpu_count"] == 2
    assert abs(cost["gpu_hours"] - res.record["duration"] / 3600 * 2) < 1e-6


def test_money_is_priced_from_assay_toml_and_listed_by_runs_and_compare(lab, make_experiment, cli):
    lab = _set_lab(lab, cost_per_gpu_hour=3600.0, cost_per_cpu_hour=36.0, currency="EUR")
    make_experiment(BURN)
    [res] = run_experiment(lab, RunSpec("exp", "priced", env={"CUDA_VISIBLE_DEVICES": "3"}))
    cost = res.record["cost"]
    assert cost["currency"] == "EUR"
    assert cost["money"] > 0 and abs(cost["money"] - (cost["gpu_hours"] * 3600.0 + cost["cpu_hours"] * 36.0)) < 1e-4  # hours kept to 1e-9
    listed = json.loads(cli("runs", "--json").stdout)["runs"][0]["cost"]
    assert listed == {"cpu_hours": cost["cpu_hours"], "gpu_hours": cost["gpu_hours"], "money": cost["money"]}
    table = cli("runs", "--cost")
    assert table.returncode == 0 and "gpu_h" in table.stdout and "money" in table.stdout
    compared = json.loads(cli("compare", "exp", "--json").stdout)["rows"][0]["cost"]
    assert abs(compared["money"] - cost["money"]) < 1e-6
    assert "cpu_h" in cli("compare", "exp", "--cost").stdout


def test_max_cost_stops_a_sweep_before_its_next_trial_could_pass_the_limit(lab, make_experiment, cli):
    make_experiment(SLEEP, config={"seed": 0, "x": 1})
    limit = "0.0012gpu-h"  # ~4.3 GPU-seconds: about three to five trials of ~0.7-1.2 s on one GPU
    out = cli("sweep", "exp", "x=1,2,3,4,5,6,7,8,9,10,11,12", "--parallel", "1", "--max-cost", limit, "--json",
              env={"CUDA_VISIBLE_DEVICES": "0"})
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["status"] == "max_cost" and res["stopped"].startswith("max cost: ")
    ran = [t for t in res["trials"] if t["status"]]
    assert 2 <= len(ran) < 12
    costs = [read_record(lab.experiment_dir("exp") / "runs" / t["run"].split("/", 1)[1])["cost"]["gpu_hours"]
             for t in sorted(ran, key=lambda t: t["trial"])]
    # The rule, replayed on the recorded costs: each trial started while spent + a trial's mean fit;
    # the next one did not.
    rule = parse_limit(limit, Prices())
    spends = [Spend(1, 0.0, c, c) for c in costs]
    for k in range(len(spends)):
        spent = sum(spends[:k], Spend())
        assert not would_exceed(rule, spent, mean_run(spends[:k]), 0, Prices()), f"trial {k + 1} should not have started"
    assert would_exceed(rule, sum(spends, Spend()), mean_run(spends), 0, Prices())
    assert abs(res["cost"]["gpu_hours"] - sum(costs)) < 1e-5 and res["cost"]["runs"] == len(ran)
    settings = json.loads((lab.experiment_dir("exp") / "sweeps" / res["sweep"] / "sweep.json").read_text())
    assert settings["status"] == "max_cost" and settings["stopped"] == res["stopped"] and settings["max_cost"] == limit


def test_the_approval_gate_refuses_a_sweep_above_approve_above_without_a_tty_and_proceeds_with_yes(lab, make_experiment, cli):
    _set_lab(lab, approve_above="0.00001cpu-h")  # 0.036 CPU-seconds: any sweep is above it
    make_experiment(SLEEP, config={"seed": 0, "x": 1})
    refused = cli("sweep", "exp", "x=1,2,3")
    assert refused.returncode == 2
    assert "no cost estimate is possible" in refused.stderr + refused.stdout  # no run to time yet
    assert not (lab.experiment_dir("exp") / "sweeps").exists()  # nothing was started

    assert cli("run", "exp", "base").returncode == 0  # a run to estimate from
    refused = cli("sweep", "exp", "x=1,2,3")
    message = refused.stderr + refused.stdout
    assert refused.returncode == 2 and "estimated at" in message and "3 run(s)" in message and "pass --yes" in message
    assert not (lab.experiment_dir("exp") / "sweeps").exists()

    approved = cli("sweep", "exp", "x=1,2,3", "--yes")
    assert approved.returncode == 0, approved.stderr
    assert "approved by --yes" in approved.stdout and "cost: " in approved.stdout


def test_a_schema_3_index_gains_the_cost_columns_from_run_json(lab, make_experiment):
    from assay.store.index import MIGRATIONS, SCHEMA_VERSION

    make_experiment(SLEEP)
    [res] = run_experiment(lab, RunSpec("exp", "old", env={"CUDA_VISIBLE_DEVICES": "0"}))
    for suffix in ("", "-wal", "-shm"):
        lab.index_path.with_name(lab.index_path.name + suffix).unlink(missing_ok=True)
    db = sqlite3.connect(lab.index_path)
    for script in MIGRATIONS[:3]:
        db.executescript(script)
    db.execute("INSERT INTO runs (id, experiment, folder, status, ignored, path, started) VALUES (?, 'exp', ?, 'ok', 0, ?, 1.0)",
               (res.record["id"], res.path.name, str(res.path)))
    db.execute("PRAGMA user_version=3")
    db.commit()
    db.close()
    with lab.index() as index:
        assert index.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        row = index.db.execute("SELECT cpu_hours, gpu_hours FROM runs").fetchone()
    assert row == (res.record["cost"]["cpu_hours"], res.record["cost"]["gpu_hours"]) and row[1] > 0
