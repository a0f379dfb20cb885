"""Notebooks as experiments: real ipykernel kernels through nbclient, launched by `assay run`."""

from __future__ import annotations

import json
import time

import nbformat
import psutil
import pytest
from nbformat import v4

from assay.integrations.notebook import INJECTED_TAG, prepare
from assay.runner import RunSpec, run_experiment


def _notebook(path, *cells):
    """cells: (source, tags) pairs."""
    nb = v4.new_notebook()
    nb.cells = [v4.new_code_cell(src, metadata={"tags": list(tags)} if tags else {}) for src, tags in cells]
    nbformat.write(nb, str(path))


@pytest.fixture
def nb_experiment(lab, make_experiment):
    def make(*cells, config=None, entry="train.ipynb", timeout="60s"):
        exp = make_experiment("", config=config or {"seed": 0, "lr": 0.5, "epochs": 2}, metric="val_loss",
                              goal="min", entry=entry, timeout=timeout)
        _notebook(exp.path / "train.ipynb", *cells)
        return exp
    return make


def test_prepare_injects_params_after_parameters_cell_and_drops_skip_cells():
    nb = v4.new_notebook()
    nb.cells = [v4.new_code_cell("import os"), v4.new_code_cell("lr = 1", metadata={"tags": ["parameters"]}),
                v4.new_code_cell("plot()", metadata={"tags": ["skip-in-run"]}), v4.new_code_cell("train(lr)")]
    assert prepare(nb, {"lr": 0.1, "opt": {"name": "adam"}, "bad-key": 1, "class": 2}) == 1
    assert [c.source for c in nb.cells][:2] == ["import os", "lr = 1"] and nb.cells[3].source == "train(lr)"
    injected = nb.cells[2]
    assert injected.metadata.tags == [INJECTED_TAG] and len(nb.cells) == 4
    ns: dict = {}
    exec(injected.source, ns)  # the injected cell is valid Python that rebinds exactly the valid names
    assert ns["lr"] == 0.1 and ns["opt"] == {"name": "adam"} and "class" not in ns
    prepare(nb, {"lr": 0.2})  # a re-run replaces the injected cell rather than stacking another
    assert sum(INJECTED_TAG in c.metadata.get("tags", []) for c in nb.cells) == 1


def test_notebook_run_gets_params_captures_metrics_and_saves_executed_copy(lab, nb_experiment):
    nb_experiment(
        ("import os\nlr = 0.5\nepochs = 2", ["parameters"]),
        ("raise RuntimeError('interactive-only cell ran under assay')", ["skip-in-run"]),
        ("import assay\nassert assay.params()['lr'] == lr, (assay.params(), lr)\n"
         "print('env lr', os.environ['ASSAY_PARAM_LR'])\n"
         "for epoch in range(epochs):\n    print(f'epoch={epoch} val_loss={lr / (epoch + 1)}')", []),
        ("{'val_loss': lr / epochs}", []),
    )
    (res,) = run_experiment(lab, RunSpec("exp", "nb", ["lr=0.2", "epochs=3"]))
    assert res.status == "ok", res.record.get("log_tail")
    assert res.record["command"][1:3] == ["-m", "assay.integrations.notebook"]
    series = res.record["metrics"]["val_loss"]
    # three printed epochs, then the last cell's displayed dict, which the metrics-dict preset reads too
    assert series["count"] == 4 and series["last"] == pytest.approx(0.2 / 3) and series["last_step"] == 3
    assert "env lr 0.2" in res.record["log_tail"]
    executed = nbformat.read(str(res.path / "train.ipynb"), as_version=4)
    assert "train.ipynb" in res.record["artifacts"]
    sources = [c.source for c in executed.cells]
    assert not any("interactive-only" in s for s in sources)
    injected = next(c for c in executed.cells if INJECTED_TAG in c.metadata.get("tags", []))
    assert sources.index(injected.source) == 1 and "lr = 0.2" in injected.source
    assert executed.cells[-1].outputs[0]["data"]["text/plain"] == repr({"val_loss": 0.2 / 3})


def test_failing_cell_is_a_failed_run_with_traceback_and_partial_notebook(lab, nb_experiment):
    nb_experiment(("print('val_loss: 0.9')", []), ("x = {}\nx['missing_key']", []), ("print('never')", []))
    (res,) = run_experiment(lab, RunSpec("exp", "crash"))
    assert res.status == "failed" and res.record["exit_code"] == 1
    assert "KeyError" in res.record["log_tail"] and "missing_key" in res.record["log_tail"]
    assert res.record["metrics"]["val_loss"]["last"] == 0.9
    executed = nbformat.read(str(res.path / "train.ipynb"), as_version=4)
    assert INJECTED_TAG in executed.cells[0].metadata.tags  # no `parameters` cell: injected at the top
    assert executed.cells[2].outputs[-1]["output_type"] == "error"
    assert not executed.cells[3].get("outputs")


