"""Leakage between the training and the evaluation split, read from the code (scripts and notebooks).

One forward data-flow pass over a module's syntax tree, statements in source order (a notebook's
code cells in order, as `assay check` joins them), follows what each variable holds: data loaded
from a source (a token), the side of a split it lies in (train_test_split, KFold indices, iloc
slices, sample()/drop, random_split), statistics learned on unsplit data and baked into it (a
taint), oversampling applied before a split, what an estimator was fitted on, and the scores
computed on an evaluation split (looks). Calls into functions of the same module are followed.

Three findings, after Yang et al., "Data Leakage in Notebooks: Static Detection and Better
Processes" (ASE 2022), without a datalog engine:
- preprocessing-leakage: a transform, selector, encoder, resampler or pandas statistic learned on
  rows that later reach the evaluation split (or a cross-validation);
- overlap-leakage: rows the model was fitted on (or oversampled copies of them) are scored;
- multi-test-leakage: the evaluation split is scored repeatedly to pick a model or hyperparameters
  and nothing is scored on a separate split afterwards, or a search is scored on the rows it chose on.

The values and the library names they follow live in assay.checks.leakage_values.
"""

from __future__ import annotations

import ast
from dataclasses import replace

from assay.checks.finding import Finding
from assay.checks.leakage_values import (
    CV_FUNCS,
    EMPTY,
    MUTATORS,
    NEUTRAL_FNS,
    NONDATA_ATTRS,
    OBJECTS,
    PIPELINES,
    PREDICT,
    SCORE,
    SELECT_FNS,
    SELECT_METHODS,
    SELECTING_CALLBACKS,
    STATS,
    Fit,
    Look,
    Part,
    Taint,
    Val,
    const,
    declared_tests,
    eval_sides,
    is_metric,
    join,
    key_of,
    lineage_of,
    object_kind,
    root_key,
    same_rows,
    source_of,
    trains,
)
from assay.checks.names import dotted

PREPROCESSING, OVERLAP, MULTI_TEST = "preprocessing-leakage", "overlap-leakage", "multi-test-leakage"
KINDS = (PREPROCESSING, OVERLAP, MULTI_TEST)

_WHY = {
    PREPROCESSING: "The statistics it learns (means, scales, vocabularies, chosen features, category targets, "
                   "neighbours) include the rows later scored as unseen: the score is optimistic.",
    OVERLAP: "Rows the model was fitted on (or copies and synthetic neighbours of them) are also scored: "
             "the score measures memory, not generalisation.",
    MULTI_TEST: "The evaluation split was scored many times to choose a model or hyperparameters; the best of "
                "many noisy scores is biased upwards, so the reported score is optimistic.",
}
_FIX = {
    PREPROCESSING: "Split first and fit it on the training split only: make_pipeline(StandardScaler(), model)."
                   "fit(X_train, y_train), or pass the pipeline to cross_val_score / GridSearchCV.",
    OVERLAP: "Fit on the training split only (model.fit(X_train, y_train)); resample after the split and on the "
             "training split only, e.g. imblearn's make_pipeline(SMOTE(), model) inside cross-validation.",
    MULTI_TEST: "Choose on a validation split or by cross-validation on the training split (GridSearchCV fitted "
                "on X_train), then score the chosen model once on a test split kept aside.",
}

