"""What a variable holds, for the leakage analysis of `assay check` (assay.checks.leakage): the
data sources it derives from, the split sides it lies in, statistics learned on unsplit rows,
oversampling, fits and scores; and the names of the library calls that move them.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace

TRANSFORMS = {
    "StandardScaler", "MinMaxScaler", "RobustScaler", "MaxAbsScaler", "QuantileTransformer", "PowerTransformer",
    "SimpleImputer", "KNNImputer", "IterativeImputer", "OneHotEncoder", "OrdinalEncoder", "TargetEncoder",
    "WOEEncoder", "CatBoostEncoder", "LeaveOneOutEncoder", "JamesSteinEncoder", "MEstimateEncoder", "CountEncoder",
    "GLMMEncoder", "BinaryEncoder", "PCA", "TruncatedSVD", "KernelPCA", "FastICA", "NMF", "IncrementalPCA",
    "SelectKBest", "SelectPercentile", "SelectFpr", "SelectFdr", "SelectFwe", "GenericUnivariateSelect",
    "VarianceThreshold", "RFE", "RFECV", "SelectFromModel", "SequentialFeatureSelector", "TfidfVectorizer",
    "CountVectorizer", "TfidfTransformer", "DictVectorizer", "KBinsDiscretizer", "SplineTransformer",
    "LinearDiscriminantAnalysis", "Isomap", "UMAP", "TSNE", "Normalization", "TextVectorization", "Discretization",
    "StringLookup", "IntegerLookup",
    # neighbour-based cleaning undersamplers learn from every row they see
    "TomekLinks", "EditedNearestNeighbours", "RepeatedEditedNearestNeighbours", "AllKNN", "NearMiss",
    "CondensedNearestNeighbour", "OneSidedSelection", "NeighbourhoodCleaningRule", "InstanceHardnessThreshold",
    "ClusterCentroids",
}
OVERSAMPLERS = {"SMOTE", "ADASYN", "BorderlineSMOTE", "SVMSMOTE", "KMeansSMOTE", "SMOTENC", "SMOTEN",
                 "RandomOverSampler", "SMOTETomek", "SMOTEENN"}
NEUTRAL_RESAMPLERS = {"RandomUnderSampler"}  # drops rows at random: learns nothing from them
SEARCHES = {"GridSearchCV", "RandomizedSearchCV", "HalvingGridSearchCV", "HalvingRandomSearchCV", "BayesSearchCV"}
PIPELINES = {"Pipeline", "make_pipeline", "ColumnTransformer", "make_column_transformer", "FeatureUnion",
              "make_union", "TransformedTargetRegressor"}
SPLITTERS = {"KFold", "StratifiedKFold", "GroupKFold", "ShuffleSplit", "StratifiedShuffleSplit", "GroupShuffleSplit",
              "TimeSeriesSplit", "RepeatedKFold", "RepeatedStratifiedKFold", "LeaveOneOut", "LeavePOut",
              "LeaveOneGroupOut", "LeavePGroupsOut", "StratifiedGroupKFold", "PredefinedSplit"}
CV_FUNCS = {"cross_val_score", "cross_validate", "cross_val_predict", "learning_curve", "validation_curve",
             "permutation_test_score"}
STATS = {"mean", "std", "median", "var", "min", "max", "mode", "quantile", "nanmean", "nanstd", "nanmedian",
          "percentile", "sem", "mad"}
PREDICT = {"predict", "predict_proba", "predict_log_proba", "decision_function", "predict_classes"}
SCORE = {"score", "evaluate"}
MUTATORS = {"append", "extend", "insert", "add", "update", "setdefault", "appendleft"}
SELECT_FNS = {"max", "min", "sorted", "argmax", "argmin", "nanargmax", "nanargmin", "amax", "amin", "argsort"}
SELECT_METHODS = {"idxmax", "idxmin", "argmax", "argmin", "max", "min", "sort_values", "nlargest", "nsmallest",
                   "sort", "index", "argsort"}
NEUTRAL_FNS = {"print", "len", "range", "int", "float", "str", "bool", "round", "isinstance", "type", "repr",
                "format", "open", "getattr", "hasattr", "setattr", "id", "vars", "dir", "super", "abs", "hash",
                "input", "callable", "iter", "next"}
NONDATA_ATTRS = {"shape", "columns", "dtypes", "dtype", "size", "ndim", "classes_", "n_features_in_",
                  "feature_names_in_", "best_score_", "cv_results_", "history", "device", "name"}
SELECTING_CALLBACKS = ("EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau")


@dataclass(frozen=True)
class Part:
    """One side of one split; `parent` holds the sides the split was cut from."""

    split: object
    side: str  # "train" | "test" (the evaluation side: a validation or a test split)
    line: int
    parent: frozenset[Part] = frozenset()
    rng: tuple[float, float] | None = None  # constant row range of a slice


@dataclass(frozen=True)
class Taint:
    """Statistics learned on unsplit data (by a fit, or a pandas mean), baked into a value."""

    line: int
    what: str
    tokens: frozenset[int]


@dataclass(frozen=True)
class Look:
    """A score computed on an evaluation split."""

    line: int
    repeated: bool  # inside a loop over candidates (not over the folds or batches of that split)
    keys: frozenset[Part]


@dataclass(frozen=True, eq=False)
class Fit:
    line: int
    data: Val
    text: str


@dataclass(frozen=True, eq=False)
class Val:
    """What an expression holds, as far as leakage goes."""

    kind: str = "none"  # none | data | index | stat | score | estimator | transform | oversampler | resampler
    #                     | search | pipeline | splitter | trainer | params
    cls: str = ""
    tokens: frozenset[int] = frozenset()  # data sources it derives from
    sides: frozenset[Part] = frozenset()  # split sides it lies in (empty: unsplit)
    taints: frozenset[Taint] = frozenset()
    resampled: frozenset[int] = frozenset()  # lines of oversampling applied before a split
    looks: frozenset[Look] = frozenset()
    fitted: Fit | None = None
    chosen: Fit | None = None  # hyperparameters chosen by a search fitted on this data
    items: tuple[Val, ...] | None = None
    elem: Val | None = None
    text: str = ""


EMPTY = Val()
OBJECTS = {"estimator", "transform", "oversampler", "resampler", "search", "pipeline", "splitter", "trainer"}


def join(*vals: Val) -> Val:
    """The value of an expression built from several (a concat, arithmetic, a container)."""
    vs = [v for v in vals if v is not EMPTY and (v.kind != "none" or v.looks or v.tokens or v.taints)]
    if not vs:
        return EMPTY
    if len(vs) == 1:
        return replace(vs[0], items=None) if vs[0].items is not None else vs[0]
    kinds = [v.kind for v in vs]
    kind = "data" if "data" in kinds else next((k for k in kinds if k != "none"), "none")
    union = lambda attr: frozenset().union(*(getattr(v, attr) for v in vs))  # noqa: E731
    return Val(kind=kind, cls=next((v.cls for v in vs if v.cls), ""), tokens=union("tokens"), sides=union("sides"),
               taints=union("taints"), resampled=union("resampled"), looks=union("looks"),
               fitted=next((v.fitted for v in vs if v.fitted), None), chosen=next((v.chosen for v in vs if v.chosen), None),
               elem=next((v.elem for v in vs if v.elem), None), text=vs[0].text)


def eval_sides(v: Val) -> frozenset[Part]:
    return frozenset(p for p in v.sides if p.side == "test")


def declared_tests(v: Val) -> frozenset[Part]:
    """Evaluation sides cut by a split call (not by a slice, which counts once a model scores it)."""
    return frozenset(p for p in eval_sides(v) if not (isinstance(p.split, tuple) and p.split[0] == "slice"))


def lineage_of(parts: frozenset[Part]) -> frozenset[Part]:
    out, todo = set(), list(parts)
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo += p.parent
    return frozenset(out)


def same_rows(data: Val, w: Val) -> bool:
    """Whether rows of `w` are among the rows of `data` (fitted on, or chosen on)."""
    if not data.sides:
        return bool(data.tokens & w.tokens)
    if data.sides & lineage_of(w.sides):
        return True
    return any(d.split == p.split and d.rng and p.rng and d.rng[0] < p.rng[1] and p.rng[0] < d.rng[1]
               for d in data.sides for p in w.sides)


def source_of(node: ast.AST, limit: int = 70) -> str:
    s = ast.unparse(node)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def key_of(node: ast.AST) -> str | None:
    """`x` or `self.scaler`: a name an assignment can update."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and (base := key_of(node.value)):
        return f"{base}.{node.attr}"
    return None


