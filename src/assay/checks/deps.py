"""Pinned dependencies: a PEP 723 block in the entry point, else requirements files, else pyproject.

A lock file (uv.lock, poetry.lock, pixi.lock, Pipfile.lock, ...) beside a declaration counts as
pinned: it records the exact versions even when the declaration uses ranges.
"""

from __future__ import annotations

import re
from pathlib import Path

from assay.checks.finding import Finding

LOCKS = ("uv.lock", "poetry.lock", "pixi.lock", "Pipfile.lock", "pdm.lock", "conda-lock.yml", "requirements.lock")
_PEP723 = re.compile(r"^# /// script[ \t]*$(?P<body>(?:\n#(?: .*)?$)*?)\n# ///[ \t]*$", re.M)
_PINNED = re.compile(r"(===?)\s*[\w.*+!-]+")


def _rel(p: Path, base: Path) -> str:
    try:
        return str(p.resolve().relative_to(base))
    except ValueError:
        return str(p)


def _unpinned(spec: str) -> bool:
    spec = spec.split(";")[0].strip()
    return bool(spec) and not _PINNED.search(spec) and " @ " not in spec  # a URL/path pin is a pin


def _folders(base: Path, lab_root: Path | None) -> list[Path]:
    """The experiment folder and its parents up to the lab root (or one level when there is no lab)."""
    out = [base]
    stop = lab_root.resolve() if lab_root else base.parent
    for p in base.parents:
        if stop != p and stop not in p.parents:
            break
        out.append(p)
        if p == stop:
            break
    return out


def dependency_findings(entry: Path, base: Path, lab_root: Path | None) -> list[Finding]:
    text = entry.read_text(encoding="utf-8")
    rel_entry = _rel(entry, base)
    block = _PEP723.search(text)
    fix_pin = "Pin exact versions (name==1.2.3), e.g. from `uv pip freeze`, or commit a lock file (uv lock)."
    why = "An unpinned dependency installs whatever version is newest on the day of the rerun."
    if block:
        first = text[:block.start()].count("\n") + 1
        out = []
        in_deps = False
        for i, line in enumerate(block.group(0).splitlines()):
            body = line.lstrip("#").strip()
            if body.startswith("dependencies"):
                in_deps = True
            if in_deps:
                for spec in re.findall(r"\"([^\"]+)\"|'([^']+)'", body):
                    s = spec[0] or spec[1]
                    if _unpinned(s):
                        out.append(Finding("unpinned-dependency", rel_entry, first + i, f"'{s}' in the PEP 723 block has no exact version",
                                           why, fix_pin))
                if "]" in body:
                    in_deps = False
        return out
    folders = _folders(base, lab_root)
    locked = any((f / lock).is_file() for f in folders for lock in LOCKS)
    for f in folders:
        reqs = sorted(f.glob("requirements*.txt"))
        if reqs:
            if locked:
                return []
            out = []
            for req in reqs:
                for n, line in enumerate(req.read_text(encoding="utf-8").splitlines(), 1):
                    spec = line.split("#")[0].strip()
                    if spec and not spec.startswith("-") and _unpinned(spec):
                        out.append(Finding("unpinned-dependency", _rel(req, base), n, f"'{spec}' has no exact version", why, fix_pin))
            return out
        pyproject = f / "pyproject.toml"
        if pyproject.is_file() and "[project]" in pyproject.read_text(encoding="utf-8"):
            if locked:
                return []
            from assay.config import load_toml

            deps = load_toml(pyproject).get("project", {}).get("dependencies", [])
            lines = pyproject.read_text(encoding="utf-8").splitlines()
            out = []
            for d in deps:
                if _unpinned(d):
                    n = next((i + 1 for i, x in enumerate(lines) if d in x), 1)
                    out.append(Finding("unpinned-dependency", _rel(pyproject, base), n, f"'{d}' has no exact version and there is no lock file",
                                       why, fix_pin))
            return out
    if locked:
        return []
    return [Finding("no-dependencies", rel_entry, 1, "no declared dependencies (no PEP 723 block, requirements file or pyproject)",
                    "Nobody can rebuild the environment the results came from.",
                    "Add a PEP 723 block with pinned versions to the script (`uv add --script train.py numpy==2.1.0`), "
                    "or a requirements.txt with name==version lines.")]
