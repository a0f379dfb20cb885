"""Reading assay's configuration files and `key=value` overrides, with errors that name file and line."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.errors import ConfigError, did_you_mean

MAX_DEPTH = 64  # nesting levels in a config file; params this deep are a mistake or an attack
MAX_VALUES = 100_000  # values a file may expand to through aliases ("billion laughs")


def load_yaml(path: Path, *, names: bool = False) -> Any:
    """Parse a YAML file strictly: a syntax error, a duplicate key, a recursive alias, nesting past
    MAX_DEPTH or aliases expanding past MAX_VALUES become a ConfigError naming file:line.

    With `names`, every mapping key must be text (config.yaml: `on: 1` would be the key True, and
    `1: x` the key 1, which no key=value override can name)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder, not a YAML file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.object[exc.start:exc.start + 1]!r} at offset {exc.start})",
                          f"Save {path} as UTF-8.") from None
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}: {exc.strerror or exc}", f"Check the permissions of {path}.") from None
    try:
        return yaml.load(text, Loader=_strict_loader(names))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"Malformed YAML in {where}: {problem}", f"Fix the syntax in {path}.") from None
    except RecursionError:  # the pure-Python parser (no libyaml) recurses once per nesting level
        raise ConfigError(f"Malformed YAML in {path}: nested deeper than {MAX_DEPTH} levels",
                          f"Flatten the structure in {path}.") from None


_LOADERS: dict[bool, Any] = {}


def _strict_loader(names: bool = False) -> Any:
    """yaml's safe loader (libyaml when present) that also refuses what it would accept silently:
    a key given twice in one mapping (the last one won), a recursive alias, nesting past MAX_DEPTH,
    aliases expanding past MAX_VALUES. Built once, on first use: yaml is a heavy import."""
    if names in _LOADERS:
        return _LOADERS[names]
    import yaml
    from yaml.constructor import ConstructorError
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    merge = "tag:yaml.org,2002:merge"

    class StrictLoader(base):  # type: ignore[misc,valid-type]
        def get_single_data(self) -> Any:
            node = self.get_single_node()
            if node is None:
                return None
            _check_graph(node)
            return self.construct_document(node)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, MappingNode):
                seen: dict[Any, Any] = {}
                for key_node, _ in node.value:
                    if not isinstance(key_node, ScalarNode) or key_node.tag == merge:
                        continue  # `<<: *defaults` may be overridden by keys written after it
                    key = self.construct_object(key_node)
                    if names and not isinstance(key, str):
                        raise ConstructorError(None, None, f"the key {key_node.value!r} reads as {key!r} "
                                               f"({type(key).__name__}), not a name; quote it: '{key_node.value}':",
                                               key_node.start_mark)
                    if key in seen:
                        raise ConstructorError(None, None, f"duplicate key '{key}' (first at line "
                                               f"{seen[key].line + 1}); the later value would silently win",
                                               key_node.start_mark)
                    seen[key] = key_node.start_mark
            return super().construct_mapping(node, deep=deep)

    def _children(node: Any) -> list[Any]:
        if isinstance(node, SequenceNode):
            return list(node.value)
        if isinstance(node, MappingNode):
            return [n for pair in node.value for n in pair]
        return []

    def _check_graph(root: Any) -> None:
        """Walk the node graph (shared through aliases) without recursion, counting what it expands to."""
        sizes: dict[int, int] = {}
        heights: dict[int, int] = {}
        open_: set[int] = set()  # collections being walked: an alias to one of them is a cycle
        stack: list[tuple[Any, bool]] = [(root, False)]
        while stack:
            node, done = stack.pop()
            key = id(node)
            kids = _children(node)
            if done:
                open_.discard(key)
                sizes[key] = 1 + sum(sizes[id(c)] for c in kids)
                heights[key] = 1 + max((heights[id(c)] for c in kids), default=0)
                if heights[key] > MAX_DEPTH:
                    raise ConstructorError(None, None, f"nested deeper than {MAX_DEPTH} levels", node.start_mark)
                if sizes[key] > MAX_VALUES:
                    raise ConstructorError(None, None, f"aliases expand to more than {MAX_VALUES:,} values",
                                           node.start_mark)
                continue
            if key in sizes:
                continue
            if key in open_:
                raise ConstructorError(None, None, "recursive alias: a collection contains itself", node.start_mark)
            if len(open_) > MAX_DEPTH:
                raise ConstructorError(None, None, f"nested deeper than {MAX_DEPTH} levels", node.start_mark)
            if not kids:
                sizes[key], heights[key] = 1, 1
                continue
            open_.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in kids)

    _LOADERS[names] = StrictLoader
    return StrictLoader


