"""Metrics from trackers scripts already use: MLflow, Weights & Biases, TensorBoard and trackio.

Before a run starts, `prepare_trackers` points each tracker at the run folder's `trackers/` (a
variable the user already set is left alone); when it ends, `import_trackers` reads what they logged and
appends it to metrics.jsonl with `src` set to the tracker's name, so the record, compare and
verdict see it like any other metric:

- MLflow: `MLFLOW_TRACKING_URI=sqlite:///<run>/trackers/mlflow.db`, read with sqlite3 (params,
  every metric point with its step and time). MLflow puts artifacts under `./mlruns` of the
  working directory whatever the store; they are moved to `trackers/mlruns/` and the database is
  updated to point there, so `mlflow ui --backend-store-uri sqlite:///.../mlflow.db` still works.
- W&B: `WANDB_MODE=offline`, `WANDB_DIR=<run>/trackers`, `WANDB_SILENT=true`; history, config and
  summary read from the offline run's `.wandb` file (decoded with wandb's own protobuf classes).
- TensorBoard: no variable names a log folder, so event files are found where scripts write them:
  in the run folder, and new ones in the experiment folder (`SummaryWriter()` writes to
  `./runs/<date>_<host>`, inside assay's own `runs/`), which are moved to `trackers/tensorboard/`.
  Scalars are read with tensorboard's event accumulator.
- trackio: `TRACKIO_DIR=<run>/trackers/trackio`, read with sqlite3.

Precedence, for a metric name logged in several ways: the assay API first, then MLflow, W&B,
trackio, TensorBoard (in that order; a name taken by one is not imported from the next), then
values captured from printed output (see records.metric_series). Nothing here raises: a tracker
whose data cannot be read becomes a warning in the run's record.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import sqlite3
import struct
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

TRACKERS_DIR = "trackers"
MLFLOW_DB = "mlflow.db"
_EVENTS = "tfevents"
_SCAN_LIMIT = 50_000  # entries of the experiment folder looked at for new event files
_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages", ".git", ".venv", "venv"}


@dataclass
class Imported:
    """What one tracker logged: points (time, step, name, value), params and artifact paths."""

    src: str
    points: list[tuple[float, int | None, str, float]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)


def prepare_trackers(run_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Make `run_dir/trackers/` and return the variables that point MLflow, W&B and trackio at it.

    A variable already set in `environ` is the user's choice and is left alone (that tracker's
    data then stays where the user sent it and is not imported). The folder exists beforehand
    because older MLflow versions do not create a SQLite database's folder; an unused one is
    removed when the run ends.
    """
    base = run_dir / TRACKERS_DIR
    base.mkdir(exist_ok=True)
    wanted = {
        "MLFLOW_TRACKING_URI": "sqlite:///" + (base / MLFLOW_DB).as_posix(),
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(base),
        "WANDB_SILENT": "true",
        "TRACKIO_DIR": str(base / "trackio"),
    }
    return {k: v for k, v in wanted.items() if not environ.get(k)}


def import_trackers(run_dir: Path, exp_dir: Path, *, started: float) -> list[str]:
    """Append what trackers logged during the run to its metrics.jsonl; returns warnings.

    Args:
        run_dir: the run folder (its `trackers/` holds the redirected stores).
        exp_dir: the experiment folder, the script's working directory: MLflow's artifacts and
            TensorBoard event files written there during the run are moved into the run folder.
        started: when the run started (seconds since the epoch): older event files are not the run's.

    Returns:
        One line per tracker whose data could not be read; never raises.
    """
    from assay.store import records

    run_dir, exp_dir = run_dir.resolve(), exp_dir.resolve()  # as the script's trackers saw them (getcwd)
    warnings: list[str] = []
    found: list[Imported] = []
    readers: list[tuple[str, Callable[[], Imported | None]]] = [
        ("MLflow", lambda: _mlflow(run_dir, exp_dir)),
        ("W&B", lambda: _wandb(run_dir)),
        ("trackio", lambda: _trackio(run_dir)),
        ("TensorBoard", lambda: _tensorboard(run_dir, exp_dir, started)),
    ]
    for name, read in readers:
        try:
            got = read()
        except ImportError as exc:
            warnings.append(f"{name} data found in {run_dir / TRACKERS_DIR} was not imported: {exc}"
                            " (pip install 'assay[trackers]' into assay's environment)")
            continue
        except Exception as exc:  # noqa: BLE001 - a tracker's unreadable files must not lose the run; reported
            warnings.append(f"importing {name} data failed: {type(exc).__name__}: {exc}")
            continue
        if got is not None:
            found.append(got)
    _remove_if_empty(run_dir / TRACKERS_DIR)
    if found:
        try:
            _append(run_dir / records.METRICS_FILE, found, records.iter_events(run_dir))
        except OSError as exc:
            warnings.append(f"writing imported tracker metrics failed: {exc}")
    return warnings


