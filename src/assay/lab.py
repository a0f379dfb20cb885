"""The lab: a folder with assay.toml (or [tool.assay] in pyproject.toml) and derived state in .assay/."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.config import load_toml
from assay.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from assay.store.index import Index

CONFIG_NAME = "assay.toml"
STATE_DIR = ".assay"
# An experiment is one folder under experiments_dir: no separators, no "..", no hidden names.
EXPERIMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

DEFAULT_TOML = """\
# assay lab configuration. https://github.com/assay-ml/assay
[lab]
experiments_dir = "experiments"
# python = ".venv/bin/python"   # interpreter for .py entry points (default: the one running assay)
default_timeout = "2h"          # used when an experiment sets none
"""


@dataclass(frozen=True)
class Lab:
    """A lab root and its settings."""

    root: Path
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def index_path(self) -> Path:
        return self.state_dir / "index.db"

    @property
    def experiments_dir(self) -> Path:
        return self.root / str(self.settings.get("experiments_dir", "experiments"))

    @property
    def python(self) -> str:
        py = self.settings.get("python")
        if not py:
            return sys.executable
        p = Path(py)
        return str(p if p.is_absolute() else self.root / p)

    @property
    def default_timeout(self) -> str:
        return str(self.settings.get("default_timeout", "2h"))

    def experiment_dir(self, name: str) -> Path:
        return self.experiments_dir / check_experiment_name(name)

    def index(self) -> Index:
        """The lab's SQLite index, opened (created or upgraded as needed); a context manager."""
        from assay.store.index import Index

        return Index(self.index_path, experiments_dir=self.experiments_dir)


def check_experiment_name(name: str) -> str:
    """`name` if it is a safe experiment folder name, else a ConfigError saying the rule.

    Every path to an experiment goes through here (Lab.experiment_dir), so a name from the command
    line, an MCP client or a loop's state can never point outside the lab (`../x`, `/tmp/x`).
    """
    if not isinstance(name, str) or not EXPERIMENT_NAME.fullmatch(name):
        raise ConfigError(
            f"Invalid experiment name {name!r}: a name is 1-100 ASCII letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no '/', no '..', no leading dot)",
            "Use a plain folder name, e.g. attention-pooling; experiments live in the lab's experiments folder.",
        )
    return name


def require_writable(path: Path, action: str) -> None:
    """A StoreError in one line when `path` (or the folder it would be created in) cannot be written:
    a lab on a read-only mount or without write permission. Checked before a writer starts, so it
    leaves nothing half-written."""
    from assay.store.index import writable

    if not writable(path):
        raise StoreError(f"Cannot {action}: {path} is read-only",
                         "Work in a writable copy of the lab (cp -r LAB ~/lab-copy), or ask its owner to make it "
                         "writable; reading commands (runs, show, compare, status, ui) work as it is.")


def _read_settings(root: Path) -> dict[str, Any] | None:
    toml = root / CONFIG_NAME
    if toml.is_file():
        data = load_toml(toml)
        return _checked(data.get("lab", {}), toml, "[lab]")
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        data = load_toml(pyproject)
        tool = data.get("tool", {}).get("assay") if isinstance(data.get("tool"), dict) else None
        if tool is not None:
            section = tool.get("lab", tool) if isinstance(tool, dict) else tool
            return _checked(section, pyproject, "[tool.assay.lab]")
    return None


def _checked(settings: Any, source: Path, table: str) -> dict[str, Any]:
    """The lab settings, refused when they could not work: not a table, or an experiments_dir that
    is not a relative folder inside the lab (runs and journals would be written elsewhere)."""
    if not isinstance(settings, dict):
        raise ConfigError(f"{table} in {source} must be a table of settings, not {settings!r}",
                          f"Write it as {table} followed by key = value lines.")
    folder = settings.get("experiments_dir", "experiments")
    if not isinstance(folder, str) or not folder.strip():
        raise ConfigError(f"experiments_dir = {folder!r} in {source} must be a folder name",
                          'Set experiments_dir = "experiments".')
    parts = Path(os.path.normpath(folder)).parts
    if Path(folder).is_absolute() or (parts and parts[0] == ".."):
        raise ConfigError(f"experiments_dir = {folder!r} in {source} is outside the lab ({source.parent})",
                          'Use a folder inside the lab, e.g. experiments_dir = "experiments".')
    return dict(settings)


