"""`assay new NAME --from-script PATH`: adopt an existing script where it lies, without running it.

The script is read with the `ast` module only (never imported, never run). Its parameters come
from what declares them: argparse `add_argument` calls, click options, typer signatures, Hydra's
`@hydra.main` and its config folder, fire's function signature, HfArgumentParser dataclasses, or
the module-level globals of a nanoGPT-style configurator script. From them the experiment gets a
config.yaml of defaults (help text as comments) and a `params:` style that passes them the way the
script reads them. The script stays where it is: `entry:` points at it and `workdir:` is its
folder, so its relative imports and data paths work. Nothing is copied.

What cannot be read statically (an `add_argument` in a loop, `**kwargs`, a computed default) is
reported as a note naming file:line, never guessed.
"""

from __future__ import annotations

import ast
import io
import operator
import os
import re
import shlex
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.errors import ConfigError

# Which `params:` style passes each kind of script its parameters at run time.
STYLE_OF = {"argparse": "argparse", "click": "argparse", "typer": "argparse", "hydra": "hydra",
            "configurator": "equals", "fire": "equals", "hf_dataclass": "equals", "none": "env"}
_TYPES = {"int": int, "float": float, "str": str, "bool": bool}
_CLICK_TYPES = {"INT": "int", "FLOAT": "float", "STRING": "str", "BOOL": "bool"}
_ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
          ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow}
_METRIC_WORD = re.compile(r"acc|loss|f1|auc|bpb|ppl|perplexity|score|err|mse|mae|rmse|precision|recall|reward|bleu|rouge|wer|cer|iou|map", re.I)
_METRIC_PRINT = re.compile(r"^\s*([A-Za-z_][\w/.\-]*)\s*[:=]\s*$")


@dataclass(frozen=True)
class Param:
    """One parameter as the script declares it. `name` is the config key: the option as typed on
    the script's command line, without dashes (`--batch-size` -> `batch-size`)."""

    name: str
    default: Any = None
    type: str | None = None  # int, float, str, bool, list
    help: str | None = None
    choices: tuple[Any, ...] | None = None
    required: bool = False
    line: int = 0


@dataclass(frozen=True)
class Adoption:
    """What reading a script found: its kind, the style that passes its params, the params, and
    notes on what could not be read (each `file:line: what`)."""

    script: Path
    kind: str  # argparse, click, typer, hydra, configurator, fire, hf_dataclass, none
    params: tuple[Param, ...]
    notes: tuple[str, ...] = ()
    config_dir: Path | None = None  # Hydra's config folder
    metrics: tuple[tuple[str, int], ...] = ()  # (name, line) of `print(f"name: {value}")` lines

    @property
    def style(self) -> str:
        return STYLE_OF[self.kind]


@dataclass
class _Reader:
    """Collects params and notes while walking one script's syntax tree."""

    file: str
    tree: ast.Module
    comments: dict[int, str]
    params: dict[str, Param] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def note(self, node: ast.AST, what: str) -> None:
        self.notes.append(f"{self.file}:{getattr(node, 'lineno', 0)}: {what}")

    def add(self, param: Param) -> None:
        self.params.setdefault(param.name, param)


def read_script(script: Path) -> Adoption:
    """Read a script's parameters statically.

    Raises:
        ConfigError: the file is missing, unreadable or not valid Python.

    Example:
        >>> read_script(Path("train.py")).style
        'argparse'
    """
    try:
        text = script.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read the script '{script}': {exc}", "Pass the path of an existing Python file to --from-script.") from None
    try:
        tree = ast.parse(text, filename=str(script))
    except SyntaxError as exc:
        raise ConfigError(f"Cannot parse {script}:{exc.lineno}: {exc.msg}", "Fix the syntax error (python -m py_compile), then adopt it again.") from None
    r = _Reader(script.name, tree, _comments(text))
    metrics = tuple(_printed_metrics(tree))
    for kind, read in (("hydra", _hydra), ("hf_dataclass", _hf_dataclasses), ("typer", _typer), ("click", _click),
                       ("argparse", _argparse), ("fire", _fire), ("configurator", _configurator)):
        found = read(r, script)
        if found is not None:
            params, config_dir = found if isinstance(found, tuple) else (found, None)
            return Adoption(script, kind, tuple(params), tuple(r.notes), config_dir, metrics)
    return Adoption(script, "none", (), tuple(r.notes), None, metrics)


