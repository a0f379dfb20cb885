"""Every git operation assay runs. The loop's writes are confined to the branch `assay/<tag>` and refs under `refs/assay/`.

Nothing here touches another branch, stashes, or resets a file the loop did not commit itself.
What provenance, the run diff, rerun and loop recovery need is read-only (see _read); rerun's
temporary worktree is detached and removed afterwards.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from assay.errors import GitError

_REPO_LOCKS = ("index.lock", "HEAD.lock", "ORIG_HEAD.lock", "packed-refs.lock")
_IDENTITY = {"GIT_AUTHOR_NAME": "assay", "GIT_AUTHOR_EMAIL": "assay@localhost",
             "GIT_COMMITTER_NAME": "assay", "GIT_COMMITTER_EMAIL": "assay@localhost"}


class Repo:
    """A git work tree, driven through the git CLI."""

    def __init__(self, path: Path) -> None:
        out = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path, capture_output=True, text=True)
        if out.returncode != 0:
            raise GitError(f"{path} is not inside a git repository; the loop keeps its history in git",
                           "Start one: git init && git add -A && git commit -m 'baseline'")
        self.root = Path(out.stdout.strip())

    def git(self, *args: str, check: bool = True, identity: bool = False) -> str:
        env = {**os.environ, "LC_ALL": "C"}
        if identity and not self._has_identity():
            env.update(_IDENTITY)  # commits need a name; use assay's only where the user set none
        out = subprocess.run(["git", *args], cwd=self.root, capture_output=True, text=True, env=env)
        if check and out.returncode != 0:
            msg = out.stderr.strip() or out.stdout.strip()
            hint = "Check the repository state with `git status`."
            if ".lock': File exists" in msg or "index.lock" in msg:
                msg = msg.splitlines()[0]
                hint = "A killed git left its lock behind: `assay loop resume TAG` removes it when no git is running."
            raise GitError(f"git {' '.join(args)} failed: {msg}", hint)
        return out.stdout

    def clear_stale_locks(self) -> list[str]:
        """Remove the lock files a git killed along with an assay command can leave; their names.

        Only the locks of what the loop's git commands write: the index, HEAD, ORIG_HEAD,
        packed-refs, and refs under refs/heads/assay/ and refs/assay/. And only when no git
        process works in this repository: a live git owns its locks, and a process whose details
        are hidden from us counts as live.
        """
        import time

        def path(name: str) -> Path:
            p = Path(self.git("rev-parse", "--git-path", name).strip())
            return p if p.is_absolute() else self.root / p

        def present() -> list[Path]:
            found = [p for p in map(path, _REPO_LOCKS) if p.exists()]
            for folder in (path("refs/heads/assay"), path("refs/assay")):
                found += sorted(folder.rglob("*.lock")) if folder.is_dir() else []
            return found

        deadline = time.monotonic() + 3.0  # a git killed a moment ago may still be exiting
        while (locks := present()) and _git_running_in(self.root):
            if time.monotonic() > deadline:
                return []
            time.sleep(0.1)
        for lock in locks:
            lock.unlink(missing_ok=True)
        return [str(lock.relative_to(self.root)) if lock.is_relative_to(self.root) else str(lock) for lock in locks]

    def _has_identity(self) -> bool:
        return bool(subprocess.run(["git", "config", "user.email"], cwd=self.root, capture_output=True, text=True).stdout.strip())

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def branch(self) -> str:
        return self.git("rev-parse", "--abbrev-ref", "HEAD").strip()

    def ref_exists(self, ref: str) -> bool:
        return self.git("rev-parse", "--verify", "--quiet", ref, check=False).strip() != ""

    def rel(self, path: Path) -> str:
        return str(path.resolve().relative_to(self.root))

    def changed_files(self) -> tuple[list[str], list[str]]:
        """(tracked files changed against HEAD, untracked files not ignored)."""
        out = self.git("status", "--porcelain=v1", "-z", "--untracked-files=all")
        tracked: list[str] = []
        untracked: list[str] = []
        entries = out.split("\0")
        i = 0
        while i < len(entries):
            e = entries[i]
            i += 1
            if not e:
                continue
            code, name = e[:2], e[3:]
            if code[0] in "RC":  # renames carry the old name in the next entry
                i += 1
            (untracked if code == "??" else tracked).append(name)
        return tracked, untracked

    def diff(self, base: str, paths: list[str]) -> str:
        """The diff of `paths` (tracked or new) in the work tree against `base`, without touching the index."""
        text = self.git("diff", base, "--", *paths)
        tracked = set(self.git("ls-files", "--", *paths).split("\n"))
        for p in paths:
            if p not in tracked and (self.root / p).is_file():
                text += self.git("diff", "--no-index", "--", "/dev/null", p, check=False)
        return text

    def commit_paths(self, paths: list[str], message: str) -> str:
        self.git("add", "--", *paths)
        self.git("commit", "-q", "--no-verify", "-m", message, "--", *paths, identity=True)
        return self.head()

    def save_blob(self, ref: str, text: str) -> None:
        """Store `text` in the object database and point `ref` at it (kept by git, outside any branch)."""
        out = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=self.root, input=text,
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise GitError(f"git hash-object failed: {out.stderr.strip()}", "Check the repository state with `git status`.")
        self.save_ref(ref, out.stdout.strip())

    def save_ref(self, ref: str, commit: str) -> None:
        self.git("update-ref", ref, commit)

    def reset_branch(self, branch: str, commit: str, hard: bool, keep: tuple[str, ...] = ()) -> None:
        """Move `branch` (which must be checked out and be an assay branch) back to `commit`.

        A hard reset leaves alone the tracked files under the `keep` prefixes (files assay writes
        itself, such as a committed REPORT.md): their changes in the work tree survive it."""
        if not branch.startswith("assay/") or self.branch() != branch:
            raise GitError(f"Refusing to reset '{self.branch()}': assay only resets its own assay/* branch",
                           f"git checkout {branch}")
        kept = {p: (self.root / p).read_bytes() for p in self.changed_files()[0]
                if hard and p.startswith(keep) and (self.root / p).is_file()} if keep else {}
        self.git("reset", "-q", "--hard" if hard else "--mixed", commit)
        for p, data in kept.items():
            (self.root / p).write_bytes(data)

    # Worktrees and refs of a parallel loop: assay only ever adds, moves and removes its own
    # (worktrees under the lab's .assay/ folder, refs under refs/assay/).

    def add_worktree(self, path: Path, commit: str) -> None:
        """A new work tree at `path` on a detached HEAD at `commit` (no branch to clash with assay/TAG)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.git("worktree", "add", "-q", "--detach", str(path), commit)

    def worktrees(self) -> list[Path]:
        """Every work tree of this repository but the main one."""
        found = [Path(line[len("worktree "):]) for line in self.git("worktree", "list", "--porcelain").splitlines()
                 if line.startswith("worktree ")]
        return found[1:]

    def remove_worktree(self, path: Path) -> None:
        """Remove the work tree at `path` (uncommitted changes included) and git's record of it."""
        import shutil

        self.git("worktree", "remove", "--force", "--force", str(path), check=False)
        if path.exists():  # git refused (e.g. a lock a killed git left): the folder is assay's own
            shutil.rmtree(path, ignore_errors=True)
        self.git("worktree", "prune")

    def refs(self, prefix: str) -> list[str]:
        """The refs under `prefix` (e.g. refs/assay/TAG/cand/)."""
        return self.git("for-each-ref", "--format=%(refname)", prefix).split()

    def delete_ref(self, ref: str) -> None:
        if not ref.startswith("refs/assay/"):
            raise GitError(f"Refusing to delete '{ref}': assay only deletes its own refs under refs/assay/", "git for-each-ref refs/assay/")
        self.git("update-ref", "-d", ref)

    def cherry_pick(self, commit: str) -> str | None:
        """Replay `commit` on HEAD; the new commit, or None on a conflict (the pick is aborted)."""
        before = self.head()
        self.git("cherry-pick", "--allow-empty", commit, check=False, identity=True)
        if self.ref_exists("CHERRY_PICK_HEAD"):
            self.git("cherry-pick", "--abort", check=False)
        after = self.head()
        return after if after != before else None


