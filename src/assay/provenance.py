"""What a run needs to be reproduced: git commit + uncommitted diff, Python, packages, host.

Read-only: assay never changes the user's repository here (no `git add`, no index writes).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assay import gitops


def git_state(cwd: Path, patch_path: Path | None = None) -> dict[str, Any] | None:
    """Commit, branch, dirty files and (if dirty) the diff against HEAD written to `patch_path`.

    Returns None outside a git repository. Untracked files are listed, not copied.
    """
    top = gitops.toplevel(cwd)
    if top is None:
        return None  # outside git, or git not installed
    commit, branch = gitops.head(cwd)
    dirty, untracked = gitops.status(cwd)
    state: dict[str, Any] = {
        "root": str(top),
        "commit": commit,
        "branch": branch,
        "dirty": dirty,
        "untracked": untracked[:200],
        "patch": None,
    }
    if dirty and commit and patch_path is not None:
        diff = gitops.diff_head(cwd)
        if diff:
            patch_path.write_bytes(diff)
            state["patch"] = patch_path.name
            state["patch_sha256"] = hashlib.sha256(diff).hexdigest()
    return state


# What is not code in an experiment folder: its outputs, its notes and the files whose effect a run
# records elsewhere (config.yaml's defaults are in the run's params; data files in its data
# fingerprints). Edits to these never make a new code version.
_NOT_CODE_DIRS = {"runs", "sweeps", "plots", "data", "checkpoints", "__pycache__", ".ipynb_checkpoints"}
_NOT_CODE_FILES = {"experiment.yaml", "config.yaml", "results.tsv", ".gitignore"}
_NOT_CODE_SUFFIXES = (".md", ".html", ".png", ".svg", ".pdf", ".pyc", ".tsv", ".csv", ".parquet", ".npy", ".npz",
                      ".pt", ".ckpt", ".safetensors", ".bin", ".log")
_CODE_SUFFIXES = (".py", ".ipynb", ".sh", ".jl", ".r", ".c", ".cc", ".cpp", ".cu", ".h", ".hpp", ".rs", ".js", ".ts")
_UNTRACKED_MAX = 1 << 20


def _is_code(rel: str, under_experiment: bool) -> bool:
    parts = rel.split("/")
    if any(p in _NOT_CODE_DIRS or p.startswith(".") for p in parts[:-1]):
        return False
    name = parts[-1]
    if under_experiment and len(parts) == 1 and name in _NOT_CODE_FILES:
        return False
    return not name.lower().endswith(_NOT_CODE_SUFFIXES)


def code_version(exp_path: Path, code_paths: list[str] | tuple[str, ...] = (), git: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fingerprint of the code a run of this experiment runs: {fingerprint, commit, dirty, files}.

    In git: the blob ids the commit holds under the experiment folder and the `code:` paths, the
    uncommitted diff of those files, and the content of untracked code files there (a new module
    not committed yet is code too). Outside git: the content of the code files. Outputs, notes,
    config.yaml and data are not code (see _is_code). `code_paths` are relative to the experiment
    folder (`../model.py`) or absolute.
    """
    exp = exp_path.resolve()
    roots = [exp, *((exp / p).resolve() for p in code_paths)]
    h = hashlib.sha256()
    files = 0
    top = Path(git["root"]) if git and git.get("root") and git.get("commit") else None
    if top is not None and git is not None:
        rels = []
        for r in roots:
            try:
                rels.append(str(r.relative_to(top)) or ".")
            except ValueError:
                continue  # a code path outside the repository: hashed by content below
        # ordered by mode, then object id: the order code fingerprints were recorded in since schema 3
        for _, obj, rel in sorted(gitops.tree_objects(top, git["commit"], rels)):
            if _is_code_in(top / rel, exp):
                h.update(f"{rel}\0{obj}\n".encode())
                files += 1
        changed = [p for p in git.get("dirty") or [] if _is_code_in(top / p.split(" -> ")[-1], exp)
                   and any((top / p.split(" -> ")[-1]).resolve().is_relative_to(r) for r in roots)]
        if changed:
            h.update(gitops.diff_head(top, [p.split(" -> ")[-1] for p in changed]))
        loose = [top / p for p in git.get("untracked") or []]  # a new folder is listed as "dir/": expanded below
        outside = [r for r in roots if not r.is_relative_to(top)]
    else:
        changed, loose, outside = [], [], roots
    for r in outside + [p for p in loose if p.is_dir()]:
        loose += [p for p in itertools.islice(r.rglob("*") if r.is_dir() else [r], 5000) if p.is_file()]
    for p in sorted(set(loose)):
        try:
            if (p.suffix.lower() in _CODE_SUFFIXES and _is_code_in(p, exp) and any(p.resolve().is_relative_to(r) for r in roots)
                    and p.stat().st_size <= _UNTRACKED_MAX):
                h.update(f"{p.resolve()}\0".encode() + hashlib.sha256(p.read_bytes()).digest())
                files += 1
        except OSError:
            continue
    return {"fingerprint": h.hexdigest()[:16], "commit": git.get("commit") if git else None,
            "dirty": bool(changed), "files": files}


def _is_code_in(path: Path, exp: Path) -> bool:
    try:
        rel = path.resolve().relative_to(exp)
        return _is_code(str(rel), True)
    except ValueError:
        return _is_code(path.name, False)


_PKG_SCRIPT = (
    "import json,importlib.metadata as m;"
    "print(json.dumps({d.metadata['Name']:d.version for d in m.distributions() if d.metadata['Name']}))"
)


