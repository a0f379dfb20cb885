"""Run folders for runs not started by `assay run`: a script run by hand, a notebook or REPL calling
`assay.init()`. The script's process owns its folder and indexes it when it ends."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from assay.errors import ConfigError
from assay.experiment import goal_lookup, list_experiments, load_experiment
from assay.lab import find_lab, maybe_find_lab
from assay.store.records import (
    HOST,
    STATUSES,
    RunRecord,
    Status,
    create_run_dir,
    process_start_time,
    read_record,
    summarize,
    write_record,
)


def create_standalone(script: Path) -> tuple[Path, dict[str, Any], Path | None]:
    """Make a run folder for a script run without `assay run`; returns (folder, params, lab root)."""
    script = script.resolve()
    lab = maybe_find_lab(script.parent)
    runs_dir = script.parent / "runs"
    params: dict[str, Any] = {}
    cfg = script.parent / "config.yaml"
    if cfg.is_file():
        from assay.config import load_yaml

        loaded = load_yaml(cfg) or {}
        params = loaded if isinstance(loaded, dict) else {}
    path, _ = create_run_dir(runs_dir, f"{script.stem}-manual", RunRecord(
        experiment=script.parent.name if lab else None, desc=f"{script.stem}-manual", started=time.time(),
        standalone=True, command=[sys.executable, *sys.argv], params=params,
        owner_pid=os.getpid(), owner_started=process_start_time(os.getpid()), host=HOST))
    return path, params, lab.root if lab else None


def create_interactive(cwd: Path, experiment: str | None, desc: str | None) -> tuple[Path, dict[str, Any], Path]:
    """Make a run folder for `assay.init()` in a notebook or REPL (or with `experiment=`): in the lab
    found from the working directory, under the named experiment, else the one whose folder holds
    the working directory. Returns (folder, params, lab root).

    Raises:
        ConfigError: no lab there, no experiment named and none holding the working directory,
            or an unknown experiment.
    """
    here = cwd.resolve()
    lab = maybe_find_lab(here)
    if lab is None:
        raise ConfigError(f"assay.init() found no assay lab in {here} or its parents: an interactive session records into the lab it runs in",
                          "Start Jupyter/IPython inside your lab (or os.chdir('path/to/lab')), or make this folder one: assay init")
    if experiment is None:
        exps = lab.experiments_dir.resolve()
        if not (here.is_relative_to(exps) and here != exps):
            known = list_experiments(lab)
            raise ConfigError(f"assay.init() in {here} is not inside an experiment folder of the lab {lab.root}",
                              f"Name the experiment: assay.init(experiment='{known[0] if known else 'NAME'}') "
                              f"(known: {', '.join(known) or 'none yet; create one with `assay new`'}).")
        experiment = here.relative_to(exps).parts[0]
    exp = load_experiment(lab, experiment)
    params = exp.default_params()
    desc = desc or "interactive"
    path, _ = create_run_dir(exp.runs_dir, desc, RunRecord(
        experiment=exp.name, desc=desc, started=time.time(), standalone=True, interactive=True,
        command=[sys.executable, *sys.argv], cwd=str(here), params=params, primary_metric=exp.metric, goal=exp.goal,
        owner_pid=os.getpid(), owner_started=process_start_time(os.getpid()), host=HOST))
    return path, params, lab.root


def finalize_standalone(path: Path, status: str, lab_root: Path | None) -> None:
    rec = RunRecord.from_dict(read_record(path))
    summary = summarize(path, goal_lookup(lab_root, rec.experiment))
    now = time.time()
    rec = rec.with_(status=Status(status) if status in STATUSES else status, ended=now, duration=now - rec.started,
                    metrics=summary["metrics"], tags=summary["tags"], artifacts=summary["artifacts"],
                    params={**rec.params, **summary["logged_params"]})
    write_record(path, rec)
    record = rec.to_dict()
    if lab_root is not None and record.get("experiment"):
        with find_lab(lab_root).index() as index:
            index.upsert(path, record)