def _git_running_in(root: Path) -> bool:
    import psutil

    for proc in psutil.process_iter(["name", "status"]):
        if not (proc.info["name"] or "").startswith("git") or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue  # a zombie is dead: it will never release (or use) a lock
        try:
            cwd = Path(proc.cwd())
        except psutil.NoSuchProcess:  # gone, zombies included
            continue
        except psutil.AccessDenied:
            return True
        if cwd == root or root in cwd.parents:
            return True
    return False


def diff_hash(diff: str) -> str:
    """Hash of a diff that ignores what does not change behaviour: whitespace, blank lines, headers."""
    lines = []
    for line in diff.splitlines():
        if line.startswith(("index ", "@@", "diff --git", "new file mode", "deleted file mode")):
            continue
        body = re.sub(r"\s+", "", line)
        if body in ("+", "-", ""):
            continue
        lines.append(body)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def diff_size(diff: str) -> tuple[int, int]:
    """(lines added, lines removed), ignoring blank lines and file headers."""
    added = sum(1 for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++") and ln[1:].strip())
    removed = sum(1 for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---") and ln[1:].strip())
    return added, removed


def file_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


# What a code snapshot of an experiment outside git leaves behind: its outputs and caches.
_SNAPSHOT_SKIP_DIRS = {"runs", "sweeps", "loops", "plots", "__pycache__", ".ipynb_checkpoints", ".git"}
SNAPSHOT_FILE_MAX = 64 * 1024 * 1024  # bigger files (data, checkpoints) are not shipped: workers read them from storage


@dataclass(frozen=True)
class CodeSnapshot:
    """The code a run runs, packed to travel to a machine that does not share the lab's disk.

    In git: the commit (as a bundle of its history), the uncommitted changes as a binary patch and
    the untracked files of the experiment folder. Outside git: the experiment folder's files.
    Files over SNAPSHOT_FILE_MAX and ignored files stay behind.
    """

    root: str  # the folder it was taken from here: the repository's top, or the experiment folder
    commit: str | None = None
    bundle: bytes = b""
    patch: bytes = b""
    files: bytes = b""  # a tar.gz, relative to root

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for part in (self.root.encode(), (self.commit or "").encode(), self.bundle, self.patch, self.files):
            h.update(hashlib.sha256(part).digest())
        return h.hexdigest()

    def materialise(self, dest: Path) -> Path:
        """Recreate the code in `dest` (which must not exist); returns the folder that stands for `root`.

        Raises:
            GitError: git is missing here, or the bundle or patch does not apply.
        """
        dest.parent.mkdir(parents=True, exist_ok=True)
        if self.bundle:
            bundle = dest.parent / f"{dest.name}.bundle"
            bundle.write_bytes(self.bundle)
            _git_bytes(dest.parent, "clone", "-q", "--no-checkout", str(bundle), str(dest))
            bundle.unlink()
            _git_bytes(dest, "checkout", "-q", "--detach", str(self.commit))
            if self.patch:
                _git_bytes(dest, "apply", "--binary", "--whitespace=nowarn", "-", stdin=self.patch)
        else:
            dest.mkdir()
        if self.files:
            import io
            import tarfile

            with tarfile.open(fileobj=io.BytesIO(self.files), mode="r:gz") as tar:
                tar.extractall(dest, filter="data")
        return dest


def snapshot_code(exp_path: Path) -> CodeSnapshot:
    """The code of the experiment at `exp_path` as it is now (see CodeSnapshot).

    Raises:
        GitError: a git command failed inside a repository.
    """
    exp = exp_path.resolve()
    try:
        top = _git_bytes(exp, "rev-parse", "--show-toplevel").decode().strip()
        commit = _git_bytes(exp, "rev-parse", "--verify", "-q", "HEAD").decode().strip()
    except (GitError, OSError):  # not a repository, no commit yet, or no git here
        return CodeSnapshot(root=str(exp), files=_tar(exp, _loose_files(exp)))
    root = Path(top)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="assay-bundle-") as tmp:
        file = Path(tmp) / "code.bundle"
        _git_bytes(root, "bundle", "create", "-q", str(file), "HEAD")
        bundle = file.read_bytes()
    patch = _git_bytes(root, "diff", "HEAD", "--binary")
    listed = _git_bytes(root, "ls-files", "--others", "--exclude-standard", "-z", "--", str(exp)).decode("utf-8", "replace")
    untracked = [root / rel for rel in listed.split("\0") if rel]
    return CodeSnapshot(root=str(root), commit=commit, bundle=bundle, patch=patch, files=_tar(root, untracked))


def _loose_files(folder: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d not in _SNAPSHOT_SKIP_DIRS]
        out += [Path(dirpath) / f for f in filenames]
    return out


def _tar(root: Path, files: list[Path]) -> bytes:
    import io
    import tarfile

    if not files:
        return b""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        for f in sorted(files):
            if f.is_file() and not f.is_symlink() and f.stat().st_size <= SNAPSHOT_FILE_MAX:
                tar.add(f, arcname=str(f.relative_to(root)), recursive=False)
    return buf.getvalue()


def _git_bytes(cwd: Path, *args: str, stdin: bytes | None = None) -> bytes:
    out = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, env={**os.environ, "LC_ALL": "C"})
    if out.returncode != 0:
        msg = (out.stderr or out.stdout).decode("utf-8", "replace").strip()
        raise GitError(f"git {' '.join(args[:2])} failed in {cwd}: {msg}", "Check the repository with `git status`.")
    return out.stdout