def root_key(node: ast.AST) -> str | None:
    """The variable a subscript or an indexer writes into: `df` for df.loc[m, "a"] or df["a"]."""
    while isinstance(node, ast.Subscript) or (isinstance(node, ast.Attribute) and node.attr in (
            "loc", "iloc", "at", "iat", "values", "str")):
        node = node.value
    return key_of(node)


def const(node: ast.AST | None) -> float | None | str:
    """A slice bound: a number, None when absent, '?' when computed."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, int | float)):
        return -node.operand.value
    return "?"


def trains(node: ast.AST) -> bool:
    """A loop or function that steps an optimiser: a model called inside it is being fitted."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "backward"
               for n in ast.walk(node))


def object_kind(cls: str) -> str:
    if cls in TRANSFORMS:
        return "transform"
    if cls in OVERSAMPLERS:
        return "oversampler"
    if cls in NEUTRAL_RESAMPLERS:
        return "resampler"
    if cls in SEARCHES:
        return "search"
    if cls in PIPELINES:
        return "pipeline"
    if cls in SPLITTERS:
        return "splitter"
    if cls == "Trainer":
        return "trainer"
    return "estimator"


def is_metric(name: str, last: str) -> bool:
    return (".metrics." in f".{name}" or last.endswith(("_score", "_error")) or last in (
        "log_loss", "classification_report", "confusion_matrix", "accuracy", "hamming_loss", "zero_one_loss"))
