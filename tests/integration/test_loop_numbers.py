"""One number per loop commit: `try`, results.tsv, `loop log`, `loop status` and the dashboard's loop
data agree, and a kept candidate's number and gain come from its re-measurement on fresh seeds."""

from __future__ import annotations

import json
import re
import statistics
import sys

from assay.loop import results
from assay.store.records import read_record
from assay.web.data import loop_results
from tests.conftest import run_cli
from tests.integration.conftest import commit_baseline, edit

LINE = re.compile(r"^(\w+)\s+val_bpb=(\S+)")


def _try(lab, description: str) -> tuple[str, str]:
    out = run_cli("try", description, cwd=lab.root)
    assert out.returncode == 0, out.stderr
    decision, number = LINE.match(out.stdout).groups()
    return decision, number


def _run_records(lab, row: results.Row) -> list[dict]:
    return [read_record(lab.experiment_dir("exp") / "runs" / rid.split("/", 1)[1]) for rid in row.runs.split()]


def test_each_commit_shows_one_number_in_try_log_status_and_dashboard(lab, loop_lab):
    exp = loop_lab(noise=0.02)
    out = run_cli("loop", "start", "exp", "--tag", "one", "--edit", "train.py", "--protect", "prepare.py",
                  "--repeats", "3", "--max-repeats", "3", cwd=lab.root)
    assert out.returncode == 0, out.stderr
    shown = {"baseline": LINE.match(out.stdout).groups()}
    edit(exp, LR=0.3, DEPTH=4)  # 0.59 better: thirty sigmas, kept
    shown["tuned"] = _try(lab, "tuned")
    edit(exp, LR=3.0)  # far worse: discarded
    shown["worse"] = _try(lab, "worse")
    edit(exp, DEPTH="undefined_name")
    out = run_cli("try", "broken", cwd=lab.root)
    assert out.returncode == 0 and out.stdout.startswith("crash"), out.stderr
    shown["broken"] = ("crash", "-")
    assert [d for d, _ in shown.values()] == ["keep", "keep", "discard", "crash"]

    rows = {r.description: r for r in results.read(exp.path / "results.tsv")}
    log = {r["description"]: r for r in json.loads(run_cli("loop", "log", "one", "--json", cwd=lab.root).stdout)}
    status = json.loads(run_cli("loop", "status", "one", "--json", cwd=lab.root).stdout)
    dashboard = {r["description"]: r for r in loop_results(lab, "exp")["rows"]}
    for desc, (_, number) in shown.items():
        row = rows[desc]
        if row.status == "crash":  # a crash is a row in every view, with no number
            assert log[desc]["value"] is None and dashboard[desc]["value"] is None and row.mean == ""
            continue
        assert row.metric == row.mean == number == log[desc]["metric"] == log[desc]["mean"]
        assert log[desc]["value"] == dashboard[desc]["value"] == float(number)
    assert status["best"] == float(shown["tuned"][1]) and status["best_commit"].startswith(rows["tuned"].commit)
    assert status["counts"] == {"keep": 2, "discard": 1, "crash": 1}
    assert [r["status"] for r in status["last"]] == ["keep", "keep", "discard", "crash"]
    assert [r["value"] for r in status["last"]] == [log[d]["value"] for d in shown]

    # The kept number is the mean of the runs made after the decision, on seeds its code never ran.
    records = _run_records(lab, rows["tuned"])
    fresh = [r for r in records if r["desc"].endswith("-confirm")]
    selection = [r for r in records if not r["desc"].endswith("-confirm")]
    assert len(fresh) == 3 and selection
    assert {r["seed"] for r in fresh}.isdisjoint({r["seed"] for r in selection})
    fresh_mean = statistics.fmean(r["metrics"]["val_bpb"]["last"] for r in fresh)
    selection_mean = statistics.fmean(r["metrics"]["val_bpb"]["last"] for r in selection)
    assert rows["tuned"].value == float(f"{fresh_mean:.6g}") != float(f"{selection_mean:.6g}")
    assert rows["tuned"].n == "3"
    gain = rows["baseline"].value - rows["tuned"].value  # lower is better
    assert float(rows["tuned"].delta) == float(f"{gain:+.6g}")


