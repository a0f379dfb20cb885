"""Experiment names are plain folder names: none reaches outside the lab's experiments folder."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.errors import ConfigError
from assay.experiment import list_experiments, load_experiment, new_experiment
from assay.lab import check_experiment_name

ESCAPES = ["../../outside", "../outside", "/tmp/outside", "..", ".", ".hidden", "a/b", "a\\b", "", "x" * 101,
           "-rf", "ex\nperiment", "caf\u00e9", "exp\0"]
# Writes a marker next to itself: if it ever runs, a name escaped the lab.
MARKER_SCRIPT = "open('RAN', 'w').write('escaped')\nprint('val_bpb: 1.0')\n"


@pytest.fixture
def outside(tmp_path):
    """An experiment-shaped folder next to the lab, the target of `../../outside`-style names."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "experiment.yaml").write_text("hypothesis: h\nmetric: {name: val_bpb, goal: min}\nentry: train.py\n")
    (folder / "train.py").write_text(MARKER_SCRIPT)
    (folder / "config.yaml").write_text("seed: 0\n")
    return folder


@pytest.mark.parametrize("name", ESCAPES)
def test_unsafe_names_are_refused_with_the_name_and_the_rule(lab, name):
    with pytest.raises(ConfigError) as err:
        lab.experiment_dir(name)
    assert repr(name) in err.value.message and "letters, digits" in err.value.message
    assert "e.g. attention-pooling" in err.value.hint


@pytest.mark.parametrize("name", ["exp", "attention-pooling", "v1.2_b", "A", "0" * 100])
def test_plain_names_are_accepted(lab, name):
    assert lab.experiment_dir(name) == lab.experiments_dir / name


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_every_accepted_name_is_a_direct_child_of_the_experiments_folder(name):
    try:
        check_experiment_name(name)
    except ConfigError:
        return
    base = Path("/lab/experiments")
    assert (base / name).parent == base and (base / name).name == name and not name.startswith(".")


def test_library_entry_points_refuse_a_name_that_leaves_the_lab(lab, outside):
    name = "../../outside"
    with pytest.raises(ConfigError, match="Invalid experiment name"):
        load_experiment(lab, name)
    with pytest.raises(ConfigError, match="Invalid experiment name"):
        new_experiment(lab, "../../made-outside", "h", metric="m", goal="max")
    assert not (lab.root.parent / "made-outside").exists()


def test_a_folder_with_an_unsafe_name_is_not_listed_and_does_not_break_reindex(lab, make_experiment, cli):
    make_experiment("print('val_bpb: 1.0')")
    hidden = lab.experiments_dir / ".hidden"
    hidden.mkdir()
    (hidden / "experiment.yaml").write_text("hypothesis: h\nmetric: m\n")
    assert list_experiments(lab) == ["exp"]
    out = cli("reindex")
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("args", [
    ["run", "../../outside", "desc"],
    ["run", "--", "/ABS/outside", "desc"],
    ["new", "../../made-outside", "--hypothesis", "h", "--metric", "m", "--goal", "max"],
    ["note", "../../outside", "[HUNCH] escaped"],
    ["journal", "../../outside"],
    ["verdict", "../../outside"],
    ["compare", "../../outside", "--by", "seed"],
    ["report", "../../outside"],
])
def test_cli_commands_refuse_names_that_leave_the_lab(lab, cli, outside, args):
    before = sorted(p.name for p in outside.iterdir())
    args = [a.replace("/ABS/outside", str(outside)) for a in args]
    out = cli(*args)
    assert out.returncode != 0
    assert "Invalid experiment name" in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert sorted(p.name for p in outside.iterdir()) == before  # no RAN marker, runs/ or JOURNAL.md
    assert not (lab.root.parent / "made-outside").exists()


def test_mcp_tools_refuse_names_that_leave_the_lab(lab, make_experiment, outside):
    pytest.importorskip("mcp")
    from tests.security.mcp_session import call_tools

    make_experiment("print('val_bpb: 1.0')")
    results = asyncio.run(call_tools(lab.root, [
        ("run", {"experiment": "../../outside", "desc": "x"}),
        ("run", {"experiment": str(outside), "desc": "x", "wait": False}),
        ("note", {"experiment": "../../outside", "text": "[HUNCH] escaped"}),
        ("verdict", {"experiment": str(outside)}),
        ("new_experiment", {"name": "../../made-outside", "hypothesis": "h", "metric": "m", "goal": "max"}),
        ("sweep", {"experiment": "../../outside", "space": ["lr=1,2"]}),
        ("compare", {"experiment": str(outside)}),
        ("gate", {"experiment": "../../outside", "criterion": "val_bpb <= 1"}),
        ("best", {"experiment": str(outside)}),
    ]))
    for result in results:
        assert result.is_error and "Invalid experiment name" in result.content[0].text, result.content[0].text
    assert sorted(p.name for p in outside.iterdir()) == ["config.yaml", "experiment.yaml", "train.py"]
    assert not (lab.root.parent / "made-outside").exists()
