"""The in-script API: `assay.init()`, `assay.log()`, `assay.params()`, `assay.finish()`.

Files first: every call appends one JSON line to the run's metrics.jsonl (buffered; a daemon
thread writes the buffer out within a second of a point even when no further call comes; flushed
and fsynced on finish). When `assay run` launched the script, the
run folder comes from ASSAY_RUN_DIR and the launcher writes the run record; when the script is run
by hand, `init()` creates a standalone run folder and writes its record itself.

Kept free of heavy imports: `import assay` must stay fast.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
PARAMS_READ_FILE = "params_read.json"
VALUES_DIR = "data/values"  # per-example values: little-endian float64, one file per name
_FLUSH_LINES = 4096
_FLUSH_SECONDS = 1.0


def _number(value: Any) -> float:
    """numpy scalars, 0-d tensors and the like: anything float() accepts is logged as a float."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"assay.log: {value!r} ({type(value).__name__}) is not a number") from None


def _json_number(value: Any) -> str:
    t = type(value)
    if t is int:
        return str(value)
    v = value if t is float else _number(value)
    if v != v:
        return "NaN"
    if v in (_INF, -_INF):
        return "Infinity" if v > 0 else "-Infinity"
    return repr(v)


_INF = float("inf")


def _whole(step: Any) -> int:
    """A step given as a float or a numpy integer: its int, or a ValueError naming it (nan, inf, 'x')."""
    try:
        return int(step)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"assay.log: step must be a whole number, got {step!r}") from None


