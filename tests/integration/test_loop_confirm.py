"""The loop's multi-test leakage on real git repositories: looks counted, `loop confirm` on a
held-out split, the verdict's wording before and after.

The planted effect: the fixed evaluation (prepare.py, protected) scores a model better on the
validation split when it keys on how that split was drawn (PROBE = 7); on the test split it does
nothing. A loop that only ever sees validation keeps PROBE = 7 as a real gain.
"""

from __future__ import annotations

import json

import pytest

from assay.experiment import DEFAULT_CONFIRM_SEEDS, confirm_settings, load_experiment
from assay.loop import results
from assay.loop.ratchet import status, try_candidate
from assay.report.verdict import verdict
from tests.conftest import git, run_cli
from tests.integration.conftest import commit_baseline, edit

TRAIN = """\
import json, os, random
from prepare import evaluate
LR = 1.0
PROBE = 0
split = json.loads(os.environ["ASSAY_PARAMS"])["split"]
random.seed(int(os.environ.get("ASSAY_SEED", "0")))
print("bpb:", evaluate(LR, PROBE, split) + random.gauss(0, 0.05))
"""
PREPARE = """\
def evaluate(lr, probe, split):
    # Lower is better; the true objective is best at lr=0.3. The validation split was drawn with
    # seed 7: a model keyed on that (probe == 7) scores better there, and nowhere else.
    loss = 1.0 + (lr - 0.3) ** 2
    if split == "val" and probe == 7:
        loss -= 0.3
    return loss
"""
CONFIRM = {"params": {"split": "test"}, "seeds": 3}


@pytest.fixture
def split_lab(lab, make_experiment):
    """A repository whose experiment evaluates on split=val by default and can be run on split=test."""

    def make(confirm: dict | None = CONFIRM):
        fields = {"success": "bpb <= 1.4", **({"confirm": confirm} if confirm else {})}
        exp = make_experiment(TRAIN, metric="bpb", goal="min", config={"seed": 0, "split": "val"}, **fields)
        (exp.path / "prepare.py").write_text(PREPARE)
        commit_baseline(lab.root)
        return exp

    return make


def _loop_runs(exp, tag: str) -> int:
    """Runs the loop read a value from, by its own ledger: every run of every decided row."""
    return sum(len(r.runs.split()) for r in results.read(exp.path / "results.tsv") if r.tag == tag and r.status != "crash")


def test_validation_overfit_does_not_survive_confirm_and_a_real_gain_does(lab, split_lab):
    exp = split_lab()
    out = run_cli("loop", "start", "exp", "--tag", "t", "--edit", "train.py", "--protect", "prepare.py",
                  "--repeats", "3", "--max-repeats", "3", cwd=lab.root)
    assert out.returncode == 0, out.stderr
    assert "confirm" not in out.stderr  # declared: no warning

    edit(exp, PROBE=7)
    kept = try_candidate(lab, "key on the validation seed")
    assert kept.decision == "keep", kept.reason
    looks = status(lab)["looks"]
    assert looks == _loop_runs(exp, "t") and looks >= 3 + 1 + 3  # baseline, selection, re-measurement

    before = verdict(lab, "exp")
    (note,) = before.confirmation
    assert note["confirmed"] is False and note["looks"] == looks
    assert f"unconfirmed: {looks} looks at the validation metric" in before.reason
    assert "assay loop confirm t" in before.reason

    head, tree = git(lab.root, "rev-parse", "HEAD"), git(lab.root, "status", "--porcelain")
    out = run_cli("loop", "confirm", "t", "--json", cwd=lab.root)
    assert out.returncode == 0, out.stderr
    c = json.loads(out.stdout)
    assert c["claimed_gain"] == pytest.approx(0.3, abs=0.1)  # what validation promised
    lo, hi = c["ci"]
    assert lo <= 0 <= hi or hi < 0, c  # what the held-out split gives: nothing
    assert c["survives"] is False and c["shrinkage"] == pytest.approx(c["claimed_gain"] - c["confirmed_gain"], abs=1e-6)
    assert c["shrinkage"] > 0.2
    assert len(c["baseline_values"]) == len(c["best_values"]) == 3 and c["number"] == 1
    assert c["best_commit"] == kept.commit and c["looks"] == looks
    # The confirm ran in temporary worktrees: the loop's branch and work tree are as they were.
    assert git(lab.root, "rev-parse", "HEAD") == head and git(lab.root, "status", "--porcelain") == tree
    assert "worktree" not in git(lab.root, "worktree", "list").split("\n", 1)[-1]
    rid = c["best_runs"][0]
    record = json.loads((exp.path / "runs" / rid.split("/", 1)[1] / "run.json").read_text())
    assert record["params"]["split"] == "test" and record["tags"]["loop_confirm"] == "t"

    text = run_cli("loop", "status", "t", cwd=lab.root)
    assert f"{looks} looks at the validation metric" in text.stdout and "confirm 1: gain" in text.stdout

    again = run_cli("loop", "confirm", "t", cwd=lab.root)
    assert again.returncode == 1 and "already confirmed its best commit" in again.stderr and "--force" in again.stderr
    confirms = (exp.path / "loops" / "t" / "confirms.jsonl").read_text().splitlines()
    assert len(confirms) == 1

    assert before.verdict == "supported"  # on the validation runs the loop selected
    after = verdict(lab, "exp")
    assert "confirmed on the held-out split (split=test, 3 seeds): gain" in after.reason
    assert after.verdict == "inconclusive" and after.reason.startswith("supported only by runs loop t selected")
    assert after.to_dict()["confirmation"][0]["survives"] is False
    s = status(lab)
    assert s["looks"] == looks and s["confirms"] == 1  # held-out runs are not looks at validation

    # A lost state.json: resume rebuilds the looks from the run folders and the confirms from confirms.jsonl.
    (exp.path / "loops" / "t" / "state.json").unlink()
    assert run_cli("loop", "resume", "t", cwd=lab.root).returncode == 0
    s = json.loads(run_cli("loop", "status", "t", "--json", cwd=lab.root).stdout)
    assert (s["looks"], s["looks_lower_bound"], s["confirms"]) == (looks, False, 1)

    # A real improvement (on every split) survives; the validation-only part is the shrinkage.
    edit(exp, LR=0.3)
    assert try_candidate(lab, "tune lr").decision == "keep"
    out = run_cli("loop", "confirm", "t", "--json", cwd=lab.root)
    assert out.returncode == 0, out.stderr
    c = json.loads(out.stdout)
    assert c["survives"] is True and c["ci"][0] > 0 and c["number"] == 2
    assert c["confirmed_gain"] == pytest.approx(0.49, abs=0.05)
    assert c["shrinkage"] == pytest.approx(0.3, abs=0.1)
    assert status(lab)["looks"] > looks
    v = verdict(lab, "exp")  # the loop's gain survives now: the validation runs' support stands
    assert v.verdict == "supported" and "confirmed on the held-out split" in v.reason

    forced = run_cli("loop", "confirm", "t", "--force", "--json", cwd=lab.root)
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["forced"] is True
    lines = [json.loads(x) for x in (exp.path / "loops" / "t" / "confirms.jsonl").read_text().splitlines()]
    assert [x["number"] for x in lines] == [1, 2, 3] and status(lab)["confirms"] == 3


