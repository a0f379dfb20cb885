"""Live feedback of `assay run`: where each run writes (stderr, when it starts), a one-line status
updated in place while it runs (only when stderr is a terminal), and each run's summary line on
stdout as soon as it ends (so `--repeat 5` shows each seed as it finishes).

stdout keeps exactly one summary line per run: scripts read it; everything else goes to stderr.
"""


import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

REFRESH_SECONDS = 0.5


class MetricTail:
    """Reads the lines appended to a run's metrics.jsonl since the last call (a torn last line
    waits for its end), keeping the last value of each metric and the step it came at."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.offset = 0
        self.last: dict[str, tuple[float, Any]] = {}  # name -> (value, step), most recent last

    def poll(self) -> None:
        try:
            with self.file.open("rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            return  # not written yet
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        for line in chunk[:end].splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            for name, value in (entry.get("m") or {}).items() if isinstance(entry, dict) else ():
                self.last.pop(name, None)
                self.last[name] = (value, entry.get("step"))


def status_text(run_id: str, metric: str | None, tail: MetricTail, started: float, timeout: float | None,
                now: float | None = None) -> str:
    """`running exp/2026-...-base  val_acc=0.91 @ 12  42.0s elapsed, 29m18s left`."""
    from assay.config import format_duration
    from assay.runner.launch import _fmt

    now = time.time() if now is None else now
    parts = [f"running {run_id}"]
    name = metric if metric in tail.last else next(reversed(tail.last), None)
    if name is not None:
        value, step = tail.last[name]
        shown = _fmt(value) if isinstance(value, (int, float)) else str(value)
        parts.append(f"{name}={shown}" + (f" @ {step}" if step is not None else ""))
    else:
        parts.append(f"{metric}=-" if metric else "no metric yet")
    elapsed = now - started
    clock = f"{format_duration(elapsed)} elapsed"
    if timeout:
        clock += f", {format_duration(max(0.0, timeout - elapsed))} left"
    parts.append(clock)
    return "  ".join(parts)


class LiveRuns:
    """The RunObserver of `assay run` (see assay.runner.launch.RunObserver)."""

    def __init__(self, lab_root: Path, *, live_status: bool, summaries: bool, err: TextIO | None = None) -> None:
        self.lab_root = lab_root
        self.live_status = live_status
        self.summaries = summaries  # print each run's summary line on stdout when it ends
        self.err = err or sys.stderr
        self.printed: set[str] = set()  # run folders whose summary line is out
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _rel(self, path: Path) -> Path:
        try:
            return path.relative_to(self.lab_root)
        except ValueError:
            return path

    def started(self, path: Path, record: dict[str, Any]) -> None:
        from assay.store import records

        rel = self._rel(path)
        print(f"run {rel}  (log: {rel}/{records.LOG_FILE})", file=self.err, flush=True)
        if self.live_status:
            self._stop.clear()
            tail = MetricTail(path / records.METRICS_FILE)
            run_id = str(record.get("id") or path.name)
            args = (run_id, record.get("primary_metric"), tail, float(record["started"]), record.get("timeout"))
            self._thread = threading.Thread(target=self._show, args=args, name="assay-live", daemon=True)
            self._thread.start()

    def _show(self, run_id: str, metric: str | None, tail: MetricTail, started: float, timeout: float | None) -> None:
        while True:
            tail.poll()
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.err.write("\r\x1b[K" + status_text(run_id, metric, tail, started, timeout)[:width])
            self.err.flush()
            if self._stop.wait(REFRESH_SECONDS):
                return

    def stop(self) -> None:
        """End the status line (also when a run could not start): the terminal line is left clean."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.err.write("\r\x1b[K")
            self.err.flush()

    def ended(self, result: Any) -> None:
        from assay.runner.launch import summary_line

        self.stop()
        if self.summaries:
            print(summary_line(result, self.lab_root), flush=True)
            self.printed.add(str(result.path))


def wants_live_status(follow: bool, json_: bool) -> bool:
    """A status line only on a terminal, never under --follow (the script's output is there) or --json."""
    return not follow and not json_ and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
