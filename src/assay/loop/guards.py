"""What the loop checks so that a kept commit holds the code that was evaluated, and nothing else.

Around every run of the loop, the tree is compared before and after: the run may write outputs
(checkpoints, logs, data of its own), but not change the protected or editable files, a tracked
file, a data file the experiment declares, or any file Python could import (source, bytecode,
extension modules, .pth files). Runs also start with bytecode writing off and their bytecode cache
in a fresh folder outside the tree (see runner.launch), so a .pyc left in the tree is never read.
Editable and protected files must be regular files: a symlink would make the commit hold the link,
not the code that ran.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from assay.errors import ConfigError

# Suffixes the import system loads (source, bytecode, extension modules) and .pth files, which
# site.py executes at startup.
CODE_SUFFIXES = (".py", ".pyw", ".pyc", ".pyo", ".so", ".pyd", ".pth")


def listing(paths: list[str], limit: int = 8) -> str:
    """`a, b, c` for an error message, cut at `limit` with how many more there are."""
    more = len(paths) - limit
    return ", ".join(paths[:limit]) + (f" and {more} more" if more > 0 else "")


def repo_path(root: Path, base: Path, name: str, role: str) -> str:
    """`name` (relative to `base`, the experiment folder) as a path relative to the repository root.

    Raises:
        ConfigError: it does not exist, lies outside the repository, or is (or sits in) a symlink.
    """
    flag = f"--{role}"
    target = Path(os.path.normpath(base.resolve() / name))
    top = root.resolve()
    if not target.is_relative_to(top):
        raise ConfigError(f"{flag} {name} names {target}, outside the git repository {top}",
                          f"Pass a file of the repository, e.g. {flag} train.py")
    rel = target.relative_to(top).as_posix()
    if link := symlink_in(top, rel):
        raise ConfigError(f"{flag} {name}: {link} is a symlink; the loop only tracks regular files",
                          f"Replace the link with the file itself: cp --remove-destination \"$(readlink -f {link})\" {link}")
    if not target.is_file():
        raise ConfigError(f"{flag} {name}: {target} is not a file", f"Pass files of the experiment, e.g. {flag} train.py")
    return rel


def symlink_in(root: Path, rel: str) -> str | None:
    """The first symlink on the way from `root` to `rel` (the file itself included), or None."""
    here = root
    for part in Path(rel).parts:
        here = here / part
        if here.is_symlink():
            return here.relative_to(root).as_posix()
    return None


def refuse_symlinks(root: Path, paths: Iterable[str]) -> None:
    """Raise when an editable or protected file was replaced by (or moved under) a symlink."""
    from assay.errors import GitError

    for rel in paths:
        if link := symlink_in(root, rel):
            raise GitError(f"{rel} is reached through the symlink {link}; a commit would hold the link, not the code",
                           f"Put the real file back: git checkout HEAD -- {link}")


@dataclass(frozen=True)
class Tree:
    """What a run must leave as it found it."""

    hashes: dict[str, str | None]  # editable and protected files -> sha256 (None: missing)
    tracked: frozenset[str]  # tracked files that differ from HEAD
    code: dict[str, tuple[int, int, int, int]]  # importable files -> (inode, size, mtime_ns, ctime_ns)


def snapshot(root: Path, watched: Iterable[str], tracked: Iterable[str]) -> Tree:
    """The state of the tree under `root`; `watched` are hashed, `tracked` come from git status."""
    return Tree({p: _sha256(root / p) for p in watched}, frozenset(tracked), code_files(root))


def changes(before: Tree, after: Tree, own: tuple[str, ...]) -> list[str]:
    """What a run changed that it may not, each as `path (what)`; `own` are assay's own file prefixes."""
    found = {p: "changed" for p, h in before.hashes.items() if after.hashes.get(p) != h}
    found |= {p: "changed" for p in after.tracked - before.tracked if not p.startswith(own)}
    for p, stat in after.code.items():
        if before.code.get(p) != stat:
            found.setdefault(p, ("new " if p not in before.code else "changed ") + _kind(p))
    return [f"{p} ({what})" for p, what in sorted(found.items())]


def code_files(root: Path) -> dict[str, tuple[int, int, int, int]]:
    """Files under `root` that a plain `import` could load.

    Only folders whose names are identifiers can be on an import path (`import a.b`), which also
    skips .git, virtual environments and assay's run folders (named by date). The ctime is in the
    fingerprint because no process can set it back (unlike mtime)."""
    found = {}
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = [d for d in dirs if d.isidentifier() and not (here / d / "pyvenv.cfg").exists()]
        for name in files:
            if name.endswith(CODE_SUFFIXES):
                try:
                    st = (here / name).lstat()
                except FileNotFoundError:  # removed while we walked
                    continue
                found[(here / name).relative_to(root).as_posix()] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return found


def save_code(path: Path, code: dict[str, tuple[int, int, int, int]]) -> None:
    """Remember the importable files as the last run left them (the next try compares with them)."""
    import json

    from assay.config import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(code))


def new_code(root: Path, saved: Path, known: Collection[str]) -> list[str]:
    """Importable files that are not in `known` (tracked or editable) and appeared or changed since
    `saved` was written: code a commit would not hold, ignored files included. [] without `saved`."""
    import json

    try:
        before = {p: tuple(v) for p, v in json.loads(saved.read_text()).items()}
    except (FileNotFoundError, ValueError):
        return []
    return sorted(p for p, st in code_files(root).items() if before.get(p) != st and p not in known)


def rewritten_data(record: dict) -> list[str]:
    """Data files (the experiment's `data:`) the run rewrote while it ran, as `path (data rewritten)`."""
    data = record.get("data") or {}
    return [f"{name} (data rewritten)" for name, fp in sorted(data.items())
            if isinstance(fp, dict) and fp.get("changed_during_run")]


def quarantine(root: Path, problems: Collection[str], tracked: Collection[str], dest: Path) -> list[str]:
    """Move the untracked files a run wrote or changed out of the tree, into `dest` (kept as
    evidence, never deleted); tracked files stay for the guards to refuse. Returns what moved."""
    moved = []
    for item in problems:
        rel = item.rsplit(" (", 1)[0]
        src = root / rel
        if rel in tracked or not (src.is_file() or src.is_symlink()):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        src.replace(target)
        moved.append(rel)
    return moved


def _kind(path: str) -> str:
    return "bytecode" if path.endswith((".pyc", ".pyo")) or "/__pycache__/" in f"/{path}" else "code"


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except (FileNotFoundError, IsADirectoryError):
        return None


def fresh_pycache() -> str:
    """A bytecode cache folder of the loop's run: fresh per run and never created, so no `.pyc`
    found in the tree (or planted by an earlier run) is read. The price: the modules the script
    imports compile from source at each start (measured: +0.4 s for numpy, +1.4 s for pandas)."""
    import secrets
    import tempfile

    return str(Path(tempfile.gettempdir()) / f"assay-pycache-{secrets.token_hex(8)}")