class _Flow:
    def __init__(self, aliases: dict[str, str], file: str) -> None:
        self.aliases, self.file = aliases, file
        self.env: dict[str, Val] = {}
        self.funcs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        self.called: set[str] = set()
        self.active: list[str] = []
        self.returns: list[list[Val]] = []
        self.loops: list[tuple[int, int, Val]] = []  # first line, last line, the value iterated
        self.training: list[bool] = []
        self.looks: list[Look] = []
        self.selections: list[tuple[int, frozenset[Part], int, bool]] = []  # line, keys, look line, needs a report
        self.found: dict[tuple[str, int], Finding] = {}
        self.tokens = 0

    # -- findings ---------------------------------------------------------------------------------

    def emit(self, code: str, line: int, message: str) -> None:
        self.found.setdefault((code, line), Finding(code, self.file, line, message, _WHY[code], _FIX[code]))

    def taint_check(self, data: Val, line: int, how: str) -> None:
        for t in sorted(data.taints, key=lambda t: t.line):
            if t.tokens & data.tokens:
                self.emit(PREPROCESSING, t.line, f"`{t.what}` learns from all rows; {how} (line {line}) "
                                                 "then holds rows it has already seen")

    def cv_use(self, data: Val, line: int, what: str) -> None:
        """Cross-validation splits `data` itself: what was learned on all of it leaks into each fold."""
        self.taint_check(data, line, f"`{what}` cuts its evaluation folds from that data")
        for r in sorted(data.resampled):
            self.emit(OVERLAP, r, f"rows are oversampled before `{what}` (line {line}) splits them into folds: "
                                  "copies of the same rows land in training and evaluation folds")

    def cut(self, src: Val, part: Part, line: int, what: str, *, check: bool = True) -> Val:
        """One side of a split of `src`. A slice (`check=False`) is only taken for an evaluation split once a
        model scores it: `X[n:]` is also how a block of rows is taken for other reasons."""
        out = replace(src, kind="data", sides=frozenset({part}), items=None, elem=None)
        if part.side == "test" and check:
            self.taint_check(src, line, f"the evaluation split cut by `{what}`")
        return out

    # -- statements -------------------------------------------------------------------------------

    def block(self, body: list[ast.stmt]) -> None:
        for s in body:
            self.stmt(s)

    def stmt(self, s: ast.stmt) -> None:  # noqa: C901 (one dispatch over statement types)
        if isinstance(s, ast.Assign):
            v = self.ev(s.value)
            for t in s.targets:
                self.bind(t, v)
        elif isinstance(s, ast.AnnAssign) and s.value is not None:
            self.bind(s.target, self.ev(s.value))
        elif isinstance(s, ast.AugAssign):  # X[10:20] += 1 changes X, it does not cut it
            v = self.ev(s.value)
            self.bind(s.target, join(self.ev(s.target), v) if isinstance(s.target, ast.Name) else v)
        elif isinstance(s, ast.Expr):
            self.ev(s.value)
        elif isinstance(s, ast.For | ast.AsyncFor):
            it = self.ev(s.iter)
            self.loops.append((s.lineno, s.end_lineno or s.lineno, it))
            self.training.append(trains(s))
            self.bind(s.target, self.element(it))
            self.block(s.body)
            self.training.pop()
            self.loops.pop()
            self.block(s.orelse)
        elif isinstance(s, ast.While):
            self.ev(s.test)
            self.loops.append((s.lineno, s.end_lineno or s.lineno, EMPTY))
            self.training.append(trains(s))
            self.block(s.body)
            self.training.pop()
            self.loops.pop()
        elif isinstance(s, ast.If):
            self.ev(s.test)
            self.block(s.body)
            self.block(s.orelse)
        elif isinstance(s, ast.With | ast.AsyncWith):
            for item in s.items:
                v = self.ev(item.context_expr)
                if item.optional_vars is not None:
                    self.bind(item.optional_vars, v)
            self.block(s.body)
        elif isinstance(s, ast.Try):
            self.block(s.body)
            for h in s.handlers:
                self.block(h.body)
            self.block(s.orelse)
            self.block(s.finalbody)
        elif isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef):
            self.funcs[s.name] = s
        elif isinstance(s, ast.ClassDef):
            for f in s.body:
                if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef):
                    self.funcs[f"{s.name}.{f.name}"] = f
        elif isinstance(s, ast.Return) and s.value is not None and self.returns:
            self.returns[-1].append(self.ev(s.value))

    def bind(self, target: ast.AST, v: Val) -> None:
        if isinstance(target, ast.Name):
            self.env[target.id] = v
        elif isinstance(target, ast.Tuple | ast.List):
            n = len(target.elts)
            vals = list(v.items) if v.items is not None and len(v.items) == n else [replace(v, items=None)] * n
            for t, x in zip(target.elts, vals):
                self.bind(t.value if isinstance(t, ast.Starred) else t, x)
        elif isinstance(target, ast.Attribute | ast.Subscript):
            if isinstance(target, ast.Attribute) and target.attr not in ("loc", "iloc", "at", "iat", "values", "str"):
                if k := key_of(target):
                    self.env[k] = v  # self.scaler = StandardScaler()
                base_key = key_of(target.value)
            else:
                base_key = root_key(target)
            if base_key and (base_key in self.env or isinstance(target, ast.Subscript)):
                old = self.env.get(base_key, EMPTY)
                new = join(old, v)
                self.env[base_key] = replace(new, sides=old.sides) if old.tokens else new

    def element(self, v: Val) -> Val:
        """What a for loop over `v` binds each time."""
        if v.elem is not None:
            return v.elem
        if v.items:
            lens = {len(i.items) if i.items is not None else -1 for i in v.items}
            if len(lens) == 1 and (n := lens.pop()) > 0:  # [("lr", LR()), ("rf", RF())]
                return Val(items=tuple(join(*(i.items[k] for i in v.items if i.items)) for k in range(n)))
            return join(*v.items)
        return replace(v, items=None)

    # -- expressions ------------------------------------------------------------------------------

    def ev(self, node: ast.AST | None) -> Val:  # noqa: C901 (one dispatch over expression types)
        if node is None:
            return EMPTY
        if isinstance(node, ast.Name):
            return self.env.get(node.id, EMPTY)
        if isinstance(node, ast.Constant):
            return EMPTY
        if isinstance(node, ast.Attribute):
            k = key_of(node)
            if k and k in self.env:
                return self.env[k]
            return self.attribute(self.ev(node.value), node.attr)
        if isinstance(node, ast.Subscript):
            return self.subscript(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.BinOp):
            return join(self.ev(node.left), self.ev(node.right))
        if isinstance(node, ast.UnaryOp):
            v = self.ev(node.operand)
            if isinstance(node.op, ast.Invert | ast.Not) and v.kind == "index":
                return replace(v, sides=frozenset(replace(p, side="test" if p.side == "train" else "train")
                                                  for p in v.sides))
            return v
        if isinstance(node, ast.BoolOp):
            return join(*(self.ev(x) for x in node.values))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.IfExp):
            self.ev(node.test)
            return join(self.ev(node.body), self.ev(node.orelse))
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            vals = tuple(self.ev(e) for e in node.elts)
            return replace(join(*vals), items=vals)
        if isinstance(node, ast.Dict):
            return join(*(self.ev(k) for k in node.keys if k is not None), *(self.ev(v) for v in node.values))
        if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            return self.comprehension(node)
        if isinstance(node, ast.NamedExpr):
            v = self.ev(node.value)
            self.bind(node.target, v)
            return v
        if isinstance(node, ast.Starred | ast.Await | ast.FormattedValue):
            return self.ev(node.value)
        if isinstance(node, ast.JoinedStr):
            return join(*(self.ev(v) for v in node.values))
        return EMPTY

    def attribute(self, base: Val, attr: str) -> Val:
        if attr in NONDATA_ATTRS:
            return EMPTY
        if attr == "index":
            return replace(base, kind="index", items=None) if base.tokens else EMPTY
        if attr == "best_estimator_":
            return replace(base, kind="estimator", chosen=base.chosen)
        if attr == "best_params_":
            return Val(kind="params", chosen=base.chosen)
        if attr.endswith("_") and base.kind in OBJECTS:
            return EMPTY  # fitted attributes: coef_, feature_importances_
        return replace(base, items=None)

    def subscript(self, node: ast.Subscript) -> Val:
        base = self.ev(node.value)
        sl = node.slice
        first = sl.elts[0] if isinstance(sl, ast.Tuple) and sl.elts else sl
        if base.items is not None and isinstance(sl, ast.Constant) and isinstance(sl.value, int):
            return base.items[sl.value] if -len(base.items) <= sl.value < len(base.items) else EMPTY
        if isinstance(first, ast.Slice):
            if (first.lower or first.upper) and not first.step and base.tokens and base.kind in ("data", "index"):
                return self.slice_rows(base, first, node)
            return replace(base, items=None)
        idx = self.ev(first)
        if isinstance(sl, ast.Tuple):
            for e in sl.elts[1:]:
                self.ev(e)
        if idx.sides and base.tokens and idx.sides != base.sides and base.kind in ("data", "index"):
            out = replace(base, kind="data", sides=idx.sides, items=None, elem=None)
            if eval_sides(out):
                self.taint_check(base, node.lineno, f"the evaluation rows `{source_of(node)}`")
            return out
        if isinstance(base.kind, str) and base.kind == "params":
            return base
        return join(replace(base, items=None), Val(taints=idx.taints)) if idx.taints else replace(base, items=None)

    def slice_rows(self, base: Val, s: ast.Slice, node: ast.Subscript) -> Val:
        lo, hi = const(s.lower), const(s.upper)
        side = "train" if s.lower is None else "test"  # X[:n] trains, X[n:] and X[a:b] are held out
        rng = None
        if not isinstance(lo, str) and not isinstance(hi, str) and (lo is None or lo >= 0) and (hi is None or hi >= 0):  # "?": computed
            rng = (float(lo or 0), float("inf") if hi is None else float(hi))
        part = Part(("slice", base.tokens, base.sides), side, node.lineno, base.sides, rng)
        out = self.cut(base, part, node.lineno, source_of(node), check=False)
        return replace(out, kind=base.kind)

    def compare(self, node: ast.Compare) -> Val:
        vals = [self.ev(node.left), *(self.ev(c) for c in node.comparators)]
        j = join(*vals)
        if any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops) and eval_sides(j):
            return self.look(node.lineno, j)  # (pred == y_test).mean()
        if any(isinstance(op, ast.Gt | ast.Lt | ast.GtE | ast.LtE) for op in node.ops):
            self.select(j, node.lineno)
        return replace(j, kind="score") if j.looks else EMPTY

    def comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> Val:
        saved = dict(self.env)
        for g in node.generators:
            it = self.ev(g.iter)
            self.loops.append((node.lineno, node.end_lineno or node.lineno, it))
            self.bind(g.target, self.element(it))
            for cond in g.ifs:
                self.ev(cond)
        out = join(self.ev(node.key), self.ev(node.value)) if isinstance(node, ast.DictComp) else self.ev(node.elt)
        del self.loops[len(self.loops) - len(node.generators):]
        self.env = {**saved, **{k: v for k, v in self.env.items() if k in saved}}
        return out

    # -- looks and selection ----------------------------------------------------------------------

    def repeated(self, keys: frozenset[Part]) -> bool:
        """Inside a loop that is not over the folds or the batches of the evaluation data itself."""
        lineage = lineage_of(keys)
        for lo, hi, it in self.loops:
            if any(lo <= p.line <= hi for p in keys) or (it.sides & lineage):
                continue
            return True
        return False

    def look(self, line: int, data: Val) -> Val:
        keys = eval_sides(data)
        lk = Look(line, self.repeated(keys), keys)
        self.looks.append(lk)
        return Val(kind="score", looks=data.looks | {lk})

    def select(self, v: Val, line: int) -> None:
        looks = [lk for lk in v.looks if lk.keys]
        if looks and (any(lk.repeated for lk in looks) or len({lk.line for lk in looks}) >= 2):
            keys = frozenset().union(*(lk.keys for lk in looks))
            self.selections.append((line, keys, min(lk.line for lk in looks), False))

    def finish_selections(self) -> None:
        for line, keys, look_line, needs_report in self.selections:
            after = [lk for lk in self.looks if lk.line > line]
            held_out = [lk for lk in after if not (lineage_of(lk.keys) & keys)]
            reported = [lk for lk in after if lk.keys & keys]
            if held_out or (needs_report and not reported):
                continue
            if needs_report:
                msg = (f"the evaluation data given to early stopping / checkpointing at line {line} is the data "
                       f"scored at line {reported[0].line}")
            else:
                msg = (f"the evaluation split is scored for each candidate (line {look_line}) and the best is picked "
                       f"at line {line}; no separate test split is scored afterwards")
            self.emit(MULTI_TEST, look_line if not needs_report else line, msg)

    # -- calls --------------------------------------------------------------------------------------

    def call(self, node: ast.Call) -> Val:
        f = node.func
        name = dotted(f, self.aliases) or ""
        last = name.rsplit(".", 1)[-1] if name else (f.attr if isinstance(f, ast.Attribute) else "")
        if isinstance(f, ast.Name) and f.id in self.funcs and f.id not in self.env:
            return self.call_local(f.id, node)
        if last in SELECT_FNS and not isinstance(f, ast.Attribute) or name.startswith("numpy.") and last in SELECT_FNS:
            return self.selection_call(node)
        args = [self.ev(a) for a in node.args]
        kws = {k.arg: self.ev(k.value) for k in node.keywords}
        if isinstance(f, ast.Attribute) and not self.is_module(f):
            return self.method(node, self.ev(f.value), f.attr, args, kws, key_of(f.value))
        callee = self.env.get(f.id) if isinstance(f, ast.Name) else None
        if isinstance(f, ast.Name) and callee is not None and callee.kind in OBJECTS and args:
            return self.model_call(node, callee, f.id, args)
        return self.function(node, name, last, args, kws)

    def is_module(self, f: ast.Attribute) -> bool:
        root: ast.AST = f
        while isinstance(root, ast.Attribute):
            root = root.value
        return isinstance(root, ast.Name) and root.id in self.aliases and root.id not in self.env

    def call_local(self, fname: str, node: ast.Call) -> Val:
        fn = self.funcs[fname]
        if fname in self.active or len(self.active) > 4:
            return join(*(self.ev(a) for a in node.args))
        args = [self.ev(a) for a in node.args]
        kws = {k.arg: self.ev(k.value) for k in node.keywords if k.arg}
        return self.run_function(fname, fn, args, kws, [a for a in node.args])

    def run_function(self, fname: str, fn: ast.FunctionDef | ast.AsyncFunctionDef, args: list[Val],
                     kws: dict[str, Val], arg_nodes: list[ast.expr]) -> Val:
        self.called.add(fname)
        saved = self.env
        params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
        local = dict(saved)
        initial: dict[str, Val] = {}
        for i, p in enumerate(params):
            initial[p] = args[i] if i < len(args) else kws.get(p, EMPTY)
        for a in fn.args.kwonlyargs:
            initial[a.arg] = kws.get(a.arg, EMPTY)
        local.update(initial)
        self.env = local
        self.active.append(fname)
        self.returns.append([])
        self.training.append(trains(fn))
        self.block(fn.body)
        self.training.pop()
        rets = self.returns.pop()
        self.active.pop()
        self.env = saved
        for k, v in local.items():  # a fitted model or a filled list passed in (or global) comes back changed
            if k in initial:
                i = params.index(k) if k in params else -1
                if 0 <= i < len(arg_nodes) and (ck := key_of(arg_nodes[i])) and v is not initial[k]:
                    saved[ck] = v
            elif k in saved and v is not saved[k]:
                saved[k] = v
        return rets[0] if len(rets) == 1 else join(*rets)

    def selection_call(self, node: ast.Call) -> Val:
        vals = [self.ev(a) for a in node.args]
        for k in node.keywords:
            if k.arg == "key" and isinstance(k.value, ast.Lambda) and vals and k.value.args.args:
                lam = k.value
                saved = dict(self.env)
                self.loops.append((node.lineno, node.end_lineno or node.lineno, vals[0]))
                self.env[lam.args.args[0].arg] = self.element(vals[0])
                vals.append(self.ev(lam.body))
                self.loops.pop()
                self.env = saved
            else:
                vals.append(self.ev(k.value))
        j = join(*vals)
        self.select(j, node.lineno)
        return j

    def function(self, node: ast.Call, name: str, last: str, args: list[Val], kws: dict[str | None, Val]) -> Val:
        line = node.lineno
        if last == "train_test_split":
            arrays = args or [v for k, v in kws.items() if k in ("X", "y", "arrays")]
            sid = ("tts", line, node.col_offset)
            items: list[Val] = []
            for a in arrays:
                items += [self.cut(a, Part(sid, "train", line, a.sides), line, "train_test_split"),
                          self.cut(a, Part(sid, "test", line, a.sides), line, "train_test_split")]
            return replace(join(*items), items=tuple(items))
        if last == "random_split" and args:
            n = len(node.args[1].elts) if len(node.args) > 1 and isinstance(node.args[1], ast.List | ast.Tuple) else 2
            a = args[0]
            items = [self.cut(a, Part(("random_split", line, i), "train" if i == 0 else "test", line, a.sides), line,
                              "random_split") for i in range(n)]
            return replace(join(*items), items=tuple(items))
        if last == "resample" and name.startswith("sklearn."):
            j = join(*args)
            rep = kws.get("replace") is not None and any(
                k.arg == "replace" and isinstance(k.value, ast.Constant) and k.value.value is True for k in node.keywords)
            return replace(j, resampled=j.resampled | {line}) if rep and not j.sides else j
        if last in CV_FUNCS:
            data = args[1] if len(args) > 1 else kws.get("X", EMPTY)
            self.cv_use(data, line, last)
            return Val(kind="score")
        if last in ("enumerate", "zip"):
            elems = [self.element(a) for a in args]
            el = Val(items=(EMPTY, elems[0] if elems else EMPTY)) if last == "enumerate" else Val(items=tuple(elems))
            return replace(join(*args), elem=el)
        if last in NEUTRAL_FNS and "." not in name:
            return EMPTY
        if is_metric(name, last):
            j = join(*args, *kws.values())
            return self.look(line, j) if eval_sides(j) else Val(kind="score", looks=j.looks)
        if name.startswith("numpy.") and last in STATS and args:
            return self.stat(args[0], node)
        everything = [*args, *kws.values()]
        if last in PIPELINES or (last[:1].isupper() and not any(a.tokens for a in everything)):
            j = join(*everything)
            return Val(kind=object_kind(last), cls=last, chosen=j.chosen, taints=j.taints, looks=j.looks, text=last)
        if any(a.tokens or a.looks or a.kind in OBJECTS for a in everything):
            return join(*everything)
        self.tokens += 1
        return Val(kind="data", tokens=frozenset({self.tokens}), text=source_of(node))

    def stat(self, recv: Val, node: ast.Call) -> Val:
        """A statistic of data; learned on unsplit rows, it taints whatever it fills or scales."""
        if recv.kind == "data" and recv.tokens and not recv.sides:
            return Val(kind="stat", taints=recv.taints | {Taint(node.lineno, source_of(node), recv.tokens)})
        return Val(kind="stat", taints=recv.taints)

    def model_call(self, node: ast.Call, model: Val, key: str, args: list[Val]) -> Val:
        """`model(x)`: a training step inside a loop that calls backward(), else a prediction."""
        data = join(*args)
        if data.kind in OBJECTS:
            return model  # a layer applied to a layer (Keras functional API)
        if self.training and self.training[-1]:
            old = model.fitted.data if model.fitted else EMPTY
            self.env[key] = replace(model, fitted=Fit(node.lineno, join(old, data), source_of(node)))
            return replace(data, kind="data")
        self.evaluate(node, model, data, scoring=False)
        return replace(data, kind="data")

    def method(self, node: ast.Call, recv: Val, m: str, args: list[Val], kws: dict[str | None, Val],  # noqa: C901
               key: str | None) -> Val:
        line = node.lineno
        obj = recv.kind in OBJECTS or recv.fitted is not None
        if recv.kind == "splitter" and m == "split" and args:
            data = args[0]
            sid = ("folds", line)
            idx = [Val(kind="index", tokens=data.tokens, sides=frozenset({Part(sid, s, line, data.sides)})) for s in
                   ("train", "test")]
            return Val(kind="data", elem=Val(items=tuple(idx)))
        if recv.kind == "trainer" and m in ("fit", "test", "validate") and args:
            model, loaders = args[0], join(*args[1:2], kws.get("train_dataloaders", EMPTY), kws.get("dataloaders", EMPTY))
            mk = key_of(node.args[0]) if node.args else None
            if m == "fit" and mk:
                self.env[mk] = replace(model, fitted=Fit(line, loaders, source_of(node)))
            elif m != "fit":
                self.evaluate(node, model, loaders, scoring=True)
            return EMPTY
        if m in ("partial_fit", "train_on_batch") and args:  # one more step: the fitted rows accumulate
            prev = recv.fitted.data if recv.fitted else EMPTY
            new = replace(recv, fitted=Fit(line, join(prev, *args), source_of(node)))
            if key:
                self.env[key] = new
            return new
        if m == "fit" and (obj or any(a.tokens for a in [*args, *kws.values()])):
            return self.fit(node, recv, args, kws, key)
        if m in ("fit_transform", "fit_resample", "fit_sample") and args:
            return self.fit_transform(node, recv, m, args, key)
        if m == "adapt" and args:  # Keras preprocessing layers learn here
            data = args[0]
            taint = {Taint(line, source_of(node), data.tokens)} if data.tokens and not data.sides else set()
            new = replace(recv, kind="transform", taints=recv.taints | taint)
            if key:
                self.env[key] = new
            return EMPTY
        if m == "transform" and obj and args:
            return self.transform(node, recv, args[0])
        if m in PREDICT and args:
            self.evaluate(node, recv, args[0], scoring=False)
            return replace(args[0], kind="data", items=None)
        if m in SCORE and (args or "x" in kws):
            data = args[0] if args else kws["x"]
            return self.evaluate(node, recv, data, scoring=True)
        if m in MUTATORS:
            if key:
                self.env[key] = join(recv, *args, *kws.values())
            return EMPTY
        if recv.looks and m in SELECT_METHODS:
            j = join(recv, *args)
            self.select(j, line)
            return j
        if obj:
            return recv  # model.eval(), model.to(device), pipe.set_params(...)
        if m in STATS or (m in ("transform", "agg", "aggregate") and node.args and isinstance(node.args[0], ast.Constant)
                           and node.args[0].value in STATS):
            return self.stat(recv, node)
        if m == "sample" and recv.tokens:
            return self.sample(node, recv, key)
        if m == "drop" and args and args[0].kind == "index" and args[0].sides:
            flipped = frozenset(replace(p, side="test" if p.side == "train" else "train") for p in args[0].sides)
            out = replace(recv, sides=flipped)
            if eval_sides(out):
                self.taint_check(recv, line, f"the evaluation rows `{source_of(node)}`")
            return out
        if m == "isin" and args and args[0].kind == "index":
            return replace(args[0], tokens=recv.tokens | args[0].tokens)
        if m == "items":
            return replace(recv, elem=Val(items=(EMPTY, replace(recv, items=None))))
        out = join(recv, *args, *kws.values())
        inplace = any(k.arg == "inplace" and isinstance(k.value, ast.Constant) and k.value.value is True
                      for k in node.keywords)
        root = root_key(node.func.value) if isinstance(node.func, ast.Attribute) else None
        if inplace and root:  # df["Age"].fillna(m, inplace=True) changes df
            self.env[root] = join(self.env.get(root, EMPTY), out) if root != key else out
        return out

    def sample(self, node: ast.Call, recv: Val, key: str | None) -> Val:
        frac = next((k.value.value for k in node.keywords if k.arg == "frac" and isinstance(k.value, ast.Constant)), None)
        rep = any(k.arg == "replace" and isinstance(k.value, ast.Constant) and k.value.value is True for k in node.keywords)
        if rep or (isinstance(frac, int | float) and frac > 1):
            return replace(recv, resampled=recv.resampled | ({node.lineno} if not recv.sides else set()))
        if isinstance(frac, int | float) and frac >= 1:
            return recv  # a shuffle
        return self.cut(recv, Part(("sample", node.lineno), "train", node.lineno, recv.sides), node.lineno, source_of(node))

    def fit(self, node: ast.Call, recv: Val, args: list[Val], kws: dict[str | None, Val], key: str | None) -> Val:
        line = node.lineno
        data = join(*args) if args else join(kws.get("X", EMPTY), kws.get("x", EMPTY), kws.get("y", EMPTY))
        text = source_of(node)
        if recv.kind == "transform" and declared_tests(data):
            self.emit(PREPROCESSING, line, f"`{text}` is fitted on rows of the evaluation split")
        new = replace(recv, fitted=Fit(line, data, text))
        if recv.kind == "search":
            self.cv_use(data, line, text)
            new = replace(new, chosen=Fit(line, data, text))
        vd = kws.get("validation_data")
        if vd is not None and eval_sides(vd) and self.selecting_callbacks(node):
            self.selections.append((line, eval_sides(vd), line, True))
        if key:
            self.env[key] = new
        return new

    def selecting_callbacks(self, node: ast.Call) -> bool:
        cb = next((k.value for k in node.keywords if k.arg == "callbacks"), None)
        if cb is None:
            return False
        for n in ast.walk(cb):
            name = dotted(n.func, self.aliases) if isinstance(n, ast.Call) else None
            if name and name.endswith(SELECTING_CALLBACKS):
                return True
            if isinstance(n, ast.Name) and self.env.get(n.id, EMPTY).cls.endswith(SELECTING_CALLBACKS):
                return True
        return False

    def fit_transform(self, node: ast.Call, recv: Val, m: str, args: list[Val], key: str | None) -> Val:
        line = node.lineno
        data = args[0]
        text = source_of(node)
        if key:
            self.env[key] = replace(recv, fitted=Fit(line, join(*args), text))
        if recv.kind == "oversampler" or (m != "fit_transform" and recv.kind not in ("transform", "resampler")):
            outs = [replace(a, resampled=a.resampled | ({line} if a.tokens and not a.sides else set())) for a in args]
        elif recv.kind in ("resampler", "estimator"):  # LabelEncoder, a clusterer: learns no feature statistics
            outs = list(args)
        else:
            if declared_tests(data):
                self.emit(PREPROCESSING, line, f"`{text}` is fitted on rows of the evaluation split")
            taint = {Taint(line, text, data.tokens)} if data.tokens and not data.sides else set()
            outs = [replace(a, taints=a.taints | taint) for a in args]
        outs = [replace(o, kind="data", items=None) for o in outs]
        if m == "fit_transform":
            return outs[0]
        return replace(join(*outs), items=tuple(outs))

    def transform(self, node: ast.Call, recv: Val, data: Val) -> Val:
        fit = recv.fitted
        if fit is None or fit.data.sides or not fit.data.tokens:
            return replace(data, kind="data", items=None)
        if declared_tests(data) and data.tokens & fit.data.tokens:
            self.emit(PREPROCESSING, fit.line, f"`{fit.text}` learns from all rows; `{source_of(node)}` (line {node.lineno}) "
                                               "then applies it to the evaluation split cut from them")
        return replace(data, kind="data", items=None, taints=data.taints | {Taint(fit.line, fit.text, fit.data.tokens)})

    def evaluate(self, node: ast.Call, model: Val, data: Val, *, scoring: bool) -> Val:
        """A model predicts or scores `data`: check what it was fitted and chosen on."""
        line, tests = node.lineno, eval_sides(data)
        if tests:
            self.taint_check(data, line, f"`{source_of(node)}` scores the evaluation split")
        for t in model.taints:  # Keras layers adapted on all rows
            if tests and data.tokens & t.tokens:
                self.emit(PREPROCESSING, t.line, f"`{t.what}` learns from all rows; the model using it scores the "
                                                 f"evaluation split at line {line}")
        fit = model.fitted
        if model.chosen and (scoring or tests) and same_rows(model.chosen.data, data):
            self.emit(MULTI_TEST, line, f"`{source_of(node)}` scores rows that `{model.chosen.text}` (line "
                                        f"{model.chosen.line}) used to choose the hyperparameters")
        elif fit is not None:
            if tests and same_rows(fit.data, data):
                self.emit(OVERLAP, fit.line, f"`{fit.text}` trains on rows that `{source_of(node)}` (line {line}) "
                                             "then scores as held out")
            elif tests and data.resampled & fit.data.resampled:
                r = min(data.resampled & fit.data.resampled)
                self.emit(OVERLAP, r, f"rows are oversampled at line {r} before the split: copies of them are in "
                                      f"`{fit.text}` (line {fit.line}) and in `{source_of(node)}` (line {line})")
            elif scoring and not tests and not fit.data.sides and fit.data.tokens & data.tokens and \
                    _same_args(fit.text, node):
                self.emit(OVERLAP, line, f"`{source_of(node)}` scores the rows `{fit.text}` (line {fit.line}) fitted on")
        if scoring and tests:
            return self.look(line, data)
        return Val(kind="score")