# ---------------------------------------------------------------- helpers over the tree

def _comments(text: str) -> dict[int, str]:
    """line -> trailing comment text (help for configurator globals: `lr = 6e-4 # max learning rate`)."""
    out: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                out[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, SyntaxError):
        pass  # comments are a nicety; the parse above already accepted the file
    return out


def _literal(node: ast.AST | None) -> tuple[bool, Any]:
    """(True, value) for a literal (also -1, 1e-3, (1, 2)); (False, None) for anything computed."""
    if node is None:
        return True, None
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:  # `5 * 8`, `2**14`: constants only
        (ok_l, left), (ok_r, right) = _literal(node.left), _literal(node.right)
        if ok_l and ok_r and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (left, right)):
            try:
                return True, _ARITH[type(node.op)](left, right)
            except (ArithmeticError, ValueError):
                pass
    return False, None


def _dotted(node: ast.AST) -> str:
    """`argparse.BooleanOptionalAction` -> that text; '' for anything that is not a dotted name."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def _kw(call: ast.Call) -> dict[str, ast.expr]:
    return {k.arg: k.value for k in call.keywords if k.arg}


def _text(node: ast.AST | None) -> str | None:
    """A help string: a constant, or an f-string shown as written."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return " ".join(node.value.split()) or None
    return ast.unparse(node)


def _code(node: ast.AST, width: int = 60) -> str:
    """Source of a node for a message, shortened with '...'."""
    text = ast.unparse(node)
    return text if len(text) <= width else text[: width - 3] + "..."


def _type_name(node: ast.AST | None) -> str | None:
    name = _dotted(node) if node is not None else ""
    name = name.rsplit(".", 1)[-1]
    return _CLICK_TYPES.get(name, name) if name in (*_TYPES, *_CLICK_TYPES) else None


def _typed(default: Any, type_: str | None) -> Any:
    """argparse applies `type` to a string default, and a float option's default 1 means 1.0."""
    if default is None or type_ not in ("int", "float"):
        return default
    try:
        return _TYPES[type_](default) if isinstance(default, (str, int)) and not isinstance(default, bool) else default
    except ValueError:
        return default


