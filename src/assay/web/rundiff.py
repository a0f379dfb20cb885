"""The run diff: two runs side by side (params, metrics, code, environment).

The code difference is `git diff COMMIT_A COMMIT_B -- <experiment folder>` between the commits the
two runs recorded, plus each run's git.patch (what was uncommitted when it started). Git is only
read: every call goes through gitops' read-only helpers (no index refresh, no lock taken), and a lab outside git, or
a commit the repository no longer holds, is said on the page instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assay import gitops
from assay.errors import GitError
from assay.lab import Lab
from assay.store import records

MAX_DIFF = 256_000  # bytes of `git diff` output sent to the browser
_GIT_TIMEOUT = 30  # seconds: a page must answer even when the repository is huge or on a stalled disk
_ENV_KEYS = ("python_version", "python", "platform", "hostname", "cpu_count", "cuda_visible_devices")


def _env(path: Path) -> dict[str, Any] | None:
    try:
        env: dict[str, Any] = json.loads((path / "env.json").read_text(encoding="utf-8"))
        return env
    except (OSError, ValueError):
        return None


def _cut(data: bytes, limit: int = MAX_DIFF) -> str:
    text = data[:limit].decode("utf-8", "replace")
    return text + (f"\n... (cut at {limit // 1000} kB)" if len(data) > limit else "")


def params_diff(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Every param of either run: {key, a, b, same}; a param one run lacks is `None` there."""
    missing = object()
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k, missing), b.get(k, missing)
        out.append({"key": k, "a": None if va is missing else va, "b": None if vb is missing else vb,
                    "same": va is not missing and vb is not missing and va == vb,
                    "only": "a" if vb is missing else "b" if va is missing else None})
    return out


def metrics_diff(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Each metric's last and best in both runs (sampled sys/* metrics left out)."""
    out = []
    for k in sorted((set(a) | set(b)) - {k for k in set(a) | set(b) if k.startswith("sys/")}):
        ma, mb = a.get(k) or {}, b.get(k) or {}
        out.append({"key": k, "a_last": ma.get("last"), "b_last": mb.get("last"), "a_best": ma.get("best"),
                    "b_best": mb.get("best")})
    return out


def env_diff(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any]:
    """Python and host fields that differ, and packages added, removed or at another version."""
    if a is None or b is None:
        return {"available": False, "note": "env.json is missing from " + " and ".join(
            n for n, e in (("run A", a), ("run B", b)) if e is None)}
    fields = [{"key": k, "a": a.get(k), "b": b.get(k)} for k in _ENV_KEYS if a.get(k) != b.get(k)]
    pa, pb = a.get("packages") or {}, b.get("packages") or {}
    pkgs = [{"name": n, "a": pa.get(n), "b": pb.get(n)} for n in sorted(set(pa) | set(pb), key=str.lower)
            if pa.get(n) != pb.get(n)]
    same = sum(1 for n in set(pa) & set(pb) if pa[n] == pb[n])
    return {"available": True, "fields": fields, "packages": pkgs, "packages_same": same}


def code_diff(lab: Lab, exp_path: Path, ga: dict[str, Any] | None, gb: dict[str, Any] | None) -> dict[str, Any]:
    """`git diff A B -- <experiment folder>` between the two runs' commits, or why there is none."""
    ca, cb = (ga or {}).get("commit"), (gb or {}).get("commit")
    if not ca or not cb:
        which = " and ".join(n for n, c in (("run A", ca), ("run B", cb)) if not c)
        return {"available": False, "note": f"No git commit recorded for {which}: the lab was not in a git "
                "repository when it ran, so only the code fingerprints can be compared."}
    if ca == cb:
        return {"available": True, "same_commit": True, "diff": "", "a": ca, "b": cb}
    root = Path((ga or {}).get("root") or lab.root)
    if not root.is_dir():
        root = lab.root
    if not gitops.git_installed():
        return {"available": False, "note": "git is not installed here, so the commits cannot be compared."}
    top_path = gitops.toplevel(root, timeout=_GIT_TIMEOUT)
    if top_path is None:
        return {"available": False, "note": f"{root} is no longer a git repository, so the commits cannot be compared."}
    try:
        rel = str(exp_path.resolve().relative_to(top_path.resolve())) or "."
    except ValueError:
        rel = "."
    for c in (ca, cb):
        if not gitops.has_commit(top_path, c, timeout=_GIT_TIMEOUT):
            return {"available": False, "note": f"Commit {c[:12]} is not in the repository any more (rebased or "
                    "garbage-collected), so the code difference cannot be shown."}
    try:
        diff = gitops.diff_commits(top_path, ca, cb, rel, timeout=_GIT_TIMEOUT)
    except GitError as exc:
        return {"available": False, "note": exc.message}
    return {"available": True, "same_commit": False, "diff": _cut(diff), "a": ca, "b": cb, "path": rel}


def run_diff(lab: Lab, run_a: str, run_b: str) -> dict[str, Any]:
    """Two runs side by side.

    Returns:
        {"a": run summary, "b": run summary, "params": [{key, a, b, same}], "metrics": [{key,
        a_last, b_last, a_best, b_best}], "code": {available, diff | note, same_commit},
        "patches": {"a", "b"} (each run's git.patch or None), "environment": {fields, packages}}.

    Raises:
        UnknownRun: either id names no run folder of the lab.
    """
    from assay.web.data import _text, run_dir

    pa, pb = run_dir(lab, run_a), run_dir(lab, run_b)
    ra, rb = records.read_record(pa), records.read_record(pb)

    def summary(rid: str, r: dict[str, Any]) -> dict[str, Any]:
        git = r.get("git") or {}
        return {"id": rid, "desc": r.get("desc"), "status": r.get("status"), "reason": r.get("reason"),
                "started": r.get("started"), "duration": r.get("duration"), "seed": r.get("seed"),
                "commit": git.get("commit"), "dirty": bool(git.get("dirty")), "code": (r.get("code") or {}).get("fingerprint"),
                "command": r.get("command")}

    def patch(p: Path) -> str | None:
        f = p / records.PATCH_FILE
        return _text(f) if f.is_file() else None

    code = code_diff(lab, pa.parent.parent, ra.get("git"), rb.get("git"))
    return {"a": summary(run_a, ra), "b": summary(run_b, rb),
            "params": params_diff(ra.get("params") or {}, rb.get("params") or {}),
            "metrics": metrics_diff(ra.get("metrics") or {}, rb.get("metrics") or {}),
            "primary_metric": ra.get("primary_metric") or rb.get("primary_metric"),
            "code": code, "patches": {"a": patch(pa), "b": patch(pb)},
            "environment": env_diff(_env(pa), _env(pb))}
