"""MCP `show`, `read_log` and `read_metrics` read only the lab's run folders, links resolved."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from assay.runner import RunSpec, run_experiment

pytest.importorskip("mcp")
from tests.security.mcp_session import call_tools, error_text  # noqa: E402

SCRIPT = "import assay\nassay.log({'val_bpb': 0.5}, step=0)\nprint('hello from the run')\n"
SECRET = "root:x:0:0:secret line\n"
READERS = [("show", {}), ("read_log", {}), ("read_metrics", {})]


@pytest.fixture
def run_path(lab, make_experiment):
    exp = make_experiment(SCRIPT)
    [res] = run_experiment(lab, RunSpec(exp.name, "base"))
    assert res.status == "ok"
    return res.path


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "system" / "passwd"
    path.parent.mkdir()
    path.write_text(SECRET)
    return path


def test_a_run_folder_outside_the_lab_is_refused_by_every_reader(lab, run_path, tmp_path):
    forged = tmp_path / "elsewhere" / "run"
    shutil.copytree(run_path, forged)  # holds a genuine run.json, log and metrics
    results = asyncio.run(call_tools(lab.root, [(tool, {"run": str(forged), **args}) for tool, args in READERS]))
    for (tool, _), result in zip(READERS, results):
        assert "not in a run folder of this lab" in error_text(result), tool


def test_a_path_that_leaves_the_lab_through_dotdot_or_a_link_is_refused(lab, run_path, tmp_path):
    forged = tmp_path / "elsewhere"
    shutil.copytree(run_path, forged)
    link = lab.experiment_dir("exp") / "runs" / "linked-run"
    link.symlink_to(forged, target_is_directory=True)
    dotdot = lab.experiment_dir("exp") / "runs" / ".." / ".." / ".." / ".." / "elsewhere"
    results = asyncio.run(call_tools(lab.root, [("read_log", {"run": str(link)}), ("show", {"run": str(dotdot)})]))
    assert all("not in a run folder of this lab" in error_text(r) for r in results)


@pytest.mark.parametrize(("tool", "file"), [("read_log", "logs/output.log"), ("read_metrics", "metrics.jsonl"),
                                            ("show", "run.json")])
def test_a_run_file_linked_outside_its_run_folder_is_refused(lab, run_path, secret, tool, file):
    target = run_path / file
    target.unlink()
    target.symlink_to(secret)
    [result] = asyncio.run(call_tools(lab.root, [(tool, {"run": f"exp/{run_path.name}"})]))
    text = error_text(result)
    assert f"{file} of run 'exp/{run_path.name}' links to {secret}" in text and "secret line" not in text


def test_runs_of_the_lab_stay_readable_also_when_runs_is_a_link_to_another_disk(lab, run_path, tmp_path):
    runs = lab.experiment_dir("exp") / "runs"
    scratch = tmp_path / "scratch-runs"
    shutil.move(runs, scratch)
    runs.symlink_to(scratch, target_is_directory=True)
    ref = f"exp/{run_path.name}"
    show, log, metrics = asyncio.run(call_tools(lab.root, [(tool, {"run": ref}) for tool, _ in READERS]))
    assert not (show.is_error or log.is_error or metrics.is_error), [r.content[0].text for r in (show, log, metrics)]
    assert "hello from the run" in log.content[0].text and "val_bpb" in metrics.content[0].text
