"""How params reach a script: experiment.yaml `params:` picks the script's own style.

- `env` (the default): nothing is added to the command; the script reads `assay.params()` or
  the `ASSAY_PARAM_*` / `ASSAY_PARAMS` variables.
- `argparse`: `--key value`; booleans `--flag` / `--no-flag`; a list as values after one flag
  (`--layers 1 2 3`, for `nargs`). The flag is spelled as the script declares it (`batch_size`
  becomes `--batch-size` when the script declares that; typer scripts always use dashes).
- `equals`: `--key=value` with Python literals (`--compile=False`, `--layers=[1, 2]`): nanoGPT's
  configurator, fire, HfArgumentParser.
- `hydra`: `key=value`, `+key=value` for keys absent from the app's config, group choices as
  `model=resnet`; Hydra's output goes to `<run folder>/hydra` (see runner.hydra_app).
- `template`: `entry: "python train.py --lr {lr} --bs {batch}"`; only the placeholders are passed.

Dotted keys keep their dots (`--model.lr 0.1` for LightningCLI/jsonargparse, `model.lr=0.1` for
Hydra). The ASSAY_* variables are set in every style. A null value is left out (the script keeps
its own default).

Which params are passed: every key of config.yaml (with the run's overrides applied) and every
`+key` added for the run, not only the overridden ones. The run's command line (run.json
`command`) then reproduces it on its own, whatever the script's defaults are; and when config.yaml
was adopted from the script's defaults, passing them changes nothing. `seed` (which assay always
sets) is passed only when config.yaml declares it and the script takes it: its source mentions
`seed` (or, for Hydra, the app's config has the key).

After a run that ended ok, `unreached` says which overridden params never reached the script: a CLI style
puts every passed key in argv by construction (a template only its placeholders), and so do the
notebook runners (every param as `--key=value` to a marimo app, an injected cell assigning each
top-level param in a Jupyter notebook); otherwise a key
counts as reached when the script read it through `assay.params()` (params_read.json) or read its
`ASSAY_PARAM_*` variable (or the whole `ASSAY_PARAMS`). The variable reads are seen by a
`sitecustomize` module put first on PYTHONPATH, in every Python process the run starts (uv, shell
wrappers and worker processes included). It cannot see: a non-Python program (a shell script
that reads `$ASSAY_PARAM_LR` is credited when its text names the variable), Python started with
`-I` or `-S`, or a library that copies the whole environment with `dict(os.environ)` (that counts
as reading every param). When no Python process reported and the API left no record, nothing is
claimed either way.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.config import Override, flatten
from assay.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from assay.experiment import Experiment

STYLES = ("env", "argparse", "equals", "hydra", "template")
CLI_STYLES = ("argparse", "equals", "hydra")
ENV_READS_FILE = "params_env_read.txt"  # written by envhook/sitecustomize.py: "loaded" and "read VAR" lines
PARAMS_READ_FILE = "params_read.json"  # written by the assay API (tracking.py)
_HOOK_DIR = Path(__file__).with_name("envhook")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_OPTION = re.compile(r"(?<![\w-])--[A-Za-z][\w.\-]*")


def parse_style(value: Any, file: Path) -> str:
    """experiment.yaml `params:` -> a style name (default `env`).

    Raises:
        ConfigError: an unknown style, with the known ones and a did-you-mean.
    """
    if value is None:
        return "env"
    if not isinstance(value, str) or value not in STYLES:
        raise ConfigError(f"Unknown params style {value!r} in {file} (`params:`; known: {', '.join(STYLES)})."
                          + did_you_mean(str(value), list(STYLES)),
                          "Set `params: argparse` (--key value), `equals` (--key=value), `hydra` (key=value), "
                          "`template` (placeholders in `entry:`) or `env` (assay.params()).")
    return value


def env_var(key: str) -> str:
    """The variable a param is also set in: `optim.lr` -> ASSAY_PARAM_OPTIM__LR."""
    return "ASSAY_PARAM_" + re.sub(r"\W", "_", key.replace(".", "__")).upper()


@dataclass(frozen=True)
class Invocation:
    """The command a run executes: `argv` (recorded in run.json `command`), the param keys it
    carries, and variables added to the child's environment."""

    argv: list[str]
    passed: frozenset[str] = frozenset()
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Script:
    """What the command's arguments are built from: the style, the entry and its base argv."""

    style: str
    entry: str
    cmd: list[str]  # entry_command's argv, before any param
    entry_file: Path | None = None  # the script or program file the entry names, when there is one
    source: str | None = None  # the entry script's text, when it is a readable .py file
    app_keys: frozenset[str] | None = None  # Hydra: keys of the app's composed config (None: unknown)