def dump_yaml(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def load_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a syntax error becomes a ConfigError naming file:line."""
    import tomllib

    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Malformed TOML in {path}: {exc}", f"Fix the syntax in {path}.") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.object[exc.start:exc.start + 1]!r} at offset {exc.start})",
                          f"Save {path} as UTF-8.") from None


def write_atomic(path: Path, text: str) -> None:
    """Write a whole file so readers see the old or the new content, never a torn one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # a full disk or a read-only folder: the old file stays as it was
        tmp.unlink(missing_ok=True)
        from assay.errors import StoreError

        raise StoreError(f"Could not write {path}: {exc.strerror or exc}",
                         f"Free space or fix permissions on {path.parent} (df -h {path.parent}); "
                         "the previous version of the file is intact.") from None


# ---------------------------------------------------------------- overrides

_OVERRIDE = re.compile(r"^(\+{0,2})([A-Za-z_][\w\-]*(?:\.[A-Za-z_][\w\-]*)*)=(.*)$", re.S)
# Hydra's override grammar (OverrideLexer.g4): INT has no leading zeros and may use `_` between
# digits; FLOAT is a point or exponent float, inf or nan; BOOL is true/false and NULL is null, any case.
_INT = re.compile(r"[+-]?(?:0|[1-9](?:_?\d)*)")
_DIGITS = r"(?:0|[1-9](?:_?\d)*)"
_FLOAT = re.compile(rf"[+-]?(?:(?:{_DIGITS}?\.\d(?:_?\d)*|{_DIGITS}\.)(?:[eE][+-]?\d+)?|{_DIGITS}[eE][+-]?\d+|inf|nan)", re.I)


@dataclass(frozen=True)
class Override:
    """One `key=value` override.

    `text` is the item exactly as typed (what run.json records); `literal` is False for values set
    by code (sweeps, loops), whose type is kept as given.
    """

    key: str
    value: Any
    adds: bool = False
    text: str = ""
    literal: bool = True

    @classmethod
    def of(cls, key: str, value: Any) -> Override:
        """An override set by code: recorded as key=<JSON of the value>."""
        return cls(key, value, False, f"{key}={value if isinstance(value, str) else json.dumps(value, default=str)}", False)

    @property
    def value_text(self) -> str:
        return self.text.partition("=")[2]


def parse_value(text: str) -> Any:
    """Type a command-line value as Hydra's override grammar does, not as YAML 1.1.

    - null (any case) -> None; true/false (any case) -> bool; `no`, `yes`, `on`, `off`, `y`, `n` and
      `~` stay strings.
    - ints: 42, -3, 1_000 (Hydra's `_` separators); a leading zero (`007`) keeps it a string.
    - floats: 0.5, .5, 5., 3e-4, 1e3, 1.5E-2, inf, nan. Unlike Hydra, an exponent may have leading
      zeros (`1e-05`, as Python prints it) and `3e-4` is a float (YAML 1.1 reads it as a string).
    - 'quoted' or "quoted" -> the string inside; [a, b] and {a: 1} -> list and dict, their items
      typed by the same rules.
    - anything else (dates, 0x10, 1.2.3, a,b) -> the string, stripped of surrounding spaces.

    `1.10` is the float 1.1 here; apply_overrides keeps the typed text when config.yaml's default
    for the key is a string (`version=1.10` -> "1.10").
    """
    s = text.strip()
    if not s:
        return text
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1].replace("\\" + s[0], s[0])
    if s[0] in "[{":
        return _parse_container(s)
    return _scalar(s)


def _scalar(s: str) -> Any:
    low = s.lower()
    if low == "null":
        return None
    if low in ("true", "false"):
        return low == "true"
    if _INT.fullmatch(s):
        return int(s)
    if _FLOAT.fullmatch(s):
        return float(s)
    return s


