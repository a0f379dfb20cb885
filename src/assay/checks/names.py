"""Names in a syntax tree resolved through a module's imports, shared by the reproducibility and leakage checks."""

from __future__ import annotations

import ast


def dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """`np.random.seed` -> 'numpy.random.seed' through the module's imports; None for non-names."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Call):  # Path("x").write_text: the call's name stands for the receiver
        inner = dotted(node.func, aliases)
        return ".".join([inner, *reversed(parts)]) if inner else None
    if not isinstance(node, ast.Name):
        return None
    root = aliases.get(node.id, node.id)
    return ".".join([root, *reversed(parts)])