def prepare(exp: Experiment, entry: str, cmd: list[str], params: dict[str, Any], parsed: list[Override]) -> Script:
    """Read the entry script and check the params against the style before any run folder exists.

    Raises:
        ConfigError: a template placeholder that is no param; overrides Hydra's composition rejects.
    """
    file = next((exp.path / p for p in shlex.split(entry) if p.endswith((".py", ".sh"))), None)
    source = file.read_text(encoding="utf-8", errors="replace") if file and file.suffix == ".py" and file.is_file() else None
    script = Script(exp.params_style, entry, cmd, file, source)
    if script.style == "template":
        check_template(entry, params, exp.file)
    if script.style != "hydra":
        return script
    from assay.runner.hydra_app import compose, find_app

    app = find_app(file, exp.raw.get("hydra"), exp.file)
    if app is None:
        return script
    where = f"the run's params ({exp.config_path.name} and overrides)"
    keys = compose(app, [], where)
    if keys is None:  # hydra-core is not installed here: the run itself reports Hydra's errors
        return script
    script = Script(script.style, entry, cmd, file, source, keys)
    config_keys = set(flatten(exp.default_params())) | {o.key for o in parsed if o.adds}
    compose(app, hydra_args(passed_params(params, config_keys, script), keys, {o.key for o in parsed if o.adds}), where)
    return script


def invocation(script: Script, params: dict[str, Any], config_keys: set[str], parsed: list[Override],
               run_dir: Path) -> Invocation:
    """Build the argv for one run of `script` with `params` (`config_keys`: flattened keys of
    config.yaml; `parsed`: the run's overrides, whose `+key` additions are passed too)."""
    if script.style == "template":
        argv, used = fill_template(script, params)
        return Invocation(argv, frozenset(used), _hook_env())
    if script.style == "env":
        return Invocation(list(script.cmd), frozenset(notebook_passed(script.cmd, params)), _hook_env())
    chosen = passed_params(params, config_keys | {o.key for o in parsed if o.adds}, script)
    if script.style == "hydra":
        tail = hydra_args(chosen, script.app_keys, {o.key for o in parsed if o.adds})
        tail += [f"hydra.run.dir={_hydra_quote(str(run_dir / 'hydra'))}", "hydra.output_subdir=.hydra"]
    else:
        tail = cli_args(script.style, chosen, script.source)
    return Invocation([*script.cmd, *tail], frozenset(chosen))


def notebook_passed(cmd: list[str], params: dict[str, Any]) -> set[str]:
    """The params a notebook runner delivers by itself: a marimo app gets every flattened param
    as `--key=value` (read with `mo.cli_args()`), a Jupyter notebook a cell assigning each
    top-level param whose name is a Python identifier. Other commands: none."""
    if "assay.integrations.marimo_notebook" in cmd:
        return set(flatten(params))
    if "assay.integrations.notebook" in cmd:
        import keyword

        return {k for k in params if k.isidentifier() and not keyword.iskeyword(k)}
    return set()


def passed_params(params: dict[str, Any], keys: set[str], script: Script) -> dict[str, Any]:
    """The flattened params a CLI style passes: those of config.yaml (and `+key` additions);
    `seed` only when the script takes one (see the module docstring)."""
    out = {}
    for k, v in flatten(params).items():
        if not _related(k, keys):
            continue
        if k == "seed" and not _takes_seed(script):
            continue
        out[k] = v
    return out


