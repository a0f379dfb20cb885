"""`assay run` against real scripts: metrics, crashes, timeouts, OOM, NaN, params, seeds."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import psutil
import pytest

from assay.errors import ConfigError
from assay.runner import RunSpec, run_experiment
from assay.store import records


def run1(lab, name="exp", desc="t", overrides=(), **kw):
    (res,) = run_experiment(lab, RunSpec(name, desc, list(overrides), **kw))
    return res


def test_unmodified_script_metric_is_captured(lab, make_experiment):
    make_experiment("print('training...')\nprint('---')\nprint('val_bpb:          0.997900')\n")
    res = run1(lab)
    assert res.status == "ok"
    assert res.record["metrics"]["val_bpb"]["last"] == pytest.approx(0.9979)
    assert (res.path / "logs" / "output.log").read_text().startswith("training...")
    assert res.path.parent == lab.experiment_dir("exp") / "runs"


def test_progress_bar_carriage_returns_do_not_hide_metrics(lab, make_experiment):
    make_experiment(r"""
        import sys
        for i in range(3):
            sys.stdout.write(f"\r{i}/3 loss={1.0 / (i + 1):.3f}")
        sys.stdout.write("\rval_bpb: 1.25\n")
        """)
    res = run1(lab)
    assert res.record["metrics"]["loss"]["count"] == 3
    assert res.record["metrics"]["val_bpb"]["last"] == 1.25


def test_crash_is_failed_with_exit_code_and_log_tail(lab, make_experiment):
    make_experiment("print('val_bpb: 1.0')\nraise ValueError('bad shape (3, 4)')\n")
    res = run1(lab)
    assert res.status == "failed" and res.record["exit_code"] == 1
    assert "ValueError: bad shape (3, 4)" in res.record["log_tail"]
    assert "ValueError" in res.record["reason"]


def test_timeout_kills_the_whole_process_group(lab, make_experiment, tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    make_experiment(f"""
        import subprocess, sys, time
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pidfile)!r}, "w").write(str(p.pid))
        print("val_bpb: 2.0", flush=True)
        time.sleep(600)
        """)
    t0 = time.monotonic()
    res = run1(lab, timeout="2s")
    assert res.status == "timeout"
    assert time.monotonic() - t0 < 30
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while psutil.pid_exists(grandchild) and psutil.Process(grandchild).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "grandchild survived the timeout"
        time.sleep(0.05)
    assert res.record["metrics"]["val_bpb"]["last"] == 2.0  # what was logged before the timeout is kept


def test_sigterm_ignoring_script_is_killed_after_grace(lab, make_experiment, monkeypatch):
    monkeypatch.setattr("assay.runner.process.GRACE_SECONDS", 0.5)
    make_experiment("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(600)\n")
    res = run1(lab, timeout="1s")
    assert res.status == "timeout"
    # SIGKILL came after the patched 0.5 s grace, not the default 5 s (1 s timeout + 5 s would be >= 6)
    assert res.record["duration"] < 4.0, res.record["duration"]


def test_memory_error_is_oom(lab, make_experiment):
    make_experiment("""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        hoard = []
        while True:
            hoard.append(bytearray(64 << 20))
        """)
    res = run1(lab)
    assert res.status == "oom"
    assert "MemoryError" in res.record["reason"]


def test_peak_memory_of_the_tree_is_recorded(lab, make_experiment):
    make_experiment("""
        import time
        block = bytearray(200 << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(0.5)
        print("val_bpb: 1.0")
        """)
    res = run1(lab)
    assert res.record["peak_rss"] > 200 << 20


def test_nan_metric_is_status_nan(lab, make_experiment):
    make_experiment("print('val_bpb: nan')\n")
    assert run1(lab).status == "nan"


def test_missing_metric_is_failed(lab, make_experiment):
    make_experiment("print('done')\n")
    res = run1(lab)
    assert res.status == "failed" and "never reported" in res.record["reason"]


def test_params_arrive_as_json_env_and_api(lab, make_experiment):
    make_experiment("""
        import json, os
        import assay
        p = assay.params()
        env = json.loads(os.environ["ASSAY_PARAMS"])
        assert env == dict(p), (env, p)
        assert os.environ["ASSAY_PARAM_OPTIM__LR"] == "0.003"
        assert os.environ["ASSAY_SEED"] == "7"
        assert p["optim"]["lr"] == 0.003 and p.batch == 64 and p["seed"] == 7
        assert p.version == "1.10" and p.country == "no"
        print("val_bpb: 1.0")
        """, config={"seed": 0, "batch": 32, "optim": {"lr": 0.1}, "version": "1.9", "country": "fr"})
    typed = ["optim.lr=3e-3", "batch=64", "seed=7", "version=1.10", "country=no"]
    res = run1(lab, overrides=typed)
    assert res.status == "ok", res.record["log_tail"]
    assert res.record["params"] == {"seed": 7, "batch": 64, "optim": {"lr": 0.003}, "version": "1.10", "country": "no"}
    assert res.record["overrides"] == typed  # as typed, not re-serialised
    assert "warnings" not in res.record


def test_unknown_param_is_an_error_before_any_folder_is_made(lab, make_experiment):
    make_experiment("print('val_bpb: 1')\n", config={"seed": 0, "lr": 0.1})
    with pytest.raises(ConfigError, match="Did you mean 'lr'"):
        run1(lab, overrides=["lr_max=1"])
    assert not (lab.experiment_dir("exp") / "runs").exists()


def test_plus_adds_a_key_and_an_unread_override_is_warned(lab, make_experiment):
    make_experiment("import assay\nassay.params()['seed']\nprint('val_bpb: 1')\n")
    res = run1(lab, overrides=["+dropout=0.1"])
    assert res.record["params"]["dropout"] == 0.1
    assert any("dropout" in w for w in res.record["warnings"])


def test_repeat_runs_consecutive_seeds_in_one_group(lab, make_experiment):
    make_experiment("import os\nprint('val_bpb:', 1 + int(os.environ['ASSAY_SEED']) / 10)\n", config={"seed": 3})
    results = run_experiment(lab, RunSpec("exp", "rep", [], repeat=3))
    assert [r.record["seed"] for r in results] == [3, 4, 5]
    assert [r.record["metrics"]["val_bpb"]["last"] for r in results] == [1.3, 1.4, 1.5]
    assert len({r.record["group"] for r in results}) == 1
    assert len({r.path for r in results}) == 3


def test_command_line_entry_point(lab, make_experiment):
    exp = make_experiment("", entry="bash run.sh")
    (exp.path / "run.sh").write_text("echo \"cwd=$(basename $PWD)\"\necho 'val_bpb: 0.5'\n")
    res = run1(lab)
    assert res.status == "ok"
    assert "cwd=exp" in (res.path / "logs/output.log").read_text()


def test_missing_entry_point_is_a_clear_error(lab, make_experiment):
    make_experiment("", entry="nope.py")
    with pytest.raises(ConfigError, match="'nope.py' does not exist"):
        run1(lab)


def test_api_logging_steps_tags_and_artifacts(lab, make_experiment):
    make_experiment("""
        import assay
        run = assay.init()
        for step in range(100):
            assay.log({"loss": 1 / (step + 1), "val_bpb": 2 - step / 100}, step=step)
        assay.set_tag("arch", "gpt")
        assay.log_params({"n_layer": 4})
        open("weights.pt", "wb").write(b"x")
        assay.log_artifact("weights.pt")
        assay.finish()
        assay.finish()
        """)
    res = run1(lab)
    m = res.record["metrics"]
    assert m["loss"]["count"] == 100 and m["val_bpb"]["best_step"] == 99
    assert res.record["tags"] == {"arch": "gpt"}
    assert res.record["logged_params"] == {"n_layer": 4}
    assert (res.path / "checkpoints" / "weights.pt").read_bytes() == b"x"


def test_pep723_script_runs_without_uv(lab, make_experiment, monkeypatch):
    monkeypatch.setenv("PATH", os.path.dirname(os.__file__))  # no uv (nor git) on PATH
    make_experiment("# /// script\n# dependencies = []\n# ///\nprint('val_bpb: 1.5')\n")
    res = run1(lab)
    assert res.status == "ok" and res.record["command"][0] == lab.python


def test_run_record_is_complete(lab, make_experiment):
    make_experiment("print('val_bpb: 1.0')\n")
    res = run1(lab)
    rec = records.read_record(res.path)
    for key in ("id", "status", "command", "params", "seed", "started", "ended", "duration", "peak_rss",
                "exit_code", "metrics", "env", "log_tail"):
        assert key in rec, key
    env = json.loads((res.path / "env.json").read_text())
    assert "psutil" in {k.lower() for k in env["packages"]}
    assert env["python_version"]


def test_standalone_script_creates_its_own_run(lab, make_experiment):
    import subprocess
    import sys

    exp = make_experiment("import assay\nassay.log({'val_bpb': 0.7})\nprint(assay.params()['seed'])\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    out = subprocess.run([sys.executable, "train.py"], cwd=exp.path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (exp.path / "runs").iterdir()
    rec = records.read_record(run_dir)
    assert rec["status"] == "ok" and rec["standalone"] and rec["metrics"]["val_bpb"]["last"] == 0.7
    from assay.store.query import list_runs

    rows, _ = list_runs(lab, "exp")
    assert [r["id"] for r in rows] == [rec["id"]]


def test_standalone_crash_is_failed(lab, make_experiment):
    import subprocess
    import sys

    exp = make_experiment("import assay\nassay.log({'val_bpb': 0.7})\nraise SystemError('boom')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    subprocess.run([sys.executable, "train.py"], cwd=exp.path, env=env, capture_output=True)
    (run_dir,) = (exp.path / "runs").iterdir()
    assert records.read_record(run_dir)["status"] == "failed"


def test_run_folders_are_never_reused(lab, make_experiment):
    make_experiment("print('val_bpb: 1')\n")
    paths = {run1(lab, desc="same").path for _ in range(3)}
    assert len(paths) == 3
    assert all(Path(p, "run.json").exists() for p in paths)


def test_numpy_scalars_are_logged_as_numbers(lab, make_experiment):
    make_experiment("import assay, numpy as np\nassay.log({'val_bpb': np.float32(0.5), 'n': np.int64(3)})\n")
    res = run1(lab)
    assert res.status == "ok", res.record["log_tail"]
    assert res.record["metrics"]["val_bpb"]["last"] == 0.5 and res.record["metrics"]["n"]["last"] == 3


def test_pep723_script_runs_through_uv_when_installed(lab, make_experiment, monkeypatch):
    import shutil
    import sys

    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    assert Path(uv).exists(), "uv is a test dependency"
    monkeypatch.setenv("PATH", f"{Path(uv).parent}:{os.environ['PATH']}")
    make_experiment("# /// script\n# requires-python = '>=3.11'\n# dependencies = []\n# ///\n"
                    "import sys\nprint('interpreter:', sys.executable)\nprint('val_bpb: 1.25')\n")
    res = run1(lab)
    assert res.status == "ok", res.record["log_tail"]
    assert res.record["command"][:2] == ["uv", "run"]
    assert res.record["metrics"]["val_bpb"]["last"] == 1.25
