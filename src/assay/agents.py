"""The guide assay gives coding agents: printed by `assay agent-guide`, installed by `assay init`."""

from __future__ import annotations

from pathlib import Path

BEGIN = "<!-- assay:begin -->"
END = "<!-- assay:end -->"

GUIDE = """\
## Experiments with assay

This folder is an assay lab. Use assay to run and compare ML experiments; keep your context small.

- New question: `assay new NAME --hypothesis "..." --metric val_f1 --goal max --success "val_f1 >= 0.8"`.
  Decide success/failure criteria before running anything.
- Run: `assay run NAME short-desc key=value ...`. It prints one summary line; all output goes to
  `runs/<id>/logs/output.log`. Never stream or cat whole logs: read the tail (`tail -n 50 <log>`)
  or `assay show RUN --json`.
- Read results: `assay runs NAME --json`, `assay compare NAME --by lr,batch --json`, `assay show RUN --json`.
  `last` names the newest run (`assay show last`, `assay show NAME:last`).
- Long runs: `assay run NAME desc --detach --json` prints the run's id at once; `assay status --json`
  shows its progress; `assay wait RUN --timeout 30m` exits with its outcome.
- Every command takes `--json` (keys: docs/ecosystem.md, "JSON output"); under `--json` an error is
  `{"error", "fix", "exit"}` on stdout. Exit codes: 0 ok, 1 a run did not end ok (or a run/store
  problem), 2 usage or configuration error (fix the command, do not retry it), 130 interrupted,
  124 `assay wait --timeout` ran out (the runs go on). `ASSAY_LAB=/path` selects the lab.
- Params: only keys in `experiments/NAME/config.yaml`; `+key=value` adds a new one on purpose.
- Notebooks run as entry points too: `train.ipynb` gets params in a cell injected after the one
  tagged `parameters` (tag interactive-only cells `skip-in-run`); a marimo `.py` gets `--key=value`.
- Notes: `assay note NAME "[HUNCH] ..."` (tags WEIRD, HUNCH, TODO, RESOLVED); `assay journal NAME`.
- A bad run: `assay ignore RUN --why "..."`, never delete run folders.
- Statuses: ok, failed, timeout, oom, nan, interrupted, lost. A crash is data: read the log tail, fix, re-run.
- Never edit files under `runs/`, `.assay/`, or an experiment's protected evaluation code.

### The loop (keep or discard, on branch assay/TAG)
- Read the brief: `assay loop prompt`. Make ONE focused change to the editable files, then
  `assay try "what you changed"`. It commits, runs, and prints one line: keep, discard or crash.
- Keep: the change stays. Discard: assay resets the branch to the best commit. Do not reset,
  stash or commit yourself; do not touch protected files or files outside the editable set.
- Crash: read the log tail the line names, fix, `assay try --retry "fix ..."`; or give up on it:
  `assay loop drop TAG`. An idea already tried is refused (`--force` only to re-run on purpose).
- Progress: `assay loop status --json`, `assay loop log`. After an interruption: `assay loop resume TAG`.
"""


CLAUDE_IMPORT = "@AGENTS.md"  # Claude Code reads CLAUDE.md, and imports the files its `@path` lines name


def import_into_claude_md(path: Path) -> bool:
    """Append the line `@AGENTS.md` to an existing CLAUDE.md that lacks it, so agents reading CLAUDE.md
    see the guide too. Nothing else in the file changes; no CLAUDE.md is created. True if written."""
    if not path.is_file():
        return False
    text = path.read_text(encoding="utf-8")
    if CLAUDE_IMPORT in (line.strip() for line in text.splitlines()):
        return False
    with path.open("a", encoding="utf-8") as fh:
        fh.write(("\n" if text and not text.endswith("\n") else "") + CLAUDE_IMPORT + "\n")
    return True


def section() -> str:
    return f"{BEGIN}\n{GUIDE}{END}\n"


def install_agents_section(path: Path) -> bool:
    """Add (or refresh) the assay section of AGENTS.md, keeping everything else. True if written."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        new = head + section().rstrip("\n") + tail
    else:
        new = (text.rstrip("\n") + "\n\n" if text.strip() else "") + section()
    if new == text:
        return False
    path.write_text(new, encoding="utf-8")
    return True
