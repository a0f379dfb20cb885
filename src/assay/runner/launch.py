"""One `assay run`: resolve params and entry point, make the run folder, launch, record, index."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shlex
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from assay.capture import Capture
from assay.config import Override, apply_overrides, flatten, parse_duration, parse_overrides
from assay.errors import ConfigError, RunError
from assay.experiment import Experiment, load_experiment
from assay.lab import Lab, require_writable
from assay.runner import styles
from assay.runner.control import Launcher, LaunchRequest, LocalLauncher
from assay.runner.status import classify
from assay.store import records

_PEP723 = re.compile(r"^# /// script\s*$", re.M)


class RunObserver(Protocol):
    """Told by start_run, in the launching thread, when a run's folder exists (its record still
    'running') and when its final record is written: `assay run`'s start line, live status and
    per-seed summary lines. Must not raise."""

    def started(self, path: Path, record: dict[str, Any]) -> None: ...

    def ended(self, result: RunResult) -> None: ...


@dataclass(frozen=True)
class RunSpec:
    """What to run: an experiment, a description and command-line overrides."""

    experiment: str
    desc: str
    overrides: list[str] = field(default_factory=list)
    timeout: str | None = None
    repeat: int = 1
    entry: str | None = None
    follow: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    extra_params: dict[str, Any] = field(default_factory=dict)  # set by sweeps/loops, validated like overrides
    env: dict[str, str] = field(default_factory=dict)  # merged into the child's env (e.g. CUDA_VISIBLE_DEVICES per slot)
    launcher: Launcher | None = None  # where the process runs (default: here); executors bring their own
    observer: RunObserver | None = None  # told when each run starts and ends (the CLI's live feedback)
    seed_offset: int = 0  # added to the seed (the loop runs seeds a commit's code never ran)
    code_dir: Path | None = None  # run the experiment's copy in this folder (a loop candidate's worktree)


@dataclass(frozen=True)
class RunResult:
    path: Path
    record: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.record["status"])


def resolve_params(exp: Experiment, overrides: list[str], extra: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[Override]]:
    """config.yaml defaults + key=value overrides (+ programmatic ones), unknown keys rejected."""
    parsed = parse_overrides(overrides)
    parsed += [Override.of(k, v) for k, v in (extra or {}).items()]
    params = apply_overrides(exp.default_params(), parsed, source=str(exp.config_path.relative_to(exp.path.parent.parent)))
    return params, parsed


def entry_command(lab: Lab, exp: Experiment, entry: str) -> list[str]:
    """The argv for an entry point: a .py file (via uv for PEP 723 scripts), or a command line."""
    try:
        parts = shlex.split(entry)
    except ValueError as exc:  # "No closing quotation": from --entry (experiment.yaml's is checked on load)
        raise ConfigError(f"Cannot read the entry point '{entry}': {exc}", "Close the quote, e.g. --entry \"python train.py\".") from None
    if not parts:
        raise ConfigError(f"Experiment '{exp.name}' has an empty entry point", f"Set `entry:` in {exp.file}.")
    if not exp.workdir.is_dir():
        raise ConfigError(f"The working directory '{exp.raw.get('workdir')}' of experiment '{exp.name}' does not exist ({exp.workdir})",
                          f"Fix `workdir:` in {exp.file} (relative to the experiment folder).")
    first = parts[0]
    if len(parts) == 1 and first.endswith((".py", ".ipynb", ".sh")) or (exp.path / first).suffix in (".py", ".ipynb"):
        script = exp.path / first
        if not script.is_file():
            raise ConfigError(
                f"Entry point '{first}' does not exist in {exp.path}",
                f"Create it, or point `entry:` in {exp.file} (or --entry) at an existing script.",
            )
        if script.suffix == ".py":
            text = script.read_text(encoding="utf-8", errors="replace")
            if shutil.which("uv") and _PEP723.search(text):
                return ["uv", "run", "--quiet", str(script), *parts[1:]]
            if "marimo.App(" in text:  # a marimo notebook: runs as a script, params also as --key=value args
                from assay.integrations.marimo_notebook import is_marimo_notebook

                if is_marimo_notebook(text):
                    return [lab.python, "-u", "-m", "assay.integrations.marimo_notebook", str(script), *parts[1:]]
            return [lab.python, "-u", str(script), *parts[1:]]
        if script.suffix == ".sh":
            return ["bash", str(script), *parts[1:]]
        return [lab.python, "-m", "assay.integrations.notebook", str(script), *parts[1:]]
    if first in ("python", "python3"):
        parts[0] = lab.python
    elif not shutil.which(first) and not (exp.path / first).exists():
        raise ConfigError(f"Command '{first}' of the entry point '{entry}' was not found", f"Install it or fix `entry:` in {exp.file}.")
    return parts


def _child_env(lab: Lab, exp: Experiment, path: Path, params: dict[str, Any], seed: Any) -> dict[str, str]:
    env = dict(os.environ)
    # No bytecode is written next to the code (a run leaves the tree as it found it). The loop's
    # runs also read none from there (a fresh PYTHONPYCACHEPREFIX per run, set by the loop): a .pyc
    # left in __pycache__ could stand in for a protected file whose source is unchanged. Plain
    # runs keep reading installed packages' bytecode, which would cost seconds per start to rebuild.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(
        ASSAY_RUN_DIR=str(path),
        ASSAY_RUN_ID=records.run_id(path),
        ASSAY_EXPERIMENT=exp.name,
        ASSAY_LAB=str(lab.root),
        ASSAY_PARAMS=json.dumps(params, default=str),
        ASSAY_SEED=str(seed),
        PYTHONUNBUFFERED="1",
    )
    from assay.integrations.trackers import prepare_trackers

    env.update(prepare_trackers(path, os.environ))  # MLflow, W&B and trackio write into the run folder
    for key, value in flatten(params).items():
        env[styles.env_var(key)] = value if isinstance(value, str) else json.dumps(value, default=str)
    return env


def _sampling(writer: _CaptureWriter) -> dict[str, Any]:
    """System-metric sampling (launchers that run the script here take it, others ignore it);
    ASSAY_SYS_INTERVAL sets the seconds between samples, 0 turns it off."""
    from assay.runner.process import SAMPLE_SECONDS

    raw = os.environ.get("ASSAY_SYS_INTERVAL", "")
    try:
        every = float(raw) if raw else SAMPLE_SECONDS
    except ValueError:
        raise ConfigError(f"ASSAY_SYS_INTERVAL={raw!r} is not a number of seconds",
                          "Set ASSAY_SYS_INTERVAL=5 (or 0 to record no sys/* metrics).") from None
    if every <= 0:
        return {}
    return {"on_sample": writer.system, "sample_every": every}


class _CaptureWriter:
    """Appends metrics parsed from output lines to metrics.jsonl (the same file the API writes)."""

    def __init__(self, path: Path, capture: Capture) -> None:
        self.capture = capture
        self.fd = os.open(path / records.METRICS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def __call__(self, line: str) -> None:
        step, found = self.capture.parse(line)
        if found:
            os.write(self.fd, (json.dumps({"t": round(time.time(), 3), "step": step, "m": found, "src": "out"}) + "\n").encode())

    def system(self, metrics: dict[str, float]) -> None:
        """The runner's `sys/*` samples, marked src "sys" so readers can tell them from the script's."""
        if metrics:
            os.write(self.fd, (json.dumps({"t": round(time.time(), 3), "m": metrics, "src": "sys"}) + "\n").encode())

    def close(self) -> None:
        os.fsync(self.fd)
        os.close(self.fd)


def start_run(lab: Lab, exp: Experiment, spec: RunSpec, seed_offset: int = 0, group: str | None = None,
              resolved: tuple[dict[str, Any], list[Override]] | None = None) -> RunResult:
    """Run one seed of `spec` to completion and return its final record. Never raises for a
    script's failure: crash, timeout, OOM and NaN are statuses in the record."""
    import copy

    if spec.code_dir is not None:
        exp = exp.at(spec.code_dir)
    seed_offset += spec.seed_offset
    params, parsed = copy.deepcopy(resolved) if resolved else resolve_params(exp, spec.overrides, spec.extra_params)
    seed = params.get("seed", 0)
    if isinstance(seed, int) and seed_offset:
        seed += seed_offset
    params["seed"] = seed
    entry = spec.entry or exp.entry
    cmd = entry_command(lab, exp, entry)
    script = styles.prepare(exp, entry, cmd, params, parsed)  # a bad template or Hydra override: no folder made
    timeout_text = spec.timeout or exp.timeout or lab.default_timeout
    timeout = parse_duration(timeout_text)
    capture = Capture(exp.capture, declared=[exp.metric, *exp.secondary])
    from assay.cost import lab_prices

    prices = lab_prices(lab)  # a bad price in assay.toml fails before the run, not after it

    desc = spec.desc if spec.repeat <= 1 else f"{spec.desc}-seed{seed}"
    started = time.time()
    rec = records.RunRecord(
        experiment=exp.name, desc=desc, started=started, command=cmd, entry=entry, cwd=str(exp.workdir), params=params,
        overrides=[o.text for o in parsed], seed=seed, timeout=timeout, primary_metric=exp.metric, goal=exp.goal,
        group=group, tags=dict(spec.tags), owner_pid=os.getpid(), owner_started=records.process_start_time(os.getpid()),
        host=records.HOST)
    path, rec = records.create_run_dir(exp.runs_dir, desc, rec)
    inv = styles.invocation(script, params, set(flatten(exp.default_params())), parsed, path)
    if inv.argv != cmd:  # the params' arguments name the run folder (Hydra's output dir)
        rec = rec.with_(command=inv.argv)
        cmd = inv.argv
        records.write_record(path, rec)
    with lab.index() as index:
        index.upsert(path, rec.to_dict())
    if spec.observer is not None:
        spec.observer.started(path, rec.to_dict())

    # Provenance is captured while the script starts: it reads the same tree, and costs no wall time.
    prov: dict[str, Any] = {}

    def _provenance() -> None:
        from assay.provenance import code_version, data_fingerprints, environment, git_state

        try:
            prov["git"] = git_state(exp.path, path / records.PATCH_FILE)
            prov["code"] = code_version(exp.path, exp.code_paths, prov["git"])
            env = environment(cmd[0] if cmd[0] == lab.python else lab.python, lab.state_dir / "cache")
            (path / "env.json").write_text(json.dumps(env, indent=1))
            prov["env"] = {k: env[k] for k in ("python", "python_version", "hostname", "platform")}
            prov["data"] = data_fingerprints(exp.path, params, declared=exp.data, lab_root=lab.root)  # what the data was when the run read it
        except Exception as exc:  # noqa: BLE001 - provenance failing must not lose the run; it is reported
            prov["error"] = f"{type(exc).__name__}: {exc}"

    prov_thread = threading.Thread(target=_provenance, daemon=True)
    prov_thread.start()
    writer = _CaptureWriter(path, capture)
    child: list[records.RunRecord] = []  # the record once the script's pid is in it
    child_env = {**_child_env(lab, exp, path, params, seed), **inv.env, **spec.env}
    try:
        request = LaunchRequest(command=tuple(cmd), cwd=exp.workdir, env=child_env,
                                run_dir=path, source=exp.path, timeout=timeout, on_line=writer, capture=capture,
                                follow=spec.follow, on_start=lambda pid: child.append(_record_child(path, rec, pid)),
                                **_sampling(writer))
        result = (spec.launcher or LocalLauncher()).launch(request)
    except OSError as exc:
        started_ok = bool(child)  # else Popen itself failed
        reason = f"writing the run's output failed: {exc}" if started_ok else f"could not start {cmd[0]}: {exc}"
        with contextlib.suppress(OSError):  # the same full disk; the record below says what happened
            writer.close()
        now = time.time()
        rec = (child[-1] if child else rec).with_(status=records.Status.FAILED, reason=reason, ended=now, duration=now - started)
        records.write_record(path, rec)
        with lab.index() as index:
            index.upsert(path, rec.to_dict())
        if started_ok:
            raise RunError(f"Run {rec.id} stopped: {reason}", "Free disk space (df -h), then run it again.") from None
        raise RunError(f"Could not start '{' '.join(cmd)}': {exc}", f"Check `entry:` in {exp.file}.") from None
    writer.close()
    prov_thread.join()
    ended = time.time()
    from assay.integrations.trackers import import_trackers

    tracker_warnings = import_trackers(path, exp.workdir, started=started)  # where the script ran

    summary = records.summarize(path, exp.goal_of)
    tail = records.log_tail(path)
    pm = summary["metrics"].get(exp.metric, {})
    status, reason = classify(result.returncode, result.stopped_by, tail, exp.metric, pm.get("last"),
                              oom_kills=result.oom_kills,
                              seen={k: m.get("last") for k, m in summary["metrics"].items()})
    params_after = params
    if exp.params_style == "hydra":
        from assay.runner.hydra_app import read_back

        params_after = read_back(path, params) or params
    warnings = list(tracker_warnings)
    unreached = None
    # Only a run that ended by itself is judged: a killed one never wrote its record of reads.
    if status == "ok" and (lost := styles.unreached(inv, parsed, path, script.entry_file)):
        unreached = lost
        warnings.append(styles.unreached_warning(lost, exp.params_style))
    if result.leftovers:
        warnings.append(f"ended processes the script left running: {', '.join(result.leftovers)}")
    if prov.get("error"):
        warnings.append(f"provenance capture failed: {prov['error']}")
    rec = (child[-1] if child else rec).with_(
        status=status, reason=reason, exit_code=result.returncode, ended=ended, duration=ended - started,
        peak_rss=result.peak_rss, peak_gpu_mem=result.peak_gpu_mem, cost=_cost(result, child_env, ended - started, prices),
        metrics=summary["metrics"],
        artifacts=summary["artifacts"], log_tail=tail, git=prov.get("git"), code=prov.get("code"), env=prov.get("env"),
        tags={**rec.tags, **summary["tags"]}, params=params_after, params_unreached=unreached,
        data=_flag_rewritten(exp.path, prov["data"]) if prov.get("data") else None,
        logged_params=summary["logged_params"] or None, warnings=warnings or None,
    )
    records.write_record(path, rec)
    record = rec.to_dict()
    with lab.index() as index:
        index.upsert(path, record)
    if spec.observer is not None:
        spec.observer.ended(RunResult(path, record))
    return RunResult(path, record)