def find_lab(start: Path | None = None) -> Lab:
    """The lab in `start` or its nearest parent; without `start`, the lab ASSAY_LAB names, else the
    search from the working directory."""
    if start is None and (chosen := _lab_from_env()) is not None:
        return chosen
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        settings = _read_settings(folder)
        if settings is not None:
            return Lab(folder, settings)
    raise ConfigError(f"No assay lab found in {here} or its parents", "Run `assay init` to make this folder a lab.")


def _lab_from_env() -> Lab | None:
    """The lab ASSAY_LAB names (None when unset); a folder that holds no lab is a ConfigError."""
    value = os.environ.get("ASSAY_LAB", "").strip()
    if not value or _set_by_runner(value):
        return None
    root = Path(value).expanduser().resolve()
    settings = _read_settings(root) if root.is_dir() else None
    if settings is None:
        raise ConfigError(f"ASSAY_LAB={value!r} names no assay lab (no {CONFIG_NAME} or [tool.assay] in {root})",
                          f"Point ASSAY_LAB at a lab folder, run `assay init {value}`, or unset ASSAY_LAB to use the "
                          "lab of the current folder.")
    return Lab(root, settings)


def _set_by_runner(value: str) -> bool:
    """True for the ASSAY_LAB that assay gives the scripts it runs (their run folder, ASSAY_RUN_DIR, lies
    inside it): an `assay` command such a script calls keeps finding its lab from its working directory,
    as it always did. A lab a script names itself, outside its run's lab, is honoured."""
    run_dir = os.environ.get("ASSAY_RUN_DIR")
    return bool(run_dir and Path(run_dir).resolve().is_relative_to(Path(value).expanduser().resolve()))


def maybe_find_lab(start: Path | None = None) -> Lab | None:
    try:
        return find_lab(start)
    except ConfigError:
        return None


# What assay writes into experiment folders by itself (run folders, sweeps, loop state and ledger,
# plots and the self-contained report): outputs, not source.
GITIGNORE_LINES = ("*/runs/", "*/results.tsv", "*/sweeps/", "*/loops/", "*/plots/", "*/REPORT.html")


def _upgrade_gitignore(ignore: Path) -> bool:
    """Write experiments/.gitignore, or append the lines it lacks (an older assay wrote fewer);
    the lines already there, the user's included, are kept. Returns whether the file changed."""
    text = ignore.read_text(encoding="utf-8") if ignore.exists() else "# written by assay init: run outputs are files, not source\n"
    missing = [line for line in GITIGNORE_LINES if line not in text.splitlines()]
    if not missing:
        return False
    ignore.write_text(text + ("" if text.endswith("\n") else "\n") + "\n".join(missing) + "\n", encoding="utf-8")
    return True


def init_lab(root: Path | None = None) -> tuple[Lab, list[str]]:
    """Make `root` a lab: assay.toml (unless pyproject has [tool.assay]), .assay/, AGENTS.md section
    (and an `@AGENTS.md` line in an existing CLAUDE.md).

    Idempotent: existing files are kept, except that experiments/.gitignore gains the lines it
    lacks; the AGENTS.md section is added once. Returns the lab and
    the list of paths written.
    """
    from assay.agents import import_into_claude_md, install_agents_section

    root = (root or Path.cwd()).resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a file stands where the lab or a parent folder would be
        raise ConfigError(f"Cannot make a lab at {root}: a file is in the way", "Pass a folder path: assay init PATH.") from None
    written: list[str] = []
    if _read_settings(root) is None:
        (root / CONFIG_NAME).write_text(DEFAULT_TOML, encoding="utf-8")
        written.append(CONFIG_NAME)
    lab = find_lab(root)
    lab.state_dir.mkdir(exist_ok=True)
    (lab.state_dir / ".gitignore").write_text("*\n", encoding="utf-8")
    lab.experiments_dir.mkdir(exist_ok=True)
    if _upgrade_gitignore(lab.experiments_dir / ".gitignore"):
        written.append(str((lab.experiments_dir / ".gitignore").relative_to(root)))
    lab.index().close()
    if install_agents_section(root / "AGENTS.md"):
        written.append("AGENTS.md")
    if import_into_claude_md(root / "CLAUDE.md"):
        written.append("CLAUDE.md")
    return lab, written
