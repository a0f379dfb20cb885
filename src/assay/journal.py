"""JOURNAL.md notes (timestamped, tagged) and IGNORED_RUNS.md: plain files a person can edit too."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from assay.errors import ConfigError, did_you_mean

TAGS = ("WEIRD", "HUNCH", "TODO", "RESOLVED", "NOTE")
_ENTRY = re.compile(r"^- \*\*(\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)?)\*\* \[([A-Z]+)\] (.*?)(?: \(run: `([^`]+)`\))?$")
_IGNORED = re.compile(r"^- `([^`]+)`: (.*)$")


@dataclass(frozen=True)
class Entry:
    when: str
    tag: str
    text: str
    run: str | None

    def to_dict(self) -> dict[str, str | None]:
        return {"when": self.when, "tag": self.tag, "text": self.text, "run": self.run}


def add_note(exp_dir: Path, text: str, run: str | None = None, tag: str | None = None) -> Entry:
    """Append `- **2026-11-23 09:40:12** [HUNCH] text (run: `id`)` to JOURNAL.md.

    The tag comes from `tag` or a leading `[TAG]` in the text (default NOTE).
    """
    from assay.lab import require_writable

    require_writable(exp_dir / "JOURNAL.md", "add a note")
    m = re.match(r"^\s*\[([A-Za-z]+)\]\s*(.*)$", text, re.S)
    if m and not tag:
        tag, text = m.group(1), m.group(2)
    tag = (tag or "NOTE").upper()
    if tag not in TAGS:
        raise ConfigError(f"Unknown journal tag '{tag}' (known: {', '.join(TAGS)})." + did_you_mean(tag, TAGS),
                          "Start the note with one of them, e.g. \"[HUNCH] ...\".")
    text = " ".join(text.split())
    if not text:
        raise ConfigError("The note is empty", "Pass the note text: assay note NAME \"[TODO] ...\"")
    entry = Entry(datetime.now().strftime("%Y-%m-%d %H:%M:%S"), tag, text, run)
    journal = exp_dir / "JOURNAL.md"
    line = f"- **{entry.when}** [{tag}] {text}" + (f" (run: `{run}`)" if run else "") + "\n"
    prefix = "" if not journal.exists() or journal.read_bytes().endswith(b"\n") else "\n"
    with journal.open("a", encoding="utf-8") as fh:
        fh.write(prefix + line)
    return entry


def read_journal(exp_dir: Path, tag: str | None = None) -> list[Entry]:
    journal = exp_dir / "JOURNAL.md"
    if not journal.exists():
        return []
    out = []
    for line in journal.read_text(encoding="utf-8").splitlines():
        m = _ENTRY.match(line)
        if m and (tag is None or m.group(2) == tag.upper()):
            out.append(Entry(m.group(1), m.group(2), m.group(3), m.group(4)))
    return out


IGNORED_FILE = "IGNORED_RUNS.md"


def ignored_runs(exp_dir: Path) -> dict[str, str]:
    """{run folder: why} from IGNORED_RUNS.md."""
    file = exp_dir / IGNORED_FILE
    if not file.exists():
        return {}
    out = {}
    for line in file.read_text(encoding="utf-8").splitlines():
        m = _IGNORED.match(line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def ignore_run(run_path: Path, why: str) -> None:
    if not why.strip():
        raise ConfigError("Say why the run is ignored", "assay ignore RUN --why \"data loader bug, see note\"")
    exp_dir = run_path.parent.parent
    file = exp_dir / IGNORED_FILE
    from assay.lab import require_writable

    require_writable(file, "ignore the run")
    if run_path.name in ignored_runs(exp_dir):
        return
    head = "" if file.exists() else "# Ignored runs\n\nLeft out of tables and comparisons (`--all` shows them).\n\n"
    with file.open("a", encoding="utf-8") as fh:
        fh.write(f"{head}- `{run_path.name}`: {' '.join(why.split())} ({datetime.now():%Y-%m-%d %H:%M})\n")