AGENT = (f"{sys.executable} -c \"import os,re; p='experiments/exp/train.py'; t=open(p).read(); "
         "n=os.environ['ASSAY_AGENT_CALL']; new={'1': 'undefined_a', '2': 'undefined_b'}.get(n); "
         "new and open(p,'w').write(re.sub(r'DEPTH = .*', 'DEPTH = ' + new, t)); "
         "open(os.environ['ASSAY_DESC_FILE'],'w').write('depth ' + str(new))\"")


def test_a_new_idea_after_a_crash_is_not_a_retry_of_it(lab, make_experiment):
    from tests.integration.conftest import PREPARE, TRAIN

    exp = make_experiment(TRAIN.replace("NOISE", "0.0"))
    (exp.path / "prepare.py").write_text(PREPARE)
    commit_baseline(lab.root)
    out = run_cli("loop", "start", "exp", "--tag", "cr", "--edit", "train.py", "--protect", "prepare.py",
                  "--decision", "greedy", "--max-retries", "1", cwd=lab.root)
    assert out.returncode == 0, out.stderr
    out = run_cli("loop", "run", "cr", "--agent", AGENT, "--max-iterations", "3", "--agent-timeout", "60s", cwd=lab.root)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    # Call 2 changes the crashed code into another idea: a crash of its own, not the crashed idea's
    # last retry (which --max-retries 1 would drop). Call 3 changes nothing: the crashed diff again
    # is a retry, refused because nothing changed since the crash.
    assert [ln.split()[0] for ln in lines] == ["crash", "crash", "refused", "stopped:"], out.stdout
    assert "Nothing changed since the crash" in lines[2]
    log = json.loads(run_cli("loop", "log", "cr", "--json", cwd=lab.root).stdout)
    assert [(r["status"], r["description"]) for r in log] == [
        ("keep", "baseline"), ("crash", "depth undefined_a"), ("crash", "depth undefined_b")]
    s = json.loads(run_cli("loop", "status", "cr", "--json", cwd=lab.root).stdout)
    assert s["counts"]["crash"] == 2


def test_a_greedy_keep_is_remeasured_on_a_fresh_seed_and_claims_only_that_gain(lab, loop_lab):
    from assay.loop.ratchet import start, status, try_candidate

    exp = loop_lab(noise=0.05)
    base = start(lab, "exp", "g", ["train.py"], ["prepare.py"], decision="greedy")
    edit(exp, LR=0.3, DEPTH=4)
    out = try_candidate(lab, "tuned")
    assert out.decision == "keep" and len(out.values) == 1 and len(out.fresh) == 1 and len(out.runs) == 2
    assert out.value == results.commit_value(out.fresh) != results.commit_value(out.values)
    assert out.delta == results.gain(out.value, base.value, "min")
    assert status(lab)["best"] == out.best == out.value
    seeds = [read_record(lab.experiment_dir("exp") / "runs" / rid.split("/", 1)[1])["seed"] for rid in out.runs]
    assert seeds[0] != seeds[1]  # the re-measurement is a seed this code never ran
    assert f"val_bpb={results.show(out.value)} " in out.line()


BEST_VS_LAST = """\
import os
from prepare import evaluate
LR = 1.0
DEPTH = 2
v = evaluate(LR, DEPTH) + 0.001 * int(os.environ.get("ASSAY_SEED", "0"))
print("val_bpb:", v - 0.25)  # the best (lowest) value, early in training
print("val_bpb:", v)  # the value when training ended
"""


def test_a_loop_started_with_value_best_counts_each_runs_best_and_labels_it(lab, make_experiment):
    from tests.integration.conftest import PREPARE

    exp = make_experiment(BEST_VS_LAST)
    (exp.path / "prepare.py").write_text(PREPARE)
    commit_baseline(lab.root)
    out = run_cli("loop", "start", "exp", "--tag", "b", "--edit", "train.py", "--protect", "prepare.py",
                  "--decision", "greedy", "--value", "best", cwd=lab.root)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("keep     best_val_bpb=1.44 "), out.stdout  # 1.69 last, 1.44 best
    s = json.loads(run_cli("loop", "status", "b", "--json", cwd=lab.root).stdout)
    assert (s["value"], s["label"], s["best"]) == ("best", "best_val_bpb", 1.44)
    assert "best_val_bpb=1.44" in run_cli("loop", "status", "b", cwd=lab.root).stdout
    bad = run_cli("loop", "start", "exp", "--tag", "b2", "--edit", "train.py", "--value", "max", cwd=lab.root)
    assert bad.returncode != 0 and "--value must be one of last, best, got 'max'" in bad.stderr