def _in_loop(tree: ast.AST) -> set[int]:
    """ids of the nodes that sit inside a loop or comprehension (their values change per pass)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.For, ast.While, ast.AsyncFor, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            inside |= {id(n) for n in ast.walk(node) if n is not node}
    return inside


def _bad_call_args(r: _Reader, call: ast.Call, what: str) -> bool:
    """Note `*args`/`**kwargs` in a declaring call: what they hold is only known at run time."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        r.note(call, f"{what} built from *args/**kwargs ({_code(call)}): not read")
        return True
    return False


def _printed_metrics(tree: ast.Module) -> list[tuple[str, int]]:
    """`print(f"val_acc: {acc}")` or `print("val_acc:", acc)`: the names such lines report."""
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _dotted(node.func) == "print" and node.args):
            continue
        first = node.args[0]
        head, numeric = None, False
        if isinstance(first, ast.JoinedStr) and first.values and isinstance(first.values[0], ast.Constant) \
                and len(first.values) > 1 and isinstance(first.values[1], ast.FormattedValue):
            head, spec = first.values[0].value, first.values[1].format_spec
            numeric = spec is not None and ast.unparse(spec).rstrip("'\"")[-1:] in ("f", "e", "g", "%")
        elif isinstance(first, ast.Constant) and isinstance(first.value, str) and len(node.args) > 1:
            head = first.value
        m = _METRIC_PRINT.match(str(head)) if head is not None else None
        if m and (numeric or _METRIC_WORD.search(m.group(1))) and m.group(1) not in {n for n, _ in out}:
            out.append((m.group(1), node.lineno))
    return out


# ---------------------------------------------------------------- argparse

def _argparse(r: _Reader, script: Path) -> list[Param] | None:
    calls = [n for n in ast.walk(r.tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
    adds = [c for c in calls if c.func.attr == "add_argument"]  # type: ignore[attr-defined]
    if not adds:
        return None
    looped = _in_loop(r.tree)
    for call in sorted(adds, key=lambda c: c.lineno):
        if id(call) in looped:
            r.note(call, f"add_argument in a loop ({_code(call)}): its parameters were not read; add them to config.yaml by hand")
            continue
        if _bad_call_args(r, call, "add_argument"):
            continue
        names = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if len(names) != len(call.args) or not names:
            r.note(call, f"add_argument with computed option names ({_code(call)}): not read")
            continue
        if names[0] in ("-h", "--help"):
            continue
        param = _argparse_param(r, call, names)
        if param is not None:
            r.add(param)
    for call in calls:
        if call.func.attr == "set_defaults":  # type: ignore[attr-defined]
            for key, value in _kw(call).items():
                ok, v = _literal(value)
                if ok and (p := _by_dest(r, key)) is not None:
                    r.params[p.name] = Param(p.name, _typed(v, p.type), p.type, p.help, p.choices, p.required, p.line)
        elif call.func.attr == "add_subparsers":  # type: ignore[attr-defined]
            r.note(call, "subcommands: their options are listed together; put the subcommand in `entry:` (e.g. entry: train.py fit)")
    return list(r.params.values())


def _by_dest(r: _Reader, dest: str) -> Param | None:
    return next((p for p in r.params.values() if p.name.replace("-", "_") == dest), None)


def _argparse_param(r: _Reader, call: ast.Call, names: list[str]) -> Param | None:
    kw = _kw(call)
    longs = [n for n in names if n.startswith("--")]
    if not names[0].startswith("-"):
        r.note(call, f"positional argument '{names[0]}': not a --key option; give its value in `entry:` (e.g. entry: train.py VALUE)")
        return None
    name = (longs or names)[0].lstrip("-")
    action = kw.get("action")
    action_name = _literal(action)[1] if isinstance(action, ast.Constant) else _dotted(action) if action is not None else None
    ok, default = _literal(kw.get("default"))
    if not ok:
        r.note(kw["default"], f"default of {names[0]} is computed ({_code(kw['default'])}): left null in config.yaml")
    type_ = _type_name(kw.get("type"))
    if kw.get("type") is not None and type_ is None:
        r.note(kw["type"], f"type of {names[0]} is {_code(kw['type'])}: its values are written as text")
    if action_name == "store_true":
        type_, default = "bool", default if "default" in kw else False
    elif action_name == "store_false":
        type_, default = "bool", default if "default" in kw else True
    elif action_name and action_name.endswith("BooleanOptionalAction"):
        type_ = "bool"
    elif action_name == "count":
        type_, default = "int", default if "default" in kw else 0
    elif action_name in ("append", "extend"):
        type_, default = "list", default if default is not None else []
    elif action_name in ("store_const", "append_const"):
        r.note(call, f"{names[0]} stores a constant (action={action_name}): not a value to set; left out")
        return None
    nargs = _literal(kw.get("nargs"))[1]
    if nargs in ("+", "*") or isinstance(nargs, int) and nargs > 1:
        type_ = "list"
    choices = _literal(kw.get("choices"))[1] if "choices" in kw else None
    if "choices" in kw and not isinstance(choices, (list, tuple)):
        r.note(kw["choices"], f"choices of {names[0]} are computed: not listed")
        choices = None
    required = _literal(kw.get("required"))[1] is True
    return Param(name, _typed(default, type_), type_, _text(kw.get("help")), tuple(choices) if choices else None, required, call.lineno)


# ---------------------------------------------------------------- click

def _click(r: _Reader, script: Path) -> list[Param] | None:
    found = False
    for fn in (n for n in ast.walk(r.tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
        for dec in fn.decorator_list:
            if not isinstance(dec, ast.Call):
                continue
            func = _dotted(dec.func)
            if func in ("click.option", "option") or func.endswith(".option") and func.startswith("click"):
                found = True
                if not _bad_call_args(r, dec, "click.option"):
                    _click_option(r, dec)
            elif func in ("click.argument", "argument"):
                found = True
                r.note(dec, f"click argument {ast.unparse(dec.args[0]) if dec.args else ''}: not a --key option; give its value in `entry:`")
    return list(r.params.values()) if found else None


def _click_option(r: _Reader, call: ast.Call) -> None:
    kw = _kw(call)
    decls = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    flags = [d for d in decls if d.startswith("-")]
    if not flags:
        r.note(call, "click.option without option names: not read")
        return
    first = flags[0].split("/")[0]
    longs = [f.split("/")[0] for f in flags if f.startswith("--")]
    name = (longs or [first])[0].lstrip("-")
    ok, default = _literal(kw.get("default"))
    if not ok:
        r.note(kw["default"], f"default of {first} is computed: left null in config.yaml")
    type_node = kw.get("type")
    type_, choices = _type_name(type_node), None
    if isinstance(type_node, ast.Call) and _dotted(type_node.func).endswith("Choice") and type_node.args:
        choices = _literal(type_node.args[0])[1]
        type_ = "str"
    is_flag = _literal(kw.get("is_flag"))[1] is True or any("/" in f for f in flags)
    if is_flag:
        type_, default = "bool", bool(default)
    if _literal(kw.get("multiple"))[1] is True:
        type_, default = "list", list(default or [])
    required = _literal(kw.get("required"))[1] is True
    r.add(Param(name, _typed(default, type_), type_, _text(kw.get("help")), tuple(choices) if choices else None, required, call.lineno))


# ---------------------------------------------------------------- typer and fire: function signatures

def _typer(r: _Reader, script: Path) -> list[Param] | None:
    if not any(isinstance(n, (ast.Import, ast.ImportFrom)) and "typer" in ast.unparse(n) for n in r.tree.body):
        return None
    run_targets = {_dotted(c.args[0]) for c in ast.walk(r.tree) if isinstance(c, ast.Call)
                   and _dotted(c.func) in ("typer.run", "run") and c.args}
    fns = [f for f in r.tree.body if isinstance(f, ast.FunctionDef) and (f.name in run_targets or any(
        isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr in ("command", "callback")
        for d in f.decorator_list))]
    if not fns:
        return None
    commands = [f.name for f in fns if any(isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "command" for d in f.decorator_list)]
    if len(commands) > 1:
        r.note(fns[0], f"several commands ({', '.join(commands)}): their options are listed together; put the command in `entry:`")
    enums = _enum_values(r.tree)
    for fn in fns:
        _signature(r, fn, typer=True, enums=enums)
    return list(r.params.values())


def _fire(r: _Reader, script: Path) -> list[Param] | None:
    calls = [c for c in ast.walk(r.tree) if isinstance(c, ast.Call) and _dotted(c.func) in ("fire.Fire", "Fire")]
    if not calls:
        return None
    defs = {f.name: f for f in r.tree.body if isinstance(f, ast.FunctionDef)}
    target = _dotted(calls[0].args[0]) if calls[0].args else ""
    if target not in defs:
        r.note(calls[0], f"fire.Fire({target or ''}) does not name a function of this file: its parameters were not read")
        return []
    _signature(r, defs[target], typer=False, enums={})
    return list(r.params.values())


def _enum_values(tree: ast.Module) -> dict[str, dict[str, Any]]:
    """Enum classes of the file -> {member: value} (typer shows the values as choices)."""
    out = {}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        if any(_dotted(b).endswith("Enum") for b in cls.bases):
            out[cls.name] = {s.targets[0].id: _literal(s.value)[1] for s in cls.body
                             if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name)}
    return out


def _signature(r: _Reader, fn: ast.FunctionDef, *, typer: bool, enums: dict[str, dict[str, Any]]) -> None:
    args = fn.args.args + fn.args.kwonlyargs
    defaults = [None] * (len(fn.args.args) - len(fn.args.defaults)) + list(fn.args.defaults) + list(fn.args.kw_defaults)
    if fn.args.kwarg is not None:
        r.note(fn, f"{fn.name}(**{fn.args.kwarg.arg}) takes any option: those were not read")
    for arg, dnode in zip(args, defaults):
        if arg.arg in ("self", "ctx"):
            continue
        ann, info = arg.annotation, None
        if isinstance(ann, ast.Subscript) and _dotted(ann.value).endswith("Annotated") and isinstance(ann.slice, ast.Tuple):
            extras = ann.slice.elts[1:]
            ann = ann.slice.elts[0]
            info = next((e for e in extras if isinstance(e, ast.Call) and _dotted(e.func).split(".")[-1] in ("Option", "Argument")), None)
        if isinstance(dnode, ast.Call) and _dotted(dnode.func).split(".")[-1] in ("Option", "Argument"):
            info, dnode = dnode, (dnode.args[0] if dnode.args else _kw(dnode).get("default"))
        type_ = _type_name(ann)
        ann_name = _dotted(ann) if ann is not None else ""
        if isinstance(ann, ast.Subscript) and _dotted(ann.value).lower() in ("list", "typing.list"):
            type_ = "list"
        is_argument = info is not None and _dotted(info.func).endswith("Argument") or info is None and dnode is None
        if typer and is_argument:
            r.note(arg, f"argument '{arg.arg}' of {fn.name}() is positional: give its value in `entry:`")
            continue
        kw = _kw(info) if info is not None else {}
        decls = [a.value for a in (info.args[1:] if info is not None else []) if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        longs = [d.split("/")[0] for d in decls if d.startswith("--")]
        name = longs[0].lstrip("-") if longs else (arg.arg.replace("_", "-") if typer else arg.arg)
        if ann_name in enums:
            members = enums[ann_name]
            member = dnode.attr if isinstance(dnode, ast.Attribute) and _dotted(dnode.value) == ann_name else None  # Scheduler.cosine
            r.add(Param(name, members.get(member) if member is not None else None, "str", _text(kw.get("help")), tuple(members.values()) or None, line=arg.lineno))
            continue
        ok, default = _literal(dnode)
        if not ok or isinstance(default, type(...)):
            if dnode is not None and not (isinstance(dnode, ast.Constant) and dnode.value is ...):
                r.note(dnode, f"default of '{arg.arg}' is computed ({_code(dnode)}): left null in config.yaml")
            default = None
        if type_ is None and default is not None:
            type_ = type(default).__name__ if type(default).__name__ in _TYPES else None
        r.add(Param(name, _typed(default, type_), type_, _text(kw.get("help")), None, dnode is None, arg.lineno))


# ---------------------------------------------------------------- HfArgumentParser dataclasses

def _hf_dataclasses(r: _Reader, script: Path) -> list[Param] | None:
    calls = [c for c in ast.walk(r.tree) if isinstance(c, ast.Call) and _dotted(c.func).endswith("HfArgumentParser") and c.args]
    if not calls:
        return None
    arg = calls[0].args[0]
    names = [_dotted(e) for e in arg.elts] if isinstance(arg, (ast.Tuple, ast.List)) else [_dotted(arg)]
    classes = {c.name: c for c in r.tree.body if isinstance(c, ast.ClassDef)}
    for name in names:
        if name not in classes:
            r.note(calls[0], f"{name or ast.unparse(arg)} is not defined in this file (it comes from a library): "
                             "its fields were not read; add the ones you vary to config.yaml")
            continue
        for stmt in classes[name].body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                _hf_field(r, stmt)
    return list(r.params.values())


def _hf_field(r: _Reader, stmt: ast.AnnAssign) -> None:
    key = stmt.target.id  # type: ignore[union-attr]
    ann = stmt.annotation
    if isinstance(ann, ast.Subscript) and _dotted(ann.value).split(".")[-1] == "Optional":
        ann = ann.slice
    type_ = _type_name(ann)
    if isinstance(ann, ast.Subscript) and _dotted(ann.value).lower().split(".")[-1] == "list":
        type_ = "list"
    value, help_, choices, required = stmt.value, None, None, stmt.value is None
    if isinstance(value, ast.Call) and _dotted(value.func).split(".")[-1] == "field":
        kw = _kw(value)
        meta = _literal(kw.get("metadata"))[1] if "metadata" in kw else None
        if isinstance(meta, dict):
            help_ = meta.get("help")
            choices = tuple(meta["choices"]) if isinstance(meta.get("choices"), (list, tuple)) else None
        if "default_factory" in kw:
            factory = _dotted(kw["default_factory"])
            value = ast.List(elts=[]) if factory == "list" else ast.Dict(keys=[], values=[]) if factory == "dict" else kw["default_factory"]
            if factory not in ("list", "dict"):
                r.note(stmt, f"default of '{key}' comes from default_factory={_code(kw['default_factory'])}: left null")
                value = None
        else:
            value = kw.get("default")
            required = "default" not in kw
    ok, default = _literal(value)
    if not ok and value is not None:
        r.note(stmt, f"default of '{key}' is computed ({_code(value)}): left null in config.yaml")
    r.add(Param(key, _typed(default, type_), type_, help_, choices, required, stmt.lineno))


# ---------------------------------------------------------------- Hydra

def _hydra(r: _Reader, script: Path) -> tuple[list[Param], Path | None] | None:
    for fn in (n for n in r.tree.body if isinstance(n, ast.FunctionDef)):
        for dec in fn.decorator_list:
            if isinstance(dec, ast.Call) and _dotted(dec.func) in ("hydra.main", "main") and \
                    ("config_name" in _kw(dec) or "config_path" in _kw(dec)):
                return _hydra_config(r, script, dec)
    return None


def _hydra_config(r: _Reader, script: Path, dec: ast.Call) -> tuple[list[Param], Path | None]:
    kw = _kw(dec)
    ok_path, config_path = _literal(kw.get("config_path"))
    ok_name, config_name = _literal(kw.get("config_name"))
    if not (ok_path and ok_name) or not config_name:
        r.note(dec, f"@hydra.main with a computed or missing config ({_code(dec)}): no config read")
        return [], None
    folder = (script.parent / config_path) if config_path else None
    if folder is None or not (folder / f"{config_name}.yaml").is_file():
        r.note(dec, f"config {config_name}.yaml not found in {folder or '(no config_path)'}: no config read")
        return [], folder
    import yaml

    primary = _load_yaml(folder / f"{config_name}.yaml", r) or {}
    params: list[Param] = []
    for item in primary.pop("defaults", None) or []:
        if isinstance(item, dict) and len(item) == 1:
            (group, option), = item.items()
            group = str(group)
            if group.startswith(("override ", "hydra/", "override hydra/")) or option is None:
                continue
            group = group.removeprefix("optional ").split("@")[0].strip("/")
            options = sorted(p.stem for p in (folder / group).glob("*.yaml")) if (folder / group).is_dir() else []
            values = _load_yaml(folder / group / f"{option}.yaml", r) if f"{option}" in options else None
            shown = yaml.safe_dump(values, default_flow_style=True, width=1 << 16).strip() if values else ""
            help_ = f"config group {group}/" + (f", {option} = {shown}" if shown else "")
            params.append(Param(group, option, "str", help_, tuple(options) or None))
        elif item != "_self_" and isinstance(item, str):
            r.note(dec, f"defaults entry '{item}' in {config_name}.yaml is not a group choice: its values were not listed")
    params += [Param(str(k), v, None, None) for k, v in primary.items()]
    return params, folder


def _load_yaml(path: Path, r: _Reader) -> dict[str, Any] | None:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        r.notes.append(f"{path.name}: cannot read it ({exc}): its values were not listed")
        return None
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------- nanoGPT-style configurator

def _configurator(r: _Reader, script: Path) -> list[Param] | None:
    body = r.tree.body
    exec_at = next((i for i, s in enumerate(body) if isinstance(s, ast.Expr) and isinstance(s.value, ast.Call)
                    and _dotted(s.value.func) == "exec"), None)
    if exec_at is None:
        return None
    for stmt in body[:exec_at]:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
            continue
        name = stmt.targets[0].id
        if name.startswith("_"):
            continue
        if isinstance(stmt.value, (ast.ListComp, ast.DictComp, ast.SetComp, ast.Lambda)):
            continue  # the configurator's own bookkeeping (nanoGPT's config_keys), not a parameter
        ok, value = _literal(stmt.value)
        if not ok or not isinstance(value, (int, float, str, bool)) and value is not None:
            r.note(stmt, f"`{name} = {_code(stmt.value)}` is not a literal: left out (the configurator only overrides int, float, bool and str)")
            continue
        r.add(Param(name, value, type(value).__name__ if value is not None else None, r.comments.get(stmt.lineno), line=stmt.lineno))
    return list(r.params.values())


# ---------------------------------------------------------------- writing the experiment

def config_text(adoption: Adoption) -> str:
    """config.yaml for the adopted script: its defaults, each under a comment with its help text,
    choices, type (when the value does not show it) and whether the script requires it."""
    import yaml

    lines = [f"# Parameters of {adoption.script.name} ({adoption.kind}), read by `assay new --from-script`.",
             "# Override them with key=value on `assay run`; they reach the script in its own style (params: in experiment.yaml)."]
    if not adoption.params:
        lines.append("# No parameters were found: params reach the script as ASSAY_PARAM_* variables (and assay.params()).")
    for p in adoption.params:
        notes = []
        if p.choices:
            notes.append("choices: " + ", ".join(str(c) for c in p.choices))
        if p.type and (p.default is None or p.type == "list" and not p.default):
            notes.append(f"type: {p.type}")
        if p.required:
            notes.append("required by the script: set it")
        if p.help or notes:
            lines.append("# " + " ".join(filter(None, [p.help, f"({'; '.join(notes)})" if notes else ""])))
        if isinstance(p.default, list):  # short lists read best on one line: hidden-sizes: [64, 32]
            flow = yaml.safe_dump(p.default, default_flow_style=True, width=1 << 16).strip()
            lines.append(yaml.safe_dump({p.name: None}, sort_keys=False).replace("null", flow).rstrip("\n"))
        else:
            lines.append(yaml.safe_dump({p.name: p.default}, sort_keys=False, allow_unicode=True).rstrip("\n"))
    return "\n".join(lines) + "\n"


def guess_metric(adoption: Adoption) -> str | None:
    """The metric of a script that prints exactly one `name: value` line (`print(f"val_acc: {acc}")`)."""
    return adoption.metrics[0][0] if len(adoption.metrics) == 1 else None


def adopt_script(lab: Any, name: str, script: Path, *, hypothesis: str, metric: str | None, goal: str | None,
                 success: str | None = None, failure: str | None = None, secondary: list[str] | None = None,
                 timeout: str | None = None) -> tuple[Any, Adoption]:
    """Create experiments/NAME/ for an existing script, leaving the script where it is.

    Returns:
        (the Experiment, what was read from the script).

    Raises:
        ConfigError: a missing or unparsable script, no metric given and none printed plainly, or
            anything `new_experiment` refuses.

    Example:
        >>> exp, found = adopt_script(lab, "cls", Path("train.py"), hypothesis="...", metric="val_acc", goal="max")
    """
    from assay.experiment import guess_goal, new_experiment

    script = Path(script).resolve()
    if not script.is_file():
        raise ConfigError(f"--from-script '{script}' is not a file", "Pass the path of the script to adopt, e.g. --from-script src/train.py.")
    adoption = read_script(script)
    if metric is None:
        metric = guess_metric(adoption)
        if metric is None:
            seen = ", ".join(n for n, _ in adoption.metrics)
            raise ConfigError(f"Which metric decides it? {script.name} " + (f"prints several ({seen})" if seen else "prints no `name: value` line"),
                              "Pass --metric NAME (and --goal max|min).")
    goal = goal or guess_goal(metric)
    exp_dir = lab.experiment_dir(name)
    entry = _rel(script, exp_dir, lab.root)
    extra: dict[str, Any] = {"params": adoption.style, "workdir": _rel(script.parent, exp_dir, lab.root),
                             "code": [entry] + ([_rel(adoption.config_dir, exp_dir, lab.root)] if adoption.config_dir else []),
                             "adopted_from": {"script": entry, "kind": adoption.kind}}
    exp = new_experiment(lab, name, hypothesis, metric, goal, success, failure, secondary, None, shlex.quote(entry), timeout,
                         extra=extra, files={"config.yaml": config_text(adoption)})
    return exp, adoption


def _rel(path: Path, exp_dir: Path, lab_root: Path) -> str:
    """Relative to the experiment folder when inside the lab (the lab stays movable), else absolute."""
    path = path.resolve()
    if path.is_relative_to(lab_root.resolve()):
        return Path(os.path.relpath(path, exp_dir.resolve())).as_posix()
    return str(path)