def _same_args(fit_text: str, node: ast.Call) -> bool:
    """`clf.fit(X, y)` then `clf.score(X, y)`: the same first argument, no split anywhere between."""
    try:
        fit_call = ast.parse(fit_text.removesuffix("..."), mode="eval").body
    except SyntaxError:
        return False
    return isinstance(fit_call, ast.Call) and bool(fit_call.args) and \
        ast.unparse(fit_call.args[0]) == ast.unparse(node.args[0])


def leakage_findings(tree: ast.Module, aliases: dict[str, str], file: str) -> list[Finding]:
    """Findings of the three leakage kinds in one module, ordered by line.

    Args:
        tree: the module's syntax tree (a notebook's code cells joined in order).
        aliases: its imports, local name -> dotted path.
        file: the path the findings name.

    Example:
        >>> import ast
        >>> src = "from sklearn.preprocessing import StandardScaler\\n" \\
        ...       "from sklearn.model_selection import train_test_split\\n" \\
        ...       "X = StandardScaler().fit_transform(load())\\nXtr, Xte = train_test_split(X)\\n"
        >>> [f.code for f in leakage_findings(ast.parse(src), {"StandardScaler": "sklearn.preprocessing.StandardScaler",
        ...   "train_test_split": "sklearn.model_selection.train_test_split"}, "t.py")]
        ['preprocessing-leakage']
    """
    flow = _Flow(aliases, file)
    flow.block(tree.body)
    for name, fn in list(flow.funcs.items()):  # functions never called from the module: read them alone
        if name not in flow.called:
            flow.run_function(name, fn, [], {}, [])
    flow.finish_selections()
    return sorted(flow.found.values(), key=lambda f: (f.line, f.code))