def _takes_seed(script: Script) -> bool:
    if script.style == "hydra" and script.app_keys is not None:
        return "seed" in script.app_keys
    if script.source is None:
        return True  # a command we cannot read: config.yaml declared seed, so pass it
    return bool(re.search(r"\bseed\b", script.source)) or "TrainingArguments" in script.source


def _related(key: str, keys: set[str] | frozenset[str]) -> bool:
    """`key` is one of `keys`, a parent of one (`model` for `model.depth`), or a child of one."""
    return key in keys or any(k.startswith(key + ".") or key.startswith(k + ".") for k in keys)


# ------------------------------------------------------------------ argparse / equals


def cli_args(style: str, params: dict[str, Any], source: str | None) -> list[str]:
    """`--key value` (argparse) or `--key=value` (equals) for each param; None is left out."""
    declared = set(_OPTION.findall(source)) if source else set()
    counted = {f for call in _COUNTED.findall(source or "") for f in _OPTION.findall(call)}
    dashes = bool(source and re.search(r"^\s*(import typer|from typer\b)", source, re.M))
    out: list[str] = []
    for key, value in params.items():
        if value is None or value == {}:
            continue
        flag = _flag(key, declared, dashes)
        if flag in counted and isinstance(value, int) and not isinstance(value, bool):
            out += [flag] * max(value, 0)  # `-vv`: a counted flag is repeated, it takes no value
        elif style == "equals":
            out.append(f"{flag}={value if isinstance(value, str) else repr(value)}")
        elif isinstance(value, bool):
            out += _bool_flag(flag, value, declared, source)
        elif isinstance(value, list):
            out += [flag, *(_plain(x) for x in value)]
        else:
            out += [flag, _plain(value)]
    return out


# An argparse `action="count"` or a click `count=True` option: its call's text, to find its flags.
_COUNTED = re.compile(r"(?:add_argument|option)\((?:[^()]|\([^()]*\))*?(?:action\s*=\s*['\"]count['\"]|count\s*=\s*True)"
                      r"(?:[^()]|\([^()]*\))*\)")


def _flag(key: str, declared: set[str], dashes: bool) -> str:
    """The option as the script declares it: `--batch_size` or `--batch-size`."""
    for candidate in (f"--{key}", f"--{key.replace('_', '-')}", f"--{key.replace('-', '_')}"):
        if candidate in declared:
            return candidate
    return f"--{key.replace('_', '-')}" if dashes else f"--{key}"


def _bool_flag(flag: str, value: bool, declared: set[str], source: str | None) -> list[str]:
    """True -> `--flag`; False -> `--no-flag`, or nothing for a store_true flag (its default is False)."""
    if value:
        return [flag]
    negative = f"--no-{flag[2:]}"
    if negative in declared or not source or "BooleanOptionalAction" in source or flag not in declared:
        return [negative]
    return []


def _plain(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, (list, dict)) else repr(value) if isinstance(value, float) else str(value)


# ------------------------------------------------------------------ hydra


def hydra_args(params: dict[str, Any], app_keys: frozenset[str] | None, adds: set[str]) -> list[str]:
    """`key=value` per param; `+key=value` for a key the app's config lacks (when the config is
    known; else where the run wrote `+key`). Group choices (`model=resnet`) are plain keys."""
    out = []
    for key, value in params.items():
        if value is None and app_keys is None:
            continue
        absent = (not _related(key, app_keys)) if app_keys is not None else key in adds
        out.append(f"{'+' if absent else ''}{key}={_hydra_value(value)}")
    return out


def _hydra_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # Hydra's grammar reads an exponent with a leading zero (1e-05, as Python prints it) as a string
        return re.sub(r"e([+-]?)0+(\d)", r"e\1\2", repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ",".join(_hydra_value(x) for x in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_hydra_value(v)}" for k, v in value.items()) + "}"
    from assay.config import parse_value

    text = str(value)
    if re.fullmatch(r"[\w./\-:]+", text) and parse_value(text) == text:
        return text
    return _hydra_quote(text)