class _ParamDict(dict):
    """A dict that remembers which keys the script read, so unread overrides can be warned about."""

    def __init__(self, data: dict[str, Any], seen: set[str], prefix: str = "") -> None:
        super().__init__({k: (_ParamDict(v, seen, f"{prefix}{k}.") if isinstance(v, dict) else v) for k, v in data.items()})
        self._seen = seen
        self._prefix = prefix

    def _mark(self, key: Any) -> None:
        name = f"{self._prefix}{key}"
        self._seen.add(name)

    def __getitem__(self, key: Any) -> Any:
        self._mark(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._mark(key)
        return super().get(key, default)

    def __getattr__(self, key: str) -> Any:  # params.lr as well as params["lr"]
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


class Run:
    """A run seen from inside the script. Obtain it with `assay.init()`."""

    def __init__(self, path: Path, attached: bool, params: dict[str, Any], lab_root: Path | None) -> None:
        self.path = path
        self.attached = attached
        self.lab_root = lab_root
        self._seen: set[str] = set()
        self.params = _ParamDict(params, self._seen)
        import threading  # here, not at the top: `import assay` stays fast

        # A deque: the training thread appends and the flusher pops without a lock on the hot path.
        self._buf: deque[str] = deque()
        self._write_lock = threading.Lock()  # one writer at a time keeps the lines in order
        self._fd = os.open(path / METRICS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._step = 0
        self._keys: dict[Any, str] = {}
        self.finished = False
        self._stop = threading.Event()
        threading.Thread(target=self._flush_every, name="assay-flush", daemon=True).start()

    @property
    def id(self) -> str:
        return f"{self.path.parent.parent.name}/{self.path.name}"

    # -- writing ------------------------------------------------------------
    def _emit(self, line: str) -> None:
        self._buf.append(line)
        if len(self._buf) >= _FLUSH_LINES:
            self.flush()

    def _flush_every(self) -> None:
        """The flusher thread: a point waits at most _FLUSH_SECONDS / 2 plus one write."""
        while not self._stop.wait(_FLUSH_SECONDS / 2):
            if self._buf:
                try:
                    self.flush()
                except OSError:  # a full disk: the lines stay buffered and finish() raises where the script sees it
                    continue

    def flush(self, sync: bool = False) -> None:
        """Write buffered lines in one append (whole lines only, so a crash tears at most one)."""
        with self._write_lock:
            if self._fd < 0:  # closed by finish(): the flusher thread may wake once more
                return
            buf = self._buf
            if buf:
                pop = buf.popleft
                lines = [pop() for _ in range(len(buf))]
                try:
                    os.write(self._fd, "".join(lines).encode())
                except OSError:
                    buf.extendleft(reversed(lines))  # older than anything appended meanwhile: back in front
                    raise
            if sync:
                os.fsync(self._fd)

    def log(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Log metrics at a step (default: one past the previous step)."""
        if self.finished:
            raise RuntimeError("assay: log() after finish()")
        if step is None:
            step = self._step
        elif type(step) is not int:
            step = _whole(step)
        self._step = step + 1
        # Hand-assembled JSON: this is the hot path of a training loop (json.dumps costs 2x more).
        keys = self._keys
        parts = []
        for k, v in metrics.items():
            key = keys.get(k)
            if key is None:
                key = keys[k] = json.dumps(str(k))
            parts.append(f"{key}:{_json_number(v)}")
        self._emit(f'{{"t":{time.time():.3f},"step":{step},"m":{{{",".join(parts)}}}}}\n')

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        self.log({key: value}, step=step)

    def log_params(self, params: dict[str, Any]) -> None:
        self._emit(json.dumps({"t": round(time.time(), 3), "params": params}, default=str) + "\n")

    def set_tag(self, key: str, value: Any) -> None:
        self._emit(json.dumps({"t": round(time.time(), 3), "tags": {key: str(value)}}) + "\n")

    def log_values(self, name: str, values: Any) -> Path:
        """Store per-example values whose mean is the metric `name` (see the module's log_values)."""
        from array import array

        floats = array("d", map(_number, values.tolist() if hasattr(values, "tolist") else values))
        if sys.byteorder == "big":
            floats.byteswap()
        dst = values_path(self.path, name)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
        tmp.write_bytes(floats.tobytes())
        os.replace(tmp, dst)  # a reader sees the previous values or these, never half
        rel = dst.relative_to(self.path).as_posix()
        self._emit(json.dumps({"t": round(time.time(), 3), "values": {"name": name, "path": rel, "n": len(floats)}}) + "\n")
        return dst

    def log_artifact(self, path: str | os.PathLike[str], kind: str | None = None) -> Path:
        """Copy a file or folder into the run folder (plots/, checkpoints/ or data/ by its type)."""
        src = Path(path)
        if kind is None:
            suffix = src.suffix.lower()
            kind = ("plots" if suffix in {".png", ".jpg", ".jpeg", ".svg", ".webp", ".pdf", ".html"}
                    else "checkpoints" if suffix in {".pt", ".pth", ".ckpt", ".safetensors", ".bin", ".pkl", ".joblib"}
                    else "data")
        dst = self.path / kind / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.resolve() != dst.resolve():
            (shutil.copytree(src, dst, dirs_exist_ok=True) if src.is_dir() else shutil.copy2(src, dst))
        self._emit(json.dumps({"t": round(time.time(), 3), "artifact": f"{kind}/{src.name}"}) + "\n")
        return dst

    def finish(self, status: str = "ok") -> None:
        """Flush and fsync; for a standalone run, write its final record. Idempotent."""
        if self.finished:
            return
        self.finished = True
        self._stop.set()
        self.flush(sync=True)
        with self._write_lock:
            os.close(self._fd)
            self._fd = -1
        (self.path / PARAMS_READ_FILE).write_text(json.dumps(sorted(self._seen)))
        if not self.attached:
            from assay.store.standalone import finalize_standalone

            finalize_standalone(self.path, status, self.lab_root)


_run: Run | None = None
_params_cache: _ParamDict | None = None
_seen_before_init: set[str] = set()


def init(desc: str | None = None, *, experiment: str | None = None) -> Run:
    """Attach to the run `assay run` launched, or start one when run by hand.

    By hand, a script's run goes into runs/ next to the script. In an interactive session
    (Jupyter, IPython, the Python prompt) there is no script: the run goes into the lab found from
    the working directory, under `experiment` or the experiment folder the session runs in.

    Args:
        desc: the run's description (interactive and `experiment=` runs; part of the folder name).
        experiment: record into this experiment of the lab found from the working directory.

    Returns:
        The current Run; calling init() again returns the same one (in an interactive session, a
        new one once the previous run was finished).

    Raises:
        ConfigError: interactive (or `experiment=`) with no lab in the working directory or its
            parents, no experiment to record into, or an unknown experiment.

    Example:
        >>> run = assay.init()
        >>> assay.log({"loss": 0.3}, step=1)
    """
    global _run
    interactive = is_interactive()
    if _run is not None and not (interactive and _run.finished):
        return _run
    run_dir = os.environ.get("ASSAY_RUN_DIR")
    if run_dir:
        path, attached, lab = Path(run_dir), True, os.environ.get("ASSAY_LAB")
        raw = json.loads(os.environ.get("ASSAY_PARAMS", "{}"))
        lab_root = Path(lab) if lab else None
    elif interactive or experiment is not None:
        from assay.store.standalone import create_interactive  # no script folder: the lab of the working directory

        path, raw, lab_root = create_interactive(Path.cwd(), experiment, desc)
        attached = False
    else:
        from assay.store.standalone import create_standalone  # a hand-run script: its own run folder

        path, raw, lab_root = create_standalone(Path(sys.argv[0] if sys.argv and sys.argv[0] else "script.py"))
        attached = False
    _run = Run(path, attached, raw, lab_root)
    _run._seen |= _seen_before_init
    if _params_cache is not None:  # params() read before init(): keep one dict and one set of reads
        _run.params = _params_cache
        _params_cache._seen = _run._seen
    atexit.register(_at_exit)
    if interactive:
        return _run  # an error in one cell does not fail the session's run: finish(status) decides
    previous_hook = sys.excepthook

    def _hook(*exc_info: Any) -> None:  # an uncaught exception makes a standalone run "failed"
        global _failed
        _failed = True
        previous_hook(*exc_info)

    sys.excepthook = _hook
    return _run


_failed = False


def is_interactive() -> bool:
    """True in a Python prompt, IPython or a Jupyter kernel: code with no script file whose folder
    could hold the run (a `python -c` one-liner is not one: it keeps today's behaviour)."""
    if hasattr(sys, "ps1"):
        return True
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    if get is not None and get() is not None:
        return True
    main = sys.modules.get("__main__")
    return main is not None and not hasattr(main, "__file__") and (sys.argv[:1] or [""])[0] not in ("-c",)


def _at_exit() -> None:
    if _run is not None and not _run.finished:
        _run.finish("failed" if _failed else "ok")


def params() -> _ParamDict:
    """The run's resolved parameters (config.yaml + overrides), as a dict that tracks reads.

    Works without init(): inside `assay run` it reads ASSAY_PARAMS; by hand, the config.yaml
    next to the script.
    """
    global _params_cache
    if _run is not None:
        return _run.params
    if _params_cache is None:
        if "ASSAY_PARAMS" in os.environ:
            raw = json.loads(os.environ["ASSAY_PARAMS"])
        else:
            raw = _read_local_config()
        _params_cache = _ParamDict(raw, _seen_before_init)
        if os.environ.get("ASSAY_RUN_DIR"):
            atexit.register(_write_reads)
    return _params_cache


def _write_reads() -> None:
    if _run is None and os.environ.get("ASSAY_RUN_DIR"):
        Path(os.environ["ASSAY_RUN_DIR"], PARAMS_READ_FILE).write_text(json.dumps(sorted(_seen_before_init)))


def _read_local_config() -> dict[str, Any]:
    if is_interactive():  # a notebook in an experiment folder reads that experiment's defaults
        cfg: Path | None = Path.cwd() / "config.yaml"
    else:
        cfg = Path(sys.argv[0]).resolve().parent / "config.yaml" if sys.argv and sys.argv[0] else None
    if cfg and cfg.is_file():
        import yaml

        data = yaml.safe_load(cfg.read_text()) or {}
        return data if isinstance(data, dict) else {}
    return {}


def _current() -> Run:
    return _run if _run is not None else init()


def log(metrics: dict[str, float], step: int | None = None) -> None:
    """Log a dict of metrics at `step`. Starts the run on first use."""
    _current().log(metrics, step)


def log_metric(key: str, value: float, step: int | None = None) -> None:
    _current().log({key: value}, step)


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    _current().log(metrics, step)


def log_param(key: str, value: Any) -> None:
    _current().log_params({key: value})


def log_params(values: dict[str, Any]) -> None:
    _current().log_params(values)


def set_tag(key: str, value: Any) -> None:
    _current().set_tag(key, value)


def log_artifact(path: str | os.PathLike[str], kind: str | None = None) -> Path:
    return _current().log_artifact(path, kind)


def log_values(name: str, values: Any) -> Path:
    """Log per-example outcomes of metric `name` (e.g. 1/0 per validation example for val_acc).

    A deterministic script (every seed gives the same value) has no seed noise to measure;
    `assay verdict` then judges a criterion on `name` by a bootstrap over these examples. Logging
    again replaces the values (the verdict uses those at the end of training).

    Args:
        name: the metric the values average to, as logged with assay.log (and named in criteria).
        values: a 1-D list, numpy array or tensor of numbers (one per example).

    Returns:
        The file written: data/values/<name>.f64 in the run folder (little-endian float64).

    Example:
        >>> assay.log({"val_acc": correct.float().mean()})
        >>> assay.log_values("val_acc", correct)
    """
    return _current().log_values(name, values)


def values_path(run_dir: Path, name: str) -> Path:
    return run_dir / VALUES_DIR / (re.sub(r"[^\w.-]", "_", name) + ".f64")


def read_values(run_dir: Path, name: str) -> list[float] | None:
    """The per-example values a run logged for `name` with log_values, or None when it logged none."""
    try:
        data = values_path(run_dir, name).read_bytes()
    except OSError:
        return None
    from array import array

    floats = array("d")
    floats.frombytes(data[: len(data) - len(data) % 8])
    if sys.byteorder == "big":
        floats.byteswap()
    return floats.tolist()


def finish(status: str = "ok") -> None:
    """Flush and close the run (also done at exit). Safe to call twice."""
    if _run is not None:
        _run.finish(status)
