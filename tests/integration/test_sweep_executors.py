"""Executors beyond the shipped conformance checks (test_executor_conformance.py): pruning on a
printed metric, GPUs per slot, the registry, a sweep on Ray. Ray runs on a real local instance."""


import pytest

from assay.errors import PluginError
from assay.runner.launch import RunSpec
from assay.store.query import list_runs
from assay.sweep.executors import EXECUTORS, LocalPool, get_executor

SCRIPT = """
import os, sys, time, assay
p = assay.params()
if p["mode"] == "crash":
    sys.exit("boom")
if p["mode"] == "hang":
    open("hanging", "w").close()  # in the experiment folder (the cwd): the test waits for it
    time.sleep(120)
plot = os.path.join(os.environ["ASSAY_RUN_DIR"], "plots", "curve.txt")
open(plot, "w").write("x")
assay.log_artifact(plot)
for step in range(3):
    assay.log({"val_loss": p["x"] / (step + 1)}, step=step)
print("tokens_per_s:", 123)
"""



@pytest.fixture(params=sorted(EXECUTORS))
def executor(request, lab):
    options = {}
    if request.param == "ray":
        request.getfixturevalue("ray_local")
        options = {"cpus": 1}
    ex = get_executor(request.param, lab, 2, **options)
    yield ex
    ex.shutdown(cancel=True)


def _spec(desc, **params):
    return RunSpec("exp", desc, extra_params={"mode": "ok", "x": 1.0, **params}, tags={"sweep": "t"})


@pytest.mark.parametrize("how", ["api", "printed"])
def test_a_watch_that_says_prune_stops_the_trial_whether_the_metric_is_logged_or_printed(lab, make_experiment, executor, how):
    log = 'assay.log({"score": step}, step=step)' if how == "api" else 'print(f"score: {step}", flush=True)'
    make_experiment(f"import time, assay\nfor step in range(40):\n    {log}\n    time.sleep(0.1)\n",
                    config={"seed": 0}, metric="score", goal="max")
    seen = []

    def watch(step, value):  # what a pruning sampler does with a trial's intermediate values
        seen.append((step, value))
        return step >= 3

    res = executor.submit(RunSpec("exp", f"prune-{how}", tags={"sweep": "t"}), watch).result(timeout=120)
    assert res.status == "pruned" and "pruned by the sweep at step 3" in res.record["reason"], res.record.get("reason")
    assert seen[:4] == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0)]
    assert 4 <= res.record["metrics"]["score"]["count"] < 40  # stopped early, what it logged kept


def test_local_pool_gives_each_slot_its_own_gpu(lab, make_experiment, monkeypatch):
    make_experiment("import os, time\ntime.sleep(0.5)\nprint('val_bpb:', os.environ['CUDA_VISIBLE_DEVICES'])\n")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    pool = LocalPool(lab)
    assert pool.slots == 2  # default: one slot per GPU
    futs = [pool.submit(RunSpec("exp", f"g{i}")) for i in range(2)]
    seen = sorted(f.result(timeout=60).record["metrics"]["val_bpb"]["last"] for f in futs)
    pool.shutdown()
    assert seen == [3, 5]


def test_unknown_executor_lists_the_known_ones(lab):
    with pytest.raises(PluginError) as e:
        get_executor("rey", lab)
    assert "local" in str(e.value) and "ray" in str(e.value) and "Did you mean 'ray'?" in str(e.value)
    with pytest.raises(PluginError, match="takes no options"):
        get_executor("local", lab, 1, address="x")


def test_a_grid_sweep_runs_on_ray_and_the_driver_owns_the_store(lab, make_experiment, ray_local):
    from assay.sweep.driver import SweepConfig, run_sweep, start_sweep
    from assay.sweep.space import space_from_args

    make_experiment(SCRIPT, config={"seed": 0, "mode": "ok", "x": 1.0}, metric="val_loss", goal="min")
    cfg = SweepConfig("exp", space_from_args(["x=1.0,2.0,3.0"]), executor="ray", parallel=2)
    sf = start_sweep(lab, cfg)
    ex = get_executor("ray", lab, 2)
    outcome = run_sweep(lab, sf, cfg, executor=ex)
    ex.shutdown()
    assert outcome.status == "done" and [t.status for t in outcome.trials] == ["ok"] * 3
    assert outcome.best.params == {"x": 1.0} and outcome.best.value == pytest.approx(1 / 3)
    rows, total = list_runs(lab, "exp", "status=ok", None, None, False)
    assert total == 3