def _hydra_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ------------------------------------------------------------------ template


def template_keys(entry: str) -> list[str]:
    """The `{placeholder}` names of a template entry (`{{` and `}}` are literal braces)."""
    return [m.group(1).strip() for m in _PLACEHOLDER.finditer(entry) if m.group(1) is not None]


def check_template(entry: str, params: dict[str, Any], file: Path) -> None:
    """Raises ConfigError naming a placeholder that is no param (with did-you-mean)."""
    flat = flatten(params)
    for name in template_keys(entry):
        if name not in flat and name not in params:
            raise ConfigError(f"Unknown placeholder {{{name}}} in `entry: {entry}` ({file}; params: {', '.join(sorted(flat)) or 'none'})."
                              + did_you_mean(name, list(flat)),
                              f"Add '{name}' to config.yaml, or fix the placeholder in `entry:`.")


def fill_template(script: Script, params: dict[str, Any]) -> tuple[list[str], set[str]]:
    """Fill the entry's placeholders in its own arguments (each stays one argument)."""
    flat = {**flatten(params), **params}
    used: set[str] = set()

    def fill(text: str) -> str:
        def one(m: re.Match[str]) -> str:
            if m.group(1) is None:
                return m.group(0)[0]
            name = m.group(1).strip()
            used.add(name)
            value = flat[name]
            return value if isinstance(value, str) else json.dumps(value, default=str)

        return _PLACEHOLDER.sub(one, text)

    n_args = len(shlex.split(script.entry)) - 1
    head, args = script.cmd[:len(script.cmd) - n_args], script.cmd[len(script.cmd) - n_args:]
    return [*head, *(fill(a) for a in args)], used


# ------------------------------------------------------------------ did each param arrive?


def _hook_env() -> dict[str, str]:
    """PYTHONPATH with the read hook first (see envhook/sitecustomize.py)."""
    rest = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(_HOOK_DIR) + (os.pathsep + rest if rest else "")}


def unreached(inv: Invocation, parsed: list[Override], run_dir: Path, entry_file: Path | None) -> list[str]:
    """The overridden param keys that never reached the script (see the module docstring)."""
    keys = list(dict.fromkeys(o.key for o in parsed))
    missing = [k for k in keys if not _related(k, inv.passed)]
    if not missing:
        return []
    read: set[str] = set()
    known = False
    api = run_dir / PARAMS_READ_FILE
    if api.is_file():
        try:
            read |= set(json.loads(api.read_text()))
            known = True
        except ValueError:
            pass
    env_file = run_dir / ENV_READS_FILE
    if env_file.is_file():
        lines = env_file.read_text(errors="replace").splitlines()
        known = known or "loaded" in lines
        variables = {line[5:] for line in lines if line.startswith("read ")}
        if "ASSAY_PARAMS" in variables:
            return []  # the script read them all at once
        read |= {k for k in keys if any(v == env_var(k) or v.startswith(env_var(k) + "__") for v in variables)}
        if "ASSAY_SEED" in variables:  # the seed also arrives as ASSAY_SEED (what most scripts read)
            read.add("seed")
    if entry_file is not None and entry_file.suffix != ".py" and entry_file.is_file():
        text = entry_file.read_text(errors="replace")
        if "ASSAY_PARAMS" in text:
            return []
        read |= {k for k in keys if env_var(k) in text} | ({"seed"} if "ASSAY_SEED" in text else set())
        known = True
    if not known:
        return []
    return [k for k in missing if not _related(k, read) and k not in read]


def unreached_warning(keys: list[str], style: str) -> str:
    names = ", ".join(f"'{k}'" for k in keys)
    how = ("it is not a placeholder of `entry:`" if style == "template"
           else "the script read it neither through assay.params() nor from " + ", ".join(env_var(k) for k in keys))
    return (f"param {names} never reached the script ({how}): set `params:` in experiment.yaml to the script's style "
            "(argparse, equals, hydra, template), or adopt it with `assay new NAME --from-script SCRIPT`")
