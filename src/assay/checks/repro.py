"""Reproducibility hygiene, read from the syntax tree of the entry point and the modules it imports
from the experiment folder (never regex over text: comments and strings cannot fool it).

Checks: seeds for random / numpy / torch (and cudnn determinism), random_state of scikit-learn
estimators, pinned dependency versions (PEP 723 block, requirements, pyproject + lock), absolute
or user-specific paths, outputs written to fixed paths (each run overwrites the last), and
leakage between the training and evaluation splits (assay.checks.leakage).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.checks.deps import dependency_findings
from assay.checks.finding import Finding
from assay.checks.names import dotted
from assay.errors import ConfigError

_RANDOM_FNS = {"random", "randint", "choice", "choices", "shuffle", "sample", "uniform", "gauss", "randrange",
               "normalvariate", "betavariate", "expovariate", "triangularvariate", "getrandbits"}
_NP_NOT_LEGACY = {"seed", "default_rng", "Generator", "RandomState", "SeedSequence", "PCG64", "MT19937", "Philox",
                  "SFC64", "BitGenerator", "get_state", "set_state"}
_TORCH_SEEDERS = {"torch.manual_seed", "torch.cuda.manual_seed", "torch.cuda.manual_seed_all", "lightning.seed_everything",
                  "pytorch_lightning.seed_everything", "lightning.pytorch.seed_everything", "transformers.set_seed",
                  "accelerate.utils.set_seed"}
# scikit-learn callables whose result depends on random_state (KFold & co. only when shuffling).
_SKLEARN_RANDOM = {"train_test_split", "ShuffleSplit", "StratifiedShuffleSplit", "GroupShuffleSplit", "RandomForestClassifier",
                   "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor", "GradientBoostingClassifier",
                   "GradientBoostingRegressor", "HistGradientBoostingClassifier", "HistGradientBoostingRegressor",
                   "SGDClassifier", "SGDRegressor", "MLPClassifier", "MLPRegressor", "KMeans", "MiniBatchKMeans",
                   "DecisionTreeClassifier", "DecisionTreeRegressor", "BaggingClassifier", "BaggingRegressor",
                   "AdaBoostClassifier", "AdaBoostRegressor", "Perceptron", "PassiveAggressiveClassifier", "TSNE",
                   "PCA", "TruncatedSVD", "IsolationForest", "RandomizedSearchCV", "make_classification", "make_regression",
                   "make_blobs", "resample", "shuffle", "LinearSVC"}
_SKLEARN_SHUFFLE = {"KFold", "StratifiedKFold", "RepeatedKFold", "RepeatedStratifiedKFold"}
_SYSTEM = ("/dev/", "/proc/", "/sys/", "/usr/", "/bin/", "/etc/", "/lib")
_ABS = re.compile(r"^(~[/\\]|[A-Za-z]:[\\/]|/[^/\s]+/\S*)")
_WRITE_ARG0 = {"to_csv", "to_parquet", "to_json", "to_pickle", "to_excel", "to_feather", "to_hdf", "savefig",
               "save_pretrained", "save", "save_model", "dump_model", "write_image", "to_netcdf"}
_WRITE_FN = {"torch.save": 1, "numpy.save": 0, "numpy.savez": 0, "numpy.savez_compressed": 0, "numpy.savetxt": 0,
             "joblib.dump": 1, "matplotlib.pyplot.savefig": 0, "shutil.copy": 1, "shutil.copyfile": 1}


@dataclass
class CheckResult:
    """Findings of `assay check`, and the files it read."""

    target: str
    files: list[str]
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "files": self.files, "findings": [f.to_dict() for f in self.findings]}


@dataclass
class _Module:
    path: Path
    tree: ast.Module
    aliases: dict[str, str]  # local name -> dotted module path or object
    cells: list[tuple[int, int]] | None = None  # a notebook: (cell, line in cell) of each source line


def _aliases(tree: ast.Module) -> dict[str, str]:
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _source(path: Path) -> tuple[str, list[tuple[int, int]] | None]:
    """A file's Python source; for a notebook, its code cells joined, with the (cell, line) of each
    line (cells counted as Jupyter shows them, markdown included). Magics and shell escapes (`%`,
    `!`) become blank lines: they are not Python."""
    import json

    text = path.read_text(encoding="utf-8")
    if path.suffix != ".ipynb":
        return text, None
    try:
        cells = json.loads(text).get("cells", [])
    except (ValueError, AttributeError):
        raise ConfigError(f"{path} is not a readable notebook (not nbformat JSON)", "Open and save it in Jupyter.") from None
    lines: list[str] = []
    where: list[tuple[int, int]] = []
    for n, cell in enumerate(cells, 1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        for i, line in enumerate(("".join(src) if isinstance(src, list) else str(src)).splitlines(), 1):
            lines.append("" if line.lstrip().startswith(("%", "!")) else line)
            where.append((n, i))
    return "\n".join(lines) + "\n", where


def _parse(path: Path) -> ast.Module:
    return _parse_mapped(path)[0]


def _parse_mapped(path: Path) -> tuple[ast.Module, list[tuple[int, int]] | None]:
    text, cells = _source(path)
    try:
        return ast.parse(text, filename=str(path)), cells
    except SyntaxError as exc:
        where = f"{path} cell {cells[exc.lineno - 1][0]}" if cells and exc.lineno and exc.lineno <= len(cells) else f"{path}:{exc.lineno}"
        raise ConfigError(f"Cannot parse {where}: {exc.msg}", "Fix the syntax error; checks read the code, they do not run it.") from None


def _local_imports(mod: ast.Module, path: Path, base: Path) -> list[Path]:
    """Files under `base` that `mod` imports (absolute imports from base, relative ones from path's folder)."""
    out = []
    for node in ast.walk(mod):
        names: list[tuple[Path, str]] = []
        if isinstance(node, ast.Import):
            names = [(base, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            root = base if not node.level else path.parent.joinpath(*[".."] * (node.level - 1))
            mod_name = node.module or ""
            names = [(root, mod_name)] + [(root, f"{mod_name}.{a.name}".lstrip(".")) for a in node.names]
        for root, name in names:
            parts = [p for p in name.split(".") if p]
            for cand in (root.joinpath(*parts).with_suffix(".py") if parts else None,
                         root.joinpath(*parts, "__init__.py")):
                if cand is not None and cand.is_file() and base in cand.resolve().parents:
                    out.append(cand.resolve())
    return out


def imported_modules(entry: Path) -> set[str]:
    """Top-level names of the modules an entry point imports (for the report's package versions)."""
    tree = _parse(entry)
    return {a.split(".")[0] for a in _aliases(tree).values()}


def collect(entry: Path) -> list[_Module]:
    """The entry point and, transitively, the modules it imports from its own folder."""
    base = entry.parent.resolve()
    todo, seen, out = [entry.resolve()], set(), []
    while todo:
        p = todo.pop(0)
        if p in seen:
            continue
        seen.add(p)
        tree, cells = _parse_mapped(p)
        out.append(_Module(p, tree, _aliases(tree), cells))
        todo += _local_imports(tree, p, base)
    return out


def check_file(entry: Path, lab_root: Path | None = None) -> CheckResult:
    """Run every check on `entry` and its local imports; paths in findings are relative to its folder."""
    from assay.checks.leakage import leakage_findings

    if entry.suffix not in (".py", ".ipynb"):
        raise ConfigError(f"assay check reads Python files and notebooks; '{entry.name}' is neither",
                          "Pass the .py or .ipynb entry point, or an experiment name.")
    if not entry.is_file():
        raise ConfigError(f"{entry} does not exist", "Pass an experiment name or an existing .py or .ipynb file.")
    mods = collect(entry)
    base = entry.parent.resolve()
    res = CheckResult(str(entry), [_rel(m.path, base) for m in mods])
    res.findings += _seed_findings(mods, base)
    for m in mods:
        res.findings += _path_findings(m, base) + _write_findings(m, base)
        res.findings += leakage_findings(m.tree, m.aliases, _rel(m.path, base))
    res.findings += dependency_findings(entry, base, lab_root)
    res.findings = [_in_cell(f, mods, base) for f in res.findings]
    res.findings.sort(key=lambda f: (f.file, f.line, f.code))
    return res


def _in_cell(f: Finding, mods: list[_Module], base: Path) -> Finding:
    """A finding in a notebook points at its cell and the line in that cell."""
    from dataclasses import replace

    for m in mods:
        if m.cells and _rel(m.path, base) == f.file and 0 < f.line <= len(m.cells):
            cell, line = m.cells[f.line - 1]
            return replace(f, file=f"{f.file} cell {cell}", line=line)
    return f


def _rel(p: Path, base: Path) -> str:
    try:
        return str(p.relative_to(base))
    except ValueError:
        return str(p)


def _calls(mods: list[_Module]) -> list[tuple[_Module, ast.Call, str]]:
    out = []
    for m in mods:
        for node in ast.walk(m.tree):
            if isinstance(node, ast.Call) and (name := dotted(node.func, m.aliases)):
                out.append((m, node, name))
    return out


def _imports_of(mods: list[_Module], top: str) -> tuple[_Module, ast.stmt] | None:
    for m in mods:
        for node in ast.walk(m.tree):
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == top for a in node.names):
                return m, node
            if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == top:
                return m, node
    return None


def _seed_findings(mods: list[_Module], base: Path) -> list[Finding]:
    calls = _calls(mods)
    names = {n for _, _, n in calls}
    out = []

    def add(m: _Module, node: ast.AST, code: str, msg: str, why: str, fix: str) -> None:
        out.append(Finding(code, _rel(m.path, base), getattr(node, "lineno", 1), msg, why, fix))

    uses = [(m, c, n) for m, c, n in calls if n.startswith("random.") and n.split(".")[1] in _RANDOM_FNS]
    if uses and "random.seed" not in names:
        m, c, n = uses[0]
        add(m, c, "seed-random", f"`{n}()` is used but random.seed() is never called",
            "Python's global generator is seeded from the OS: every run draws different numbers.",
            "Call random.seed(params['seed']) once at start-up.")
    for m, c, n in calls:
        if n in ("random.Random", "numpy.random.default_rng", "numpy.random.RandomState") and not c.args and not c.keywords:
            add(m, c, "seed-generator", f"`{n}()` without a seed",
                "A generator made without a seed is seeded from the OS: runs are not repeatable.",
                f"Pass the run's seed: {n.split('.')[-1]}(params['seed']).")
    legacy = [(m, c, n) for m, c, n in calls if n.startswith("numpy.random.") and n.split(".")[2] not in _NP_NOT_LEGACY]
    if legacy and "numpy.random.seed" not in names:
        m, c, n = legacy[0]
        add(m, c, "seed-numpy", f"`{n}()` uses numpy's global generator, which is never seeded",
            "numpy's global generator is seeded from the OS: shuffles, dropouts and inits differ per run.",
            "Call numpy.random.seed(params['seed']), or better rng = numpy.random.default_rng(params['seed']).")
    torch = _imports_of(mods, "torch")
    if torch:
        m, node = torch
        if not names & _TORCH_SEEDERS:
            add(m, node, "seed-torch", "torch is imported but torch.manual_seed() is never called",
                "Weight init, dropout and data shuffling draw from torch's generator, seeded randomly per process.",
                "Call torch.manual_seed(params['seed']) (it seeds CUDA devices too).")
        deterministic = "torch.use_deterministic_algorithms" in names or any(
            isinstance(n, ast.Assign) and any(dotted(t, mm.aliases) == "torch.backends.cudnn.deterministic" for t in n.targets)
            and isinstance(n.value, ast.Constant) and n.value.value is True for mm in mods for n in ast.walk(mm.tree))
        if not deterministic:
            add(m, node, "cudnn-determinism", "torch is used without deterministic algorithms",
                "cuDNN picks non-deterministic kernels by default: the same seed gives different results on GPU.",
                "Set torch.backends.cudnn.deterministic = True and torch.backends.cudnn.benchmark = False "
                "(or torch.use_deterministic_algorithms(True)).")
        for mm in mods:
            for a in ast.walk(mm.tree):
                if (isinstance(a, ast.Assign) and isinstance(a.value, ast.Constant) and a.value.value is True
                        and any(dotted(t, mm.aliases) == "torch.backends.cudnn.benchmark" for t in a.targets)):
                    add(mm, a, "cudnn-benchmark", "torch.backends.cudnn.benchmark = True",
                        "Benchmark mode times kernels per run and may pick different (non-deterministic) ones.",
                        "Set it to False for runs that must be repeatable.")
    for m, c, n in calls:
        last = n.split(".")[-1]
        if not n.startswith("sklearn.") or any(k.arg == "random_state" for k in c.keywords):
            continue
        shuffles = any(k.arg == "shuffle" and isinstance(k.value, ast.Constant) and k.value.value is True for k in c.keywords)
        if last in _SKLEARN_RANDOM or (last in _SKLEARN_SHUFFLE and shuffles):
            add(m, c, "seed-sklearn", f"`{last}(...)` without random_state",
                "Without random_state it draws from numpy's global generator: splits and fits change per run.",
                f"Pass random_state=params['seed'] to {last}.")
    return out


def _fixed_string(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """The path a node always evaluates to, when it is fixed (a constant, Path(const), join of constants)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and all(isinstance(v, ast.Constant) for v in node.values):
        return "".join(str(v.value) for v in node.values)  # type: ignore[attr-defined]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        left, right = _fixed_string(node.left, aliases), _fixed_string(node.right, aliases)
        return f"{left}/{right}" if left is not None and right is not None else None
    if isinstance(node, ast.Call) and node.args:
        name = dotted(node.func, aliases) or ""
        if name in ("pathlib.Path", "Path", "os.path.join", "pathlib.PurePath"):
            parts = [_fixed_string(a, aliases) for a in node.args]
            return "/".join(parts) if all(p is not None for p in parts) else None  # type: ignore[arg-type]
    return None


def _path_findings(m: _Module, base: Path) -> list[Finding]:
    out = []
    skip = {id(n.value) for n in ast.walk(m.tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    user_calls = ("os.path.expanduser", "pathlib.Path.home", "Path.home", "os.path.expandvars")
    # The argument of expanduser("~/x") is reported once, as a user path, not again as an absolute one.
    skip |= {id(a) for n in ast.walk(m.tree) if isinstance(n, ast.Call) and dotted(n.func, m.aliases) in user_calls for a in n.args}
    for node in ast.walk(m.tree):
        text = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            text = node.value
        elif isinstance(node, ast.Call):
            name = dotted(node.func, m.aliases) or ""
            if name in user_calls:
                out.append(Finding("user-path", _rel(m.path, base), node.lineno, f"`{name}(...)` resolves to this user's home",
                                   "The path differs per user and machine: nobody else can rerun the script as is.",
                                   "Take the location from a param or an environment variable with a documented default."))
            continue
        if text is None or not isinstance(node, ast.expr) or "\n" in text or not _ABS.match(text) or text.startswith(_SYSTEM):
            continue
        out.append(Finding("absolute-path", _rel(m.path, base), node.lineno, f"absolute or user-specific path '{text}'",
                           "It exists only on the machine where it was written; a rerun elsewhere fails or reads other data.",
                           "Make it a param in config.yaml (relative to the experiment folder), e.g. data_dir: data/."))
    return out


def _write_findings(m: _Module, base: Path) -> list[Finding]:
    out = []
    for node in ast.walk(m.tree):
        if not isinstance(node, ast.Call):
            continue
        name = dotted(node.func, m.aliases) or ""
        target: ast.AST | None = None
        if name in ("open", "io.open", "builtins.open") and node.args:
            mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
            if isinstance(mode, ast.Constant) and isinstance(mode.value, str) and set(mode.value) & set("wax"):
                target = node.args[0]
        elif name in _WRITE_FN and len(node.args) > _WRITE_FN[name]:
            target = node.args[_WRITE_FN[name]]
        elif isinstance(node.func, ast.Attribute) and node.func.attr in ("write_text", "write_bytes"):
            target = node.func.value
        elif isinstance(node.func, ast.Attribute) and node.func.attr in _WRITE_ARG0 and node.args:
            target = node.args[0]
        fixed = _fixed_string(target, m.aliases) if target is not None else None
        if fixed is None or fixed in ("-", "/dev/null") or fixed.startswith(("/dev/", "runs/")):
            continue
        out.append(Finding("fixed-output", _rel(m.path, base), node.lineno, f"output written to the fixed path '{fixed}'",
                           "Every run writes the same file: the next run silently overwrites this run's result.",
                           "Write inside the run folder: Path(os.environ.get('ASSAY_RUN_DIR', '.')) / "
                           f"'{Path(fixed).name}' (or assay.init().path / '{Path(fixed).name}')."))
    return out


def check(lab: Any, target: str) -> CheckResult:
    """`assay check NAME|FILE`: an experiment's entry point (when NAME is one), else a .py or .ipynb file."""
    from assay.experiment import list_experiments, load_experiment

    if lab is not None and target in list_experiments(lab):
        exp = load_experiment(lab, target)
        entry = exp.path / exp.entry.split()[0]
        res = check_file(entry, lab.root)
        res.target = target
        return res
    path = Path(target)
    if not path.exists():
        known = list_experiments(lab) if lab is not None else []
        raise ConfigError(f"'{target}' is neither an experiment (known: {', '.join(known) or 'none'}) nor a file",
                          "Pass an experiment name or the path of a .py or .ipynb file: assay check train.py")
    return check_file(path, lab.root if lab is not None else None)
