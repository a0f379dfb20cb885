"""Third-party samplers, executors, decision rules and proposers, found through package entry points.

A package adds one to assay by declaring it in its pyproject.toml, e.g.

    [project.entry-points."assay.decisions"]
    bayes = "my_pkg.rules:BayesFactor"       # called with loop Settings, returns a DecisionRule

Groups: `assay.samplers` (factory(space, goal, seed, **options) -> Sampler), `assay.executors`
(factory(lab, slots, **options) -> Executor), `assay.decisions` (factory(Settings) -> DecisionRule)
and `assay.proposers` (factory(ProposerOptions) -> Proposer).
Built-in names win over plug-ins of the same name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from assay.errors import PluginError

T = TypeVar("T")


def names(group: str) -> list[str]:
    """The plug-in names installed for `group`."""
    from importlib.metadata import entry_points

    return sorted({ep.name for ep in entry_points(group=group)})


def load(target: str) -> Any:
    """The object a `module:attribute` string names, imported on first use (as an entry point's value
    is). Built-ins that need a heavy library are registered so: their module loads only when chosen,
    and the registry does not import the module that imports it back."""
    import importlib

    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def find(group: str, name: str) -> Callable[..., Any] | None:
    """The factory a package registered as `name` in `group`, or None; a broken one is a clear error."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=group):
        if ep.name == name:
            try:
                loaded: Callable[..., Any] = ep.load()  # entry points are untyped: trust the group's contract
                return loaded
            except Exception as exc:  # noqa: BLE001 - any import failure in someone else's package
                raise PluginError(f"The {group} plug-in '{name}' ({ep.value}) failed to load: {type(exc).__name__}: {exc}",
                                  f"Fix or reinstall the package that provides it ({ep.value.split(':')[0]}).") from None
    return None


def factory(group: str, name: str | None, builtins: Mapping[str, Callable[..., T] | str], what: str, hint: str,
            also_known: str = "") -> Callable[..., T]:
    """The built-in named `name`, else the plug-in registered under it in `group`; an unknown name
    is a PluginError listing every known one (`also_known` adds forms that are not names). A
    built-in given as "module:attribute" is imported now, so heavy or dependent modules load only when named."""
    from assay.errors import did_you_mean

    if name is not None and name in builtins:
        builtin = builtins[name]
        return cast("Callable[..., T]", load(builtin)) if isinstance(builtin, str) else builtin
    found = find(group, name) if name else None
    if found is None:
        known = [*builtins, *names(group)]
        raise PluginError(f"Unknown {what} '{name}' (known: {', '.join(known)}{also_known})." + did_you_mean(name or "", known), hint)
    return cast("Callable[..., T]", found)  # a plug-in's factory makes what its group's built-ins make