# -- reading a repository ----------------------------------------------------------------------
# Provenance, the run diff and the loop's recovery only read: GIT_OPTIONAL_LOCKS=0 keeps `git status`
# and `git diff` from refreshing the user's index (a write, and a lock another git could trip on).
_READ_ENV = {"GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}


def _read(cwd: Path, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess[bytes] | None:
    """A git command that writes nothing; None when git is not installed or did not answer in `timeout` s."""
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False, timeout=timeout,
                              env={**os.environ, **_READ_ENV})
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None


def git_installed() -> bool:
    import shutil

    return shutil.which("git") is not None


def toplevel(cwd: Path, timeout: float | None = None) -> Path | None:
    """The root of the work tree holding `cwd`; None outside git or without git."""
    out = _read(cwd, "rev-parse", "--show-toplevel", timeout=timeout)
    return Path(out.stdout.decode().strip()) if out is not None and out.returncode == 0 else None


def head(cwd: Path) -> tuple[str | None, str | None]:
    """(HEAD's commit, its branch name or "HEAD" when detached); (None, None) before the first commit."""
    out = _read(cwd, "rev-parse", "HEAD", "--abbrev-ref", "HEAD")
    words = out.stdout.decode().split() if out is not None and out.returncode == 0 else []
    return (words[0] if words else None), (words[1] if len(words) > 1 else None)


def status(cwd: Path) -> tuple[list[str], list[str]]:
    """(changed tracked files, untracked files not ignored; a new folder as "dir/"), as `git status` lists them."""
    out = _read(cwd, "status", "--porcelain=v1", "-z", "--untracked-files=normal")
    entries = [e for e in (out.stdout if out is not None else b"").decode("utf-8", "replace").split("\0") if e]
    return [e[3:] for e in entries if not e.startswith("??")], [e[3:] for e in entries if e.startswith("??")]


def diff_head(cwd: Path, paths: Sequence[str] = ()) -> bytes:
    """The binary diff of the work tree against HEAD (of `paths` only, when given); b"" when none."""
    out = _read(cwd, "diff", "HEAD", "--binary", *(("--", *paths) if paths else ()))
    return out.stdout if out is not None else b""


def tree_objects(cwd: Path, commit: str, paths: Sequence[str]) -> list[tuple[str, str, str]]:
    """(mode, object id, path) of every file `commit` holds under `paths`, recursively."""
    out = _read(cwd, "ls-tree", "-r", "-z", commit, "--", *paths)
    found = []
    for entry in (out.stdout if out is not None else b"").decode("utf-8", "replace").split("\0"):
        if entry:
            meta, _, rel = entry.partition("\t")
            mode, _, obj = meta.split()
            found.append((mode, obj, rel))
    return found


def has_commit(cwd: Path, commit: str, timeout: float | None = None) -> bool:
    """Whether the repository still holds `commit` (not rebased away or garbage-collected)."""
    out = _read(cwd, "cat-file", "-e", f"{commit}^{{commit}}", timeout=timeout)
    return out is not None and out.returncode == 0


def diff_commits(cwd: Path, a: str, b: str, path: str, timeout: float | None = None) -> bytes:
    """`git diff A B -- path`, without colour or external diff drivers.

    Raises:
        GitError: git is missing, timed out or failed (its message quoted).
    """
    out = _read(cwd, "diff", "--no-color", "--no-ext-diff", a, b, "--", path, timeout=timeout)
    if out is None or out.returncode != 0:
        why = out.stderr.decode(errors="replace").strip() if out is not None else "git not installed or not answering"
        raise GitError(f"git diff {a[:12]} {b[:12]} failed: {why}", "Check the repository with `git status`.")
    return out.stdout


def read_blob(cwd: Path, ref: str) -> str | None:
    """The text of the blob `ref` points at (as Repo.save_blob stores it); None when there is none."""
    out = _read(cwd, "cat-file", "blob", ref)
    return out.stdout.decode("utf-8", "replace") if out is not None and out.returncode == 0 else None


# -- temporary worktrees -----------------------------------------------------------------------


@contextmanager
def worktree_at(root: Path, commit: str) -> Iterator[Path]:
    """A detached git worktree of `commit` in a temporary folder, removed afterwards: code from
    any commit runs there while the user's work tree, index and branches stay untouched.

    Raises:
        GitError: the worktree cannot be created (a stale one registered: `git worktree prune`).
    """
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="assay-rerun-"))
    tree = tmp / "tree"
    try:
        add = _read(root, "worktree", "add", "--detach", str(tree), commit)
        if add is None or add.returncode != 0:
            why = add.stderr.decode(errors="replace").strip() if add is not None else "git is not installed"
            raise GitError(f"Could not check out {commit[:12]} into a worktree: {why}", "Run `git worktree prune` and retry.")
        yield tree
    finally:
        if tree.exists():
            _read(root, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(tmp, ignore_errors=True)
        _read(root, "worktree", "prune")


def apply_patch(tree: Path, patch: Path) -> str | None:
    """Apply a binary patch (as git_state records it) to the work tree `tree`; None when it applied,
    else why not (git's message)."""
    out = _read(tree, "apply", "--binary", "--whitespace=nowarn", str(patch))
    if out is None:
        return "git is not installed"
    return None if out.returncode == 0 else out.stderr.decode(errors="replace").strip()
