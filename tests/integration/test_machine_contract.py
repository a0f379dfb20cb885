"""What scripts and agents rely on beyond --json: ASSAY_LAB selects the lab, `last` names the newest
run, `assay run --detach` + `assay wait` (real background processes that outlive their parent), and
`assay init` making the guide visible from CLAUDE.md. Real subprocesses, real labs in tmp_path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from tests.conftest import ASSAY, run_cli, wait_for

QUICK = "import assay\np = assay.params()\nprint('val_bpb:', p.get('lr', 1.0))\n"
SLOW = "import time, assay\np = assay.params()\nprint('step=0 val_bpb=2.0', flush=True)\ntime.sleep(p['sleep'])\nprint('val_bpb: 1.0')\n"


def _json(out: subprocess.CompletedProcess[str]) -> object:
    assert out.returncode == 0, (out.stdout, out.stderr)
    return json.loads(out.stdout)


# ------------------------------------------------------------------ ASSAY_LAB


def test_assay_lab_selects_the_lab_over_the_working_directory(lab, make_experiment, cli, tmp_path):
    from assay.lab import init_lab

    make_experiment(QUICK)
    assert cli("run", "exp", "in-a").returncode == 0
    other, _ = init_lab(tmp_path / "other")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"ASSAY_LAB": str(lab.root)}
    assert _json(run_cli("runs", "--json", cwd=elsewhere, env=env))["total"] == 1  # no lab here: ASSAY_LAB's
    assert _json(run_cli("runs", "--json", cwd=other.root, env=env))["total"] == 1  # beats the lab of the folder
    assert _json(run_cli("runs", "--json", cwd=other.root))["total"] == 0  # unset: the search upward, as before
    bad = run_cli("runs", cwd=lab.root, env={"ASSAY_LAB": str(elsewhere)})
    assert bad.returncode == 2 and f"ASSAY_LAB='{elsewhere}'" in bad.stderr and "unset ASSAY_LAB" in bad.stderr


def test_a_script_run_by_assay_finds_labs_as_before_and_honours_an_assay_lab_it_sets(lab, make_experiment, cli, tmp_path):
    """The runner gives its scripts ASSAY_LAB (their own lab): an `assay` command such a script runs in
    another lab's folder still works on that folder's lab; one that sets ASSAY_LAB itself gets that lab."""
    from assay.lab import init_lab

    other, _ = init_lab(tmp_path / "other")
    script = f"""
import json, os, subprocess
assay = {[*ASSAY]!r}
def total(cwd, env):
    out = subprocess.run([*assay, "runs", "--json"], cwd=cwd, env=env, capture_output=True, text=True)
    return json.loads(out.stdout)["total"] if out.returncode == 0 else out.stderr
