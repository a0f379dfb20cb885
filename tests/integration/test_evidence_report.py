"""assay report on real runs: sections filled from files, every link resolves, hand-written prose survives."""

from __future__ import annotations

import base64
import re

import pytest

from assay.journal import add_note
from assay.runner import RunSpec, run_experiment
from tests.conftest import git

SCRIPT = """
import assay
p = assay.params()
run = assay.init()
for step in range(3):
    assay.log({"acc": p["level"] - 0.1 * (2 - step) + p["seed"] * 0.005}, step=step)
if p["crash"]:
    raise RuntimeError("loader died")
"""
PROSE = "We ran two levels to see whether the threshold is reachable."


@pytest.fixture
def exp(lab, make_experiment):
    exp = make_experiment(SCRIPT, config={"seed": 0, "level": 0.9, "crash": 0}, metric="acc", goal="max",
                          success="acc >= 0.8", hypothesis="Level 0.9 reaches acc >= 0.8.")
    git(lab.root, "init", "-q")
    git(lab.root, "add", ".")
    git(lab.root, "commit", "-qm", "experiment")
    return exp


def blocks(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r"<!-- assay:begin:([\w-]+) -->\n(.*?)\n<!-- assay:end:\1 -->", text, re.S)}


def test_report_cites_files_quotes_journal_and_keeps_hand_written_prose(lab, exp, cli):
    from assay.report.report import write_report

    good = run_experiment(lab, RunSpec("exp", "high", repeat=2))
    run_experiment(lab, RunSpec("exp", "low", ["level=0.5"], repeat=2))
    (crashed,) = run_experiment(lab, RunSpec("exp", "crash", ["crash=1"]))
    (ignored,) = run_experiment(lab, RunSpec("exp", "bug", ["level=0.99"]))
    assert cli("ignore", ignored.record["id"], "--why", "labels leaked").returncode == 0
    add_note(exp.path, "[WEIRD] acc jumps at step 2", run=good[0].record["id"])
    add_note(exp.path, "[TODO] try a third level")

    res = write_report(lab, "exp")
    text = res.markdown.read_text()
    b = blocks(text)
    assert list(b) == ["abstract", "introduction", "methods", "results", "discussion", "conclusion"]
    assert text.count("**TO WRITE (a person):**") == 6
    assert "> Level 0.9 reaches acc >= 0.8." in b["introduction"]
    commit = git(lab.root, "rev-parse", "HEAD")
    assert commit[:12] in b["methods"] and "| 0, 1 |" in b["methods"]
    finals = sorted(r.record["metrics"]["acc"]["last"] for r in good)
    mean = sum(finals) / 2
    assert f"| level=0.9 | 2 | {mean:.4g} |" in b["results"]
    assert "WEIRD] \"acc jumps at step 2\"" in b["discussion"] and "try a third level" not in b["discussion"]
    assert "loader died" in b["discussion"] and crashed.record["id"] in b["discussion"]
    assert f"`{ignored.record['id']}` (ok): ignored: labels leaked" in b["discussion"]
    assert "**SUPPORTED**" in b["conclusion"]
    links = re.findall(r"\]\(([^)]+)\)", "\n".join(b.values()))
    assert len(links) > 15 and all((exp.path / link).exists() for link in links), links
    assert len(res.figures) == 3 and all(f"({f.path.relative_to(exp.path)})" in b["results"] for f in res.figures)

    html = res.html.read_text()
    embedded = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert len(embedded) == 3 and 'src="plots/' not in html
    assert base64.b64decode(embedded[0]) == res.figures[0].path.read_bytes()

    # A person writes the abstract and scribbles inside a generated block; a new run arrives.
    edited = text.replace("> **TO WRITE (a person):** two or three sentences", PROSE + "\n\n> (old prompt) two or three", 1)
    edited = edited.replace(b["results"], "hand edit inside the block")
    res.markdown.write_text(edited)
    run_experiment(lab, RunSpec("exp", "high-again", ["seed=5"]))
    again = write_report(lab, "exp")
    text2 = again.markdown.read_text()
    assert PROSE in text2 and not again.created
    assert "hand edit inside the block" not in text2
    assert "Data: 5 finished run(s)" in blocks(text2)["abstract"]


def test_report_without_runs_or_criteria_says_so_instead_of_inventing(lab, make_experiment, cli):
    make_experiment(SCRIPT, config={"seed": 0, "level": 0.9, "crash": 0}, metric="acc", goal="max")
    out = cli("report", "exp")
    assert out.returncode == 0, out.stderr
    text = (lab.experiment_dir("exp") / "REPORT.md").read_text()
    b = blocks(text)
    assert "Data: 0 finished run(s)" in b["abstract"]
    assert "declares no success or failure criteria" in b["conclusion"]
    assert "Success criterion: none declared" in b["introduction"]


def test_each_run_records_its_data_as_it_started_and_the_report_tells_versions_apart(lab, make_experiment):
    import hashlib

    from assay.report.report import write_report

    exp = make_experiment("import assay\np = assay.params()\nprint('acc:', len(open(p['train']).read()) / 100)\n",
                          config={"seed": 0, "train": "data/train.csv"}, metric="acc", goal="max", success="acc >= 0.1")
    data = exp.path / "data" / "train.csv"
    data.parent.mkdir()
    data.write_text("x,y\n" + "1,2\n" * 5)
    first = run_experiment(lab, RunSpec("exp", "v1", repeat=2))
    fp = first[0].record["data"]["data/train.csv"]
    assert fp["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()[:16]
    assert fp["named_by"] == "param train" and fp["hashed"] == "full" and "changed_during_run" not in fp
    assert first[1].record["data"]["data/train.csv"]["sha256"] == fp["sha256"]

    data.write_text("x,y\n" + "1,2\n" * 9)  # the data changes between runs
    (second,) = run_experiment(lab, RunSpec("exp", "v2"))
    assert second.record["data"]["data/train.csv"]["sha256"] != fp["sha256"]
    methods = blocks(write_report(lab, "exp").markdown.read_text())["methods"]
    row = next(line for line in methods.splitlines() if line.startswith("| `data/train.csv`"))
    assert f"{fp['sha256']} (2 runs)" in row and f"{second.record['data']['data/train.csv']['sha256']} (1 run)" in row
    assert "the runs read 2 different versions" in methods

    writer = make_experiment("import assay\np = assay.params()\nopen(p['out'], 'a').write('more')\nprint('acc: 1')\n",
                             name="writer", config={"seed": 0, "out": "data/cache.txt"}, metric="acc", goal="max")
    (writer.path / "data").mkdir()
    (writer.path / "data" / "cache.txt").write_text("start")
    (res,) = run_experiment(lab, RunSpec("writer", "w"))
    assert res.record["data"]["data/cache.txt"]["changed_during_run"] is True