def _cost(result: Any, env: dict[str, str], duration: float, prices: Any) -> dict[str, Any]:
    """The run's ledger entry; a launcher that measures no CPU time or GPUs (a plug-in executor)
    leaves CPU-hours at 0 and counts the GPUs its env names."""
    from assay.cost import run_cost, visible_gpus

    gpus = getattr(result, "gpus", None)
    return run_cost(duration=duration, cpu_seconds=getattr(result, "cpu_seconds", None),
                    gpus=gpus if gpus is not None else visible_gpus(env), prices=prices)


def _flag_rewritten(exp_path: Path, data: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mark data files whose size or mtime moved while the run ran (it wrote them, or something
    else did): their fingerprint is of the file as the run started."""
    for name, fp in data.items():
        try:
            st = (exp_path / name).stat()
        except OSError:
            fp["changed_during_run"] = "deleted"
            continue
        if st.st_size != fp["bytes"] or st.st_mtime != fp["mtime"]:
            fp["changed_during_run"] = True
    return data


def _record_child(path: Path, rec: records.RunRecord, pid: int) -> records.RunRecord:
    """Re-write the 'running' record with the script's pid, so a lost run names its process."""
    rec = rec.with_(child_pid=pid)
    records.write_record(path, rec)
    return rec


def run_experiment(lab: Lab, spec: RunSpec) -> list[RunResult]:
    """Run `spec` (`repeat` times with seeds seed, seed+1, ...). Stops repeating after an interrupt.

    Raises:
        ConfigError: unknown experiment or parameter, bad timeout.
        ConfigError: a missing entry point too (exit 2).
    """
    exp = load_experiment(lab, spec.experiment)
    if spec.repeat < 1:
        raise ConfigError(f"--repeat must be at least 1, got {spec.repeat}", "Pass --repeat 3 for three seeds.")
    resolved = resolve_params(exp, spec.overrides, spec.extra_params)  # fail before creating any folder
    require_writable(exp.runs_dir, "start a run")
    parse_duration(spec.timeout or exp.timeout or lab.default_timeout)
    entry_command(lab, exp, spec.entry or exp.entry)
    group = f"{records.slug(spec.desc)}-{int(time.time())}" if spec.repeat > 1 else None
    results = []
    for i in range(spec.repeat):
        res = start_run(lab, exp, spec, seed_offset=i, group=group, resolved=resolved)
        results.append(res)
        if res.status == "interrupted":
            break
    return results


def summary_line(res: RunResult, lab_root: Path | None = None) -> str:
    """`ok  val_f1=0.912 (best 0.93 @ 7)  12.3s  peak 512.0MB  experiments/x/runs/...`"""
    from assay.config import format_bytes, format_duration

    r = res.record
    pm = (r.get("metrics") or {}).get(r.get("primary_metric") or "", {})
    metric = f"{r.get('primary_metric')}=-"
    if pm:
        last, best = pm.get("last"), pm.get("best")
        metric = f"{r['primary_metric']}={_fmt(last)}"
        if best is not None and last is not None and best != last and math.isfinite(last):
            metric += f" (best {_fmt(best)} @ {pm.get('best_step')})"
    where = res.path
    if lab_root is not None:
        try:
            where = res.path.relative_to(lab_root)
        except ValueError:
            pass
    parts = [f"{r['status']:<8}", metric, format_duration(r.get("duration")), f"peak {format_bytes(r.get('peak_rss'))}"]
    if r.get("peak_gpu_mem"):
        parts.append(f"gpu {format_bytes(r['peak_gpu_mem'])}")
    parts.append(str(where))
    line = "  ".join(parts)
    if r.get("reason") and r["status"] != "ok":
        line += f"\n  {r['reason']} (log: {where}/{records.LOG_FILE})"
    for w in r.get("warnings", []):
        line += f"\n  warning: {w}"
    return line


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if not math.isfinite(v):
        return str(v)
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.4e}"
