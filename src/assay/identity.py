"""Run identity: which runs are repeats of one configuration.

A configuration is (entry point, code version, params without the seed). Two runs of different
code with the same params are different configurations: a loop's discarded candidate, a hand edit
of train.py between runs, or a run of another `--entry` script never pools with the baseline.
Every view (compare, verdict, report, plots, sweeps, the loop, the dashboard) groups through
`config_key`, and keeps one run per seed within a configuration (`dedupe_seeds`).

The code version is `record["code"]["fingerprint"]`, written by the runner from the files the run's
commit holds under the experiment folder (and any `code:` paths of the experiment), combined with
their uncommitted changes (provenance.code_version). Records written before it existed fall back
to their git commit + patch hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def code_fingerprint(record: dict[str, Any]) -> str | None:
    """The record's code version; for old records commit (+ patch hash when dirty); None when unknown."""
    code = record.get("code")
    if isinstance(code, dict) and code.get("fingerprint"):
        return str(code["fingerprint"])
    git = record.get("git") or {}
    commit = git.get("commit") if isinstance(git, dict) else None
    if not commit:
        return None
    patch = git.get("patch_sha256")
    return f"git:{commit}" + (f"+{patch[:16]}" if patch else "")


def code_label(record: dict[str, Any]) -> str:
    """A short name for the code version: the commit, `*` when it ran with uncommitted changes
    (followed by 4 characters of the fingerprint, which tell two dirty versions apart)."""
    code = record.get("code")
    if isinstance(code, dict) and code.get("label"):  # as the index stores it
        return str(code["label"])
    if isinstance(code, dict) and code.get("fingerprint"):
        if not code.get("commit"):  # outside git: the fingerprint is all there is
            return "#" + str(code["fingerprint"])[:7]
        return str(code["commit"])[:7] + (f"*{str(code['fingerprint'])[:4]}" if code.get("dirty") else "")
    git = record.get("git") or {}
    commit = (git.get("commit") or "")[:7] if isinstance(git, dict) else ""
    if not commit:
        return "?"
    return commit + (f"*{str(git.get('patch_sha256') or '')[:4]}" if git.get("dirty") else "")


def params_without_seed(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (record.get("params") or {}).items() if k != "seed"}


def config_key(record: dict[str, Any], *, pool_code: bool = False) -> str:
    """The identity of a run's configuration as text: entry, code version (unless `pool_code`) and
    params without the seed. Equal keys are repeats of one configuration."""
    return json.dumps([record.get("entry"), None if pool_code else code_fingerprint(record), params_without_seed(record)],
                      sort_keys=True, default=str)


def config_hash(record: dict[str, Any]) -> str:
    """config_key (code included) as 16 hex characters: what the index stores per run."""
    return hashlib.sha256(config_key(record).encode()).hexdigest()[:16]


def dedupe_seeds(items: Iterable[T], key: Any, seed: Any) -> Iterator[T]:
    """One item per (configuration, seed), the later one winning, in the order of the survivors.

    A configuration run twice with the same seed measured the same random draw (identical on
    deterministic code), so counting both would fake a smaller noise. Items without a seed all count.
    """
    items = list(items)
    keys = [(key(item), _hashable(seed(item))) for item in items]
    last = {k: i for i, k in enumerate(keys) if k[1] is not None}
    for i, item in enumerate(items):
        if keys[i][1] is None or last[keys[i]] == i:
            yield item


def _hashable(v: Any) -> Any:
    """A seed as a dict key: numbers and text as they are (1 == 1.0, as in JSON), anything else as JSON."""
    if v is None or isinstance(v, (int, float, str)):
        return v
    return json.dumps(v, sort_keys=True, default=str)