def _parse_container(s: str) -> Any:
    """[a, b] / {a: 1}: the structure read by YAML's flow syntax, the items typed by _scalar."""
    import yaml

    try:
        node = yaml.compose(s, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return s
    except RecursionError:  # yaml's parser recurses once per level: [[[[... a thousand deep
        raise _too_deep(s) from None

    def build(n: Any) -> Any:
        if isinstance(n, yaml.SequenceNode):
            return [build(x) for x in n.value]
        if isinstance(n, yaml.MappingNode):
            return {str(build(k)): build(v) for k, v in n.value}
        return n.value if n.style in ("'", '"') else _scalar(n.value) if n.value else None

    if node is None:
        return s
    if _height(node) > MAX_DEPTH:
        raise _too_deep(s)
    return build(node)


def _height(node: Any) -> int:
    """Nesting levels of a yaml node tree, walked without recursion."""
    import yaml

    height, stack = 0, [(node, 1)]
    while stack:
        n, depth = stack.pop()
        height = max(height, depth)
        if isinstance(n, yaml.SequenceNode):
            stack.extend((x, depth + 1) for x in n.value)
        elif isinstance(n, yaml.MappingNode):
            stack.extend((x, depth + 1) for pair in n.value for x in pair)
    return height


def _too_deep(text: str) -> ConfigError:
    shown = text if len(text) <= 40 else text[:37] + "..."
    return ConfigError(f"Override value '{shown}' is nested deeper than {MAX_DEPTH} levels",
                       "Pass a flatter value, or put the structure in config.yaml.")


def parse_overrides(items: list[str], source: str = "command line") -> list[Override]:
    """Parse Hydra-style `key=value` / `+key=value` items into Overrides (values typed by parse_value).

    Raises:
        ConfigError: an item that is not key=value.

    Example:
        >>> parse_overrides(["lr=3e-4"])[0].value
        0.0003
    """
    out = []
    for item in items:
        m = _OVERRIDE.match(item)
        if not m:
            raise ConfigError(
                f"Cannot read override '{item}' from the {source}: expected key=value",
                "Write it as key=value, e.g. lr=3e-4 or model.depth=8 (use +key=value for a new key).",
            )
        plus, key, raw = m.groups()
        out.append(Override(key, parse_value(raw), bool(plus), item))
    return out


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}. Lists stay values."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def apply_overrides(defaults: dict[str, Any], overrides: list[Override], source: str = "config.yaml") -> dict[str, Any]:
    """Return a deep copy of `defaults` with overrides applied; unknown keys need a '+'.

    A typed override whose default is a string stays the string typed (`version=1.10` with
    default "1.9" gives "1.10", `name=no` gives "no"); null still sets None.
    """
    import copy

    params = copy.deepcopy(defaults)
    known = flatten(defaults)
    for o in overrides:
        key, value = o.key, o.value
        if key not in known and not o.adds and not any(k.startswith(key + ".") for k in known):
            raise ConfigError(
                f"Unknown parameter '{key}' (not in {source}; known: {', '.join(sorted(known)) or 'none'})."
                + did_you_mean(key, list(known)),
                f"Add it to {source}, or pass +{key}=... to add it for this run only.",
            )
        if o.literal and isinstance(known.get(key), str) and isinstance(value, (bool, int, float)):
            value = o.value_text.strip()
        node = params
        parts = key.split(".")
        if len(parts) > MAX_DEPTH:
            raise ConfigError(f"Override key '{key[:40]}...' is nested deeper than {MAX_DEPTH} levels",
                              "Use a shorter dotted key, e.g. model.depth=8.")
        for part in parts[:-1]:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = node[part] = {}
            node = nxt
        node[parts[-1]] = value
    return params


def parse_duration(text: str | int | float | None) -> float | None:
    """'90s', '10m', '1h30m', '1.5h', 45 -> seconds. None/'none'/'0' -> no timeout."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text) or None
    s = str(text).strip().lower()
    if s in ("", "none", "0", "off"):
        return None
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)", s)
    if not parts or "".join(n + u for n, u in parts) != s.replace(" ", ""):
        raise ConfigError(f"Cannot read duration '{text}'", "Use a number with a unit: 90s, 10m, 1h30m.")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(n) * scale[u] for n, u in parts)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def format_bytes(n: int | float | None) -> str:
    if not n:
        return "-"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f}{unit}" if unit in ("B", "KB") else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n}"