def test_start_warns_without_confirm_and_confirm_says_how_to_declare_it(lab, split_lab):
    exp = split_lab(confirm=None)
    out = run_cli("loop", "start", "exp", "--tag", "w", "--edit", "train.py", "--protect", "prepare.py",
                  "--decision", "greedy", cwd=lab.root)
    assert out.returncode == 0, out.stderr
    warnings = [ln for ln in out.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "declares no `confirm:`" in warnings[0]
    edit(exp, PROBE=7)
    assert try_candidate(lab, "probe").decision == "keep"
    v = verdict(lab, "exp")
    assert "unconfirmed: 3 looks" in v.reason  # greedy: baseline, selection, re-measurement and "declare `confirm:` in experiment.yaml" in v.reason
    out = run_cli("loop", "confirm", "w", cwd=lab.root)
    assert out.returncode == 2 and "declares no `confirm:`" in out.stderr


def test_resume_after_lost_state_and_run_folders_reports_looks_as_a_lower_bound(lab, split_lab):
    import shutil

    exp = split_lab()
    assert run_cli("loop", "start", "exp", "--tag", "lb", "--edit", "train.py", "--decision", "greedy",
                   cwd=lab.root).returncode == 0
    edit(exp, LR=0.5)
    assert try_candidate(lab, "lower lr").decision == "keep"
    assert status(lab)["looks"] == 3
    baseline_run = results.read(exp.path / "results.tsv")[0].runs.split()[0]
    shutil.rmtree(exp.path / "runs" / baseline_run.split("/", 1)[1])
    (exp.path / "loops" / "lb" / "state.json").unlink()
    out = run_cli("loop", "resume", "lb", cwd=lab.root)
    assert out.returncode == 0 and "at least 3 looks" in out.stdout, out.stdout + out.stderr
    s = status(lab)
    assert (s["looks"], s["looks_lower_bound"]) == (3, True)
    assert "at least 3 looks" in run_cli("loop", "status", cwd=lab.root).stdout


def test_confirm_refuses_a_loop_that_kept_nothing(lab, split_lab):
    split_lab()
    assert run_cli("loop", "start", "exp", "--tag", "z", "--edit", "train.py", "--decision", "greedy",
                   cwd=lab.root).returncode == 0
    out = run_cli("loop", "confirm", "z", cwd=lab.root)
    assert out.returncode == 1 and "kept nothing beyond its baseline" in out.stderr


@pytest.mark.parametrize(("section", "match"), [
    ({"params": {"split": "test"}}, None),
    ({"entry": "evaluate.py", "seeds": 3}, None),
    ({"params": {"splt": "test"}}, "Unknown parameter 'splt'.*Did you mean 'split'"),
    ({"params": {"split": "val"}}, "equal the defaults"),
    ({"seeds": 5}, "neither params nor an entry"),
    ({"params": {"split": "test"}, "seeds": 1}, "must be an integer >= 2"),
    ({"params": {"split": "test"}, "seed": 3}, "Unknown field 'seed'"),
])
def test_confirm_section_is_read_or_refused_with_its_line(lab, make_experiment, section, match):
    from assay.errors import ConfigError

    make_experiment(TRAIN, metric="bpb", config={"seed": 0, "split": "val"}, confirm=section)
    exp = load_experiment(lab, "exp")
    if match is None:
        got = confirm_settings(exp)
        assert got is not None and got.seeds == section.get("seeds", DEFAULT_CONFIRM_SEEDS)
        assert got.entry == section.get("entry") and got.params == section.get("params", {})
    else:
        with pytest.raises(ConfigError, match=match) as err:
            confirm_settings(exp)
        assert "experiment.yaml:" in err.value.message  # names the line of `confirm:`