def _site_stamp(python: str) -> str:
    """Changes whenever packages are installed or removed in the interpreter's environment."""
    prefix = Path(sys.prefix) if python == sys.executable else Path(python).resolve().parent.parent
    stamps = [str(python)]
    for site in sorted(prefix.glob("lib/python3*/site-packages")):
        stamps.append(f"{site}:{site.stat().st_mtime_ns}")
    return hashlib.sha1("|".join(stamps).encode()).hexdigest()[:16]


def packages(python: str, cache_dir: Path | None) -> dict[str, str]:
    """Installed distributions of `python`, cached per environment state (listing costs ~50 ms)."""
    cache = cache_dir / f"packages-{_site_stamp(python)}.json" if cache_dir else None
    if cache and cache.is_file():
        try:
            listed: dict[str, str] = json.loads(cache.read_text())
            return listed
        except ValueError:
            pass
    if python == sys.executable:
        import importlib.metadata as md

        pkgs = {d.metadata["Name"]: d.version for d in md.distributions() if d.metadata["Name"]}
    else:
        out = subprocess.run([python, "-c", _PKG_SCRIPT], capture_output=True, check=False)
        try:
            pkgs = json.loads(out.stdout) if out.returncode == 0 else {}
        except ValueError:
            pkgs = {}
    pkgs = dict(sorted(pkgs.items(), key=lambda kv: kv[0].lower()))
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(pkgs))
        os.replace(tmp, cache)
    return pkgs


def environment(python: str, cache_dir: Path | None) -> dict[str, Any]:
    return {
        "python": python,
        "python_version": platform.python_version() if python == sys.executable else None,
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "packages": packages(python, cache_dir),
    }


# ------------------------------------------------------------------ data

DATA_FULL_HASH = 256 << 20  # bytes hashed in full per run; beyond, a file gets a sampled hash
_SAMPLE = 1 << 20


def _folder_files(folder: Path) -> list[Path]:
    import itertools

    return sorted(p for p in itertools.islice(folder.rglob("*"), 5000) if p.is_file())[:50]


def _allowed_roots(exp_path: Path, lab_root: Path | None, declared: Sequence[str]) -> list[Path]:
    """Where fingerprinted files may live: the lab, the experiment's data/ and its `data:` paths
    (links resolved), so a param naming a system file (data=/etc/passwd) is not hashed."""
    if lab_root is None:
        from assay.lab import maybe_find_lab

        lab = maybe_find_lab(exp_path)
        lab_root = lab.root if lab else exp_path
    return [p.resolve() for p in (lab_root, exp_path / "data", *(exp_path / d for d in declared))]


def data_files(exp_path: Path, params: dict[str, Any], *, declared: Sequence[str] = (),
               lab_root: Path | None = None) -> dict[Path, str]:
    """Data a run reads, as far as can be seen from outside: params naming existing files, the
    files under the experiment's data/ folder and its `data:` paths (the first 50 of each folder).
    Only files inside the lab (default: the lab holding `exp_path`), data/ or `data:` count, after
    resolving links. {resolved path: what named it}."""
    from assay.config import flatten

    roots = _allowed_roots(exp_path, lab_root, declared)
    found: list[tuple[Path, str]] = []
    for key, value in flatten(params).items():
        if isinstance(value, str) and value and len(value) < 500 and "\n" not in value and "\0" not in value:
            found.append((exp_path / value, f"param {key}"))  # an absolute value replaces exp_path
    for name, source in (("data", "data/"), *((d, "data:") for d in declared)):
        try:
            folder = exp_path / name
            if folder.is_dir():
                found += [(p, source) for p in _folder_files(folder)]
            elif source == "data:":
                found.append((folder, source))
        except OSError:
            continue
    out: dict[Path, str] = {}
    for p, source in found:
        try:
            if not p.is_file():
                continue
            real = p.resolve()
        except (OSError, RuntimeError):  # unreadable, or a symlink loop
            continue
        if any(real.is_relative_to(root) for root in roots):
            out.setdefault(real, source)
    return out


def fingerprint(path: Path, full: bool = True) -> dict[str, Any]:
    """Size, mtime and sha256 of a file: of all of it, or (`full=False`, for big files) of its
    first and last MiB and its size, which still tells a changed file from the same one in practice."""
    st = path.stat()
    h = hashlib.sha256()
    with path.open("rb") as fh:
        if full:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        else:
            h.update(fh.read(_SAMPLE))
            fh.seek(max(0, st.st_size - _SAMPLE))
            h.update(fh.read(_SAMPLE))
            h.update(str(st.st_size).encode())
    return {"bytes": st.st_size, "mtime": st.st_mtime, "sha256": h.hexdigest()[:16], "hashed": "full" if full else "head+tail"}


def data_fingerprints(exp_path: Path, params: dict[str, Any], *, declared: Sequence[str] = (),
                      lab_root: Path | None = None) -> dict[str, dict[str, Any]]:
    """{file (relative to the experiment when inside it): fingerprint + what named it}."""
    out: dict[str, dict[str, Any]] = {}
    budget = DATA_FULL_HASH
    for path, source in data_files(exp_path, params, declared=declared, lab_root=lab_root).items():
        try:
            size = path.stat().st_size
            fp = fingerprint(path, full=size <= budget)
        except OSError:
            continue
        if fp["hashed"] == "full":
            budget -= size
        try:
            name = str(path.relative_to(exp_path.resolve()))
        except ValueError:
            name = str(path)
        out[name] = {**fp, "named_by": source}
    return out
