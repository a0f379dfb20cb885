"""Hydra apps (`params: hydra`): find the app's config, check overrides with Hydra's own
composition before a run, and read the run's resolved config back after it.

The config folder comes from experiment.yaml `hydra: {config_path, config_name}` or else from
`@hydra.main(config_path=..., config_name=...)` in the entry script (read by AST, never run);
`config_path` is relative to the script's folder, as in Hydra. Checking needs hydra-core in
assay's own environment (`pip install 'assay[hydra]'`); without it the run itself reports Hydra's
error.
"""

from __future__ import annotations

import ast
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.config import flatten
from assay.errors import ConfigError

_LOCK = threading.Lock()  # Hydra's global state: one composition at a time (sweeps launch from threads)
RUN_SUBDIR = "hydra"


@dataclass(frozen=True)
class HydraApp:
    config_dir: Path
    config_name: str


def find_app(script: Path | None, settings: Any, file: Path) -> HydraApp | None:
    """The app's config folder and primary config, or None when it has none (or it is unreadable).

    Raises:
        ConfigError: a malformed `hydra:` section in experiment.yaml.
    """
    base = script.parent if script is not None else file.parent
    if settings is not None:
        if not isinstance(settings, dict) or not settings.get("config_path") or not settings.get("config_name"):
            raise ConfigError(f"`hydra:` in {file} must be a mapping with config_path and config_name, not {settings!r}",
                              "Write e.g. `hydra: {config_path: conf, config_name: config}` (config_path relative to the script).")
        return HydraApp((base / str(settings["config_path"])).resolve(), str(settings["config_name"]))
    if script is None or not script.is_file():
        return None
    try:
        tree = ast.parse(script.read_text(encoding="utf-8", errors="replace"))
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for deco in node.decorator_list:
                found = _main_args(deco)
                if found and found.get("config_path") and found.get("config_name"):
                    return HydraApp((base / found["config_path"]).resolve(), found["config_name"])
    return None


def _main_args(deco: ast.expr) -> dict[str, str] | None:
    """`@hydra.main(config_path="conf", config_name="config")` (or `@main(...)`) -> its string args."""
    if not isinstance(deco, ast.Call):
        return None
    fn = deco.func
    name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
    if name != "main" or (isinstance(fn, ast.Attribute) and not (isinstance(fn.value, ast.Name) and fn.value.id == "hydra")):
        return None
    out: dict[str, str] = {}
    for key, arg in zip(("config_path", "config_name"), deco.args):
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            out[key] = arg.value
    for kw in deco.keywords:
        if kw.arg in ("config_path", "config_name") and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
            out[kw.arg] = kw.value.value
    return out


def compose(app: HydraApp, overrides: list[str], source: str) -> frozenset[str] | None:
    """Compose the app's config with `overrides` as Hydra would; return its keys (flattened, with
    the group names), or None when hydra-core is not installed here.

    Raises:
        ConfigError: Hydra rejected the overrides (its message, quoted).
    """
    try:
        from hydra import compose as hydra_compose
        from hydra import initialize_config_dir
        from hydra.errors import HydraException
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException
    except ImportError:
        return None
    with _LOCK:
        try:
            with initialize_config_dir(config_dir=str(app.config_dir), version_base=None, job_name="assay"):
                cfg = hydra_compose(config_name=app.config_name, overrides=overrides, return_hydra_config=True)
        except (HydraException, OmegaConfBaseException, ValueError) as exc:
            raise ConfigError(f"Hydra rejected the overrides {' '.join(overrides) or '(none)'} from {source} "
                              f"for {app.config_dir / app.config_name}: {_one_line(str(exc))}",
                              f"Fix the key or value (the app's configs are in {app.config_dir}); "
                              "a key the app's config lacks is added with +key=value.") from None
        choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
        data = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(data, dict) and isinstance(choices, dict)
    data.pop("hydra", None)
    groups = {str(g).replace("/", ".") for g in choices if not str(g).startswith("hydra/")}
    return frozenset(flatten({str(k): v for k, v in data.items()})) | frozenset(groups)


def _one_line(message: str) -> str:
    """Hydra's multi-line message on one line, without its config search path listing."""
    out: list[str] = []
    for line in (x.strip() for x in message.splitlines()):
        if line.startswith("Config search path"):
            break
        if line:
            out.append(("," if out and out[-1][-1] not in ":." else "") + " " + line if out else line)
    return "".join(out)


def read_back(run_dir: Path, params: dict[str, Any]) -> dict[str, Any] | None:
    """`params` completed with what Hydra resolved in the run (`.hydra/config.yaml` and the group
    choices of `.hydra/hydra.yaml`); the run's own params keep their values. None when the run
    left no Hydra config. A value under a group chosen by name (`model: vit`) is recorded under a
    dotted key (`model.depth`), as the index stores params."""
    import yaml

    folder = run_dir / RUN_SUBDIR / ".hydra"
    try:
        config = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8")) or {}
        hydra = yaml.safe_load((folder / "hydra.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(config, dict):
        return None
    choices = ((hydra.get("hydra") or {}).get("runtime") or {}).get("choices") or {} if isinstance(hydra, dict) else {}
    out = _copy(params)
    for group, choice in choices.items():
        key = str(group).replace("/", ".")
        if not str(group).startswith("hydra/") and choice is not None and key not in flatten(out):
            _put(out, key, choice)
    have = flatten(out)
    for key, value in flatten(config).items():
        if key not in have:
            _put(out, key, value)
    return out


def _copy(d: dict[str, Any]) -> dict[str, Any]:
    import copy

    return copy.deepcopy(d)


def _put(d: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted key as deep as the nesting goes; below a non-mapping, the rest stays dotted."""
    parts = key.split(".")
    node = d
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            node[".".join(parts[i:])] = value
            return
        node = nxt
    node[parts[-1]] = value