def _append(file: Path, found: list[Imported], existing: Iterator[dict[str, Any]]) -> None:
    """Write the imported points, params and artifacts; a name or param the API logged is skipped."""
    taken: set[str] = set()
    taken_params: set[str] = set()
    for ev in existing:
        if "src" in ev:
            continue  # captured output (or an earlier import): lower precedence
        if isinstance(ev.get("m"), dict):
            taken.update(ev["m"])
        elif isinstance(ev.get("params"), dict):
            taken_params.update(ev["params"])
    lines: list[str] = []
    for got in found:
        names = {name for _, _, name, _ in got.points} - taken
        event: dict[str, Any] | None = None
        for t, step, name, value in got.points:
            if name not in names:
                continue
            if event is None or event["t"] != t or event["step"] != step or name in event["m"]:
                if event is not None:
                    lines.append(json.dumps(event))
                event = {"t": t, "step": step, "m": {}, "src": got.src}
            event["m"][name] = value
        if event is not None:
            lines.append(json.dumps(event))
        taken |= names
        params = {k: v for k, v in got.params.items() if k not in taken_params}
        if params:
            lines.append(json.dumps({"t": round(time.time(), 3), "params": params, "src": got.src}, default=str))
            taken_params.update(params)
        lines += [json.dumps({"t": round(time.time(), 3), "artifact": a, "src": got.src}) for a in got.artifacts]
    if lines:
        with file.open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def _number(value: Any) -> float | None:
    """A metric value as a float: numbers, and the "NaN"/"Infinity" strings trackers write for them."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if value in ("NaN", "nan", "Infinity", "inf", "-Infinity", "-inf"):
        return float(value.replace("Infinity", "inf"))
    return None


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass  # not empty (or not there): kept


# ------------------------------------------------------------------ MLflow


def _mlflow(run_dir: Path, exp_dir: Path) -> Imported | None:
    db = run_dir / TRACKERS_DIR / MLFLOW_DB
    if not db.is_file():
        return None
    got = Imported("mlflow")
    con = sqlite3.connect(db, timeout=10)
    try:
        runs = con.execute("SELECT run_uuid, experiment_id, artifact_uri FROM runs "
                           "WHERE lifecycle_stage = 'active' ORDER BY start_time").fetchall()
        for uuid, exp_id, artifact_uri in runs:
            for key, value in con.execute("SELECT key, value FROM params WHERE run_uuid = ?", (uuid,)):
                got.params[key] = value
            rows = con.execute("SELECT timestamp, step, key, value, is_nan FROM metrics WHERE run_uuid = ? "
                               "ORDER BY timestamp, step", (uuid,))
            got.points += [(ts / 1000, step, key, math.nan if is_nan else float(value)) for ts, step, key, value, is_nan in rows]
            got.artifacts += _adopt_mlflow_artifacts(con, run_dir, exp_dir, uuid, exp_id, artifact_uri)
        con.commit()
    finally:
        con.close()
    return got


def _local_path(uri: str | None) -> Path | None:
    if not uri:
        return None
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(uri).path))
    return Path(uri) if uri.startswith("/") else None


def _adopt_mlflow_artifacts(con: sqlite3.Connection, run_dir: Path, exp_dir: Path, uuid: str, exp_id: Any,
                            artifact_uri: str | None) -> list[str]:
    """Move a run's artifacts from the experiment folder's mlruns/ into the run folder; their paths."""
    src = _local_path(artifact_uri)
    if src is None:
        return []  # a remote artifact store: left where it is
    base = run_dir / TRACKERS_DIR / "mlruns" / str(exp_id)
    dest = base / uuid / src.name
    if src.is_relative_to(exp_dir) and not src.is_relative_to(run_dir) and src.parent.is_dir():
        base.mkdir(parents=True, exist_ok=True)
        shutil.move(src.parent, base / uuid)
        con.execute("UPDATE runs SET artifact_uri = ? WHERE run_uuid = ?", (str(dest), uuid))
        con.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?", (str(base), exp_id))
        _remove_empty_parents(src.parent.parent, exp_dir)
    elif not dest.is_dir():
        return []
    return [p.relative_to(run_dir).as_posix() for p in sorted(dest.rglob("*")) if p.is_file()]


def _remove_empty_parents(path: Path, stop: Path) -> None:
    """Remove `path` and its parents while they are empty, up to (not including) `stop`."""
    while path != stop and path.is_relative_to(stop):
        try:
            path.rmdir()
        except OSError:
            return
        path = path.parent


# ------------------------------------------------------------------ Weights & Biases

# The .wandb file is a LevelDB-style log: a 7-byte file header, then 32 KiB blocks of records, each
# with a 7-byte header (crc32, length, type); a record may span blocks (first/middle/last parts).
_WB_HEADER = struct.Struct("<4sHB")
_WB_RECORD = struct.Struct("<IHB")
_WB_BLOCK = 32768
_WB_FULL, _WB_FIRST, _WB_MIDDLE, _WB_LAST = 1, 2, 3, 4


def _wandb_records(file: Path) -> Iterator[bytes]:
    """The records of a .wandb file; stops at a torn or corrupt tail (a killed writer's)."""
    data = file.read_bytes()
    if len(data) < _WB_HEADER.size or _WB_HEADER.unpack_from(data)[0] != b":W&B":
        raise ValueError(f"{file.name} is not a W&B run file")
    pos, parts = _WB_HEADER.size, b""
    while True:
        left = _WB_BLOCK - pos % _WB_BLOCK
        if left < _WB_RECORD.size:
            pos += left  # zero padding at a block's end
        if pos + _WB_RECORD.size > len(data):
            return
        crc, length, kind = _WB_RECORD.unpack_from(data, pos)
        body = data[pos + _WB_RECORD.size:pos + _WB_RECORD.size + length]
        if len(body) < length or zlib.crc32(body, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF != crc:
            return
        pos += _WB_RECORD.size + length
        if kind == _WB_FULL:
            yield body
        elif kind == _WB_FIRST:
            parts = body
        elif kind == _WB_MIDDLE:
            parts += body
        elif kind == _WB_LAST:
            yield parts + body
            parts = b""


def _wandb(run_dir: Path) -> Imported | None:
    files = sorted((run_dir / TRACKERS_DIR / "wandb").glob("*run-*/run-*.wandb"))
    if not files:
        return None
    from wandb.proto import wandb_internal_pb2 as pb  # the record format is wandb's own protobuf

    got = Imported("wandb")
    for file in files:
        summary: dict[str, float] = {}
        last: tuple[float, int | None] = (file.stat().st_mtime, None)
        for raw in _wandb_records(file):
            rec = pb.Record()  # type: ignore[attr-defined]  # re-exported per protobuf version, out of mypy's sight
            rec.ParseFromString(raw)
            kind = rec.WhichOneof("record_type")
            if kind == "history":
                items = {_wb_key(i): json.loads(i.value_json) for i in rec.history.item}
                step = rec.history.step.num if rec.history.HasField("step") else items.get("_step")
                t = items.get("_timestamp") or last[0]
                last = (t, step)
                got.points += [(t, step, k, v) for k, raw_v in items.items()
                               if not k.startswith("_") and (v := _number(raw_v)) is not None]
            elif kind in ("config", "run"):
                config = rec.config if kind == "config" else rec.run.config
                for item in config.update:
                    key = _wb_key(item)
                    if not key.startswith("_"):
                        got.params[key] = json.loads(item.value_json)
            elif kind == "summary":
                for item in rec.summary.update:
                    value = _number(json.loads(item.value_json))
                    if value is not None and not _wb_key(item).startswith("_"):
                        summary[_wb_key(item)] = value
        # Values set only in the summary (run.summary["best"] = ...) become one final point.
        logged = {name for _, _, name, _ in got.points}
        got.points += [(last[0], last[1], k, v) for k, v in summary.items() if k not in logged]
    return got


def _wb_key(item: Any) -> str:
    return ".".join(item.nested_key) if item.nested_key else item.key


# ------------------------------------------------------------------ trackio


def _trackio(run_dir: Path) -> Imported | None:
    dbs = sorted((run_dir / TRACKERS_DIR / "trackio").glob("*.db"))
    if not dbs:
        return None
    got = Imported("trackio")
    for db in dbs:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            for (config,) in con.execute("SELECT config FROM configs ORDER BY id"):
                got.params.update({k: v for k, v in json.loads(config).items() if not k.startswith("_")})
            for stamp, step, metrics in con.execute("SELECT timestamp, step, metrics FROM metrics ORDER BY id"):
                t = datetime.fromisoformat(stamp).timestamp()
                got.points += [(t, step, k, v) for k, raw in _flat(json.loads(metrics)).items()
                               if (v := _number(raw)) is not None]
        finally:
            con.close()
    return got


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v
    return out


# ------------------------------------------------------------------ TensorBoard

# torch and TensorFlow name their files events.out.tfevents.<time>.<host>.<pid>.<n>[suffix];
# tensorboardX events.out.tfevents.<time>.<host>[suffix], without the writer's pid.
_EVENT_NAME = re.compile(r"tfevents\.(\d+)\.(.+)")
_PID = re.compile(r"\.(\d+)\.\d+")


def _tensorboard(run_dir: Path, exp_dir: Path, started: float) -> Imported | None:
    moved = _adopt_event_files(run_dir, exp_dir, started)
    files = [p for p in _walk(run_dir, run_dir) if _EVENTS in p.name and _own_event_file(run_dir, p)]
    if not files:
        return None
    from tensorboard.backend.event_processing import event_accumulator, plugin_event_accumulator
    from tensorboard.util import tensor_util

    by_dir: dict[Path, list[tuple[float, int, str, float]]] = {}
    for folder in sorted({p.parent for p in files}):
        acc = plugin_event_accumulator.EventAccumulator(str(folder), size_guidance={event_accumulator.TENSORS: 0})
        acc.Reload()
        series = by_dir.setdefault(folder, [])
        for tag in acc.Tags()["tensors"]:
            if acc.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
                continue
            for ev in acc.Tensors(tag):
                value = tensor_util.make_ndarray(ev.tensor_proto)
                if value.size == 1:
                    series.append((ev.wall_time, ev.step, tag, float(value.reshape(-1)[0])))
    # A tag written from several folders (Keras: train/ and validation/) is named after its folder.
    owners: dict[str, set[Path]] = {}
    for folder, series in by_dir.items():
        for _, _, tag, _ in series:
            owners.setdefault(tag, set()).add(folder)
    got = Imported("tensorboard", artifacts=moved)
    points = [(t, step, tag if len(owners[tag]) == 1 else f"{folder.name}/{tag}", v)
              for folder, series in by_dir.items() for t, step, tag, v in series]
    got.points = sorted(points, key=lambda p: (p[0], p[1]))
    return got


def _own_event_file(run_dir: Path, path: Path) -> bool:
    """Event files of the run itself, not copies inside another tracker's folder (W&B's
    sync_tensorboard, MLflow artifacts), which would import the same scalars twice."""
    rel = path.relative_to(run_dir).parts
    return not (rel[0] == TRACKERS_DIR and len(rel) > 1 and rel[1] != "tensorboard")


def _adopt_event_files(run_dir: Path, exp_dir: Path, started: float) -> list[str]:
    """Move event files the run wrote in the experiment folder into trackers/tensorboard/.

    A file is the run's when it appeared after the run started and its writer (the pid in its
    name, on this host) has exited: a live writer is another process's, e.g. a concurrent run's.
    """
    moved = []
    for path in _walk(exp_dir, run_dir):
        if _EVENTS not in path.name:
            continue
        try:
            mtime = path.stat().st_mtime
        except OSError:
            continue
        if mtime < started or not _written_by_run(path.name, started):
            continue
        rel = path.relative_to(exp_dir)
        dest = run_dir / TRACKERS_DIR / "tensorboard" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, dest)
        _remove_empty_parents(path.parent, exp_dir)
        moved.append(dest.relative_to(run_dir).as_posix())
    return moved


def _written_by_run(name: str, started: float) -> bool:
    """False for an event file opened before the run, on another host, or by a process still alive."""
    m = _EVENT_NAME.search(name)
    if m is None:
        return True
    host = socket.gethostname()
    if int(m.group(1)) < started - 1 or not m.group(2).startswith(host):
        return False
    pid = _PID.match(m.group(2)[len(host):])
    return pid is None or not _pid_alive(int(pid.group(1)))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _walk(root: Path, run_dir: Path) -> Iterator[Path]:
    """Files under `root`, skipping hidden and environment folders and other runs' folders (those
    holding a run.json); at most _SCAN_LIMIT entries, so a huge data folder costs little."""
    from assay.store import records

    stack, seen = [root], 0
    while stack and seen < _SCAN_LIMIT:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        seen += len(entries)
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                path = Path(entry.path)
                if entry.name.startswith(".") or entry.name in _SKIP_DIRS:
                    continue
                if path != run_dir and (path / records.RECORD_FILE).is_file():
                    continue  # another run's folder
                if root != run_dir and path == run_dir:
                    continue
                stack.append(path)
            elif entry.is_file(follow_symlinks=False):
                yield Path(entry.path)