report = {{
    "inherited": os.environ["ASSAY_LAB"],
    "here": total(None, os.environ),
    "other_folder": total({str(other.root)!r}, os.environ),
    "named_other": total(None, {{**os.environ, "ASSAY_LAB": {str(other.root)!r}}}),
}}
open(os.path.join(os.environ["ASSAY_RUN_DIR"], "nested.json"), "w").write(json.dumps(report))
print("val_bpb: 1.0")
"""
    make_experiment(script)
    res = _json(cli("run", "exp", "nested", "--json"))[0]
    report = json.loads((Path(res["path"]) / "nested.json").read_text())
    assert report == {"inherited": str(lab.root), "here": 1, "other_folder": 0, "named_other": 0}


# ------------------------------------------------------------------ last


def test_last_names_the_newest_run_of_the_lab_or_of_one_experiment(lab, make_experiment, cli):
    make_experiment(QUICK, name="a", config={"seed": 0, "lr": 1.0})
    make_experiment(QUICK, name="b", config={"seed": 0, "lr": 1.0})
    none = cli("show", "last")
    assert none.returncode == 2 and "No runs in this lab" in none.stderr
    first = _json(cli("run", "a", "first", "--json"))[0]["id"]
    second = _json(cli("run", "b", "second", "--json"))[0]["id"]
    assert _json(cli("show", "last", "--json"))["id"] == second
    assert _json(cli("show", "a:last", "--json"))["id"] == first
    assert _json(cli("show", "b:last", "--json"))["id"] == second
    assert _json(cli("wait", "a:last", "--json"))["runs"][0]["id"] == first
    assert cli("show", "nosuch:last").returncode == 2


# ------------------------------------------------------------------ --detach and wait


def test_a_detached_run_outlives_the_process_that_started_it_and_wait_returns_its_outcome(lab, make_experiment, cli):
    make_experiment(SLOW, config={"seed": 0, "sleep": 2})
    go = lab.root / "go"
    # The parent is a shell in its own session (as a terminal would be): it starts the detached run,
    # reports it, and waits to be killed with its whole process group.
    parent = subprocess.Popen(
        ["bash", "-c", f"{' '.join(ASSAY)} run exp bg --detach --json > started.json; touch {go}; sleep 60"],
        cwd=lab.root, start_new_session=True, env=os.environ.copy())
    wait_for(go.exists, 60, "the detached run to be reported")
    started = json.loads((lab.root / "started.json").read_text())
    os.killpg(parent.pid, signal.SIGKILL)  # the terminal closes: parent and its group die
    parent.wait(10)
    assert started["status"] == "running" and Path(started["path"]).is_dir()
    out = cli("wait", started["id"], "--timeout", "60s")
    assert out.returncode == 0 and out.stdout.startswith("ok ") and "val_bpb=1" in out.stdout, (out.stdout, out.stderr)
    own_output = Path(started["path"]) / "logs" / "assay.log"  # the background `assay run`'s own lines (JSON here)
    assert started["log"] == str(own_output) and not any((lab.state_dir / "detached").iterdir())
    wait_for(lambda: '"status": "ok"' in own_output.read_text(), 30, "the background run's final output")


def test_wait_exits_1_for_a_failed_run_124_when_the_wait_runs_out_and_1_for_a_lost_run(lab, make_experiment, cli):
    make_experiment(SLOW + "import sys\nsys.exit(3 if p['sleep'] < 1 else 0)\n", config={"seed": 0, "sleep": 0})
    failed = _json(cli("run", "exp", "failing", "--detach", "--json"))
    assert cli("wait", failed["id"]).returncode == 1
    slow = _json(cli("run", "exp", "slow", "sleep=60", "--detach", "--json"))
    out = cli("wait", "last", "--timeout", "0.5")
    assert out.returncode == 124 and out.stdout.startswith("running") and "the runs go on" in out.stderr
    os.kill(slow["pid"], signal.SIGKILL)  # the `assay run` that owns the record dies
    lost = cli("wait", slow["id"], failed["id"], "--json")
    assert lost.returncode == 1 and [r["status"] for r in json.loads(lost.stdout)["runs"]] == ["lost", "failed"]
    assert _json(cli("show", slow["id"], "--json"))["status"] == "lost"


def test_detach_refuses_what_would_start_several_runs_or_stream_and_relays_a_start_error(lab, make_experiment, cli):
    make_experiment(QUICK, config={"seed": 0, "lr": 1.0})
    for extra, named in ((["--repeat", "2"], "--repeat"), (["--follow"], "--follow"), (["--smoke"], "--smoke"),
                         (["--timeout", "auto"], "--timeout auto")):
        out = cli("run", "exp", "x", "--detach", *extra)
        assert out.returncode == 2 and named in out.stderr, (extra, out.stderr)
    bad = cli("run", "exp", "x", "nosuch=1", "--detach")  # the background `assay run` fails before a folder
    assert bad.returncode == 2 and "Unknown parameter 'nosuch'" in bad.stderr and bad.stdout == ""
    assert _json(cli("runs", "--json"))["total"] == 0


def test_status_json_shows_progress_of_a_running_run(lab, make_experiment, cli):
    make_experiment(SLOW, config={"seed": 0, "sleep": 60})
    bg = _json(cli("run", "exp", "long", "--detach", "--json"))
    try:
        running = wait_for(lambda: [r for r in _json(cli("status", "--json"))["running"] if r["last_step"] is not None],
                           30, "the run's first metric")[0]
        assert (running["id"], running["primary_metric"], running["last"], running["last_step"]) == (bg["id"], "val_bpb", 2.0, 0)
        assert 0 <= running["elapsed"] < 60
        assert "step 0" in cli("status").stdout
    finally:
        os.kill(bg["pid"], signal.SIGINT)


# ------------------------------------------------------------------ CLAUDE.md


def test_init_imports_the_guide_into_an_existing_claude_md_once_and_changes_nothing_else(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    mine = "# Project notes\n\nUse tabs.  Keep this exactly as written."  # no final newline
    (root / "CLAUDE.md").write_text(mine)
    first = _json(run_cli("init", "--json", cwd=root))
    assert "CLAUDE.md" in first["written"] and "AGENTS.md" in first["written"]
    text = (root / "CLAUDE.md").read_text()
    assert text == mine + "\n@AGENTS.md\n"
    assert "assay" in (root / "AGENTS.md").read_text()
    again = _json(run_cli("init", "--json", cwd=root))
    assert "CLAUDE.md" not in again["written"] and (root / "CLAUDE.md").read_text() == text

    bare = tmp_path / "bare"
    bare.mkdir()
    run_cli("init", cwd=bare)
    assert not (bare / "CLAUDE.md").exists()  # none is created


def test_the_guide_lists_every_exit_code_of_the_readme_and_points_at_the_json_keys():
    import re

    from assay.agents import GUIDE

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("#### Exit codes")[1].split("\n\n", 2)[1]
    codes = re.findall(r"^\| (\d+) \|", table, re.M)
    assert {"0", "1", "2", "124", "130"} <= set(codes)
    for code in codes:
        assert re.search(rf"\b{code}\b", GUIDE), f"exit code {code} missing from the guide"
    assert "--json" in GUIDE and "docs/ecosystem.md" in GUIDE
