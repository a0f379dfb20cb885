"""No module of assay imports another in a cycle, imports inside functions included.

An in-function import makes a cycle harmless at load time but keeps the two modules one unit:
neither can be read, tested or replaced alone. The graph is built from the source with `ast`
(nothing is imported): an edge for every `import assay.x` and `from assay.x import y` anywhere in a
module, `y` resolved to the module `assay.x.y` when it is one. Imports under `if TYPE_CHECKING:`
are not edges (they never run). The implicit import of a parent package's `__init__` is not an
edge either: it is how Python loads a module, not a dependency the module chose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "assay"


def _module_names(src: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (packages by their __init__)."""
    names: dict[str, Path] = {}
    for path in sorted((src / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The assay modules `tree` imports anywhere (functions included), TYPE_CHECKING blocks excluded."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in known and m != module}


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """Module -> the assay modules it imports."""
    names = _module_names(src)
    known = set(names)
    return {m: _imports(ast.parse(p.read_text(encoding="utf-8"), str(p)), m, p.name == "__init__.py", known)
            for m, p in names.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def _describe(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    edges = [f"{a} -> {b}" for a in component for b in sorted(graph[a] & members)]
    return f"{' <-> '.join(component)}\n    " + "\n    ".join(edges)


def test_no_module_of_assay_imports_another_in_a_cycle() -> None:
    graph = import_graph()
    found = cycles(graph)
    assert not found, "Import cycles (in-function imports included):\n  " + "\n  ".join(
        _describe(c, graph) for c in found)


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / PACKAGE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_cycle_through_an_in_function_import_is_found(tmp_path: Path) -> None:
    src = _write(tmp_path, {
        "__init__.py": "",
        "lab.py": "def f():\n    from assay.store.index import Index\n",
        "store/__init__.py": "",
        "store/index.py": "from assay import lab\n",
    })
    assert cycles(import_graph(src)) == [["assay.lab", "assay.store.index"]]


def test_type_checking_imports_and_parent_packages_are_not_edges(tmp_path: Path) -> None:
    src = _write(tmp_path, {
        "__init__.py": "from assay.a import x\n",
        "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from assay.b import B\nx = 1\n",
        "b.py": "import assay.a\n",
    })
    graph = import_graph(src)
    assert graph["assay.a"] == set()
    assert graph["assay.b"] == {"assay.a"}
    assert cycles(graph) == []


@pytest.mark.parametrize("statement", ["from assay.sweep import samplers", "from . import samplers",
                                       "import assay.sweep.samplers"])
def test_an_imported_submodule_is_an_edge_to_that_module(tmp_path: Path, statement: str) -> None:
    src = _write(tmp_path, {
        "__init__.py": "",
        "sweep/__init__.py": "",
        "sweep/samplers.py": "def get():\n    from assay.sweep.optuna_sampler import S\n",
        "sweep/optuna_sampler.py": f"{statement}\nS = 1\n",
    })
    assert cycles(import_graph(src)) == [["assay.sweep.optuna_sampler", "assay.sweep.samplers"]]
