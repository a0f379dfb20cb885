"""Third-party samplers, decision rules and proposers: a real distribution (a .dist-info with
entry_points.txt on sys.path, as `pip install` leaves it) is found by name by the API and the CLI."""

from __future__ import annotations

import os
import re
import sys

import pytest

from assay.errors import PluginError
from assay.loop import results
from assay.loop.decisions import Settings, make_decision
from assay.loop.driver import Budget, run_loop
from assay.loop.proposers import make_proposer
from assay.loop.ratchet import start, try_candidate
from assay.loop.state import find_by_tag
from tests.integration.conftest import edit

PLUGIN = '''
import re
from assay.loop.decisions import Decided
from assay.sweep.samplers import SAMPLERS


class AlwaysKeep:
    def __init__(self, settings):
        self.settings = settings

    def decide(self, ev):
        return Decided("keep", "kept by the plug-in rule", ev.delta)


class HalveLR:
    seen = []

    def __init__(self, options):
        self.path = options.lab.experiment_dir(options.state.experiment) / "train.py"

    def propose(self, brief, st):
        text = self.path.read_text()
        lr = float(re.search(r"^LR = (.*)$", text, re.M).group(1)) / 2
        self.path.write_text(re.sub(r"^LR = .*$", f"LR = {lr}", text, flags=re.M))
        return f"lr {lr} (plug-in)"

    def observe(self, description, decision, value):
        HalveLR.seen.append(decision)


def grid_twice(space, goal, seed, **options):
    return SAMPLERS["grid"](space, goal, seed, **options)


def one_slot(lab, slots, **options):
    from assay.sweep.executors import LocalPool

    return LocalPool(lab, 1)
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "assay_plugin_demo.py").parent.mkdir(parents=True)
    (site / "assay_plugin_demo.py").write_text(PLUGIN)
    info = site / "assay_plugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: assay-plugin-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[assay.decisions]\nalways = assay_plugin_demo:AlwaysKeep\nbroken = assay_plugin_demo:Missing\n\n"
        "[assay.proposers]\nhalve-lr = assay_plugin_demo:HalveLR\n\n"
        "[assay.samplers]\ngrid-twice = assay_plugin_demo:grid_twice\n\n"
        "[assay.executors]\none-slot = assay_plugin_demo:one_slot\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])]))
    yield site
    sys.modules.pop("assay_plugin_demo", None)


def test_a_plugin_decision_and_proposer_drive_the_loop(lab, repo_lab, plugin):
    start(lab, "exp", "plug", ["train.py"], ["prepare.py"], decision="always", repeats=1)
    edit(repo_lab, LR=5.0)  # far worse: only the plug-in rule keeps it
    out = try_candidate(lab, "lr 5")
    assert out.decision == "keep" and "plug-in rule" in out.reason
    proposer = make_proposer(lab, find_by_tag(lab, "plug"), "min", None, "halve-lr")
    assert run_loop(lab, "plug", proposer, Budget(max_iterations=2, plateau=None), lambda s: None) == "max iterations (2)"
    rows = results.read(repo_lab.path / "results.tsv")
    assert [r.description for r in rows[-2:]] == ["lr 2.5 (plug-in)", "lr 1.25 (plug-in)"]
    assert type(proposer).seen == ["keep", "keep"]
    assert re.search(r"^LR = 1.25$", (repo_lab.path / "train.py").read_text(), re.M)


def test_unknown_and_broken_plugins_are_clear_errors(plugin):
    with pytest.raises(PluginError, match=r"known: greedy, noise-aware, sequential, always, broken\)\. Did you mean 'always'"):
        make_decision("alwys", Settings())
    with pytest.raises(PluginError, match="'broken' .* failed to load: AttributeError"):
        make_decision("broken", Settings())


def test_the_cli_sweeps_with_a_plugin_sampler_and_executor(lab, make_experiment, cli, plugin):
    make_experiment("import assay\nprint('val_loss:', assay.params()['lr'])\n", config={"seed": 0, "lr": 0.1},
                    metric="val_loss", goal="min")
    out = cli("sweep", "exp", "lr=0.1,0.01", "--sampler", "grid-twice", "--trials", "2",
              "--executor", "one-slot")
    assert out.returncode == 0, out.stderr
    assert "done: 2 trials (2 ok)" in out.stdout
    bad = cli("sweep", "exp", "lr=0.1,0.2", "--executor", "one-slt")
    assert bad.returncode == 2 and "known: local, ray, one-slot). Did you mean 'one-slot'" in bad.stderr
    assert len(list((lab.experiment_dir("exp") / "sweeps").iterdir())) == 1  # refused before a sweep folder