def test_per_cell_timeout_fails_the_run_and_names_it(lab, nb_experiment):
    nb_experiment(("import time\ntime.sleep(30)", []), entry="train.ipynb --cell-timeout 1s")
    (res,) = run_experiment(lab, RunSpec("exp", "slow-cell"))
    assert res.status == "failed"
    assert "per-cell timeout" in res.record["log_tail"]
    assert res.record["duration"] < 25


def test_run_timeout_stops_the_kernel_too(lab, nb_experiment, tmp_path):
    pidfile = tmp_path / "kernel.pid"
    nb_experiment((f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
                   "print('val_loss: 1.0', flush=True)\ntime.sleep(600)", []), timeout="4s")
    (res,) = run_experiment(lab, RunSpec("exp", "hang"))
    assert res.status == "timeout"
    kernel_pid = int(pidfile.read_text())
    deadline = time.monotonic() + 15
    while psutil.pid_exists(kernel_pid) and psutil.Process(kernel_pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, f"kernel {kernel_pid} outlived its run"
        time.sleep(0.1)  # polling a process's exit, bounded by the deadline above
    executed = json.loads((res.path / "train.ipynb").read_text())  # saved on the way out, outputs so far
    assert "".join(executed["cells"][1]["outputs"][0]["text"]) == "val_loss: 1.0\n"


def test_failing_cell_is_the_runs_reason_and_the_kernel_is_shut_down_first(lab, nb_experiment):
    # A markdown cell and a skip-in-run cell before the failing one: the cell is numbered as written.
    nb_experiment(("print('val_loss: 0.9')", []), ("plot()", ["skip-in-run"]), ("x = {}\nx['missing_key']", []))
    (res,) = run_experiment(lab, RunSpec("exp", "crash"))
    assert res.status == "failed"
    assert res.record["reason"].startswith("exit code 1: Error: KeyError: 'missing_key' (in cell 3 of ")
    # The kernel ended before the runner did: nothing outlived the run to write after the error.
    assert not any("left running" in w for w in res.record.get("warnings") or []), res.record["warnings"]
    assert "Parent appears to have exited" not in (res.path / "logs" / "output.log").read_text()
    assert res.record["log_tail"].splitlines()[-1].startswith("Error: KeyError")


def test_skip_execution_cells_stay_in_the_notebook_but_never_run(lab, nb_experiment):
    nb_experiment(("lr = 0.5", ["parameters"]),
                  ("raise RuntimeError('skip-execution cell ran')", ["skip-execution"]),
                  ("print(f'val_loss: {lr}')", []))
    (res,) = run_experiment(lab, RunSpec("exp", "skip", ["lr=0.3"]))
    assert res.status == "ok", res.record.get("log_tail")
    executed = nbformat.read(str(res.path / "train.ipynb"), as_version=4)
    kept = [c for c in executed.cells if "skip-execution" in c.metadata.get("tags", [])]
    assert len(kept) == 1 and not kept[0].get("outputs") and kept[0].get("execution_count") is None


def test_params_read_as_notebook_variables_raise_no_never_reached_warning(lab, nb_experiment):
    nb_experiment(("lr = 0.5\nepochs = 2", ["parameters"]), ("print(f'val_loss: {lr / epochs}')", []))
    (res,) = run_experiment(lab, RunSpec("exp", "vars", ["lr=0.2", "epochs=4"]))
    assert res.status == "ok", res.record.get("log_tail")
    assert res.record["metrics"]["val_loss"]["last"] == pytest.approx(0.05)
    assert not res.record.get("params_unreached") and not res.record.get("warnings")


def test_new_with_a_notebook_entry_scaffolds_a_parameters_notebook_that_refuses_to_run_until_edited(lab, cli):
    out = cli("new", "nb", "--hypothesis", "a notebook", "--metric", "val_f1", "--goal", "max", "--entry", "train.ipynb")
    assert out.returncode == 0, out.stderr
    folder = lab.experiment_dir("nb")
    assert not (folder / "train.py").exists()
    nb = nbformat.read(str(folder / "train.ipynb"), as_version=4)
    nbformat.validate(nb)
    params_cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert "epochs = 5" in params_cell.source  # config.yaml's defaults

    (res,) = run_experiment(lab, RunSpec("nb", "untouched"))
    assert res.status == "failed" and "this is the scaffold from `assay new`: edit train.ipynb" in res.record["reason"]
    assert "val_f1" not in (res.record.get("metrics") or {})

    # Edited as the scaffold says (the refusing cell deleted, a score computed): it runs with the run's params.
    nb.cells = [c for c in nb.cells if "scaffold" not in c.source or c.cell_type == "markdown"]
    nb.cells[-1].source = nb.cells[-1].source.replace("score = ...", "score = 0.5 + epoch / 10")
    nbformat.write(nb, str(folder / "train.ipynb"))
    (res,) = run_experiment(lab, RunSpec("nb", "edited", ["epochs=2"]))
    assert res.status == "ok", res.record.get("log_tail")
    assert res.record["metrics"]["val_f1"]["last"] == pytest.approx(0.6) and res.record["metrics"]["val_f1"]["last_step"] == 1
